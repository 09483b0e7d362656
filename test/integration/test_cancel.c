/*
 * test_cancel.c: CancelRequest through the pooler (transaction pooling)
 * against real PostgreSQL. A client's cancel key, the BackendKeyData the
 * pooler gave it, cancels the query running on the server the client is
 * linked to: 57014 within a second, inside or outside a transaction block,
 * and that server stays in the pool. A key naming an idle or a waiting
 * client cancels nobody else's query, nor does a cancel still on its way
 * to PostgreSQL when its query ends by itself (a relay in front of
 * PostgreSQL holds cancels back to make that window wide). A wrong key (or
 * 200 of them) cancels nothing, has its socket closed and leaves no
 * descriptor and no server connection behind. A cancel PostgreSQL does not
 * take within cancel_wait_timeout is given up: the requester's socket
 * closes and the query runs on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

/* The bound: a cancelled pg_sleep(10) answers 57014 within 1 s. */
#define CANCEL_MS 1000
#define CANCEL_REQUEST_CODE 80877102u
#define WRONG_KEYS 200
/* How long the relay holds a CancelRequest before passing it on. */
#define RELAY_CANCEL_DELAY_MS 500
/* ... when cancel_wait_timeout (1 s, checked once a second) must give up. */
#define RELAY_CANCEL_STUCK_MS 3000

/* The shared cluster has no leftover backends of ours; then the pooler starts. */
static void start_pooler(struct harness_pooler *p, const char *settings)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { .settings = settings };

	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	harness_pooler_start(p, &cfg);
}

/* ---- libpq ---------------------------------------------------------------- */

/*
 * The first result of the command in flight on c, or NULL if none came
 * within ms. The rest (up to ReadyForQuery) is read and dropped, so c is
 * ready for the next command.
 */
static PGresult *first_result(PGconn *c, int ms)
{
	PGresult *r, *more;

	if (!harness_result_within(c, ms))
		return NULL;
	r = PQgetResult(c);
	while ((more = PQgetResult(c)) != NULL)
		PQclear(more);
	return r;
}

/* Fails unless r is an ERROR (not FATAL: the session lives) with sqlstate. */
static void assert_error(PGresult *r, const char *sqlstate, const char *what)
{
	if (r == NULL)
		fail_msg("%s: no result", what);
	if (PQresultStatus(r) != PGRES_FATAL_ERROR || strcmp(harness_sqlstate(r), sqlstate) != 0 ||
	    strcmp(harness_severity(r), "ERROR") != 0)
		fail_msg("%s: expected ERROR %s, got %s %s '%s': %s", what, sqlstate,
			 PQresStatus(PQresultStatus(r)), harness_severity(r),
			 harness_sqlstate(r), PQresultErrorMessage(r));
}

/* Fails unless r is rows (the query ran to its end). */
static void assert_rows(PGresult *r, const char *what)
{
	if (r == NULL)
		fail_msg("%s: no result", what);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: expected rows, got %s '%s': %s", what,
			 PQresStatus(PQresultStatus(r)), harness_sqlstate(r),
			 PQresultErrorMessage(r));
}

/*
 * What libpq does on Ctrl-C: a CancelRequest with c's key, on a new socket,
 * then a wait until the pooler closes it. Returns how long that took.
 */
static long long send_cancel(PGconn *c)
{
	PGcancel *cn = PQgetCancel(c);
	long long t0 = harness_now_ms();
	char err[256];

	assert_non_null(cn);
	if (!PQcancel(cn, err, sizeof(err)))
		fail_msg("PQcancel: %s", err);
	PQfreeCancel(cn);
	return harness_now_ms() - t0;
}

/* A cancel with nothing to act on is answered by closing its socket at once. */
static void assert_cancel_returned(long long ms, const char *what)
{
	print_message("PQcancel for %s returned after %lld ms\n", what, ms);
	if (ms > CANCEL_MS)
		fail_msg("PQcancel for %s took %lld ms: the pooler kept its socket open", what,
			 ms);
}

/* One server, the same as before, and PostgreSQL agrees. */
static void assert_one_server(PGconn *admin, PGconn *super, const char *when)
{
	const struct harness_fixture *fx = harness_fixture();
	int listed = harness_show_servers(admin, fx->db);
	int in_pg = harness_count_server_conns(super, fx->db, fx->app_user);

	print_message("%s: SHOW SERVERS %d, pg_stat_activity %d\n", when, listed, in_pg);
	if (listed != 1 || in_pg != 1)
		fail_msg("%s: expected the one server connection, SHOW SERVERS lists %d and "
			 "pg_stat_activity %d", when, listed, in_pg);
}

/* SHOW POOLS cl_waiting of the fixture's pool. */
static long long pool_waiting(PGconn *admin)
{
	const struct harness_fixture *fx = harness_fixture();
	PGresult *r = harness_query(admin, "SHOW POOLS");
	int row = harness_find_row(r, "database", fx->db, "user", fx->app_user);
	long long n = row >= 0 ? harness_value_ll(r, row, "cl_waiting") : 0;

	PQclear(r);
	return n;
}

/* ---- descriptors ------------------------------------------------------------ */

/* pgmux's own account: no cancel connection and nothing unaccounted left. */
static void assert_no_cancel_fds(PGconn *admin)
{
	PGresult *r;
	int i, cancel = 0, unaccounted = 0;

	if (harness_is_pgbouncer())
		return; /* PgBouncer's SHOW FDS is its online-restart view */
	r = harness_query(admin, "SHOW FDS");
	for (i = 0; i < PQntuples(r); i++) {
		const char *kind = harness_value(r, i, "kind");

		cancel += strcmp(kind, "cancel") == 0;
		unaccounted += strcmp(kind, "unaccounted") == 0;
	}
	PQclear(r);
	if (cancel != 0 || unaccounted != 0)
		fail_msg("SHOW FDS lists %d cancel and %d unaccounted descriptors", cancel,
			 unaccounted);
}

/* ---- raw CancelRequest -------------------------------------------------------- */

static uint32_t random32(void)
{
	uint32_t v;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		fail_msg("getrandom: %s", strerror(errno));
	return v;
}

/* Connects to the pooler and sends a CancelRequest (pid, key); returns the socket. */
static int raw_cancel_send(int port, uint32_t pid, uint32_t key)
{
	unsigned char pkt[16];
	int fd = harness_raw_connect(port, false);

	if (fd < 0)
		fail_msg("connect to port %d: %s", port, strerror(errno));
	harness_put32(pkt, sizeof(pkt));
	harness_put32(pkt + 4, CANCEL_REQUEST_CODE);
	harness_put32(pkt + 8, pid);
	harness_put32(pkt + 12, key);
	if (!harness_raw_write_all(fd, pkt, sizeof(pkt)))
		fail_msg("write CancelRequest: %s", strerror(errno));
	return fd;
}

/*
 * Reads fd until the pooler closes it: returns the bytes it sent first (up
 * to 256; PostgreSQL sends none), or -1 if the socket was still open after
 * timeout_ms.
 */
static long raw_wait_eof(int fd, int timeout_ms)
{
	unsigned char buf[256];
	long long eof_ms;
	bool reset;
	size_t got = harness_raw_read_to_eof(fd, buf, sizeof(buf), timeout_ms, &eof_ms,
					     &reset);

	/* EOF, or a reset: closed either way. */
	return eof_ms < 0 && !reset ? -1 : (long)got;
}

/* A key that is not c's: pgmux's pid for c with a random secret when
 * same_pid (the likelier guess), else both random. */
static void wrong_key(PGconn *c, bool same_pid, uint32_t *pid, uint32_t *key)
{
	uint32_t real_pid = (uint32_t)PQbackendPID(c);

	*key = random32();
	*pid = same_pid ? real_pid : random32() & 0x7fffffff;
	if (!same_pid && *pid == real_pid)
		*pid ^= 1;
}

/* ---- a relay in front of PostgreSQL that holds CancelRequests back ---------- */

/*
 * The pooler's servers connect to PostgreSQL through this relay, and so do
 * its cancel connections (a cancel goes to the server's own address). The
 * relay passes bytes through at once, except that a connection opening
 * with a CancelRequest is held for hold_ms first: that opens,
 * deterministically, the window between the pooler sending a cancel and
 * PostgreSQL acting on it, which on a real network is a few milliseconds.
 * A cancel whose sender has hung up meanwhile is dropped, as one lost on
 * the way would be. Its threads never assert; they stop when either side
 * closes.
 */
struct relay {
	int listen_fd;
	int port;
	int pg_port;
	int hold_ms;              /* delay for CancelRequests */
	atomic_int stop;
	atomic_int cancels_seen;  /* CancelRequests received from the pooler */
	atomic_int cancels_passed;
	atomic_int cancels_dropped; /* the pooler closed while it was held */
	pthread_t thread;
};

struct relay_pair {
	struct relay *relay;
	int down;  /* from the pooler */
};

/* Copies bytes both ways until either side closes. */
static void relay_pump(int a, int b)
{
	char buf[16384];

	for (;;) {
		struct pollfd pfd[2] = { { a, POLLIN, 0 }, { b, POLLIN, 0 } };
		int i;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		for (i = 0; i < 2; i++) {
			ssize_t n;

			if (pfd[i].revents == 0)
				continue;
			n = read(pfd[i].fd, buf, sizeof(buf));
			if (n <= 0 || !harness_raw_write_all(pfd[1 - i].fd, buf, (size_t)n))
				return;
		}
	}
}

/* Whether the peer has closed fd (EOF is readable), without consuming data. */
static bool relay_peer_closed(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/*
 * One connection. Its first 8 bytes (length and code) say whether it is a
 * CancelRequest; that one is read whole (16 bytes) before it is held, so
 * that only EOF can be left to read if the pooler hangs up meanwhile.
 */
static void *relay_conn_main(void *arg)
{
	struct relay_pair *rp = arg;
	struct relay *r = rp->relay;
	unsigned char head[16];
	size_t len = 8;
	bool cancel;
	int up = -1;

	if (!harness_raw_read_exact(rp->down, head, 8, -1))
		goto out;
	cancel = harness_get32(head + 4) == CANCEL_REQUEST_CODE;
	if (cancel) {
		len = 16;
		if (!harness_raw_read_exact(rp->down, head + 8, 8, -1))
			goto out;
		atomic_fetch_add(&r->cancels_seen, 1);
		harness_sleep_ms(r->hold_ms);
		if (relay_peer_closed(rp->down)) {
			atomic_fetch_add(&r->cancels_dropped, 1);
			goto out;
		}
	}
	up = harness_raw_connect(r->pg_port, false);
	if (up < 0 || !harness_raw_write_all(up, head, len))
		goto out;
	if (cancel)
		atomic_fetch_add(&r->cancels_passed, 1);
	relay_pump(rp->down, up);
out:
	if (up >= 0)
		close(up);
	close(rp->down);
	free(rp);
	return NULL;
}

static void *relay_accept_main(void *arg)
{
	struct relay *r = arg;

	while (!atomic_load(&r->stop)) {
		struct pollfd pfd = { r->listen_fd, POLLIN, 0 };
		struct relay_pair *rp;
		pthread_t t;
		int fd;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		fd = accept(r->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		rp = malloc(sizeof(*rp));
		if (rp == NULL) {
			close(fd);
			continue;
		}
		rp->relay = r;
		rp->down = fd;
		if (pthread_create(&t, NULL, relay_conn_main, rp) != 0) {
			close(fd);
			free(rp);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

static void relay_start(struct relay *r, int pg_port, int hold_ms)
{
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);

	memset(r, 0, sizeof(*r));
	r->pg_port = pg_port;
	r->hold_ms = hold_ms;
	r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(r->listen_fd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(r->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(r->listen_fd, 64), 0);
	assert_int_equal(getsockname(r->listen_fd, (struct sockaddr *)&sa, &sl), 0);
	r->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&r->thread, NULL, relay_accept_main, r), 0);
}

/* Stops accepting; connection threads end when the pooler closes its side. */
static void relay_stop(struct relay *r)
{
	atomic_store(&r->stop, 1);
	pthread_join(r->thread, NULL);
	close(r->listen_fd);
}

struct cancel_thread {
	PGconn *c;
	pthread_t thread;
	bool ok;
	char err[256];
};

static void *cancel_thread_main(void *arg)
{
	struct cancel_thread *ct = arg;
	PGcancel *cn = PQgetCancel(ct->c);

	ct->ok = cn != NULL && PQcancel(cn, ct->err, sizeof(ct->err));
	PQfreeCancel(cn);
	return NULL;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_cancel_pg_sleep_gets_57014_within_1s_and_its_server_is_reused(void **state)
{
	struct harness_pooler p;
	PGconn *c, *admin, *super;
	PGresult *r;
	long long t0, ms;
	int pid, running;

	start_pooler(&p, NULL);
	admin = harness_connect_admin(&p);
	super = harness_connect_pg_super(NULL);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	pid = (int)harness_scalar_ll(c, "SELECT pg_backend_pid()");

	assert_int_equal(PQsendQuery(c, "SELECT pg_sleep(10) /* it_cancel_plain */"), 1);
	running = harness_wait_running(super, "it_cancel_plain", 5000);
	/* One client on an idle pool: the sleep runs on the server it had. */
	assert_int_equal(running, pid);
	t0 = harness_now_ms();
	send_cancel(c);
	r = first_result(c, 5000);
	ms = harness_now_ms() - t0;
	print_message("cancelled pg_sleep(10): %s '%s' %lld ms after PQcancel began\n",
		      r ? PQresStatus(PQresultStatus(r)) : "no result", harness_sqlstate(r), ms);
	assert_error(r, "57014", "cancelled pg_sleep(10)");
	PQclear(r);
	if (ms > CANCEL_MS)
		fail_msg("57014 came %lld ms after PQcancel, more than %d ms", ms, CANCEL_MS);

	/* The session goes on, on the same server: the cancel did not close it. */
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	assert_int_equal(harness_scalar_ll(c, "SELECT 1"), 1);
	assert_int_equal(harness_scalar_ll(c, "SELECT pg_backend_pid()"), pid);
	assert_one_server(admin, super, "after the cancel");
	PQfinish(c);
	PQfinish(super);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

static void test_cancel_in_a_transaction_block_aborts_it_until_rollback(void **state)
{
	struct harness_pooler p;
	PGconn *c, *admin, *super;
	PGresult *r;
	long long t0, ms;
	int pid;

	start_pooler(&p, NULL);
	admin = harness_connect_admin(&p);
	super = harness_connect_pg_super(NULL);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(c, "BEGIN");
	pid = (int)harness_scalar_ll(c, "SELECT pg_backend_pid()");

	assert_int_equal(PQsendQuery(c, "SELECT pg_sleep(10) /* it_cancel_in_tx */"), 1);
	assert_int_equal(harness_wait_running(super, "it_cancel_in_tx", 5000), pid);
	t0 = harness_now_ms();
	send_cancel(c);
	r = first_result(c, 5000);
	ms = harness_now_ms() - t0;
	print_message("cancelled pg_sleep(10) in a transaction: %s '%s' %lld ms after "
		      "PQcancel began\n", r ? PQresStatus(PQresultStatus(r)) : "no result",
		      harness_sqlstate(r), ms);
	assert_error(r, "57014", "cancelled pg_sleep(10) in a transaction block");
	PQclear(r);
	if (ms > CANCEL_MS)
		fail_msg("57014 came %lld ms after PQcancel, more than %d ms", ms, CANCEL_MS);

	/* PostgreSQL's rules from here: aborted until ROLLBACK, on the same server. */
	assert_int_equal(PQtransactionStatus(c), PQTRANS_INERROR);
	harness_exec_sqlstate(c, "SELECT 1", "25P02");
	harness_exec_sqlstate(c, "SELECT 2", "25P02");
	harness_exec(c, "ROLLBACK");
	assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
	assert_int_equal(harness_scalar_ll(c, "SELECT pg_backend_pid()"), pid);
	harness_exec(c, "BEGIN");
	assert_int_equal(harness_scalar_ll(c, "SELECT 3"), 3);
	harness_exec(c, "COMMIT");
	assert_one_server(admin, super, "after the cancel and ROLLBACK");
	PQfinish(c);
	PQfinish(super);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/*
 * With transaction pooling an idle client keeps no server, but its last
 * server may by now run another client's query. A's key must reach nothing:
 * B's pg_sleep(2) on the server A used runs to its end.
 */
static void test_cancel_of_an_idle_client_leaves_another_clients_query_on_its_old_server(void **state)
{
	struct harness_pooler p;
	PGconn *a, *b, *admin, *super;
	PGresult *r;
	long long t0, ms;
	int pid_a, fds_before;

	start_pooler(&p, "default_pool_size = 1\n");
	admin = harness_connect_admin(&p);
	super = harness_connect_pg_super(NULL);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	b = harness_connect_pooler(&p, NULL, NULL, NULL);
	pid_a = (int)harness_scalar_ll(a, "SELECT pg_backend_pid()");
	fds_before = harness_proc_fd_count(p.pid);

	t0 = harness_now_ms();
	assert_int_equal(PQsendQuery(b, "SELECT pg_sleep(2) /* it_cancel_idle_other */"), 1);
	assert_int_equal(harness_wait_running(super, "it_cancel_idle_other", 5000), pid_a);
	assert_cancel_returned(send_cancel(a), "an idle client");
	r = first_result(b, 10000);
	ms = harness_now_ms() - t0;
	print_message("B's pg_sleep(2) on A's old server, A cancelled meanwhile: %s after "
		      "%lld ms\n", r ? PQresStatus(PQresultStatus(r)) : "no result", ms);
	assert_rows(r, "B's pg_sleep(2) while A (idle) was cancelled");
	PQclear(r);
	assert_true(ms >= 1900);

	/* Both sessions go on, still on the one server, which nothing replaced. */
	assert_int_equal(harness_scalar_ll(a, "SELECT pg_backend_pid()"), pid_a);
	assert_int_equal(harness_scalar_ll(b, "SELECT pg_backend_pid()"), pid_a);
	assert_one_server(admin, super, "after cancelling an idle client");
	harness_wait_fd_count(&p, fds_before, 3000, "the cancel requests");
	assert_no_cancel_fds(admin);
	PQfinish(a);
	PQfinish(b);
	PQfinish(super);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/*
 * B waits for the only server, which runs A's pg_sleep(2). B's key must not
 * cancel A's query. What B itself sees: pgmux drops the cancel of a client
 * that is not linked to a server, as PostgreSQL drops a cancel that arrives
 * before the backend reads the query, so B's query still runs once the
 * server frees up. PgBouncer 1.18, run against this test, does the same (it
 * logs "cancel request for idle client" and closes the cancel socket; B
 * gets its 42). Answering 57014 at once would
 * also be defensible, but the pooler would then have to discard B's request
 * bytes and forge PostgreSQL's answer for it; query_wait_timeout already
 * bounds how long B can wait.
 */
static void test_cancel_of_a_waiting_client_spares_the_running_query_and_its_own_runs_later(void **state)
{
	struct harness_pooler p;
	PGconn *a, *b, *admin, *super;
	PGresult *r;
	long long t0, ms, deadline;
	int pid;

	start_pooler(&p, "default_pool_size = 1\n");
	admin = harness_connect_admin(&p);
	super = harness_connect_pg_super(NULL);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	b = harness_connect_pooler(&p, NULL, NULL, NULL);
	pid = (int)harness_scalar_ll(a, "SELECT pg_backend_pid()");

	t0 = harness_now_ms();
	assert_int_equal(PQsendQuery(a, "SELECT pg_sleep(2) /* it_cancel_waiting_a */"), 1);
	assert_int_equal(harness_wait_running(super, "it_cancel_waiting_a", 5000), pid);
	assert_int_equal(PQsendQuery(b, "SELECT 42 AS it_cancel_waiting_b"), 1);
	deadline = harness_now_ms() + 1000;
	while (pool_waiting(admin) != 1) {
		if (harness_now_ms() > deadline)
			fail_msg("B is not waiting for a server after 1 s (SHOW POOLS)");
		harness_sleep_ms(10);
	}
	assert_cancel_returned(send_cancel(b), "a waiting client");

	r = first_result(a, 10000);
	ms = harness_now_ms() - t0;
	print_message("A's pg_sleep(2), B cancelled while waiting: %s after %lld ms\n",
		      r ? PQresStatus(PQresultStatus(r)) : "no result", ms);
	assert_rows(r, "A's pg_sleep(2) while waiting B was cancelled");
	PQclear(r);
	assert_true(ms >= 1900);

	r = first_result(b, 5000);
	print_message("waiting B after its cancel: %s %s %s\n",
		      r ? PQresStatus(PQresultStatus(r)) : "no result",
		      r && PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "",
		      r ? PQresultErrorMessage(r) : "");
	assert_rows(r, "B's query after its cancel while waiting");
	assert_int_equal(PQntuples(r), 1);
	assert_string_equal(PQgetvalue(r, 0, 0), "42");
	PQclear(r);

	assert_int_equal(harness_scalar_ll(a, "SELECT 1"), 1);
	assert_int_equal(harness_scalar_ll(b, "SELECT pg_backend_pid()"), pid);
	assert_one_server(admin, super, "after cancelling a waiting client");
	PQfinish(a);
	PQfinish(b);
	PQfinish(super);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

static void test_cancel_with_a_wrong_key_cancels_nothing_closes_the_socket_and_leaks_nothing(void **state)
{
	struct harness_pooler p;
	PGconn *c, *admin, *super;
	PGresult *r;
	long long t0, ms;
	int pid, fds_before, i;

	start_pooler(&p, NULL);
	admin = harness_connect_admin(&p);
	super = harness_connect_pg_super(NULL);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	pid = (int)harness_scalar_ll(c, "SELECT pg_backend_pid()");

	t0 = harness_now_ms();
	assert_int_equal(PQsendQuery(c, "SELECT pg_sleep(1.5) /* it_cancel_wrong */"), 1);
	assert_int_equal(harness_wait_running(super, "it_cancel_wrong", 5000), pid);
	fds_before = harness_proc_fd_count(p.pid);
	/* c's pid with a guessed secret, then a wholly random key. */
	for (i = 0; i < 2; i++) {
		uint32_t kpid, key;
		long got;
		int fd;

		wrong_key(c, i == 0, &kpid, &key);
		fd = raw_cancel_send(p.port, kpid, key);
		got = raw_wait_eof(fd, 3000);
		close(fd);
		if (got != 0)
			fail_msg("wrong-key CancelRequest (%s): %s", i == 0 ? "right pid" : "random",
				 got < 0 ? "the pooler kept the socket open for 3 s" :
					   "the pooler answered it");
	}
	r = first_result(c, 5000);
	ms = harness_now_ms() - t0;
	print_message("pg_sleep(1.5) with two wrong-key cancels: %s after %lld ms\n",
		      r ? PQresStatus(PQresultStatus(r)) : "no result", ms);
	assert_rows(r, "pg_sleep(1.5) after wrong-key cancels");
	PQclear(r);
	assert_true(ms >= 1400);

	harness_wait_fd_count(&p, fds_before, 3000, "the cancel requests");
	assert_no_cancel_fds(admin);
	assert_int_equal(harness_scalar_ll(c, "SELECT pg_backend_pid()"), pid);
	assert_one_server(admin, super, "after wrong-key cancels");
	PQfinish(c);
	PQfinish(super);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/* All sockets are opened and their requests sent first, then each is
 * read to EOF: the pooler sees them together while the query runs. */
static void test_cancel_200_wrong_keys_while_a_query_runs_let_it_complete(void **state)
{
	struct harness_pooler p;
	PGconn *c, *admin, *super;
	PGresult *r;
	int fds[WRONG_KEYS];
	long long t0, t_sent, ms;
	int pid, fds_before, i, open_left = 0, answered = 0;

	harness_raise_nofile(1024 + 2 * WRONG_KEYS);
	start_pooler(&p, NULL);
	admin = harness_connect_admin(&p);
	super = harness_connect_pg_super(NULL);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	pid = (int)harness_scalar_ll(c, "SELECT pg_backend_pid()");

	t0 = harness_now_ms();
	assert_int_equal(PQsendQuery(c, "SELECT pg_sleep(2) /* it_cancel_storm */"), 1);
	assert_int_equal(harness_wait_running(super, "it_cancel_storm", 5000), pid);
	fds_before = harness_proc_fd_count(p.pid);
	for (i = 0; i < WRONG_KEYS; i++) {
		uint32_t kpid, key;

		wrong_key(c, i % 2 == 0, &kpid, &key);
		fds[i] = raw_cancel_send(p.port, kpid, key);
	}
	t_sent = harness_now_ms() - t0;
	for (i = 0; i < WRONG_KEYS; i++) {
		long got = raw_wait_eof(fds[i], 3000);

		open_left += got < 0;
		answered += got > 0;
		close(fds[i]);
	}
	print_message("%d wrong-key cancels sent within %lld ms of the query; %d left open, "
		      "%d answered\n", WRONG_KEYS, t_sent, open_left, answered);
	if (open_left != 0 || answered != 0)
		fail_msg("of %d wrong-key CancelRequests, %d sockets were still open after 3 s "
			 "and %d got an answer", WRONG_KEYS, open_left, answered);

	r = first_result(c, 5000);
	ms = harness_now_ms() - t0;
	print_message("pg_sleep(2) amid %d wrong-key cancels: %s after %lld ms\n", WRONG_KEYS,
		      r ? PQresStatus(PQresultStatus(r)) : "no result", ms);
	assert_rows(r, "pg_sleep(2) amid wrong-key cancels");
	PQclear(r);
	assert_true(ms >= 1900);

	harness_wait_fd_count(&p, fds_before, 3000, "the cancel requests");
	assert_no_cancel_fds(admin);
	assert_int_equal(harness_scalar_ll(c, "SELECT 1"), 1);
	assert_one_server(admin, super, "after 200 wrong-key cancels");
	PQfinish(c);
	PQfinish(super);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/*
 * A's cancel is on its way to PostgreSQL (the relay holds it for 500 ms)
 * when A's query ends by itself. With transaction pooling the server goes
 * back to the pool, and B's pg_sleep(2), waiting for it, starts there. The
 * cancel was meant for A's query; when PostgreSQL gets it, it must not
 * cancel B's. PostgreSQL only knows the backend, so the pooler must not
 * hand a server to another client while a cancel aimed at it is in flight
 * (PostgreSQL ignores a cancel that reaches an idle backend). PgBouncer 1.18
 * passes this test: B's sleep starts only once the cancel has gone through;
 * newer PgBouncers show such servers in SHOW POOLS as sv_being_canceled.
 */
static void test_cancel_in_flight_when_the_query_ends_spares_the_next_clients_query(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = { .settings = "default_pool_size = 1\n" };
	/* Static: should the test fail, the threads still using them outlive it. */
	static struct relay relay;
	static struct cancel_thread ct;
	char databases[256];
	PGconn *a, *b, *admin, *super;
	PGresult *r;
	ExecStatusType b_status;
	char b_state[8];
	long long t0, t_b, ms, deadline;
	int pid;

	relay_start(&relay, fx->port, RELAY_CANCEL_DELAY_MS);
	harness_fmt(databases, sizeof(databases), "%s = host=127.0.0.1 port=%d dbname=%s\n",
		    fx->db, relay.port, fx->db);
	cfg.databases = databases;
	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	harness_pooler_start(&p, &cfg);
	admin = harness_connect_admin(&p);
	super = harness_connect_pg_super(NULL);
	a = harness_connect_pooler(&p, NULL, NULL, NULL);
	b = harness_connect_pooler(&p, NULL, NULL, NULL);
	pid = (int)harness_scalar_ll(a, "SELECT pg_backend_pid()");

	/* A waits for a lock the test holds, so the test decides when it ends. */
	harness_exec(super, "SELECT pg_advisory_lock(724201)");
	assert_int_equal(PQsendQuery(a, "SELECT pg_advisory_xact_lock(724201) "
				     "/* it_cancel_race_a */"), 1);
	assert_int_equal(harness_wait_running(super, "it_cancel_race_a", 5000), pid);
	t_b = harness_now_ms();
	assert_int_equal(PQsendQuery(b, "SELECT pg_sleep(2) /* it_cancel_race_b */"), 1);
	deadline = harness_now_ms() + 1000;
	while (pool_waiting(admin) != 1) {
		if (harness_now_ms() > deadline)
			fail_msg("B is not waiting for a server after 1 s (SHOW POOLS)");
		harness_sleep_ms(10);
	}

	/* The cancel leaves the pooler; the relay holds it back. */
	ct.c = a;
	assert_int_equal(pthread_create(&ct.thread, NULL, cancel_thread_main, &ct), 0);
	deadline = harness_now_ms() + 2000;
	while (atomic_load(&relay.cancels_seen) == 0) {
		if (harness_now_ms() > deadline)
			fail_msg("the pooler did not send A's cancel to the server within 2 s");
		harness_sleep_ms(5);
	}
	/* Meanwhile A's query ends on its own, and B's starts on that server. */
	t0 = harness_now_ms();
	harness_exec(super, "SELECT pg_advisory_unlock(724201)");
	r = first_result(a, 5000);
	assert_rows(r, "A's query, ended by the unlock");
	PQclear(r);
	print_message("A's query ended %lld ms after its cancel left the pooler; cancels "
		      "passed on so far: %d\n", harness_now_ms() - t0,
		      atomic_load(&relay.cancels_passed));

	r = first_result(b, 10000);
	ms = harness_now_ms() - t_b;
	print_message("B's pg_sleep(2) after A's late cancel reached PostgreSQL: %s '%s' "
		      "after %lld ms\n", r ? PQresStatus(PQresultStatus(r)) : "no result",
		      harness_sqlstate(r), ms);
	pthread_join(ct.thread, NULL);
	b_status = r ? PQresultStatus(r) : PGRES_EMPTY_QUERY;
	harness_fmt(b_state, sizeof(b_state), "%s", harness_sqlstate(r));
	PQclear(r);

	/* Both sessions work either way; the verdict comes after a clean stop,
	 * so a failure leaves no pooler or libpq object behind. */
	assert_int_equal(harness_scalar_ll(a, "SELECT 1"), 1);
	assert_int_equal(harness_scalar_ll(b, "SELECT pg_backend_pid()"), pid);
	PQfinish(a);
	PQfinish(b);
	PQfinish(super);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
	relay_stop(&relay);
	if (!ct.ok)
		fail_msg("PQcancel for A: %s", ct.err);
	if (b_status == PGRES_FATAL_ERROR && strcmp(b_state, "57014") == 0)
		fail_msg("A's cancel, sent while A's query ran but delivered after it ended, "
			 "cancelled B's query on the same server");
	if (b_status != PGRES_TUPLES_OK)
		fail_msg("B's pg_sleep(2) after A's late cancel: %s '%s'", PQresStatus(b_status),
			 b_state);
	assert_true(ms >= 1900);
	assert_int_equal(atomic_load(&relay.cancels_passed), 1);
}

/*
 * PostgreSQL (the relay, holding cancels for 3 s) does not take the cancel
 * within cancel_wait_timeout = 1. pgmux gives up: the requester's socket
 * closes (PQcancel returns) between 1 and 2 s plus slack, the cancel
 * connection is closed and unregistered, and the query, never cancelled,
 * runs to its end. Whether that server is then reused or replaced is left
 * open (a cancel given up on might still land); either way one server
 * serves the client. (PgBouncer 1.18 refuses the key; in later PgBouncers
 * it bounds the wait for a server slot to send the cancel on, so this test
 * is about pgmux.)
 */
static void test_cancel_not_taken_within_cancel_wait_timeout_is_given_up_and_leaks_nothing(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = {
		.settings = "default_pool_size = 1\ncancel_wait_timeout = 1\n"
	};
	static struct relay relay; /* static: see the in-flight test */
	char databases[256];
	PGconn *c, *admin, *super;
	PGresult *r;
	long long t0, ms, cancel_ms;
	int pid, fds_before;

	relay_start(&relay, fx->port, RELAY_CANCEL_STUCK_MS);
	harness_fmt(databases, sizeof(databases), "%s = host=127.0.0.1 port=%d dbname=%s\n",
		    fx->db, relay.port, fx->db);
	cfg.databases = databases;
	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	harness_pooler_start(&p, &cfg);
	admin = harness_connect_admin(&p);
	super = harness_connect_pg_super(NULL);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	pid = (int)harness_scalar_ll(c, "SELECT pg_backend_pid()");
	fds_before = harness_proc_fd_count(p.pid);

	t0 = harness_now_ms();
	assert_int_equal(PQsendQuery(c, "SELECT pg_sleep(4) /* it_cancel_stuck */"), 1);
	assert_int_equal(harness_wait_running(super, "it_cancel_stuck", 5000), pid);
	cancel_ms = send_cancel(c);
	print_message("PQcancel returned after %lld ms (cancel_wait_timeout = 1)\n",
		      cancel_ms);
	/* The janitor ticks once a second: 1 to 2 s, plus a second of slack. */
	if (cancel_ms < 900 || cancel_ms > 3000)
		fail_msg("PQcancel returned after %lld ms; cancel_wait_timeout = 1 should end it "
			 "between 1 and 2 s", cancel_ms);
	assert_true(harness_pooler_log_contains(&p, "cancel_wait_timeout"));
	/* pgmux's cancel connection is gone, from its registry and its fd table. */
	harness_wait_fd_count(&p, fds_before, 3000, "the cancel requests");
	assert_no_cancel_fds(admin);

	r = first_result(c, 8000);
	ms = harness_now_ms() - t0;
	print_message("pg_sleep(4) whose cancel was given up: %s after %lld ms; the relay "
		      "dropped %d held cancel(s), passed %d\n",
		      r ? PQresStatus(PQresultStatus(r)) : "no result", ms,
		      atomic_load(&relay.cancels_dropped), atomic_load(&relay.cancels_passed));
	assert_rows(r, "pg_sleep(4) after its cancel timed out");
	PQclear(r);
	assert_true(ms >= 3900);
	assert_int_equal(atomic_load(&relay.cancels_passed), 0);

	assert_int_equal(harness_scalar_ll(c, "SELECT 1"), 1);
	assert_one_server(admin, super, "after cancel_wait_timeout");
	PQfinish(c);
	PQfinish(super);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
	relay_stop(&relay);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_cancel_pg_sleep_gets_57014_within_1s_and_its_server_is_reused,
					  harness_teardown),
		cmocka_unit_test_teardown(test_cancel_in_a_transaction_block_aborts_it_until_rollback,
					  harness_teardown),
		cmocka_unit_test_teardown(test_cancel_of_an_idle_client_leaves_another_clients_query_on_its_old_server,
					  harness_teardown),
		cmocka_unit_test_teardown(test_cancel_of_a_waiting_client_spares_the_running_query_and_its_own_runs_later,
					  harness_teardown),
		cmocka_unit_test_teardown(test_cancel_in_flight_when_the_query_ends_spares_the_next_clients_query,
					  harness_teardown),
		cmocka_unit_test_teardown(test_cancel_not_taken_within_cancel_wait_timeout_is_given_up_and_leaks_nothing,
					  harness_teardown),
		cmocka_unit_test_teardown(test_cancel_with_a_wrong_key_cancels_nothing_closes_the_socket_and_leaks_nothing,
					  harness_teardown),
		cmocka_unit_test_teardown(test_cancel_200_wrong_keys_while_a_query_runs_let_it_complete,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_cancel", tests, NULL, NULL);
}
