/*
 * load_client.c: the per-connection state machine of pgmux-load. Reads top
 * to bottom in the order a connection lives: start, connect steps, the
 * connected hand-off, transactions, idle watching, and the single finish
 * path that closes the handles and frees the client in the last close
 * callback.
 *
 * Handle lifetimes: the timer is embedded and lives as long as the client.
 * The poll handle is allocated on its own, because libpq may replace the
 * socket while connecting (next address, SSL or GSS fallback) and a
 * uv_poll_t cannot be re-pointed at another descriptor: the old one is
 * closed and a new one made, and its memory can only go in its close
 * callback. A poll handle is always closed before PQfinish() closes the
 * descriptor under it.
 */
#include "load_client.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "load_bind.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* No cause recorded yet (load_report_classify() picks one from the text). */
#define LOAD_CAUSE_NONE LOAD_CAUSE_COUNT

#define LOAD_CLIENT_SQL_MAX 512
#define LOAD_CLIENT_MAX_POLL_ERRORS 3 /* POLLERRs in a row libpq may take to notice */

struct load_client_poll {
	uv_poll_t handle;
	struct load_client *client;
};

struct load_client {
	struct load_client_env *env;
	struct load_client *prev, *next; /* env->head list */
	enum load_client_state state;
	PGconn *pg;
	struct load_client_poll *poll;   /* NULL before the first watch and once closing */
	int fd;                          /* the descriptor poll watches */
	int events;                      /* UV_READABLE / UV_WRITABLE poll is started with */
	int poll_errors;                 /* poll callbacks with an error status in a row */
	uv_timer_t timer;                /* connect timeout, then think time */
	int handles;                     /* libuv handles not yet closed */
	uint64_t index;                  /* global attempt number */
	uint64_t t0_ns;                  /* connect or transaction start (uv_hrtime) */
	enum load_cause tx_cause;        /* first error of the transaction in flight */
	char tx_msg[LOAD_MSG_MAX];
	enum load_cause fatal_cause;     /* a FATAL notice received while idle */
	char fatal_msg[LOAD_MSG_MAX];
	char sql[LOAD_CLIENT_SQL_MAX];   /* next_sql() may write the statement here */
};

static void client_on_poll(uv_poll_t *h, int status, int events);
static void client_on_timer(uv_timer_t *t);
static void client_on_poll_close(uv_handle_t *h);
static void client_on_timer_close(uv_handle_t *h);
static void client_on_notice(void *arg, const PGresult *res);

static void client_connect_step(struct load_client *c);
static void client_tx_start(struct load_client *c);

const char *load_client_state_str(enum load_client_state s)
{
	switch (s) {
	case LOAD_CLIENT_CONNECTING:
		return "connecting";
	case LOAD_CLIENT_IDLE:
		return "idle";
	case LOAD_CLIENT_RUNNING:
		return "running";
	case LOAD_CLIENT_SLEEPING:
		return "sleeping";
	case LOAD_CLIENT_DONE:
		return "done";
	case LOAD_CLIENT_FAILED:
		return "failed";
	case LOAD_CLIENT_NSTATES:
		break;
	}
	return "invalid";
}

uint64_t load_client_connected(const struct load_client_env *env)
{
	return env->n_state[LOAD_CLIENT_IDLE] + env->n_state[LOAD_CLIENT_RUNNING] +
	       env->n_state[LOAD_CLIENT_SLEEPING];
}

static bool client_terminal(const struct load_client *c)
{
	return c->state == LOAD_CLIENT_DONE || c->state == LOAD_CLIENT_FAILED;
}

/* The only place a client changes state: keeps the per-state counts and the peak. */
static void client_set_state(struct load_client *c, enum load_client_state next)
{
	struct load_client_env *env = c->env;
	uint64_t connected;

	env->n_state[c->state]--;
	env->n_state[next]++;
	c->state = next;
	connected = load_client_connected(env);
	if (connected > env->totals->peak_connected)
		env->totals->peak_connected = connected;
}

/* ---- teardown ---- */

static void client_unlink_and_free(struct load_client *c)
{
	struct load_client_env *env = c->env;

	if (c->prev)
		c->prev->next = c->next;
	else
		env->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	env->n_state[c->state]--;
	env->live--;
	free(c);
	if (env->on_freed)
		env->on_freed(env);
}

static void client_handle_closed(struct load_client *c)
{
	if (--c->handles == 0)
		client_unlink_and_free(c);
}

static void client_on_poll_close(uv_handle_t *h)
{
	struct load_client_poll *p = container_of(h, struct load_client_poll, handle);
	struct load_client *c = p->client;

	free(p);
	client_handle_closed(c);
}

static void client_on_timer_close(uv_handle_t *h)
{
	client_handle_closed(container_of(h, struct load_client, timer));
}

/* Closes the poll handle (if any); libuv stops watching the descriptor at once. */
static void client_poll_drop(struct load_client *c)
{
	if (c->poll == NULL)
		return;
	uv_close((uv_handle_t *)&c->poll->handle, client_on_poll_close);
	c->poll = NULL;
	c->fd = -1;
	c->events = 0;
}

/*
 * The single way out: enters final (DONE or FAILED), closes the poll
 * handle before PQfinish() closes its descriptor, closes the timer. A
 * second call is a no-op. The memory stays valid until the close
 * callbacks run on a later loop turn, so a caller may still look at
 * c->state (client_terminal()) but must not touch c->pg or the handles.
 */
static void client_finish(struct load_client *c, enum load_client_state final)
{
	if (client_terminal(c))
		return;
	client_set_state(c, final);
	client_poll_drop(c);
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, client_on_timer_close);
	if (c->pg != NULL) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
}

/* A connection attempt failed; cause NONE means classify the message. */
static void client_connect_failed(struct load_client *c, enum load_cause cause,
				  const char *msg)
{
	struct load_totals *t = c->env->totals;

	if (cause == LOAD_CAUSE_NONE)
		cause = load_report_classify(NULL, msg);
	t->failed++;
	load_report_cause_add(&t->connect_fail, cause, msg);
	client_finish(c, LOAD_CLIENT_FAILED);
}

/*
 * An established connection went away (EOF, reset, FATAL). A FATAL notice
 * that came first says more than libpq's "server closed the connection".
 */
static void client_lost(struct load_client *c, enum load_cause cause, const char *msg)
{
	struct load_totals *t = c->env->totals;

	if (c->fatal_cause != LOAD_CAUSE_NONE) {
		cause = c->fatal_cause;
		msg = c->fatal_msg;
	} else if (cause == LOAD_CAUSE_NONE) {
		cause = load_report_classify(NULL, msg);
	}
	t->lost++;
	load_report_cause_add(&t->lost_by, cause, msg);
	client_finish(c, LOAD_CLIENT_FAILED);
}

/* A failure at any stage: an attempt fails while connecting, a connection is lost after. */
static void client_fail(struct load_client *c, enum load_cause cause, const char *msg)
{
	if (c->state == LOAD_CLIENT_CONNECTING)
		client_connect_failed(c, cause, msg);
	else
		client_lost(c, cause, msg);
}

void load_client_stop(struct load_client *c)
{
	switch (c->state) {
	case LOAD_CLIENT_CONNECTING:
		client_connect_failed(c, LOAD_CAUSE_UNFINISHED, "still connecting at the end");
		return;
	case LOAD_CLIENT_IDLE:
	case LOAD_CLIENT_RUNNING:
	case LOAD_CLIENT_SLEEPING:
		client_finish(c, LOAD_CLIENT_DONE);
		return;
	case LOAD_CLIENT_DONE:
	case LOAD_CLIENT_FAILED:
	case LOAD_CLIENT_NSTATES:
		return;
	}
}

void load_client_stop_all(struct load_client_env *env)
{
	struct load_client *c;

	/* Stopping never frees synchronously, so walking the list is safe. */
	for (c = env->head; c != NULL; c = c->next)
		load_client_stop(c);
}

/* ---- socket watching ---- */

/*
 * Watches libpq's current socket for events. If libpq replaced the socket
 * since the last call, the old poll handle goes and a new one is made.
 * Returns 0, or -1 after failing the client (it is then finished).
 */
static int client_watch(struct load_client *c, int events)
{
	int fd = PQsocket(c->pg);
	int rc;

	if (fd < 0) {
		client_fail(c, LOAD_CAUSE_NONE, PQerrorMessage(c->pg));
		return -1;
	}
	if (c->poll != NULL && c->fd != fd)
		client_poll_drop(c);
	if (c->poll == NULL) {
		c->poll = calloc(1, sizeof(*c->poll));
		if (c->poll == NULL) {
			client_fail(c, LOAD_CAUSE_OTHER, "out of memory for a poll handle");
			return -1;
		}
		rc = uv_poll_init(c->env->loop, &c->poll->handle, fd);
		if (rc != 0) {
			free(c->poll);
			c->poll = NULL;
			client_fail(c, LOAD_CAUSE_OTHER, uv_strerror(rc));
			return -1;
		}
		c->poll->client = c;
		c->handles++;
		c->fd = fd;
		c->events = 0;
	}
	if (c->events == events)
		return 0;
	rc = uv_poll_start(&c->poll->handle, events, client_on_poll);
	if (rc != 0) {
		client_fail(c, LOAD_CAUSE_OTHER, uv_strerror(rc));
		return -1;
	}
	c->events = events;
	return 0;
}

/* ---- connecting ---- */

/* Arms this attempt's source address (if any) for libpq's connect() calls. */
static void client_arm_source(const struct load_client *c)
{
	const struct load_client_env *env = c->env;

	if (env->n_sources > 0)
		load_bind_arm(&env->sources[c->index % env->n_sources]);
}

struct load_client *load_client_start(struct load_client_env *env, uint64_t index)
{
	struct load_client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->env = env;
	c->index = index;
	c->fd = -1;
	c->tx_cause = LOAD_CAUSE_NONE;
	c->fatal_cause = LOAD_CAUSE_NONE;
	c->state = LOAD_CLIENT_CONNECTING;
	env->n_state[LOAD_CLIENT_CONNECTING]++;
	env->live++;
	c->next = env->head;
	if (env->head)
		env->head->prev = c;
	env->head = c;
	uv_timer_init(env->loop, &c->timer);
	c->handles = 1;
	env->totals->attempted++;
	c->t0_ns = uv_hrtime();

	client_arm_source(c);
	c->pg = PQconnectStartParams(env->kw, env->vals, 0);
	load_bind_disarm();
	if (c->pg == NULL) {
		client_connect_failed(c, LOAD_CAUSE_OTHER, "out of memory for a libpq connection");
		return c;
	}
	/* Verbose errors carry the SQLSTATE of a refused login (load_report_classify). */
	PQsetErrorVerbosity(c->pg, PQERRORS_VERBOSE);
	PQsetNoticeReceiver(c->pg, client_on_notice, c);
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		client_connect_failed(c, LOAD_CAUSE_NONE, PQerrorMessage(c->pg));
		return c;
	}
	/* libpq ignores connect_timeout in PQconnectPoll mode: enforce ours. */
	uv_timer_start(&c->timer, client_on_timer, env->connect_timeout_ms, 0);
	/* As documented for PQconnectStart: behave as if polling said WRITING. */
	(void)client_watch(c, UV_WRITABLE);
	return c;
}

/* Counts whether the socket really uses the source address it was given. */
static void client_check_source(struct load_client *c)
{
	const struct load_client_env *env = c->env;
	const struct sockaddr_in *want;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (env->n_sources == 0)
		return;
	want = &env->sources[c->index % env->n_sources];
	if (getsockname(PQsocket(c->pg), (struct sockaddr *)&ss, &len) == 0 &&
	    ss.ss_family == AF_INET &&
	    ((struct sockaddr_in *)&ss)->sin_addr.s_addr == want->sin_addr.s_addr)
		env->totals->src_bound++;
	else
		env->totals->src_mismatch++;
}

static void client_connected(struct load_client *c)
{
	struct load_client_env *env = c->env;

	uv_timer_stop(&c->timer);
	env->totals->connected++;
	hist_record(&env->totals->connect_latency, (uv_hrtime() - c->t0_ns) / 1000);
	client_check_source(c);
	if (PQsetnonblocking(c->pg, 1) != 0) {
		client_lost(c, LOAD_CAUSE_NONE, PQerrorMessage(c->pg));
		return;
	}
	if (env->next_sql == NULL) {
		client_set_state(c, LOAD_CLIENT_IDLE);
		(void)client_watch(c, UV_READABLE);
		return;
	}
	client_tx_start(c);
}

static void client_connect_step(struct load_client *c)
{
	PostgresPollingStatusType st;

	client_arm_source(c);
	st = PQconnectPoll(c->pg);
	load_bind_disarm();
	switch (st) {
	case PGRES_POLLING_OK:
		client_connected(c);
		return;
	case PGRES_POLLING_FAILED:
		client_connect_failed(c, LOAD_CAUSE_NONE, PQerrorMessage(c->pg));
		return;
	case PGRES_POLLING_READING:
		(void)client_watch(c, UV_READABLE);
		return;
	case PGRES_POLLING_WRITING:
	case PGRES_POLLING_ACTIVE:
		(void)client_watch(c, UV_WRITABLE);
		return;
	}
}

/* ---- transactions ---- */

/* Sends what libpq still buffers; watches for writability while some is left. */
static void client_tx_flush(struct load_client *c)
{
	int rc = PQflush(c->pg);

	if (rc < 0) {
		client_lost(c, LOAD_CAUSE_NONE, PQerrorMessage(c->pg));
		return;
	}
	(void)client_watch(c, rc == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

static void client_tx_start(struct load_client *c)
{
	const char *sql = c->env->next_sql(c->env, c->sql, sizeof(c->sql));

	client_set_state(c, LOAD_CLIENT_RUNNING);
	c->tx_cause = LOAD_CAUSE_NONE;
	c->tx_msg[0] = '\0';
	c->t0_ns = uv_hrtime();
	if (!PQsendQuery(c->pg, sql)) {
		client_lost(c, LOAD_CAUSE_NONE, PQerrorMessage(c->pg));
		return;
	}
	client_tx_flush(c);
}

/* Keeps the first error of the transaction (a multi-statement string may give several). */
static void client_tx_note_result(struct load_client *c, const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_FATAL_ERROR && st != PGRES_NONFATAL_ERROR && st != PGRES_BAD_RESPONSE)
		return;
	if (c->tx_cause != LOAD_CAUSE_NONE)
		return;
	c->tx_cause = load_report_classify(PQresultErrorField(r, PG_DIAG_SQLSTATE),
					   PQresultErrorMessage(r));
	load_report_short_message(PQresultErrorMessage(r), c->tx_msg, sizeof(c->tx_msg));
}

static void client_think_or_next(struct load_client *c)
{
	if (c->env->think_ms == 0) {
		client_tx_start(c);
		return;
	}
	client_set_state(c, LOAD_CLIENT_SLEEPING);
	uv_timer_start(&c->timer, client_on_timer, c->env->think_ms, 0);
	(void)client_watch(c, UV_READABLE);
}

/* PQgetResult() gave NULL: the transaction is over. */
static void client_tx_done(struct load_client *c)
{
	struct load_client_env *env = c->env;
	uint64_t us = (uv_hrtime() - c->t0_ns) / 1000;

	if (c->tx_cause != LOAD_CAUSE_NONE) {
		env->totals->tx_failed++;
		load_report_cause_add(&env->totals->tx_fail_by, c->tx_cause, c->tx_msg);
	} else {
		env->totals->tx_ok++;
		hist_record(&env->totals->tx_latency, us);
		hist_record(env->tick_latency, us);
	}
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		client_lost(c, c->tx_cause, c->tx_cause == LOAD_CAUSE_NONE ?
						    PQerrorMessage(c->pg) :
						    c->tx_msg);
		return;
	}
	client_think_or_next(c);
}

/* Takes every complete result; stops when libpq needs more input. */
static void client_tx_collect(struct load_client *c)
{
	while (!PQisBusy(c->pg)) {
		PGresult *r = PQgetResult(c->pg);

		if (r == NULL) {
			client_tx_done(c);
			return;
		}
		client_tx_note_result(c, r);
		PQclear(r);
	}
}

static void client_tx_io(struct load_client *c, int events)
{
	if (events & UV_WRITABLE) {
		client_tx_flush(c);
		if (client_terminal(c))
			return;
	}
	if (!(events & UV_READABLE))
		return;
	if (!PQconsumeInput(c->pg)) {
		client_lost(c, LOAD_CAUSE_NONE, PQerrorMessage(c->pg));
		return;
	}
	client_tx_collect(c);
}

/* ---- idle and sleeping: only a closing server has anything to say ---- */

static void client_idle_input(struct load_client *c)
{
	PGnotify *n;

	if (!PQconsumeInput(c->pg)) {
		client_lost(c, LOAD_CAUSE_NONE, PQerrorMessage(c->pg));
		return;
	}
	while ((n = PQnotifies(c->pg)) != NULL)
		PQfreemem(n);
}

/*
 * libpq hands errors that arrive outside a query (a FATAL before the
 * server closes an idle session) and NOTICEs to the notice receiver; the
 * default one prints them on stderr. Keep the FATAL for client_lost().
 */
static void client_on_notice(void *arg, const PGresult *res)
{
	struct load_client *c = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

	if (sev == NULL || strcmp(sev, "FATAL") != 0 || c->fatal_cause != LOAD_CAUSE_NONE)
		return;
	c->fatal_cause = load_report_classify(PQresultErrorField(res, PG_DIAG_SQLSTATE),
					      PQresultErrorMessage(res));
	load_report_short_message(PQresultErrorMessage(res), c->fatal_msg,
				  sizeof(c->fatal_msg));
}

/* ---- libuv callbacks ---- */

static void client_on_poll(uv_poll_t *h, int status, int events)
{
	struct load_client *c = container_of(h, struct load_client_poll, handle)->client;

	if (status < 0) {
		/*
		 * libuv reports POLLERR as UV_EBADF and stops the handle. That is
		 * a reset socket (a pooler that refused us closes at once): libpq
		 * still has to read the reason, e.g. the 53300 that came before
		 * the RST, so let it look. A socket that keeps erroring without
		 * libpq noticing fails with libuv's text.
		 */
		c->events = 0;
		if (++c->poll_errors > LOAD_CLIENT_MAX_POLL_ERRORS) {
			client_fail(c, LOAD_CAUSE_NONE, uv_strerror(status));
			return;
		}
		events = UV_READABLE | UV_WRITABLE;
	} else {
		c->poll_errors = 0;
	}
	switch (c->state) {
	case LOAD_CLIENT_CONNECTING:
		client_connect_step(c);
		return;
	case LOAD_CLIENT_RUNNING:
		client_tx_io(c, events);
		return;
	case LOAD_CLIENT_IDLE:
	case LOAD_CLIENT_SLEEPING:
		client_idle_input(c);
		return;
	case LOAD_CLIENT_DONE:
	case LOAD_CLIENT_FAILED:
	case LOAD_CLIENT_NSTATES:
		return;
	}
}

static void client_on_timer(uv_timer_t *t)
{
	struct load_client *c = container_of(t, struct load_client, timer);

	switch (c->state) {
	case LOAD_CLIENT_CONNECTING:
		client_connect_failed(c, LOAD_CAUSE_ETIMEDOUT,
				      "no connection within --connect-timeout");
		return;
	case LOAD_CLIENT_SLEEPING:
		client_tx_start(c);
		return;
	case LOAD_CLIENT_IDLE:
	case LOAD_CLIENT_RUNNING:
	case LOAD_CLIENT_DONE:
	case LOAD_CLIENT_FAILED:
	case LOAD_CLIENT_NSTATES:
		return;
	}
}
