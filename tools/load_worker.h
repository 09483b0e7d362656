/*
 * load_worker.h: one pgmux-load worker process. It runs its share of the
 * clients on its own libuv loop, paces new connection attempts with a token
 * bucket, stops them all when --duration is up (or on SIGINT/SIGTERM),
 * and writes a tick record every second and a final report at the end to a
 * pipe the parent reads (load_report.h, "worker -> parent records").
 * The workloads' SQL lives here too.
 */
#ifndef PGMUX_LOAD_WORKER_H
#define PGMUX_LOAD_WORKER_H

#include <netinet/in.h>
#include <stdint.h>

#include "load_opts.h"

/*
 * The tx workload: a TPC-B-like transaction on two tables created (once,
 * before the run) by LOAD_WORKER_TX_SETUP: add a random delta to one of
 * LOAD_WORKER_TX_ACCOUNTS accounts, read it back, add the delta to its
 * branch (one of LOAD_WORKER_TX_BRANCHES: the contended rows, as in
 * TPC-B), commit; all one multi-statement simple query.
 */
#define LOAD_WORKER_TX_ACCOUNTS 10000
#define LOAD_WORKER_TX_BRANCHES 10
extern const char LOAD_WORKER_TX_SETUP[];
/* How the tx workload's transaction looks, for the report. */
extern const char LOAD_WORKER_TX_DESCRIPTION[];

struct load_worker_cfg {
	const struct load_opts *opts;
	const char *sql;              /* fixed transaction (select, sleep, file); NULL otherwise */
	const char *const *kw;        /* libpq keywords, NULL-terminated */
	const char *const *vals;
	long clients;                 /* this worker's share */
	uint64_t first_index;         /* global index of its first client ... */
	uint64_t index_step;          /* ... and the step between its clients (= procs) */
	double rate;                  /* its share of --connect-rate, 0: unpaced */
	const struct sockaddr_in *sources; /* --source-addrs, NULL if none */
	uint32_t n_sources;
	int out_fd;                   /* the pipe to the parent */
};

/*
 * Runs the worker to the end. Returns the process exit status: 0 when the
 * run finished and its report was written, 1 otherwise (the reason is on
 * stderr). Everything it allocated is freed and uv_loop_close() succeeded
 * when it returns 0.
 */
int load_worker_run(const struct load_worker_cfg *cfg);

/*
 * The fixed SQL of one transaction for o's workload into a malloc'd
 * string: "SELECT 1", "SELECT pg_sleep(0.050)", or script (the file's
 * contents). NULL for tx (generated per transaction) and idle.
 */
char *load_worker_fixed_sql(const struct load_opts *o, const char *script);

#endif /* PGMUX_LOAD_WORKER_H */
