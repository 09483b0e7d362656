/*
 * proto_frame.c: finds message boundaries in untrusted byte streams.
 * Headers are checked against a per-direction type whitelist and per-type,
 * per-phase length caps before any body byte is buffered; the stream walker
 * lets the forwarding path pass bodies through without copying them.
 */
#include "proto_frame.h"

#include "proto.h"

static uint32_t proto_frame_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

const char *proto_frame_rc_str(enum proto_frame_rc rc)
{
	switch (rc) {
	case PROTO_FRAME_OK:
		return "ok";
	case PROTO_FRAME_NEED_MORE:
		return "need more data";
	case PROTO_FRAME_BAD_LENGTH:
		return "bad message length";
	case PROTO_FRAME_TOO_LARGE:
		return "message too large";
	case PROTO_FRAME_BAD_TYPE:
		return "bad message type";
	}
	return "unknown";
}

static bool proto_fe_type_valid(uint8_t type)
{
	switch ((enum proto_fe_type)type) {
	case PROTO_FE_BIND:
	case PROTO_FE_CLOSE:
	case PROTO_FE_COPY_DATA:
	case PROTO_FE_COPY_DONE:
	case PROTO_FE_COPY_FAIL:
	case PROTO_FE_DESCRIBE:
	case PROTO_FE_EXECUTE:
	case PROTO_FE_FLUSH:
	case PROTO_FE_FUNCTION_CALL:
	case PROTO_FE_PARSE:
	case PROTO_FE_PASSWORD:
	case PROTO_FE_QUERY:
	case PROTO_FE_SYNC:
	case PROTO_FE_TERMINATE:
		return true;
	}
	return false;
}

static bool proto_be_type_valid(uint8_t type)
{
	switch ((enum proto_be_type)type) {
	case PROTO_BE_AUTH:
	case PROTO_BE_BACKEND_KEY_DATA:
	case PROTO_BE_BIND_COMPLETE:
	case PROTO_BE_CLOSE_COMPLETE:
	case PROTO_BE_COMMAND_COMPLETE:
	case PROTO_BE_COPY_DATA:
	case PROTO_BE_COPY_DONE:
	case PROTO_BE_COPY_IN_RESPONSE:
	case PROTO_BE_COPY_OUT_RESPONSE:
	case PROTO_BE_COPY_BOTH_RESPONSE:
	case PROTO_BE_DATA_ROW:
	case PROTO_BE_EMPTY_QUERY_RESPONSE:
	case PROTO_BE_ERROR_RESPONSE:
	case PROTO_BE_FUNCTION_CALL_RESPONSE:
	case PROTO_BE_NEGOTIATE_PROTOCOL_VERSION:
	case PROTO_BE_NO_DATA:
	case PROTO_BE_NOTICE_RESPONSE:
	case PROTO_BE_NOTIFICATION_RESPONSE:
	case PROTO_BE_PARAMETER_DESCRIPTION:
	case PROTO_BE_PARAMETER_STATUS:
	case PROTO_BE_PARSE_COMPLETE:
	case PROTO_BE_PORTAL_SUSPENDED:
	case PROTO_BE_READY_FOR_QUERY:
	case PROTO_BE_ROW_DESCRIPTION:
		return true;
	}
	return false;
}

/* Frontend messages that never carry a body. */
static bool proto_fe_type_bodyless(uint8_t type)
{
	switch (type) {
	case PROTO_FE_SYNC:
	case PROTO_FE_FLUSH:
	case PROTO_FE_TERMINATE:
	case PROTO_FE_COPY_DONE:
		return true;
	default:
		return false;
	}
}

/*
 * The type is checked first so that a stream that is not PostgreSQL at all
 * (say, TLS or HTTP bytes) is reported as such rather than as a length
 * problem. *out is filled as soon as 5 bytes are present, even on error,
 * so the caller can log what it rejected.
 */
enum proto_frame_rc proto_frame_header(const uint8_t *buf, size_t avail, enum proto_dir dir,
				       bool authed, struct proto_frame *out)
{
	uint8_t type;
	uint32_t len;
	bool fe = dir == PROTO_DIR_FRONTEND;

	if (avail < PROTO_HEADER_SIZE)
		return PROTO_FRAME_NEED_MORE;
	type = buf[0];
	len = proto_frame_be32(buf + 1);
	out->type = type;
	out->len = len;
	out->total = (size_t)len + 1;

	if (fe ? !proto_fe_type_valid(type) : !proto_be_type_valid(type))
		return PROTO_FRAME_BAD_TYPE;
	if (len < 4)
		return PROTO_FRAME_BAD_LENGTH;
	if (fe && proto_fe_type_bodyless(type) && len > PROTO_SMALL_MSG_MAX)
		return PROTO_FRAME_TOO_LARGE;
	if (len > (authed ? PROTO_LARGE_MSG_MAX : PROTO_PREAUTH_MSG_MAX))
		return PROTO_FRAME_TOO_LARGE;
	return PROTO_FRAME_OK;
}

enum proto_frame_rc proto_frame_startup(const uint8_t *buf, size_t avail, size_t *total)
{
	uint32_t len;

	if (avail < 4)
		return PROTO_FRAME_NEED_MORE;
	len = proto_frame_be32(buf);
	if (len < 8)
		return PROTO_FRAME_BAD_LENGTH;
	if (len > PROTO_STARTUP_MAX)
		return PROTO_FRAME_TOO_LARGE;
	*total = len;
	if (avail < len)
		return PROTO_FRAME_NEED_MORE;
	return PROTO_FRAME_OK;
}

void proto_stream_init(struct proto_stream *s, enum proto_dir dir, bool authed)
{
	s->dir = dir;
	s->authed = authed;
	s->body_left = 0;
	s->cur_type = 0;
}

enum proto_frame_rc proto_stream_next(struct proto_stream *s, const uint8_t *buf, size_t end,
				      size_t *pos, struct proto_msg *m)
{
	struct proto_frame f;
	enum proto_frame_rc rc;
	size_t avail;

	if (s->body_left > 0) {
		size_t skip = end - *pos;

		if (skip > s->body_left)
			skip = s->body_left;
		*pos += skip;
		s->body_left -= (uint32_t)skip;
		if (s->body_left > 0)
			return PROTO_FRAME_NEED_MORE;
	}

	avail = end - *pos;
	rc = proto_frame_header(buf + *pos, avail, s->dir, s->authed, &f);
	if (rc != PROTO_FRAME_OK)
		return rc;
	m->type = f.type;
	m->len = f.len;
	m->total = f.total;
	m->body_len = f.len - 4;
	m->whole = avail >= f.total;
	m->body = m->whole ? buf + *pos + PROTO_HEADER_SIZE : NULL;
	return PROTO_FRAME_OK;
}

/*
 * Whatever part of the message is not in this chunk becomes body_left; the
 * next proto_stream_next call passes over it before reading a new header.
 * total fits body_left because proto_frame_header capped len.
 */
void proto_stream_consume(struct proto_stream *s, size_t end, size_t *pos,
			  const struct proto_msg *m)
{
	size_t avail = end - *pos;

	if (avail >= m->total) {
		*pos += m->total;
		s->body_left = 0;
		return;
	}
	*pos = end;
	s->body_left = (uint32_t)(m->total - avail);
	s->cur_type = m->type;
}

void proto_stream_consume_head(struct proto_stream *s, size_t *pos, const struct proto_msg *m,
			       size_t head)
{
	*pos += head;
	s->body_left = (uint32_t)(m->total - head);
	if (s->body_left > 0)
		s->cur_type = m->type;
}
