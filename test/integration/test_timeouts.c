/*
 * test_timeouts.c: the janitor's timeouts against real PostgreSQL, each set
 * to a second or two and watched from outside: client_login_timeout (a
 * Slowloris of 1,000 half-sent startup packets that delays no honest login,
 * and a client stalled in SCRAM), query_wait_timeout, query_timeout,
 * idle_transaction_timeout, client_idle_timeout, server_idle_timeout,
 * server_lifetime and server_connect_timeout (a listener that never answers).
 * The janitor runs once a second, so a timeout of T fires between T and
 * T + 1 s; the tests accept that window plus scheduling slack, never less
 * than T.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

/* The janitor's period, and what scheduling may add on top of it. */
#define TICK_MS 1000
#define SLACK_MS 500
/* How much earlier than its timeout an event may be seen (clock rounding). */
#define EARLY_MS 100

#define LORIS 1000
#define LORIS_WAVES 10
/*
 * The figure is 100 ms. Under AddressSanitizer pgmux and this test
 * run several times slower, so the sanitizer build allows 2.5 times that;
 * the plain build holds the real figure.
 */
#if defined(__SANITIZE_ADDRESS__)
#define HONEST_LOGIN_MS 250
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HONEST_LOGIN_MS 250
#endif
#endif
#ifndef HONEST_LOGIN_MS
#define HONEST_LOGIN_MS 100
#endif

/* Milliseconds from now until deadline (absolute), 0 if past. */
static int left_ms(long long deadline)
{
	long long left = deadline - harness_now_ms();

	return left > 0 ? (int)left : 0;
}

/* The shared cluster has no leftover backends of ours; then pgmux starts. */
static void start_pooler(struct harness_pooler *p, const char *settings,
			 const char *databases)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { .settings = settings, .databases = databases };

	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	harness_pooler_start(p, &cfg);
}

/* Fails unless lo <= ms <= hi; what names the event. */
static void assert_ms_between(const char *what, long long ms, long long lo, long long hi)
{
	print_message("%s after %lld ms (allowed %lld..%lld)\n", what, ms, lo, hi);
	if (ms < lo || ms > hi)
		fail_msg("%s after %lld ms, expected between %lld and %lld ms", what, ms,
			 lo, hi);
}

/* ---- libpq: results and errors that arrive on their own -------------------- */

/*
 * An ErrorResponse that reaches an idle libpq connection goes to its notice
 * receiver (libpq has no query to attach it to); this records it.
 */
struct async_error {
	int n;
	long long at_ms;
	struct harness_wire_error e;
};

static void on_notice(void *arg, const PGresult *r)
{
	struct async_error *a = arg;
	const char *sev = harness_severity(r);
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	if (a->n++ > 0)
		return;
	a->at_ms = harness_now_ms();
	snprintf(a->e.severity, sizeof(a->e.severity), "%s", sev);
	snprintf(a->e.sqlstate, sizeof(a->e.sqlstate), "%s", st ? st : "");
	snprintf(a->e.message, sizeof(a->e.message), "%s", msg ? msg : "");
}

/*
 * Waits up to timeout_ms for the pooler to close the idle connection c;
 * returns the time it did (-1 if it did not). Whatever it said first is in
 * *a (c's notice receiver must be on_notice with a).
 */
static long long wait_closed(PGconn *c, int timeout_ms)
{
	long long deadline = harness_now_ms() + timeout_ms;

	for (;;) {
		struct pollfd pfd = { PQsocket(c), POLLIN, 0 };
		long long left = deadline - harness_now_ms();

		if (pfd.fd < 0 || PQstatus(c) == CONNECTION_BAD)
			return harness_now_ms();
		if (left <= 0)
			return -1;
		if (poll(&pfd, 1, (int)(left > 100 ? 100 : left)) <= 0)
			continue;
		if (PQconsumeInput(c) == 0)
			return harness_now_ms();
		/* PQconsumeInput only reads; this parses (an error goes to on_notice). */
		(void)PQisBusy(c);
	}
}

/* ---- client_login_timeout ------------------------------------------------- */

struct loris {
	int fd;
	bool sent;            /* the half startup packet is out */
	long long sent_ms;
	long long eof_ms;     /* -1 until EOF */
	bool reset;           /* read error instead of EOF */
	size_t got;
	unsigned char buf[256];
};

/*
 * Opens n non-blocking connections and sends each the first half of a
 * startup packet; returns once all have (fails after 20 s).
 */
static void loris_open(struct loris *l, int n, int port)
{
	const struct harness_fixture *fx = harness_fixture();
	struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
	int *idx = calloc((size_t)n, sizeof(*idx));
	long long deadline = harness_now_ms() + 20000;
	unsigned char pkt[256];
	size_t half = harness_raw_startup_packet(pkt, sizeof(pkt), fx->db, fx->app_user);
	int i, pending = n;

	assert_non_null(pfd);
	assert_non_null(idx);
	assert_true(half > 0);
	half /= 2;
	for (i = 0; i < n; i++) {
		memset(&l[i], 0, sizeof(l[i]));
		l[i].fd = harness_raw_connect(port, true);
		if (l[i].fd < 0)
			fail_msg("Slowloris socket %d: connect to port %d: %s", i, port,
				 strerror(errno));
		l[i].eof_ms = -1;
	}
	while (pending > 0) {
		int m = 0, k;

		if (harness_now_ms() > deadline)
			fail_msg("%d of %d Slowloris sockets not connected after 20 s",
				 pending, n);
		for (i = 0; i < n; i++) {
			if (l[i].sent)
				continue;
			pfd[m].fd = l[i].fd;
			pfd[m].events = POLLOUT;
			pfd[m].revents = 0;
			idx[m++] = i;
		}
		if (poll(pfd, (nfds_t)m, 100) < 0 && errno != EINTR)
			fail_msg("poll: %s", strerror(errno));
		for (k = 0; k < m; k++) {
			int err = 0;
			socklen_t el = sizeof(err);
			ssize_t w;

			if (pfd[k].revents == 0)
				continue;
			i = idx[k];
			getsockopt(l[i].fd, SOL_SOCKET, SO_ERROR, &err, &el);
			if (err != 0)
				fail_msg("Slowloris socket %d: connect: %s", i, strerror(err));
			w = write(l[i].fd, pkt, half);
			if (w != (ssize_t)half)
				fail_msg("Slowloris socket %d: write of %zu bytes returned %zd (%s)",
					 i, half, w, w < 0 ? strerror(errno) : "short");
			l[i].sent = true;
			l[i].sent_ms = harness_now_ms();
			pending--;
		}
	}
	free(pfd);
	free(idx);
}

/*
 * Reads every socket until EOF or until deadline_ms (absolute); returns how
 * many saw neither EOF nor a reset.
 */
static int loris_drain(struct loris *l, int n, long long deadline_ms)
{
	struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
	int *idx = calloc((size_t)n, sizeof(*idx));
	int i, open = n;

	assert_non_null(pfd);
	assert_non_null(idx);
	while (open > 0 && harness_now_ms() < deadline_ms) {
		int m = 0, k;

		for (i = 0; i < n; i++) {
			if (l[i].eof_ms >= 0 || l[i].reset)
				continue;
			pfd[m].fd = l[i].fd;
			pfd[m].events = POLLIN;
			pfd[m].revents = 0;
			idx[m++] = i;
		}
		if (poll(pfd, (nfds_t)m, 50) < 0 && errno != EINTR)
			fail_msg("poll: %s", strerror(errno));
		for (k = 0; k < m; k++) {
			if (pfd[k].revents == 0)
				continue;
			i = idx[k];
			for (;;) {
				unsigned char scratch[256];
				bool room = l[i].got < sizeof(l[i].buf);
				ssize_t r = read(l[i].fd, room ? l[i].buf + l[i].got : scratch,
						 room ? sizeof(l[i].buf) - l[i].got :
							sizeof(scratch));

				if (r > 0) {
					if (room)
						l[i].got += (size_t)r;
					continue;
				}
				if (r == 0) {
					l[i].eof_ms = harness_now_ms();
					open--;
				} else if (errno != EAGAIN && errno != EINTR) {
					l[i].reset = true;
					open--;
				}
				break;
			}
		}
	}
	free(pfd);
	free(idx);
	return open;
}

/* libpq login + SELECT 1 through the pooler; returns how long both took. */
static long long honest_login_ms(const struct harness_pooler *p)
{
	long long t0 = harness_now_ms();
	PGconn *c = harness_connect_pooler(p, NULL, NULL, NULL);
	long long v = harness_scalar_ll(c, "SELECT 1");
	long long ms = harness_now_ms() - t0;

	assert_int_equal(v, 1);
	PQfinish(c);
	return ms;
}

static long long fd_usage(PGconn *admin, const char *col)
{
	PGresult *r = harness_query(admin, "SHOW FD_USAGE");
	long long v = harness_value_ll(r, 0, col);

	PQclear(r);
	return v;
}

static void test_timeouts_client_login_timeout_slowloris_1000_half_startups(void **state)
{
	const long long timeout_ms = 2000;
	struct harness_pooler p;
	struct loris *l = calloc(LORIS, sizeof(*l));
	struct rlimit rl;
	PGconn *admin;
	long long t_all, baseline, honest, last_sent = 0, open_before, servers_before;
	long long clients = -1, first_eof = -1, last_eof = -1, t0;
	long long min_age = -1, max_age = -1;
	int i, still_open, early = 0, bad_reply = 0, reset = 0;
	char why[320] = "";

	assert_non_null(l);
	/* 1,000 sockets here and 1,000 clients there: both need the room. */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < LORIS + 200)
		fail_msg("RLIMIT_NOFILE hard limit %ld is too low for %d sockets",
			 (long)rl.rlim_max, LORIS);
	rl.rlim_cur = rl.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	start_pooler(&p,
		     "client_login_timeout = 2\n"
		     "max_client_conn = 1100\n"
		     "listen_backlog = 1024\n",
		     NULL);
	admin = harness_connect_admin(&p);
	baseline = honest_login_ms(&p);
	print_message("honest login + SELECT 1 before the Slowloris: %lld ms\n", baseline);
	open_before = fd_usage(admin, "open");
	servers_before = fd_usage(admin, "servers");

	/*
	 * In waves over a second, so the sockets meet the janitor's 1 s tick at
	 * every phase: one that timed out early would be seen early.
	 */
	t0 = harness_now_ms();
	for (i = 0; i < LORIS_WAVES; i++) {
		loris_open(l + i * (LORIS / LORIS_WAVES), LORIS / LORIS_WAVES, p.port);
		harness_sleep_ms(left_ms(t0 + (i + 1) * (TICK_MS / LORIS_WAVES)));
	}
	t_all = harness_now_ms();
	for (i = 0; i < LORIS; i++)
		if (l[i].sent_ms > last_sent)
			last_sent = l[i].sent_ms;
	print_message("%d sockets sent half a startup packet in %d waves over %lld ms\n",
		      LORIS, LORIS_WAVES, t_all - t0);
	assert_int_equal(fd_usage(admin, "clients"), LORIS);

	/* While they hang, an honest client gets in and gets an answer at once. */
	honest = honest_login_ms(&p);
	print_message("honest login + SELECT 1 under %d half-open logins: %lld ms\n",
		      LORIS, honest);
	if (honest > HONEST_LOGIN_MS)
		fail_msg("with %d Slowloris sockets an honest login + SELECT 1 took "
			 "%lld ms (limit %d ms; %lld ms without them)",
			 LORIS, honest, HONEST_LOGIN_MS, baseline);
	if (harness_now_ms() - t0 >= timeout_ms)
		fail_msg("the Slowloris setup took %lld ms, past client_login_timeout: "
			 "the test did not measure what it should", harness_now_ms() - t0);

	/* Then every one is told why and closed, none before its time. */
	still_open = loris_drain(l, LORIS, last_sent + timeout_ms + 2000);
	for (i = 0; i < LORIS; i++) {
		struct harness_wire_error e;
		char types[16];
		int at;

		if (l[i].reset) {
			reset++;
			continue;
		}
		if (l[i].eof_ms < 0)
			continue;
		if (first_eof < 0 || l[i].eof_ms < first_eof)
			first_eof = l[i].eof_ms;
		if (l[i].eof_ms > last_eof)
			last_eof = l[i].eof_ms;
		if (min_age < 0 || l[i].eof_ms - l[i].sent_ms < min_age)
			min_age = l[i].eof_ms - l[i].sent_ms;
		if (l[i].eof_ms - l[i].sent_ms > max_age)
			max_age = l[i].eof_ms - l[i].sent_ms;
		if (l[i].eof_ms - l[i].sent_ms < timeout_ms - EARLY_MS && early++ == 0)
			harness_fmt(why, sizeof(why), "socket %d closed %lld ms after it connected",
				    i, l[i].eof_ms - l[i].sent_ms);
		at = harness_raw_split(l[i].buf, l[i].got, &e, types, sizeof(types), NULL);
		if (at != 0 || strcmp(e.severity, "FATAL") != 0 ||
		    strcmp(e.sqlstate, "08P01") != 0 ||
		    strcmp(e.message, "client_login_timeout") != 0) {
			if (bad_reply++ == 0)
				harness_fmt(why, sizeof(why),
					    "socket %d got %zu bytes (messages \"%s\"), error "
					    "%s %s \"%s\"", i, l[i].got, types, e.severity,
					    e.sqlstate, e.message);
		}
	}
	print_message("Slowloris sockets closed between %lld and %lld ms after the last "
		      "connected, each %lld..%lld ms after its own; %d still open, %d reset, "
		      "%d early, %d without the FATAL\n",
		      first_eof < 0 ? -1 : first_eof - last_sent,
		      last_eof < 0 ? -1 : last_eof - last_sent, min_age, max_age, still_open,
		      reset, early, bad_reply);
	if (still_open > 0)
		fail_msg("%d of %d Slowloris sockets still open %lld ms after they connected "
			 "(client_login_timeout = %lld ms)", still_open, LORIS,
			 timeout_ms + 2000, timeout_ms);
	if (reset > 0)
		fail_msg("%d Slowloris sockets were reset instead of closed after the FATAL",
			 reset);
	if (early > 0)
		fail_msg("%d Slowloris sockets closed before client_login_timeout: %s", early,
			 why);
	if (bad_reply > 0)
		fail_msg("%d Slowloris sockets did not get exactly FATAL 08P01 "
			 "client_login_timeout before EOF: %s", bad_reply, why);
	for (i = 0; i < LORIS; i++)
		close(l[i].fd);

	/* Nothing of them is left in pgmux's descriptor accounting. */
	t0 = harness_now_ms();
	while ((clients = fd_usage(admin, "clients")) != 0 && harness_now_ms() - t0 < 2000)
		harness_sleep_ms(20);
	if (clients != 0)
		fail_msg("SHOW FD_USAGE clients = %lld after every Slowloris socket closed",
			 clients);
	assert_int_equal(fd_usage(admin, "unaccounted"), 0);
	assert_int_equal(fd_usage(admin, "open") - fd_usage(admin, "servers"),
			 open_before - servers_before);
	/* And pgmux still serves. */
	print_message("honest login + SELECT 1 afterwards: %lld ms\n", honest_login_ms(&p));

	free(l);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/* A client that sends its startup packet but never answers the SCRAM request. */
static void test_timeouts_client_login_timeout_closes_a_client_stalled_in_auth(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	unsigned char pkt[256], buf[1024];
	struct harness_wire_error e;
	char types[16];
	long long t0, eof_ms;
	bool reset;
	size_t got, len;
	int fd, at;

	start_pooler(&p, "client_login_timeout = 1\n", NULL);
	len = harness_raw_startup_packet(pkt, sizeof(pkt), fx->db, fx->app_user);
	assert_true(len > 0);
	fd = harness_raw_connect(p.port, false);
	if (fd < 0)
		fail_msg("connect to port %d: %s", p.port, strerror(errno));
	t0 = harness_now_ms();
	if (!harness_raw_write_all(fd, pkt, len))
		fail_msg("write to the pooler: %s", strerror(errno));
	got = harness_raw_read_to_eof(fd, buf, sizeof(buf), 1000 + TICK_MS + 3000, &eof_ms,
				      &reset);
	close(fd);
	at = harness_raw_split(buf, got, &e, types, sizeof(types), NULL);
	print_message("stalled in auth: messages \"%s\", error %s %s \"%s\"\n", types,
		      e.severity, e.sqlstate, e.message);
	if (reset || eof_ms < 0)
		fail_msg("a client stalled in auth was %s (messages \"%s\")",
			 reset ? "reset instead of closed" : "not closed within 5 s", types);
	/* First the SCRAM request (AuthenticationSASL), then the FATAL. */
	assert_true(got > 9 && buf[0] == 'R' && harness_get32(buf + 5) == 10);
	assert_int_equal(at, 1);
	assert_string_equal(e.severity, "FATAL");
	assert_string_equal(e.sqlstate, "08P01");
	assert_string_equal(e.message, "client_login_timeout");
	assert_ms_between("stalled-in-auth client closed", eof_ms - t0, 1000 - EARLY_MS,
			  1000 + TICK_MS + SLACK_MS);
	harness_pooler_stop(&p, 20);
}

/* ---- query_wait_timeout ----------------------------------------------------- */

static void test_timeouts_query_wait_timeout_drops_a_client_that_waited_for_a_server(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	PGconn *a, *b, *admin;
	PGresult *r;
	const char *msg;
	long long t0, ms;
	int row;

	start_pooler(&p,
		     "default_pool_size = 1\n"
		     "query_wait_timeout = 2\n",
		     NULL);
	admin = harness_connect_admin(&p);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	b = harness_connect_pooler(&p, NULL, NULL, NULL);
	/* A holds the only server in a transaction. */
	harness_exec(a, "BEGIN");
	assert_int_equal(harness_scalar_ll(a, "SELECT 1"), 1);

	t0 = harness_now_ms();
	assert_int_equal(PQsendQuery(b, "SELECT 2"), 1);
	if (!harness_result_within(b, 2000 + TICK_MS + 3000))
		fail_msg("a client waiting for a server got nothing within 6 s "
			 "(query_wait_timeout = 2)");
	ms = harness_now_ms() - t0;
	r = PQgetResult(b);
	msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	print_message("waiting client got %s %s \"%s\"\n",
		      r ? PQresStatus(PQresultStatus(r)) : "no result", harness_sqlstate(r),
		      msg ? msg : PQerrorMessage(b));
	if (r == NULL || PQresultStatus(r) != PGRES_FATAL_ERROR ||
	    strcmp(harness_sqlstate(r), "08P01") != 0 || msg == NULL ||
	    strcmp(msg, "query_wait_timeout") != 0)
		fail_msg("expected FATAL 08P01 query_wait_timeout, got %s '%s': %s",
			 r ? PQresStatus(PQresultStatus(r)) : "no result", harness_sqlstate(r),
			 PQerrorMessage(b));
	assert_string_equal(harness_severity(r), "FATAL");
	PQclear(r);
	assert_ms_between("query_wait_timeout", ms, 2000 - EARLY_MS,
			  2000 + TICK_MS + SLACK_MS);
	/* ... and B is disconnected. */
	if (wait_closed(b, 2000) < 0)
		fail_msg("the client was not disconnected after query_wait_timeout");
	PQfinish(b);

	r = harness_query(admin, "SHOW SATURATION");
	row = harness_find_row(r, "database", fx->db, "user", fx->app_user);
	assert_true(row >= 0);
	assert_int_equal(harness_value_ll(r, row, "query_wait_timeouts"), 1);
	PQclear(r);

	/* A's transaction was not touched. */
	assert_int_equal(harness_scalar_ll(a, "SELECT 3"), 3);
	harness_exec(a, "COMMIT");
	PQfinish(a);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/* ---- query_timeout ----------------------------------------------------------- */

static void test_timeouts_query_timeout_cancels_pg_sleep_with_57014_and_connection_lives(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	PGconn *c, *super;
	PGresult *r;
	long long t0, ms, running;
	char sql[256];

	start_pooler(&p, "query_timeout = 1\n", NULL);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	t0 = harness_now_ms();
	r = PQexec(c, "SELECT pg_sleep(10) /* it-query-timeout */");
	ms = harness_now_ms() - t0;
	print_message("pg_sleep(10) ended with %s %s: %s",
		      PQresStatus(PQresultStatus(r)), harness_sqlstate(r), PQerrorMessage(c));
	if (PQresultStatus(r) != PGRES_FATAL_ERROR || strcmp(harness_sqlstate(r), "57014") != 0)
		fail_msg("expected SQLSTATE 57014 from query_timeout, got %s '%s': %s",
			 PQresStatus(PQresultStatus(r)), harness_sqlstate(r), PQerrorMessage(c));
	/* A cancel, not the pooler dropping the client. */
	assert_string_equal(harness_severity(r), "ERROR");
	PQclear(r);
	assert_ms_between("query_timeout cancel", ms, 1000 - EARLY_MS, 2500);

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	assert_int_equal(harness_scalar_ll(c, "SELECT 1"), 1);

	/* PostgreSQL really stopped the statement. */
	super = harness_connect_pg_super(NULL);
	harness_fmt(sql, sizeof(sql),
		    "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND "
		    "state = 'active' AND query LIKE 'SELECT pg_sleep(10) /* it-query%%'",
		    fx->db);
	running = harness_scalar_ll(super, sql);
	assert_int_equal(running, 0);
	PQfinish(super);
	PQfinish(c);
	harness_pooler_stop(&p, 20);
}

/* ---- idle_transaction_timeout ------------------------------------------------ */

static void test_timeouts_idle_transaction_timeout_disconnects_and_rolls_back(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct async_error ae = { 0 };
	PGconn *c, *super, *next;
	long long t_last, closed;
	char sql[256];
	int pid;

	super = harness_connect_pg_super(NULL);
	harness_exec(super, "DROP TABLE IF EXISTS it_idle_tx");
	harness_exec(super, "CREATE TABLE it_idle_tx (v text)");
	harness_exec(super, "GRANT ALL ON it_idle_tx TO PUBLIC");
	start_pooler(&p, "idle_transaction_timeout = 1\n", NULL);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	PQsetNoticeReceiver(c, on_notice, &ae);
	harness_exec(c, "BEGIN");
	harness_exec(c, "INSERT INTO it_idle_tx VALUES ('idle-tx-marker')");
	t_last = harness_now_ms();
	pid = (int)harness_scalar_ll(c, "SELECT pg_backend_pid()");
	{
		char *st = harness_backend_activity(super, pid, "state");

		assert_non_null(st);
		assert_string_equal(st, "idle in transaction");
		free(st);
	}

	/* It sleeps in its transaction; pgmux ends it. */
	closed = wait_closed(c, 1000 + TICK_MS + 3000);
	print_message("idle-in-transaction client: %d errors, first %s %s \"%s\"\n", ae.n,
		      ae.e.severity, ae.e.sqlstate, ae.e.message);
	if (closed < 0)
		fail_msg("a client idle in a transaction was not disconnected within 5 s "
			 "(idle_transaction_timeout = 1)");
	if (ae.n == 0)
		fail_msg("the client was disconnected without an ErrorResponse: %s",
			 PQerrorMessage(c));
	assert_string_equal(ae.e.severity, "FATAL");
	assert_string_equal(ae.e.sqlstate, "25P03");
	assert_string_equal(ae.e.message, "idle transaction timeout");
	assert_ms_between("idle_transaction_timeout", ae.at_ms - t_last, 1000 - EARLY_MS,
			  1000 + TICK_MS + SLACK_MS);
	PQfinish(c);

	/* Its backend is gone, so its transaction rolled back; none is left open. */
	harness_wait_backend_gone(super, pid, 3000, NULL);
	harness_fmt(sql, sizeof(sql),
		    "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND "
		    "state LIKE 'idle in transaction%%'", fx->db);
	assert_int_equal(harness_scalar_ll(super, sql), 0);
	assert_int_equal(harness_scalar_ll(super,
		"SELECT count(*) FROM it_idle_tx WHERE v = 'idle-tx-marker'"), 0);

	/* The pool serves the next client on a clean server. */
	next = harness_connect_pooler(&p, NULL, NULL, NULL);
	assert_int_equal(harness_scalar_ll(next, "SELECT count(*) FROM it_idle_tx"), 0);
	PQfinish(next);
	harness_exec(super, "DROP TABLE it_idle_tx");
	PQfinish(super);
	harness_pooler_stop(&p, 20);
}

/* ---- client_idle_timeout ----------------------------------------------------- */

/*
 * Four idle clients whose last query is 250 ms apart, so they meet the
 * janitor's tick at different phases, and one active client querying every
 * 50 ms all along.
 */
static void test_timeouts_client_idle_timeout_drops_the_idle_client_not_the_active_one(void **state)
{
	enum { N = 4, STEP_MS = 250 };
	struct harness_pooler p;
	struct async_error ae[N], ae_active = { 0 };
	PGconn *idle[N], *active;
	long long t_idle[N], closed[N], t0;
	int i, started = 0, n_closed = 0, queries = 0;

	start_pooler(&p, "client_idle_timeout = 1\n", NULL);
	memset(ae, 0, sizeof(ae));
	active = harness_connect_pooler(&p, NULL, NULL, NULL);
	PQsetNoticeReceiver(active, on_notice, &ae_active);
	for (i = 0; i < N; i++) {
		idle[i] = harness_connect_pooler(&p, NULL, NULL, NULL);
		PQsetNoticeReceiver(idle[i], on_notice, &ae[i]);
		closed[i] = -1;
	}

	t0 = harness_now_ms();
	while (n_closed < N && harness_now_ms() - t0 < (N - 1) * STEP_MS + 1000 +
							 TICK_MS + 2000) {
		long long next = harness_now_ms() + 50;

		if (started < N && harness_now_ms() - t0 >= started * STEP_MS) {
			t_idle[started] = harness_now_ms();
			assert_int_equal(harness_scalar_ll(idle[started], "SELECT 1"), 1);
			started++;
		}
		assert_int_equal(harness_scalar_ll(active, "SELECT 2"), 2);
		queries++;
		while (harness_now_ms() < next) {
			struct pollfd pfd[N];
			int m = 0, k;

			for (i = 0; i < started; i++) {
				if (closed[i] >= 0)
					continue;
				if (PQsocket(idle[i]) < 0 || PQstatus(idle[i]) == CONNECTION_BAD) {
					closed[i] = harness_now_ms();
					n_closed++;
					continue;
				}
				pfd[m].fd = PQsocket(idle[i]);
				pfd[m].events = POLLIN;
				pfd[m++].revents = 0;
			}
			if (poll(pfd, (nfds_t)m, left_ms(next)) <= 0)
				continue;
			for (i = 0, k = 0; i < started; i++) {
				if (closed[i] >= 0 || pfd[k++].revents == 0)
					continue;
				if (PQconsumeInput(idle[i]) == 0) {
					closed[i] = harness_now_ms();
					n_closed++;
				} else {
					(void)PQisBusy(idle[i]); /* parses: errors go to on_notice */
				}
			}
		}
	}
	print_message("active client ran %d queries meanwhile\n", queries);
	for (i = 0; i < N; i++) {
		print_message("idle client %d: %d errors, first %s %s \"%s\"\n", i, ae[i].n,
			      ae[i].e.severity, ae[i].e.sqlstate, ae[i].e.message);
		if (closed[i] < 0)
			fail_msg("idle client %d was not disconnected within %d ms "
				 "(client_idle_timeout = 1)", i, 1000 + TICK_MS + 2000);
		if (ae[i].n == 0)
			fail_msg("idle client %d was disconnected without an ErrorResponse: %s",
				 i, PQerrorMessage(idle[i]));
		assert_string_equal(ae[i].e.severity, "FATAL");
		assert_string_equal(ae[i].e.sqlstate, "08P01");
		assert_string_equal(ae[i].e.message, "client_idle_timeout");
		assert_ms_between("client_idle_timeout", ae[i].at_ms - t_idle[i],
				  1000 - EARLY_MS, 1000 + TICK_MS + SLACK_MS);
		PQfinish(idle[i]);
	}

	assert_int_equal(ae_active.n, 0);
	assert_int_equal(PQstatus(active), CONNECTION_OK);
	assert_int_equal(harness_scalar_ll(active, "SELECT 3"), 3);
	PQfinish(active);
	harness_pooler_stop(&p, 20);
}

/* ---- server_idle_timeout and server_lifetime ------------------------------- */

/* Polls SHOW SERVERS until it has no row; returns when (-1: not in timeout_ms). */
static long long wait_no_servers(PGconn *admin, int timeout_ms)
{
	long long deadline = harness_now_ms() + timeout_ms;

	while (harness_show_servers(admin, NULL) > 0) {
		if (harness_now_ms() > deadline)
			return -1;
		harness_sleep_ms(20);
	}
	return harness_now_ms();
}

static void test_timeouts_server_idle_timeout_closes_the_idle_server(void **state)
{
	struct harness_pooler p;
	PGconn *c, *admin, *super;
	long long t_used, gone;
	int pid, pid2;

	start_pooler(&p, "server_idle_timeout = 1\n", NULL);
	admin = harness_connect_admin(&p);
	super = harness_connect_pg_super(NULL);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	pid = (int)harness_scalar_ll(c, "SELECT pg_backend_pid()");
	t_used = harness_now_ms();
	assert_int_equal(harness_show_servers(admin, NULL), 1);

	gone = wait_no_servers(admin, 1000 + TICK_MS + 3000);
	if (gone < 0)
		fail_msg("the idle server is still in SHOW SERVERS 5 s after its last use "
			 "(server_idle_timeout = 1)");
	assert_ms_between("server_idle_timeout", gone - t_used, 1000 - EARLY_MS,
			  1000 + TICK_MS + SLACK_MS);
	harness_wait_backend_gone(super, pid, 2000, NULL);

	/* The client stayed; its next query gets a new server. */
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	pid2 = (int)harness_scalar_ll(c, "SELECT pg_backend_pid()");
	assert_true(pid2 > 0);
	assert_int_not_equal(pid2, pid);
	PQfinish(c);
	PQfinish(super);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

static void test_timeouts_server_lifetime_retires_a_busy_server_and_an_idle_one(void **state)
{
	struct harness_pooler p;
	PGconn *c, *admin, *super;
	long long t0, t_changed = -1, t_launch2 = 0, gone;
	int pid, pid2 = 0, pid3;

	/* No idle timeout: only the lifetime can close these servers. */
	start_pooler(&p,
		     "server_lifetime = 2\n"
		     "server_idle_timeout = 0\n",
		     NULL);
	admin = harness_connect_admin(&p);
	super = harness_connect_pg_super(NULL);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);

	/* A server used every 200 ms is still retired once it is 2 s old. */
	t0 = harness_now_ms();
	pid = (int)harness_scalar_ll(c, "SELECT pg_backend_pid()");
	while (harness_now_ms() - t0 < 2000 + TICK_MS + 2000) {
		long long before = harness_now_ms();
		int now_pid = (int)harness_scalar_ll(c, "SELECT pg_backend_pid()");

		if (now_pid != pid) {
			pid2 = now_pid;
			t_changed = harness_now_ms();
			t_launch2 = before;
			break;
		}
		harness_sleep_ms(200);
	}
	if (t_changed < 0)
		fail_msg("a 2 s server_lifetime did not replace a server in use every 200 ms "
			 "within 5 s");
	assert_ms_between("server_lifetime (server in use)", t_changed - t0,
			  2000 - EARLY_MS, 2000 + TICK_MS + SLACK_MS + 200);
	harness_wait_backend_gone(super, pid, 2000, NULL);

	/* Left idle, the new server goes at its own lifetime (SHOW SERVERS empties). */
	gone = wait_no_servers(admin, 2000 + TICK_MS + 3000);
	if (gone < 0)
		fail_msg("an idle server older than server_lifetime is still in SHOW SERVERS");
	assert_ms_between("server_lifetime (idle server)", gone - t_launch2,
			  2000 - EARLY_MS, 2000 + TICK_MS + SLACK_MS + 200);
	harness_wait_backend_gone(super, pid2, 2000, NULL);

	/* The next query works, on a new server. */
	pid3 = (int)harness_scalar_ll(c, "SELECT pg_backend_pid()");
	assert_true(pid3 > 0);
	assert_int_not_equal(pid3, pid2);
	PQfinish(c);
	PQfinish(super);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/* ---- server_connect_timeout -------------------------------------------------- */

/* A listener that completes TCP handshakes (the kernel does) and says nothing. */
static int silent_listener(int *port)
{
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

struct blackhole_login {
	int port;
	char db[64], user[64], password[64];
	long long ms;
	struct harness_login login;
	struct harness_wire_error query_error;  /* if the login itself succeeded */
	int query_at;
	char query_types[16];
};

/*
 * Logs in to the database behind the silent listener and, should the login
 * succeed, sends a query; records what came back and how long it all took.
 */
static void *blackhole_main(void *arg)
{
	struct blackhole_login *b = arg;
	long long t0 = harness_now_ms();
	int fd = harness_raw_login_keep(b->port, b->db, b->user, b->password, 6000,
					&b->login);

	b->query_at = -1;
	if (fd >= 0) {
		static const char sql[] = "SELECT 1";
		unsigned char buf[1024];
		long long eof_ms;
		bool reset;
		size_t got;

		if (harness_raw_send_msg(fd, 'Q', sql, sizeof(sql))) {
			got = harness_raw_read_to_eof(fd, buf, sizeof(buf), 6000, &eof_ms,
						      &reset);
			b->query_at = harness_raw_split(buf, got, &b->query_error, b->query_types,
							sizeof(b->query_types), NULL);
		}
		close(fd);
	}
	b->ms = harness_now_ms() - t0;
	return NULL;
}

static void test_timeouts_server_connect_timeout_fails_the_client_and_others_are_served(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct blackhole_login b;
	char databases[512];
	PGconn *admin, *c;
	pthread_t t;
	long long t0, other_ms;
	const char *sqlstate, *message;
	int lfd, lport, accepted = 0, closed = 0;

	lfd = silent_listener(&lport);
	harness_fmt(databases, sizeof(databases),
		    "%s = host=%s port=%d dbname=%s\n"
		    "blackhole = host=127.0.0.1 port=%d dbname=%s\n",
		    fx->db, fx->host, fx->port, fx->db, lport, fx->db);
	start_pooler(&p, "server_connect_timeout = 1\n", databases);
	admin = harness_connect_admin(&p);

	memset(&b, 0, sizeof(b));
	b.port = p.port;
	harness_fmt(b.db, sizeof(b.db), "blackhole");
	harness_fmt(b.user, sizeof(b.user), "%s", fx->app_user);
	harness_fmt(b.password, sizeof(b.password), "%s", fx->app_password);
	assert_int_equal(pthread_create(&t, NULL, blackhole_main, &b), 0);

	/* While that client waits, another database is served at once. */
	harness_sleep_ms(300);
	t0 = harness_now_ms();
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	assert_int_equal(harness_scalar_ll(c, "SELECT 1"), 1);
	other_ms = harness_now_ms() - t0;
	print_message("%s login + SELECT 1 while blackhole's server hangs: %lld ms\n",
		      fx->db, other_ms);
	assert_true(other_ms < 500);
	pthread_join(t, NULL);

	if (b.login.ok) {
		sqlstate = b.query_error.sqlstate;
		message = b.query_error.message;
	} else {
		sqlstate = b.login.sqlstate;
		message = b.login.message;
	}
	print_message("blackhole client: login %s, then sqlstate %s \"%s\" after %lld ms\n",
		      b.login.ok ? "ok" : "refused", sqlstate, message, b.ms);
	if (b.login.ok && b.query_at < 0)
		fail_msg("logged in to the silent server's database, and the query got no "
			 "error (messages \"%s\") within 6 s", b.query_types);
	if (strcmp(sqlstate, "08006") != 0 || strstr(message, "server_connect_timeout") == NULL)
		fail_msg("expected 08006 naming server_connect_timeout, got '%s' \"%s\"",
			 sqlstate, message);
	assert_ms_between("server_connect_timeout", b.ms, 1000 - EARLY_MS, 2500);

	/* pgmux closed its half-open server connection: no row, and EOF at the listener. */
	assert_int_equal(harness_show_servers(admin, "blackhole"), 0);
	for (;;) {
		unsigned char buf[512];
		long long eof_ms;
		bool reset;
		int s = accept(lfd, NULL, NULL);

		if (s < 0)
			break;
		accepted++;
		harness_raw_read_to_eof(s, buf, sizeof(buf), 2000, &eof_ms, &reset);
		if (eof_ms >= 0 || reset)
			closed++;
		close(s);
	}
	print_message("the silent listener had %d connections from pgmux, %d closed\n",
		      accepted, closed);
	assert_true(accepted >= 1);
	assert_int_equal(closed, accepted);
	close(lfd);

	/* The other database is still served. */
	assert_int_equal(harness_scalar_ll(c, "SELECT 2"), 2);
	PQfinish(c);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_timeouts_client_login_timeout_slowloris_1000_half_startups,
					  harness_teardown),
		cmocka_unit_test_teardown(test_timeouts_client_login_timeout_closes_a_client_stalled_in_auth,
					  harness_teardown),
		cmocka_unit_test_teardown(test_timeouts_query_wait_timeout_drops_a_client_that_waited_for_a_server,
					  harness_teardown),
		cmocka_unit_test_teardown(test_timeouts_query_timeout_cancels_pg_sleep_with_57014_and_connection_lives,
					  harness_teardown),
		cmocka_unit_test_teardown(test_timeouts_idle_transaction_timeout_disconnects_and_rolls_back,
					  harness_teardown),
		cmocka_unit_test_teardown(test_timeouts_client_idle_timeout_drops_the_idle_client_not_the_active_one,
					  harness_teardown),
		cmocka_unit_test_teardown(test_timeouts_server_idle_timeout_closes_the_idle_server,
					  harness_teardown),
		cmocka_unit_test_teardown(test_timeouts_server_lifetime_retires_a_busy_server_and_an_idle_one,
					  harness_teardown),
		cmocka_unit_test_teardown(test_timeouts_server_connect_timeout_fails_the_client_and_others_are_served,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_timeouts", tests, NULL, NULL);
}
