/*
 * test_fds.c: pgmux's descriptor accounting checked from outside the
 * process. SHOW FD_USAGE's open must equal the entries of /proc/<pid>/fd and
 * unaccounted must be 0 at idle, with 1,000 clients and after they leave;
 * SHOW FDS must list exactly those descriptors with the right kinds. Then,
 * with the hard limit at 128, a burst of 150 clients: the excess get 53300
 * at once, the console still answers, and the next clients get in at once.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#define MANY 1000
#define LIMIT 128
#define BURST 150

static const char *const kinds[] = {
	"listener", "client", "server", "admin", "cancel", "internal",
};

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/*
 * SHOW FD_USAGE whose open equals the /proc count taken just before and
 * just after it (a descriptor may come or go in between: retried).
 */
static PGresult *fd_usage_matching_proc(PGconn *admin, pid_t pid, const char *when)
{
	long long open = -1;
	int before = -1, after = -1, attempt;

	for (attempt = 0; attempt < 5; attempt++) {
		PGresult *r;

		before = harness_proc_fd_count(pid);
		r = harness_query(admin, "SHOW FD_USAGE");
		after = harness_proc_fd_count(pid);
		assert_int_equal(PQntuples(r), 1);
		open = harness_value_ll(r, 0, "open");
		if (before == after && open == before) {
			if (harness_value_ll(r, 0, "unaccounted") != 0)
				fail_msg("%s: SHOW FD_USAGE unaccounted = %s (open %lld)", when,
					 harness_value(r, 0, "unaccounted"), open);
			return r;
		}
		PQclear(r);
		harness_sleep_ms(50);
	}
	fail_msg("%s: SHOW FD_USAGE open = %lld but /proc/%d/fd has %d..%d entries",
		 when, open, (int)pid, before, after);
	return NULL;
}

struct fds_kinds {
	int n[sizeof(kinds) / sizeof(kinds[0])];
	int rows;
};

/*
 * SHOW FDS: one row per descriptor in /proc/<pid>/fd (the same numbers),
 * every kind one of the documented ones; counts rows per kind.
 */
static void fds_matching_proc(PGconn *admin, pid_t pid, const char *when,
			      struct fds_kinds *out)
{
	static int proc[4096], listed[4096];
	char problem[256] = "";
	int attempt;

	for (attempt = 0; attempt < 5; attempt++) {
		PGresult *r;
		int n1, n2, rows, i, k;

		n1 = harness_proc_fds(pid, proc, 4096);
		r = harness_query(admin, "SHOW FDS");
		n2 = harness_proc_fd_count(pid);
		rows = PQntuples(r);
		memset(out, 0, sizeof(*out));
		out->rows = rows;
		problem[0] = '\0';
		for (i = 0; i < rows && i < 4096; i++) {
			const char *kind = harness_value(r, i, "kind");

			listed[i] = (int)harness_value_ll(r, i, "fd");
			for (k = 0; k < (int)(sizeof(kinds) / sizeof(kinds[0])); k++)
				if (strcmp(kind, kinds[k]) == 0)
					break;
			if (k == (int)(sizeof(kinds) / sizeof(kinds[0]))) {
				snprintf(problem, sizeof(problem),
					 "fd %d has kind \"%s\" (state \"%s\")", listed[i], kind,
					 PQgetisnull(r, i, harness_col(r, "state")) ? "" :
					 PQgetvalue(r, i, harness_col(r, "state")));
				break;
			}
			out->n[k]++;
		}
		PQclear(r);
		if (problem[0] != '\0')
			fail_msg("%s: SHOW FDS: %s", when, problem);
		if (n1 != n2 || rows != n1 || n1 > 4096)
			goto retry;
		qsort(proc, (size_t)n1, sizeof(int), cmp_int);
		qsort(listed, (size_t)rows, sizeof(int), cmp_int);
		if (memcmp(proc, listed, (size_t)n1 * sizeof(int)) == 0)
			return;
retry:
		snprintf(problem, sizeof(problem), "%d rows, /proc has %d..%d entries%s",
			 rows, n1, n2, rows == n1 ? " (different numbers)" : "");
		harness_sleep_ms(50);
	}
	fail_msg("%s: SHOW FDS does not match /proc/%d/fd: %s", when, (int)pid, problem);
}

static int kind_count(const struct fds_kinds *k, const char *kind)
{
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i], kind) == 0)
			return k->n[i];
	return -1;
}

/*
 * Opens n libpq connections concurrently (PQconnectStart + PQconnectPoll
 * over poll()); fails the test unless all are CONNECTION_OK within 30 s.
 */
static void connect_many(const char *conninfo, PGconn **c, int n)
{
	PostgresPollingStatusType *st = calloc((size_t)n, sizeof(*st));
	struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
	int *idx = calloc((size_t)n, sizeof(*idx));
	long long deadline = harness_now_ms() + 30000;
	int i, pending = n;

	assert_non_null(st);
	assert_non_null(pfd);
	assert_non_null(idx);
	for (i = 0; i < n; i++) {
		c[i] = PQconnectStart(conninfo);
		if (c[i] == NULL || PQstatus(c[i]) == CONNECTION_BAD)
			fail_msg("PQconnectStart %d: %s", i,
				 c[i] ? PQerrorMessage(c[i]) : "out of memory");
		st[i] = PGRES_POLLING_WRITING;
	}
	while (pending > 0) {
		int m = 0, k;

		if (harness_now_ms() > deadline)
			fail_msg("%d of %d connections still pending after 30 s", pending, n);
		for (i = 0; i < n; i++) {
			if (st[i] == PGRES_POLLING_OK || st[i] == PGRES_POLLING_FAILED)
				continue;
			pfd[m].fd = PQsocket(c[i]);
			pfd[m].events = st[i] == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			pfd[m].revents = 0;
			idx[m++] = i;
		}
		if (poll(pfd, (nfds_t)m, 100) < 0 && errno != EINTR)
			fail_msg("poll: %s", strerror(errno));
		for (k = 0; k < m; k++) {
			if (pfd[k].revents == 0)
				continue;
			i = idx[k];
			st[i] = PQconnectPoll(c[i]);
			if (st[i] == PGRES_POLLING_FAILED)
				fail_msg("connection %d of %d failed: %s", i, n,
					 PQerrorMessage(c[i]));
			if (st[i] == PGRES_POLLING_OK)
				pending--;
		}
	}
	free(st);
	free(pfd);
	free(idx);
}

static const char *const fds_settings =
	"auth_type = trust\n"
	"max_client_conn = 1100\n"
	"listen_backlog = 1024\n";

/* ---- accounting ----------------------------------------------------------- */

static void test_fds_open_equals_proc_and_nothing_unaccounted_at_idle(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { .settings = fds_settings };
	struct harness_pooler p;
	struct fds_kinds k;
	PGconn *admin;
	PGresult *r;

	harness_pooler_start(&p, &cfg);
	admin = harness_connect_admin(&p);
	r = fd_usage_matching_proc(admin, p.pid, "idle");
	print_message("idle: open %s (listeners %s, internal %s, admin %s), soft limit %s\n",
		      harness_value(r, 0, "open"), harness_value(r, 0, "listeners"),
		      harness_value(r, 0, "internal"), harness_value(r, 0, "admin"),
		      harness_value(r, 0, "limit_soft"));
	assert_int_equal(harness_value_ll(r, 0, "clients"), 0);
	assert_int_equal(harness_value_ll(r, 0, "servers"), 0);
	assert_int_equal(harness_value_ll(r, 0, "admin"), 1);
	/* TCP and unix socket at least. */
	assert_true(harness_value_ll(r, 0, "listeners") >= 2);
	assert_true(harness_value_ll(r, 0, "limit_soft") >= 1100);
	assert_int_equal(harness_value_ll(r, 0, "reserved"), 8);

	fds_matching_proc(admin, p.pid, "idle", &k);
	assert_int_equal(kind_count(&k, "listener"),
			 harness_value_ll(r, 0, "listeners"));
	assert_int_equal(kind_count(&k, "internal"), harness_value_ll(r, 0, "internal"));
	assert_int_equal(kind_count(&k, "admin"), 1);
	assert_int_equal(kind_count(&k, "client"), 0);
	PQclear(r);

	/* The console row says who it is. */
	r = harness_query(admin, "SHOW FDS");
	{
		int row = harness_find_row(r, "kind", "admin", NULL, NULL);

		assert_true(row >= 0);
		assert_string_equal(harness_value(r, row, "user"), fx->admin_user);
	}
	PQclear(r);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

static void test_fds_open_equals_proc_with_1000_clients_and_after_they_leave(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { .settings = fds_settings };
	struct harness_pooler p;
	struct fds_kinds k;
	PGconn **c = calloc(MANY, sizeof(*c));
	PGconn *admin;
	PGresult *r;
	char ci[512];
	long long t0, idle_open, idle_servers, left_ms, clients;
	int i, row;

	assert_non_null(c);
	harness_raise_nofile(4096);
	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	harness_pooler_start(&p, &cfg);
	admin = harness_connect_admin(&p);
	r = fd_usage_matching_proc(admin, p.pid, "before the clients");
	idle_open = harness_value_ll(r, 0, "open");
	idle_servers = harness_value_ll(r, 0, "servers");
	PQclear(r);

	harness_conninfo(ci, sizeof(ci), p.port, fx->db, fx->app_user, fx->app_password);
	t0 = harness_now_ms();
	connect_many(ci, c, MANY);
	print_message("%d clients connected in %lld ms\n", MANY, harness_now_ms() - t0);
	/* One of them runs a query, so a server connection exists. */
	assert_int_equal(harness_scalar_ll(c[0], "SELECT 1"), 1);

	r = fd_usage_matching_proc(admin, p.pid, "with 1000 clients");
	print_message("1000 clients: open %s clients %s servers %s internal %s\n",
		      harness_value(r, 0, "open"), harness_value(r, 0, "clients"),
		      harness_value(r, 0, "servers"), harness_value(r, 0, "internal"));
	assert_int_equal(harness_value_ll(r, 0, "clients"), MANY);
	assert_true(harness_value_ll(r, 0, "servers") >= 1);
	fds_matching_proc(admin, p.pid, "with 1000 clients", &k);
	assert_int_equal(kind_count(&k, "client"), MANY);
	assert_int_equal(kind_count(&k, "listener"), harness_value_ll(r, 0, "listeners"));
	assert_int_equal(kind_count(&k, "server"), harness_value_ll(r, 0, "servers"));
	assert_int_equal(kind_count(&k, "admin"), 1);
	PQclear(r);

	r = harness_query(admin, "SHOW FDS");
	row = harness_find_row(r, "kind", "server", NULL, NULL);
	assert_true(row >= 0);
	assert_string_equal(harness_value(r, row, "database"), fx->db);
	assert_string_equal(harness_value(r, row, "user"), fx->app_user);
	row = harness_find_row(r, "kind", "client", NULL, NULL);
	assert_true(row >= 0);
	assert_string_equal(harness_value(r, row, "database"), fx->db);
	assert_string_equal(harness_value(r, row, "user"), fx->app_user);
	PQclear(r);

	/* They leave: within two seconds every client descriptor is closed. */
	t0 = harness_now_ms();
	for (i = 0; i < MANY; i++)
		PQfinish(c[i]);
	do {
		r = harness_query(admin, "SHOW FD_USAGE");
		clients = harness_value_ll(r, 0, "clients");
		PQclear(r);
		left_ms = harness_now_ms() - t0;
		if (clients != 0)
			harness_sleep_ms(20);
	} while (clients != 0 && left_ms < 2000);
	print_message("clients count back to %lld %lld ms after they disconnected\n",
		      clients, left_ms);
	if (clients != 0)
		fail_msg("%lld clients still registered 2 s after all disconnected", clients);
	r = fd_usage_matching_proc(admin, p.pid, "after the clients left");
	/* Nothing leaked: only server connections may remain on top of idle. */
	assert_int_equal(harness_value_ll(r, 0, "open") - harness_value_ll(r, 0, "servers"),
			 idle_open - idle_servers);
	PQclear(r);
	fds_matching_proc(admin, p.pid, "after the clients left", &k);
	assert_int_equal(kind_count(&k, "client"), 0);

	free(c);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/* ---- the fd limit ---------------------------------------------------------- */

struct burst {
	int port;
	char db[64], user[64], password[64];
	pthread_barrier_t *go;
	struct harness_login login;
	int fd;               /* kept session, or -1 */
	long long ms;         /* how long the attempt took */
	pthread_t thread;
};

static void *burst_main(void *arg)
{
	struct burst *b = arg;
	long long t0;

	pthread_barrier_wait(b->go);
	t0 = harness_now_ms();
	b->fd = harness_raw_login_keep(b->port, b->db, b->user, b->password, 15000,
				       &b->login);
	b->ms = harness_now_ms() - t0;
	return NULL;
}

struct burst_result {
	int ok, refused, other;
	long long max_ms;
	char other_msg[256];
};

/* n concurrent raw logins, all released at once; sessions stay open. */
static void run_burst(const struct harness_pooler *p, struct burst *b, int n,
		      struct burst_result *res)
{
	const struct harness_fixture *fx = harness_fixture();
	pthread_barrier_t go;
	int i;

	memset(res, 0, sizeof(*res));
	pthread_barrier_init(&go, NULL, (unsigned)n);
	for (i = 0; i < n; i++) {
		memset(&b[i], 0, sizeof(b[i]));
		b[i].port = p->port;
		harness_fmt(b[i].db, sizeof(b[i].db), "%s", fx->db);
		harness_fmt(b[i].user, sizeof(b[i].user), "%s", fx->app_user);
		harness_fmt(b[i].password, sizeof(b[i].password), "%s", fx->app_password);
		b[i].go = &go;
		b[i].fd = -1;
		assert_int_equal(pthread_create(&b[i].thread, NULL, burst_main, &b[i]), 0);
	}
	for (i = 0; i < n; i++)
		pthread_join(b[i].thread, NULL);
	pthread_barrier_destroy(&go);
	for (i = 0; i < n; i++) {
		if (b[i].ms > res->max_ms)
			res->max_ms = b[i].ms;
		if (b[i].login.ok) {
			res->ok++;
		} else if (strcmp(b[i].login.sqlstate, "53300") == 0 &&
			   strstr(b[i].login.message, "too many connections") != NULL) {
			res->refused++;
		} else if (res->other++ == 0) {
			/* A long message is cut: the start says enough. */
			int n_out = snprintf(res->other_msg, sizeof(res->other_msg),
					     "sqlstate '%s' message '%.160s' after %lld ms",
					     b[i].login.sqlstate, b[i].login.message, b[i].ms);

			(void)n_out;
		}
	}
}

static void close_burst(struct burst *b, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (b[i].fd >= 0)
			close(b[i].fd);
		b[i].fd = -1;
	}
}

static void test_fds_limit_128_excess_clients_get_53300_console_answers_and_next_get_in(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = {
		.settings = "auth_type = trust\n"
			    "max_client_conn = 1000\n"
			    "default_pool_size = 2\n"
			    "listen_backlog = 1024\n",
		.nofile = LIMIT,
	};
	struct harness_pooler p;
	struct burst *b = calloc(BURST, sizeof(*b));
	struct burst_result res, res2;
	struct harness_login extra;
	PGconn *admin, *admin2;
	PGresult *r;
	long long t0, clients, waited;
	int batch;

	assert_non_null(b);
	harness_raise_nofile(4096);
	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	harness_pooler_start(&p, &cfg);
	admin = harness_connect_admin(&p);
	r = fd_usage_matching_proc(admin, p.pid, "at start");
	assert_int_equal(harness_value_ll(r, 0, "limit_soft"), LIMIT);
	assert_int_equal(harness_value_ll(r, 0, "limit_hard"), LIMIT);
	print_message("limit %d: open %s at start, max_clients_possible %s, headroom %s\n",
		      LIMIT, harness_value(r, 0, "open"),
		      harness_value(r, 0, "max_clients_possible"),
		      harness_value(r, 0, "headroom"));
	PQclear(r);

	run_burst(&p, b, BURST, &res);
	print_message("%d concurrent logins: %d in, %d refused with 53300, %d other; "
		      "slowest %lld ms\n", BURST, res.ok, res.refused, res.other,
		      res.max_ms);
	if (res.other != 0)
		fail_msg("%d logins neither got in nor got 53300; first: %s", res.other,
			 res.other_msg);
	if (res.max_ms > 5000)
		fail_msg("the slowest login attempt took %lld ms (none may hang)",
			 res.max_ms);
	if (res.ok < 100)
		fail_msg("only %d of %d clients got in under a limit of %d", res.ok,
			 BURST, LIMIT);
	assert_true(res.refused >= 1);
	assert_int_equal(res.ok + res.refused, BURST);

	/* The console still answers, and its numbers add up. */
	r = fd_usage_matching_proc(admin, p.pid, "at the limit");
	print_message("at the limit: open %s clients %s headroom %s refused_count %s "
		      "emfile_count %s\n", harness_value(r, 0, "open"),
		      harness_value(r, 0, "clients"), harness_value(r, 0, "headroom"),
		      harness_value(r, 0, "refused_count"),
		      harness_value(r, 0, "emfile_count"));
	assert_int_equal(harness_value_ll(r, 0, "clients"), res.ok);
	assert_true(harness_value_ll(r, 0, "refused_count") >= res.refused);
	assert_true(harness_value_ll(r, 0, "headroom") >= 0);
	assert_true(harness_value_ll(r, 0, "open") <= LIMIT);
	PQclear(r);
	/* A new console session still gets in (the reserve). */
	admin2 = harness_connect_admin(&p);
	r = harness_query(admin2, "SHOW FD_USAGE");
	assert_int_equal(PQntuples(r), 1);
	PQclear(r);
	PQfinish(admin2);
	/* One more client is refused at once. */
	t0 = harness_now_ms();
	harness_raw_login(p.port, fx->db, fx->app_user, fx->app_password, &extra);
	if (extra.ok || strcmp(extra.sqlstate, "53300") != 0)
		fail_msg("a client at the limit got %s (sqlstate '%s': %s)",
			 extra.ok ? "in" : "refused", extra.sqlstate, extra.message);
	assert_true(harness_now_ms() - t0 < 1000);

	/* They leave; the registry empties within two seconds... */
	t0 = harness_now_ms();
	close_burst(b, BURST);
	do {
		r = harness_query(admin, "SHOW FD_USAGE");
		clients = harness_value_ll(r, 0, "clients");
		PQclear(r);
		waited = harness_now_ms() - t0;
		if (clients != 0)
			harness_sleep_ms(20);
	} while (clients != 0 && waited < 2000);
	if (clients != 0)
		fail_msg("%lld clients still registered 2 s after they left", clients);

	/* ...and the next batch gets in at once, no accept stall. */
	batch = res.ok - 5;
	run_burst(&p, b, batch, &res2);
	print_message("next batch of %d: %d in, %d refused, slowest %lld ms "
		      "(%lld ms after the first batch left)\n", batch, res2.ok,
		      res2.refused, res2.max_ms, waited);
	if (res2.ok != batch)
		fail_msg("after the clients left only %d of %d new clients got in "
			 "(%d refused, %d other: %s)", res2.ok, batch, res2.refused,
			 res2.other, res2.other_msg);
	if (res2.max_ms > 1500)
		fail_msg("a login after the clients left took %lld ms", res2.max_ms);
	r = fd_usage_matching_proc(admin, p.pid, "second batch");
	assert_int_equal(harness_value_ll(r, 0, "clients"), batch);
	PQclear(r);
	close_burst(b, batch);

	free(b);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/*
 * The console may use the reserve up to 2 descriptors from the limit; past
 * that even the console is refused, and a burst of clients arriving then
 * must each still get 53300 (libuv's EMFILE fallback would close them
 * silently), and accepting must resume as soon as descriptors free up.
 */
static void test_fds_limit_with_consoles_holding_the_reserve_burst_gets_53300_not_eof(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = {
		.settings = "auth_type = trust\n"
			    "max_client_conn = 1000\n"
			    "default_pool_size = 2\n"
			    "listen_backlog = 1024\n",
		.nofile = LIMIT,
	};
	struct harness_pooler p;
	struct burst *b = calloc(BURST, sizeof(*b));
	struct burst *b2 = calloc(30, sizeof(*b2));
	struct burst_result res, res2;
	PGconn *admin, *consoles[LIMIT];
	PGresult *r;
	struct harness_login login;
	char ci[512];
	int n_consoles = 0, i;
	long long t0, open;

	assert_non_null(b);
	assert_non_null(b2);
	harness_raise_nofile(4096);
	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	harness_pooler_start(&p, &cfg);
	admin = harness_connect_admin(&p);

	/* Clients up to the client limit, then consoles into the reserve. */
	run_burst(&p, b, BURST, &res);
	assert_int_equal(res.other, 0);
	harness_conninfo(ci, sizeof(ci), p.port, harness_pooler_name(),
			 fx->admin_user, fx->admin_password);
	while (n_consoles < LIMIT) {
		PGconn *c = PQconnectdb(ci);

		if (PQstatus(c) != CONNECTION_OK) {
			print_message("console %d refused: %s", n_consoles + 1,
				      PQerrorMessage(c));
			PQfinish(c);
			break;
		}
		consoles[n_consoles++] = c;
	}
	r = fd_usage_matching_proc(admin, p.pid, "reserve used by consoles");
	open = harness_value_ll(r, 0, "open");
	print_message("%d clients + %d extra consoles: open %lld of %d, emfile_count %s\n",
		      res.ok, n_consoles, open, LIMIT, harness_value(r, 0, "emfile_count"));
	PQclear(r);
	if (n_consoles == 0)
		fail_msg("no console login fitted in the reserve after %d clients", res.ok);
	if (open < LIMIT - 3)
		fail_msg("consoles were refused with %lld of %d descriptors open",
			 open, LIMIT);

	/* Now a burst: every one must get 53300, none a silent close. */
	run_burst(&p, b2, 30, &res2);
	r = harness_query(admin, "SHOW FD_USAGE");
	print_message("burst of 30 at the limit: %d in, %d refused with 53300, %d other "
		      "(%s), slowest %lld ms; emfile_count %s\n", res2.ok, res2.refused,
		      res2.other, res2.other_msg, res2.max_ms,
		      harness_value(r, 0, "emfile_count"));
	PQclear(r);
	if (res2.other != 0 || res2.ok != 0)
		fail_msg("at the fd limit %d of 30 clients got something else than 53300 "
			 "(%d got in); first: %s", res2.other + res2.ok, res2.ok,
			 res2.other_msg);
	if (res2.max_ms > 5000)
		fail_msg("a refused login took %lld ms", res2.max_ms);

	/* Descriptors free up: the next client gets in at once. */
	for (i = 0; i < n_consoles; i++)
		PQfinish(consoles[i]);
	close_burst(b, BURST);
	close_burst(b2, 30);
	t0 = harness_now_ms();
	for (;;) {
		harness_raw_login(p.port, fx->db, fx->app_user, fx->app_password, &login);
		if (login.ok || harness_now_ms() - t0 > 3000)
			break;
		harness_sleep_ms(20);
	}
	print_message("first login after the descriptors freed: %s after %lld ms\n",
		      login.ok ? "in" : login.message, harness_now_ms() - t0);
	if (!login.ok || harness_now_ms() - t0 > 1000)
		fail_msg("no client got in within 1 s of descriptors freeing (%s)",
			 login.ok ? "late" : login.message);
	r = fd_usage_matching_proc(admin, p.pid, "after the limit");
	PQclear(r);

	free(b);
	free(b2);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_fds_open_equals_proc_and_nothing_unaccounted_at_idle,
					  harness_teardown),
		cmocka_unit_test_teardown(test_fds_open_equals_proc_with_1000_clients_and_after_they_leave,
					  harness_teardown),
		cmocka_unit_test_teardown(test_fds_limit_128_excess_clients_get_53300_console_answers_and_next_get_in,
					  harness_teardown),
		cmocka_unit_test_teardown(test_fds_limit_with_consoles_holding_the_reserve_burst_gets_53300_not_eof,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_fds", tests, NULL, NULL);
}
