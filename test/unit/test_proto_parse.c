/*
 * test_proto_parse.c: decoders for the typed messages pgmux reads itself.
 * Each decoder gets a table of raw bodies, well-formed and malformed
 * (truncated, unterminated, trailing garbage).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto.h"
#include "proto_parse.h"

#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BYTES(s) (const uint8_t *)(s), sizeof(s) - 1

struct raw_case {
	const char *name;
	const uint8_t *body;
	size_t len;
	bool ok;
};

static void test_parse_auth_table(void **state)
{
	static const struct {
		struct raw_case rc;
		uint32_t code;
		size_t payload_len;
	} cases[] = {
		{ { "AuthenticationOk", BYTES("\0\0\0\0"), true }, PROTO_AUTH_OK, 0 },
		{ { "MD5 with salt", BYTES("\0\0\0\x05\x01\x02\x03\x04"), true }, PROTO_AUTH_MD5,
		  4 },
		{ { "SASL list", BYTES("\0\0\0\x0aSCRAM-SHA-256\0\0"), true }, PROTO_AUTH_SASL,
		  15 },
		{ { "three bytes", BYTES("\0\0\0"), false }, 0, 0 },
		{ { "empty", BYTES(""), false }, 0, 0 },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		uint32_t code = 99;
		const uint8_t *payload = NULL;
		size_t plen = 99;
		bool ok = proto_parse_auth(cases[i].rc.body, cases[i].rc.len, &code, &payload,
					   &plen);

		if (ok != cases[i].rc.ok)
			fail_msg("case '%s'", cases[i].rc.name);
		if (!ok)
			continue;
		assert_int_equal(code, cases[i].code);
		assert_int_equal(plen, cases[i].payload_len);
		assert_ptr_equal(payload, cases[i].rc.body + 4);
	}
}

static void test_parse_sasl_mechanism_table(void **state)
{
	static const struct {
		const char *name;
		const uint8_t *payload;
		size_t len;
		const char *mech;
		bool found;
	} cases[] = {
		{ "only SCRAM", BYTES("SCRAM-SHA-256\0\0"), "SCRAM-SHA-256", true },
		{ "PLUS is another mechanism", BYTES("SCRAM-SHA-256\0\0"), "SCRAM-SHA-256-PLUS",
		  false },
		{ "second in list", BYTES("SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"),
		  "SCRAM-SHA-256", true },
		{ "first in list", BYTES("SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"),
		  "SCRAM-SHA-256-PLUS", true },
		{ "prefix is not a match", BYTES("SCRAM-SHA\0\0"), "SCRAM-SHA-256", false },
		{ "empty list", BYTES("\0"), "SCRAM-SHA-256", false },
		{ "no list terminator", BYTES("SCRAM-SHA-256\0"), "SCRAM-SHA-256", false },
		{ "name not terminated", BYTES("SCRAM-SHA-256"), "SCRAM-SHA-256", false },
		{ "nothing", BYTES(""), "SCRAM-SHA-256", false },
		{ "garbage after list", BYTES("SCRAM-SHA-256\0\0x"), "SCRAM-SHA-256", false },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		bool found = proto_sasl_has_mechanism(cases[i].payload, cases[i].len,
						      cases[i].mech);

		if (found != cases[i].found)
			fail_msg("case '%s'", cases[i].name);
	}
}

static void test_parse_parameter_status_table(void **state)
{
	static const struct {
		struct raw_case rc;
		const char *name;
		const char *value;
	} cases[] = {
		{ { "ok", BYTES("TimeZone\0UTC\0"), true }, "TimeZone", "UTC" },
		{ { "empty value", BYTES("application_name\0\0"), true }, "application_name", "" },
		{ { "value unterminated", BYTES("TimeZone\0UTC"), false }, NULL, NULL },
		{ { "no value", BYTES("TimeZone\0"), false }, NULL, NULL },
		{ { "trailing byte", BYTES("a\0b\0c"), false }, NULL, NULL },
		{ { "trailing string", BYTES("a\0b\0c\0"), false }, NULL, NULL },
		{ { "empty", BYTES(""), false }, NULL, NULL },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		const char *name = NULL, *value = NULL;
		bool ok = proto_parse_parameter_status(cases[i].rc.body, cases[i].rc.len, &name,
						       &value);

		if (ok != cases[i].rc.ok)
			fail_msg("case '%s'", cases[i].rc.name);
		if (ok) {
			assert_string_equal(name, cases[i].name);
			assert_string_equal(value, cases[i].value);
		}
	}
}

static void test_parse_backend_key_data_needs_exactly_8(void **state)
{
	static const uint8_t body[9] = { 0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef, 0 };
	uint32_t pid = 0, key = 0;
	size_t len;

	for (len = 0; len <= sizeof(body); len++) {
		bool ok = proto_parse_backend_key_data(body, len, &pid, &key);

		assert_int_equal(ok, len == 8);
	}
	assert_int_equal(pid, 12345);
	assert_int_equal(key, 0xdeadbeefu);
}

static void test_parse_ready_for_query_table(void **state)
{
	static const struct {
		struct raw_case rc;
		uint8_t status;
	} cases[] = {
		{ { "idle", BYTES("I"), true }, PROTO_TX_IDLE },
		{ { "in block", BYTES("T"), true }, PROTO_TX_IN_BLOCK },
		{ { "failed", BYTES("E"), true }, PROTO_TX_FAILED },
		{ { "unknown status", BYTES("X"), false }, 0 },
		{ { "NUL status", BYTES("\0"), false }, 0 },
		{ { "empty", BYTES(""), false }, 0 },
		{ { "two bytes", BYTES("II"), false }, 0 },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		uint8_t st = 0;
		bool ok = proto_parse_ready_for_query(cases[i].rc.body, cases[i].rc.len, &st);

		if (ok != cases[i].rc.ok)
			fail_msg("case '%s'", cases[i].rc.name);
		if (ok)
			assert_int_equal(st, cases[i].status);
	}
}

static void test_parse_error_fields(void **state)
{
	static const char body[] = "SERREUR\0VERROR\0C42P01\0Mrelation \"x\" does not exist\0"
				   "P15\0Dsome detail\0Hsome hint\0Fparse_relation.c\0";
	struct proto_error_fields ef;

	/* sizeof(body) includes the final NUL that ends the field list. */
	assert_true(proto_parse_error((const uint8_t *)body, sizeof(body), &ef));
	assert_string_equal(ef.severity, "ERROR"); /* 'V' beats localized 'S' */
	assert_string_equal(ef.sqlstate, "42P01");
	assert_string_equal(ef.message, "relation \"x\" does not exist");
	assert_string_equal(ef.detail, "some detail");
	assert_string_equal(ef.hint, "some hint");
}

static void test_parse_error_severity_order_and_absent_fields(void **state)
{
	static const char v_first[] = "VFATAL\0SFATALE\0Mbye\0";
	static const char s_only[] = "SPANIC\0";
	struct proto_error_fields ef;

	assert_true(proto_parse_error((const uint8_t *)v_first, sizeof(v_first), &ef));
	assert_string_equal(ef.severity, "FATAL");
	assert_string_equal(ef.message, "bye");
	assert_null(ef.sqlstate);
	assert_null(ef.detail);
	assert_null(ef.hint);

	assert_true(proto_parse_error((const uint8_t *)s_only, sizeof(s_only), &ef));
	assert_string_equal(ef.severity, "PANIC");

	assert_true(proto_parse_error(BYTES("\0"), &ef));
	assert_null(ef.severity);
	assert_null(ef.message);
}

static void test_parse_error_malformed_table(void **state)
{
	static const struct raw_case cases[] = {
		{ "empty", BYTES(""), false },
		{ "no list terminator", BYTES("SERROR\0"), false },
		{ "field value unterminated", BYTES("SERROR"), false },
		{ "code without value", BYTES("S"), false },
		{ "garbage after terminator", BYTES("SERROR\0\0x"), false },
		{ "second terminator", BYTES("\0\0"), false },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct proto_error_fields ef;

		if (proto_parse_error(cases[i].body, cases[i].len, &ef) != cases[i].ok)
			fail_msg("case '%s'", cases[i].name);
	}
}

static void test_parse_password_table(void **state)
{
	static const struct {
		struct raw_case rc;
		const char *password;
	} cases[] = {
		{ { "cleartext", BYTES("hunter2\0"), true }, "hunter2" },
		{ { "md5", BYTES("md5abc\0"), true }, "md5abc" },
		{ { "empty", BYTES("\0"), true }, "" },
		{ { "unterminated", BYTES("hunter2"), false }, NULL },
		{ { "two strings", BYTES("a\0b\0"), false }, NULL },
		{ { "nothing", BYTES(""), false }, NULL },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		const char *pw = NULL;
		bool ok = proto_parse_password(cases[i].rc.body, cases[i].rc.len, &pw);

		if (ok != cases[i].rc.ok)
			fail_msg("case '%s'", cases[i].rc.name);
		if (ok)
			assert_string_equal(pw, cases[i].password);
	}
}

static void test_parse_sasl_initial_table(void **state)
{
	static const struct {
		struct raw_case rc;
		const char *data;
		size_t data_len;
	} cases[] = {
		{ { "with data", BYTES("SCRAM-SHA-256\0\0\0\0\x03n,,"), true }, "n,,", 3 },
		{ { "empty data", BYTES("SCRAM-SHA-256\0\0\0\0\0"), true }, "", 0 },
		{ { "no data (-1)", BYTES("SCRAM-SHA-256\0\xff\xff\xff\xff"), true }, NULL, 0 },
		{ { "negative length", BYTES("M\0\xff\xff\xff\xfe"), false }, NULL, 0 },
		{ { "INT32_MIN length", BYTES("M\0\x80\0\0\0"), false }, NULL, 0 },
		{ { "length beyond body", BYTES("M\0\0\0\0\x04n,,"), false }, NULL, 0 },
		{ { "huge length", BYTES("M\0\x7f\xff\xff\xffn,,"), false }, NULL, 0 },
		{ { "trailing byte", BYTES("M\0\0\0\0\x02n,,"), false }, NULL, 0 },
		{ { "trailing after -1", BYTES("M\0\xff\xff\xff\xffx"), false }, NULL, 0 },
		{ { "length truncated", BYTES("M\0\0\0"), false }, NULL, 0 },
		{ { "mechanism unterminated", BYTES("SCRAM-SHA-256"), false }, NULL, 0 },
		{ { "empty", BYTES(""), false }, NULL, 0 },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		const char *mech = NULL;
		const uint8_t *data = (const uint8_t *)"sentinel";
		size_t dlen = 99;
		bool ok = proto_parse_sasl_initial(cases[i].rc.body, cases[i].rc.len, &mech,
						   &data, &dlen);

		if (ok != cases[i].rc.ok)
			fail_msg("case '%s'", cases[i].rc.name);
		if (!ok)
			continue;
		assert_int_equal(dlen, cases[i].data_len);
		if (cases[i].data)
			assert_memory_equal(data, cases[i].data, dlen);
		else
			assert_null(data);
		assert_string_equal(mech, "SCRAM-SHA-256"); /* every accepted case uses it */
	}
}

/* Parse: name, then query and types checked to the last byte. */
static void test_parse_parse_table(void **state)
{
	static const struct {
		struct raw_case rc;
		const char *name;
		size_t rest_len;
	} cases[] = {
		{ { "no types", BYTES("s1\0SELECT 1\0\0\0"), true }, "s1", 11 },
		{ { "two types", BYTES("\0SELECT $1\0\0\x02\0\0\0\x17\0\0\0\x19"), true }, "", 20 },
		{ { "zero type", BYTES("a\0q\0\0\x01\0\0\0\0"), true }, "a", 8 },
		{ { "negative count", BYTES("a\0q\0\xff\xff"), false }, NULL, 0 },
		{ { "types cut short", BYTES("a\0q\0\0\x02\0\0\0\x17"), false }, NULL, 0 },
		{ { "trailing byte", BYTES("a\0q\0\0\0x"), false }, NULL, 0 },
		{ { "count missing", BYTES("a\0q\0"), false }, NULL, 0 },
		{ { "query unterminated", BYTES("a\0select"), false }, NULL, 0 },
		{ { "name unterminated", BYTES("abc"), false }, NULL, 0 },
		{ { "empty", BYTES(""), false }, NULL, 0 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *name = NULL;
		const uint8_t *rest = NULL;
		size_t name_len = 99, rest_len = 99;
		bool ok = proto_parse_parse(cases[i].rc.body, cases[i].rc.len, &name, &name_len,
					    &rest, &rest_len);

		if (ok != cases[i].rc.ok)
			fail_msg("case '%s'", cases[i].rc.name);
		if (!ok)
			continue;
		assert_string_equal(name, cases[i].name);
		assert_int_equal(name_len, strlen(cases[i].name));
		assert_int_equal(rest_len, cases[i].rest_len);
		assert_ptr_equal(rest, cases[i].rc.body + name_len + 1);
	}
}

/* Bind: the two names from however much of the body has come. */
static void test_parse_bind_head_table(void **state)
{
	static const uint8_t body[] = "p1\0stmt\0\0\0\0\x01\0\0\0\x01x\0\0";
	const size_t len = sizeof(body) - 1;
	const char *portal, *stmt;
	size_t head = 0;

	assert_int_equal(proto_parse_bind_head(body, len, len, &portal, &stmt, &head),
			 PROTO_HEAD_OK);
	assert_string_equal(portal, "p1");
	assert_string_equal(stmt, "stmt");
	assert_int_equal(head, 8);
	/* Only the names at hand is enough; fewer bytes need more. */
	assert_int_equal(proto_parse_bind_head(body, 8, len, &portal, &stmt, &head),
			 PROTO_HEAD_OK);
	for (size_t avail = 0; avail < 8; avail++)
		assert_int_equal(proto_parse_bind_head(body, avail, len, &portal, &stmt, &head),
				 PROTO_HEAD_NEED_MORE);
	/* The body ends before the names do. */
	assert_int_equal(proto_parse_bind_head(body, 5, 5, &portal, &stmt, &head), PROTO_HEAD_BAD);
	assert_int_equal(proto_parse_bind_head(body, 0, 0, &portal, &stmt, &head), PROTO_HEAD_BAD);
	/* avail beyond the body is clamped to it. */
	assert_int_equal(proto_parse_bind_head(body, len + 10, 3, &portal, &stmt, &head),
			 PROTO_HEAD_BAD);
}

static void test_parse_target_table(void **state)
{
	static const struct {
		struct raw_case rc;
		uint8_t kind;
		const char *name;
	} cases[] = {
		{ { "statement", BYTES("Ss1\0"), true }, 'S', "s1" },
		{ { "unnamed portal", BYTES("P\0"), true }, 'P', "" },
		{ { "bad kind", BYTES("Xs1\0"), false }, 0, NULL },
		{ { "unterminated", BYTES("Ss1"), false }, 0, NULL },
		{ { "trailing", BYTES("Ss1\0x"), false }, 0, NULL },
		{ { "empty", BYTES(""), false }, 0, NULL },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		uint8_t kind = 0;
		const char *name = NULL;
		bool ok = proto_parse_target(cases[i].rc.body, cases[i].rc.len, &kind, &name);

		if (ok != cases[i].rc.ok)
			fail_msg("case '%s'", cases[i].rc.name);
		if (!ok)
			continue;
		assert_int_equal(kind, cases[i].kind);
		assert_string_equal(name, cases[i].name);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_auth_table),
		cmocka_unit_test(test_parse_sasl_mechanism_table),
		cmocka_unit_test(test_parse_parameter_status_table),
		cmocka_unit_test(test_parse_backend_key_data_needs_exactly_8),
		cmocka_unit_test(test_parse_ready_for_query_table),
		cmocka_unit_test(test_parse_error_fields),
		cmocka_unit_test(test_parse_error_severity_order_and_absent_fields),
		cmocka_unit_test(test_parse_error_malformed_table),
		cmocka_unit_test(test_parse_password_table),
		cmocka_unit_test(test_parse_sasl_initial_table),
		cmocka_unit_test(test_parse_parse_table),
		cmocka_unit_test(test_parse_bind_head_table),
		cmocka_unit_test(test_parse_target_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
