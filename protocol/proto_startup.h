/*
 * proto_startup.h: parsing of the untyped packets a client may open with:
 * StartupMessage (protocol 3.0), SSLRequest, GSSENCRequest, CancelRequest.
 * The parsed struct points into the caller's packet; it copies nothing.
 */
#ifndef PGMUX_PROTO_STARTUP_H
#define PGMUX_PROTO_STARTUP_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_STARTUP_MAX_PARAMS 64

enum proto_startup_kind {
	PROTO_STARTUP_V3,
	PROTO_STARTUP_SSL,
	PROTO_STARTUP_GSSENC,
	PROTO_STARTUP_CANCEL,
};

enum proto_startup_rc {
	PROTO_STARTUP_OK = 0,
	PROTO_STARTUP_BAD_LENGTH,      /* < 8, > PROTO_STARTUP_MAX, or != field */
	PROTO_STARTUP_BAD_VERSION,     /* not 3.0 and not a known request code */
	PROTO_STARTUP_NO_USER,         /* StartupMessage without "user" */
	PROTO_STARTUP_NOT_TERMINATED,  /* a name or value without NUL, or no final NUL */
	PROTO_STARTUP_TOO_MANY_PARAMS, /* more than PROTO_STARTUP_MAX_PARAMS pairs */
	PROTO_STARTUP_BAD_CANCEL,      /* CancelRequest not exactly 16 bytes */
	PROTO_STARTUP_BAD_PARAM,       /* empty parameter name or duplicate user/database */
};

struct proto_startup_param {
	const char *name;
	const char *value;
};

struct proto_startup {
	enum proto_startup_kind kind;
	uint32_t version; /* raw code field */
	/* PROTO_STARTUP_V3 only: */
	const char *user;             /* never NULL after OK */
	const char *database;         /* defaults to user, as PostgreSQL does */
	const char *options;          /* NULL if absent */
	const char *application_name; /* NULL if absent */
	size_t nparams;               /* every pair, user and database included */
	struct proto_startup_param params[PROTO_STARTUP_MAX_PARAMS];
	/* PROTO_STARTUP_CANCEL only: */
	uint32_t cancel_pid;
	uint32_t cancel_key;
};

/*
 * Parses one whole packet (pkt[0..len), starting with its length field).
 * The caller has framed it with proto_frame_startup. Strings in *out point
 * into pkt and stay valid as long as pkt does.
 */
enum proto_startup_rc proto_startup_parse(const uint8_t *pkt, size_t len,
					  struct proto_startup *out);
const char *proto_startup_rc_str(enum proto_startup_rc rc);

#endif /* PGMUX_PROTO_STARTUP_H */
