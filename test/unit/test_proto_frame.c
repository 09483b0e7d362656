/*
 * test_proto_frame.c: header validation (type whitelist, length caps per
 * type and phase), startup framing, and the incremental stream walker fed
 * a multi-message stream split at every possible point.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto.h"
#include "proto_frame.h"

#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define FE PROTO_DIR_FRONTEND
#define BE PROTO_DIR_BACKEND

/* Header tests. */

struct header_case {
	const char *name;
	uint8_t bytes[5];
	size_t avail;
	enum proto_dir dir;
	bool authed;
	enum proto_frame_rc rc;
};

#define HDR(t, a, b, c, d) { (uint8_t)(t), a, b, c, d }

static const struct header_case header_cases[] = {
	{ "query ok", HDR('Q', 0, 0, 0, 9), 5, FE, true, PROTO_FRAME_OK },
	{ "query len 4 (empty body) ok", HDR('Q', 0, 0, 0, 4), 5, FE, true, PROTO_FRAME_OK },
	{ "len 3", HDR('Q', 0, 0, 0, 3), 5, FE, true, PROTO_FRAME_BAD_LENGTH },
	{ "len 0", HDR('Q', 0, 0, 0, 0), 5, FE, true, PROTO_FRAME_BAD_LENGTH },
	{ "backend len 2", HDR('D', 0, 0, 0, 2), 5, BE, true, PROTO_FRAME_BAD_LENGTH },
	{ "no bytes", HDR(0, 0, 0, 0, 0), 0, FE, true, PROTO_FRAME_NEED_MORE },
	{ "type only", HDR('Q', 0, 0, 0, 9), 1, FE, true, PROTO_FRAME_NEED_MORE },
	{ "4 of 5 bytes", HDR('Q', 0, 0, 0, 9), 4, FE, true, PROTO_FRAME_NEED_MORE },
	{ "4 bytes of a bad type", HDR('x', 0, 0, 0, 9), 4, FE, true, PROTO_FRAME_NEED_MORE },
	{ "backend type from client", HDR('Z', 0, 0, 0, 5), 5, FE, true, PROTO_FRAME_BAD_TYPE },
	{ "auth from client", HDR('R', 0, 0, 0, 8), 5, FE, true, PROTO_FRAME_BAD_TYPE },
	{ "password from server", HDR('p', 0, 0, 0, 8), 5, BE, true, PROTO_FRAME_BAD_TYPE },
	{ "query from server", HDR('Q', 0, 0, 0, 8), 5, BE, true, PROTO_FRAME_BAD_TYPE },
	{ "NUL type", HDR(0, 0, 0, 0, 8), 5, FE, true, PROTO_FRAME_BAD_TYPE },
	{ "TLS record", HDR(0x16, 3, 1, 0, 0xc8), 5, FE, false, PROTO_FRAME_BAD_TYPE },
	{ "HTTP GET", HDR('G', 'E', 'T', ' ', '/'), 5, FE, false, PROTO_FRAME_BAD_TYPE },
	{ "high byte", HDR(0xff, 0, 0, 0, 8), 5, BE, true, PROTO_FRAME_BAD_TYPE },
	{ "type checked before length", HDR('z', 0, 0, 0, 0), 5, FE, true,
	  PROTO_FRAME_BAD_TYPE },
	{ "type checked before cap", HDR('z', 0x7f, 0, 0, 0), 5, BE, false,
	  PROTO_FRAME_BAD_TYPE },
	{ "sync len 4", HDR('S', 0, 0, 0, 4), 5, FE, false, PROTO_FRAME_OK },
	{ "sync len 5", HDR('S', 0, 0, 0, 5), 5, FE, true, PROTO_FRAME_TOO_LARGE },
	{ "sync len 3", HDR('S', 0, 0, 0, 3), 5, FE, true, PROTO_FRAME_BAD_LENGTH },
	{ "flush len 4", HDR('H', 0, 0, 0, 4), 5, FE, true, PROTO_FRAME_OK },
	{ "flush len 8", HDR('H', 0, 0, 0, 8), 5, FE, true, PROTO_FRAME_TOO_LARGE },
	{ "terminate len 4", HDR('X', 0, 0, 0, 4), 5, FE, false, PROTO_FRAME_OK },
	{ "terminate len 1000", HDR('X', 0, 0, 3, 0xe8), 5, FE, true, PROTO_FRAME_TOO_LARGE },
	{ "copydone len 4", HDR('c', 0, 0, 0, 4), 5, FE, true, PROTO_FRAME_OK },
	{ "copydone len 5", HDR('c', 0, 0, 0, 5), 5, FE, true, PROTO_FRAME_TOO_LARGE },
	{ "copydone len 0", HDR('c', 0, 0, 0, 0), 5, FE, true, PROTO_FRAME_BAD_LENGTH },
	{ "backend ParameterStatus is not small", HDR('S', 0, 0, 0, 100), 5, BE, true,
	  PROTO_FRAME_OK },
	{ "backend CopyDone is not capped", HDR('c', 0, 0, 0, 8), 5, BE, true,
	  PROTO_FRAME_OK },
	{ "backend CopyOut is not Flush", HDR('H', 0, 0, 0, 7), 5, BE, true, PROTO_FRAME_OK },
	{ "preauth at cap", HDR('p', 0, 0, 0x20, 0x00), 5, FE, false, PROTO_FRAME_OK },
	{ "preauth over cap", HDR('p', 0, 0, 0x20, 0x01), 5, FE, false,
	  PROTO_FRAME_TOO_LARGE },
	{ "preauth backend over cap", HDR('R', 0, 0, 0x20, 0x01), 5, BE, false,
	  PROTO_FRAME_TOO_LARGE },
	{ "same size after auth", HDR('p', 0, 0, 0x20, 0x01), 5, FE, true, PROTO_FRAME_OK },
	{ "large at cap", HDR('D', 0x3f, 0xff, 0xff, 0xff), 5, BE, true, PROTO_FRAME_OK },
	{ "large over cap", HDR('D', 0x40, 0, 0, 0), 5, BE, true, PROTO_FRAME_TOO_LARGE },
	{ "len 0xffffffff", HDR('d', 0xff, 0xff, 0xff, 0xff), 5, FE, true,
	  PROTO_FRAME_TOO_LARGE },
	{ "negative-looking len", HDR('Q', 0x80, 0, 0, 4), 5, FE, true, PROTO_FRAME_TOO_LARGE },
};

static void test_frame_header_table(void **state)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(header_cases); i++) {
		const struct header_case *hc = &header_cases[i];
		struct proto_frame f;
		enum proto_frame_rc rc;

		memset(&f, 0xaa, sizeof(f));
		rc = proto_frame_header(hc->bytes, hc->avail, hc->dir, hc->authed, &f);
		if (rc != hc->rc)
			fail_msg("case '%s': got %s, want %s", hc->name, proto_frame_rc_str(rc),
				 proto_frame_rc_str(hc->rc));
		if (rc == PROTO_FRAME_OK) {
			uint32_t len = (uint32_t)hc->bytes[1] << 24 | (uint32_t)hc->bytes[2] << 16 |
				       (uint32_t)hc->bytes[3] << 8 | hc->bytes[4];

			assert_int_equal(f.type, hc->bytes[0]);
			assert_int_equal(f.len, len);
			assert_int_equal(f.total, (size_t)len + 1);
		}
	}
}

static void test_frame_rejects_len_below_4(void **state)
{
	uint8_t hdr[5] = { 'Q', 0, 0, 0, 0 };
	struct proto_frame f;
	uint8_t len;

	for (len = 0; len < 4; len++) {
		hdr[4] = len;
		assert_int_equal(proto_frame_header(hdr, 5, FE, true, &f), PROTO_FRAME_BAD_LENGTH);
		hdr[0] = 'T';
		assert_int_equal(proto_frame_header(hdr, 5, BE, false, &f),
				 PROTO_FRAME_BAD_LENGTH);
		hdr[0] = 'Q';
	}
	hdr[4] = 4;
	assert_int_equal(proto_frame_header(hdr, 5, FE, true, &f), PROTO_FRAME_OK);
}

/*
 * The whitelist and the type names must agree: over all 256 bytes, a type
 * is accepted in a direction exactly when it has a name in that direction.
 */
static void test_frame_type_whitelist_matches_names(void **state)
{
	static const char fe_types[] = "BCdcfDEHFPpQSX";
	static const char be_types[] = "RK23CdcGHWDIEVvnNAtS1sZT";
	unsigned t;
	size_t nfe = 0, nbe = 0;

	for (t = 0; t < 256; t++) {
		uint8_t hdr[5] = { (uint8_t)t, 0, 0, 0, 4 };
		struct proto_frame f;
		bool fe_ok = proto_frame_header(hdr, 5, FE, true, &f) == PROTO_FRAME_OK;
		bool be_ok = proto_frame_header(hdr, 5, BE, true, &f) == PROTO_FRAME_OK;
		bool fe_listed = t != 0 && strchr(fe_types, (int)t) != NULL;
		bool be_listed = t != 0 && strchr(be_types, (int)t) != NULL;

		assert_int_equal(fe_ok, fe_listed);
		assert_int_equal(be_ok, be_listed);
		assert_int_equal(fe_ok, strcmp(proto_fe_type_str((uint8_t)t), "unknown") != 0);
		assert_int_equal(be_ok, strcmp(proto_be_type_str((uint8_t)t), "unknown") != 0);
		nfe += fe_ok;
		nbe += be_ok;
	}
	assert_int_equal(nfe, strlen(fe_types));
	assert_int_equal(nbe, strlen(be_types));
	assert_string_equal(proto_fe_type_str(PROTO_FE_CLOSE), "Close");
	assert_string_equal(proto_be_type_str(PROTO_BE_COMMAND_COMPLETE), "CommandComplete");
}

static void test_frame_rc_str_names_every_code(void **state)
{
	enum proto_frame_rc rc;

	for (rc = PROTO_FRAME_OK; rc <= PROTO_FRAME_BAD_TYPE; rc++)
		assert_string_not_equal(proto_frame_rc_str(rc), "unknown");
	assert_string_equal(proto_frame_rc_str((enum proto_frame_rc)99), "unknown");
}

/* Startup framing. */

struct startup_case {
	const char *name;
	uint8_t len[4];
	size_t avail;
	enum proto_frame_rc rc;
	size_t total; /* expected *total, 0 when it must stay untouched */
};

static const struct startup_case startup_cases[] = {
	{ "nothing", { 0, 0, 0, 8 }, 0, PROTO_FRAME_NEED_MORE, 0 },
	{ "3 bytes", { 0, 0, 0, 8 }, 3, PROTO_FRAME_NEED_MORE, 0 },
	{ "len 0", { 0, 0, 0, 0 }, 4, PROTO_FRAME_BAD_LENGTH, 0 },
	{ "len 7", { 0, 0, 0, 7 }, 8, PROTO_FRAME_BAD_LENGTH, 0 },
	{ "len 8 complete", { 0, 0, 0, 8 }, 8, PROTO_FRAME_OK, 8 },
	{ "len 8 partial", { 0, 0, 0, 8 }, 4, PROTO_FRAME_NEED_MORE, 8 },
	{ "len 8 with more after", { 0, 0, 0, 8 }, 100, PROTO_FRAME_OK, 8 },
	{ "len 10000 complete", { 0, 0, 0x27, 0x10 }, 10000, PROTO_FRAME_OK, 10000 },
	{ "len 10000 partial", { 0, 0, 0x27, 0x10 }, 9999, PROTO_FRAME_NEED_MORE, 10000 },
	{ "len 10001", { 0, 0, 0x27, 0x11 }, 4, PROTO_FRAME_TOO_LARGE, 0 },
	{ "len 2^31", { 0x80, 0, 0, 0 }, 4, PROTO_FRAME_TOO_LARGE, 0 },
	{ "len 0xffffffff", { 0xff, 0xff, 0xff, 0xff }, 4, PROTO_FRAME_TOO_LARGE, 0 },
	{ "typed message where startup expected", { 'Q', 0, 0, 0 }, 5, PROTO_FRAME_TOO_LARGE,
	  0 },
};

static void test_frame_startup_table(void **state)
{
	static uint8_t buf[PROTO_STARTUP_MAX + 100];
	size_t i;

	for (i = 0; i < ARRAY_LEN(startup_cases); i++) {
		const struct startup_case *sc = &startup_cases[i];
		size_t total = 0;
		enum proto_frame_rc rc;

		memset(buf, 0, sizeof(buf));
		memcpy(buf, sc->len, 4);
		rc = proto_frame_startup(buf, sc->avail, &total);
		if (rc != sc->rc)
			fail_msg("case '%s': got %s, want %s", sc->name, proto_frame_rc_str(rc),
				 proto_frame_rc_str(sc->rc));
		assert_int_equal(total, sc->total);
	}
}

/* Stream walker. */

struct exp_msg {
	uint8_t type;
	uint32_t body_len;
};

struct wire {
	uint8_t *bytes;
	size_t len;
	const struct exp_msg *msgs;
	size_t nmsgs;
};

/* Body bytes follow a pattern unique to the message, so a mix-up shows. */
static uint8_t body_byte(size_t msg, size_t i)
{
	return (uint8_t)(msg * 37 + i * 7 + 1);
}

static void wire_build(struct wire *w, const struct exp_msg *msgs, size_t n)
{
	size_t i, j, off = 0;

	w->len = 0;
	for (i = 0; i < n; i++)
		w->len += 5 + msgs[i].body_len;
	w->bytes = malloc(w->len);
	assert_non_null(w->bytes);
	for (i = 0; i < n; i++) {
		uint32_t len = msgs[i].body_len + 4;

		w->bytes[off++] = msgs[i].type;
		w->bytes[off++] = (uint8_t)(len >> 24);
		w->bytes[off++] = (uint8_t)(len >> 16);
		w->bytes[off++] = (uint8_t)(len >> 8);
		w->bytes[off++] = (uint8_t)len;
		for (j = 0; j < msgs[i].body_len; j++)
			w->bytes[off++] = body_byte(i, j);
	}
	w->msgs = msgs;
	w->nmsgs = n;
}

/*
 * Emulates the forwarding path: bytes arrive in chunks, what the walker
 * leaves (buf[pos..end)) is kept in front of the next chunk. In
 * wait_whole mode the reader stops at any message not wholly present, as
 * the pooler does for messages it must parse.
 */
struct feeder {
	const struct wire *w;
	struct proto_stream s;
	bool wait_whole;
	uint8_t *work;
	size_t keep;
	size_t passed;
	size_t nseen;
	size_t nwhole;
	enum proto_frame_rc err;
};

static void feeder_init(struct feeder *f, const struct wire *w, enum proto_dir dir, bool authed,
			bool wait_whole)
{
	memset(f, 0, sizeof(*f));
	f->w = w;
	f->wait_whole = wait_whole;
	proto_stream_init(&f->s, dir, authed);
	f->work = malloc(w->len + 1);
	assert_non_null(f->work);
}

static void feeder_saw(struct feeder *f, const struct proto_msg *m)
{
	const struct exp_msg *e;
	size_t i;

	assert_true(f->nseen < f->w->nmsgs);
	e = &f->w->msgs[f->nseen];
	assert_int_equal(m->type, e->type);
	assert_int_equal(m->len, e->body_len + 4);
	assert_int_equal(m->total, (size_t)e->body_len + 5);
	assert_int_equal(m->body_len, e->body_len);
	if (m->whole) {
		assert_non_null(m->body);
		for (i = 0; i < m->body_len; i++) {
			if (m->body[i] != body_byte(f->nseen, i))
				fail_msg("message %zu body byte %zu differs", f->nseen, i);
		}
		f->nwhole++;
	} else {
		assert_null(m->body);
	}
	f->nseen++;
}

static void feed(struct feeder *f, const uint8_t *chunk, size_t n)
{
	size_t pos = 0, end;

	if (f->err != PROTO_FRAME_OK)
		return;
	memcpy(f->work + f->keep, chunk, n);
	end = f->keep + n;
	for (;;) {
		struct proto_msg m;
		enum proto_frame_rc rc = proto_stream_next(&f->s, f->work, end, &pos, &m);

		assert_true(pos <= end);
		if (rc == PROTO_FRAME_NEED_MORE)
			break;
		if (rc != PROTO_FRAME_OK) {
			f->err = rc;
			return;
		}
		if (f->wait_whole && !m.whole)
			break;
		feeder_saw(f, &m);
		proto_stream_consume(&f->s, end, &pos, &m);
	}
	f->passed += pos;
	memmove(f->work, f->work + pos, end - pos);
	f->keep = end - pos;
	/* Forwarding never holds more than a partial header back. */
	if (!f->wait_whole)
		assert_true(f->keep < PROTO_HEADER_SIZE);
}

static void feeder_check_done(struct feeder *f)
{
	assert_int_equal(f->err, PROTO_FRAME_OK);
	assert_int_equal(f->nseen, f->w->nmsgs);
	assert_int_equal(f->keep, 0);
	assert_int_equal(f->passed, f->w->len);
	assert_int_equal(f->s.body_left, 0);
	if (f->wait_whole)
		assert_int_equal(f->nwhole, f->w->nmsgs);
	free(f->work);
	f->work = NULL;
}

/* A login-and-query exchange from a server, with a DataRow bigger than the
 * pre-auth cap and messages with empty bodies. */
static const struct exp_msg backend_msgs[] = {
	{ PROTO_BE_AUTH, 4 },
	{ PROTO_BE_PARAMETER_STATUS, 21 },
	{ PROTO_BE_BACKEND_KEY_DATA, 8 },
	{ PROTO_BE_READY_FOR_QUERY, 1 },
	{ PROTO_BE_ROW_DESCRIPTION, 29 },
	{ PROTO_BE_DATA_ROW, 10000 },
	{ PROTO_BE_DATA_ROW, 3 },
	{ PROTO_BE_NO_DATA, 0 },
	{ PROTO_BE_COMMAND_COMPLETE, 9 },
	{ PROTO_BE_READY_FOR_QUERY, 1 },
};

/* An extended-protocol round from a client, with a large Parse. */
static const struct exp_msg frontend_msgs[] = {
	{ PROTO_FE_PARSE, 9000 },
	{ PROTO_FE_BIND, 14 },
	{ PROTO_FE_DESCRIBE, 2 },
	{ PROTO_FE_EXECUTE, 5 },
	{ PROTO_FE_SYNC, 0 },
	{ PROTO_FE_QUERY, 9 },
	{ PROTO_FE_FLUSH, 0 },
	{ PROTO_FE_TERMINATE, 0 },
};

static void run_two_chunks(const struct wire *w, enum proto_dir dir, bool wait_whole)
{
	size_t split;

	for (split = 0; split <= w->len; split++) {
		struct feeder f;

		feeder_init(&f, w, dir, true, wait_whole);
		feed(&f, w->bytes, split);
		feed(&f, w->bytes + split, w->len - split);
		feeder_check_done(&f);
	}
}

static void run_byte_at_a_time(const struct wire *w, enum proto_dir dir, bool wait_whole)
{
	struct feeder f;
	size_t i;

	feeder_init(&f, w, dir, true, wait_whole);
	for (i = 0; i < w->len; i++)
		feed(&f, w->bytes + i, 1);
	feeder_check_done(&f);
}

static void run_chunk_sizes(const struct wire *w, enum proto_dir dir, bool wait_whole)
{
	static const size_t sizes[] = { 2, 3, 4, 5, 6, 7, 13, 64, 4096, 8191, 8193 };
	size_t k, off;

	for (k = 0; k < ARRAY_LEN(sizes); k++) {
		struct feeder f;

		feeder_init(&f, w, dir, true, wait_whole);
		for (off = 0; off < w->len; off += sizes[k]) {
			size_t n = w->len - off < sizes[k] ? w->len - off : sizes[k];

			feed(&f, w->bytes + off, n);
		}
		feeder_check_done(&f);
	}
}

static void test_stream_backend_every_two_chunk_split(void **state)
{
	struct wire w;

	wire_build(&w, backend_msgs, ARRAY_LEN(backend_msgs));
	run_two_chunks(&w, BE, false);
	run_two_chunks(&w, BE, true);
	free(w.bytes);
}

static void test_stream_backend_byte_at_a_time(void **state)
{
	struct wire w;

	wire_build(&w, backend_msgs, ARRAY_LEN(backend_msgs));
	run_byte_at_a_time(&w, BE, false);
	run_byte_at_a_time(&w, BE, true);
	run_chunk_sizes(&w, BE, false);
	run_chunk_sizes(&w, BE, true);
	free(w.bytes);
}

static void test_stream_frontend_every_two_chunk_split(void **state)
{
	struct wire w;

	wire_build(&w, frontend_msgs, ARRAY_LEN(frontend_msgs));
	run_two_chunks(&w, FE, false);
	run_two_chunks(&w, FE, true);
	free(w.bytes);
}

static void test_stream_frontend_byte_at_a_time(void **state)
{
	struct wire w;

	wire_build(&w, frontend_msgs, ARRAY_LEN(frontend_msgs));
	run_byte_at_a_time(&w, FE, false);
	run_byte_at_a_time(&w, FE, true);
	run_chunk_sizes(&w, FE, false);
	run_chunk_sizes(&w, FE, true);
	free(w.bytes);
}

/* The whole stream in one chunk: every message arrives whole. */
static void test_stream_single_chunk_all_whole(void **state)
{
	struct wire w;
	struct feeder f;

	wire_build(&w, backend_msgs, ARRAY_LEN(backend_msgs));
	feeder_init(&f, &w, BE, true, false);
	feed(&f, w.bytes, w.len);
	assert_int_equal(f.nwhole, ARRAY_LEN(backend_msgs));
	feeder_check_done(&f);
	free(w.bytes);
}

static void test_stream_next_does_not_advance(void **state)
{
	static const uint8_t buf[] = { 'Z', 0, 0, 0, 5, 'I' };
	struct proto_stream s;
	struct proto_msg m1, m2;
	size_t pos = 0;

	proto_stream_init(&s, BE, false);
	assert_int_equal(proto_stream_next(&s, buf, sizeof(buf), &pos, &m1), PROTO_FRAME_OK);
	assert_int_equal(pos, 0);
	assert_int_equal(proto_stream_next(&s, buf, sizeof(buf), &pos, &m2), PROTO_FRAME_OK);
	assert_int_equal(pos, 0);
	assert_int_equal(m1.type, m2.type);
	assert_int_equal(m1.len, m2.len);
	assert_int_equal(m1.total, m2.total);
	assert_int_equal(m1.whole, m2.whole);
	assert_ptr_equal(m1.body, m2.body);
	assert_true(m1.whole);
	assert_ptr_equal(m1.body, buf + 5);
	assert_int_equal(m1.body_len, 1);
	proto_stream_consume(&s, sizeof(buf), &pos, &m1);
	assert_int_equal(pos, sizeof(buf));
	assert_int_equal(proto_stream_next(&s, buf, sizeof(buf), &pos, &m1),
			 PROTO_FRAME_NEED_MORE);
	assert_int_equal(pos, sizeof(buf));
}

/* consume() on a partial message leaves the rest as body_left, which the
 * following next() calls pass over chunk by chunk. */
static void test_stream_consume_partial_sets_body_left(void **state)
{
	uint8_t chunk1[5 + 10] = { 'D', 0, 0, 0, 104 };
	uint8_t chunk2[40] = { 0 };
	uint8_t chunk3[50 + 6] = { 0 };
	struct proto_stream s;
	struct proto_msg m;
	size_t pos = 0;

	memcpy(chunk3 + 50, (const uint8_t[]){ 'Z', 0, 0, 0, 5, 'T' }, 6);
	proto_stream_init(&s, BE, true);
	assert_int_equal(proto_stream_next(&s, chunk1, sizeof(chunk1), &pos, &m), PROTO_FRAME_OK);
	assert_false(m.whole);
	assert_null(m.body);
	assert_int_equal(m.total, 105);
	proto_stream_consume(&s, sizeof(chunk1), &pos, &m);
	assert_int_equal(pos, sizeof(chunk1));
	assert_int_equal(s.body_left, 90);
	assert_int_equal(s.cur_type, PROTO_BE_DATA_ROW);

	/* An empty chunk changes nothing. */
	pos = 0;
	assert_int_equal(proto_stream_next(&s, chunk2, 0, &pos, &m), PROTO_FRAME_NEED_MORE);
	assert_int_equal(s.body_left, 90);

	pos = 0;
	assert_int_equal(proto_stream_next(&s, chunk2, sizeof(chunk2), &pos, &m),
			 PROTO_FRAME_NEED_MORE);
	assert_int_equal(pos, sizeof(chunk2));
	assert_int_equal(s.body_left, 50);

	pos = 0;
	assert_int_equal(proto_stream_next(&s, chunk3, sizeof(chunk3), &pos, &m), PROTO_FRAME_OK);
	assert_int_equal(pos, 50);
	assert_int_equal(s.body_left, 0);
	assert_int_equal(m.type, PROTO_BE_READY_FOR_QUERY);
	assert_true(m.whole);
	assert_int_equal(m.body[0], PROTO_TX_IN_BLOCK);
}

struct stream_error_case {
	const char *name;
	enum proto_dir dir;
	bool authed;
	uint8_t bad[5];
	enum proto_frame_rc rc;
};

static const struct stream_error_case stream_error_cases[] = {
	{ "unknown backend type", BE, true, HDR('x', 0, 0, 0, 4), PROTO_FRAME_BAD_TYPE },
	{ "backend len 3", BE, true, HDR('D', 0, 0, 0, 3), PROTO_FRAME_BAD_LENGTH },
	{ "backend preauth oversize", BE, false, HDR('E', 0, 1, 0, 0), PROTO_FRAME_TOO_LARGE },
	{ "frontend sync with body", FE, true, HDR('S', 0, 0, 0, 6), PROTO_FRAME_TOO_LARGE },
	{ "frontend preauth password too large", FE, false, HDR('p', 0, 0, 0x23, 0x28),
	  PROTO_FRAME_TOO_LARGE },
	{ "frontend over large cap", FE, true, HDR('d', 0x40, 0, 0, 1), PROTO_FRAME_TOO_LARGE },
};

/* A bad header after good messages is reported once its 5 bytes are in,
 * whatever the chunking, after exactly the good messages were seen. */
static void test_stream_reports_bad_header_after_good_messages(void **state)
{
	static const struct exp_msg good_be[] = { { PROTO_BE_READY_FOR_QUERY, 1 },
						  { PROTO_BE_COMMAND_COMPLETE, 7 } };
	static const struct exp_msg good_fe[] = { { PROTO_FE_PASSWORD, 12 },
						  { PROTO_FE_QUERY, 7 } };
	size_t i, split;

	for (i = 0; i < ARRAY_LEN(stream_error_cases); i++) {
		const struct stream_error_case *ec = &stream_error_cases[i];
		struct wire good, w;

		wire_build(&good, ec->dir == BE ? good_be : good_fe, 2);
		w = good;
		w.len = good.len + 5;
		w.bytes = malloc(w.len);
		assert_non_null(w.bytes);
		memcpy(w.bytes, good.bytes, good.len);
		memcpy(w.bytes + good.len, ec->bad, 5);
		for (split = 0; split <= w.len; split++) {
			struct feeder f;

			feeder_init(&f, &w, ec->dir, ec->authed, false);
			feed(&f, w.bytes, split);
			feed(&f, w.bytes + split, w.len - split);
			if (f.err != ec->rc)
				fail_msg("case '%s' split %zu: got %s", ec->name, split,
					 proto_frame_rc_str(f.err));
			assert_int_equal(f.nseen, 2);
			free(f.work);
		}
		free(w.bytes);
		free(good.bytes);
	}
}

/* Flipping authed on the stream lifts the pre-auth cap for what follows. */
static void test_stream_authed_flag_selects_cap(void **state)
{
	static const uint8_t hdr[] = { 'Q', 0, 0, 0x40, 0x00 }; /* len 16384 */
	struct proto_stream s;
	struct proto_msg m;
	size_t pos = 0;

	proto_stream_init(&s, FE, false);
	assert_int_equal(proto_stream_next(&s, hdr, sizeof(hdr), &pos, &m),
			 PROTO_FRAME_TOO_LARGE);
	s.authed = true;
	assert_int_equal(proto_stream_next(&s, hdr, sizeof(hdr), &pos, &m), PROTO_FRAME_OK);
	assert_int_equal(m.len, 16384);
	assert_false(m.whole);
}

/* Only the head of a message passed over: the rest is body_left, passed
 * over by the next call (a Bind rewritten at its head, its tail streamed). */
static void test_stream_consume_head_leaves_the_rest(void **state)
{
	uint8_t buf[5 + 20 + 5] = { 'B', 0, 0, 0, 24 };
	struct proto_stream s;
	struct proto_msg m;
	size_t pos = 0;

	memcpy(buf + 25, (const uint8_t[]){ 'S', 0, 0, 0, 4 }, 5);
	proto_stream_init(&s, PROTO_DIR_FRONTEND, true);
	assert_int_equal(proto_stream_next(&s, buf, 12, &pos, &m), PROTO_FRAME_OK);
	assert_false(m.whole);
	proto_stream_consume_head(&s, &pos, &m, 9);
	assert_int_equal(pos, 9);
	assert_int_equal(s.body_left, 16);
	assert_int_equal(s.cur_type, PROTO_FE_BIND);
	assert_int_equal(proto_stream_next(&s, buf, sizeof(buf), &pos, &m), PROTO_FRAME_OK);
	assert_int_equal(pos, 25);
	assert_int_equal(m.type, PROTO_FE_SYNC);
	/* The whole message: nothing left over. */
	proto_stream_init(&s, PROTO_DIR_FRONTEND, true);
	pos = 25;
	assert_int_equal(proto_stream_next(&s, buf, sizeof(buf), &pos, &m), PROTO_FRAME_OK);
	proto_stream_consume_head(&s, &pos, &m, m.total);
	assert_int_equal(s.body_left, 0);
	assert_int_equal(pos, sizeof(buf));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_header_table),
		cmocka_unit_test(test_frame_rejects_len_below_4),
		cmocka_unit_test(test_frame_type_whitelist_matches_names),
		cmocka_unit_test(test_frame_rc_str_names_every_code),
		cmocka_unit_test(test_frame_startup_table),
		cmocka_unit_test(test_stream_backend_every_two_chunk_split),
		cmocka_unit_test(test_stream_backend_byte_at_a_time),
		cmocka_unit_test(test_stream_frontend_every_two_chunk_split),
		cmocka_unit_test(test_stream_frontend_byte_at_a_time),
		cmocka_unit_test(test_stream_single_chunk_all_whole),
		cmocka_unit_test(test_stream_next_does_not_advance),
		cmocka_unit_test(test_stream_consume_partial_sets_body_left),
		cmocka_unit_test(test_stream_reports_bad_header_after_good_messages),
		cmocka_unit_test(test_stream_authed_flag_selects_cap),
		cmocka_unit_test(test_stream_consume_head_leaves_the_rest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
