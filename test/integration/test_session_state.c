/*
 * test_session_state.c: what one client's session settings do to another
 * in transaction mode. A pool of one server makes every client share the
 * same backend, so anything that leaked would be seen.
 *
 * Tracked parameters (TimeZone, DateStyle, application_name, ...) follow
 * each client from server to server; startup parameters and -c options
 * are applied, unknown ones refused unless ignore_startup_parameters lists
 * them; untracked SET, advisory locks, LISTEN and temporary tables are
 * cleaned off the server before the next client, and counted in
 * SHOW SESSION_LEAKS with the offending client named.
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

static void start_one_server_pool(struct harness_pooler *p, const char *extra)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { 0 };
	char settings[512];

	snprintf(settings, sizeof(settings), "default_pool_size = 1\npool_mode = transaction\n%s",
		 extra ? extra : "");
	cfg.settings = settings;
	harness_wait_no_server_conns(fx->db, fx->app_user, 20);
	harness_pooler_start(p, &cfg);
}

static void expect_scalar(PGconn *c, const char *sql, const char *want)
{
	char *got = harness_scalar(c, sql);

	if (!got || strcmp(got, want) != 0)
		fail_msg("%s: got \"%s\", want \"%s\"", sql, got ? got : "(null)", want);
	free(got);
}

/* Connects with extra conninfo keywords appended (later ones win). */
static PGconn *connect_with(const struct harness_pooler *p, const char *extra, bool must_work)
{
	const struct harness_fixture *fx = harness_fixture();
	char base[512], ci[1024];
	PGconn *c;

	harness_conninfo(base, sizeof(base), p->port, fx->db, fx->app_user, fx->app_password);
	snprintf(ci, sizeof(ci), "%s %s", base, extra);
	c = PQconnectdb(ci);
	if (must_work && PQstatus(c) != CONNECTION_OK)
		fail_msg("connect with \"%s\" failed: %s", extra, PQerrorMessage(c));
	return c;
}

static void test_session_state_tracked_set_follows_its_client_and_never_reaches_another(
	void **state)
{
	struct harness_pooler p;
	PGconn *a, *b;
	char *tz_default, *ds_default;

	(void)state;
	start_one_server_pool(&p, NULL);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	b = harness_connect_pooler(&p, NULL, NULL, NULL);
	tz_default = harness_scalar(b, "SHOW TimeZone");
	ds_default = harness_scalar(b, "SHOW DateStyle");

	harness_exec(a, "SET TimeZone = 'Asia/Tokyo'");
	harness_exec(a, "SET DateStyle = 'SQL, DMY'");
	harness_exec(a, "SET application_name = 'client-a'");
	/* B runs on the very server A just changed. */
	expect_scalar(b, "SHOW TimeZone", tz_default);
	expect_scalar(b, "SHOW DateStyle", ds_default);
	expect_scalar(b, "SELECT current_setting('application_name')", "pgmux-it");
	/* A gets its values back on that server, and libpq saw them too. */
	expect_scalar(a, "SHOW TimeZone", "Asia/Tokyo");
	expect_scalar(a, "SHOW DateStyle", "SQL, DMY");
	assert_string_equal(PQparameterStatus(a, "TimeZone"), "Asia/Tokyo");
	for (int i = 0; i < 20; i++) {
		expect_scalar(i % 2 ? a : b, "SHOW TimeZone", i % 2 ? "Asia/Tokyo" : tz_default);
	}
	free(tz_default);
	free(ds_default);
	PQfinish(a);
	PQfinish(b);
	harness_pooler_stop(&p, 10);
}

static void test_session_state_startup_parameters_apply_and_unknown_ones_are_refused(
	void **state)
{
	struct harness_pooler p;
	PGconn *c, *plain;

	(void)state;
	start_one_server_pool(&p, NULL);
	c = connect_with(&p, "options='-c TimeZone=Europe/Paris' application_name=startup-app",
			 true);
	assert_string_equal(PQparameterStatus(c, "TimeZone"), "Europe/Paris");
	expect_scalar(c, "SHOW TimeZone", "Europe/Paris");
	expect_scalar(c, "SELECT current_setting('application_name')", "startup-app");
	plain = harness_connect_pooler(&p, NULL, NULL, NULL);
	{
		char *tz = harness_scalar(plain, "SHOW TimeZone");

		assert_string_not_equal(tz, "Europe/Paris");
		free(tz);
	}
	PQfinish(plain);
	PQfinish(c);

	/* An untracked setting cannot follow the client: refused. */
	c = connect_with(&p, "options='-c work_mem=64MB'", false);
	assert_int_equal(PQstatus(c), CONNECTION_BAD);
	print_message("untracked option: %s", PQerrorMessage(c));
	assert_non_null(strstr(PQerrorMessage(c), "unsupported options startup parameter"));
	PQfinish(c);
	harness_pooler_stop(&p, 10);

	start_one_server_pool(&p, "ignore_startup_parameters = options\n");
	c = connect_with(&p, "options='-c work_mem=64MB'", true);
	expect_scalar(c, "SELECT 1", "1");
	PQfinish(c);
	harness_pooler_stop(&p, 10);
}

/* A column of the app pool's row of SHOW SESSION_LEAKS. */
static long long leak_count(const struct harness_pooler *p, const char *col)
{
	return harness_admin_ll(p, "SHOW SESSION_LEAKS", "user", harness_fixture()->app_user,
				col);
}

static void test_session_state_untracked_set_locks_listen_and_temp_are_cleaned_and_counted(
	void **state)
{
	struct harness_pooler p;
	PGconn *a, *b, *super;
	char *who;

	(void)state;
	start_one_server_pool(&p, NULL);
	a = connect_with(&p, "application_name=leaky-client", true);
	b = harness_connect_pooler(&p, NULL, NULL, NULL);

	harness_exec(a, "SET statement_timeout = 1234");
	expect_scalar(b, "SHOW statement_timeout", "0");

	harness_exec(a, "SELECT pg_advisory_lock(4242)");
	super = harness_connect_pg_super(NULL);
	/* Released with A's transaction's server reset, not held forever. */
	expect_scalar(super, "SELECT pg_try_advisory_lock(4242)", "t");
	harness_exec(super, "SELECT pg_advisory_unlock(4242)");

	harness_exec(a, "LISTEN pgmux_leak_channel");
	expect_scalar(b, "SELECT count(*) FROM pg_listening_channels()", "0");

	harness_exec(a, "CREATE TEMP TABLE pgmux_leak_tmp (x int)");
	expect_scalar(b, "SELECT to_regclass('pg_temp.pgmux_leak_tmp') IS NULL", "t");

	assert_int_equal(leak_count(&p, "set"), 1);
	assert_int_equal(leak_count(&p, "advisory_lock"), 1);
	assert_int_equal(leak_count(&p, "listen"), 1);
	assert_int_equal(leak_count(&p, "temp"), 1);
	assert_true(leak_count(&p, "resets") >= 4);
	who = harness_admin_value(&p, "SHOW SESSION_LEAKS", "user", harness_fixture()->app_user,
				  "last_client");
	print_message("last offender: %s\n", who);
	assert_non_null(strstr(who, "app@"));
	free(who);

	/* SET LOCAL ends with its transaction: nothing to clean. */
	harness_exec(a, "BEGIN");
	harness_exec(a, "SET LOCAL statement_timeout = 999");
	harness_exec(a, "COMMIT");
	assert_int_equal(leak_count(&p, "set"), 1);
	PQfinish(super);
	PQfinish(a);
	PQfinish(b);
	harness_pooler_stop(&p, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
			test_session_state_tracked_set_follows_its_client_and_never_reaches_another,
			harness_teardown),
		cmocka_unit_test_teardown(
			test_session_state_startup_parameters_apply_and_unknown_ones_are_refused,
			harness_teardown),
		cmocka_unit_test_teardown(
			test_session_state_untracked_set_locks_listen_and_temp_are_cleaned_and_counted,
			harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_session_state", tests, NULL, NULL);
}
