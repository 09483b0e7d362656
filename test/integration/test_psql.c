/*
 * test_psql.c: psql through the pooler in transaction mode, as a user would
 * run it: queries, errors, multi-statement strings, BEGIN/COMMIT/ROLLBACK,
 * \copy both ways, a 1,000,000-row result and RAISE NOTICE. psql runs as a
 * subprocess with PGPASSWORD; one pooler serves the whole group.
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

static struct harness_pooler pooler;

struct psql_out {
	int rc;
	char *out;
	char *err;
};

/*
 * Runs psql -X -qAt against the pooler with extra arguments (NULL-ended);
 * script, if not NULL, is written to a file and passed with -f.
 */
static void psql(struct psql_out *o, const char *script, const char *const *args)
{
	const struct harness_fixture *fx = harness_fixture();
	char port[16], pw[128], out[HARNESS_PATH_MAX], err[HARNESS_PATH_MAX];
	char file[HARNESS_PATH_MAX];
	char *argv[32];
	char *env[] = { pw, "PGCONNECT_TIMEOUT=20", "PGAPPNAME=pgmux-it-psql", NULL };
	int n = 0;

	harness_fmt(port, sizeof(port), "%d", pooler.port);
	harness_fmt(pw, sizeof(pw), "PGPASSWORD=%s", fx->app_password);
	harness_path(out, sizeof(out), &pooler, "psql.out");
	harness_path(err, sizeof(err), &pooler, "psql.err");
	harness_path(file, sizeof(file), &pooler, "script.sql");
	argv[n++] = "psql";
	argv[n++] = "-X";
	argv[n++] = "-qAt";
	argv[n++] = "-h";
	argv[n++] = "127.0.0.1";
	argv[n++] = "-p";
	argv[n++] = port;
	argv[n++] = "-U";
	argv[n++] = (char *)fx->app_user;
	argv[n++] = "-d";
	argv[n++] = (char *)fx->db;
	if (script != NULL) {
		harness_write_file(file, script);
		argv[n++] = "-f";
		argv[n++] = file;
	}
	while (args != NULL && *args != NULL && n < 31)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
	o->rc = harness_run(argv, env, NULL, out, err, 120);
	o->out = harness_read_file(out, NULL);
	o->err = harness_read_file(err, NULL);
	if (o->rc < 0)
		fail_msg("psql timed out; stderr: %s", o->err);
}

static void psql_free(struct psql_out *o)
{
	free(o->out);
	free(o->err);
}

static void assert_psql_ok(const struct psql_out *o)
{
	if (o->rc != 0)
		fail_msg("psql exited %d\nstdout: %.2000s\nstderr: %.2000s", o->rc,
			 o->out, o->err);
}

static int group_setup(void **state)
{
	struct harness_pooler_cfg cfg = { .settings = "pool_mode = transaction\n" };

	harness_pooler_start(&pooler, &cfg);
	return 0;
}

static int group_teardown(void **state)
{
	harness_pooler_stop(&pooler, 20);
	return 0;
}

static void test_psql_query_returns_value(void **state)
{
	const char *args[] = { "-c", "SELECT 1 + 1, current_user, current_database()",
			       NULL };
	struct psql_out o;

	psql(&o, NULL, args);
	assert_psql_ok(&o);
	assert_string_equal(o.out, "2|app|appdb\n");
	psql_free(&o);
}

static void test_psql_error_reported_and_session_continues(void **state)
{
	struct psql_out o;
	const char *on_error_stop[] = { "-v", "ON_ERROR_STOP=1", "-c",
					"SELECT 1/0", NULL };

	psql(&o, "SELECT 'before';\nSELECT 1/0;\nSELECT 'after';\n", NULL);
	assert_psql_ok(&o);     /* psql -f goes on after an error */
	assert_string_equal(o.out, "before\nafter\n");
	assert_non_null(strstr(o.err, "ERROR:  division by zero"));
	psql_free(&o);

	psql(&o, NULL, on_error_stop);
	assert_int_equal(o.rc, 1);
	assert_non_null(strstr(o.err, "division by zero"));
	psql_free(&o);
}

static void test_psql_multi_statement_string_returns_all_results(void **state)
{
	const char *args[] = { "-c", "SELECT 1; SELECT 2; SELECT 'three'", NULL };
	const char *with_error[] = { "-c", "SELECT 1; SELECT 1/0; SELECT 3", NULL };
	struct psql_out o;

	psql(&o, NULL, args);
	assert_psql_ok(&o);
	assert_string_equal(o.out, "1\n2\nthree\n");
	psql_free(&o);

	/* One Query message: the error aborts the rest of the string. */
	psql(&o, NULL, with_error);
	assert_int_equal(o.rc, 1);
	assert_null(strstr(o.out, "3"));
	assert_non_null(strstr(o.err, "division by zero"));
	psql_free(&o);
}

static void test_psql_begin_commit_and_rollback(void **state)
{
	struct psql_out o;

	psql(&o,
	     "DROP TABLE IF EXISTS psql_tx;\n"
	     "CREATE TABLE psql_tx (v text);\n"
	     "BEGIN;\nINSERT INTO psql_tx VALUES ('committed');\nCOMMIT;\n"
	     "BEGIN;\nINSERT INTO psql_tx VALUES ('rolled back');\n"
	     "SELECT count(*) FROM psql_tx;\nROLLBACK;\n"
	     "BEGIN;\nSELECT 1/0;\nSELECT 'unreachable';\nROLLBACK;\n"
	     "SELECT string_agg(v, ',') FROM psql_tx;\n"
	     "DROP TABLE psql_tx;\n",
	     NULL);
	assert_psql_ok(&o);
	/* 2 rows inside the second transaction, then only the committed one. */
	assert_string_equal(o.out, "2\ncommitted\n");
	assert_non_null(strstr(o.err, "division by zero"));
	assert_non_null(strstr(o.err, "current transaction is aborted"));
	psql_free(&o);
}

static void test_psql_copy_to_and_from_file(void **state)
{
	char csv[HARNESS_PATH_MAX], script[2048], *data;
	struct psql_out o;
	size_t len;

	harness_path(csv, sizeof(csv), &pooler, "copy.csv");
	harness_fmt(script, sizeof(script),
		    "\\copy (SELECT g, 'row ' || g FROM generate_series(1, 10000) g) "
		    "TO '%s' CSV\n"
		    "DROP TABLE IF EXISTS psql_copy;\n"
		    "CREATE TABLE psql_copy (id int, label text);\n"
		    "\\copy psql_copy FROM '%s' CSV\n"
		    "SELECT count(*), sum(id), max(label) FROM psql_copy;\n"
		    "DROP TABLE psql_copy;\n", csv, csv);
	psql(&o, script, NULL);
	assert_psql_ok(&o);
	assert_string_equal(o.out, "10000|50005000|row 9999\n");
	psql_free(&o);

	data = harness_read_file(csv, &len);
	assert_true(strncmp(data, "1,row 1\n2,row 2\n", 16) == 0);
	assert_non_null(strstr(data, "\n10000,row 10000\n"));
	free(data);
}

static void test_psql_one_million_rows(void **state)
{
	const char *args[] = { "-c", "SELECT g FROM generate_series(1, 1000000) g", NULL };
	struct psql_out o;
	size_t lines = 0;
	const char *s;

	psql(&o, NULL, args);
	assert_psql_ok(&o);
	for (s = o.out; *s; s++)
		lines += *s == '\n';
	assert_int_equal(lines, 1000000);
	assert_true(strncmp(o.out, "1\n2\n3\n", 6) == 0);
	assert_non_null(strstr(o.out, "\n999999\n1000000\n"));
	psql_free(&o);
}

static void test_psql_raise_notice_visible(void **state)
{
	const char *args[] = { "-c",
		"DO $$ BEGIN RAISE NOTICE 'hello from the pooler test %', 42; END $$",
		NULL };
	struct psql_out o;

	psql(&o, NULL, args);
	assert_psql_ok(&o);
	assert_non_null(strstr(o.err, "NOTICE:  hello from the pooler test 42"));
	psql_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_psql_query_returns_value),
		cmocka_unit_test(test_psql_error_reported_and_session_continues),
		cmocka_unit_test(test_psql_multi_statement_string_returns_all_results),
		cmocka_unit_test(test_psql_begin_commit_and_rollback),
		cmocka_unit_test(test_psql_copy_to_and_from_file),
		cmocka_unit_test(test_psql_one_million_rows),
		cmocka_unit_test(test_psql_raise_notice_visible),
	};

	return cmocka_run_group_tests_name("integration_psql", tests, group_setup,
					   group_teardown);
}
