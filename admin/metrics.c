/*
 * metrics.c: the optional Prometheus endpoint (metrics_listen). A libuv TCP
 * listener accepts scrapes; each scrape owns its handles, a bounded request
 * buffer and, once answered, its response bytes, and is freed in its last
 * close callback. GET /metrics renders the pool, stats, saturation and
 * descriptor figures in the text exposition format 0.0.4 straight from
 * pooler state; nothing is cached between scrapes.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "admin_show.h"
#include "config.h"
#include "fds.h"
#include "list.h"
#include "log.h"
#include "pool.h"
#include "pooler.h"
#include "proto_build.h"
#include "util.h"
#include "version.h"

#define METRICS_REQ_MAX 8192             /* request line + headers */
#define METRICS_BODY_MAX (64u << 20)     /* far above any real pool count */
#define METRICS_SCRAPES_MAX 16           /* concurrent scrapes; more get 503 */
#define METRICS_TIMEOUT_MS 10000         /* a scrape that stalls is closed */
#define METRICS_BACKLOG 64
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_listener {
	uv_tcp_t tcp;
	bool tracked;          /* its fd is in the registry */
	char host[64];         /* as configured, without brackets */
	int port;
	struct list scrapes;   /* struct metrics_scrape.node, while not closing */
};

/*
 * One HTTP connection: read one request head, write one response, close.
 * Anything the client sends after the head is not read, so a client that
 * pipelines requests or sends a body may see a reset instead of the reply;
 * Prometheus and curl send a bare GET.
 */
struct metrics_scrape {
	uv_tcp_t tcp;
	uv_timer_t timer;      /* bounds both the request and the response */
	int handles_open;      /* handles whose close_cb has not run yet */
	bool closing;
	bool answered;         /* a response is queued; ignore further reads */
	struct list_node node; /* in metrics_listener.scrapes */
	uv_write_t write_req;
	uint8_t *resp;         /* the response, owned until the close callback */
	size_t req_len;
	char req[METRICS_REQ_MAX];
};

/* The listener, or NULL when metrics_listen is unset or after metrics_stop.
 * Module-private like the log file: g_pooler has no slot for it. */
static struct metrics_listener *metrics_listener;

static void metrics_on_connection(uv_stream_t *server, int status);
static void metrics_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void metrics_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void metrics_on_timeout(uv_timer_t *t);
static void metrics_on_write_done(uv_write_t *req, int status);
static void metrics_on_scrape_close(uv_handle_t *h);
static void metrics_on_listener_close(uv_handle_t *h);

/* ---- text building: everything goes through a sticky proto_buf ---- */

static void metrics_put(struct proto_buf *b, const char *s)
{
	proto_put_bytes(b, s, strlen(s));
}

static void metrics_putf(struct proto_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void metrics_putf(struct proto_buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->failed = true;
		return;
	}
	proto_put_bytes(b, tmp, (size_t)n);
}

/* A label value with \, " and newline escaped as the format requires. */
static void metrics_put_label_value(struct proto_buf *b, const char *v)
{
	const char *run = v;

	for (; *v; v++) {
		const char *esc = NULL;

		if (*v == '\\')
			esc = "\\\\";
		else if (*v == '"')
			esc = "\\\"";
		else if (*v == '\n')
			esc = "\\n";
		if (esc == NULL)
			continue;
		proto_put_bytes(b, run, (size_t)(v - run));
		metrics_put(b, esc);
		run = v + 1;
	}
	proto_put_bytes(b, run, (size_t)(v - run));
}

/*
 * Microseconds as decimal seconds, exactly ("1.500000"), so counters
 * derived from µs totals stay monotonic to the last digit. With trim, the
 * fraction loses its trailing zeros ("0.0001", "60") for bucket bounds.
 */
static void metrics_put_seconds(struct proto_buf *b, uint64_t us, bool trim)
{
	char frac[8];
	int n;

	n = snprintf(frac, sizeof(frac), "%06" PRIu64, us % 1000000u);
	if (n != 6) {
		b->failed = true;
		return;
	}
	if (trim) {
		while (n > 0 && frac[n - 1] == '0')
			frac[--n] = '\0';
	}
	if (n == 0)
		metrics_putf(b, "%" PRIu64, us / 1000000u);
	else
		metrics_putf(b, "%" PRIu64 ".%s", us / 1000000u, frac);
}

static void metrics_family(struct proto_buf *b, const char *name, const char *type,
			   const char *help)
{
	metrics_putf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* An unlabelled sample with an integer value. */
static void metrics_sample_u64(struct proto_buf *b, const char *name, uint64_t v)
{
	metrics_putf(b, "%s %" PRIu64 "\n", name, v);
}

static void metrics_scalar(struct proto_buf *b, const char *name, const char *type,
			   const char *help, uint64_t v)
{
	metrics_family(b, name, type, help);
	metrics_sample_u64(b, name, v);
}

/* ---- process and descriptor figures ---- */

static void metrics_render_process(struct proto_buf *b)
{
	metrics_scalar(b, "pgmux_up", "gauge", "Whether pgmux is serving (always 1 when scraped).",
		       1);
	metrics_family(b, "pgmux_info", "gauge", "pgmux build information.");
	metrics_put(b, "pgmux_info{version=\"");
	metrics_put_label_value(b, PGMUX_VERSION);
	metrics_put(b, "\"} 1\n");
	metrics_family(b, "pgmux_start_time_seconds", "gauge",
		       "Wall-clock time pgmux started, in seconds since the epoch.");
	metrics_put(b, "pgmux_start_time_seconds ");
	metrics_put_seconds(b, g_pooler.start_time_us, false);
	metrics_put(b, "\n");
	metrics_scalar(b, "pgmux_clients", "gauge",
		       "Client connections open, in any state (what max_client_conn limits).",
		       g_pooler.client_count);
	metrics_scalar(b, "pgmux_servers", "gauge",
		       "Server connections to PostgreSQL open, in any state.",
		       g_pooler.server_count);
}

static void metrics_render_fds(struct proto_buf *b)
{
	static const enum fds_kind kinds[] = {
		FDS_LISTENER, FDS_CLIENT, FDS_SERVER, FDS_ADMIN, FDS_CANCEL, FDS_INTERNAL,
	};
	struct admin_fd_usage u;
	uint64_t by_kind[6];
	size_t i;

	admin_fd_usage(&u);
	by_kind[0] = u.listeners;
	by_kind[1] = u.clients;
	by_kind[2] = u.servers;
	by_kind[3] = u.admin;
	by_kind[4] = u.cancel;
	by_kind[5] = u.internal;

	metrics_scalar(b, "pgmux_fds_open", "gauge",
		       "Descriptors open in the process (as /proc/self/fd counts them).", u.open);
	metrics_scalar(b, "pgmux_fds_limit_soft", "gauge", "RLIMIT_NOFILE soft limit.",
		       u.limit_soft);
	metrics_scalar(b, "pgmux_fds_limit_hard", "gauge", "RLIMIT_NOFILE hard limit.",
		       u.limit_hard);
	metrics_family(b, "pgmux_fds", "gauge", "Registered descriptors by kind.");
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		metrics_put(b, "pgmux_fds{kind=\"");
		metrics_put_label_value(b, fds_kind_str(kinds[i]));
		metrics_putf(b, "\"} %" PRIu64 "\n", by_kind[i]);
	}
	metrics_family(b, "pgmux_fds_unaccounted", "gauge",
		       "Open descriptors minus registered ones; anything but 0 is a leak.");
	metrics_putf(b, "pgmux_fds_unaccounted %" PRId64 "\n", u.unaccounted);
	metrics_scalar(b, "pgmux_fds_reserved", "gauge",
		       "Descriptors kept free for the admin console.", u.reserved);
	metrics_scalar(b, "pgmux_fds_headroom", "gauge",
		       "How many more clients can be accepted now.", u.headroom);
	metrics_scalar(b, "pgmux_fds_max_clients_possible", "gauge",
		       "Clients the descriptor limit allows after servers, listeners and reserve.",
		       u.max_clients_possible);
	metrics_scalar(b, "pgmux_accept_emfile_total", "counter",
		       "accept() failures with EMFILE or ENFILE.", u.emfile_count);
	metrics_scalar(b, "pgmux_clients_refused_total", "counter",
		       "Clients refused with SQLSTATE 53300 (descriptors or max_client_conn).",
		       u.refused_count);
	metrics_scalar(b, "pgmux_accept_backlog", "gauge",
		       "Connections waiting in the client listeners' accept queues.",
		       u.accept_backlog);
	metrics_scalar(b, "pgmux_listen_overflows_total", "counter",
		       "The kernel's TcpExt ListenOverflows (host-wide).", u.backlog_overflows);
}

/* ---- per-pool figures ---- */

enum metrics_pool_id {
	METRICS_CL_ACTIVE,
	METRICS_CL_WAITING,
	METRICS_SV_ACTIVE,
	METRICS_SV_IDLE,
	METRICS_SV_LOGIN,
	METRICS_POOL_SIZE,
	METRICS_XACTS,
	METRICS_QUERIES,
	METRICS_RECEIVED,
	METRICS_SENT,
	METRICS_XACT_TIME,
	METRICS_QUERY_TIME,
	METRICS_WAIT_TIME,
	METRICS_ASSIGNMENTS,
	METRICS_LOGINS,
	METRICS_CLIENT_PARSES,
	METRICS_SERVER_PARSES,
	METRICS_BINDS,
	METRICS_BUSY_TIME,
	METRICS_SATURATED,
	METRICS_CL_WAITING_MAX,
	METRICS_WAIT_TIMEOUTS,
	METRICS_REJECTED,
};

struct metrics_pool_family {
	enum metrics_pool_id id;
	const char *name;
	const char *type;
	bool us_as_seconds; /* the value is µs, exported in seconds */
	const char *help;
};

static const struct metrics_pool_family metrics_pool_families[] = {
	{ METRICS_CL_ACTIVE, "pgmux_pool_cl_active", "gauge", false,
	  "Clients logged in and not waiting for a server (SHOW POOLS cl_active)." },
	{ METRICS_CL_WAITING, "pgmux_pool_cl_waiting", "gauge", false,
	  "Clients waiting for a server (SHOW POOLS cl_waiting)." },
	{ METRICS_SV_ACTIVE, "pgmux_pool_sv_active", "gauge", false,
	  "Servers linked to a client." },
	{ METRICS_SV_IDLE, "pgmux_pool_sv_idle", "gauge", false, "Servers idle and reusable." },
	{ METRICS_SV_LOGIN, "pgmux_pool_sv_login", "gauge", false,
	  "Servers connecting or authenticating." },
	{ METRICS_POOL_SIZE, "pgmux_pool_size", "gauge", false,
	  "Most servers the pool may open." },
	{ METRICS_XACTS, "pgmux_pool_transactions_total", "counter", false,
	  "Transactions pooled." },
	{ METRICS_QUERIES, "pgmux_pool_queries_total", "counter", false, "Queries pooled." },
	{ METRICS_RECEIVED, "pgmux_pool_received_bytes_total", "counter", false,
	  "Bytes received from clients." },
	{ METRICS_SENT, "pgmux_pool_sent_bytes_total", "counter", false,
	  "Bytes sent to clients." },
	{ METRICS_XACT_TIME, "pgmux_pool_transaction_time_seconds_total", "counter", true,
	  "Time spent in transactions." },
	{ METRICS_QUERY_TIME, "pgmux_pool_query_time_seconds_total", "counter", true,
	  "Time spent running queries." },
	{ METRICS_WAIT_TIME, "pgmux_pool_wait_time_seconds_total", "counter", true,
	  "Time clients spent waiting for a server." },
	{ METRICS_ASSIGNMENTS, "pgmux_pool_server_assignments_total", "counter", false,
	  "Times a server was linked to a client." },
	{ METRICS_LOGINS, "pgmux_pool_client_logins_total", "counter", false,
	  "Client logins." },
	{ METRICS_CLIENT_PARSES, "pgmux_pool_client_parses_total", "counter", false,
	  "Parse messages from clients." },
	{ METRICS_SERVER_PARSES, "pgmux_pool_server_parses_total", "counter", false,
	  "Parse messages sent to servers." },
	{ METRICS_BINDS, "pgmux_pool_binds_total", "counter", false, "Bind messages." },
	{ METRICS_BUSY_TIME, "pgmux_pool_server_busy_seconds_total", "counter", true,
	  "Integral of active servers over time (rate / pool_size = utilization)." },
	{ METRICS_SATURATED, "pgmux_pool_saturated_seconds_total", "counter", true,
	  "Time with every server busy, the pool full and a client waiting." },
	{ METRICS_CL_WAITING_MAX, "pgmux_pool_cl_waiting_max", "gauge", false,
	  "Most clients ever waiting at once." },
	{ METRICS_WAIT_TIMEOUTS, "pgmux_pool_query_wait_timeouts_total", "counter", false,
	  "Clients dropped after query_wait_timeout." },
	{ METRICS_REJECTED, "pgmux_pool_rejected_total", "counter", false,
	  "Clients of this pool refused with SQLSTATE 53300." },
};

static uint64_t metrics_pool_value(const struct pool *p, enum metrics_pool_id id)
{
	switch (id) {
	case METRICS_CL_ACTIVE:
		return p->idle_clients.count + p->active_clients.count;
	case METRICS_CL_WAITING:
		return p->waiting_clients.count + p->welcome_clients.count;
	case METRICS_SV_ACTIVE:
		return p->active_servers.count;
	case METRICS_SV_IDLE:
		return p->idle_servers.count;
	case METRICS_SV_LOGIN:
		return p->login_servers.count;
	case METRICS_POOL_SIZE:
		return p->pool_size > 0 ? (uint64_t)p->pool_size : 0;
	case METRICS_XACTS:
		return p->stats.xact_count;
	case METRICS_QUERIES:
		return p->stats.query_count;
	case METRICS_RECEIVED:
		return p->stats.bytes_received;
	case METRICS_SENT:
		return p->stats.bytes_sent;
	case METRICS_XACT_TIME:
		return p->stats.xact_time_us;
	case METRICS_QUERY_TIME:
		return p->stats.query_time_us;
	case METRICS_WAIT_TIME:
		return p->stats.wait_time_us;
	case METRICS_ASSIGNMENTS:
		return p->stats.server_assignments;
	case METRICS_LOGINS:
		return p->stats.client_logins;
	case METRICS_CLIENT_PARSES:
		return p->stats.client_parse_count;
	case METRICS_SERVER_PARSES:
		return p->stats.server_parse_count;
	case METRICS_BINDS:
		return p->stats.bind_count;
	case METRICS_BUSY_TIME:
		return p->sat.busy_server_us;
	case METRICS_SATURATED:
		return p->sat.saturated_us;
	case METRICS_CL_WAITING_MAX:
		return p->sat.cl_waiting_max;
	case METRICS_WAIT_TIMEOUTS:
		return p->sat.query_wait_timeouts;
	case METRICS_REJECTED:
		return p->sat.rejected;
	}
	return 0;
}

/* `name{database="..",user=".."` without the closing brace, so callers can
 * add labels (le) before closing it. */
static void metrics_put_pool_series(struct proto_buf *b, const char *name, const struct pool *p)
{
	metrics_put(b, name);
	metrics_put(b, "{database=\"");
	metrics_put_label_value(b, p->db_name);
	metrics_put(b, "\",user=\"");
	metrics_put_label_value(b, p->user_name);
	metrics_put(b, "\"");
}

/* The wait for a server as a Prometheus histogram. The pool keeps
 * non-cumulative counts per bound; the format wants cumulative ones, and
 * +Inf is every recorded wait (including those above the last bound). */
static void metrics_render_wait_histogram(struct proto_buf *b)
{
	struct pool *p;
	struct pool *tmp;

	metrics_family(b, "pgmux_pool_wait_seconds", "histogram",
		       "Time each server assignment waited for a server.");
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		uint64_t cum = 0;
		uint64_t count;
		unsigned i;

		for (i = 0; i < POOL_WAIT_PROM_BUCKETS; i++) {
			cum += p->sat.wait_prom[i];
			metrics_put_pool_series(b, "pgmux_pool_wait_seconds_bucket", p);
			metrics_put(b, ",le=\"");
			metrics_put_seconds(b, pool_wait_prom_bounds_us[i], true);
			metrics_putf(b, "\"} %" PRIu64 "\n", cum);
		}
		/* Never below the last bound's count, so the buckets stay
		 * cumulative even if the two ever disagreed. */
		count = p->sat.wait.count > cum ? p->sat.wait.count : cum;
		metrics_put_pool_series(b, "pgmux_pool_wait_seconds_bucket", p);
		metrics_putf(b, ",le=\"+Inf\"} %" PRIu64 "\n", count);
		metrics_put_pool_series(b, "pgmux_pool_wait_seconds_sum", p);
		metrics_put(b, "} ");
		metrics_put_seconds(b, p->sat.wait.sum, false);
		metrics_put(b, "\n");
		metrics_put_pool_series(b, "pgmux_pool_wait_seconds_count", p);
		metrics_putf(b, "} %" PRIu64 "\n", count);
	}
}

static void metrics_render_pools(struct proto_buf *b)
{
	struct pool *p;
	struct pool *tmp;
	size_t f;

	/* Bring the saturation integrals up to now once, before any is read. */
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		pool_account(p);
	}
	/* The format wants each family's samples together: families outside,
	 * pools inside. */
	for (f = 0; f < sizeof(metrics_pool_families) / sizeof(metrics_pool_families[0]); f++) {
		const struct metrics_pool_family *mf = &metrics_pool_families[f];

		metrics_family(b, mf->name, mf->type, mf->help);
		HASH_ITER(hh, g_pooler.pools, p, tmp)
		{
			uint64_t v = metrics_pool_value(p, mf->id);

			metrics_put_pool_series(b, mf->name, p);
			metrics_put(b, "} ");
			if (mf->us_as_seconds)
				metrics_put_seconds(b, v, false);
			else
				metrics_putf(b, "%" PRIu64, v);
			metrics_put(b, "\n");
		}
	}
	metrics_family(b, "pgmux_pool_utilization_ratio", "gauge",
		       "Share of pool_size busy over the last stats period (0 to 1).");
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		metrics_put_pool_series(b, "pgmux_pool_utilization_ratio", p);
		metrics_putf(b, "} %.6f\n", admin_pool_utilization_pct(p) / 100.0);
	}
	metrics_render_wait_histogram(b);
}

static void metrics_render(struct proto_buf *b)
{
	metrics_render_process(b);
	metrics_render_fds(b);
	metrics_render_pools(b);
}


/* ---- HTTP ---- */

/* Single exit for a scrape: idempotent; memory goes in the last close_cb. */
static void metrics_scrape_close(struct metrics_scrape *s)
{
	uv_os_fd_t fd;

	if (s->closing)
		return;
	s->closing = true;
	if (list_node_linked(&s->node))
		list_remove(&metrics_listener->scrapes, &s->node);
	/* uv_close closes the descriptor synchronously: unregister it first. */
	if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0)
		fds_untrack(fd);
	uv_close((uv_handle_t *)&s->tcp, metrics_on_scrape_close);
	uv_close((uv_handle_t *)&s->timer, metrics_on_scrape_close);
}

/*
 * Queues the whole response (status line, headers, body) as one owned
 * buffer and stops reading; the scrape closes once the write completes, or
 * when the timer fires first. `extra` is more header lines, each ending in
 * CRLF, or NULL.
 */
static void metrics_respond(struct metrics_scrape *s, const char *status, const char *type,
			    const char *extra, const void *body, size_t body_len, bool send_body)
{
	struct proto_buf out;
	uv_buf_t buf;
	size_t len = 0;
	int rc;

	s->answered = true;
	uv_read_stop((uv_stream_t *)&s->tcp);
	proto_buf_init(&out, METRICS_BODY_MAX + 1024);
	metrics_putf(&out,
		     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		     "Connection: close\r\n\r\n",
		     status, type, body_len, extra ? extra : "");
	if (send_body)
		proto_put_bytes(&out, body, body_len);
	s->resp = proto_buf_steal(&out, &len);
	proto_buf_free(&out);
	if (s->resp == NULL) {
		log_warn("metrics: could not build a response of %zu bytes", body_len);
		metrics_scrape_close(s);
		return;
	}
	buf = uv_buf_init((char *)s->resp, (unsigned int)len);
	uv_timer_start(&s->timer, metrics_on_timeout, METRICS_TIMEOUT_MS, 0);
	rc = uv_write(&s->write_req, (uv_stream_t *)&s->tcp, &buf, 1, metrics_on_write_done);
	if (rc < 0) {
		log_warn("metrics: write failed: %s", uv_strerror(rc));
		metrics_scrape_close(s);
	}
}

/* An error page: a one-line plain-text body. */
static void metrics_respond_error(struct metrics_scrape *s, const char *status, const char *extra,
				  bool send_body)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "%s\n", status);

	if (n < 0 || (size_t)n >= sizeof(body))
		n = 0;
	metrics_respond(s, status, "text/plain; charset=utf-8", extra, body, (size_t)n, send_body);
}

static void metrics_respond_metrics(struct metrics_scrape *s, bool send_body)
{
	struct proto_buf body;

	proto_buf_init(&body, METRICS_BODY_MAX);
	metrics_render(&body);
	if (!proto_buf_ok(&body)) {
		log_warn("metrics: the exposition exceeds %u bytes or memory ran out",
			 METRICS_BODY_MAX);
		metrics_respond_error(s, "500 Internal Server Error", NULL, send_body);
	} else {
		metrics_respond(s, "200 OK", METRICS_CONTENT_TYPE, NULL, body.data, body.len,
				send_body);
	}
	proto_buf_free(&body);
}

/*
 * The head is complete (it ends in CRLF CRLF somewhere in s->req). Only its
 * request line matters: "METHOD SP target SP HTTP/1.x". GET and HEAD of
 * /metrics, with or without a query string, get the exposition.
 */
static void metrics_handle_request(struct metrics_scrape *s)
{
	char *eol = memmem(s->req, s->req_len, "\r\n", 2);
	char *method = s->req;
	char *target;
	char *version;
	char *sp;
	bool head;

	*eol = '\0';
	sp = strchr(method, ' ');
	if (sp == NULL) {
		metrics_respond_error(s, "400 Bad Request", NULL, true);
		return;
	}
	*sp = '\0';
	target = sp + 1;
	sp = strchr(target, ' ');
	if (sp == NULL) {
		metrics_respond_error(s, "400 Bad Request", NULL, true);
		return;
	}
	*sp = '\0';
	version = sp + 1;
	if (strncmp(version, "HTTP/1.", 7) != 0) {
		metrics_respond_error(s, "400 Bad Request", NULL, true);
		return;
	}
	head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		metrics_respond_error(s, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", true);
		return;
	}
	if (strcspn(target, "?") != 8 || strncmp(target, "/metrics", 8) != 0) {
		metrics_respond_error(s, "404 Not Found", NULL, !head);
		return;
	}
	metrics_respond_metrics(s, !head);
}

static void metrics_on_connection(uv_stream_t *server, int status)
{
	struct metrics_listener *l = container_of((uv_tcp_t *)server, struct metrics_listener, tcp);
	struct metrics_scrape *s;
	uv_os_fd_t fd;
	int rc;

	if (status < 0) {
		if (status == UV_EMFILE || status == UV_ENFILE)
			g_fds_counters.emfile++;
		log_warn("metrics: accept on %s:%d failed: %s", l->host, l->port,
			 uv_strerror(status));
		return;
	}
	s = xcalloc(1, sizeof(*s));
	list_node_init(&s->node);
	uv_tcp_init(g_pooler.loop, &s->tcp);
	uv_timer_init(g_pooler.loop, &s->timer);
	s->handles_open = 2;
	rc = uv_accept(server, (uv_stream_t *)&s->tcp);
	if (rc < 0) {
		log_warn("metrics: accept on %s:%d failed: %s", l->host, l->port, uv_strerror(rc));
		metrics_scrape_close(s);
		return;
	}
	if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0)
		fds_track(fd, FDS_ADMIN, s);
	list_append(&l->scrapes, &s->node);
	if (l->scrapes.count > METRICS_SCRAPES_MAX) {
		metrics_respond_error(s, "503 Service Unavailable", NULL, true);
		return;
	}
	uv_timer_start(&s->timer, metrics_on_timeout, METRICS_TIMEOUT_MS, 0);
	rc = uv_read_start((uv_stream_t *)&s->tcp, metrics_on_alloc, metrics_on_read);
	if (rc < 0) {
		log_warn("metrics: read failed: %s", uv_strerror(rc));
		metrics_scrape_close(s);
	}
}

/* Reads go straight into the request buffer, after what is already there. */
static void metrics_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct metrics_scrape *s = container_of((uv_tcp_t *)h, struct metrics_scrape, tcp);

	(void)hint;
	buf->base = s->req + s->req_len;
	buf->len = sizeof(s->req) - s->req_len;
}

static void metrics_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct metrics_scrape *s = container_of((uv_tcp_t *)stream, struct metrics_scrape, tcp);
	size_t from;

	(void)buf;
	if (nread == 0 || s->answered)
		return;
	if (nread < 0) {
		if (nread != UV_EOF && nread != UV_ECONNRESET)
			log_warn("metrics: read failed: %s", uv_strerror((int)nread));
		metrics_scrape_close(s);
		return;
	}
	/* Look again at the last 3 old bytes: the terminator may straddle reads. */
	from = s->req_len > 3 ? s->req_len - 3 : 0;
	s->req_len += (size_t)nread;
	if (memmem(s->req + from, s->req_len - from, "\r\n\r\n", 4) != NULL) {
		metrics_handle_request(s);
		return;
	}
	/* The buffer is full and the head has not ended: it never will fit. */
	if (s->req_len == sizeof(s->req))
		metrics_respond_error(s, "431 Request Header Fields Too Large", NULL, true);
}

static void metrics_on_timeout(uv_timer_t *t)
{
	struct metrics_scrape *s = container_of(t, struct metrics_scrape, timer);

	log_warn("metrics: closing a scrape stalled for %d s", METRICS_TIMEOUT_MS / 1000);
	metrics_scrape_close(s);
}

static void metrics_on_write_done(uv_write_t *req, int status)
{
	struct metrics_scrape *s = container_of(req, struct metrics_scrape, write_req);

	if (status < 0 && status != UV_ECANCELED && status != UV_EPIPE &&
	    status != UV_ECONNRESET)
		log_warn("metrics: write failed: %s", uv_strerror(status));
	metrics_scrape_close(s);
}

static void metrics_on_scrape_close(uv_handle_t *h)
{
	struct metrics_scrape *s;

	if (h->type == UV_TCP)
		s = container_of((uv_tcp_t *)h, struct metrics_scrape, tcp);
	else
		s = container_of((uv_timer_t *)h, struct metrics_scrape, timer);
	if (--s->handles_open > 0)
		return;
	free(s->resp);
	free(s);
}

static void metrics_on_listener_close(uv_handle_t *h)
{
	free(container_of((uv_tcp_t *)h, struct metrics_listener, tcp));
}

/* ---- start and stop ---- */

/*
 * "host:port" or "[v6]:port", host numeric (names are not resolved: the
 * listener must not depend on DNS at startup). Fills addr, host and port;
 * returns NULL, or why spec is wrong.
 */
static const char *metrics_parse_listen(const char *spec, struct sockaddr_storage *addr,
					char *host, size_t hostlen, int *port)
{
	const char *h;
	const char *colon;
	const char *p;
	size_t hlen;
	bool v6 = false;
	long v = 0;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (close == NULL)
			return "missing ']' after the IPv6 address";
		if (close[1] != ':')
			return "expected :port after ']'";
		h = spec + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
		v6 = true;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL)
			return "expected host:port";
		if (strchr(spec, ':') != colon)
			return "an IPv6 address needs brackets: [addr]:port";
		h = spec;
		hlen = (size_t)(colon - spec);
	}
	if (hlen == 0)
		return "the host is empty";
	if (hlen >= hostlen)
		return "the host is too long";
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	p = colon + 1;
	if (*p == '\0')
		return "the port is empty";
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return "the port is not a number";
		v = v * 10 + (*p - '0');
		if (v > 65535)
			return "the port is out of range (1-65535)";
	}
	if (v == 0)
		return "the port is out of range (1-65535)";
	*port = (int)v;
	memset(addr, 0, sizeof(*addr));
	if (v6 && uv_ip6_addr(host, *port, (struct sockaddr_in6 *)addr) != 0)
		return "the host is not a numeric IPv6 address";
	if (!v6 && uv_ip4_addr(host, *port, (struct sockaddr_in *)addr) != 0)
		return "the host is not a numeric IPv4 address (names are not resolved)";
	return NULL;
}

/*
 * The line of the config file that sets key, so a value the loader accepted
 * as a string but the listener cannot use is still reported as file:line.
 * The last setting wins, as in the loader. 0 if it cannot be found.
 */
static int metrics_cfg_line(const char *path, const char *key)
{
	size_t klen = strlen(key);
	bool line_start = true;
	char chunk[1024];
	int lineno = 0;
	int found = 0;
	FILE *f;

	if (path == NULL || (f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(chunk, sizeof(chunk), f) != NULL) {
		size_t n = strlen(chunk);
		const char *s = chunk;
		bool starts = line_start;

		line_start = n > 0 && chunk[n - 1] == '\n';
		if (!starts)
			continue; /* the rest of a line longer than chunk */
		lineno++;
		while (*s == ' ' || *s == '\t')
			s++;
		if (strncasecmp(s, key, klen) == 0 &&
		    (s[klen] == ' ' || s[klen] == '\t' || s[klen] == '='))
			found = lineno;
	}
	fclose(f);
	return found;
}

static void metrics_log_bad(const char *spec, const char *why)
{
	const char *path = g_pooler.cfg->path;
	int line = metrics_cfg_line(path, "metrics_listen");

	if (line > 0)
		log_error("%s:%d: metrics_listen = \"%s\": %s", path, line, spec, why);
	else
		log_error("%s: metrics_listen = \"%s\": %s", path ? path : "config", spec, why);
}

int metrics_start(void)
{
	const char *spec = g_pooler.cfg->metrics_listen;
	struct metrics_listener *l;
	struct sockaddr_storage addr;
	const char *why;
	char host[64];
	char reason[160];
	uv_os_fd_t fd;
	int port = 0;
	int rc;

	if (spec == NULL || spec[0] == '\0' || metrics_listener != NULL)
		return 0;
	why = metrics_parse_listen(spec, &addr, host, sizeof(host), &port);
	if (why != NULL) {
		metrics_log_bad(spec, why);
		return -1;
	}
	l = xcalloc(1, sizeof(*l));
	util_strlcpy(l->host, host, sizeof(l->host));
	l->port = port;
	list_init(&l->scrapes);
	uv_tcp_init(g_pooler.loop, &l->tcp);
	metrics_listener = l;
	rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&addr,
			 addr.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&l->tcp, METRICS_BACKLOG, metrics_on_connection);
	if (rc < 0) {
		snprintf(reason, sizeof(reason), "cannot listen: %s", uv_strerror(rc));
		metrics_log_bad(spec, reason);
		metrics_stop();
		return -1;
	}
	if (uv_fileno((uv_handle_t *)&l->tcp, &fd) == 0) {
		fds_track(fd, FDS_LISTENER, l);
		l->tracked = true;
	}
	if (addr.ss_family == AF_INET6)
		log_info("metrics on [%s]:%d", l->host, l->port);
	else
		log_info("metrics on %s:%d", l->host, l->port);
	return 0;
}

void metrics_stop(void)
{
	struct metrics_listener *l = metrics_listener;
	struct list_node *n;
	uv_os_fd_t fd;

	if (l == NULL)
		return;
	/* Scrapes leave the list as they close, so this terminates. */
	while ((n = list_first(&l->scrapes)) != NULL)
		metrics_scrape_close(container_of(n, struct metrics_scrape, node));
	metrics_listener = NULL;
	if (l->tracked && uv_fileno((uv_handle_t *)&l->tcp, &fd) == 0)
		fds_untrack(fd);
	uv_close((uv_handle_t *)&l->tcp, metrics_on_listener_close);
}
