/*
 * test_session_pool.c: session pooling. A client keeps one server for its
 * whole life, so session state (SET, prepared statements, temp tables)
 * persists across its transactions; when it leaves, the server is reset
 * before the next client gets it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

/* One server, so the next client is guaranteed to get the same backend. */
static const struct harness_pooler_cfg session_cfg = {
	.settings = "pool_mode = session\ndefault_pool_size = 1\n",
};

static void assert_scalar(PGconn *c, const char *sql, const char *want)
{
	char *v = harness_scalar(c, sql);

	if (v == NULL || strcmp(v, want) != 0)
		fail_msg("\"%s\" returned '%s', expected '%s'", sql, v ? v : "NULL", want);
	free(v);
}

static void test_session_pool_set_persists_across_transactions(void **state)
{
	struct harness_pooler p;
	long long pid;
	PGconn *c;
	int i;

	harness_pooler_start(&p, &session_cfg);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	pid = harness_scalar_ll(c, "SELECT pg_backend_pid()");
	harness_exec(c, "SET statement_timeout = '12345ms'");
	harness_exec(c, "PREPARE sess_stmt AS SELECT 40 + 2");
	for (i = 0; i < 5; i++) {
		harness_exec(c, "BEGIN");
		assert_scalar(c, "SHOW statement_timeout", "12345ms");
		assert_int_equal(harness_scalar_ll(c, "SELECT pg_backend_pid()"), pid);
		harness_exec(c, "COMMIT");
		assert_scalar(c, "EXECUTE sess_stmt", "42");
	}
	assert_scalar(c, "SHOW statement_timeout", "12345ms");
	PQfinish(c);
	harness_pooler_stop(&p, 20);
}

static void test_session_pool_set_not_visible_to_next_client(void **state)
{
	struct harness_pooler p;
	long long pid_a, pid_b;
	PGconn *a, *b;

	harness_pooler_start(&p, &session_cfg);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	pid_a = harness_scalar_ll(a, "SELECT pg_backend_pid()");
	harness_exec(a, "SET statement_timeout = '12345ms'");
	harness_exec(a, "SET application_name = 'client_a'");
	harness_exec(a, "PREPARE sess_stmt AS SELECT 1");
	harness_exec(a, "CREATE TEMP TABLE sess_tmp (x int)");
	assert_scalar(a, "SHOW statement_timeout", "12345ms");
	PQfinish(a);

	/* With a pool of one, b waits for a's server and must get it clean. */
	b = harness_connect_pooler(&p, NULL, NULL, NULL);
	pid_b = harness_scalar_ll(b, "SELECT pg_backend_pid()");
	assert_int_equal(pid_b, pid_a);
	assert_scalar(b, "SHOW statement_timeout", "0");
	assert_scalar(b, "SELECT count(*) FROM pg_prepared_statements", "0");
	assert_scalar(b, "SELECT coalesce(to_regclass('sess_tmp')::text, 'gone')", "gone");
	harness_exec_sqlstate(b, "EXECUTE sess_stmt", "26000");
	PQfinish(b);
	harness_pooler_stop(&p, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_session_pool_set_persists_across_transactions,
					  harness_teardown),
		cmocka_unit_test_teardown(test_session_pool_set_not_visible_to_next_client,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_session_pool", tests, NULL, NULL);
}
