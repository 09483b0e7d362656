/*
 * client.h: a client connection from accept to close. Its placement in a
 * pool is one enum (client_state), changed only by client_set_state, which
 * also moves it between the pool's lists; its protocol position during
 * login is another (client_phase).
 */
#ifndef PGMUX_CLIENT_H
#define PGMUX_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <uthash.h>

#include "auth.h"
#include "conn.h"
#include "list.h"
#include "params.h"

struct pool;
struct server;
struct client_login;
struct admin_session;
struct prep_client;

enum client_state {
	CLIENT_LOGIN,   /* g_pooler.login_clients: startup and authentication */
	CLIENT_WELCOME, /* pool->welcome_clients: waits for server parameters */
	CLIENT_IDLE,    /* pool->idle_clients */
	CLIENT_WAITING, /* pool->waiting_clients: has a request, needs a server */
	CLIENT_ACTIVE,  /* pool->active_clients: linked to a server */
	CLIENT_ADMIN,   /* g_pooler.admin_clients: console session */
	CLIENT_CLOSED,  /* in no list; waiting for close_cb */
};

enum client_phase {
	CLIENT_PH_STARTUP,      /* expects a startup packet */
	CLIENT_PH_AUTH_CLEARTEXT,
	CLIENT_PH_AUTH_MD5,
	CLIENT_PH_AUTH_SCRAM_FIRST,
	CLIENT_PH_AUTH_SCRAM_FINAL,
	CLIENT_PH_AUTH_WAIT,    /* paused, not read: auth_query or PBKDF2 off the loop */
	CLIENT_PH_READY,        /* logged in */
	CLIENT_PH_CANCEL,       /* sent a CancelRequest: reads nothing more, closes when delivered */
};

struct client {
	struct conn conn; /* first: container_of(conn) is the client */
	enum client_state state;
	enum client_phase phase;
	struct list_node node; /* in the list for state */
	uint32_t id;
	struct pool *pool;
	struct server *server;      /* linked server, or NULL */
	struct client_login *login; /* only until logged in */
	struct admin_session *admin; /* console sessions only */
	char *user;                 /* client's user name, once logged in */
	char *app_name;             /* application_name from startup, or NULL */
	uint32_t cancel_pid;        /* the BackendKeyData we gave it */
	uint32_t cancel_key;
	uint64_t cancel_hash_key;   /* pid << 32 | key, the uthash key */
	/* Requests forwarded to the server that still owe a ReadyForQuery. */
	uint32_t outstanding;
	uint8_t tx_status;          /* last ReadyForQuery status it saw */
	bool copy_in;               /* server is in COPY FROM STDIN for it */
	bool unsynced;              /* extended-protocol messages sent since the last Sync */
	struct prep_client *prep;   /* its named statements (prepared.c), or NULL: untracked */
	struct sqlprep_set *sqlprep; /* its SQL-level statements (sqlprep.c), or NULL: none */
	bool in_fd_reserve;         /* accepted into the descriptors kept for the console */
	uint8_t enc_asked;          /* encryption requests answered 'N' (CLIENT_ENC_* bits) */
	uint64_t connect_time_us;   /* wall clock */
	uint64_t request_time_us;   /* monotonic: start of the current request */
	uint64_t wait_start_us;     /* monotonic: when it began waiting */
	uint64_t xact_start_us;     /* monotonic: start of the server assignment */
	uint64_t tx_begin_us;       /* monotonic: first request after ReadyForQuery 'I' */
	uint64_t accepted_ms;       /* uv_now() at accept (client_login_timeout) */
	uint64_t active_ms;         /* uv_now() when it last sent bytes (idle timeouts) */
	uint64_t cancel_sent_ms;    /* query_timeout sent a cancel for the current request */
	UT_hash_handle hh;          /* g_pooler.by_cancel_key */
	/* Tracked parameters as this client set them (params.h); NULL
	 * entries: the pool's defaults. */
	struct param_set params;
	/* Its tracked startup parameters, as sent (session mode gives it a
	 * server started with them, so RESET returns to them). */
	struct param_set startup;
	struct server *sync_server; /* a server running SETs before serving it */
	unsigned leaks;             /* enum param_leak bits of its transaction */
	/* Peer address, fetched once on first use (family 0 until then):
	 * log lines and SHOW CLIENTS must not cost a getpeername each. */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
};

/* A listener accepted a connection onto an initialised handle. */
void client_accepted(struct client *c);
/* Allocates a client whose handle the listener initialises. */
struct client *client_new(void);

void client_set_state(struct client *c, enum client_state next);

/* The pool linked server s to c (pool_acquire/pool_server_ready). */
void client_linked(struct client *c, struct server *s);
/* Called by the server side when it finished c's transaction. */
void client_unlinked(struct client *c);
/* The pool has server parameters now: finish c's login. */
void client_welcome(struct client *c);
/*
 * Sends an ErrorResponse (severity FATAL) and closes once it is written.
 * The reason is logged with the client's identity.
 */
void client_fatal(struct client *c, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Logs an event with the client's identity (LOG level). */
void client_log_event(struct client *c, const char *msg);
/* Closes at once (no message), logging why. */
void client_close(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * The server linked to c died (the caller already unlinked it from the
 * server side). Tells c and decides whether it survives: only a client that
 * was outside a transaction block and waiting for an answer does.
 * `stream_broken`: part of a server message was already forwarded to c.
 */
void client_server_lost(struct client *c, const char *message, bool stream_broken);
/* Resumes processing of buffered client bytes (after linking). */
enum conn_rc client_resume(struct client *c);

/* The authentication scratch state of a client still logging in. */
struct auth_state *client_auth_state(struct client *c);
/* Where auth.c appends its final replies; they leave with the welcome. */
struct proto_buf *client_login_out(struct client *c);
/* auth.c finished what c waited for (CLIENT_PH_AUTH_WAIT): resumes reading
 * and carries on with rc as if auth_begin/auth_on_message had returned it. */
void client_auth_continue(struct client *c, enum auth_rc rc);

/* The client's address as text ("unix" for the unix socket) and port. */
void client_peer_addr(struct client *c, char *addr, size_t addrlen, int *port);

/* Identity prefix for logs: "C-12 app@appdb 127.0.0.1:5555". */
void client_ident(struct client *c, char *out, size_t outlen);
const char *client_state_str(enum client_state s);

#endif /* PGMUX_CLIENT_H */
