/*
 * janitor.c: the timeouts. One uv_timer a second walks the login list and
 * every pool's lists; each check is a subtraction against uv_now(), the
 * loop's cached clock, so a pass over 10,000 clients costs microseconds and
 * no system call. A timeout of 0 disables its check, as in PgBouncer.
 */
#include "janitor.h"

#include <uv.h>

#include "authq.h"
#include "cancel.h"
#include "client.h"
#include "log.h"
#include "pool.h"
#include "pooler.h"
#include "proto.h"
#include "server.h"

#define JANITOR_PERIOD_MS 1000
/* How long a cancelled query may take to stop before its client goes. */
#define JANITOR_CANCEL_GRACE_MS 1000

static uv_timer_t g_janitor;
static bool g_janitor_running;

static uint64_t ms(double seconds)
{
	return seconds > 0 ? (uint64_t)(seconds * 1000.0) : 0;
}

static bool expired(uint64_t now, uint64_t since, uint64_t limit)
{
	return limit > 0 && since > 0 && now >= since && now - since >= limit;
}

static void janitor_login_clients(uint64_t now)
{
	uint64_t limit = ms(g_pooler.cfg->client_login_timeout);
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(&g_pooler.login_clients, it, tmp)
	{
		struct client *c = container_of(it, struct client, node);

		if (expired(now, c->accepted_ms, limit))
			client_fatal(c, "08P01", "client_login_timeout");
	}
}

static void janitor_waiting(struct pool *p, uint64_t now)
{
	uint64_t limit = ms(g_pooler.cfg->query_wait_timeout);
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(&p->waiting_clients, it, tmp)
	{
		struct client *c = container_of(it, struct client, node);

		if (!expired(now, c->wait_start_us / 1000, limit))
			continue;
		p->sat.query_wait_timeouts++;
		client_fatal(c, "08P01", "query_wait_timeout");
	}
}

/*
 * A client is idle from whichever came last: its last bytes, or the last
 * answer it got (a long query's result arrives well after the client
 * spoke, and the wait for it is not the client idling).
 */
static uint64_t janitor_idle_since(const struct client *c)
{
	uint64_t answered = c->request_time_us / 1000;

	return answered > c->active_ms ? answered : c->active_ms;
}

static void janitor_idle_clients(struct pool *p, uint64_t now)
{
	uint64_t limit = p->client_idle_timeout_ms;
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(&p->idle_clients, it, tmp)
	{
		struct client *c = container_of(it, struct client, node);

		if (expired(now, janitor_idle_since(c), limit))
			client_fatal(c, "08P01", "client_idle_timeout");
	}
}

/* Whether c is inside a transaction, or has a request or pipeline open. */
static bool janitor_in_transaction(const struct client *c)
{
	return c->tx_status != PROTO_TX_IDLE || c->outstanding > 0 || c->unsynced;
}

/* A transaction is timed from when it had both begun and got its server:
 * time spent waiting for one is query_wait_timeout's to judge. */
static uint64_t janitor_tx_since(const struct client *c)
{
	uint64_t begin = c->tx_begin_us > c->xact_start_us ? c->tx_begin_us : c->xact_start_us;

	return begin / 1000;
}

/*
 * client_idle_timeout for a client that is linked yet idle: a session-mode
 * client between transactions keeps its server, and a client silent in
 * the middle of a message holds one that waits for the rest (it owes no
 * answer and may be in no transaction, so nothing else would end it).
 */
static bool janitor_linked_idle(const struct pool *p, const struct client *c, uint64_t now)
{
	if (c->conn.ps.body_left > 0)
		return expired(now, c->active_ms, p->client_idle_timeout_ms);
	return !janitor_in_transaction(c) &&
	       expired(now, janitor_idle_since(c), p->client_idle_timeout_ms);
}

/*
 * query_timeout: the query is cancelled; if it has not stopped a second
 * later, the client goes. Returns whether c was closed.
 */
static bool janitor_query_timeout(struct pool *p, struct client *c, uint64_t now)
{
	if (c->outstanding == 0 ||
	    !expired(now, c->request_time_us / 1000, p->query_timeout_ms))
		return false;
	if (c->cancel_sent_ms == 0) {
		client_log_event(c, "query_timeout: cancelling the running query");
		c->cancel_sent_ms = now;
		if (c->server)
			cancel_send(c->server, NULL);
		return false;
	}
	if (!expired(now, c->cancel_sent_ms, JANITOR_CANCEL_GRACE_MS))
		return false;
	client_fatal(c, "57014", "query_timeout");
	return true;
}

/*
 * A linked client that sits in an open transaction sending nothing
 * (idle_transaction_timeout), or whose transaction has lasted too long in
 * all (transaction_timeout), goes, and its server with it, since the
 * transaction is left open: closing the server rolls it back. The
 * SQLSTATEs are PostgreSQL's own for the same limits.
 */
static void janitor_active_clients(struct pool *p, uint64_t now)
{
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(&p->active_clients, it, tmp)
	{
		struct client *c = container_of(it, struct client, node);

		if (janitor_linked_idle(p, c, now)) {
			client_fatal(c, "08P01", "client_idle_timeout");
			continue;
		}
		if (c->outstanding == 0 && c->tx_status != PROTO_TX_IDLE &&
		    expired(now, janitor_idle_since(c), p->idle_transaction_timeout_ms)) {
			client_fatal(c, "25P03", "idle transaction timeout");
			continue;
		}
		if (janitor_in_transaction(c) &&
		    expired(now, janitor_tx_since(c), p->transaction_timeout_ms)) {
			client_fatal(c, "25P04", "transaction timeout");
			continue;
		}
		(void)janitor_query_timeout(p, c, now);
	}
}

static void janitor_servers(struct pool *p, uint64_t now)
{
	const struct cfg *cfg = g_pooler.cfg;
	uint64_t connect = ms(cfg->server_connect_timeout);
	uint64_t idle = ms(cfg->server_idle_timeout);
	uint64_t lifetime = ms(cfg->server_lifetime);
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(&p->login_servers, it, tmp)
	{
		struct server *s = container_of(it, struct server, node);

		if (!expired(now, s->launched_ms, connect))
			continue;
		pool_login_failed(p, "08006", "server_connect_timeout");
		server_close(s, "server_connect_timeout");
	}
	list_foreach_safe(&p->idle_servers, it, tmp)
	{
		struct server *s = container_of(it, struct server, node);

		if (expired(now, s->last_used_us / 1000, idle))
			server_close(s, "server_idle_timeout");
		else if (expired(now, s->launched_ms, lifetime))
			server_close(s, "server_lifetime");
	}
}

void janitor_run(void)
{
	uint64_t now = uv_now(g_pooler.loop);
	struct pool *p;
	struct pool *tmp;

	if (g_pooler.run_state == POOLER_SHUTDOWN_NOW)
		return;
	janitor_login_clients(now);
	cancel_expire(now);
	authq_janitor(now);
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		janitor_waiting(p, now);
		janitor_idle_clients(p, now);
		janitor_active_clients(p, now);
		janitor_servers(p, now);
		pool_maintain(p, now);
	}
}

static void janitor_on_timer(uv_timer_t *t)
{
	(void)t;
	janitor_run();
}

void janitor_start(void)
{
	uv_timer_init(g_pooler.loop, &g_janitor);
	uv_timer_start(&g_janitor, janitor_on_timer, JANITOR_PERIOD_MS, JANITOR_PERIOD_MS);
	uv_unref((uv_handle_t *)&g_janitor);
	g_janitor_running = true;
}

void janitor_stop(void)
{
	if (!g_janitor_running)
		return;
	g_janitor_running = false;
	uv_close((uv_handle_t *)&g_janitor, NULL);
}
