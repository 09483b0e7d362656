/*
 * test_server_failures.c: PostgreSQL going away under pgmux. The shared
 * cluster is restarted (`pg_ctl restart -m fast`) while 200 clients run
 * transactions, and stopped outright while clients keep asking; what is
 * checked is what an application would see: errors with PostgreSQL's
 * SQLSTATEs instead of hangs, idle connections that survive, no committed
 * row lost, one log line per server_login_retry interval, and service back
 * within a second of PostgreSQL accepting again.
 *
 * The cluster is always started again in teardown, so a failure here does
 * not take the rest of the suite down with it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#define WORKERS 4
#define CONNS_PER_WORKER 50 /* 200 clients in all */
#define IDLE_CLIENTS 20
/* No request may take longer than this: anything slower is a hang. */
#define REQUEST_DEADLINE_MS 10000
/* server_login_retry used here: short enough for the 1 s recovery bound. */
#define RETRY_S "0.3"

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- the cluster ---- */

/* PGFIX_DATADIR from the fixture's env file (harness.c does not keep it). */
static void fixture_datadir(char *out, size_t len)
{
	const char *env = getenv("PGMUX_FIXTURE_ENV");
	char line[1024];
	FILE *f;

	assert_non_null(env);
	f = fopen(env, "r");
	assert_non_null(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "PGFIX_DATADIR=", 14) == 0) {
			snprintf(out, len, "%.500s", line + 14);
			out[strcspn(out, "\n")] = '\0';
		}
	}
	fclose(f);
	assert_true(out[0] != '\0');
}

/* Runs pg_ctl <action> as the postgres OS user; returns its exit status. */
static int pg_ctl(const char *action)
{
	const struct harness_fixture *fx = harness_fixture();
	char data[512];
	char cmd[2048];

	fixture_datadir(data, sizeof(data));
	/* -o: a plain start would not know the fixture's port. */
	snprintf(cmd, sizeof(cmd),
		 "%s %s/pg_ctl -D '%s' -l '%s' -o '-p %d' -m fast -w -t 60 %s >/dev/null 2>&1",
		 getuid() == 0 ? "runuser -u postgres --" : "", fx->bindir, data, fx->log,
		 fx->port, action);
	return system(cmd);
}

static bool pg_running(void)
{
	const struct harness_fixture *fx = harness_fixture();
	char data[512];
	char cmd[2048];

	fixture_datadir(data, sizeof(data));
	snprintf(cmd, sizeof(cmd), "%s %s/pg_ctl -D '%s' status >/dev/null 2>&1",
		 getuid() == 0 ? "runuser -u postgres --" : "", fx->bindir, data);
	return system(cmd) == 0;
}

/*
 * Load threads of the running test. A failed assertion longjmps out of the
 * test body, so the teardown stops and joins whatever is still running:
 * nothing may outlive the test or the memory it uses.
 */
static pthread_t g_threads[16];
static int g_nthreads;
static volatile int g_stop;

static void threads_spawn(void *(*fn)(void *), void *arg)
{
	assert_true(g_nthreads < 16);
	assert_int_equal(pthread_create(&g_threads[g_nthreads], NULL, fn, arg), 0);
	g_nthreads++;
}

static void threads_join(void)
{
	g_stop = 1;
	for (int i = 0; i < g_nthreads; i++)
		pthread_join(g_threads[i], NULL);
	g_nthreads = 0;
}

/* Teardown: whatever happened, the next test finds PostgreSQL up. */
static int teardown(void **state)
{
	threads_join();
	if (!pg_running() && pg_ctl("start") != 0)
		fprintf(stderr, "test_server_failures: could not start PostgreSQL again\n");
	return harness_teardown(state);
}

/* ---- load: 200 clients, each with one request in flight ---- */

enum step {
	STEP_IDLE,   /* next: send a transaction */
	STEP_BUSY,   /* a request is in flight */
};

struct load_conn {
	PGconn *c;
	enum step step;
	long long sent_ms;
	int explicit_phase; /* explicit BEGIN/INSERT/COMMIT: 0 none, 1..3 */
	long long id;       /* row this transaction inserts */
};

/* What one worker saw. Only its own thread writes it until joined. */
struct worker {
	int index;
	int port;
	struct load_conn conns[CONNS_PER_WORKER];
	long long committed[200000];
	int ncommitted;
	int ok_tx;
	int errors;
	int reconnects;
	int hangs;                /* requests past REQUEST_DEADLINE_MS */
	char bad_states[256];     /* SQLSTATEs outside the expected set */
	long long last_ok_ms;
};

/*
 * What a client may see while PostgreSQL restarts: its server lost
 * (08006, pgmux's), terminated by the administrator command (57P01),
 * or the cached login error while PostgreSQL shuts down or starts up
 * (57P03, or 08006 for a refused connection).
 */
static bool expected_state(const char *st)
{
	return strcmp(st, "08006") == 0 || strcmp(st, "57P01") == 0 ||
	       strcmp(st, "57P03") == 0 || st[0] == '\0';
}

static void worker_note_state(struct worker *w, const char *st)
{
	size_t used = strlen(w->bad_states);

	if (expected_state(st) || strstr(w->bad_states, st))
		return;
	snprintf(w->bad_states + used, sizeof(w->bad_states) - used, "%s%s", used ? "," : "", st);
}

static void worker_connect(struct worker *w, struct load_conn *lc)
{
	const struct harness_fixture *fx = harness_fixture();
	char ci[512];

	harness_conninfo(ci, sizeof(ci), w->port, fx->db, fx->app_user, fx->app_password);
	strncat(ci, " connect_timeout=5", sizeof(ci) - strlen(ci) - 1);
	lc->c = PQconnectdb(ci);
	if (PQstatus(lc->c) != CONNECTION_OK) {
		PQfinish(lc->c);
		lc->c = NULL;
		return;
	}
	PQsetnonblocking(lc->c, 1);
	w->reconnects++;
}

/* Sends the next request of lc's transaction. Every fourth connection
 * uses an explicit block over three round trips (it is inside a
 * transaction block when the server goes); the others send one string. */
static void worker_send(struct worker *w, struct load_conn *lc, long long *next_id)
{
	char sql[256];
	bool explicit_tx = (lc - w->conns) % 4 == 0;

	if (!explicit_tx) {
		lc->id = (*next_id)++;
		snprintf(sql, sizeof(sql),
			 "BEGIN; INSERT INTO restart_rows VALUES (%lld); COMMIT", lc->id);
	} else if (lc->explicit_phase == 0) {
		lc->id = (*next_id)++;
		lc->explicit_phase = 1;
		snprintf(sql, sizeof(sql), "BEGIN");
	} else if (lc->explicit_phase == 1) {
		lc->explicit_phase = 2;
		snprintf(sql, sizeof(sql), "INSERT INTO restart_rows VALUES (%lld)", lc->id);
	} else {
		lc->explicit_phase = 3;
		snprintf(sql, sizeof(sql), "COMMIT");
	}
	if (!PQsendQuery(lc->c, sql)) {
		PQfinish(lc->c);
		lc->c = NULL;
		lc->explicit_phase = 0;
		return;
	}
	lc->step = STEP_BUSY;
	lc->sent_ms = harness_now_ms();
}

/* A request finished: book it and decide what comes next. */
static void worker_done(struct worker *w, struct load_conn *lc, bool ok, const char *st)
{
	bool explicit_tx = (lc - w->conns) % 4 == 0;

	lc->step = STEP_IDLE;
	if (!ok) {
		w->errors++;
		worker_note_state(w, st);
		lc->explicit_phase = 0;
		if (PQstatus(lc->c) == CONNECTION_BAD) {
			PQfinish(lc->c);
			lc->c = NULL;
		} else if (PQtransactionStatus(lc->c) != PQTRANS_IDLE) {
			/* Still in a failed block: end it before the next one. */
			PQsetnonblocking(lc->c, 0);
			PQclear(PQexec(lc->c, "ROLLBACK"));
			PQsetnonblocking(lc->c, 1);
		}
		return;
	}
	if (explicit_tx && lc->explicit_phase < 3)
		return; /* more of the block to send */
	lc->explicit_phase = 0;
	if (w->ncommitted < (int)(sizeof(w->committed) / sizeof(w->committed[0])))
		w->committed[w->ncommitted++] = lc->id;
	w->ok_tx++;
	w->last_ok_ms = harness_now_ms();
}

/* Reads whatever arrived for lc; finishes its request when complete. */
static void worker_read(struct worker *w, struct load_conn *lc)
{
	bool ok = true;
	char st[8] = "";

	if (!PQconsumeInput(lc->c) && PQisBusy(lc->c) && PQstatus(lc->c) != CONNECTION_BAD)
		return;
	while (!PQisBusy(lc->c) || PQstatus(lc->c) == CONNECTION_BAD) {
		PGresult *r = PQgetResult(lc->c);

		if (!r)
			break;
		if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
			ok = false;
			snprintf(st, sizeof(st), "%s", harness_sqlstate(r));
		}
		PQclear(r);
	}
	if (PQisBusy(lc->c) && PQstatus(lc->c) != CONNECTION_BAD)
		return;
	worker_done(w, lc, ok, st);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	long long next_id = (long long)w->index * 100000000LL + 1;

	while (!g_stop) {
		struct pollfd pfd[CONNS_PER_WORKER];
		int map[CONNS_PER_WORKER];
		int n = 0;

		for (int i = 0; i < CONNS_PER_WORKER; i++) {
			struct load_conn *lc = &w->conns[i];

			if (!lc->c)
				worker_connect(w, lc);
			if (!lc->c)
				continue;
			if (lc->step == STEP_IDLE)
				worker_send(w, lc, &next_id);
			if (!lc->c)
				continue;
			if (harness_now_ms() - lc->sent_ms > REQUEST_DEADLINE_MS) {
				w->hangs++;
				PQfinish(lc->c);
				lc->c = NULL;
				lc->step = STEP_IDLE;
				continue;
			}
			pfd[n] = (struct pollfd){ PQsocket(lc->c), POLLIN, 0 };
			map[n++] = i;
		}
		if (n == 0) {
			sleep_ms(50); /* nothing connects: pgmux itself is down? */
			continue;
		}
		if (poll(pfd, (nfds_t)n, 100) <= 0)
			continue;
		for (int k = 0; k < n; k++) {
			if (pfd[k].revents)
				worker_read(w, &w->conns[map[k]]);
		}
		if (w->errors > 0 && w->errors % 50 == 0)
			sleep_ms(5); /* do not spin while PostgreSQL is away */
	}
	for (int i = 0; i < CONNS_PER_WORKER; i++) {
		if (w->conns[i].c)
			PQfinish(w->conns[i].c);
	}
	return NULL;
}

/* ---- helpers ---- */

static void start_pooler(struct harness_pooler *p, const char *settings)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { .settings = settings };

	harness_wait_no_server_conns(fx->db, fx->app_user, 20);
	harness_pooler_start(p, &cfg);
}

/* Runs `select 1` on a fresh connection every 20 ms until it works;
 * returns the milliseconds that took, or -1 after timeout_ms. */
static long long first_success_ms(const struct harness_pooler *p, int timeout_ms)
{
	const struct harness_fixture *fx = harness_fixture();
	long long t0 = harness_now_ms();
	char ci[512];

	harness_conninfo(ci, sizeof(ci), p->port, fx->db, fx->app_user, fx->app_password);
	while (harness_now_ms() - t0 < timeout_ms) {
		PGconn *c = PQconnectdb(ci);
		PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, "select 1") : NULL;
		bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;

		PQclear(r);
		PQfinish(c);
		if (ok)
			return harness_now_ms() - t0;
		sleep_ms(20);
	}
	return -1;
}

/* Lines of the pooler's log file holding needle. */
static int log_count(const struct harness_pooler *p, const char *needle)
{
	FILE *f = fopen(p->logfile_path, "r");
	char line[4096];
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, needle))
			n++;
	}
	fclose(f);
	return n;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/* ---- tests ---- */

static void test_server_failures_pg_restart_under_200_clients_errors_not_hangs_and_recovers_within_1s(
	void **state)
{
	static struct worker workers[WORKERS];
	PGconn *idle[IDLE_CLIENTS];
	PGconn *super;
	struct harness_pooler p;
	long long t_accepting, recovery_ms;
	int total_ok = 0, total_err = 0, hangs = 0, ok_before = 0, ncommitted = 0;

	(void)state;
	super = harness_connect_pg_super(NULL);
	harness_exec(super, "DROP TABLE IF EXISTS restart_rows");
	harness_exec(super, "CREATE TABLE restart_rows (id bigint PRIMARY KEY)");
	harness_exec(super, "GRANT ALL ON restart_rows TO app");
	PQfinish(super);

	start_pooler(&p, "default_pool_size = 10\nmax_client_conn = 400\n"
			 "server_login_retry = " RETRY_S "\n");
	for (int i = 0; i < IDLE_CLIENTS; i++) {
		idle[i] = harness_connect_pooler(&p, NULL, NULL, NULL);
		harness_exec(idle[i], "select 1");
	}
	memset(workers, 0, sizeof(workers));
	g_stop = 0;
	for (int i = 0; i < WORKERS; i++) {
		workers[i].index = i;
		workers[i].port = p.port;
		threads_spawn(worker_main, &workers[i]);
	}
	/* Every client logs in (slow under ASan) and transactions flow. */
	for (int waited = 0; waited < 30000; waited += 100) {
		int with_ok = 0;

		ok_before = 0;
		for (int i = 0; i < WORKERS; i++) {
			ok_before += workers[i].ok_tx;
			with_ok += workers[i].ok_tx > 0;
		}
		if (with_ok == WORKERS && ok_before > 1000)
			break;
		sleep_ms(100);
	}
	assert_true(ok_before > 0);

	assert_int_equal(pg_ctl("restart"), 0);
	t_accepting = harness_now_ms();
	recovery_ms = first_success_ms(&p, 10000);
	print_message("restart: %d transactions before; first success %lld ms after "
		      "PostgreSQL accepted again\n", ok_before, recovery_ms);
	sleep_ms(2000);
	threads_join();
	for (int i = 0; i < WORKERS; i++) {
		total_ok += workers[i].ok_tx;
		total_err += workers[i].errors;
		hangs += workers[i].hangs;
		ncommitted += workers[i].ncommitted;
		if (workers[i].bad_states[0])
			fail_msg("worker %d saw unexpected SQLSTATEs: %s", i, workers[i].bad_states);
		/* Every worker is served again after the restart. */
		assert_true(workers[i].last_ok_ms > t_accepting);
	}
	print_message("restart: %d transactions ok, %d errors, %d hangs\n", total_ok, total_err,
		      hangs);
	assert_int_equal(hangs, 0);
	assert_true(total_err > 0); /* the restart was felt: clients were in flight */
	assert_true(recovery_ms >= 0 && recovery_ms <= 1000);

	/* Idle clients kept their pgmux connection through the restart. */
	for (int i = 0; i < IDLE_CLIENTS; i++) {
		assert_int_equal(PQstatus(idle[i]), CONNECTION_OK);
		harness_exec(idle[i], "select 1");
		PQfinish(idle[i]);
	}

	/* No transaction whose COMMIT succeeded is missing. */
	super = harness_connect_pg_super(NULL);
	{
		PGresult *r = harness_query(super, "select id from restart_rows order by id");
		int rows = PQntuples(r);
		long long *ids = malloc(sizeof(*ids) * (size_t)(rows > 0 ? rows : 1));

		assert_non_null(ids);
		for (int k = 0; k < rows; k++)
			ids[k] = atoll(PQgetvalue(r, k, 0));
		PQclear(r);
		for (int i = 0; i < WORKERS; i++) {
			for (int k = 0; k < workers[i].ncommitted; k++) {
				long long id = workers[i].committed[k];

				if (!bsearch(&id, ids, (size_t)rows, sizeof(*ids), cmp_ll))
					fail_msg("committed row %lld is missing", id);
			}
		}
		free(ids);
	}
	print_message("restart: %d committed rows all present\n", ncommitted);
	harness_exec(super, "DROP TABLE restart_rows");
	PQfinish(super);
	assert_true(harness_pooler_alive(&p));
	harness_pooler_stop(&p, 10);
}

struct hammer {
	int port;
	int attempts;
	int errors;
	int slow;           /* attempts that took longer than 5 s: a hang */
	char bad_states[128];
};

/* While PostgreSQL is down: connect, `select 1`, note the outcome. */
static void *hammer_main(void *arg)
{
	const struct harness_fixture *fx = harness_fixture();
	struct hammer *h = arg;
	char ci[512];

	harness_conninfo(ci, sizeof(ci), h->port, fx->db, fx->app_user, fx->app_password);
	while (!g_stop) {
		long long t0 = harness_now_ms();
		PGconn *c = PQconnectdb(ci);
		PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, "select 1") : NULL;

		h->attempts++;
		if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
			const char *st = r ? harness_sqlstate(r) : "";

			h->errors++;
			if (st[0] && strcmp(st, "08006") != 0 && strcmp(st, "57P03") != 0 &&
			    !strstr(h->bad_states, st) &&
			    strlen(h->bad_states) + strlen(st) + 2 < sizeof(h->bad_states)) {
				strcat(h->bad_states, st);
				strcat(h->bad_states, " ");
			}
		}
		if (harness_now_ms() - t0 > 5000)
			h->slow++;
		PQclear(r);
		PQfinish(c);
		sleep_ms(10);
	}
	return NULL;
}

static void test_server_failures_pg_down_clients_get_errors_fast_and_login_failures_logged_once_per_retry(
	void **state)
{
	static struct hammer h[4];
	struct harness_pooler p;
	PGconn *idle;
	int attempts = 0, errors = 0, slow = 0, lines;
	long long down_ms, recovery_ms;

	(void)state;
	start_pooler(&p, "default_pool_size = 5\nserver_login_retry = 1\n"
			 "server_connect_timeout = 3\nquery_wait_timeout = 5\n");
	idle = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(idle, "select 1");

	assert_int_equal(pg_ctl("stop"), 0);
	down_ms = harness_now_ms();
	g_stop = 0;
	for (int i = 0; i < 4; i++) {
		memset(&h[i], 0, sizeof(h[i]));
		h[i].port = p.port;
		threads_spawn(hammer_main, &h[i]);
	}
	sleep_ms(4000);
	threads_join();
	for (int i = 0; i < 4; i++) {
		attempts += h[i].attempts;
		errors += h[i].errors;
		slow += h[i].slow;
		if (h[i].bad_states[0])
			fail_msg("unexpected SQLSTATEs while PostgreSQL was down: %s",
				 h[i].bad_states);
	}
	down_ms = harness_now_ms() - down_ms;
	lines = log_count(&p, "server login failed");
	print_message("down %lld ms: %d attempts, %d errors, %d slow; %d login-failure log "
		      "lines\n", down_ms, attempts, errors, slow, lines);
	assert_int_equal(slow, 0);
	assert_int_equal(errors, attempts);
	assert_true(attempts >= 40); /* errors came fast: no client sat in a queue */
	/* One line per server_login_retry (1 s) interval, not one per client. */
	assert_true(lines >= 1);
	assert_true(lines <= (int)(down_ms / 1000) + 2);

	/* The idle client is still connected; once PostgreSQL is back (and the
	 * retry interval has run out) its next query works. */
	assert_int_equal(pg_ctl("start"), 0);
	recovery_ms = first_success_ms(&p, 10000);
	print_message("first success %lld ms after PostgreSQL was back\n", recovery_ms);
	assert_true(recovery_ms >= 0 && recovery_ms <= 2500);
	assert_int_equal(PQstatus(idle), CONNECTION_OK);
	harness_exec(idle, "select 1");
	assert_true(harness_pooler_log_contains(&p, "server login works again"));
	PQfinish(idle);
	harness_pooler_stop(&p, 10);
}

/* ---- server_check_query ---- */

static long long check_rows(PGconn *super)
{
	return harness_scalar_ll(super, "SELECT count(*) FROM it_check_log");
}

static void test_server_failures_server_check_query_runs_on_a_server_idle_past_server_check_delay(
	void **state)
{
	struct harness_pooler p;
	PGconn *c, *super;

	(void)state;
	super = harness_connect_pg_super(NULL);
	harness_exec(super, "DROP TABLE IF EXISTS it_check_log");
	harness_exec(super, "CREATE TABLE it_check_log (at timestamptz)");
	harness_exec(super, "GRANT ALL ON it_check_log TO PUBLIC");
	/* A check with a visible effect, so the test can count them. */
	start_pooler(&p, "default_pool_size = 1\nserver_check_delay = 1\n"
			 "server_check_query = INSERT INTO it_check_log VALUES (now())\n");
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(c, "SELECT 1");
	harness_exec(c, "SELECT 1");
	assert_int_equal(check_rows(super), 0); /* reused at once: no check */
	sleep_ms(1500);
	harness_exec(c, "SELECT 1");
	assert_int_equal(check_rows(super), 1); /* idle 1.5 s > 1 s: checked first */
	harness_exec(c, "SELECT 1");
	assert_int_equal(check_rows(super), 1);
	PQfinish(c);
	harness_pooler_stop(&p, 10);

	/* A failing check closes the server; the client is served by a new one. */
	start_pooler(&p, "default_pool_size = 1\nserver_check_delay = 0\n"
			 "server_check_query = SELECT 1/0\n");
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(harness_scalar_ll(c, "SELECT 7"), 7);
	assert_true(harness_pooler_log_contains(&p, "server_check_query failed"));
	PQfinish(c);
	harness_pooler_stop(&p, 10);
	harness_exec(super, "DROP TABLE it_check_log");
	PQfinish(super);
}

/* ---- cancel_wait_timeout ---- */

/*
 * A TCP proxy in front of PostgreSQL that forwards its first connection
 * (pgmux's server) and accepts every later one (pgmux's cancel
 * connections) without ever reading or closing it: a server that never
 * takes a cancel.
 */
struct sticky_proxy {
	int listen_fd;
	int port;
	int upstream_port;
	int held[16];
	int nheld;
};

static struct sticky_proxy g_proxy;

static int proxy_listen(int *port)
{
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static int proxy_upstream(int port)
{
	struct sockaddr_in sa = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Copies what is readable on from to to; false when from has ended. */
static bool proxy_pump(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof(buf));

	for (ssize_t off = 0; n > 0 && off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));

		if (w <= 0)
			return false;
		off += w;
	}
	return n > 0;
}

static void *proxy_main(void *arg)
{
	struct sticky_proxy *px = arg;
	int down = -1, up = -1;

	while (!g_stop) {
		struct pollfd pfd[3] = { { px->listen_fd, POLLIN, 0 }, { down, POLLIN, 0 },
					 { up, POLLIN, 0 } };

		if (poll(pfd, 3, 50) <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			int fd = accept(px->listen_fd, NULL, NULL);

			if (fd >= 0 && down < 0) {
				down = fd;
				up = proxy_upstream(px->upstream_port);
			} else if (fd >= 0 && px->nheld < 16) {
				px->held[px->nheld++] = fd;
			} else if (fd >= 0) {
				close(fd);
			}
		}
		if (((pfd[1].revents & (POLLIN | POLLHUP)) && !proxy_pump(down, up)) ||
		    ((pfd[2].revents & (POLLIN | POLLHUP)) && !proxy_pump(up, down))) {
			close(down);
			close(up);
			down = up = -1;
		}
	}
	if (down >= 0)
		close(down);
	if (up >= 0)
		close(up);
	for (int i = 0; i < px->nheld; i++)
		close(px->held[i]);
	return NULL;
}

static void test_server_failures_cancel_wait_timeout_ends_a_cancel_the_server_never_takes(
	void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct sticky_proxy *px = &g_proxy;
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = { 0 };
	char databases[256], errbuf[256];
	PGconn *c;
	PGcancel *cancel;
	PGresult *r;
	long long t0, ms;

	(void)state;
	memset(px, 0, sizeof(*px));
	px->listen_fd = proxy_listen(&px->port);
	px->upstream_port = fx->port;
	g_stop = 0;
	threads_spawn(proxy_main, px);
	harness_fmt(databases, sizeof(databases), "%s = host=127.0.0.1 port=%d dbname=%s\n",
		    fx->db, px->port, fx->db);
	cfg.settings = "default_pool_size = 1\ncancel_wait_timeout = 1\n";
	cfg.databases = databases;
	harness_wait_no_server_conns(fx->db, fx->app_user, 20);
	harness_pooler_start(&p, &cfg);

	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	assert_true(PQsendQuery(c, "SELECT pg_sleep(4)"));
	sleep_ms(300);
	cancel = PQgetCancel(c);
	assert_non_null(cancel);
	t0 = harness_now_ms();
	/* PQcancel returns when pgmux closes the cancel connection: here only
	 * because cancel_wait_timeout gave up on it. */
	(void)PQcancel(cancel, errbuf, sizeof(errbuf));
	ms = harness_now_ms() - t0;
	PQfreeCancel(cancel);
	print_message("PQcancel returned after %lld ms\n", ms);
	assert_true(ms >= 900 && ms <= 3500);
	assert_true(harness_pooler_log_contains(&p, "cancel_wait_timeout"));

	/* The query was never cancelled: it finishes normally. */
	while ((r = PQgetResult(c)) != NULL) {
		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		PQclear(r);
	}
	assert_int_equal(harness_scalar_ll(c, "SELECT 1"), 1);
	PQfinish(c);
	harness_pooler_stop(&p, 10);
	threads_join();
	close(px->listen_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
			test_server_failures_pg_restart_under_200_clients_errors_not_hangs_and_recovers_within_1s,
			teardown),
		cmocka_unit_test_teardown(
			test_server_failures_pg_down_clients_get_errors_fast_and_login_failures_logged_once_per_retry,
			teardown),
		cmocka_unit_test_teardown(
			test_server_failures_server_check_query_runs_on_a_server_idle_past_server_check_delay,
			teardown),
		cmocka_unit_test_teardown(
			test_server_failures_cancel_wait_timeout_ends_a_cancel_the_server_never_takes,
			teardown),
	};

	return cmocka_run_group_tests_name("integration_server_failures", tests, NULL, NULL);
}
