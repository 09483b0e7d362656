/*
 * proto_build.h: builders for the messages pgmux itself originates.
 * A proto_buf grows on the heap up to a fixed maximum; any overflow or
 * allocation failure sets a sticky `failed` flag instead of returning an
 * error from every put, so call sites check once (proto_buf_ok) before
 * sending. The buffer owns its bytes until proto_buf_steal hands them on.
 */
#ifndef PGMUX_PROTO_BUILD_H
#define PGMUX_PROTO_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct proto_buf {
	uint8_t *data;    /* heap, owned by the buf */
	size_t len;       /* bytes written */
	size_t cap;       /* bytes allocated */
	size_t max;       /* never grow beyond this */
	size_t msg_start; /* offset of the message being built (for its length) */
	bool failed;      /* sticky: an overflow or OOM happened */
};

#define PROTO_BUF_DEFAULT_MAX (1u << 20)

void proto_buf_init(struct proto_buf *b, size_t max);
void proto_buf_free(struct proto_buf *b);
void proto_buf_reset(struct proto_buf *b); /* len = 0, failed = false */
static inline bool proto_buf_ok(const struct proto_buf *b) { return !b->failed; }
/* Hands the bytes to the caller (who must free() them); the buf is reset
 * to empty. Returns NULL if the buf failed or is empty. */
uint8_t *proto_buf_steal(struct proto_buf *b, size_t *len);

/* Low level: a typed message (type != 0) or an untyped startup-phase
 * packet (type == 0). proto_end patches the length field. */
void proto_begin(struct proto_buf *b, uint8_t type);
void proto_put_u8(struct proto_buf *b, uint8_t v);
void proto_put_u16(struct proto_buf *b, uint16_t v);
void proto_put_u32(struct proto_buf *b, uint32_t v);
void proto_put_cstr(struct proto_buf *b, const char *s); /* with NUL */
void proto_put_bytes(struct proto_buf *b, const void *p, size_t n);
void proto_end(struct proto_buf *b);

/* Messages pgmux sends to clients. `detail` may be NULL. */
void proto_build_error(struct proto_buf *b, const char *severity, const char *sqlstate,
		       const char *message, const char *detail);
void proto_build_notice(struct proto_buf *b, const char *severity, const char *sqlstate,
			const char *message);
void proto_build_parameter_status(struct proto_buf *b, const char *name, const char *value);
void proto_build_backend_key_data(struct proto_buf *b, uint32_t pid, uint32_t key);
void proto_build_ready_for_query(struct proto_buf *b, uint8_t tx_status);
/* Authentication request: code plus raw payload (salt, SASL data, ...). */
void proto_build_auth(struct proto_buf *b, uint32_t code, const void *payload, size_t len);
/* AuthenticationSASL listing mechanisms (NULL-terminated array). */
void proto_build_auth_sasl(struct proto_buf *b, const char *const *mechanisms);
/*
 * NegotiateProtocolVersion: the newest protocol version pgmux speaks for the
 * major version the client asked for, then the names of the n protocol
 * options ("_pq_.*") from its startup packet that it did not recognize.
 */
void proto_build_negotiate_version(struct proto_buf *b, uint32_t newest,
				   const char *const *options, size_t n);
/* Admin console result sets: text columns; values[i] == NULL is SQL NULL.
 * type_oids may be NULL (all text, OID 25). */
void proto_build_row_description(struct proto_buf *b, size_t ncols, const char *const *names,
				 const uint32_t *type_oids);
void proto_build_data_row(struct proto_buf *b, size_t ncols, const char *const *values);
void proto_build_command_complete(struct proto_buf *b, const char *tag);
void proto_build_empty_query(struct proto_buf *b);

/* Messages pgmux sends to servers. `params` is a NULL-terminated array of
 * name, value, name, value, ... */
void proto_build_startup(struct proto_buf *b, const char *const *params);
void proto_build_password(struct proto_buf *b, const char *password);
void proto_build_sasl_initial(struct proto_buf *b, const char *mechanism, const void *data,
			      size_t len);
void proto_build_sasl_response(struct proto_buf *b, const void *data, size_t len);
void proto_build_query(struct proto_buf *b, const char *sql);
void proto_build_terminate(struct proto_buf *b);
void proto_build_cancel_request(struct proto_buf *b, uint32_t pid, uint32_t key);
/* Extended protocol, for prepared statements pgmux maps (prepared.c).
 * rest: the Parse body after the name (query, parameter types). */
void proto_build_parse(struct proto_buf *b, const char *name, const void *rest, size_t len);
/* Close and Describe: kind 'S' (statement) or 'P' (portal). */
void proto_build_close(struct proto_buf *b, uint8_t kind, const char *name);
void proto_build_describe(struct proto_buf *b, uint8_t kind, const char *name);
void proto_build_flush(struct proto_buf *b);
void proto_build_sync(struct proto_buf *b);
void proto_build_parse_complete(struct proto_buf *b);
void proto_build_close_complete(struct proto_buf *b);

#endif /* PGMUX_PROTO_BUILD_H */
