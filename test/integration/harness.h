/*
 * harness.h: integration-test harness. Reads the PostgreSQL fixture written
 * by pg_fixture.sh, runs the pooler under test (pgmux, or PgBouncer when
 * PGMUX_TEST_POOLER=pgbouncer) with a generated ini in a temp dir, and wraps
 * libpq and subprocesses so each test body stays short.
 *
 * Functions that assert (everything not marked "thread-safe") use cmocka and
 * must only be called from the test's main thread; worker threads record
 * their failures and let the main thread assert on them.
 */
#ifndef PGMUX_IT_HARNESS_H
#define PGMUX_IT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#define HARNESS_PATH_MAX 512

/* The shared PostgreSQL cluster (PGMUX_FIXTURE_ENV names its env file). */
struct harness_fixture {
	char host[64];
	int port;
	char sockdir[HARNESS_PATH_MAX];
	char bindir[HARNESS_PATH_MAX];
	char log[HARNESS_PATH_MAX];
	char db[64];
	char super_user[64], super_password[64];
	char app_user[64], app_password[64];
	char md5_user[64], md5_password[64];
	char admin_user[64], admin_password[64];
};

/* Loads the fixture once; fails the test if it is missing. */
const struct harness_fixture *harness_fixture(void);

/* Which pooler runs: pgmux unless PGMUX_TEST_POOLER=pgbouncer. */
bool harness_is_pgbouncer(void);
const char *harness_pooler_bin(void);
/* "pgmux" or "pgbouncer": the ini main section and the admin database. */
const char *harness_pooler_name(void);

/*
 * What to put in the generated files. Every field may be NULL.
 * settings:  extra lines for the main section, after the harness defaults
 *            (listen_addr, listen_port, unix_socket_dir, auth_type, auth_file,
 *            admin_users, stats_users, pool_mode = transaction,
 *            default_pool_size = 5, max_client_conn = 1000, logfile, pidfile).
 *            A key given here overrides the default of the same name.
 * databases: the [databases] body; NULL gives
 *            "appdb = host=127.0.0.1 port=<pg> dbname=appdb".
 * userlist:  the auth_file body; NULL gives plain passwords for app and admin.
 * nofile:    when > 0, the pooler is exec'd with RLIMIT_NOFILE soft = hard =
 *            nofile, so it cannot raise its own limit (fd-limit tests);
 *            0 leaves the limit it inherits from the test.
 */
struct harness_pooler_cfg {
	const char *settings;
	const char *databases;
	const char *userlist;
	long nofile;
};

struct harness_pooler {
	pid_t pid;             /* 0 once reaped */
	int port;              /* TCP port it listens on */
	int exit_status;       /* raw waitpid() status, valid once pid == 0 */
	bool killed;           /* stop had to use SIGKILL */
	char dir[HARNESS_PATH_MAX];
	char ini_path[HARNESS_PATH_MAX];
	char userlist_path[HARNESS_PATH_MAX];
	char stderr_path[HARNESS_PATH_MAX];  /* stdout + stderr of the process */
	char logfile_path[HARNESS_PATH_MAX]; /* the ini's logfile */
	char pidfile_path[HARNESS_PATH_MAX];
	char settings[4096];   /* kept so harness_pooler_rewrite() can rebuild */
	char databases[4096];
	char userlist[8192];
	long nofile;           /* RLIMIT_NOFILE for the process, 0: inherited */
};

/* Writes the files into a fresh temp dir and picks a free port. */
void harness_pooler_prepare(struct harness_pooler *p,
			    const struct harness_pooler_cfg *cfg);
/* Rewrites ini + userlist from cfg (same dir and port), e.g. before SIGHUP. */
void harness_pooler_rewrite(struct harness_pooler *p,
			    const struct harness_pooler_cfg *cfg);
/* Spawns the pooler; stdout and stderr go to p->stderr_path. */
void harness_pooler_spawn(struct harness_pooler *p);
/* Waits until the port accepts; fails the test (with the log) if it dies. */
void harness_pooler_wait_ready(struct harness_pooler *p);
/* prepare + spawn + wait_ready. */
void harness_pooler_start(struct harness_pooler *p,
			  const struct harness_pooler_cfg *cfg);
/*
 * SIGTERM (SIGINT for PgBouncer, whose SIGTERM exits 1), then SIGKILL
 * after timeout_s. Scans the output and logfile for sanitizer reports and
 * fails the test if it finds one, if SIGKILL was needed, or if the process
 * did not exit 0. Returns the raw wait status. Removes
 * the temp dir unless PGMUX_TEST_KEEP is set or something was wrong.
 */
int harness_pooler_stop(struct harness_pooler *p, int timeout_s);
/* Waits up to timeout_s for the process to exit by itself; true if it did. */
bool harness_pooler_wait_exit(struct harness_pooler *p, int timeout_s);
void harness_pooler_signal(struct harness_pooler *p, int sig);
bool harness_pooler_alive(struct harness_pooler *p);
/* True if the process output or its logfile contains needle. */
bool harness_pooler_log_contains(const struct harness_pooler *p,
				 const char *needle);
/* Prints the tail of the pooler's output and logfile to stderr. */
void harness_pooler_dump_log(const struct harness_pooler *p);
/* The last max bytes of a file to stderr, under a header naming title. */
void harness_print_tail(const char *title, const char *path, size_t max);
/* Its WARNING, ERROR and FATAL log lines (the first max) to stderr. */
void harness_print_pooler_problems(const struct harness_pooler *p, int max);
/* Fails the test if text holds a sanitizer report (what = where it came from). */
void harness_assert_no_sanitizer_report(const char *text, const char *what);

/*
 * cmocka teardown: stops every pooler a failed test left running (keeping
 * its dir and printing its log) so no process outlives the test program.
 */
int harness_teardown(void **state);

/* conninfo for the pooler (port) or PostgreSQL; thread-safe. */
void harness_conninfo(char *buf, size_t len, int port, const char *db,
		      const char *user, const char *password);
/* Connects; fails the test with libpq's message unless CONNECTION_OK. */
PGconn *harness_connect(const char *conninfo);
/* Through the pooler; NULL db/user/password mean appdb/app/app's password. */
PGconn *harness_connect_pooler(const struct harness_pooler *p, const char *db,
			       const char *user, const char *password);
/* Direct superuser connection to PostgreSQL (db NULL: appdb). */
PGconn *harness_connect_pg_super(const char *db);

/* Admin console (db pgmux or pgbouncer) as the fixture's admin user. */
PGconn *harness_connect_admin(const struct harness_pooler *p);
/* Runs sql, fails unless it returns rows (TUPLES_OK); the caller clears. */
PGresult *harness_query(PGconn *c, const char *sql);
/* Column index by name; fails the test if the result has no such column. */
int harness_col(const PGresult *r, const char *name);
/* Value of (row, column name); fails if the column is missing or NULL. */
const char *harness_value(const PGresult *r, int row, const char *col);
long long harness_value_ll(const PGresult *r, int row, const char *col);
/*
 * First row whose column col1 equals val1 and, unless col2 is NULL, col2
 * equals val2; -1 if none.
 */
int harness_find_row(const PGresult *r, const char *col1, const char *val1,
		     const char *col2, const char *val2);
/*
 * On a console connection of its own (closed again): runs show, takes the
 * first row whose column key_col equals key_val (fails the test if there is
 * none) and returns its column col, as an integer or as a malloc'd string.
 */
long long harness_admin_ll(const struct harness_pooler *p, const char *show,
			   const char *key_col, const char *key_val, const char *col);
char *harness_admin_value(const struct harness_pooler *p, const char *show,
			  const char *key_col, const char *key_val, const char *col);

/* Runs sql, fails the test unless the result status is expect. Clears it. */
void harness_exec_expect(PGconn *c, const char *sql, ExecStatusType expect);
/* Runs sql, fails unless it is COMMAND_OK or TUPLES_OK. */
void harness_exec(PGconn *c, const char *sql);
/* Runs sql, fails unless it errors with this SQLSTATE. */
void harness_exec_sqlstate(PGconn *c, const char *sql, const char *sqlstate);
/* One row, one column: returns a malloc'd copy (NULL for SQL NULL). */
char *harness_scalar(PGconn *c, const char *sql);
long long harness_scalar_ll(PGconn *c, const char *sql);
/* Server connections in pg_stat_activity for (db, user), excluding c's own. */
int harness_count_server_conns(PGconn *super, const char *db, const char *user);
/*
 * Background sampler of harness_count_server_conns() for one (db, user),
 * every 10 ms on its own superuser connection, recording the maximum. Its
 * thread never asserts; harness_poller_stop() joins it and fails the test if
 * the poller could not query.
 */
struct harness_poller {
	char db[64], user[64];
	char conninfo[512];
	unsigned long thread;   /* pthread_t */
	volatile int stop;
	volatile int max;       /* highest count seen */
	volatile int samples;
	char error[256];        /* set by the thread on failure */
};
void harness_poller_start(struct harness_poller *pl, const char *db,
			  const char *user);
/* Joins the thread; returns the maximum server connection count seen. */
int harness_poller_stop(struct harness_poller *pl);

/* Waits (up to timeout_s) until no server connection for (db, user) is left,
 * e.g. from the previous test's pooler; fails the test otherwise. */
void harness_wait_no_server_conns(const char *db, const char *user, int timeout_s);
/*
 * Collects every result of the command in flight on c (after PQsendQuery)
 * without blocking for longer than timeout_ms in total. Writes the SQLSTATEs
 * seen, comma-separated, to states; returns false on timeout. thread-safe.
 */
bool harness_collect_results(PGconn *c, char *states, size_t len, int timeout_ms,
			     int *n_ok);

/*
 * Does got satisfy the expected SQLSTATE want? Exact match, except when
 * validating against PgBouncer with PGMUX_TEST_ACCEPT_08P01=1: PgBouncer
 * reports its own login and link errors as 08P01, so that is then accepted
 * too (to exercise the rest of a test). Never set for pgmux. thread-safe.
 */
bool harness_sqlstate_is(const char *got, const char *want);

/* SQLSTATE of a result, "" if none; thread-safe. */
const char *harness_sqlstate(const PGresult *r);

/*
 * Runs argv (argv[0] is looked up in PATH) with extra environment entries
 * ("K=V", NULL-terminated, may be NULL), stdin from stdin_path (NULL:
 * /dev/null), stdout and stderr to the given files (NULL: /dev/null).
 * Returns the exit code, 128 + signal if killed by one, or -1 on timeout
 * (the child is then SIGKILLed).
 */
int harness_run(char *const argv[], char *const env[], const char *stdin_path,
		const char *out_path, const char *err_path, int timeout_s);
/* Reads a whole file (NUL-terminated); fails the test if it cannot. */
char *harness_read_file(const char *path, size_t *len);
void harness_write_file(const char *path, const char *text);
/* Builds a path inside p->dir. */
void harness_path(char *buf, size_t len, const struct harness_pooler *p,
		  const char *name);
/* snprintf that fails the test on truncation or error. */
void harness_fmt(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A TCP port on 127.0.0.1 nothing listens on right now. */
int harness_free_port(void);
/* Monotonic milliseconds; thread-safe. */
long long harness_now_ms(void);
/* user+system CPU of a process in milliseconds, -1 if unknown; thread-safe. */
long long harness_proc_cpu_ms(pid_t pid);
/* Raises RLIMIT_NOFILE to at least n (hard limit too when root). */
void harness_raise_nofile(long n);

/*
 * Raw-protocol login, so tests can see the SQLSTATE of a refused login
 * (libpq only exposes the message text) and which method the pooler asked
 * for. Speaks trust, cleartext, md5 and SCRAM-SHA-256 (no TLS).
 */
struct harness_login {
	bool ok;             /* reached ReadyForQuery */
	char method[16];     /* "trust", "cleartext", "md5", "scram-sha-256" */
	char sqlstate[6];    /* of the ErrorResponse, "" if none */
	char message[256];   /* its M field, or a harness error */
};
void harness_raw_login(int port, const char *db, const char *user,
		       const char *password, struct harness_login *out);
/*
 * The same login, but a successful session is kept open: returns its socket
 * (the caller closes it) when out->ok, else -1 with the socket closed.
 * timeout_ms bounds every wait for a reply (0: 20 s). thread-safe.
 */
int harness_raw_login_keep(int port, const char *db, const char *user,
			   const char *password, int timeout_ms,
			   struct harness_login *out);

/* SCRAM-SHA-256 client arithmetic (RFC 5802/7677), shared with the login storm. */
#define HARNESS_SCRAM_KEY_LEN 32
void harness_scram_salted_password(const char *password, const unsigned char *salt,
				   size_t salt_len, int iterations,
				   unsigned char out[HARNESS_SCRAM_KEY_LEN]);
/*
 * Given the salted password and the three messages, fills proof_b64 (the
 * client-final "p=" value) and server_sig_b64 (what "v=" must be).
 */
void harness_scram_proof(const unsigned char salted[HARNESS_SCRAM_KEY_LEN],
			 const char *client_first_bare, const char *server_first,
			 const char *client_final_wo_proof, char *proof_b64,
			 size_t proof_len, char *server_sig_b64, size_t sig_len);
/* Base64 decode; returns the length or -1. */
int harness_b64_decode(const char *in, unsigned char *out, size_t out_len);
/* Fills buf with a printable random nonce of len - 1 characters. */
void harness_nonce(char *buf, size_t len);
/* "md5" + md5(md5(password + user) + salt) into out[36]. */
void harness_md5_response(const char *user, const char *password,
			  const unsigned char salt[4], char out[36]);

/*
 * Login checks over harness_raw_login (main thread: they assert).
 * method, unless NULL, is what the pooler must have asked for; sqlstate
 * NULL accepts any refusal.
 */
void harness_assert_login_ok(int port, const char *db, const char *user,
			     const char *password, const char *method);
void harness_assert_login_refused(int port, const char *db, const char *user,
				  const char *password, const char *sqlstate,
				  const char *method);
/* libpq through the pooler: PostgreSQL must see the session as server_user. */
void harness_assert_libpq_user(const struct harness_pooler *p, const char *db,
			       const char *user, const char *password,
			       const char *server_user);

/*
 * Raw sockets, for tests that must send what libpq would not or see bytes
 * libpq hides. All thread-safe; none asserts.
 */
void harness_put32(unsigned char *p, uint32_t v);   /* big-endian */
uint32_t harness_get32(const unsigned char *p);
/*
 * A TCP socket connected to 127.0.0.1:port (with nonblock, the connect may
 * still be in progress); -1 with errno set on failure.
 */
int harness_raw_connect(int port, bool nonblock);
/* Writes all of buf (send with MSG_NOSIGNAL); false on error. */
bool harness_raw_write_all(int fd, const void *buf, size_t len);
/*
 * Reads exactly len bytes within timeout_ms (< 0: no limit); false on EOF,
 * error or timeout.
 */
bool harness_raw_read_exact(int fd, void *buf, size_t len, int timeout_ms);
/* A protocol 3.0 StartupMessage into buf; its length, 0 if it does not fit. */
size_t harness_raw_startup_packet(unsigned char *buf, size_t cap, const char *db,
				  const char *user);
/* A blocking connection that has sent its StartupMessage; -1 on failure. */
int harness_raw_startup(int port, const char *db, const char *user);
/*
 * One typed message (type, int32 length, body) in a single write, as real
 * clients send it; false if it failed or the message exceeds 1 KB.
 */
bool harness_raw_send_msg(int fd, char type, const void *body, size_t len);

/* One backend message; body is NUL-terminated. */
struct harness_msg {
	char type;
	unsigned char body[4096];
	size_t len;
};
/*
 * Reads one whole message, each of header and body within timeout_ms;
 * false on EOF, error, timeout or a body that does not fit.
 */
bool harness_raw_read_msg(int fd, struct harness_msg *m, int timeout_ms);

/* What an ErrorResponse said. */
struct harness_wire_error {
	char severity[16];   /* V (not localized), else the first S */
	char sqlstate[6];
	char message[256];
};
void harness_raw_error_fields(const unsigned char *body, size_t len,
			      struct harness_wire_error *e);
/*
 * Splits buf[0..len) into backend messages: types gets their type bytes (as
 * many as fit), *err the fields of the first ErrorResponse. Returns that
 * error's index among the messages (0: it came first), -1 if there is none;
 * *whole (may be NULL) gets the bytes of whole messages, len if none is torn.
 */
int harness_raw_split(const unsigned char *buf, size_t len,
		      struct harness_wire_error *err, char *types, size_t types_len,
		      size_t *whole);
/*
 * Reads fd until EOF, a read error or timeout_ms, keeping the first cap
 * bytes in buf and dropping the rest; returns the bytes kept. *eof_ms:
 * harness_now_ms() when EOF came, -1 if it did not (*reset then says
 * whether a read error, such as a reset, ended it).
 */
size_t harness_raw_read_to_eof(int fd, void *buf, size_t cap, int timeout_ms,
			       long long *eof_ms, bool *reset);

/*
 * Many simultaneous raw SCRAM-SHA-256 logins, driven by poll() from the
 * main thread. The client keeps the salted password per (salt, iterations),
 * as a fleet of separate clients would not need to share one CPU: the
 * test measures the pooler, not its own PBKDF2.
 */
enum harness_storm_state {
	HARNESS_STORM_CONNECTING,
	HARNESS_STORM_AUTH,
	HARNESS_STORM_DONE,
	HARNESS_STORM_FAILED,
};
struct harness_storm_conn {
	int fd;
	enum harness_storm_state state;
	unsigned char buf[4096];
	size_t len;
	char nonce[25];
	char first_bare[64];
	char expect_sig[64];
	char sqlstate[6];    /* of an ErrorResponse */
	char why[96];        /* why it failed, "" if it did not */
	long long done_ms;   /* harness_now_ms() at ReadyForQuery */
};
struct harness_storm {
	const char *user, *password, *db;
	struct {
		char key[128];  /* "salt/iterations" */
		unsigned char salted[HARNESS_SCRAM_KEY_LEN];
	} cache[4];
	int n_cache;
	int derivations;    /* PBKDF2 runs done by this client */
};
/*
 * Opens n connections (each conn is reset first) to port at once and drives
 * their logins until every one is done or failed, or timeout_ms has passed
 * (the rest are left as they are). Returns how many logged in.
 */
int harness_storm_run(struct harness_storm *st, struct harness_storm_conn *c, int n,
		      int port, int timeout_ms);
/* Sends Terminate if it logged in, then closes the socket. */
void harness_storm_close(struct harness_storm_conn *c);

/* ---- waits shared by the tests that watch the pooler from outside ---- */

/* nanosleep, resumed after signals; thread-safe. */
void harness_sleep_ms(long ms);
/* Waits up to ms for the command in flight on c; true once it has a result
 * (or c broke: PQgetResult reports it). thread-safe. */
bool harness_result_within(PGconn *c, int ms);
/* Severity of an error result, not localized if the server sent that, else
 * "". thread-safe. */
const char *harness_severity(const PGresult *r);
/*
 * Waits until PostgreSQL runs a statement containing marker (a comment that
 * keeps other sessions out); returns that backend's pid.
 */
int harness_wait_running(PGconn *super, const char *marker, int timeout_ms);
/*
 * coalesce(column, '') of pg_stat_activity for backend pid, malloc'd; NULL
 * once the backend is gone.
 */
char *harness_backend_activity(PGconn *super, int pid, const char *column);
/* Waits up to timeout_ms for backend pid to leave pg_stat_activity; why
 * (may be NULL) ends the failure message. */
void harness_wait_backend_gone(PGconn *super, int pid, int timeout_ms,
			       const char *why);
/* Rows of SHOW SERVERS for database db (NULL: all). */
int harness_show_servers(PGconn *admin, const char *db);
/* Open descriptors of a process, from /proc/<pid>/fd. */
int harness_proc_fd_count(pid_t pid);
/* The same count; also stores the first cap descriptor numbers (unsorted)
 * in fds unless it is NULL. */
int harness_proc_fds(pid_t pid, int *fds, int cap);
/*
 * Waits up to timeout_ms for the pooler to have want descriptors open, the
 * count taken before `before` (e.g. "the cancel requests").
 */
void harness_wait_fd_count(const struct harness_pooler *p, int want, int timeout_ms,
			   const char *before);

#endif /* PGMUX_IT_HARNESS_H */
