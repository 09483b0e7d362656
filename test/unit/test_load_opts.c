/*
 * test_load_opts.c: pgmux-load's command line. Every option in its long,
 * short and --name=value forms, the value syntaxes (rates, durations,
 * workloads, source address ranges) and bad inputs, each with the message
 * it must produce. Table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "load_opts.h"

#define CI "host=127.0.0.1 port=6432 dbname=appdb user=app"
#define MAX_ARGS 32

/* Parses a NULL-terminated argument list (argv[0] is added). */
static int parse(struct load_opts *o, char *err, size_t errlen, const char *const *args)
{
	char *argv[MAX_ARGS + 1];
	int argc = 0;

	argv[argc++] = (char *)"pgmux-load";
	while (*args != NULL && argc < MAX_ARGS)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	return load_opts_parse(o, argc, argv, err, errlen);
}

static void test_load_opts_defaults(void **state)
{
	const char *args[] = { CI, NULL };
	struct load_opts o;
	char err[256];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), args), LOAD_OPTS_OK);
	assert_string_equal(o.conninfo, CI);
	assert_int_equal(o.clients, 10);
	assert_true(o.connect_rate == 1000.0);
	assert_int_equal(o.duration_ms, 30000);
	assert_int_equal(o.workload, LOAD_WL_SELECT);
	assert_int_equal(o.procs, 1);
	assert_int_equal(o.src_count, 0);
	assert_null(o.json_path);
	assert_null(o.csv_path);
	assert_string_equal(o.admin_user, "admin");
	assert_null(o.admin_password);
	assert_int_equal(o.connect_timeout_ms, 10000);
	assert_int_equal(o.think_ms, 0);
}

static void test_load_opts_every_option_long_short_and_equals(void **state)
{
	const char *longs[] = { CI,
				"--clients", "5000",
				"--connect-rate", "2000/s",
				"--duration", "2m",
				"--workload", "sleep:50ms",
				"--procs", "4",
				"--source-addrs", "127.0.0.1-127.0.0.8",
				"--json", "out.json",
				NULL };
	const char *more[] = { "--csv=timeline.csv", "--admin-user=boss", "--admin-password=pw",
			       "--connect-timeout=500ms", "--think=20", "-c", "7", "-r",
			       "unlimited", "-T", "45", "-w", "tx", "-j", "3", CI, NULL };
	struct load_opts o;
	char err[256];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), longs), LOAD_OPTS_OK);
	assert_int_equal(o.clients, 5000);
	assert_true(o.connect_rate == 2000.0);
	assert_int_equal(o.duration_ms, 120000);
	assert_int_equal(o.workload, LOAD_WL_SLEEP);
	assert_int_equal(o.sleep_ms, 50);
	assert_int_equal(o.procs, 4);
	assert_int_equal(o.src_first, 0x7f000001u);
	assert_int_equal(o.src_count, 8);
	assert_string_equal(o.json_path, "out.json");

	assert_int_equal(parse(&o, err, sizeof(err), more), LOAD_OPTS_OK);
	assert_string_equal(o.conninfo, CI);
	assert_string_equal(o.csv_path, "timeline.csv");
	assert_string_equal(o.admin_user, "boss");
	assert_string_equal(o.admin_password, "pw");
	assert_int_equal(o.connect_timeout_ms, 500);
	assert_int_equal(o.think_ms, 20);
	assert_int_equal(o.clients, 7);
	assert_true(o.connect_rate == 0.0);
	assert_int_equal(o.duration_ms, 45000);
	assert_int_equal(o.workload, LOAD_WL_TX);
	assert_int_equal(o.procs, 3);
}

static void test_load_opts_rates(void **state)
{
	static const struct {
		const char *in;
		int rc;
		double want;
	} cases[] = {
		{ "2000/s", 0, 2000.0 },  { "2000", 0, 2000.0 },   { "120/m", 0, 2.0 },
		{ "120/min", 0, 2.0 },    { "0.5/s", 0, 0.5 },     { "unlimited", 0, 0.0 },
		{ "0", 0, 0.0 },          { "10000000/s", 0, 1e7 }, { "", -1, 0 },
		{ "abc", -1, 0 },         { "-5/s", -1, 0 },       { "5/h", -1, 0 },
		{ "/s", -1, 0 },          { "2000/", -1, 0 },      { "nan", -1, 0 },
		{ "inf/s", -1, 0 },       { "1e9/s", -1, 0 },      { "20000000", -1, 0 },
		{ "0/s", -1, 0 },         { "12x/s", -1, 0 },      { " 5/s", -1, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double v = -1.0;
		int rc = load_opts_parse_rate(cases[i].in, &v);

		if (rc != cases[i].rc)
			fail_msg("rate \"%s\": rc %d, want %d", cases[i].in, rc, cases[i].rc);
		if (rc == 0 && v != cases[i].want)
			fail_msg("rate \"%s\": %f, want %f", cases[i].in, v, cases[i].want);
	}
}

static void test_load_opts_durations(void **state)
{
	static const struct {
		const char *in;
		uint64_t unit;
		int rc;
		uint64_t want;
	} cases[] = {
		{ "30s", 1000, 0, 30000 }, { "500ms", 1000, 0, 500 },  { "2m", 1000, 0, 120000 },
		{ "2min", 1000, 0, 120000 }, { "1h", 1000, 0, 3600000 }, { "30", 1000, 0, 30000 },
		{ "50", 1, 0, 50 },        { "0", 1, 0, 0 },          { "0s", 1000, 0, 0 },
		{ "168h", 1000, 0, 604800000 }, { "169h", 1000, -1, 0 }, { "", 1000, -1, 0 },
		{ "s", 1000, -1, 0 },      { "3x", 1000, -1, 0 },     { "-1s", 1000, -1, 0 },
		{ "1.5s", 1000, -1, 0 },   { "10 s", 1000, -1, 0 },
		{ "99999999999999999999", 1, -1, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		int rc = load_opts_parse_duration(cases[i].in, cases[i].unit, &v);

		if (rc != cases[i].rc)
			fail_msg("duration \"%s\": rc %d, want %d", cases[i].in, rc, cases[i].rc);
		if (rc == 0 && v != cases[i].want)
			fail_msg("duration \"%s\": %llu, want %llu", cases[i].in,
				 (unsigned long long)v, (unsigned long long)cases[i].want);
	}
}

static void test_load_opts_workloads(void **state)
{
	static const struct {
		const char *in;
		int rc;
		enum load_workload wl;
		uint64_t sleep_ms;
		const char *shown; /* load_opts_workload_str() */
	} cases[] = {
		{ "select", 0, LOAD_WL_SELECT, 0, "select" },
		{ "tx", 0, LOAD_WL_TX, 0, "tx" },
		{ "idle", 0, LOAD_WL_IDLE, 0, "idle" },
		{ "sleep:50ms", 0, LOAD_WL_SLEEP, 50, "sleep:50ms" },
		{ "sleep:2s", 0, LOAD_WL_SLEEP, 2000, "sleep:2000ms" },
		{ "sleep:50", 0, LOAD_WL_SLEEP, 50, "sleep:50ms" },
		{ "file:script.sql", 0, LOAD_WL_FILE, 0, "file:script.sql" },
		{ "sleep:", LOAD_OPTS_EINVAL, 0, 0, NULL },
		{ "sleep:abc", LOAD_OPTS_EINVAL, 0, 0, NULL },
		{ "file:", LOAD_OPTS_EINVAL, 0, 0, NULL },
		{ "SELECT", LOAD_OPTS_EINVAL, 0, 0, NULL },
		{ "bogus", LOAD_OPTS_EINVAL, 0, 0, NULL },
		{ "", LOAD_OPTS_EINVAL, 0, 0, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[] = { CI, "--workload", cases[i].in, NULL };
		struct load_opts o;
		char err[256], shown[64];
		int rc = parse(&o, err, sizeof(err), args);

		if (rc != cases[i].rc)
			fail_msg("workload \"%s\": rc %d, want %d (%s)", cases[i].in, rc,
				 cases[i].rc, err);
		if (rc != 0) {
			assert_non_null(strstr(err, "--workload"));
			continue;
		}
		assert_int_equal(o.workload, cases[i].wl);
		assert_int_equal(o.sleep_ms, cases[i].sleep_ms);
		load_opts_workload_str(&o, shown, sizeof(shown));
		assert_string_equal(shown, cases[i].shown);
	}
}

static void test_load_opts_source_ranges(void **state)
{
	static const struct {
		const char *in;
		int rc;
		uint32_t first, count;
	} cases[] = {
		{ "127.0.0.1-127.0.0.8", 0, 0x7f000001u, 8 },
		{ "127.0.0.5", 0, 0x7f000005u, 1 },
		{ "127.0.0.5-127.0.0.5", 0, 0x7f000005u, 1 },
		{ "127.0.1.250-127.0.2.5", 0, 0x7f0001fau, 12 },
		{ "127.0.0.0-127.0.255.255", 0, 0x7f000000u, 65536 },
		{ "127.0.0.0-127.1.0.0", -1, 0, 0 },
		{ "10.0.0.1", -1, 0, 0 },
		{ "127.0.0.8-127.0.0.1", -1, 0, 0 },
		{ "127.0.0.1-", -1, 0, 0 },
		{ "-127.0.0.1", -1, 0, 0 },
		{ "127.0.0.1-10.0.0.1", -1, 0, 0 },
		{ "127.0.0.256", -1, 0, 0 },
		{ "::1", -1, 0, 0 },
		{ "localhost", -1, 0, 0 },
		{ "", -1, 0, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t first = 0, count = 0;
		int rc = load_opts_parse_sources(cases[i].in, &first, &count);

		if (rc != cases[i].rc)
			fail_msg("sources \"%s\": rc %d, want %d", cases[i].in, rc, cases[i].rc);
		if (rc == 0 && (first != cases[i].first || count != cases[i].count))
			fail_msg("sources \"%s\": %08x+%u, want %08x+%u", cases[i].in, first, count,
				 cases[i].first, cases[i].count);
	}
}

static void test_load_opts_source_str(void **state)
{
	const char *args[] = { CI, "--source-addrs", "127.0.0.254-127.0.1.3", NULL };
	struct load_opts o;
	char err[256], a[20];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), args), LOAD_OPTS_OK);
	assert_int_equal(o.src_count, 6);
	load_opts_source_str(&o, 0, a, sizeof(a));
	assert_string_equal(a, "127.0.0.254");
	load_opts_source_str(&o, 5, a, sizeof(a));
	assert_string_equal(a, "127.0.1.3");
}

/* Bad command lines: the return code and a fragment the message must hold. */
static void test_load_opts_bad_inputs_say_what_is_wrong(void **state)
{
	static const struct {
		const char *args[6];
		const char *needle;
	} cases[] = {
		{ { NULL }, "missing the connection string" },
		{ { "--clients", "10", NULL }, "missing the connection string" },
		{ { CI, "dbname=other", NULL }, "already given" },
		{ { CI, "--bogus", NULL }, "unknown option \"--bogus\"" },
		{ { CI, "-x", NULL }, "unknown option \"-x\"" },
		{ { CI, "-c5", NULL }, "unknown option \"-c5\"" },
		{ { CI, "--clients", NULL }, "--clients needs a value" },
		{ { CI, "--clients", "0", NULL }, "--clients: \"0\"" },
		{ { CI, "--clients", "-5", NULL }, "--clients: \"-5\"" },
		{ { CI, "--clients", "12abc", NULL }, "--clients: \"12abc\"" },
		{ { CI, "--clients", "99999999999", NULL }, "from 1 to 10000000" },
		{ { CI, "--clients=", NULL }, "--clients: \"\"" },
		{ { CI, "--connect-rate", "fast", NULL },
		  "--connect-rate: \"fast\" is not a rate" },
		{ { CI, "--duration", "0", NULL }, "--duration: \"0\" is not a positive duration" },
		{ { CI, "--duration", "1.5s", NULL }, "--duration: \"1.5s\"" },
		{ { CI, "--procs", "0", NULL }, "--procs: \"0\"" },
		{ { CI, "--procs", "2000", NULL }, "from 1 to 1024" },
		{ { CI, "--clients", "2", "--procs", "4", NULL },
		  "--procs 4 is more than --clients 2" },
		{ { CI, "--source-addrs", "10.1.1.1", NULL }, "range of loopback addresses" },
		{ { CI, "--json", "", NULL }, "--json: needs a file name" },
		{ { CI, "--csv=", NULL }, "--csv: needs a file name" },
		{ { CI, "--admin-user", "", NULL }, "--admin-user: needs a user name" },
		{ { CI, "--connect-timeout", "0", NULL }, "--connect-timeout: \"0\"" },
		{ { CI, "--think", "soon", NULL }, "--think: \"soon\"" },
		{ { CI, "--help=yes", NULL }, "--help takes no value" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct load_opts o;
		char err[256] = "";
		int rc = parse(&o, err, sizeof(err), cases[i].args);

		if (rc != LOAD_OPTS_EINVAL)
			fail_msg("case %zu: rc %d, want an error with \"%s\"", i, rc,
				 cases[i].needle);
		if (strstr(err, cases[i].needle) == NULL)
			fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err, cases[i].needle);
	}
}

static void test_load_opts_help_and_double_dash(void **state)
{
	const char *help[] = { "-h", NULL };
	const char *help_long[] = { CI, "--help", NULL };
	const char *dashdash[] = { "--clients", "3", "--", "-weird-conninfo", NULL };
	struct load_opts o;
	char err[256];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), help), LOAD_OPTS_HELP);
	assert_int_equal(parse(&o, err, sizeof(err), help_long), LOAD_OPTS_HELP);
	assert_int_equal(parse(&o, err, sizeof(err), dashdash), LOAD_OPTS_OK);
	assert_string_equal(o.conninfo, "-weird-conninfo");
	assert_int_equal(o.clients, 3);
	assert_non_null(strstr(load_opts_usage(), "--source-addrs"));
}

static void test_load_opts_tiny_error_buffer_is_safe(void **state)
{
	const char *args[] = { CI, "--clients", "zero", NULL };
	struct load_opts o;
	char err[8];

	(void)state;
	memset(err, 'x', sizeof(err));
	assert_int_equal(parse(&o, err, sizeof(err), args), LOAD_OPTS_EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(parse(&o, NULL, 0, args), LOAD_OPTS_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_opts_defaults),
		cmocka_unit_test(test_load_opts_every_option_long_short_and_equals),
		cmocka_unit_test(test_load_opts_rates),
		cmocka_unit_test(test_load_opts_durations),
		cmocka_unit_test(test_load_opts_workloads),
		cmocka_unit_test(test_load_opts_source_ranges),
		cmocka_unit_test(test_load_opts_source_str),
		cmocka_unit_test(test_load_opts_bad_inputs_say_what_is_wrong),
		cmocka_unit_test(test_load_opts_help_and_double_dash),
		cmocka_unit_test(test_load_opts_tiny_error_buffer_is_safe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
