/*
 * test_exporter.c: Debian's prometheus-pgbouncer-exporter (1.7, Python),
 * pointed at the pooler's console unchanged, starts, answers its own
 * /metrics with every family it knows and keeps working across scrapes,
 * with nothing but INFO lines in its log.
 *
 * What it needs, from its source (collectors.py, utils.py): a psycopg2
 * connection to database "pgbouncer" (password from PGPASSWORD), autocommit,
 * and per scrape "SHOW STATS;" (columns database, total_requests,
 * total_received, total_sent, total_query_time), "SHOW POOLS;" (database,
 * user, cl_active, cl_waiting), "SHOW DATABASES;" (database, pool_size,
 * reserve_pool) and "SHOW LISTS;" (two columns, rows databases, users, pools,
 * free_clients, used_clients, login_clients, free_servers, used_servers,
 * dns_names, dns_zones, dns_queries, dns_pending). total_requests (gone from
 * PgBouncer since 1.8) and reserve_pool (reserve_pool_size since 1.24) are
 * not in PgBouncer 1.25's output, so the console must add them after the
 * 1.25 columns. A missing key is a KeyError the exporter raises while
 * registering its collectors, and it exits; the column check below names
 * what is missing before that happens. It has no pgbouncer_up: an answered
 * /metrics with every family is its "up".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#define EXPORTER "prometheus-pgbouncer-exporter"

static pid_t exporter_pid; /* running exporter, for the teardown */

static void exporter_kill(void)
{
	if (exporter_pid > 0) {
		kill(exporter_pid, SIGKILL);
		waitpid(exporter_pid, NULL, 0);
		exporter_pid = 0;
	}
}

static int exporter_teardown(void **state)
{
	exporter_kill();
	return harness_teardown(state);
}

/* Fails the test unless name is an executable somewhere in PATH. */
static void require_tool(const char *name, const char *package)
{
	const char *p = getenv("PATH");
	char dir[HARNESS_PATH_MAX], full[HARNESS_PATH_MAX];

	for (p = p ? p : ""; *p;) {
		size_t n = strcspn(p, ":");

		if (n > 0 && n < sizeof(dir)) {
			memcpy(dir, p, n);
			dir[n] = '\0';
			harness_fmt(full, sizeof(full), "%s/%s", dir, name);
			if (access(full, X_OK) == 0)
				return;
		}
		p += n;
		if (*p == ':')
			p++;
	}
	fail_msg("%s is not installed (Debian package %s; scripts/deps.sh installs it)", name,
		 package);
}

/* ---- the console columns the exporter reads ---- */

struct needed_show {
	const char *command;
	const char *columns[6]; /* NULL-terminated */
	const char *why;
};

static const struct needed_show needed_shows[] = {
	{ "SHOW STATS;", { "database", "total_requests", "total_received", "total_sent",
			   "total_query_time", NULL },
	  "StatsCollector: pgbouncer_requests_total, _received_bytes_total, ..." },
	{ "SHOW POOLS;", { "database", "user", "cl_active", "cl_waiting", NULL },
	  "PoolsCollector: pgbouncer_active_clients, pgbouncer_waiting_clients" },
	{ "SHOW DATABASES;", { "database", "pool_size", "reserve_pool", NULL },
	  "DatabasesCollector: pgbouncer_pool_size, pgbouncer_reserve_pool" },
};

static const char *const needed_lists[] = {
	"databases",	"users",	"pools",	 "free_clients",
	"used_clients", "login_clients", "free_servers", "used_servers",
	"dns_names",	"dns_zones",	"dns_queries",	 "dns_pending",
};

/* Checks through libpq what the exporter will ask, and fails naming every
 * column or SHOW LISTS row that is missing. */
static void check_console_columns(const struct harness_pooler *p)
{
	const struct harness_fixture *fx = harness_fixture();
	char missing[2048] = "";
	PGconn *c = harness_connect_pooler(p, "pgbouncer", fx->admin_user, fx->admin_password);
	PGresult *r;
	size_t i, j;
	int row;

	for (i = 0; i < sizeof(needed_shows) / sizeof(needed_shows[0]); i++) {
		const struct needed_show *ns = &needed_shows[i];

		r = PQexec(c, ns->command);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("%s failed: %s", ns->command, PQresultErrorMessage(r));
		for (j = 0; ns->columns[j] != NULL; j++) {
			if (PQfnumber(r, ns->columns[j]) < 0) {
				size_t used = strlen(missing);

				harness_fmt(missing + used, sizeof(missing) - used,
					    "\n  %s has no column %s (%s)", ns->command,
					    ns->columns[j], ns->why);
			}
		}
		PQclear(r);
	}
	r = PQexec(c, "SHOW LISTS;");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != 2)
		fail_msg("SHOW LISTS must answer two columns (list, items): %s",
			 PQresultErrorMessage(r));
	for (j = 0; j < sizeof(needed_lists) / sizeof(needed_lists[0]); j++) {
		bool found = false;

		for (row = 0; row < PQntuples(r) && !found; row++)
			found = strcmp(PQgetvalue(r, row, 0), needed_lists[j]) == 0;
		if (!found) {
			size_t used = strlen(missing);

			harness_fmt(missing + used, sizeof(missing) - used,
				    "\n  SHOW LISTS has no row %s (ListsCollector)",
				    needed_lists[j]);
		}
	}
	PQclear(r);
	PQfinish(c);
	if (missing[0] != '\0')
		fail_msg("the console lacks what " EXPORTER " reads:%s", missing);
}

/* ---- the exporter process and its HTTP side ---- */

static void exporter_spawn(const struct harness_pooler *p, int http_port, const char *log_path)
{
	const struct harness_fixture *fx = harness_fixture();
	char pooler_port[16], listen_port[16];
	pid_t pid;

	harness_fmt(pooler_port, sizeof(pooler_port), "%d", p->port);
	harness_fmt(listen_port, sizeof(listen_port), "%d", http_port);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int in = open("/dev/null", O_RDONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || in < 0)
			_exit(126);
		dup2(in, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		/* configargparse also reads these from the environment. */
		unsetenv("CONFIG");
		unsetenv("PORT");
		unsetenv("HOST");
		unsetenv("PGBOUNCER_PORT");
		unsetenv("PGBOUNCER_USER");
		unsetenv("PGBOUNCER_HOST");
		unsetenv("PGBOUNCER_DATABASES");
		setenv("PGPASSWORD", fx->admin_password, 1);
		setenv("PGCONNECT_TIMEOUT", "10", 1);
		setenv("PYTHONUNBUFFERED", "1", 1);
		execlp(EXPORTER, EXPORTER, "--pgbouncer-host", "127.0.0.1", "--pgbouncer-port",
		       pooler_port, "--pgbouncer-user", fx->admin_user, "--host", "127.0.0.1",
		       "--port", listen_port, (char *)NULL);
		dprintf(2, "exec %s: %s\n", EXPORTER, strerror(errno));
		_exit(127);
	}
	exporter_pid = pid;
}

static void exporter_fail(const char *log_path, const char *what)
{
	char *log = harness_read_file(log_path, NULL);

	fail_msg("%s; exporter log:\n%s", what, log);
}

static bool port_accepts(int port)
{
	struct sockaddr_in sa = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int rc;

	if (fd < 0)
		return false;
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc == 0;
}

/* Waits until the exporter serves HTTP; fails with its log if it exits. */
static void exporter_wait_ready(int http_port, const char *log_path)
{
	long long deadline = harness_now_ms() + 15000;
	int status;

	while (harness_now_ms() < deadline) {
		if (waitpid(exporter_pid, &status, WNOHANG) == exporter_pid) {
			char what[128];

			exporter_pid = 0;
			harness_fmt(what, sizeof(what), EXPORTER " exited during startup "
				    "(wait status 0x%x)", status);
			exporter_fail(log_path, what);
		}
		if (port_accepts(http_port))
			return;
		usleep(50 * 1000);
	}
	exporter_fail(log_path, EXPORTER " did not listen within 15 s");
}

/* GET path over HTTP/1.0; returns the status and the body (malloc'd). */
static int http_get(int port, const char *path, char **body)
{
	struct sockaddr_in sa = { 0 };
	long long deadline = harness_now_ms() + 10000;
	size_t cap = 65536, got = 0;
	char *buf = malloc(cap);
	char req[256];
	char *sep;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int status = 0;

	assert_non_null(buf);
	assert_true(fd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		fail_msg("connect to the exporter on %d: %s", port, strerror(errno));
	harness_fmt(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n\r\n", path, port);
	assert_true(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - harness_now_ms();
		ssize_t n;

		if (left <= 0)
			fail_msg("the exporter did not answer %s within 10 s", path);
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		if (got + 1 >= cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = recv(fd, buf + got, cap - got - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	sep = strstr(buf, "\r\n\r\n");
	if (sep == NULL || sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		fail_msg("the exporter sent no HTTP reply to %s: '%.300s'", path, buf);
	*body = strdup(sep + 4);
	assert_non_null(*body);
	free(buf);
	return status;
}

/* The value of the sample whose name and labels are exactly `series`. */
static double metric(const char *body, const char *series)
{
	size_t n = strlen(series);
	const char *line = body;

	while (line != NULL && *line) {
		if (strncmp(line, series, n) == 0 && line[n] == ' ')
			return strtod(line + n + 1, NULL);
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	fail_msg("the exporter's scrape has no %s:\n%s", series, body);
	return 0;
}

static void run_queries(PGconn *c, int n)
{
	int i;

	for (i = 0; i < n; i++)
		harness_exec(c, "SELECT 1");
}

static void test_exporter_against_console(void **state)
{
	static const char *const list_families[] = {
		"pgbouncer_databases",	  "pgbouncer_users",	    "pgbouncer_pools",
		"pgbouncer_free_clients", "pgbouncer_used_clients", "pgbouncer_login_clients",
		"pgbouncer_free_servers", "pgbouncer_used_servers", "pgbouncer_dns_names",
		"pgbouncer_dns_zones",	  "pgbouncer_dns_queries",  "pgbouncer_dns_pending",
	};
	static const char *const log_errors[] = {
		"Traceback", "Error", "ERROR", "Exception", "CRITICAL", "WARNING",
	};
	struct harness_pooler p;
	char log_path[HARNESS_PATH_MAX];
	char *body1, *body2, *log;
	double req1, req2;
	PGconn *app;
	size_t i;
	int http_port, status;

	require_tool(EXPORTER, EXPORTER);
	harness_pooler_start(&p, NULL);
	app = harness_connect_pooler(&p, NULL, NULL, NULL);
	run_queries(app, 10);
	check_console_columns(&p);

	harness_path(log_path, sizeof(log_path), &p, "exporter.log");
	http_port = harness_free_port();
	exporter_spawn(&p, http_port, log_path);
	exporter_wait_ready(http_port, log_path);

	if (http_get(http_port, "/metrics", &body1) != 200)
		exporter_fail(log_path, "the exporter's /metrics did not answer 200");
	/* PoolsCollector: the open, idle app client counts as active. */
	assert_true(metric(body1, "pgbouncer_active_clients{database=\"appdb\",user=\"app\"}") >=
		    1);
	assert_true(metric(body1, "pgbouncer_waiting_clients{database=\"appdb\",user=\"app\"}") ==
		    0);
	/* StatsCollector. */
	req1 = metric(body1, "pgbouncer_requests_total{database=\"appdb\"}");
	if (req1 < 10)
		fail_msg("pgbouncer_requests_total is %.0f after 10 queries", req1);
	assert_true(metric(body1, "pgbouncer_received_bytes_total{database=\"appdb\"}") > 0);
	assert_true(metric(body1, "pgbouncer_sent_bytes_total{database=\"appdb\"}") > 0);
	assert_true(metric(body1, "pgbouncer_query_microseconds_total{database=\"appdb\"}") > 0);
	/* DatabasesCollector. */
	assert_true(metric(body1, "pgbouncer_pool_size{database=\"appdb\"}") == 5);
	assert_true(metric(body1, "pgbouncer_reserve_pool{database=\"appdb\"}") >= 0);
	/* ListsCollector. */
	for (i = 0; i < sizeof(list_families) / sizeof(list_families[0]); i++)
		assert_true(metric(body1, list_families[i]) >= 0);
	assert_true(metric(body1, "pgbouncer_pools") >= 1);
	assert_true(metric(body1, "pgbouncer_databases") >= 1);
	assert_true(metric(body1, "pgbouncer_used_clients") >= 1);

	/* The exporter keeps one console session: a second scrape must see
	 * the new queries through it. */
	run_queries(app, 5);
	if (http_get(http_port, "/metrics", &body2) != 200)
		exporter_fail(log_path, "the exporter's second /metrics did not answer 200");
	req2 = metric(body2, "pgbouncer_requests_total{database=\"appdb\"}");
	if (req2 < req1 + 5)
		fail_msg("pgbouncer_requests_total went from %.0f to %.0f over 5 queries", req1,
			 req2);

	/* SIGINT is its clean stop (KeyboardInterrupt closes the session). */
	kill(exporter_pid, SIGINT);
	for (i = 0; i < 100 && waitpid(exporter_pid, &status, WNOHANG) != exporter_pid; i++)
		usleep(50 * 1000);
	if (i == 100)
		exporter_fail(log_path, "the exporter did not stop within 5 s of SIGINT");
	exporter_pid = 0;
	log = harness_read_file(log_path, NULL);
	for (i = 0; i < sizeof(log_errors) / sizeof(log_errors[0]); i++) {
		if (strstr(log, log_errors[i]) != NULL)
			fail_msg("the exporter logged '%s':\n%s", log_errors[i], log);
	}
	free(log);
	free(body1);
	free(body2);
	PQfinish(app);
	harness_pooler_stop(&p, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_exporter_against_console, exporter_teardown),
	};

	return cmocka_run_group_tests_name("integration_exporter", tests, NULL, NULL);
}
