/*
 * proto_build.c: builders for the messages pgmux originates itself, on a
 * growable buffer with a hard maximum. Failures are sticky (b->failed) so
 * callers chain puts and check once with proto_buf_ok before sending.
 */
#include "proto_build.h"

#include "proto.h"

#include <stdlib.h>
#include <string.h>

#define PROTO_BUF_MIN_CAP 64

/* PostgreSQL type OIDs pgmux may advertise in admin result sets. */
#define PROTO_OID_BOOL 16
#define PROTO_OID_INT8 20
#define PROTO_OID_INT2 21
#define PROTO_OID_INT4 23
#define PROTO_OID_TEXT 25
#define PROTO_OID_OID 26
#define PROTO_OID_FLOAT4 700
#define PROTO_OID_FLOAT8 701

void proto_buf_init(struct proto_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->msg_start = 0;
	b->failed = false;
}

void proto_buf_free(struct proto_buf *b)
{
	free(b->data);
	proto_buf_init(b, b->max);
}

void proto_buf_reset(struct proto_buf *b)
{
	b->len = 0;
	b->msg_start = 0;
	b->failed = false;
}

uint8_t *proto_buf_steal(struct proto_buf *b, size_t *len)
{
	uint8_t *data;

	/* A failed buf keeps its state so the caller can still see why. */
	if (b->failed || b->len == 0)
		return NULL;
	data = b->data;
	*len = b->len;
	proto_buf_init(b, b->max);
	return data;
}

/* Makes room for n more bytes, or marks the buf failed and returns false. */
static bool proto_buf_room(struct proto_buf *b, size_t n)
{
	size_t want, cap;
	uint8_t *data;

	if (b->failed)
		return false;
	if (n > b->max || b->len > b->max - n) {
		b->failed = true;
		return false;
	}
	want = b->len + n;
	if (want <= b->cap)
		return true;
	cap = b->cap ? b->cap : PROTO_BUF_MIN_CAP;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	if (cap > b->max)
		cap = b->max;
	data = realloc(b->data, cap);
	if (!data) {
		b->failed = true;
		return false;
	}
	b->data = data;
	b->cap = cap;
	return true;
}

static void proto_store_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/*
 * msg_start records the offset of the length field rather than of the
 * type byte: that is all proto_end needs, and it is the same for typed
 * messages and untyped startup-phase packets.
 */
void proto_begin(struct proto_buf *b, uint8_t type)
{
	if (type != 0)
		proto_put_u8(b, type);
	b->msg_start = b->len;
	proto_put_u32(b, 0);
}

void proto_put_u8(struct proto_buf *b, uint8_t v)
{
	if (!proto_buf_room(b, 1))
		return;
	b->data[b->len++] = v;
}

void proto_put_u16(struct proto_buf *b, uint16_t v)
{
	if (!proto_buf_room(b, 2))
		return;
	b->data[b->len++] = (uint8_t)(v >> 8);
	b->data[b->len++] = (uint8_t)v;
}

void proto_put_u32(struct proto_buf *b, uint32_t v)
{
	if (!proto_buf_room(b, 4))
		return;
	proto_store_u32(b->data + b->len, v);
	b->len += 4;
}

void proto_put_cstr(struct proto_buf *b, const char *s)
{
	proto_put_bytes(b, s, strlen(s) + 1);
}

void proto_put_bytes(struct proto_buf *b, const void *p, size_t n)
{
	if (n == 0 || !proto_buf_room(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void proto_end(struct proto_buf *b)
{
	size_t len;

	if (b->failed)
		return;
	/* proto_end without a matching proto_begin is a caller bug; fail the
	 * buf rather than patch bytes that are not a length field. */
	if (b->msg_start > b->len || b->len - b->msg_start < 4) {
		b->failed = true;
		return;
	}
	len = b->len - b->msg_start;
	if (len > PROTO_LARGE_MSG_MAX) {
		b->failed = true;
		return;
	}
	proto_store_u32(b->data + b->msg_start, (uint32_t)len);
}

/* Message-specific builders. */

static void proto_put_field(struct proto_buf *b, uint8_t code, const char *value)
{
	proto_put_u8(b, code);
	proto_put_cstr(b, value);
}

/*
 * Severity goes out twice: 'S' may be localized, 'V' (PostgreSQL 9.6+)
 * never is, and clients such as libpq prefer 'V' when present.
 */
void proto_build_error(struct proto_buf *b, const char *severity, const char *sqlstate,
		       const char *message, const char *detail)
{
	proto_begin(b, PROTO_BE_ERROR_RESPONSE);
	proto_put_field(b, 'S', severity);
	proto_put_field(b, 'V', severity);
	proto_put_field(b, 'C', sqlstate);
	proto_put_field(b, 'M', message);
	if (detail)
		proto_put_field(b, 'D', detail);
	proto_put_u8(b, 0);
	proto_end(b);
}

void proto_build_notice(struct proto_buf *b, const char *severity, const char *sqlstate,
			const char *message)
{
	proto_begin(b, PROTO_BE_NOTICE_RESPONSE);
	proto_put_field(b, 'S', severity);
	proto_put_field(b, 'V', severity);
	proto_put_field(b, 'C', sqlstate);
	proto_put_field(b, 'M', message);
	proto_put_u8(b, 0);
	proto_end(b);
}

void proto_build_parameter_status(struct proto_buf *b, const char *name, const char *value)
{
	proto_begin(b, PROTO_BE_PARAMETER_STATUS);
	proto_put_cstr(b, name);
	proto_put_cstr(b, value);
	proto_end(b);
}

void proto_build_backend_key_data(struct proto_buf *b, uint32_t pid, uint32_t key)
{
	proto_begin(b, PROTO_BE_BACKEND_KEY_DATA);
	proto_put_u32(b, pid);
	proto_put_u32(b, key);
	proto_end(b);
}

void proto_build_ready_for_query(struct proto_buf *b, uint8_t tx_status)
{
	proto_begin(b, PROTO_BE_READY_FOR_QUERY);
	proto_put_u8(b, tx_status);
	proto_end(b);
}

void proto_build_auth(struct proto_buf *b, uint32_t code, const void *payload, size_t len)
{
	proto_begin(b, PROTO_BE_AUTH);
	proto_put_u32(b, code);
	if (payload)
		proto_put_bytes(b, payload, len);
	proto_end(b);
}

void proto_build_auth_sasl(struct proto_buf *b, const char *const *mechanisms)
{
	proto_begin(b, PROTO_BE_AUTH);
	proto_put_u32(b, PROTO_AUTH_SASL);
	for (; *mechanisms; mechanisms++)
		proto_put_cstr(b, *mechanisms);
	proto_put_u8(b, 0);
	proto_end(b);
}

void proto_build_negotiate_version(struct proto_buf *b, uint32_t newest,
				   const char *const *options, size_t n)
{
	size_t i;

	proto_begin(b, PROTO_BE_NEGOTIATE_PROTOCOL_VERSION);
	proto_put_u32(b, newest);
	proto_put_u32(b, (uint32_t)n);
	for (i = 0; i < n; i++)
		proto_put_cstr(b, options[i]);
	proto_end(b);
}

/* typlen for a column type: fixed-width types say their size, the rest -1. */
static int16_t proto_type_len(uint32_t oid)
{
	switch (oid) {
	case PROTO_OID_BOOL:
		return 1;
	case PROTO_OID_INT2:
		return 2;
	case PROTO_OID_INT4:
	case PROTO_OID_OID:
	case PROTO_OID_FLOAT4:
		return 4;
	case PROTO_OID_INT8:
	case PROTO_OID_FLOAT8:
		return 8;
	default:
		return -1;
	}
}

/* The column count is an int16 on the wire. */
static bool proto_ncols_ok(struct proto_buf *b, size_t ncols)
{
	if (ncols > INT16_MAX) {
		b->failed = true;
		return false;
	}
	return true;
}

void proto_build_row_description(struct proto_buf *b, size_t ncols, const char *const *names,
				 const uint32_t *type_oids)
{
	size_t i;

	if (!proto_ncols_ok(b, ncols))
		return;
	proto_begin(b, PROTO_BE_ROW_DESCRIPTION);
	proto_put_u16(b, (uint16_t)ncols);
	for (i = 0; i < ncols; i++) {
		uint32_t oid = type_oids ? type_oids[i] : PROTO_OID_TEXT;

		proto_put_cstr(b, names[i]);
		proto_put_u32(b, 0); /* table OID: not a table column */
		proto_put_u16(b, 0); /* attribute number */
		proto_put_u32(b, oid);
		proto_put_u16(b, (uint16_t)proto_type_len(oid));
		proto_put_u32(b, UINT32_MAX); /* typmod -1 */
		proto_put_u16(b, 0); /* text format */
	}
	proto_end(b);
}

void proto_build_data_row(struct proto_buf *b, size_t ncols, const char *const *values)
{
	size_t i;

	if (!proto_ncols_ok(b, ncols))
		return;
	proto_begin(b, PROTO_BE_DATA_ROW);
	proto_put_u16(b, (uint16_t)ncols);
	for (i = 0; i < ncols; i++) {
		size_t n;

		if (!values[i]) {
			proto_put_u32(b, UINT32_MAX); /* -1: SQL NULL */
			continue;
		}
		n = strlen(values[i]);
		if (n > PROTO_LARGE_MSG_MAX) {
			b->failed = true;
			return;
		}
		proto_put_u32(b, (uint32_t)n);
		proto_put_bytes(b, values[i], n);
	}
	proto_end(b);
}

void proto_build_command_complete(struct proto_buf *b, const char *tag)
{
	proto_begin(b, PROTO_BE_COMMAND_COMPLETE);
	proto_put_cstr(b, tag);
	proto_end(b);
}

void proto_build_empty_query(struct proto_buf *b)
{
	proto_begin(b, PROTO_BE_EMPTY_QUERY_RESPONSE);
	proto_end(b);
}

void proto_build_startup(struct proto_buf *b, const char *const *params)
{
	proto_begin(b, 0);
	proto_put_u32(b, PROTO_VERSION_3_0);
	for (; params[0] && params[1]; params += 2) {
		proto_put_cstr(b, params[0]);
		proto_put_cstr(b, params[1]);
	}
	/* A name without a value is a caller bug that would put a malformed
	 * packet on the wire; refuse it instead. */
	if (params[0])
		b->failed = true;
	proto_put_u8(b, 0);
	proto_end(b);
}

void proto_build_password(struct proto_buf *b, const char *password)
{
	proto_begin(b, PROTO_FE_PASSWORD);
	proto_put_cstr(b, password);
	proto_end(b);
}

void proto_build_sasl_initial(struct proto_buf *b, const char *mechanism, const void *data,
			      size_t len)
{
	proto_begin(b, PROTO_FE_PASSWORD);
	proto_put_cstr(b, mechanism);
	if (!data) {
		proto_put_u32(b, UINT32_MAX); /* -1: no initial response */
	} else if (len > INT32_MAX) {
		b->failed = true;
	} else {
		proto_put_u32(b, (uint32_t)len);
		proto_put_bytes(b, data, len);
	}
	proto_end(b);
}

void proto_build_sasl_response(struct proto_buf *b, const void *data, size_t len)
{
	proto_begin(b, PROTO_FE_PASSWORD);
	proto_put_bytes(b, data, len);
	proto_end(b);
}

void proto_build_query(struct proto_buf *b, const char *sql)
{
	proto_begin(b, PROTO_FE_QUERY);
	proto_put_cstr(b, sql);
	proto_end(b);
}

void proto_build_terminate(struct proto_buf *b)
{
	proto_begin(b, PROTO_FE_TERMINATE);
	proto_end(b);
}

void proto_build_cancel_request(struct proto_buf *b, uint32_t pid, uint32_t key)
{
	proto_begin(b, 0);
	proto_put_u32(b, PROTO_CANCEL_REQUEST_CODE);
	proto_put_u32(b, pid);
	proto_put_u32(b, key);
	proto_end(b);
}

void proto_build_parse(struct proto_buf *b, const char *name, const void *rest, size_t len)
{
	proto_begin(b, PROTO_FE_PARSE);
	proto_put_cstr(b, name);
	proto_put_bytes(b, rest, len);
	proto_end(b);
}

void proto_build_close(struct proto_buf *b, uint8_t kind, const char *name)
{
	proto_begin(b, PROTO_FE_CLOSE);
	proto_put_u8(b, kind);
	proto_put_cstr(b, name);
	proto_end(b);
}

void proto_build_describe(struct proto_buf *b, uint8_t kind, const char *name)
{
	proto_begin(b, PROTO_FE_DESCRIBE);
	proto_put_u8(b, kind);
	proto_put_cstr(b, name);
	proto_end(b);
}

void proto_build_flush(struct proto_buf *b)
{
	proto_begin(b, PROTO_FE_FLUSH);
	proto_end(b);
}

void proto_build_sync(struct proto_buf *b)
{
	proto_begin(b, PROTO_FE_SYNC);
	proto_end(b);
}

void proto_build_parse_complete(struct proto_buf *b)
{
	proto_begin(b, PROTO_BE_PARSE_COMPLETE);
	proto_end(b);
}

void proto_build_close_complete(struct proto_buf *b)
{
	proto_begin(b, PROTO_BE_CLOSE_COMPLETE);
	proto_end(b);
}
