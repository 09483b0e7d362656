/*
 * stats.c: the stats_period timer. Closes a period for every pool: the
 * delta since the last tick becomes the period SHOW STATS averages over,
 * utilization is recomputed from the busy-server integral, and (with
 * log_stats) one line per database says what happened.
 */
#include "stats.h"

#include <string.h>

#include <uv.h>

#include "log.h"
#include "pooler.h"
#include "util.h"

static uv_timer_t g_stats_timer;
static bool g_stats_running;

void stats_add(struct pool_stats *a, const struct pool_stats *b)
{
	a->xact_count += b->xact_count;
	a->query_count += b->query_count;
	a->bytes_received += b->bytes_received;
	a->bytes_sent += b->bytes_sent;
	a->xact_time_us += b->xact_time_us;
	a->query_time_us += b->query_time_us;
	a->wait_time_us += b->wait_time_us;
	a->server_assignments += b->server_assignments;
	a->client_logins += b->client_logins;
	a->client_parse_count += b->client_parse_count;
	a->server_parse_count += b->server_parse_count;
	a->bind_count += b->bind_count;
}

static void stats_sub(struct pool_stats *out, const struct pool_stats *a,
		      const struct pool_stats *b)
{
	out->xact_count = a->xact_count - b->xact_count;
	out->query_count = a->query_count - b->query_count;
	out->bytes_received = a->bytes_received - b->bytes_received;
	out->bytes_sent = a->bytes_sent - b->bytes_sent;
	out->xact_time_us = a->xact_time_us - b->xact_time_us;
	out->query_time_us = a->query_time_us - b->query_time_us;
	out->wait_time_us = a->wait_time_us - b->wait_time_us;
	out->server_assignments = a->server_assignments - b->server_assignments;
	out->client_logins = a->client_logins - b->client_logins;
	out->client_parse_count = a->client_parse_count - b->client_parse_count;
	out->server_parse_count = a->server_parse_count - b->server_parse_count;
	out->bind_count = a->bind_count - b->bind_count;
}

static uint64_t per_second(uint64_t n, uint64_t length_us)
{
	return length_us ? n * 1000000u / length_us : 0;
}

void stats_average(const struct pool_stats *d, uint64_t length_us, struct stats_avg *out)
{
	memset(out, 0, sizeof(*out));
	if (length_us == 0)
		return;
	out->server_assignment_count = per_second(d->server_assignments, length_us);
	out->xact_count = per_second(d->xact_count, length_us);
	out->query_count = per_second(d->query_count, length_us);
	out->recv = per_second(d->bytes_received, length_us);
	out->sent = per_second(d->bytes_sent, length_us);
	out->xact_time = d->xact_count ? d->xact_time_us / d->xact_count : 0;
	out->query_time = d->query_count ? d->query_time_us / d->query_count : 0;
	/* PgBouncer >= 1.23: average wait per server assignment. */
	out->wait_time = d->server_assignments ? d->wait_time_us / d->server_assignments : 0;
	out->client_parse_count = per_second(d->client_parse_count, length_us);
	out->server_parse_count = per_second(d->server_parse_count, length_us);
	out->bind_count = per_second(d->bind_count, length_us);
	out->client_login_count = per_second(d->client_logins, length_us);
}

void stats_window(const struct pool *p, struct pool_stats *delta, uint64_t *length_us)
{
	uint64_t now = util_now_us();

	stats_sub(delta, &p->stats, &p->period.older);
	*length_us = now > p->period.older_us ? now - p->period.older_us : 0;
}

static void stats_close_period(struct pool *p, uint64_t now)
{
	struct pool_period *pp = &p->period;
	uint64_t length = now - pp->start_us;
	uint64_t busy;

	pool_account(p);
	busy = p->sat.busy_server_us - pp->start_busy_us;
	pp->length_us = length;
	pp->utilization_pct = length && p->pool_size > 0 ?
				      100.0 * (double)busy / ((double)length * p->pool_size) :
				      0.0;
	pp->older = pp->old;
	pp->older_us = pp->old_us;
	pp->old = p->stats;
	pp->old_us = now;
	pp->start_busy_us = p->sat.busy_server_us;
	pp->start_us = now;
}

static void stats_log(const struct pool *p, const struct pool_stats *delta)
{
	struct stats_avg a;

	if (!g_pooler.cfg->log_stats)
		return;
	stats_average(delta, p->period.length_us, &a);
	log_info("stats: %s@%s: %llu xacts/s, %llu queries/s, in %llu B/s, out %llu B/s, "
		 "xact %llu us, query %llu us, wait %llu us/s, utilization %.0f%%",
		 p->user_name, p->db_name, (unsigned long long)a.xact_count,
		 (unsigned long long)a.query_count, (unsigned long long)a.recv,
		 (unsigned long long)a.sent, (unsigned long long)a.xact_time,
		 (unsigned long long)a.query_time, (unsigned long long)a.wait_time,
		 p->period.utilization_pct);
}

void stats_tick(void)
{
	uint64_t now = util_now_us();
	struct pool *p;
	struct pool *tmp;

	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		struct pool_stats delta;

		stats_sub(&delta, &p->stats, &p->period.old);
		stats_close_period(p, now);
		if (delta.xact_count || delta.client_logins)
			stats_log(p, &delta);
	}
}

static void stats_on_timer(uv_timer_t *t)
{
	(void)t;
	stats_tick();
}

void stats_start(void)
{
	uint64_t period = g_pooler.cfg->stats_period > 0 ? (uint64_t)g_pooler.cfg->stats_period : 60;

	uv_timer_init(g_pooler.loop, &g_stats_timer);
	uv_timer_start(&g_stats_timer, stats_on_timer, period * 1000, period * 1000);
	uv_unref((uv_handle_t *)&g_stats_timer);
	g_stats_running = true;
}

void stats_stop(void)
{
	if (!g_stats_running)
		return;
	g_stats_running = false;
	uv_close((uv_handle_t *)&g_stats_timer, NULL);
}
