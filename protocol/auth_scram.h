/*
 * auth_scram.h: SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL speaks it,
 * without channel binding. The server side lets pgmux verify clients; the
 * client side lets pgmux log in to PostgreSQL. Crypto is OpenSSL's.
 * PBKDF2 is the expensive step: scram_secret_from_password and
 * scram_keys_from_password do it once and their results are meant to be
 * cached by the caller (or computed off the event loop).
 *
 * Pass-through: a successful scram_server_final leaves the client's
 * ClientKey in the scram_server state. With it and the secret it was checked
 * against, scram_client_first_passthrough logs in to a server storing the
 * same secret (same salt and iterations) without knowing the password.
 */
#ifndef PGMUX_AUTH_SCRAM_H
#define PGMUX_AUTH_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRAM_KEY_LEN 32
#define SCRAM_SALT_MAX 64
#define SCRAM_NONCE_MAX 128
#define SCRAM_MSG_MAX 1024
#define SCRAM_DEFAULT_ITERATIONS 4096
#define SCRAM_DEFAULT_SALT_LEN 16

enum scram_rc {
	SCRAM_OK = 0,
	SCRAM_EPROTO = -1, /* malformed message from the peer */
	SCRAM_EPROOF = -2, /* wrong password (bad proof or server signature) */
	SCRAM_ECRYPTO = -3, /* OpenSSL failed */
	SCRAM_ESPACE = -4, /* output buffer too small */
	SCRAM_ESTATE = -5, /* call out of order */
	SCRAM_ESECRET = -6, /* pass-through: the server's salt or iterations are not the secret's */
};

/* What a server stores for a user: never the password itself. */
struct scram_secret {
	int iterations;
	size_t salt_len;
	uint8_t salt[SCRAM_SALT_MAX];
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
};

/* The PBKDF2 parameters of a secret, or of a server-first-message. */
struct scram_params {
	int iterations;
	size_t salt_len;
	uint8_t salt[SCRAM_SALT_MAX];
};

/* RFC 5802 §3: ClientKey proves the password; StoredKey = H(ClientKey). */
struct scram_keys {
	uint8_t client_key[SCRAM_KEY_LEN];
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
};

/* Parses "SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>". */
bool scram_secret_parse(const char *text, struct scram_secret *out);
bool scram_is_secret(const char *text);
/* The inverse of scram_secret_parse, for generating auth file entries.
 * out is NUL-terminated; SCRAM_ESPACE if outcap is too small, SCRAM_EPROTO
 * for a secret scram_secret_parse could not have produced. */
int scram_secret_format(const struct scram_secret *secret, char *out, size_t outcap,
			size_t *outlen);
/* Derives a secret from a password (PBKDF2-HMAC-SHA-256, `iterations` rounds).
 * salt == NULL picks a random salt of SCRAM_DEFAULT_SALT_LEN bytes. */
int scram_secret_from_password(const char *password, const uint8_t *salt, size_t salt_len,
			       int iterations, struct scram_secret *out);
/* All three keys for a password (PBKDF2 with the given parameters).
 * SCRAM_EPROTO for unusable parameters, SCRAM_ECRYPTO if OpenSSL fails. */
int scram_keys_from_password(const char *password, const struct scram_params *params,
			     struct scram_keys *out);
/* Whether two sets of PBKDF2 parameters are the same (salt and iterations). */
bool scram_params_equal(const struct scram_params *a, const struct scram_params *b);
/* The parameters a secret was made with. */
void scram_secret_params(const struct scram_secret *secret, struct scram_params *out);

/* pgmux as SCRAM server, verifying a client. */
enum scram_server_state { SCRAM_SERVER_INIT, SCRAM_SERVER_SENT_FIRST, SCRAM_SERVER_DONE };
struct scram_server {
	enum scram_server_state state;
	struct scram_secret secret;
	char nonce[SCRAM_NONCE_MAX + 1];             /* client nonce + server nonce */
	char client_first_bare[SCRAM_MSG_MAX + 1];
	char server_first[SCRAM_MSG_MAX + 1];
	char gs2_flag; /* 'n' or 'y' from the client-first gs2 header; c= must match */
	/* After a successful scram_server_final: the ClientKey the client proved
	 * (proof XOR ClientSignature), for pass-through. Cleanse the struct. */
	uint8_t client_key[SCRAM_KEY_LEN];
};
/*
 * Takes the client-first-message (data of SASLInitialResponse) and writes
 * the server-first-message into out. server_nonce == NULL makes a random one
 * (tests pass a fixed one).
 */
int scram_server_first(struct scram_server *s, const struct scram_secret *secret,
		       const char *server_nonce, const uint8_t *client_first, size_t len,
		       char *out, size_t outcap, size_t *outlen);
/*
 * Takes the client-final-message, verifies the proof in constant time, and
 * on success writes the server-final-message ("v=...") into out.
 * Returns SCRAM_EPROOF for a wrong password.
 */
int scram_server_final(struct scram_server *s, const uint8_t *client_final, size_t len,
		       char *out, size_t outcap, size_t *outlen);

/*
 * pgmux as SCRAM client, logging in to PostgreSQL, either with a password or
 * (pass-through) with the keys of a secret plus a client's ClientKey.
 */
enum scram_client_state { SCRAM_CLIENT_INIT, SCRAM_CLIENT_SENT_FIRST,
			  SCRAM_CLIENT_GOT_SERVER_FIRST, SCRAM_CLIENT_SENT_FINAL,
			  SCRAM_CLIENT_DONE };
struct scram_client {
	enum scram_client_state state;
	bool pass_through;             /* keys below, no password */
	char password[256];
	struct scram_keys keys;        /* pass-through: ClientKey and the secret's keys */
	struct scram_params expect;    /* pass-through: the secret's salt and iterations */
	char client_nonce[SCRAM_NONCE_MAX + 1];
	char client_first_bare[SCRAM_MSG_MAX + 1];
	char server_first[SCRAM_MSG_MAX + 1]; /* kept from read_server_first to final_keys */
	size_t server_first_len;
	uint8_t server_signature[SCRAM_KEY_LEN];
};
/* Writes the client-first-message ("n,,n=,r=<nonce>"). client_nonce == NULL
 * makes a random one. */
int scram_client_first(struct scram_client *c, const char *password, const char *client_nonce,
		       char *out, size_t outcap, size_t *outlen);
/*
 * The same for pass-through: secret is what the client was verified against
 * and client_key what it proved. SCRAM_EPROOF if SHA-256(client_key) is not
 * the secret's StoredKey.
 */
int scram_client_first_passthrough(struct scram_client *c, const struct scram_secret *secret,
				   const uint8_t client_key[SCRAM_KEY_LEN],
				   const char *client_nonce, char *out, size_t outcap,
				   size_t *outlen);
/*
 * Takes the server-first-message, writes the client-final-message: both
 * steps below in one call (a password costs one PBKDF2 here). Nothing
 * changes on failure.
 */
int scram_client_final(struct scram_client *c, const uint8_t *server_first, size_t len,
		       char *out, size_t outcap, size_t *outlen);
/*
 * Step one: checks the server-first-message and reports the salt and
 * iterations the server wants, so the caller can fetch (or compute) the keys.
 * In pass-through they must be the secret's, else SCRAM_ESECRET.
 */
int scram_client_read_server_first(struct scram_client *c, const uint8_t *server_first,
				   size_t len, struct scram_params *params);
/* Step two: writes the client-final-message from keys (NULL in pass-through). */
int scram_client_final_keys(struct scram_client *c, const struct scram_keys *keys, char *out,
			    size_t outcap, size_t *outlen);
/* Takes the server-final-message and checks the server's signature. */
int scram_client_verify(struct scram_client *c, const uint8_t *server_final, size_t len);

#endif /* PGMUX_AUTH_SCRAM_H */
