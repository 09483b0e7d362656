/*
 * test_limits.c: pgmux's connection limits against real PostgreSQL, each
 * watched from outside. Client limits (max_client_conn,
 * max_db_client_connections, max_user_client_connections) must refuse the
 * login past them with 53300 and a message naming the limit, and let the
 * next client in once a slot frees. Server limits (max_db_connections,
 * max_user_connections) must hold in pg_stat_activity and SHOW SERVERS
 * while more clients than the limit run pg_sleep transactions, with every
 * transaction succeeding, and must not starve a pool of the same database or
 * user while another pool's servers sit idle. min_pool_size and the reserve
 * pool are checked through SHOW POOLS, SHOW SERVERS and pg_stat_activity.
 *
 * Two databases: "appdb" (PostgreSQL appdb) and "limdb", a second PostgreSQL
 * database made for this program, so per-database counts can be told apart
 * in pg_stat_activity. Two users: app and app_md5.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

/* The second PostgreSQL database and its name in pgmux. */
#define PG_DB2 "pgmux_limits"
#define DB2 "limdb"

/* The janitor's period and what scheduling may add to it. */
#define TICK_MS 1000
#define SLACK_MS 1000

/* Index of a database (appdb, limdb) and of a user (app, app_md5). */
#define N_DBS 2
#define N_USERS 2

static const char *db_name(int i)
{
	return i == 0 ? harness_fixture()->db : DB2;
}

static const char *pg_db_name(int i)
{
	return i == 0 ? harness_fixture()->db : PG_DB2;
}

static const char *user_name(int i)
{
	const struct harness_fixture *fx = harness_fixture();

	return i == 0 ? fx->app_user : fx->md5_user;
}

static const char *password_of(const char *user)
{
	const struct harness_fixture *fx = harness_fixture();

	return strcmp(user, fx->md5_user) == 0 ? fx->md5_password : fx->app_password;
}

static int index_of(const char *name, const char *(*names)(int), int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(name, names(i)) == 0)
			return i;
	return -1;
}

/* ---- the second database ------------------------------------------------- */

static int group_setup(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	PGconn *s = harness_connect_pg_super("postgres");
	char sql[256];

	(void)state;
	/* A database left by an aborted run goes first, without a NOTICE. */
	harness_exec(s, "SET client_min_messages = warning");
	harness_exec(s, "DROP DATABASE IF EXISTS " PG_DB2 " WITH (FORCE)");
	harness_fmt(sql, sizeof(sql), "CREATE DATABASE " PG_DB2 " OWNER %s", fx->app_user);
	harness_exec(s, sql);
	PQfinish(s);
	return 0;
}

static int group_teardown(void **state)
{
	PGconn *s = harness_connect_pg_super("postgres");

	(void)state;
	harness_exec(s, "DROP DATABASE IF EXISTS " PG_DB2 " WITH (FORCE)");
	PQfinish(s);
	return 0;
}

/* ---- pooler setup ---------------------------------------------------------- */

/* Backends of app and app_md5 in PostgreSQL, per database and user. */
struct pg_counts {
	int db[N_DBS];
	int user[N_USERS];
	int total;
};

static bool pg_count(PGconn *super, struct pg_counts *out, char *err, size_t err_len)
{
	const char *params[2] = { user_name(0), user_name(1) };
	PGresult *r = PQexecParams(super,
		"SELECT datname, usename, count(*) FROM pg_stat_activity "
		"WHERE backend_type = 'client backend' AND usename IN ($1, $2) "
		"GROUP BY 1, 2", 2, NULL, params, NULL, NULL, 0);
	int i;

	memset(out, 0, sizeof(*out));
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, err_len, "pg_stat_activity: %s", PQerrorMessage(super));
		PQclear(r);
		return false;
	}
	for (i = 0; i < PQntuples(r); i++) {
		int d = index_of(PQgetvalue(r, i, 0), pg_db_name, N_DBS);
		int u = index_of(PQgetvalue(r, i, 1), user_name, N_USERS);
		int n = atoi(PQgetvalue(r, i, 2));

		if (d >= 0)
			out->db[d] += n;
		if (u >= 0)
			out->user[u] += n;
		out->total += n;
	}
	PQclear(r);
	return true;
}

static struct pg_counts pg_count_now(void)
{
	PGconn *s = harness_connect_pg_super("postgres");
	struct pg_counts c;
	char err[512];

	if (!pg_count(s, &c, err, sizeof(err)))
		fail_msg("%s", err);
	PQfinish(s);
	return c;
}

/* Waits until no backend of app or app_md5 is left (previous poolers). */
static void wait_no_backends(int timeout_s)
{
	long long deadline = harness_now_ms() + (long long)timeout_s * 1000;
	struct pg_counts c;

	for (;;) {
		c = pg_count_now();
		if (c.total == 0)
			return;
		if (harness_now_ms() > deadline)
			fail_msg("%d backends of %s/%s still open after %d s", c.total,
				 user_name(0), user_name(1), timeout_s);
		harness_sleep_ms(20);
	}
}

/*
 * Starts pgmux with settings for the main section, extra options on the
 * appdb and limdb entries, and an optional [users] section body.
 */
static void start_pooler(struct harness_pooler *p, const char *settings,
			 const char *appdb_opts, const char *limdb_opts,
			 const char *users)
{
	const struct harness_fixture *fx = harness_fixture();
	char dbs[2048], ul[512];
	struct harness_pooler_cfg cfg = { .settings = settings, .databases = dbs,
					  .userlist = ul };

	harness_fmt(dbs, sizeof(dbs),
		    "%s = host=%s port=%d dbname=%s %s\n"
		    "%s = host=%s port=%d dbname=%s %s\n"
		    "%s%s",
		    fx->db, fx->host, fx->port, fx->db, appdb_opts ? appdb_opts : "",
		    DB2, fx->host, fx->port, PG_DB2, limdb_opts ? limdb_opts : "",
		    users ? "\n[users]\n" : "", users ? users : "");
	harness_fmt(ul, sizeof(ul), "\"%s\" \"%s\"\n\"%s\" \"%s\"\n\"%s\" \"%s\"\n",
		    fx->app_user, fx->app_password, fx->md5_user, fx->md5_password,
		    fx->admin_user, fx->admin_password);
	wait_no_backends(15);
	harness_pooler_start(p, &cfg);
}

/* ---- raw logins -------------------------------------------------------------- */

/* Logs in and keeps the session open; fails the test unless it got in. */
static int login_keep(const struct harness_pooler *p, const char *db, const char *user)
{
	struct harness_login l;
	int fd = harness_raw_login_keep(p->port, db, user, password_of(user), 5000, &l);

	if (fd < 0)
		fail_msg("login %s@%s refused: sqlstate '%s': %s", user, db, l.sqlstate,
			 l.message);
	return fd;
}

/* Fails unless a login is refused with 53300 and exactly this message. */
static void login_refused(const struct harness_pooler *p, const char *db,
			  const char *user, const char *message)
{
	struct harness_login l;
	long long t0 = harness_now_ms();

	harness_raw_login(p->port, db, user, password_of(user), &l);
	print_message("%s@%s: %s sqlstate '%s' \"%s\" after %lld ms\n", user, db,
		      l.ok ? "in" : "refused", l.sqlstate, l.message,
		      harness_now_ms() - t0);
	if (l.ok)
		fail_msg("login %s@%s got in past the limit (expected 53300 \"%s\")", user,
			 db, message);
	if (strcmp(l.sqlstate, "53300") != 0 || strcmp(l.message, message) != 0)
		fail_msg("login %s@%s: got sqlstate '%s' \"%s\", expected 53300 \"%s\"",
			 user, db, l.sqlstate, l.message, message);
	if (harness_now_ms() - t0 > 2000)
		fail_msg("the refusal took %lld ms", harness_now_ms() - t0);
}

/*
 * After a slot freed: retries a login for up to 2 s (pgmux must first see
 * the close); returns the kept session. Fails if it never gets in.
 */
static int login_after_slot_freed(const struct harness_pooler *p, const char *db,
				  const char *user)
{
	long long t0 = harness_now_ms();
	struct harness_login l;
	int fd;

	for (;;) {
		fd = harness_raw_login_keep(p->port, db, user, password_of(user), 5000, &l);
		if (fd >= 0)
			break;
		if (harness_now_ms() - t0 > 2000)
			fail_msg("%s@%s still refused 2 s after a slot freed: sqlstate '%s': %s",
				 user, db, l.sqlstate, l.message);
		harness_sleep_ms(20);
	}
	print_message("%s@%s got in %lld ms after a slot freed\n", user, db,
		      harness_now_ms() - t0);
	return fd;
}

static void close_all(int *fds, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* ---- the pooler's view --------------------------------------------------------- */

/* Row of SHOW POOLS for (db, user); -1 if the pool does not exist. */
static int pool_row(PGresult *r, const char *db, const char *user)
{
	return harness_find_row(r, "database", db, "user", user);
}

/* A SHOW POOLS number of the (db, user) pool; 0 if the pool does not exist. */
static long long pool_value(PGconn *admin, const char *db, const char *user,
			    const char *col)
{
	PGresult *r = harness_query(admin, "SHOW POOLS");
	int row = pool_row(r, db, user);
	long long v = row >= 0 ? harness_value_ll(r, row, col) : 0;

	PQclear(r);
	return v;
}

/* Servers (SHOW SERVERS rows) per database and user, and their total. */
static struct pg_counts pooler_servers(PGconn *admin)
{
	PGresult *r = harness_query(admin, "SHOW SERVERS");
	struct pg_counts c;
	int i;

	memset(&c, 0, sizeof(c));
	for (i = 0; i < PQntuples(r); i++) {
		int d = index_of(harness_value(r, i, "database"), db_name, N_DBS);
		int u = index_of(harness_value(r, i, "user"), user_name, N_USERS);

		if (d >= 0)
			c.db[d]++;
		if (u >= 0)
			c.user[u]++;
		c.total++;
	}
	PQclear(r);
	return c;
}

static void counts_max(struct pg_counts *max, const struct pg_counts *c)
{
	int i;

	for (i = 0; i < N_DBS; i++)
		if (c->db[i] > max->db[i])
			max->db[i] = c->db[i];
	for (i = 0; i < N_USERS; i++)
		if (c->user[i] > max->user[i])
			max->user[i] = c->user[i];
	if (c->total > max->total)
		max->total = c->total;
}

/* ---- pg_stat_activity sampler -------------------------------------------------- */

/* Samples pg_count() every 10 ms on its own connection, keeping maxima. */
struct sampler {
	char conninfo[512];
	pthread_t thread;
	volatile int stop;
	struct pg_counts max;
	volatile int samples;
	char error[512];
};

static void *sampler_main(void *arg)
{
	struct sampler *s = arg;
	PGconn *c = PQconnectdb(s->conninfo);

	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(s->error, sizeof(s->error), "sampler connect: %s",
			 PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	while (!s->stop) {
		struct pg_counts now;

		if (!pg_count(c, &now, s->error, sizeof(s->error)))
			break;
		counts_max(&s->max, &now);
		s->samples++;
		harness_sleep_ms(10);
	}
	PQfinish(c);
	return NULL;
}

static void sampler_start(struct sampler *s)
{
	const struct harness_fixture *fx = harness_fixture();

	memset(s, 0, sizeof(*s));
	harness_conninfo(s->conninfo, sizeof(s->conninfo), fx->port, "postgres",
			 fx->super_user, fx->super_password);
	assert_int_equal(pthread_create(&s->thread, NULL, sampler_main, s), 0);
}

static void sampler_stop(struct sampler *s)
{
	long long t0 = harness_now_ms();

	/* A fast test may end before the first sample: wait for one. */
	while (s->samples == 0 && s->error[0] == '\0' && harness_now_ms() - t0 < 2000)
		harness_sleep_ms(5);
	s->stop = 1;
	pthread_join(s->thread, NULL);
	if (s->error[0] != '\0')
		fail_msg("%s", s->error);
	assert_true(s->samples > 0);
}

/* ---- transaction load -------------------------------------------------------------- */

struct load {
	pthread_barrier_t go;
	volatile int stop;     /* for n_tx == 0: run until set */
	int n_tx;              /* transactions per client; 0: until stop */
	int sleep_ms;          /* pg_sleep in each transaction */
	pthread_mutex_t lock;
	int done;              /* transactions committed */
	int finished;          /* clients whose loop ended */
	int failures;
	char first_error[512];
};

struct load_client {
	struct load *load;
	PGconn *conn;
	char name[160];
	pthread_t thread;
};

static void load_fail(struct load_client *lc, int tx, const char *what)
{
	struct load *l = lc->load;

	pthread_mutex_lock(&l->lock);
	if (l->failures++ == 0)
		snprintf(l->first_error, sizeof(l->first_error), "%s tx %d: %s: %s",
			 lc->name, tx, what, PQerrorMessage(lc->conn));
	pthread_mutex_unlock(&l->lock);
}

static bool load_step(PGconn *c, const char *sql, ExecStatusType want,
		      const char *tag)
{
	PGresult *r = PQexec(c, sql);
	bool ok = PQresultStatus(r) == want &&
		  (tag == NULL || strcmp(PQcmdStatus(r), tag) == 0);

	PQclear(r);
	return ok;
}

/* BEGIN; SELECT pg_sleep(); COMMIT, until n_tx are done or stop is set. */
static void *load_main(void *arg)
{
	struct load_client *lc = arg;
	struct load *l = lc->load;
	char sleep_sql[64];
	int tx;

	snprintf(sleep_sql, sizeof(sleep_sql), "SELECT pg_sleep(%d / 1000.0)",
		 l->sleep_ms);
	pthread_barrier_wait(&l->go);
	for (tx = 0; l->n_tx > 0 ? tx < l->n_tx : !l->stop; tx++) {
		if (!load_step(lc->conn, "BEGIN", PGRES_COMMAND_OK, "BEGIN")) {
			load_fail(lc, tx, "BEGIN");
			break;
		}
		if (!load_step(lc->conn, sleep_sql, PGRES_TUPLES_OK, NULL)) {
			load_fail(lc, tx, sleep_sql);
			break;
		}
		if (!load_step(lc->conn, "COMMIT", PGRES_COMMAND_OK, "COMMIT")) {
			load_fail(lc, tx, "COMMIT");
			break;
		}
		pthread_mutex_lock(&l->lock);
		l->done++;
		pthread_mutex_unlock(&l->lock);
	}
	pthread_mutex_lock(&l->lock);
	l->finished++;
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/*
 * Connects n clients of each (database, user) group that has want[d][u]
 * set (all logged in before any transaction starts), then starts their
 * threads; the caller releases them with load_go().
 */
static struct load_client *load_prepare(const struct harness_pooler *p, struct load *l,
					const bool want[N_DBS][N_USERS], int n, int *n_out)
{
	struct load_client *lc = calloc(N_DBS * N_USERS * (size_t)n, sizeof(*lc));
	int d, u, i, k = 0;

	assert_non_null(lc);
	for (d = 0; d < N_DBS; d++) {
		for (u = 0; u < N_USERS; u++) {
			if (!want[d][u])
				continue;
			for (i = 0; i < n; i++, k++) {
				lc[k].load = l;
				lc[k].conn = harness_connect_pooler(p, db_name(d), user_name(u),
								    password_of(user_name(u)));
				harness_fmt(lc[k].name, sizeof(lc[k].name), "%s@%s #%d",
					    user_name(u), db_name(d), i);
			}
		}
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_barrier_init(&l->go, NULL, (unsigned)k + 1);
	for (i = 0; i < k; i++)
		assert_int_equal(pthread_create(&lc[i].thread, NULL, load_main, &lc[i]), 0);
	*n_out = k;
	return lc;
}

static void load_go(struct load *l)
{
	pthread_barrier_wait(&l->go);
}

static int load_finished(struct load *l)
{
	int n;

	pthread_mutex_lock(&l->lock);
	n = l->finished;
	pthread_mutex_unlock(&l->lock);
	return n;
}

static void load_join(struct load *l, struct load_client *lc, int n)
{
	int i;

	l->stop = 1;
	for (i = 0; i < n; i++)
		pthread_join(lc[i].thread, NULL);
	for (i = 0; i < n; i++)
		PQfinish(lc[i].conn);
	free(lc);
	pthread_barrier_destroy(&l->go);
	pthread_mutex_destroy(&l->lock);
}

/* ---- client limits --------------------------------------------------------------- */

static void test_limits_max_client_conn_refuses_the_next_client_with_53300_console_exempt(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	PGconn *admin;
	int fds[3];

	(void)state;
	start_pooler(&p, "max_client_conn = 3\n", NULL, NULL, NULL);
	/* Three clients of different databases and users fill it. */
	fds[0] = login_keep(&p, fx->db, fx->app_user);
	fds[1] = login_keep(&p, DB2, fx->md5_user);
	fds[2] = login_keep(&p, fx->db, fx->md5_user);
	login_refused(&p, fx->db, fx->app_user,
		      "no more connections allowed (max_client_conn = 3)");
	login_refused(&p, DB2, fx->md5_user,
		      "no more connections allowed (max_client_conn = 3)");

	/* The console still gets in and sees the three. */
	admin = harness_connect_admin(&p);
	assert_int_equal(pool_value(admin, fx->db, fx->app_user, "cl_active"), 1);
	assert_int_equal(pool_value(admin, DB2, fx->md5_user, "cl_active"), 1);
	assert_int_equal(pool_value(admin, fx->db, fx->md5_user, "cl_active"), 1);
	PQfinish(admin);

	/* A client leaves: the next one gets in, and the one after is refused. */
	close(fds[1]);
	fds[1] = login_after_slot_freed(&p, fx->db, fx->app_user);
	login_refused(&p, fx->db, fx->app_user,
		      "no more connections allowed (max_client_conn = 3)");
	close_all(fds, 3);
	harness_pooler_stop(&p, 20);
}

static void test_limits_max_db_client_connections_refuses_per_database_across_users(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	char msg_appdb[256], msg_limdb[256];
	int fds[5];

	(void)state;
	/* Global 2 for appdb; limdb's entry raises it to 3. */
	start_pooler(&p, "max_db_client_connections = 2\n", NULL,
		     "max_db_client_connections=3", NULL);
	harness_fmt(msg_appdb, sizeof(msg_appdb), "too many client connections for "
		    "database \"%s\" (max_db_client_connections = 2)", fx->db);
	harness_fmt(msg_limdb, sizeof(msg_limdb), "too many client connections for "
		    "database \"%s\" (max_db_client_connections = 3)", DB2);

	fds[0] = login_keep(&p, fx->db, fx->app_user);
	fds[1] = login_keep(&p, fx->db, fx->md5_user);
	/* Both users count against the database. */
	login_refused(&p, fx->db, fx->app_user, msg_appdb);
	login_refused(&p, fx->db, fx->md5_user, msg_appdb);

	/* The other database has its own count and its own limit. */
	fds[2] = login_keep(&p, DB2, fx->app_user);
	fds[3] = login_keep(&p, DB2, fx->md5_user);
	fds[4] = login_keep(&p, DB2, fx->app_user);
	login_refused(&p, DB2, fx->md5_user, msg_limdb);

	/* A client of appdb leaves: one more gets in, the next is refused. */
	close(fds[0]);
	fds[0] = login_after_slot_freed(&p, fx->db, fx->md5_user);
	login_refused(&p, fx->db, fx->app_user, msg_appdb);
	close_all(fds, 5);
	harness_pooler_stop(&p, 20);
}

static void test_limits_max_user_client_connections_refuses_per_user_across_databases(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	char msg_app[256], msg_md5[256], users[256];
	int fds[5];

	(void)state;
	/* Global 2; app_md5's [users] entry raises it to 3. */
	harness_fmt(users, sizeof(users), "%s = max_user_client_connections=3\n",
		    fx->md5_user);
	start_pooler(&p, "max_user_client_connections = 2\n", NULL, NULL, users);
	harness_fmt(msg_app, sizeof(msg_app), "too many client connections for "
		    "user \"%s\" (max_user_client_connections = 2)", fx->app_user);
	harness_fmt(msg_md5, sizeof(msg_md5), "too many client connections for "
		    "user \"%s\" (max_user_client_connections = 3)", fx->md5_user);

	/* Both databases count against the user. */
	fds[0] = login_keep(&p, fx->db, fx->app_user);
	fds[1] = login_keep(&p, DB2, fx->app_user);
	login_refused(&p, fx->db, fx->app_user, msg_app);
	login_refused(&p, DB2, fx->app_user, msg_app);

	fds[2] = login_keep(&p, fx->db, fx->md5_user);
	fds[3] = login_keep(&p, DB2, fx->md5_user);
	fds[4] = login_keep(&p, DB2, fx->md5_user);
	login_refused(&p, fx->db, fx->md5_user, msg_md5);

	/* app leaves limdb: app gets back in (through appdb), then no more. */
	close(fds[1]);
	fds[1] = login_after_slot_freed(&p, fx->db, fx->app_user);
	login_refused(&p, DB2, fx->app_user, msg_app);
	close_all(fds, 5);
	harness_pooler_stop(&p, 20);
}

/* ---- server limits ----------------------------------------------------------------- */

#define CAP_CLIENTS 4      /* per (database, user) group */
#define CAP_TX 3
#define CAP_SLEEP_MS 300

/* Limits a test sets: 0 means none. */
struct caps {
	int db[N_DBS];
	int user[N_USERS];
};

static void check_cap(const char *where, const char *what, const char *name, int max,
		      int cap)
{
	print_message("%s: %s %s max %d (limit %d)\n", where, what, name, max, cap);
	if (cap > 0 && max > cap)
		fail_msg("%s saw %d server connections of %s %s, over the limit of %d",
			 where, max, what, name, cap);
}

/*
 * 4 clients for each of the 4 (database, user) pools run 3 transactions of
 * pg_sleep(0.3) each, all at once. pg_stat_activity (sampled every 10 ms) and
 * SHOW SERVERS (every 30 ms) must never show more servers than a limit, every
 * limit must be reached, clients must queue (cl_waiting), and every
 * transaction must commit.
 */
static void run_capped_load(struct harness_pooler *p, const struct caps *caps)
{
	static const bool all[N_DBS][N_USERS] = { { true, true }, { true, true } };
	/* Static: if an assertion jumps out, the threads' memory stays valid. */
	static struct load l;
	static struct sampler s;
	struct load_client *lc;
	struct pg_counts view_max, now;
	PGconn *admin = harness_connect_admin(p);
	long long t0, max_waiting = 0;
	int n, i, polls = 0;

	memset(&view_max, 0, sizeof(view_max));
	memset(&l, 0, sizeof(l));
	l.n_tx = CAP_TX;
	l.sleep_ms = CAP_SLEEP_MS;
	lc = load_prepare(p, &l, all, CAP_CLIENTS, &n);
	sampler_start(&s);
	load_go(&l);
	t0 = harness_now_ms();
	while (load_finished(&l) < n && harness_now_ms() - t0 < 20000) {
		PGresult *r;
		long long waiting = 0;

		now = pooler_servers(admin);
		counts_max(&view_max, &now);
		r = harness_query(admin, "SHOW POOLS");
		for (i = 0; i < PQntuples(r); i++)
			if (index_of(harness_value(r, i, "database"), db_name, N_DBS) >= 0)
				waiting += harness_value_ll(r, i, "cl_waiting");
		PQclear(r);
		if (waiting > max_waiting)
			max_waiting = waiting;
		polls++;
		harness_sleep_ms(30);
	}
	load_join(&l, lc, n);
	sampler_stop(&s);
	print_message("%d clients x %d tx of pg_sleep(%d ms): %d committed in %lld ms; "
		      "%d samples of pg_stat_activity, %d of SHOW SERVERS; max cl_waiting "
		      "%lld\n", n, CAP_TX, CAP_SLEEP_MS, l.done, harness_now_ms() - t0,
		      s.samples, polls, max_waiting);
	if (l.failures)
		fail_msg("%d clients failed; first: %s", l.failures, l.first_error);
	assert_int_equal(l.done, n * CAP_TX);

	for (i = 0; i < N_DBS; i++) {
		check_cap("pg_stat_activity", "database", pg_db_name(i), s.max.db[i],
			  caps->db[i]);
		check_cap("SHOW SERVERS", "database", db_name(i), view_max.db[i],
			  caps->db[i]);
		/* 8 clients on a limited database use all of it. */
		if (caps->db[i] > 0 && s.max.db[i] != caps->db[i])
			fail_msg("database %s never reached its limit of %d servers "
				 "(max %d) under %d clients", db_name(i), caps->db[i],
				 s.max.db[i], 2 * CAP_CLIENTS);
	}
	for (i = 0; i < N_USERS; i++) {
		check_cap("pg_stat_activity", "user", user_name(i), s.max.user[i],
			  caps->user[i]);
		check_cap("SHOW SERVERS", "user", user_name(i), view_max.user[i],
			  caps->user[i]);
		if (caps->user[i] > 0 && s.max.user[i] != caps->user[i])
			fail_msg("user %s never reached its limit of %d servers (max %d) "
				 "under %d clients", user_name(i), caps->user[i],
				 s.max.user[i], 2 * CAP_CLIENTS);
	}
	/* More clients than servers: they queued rather than failed. */
	if (max_waiting <= 0)
		fail_msg("SHOW POOLS never showed a waiting client");

	/* Afterwards too (servers stay open, idle). */
	now = pg_count_now();
	for (i = 0; i < N_DBS; i++)
		if (caps->db[i] > 0)
			assert_in_range(now.db[i], 1, caps->db[i]);
	for (i = 0; i < N_USERS; i++)
		if (caps->user[i] > 0)
			assert_in_range(now.user[i], 1, caps->user[i]);
	PQfinish(admin);
}

static void test_limits_max_db_connections_caps_servers_of_all_pools_of_a_database(void **state)
{
	struct harness_pooler p;
	struct caps caps = { .db = { 3, 2 } };

	(void)state;
	/* Global 2 (limdb); appdb's entry raises it to 3. query_wait_timeout
	 * bounds a starved client instead of letting it hang. */
	start_pooler(&p, "default_pool_size = 5\n"
			 "max_db_connections = 2\n"
			 "query_wait_timeout = 15\n",
		     "max_db_connections=3", NULL, NULL);
	run_capped_load(&p, &caps);
	harness_pooler_stop(&p, 20);
}

static void test_limits_max_user_connections_caps_servers_of_all_pools_of_a_user(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct caps caps = { .user = { 2, 3 } };
	char users[256];

	(void)state;
	/* Global 2 (app); app_md5's [users] entry raises it to 3. */
	harness_fmt(users, sizeof(users), "%s = max_user_connections=3\n", fx->md5_user);
	start_pooler(&p, "default_pool_size = 5\n"
			 "max_user_connections = 2\n"
			 "query_wait_timeout = 15\n",
		     NULL, NULL, users);
	run_capped_load(&p, &caps);
	harness_pooler_stop(&p, 20);
}

/*
 * Fills a limit with the idle servers of the pool (db0, user0): two clients
 * run pg_sleep at once, then stay idle. A client of another pool under the
 * same limit, (db1, user1), must then get a server within 3 s (PgBouncer
 * closes an idle server of the full database or user for it), and the
 * limit must hold in pg_stat_activity throughout.
 */
static void limit_held_by_idle_pool(struct harness_pooler *p, int db0, int user0,
				    int db1, int user1, bool by_user, int limit)
{
	struct sampler s;
	PGconn *c[2], *other;
	PGconn *admin = harness_connect_admin(p);
	char ci[1024], states[64] = "", why[768] = "";
	long long t0, ms;
	int i, n_ok = 0, max;
	bool logged_in, query_ok = false;

	for (i = 0; i < 2; i++)
		c[i] = harness_connect_pooler(p, db_name(db0), user_name(user0),
					      password_of(user_name(user0)));
	for (i = 0; i < 2; i++)
		assert_int_equal(PQsendQuery(c[i], "SELECT pg_sleep(0.3)"), 1);
	for (i = 0; i < 2; i++) {
		if (!harness_collect_results(c[i], states, sizeof(states), 10000, &n_ok) ||
		    n_ok != 1)
			fail_msg("pg_sleep on %s@%s: %d ok, sqlstates '%s'",
				 user_name(user0), db_name(db0), n_ok, states);
	}
	/* The pool holds the whole limit, idle. */
	assert_int_equal(pool_value(admin, db_name(db0), user_name(user0), "sv_idle"),
			 limit);
	assert_int_equal(by_user ? pg_count_now().user[user0] : pg_count_now().db[db0],
			 limit);

	sampler_start(&s);
	t0 = harness_now_ms();
	harness_conninfo(ci, sizeof(ci), p->port, db_name(db1), user_name(user1),
			 password_of(user_name(user1)));
	/* libpq's connect_timeout only takes whole seconds, at least 2. */
	harness_fmt(ci + strlen(ci), sizeof(ci) - strlen(ci), " connect_timeout=3");
	other = PQconnectdb(ci);
	ms = harness_now_ms() - t0;
	logged_in = PQstatus(other) == CONNECTION_OK;
	if (logged_in)
		query_ok = PQsendQuery(other, "SELECT 1") == 1 &&
			   harness_collect_results(other, states, sizeof(states), 3000,
						   &n_ok) && n_ok == 1;
	/* The sampler's thread must be joined before anything can fail. */
	sampler_stop(&s);
	print_message("%s@%s with the %s limit of %d held by idle servers of %s@%s: "
		      "%s after %lld ms\n", user_name(user1), db_name(db1),
		      by_user ? "user" : "database", limit, user_name(user0),
		      db_name(db0), logged_in ? "logged in" : PQerrorMessage(other), ms);
	max = by_user ? s.max.user[user0] : s.max.db[db0];
	print_message("pg_stat_activity max for the %s: %d\n",
		      by_user ? "user" : "database", max);
	/* Decided first, reported after the connections are closed. */
	if (!logged_in)
		harness_fmt(why, sizeof(why), "%s@%s could not log in within 3 s while the "
			    "%s limit of %d was held by idle servers of %s@%s (no server "
			    "freed for it): %.200s", user_name(user1), db_name(db1),
			    by_user ? "user" : "database", limit, user_name(user0),
			    db_name(db0), PQerrorMessage(other));
	else if (!query_ok)
		harness_fmt(why, sizeof(why), "SELECT 1 on %s@%s failed: %d ok, "
			    "sqlstates '%s'", user_name(user1), db_name(db1), n_ok, states);
	else if (max > limit)
		harness_fmt(why, sizeof(why), "%d server connections under a limit of %d",
			    max, limit);
	PQfinish(other);
	for (i = 0; i < 2; i++)
		PQfinish(c[i]);
	PQfinish(admin);
	if (why[0] != '\0')
		fail_msg("%s", why);
}

static void test_limits_max_db_connections_held_by_idle_servers_of_another_pool_frees_one(void **state)
{
	struct harness_pooler p;

	(void)state;
	start_pooler(&p, "default_pool_size = 5\nmax_db_connections = 2\n", NULL, NULL,
		     NULL);
	/* app's pool on appdb holds both; app_md5 on appdb needs one. */
	limit_held_by_idle_pool(&p, 0, 0, 0, 1, false, 2);
	harness_pooler_stop(&p, 20);
}

static void test_limits_max_user_connections_held_by_idle_servers_of_another_pool_frees_one(void **state)
{
	struct harness_pooler p;

	(void)state;
	start_pooler(&p, "default_pool_size = 5\nmax_user_connections = 2\n", NULL, NULL,
		     NULL);
	/* app's pool on appdb holds both; app on limdb needs one. */
	limit_held_by_idle_pool(&p, 0, 0, 1, 0, true, 2);
	harness_pooler_stop(&p, 20);
}

/* ---- min_pool_size ------------------------------------------------------------------ */

/* Polls SHOW POOLS until the pool has want idle servers; returns the ms. */
static long long wait_sv_idle(PGconn *admin, const char *db, const char *user, int want,
			      long long timeout_ms)
{
	long long t0 = harness_now_ms(), idle;

	for (;;) {
		idle = pool_value(admin, db, user, "sv_idle");
		if (idle == want)
			return harness_now_ms() - t0;
		if (harness_now_ms() - t0 > timeout_ms)
			fail_msg("pool %s@%s has sv_idle %lld (sv_login %lld, sv_active %lld) "
				 "%lld ms on, expected %d", user, db, idle,
				 pool_value(admin, db, user, "sv_login"),
				 pool_value(admin, db, user, "sv_active"), timeout_ms, want);
		harness_sleep_ms(20);
	}
}

/* SHOW SERVERS of (db, user) are exactly PostgreSQL's backends for them. */
static void servers_match_pg(PGconn *admin, int d, int u, int want)
{
	PGconn *super = harness_connect_pg_super("postgres");
	const char *params[2] = { pg_db_name(d), user_name(u) };
	PGresult *r = harness_query(admin, "SHOW SERVERS");
	PGresult *pg = PQexecParams(super,
		"SELECT pid FROM pg_stat_activity WHERE datname = $1 AND usename = $2 "
		"AND backend_type = 'client backend'", 2, NULL, params, NULL, NULL, 0);
	int i, n = 0;

	assert_int_equal(PQresultStatus(pg), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(pg), want);
	for (i = 0; i < PQntuples(r); i++) {
		const char *pid;
		int j;
		bool found = false;

		if (strcmp(harness_value(r, i, "database"), db_name(d)) != 0 ||
		    strcmp(harness_value(r, i, "user"), user_name(u)) != 0)
			continue;
		n++;
		assert_string_equal(harness_value(r, i, "state"), "idle");
		pid = harness_value(r, i, "remote_pid");
		for (j = 0; j < PQntuples(pg); j++)
			if (strcmp(PQgetvalue(pg, j, 0), pid) == 0)
				found = true;
		if (!found)
			fail_msg("SHOW SERVERS lists %s@%s remote_pid %s, which PostgreSQL "
				 "does not have", user_name(u), db_name(d), pid);
	}
	assert_int_equal(n, want);
	PQclear(pg);
	PQclear(r);
	PQfinish(super);
}

static void test_limits_min_pool_size_opens_idle_servers_once_the_pool_exists(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct pg_counts c;
	PGconn *admin, *super;
	PGresult *r;
	long long ms;
	int fds[2];
	char sql[256], *killed;

	(void)state;
	/* Global 3 (appdb); limdb's entry says 2. */
	start_pooler(&p, "default_pool_size = 5\nmin_pool_size = 3\n", NULL,
		     "min_pool_size=2", NULL);
	admin = harness_connect_admin(&p);

	/* No login yet, so no pool: the janitor opens nothing. */
	harness_sleep_ms(TICK_MS + 200);
	r = harness_query(admin, "SHOW POOLS");
	assert_int_equal(pool_row(r, fx->db, fx->app_user), -1);
	PQclear(r);
	assert_int_equal(pg_count_now().total, 0);

	/* The first login makes the pool; the janitor fills it to 3 idle. */
	fds[0] = login_keep(&p, fx->db, fx->app_user);
	ms = wait_sv_idle(admin, fx->db, fx->app_user, 3, TICK_MS + SLACK_MS + 1000);
	print_message("appdb: 3 idle servers %lld ms after the first login\n", ms);
	fds[1] = login_keep(&p, DB2, fx->app_user);
	ms = wait_sv_idle(admin, DB2, fx->app_user, 2, TICK_MS + SLACK_MS + 1000);
	print_message("limdb: 2 idle servers %lld ms after the first login\n", ms);
	servers_match_pg(admin, 0, 0, 3);
	servers_match_pg(admin, 1, 0, 2);
	assert_int_equal(pool_value(admin, fx->db, fx->app_user, "sv_active"), 0);

	/* A server dies while the pool has a client: the janitor replaces it. */
	super = harness_connect_pg_super("postgres");
	harness_fmt(sql, sizeof(sql),
		    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
		    "WHERE datname = '%s' AND usename = '%s' LIMIT 1", fx->db, fx->app_user);
	killed = harness_scalar(super, sql);
	assert_non_null(killed);
	assert_string_equal(killed, "t");
	free(killed);
	PQfinish(super);
	{
		long long t0 = harness_now_ms();

		for (;;) {
			c = pg_count_now();
			if (c.db[0] == 3 &&
			    pool_value(admin, fx->db, fx->app_user, "sv_idle") == 3)
				break;
			if (harness_now_ms() - t0 > TICK_MS + SLACK_MS + 1000)
				fail_msg("%d backends for appdb (SHOW POOLS sv_idle %lld) %lld ms "
					 "after one was terminated, expected min_pool_size 3",
					 c.db[0],
					 pool_value(admin, fx->db, fx->app_user, "sv_idle"),
					 harness_now_ms() - t0);
			harness_sleep_ms(20);
		}
		print_message("appdb back to 3 servers %lld ms after one was terminated\n",
			      harness_now_ms() - t0);
	}
	servers_match_pg(admin, 0, 0, 3);

	/* The clients leave; the servers stay, and no more are opened. */
	close_all(fds, 2);
	harness_sleep_ms(TICK_MS + 300);
	assert_int_equal(pool_value(admin, fx->db, fx->app_user, "sv_idle"), 3);
	assert_int_equal(pool_value(admin, DB2, fx->app_user, "sv_idle"), 2);
	c = pg_count_now();
	assert_int_equal(c.db[0], 3);
	assert_int_equal(c.db[1], 2);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/* ---- reserve pool --------------------------------------------------------------------- */

#define RES_POOL 2
#define RES_RESERVE 2

struct pool_watch {
	long long max_active, max_total, max_waiting;
	int polls;
};

/* Watches SHOW POOLS of appdb/app until the load's clients finish or ms pass. */
static void watch_pool(PGconn *admin, struct load *l, int n_clients, long long ms,
		       struct pool_watch *w)
{
	const struct harness_fixture *fx = harness_fixture();
	long long t0 = harness_now_ms();

	memset(w, 0, sizeof(*w));
	while (harness_now_ms() - t0 < ms && load_finished(l) < n_clients) {
		PGresult *r = harness_query(admin, "SHOW POOLS");
		int row = pool_row(r, fx->db, fx->app_user);

		if (row >= 0) {
			long long a = harness_value_ll(r, row, "sv_active");
			long long t = a + harness_value_ll(r, row, "sv_idle") +
				      harness_value_ll(r, row, "sv_login");
			long long wt = harness_value_ll(r, row, "cl_waiting");

			w->max_active = a > w->max_active ? a : w->max_active;
			w->max_total = t > w->max_total ? t : w->max_total;
			w->max_waiting = wt > w->max_waiting ? wt : w->max_waiting;
		}
		PQclear(r);
		w->polls++;
		harness_sleep_ms(25);
	}
}

static void test_limits_reserve_pool_serves_clients_waiting_past_reserve_pool_timeout(void **state)
{
	static const bool app_appdb[N_DBS][N_USERS] = { { true, false }, { false, false } };
	/* Static: if an assertion jumps out, the threads' memory stays valid. */
	static struct load light, heavy;
	static struct sampler s;
	struct harness_pooler p;
	struct load_client *lc;
	struct pool_watch w;
	PGconn *admin;
	int n;

	(void)state;
	memset(&light, 0, sizeof(light));
	light.sleep_ms = 100;
	memset(&heavy, 0, sizeof(heavy));
	heavy.sleep_ms = 300;
	start_pooler(&p, "default_pool_size = 2\n"
			 "reserve_pool_size = 2\n"
			 "reserve_pool_timeout = 0.5\n",
		     NULL, NULL, NULL);
	admin = harness_connect_admin(&p);

	/* 3 clients of 0.1 s transactions on 2 servers: nobody waits 0.5 s,
	 * so the reserve stays closed. */
	lc = load_prepare(&p, &light, app_appdb, 3, &n);
	sampler_start(&s);
	load_go(&light);
	watch_pool(admin, &light, n, 2500, &w);
	load_join(&light, lc, n);
	sampler_stop(&s);
	print_message("light load: %d tx; SHOW POOLS max sv_active %lld, max servers "
		      "%lld, max cl_waiting %lld; pg_stat_activity max %d\n", light.done,
		      w.max_active, w.max_total, w.max_waiting, s.max.db[0]);
	if (light.failures)
		fail_msg("%d clients failed; first: %s", light.failures, light.first_error);
	assert_true(light.done > 0);
	if (w.max_total > RES_POOL || s.max.db[0] > RES_POOL)
		fail_msg("reserve servers opened (SHOW POOLS %lld, PostgreSQL %d) though no "
			 "client waited reserve_pool_timeout", w.max_total, s.max.db[0]);

	/* 12 clients of 0.3 s transactions on 2 servers: the queue's head waits
	 * over a second, so the janitor opens the reserve, one a second. */
	lc = load_prepare(&p, &heavy, app_appdb, 12, &n);
	sampler_start(&s);
	load_go(&heavy);
	watch_pool(admin, &heavy, n, 4500, &w);
	load_join(&heavy, lc, n);
	sampler_stop(&s);
	print_message("heavy load: %d tx; SHOW POOLS max sv_active %lld, max servers "
		      "%lld, max cl_waiting %lld (%d polls); pg_stat_activity max %d\n",
		      heavy.done, w.max_active, w.max_total, w.max_waiting, w.polls,
		      s.max.db[0]);
	if (heavy.failures)
		fail_msg("%d clients failed; first: %s", heavy.failures, heavy.first_error);
	assert_true(w.max_waiting > 0);
	if (w.max_active <= RES_POOL)
		fail_msg("SHOW POOLS never showed sv_active above pool_size %d under a "
			 "saturating load (max %lld)", RES_POOL, w.max_active);
	if (w.max_total > RES_POOL + RES_RESERVE || s.max.db[0] > RES_POOL + RES_RESERVE)
		fail_msg("%lld servers in SHOW POOLS, %d in PostgreSQL: over pool_size + "
			 "reserve_pool_size = %d", w.max_total, s.max.db[0],
			 RES_POOL + RES_RESERVE);
	if (s.max.db[0] != RES_POOL + RES_RESERVE)
		fail_msg("the reserve was not used up under a saturating load: at most %d "
			 "servers in PostgreSQL, expected %d", s.max.db[0],
			 RES_POOL + RES_RESERVE);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/* ---- listen_backlog and the TCP keys, as the kernel reports them ---------- */

/* First line of `ss` output for a filter, "" if none. */
static void ss_line(const char *args, char *out, size_t len)
{
	char cmd[512];
	FILE *f;

	harness_fmt(cmd, sizeof(cmd), "ss -H %s 2>/dev/null", args);
	f = popen(cmd, "r");
	assert_non_null(f);
	out[0] = '\0';
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	pclose(f);
}

static void test_limits_listen_backlog_and_tcp_keepalive_reach_the_kernel(void **state)
{
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = { .settings = "listen_backlog = 77\ntcp_keepalive = 1\n"
						      "tcp_keepidle = 600\ntcp_user_timeout = 30000\n" };
	char args[128], line[512];
	unsigned recvq = 0, sendq = 0;
	PGconn *c;

	(void)state;
	harness_pooler_start(&p, &cfg);
	/* A listening socket's Send-Q is its backlog. */
	harness_fmt(args, sizeof(args), "-ltn 'sport = :%d'", p.port);
	ss_line(args, line, sizeof(line));
	print_message("listener: %s", line);
	assert_int_equal(sscanf(line, "LISTEN %u %u", &recvq, &sendq), 2);
	assert_int_equal(sendq, 77);

	/* pgmux's end of a client connection runs the keepalive timer, set
	 * to tcp_keepidle (600 s shows as 9min59sec or 10min). */
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(c, "SELECT 1");
	harness_fmt(args, sizeof(args), "-tno state established 'sport = :%d'", p.port);
	/* While sent bytes await their ACK the retransmit timer shows instead. */
	for (int i = 0; i < 40; i++) {
		ss_line(args, line, sizeof(line));
		if (strstr(line, "keepalive"))
			break;
		usleep(50000);
	}
	print_message("client socket: %s", line);
	assert_non_null(strstr(line, "timer:(keepalive,"));
	assert_true(strstr(line, "keepalive,9min") || strstr(line, "keepalive,10min"));
	PQfinish(c);
	harness_pooler_stop(&p, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_limits_max_client_conn_refuses_the_next_client_with_53300_console_exempt,
					  harness_teardown),
		cmocka_unit_test_teardown(test_limits_max_db_client_connections_refuses_per_database_across_users,
					  harness_teardown),
		cmocka_unit_test_teardown(test_limits_max_user_client_connections_refuses_per_user_across_databases,
					  harness_teardown),
		cmocka_unit_test_teardown(test_limits_max_db_connections_caps_servers_of_all_pools_of_a_database,
					  harness_teardown),
		cmocka_unit_test_teardown(test_limits_max_user_connections_caps_servers_of_all_pools_of_a_user,
					  harness_teardown),
		cmocka_unit_test_teardown(test_limits_max_db_connections_held_by_idle_servers_of_another_pool_frees_one,
					  harness_teardown),
		cmocka_unit_test_teardown(test_limits_max_user_connections_held_by_idle_servers_of_another_pool_frees_one,
					  harness_teardown),
		cmocka_unit_test_teardown(test_limits_min_pool_size_opens_idle_servers_once_the_pool_exists,
					  harness_teardown),
		cmocka_unit_test_teardown(test_limits_reserve_pool_serves_clients_waiting_past_reserve_pool_timeout,
					  harness_teardown),
		cmocka_unit_test_teardown(test_limits_listen_backlog_and_tcp_keepalive_reach_the_kernel,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_limits", tests, group_setup,
					   group_teardown);
}
