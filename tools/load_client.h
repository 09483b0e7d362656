/*
 * load_client.h: one pgmux-load connection, a state machine driven by
 * libpq's asynchronous API (PQconnectStartParams/PQconnectPoll, then
 * PQsendQuery/PQconsumeInput/PQisBusy/PQgetResult) with the socket watched
 * by a uv_poll_t. A client makes one connection attempt; it never
 * reconnects, so every attempt ends in exactly one of "connected" or
 * "failed", and a connection that goes away is counted once as "lost".
 */
#ifndef PGMUX_LOAD_CLIENT_H
#define PGMUX_LOAD_CLIENT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

#include "load_report.h"

enum load_client_state {
	LOAD_CLIENT_CONNECTING, /* PQconnectPoll until OK or FAILED; connect timer runs */
	LOAD_CLIENT_IDLE,       /* connected, nothing sent (idle workload); watches for EOF */
	LOAD_CLIENT_RUNNING,    /* a transaction is in flight */
	LOAD_CLIENT_SLEEPING,   /* between transactions for --think; watches for EOF */
	LOAD_CLIENT_DONE,       /* finished at the end of the run; handles closing */
	LOAD_CLIENT_FAILED,     /* the attempt failed or the connection was lost */
	LOAD_CLIENT_NSTATES
};

struct load_client;
struct load_client_env;

/*
 * The SQL of the next transaction: either a fixed string or one written
 * into buf (len bytes). NULL for the idle workload (nothing is sent).
 */
typedef const char *(*load_client_sql_fn)(struct load_client_env *env, char *buf, size_t len);

/* What all clients of one worker share; owned by the worker (load_worker.c). */
struct load_client_env {
	uv_loop_t *loop;
	const char *const *kw;        /* libpq keywords, NULL-terminated, parsed once */
	const char *const *vals;      /* their values */
	load_client_sql_fn next_sql;  /* NULL: idle workload */
	void *sql_ctx;                /* for next_sql */
	uint64_t think_ms;            /* SLEEPING time between transactions */
	uint64_t connect_timeout_ms;  /* CONNECTING longer than this fails as ETIMEDOUT */
	const struct sockaddr_in *sources; /* --source-addrs; NULL: sockets stay unbound */
	uint32_t n_sources;
	struct load_totals *totals;   /* this worker's counters */
	struct hist *tick_latency;    /* transaction latencies since the last tick */
	uint64_t n_state[LOAD_CLIENT_NSTATES]; /* clients per state (until freed) */
	uint64_t live;                /* clients whose memory is not yet freed */
	struct load_client *head;     /* every live client */
	/* Called after a client's memory is freed (its last handle closed). */
	void (*on_freed)(struct load_client_env *env);
};

/*
 * Starts connection attempt number index (global over all workers, so the
 * source addresses go round robin across processes). Counts the attempt;
 * an attempt that fails at once (e.g. EMFILE from socket()) is counted
 * failed and its client closes itself. Returns NULL only when out of memory
 * before anything was counted.
 */
struct load_client *load_client_start(struct load_client_env *env, uint64_t index);

/*
 * The end of the run: a connected client finishes (DONE, a transaction in
 * flight is dropped, not counted); one still connecting fails as
 * "unfinished". Idempotent; memory is freed later, in the close callbacks.
 */
void load_client_stop(struct load_client *c);
/* load_client_stop() for every live client of env. */
void load_client_stop_all(struct load_client_env *env);

/* Clients that are connected right now (IDLE + RUNNING + SLEEPING). */
uint64_t load_client_connected(const struct load_client_env *env);

const char *load_client_state_str(enum load_client_state s);

#endif /* PGMUX_LOAD_CLIENT_H */
