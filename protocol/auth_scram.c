/*
 * auth_scram.c: SCRAM-SHA-256 without channel binding, as PostgreSQL speaks
 * it. The server side verifies pgmux's clients against stored secrets; the
 * client side logs pgmux in to PostgreSQL. Peer messages arrive with an
 * explicit length and no NUL, so every parse below is bounded by a cursor.
 */
#include "auth_scram.h"

#include "proto_cursor.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

#define SCRAM_SECRET_PREFIX "SCRAM-SHA-256$"
#define SCRAM_RAW_NONCE_LEN 18 /* 24 base64 characters, no padding */
#define SCRAM_GS2_LEN 3        /* "n,," or "y,," */
#define SCRAM_B64_LEN(n) (4 * (((n) + 2) / 3))
#define SCRAM_AUTH_MSG_MAX (3 * SCRAM_MSG_MAX + 2)

/* c= carries base64 of the gs2 header the client sent. */
#define SCRAM_CBIND_N "biws" /* "n,," */
#define SCRAM_CBIND_Y "eSws" /* "y,," */

/* Bounded text output with a sticky failure, always NUL-terminated. */
struct scram_text {
	char *p;
	size_t cap; /* including the NUL */
	size_t len;
	bool failed;
};

static void scram_text_init(struct scram_text *t, char *p, size_t cap)
{
	t->p = p;
	t->cap = cap;
	t->len = 0;
	t->failed = cap == 0;
	if (cap > 0)
		p[0] = '\0';
}

static void scram_text_put(struct scram_text *t, const void *s, size_t n)
{
	if (t->failed)
		return;
	if (n >= t->cap - t->len) {
		t->failed = true;
		return;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static void scram_text_puts(struct scram_text *t, const char *s)
{
	scram_text_put(t, s, strlen(s));
}

static void scram_text_put_b64(struct scram_text *t, const uint8_t *in, size_t n)
{
	size_t need = SCRAM_B64_LEN(n);

	if (t->failed)
		return;
	if (n > INT_MAX / 2 || need >= t->cap - t->len) {
		t->failed = true;
		return;
	}
	/* EVP_EncodeBlock writes the NUL too, which the check left room for. */
	EVP_EncodeBlock((unsigned char *)t->p + t->len, in, (int)n);
	t->len += need;
}

static void scram_text_put_uint(struct scram_text *t, unsigned long v)
{
	char digits[24];
	size_t i = sizeof(digits);

	do {
		digits[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	scram_text_put(t, digits + i, sizeof(digits) - i);
}

/* Copies a finished message to the caller's buffer, NUL included. */
static int scram_output(const struct scram_text *t, char *out, size_t outcap, size_t *outlen)
{
	if (t->failed || t->len >= outcap)
		return SCRAM_ESPACE;
	memcpy(out, t->p, t->len + 1);
	*outlen = t->len;
	return SCRAM_OK;
}

/* Encoding helpers. */

static bool scram_b64_char(uint8_t ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/';
}

/*
 * Strict base64 decoding. EVP_DecodeBlock skips whitespace, does not treat
 * '=' as the end, and always returns a multiple of 3 bytes, so the input is
 * validated here first and the padding subtracted to get the real length.
 */
static bool scram_b64_decode(const uint8_t *in, size_t n, uint8_t *out, size_t outcap,
			     size_t *outlen)
{
	uint8_t tmp[SCRAM_MSG_MAX];
	size_t pad = 0, i, raw;
	int rc;

	if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof(tmp))
		return false;
	if (in[n - 1] == '=') {
		pad = 1;
		if (in[n - 2] == '=')
			pad = 2;
	}
	for (i = 0; i < n - pad; i++) {
		if (!scram_b64_char(in[i]))
			return false;
	}
	rc = EVP_DecodeBlock(tmp, in, (int)n);
	if (rc < 0 || (size_t)rc != n / 4 * 3)
		return false;
	raw = (size_t)rc - pad;
	if (raw > outcap) {
		OPENSSL_cleanse(tmp, (size_t)rc);
		return false;
	}
	memcpy(out, tmp, raw);
	*outlen = raw;
	OPENSSL_cleanse(tmp, (size_t)rc);
	return true;
}

/* RFC 5802: printable = %x21-2B / %x2D-7E, i.e. visible ASCII but ','. */
static bool scram_nonce_valid(const void *p, size_t n)
{
	const uint8_t *s = p;
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	}
	return true;
}

/* Decimal 1..INT_MAX, digits only. */
static bool scram_parse_iterations(const uint8_t *p, size_t n, int *out)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 10)
		return false;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	if (v < 1 || v > INT_MAX)
		return false;
	*out = (int)v;
	return true;
}

static int scram_random_nonce(char out[SCRAM_B64_LEN(SCRAM_RAW_NONCE_LEN) + 1])
{
	uint8_t raw[SCRAM_RAW_NONCE_LEN];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return SCRAM_ECRYPTO;
	EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw));
	return SCRAM_OK;
}

/* Crypto primitives. */

static bool scram_hmac(const uint8_t *key, size_t keylen, const void *data, size_t n,
		       uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int len = 0;

	return HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &len) && len == SCRAM_KEY_LEN;
}

static bool scram_sha256(const void *data, size_t n, uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int len = 0;

	return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 && len == SCRAM_KEY_LEN;
}

/*
 * SaltedPassword, then ClientKey, StoredKey and ServerKey (RFC 5802 §3).
 * The password is used as given: PostgreSQL's SASLprep is the identity for
 * ASCII passwords, and pgmux does not normalize others.
 */
static bool scram_derive_keys(const char *password, const uint8_t *salt, size_t salt_len,
			      int iterations, uint8_t client_key[SCRAM_KEY_LEN],
			      uint8_t stored_key[SCRAM_KEY_LEN], uint8_t server_key[SCRAM_KEY_LEN])
{
	static const char client_label[] = "Client Key";
	static const char server_label[] = "Server Key";
	uint8_t salted[SCRAM_KEY_LEN];
	size_t pwlen = strlen(password);
	bool ok;

	if (pwlen > INT_MAX || salt_len > INT_MAX)
		return false;
	ok = PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, (int)salt_len, iterations,
			       EVP_sha256(), SCRAM_KEY_LEN, salted) == 1 &&
	     scram_hmac(salted, SCRAM_KEY_LEN, client_label, strlen(client_label), client_key) &&
	     scram_sha256(client_key, SCRAM_KEY_LEN, stored_key) &&
	     scram_hmac(salted, SCRAM_KEY_LEN, server_label, strlen(server_label), server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	return ok;
}

/* Message parsing. */

/* Peer messages are bounded and, per RFC 5802, never contain NUL. */
static bool scram_msg_ok(const uint8_t *msg, size_t len)
{
	return msg && len > 0 && len <= SCRAM_MSG_MAX && !memchr(msg, '\0', len);
}

/*
 * Reads "<attr>=<value>" at the cursor, the value running to the next ','
 * or the end. attr == 0 accepts any letter and reports it in *got. The
 * separating ',' is left for scram_read_comma.
 */
static bool scram_read_attr(struct proto_cursor *c, char attr, char *got, const uint8_t **val,
			    size_t *vlen)
{
	const uint8_t *rest = c->data + c->pos;
	size_t left = proto_cursor_left(c);
	const uint8_t *comma, *skip;
	size_t n;

	if (left < 2 || rest[1] != '=')
		return false;
	if (attr ? rest[0] != (uint8_t)attr
		 : !((rest[0] >= 'a' && rest[0] <= 'z') || (rest[0] >= 'A' && rest[0] <= 'Z')))
		return false;
	if (got)
		*got = (char)rest[0];
	comma = memchr(rest + 2, ',', left - 2);
	n = comma ? (size_t)(comma - (rest + 2)) : left - 2;
	*vlen = n;
	return proto_read_bytes(c, 2, &skip) && proto_read_bytes(c, n, val);
}

static bool scram_read_comma(struct proto_cursor *c)
{
	uint8_t ch;
	size_t pos = c->pos;

	if (proto_read_u8(c, &ch) && ch == ',')
		return true;
	c->pos = pos;
	return false;
}

/* RFC 5802 lets optional extensions follow; pgmux knows none and skips them. */
static bool scram_skip_extensions(struct proto_cursor *c)
{
	const uint8_t *val;
	size_t vlen;

	while (proto_cursor_left(c) > 0) {
		if (!scram_read_comma(c) || !scram_read_attr(c, 0, NULL, &val, &vlen))
			return false;
	}
	return true;
}

/* Reads bytes up to `delim` (consumed, not returned) or, if delim is 0, to the end. */
static bool scram_read_until(struct proto_cursor *c, char delim, const uint8_t **val,
			     size_t *vlen)
{
	const uint8_t *rest = c->data + c->pos;
	size_t left = proto_cursor_left(c);
	const uint8_t *hit, *skip;

	if (delim == 0) {
		*vlen = left;
		return proto_read_bytes(c, left, val);
	}
	hit = memchr(rest, delim, left);
	if (!hit)
		return false;
	*vlen = (size_t)(hit - rest);
	return proto_read_bytes(c, *vlen, val) && proto_read_bytes(c, 1, &skip);
}

/* Secrets. */

static bool scram_secret_sane(const struct scram_secret *s)
{
	return s->iterations >= 1 && s->salt_len >= 1 && s->salt_len <= SCRAM_SALT_MAX;
}

bool scram_secret_parse(const char *text, struct scram_secret *out)
{
	size_t plen = strlen(SCRAM_SECRET_PREFIX);
	struct scram_secret sec;
	struct proto_cursor c;
	const uint8_t *iter, *salt, *stored, *server;
	size_t iter_len, salt_len, stored_len, server_len, n;

	if (strncmp(text, SCRAM_SECRET_PREFIX, plen) != 0)
		return false;
	proto_cursor_init(&c, text + plen, strlen(text + plen));
	if (!scram_read_until(&c, ':', &iter, &iter_len) ||
	    !scram_read_until(&c, '$', &salt, &salt_len) ||
	    !scram_read_until(&c, ':', &stored, &stored_len) ||
	    !scram_read_until(&c, 0, &server, &server_len))
		return false;

	memset(&sec, 0, sizeof(sec));
	if (!scram_parse_iterations(iter, iter_len, &sec.iterations) ||
	    !scram_b64_decode(salt, salt_len, sec.salt, sizeof(sec.salt), &sec.salt_len) ||
	    !scram_b64_decode(stored, stored_len, sec.stored_key, SCRAM_KEY_LEN, &n) ||
	    n != SCRAM_KEY_LEN ||
	    !scram_b64_decode(server, server_len, sec.server_key, SCRAM_KEY_LEN, &n) ||
	    n != SCRAM_KEY_LEN || !scram_secret_sane(&sec))
		return false;
	*out = sec;
	return true;
}

bool scram_is_secret(const char *text)
{
	struct scram_secret sec;
	bool ok = scram_secret_parse(text, &sec);

	OPENSSL_cleanse(&sec, sizeof(sec));
	return ok;
}

int scram_secret_format(const struct scram_secret *secret, char *out, size_t outcap,
			size_t *outlen)
{
	struct scram_text t;

	if (!scram_secret_sane(secret))
		return SCRAM_EPROTO;
	scram_text_init(&t, out, outcap);
	scram_text_puts(&t, SCRAM_SECRET_PREFIX);
	scram_text_put_uint(&t, (unsigned long)secret->iterations);
	scram_text_puts(&t, ":");
	scram_text_put_b64(&t, secret->salt, secret->salt_len);
	scram_text_puts(&t, "$");
	scram_text_put_b64(&t, secret->stored_key, SCRAM_KEY_LEN);
	scram_text_puts(&t, ":");
	scram_text_put_b64(&t, secret->server_key, SCRAM_KEY_LEN);
	if (t.failed)
		return SCRAM_ESPACE;
	*outlen = t.len;
	return SCRAM_OK;
}

/*
 * Unusable parameters (iterations < 1, an empty or oversized salt) give
 * SCRAM_EPROTO, the code for "this input cannot be a SCRAM exchange".
 */
int scram_secret_from_password(const char *password, const uint8_t *salt, size_t salt_len,
			       int iterations, struct scram_secret *out)
{
	struct scram_secret sec;
	uint8_t client_key[SCRAM_KEY_LEN];
	bool ok;

	memset(&sec, 0, sizeof(sec));
	sec.iterations = iterations;
	if (salt) {
		sec.salt_len = salt_len;
		if (!scram_secret_sane(&sec))
			return SCRAM_EPROTO;
		memcpy(sec.salt, salt, salt_len);
	} else {
		sec.salt_len = SCRAM_DEFAULT_SALT_LEN;
		if (!scram_secret_sane(&sec))
			return SCRAM_EPROTO;
		if (RAND_bytes(sec.salt, SCRAM_DEFAULT_SALT_LEN) != 1)
			return SCRAM_ECRYPTO;
	}
	ok = scram_derive_keys(password, sec.salt, sec.salt_len, iterations, client_key,
			       sec.stored_key, sec.server_key);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	if (!ok)
		return SCRAM_ECRYPTO;
	*out = sec;
	return SCRAM_OK;
}

int scram_keys_from_password(const char *password, const struct scram_params *params,
			     struct scram_keys *out)
{
	struct scram_secret sec;

	memset(&sec, 0, sizeof(sec));
	sec.iterations = params->iterations;
	sec.salt_len = params->salt_len;
	if (!scram_secret_sane(&sec))
		return SCRAM_EPROTO;
	if (!scram_derive_keys(password, params->salt, params->salt_len, params->iterations,
			       out->client_key, out->stored_key, out->server_key)) {
		OPENSSL_cleanse(out, sizeof(*out));
		return SCRAM_ECRYPTO;
	}
	return SCRAM_OK;
}

bool scram_params_equal(const struct scram_params *a, const struct scram_params *b)
{
	return a->iterations == b->iterations && a->salt_len == b->salt_len &&
	       a->salt_len <= SCRAM_SALT_MAX && memcmp(a->salt, b->salt, a->salt_len) == 0;
}

void scram_secret_params(const struct scram_secret *secret, struct scram_params *out)
{
	memset(out, 0, sizeof(*out));
	out->iterations = secret->iterations;
	out->salt_len = secret->salt_len <= SCRAM_SALT_MAX ? secret->salt_len : SCRAM_SALT_MAX;
	memcpy(out->salt, secret->salt, out->salt_len);
}

/* Server side. */

/* Validates the gs2 header: "n,," or "y,,". Channel binding ("p=") and an
 * authorization identity are refused, as PostgreSQL does without -PLUS. */
static bool scram_parse_gs2(const uint8_t *msg, size_t len, char *flag)
{
	if (len < SCRAM_GS2_LEN || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',' ||
	    msg[2] != ',')
		return false;
	*flag = (char)msg[0];
	return true;
}

/* Parses the client-first-message-bare: "n=<user>,r=<nonce>[,ext...]".
 * The user name is ignored: PostgreSQL takes it from the startup packet. */
static bool scram_parse_client_first_bare(const uint8_t *bare, size_t len, const uint8_t **nonce,
					  size_t *nonce_len)
{
	struct proto_cursor c;
	const uint8_t *user;
	size_t user_len;

	proto_cursor_init(&c, bare, len);
	return scram_read_attr(&c, 'n', NULL, &user, &user_len) && scram_read_comma(&c) &&
	       scram_read_attr(&c, 'r', NULL, nonce, nonce_len) && scram_skip_extensions(&c) &&
	       scram_nonce_valid(*nonce, *nonce_len);
}

int scram_server_first(struct scram_server *s, const struct scram_secret *secret,
		       const char *server_nonce, const uint8_t *client_first, size_t len,
		       char *out, size_t outcap, size_t *outlen)
{
	char random_nonce[SCRAM_B64_LEN(SCRAM_RAW_NONCE_LEN) + 1];
	const uint8_t *bare, *cnonce;
	size_t bare_len, cnonce_len, snonce_len;
	struct scram_text t;
	char flag;
	int rc;

	if (s->state != SCRAM_SERVER_INIT)
		return SCRAM_ESTATE;
	if (!scram_secret_sane(secret))
		return SCRAM_ECRYPTO; /* no exchange can succeed with this secret */
	if (!scram_msg_ok(client_first, len) || !scram_parse_gs2(client_first, len, &flag))
		return SCRAM_EPROTO;
	bare = client_first + SCRAM_GS2_LEN;
	bare_len = len - SCRAM_GS2_LEN;
	if (!scram_parse_client_first_bare(bare, bare_len, &cnonce, &cnonce_len))
		return SCRAM_EPROTO;

	if (!server_nonce) {
		rc = scram_random_nonce(random_nonce);
		if (rc != SCRAM_OK)
			return rc;
		server_nonce = random_nonce;
	}
	snonce_len = strlen(server_nonce);
	if (!scram_nonce_valid(server_nonce, snonce_len))
		return SCRAM_EPROTO;
	if (cnonce_len > SCRAM_NONCE_MAX - snonce_len || snonce_len > SCRAM_NONCE_MAX)
		return SCRAM_EPROTO;

	memcpy(s->nonce, cnonce, cnonce_len);
	memcpy(s->nonce + cnonce_len, server_nonce, snonce_len);
	s->nonce[cnonce_len + snonce_len] = '\0';
	memcpy(s->client_first_bare, bare, bare_len);
	s->client_first_bare[bare_len] = '\0';
	s->gs2_flag = flag;
	s->secret = *secret;

	scram_text_init(&t, s->server_first, sizeof(s->server_first));
	scram_text_puts(&t, "r=");
	scram_text_puts(&t, s->nonce);
	scram_text_puts(&t, ",s=");
	scram_text_put_b64(&t, secret->salt, secret->salt_len);
	scram_text_puts(&t, ",i=");
	scram_text_put_uint(&t, (unsigned long)secret->iterations);
	rc = scram_output(&t, out, outcap, outlen);
	if (rc != SCRAM_OK)
		return rc;
	s->state = SCRAM_SERVER_SENT_FIRST;
	return SCRAM_OK;
}

/*
 * Parses "c=<cbind>,r=<nonce>[,ext...],p=<proof>". *without_proof is the
 * length of the part the AuthMessage covers (everything before ",p=").
 */
static bool scram_parse_client_final(const struct scram_server *s, const uint8_t *msg,
				     size_t len, uint8_t proof[SCRAM_KEY_LEN],
				     size_t *without_proof)
{
	const char *cbind = s->gs2_flag == 'y' ? SCRAM_CBIND_Y
									      : SCRAM_CBIND_N;
	struct proto_cursor c;
	const uint8_t *val;
	size_t vlen, proof_len;
	char attr = 0;

	proto_cursor_init(&c, msg, len);
	if (!scram_read_attr(&c, 'c', NULL, &val, &vlen) || vlen != strlen(cbind) ||
	    memcmp(val, cbind, vlen) != 0)
		return false;
	if (!scram_read_comma(&c) || !scram_read_attr(&c, 'r', NULL, &val, &vlen) ||
	    vlen != strlen(s->nonce) || memcmp(val, s->nonce, vlen) != 0)
		return false;
	while (attr != 'p') {
		*without_proof = c.pos;
		if (!scram_read_comma(&c) || !scram_read_attr(&c, 0, &attr, &val, &vlen))
			return false;
	}
	/* The proof must come last: the AuthMessage excludes only it. */
	return proto_cursor_left(&c) == 0 &&
	       scram_b64_decode(val, vlen, proof, SCRAM_KEY_LEN, &proof_len) &&
	       proof_len == SCRAM_KEY_LEN;
}

/* AuthMessage = client-first-bare "," server-first "," client-final-without-proof. */
static bool scram_auth_message(struct scram_text *t, const char *client_first_bare,
			       const void *server_first, size_t server_first_len,
			       const void *client_final, size_t client_final_len)
{
	scram_text_puts(t, client_first_bare);
	scram_text_puts(t, ",");
	scram_text_put(t, server_first, server_first_len);
	scram_text_puts(t, ",");
	scram_text_put(t, client_final, client_final_len);
	return !t->failed;
}

/*
 * ClientKey = proof XOR HMAC(StoredKey, AuthMessage); the client knew the
 * password iff SHA-256(ClientKey) is the StoredKey. Compared in constant time.
 * A proven ClientKey is kept in s: with the secret's ServerKey it is all it
 * takes to log in to a server storing the same secret (pass-through).
 */
static int scram_server_check_proof(struct scram_server *s, const char *auth_msg,
				    size_t auth_len, const uint8_t proof[SCRAM_KEY_LEN])
{
	uint8_t sig[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
	int rc = SCRAM_OK;
	size_t i;

	if (!scram_hmac(s->secret.stored_key, SCRAM_KEY_LEN, auth_msg, auth_len, sig)) {
		rc = SCRAM_ECRYPTO;
		goto out;
	}
	for (i = 0; i < SCRAM_KEY_LEN; i++)
		client_key[i] = proof[i] ^ sig[i];
	if (!scram_sha256(client_key, SCRAM_KEY_LEN, stored))
		rc = SCRAM_ECRYPTO;
	else if (CRYPTO_memcmp(stored, s->secret.stored_key, SCRAM_KEY_LEN) != 0)
		rc = SCRAM_EPROOF;
	else
		memcpy(s->client_key, client_key, SCRAM_KEY_LEN); /* for pass-through */
out:
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(sig, sizeof(sig));
	return rc;
}

/*
 * The exchange ends here whatever the outcome (state DONE): one server
 * nonce buys exactly one guess at the password.
 */
int scram_server_final(struct scram_server *s, const uint8_t *client_final, size_t len,
		       char *out, size_t outcap, size_t *outlen)
{
	char auth_buf[SCRAM_AUTH_MSG_MAX + 1];
	char out_buf[SCRAM_MSG_MAX + 1];
	uint8_t proof[SCRAM_KEY_LEN], server_sig[SCRAM_KEY_LEN];
	struct scram_text am, t;
	size_t without_proof = 0;
	int rc;

	if (s->state != SCRAM_SERVER_SENT_FIRST)
		return SCRAM_ESTATE;
	s->state = SCRAM_SERVER_DONE;
	if (!scram_msg_ok(client_final, len) ||
	    !scram_parse_client_final(s, client_final, len, proof, &without_proof))
		return SCRAM_EPROTO;

	scram_text_init(&am, auth_buf, sizeof(auth_buf));
	if (!scram_auth_message(&am, s->client_first_bare, s->server_first,
				strlen(s->server_first), client_final, without_proof))
		return SCRAM_EPROTO;
	rc = scram_server_check_proof(s, am.p, am.len, proof);
	OPENSSL_cleanse(proof, sizeof(proof));
	if (rc != SCRAM_OK)
		return rc;
	if (!scram_hmac(s->secret.server_key, SCRAM_KEY_LEN, am.p, am.len, server_sig))
		return SCRAM_ECRYPTO;

	scram_text_init(&t, out_buf, sizeof(out_buf));
	scram_text_puts(&t, "v=");
	scram_text_put_b64(&t, server_sig, SCRAM_KEY_LEN);
	return scram_output(&t, out, outcap, outlen);
}

/* Client side. */

/* Builds and sends nothing: writes the client-first-message for nonce. */
static int scram_client_start(struct scram_client *c, const char *client_nonce, char *out,
			      size_t outcap, size_t *outlen)
{
	char random_nonce[SCRAM_B64_LEN(SCRAM_RAW_NONCE_LEN) + 1];
	char out_buf[SCRAM_MSG_MAX + 1];
	size_t nonce_len;
	struct scram_text bare, t;
	int rc;

	if (!client_nonce) {
		rc = scram_random_nonce(random_nonce);
		if (rc != SCRAM_OK)
			return rc;
		client_nonce = random_nonce;
	}
	nonce_len = strlen(client_nonce);
	/* Leave the server room to append its half within SCRAM_NONCE_MAX. */
	if (nonce_len >= SCRAM_NONCE_MAX || !scram_nonce_valid(client_nonce, nonce_len))
		return SCRAM_EPROTO;

	/* An empty n=, like libpq: the server takes the user from the startup packet. */
	scram_text_init(&bare, c->client_first_bare, sizeof(c->client_first_bare));
	scram_text_puts(&bare, "n=,r=");
	scram_text_puts(&bare, client_nonce);
	scram_text_init(&t, out_buf, sizeof(out_buf));
	scram_text_puts(&t, "n,,");
	scram_text_put(&t, bare.p, bare.len);
	if (bare.failed)
		return SCRAM_ESPACE;
	rc = scram_output(&t, out, outcap, outlen);
	if (rc != SCRAM_OK)
		return rc;
	memcpy(c->client_nonce, client_nonce, nonce_len + 1);
	c->state = SCRAM_CLIENT_SENT_FIRST;
	return SCRAM_OK;
}

int scram_client_first(struct scram_client *c, const char *password, const char *client_nonce,
		       char *out, size_t outcap, size_t *outlen)
{
	size_t pwlen = strlen(password);
	int rc;

	if (c->state != SCRAM_CLIENT_INIT)
		return SCRAM_ESTATE;
	if (pwlen >= sizeof(c->password))
		return SCRAM_ESPACE;
	rc = scram_client_start(c, client_nonce, out, outcap, outlen);
	if (rc == SCRAM_OK) {
		c->pass_through = false;
		memcpy(c->password, password, pwlen + 1);
	}
	return rc;
}

int scram_client_first_passthrough(struct scram_client *c, const struct scram_secret *secret,
				   const uint8_t client_key[SCRAM_KEY_LEN],
				   const char *client_nonce, char *out, size_t outcap,
				   size_t *outlen)
{
	uint8_t stored[SCRAM_KEY_LEN];
	int rc;

	if (c->state != SCRAM_CLIENT_INIT)
		return SCRAM_ESTATE;
	if (!scram_secret_sane(secret))
		return SCRAM_EPROTO;
	/* A ClientKey that does not belong to the secret can only fail at
	 * the server: refuse it here, where the reason is known. */
	if (!scram_sha256(client_key, SCRAM_KEY_LEN, stored))
		return SCRAM_ECRYPTO;
	if (CRYPTO_memcmp(stored, secret->stored_key, SCRAM_KEY_LEN) != 0) {
		OPENSSL_cleanse(stored, sizeof(stored));
		return SCRAM_EPROOF;
	}
	OPENSSL_cleanse(stored, sizeof(stored));
	rc = scram_client_start(c, client_nonce, out, outcap, outlen);
	if (rc != SCRAM_OK)
		return rc;
	c->pass_through = true;
	memcpy(c->keys.client_key, client_key, SCRAM_KEY_LEN);
	memcpy(c->keys.stored_key, secret->stored_key, SCRAM_KEY_LEN);
	memcpy(c->keys.server_key, secret->server_key, SCRAM_KEY_LEN);
	scram_secret_params(secret, &c->expect);
	return SCRAM_OK;
}

struct scram_server_first_msg {
	const uint8_t *nonce;
	size_t nonce_len;
	struct scram_params params;
};

/* Parses "r=<nonce>,s=<salt>,i=<iterations>[,ext...]"; a leading "m="
 * (mandatory extension) fails the 'r' match and so is refused. */
static bool scram_parse_server_first(const struct scram_client *c, const uint8_t *msg,
				     size_t len, struct scram_server_first_msg *sf)
{
	size_t cn_len = strlen(c->client_nonce);
	struct proto_cursor cur;
	const uint8_t *salt, *iter;
	size_t salt_len, iter_len;

	memset(&sf->params, 0, sizeof(sf->params));
	proto_cursor_init(&cur, msg, len);
	if (!scram_read_attr(&cur, 'r', NULL, &sf->nonce, &sf->nonce_len) ||
	    !scram_read_comma(&cur) || !scram_read_attr(&cur, 's', NULL, &salt, &salt_len) ||
	    !scram_read_comma(&cur) || !scram_read_attr(&cur, 'i', NULL, &iter, &iter_len) ||
	    !scram_skip_extensions(&cur))
		return false;
	/* The server must extend our nonce, not replace or merely echo it. */
	if (sf->nonce_len <= cn_len || memcmp(sf->nonce, c->client_nonce, cn_len) != 0 ||
	    !scram_nonce_valid(sf->nonce, sf->nonce_len))
		return false;
	return scram_b64_decode(salt, salt_len, sf->params.salt, sizeof(sf->params.salt),
				&sf->params.salt_len) &&
	       scram_parse_iterations(iter, iter_len, &sf->params.iterations);
}

/* Validates a server-first-message against the exchange so far. */
static int scram_client_check_server_first(const struct scram_client *c, const uint8_t *msg,
					   size_t len, struct scram_server_first_msg *sf)
{
	if (!scram_msg_ok(msg, len) || !scram_parse_server_first(c, msg, len, sf))
		return SCRAM_EPROTO;
	/* The keys were made with the secret's salt and iterations; PBKDF2
	 * with anything else is a different password as far as the server
	 * can tell, so say why instead of failing at the proof. */
	if (c->pass_through && !scram_params_equal(&sf->params, &c->expect))
		return SCRAM_ESECRET;
	return SCRAM_OK;
}

/*
 * Writes the client-final-message for keys and remembers the signature the
 * server must answer with. Leaves the state to the caller.
 */
static int scram_client_build_final(struct scram_client *c, const uint8_t *server_first,
				    size_t len, const struct scram_server_first_msg *sf,
				    const struct scram_keys *keys, char *out, size_t outcap,
				    size_t *outlen)
{
	uint8_t sig[SCRAM_KEY_LEN], proof[SCRAM_KEY_LEN], server_sig[SCRAM_KEY_LEN];
	char auth_buf[SCRAM_AUTH_MSG_MAX + 1];
	char out_buf[SCRAM_MSG_MAX + 1];
	struct scram_text am, t;
	size_t i, wp_len;
	int rc;

	scram_text_init(&t, out_buf, sizeof(out_buf));
	scram_text_puts(&t, "c=" SCRAM_CBIND_N ",r=");
	scram_text_put(&t, sf->nonce, sf->nonce_len);
	wp_len = t.len;
	scram_text_init(&am, auth_buf, sizeof(auth_buf));
	if (t.failed || !scram_auth_message(&am, c->client_first_bare, server_first, len, t.p,
					     wp_len))
		return SCRAM_EPROTO;
	if (!scram_hmac(keys->stored_key, SCRAM_KEY_LEN, am.p, am.len, sig) ||
	    !scram_hmac(keys->server_key, SCRAM_KEY_LEN, am.p, am.len, server_sig)) {
		rc = SCRAM_ECRYPTO;
		goto out;
	}
	for (i = 0; i < SCRAM_KEY_LEN; i++)
		proof[i] = keys->client_key[i] ^ sig[i];
	scram_text_puts(&t, ",p=");
	scram_text_put_b64(&t, proof, SCRAM_KEY_LEN);
	rc = scram_output(&t, out, outcap, outlen);
	if (rc == SCRAM_OK)
		memcpy(c->server_signature, server_sig, SCRAM_KEY_LEN);
out:
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(server_sig, sizeof(server_sig));
	return rc;
}

/* The secrets are not needed once the final message is out. */
static void scram_client_sent_final(struct scram_client *c)
{
	OPENSSL_cleanse(c->password, sizeof(c->password));
	OPENSSL_cleanse(&c->keys, sizeof(c->keys));
	c->state = SCRAM_CLIENT_SENT_FINAL;
}

int scram_client_final(struct scram_client *c, const uint8_t *server_first, size_t len,
		       char *out, size_t outcap, size_t *outlen)
{
	struct scram_server_first_msg sf;
	struct scram_keys keys;
	int rc;

	if (c->state != SCRAM_CLIENT_SENT_FIRST)
		return SCRAM_ESTATE;
	rc = scram_client_check_server_first(c, server_first, len, &sf);
	if (rc != SCRAM_OK)
		return rc;
	if (c->pass_through)
		keys = c->keys;
	else if ((rc = scram_keys_from_password(c->password, &sf.params, &keys)) != SCRAM_OK)
		return rc == SCRAM_EPROTO ? SCRAM_EPROTO : SCRAM_ECRYPTO;
	rc = scram_client_build_final(c, server_first, len, &sf, &keys, out, outcap, outlen);
	OPENSSL_cleanse(&keys, sizeof(keys));
	if (rc == SCRAM_OK)
		scram_client_sent_final(c);
	return rc;
}

int scram_client_read_server_first(struct scram_client *c, const uint8_t *server_first,
				   size_t len, struct scram_params *params)
{
	struct scram_server_first_msg sf;
	int rc;

	if (c->state != SCRAM_CLIENT_SENT_FIRST)
		return SCRAM_ESTATE;
	rc = scram_client_check_server_first(c, server_first, len, &sf);
	if (rc != SCRAM_OK)
		return rc;
	/* scram_msg_ok bounded len by SCRAM_MSG_MAX. */
	memcpy(c->server_first, server_first, len);
	c->server_first[len] = '\0';
	c->server_first_len = len;
	*params = sf.params;
	c->state = SCRAM_CLIENT_GOT_SERVER_FIRST;
	return SCRAM_OK;
}

int scram_client_final_keys(struct scram_client *c, const struct scram_keys *keys, char *out,
			    size_t outcap, size_t *outlen)
{
	const uint8_t *msg = (const uint8_t *)c->server_first;
	struct scram_server_first_msg sf;
	int rc;

	if (c->state != SCRAM_CLIENT_GOT_SERVER_FIRST || (!keys && !c->pass_through))
		return SCRAM_ESTATE;
	/* Parsed once already; again only to point sf into our own copy. */
	rc = scram_client_check_server_first(c, msg, c->server_first_len, &sf);
	if (rc != SCRAM_OK)
		return rc;
	rc = scram_client_build_final(c, msg, c->server_first_len, &sf, keys ? keys : &c->keys,
				      out, outcap, outlen);
	if (rc == SCRAM_OK)
		scram_client_sent_final(c);
	return rc;
}

/*
 * server-final is "v=<signature>" or "e=<error>"; an error from the server
 * means it rejected our proof, so it is reported like a bad signature.
 */
int scram_client_verify(struct scram_client *c, const uint8_t *server_final, size_t len)
{
	uint8_t sig[SCRAM_KEY_LEN];
	struct proto_cursor cur;
	const uint8_t *val;
	size_t vlen, sig_len;
	char attr;

	if (c->state != SCRAM_CLIENT_SENT_FINAL)
		return SCRAM_ESTATE;
	c->state = SCRAM_CLIENT_DONE;
	if (!scram_msg_ok(server_final, len))
		return SCRAM_EPROTO;
	proto_cursor_init(&cur, server_final, len);
	if (!scram_read_attr(&cur, 0, &attr, &val, &vlen))
		return SCRAM_EPROTO;
	if (attr == 'e')
		return SCRAM_EPROOF;
	if (attr != 'v' || !scram_skip_extensions(&cur) ||
	    !scram_b64_decode(val, vlen, sig, sizeof(sig), &sig_len) || sig_len != SCRAM_KEY_LEN)
		return SCRAM_EPROTO;
	if (CRYPTO_memcmp(sig, c->server_signature, SCRAM_KEY_LEN) != 0)
		return SCRAM_EPROOF;
	return SCRAM_OK;
}
