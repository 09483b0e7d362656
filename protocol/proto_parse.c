/*
 * proto_parse.c: decoders for the typed messages pgmux has to understand
 * rather than forward: authentication, session state and errors. Every
 * decoder goes through a bounded cursor and insists that the body is used
 * up exactly, so trailing garbage is a malformation, not something ignored.
 */
#include "proto_parse.h"

#include "proto.h"
#include "proto_cursor.h"

#include <string.h>

#define PROTO_FIELD_SEVERITY 'S'
#define PROTO_FIELD_SEVERITY_NL 'V'
#define PROTO_FIELD_SQLSTATE 'C'
#define PROTO_FIELD_MESSAGE 'M'
#define PROTO_FIELD_DETAIL 'D'
#define PROTO_FIELD_HINT 'H'

static bool proto_cursor_done(const struct proto_cursor *c)
{
	return proto_cursor_left(c) == 0;
}

bool proto_parse_auth(const uint8_t *body, size_t len, uint32_t *code, const uint8_t **payload,
		      size_t *payload_len)
{
	struct proto_cursor c;
	size_t left;

	proto_cursor_init(&c, body, len);
	if (!proto_read_u32(&c, code))
		return false;
	left = proto_cursor_left(&c);
	if (!proto_read_bytes(&c, left, payload))
		return false;
	*payload_len = left;
	return true;
}

/* The list is a run of NUL-terminated names ended by an empty one. */
bool proto_sasl_has_mechanism(const uint8_t *payload, size_t len, const char *mechanism)
{
	struct proto_cursor c;
	const char *name;
	size_t name_len;
	bool found = false;

	proto_cursor_init(&c, payload, len);
	for (;;) {
		if (!proto_read_cstr(&c, &name, &name_len))
			return false;
		if (name_len == 0)
			break;
		if (strcmp(name, mechanism) == 0)
			found = true;
	}
	return found && proto_cursor_done(&c);
}

bool proto_parse_parameter_status(const uint8_t *body, size_t len, const char **name,
				  const char **value)
{
	struct proto_cursor c;

	proto_cursor_init(&c, body, len);
	return proto_read_cstr(&c, name, NULL) && proto_read_cstr(&c, value, NULL) &&
	       proto_cursor_done(&c);
}

/*
 * Exactly 8 bytes: pgmux speaks protocol 3.0 to servers, so the variable
 * length keys of protocol 3.2 never arrive here legitimately.
 */
bool proto_parse_backend_key_data(const uint8_t *body, size_t len, uint32_t *pid, uint32_t *key)
{
	struct proto_cursor c;

	proto_cursor_init(&c, body, len);
	return proto_read_u32(&c, pid) && proto_read_u32(&c, key) && proto_cursor_done(&c);
}

bool proto_parse_ready_for_query(const uint8_t *body, size_t len, uint8_t *status)
{
	struct proto_cursor c;
	uint8_t st;

	proto_cursor_init(&c, body, len);
	if (!proto_read_u8(&c, &st) || !proto_cursor_done(&c))
		return false;
	switch (st) {
	case PROTO_TX_IDLE:
	case PROTO_TX_IN_BLOCK:
	case PROTO_TX_FAILED:
		*status = st;
		return true;
	default:
		return false;
	}
}

static void proto_error_field(struct proto_error_fields *out, uint8_t code, const char *value)
{
	switch (code) {
	case PROTO_FIELD_SEVERITY:
		if (!out->severity)
			out->severity = value;
		break;
	case PROTO_FIELD_SEVERITY_NL:
		/* The non-localized severity wins over 'S' in any order. */
		out->severity = value;
		break;
	case PROTO_FIELD_SQLSTATE:
		out->sqlstate = value;
		break;
	case PROTO_FIELD_MESSAGE:
		out->message = value;
		break;
	case PROTO_FIELD_DETAIL:
		out->detail = value;
		break;
	case PROTO_FIELD_HINT:
		out->hint = value;
		break;
	default:
		break; /* fields pgmux does not use */
	}
}

bool proto_parse_error(const uint8_t *body, size_t len, struct proto_error_fields *out)
{
	struct proto_cursor c;

	memset(out, 0, sizeof(*out));
	proto_cursor_init(&c, body, len);
	for (;;) {
		uint8_t code;
		const char *value;

		if (!proto_read_u8(&c, &code))
			return false;
		if (code == 0)
			return proto_cursor_done(&c);
		if (!proto_read_cstr(&c, &value, NULL))
			return false;
		proto_error_field(out, code, value);
	}
}

bool proto_parse_password(const uint8_t *body, size_t len, const char **password)
{
	struct proto_cursor c;

	proto_cursor_init(&c, body, len);
	return proto_read_cstr(&c, password, NULL) && proto_cursor_done(&c);
}

bool proto_parse_sasl_initial(const uint8_t *body, size_t len, const char **mechanism,
			      const uint8_t **data, size_t *data_len)
{
	struct proto_cursor c;
	int32_t n;

	proto_cursor_init(&c, body, len);
	if (!proto_read_cstr(&c, mechanism, NULL) || !proto_read_i32(&c, &n))
		return false;
	if (n == -1) {
		*data = NULL;
		*data_len = 0;
		return proto_cursor_done(&c);
	}
	if (n < 0 || !proto_read_bytes(&c, (size_t)n, data))
		return false;
	*data_len = (size_t)n;
	return proto_cursor_done(&c);
}

bool proto_parse_parse(const uint8_t *body, size_t len, const char **name, size_t *name_len,
		       const uint8_t **rest, size_t *rest_len)
{
	struct proto_cursor c;
	const char *query;
	int16_t n;
	const uint8_t *oids;
	size_t start;

	proto_cursor_init(&c, body, len);
	if (!proto_read_cstr(&c, name, name_len))
		return false;
	start = c.pos;
	if (!proto_read_cstr(&c, &query, NULL) || !proto_read_i16(&c, &n) || n < 0 ||
	    !proto_read_bytes(&c, (size_t)n * 4, &oids) || !proto_cursor_done(&c))
		return false;
	*rest = body + start;
	*rest_len = len - start;
	return true;
}

/* A NUL-terminated string at body[*pos], within avail bytes of body_len. */
static enum proto_head_rc proto_head_cstr(const uint8_t *body, size_t avail, size_t body_len,
					  size_t *pos, const char **out)
{
	const uint8_t *nul;

	if (*pos < avail) {
		nul = memchr(body + *pos, '\0', avail - *pos);
		if (nul) {
			*out = (const char *)body + *pos;
			*pos = (size_t)(nul - body) + 1;
			return PROTO_HEAD_OK;
		}
	}
	return avail < body_len ? PROTO_HEAD_NEED_MORE : PROTO_HEAD_BAD;
}

enum proto_head_rc proto_parse_bind_head(const uint8_t *body, size_t avail, size_t body_len,
					 const char **portal, const char **stmt,
					 size_t *head_len)
{
	size_t pos = 0;
	enum proto_head_rc rc;

	if (avail > body_len)
		avail = body_len;
	rc = proto_head_cstr(body, avail, body_len, &pos, portal);
	if (rc == PROTO_HEAD_OK)
		rc = proto_head_cstr(body, avail, body_len, &pos, stmt);
	if (rc == PROTO_HEAD_OK)
		*head_len = pos;
	return rc;
}

bool proto_parse_target(const uint8_t *body, size_t len, uint8_t *kind, const char **name)
{
	struct proto_cursor c;

	proto_cursor_init(&c, body, len);
	return proto_read_u8(&c, kind) && (*kind == 'S' || *kind == 'P') &&
	       proto_read_cstr(&c, name, NULL) && proto_cursor_done(&c);
}
