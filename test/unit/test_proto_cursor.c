/*
 * test_proto_cursor.c: the bounded reader. Checks big-endian decoding, and
 * that every read fails without moving the cursor when the data runs short.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto_cursor.h"

#include <string.h>

static void test_cursor_reads_big_endian_integers(void **state)
{
	static const uint8_t data[] = { 0x7f, 0x12, 0x34, 0xff, 0xfe, 0xde, 0xad,
					0xbe, 0xef, 0xff, 0xff, 0xff, 0xfd };
	struct proto_cursor c;
	uint8_t u8;
	uint16_t u16;
	int16_t i16;
	uint32_t u32;
	int32_t i32;

	proto_cursor_init(&c, data, sizeof(data));
	assert_true(proto_read_u8(&c, &u8));
	assert_int_equal(u8, 0x7f);
	assert_true(proto_read_u16(&c, &u16));
	assert_int_equal(u16, 0x1234);
	assert_true(proto_read_i16(&c, &i16));
	assert_int_equal(i16, -2);
	assert_true(proto_read_u32(&c, &u32));
	assert_int_equal(u32, 0xdeadbeefu);
	assert_true(proto_read_i32(&c, &i32));
	assert_int_equal(i32, -3);
	assert_int_equal(proto_cursor_left(&c), 0);
	assert_false(proto_read_u8(&c, &u8));
}

enum reader { READ_U8, READ_U16, READ_I16, READ_U32, READ_I32, READ_CSTR, READ_BYTES3 };

static bool run_reader(enum reader r, struct proto_cursor *c)
{
	uint8_t u8;
	uint16_t u16;
	int16_t i16;
	uint32_t u32;
	int32_t i32;
	const char *s;
	size_t n;
	const uint8_t *p;

	switch (r) {
	case READ_U8:
		return proto_read_u8(c, &u8);
	case READ_U16:
		return proto_read_u16(c, &u16);
	case READ_I16:
		return proto_read_i16(c, &i16);
	case READ_U32:
		return proto_read_u32(c, &u32);
	case READ_I32:
		return proto_read_i32(c, &i32);
	case READ_CSTR:
		return proto_read_cstr(c, &s, &n);
	case READ_BYTES3:
		return proto_read_bytes(c, 3, &p);
	}
	return false;
}

/* Every reader, with every amount of data short of what it needs. */
static void test_cursor_short_reads_fail_without_advancing(void **state)
{
	static const struct {
		enum reader r;
		size_t need;
	} cases[] = {
		{ READ_U8, 1 }, { READ_U16, 2 }, { READ_I16, 2 }, { READ_U32, 4 },
		{ READ_I32, 4 }, { READ_BYTES3, 3 },
	};
	static const uint8_t data[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	size_t i, skip, have;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (have = 0; have < cases[i].need; have++) {
			/* Start mid-buffer too, so pos != 0 is covered. */
			for (skip = 0; skip <= 2; skip++) {
				struct proto_cursor c;
				const uint8_t *p;

				proto_cursor_init(&c, data, skip + have);
				assert_true(proto_read_bytes(&c, skip, &p));
				assert_false(run_reader(cases[i].r, &c));
				assert_int_equal(c.pos, skip);
				assert_int_equal(proto_cursor_left(&c), have);
			}
		}
		{
			struct proto_cursor c;

			proto_cursor_init(&c, data, cases[i].need);
			assert_true(run_reader(cases[i].r, &c));
			assert_int_equal(proto_cursor_left(&c), 0);
		}
	}
}

static void test_cursor_cstr_excludes_nul_and_advances_past_it(void **state)
{
	static const uint8_t data[] = { 'a', 'b', 'c', 0, 0, 'x', 0 };
	struct proto_cursor c;
	const char *s;
	size_t n;

	proto_cursor_init(&c, data, sizeof(data));
	assert_true(proto_read_cstr(&c, &s, &n));
	assert_int_equal(n, 3);
	assert_string_equal(s, "abc");
	assert_ptr_equal(s, (const char *)data);
	assert_int_equal(c.pos, 4);
	assert_true(proto_read_cstr(&c, &s, &n)); /* empty string */
	assert_int_equal(n, 0);
	assert_string_equal(s, "");
	assert_true(proto_read_cstr(&c, &s, &n)); /* NUL as the very last byte */
	assert_string_equal(s, "x");
	assert_int_equal(proto_cursor_left(&c), 0);
	assert_false(proto_read_cstr(&c, &s, &n));
}

/* Raw byte strings with no NUL before the end. */
static void test_cursor_cstr_without_nul_fails(void **state)
{
	static const struct {
		const char *bytes;
		size_t len;
	} cases[] = {
		{ "", 0 },
		{ "a", 1 },
		{ "abc", 3 },
		{ "abc\0", 3 }, /* the NUL lies just outside the range */
		{ "\xff\xfe\x01", 3 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct proto_cursor c;
		const char *s = NULL;
		size_t n = 99;

		proto_cursor_init(&c, cases[i].bytes, cases[i].len);
		assert_false(proto_read_cstr(&c, &s, &n));
		assert_int_equal(c.pos, 0);
		assert_null(s);
		assert_int_equal(n, 99);
	}
}

static void test_cursor_bytes_respects_bounds(void **state)
{
	static const uint8_t data[] = { 9, 8, 7, 6 };
	struct proto_cursor c;
	const uint8_t *p = NULL;

	proto_cursor_init(&c, data, sizeof(data));
	assert_true(proto_read_bytes(&c, 0, &p));
	assert_ptr_equal(p, data);
	assert_false(proto_read_bytes(&c, 5, &p));
	/* A length near SIZE_MAX must not wrap the bounds check. */
	assert_false(proto_read_bytes(&c, SIZE_MAX, &p));
	assert_false(proto_read_bytes(&c, SIZE_MAX - 1, &p));
	assert_int_equal(c.pos, 0);
	assert_true(proto_read_bytes(&c, 1, &p));
	/* Also past the start, where pos + n itself would wrap to a small value. */
	assert_false(proto_read_bytes(&c, SIZE_MAX, &p));
	assert_int_equal(c.pos, 1);
	assert_true(proto_read_bytes(&c, 3, &p));
	assert_ptr_equal(p, data + 1);
	assert_int_equal(p[2], 6);
	assert_int_equal(proto_cursor_left(&c), 0);
	assert_false(proto_read_bytes(&c, 1, &p));
}

static void test_cursor_empty_and_null_ranges_read_nothing(void **state)
{
	struct proto_cursor c;
	uint32_t v;
	const uint8_t *p;

	proto_cursor_init(&c, NULL, 10);
	assert_int_equal(proto_cursor_left(&c), 0);
	assert_false(proto_read_u32(&c, &v));
	assert_true(proto_read_bytes(&c, 0, &p));
	proto_cursor_init(&c, "abcd", 0);
	assert_false(proto_read_u8(&c, (uint8_t *)&v));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cursor_reads_big_endian_integers),
		cmocka_unit_test(test_cursor_short_reads_fail_without_advancing),
		cmocka_unit_test(test_cursor_cstr_excludes_nul_and_advances_past_it),
		cmocka_unit_test(test_cursor_cstr_without_nul_fails),
		cmocka_unit_test(test_cursor_bytes_respects_bounds),
		cmocka_unit_test(test_cursor_empty_and_null_ranges_read_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
