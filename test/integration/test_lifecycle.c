/*
 * test_lifecycle.c: the pooler as a process: --help and --version, refusing
 * bad config values with file:line, warning about unknown keys, the pidfile,
 * clean exit on SIGTERM and SIGINT, and SIGHUP reloading while serving.
 */
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

/* Runs the pooler binary with one argument; returns rc, output in *text. */
static int run_pooler(const char *arg, const char *out, char **text)
{
	char *argv[] = { (char *)harness_pooler_bin(), (char *)arg, NULL };
	int rc = harness_run(argv, NULL, NULL, out, out, 20);

	*text = harness_read_file(out, NULL);
	harness_assert_no_sanitizer_report(*text, out);
	return rc;
}

static void test_lifecycle_help_exits_0_and_prints_usage(void **state)
{
	char out[] = "/tmp/pgmux-it-help.out", *text;
	int rc = run_pooler("--help", out, &text);

	if (rc != 0 || strcasestr(text, "usage") == NULL)
		fail_msg("--help: exit %d, output:\n%s", rc, text);
	free(text);
	remove(out);
}

static void test_lifecycle_version_prints_name_and_version(void **state)
{
	char out[] = "/tmp/pgmux-it-version.out", *text;
	const char *want = harness_is_pgbouncer() ? "PgBouncer 1." : "pgmux 0.1.0";
	int rc = run_pooler("--version", out, &text);

	if (rc != 0 || strncmp(text, want, strlen(want)) != 0)
		fail_msg("--version: exit %d, expected output starting with '%s', got:\n%s",
			 rc, want, text);
	free(text);
	remove(out);
}

/*
 * Each bad value must stop the pooler before it serves, naming the file,
 * the line and the key. Line 4 is the bad one in every case.
 */
static void test_lifecycle_bad_config_values_exit_nonzero_with_file_line(void **state)
{
	static const struct {
		const char *line;
		const char *key;
	} cases[] = {
		{ "listen_port = 99999", "listen_port" },
		{ "default_pool_size = -1", "default_pool_size" },
		{ "pool_mode = bogus", "pool_mode" },
	};
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	size_t i;

	harness_pooler_prepare(&p, NULL);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char ini[1024], where[HARNESS_PATH_MAX + 16], out[HARNESS_PATH_MAX];
		char *argv[5], *text;
		int rc, n = 0;

		harness_fmt(ini, sizeof(ini),
			    "[%s]\n"
			    "listen_addr = 127.0.0.1\n"
			    "auth_type = trust\n"
			    "%s\n"
			    "auth_file = %s\n"
			    "\n[databases]\n"
			    "%s = host=%s port=%d dbname=%s\n",
			    harness_pooler_name(), cases[i].line, p.userlist_path, fx->db,
			    fx->host, fx->port, fx->db);
		harness_write_file(p.ini_path, ini);
		harness_path(out, sizeof(out), &p, "bad.out");
		argv[n++] = (char *)harness_pooler_bin();
		if (harness_is_pgbouncer() && geteuid() == 0) {
			argv[n++] = "-u";
			argv[n++] = "postgres";
		}
		argv[n++] = p.ini_path;
		argv[n] = NULL;
		rc = harness_run(argv, NULL, NULL, out, out, 10);
		text = harness_read_file(out, NULL);
		harness_assert_no_sanitizer_report(text, out);
		harness_fmt(where, sizeof(where), "%s:4", p.ini_path);
		print_message("'%s': exit %d: %.300s\n", cases[i].line, rc, text);
		if (rc == -1)
			fail_msg("'%s': still running after 10 s instead of refusing to start",
				 cases[i].line);
		if (rc == 0 || rc >= 128)
			fail_msg("'%s': exit %d, expected a non-zero exit (not a crash)",
				 cases[i].line, rc);
		if (strstr(text, where) == NULL || strstr(text, cases[i].key) == NULL)
			fail_msg("'%s': output lacks '%s' and the key name:\n%s",
				 cases[i].line, where, text);
		free(text);
	}
	/* Nothing was left running; just clean the dir. */
	harness_pooler_stop(&p, 5);
}

/* 1-based line of the first line of path containing needle, or -1. */
static int line_of(const char *path, const char *needle)
{
	char *text = harness_read_file(path, NULL), *s = text;
	int line = 1, found = -1;

	for (; *s; s++) {
		if (strncmp(s, needle, strlen(needle)) == 0 &&
		    (s == text || s[-1] == '\n')) {
			found = line;
			break;
		}
		line += *s == '\n';
	}
	free(text);
	return found;
}

static void test_lifecycle_unknown_key_warns_with_file_line_and_serves(void **state)
{
	struct harness_pooler_cfg cfg = { .settings = "frobnicate_level = 3\n" };
	struct harness_pooler p;
	char where[HARNESS_PATH_MAX + 16];
	PGconn *c;

	harness_pooler_start(&p, &cfg);
	harness_fmt(where, sizeof(where), "%s:%d", p.ini_path,
		    line_of(p.ini_path, "frobnicate_level"));
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	assert_int_equal(harness_scalar_ll(c, "SELECT 5"), 5);
	PQfinish(c);
	if (!harness_pooler_log_contains(&p, where) ||
	    !harness_pooler_log_contains(&p, "frobnicate_level")) {
		harness_pooler_dump_log(&p);
		fail_msg("no warning naming '%s' and the key", where);
	}
	harness_pooler_stop(&p, 20);
}

static void shutdown_by(int sig)
{
	struct harness_pooler p;
	char *pidtext;
	PGconn *c;

	harness_pooler_start(&p, NULL);
	pidtext = harness_read_file(p.pidfile_path, NULL);
	assert_int_equal(atoi(pidtext), p.pid);
	free(pidtext);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	assert_int_equal(harness_scalar_ll(c, "SELECT 1"), 1);
	PQfinish(c);

	harness_pooler_signal(&p, sig);
	if (!harness_pooler_wait_exit(&p, 15)) {
		harness_pooler_dump_log(&p);
		fail_msg("still running 15 s after signal %d", sig);
	}
	if (!WIFEXITED(p.exit_status) || WEXITSTATUS(p.exit_status) != 0) {
		harness_pooler_dump_log(&p);
		fail_msg("signal %d: wait status 0x%x, expected exit 0", sig, p.exit_status);
	}
	/* Reaped already: this only scans the logs and removes the dir. */
	harness_pooler_stop(&p, 5);
}

static void test_lifecycle_sigterm_exits_0(void **state)
{
	shutdown_by(SIGTERM);
}

static void test_lifecycle_sigint_exits_0(void **state)
{
	shutdown_by(SIGINT);
}

static void test_lifecycle_sighup_reload_keeps_serving(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { 0 };
	struct harness_pooler p;
	char dbs[512], ci[512];
	long long deadline;
	PGconn *a, *b = NULL;
	char *v;

	harness_pooler_start(&p, NULL);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(a, "SELECT 1");

	/* Add a database entry, then reload. */
	harness_fmt(dbs, sizeof(dbs),
		    "%s = host=%s port=%d dbname=%s\n"
		    "reloaded_db = host=%s port=%d dbname=%s\n",
		    fx->db, fx->host, fx->port, fx->db, fx->host, fx->port, fx->db);
	cfg.databases = dbs;
	harness_pooler_rewrite(&p, &cfg);
	harness_pooler_signal(&p, SIGHUP);

	/* The existing client keeps working, transactions included. */
	harness_exec(a, "BEGIN");
	assert_int_equal(harness_scalar_ll(a, "SELECT 2"), 2);
	harness_exec(a, "COMMIT");

	/* The new entry appears (reload is asynchronous: allow 5 s). */
	harness_conninfo(ci, sizeof(ci), p.port, "reloaded_db", fx->app_user,
			 fx->app_password);
	deadline = harness_now_ms() + 5000;
	while (harness_now_ms() < deadline) {
		b = PQconnectdb(ci);
		if (PQstatus(b) == CONNECTION_OK)
			break;
		PQfinish(b);
		b = NULL;
		usleep(100000);
	}
	if (b == NULL) {
		harness_pooler_dump_log(&p);
		fail_msg("reloaded_db not served 5 s after SIGHUP");
	}
	v = harness_scalar(b, "SELECT current_database()");
	assert_string_equal(v, fx->db);
	free(v);
	PQfinish(b);

	assert_true(harness_pooler_alive(&p));
	assert_int_equal(harness_scalar_ll(a, "SELECT 3"), 3);
	PQfinish(a);
	harness_pooler_stop(&p, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_help_exits_0_and_prints_usage),
		cmocka_unit_test(test_lifecycle_version_prints_name_and_version),
		cmocka_unit_test_teardown(test_lifecycle_bad_config_values_exit_nonzero_with_file_line,
					  harness_teardown),
		cmocka_unit_test_teardown(test_lifecycle_unknown_key_warns_with_file_line_and_serves,
					  harness_teardown),
		cmocka_unit_test_teardown(test_lifecycle_sigterm_exits_0, harness_teardown),
		cmocka_unit_test_teardown(test_lifecycle_sigint_exits_0, harness_teardown),
		cmocka_unit_test_teardown(test_lifecycle_sighup_reload_keeps_serving,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_lifecycle", tests, NULL, NULL);
}
