/*
 * load_worker.c: a worker process's loop. Handles, in the order they act:
 * the pace timer starts clients as the token bucket allows, the tick timer
 * reports once a second, the end timer (or a signal) stops every client,
 * and when the last client's memory is gone the final report goes out and
 * the worker's own handles close, so uv_run() returns on an empty loop.
 */
#include "load_worker.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "load_client.h"
#include "load_report.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#define LOAD_WORKER_PACE_MS 10      /* token bucket refill period */
#define LOAD_WORKER_UNPACED_BATCH 1000 /* attempts per pace tick without a rate */
#define LOAD_WORKER_BUCKET_S 0.1    /* tokens saved up at most: 100 ms worth */

const char LOAD_WORKER_TX_SETUP[] =
	"CREATE TABLE IF NOT EXISTS pgmux_load_branches ("
	"bid int PRIMARY KEY, bbalance bigint NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS pgmux_load_accounts ("
	"aid int PRIMARY KEY, bid int NOT NULL, abalance bigint NOT NULL DEFAULT 0);"
	"INSERT INTO pgmux_load_branches SELECT g, 0 FROM generate_series(1, 10) g "
	"ON CONFLICT DO NOTHING;"
	"INSERT INTO pgmux_load_accounts SELECT g, 1 + (g - 1) % 10, 0 "
	"FROM generate_series(1, 10000) g ON CONFLICT DO NOTHING;";

const char LOAD_WORKER_TX_DESCRIPTION[] =
	"BEGIN; UPDATE pgmux_load_accounts SET abalance = abalance + :delta WHERE aid = :aid; "
	"SELECT abalance FROM pgmux_load_accounts WHERE aid = :aid; "
	"UPDATE pgmux_load_branches SET bbalance = bbalance + :delta WHERE bid = :bid; COMMIT;";

enum load_worker_state {
	LOAD_WORKER_RUNNING,  /* starting clients, running transactions */
	LOAD_WORKER_STOPPING, /* clients told to stop; waiting for their memory to go */
	LOAD_WORKER_CLOSING,  /* final report written; own handles closing */
};

struct load_worker {
	const struct load_worker_cfg *cfg;
	enum load_worker_state state;
	uv_loop_t loop;
	uv_timer_t pace;
	uv_timer_t tick;
	uv_timer_t end;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	struct load_client_env env;
	struct load_totals totals;
	struct hist tick_latency;
	long started;           /* clients started so far */
	double tokens;          /* token bucket: attempts that may start now */
	uint64_t refill_ns;     /* last refill */
	uint64_t start_ns;
	uint64_t rng;           /* xorshift64 state for the tx workload */
	int rc;                 /* exit status so far */
};

static void worker_on_pace(uv_timer_t *t);
static void worker_on_tick(uv_timer_t *t);
static void worker_on_end(uv_timer_t *t);
static void worker_on_signal(uv_signal_t *s, int signum);
static void worker_on_client_freed(struct load_client_env *env);
static void worker_on_close(uv_handle_t *h);
static void worker_stop(struct load_worker *w);

/* ---- workloads ---- */

char *load_worker_fixed_sql(const struct load_opts *o, const char *script)
{
	char buf[64];

	switch (o->workload) {
	case LOAD_WL_SELECT:
		return strdup("SELECT 1");
	case LOAD_WL_SLEEP:
		(void)snprintf(buf, sizeof(buf), "SELECT pg_sleep(%llu / 1000.0)",
			       (unsigned long long)o->sleep_ms);
		return strdup(buf);
	case LOAD_WL_FILE:
		return strdup(script);
	case LOAD_WL_TX:
	case LOAD_WL_IDLE:
		return NULL;
	}
	return NULL;
}

static const char *worker_fixed_sql(struct load_client_env *env, char *buf, size_t len)
{
	const struct load_worker *w = env->sql_ctx;

	(void)buf;
	(void)len;
	return w->cfg->sql;
}

static uint64_t worker_random(struct load_worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

/* One TPC-B-like transaction with a random account and delta. */
static const char *worker_tx_sql(struct load_client_env *env, char *buf, size_t len)
{
	struct load_worker *w = env->sql_ctx;
	unsigned aid = 1 + (unsigned)(worker_random(w) % LOAD_WORKER_TX_ACCOUNTS);
	unsigned bid = 1 + (aid - 1) % LOAD_WORKER_TX_BRANCHES;
	int delta = (int)(worker_random(w) % 10001) - 5000;
	int n;

	n = snprintf(buf, len,
		     "BEGIN;"
		     "UPDATE pgmux_load_accounts SET abalance = abalance + %d WHERE aid = %u;"
		     "SELECT abalance FROM pgmux_load_accounts WHERE aid = %u;"
		     "UPDATE pgmux_load_branches SET bbalance = bbalance + %d WHERE bid = %u;"
		     "COMMIT;",
		     delta, aid, aid, delta, bid);
	/* The buffer is sized for this statement; a cut one would be a bug. */
	if (n < 0 || (size_t)n >= len)
		abort();
	return buf;
}

/* ---- the pipe to the parent ---- */

/* Writes all of b; a failure (the parent is gone) fails the worker. */
static void worker_send(struct load_worker *w, struct load_buf *b)
{
	size_t off = 0;

	if (b->failed) {
		fprintf(stderr, "pgmux-load worker %d: out of memory for a report\n",
			(int)getpid());
		w->rc = 1;
		return;
	}
	while (off < b->len) {
		ssize_t n = write(w->cfg->out_fd, b->p + off, b->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (w->rc == 0)
				fprintf(stderr,
					"pgmux-load worker %d: cannot write to the parent: %s\n",
					(int)getpid(), strerror(errno));
			w->rc = 1;
			return;
		}
		off += (size_t)n;
	}
}

static uint64_t worker_elapsed_ms(const struct load_worker *w)
{
	return (uv_hrtime() - w->start_ns) / 1000000;
}

/* ---- starting clients ---- */

/* How many attempts the bucket allows now. */
static long worker_take_tokens(struct load_worker *w)
{
	double rate = w->cfg->rate;
	uint64_t now = uv_hrtime();
	double cap;
	long n;

	if (rate <= 0.0)
		return LOAD_WORKER_UNPACED_BATCH;
	w->tokens += rate * (double)(now - w->refill_ns) / 1e9;
	w->refill_ns = now;
	cap = rate * LOAD_WORKER_BUCKET_S;
	if (cap < 1.0)
		cap = 1.0;
	if (w->tokens > cap)
		w->tokens = cap;
	n = (long)w->tokens;
	w->tokens -= (double)n;
	return n;
}

static void worker_start_clients(struct load_worker *w, long n)
{
	const struct load_worker_cfg *cfg = w->cfg;

	while (n-- > 0 && w->started < cfg->clients && w->state == LOAD_WORKER_RUNNING) {
		uint64_t index = cfg->first_index + (uint64_t)w->started * cfg->index_step;

		if (load_client_start(&w->env, index) == NULL) {
			fprintf(stderr, "pgmux-load worker %d: out of memory for client %ld\n",
				(int)getpid(), w->started);
			w->rc = 1;
			return;
		}
		w->started++;
	}
	if (w->started >= cfg->clients)
		uv_timer_stop(&w->pace);
}

static void worker_on_pace(uv_timer_t *t)
{
	struct load_worker *w = container_of(t, struct load_worker, pace);

	worker_start_clients(w, worker_take_tokens(w));
}

/* ---- ticks ---- */

static void worker_on_tick(uv_timer_t *t)
{
	struct load_worker *w = container_of(t, struct load_worker, tick);
	struct load_buf b = { 0 };
	struct load_tick tk;

	memset(&tk, 0, sizeof(tk));
	tk.t_ms = worker_elapsed_ms(w);
	tk.attempted = w->totals.attempted;
	tk.connected = load_client_connected(&w->env);
	tk.connecting = w->env.n_state[LOAD_CLIENT_CONNECTING];
	tk.failed = w->totals.failed;
	tk.lost = w->totals.lost;
	tk.tx_ok = w->totals.tx_ok;
	tk.latency = w->tick_latency;
	hist_reset(&w->tick_latency);
	load_report_wire_tick(&b, &tk);
	worker_send(w, &b);
	load_buf_free(&b);
	/* Nobody reads the results any more: end the run rather than waste it. */
	if (w->rc != 0)
		worker_stop(w);
}

/* ---- stopping ---- */

/* Every client is gone: report, then close our own handles. */
static void worker_finish(struct load_worker *w)
{
	struct load_buf b = { 0 };

	w->state = LOAD_WORKER_CLOSING;
	load_report_wire_final(&b, &w->totals);
	worker_send(w, &b);
	load_buf_free(&b);
	uv_close((uv_handle_t *)&w->pace, worker_on_close);
	uv_close((uv_handle_t *)&w->tick, worker_on_close);
	uv_close((uv_handle_t *)&w->end, worker_on_close);
	uv_close((uv_handle_t *)&w->sigint, worker_on_close);
	uv_close((uv_handle_t *)&w->sigterm, worker_on_close);
}

static void worker_stop(struct load_worker *w)
{
	if (w->state != LOAD_WORKER_RUNNING)
		return;
	w->state = LOAD_WORKER_STOPPING;
	w->totals.elapsed_ms = worker_elapsed_ms(w);
	uv_timer_stop(&w->pace);
	uv_timer_stop(&w->tick);
	uv_timer_stop(&w->end);
	load_client_stop_all(&w->env);
	if (w->env.live == 0)
		worker_finish(w);
}

static void worker_on_end(uv_timer_t *t)
{
	worker_stop(container_of(t, struct load_worker, end));
}

static void worker_on_signal(uv_signal_t *s, int signum)
{
	struct load_worker *w = s->data;

	(void)signum;
	worker_stop(w);
}

static void worker_on_client_freed(struct load_client_env *env)
{
	struct load_worker *w = container_of(env, struct load_worker, env);

	if (w->state == LOAD_WORKER_STOPPING && env->live == 0)
		worker_finish(w);
}

static void worker_on_close(uv_handle_t *h)
{
	(void)h;
}

/* ---- setup ---- */

static void worker_init_env(struct load_worker *w)
{
	const struct load_worker_cfg *cfg = w->cfg;
	struct load_client_env *env = &w->env;

	memset(env, 0, sizeof(*env));
	env->loop = &w->loop;
	env->kw = cfg->kw;
	env->vals = cfg->vals;
	env->sql_ctx = w;
	if (cfg->opts->workload == LOAD_WL_TX)
		env->next_sql = worker_tx_sql;
	else if (cfg->sql != NULL)
		env->next_sql = worker_fixed_sql;
	env->think_ms = cfg->opts->think_ms;
	env->connect_timeout_ms = cfg->opts->connect_timeout_ms;
	env->sources = cfg->sources;
	env->n_sources = cfg->n_sources;
	env->totals = &w->totals;
	env->tick_latency = &w->tick_latency;
	env->on_freed = worker_on_client_freed;
}

static int worker_init_handles(struct load_worker *w)
{
	int rc = uv_loop_init(&w->loop);

	if (rc != 0) {
		fprintf(stderr, "pgmux-load worker: uv_loop_init: %s\n", uv_strerror(rc));
		return -1;
	}
	uv_timer_init(&w->loop, &w->pace);
	uv_timer_init(&w->loop, &w->tick);
	uv_timer_init(&w->loop, &w->end);
	uv_signal_init(&w->loop, &w->sigint);
	uv_signal_init(&w->loop, &w->sigterm);
	w->sigint.data = w;
	w->sigterm.data = w;
	return 0;
}

int load_worker_run(const struct load_worker_cfg *cfg)
{
	struct load_worker *w = calloc(1, sizeof(*w));
	int rc;

	if (w == NULL) {
		fprintf(stderr, "pgmux-load worker: out of memory\n");
		return 1;
	}
	w->cfg = cfg;
	load_report_totals_reset(&w->totals);
	hist_reset(&w->tick_latency);
	if (worker_init_handles(w) != 0) {
		free(w);
		return 1;
	}
	worker_init_env(w);
	w->rng = ((uint64_t)getpid() << 32) ^ uv_hrtime() ^ 0x9e3779b97f4a7c15ull;
	w->start_ns = uv_hrtime();
	w->refill_ns = w->start_ns;
	/* Start with one token so the first attempt goes at once at any rate. */
	w->tokens = 1.0;
	uv_timer_start(&w->pace, worker_on_pace, 0, LOAD_WORKER_PACE_MS);
	uv_timer_start(&w->tick, worker_on_tick, 1000, 1000);
	uv_timer_start(&w->end, worker_on_end, cfg->opts->duration_ms, 0);
	uv_signal_start(&w->sigint, worker_on_signal, SIGINT);
	uv_signal_start(&w->sigterm, worker_on_signal, SIGTERM);

	uv_run(&w->loop, UV_RUN_DEFAULT);
	rc = uv_loop_close(&w->loop);
	if (rc != 0) {
		fprintf(stderr, "pgmux-load worker %d: uv_loop_close: %s (a handle leaked)\n",
			(int)getpid(), uv_strerror(rc));
		w->rc = 1;
	}
	rc = w->rc;
	free(w);
	return rc;
}
