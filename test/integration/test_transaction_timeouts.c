/*
 * test_transaction_timeouts.c: transaction_timeout, and the [users] section
 * overriding the global client timeouts per user. The janitor runs once a
 * second, so a timeout of T fires between T and T + 1 s; bounds allow that
 * plus scheduling slack, never less than T.
 */
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
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

#define TICK_MS 1000
#define SLACK_MS 1000
#define EARLY_MS 100

static void start_pooler(struct harness_pooler *p, const char *settings, const char *databases)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { .settings = settings, .databases = databases };

	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	harness_pooler_start(p, &cfg);
}

static void assert_ms_between(const char *what, long long ms, long long lo, long long hi)
{
	print_message("%s after %lld ms (allowed %lld..%lld)\n", what, ms, lo, hi);
	if (ms < lo || ms > hi)
		fail_msg("%s after %lld ms, expected between %lld and %lld ms", what, ms, lo, hi);
}

/* First error pgmux sent outside any query (libpq hands it to the notice
 * receiver when no query is in flight). */
struct async_error {
	int n;
	char severity[16];
	char sqlstate[8];
	char message[256];
};

static void on_notice(void *arg, const PGresult *r)
{
	struct async_error *a = arg;
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	if (a->n++ > 0)
		return;
	snprintf(a->severity, sizeof(a->severity), "%s", sev ? sev : "");
	snprintf(a->sqlstate, sizeof(a->sqlstate), "%s", st ? st : "");
	snprintf(a->message, sizeof(a->message), "%s", msg ? msg : "");
}

/* The error a failed result carries (the FATAL that ended a query). */
static void result_error(const PGresult *r, struct async_error *a)
{
	const char *sev = r ? PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (a->n++ > 0)
		return; /* the FATAL came first, between statements */
	snprintf(a->severity, sizeof(a->severity), "%s", sev ? sev : "");
	snprintf(a->sqlstate, sizeof(a->sqlstate), "%s", r ? harness_sqlstate(r) : "");
	snprintf(a->message, sizeof(a->message), "%s", msg ? msg : "");
}

/*
 * A client keeps its transaction busy with short statements (never idle,
 * so idle_transaction_timeout could not catch it) until pgmux ends it;
 * returns how long after BEGIN that was, -1 if it survived timeout_ms.
 */
static long long busy_transaction(PGconn *c, struct async_error *ae, int timeout_ms)
{
	long long t0 = harness_now_ms();

	harness_exec(c, "BEGIN");
	harness_exec(c, "INSERT INTO it_tx_timeout VALUES ('tx-timeout-marker')");
	while (harness_now_ms() - t0 < timeout_ms) {
		PGresult *r;
		bool failed = false;

		/* Not PQexec: it keeps only the last result, and after a FATAL
		 * that is libpq's own "connection lost", without the SQLSTATE. */
		if (!PQsendQuery(c, "SELECT pg_sleep(0.2)")) {
			result_error(NULL, ae);
			return harness_now_ms() - t0;
		}
		while ((r = PQgetResult(c)) != NULL) {
			if (PQresultStatus(r) != PGRES_TUPLES_OK) {
				print_message("busy transaction: %s", PQresultErrorMessage(r));
				result_error(r, ae);
				failed = true;
			}
			PQclear(r);
		}
		if (failed)
			return harness_now_ms() - t0;
	}
	return -1;
}

static void test_transaction_timeouts_transaction_timeout_ends_a_busy_transaction_with_25P04(
	void **state)
{
	struct harness_pooler p;
	struct async_error ae = { 0 };
	PGconn *c, *steady, *super;
	long long ended;

	(void)state;
	super = harness_connect_pg_super(NULL);
	harness_exec(super, "DROP TABLE IF EXISTS it_tx_timeout");
	harness_exec(super, "CREATE TABLE it_tx_timeout (v text)");
	harness_exec(super, "GRANT ALL ON it_tx_timeout TO PUBLIC");
	start_pooler(&p, "transaction_timeout = 2\n", NULL);

	/* Autocommit statements over the same span are each their own
	 * transaction: never caught. */
	steady = harness_connect_pooler(&p, NULL, NULL, NULL);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	PQsetNoticeReceiver(c, on_notice, &ae);
	ended = busy_transaction(c, &ae, 2000 + TICK_MS + SLACK_MS + 2000);
	print_message("busy transaction ended: %s %s \"%s\"\n", ae.severity, ae.sqlstate,
		      ae.message);
	if (ended < 0)
		fail_msg("a transaction older than transaction_timeout = 2 s was not ended");
	assert_string_equal(ae.severity, "FATAL");
	assert_string_equal(ae.sqlstate, "25P04");
	assert_string_equal(ae.message, "transaction timeout");
	assert_ms_between("transaction_timeout", ended, 2000 - EARLY_MS,
			  2000 + TICK_MS + SLACK_MS);
	assert_int_equal(PQstatus(c), CONNECTION_BAD);
	PQfinish(c);
	for (int i = 0; i < 10; i++)
		assert_int_equal(harness_scalar_ll(steady, "SELECT 1 FROM pg_sleep(0.35)"), 1);
	assert_int_equal(PQstatus(steady), CONNECTION_OK);

	/* Its server was closed, so the insert rolled back. */
	assert_int_equal(harness_scalar_ll(super, "SELECT count(*) FROM it_tx_timeout"), 0);
	PQfinish(steady);
	harness_exec(super, "DROP TABLE it_tx_timeout");
	PQfinish(super);
	harness_pooler_stop(&p, 20);
}

static void test_transaction_timeouts_users_section_query_timeout_applies_to_that_user_only(
	void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	char databases[512];
	PGconn *app, *admin_user;
	PGresult *r;
	long long t0, ms;

	(void)state;
	/* The harness ends the ini with the [databases] body, so a [users]
	 * section can follow it. */
	harness_fmt(databases, sizeof(databases),
		    "%s = host=127.0.0.1 port=%d dbname=%s\n\n[users]\n%s = query_timeout=1\n",
		    fx->db, fx->port, fx->db, fx->app_user);
	start_pooler(&p, "query_timeout = 0\n", databases);
	app = harness_connect_pooler(&p, NULL, NULL, NULL);
	admin_user = harness_connect_pooler(&p, NULL, fx->admin_user, fx->admin_password);

	t0 = harness_now_ms();
	r = PQexec(app, "SELECT pg_sleep(10)");
	ms = harness_now_ms() - t0;
	if (strcmp(harness_sqlstate(r), "57014") != 0)
		fail_msg("app's pg_sleep(10) under its own query_timeout=1 ended with %s '%s'",
			 PQresStatus(PQresultStatus(r)), harness_sqlstate(r));
	PQclear(r);
	assert_ms_between("per-user query_timeout", ms, 1000 - EARLY_MS, 1000 + TICK_MS + SLACK_MS);
	assert_int_equal(harness_scalar_ll(app, "SELECT 1"), 1);

	/* Another user keeps the global setting: no limit. */
	t0 = harness_now_ms();
	harness_exec(admin_user, "SELECT pg_sleep(2.5)");
	assert_true(harness_now_ms() - t0 >= 2500);
	PQfinish(app);
	PQfinish(admin_user);
	harness_pooler_stop(&p, 20);
}

/*
 * In session mode an idle client stays linked to its server, so the idle
 * list never sees it: client_idle_timeout must still end it (and free the
 * server), while a client in an open transaction is left to the
 * transaction timeouts.
 */
static void test_transaction_timeouts_client_idle_timeout_ends_an_idle_session_mode_client(
	void **state)
{
	struct harness_pooler p;
	struct async_error ae = { 0 };
	PGconn *idle, *in_tx;
	long long t0;

	(void)state;
	start_pooler(&p, "pool_mode = session\nclient_idle_timeout = 1\n", NULL);
	idle = harness_connect_pooler(&p, NULL, NULL, NULL);
	in_tx = harness_connect_pooler(&p, NULL, NULL, NULL);
	PQsetNoticeReceiver(idle, on_notice, &ae);
	harness_exec(idle, "SELECT 1");
	harness_exec(in_tx, "BEGIN");
	t0 = harness_now_ms();
	while (PQstatus(idle) == CONNECTION_OK && harness_now_ms() - t0 < 1000 + TICK_MS + SLACK_MS) {
		struct pollfd pfd = { PQsocket(idle), POLLIN, 0 };

		if (poll(&pfd, 1, 100) > 0 && !PQconsumeInput(idle))
			break;
		(void)PQisBusy(idle);
	}
	print_message("idle session client: %s %s \"%s\" after %lld ms\n", ae.severity,
		      ae.sqlstate, ae.message, harness_now_ms() - t0);
	assert_string_equal(ae.sqlstate, "08P01");
	assert_string_equal(ae.message, "client_idle_timeout");
	/* The one inside a transaction is not idle in this sense. */
	assert_int_equal(PQstatus(in_tx), CONNECTION_OK);
	harness_exec(in_tx, "COMMIT");
	PQfinish(idle);
	PQfinish(in_tx);
	harness_pooler_stop(&p, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
			test_transaction_timeouts_transaction_timeout_ends_a_busy_transaction_with_25P04,
			harness_teardown),
		cmocka_unit_test_teardown(
			test_transaction_timeouts_users_section_query_timeout_applies_to_that_user_only,
			harness_teardown),
		cmocka_unit_test_teardown(
			test_transaction_timeouts_client_idle_timeout_ends_an_idle_session_mode_client,
			harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_transaction_timeouts", tests, NULL, NULL);
}
