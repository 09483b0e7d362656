/*
 * test_drivers.c: real client drivers through pgmux in transaction mode,
 * 200 connections against default_pool_size = 5: node-postgres with named
 * statements, postgres.js (prepares by default), psycopg2, psycopg 3 and
 * asyncpg (always prepares). Each test starts its own pooler and runs one
 * script from test/drivers/ as a subprocess; the script checks every result
 * and exits non-zero with the first mismatches on stderr, which this test
 * prints. The pooler must also never open more than its 5 server connections.
 *
 * Each test is its own ctest (drivers_<name>): the program takes the test
 * name as its only argument. Scripts come from PGMUX_DRIVERS_DIR; the Node
 * packages are installed there by scripts/deps.sh (npm ci).
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

#ifndef PGMUX_DRIVERS_DIR
#error "PGMUX_DRIVERS_DIR must name test/drivers"
#endif

#define DEBIAN_PYTHON "/usr/bin/python3"
#define DRIVER_TIMEOUT_S 240
#define POOL_SIZE 5

/*
 * Starts a transaction-mode pooler, runs interp + script (interp NULL: the
 * script alone) against it with the libpq environment variables, and fails
 * with the script's own report unless it exits 0.
 */
static void run_driver(const char *interp, const char *script)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = {
		.settings = "pool_mode = transaction\n"
			    "default_pool_size = 5\n"
			    "max_client_conn = 300\n",
	};
	struct harness_pooler pooler;
	struct harness_poller poller;
	char path[HARNESS_PATH_MAX], out[HARNESS_PATH_MAX], err[HARNESS_PATH_MAX];
	char host[80], port[32], user[96], pw[128], db[96];
	char *env[] = { host, port, user, pw, db, "PGSSLMODE=disable", NULL };
	char *argv[3];
	long long t0;
	int rc, n = 0, peak;
	char *text;

	harness_fmt(path, sizeof(path), "%s/%s", PGMUX_DRIVERS_DIR, script);
	if (access(path, R_OK) != 0)
		fail_msg("driver script %s is missing", path);
	if (interp != NULL)
		argv[n++] = (char *)interp;
	argv[n++] = path;
	argv[n] = NULL;

	harness_wait_no_server_conns(fx->db, fx->app_user, 30);
	harness_pooler_start(&pooler, &cfg);
	harness_fmt(host, sizeof(host), "PGHOST=127.0.0.1");
	harness_fmt(port, sizeof(port), "PGPORT=%d", pooler.port);
	harness_fmt(user, sizeof(user), "PGUSER=%s", fx->app_user);
	harness_fmt(pw, sizeof(pw), "PGPASSWORD=%s", fx->app_password);
	harness_fmt(db, sizeof(db), "PGDATABASE=%s", fx->db);
	harness_path(out, sizeof(out), &pooler, "driver.out");
	harness_path(err, sizeof(err), &pooler, "driver.err");

	harness_poller_start(&poller, fx->db, fx->app_user);
	t0 = harness_now_ms();
	rc = harness_run(argv, env, NULL, out, err, DRIVER_TIMEOUT_S);
	peak = harness_poller_stop(&poller);

	text = harness_read_file(out, NULL);
	printf("%s: exit %d after %.1f s, peak %d server connections\n%s", script, rc,
	       (double)(harness_now_ms() - t0) / 1000.0, peak, text);
	fflush(stdout);
	free(text);
	if (rc != 0) {
		harness_print_tail("driver stderr", err, 6000);
		if (rc < 0) {
			harness_pooler_dump_log(&pooler);
			fail_msg("%s timed out after %d s", script, DRIVER_TIMEOUT_S);
		}
		harness_print_pooler_problems(&pooler, 30);
		fail_msg("%s exited %d (its report is above)", script, rc);
	}
	if (!harness_pooler_alive(&pooler)) {
		harness_pooler_dump_log(&pooler);
		fail_msg("pgmux died while %s ran", script);
	}
	if (peak > POOL_SIZE)
		fail_msg("%d server connections for %s/%s, pool size is %d", peak,
			 fx->db, fx->app_user, POOL_SIZE);
	harness_pooler_stop(&pooler, 20);
}

/* Node scripts need test/drivers/node/node_modules (npm ci). */
static void require_node_modules(void)
{
	char path[HARNESS_PATH_MAX];

	harness_fmt(path, sizeof(path), "%s/node/node_modules/.package-lock.json",
		    PGMUX_DRIVERS_DIR);
	if (access(path, R_OK) != 0)
		fail_msg("%s is missing: run scripts/deps.sh (npm ci in %s/node)", path,
			 PGMUX_DRIVERS_DIR);
}

static void test_pg_named(void **state)
{
	require_node_modules();
	run_driver("node", "node/pg_named.js");
}

static void test_postgres_js(void **state)
{
	require_node_modules();
	run_driver("node", "node/postgres_js.js");
}

static void test_psycopg2(void **state)
{
	run_driver(DEBIAN_PYTHON, "python/psycopg2_test.py");
}

static void test_psycopg3(void **state)
{
	run_driver(DEBIAN_PYTHON, "python/psycopg3_test.py");
}

static void test_asyncpg(void **state)
{
	run_driver(DEBIAN_PYTHON, "python/asyncpg_test.py");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		{ "pg_named", test_pg_named, NULL, harness_teardown, NULL },
		{ "postgres_js", test_postgres_js, NULL, harness_teardown, NULL },
		{ "psycopg2", test_psycopg2, NULL, harness_teardown, NULL },
		{ "psycopg3", test_psycopg3, NULL, harness_teardown, NULL },
		{ "asyncpg", test_asyncpg, NULL, harness_teardown, NULL },
	};
	size_t i;

	/* One ctest per driver: argv[1] picks it, and must name one. */
	if (argc > 2) {
		fprintf(stderr, "usage: %s [driver]\n", argv[0]);
		return 2;
	}
	if (argc == 2) {
		for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
			if (strcmp(argv[1], tests[i].name) == 0)
				break;
		if (i == sizeof(tests) / sizeof(tests[0])) {
			fprintf(stderr, "%s: no driver test named %s\n", argv[0], argv[1]);
			return 2;
		}
		cmocka_set_test_filter(argv[1]);
	}
	return cmocka_run_group_tests_name("integration_drivers", tests, NULL, NULL);
}
