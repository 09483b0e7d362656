/*
 * test_admin_show.c: the console's SHOW commands as PgBouncer 1.25 tooling
 * sees them: every command's column names, order and type OIDs (one table,
 * written from the wire spec, not from pgmux's source), the documented row
 * sets (TOTALS, LISTS, STATE, MEM), the console's own database/user/pool,
 * SHOW CLIENTS/SERVERS for a live client, SHOW HELP as a NOTICE, the SELECT
 * alias, parse errors and the stats_users privilege boundary.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#define STATS_USER "statsu"
#define STATS_PASSWORD "stats-pw"

/*
 * Type letters as in PgBouncer's pktbuf.c: s text, i int4, q int8,
 * N numeric, T text (PgBouncer's timestamps are text); '?' means the spec
 * does not fix the type (pgmux-only views and legacy columns).
 */
struct show_spec {
	const char *cmd;
	const char *types;
	const char *const *cols; /* NULL-terminated */
};

#define COLS(...) ((const char *const[]){ __VA_ARGS__, NULL })

#define SOCKET_COLS                                                          \
	COLS("type", "user", "database", "replication", "state", "addr",     \
	     "port", "local_addr", "local_port", "connect_time",             \
	     "request_time", "wait", "wait_us", "close_needed", "ptr", "link", \
	     "remote_pid", "tls", "application_name", "prepared_statements",  \
	     "id")
#define SOCKET_TYPES "ssssssisiTTiiississii"

static const struct show_spec show_specs[] = {
	{ "SHOW VERSION", "s", COLS("version") },
	{ "SHOW CONFIG", "ssss", COLS("key", "value", "default", "changeable") },
	/* 1.25's 17 columns, then pgmux's legacy reserve_pool for the
	 * Debian bookworm exporter. */
	{ "SHOW DATABASES", "ssissiiiissiiiiii?",
	  COLS("name", "host", "port", "database", "force_user", "pool_size",
	       "min_pool_size", "reserve_pool_size", "server_lifetime",
	       "pool_mode", "load_balance_hosts", "max_connections",
	       "current_connections", "max_client_connections",
	       "current_client_connections", "paused", "disabled",
	       "reserve_pool") },
	{ "SHOW USERS", "ssssiiii",
	  COLS("name", "pool_size", "reserve_pool_size", "pool_mode",
	       "max_user_connections", "current_connections",
	       "max_user_client_connections", "current_client_connections") },
	{ "SHOW POOLS", "ssiiiiiiiiiiiiiss",
	  COLS("database", "user", "cl_active", "cl_waiting",
	       "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active",
	       "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used",
	       "sv_tested", "sv_login", "maxwait", "maxwait_us", "pool_mode",
	       "load_balance_hosts") },
	{ "SHOW CLIENTS", SOCKET_TYPES, SOCKET_COLS },
	{ "SHOW SERVERS", SOCKET_TYPES, SOCKET_COLS },
	/* Server-side order (assignment count first); pgmux's 12th total and
	 * average is the client login count; total_requests is legacy. */
	{ "SHOW STATS", "sNNNNNNNNNNNNNNNNNNNNNNNN?",
	  COLS("database", "total_server_assignment_count", "total_xact_count",
	       "total_query_count", "total_received", "total_sent",
	       "total_xact_time", "total_query_time", "total_wait_time",
	       "total_client_parse_count", "total_server_parse_count",
	       "total_bind_count", "total_client_login_count",
	       "avg_server_assignment_count", "avg_xact_count",
	       "avg_query_count", "avg_recv", "avg_sent", "avg_xact_time",
	       "avg_query_time", "avg_wait_time", "avg_client_parse_count",
	       "avg_server_parse_count", "avg_bind_count",
	       "avg_client_login_count", "total_requests") },
	{ "SHOW STATS_TOTALS", "sNNNNNNNNNNN",
	  COLS("database", "server_assignment_count", "xact_count",
	       "query_count", "bytes_received", "bytes_sent", "xact_time",
	       "query_time", "wait_time", "client_parse_count",
	       "server_parse_count", "bind_count") },
	{ "SHOW STATS_AVERAGES", "sNNNNNNNNNNN",
	  COLS("database", "server_assignment_count", "xact_count",
	       "query_count", "bytes_received", "bytes_sent", "xact_time",
	       "query_time", "wait_time", "avg_client_parse_count",
	       "avg_server_parse_count", "avg_bind_count") },
	{ "SHOW TOTALS", "sN", COLS("name", "value") },
	{ "SHOW LISTS", "si", COLS("list", "items") },
	{ "SHOW MEM", "siiii", COLS("name", "size", "used", "free", "memtotal") },
	{ "SHOW STATE", "ss", COLS("key", "value") },
	{ "SHOW PEERS", "isii", COLS("peer_id", "host", "port", "pool_size") },
	{ "SHOW PEER_POOLS", "iiiii",
	  COLS("peer_id", "cl_active_cancel_req", "cl_waiting_cancel_req",
	       "sv_active_cancel", "sv_login") },
	{ "SHOW DNS_HOSTS", "sqs", COLS("hostname", "ttl", "addrs") },
	{ "SHOW DNS_ZONES", "sqi", COLS("zonename", "serial", "count") },
	/* pgmux-only views (issue 3). */
	{ "SHOW FDS", "????????",
	  COLS("fd", "kind", "state", "user", "database", "addr", "port",
	       "age_s") },
	{ "SHOW FD_USAGE", "?????????????????",
	  COLS("limit_soft", "limit_hard", "open", "listeners", "clients",
	       "servers", "admin", "cancel", "internal", "unaccounted",
	       "reserved", "headroom", "max_clients_possible", "emfile_count",
	       "refused_count", "accept_backlog", "backlog_overflows") },
	{ "SHOW SATURATION", "??????????????",
	  COLS("database", "user", "pool_size", "sv_active", "sv_idle",
	       "cl_waiting", "cl_waiting_max", "saturated_s",
	       "utilization_pct", "wait_p50_us", "wait_p99_us", "wait_max_us",
	       "query_wait_timeouts", "rejected") },
};

static unsigned type_oid(char letter)
{
	switch (letter) {
	case 's':
	case 'T':
		return 25;
	case 'i':
		return 23;
	case 'q':
		return 20;
	case 'N':
		return 1700;
	default:
		return 0;
	}
}

/* Appends to a growing report; the test fails once with all of it. */
static void report(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void report(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

static const char *userlist(void)
{
	static char buf[512];
	const struct harness_fixture *fx = harness_fixture();

	harness_fmt(buf, sizeof(buf), "\"%s\" \"%s\"\n\"%s\" \"%s\"\n\"%s\" \"%s\"\n",
		    fx->app_user, fx->app_password, fx->admin_user,
		    fx->admin_password, STATS_USER, STATS_PASSWORD);
	return buf;
}

/* admin_users = the fixture's admin (harness default); stats_users = statsu. */
static void start_pooler(struct harness_pooler *p)
{
	struct harness_pooler_cfg cfg = {
		.settings = "stats_users = " STATS_USER "\n",
		.userlist = userlist(),
	};

	harness_pooler_start(p, &cfg);
}

static int local_port(PGconn *c)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	assert_int_equal(getsockname(PQsocket(c), (struct sockaddr *)&sa, &len), 0);
	return ntohs(sa.sin_port);
}

/* Row of SHOW CLIENTS for the connection c (matched by its source port). */
static int client_row(PGresult *r, PGconn *c)
{
	char port[16];

	harness_fmt(port, sizeof(port), "%d", local_port(c));
	return harness_find_row(r, "port", port, "addr", "127.0.0.1");
}

/* ---- columns ------------------------------------------------------------ */

static void test_admin_show_every_command_has_the_documented_columns_in_order(void **state)
{
	struct harness_pooler p;
	char problems[8192] = "";
	PGconn *admin, *app;
	size_t i;

	start_pooler(&p);
	/* A client in a transaction, so CLIENTS/SERVERS/POOLS have real rows. */
	app = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(app, "BEGIN");
	harness_exec(app, "SELECT 1");
	admin = harness_connect_admin(&p);

	for (i = 0; i < sizeof(show_specs) / sizeof(show_specs[0]); i++) {
		const struct show_spec *s = &show_specs[i];
		PGresult *r = PQexec(admin, s->cmd);
		int want = 0, n, k;

		while (s->cols[want] != NULL)
			want++;
		assert_int_equal((int)strlen(s->types), want); /* table sanity */
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			report(problems, sizeof(problems), "%s: %s: %s", s->cmd,
			       PQresStatus(PQresultStatus(r)), PQerrorMessage(admin));
			PQclear(r);
			continue;
		}
		if (strcmp(PQcmdStatus(r), "SHOW") != 0)
			report(problems, sizeof(problems), "%s: tag '%s', expected 'SHOW'\n",
			       s->cmd, PQcmdStatus(r));
		n = PQnfields(r);
		if (n != want)
			report(problems, sizeof(problems), "%s: %d columns, expected %d\n",
			       s->cmd, n, want);
		for (k = 0; k < n && k < want; k++) {
			unsigned oid = type_oid(s->types[k]);

			if (strcmp(PQfname(r, k), s->cols[k]) != 0)
				report(problems, sizeof(problems),
				       "%s: column %d is '%s', expected '%s'\n", s->cmd,
				       k + 1, PQfname(r, k), s->cols[k]);
			else if (oid != 0 && PQftype(r, k) != oid)
				report(problems, sizeof(problems),
				       "%s: column %s has type OID %u, expected %u\n",
				       s->cmd, s->cols[k], (unsigned)PQftype(r, k), oid);
		}
		for (; k < n; k++)
			report(problems, sizeof(problems), "%s: extra column %d '%s'\n",
			       s->cmd, k + 1, PQfname(r, k));
		PQclear(r);
	}
	harness_exec(app, "COMMIT");
	PQfinish(app);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
	if (problems[0] != '\0')
		fail_msg("SHOW result sets differ from the spec:\n%s", problems);
}

static void test_admin_show_commands_are_case_insensitive_with_optional_semicolon(void **state)
{
	static const char *const forms[] = {
		"show pools", "SHOW POOLS;", "Show Pools ;", "  sHoW\tpOoLs  ; ",
	};
	struct harness_pooler p;
	PGconn *admin;
	size_t i;

	start_pooler(&p);
	admin = harness_connect_admin(&p);
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		PGresult *r = PQexec(admin, forms[i]);

		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("\"%s\": %s: %s", forms[i],
				 PQresStatus(PQresultStatus(r)), PQerrorMessage(admin));
		assert_int_equal(PQnfields(r), 17);
		assert_string_equal(PQfname(r, 0), "database");
		PQclear(r);
	}
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

static void test_admin_select_is_an_alias_of_show(void **state)
{
	static const char *const forms[] = { "SELECT VERSION", "select version;" };
	struct harness_pooler p;
	PGconn *admin;
	PGresult *r;
	size_t i;

	start_pooler(&p);
	admin = harness_connect_admin(&p);
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		r = harness_query(admin, forms[i]);
		assert_int_equal(PQnfields(r), 1);
		assert_string_equal(PQfname(r, 0), "version");
		assert_int_equal(PQftype(r, 0), 25);
		assert_int_equal(PQntuples(r), 1);
		if (strstr(PQgetvalue(r, 0, 0), harness_is_pgbouncer() ? "PgBouncer"
									: "pgmux") == NULL)
			fail_msg("%s returned '%s'", forms[i], PQgetvalue(r, 0, 0));
		assert_string_equal(PQcmdStatus(r), "SHOW");
		PQclear(r);
	}
	/* Any SHOW subject works through SELECT. */
	r = harness_query(admin, "SELECT POOLS");
	assert_int_equal(PQnfields(r), 17);
	PQclear(r);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/* ---- rows --------------------------------------------------------------- */

static void assert_first_column(PGresult *r, const char *cmd,
				const char *const *names)
{
	int i, n = 0;

	while (names[n] != NULL)
		n++;
	if (PQntuples(r) != n)
		fail_msg("%s: %d rows, expected %d", cmd, PQntuples(r), n);
	for (i = 0; i < n; i++)
		if (strcmp(PQgetvalue(r, i, 0), names[i]) != 0)
			fail_msg("%s: row %d is '%s', expected '%s'", cmd, i + 1,
				 PQgetvalue(r, i, 0), names[i]);
}

static void test_admin_show_totals_lists_state_mem_have_the_documented_rows(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	PGconn *admin, *app;
	PGresult *r;
	int row;

	start_pooler(&p);
	app = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(app, "SELECT 1");
	admin = harness_connect_admin(&p);

	r = harness_query(admin, "SHOW TOTALS");
	assert_first_column(r, "SHOW TOTALS", COLS(
		"total_server_assignment_count", "total_xact_count",
		"total_query_count", "total_client_bytes", "total_server_bytes",
		"total_xact_time", "total_query_time", "total_wait_time",
		"total_ps_client_parse_count", "total_ps_server_parse_count",
		"total_ps_bind_count", "avg_server_assignment_count",
		"avg_xact_count", "avg_query_count", "avg_client_bytes",
		"avg_server_bytes", "avg_xact_time", "avg_query_time",
		"avg_wait_time", "avg_ps_client_parse_count",
		"avg_ps_server_parse_count", "avg_ps_bind_count"));
	/* The app's SELECT 1 is one transaction. */
	assert_true(harness_value_ll(r, 1, "value") >= 1);
	PQclear(r);

	r = harness_query(admin, "SHOW LISTS");
	assert_first_column(r, "SHOW LISTS", COLS(
		"databases", "users", "peers", "pools", "peer_pools",
		"free_clients", "used_clients", "login_clients", "free_servers",
		"used_servers", "dns_names", "dns_zones", "dns_queries",
		"dns_pending"));
	/* appdb and the console's pgbouncer database and pool. */
	assert_true(harness_value_ll(r, 0, "items") >= 2);
	assert_true(harness_value_ll(r, 3, "items") >= 2);
	/* The app client and this console session. */
	assert_true(harness_value_ll(r, 6, "items") >= 2);
	PQclear(r);

	r = harness_query(admin, "SHOW STATE");
	assert_first_column(r, "SHOW STATE", COLS("active", "paused", "suspended"));
	assert_string_equal(harness_value(r, 0, "value"), "yes");
	assert_string_equal(harness_value(r, 1, "value"), "no");
	assert_string_equal(harness_value(r, 2, "value"), "no");
	PQclear(r);

	r = harness_query(admin, "SHOW MEM");
	assert_first_column(r, "SHOW MEM", COLS(
		"user_cache", "credentials_cache", "db_cache", "peer_cache",
		"peer_pool_cache", "pool_cache", "outstanding_request_cache",
		"server_cache", "client_cache", "iobuf_cache", "var_list_cache",
		"server_prepared_statement_cache"));
	PQclear(r);

	r = harness_query(admin, "SHOW FD_USAGE");
	assert_int_equal(PQntuples(r), 1);
	PQclear(r);

	/* The legacy total_requests is the query count, as before 1.8; the
	 * *_TOTALS view repeats SHOW STATS' totals under its own names. */
	r = harness_query(admin, "SHOW STATS");
	row = harness_find_row(r, "database", fx->db, NULL, NULL);
	assert_true(row >= 0);
	assert_true(harness_value_ll(r, row, "total_xact_count") >= 1);
	assert_int_equal(harness_value_ll(r, row, "total_requests"),
			 harness_value_ll(r, row, "total_query_count"));
	{
		long long xact = harness_value_ll(r, row, "total_xact_count");
		long long recv = harness_value_ll(r, row, "total_received");
		PGresult *t = harness_query(admin, "SHOW STATS_TOTALS");
		int trow = harness_find_row(t, "database", fx->db, NULL, NULL);

		assert_true(trow >= 0);
		assert_int_equal(harness_value_ll(t, trow, "xact_count"), xact);
		assert_int_equal(harness_value_ll(t, trow, "bytes_received"), recv);
		PQclear(t);
	}
	PQclear(r);

	PQfinish(app);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

static void test_admin_console_is_database_user_and_pool_pgbouncer(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	PGconn *admin, *app;
	PGresult *r;
	int row;

	start_pooler(&p);
	app = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(app, "SELECT 1");
	admin = harness_connect_admin(&p);

	r = harness_query(admin, "SHOW DATABASES");
	row = harness_find_row(r, "name", "pgbouncer", NULL, NULL);
	if (row < 0)
		fail_msg("SHOW DATABASES has no 'pgbouncer' row");
	assert_string_equal(harness_value(r, row, "database"), "pgbouncer");
	assert_string_equal(harness_value(r, row, "pool_mode"), "statement");
	row = harness_find_row(r, "name", fx->db, NULL, NULL);
	assert_true(row >= 0);
	assert_string_equal(harness_value(r, row, "host"), fx->host);
	assert_int_equal(harness_value_ll(r, row, "port"), fx->port);
	assert_string_equal(harness_value(r, row, "database"), fx->db);
	assert_int_equal(harness_value_ll(r, row, "pool_size"), 5);
	assert_int_equal(harness_value_ll(r, row, "current_client_connections"), 1);
	assert_int_equal(harness_value_ll(r, row, "paused"), 0);
	assert_int_equal(harness_value_ll(r, row, "disabled"), 0);
	/* Inherited pool_mode is NULL in SHOW DATABASES. */
	assert_true(PQgetisnull(r, row, harness_col(r, "pool_mode")));
	/* The legacy column carries reserve_pool_size. */
	assert_string_equal(harness_value(r, row, "reserve_pool"),
			    harness_value(r, row, "reserve_pool_size"));
	PQclear(r);

	r = harness_query(admin, "SHOW POOLS");
	row = harness_find_row(r, "database", "pgbouncer", "user", "pgbouncer");
	if (row < 0)
		fail_msg("SHOW POOLS has no pgbouncer/pgbouncer row");
	assert_string_equal(harness_value(r, row, "pool_mode"), "statement");
	assert_true(harness_value_ll(r, row, "cl_active") >= 1);
	row = harness_find_row(r, "database", fx->db, "user", fx->app_user);
	assert_true(row >= 0);
	assert_string_equal(harness_value(r, row, "pool_mode"), "transaction");
	/* An idle logged-in client is counted in cl_active. */
	assert_int_equal(harness_value_ll(r, row, "cl_active"), 1);
	assert_int_equal(harness_value_ll(r, row, "cl_waiting"), 0);
	PQclear(r);

	r = harness_query(admin, "SHOW USERS");
	if (harness_find_row(r, "name", "pgbouncer", NULL, NULL) < 0)
		fail_msg("SHOW USERS has no 'pgbouncer' row");
	row = harness_find_row(r, "name", fx->app_user, NULL, NULL);
	assert_true(row >= 0);
	/* No per-user override: '' (not NULL), as PgBouncer 1.25 sends. */
	assert_string_equal(harness_value(r, row, "pool_size"), "");
	PQclear(r);

	/* Every database with a pool has a SHOW STATS row, the console's too. */
	r = harness_query(admin, "SHOW STATS");
	if (harness_find_row(r, "database", "pgbouncer", NULL, NULL) < 0)
		fail_msg("SHOW STATS has no 'pgbouncer' row");
	PQclear(r);

	PQfinish(app);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

static void test_admin_show_clients_lists_app_client_idle_with_its_id(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	PGconn *admin, *app, *app2;
	PGresult *r;
	long long id, id2, pid;
	int row;

	start_pooler(&p);
	app = harness_connect_pooler(&p, NULL, NULL, NULL);
	app2 = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(app, "SELECT 1");
	admin = harness_connect_admin(&p);

	r = harness_query(admin, "SHOW CLIENTS");
	row = client_row(r, app);
	if (row < 0)
		fail_msg("SHOW CLIENTS has no row for the app client (port %d)",
			 local_port(app));
	assert_string_equal(harness_value(r, row, "type"), "C");
	assert_string_equal(harness_value(r, row, "user"), fx->app_user);
	assert_string_equal(harness_value(r, row, "database"), fx->db);
	assert_string_equal(harness_value(r, row, "state"), "idle");
	assert_string_equal(harness_value(r, row, "link"), "");
	assert_string_equal(harness_value(r, row, "application_name"), "pgmux-it");
	id = harness_value_ll(r, row, "id");
	assert_true(id > 0);
	row = client_row(r, app2);
	assert_true(row >= 0);
	id2 = harness_value_ll(r, row, "id");
	assert_true(id2 > 0 && id2 != id);
	/* The console session itself: state idle, in the pgbouncer pool. */
	row = client_row(r, admin);
	if (row < 0)
		fail_msg("SHOW CLIENTS does not list the console session");
	assert_string_equal(harness_value(r, row, "user"), fx->admin_user);
	assert_string_equal(harness_value(r, row, "database"), "pgbouncer");
	assert_string_equal(harness_value(r, row, "state"), "idle");
	PQclear(r);

	/* Inside a transaction the client holds a server: active, linked. */
	harness_exec(app, "BEGIN");
	pid = harness_scalar_ll(app, "SELECT pg_backend_pid()");
	r = harness_query(admin, "SHOW CLIENTS");
	row = client_row(r, app);
	assert_true(row >= 0);
	assert_string_equal(harness_value(r, row, "state"), "active");
	assert_true(harness_value(r, row, "link")[0] != '\0');
	assert_int_equal(harness_value_ll(r, row, "id"), id);
	PQclear(r);
	r = harness_query(admin, "SHOW SERVERS");
	row = harness_find_row(r, "state", "active", NULL, NULL);
	if (row < 0)
		fail_msg("SHOW SERVERS has no active server while a client is in BEGIN");
	assert_string_equal(harness_value(r, row, "type"), "S");
	assert_string_equal(harness_value(r, row, "database"), fx->db);
	assert_int_equal(harness_value_ll(r, row, "remote_pid"), pid);
	assert_true(harness_value(r, row, "link")[0] != '\0');
	PQclear(r);
	harness_exec(app, "COMMIT");

	PQfinish(app);
	PQfinish(app2);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/* ---- HELP and errors ----------------------------------------------------- */

struct notices {
	int n;
	char severity[16], sqlstate[8], message[128], detail[2048];
};

static void on_notice(void *arg, const PGresult *r)
{
	struct notices *ns = arg;
	const char *f;

	ns->n++;
	f = PQresultErrorField(r, PG_DIAG_SEVERITY);
	snprintf(ns->severity, sizeof(ns->severity), "%s", f ? f : "");
	f = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	snprintf(ns->sqlstate, sizeof(ns->sqlstate), "%s", f ? f : "");
	f = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	snprintf(ns->message, sizeof(ns->message), "%s", f ? f : "");
	f = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
	snprintf(ns->detail, sizeof(ns->detail), "%s", f ? f : "");
}

static void test_admin_show_help_is_a_notice_with_tag_show(void **state)
{
	struct harness_pooler p;
	struct notices ns = { 0 };
	PGconn *admin;
	PGresult *r;

	start_pooler(&p);
	admin = harness_connect_admin(&p);
	PQsetNoticeReceiver(admin, on_notice, &ns);
	r = PQexec(admin, "SHOW HELP");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("SHOW HELP: %s (expected a NOTICE and CommandComplete, no rows): %s",
			 PQresStatus(PQresultStatus(r)), PQerrorMessage(admin));
	assert_string_equal(PQcmdStatus(r), "SHOW");
	assert_int_equal(PQnfields(r), 0);
	PQclear(r);
	assert_int_equal(ns.n, 1);
	assert_string_equal(ns.severity, "NOTICE");
	assert_string_equal(ns.sqlstate, "00000");
	assert_string_equal(ns.message, "Console usage");
	if (strstr(ns.detail, "\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION\n") == NULL ||
	    strstr(ns.detail, "\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS\n") == NULL ||
	    strstr(ns.detail, "\tKILL_CLIENT <client_id>\n") == NULL ||
	    strstr(ns.detail, "\tWAIT_CLOSE [<db>]") == NULL)
		fail_msg("SHOW HELP detail lacks PgBouncer's usage lines:\n%s", ns.detail);
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
}

/*
 * Runs sql expecting ERROR 08P01 with exactly this message, after which the
 * session must still be usable; appends what differs to problems.
 */
static void check_console_error(PGconn *c, const char *sql, const char *message,
				char *problems, size_t len)
{
	PGresult *r = PQexec(c, sql);
	const char *st = harness_sqlstate(r);
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	char *v;

	if (PQresultStatus(r) != PGRES_FATAL_ERROR || strcmp(st, "08P01") != 0 ||
	    sev == NULL || strcmp(sev, "ERROR") != 0 || msg == NULL ||
	    strcmp(msg, message) != 0)
		report(problems, len, "\"%s\": expected ERROR 08P01 \"%s\", got %s %s %s \"%s\"\n",
		       sql, message, PQresStatus(PQresultStatus(r)), sev ? sev : "-", st,
		       msg ? msg : PQerrorMessage(c));
	PQclear(r);
	if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE)
		fail_msg("\"%s\": the console session did not stay usable: %s", sql,
			 PQerrorMessage(c));
	v = harness_scalar(c, "SHOW VERSION");
	assert_non_null(v);
	free(v);
}

static void test_admin_unknown_commands_give_08P01_and_the_session_stays_usable(void **state)
{
	/* PgBouncer's parser (spec 1.4/1.5) rejects all of these. */
	static const char *const bad[] = {
		"SHOW FOO", "FROBNICATE", "SELECT 1", "show", "BEGIN", "",
		"SHOW POOLS; SHOW USERS", "SHOW VERSION;;", "RELOAD x",
	};
	struct harness_pooler p;
	char problems[4096] = "";
	PGconn *admin;
	size_t i;

	start_pooler(&p);
	admin = harness_connect_admin(&p);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char msg[256];

		harness_fmt(msg, sizeof(msg), "invalid command '%s', use SHOW HELP;",
			    bad[i]);
		check_console_error(admin, bad[i], msg, problems, sizeof(problems));
	}
	PQfinish(admin);
	harness_pooler_stop(&p, 20);
	if (problems[0] != '\0')
		fail_msg("console errors differ from PgBouncer's:\n%s", problems);
}

static void test_admin_stats_user_may_show_but_control_commands_need_admin(void **state)
{
	static const char *const shows[] = {
		"SHOW POOLS", "SHOW STATS", "SHOW CLIENTS", "SHOW SERVERS",
		"SHOW DATABASES", "SHOW CONFIG", "SHOW FD_USAGE", "SHOW SATURATION",
	};
	static const char *const controls[] = {
		"PAUSE", "PAUSE appdb", "RESUME", "RECONNECT", "KILL appdb",
		"KILL_CLIENT 1", "DISABLE appdb", "ENABLE appdb", "WAIT_CLOSE",
		"RELOAD", "SET default_pool_size = 3", "SHUTDOWN",
	};
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	PGconn *stats, *admin, *app;
	char problems[4096] = "";
	PGresult *r;
	size_t i;
	int row;

	start_pooler(&p);
	app = harness_connect_pooler(&p, NULL, NULL, NULL);
	harness_exec(app, "SELECT 1");
	stats = harness_connect_pooler(&p, "pgbouncer", STATS_USER, STATS_PASSWORD);
	for (i = 0; i < sizeof(shows) / sizeof(shows[0]); i++) {
		r = PQexec(stats, shows[i]);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("stats user: \"%s\": %s: %s", shows[i],
				 PQresStatus(PQresultStatus(r)), PQerrorMessage(stats));
		PQclear(r);
	}
	for (i = 0; i < sizeof(controls) / sizeof(controls[0]); i++)
		check_console_error(stats, controls[i], "admin access needed",
				    problems, sizeof(problems));
	PQfinish(stats);
	if (problems[0] != '\0')
		fail_msg("stats user:\n%s", problems);

	/* None of them took effect. */
	assert_true(harness_pooler_alive(&p));
	admin = harness_connect_admin(&p);
	r = harness_query(admin, "SHOW STATE");
	assert_string_equal(harness_value(r, 1, "value"), "no");
	PQclear(r);
	r = harness_query(admin, "SHOW DATABASES");
	row = harness_find_row(r, "name", fx->db, NULL, NULL);
	assert_true(row >= 0);
	assert_int_equal(harness_value_ll(r, row, "paused"), 0);
	assert_int_equal(harness_value_ll(r, row, "disabled"), 0);
	assert_int_equal(harness_value_ll(r, row, "pool_size"), 5);
	PQclear(r);
	assert_int_equal(harness_scalar_ll(app, "SELECT 41 + 1"), 42);
	PQfinish(admin);
	PQfinish(app);
	harness_pooler_stop(&p, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_admin_show_every_command_has_the_documented_columns_in_order,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_show_commands_are_case_insensitive_with_optional_semicolon,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_select_is_an_alias_of_show,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_show_totals_lists_state_mem_have_the_documented_rows,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_console_is_database_user_and_pool_pgbouncer,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_show_clients_lists_app_client_idle_with_its_id,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_show_help_is_a_notice_with_tag_show,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_unknown_commands_give_08P01_and_the_session_stays_usable,
					  harness_teardown),
		cmocka_unit_test_teardown(test_admin_stats_user_may_show_but_control_commands_need_admin,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_admin_show", tests, NULL, NULL);
}
