/*
 * client.c: client connection state machine. Owns struct client from accept
 * to close_cb: startup packet, authentication (via auth.c), welcome, then
 * forwarding of requests to whatever server the pool links, counting the
 * ReadyForQuery messages each request is owed so a server is released only
 * when the client's transaction is really over.
 */
#include "client.h"

#include <stdarg.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "admin.h"
#include "auth.h"
#include "cancel.h"
#include "fds.h"
#include "log.h"
#include "pool.h"
#include "pooler.h"
#include "prepared.h"
#include "proto.h"
#include "proto_startup.h"
#include "server.h"
#include "sqlprep.h"
#include "tls.h"
#include "util.h"

/* Login-only state, freed as soon as the client is welcomed. */
struct client_login {
	struct auth_state auth;
	struct proto_buf out; /* authentication replies held back to go out with the welcome */
	char *user;
	char *database;
	bool admin;        /* logging in to the console */
	bool admin_rights; /* ... as an admin, not only stats */
};

static enum conn_rc client_on_data(struct conn *conn);
static void client_free_login(struct client *c);
static void client_on_read_error(struct conn *conn, int status);
static void client_on_drained(struct conn *conn);
static void client_on_closed(struct conn *conn);

static const struct conn_ops client_ops = {
	.on_data = client_on_data,
	.on_read_error = client_on_read_error,
	.on_drained = client_on_drained,
	.on_closed = client_on_closed,
};

struct auth_state *client_auth_state(struct client *c)
{
	return &c->login->auth;
}

struct proto_buf *client_login_out(struct client *c)
{
	return &c->login->out;
}

const char *client_state_str(enum client_state s)
{
	switch (s) {
	case CLIENT_LOGIN:
		return "login";
	case CLIENT_WELCOME:
		return "welcome";
	case CLIENT_IDLE:
		return "idle";
	case CLIENT_WAITING:
		return "waiting";
	case CLIENT_ACTIVE:
		return "active";
	case CLIENT_ADMIN:
		return "admin";
	case CLIENT_CLOSED:
		return "closed";
	}
	return "unknown";
}

struct client *client_new(void)
{
	struct client *c = xcalloc(1, sizeof(*c));

	list_node_init(&c->node);
	c->id = ++g_pooler.next_client_id;
	c->state = CLIENT_CLOSED;
	c->phase = CLIENT_PH_STARTUP;
	c->tx_status = PROTO_TX_IDLE;
	return c;
}

static const char *client_user(const struct client *c)
{
	if (c->login && c->login->user)
		return c->login->user;
	return c->user ? c->user : "";
}

static const char *client_db(const struct client *c)
{
	if (c->pool)
		return c->pool->db_name;
	if (c->login && c->login->database)
		return c->login->database;
	return c->state == CLIENT_ADMIN ? "pgmux" : "";
}

void client_peer_addr(struct client *c, char *addr, size_t addrlen, int *port)
{
	int len = sizeof(c->peer);

	if (c->conn.flags & CONN_F_UNIX) {
		util_strlcpy(addr, "unix", addrlen);
		*port = 0;
		return;
	}
	if (c->peer.sa.sa_family == 0 &&
	    uv_tcp_getpeername(&c->conn.h.tcp, &c->peer.sa, &len) != 0)
		c->peer.sa.sa_family = AF_UNSPEC;
	if (c->peer.sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &c->peer.in.sin_addr, addr, (socklen_t)addrlen);
		*port = ntohs(c->peer.in.sin_port);
	} else if (c->peer.sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &c->peer.in6.sin6_addr, addr, (socklen_t)addrlen);
		*port = ntohs(c->peer.in6.sin6_port);
	} else {
		util_strlcpy(addr, "unknown", addrlen);
		*port = 0;
	}
}

void client_ident(struct client *c, char *out, size_t outlen)
{
	char addr[64];
	int port;

	client_peer_addr(c, addr, sizeof(addr), &port);
	snprintf(out, outlen, "C-%u %s@%s %s:%d", c->id, client_user(c), client_db(c), addr, port);
}

static void client_log(struct client *c, enum log_level lvl, const char *fmt, va_list ap)
{
	char ident[160];
	char msg[512];

	client_ident(c, ident, sizeof(ident));
	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_msg(lvl, "%s: %s", ident, msg);
}

static void client_logf(struct client *c, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void client_logf(struct client *c, enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	client_log(c, lvl, fmt, ap);
	va_end(ap);
}

/* The list a state lives on; NULL for states that are on none. */
static struct list *client_list_for(struct client *c, enum client_state st)
{
	struct pool *p = c->pool;

	switch (st) {
	case CLIENT_LOGIN:
		return &g_pooler.login_clients;
	case CLIENT_ADMIN:
		return &g_pooler.admin_clients;
	case CLIENT_WELCOME:
		return &p->welcome_clients;
	case CLIENT_IDLE:
		return &p->idle_clients;
	case CLIENT_WAITING:
		return &p->waiting_clients;
	case CLIENT_ACTIVE:
		return &p->active_clients;
	case CLIENT_CLOSED:
		return NULL;
	}
	log_fatal("bad client state %d", (int)st);
	abort();
}

static bool client_transition_ok(enum client_state from, enum client_state to)
{
	if (to == CLIENT_CLOSED)
		return from != CLIENT_CLOSED;
	switch (from) {
	case CLIENT_CLOSED:
		return to == CLIENT_LOGIN;
	case CLIENT_LOGIN:
		return to == CLIENT_WELCOME || to == CLIENT_IDLE || to == CLIENT_ADMIN;
	case CLIENT_WELCOME:
		return to == CLIENT_IDLE;
	case CLIENT_IDLE:
		return to == CLIENT_WAITING || to == CLIENT_ACTIVE;
	case CLIENT_WAITING:
		return to == CLIENT_ACTIVE;
	case CLIENT_ACTIVE:
		return to == CLIENT_IDLE;
	case CLIENT_ADMIN:
		return false;
	}
	return false;
}

void client_set_state(struct client *c, enum client_state next)
{
	struct list *from;
	struct list *to;

	if (!client_transition_ok(c->state, next)) {
		log_fatal("C-%u: illegal client transition %s -> %s", c->id,
			  client_state_str(c->state), client_state_str(next));
		abort();
	}
	if (c->pool)
		pool_account(c->pool);
	from = client_list_for(c, c->state);
	if (from)
		list_remove(from, &c->node);
	c->state = next;
	to = client_list_for(c, next);
	if (to)
		list_append(to, &c->node);
}

void client_accepted(struct client *c)
{
	conn_init(&c->conn, CONN_CLIENT, &client_ops, c->conn.h.handle.type == UV_NAMED_PIPE);
	c->connect_time_us = util_wall_us();
	c->accepted_ms = uv_now(g_pooler.loop);
	c->active_ms = c->accepted_ms;
	g_pooler.client_count++;
	fds_track(conn_fd(&c->conn), FDS_CLIENT, c);
	client_set_state(c, CLIENT_LOGIN);
	/*
	 * Near the descriptor limit only the admin console may still come in
	 * (its startup packet decides); at the very edge nobody can, and is
	 * told so at once rather than closed silently.
	 */
	if (!fds_client_room(true)) {
		g_fds_counters.refused++;
		client_fatal(c, "53300", "too many connections: file descriptor limit reached");
		return;
	}
	c->in_fd_reserve = !fds_client_room(false);
	conn_set_tcp_options(&c->conn);
	if (conn_read_start(&c->conn) < 0)
		client_close(c, "could not start reading");
}

/* ---- closing ---- */

/*
 * Detaches c from its server (returning the server to the pool only if its
 * state is known to be clean) and from every list, then closes the handle.
 */
static void client_teardown(struct client *c)
{
	struct server *s = c->server;

	if (s) {
		enum server_release_kind how = SERVER_RELEASE_DIRTY;

		if (c->tx_status == PROTO_TX_IDLE && c->outstanding == 0 && !c->unsynced &&
		    !c->copy_in && c->conn.ps.body_left == 0)
			how = c->pool->mode == POOL_MODE_SESSION ||
					      g_pooler.cfg->server_reset_query_always ?
				      SERVER_RELEASE_RESET :
				      SERVER_RELEASE_CLEAN;
		server_release(s, how);
	}
	if (c->cancel_hash_key) {
		HASH_DEL(g_pooler.by_cancel_key, c);
		c->cancel_hash_key = 0;
	}
	cancel_forget(c);
	if (c->sync_server) {
		c->sync_server->sync_client = NULL;
		c->sync_server = NULL;
	}
	client_set_state(c, CLIENT_CLOSED);
}

void client_log_event(struct client *c, const char *msg)
{
	client_logf(c, LOG_LVL_LOG, "%s", msg);
}

void client_close(struct client *c, const char *fmt, ...)
{
	va_list ap;

	if (c->state == CLIENT_CLOSED)
		return;
	if (g_pooler.cfg->log_disconnections) {
		va_start(ap, fmt);
		client_log(c, LOG_LVL_LOG, fmt, ap);
		va_end(ap);
	}
	client_teardown(c);
	conn_close(&c->conn);
}

static void client_send_error(struct client *c, const char *severity, const char *sqlstate,
			      const char *message, const char *detail)
{
	struct proto_buf b;

	proto_buf_init(&b, 64 * 1024);
	proto_build_error(&b, severity, sqlstate, message, detail);
	if (conn_send_buf(&c->conn, &b) < 0)
		client_logf(c, LOG_LVL_DEBUG, "could not send error: %s", message);
	proto_buf_free(&b);
}

void client_fatal(struct client *c, const char *sqlstate, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (c->state == CLIENT_CLOSED)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (g_pooler.cfg->log_pooler_errors)
		client_logf(c, LOG_LVL_WARNING, "closing: %s (%s)", msg, sqlstate);
	client_send_error(c, "FATAL", sqlstate, msg, NULL);
	client_teardown(c);
	conn_close_after_flush(&c->conn);
}

static void client_on_read_error(struct conn *conn, int status)
{
	struct client *c = container_of(conn, struct client, conn);

	if (status == UV_EOF)
		client_close(c, "client closed the connection");
	else if (status == UV_E2BIG)
		client_fatal(c, "08P01", "message too large for pkt_buf before authentication");
	else
		client_close(c, "client connection error: %s", uv_strerror(status));
}

static void client_on_closed(struct conn *conn)
{
	struct client *c = container_of(conn, struct client, conn);

	client_free_login(c);
	admin_session_end(c);
	prep_client_closed(c);
	sqlprep_client_closed(c);
	free(c->user);
	free(c->app_name);
	param_set_clear(&c->params);
	param_set_clear(&c->startup);
	free(c);
	g_pooler.client_count--;
	pooler_maybe_finish_shutdown();
}

/* Its server's write queue drained: let the server send more. */
static void client_on_drained(struct conn *conn)
{
	struct client *c = container_of(conn, struct client, conn);
	struct server *s = c->server;

	if (s) {
		conn_unblock(&s->conn);
		/* A server with prepared-statement traffic stops with answers
		 * buffered when pgmux's own bytes for c had to queue. */
		if (s->prep && s->conn.rbuf && iobuf_len(s->conn.rbuf) > 0)
			(void)server_resume(s);
	}
	prep_kick_client(c);
}

/* ---- login ---- */

/*
 * Cancel keys must be unguessable (a key is all it takes to cancel someone
 * else's query), so they come from OpenSSL's CSPRNG; drawing 512 bytes at a
 * time keeps that cost off the per-login path.
 */
static void client_random(uint32_t out[2])
{
	static uint32_t pool[128];
	static size_t left;

	if (left < 2) {
		if (RAND_bytes((unsigned char *)pool, sizeof(pool)) != 1) {
			log_fatal("OpenSSL could not generate random bytes");
			abort();
		}
		left = sizeof(pool) / sizeof(pool[0]);
	}
	out[0] = pool[--left];
	out[1] = pool[--left];
}

static void client_assign_cancel_key(struct client *c)
{
	struct client *other;

	do {
		uint32_t rnd[2];

		client_random(rnd);
		c->cancel_pid = rnd[0] & 0x7fffffff;
		c->cancel_key = rnd[1];
		if (c->cancel_pid == 0)
			c->cancel_pid = 1;
		c->cancel_hash_key = ((uint64_t)c->cancel_pid << 32) | c->cancel_key;
		HASH_FIND(hh, g_pooler.by_cancel_key, &c->cancel_hash_key, sizeof(uint64_t),
			  other);
	} while (other);
	HASH_ADD(hh, g_pooler.by_cancel_key, cancel_hash_key, sizeof(uint64_t), c);
}

/*
 * Sends the end of a successful login in one write: the authentication
 * replies auth.c held back (AuthenticationOk, SASLFinal), the parameters
 * (the pool's, or the console's when params is NULL), the cancel key and
 * ReadyForQuery.
 */
/*
 * The pool's ParameterStatus set as this client sees it: its own values of
 * tracked parameters (from its startup packet) in place of the server's,
 * and those the server did not report appended.
 */
static void client_put_params(struct client *c, struct proto_buf *b, const uint8_t *params,
			      size_t len)
{
	bool sent[PARAM_MAX] = { false };
	struct param_msg m;
	size_t pos = 0;

	while (param_walk(params, len, &pos, &m)) {
		if (m.idx >= 0 && c->params.v[m.idx]) {
			proto_build_parameter_status(b, m.name, c->params.v[m.idx]);
			sent[m.idx] = true;
		} else {
			proto_put_bytes(b, m.bytes, m.total);
		}
	}
	for (size_t i = 0; i < param_count(); i++) {
		if (c->params.v[i] && !sent[i])
			proto_build_parameter_status(b, param_name((int)i), c->params.v[i]);
	}
}

static void client_send_welcome(struct client *c, const uint8_t *params, size_t params_len)
{
	struct proto_buf b;

	proto_buf_init(&b, 64 * 1024);
	if (c->login)
		proto_put_bytes(&b, c->login->out.data, c->login->out.len);
	if (params)
		client_put_params(c, &b, params, params_len);
	else
		admin_build_welcome(&b);
	client_assign_cancel_key(c);
	proto_build_backend_key_data(&b, c->cancel_pid, c->cancel_key);
	proto_build_ready_for_query(&b, PROTO_TX_IDLE);
	if (conn_send_buf(&c->conn, &b) < 0)
		client_logf(c, LOG_LVL_DEBUG, "could not send welcome");
	proto_buf_free(&b);
}

static void client_free_login(struct client *c)
{
	if (!c->login)
		return;
	auth_forget(c); /* before the state is cleansed: it may be in a wait list */
	if (!c->user) {
		c->user = c->login->user;
		c->login->user = NULL;
	}
	free(c->login->user);
	free(c->login->database);
	proto_buf_free(&c->login->out);
	OPENSSL_cleanse(&c->login->auth, sizeof(c->login->auth));
	free(c->login);
	c->login = NULL;
}

void client_welcome(struct client *c)
{
	struct pool *p = c->pool;

	client_send_welcome(c, p->welcome, p->welcome_len);
	client_free_login(c);
	client_set_state(c, CLIENT_IDLE);
	if (g_pooler.cfg->log_connections)
		client_logf(c, LOG_LVL_LOG, "login succeeded");
	/* A client may have pipelined its first query behind the password. */
	if (c->conn.rbuf && iobuf_len(c->conn.rbuf) > 0)
		(void)client_on_data(&c->conn);
	else if (conn_read_start(&c->conn) < 0)
		client_close(c, "could not resume reading");
}

static void client_login_done(struct client *c)
{
	const struct cfg_db *db;
	struct pool *p;

	c->phase = CLIENT_PH_READY;
	/* Past authentication the large-message caps apply. */
	c->conn.ps.authed = true;
	if (c->login->admin) {
		client_set_state(c, CLIENT_ADMIN);
		fds_set_kind(conn_fd(&c->conn), FDS_ADMIN);
		bool rights = c->login->admin_rights;

		client_send_welcome(c, NULL, 0);
		client_free_login(c);
		admin_session_start(c, rights);
		return;
	}
	db = cfg_find_db(g_pooler.cfg, c->login->database);
	if (!db) {
		client_fatal(c, "3D000", "no such database: %s", c->login->database);
		return;
	}
	{
		char why[256];
		const char *limit = pool_client_limit(c->login->database, c->login->user, why,
						      sizeof(why));

		if (limit) {
			g_fds_counters.refused++;
			client_fatal(c, "53300", "%s", limit);
			return;
		}
	}
	p = pool_get(db, c->login->database, db->user ? db->user : c->login->user);
	c->pool = p;
	p->stats.client_logins++;
	if (p->welcome) {
		client_welcome(c);
		return;
	}
	/* No server has told us its parameters yet: get one connected. */
	client_set_state(c, CLIENT_WELCOME);
	pool_want_welcome(p);
}

/*
 * Whether the peer is a unix-socket process of our own OS user logging in
 * as "pgbouncer" or "pgmux" (SO_PEERCRED, so it cannot be forged).
 */
static bool client_is_local_owner(const struct client *c, const char *user)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd;

	if (!(c->conn.flags & CONN_F_UNIX) ||
	    (strcmp(user, "pgbouncer") != 0 && strcmp(user, "pgmux") != 0))
		return false;
	fd = conn_fd(&c->conn);
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	return cred.uid == geteuid();
}

static bool client_is_admin_db(const char *db)
{
	return strcmp(db, "pgmux") == 0 || strcmp(db, "pgbouncer") == 0;
}

static enum conn_rc client_handle_auth_rc(struct client *c, enum auth_rc rc)
{
	switch (rc) {
	case AUTH_DONE:
		client_login_done(c);
		return c->state == CLIENT_CLOSED ? CONN_CLOSED : CONN_OK;
	case AUTH_CONTINUE:
		return CONN_OK;
	case AUTH_FAILED:
	case AUTH_CLOSED:
		return CONN_CLOSED;
	}
	return CONN_CLOSED;
}

/*
 * As PostgreSQL: a 3.x minor above 0, or "_pq_." protocol options (pgmux
 * knows none; startup parameters go no further), get NegotiateProtocolVersion
 * before anything else, and the client carries on in 3.0 without them.
 * Returns a libuv error if it could not be sent.
 */
static int client_negotiate_version(struct client *c, const struct proto_startup *st)
{
	const char *unknown[PROTO_STARTUP_MAX_PARAMS];
	struct proto_buf b;
	size_t i, n = 0;
	int rc;

	for (i = 0; i < st->nparams; i++)
		if (strncmp(st->params[i].name, "_pq_.", 5) == 0)
			unknown[n++] = st->params[i].name;
	if (st->version == PROTO_VERSION_3_0 && n == 0)
		return 0;
	proto_buf_init(&b, 64 * 1024);
	proto_build_negotiate_version(&b, PROTO_VERSION_3_0, unknown, n);
	rc = conn_send_buf(&c->conn, &b);
	proto_buf_free(&b);
	return rc;
}

/* Whether this client may not log in without TLS (client_tls_sslmode). */
static bool client_tls_missing(const struct client *c)
{
	return g_pooler.client_tls && !c->conn.tls && !(c->conn.flags & CONN_F_UNIX) &&
	       g_pooler.cfg->client_tls_sslmode >= TLS_MODE_REQUIRE;
}

/* Whether name is listed in ignore_startup_parameters. */
static bool client_param_ignored(const char *name)
{
	const char *list = g_pooler.cfg->ignore_startup_parameters;
	size_t n = strlen(name);

	while (list && *list) {
		size_t len;

		list += strspn(list, " ,\t");
		len = strcspn(list, " ,\t");
		if (len == n && strncasecmp(list, name, n) == 0)
			return true;
		list += len;
	}
	return false;
}

/*
 * "options": only -c name=value (or --name=value) of tracked parameters
 * can be carried across servers; anything else is refused unless
 * "options" is in ignore_startup_parameters, as in PgBouncer.
 */
static bool client_take_options(struct client *c, const char *opts, char *bad, size_t badlen)
{
	const char *p = opts;

	while (*p) {
		char item[256];
		size_t n = 0;
		const char *eq;
		int idx;

		p += strspn(p, " \t");
		if (!*p)
			break;
		while (*p && *p != ' ' && *p != '\t' && n < sizeof(item) - 1) {
			if (*p == '\\' && p[1])
				p++;
			item[n++] = *p++;
		}
		item[n] = '\0';
		if (strcmp(item, "-c") == 0)
			continue; /* the pair follows as its own word */
		eq = strchr(item, '=');
		{
			const char *name = strncmp(item, "--", 2) == 0 ? item + 2 :
					   strncmp(item, "-c", 2) == 0 ? item + 2 : item;
			char key[128];

			if (!eq || eq <= name || (size_t)(eq - name) >= sizeof(key)) {
				snprintf(bad, badlen, "%.100s", item);
				return false;
			}
			memcpy(key, name, (size_t)(eq - name));
			key[eq - name] = '\0';
			idx = param_index(key);
			if (idx < 0) {
				snprintf(bad, badlen, "%.100s", key);
				return false;
			}
			param_set_value(&c->params, idx, eq + 1);
		}
	}
	return true;
}

/*
 * Startup parameters: tracked ones become this client's values (sent to
 * whichever server it gets, before its first transaction there); anything
 * else is refused unless ignore_startup_parameters lists it, as in
 * PgBouncer, so a client is never silently given a setting it did not ask
 * for.
 */
static enum conn_rc client_take_startup_params(struct client *c, const struct proto_startup *st)
{
	for (size_t i = 0; i < st->nparams; i++) {
		const char *name = st->params[i].name;
		const char *value = st->params[i].value;
		int idx;

		if (strcmp(name, "user") == 0 || strcmp(name, "database") == 0 ||
		    strncmp(name, "_pq_.", 5) == 0) /* NegotiateProtocolVersion's */
			continue;
		idx = param_index(name);
		if (idx >= 0) {
			if (value[0])
				param_set_value(&c->params, idx, value);
			continue;
		}
		if (client_param_ignored(name))
			continue;
		if (strcmp(name, "options") == 0) {
			char bad[128];

			if (client_take_options(c, value, bad, sizeof(bad)))
				continue;
			client_fatal(c, "08P01", "unsupported options startup parameter: %s", bad);
			return CONN_CLOSED;
		}
		client_fatal(c, "08P01", "unsupported startup parameter: %s", name);
		return CONN_CLOSED;
	}
	param_set_copy(&c->startup, &c->params);
	return CONN_OK;
}

static enum conn_rc client_startup(struct client *c, const struct proto_startup *st)
{
	const struct cfg *cfg = g_pooler.cfg;
	bool admin = client_is_admin_db(st->database);

	c->login = xcalloc(1, sizeof(*c->login));
	proto_buf_init(&c->login->out, 4096);
	c->login->user = xstrdup(st->user);
	c->login->database = xstrdup(st->database);
	c->login->admin = admin;
	if (st->application_name && st->application_name[0])
		c->app_name = xstrdup(st->application_name);
	if (!admin && client_take_startup_params(c, st) != CONN_OK)
		return CONN_CLOSED;

	if (client_negotiate_version(c, st) < 0) {
		client_close(c, "could not send NegotiateProtocolVersion");
		return CONN_CLOSED;
	}
	if (client_tls_missing(c)) {
		/* PostgreSQL's answer for a hostssl-only server: 28000. */
		client_fatal(c, "28000", "SSL required");
		return CONN_CLOSED;
	}
	if (g_pooler.run_state != POOLER_RUNNING && !admin) {
		client_fatal(c, "57P03", "pgmux is shutting down");
		return CONN_CLOSED;
	}
	if (!admin && cfg->max_client_conn > 0 &&
	    g_pooler.client_count > (uint32_t)cfg->max_client_conn) {
		g_fds_counters.refused++;
		client_fatal(c, "53300", "no more connections allowed (max_client_conn = %d)",
			     cfg->max_client_conn);
		return CONN_CLOSED;
	}
	if (!admin && c->in_fd_reserve) {
		g_fds_counters.refused++;
		client_fatal(c, "53300",
			     "too many connections: file descriptor limit reached "
			     "(%u in use of %llu, %d kept for the admin console)",
			     fds_tracked(), (unsigned long long)fds_limit(), FDS_RESERVED);
		return CONN_CLOSED;
	}
	if (!admin && pool_db_disabled(st->database)) {
		client_fatal(c, "08P01", "database \"%s\" does not allow connections",
			     st->database);
		return CONN_CLOSED;
	}
	if (admin) {
		bool is_admin;

		if (client_is_local_owner(c, st->user)) {
			/* As PgBouncer: the pooler's own OS user on the unix
			 * socket is the administrator, no password asked. */
			c->login->admin_rights = true;
			proto_build_auth(&c->login->out, PROTO_AUTH_OK, NULL, 0);
			client_login_done(c);
			return c->state == CLIENT_CLOSED ? CONN_CLOSED : CONN_OK;
		}
		if (!admin_user_allowed(st->user, &is_admin)) {
			client_fatal(c, "08P01", "not allowed");
			return CONN_CLOSED;
		}
		c->login->admin_rights = is_admin;
	} else if (!cfg_find_db(cfg, st->database)) {
		client_fatal(c, "3D000", "no such database: %s", st->database);
		return CONN_CLOSED;
	}
	return client_handle_auth_rc(c, auth_begin(c, st->user, st->database, admin));
}

/* Answers SSLRequest/GSSENCRequest with 'N': not offered here. */
static int client_refuse_encryption(struct client *c)
{
	static const uint8_t no = 'N';

	return conn_send_bytes(&c->conn, &no, 1);
}

/*
 * SSLRequest with client TLS on: 'S', then the handshake runs as the
 * client's bytes arrive (conn.c); the startup packet follows inside TLS.
 * Unix sockets get 'N' as from PostgreSQL without ssl on them.
 */
static enum conn_rc client_accept_tls(struct client *c)
{
	static const uint8_t yes = 'S';

	if (conn_send_bytes(&c->conn, &yes, 1) < 0) {
		client_close(c, "could not answer SSL request");
		return CONN_CLOSED;
	}
	if (conn_tls_start(&c->conn, g_pooler.client_tls, true, NULL) != 0) {
		client_close(c, "could not start TLS");
		return CONN_CLOSED;
	}
	return CONN_OK;
}


/* Bits of client.enc_asked. */
enum { CLIENT_ENC_SSL = 1, CLIENT_ENC_GSS = 2 };

/*
 * SSLRequest or GSSENCRequest, already taken off the buffer. As in
 * PostgreSQL, each may come once per connection (libpq with
 * gssencmode=prefer sends GSSENCRequest, then SSLRequest, then its
 * StartupMessage): a repeat is a protocol violation, not a way to keep a
 * login open forever. So is any byte sent before our answer.
 */
static enum conn_rc client_encryption_request(struct client *c, enum proto_startup_kind kind)
{
	uint8_t bit = kind == PROTO_STARTUP_SSL ? CLIENT_ENC_SSL : CLIENT_ENC_GSS;
	const char *what = kind == PROTO_STARTUP_SSL ? "SSL request" : "GSSAPI encryption request";

	if (c->enc_asked & bit) {
		client_fatal(c, "08P01", "invalid startup packet: repeated %s", what);
		return CONN_CLOSED;
	}
	c->enc_asked |= bit;
	if (iobuf_len(c->conn.rbuf) > 0) {
		/* Bytes before our answer: the CVE-2021-3935 class. */
		client_fatal(c, "08P01", "received unencrypted data after %s", what);
		return CONN_CLOSED;
	}
	if (kind == PROTO_STARTUP_SSL && g_pooler.client_tls && !(c->conn.flags & CONN_F_UNIX))
		return client_accept_tls(c);
	if (client_refuse_encryption(c) < 0) {
		client_close(c, "could not answer encryption request");
		return CONN_CLOSED;
	}
	return CONN_OK;
}

static enum conn_rc client_cancel_request(struct client *c, const struct proto_startup *st)
{
	uint64_t key = ((uint64_t)st->cancel_pid << 32) | st->cancel_key;
	struct client *target;

	HASH_FIND(hh, g_pooler.by_cancel_key, &key, sizeof(key), target);
	if (target && target->server) {
		/* Stays open, unread, until PostgreSQL has the request: the
		 * requester must not run its next query before that. */
		conn_read_stop(&c->conn);
		c->phase = CLIENT_PH_CANCEL;
		cancel_send(target->server, c);
		return CONN_OK;
	}
	/* Like PostgreSQL, say nothing either way: the key is the secret. */
	client_close(c, "cancel request: nothing to cancel");
	return CONN_CLOSED;
}

static enum conn_rc client_startup_packet(struct client *c)
{
	struct iobuf *b = c->conn.rbuf;
	struct proto_startup st;
	enum proto_frame_rc frc;
	enum proto_startup_rc src;
	size_t total;

	frc = proto_frame_startup(b->data + b->start, iobuf_len(b), &total);
	if (frc == PROTO_FRAME_NEED_MORE)
		return CONN_OK;
	if (frc != PROTO_FRAME_OK) {
		client_fatal(c, "08P01", "invalid startup packet: %s", proto_frame_rc_str(frc));
		return CONN_CLOSED;
	}
	src = proto_startup_parse(b->data + b->start, total, &st);
	if (src != PROTO_STARTUP_OK) {
		client_fatal(c, "08P01", "invalid startup packet: %s", proto_startup_rc_str(src));
		return CONN_CLOSED;
	}
	switch (st.kind) {
	case PROTO_STARTUP_SSL:
	case PROTO_STARTUP_GSSENC:
		b->start += (uint32_t)total;
		return client_encryption_request(c, st.kind);
	case PROTO_STARTUP_CANCEL:
		b->start += (uint32_t)total;
		return client_cancel_request(c, &st);
	case PROTO_STARTUP_V3:
		break;
	}
	/* st points into b's bytes, which stay put until the next read even
	 * though start moves past them now. */
	b->start += (uint32_t)total;
	return client_startup(c, &st);
}

/* A message during authentication: only PasswordMessage is legal. */
static enum conn_rc client_auth_message(struct client *c)
{
	struct iobuf *b = c->conn.rbuf;
	struct proto_frame f;
	enum proto_frame_rc frc;
	const uint8_t *body;

	frc = proto_frame_header(b->data + b->start, iobuf_len(b), PROTO_DIR_FRONTEND, false, &f);
	if (frc == PROTO_FRAME_NEED_MORE)
		return CONN_OK;
	if (frc != PROTO_FRAME_OK) {
		client_fatal(c, "08P01", "invalid message during authentication: %s",
			     proto_frame_rc_str(frc));
		return CONN_CLOSED;
	}
	if (f.type == PROTO_FE_TERMINATE) {
		client_close(c, "client gave up during authentication");
		return CONN_CLOSED;
	}
	if (f.type != PROTO_FE_PASSWORD) {
		client_fatal(c, "08P01", "expected password message, got %s",
			     proto_fe_type_str(f.type));
		return CONN_CLOSED;
	}
	if (iobuf_len(b) < f.total)
		return CONN_OK;
	body = b->data + b->start + PROTO_HEADER_SIZE;
	b->start += (uint32_t)f.total;
	return client_handle_auth_rc(
		c, auth_on_message(c, c->login->user, body, f.len - 4));
}

static enum conn_rc client_login_data(struct client *c)
{
	while (c->state == CLIENT_LOGIN && c->conn.rbuf && iobuf_len(c->conn.rbuf) > 0) {
		uint32_t before = c->conn.rbuf->start;
		enum conn_rc rc;

		if (c->phase == CLIENT_PH_CANCEL)
			return CONN_OK; /* PostgreSQL too reads nothing after a cancel */
		if (c->phase == CLIENT_PH_AUTH_WAIT)
			return CONN_OK; /* auth.c resumes it (client_auth_continue) */
		if (c->phase == CLIENT_PH_STARTUP)
			rc = client_startup_packet(c);
		else
			rc = client_auth_message(c);
		if (rc == CONN_CLOSED)
			return CONN_CLOSED;
		if (c->state != CLIENT_LOGIN)
			break; /* client_welcome took care of what follows */
		if (!c->conn.rbuf || c->conn.rbuf->start == before)
			return CONN_OK; /* waiting for more bytes */
	}
	return CONN_OK;
}

void client_auth_continue(struct client *c, enum auth_rc rc)
{
	if (c->state != CLIENT_LOGIN)
		return;
	/* Reading first, as before the pause: a welcome that follows may stop
	 * it again (backpressure), which must win. */
	if (conn_read_start(&c->conn) < 0) {
		client_close(c, "could not resume reading");
		return;
	}
	if (client_handle_auth_rc(c, rc) == CONN_CLOSED || c->state != CLIENT_LOGIN)
		return;
	if (c->conn.rbuf && iobuf_len(c->conn.rbuf) > 0)
		(void)client_login_data(c);
}

/* ---- transaction traffic ---- */

void client_linked(struct client *c, struct server *s)
{
	uint64_t now = util_now_us();

	c->server = s;
	if (c->state == CLIENT_WAITING) {
		c->pool->stats.wait_time_us += now - c->wait_start_us;
		pool_note_wait(c->pool, now - c->wait_start_us);
	} else {
		pool_note_wait(c->pool, 0);
	}
	c->xact_start_us = now;
	client_set_state(c, CLIENT_ACTIVE);
	c->pool->stats.server_assignments++;
}

void client_unlinked(struct client *c)
{
	c->server = NULL;
	c->pool->stats.xact_time_us += util_now_us() - c->xact_start_us;
	c->pool->stats.xact_count++;
	if (c->state == CLIENT_ACTIVE)
		client_set_state(c, CLIENT_IDLE);
}

/*
 * Keeps the books that decide when the server may go back to the pool:
 * every Query, FunctionCall and Sync is owed one ReadyForQuery, and
 * extended-protocol messages not yet closed by a Sync keep the server
 * busy even when nothing is owed (a pipeline still being written).
 * A Sync sent during COPY FROM STDIN is ignored by PostgreSQL, so it is
 * not counted either.
 */
/*
 * Session state the statement text of a Query or Parse may leave on the
 * server (params.h). Whole messages only: a statement longer than the
 * read buffer is not scanned, and its state is then found only by tag.
 */
static unsigned client_scan_leaks(const struct proto_msg *m)
{
	const uint8_t *sql = m->body;
	size_t len = m->body_len;

	if (m->type == PROTO_FE_PARSE) {
		const uint8_t *nul = memchr(sql, 0, len);

		if (!nul)
			return 0;
		len -= (size_t)(nul + 1 - sql);
		sql = nul + 1;
	} else if (m->type != PROTO_FE_QUERY) {
		return 0;
	}
	return param_leak_from_sql(sql, len);
}

static void client_count_request(struct client *c, uint8_t type)
{
	/* Whatever comes first after ReadyForQuery 'I' opens a transaction,
	 * implicit or not: transaction_timeout counts from here. */
	if (c->tx_status == PROTO_TX_IDLE && c->outstanding == 0 && !c->unsynced)
		c->tx_begin_us = util_now_us();
	switch (type) {
	case PROTO_FE_QUERY:
	case PROTO_FE_FUNCTION_CALL:
		break;
	case PROTO_FE_SYNC:
		if (c->copy_in)
			return;
		c->unsynced = false;
		break;
	case PROTO_FE_PARSE:
		c->pool->stats.client_parse_count++;
		if (!c->prep) /* else prepared.c counts what reaches a server */
			c->pool->stats.server_parse_count++;
		c->unsynced = true;
		return;
	case PROTO_FE_BIND:
		c->pool->stats.bind_count++;
		c->unsynced = true;
		return;
	case PROTO_FE_DESCRIBE:
	case PROTO_FE_EXECUTE:
	case PROTO_FE_CLOSE:
	case PROTO_FE_FLUSH:
		c->unsynced = true;
		return;
	default:
		return;
	}
	if (c->outstanding == 0) {
		c->request_time_us = util_now_us();
		c->cancel_sent_ms = 0;
	}
	c->outstanding++;
}

/*
 * The framer accepts every frontend type; once logged in, a PasswordMessage
 * (or SASL response) is no longer one. PostgreSQL would answer it with
 * FATAL 08P01 and end the session, taking a pooled server down with it, so
 * pgmux refuses it itself, as it does undefined types.
 */
static bool client_type_ok_after_login(uint8_t type)
{
	return type != PROTO_FE_PASSWORD;
}

/* Forwards rbuf[start, pos) to the linked server. */
static enum conn_rc client_send_range(struct client *c, size_t pos)
{
	struct server *s = c->server;
	size_t n = pos - c->conn.rbuf->start;

	c->pool->stats.bytes_received += n;
	if (conn_forward(&c->conn, &s->conn, n) < 0) {
		/* Its request may be half-sent: the session cannot go on. */
		s->client = NULL;
		c->server = NULL;
		client_fatal(c, "08006", "server connection lost: could not send to server");
		server_close(s, "could not send to server");
		return CONN_CLOSED;
	}
	return CONN_OK;
}

/* Sends what prepared.c built: messages for the server, answers for c. */
static enum conn_rc client_send_prep(struct client *c)
{
	struct server *s = c->server;
	bool answered;
	int rc = prep_send_output(s, &answered);

	if (rc < 0) {
		s->client = NULL;
		c->server = NULL;
		client_fatal(c, "08006", "server connection lost: could not send to server");
		server_close(s, "could not send to server");
		return CONN_CLOSED;
	}
	if (rc > 0) {
		client_close(c, "could not send to client");
		return CONN_CLOSED;
	}
	/* Answers of pgmux's own wait for a client that does not read:
	 * stop reading it, as a full server queue would. */
	if (answered && c->conn.pending_writes > 0)
		conn_block(&c->conn);
	return CONN_OK;
}

/* What prepared.c made of one message (client_forward). */
enum client_prep_rc {
	CLIENT_PREP_PASS,   /* forward it as it is */
	CLIENT_PREP_SKIP,   /* pgmux sent bytes in its place: skip its first *skip bytes */
	CLIENT_PREP_COLLECT, /* pgmux keeps its first *skip bytes (a large Parse) */
	CLIENT_PREP_STOP,   /* not yet: it stays buffered */
	CLIENT_PREP_FATAL,  /* the client must go */
	CLIENT_PREP_CLOSED,
};

static enum client_prep_rc client_prep(struct client *c, const struct proto_msg *m, size_t pos,
				       size_t *skip, const char **why)
{
	struct iobuf *b = c->conn.rbuf;
	size_t consume = 0;

	switch (prep_client_message(c, m, b->data + pos, b->end - pos, &consume, why)) {
	case PREP_MSG_PASS:
		return CLIENT_PREP_PASS;
	case PREP_MSG_WAIT:
	case PREP_MSG_FULL:
		return CLIENT_PREP_STOP;
	case PREP_MSG_FATAL:
		return CLIENT_PREP_FATAL;
	case PREP_MSG_COLLECT:
		if (client_send_range(c, pos) == CONN_CLOSED)
			return CLIENT_PREP_CLOSED;
		*skip = consume;
		return CLIENT_PREP_COLLECT;
	case PREP_MSG_REWRITE:
		break;
	}
	/* What precedes it goes first; pgmux's bytes in its place go out
	 * with whatever small messages follow (client_forward). */
	if (client_send_range(c, pos) == CONN_CLOSED)
		return CLIENT_PREP_CLOSED;
	*skip = consume;
	return CLIENT_PREP_SKIP;
}

/* Small whole messages after pgmux's own bytes are copied behind them. */
#define CLIENT_COALESCE_MAX 4096

/*
 * More of a Parse that prepared.c gathers (it is larger than the read
 * buffer) is taken off the buffer, never forwarded; once it is all here it
 * counts as a request. Returns CLIENT_PREP_PASS to go on walking.
 */
static enum client_prep_rc client_collect(struct client *c, size_t *pos)
{
	struct iobuf *b = c->conn.rbuf;
	size_t took = 0;
	enum prep_msg rc = prep_client_collect(c, b->data + *pos, b->end - *pos, &took);

	*pos += took;
	b->start = (uint32_t)*pos;
	c->pool->stats.bytes_received += took;
	if (rc == PREP_MSG_WAIT || rc == PREP_MSG_FULL)
		return CLIENT_PREP_STOP;
	client_count_request(c, PROTO_FE_PARSE);
	return CLIENT_PREP_PASS;
}

/* Passes over the first n bytes of m without forwarding them (the rest of
 * a larger message then flows through). */
static void client_skip(struct client *c, const struct proto_msg *m, size_t *pos, size_t n)
{
	c->pool->stats.bytes_received += n;
	if (n >= m->total)
		*pos += m->total;
	else
		proto_stream_consume_head(&c->conn.ps, pos, m, n);
	c->conn.rbuf->start = (uint32_t)*pos;
}

/*
 * Walks the client's buffered messages, counts what the server will owe,
 * and forwards them. Terminate is not forwarded: the client just leaves.
 * With prepared statements tracked (c->prep), a message may be rewritten:
 * what precedes it is forwarded, pgmux's bytes take its place, and the
 * walk goes on; it stops early when the server must catch up first.
 */
static enum conn_rc client_forward(struct client *c)
{
	struct iobuf *b = c->conn.rbuf;
	size_t pos = b->start;
	bool terminate = false;
	uint32_t owed = c->outstanding, body_left = c->conn.ps.body_left;
	bool unsynced = c->unsynced;

	prep_client_maybe_start(c);
	for (;;) {
		struct proto_msg m;
		enum proto_frame_rc rc;
		const char *why = "";
		size_t skip = 0;

		if (c->prep && (c->conn.flags & CONN_F_BLOCKED)) {
			c->prep->stalled = pos < b->end; /* resumed when drained */
			break;
		}
		if (prep_client_collecting(c)) {
			if (client_collect(c, &pos) == CLIENT_PREP_STOP)
				break;
			owed = c->outstanding;
			unsynced = c->unsynced;
			continue;
		}
		rc = proto_stream_next(&c->conn.ps, b->data, b->end, &pos, &m);
		if (rc == PROTO_FRAME_OK && !client_type_ok_after_login(m.type))
			rc = PROTO_FRAME_BAD_TYPE;
		if (rc == PROTO_FRAME_NEED_MORE)
			break;
		if (rc != PROTO_FRAME_OK) {
			/*
			 * Nothing of this chunk goes out. Put the books back to
			 * what the server really got, so that a message it has
			 * only part of (body bytes passed over above, never sent)
			 * keeps it out of the pool, and one that got nothing at
			 * all can go back.
			 */
			c->outstanding = owed;
			c->unsynced = unsynced;
			c->conn.ps.body_left = body_left;
			client_fatal(c, "08P01", "invalid message from client: %s",
				     proto_frame_rc_str(rc));
			return CONN_CLOSED;
		}
		if (m.type == PROTO_FE_TERMINATE) {
			terminate = true;
			break;
		}
		if (c->prep) {
			switch (client_prep(c, &m, pos, &skip, &why)) {
			case CLIENT_PREP_PASS:
				/* pgmux's bytes are pending only while nothing
				 * waits to be forwarded behind them (b->start ==
				 * pos): a small whole message joins them, anything
				 * else goes after them. */
				if (!prep_has_output(c->server))
					break;
				if (m.whole && m.total <= CLIENT_COALESCE_MAX) {
					prep_append_server(c->server, b->data + pos, m.total);
					skip = m.total;
				} else if (client_send_prep(c) == CONN_CLOSED) {
					return CONN_CLOSED;
				}
				break;
			case CLIENT_PREP_SKIP:
				b = c->conn.rbuf; /* the forward may have moved it */
				pos = b->start;
				break;
			case CLIENT_PREP_COLLECT:
				b = c->conn.rbuf; /* the forward may have moved it */
				pos = b->start + skip;
				b->start = (uint32_t)pos;
				c->pool->stats.bytes_received += skip;
				continue;
			case CLIENT_PREP_STOP:
				goto flush;
			case CLIENT_PREP_FATAL:
				c->outstanding = owed;
				c->unsynced = unsynced;
				c->conn.ps.body_left = body_left;
				client_fatal(c, "54000", "%s", why);
				return CONN_CLOSED;
			case CLIENT_PREP_CLOSED:
				return CONN_CLOSED;
			}
		}
		client_count_request(c, m.type);
		if (m.whole && c->pool->mode != POOL_MODE_SESSION) {
			c->leaks |= client_scan_leaks(&m);
			sqlprep_client_message(c, m.type, m.body, m.body_len);
		}
		if (skip == 0) {
			proto_stream_consume(&c->conn.ps, b->end, &pos, &m);
			continue;
		}
		client_skip(c, &m, &pos, skip);
		/* The rest of a message rewritten at its head is forwarded
		 * as it comes: the new head must go first. Large injected
		 * statements go at once rather than pile up. */
		if ((c->conn.ps.body_left > 0 ||
		     prep_output_to_server(c->server) > CLIENT_COALESCE_MAX) &&
		    client_send_prep(c) == CONN_CLOSED)
			return CONN_CLOSED;
		/* The server has everything up to here. */
		owed = c->outstanding;
		unsynced = c->unsynced;
		body_left = c->conn.ps.body_left;
	}
flush:
	/* pgmux's bytes pending from a rewrite have nothing forwarded behind
	 * them (see CLIENT_PREP_PASS); a Flush queued by a stall goes after
	 * the range. */
	if (client_send_range(c, pos) == CONN_CLOSED)
		return CONN_CLOSED;
	if (c->server && prep_has_output(c->server) && client_send_prep(c) == CONN_CLOSED)
		return CONN_CLOSED;
	if (terminate) {
		/* Skip the Terminate itself; the session ends here. */
		client_close(c, "client sent Terminate");
		return CONN_CLOSED;
	}
	return CONN_OK;
}

/*
 * An idle client sent bytes. Nothing is taken from the pool until a whole
 * header is here and it is not a Terminate.
 */
/*
 * Holds a waiting client's bytes until there is a server. Reading stays
 * on, so waiting costs no epoll_ctl calls; a client whose bytes fill its
 * whole buffer (a request pipelined ahead of its answer, say a COPY's data
 * sent with the COPY) is paused until client_resume, not treated as
 * sending an oversized message.
 */
static void client_hold(struct client *c)
{
	struct iobuf *b = c->conn.rbuf;

	if (b && b->end == iobuf_size())
		conn_read_stop(&c->conn);
}

static enum conn_rc client_idle_data(struct client *c)
{
	struct iobuf *b = c->conn.rbuf;
	struct proto_frame f;
	enum proto_frame_rc frc;

	if (c->conn.ps.body_left > 0 || prep_client_collecting(c))
		goto acquire; /* mid-message (a body, a large Parse being gathered) */
again:
	frc = proto_frame_header(b->data + b->start, iobuf_len(b), PROTO_DIR_FRONTEND, true, &f);
	if (frc == PROTO_FRAME_OK && !client_type_ok_after_login(f.type))
		frc = PROTO_FRAME_BAD_TYPE;
	if (frc == PROTO_FRAME_NEED_MORE)
		return CONN_OK;
	if (frc != PROTO_FRAME_OK) {
		client_fatal(c, "08P01", "invalid message from client: %s",
			     proto_frame_rc_str(frc));
		return CONN_CLOSED;
	}
	if (f.type == PROTO_FE_TERMINATE) {
		client_close(c, "client sent Terminate");
		return CONN_CLOSED;
	}
	if (f.type == PROTO_FE_PARSE) {
		switch (prep_client_idle(c)) {
		case PREP_IDLE_NO:
			break;
		case PREP_IDLE_WAIT:
			return CONN_OK;
		case PREP_IDLE_CLOSED:
			return CONN_CLOSED;
		case PREP_IDLE_DONE:
			/* Answered without a server; what follows is next. */
			if (iobuf_len(b) == 0)
				return CONN_OK;
			goto again;
		}
	}
acquire:
	if (!pool_acquire(c->pool, c)) { /* queued (its bytes wait in rbuf), or refused */
		if (c->state == CLIENT_CLOSED)
			return CONN_CLOSED;
		client_hold(c);
		return CONN_OK;
	}
	return client_forward(c);
}

enum conn_rc client_resume(struct client *c)
{
	if (c->state == CLIENT_CLOSED)
		return CONN_CLOSED;
	if (conn_read_start(&c->conn) < 0) {
		client_close(c, "could not resume reading");
		return CONN_CLOSED;
	}
	if (c->conn.rbuf && iobuf_len(c->conn.rbuf) > 0)
		return client_on_data(&c->conn);
	return CONN_OK;
}

static enum conn_rc client_on_data(struct conn *conn)
{
	struct client *c = container_of(conn, struct client, conn);

	c->active_ms = uv_now(g_pooler.loop);
	switch (c->state) {
	case CLIENT_LOGIN:
		return client_login_data(c);
	case CLIENT_IDLE:
		return client_idle_data(c);
	case CLIENT_ACTIVE:
		return client_forward(c);
	case CLIENT_ADMIN:
		return admin_on_data(c);
	case CLIENT_WELCOME:
	case CLIENT_WAITING:
		client_hold(c);
		return CONN_OK;
	case CLIENT_CLOSED:
		return CONN_CLOSED;
	}
	return CONN_OK;
}

void client_server_lost(struct client *c, const char *message, bool stream_broken)
{
	uint32_t owed = c->outstanding;
	bool recoverable;

	/*
	 * The transaction is gone with the server. If the client was outside
	 * a transaction block and is waiting for answers, it can be told its
	 * request failed and carry on with another server; inside a block it
	 * must not silently continue in autocommit, so the session ends.
	 */
	recoverable = !stream_broken && c->tx_status == PROTO_TX_IDLE && owed > 0 &&
		      !c->unsynced && !c->copy_in &&
		      c->conn.ps.body_left == 0 && c->state == CLIENT_ACTIVE;
	c->server = NULL;
	if (!recoverable) {
		client_fatal(c, "08006", "server connection lost: %s", message);
		return;
	}
	{
		struct proto_buf b;
		char msg[512];

		snprintf(msg, sizeof(msg), "server connection lost: %s", message);
		proto_buf_init(&b, 64 * 1024);
		proto_build_error(&b, "ERROR", "08006", msg, NULL);
		while (owed-- > 0)
			proto_build_ready_for_query(&b, PROTO_TX_IDLE);
		if (conn_send_buf(&c->conn, &b) < 0) {
			proto_buf_free(&b);
			client_close(c, "could not report lost server");
			return;
		}
		proto_buf_free(&b);
	}
	client_logf(c, LOG_LVL_WARNING, "server connection lost, request failed: %s", message);
	c->outstanding = 0;
	client_unlinked(c);
	(void)client_resume(c);
}
