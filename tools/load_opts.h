/*
 * load_opts.h: pgmux-load's command line. Pure code (no I/O, no libpq):
 * argv in, a filled struct load_opts or one clear error message out, so
 * every option and every bad input is unit-tested.
 */
#ifndef PGMUX_LOAD_OPTS_H
#define PGMUX_LOAD_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What each client does once connected. */
enum load_workload {
	LOAD_WL_SELECT, /* SELECT 1, back to back */
	LOAD_WL_TX,     /* TPC-B-like multi-statement transaction (load_worker.c) */
	LOAD_WL_SLEEP,  /* SELECT pg_sleep(N): holds a server connection N ms */
	LOAD_WL_IDLE,   /* connect and stay idle: measures connects only */
	LOAD_WL_FILE,   /* the contents of a file as one simple query */
};

/* Upper bounds: far above any sane run, low enough to keep the arithmetic
 * in range (clients * fds, rate * seconds). */
#define LOAD_OPTS_MAX_CLIENTS 10000000L
#define LOAD_OPTS_MAX_PROCS 1024L
#define LOAD_OPTS_MAX_RATE 10000000.0
#define LOAD_OPTS_MAX_DURATION_MS (7ull * 24 * 3600 * 1000)
#define LOAD_OPTS_MAX_SOURCES 65536u

struct load_opts {
	const char *conninfo;        /* the one positional argument (points into argv) */
	long clients;                /* --clients, default 10 */
	double connect_rate;         /* --connect-rate, attempts/s; 0: unpaced */
	uint64_t duration_ms;        /* --duration, default 30 s */
	enum load_workload workload; /* --workload, default select */
	uint64_t sleep_ms;           /* sleep:N */
	const char *script_path;     /* file:PATH (points into argv) */
	long procs;                  /* --procs, default 1 */
	uint32_t src_first;          /* --source-addrs: first address, host order */
	uint32_t src_count;          /* number of addresses; 0: not given */
	const char *json_path;       /* --json */
	const char *csv_path;        /* --csv */
	const char *admin_user;      /* --admin-user, default "admin" */
	const char *admin_password;  /* --admin-password; NULL: PGPASSWORD / .pgpass */
	uint64_t connect_timeout_ms; /* --connect-timeout, default 10 s */
	uint64_t think_ms;           /* --think: pause between transactions, default 0 */
};

enum load_opts_rc {
	LOAD_OPTS_OK = 0,
	LOAD_OPTS_HELP = 1,    /* --help: print load_opts_usage() and exit 0 */
	LOAD_OPTS_EINVAL = -1, /* err holds one line saying what is wrong */
};

/* Sets every default; conninfo stays NULL. */
void load_opts_defaults(struct load_opts *o);

/*
 * Parses argv[1..argc-1] into o (defaults first). Options take their value
 * as "--name value" or "--name=value". On LOAD_OPTS_EINVAL, err (errlen
 * bytes) says which argument is wrong and why; o is then unspecified.
 * Strings in o point into argv.
 */
int load_opts_parse(struct load_opts *o, int argc, char *const argv[], char *err,
		    size_t errlen) __attribute__((warn_unused_result));

/* "2000/s", "2000", "120/m", "unlimited" (0). Returns 0 or -1. */
int load_opts_parse_rate(const char *s, double *out) __attribute__((warn_unused_result));
/*
 * "500ms", "30s", "2m", "1h"; a bare number is in default_unit_ms units
 * (1000 for --duration: seconds; 1 for sleep:N: milliseconds). 0 or -1.
 */
int load_opts_parse_duration(const char *s, uint64_t default_unit_ms, uint64_t *out_ms)
	__attribute__((warn_unused_result));
/* "127.0.0.1-127.0.0.8" or one address, all inside 127.0.0.0/8. 0 or -1. */
int load_opts_parse_sources(const char *s, uint32_t *first, uint32_t *count)
	__attribute__((warn_unused_result));

/* "select", "tx", "sleep:50ms", "idle" or "file:<path>" into buf. */
void load_opts_workload_str(const struct load_opts *o, char *buf, size_t len);
/* Address i of the --source-addrs range as dotted quad into buf. */
void load_opts_source_str(const struct load_opts *o, uint32_t i, char *buf, size_t len);

/* The --help text. */
const char *load_opts_usage(void);

#endif /* PGMUX_LOAD_OPTS_H */
