/*
 * config.h: pgmux configuration in PgBouncer's ini format.
 * One table (config.c) lists every key with its type, default, bounds and
 * whether RELOAD may change it. Loading parses into a fresh struct cfg and
 * validates it as a whole; a reload swaps the pointer only on success, so a
 * broken file never replaces a working configuration.
 */
#ifndef PGMUX_CONFIG_H
#define PGMUX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <uthash.h>

enum pool_mode {
	POOL_MODE_SESSION,
	POOL_MODE_TRANSACTION,
	POOL_MODE_STATEMENT,
};
const char *cfg_pool_mode_str(enum pool_mode m);

enum cfg_auth_type {
	CFG_AUTH_ANY,   /* "any": no check, like trust but the user name is not checked either */
	CFG_AUTH_TRUST,
	CFG_AUTH_PLAIN,
	CFG_AUTH_MD5,
	CFG_AUTH_SCRAM, /* "scram-sha-256" */
	CFG_AUTH_CERT,
	CFG_AUTH_HBA,
	CFG_AUTH_PAM,
};
const char *cfg_auth_type_str(enum cfg_auth_type t);

/* One [databases] entry. Strings are owned by the entry. */
struct cfg_db {
	char *name;             /* key; "*" is the fallback entry */
	char *host;             /* NULL: unix socket in the default dir; "/..." a socket dir */
	int port;               /* 5432 unless given */
	char *dbname;           /* NULL: same as name (or the client's for "*") */
	char *user;             /* forced server user, or NULL */
	char *password;         /* for the forced user, or NULL */
	char *auth_user;
	char *auth_dbname;      /* NULL: global auth_dbname */
	char *auth_query;       /* NULL: global auth_query */
	char *client_encoding, *datestyle, *timezone, *application_name;
	char *connect_query;
	int pool_size;          /* -1: default_pool_size */
	int min_pool_size;      /* -1: global */
	int reserve_pool;       /* -1: global */
	int max_db_connections; /* -1: global */
	int max_db_client_connections; /* -1: global */
	int pool_mode;          /* -1: global, else enum pool_mode */
	double server_lifetime; /* seconds; -1: global */
	int load_balance_hosts; /* -1: not set (round-robin), 0: disable, 1: round-robin */
	int line;               /* where it was defined, for messages */
};

/* One [users] entry. */
struct cfg_user {
	char *name;
	int pool_mode;                   /* -1: not set */
	int pool_size;                   /* -1: not set */
	int reserve_pool_size;           /* -1: not set */
	int max_user_connections;        /* -1: not set */
	int max_user_client_connections; /* -1: not set */
	double query_timeout;            /* seconds; -1: not set */
	double idle_transaction_timeout; /* seconds; -1: not set */
	double transaction_timeout;      /* seconds; -1: not set */
	double client_idle_timeout;      /* seconds; -1: not set */
	int line;
};

struct cfg {
	char *path; /* the file this came from */

	/* [pgmux] / [pgbouncer]: only keys pgmux acts on get a typed field;
	 * every key in the table is still accepted and shown by SHOW CONFIG.
	 * String fields are NULL when the value is empty ("not set"), so
	 * `if (c->auth_file)` is the test. Do not keep pointers to them across
	 * cfg_set(), which replaces the string. */
	char *listen_addr;
	int listen_port;
	char *unix_socket_dir;
	int unix_socket_mode;
	int listen_backlog;
	enum pool_mode pool_mode;
	int default_pool_size;
	int min_pool_size;
	int reserve_pool_size;
	double reserve_pool_timeout;
	int max_client_conn;
	int max_db_connections;
	int max_user_connections;
	int max_db_client_connections;
	int max_user_client_connections;
	enum cfg_auth_type auth_type;
	char *auth_file;
	char *auth_hba_file;
	char *auth_user;
	char *auth_query;
	char *auth_dbname; /* NULL: auth_query runs in the client's database */
	char *admin_users; /* comma-separated */
	char *stats_users;
	char *logfile;
	char *pidfile;
	int verbose;
	bool log_connections;
	bool log_disconnections;
	bool log_pooler_errors;
	bool log_stats;
	char *server_reset_query;
	bool server_reset_query_always;
	char *server_check_query;
	double server_check_delay;
	double server_lifetime;
	double server_idle_timeout;
	double server_connect_timeout;
	double server_login_retry;
	double query_timeout;
	double query_wait_timeout;
	double client_idle_timeout;
	double client_login_timeout;
	double idle_transaction_timeout;
	double transaction_timeout;
	double cancel_wait_timeout;
	double shutdown_wait_timeout; /* pgmux: how long SIGTERM waits for clients */
	char *metrics_listen;         /* pgmux: "host:port" of the /metrics endpoint, or NULL */
	int stats_period;
	int pkt_buf;
	int max_packet_size;
	int sbuf_loopcnt;
	bool tcp_keepalive;
	int tcp_keepidle;
	int tcp_keepintvl;
	int tcp_keepcnt;
	int tcp_user_timeout;  /* ms */
	int tcp_socket_buffer; /* bytes */
	char *ignore_startup_parameters;
	char *track_extra_parameters;
	char *application_name_add_host; /* a boolean: NULL when off, "1" when on */
	int max_prepared_statements;
	/* TLS (pooler/tls.h): sslmodes are enum tls_sslmode values. */
	int client_tls_sslmode;
	char *client_tls_key_file;
	char *client_tls_cert_file;
	char *client_tls_ca_file;
	char *client_tls_protocols;
	char *client_tls_ciphers;
	char *client_tls13_ciphers;
	int server_tls_sslmode;
	char *server_tls_key_file;
	char *server_tls_cert_file;
	char *server_tls_ca_file;
	char *server_tls_protocols;
	char *server_tls_ciphers;
	char *server_tls13_ciphers;

	struct cfg_db *dbs; /* array */
	size_t ndbs;
	struct cfg_user *users; /* array */
	size_t nusers;

	/* Raw text of every table key as set (or default), for SHOW CONFIG;
	 * indexed like the key table. Owned. */
	char **raw;
};

/*
 * Loads and validates path. On failure returns NULL and writes
 * "file:line: reason" into err. Unknown keys are logged as warnings with
 * file:line and otherwise ignored.
 */
struct cfg *cfg_load(const char *path, char *err, size_t errlen);
void cfg_free(struct cfg *c);

/* The [databases] entry for name: exact match first, then "*", else NULL. */
const struct cfg_db *cfg_find_db(const struct cfg *c, const char *name);
const struct cfg_user *cfg_find_user(const struct cfg *c, const char *name);
/* Whether name is in a comma/space-separated list such as admin_users. */
bool cfg_list_contains(const char *list, const char *name);

/* SHOW CONFIG: key i of the table (0 <= i < cfg_key_count()). */
size_t cfg_key_count(void);
struct cfg_key_view {
	const char *key;
	const char *value;   /* current, as text */
	const char *def;     /* default, as text */
	bool reloadable;
};
void cfg_key_at(const struct cfg *c, size_t i, struct cfg_key_view *out);
/* Admin SET key = value on a live config. 0 on success, else -1 with err
 * filled ("unknown key", "cannot be changed while running", bad value). */
int cfg_set(struct cfg *c, const char *key, const char *value, char *err, size_t errlen);
/* For RELOAD: names of non-reloadable keys whose value differs (comma-
 * separated into out); returns how many differ. */
int cfg_diff_fixed(const struct cfg *old, const struct cfg *next, char *out, size_t outlen);

/* auth_file: PgBouncer's userlist.txt, lines of "user" "secret". */
struct cfg_secret {
	char *user;
	char *secret; /* plain password, "md5..." or "SCRAM-SHA-256$..." */
	UT_hash_handle hh;
};
struct cfg_userlist {
	struct cfg_secret *by_user; /* uthash head */
};
/* Returns NULL and fills err on a missing file or a malformed line. */
struct cfg_userlist *cfg_userlist_load(const char *path, char *err, size_t errlen);
const char *cfg_userlist_find(const struct cfg_userlist *ul, const char *user);
void cfg_userlist_free(struct cfg_userlist *ul);

#endif /* PGMUX_CONFIG_H */
