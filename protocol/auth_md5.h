/*
 * auth_md5.h: PostgreSQL's md5 password scheme, both directions.
 * A stored md5 secret is "md5" + hex(md5(password || user)); the wire
 * response is "md5" + hex(md5(hex_of_secret || salt)).
 */
#ifndef PGMUX_AUTH_MD5_H
#define PGMUX_AUTH_MD5_H

#include <stdbool.h>
#include <stdint.h>

#define MD5_SECRET_LEN 35 /* "md5" + 32 hex digits, without NUL */

/* out receives MD5_SECRET_LEN chars and a NUL. */
void md5_secret(const char *password, const char *user, char out[MD5_SECRET_LEN + 1]);
/* Whether s looks like a stored md5 secret ("md5" + 32 lowercase hex). */
bool md5_is_secret(const char *s);
/* The PasswordMessage contents for an md5 challenge. `secret` is an md5
 * secret (md5_is_secret) derived for this user. */
void md5_response(const char *secret, const uint8_t salt[4], char out[MD5_SECRET_LEN + 1]);
/*
 * Checks a client's md5 response. `stored` is what the auth file holds:
 * a plain password or an md5 secret. Constant-time in the response.
 */
bool md5_verify(const char *stored, const char *user, const uint8_t salt[4],
		const char *response);

#endif /* PGMUX_AUTH_MD5_H */
