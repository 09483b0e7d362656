/*
 * test_regress.c: a 60-test subset of PostgreSQL 15's own regression suite
 * (shared/pg-regress, see its PROVENANCE) run by pg_regress from Debian's
 * postgresql-server-dev-15, through pgmux in session mode (pool 25, so that
 * the schedule's largest parallel group of 20 gets a server each) and, as
 * the baseline, directly against the fixture PostgreSQL. Both need all 60 to
 * pass. The "regression" database is created fresh before each run the way
 * pg_regress itself would (template0 plus its ALTER DATABASE settings), then
 * pg_regress runs with --use-existing.
 *
 * Each test is its own ctest (regress_pgmux, regress_direct): the program
 * takes the test name as its only argument. A missing suite directory or
 * pg_regress binary fails the test; nothing is skipped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#ifndef PGMUX_PG_REGRESS_DIR
#error "PGMUX_PG_REGRESS_DIR must name the pg-regress suite directory"
#endif
#ifndef PGMUX_PG_REGRESS_BIN
#error "PGMUX_PG_REGRESS_BIN must name the pg_regress binary"
#endif

#define REGRESS_DB "regression"
#define REGRESS_TESTS 60
#define REGRESS_POOL_SIZE 25
#define REGRESS_TIMEOUT_S 400

/* Fails loudly unless the suite and pg_regress are where the build said. */
static void require_suite(char *schedule, size_t len)
{
	char path[HARNESS_PATH_MAX];
	const char *sub[] = { "sql", "expected", "data" };
	struct stat st;
	size_t i;

	if (stat(PGMUX_PG_REGRESS_DIR, &st) != 0 || !S_ISDIR(st.st_mode))
		fail_msg("pg-regress suite directory %s is missing (%s); it is "
			 "shared/pg-regress beside the repository, or set the CMake "
			 "cache variable PGMUX_PG_REGRESS_DIR",
			 PGMUX_PG_REGRESS_DIR, strerror(errno));
	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		harness_fmt(path, sizeof(path), "%s/%s", PGMUX_PG_REGRESS_DIR, sub[i]);
		if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
			fail_msg("%s is missing from the pg-regress suite", path);
	}
	harness_fmt(schedule, len, "%s/schedule", PGMUX_PG_REGRESS_DIR);
	if (access(schedule, R_OK) != 0)
		fail_msg("%s is missing", schedule);
	if (access(PGMUX_PG_REGRESS_BIN, X_OK) != 0)
		fail_msg("pg_regress %s is not executable (%s): scripts/deps.sh "
			 "installs postgresql-server-dev-15, or set PGMUX_PG_REGRESS_BIN",
			 PGMUX_PG_REGRESS_BIN, strerror(errno));
}

/* Tests named on the schedule's "test:" lines. */
static int schedule_count(const char *schedule)
{
	char *text = harness_read_file(schedule, NULL);
	char *line, *save = NULL, *tok, *save2;
	int n = 0;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "test:", 5) != 0)
			continue;
		save2 = NULL;
		for (tok = strtok_r(line + 5, " \t", &save2); tok != NULL;
		     tok = strtok_r(NULL, " \t", &save2))
			n++;
	}
	free(text);
	return n;
}

/* DROP + CREATE DATABASE regression as pg_regress's create_database() does. */
static void create_regression_db(void)
{
	static const char *const sql[] = {
		"DROP DATABASE IF EXISTS \"" REGRESS_DB "\" WITH (FORCE)",
		"CREATE DATABASE \"" REGRESS_DB "\" TEMPLATE=template0",
		"ALTER DATABASE \"" REGRESS_DB "\" SET lc_messages TO 'C'",
		"ALTER DATABASE \"" REGRESS_DB "\" SET lc_monetary TO 'C'",
		"ALTER DATABASE \"" REGRESS_DB "\" SET lc_numeric TO 'C'",
		"ALTER DATABASE \"" REGRESS_DB "\" SET lc_time TO 'C'",
		"ALTER DATABASE \"" REGRESS_DB "\" SET bytea_output TO 'hex'",
		"ALTER DATABASE \"" REGRESS_DB "\" SET timezone_abbreviations TO 'Default'",
	};
	PGconn *super = harness_connect_pg_super("postgres");
	size_t i;

	harness_exec(super, "SET client_min_messages = warning");
	for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++)
		harness_exec(super, sql[i]);
	PQfinish(super);
}

static void drop_regression_db(void)
{
	PGconn *super = harness_connect_pg_super("postgres");

	harness_exec(super, "DROP DATABASE IF EXISTS \"" REGRESS_DB "\" WITH (FORCE)");
	PQfinish(super);
}

/*
 * Prints the head of regression.diffs: the first max_lines lines of each
 * test's diff, so that one long diff does not hide the others.
 */
static void print_diffs(const char *path, int max_lines)
{
	char *text, *line, *save = NULL;
	int shown = 0, cut = 0;

	if (access(path, R_OK) != 0) {
		fprintf(stderr, "---- %s does not exist ----\n", path);
		return;
	}
	text = harness_read_file(path, NULL);
	fprintf(stderr, "---- %s (first %d lines of each test's diff) ----\n", path,
		max_lines);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "diff ", 5) == 0) {
			if (cut > 0)
				fprintf(stderr, "[... %d more lines]\n", cut);
			shown = cut = 0;
		}
		if (shown < max_lines) {
			fprintf(stderr, "%s\n", line);
			shown++;
		} else {
			cut++;
		}
	}
	if (cut > 0)
		fprintf(stderr, "[... %d more lines]\n", cut);
	fprintf(stderr, "---- end ----\n");
	free(text);
}

/*
 * Runs the schedule against port as the fixture superuser. Returns true if
 * pg_regress reported all tests passed; otherwise prints its output and the
 * start of each diff in regression.diffs, and keeps the output directory.
 */
static bool run_pg_regress(int port, const char *what)
{
	const struct harness_fixture *fx = harness_fixture();
	char schedule[HARNESS_PATH_MAX], outdir[] = "/tmp/pgmux-regress.XXXXXX";
	char results[HARNESS_PATH_MAX], out[HARNESS_PATH_MAX], diffs[HARNESS_PATH_MAX];
	char a_port[32], a_user[96], a_in[HARNESS_PATH_MAX], a_out[HARNESS_PATH_MAX];
	char a_bin[HARNESS_PATH_MAX], a_sched[HARNESS_PATH_MAX], pw[128], want[64];
	char *argv[] = { PGMUX_PG_REGRESS_BIN, "--use-existing", "--host=127.0.0.1",
			 a_port, a_user, "--dbname=" REGRESS_DB, a_in, a_out, a_bin,
			 a_sched, NULL };
	/* pg_regress sets PGTZ, PGDATESTYLE and PGAPPNAME itself. */
	char *env[] = { pw, "PGSSLMODE=disable", NULL };
	long long t0;
	int rc, tests;
	char *text;
	bool ok;

	require_suite(schedule, sizeof(schedule));
	tests = schedule_count(schedule);
	if (tests != REGRESS_TESTS)
		fail_msg("%s lists %d tests, expected %d", schedule, tests, REGRESS_TESTS);

	/* The server writes COPY and lo_export files into results/. */
	if (mkdtemp(outdir) == NULL)
		fail_msg("mkdtemp: %s", strerror(errno));
	harness_fmt(results, sizeof(results), "%s/results", outdir);
	if (mkdir(results, 0777) != 0 || chmod(outdir, 0777) != 0 ||
	    chmod(results, 0777) != 0)
		fail_msg("cannot prepare %s: %s", results, strerror(errno));
	harness_fmt(out, sizeof(out), "%s/pg_regress.out", outdir);
	harness_fmt(diffs, sizeof(diffs), "%s/regression.diffs", outdir);
	harness_fmt(a_port, sizeof(a_port), "--port=%d", port);
	harness_fmt(a_user, sizeof(a_user), "--user=%s", fx->super_user);
	harness_fmt(a_in, sizeof(a_in), "--inputdir=%s", PGMUX_PG_REGRESS_DIR);
	harness_fmt(a_out, sizeof(a_out), "--outputdir=%s", outdir);
	harness_fmt(a_bin, sizeof(a_bin), "--bindir=%s", fx->bindir);
	harness_fmt(a_sched, sizeof(a_sched), "--schedule=%s", schedule);
	harness_fmt(pw, sizeof(pw), "PGPASSWORD=%s", fx->super_password);
	harness_fmt(want, sizeof(want), "All %d tests passed.", tests);

	create_regression_db();
	t0 = harness_now_ms();
	rc = harness_run(argv, env, NULL, out, out, REGRESS_TIMEOUT_S);
	text = harness_read_file(out, NULL);
	ok = rc == 0 && strstr(text, want) != NULL;
	printf("pg_regress %s: exit %d after %.1f s: %s\n", what, rc,
	       (double)(harness_now_ms() - t0) / 1000.0,
	       ok ? want : (rc < 0 ? "timed out" : "FAILED"));
	fflush(stdout);
	free(text);
	if (!ok) {
		harness_print_tail("pg_regress output", out, 12000);
		print_diffs(diffs, 60);
		fprintf(stderr, "pg_regress output kept in %s\n", outdir);
	} else {
		char *rm[] = { "rm", "-rf", outdir, NULL };

		harness_run(rm, NULL, NULL, NULL, NULL, 60);
	}
	return ok;
}

static void test_regress_pgmux(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler pooler;
	char settings[256], databases[512], userlist[512];
	struct harness_pooler_cfg cfg = {
		.settings = settings, .databases = databases, .userlist = userlist,
	};
	bool ok;

	harness_fmt(settings, sizeof(settings),
		    "pool_mode = session\n"
		    "default_pool_size = %d\n"
		    "max_client_conn = 200\n", REGRESS_POOL_SIZE);
	harness_fmt(databases, sizeof(databases),
		    REGRESS_DB " = host=%s port=%d dbname=" REGRESS_DB "\n",
		    fx->host, fx->port);
	harness_fmt(userlist, sizeof(userlist), "\"%s\" \"%s\"\n\"%s\" \"%s\"\n",
		    fx->super_user, fx->super_password, fx->admin_user,
		    fx->admin_password);
	harness_pooler_start(&pooler, &cfg);
	ok = run_pg_regress(pooler.port, "through pgmux (session mode, pool 25)");
	if (!harness_pooler_alive(&pooler)) {
		harness_pooler_dump_log(&pooler);
		fail_msg("pgmux died during pg_regress");
	}
	if (!ok) {
		harness_print_pooler_problems(&pooler, 30);
		fail_msg("pg_regress through pgmux: not all %d tests passed "
			 "(output and regression.diffs above)", REGRESS_TESTS);
	}
	harness_pooler_stop(&pooler, 30);
	drop_regression_db();
}

static void test_regress_direct(void **state)
{
	if (!run_pg_regress(harness_fixture()->port, "directly against PostgreSQL"))
		fail_msg("pg_regress directly against PostgreSQL: not all %d tests "
			 "passed (the baseline; output and regression.diffs above)",
			 REGRESS_TESTS);
	drop_regression_db();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		{ "regress_pgmux", test_regress_pgmux, NULL, harness_teardown, NULL },
		{ "regress_direct", test_regress_direct, NULL, harness_teardown, NULL },
	};
	size_t i;

	/* One ctest per run: argv[1] picks it, and must name one. */
	if (argc > 2) {
		fprintf(stderr, "usage: %s [regress_pgmux|regress_direct]\n", argv[0]);
		return 2;
	}
	if (argc == 2) {
		for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
			if (strcmp(argv[1], tests[i].name) == 0)
				break;
		if (i == sizeof(tests) / sizeof(tests[0])) {
			fprintf(stderr, "%s: no test named %s\n", argv[0], argv[1]);
			return 2;
		}
		cmocka_set_test_filter(argv[1]);
	}
	return cmocka_run_group_tests_name("integration_regress", tests, NULL, NULL);
}
