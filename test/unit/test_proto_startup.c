/*
 * test_proto_startup.c: StartupMessage, SSLRequest, GSSENCRequest and
 * CancelRequest parsing, with a table of malformed packets covering every
 * rejection the parser can give.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto.h"
#include "proto_startup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BYTES(s) s, sizeof(s) - 1
#define AUTO_LEN UINT32_MAX

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Packet = int32 length (AUTO_LEN: the real one) + int32 code + rest. */
static size_t make_packet(uint8_t *out, size_t cap, uint32_t len_field, uint32_t code,
			  const char *rest, size_t rest_len)
{
	size_t len = 8 + rest_len;

	assert_true(len <= cap);
	put_be32(out, len_field == AUTO_LEN ? (uint32_t)len : len_field);
	put_be32(out + 4, code);
	memcpy(out + 8, rest, rest_len);
	return len;
}

struct startup_case {
	const char *name;
	uint32_t len_field;
	uint32_t code;
	const char *rest;
	size_t rest_len;
	enum proto_startup_rc rc;
};

#define V3 PROTO_VERSION_3_0

static const struct startup_case startup_cases[] = {
	{ "minimal v3", AUTO_LEN, V3, BYTES("user\0bob\0\0"), PROTO_STARTUP_OK },
	{ "protocol 3.1 is negotiated, not refused", AUTO_LEN, 0x00030001,
	  BYTES("user\0bob\0\0"), PROTO_STARTUP_OK },
	{ "protocol 3.2", AUTO_LEN, 0x00030002, BYTES("user\0bob\0\0"), PROTO_STARTUP_OK },
	{ "protocol 2.0", AUTO_LEN, 0x00020000, BYTES("user\0bob\0\0"),
	  PROTO_STARTUP_BAD_VERSION },
	{ "protocol 4.0", AUTO_LEN, 0x00040000, BYTES("user\0bob\0\0"),
	  PROTO_STARTUP_BAD_VERSION },
	{ "code 0", AUTO_LEN, 0, BYTES("user\0bob\0\0"), PROTO_STARTUP_BAD_VERSION },
	{ "unknown request code", AUTO_LEN, 80877105, BYTES(""), PROTO_STARTUP_BAD_VERSION },
	{ "length field too small", 9, V3, BYTES("user\0bob\0\0"), PROTO_STARTUP_BAD_LENGTH },
	{ "length field too big", 100, V3, BYTES("user\0bob\0\0"), PROTO_STARTUP_BAD_LENGTH },
	{ "length field 0", 0, V3, BYTES("user\0bob\0\0"), PROTO_STARTUP_BAD_LENGTH },
	{ "no user", AUTO_LEN, V3, BYTES("database\0db\0\0"), PROTO_STARTUP_NO_USER },
	{ "no params at all", AUTO_LEN, V3, BYTES("\0"), PROTO_STARTUP_NO_USER },
	{ "empty user", AUTO_LEN, V3, BYTES("user\0\0\0"), PROTO_STARTUP_NO_USER },
	{ "user as a value only", AUTO_LEN, V3, BYTES("x\0user\0\0"), PROTO_STARTUP_NO_USER },
	{ "no final terminator", AUTO_LEN, V3, BYTES("user\0bob\0"),
	  PROTO_STARTUP_NOT_TERMINATED },
	{ "value not terminated", AUTO_LEN, V3, BYTES("user\0bob"),
	  PROTO_STARTUP_NOT_TERMINATED },
	{ "name without value", AUTO_LEN, V3, BYTES("user\0"), PROTO_STARTUP_NOT_TERMINATED },
	{ "name not terminated", AUTO_LEN, V3, BYTES("user"), PROTO_STARTUP_NOT_TERMINATED },
	{ "nothing after version", AUTO_LEN, V3, BYTES(""), PROTO_STARTUP_NOT_TERMINATED },
	{ "dangling name after pairs", AUTO_LEN, V3, BYTES("user\0bob\0x\0"),
	  PROTO_STARTUP_NOT_TERMINATED },
	{ "high bytes, no NUL", AUTO_LEN, V3, BYTES("\xff\xfe\xfd"),
	  PROTO_STARTUP_NOT_TERMINATED },
	{ "duplicate user", AUTO_LEN, V3, BYTES("user\0a\0user\0b\0\0"),
	  PROTO_STARTUP_BAD_PARAM },
	{ "duplicate database", AUTO_LEN, V3, BYTES("user\0a\0database\0x\0database\0y\0\0"),
	  PROTO_STARTUP_BAD_PARAM },
	{ "empty name before the end", AUTO_LEN, V3, BYTES("\0user\0bob\0\0"),
	  PROTO_STARTUP_BAD_PARAM },
	{ "garbage after terminator", AUTO_LEN, V3, BYTES("user\0bob\0\0\0"),
	  PROTO_STARTUP_BAD_PARAM },
	{ "SSLRequest", AUTO_LEN, PROTO_SSL_REQUEST_CODE, BYTES(""), PROTO_STARTUP_OK },
	{ "SSLRequest with extra bytes", AUTO_LEN, PROTO_SSL_REQUEST_CODE, BYTES("\0\0\0\0"),
	  PROTO_STARTUP_BAD_LENGTH },
	{ "GSSENCRequest", AUTO_LEN, PROTO_GSSENC_REQUEST_CODE, BYTES(""), PROTO_STARTUP_OK },
	{ "GSSENCRequest with extra byte", AUTO_LEN, PROTO_GSSENC_REQUEST_CODE, BYTES("\0"),
	  PROTO_STARTUP_BAD_LENGTH },
	{ "CancelRequest", AUTO_LEN, PROTO_CANCEL_REQUEST_CODE,
	  BYTES("\0\0\0\x2a\xca\xfe\xba\xbe"), PROTO_STARTUP_OK },
	{ "CancelRequest short", AUTO_LEN, PROTO_CANCEL_REQUEST_CODE, BYTES("\0\0\0\x2a"),
	  PROTO_STARTUP_BAD_CANCEL },
	{ "CancelRequest empty", AUTO_LEN, PROTO_CANCEL_REQUEST_CODE, BYTES(""),
	  PROTO_STARTUP_BAD_CANCEL },
	{ "CancelRequest long", AUTO_LEN, PROTO_CANCEL_REQUEST_CODE,
	  BYTES("\0\0\0\x2a\xca\xfe\xba\xbe\0\0\0\0"), PROTO_STARTUP_BAD_CANCEL },
};

static void test_startup_table(void **state)
{
	static uint8_t pkt[256];
	size_t i;

	for (i = 0; i < ARRAY_LEN(startup_cases); i++) {
		const struct startup_case *sc = &startup_cases[i];
		struct proto_startup st;
		enum proto_startup_rc rc;
		size_t len;

		len = make_packet(pkt, sizeof(pkt), sc->len_field, sc->code, sc->rest,
				  sc->rest_len);
		rc = proto_startup_parse(pkt, len, &st);
		if (rc != sc->rc)
			fail_msg("case '%s': got '%s', want '%s'", sc->name,
				 proto_startup_rc_str(rc), proto_startup_rc_str(sc->rc));
		if (rc == PROTO_STARTUP_OK)
			assert_int_equal(st.version, sc->code);
	}
}

/* Packets shorter than the 8-byte header, including none at all. */
static void test_startup_rejects_length_below_8(void **state)
{
	uint8_t pkt[8];
	struct proto_startup st;
	size_t len;

	for (len = 0; len < 8; len++) {
		memset(pkt, 0, sizeof(pkt));
		put_be32(pkt, (uint32_t)len);
		assert_int_equal(proto_startup_parse(pkt, len, &st), PROTO_STARTUP_BAD_LENGTH);
	}
	/* The length field may say 7 while more bytes are present. */
	put_be32(pkt, 7);
	put_be32(pkt + 4, PROTO_SSL_REQUEST_CODE);
	assert_int_equal(proto_startup_parse(pkt, 8, &st), PROTO_STARTUP_BAD_LENGTH);
}

static void test_startup_rejects_length_over_cap(void **state)
{
	size_t len = PROTO_STARTUP_MAX + 1;
	uint8_t *pkt = calloc(1, len);
	struct proto_startup st;

	assert_non_null(pkt);
	/* A well-formed packet, just one byte too long: user=aaa...a. */
	put_be32(pkt, (uint32_t)len);
	put_be32(pkt + 4, PROTO_VERSION_3_0);
	memcpy(pkt + 8, "user", 5);
	memset(pkt + 13, 'a', len - 13 - 2);
	assert_int_equal(proto_startup_parse(pkt, len, &st), PROTO_STARTUP_BAD_LENGTH);

	/* The same at exactly the cap is fine. */
	len = PROTO_STARTUP_MAX;
	put_be32(pkt, (uint32_t)len);
	pkt[len - 2] = '\0';
	pkt[len - 1] = '\0';
	assert_int_equal(proto_startup_parse(pkt, len, &st), PROTO_STARTUP_OK);
	assert_int_equal(strlen(st.user), len - 13 - 2);
	free(pkt);
}

/* Builds a StartupMessage with user plus `extra` more parameters. */
static size_t make_many_params(uint8_t *pkt, size_t cap, size_t extra)
{
	size_t off = 8, i;

	memcpy(pkt + off, "user\0u\0", 7);
	off += 7;
	for (i = 0; i < extra; i++) {
		int n = snprintf((char *)pkt + off, cap - off, "p%zu", i);

		assert_true(n > 0 && (size_t)n + 4 < cap - off);
		off += (size_t)n + 1;
		memcpy(pkt + off, "v", 2);
		off += 2;
	}
	pkt[off++] = '\0';
	put_be32(pkt, (uint32_t)off);
	put_be32(pkt + 4, PROTO_VERSION_3_0);
	return off;
}

static void test_startup_too_many_params(void **state)
{
	uint8_t pkt[2048];
	struct proto_startup st;
	size_t len;

	len = make_many_params(pkt, sizeof(pkt), PROTO_STARTUP_MAX_PARAMS - 1);
	assert_int_equal(proto_startup_parse(pkt, len, &st), PROTO_STARTUP_OK);
	assert_int_equal(st.nparams, PROTO_STARTUP_MAX_PARAMS);
	assert_string_equal(st.params[PROTO_STARTUP_MAX_PARAMS - 1].name, "p62");

	len = make_many_params(pkt, sizeof(pkt), PROTO_STARTUP_MAX_PARAMS);
	assert_int_equal(proto_startup_parse(pkt, len, &st), PROTO_STARTUP_TOO_MANY_PARAMS);
	len = make_many_params(pkt, sizeof(pkt), 200);
	assert_int_equal(proto_startup_parse(pkt, len, &st), PROTO_STARTUP_TOO_MANY_PARAMS);
}

static void test_startup_parses_well_known_params(void **state)
{
	static const char rest[] = "user\0alice\0database\0shop\0options\0-c x=1\0"
				   "application_name\0psql\0DateStyle\0ISO\0";
	uint8_t pkt[256];
	struct proto_startup st;
	size_t len = make_packet(pkt, sizeof(pkt), AUTO_LEN, PROTO_VERSION_3_0, rest,
				 sizeof(rest)); /* sizeof includes the final NUL */

	assert_int_equal(proto_startup_parse(pkt, len, &st), PROTO_STARTUP_OK);
	assert_int_equal(st.kind, PROTO_STARTUP_V3);
	assert_int_equal(st.version, PROTO_VERSION_3_0);
	assert_string_equal(st.user, "alice");
	assert_string_equal(st.database, "shop");
	assert_string_equal(st.options, "-c x=1");
	assert_string_equal(st.application_name, "psql");
	assert_int_equal(st.nparams, 5);
	assert_string_equal(st.params[4].name, "DateStyle");
	assert_string_equal(st.params[4].value, "ISO");
	/* Strings point into the packet rather than being copied. */
	assert_true((const uint8_t *)st.user > pkt && (const uint8_t *)st.user < pkt + len);
}

static void test_startup_database_defaults_to_user(void **state)
{
	static const struct {
		const char *rest;
		size_t len;
	} cases[] = {
		{ BYTES("user\0bob\0\0") },
		{ BYTES("user\0bob\0database\0\0\0") },
		{ BYTES("database\0\0user\0bob\0\0") },
	};
	uint8_t pkt[64];
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct proto_startup st;
		size_t len = make_packet(pkt, sizeof(pkt), AUTO_LEN, PROTO_VERSION_3_0,
					 cases[i].rest, cases[i].len);

		assert_int_equal(proto_startup_parse(pkt, len, &st), PROTO_STARTUP_OK);
		assert_string_equal(st.database, "bob");
		assert_ptr_equal(st.database, st.user);
		assert_null(st.options);
		assert_null(st.application_name);
	}
}

static void test_startup_request_kinds(void **state)
{
	uint8_t pkt[32];
	struct proto_startup st;
	size_t len;

	len = make_packet(pkt, sizeof(pkt), AUTO_LEN, PROTO_SSL_REQUEST_CODE, "", 0);
	assert_int_equal(proto_startup_parse(pkt, len, &st), PROTO_STARTUP_OK);
	assert_int_equal(st.kind, PROTO_STARTUP_SSL);
	assert_null(st.user);

	len = make_packet(pkt, sizeof(pkt), AUTO_LEN, PROTO_GSSENC_REQUEST_CODE, "", 0);
	assert_int_equal(proto_startup_parse(pkt, len, &st), PROTO_STARTUP_OK);
	assert_int_equal(st.kind, PROTO_STARTUP_GSSENC);

	len = make_packet(pkt, sizeof(pkt), AUTO_LEN, PROTO_CANCEL_REQUEST_CODE,
			  BYTES("\x00\x00\x30\x39\xde\xad\xbe\xef"));
	assert_int_equal(proto_startup_parse(pkt, len, &st), PROTO_STARTUP_OK);
	assert_int_equal(st.kind, PROTO_STARTUP_CANCEL);
	assert_int_equal(st.version, PROTO_CANCEL_REQUEST_CODE);
	assert_int_equal(st.cancel_pid, 12345);
	assert_int_equal(st.cancel_key, 0xdeadbeefu);
}

static void test_startup_rc_str_names_every_code(void **state)
{
	enum proto_startup_rc rc;

	for (rc = PROTO_STARTUP_OK; rc <= PROTO_STARTUP_BAD_PARAM; rc++)
		assert_string_not_equal(proto_startup_rc_str(rc), "unknown");
	assert_string_equal(proto_startup_rc_str((enum proto_startup_rc)42), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_startup_table),
		cmocka_unit_test(test_startup_rejects_length_below_8),
		cmocka_unit_test(test_startup_rejects_length_over_cap),
		cmocka_unit_test(test_startup_too_many_params),
		cmocka_unit_test(test_startup_parses_well_known_params),
		cmocka_unit_test(test_startup_database_defaults_to_user),
		cmocka_unit_test(test_startup_request_kinds),
		cmocka_unit_test(test_startup_rc_str_names_every_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
