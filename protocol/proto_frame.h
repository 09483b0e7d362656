/*
 * proto_frame.h: message framing. Validates headers against per-type and
 * per-phase caps, and walks a stream that arrives in arbitrary chunks so the
 * forwarding path can find message boundaries without copying bodies.
 */
#ifndef PGMUX_PROTO_FRAME_H
#define PGMUX_PROTO_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum proto_dir {
	PROTO_DIR_FRONTEND, /* bytes sent by a client */
	PROTO_DIR_BACKEND,  /* bytes sent by a server */
};

enum proto_frame_rc {
	PROTO_FRAME_OK = 0,
	PROTO_FRAME_NEED_MORE,  /* not enough bytes yet to decide */
	PROTO_FRAME_BAD_LENGTH, /* length field < 4 (or < 8 for startup packets) */
	PROTO_FRAME_TOO_LARGE,  /* length over the cap for this type and phase */
	PROTO_FRAME_BAD_TYPE,   /* type byte not valid for this direction */
};

const char *proto_frame_rc_str(enum proto_frame_rc rc);

struct proto_frame {
	uint8_t type;
	uint32_t len;  /* value of the length field (counts itself) */
	size_t total;  /* bytes on the wire: 1 + len */
};

/*
 * Validates the typed header at buf[0..avail). Needs only the 5 header
 * bytes, not the body. Caps: Sync/Flush/Terminate/CopyDone from a client must
 * have len == 4; before authentication (authed == false) any message is
 * capped at PROTO_PREAUTH_MSG_MAX; otherwise PROTO_LARGE_MSG_MAX.
 */
enum proto_frame_rc proto_frame_header(const uint8_t *buf, size_t avail, enum proto_dir dir,
				       bool authed, struct proto_frame *out);

/*
 * Untyped startup-phase packet (StartupMessage, SSLRequest, GSSENCRequest,
 * CancelRequest): int32 length then the rest. Returns NEED_MORE until the
 * whole packet is present; *total is set once the length is known and valid
 * (8 <= len <= PROTO_STARTUP_MAX).
 */
enum proto_frame_rc proto_frame_startup(const uint8_t *buf, size_t avail, size_t *total);

/*
 * Incremental stream walker for the forwarding path.
 *
 * Usage, for each chunk buf[0..end):
 *   size_t pos = 0;
 *   for (;;) {
 *       struct proto_msg m;
 *       rc = proto_stream_next(&s, buf, end, &pos, &m);
 *       if (rc == PROTO_FRAME_NEED_MORE) break;      // keep buf[pos..end)
 *       if (rc != PROTO_FRAME_OK) -> protocol error
 *       // m describes the message starting at buf[pos]; m.whole says
 *       // whether all m.total bytes are in this chunk (then m.body is set).
 *       // Either stop here (to wait for the whole message: keep buf[pos..end))
 *       // or pass over it:
 *       proto_stream_consume(&s, end, &pos, &m);
 *   }
 *
 * proto_stream_next first passes over the remainder of a message body that
 * a previous proto_stream_consume left pending (s->body_left), so bodies
 * larger than any buffer flow through untouched.
 */
struct proto_stream {
	enum proto_dir dir;
	bool authed;        /* selects the caps, see proto_frame_header */
	uint32_t body_left; /* bytes of the current message still to pass over */
	uint8_t cur_type;   /* type of the message being passed over */
};

struct proto_msg {
	uint8_t type;
	uint32_t len;        /* length field */
	size_t total;        /* 1 + len */
	bool whole;          /* all total bytes are in the chunk */
	const uint8_t *body; /* first body byte, valid only when whole */
	size_t body_len;     /* len - 4 */
};

void proto_stream_init(struct proto_stream *s, enum proto_dir dir, bool authed);
enum proto_frame_rc proto_stream_next(struct proto_stream *s, const uint8_t *buf, size_t end,
				      size_t *pos, struct proto_msg *m);
void proto_stream_consume(struct proto_stream *s, size_t end, size_t *pos,
			  const struct proto_msg *m);
/*
 * Passes over only the first `head` bytes of m (head <= bytes at hand and
 * <= m->total); the rest of it becomes body_left, so the next
 * proto_stream_next passes over it. For a message whose start is rewritten
 * while its tail flows through unchanged.
 */
void proto_stream_consume_head(struct proto_stream *s, size_t *pos, const struct proto_msg *m,
			       size_t head);

#endif /* PGMUX_PROTO_FRAME_H */
