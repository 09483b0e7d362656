/*
 * load_report.c: failure classification, the counters a worker collects and
 * their merge, the worker -> parent line records, and the three writers
 * (summary, JSON, CSV). Workers and parent are the same binary, so the
 * records only need to be unambiguous, not portable; they are text anyway,
 * because a text line is easy to check by eye when a worker misbehaves.
 */
#include "load_report.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- classification ---- */

struct load_cause_info {
	const char *name;  /* JSON key and wire name */
	const char *label; /* human summary */
};

static const struct load_cause_info load_causes_info[LOAD_CAUSE_COUNT] = {
	[LOAD_CAUSE_ECONNREFUSED] = { "ECONNREFUSED", "ECONNREFUSED  connection refused" },
	[LOAD_CAUSE_ETIMEDOUT] = { "ETIMEDOUT", "ETIMEDOUT     timed out" },
	[LOAD_CAUSE_EMFILE] = { "EMFILE", "EMFILE        local descriptor limit" },
	[LOAD_CAUSE_EADDRNOTAVAIL] = { "EADDRNOTAVAIL", "EADDRNOTAVAIL no local port left" },
	[LOAD_CAUSE_53300] = { "53300", "53300         too_many_connections" },
	[LOAD_CAUSE_08006] = { "08006", "08006         connection_failure" },
	[LOAD_CAUSE_28P01] = { "28P01", "28P01         invalid_password" },
	[LOAD_CAUSE_UNFINISHED] = { "unfinished", "unfinished    still connecting at the end" },
	[LOAD_CAUSE_OTHER] = { "other", "other" },
};

const char *load_report_cause_name(enum load_cause c)
{
	if ((unsigned)c >= LOAD_CAUSE_COUNT)
		return "invalid";
	return load_causes_info[c].name;
}

static enum load_cause report_cause_of_sqlstate(const char *s)
{
	if (strcmp(s, "53300") == 0)
		return LOAD_CAUSE_53300;
	if (strcmp(s, "08006") == 0)
		return LOAD_CAUSE_08006;
	if (strcmp(s, "28P01") == 0)
		return LOAD_CAUSE_28P01;
	return LOAD_CAUSE_OTHER;
}

static bool report_is_sqlstate_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

/*
 * Finds the SQLSTATE libpq puts after the severity in verbose mode:
 * "FATAL:  53300: sorry, ..." (two spaces after the severity's colon). The
 * code is copied to out[6]; false if the message has none.
 */
static bool report_find_verbose_sqlstate(const char *m, char out[6])
{
	static const char *const severities[] = { "FATAL:  ", "ERROR:  ", "PANIC:  " };
	size_t i;

	for (i = 0; i < sizeof(severities) / sizeof(severities[0]); i++) {
		const char *p = m;

		while ((p = strstr(p, severities[i])) != NULL) {
			const char *c = p + strlen(severities[i]);
			int k;

			for (k = 0; k < 5 && report_is_sqlstate_char(c[k]); k++)
				;
			if (k == 5 && c[5] == ':' && c[6] == ' ') {
				memcpy(out, c, 5);
				out[5] = '\0';
				return true;
			}
			p = c;
		}
	}
	return false;
}

/* Message fragments -> cause, tried in order when no SQLSTATE is known. */
static const struct {
	const char *text;
	enum load_cause cause;
} load_report_texts[] = {
	/* libpq's own socket errors carry strerror() text. */
	{ "Connection refused", LOAD_CAUSE_ECONNREFUSED },
	{ "Connection timed out", LOAD_CAUSE_ETIMEDOUT },
	{ "timeout expired", LOAD_CAUSE_ETIMEDOUT },
	{ "Too many open files", LOAD_CAUSE_EMFILE },
	{ "Cannot assign requested address", LOAD_CAUSE_EADDRNOTAVAIL },
	/* PostgreSQL's and pgmux's 53300 texts. */
	{ "sorry, too many clients already", LOAD_CAUSE_53300 },
	{ "too many connections", LOAD_CAUSE_53300 },
	{ "no more connections allowed", LOAD_CAUSE_53300 },
	{ "remaining connection slots are reserved", LOAD_CAUSE_53300 },
	{ "password authentication failed", LOAD_CAUSE_28P01 },
	/* The link went away: libpq's texts for EOF, reset and broken pipe. */
	{ "server closed the connection unexpectedly", LOAD_CAUSE_08006 },
	{ "Connection reset by peer", LOAD_CAUSE_08006 },
	{ "Broken pipe", LOAD_CAUSE_08006 },
	{ "could not receive data from server", LOAD_CAUSE_08006 },
	{ "could not send data to server", LOAD_CAUSE_08006 },
	{ "no connection to the server", LOAD_CAUSE_08006 },
	{ "connection to server was lost", LOAD_CAUSE_08006 },
	{ "SSL SYSCALL error: EOF detected", LOAD_CAUSE_08006 },
};

enum load_cause load_report_classify(const char *sqlstate, const char *message)
{
	char code[6];
	size_t i;

	if (sqlstate != NULL && sqlstate[0] != '\0')
		return report_cause_of_sqlstate(sqlstate);
	if (message == NULL)
		return LOAD_CAUSE_OTHER;
	if (report_find_verbose_sqlstate(message, code))
		return report_cause_of_sqlstate(code);
	for (i = 0; i < sizeof(load_report_texts) / sizeof(load_report_texts[0]); i++)
		if (strstr(message, load_report_texts[i].text) != NULL)
			return load_report_texts[i].cause;
	return LOAD_CAUSE_OTHER;
}

void load_report_short_message(const char *message, char *out, size_t len)
{
	size_t n = 0;
	const char *p = message ? message : "";

	if (len == 0)
		return;
	/* Skip leading blank lines; stop at the end of the first real line. */
	while (*p == '\n' || *p == ' ' || *p == '\t')
		p++;
	while (p[n] != '\0' && p[n] != '\n' && n + 1 < len)
		n++;
	memcpy(out, p, n);
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t' || out[n - 1] == '\r'))
		n--;
	out[n] = '\0';
	for (n = 0; out[n] != '\0'; n++)
		if (iscntrl((unsigned char)out[n]))
			out[n] = ' ';
}

/* Adds count occurrences of msg to the table of other messages. */
static void report_other_add(struct load_causes *cs, const char *msg, uint64_t count)
{
	unsigned i;

	for (i = 0; i < cs->n_other; i++) {
		if (strcmp(cs->other[i].msg, msg) == 0) {
			cs->other[i].count += count;
			return;
		}
	}
	if (cs->n_other == LOAD_OTHER_MAX) {
		cs->other_unlisted += count;
		return;
	}
	(void)snprintf(cs->other[cs->n_other].msg, LOAD_MSG_MAX, "%s", msg);
	cs->other[cs->n_other].count = count;
	cs->n_other++;
}

void load_report_cause_add(struct load_causes *cs, enum load_cause cause, const char *message)
{
	char msg[LOAD_MSG_MAX];

	if ((unsigned)cause >= LOAD_CAUSE_COUNT)
		cause = LOAD_CAUSE_OTHER;
	cs->n[cause]++;
	if (cause != LOAD_CAUSE_OTHER)
		return;
	load_report_short_message(message, msg, sizeof(msg));
	report_other_add(cs, msg[0] ? msg : "(no message)", 1);
}

uint64_t load_report_causes_total(const struct load_causes *cs)
{
	uint64_t sum = 0;
	unsigned i;

	for (i = 0; i < LOAD_CAUSE_COUNT; i++)
		sum += cs->n[i];
	return sum;
}

/* ---- aggregation ---- */

void load_report_totals_reset(struct load_totals *t)
{
	memset(t, 0, sizeof(*t));
	hist_reset(&t->tx_latency);
	hist_reset(&t->connect_latency);
}

static void report_causes_merge(struct load_causes *dst, const struct load_causes *src)
{
	unsigned i;

	for (i = 0; i < LOAD_CAUSE_COUNT; i++)
		dst->n[i] += src->n[i];
	for (i = 0; i < src->n_other; i++)
		report_other_add(dst, src->other[i].msg, src->other[i].count);
	dst->other_unlisted += src->other_unlisted;
}

void load_report_totals_merge(struct load_totals *dst, const struct load_totals *src)
{
	dst->attempted += src->attempted;
	dst->connected += src->connected;
	dst->failed += src->failed;
	dst->lost += src->lost;
	dst->tx_ok += src->tx_ok;
	dst->tx_failed += src->tx_failed;
	/* Workers peak at about the same time: the sum is the best estimate. */
	dst->peak_connected += src->peak_connected;
	dst->src_bound += src->src_bound;
	dst->src_mismatch += src->src_mismatch;
	if (src->elapsed_ms > dst->elapsed_ms)
		dst->elapsed_ms = src->elapsed_ms;
	report_causes_merge(&dst->connect_fail, &src->connect_fail);
	report_causes_merge(&dst->lost_by, &src->lost_by);
	report_causes_merge(&dst->tx_fail_by, &src->tx_fail_by);
	hist_merge(&dst->tx_latency, &src->tx_latency);
	hist_merge(&dst->connect_latency, &src->connect_latency);
}

void load_report_table_free(struct load_table *t)
{
	int i;

	for (i = 0; i < t->ncols; i++)
		free(t->names[i]);
	for (i = 0; i < t->ncols * t->nrows; i++)
		free(t->values[i]);
	free(t->names);
	free(t->values);
	memset(t, 0, sizeof(*t));
}

void load_report_free(struct load_report *r)
{
	load_report_table_free(&r->snapshot.fd_usage);
	load_report_table_free(&r->snapshot.saturation);
	r->snapshot.has = false;
}

double load_report_tps(const struct load_totals *t)
{
	if (t->elapsed_ms == 0)
		return 0.0;
	return (double)t->tx_ok * 1000.0 / (double)t->elapsed_ms;
}

/* ---- growable buffer ---- */

void load_buf_printf(struct load_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap ? b->cap * 2 : 256;
			char *p;

			while (cap - b->len <= (size_t)n)
				cap *= 2;
			p = realloc(b->p, cap);
			if (p == NULL) {
				b->failed = true;
				return;
			}
			b->p = p;
			b->cap = cap;
		}
	}
}

void load_buf_free(struct load_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- worker -> parent records ---- */

/* " <sum> <max> <k> i:c i:c ..." for the k non-empty buckets of h. */
static void wire_hist(struct load_buf *b, const struct hist *h)
{
	unsigned i, k = 0;

	for (i = 0; i < HIST_BUCKETS; i++)
		if (h->buckets[i])
			k++;
	load_buf_printf(b, " %llu %llu %u", (unsigned long long)h->sum,
			(unsigned long long)h->max, k);
	for (i = 0; i < HIST_BUCKETS; i++)
		if (h->buckets[i])
			load_buf_printf(b, " %u:%llu", i, (unsigned long long)h->buckets[i]);
}

void load_report_wire_tick(struct load_buf *b, const struct load_tick *t)
{
	load_buf_printf(b, "T %llu %llu %llu %llu %llu %llu %llu", (unsigned long long)t->t_ms,
			(unsigned long long)t->attempted, (unsigned long long)t->connected,
			(unsigned long long)t->connecting, (unsigned long long)t->failed,
			(unsigned long long)t->lost, (unsigned long long)t->tx_ok);
	wire_hist(b, &t->latency);
	load_buf_printf(b, "\n");
}

/* kind: 'c' connect failures, 'l' lost, 't' transaction failures. */
static void wire_causes(struct load_buf *b, char kind, const struct load_causes *cs)
{
	char msg[LOAD_MSG_MAX];
	unsigned i;

	for (i = 0; i < LOAD_CAUSE_COUNT; i++)
		if (cs->n[i])
			load_buf_printf(b, "C %c %u %llu\n", kind, i, (unsigned long long)cs->n[i]);
	for (i = 0; i < cs->n_other; i++) {
		/* Already one line; this keeps a stray control character from ending it. */
		load_report_short_message(cs->other[i].msg, msg, sizeof(msg));
		load_buf_printf(b, "O %c %llu %s\n", kind, (unsigned long long)cs->other[i].count,
				msg);
	}
	if (cs->other_unlisted)
		load_buf_printf(b, "U %c %llu\n", kind, (unsigned long long)cs->other_unlisted);
}

void load_report_wire_final(struct load_buf *b, const struct load_totals *t)
{
	load_buf_printf(b, "R %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu\n",
			(unsigned long long)t->attempted, (unsigned long long)t->connected,
			(unsigned long long)t->failed, (unsigned long long)t->lost,
			(unsigned long long)t->tx_ok, (unsigned long long)t->tx_failed,
			(unsigned long long)t->peak_connected, (unsigned long long)t->src_bound,
			(unsigned long long)t->src_mismatch, (unsigned long long)t->elapsed_ms);
	wire_causes(b, 'c', &t->connect_fail);
	wire_causes(b, 'l', &t->lost_by);
	wire_causes(b, 't', &t->tx_fail_by);
	load_buf_printf(b, "H tx");
	wire_hist(b, &t->tx_latency);
	load_buf_printf(b, "\nH conn");
	wire_hist(b, &t->connect_latency);
	load_buf_printf(b, "\nE\n");
}

void load_report_wire_rx_init(struct load_wire_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
	hist_reset(&rx->tick.latency);
	hist_reset(&rx->tick_latency);
	load_report_totals_reset(&rx->final);
}

/* Reads " <number>" at *p and advances; -1 if there is none. */
static int wire_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	unsigned long long v;
	char *end;

	if (*s != ' ' || s[1] < '0' || s[1] > '9')
		return -1;
	errno = 0;
	v = strtoull(s + 1, &end, 10);
	if (errno != 0)
		return -1;
	*out = v;
	*p = end;
	return 0;
}

/* Parses what wire_hist() wrote into h (reset first). */
static int wire_parse_hist(const char **p, struct hist *h)
{
	uint64_t sum, max, k, i, idx, count;
	char *end;

	hist_reset(h);
	if (wire_u64(p, &sum) != 0 || wire_u64(p, &max) != 0 || wire_u64(p, &k) != 0 ||
	    k > HIST_BUCKETS)
		return -1;
	for (i = 0; i < k; i++) {
		if (wire_u64(p, &idx) != 0 || idx >= HIST_BUCKETS || **p != ':')
			return -1;
		(*p)++;
		if (**p < '0' || **p > '9')
			return -1;
		errno = 0;
		count = strtoull(*p, &end, 10);
		if (errno != 0)
			return -1;
		*p = end;
		h->buckets[idx] += count;
		h->count += count;
	}
	h->sum = sum;
	h->max = max;
	return **p == '\0' ? 0 : -1;
}

static int wire_line_tick(struct load_wire_rx *rx, const char *p)
{
	struct load_tick *t = &rx->tick;

	if (wire_u64(&p, &t->t_ms) != 0 || wire_u64(&p, &t->attempted) != 0 ||
	    wire_u64(&p, &t->connected) != 0 || wire_u64(&p, &t->connecting) != 0 ||
	    wire_u64(&p, &t->failed) != 0 || wire_u64(&p, &t->lost) != 0 ||
	    wire_u64(&p, &t->tx_ok) != 0 || wire_parse_hist(&p, &t->latency) != 0)
		return -1;
	hist_merge(&rx->tick_latency, &t->latency);
	rx->have_tick = true;
	return 0;
}

static int wire_line_totals(struct load_wire_rx *rx, const char *p)
{
	struct load_totals *t = &rx->final;

	if (wire_u64(&p, &t->attempted) != 0 || wire_u64(&p, &t->connected) != 0 ||
	    wire_u64(&p, &t->failed) != 0 || wire_u64(&p, &t->lost) != 0 ||
	    wire_u64(&p, &t->tx_ok) != 0 || wire_u64(&p, &t->tx_failed) != 0 ||
	    wire_u64(&p, &t->peak_connected) != 0 || wire_u64(&p, &t->src_bound) != 0 ||
	    wire_u64(&p, &t->src_mismatch) != 0 || wire_u64(&p, &t->elapsed_ms) != 0)
		return -1;
	return *p == '\0' ? 0 : -1;
}

static struct load_causes *wire_kind(struct load_wire_rx *rx, char kind)
{
	switch (kind) {
	case 'c':
		return &rx->final.connect_fail;
	case 'l':
		return &rx->final.lost_by;
	case 't':
		return &rx->final.tx_fail_by;
	default:
		return NULL;
	}
}

/* "C k cause count", "O k count message", "U k count": p is after the letter. */
static int wire_line_cause(struct load_wire_rx *rx, char type, const char *p)
{
	struct load_causes *cs;
	uint64_t a, b;

	if (p[0] != ' ' || (cs = wire_kind(rx, p[1])) == NULL)
		return -1;
	p += 2;
	switch (type) {
	case 'C':
		if (wire_u64(&p, &a) != 0 || a >= LOAD_CAUSE_COUNT || wire_u64(&p, &b) != 0 ||
		    *p != '\0')
			return -1;
		cs->n[a] += b;
		return 0;
	case 'O':
		if (wire_u64(&p, &a) != 0 || *p != ' ')
			return -1;
		report_other_add(cs, p + 1, a);
		return 0;
	case 'U':
		if (wire_u64(&p, &a) != 0 || *p != '\0')
			return -1;
		cs->other_unlisted += a;
		return 0;
	default:
		return -1;
	}
}

static int wire_line_hist(struct load_wire_rx *rx, const char *p)
{
	if (strncmp(p, " tx ", 4) == 0) {
		p += 3;
		return wire_parse_hist(&p, &rx->final.tx_latency);
	}
	if (strncmp(p, " conn ", 6) == 0) {
		p += 5;
		return wire_parse_hist(&p, &rx->final.connect_latency);
	}
	return -1;
}

int load_report_wire_line(struct load_wire_rx *rx, const char *line)
{
	if (line[0] == '\0' || rx->done)
		return -1;
	switch (line[0]) {
	case 'T':
		return wire_line_tick(rx, line + 1);
	case 'R':
		return wire_line_totals(rx, line + 1);
	case 'C':
	case 'O':
	case 'U':
		return wire_line_cause(rx, line[0], line + 1);
	case 'H':
		return wire_line_hist(rx, line + 1);
	case 'E':
		if (line[1] != '\0')
			return -1;
		rx->done = true;
		return 0;
	default:
		return -1;
	}
}

/* ---- human summary ---- */

/* "850 us", "1.25 ms", "2.50 s" into buf. */
static const char *fmt_us(char *buf, size_t len, uint64_t us)
{
	if (us < 1000)
		(void)snprintf(buf, len, "%llu us", (unsigned long long)us);
	else if (us < 1000000)
		(void)snprintf(buf, len, "%.2f ms", (double)us / 1e3);
	else
		(void)snprintf(buf, len, "%.2f s", (double)us / 1e6);
	return buf;
}

static void print_latency(FILE *f, const char *what, const struct hist *h)
{
	char a[32], b[32], c[32], d[32], e[32];

	if (h->count == 0) {
		fprintf(f, "  %-14s (none)\n", what);
		return;
	}
	fprintf(f, "  %-14s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", what,
		fmt_us(a, sizeof(a), hist_quantile(h, 0.50)),
		fmt_us(b, sizeof(b), hist_quantile(h, 0.90)),
		fmt_us(c, sizeof(c), hist_quantile(h, 0.99)),
		fmt_us(d, sizeof(d), hist_quantile(h, 0.999)), fmt_us(e, sizeof(e), h->max));
}

/* Causes of one kind; every cause when all is set, else the non-zero ones. */
static void print_causes(FILE *f, const struct load_causes *cs, bool all)
{
	unsigned i;

	for (i = 0; i < LOAD_CAUSE_COUNT; i++) {
		if (!all && cs->n[i] == 0)
			continue;
		fprintf(f, "    %-44s %10llu\n", load_causes_info[i].label,
			(unsigned long long)cs->n[i]);
	}
	for (i = 0; i < cs->n_other; i++)
		fprintf(f, "      %8llu x %s\n", (unsigned long long)cs->other[i].count,
			cs->other[i].msg);
	if (cs->other_unlisted)
		fprintf(f, "      %8llu x (other messages)\n",
			(unsigned long long)cs->other_unlisted);
}

static void print_header(FILE *f, const struct load_meta *m, const struct load_totals *t)
{
	char rate[32];

	if (m->connect_rate > 0)
		(void)snprintf(rate, sizeof(rate), "%.0f/s", m->connect_rate);
	else
		(void)snprintf(rate, sizeof(rate), "unlimited");
	fprintf(f, "pgmux-load: %ld clients, workload %s, %.1f s (asked %.1f s), "
		   "connect rate %s, %ld process%s\n",
		m->clients, m->workload, (double)t->elapsed_ms / 1000.0,
		(double)m->duration_ms / 1000.0, rate, m->procs, m->procs == 1 ? "" : "es");
	fprintf(f, "target: %s\n", m->conninfo);
}

static void print_connections(FILE *f, const struct load_totals *t)
{
	fprintf(f, "\nconnections\n");
	fprintf(f, "  %-46s %10llu\n", "attempted", (unsigned long long)t->attempted);
	fprintf(f, "  %-46s %10llu   (peak %llu open at once)\n", "connected",
		(unsigned long long)t->connected, (unsigned long long)t->peak_connected);
	fprintf(f, "  %-46s %10llu\n", "failed", (unsigned long long)t->failed);
	if (t->failed)
		print_causes(f, &t->connect_fail, true);
	fprintf(f, "  %-46s %10llu\n", "lost after connecting", (unsigned long long)t->lost);
	if (t->lost)
		print_causes(f, &t->lost_by, false);
	print_latency(f, "connect time", &t->connect_latency);
}

static void print_transactions(FILE *f, const struct load_totals *t)
{
	fprintf(f, "\ntransactions\n");
	fprintf(f, "  %-46s %10llu   (%.1f/s)\n", "completed", (unsigned long long)t->tx_ok,
		load_report_tps(t));
	fprintf(f, "  %-46s %10llu\n", "failed", (unsigned long long)t->tx_failed);
	if (t->tx_failed)
		print_causes(f, &t->tx_fail_by, false);
	print_latency(f, "latency", &t->tx_latency);
}

static void print_table(FILE *f, const char *title, const struct load_table *t)
{
	int r, c;

	fprintf(f, "  %s\n", title);
	if (t->nrows == 1) {
		/* One row (FD_USAGE): name = value pairs read better than a wide table. */
		for (c = 0; c < t->ncols; c++)
			fprintf(f, "    %-24s %s\n", t->names[c],
				t->values[c] ? t->values[c] : "NULL");
		return;
	}
	fprintf(f, "   ");
	for (c = 0; c < t->ncols; c++)
		fprintf(f, " %s", t->names[c]);
	fprintf(f, "\n");
	for (r = 0; r < t->nrows; r++) {
		fprintf(f, "   ");
		for (c = 0; c < t->ncols; c++) {
			const char *v = t->values[r * t->ncols + c];

			fprintf(f, " %s", v ? v : "NULL");
		}
		fprintf(f, "\n");
	}
}

void load_report_print(FILE *f, const struct load_report *r)
{
	const struct load_totals *t = &r->totals;

	print_header(f, &r->meta, t);
	if (r->workers_missing)
		fprintf(f, "WARNING: %u worker process%s died without a report; "
			   "the numbers below miss their clients\n",
			r->workers_missing, r->workers_missing == 1 ? "" : "es");
	print_connections(f, t);
	if (r->meta.workload_sql != NULL)
		print_transactions(f, t);
	if (r->meta.sources != NULL)
		fprintf(f, "\nsource addresses %s (%u): %llu connections bound as asked, "
			   "%llu from another address\n",
			r->meta.sources, r->meta.n_sources, (unsigned long long)t->src_bound,
			(unsigned long long)t->src_mismatch);
	if (r->snapshot.has) {
		fprintf(f, "\npooler at peak (t = %.1f s, %llu connected)\n",
			(double)r->snapshot.t_ms / 1000.0,
			(unsigned long long)r->snapshot.connected);
		print_table(f, "SHOW FD_USAGE", &r->snapshot.fd_usage);
		print_table(f, "SHOW SATURATION", &r->snapshot.saturation);
	}
}

/* ---- JSON ---- */

static void json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	fputc('"', f);
	for (; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* True if s is a plain decimal number JSON accepts as is. */
static bool json_numeric(const char *s)
{
	bool digits = false, dot = false;

	if (*s == '-')
		s++;
	if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
		return false;
	for (; *s; s++) {
		if (*s >= '0' && *s <= '9') {
			digits = true;
		} else if (*s == '.' && !dot && digits) {
			dot = true;
			if (s[1] < '0' || s[1] > '9')
				return false;
		} else {
			return false;
		}
	}
	return digits;
}

static void json_latency(FILE *f, const struct hist *h)
{
	fprintf(f, "{\"count\": %llu, \"mean\": %.1f, \"p50\": %llu, \"p90\": %llu, "
		   "\"p99\": %llu, \"p99.9\": %llu, \"max\": %llu}",
		(unsigned long long)h->count, h->count ? (double)h->sum / (double)h->count : 0.0,
		(unsigned long long)hist_quantile(h, 0.50),
		(unsigned long long)hist_quantile(h, 0.90),
		(unsigned long long)hist_quantile(h, 0.99),
		(unsigned long long)hist_quantile(h, 0.999), (unsigned long long)h->max);
}

static void json_causes(FILE *f, const struct load_causes *cs)
{
	unsigned i;

	fprintf(f, "{");
	for (i = 0; i < LOAD_CAUSE_COUNT; i++)
		fprintf(f, "%s\"%s\": %llu", i ? ", " : "", load_causes_info[i].name,
			(unsigned long long)cs->n[i]);
	fprintf(f, ", \"other_messages\": [");
	for (i = 0; i < cs->n_other; i++) {
		fprintf(f, "%s{\"message\": ", i ? ", " : "");
		json_str(f, cs->other[i].msg);
		fprintf(f, ", \"count\": %llu}", (unsigned long long)cs->other[i].count);
	}
	fprintf(f, "], \"other_unlisted\": %llu}", (unsigned long long)cs->other_unlisted);
}

/* A table as an array of row objects; numbers stay numbers. */
static void json_table(FILE *f, const struct load_table *t)
{
	int r, c;

	fprintf(f, "[");
	for (r = 0; r < t->nrows; r++) {
		fprintf(f, "%s{", r ? ", " : "");
		for (c = 0; c < t->ncols; c++) {
			const char *v = t->values[r * t->ncols + c];

			fprintf(f, "%s", c ? ", " : "");
			json_str(f, t->names[c]);
			fprintf(f, ": ");
			if (v == NULL)
				fprintf(f, "null");
			else if (json_numeric(v))
				fprintf(f, "%s", v);
			else
				json_str(f, v);
		}
		fprintf(f, "}");
	}
	fprintf(f, "]");
}

static void json_config(FILE *f, const struct load_meta *m)
{
	fprintf(f, "  \"config\": {\"conninfo\": ");
	json_str(f, m->conninfo);
	fprintf(f, ", \"clients\": %ld, \"connect_rate\": %.3f, \"duration_ms\": %llu, "
		   "\"workload\": ",
		m->clients, m->connect_rate, (unsigned long long)m->duration_ms);
	json_str(f, m->workload);
	fprintf(f, ", \"procs\": %ld, \"source_addrs\": ", m->procs);
	if (m->sources)
		json_str(f, m->sources);
	else
		fprintf(f, "null");
	fprintf(f, ", \"think_ms\": %llu, \"connect_timeout_ms\": %llu},\n",
		(unsigned long long)m->think_ms, (unsigned long long)m->connect_timeout_ms);
}

static void json_connections(FILE *f, const struct load_totals *t)
{
	fprintf(f, "  \"connections\": {\"attempted\": %llu, \"connected\": %llu, "
		   "\"failed\": %llu, \"peak_connected\": %llu, \"lost\": %llu,\n",
		(unsigned long long)t->attempted, (unsigned long long)t->connected,
		(unsigned long long)t->failed, (unsigned long long)t->peak_connected,
		(unsigned long long)t->lost);
	fprintf(f, "    \"failed_by_cause\": ");
	json_causes(f, &t->connect_fail);
	fprintf(f, ",\n    \"lost_by_cause\": ");
	json_causes(f, &t->lost_by);
	fprintf(f, ",\n    \"connect_time_us\": ");
	json_latency(f, &t->connect_latency);
	fprintf(f, "},\n");
}

static void json_transactions(FILE *f, const struct load_totals *t)
{
	fprintf(f, "  \"transactions\": {\"completed\": %llu, \"failed\": %llu, \"tps\": %.1f,\n",
		(unsigned long long)t->tx_ok, (unsigned long long)t->tx_failed,
		load_report_tps(t));
	fprintf(f, "    \"failed_by_cause\": ");
	json_causes(f, &t->tx_fail_by);
	fprintf(f, ",\n    \"latency_us\": ");
	json_latency(f, &t->tx_latency);
	fprintf(f, "},\n");
}

int load_report_json(FILE *f, const struct load_report *r)
{
	const struct load_totals *t = &r->totals;

	fprintf(f, "{\n  \"tool\": \"pgmux-load\",\n");
	json_config(f, &r->meta);
	fprintf(f, "  \"elapsed_ms\": %llu,\n  \"workers_missing\": %u,\n",
		(unsigned long long)t->elapsed_ms, r->workers_missing);
	json_connections(f, t);
	json_transactions(f, t);
	fprintf(f, "  \"source_addrs\": {\"count\": %u, \"bound\": %llu, \"mismatch\": %llu},\n",
		r->meta.n_sources, (unsigned long long)t->src_bound,
		(unsigned long long)t->src_mismatch);
	fprintf(f, "  \"pooler\": ");
	if (r->snapshot.has) {
		fprintf(f, "{\"t_ms\": %llu, \"connected\": %llu,\n    \"fd_usage\": ",
			(unsigned long long)r->snapshot.t_ms,
			(unsigned long long)r->snapshot.connected);
		json_table(f, &r->snapshot.fd_usage);
		fprintf(f, ",\n    \"saturation\": ");
		json_table(f, &r->snapshot.saturation);
		fprintf(f, "}\n");
	} else {
		fprintf(f, "null\n");
	}
	fprintf(f, "}\n");
	return ferror(f) ? -1 : 0;
}

/* ---- CSV ---- */

void load_report_csv_header(FILE *f)
{
	fprintf(f, "t,connected,connecting,failed,tps,p99_us\n");
}

void load_report_csv_row(FILE *f, const struct load_tl_row *row)
{
	fprintf(f, "%.1f,%llu,%llu,%llu,%.1f,%llu\n", row->t_s,
		(unsigned long long)row->connected, (unsigned long long)row->connecting,
		(unsigned long long)row->failed, row->tps, (unsigned long long)row->p99_us);
}
