/*
 * proto_startup.c: parses the untyped packet a client opens with
 * (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest). The result
 * points into the caller's packet; nothing is copied or allocated.
 */
#include "proto_startup.h"

#include "proto.h"
#include "proto_cursor.h"

#include <string.h>

#define PROTO_STARTUP_HEADER 8 /* int32 length + int32 code */
#define PROTO_CANCEL_LEN 16
#define PROTO_MAJOR(code) ((code) >> 16)

const char *proto_startup_rc_str(enum proto_startup_rc rc)
{
	switch (rc) {
	case PROTO_STARTUP_OK:
		return "ok";
	case PROTO_STARTUP_BAD_LENGTH:
		return "invalid startup packet length";
	case PROTO_STARTUP_BAD_VERSION:
		return "unsupported frontend protocol";
	case PROTO_STARTUP_NO_USER:
		return "no user name in startup packet";
	case PROTO_STARTUP_NOT_TERMINATED:
		return "startup packet not terminated";
	case PROTO_STARTUP_TOO_MANY_PARAMS:
		return "too many startup parameters";
	case PROTO_STARTUP_BAD_CANCEL:
		return "invalid cancel request length";
	case PROTO_STARTUP_BAD_PARAM:
		return "invalid startup parameter";
	}
	return "unknown";
}

/* Remembers the well-known parameters pgmux routes and logs by. */
static enum proto_startup_rc proto_startup_note(struct proto_startup *out, const char *name,
						const char *value)
{
	if (strcmp(name, "user") == 0) {
		if (out->user)
			return PROTO_STARTUP_BAD_PARAM;
		out->user = value;
	} else if (strcmp(name, "database") == 0) {
		if (out->database)
			return PROTO_STARTUP_BAD_PARAM;
		out->database = value;
	} else if (strcmp(name, "options") == 0) {
		out->options = value;
	} else if (strcmp(name, "application_name") == 0) {
		out->application_name = value;
	}
	return PROTO_STARTUP_OK;
}

/*
 * The parameter list is name\0value\0 pairs ended by an empty name. As in
 * PostgreSQL, that terminator must be the very last byte: a string that
 * runs off the end is NOT_TERMINATED, bytes after the terminator BAD_PARAM.
 */
static enum proto_startup_rc proto_startup_params(struct proto_cursor *c,
						  struct proto_startup *out)
{
	for (;;) {
		const char *name, *value;
		size_t name_len;
		enum proto_startup_rc rc;

		if (!proto_read_cstr(c, &name, &name_len))
			return PROTO_STARTUP_NOT_TERMINATED;
		if (name_len == 0)
			return proto_cursor_left(c) == 0 ? PROTO_STARTUP_OK
							 : PROTO_STARTUP_BAD_PARAM;
		if (!proto_read_cstr(c, &value, NULL))
			return PROTO_STARTUP_NOT_TERMINATED;
		if (out->nparams == PROTO_STARTUP_MAX_PARAMS)
			return PROTO_STARTUP_TOO_MANY_PARAMS;
		rc = proto_startup_note(out, name, value);
		if (rc != PROTO_STARTUP_OK)
			return rc;
		out->params[out->nparams].name = name;
		out->params[out->nparams].value = value;
		out->nparams++;
	}
}

static enum proto_startup_rc proto_startup_v3(struct proto_cursor *c, struct proto_startup *out)
{
	enum proto_startup_rc rc;

	out->kind = PROTO_STARTUP_V3;
	rc = proto_startup_params(c, out);
	if (rc != PROTO_STARTUP_OK)
		return rc;
	/* PostgreSQL refuses an empty user name too. */
	if (!out->user || out->user[0] == '\0')
		return PROTO_STARTUP_NO_USER;
	if (!out->database || out->database[0] == '\0')
		out->database = out->user;
	return PROTO_STARTUP_OK;
}

static enum proto_startup_rc proto_startup_cancel(struct proto_cursor *c, size_t len,
						  struct proto_startup *out)
{
	out->kind = PROTO_STARTUP_CANCEL;
	if (len != PROTO_CANCEL_LEN)
		return PROTO_STARTUP_BAD_CANCEL;
	if (!proto_read_u32(c, &out->cancel_pid) || !proto_read_u32(c, &out->cancel_key))
		return PROTO_STARTUP_BAD_CANCEL;
	return PROTO_STARTUP_OK;
}

enum proto_startup_rc proto_startup_parse(const uint8_t *pkt, size_t len,
					  struct proto_startup *out)
{
	struct proto_cursor c;
	uint32_t field, code;

	memset(out, 0, sizeof(*out));
	if (len < PROTO_STARTUP_HEADER || len > PROTO_STARTUP_MAX)
		return PROTO_STARTUP_BAD_LENGTH;
	proto_cursor_init(&c, pkt, len);
	if (!proto_read_u32(&c, &field) || !proto_read_u32(&c, &code))
		return PROTO_STARTUP_BAD_LENGTH;
	if (field != len)
		return PROTO_STARTUP_BAD_LENGTH;
	out->version = code;

	switch (code) {
	case PROTO_SSL_REQUEST_CODE:
		out->kind = PROTO_STARTUP_SSL;
		return len == PROTO_STARTUP_HEADER ? PROTO_STARTUP_OK : PROTO_STARTUP_BAD_LENGTH;
	case PROTO_GSSENC_REQUEST_CODE:
		out->kind = PROTO_STARTUP_GSSENC;
		return len == PROTO_STARTUP_HEADER ? PROTO_STARTUP_OK : PROTO_STARTUP_BAD_LENGTH;
	case PROTO_CANCEL_REQUEST_CODE:
		return proto_startup_cancel(&c, len, out);
	default:
		break;
	}
	/*
	 * Any 3.x minor is accepted, as PostgreSQL does: the caller answers a
	 * minor above 3.0 with NegotiateProtocolVersion rather than a refusal.
	 */
	if (PROTO_MAJOR(code) != PROTO_MAJOR(PROTO_VERSION_3_0))
		return PROTO_STARTUP_BAD_VERSION;
	return proto_startup_v3(&c, out);
}
