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

#endif /* PGMUX_PROTO_PARSE_H */
