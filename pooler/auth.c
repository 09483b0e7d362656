/*
 * auth.c: client authentication policy. Chooses the method from auth_type
 * and what the auth_file stores for the user, drives the md5 or SCRAM
 * exchange (protocol/auth_*), and keeps derived SCRAM secrets in a per-user
 * cache so PBKDF2 runs once per user, not once per login. Unknown users go
 * through the same exchange as known ones and fail the same way, so the
 * answer never tells whether a user exists.
 */
#include "auth.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <uthash.h>

#include "auth_md5.h"
#include "client.h"
#include "config.h"
#include "log.h"
#include "pooler.h"
#include "proto.h"
#include "proto_build.h"
#include "proto_parse.h"
#include "util.h"

struct auth_cached_secret {
	char *user;
	char *stored; /* the auth_file text it was derived from */
	struct scram_secret secret;
	UT_hash_handle hh;
};

/* Module-private cache; cleared on auth_file reload. */
static struct auth_cached_secret *g_scram_cache;
static uint8_t g_mock_nonce[16];
static bool g_mock_nonce_set;

void auth_cache_clear(void)
{
	struct auth_cached_secret *e;
	struct auth_cached_secret *tmp;

	HASH_ITER(hh, g_scram_cache, e, tmp)
	{
		HASH_DEL(g_scram_cache, e);
		free(e->user);
		OPENSSL_cleanse(e->stored, strlen(e->stored));
		free(e->stored);
		OPENSSL_cleanse(&e->secret, sizeof(e->secret));
		free(e);
	}
}

static const char *auth_stored_secret(const char *user)
{
	if (!g_pooler.userlist)
		return NULL;
	return cfg_userlist_find(g_pooler.userlist, user);
}

const char *auth_server_password(const char *user, const char *db_password)
{
	if (db_password)
		return db_password;
	return auth_stored_secret(user);
}

/* A secret for a user who does not exist: the exchange runs as usual and
 * fails at the proof, like a wrong password. */
static void auth_mock_secret(const char *user, struct scram_secret *out)
{
	uint8_t digest[SHA256_DIGEST_LENGTH];
	uint8_t input[sizeof(g_mock_nonce) + 256];
	size_t ulen = strlen(user);

	if (!g_mock_nonce_set) {
		if (RAND_bytes(g_mock_nonce, sizeof(g_mock_nonce)) != 1)
			memset(g_mock_nonce, 0x5a, sizeof(g_mock_nonce));
		g_mock_nonce_set = true;
	}
	if (ulen > 256)
		ulen = 256;
	memcpy(input, g_mock_nonce, sizeof(g_mock_nonce));
	memcpy(input + sizeof(g_mock_nonce), user, ulen);
	SHA256(input, sizeof(g_mock_nonce) + ulen, digest);
	memset(out, 0, sizeof(*out));
	out->iterations = SCRAM_DEFAULT_ITERATIONS;
	out->salt_len = SCRAM_DEFAULT_SALT_LEN;
	memcpy(out->salt, digest, SCRAM_DEFAULT_SALT_LEN);
	if (RAND_bytes(out->stored_key, SCRAM_KEY_LEN) != 1)
		memset(out->stored_key, 0xa5, SCRAM_KEY_LEN);
	memcpy(out->server_key, digest, SCRAM_KEY_LEN);
}

/* The SCRAM secret for a user, derived at most once per stored text. */
static bool auth_scram_secret(const char *user, const char *stored, struct scram_secret *out)
{
	struct auth_cached_secret *e;

	if (scram_is_secret(stored))
		return scram_secret_parse(stored, out);
	if (md5_is_secret(stored))
		return false;
	HASH_FIND_STR(g_scram_cache, user, e);
	if (e && strcmp(e->stored, stored) == 0) {
		*out = e->secret;
		return true;
	}
	if (e) {
		HASH_DEL(g_scram_cache, e);
		free(e->user);
		free(e->stored);
		free(e);
	}
	e = xcalloc(1, sizeof(*e));
	if (scram_secret_from_password(stored, NULL, 0, SCRAM_DEFAULT_ITERATIONS, &e->secret) !=
	    SCRAM_OK) {
		free(e);
		return false;
	}
	e->user = xstrdup(user);
	e->stored = xstrdup(stored);
	HASH_ADD_KEYPTR(hh, g_scram_cache, e->user, strlen(e->user), e);
	*out = e->secret;
	return true;
}

static enum auth_rc auth_send(struct client *c, struct proto_buf *b)
{
	int rc = conn_send_buf(&c->conn, b);

	proto_buf_free(b);
	if (rc < 0) {
		client_close(c, "could not send authentication message: %s", uv_strerror(rc));
		return AUTH_CLOSED;
	}
	return AUTH_CONTINUE;
}

/* AuthenticationOk waits for the welcome so a login costs one write. */
static enum auth_rc auth_ok(struct client *c)
{
	proto_build_auth(client_login_out(c), PROTO_AUTH_OK, NULL, 0);
	return AUTH_DONE;
}

static enum auth_rc auth_fail(struct client *c, const char *user)
{
	log_warn("C-%u: password authentication failed for user \"%s\"", c->id, user);
	client_fatal(c, "28P01", "password authentication failed for user \"%s\"", user);
	return AUTH_FAILED;
}

static enum auth_rc auth_begin_md5(struct client *c)
{
	struct auth_state *st = client_auth_state(c);
	struct proto_buf b;

	if (RAND_bytes(st->md5_salt, sizeof(st->md5_salt)) != 1) {
		client_fatal(c, "58000", "could not generate a salt");
		return AUTH_FAILED;
	}
	c->phase = CLIENT_PH_AUTH_MD5;
	proto_buf_init(&b, 256);
	proto_build_auth(&b, PROTO_AUTH_MD5, st->md5_salt, sizeof(st->md5_salt));
	return auth_send(c, &b);
}

static enum auth_rc auth_begin_scram(struct client *c)
{
	static const char *const mechs[] = { "SCRAM-SHA-256", NULL };
	struct proto_buf b;

	c->phase = CLIENT_PH_AUTH_SCRAM_FIRST;
	proto_buf_init(&b, 256);
	proto_build_auth_sasl(&b, mechs);
	return auth_send(c, &b);
}

static enum auth_rc auth_begin_cleartext(struct client *c)
{
	struct proto_buf b;

	c->phase = CLIENT_PH_AUTH_CLEARTEXT;
	proto_buf_init(&b, 256);
	proto_build_auth(&b, PROTO_AUTH_CLEARTEXT, NULL, 0);
	return auth_send(c, &b);
}

enum auth_rc auth_begin(struct client *c, const char *user, bool admin)
{
	const char *stored = auth_stored_secret(user);

	(void)admin;
	switch (g_pooler.cfg->auth_type) {
	case CFG_AUTH_ANY:
	case CFG_AUTH_TRUST:
		return auth_ok(c);
	case CFG_AUTH_PLAIN:
		return auth_begin_cleartext(c);
	case CFG_AUTH_MD5:
		/* As PostgreSQL: an md5 setting still uses SCRAM for a user
		 * whose stored secret is SCRAM. */
		if (stored && scram_is_secret(stored))
			return auth_begin_scram(c);
		return auth_begin_md5(c);
	case CFG_AUTH_SCRAM:
		return auth_begin_scram(c);
	case CFG_AUTH_CERT:
	case CFG_AUTH_HBA:
	case CFG_AUTH_PAM:
		break;
	}
	client_fatal(c, "28000", "auth_type %s is not supported yet",
		     cfg_auth_type_str(g_pooler.cfg->auth_type));
	return AUTH_FAILED;
}

static bool auth_check_cleartext(const char *user, const char *stored, const char *given)
{
	if (!stored)
		return false;
	if (md5_is_secret(stored)) {
		char secret[MD5_SECRET_LEN + 1];

		md5_secret(given, user, secret);
		return CRYPTO_memcmp(secret, stored, MD5_SECRET_LEN) == 0;
	}
	if (scram_is_secret(stored)) {
		struct scram_secret want;
		struct scram_secret got;

		if (!scram_secret_parse(stored, &want) ||
		    scram_secret_from_password(given, want.salt, want.salt_len, want.iterations,
					       &got) != SCRAM_OK)
			return false;
		return CRYPTO_memcmp(want.stored_key, got.stored_key, SCRAM_KEY_LEN) == 0;
	}
	return strlen(stored) == strlen(given) && CRYPTO_memcmp(stored, given, strlen(given)) == 0;
}

static enum auth_rc auth_scram_first(struct client *c, const char *user, const char *stored,
				     const uint8_t *body, size_t len)
{
	struct auth_state *st = client_auth_state(c);
	struct scram_secret secret;
	const char *mech;
	const uint8_t *data;
	size_t data_len;
	char out[SCRAM_MSG_MAX];
	size_t outlen;
	struct proto_buf b;

	if (!proto_parse_sasl_initial(body, len, &mech, &data, &data_len) ||
	    strcmp(mech, "SCRAM-SHA-256") != 0) {
		client_fatal(c, "08P01", "malformed SASLInitialResponse");
		return AUTH_FAILED;
	}
	if (!stored || !auth_scram_secret(user, stored, &secret))
		auth_mock_secret(user, &secret);
	if (scram_server_first(&st->scram, &secret, NULL, data, data_len, out, sizeof(out),
			       &outlen) != SCRAM_OK) {
		OPENSSL_cleanse(&secret, sizeof(secret));
		client_fatal(c, "08P01", "malformed SCRAM client-first-message");
		return AUTH_FAILED;
	}
	OPENSSL_cleanse(&secret, sizeof(secret));
	c->phase = CLIENT_PH_AUTH_SCRAM_FINAL;
	proto_buf_init(&b, 4096);
	proto_build_auth(&b, PROTO_AUTH_SASL_CONTINUE, out, outlen);
	return auth_send(c, &b);
}

static enum auth_rc auth_scram_final(struct client *c, const char *user, const char *stored,
				     const uint8_t *body, size_t len)
{
	struct auth_state *st = client_auth_state(c);
	char out[SCRAM_MSG_MAX];
	size_t outlen;
	int rc;

	rc = scram_server_final(&st->scram, body, len, out, sizeof(out), &outlen);
	if (rc == SCRAM_EPROTO) {
		client_fatal(c, "08P01", "malformed SCRAM client-final-message");
		return AUTH_FAILED;
	}
	if (rc != SCRAM_OK || !stored)
		return auth_fail(c, user);
	proto_build_auth(client_login_out(c), PROTO_AUTH_SASL_FINAL, out, outlen);
	return auth_ok(c);
}

enum auth_rc auth_on_message(struct client *c, const char *user, const uint8_t *body, size_t len)
{
	const char *stored = auth_stored_secret(user);
	const char *password;

	switch (c->phase) {
	case CLIENT_PH_AUTH_CLEARTEXT:
		if (!proto_parse_password(body, len, &password)) {
			client_fatal(c, "08P01", "malformed password message");
			return AUTH_FAILED;
		}
		if (!auth_check_cleartext(user, stored, password))
			return auth_fail(c, user);
		return auth_ok(c);
	case CLIENT_PH_AUTH_MD5:
		if (!proto_parse_password(body, len, &password)) {
			client_fatal(c, "08P01", "malformed password message");
			return AUTH_FAILED;
		}
		if (!stored || scram_is_secret(stored) ||
		    !md5_verify(stored, user, client_auth_state(c)->md5_salt, password))
			return auth_fail(c, user);
		return auth_ok(c);
	case CLIENT_PH_AUTH_SCRAM_FIRST:
		return auth_scram_first(c, user, stored, body, len);
	case CLIENT_PH_AUTH_SCRAM_FINAL:
		return auth_scram_final(c, user, stored, body, len);
	case CLIENT_PH_STARTUP:
	case CLIENT_PH_READY:
	case CLIENT_PH_CANCEL:
		break;
	}
	client_fatal(c, "08P01", "unexpected password message");
	return AUTH_FAILED;
}
