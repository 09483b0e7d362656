/*
 * config.c: the configuration key table, the ini loader, [databases] and
 * [users] parsing, admin SET and the RELOAD diff. Owns every struct cfg it
 * returns; cfg_free() releases all of it. The auth_file loader is in
 * userlist.c.
 *
 * libinih tracks sections and dispatches key = value pairs, but it reads
 * every line through cfg_reader() below. The reader counts lines per file
 * (Debian's inih calls handlers without a line number), expands %include,
 * and makes inih's syntax match PgBouncer's; see cfg_reader().
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>

#include <ini.h>

#include "log.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- value types and lookup tables ---- */

enum cfg_type {
	CFG_T_STR,
	CFG_T_INT,
	CFG_T_BOOL,
	CFG_T_TIME,      /* seconds as a non-negative float, like PgBouncer's CF_TIME_USEC */
	CFG_T_MODE,      /* file mode; always octal, "777" and "0777" alike */
	CFG_T_POOL_MODE,
	CFG_T_AUTH_TYPE,
	CFG_T_SSLMODE,   /* checked, kept as text only */
	CFG_T_LB,        /* load_balance_hosts, per database only */
	CFG_T_FLAG_STR,  /* a boolean kept in a char *: NULL or "1" */
	CFG_T_HOSTPORT,  /* "ipv4:port" or "[ipv6]:port", numeric; kept as text */
};

struct cfg_lookup {
	const char *name;
	int value;
};

static const struct cfg_lookup cfg_pool_modes[] = {
	{ "session", POOL_MODE_SESSION },
	{ "transaction", POOL_MODE_TRANSACTION },
	{ "statement", POOL_MODE_STATEMENT },
	{ NULL, 0 },
};

static const struct cfg_lookup cfg_auth_types[] = {
	{ "any", CFG_AUTH_ANY },
	{ "trust", CFG_AUTH_TRUST },
	{ "plain", CFG_AUTH_PLAIN },
	{ "md5", CFG_AUTH_MD5 },
	{ "scram-sha-256", CFG_AUTH_SCRAM },
	{ "cert", CFG_AUTH_CERT },
	{ "hba", CFG_AUTH_HBA },
	{ "pam", CFG_AUTH_PAM },
	{ NULL, 0 },
};

static const struct cfg_lookup cfg_sslmodes[] = {
	{ "disable", 0 }, { "allow", 1 },     { "prefer", 2 },
	{ "require", 3 }, { "verify-ca", 4 }, { "verify-full", 5 },
	{ NULL, 0 },
};

static const struct cfg_lookup cfg_lb_modes[] = {
	{ "disable", 0 },
	{ "round-robin", 1 },
	{ NULL, 0 },
};

/* PgBouncer matches enum values with strcasecmp(); so do we. */
static bool cfg_lookup_find(const struct cfg_lookup *lk, const char *name, int *out)
{
	for (; lk->name != NULL; lk++) {
		if (strcasecmp(lk->name, name) == 0) {
			*out = lk->value;
			return true;
		}
	}
	return false;
}

static const char *cfg_lookup_name(const struct cfg_lookup *lk, int value)
{
	for (; lk->name != NULL; lk++) {
		if (lk->value == value)
			return lk->name;
	}
	return "unknown";
}

const char *cfg_pool_mode_str(enum pool_mode m)
{
	return cfg_lookup_name(cfg_pool_modes, (int)m);
}

const char *cfg_auth_type_str(enum cfg_auth_type t)
{
	return cfg_lookup_name(cfg_auth_types, (int)t);
}

/* ---- the key table ---- */

enum {
	CFG_F_NO_RELOAD = 1 << 0, /* PgBouncer's CF_NO_RELOAD: fixed until restart */
	CFG_F_PGMUX = 1 << 1,     /* pgmux-only key, unknown to PgBouncer */
};

#define CFG_NOFIELD SIZE_MAX

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t off;         /* offsetof(struct cfg, ...), or CFG_NOFIELD: text only */
	const char *def;    /* PgBouncer's default unless noted */
	long long min, max; /* CFG_T_INT and CFG_T_MODE */
	unsigned flags;
	void (*apply)(const struct cfg *c); /* run by cfg_set() after a change */
	const char *doc;
};

static void cfg_apply_verbose(const struct cfg *c)
{
	log_set_verbose(c->verbose);
}

/*
 * KEY: pgmux acts on it (typed field, same name). RAW: accepted and shown
 * by SHOW CONFIG, but pgmux does not implement it yet.
 */
#define KEY(field, type, def, min, max, flags, doc)                                        \
	{ #field, type, offsetof(struct cfg, field), def, min, max, flags, NULL, doc }
#define KEYH(field, type, def, min, max, flags, apply, doc)                                \
	{ #field, type, offsetof(struct cfg, field), def, min, max, flags, apply, doc }
#define RAW(name, type, def, min, max, flags, doc)                                        \
	{ name, type, CFG_NOFIELD, def, min, max, flags, NULL, doc }

#define NR CFG_F_NO_RELOAD
#define IMAX INT_MAX

/*
 * Every [pgbouncer] key of PgBouncer 1.25 (src/main.c bouncer_params[]),
 * in its alphabetical order, which SHOW CONFIG keeps. Defaults are
 * PgBouncer's except where a comment says otherwise. Bounds are pgmux's:
 * PgBouncer mostly accepts any integer.
 */
static const struct cfg_key cfg_keys[] = {
	KEY(admin_users, CFG_T_STR, "", 0, 0, 0,
	    "users allowed to run every admin console command (comma-separated)"),
	KEY(application_name_add_host, CFG_T_FLAG_STR, "0", 0, 0, 0,
	    "append the client address and port to application_name at login"),
	KEY(auth_dbname, CFG_T_STR, "", 0, 0, 0,
	    "database in [databases] to run auth_query in"),
	KEY(auth_file, CFG_T_STR, "", 0, 0, 0,
	    "userlist.txt file with \"user\" \"secret\" lines"),
	KEY(auth_hba_file, CFG_T_STR, "", 0, 0, 0,
	    "pg_hba.conf-style file used when auth_type = hba"),
	RAW("auth_ident_file", CFG_T_STR, "", 0, 0, 0,
	    "ident map file for auth_type = hba"),
	RAW("auth_ldap_options", CFG_T_STR, "", 0, 0, 0,
	    "LDAP options for auth_type = ldap (pgmux has no LDAP)"),
	KEY(auth_query, CFG_T_STR,
	    "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END "
	    "FROM pg_authid WHERE rolname=$1 AND rolcanlogin",
	    0, 0, 0, "query that fetches a password hash for users not in auth_file"),
	KEY(auth_type, CFG_T_AUTH_TYPE, "md5", 0, 0, 0,
	    "client authentication: any, trust, plain, md5, scram-sha-256, cert, hba, pam"),
	KEY(auth_user, CFG_T_STR, "", 0, 0, 0,
	    "user that runs auth_query"),
	RAW("autodb_idle_timeout", CFG_T_TIME, "3600", 0, 0, 0,
	    "seconds before unused pools made from the \"*\" entry are freed"),
	KEY(cancel_wait_timeout, CFG_T_TIME, "10", 0, 0, 0,
	    "seconds a cancel request may wait for a server connection"),
	KEY(client_idle_timeout, CFG_T_TIME, "0", 0, 0, 0,
	    "seconds before an idle client is disconnected (0: never)"),
	KEY(client_login_timeout, CFG_T_TIME, "60", 0, 0, 0,
	    "seconds a client has to finish logging in"),
	KEY(client_tls13_ciphers, CFG_T_STR, "", 0, 0, 0,
	    "TLS 1.3 cipher suites for client connections"),
	KEY(client_tls_ca_file, CFG_T_STR, "", 0, 0, 0,
	    "CA file to verify client certificates"),
	KEY(client_tls_cert_file, CFG_T_STR, "", 0, 0, 0,
	    "certificate presented to clients"),
	KEY(client_tls_ciphers, CFG_T_STR, "default", 0, 0, 0,
	    "TLS 1.2 and older ciphers for client connections"),
	RAW("client_tls_dheparams", CFG_T_STR, "auto", 0, 0, 0,
	    "DHE key exchange for client connections: none, auto, legacy"),
	RAW("client_tls_ecdhcurve", CFG_T_STR, "auto", 0, 0, 0,
	    "ECDH curve for client connections"),
	KEY(client_tls_key_file, CFG_T_STR, "", 0, 0, 0,
	    "private key for client_tls_cert_file"),
	KEY(client_tls_protocols, CFG_T_STR, "secure", 0, 0, 0,
	    "TLS versions allowed for client connections"),
	KEY(client_tls_sslmode, CFG_T_SSLMODE, "disable", 0, 0, 0,
	    "TLS for client connections: disable, allow, prefer, require, verify-ca, verify-full"),
	RAW("conffile", CFG_T_STR, "", 0, 0, 0,
	    "the configuration file (shows the file given on the command line)"),
	KEY(default_pool_size, CFG_T_INT, "20", 0, IMAX, 0,
	    "server connections per (database, user) pool"),
	RAW("disable_pqexec", CFG_T_BOOL, "0", 0, 0, NR,
	    "refuse the simple query protocol"),
	RAW("dns_max_ttl", CFG_T_TIME, "15", 0, 0, 0,
	    "seconds a DNS result is cached"),
	RAW("dns_nxdomain_ttl", CFG_T_TIME, "15", 0, 0, 0,
	    "seconds a DNS failure is cached"),
	RAW("dns_zone_check_period", CFG_T_TIME, "0", 0, 0, 0,
	    "seconds between DNS zone serial checks (0: off)"),
	KEY(idle_transaction_timeout, CFG_T_TIME, "0", 0, 0, 0,
	    "seconds a client may stay idle in a transaction (0: no limit)"),
	KEY(ignore_startup_parameters, CFG_T_STR, "", 0, 0, 0,
	    "startup parameters to accept and ignore (comma-separated)"),
	RAW("job_name", CFG_T_STR, "pgbouncer", 0, 0, NR,
	    "Windows service name"),
	KEY(listen_addr, CFG_T_STR, "", 0, 0, NR,
	    "TCP addresses to listen on (comma-separated, * for all; empty: unix socket only)"),
	KEY(listen_backlog, CFG_T_INT, "128", 1, 65535, NR,
	    "listen(2) backlog"),
	KEY(listen_port, CFG_T_INT, "6432", 1, 65535, NR,
	    "TCP port, also used in the unix socket name"),
	KEY(log_connections, CFG_T_BOOL, "1", 0, 0, 0,
	    "log successful logins"),
	KEY(log_disconnections, CFG_T_BOOL, "1", 0, 0, 0,
	    "log disconnections with their reason"),
	KEY(log_pooler_errors, CFG_T_BOOL, "1", 0, 0, 0,
	    "log the errors pgmux sends to clients"),
	KEY(log_stats, CFG_T_BOOL, "1", 0, 0, 0,
	    "log aggregated statistics every stats_period"),
	KEY(logfile, CFG_T_STR, "", 0, 0, 0,
	    "log file, reopened on SIGHUP/RELOAD (empty: stderr only)"),
	KEY(max_client_conn, CFG_T_INT, "100", 1, IMAX, 0,
	    "maximum number of client connections"),
	KEY(max_db_client_connections, CFG_T_INT, "0", 0, IMAX, 0,
	    "client connections per database (0: no limit)"),
	KEY(max_db_connections, CFG_T_INT, "0", 0, IMAX, 0,
	    "server connections per database (0: no limit)"),
	/* PgBouncer allows up to UINT_MAX; struct cfg holds an int. No message is under 5 bytes. */
	KEY(max_packet_size, CFG_T_INT, "2147483647", 5, IMAX, 0,
	    "largest protocol message accepted, in bytes"),
	KEY(max_prepared_statements, CFG_T_INT, "200", 0, IMAX, 0,
	    "prepared statements tracked per server connection (0: off)"),
	KEY(max_user_client_connections, CFG_T_INT, "0", 0, IMAX, 0,
	    "client connections per user (0: no limit)"),
	KEY(max_user_connections, CFG_T_INT, "0", 0, IMAX, 0,
	    "server connections per user (0: no limit)"),
	KEY(metrics_listen, CFG_T_HOSTPORT, "", 0, 0, NR | CFG_F_PGMUX,
	    "pgmux only: host:port for the Prometheus /metrics endpoint (empty: off)"),
	KEY(min_pool_size, CFG_T_INT, "0", 0, IMAX, 0,
	    "keep at least this many server connections per pool"),
	RAW("peer_id", CFG_T_INT, "0", 0, 16383, 0,
	    "id of this process among [peers] (0: peering off)"),
	KEY(pidfile, CFG_T_STR, "", 0, 0, NR,
	    "file to write the process id to"),
	/* pgmux deviation: PgBouncer's default is 4096. */
	KEY(pkt_buf, CFG_T_INT, "16384", 512, 16777216, NR,
	    "per-connection I/O buffer size in bytes (pgmux default 16384)"),
	KEY(pool_mode, CFG_T_POOL_MODE, "session", 0, 0, 0,
	    "when a server connection is released: session, transaction, statement"),
	KEY(query_timeout, CFG_T_TIME, "0", 0, 0, 0,
	    "seconds before a running query is cancelled (0: no limit)"),
	RAW("query_wait_notify", CFG_T_INT, "5", 0, IMAX, 0,
	    "seconds in the queue before a client is told it is waiting (0: never)"),
	KEY(query_wait_timeout, CFG_T_TIME, "120", 0, 0, 0,
	    "seconds a query may wait for a server connection (0: forever)"),
	KEY(reserve_pool_size, CFG_T_INT, "0", 0, IMAX, 0,
	    "extra server connections per pool for waiting clients"),
	KEY(reserve_pool_timeout, CFG_T_TIME, "5", 0, 0, 0,
	    "seconds a client waits before the reserve pool is used"),
	RAW("resolv_conf", CFG_T_STR, "", 0, 0, NR,
	    "custom resolv.conf for DNS lookups"),
	KEY(sbuf_loopcnt, CFG_T_INT, "5", 0, IMAX, 0,
	    "reads per connection per loop iteration (0: no limit)"),
	RAW("scram_iterations", CFG_T_INT, "4096", 1, IMAX, 0,
	    "PBKDF2 iterations when pgmux builds a SCRAM secret"),
	KEY(server_check_delay, CFG_T_TIME, "30", 0, 0, 0,
	    "seconds a released server connection is reused without a check"),
	KEY(server_check_query, CFG_T_STR, "<empty>", 0, 0, 0,
	    "query that checks a server connection (<empty>: empty query; empty: no check)"),
	KEY(server_connect_timeout, CFG_T_TIME, "15", 0, 0, 0,
	    "seconds to connect and log in to the server"),
	RAW("server_fast_close", CFG_T_BOOL, "0", 0, 0, 0,
	    "close session-mode server connections marked for reconnect at once"),
	KEY(server_idle_timeout, CFG_T_TIME, "600", 0, 0, 0,
	    "seconds before an idle server connection is closed (0: never)"),
	KEY(server_lifetime, CFG_T_TIME, "3600", 0, 0, 0,
	    "seconds before an unused server connection is closed"),
	KEY(server_login_retry, CFG_T_TIME, "15", 0, 0, 0,
	    "seconds to wait after a failed server login"),
	KEY(server_reset_query, CFG_T_STR, "DISCARD ALL", 0, 0, 0,
	    "query run when a session-mode server connection is released"),
	KEY(server_reset_query_always, CFG_T_BOOL, "0", 0, 0, 0,
	    "run server_reset_query in every pool mode"),
	RAW("server_round_robin", CFG_T_BOOL, "0", 0, 0, 0,
	    "reuse server connections round-robin instead of LIFO"),
	KEY(server_tls13_ciphers, CFG_T_STR, "", 0, 0, 0,
	    "TLS 1.3 cipher suites for server connections"),
	KEY(server_tls_ca_file, CFG_T_STR, "", 0, 0, 0,
	    "CA file to verify server certificates"),
	KEY(server_tls_cert_file, CFG_T_STR, "", 0, 0, 0,
	    "client certificate presented to servers"),
	KEY(server_tls_ciphers, CFG_T_STR, "default", 0, 0, 0,
	    "TLS 1.2 and older ciphers for server connections"),
	KEY(server_tls_key_file, CFG_T_STR, "", 0, 0, 0,
	    "private key for server_tls_cert_file"),
	KEY(server_tls_protocols, CFG_T_STR, "secure", 0, 0, 0,
	    "TLS versions allowed for server connections"),
	KEY(server_tls_sslmode, CFG_T_SSLMODE, "prefer", 0, 0, 0,
	    "TLS for server connections: disable, allow, prefer, require, verify-ca, verify-full"),
	/* pgmux-only. */
	KEY(shutdown_wait_timeout, CFG_T_TIME, "30", 0, 0, CFG_F_PGMUX,
	    "pgmux only: seconds SIGTERM waits for clients to finish"),
	RAW("so_reuseport", CFG_T_BOOL, "0", 0, 0, NR,
	    "set SO_REUSEPORT on listening sockets"),
	KEY(stats_period, CFG_T_INT, "60", 1, IMAX, 0,
	    "seconds between statistics averages and stats log lines"),
	KEY(stats_users, CFG_T_STR, "", 0, 0, 0,
	    "users allowed to run read-only admin commands (comma-separated)"),
	RAW("suspend_timeout", CFG_T_TIME, "10", 0, 0, 0,
	    "seconds SUSPEND waits for buffers to flush"),
	RAW("syslog", CFG_T_BOOL, "0", 0, 0, 0,
	    "also log to syslog"),
	RAW("syslog_facility", CFG_T_STR, "daemon", 0, 0, 0,
	    "syslog facility"),
	RAW("syslog_ident", CFG_T_STR, "pgbouncer", 0, 0, 0,
	    "syslog program name"),
	RAW("tcp_defer_accept", CFG_T_INT, "1", 0, IMAX, 0,
	    "set TCP_DEFER_ACCEPT on listening sockets"),
	KEY(tcp_keepalive, CFG_T_BOOL, "1", 0, 0, 0,
	    "enable TCP keepalive"),
	KEY(tcp_keepcnt, CFG_T_INT, "0", 0, IMAX, 0,
	    "TCP_KEEPCNT (0: system default)"),
	KEY(tcp_keepidle, CFG_T_INT, "0", 0, IMAX, 0,
	    "TCP_KEEPIDLE in seconds (0: system default)"),
	KEY(tcp_keepintvl, CFG_T_INT, "0", 0, IMAX, 0,
	    "TCP_KEEPINTVL in seconds (0: system default)"),
	KEY(tcp_socket_buffer, CFG_T_INT, "0", 0, IMAX, 0,
	    "socket buffer size in bytes (0: system default)"),
	KEY(tcp_user_timeout, CFG_T_INT, "0", 0, IMAX, 0,
	    "TCP_USER_TIMEOUT in milliseconds (0: system default)"),
	KEY(track_extra_parameters, CFG_T_STR, "IntervalStyle", 0, 0, NR,
	    "extra parameters tracked per client and restored on the server"),
	KEY(transaction_timeout, CFG_T_TIME, "0", 0, 0, 0,
	    "seconds a client may stay in a transaction (0: no limit)"),
	KEY(unix_socket_dir, CFG_T_STR, "/tmp", 0, 0, NR,
	    "directory for the unix socket (empty: no unix socket)"),
	RAW("unix_socket_group", CFG_T_STR, "", 0, 0, NR,
	    "group owning the unix socket"),
	KEY(unix_socket_mode, CFG_T_MODE, "0777", 0, 0777, NR,
	    "permissions of the unix socket (octal)"),
	RAW("user", CFG_T_STR, "", 0, 0, NR,
	    "unix user to switch to after startup"),
	KEYH(verbose, CFG_T_INT, "0", 0, 3, 0, cfg_apply_verbose,
	     "log detail: 1 adds DEBUG lines, 2 adds NOISE"),
};

#undef KEY
#undef KEYH
#undef RAW
#undef NR
#undef IMAX

#define CFG_NKEYS ARRAY_SIZE(cfg_keys)

static bool cfg_key_implemented(const struct cfg_key *k)
{
	return k->off != CFG_NOFIELD;
}

static int cfg_key_index(const char *name)
{
	for (size_t i = 0; i < CFG_NKEYS; i++) {
		if (strcmp(cfg_keys[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

/* ---- value parsing ---- */

/* snprintf into a reason buffer; truncation only shortens a message. */
static void cfg_why(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void cfg_why(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (len == 0)
		return;
	va_start(ap, fmt);
	if (vsnprintf(why, len, fmt, ap) < 0)
		why[0] = '\0';
	va_end(ap);
}

/* Base 0 like PgBouncer's strtol(): "0x10" is 16 and "010" is 8. */
static bool cfg_parse_int(const char *s, long long min, long long max, int base, long long *out,
			  char *why, size_t whylen)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, base);
	if (end == s || *end != '\0') {
		cfg_why(why, whylen, "invalid integer \"%s\"", s);
		return false;
	}
	if (errno == ERANGE || v < min || v > max) {
		if (max == INT_MAX && v < min && errno != ERANGE)
			cfg_why(why, whylen, "must be >= %lld", min);
		else
			cfg_why(why, whylen, "out of range %lld..%lld", min, max);
		return false;
	}
	*out = v;
	return true;
}

/*
 * PgBouncer takes plain seconds only ("1.5"); it has no unit suffixes, so
 * neither do we: a config that pgmux accepts must also load in PgBouncer.
 */
static bool cfg_parse_time(const char *s, double *out, char *why, size_t whylen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || !isfinite(v) || errno == ERANGE) {
		cfg_why(why, whylen, "invalid time \"%s\" (plain seconds expected, e.g. 2.5)", s);
		return false;
	}
	if (v < 0) {
		cfg_why(why, whylen, "must be >= 0");
		return false;
	}
	*out = v;
	return true;
}

static bool cfg_parse_bool(const char *s, bool *out, char *why, size_t whylen)
{
	static const char *const yes[] = { "1", "yes", "on", "true" };
	static const char *const no[] = { "0", "no", "off", "false" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	cfg_why(why, whylen, "invalid boolean \"%s\" (use 0/1, yes/no, on/off, true/false)", s);
	return false;
}

static bool cfg_parse_enum(enum cfg_type type, const char *s, int *out, char *why, size_t whylen)
{
	switch (type) {
	case CFG_T_POOL_MODE:
		if (cfg_lookup_find(cfg_pool_modes, s, out))
			return true;
		cfg_why(why, whylen, "unknown pool mode \"%s\" (session, transaction, statement)",
			s);
		return false;
	case CFG_T_AUTH_TYPE:
		if (cfg_lookup_find(cfg_auth_types, s, out))
			return true;
		if (strcasecmp(s, "ldap") == 0)
			cfg_why(why, whylen, "auth_type \"ldap\" is not supported by pgmux");
		else
			cfg_why(why, whylen,
				"unknown auth_type \"%s\" (any, trust, plain, md5, scram-sha-256, "
				"cert, hba, pam)",
				s);
		return false;
	case CFG_T_SSLMODE:
		if (cfg_lookup_find(cfg_sslmodes, s, out))
			return true;
		cfg_why(why, whylen,
			"unknown sslmode \"%s\" (disable, allow, prefer, require, verify-ca, "
			"verify-full)",
			s);
		return false;
	case CFG_T_LB:
		if (cfg_lookup_find(cfg_lb_modes, s, out))
			return true;
		cfg_why(why, whylen, "unknown load_balance_hosts \"%s\" (disable, round-robin)", s);
		return false;
	default:
		cfg_why(why, whylen, "bug: not an enum type");
		return false;
	}
}

/* "1.2.3.4:5" or "[::1]:5": numeric address, port 1..65535. */
static bool cfg_parse_hostport(const char *text, char *why, size_t whylen)
{
	char host[64];
	const char *colon = strrchr(text, ':');
	const char *h = text;
	size_t hl;
	long long port;
	unsigned char addr[16];
	int family = AF_INET;

	if (!colon) {
		cfg_why(why, whylen, "expected host:port");
		return false;
	}
	hl = (size_t)(colon - text);
	if (hl >= 2 && text[0] == '[' && text[hl - 1] == ']') {
		h = text + 1;
		hl -= 2;
		family = AF_INET6;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		cfg_why(why, whylen, "expected a numeric host before ':'");
		return false;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (inet_pton(family, host, addr) != 1) {
		cfg_why(why, whylen, "\"%s\" is not a numeric %s address", host,
			family == AF_INET ? "IPv4 ([v6] for IPv6)" : "IPv6");
		return false;
	}
	return cfg_parse_int(colon + 1, 1, 65535, 10, &port, why, whylen);
}

/* A parsed value, before it is stored. .s is owned. */
union cfg_val {
	char *s;
	long long i;
	bool b;
	double d;
	int e;
};

/*
 * Parses text for key k. Strings are copied only when the key has a field
 * (empty becomes NULL); text-only keys are just checked.
 */
static bool cfg_parse_value(const struct cfg_key *k, const char *text, union cfg_val *v,
			    char *why, size_t whylen)
{
	memset(v, 0, sizeof(*v));
	switch (k->type) {
	case CFG_T_HOSTPORT:
		if (text[0] != '\0' && !cfg_parse_hostport(text, why, whylen))
			return false;
		__attribute__((fallthrough)); /* stored as text */
	case CFG_T_STR:
		if (text[0] == '\0' || !cfg_key_implemented(k))
			return true;
		v->s = strdup(text);
		if (v->s == NULL) {
			cfg_why(why, whylen, "out of memory");
			return false;
		}
		return true;
	case CFG_T_INT:
		return cfg_parse_int(text, k->min, k->max, 0, &v->i, why, whylen);
	case CFG_T_MODE:
		return cfg_parse_int(text, k->min, k->max, 8, &v->i, why, whylen);
	case CFG_T_BOOL:
		return cfg_parse_bool(text, &v->b, why, whylen);
	case CFG_T_FLAG_STR:
		if (!cfg_parse_bool(text, &v->b, why, whylen))
			return false;
		if (v->b && (v->s = strdup("1")) == NULL) {
			cfg_why(why, whylen, "out of memory");
			return false;
		}
		return true;
	case CFG_T_TIME:
		return cfg_parse_time(text, &v->d, why, whylen);
	case CFG_T_POOL_MODE:
	case CFG_T_AUTH_TYPE:
	case CFG_T_SSLMODE:
	case CFG_T_LB:
		return cfg_parse_enum(k->type, text, &v->e, why, whylen);
	}
	cfg_why(why, whylen, "bug: unknown key type");
	return false;
}

/* Moves a parsed value into its field (freeing the old string) or drops it. */
static void cfg_store(struct cfg *c, const struct cfg_key *k, union cfg_val *v)
{
	char *field;

	if (!cfg_key_implemented(k)) {
		if (k->type == CFG_T_STR || k->type == CFG_T_FLAG_STR || k->type == CFG_T_HOSTPORT)
			free(v->s);
		return;
	}
	field = (char *)c + k->off;
	switch (k->type) {
	case CFG_T_STR:
	case CFG_T_HOSTPORT:
	case CFG_T_FLAG_STR:
		free(*(char **)field);
		*(char **)field = v->s;
		break;
	case CFG_T_INT:
	case CFG_T_MODE:
		*(int *)field = (int)v->i;
		break;
	case CFG_T_BOOL:
		*(bool *)field = v->b;
		break;
	case CFG_T_TIME:
		*(double *)field = v->d;
		break;
	case CFG_T_POOL_MODE:
		*(enum pool_mode *)field = (enum pool_mode)v->e;
		break;
	case CFG_T_AUTH_TYPE:
		*(enum cfg_auth_type *)field = (enum cfg_auth_type)v->e;
		break;
	case CFG_T_SSLMODE:
		*(int *)field = (int)v->e; /* enum tls_sslmode's order */
		break;
	case CFG_T_LB:
		break;
	}
	v->s = NULL;
}

/* Validates text for key i and updates both the typed field and raw[i]. */
static bool cfg_set_index(struct cfg *c, size_t i, const char *text, char *why, size_t whylen)
{
	const struct cfg_key *k = &cfg_keys[i];
	union cfg_val v;
	char *raw;

	if (!cfg_parse_value(k, text, &v, why, whylen))
		return false;
	raw = strdup(text);
	if (raw == NULL) {
		free(v.s);
		cfg_why(why, whylen, "out of memory");
		return false;
	}
	free(c->raw[i]);
	c->raw[i] = raw;
	cfg_store(c, k, &v);
	return true;
}

/* ---- struct cfg lifetime ---- */

static void cfg_db_clear(struct cfg_db *d)
{
	free(d->name);
	free(d->host);
	free(d->dbname);
	free(d->user);
	free(d->password);
	free(d->auth_user);
	free(d->auth_dbname);
	free(d->auth_query);
	free(d->client_encoding);
	free(d->datestyle);
	free(d->timezone);
	free(d->application_name);
	free(d->connect_query);
}

void cfg_free(struct cfg *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < CFG_NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];

		if (cfg_key_implemented(k) && (k->type == CFG_T_STR || k->type == CFG_T_FLAG_STR ||
						k->type == CFG_T_HOSTPORT))
			free(*(char **)((char *)c + k->off));
		if (c->raw != NULL)
			free(c->raw[i]);
	}
	for (size_t i = 0; i < c->ndbs; i++)
		cfg_db_clear(&c->dbs[i]);
	free(c->dbs);
	for (size_t i = 0; i < c->nusers; i++)
		free(c->users[i].name);
	free(c->users);
	free(c->raw);
	free(c->path);
	free(c);
}

/* A struct cfg holding every default. NULL only when out of memory. */
static struct cfg *cfg_new(const char *path)
{
	char why[256];
	struct cfg *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->path = strdup(path);
	c->raw = calloc(CFG_NKEYS, sizeof(*c->raw));
	if (c->path == NULL || c->raw == NULL)
		goto fail;
	for (size_t i = 0; i < CFG_NKEYS; i++) {
		if (!cfg_set_index(c, i, cfg_keys[i].def, why, sizeof(why))) {
			/* Out of memory, or a default that fails its own bounds. */
			log_error("config: default of %s: %s", cfg_keys[i].name, why);
			goto fail;
		}
	}
	return c;
fail:
	cfg_free(c);
	return NULL;
}

/* ---- connection strings: [databases] and [users] values ---- */

/* A key inside a [databases] or [users] value, stored at off in its struct. */
struct cfg_sub_key {
	const char *name;
	enum cfg_type type; /* STR, INT, TIME, POOL_MODE or LB */
	size_t off;
	long long min, max;
};

#define DBK(name, type, field, min, max) { name, type, offsetof(struct cfg_db, field), min, max }
static const struct cfg_sub_key cfg_db_keys[] = {
	DBK("host", CFG_T_STR, host, 0, 0),
	DBK("port", CFG_T_INT, port, 1, 65535),
	DBK("dbname", CFG_T_STR, dbname, 0, 0),
	DBK("user", CFG_T_STR, user, 0, 0),
	DBK("password", CFG_T_STR, password, 0, 0),
	DBK("auth_user", CFG_T_STR, auth_user, 0, 0),
	DBK("auth_dbname", CFG_T_STR, auth_dbname, 0, 0),
	DBK("auth_query", CFG_T_STR, auth_query, 0, 0),
	DBK("pool_size", CFG_T_INT, pool_size, 0, INT_MAX),
	DBK("min_pool_size", CFG_T_INT, min_pool_size, 0, INT_MAX),
	DBK("reserve_pool", CFG_T_INT, reserve_pool, 0, INT_MAX),
	DBK("reserve_pool_size", CFG_T_INT, reserve_pool, 0, INT_MAX),
	DBK("connect_query", CFG_T_STR, connect_query, 0, 0),
	DBK("pool_mode", CFG_T_POOL_MODE, pool_mode, 0, 0),
	DBK("max_db_connections", CFG_T_INT, max_db_connections, 0, INT_MAX),
	DBK("max_db_client_connections", CFG_T_INT, max_db_client_connections, 0, INT_MAX),
	DBK("client_encoding", CFG_T_STR, client_encoding, 0, 0),
	DBK("datestyle", CFG_T_STR, datestyle, 0, 0),
	DBK("timezone", CFG_T_STR, timezone, 0, 0),
	DBK("application_name", CFG_T_STR, application_name, 0, 0),
	DBK("server_lifetime", CFG_T_TIME, server_lifetime, 0, 0),
	DBK("load_balance_hosts", CFG_T_LB, load_balance_hosts, 0, 0),
};
#undef DBK

#define USK(name, type, field) { name, type, offsetof(struct cfg_user, field), 0, INT_MAX }
static const struct cfg_sub_key cfg_user_keys[] = {
	USK("pool_mode", CFG_T_POOL_MODE, pool_mode),
	USK("pool_size", CFG_T_INT, pool_size),
	USK("reserve_pool_size", CFG_T_INT, reserve_pool_size),
	USK("max_user_connections", CFG_T_INT, max_user_connections),
	USK("max_user_client_connections", CFG_T_INT, max_user_client_connections),
	USK("query_timeout", CFG_T_TIME, query_timeout),
	USK("idle_transaction_timeout", CFG_T_TIME, idle_transaction_timeout),
	USK("transaction_timeout", CFG_T_TIME, transaction_timeout),
	USK("client_idle_timeout", CFG_T_TIME, client_idle_timeout),
};
#undef USK

static const struct cfg_sub_key *cfg_sub_key_find(const struct cfg_sub_key *keys, size_t n,
						  const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	}
	return NULL;
}

/* Parses val for sub-key k and stores it into the struct at base. */
static bool cfg_sub_set(void *base, const struct cfg_sub_key *k, const char *val, char *why,
			size_t whylen)
{
	char *field = (char *)base + k->off;
	long long i;
	double d;
	char *s;
	int e;

	switch (k->type) {
	case CFG_T_STR:
		s = strdup(val);
		if (s == NULL) {
			cfg_why(why, whylen, "out of memory");
			return false;
		}
		free(*(char **)field);
		*(char **)field = s;
		return true;
	case CFG_T_INT:
		if (!cfg_parse_int(val, k->min, k->max, 0, &i, why, whylen))
			return false;
		*(int *)field = (int)i;
		return true;
	case CFG_T_TIME:
		if (!cfg_parse_time(val, &d, why, whylen))
			return false;
		*(double *)field = d;
		return true;
	case CFG_T_POOL_MODE:
	case CFG_T_LB:
		if (!cfg_parse_enum(k->type, val, &e, why, whylen))
			return false;
		*(int *)field = e;
		return true;
	default:
		cfg_why(why, whylen, "bug: bad sub-key type");
		return false;
	}
}

/*
 * Next key=value pair of a libpq-style string, PgBouncer flavour: pairs
 * are separated by whitespace; a value is either a run of non-blanks taken
 * literally, or single-quoted, where \' \\ and '' stand for ' \ and '.
 * Empty values are refused, as PgBouncer does. *pp advances; key and value
 * point into the (modified) string. Returns 1 for a pair, 0 at the end,
 * -1 with why filled on a syntax error.
 */
static int cfg_connstr_next(char **pp, char **key, char **val, char *why, size_t whylen)
{
	char *p = *pp, *dst;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0')
		return 0;

	*key = p;
	while (*p != '\0' && *p != '=' && !isspace((unsigned char)*p))
		p++;
	if (p == *key) {
		cfg_why(why, whylen, "syntax error: missing parameter name before \"=\"");
		return -1;
	}
	dst = p;
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '=') {
		*dst = '\0';
		cfg_why(why, whylen, "syntax error: expected \"=\" after \"%s\"", *key);
		return -1;
	}
	*dst = '\0';
	p++;
	while (isspace((unsigned char)*p))
		p++;

	if (*p == '\'') {
		*val = dst = ++p;
		for (;;) {
			if (*p == '\0') {
				cfg_why(why, whylen, "unterminated quoted value for \"%s\"", *key);
				return -1;
			}
			if (*p == '\\' && p[1] != '\0') {
				p++;
			} else if (*p == '\'') {
				if (p[1] != '\'')
					break;
				p++;
			}
			*dst++ = *p++;
		}
		p++; /* the closing quote */
		if (*p != '\0' && !isspace((unsigned char)*p)) {
			cfg_why(why, whylen, "junk after quoted value for \"%s\"", *key);
			return -1;
		}
		*dst = '\0';
	} else {
		*val = p;
		while (*p != '\0' && !isspace((unsigned char)*p))
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}
	if (**val == '\0') {
		cfg_why(why, whylen, "empty value for \"%s\"", *key);
		return -1;
	}
	*pp = p;
	return 1;
}

/*
 * Applies every pair of connstr to the struct at base. what is "database"
 * or "user", for messages; unknown keys are errors, as in PgBouncer.
 */
static bool cfg_apply_connstr(void *base, const struct cfg_sub_key *keys, size_t nkeys,
			      const char *connstr, char *why, size_t whylen)
{
	char *copy, *p, *key, *val;
	char sub[200];
	int rc;

	copy = strdup(connstr);
	if (copy == NULL) {
		cfg_why(why, whylen, "out of memory");
		return false;
	}
	p = copy;
	while ((rc = cfg_connstr_next(&p, &key, &val, why, whylen)) > 0) {
		const struct cfg_sub_key *k = cfg_sub_key_find(keys, nkeys, key);

		if (k == NULL) {
			cfg_why(why, whylen, "unknown parameter \"%s\"", key);
			rc = -1;
			break;
		}
		if (!cfg_sub_set(base, k, val, sub, sizeof(sub))) {
			cfg_why(why, whylen, "%s: %s", key, sub);
			rc = -1;
			break;
		}
	}
	free(copy);
	return rc == 0;
}

/*
 * Names in [databases] and [users] may be SQL-quoted ("my db", with ""
 * for a quote), as in PgBouncer. Returns a malloc'd copy, NULL on bad
 * quoting (why filled) or out of memory.
 */
static char *cfg_unquote_name(const char *name, char *why, size_t whylen)
{
	size_t len = strlen(name);
	char *out, *dst;

	if (name[0] != '"') {
		out = strdup(name);
		if (out == NULL)
			cfg_why(why, whylen, "out of memory");
		return out;
	}
	out = malloc(len);
	if (out == NULL) {
		cfg_why(why, whylen, "out of memory");
		return NULL;
	}
	dst = out;
	for (const char *p = name + 1;; p++) {
		if (*p == '\0') {
			cfg_why(why, whylen, "unterminated quoted name %s", name);
			break;
		}
		if (*p == '"') {
			if (p[1] == '"') {
				*dst++ = *p++;
				continue;
			}
			if (p[1] != '\0') {
				cfg_why(why, whylen, "junk after quoted name %s", name);
				break;
			}
			*dst = '\0';
			if (dst == out) {
				cfg_why(why, whylen, "empty name");
				break;
			}
			return out;
		}
		*dst++ = *p;
	}
	free(out);
	return NULL;
}

/* ---- the ini loader ---- */

#define CFG_MAX_INCLUDE 10
/* A sanity cap on one line; connection strings stay far below it. */
#define CFG_MAX_LINE 65536
/*
 * Placeholder key the reader hands inih for lines that cfg_ini_handler()
 * must split itself (the real line stays in ld->cur). \x01 cannot occur
 * in a real key: the reader refuses control characters.
 */
#define CFG_SELF_PARSE "\x01pgmux"

struct cfg_src {
	FILE *f;
	char *path;
	int line;
};

struct cfg_loader {
	struct cfg *c;
	struct cfg_src src[CFG_MAX_INCLUDE + 1]; /* [0]: the main file */
	int depth;            /* index of the file being read; -1 when done */
	char *buf;            /* getline() buffer: the current line */
	size_t cap;
	char *cur;            /* current line, trimmed, inside buf */
	const char *path;     /* file and line of cur */
	int line;
	bool failed;
	char *err;
	size_t errlen;
	bool noted[CFG_NKEYS]; /* not-implemented keys already logged */
};

static void cfg_fail(struct cfg_loader *ld, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void cfg_fail(struct cfg_loader *ld, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ld->failed)
		return;
	ld->failed = true;
	if (ld->errlen == 0)
		return;
	n = snprintf(ld->err, ld->errlen, "%s:%d: ", ld->path, ld->line);
	if (n < 0 || (size_t)n >= ld->errlen)
		return;
	va_start(ap, fmt);
	if (vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap) < 0)
		ld->err[n] = '\0';
	va_end(ap);
}

static bool cfg_section_is_main(const char *s)
{
	return strcasecmp(s, "pgmux") == 0 || strcasecmp(s, "pgbouncer") == 0;
}

static bool cfg_section_known(const char *s)
{
	return cfg_section_is_main(s) || strcasecmp(s, "databases") == 0 ||
	       strcasecmp(s, "users") == 0;
}

static bool cfg_push_file(struct cfg_loader *ld, const char *path)
{
	struct cfg_src *src;

	if (ld->depth + 1 > CFG_MAX_INCLUDE) {
		cfg_fail(ld, "%%include nested more than %d deep", CFG_MAX_INCLUDE);
		return false;
	}
	src = &ld->src[ld->depth + 1];
	src->f = fopen(path, "re");
	if (src->f == NULL) {
		if (ld->depth < 0)
			snprintf(ld->err, ld->errlen, "%s: cannot open: %s", path, strerror(errno));
		else
			cfg_fail(ld, "cannot open included file \"%s\": %s", path,
				 strerror(errno));
		ld->failed = true;
		return false;
	}
	src->path = strdup(path);
	if (src->path == NULL) {
		fclose(src->f);
		cfg_fail(ld, "out of memory");
		return false;
	}
	src->line = 0;
	ld->depth++;
	return true;
}

static void cfg_pop_file(struct cfg_loader *ld)
{
	struct cfg_src *src = &ld->src[ld->depth];

	fclose(src->f);
	free(src->path);
	src->f = NULL;
	src->path = NULL;
	ld->depth--;
}

/* Copies s plus "\n" into inih's buffer; false if it does not fit. */
static bool cfg_emit(char *str, int num, const char *s)
{
	size_t len = strlen(s);

	if (num < 2 || len + 2 > (size_t)num)
		return false;
	memcpy(str, s, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return true;
}

/*
 * inih's line source (fgets-style). Besides counting lines, it fixes the
 * places where inih's syntax differs from PgBouncer's, which pgmux must
 * read the same way:
 *  - leading whitespace is dropped, because inih would glue an indented
 *    line onto the previous value (python-style continuation lines);
 *  - comment and blank lines never reach inih; "%include file" is expanded
 *    here (path relative to the working directory, like PgBouncer);
 *  - PgBouncer has no inline comments and splits only at '=', while inih
 *    cuts values at " ;" and also splits at ':'. Lines containing ';' or a
 *    ':' before the '=' are handed over as the CFG_SELF_PARSE placeholder
 *    and split by cfg_ini_handler() instead, so "password='a ;b'" survives;
 *  - so are lines longer than inih's fixed buffer (INI_MAX_LINE, 200 in
 *    Debian's build): inih would cut them into pieces and parse the tail
 *    as a new line, silently. Long connection strings therefore just work.
 * Syntax errors stop the load here with file:line, which inih cannot give.
 */
static char *cfg_reader(char *str, int num, void *stream)
{
	struct cfg_loader *ld = stream;

	while (!ld->failed && ld->depth >= 0) {
		struct cfg_src *src = &ld->src[ld->depth];
		char *text, *end, *eq;
		ssize_t n;

		n = getline(&ld->buf, &ld->cap, src->f);
		if (n < 0) {
			if (ferror(src->f)) {
				ld->path = src->path;
				cfg_fail(ld, "read error: %s", strerror(errno));
				return NULL;
			}
			cfg_pop_file(ld);
			continue;
		}
		src->line++;
		ld->path = src->path;
		ld->line = src->line;
		if (n > CFG_MAX_LINE) {
			cfg_fail(ld, "line too long (over %d bytes)", CFG_MAX_LINE);
			return NULL;
		}

		text = ld->buf;
		if (src->line == 1 && n >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
			text += 3; /* UTF-8 byte order mark */
		end = ld->buf + n;
		while (end > text && isspace((unsigned char)end[-1]))
			end--;
		*end = '\0';
		while (isspace((unsigned char)*text))
			text++;
		for (const char *p = text; p < end; p++) {
			if (*p == '\0' || ((unsigned char)*p < 0x20 && *p != '\t')) {
				cfg_fail(ld, "control character in line");
				return NULL;
			}
		}
		ld->cur = text;

		if (*text == '\0' || *text == ';' || *text == '#')
			continue;

		if (strncmp(text, "%include", 8) == 0 && (text[8] == ' ' || text[8] == '\t')) {
			const char *fn = text + 9;

			while (*fn == ' ' || *fn == '\t')
				fn++;
			if (!cfg_push_file(ld, fn))
				return NULL;
			continue;
		}

		if (*text == '[') {
			char *close = strchr(text, ']');

			if (close == NULL) {
				cfg_fail(ld, "syntax error: missing \"]\" in section header");
				return NULL;
			}
			*close = '\0';
			if (strcasecmp(text + 1, "peers") == 0)
				log_warn("%s:%d: section [peers] is not supported by pgmux, "
					 "ignored", ld->path, ld->line);
			else if (!cfg_section_known(text + 1))
				log_warn("%s:%d: unknown section [%s], ignored", ld->path, ld->line,
					 text + 1);
			*close = ']';
			close[1] = '\0'; /* text after "]" is dropped, as inih would */
			if (!cfg_emit(str, num, text)) {
				cfg_fail(ld, "section header too long");
				return NULL;
			}
			return str;
		}

		eq = strchr(text, '=');
		if (eq == NULL) {
			cfg_fail(ld, "syntax error: expected key = value");
			return NULL;
		}
		if (memchr(text, ':', (size_t)(eq - text)) != NULL || strchr(text, ';') != NULL ||
		    !cfg_emit(str, num, text)) {
			if (!cfg_emit(str, num, CFG_SELF_PARSE " =")) {
				cfg_fail(ld, "bug: inih line buffer too small");
				return NULL;
			}
		}
		return str;
	}
	return NULL;
}

/* One [pgmux]/[pgbouncer] key. Unknown keys warn; bad values fail the load. */
static bool cfg_handle_main(struct cfg_loader *ld, const char *section, const char *name,
			    const char *value)
{
	char why[512];
	int i = cfg_key_index(name);

	if (i < 0) {
		log_warn("%s:%d: unknown key \"%s\" in section [%s], ignored", ld->path, ld->line,
			 name, section);
		return true;
	}
	if (!cfg_set_index(ld->c, (size_t)i, value, why, sizeof(why))) {
		cfg_fail(ld, "%s: %s", name, why);
		return false;
	}
	if (!cfg_key_implemented(&cfg_keys[i]) && !ld->noted[i] &&
	    strcmp(value, cfg_keys[i].def) != 0) {
		ld->noted[i] = true;
		log_debug("%s:%d: %s is accepted for PgBouncer compatibility but not implemented "
			  "by pgmux yet",
			  ld->path, ld->line, name);
	}
	return true;
}

static bool cfg_handle_db(struct cfg_loader *ld, const char *rawname, const char *connstr)
{
	struct cfg *c = ld->c;
	struct cfg_db d = {
		.port = 5432,
		.pool_size = -1,
		.min_pool_size = -1,
		.reserve_pool = -1,
		.max_db_connections = -1,
		.max_db_client_connections = -1,
		.pool_mode = -1,
		.server_lifetime = -1,
		.load_balance_hosts = -1,
		.line = ld->line,
	};
	struct cfg_db *dbs;
	char why[512];

	d.name = cfg_unquote_name(rawname, why, sizeof(why));
	if (d.name == NULL) {
		cfg_fail(ld, "database %s: %s", rawname, why);
		return false;
	}
	/* The admin console answers on these names. */
	if (strcmp(d.name, "pgbouncer") == 0 || strcmp(d.name, "pgmux") == 0) {
		cfg_fail(ld, "database name \"%s\" is reserved for the admin console", d.name);
		goto fail;
	}
	if (!cfg_apply_connstr(&d, cfg_db_keys, ARRAY_SIZE(cfg_db_keys), connstr, why,
			       sizeof(why))) {
		cfg_fail(ld, "database \"%s\": %s", d.name, why);
		goto fail;
	}

	/* A later entry replaces an earlier one, as in PgBouncer. */
	for (size_t i = 0; i < c->ndbs; i++) {
		if (strcmp(c->dbs[i].name, d.name) == 0) {
			log_warn("%s:%d: database \"%s\" is defined again (first at line %d); "
				 "the new definition replaces it",
				 ld->path, ld->line, d.name, c->dbs[i].line);
			cfg_db_clear(&c->dbs[i]);
			c->dbs[i] = d;
			return true;
		}
	}
	dbs = realloc(c->dbs, (c->ndbs + 1) * sizeof(*dbs));

	if (dbs == NULL) {
		cfg_fail(ld, "out of memory");
		goto fail;
	}
	c->dbs = dbs;
	c->dbs[c->ndbs++] = d;
	return true;
fail:
	cfg_db_clear(&d);
	return false;
}

static bool cfg_handle_user(struct cfg_loader *ld, const char *rawname, const char *settings)
{
	struct cfg *c = ld->c;
	struct cfg_user u = {
		.pool_mode = -1,
		.pool_size = -1,
		.reserve_pool_size = -1,
		.max_user_connections = -1,
		.max_user_client_connections = -1,
		.query_timeout = -1,
		.idle_transaction_timeout = -1,
		.transaction_timeout = -1,
		.client_idle_timeout = -1,
		.line = ld->line,
	};
	struct cfg_user *users;
	char why[512];

	u.name = cfg_unquote_name(rawname, why, sizeof(why));
	if (u.name == NULL) {
		cfg_fail(ld, "user %s: %s", rawname, why);
		return false;
	}
	if (!cfg_apply_connstr(&u, cfg_user_keys, ARRAY_SIZE(cfg_user_keys), settings, why,
			       sizeof(why))) {
		cfg_fail(ld, "user \"%s\": %s", u.name, why);
		free(u.name);
		return false;
	}
	for (size_t i = 0; i < c->nusers; i++) {
		if (strcmp(c->users[i].name, u.name) == 0) {
			log_warn("%s:%d: user \"%s\" is defined again (first at line %d); "
				 "the new definition replaces it",
				 ld->path, ld->line, u.name, c->users[i].line);
			free(c->users[i].name);
			c->users[i] = u;
			return true;
		}
	}
	users = realloc(c->users, (c->nusers + 1) * sizeof(*users));

	if (users == NULL) {
		cfg_fail(ld, "out of memory");
		free(u.name);
		return false;
	}
	c->users = users;
	c->users[c->nusers++] = u;
	return true;
}

static char *cfg_rstrip(char *s)
{
	char *end = s + strlen(s);

	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

/* inih's callback; returns 0 to report an error (the load is then over). */
static int cfg_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_loader *ld = user;
	bool ok;

	if (ld->failed)
		return 0;
	if (strcmp(name, CFG_SELF_PARSE) == 0) {
		/* The reader made sure the line has a '=' and no control characters. */
		char *eq = strchr(ld->cur, '=');

		*eq = '\0';
		name = cfg_rstrip(ld->cur);
		value = eq + 1;
		while (isspace((unsigned char)*value))
			value++;
	}
	if (name[0] == '\0') {
		cfg_fail(ld, "syntax error: missing key before \"=\"");
		return 0;
	}

	if (section[0] == '\0') {
		cfg_fail(ld, "key \"%s\" outside of any section", name);
		return 0;
	} else if (cfg_section_is_main(section)) {
		ok = cfg_handle_main(ld, section, name, value);
	} else if (strcasecmp(section, "databases") == 0) {
		ok = cfg_handle_db(ld, name, value);
	} else if (strcasecmp(section, "users") == 0) {
		ok = cfg_handle_user(ld, name, value);
	} else {
		ok = true; /* unknown section: the reader has warned */
	}
	return ok ? 1 : 0;
}

/* Checks that need more than one key. path: for messages. */
static bool cfg_validate(const struct cfg *c, char *err, size_t errlen)
{
	if (c->listen_addr == NULL && c->unix_socket_dir == NULL) {
		snprintf(err, errlen, "%s: listen_addr and unix_socket_dir are both empty: "
			 "nothing to listen on", c->path);
		return false;
	}
	if (c->auth_type == CFG_AUTH_HBA && c->auth_hba_file == NULL) {
		snprintf(err, errlen, "%s: auth_type = hba needs auth_hba_file", c->path);
		return false;
	}
	if (c->min_pool_size > c->default_pool_size)
		log_warn("%s: min_pool_size (%d) is above default_pool_size (%d); pools stay "
			 "at their size",
			 c->path, c->min_pool_size, c->default_pool_size);
	return true;
}

struct cfg *cfg_load(const char *path, char *err, size_t errlen)
{
	struct cfg_loader ld;
	char dummy[1];
	int rc, conffile;

	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	memset(&ld, 0, sizeof(ld));
	ld.depth = -1;
	ld.err = err;
	ld.errlen = errlen;
	ld.path = path;

	ld.c = cfg_new(path);
	if (ld.c == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if (!cfg_push_file(&ld, path))
		goto fail;

	rc = ini_parse_stream(cfg_reader, &ld, cfg_ini_handler, &ld);
	while (ld.depth >= 0)
		cfg_pop_file(&ld);
	free(ld.buf);
	ld.buf = NULL;
	if (ld.failed)
		goto fail;
	if (rc == -2) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	if (rc != 0) {
		/* The reader should have caught every syntax error inih knows. */
		snprintf(err, errlen, "%s: syntax error (inih line %d)", path, rc);
		goto fail;
	}

	conffile = cfg_key_index("conffile");
	if (ld.c->raw[conffile][0] == '\0' &&
	    !cfg_set_index(ld.c, (size_t)conffile, path, err, errlen))
		goto fail;
	if (!cfg_validate(ld.c, err, errlen))
		goto fail;
	return ld.c;
fail:
	while (ld.depth >= 0)
		cfg_pop_file(&ld);
	free(ld.buf);
	cfg_free(ld.c);
	return NULL;
}

/* ---- lookups, SHOW CONFIG, SET, RELOAD ---- */

const struct cfg_db *cfg_find_db(const struct cfg *c, const char *name)
{
	const struct cfg_db *fallback = NULL;

	if (c == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < c->ndbs; i++) {
		if (strcmp(c->dbs[i].name, name) == 0)
			return &c->dbs[i];
		if (strcmp(c->dbs[i].name, "*") == 0)
			fallback = &c->dbs[i];
	}
	return fallback;
}

const struct cfg_user *cfg_find_user(const struct cfg *c, const char *name)
{
	if (c == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < c->nusers; i++) {
		if (strcmp(c->users[i].name, name) == 0)
			return &c->users[i];
	}
	return NULL;
}

bool cfg_list_contains(const char *list, const char *name)
{
	size_t nlen;

	if (list == NULL || name == NULL || name[0] == '\0')
		return false;
	nlen = strlen(name);
	while (*list != '\0') {
		size_t len;

		while (*list == ',' || isspace((unsigned char)*list))
			list++;
		len = 0;
		while (list[len] != '\0' && list[len] != ',' && !isspace((unsigned char)list[len]))
			len++;
		if (len == nlen && memcmp(list, name, len) == 0)
			return true;
		list += len;
	}
	return false;
}

size_t cfg_key_count(void)
{
	return CFG_NKEYS;
}

void cfg_key_at(const struct cfg *c, size_t i, struct cfg_key_view *out)
{
	const struct cfg_key *k = &cfg_keys[i < CFG_NKEYS ? i : 0];

	out->key = k->name;
	out->value = c->raw[i < CFG_NKEYS ? i : 0];
	out->def = k->def;
	out->reloadable = !(k->flags & CFG_F_NO_RELOAD);
}

int cfg_set(struct cfg *c, const char *key, const char *value, char *err, size_t errlen)
{
	char why[512];
	int i = cfg_key_index(key);

	if (i < 0) {
		snprintf(err, errlen, "unknown key \"%s\"", key);
		return -1;
	}
	if (cfg_keys[i].flags & CFG_F_NO_RELOAD) {
		snprintf(err, errlen, "%s: cannot be changed while running", key);
		return -1;
	}
	if (!cfg_set_index(c, (size_t)i, value, why, sizeof(why))) {
		snprintf(err, errlen, "%s: %s", key, why);
		return -1;
	}
	if (cfg_keys[i].apply != NULL)
		cfg_keys[i].apply(c);
	return 0;
}

int cfg_diff_fixed(const struct cfg *old, const struct cfg *next, char *out, size_t outlen)
{
	size_t used = 0;
	int count = 0;

	if (outlen > 0)
		out[0] = '\0';
	for (size_t i = 0; i < CFG_NKEYS; i++) {
		if (!(cfg_keys[i].flags & CFG_F_NO_RELOAD) ||
		    strcmp(old->raw[i], next->raw[i]) == 0)
			continue;
		count++;
		if (used < outlen) {
			int n = snprintf(out + used, outlen - used, "%s%s", count > 1 ? ", " : "",
					 cfg_keys[i].name);

			if (n > 0)
				used += (size_t)n;
		}
	}
	return count;
}
