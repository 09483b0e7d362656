/*
 * fuzz_proto.c: libFuzzer target over protocol/, everything there that
 * reads bytes a peer chose: header framing, the startup packet, the
 * incremental stream walker, the typed-message decoders, both sides of
 * SCRAM, auth_file secrets, md5, the bounded cursor, and builder/parser
 * round trips. The first input byte picks the case (enum fz_proto_case);
 * the rest is carved by fuzz_util.h. Besides crashes and sanitizer
 * reports, each case checks the contract its header promises: outputs
 * point inside the input, a parse of what a builder wrote gives back what
 * went in, a chunked walk of a stream finds what a one-shot walk finds.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth_md5.h"
#include "auth_scram.h"
#include "fuzz_util.h"
#include "proto.h"
#include "proto_build.h"
#include "proto_cursor.h"
#include "proto_frame.h"
#include "proto_parse.h"
#include "proto_startup.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct scram_secret g_fz_secret; /* the RFC's user, 4096 iterations */

static bool fz_inside(const void *p, size_t n, const void *base, size_t len)
{
	const uint8_t *q = p;
	const uint8_t *b = base;

	return q >= b && n <= len && (size_t)(q - b) <= len - n;
}

/* A string an output pointer names: inside the body, NUL included. */
static bool fz_cstr_inside(const char *s, const void *base, size_t len)
{
	const uint8_t *b = base;
	size_t off;

	if ((const uint8_t *)s < b || (const uint8_t *)s >= b + len)
		return false;
	off = (size_t)((const uint8_t *)s - b);
	return memchr(s, '\0', len - off) != NULL;
}

/* ---- framing ---- */

static void fz_header(struct fz_in *in)
{
	uint8_t flags = fz_u8(in);
	enum proto_dir dir = (flags & 1) ? PROTO_DIR_BACKEND : PROTO_DIR_FRONTEND;
	bool authed = (flags & 2) != 0;
	const uint8_t *p;
	size_t n = fz_rest(in, &p);
	uint8_t *buf = fz_dup(p, n);
	struct proto_frame f;
	enum proto_frame_rc rc = proto_frame_header(buf, n, dir, authed, &f);

	FZ_CHECK(proto_frame_rc_str(rc) != NULL);
	if (n > 0)
		FZ_CHECK(proto_fe_type_str(buf[0]) && proto_be_type_str(buf[0]));
	if (rc == PROTO_FRAME_NEED_MORE)
		FZ_CHECK(n < PROTO_HEADER_SIZE);
	if (rc == PROTO_FRAME_OK) {
		FZ_CHECK(f.len >= 4 && f.total == (size_t)f.len + 1);
		FZ_CHECK(f.len <= (authed ? PROTO_LARGE_MSG_MAX : PROTO_PREAUTH_MSG_MAX));
	}
	free(buf);
}

static void fz_check_startup(const struct proto_startup *st, const uint8_t *pkt, size_t len)
{
	size_t i;

	switch (st->kind) {
	case PROTO_STARTUP_V3:
		FZ_CHECK(st->user && st->user[0] && fz_cstr_inside(st->user, pkt, len));
		FZ_CHECK(st->database && fz_cstr_inside(st->database, pkt, len));
		FZ_CHECK(st->nparams <= PROTO_STARTUP_MAX_PARAMS);
		for (i = 0; i < st->nparams; i++) {
			FZ_CHECK(fz_cstr_inside(st->params[i].name, pkt, len));
			FZ_CHECK(fz_cstr_inside(st->params[i].value, pkt, len));
			FZ_CHECK(st->params[i].name[0] != '\0');
		}
		break;
	case PROTO_STARTUP_CANCEL:
		FZ_CHECK(len == 16);
		break;
	case PROTO_STARTUP_SSL:
	case PROTO_STARTUP_GSSENC:
		FZ_CHECK(len == 8);
		break;
	}
}

/* The untyped first packet, framed as client.c frames it, then parsed
 * whole regardless so the length checks of the parser itself run too. */
static void fz_startup(struct fz_in *in)
{
	const uint8_t *p;
	size_t n = fz_rest(in, &p);
	struct proto_startup st;
	enum proto_startup_rc src;
	size_t total = 0;
	uint8_t *pkt;

	if (proto_frame_startup(p, n, &total) == PROTO_FRAME_OK) {
		FZ_CHECK(total >= 8 && total <= PROTO_STARTUP_MAX && total <= n);
		pkt = fz_dup(p, total);
		src = proto_startup_parse(pkt, total, &st);
		FZ_CHECK(proto_startup_rc_str(src) != NULL);
		if (src == PROTO_STARTUP_OK)
			fz_check_startup(&st, pkt, total);
		free(pkt);
	}
	pkt = fz_dup(p, n);
	if (proto_startup_parse(pkt, n, &st) == PROTO_STARTUP_OK)
		fz_check_startup(&st, pkt, n);
	free(pkt);
}

/*
 * The stream walker, checked against a one-shot walk of the same bytes.
 * The one-shot walk records every header it can read; the chunked walk
 * feeds the bytes through a small window the way conn.c feeds a read
 * buffer, sometimes passing over a partial body (forwarding) and sometimes
 * stopping to wait for the whole message (as login and ReadyForQuery do).
 * Both must see the same messages at the same stream offsets.
 */
#define FZ_MAX_MSGS 4096

struct fz_msg_rec {
	size_t off;
	uint8_t type;
	uint32_t len;
};

struct fz_walk {
	struct fz_msg_rec msgs[FZ_MAX_MSGS];
	size_t nmsgs;
	enum proto_frame_rc err; /* first error, PROTO_FRAME_OK if none */
};

static void fz_walk_whole(const uint8_t *p, size_t n, enum proto_dir dir, bool authed,
			  struct fz_walk *w)
{
	size_t pos = 0;

	w->nmsgs = 0;
	w->err = PROTO_FRAME_OK;
	while (w->nmsgs < FZ_MAX_MSGS) {
		struct proto_frame f;
		enum proto_frame_rc rc = proto_frame_header(p + pos, n - pos, dir, authed, &f);

		if (rc == PROTO_FRAME_NEED_MORE)
			return;
		if (rc != PROTO_FRAME_OK) {
			w->err = rc;
			return;
		}
		w->msgs[w->nmsgs].off = pos;
		w->msgs[w->nmsgs].type = f.type;
		w->msgs[w->nmsgs].len = f.len;
		w->nmsgs++;
		if (f.total > n - pos)
			return;
		pos += f.total;
	}
}

/* Next chunk size from a small xorshift: 1..64 bytes, or all at once. */
static size_t fz_chunk(uint32_t *rng, size_t left)
{
	size_t k;

	if (*rng == 0)
		return left;
	*rng ^= *rng << 13;
	*rng ^= *rng >> 17;
	*rng ^= *rng << 5;
	k = 1 + (*rng % 64);
	return k < left ? k : left;
}

/*
 * Walks win[*start, end) and leaves *start where the walk stopped. Returns
 * false when the walk is over: an error was recorded or the record is full.
 * `base` is the stream offset of win[0].
 */
static bool fz_walk_window(struct proto_stream *s, const uint8_t *win, size_t *start, size_t end,
			   size_t cap, size_t base, struct fz_walk *w)
{
	size_t pos = *start;

	for (;;) {
		struct proto_msg m;
		enum proto_frame_rc rc = proto_stream_next(s, win, end, &pos, &m);

		FZ_CHECK(pos <= end);
		if (rc == PROTO_FRAME_NEED_MORE)
			break;
		if (rc != PROTO_FRAME_OK) {
			w->err = rc;
			return false;
		}
		FZ_CHECK(m.total == (size_t)m.len + 1 && m.body_len == m.len - 4);
		FZ_CHECK(m.whole == (end - pos >= m.total));
		if (m.whole)
			FZ_CHECK(m.body == win + pos + PROTO_HEADER_SIZE);
		/* Wait for an odd type that fits, as login waits for a whole message. */
		if (!m.whole && (m.type & 1) && m.total <= cap)
			break;
		if (w->nmsgs == FZ_MAX_MSGS)
			return false;
		w->msgs[w->nmsgs].off = base + pos;
		w->msgs[w->nmsgs].type = m.type;
		w->msgs[w->nmsgs].len = m.len;
		w->nmsgs++;
		proto_stream_consume(s, end, &pos, &m);
	}
	*start = pos;
	return true;
}

static void fz_stream(struct fz_in *in)
{
	static const size_t caps[] = { 16, 64, 512, 8192 };
	uint8_t flags = fz_u8(in);
	enum proto_dir dir = (flags & 1) ? PROTO_DIR_BACKEND : PROTO_DIR_FRONTEND;
	bool authed = (flags & 2) != 0;
	size_t cap = caps[(flags >> 2) & 3];
	uint32_t rng = fz_u16(in);
	const uint8_t *p;
	size_t n = fz_rest(in, &p);
	struct fz_walk *whole = malloc(sizeof(*whole));
	struct fz_walk *chunked = malloc(sizeof(*chunked));
	uint8_t *win = malloc(cap);
	struct proto_stream s;
	size_t fed = 0, start = 0, end = 0, base = 0, i;

	FZ_CHECK(whole && chunked && win);
	fz_walk_whole(p, n, dir, authed, whole);
	chunked->nmsgs = 0;
	chunked->err = PROTO_FRAME_OK;
	proto_stream_init(&s, dir, authed);
	while (fed < n) {
		size_t k = fz_chunk(&rng, n - fed);

		/* Like conn_on_alloc: move the unhandled tail to the front. */
		if (start > 0) {
			memmove(win, win + start, end - start);
			base += start;
			end -= start;
			start = 0;
		}
		if (k > cap - end)
			k = cap - end;
		/* A waiting message always fits (it is waited for only then), so
		 * the window cannot be full here. */
		FZ_CHECK(k > 0);
		memcpy(win + end, p + fed, k);
		end += k;
		fed += k;
		if (!fz_walk_window(&s, win, &start, end, cap, base, chunked))
			break;
	}
	/* Same messages, same offsets; the chunked walk may stop before the
	 * last partial message (it waits for it) but not earlier. */
	FZ_CHECK(chunked->nmsgs <= whole->nmsgs);
	for (i = 0; i < chunked->nmsgs; i++) {
		FZ_CHECK(chunked->msgs[i].off == whole->msgs[i].off);
		FZ_CHECK(chunked->msgs[i].type == whole->msgs[i].type);
		FZ_CHECK(chunked->msgs[i].len == whole->msgs[i].len);
	}
	if (whole->nmsgs < FZ_MAX_MSGS) {
		FZ_CHECK(chunked->err == whole->err);
		if (whole->err == PROTO_FRAME_OK && whole->nmsgs > 0) {
			const struct fz_msg_rec *last = &whole->msgs[whole->nmsgs - 1];
			bool last_whole = n - last->off >= (size_t)last->len + 1;

			FZ_CHECK(chunked->nmsgs >= whole->nmsgs - (last_whole ? 0 : 1));
		}
	}
	free(win);
	free(chunked);
	free(whole);
}

/* ---- typed messages ---- */

/* Every decoder over the same body; outputs must point inside it. */
static void fz_parse(struct fz_in *in)
{
	const uint8_t *p;
	size_t n = fz_rest(in, &p);
	uint8_t *body = fz_dup(p, n);
	struct proto_error_fields ef;
	const uint8_t *payload, *data;
	const char *name, *value;
	size_t plen, dlen;
	uint32_t code, pid, key;
	uint8_t st;

	if (proto_parse_auth(body, n, &code, &payload, &plen)) {
		FZ_CHECK(n >= 4 && plen == n - 4 && payload == body + 4);
		(void)proto_sasl_has_mechanism(payload, plen, "SCRAM-SHA-256");
	}
	(void)proto_sasl_has_mechanism(body, n, "SCRAM-SHA-256");
	if (proto_parse_parameter_status(body, n, &name, &value))
		FZ_CHECK(fz_cstr_inside(name, body, n) && fz_cstr_inside(value, body, n) &&
			 strlen(name) + strlen(value) + 2 == n);
	if (proto_parse_backend_key_data(body, n, &pid, &key))
		FZ_CHECK(n == 8);
	if (proto_parse_ready_for_query(body, n, &st))
		FZ_CHECK(n == 1 && (st == 'I' || st == 'T' || st == 'E'));
	if (proto_parse_error(body, n, &ef)) {
		const char *const fields[] = { ef.severity, ef.sqlstate, ef.message, ef.detail,
					       ef.hint };
		size_t i;

		FZ_CHECK(n > 0 && body[n - 1] == 0);
		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			FZ_CHECK(!fields[i] || fz_cstr_inside(fields[i], body, n));
	}
	if (proto_parse_password(body, n, &value))
		FZ_CHECK(fz_cstr_inside(value, body, n) && strlen(value) + 1 == n);
	if (proto_parse_sasl_initial(body, n, &name, &data, &dlen)) {
		FZ_CHECK(fz_cstr_inside(name, body, n));
		FZ_CHECK(data ? fz_inside(data, dlen, body, n) : dlen == 0);
	}
	free(body);
}

/* ---- SCRAM ---- */

/* Output buffers are sometimes too small, to reach the SCRAM_ESPACE paths. */
static size_t fz_outcap(uint8_t sel)
{
	return sel < 16 ? (size_t)sel * 8 : SCRAM_MSG_MAX;
}

static void fz_check_out(int rc, const char *out, size_t outcap, size_t outlen)
{
	if (rc != SCRAM_OK)
		return;
	FZ_CHECK(outlen < outcap && out[outlen] == '\0' && strlen(out) == outlen);
}

/* pgmux verifying a client: client-first, then client-final. */
static void fz_scram_server(struct fz_in *in)
{
	size_t outcap = fz_outcap(fz_u8(in));
	const uint8_t *first, *final;
	size_t first_len = fz_part(in, &first);
	size_t final_len = fz_rest(in, &final);
	uint8_t *cf = fz_dup(first, first_len);
	uint8_t *cfin = fz_dup(final, final_len);
	struct scram_server s;
	char out[SCRAM_MSG_MAX];
	size_t outlen = 0;
	int rc;

	memset(&s, 0, sizeof(s));
	rc = scram_server_first(&s, &g_fz_secret, FZ_SCRAM_SERVER_NONCE, cf, first_len, out,
				outcap, &outlen);
	fz_check_out(rc, out, outcap, outlen);
	if (rc == SCRAM_OK) {
		rc = scram_server_final(&s, cfin, final_len, out, outcap, &outlen);
		fz_check_out(rc, out, outcap, outlen);
		/* One server nonce buys one guess. */
		FZ_CHECK(scram_server_final(&s, cfin, final_len, out, outcap, &outlen) ==
			 SCRAM_ESTATE);
	}
	free(cfin);
	free(cf);
}

/* The iteration count a server-first message names, or 0 if none is found.
 * Nonces and base64 never contain ',', so the first ",i=" is the field. */
static unsigned long fz_scram_iterations(const uint8_t *msg, size_t len)
{
	unsigned long v = 0;
	size_t i;

	for (i = 0; i + 3 <= len; i++) {
		if (memcmp(msg + i, ",i=", 3) != 0)
			continue;
		for (i += 3; i < len && msg[i] >= '0' && msg[i] <= '9' && v <= INT_MAX; i++)
			v = v * 10 + (unsigned long)(msg[i] - '0');
		return v;
	}
	return 0;
}

/* pgmux logging in to a server: server-first, then server-final. */
static void fz_scram_client(struct fz_in *in)
{
	size_t outcap = fz_outcap(fz_u8(in));
	char *password = fz_cstr(in);
	const uint8_t *first, *final;
	size_t first_len = fz_part(in, &first);
	size_t final_len = fz_rest(in, &final);
	uint8_t *sf = fz_dup(first, first_len);
	uint8_t *sfin = fz_dup(final, final_len);
	struct scram_client c;
	char out[SCRAM_MSG_MAX];
	size_t outlen = 0;
	int rc;

	memset(&c, 0, sizeof(c));
	rc = scram_client_first(&c, password, FZ_SCRAM_CLIENT_NONCE, out, outcap, &outlen);
	fz_check_out(rc, out, outcap, outlen);
	if (rc == SCRAM_OK && fz_scram_iterations(sf, first_len) <= FZ_SCRAM_MAX_ITERATIONS) {
		rc = scram_client_final(&c, sf, first_len, out, outcap, &outlen);
		fz_check_out(rc, out, outcap, outlen);
		if (rc == SCRAM_OK) {
			(void)scram_client_verify(&c, sfin, final_len);
			FZ_CHECK(scram_client_verify(&c, sfin, final_len) == SCRAM_ESTATE);
		}
	}
	free(sfin);
	free(sf);
	free(password);
}

/* An auth_file secret: what parses must format and parse back the same. */
static void fz_secret(struct fz_in *in)
{
	const uint8_t *p;
	size_t n = fz_rest(in, &p);
	char *text = malloc(n + 1);
	struct scram_secret a, b;
	char out[512];
	size_t outlen;
	bool ok;

	FZ_CHECK(text != NULL);
	memcpy(text, p, n);
	text[n] = '\0';
	memset(&a, 0, sizeof(a));
	ok = scram_secret_parse(text, &a);
	FZ_CHECK(ok == scram_is_secret(text));
	if (ok) {
		FZ_CHECK(a.iterations >= 1 && a.salt_len >= 1 && a.salt_len <= SCRAM_SALT_MAX);
		FZ_CHECK(scram_secret_format(&a, out, sizeof(out), &outlen) == SCRAM_OK);
		memset(&b, 0, sizeof(b));
		FZ_CHECK(scram_secret_parse(out, &b));
		FZ_CHECK(a.iterations == b.iterations && a.salt_len == b.salt_len &&
			 memcmp(a.salt, b.salt, a.salt_len) == 0 &&
			 memcmp(a.stored_key, b.stored_key, SCRAM_KEY_LEN) == 0 &&
			 memcmp(a.server_key, b.server_key, SCRAM_KEY_LEN) == 0);
	}
	(void)md5_is_secret(text);
	free(text);
}

/* md5: a response computed from the password must verify against it. */
static void fz_md5(struct fz_in *in)
{
	char *stored = fz_cstr(in);
	char *user = fz_cstr(in);
	char *response = fz_cstr(in);
	uint8_t salt[4];
	char secret[MD5_SECRET_LEN + 1];
	char good[MD5_SECRET_LEN + 1];
	size_t i;

	for (i = 0; i < sizeof(salt); i++)
		salt[i] = fz_u8(in);
	(void)md5_verify(stored, user, salt, response);
	if (!md5_is_secret(stored) && strncmp(stored, "SCRAM-SHA-256$", 14) != 0) {
		md5_secret(stored, user, secret);
		FZ_CHECK(md5_is_secret(secret));
		md5_response(secret, salt, good);
		FZ_CHECK(md5_verify(stored, user, salt, good));
		FZ_CHECK(md5_verify(secret, user, salt, good));
	}
	free(response);
	free(user);
	free(stored);
}

/* ---- cursor ---- */

/* One read picked by op; checks the cursor moved exactly as far as read. */
static void fz_cursor_op(struct proto_cursor *c, uint8_t op)
{
	size_t before = c->pos;
	const char *s;
	const uint8_t *b;
	size_t len;
	uint32_t u32;
	int32_t i32;
	uint16_t u16;
	int16_t i16;
	uint8_t u8;
	bool ok;

	switch (op & 7) {
	case 0:
		ok = proto_read_u8(c, &u8);
		break;
	case 1:
		ok = proto_read_u16(c, &u16);
		break;
	case 2:
		ok = proto_read_i16(c, &i16);
		break;
	case 3:
		ok = proto_read_u32(c, &u32);
		break;
	case 4:
		ok = proto_read_i32(c, &i32);
		break;
	case 5:
		ok = proto_read_cstr(c, &s, &len);
		if (ok)
			FZ_CHECK(strlen(s) == len && c->pos == before + len + 1);
		break;
	default:
		len = op >> 3 == 31 ? SIZE_MAX : (size_t)(op >> 3);
		ok = proto_read_bytes(c, len, &b);
		if (ok)
			FZ_CHECK(b == c->data + before && c->pos == before + len);
		break;
	}
	FZ_CHECK(c->pos <= c->len && proto_cursor_left(c) == c->len - c->pos);
	if (!ok)
		FZ_CHECK(c->pos == before);
}

/* A program of reads over the rest of the input: a failed read must not move. */
static void fz_cursor(struct fz_in *in)
{
	const uint8_t *ops;
	size_t nops = fz_part(in, &ops);
	const uint8_t *p;
	size_t n = fz_rest(in, &p);
	uint8_t *data = fz_dup(p, n);
	struct proto_cursor c;
	size_t i;

	proto_cursor_init(&c, n ? data : NULL, n);
	for (i = 0; i < nops; i++)
		fz_cursor_op(&c, ops[i]);
	free(data);
}

/* ---- builders against parsers ---- */

/* ErrorResponse then ParameterStatus, as pgmux builds them for clients. */
static void fz_build_error(struct fz_in *in)
{
	char *sev = fz_cstr(in);
	char *code = fz_cstr(in);
	char *msg = fz_cstr(in);
	char *detail = fz_cstr(in);
	const char *name, *value;
	struct proto_error_fields ef;
	struct proto_frame f;
	struct proto_buf b;
	const uint8_t *ps;

	proto_buf_init(&b, 4096);
	proto_build_error(&b, sev, code, msg, detail[0] ? detail : NULL);
	proto_build_parameter_status(&b, sev, msg);
	if (proto_buf_ok(&b)) {
		FZ_CHECK(proto_frame_header(b.data, b.len, PROTO_DIR_BACKEND, true, &f) ==
			 PROTO_FRAME_OK);
		FZ_CHECK(f.type == PROTO_BE_ERROR_RESPONSE && f.total < b.len);
		FZ_CHECK(proto_parse_error(b.data + PROTO_HEADER_SIZE, f.len - 4, &ef));
		FZ_CHECK(strcmp(ef.severity, sev) == 0 && strcmp(ef.sqlstate, code) == 0 &&
			 strcmp(ef.message, msg) == 0);
		FZ_CHECK(detail[0] ? strcmp(ef.detail, detail) == 0 : ef.detail == NULL);
		ps = b.data + f.total;
		FZ_CHECK(proto_frame_header(ps, b.len - f.total, PROTO_DIR_BACKEND, true, &f) ==
			 PROTO_FRAME_OK);
		FZ_CHECK(f.total == b.len - (size_t)(ps - b.data));
		FZ_CHECK(proto_parse_parameter_status(ps + PROTO_HEADER_SIZE, f.len - 4, &name,
						      &value));
		FZ_CHECK(strcmp(name, sev) == 0 && strcmp(value, msg) == 0);
	}
	proto_buf_free(&b);
	free(detail);
	free(msg);
	free(code);
	free(sev);
}

/*
 * The startup packet pgmux sends to servers, parsed back with the parser
 * it uses on clients. When the builder's input is one PostgreSQL would
 * accept, the parse must succeed and return every pair unchanged.
 */
#define FZ_MAX_PAIRS 70

static bool fz_startup_acceptable(const char *const *params, size_t npairs)
{
	size_t i, users = 0, dbs = 0;

	if (npairs > PROTO_STARTUP_MAX_PARAMS)
		return false;
	for (i = 0; i < npairs; i++) {
		const char *name = params[2 * i];

		if (name[0] == '\0')
			return false;
		if (strcmp(name, "user") == 0) {
			users++;
			if (params[2 * i + 1][0] == '\0')
				return false;
		}
		dbs += strcmp(name, "database") == 0;
	}
	return users == 1 && dbs <= 1;
}

static void fz_build_startup(struct fz_in *in)
{
	size_t npairs = fz_u8(in) % FZ_MAX_PAIRS;
	const char *params[2 * FZ_MAX_PAIRS + 1];
	char *owned[2 * FZ_MAX_PAIRS];
	struct proto_startup st;
	struct proto_buf b;
	size_t i, total;

	for (i = 0; i < 2 * npairs; i++) {
		owned[i] = fz_cstr(in);
		params[i] = owned[i];
	}
	params[2 * npairs] = NULL;
	proto_buf_init(&b, 64 * 1024);
	proto_build_startup(&b, params);
	if (proto_buf_ok(&b) && b.len > PROTO_STARTUP_MAX) {
		FZ_CHECK(proto_frame_startup(b.data, b.len, &total) == PROTO_FRAME_TOO_LARGE);
	} else if (proto_buf_ok(&b)) {
		FZ_CHECK(proto_frame_startup(b.data, b.len, &total) == PROTO_FRAME_OK &&
			 total == b.len);
		if (proto_startup_parse(b.data, b.len, &st) == PROTO_STARTUP_OK) {
			FZ_CHECK(st.kind == PROTO_STARTUP_V3 && st.nparams == npairs);
			for (i = 0; i < npairs; i++)
				FZ_CHECK(strcmp(st.params[i].name, params[2 * i]) == 0 &&
					 strcmp(st.params[i].value, params[2 * i + 1]) == 0);
		} else {
			FZ_CHECK(!fz_startup_acceptable(params, npairs));
		}
	}
	proto_buf_free(&b);
	for (i = 0; i < 2 * npairs; i++)
		free(owned[i]);
}

/* ---- dispatch ---- */

static void (*const fz_cases[FZ_PROTO_NCASES])(struct fz_in *in) = {
	[FZ_PROTO_HEADER] = fz_header,
	[FZ_PROTO_STARTUP] = fz_startup,
	[FZ_PROTO_STREAM] = fz_stream,
	[FZ_PROTO_PARSE] = fz_parse,
	[FZ_PROTO_SCRAM_SERVER] = fz_scram_server,
	[FZ_PROTO_SCRAM_CLIENT] = fz_scram_client,
	[FZ_PROTO_SECRET] = fz_secret,
	[FZ_PROTO_MD5] = fz_md5,
	[FZ_PROTO_CURSOR] = fz_cursor,
	[FZ_PROTO_BUILD_ERROR] = fz_build_error,
	[FZ_PROTO_BUILD_STARTUP] = fz_build_startup,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char salt_b64[] = FZ_SCRAM_SALT_B64;
	uint8_t salt[18]; /* EVP_DecodeBlock counts the padding as zero bytes */

	(void)argc;
	(void)argv;
	FZ_CHECK(EVP_DecodeBlock(salt, (const unsigned char *)salt_b64,
				 (int)strlen(salt_b64)) == 18);
	FZ_CHECK(scram_secret_from_password(FZ_SCRAM_PASSWORD, salt, 16,
					    SCRAM_DEFAULT_ITERATIONS, &g_fz_secret) == SCRAM_OK);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in;

	fz_in_init(&in, data, size);
	fz_cases[fz_u8(&in) % FZ_PROTO_NCASES](&in);
	return 0;
}
