/*
 * harness_raw.c: the integration tests' raw PostgreSQL-protocol client.
 * Socket pieces (connect, write, read with a deadline, startup packet,
 * message framing, ErrorResponse fields), a minimal blocking login (trust,
 * cleartext, md5, SCRAM-SHA-256) with the SCRAM and md5 arithmetic done by
 * OpenSSL's libcrypto, a poll()-driven storm of simultaneous SCRAM logins,
 * and the waits the raw-socket tests share (pg_stat_activity, SHOW SERVERS,
 * /proc). Tests use it where libpq hides what they must check: the
 * SQLSTATE of a refused login, the method the pooler asked for, the exact
 * bytes answered to malformed input, when a socket was closed.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

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

void harness_put32(unsigned char *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

uint32_t harness_get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

int harness_raw_connect(int port, bool nonblock)
{
	struct sockaddr_in sa = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);

	if (fd < 0)
		return -1;
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
	    !(nonblock && errno == EINPROGRESS)) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* send(), not write(): a peer that hung up is an error here, not SIGPIPE. */
bool harness_raw_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

bool harness_raw_read_exact(int fd, void *buf, size_t len, int timeout_ms)
{
	long long deadline = harness_now_ms() + timeout_ms;
	unsigned char *p = buf;

	while (len > 0) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		long long left = deadline - harness_now_ms();
		ssize_t n;

		if (timeout_ms >= 0 && left <= 0)
			return false;
		n = poll(&pfd, 1, timeout_ms < 0 ? -1 : (int)left);
		if (n < 0 && errno != EINTR)
			return false;
		if (n <= 0)
			continue;
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

size_t harness_raw_startup_packet(unsigned char *buf, size_t cap, const char *db,
				  const char *user)
{
	int n;

	if (cap < 9)
		return 0;
	n = snprintf((char *)buf + 8, cap - 8, "user%c%s%cdatabase%c%s%c", 0, user, 0, 0,
		     db, 0);
	if (n < 0 || (size_t)n + 9 > cap)
		return 0;
	buf[8 + n] = '\0';
	harness_put32(buf, (uint32_t)n + 9);
	harness_put32(buf + 4, 196608);
	return (size_t)n + 9;
}

int harness_raw_startup(int port, const char *db, const char *user)
{
	unsigned char buf[256];
	size_t n = harness_raw_startup_packet(buf, sizeof(buf), db, user);
	int fd;

	if (n == 0)
		return -1;
	fd = harness_raw_connect(port, false);
	if (fd < 0)
		return -1;
	if (!harness_raw_write_all(fd, buf, n)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A single write: PgBouncer rejects a login packet split across reads. */
bool harness_raw_send_msg(int fd, char type, const void *body, size_t len)
{
	unsigned char msg[1024];

	if (len + 5 > sizeof(msg))
		return false;
	msg[0] = (unsigned char)type;
	harness_put32(msg + 1, (uint32_t)(len + 4));
	memcpy(msg + 5, body, len);
	return harness_raw_write_all(fd, msg, len + 5);
}

bool harness_raw_read_msg(int fd, struct harness_msg *m, int timeout_ms)
{
	unsigned char hdr[5];
	uint32_t n;

	if (!harness_raw_read_exact(fd, hdr, 5, timeout_ms))
		return false;
	n = harness_get32(hdr + 1);
	if (n < 4 || n - 4 >= sizeof(m->body))
		return false;
	m->type = (char)hdr[0];
	m->len = n - 4;
	if (!harness_raw_read_exact(fd, m->body, m->len, timeout_ms))
		return false;
	m->body[m->len] = '\0';
	return true;
}

void harness_raw_error_fields(const unsigned char *body, size_t len,
			      struct harness_wire_error *e)
{
	size_t i = 0;

	memset(e, 0, sizeof(*e));
	while (i < len && body[i] != '\0') {
		char field = (char)body[i++];
		const char *val = (const char *)body + i;
		size_t vl = strnlen(val, len - i);

		if (field == 'V' || (field == 'S' && e->severity[0] == '\0'))
			snprintf(e->severity, sizeof(e->severity), "%.*s", (int)vl, val);
		else if (field == 'C')
			snprintf(e->sqlstate, sizeof(e->sqlstate), "%.*s", (int)vl, val);
		else if (field == 'M')
			snprintf(e->message, sizeof(e->message), "%.*s", (int)vl, val);
		i += vl + 1;
	}
}

int harness_raw_split(const unsigned char *buf, size_t len,
		      struct harness_wire_error *err, char *types, size_t types_len,
		      size_t *whole)
{
	size_t off = 0, nt = 0;
	int index = 0, at = -1;

	memset(err, 0, sizeof(*err));
	if (types_len > 0)
		types[0] = '\0';
	while (off + 5 <= len) {
		uint32_t mlen = harness_get32(buf + off + 1);

		if (mlen < 4 || off + 1 + mlen > len)
			break;
		if (nt + 1 < types_len) {
			types[nt++] = (char)buf[off];
			types[nt] = '\0';
		}
		if (buf[off] == 'E' && at < 0) {
			at = index;
			harness_raw_error_fields(buf + off + 5, mlen - 4, err);
		}
		off += 1 + mlen;
		index++;
	}
	if (whole != NULL)
		*whole = off;
	return at;
}

size_t harness_raw_read_to_eof(int fd, void *buf, size_t cap, int timeout_ms,
			       long long *eof_ms, bool *reset)
{
	long long deadline = harness_now_ms() + timeout_ms;
	unsigned char *b = buf;
	size_t got = 0;

	*eof_ms = -1;
	*reset = false;
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		long long left = deadline - harness_now_ms();
		unsigned char scratch[512];
		bool room = got < cap;
		ssize_t n;

		if (left <= 0)
			return got;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = read(fd, room ? b + got : scratch, room ? cap - got : sizeof(scratch));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			*reset = true;
			return got;
		}
		if (n == 0) {
			*eof_ms = harness_now_ms();
			return got;
		}
		if (room)
			got += (size_t)n;
	}
}

/* ---- SCRAM-SHA-256 client messages ------------------------------------------ */

/*
 * The SASLInitialResponse body for SCRAM-SHA-256 with a fresh nonce (nonce
 * gets nonce_len - 1 characters, bare the client-first-message-bare);
 * returns its length, 0 if something does not fit.
 */
static size_t scram_initial(char *nonce, size_t nonce_len, char *bare, size_t bare_len,
			    unsigned char *msg, size_t cap)
{
	size_t mlen = sizeof("SCRAM-SHA-256");
	char first[160];
	int n;

	harness_nonce(nonce, nonce_len);
	n = snprintf(bare, bare_len, "n=,r=%s", nonce);
	if (n < 0 || (size_t)n >= bare_len)
		return 0;
	n = snprintf(first, sizeof(first), "n,,%s", bare);
	if (n < 0 || (size_t)n >= sizeof(first) || mlen + 4 + (size_t)n > cap)
		return 0;
	memcpy(msg, "SCRAM-SHA-256", mlen);
	harness_put32(msg + mlen, (uint32_t)n);
	memcpy(msg + mlen + 4, first, (size_t)n);
	return mlen + 4 + (size_t)n;
}

/*
 * Reads the server-first-message sf: the combined nonce r=, the salt s=
 * (base64) and the iteration count i=. False unless r= extends our nonce
 * and i= is positive.
 */
static bool scram_server_first(const char *sf, const char *our_nonce, char *nonce,
			       size_t nonce_len, char *salt, size_t salt_len, int *iters)
{
	const char *p;

	nonce[0] = salt[0] = '\0';
	*iters = 0;
	for (p = sf; *p != '\0'; p = strchr(p, ',') ? strchr(p, ',') + 1 : "") {
		size_t vl = strcspn(p + 2, ",");

		if (strncmp(p, "r=", 2) == 0 && vl < nonce_len)
			snprintf(nonce, nonce_len, "%.*s", (int)vl, p + 2);
		else if (strncmp(p, "s=", 2) == 0 && vl < salt_len)
			snprintf(salt, salt_len, "%.*s", (int)vl, p + 2);
		else if (strncmp(p, "i=", 2) == 0)
			*iters = atoi(p + 2);
	}
	return strncmp(nonce, our_nonce, strlen(our_nonce)) == 0 && *iters > 0;
}

/*
 * The client-final-message with its proof into final; returns its length,
 * 0 if it does not fit. expect_sig gets the server signature to check.
 */
static size_t scram_final(const unsigned char salted[HARNESS_SCRAM_KEY_LEN],
			  const char *bare, const char *sf, const char *nonce, char *final,
			  size_t final_len, char *expect_sig, size_t sig_len)
{
	char wo[320], proof[64];
	int n = snprintf(wo, sizeof(wo), "c=biws,r=%s", nonce);

	if (n < 0 || (size_t)n >= sizeof(wo))
		return 0;
	harness_scram_proof(salted, bare, sf, wo, proof, sizeof(proof), expect_sig, sig_len);
	n = snprintf(final, final_len, "%s,p=%s", wo, proof);
	if (n < 0 || (size_t)n >= final_len)
		return 0;
	return (size_t)n;
}

/* Does the server-final-message carry the signature we expect? */
static bool scram_server_final_ok(const char *sf, const char *expect_sig)
{
	return strncmp(sf, "v=", 2) == 0 && strcmp(sf + 2, expect_sig) == 0;
}

/* ---- login ---------------------------------------------------------------- */

struct raw {
	int fd;
	int timeout_ms;      /* for each wait for a reply */
	struct harness_login *out;
};

static bool raw_fail(struct raw *r, const char *what)
{
	snprintf(r->out->message, sizeof(r->out->message), "harness: %s", what);
	return false;
}

static bool send_msg(struct raw *r, char type, const void *body, size_t len)
{
	if (len + 5 > 1024)
		return raw_fail(r, "message too long");
	if (!harness_raw_send_msg(r->fd, type, body, len))
		return raw_fail(r, "write failed");
	return true;
}

/* Reads one message into a malloc'd, NUL-padded body. */
static bool recv_msg(struct raw *r, char *type, unsigned char **body, size_t *len)
{
	unsigned char hdr[5];
	uint32_t n;

	if (!harness_raw_read_exact(r->fd, hdr, 5, r->timeout_ms))
		return raw_fail(r, "connection closed or timed out before a reply");
	n = harness_get32(hdr + 1);
	if (n < 4 || n > RAW_MAX_MSG)
		return raw_fail(r, "bad message length");
	*type = (char)hdr[0];
	*len = n - 4;
	*body = calloc(1, *len + 1);
	if (*body == NULL)
		return raw_fail(r, "out of memory");
	if (!harness_raw_read_exact(r->fd, *body, *len, r->timeout_ms)) {
		free(*body);
		return raw_fail(r, "short message body");
	}
	return true;
}

static void parse_error(struct raw *r, const unsigned char *body, size_t len)
{
	struct harness_wire_error e;

	harness_raw_error_fields(body, len, &e);
	snprintf(r->out->sqlstate, sizeof(r->out->sqlstate), "%s", e.sqlstate);
	snprintf(r->out->message, sizeof(r->out->message), "%s", e.message);
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
	size_t i = 4, n;
	bool found = false;

	while (i < len && body[i] != '\0') {
		if (strcmp((const char *)body + i, "SCRAM-SHA-256") == 0)
			found = true;
		i += strlen((const char *)body + i) + 1;
	}
	if (!found)
		return raw_fail(r, "SASL without SCRAM-SHA-256");
	n = scram_initial(s->nonce, sizeof(s->nonce), s->client_first_bare,
			  sizeof(s->client_first_bare), msg, sizeof(msg));
	if (n == 0)
		return raw_fail(r, "client-first too long");
	return send_msg(r, 'p', msg, n);
}

static bool sasl_continue(struct raw *r, struct scram_state *s, const char *password,
			  const char *server_first)
{
	char nonce[256], salt_b64[256], final[512];
	unsigned char salt[192], salted[32];
	int iters, salt_len;
	size_t n;

	if (!scram_server_first(server_first, s->nonce, nonce, sizeof(nonce), salt_b64,
				sizeof(salt_b64), &iters))
		return raw_fail(r, "bad SCRAM server-first message");
	salt_len = harness_b64_decode(salt_b64, salt, sizeof(salt));
	if (salt_len <= 0)
		return raw_fail(r, "bad SCRAM salt");
	harness_scram_salted_password(password, salt, (size_t)salt_len, iters, salted);
	n = scram_final(salted, s->client_first_bare, server_first, nonce, final,
			sizeof(final), s->expect_sig, sizeof(s->expect_sig));
	if (n == 0)
		return raw_fail(r, "client-final too long");
	return send_msg(r, 'p', final, n);
}

static bool send_startup(struct raw *r, const char *db, const char *user)
{
	unsigned char buf[512];
	size_t n = harness_raw_startup_packet(buf, sizeof(buf), db, user);

	if (n == 0)
		return raw_fail(r, "startup packet too long");
	if (!harness_raw_write_all(r->fd, buf, n))
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
	code = harness_get32(body);
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
		if (!scram_server_final_ok((const char *)body + 4, s->expect_sig))
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
	struct timeval tv = { 20, 0 };
	struct scram_state scram = { 0 };
	struct raw r = { -1, 20000, out };

	memset(out, 0, sizeof(*out));
	if (timeout_ms > 0) {
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
		r.timeout_ms = timeout_ms;
	}
	r.fd = harness_raw_connect(port, false);
	if (r.fd < 0) {
		raw_fail(&r, "connect failed");
		return -1;
	}
	/* Reads here wait in poll(); the timeout stays on a kept session for
	 * callers that read it with plain blocking reads. */
	setsockopt(r.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
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
		struct raw r = { fd, 0, out };

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

/* ---- login checks --------------------------------------------------------- */

void harness_assert_login_ok(int port, const char *db, const char *user,
			     const char *password, const char *method)
{
	struct harness_login l;

	harness_raw_login(port, db, user, password, &l);
	if (!l.ok)
		fail_msg("login %s@%s failed: %s %s", user, db, l.sqlstate, l.message);
	if (method != NULL && strcmp(l.method, method) != 0)
		fail_msg("login %s@%s: pooler asked for %s, expected %s", user, db,
			 l.method, method);
}

void harness_assert_login_refused(int port, const char *db, const char *user,
				  const char *password, const char *sqlstate,
				  const char *method)
{
	struct harness_login l;

	harness_raw_login(port, db, user, password, &l);
	if (l.ok)
		fail_msg("login %s@%s with password '%s' succeeded; expected %s", user,
			 db, password, sqlstate ? sqlstate : "a refusal");
	print_message("refused %s@%s: method %s sqlstate %s: %s\n", user, db,
		      l.method[0] ? l.method : "-", l.sqlstate, l.message);
	if (sqlstate != NULL && !harness_sqlstate_is(l.sqlstate, sqlstate))
		fail_msg("login %s@%s refused with SQLSTATE '%s' (%s); expected %s",
			 user, db, l.sqlstate, l.message, sqlstate);
	if (method != NULL && strcmp(l.method, method) != 0)
		fail_msg("login %s@%s refused after %s, expected the %s exchange", user,
			 db, l.method[0] ? l.method : "no exchange", method);
}

void harness_assert_libpq_user(const struct harness_pooler *p, const char *db,
			       const char *user, const char *password,
			       const char *server_user)
{
	PGconn *c = harness_connect_pooler(p, db, user, password);
	char *v = harness_scalar(c, "SELECT current_user");

	assert_string_equal(v, server_user);
	free(v);
	PQfinish(c);
}

/* ---- a storm of SCRAM logins ---------------------------------------------- */

static void storm_fail(struct harness_storm_conn *c, const char *why)
{
	c->state = HARNESS_STORM_FAILED;
	snprintf(c->why, sizeof(c->why), "%s", why);
}

/* Small writes to a fresh loopback socket do not block. */
static void storm_send(struct harness_storm_conn *c, char type, const void *body,
		       size_t len, const char *what)
{
	if (!harness_raw_send_msg(c->fd, type, body, len))
		storm_fail(c, what);
}

static void storm_startup(const struct harness_storm *st, struct harness_storm_conn *c)
{
	unsigned char buf[256];
	size_t n = harness_raw_startup_packet(buf, sizeof(buf), st->db, st->user);

	if (n == 0)
		return storm_fail(c, "startup too long");
	if (!harness_raw_write_all(c->fd, buf, n))
		return storm_fail(c, "startup write");
	c->state = HARNESS_STORM_AUTH;
}

static const unsigned char *storm_salted(struct harness_storm *st, const char *salt_b64,
					 int iters)
{
	unsigned char salt[128];
	char key[128];
	int i, n;

	harness_fmt(key, sizeof(key), "%s/%d", salt_b64, iters);
	for (i = 0; i < st->n_cache; i++)
		if (strcmp(st->cache[i].key, key) == 0)
			return st->cache[i].salted;
	n = harness_b64_decode(salt_b64, salt, sizeof(salt));
	if (n <= 0)
		return NULL;
	i = st->n_cache < 4 ? st->n_cache++ : 3;
	harness_fmt(st->cache[i].key, sizeof(st->cache[i].key), "%s", key);
	harness_scram_salted_password(st->password, salt, (size_t)n, iters,
				      st->cache[i].salted);
	st->derivations++;
	return st->cache[i].salted;
}

static void storm_auth(struct harness_storm *st, struct harness_storm_conn *c,
		       const unsigned char *body, size_t len)
{
	unsigned char msg[256];
	char salt[128], nonce[256], final[512];
	const unsigned char *salted;
	const char *sf = (const char *)body + 4;
	int iters;
	size_t n;

	if (len < 4)
		return storm_fail(c, "short auth");
	switch (harness_get32(body)) {
	case 0:
		return;
	case 10:
		n = scram_initial(c->nonce, sizeof(c->nonce), c->first_bare,
				  sizeof(c->first_bare), msg, sizeof(msg));
		if (n == 0)
			return storm_fail(c, "client-first too long");
		return storm_send(c, 'p', msg, n, "write SASLInitialResponse");
	case 11:
		if (!scram_server_first(sf, c->nonce, nonce, sizeof(nonce), salt, sizeof(salt),
					&iters))
			return storm_fail(c, "bad server-first");
		salted = storm_salted(st, salt, iters);
		if (salted == NULL)
			return storm_fail(c, "bad salt");
		n = scram_final(salted, c->first_bare, sf, nonce, final, sizeof(final),
				c->expect_sig, sizeof(c->expect_sig));
		if (n == 0)
			return storm_fail(c, "client-final too long");
		return storm_send(c, 'p', final, n, "write SASLResponse");
	case 12:
		if (!scram_server_final_ok(sf, c->expect_sig))
			storm_fail(c, "server signature mismatch");
		return;
	default:
		storm_fail(c, "pooler asked for something other than SCRAM");
	}
}

static void storm_read(struct harness_storm *st, struct harness_storm_conn *c)
{
	ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		return storm_fail(c, "connection closed during login");
	c->len += (size_t)n;
	while (c->state == HARNESS_STORM_AUTH && c->len >= 5) {
		unsigned char body[2048];
		char type = (char)c->buf[0];
		uint32_t ml = harness_get32(c->buf + 1);

		if (ml < 4 || ml - 4 >= sizeof(body))
			return storm_fail(c, "bad message length");
		if (c->len < 1 + ml)
			break;
		memcpy(body, c->buf + 5, ml - 4);
		body[ml - 4] = 0;
		memmove(c->buf, c->buf + 1 + ml, c->len - 1 - ml);
		c->len -= 1 + ml;
		if (type == 'R') {
			storm_auth(st, c, body, ml - 4);
		} else if (type == 'E') {
			struct harness_wire_error e;

			harness_raw_error_fields(body, ml - 4, &e);
			snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", e.sqlstate);
			storm_fail(c, "ErrorResponse");
		} else if (type == 'Z') {
			c->state = HARNESS_STORM_DONE;
			c->done_ms = harness_now_ms();
		}
	}
}

int harness_storm_run(struct harness_storm *st, struct harness_storm_conn *c, int n,
		      int port, int timeout_ms)
{
	struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
	int *idx = calloc((size_t)n, sizeof(*idx));
	long long deadline = harness_now_ms() + timeout_ms;
	int i, done = 0;

	assert_non_null(pfd);
	assert_non_null(idx);
	for (i = 0; i < n; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].state = HARNESS_STORM_CONNECTING;
		c[i].fd = harness_raw_connect(port, true);
		if (c[i].fd < 0)
			storm_fail(&c[i], "connect");
	}
	for (;;) {
		long long left = deadline - harness_now_ms();
		int m = 0;

		for (i = 0; i < n; i++) {
			enum harness_storm_state cs = c[i].state;

			if (cs == HARNESS_STORM_DONE || cs == HARNESS_STORM_FAILED)
				continue;
			pfd[m].fd = c[i].fd;
			pfd[m].events = cs == HARNESS_STORM_CONNECTING ? POLLOUT : POLLIN;
			pfd[m].revents = 0;
			idx[m++] = i;
		}
		if (m == 0 || left <= 0)
			break;
		if (poll(pfd, (nfds_t)m, (int)left) < 0 && errno != EINTR)
			fail_msg("poll: %s", strerror(errno));
		for (i = 0; i < m; i++) {
			struct harness_storm_conn *sc = &c[idx[i]];
			int err = 0;
			socklen_t el = sizeof(err);

			if (pfd[i].revents == 0)
				continue;
			if (sc->state == HARNESS_STORM_CONNECTING) {
				getsockopt(sc->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err != 0)
					storm_fail(sc, "connect failed");
				else
					storm_startup(st, sc);
			} else {
				storm_read(st, sc);
			}
		}
	}
	for (i = 0; i < n; i++)
		done += c[i].state == HARNESS_STORM_DONE;
	free(pfd);
	free(idx);
	return done;
}

void harness_storm_close(struct harness_storm_conn *c)
{
	if (c->state == HARNESS_STORM_DONE)
		storm_send(c, 'X', "", 0, "write Terminate");
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* ---- waits shared by the tests that watch the pooler from outside ---------- */

void harness_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

bool harness_result_within(PGconn *c, int ms)
{
	long long deadline = harness_now_ms() + ms;

	while (PQisBusy(c)) {
		struct pollfd pfd = { PQsocket(c), POLLIN, 0 };
		long long left = deadline - harness_now_ms();

		if (left <= 0)
			return false;
		if (pfd.fd < 0)
			return true;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return true;
		if (PQconsumeInput(c) == 0)
			return true; /* broken: PQgetResult reports it */
	}
	return true;
}

const char *harness_severity(const PGresult *r)
{
	const char *v = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);

	if (v == NULL)
		v = PQresultErrorField(r, PG_DIAG_SEVERITY);
	return v ? v : "";
}

int harness_wait_running(PGconn *super, const char *marker, int timeout_ms)
{
	long long deadline = harness_now_ms() + timeout_ms;
	const char *params[1] = { marker };

	for (;;) {
		PGresult *r = PQexecParams(super,
			"SELECT pid FROM pg_stat_activity WHERE state = 'active' "
			"AND pid <> pg_backend_pid() AND position($1 in query) > 0",
			1, NULL, params, NULL, NULL, 0);
		int pid = 0;

		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("pg_stat_activity: %s", PQresultErrorMessage(r));
		if (PQntuples(r) == 1)
			pid = atoi(PQgetvalue(r, 0, 0));
		PQclear(r);
		if (pid > 0)
			return pid;
		if (harness_now_ms() > deadline)
			fail_msg("no backend ran \"%s\" within %d ms", marker, timeout_ms);
		harness_sleep_ms(10);
	}
}

char *harness_backend_activity(PGconn *super, int pid, const char *column)
{
	char sql[160];
	PGresult *r;
	char *v = NULL;

	harness_fmt(sql, sizeof(sql),
		    "SELECT coalesce(%s, '') FROM pg_stat_activity WHERE pid = %d", column,
		    pid);
	r = harness_query(super, sql);
	if (PQntuples(r) == 1) {
		v = strdup(PQgetvalue(r, 0, 0));
		assert_non_null(v);
	}
	PQclear(r);
	return v;
}

void harness_wait_backend_gone(PGconn *super, int pid, int timeout_ms, const char *why)
{
	long long deadline = harness_now_ms() + timeout_ms;
	char *st;

	while ((st = harness_backend_activity(super, pid, "state")) != NULL) {
		if (harness_now_ms() > deadline)
			fail_msg("backend %d still in pg_stat_activity (state \"%s\") "
				 "%d ms on%s%s", pid, st, timeout_ms, why ? ": " : "",
				 why ? why : "");
		free(st);
		harness_sleep_ms(20);
	}
}

int harness_show_servers(PGconn *admin, const char *db)
{
	PGresult *r = harness_query(admin, "SHOW SERVERS");
	int i, n = 0;

	for (i = 0; i < PQntuples(r); i++)
		if (db == NULL || strcmp(harness_value(r, i, "database"), db) == 0)
			n++;
	PQclear(r);
	return n;
}

int harness_proc_fds(pid_t pid, int *fds, int cap)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	harness_fmt(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (d == NULL)
		fail_msg("opendir %s: %s", path, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (fds != NULL && n < cap)
			fds[n] = atoi(e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

int harness_proc_fd_count(pid_t pid)
{
	return harness_proc_fds(pid, NULL, 0);
}

void harness_wait_fd_count(const struct harness_pooler *p, int want, int timeout_ms,
			   const char *before)
{
	long long deadline = harness_now_ms() + timeout_ms;
	int n;

	while ((n = harness_proc_fd_count(p->pid)) != want) {
		if (harness_now_ms() > deadline)
			fail_msg("the pooler has %d descriptors open, %d before %s (waited "
				 "%d ms)", n, want, before, timeout_ms);
		harness_sleep_ms(20);
	}
}
