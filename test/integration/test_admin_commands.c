/*
 * test_admin_commands.c: the console's control commands against real
 * clients and PostgreSQL backends: PAUSE waits for the transaction in
 * flight and then holds new ones until RESUME; DISABLE/ENABLE; KILL db and
 * KILL_CLIENT drop exactly their clients; RECONNECT and WAIT_CLOSE recycle
 * backends; SET and RELOAD change (or refuse to change) the config; the
 * SHUTDOWN variants end the process with status 0.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

/* How long "does not complete" is watched, and how long completion may take. */
#define BLOCKED_MS 700
#define DONE_MS 5000

/* The shared cluster has no leftover backends of ours; then pgmux starts. */
static void start_pooler(struct harness_pooler *p)
{
	const struct harness_fixture *fx = harness_fixture();

	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	harness_pooler_start(p, NULL);
}

/* Collects the result of the command in flight; fails unless it is tag. */
static void expect_tag(PGconn *c, const char *sql, const char *tag)
{
	PGresult *r = PQgetResult(c);

	if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK ||
	    strcmp(PQcmdStatus(r), tag) != 0)
		fail_msg("\"%s\": expected CommandComplete \"%s\", got %s \"%s\": %s", sql,
			 tag, r ? PQresStatus(PQresultStatus(r)) : "no result",
			 r ? PQcmdStatus(r) : "", PQerrorMessage(c));
	PQclear(r);
	while ((r = PQgetResult(c)) != NULL)
		PQclear(r);
}

/* Runs a console command that must answer at once with tag. */
static void command(PGconn *c, const char *sql, const char *tag)
{
	assert_int_equal(PQsendQuery(c, sql), 1);
	if (!harness_result_within(c, DONE_MS))
		fail_msg("\"%s\" did not complete within %d ms", sql, DONE_MS);
	expect_tag(c, sql, tag);
}

/* Runs sql expecting ERROR with this SQLSTATE and a message starting with msg. */
static void expect_error(PGconn *c, const char *sql, const char *sqlstate,
			 const char *msg)
{
	PGresult *r = PQexec(c, sql);
	const char *got = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	const char *st = harness_sqlstate(r);

	if (PQresultStatus(r) != PGRES_FATAL_ERROR || strcmp(st, sqlstate) != 0 ||
	    got == NULL || strncmp(got, msg, strlen(msg)) != 0)
		fail_msg("\"%s\": expected %s \"%s...\", got %s %s \"%s\"", sql, sqlstate,
			 msg, PQresStatus(PQresultStatus(r)), st,
			 got ? got : PQerrorMessage(c));
	PQclear(r);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
}

/* One console row value, as an integer, of the row where col1 = val1. */
static long long show_ll(PGconn *admin, const char *sql, const char *col1,
			 const char *val1, const char *col)
{
	PGresult *r = harness_query(admin, sql);
	int row = harness_find_row(r, col1, val1, NULL, NULL);
	long long v;

	if (row < 0)
		fail_msg("%s: no row with %s = %s", sql, col1, val1);
	v = harness_value_ll(r, row, col);
	PQclear(r);
	return v;
}

static char *show_config(PGconn *admin, const char *key)
{
	PGresult *r = harness_query(admin, "SHOW CONFIG");
	int row = harness_find_row(r, "key", key, NULL, NULL);
	char *v;

	if (row < 0)
		fail_msg("SHOW CONFIG has no %s", key);
	v = strdup(harness_value(r, row, "value"));
	assert_non_null(v);
	PQclear(r);
	return v;
}

static int local_port(PGconn *c)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	assert_int_equal(getsockname(PQsocket(c), (struct sockaddr *)&sa, &len), 0);
	return ntohs(sa.sin_port);
}

/* The SHOW CLIENTS id of the connection c (matched by its source port). */
static long long client_id(PGconn *admin, PGconn *c)
{
	char port[16];

	harness_fmt(port, sizeof(port), "%d", local_port(c));
	return show_ll(admin, "SHOW CLIENTS", "port", port, "id");
}

/* Waits until PostgreSQL no longer has backend pid; fails after ms. */
static void wait_backend_gone(int pid, int ms)
{
	PGconn *s = harness_connect_pg_super("postgres");
	long long deadline = harness_now_ms() + ms;
	char sql[128];

	harness_fmt(sql, sizeof(sql),
		    "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid);
	while (harness_scalar_ll(s, sql) != 0) {
		if (harness_now_ms() > deadline)
			fail_msg("backend %d still exists %d ms later", pid, ms);
		harness_sleep_ms(20);
	}
	PQfinish(s);
}

/* A query on c must fail: the pooler dropped the client. Returns its error. */
static void expect_dropped(PGconn *c, const char *what, const char *needle)
{
	PGresult *r = PQexec(c, "SELECT 1");
	bool failed = PQresultStatus(r) != PGRES_TUPLES_OK;
	char msg[512];

	snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
	PQclear(r);
	if (!failed)
		fail_msg("%s: the client still runs queries", what);
	if (needle != NULL && strstr(msg, needle) == NULL)
		fail_msg("%s: error \"%s\" does not say \"%s\"", what, msg, needle);
	/* Its connection is gone, not just the one query. */
	r = PQexec(c, "SELECT 1");
	failed = PQresultStatus(r) != PGRES_TUPLES_OK;
	PQclear(r);
	if (!failed || PQstatus(c) != CONNECTION_BAD)
		fail_msg("%s: the connection survived (%s)", what, msg);
}

/* ---- a client in a thread: connect, then one query -------------------- */

struct late_client {
	char conninfo[512];
	pthread_t thread;
	volatile int done;        /* 1 once finished */
	volatile int ok;          /* connect and SELECT 42 both worked */
	long long done_ms;
	char error[256];
};

static void *late_client_main(void *arg)
{
	struct late_client *lc = arg;
	PGconn *c = PQconnectdb(lc->conninfo);
	PGresult *r = NULL;

	if (PQstatus(c) == CONNECTION_OK) {
		r = PQexec(c, "SELECT 42");
		lc->ok = PQresultStatus(r) == PGRES_TUPLES_OK &&
			 strcmp(PQgetvalue(r, 0, 0), "42") == 0;
	}
	if (!lc->ok)
		snprintf(lc->error, sizeof(lc->error), "%s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	lc->done_ms = harness_now_ms();
	lc->done = 1;
	return NULL;
}

static void late_client_start(struct late_client *lc, const struct harness_pooler *p)
{
	const struct harness_fixture *fx = harness_fixture();

	memset(lc, 0, sizeof(*lc));
	harness_conninfo(lc->conninfo, sizeof(lc->conninfo), p->port, fx->db,
			 fx->app_user, fx->app_password);
	assert_int_equal(pthread_create(&lc->thread, NULL, late_client_main, lc), 0);
}

/* ---- PAUSE / RESUME ------------------------------------------------------ */

static void test_admin_pause_waits_for_the_active_tx_then_holds_new_tx_until_resume(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	PGconn *admin, *admin2, *a, *b, *super;
	PGresult *r;
	long long deadline;
	int n;

	start_pooler(&p);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	b = harness_connect_pooler(&p, NULL, NULL, NULL);
	admin = harness_connect_admin(&p);
	admin2 = harness_connect_admin(&p);

	harness_exec(a, "BEGIN");
	harness_exec(a, "SELECT 1");   /* a now holds a server */
	harness_exec(b, "SELECT 1");   /* and b left an idle one */

	assert_int_equal(PQsendQuery(admin, "PAUSE"), 1);
	if (harness_result_within(admin, BLOCKED_MS))
		fail_msg("PAUSE completed while a transaction still held a server");
	r = harness_query(admin2, "SHOW STATE");
	assert_string_equal(harness_value(r, 1, "value"), "yes"); /* paused */
	PQclear(r);

	/* The transaction in flight may finish. */
	assert_int_equal(harness_scalar_ll(a, "SELECT 2"), 2);
	harness_exec(a, "COMMIT");
	if (!harness_result_within(admin, DONE_MS))
		fail_msg("PAUSE did not complete within %d ms of the COMMIT", DONE_MS);
	expect_tag(admin, "PAUSE", "PAUSE");

	/* PAUSE answered only once every server was closed. */
	r = harness_query(admin2, "SHOW SERVERS");
	if (PQntuples(r) != 0)
		fail_msg("SHOW SERVERS lists %d servers after PAUSE", PQntuples(r));
	PQclear(r);
	super = harness_connect_pg_super("postgres");
	deadline = harness_now_ms() + 3000;
	while ((n = harness_count_server_conns(super, fx->db, fx->app_user)) > 0 &&
	       harness_now_ms() < deadline)
		harness_sleep_ms(20);
	PQfinish(super);
	assert_int_equal(n, 0);

	/* New transactions wait. */
	assert_int_equal(PQsendQuery(b, "SELECT 42"), 1);
	if (harness_result_within(b, BLOCKED_MS))
		fail_msg("a query ran while the pooler was paused");
	assert_int_equal(show_ll(admin2, "SHOW POOLS", "database", fx->db, "cl_waiting"), 1);

	command(admin, "RESUME", "RESUME");
	if (!harness_result_within(b, DONE_MS))
		fail_msg("the held query did not run within %d ms of RESUME", DONE_MS);
	r = PQgetResult(b);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "42");
	PQclear(r);
	assert_null(PQgetResult(b));
	r = harness_query(admin2, "SHOW STATE");
	assert_string_equal(harness_value(r, 1, "value"), "no");
	PQclear(r);

	PQfinish(a);
	PQfinish(b);
	PQfinish(admin);
	PQfinish(admin2);
	harness_pooler_stop(&p, 20);
}

static void test_admin_resume_without_pause_and_second_pause_give_08P01(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	PGconn *admin;
	char sql[128], msg[128];

	start_pooler(&p);
	admin = harness_connect_admin(&p);
	expect_error(admin, "RESUME", "08P01", "pooler is not paused/suspended");
	command(admin, "PAUSE", "PAUSE");    /* no servers: at once */
	expect_error(admin, "PAUSE", "08P01", "already suspended/paused");
	harness_fmt(sql, sizeof(sql), "PAUSE %s", fx->db);
	expect_error(admin, sql, "08P01", "already suspended/paused");
	command(admin, "RESUME", "RESUME");

	/* Per database. */
	command(admin, sql, "PAUSE");
	assert_int_equal(show_ll(admin, "SHOW DATABASES", "name", fx->db, "paused"), 1);
	harness_fmt(sql, sizeof(sql), "RESUME %s", fx->db);
	command(admin, sql, "RESUME");
	assert_int_equal(show_ll(admin, "SHOW DATABASES", "name", fx->db, "paused"), 0);
	harness_fmt(msg, sizeof(msg), "database %s is not paused", fx->db);
	expect_error(admin, sql, "08P01", msg);
	expect_error(admin, "PAUSE nosuchdb", "08P01", "no such database: nosuchdb");
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/* ---- DISABLE / ENABLE ----------------------------------------------------- */

static void test_admin_disable_refuses_new_logins_and_enable_allows_them(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct harness_login login;
	PGconn *admin, *a, *c;
	char sql[128], ci[512];

	start_pooler(&p);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(a, "SELECT 1");
	admin = harness_connect_admin(&p);
	expect_error(admin, "DISABLE", "08P01", "a database is required");

	harness_fmt(sql, sizeof(sql), "DISABLE %s", fx->db);
	command(admin, sql, "DISABLE");
	assert_int_equal(show_ll(admin, "SHOW DATABASES", "name", fx->db, "disabled"), 1);
	harness_raw_login(p.port, fx->db, fx->app_user, fx->app_password, &login);
	if (login.ok)
		fail_msg("a new login to disabled database %s succeeded", fx->db);
	if (login.sqlstate[0] == '\0')
		fail_msg("login to a disabled database: no ErrorResponse (%s)", login.message);
	print_message("login to disabled db refused: %s %s\n", login.sqlstate,
		      login.message);
	harness_conninfo(ci, sizeof(ci), p.port, fx->db, fx->app_user, fx->app_password);
	c = PQconnectdb(ci);
	assert_int_not_equal(PQstatus(c), CONNECTION_OK);
	PQfinish(c);
	/* A client already connected keeps working. */
	assert_int_equal(harness_scalar_ll(a, "SELECT 7"), 7);

	harness_fmt(sql, sizeof(sql), "ENABLE %s", fx->db);
	command(admin, sql, "ENABLE");
	assert_int_equal(show_ll(admin, "SHOW DATABASES", "name", fx->db, "disabled"), 0);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	assert_int_equal(harness_scalar_ll(c, "SELECT 8"), 8);
	PQfinish(c);
	PQfinish(a);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/* ---- KILL / KILL_CLIENT --------------------------------------------------- */

static void test_admin_kill_db_drops_its_clients_and_holds_new_tx_until_resume_db(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct late_client lc;
	PGconn *admin, *a, *b;
	long long resumed;
	char sql[128];

	start_pooler(&p);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	b = harness_connect_pooler(&p, NULL, NULL, NULL);
	admin = harness_connect_admin(&p);
	harness_exec(a, "SELECT 1");
	harness_exec(b, "BEGIN");
	harness_exec(b, "SELECT 1");

	harness_fmt(sql, sizeof(sql), "KILL %s", fx->db);
	command(admin, sql, "KILL");
	expect_dropped(a, "idle client after KILL db", NULL);
	expect_dropped(b, "client in a transaction after KILL db", NULL);
	assert_int_equal(show_ll(admin, "SHOW DATABASES", "name", fx->db, "paused"), 1);
	/* KILL pauses the database, not the pooler: a bare RESUME refuses. */
	expect_error(admin, "RESUME", "08P01", "pooler is not paused/suspended");

	late_client_start(&lc, &p);
	harness_sleep_ms(BLOCKED_MS);
	if (lc.done)
		fail_msg("a new client's query finished while %s was killed/paused (%s)",
			 fx->db, lc.ok ? "ok" : lc.error);
	harness_fmt(sql, sizeof(sql), "RESUME %s", fx->db);
	command(admin, sql, "RESUME");
	resumed = harness_now_ms();
	pthread_join(lc.thread, NULL);
	if (!lc.ok)
		fail_msg("the held client failed after RESUME %s: %s", fx->db, lc.error);
	if (lc.done_ms - resumed > DONE_MS)
		fail_msg("the held client took %lld ms after RESUME", lc.done_ms - resumed);
	assert_int_equal(show_ll(admin, "SHOW DATABASES", "name", fx->db, "paused"), 0);

	PQfinish(a);
	PQfinish(b);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

static void test_admin_kill_client_disconnects_exactly_that_client(void **state)
{
	struct harness_pooler p;
	PGconn *admin, *a, *b;
	PGresult *r;
	long long id_a, id_b;
	char sql[64], id[24];

	start_pooler(&p);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	b = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(a, "SELECT 1");
	harness_exec(b, "SELECT 1");
	admin = harness_connect_admin(&p);
	id_a = client_id(admin, a);
	id_b = client_id(admin, b);
	assert_true(id_a != id_b);

	harness_fmt(sql, sizeof(sql), "KILL_CLIENT %lld", id_a);
	command(admin, sql, "KILL_CLIENT");
	expect_dropped(a, "KILL_CLIENT's victim", "admin forced disconnect");
	assert_int_equal(harness_scalar_ll(b, "SELECT 5"), 5);

	r = harness_query(admin, "SHOW CLIENTS");
	harness_fmt(id, sizeof(id), "%lld", id_a);
	if (harness_find_row(r, "id", id, NULL, NULL) >= 0)
		fail_msg("SHOW CLIENTS still lists killed client %lld", id_a);
	harness_fmt(id, sizeof(id), "%lld", id_b);
	assert_true(harness_find_row(r, "id", id, NULL, NULL) >= 0);
	PQclear(r);

	expect_error(admin, "KILL_CLIENT 99999999", "08P01", "client not found");
	expect_error(admin, "KILL_CLIENT abc", "08P01", "invalid client pointer supplied");
	PQfinish(a);
	PQfinish(b);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/* ---- RECONNECT / WAIT_CLOSE ----------------------------------------------- */

static void test_admin_reconnect_marks_servers_close_needed_and_new_tx_get_new_backends(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	PGconn *admin, *a, *b;
	PGresult *r;
	long long pid_a, pid_b, pid;
	char spid[16];
	int i, row;

	start_pooler(&p);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	b = harness_connect_pooler(&p, NULL, NULL, NULL);
	admin = harness_connect_admin(&p);
	harness_exec(a, "BEGIN");
	pid_a = harness_scalar_ll(a, "SELECT pg_backend_pid()");
	pid_b = harness_scalar_ll(b, "SELECT pg_backend_pid()");
	assert_true(pid_a != pid_b);

	command(admin, "RECONNECT", "RECONNECT");
	r = harness_query(admin, "SHOW SERVERS");
	harness_fmt(spid, sizeof(spid), "%lld", pid_a);
	row = harness_find_row(r, "remote_pid", spid, NULL, NULL);
	if (row < 0)
		fail_msg("SHOW SERVERS lost the server of the open transaction");
	for (i = 0; i < PQntuples(r); i++)
		if (strcmp(harness_value(r, i, "database"), fx->db) == 0 &&
		    harness_value_ll(r, i, "close_needed") != 1)
			fail_msg("after RECONNECT server %s (%s) has close_needed %s",
				 harness_value(r, i, "remote_pid"),
				 harness_value(r, i, "state"),
				 harness_value(r, i, "close_needed"));
	PQclear(r);

	/* The open transaction keeps its backend to the end. */
	assert_int_equal(harness_scalar_ll(a, "SELECT pg_backend_pid()"), pid_a);
	harness_exec(a, "COMMIT");
	pid = harness_scalar_ll(a, "SELECT pg_backend_pid()");
	if (pid == pid_a || pid == pid_b)
		fail_msg("a transaction after RECONNECT ran on old backend %lld", pid);
	pid = harness_scalar_ll(b, "SELECT pg_backend_pid()");
	if (pid == pid_a || pid == pid_b)
		fail_msg("a transaction after RECONNECT ran on old backend %lld", pid);
	wait_backend_gone((int)pid_a, 3000);
	wait_backend_gone((int)pid_b, 3000);
	PQfinish(a);
	PQfinish(b);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

static void test_admin_wait_close_returns_once_reconnected_servers_are_closed(void **state)
{
	struct harness_pooler p;
	PGconn *admin, *a;
	long long pid_a;

	start_pooler(&p);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	admin = harness_connect_admin(&p);
	harness_exec(a, "BEGIN");
	pid_a = harness_scalar_ll(a, "SELECT pg_backend_pid()");

	/* Nothing to close: it answers at once. */
	command(admin, "WAIT_CLOSE", "WAIT_CLOSE");

	command(admin, "RECONNECT", "RECONNECT");
	assert_int_equal(PQsendQuery(admin, "WAIT_CLOSE"), 1);
	if (harness_result_within(admin, BLOCKED_MS))
		fail_msg("WAIT_CLOSE completed while a close_needed server was in use");
	harness_exec(a, "COMMIT");
	if (!harness_result_within(admin, DONE_MS))
		fail_msg("WAIT_CLOSE did not complete within %d ms of the COMMIT", DONE_MS);
	expect_tag(admin, "WAIT_CLOSE", "WAIT_CLOSE");
	wait_backend_gone((int)pid_a, 2000);
	assert_true(harness_scalar_ll(a, "SELECT pg_backend_pid()") != pid_a);
	PQfinish(a);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/* ---- SET / RELOAD ------------------------------------------------------- */

static void test_admin_set_changes_reloadable_keys_and_refuses_the_others(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	PGconn *admin, *a;
	PGresult *r;
	char port[16], *v;
	int row;

	start_pooler(&p);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(a, "SELECT 1");
	admin = harness_connect_admin(&p);

	command(admin, "SET default_pool_size = 3", "SET default_pool_size=3");
	r = harness_query(admin, "SHOW CONFIG");
	row = harness_find_row(r, "key", "default_pool_size", NULL, NULL);
	assert_true(row >= 0);
	assert_string_equal(harness_value(r, row, "value"), "3");
	assert_string_equal(harness_value(r, row, "changeable"), "yes");
	PQclear(r);
	assert_int_equal(show_ll(admin, "SHOW DATABASES", "name", fx->db, "pool_size"), 3);
	/* The live pool picked it up. */
	assert_int_equal(show_ll(admin, "SHOW SATURATION", "database", fx->db, "pool_size"), 3);

	command(admin, "SET default_pool_size TO 4", "SET default_pool_size=4");
	v = show_config(admin, "default_pool_size");
	assert_string_equal(v, "4");
	free(v);

	/* pgmux refuses keys that need a restart instead of ignoring them. */
	expect_error(admin, "SET listen_port = 1", "08P01", "SET failed");
	v = show_config(admin, "listen_port");
	harness_fmt(port, sizeof(port), "%d", p.port);
	assert_string_equal(v, port);
	free(v);
	expect_error(admin, "SET default_pool_size = banana", "08P01", "SET failed");
	expect_error(admin, "SET no_such_key = 1", "08P01", "SET failed");
	v = show_config(admin, "default_pool_size");
	assert_string_equal(v, "4");
	free(v);
	assert_int_equal(harness_scalar_ll(a, "SELECT 3"), 3);
	PQfinish(a);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

static void test_admin_reload_with_a_broken_config_gives_F0000_and_keeps_serving(void **state)
{
	struct harness_pooler p;
	struct harness_pooler_cfg broken = { .settings = "default_pool_size = banana\n" };
	struct harness_pooler_cfg fixed = { .settings = "default_pool_size = 4\n" };
	PGconn *admin, *a, *c;
	char *v;

	start_pooler(&p);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(a, "SELECT 1");
	admin = harness_connect_admin(&p);

	harness_pooler_rewrite(&p, &broken);
	expect_error(admin, "RELOAD", "F0000",
		     "RELOAD failed, see logs for additional details");
	assert_true(harness_pooler_alive(&p));
	assert_int_equal(harness_scalar_ll(a, "SELECT 11"), 11);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	assert_int_equal(harness_scalar_ll(c, "SELECT 12"), 12);
	PQfinish(c);
	v = show_config(admin, "default_pool_size");
	assert_string_equal(v, "5"); /* the old config is still in force */
	free(v);

	harness_pooler_rewrite(&p, &fixed);
	command(admin, "RELOAD", "RELOAD");
	v = show_config(admin, "default_pool_size");
	assert_string_equal(v, "4");
	free(v);
	assert_int_equal(harness_scalar_ll(a, "SELECT 13"), 13);
	PQfinish(a);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/* ---- SHUTDOWN -------------------------------------------------------------- */

static void assert_exited_0(struct harness_pooler *p, int timeout_s)
{
	if (!harness_pooler_wait_exit(p, timeout_s)) {
		harness_pooler_dump_log(p);
		fail_msg("pooler still running %d s after it should have exited", timeout_s);
	}
	if (!WIFEXITED(p->exit_status) || WEXITSTATUS(p->exit_status) != 0) {
		harness_pooler_dump_log(p);
		fail_msg("pooler ended with wait status 0x%x, expected exit 0",
			 p->exit_status);
	}
	/* Already reaped: checks the logs for sanitizer reports, cleans up. */
	harness_pooler_stop(p, 1);
}

static void test_admin_shutdown_wait_for_clients_lets_a_client_finish_then_exits_0(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	PGconn *admin, *a, *c;
	char ci[512];

	start_pooler(&p);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(a, "SELECT 1");
	admin = harness_connect_admin(&p);
	command(admin, "SHUTDOWN WAIT_FOR_CLIENTS", "SHUTDOWN");

	/* No new clients over TCP. */
	harness_conninfo(ci, sizeof(ci), p.port, fx->db, fx->app_user, fx->app_password);
	c = PQconnectdb(ci);
	if (PQstatus(c) == CONNECTION_OK)
		fail_msg("a new client connected after SHUTDOWN WAIT_FOR_CLIENTS");
	PQfinish(c);

	/* The connected client finishes its work. */
	harness_exec(a, "BEGIN");
	assert_int_equal(harness_scalar_ll(a, "SELECT 21"), 21);
	harness_exec(a, "COMMIT");
	PQfinish(admin);
	harness_sleep_ms(500);
	if (!harness_pooler_alive(&p))
		fail_msg("pooler exited while a client was still connected (status 0x%x)",
			 p.exit_status);
	assert_int_equal(harness_scalar_ll(a, "SELECT 22"), 22);
	PQfinish(a);
	assert_exited_0(&p, 10);
}

static void test_admin_immediate_shutdown_sends_nothing_and_exits_0(void **state)
{
	struct harness_pooler p;
	PGconn *admin;
	PGresult *r;

	start_pooler(&p);
	admin = harness_connect_admin(&p);
	assert_int_equal(PQsendQuery(admin, "SHUTDOWN"), 1);
	if (!harness_result_within(admin, 10000))
		fail_msg("SHUTDOWN: the console connection stayed open 10 s");
	r = PQgetResult(admin);
	assert_non_null(r);
	if (PQresultStatus(r) == PGRES_COMMAND_OK || harness_sqlstate(r)[0] != '\0')
		fail_msg("immediate SHUTDOWN answered (%s, sqlstate '%s', tag '%s'); "
			 "PgBouncer sends nothing", PQresStatus(PQresultStatus(r)),
			 harness_sqlstate(r), PQcmdStatus(r));
	PQclear(r);
	PQfinish(admin);
	assert_exited_0(&p, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_admin_pause_waits_for_the_active_tx_then_holds_new_tx_until_resume,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_resume_without_pause_and_second_pause_give_08P01,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_disable_refuses_new_logins_and_enable_allows_them,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_kill_db_drops_its_clients_and_holds_new_tx_until_resume_db,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_kill_client_disconnects_exactly_that_client,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_reconnect_marks_servers_close_needed_and_new_tx_get_new_backends,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_wait_close_returns_once_reconnected_servers_are_closed,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_set_changes_reloadable_keys_and_refuses_the_others,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_reload_with_a_broken_config_gives_F0000_and_keeps_serving,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_shutdown_wait_for_clients_lets_a_client_finish_then_exits_0,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_immediate_shutdown_sends_nothing_and_exits_0,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_admin_commands", tests, NULL, NULL);
}
