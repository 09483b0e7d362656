/*
 * authq.h: auth_query. Looks up the secret of a user who is not in the
 * auth_file by running auth_query ($1 = the user name) on PostgreSQL as
 * auth_user, in auth_dbname or else the client's database, on a server
 * connection of that (database, auth_user) pool. Concurrent logins of one
 * user share one query; answers (found or not) are cached for
 * AUTHQ_CACHE_MS, and RELOAD drops the cache.
 */
#ifndef PGMUX_AUTHQ_H
#define PGMUX_AUTHQ_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "list.h"

struct pool;
struct server;
struct authq_entry;

/* How long an answer is reused: a new role or password takes at most this
 * long to be seen, and a login storm of one user costs one query. */
#define AUTHQ_CACHE_MS 5000

enum authq_status {
	AUTHQ_FOUND,     /* secret is the user's */
	AUTHQ_NOT_FOUND, /* no row, or a NULL secret (expired or no password) */
	AUTHQ_FAILED,    /* the lookup itself failed: tell the client sqlstate/message */
};

struct authq_result {
	enum authq_status status;
	const char *secret;   /* AUTHQ_FOUND; valid only during the call it is given to */
	const char *sqlstate; /* AUTHQ_FAILED */
	const char *message;  /* AUTHQ_FAILED: safe to show an unauthenticated client */
};

/* A client waiting for a lookup. Embedded in the waiter's own state. */
struct authq_waiter {
	struct list_node node;     /* in the lookup's waiter list */
	struct authq_entry *entry; /* NULL when not waiting */
	void (*done)(struct authq_waiter *w, const struct authq_result *r);
};

/* Whether auth_query applies to clients of database db (auth_user is set
 * in its [databases] entry or globally). */
bool authq_enabled(const char *db);
/*
 * Looks user up for a client of database db. When the cache (or a
 * configuration error) answers at once, fills *r and returns true; w is not
 * used. Otherwise returns false and calls w->done later from the loop,
 * never from inside this call.
 */
bool authq_lookup(const char *db, const char *user, struct authq_waiter *w,
		  struct authq_result *r);
/* The waiter gives up (its client is closing); w->done will not be called. */
void authq_cancel(struct authq_waiter *w);

/* ---- hooks for pool.c, server.c, the janitor and reload ---- */

/* pool_server_ready: s is ready and lookups wait for its pool. Returns true
 * if a lookup took it (s is then ACTIVE with s->authq set). */
bool authq_take_server(struct server *s);
/* server_on_data for a server running a lookup (s->authq). */
enum conn_rc authq_server_data(struct server *s);
/* server_close: s was running a lookup; it is retried once, then failed. */
void authq_server_closed(struct server *s);
/* The pool's server login failed and no other server is coming: the
 * lookups waiting for it fail with it. */
void authq_pool_failed(struct pool *p, const char *sqlstate, const char *message);
/* Once a second: lookups older than server_connect_timeout fail, expired
 * answers are freed. */
void authq_janitor(uint64_t now_ms);
/* RELOAD: forget every answer; lookups in flight finish uncached. */
void authq_cache_clear(void);
/* At exit, after the loop: frees everything. */
void authq_cleanup(void);

#endif /* PGMUX_AUTHQ_H */
