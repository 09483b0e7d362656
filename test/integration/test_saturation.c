/*
 * test_saturation.c: a pool of 2 servers under 20 clients that each run
 * pg_sleep(0.1) transactions for 3 s, so clients queue for servers the
 * whole time. SHOW POOLS must show the queue while it exists, and SHOW
 * SATURATION and SHOW STATS must afterwards account for it: waiting high
 * mark, seconds saturated, a client-wait histogram whose percentiles match
 * what a queue of 18 behind 2 servers of 0.1 s each produces, and the
 * transaction counts and wait time, with averages over stats_period = 1.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#define POOL_SIZE 2
#define CLIENTS 20
#define RUN_MS 3000

struct load {
	char conninfo[512];
	pthread_barrier_t start;
	volatile int stop;
	pthread_mutex_t lock;
	int n_tx;               /* transactions completed */
	int failures;
	char first_error[256];
};

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void load_fail(struct load *l, const char *what, PGconn *c)
{
	pthread_mutex_lock(&l->lock);
	if (l->failures++ == 0)
		snprintf(l->first_error, sizeof(l->first_error), "%s: %s", what,
			 PQerrorMessage(c));
	pthread_mutex_unlock(&l->lock);
}

static void *client_main(void *arg)
{
	struct load *l = arg;
	PGconn *c = PQconnectdb(l->conninfo);
	bool connected = PQstatus(c) == CONNECTION_OK;

	if (!connected)
		load_fail(l, "connect", c);
	pthread_barrier_wait(&l->start);
	while (connected && !l->stop) {
		PGresult *r = PQexec(c, "SELECT pg_sleep(0.1)");

		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			PQclear(r);
			load_fail(l, "SELECT pg_sleep(0.1)", c);
			break;
		}
		PQclear(r);
		pthread_mutex_lock(&l->lock);
		l->n_tx++;
		pthread_mutex_unlock(&l->lock);
	}
	PQfinish(c);
	return NULL;
}

/* A value that must be numeric text ("1.234"); returns it as a double. */
static double numeric_value(const PGresult *r, int row, const char *col)
{
	const char *v = harness_value(r, row, col);
	char *end;
	double d = strtod(v, &end);

	if (end == v || *end != '\0' || !isfinite(d))
		fail_msg("%s = \"%s\" is not a number", col, v);
	return d;
}

static void test_saturation_pool_of_2_under_20_sleeping_clients(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = {
		.settings = "pool_mode = transaction\n"
			    "default_pool_size = 2\n"
			    "stats_period = 1\n",
	};
	struct harness_pooler p;
	struct load l = { 0 };
	pthread_t threads[CLIENTS];
	PGconn *admin;
	PGresult *r;
	long long t0, elapsed, p50, p99, pmax, wait_total;
	double saturated, util, avg_xact = -1, avg_wait = -1;
	int i, row, max_waiting = 0, max_active = 0, polls = 0;

	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	harness_pooler_start(&p, &cfg);
	admin = harness_connect_admin(&p);
	harness_conninfo(l.conninfo, sizeof(l.conninfo), p.port, fx->db,
			 fx->app_user, fx->app_password);
	pthread_mutex_init(&l.lock, NULL);
	pthread_barrier_init(&l.start, NULL, CLIENTS + 1);
	for (i = 0; i < CLIENTS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, client_main, &l), 0);
	pthread_barrier_wait(&l.start);
	t0 = harness_now_ms();

	/* Watch the queue while it exists. */
	while ((elapsed = harness_now_ms() - t0) < RUN_MS) {
		r = harness_query(admin, "SHOW POOLS");
		row = harness_find_row(r, "database", fx->db, "user", fx->app_user);
		if (row >= 0) {
			int w = (int)harness_value_ll(r, row, "cl_waiting");
			int a = (int)harness_value_ll(r, row, "sv_active");

			max_waiting = w > max_waiting ? w : max_waiting;
			max_active = a > max_active ? a : max_active;
		}
		PQclear(r);
		polls++;
		/* Past two stats periods the averages cover the load. */
		if (avg_xact < 0 && elapsed >= 2300) {
			r = harness_query(admin, "SHOW STATS");
			row = harness_find_row(r, "database", fx->db, NULL, NULL);
			assert_true(row >= 0);
			avg_xact = (double)harness_value_ll(r, row, "avg_xact_count");
			avg_wait = (double)harness_value_ll(r, row, "avg_wait_time");
			PQclear(r);
		}
		sleep_ms(50);
	}
	l.stop = 1;
	for (i = 0; i < CLIENTS; i++)
		pthread_join(threads[i], NULL);
	elapsed = harness_now_ms() - t0;
	print_message("%d clients, pool of %d: %d transactions in %lld ms; SHOW POOLS "
		      "(%d polls): max cl_waiting %d, max sv_active %d; mid-run "
		      "avg_xact_count %.0f/s avg_wait_time %.0f us\n", CLIENTS, POOL_SIZE,
		      l.n_tx, elapsed, polls, max_waiting, max_active, avg_xact, avg_wait);
	if (l.failures)
		fail_msg("%d clients failed; first: %s", l.failures, l.first_error);
	assert_true(l.n_tx >= 20);
	if (max_waiting <= 0)
		fail_msg("SHOW POOLS never showed cl_waiting > 0 with %d clients on %d servers",
			 CLIENTS, POOL_SIZE);
	assert_in_range(max_active, 1, POOL_SIZE);

	r = harness_query(admin, "SHOW SATURATION");
	row = harness_find_row(r, "database", fx->db, "user", fx->app_user);
	if (row < 0)
		fail_msg("SHOW SATURATION has no row for %s/%s", fx->db, fx->app_user);
	saturated = numeric_value(r, row, "saturated_s");
	util = numeric_value(r, row, "utilization_pct");
	p50 = harness_value_ll(r, row, "wait_p50_us");
	p99 = harness_value_ll(r, row, "wait_p99_us");
	pmax = harness_value_ll(r, row, "wait_max_us");
	print_message("SHOW SATURATION: cl_waiting_max %s saturated_s %s "
		      "utilization_pct %s wait p50 %lld p99 %lld max %lld us\n",
		      harness_value(r, row, "cl_waiting_max"),
		      harness_value(r, row, "saturated_s"),
		      harness_value(r, row, "utilization_pct"), p50, p99, pmax);
	assert_int_equal(harness_value_ll(r, row, "pool_size"), POOL_SIZE);
	assert_in_range(harness_value_ll(r, row, "cl_waiting_max"), 1, CLIENTS);
	assert_int_equal(harness_value_ll(r, row, "cl_waiting"), 0);
	assert_in_range(harness_value_ll(r, row, "sv_active"), 0, POOL_SIZE);
	/* Saturated nearly the whole run; never longer than it. */
	if (saturated < 1.0 || saturated > elapsed / 1000.0 + 1.0)
		fail_msg("saturated_s = %.3f for a %lld ms run saturated throughout",
			 saturated, elapsed);
	if (util < 0.0 || util > 100.0)
		fail_msg("utilization_pct = %.1f", util);
	/* 18 queued behind 2 servers of 0.1 s: waits near 0.9 s. */
	if (p99 < 100000 || p99 > 3000000)
		fail_msg("wait_p99_us = %lld, expected 100000..3000000", p99);
	if (!(p50 <= p99 && p99 <= pmax))
		fail_msg("wait percentiles out of order: p50 %lld p99 %lld max %lld",
			 p50, p99, pmax);
	if (pmax > elapsed * 1000)
		fail_msg("wait_max_us = %lld exceeds the %lld ms run", pmax, elapsed);
	assert_int_equal(harness_value_ll(r, row, "query_wait_timeouts"), 0);
	assert_int_equal(harness_value_ll(r, row, "rejected"), 0);
	PQclear(r);

	r = harness_query(admin, "SHOW STATS");
	row = harness_find_row(r, "database", fx->db, NULL, NULL);
	assert_true(row >= 0);
	if (harness_value_ll(r, row, "total_xact_count") < l.n_tx)
		fail_msg("total_xact_count %s < %d transactions run",
			 harness_value(r, row, "total_xact_count"), l.n_tx);
	assert_true(harness_value_ll(r, row, "total_query_count") >= l.n_tx);
	wait_total = harness_value_ll(r, row, "total_wait_time");
	if (wait_total <= 0 || wait_total > (long long)CLIENTS * elapsed * 1000)
		fail_msg("total_wait_time = %lld us for %d clients over %lld ms",
			 wait_total, CLIENTS, elapsed);
	PQclear(r);
	if (avg_xact <= 0)
		fail_msg("avg_xact_count was %.0f 2.3 s into the load with stats_period = 1",
			 avg_xact);
	if (avg_wait <= 0)
		fail_msg("avg_wait_time was %.0f 2.3 s into the load with stats_period = 1",
			 avg_wait);

	PQfinish(admin);
	pthread_barrier_destroy(&l.start);
	pthread_mutex_destroy(&l.lock);
	harness_pooler_stop(&p, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_saturation_pool_of_2_under_20_sleeping_clients,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_saturation", tests, NULL, NULL);
}
