/*
 * stats.h: the stats_period clock. Every period each pool's totals are
 * snapshotted; the difference is what SHOW STATS reports as averages and
 * what the periodic "stats:" log line says. Totals themselves are counted
 * where things happen (client.c, server.c, pool.c) and never reset.
 */
#ifndef PGMUX_STATS_H
#define PGMUX_STATS_H

#include <stdint.h>

#include "pool.h"

void stats_start(void);
void stats_stop(void);
/* Closes the current period now (tests, and SHOW after a reload). */
void stats_tick(void);

/* Per-second rates and per-event averages over the last full period. */
struct stats_avg {
	uint64_t server_assignment_count; /* per second */
	uint64_t xact_count;              /* per second */
	uint64_t query_count;             /* per second */
	uint64_t recv;                    /* bytes per second */
	uint64_t sent;                    /* bytes per second */
	uint64_t xact_time;               /* µs per transaction */
	uint64_t query_time;              /* µs per query */
	uint64_t wait_time;               /* µs of waiting per server assignment */
	uint64_t client_parse_count;      /* per second */
	uint64_t server_parse_count;      /* per second */
	uint64_t bind_count;              /* per second */
	uint64_t client_login_count;      /* per second */
};
/* Averages from a period delta of length length_us. */
void stats_average(const struct pool_stats *delta, uint64_t length_us, struct stats_avg *out);
/* PgBouncer's averaging window for a pool: totals since the tick before
 * last, and how long ago that was. */
void stats_window(const struct pool *p, struct pool_stats *delta, uint64_t *length_us);
/* Adds b to a field by field. */
void stats_add(struct pool_stats *a, const struct pool_stats *b);

#endif /* PGMUX_STATS_H */
