/*
 * test_proto_build.c: byte layouts of every message pgmux originates, and
 * the builder's sticky failure when a message would pass the buffer's max.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto.h"
#include "proto_build.h"

#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Each case builds one message; the expected bytes are spelled out by hand
 * from the PostgreSQL protocol documentation. */
struct build_case {
	const char *name;
	void (*build)(struct proto_buf *b);
	const char *bytes;
	size_t len;
};

#define BYTES(s) s, sizeof(s) - 1

static void build_error(struct proto_buf *b)
{
	proto_build_error(b, "FATAL", "28P01", "password authentication failed", NULL);
}

static void build_error_detail(struct proto_buf *b)
{
	proto_build_error(b, "ERROR", "08P01", "bad", "why");
}

static void build_notice(struct proto_buf *b)
{
	proto_build_notice(b, "WARNING", "01000", "hi");
}

static void build_parameter_status(struct proto_buf *b)
{
	proto_build_parameter_status(b, "client_encoding", "UTF8");
}

static void build_backend_key_data(struct proto_buf *b)
{
	proto_build_backend_key_data(b, 0x01020304, 0xdeadbeef);
}

static void build_ready_for_query(struct proto_buf *b)
{
	proto_build_ready_for_query(b, PROTO_TX_IN_BLOCK);
}

static void build_auth_ok(struct proto_buf *b)
{
	proto_build_auth(b, PROTO_AUTH_OK, NULL, 0);
}

static void build_auth_md5(struct proto_buf *b)
{
	static const uint8_t salt[4] = { 0xa1, 0xb2, 0xc3, 0xd4 };

	proto_build_auth(b, PROTO_AUTH_MD5, salt, sizeof(salt));
}

static void build_auth_sasl(struct proto_buf *b)
{
	static const char *const mechs[] = { "SCRAM-SHA-256", NULL };

	proto_build_auth_sasl(b, mechs);
}

static void build_auth_sasl_continue(struct proto_buf *b)
{
	proto_build_auth(b, PROTO_AUTH_SASL_CONTINUE, "r=ab", 4);
}

static void build_negotiate_version(struct proto_buf *b)
{
	static const char *const options[] = { "_pq_.a", "_pq_.bc" };

	proto_build_negotiate_version(b, PROTO_VERSION_3_0, options, 2);
}

static void build_negotiate_version_no_options(struct proto_buf *b)
{
	proto_build_negotiate_version(b, PROTO_VERSION_3_0, NULL, 0);
}

static void build_row_description_text(struct proto_buf *b)
{
	static const char *const names[] = { "a", "bc" };

	proto_build_row_description(b, 2, names, NULL);
}

static void build_row_description_typed(struct proto_buf *b)
{
	static const char *const names[] = { "n", "b" };
	static const uint32_t oids[] = { 20, 16 };

	proto_build_row_description(b, 2, names, oids);
}

static void build_data_row(struct proto_buf *b)
{
	static const char *const values[] = { "x", NULL, "" };

	proto_build_data_row(b, 3, values);
}

static void build_command_complete(struct proto_buf *b)
{
	proto_build_command_complete(b, "SHOW");
}

static void build_empty_query(struct proto_buf *b)
{
	proto_build_empty_query(b);
}

static void build_startup(struct proto_buf *b)
{
	static const char *const params[] = { "user", "u", "database", "d", NULL };

	proto_build_startup(b, params);
}

static void build_password(struct proto_buf *b)
{
	proto_build_password(b, "pw");
}

static void build_sasl_initial(struct proto_buf *b)
{
	proto_build_sasl_initial(b, "SCRAM-SHA-256", "n,,", 3);
}

static void build_sasl_initial_none(struct proto_buf *b)
{
	proto_build_sasl_initial(b, "M", NULL, 0);
}

static void build_sasl_response(struct proto_buf *b)
{
	proto_build_sasl_response(b, "c=biws", 6);
}

static void build_query(struct proto_buf *b)
{
	proto_build_query(b, "SELECT 1");
}

static void build_terminate(struct proto_buf *b)
{
	proto_build_terminate(b);
}

static void build_cancel_request(struct proto_buf *b)
{
	proto_build_cancel_request(b, 0x01020304, 0x05060708);
}

static void build_parse(struct proto_buf *b)
{
	proto_build_parse(b, "PGMUX_1", "SELECT 1\0\0\0", 11);
}

static void build_close(struct proto_buf *b)
{
	proto_build_close(b, 'S', "s");
}

static void build_describe(struct proto_buf *b)
{
	proto_build_describe(b, 'P', "");
}

static void build_flush(struct proto_buf *b)
{
	proto_build_flush(b);
}

static void build_sync(struct proto_buf *b)
{
	proto_build_sync(b);
}

static void build_parse_complete(struct proto_buf *b)
{
	proto_build_parse_complete(b);
}

static void build_close_complete(struct proto_buf *b)
{
	proto_build_close_complete(b);
}

static void build_two_messages(struct proto_buf *b)
{
	proto_build_parameter_status(b, "a", "b");
	proto_build_ready_for_query(b, PROTO_TX_IDLE);
}

static const struct build_case build_cases[] = {
	{ "ErrorResponse", build_error,
	  BYTES("E\0\0\0\x3a"
		"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed\0\0") },
	{ "ErrorResponse with detail", build_error_detail,
	  BYTES("E\0\0\0\x24SERROR\0VERROR\0C08P01\0Mbad\0Dwhy\0\0") },
	{ "NoticeResponse", build_notice,
	  BYTES("N\0\0\0\x22SWARNING\0VWARNING\0C01000\0Mhi\0\0") },
	{ "ParameterStatus", build_parameter_status,
	  BYTES("S\0\0\0\x19" "client_encoding\0UTF8\0") },
	{ "BackendKeyData", build_backend_key_data,
	  BYTES("K\0\0\0\x0c\x01\x02\x03\x04\xde\xad\xbe\xef") },
	{ "ReadyForQuery", build_ready_for_query, BYTES("Z\0\0\0\x05T") },
	{ "AuthenticationOk", build_auth_ok, BYTES("R\0\0\0\x08\0\0\0\0") },
	{ "AuthenticationMD5Password", build_auth_md5,
	  BYTES("R\0\0\0\x0c\0\0\0\x05\xa1\xb2\xc3\xd4") },
	{ "AuthenticationSASL", build_auth_sasl,
	  BYTES("R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0") },
	{ "AuthenticationSASLContinue", build_auth_sasl_continue,
	  BYTES("R\0\0\0\x0c\0\0\0\x0br=ab") },
	{ "NegotiateProtocolVersion", build_negotiate_version,
	  BYTES("v\0\0\0\x1b\0\x03\0\0\0\0\0\x02_pq_.a\0_pq_.bc\0") },
	{ "NegotiateProtocolVersion without options", build_negotiate_version_no_options,
	  BYTES("v\0\0\0\x0c\0\x03\0\0\0\0\0\0") },
	{ "RowDescription text", build_row_description_text,
	  BYTES("T\0\0\0\x2f\0\x02"
		"a\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0"
		"bc\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0") },
	{ "RowDescription typed", build_row_description_typed,
	  BYTES("T\0\0\0\x2e\0\x02"
		"n\0\0\0\0\0\0\0\0\0\0\x14\0\x08\xff\xff\xff\xff\0\0"
		"b\0\0\0\0\0\0\0\0\0\0\x10\0\x01\xff\xff\xff\xff\0\0") },
	{ "DataRow", build_data_row,
	  BYTES("D\0\0\0\x13\0\x03\0\0\0\x01x\xff\xff\xff\xff\0\0\0\0") },
	{ "CommandComplete", build_command_complete, BYTES("C\0\0\0\x09SHOW\0") },
	{ "EmptyQueryResponse", build_empty_query, BYTES("I\0\0\0\x04") },
	{ "StartupMessage", build_startup,
	  BYTES("\0\0\0\x1b\0\x03\0\0user\0u\0database\0d\0\0") },
	{ "PasswordMessage", build_password, BYTES("p\0\0\0\x07pw\0") },
	{ "SASLInitialResponse", build_sasl_initial,
	  BYTES("p\0\0\0\x19SCRAM-SHA-256\0\0\0\0\x03n,,") },
	{ "SASLInitialResponse without data", build_sasl_initial_none,
	  BYTES("p\0\0\0\x0aM\0\xff\xff\xff\xff") },
	{ "SASLResponse", build_sasl_response, BYTES("p\0\0\0\x0a" "c=biws") },
	{ "Query", build_query, BYTES("Q\0\0\0\x0dSELECT 1\0") },
	{ "Terminate", build_terminate, BYTES("X\0\0\0\x04") },
	{ "CancelRequest", build_cancel_request,
	  BYTES("\0\0\0\x10\x04\xd2\x16\x2e\x01\x02\x03\x04\x05\x06\x07\x08") },
	{ "Parse", build_parse, BYTES("P\0\0\0\x17PGMUX_1\0SELECT 1\0\0\0") },
	{ "Close statement", build_close, BYTES("C\0\0\0\x07Ss\0") },
	{ "Describe unnamed portal", build_describe, BYTES("D\0\0\0\x06P\0") },
	{ "Flush", build_flush, BYTES("H\0\0\0\x04") },
	{ "Sync", build_sync, BYTES("S\0\0\0\x04") },
	{ "ParseComplete", build_parse_complete, BYTES("1\0\0\0\x04") },
	{ "CloseComplete", build_close_complete, BYTES("3\0\0\0\x04") },
	{ "two messages back to back", build_two_messages,
	  BYTES("S\0\0\0\x08" "a\0b\0Z\0\0\0\x05I") },
};

static void test_build_layouts_table(void **state)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(build_cases); i++) {
		const struct build_case *bc = &build_cases[i];
		struct proto_buf b;

		proto_buf_init(&b, PROTO_BUF_DEFAULT_MAX);
		bc->build(&b);
		if (!proto_buf_ok(&b))
			fail_msg("case '%s' failed to build", bc->name);
		if (b.len != bc->len)
			fail_msg("case '%s': length %zu, want %zu", bc->name, b.len, bc->len);
		assert_memory_equal(b.data, bc->bytes, bc->len);
		proto_buf_free(&b);
	}
}

/* With a max just below each message's size, every builder fails sticky;
 * with exactly its size, it succeeds. */
static void test_build_sticky_failed_at_every_max(void **state)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(build_cases); i++) {
		const struct build_case *bc = &build_cases[i];
		struct proto_buf b;
		size_t max;

		for (max = 0; max < bc->len; max++) {
			proto_buf_init(&b, max);
			bc->build(&b);
			if (proto_buf_ok(&b))
				fail_msg("case '%s' fit in max %zu", bc->name, max);
			assert_true(b.len <= max);
			proto_buf_free(&b);
		}
		proto_buf_init(&b, bc->len);
		bc->build(&b);
		assert_true(proto_buf_ok(&b));
		assert_memory_equal(b.data, bc->bytes, bc->len);
		proto_buf_free(&b);
	}
}

static void test_build_failed_stays_failed_until_reset(void **state)
{
	struct proto_buf b;
	size_t len_after_fail, n = 0;
	uint8_t *out;

	proto_buf_init(&b, 8);
	proto_build_error(&b, "ERROR", "XX000", "too long for eight bytes", NULL);
	assert_false(proto_buf_ok(&b));
	len_after_fail = b.len;
	/* Small puts that would fit on their own are refused too. */
	proto_put_u8(&b, 1);
	proto_build_ready_for_query(&b, PROTO_TX_IDLE);
	assert_false(proto_buf_ok(&b));
	assert_int_equal(b.len, len_after_fail);
	assert_null(proto_buf_steal(&b, &n));
	assert_int_equal(n, 0);
	assert_false(proto_buf_ok(&b));

	proto_buf_free(&b);

	/* After a put that did not fit, even puts that would fit are refused,
	 * so a message can never come out with a hole in the middle. */
	proto_buf_init(&b, 16);
	proto_put_bytes(&b, "0123456789abcdefXYZ", 19);
	assert_false(proto_buf_ok(&b));
	assert_int_equal(b.len, 0);
	proto_put_u8(&b, 1);
	proto_put_u16(&b, 2);
	proto_put_u32(&b, 3);
	proto_put_cstr(&b, "ab");
	proto_put_bytes(&b, "cd", 2);
	proto_begin(&b, PROTO_BE_READY_FOR_QUERY);
	proto_end(&b);
	assert_int_equal(b.len, 0);
	assert_false(proto_buf_ok(&b));

	proto_buf_reset(&b);
	assert_true(proto_buf_ok(&b));
	assert_int_equal(b.len, 0);
	proto_build_ready_for_query(&b, PROTO_TX_IDLE);
	assert_true(proto_buf_ok(&b));
	out = proto_buf_steal(&b, &n);
	assert_non_null(out);
	assert_int_equal(n, 6);
	assert_memory_equal(out, "Z\0\0\0\x05I", 6);
	free(out);
	proto_buf_free(&b);
}

static void test_build_steal_hands_over_and_empties(void **state)
{
	struct proto_buf b;
	uint8_t *out;
	size_t n = 0;

	proto_buf_init(&b, PROTO_BUF_DEFAULT_MAX);
	assert_null(proto_buf_steal(&b, &n)); /* empty */
	proto_build_terminate(&b);
	out = proto_buf_steal(&b, &n);
	assert_non_null(out);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "X\0\0\0\x04", 5);
	assert_int_equal(b.len, 0);
	assert_null(b.data);
	assert_true(proto_buf_ok(&b));
	/* The buf is reusable after a steal. */
	proto_build_terminate(&b);
	assert_int_equal(b.len, 5);
	free(out);
	proto_buf_free(&b);
}

/* Many messages force several reallocations; lengths must survive them. */
static void test_build_grows_across_reallocations(void **state)
{
	struct proto_buf b;
	char value[300];
	size_t i, off;

	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	proto_buf_init(&b, PROTO_BUF_DEFAULT_MAX);
	for (i = 0; i < 100; i++)
		proto_build_parameter_status(&b, "k", value);
	assert_true(proto_buf_ok(&b));
	assert_int_equal(b.len, 100 * (1 + 4 + 2 + sizeof(value)));
	assert_true(b.cap >= b.len && b.cap <= b.max);
	for (i = 0, off = 0; i < 100; i++, off += 1 + 4 + 2 + sizeof(value)) {
		assert_int_equal(b.data[off], 'S');
		assert_memory_equal(b.data + off + 1, "\0\0\x01\x32", 4); /* 306 */
	}
	proto_buf_free(&b);
	assert_null(b.data);
}

/* A DataRow of one value close to max: the value pushes it over. */
static void test_build_data_row_overflow_sets_failed(void **state)
{
	struct proto_buf b;
	char *big = malloc(5000);
	const char *values[1];

	assert_non_null(big);
	memset(big, 'x', 4999);
	big[4999] = '\0';
	values[0] = big;
	proto_buf_init(&b, 4096);
	proto_build_data_row(&b, 1, values);
	assert_false(proto_buf_ok(&b));
	proto_buf_free(&b);

	proto_buf_init(&b, 8192);
	proto_build_data_row(&b, 1, values);
	assert_true(proto_buf_ok(&b));
	assert_int_equal(b.len, 1 + 4 + 2 + 4 + 4999);
	assert_memory_equal(b.data + 1, "\0\0\x13\x91", 4); /* 5009 */
	proto_buf_free(&b);
	free(big);
}

/* proto_end without proto_begin must not patch random bytes. */
static void test_build_end_without_begin_fails(void **state)
{
	struct proto_buf b;

	proto_buf_init(&b, 64);
	proto_put_u8(&b, 1);
	b.msg_start = 1; /* as if a begin had happened at the end */
	proto_end(&b);
	assert_false(proto_buf_ok(&b));
	proto_buf_free(&b);
}

static void test_build_startup_odd_params_fails(void **state)
{
	static const char *const params[] = { "user", NULL };
	static const char *const odd[] = { "user", "u", "database", NULL };
	struct proto_buf b;

	proto_buf_init(&b, 256);
	proto_build_startup(&b, params);
	assert_false(proto_buf_ok(&b)); /* "user" without a value */
	proto_buf_reset(&b);
	proto_build_startup(&b, odd);
	assert_false(proto_buf_ok(&b));
	proto_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_layouts_table),
		cmocka_unit_test(test_build_sticky_failed_at_every_max),
		cmocka_unit_test(test_build_failed_stays_failed_until_reset),
		cmocka_unit_test(test_build_steal_hands_over_and_empties),
		cmocka_unit_test(test_build_grows_across_reallocations),
		cmocka_unit_test(test_build_data_row_overflow_sets_failed),
		cmocka_unit_test(test_build_end_without_begin_fails),
		cmocka_unit_test(test_build_startup_odd_params_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
