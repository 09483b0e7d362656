/*
 * load_opts.c: pgmux-load's option table and the value parsers behind it
 * (counts, rates, durations, workloads, source address ranges). One row per
 * option; each row's setter validates its value and says what is wrong.
 */
#include "load_opts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*load_opts_setter)(struct load_opts *o, const char *val, char *err,
				size_t errlen);

struct load_opts_spec {
	const char *name;  /* without the leading "--" */
	char short_name;   /* '\0': none */
	bool takes_value;
	load_opts_setter set;
};

static int opt_clients(struct load_opts *o, const char *val, char *err, size_t errlen);
static int opt_rate(struct load_opts *o, const char *val, char *err, size_t errlen);
static int opt_duration(struct load_opts *o, const char *val, char *err, size_t errlen);
static int opt_workload(struct load_opts *o, const char *val, char *err, size_t errlen);
static int opt_procs(struct load_opts *o, const char *val, char *err, size_t errlen);
static int opt_sources(struct load_opts *o, const char *val, char *err, size_t errlen);
static int opt_json(struct load_opts *o, const char *val, char *err, size_t errlen);
static int opt_csv(struct load_opts *o, const char *val, char *err, size_t errlen);
static int opt_admin_user(struct load_opts *o, const char *val, char *err, size_t errlen);
static int opt_admin_password(struct load_opts *o, const char *val, char *err,
			      size_t errlen);
static int opt_connect_timeout(struct load_opts *o, const char *val, char *err,
			       size_t errlen);
static int opt_think(struct load_opts *o, const char *val, char *err, size_t errlen);

static const struct load_opts_spec load_opts_table[] = {
	{ "clients", 'c', true, opt_clients },
	{ "connect-rate", 'r', true, opt_rate },
	{ "duration", 'T', true, opt_duration },
	{ "workload", 'w', true, opt_workload },
	{ "procs", 'j', true, opt_procs },
	{ "source-addrs", '\0', true, opt_sources },
	{ "json", '\0', true, opt_json },
	{ "csv", '\0', true, opt_csv },
	{ "admin-user", '\0', true, opt_admin_user },
	{ "admin-password", '\0', true, opt_admin_password },
	{ "connect-timeout", '\0', true, opt_connect_timeout },
	{ "think", '\0', true, opt_think },
	{ "help", 'h', false, NULL },
};

#define LOAD_OPTS_NSPECS (sizeof(load_opts_table) / sizeof(load_opts_table[0]))

static const char load_opts_usage_text[] =
	"usage: pgmux-load CONNINFO [options]\n"
	"\n"
	"Opens many libpq connections on one event loop and runs a workload on each;\n"
	"prints connects, failures by cause, TPS and latency percentiles.\n"
	"\n"
	"  CONNINFO                   libpq connection string, e.g.\n"
	"                             \"host=127.0.0.1 port=6432 dbname=appdb user=app\"\n"
	"  -c, --clients N            connections to open (default 10)\n"
	"  -r, --connect-rate RATE    new connection attempts per second: 2000/s, 120/m,\n"
	"                             unlimited (default 1000/s)\n"
	"  -T, --duration DUR         length of the run from the first attempt: 30s,\n"
	"                             500ms, 2m; a bare number is seconds (default 30s)\n"
	"  -w, --workload W           select | tx | sleep:50ms | idle | file:script.sql\n"
	"                             (default select)\n"
	"  -j, --procs N              worker processes, each with clients/N connections\n"
	"                             (default 1)\n"
	"      --source-addrs A[-B]   bind client sockets to 127.x.y.z source addresses A..B,\n"
	"                             round robin, to go past one address's port range\n"
	"      --json FILE            write the full report as JSON\n"
	"      --csv FILE             write a per-second timeline\n"
	"                             (t,connected,connecting,failed,tps,p99_us)\n"
	"      --admin-user NAME      pgmux console user for the peak snapshot (default admin)\n"
	"      --admin-password PW    its password (default: PGPASSWORD or ~/.pgpass)\n"
	"      --connect-timeout DUR  give up on one connection attempt after DUR (default 10s)\n"
	"      --think DUR            pause between a client's transactions; a bare number is\n"
	"                             milliseconds (default 0)\n"
	"  -h, --help                 this text\n";

const char *load_opts_usage(void)
{
	return load_opts_usage_text;
}

void load_opts_defaults(struct load_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->clients = 10;
	o->connect_rate = 1000.0;
	o->duration_ms = 30000;
	o->workload = LOAD_WL_SELECT;
	o->procs = 1;
	o->admin_user = "admin";
	o->connect_timeout_ms = 10000;
}

/* snprintf into err; truncation only shortens a message, so it is fine. */
static int opts_error(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int opts_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return LOAD_OPTS_EINVAL;
}

/* A whole decimal number in [min, max], nothing else. */
static int opts_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int load_opts_parse_rate(const char *s, double *out)
{
	char num[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	double per = 1.0;
	double v;
	char *end;

	if (strcmp(s, "unlimited") == 0 || strcmp(s, "0") == 0) {
		*out = 0.0;
		return 0;
	}
	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n);
	num[n] = '\0';
	if (slash) {
		if (strcmp(slash, "/s") == 0)
			per = 1.0;
		else if (strcmp(slash, "/m") == 0 || strcmp(slash, "/min") == 0)
			per = 60.0;
		else
			return -1;
	}
	if (num[0] < '0' || num[0] > '9')
		return -1;
	errno = 0;
	v = strtod(num, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v) || v <= 0.0)
		return -1;
	v /= per;
	if (v > LOAD_OPTS_MAX_RATE)
		return -1;
	*out = v;
	return 0;
}

int load_opts_parse_duration(const char *s, uint64_t default_unit_ms, uint64_t *out_ms)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "min", 60000 }, { "h", 3600000 },
	};
	uint64_t unit = default_unit_ms;
	unsigned long long v;
	char *end;
	size_t i;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(end, units[i].suffix) == 0)
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return -1;
		unit = units[i].ms;
	}
	if (v > LOAD_OPTS_MAX_DURATION_MS / unit)
		return -1;
	*out_ms = (uint64_t)v * unit;
	return 0;
}

/* One dotted-quad IPv4 address inside 127.0.0.0/8, host order. */
static int opts_parse_loopback(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	if ((*out >> 24) != 127)
		return -1;
	return 0;
}

int load_opts_parse_sources(const char *s, uint32_t *first, uint32_t *count)
{
	const char *dash = strchr(s, '-');
	char a[INET_ADDRSTRLEN];
	uint32_t lo, hi;
	size_t n;

	if (dash == NULL) {
		if (opts_parse_loopback(s, &lo) != 0)
			return -1;
		*first = lo;
		*count = 1;
		return 0;
	}
	n = (size_t)(dash - s);
	if (n == 0 || n >= sizeof(a))
		return -1;
	memcpy(a, s, n);
	a[n] = '\0';
	if (opts_parse_loopback(a, &lo) != 0 || opts_parse_loopback(dash + 1, &hi) != 0)
		return -1;
	if (hi < lo || hi - lo >= LOAD_OPTS_MAX_SOURCES)
		return -1;
	*first = lo;
	*count = hi - lo + 1;
	return 0;
}

static int opt_clients(struct load_opts *o, const char *val, char *err, size_t errlen)
{
	if (opts_parse_long(val, 1, LOAD_OPTS_MAX_CLIENTS, &o->clients) != 0)
		return opts_error(err, errlen,
				  "--clients: \"%s\" is not a whole number from 1 to %ld", val,
				  LOAD_OPTS_MAX_CLIENTS);
	return 0;
}

static int opt_rate(struct load_opts *o, const char *val, char *err, size_t errlen)
{
	if (load_opts_parse_rate(val, &o->connect_rate) != 0)
		return opts_error(err, errlen,
				  "--connect-rate: \"%s\" is not a rate (2000/s, 120/m, "
				  "unlimited; at most %.0f/s)",
				  val, LOAD_OPTS_MAX_RATE);
	return 0;
}

static int opt_duration(struct load_opts *o, const char *val, char *err, size_t errlen)
{
	if (load_opts_parse_duration(val, 1000, &o->duration_ms) != 0 || o->duration_ms == 0)
		return opts_error(err, errlen,
				  "--duration: \"%s\" is not a positive duration (30s, 500ms, "
				  "2m; at most 7 days)",
				  val);
	return 0;
}

static int opt_workload(struct load_opts *o, const char *val, char *err, size_t errlen)
{
	if (strcmp(val, "select") == 0) {
		o->workload = LOAD_WL_SELECT;
	} else if (strcmp(val, "tx") == 0) {
		o->workload = LOAD_WL_TX;
	} else if (strcmp(val, "idle") == 0) {
		o->workload = LOAD_WL_IDLE;
	} else if (strncmp(val, "sleep:", 6) == 0) {
		if (load_opts_parse_duration(val + 6, 1, &o->sleep_ms) != 0)
			return opts_error(err, errlen,
					  "--workload: \"%s\": sleep needs a duration, "
					  "e.g. sleep:50ms",
					  val);
		o->workload = LOAD_WL_SLEEP;
	} else if (strncmp(val, "file:", 5) == 0) {
		if (val[5] == '\0')
			return opts_error(err, errlen,
					  "--workload: \"%s\": file needs a path, e.g. "
					  "file:script.sql",
					  val);
		o->workload = LOAD_WL_FILE;
		o->script_path = val + 5;
	} else {
		return opts_error(err, errlen,
				  "--workload: \"%s\" is not one of select, tx, sleep:<ms>, idle, "
				  "file:<path>",
				  val);
	}
	return 0;
}

static int opt_procs(struct load_opts *o, const char *val, char *err, size_t errlen)
{
	if (opts_parse_long(val, 1, LOAD_OPTS_MAX_PROCS, &o->procs) != 0)
		return opts_error(err, errlen,
				  "--procs: \"%s\" is not a whole number from 1 to %ld", val,
				  LOAD_OPTS_MAX_PROCS);
	return 0;
}

static int opt_sources(struct load_opts *o, const char *val, char *err, size_t errlen)
{
	if (load_opts_parse_sources(val, &o->src_first, &o->src_count) != 0)
		return opts_error(err, errlen,
				  "--source-addrs: \"%s\" is not a range of loopback addresses "
				  "like 127.0.0.1-127.0.0.8 (first <= last, at most %u)",
				  val, LOAD_OPTS_MAX_SOURCES);
	return 0;
}

static int opt_json(struct load_opts *o, const char *val, char *err, size_t errlen)
{
	if (val[0] == '\0')
		return opts_error(err, errlen, "--json: needs a file name");
	o->json_path = val;
	return 0;
}

static int opt_csv(struct load_opts *o, const char *val, char *err, size_t errlen)
{
	if (val[0] == '\0')
		return opts_error(err, errlen, "--csv: needs a file name");
	o->csv_path = val;
	return 0;
}

static int opt_admin_user(struct load_opts *o, const char *val, char *err, size_t errlen)
{
	if (val[0] == '\0')
		return opts_error(err, errlen, "--admin-user: needs a user name");
	o->admin_user = val;
	return 0;
}

static int opt_admin_password(struct load_opts *o, const char *val, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	o->admin_password = val;
	return 0;
}

static int opt_connect_timeout(struct load_opts *o, const char *val, char *err,
			       size_t errlen)
{
	if (load_opts_parse_duration(val, 1000, &o->connect_timeout_ms) != 0 ||
	    o->connect_timeout_ms == 0)
		return opts_error(err, errlen,
				  "--connect-timeout: \"%s\" is not a positive duration (10s, "
				  "500ms)",
				  val);
	return 0;
}

static int opt_think(struct load_opts *o, const char *val, char *err, size_t errlen)
{
	if (load_opts_parse_duration(val, 1, &o->think_ms) != 0)
		return opts_error(err, errlen,
				  "--think: \"%s\" is not a duration (10ms, 1s)", val);
	return 0;
}

/* The row for "--name" (name without dashes, len bytes) or "-x"; NULL if none. */
static const struct load_opts_spec *opts_find_long(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < LOAD_OPTS_NSPECS; i++)
		if (strlen(load_opts_table[i].name) == len &&
		    strncmp(load_opts_table[i].name, name, len) == 0)
			return &load_opts_table[i];
	return NULL;
}

static const struct load_opts_spec *opts_find_short(char c)
{
	size_t i;

	for (i = 0; i < LOAD_OPTS_NSPECS; i++)
		if (load_opts_table[i].short_name == c)
			return &load_opts_table[i];
	return NULL;
}

/* Cross-option rules, checked once everything is parsed. */
static int opts_validate(struct load_opts *o, char *err, size_t errlen)
{
	if (o->conninfo == NULL)
		return opts_error(err, errlen,
				  "missing the connection string, e.g. pgmux-load \"host=127.0.0.1 "
				  "port=6432 dbname=appdb user=app\" (see --help)");
	if (o->procs > o->clients)
		return opts_error(err, errlen,
				  "--procs %ld is more than --clients %ld: every worker needs at "
				  "least one client",
				  o->procs, o->clients);
	return 0;
}

/*
 * Handles argv[*i], an option; may consume argv[*i + 1] as its value.
 * Returns 0, LOAD_OPTS_HELP or LOAD_OPTS_EINVAL.
 */
static int opts_one(struct load_opts *o, int argc, char *const argv[], int *i, char *err,
		    size_t errlen)
{
	const char *arg = argv[*i];
	const struct load_opts_spec *spec;
	const char *val = NULL;

	if (arg[1] == '-') {
		const char *eq = strchr(arg + 2, '=');
		size_t len = eq ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);

		spec = opts_find_long(arg + 2, len);
		if (eq)
			val = eq + 1;
	} else {
		spec = arg[2] == '\0' ? opts_find_short(arg[1]) : NULL;
	}
	if (spec == NULL)
		return opts_error(err, errlen, "unknown option \"%s\" (see --help)", arg);
	if (!spec->takes_value) {
		if (val != NULL)
			return opts_error(err, errlen, "--%s takes no value", spec->name);
		return LOAD_OPTS_HELP;
	}
	if (val == NULL) {
		if (*i + 1 >= argc)
			return opts_error(err, errlen, "--%s needs a value", spec->name);
		val = argv[++*i];
	}
	return spec->set(o, val, err, errlen);
}

int load_opts_parse(struct load_opts *o, int argc, char *const argv[], char *err,
		    size_t errlen)
{
	bool only_positional = false;
	int i;
	int rc;

	load_opts_defaults(o);
	if (errlen > 0)
		err[0] = '\0';
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (!only_positional && strcmp(arg, "--") == 0) {
			only_positional = true;
			continue;
		}
		if (!only_positional && arg[0] == '-' && arg[1] != '\0') {
			rc = opts_one(o, argc, argv, &i, err, errlen);
			if (rc != 0)
				return rc;
			continue;
		}
		if (o->conninfo != NULL)
			return opts_error(err, errlen,
					  "unexpected argument \"%s\": the connection string was "
					  "already given (quote it as one argument)",
					  arg);
		o->conninfo = arg;
	}
	return opts_validate(o, err, errlen);
}

void load_opts_workload_str(const struct load_opts *o, char *buf, size_t len)
{
	switch (o->workload) {
	case LOAD_WL_SELECT:
		(void)snprintf(buf, len, "select");
		return;
	case LOAD_WL_TX:
		(void)snprintf(buf, len, "tx");
		return;
	case LOAD_WL_SLEEP:
		(void)snprintf(buf, len, "sleep:%llums", (unsigned long long)o->sleep_ms);
		return;
	case LOAD_WL_IDLE:
		(void)snprintf(buf, len, "idle");
		return;
	case LOAD_WL_FILE:
		(void)snprintf(buf, len, "file:%s", o->script_path);
		return;
	}
	(void)snprintf(buf, len, "unknown");
}

void load_opts_source_str(const struct load_opts *o, uint32_t i, char *buf, size_t len)
{
	uint32_t a = o->src_first + i;

	(void)snprintf(buf, len, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff,
		       a & 0xff);
}
