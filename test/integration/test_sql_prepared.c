/*
 * test_sql_prepared.c: SQL-level PREPARE / EXECUTE / DEALLOCATE [ALL] and
 * DISCARD ALL in transaction and statement mode (sqlprep.c), against the
 * real PostgreSQL fixture, with a pool of 2 so that a client's
 * transactions run on both servers:
 *   - a statement follows its client onto the other server (the backend
 *     pid changes, results stay right), also via EXPLAIN EXECUTE, CREATE
 *     TABLE AS EXECUTE, a protocol-level Bind of the SQL name, and a
 *     PREPARE sent over the extended protocol (unnamed Parse, as psycopg 3
 *     and asyncpg send every statement);
 *   - another client never sees it: EXECUTE is 26000 on the very server
 *     it was prepared on, and the same name with its own text is its own;
 *   - DEALLOCATE, DEALLOCATE ALL, DISCARD ALL; a failed PREPARE and a
 *     multi-statement string that fails half way end as PostgreSQL ends
 *     them (checked against a direct connection running the same SQL);
 *   - quoted, folded and over-long names;
 *   - 12 clients on 2 servers, each with its own text under one name;
 *   - statement mode; SHOW CLIENTS/SERVERS prepared_statements; and no
 *     server reset counted in SHOW SESSION_LEAKS for any of it.
 */
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

#define CLIENTS 12

static void start(struct harness_pooler *p, const char *mode)
{
	char settings[256];
	struct harness_pooler_cfg cfg = { .settings = settings };

	harness_fmt(settings, sizeof(settings), "pool_mode = %s\ndefault_pool_size = 2\n", mode);
	harness_wait_no_server_conns(harness_fixture()->db, harness_fixture()->app_user, 15);
	harness_pooler_start(p, &cfg);
}

static PGconn *app(const struct harness_pooler *p)
{
	return harness_connect_pooler(p, NULL, NULL, NULL);
}

static long long backend(PGconn *c)
{
	return harness_scalar_ll(c, "SELECT pg_backend_pid()");
}

static void expect_scalar(PGconn *c, const char *sql, const char *want)
{
	char *got = harness_scalar(c, sql);

	if (!got || strcmp(got, want) != 0)
		fail_msg("%s: got %s, want %s", sql, got ? got : "NULL", want);
	free(got);
}

/*
 * Runs sql on c while another client holds the server c used last in an
 * open transaction: servers are handed out most recently used first, so
 * c's transaction lands on the other server. Returns that backend's pid.
 */
static long long on_other_server(const struct harness_pooler *p, PGconn *c, const char *sql,
				 const char *want)
{
	PGconn *hold = app(p);
	long long held, pid;

	harness_exec(hold, "BEGIN");
	held = backend(hold);
	if (want)
		expect_scalar(c, sql, want);
	else
		harness_exec(c, sql);
	pid = backend(c); /* still the other server: hold has its own */
	assert_true(pid != held);
	harness_exec(hold, "COMMIT");
	PQfinish(hold);
	return pid;
}

/* Same, expecting sql to fail with sqlstate there. */
static void fails_on_other_server(const struct harness_pooler *p, PGconn *c, const char *sql,
				  const char *sqlstate)
{
	PGconn *hold = app(p);

	harness_exec(hold, "BEGIN");
	harness_exec_sqlstate(c, sql, sqlstate);
	harness_exec(hold, "COMMIT");
	PQfinish(hold);
}

/* A column of the app user's row of SHOW SESSION_LEAKS. */
static long long leak_count(const struct harness_pooler *p, const char *col)
{
	return harness_admin_ll(p, "SHOW SESSION_LEAKS", "user", harness_fixture()->app_user,
				col);
}

/* SHOW CLIENTS prepared_statements of the app user's clients, summed. */
static long long client_statements(const struct harness_pooler *p)
{
	PGconn *a = harness_connect_admin(p);
	PGresult *r = harness_query(a, "SHOW CLIENTS");
	long long sum = 0;

	for (int i = 0; i < PQntuples(r); i++) {
		if (strcmp(harness_value(r, i, "user"), harness_fixture()->app_user) == 0)
			sum += harness_value_ll(r, i, "prepared_statements");
	}
	PQclear(r);
	PQfinish(a);
	return sum;
}

static void no_resets(const struct harness_pooler *p)
{
	assert_int_equal(leak_count(p, "prepare"), 0);
	assert_int_equal(leak_count(p, "resets"), 0);
}

/* ---- tests ------------------------------------------------------------- */

static void test_sql_prepared_statement_follows_its_client_to_the_other_server(void **state)
{
	struct harness_pooler p;
	PGconn *c;
	long long first, pid;
	bool moved = false;

	(void)state;
	start(&p, "transaction");
	c = app(&p);
	harness_exec(c, "PREPARE plus_one(int) AS SELECT $1 + 1");
	first = backend(c);
	for (int i = 0; i < 4; i++) {
		pid = on_other_server(&p, c, "EXECUTE plus_one(41)", "42");
		moved |= pid != first;
	}
	assert_true(moved);
	on_other_server(&p, c, "EXPLAIN (COSTS OFF) EXECUTE plus_one(1)", "Result");
	on_other_server(&p, c, "CREATE TEMP TABLE IF NOT EXISTS t_ctas AS EXECUTE plus_one(9)",
			NULL);
	/* A protocol-level Bind of the SQL name (libpq's PQexecPrepared). */
	{
		const char *v[1] = { "99" };
		PGresult *r = PQexecPrepared(c, "plus_one", 1, v, NULL, NULL, 0);

		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		assert_string_equal(PQgetvalue(r, 0, 0), "100");
		PQclear(r);
	}
	/* PREPARE over the extended protocol (an unnamed Parse). */
	{
		PGresult *r = PQexecParams(c, "PREPARE five AS SELECT 5", 0, NULL, NULL, NULL,
					   NULL, 0);

		assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
		PQclear(r);
		on_other_server(&p, c, "EXECUTE five", "5");
		r = PQexecParams(c, "EXECUTE five", 0, NULL, NULL, NULL, NULL, 0);
		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		assert_string_equal(PQgetvalue(r, 0, 0), "5");
		PQclear(r);
	}
	assert_int_equal(client_statements(&p), 2);
	PQfinish(c);
	/* CREATE TEMP TABLE is session state of its own: that one reset is
	 * expected; PREPARE never is. */
	assert_int_equal(leak_count(&p, "prepare"), 0);
	harness_pooler_stop(&p, 10);
}

static void test_sql_prepared_statement_is_invisible_to_other_clients(void **state)
{
	struct harness_pooler p;
	PGconn *a, *b;
	char *text;

	(void)state;
	start(&p, "transaction");
	a = app(&p);
	b = app(&p);
	for (int round = 0; round < 3; round++) {
		harness_exec(a, "PREPARE mine AS SELECT 'a'");
		/* Most recently used first: b gets the server a just used. */
		harness_exec_sqlstate(b, "EXECUTE mine", "26000");
		harness_exec_sqlstate(b, "DEALLOCATE mine", "26000");
		expect_scalar(b, "SELECT count(*) FROM pg_prepared_statements", "0");
		/* The same name is free for b, with its own text. */
		harness_exec(b, "PREPARE mine AS SELECT 'b'");
		expect_scalar(a, "EXECUTE mine", "a");
		expect_scalar(b, "EXECUTE mine", "b");
		text = harness_scalar(a, "SELECT statement FROM pg_prepared_statements");
		assert_non_null(strstr(text, "'a'"));
		free(text);
		/* Already exists: 42P05 for the owner only. */
		harness_exec_sqlstate(a, "PREPARE mine AS SELECT 'again'", "42P05");
		harness_exec(a, "DEALLOCATE mine");
		harness_exec(b, "DEALLOCATE mine");
	}
	PQfinish(a);
	PQfinish(b);
	no_resets(&p);
	harness_pooler_stop(&p, 10);
}

static void test_sql_deallocate_deallocate_all_and_discard_all(void **state)
{
	struct harness_pooler p;
	PGconn *c;

	(void)state;
	start(&p, "transaction");
	c = app(&p);
	harness_exec(c, "PREPARE d1 AS SELECT 1");
	harness_exec(c, "PREPARE d2 AS SELECT 2");
	harness_exec(c, "DEALLOCATE d1");
	fails_on_other_server(&p, c, "EXECUTE d1", "26000");
	on_other_server(&p, c, "EXECUTE d2", "2");
	harness_exec(c, "DEALLOCATE PREPARE ALL");
	fails_on_other_server(&p, c, "EXECUTE d2", "26000");
	harness_exec_sqlstate(c, "EXECUTE d2", "26000");
	harness_exec(c, "PREPARE d3 AS SELECT 3");
	on_other_server(&p, c, "EXECUTE d3", "3");
	harness_exec(c, "DISCARD ALL");
	fails_on_other_server(&p, c, "EXECUTE d3", "26000");
	harness_exec_sqlstate(c, "EXECUTE d3", "26000");
	harness_exec_sqlstate(c, "DEALLOCATE never_made", "26000");
	assert_int_equal(client_statements(&p), 0);
	PQfinish(c);
	no_resets(&p);
	harness_pooler_stop(&p, 10);
}

/* What EXECUTE name gives on c: its value, or "error <sqlstate>". */
static void execute_outcome(PGconn *c, const char *name, char *out, size_t len)
{
	char sql[128];
	PGresult *r;

	harness_fmt(sql, sizeof(sql), "EXECUTE %s", name);
	r = PQexec(c, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
	else
		snprintf(out, len, "error %s", harness_sqlstate(r));
	PQclear(r);
}

static void test_sql_failed_and_partial_prepares_end_as_on_postgresql(void **state)
{
	static const char *const steps[] = {
		"PREPARE m1 AS SELECT 'm1'; PREPARE m2 AS SELECT no_such_column; "
		"PREPARE m3 AS SELECT 'm3'",
		"PREPARE bad AS SELEC 1",
		"BEGIN; PREPARE r1 AS SELECT 'r1'; ROLLBACK",
		"BEGIN; PREPARE r2 AS SELECT 'r2'; SELECT 1/0",
		"PREPARE \"Mixed Case\" AS SELECT 'mixed'; PREPARE UPPER_case AS SELECT 'upper'",
		"PREPARE n123456789012345678901234567890123456789012345678901234567890xyz AS "
		"SELECT 'long'",
	};
	static const char *const names[] = {
		"m1", "m2", "m3", "bad", "r1", "r2", "\"Mixed Case\"", "upper_CASE",
		"n123456789012345678901234567890123456789012345678901234567890",
	};
	struct harness_pooler p;
	PGconn *c, *direct;
	char want[64], got[64];

	(void)state;
	start(&p, "transaction");
	c = app(&p);
	direct = harness_connect_pg_super(NULL);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		PGresult *rp = PQexec(c, steps[i]);
		PGresult *rd = PQexec(direct, steps[i]);

		/* Each step ends the same way (its SQLSTATE, "" if it worked). */
		if (strcmp(harness_sqlstate(rp), harness_sqlstate(rd)) != 0)
			fail_msg("%s: PostgreSQL gives \"%s\", through pgmux \"%s\"", steps[i],
				 harness_sqlstate(rd), harness_sqlstate(rp));
		PQclear(rp);
		PQclear(rd);
		if (PQtransactionStatus(c) != PQTRANS_IDLE)
			harness_exec(c, "ROLLBACK");
		if (PQtransactionStatus(direct) != PQTRANS_IDLE)
			harness_exec(direct, "ROLLBACK");
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		PGconn *hold = app(&p);

		execute_outcome(direct, names[i], want, sizeof(want));
		harness_exec(hold, "BEGIN");
		execute_outcome(c, names[i], got, sizeof(got));
		harness_exec(hold, "COMMIT");
		PQfinish(hold);
		if (strcmp(want, got) != 0)
			fail_msg("EXECUTE %s: PostgreSQL gives %s, through pgmux %s", names[i], want,
				 got);
	}
	harness_exec(direct, "DEALLOCATE ALL");
	PQfinish(direct);
	PQfinish(c);
	no_resets(&p);
	harness_pooler_stop(&p, 10);
}

/* 30 statements of 3,500 bytes each: more than 64 kB to prepare again on
 * the other server in one round trip. */
static void test_sql_statements_over_64kb_in_all_follow_their_client(void **state)
{
	struct harness_pooler p;
	PGconn *c;
	char pad[3501], sql[4000], want[16];

	(void)state;
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	start(&p, "transaction");
	c = app(&p);
	for (int k = 0; k < 30; k++) {
		harness_fmt(sql, sizeof(sql), "PREPARE big%d AS SELECT %d + length('%s')", k, k,
			    pad);
		harness_exec(c, sql);
	}
	for (int k = 0; k < 30; k += 7) {
		harness_fmt(sql, sizeof(sql), "EXECUTE big%d", k);
		harness_fmt(want, sizeof(want), "%d", k + 3500);
		on_other_server(&p, c, sql, want);
	}
	PQfinish(c);
	no_resets(&p);
	harness_pooler_stop(&p, 10);
}

static void test_sql_many_clients_one_name_each_its_own_text(void **state)
{
	struct harness_pooler p;
	PGconn *c[CLIENTS];
	char sql[128], want[32];

	(void)state;
	start(&p, "transaction");
	for (int k = 0; k < CLIENTS; k++) {
		c[k] = app(&p);
		harness_fmt(sql, sizeof(sql), "PREPARE q(int) AS SELECT %d * 1000 + $1", k);
		harness_exec(c[k], sql);
		harness_exec(c[k], "PREPARE shared AS SELECT 'same text'");
	}
	for (int round = 0; round < 20; round++) {
		for (int k = 0; k < CLIENTS; k++) {
			int who = (k * 5 + round) % CLIENTS;

			harness_fmt(sql, sizeof(sql), "EXECUTE q(%d)", round);
			harness_fmt(want, sizeof(want), "%d", who * 1000 + round);
			expect_scalar(c[who], sql, want);
			expect_scalar(c[who], "EXECUTE shared", "same text");
		}
	}
	assert_int_equal(client_statements(&p), 2 * CLIENTS);
	for (int k = 0; k < CLIENTS; k++)
		PQfinish(c[k]);
	no_resets(&p);
	harness_pooler_stop(&p, 10);
}

/*
 * Statement mode has no transaction blocks to hold a server with: another
 * client keeps the server c used last busy with pg_sleep (seen running
 * in pg_stat_activity) while c runs sql, which must give want.
 */
static void on_other_server_busy(const struct harness_pooler *p, PGconn *c, const char *sql,
				 const char *want)
{
	PGconn *hold = app(p);
	PGconn *super = harness_connect_pg_super(NULL);
	PGresult *r;
	bool running = false;

	assert_int_equal(PQsendQuery(hold, "SELECT pg_sleep(1), 'held'"), 1);
	for (int i = 0; i < 500 && !running; i++) {
		char *n = harness_scalar(super, "SELECT count(*) FROM pg_stat_activity "
						"WHERE query LIKE 'SELECT pg_sleep(1), %' "
						"AND state = 'active'");

		running = strcmp(n, "1") == 0;
		free(n);
		if (!running)
			usleep(10 * 1000);
	}
	assert_true(running);
	if (want)
		expect_scalar(c, sql, want);
	else
		harness_exec_sqlstate(c, sql, "26000");
	while ((r = PQgetResult(hold)) != NULL)
		PQclear(r);
	PQfinish(super);
	PQfinish(hold);
}

static void test_sql_prepared_statement_in_statement_mode(void **state)
{
	struct harness_pooler p;
	PGconn *c;

	(void)state;
	start(&p, "statement");
	c = app(&p);
	harness_exec(c, "PREPARE sm(int) AS SELECT $1 * 2");
	for (int i = 0; i < 3; i++)
		on_other_server_busy(&p, c, "EXECUTE sm(21)", "42");
	harness_exec(c, "DEALLOCATE sm");
	on_other_server_busy(&p, c, "EXECUTE sm(1)", NULL);
	PQfinish(c);
	no_resets(&p);
	harness_pooler_stop(&p, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
			test_sql_prepared_statement_follows_its_client_to_the_other_server,
			harness_teardown),
		cmocka_unit_test_teardown(test_sql_prepared_statement_is_invisible_to_other_clients,
					  harness_teardown),
		cmocka_unit_test_teardown(test_sql_deallocate_deallocate_all_and_discard_all,
					  harness_teardown),
		cmocka_unit_test_teardown(test_sql_failed_and_partial_prepares_end_as_on_postgresql,
					  harness_teardown),
		cmocka_unit_test_teardown(test_sql_statements_over_64kb_in_all_follow_their_client,
					  harness_teardown),
		cmocka_unit_test_teardown(test_sql_many_clients_one_name_each_its_own_text,
					  harness_teardown),
		cmocka_unit_test_teardown(test_sql_prepared_statement_in_statement_mode,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_sql_prepared", tests, NULL, NULL);
}
