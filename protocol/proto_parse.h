/*
 * proto_parse.h: decoders for the few typed messages pgmux must understand.
 * Each takes the message body (after the 5-byte header) and its length, and
 * returns false on any malformation; output strings point into the body.
 */
#ifndef PGMUX_PROTO_PARSE_H
#define PGMUX_PROTO_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 'R': authentication request code and what follows it. */
bool proto_parse_auth(const uint8_t *body, size_t len, uint32_t *code, const uint8_t **payload,
		      size_t *payload_len);
/* Whether an AuthenticationSASL payload lists `mechanism`. */
bool proto_sasl_has_mechanism(const uint8_t *payload, size_t len, const char *mechanism);
/* 'S' from a server. */
bool proto_parse_parameter_status(const uint8_t *body, size_t len, const char **name,
				  const char **value);
/* 'K'. */
bool proto_parse_backend_key_data(const uint8_t *body, size_t len, uint32_t *pid, uint32_t *key);
/* 'Z'. */
bool proto_parse_ready_for_query(const uint8_t *body, size_t len, uint8_t *status);

/* 'E' / 'N': the fields pgmux uses. Missing fields are NULL. */
struct proto_error_fields {
	const char *severity; /* 'V' (non-localized) if present, else 'S' */
	const char *sqlstate; /* 'C' */
	const char *message;  /* 'M' */
	const char *detail;   /* 'D' */
	const char *hint;     /* 'H' */
};
bool proto_parse_error(const uint8_t *body, size_t len, struct proto_error_fields *out);

/* 'p' from a client, by what pgmux asked for. */
bool proto_parse_password(const uint8_t *body, size_t len, const char **password);
/* SASLInitialResponse: mechanism name, then int32 length (-1 = none) and data. */
bool proto_parse_sasl_initial(const uint8_t *body, size_t len, const char **mechanism,
			      const uint8_t **data, size_t *data_len);

/*
 * Extended-protocol messages from clients whose statement name pgmux maps
 * (prepared.c). All of them leave the rest of the message alone.
 */
/* 'P': statement name, then the rest of the body (query NUL, int16 count,
 * count x int32 type OIDs), checked for structure and exact length. */
bool proto_parse_parse(const uint8_t *body, size_t len, const char **name, size_t *name_len,
		       const uint8_t **rest, size_t *rest_len);
enum proto_head_rc {
	PROTO_HEAD_OK,
	PROTO_HEAD_NEED_MORE, /* the names end beyond the bytes at hand */
	PROTO_HEAD_BAD,       /* the body ends before the names do */
};
/*
 * 'B': portal and statement names from the first avail bytes of a body of
 * body_len bytes (a Bind may be larger than any buffer; its names come
 * first). *head_len is the body bytes the two names take, NULs included.
 */
enum proto_head_rc proto_parse_bind_head(const uint8_t *body, size_t avail, size_t body_len,
					 const char **portal, const char **stmt,
					 size_t *head_len);
/* 'D' and 'C': what ('S' statement or 'P' portal) and its name. */
bool proto_parse_target(const uint8_t *body, size_t len, uint8_t *kind, const char **name);

#endif /* PGMUX_PROTO_PARSE_H */
