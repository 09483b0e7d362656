/*
 * harness_raw.c: a minimal blocking PostgreSQL-protocol client for logins
 * (trust, cleartext, md5, SCRAM-SHA-256) plus the SCRAM and md5 arithmetic,
 * done with OpenSSL's libcrypto. Tests use it where libpq hides what they
 * must check: the SQLSTATE of a refused login and the method the pooler
 * asked for; the login storm test reuses the SCRAM helpers.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define RAW_MAX_MSG (1 << 20)

/* ---- crypto -------------------------------------------------------------- */

static void hmac256(const unsigned char *key, size_t key_len, const void *msg,
		    size_t msg_len, unsigned char out[HARNESS_SCRAM_KEY_LEN])
{
	unsigned int n = HARNESS_SCRAM_KEY_LEN;

	HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, out, &n);
}

static void sha256(const void *msg, size_t len, unsigned char out[HARNESS_SCRAM_KEY_LEN])
{
	unsigned int n = HARNESS_SCRAM_KEY_LEN;

	EVP_Digest(msg, len, out, &n, EVP_sha256(), NULL);
}

static void b64_encode(const unsigned char *in, size_t len, char *out, size_t out_len)
{
	if (out_len < 4 * ((len + 2) / 3) + 1) {
		out[0] = '\0';
		return;
	}
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

int harness_b64_decode(const char *in, unsigned char *out, size_t out_len)
{
	size_t len = strlen(in);
	int n, pad = 0;

	if (len % 4 != 0 || out_len < len / 4 * 3)
		return -1;
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0)
		return -1;
	if (len >= 1 && in[len - 1] == '=')
		pad++;
	if (len >= 2 && in[len - 2] == '=')
		pad++;
	return n - pad;
}

void harness_nonce(char *buf, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char rnd[64];
	size_t i;

	if (len == 0)
		return;
	if (len - 1 > sizeof(rnd))
		len = sizeof(rnd) + 1;
	RAND_bytes(rnd, (int)(len - 1));
	for (i = 0; i + 1 < len; i++)
		buf[i] = alphabet[rnd[i] % 64];
	buf[len - 1] = '\0';
}

void harness_scram_salted_password(const char *password, const unsigned char *salt,
				   size_t salt_len, int iterations,
				   unsigned char out[HARNESS_SCRAM_KEY_LEN])
{
	PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len,
			  iterations, EVP_sha256(), HARNESS_SCRAM_KEY_LEN, out);
}

void harness_scram_proof(const unsigned char salted[HARNESS_SCRAM_KEY_LEN],
			 const char *client_first_bare, const char *server_first,
			 const char *client_final_wo_proof, char *proof_b64,
			 size_t proof_len, char *server_sig_b64, size_t sig_len)
{
	unsigned char client_key[32], stored_key[32], client_sig[32], proof[32];
	unsigned char server_key[32], server_sig[32];
	char auth_msg[2048];
	int n, i;

	n = snprintf(auth_msg, sizeof(auth_msg), "%s,%s,%s", client_first_bare,
		     server_first, client_final_wo_proof);
	if (n < 0 || (size_t)n >= sizeof(auth_msg)) {
		proof_b64[0] = server_sig_b64[0] = '\0';
		return;
	}
	hmac256(salted, 32, "Client Key", 10, client_key);
	sha256(client_key, 32, stored_key);
	hmac256(stored_key, 32, auth_msg, (size_t)n, client_sig);
	for (i = 0; i < 32; i++)
		proof[i] = client_key[i] ^ client_sig[i];
	hmac256(salted, 32, "Server Key", 10, server_key);
	hmac256(server_key, 32, auth_msg, (size_t)n, server_sig);
	b64_encode(proof, 32, proof_b64, proof_len);
	b64_encode(server_sig, 32, server_sig_b64, sig_len);
}

static void md5_hex(const void *msg, size_t len, char out[33])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char d[16];
	unsigned int n = sizeof(d);
	int i;

	EVP_Digest(msg, len, d, &n, EVP_md5(), NULL);
	for (i = 0; i < 16; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[32] = '\0';
}

void harness_md5_response(const char *user, const char *password,
			  const unsigned char salt[4], char out[36])
{
	char buf[512], inner[33], outer[33];
	size_t pl = strlen(password), ul = strlen(user);

	out[0] = '\0';
	if (pl + ul > sizeof(buf) - 1)
		return;
	memcpy(buf, password, pl);
	memcpy(buf + pl, user, ul);
	md5_hex(buf, pl + ul, inner);
	memcpy(buf, inner, 32);
	memcpy(buf + 32, salt, 4);
	md5_hex(buf, 36, outer);
	snprintf(out, 36, "md5%s", outer);
}

/* ---- wire ---------------------------------------------------------------- */

struct raw {
	int fd;
	struct harness_login *out;
};

static bool raw_fail(struct raw *r, const char *what)
{
	snprintf(r->out->message, sizeof(r->out->message), "harness: %s", what);
	return false;
}

static bool write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static void put32(unsigned char *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

/*
 * Sends one typed message (type, int32 length, body) in a single write, as
 * real clients do: PgBouncer rejects a login packet split across reads.
 */
static bool send_msg(struct raw *r, char type, const void *body, size_t len)
{
	unsigned char msg[1024];

	if (len + 5 > sizeof(msg))
		return raw_fail(r, "message too long");
	msg[0] = (unsigned char)type;
	put32(msg + 1, (uint32_t)(len + 4));
	memcpy(msg + 5, body, len);
	if (!write_all(r->fd, msg, len + 5))
		return raw_fail(r, "write failed");
	return true;
}

/* Reads one message into a malloc'd, NUL-padded body. */
static bool recv_msg(struct raw *r, char *type, unsigned char **body, size_t *len)
{
	unsigned char hdr[5];
	uint32_t n;

	if (!read_all(r->fd, hdr, 5))
		return raw_fail(r, "connection closed or timed out before a reply");
	n = get32(hdr + 1);
	if (n < 4 || n > RAW_MAX_MSG)
		return raw_fail(r, "bad message length");
	*type = (char)hdr[0];
	*len = n - 4;
	*body = calloc(1, *len + 1);
	if (*body == NULL)
		return raw_fail(r, "out of memory");
	if (!read_all(r->fd, *body, *len)) {
		free(*body);
		return raw_fail(r, "short message body");
	}
	return true;
}

static void parse_error(struct raw *r, const unsigned char *body, size_t len)
{
	size_t i = 0;

	while (i < len && body[i] != '\0') {
		char field = (char)body[i++];
		const char *val = (const char *)body + i;
		size_t vl = strnlen(val, len - i);

		if (field == 'C')
			snprintf(r->out->sqlstate, sizeof(r->out->sqlstate), "%.*s",
				 (int)vl, val);
		else if (field == 'M')
			snprintf(r->out->message, sizeof(r->out->message), "%.*s",
				 (int)vl, val);
		i += vl + 1;
	}
}

struct scram_state {
	char nonce[32];
	char client_first_bare[128];
	char expect_sig[64];
};

static bool sasl_start(struct raw *r, struct scram_state *s,
		       const unsigned char *body, size_t len)
{
	unsigned char msg[256];
	char first[160];
	size_t i = 4, mlen = sizeof("SCRAM-SHA-256");
	bool found = false;
	int n;

	while (i < len && body[i] != '\0') {
		if (strcmp((const char *)body + i, "SCRAM-SHA-256") == 0)
			found = true;
		i += strlen((const char *)body + i) + 1;
	}
	if (!found)
		return raw_fail(r, "SASL without SCRAM-SHA-256");
	harness_nonce(s->nonce, sizeof(s->nonce));
	n = snprintf(s->client_first_bare, sizeof(s->client_first_bare), "n=,r=%s",
		     s->nonce);
	if (n < 0 || (size_t)n >= sizeof(s->client_first_bare))
		return raw_fail(r, "nonce too long");
	n = snprintf(first, sizeof(first), "n,,%s", s->client_first_bare);
	if (n < 0 || (size_t)n >= sizeof(first))
		return raw_fail(r, "client-first too long");
	memcpy(msg, "SCRAM-SHA-256", mlen);
	put32(msg + mlen, (uint32_t)n);
	memcpy(msg + mlen + 4, first, (size_t)n);
	return send_msg(r, 'p', msg, mlen + 4 + (size_t)n);
}

static bool sasl_continue(struct raw *r, struct scram_state *s, const char *password,
			  const char *server_first)
{
	char nonce[256] = "", salt_b64[256] = "", final_wo[320], final[512], proof[64];
	unsigned char salt[192], salted[32];
	const char *p;
	int iters = 0, salt_len, n;

	for (p = server_first; *p != '\0'; p = strchr(p, ',') ? strchr(p, ',') + 1 : "") {
		size_t vl = strcspn(p + 2, ",");

		if (strncmp(p, "r=", 2) == 0 && vl < sizeof(nonce))
			snprintf(nonce, sizeof(nonce), "%.*s", (int)vl, p + 2);
		else if (strncmp(p, "s=", 2) == 0 && vl < sizeof(salt_b64))
			snprintf(salt_b64, sizeof(salt_b64), "%.*s", (int)vl, p + 2);
		else if (strncmp(p, "i=", 2) == 0)
			iters = atoi(p + 2);
	}
	if (strncmp(nonce, s->nonce, strlen(s->nonce)) != 0 || iters <= 0)
		return raw_fail(r, "bad SCRAM server-first message");
	salt_len = harness_b64_decode(salt_b64, salt, sizeof(salt));
	if (salt_len <= 0)
		return raw_fail(r, "bad SCRAM salt");
	harness_scram_salted_password(password, salt, (size_t)salt_len, iters, salted);
	n = snprintf(final_wo, sizeof(final_wo), "c=biws,r=%s", nonce);
	if (n < 0 || (size_t)n >= sizeof(final_wo))
		return raw_fail(r, "nonce too long");
	harness_scram_proof(salted, s->client_first_bare, server_first, final_wo, proof,
			    sizeof(proof), s->expect_sig, sizeof(s->expect_sig));
	n = snprintf(final, sizeof(final), "%s,p=%s", final_wo, proof);
	if (n < 0 || (size_t)n >= sizeof(final))
		return raw_fail(r, "client-final too long");
	return send_msg(r, 'p', final, (size_t)n);
}

static bool send_startup(struct raw *r, const char *db, const char *user)
{
	unsigned char buf[512];
	int n;

	n = snprintf((char *)buf + 8, sizeof(buf) - 8, "user%c%s%cdatabase%c%s%c",
		     0, user, 0, 0, db, 0);
	if (n < 0 || (size_t)n + 9 > sizeof(buf))
		return raw_fail(r, "startup packet too long");
	buf[8 + n] = '\0';
	put32(buf, (uint32_t)(n + 9));
	put32(buf + 4, 196608);
	if (!write_all(r->fd, buf, (size_t)n + 9))
		return raw_fail(r, "write failed");
	return true;
}

/* Handles one Authentication message; false ends the login. */
static bool on_auth(struct raw *r, struct scram_state *s, const char *user,
		    const char *password, const unsigned char *body, size_t len)
{
	uint32_t code;
	char resp[40];

	if (len < 4)
		return raw_fail(r, "short Authentication message");
	code = get32(body);
	switch (code) {
	case 0:
		if (r->out->method[0] == '\0')
			snprintf(r->out->method, sizeof(r->out->method), "trust");
		return true;
	case 3:
		snprintf(r->out->method, sizeof(r->out->method), "cleartext");
		return send_msg(r, 'p', password, strlen(password) + 1);
	case 5:
		if (len < 8)
			return raw_fail(r, "short md5 request");
		snprintf(r->out->method, sizeof(r->out->method), "md5");
		harness_md5_response(user, password, body + 4, resp);
		return send_msg(r, 'p', resp, strlen(resp) + 1);
	case 10:
		snprintf(r->out->method, sizeof(r->out->method), "scram-sha-256");
		return sasl_start(r, s, body, len);
	case 11:
		return sasl_continue(r, s, password, (const char *)body + 4);
	case 12:
		if (strncmp((const char *)body + 4, "v=", 2) != 0 ||
		    strcmp((const char *)body + 6, s->expect_sig) != 0)
			return raw_fail(r, "SCRAM server signature mismatch");
		return true;
	default:
		return raw_fail(r, "unsupported authentication request");
	}
}

/* Logs in; returns the socket, still open, when out->ok, else closes it. */
static int raw_login(int port, const char *db, const char *user,
		     const char *password, int timeout_ms, struct harness_login *out)
{
	struct sockaddr_in sa = { 0 };
	struct timeval tv = { 20, 0 };
	struct scram_state scram = { 0 };
	struct raw r = { -1, out };

	memset(out, 0, sizeof(*out));
	if (timeout_ms > 0) {
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
	}
	r.fd = socket(AF_INET, SOCK_STREAM, 0);
	if (r.fd < 0) {
		raw_fail(&r, "socket failed");
		return -1;
	}
	setsockopt(r.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(r.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		raw_fail(&r, "connect failed");
		goto done;
	}
	if (!send_startup(&r, db, user))
		goto done;
	for (;;) {
		unsigned char *body;
		size_t len;
		char type;
		bool go_on = true;

		if (!recv_msg(&r, &type, &body, &len))
			break;
		if (type == 'R') {
			go_on = on_auth(&r, &scram, user, password, body, len);
		} else if (type == 'E') {
			parse_error(&r, body, len);
			go_on = false;
		} else if (type == 'Z') {
			out->ok = true;
			go_on = false;
		}
		/* 'S', 'K', 'N' and anything else: ignored. */
		free(body);
		if (!go_on)
			break;
	}
done:
	if (out->ok)
		return r.fd;
	close(r.fd);
	return -1;
}

void harness_raw_login(int port, const char *db, const char *user,
		       const char *password, struct harness_login *out)
{
	int fd = raw_login(port, db, user, password, 0, out);

	if (fd >= 0) {
		struct raw r = { fd, out };

		send_msg(&r, 'X', "", 0);
		close(fd);
	}
}

int harness_raw_login_keep(int port, const char *db, const char *user,
			   const char *password, int timeout_ms,
			   struct harness_login *out)
{
	return raw_login(port, db, user, password, timeout_ms, out);
}
