/*
 * server.h: a connection from pgmux to PostgreSQL: connect, log in with
 * whatever the server asks for (trust, cleartext, md5, SCRAM-SHA-256), then
 * serve linked clients. server_set_state is the only place that moves it
 * between its pool's lists.
 */
#ifndef PGMUX_SERVER_H
#define PGMUX_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "conn.h"
#include "list.h"
#include "params.h"

struct pool;
struct client;
struct server_login;
struct prep_server;
struct authq_entry;

enum server_state {
	SERVER_CONNECTING, /* pool->login_servers: TCP/unix connect in progress */
	SERVER_LOGIN,      /* pool->login_servers: startup and authentication */
	SERVER_IDLE,       /* pool->idle_servers */
	SERVER_ACTIVE,     /* pool->active_servers: linked to a client */
	SERVER_RESETTING,  /* pool->active_servers: running server_reset_query or
			    * server_check_query (PgBouncer's "tested") */
	SERVER_CANCELING,  /* pool->active_servers: its client is done, but a
			    * CancelRequest aimed at it has not reached
			    * PostgreSQL yet; it must not serve anyone else */
	SERVER_CLOSED,     /* in no list; waiting for close_cb */
};

struct server {
	struct conn conn; /* first */
	enum server_state state;
	struct list_node node;
	uint32_t id;
	struct pool *pool;
	struct client *client;      /* linked client, or NULL */
	struct authq_entry *authq;  /* ACTIVE for an auth_query lookup (authq.c), or NULL */
	struct server_login *login; /* only until logged in */
	uv_connect_t connect_req;
	uv_getaddrinfo_t *resolve;  /* pending name lookup, or NULL */
	uint32_t be_pid;            /* BackendKeyData from PostgreSQL */
	uint32_t be_key;
	uint8_t tx_status;          /* last ReadyForQuery status */
	bool close_needed;          /* RECONNECT/RELOAD: close instead of reusing */
	bool checking;              /* RESETTING for server_check_query */
	uint32_t resets_owed;       /* ReadyForQuery still due to RESETTING queries */
	bool sync_set_owed;         /* RESETTING: the client's SET query has not answered yet */
	struct client *sync_client; /* RESETTING: SETs run for this waiting client */
	struct param_set params;    /* tracked parameters as this server has them */
	struct param_set startup;   /* tracked values in its startup packet (session mode) */
	unsigned leaks;             /* enum param_leak bits seen in its answers */
	char sync_error[256];       /* why the client's SET failed, "" if not */
	char sync_sqlstate[6];
	uint32_t cancels_in_flight; /* CancelRequests for it PostgreSQL has not taken */
	uint64_t connect_time_us;   /* wall clock */
	uint64_t last_used_us;      /* monotonic */
	uint64_t launched_ms;       /* uv_now() at launch (connect timeout, lifetime) */
	struct prep_server *prep;   /* prepared statements it has, answers owed (prepared.c) */
	struct sqlprep_server *sqlprep; /* SQL-level statements it has (sqlprep.c), or NULL */
};

/* Starts a new server connection for the pool. */
void server_launch(struct pool *p);
/* The same with tracked parameters in its startup packet (NULL: none),
 * for session-mode clients that sent their own. */
void server_launch_with(struct pool *p, const struct param_set *startup);
void server_set_state(struct server *s, enum server_state next);
/* Links s to c and marks both active. */
void server_link(struct server *s, struct client *c);
enum server_release_kind {
	SERVER_RELEASE_CLEAN, /* transaction over: straight back to the pool */
	SERVER_RELEASE_RESET, /* session over: run server_reset_query first */
	SERVER_RELEASE_DIRTY, /* state unknown (mid-transaction): close it */
};
/*
 * The linked client is done with s. Unlinks both; the client goes idle
 * unless it is closing. Then s returns to the pool, is reset, or is closed.
 */
void server_release(struct server *s, enum server_release_kind how);
/*
 * Whether an idle server must pass server_check_query before its next
 * client: it has sat unused for server_check_delay (0: always) and the
 * query is not disabled (empty).
 */
bool server_check_due(const struct server *s);
/* Sends server_check_query; the server is handed out once it answers.
 * Returns false if it could not be sent (the server is then closed). */
bool server_start_check(struct server *s);
/*
 * Runs q on idle s for waiting client c, then links them: the SET query
 * (params.h) if with_set, first, then what brings s's SQL-level prepared
 * statements in line (sqlprep.h); owed: the ReadyForQuery messages q
 * brings. Only a failed SET fails the client. Returns false if q could
 * not be sent (s is then closed).
 */
bool server_start_sync(struct server *s, struct client *c, struct proto_buf *q, uint32_t owed,
		       bool with_set);
/* Processes server bytes that arrived while data was held (after link). */
enum conn_rc server_resume(struct server *s);
/*
 * cancel.c: a CancelRequest for s has ended. taken: PostgreSQL closed the
 * cancel connection (it has signalled the backend, or never will); false:
 * given up on (cancel_wait_timeout), so it may still land.
 */
void server_cancel_done(struct server *s, bool taken);
void server_close(struct server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void server_ident(const struct server *s, char *out, size_t outlen);
const char *server_state_str(enum server_state st);

#endif /* PGMUX_SERVER_H */
