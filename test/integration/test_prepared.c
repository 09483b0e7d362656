/*
 * test_prepared.c: protocol-level named prepared statements in transaction
 * mode (prepared.c), against the real PostgreSQL fixture:
 *   - pgbench -M prepared, 100 clients on a pool of 10: zero failures, the
 *     pool cap held, and SHOW STATS showing fewer server parses than
 *     client parses;
 *   - statements follow their clients onto other servers (the backend pid
 *     changes, results stay right), also with 30 threads on a pool of 3,
 *     in statement mode, and after a server was terminated;
 *   - the unnamed statement passes through untouched;
 *   - Close then Parse of the same name; Describe of a statement and of a
 *     portal; a Parse error mid-pipeline (raw protocol and libpq pipeline
 *     mode) leaves names and servers as PostgreSQL would; a duplicate name
 *     is 42P05 and aborts a transaction block as PostgreSQL does;
 *   - the LRU: max_prepared_statements = 3 and 10 statements keep
 *     pg_prepared_statements at 3 or fewer, and all 10 keep working;
 *   - max_prepared_statements = 0 and session mode pass names through;
 *   - DEALLOCATE ALL and DISCARD ALL clear the client's names;
 *   - DDL that changes a result type: 0A000 is retried outside a
 *     transaction block, and inside one the next transaction works,
 *     without RECONNECT;
 *   - a Bind larger than pkt_buf, and a pipeline sent one byte at a time;
 *   - SHOW CLIENTS / SHOW SERVERS prepared_statements.
 * libpq 15 has no PQclosePrepared, so Close (and named portals) go over a
 * raw protocol session.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#define ANSWER_MS 10000

static char pgbench_bin[HARNESS_PATH_MAX];

static const char *const tx_settings = "pool_mode = transaction\n"
				       "default_pool_size = 2\n";

/* ---- helpers ----------------------------------------------------------- */

static void start(struct harness_pooler *p, const char *settings)
{
	struct harness_pooler_cfg cfg = { .settings = settings };

	harness_wait_no_server_conns(harness_fixture()->db, harness_fixture()->app_user, 15);
	harness_pooler_start(p, &cfg);
}

static void skip_for_pgbouncer(void)
{
	/* PgBouncer 1.18 (Debian) has no prepared statements in transaction
	 * mode; the same tests would only show that. */
	if (harness_is_pgbouncer())
		skip();
}

static PGconn *app(const struct harness_pooler *p)
{
	return harness_connect_pooler(p, NULL, NULL, NULL);
}

static void prepare(PGconn *c, const char *name, const char *sql, int nparams)
{
	PGresult *r = PQprepare(c, name, sql, nparams, NULL);

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("PQprepare %s: %s", name, PQerrorMessage(c));
	PQclear(r);
}

/* Runs a prepared statement; returns the first value of the first row
 * (malloc'd) or fails. */
static char *exec_value(PGconn *c, const char *name, int n, const char *const *params)
{
	PGresult *r = PQexecPrepared(c, name, n, params, NULL, NULL, 0);
	char *v;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
		fail_msg("exec %s: %s %s", name, PQresStatus(PQresultStatus(r)),
			 PQerrorMessage(c));
	v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

/* Runs a prepared statement and checks its first value. */
static void expect_exec(PGconn *c, const char *name, int n, const char *const *params,
			const char *want)
{
	char *v = exec_value(c, name, n, params);

	assert_string_equal(v, want);
	free(v);
}

/* The SQLSTATE a prepared execution fails with ("" if it works). */
static const char *exec_state(PGconn *c, const char *name, int n, const char *const *params,
			      char *buf, size_t len)
{
	PGresult *r = PQexecPrepared(c, name, n, params, NULL, NULL, 0);

	snprintf(buf, len, "%s", harness_sqlstate(r));
	PQclear(r);
	return buf;
}

static long long admin_sum(const struct harness_pooler *p, const char *show, const char *type,
			   const char *col)
{
	PGconn *a = harness_connect_admin(p);
	PGresult *r = harness_query(a, show);
	long long sum = 0;

	for (int i = 0; i < PQntuples(r); i++) {
		if (type && strcmp(harness_value(r, i, "type"), type) != 0)
			continue;
		if (strcmp(harness_value(r, i, "database"), harness_fixture()->db) != 0)
			continue;
		sum += harness_value_ll(r, i, col);
	}
	PQclear(r);
	PQfinish(a);
	return sum;
}

/* A column of SHOW STATS for the test database. */
static long long stats_value(const struct harness_pooler *p, const char *col)
{
	return harness_admin_ll(p, "SHOW STATS", "database", harness_fixture()->db, col);
}

/* ---- raw protocol --------------------------------------------------------- */

struct wire {
	unsigned char *b;
	size_t len, cap;
};

static void w_bytes(struct wire *w, const void *p, size_t n)
{
	if (w->len + n > w->cap) {
		w->cap = (w->len + n) * 2;
		w->b = realloc(w->b, w->cap);
		assert_non_null(w->b);
	}
	memcpy(w->b + w->len, p, n);
	w->len += n;
}

static void w_u8(struct wire *w, uint8_t v)
{
	w_bytes(w, &v, 1);
}

static void w_u16(struct wire *w, uint16_t v)
{
	unsigned char b[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	w_bytes(w, b, 2);
}

static void w_u32(struct wire *w, uint32_t v)
{
	unsigned char b[4];

	harness_put32(b, v);
	w_bytes(w, b, 4);
}

static void w_str(struct wire *w, const char *s)
{
	w_bytes(w, s, strlen(s) + 1);
}

static size_t w_begin(struct wire *w, uint8_t type)
{
	size_t at = w->len;

	w_u8(w, type);
	w_u32(w, 0);
	return at;
}

/* Patches the length of the message begun at at. */
static void w_end(struct wire *w, size_t at)
{
	harness_put32(w->b + at + 1, (uint32_t)(w->len - at - 1));
}

static void w_parse(struct wire *w, const char *name, const char *sql)
{
	size_t at = w_begin(w, 'P');

	w_str(w, name);
	w_str(w, sql);
	w_u16(w, 0);
	w_end(w, at);
}

/* Bind with text parameters and text results. */
static void w_bind(struct wire *w, const char *portal, const char *stmt, int n,
		   const char *const *params)
{
	size_t at = w_begin(w, 'B');

	w_str(w, portal);
	w_str(w, stmt);
	w_u16(w, 0);
	w_u16(w, (uint16_t)n);
	for (int i = 0; i < n; i++) {
		w_u32(w, (uint32_t)strlen(params[i]));
		w_bytes(w, params[i], strlen(params[i]));
	}
	w_u16(w, 0);
	w_end(w, at);
}

static void w_target(struct wire *w, uint8_t type, uint8_t kind, const char *name)
{
	size_t at = w_begin(w, type);

	w_u8(w, kind);
	w_str(w, name);
	w_end(w, at);
}

static void w_execute(struct wire *w, const char *portal)
{
	size_t at = w_begin(w, 'E');

	w_str(w, portal);
	w_u32(w, 0);
	w_end(w, at);
}

static void w_sync(struct wire *w)
{
	w_end(w, w_begin(w, 'S'));
}

static void w_flush(struct wire *w)
{
	w_end(w, w_begin(w, 'H'));
}

static void w_query(struct wire *w, const char *sql)
{
	size_t at = w_begin(w, 'Q');

	w_str(w, sql);
	w_end(w, at);
}

static int raw_login(const struct harness_pooler *p)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_login login;
	int fd = harness_raw_login_keep(p->port, fx->db, fx->app_user, fx->app_password,
					ANSWER_MS, &login);
	int one = 1;

	if (fd < 0)
		fail_msg("raw login failed: %s %s", login.sqlstate, login.message);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Sends w (all at once, or one byte at a time with a pause between, so
 * pgmux sees every message split across reads), then empties it. */
static void w_send(int fd, struct wire *w, bool slow)
{
	size_t off = 0;

	while (off < w->len) {
		size_t n = slow ? 1 : w->len - off;

		if (!harness_raw_write_all(fd, w->b + off, n))
			fail_msg("send: %s", strerror(errno));
		off += n;
		if (slow)
			usleep(200);
	}
	w->len = 0;
}

/* What came back: message types in order ("12TDCZ"), the SQLSTATE of
 * each ErrorResponse, the first column of each DataRow. */
struct answers {
	char types[512];
	char states[256];
	char values[4096];
	size_t value_bytes; /* of the first column of the last DataRow */
};

/* Reads until the nth ReadyForQuery. */
static void read_answers(int fd, int n_ready, struct answers *a)
{
	memset(a, 0, sizeof(*a));
	while (n_ready > 0) {
		unsigned char h[5];
		unsigned char *b;
		uint32_t len;
		size_t t = strlen(a->types);

		/* Not harness_raw_read_msg: a DataRow here may be far larger
		 * than its 4 KB body. */
		if (!harness_raw_read_exact(fd, h, 5, ANSWER_MS))
			fail_msg("no answer in %d ms; got \"%s\" so far", ANSWER_MS, a->types);
		len = harness_get32(h + 1) - 4;
		b = malloc(len + 1);
		assert_non_null(b);
		if (len && !harness_raw_read_exact(fd, b, len, ANSWER_MS))
			fail_msg("short message '%c'", h[0]);
		b[len] = 0;
		if (t + 1 < sizeof(a->types))
			a->types[t] = (char)h[0];
		if (h[0] == 'E') {
			struct harness_wire_error e;
			size_t used = strlen(a->states);

			harness_raw_error_fields(b, len, &e);
			snprintf(a->states + used, sizeof(a->states) - used, "%s%s",
				 used ? "," : "", e.sqlstate);
		} else if (h[0] == 'D' && len >= 6) {
			int32_t vlen = (int32_t)harness_get32(b + 2);

			a->value_bytes = vlen > 0 ? (size_t)vlen : 0;
			snprintf(a->values + strlen(a->values),
				 sizeof(a->values) - strlen(a->values), "%s%.*s",
				 a->values[0] ? "," : "", vlen > 64 ? 64 : (vlen < 0 ? 0 : vlen),
				 b + 6);
		} else if (h[0] == 'Z') {
			n_ready--;
		}
		free(b);
	}
}

/* ---- pgbench -------------------------------------------------------------- */

static int group_setup(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	char port[16], pw[128], log[] = "/tmp/pgmux-it-prepared-init.log";
	char *env[] = { pw, NULL };
	char *argv[] = { pgbench_bin, "-i", "-s", "1", "-q", "-h", (char *)fx->host,
			 "-p", port, "-U", (char *)fx->app_user, (char *)fx->db, NULL };
	int rc;

	(void)state;
	harness_fmt(pgbench_bin, sizeof(pgbench_bin), "%s/pgbench", fx->bindir);
	harness_fmt(port, sizeof(port), "%d", fx->port);
	harness_fmt(pw, sizeof(pw), "PGPASSWORD=%s", fx->app_password);
	rc = harness_run(argv, env, NULL, log, log, 120);
	if (rc != 0)
		fail_msg("pgbench -i exited %d: %s", rc, harness_read_file(log, NULL));
	remove(log);
	return 0;
}

static double report_value(const char *out, const char *label)
{
	const char *s = strstr(out, label);

	return s ? strtod(s + strlen(label), NULL) : -1;
}

/*
 * pgbench -M prepared with one thread for 100 clients: pgbench prepares
 * each statement on first use with a blocking PQprepare, which pgmux
 * answers without a server once the statement is known, so a thread never
 * waits on a server its other clients hold.
 */
static void run_pgbench(bool select_only)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct harness_poller pl;
	char port[16], pw[128], out[HARNESS_PATH_MAX], err[HARNESS_PATH_MAX];
	char *env[] = { pw, "PGCONNECT_TIMEOUT=30", NULL };
	char *argv[24];
	char *text, *errs;
	double failed, done;
	int n = 0, rc, max;
	long long cparse, sparse, binds;

	skip_for_pgbouncer();
	harness_raise_nofile(4096);
	start(&p, "pool_mode = transaction\ndefault_pool_size = 10\nmax_client_conn = 500\n");
	harness_fmt(port, sizeof(port), "%d", p.port);
	harness_fmt(pw, sizeof(pw), "PGPASSWORD=%s", fx->app_password);
	harness_path(out, sizeof(out), &p, "pgbench.out");
	harness_path(err, sizeof(err), &p, "pgbench.err");
	argv[n++] = pgbench_bin;
	argv[n++] = "-h";
	argv[n++] = "127.0.0.1";
	argv[n++] = "-p";
	argv[n++] = port;
	argv[n++] = "-U";
	argv[n++] = (char *)fx->app_user;
	argv[n++] = "-c";
	argv[n++] = "100";
	argv[n++] = "-j";
	argv[n++] = "1";
	argv[n++] = "-T";
	argv[n++] = "8";
	argv[n++] = "-M";
	argv[n++] = "prepared";
	if (select_only)
		argv[n++] = "-S";
	argv[n++] = (char *)fx->db;
	argv[n] = NULL;

	harness_poller_start(&pl, fx->db, fx->app_user);
	rc = harness_run(argv, env, NULL, out, err, 120);
	max = harness_poller_stop(&pl);
	text = harness_read_file(out, NULL);
	errs = harness_read_file(err, NULL);
	failed = report_value(text, "number of failed transactions: ");
	done = report_value(text, "number of transactions actually processed: ");
	cparse = stats_value(&p, "total_client_parse_count");
	sparse = stats_value(&p, "total_server_parse_count");
	binds = stats_value(&p, "total_bind_count");
	print_message("pgbench -M prepared%s -c 100 -j 1, pool 10: rc %d, %.0f transactions, "
		      "%.0f failed, tps %.0f, max %d server connections; client parses %lld, "
		      "server parses %lld, binds %lld\n",
		      select_only ? " -S" : "", rc, done, failed, report_value(text, "tps = "),
		      max, cparse, sparse, binds);
	if (rc != 0 || failed != 0 || done <= 0)
		fail_msg("pgbench exited %d, failed %.0f, processed %.0f\nstdout:\n%.3000s\n"
			 "stderr:\n%.3000s", rc, failed, done, text, errs);
	if (strstr(errs, "aborted") || strstr(errs, "error") || strstr(errs, "ERROR"))
		fail_msg("pgbench reported errors:\n%.3000s", errs);
	assert_true(max <= 10);
	/* Every client prepares each of its statements once; servers need
	 * each statement once per server (10 of them). */
	assert_true(cparse >= 100);
	assert_true(sparse <= 10 * (select_only ? 1 : 7)); /* TPC-B: 7 statements */
	assert_true(binds >= (long long)done);
	assert_true(admin_sum(&p, "SHOW SERVERS", "S", "prepared_statements") > 0);
	free(text);
	free(errs);
	harness_pooler_stop(&p, 30);
}

static void test_prepared_pgbench_tpcb_100_clients_pool_10(void **state)
{
	(void)state;
	run_pgbench(false);
}

static void test_prepared_pgbench_select_only_100_clients_pool_10(void **state)
{
	(void)state;
	run_pgbench(true);
}

/* ---- statements across servers ------------------------------------------ */

/*
 * Client A prepares and runs on server 1; client B then holds that server
 * in a transaction, so A's next execution runs on server 2, where pgmux
 * prepares the statement first.
 */
static void test_prepared_statement_follows_client_to_other_server(void **state)
{
	struct harness_pooler p;
	PGconn *a, *b;
	char *pid1, *pid2, *v;
	const char *param[1] = { "41" };

	(void)state;
	skip_for_pgbouncer();
	start(&p, tx_settings);
	a = app(&p);
	b = app(&p);
	prepare(a, "s1", "SELECT pg_backend_pid()::text, $1::int + 1", 1);
	pid1 = exec_value(a, "s1", 1, param);
	harness_exec(b, "BEGIN");
	harness_exec(b, "SELECT 1"); /* b holds the server a just used */
	pid2 = exec_value(a, "s1", 1, param);
	if (strcmp(pid1, pid2) == 0)
		fail_msg("both executions ran on backend %s", pid1);
	{
		PGresult *r = PQexecPrepared(a, "s1", 1, param, NULL, NULL, 0);

		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		assert_string_equal(PQgetvalue(r, 0, 1), "42");
		PQclear(r);
	}
	/* b can use a's statement text under its own name on server 1. */
	prepare(b, "other_name", "SELECT pg_backend_pid()::text, $1::int + 1", 1);
	v = exec_value(b, "other_name", 1, param);
	assert_string_equal(v, pid1);
	free(v);
	harness_exec(b, "COMMIT");
	/* Both servers have it once; both clients have one name. */
	assert_int_equal(admin_sum(&p, "SHOW SERVERS", "S", "prepared_statements"), 2);
	assert_int_equal(admin_sum(&p, "SHOW CLIENTS", "C", "prepared_statements"), 2);
	free(pid1);
	free(pid2);
	PQfinish(a);
	PQfinish(b);
	harness_pooler_stop(&p, 10);
}

struct spread {
	char conninfo[512];
	pthread_mutex_t lock;
	int failures;
	char first_error[512];
	int multi_pid_clients; /* clients that saw more than one backend */
};

static void spread_fail(struct spread *sp, const char *what, PGconn *c)
{
	pthread_mutex_lock(&sp->lock);
	if (sp->failures++ == 0)
		snprintf(sp->first_error, sizeof(sp->first_error), "%s: %s", what,
			 c ? PQerrorMessage(c) : "");
	pthread_mutex_unlock(&sp->lock);
}

/* Each thread prepares a shared text and its own, then runs both 40 times
 * with values it checks, in and out of transaction blocks. */
static void *spread_worker(void *arg)
{
	struct spread *sp = arg;
	static int next_id;
	int id = __atomic_fetch_add(&next_id, 1, __ATOMIC_SEQ_CST);
	PGconn *c = PQconnectdb(sp->conninfo);
	char own[128], first_pid[32] = "";
	bool multi = false;
	PGresult *r;

	if (PQstatus(c) != CONNECTION_OK) {
		spread_fail(sp, "connect", c);
		PQfinish(c);
		return NULL;
	}
	snprintf(own, sizeof(own), "SELECT pg_backend_pid()::text, $1::int * %d", id + 2);
	r = PQprepare(c, "shared", "SELECT pg_backend_pid()::text, $1::int + 1000", 1, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		spread_fail(sp, "prepare shared", c);
	PQclear(r);
	r = PQprepare(c, "own", own, 1, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		spread_fail(sp, "prepare own", c);
	PQclear(r);
	for (int i = 0; i < 40; i++) {
		char v[16], want1[32], want2[32];
		const char *params[1] = { v };
		bool block = i % 3 == 0;

		snprintf(v, sizeof(v), "%d", i);
		snprintf(want1, sizeof(want1), "%d", i + 1000);
		snprintf(want2, sizeof(want2), "%d", i * (id + 2));
		if (block)
			PQclear(PQexec(c, "BEGIN"));
		r = PQexecPrepared(c, "shared", 1, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK ||
		    strcmp(PQgetvalue(r, 0, 1), want1) != 0) {
			spread_fail(sp, "exec shared", c);
			PQclear(r);
			break;
		}
		if (!first_pid[0])
			snprintf(first_pid, sizeof(first_pid), "%s", PQgetvalue(r, 0, 0));
		else if (strcmp(first_pid, PQgetvalue(r, 0, 0)) != 0)
			multi = true;
		PQclear(r);
		r = PQexecPrepared(c, "own", 1, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK ||
		    strcmp(PQgetvalue(r, 0, 1), want2) != 0) {
			spread_fail(sp, "exec own", c);
			PQclear(r);
			break;
		}
		PQclear(r);
		if (block)
			PQclear(PQexec(c, "COMMIT"));
	}
	if (multi) {
		pthread_mutex_lock(&sp->lock);
		sp->multi_pid_clients++;
		pthread_mutex_unlock(&sp->lock);
	}
	PQfinish(c);
	return NULL;
}

static void test_prepared_many_clients_on_pool_of_3(void **state)
{
	struct harness_pooler p;
	struct spread sp;
	pthread_t th[30];

	(void)state;
	skip_for_pgbouncer();
	start(&p, "pool_mode = transaction\ndefault_pool_size = 3\n");
	memset(&sp, 0, sizeof(sp));
	pthread_mutex_init(&sp.lock, NULL);
	harness_conninfo(sp.conninfo, sizeof(sp.conninfo), p.port, harness_fixture()->db,
			 harness_fixture()->app_user, harness_fixture()->app_password);
	for (int i = 0; i < 30; i++)
		pthread_create(&th[i], NULL, spread_worker, &sp);
	for (int i = 0; i < 30; i++)
		pthread_join(th[i], NULL);
	print_message("30 clients on 3 servers: %d saw more than one backend, %d failures\n",
		      sp.multi_pid_clients, sp.failures);
	if (sp.failures)
		fail_msg("%d failures; first: %s", sp.failures, sp.first_error);
	assert_true(sp.multi_pid_clients > 0);
	/* Every statement at most once per server: shared + 30 own ones. */
	assert_true(admin_sum(&p, "SHOW SERVERS", "S", "prepared_statements") <= 3 * 31);
	harness_pooler_stop(&p, 10);
}

/* Statement mode: every statement may run on another server. */
static void test_prepared_statement_mode(void **state)
{
	struct harness_pooler p;
	PGconn *a, *b;
	char *pid1, *pid2;
	const char *param[1] = { "2" };
	PGresult *r;

	(void)state;
	skip_for_pgbouncer();
	start(&p, "pool_mode = statement\ndefault_pool_size = 2\n");
	a = app(&p);
	b = app(&p);
	prepare(a, "sm", "SELECT pg_backend_pid()::text, $1::int * 21", 1);
	pid1 = exec_value(a, "sm", 1, param);
	/* b's statement holds the server a just used while a runs again. */
	assert_int_equal(PQsendQuery(b, "SELECT pg_sleep(0.5)"), 1);
	usleep(100 * 1000);
	pid2 = exec_value(a, "sm", 1, param);
	if (strcmp(pid1, pid2) == 0)
		fail_msg("both executions ran on backend %s", pid1);
	while ((r = PQgetResult(b)) != NULL)
		PQclear(r);
	r = PQexecPrepared(a, "sm", 1, param, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 1), "42");
	PQclear(r);
	free(pid1);
	free(pid2);
	PQfinish(a);
	PQfinish(b);
	harness_pooler_stop(&p, 10);
}

/* A server that dies takes its statements with it; the client's names
 * stay and are prepared on the next server. */
static void test_prepared_survives_server_loss(void **state)
{
	struct harness_pooler p;
	PGconn *c, *super;
	char *pid, *v, sql[96];
	const char *param[1] = { "5" };
	PGresult *r;

	(void)state;
	skip_for_pgbouncer();
	start(&p, "pool_mode = transaction\ndefault_pool_size = 1\n");
	c = app(&p);
	prepare(c, "lost", "SELECT pg_backend_pid()::text, $1::int + 1", 1);
	pid = exec_value(c, "lost", 1, param);
	super = harness_connect_pg_super(NULL);
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%s)", pid);
	harness_exec(super, sql);
	PQfinish(super);
	usleep(200 * 1000);
	/* The dead server was idle: pgmux noticed, the next one prepares. */
	for (int i = 0; i < 3; i++) {
		r = PQexecPrepared(c, "lost", 1, param, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK) {
			assert_string_equal(PQgetvalue(r, 0, 1), "6");
			assert_string_not_equal(PQgetvalue(r, 0, 0), pid);
			PQclear(r);
			break;
		}
		/* At most the one request that met the dying server. */
		assert_string_equal(harness_sqlstate(r), "08006");
		PQclear(r);
	}
	v = exec_value(c, "lost", 1, param);
	free(v);
	assert_int_equal(admin_sum(&p, "SHOW CLIENTS", "C", "prepared_statements"), 1);
	free(pid);
	PQfinish(c);
	harness_pooler_stop(&p, 10);
}

/* ---- unnamed, Close, Describe -------------------------------------------- */

static void test_prepared_unnamed_statement_untouched(void **state)
{
	struct harness_pooler p;
	PGconn *c;
	PGresult *r;
	const char *param[1] = { "7" };
	char *n;

	(void)state;
	skip_for_pgbouncer();
	start(&p, tx_settings);
	c = app(&p);
	for (int i = 0; i < 5; i++) {
		r = PQexecParams(c, "SELECT $1::int * 6", 1, NULL, param, NULL, NULL, 0);
		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		assert_string_equal(PQgetvalue(r, 0, 0), "42");
		PQclear(r);
	}
	prepare(c, "", "SELECT $1::int + 1", 1);
	expect_exec(c, "", 1, param, "8");
	n = harness_scalar(c, "SELECT count(*) FROM pg_prepared_statements");
	assert_string_equal(n, "0");
	free(n);
	assert_int_equal(admin_sum(&p, "SHOW SERVERS", "S", "prepared_statements"), 0);
	assert_int_equal(admin_sum(&p, "SHOW CLIENTS", "C", "prepared_statements"), 0);
	PQfinish(c);
	harness_pooler_stop(&p, 10);
}

static void test_prepared_close_then_parse_same_name(void **state)
{
	struct harness_pooler p;
	struct wire w = { 0 };
	struct answers a;
	int fd;

	(void)state;
	skip_for_pgbouncer();
	start(&p, tx_settings);
	fd = raw_login(&p);
	w_parse(&w, "s1", "SELECT 1");
	w_bind(&w, "", "s1", 0, NULL);
	w_execute(&w, "");
	w_sync(&w);
	w_send(fd, &w, false);
	read_answers(fd, 1, &a);
	assert_string_equal(a.types, "12DCZ");
	assert_string_equal(a.values, "1");
	/* Close, then the same name for another text, in one pipeline. */
	w_target(&w, 'C', 'S', "s1");
	w_parse(&w, "s1", "SELECT 2");
	w_bind(&w, "", "s1", 0, NULL);
	w_execute(&w, "");
	w_sync(&w);
	w_send(fd, &w, false);
	read_answers(fd, 1, &a);
	assert_string_equal(a.types, "312DCZ");
	assert_string_equal(a.values, "2");
	/* Closed names: Close again is fine, Bind is not. */
	w_target(&w, 'C', 'S', "s1");
	w_sync(&w);
	w_bind(&w, "", "s1", 0, NULL);
	w_sync(&w);
	w_send(fd, &w, false);
	read_answers(fd, 2, &a);
	assert_string_equal(a.types, "3ZEZ");
	assert_string_equal(a.states, "26000");
	w_target(&w, 'C', 'S', "never_there");
	w_sync(&w);
	w_send(fd, &w, false);
	read_answers(fd, 1, &a);
	assert_string_equal(a.types, "3Z");
	w_target(&w, 'C', 'S', "s1");
	w_sync(&w);
	w_bind(&w, "", "s1", 0, NULL);
	w_execute(&w, "");
	w_sync(&w);
	w_send(fd, &w, false);
	read_answers(fd, 2, &a);
	assert_string_equal(a.types, "3ZEZ");
	assert_string_equal(a.states, "26000");
	close(fd);
	free(w.b);
	harness_pooler_stop(&p, 10);
}

static void test_prepared_describe_statement_and_portal(void **state)
{
	struct harness_pooler p;
	PGconn *c;
	PGresult *r;
	struct wire w = { 0 };
	struct answers a;
	const char *params[2] = { "5", "x" };
	int fd;

	(void)state;
	skip_for_pgbouncer();
	start(&p, tx_settings);
	c = app(&p);
	prepare(c, "d1", "SELECT $1::int AS n, $2::text AS t, 3 AS k", 2);
	r = PQdescribePrepared(c, "d1");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	assert_int_equal(PQnparams(r), 2);
	assert_int_equal(PQparamtype(r, 0), 23);
	assert_int_equal(PQparamtype(r, 1), 25);
	assert_int_equal(PQnfields(r), 3);
	assert_string_equal(PQfname(r, 2), "k");
	PQclear(r);
	r = PQdescribePrepared(c, "no_such");
	assert_string_equal(harness_sqlstate(r), "26000");
	PQclear(r);
	PQfinish(c);

	/* Statement and named portal over the raw protocol. */
	fd = raw_login(&p);
	w_parse(&w, "d2", "SELECT 10 AS ten UNION ALL SELECT 20");
	w_target(&w, 'D', 'S', "d2");
	w_bind(&w, "p1", "d2", 0, NULL);
	w_target(&w, 'D', 'P', "p1");
	w_execute(&w, "p1");
	w_sync(&w);
	w_send(fd, &w, false);
	read_answers(fd, 1, &a);
	assert_string_equal(a.types, "1tT2TDDCZ");
	assert_string_equal(a.values, "10,20");
	(void)params;
	close(fd);
	free(w.b);
	harness_pooler_stop(&p, 10);
}

/* ---- errors in pipelines ---------------------------------------------------- */

static void test_prepared_parse_error_mid_pipeline(void **state)
{
	struct harness_pooler p;
	struct wire w = { 0 };
	struct answers a;
	int fd;

	(void)state;
	skip_for_pgbouncer();
	start(&p, tx_settings);
	fd = raw_login(&p);
	w_parse(&w, "keep", "SELECT 'kept'");
	w_sync(&w);
	w_send(fd, &w, false);
	read_answers(fd, 1, &a);
	assert_string_equal(a.types, "1Z");
	/* A good Parse, a bad one, then messages PostgreSQL skips: the good
	 * name exists, the later one does not, the Close did not happen. */
	w_parse(&w, "good", "SELECT 'good'");
	w_parse(&w, "bad", "SELEC 1");
	w_bind(&w, "", "bad", 0, NULL);
	w_execute(&w, "");
	w_parse(&w, "after", "SELECT 'after'");
	w_target(&w, 'C', 'S', "keep");
	w_sync(&w);
	w_send(fd, &w, false);
	read_answers(fd, 1, &a);
	assert_string_equal(a.types, "1EZ");
	assert_string_equal(a.states, "42601");
	/* The next pipeline works; names are as PostgreSQL would have them. */
	w_bind(&w, "", "good", 0, NULL);
	w_execute(&w, "");
	w_bind(&w, "", "keep", 0, NULL);
	w_execute(&w, "");
	w_sync(&w);
	w_bind(&w, "", "after", 0, NULL);
	w_execute(&w, "");
	w_sync(&w);
	w_parse(&w, "after", "SELECT 'after'");
	w_parse(&w, "bad", "SELECT 'fixed'");
	w_bind(&w, "", "bad", 0, NULL);
	w_execute(&w, "");
	w_sync(&w);
	w_send(fd, &w, false);
	read_answers(fd, 3, &a);
	assert_string_equal(a.types, "2DC2DCZEZ112DCZ");
	assert_string_equal(a.values, "good,kept,fixed");
	assert_string_equal(a.states, "26000");
	/* An error with no Sync yet: what follows is ignored until it comes. */
	w_parse(&w, "bad2", "SELEC 2");
	w_flush(&w);
	w_send(fd, &w, false);
	{
		/* The error comes on Flush, with no ReadyForQuery. */
		struct harness_msg m;
		struct harness_wire_error e;

		assert_true(harness_raw_read_msg(fd, &m, ANSWER_MS));
		assert_int_equal(m.type, 'E');
		harness_raw_error_fields(m.body, m.len, &e);
		assert_string_equal(e.sqlstate, "42601");
	}
	w_parse(&w, "ignored", "SELECT 'ignored'");
	w_sync(&w);
	w_bind(&w, "", "ignored", 0, NULL);
	w_sync(&w);
	w_send(fd, &w, false);
	read_answers(fd, 2, &a);
	assert_string_equal(a.types, "ZEZ");
	assert_string_equal(a.states, "26000");
	close(fd);
	free(w.b);
	harness_pooler_stop(&p, 10);
}

/* The same through libpq's pipeline mode. */
static void test_prepared_pipeline_mode_error_then_good_pipeline(void **state)
{
	struct harness_pooler p;
	PGconn *c;
	PGresult *r;
	const char *param[1] = { "3" };
	ExecStatusType want[] = { PGRES_COMMAND_OK,  PGRES_FATAL_ERROR, PGRES_PIPELINE_ABORTED,
				  PGRES_PIPELINE_SYNC, PGRES_COMMAND_OK, PGRES_TUPLES_OK,
				  PGRES_PIPELINE_SYNC };
	size_t i = 0;

	(void)state;
	skip_for_pgbouncer();
	start(&p, tx_settings);
	c = app(&p);
	assert_int_equal(PQenterPipelineMode(c), 1);
	assert_int_equal(PQsendPrepare(c, "pa", "SELECT $1::int * 2", 1, NULL), 1);
	assert_int_equal(PQsendPrepare(c, "pb", "SELECT nope FROM nowhere", 0, NULL), 1);
	assert_int_equal(PQsendQueryPrepared(c, "pa", 1, param, NULL, NULL, 0), 1);
	assert_int_equal(PQpipelineSync(c), 1);
	assert_int_equal(PQsendPrepare(c, "pb", "SELECT $1::int * 3", 1, NULL), 1);
	assert_int_equal(PQsendQueryPrepared(c, "pb", 1, param, NULL, NULL, 0), 1);
	assert_int_equal(PQpipelineSync(c), 1);
	while (i < sizeof(want) / sizeof(want[0])) {
		r = PQgetResult(c);
		if (!r)
			continue; /* end of one query's results */
		if (PQresultStatus(r) != want[i])
			fail_msg("result %zu: %s, want %s (%s)", i, PQresStatus(PQresultStatus(r)),
				 PQresStatus(want[i]), PQerrorMessage(c));
		if (want[i] == PGRES_FATAL_ERROR)
			assert_string_equal(harness_sqlstate(r), "42P01");
		if (want[i] == PGRES_TUPLES_OK)
			assert_string_equal(PQgetvalue(r, 0, 0), "9");
		PQclear(r);
		i++;
	}
	assert_int_equal(PQexitPipelineMode(c), 1);
	/* pa was prepared before the error: it stays. */
	expect_exec(c, "pa", 1, param, "6");
	PQfinish(c);
	harness_pooler_stop(&p, 10);
}

static void test_prepared_duplicate_name_is_42P05(void **state)
{
	struct harness_pooler p;
	PGconn *c;
	PGresult *r;
	const char *param[1] = { "1" };
	char st[8];

	(void)state;
	skip_for_pgbouncer();
	start(&p, tx_settings);
	c = app(&p);
	prepare(c, "dup", "SELECT $1::int", 1);
	r = PQprepare(c, "dup", "SELECT $1::int", 1, NULL);
	assert_string_equal(harness_sqlstate(r), "42P05");
	assert_non_null(strstr(PQresultErrorMessage(r), "\"dup\" already exists"));
	PQclear(r);
	/* In a transaction block the block is aborted, as PostgreSQL does. */
	harness_exec(c, "BEGIN");
	r = PQprepare(c, "dup", "SELECT 2", 0, NULL);
	assert_string_equal(harness_sqlstate(r), "42P05");
	PQclear(r);
	harness_exec_sqlstate(c, "SELECT 1", "25P02");
	harness_exec(c, "ROLLBACK");
	assert_string_equal(exec_state(c, "dup", 1, param, st, sizeof(st)), "");
	PQfinish(c);
	harness_pooler_stop(&p, 10);
}

/* ---- LRU, disabled, session mode ------------------------------------------ */

static void test_prepared_lru_keeps_server_at_max(void **state)
{
	struct harness_pooler p;
	PGconn *c;
	char name[16], sql[64], want[16];

	(void)state;
	skip_for_pgbouncer();
	start(&p, "pool_mode = transaction\ndefault_pool_size = 1\nmax_prepared_statements = 3\n");
	c = app(&p);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 10; i++) {
			char *v, *n;

			snprintf(name, sizeof(name), "lru%d", i);
			snprintf(sql, sizeof(sql), "SELECT %d", i);
			snprintf(want, sizeof(want), "%d", i);
			if (round == 0)
				prepare(c, name, sql, 0);
			v = exec_value(c, name, 0, NULL);
			assert_string_equal(v, want);
			free(v);
			n = harness_scalar(c, "SELECT count(*) FROM pg_prepared_statements");
			if (atoi(n) > 3)
				fail_msg("server has %s prepared statements after %s", n, name);
			free(n);
			assert_true(admin_sum(&p, "SHOW SERVERS", "S", "prepared_statements") <= 3);
		}
	}
	assert_int_equal(admin_sum(&p, "SHOW CLIENTS", "C", "prepared_statements"), 10);
	PQfinish(c);
	harness_pooler_stop(&p, 10);
}

static void check_pass_through(const char *settings)
{
	struct harness_pooler p;
	PGconn *c;
	char *v;

	start(&p, settings);
	c = app(&p);
	harness_exec(c, "BEGIN"); /* one server for the lot */
	prepare(c, "mine", "SELECT 'x'", 0);
	v = harness_scalar(c, "SELECT string_agg(name, ',') FROM pg_prepared_statements");
	assert_string_equal(v, "mine"); /* the client's own name on the server */
	free(v);
	expect_exec(c, "mine", 0, NULL, "x");
	harness_exec(c, "DEALLOCATE mine");
	harness_exec(c, "COMMIT");
	assert_int_equal(admin_sum(&p, "SHOW CLIENTS", "C", "prepared_statements"), 0);
	assert_int_equal(admin_sum(&p, "SHOW SERVERS", "S", "prepared_statements"), 0);
	PQfinish(c);
	harness_pooler_stop(&p, 10);
}

static void test_prepared_zero_max_passes_through(void **state)
{
	(void)state;
	skip_for_pgbouncer();
	check_pass_through("pool_mode = transaction\ndefault_pool_size = 1\n"
			   "max_prepared_statements = 0\n");
}

static void test_prepared_session_mode_passes_through(void **state)
{
	(void)state;
	skip_for_pgbouncer();
	check_pass_through("pool_mode = session\ndefault_pool_size = 1\n");
}

static void test_prepared_deallocate_all_and_discard_all_clear_names(void **state)
{
	struct harness_pooler p;
	PGconn *c;
	char st[8];
	const char *sql[] = { "DEALLOCATE ALL", "deallocate prepare all;", "DISCARD ALL" };

	(void)state;
	skip_for_pgbouncer();
	start(&p, tx_settings);
	c = app(&p);
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		prepare(c, "gone", "SELECT 1", 0);
		prepare(c, "gone2", "SELECT 2", 0);
		assert_int_equal(admin_sum(&p, "SHOW CLIENTS", "C", "prepared_statements"), 2);
		harness_exec(c, sql[i]);
		assert_int_equal(admin_sum(&p, "SHOW CLIENTS", "C", "prepared_statements"), 0);
		assert_string_equal(exec_state(c, "gone", 0, NULL, st, sizeof(st)), "26000");
	}
	/* The server dropped pgmux's statements too: they come back. */
	prepare(c, "back", "SELECT 1", 0);
	expect_exec(c, "back", 0, NULL, "1");
	PQfinish(c);
	harness_pooler_stop(&p, 10);
}

/* ---- 0A000 after DDL ----------------------------------------------------------- */

static void test_prepared_ddl_recovers_from_0A000(void **state)
{
	struct harness_pooler p;
	PGconn *a, *b, *super;
	PGresult *r;
	char st[8];

	(void)state;
	skip_for_pgbouncer();
	super = harness_connect_pg_super(NULL);
	harness_exec(super, "DROP TABLE IF EXISTS prep_ddl");
	harness_exec(super, "CREATE TABLE prep_ddl (a int)");
	harness_exec(super, "INSERT INTO prep_ddl VALUES (1)");
	harness_exec(super, "GRANT ALL ON prep_ddl TO app");
	start(&p, tx_settings);
	a = app(&p);
	b = app(&p);
	/* Prepared on both servers of the pool. */
	prepare(a, "q", "SELECT * FROM prep_ddl", 0);
	prepare(b, "q", "SELECT * FROM prep_ddl", 0);
	harness_exec(b, "BEGIN");
	expect_exec(b, "q", 0, NULL, "1");
	expect_exec(a, "q", 0, NULL, "1");
	harness_exec(b, "COMMIT");
	assert_int_equal(admin_sum(&p, "SHOW SERVERS", "S", "prepared_statements"), 2);

	harness_exec(super, "ALTER TABLE prep_ddl ADD COLUMN b int DEFAULT 7");
	/* Outside a transaction block: prepared again and retried. */
	for (int i = 0; i < 4; i++) {
		r = PQexecPrepared(a, "q", 0, NULL, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("after DDL, execution %d: %s", i, PQerrorMessage(a));
		assert_int_equal(PQnfields(r), 2);
		assert_string_equal(PQgetvalue(r, 0, 1), "7");
		PQclear(r);
	}
	harness_exec(super, "ALTER TABLE prep_ddl ADD COLUMN c text DEFAULT 'c'");
	/* Inside one: the error (PostgreSQL's own), then the next
	 * transaction works. */
	harness_exec(b, "BEGIN");
	assert_string_equal(exec_state(b, "q", 0, NULL, st, sizeof(st)), "0A000");
	harness_exec(b, "ROLLBACK");
	r = PQexecPrepared(b, "q", 0, NULL, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_int_equal(PQnfields(r), 3);
	PQclear(r);
	PQfinish(a);
	PQfinish(b);
	harness_pooler_stop(&p, 10);
	harness_exec(super, "DROP TABLE prep_ddl");
	PQfinish(super);
}

/* ---- large and split messages ------------------------------------------------ */

static void test_prepared_large_bind_and_split_messages(void **state)
{
	struct harness_pooler p;
	PGconn *c;
	PGresult *r;
	struct wire w = { 0 };
	struct answers a;
	size_t big = 200 * 1024;
	char *param = malloc(big + 1);
	const char *params[1] = { param };
	int fd;

	(void)state;
	skip_for_pgbouncer();
	start(&p, "pool_mode = transaction\ndefault_pool_size = 2\npkt_buf = 4096\n");
	memset(param, 'x', big);
	param[big] = '\0';
	c = app(&p);
	prepare(c, "len", "SELECT length($1::text)", 1);
	for (int i = 0; i < 3; i++) {
		r = PQexecPrepared(c, "len", 1, params, NULL, NULL, 0);
		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		assert_int_equal(atoi(PQgetvalue(r, 0, 0)), (int)big);
		PQclear(r);
	}
	/* A named Parse larger than pkt_buf is gathered and works; one over
	 * pgmux's 1 MB is refused with 54000 and the session goes on. */
	{
		size_t qlen = 3 * 4096;
		char *q = malloc(2 * 1024 * 1024);
		char *v;

		snprintf(q, 16, "SELECT length('");
		memset(q + 15, 'q', qlen);
		snprintf(q + 15 + qlen, 8, "')");
		prepare(c, "bigq", q, 0);
		for (int i = 0; i < 2; i++) {
			v = exec_value(c, "bigq", 0, NULL);
			assert_int_equal(atoi(v), (int)qlen);
			free(v);
		}
		qlen = 1024 * 1024 + 100;
		memset(q + 15, 'q', qlen);
		snprintf(q + 15 + qlen, 8, "')");
		r = PQprepare(c, "huge", q, 0, NULL);
		assert_string_equal(harness_sqlstate(r), "54000");
		PQclear(r);
		v = exec_value(c, "bigq", 0, NULL);
		free(v);
		free(q);
	}
	PQfinish(c);

	/* One byte at a time: every message arrives in pieces. */
	fd = raw_login(&p);
	w_parse(&w, "slow", "SELECT $1::text || 'y'");
	w_bind(&w, "", "slow", 1, (const char *const[]){ "x" });
	w_target(&w, 'D', 'S', "slow");
	w_execute(&w, "");
	w_target(&w, 'C', 'S', "slow");
	w_sync(&w);
	w_send(fd, &w, true);
	read_answers(fd, 1, &a);
	assert_string_equal(a.types, "12tTDC3Z");
	assert_string_equal(a.values, "xy");
	/* A large Bind to a named statement through the raw session. */
	w_parse(&w, "slow", "SELECT $1::text");
	w_bind(&w, "", "slow", 1, params);
	w_execute(&w, "");
	w_sync(&w);
	w_send(fd, &w, false);
	read_answers(fd, 1, &a);
	assert_string_equal(a.types, "12DCZ");
	assert_int_equal(a.value_bytes, big);
	/* DISCARD ALL in pieces still clears the client's names. */
	w_query(&w, "DISCARD ALL");
	w_send(fd, &w, true);
	read_answers(fd, 1, &a);
	assert_string_equal(a.types, "CZ");
	w_bind(&w, "", "slow", 1, (const char *const[]){ "x" });
	w_execute(&w, "");
	w_sync(&w);
	w_send(fd, &w, false);
	read_answers(fd, 1, &a);
	assert_string_equal(a.types, "EZ");
	assert_string_equal(a.states, "26000");
	close(fd);
	free(w.b);
	free(param);
	harness_pooler_stop(&p, 10);
}

#define PREP_TEST(t) cmocka_unit_test_teardown(t, harness_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		PREP_TEST(test_prepared_statement_follows_client_to_other_server),
		PREP_TEST(test_prepared_many_clients_on_pool_of_3),
		PREP_TEST(test_prepared_statement_mode),
		PREP_TEST(test_prepared_survives_server_loss),
		PREP_TEST(test_prepared_unnamed_statement_untouched),
		PREP_TEST(test_prepared_close_then_parse_same_name),
		PREP_TEST(test_prepared_describe_statement_and_portal),
		PREP_TEST(test_prepared_parse_error_mid_pipeline),
		PREP_TEST(test_prepared_pipeline_mode_error_then_good_pipeline),
		PREP_TEST(test_prepared_duplicate_name_is_42P05),
		PREP_TEST(test_prepared_lru_keeps_server_at_max),
		PREP_TEST(test_prepared_zero_max_passes_through),
		PREP_TEST(test_prepared_session_mode_passes_through),
		PREP_TEST(test_prepared_deallocate_all_and_discard_all_clear_names),
		PREP_TEST(test_prepared_ddl_recovers_from_0A000),
		PREP_TEST(test_prepared_large_bind_and_split_messages),
		PREP_TEST(test_prepared_pgbench_tpcb_100_clients_pool_10),
		PREP_TEST(test_prepared_pgbench_select_only_100_clients_pool_10),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
