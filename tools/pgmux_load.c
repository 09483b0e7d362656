/*
 * pgmux_load.c: pgmux-load's main. Checks everything that can be checked
 * before the run (options, conninfo, a test connection, descriptor and
 * port budgets, --source-addrs), forks the worker processes, then follows
 * them from its own loop: their tick records become the live progress line,
 * the CSV timeline and the moments to snapshot pgmux's console; their final
 * records are merged into the report printed (and written as JSON) at the
 * end. The parent never opens a client connection itself.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <uv.h>

#include "load_admin.h"
#include "load_bind.h"
#include "load_opts.h"
#include "load_report.h"
#include "load_worker.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/*
 * Descriptors a worker needs besides its clients: stdio, the pipe, the
 * loop's epoll/eventfd/signal pipe, libpq's occasional file (pgpass,
 * services). Generous on purpose: the check must not promise what fails.
 */
#define LOAD_MAIN_FD_RESERVE 32
#define LOAD_MAIN_TEST_TIMEOUT "5"     /* seconds, for the test connection */
#define LOAD_MAIN_READ_BUF 65536
#define LOAD_MAIN_MAX_SCRIPT (1u << 20)
#define LOAD_MAIN_CONNINFO_MAX 2048

struct load_main;

/* The parent's view of one worker process. */
struct main_worker {
	struct load_main *m;
	pid_t pid;
	uv_pipe_t pipe;         /* read end of the worker's pipe */
	struct load_wire_rx rx; /* what its records said so far */
	struct load_buf partial;/* bytes of a line not yet complete */
	bool malformed;         /* sent a line we could not parse */
};

struct load_main {
	struct load_opts opts;
	char *script;            /* file: workload contents */
	char *sql;               /* fixed transaction SQL, NULL for tx/idle */
	char **kw, **vals;       /* parsed conninfo, NULL-terminated */
	char conninfo_shown[LOAD_MAIN_CONNINFO_MAX]; /* password replaced */
	char workload[600];
	char sources_str[40];
	struct sockaddr_in *sources;
	FILE *json, *csv;
	struct main_worker *workers;
	long n_workers;
	unsigned workers_failed;  /* reported, then exited non-zero (e.g. a leak check) */
	int *read_fds;           /* read ends of the workers' pipes until the loop takes them */
	/* The parent's loop, created after the fork. */
	uv_loop_t loop;
	uv_timer_t tick;
	uv_signal_t sigint, sigterm;
	int open_pipes;
	bool forwarded_signal;
	char readbuf[LOAD_MAIN_READ_BUF];
	/* Timeline. */
	bool tty;
	bool progress_shown;
	uint64_t start_ns, prev_tick_ns, prev_tx_ok;
	struct hist tick_latency;
	uint64_t peak_seen;
	struct load_admin *admin;
	struct load_snapshot scratch; /* where a snapshot is taken before it is kept */
	struct load_report report;
};

static void main_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void main_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void main_on_pipe_close(uv_handle_t *h);
static void main_on_tick(uv_timer_t *t);
static void main_on_signal(uv_signal_t *s, int signum);
static void main_on_close(uv_handle_t *h);

static void main_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void main_errorf(const char *fmt, ...)
{
	va_list ap;

	fputs("pgmux-load: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- before the run: inputs ---- */

static int main_read_script(struct load_main *m)
{
	const char *path = m->opts.script_path;
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL) {
		main_errorf("--workload file:%s: %s", path, strerror(errno));
		return -1;
	}
	m->script = malloc(LOAD_MAIN_MAX_SCRIPT + 1);
	if (m->script == NULL) {
		fclose(f);
		main_errorf("out of memory");
		return -1;
	}
	n = fread(m->script, 1, LOAD_MAIN_MAX_SCRIPT + 1, f);
	fclose(f);
	if (n > LOAD_MAIN_MAX_SCRIPT) {
		main_errorf("--workload file:%s: larger than %u bytes", path, LOAD_MAIN_MAX_SCRIPT);
		return -1;
	}
	m->script[n] = '\0';
	if (strlen(m->script) != n || strspn(m->script, " \t\r\n") == n) {
		main_errorf("--workload file:%s: %s", path,
			    strlen(m->script) != n ? "contains a NUL byte" : "is empty");
		return -1;
	}
	return 0;
}

/* Appends "key=value" (quoted when needed) to m->conninfo_shown. */
static void main_show_param(struct load_main *m, const char *key, const char *val)
{
	char *out = m->conninfo_shown;
	size_t len = strlen(out), cap = sizeof(m->conninfo_shown);
	bool quote = val[0] == '\0' || strpbrk(val, " '\\") != NULL;
	const char *p;

	if (len + 1 >= cap)
		return;
	len += (size_t)snprintf(out + len, cap - len, "%s%s=%s", len ? " " : "", key,
				quote ? "'" : "");
	for (p = val; *p && len + 3 < cap; p++) {
		if (*p == '\'' || *p == '\\')
			out[len++] = '\\';
		out[len++] = *p;
	}
	if (len + 1 < cap && quote)
		out[len++] = '\'';
	out[len < cap ? len : cap - 1] = '\0';
}

/* Appends key=val at m->kw[*n] (the arrays have room); -1 when out of memory. */
static int main_add_param(struct load_main *m, size_t *n, const char *key, const char *val)
{
	m->kw[*n] = strdup(key);
	m->vals[*n] = strdup(val);
	if (m->kw[*n] == NULL || m->vals[*n] == NULL) {
		/* Both arrays are freed up to the first NULL key: keep the pair together. */
		free(m->kw[*n]);
		free(m->vals[*n]);
		m->kw[*n] = m->vals[*n] = NULL;
		main_errorf("out of memory");
		return -1;
	}
	(*n)++;
	return 0;
}

/* Parses the conninfo once: the keyword arrays every worker uses, and the shown form. */
static int main_conninfo(struct load_main *m)
{
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(m->opts.conninfo, &errmsg);
	PQconninfoOption *o;
	bool has_sslmode = false, has_gssencmode = false;
	size_t n = 0;

	if (opts == NULL) {
		char line[LOAD_MSG_MAX];

		load_report_short_message(errmsg ? errmsg : "out of memory", line, sizeof(line));
		main_errorf("bad connection string: %s", line);
		PQfreemem(errmsg);
		return -1;
	}
	for (o = opts; o->keyword != NULL; o++)
		n++;
	/* Room for the three parameters added below and the NULL. */
	m->kw = calloc(n + 4, sizeof(char *));
	m->vals = calloc(n + 4, sizeof(char *));
	if (m->kw == NULL || m->vals == NULL) {
		PQconninfoFree(opts);
		main_errorf("out of memory");
		return -1;
	}
	n = 0;
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (main_add_param(m, &n, o->keyword, o->val) != 0) {
			PQconninfoFree(opts);
			return -1;
		}
		main_show_param(m, o->keyword,
				strcmp(o->keyword, "password") == 0 ? "***" : o->val);
		if (strcmp(o->keyword, "sslmode") == 0)
			has_sslmode = true;
		if (strcmp(o->keyword, "gssencmode") == 0)
			has_gssencmode = true;
	}
	PQconninfoFree(opts);
	/* Used only when the conninfo sets no application_name. */
	if (main_add_param(m, &n, "fallback_application_name", "pgmux-load") != 0)
		return -1;
	/*
	 * sslmode=disable unless asked otherwise: libpq's "prefer" sends an
	 * SSLRequest first, and since libpq 15.10 an error answered to it
	 * (pgmux refusing a client at the descriptor limit answers before it
	 * reads anything) loses its text and SQLSTATE: "server sent an error
	 * response during SSL exchange". A load test should also not pay for
	 * TLS without asking. Say sslmode=prefer (or require) to get TLS.
	 */
	if (!has_sslmode && getenv("PGSSLMODE") == NULL) {
		if (main_add_param(m, &n, "sslmode", "disable") != 0)
			return -1;
		main_show_param(m, "sslmode", "disable");
	}
	/* Likewise GSS encryption: "prefer" looks for Kerberos credentials on every connect. */
	if (!has_gssencmode && getenv("PGGSSENCMODE") == NULL) {
		if (main_add_param(m, &n, "gssencmode", "disable") != 0)
			return -1;
		main_show_param(m, "gssencmode", "disable");
	}
	return 0;
}

/* ---- before the run: budgets ---- */

/*
 * Raises the soft descriptor limit to the hard one and checks that one
 * worker's share of clients fits; says how many fit and how many
 * processes would do if not.
 */
static int main_check_fds(struct load_main *m)
{
	const struct load_opts *o = &m->opts;
	long per_proc = (o->clients + o->procs - 1) / o->procs;
	struct rlimit rl;
	long fit, procs;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		main_errorf("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return -1;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max;

		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || (rlim_t)per_proc + LOAD_MAIN_FD_RESERVE <= rl.rlim_cur)
		return 0;
	fit = rl.rlim_cur > LOAD_MAIN_FD_RESERVE ? (long)rl.rlim_cur - LOAD_MAIN_FD_RESERVE : 0;
	if (fit == 0) {
		main_errorf("the descriptor limit (RLIMIT_NOFILE %llu) leaves no room for clients",
			    (unsigned long long)rl.rlim_cur);
		return -1;
	}
	procs = (o->clients + fit - 1) / fit;
	main_errorf("%ld clients per process need about %ld descriptors, but the limit is %llu "
		    "(soft raised to hard): at most %ld clients fit in one process. Use --procs "
		    "%ld%s, or raise the hard limit (ulimit -Hn as root).",
		    per_proc, per_proc + LOAD_MAIN_FD_RESERVE, (unsigned long long)rl.rlim_cur,
		    fit, procs, procs > LOAD_OPTS_MAX_PROCS ? " (more than --procs allows)" : "");
	return -1;
}

/* Local ports per (source address, destination): the ephemeral range. */
static long main_port_range(long *lo, long *hi)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	int n;

	*lo = 32768;
	*hi = 60999;
	if (f != NULL) {
		n = fscanf(f, "%ld %ld", lo, hi);
		fclose(f);
		if (n != 2 || *hi < *lo) {
			*lo = 32768;
			*hi = 60999;
		}
	}
	return *hi - *lo + 1;
}

/*
 * A TCP target gets at most one connection per local port per source
 * address: refuse a run that cannot fit, and say how many addresses would.
 */
static int main_check_ports(struct load_main *m)
{
	const struct load_opts *o = &m->opts;
	long lo, hi, range = main_port_range(&lo, &hi);
	long addrs = o->src_count ? (long)o->src_count : 1;
	long need;

	if (o->clients <= range * addrs)
		return 0;
	need = (o->clients + range - 1) / range;
	main_errorf("%ld clients to one server address need %ld local ports, but each source "
		    "address has %ld (ip_local_port_range %ld-%ld) and this run has %ld: use "
		    "--source-addrs with %ld addresses, e.g. 127.0.0.1-127.0.0.%ld",
		    o->clients, o->clients, range, lo, hi, addrs, need, need < 255 ? need : 254);
	return -1;
}

/* ---- before the run: the test connection ---- */

/* Runs sql on c; prints why and returns -1 if it failed. */
static int main_exec(PGconn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	char msg[LOAD_MSG_MAX];
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		load_report_short_message(PQresultErrorMessage(r), msg, sizeof(msg));
		main_errorf("%s: %s", what, msg);
		rc = -1;
	}
	PQclear(r);
	return rc;
}

static void main_ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* --source-addrs needs an IPv4 loopback server address and a working interposer. */
static int main_check_source_target(struct load_main *m, PGconn *c)
{
	const char *host = PQhost(c);
	const char *addr = PQhostaddr(c);

	if (host != NULL && host[0] == '/') {
		main_errorf("--source-addrs needs a TCP target; this one is the unix socket %s",
			    host);
		return -1;
	}
	if (addr == NULL || strncmp(addr, "127.", 4) != 0) {
		main_errorf("--source-addrs binds 127.x.y.z addresses, so the target must be an "
			    "IPv4 loopback address too (the test connection went to %s); use "
			    "host=127.0.0.1 rather than localhost",
			    addr && addr[0] ? addr : "an unknown address");
		return -1;
	}
	if (!load_bind_active()) {
		main_errorf("--source-addrs: this build's connect() interposer is not the one "
			    "libpq calls (static libpq?), so sockets cannot be bound");
		return -1;
	}
	return 0;
}

/*
 * One synchronous connection with a timeout before anything starts: a
 * wrong address, password or database fails here, with its message, and
 * not as thousands of identical failures. The tx tables are made here.
 */
static int main_test_connection(struct load_main *m)
{
	const char **k, **v;
	size_t n, i;
	PGconn *c;
	int rc = 0;

	for (n = 0; m->kw[n] != NULL; n++)
		;
	k = calloc(n + 2, sizeof(*k));
	v = calloc(n + 2, sizeof(*v));
	if (k == NULL || v == NULL) {
		free(k);
		free(v);
		main_errorf("out of memory");
		return -1;
	}
	/* First, so the user's own connect_timeout (later) wins. */
	k[0] = "connect_timeout";
	v[0] = LOAD_MAIN_TEST_TIMEOUT;
	for (i = 0; i < n; i++) {
		k[i + 1] = m->kw[i];
		v[i + 1] = m->vals[i];
	}
	c = PQconnectdbParams(k, v, 0);
	free(k);
	free(v);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		const char *msg = c ? PQerrorMessage(c) : "out of memory";
		char line[LOAD_MSG_MAX * 2];

		load_report_short_message(msg, line, sizeof(line));
		main_errorf("cannot connect to the target (%s): %s",
			    load_report_cause_name(load_report_classify(NULL, msg)), line);
		PQfinish(c);
		return -1;
	}
	/* "relation ... already exists, skipping" from the tx setup is no news. */
	PQsetNoticeProcessor(c, main_ignore_notice, NULL);
	if (m->opts.src_count > 0)
		rc = main_check_source_target(m, c);
	if (rc == 0 && PQhost(c) != NULL && PQhost(c)[0] != '/')
		rc = main_check_ports(m);
	if (rc == 0 && m->opts.workload == LOAD_WL_TX)
		rc = main_exec(c, LOAD_WORKER_TX_SETUP,
			       "tx workload: cannot create its tables (pgmux_load_accounts, "
			       "pgmux_load_branches)");
	PQfinish(c);
	return rc;
}

static int main_sources(struct load_main *m)
{
	const struct load_opts *o = &m->opts;
	char first[16], last[16];
	uint32_t i;

	if (o->src_count == 0)
		return 0;
	m->sources = calloc(o->src_count, sizeof(*m->sources));
	if (m->sources == NULL) {
		main_errorf("out of memory");
		return -1;
	}
	for (i = 0; i < o->src_count; i++) {
		m->sources[i].sin_family = AF_INET;
		m->sources[i].sin_addr.s_addr = htonl(o->src_first + i);
	}
	load_opts_source_str(o, 0, first, sizeof(first));
	load_opts_source_str(o, o->src_count - 1, last, sizeof(last));
	if (o->src_count > 1)
		(void)snprintf(m->sources_str, sizeof(m->sources_str), "%s-%s", first, last);
	else
		(void)snprintf(m->sources_str, sizeof(m->sources_str), "%s", first);
	return 0;
}

/* Opened before the fork so a bad path fails before the run; written only after. */
static int main_open_outputs(struct load_main *m)
{
	if (m->opts.json_path && (m->json = fopen(m->opts.json_path, "w")) == NULL) {
		main_errorf("--json %s: %s", m->opts.json_path, strerror(errno));
		return -1;
	}
	if (m->opts.csv_path && (m->csv = fopen(m->opts.csv_path, "w")) == NULL) {
		main_errorf("--csv %s: %s", m->opts.csv_path, strerror(errno));
		return -1;
	}
	return 0;
}

static int main_prepare(struct load_main *m)
{
	if (m->opts.workload == LOAD_WL_FILE && main_read_script(m) != 0)
		return -1;
	if (main_conninfo(m) != 0 || main_check_fds(m) != 0 || main_sources(m) != 0)
		return -1;
	if (main_test_connection(m) != 0)
		return -1;
	if (m->opts.workload != LOAD_WL_TX && m->opts.workload != LOAD_WL_IDLE) {
		m->sql = load_worker_fixed_sql(&m->opts, m->script);
		if (m->sql == NULL) {
			main_errorf("out of memory");
			return -1;
		}
	}
	return main_open_outputs(m);
}

/* ---- cleanup (parent and, after their run, workers) ---- */

/* Closes --json/--csv without writing (a run that did not happen). */
static void main_close_outputs(struct load_main *m)
{
	if (m->json)
		fclose(m->json);
	if (m->csv)
		fclose(m->csv);
	m->json = m->csv = NULL;
}

static void main_free(struct load_main *m)
{
	long i;

	for (i = 0; m->kw && m->kw[i]; i++)
		free(m->kw[i]);
	for (i = 0; m->vals && m->vals[i]; i++)
		free(m->vals[i]);
	free(m->kw);
	free(m->vals);
	free(m->script);
	free(m->sql);
	free(m->sources);
	for (i = 0; m->workers && i < m->n_workers; i++)
		load_buf_free(&m->workers[i].partial);
	free(m->workers);
	free(m->read_fds);
	load_admin_close(m->admin);
	load_report_free(&m->report);
	load_report_table_free(&m->scratch.fd_usage);
	load_report_table_free(&m->scratch.saturation);
	m->kw = m->vals = NULL;
	m->script = m->sql = NULL;
	m->sources = NULL;
	m->workers = NULL;
	m->read_fds = NULL;
	m->admin = NULL;
}

/* ---- the workers ---- */

/* In the child: run this worker's share, clean up, exit. Never returns. */
static void main_worker_child(struct load_main *m, long w, int out_fd)
{
	const struct load_opts *o = &m->opts;
	struct load_worker_cfg cfg = {
		.opts = o,
		.sql = m->sql,
		.kw = (const char *const *)m->kw,
		.vals = (const char *const *)m->vals,
		.clients = o->clients / o->procs + (w < o->clients % o->procs ? 1 : 0),
		.first_index = (uint64_t)w,
		.index_step = (uint64_t)o->procs,
		.rate = o->connect_rate / (double)o->procs,
		.sources = m->sources,
		.n_sources = o->src_count,
		.out_fd = out_fd,
	};
	long i;
	int rc;

	/* The files are the parent's: nothing was written, so closing flushes nothing. */
	main_close_outputs(m);
	/* Only the parent reads the other workers' pipes. */
	for (i = 0; i < w; i++)
		close(m->read_fds[i]);
	rc = load_worker_run(&cfg);
	close(out_fd);
	main_free(m);
	exit(rc);
}

/*
 * Forks the workers. Each gets a pipe; the parent keeps the read ends in
 * read_fds until its loop exists (it is created after the fork, so no
 * child inherits a loop).
 */
static int main_fork_workers(struct load_main *m)
{
	long w;

	m->n_workers = m->opts.procs;
	m->workers = calloc((size_t)m->n_workers, sizeof(*m->workers));
	m->read_fds = calloc((size_t)m->n_workers, sizeof(int));
	if (m->workers == NULL || m->read_fds == NULL) {
		main_errorf("out of memory");
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	for (w = 0; w < m->n_workers; w++) {
		int fds[2];
		pid_t pid;

		if (pipe(fds) != 0) {
			main_errorf("pipe: %s", strerror(errno));
			return -1;
		}
		pid = fork();
		if (pid < 0) {
			main_errorf("fork: %s", strerror(errno));
			close(fds[0]);
			close(fds[1]);
			return -1;
		}
		if (pid == 0) {
			close(fds[0]);
			main_worker_child(m, w, fds[1]);
		}
		close(fds[1]);
		m->workers[w].m = m;
		m->workers[w].pid = pid;
		m->read_fds[w] = fds[0];
		load_report_wire_rx_init(&m->workers[w].rx);
	}
	return 0;
}

/* ---- the parent's loop: records from the workers ---- */

static void main_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct main_worker *w = container_of(h, struct main_worker, pipe);

	(void)hint;
	/* One read at a time on one thread: the buffer is free again when read_cb returns. */
	buf->base = w->m->readbuf;
	buf->len = sizeof(w->m->readbuf);
}

static void main_worker_line(struct main_worker *w, const char *line)
{
	if (w->malformed)
		return;
	if (load_report_wire_line(&w->rx, line) != 0) {
		w->malformed = true;
		main_errorf("worker %d sent a record that does not parse: \"%.60s\"", (int)w->pid,
			    line);
	}
}

/* Splits the bytes into lines; keeps a trailing partial line for next time. */
static void main_worker_bytes(struct main_worker *w, const char *p, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t k = nl ? (size_t)(nl - p) : n;

		load_buf_printf(&w->partial, "%.*s", (int)k, p);
		if (nl == NULL)
			return;
		if (!w->partial.failed)
			main_worker_line(w, w->partial.p ? w->partial.p : "");
		else if (!w->malformed)
			main_errorf("out of memory reading worker %d", (int)w->pid);
		w->partial.len = 0;
		w->partial.failed = false;
		if (w->partial.p)
			w->partial.p[0] = '\0';
		p += k + 1;
		n -= k + 1;
	}
}

static void main_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct main_worker *w = container_of(s, struct main_worker, pipe);

	if (nread < 0) {
		if (nread != UV_EOF)
			main_errorf("reading worker %d: %s", (int)w->pid, uv_strerror((int)nread));
		uv_close((uv_handle_t *)&w->pipe, main_on_pipe_close);
		return;
	}
	main_worker_bytes(w, buf->base, (size_t)nread);
}

static void main_on_pipe_close(uv_handle_t *h)
{
	struct main_worker *w = container_of(h, struct main_worker, pipe);
	struct load_main *m = w->m;

	if (--m->open_pipes > 0)
		return;
	/* Every worker is done: the parent's own handles go too. */
	uv_close((uv_handle_t *)&m->tick, main_on_close);
	uv_close((uv_handle_t *)&m->sigint, main_on_close);
	uv_close((uv_handle_t *)&m->sigterm, main_on_close);
}

static void main_on_close(uv_handle_t *h)
{
	(void)h;
}

static void main_on_signal(uv_signal_t *s, int signum)
{
	struct load_main *m = s->data;
	long i;

	(void)signum;
	/* The workers end the run and still report; a terminal's ^C reaches them anyway. */
	if (m->forwarded_signal)
		return;
	m->forwarded_signal = true;
	for (i = 0; i < m->n_workers; i++)
		kill(m->workers[i].pid, SIGTERM);
}

/* ---- the parent's loop: one second of timeline ---- */

static void main_progress(struct load_main *m, const struct load_tl_row *row, uint64_t lost)
{
	char p99[32];

	if (row->p99_us < 1000)
		(void)snprintf(p99, sizeof(p99), "%llu us", (unsigned long long)row->p99_us);
	else
		(void)snprintf(p99, sizeof(p99), "%.1f ms", (double)row->p99_us / 1e3);
	printf("\r[%6.1fs] connected %llu  connecting %llu  failed %llu  lost %llu  tps %.0f  "
	       "p99 %s\033[K",
	       row->t_s, (unsigned long long)row->connected, (unsigned long long)row->connecting,
	       (unsigned long long)row->failed, (unsigned long long)lost, row->tps, p99);
	fflush(stdout);
	m->progress_shown = true;
}

/* A new high of connected clients: snapshot pgmux's console and keep it. */
static void main_peak_snapshot(struct load_main *m, uint64_t connected, uint64_t t_ms)
{
	struct load_snapshot tmp;

	if (connected <= m->peak_seen)
		return;
	m->peak_seen = connected;
	if (m->admin == NULL || load_admin_snapshot(m->admin, &m->scratch) != 0)
		return;
	/* Swap, so the previous snapshot's tables are freed (or reused) later. */
	tmp = m->report.snapshot;
	m->report.snapshot = m->scratch;
	m->scratch = tmp;
	m->report.snapshot.has = true;
	m->report.snapshot.t_ms = t_ms;
	m->report.snapshot.connected = connected;
}

static void main_on_tick(uv_timer_t *t)
{
	struct load_main *m = container_of(t, struct load_main, tick);
	uint64_t now = uv_hrtime(), tx = 0, lost = 0;
	struct load_tl_row row = { 0 };
	double dt = (double)(now - m->prev_tick_ns) / 1e9;
	long i;

	hist_reset(&m->tick_latency);
	for (i = 0; i < m->n_workers; i++) {
		struct load_wire_rx *rx = &m->workers[i].rx;

		if (!rx->have_tick)
			continue;
		row.connected += rx->tick.connected;
		row.connecting += rx->tick.connecting;
		row.failed += rx->tick.failed;
		lost += rx->tick.lost;
		tx += rx->tick.tx_ok;
		hist_merge(&m->tick_latency, &rx->tick_latency);
		hist_reset(&rx->tick_latency);
	}
	row.t_s = (double)(now - m->start_ns) / 1e9;
	row.tps = dt > 0 ? (double)(tx - m->prev_tx_ok) / dt : 0.0;
	row.p99_us = hist_quantile(&m->tick_latency, 0.99);
	m->prev_tx_ok = tx;
	m->prev_tick_ns = now;
	if (m->csv)
		load_report_csv_row(m->csv, &row);
	if (m->tty)
		main_progress(m, &row, lost);
	main_peak_snapshot(m, row.connected, (now - m->start_ns) / 1000000);
}

/*
 * Runs the parent's loop until every worker's pipe is closed. The first
 * timeline tick comes 1.1 s in, so the workers' first ticks (at 1 s) are
 * there.
 */
static int main_follow(struct load_main *m)
{
	long i;
	int rc = uv_loop_init(&m->loop);

	if (rc != 0) {
		main_errorf("uv_loop_init: %s", uv_strerror(rc));
		/* Nobody will read the pipes: stop the workers so they can be reaped. */
		for (i = 0; i < m->n_workers; i++) {
			close(m->read_fds[i]);
			kill(m->workers[i].pid, SIGTERM);
		}
		return -1;
	}
	for (i = 0; i < m->n_workers; i++) {
		struct main_worker *w = &m->workers[i];

		uv_pipe_init(&m->loop, &w->pipe, 0);
		m->open_pipes++;
		rc = uv_pipe_open(&w->pipe, m->read_fds[i]);
		if (rc == 0)
			rc = uv_read_start((uv_stream_t *)&w->pipe, main_on_alloc, main_on_read);
		if (rc != 0) {
			main_errorf("worker %d pipe: %s", (int)w->pid, uv_strerror(rc));
			uv_close((uv_handle_t *)&w->pipe, main_on_pipe_close);
		}
	}
	uv_timer_init(&m->loop, &m->tick);
	uv_signal_init(&m->loop, &m->sigint);
	uv_signal_init(&m->loop, &m->sigterm);
	m->sigint.data = m;
	m->sigterm.data = m;
	uv_timer_start(&m->tick, main_on_tick, 1100, 1000);
	uv_signal_start(&m->sigint, main_on_signal, SIGINT);
	uv_signal_start(&m->sigterm, main_on_signal, SIGTERM);
	uv_run(&m->loop, UV_RUN_DEFAULT);
	rc = uv_loop_close(&m->loop);
	if (rc != 0) {
		main_errorf("uv_loop_close: %s (a handle leaked)", uv_strerror(rc));
		return -1;
	}
	return 0;
}

/* ---- after the run ---- */

/* Reaps the workers and merges the reports of those that finished theirs. */
static void main_collect(struct load_main *m)
{
	long i;

	load_report_totals_reset(&m->report.totals);
	for (i = 0; i < m->n_workers; i++) {
		struct main_worker *w = &m->workers[i];
		int status = 0;

		while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
			;
		if (w->rx.done && !w->malformed) {
			load_report_totals_merge(&m->report.totals, &w->rx.final);
			/* Its numbers count, but a worker that failed afterwards fails the run. */
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				main_errorf("worker %d reported, then exited with %s %d",
					    (int)w->pid, WIFEXITED(status) ? "status" : "signal",
					    WIFEXITED(status) ? WEXITSTATUS(status) :
								WTERMSIG(status));
				m->workers_failed++;
			}
			continue;
		}
		m->report.workers_missing++;
		if (WIFSIGNALED(status))
			main_errorf("worker %d was killed by signal %d", (int)w->pid,
				    WTERMSIG(status));
		else
			main_errorf("worker %d exited with status %d without a report", (int)w->pid,
				    WEXITSTATUS(status));
	}
	if (m->peak_seen > m->report.totals.peak_connected)
		m->report.totals.peak_connected = m->peak_seen;
}

static void main_fill_meta(struct load_main *m)
{
	struct load_meta *meta = &m->report.meta;
	const struct load_opts *o = &m->opts;

	load_opts_workload_str(o, m->workload, sizeof(m->workload));
	meta->conninfo = m->conninfo_shown;
	meta->clients = o->clients;
	meta->connect_rate = o->connect_rate;
	meta->duration_ms = o->duration_ms;
	meta->workload = m->workload;
	meta->workload_sql = o->workload == LOAD_WL_TX ? LOAD_WORKER_TX_DESCRIPTION : m->sql;
	meta->procs = o->procs;
	meta->sources = o->src_count ? m->sources_str : NULL;
	meta->n_sources = o->src_count;
	meta->think_ms = o->think_ms;
	meta->connect_timeout_ms = o->connect_timeout_ms;
}

static int main_write_outputs(struct load_main *m)
{
	int rc = 0;

	if (m->progress_shown)
		printf("\n");
	load_report_print(stdout, &m->report);
	fflush(stdout);
	if (m->json) {
		if (load_report_json(m->json, &m->report) != 0 || fclose(m->json) != 0) {
			main_errorf("--json %s: write failed", m->opts.json_path);
			rc = -1;
		}
		m->json = NULL;
	}
	if (m->csv) {
		if (fclose(m->csv) != 0) {
			main_errorf("--csv %s: write failed", m->opts.csv_path);
			rc = -1;
		}
		m->csv = NULL;
	}
	return rc;
}

int main(int argc, char **argv)
{
	static struct load_main m;
	char err[512];
	int rc;

	rc = load_opts_parse(&m.opts, argc, argv, err, sizeof(err));
	if (rc == LOAD_OPTS_HELP) {
		fputs(load_opts_usage(), stdout);
		return 0;
	}
	if (rc != LOAD_OPTS_OK) {
		main_errorf("%s", err);
		return 2;
	}
	/* A worker whose parent is gone gets EPIPE from write(), not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	if (main_prepare(&m) != 0) {
		main_close_outputs(&m);
		main_free(&m);
		return 1;
	}
	main_fill_meta(&m);
	m.tty = isatty(STDOUT_FILENO) == 1;
	hist_reset(&m.tick_latency);
	if (main_fork_workers(&m) != 0) {
		/* Workers already started stop when their pipe breaks. */
		main_close_outputs(&m);
		main_free(&m);
		return 1;
	}
	if (m.csv)
		load_report_csv_header(m.csv);
	m.start_ns = m.prev_tick_ns = uv_hrtime();
	m.admin = load_admin_open((const char *const *)m.kw, (const char *const *)m.vals,
				  m.opts.admin_user, m.opts.admin_password);
	rc = main_follow(&m);
	main_collect(&m);
	if (main_write_outputs(&m) != 0)
		rc = -1;
	if (m.report.workers_missing || m.workers_failed)
		rc = -1;
	main_free(&m);
	return rc == 0 ? 0 : 1;
}
