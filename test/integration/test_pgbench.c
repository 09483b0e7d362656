/*
 * test_pgbench.c: pgbench through the pooler in transaction mode with
 * default_pool_size = 10: 200 clients, TPC-B-like and select-only, simple
 * and extended protocol, zero failed transactions, and pg_stat_activity
 * never showing more than 10 server connections for the pool meanwhile.
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

#define POOL_SIZE 10
#define CLIENTS "200"
#define SECONDS "10"

static char pgbench_bin[HARNESS_PATH_MAX];

static int group_setup(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	char port[16], pw[128], log[] = "/tmp/pgmux-it-pgbench-init.log";
	char *env[] = { pw, NULL };
	char *argv[] = { pgbench_bin, "-i", "-s", "1", "-q", "-h", (char *)fx->host,
			 "-p", port, "-U", (char *)fx->app_user, (char *)fx->db, NULL };
	int rc;

	harness_fmt(pgbench_bin, sizeof(pgbench_bin), "%s/pgbench", fx->bindir);
	harness_fmt(port, sizeof(port), "%d", fx->port);
	harness_fmt(pw, sizeof(pw), "PGPASSWORD=%s", fx->app_password);
	/* Initialised directly against PostgreSQL: only the runs go through us. */
	rc = harness_run(argv, env, NULL, log, log, 120);
	if (rc != 0) {
		char *text = harness_read_file(log, NULL);

		fail_msg("pgbench -i exited %d: %s", rc, text);
	}
	remove(log);
	return 0;
}

/* Value after "label" in pgbench's report, or -1 if the line is missing. */
static double report_value(const char *out, const char *label)
{
	const char *s = strstr(out, label);

	return s ? strtod(s + strlen(label), NULL) : -1;
}

static void run_pgbench(const char *protocol, bool select_only)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = {
		.settings = "pool_mode = transaction\ndefault_pool_size = 10\n"
			    "max_client_conn = 500\n",
	};
	struct harness_pooler p;
	struct harness_poller pl;
	char port[16], pw[128], out[HARNESS_PATH_MAX], err[HARNESS_PATH_MAX];
	char *env[] = { pw, "PGCONNECT_TIMEOUT=30", NULL };
	char *argv[24];
	char *text, *errs;
	double failed, done;
	int n = 0, rc, max;

	harness_raise_nofile(4096);
	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	harness_pooler_start(&p, &cfg);
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
	argv[n++] = CLIENTS;
	argv[n++] = "-j";
	argv[n++] = "2";
	argv[n++] = "-T";
	argv[n++] = SECONDS;
	argv[n++] = "-M";
	argv[n++] = (char *)protocol;
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
	print_message("pgbench -M %s%s: rc %d, %.0f transactions, %.0f failed, tps %.0f, "
		      "max %d server connections (%d samples)\n", protocol,
		      select_only ? " -S" : "", rc, done, failed,
		      report_value(text, "tps = "), max, pl.samples);
	if (rc != 0 || failed != 0 || done <= 0)
		fail_msg("pgbench exited %d, failed %.0f, processed %.0f\nstdout:\n%.3000s\n"
			 "stderr:\n%.3000s", rc, failed, done, text, errs);
	if (strstr(errs, "aborted") != NULL || strstr(errs, "error") != NULL)
		fail_msg("pgbench reported errors:\n%.3000s", errs);
	if (max > POOL_SIZE)
		fail_msg("pg_stat_activity showed %d server connections; pool size is %d",
			 max, POOL_SIZE);
	assert_true(max >= 1);
	free(text);
	free(errs);
	harness_pooler_stop(&p, 30);
}

static void test_pgbench_tpcb_simple_200_clients_zero_failures(void **state)
{
	run_pgbench("simple", false);
}

static void test_pgbench_tpcb_extended_200_clients_zero_failures(void **state)
{
	run_pgbench("extended", false);
}

static void test_pgbench_select_only_simple_200_clients_zero_failures(void **state)
{
	run_pgbench("simple", true);
}

static void test_pgbench_select_only_extended_200_clients_zero_failures(void **state)
{
	run_pgbench("extended", true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_pgbench_tpcb_simple_200_clients_zero_failures,
					  harness_teardown),
		cmocka_unit_test_teardown(test_pgbench_tpcb_extended_200_clients_zero_failures,
					  harness_teardown),
		cmocka_unit_test_teardown(test_pgbench_select_only_simple_200_clients_zero_failures,
					  harness_teardown),
		cmocka_unit_test_teardown(test_pgbench_select_only_extended_200_clients_zero_failures,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_pgbench", tests, group_setup, NULL);
}
