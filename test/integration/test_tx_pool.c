/*
 * test_tx_pool.c: transaction pooling under load and under failure, against
 * the real PostgreSQL fixture: many clients on a small pool with every result
 * checked, one backend per transaction, the pool size cap as PostgreSQL sees
 * it, a client killed mid-transaction, and a server terminated under a client.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#define POOL_SIZE 5

static const char *const pool_settings =
	"pool_mode = transaction\n"
	"default_pool_size = 5\n";

/* ---- load workers -------------------------------------------------------- */

struct load {
	char conninfo[512];
	int n_tx;               /* transactions per client */
	int stmts_pid;          /* extra pg_backend_pid() checks per transaction */
	int sleep_ms;           /* pg_sleep inside each transaction, 0 for none */
	pthread_mutex_t lock;
	int failures;           /* transactions with any unexpected result */
	char first_error[512];
	int pids[64];           /* distinct backend pids seen */
	int n_pids;
	int pid_mismatch;       /* transactions whose statements saw 2+ pids */
};

struct worker {
	struct load *load;
	int id;
	pthread_t thread;
};

static void load_fail(struct load *l, int client, int tx, const char *what,
		      PGconn *c)
{
	pthread_mutex_lock(&l->lock);
	if (l->failures++ == 0)
		snprintf(l->first_error, sizeof(l->first_error),
			 "client %d tx %d: %s: %s", client, tx, what,
			 c ? PQerrorMessage(c) : "");
	pthread_mutex_unlock(&l->lock);
}

static void load_note_pid(struct load *l, int pid)
{
	int i;

	pthread_mutex_lock(&l->lock);
	for (i = 0; i < l->n_pids; i++)
		if (l->pids[i] == pid)
			break;
	if (i == l->n_pids && l->n_pids < 64)
		l->pids[l->n_pids++] = pid;
	pthread_mutex_unlock(&l->lock);
}

/* Runs sql expecting status st; returns the result (caller clears) or NULL. */
static PGresult *wexec(PGconn *c, const char *sql, int nparams,
		       const char *const *params, ExecStatusType st)
{
	PGresult *r = nparams ? PQexecParams(c, sql, nparams, NULL, params, NULL,
					     NULL, 0)
			      : PQexec(c, sql);

	if (PQresultStatus(r) != st) {
		PQclear(r);
		return NULL;
	}
	return r;
}

/* One transaction; returns false (after recording why) on any surprise. */
static bool one_tx(struct load *l, PGconn *c, int client, int tx)
{
	char a[16], b[16], want[32], sleep_sql[64];
	const char *p2[2] = { a, b };
	PGresult *r;
	int pid, i;

	snprintf(a, sizeof(a), "%d", client);
	snprintf(b, sizeof(b), "%d", tx);
	if ((r = wexec(c, "BEGIN", 0, NULL, PGRES_COMMAND_OK)) == NULL)
		return load_fail(l, client, tx, "BEGIN", c), false;
	PQclear(r);

	/* Extended protocol, unnamed statement: the value must come back. */
	r = wexec(c, "SELECT pg_backend_pid(), $1::int * 1000 + $2::int", 2, p2,
		  PGRES_TUPLES_OK);
	snprintf(want, sizeof(want), "%d", client * 1000 + tx);
	if (r == NULL || PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 1), want) != 0) {
		PQclear(r);
		return load_fail(l, client, tx, "SELECT value", c), false;
	}
	pid = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	load_note_pid(l, pid);

	r = wexec(c, "INSERT INTO tx_load (client, seq, pid) "
		  "VALUES ($1, $2, pg_backend_pid())", 2, p2, PGRES_COMMAND_OK);
	if (r == NULL || strcmp(PQcmdTuples(r), "1") != 0) {
		PQclear(r);
		return load_fail(l, client, tx, "INSERT", c), false;
	}
	PQclear(r);

	if (l->sleep_ms > 0) {
		snprintf(sleep_sql, sizeof(sleep_sql), "SELECT pg_sleep(%d / 1000.0)",
			 l->sleep_ms);
		if ((r = wexec(c, sleep_sql, 0, NULL, PGRES_TUPLES_OK)) == NULL)
			return load_fail(l, client, tx, "pg_sleep", c), false;
		PQclear(r);
	}

	/* Simple protocol: the row count sees this transaction's own insert. */
	r = wexec(c, "SELECT count(*) FROM tx_load WHERE client = $1", 1, p2,
		  PGRES_TUPLES_OK);
	snprintf(want, sizeof(want), "%d", tx + 1);
	if (r == NULL || strcmp(PQgetvalue(r, 0, 0), want) != 0) {
		PQclear(r);
		return load_fail(l, client, tx, "SELECT count", c), false;
	}
	PQclear(r);

	for (i = 0; i < l->stmts_pid; i++) {
		r = wexec(c, "SELECT pg_backend_pid()", 0, NULL, PGRES_TUPLES_OK);
		if (r == NULL)
			return load_fail(l, client, tx, "SELECT pg_backend_pid", c), false;
		if (atoi(PQgetvalue(r, 0, 0)) != pid) {
			pthread_mutex_lock(&l->lock);
			l->pid_mismatch++;
			pthread_mutex_unlock(&l->lock);
		}
		PQclear(r);
	}

	if ((r = wexec(c, "COMMIT", 0, NULL, PGRES_COMMAND_OK)) == NULL)
		return load_fail(l, client, tx, "COMMIT", c), false;
	if (strcmp(PQcmdStatus(r), "COMMIT") != 0) {
		PQclear(r);
		return load_fail(l, client, tx, "COMMIT tag", c), false;
	}
	PQclear(r);
	return true;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct load *l = w->load;
	PGconn *c = PQconnectdb(l->conninfo);
	int tx;

	if (PQstatus(c) != CONNECTION_OK) {
		load_fail(l, w->id, -1, "connect", c);
		PQfinish(c);
		return NULL;
	}
	for (tx = 0; tx < l->n_tx; tx++)
		if (!one_tx(l, c, w->id, tx))
			break;
	PQfinish(c);
	return NULL;
}

static void run_load(struct harness_pooler *p, struct load *l, int n_clients)
{
	const struct harness_fixture *fx = harness_fixture();
	struct worker *w = calloc((size_t)n_clients, sizeof(*w));
	int i;

	assert_non_null(w);
	harness_conninfo(l->conninfo, sizeof(l->conninfo), p->port, fx->db,
			 fx->app_user, fx->app_password);
	pthread_mutex_init(&l->lock, NULL);
	for (i = 0; i < n_clients; i++) {
		w[i].load = l;
		w[i].id = i;
		assert_int_equal(pthread_create(&w[i].thread, NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < n_clients; i++)
		pthread_join(w[i].thread, NULL);
	free(w);
	pthread_mutex_destroy(&l->lock);
}

static void reset_table(void)
{
	PGconn *s = harness_connect_pg_super(NULL);

	harness_exec(s, "DROP TABLE IF EXISTS tx_load");
	harness_exec(s, "CREATE TABLE tx_load (client int, seq int, pid int, "
		     "PRIMARY KEY (client, seq))");
	harness_exec(s, "GRANT ALL ON tx_load TO PUBLIC");
	harness_exec(s, "DROP TABLE IF EXISTS tx_killed");
	harness_exec(s, "CREATE TABLE tx_killed (v text)");
	harness_exec(s, "GRANT ALL ON tx_killed TO PUBLIC");
	PQfinish(s);
}

static void start_pool(struct harness_pooler *p)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { .settings = pool_settings };

	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	reset_table();
	harness_pooler_start(p, &cfg);
}

/* ---- tests --------------------------------------------------------------- */

static void test_tx_pool_200_clients_50_tx_every_result_checked(void **state)
{
	struct harness_pooler p;
	struct load l = { .n_tx = 50 };
	PGconn *s;
	long long t0;

	harness_raise_nofile(4096);
	start_pool(&p);
	t0 = harness_now_ms();
	run_load(&p, &l, 200);
	print_message("200 clients x 50 tx through a pool of %d: %lld ms, %d "
		      "distinct backends\n", POOL_SIZE, harness_now_ms() - t0, l.n_pids);
	if (l.failures)
		fail_msg("%d transactions failed; first: %s", l.failures, l.first_error);

	s = harness_connect_pg_super(NULL);
	assert_int_equal(harness_scalar_ll(s, "SELECT count(*) FROM tx_load"), 10000);
	assert_int_equal(harness_scalar_ll(s,
		"SELECT count(*) FROM (SELECT client FROM tx_load GROUP BY client "
		"HAVING count(*) = 50 AND min(seq) = 0 AND max(seq) = 49) x"), 200);
	/* Every insert ran on one of the pool's few backends. */
	assert_in_range(harness_scalar_ll(s, "SELECT count(DISTINCT pid) FROM tx_load"),
			1, POOL_SIZE);
	PQfinish(s);
	harness_pooler_stop(&p, 20);
}

static void test_tx_pool_statements_of_a_tx_share_one_backend_pid(void **state)
{
	struct harness_pooler p;
	struct load l = { .n_tx = 30, .stmts_pid = 3 };
	PGconn *s;

	start_pool(&p);
	run_load(&p, &l, 40);
	if (l.failures)
		fail_msg("%d transactions failed; first: %s", l.failures, l.first_error);
	/* Each tx's SELECT/INSERT/3x pg_backend_pid() must match its first pid. */
	assert_int_equal(l.pid_mismatch, 0);
	s = harness_connect_pg_super(NULL);
	assert_int_equal(harness_scalar_ll(s, "SELECT count(*) FROM tx_load"), 40 * 30);
	/* And the pool used no more backends than its size. */
	assert_in_range(l.n_pids, 1, POOL_SIZE);
	PQfinish(s);
	harness_pooler_stop(&p, 20);
}

static void test_tx_pool_server_count_never_exceeds_pool_size(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct harness_poller pl;
	struct load l = { .n_tx = 10, .sleep_ms = 5 };
	int max;

	start_pool(&p);
	harness_poller_start(&pl, fx->db, fx->app_user);
	run_load(&p, &l, 100);
	max = harness_poller_stop(&pl);
	print_message("pg_stat_activity: max %d server connections over %d samples "
		      "(pool size %d)\n", max, pl.samples, POOL_SIZE);
	if (l.failures)
		fail_msg("%d transactions failed; first: %s", l.failures, l.first_error);
	assert_true(pl.samples >= 10);
	if (max > POOL_SIZE)
		fail_msg("saw %d server connections, pool size is %d", max, POOL_SIZE);
	/* 100 clients sleeping inside transactions must fill the pool. */
	if (max < POOL_SIZE)
		fail_msg("pool never grew to its size: max %d of %d", max, POOL_SIZE);
	harness_pooler_stop(&p, 20);
}

/* Child of the killed-client test: opens a transaction, reports, waits. */
static void killed_child(int port, int wfd)
{
	const struct harness_fixture *fx = harness_fixture();
	char ci[512], msg[32];
	PGconn *c;
	PGresult *r;
	int n;

	harness_conninfo(ci, sizeof(ci), port, fx->db, fx->app_user, fx->app_password);
	c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK)
		_exit(2);
	PQclear(PQexec(c, "BEGIN"));
	r = PQexec(c, "INSERT INTO tx_killed VALUES ('killed-marker')");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		_exit(3);
	PQclear(r);
	r = PQexec(c, "SELECT pg_backend_pid()");
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		_exit(4);
	n = snprintf(msg, sizeof(msg), "%s\n", PQgetvalue(r, 0, 0));
	if (n <= 0 || write(wfd, msg, (size_t)n) != n)
		_exit(5);
	for (;;)
		pause();
}

static void test_tx_pool_client_killed_mid_tx_leaves_no_open_tx(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	char buf[32] = "", sql[256], *st;
	struct pollfd pfd;
	long long deadline;
	int fds[2], backend, open_tx = -1, status;
	PGconn *s, *c;
	pid_t child;

	start_pool(&p);
	assert_int_equal(pipe(fds), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(fds[0]);
		killed_child(p.port, fds[1]);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 20000) != 1 || read(fds[0], buf, sizeof(buf) - 1) <= 0) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
		fail_msg("child did not open its transaction (exit 0x%x)", status);
	}
	close(fds[0]);
	backend = atoi(buf);
	assert_true(backend > 0);

	s = harness_connect_pg_super(NULL);
	harness_fmt(sql, sizeof(sql),
		    "SELECT state FROM pg_stat_activity WHERE pid = %d", backend);
	st = harness_scalar(s, sql);
	assert_string_equal(st, "idle in transaction");
	free(st);

	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(waitpid(child, &status, 0), child);

	/* The pooler must close or roll back that server promptly. */
	deadline = harness_now_ms() + 10000;
	while (harness_now_ms() < deadline) {
		harness_fmt(sql, sizeof(sql),
			    "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' "
			    "AND (state LIKE 'idle in transaction%%' OR xact_start "
			    "IS NOT NULL) AND pid <> pg_backend_pid()", fx->db);
		open_tx = (int)harness_scalar_ll(s, sql);
		if (open_tx == 0)
			break;
		usleep(20000);
	}
	if (open_tx != 0)
		fail_msg("%d transactions still open 10 s after the client died", open_tx);
	assert_int_equal(harness_scalar_ll(s,
		"SELECT count(*) FROM tx_killed WHERE v = 'killed-marker'"), 0);

	/* The pool still serves, and its servers are clean. */
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(c, "BEGIN");
	assert_int_equal(harness_scalar_ll(c, "SELECT count(*) FROM tx_killed"), 0);
	harness_exec(c, "INSERT INTO tx_killed VALUES ('after')");
	harness_exec(c, "COMMIT");
	/* Outside a transaction now() is this statement's own start time; on a
	 * server still inside the dead client's transaction it would not be. */
	st = harness_scalar(c, "SELECT (now() = statement_timestamp())::text");
	assert_string_equal(st, "true");
	free(st);
	PQfinish(c);
	assert_int_equal(harness_scalar_ll(s, "SELECT count(*) FROM tx_killed"), 1);
	PQfinish(s);
	harness_pooler_stop(&p, 20);
}

/* Terminates backend pid from a superuser connection and waits for it to go. */
static void terminate_backend(PGconn *s, int pid)
{
	char sql[160], *v;
	long long deadline = harness_now_ms() + 10000;

	harness_fmt(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", pid);
	v = harness_scalar(s, sql);
	assert_string_equal(v, "t");
	free(v);
	harness_fmt(sql, sizeof(sql),
		    "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid);
	while (harness_scalar_ll(s, sql) != 0) {
		if (harness_now_ms() > deadline)
			fail_msg("backend %d still alive 10 s after pg_terminate_backend", pid);
		usleep(10000);
	}
}

/*
 * After the 08006: what does the SAME connection do next? The tests accept
 * either a closed connection or a working one, but it must not hang, and a
 * working one must answer correctly; the outcome is printed for the record.
 */
static void probe_same_connection(PGconn *c, const char *label)
{
	char states[128];
	int n_ok = 0;

	if (PQstatus(c) == CONNECTION_BAD) {
		print_message("%s: same connection after 08006: closed (CONNECTION_BAD)\n",
			      label);
		return;
	}
	assert_int_equal(PQsendQuery(c, "ROLLBACK; SELECT 42"), 1);
	assert_true(harness_collect_results(c, states, sizeof(states), 10000, &n_ok));
	print_message("%s: same connection after 08006: status %s, ok results %d, "
		      "sqlstates [%s]\n", label,
		      PQstatus(c) == CONNECTION_OK ? "OK" : "BAD", n_ok, states);
	if (PQstatus(c) == CONNECTION_OK) {
		char *v = harness_scalar(c, "SELECT 42");

		assert_string_equal(v, "42");
		free(v);
	}
}

/* Is 08006 among the comma-separated SQLSTATEs the client saw? */
static bool has_08006(const char *states)
{
	char copy[128], *tok, *save = NULL;

	snprintf(copy, sizeof(copy), "%s", states);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (harness_sqlstate_is(tok, "08006"))
			return true;
	return false;
}

/* The pool recovered: a new client runs a full transaction. */
static void assert_next_tx_works(struct harness_pooler *p)
{
	PGconn *c = harness_connect_pooler(p, NULL, NULL, NULL);

	harness_exec(c, "BEGIN");
	harness_exec(c, "INSERT INTO tx_killed VALUES ('next')");
	assert_int_equal(harness_scalar_ll(c,
		"SELECT count(*) FROM tx_killed WHERE v = 'next'"), 1);
	harness_exec(c, "COMMIT");
	assert_int_equal(harness_scalar_ll(c, "SELECT 7"), 7);
	PQfinish(c);
}

static void test_tx_pool_terminated_server_in_tx_gives_client_08006(void **state)
{
	struct harness_pooler p;
	char states[128];
	PGconn *s, *c;
	int pid;

	start_pool(&p);
	s = harness_connect_pg_super(NULL);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(c, "BEGIN");
	pid = (int)harness_scalar_ll(c, "SELECT pg_backend_pid()");
	terminate_backend(s, pid);
	usleep(200000);

	assert_int_equal(PQsendQuery(c, "SELECT 1"), 1);
	assert_true(harness_collect_results(c, states, sizeof(states), 10000, NULL));
	print_message("in-transaction client saw sqlstates [%s]: %s", states,
		      PQerrorMessage(c));
	if (!has_08006(states))
		fail_msg("expected SQLSTATE 08006 after its server was terminated, "
			 "got [%s]: %s", states, PQerrorMessage(c));
	probe_same_connection(c, "in transaction");
	PQfinish(c);
	assert_next_tx_works(&p);
	PQfinish(s);
	harness_pooler_stop(&p, 20);
}

static void test_tx_pool_terminated_server_during_query_gives_client_08006(void **state)
{
	struct harness_pooler p;
	char states[128];
	long long deadline;
	PGconn *s, *c;
	int pid = 0;

	start_pool(&p);
	s = harness_connect_pg_super(NULL);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	assert_int_equal(PQsendQuery(c, "SELECT pg_sleep(30) /* it-terminate */"), 1);
	deadline = harness_now_ms() + 10000;
	while (pid == 0 && harness_now_ms() < deadline) {
		char *v = harness_scalar(s,
			"SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE "
			"query LIKE 'SELECT pg_sleep(30) /* it-terminate */%' "
			"AND state = 'active'");

		pid = atoi(v);
		free(v);
		if (pid == 0)
			usleep(10000);
	}
	assert_true(pid > 0);
	terminate_backend(s, pid);

	assert_true(harness_collect_results(c, states, sizeof(states), 10000, NULL));
	print_message("client in pg_sleep saw sqlstates [%s]: %s", states,
		      PQerrorMessage(c));
	if (!has_08006(states))
		fail_msg("expected SQLSTATE 08006 after its server was terminated, "
			 "got [%s]: %s", states, PQerrorMessage(c));
	probe_same_connection(c, "during query");
	PQfinish(c);
	assert_next_tx_works(&p);
	PQfinish(s);
	harness_pooler_stop(&p, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_tx_pool_200_clients_50_tx_every_result_checked,
					  harness_teardown),
		cmocka_unit_test_teardown(test_tx_pool_statements_of_a_tx_share_one_backend_pid,
					  harness_teardown),
		cmocka_unit_test_teardown(test_tx_pool_server_count_never_exceeds_pool_size,
					  harness_teardown),
		cmocka_unit_test_teardown(test_tx_pool_client_killed_mid_tx_leaves_no_open_tx,
					  harness_teardown),
		cmocka_unit_test_teardown(test_tx_pool_terminated_server_in_tx_gives_client_08006,
					  harness_teardown),
		cmocka_unit_test_teardown(test_tx_pool_terminated_server_during_query_gives_client_08006,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_tx_pool", tests, NULL, NULL);
}
