/*
 * tls.c: OpenSSL over memory BIOs (see tls.h). Nothing here knows about
 * sockets or the loop; conn.c moves the ciphertext.
 */
#include "tls.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* OpenSSL's queued errors as one line (and the queue emptied). */
static void tls_errstr(char *buf, size_t len, const char *what)
{
	unsigned long e = ERR_get_error();
	char detail[120] = "unknown error";

	if (e != 0)
		ERR_error_string_n(e, detail, sizeof(detail));
	ERR_clear_error();
	snprintf(buf, len, "%s: %s", what, detail);
}

int tls_sslmode_parse(const char *s)
{
	static const char *const names[] = { "disable", "allow", "prefer",
					     "require", "verify-ca", "verify-full" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (s && strcasecmp(s, names[i]) == 0)
			return (int)i;
	}
	return -1;
}

const char *tls_sslmode_str(enum tls_sslmode m)
{
	switch (m) {
	case TLS_MODE_DISABLE:
		return "disable";
	case TLS_MODE_ALLOW:
		return "allow";
	case TLS_MODE_PREFER:
		return "prefer";
	case TLS_MODE_REQUIRE:
		return "require";
	case TLS_MODE_VERIFY_CA:
		return "verify-ca";
	case TLS_MODE_VERIFY_FULL:
		return "verify-full";
	}
	return "unknown";
}

/* One protocol name; 0 if unknown. */
static int tls_proto_version(const char *name, size_t len)
{
	static const struct {
		const char *name;
		int version;
	} versions[] = {
		{ "tlsv1.0", TLS1_VERSION },   { "tlsv1", TLS1_VERSION },
		{ "tlsv1.1", TLS1_1_VERSION }, { "tlsv1.2", TLS1_2_VERSION },
		{ "tlsv1.3", TLS1_3_VERSION },
	};

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		if (strlen(versions[i].name) == len && strncasecmp(name, versions[i].name, len) == 0)
			return versions[i].version;
	}
	return 0;
}

/*
 * PgBouncer's *_tls_protocols: a comma/space list of tlsv1.0..tlsv1.3, or
 * "secure" (1.2 and 1.3), "all"/"legacy" (1.0 up). OpenSSL takes a range,
 * so the lowest and highest named versions bound it.
 */
static int tls_set_protocols(SSL_CTX *ctx, const char *spec, char *err, size_t errlen)
{
	int lo = 0, hi = 0;
	const char *p = spec && spec[0] ? spec : "secure";

	if (strcasecmp(p, "secure") == 0 || strcasecmp(p, "default") == 0) {
		lo = TLS1_2_VERSION;
		hi = TLS1_3_VERSION;
	} else if (strcasecmp(p, "all") == 0 || strcasecmp(p, "legacy") == 0) {
		lo = TLS1_VERSION;
		hi = TLS1_3_VERSION;
	} else {
		while (*p) {
			size_t n = strcspn(p, ", \t:");
			int v = n ? tls_proto_version(p, n) : 0;

			if (n && !v) {
				snprintf(err, errlen, "unknown TLS protocol \"%.*s\"", (int)n, p);
				return -1;
			}
			if (v && (!lo || v < lo))
				lo = v;
			if (v && v > hi)
				hi = v;
			p += n;
			p += strspn(p, ", \t:");
		}
	}
	if (!lo || !SSL_CTX_set_min_proto_version(ctx, lo) ||
	    !SSL_CTX_set_max_proto_version(ctx, hi)) {
		snprintf(err, errlen, "unusable TLS protocol list \"%s\"", spec ? spec : "");
		return -1;
	}
	return 0;
}

/* PgBouncer's cipher keywords, as OpenSSL lists; anything else is one. */
static const char *tls_cipher_list(const char *spec)
{
	if (!spec || !spec[0] || strcasecmp(spec, "default") == 0 || strcasecmp(spec, "secure") == 0)
		return "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL";
	if (strcasecmp(spec, "fast") == 0 || strcasecmp(spec, "normal") == 0 ||
	    strcasecmp(spec, "compat") == 0)
		return "HIGH:!aNULL:!MD5";
	if (strcasecmp(spec, "all") == 0 || strcasecmp(spec, "legacy") == 0 ||
	    strcasecmp(spec, "insecure") == 0)
		return "ALL:!aNULL:!eNULL";
	return spec;
}

static int tls_load_files(SSL_CTX *ctx, bool accept_side, const struct tls_settings *set,
			  char *err, size_t errlen)
{
	char what[600];

	if (set->cert_file && SSL_CTX_use_certificate_chain_file(ctx, set->cert_file) != 1) {
		snprintf(what, sizeof(what), "cannot load certificate %s", set->cert_file);
		tls_errstr(err, errlen, what);
		return -1;
	}
	if (set->key_file &&
	    (SSL_CTX_use_PrivateKey_file(ctx, set->key_file, SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_check_private_key(ctx) != 1)) {
		snprintf(what, sizeof(what), "cannot load private key %s", set->key_file);
		tls_errstr(err, errlen, what);
		return -1;
	}
	if (accept_side && (!set->cert_file || !set->key_file)) {
		snprintf(err, errlen, "TLS toward clients needs client_tls_cert_file and "
			 "client_tls_key_file");
		return -1;
	}
	if (set->ca_file && SSL_CTX_load_verify_locations(ctx, set->ca_file, NULL) != 1) {
		snprintf(what, sizeof(what), "cannot load CA file %s", set->ca_file);
		tls_errstr(err, errlen, what);
		return -1;
	}
	return 0;
}

/* Who must show a certificate, and against what it is checked. */
static int tls_set_verify(SSL_CTX *ctx, bool accept_side, const struct tls_settings *set,
			  char *err, size_t errlen)
{
	bool verify = set->mode == TLS_MODE_VERIFY_CA || set->mode == TLS_MODE_VERIFY_FULL;

	if (verify && !set->ca_file) {
		snprintf(err, errlen, "sslmode %s needs a CA file (%s_tls_ca_file)",
			 tls_sslmode_str(set->mode), accept_side ? "client" : "server");
		return -1;
	}
	if (!accept_side) {
		SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
		return 0;
	}
	if (verify)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	else if (set->ca_file)
		/* A certificate is asked for (auth_type = cert, hba "cert")
		 * but not required of every client. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return 0;
}

SSL_CTX *tls_ctx_new(bool accept_side, const struct tls_settings *set, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(accept_side ? TLS_server_method() : TLS_client_method());

	if (!ctx) {
		tls_errstr(err, errlen, "cannot create TLS context");
		return NULL;
	}
	/* Memory BIOs are written in whole records; partial writes would
	 * only add bookkeeping. Renegotiation is a DoS lever: off. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	if (tls_set_protocols(ctx, set->protocols, err, errlen) != 0)
		goto fail;
	if (SSL_CTX_set_cipher_list(ctx, tls_cipher_list(set->ciphers)) != 1) {
		snprintf(err, errlen, "no usable cipher in \"%s\"", set->ciphers ? set->ciphers : "");
		goto fail;
	}
	if (set->tls13_ciphers && set->tls13_ciphers[0] &&
	    SSL_CTX_set_ciphersuites(ctx, set->tls13_ciphers) != 1) {
		snprintf(err, errlen, "no usable TLS 1.3 suite in \"%s\"", set->tls13_ciphers);
		goto fail;
	}
	if (tls_load_files(ctx, accept_side, set, err, errlen) != 0 ||
	    tls_set_verify(ctx, accept_side, set, err, errlen) != 0)
		goto fail;
	if (accept_side)
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

void tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

/* Host-name (or IP address) check for verify-full, and SNI. */
static int tls_set_peer_name(struct tls *t, const char *host)
{
	unsigned char addr[16];
	X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);
	bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;

	if (is_ip)
		return X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1 ? 0 : -1;
	if (SSL_set_tlsext_host_name(t->ssl, host) != 1)
		return -1;
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	return X509_VERIFY_PARAM_set1_host(param, host, 0) == 1 ? 0 : -1;
}

int tls_start(struct tls *t, SSL_CTX *ctx, bool accept_side, const char *verify_host)
{
	memset(t, 0, sizeof(*t));
	t->accept_side = accept_side;
	t->ssl = SSL_new(ctx);
	t->in = BIO_new(BIO_s_mem());
	t->out = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->in || !t->out) {
		tls_errstr(t->error, sizeof(t->error), "cannot start TLS");
		BIO_free(t->in);
		BIO_free(t->out);
		SSL_free(t->ssl);
		memset(t, 0, sizeof(*t));
		return -1;
	}
	/* An empty memory BIO reports "retry", not EOF. */
	BIO_set_mem_eof_return(t->in, -1);
	BIO_set_mem_eof_return(t->out, -1);
	SSL_set_bio(t->ssl, t->in, t->out); /* the SSL owns both BIOs now */
	if (accept_side) {
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
		if (verify_host && tls_set_peer_name(t, verify_host) != 0) {
			tls_errstr(t->error, sizeof(t->error), "cannot set the name to verify");
			tls_end(t);
			return -1;
		}
	}
	return 0;
}

void tls_end(struct tls *t)
{
	if (t->ssl)
		SSL_free(t->ssl);
	memset(t, 0, sizeof(*t));
}

void tls_feed(struct tls *t, const void *p, size_t n)
{
	/* A memory BIO grows as needed; conn.c feeds at most one read's worth
	 * before draining it, which bounds what is held here. */
	while (n > 0) {
		int chunk = n > (size_t)1 << 30 ? 1 << 30 : (int)n;
		int w = BIO_write(t->in, p, chunk);

		if (w <= 0)
			return;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

/* Maps an OpenSSL result to ours, noting why on failure. */
static enum tls_rc tls_result(struct tls *t, int rc, const char *what)
{
	int e = SSL_get_error(t->ssl, rc);

	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE: /* memory BIO: never really full */
		ERR_clear_error();
		return TLS_WANT_MORE;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return TLS_EOF;
	default:
		break;
	}
	if (e == SSL_ERROR_SSL && SSL_get_verify_result(t->ssl) != X509_V_OK) {
		snprintf(t->error, sizeof(t->error), "%s: certificate verify failed: %s", what,
			 X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
		ERR_clear_error();
		return TLS_FAIL;
	}
	tls_errstr(t->error, sizeof(t->error), what);
	return TLS_FAIL;
}

enum tls_rc tls_handshake(struct tls *t)
{
	int rc;

	if (t->established)
		return TLS_OK;
	rc = SSL_do_handshake(t->ssl);
	if (rc == 1) {
		t->established = true;
		return TLS_OK;
	}
	return tls_result(t, rc, "TLS handshake failed");
}

enum tls_rc tls_read(struct tls *t, void *out, size_t cap, size_t *got)
{
	size_t n = 0;
	int rc = SSL_read_ex(t->ssl, out, cap, &n);

	*got = 0;
	if (rc == 1) {
		*got = n;
		return TLS_OK;
	}
	return tls_result(t, rc, "TLS read failed");
}

bool tls_has_input(const struct tls *t)
{
	return SSL_pending(t->ssl) > 0 || BIO_ctrl_pending(t->in) > 0;
}

int tls_write(struct tls *t, const void *p, size_t n)
{
	while (n > 0) {
		size_t w = 0;

		if (SSL_write_ex(t->ssl, p, n, &w) != 1) {
			(void)tls_result(t, 0, "TLS write failed");
			return -1;
		}
		p = (const char *)p + w;
		n -= w;
	}
	return 0;
}

size_t tls_out_pending(const struct tls *t)
{
	return BIO_ctrl_pending(t->out);
}

size_t tls_out_take(struct tls *t, void *buf, size_t cap)
{
	size_t n = 0;

	if (cap == 0 || BIO_read_ex(t->out, buf, cap, &n) != 1)
		return 0;
	return n;
}

bool tls_peer_cn(const struct tls *t, char *out, size_t len)
{
	X509 *cert;
	int n;

	if (!t->ssl || !t->established || SSL_get_verify_result(t->ssl) != X509_V_OK)
		return false;
	cert = SSL_get1_peer_certificate(t->ssl);
	if (!cert)
		return false;
	n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, out, (int)len);
	X509_free(cert);
	/* A CN with an embedded NUL would compare as a shorter name; one that
	 * fills the buffer may have been cut to fit (OpenSSL truncates). */
	return n > 0 && (size_t)n < len - 1 && strlen(out) == (size_t)n;
}

void tls_describe(const struct tls *t, char *buf, size_t len)
{
	if (!t->ssl || !t->established) {
		if (len)
			buf[0] = '\0';
		return;
	}
	snprintf(buf, len, "%s/%s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
}
