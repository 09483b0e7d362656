/*
 * pooler.h: the one global, g_pooler, holding everything the process
 * shares: the loop, the live configuration, pools, listeners, the lists of
 * clients not yet in a pool, and the run state. No other non-const globals
 * exist outside small module-private caches (iobuf free list, log file).
 */
#ifndef PGMUX_POOLER_H
#define PGMUX_POOLER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "list.h"
#include "prepared.h"

struct pool;
struct client;

enum pooler_run_state {
	POOLER_RUNNING,
	POOLER_SHUTDOWN_WAIT, /* SIGTERM: no new clients, wait for the rest */
	POOLER_SHUTDOWN_WAIT_SERVERS, /* no new transactions, wait for servers */
	POOLER_SHUTDOWN_NOW,  /* closing everything */
};

struct pooler {
	uv_loop_t *loop;                /* the only event loop */
	struct cfg *cfg;                /* live config; replaced whole on reload */
	struct cfg_userlist *userlist;  /* auth_file contents, or NULL */
	struct hba *hba;                /* auth_hba_file when auth_type = hba, or NULL */
	/* TLS contexts from client_tls_* / server_tls_*; NULL when that side
	 * is disabled. Connections hold their own reference. */
	struct ssl_ctx_st *client_tls;
	struct ssl_ctx_st *server_tls;
	struct pool *pools;             /* uthash of every pool by (db, user) */
	struct list login_clients;      /* clients in startup or authentication */
	struct list admin_clients;      /* logged-in admin console clients */
	struct list listeners;          /* struct listener.node */
	struct client *by_cancel_key;   /* uthash of logged-in clients by cancel key */
	struct pool_db_state *db_states; /* uthash of per-database admin state */
	struct prep_registry prep;      /* prepared.c: statements by text, shared by all pools */
	bool paused;                    /* global PAUSE */
	uint32_t admin_waiting;         /* console commands waiting for a condition */
	uint32_t client_count;          /* every client conn alive, for max_client_conn */
	uint32_t server_count;          /* every server conn alive */
	uint32_t next_client_id;
	uint32_t next_server_id;
	enum pooler_run_state run_state;
	uint64_t start_time_us;         /* wall clock at startup */
	uv_signal_t sig_int;
	uv_signal_t sig_term;
	uv_signal_t sig_hup;
	uv_timer_t shutdown_timer;      /* bounds the SIGTERM wait */
	uv_check_t reaper;              /* runs after each loop iteration */
	char *config_path;
};

extern struct pooler g_pooler;

/* Builds g_pooler from a loaded config; 0 or -1 (logged). */
int pooler_init(uv_loop_t *loop, struct cfg *cfg, const char *config_path);
/* Starts listening and signal handling. */
int pooler_start(void);
/* Rereads the config file and auth_file; keeps the old ones on error.
 * Writes a reason into err on failure. */
int pooler_reload(char *err, size_t errlen);
/* Begins shutdown; `wait_for_clients` lets connected clients finish. */
void pooler_shutdown(bool wait_for_clients);
/* Stops accepting and new transactions; shuts down once no server is
 * linked to a client (SHUTDOWN WAIT_FOR_SERVERS). */
void pooler_shutdown_wait_servers(void);
/* Closes every connection and handle; uv_run then returns. */
void pooler_close_everything(void);
/* Called when a client or server goes away, to finish a waiting shutdown. */
void pooler_maybe_finish_shutdown(void);
/* Releases everything after uv_run returns. */
void pooler_cleanup(void);

#endif /* PGMUX_POOLER_H */
