/*
 * test_slow_reader.c: per-connection memory is bounded. A raw-socket client
 * with a small receive buffer asks for about 3 GB
 * (repeat('x', 1000) from generate_series(1, 3000000)) and drains it at
 * about 2 MB/s. The pooler must pass that backpressure on to the server
 * socket rather than buffer the result: its RSS stays within a fixed bound
 * of the baseline, and it reads from the server barely more than the client
 * has drained (rchar in /proc/<pid>/io). The PostgreSQL backend must be
 * seen waiting in ClientWrite too, though that alone proves little: a
 * pooler buffering without bound can also be slower than PostgreSQL.
 * Meanwhile a second client, on another server, is served without stalls.
 * When the slow client leaves mid-result its server is closed (never
 * handed to another client with a result half sent), and the RSS stays
 * bounded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#define BIG_QUERY \
	"SELECT repeat('x', 1000) FROM generate_series(1, 3000000) /* it_slow_reader */"
#define MARKER "it_slow_reader"
/* DataRow of one 1000-byte text column: int16 count, int32 length, bytes. */
#define ROW_LEN (4 + 2 + 4 + 1000)

/* The slow client: 4 KB every 2 ms (at most 2 MB/s), for 6 s. */
#define READ_CHUNK 4096
#define READ_EVERY_MS 2
#define SLOW_MS 6000
#define SAMPLE_EVERY_MS 100
#define OTHER_EVERY_MS 250
/* Its socket's receive buffer (the kernel doubles it). */
#define SLOW_RCVBUF (64 * 1024)

/*
 * Bounds. RSS: the figure, growth over the baseline after login.
 * Lead (bytes read from the server but not yet by the client): what the
 * kernel may hold between the two, the pooler's send buffer toward the
 * client (at most tcp_wmem's maximum, 4 MB by default) plus the client's
 * receive buffer, plus one pkt_buf; LEAD_SLACK covers the last two with
 * room to spare. Without backpressure the lead is hundreds of MB.
 */
#define RSS_GROWTH_MAX_KB (8 * 1024)
#define LEAD_SLACK (4LL * 1024 * 1024)
/* A query of the other client that takes longer than this is a stall. */
#define OTHER_MAX_MS 1000

/* ---- the pooler process, from /proc ------------------------------------------ */

/* One "Key: value" number from /proc/<pid>/<file>; fails if it is missing. */
static long long proc_value(pid_t pid, const char *file, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long long v = -1;
	FILE *f;

	harness_fmt(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "re");
	if (f == NULL)
		fail_msg("open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = atoll(line + klen + 1);
			break;
		}
	fclose(f);
	if (v < 0)
		fail_msg("%s has no %s", path, key);
	return v;
}

static long long rss_kb(pid_t pid)
{
	return proc_value(pid, "status", "VmRSS");
}

/* Bytes the process passed to read(): the pooler's socket reads. */
static long long rchar(pid_t pid)
{
	return proc_value(pid, "io", "rchar");
}

/* The kernel's cap on a TCP send buffer (third field of tcp_wmem). */
static long long tcp_wmem_max(void)
{
	long long lo = 0, def = 0, max = 0;
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "re");

	if (f == NULL || fscanf(f, "%lld %lld %lld", &lo, &def, &max) != 3)
		fail_msg("cannot read /proc/sys/net/ipv4/tcp_wmem");
	fclose(f);
	return max;
}

/* ---- the slow client's view of the result --------------------------------------- */

/*
 * Walks the backend messages as they trickle in, without keeping them:
 * RowDescription, then DataRows that must each be one 1000-'x' column. Any
 * other message (an error) or a malformed row is counted as bad.
 */
struct result_stream {
	unsigned char hdr[5];
	int hdr_got;
	char type;
	uint32_t body_len, body_off;
	long long rows, bad_msgs, bad_bytes;
	char first_bad;
};

static void stream_header(struct result_stream *s)
{
	s->type = (char)s->hdr[0];
	s->body_len = harness_get32(s->hdr + 1) - 4;
	s->body_off = 0;
	s->hdr_got = 0;
	if (s->type == 'D') {
		s->rows++;
		if (s->body_len + 4 == ROW_LEN)
			return;
	} else if (s->type == 'T' && s->rows == 0) {
		return;
	}
	if (s->bad_msgs++ == 0)
		s->first_bad = s->type;
}

/* A DataRow body is 0x0001, 0x000003e8, then 'x' * 1000. */
static bool row_byte_ok(uint32_t off, unsigned char b)
{
	static const unsigned char head[6] = { 0, 1, 0, 0, 0x03, 0xe8 };

	return off < 6 ? b == head[off] : b == 'x';
}

static void stream_feed(struct result_stream *s, const unsigned char *p, size_t n)
{
	while (n > 0) {
		size_t take;

		if (s->body_off == s->body_len && s->hdr_got < 5) {
			take = 5 - (size_t)s->hdr_got < n ? 5 - (size_t)s->hdr_got : n;
			memcpy(s->hdr + s->hdr_got, p, take);
			s->hdr_got += (int)take;
			p += take;
			n -= take;
			if (s->hdr_got == 5)
				stream_header(s);
			continue;
		}
		take = s->body_len - s->body_off < n ? s->body_len - s->body_off : n;
		if (s->type == 'D' && s->body_len + 4 == ROW_LEN) {
			size_t i;

			for (i = 0; i < take; i++)
				if (!row_byte_ok(s->body_off + (uint32_t)i, p[i]))
					s->bad_bytes++;
		}
		s->body_off += (uint32_t)take;
		p += take;
		n -= take;
	}
}

/* ---- helpers ------------------------------------------------------------------------- */

/* Sends a simple Query on the raw socket. */
static void raw_query(int fd, const char *sql)
{
	if (!harness_raw_send_msg(fd, 'Q', sql, strlen(sql) + 1))
		fail_msg("write Query: %s", strerror(errno));
}

/* Reads at most max bytes if any are there (never blocks); fails on EOF. */
static size_t raw_read_some(int fd, unsigned char *buf, size_t max)
{
	ssize_t n = recv(fd, buf, max, MSG_DONTWAIT);

	if (n > 0)
		return (size_t)n;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	fail_msg("the slow client's connection ended: %s", n == 0 ? "EOF" : strerror(errno));
	return 0;
}

/* ---- the test -------------------------------------------------------------------------- */

/* What the slow phase measured. */
struct slow_run {
	long long drained;       /* bytes the slow client read */
	long long rss_max_kb;
	long long lead_max;      /* pooler's reads minus the client's, at a sample */
	long long other_queries, other_max_ms;
	int client_write_samples, samples;
};

/*
 * Drains the slow socket a chunk at a time for SLOW_MS while sampling the
 * pooler and running the other client's queries in between.
 */
static void slow_phase(const struct harness_pooler *p, int fd, PGconn *other, PGconn *super,
		       int backend, long long rchar_base, struct result_stream *rs,
		       struct slow_run *run)
{
	long long t0 = harness_now_ms(), next_sample = t0, next_other = t0;
	unsigned char buf[READ_CHUNK];

	while (harness_now_ms() - t0 < SLOW_MS) {
		long long now = harness_now_ms();
		size_t n = raw_read_some(fd, buf, sizeof(buf));

		stream_feed(rs, buf, n);
		run->drained += (long long)n;
		if (now >= next_sample) {
			long long rss = rss_kb(p->pid);
			long long lead = rchar(p->pid) - rchar_base - run->drained;
			char *ev = harness_backend_activity(super, backend, "wait_event");

			if (rss > run->rss_max_kb)
				run->rss_max_kb = rss;
			if (lead > run->lead_max)
				run->lead_max = lead;
			run->client_write_samples += ev && strcmp(ev, "ClientWrite") == 0;
			run->samples++;
			free(ev);
			next_sample = now + SAMPLE_EVERY_MS;
		}
		if (now >= next_other) {
			long long q0 = harness_now_ms(), ms;

			assert_int_equal(harness_scalar_ll(other,
				"SELECT count(*) FROM generate_series(1, 1000)"), 1000);
			ms = harness_now_ms() - q0;
			if (ms > run->other_max_ms)
				run->other_max_ms = ms;
			run->other_queries++;
			next_other = now + OTHER_EVERY_MS;
		}
		harness_sleep_ms(READ_EVERY_MS);
	}
}

static void test_slow_reader_of_3gb_result_bounds_pooler_rss_and_stalls_nobody(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = { .settings = "default_pool_size = 5\n" };
	struct harness_login login;
	struct result_stream rs = { 0 };
	struct slow_run run = { 0 };
	PGconn *other, *admin, *super;
	long long rss_base, rss_after, rchar_base, lead_max = tcp_wmem_max() + LEAD_SLACK;
	int fd, rcvbuf = SLOW_RCVBUF, backend, other_pid, fds_base;

	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	harness_pooler_start(&p, &cfg);
	admin = harness_connect_admin(&p);
	super = harness_connect_pg_super(NULL);
	other = harness_connect_pooler(&p, NULL, NULL, NULL);
	other_pid = (int)harness_scalar_ll(other, "SELECT pg_backend_pid()");
	/* The other client holds its server for the whole test, so the slow
	 * client's query cannot land on it. */
	harness_exec(other, "BEGIN");
	assert_int_equal(harness_scalar_ll(other, "SELECT pg_backend_pid()"), other_pid);
	fds_base = harness_proc_fd_count(p.pid);

	fd = harness_raw_login_keep(p.port, fx->db, fx->app_user, fx->app_password, 5000,
				    &login);
	if (fd < 0)
		fail_msg("slow client login: %s %s", login.sqlstate, login.message);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	harness_sleep_ms(200);
	rss_base = rss_kb(p.pid);
	rchar_base = rchar(p.pid);

	raw_query(fd, BIG_QUERY);
	backend = harness_wait_running(super, MARKER, 5000);
	assert_int_not_equal(backend, other_pid);
	slow_phase(&p, fd, other, super, backend, rchar_base, &rs, &run);

	print_message("slow client drained %lld bytes (%lld rows) in %d ms; pooler RSS "
		      "%lld kB at baseline, max %lld kB (+%lld kB); read from the server at "
		      "most %lld bytes ahead of the client (bound %lld); backend in ClientWrite at %d of "
		      "%d samples; other client: %lld queries, slowest %lld ms\n",
		      run.drained, rs.rows, SLOW_MS, rss_base, run.rss_max_kb,
		      run.rss_max_kb - rss_base, run.lead_max, lead_max, run.client_write_samples,
		      run.samples, run.other_queries, run.other_max_ms);
	if (rs.bad_msgs != 0 || rs.bad_bytes != 0)
		fail_msg("the slow client's result is corrupt: %lld unexpected messages (first "
			 "'%c'), %lld wrong bytes in rows", rs.bad_msgs, rs.first_bad,
			 rs.bad_bytes);
	/* It really streamed: at least a few MB went through. */
	assert_true(run.drained > 2LL * 1024 * 1024);
	if (run.rss_max_kb - rss_base > RSS_GROWTH_MAX_KB)
		fail_msg("pooler RSS grew by %lld kB while a client read slowly (bound %d kB)",
			 run.rss_max_kb - rss_base, RSS_GROWTH_MAX_KB);
	/* PgBouncer reads with recv(), which rchar does not count. */
	if (!harness_is_pgbouncer() && run.lead_max > lead_max)
		fail_msg("the pooler read %lld bytes from the server that the client had not "
			 "drained (bound %lld): no backpressure", run.lead_max, lead_max);
	if (run.client_write_samples == 0)
		fail_msg("the backend never waited in ClientWrite in %d samples: nothing held "
			 "it back", run.samples);
	if (run.other_max_ms > OTHER_MAX_MS)
		fail_msg("the other client's query took %lld ms while the slow client read",
			 run.other_max_ms);

	/* The slow client leaves mid-result: its server must go, not be reused. */
	close(fd);
	harness_wait_backend_gone(super, backend, 5000, "the slow client left");
	harness_exec(other, "COMMIT");
	assert_int_equal(harness_scalar_ll(other, "SELECT pg_backend_pid()"), other_pid);
	assert_int_equal(harness_show_servers(admin, fx->db), 1);
	rss_after = rss_kb(p.pid);
	print_message("after the slow client left: RSS %lld kB (+%lld kB over baseline), "
		      "%d descriptors (%d before it came)\n", rss_after, rss_after - rss_base,
		      harness_proc_fd_count(p.pid), fds_base);
	if (rss_after - rss_base > RSS_GROWTH_MAX_KB)
		fail_msg("pooler RSS is %lld kB over the baseline after the slow client left",
			 rss_after - rss_base);
	harness_wait_fd_count(&p, fds_base, 3000, "the slow client came");
	PQfinish(other);
	PQfinish(super);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_slow_reader_of_3gb_result_bounds_pooler_rss_and_stalls_nobody,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_slow_reader", tests, NULL, NULL);
}
