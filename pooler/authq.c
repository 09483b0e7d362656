/*
 * authq.c: auth_query lookups. Owns the lookup entries: one per (auth
 * database, auth_user, query, user), shared by every client logging in as
 * that user while it runs, then kept as a cached answer for AUTHQ_CACHE_MS.
 * A lookup borrows a server of the (auth database, auth_user) pool, the way
 * a client would: an idle one at once, else it queues and the pool launches
 * one (pool.c counts queued lookups as demand and offers them a server
 * before its waiting clients). The query goes out as Parse/Bind/Describe/
 * Execute/Sync with the user name as $1, so no quoting is involved; the
 * server goes back to the pool at ReadyForQuery.
 */
#include "authq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <uthash.h>

#include "config.h"
#include "log.h"
#include "pool.h"
#include "pooler.h"
#include "proto.h"
#include "proto_build.h"
#include "proto_cursor.h"
#include "proto_parse.h"
#include "server.h"
#include "util.h"

/* Longest secret accepted from auth_query (PostgreSQL's are < 200 bytes). */
#define AUTHQ_SECRET_MAX 1024
/* A lookup is tried on at most this many servers (a pooled one may have
 * died unnoticed, e.g. across a PostgreSQL restart). */
#define AUTHQ_ATTEMPTS 2

/* What clients are told; the details go to the log only. */
#define AUTHQ_MSG_UNAVAILABLE "authentication lookup failed: server unavailable"
#define AUTHQ_MSG_TIMEOUT "authentication lookup failed: timed out"
#define AUTHQ_MSG_QUERY "authentication lookup failed"
#define AUTHQ_MSG_CONFIG "authentication lookup failed: pgmux configuration error"

enum authq_state {
	AUTHQ_QUEUED,  /* waiting for a server of its pool (in g_authq.queue) */
	AUTHQ_RUNNING, /* the query is on server */
	AUTHQ_DONE,    /* answered (status) */
};

struct authq_entry {
	char *key; /* dbname \x01 auth_user \x01 query \x01 user */
	size_t keylen;
	char *user;
	char *query;           /* copied: a reload may change the config meanwhile */
	char *where;           /* "auth_user@dbname", for log lines */
	struct pool *pool;     /* the pool it borrows servers from */
	enum authq_state state;
	bool cached;           /* in g_authq.by_key (false: failed, or dropped by RELOAD) */
	int pins;              /* held by a caller (authq_lookup, authq_finish): do not free */
	int attempts;
	struct server *server; /* RUNNING */
	struct list_node qnode; /* QUEUED: in g_authq.queue */
	struct list_node anode; /* in g_authq.all */
	struct list waiters;   /* struct authq_waiter.node */
	uint64_t started_ms;   /* uv_now() when first asked */
	uint64_t expires_ms;   /* DONE and cached: reused until then */
	/* The answer as it is read. */
	bool got_row;
	bool bad;              /* ErrorResponse or a result of the wrong shape (logged) */
	char *secret;          /* the row's secret, NULL if none or NULL */
	enum authq_status status;
	const char *fail_sqlstate; /* FAILED: static strings */
	const char *fail_message;
	UT_hash_handle hh;
};

/* Module-private; the lists are initialised statically, the loop never
 * needs an init call. */
static struct {
	struct authq_entry *by_key; /* cached and in-flight entries, by key */
	struct list queue;          /* QUEUED entries, oldest first */
	struct list all;            /* every entry, cached or not */
} g_authq = {
	.by_key = NULL,
	.queue = { .head = { &g_authq.queue.head, &g_authq.queue.head }, .count = 0 },
	.all = { .head = { &g_authq.all.head, &g_authq.all.head }, .count = 0 },
};

static void authq_run(struct authq_entry *e, struct server *s);

/* ---- configuration ---- */

struct authq_target {
	const char *user;        /* auth_user */
	const char *dbname;      /* [databases] name the query runs in */
	const struct cfg_db *db; /* its entry */
	const char *query;
};

enum authq_target_rc {
	AUTHQ_TARGET_NONE, /* no auth_user: auth_query is off */
	AUTHQ_TARGET_OK,
	AUTHQ_TARGET_BAD,  /* configured, but cannot work (logged) */
};

/* The auth_user for clients of client_db, or NULL: auth_query is off. */
static const char *authq_user_for(const char *client_db)
{
	const struct cfg_db *cdb = cfg_find_db(g_pooler.cfg, client_db);

	return cdb && cdb->auth_user ? cdb->auth_user : g_pooler.cfg->auth_user;
}

/*
 * As PgBouncer: the client's [databases] entry may name its own auth_user,
 * auth_dbname and auth_query; otherwise the global ones apply, and without
 * auth_dbname the query runs in the client's own database.
 */
static enum authq_target_rc authq_target_for(const char *client_db, struct authq_target *t)
{
	const struct cfg *cfg = g_pooler.cfg;
	const struct cfg_db *cdb = cfg_find_db(cfg, client_db);

	t->user = authq_user_for(client_db);
	if (!t->user)
		return AUTHQ_TARGET_NONE;
	t->dbname = cdb && cdb->auth_dbname ? cdb->auth_dbname :
		    cfg->auth_dbname ? cfg->auth_dbname : client_db;
	t->query = cdb && cdb->auth_query ? cdb->auth_query : cfg->auth_query;
	t->db = cfg_find_db(cfg, t->dbname);
	if (!t->query) {
		log_error("auth_user is set but auth_query is empty: users not in auth_file "
			  "cannot log in");
		return AUTHQ_TARGET_BAD;
	}
	if (!t->db || strcmp(t->dbname, "pgbouncer") == 0 || strcmp(t->dbname, "pgmux") == 0) {
		log_error("authentication database \"%s\" is not configured in [databases]",
			  t->dbname);
		return AUTHQ_TARGET_BAD;
	}
	if (pool_db_disabled(t->dbname)) {
		log_warn("authentication database \"%s\" is disabled", t->dbname);
		return AUTHQ_TARGET_BAD;
	}
	return AUTHQ_TARGET_OK;
}

bool authq_enabled(const char *db)
{
	return authq_user_for(db) != NULL;
}

/* ---- entries ---- */

static char *authq_key(const struct authq_target *t, const char *user, size_t *len)
{
	const char *parts[4] = { t->dbname, t->user, t->query, user };
	size_t n = 0, i;
	char *k;

	for (i = 0; i < 4; i++)
		n += strlen(parts[i]) + 1;
	k = xmalloc(n);
	*len = 0;
	for (i = 0; i < 4; i++) {
		size_t l = strlen(parts[i]);

		memcpy(k + *len, parts[i], l);
		*len += l;
		k[(*len)++] = i < 3 ? '\x01' : '\0';
	}
	(*len)--; /* the key excludes the final NUL */
	return k;
}

static struct authq_entry *authq_entry_new(const struct authq_target *t, const char *user,
					   char *key, size_t keylen)
{
	struct authq_entry *e = xcalloc(1, sizeof(*e));
	size_t wl = strlen(t->user) + strlen(t->dbname) + 2;

	e->key = key;
	e->keylen = keylen;
	e->user = xstrdup(user);
	e->query = xstrdup(t->query);
	e->where = xmalloc(wl);
	snprintf(e->where, wl, "%s@%s", t->user, t->dbname);
	e->pool = pool_get(t->db, t->dbname, t->user);
	e->started_ms = uv_now(g_pooler.loop);
	list_node_init(&e->qnode);
	list_init(&e->waiters);
	list_append(&g_authq.all, &e->anode);
	HASH_ADD_KEYPTR(hh, g_authq.by_key, e->key, e->keylen, e);
	e->cached = true;
	return e;
}

static void authq_uncache(struct authq_entry *e)
{
	if (!e->cached)
		return;
	HASH_DEL(g_authq.by_key, e);
	e->cached = false;
}

/* Wipes and drops the secret a row gave. */
static void authq_drop_secret(struct authq_entry *e)
{
	if (e->secret) {
		OPENSSL_cleanse(e->secret, strlen(e->secret));
		free(e->secret);
		e->secret = NULL;
	}
}

static void authq_entry_free(struct authq_entry *e)
{
	authq_uncache(e);
	list_remove(&g_authq.all, &e->anode);
	authq_drop_secret(e);
	free(e->key);
	free(e->user);
	free(e->query);
	free(e->where);
	free(e);
}

/* Frees e if nothing needs it any more: answered, not reusable, unheld. */
static void authq_settle(struct authq_entry *e)
{
	if (e->state == AUTHQ_DONE && !e->cached && e->pins == 0 && list_empty(&e->waiters))
		authq_entry_free(e);
}

static void authq_result_of(const struct authq_entry *e, struct authq_result *r)
{
	memset(r, 0, sizeof(*r));
	r->status = e->status;
	r->secret = e->status == AUTHQ_FOUND ? e->secret : NULL;
	r->sqlstate = e->fail_sqlstate;
	r->message = e->fail_message;
}

/*
 * The answer is in (status set): waiters hear it one at a time, each taken
 * off the list before its call so a callback never sees a half-walked list.
 * Failures are not cached: the next login asks again.
 */
static void authq_finish(struct authq_entry *e, enum authq_status status)
{
	struct authq_result r;

	e->state = AUTHQ_DONE;
	e->status = status;
	if (status == AUTHQ_FAILED)
		authq_uncache(e);
	else
		e->expires_ms = uv_now(g_pooler.loop) + AUTHQ_CACHE_MS;
	log_debug("auth_query for user \"%s\" as %s: %s", e->user, e->where,
		  status == AUTHQ_FOUND ? "found" : status == AUTHQ_NOT_FOUND ? "no such user" :
		  "failed");
	e->pins++;
	authq_result_of(e, &r);
	while (!list_empty(&e->waiters)) {
		struct list_node *n = list_first(&e->waiters);
		struct authq_waiter *w = container_of(n, struct authq_waiter, node);

		list_remove(&e->waiters, n);
		w->entry = NULL;
		w->done(w, &r);
	}
	e->pins--;
	authq_settle(e);
}

static void authq_fail(struct authq_entry *e, const char *sqlstate, const char *message)
{
	e->fail_sqlstate = sqlstate;
	e->fail_message = message;
	authq_finish(e, AUTHQ_FAILED);
}

/* Takes e out of the queue (it is QUEUED). */
static void authq_dequeue(struct authq_entry *e)
{
	list_remove(&g_authq.queue, &e->qnode);
	e->pool->authq_waiting--;
}

/*
 * Starts e: on an idle server of its pool if one is free and no client is
 * ahead in line, else in the queue, launching a server (which may fail e at
 * once, e.g. inside server_login_retry).
 */
static void authq_dispatch(struct authq_entry *e)
{
	struct pool *p = e->pool;
	struct list_node *n = list_last(&p->idle_servers);

	if (g_pooler.run_state != POOLER_RUNNING) {
		authq_fail(e, "08006", AUTHQ_MSG_UNAVAILABLE);
		return;
	}
	if (n && list_empty(&p->waiting_clients) && !pool_is_paused(p)) {
		authq_run(e, container_of(n, struct server, node));
		return;
	}
	e->state = AUTHQ_QUEUED;
	list_append(&g_authq.queue, &e->qnode);
	p->authq_waiting++;
	pool_launch_servers(p);
}

bool authq_lookup(const char *db, const char *user, struct authq_waiter *w,
		  struct authq_result *r)
{
	struct authq_target t;
	struct authq_entry *e;
	size_t keylen;
	char *key;

	memset(r, 0, sizeof(*r));
	if (authq_target_for(db, &t) != AUTHQ_TARGET_OK) {
		r->status = AUTHQ_FAILED;
		r->sqlstate = "28000";
		r->message = AUTHQ_MSG_CONFIG;
		return true;
	}
	key = authq_key(&t, user, &keylen);
	HASH_FIND(hh, g_authq.by_key, key, keylen, e);
	if (e && e->state == AUTHQ_DONE && uv_now(g_pooler.loop) >= e->expires_ms) {
		authq_uncache(e);
		authq_settle(e);
		e = NULL;
	}
	if (e) {
		free(key);
		if (e->state == AUTHQ_DONE) {
			authq_result_of(e, r);
			return true;
		}
	} else {
		e = authq_entry_new(&t, user, key, keylen);
		e->pins++;
		authq_dispatch(e);
		e->pins--;
		if (e->state == AUTHQ_DONE) {
			/* Failed at once; FAILED messages are static strings. */
			authq_result_of(e, r);
			authq_settle(e);
			return true;
		}
	}
	w->entry = e;
	list_append(&e->waiters, &w->node);
	return false;
}

void authq_cancel(struct authq_waiter *w)
{
	if (!w->entry)
		return;
	list_remove(&w->entry->waiters, &w->node);
	w->entry = NULL;
}

/* ---- running the query ---- */

static bool authq_send_query(struct server *s, const char *query, const char *user)
{
	struct proto_buf b;
	size_t ulen = strlen(user);
	int rc;

	proto_buf_init(&b, PROTO_BUF_DEFAULT_MAX);
	proto_begin(&b, PROTO_FE_PARSE);
	proto_put_cstr(&b, ""); /* unnamed statement */
	proto_put_cstr(&b, query);
	proto_put_u16(&b, 0); /* the server infers $1's type */
	proto_end(&b);
	proto_begin(&b, PROTO_FE_BIND);
	proto_put_cstr(&b, ""); /* unnamed portal */
	proto_put_cstr(&b, "");
	proto_put_u16(&b, 0); /* parameters in text */
	proto_put_u16(&b, 1);
	proto_put_u32(&b, (uint32_t)ulen);
	proto_put_bytes(&b, user, ulen);
	proto_put_u16(&b, 0); /* results in text */
	proto_end(&b);
	proto_build_describe(&b, 'P', "");
	proto_begin(&b, PROTO_FE_EXECUTE);
	proto_put_cstr(&b, "");
	proto_put_u32(&b, 0); /* all rows */
	proto_end(&b);
	proto_build_sync(&b);
	rc = proto_buf_ok(&b) ? conn_send_buf(&s->conn, &b) : UV_ENOBUFS;
	proto_buf_free(&b);
	return rc >= 0;
}

/* Runs e on s, which the pool handed over (any state that may become ACTIVE). */
static void authq_run(struct authq_entry *e, struct server *s)
{
	e->state = AUTHQ_RUNNING;
	e->server = s;
	e->attempts++;
	e->got_row = false;
	e->bad = false;
	authq_drop_secret(e); /* a row from an attempt whose server died is not an answer */
	s->authq = e;
	if (s->state != SERVER_ACTIVE)
		server_set_state(s, SERVER_ACTIVE);
	if (!authq_send_query(s, e->query, e->user))
		server_close(s, "could not send auth_query"); /* authq_server_closed retries */
}

bool authq_take_server(struct server *s)
{
	struct list_node *it;

	for (it = g_authq.queue.head.next; it != &g_authq.queue.head; it = it->next) {
		struct authq_entry *e = container_of(it, struct authq_entry, qnode);

		if (e->pool != s->pool)
			continue;
		authq_dequeue(e);
		authq_run(e, s);
		return true;
	}
	return false;
}

/* A result problem: logged with what the operator needs, the client only
 * hears "authentication lookup failed". */
static void authq_bad(struct authq_entry *e, const char *why)
{
	if (!e->bad)
		log_warn("auth_query for user \"%s\" as %s: %s", e->user, e->where, why);
	e->bad = true;
}

/* 'T': exactly two columns (user name, secret), as PgBouncer requires. */
static void authq_row_description(struct authq_entry *e, const struct proto_msg *m)
{
	struct proto_cursor c;
	uint16_t ncols;

	proto_cursor_init(&c, m->body, m->body_len);
	if (!proto_read_u16(&c, &ncols) || ncols != 2)
		authq_bad(e, "auth_query must return two columns (user name, secret)");
}

/* Reads one column of a DataRow: *val NULL for SQL NULL. */
static bool authq_column(struct proto_cursor *c, const uint8_t **val, int32_t *len)
{
	if (!proto_read_i32(c, len))
		return false;
	if (*len == -1) {
		*val = NULL;
		return true;
	}
	return *len >= 0 && proto_read_bytes(c, (size_t)*len, val);
}

/* 'D': the first row counts; a NULL name or secret means "no password". */
static void authq_data_row(struct authq_entry *e, const struct proto_msg *m)
{
	struct proto_cursor c;
	const uint8_t *name, *secret;
	int32_t name_len, secret_len;
	uint16_t ncols;

	proto_cursor_init(&c, m->body, m->body_len);
	if (!proto_read_u16(&c, &ncols) || ncols != 2 || !authq_column(&c, &name, &name_len) ||
	    !authq_column(&c, &secret, &secret_len)) {
		authq_bad(e, "auth_query returned a malformed row");
		return;
	}
	if (e->got_row)
		return;
	e->got_row = true;
	if (!name || !secret)
		return;
	/* A query that ignores $1 would hand one user's secret to everyone. */
	if ((size_t)name_len != strlen(e->user) || memcmp(name, e->user, (size_t)name_len) != 0) {
		authq_bad(e, "auth_query returned a row for another user (does it use $1?)");
		return;
	}
	if (secret_len > AUTHQ_SECRET_MAX || memchr(secret, '\0', (size_t)secret_len)) {
		authq_bad(e, "auth_query returned an unusable secret");
		return;
	}
	e->secret = xmalloc((size_t)secret_len + 1);
	memcpy(e->secret, secret, (size_t)secret_len);
	e->secret[secret_len] = '\0';
}

/* 'Z': the server is clean again; it goes back to the pool, then the
 * waiters hear the answer. */
static enum conn_rc authq_ready(struct authq_entry *e, struct server *s, const struct proto_msg *m)
{
	uint8_t st;

	s->authq = NULL;
	e->server = NULL;
	if (!proto_parse_ready_for_query(m->body, m->body_len, &st) || st != PROTO_TX_IDLE ||
	    (s->conn.rbuf && iobuf_len(s->conn.rbuf) > 0)) {
		server_close(s, "server not idle after auth_query");
	} else {
		s->tx_status = st;
		s->last_used_us = util_now_us();
		pool_server_ready(s);
	}
	if (e->bad)
		authq_fail(e, "28000", AUTHQ_MSG_QUERY);
	else
		authq_finish(e, e->secret ? AUTHQ_FOUND : AUTHQ_NOT_FOUND);
	return s->state == SERVER_CLOSED ? CONN_CLOSED : CONN_OK;
}

/* One whole message of the answer. Returns CONN_CLOSED if s was closed. */
static enum conn_rc authq_message(struct authq_entry *e, struct server *s,
				  const struct proto_msg *m)
{
	switch (m->type) {
	case PROTO_BE_PARSE_COMPLETE:
	case PROTO_BE_BIND_COMPLETE:
	case PROTO_BE_COMMAND_COMPLETE:
	case PROTO_BE_NOTICE_RESPONSE:
	case PROTO_BE_PARAMETER_STATUS:
	case PROTO_BE_NOTIFICATION_RESPONSE:
		return CONN_OK;
	case PROTO_BE_ROW_DESCRIPTION:
		authq_row_description(e, m);
		return CONN_OK;
	case PROTO_BE_DATA_ROW:
		authq_data_row(e, m);
		return CONN_OK;
	case PROTO_BE_NO_DATA:
	case PROTO_BE_EMPTY_QUERY_RESPONSE:
		authq_bad(e, "auth_query returns no rows (is it a SELECT?)");
		return CONN_OK;
	case PROTO_BE_ERROR_RESPONSE: {
		struct proto_error_fields ef;
		char why[512];

		if (proto_parse_error(m->body, m->body_len, &ef))
			snprintf(why, sizeof(why), "server error %s: %s",
				 ef.sqlstate ? ef.sqlstate : "?", ef.message ? ef.message : "");
		else
			snprintf(why, sizeof(why), "malformed ErrorResponse");
		authq_bad(e, why);
		return CONN_OK;
	}
	case PROTO_BE_READY_FOR_QUERY:
		return authq_ready(e, s, m);
	default:
		break;
	}
	server_close(s, "unexpected %s in answer to auth_query", proto_be_type_str(m->type));
	return CONN_CLOSED;
}

enum conn_rc authq_server_data(struct server *s)
{
	struct iobuf *b = s->conn.rbuf;

	while (s->authq && s->conn.rbuf == b && iobuf_len(b) > 0) {
		struct authq_entry *e = s->authq;
		struct proto_msg m;
		size_t pos = b->start;
		enum proto_frame_rc rc;

		rc = proto_stream_next(&s->conn.ps, b->data, b->end, &pos, &m);
		if (rc == PROTO_FRAME_NEED_MORE)
			return CONN_OK;
		if (rc != PROTO_FRAME_OK) {
			server_close(s, "invalid answer to auth_query: %s", proto_frame_rc_str(rc));
			return CONN_CLOSED;
		}
		if (!m.whole) {
			if (m.total <= iobuf_size())
				return CONN_OK; /* the rest is on its way */
			if (m.type != PROTO_BE_NOTICE_RESPONSE) {
				server_close(s, "answer to auth_query too large");
				return CONN_CLOSED;
			}
			/* A huge notice: pass over it. */
			proto_stream_consume(&s->conn.ps, b->end, &pos, &m);
			b->start = (uint32_t)pos;
			continue;
		}
		proto_stream_consume(&s->conn.ps, b->end, &pos, &m);
		b->start = (uint32_t)pos;
		if (authq_message(e, s, &m) == CONN_CLOSED)
			return CONN_CLOSED;
		if (m.type == PROTO_BE_READY_FOR_QUERY)
			return CONN_OK; /* s may already serve someone else */
	}
	return s->state == SERVER_CLOSED ? CONN_CLOSED : CONN_OK;
}

void authq_server_closed(struct server *s)
{
	struct authq_entry *e = s->authq;

	if (!e)
		return;
	s->authq = NULL;
	e->server = NULL;
	if (e->attempts < AUTHQ_ATTEMPTS && g_pooler.run_state == POOLER_RUNNING) {
		/* Queued again; the close callback of s launches a server for
		 * it (pool_launch_servers counts queued lookups). */
		log_debug("auth_query for user \"%s\" as %s: server lost, retrying", e->user,
			  e->where);
		e->state = AUTHQ_QUEUED;
		list_append(&g_authq.queue, &e->qnode);
		e->pool->authq_waiting++;
		return;
	}
	log_warn("auth_query for user \"%s\" as %s: server connection lost", e->user, e->where);
	authq_fail(e, "08006", AUTHQ_MSG_UNAVAILABLE);
}

void authq_pool_failed(struct pool *p, const char *sqlstate, const char *message)
{
	struct list failed;
	struct list_node *it, *next;

	if (p->authq_waiting == 0)
		return;
	/* Collected first: failing one runs client code. */
	list_init(&failed);
	for (it = g_authq.queue.head.next; it != &g_authq.queue.head; it = next) {
		struct authq_entry *e = container_of(it, struct authq_entry, qnode);

		next = it->next;
		if (e->pool != p)
			continue;
		authq_dequeue(e);
		list_append(&failed, &e->qnode);
	}
	while (!list_empty(&failed)) {
		struct list_node *n = list_first(&failed);
		struct authq_entry *e = container_of(n, struct authq_entry, qnode);

		list_remove(&failed, n);
		log_warn("auth_query for user \"%s\" as %s: server login failed: %s (%s)",
			 e->user, e->where, message, sqlstate);
		authq_fail(e, "08006", AUTHQ_MSG_UNAVAILABLE);
	}
}

void authq_janitor(uint64_t now_ms)
{
	double t = g_pooler.cfg->server_connect_timeout;
	uint64_t timeout_ms = t > 0 ? (uint64_t)(t * 1000.0) : 15000;
	struct list_node *it, *next;

	for (it = g_authq.all.head.next; it != &g_authq.all.head; it = next) {
		struct authq_entry *e = container_of(it, struct authq_entry, anode);

		next = it->next;
		if (e->state == AUTHQ_DONE) {
			if (e->cached && now_ms >= e->expires_ms && list_empty(&e->waiters)) {
				authq_uncache(e);
				authq_settle(e);
			}
			continue;
		}
		if (now_ms - e->started_ms < timeout_ms)
			continue;
		log_warn("auth_query for user \"%s\" as %s: no answer after %.1f s", e->user,
			 e->where, (double)timeout_ms / 1000.0);
		if (e->state == AUTHQ_QUEUED) {
			authq_dequeue(e);
		} else {
			struct server *s = e->server;

			s->authq = NULL;
			e->server = NULL;
			server_close(s, "auth_query timed out");
		}
		/* Failing e may free it; waiters' callbacks touch no other entry. */
		next = it->next;
		authq_fail(e, "08006", AUTHQ_MSG_TIMEOUT);
	}
}

void authq_cache_clear(void)
{
	struct list_node *it, *next;

	for (it = g_authq.all.head.next; it != &g_authq.all.head; it = next) {
		struct authq_entry *e = container_of(it, struct authq_entry, anode);

		next = it->next;
		authq_uncache(e);
		authq_settle(e);
	}
}

void authq_cleanup(void)
{
	while (!list_empty(&g_authq.all)) {
		struct authq_entry *e =
			container_of(list_first(&g_authq.all), struct authq_entry, anode);

		/* Every server is gone by now (server_close detached them). */
		if (e->state == AUTHQ_QUEUED)
			authq_dequeue(e);
		while (!list_empty(&e->waiters)) {
			struct list_node *n = list_first(&e->waiters);

			list_remove(&e->waiters, n);
			container_of(n, struct authq_waiter, node)->entry = NULL;
		}
		authq_entry_free(e);
	}
}
