/*
 * tls.h: TLS for one connection over memory BIOs, so OpenSSL never touches
 * a socket and never blocks: the event loop feeds it the ciphertext it read
 * (tls_feed), takes out the ciphertext it must write (tls_out_take), and in
 * between the handshake, reads and writes are plain function calls that
 * say "need more bytes" instead of waiting for them.
 *
 * Contexts (SSL_CTX) are built from the [pgmux] client_tls_* / server_tls_*
 * keys and are reference-counted by OpenSSL, so a RELOAD can swap in a new
 * one while connections made with the old one carry on.
 */
#ifndef PGMUX_TLS_H
#define PGMUX_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* libpq's sslmode values, which PgBouncer's *_tls_sslmode keys reuse. */
enum tls_sslmode {
	TLS_MODE_DISABLE,
	TLS_MODE_ALLOW,
	TLS_MODE_PREFER,
	TLS_MODE_REQUIRE,
	TLS_MODE_VERIFY_CA,
	TLS_MODE_VERIFY_FULL,
};

/* What a context is built from; NULL strings mean "not set". */
struct tls_settings {
	enum tls_sslmode mode;
	const char *key_file;
	const char *cert_file;
	const char *ca_file;
	const char *protocols;     /* "secure", "all", "tlsv1.2,tlsv1.3", ... */
	const char *ciphers;       /* TLS 1.2 and older; "default", "secure", "fast", "normal", "all" or an OpenSSL list */
	const char *tls13_ciphers; /* TLS 1.3 suites; NULL: OpenSSL's */
};

/*
 * Builds a context. accept_side: pgmux is the TLS server (toward clients);
 * otherwise the TLS client (toward PostgreSQL), verifying the peer against
 * ca_file when mode is verify-ca or verify-full. Returns NULL with a reason
 * in err (file names included) when a file or setting is unusable.
 */
SSL_CTX *tls_ctx_new(bool accept_side, const struct tls_settings *set, char *err, size_t errlen);
void tls_ctx_free(SSL_CTX *ctx);

enum tls_rc {
	TLS_OK,        /* done (handshake finished, bytes read) */
	TLS_WANT_MORE, /* needs ciphertext from the peer first */
	TLS_EOF,       /* the peer sent close_notify */
	TLS_FAIL,      /* protocol or verification error: tls_last_error() says which */
};

struct tls {
	SSL *ssl;
	BIO *in;  /* ciphertext from the peer, waiting for OpenSSL */
	BIO *out; /* ciphertext from OpenSSL, waiting for the socket */
	bool accept_side;
	bool established;
	char error[160]; /* why the last TLS_FAIL happened */
};

/*
 * Starts a session on ctx. verify_host: for the connect side with
 * verify-full, the name the peer's certificate must carry (also sent as
 * SNI); NULL otherwise. Returns 0, or -1 with t->error set.
 */
int tls_start(struct tls *t, SSL_CTX *ctx, bool accept_side, const char *verify_host);
/* Frees the session (no close_notify: the socket is closing anyway). */
void tls_end(struct tls *t);

/* Ciphertext read from the socket. Memory BIOs take everything. */
void tls_feed(struct tls *t, const void *p, size_t n);
/* Advances the handshake; TLS_OK once established. */
enum tls_rc tls_handshake(struct tls *t);
/* Decrypts up to cap bytes into out; *got is how many (0 with WANT_MORE). */
enum tls_rc tls_read(struct tls *t, void *out, size_t cap, size_t *got);
/* Whether decrypted or undecrypted bytes are still held inside: a read
 * may succeed without new ciphertext. */
bool tls_has_input(const struct tls *t);
/* Encrypts all n bytes (into the out BIO). 0, or -1 with t->error set. */
int tls_write(struct tls *t, const void *p, size_t n);
/* Ciphertext waiting for the socket, and taking it (returns bytes taken). */
size_t tls_out_pending(const struct tls *t);
size_t tls_out_take(struct tls *t, void *buf, size_t cap);

/* "TLSv1.3/TLS_AES_256_GCM_SHA384" for SHOW CLIENTS/SERVERS; "" before
 * the handshake is done. */
void tls_describe(const struct tls *t, char *buf, size_t len);

/*
 * The CommonName of the peer's certificate, if it sent one that verified
 * against the CA file; false otherwise (auth_type = cert, hba "cert").
 */
bool tls_peer_cn(const struct tls *t, char *out, size_t len);

/* Parses an sslmode name; -1 if unknown. */
int tls_sslmode_parse(const char *s);
const char *tls_sslmode_str(enum tls_sslmode m);

#endif /* PGMUX_TLS_H */
