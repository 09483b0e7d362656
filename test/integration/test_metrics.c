/*
 * test_metrics.c: the Prometheus endpoint (metrics_listen). A scrape after
 * real transactions answers 200 with the exposition content type, carries the
 * pool, stats, saturation and descriptor series with plausible values, passes
 * `promtool check metrics`, and its counters only grow; other paths and
 * methods get 404/405, an oversized head 431; scrapes left open do not block
 * shutdown; a bad metrics_listen stops pgmux with file:line.
 * pgmux only: PgBouncer has no such endpoint.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct http_reply {
	int status;
	char head[4096]; /* status line and headers, NUL-terminated */
	char *body;      /* malloc'd, NUL-terminated */
	size_t body_len;
};

/* Fails the test unless name is an executable somewhere in PATH. */
static void require_tool(const char *name, const char *package)
{
	const char *path = getenv("PATH");
	char dir[HARNESS_PATH_MAX], full[HARNESS_PATH_MAX];
	const char *p = path ? path : "";

	while (*p) {
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

static int connect_local(int port)
{
	struct sockaddr_in sa = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		fail_msg("connect to 127.0.0.1:%d: %s", port, strerror(errno));
	return fd;
}

/* Sends raw bytes, reads the reply to EOF (the server closes) within 10 s. */
static void http_exchange(int port, const char *req, size_t len, struct http_reply *r)
{
	long long deadline = harness_now_ms() + 10000;
	size_t cap = 65536, got = 0, off = 0;
	char *buf = malloc(cap);
	char *sep;
	int fd = connect_local(port);

	assert_non_null(buf);
	while (off < len) {
		ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail_msg("send to metrics port %d: %s", port, strerror(errno));
		off += (size_t)n;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - harness_now_ms();
		ssize_t n;

		if (left <= 0)
			fail_msg("metrics port %d: no complete reply within 10 s (%zu bytes)", port,
				 got);
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
		if (n < 0)
			fail_msg("recv from metrics port %d: %s", port, strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	sep = strstr(buf, "\r\n\r\n");
	if (sep == NULL)
		fail_msg("reply without an end of head: '%.200s'", buf);
	if ((size_t)(sep - buf) >= sizeof(r->head))
		fail_msg("reply head too long");
	memcpy(r->head, buf, (size_t)(sep - buf));
	r->head[sep - buf] = '\0';
	if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
		fail_msg("bad status line: '%.100s'", r->head);
	r->body_len = got - (size_t)(sep + 4 - buf);
	r->body = malloc(r->body_len + 1);
	assert_non_null(r->body);
	memcpy(r->body, sep + 4, r->body_len + 1);
	free(buf);
}

static void http_get(int port, const char *method, const char *target, struct http_reply *r)
{
	char req[512];

	harness_fmt(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
		    "User-Agent: pgmux-it\r\nAccept: */*\r\n\r\n", method, target, port);
	http_exchange(port, req, strlen(req), r);
}

/* The value of header name (case-insensitive), copied into out; false if absent. */
static bool http_header(const struct http_reply *r, const char *name, char *out, size_t len)
{
	const char *line = strstr(r->head, "\r\n");
	size_t n = strlen(name);

	while (line != NULL) {
		line += 2;
		if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
			const char *v = line + n + 1;
			size_t vl;

			while (*v == ' ')
				v++;
			vl = strcspn(v, "\r");
			harness_fmt(out, len, "%.*s", (int)vl, v);
			return true;
		}
		line = strstr(line, "\r\n");
	}
	return false;
}

/* The value of the sample whose name and labels are exactly `series`. */
static bool metric_value(const char *body, const char *series, double *out)
{
	size_t n = strlen(series);
	const char *line = body;

	while (line != NULL && *line) {
		if (strncmp(line, series, n) == 0 && line[n] == ' ') {
			*out = strtod(line + n + 1, NULL);
			return true;
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return false;
}

static double metric(const char *body, const char *series)
{
	double v = 0;

	if (!metric_value(body, series, &v))
		fail_msg("series %s missing from the scrape:\n%s", series, body);
	return v;
}

/* Pipes body into `promtool check metrics`; fails with its output if it objects. */
static void promtool_check(const struct harness_pooler *p, const char *body)
{
	char in[HARNESS_PATH_MAX], out[HARNESS_PATH_MAX];
	char *argv[] = { "promtool", "check", "metrics", NULL };
	char *text;
	int rc;

	require_tool("promtool", "prometheus");
	harness_path(in, sizeof(in), p, "scrape.txt");
	harness_path(out, sizeof(out), p, "promtool.out");
	harness_write_file(in, body);
	rc = harness_run(argv, NULL, in, out, out, 20);
	if (rc != 0) {
		text = harness_read_file(out, NULL);
		fail_msg("promtool check metrics exited %d:\n%s", rc, text);
	}
}

static void run_transactions(PGconn *c, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		harness_exec(c, "BEGIN");
		harness_exec(c, "SELECT 1");
		harness_exec(c, "COMMIT");
	}
}

static void metrics_settings(char *buf, size_t len, int *mport)
{
	*mport = harness_free_port();
	harness_fmt(buf, len, "metrics_listen = 127.0.0.1:%d\n", *mport);
}

#define POOL_LABELS "{database=\"appdb\",user=\"app\"}"

static void test_metrics_scrape_after_transactions(void **state)
{
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = { 0 };
	struct http_reply r1, r2;
	char settings[256], ctype[128], clen[32];
	double x1, x2, now = (double)time(NULL), bucket, inf, count;
	PGconn *app;
	int mport;

	metrics_settings(settings, sizeof(settings), &mport);
	cfg.settings = settings;
	harness_pooler_start(&p, &cfg);
	app = harness_connect_pooler(&p, NULL, NULL, NULL);
	run_transactions(app, 25);

	http_get(mport, "GET", "/metrics", &r1);
	assert_int_equal(r1.status, 200);
	if (!http_header(&r1, "Content-Type", ctype, sizeof(ctype)) ||
	    strcmp(ctype, CONTENT_TYPE) != 0)
		fail_msg("Content-Type is '%s', want '%s'", ctype, CONTENT_TYPE);
	assert_true(http_header(&r1, "Content-Length", clen, sizeof(clen)));
	assert_int_equal(strtoull(clen, NULL, 10), r1.body_len);
	assert_true(http_header(&r1, "Connection", ctype, sizeof(ctype)));
	assert_string_equal(ctype, "close");

	assert_true(metric(r1.body, "pgmux_up") == 1);
	if (strstr(r1.body, "pgmux_info{version=\"") == NULL)
		fail_msg("pgmux_info{version=...} missing");
	x1 = metric(r1.body, "pgmux_start_time_seconds");
	if (x1 < now - 3600 || x1 > now + 5)
		fail_msg("pgmux_start_time_seconds %.0f is not near now (%.0f)", x1, now);
	assert_true(metric(r1.body, "pgmux_clients") >= 1);
	assert_true(metric(r1.body, "pgmux_servers") >= 1);

	/* Descriptors: all accounted for, this scrape among them. */
	assert_true(metric(r1.body, "pgmux_fds_open") > 0);
	if (metric(r1.body, "pgmux_fds_unaccounted") != 0)
		fail_msg("pgmux_fds_unaccounted is not 0:\n%s", r1.body);
	assert_true(metric(r1.body, "pgmux_fds{kind=\"admin\"}") >= 1);
	/* 127.0.0.1, the unix socket and the metrics listener. */
	assert_true(metric(r1.body, "pgmux_fds{kind=\"listener\"}") >= 3);
	assert_true(metric(r1.body, "pgmux_fds{kind=\"client\"}") >= 1);
	assert_true(metric(r1.body, "pgmux_fds{kind=\"server\"}") >= 1);
	assert_true(metric(r1.body, "pgmux_fds_limit_soft") >=
		    metric(r1.body, "pgmux_fds_open"));
	metric(r1.body, "pgmux_fds_headroom");
	metric(r1.body, "pgmux_accept_emfile_total");
	metric(r1.body, "pgmux_clients_refused_total");

	/* Pool figures: the open app client, its transactions. */
	assert_true(metric(r1.body, "pgmux_pool_cl_active" POOL_LABELS) >= 1);
	assert_true(metric(r1.body, "pgmux_pool_cl_waiting" POOL_LABELS) == 0);
	assert_true(metric(r1.body, "pgmux_pool_size" POOL_LABELS) == 5);
	assert_true(metric(r1.body, "pgmux_pool_sv_active" POOL_LABELS) +
			    metric(r1.body, "pgmux_pool_sv_idle" POOL_LABELS) >=
		    1);
	metric(r1.body, "pgmux_pool_sv_login" POOL_LABELS);
	x1 = metric(r1.body, "pgmux_pool_transactions_total" POOL_LABELS);
	if (x1 < 25)
		fail_msg("pgmux_pool_transactions_total is %.0f after 25 transactions", x1);
	assert_true(metric(r1.body, "pgmux_pool_queries_total" POOL_LABELS) >= 75);
	assert_true(metric(r1.body, "pgmux_pool_received_bytes_total" POOL_LABELS) > 0);
	assert_true(metric(r1.body, "pgmux_pool_sent_bytes_total" POOL_LABELS) > 0);
	assert_true(metric(r1.body, "pgmux_pool_transaction_time_seconds_total" POOL_LABELS) >
		    0);
	assert_true(metric(r1.body, "pgmux_pool_query_time_seconds_total" POOL_LABELS) > 0);
	metric(r1.body, "pgmux_pool_wait_time_seconds_total" POOL_LABELS);
	assert_true(metric(r1.body, "pgmux_pool_server_assignments_total" POOL_LABELS) >= 25);
	assert_true(metric(r1.body, "pgmux_pool_client_logins_total" POOL_LABELS) >= 1);
	metric(r1.body, "pgmux_pool_saturated_seconds_total" POOL_LABELS);
	metric(r1.body, "pgmux_pool_cl_waiting_max" POOL_LABELS);
	metric(r1.body, "pgmux_pool_query_wait_timeouts_total" POOL_LABELS);
	metric(r1.body, "pgmux_pool_rejected_total" POOL_LABELS);
	x2 = metric(r1.body, "pgmux_pool_utilization_ratio" POOL_LABELS);
	assert_true(x2 >= 0 && x2 <= 1);

	/* The wait histogram: cumulative, +Inf equal to _count, one
	 * observation per server assignment. */
	bucket = metric(r1.body, "pgmux_pool_wait_seconds_bucket{database=\"appdb\","
				 "user=\"app\",le=\"60\"}");
	inf = metric(r1.body, "pgmux_pool_wait_seconds_bucket{database=\"appdb\","
			      "user=\"app\",le=\"+Inf\"}");
	count = metric(r1.body, "pgmux_pool_wait_seconds_count" POOL_LABELS);
	metric(r1.body, "pgmux_pool_wait_seconds_sum" POOL_LABELS);
	assert_true(bucket <= inf);
	assert_true(inf == count);
	assert_true(count >= 25);
	assert_true(metric(r1.body, "pgmux_pool_wait_seconds_bucket{database=\"appdb\","
				    "user=\"app\",le=\"0.0001\"}") <= bucket);
	if (strstr(r1.body, "# TYPE pgmux_pool_wait_seconds histogram\n") == NULL)
		fail_msg("pgmux_pool_wait_seconds is not typed histogram");

	promtool_check(&p, r1.body);

	/* Counters only grow; a query string is accepted. */
	run_transactions(app, 5);
	http_get(mport, "GET", "/metrics?name[]=pgmux_up", &r2);
	assert_int_equal(r2.status, 200);
	x2 = metric(r2.body, "pgmux_pool_transactions_total" POOL_LABELS);
	if (x2 < x1 + 5)
		fail_msg("transactions_total went from %.0f to %.0f over 5 transactions", x1,
			 x2);
	assert_true(metric(r2.body, "pgmux_pool_queries_total" POOL_LABELS) >=
		    metric(r1.body, "pgmux_pool_queries_total" POOL_LABELS) + 15);
	assert_true(metric(r2.body, "pgmux_pool_wait_seconds_count" POOL_LABELS) >=
		    count + 5);
	assert_true(metric(r2.body, "pgmux_start_time_seconds") ==
		    metric(r1.body, "pgmux_start_time_seconds"));
	promtool_check(&p, r2.body);
	free(r1.body);
	free(r2.body);
	PQfinish(app);
	harness_pooler_stop(&p, 20);
}

static void test_metrics_http_errors(void **state)
{
	static const char big_head_start[] = "GET /metrics HTTP/1.1\r\nX-Pad: ";
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = { 0 };
	struct http_reply r;
	char settings[256], allow[64];
	char *big;
	int mport;

	metrics_settings(settings, sizeof(settings), &mport);
	cfg.settings = settings;
	harness_pooler_start(&p, &cfg);

	http_get(mport, "GET", "/nope", &r);
	assert_int_equal(r.status, 404);
	free(r.body);
	http_get(mport, "GET", "/metricsx", &r);
	assert_int_equal(r.status, 404);
	free(r.body);
	http_get(mport, "POST", "/metrics", &r);
	assert_int_equal(r.status, 405);
	assert_true(http_header(&r, "Allow", allow, sizeof(allow)));
	free(r.body);

	/* HEAD: the headers of a GET, no body. */
	http_get(mport, "HEAD", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	free(r.body);

	http_exchange(mport, "garbage\r\n\r\n", 11, &r);
	assert_int_equal(r.status, 400);
	free(r.body);

	/* A head that never ends within the 8 KiB buffer: exactly 8192 bytes,
	 * so nothing is left unread when the server closes (no RST). */
	big = malloc(8192);
	assert_non_null(big);
	memset(big, 'a', 8192);
	memcpy(big, big_head_start, sizeof(big_head_start) - 1);
	http_exchange(mport, big, 8192, &r);
	assert_int_equal(r.status, 431);
	free(r.body);
	free(big);

	/* The endpoint still serves, and every scrape's fd went away. */
	http_get(mport, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_true(metric(r.body, "pgmux_fds_unaccounted") == 0);
	assert_true(metric(r.body, "pgmux_fds{kind=\"admin\"}") == 1);
	free(r.body);
	harness_pooler_stop(&p, 20);
}

/* Scrapes that connect and never send a request are counted as admin
 * descriptors and closed by shutdown (no leak, exit 0). */
static void test_metrics_open_scrapes_at_shutdown(void **state)
{
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = { 0 };
	struct http_reply r;
	char settings[256];
	int fds[3], mport, i;

	metrics_settings(settings, sizeof(settings), &mport);
	cfg.settings = settings;
	harness_pooler_start(&p, &cfg);
	for (i = 0; i < 3; i++)
		fds[i] = connect_local(mport);
	/* A half-sent request too. */
	assert_true(send(fds[2], "GET /met", 8, MSG_NOSIGNAL) == 8);
	http_get(mport, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_true(metric(r.body, "pgmux_fds{kind=\"admin\"}") == 4);
	assert_true(metric(r.body, "pgmux_fds_unaccounted") == 0);
	free(r.body);
	harness_pooler_stop(&p, 20);
	for (i = 0; i < 3; i++)
		close(fds[i]);
}

/* For a pooler that was meant to fail at startup, once the caller has
 * checked how: harness_pooler_stop still scans its output for sanitizer
 * reports (leaks on the failure path) and removes its files. */
static void finish_failed_pooler(struct harness_pooler *p)
{
	assert_int_equal(p->pid, 0);
	p->exit_status = 0;
	harness_pooler_stop(p, 5);
}

/* Line number (1-based) of the first line of path that starts with key. */
static int ini_line_of(const char *path, const char *key)
{
	char *text = harness_read_file(path, NULL);
	const char *line = text;
	int n = 1, found = 0;

	while (line && *line) {
		if (strncmp(line, key, strlen(key)) == 0) {
			found = n;
			break;
		}
		line = strchr(line, '\n');
		if (line) {
			line++;
			n++;
		}
	}
	free(text);
	return found;
}

static void test_metrics_bad_listen_value_stops_startup(void **state)
{
	static const char *const bad[] = {
		"127.0.0.1",          /* no port */
		"localhost:9127",     /* not numeric */
		"127.0.0.1:0",        /* port out of range */
		"127.0.0.1:70000",
		"::1:9127",           /* IPv6 without brackets */
		"[::1:9127",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct harness_pooler p;
		struct harness_pooler_cfg cfg = { 0 };
		char settings[256], where[HARNESS_PATH_MAX + 64];
		int line;

		harness_fmt(settings, sizeof(settings), "metrics_listen = %s\n", bad[i]);
		cfg.settings = settings;
		harness_pooler_prepare(&p, &cfg);
		line = ini_line_of(p.ini_path, "metrics_listen");
		assert_true(line > 0);
		harness_pooler_spawn(&p);
		if (!harness_pooler_wait_exit(&p, 10)) {
			harness_pooler_dump_log(&p);
			fail_msg("pgmux kept running with metrics_listen = %s", bad[i]);
		}
		if (!WIFEXITED(p.exit_status) || WEXITSTATUS(p.exit_status) == 0) {
			harness_pooler_dump_log(&p);
			fail_msg("metrics_listen = %s: wait status 0x%x, want a non-zero exit",
				 bad[i], p.exit_status);
		}
		harness_fmt(where, sizeof(where), "%s:%d: metrics_listen", p.ini_path, line);
		if (!harness_pooler_log_contains(&p, where)) {
			harness_pooler_dump_log(&p);
			fail_msg("metrics_listen = %s: no '%s' in the log", bad[i], where);
		}
		finish_failed_pooler(&p);
	}
}

/* A port already taken is reported the same way (and pgmux exits non-zero). */
static void test_metrics_port_in_use_stops_startup(void **state)
{
	struct harness_pooler a, b;
	struct harness_pooler_cfg cfg = { 0 };
	char settings[256], where[HARNESS_PATH_MAX + 64];
	int mport;

	metrics_settings(settings, sizeof(settings), &mport);
	cfg.settings = settings;
	harness_pooler_start(&a, &cfg);
	harness_pooler_prepare(&b, &cfg);
	harness_pooler_spawn(&b);
	if (!harness_pooler_wait_exit(&b, 10))
		fail_msg("a second pgmux started on metrics port %d", mport);
	assert_true(WIFEXITED(b.exit_status) && WEXITSTATUS(b.exit_status) != 0);
	harness_fmt(where, sizeof(where), "%s:%d: metrics_listen", b.ini_path,
		    ini_line_of(b.ini_path, "metrics_listen"));
	if (!harness_pooler_log_contains(&b, where)) {
		harness_pooler_dump_log(&b);
		fail_msg("no '%s' in the log", where);
	}
	finish_failed_pooler(&b);
	harness_pooler_stop(&a, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_metrics_scrape_after_transactions,
					  harness_teardown),
		cmocka_unit_test_teardown(test_metrics_http_errors, harness_teardown),
		cmocka_unit_test_teardown(test_metrics_open_scrapes_at_shutdown,
					  harness_teardown),
		cmocka_unit_test_teardown(test_metrics_bad_listen_value_stops_startup,
					  harness_teardown),
		cmocka_unit_test_teardown(test_metrics_port_in_use_stops_startup,
					  harness_teardown),
	};

	if (harness_is_pgbouncer()) {
		fprintf(stderr, "test_metrics: the /metrics endpoint is pgmux-only\n");
		return 1;
	}
	return cmocka_run_group_tests_name("integration_metrics", tests, NULL, NULL);
}
