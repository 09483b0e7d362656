/*
 * test_sqlprep.c: the scanner that finds SQL-level PREPARE / DEALLOCATE /
 * DISCARD ALL statements in a statement string (names as PostgreSQL keeps
 * them, definitions, quotes and comments skipped), and the name sets
 * pgmux keeps per client and server.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "prep_state.h"
#include "sqlprep.h"

#define MAX_FOUND 8

struct found {
	size_t n;
	enum sqlprep_op op[MAX_FOUND];
	char name[MAX_FOUND][SQLPREP_NAME_MAX];
	char def[MAX_FOUND][256];
};

static void collect(void *arg, const struct sqlprep_found *f)
{
	struct found *r = arg;

	assert_true(r->n < MAX_FOUND);
	r->op[r->n] = f->op;
	memcpy(r->name[r->n], f->name, sizeof(f->name));
	assert_true(f->def_len < sizeof(r->def[0]));
	memcpy(r->def[r->n], f->def ? (const char *)f->def : "", f->def_len);
	r->def[r->n][f->def_len] = '\0';
	r->n++;
}

static struct found scan_std(const char *sql, bool std)
{
	struct found r;
	size_t n;

	memset(&r, 0, sizeof(r));
	n = sqlprep_scan((const uint8_t *)sql, strlen(sql), std, collect, &r);
	assert_int_equal(n, r.n);
	return r;
}

static struct found scan(const char *sql)
{
	return scan_std(sql, true);
}

static void test_sqlprep_prepare_gives_folded_name_and_definition(void **state)
{
	struct found r = scan("  PREPARE Fooplan (int, text) AS SELECT $1, $2 ;  ");

	(void)state;
	assert_int_equal(r.n, 1);
	assert_int_equal(r.op[0], SQLPREP_OP_PREPARE);
	assert_string_equal(r.name[0], "fooplan");
	assert_string_equal(r.def[0], "(int, text) AS SELECT $1, $2");
}

static void test_sqlprep_quoted_name_keeps_case_and_doubled_quotes(void **state)
{
	struct found r = scan("prepare \"My \"\"Plan\"\"\" as select 1");

	(void)state;
	assert_int_equal(r.n, 1);
	assert_string_equal(r.name[0], "My \"Plan\"");
	assert_string_equal(r.def[0], "as select 1");
}

static void test_sqlprep_long_name_is_cut_to_63_bytes_on_a_character(void **state)
{
	char sql[256];
	struct found r;

	(void)state;
	snprintf(sql, sizeof(sql), "PREPARE %s AS SELECT 1",
		 "a23456789012345678901234567890123456789012345678901234567890123456789");
	r = scan(sql);
	assert_int_equal(strlen(r.name[0]), 63);
	/* 62 ASCII bytes then a two-byte character: it does not fit whole. */
	snprintf(sql, sizeof(sql), "PREPARE \"%s\xc3\xa9x\" AS SELECT 1",
		 "a2345678901234567890123456789012345678901234567890123456789012");
	r = scan(sql);
	assert_int_equal(strlen(r.name[0]), 62);
}

static void test_sqlprep_multi_statement_string_in_order(void **state)
{
	struct found r = scan("SELECT 1; prepare a AS select 'x;y'; EXECUTE a; "
			      "DEALLOCATE b; deallocate prepare c; DEALLOCATE ALL; discard all");

	(void)state;
	assert_int_equal(r.n, 5);
	assert_int_equal(r.op[0], SQLPREP_OP_PREPARE);
	assert_string_equal(r.def[0], "AS select 'x;y'");
	assert_int_equal(r.op[1], SQLPREP_OP_DEALLOCATE);
	assert_string_equal(r.name[1], "b");
	assert_int_equal(r.op[2], SQLPREP_OP_DEALLOCATE);
	assert_string_equal(r.name[2], "c");
	assert_int_equal(r.op[3], SQLPREP_OP_DEALLOCATE_ALL);
	assert_int_equal(r.op[4], SQLPREP_OP_DISCARD_ALL);
}

static void test_sqlprep_quotes_comments_and_dollar_quotes_hide_statements(void **state)
{
	struct found r;

	(void)state;
	r = scan("SELECT 'a;PREPARE x AS SELECT 1' -- ; PREPARE y AS SELECT 1\n"
		 "; /* ; PREPARE z /* nested; */ AS SELECT 1 */ SELECT $tag$ ; PREPARE w AS"
		 " SELECT 1 $tag$; SELECT $$;PREPARE v AS SELECT 1$$; SELECT \"a;PREPARE u\"");
	assert_int_equal(r.n, 0);
	/* $1 is a parameter, not a dollar quote: the ';' after it ends the statement. */
	r = scan("PREPARE p AS SELECT $1::int; PREPARE q AS SELECT a$b$c FROM t; PREPARE r AS "
		 "SELECT 1");
	assert_int_equal(r.n, 3);
	assert_string_equal(r.def[1], "AS SELECT a$b$c FROM t");
	assert_string_equal(r.name[2], "r");
}

static void test_sqlprep_backslash_escapes_follow_standard_conforming_strings(void **state)
{
	const char *sql = "SELECT 'a\\'; PREPARE x AS SELECT 1; SELECT '";
	struct found r;

	(void)state;
	r = scan_std(sql, true); /* 'a\' is a whole string: x is a statement */
	assert_int_equal(r.n, 1);
	r = scan_std(sql, false); /* the quote is escaped: all one string */
	assert_int_equal(r.n, 0);
	r = scan("SELECT E'a\\'; PREPARE x AS SELECT 1; SELECT '"); /* E'' escapes always */
	assert_int_equal(r.n, 0);
}

static void test_sqlprep_two_phase_commit_is_not_a_statement_prepare(void **state)
{
	struct found r;

	(void)state;
	r = scan("PREPARE TRANSACTION 'gid-1'");
	assert_int_equal(r.n, 0);
	r = scan("PREPARE transaction AS SELECT 1");
	assert_int_equal(r.n, 1);
	assert_string_equal(r.name[0], "transaction");
	r = scan("PREPARE transaction(int) AS SELECT $1");
	assert_int_equal(r.n, 1);
}

static void test_sqlprep_deallocate_forms(void **state)
{
	struct found r;

	(void)state;
	r = scan("DEALLOCATE prepare"); /* a statement named "prepare" */
	assert_int_equal(r.n, 1);
	assert_int_equal(r.op[0], SQLPREP_OP_DEALLOCATE);
	assert_string_equal(r.name[0], "prepare");
	r = scan("DEALLOCATE PREPARE ALL");
	assert_int_equal(r.op[0], SQLPREP_OP_DEALLOCATE_ALL);
	r = scan("DEALLOCATE \"ALL\"");
	assert_int_equal(r.op[0], SQLPREP_OP_DEALLOCATE);
	assert_string_equal(r.name[0], "ALL");
	r = scan("DEALLOCATE a b"); /* a syntax error: PostgreSQL says so, no effect */
	assert_int_equal(r.n, 0);
	r = scan("DISCARD PLANS; DISCARD TEMP; discard all extra");
	assert_int_equal(r.n, 0);
}

static void test_sqlprep_unreadable_names_are_not_reported(void **state)
{
	struct found r;

	(void)state;
	r = scan("PREPARE U&\"d\\0061t\" AS SELECT 1; PREPARE \"\" AS SELECT 1; PREPARE 1x AS "
		 "SELECT 1; PREPARE \"open AS SELECT 1");
	assert_int_equal(r.n, 0);
	r = scan("PREPARE nodef");
	assert_int_equal(r.n, 0);
}

static void test_sqlprep_sets_compare_names_and_definitions(void **state)
{
	struct prep_registry reg;
	struct sqlprep_set a, b;
	struct prep_stmt *one, *two;

	(void)state;
	memset(&reg, 0, sizeof(reg));
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	one = prep_stmt_get(&reg, (const uint8_t *)"AS SELECT 1", 11);
	two = prep_stmt_get(&reg, (const uint8_t *)"AS SELECT 2", 11);
	assert_true(sqlprep_set_same(NULL, &a));
	sqlprep_set_put(&a, "p", one);
	assert_false(sqlprep_set_same(&a, &b));
	assert_false(sqlprep_set_same(&a, NULL));
	sqlprep_set_put(&b, "p", two);
	assert_false(sqlprep_set_same(&a, &b)); /* same name, other text */
	sqlprep_set_put(&b, "p", one);          /* replaced */
	assert_int_equal(b.count, 1);
	assert_true(sqlprep_set_same(&a, &b));
	assert_int_equal(a.bytes, 11);
	sqlprep_set_del(&b, "p");
	sqlprep_set_del(&b, "absent");
	assert_int_equal(b.count, 0);
	assert_int_equal(b.bytes, 0);
	sqlprep_set_clear(&a);
	assert_null(sqlprep_set_find(&a, "p"));
	/* The sets held the last references but ours. */
	assert_int_equal(one->refs, 1);
	assert_int_equal(two->refs, 1);
	prep_stmt_unref(one);
	prep_stmt_unref(two);
	assert_int_equal(reg.count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sqlprep_prepare_gives_folded_name_and_definition),
		cmocka_unit_test(test_sqlprep_quoted_name_keeps_case_and_doubled_quotes),
		cmocka_unit_test(test_sqlprep_long_name_is_cut_to_63_bytes_on_a_character),
		cmocka_unit_test(test_sqlprep_multi_statement_string_in_order),
		cmocka_unit_test(test_sqlprep_quotes_comments_and_dollar_quotes_hide_statements),
		cmocka_unit_test(test_sqlprep_backslash_escapes_follow_standard_conforming_strings),
		cmocka_unit_test(test_sqlprep_two_phase_commit_is_not_a_statement_prepare),
		cmocka_unit_test(test_sqlprep_deallocate_forms),
		cmocka_unit_test(test_sqlprep_unreadable_names_are_not_reported),
		cmocka_unit_test(test_sqlprep_sets_compare_names_and_definitions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
