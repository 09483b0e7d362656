/*
 * pool.h: one pool per (database, user). A pool owns the lists of its
 * clients and servers, one list per state, and decides who gets a server:
 * clients wait in FIFO order, and the pool grows on demand up to its size.
 */
#ifndef PGMUX_POOL_H
#define PGMUX_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include <uthash.h>

#include "config.h"
#include "list.h"
#include "proto_build.h"

struct client;
struct server;

struct pool_stats {
	uint64_t xact_count;
	uint64_t query_count;
	uint64_t bytes_received; /* from clients */
	uint64_t bytes_sent;     /* to clients */
	uint64_t xact_time_us;
	uint64_t query_time_us;
	uint64_t wait_time_us;
	uint64_t server_assignments;
	uint64_t client_logins;
};

struct pool {
	char *key;       /* "db\x01user": the uthash key */
	char *db_name;   /* as clients name it */
	char *user_name; /* server-side user */

	/* Where and how to reach PostgreSQL (copied from the config so a
	 * reload cannot pull strings out from under a connecting server). */
	char *host;
	int port;
	char *server_db;
	char *password; /* NULL: take it from the auth_file */
	int pool_size;
	enum pool_mode mode;

	/* Clients by state. */
	struct list welcome_clients; /* authenticated, waiting for server parameters */
	struct list idle_clients;    /* logged in, no server, nothing to run */
	struct list waiting_clients; /* FIFO: have a request, need a server */
	struct list active_clients;  /* linked to a server */

	/* Servers by state. */
	struct list login_servers;  /* connecting or authenticating */
	struct list idle_servers;   /* ready, unlinked (LIFO reuse: hot caches) */
	struct list active_servers; /* linked to a client, or resetting */

	/* ParameterStatus messages from the first server login, replayed to
	 * every client that logs in. */
	uint8_t *welcome;
	size_t welcome_len;
	char *server_version;

	/* Last server login failure, for clients that must be told. */
	char *last_error_sqlstate;
	char *last_error_message;
	uint64_t last_login_failure_us;

	struct pool_stats stats;
	UT_hash_handle hh;
};

/* Finds or creates the pool for a database entry and server user. */
struct pool *pool_get(const struct cfg_db *db, const char *client_db, const char *user);
/* Applies a reloaded config to existing pools (sizes, modes, hosts). */
void pool_apply_config(void);
void pool_free_all(void);

/* Number of servers in any state. */
uint32_t pool_server_total(const struct pool *p);

/*
 * A logged-in client needs a server. Links one at once if a server is idle
 * (returns true), else queues the client and launches a server if the pool
 * may grow (returns false).
 */
bool pool_acquire(struct pool *p, struct client *c);
/* A server became usable (login done, released, reset): hand it to the first
 * waiting client or park it idle. */
void pool_server_ready(struct server *s);
/* A client needs server parameters before it can be welcomed: make sure a
 * server login is under way. */
void pool_want_welcome(struct pool *p);
/* The server login failed: tell the clients that cannot be served. */
void pool_login_failed(struct pool *p, const char *sqlstate, const char *message);
/* Makes sure enough servers are being launched for the waiters. */
void pool_launch_servers(struct pool *p);
/* Stores the welcome parameters from a server's login. */
void pool_set_welcome(struct pool *p, const struct proto_buf *params, const char *server_version);

#endif /* PGMUX_POOL_H */
