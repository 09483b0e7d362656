/*
 * test_params.c: tracked parameters (registry, effective values, the SET
 * query pgmux sends), the ParameterStatus walker, and session-state
 * detection from statement text and CommandComplete tags.
 */
#include <stdbool.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "params.h"
#include "proto_build.h"

static int setup(void **state)
{
	char err[128];

	(void)state;
	return param_registry_init("IntervalStyle, search_path", err, sizeof(err));
}

static int teardown(void **state)
{
	(void)state;
	param_registry_free();
	return 0;
}

static void test_params_registry_is_case_insensitive_and_takes_extras(void **state)
{
	(void)state;
	assert_true(param_index("timezone") >= 0);
	assert_int_equal(param_index("TimeZone"), param_index("TIMEZONE"));
	assert_true(param_index("search_path") >= 0);
	assert_int_equal(param_index("work_mem"), -1);
	assert_int_equal(param_count(), 7); /* 6 built in, IntervalStyle once, search_path */
}

static void test_params_bad_extra_name_is_refused(void **state)
{
	char err[128];

	(void)state;
	assert_int_equal(param_registry_init("x;drop", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a parameter name"));
	assert_int_equal(param_registry_init("IntervalStyle, search_path", err, sizeof(err)), 0);
}

static void test_params_sync_sets_only_what_differs_with_quotes_escaped(void **state)
{
	struct param_set want = { 0 }, have = { 0 }, defaults = { 0 };
	struct proto_buf b;
	int tz = param_index("TimeZone"), ds = param_index("DateStyle");

	(void)state;
	param_set_value(&defaults, tz, "UTC");
	param_set_value(&defaults, ds, "ISO, MDY");
	param_set_value(&want, tz, "it's\\here");
	assert_int_equal(param_build_sync(NULL, &want, &have, &defaults), 1);
	proto_buf_init(&b, 4096);
	assert_int_equal(param_build_sync(&b, &want, &have, &defaults), 1);
	/* 'Q', length, then the text. */
	assert_int_equal(b.data[0], 'Q');
	assert_string_equal((const char *)b.data + 5, "SET TimeZone TO E'it''s\\\\here';");
	proto_buf_free(&b);
	param_set_copy(&have, &want);
	assert_int_equal(param_build_sync(NULL, &want, &have, &defaults), 0);
	assert_true(param_set_same(&want, &have));
	param_set_clear(&want);
	param_set_clear(&have);
	param_set_clear(&defaults);
}

static void test_params_walk_reads_statuses_and_stops_at_a_bad_frame(void **state)
{
	struct proto_buf b;
	struct param_msg m;
	size_t pos = 0;
	int n = 0;

	(void)state;
	proto_buf_init(&b, 4096);
	proto_build_parameter_status(&b, "TimeZone", "UTC");
	proto_build_parameter_status(&b, "server_version", "15");
	/* A truncated frame: a header claiming more than is there. */
	proto_put_bytes(&b, "S\0\0\0\x40x", 6);
	while (param_walk(b.data, b.len, &pos, &m))
		n++;
	assert_int_equal(n, 2);
	pos = 0;
	assert_true(param_walk(b.data, b.len, &pos, &m));
	assert_int_equal(m.idx, param_index("TimeZone"));
	assert_string_equal(m.value, "UTC");
	assert_true(param_walk(b.data, b.len, &pos, &m));
	assert_int_equal(m.idx, -1);
	proto_buf_free(&b);
}

static unsigned leak(const char *sql)
{
	return param_leak_from_sql((const uint8_t *)sql, strlen(sql));
}

static void test_params_session_state_is_found_in_statement_text(void **state)
{
	(void)state;
	assert_int_equal(leak("SET statement_timeout = 5"), PARAM_LEAK_SET);
	assert_int_equal(leak("set session work_mem to '1MB'"), PARAM_LEAK_SET);
	assert_int_equal(leak("SET LOCAL statement_timeout = 5"), 0);
	assert_int_equal(leak("SET TimeZone = 'UTC'"), 0);     /* tracked */
	assert_int_equal(leak("SET TIME ZONE 'UTC'"), 0);
	assert_int_equal(leak("select 1; set search_path = x"), 0); /* tracked extra */
	assert_int_equal(leak("select 1; set role app"), PARAM_LEAK_SET);
	assert_int_equal(leak("SELECT pg_advisory_lock(1)"), PARAM_LEAK_ADVISORY);
	assert_int_equal(leak("SELECT pg_try_advisory_lock(1)"), PARAM_LEAK_ADVISORY);
	assert_int_equal(leak("SELECT pg_advisory_xact_lock(1)"), 0);
	assert_int_equal(leak("CREATE TEMP TABLE t (x int)"), PARAM_LEAK_TEMP);
	assert_int_equal(leak("create temporary view v as select 1"), PARAM_LEAK_TEMP);
	assert_int_equal(leak("select temp from weather"), 0);
	assert_int_equal(leak("select * from template1"), 0);
	assert_int_equal(leak("pg_advisory_lo"), 0); /* shorter than the name */
	assert_int_equal(param_leak_from_tag((const uint8_t *)"LISTEN", 7), PARAM_LEAK_LISTEN);
	assert_int_equal(param_leak_from_tag((const uint8_t *)"PREPARE", 8), PARAM_LEAK_PREPARE);
	assert_int_equal(param_leak_from_tag((const uint8_t *)"SELECT 1", 9), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params_registry_is_case_insensitive_and_takes_extras),
		cmocka_unit_test(test_params_bad_extra_name_is_refused),
		cmocka_unit_test(test_params_sync_sets_only_what_differs_with_quotes_escaped),
		cmocka_unit_test(test_params_walk_reads_statuses_and_stops_at_a_bad_frame),
		cmocka_unit_test(test_params_session_state_is_found_in_statement_text),
	};

	return cmocka_run_group_tests_name("unit_params", tests, setup, teardown);
}
