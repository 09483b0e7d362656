/*
 * load_report.h: what a pgmux-load run measured and how it is written out.
 * Failure classification by cause (libpq message text and SQLSTATE in,
 * enum load_cause out), the counters and histograms one worker collects,
 * the line records workers send their parent over a pipe, and the human
 * summary, JSON and CSV writers. Pure code apart from the FILE* writers.
 */
#ifndef PGMUX_LOAD_REPORT_H
#define PGMUX_LOAD_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hist.h"

/* Why a connection attempt, a connection or a transaction failed. */
enum load_cause {
	LOAD_CAUSE_ECONNREFUSED,  /* nobody listening (or the accept queue said no) */
	LOAD_CAUSE_ETIMEDOUT,     /* kernel timeout, or --connect-timeout expired */
	LOAD_CAUSE_EMFILE,        /* this process ran out of descriptors */
	LOAD_CAUSE_EADDRNOTAVAIL, /* no local port left for this source address */
	LOAD_CAUSE_53300,         /* too_many_connections */
	LOAD_CAUSE_08006,         /* connection_failure: closed or reset under us */
	LOAD_CAUSE_28P01,         /* invalid_password */
	LOAD_CAUSE_UNFINISHED,    /* still connecting when the run ended */
	LOAD_CAUSE_OTHER,         /* anything else; the message is kept */
	LOAD_CAUSE_COUNT
};

#define LOAD_MSG_MAX 160   /* one "other" message, first line only */
#define LOAD_OTHER_MAX 8   /* distinct "other" messages kept per counter */

struct load_other {
	char msg[LOAD_MSG_MAX];
	uint64_t count;
};

/* Failures of one kind, by cause; n[] sums to the kind's total. */
struct load_causes {
	uint64_t n[LOAD_CAUSE_COUNT];
	struct load_other other[LOAD_OTHER_MAX];
	unsigned n_other;        /* entries used in other[] */
	uint64_t other_unlisted; /* "other" failures whose message did not fit in other[] */
};

/* Everything one worker (or, merged, the whole run) measured. */
struct load_totals {
	uint64_t attempted;      /* connection attempts started */
	uint64_t connected;      /* attempts that reached CONNECTION_OK */
	uint64_t failed;         /* attempts that did not; attempted = connected + failed */
	uint64_t lost;           /* connected, then closed by the other side before the end */
	uint64_t tx_ok;          /* transactions that completed without error */
	uint64_t tx_failed;      /* transactions that got an error */
	uint64_t peak_connected; /* most connections open at once */
	uint64_t src_bound;      /* connected with the --source-addrs address asked for */
	uint64_t src_mismatch;   /* connected from another local address than asked */
	uint64_t elapsed_ms;     /* first attempt to end of run */
	struct load_causes connect_fail;
	struct load_causes lost_by;
	struct load_causes tx_fail_by;
	struct hist tx_latency;      /* µs, completed transactions */
	struct hist connect_latency; /* µs, successful connects (TCP + startup + auth) */
};

/* One worker's state at a one-second tick: gauges plus cumulative counters. */
struct load_tick {
	uint64_t t_ms;       /* since the worker started */
	uint64_t attempted;  /* cumulative */
	uint64_t connected;  /* open right now */
	uint64_t connecting; /* attempts in progress right now */
	uint64_t failed;     /* cumulative failed attempts */
	uint64_t lost;       /* cumulative connections lost after connecting */
	uint64_t tx_ok;      /* cumulative */
	struct hist latency; /* transactions completed since the previous tick */
};

/* A small result set (SHOW output): column names and text values. */
struct load_table {
	int ncols;
	int nrows;
	char **names;  /* ncols */
	char **values; /* nrows * ncols, row-major; NULL for SQL NULL */
};

/* What the run was asked to do, for the report headers. */
struct load_meta {
	const char *conninfo;    /* with any password replaced by *** */
	long clients;
	double connect_rate;     /* 0: unpaced */
	uint64_t duration_ms;
	const char *workload;    /* load_opts_workload_str() */
	const char *workload_sql;/* what one transaction sends; NULL for idle */
	long procs;
	const char *sources;     /* "127.0.0.1-127.0.0.8", NULL if not used */
	uint32_t n_sources;
	uint64_t think_ms;
	uint64_t connect_timeout_ms;
};

/* The pooler's admin console at the peak (has = false when not pgmux). */
struct load_snapshot {
	bool has;
	uint64_t t_ms;      /* since the run started */
	uint64_t connected; /* pgmux-load's connected count when it was taken */
	struct load_table fd_usage;
	struct load_table saturation;
};

struct load_report {
	struct load_meta meta;
	struct load_totals totals;
	struct load_snapshot snapshot;
	unsigned workers_missing; /* workers that died without a report */
};

/* One second of the CSV timeline. */
struct load_tl_row {
	double t_s;
	uint64_t connected, connecting, failed;
	double tps;
	uint64_t p99_us;
};

/* ---- classification ---- */

/* "ECONNREFUSED", "53300", "other", ... */
const char *load_report_cause_name(enum load_cause c);
/*
 * Classifies a failure. sqlstate (may be NULL or "") wins when given, as
 * from PQresultErrorField(PG_DIAG_SQLSTATE). Otherwise message, libpq's
 * error text, is searched: first for the SQLSTATE libpq prints in
 * PQERRORS_VERBOSE mode ("FATAL:  53300: ..."), the only way to get the
 * code of a refused login, then for the texts of socket errors, of
 * PostgreSQL's and pgmux's 53300 and 28P01 messages and of a lost link.
 */
enum load_cause load_report_classify(const char *sqlstate, const char *message);
/* The first meaningful line of a libpq message, without LOCATION or
 * DETAIL lines and trailing blanks, into out (at most len - 1 bytes). */
void load_report_short_message(const char *message, char *out, size_t len);

/* Counts one failure; message is kept (shortened) when cause is OTHER. */
void load_report_cause_add(struct load_causes *cs, enum load_cause cause,
			   const char *message);
uint64_t load_report_causes_total(const struct load_causes *cs);

/* ---- aggregation ---- */

void load_report_totals_reset(struct load_totals *t);
/* Adds src to dst: counters, causes, histograms; elapsed and peak take the max. */
void load_report_totals_merge(struct load_totals *dst, const struct load_totals *src);

/* Frees the strings of a table and empties it. */
void load_report_table_free(struct load_table *t);
void load_report_free(struct load_report *r);

/* ---- worker -> parent records ---- */

/*
 * A growable text buffer with a sticky error: appends after a failed
 * allocation are ignored and failed stays set, so callers check once.
 */
struct load_buf {
	char *p;
	size_t len;
	size_t cap;
	bool failed;
};
void load_buf_printf(struct load_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void load_buf_free(struct load_buf *b);

/*
 * Appends the line records for a tick ("T ...\n") or a whole final report
 * ("R", "C", "O", "H" lines ending with "E\n"). Messages travel with
 * control characters replaced by spaces, so one record is one line.
 */
void load_report_wire_tick(struct load_buf *b, const struct load_tick *t);
void load_report_wire_final(struct load_buf *b, const struct load_totals *t);

/* What the parent knows about one worker, rebuilt from its lines. */
struct load_wire_rx {
	struct load_tick tick;    /* the latest tick */
	struct hist tick_latency; /* latency of every tick since the parent last took it */
	bool have_tick;
	struct load_totals final; /* filled by R/C/O/H lines */
	bool done;                /* "E" seen: final is complete */
};
void load_report_wire_rx_init(struct load_wire_rx *rx);
/* Applies one line (without its '\n'); -1 if it is malformed. */
int load_report_wire_line(struct load_wire_rx *rx, const char *line)
	__attribute__((warn_unused_result));

/* ---- writers ---- */

/* The human-readable summary. */
void load_report_print(FILE *f, const struct load_report *r);
/* The full report as one JSON object. Returns 0, or -1 if a write failed. */
int load_report_json(FILE *f, const struct load_report *r);
void load_report_csv_header(FILE *f);
void load_report_csv_row(FILE *f, const struct load_tl_row *row);
/* Transactions per second over the whole run. */
double load_report_tps(const struct load_totals *t);

#endif /* PGMUX_LOAD_REPORT_H */
