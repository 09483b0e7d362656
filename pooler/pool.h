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
#include "hist.h"
#include "list.h"
#include "params.h"
#include "server.h"
#include "proto_build.h"

struct client;
struct server;

/* Monotonic totals, as SHOW STATS reports them per database. */
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
	uint64_t client_parse_count;
	uint64_t server_parse_count;
	uint64_t bind_count;
};

/* Prometheus histogram bounds for the wait for a server, in µs. */
#define POOL_WAIT_PROM_BUCKETS 13
extern const uint64_t pool_wait_prom_bounds_us[POOL_WAIT_PROM_BUCKETS];

/*
 * Saturation: time integrals brought up to date (pool_account) before any
 * change to the number of active servers or waiting clients, so they are
 * exact whenever they are read. All monotonic.
 */
struct pool_saturation {
	uint64_t last_us;             /* monotonic time of the last pool_account */
	uint64_t busy_server_us;      /* integral of active servers over time */
	uint64_t saturated_us;        /* time with no idle server, pool full, someone waiting */
	uint32_t cl_waiting_max;      /* high-water mark of waiting clients */
	uint64_t query_wait_timeouts; /* clients dropped after query_wait_timeout */
	uint64_t rejected;            /* clients of this pool refused with 53300 */
	struct hist wait;             /* each server assignment's wait, µs */
	uint64_t wait_prom[POOL_WAIT_PROM_BUCKETS]; /* non-cumulative counts */
};

/*
 * The stats_period clock (admin/stats.c). PgBouncer averages over the window
 * from the tick before last up to the moment of the SHOW, so two snapshots
 * are kept; utilization is over the last full period.
 */
struct pool_period {
	struct pool_stats old;     /* totals at the last tick */
	uint64_t old_us;           /* monotonic time of the last tick */
	struct pool_stats older;   /* totals at the tick before that */
	uint64_t older_us;
	uint64_t start_us;         /* the period in progress began (= old_us) */
	uint64_t start_busy_us;    /* busy_server_us when it began */
	uint64_t length_us;        /* length of the last full period (0: none yet) */
	double utilization_pct;    /* busy servers / pool_size over it */
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
	int min_pool_size;      /* janitor keeps this many servers open */
	int reserve_pool;       /* extra servers for clients waiting > reserve_pool_timeout */
	int max_db_connections; /* servers of all pools of this database; 0: no limit */
	int max_user_connections; /* servers of all pools of this user; 0: no limit */
	enum pool_mode mode;
	/* Client timeouts in ms (0: off): the global value unless the pool's
	 * user has its own in [users]. */
	uint64_t query_timeout_ms;
	uint64_t idle_transaction_timeout_ms;
	uint64_t transaction_timeout_ms;
	uint64_t client_idle_timeout_ms;

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
	/* server_login_retry: after a failed login no server is launched
	 * before retry_at_ms (uv_now); the failure is logged once per
	 * interval, with how many more happened in between. */
	bool login_failing;
	uint64_t retry_at_ms;
	uint64_t fail_logged_ms;
	uint32_t fails_unlogged;
	/* Idle servers running server_check_query before their next client. */
	uint32_t checking_servers;
	/* auth_query lookups waiting for a server of this pool (authq.c):
	 * demand like waiting clients, served first. */
	uint32_t authq_waiting;
	/* Cancel connections to this pool's servers in flight, and the client
	 * cancel connections waiting on them (SHOW POOLS sv_active_cancel,
	 * cl_active_cancel_req). */
	uint32_t cancel_conns;
	uint32_t cancel_requesters;

	/* Tracked parameters as the first server reported them at login:
	 * the values every fresh server has (params.h). */
	struct param_set defaults;
	/* Session state clients left on servers (transaction/statement
	 * mode): what, how often, and who did it last (SHOW SESSION_LEAKS). */
	struct {
		uint64_t by_kind[PARAM_LEAK_KINDS];
		uint64_t resets;
		unsigned last_kind;
		uint64_t last_at_us; /* wall clock */
		char last_client[192];
	} leaks;

	struct pool_stats stats;
	struct pool_saturation sat;
	struct pool_period period;
	UT_hash_handle hh;
};

/* Per-database admin state (PAUSE, DISABLE, KILL), kept by name so it
 * applies to pools created later too. */
struct pool_db_state {
	char *name;
	bool paused;   /* PAUSE or KILL: no server is handed out; servers close */
	bool disabled; /* DISABLE: new clients are refused */
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
 * Client limits at login (max_db_client_connections,
 * max_user_client_connections): NULL if one more client of db/user may
 * come in, else the message naming the limit (in buf).
 */
const char *pool_client_limit(const char *db, const char *user, char *buf, size_t len);
/* Janitor: open servers up to min_pool_size, and into the reserve for
 * clients that waited longer than reserve_pool_timeout. */
void pool_maintain(struct pool *p, uint64_t now_ms);
/* A server of some pool closed: pools of the same database or user that
 * were held back by max_db/user_connections may launch now. */
void pool_kick_related(const struct pool *p);

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
/*
 * Gives s to the waiting client c: at once if s's tracked parameters match
 * c's, otherwise after one SET query (c stays waiting, reserved for s).
 * Returns whether c is linked now.
 */
bool pool_give(struct server *s, struct client *c);
/* A server of p logged in: launches are no longer held back. */
void pool_login_succeeded(struct pool *p);
/* Makes sure enough servers are being launched for the waiters. */
void pool_launch_servers(struct pool *p);
/* Stores the welcome parameters from a server's login. */
void pool_set_welcome(struct pool *p, const struct proto_buf *params, const char *server_version);

/* Brings the saturation integrals up to now; call before the number of
 * active servers or waiting clients changes. */
void pool_account(struct pool *p);
/* A client got a server after waiting wait_us. */
void pool_note_wait(struct pool *p, uint64_t wait_us);

/* Admin state. db == NULL means every database. */
struct pool_db_state *pool_db_state(const char *db, bool create);
bool pool_is_paused(const struct pool *p);
bool pool_db_disabled(const char *db);
void pool_set_paused(const char *db, bool paused);
void pool_set_disabled(const char *db, bool disabled);
/* Marks every server of the matching pools to be closed instead of reused
 * (RECONNECT); idle ones are closed now. */
void pool_reconnect(const char *db);
/* Closes every client and server of the matching pools (KILL). */
void pool_kill(const char *db);
/* Number of servers of the matching pools that still exist (PAUSE waits for
 * 0), or that are marked close_needed (WAIT_CLOSE waits for 0). */
uint32_t pool_count_servers(const char *db, bool close_needed_only);
/* Number of servers linked to clients (SHUTDOWN WAIT_FOR_SERVERS). */
uint32_t pool_count_active_servers(void);
/* Servers of p's active list in state st (RESETTING: PgBouncer's
 * "tested"; CANCELING: "being canceled"), counted by walking the list. */
uint32_t pool_count_in_state(const struct pool *p, enum server_state st);
/* RESUME: hand servers to whoever waited while paused. */
void pool_kick_all(const char *db);
bool pool_matches(const struct pool *p, const char *db);

#endif /* PGMUX_POOL_H */
