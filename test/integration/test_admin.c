/*
 * test_admin.c: the admin console the README points users to: an admin_users
 * member connects to the virtual database (pgmux, or its synonym pgbouncer)
 * and SHOW VERSION / SHOW POOLS answer; ordinary users are kept out.
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

/* Row index of SHOW POOLS whose database and user columns match, or -1. */
static int find_pool(PGresult *r, const char *db, const char *user)
{
	int dcol = PQfnumber(r, "database"), ucol = PQfnumber(r, "user"), i;

	assert_true(dcol >= 0);
	assert_true(ucol >= 0);
	for (i = 0; i < PQntuples(r); i++)
		if (strcmp(PQgetvalue(r, i, dcol), db) == 0 &&
		    strcmp(PQgetvalue(r, i, ucol), user) == 0)
			return i;
	return -1;
}

static void test_admin_show_version_and_pools(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	const char *want = harness_is_pgbouncer() ? "PgBouncer" : "pgmux";
	struct harness_pooler p;
	PGconn *admin, *app;
	PGresult *r;
	char *v;

	harness_pooler_start(&p, NULL);
	app = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(app, "SELECT 1");

	admin = harness_connect_pooler(&p, harness_pooler_name(), fx->admin_user,
				       fx->admin_password);
	v = harness_scalar(admin, "SHOW VERSION");
	if (v == NULL || strstr(v, want) == NULL)
		fail_msg("SHOW VERSION returned '%s', expected it to name %s",
			 v ? v : "NULL", want);
	free(v);

	r = PQexec(admin, "SHOW POOLS");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	if (find_pool(r, fx->db, fx->app_user) < 0)
		fail_msg("SHOW POOLS has no row for %s/%s", fx->db, fx->app_user);
	PQclear(r);
	PQfinish(admin);

	/* The PgBouncer name works as a synonym for the console database. */
	admin = harness_connect_pooler(&p, "pgbouncer", fx->admin_user,
				       fx->admin_password);
	v = harness_scalar(admin, "SHOW VERSION");
	assert_non_null(v);
	free(v);
	PQfinish(admin);
	PQfinish(app);
	harness_pooler_stop(&p, 20);
}

static void test_admin_console_refuses_non_admin_users(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	char ci[512];
	PGconn *c;
	PGresult *r;
	bool refused;

	harness_pooler_start(&p, NULL);
	harness_conninfo(ci, sizeof(ci), p.port, harness_pooler_name(), fx->app_user,
			 fx->app_password);
	c = PQconnectdb(ci);
	refused = PQstatus(c) != CONNECTION_OK;
	if (!refused) {
		r = PQexec(c, "SHOW POOLS");
		refused = PQresultStatus(r) != PGRES_TUPLES_OK;
		PQclear(r);
	}
	PQfinish(c);
	if (!refused)
		fail_msg("user %s, not in admin_users or stats_users, ran SHOW POOLS",
			 fx->app_user);
	harness_pooler_stop(&p, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_admin_show_version_and_pools,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_console_refuses_non_admin_users,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_admin", tests, NULL, NULL);
}
