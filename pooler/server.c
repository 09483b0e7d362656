/*
 * server.c: server connection state machine. Owns struct server from
 * launch to close_cb: connect (TCP or unix socket), log in to PostgreSQL
 * with trust, cleartext, md5 or SCRAM-SHA-256, then forward its answers to
 * the linked client, watching ReadyForQuery to know when the client's
 * transaction is over and the server can go back to the pool.
 */
#include "server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "auth_md5.h"
#include "auth_scram.h"
#include "authq.h"
#include "cancel.h"
#include "client.h"
#include "fds.h"
#include "log.h"
#include "pool.h"
#include "pooler.h"
#include "prepared.h"
#include "proto.h"
#include "proto_parse.h"
#include "sqlprep.h"
#include "tls.h"
#include "util.h"

#define SERVER_DEFAULT_SOCKET_DIR "/var/run/postgresql"

/* Login-only state, freed once the server is ready. */
struct server_login {
	bool tls_asked;          /* SSLRequest sent; the next byte is 'S' or 'N' */
	struct proto_buf params; /* ParameterStatus messages, verbatim */
	char *server_version;
	struct scram_client scram;
	struct auth_server_wait keys_wait; /* SCRAM keys being computed off the loop */
	char user[128];
};

/* A name lookup outlives its server if the server closes first. */
struct server_resolve {
	uv_getaddrinfo_t req;
	struct server *server; /* NULL once the server has gone */
};

static enum conn_rc server_on_data(struct conn *conn);
static void server_on_read_error(struct conn *conn, int status);
static void server_on_drained(struct conn *conn);
static void server_on_closed(struct conn *conn);

static enum conn_rc server_on_tls_ready(struct conn *conn);
static void server_note_param(struct server *s, struct client *c, const struct proto_msg *m);
static bool server_wants_tls(const struct server *s);
static void server_send_ssl_request(struct server *s);
static enum conn_rc server_login_fail(struct server *s, const char *sqlstate, const char *msg);

static const struct conn_ops server_ops = {
	.on_data = server_on_data,
	.on_read_error = server_on_read_error,
	.on_drained = server_on_drained,
	.on_closed = server_on_closed,
	.on_tls_ready = server_on_tls_ready,
};

const char *server_state_str(enum server_state st)
{
	switch (st) {
	case SERVER_CONNECTING:
		return "connecting";
	case SERVER_LOGIN:
		return "login";
	case SERVER_IDLE:
		return "idle";
	case SERVER_ACTIVE:
		return "active";
	case SERVER_RESETTING:
		return "resetting";
	case SERVER_CANCELING:
		return "canceling";
	case SERVER_CLOSED:
		return "closed";
	}
	return "unknown";
}

void server_ident(const struct server *s, char *out, size_t outlen)
{
	snprintf(out, outlen, "S-%u %s@%s %s:%d pid=%u", s->id, s->pool->user_name,
		 s->pool->db_name, s->pool->host ? s->pool->host : "unix", s->pool->port,
		 s->be_pid);
}

static void server_logv(const struct server *s, enum log_level lvl, const char *fmt, va_list ap)
{
	char ident[200];
	char msg[512];

	server_ident(s, ident, sizeof(ident));
	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_msg(lvl, "%s: %s", ident, msg);
}

static void server_logf(const struct server *s, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void server_logf(const struct server *s, enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	server_logv(s, lvl, fmt, ap);
	va_end(ap);
}

static struct list *server_list_for(struct server *s, enum server_state st)
{
	switch (st) {
	case SERVER_CONNECTING:
	case SERVER_LOGIN:
		return &s->pool->login_servers;
	case SERVER_IDLE:
		return &s->pool->idle_servers;
	case SERVER_ACTIVE:
	case SERVER_RESETTING:
	case SERVER_CANCELING:
		return &s->pool->active_servers;
	case SERVER_CLOSED:
		return NULL;
	}
	log_fatal("bad server state %d", (int)st);
	abort();
}

static bool server_transition_ok(enum server_state from, enum server_state to)
{
	if (to == SERVER_CLOSED)
		return from != SERVER_CLOSED;
	switch (from) {
	case SERVER_CONNECTING:
		return to == SERVER_LOGIN;
	case SERVER_LOGIN:
		/* RESETTING: its first client's parameters are set first. */
		return to == SERVER_IDLE || to == SERVER_ACTIVE || to == SERVER_RESETTING;
	case SERVER_IDLE:
		return to == SERVER_ACTIVE || to == SERVER_RESETTING;
	case SERVER_ACTIVE:
		return to == SERVER_IDLE || to == SERVER_ACTIVE || to == SERVER_RESETTING ||
		       to == SERVER_CANCELING;
	case SERVER_CANCELING:
		return to == SERVER_IDLE || to == SERVER_ACTIVE;
	case SERVER_RESETTING:
		/* RESETTING again: a reset is followed by the next client's SETs. */
		return to == SERVER_IDLE || to == SERVER_ACTIVE || to == SERVER_RESETTING;
	case SERVER_CLOSED:
		return false;
	}
	return false;
}

void server_set_state(struct server *s, enum server_state next)
{
	struct list *from;
	struct list *to;

	if (!server_transition_ok(s->state, next)) {
		log_fatal("S-%u: illegal server transition %s -> %s", s->id,
			  server_state_str(s->state), server_state_str(next));
		abort();
	}
	from = server_list_for(s, s->state);
	to = server_list_for(s, next);
	if (s->checking && next != SERVER_RESETTING) {
		s->checking = false;
		s->pool->checking_servers--;
	}
	s->state = next;
	if (from == to)
		return;
	pool_account(s->pool);
	if (from)
		list_remove(from, &s->node);
	if (to)
		list_append(to, &s->node);
}

/* ---- launch and connect ---- */

static void server_on_connect(uv_connect_t *req, int status);
static void server_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);

static bool server_uses_unix_socket(const struct pool *p)
{
	return !p->host || !p->host[0] || p->host[0] == '/';
}

static void server_connect_unix(struct server *s)
{
	const struct pool *p = s->pool;
	const char *dir = p->host && p->host[0] ? p->host : SERVER_DEFAULT_SOCKET_DIR;
	char path[512];

	snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", dir, p->port);
	uv_pipe_connect(&s->connect_req, &s->conn.h.pipe, path, server_on_connect);
	fds_track(conn_fd(&s->conn), FDS_SERVER, s);
}

static void server_connect_addr(struct server *s, const struct sockaddr *sa)
{
	int rc = uv_tcp_connect(&s->connect_req, &s->conn.h.tcp, sa, server_on_connect);

	fds_track(conn_fd(&s->conn), FDS_SERVER, s);
	if (rc < 0) {
		pool_login_failed(s->pool, "08006", uv_strerror(rc));
		server_close(s, "connect failed: %s", uv_strerror(rc));
	}
}

void server_launch(struct pool *p)
{
	server_launch_with(p, NULL);
}

void server_launch_with(struct pool *p, const struct param_set *startup)
{
	struct server *s = xcalloc(1, sizeof(*s));
	struct sockaddr_storage ss;
	bool unix_sock = server_uses_unix_socket(p);

	list_node_init(&s->node);
	s->id = ++g_pooler.next_server_id;
	s->pool = p;
	s->state = SERVER_CONNECTING;
	s->tx_status = PROTO_TX_IDLE;
	s->connect_time_us = util_wall_us();
	s->launched_ms = uv_now(g_pooler.loop);
	list_append(&p->login_servers, &s->node);
	g_pooler.server_count++;
	if (startup) {
		/* The values it logs in with are what it will have. */
		param_set_copy(&s->startup, startup);
		param_set_copy(&s->params, startup);
	}
	if (unix_sock)
		uv_pipe_init(g_pooler.loop, &s->conn.h.pipe, 0);
	else
		uv_tcp_init(g_pooler.loop, &s->conn.h.tcp);
	conn_init(&s->conn, CONN_SERVER, &server_ops, unix_sock);
	s->conn.ps.authed = true;
	server_logf(s, LOG_LVL_DEBUG, "launching new connection");

	if (unix_sock) {
		server_connect_unix(s);
		return;
	}
	if (uv_ip4_addr(p->host, p->port, (struct sockaddr_in *)&ss) == 0 ||
	    uv_ip6_addr(p->host, p->port, (struct sockaddr_in6 *)&ss) == 0) {
		server_connect_addr(s, (const struct sockaddr *)&ss);
		return;
	}
	{
		struct server_resolve *r = xcalloc(1, sizeof(*r));
		struct addrinfo hints;
		char port[16];
		int rc;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		snprintf(port, sizeof(port), "%d", p->port);
		r->server = s;
		s->resolve = &r->req;
		rc = uv_getaddrinfo(g_pooler.loop, &r->req, server_on_resolved, p->host, port,
				    &hints);
		if (rc < 0) {
			s->resolve = NULL;
			free(r);
			pool_login_failed(p, "08006", uv_strerror(rc));
			server_close(s, "could not resolve %s: %s", p->host, uv_strerror(rc));
		}
	}
}

static void server_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct server_resolve *r = container_of(req, struct server_resolve, req);
	struct server *s = r->server;

	free(r);
	if (!s) {
		uv_freeaddrinfo(res);
		return;
	}
	s->resolve = NULL;
	if (status < 0 || !res) {
		char msg[256];

		snprintf(msg, sizeof(msg), "could not resolve host \"%s\": %s", s->pool->host,
			 uv_strerror(status));
		pool_login_failed(s->pool, "08006", msg);
		server_close(s, "%s", msg);
		uv_freeaddrinfo(res);
		return;
	}
	server_connect_addr(s, res->ai_addr);
	uv_freeaddrinfo(res);
}

static void server_send_startup(struct server *s)
{
	const struct cfg_db *db = cfg_find_db(g_pooler.cfg, s->pool->db_name);
	const char *params[16 + 2 * PARAM_MAX];
	struct proto_buf b;
	size_t n = 0;

	params[n++] = "user";
	params[n++] = s->pool->user_name;
	params[n++] = "database";
	params[n++] = s->pool->server_db;
	if (db && db->client_encoding) {
		params[n++] = "client_encoding";
		params[n++] = db->client_encoding;
	}
	if (db && db->datestyle) {
		params[n++] = "datestyle";
		params[n++] = db->datestyle;
	}
	if (db && db->timezone) {
		params[n++] = "timezone";
		params[n++] = db->timezone;
	}
	if (db && db->application_name) {
		params[n++] = "application_name";
		params[n++] = db->application_name;
	}
	for (int i = 0; i < (int)param_count(); i++) {
		if (s->startup.v[i]) {
			params[n++] = param_name(i);
			params[n++] = s->startup.v[i];
		}
	}
	params[n] = NULL;
	proto_buf_init(&b, 8192);
	proto_build_startup(&b, params);
	if (conn_send_buf(&s->conn, &b) < 0)
		server_logf(s, LOG_LVL_WARNING, "could not send startup packet");
	proto_buf_free(&b);
}

static void server_on_connect(uv_connect_t *req, int status)
{
	struct server *s = container_of(req, struct server, connect_req);

	if (status == UV_ECANCELED || s->state == SERVER_CLOSED)
		return;
	if (status < 0) {
		char msg[256];

		snprintf(msg, sizeof(msg), "could not connect to server: %s",
			 uv_strerror(status));
		pool_login_failed(s->pool, "08006", msg);
		server_close(s, "%s", msg);
		return;
	}
	s->conn.flags |= CONN_F_CONNECTED;
	conn_set_tcp_options(&s->conn);
	s->login = xcalloc(1, sizeof(*s->login));
	proto_buf_init(&s->login->params, 64 * 1024);
	util_strlcpy(s->login->user, s->pool->user_name, sizeof(s->login->user));
	server_set_state(s, SERVER_LOGIN);
	if (conn_read_start(&s->conn) < 0) {
		pool_login_failed(s->pool, "08006", "could not read from server");
		server_close(s, "could not start reading");
		return;
	}
	if (server_wants_tls(s))
		server_send_ssl_request(s);
	else
		server_send_startup(s);
}

/* server_tls_sslmode prefer and up ask for TLS over TCP ("allow" only
 * takes it when offered, which PostgreSQL never does unasked). */
static bool server_wants_tls(const struct server *s)
{
	return g_pooler.server_tls && !(s->conn.flags & CONN_F_UNIX) &&
	       g_pooler.cfg->server_tls_sslmode >= TLS_MODE_PREFER;
}

static void server_send_ssl_request(struct server *s)
{
	uint32_t v[2] = { htonl(8), htonl(PROTO_SSL_REQUEST_CODE) };

	s->login->tls_asked = true;
	if (conn_send_bytes(&s->conn, v, sizeof(v)) < 0) {
		pool_login_failed(s->pool, "08006", "could not send SSL request");
		server_close(s, "could not send SSL request");
	}
}

/*
 * PostgreSQL's one-byte answer to SSLRequest. Anything after it in the
 * same read was not encrypted, yet would be taken as if it had come
 * through TLS (CVE-2021-23222): refused.
 */
static enum conn_rc server_tls_answer(struct server *s)
{
	struct iobuf *b = s->conn.rbuf;
	uint8_t answer = b->data[b->start];
	enum tls_sslmode mode = (enum tls_sslmode)g_pooler.cfg->server_tls_sslmode;
	const char *host = mode == TLS_MODE_VERIFY_FULL ? s->pool->host : NULL;

	b->start++;
	s->login->tls_asked = false;
	if (answer == 'S') {
		if (iobuf_len(b) > 0)
			return server_login_fail(s, "08P01",
						 "server sent unencrypted data after its SSL answer");
		if (conn_tls_start(&s->conn, g_pooler.server_tls, false, host) != 0)
			return server_login_fail(s, "08006", "could not start TLS");
		return s->state == SERVER_CLOSED ? CONN_CLOSED : CONN_OK;
	}
	if (answer != 'N')
		return server_login_fail(s, "08P01", "server answered SSL request with garbage");
	if (mode >= TLS_MODE_REQUIRE)
		return server_login_fail(s, "08006", "server does not support SSL, but "
					 "server_tls_sslmode requires it");
	server_send_startup(s);
	return s->state == SERVER_CLOSED ? CONN_CLOSED : CONN_OK;
}

static enum conn_rc server_on_tls_ready(struct conn *conn)
{
	struct server *s = container_of(conn, struct server, conn);

	server_logf(s, LOG_LVL_DEBUG, "TLS established");
	server_send_startup(s);
	return s->state == SERVER_CLOSED ? CONN_CLOSED : CONN_OK;
}

/* ---- login ---- */

static void server_free_login(struct server *s)
{
	if (!s->login)
		return;
	proto_buf_free(&s->login->params);
	free(s->login->server_version);
	auth_server_forget(&s->login->keys_wait);
	OPENSSL_cleanse(&s->login->scram, sizeof(s->login->scram));
	free(s->login);
	s->login = NULL;
}

static enum conn_rc server_login_fail(struct server *s, const char *sqlstate, const char *msg)
{
	pool_login_failed(s->pool, sqlstate, msg);
	server_close(s, "login failed: %s", msg);
	return CONN_CLOSED;
}

static int server_send_password(struct server *s, const char *password)
{
	struct proto_buf b;
	int rc;

	proto_buf_init(&b, 4096);
	proto_build_password(&b, password);
	rc = conn_send_buf(&s->conn, &b);
	proto_buf_free(&b);
	return rc;
}

static enum conn_rc server_auth_md5(struct server *s, const char *password, const uint8_t *salt,
				    size_t salt_len)
{
	char secret[MD5_SECRET_LEN + 1];
	char resp[MD5_SECRET_LEN + 1];

	if (salt_len != 4)
		return server_login_fail(s, "08P01", "malformed md5 request from server");
	if (md5_is_secret(password))
		util_strlcpy(secret, password, sizeof(secret));
	else
		md5_secret(password, s->pool->user_name, secret);
	md5_response(secret, salt, resp);
	if (server_send_password(s, resp) < 0)
		return server_login_fail(s, "08006", "could not send password");
	return CONN_OK;
}

static enum conn_rc server_auth_sasl(struct server *s, const char *password,
				     const uint8_t *payload, size_t len)
{
	char out[SCRAM_MSG_MAX];
	size_t outlen;
	struct proto_buf b;
	int rc;

	(void)password; /* auth.c picks a password or pass-through keys */
	if (!proto_sasl_has_mechanism(payload, len, "SCRAM-SHA-256"))
		return server_login_fail(s, "28000", "server offers no supported SASL mechanism");
	rc = auth_server_scram_first(&s->login->scram, s->pool->user_name, s->pool->password, out,
				     sizeof(out), &outlen);
	if (rc == SCRAM_ESTATE)
		return server_login_fail(s, "28P01",
					 "server wants SCRAM but pgmux has neither a plain password "
					 "nor the keys of a SCRAM login by this user (pass-through)");
	if (rc != SCRAM_OK)
		return server_login_fail(s, "08006", "SCRAM client-first failed");
	proto_buf_init(&b, 4096);
	proto_build_sasl_initial(&b, "SCRAM-SHA-256", out, outlen);
	rc = conn_send_buf(&s->conn, &b);
	proto_buf_free(&b);
	if (rc < 0)
		return server_login_fail(s, "08006", "could not send SASL message");
	return CONN_OK;
}

static void server_on_scram_keys(struct auth_server_wait *w, int rc);

/*
 * Server-first-message in (payload; NULL when the keys it needed are
 * ready), client-final-message out. A plain password's keys may first be
 * computed off the loop: then nothing is sent until server_on_scram_keys.
 */
static enum conn_rc server_auth_sasl_continue(struct server *s, const uint8_t *payload,
					      size_t len)
{
	char out[SCRAM_MSG_MAX];
	size_t outlen;
	struct proto_buf b;
	int rc;

	s->login->keys_wait.owner = s;
	s->login->keys_wait.done = server_on_scram_keys;
	rc = auth_server_scram_final(&s->login->scram, s->pool->user_name, payload, len, out,
				     sizeof(out), &outlen, &s->login->keys_wait);
	if (rc == AUTH_SCRAM_PENDING)
		return CONN_OK;
	if (rc == SCRAM_ESECRET)
		return server_login_fail(s, "28P01",
					 "SCRAM pass-through: the server's salt or iterations for "
					 "this user differ from the secret pgmux checked the client "
					 "against");
	if (rc != SCRAM_OK)
		return server_login_fail(s, "08P01", "malformed SCRAM server-first message");
	proto_buf_init(&b, 4096);
	proto_build_sasl_response(&b, out, outlen);
	rc = conn_send_buf(&s->conn, &b);
	proto_buf_free(&b);
	if (rc < 0)
		return server_login_fail(s, "08006", "could not send SASL message");
	return CONN_OK;
}

/* The keys server_auth_sasl_continue waited for are ready (or not). */
static void server_on_scram_keys(struct auth_server_wait *w, int rc)
{
	struct server *s = w->owner;

	if (s->state != SERVER_LOGIN || !s->login)
		return;
	if (rc != SCRAM_OK) {
		(void)server_login_fail(s, "08006", "could not compute SCRAM keys");
		return;
	}
	(void)server_auth_sasl_continue(s, NULL, 0);
}

static enum conn_rc server_on_auth(struct server *s, const uint8_t *body, size_t len)
{
	const char *password;
	const uint8_t *payload;
	size_t plen;
	uint32_t code;

	if (!proto_parse_auth(body, len, &code, &payload, &plen))
		return server_login_fail(s, "08P01", "malformed authentication request");
	if (code == PROTO_AUTH_OK)
		return CONN_OK;
	if (code == PROTO_AUTH_SASL_FINAL) {
		if (scram_client_verify(&s->login->scram, payload, plen) != SCRAM_OK)
			return server_login_fail(s, "28P01",
						 "server's SCRAM signature did not verify");
		return CONN_OK;
	}
	if (code == PROTO_AUTH_SASL_CONTINUE)
		return server_auth_sasl_continue(s, payload, plen);

	password = auth_server_password(s->pool->user_name, s->pool->password);
	if (!password && code != PROTO_AUTH_SASL)
		return server_login_fail(s, "28P01", "server asks for a password and none is configured");
	switch (code) {
	case PROTO_AUTH_CLEARTEXT:
		if (md5_is_secret(password) || scram_is_secret(password))
			return server_login_fail(
				s, "28P01", "server wants cleartext but only a hashed password is known");
		if (server_send_password(s, password) < 0)
			return server_login_fail(s, "08006", "could not send password");
		return CONN_OK;
	case PROTO_AUTH_MD5:
		return server_auth_md5(s, password, payload, plen);
	case PROTO_AUTH_SASL:
		return server_auth_sasl(s, password, payload, plen);
	default:
		break;
	}
	{
		char msg[128];

		snprintf(msg, sizeof(msg), "unsupported authentication method %u", code);
		return server_login_fail(s, "28000", msg);
	}
}

static void server_login_complete(struct server *s)
{
	struct pool *p = s->pool;

	pool_login_succeeded(p);
	/* The pool's defaults come from a server started without a client's
	 * own parameters. */
	if (!p->welcome && param_set_used(&s->startup) == 0)
		pool_set_welcome(p, &s->login->params, s->login->server_version);
	server_free_login(s);
	s->last_used_us = util_now_us();
	server_logf(s, LOG_LVL_DEBUG, "login complete");
	pool_server_ready(s);
}

static enum conn_rc server_login_message(struct server *s, const struct proto_msg *m,
					 const uint8_t *raw)
{
	switch (m->type) {
	case PROTO_BE_AUTH:
		return server_on_auth(s, m->body, m->body_len);
	case PROTO_BE_PARAMETER_STATUS: {
		const char *name;
		const char *value;

		if (!proto_parse_parameter_status(m->body, m->body_len, &name, &value))
			return server_login_fail(s, "08P01", "malformed ParameterStatus");
		proto_put_bytes(&s->login->params, raw, m->total);
		if (strcmp(name, "server_version") == 0) {
			free(s->login->server_version);
			s->login->server_version = xstrdup(value);
		}
		return CONN_OK;
	}
	case PROTO_BE_BACKEND_KEY_DATA:
		if (!proto_parse_backend_key_data(m->body, m->body_len, &s->be_pid, &s->be_key))
			return server_login_fail(s, "08P01", "malformed BackendKeyData");
		return CONN_OK;
	case PROTO_BE_ERROR_RESPONSE: {
		struct proto_error_fields ef;

		if (!proto_parse_error(m->body, m->body_len, &ef))
			return server_login_fail(s, "08P01", "malformed ErrorResponse");
		return server_login_fail(s, ef.sqlstate ? ef.sqlstate : "08006",
					 ef.message ? ef.message : "server refused login");
	}
	case PROTO_BE_NOTICE_RESPONSE:
	case PROTO_BE_NEGOTIATE_PROTOCOL_VERSION:
		return CONN_OK;
	case PROTO_BE_READY_FOR_QUERY:
		if (!proto_buf_ok(&s->login->params))
			return server_login_fail(s, "54000", "server parameters too large");
		server_login_complete(s);
		return CONN_OK;
	default:
		return server_login_fail(s, "08P01", "unexpected message during login");
	}
}

static enum conn_rc server_login_data(struct server *s)
{
	struct iobuf *b = s->conn.rbuf;

	if (s->login->tls_asked && iobuf_len(b) > 0 && server_tls_answer(s) == CONN_CLOSED)
		return CONN_CLOSED;
	if (s->state != SERVER_LOGIN || s->conn.rbuf != b)
		return CONN_OK;

	while (s->state == SERVER_LOGIN && s->conn.rbuf == b && iobuf_len(b) > 0) {
		struct proto_msg m;
		size_t pos = b->start;
		enum proto_frame_rc rc;
		const uint8_t *raw;

		rc = proto_stream_next(&s->conn.ps, b->data, b->end, &pos, &m);
		if (rc == PROTO_FRAME_NEED_MORE)
			return CONN_OK;
		if (rc != PROTO_FRAME_OK)
			return server_login_fail(s, "08P01", proto_frame_rc_str(rc));
		if (!m.whole) {
			if (m.total > iobuf_size())
				return server_login_fail(s, "08P01", "login message too large");
			return CONN_OK;
		}
		raw = b->data + pos;
		proto_stream_consume(&s->conn.ps, b->end, &pos, &m);
		b->start = (uint32_t)pos;
		if (server_login_message(s, &m, raw) == CONN_CLOSED)
			return CONN_CLOSED;
	}
	if (s->state == SERVER_CLOSED)
		return CONN_CLOSED;
	/* Logged in and possibly handed to a client already. */
	if (s->state == SERVER_IDLE && s->conn.rbuf && iobuf_len(s->conn.rbuf) > 0) {
		server_close(s, "server sent data after login");
		return CONN_CLOSED;
	}
	return CONN_OK;
}

/* ---- linked traffic ---- */

void server_link(struct server *s, struct client *c)
{
	s->client = c;
	server_set_state(s, SERVER_ACTIVE);
	prep_server_linked(s);
	client_linked(c, s);
}

static int server_send_query(struct server *s, const char *sql)
{
	struct proto_buf b;
	int rc;

	proto_buf_init(&b, 16 * 1024);
	proto_build_query(&b, sql);
	rc = conn_send_buf(&s->conn, &b);
	proto_buf_free(&b);
	return rc;
}

/* server_check_query's value: NULL when disabled; PgBouncer's "<empty>"
 * means the empty query, the cheapest round trip there is. */
static const char *server_check_sql(void)
{
	const char *q = g_pooler.cfg->server_check_query;

	if (!q || !q[0])
		return NULL;
	return strcmp(q, "<empty>") == 0 ? "" : q;
}

bool server_check_due(const struct server *s)
{
	double delay = g_pooler.cfg->server_check_delay;

	if (!server_check_sql())
		return false;
	return delay <= 0 || util_now_us() - s->last_used_us >= (uint64_t)(delay * 1e6);
}

bool server_start_check(struct server *s)
{
	if (server_send_query(s, server_check_sql()) < 0) {
		server_close(s, "could not send server_check_query");
		return false;
	}
	server_set_state(s, SERVER_RESETTING);
	s->resets_owed = 1;
	s->checking = true;
	s->pool->checking_servers++;
	return true;
}

/* Counts and logs what a client left behind, naming it for the operator. */
static void server_count_leaks(struct server *s, struct client *c, unsigned leaks)
{
	struct pool *p = s->pool;
	char who[160] = "a client that has left";
	char what[128] = "";

	if (c)
		client_ident(c, who, sizeof(who));
	for (int i = 0; i < PARAM_LEAK_KINDS; i++) {
		if (!(leaks & (1u << i)))
			continue;
		p->leaks.by_kind[i]++;
		p->leaks.last_kind = 1u << i;
		snprintf(what + strlen(what), sizeof(what) - strlen(what), "%s%s",
			 what[0] ? ", " : "", param_leak_str(1u << i));
	}
	p->leaks.resets++;
	p->leaks.last_at_us = util_wall_us();
	util_strlcpy(p->leaks.last_client, who, sizeof(p->leaks.last_client));
	log_info("%s left session state (%s) on server pid %u in %s mode; resetting it before "
		 "reuse", who, what, s->be_pid, cfg_pool_mode_str(p->mode));
}

/*
 * Session state outlives the transaction that made it; the next client
 * of this server must not inherit it. DISCARD ALL drops settings,
 * prepared statements, temporary objects, cursors and LISTENs; advisory
 * locks need their own call. Two queries, since DISCARD ALL refuses to
 * run inside the implicit transaction of a multi-statement string.
 */
static void server_clean_leaks(struct server *s, struct client *c, unsigned leaks)
{
	struct proto_buf b;

	server_count_leaks(s, c, leaks);
	proto_buf_init(&b, 256);
	proto_build_query(&b, "DISCARD ALL");
	proto_build_query(&b, "SELECT pg_advisory_unlock_all()");
	if (conn_send_buf(&s->conn, &b) < 0) {
		proto_buf_free(&b);
		server_close(s, "could not send the session-state reset");
		return;
	}
	proto_buf_free(&b);
	server_set_state(s, SERVER_RESETTING);
	s->resets_owed = 2;
}

void server_release(struct server *s, enum server_release_kind how)
{
	struct client *c = s->client;
	const char *reset = g_pooler.cfg->server_reset_query;
	bool busy = c && c->outstanding > 0;

	unsigned leaks = s->leaks | (c ? c->leaks : 0);

	s->leaks = 0;
	sqlprep_server_released(s);
	if (c) {
		c->leaks = 0;
		s->client = NULL;
		client_unlinked(c);
	}
	s->last_used_us = util_now_us();
	if (how == SERVER_RELEASE_DIRTY || s->state == SERVER_CLOSED) {
		/* A backend busy with a query notices the closed socket only
		 * when it next writes; cancel it so its transaction ends now. */
		if (busy && s->state != SERVER_CLOSED)
			cancel_send(s, NULL);
		server_close(s, "client left it in an unknown state");
		return;
	}
	conn_unblock(&s->conn);
	if (s->cancels_in_flight > 0) {
		/* PostgreSQL only knows the backend: a cancel meant for the
		 * query that just ended would hit the next client's. */
		server_set_state(s, SERVER_CANCELING);
		return;
	}
	if (how == SERVER_RELEASE_RESET && reset && reset[0] &&
	    g_pooler.run_state != POOLER_SHUTDOWN_NOW) {
		if (server_send_query(s, reset) < 0) {
			server_close(s, "could not send reset query");
			return;
		}
		server_set_state(s, SERVER_RESETTING);
		s->resets_owed = 1;
		return;
	}
	if (leaks && s->pool->mode != POOL_MODE_SESSION) {
		server_clean_leaks(s, c, leaks);
		return;
	}
	pool_server_ready(s);
}

/* What the forward loop decided about the server once bytes are out. */
enum server_outcome {
	SERVER_KEEP,    /* still linked */
	SERVER_RELEASE, /* the client's transaction is over */
	SERVER_LOST,    /* PostgreSQL sent FATAL: the connection is ending */
	SERVER_STMT_VIOLATION, /* statement mode, transaction left open */
};

static bool severity_is_fatal(const char *sev)
{
	return sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
}

/* One request answered: the client owes one ReadyForQuery less. */
static void server_count_query(struct server *s, struct client *c)
{
	uint64_t now = util_now_us();

	if (c->outstanding > 0)
		c->outstanding--;
	s->pool->stats.query_count++;
	s->pool->stats.query_time_us += now - c->request_time_us;
	c->request_time_us = now;
}

/*
 * Walks the server's buffered messages. Most pass through untouched; the
 * loop stops early to see a ReadyForQuery or ErrorResponse whole.
 */
/* What server_scan left for server_forward to do before scanning on. */
struct server_scan_act {
	bool drop;  /* swallow the message at pos (prepared.c) */
	bool again; /* stopped early for it, or for pgmux's own bytes to go out */
};

/*
 * Prepared-statement bookkeeping for one answer, once it is whole if it
 * must be: 0 go on, 1 stop before it (act says why), -1 out of step.
 */
static int server_prep_answer(struct server *s, const struct proto_msg *m,
			      struct server_scan_act *act, char *fatal, size_t fatal_len)
{
	const char *why = "";

	switch (prep_server_message(s, m, &why)) {
	case PREP_ANS_PASS:
		return 0;
	case PREP_ANS_WAIT:
		return 1;
	case PREP_ANS_DROP:
		act->drop = true;
		act->again = true;
		return 1;
	case PREP_ANS_BROKEN:
		snprintf(fatal, fatal_len, "%s", why);
		return -1;
	}
	return 0;
}

/*
 * A CommandComplete for the client: session state its statement left.
 * SQL-level PREPARE and DEALLOCATE are carried across servers
 * (sqlprep.h); one pgmux could not follow leaves state to reset.
 */
static void server_note_tag(struct server *s, struct client *c, const struct proto_msg *m)
{
	s->leaks |= (param_leak_from_tag(m->body, m->body_len) & ~(unsigned)PARAM_LEAK_PREPARE) |
		    sqlprep_server_tag(s, c, m->body, m->body_len);
}

static enum server_outcome server_scan(struct server *s, size_t *pos_out,
				       struct server_scan_act *act, char *fatal, size_t fatal_len)
{
	struct client *c = s->client;
	struct iobuf *b = s->conn.rbuf;
	size_t pos = b->start;
	enum server_outcome out = SERVER_KEEP;
	bool tracked = s->prep && c->prep;
	int prc;

	for (;;) {
		struct proto_msg m;
		enum proto_frame_rc rc;

		if (tracked && prep_has_output(s)) {
			act->again = true; /* answers of pgmux's own go out here */
			break;
		}
		rc = proto_stream_next(&s->conn.ps, b->data, b->end, &pos, &m);
		if (rc == PROTO_FRAME_NEED_MORE)
			break;
		if (rc != PROTO_FRAME_OK) {
			snprintf(fatal, fatal_len, "invalid message from server: %s",
				 proto_frame_rc_str(rc));
			out = SERVER_LOST;
			break;
		}
		if (m.type == PROTO_BE_READY_FOR_QUERY) {
			uint8_t st;

			if (!m.whole)
				break;
			if (!proto_parse_ready_for_query(m.body, m.body_len, &st)) {
				snprintf(fatal, fatal_len, "malformed ReadyForQuery");
				out = SERVER_LOST;
				break;
			}
			if (tracked && (prc = server_prep_answer(s, &m, act, fatal, fatal_len))) {
				if (prc < 0)
					out = SERVER_LOST;
				break;
			}
			proto_stream_consume(&s->conn.ps, b->end, &pos, &m);
			server_count_query(s, c);
			sqlprep_server_ready(s);
			c->tx_status = st;
			s->tx_status = st;
			c->copy_in = false;
			if (c->outstanding > 0)
				continue;
			if (c->unsynced)
				continue; /* the client is mid-pipeline */
			/* The client is mid-message (say, a CopyData that
			 * PostgreSQL ignores outside COPY): the rest of it is
			 * on its way to this server and must not reach the
			 * next client's session, nor this one the next. */
			if (c->conn.ps.body_left > 0)
				continue;
			if (st == PROTO_TX_IDLE && s->pool->mode != POOL_MODE_SESSION) {
				out = SERVER_RELEASE;
				break;
			}
			if (st != PROTO_TX_IDLE && s->pool->mode == POOL_MODE_STATEMENT) {
				out = SERVER_STMT_VIOLATION;
				break;
			}
			continue;
		}
		if (m.type == PROTO_BE_ERROR_RESPONSE) {
			struct proto_error_fields ef;

			if (!m.whole && m.total <= iobuf_size())
				break;
			if (m.whole && proto_parse_error(m.body, m.body_len, &ef) &&
			    severity_is_fatal(ef.severity)) {
				/* Not forwarded: the client hears it from us with
				 * a SQLSTATE it can act on. */
				snprintf(fatal, fatal_len, "%s", ef.message ? ef.message : "FATAL");
				out = SERVER_LOST;
				break;
			}
			c->copy_in = false;
		} else if (m.type == PROTO_BE_COPY_IN_RESPONSE) {
			c->copy_in = true;
		} else if (m.type == PROTO_BE_COMMAND_COMPLETE) {
			c->copy_in = false;
			if (m.whole)
				server_note_tag(s, c, &m);
		} else if (m.type == PROTO_BE_PARAMETER_STATUS) {
			if (!m.whole && m.total <= iobuf_size())
				break; /* small: wait for all of it */
			if (m.whole)
				server_note_param(s, c, &m);
		}
		if (tracked && (prc = server_prep_answer(s, &m, act, fatal, fatal_len))) {
			if (prc < 0)
				out = SERVER_LOST;
			break;
		}
		proto_stream_consume(&s->conn.ps, b->end, &pos, &m);
	}
	if (tracked && prep_has_output(s))
		act->again = true;
	*pos_out = pos;
	return out;
}

static enum conn_rc server_lost(struct server *s, const char *why)
{
	struct client *c = s->client;

	s->client = NULL;
	if (c)
		client_server_lost(c, why, s->conn.ps.body_left > 0);
	server_close(s, "%s", why);
	return CONN_CLOSED;
}

/* Swallows the whole message at the start of the read buffer. */
static void server_drop_answer(struct server *s)
{
	struct iobuf *b = s->conn.rbuf;
	const uint8_t *p = b->data + b->start;
	uint32_t len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];

	b->start += 1 + len;
}

/* Sends pgmux's own bytes (prepared.c): to the server, then to the client. */
static enum conn_rc server_send_prep(struct server *s)
{
	struct client *c = s->client;
	int rc = prep_send_output(s, NULL);

	if (rc < 0)
		return server_lost(s, "could not send to server");
	if (rc > 0) {
		client_close(c, "could not send to client");
		return CONN_CLOSED;
	}
	return CONN_OK;
}

/*
 * Forwards the server's answers to the linked client. With prepared
 * statements tracked, answers pgmux owes itself are swallowed and ones it
 * owes the client are sent in their place, so the walk runs in stretches;
 * it stops early if the client stopped reading (client_on_drained
 * resumes it).
 */
static enum conn_rc server_forward(struct server *s)
{
	struct client *c = s->client;
	char fatal[512];
	size_t pos;
	size_t n;
	enum server_outcome out;
	struct server_scan_act act;

	for (;;) {
		fatal[0] = '\0';
		act.drop = false;
		act.again = false;
		out = server_scan(s, &pos, &act, fatal, sizeof(fatal));
		n = pos - s->conn.rbuf->start;
		s->pool->stats.bytes_sent += n;
		if (conn_forward(&s->conn, &c->conn, n) < 0) {
			/* The client is unreachable; it takes its transaction with it. */
			client_close(c, "could not send to client");
			return s->state == SERVER_CLOSED ? CONN_CLOSED : CONN_OK;
		}
		if (act.drop)
			server_drop_answer(s);
		if (prep_has_output(s) && server_send_prep(s) == CONN_CLOSED)
			return CONN_CLOSED;
		if (out != SERVER_KEEP || !act.again || !s->conn.rbuf ||
		    (s->conn.flags & CONN_F_BLOCKED))
			break;
	}
	switch (out) {
	case SERVER_KEEP:
		prep_kick_client(c);
		return s->state == SERVER_CLOSED ? CONN_CLOSED : CONN_OK;
	case SERVER_RELEASE:
		if ((s->conn.rbuf && iobuf_len(s->conn.rbuf) > 0) || !prep_server_quiet(s)) {
			server_release(s, SERVER_RELEASE_DIRTY);
			return CONN_CLOSED;
		}
		server_release(s, SERVER_RELEASE_CLEAN);
		prep_kick_client(c); /* it may have requests buffered */
		return s->state == SERVER_CLOSED ? CONN_CLOSED : CONN_OK;
	case SERVER_LOST:
		return server_lost(s, fatal);
	case SERVER_STMT_VIOLATION:
		s->client = NULL;
		c->server = NULL;
		client_fatal(c, "25001", "transaction blocks not allowed in statement pooling mode");
		server_close(s, "statement mode client opened a transaction");
		return CONN_CLOSED;
	}
	return CONN_OK;
}

/* Bytes from a server nobody is using: notices are harmless, the rest
 * (an error, a FATAL before shutdown) means it cannot be trusted. */
static enum conn_rc server_idle_data(struct server *s)
{
	struct iobuf *b = s->conn.rbuf;
	size_t pos = b->start;

	for (;;) {
		struct proto_msg m;
		enum proto_frame_rc rc = proto_stream_next(&s->conn.ps, b->data, b->end, &pos, &m);

		if (rc == PROTO_FRAME_NEED_MORE)
			break;
		if (rc != PROTO_FRAME_OK || (m.type != PROTO_BE_NOTICE_RESPONSE &&
					     m.type != PROTO_BE_PARAMETER_STATUS &&
					     m.type != PROTO_BE_NOTIFICATION_RESPONSE)) {
			server_close(s, "idle server sent %s", proto_be_type_str(m.type));
			return CONN_CLOSED;
		}
		proto_stream_consume(&s->conn.ps, b->end, &pos, &m);
	}
	b->start = (uint32_t)pos;
	return CONN_OK;
}

/* Answers to server_reset_query are swallowed until ReadyForQuery. */
/* A tracked parameter the server reports: the server's value, and the
 * linked client's too (it asked for it, or it changed under it). */
static void server_note_param(struct server *s, struct client *c, const struct proto_msg *m)
{
	const char *name;
	const char *value;
	int idx;

	if (!param_parse_status(m->body, m->body_len, &name, &value))
		return;
	idx = param_index(name);
	if (idx < 0)
		return;
	param_set_value(&s->params, idx, value);
	if (!c)
		return;
	param_set_value(&c->params, idx, value);
	if (strcmp(param_name(idx), "application_name") == 0) {
		free(c->app_name); /* SHOW CLIENTS shows the current one */
		c->app_name = value[0] ? xstrdup(value) : NULL;
	}
}

/*
 * The SET query for a waiting client failed: the client hears why. A
 * PREPARE run again for it that fails only leaves the name off this
 * server: the client's EXECUTE here then fails as the statement would.
 */
static void server_note_sync_error(struct server *s, const struct proto_msg *m)
{
	struct proto_error_fields ef;
	char who[160];

	if (!proto_parse_error(m->body, m->body_len, &ef))
		return;
	if (!s->sync_set_owed) {
		client_ident(s->sync_client, who, sizeof(who));
		log_info("%s: a SQL-level prepared statement could not be prepared again on "
			 "server pid %u: %s", who, s->be_pid, ef.message ? ef.message : "error");
		return;
	}
	if (s->sync_error[0])
		return;
	snprintf(s->sync_error, sizeof(s->sync_error), "%s", ef.message ? ef.message : "SET failed");
	snprintf(s->sync_sqlstate, sizeof(s->sync_sqlstate), "%s",
		 ef.sqlstate ? ef.sqlstate : "22023");
}

/* A CommandComplete of pgmux's own queries. */
static void server_note_reset_tag(struct server *s, const struct proto_msg *m)
{
	if (s->prep)
		prep_server_note_complete(s, m->body, m->body_len);
	(void)sqlprep_server_tag(s, NULL, m->body, m->body_len);
}

/* Every RESETTING query has answered: the server goes to its next user. */
static enum conn_rc server_reset_done(struct server *s)
{
	struct client *c = s->sync_client;

	if (s->checking) {
		s->checking = false;
		s->pool->checking_servers--;
		s->last_used_us = util_now_us(); /* it just proved alive */
	}
	if (!c) {
		pool_server_ready(s);
		return s->state == SERVER_CLOSED ? CONN_CLOSED : CONN_OK;
	}
	s->sync_client = NULL;
	c->sync_server = NULL;
	if (s->sync_error[0]) {
		/* The SETs ran as one implicit transaction, rolled back whole:
		 * the server is as it was and serves the next client. */
		client_fatal(c, s->sync_sqlstate, "%s", s->sync_error);
		s->sync_error[0] = '\0';
		pool_server_ready(s);
	} else if (c->state == CLIENT_WAITING) {
		server_link(s, c);
		(void)client_resume(c);
	} else {
		pool_server_ready(s);
	}
	return s->state == SERVER_CLOSED ? CONN_CLOSED : CONN_OK;
}

/*
 * Answers to pgmux's own queries (server_reset_query, server_check_query,
 * the session-state reset, a client's SETs) are swallowed until the
 * ReadyForQuery of the last one; tracked parameters they change are noted.
 */
static enum conn_rc server_reset_data(struct server *s)
{
	struct iobuf *b = s->conn.rbuf;
	size_t pos = b->start;

	for (;;) {
		struct proto_msg m;
		enum proto_frame_rc rc = proto_stream_next(&s->conn.ps, b->data, b->end, &pos, &m);
		uint8_t st;

		if (rc == PROTO_FRAME_NEED_MORE)
			break;
		if (rc != PROTO_FRAME_OK ||
		    (m.type == PROTO_BE_ERROR_RESPONSE && !s->sync_client)) {
			server_close(s, s->checking ? "server_check_query failed" :
						      "server_reset_query failed");
			return CONN_CLOSED;
		}
		if ((m.type == PROTO_BE_PARAMETER_STATUS || m.type == PROTO_BE_ERROR_RESPONSE) &&
		    !m.whole) {
			if (m.total > iobuf_size()) {
				server_close(s, "oversized message during reset");
				return CONN_CLOSED;
			}
			break;
		}
		if (m.type == PROTO_BE_PARAMETER_STATUS)
			server_note_param(s, s->sync_client, &m); /* its SETs, as the server spells them */
		else if (m.type == PROTO_BE_ERROR_RESPONSE)
			server_note_sync_error(s, &m);
		if (m.type == PROTO_BE_COMMAND_COMPLETE) {
			/* DISCARD ALL drops the statements pgmux knows of; a
			 * PREPARE of the sync is now on the server. */
			if (!m.whole && m.total <= iobuf_size())
				break;
			if (m.whole)
				server_note_reset_tag(s, &m);
		}
		if (m.type != PROTO_BE_READY_FOR_QUERY) {
			proto_stream_consume(&s->conn.ps, b->end, &pos, &m);
			continue;
		}
		if (!m.whole)
			break;
		proto_stream_consume(&s->conn.ps, b->end, &pos, &m);
		b->start = (uint32_t)pos;
		sqlprep_server_ready(s);
		s->sync_set_owed = false;
		if (s->resets_owed > 1) {
			s->resets_owed--;
			continue;
		}
		s->resets_owed = 0;
		if (!proto_parse_ready_for_query(m.body, m.body_len, &st) || st != PROTO_TX_IDLE ||
		    iobuf_len(b) > 0) {
			server_close(s, "server not idle after reset");
			return CONN_CLOSED;
		}
		s->tx_status = st;
		return server_reset_done(s);
	}
	b->start = (uint32_t)pos;
	return CONN_OK;
}

bool server_start_sync(struct server *s, struct client *c, struct proto_buf *q, uint32_t owed,
		       bool with_set)
{
	if (conn_send_buf(&s->conn, q) < 0) {
		server_close(s, "could not send the client's parameters");
		return false;
	}
	server_set_state(s, SERVER_RESETTING);
	s->resets_owed = owed;
	s->sync_set_owed = with_set;
	s->sync_client = c;
	s->sync_error[0] = '\0';
	c->sync_server = s;
	return true;
}

enum conn_rc server_resume(struct server *s)
{
	if (s->conn.rbuf && iobuf_len(s->conn.rbuf) > 0)
		return server_on_data(&s->conn);
	return CONN_OK;
}

static enum conn_rc server_on_data(struct conn *conn)
{
	struct server *s = container_of(conn, struct server, conn);

	switch (s->state) {
	case SERVER_LOGIN:
		return server_login_data(s);
	case SERVER_ACTIVE:
		return s->authq ? authq_server_data(s) : server_forward(s);
	case SERVER_IDLE:
	case SERVER_CANCELING:
		return server_idle_data(s);
	case SERVER_RESETTING:
		return server_reset_data(s);
	case SERVER_CONNECTING:
	case SERVER_CLOSED:
		break;
	}
	return CONN_CLOSED;
}

static void server_on_read_error(struct conn *conn, int status)
{
	struct server *s = container_of(conn, struct server, conn);
	const char *why = status == UV_EOF ? "server closed the connection unexpectedly" :
			  status == UV_EPROTO && conn->tls ? conn_tls_error(conn) :
							     uv_strerror(status);

	switch (s->state) {
	case SERVER_CONNECTING:
	case SERVER_LOGIN:
		pool_login_failed(s->pool, "08006", why);
		server_close(s, "login failed: %s", why);
		return;
	case SERVER_ACTIVE:
		(void)server_lost(s, why);
		return;
	case SERVER_IDLE:
	case SERVER_RESETTING:
	case SERVER_CANCELING:
		server_close(s, "%s", why);
		return;
	case SERVER_CLOSED:
		return;
	}
}

/* The client's request reached the server: let the client send more. */
static void server_on_drained(struct conn *conn)
{
	struct server *s = container_of(conn, struct server, conn);

	if (s->client) {
		conn_unblock(&s->client->conn);
		prep_kick_client(s->client);
	}
}

void server_cancel_done(struct server *s, bool taken)
{
	s->cancels_in_flight--;
	if (s->state != SERVER_CANCELING)
		return;
	if (!taken) {
		server_close(s, "a cancel request for it may still arrive");
		return;
	}
	if (s->cancels_in_flight == 0)
		pool_server_ready(s);
}

void server_close(struct server *s, const char *fmt, ...)
{
	va_list ap;

	if (s->state == SERVER_CLOSED)
		return;
	va_start(ap, fmt);
	server_logv(s, s->state == SERVER_IDLE ? LOG_LVL_DEBUG : LOG_LVL_LOG, fmt, ap);
	va_end(ap);
	if (s->client) {
		struct client *c = s->client;

		s->client = NULL;
		client_server_lost(c, "server connection closed", s->conn.ps.body_left > 0);
	}
	if (s->resolve) {
		struct server_resolve *r = container_of(s->resolve, struct server_resolve, req);

		r->server = NULL;
		uv_cancel((uv_req_t *)s->resolve);
		s->resolve = NULL;
	}
	cancel_forget_server(s);
	prep_server_closed(s);
	sqlprep_server_closed(s);
	if (s->authq)
		authq_server_closed(s);
	if (s->sync_client) {
		/* It keeps waiting, now for any server. */
		s->sync_client->sync_server = NULL;
		s->sync_client = NULL;
	}
	server_set_state(s, SERVER_CLOSED);
	conn_close(&s->conn);
}

static void server_on_closed(struct conn *conn)
{
	struct server *s = container_of(conn, struct server, conn);
	struct pool *p = s->pool;

	server_free_login(s);
	param_set_clear(&s->params);
	param_set_clear(&s->startup);
	free(s);
	g_pooler.server_count--;
	if (g_pooler.run_state != POOLER_SHUTDOWN_NOW) {
		pool_launch_servers(p);
		pool_kick_related(p);
	}
	pooler_maybe_finish_shutdown();
}
