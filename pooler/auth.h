/*
 * auth.h: how pgmux checks a client's identity (auth_type against the
 * auth_file) and which password it uses to log in to PostgreSQL.
 * SCRAM secrets derived from plain passwords are computed once per user and
 * cached, so a login storm costs HMACs, not PBKDF2 rounds.
 */
#ifndef PGMUX_AUTH_H
#define PGMUX_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth_scram.h"

struct client;

enum auth_rc {
	AUTH_DONE,     /* authenticated */
	AUTH_CONTINUE, /* a challenge was sent; wait for the client's answer */
	AUTH_FAILED,   /* the client was told (28P01) and is closing */
	AUTH_CLOSED,   /* the client is gone */
};

/* State that lives only while a client authenticates. */
struct auth_state {
	uint8_t md5_salt[4];
	struct scram_server scram;
};

/* After the startup packet: picks the method and sends the first message. */
enum auth_rc auth_begin(struct client *c, const char *user, bool admin);
/* A PasswordMessage / SASL message arrived (body after the 5-byte header). */
enum auth_rc auth_on_message(struct client *c, const char *user, const uint8_t *body,
			     size_t len);
/* The password pgmux uses to log in to PostgreSQL as user, or NULL. */
const char *auth_server_password(const char *user, const char *db_password);
/* Drops cached secrets (auth_file reload). */
void auth_cache_clear(void);

#endif /* PGMUX_AUTH_H */
