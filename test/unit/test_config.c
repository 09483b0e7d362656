/*
 * test_config.c: unit tests for pooler/config.c: defaults, the [pgbouncer]
 * synonym, value checks with file:line, [databases]/[users] parsing,
 * lookups, SET, the RELOAD diff, long and odd lines, %include, and the
 * auth_file loader. Each test writes its files with mkstemp() under /tmp
 * and removes them in teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#define MAX_TMP 8

/* Files made by the running test; teardown unlinks them. */
struct fixture {
	char paths[MAX_TMP][64];
	int n;
	char logpath[64];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	int fd;

	assert_non_null(fx);
	/* Route log lines to a file so tests can check the warnings. */
	snprintf(fx->logpath, sizeof(fx->logpath), "/tmp/pgmux-test-log-XXXXXX");
	fd = mkstemp(fx->logpath);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(log_open(fx->logpath, false), 0);
	log_set_verbose(0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	log_close();
	unlink(fx->logpath);
	for (int i = 0; i < fx->n; i++)
		unlink(fx->paths[i]);
	free(fx);
	return 0;
}

/* Writes text to a new temp file and returns its path (owned by fx). */
static const char *tmpfile_with(struct fixture *fx, const char *text)
{
	char *path;
	FILE *f;
	int fd;

	assert_true(fx->n < MAX_TMP);
	path = fx->paths[fx->n++];
	snprintf(path, sizeof(fx->paths[0]), "/tmp/pgmux-test-cfg-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* The whole log file so far, malloc'd. */
static char *read_log(struct fixture *fx)
{
	FILE *f = fopen(fx->logpath, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static struct cfg *load_ok(const char *path)
{
	char err[512] = "";
	struct cfg *c = cfg_load(path, err, sizeof(err));

	if (c == NULL)
		fail_msg("cfg_load(%s) failed: %s", path, err);
	return c;
}

static const char *raw_of(const struct cfg *c, const char *key)
{
	struct cfg_key_view v;

	for (size_t i = 0; i < cfg_key_count(); i++) {
		cfg_key_at(c, i, &v);
		if (strcmp(v.key, key) == 0)
			return v.value;
	}
	fail_msg("no key %s", key);
	return NULL;
}

static void test_config_defaults_with_only_databases(void **state)
{
	struct fixture *fx = *state;
	const char *path = tmpfile_with(fx, "[databases]\nappdb = host=127.0.0.1\n");
	struct cfg *c = load_ok(path);

	assert_string_equal(c->path, path);
	assert_null(c->listen_addr);
	assert_int_equal(c->listen_port, 6432);
	assert_string_equal(c->unix_socket_dir, "/tmp");
	assert_int_equal(c->unix_socket_mode, 0777);
	assert_int_equal(c->listen_backlog, 128);
	assert_int_equal(c->pool_mode, POOL_MODE_SESSION);
	assert_int_equal(c->default_pool_size, 20);
	assert_int_equal(c->max_client_conn, 100);
	assert_int_equal(c->auth_type, CFG_AUTH_MD5);
	assert_null(c->auth_file);
	assert_non_null(c->auth_query);
	assert_string_equal(c->server_reset_query, "DISCARD ALL");
	assert_string_equal(c->server_check_query, "<empty>");
	assert_true(c->log_connections);
	assert_true(c->tcp_keepalive);
	assert_false(c->server_reset_query_always);
	assert_null(c->application_name_add_host);
	assert_true(c->reserve_pool_timeout == 5.0);
	assert_true(c->server_lifetime == 3600.0);
	assert_true(c->query_wait_timeout == 120.0);
	assert_true(c->shutdown_wait_timeout == 30.0);
	assert_int_equal(c->pkt_buf, 16384); /* pgmux default, PgBouncer has 4096 */
	assert_int_equal(c->max_packet_size, 2147483647);
	assert_int_equal(c->max_prepared_statements, 200);
	assert_int_equal(c->stats_period, 60);
	assert_int_equal(c->verbose, 0);
	/* SHOW CONFIG text for keys without a field, and conffile. */
	assert_string_equal(raw_of(c, "server_tls_sslmode"), "prefer");
	assert_string_equal(raw_of(c, "track_extra_parameters"), "IntervalStyle");
	assert_string_equal(raw_of(c, "conffile"), path);
	assert_int_equal(c->ndbs, 1);
	assert_int_equal(c->nusers, 0);
	cfg_free(c);
}

static void test_config_key_table_is_consistent(void **state)
{
	struct fixture *fx = *state;
	struct cfg *c = load_ok(tmpfile_with(fx, "[pgmux]\n"));
	struct cfg_key_view v, prev = { 0 };
	bool saw_shutdown = false;

	assert_true(cfg_key_count() >= 99);
	for (size_t i = 0; i < cfg_key_count(); i++) {
		cfg_key_at(c, i, &v);
		assert_non_null(v.key);
		assert_non_null(v.value);
		assert_non_null(v.def);
		if (strcmp(v.key, "conffile") != 0)
			assert_string_equal(v.value, v.def);
		/* Alphabetical, like PgBouncer's SHOW CONFIG. */
		if (prev.key != NULL)
			assert_true(strcmp(prev.key, v.key) < 0);
		if (strcmp(v.key, "listen_port") == 0 || strcmp(v.key, "pkt_buf") == 0)
			assert_false(v.reloadable);
		if (strcmp(v.key, "pool_mode") == 0)
			assert_true(v.reloadable);
		if (strcmp(v.key, "shutdown_wait_timeout") == 0)
			saw_shutdown = true;
		prev = v;
	}
	assert_true(saw_shutdown);
	cfg_free(c);
}

static void test_config_pgbouncer_section_synonym(void **state)
{
	struct fixture *fx = *state;
	struct cfg *c = load_ok(tmpfile_with(fx, "[pgbouncer]\n"
						 "listen_port = 7000\n"
						 "pool_mode = transaction\n"
						 "[PgMux]\n"
						 "default_pool_size = 7\n"));

	assert_int_equal(c->listen_port, 7000);
	assert_int_equal(c->pool_mode, POOL_MODE_TRANSACTION);
	assert_int_equal(c->default_pool_size, 7);
	assert_string_equal(raw_of(c, "listen_port"), "7000");
	cfg_free(c);
}

static void test_config_typed_values(void **state)
{
	struct fixture *fx = *state;
	struct cfg *c = load_ok(tmpfile_with(fx, "[pgmux]\n"
						 "unix_socket_mode = 0700\n"
						 "log_connections = off\n"
						 "log_disconnections = No\n"
						 "tcp_keepalive = TRUE\n"
						 "application_name_add_host = yes\n"
						 "server_lifetime = 1.5\n"
						 "auth_type = SCRAM-SHA-256\n"
						 "max_client_conn = 0x10\n"
						 "listen_addr = 127.0.0.1, ::1\n"
						 "server_check_query =\n"
						 "unix_socket_dir =\n"));

	assert_int_equal(c->unix_socket_mode, 0700);
	assert_false(c->log_connections);
	assert_false(c->log_disconnections);
	assert_true(c->tcp_keepalive);
	assert_string_equal(c->application_name_add_host, "1");
	assert_true(c->server_lifetime == 1.5);
	assert_int_equal(c->auth_type, CFG_AUTH_SCRAM);
	assert_int_equal(c->max_client_conn, 16);
	assert_string_equal(c->listen_addr, "127.0.0.1, ::1");
	assert_null(c->server_check_query);
	assert_null(c->unix_socket_dir);
	assert_string_equal(cfg_auth_type_str(c->auth_type), "scram-sha-256");
	assert_string_equal(cfg_pool_mode_str(POOL_MODE_STATEMENT), "statement");
	cfg_free(c);
}

struct bad_case {
	const char *body;   /* appended after "[pgmux]\n", so line 1 is the header */
	int line;
	const char *reason; /* expected after "file:line: " */
};

static void test_config_rejects_bad_values(void **state)
{
	static const struct bad_case cases[] = {
		{ "listen_port = 99999\n", 2, "listen_port: out of range 1..65535" },
		{ "listen_port = 0\n", 2, "listen_port: out of range 1..65535" },
		{ "listen_port = 64x\n", 2, "listen_port: invalid integer \"64x\"" },
		{ "\ndefault_pool_size = -1\n", 3, "default_pool_size: must be >= 0" },
		{ "reserve_pool_size = -5\n", 2, "reserve_pool_size: must be >= 0" },
		{ "pool_mode = bogus\n", 2, "pool_mode: unknown pool mode \"bogus\"" },
		{ "auth_type = bogus\n", 2, "auth_type: unknown auth_type \"bogus\"" },
		{ "auth_type = ldap\n", 2, "auth_type: auth_type \"ldap\" is not supported" },
		{ "log_connections = maybe\n", 2, "log_connections: invalid boolean \"maybe\"" },
		{ "tcp_keepalive = 2\n", 2, "tcp_keepalive: invalid boolean \"2\"" },
		{ "server_lifetime = -1\n", 2, "server_lifetime: must be >= 0" },
		{ "server_lifetime = 5s\n", 2, "server_lifetime: invalid time \"5s\"" },
		{ "query_timeout = nan\n", 2, "query_timeout: invalid time \"nan\"" },
		{ "unix_socket_mode = 0999\n", 2, "unix_socket_mode: invalid integer" },
		{ "verbose = 9\n", 2, "verbose: out of range 0..3" },
		{ "client_tls_sslmode = sometimes\n", 2, "client_tls_sslmode: unknown sslmode" },
		{ "pkt_buf = 10\n", 2, "pkt_buf: out of range 512..16777216" },
		{ "listen_port 6432\n", 2, "syntax error: expected key = value" },
		{ "[databases\n", 2, "syntax error: missing \"]\"" },
		{ "= 5\n", 2, "syntax error: missing key" },
	};
	struct fixture *fx = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256], err[512], want[512];
		const char *path;
		struct cfg *c;

		snprintf(text, sizeof(text), "[pgmux]\n%s", cases[i].body);
		path = tmpfile_with(fx, text);
		err[0] = '\0';
		c = cfg_load(path, err, sizeof(err));
		if (c != NULL)
			fail_msg("case %zu (%s) loaded", i, cases[i].body);
		snprintf(want, sizeof(want), "%s:%d: %s", path, cases[i].line, cases[i].reason);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("case %zu: got \"%s\", want prefix \"%s\"", i, err, want);
		unlink(path);
		fx->n--;
	}
}

static void test_config_rejects_key_outside_section(void **state)
{
	struct fixture *fx = *state;
	const char *path = tmpfile_with(fx, "; header comment\nlisten_port = 1\n");
	char err[512], want[512];

	assert_null(cfg_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:2: key \"listen_port\" outside of any section", path);
	assert_string_equal(err, want);
}

static void test_config_unknown_key_only_warns(void **state)
{
	struct fixture *fx = *state;
	const char *path = tmpfile_with(fx, "[pgmux]\n"
					    "listen_port = 7001\n"
					    "no_such_key = 1\n"
					    "[weird]\n"
					    "x = 1\n"
					    "[peers]\n"
					    "1 = host=/tmp\n");
	struct cfg *c = load_ok(path);
	char want[512], *log;

	assert_int_equal(c->listen_port, 7001);
	log = read_log(fx);
	snprintf(want, sizeof(want),
		 "WARNING %s:3: unknown key \"no_such_key\" in section [pgmux], ignored", path);
	assert_non_null(strstr(log, want));
	snprintf(want, sizeof(want), "WARNING %s:4: unknown section [weird], ignored", path);
	assert_non_null(strstr(log, want));
	assert_non_null(strstr(log, "section [peers] is not supported by pgmux"));
	free(log);
	cfg_free(c);
}

static void test_config_not_implemented_key_is_quiet(void **state)
{
	struct fixture *fx = *state;
	struct cfg *c = load_ok(tmpfile_with(fx, "[pgmux]\nso_reuseport = 1\ndns_max_ttl = 3\n"));
	char *log = read_log(fx);

	assert_string_equal(raw_of(c, "so_reuseport"), "1");
	assert_string_equal(raw_of(c, "dns_max_ttl"), "3");
	assert_null(strstr(log, "WARNING"));
	free(log);
	cfg_free(c);
}

static void test_config_connstring_parsing(void **state)
{
	struct fixture *fx = *state;
	struct cfg *c = load_ok(tmpfile_with(
		fx, "[databases]\n"
		    "appdb = host=db1 port=5433 dbname=real user=u password='p w\\'x\\\\y''z'"
		    " connect_query='SELECT 1'\n"
		    "\"odd \"\"name\"\"\" = pool_size=5 min_pool_size=1 reserve_pool=2"
		    " pool_mode=statement max_db_connections=9 max_db_client_connections=10"
		    " server_lifetime=2.5 load_balance_hosts=disable application_name=a"
		    " client_encoding=UTF8 datestyle=ISO timezone=UTC auth_user=au"
		    " auth_dbname=ad auth_query='SELECT 2'\n"
		    "sock =\n"
		    "   tabs\t=\thost=h\treserve_pool_size=3\n"
		    "semi = password=a;b host='x ; y'\n"));
	const struct cfg_db *d;

	assert_int_equal(c->ndbs, 5);
	d = cfg_find_db(c, "appdb");
	assert_non_null(d);
	assert_string_equal(d->host, "db1");
	assert_int_equal(d->port, 5433);
	assert_string_equal(d->dbname, "real");
	assert_string_equal(d->user, "u");
	assert_string_equal(d->password, "p w'x\\y'z");
	assert_string_equal(d->connect_query, "SELECT 1");
	assert_int_equal(d->pool_size, -1);
	assert_int_equal(d->pool_mode, -1);
	assert_true(d->server_lifetime == -1);
	assert_int_equal(d->line, 2);

	d = cfg_find_db(c, "odd \"name\"");
	assert_non_null(d);
	assert_int_equal(d->pool_size, 5);
	assert_int_equal(d->min_pool_size, 1);
	assert_int_equal(d->reserve_pool, 2);
	assert_int_equal(d->pool_mode, POOL_MODE_STATEMENT);
	assert_int_equal(d->max_db_connections, 9);
	assert_int_equal(d->max_db_client_connections, 10);
	assert_true(d->server_lifetime == 2.5);
	assert_int_equal(d->load_balance_hosts, 0);
	assert_string_equal(d->application_name, "a");
	assert_string_equal(d->client_encoding, "UTF8");
	assert_string_equal(d->datestyle, "ISO");
	assert_string_equal(d->timezone, "UTC");
	assert_string_equal(d->auth_user, "au");
	assert_string_equal(d->auth_dbname, "ad");
	assert_string_equal(d->auth_query, "SELECT 2");
	assert_null(d->host);

	d = cfg_find_db(c, "sock");
	assert_non_null(d);
	assert_null(d->host);
	assert_int_equal(d->port, 5432);
	assert_null(d->dbname);

	/* Indented lines are entries, not continuations of the previous value. */
	d = cfg_find_db(c, "tabs");
	assert_non_null(d);
	assert_string_equal(d->host, "h");
	assert_int_equal(d->reserve_pool, 3);

	/* ';' is not a comment after the start of a line (PgBouncer rules). */
	d = cfg_find_db(c, "semi");
	assert_non_null(d);
	assert_string_equal(d->password, "a;b");
	assert_string_equal(d->host, "x ; y");
	cfg_free(c);
}

static void test_config_rejects_bad_connstrings(void **state)
{
	static const struct bad_case cases[] = {
		{ "db = host=x bogus=1\n", 2, "database \"db\": unknown parameter \"bogus\"" },
		{ "db = port=99999\n", 2, "database \"db\": port: out of range 1..65535" },
		{ "db = pool_size=-1\n", 2, "database \"db\": pool_size: must be >= 0" },
		{ "db = pool_mode=bogus\n", 2, "database \"db\": pool_mode: unknown pool mode" },
		{ "db = password='abc\n", 2, "database \"db\": unterminated quoted value" },
		{ "db = host=\n", 2, "database \"db\": empty value for \"host\"" },
		{ "db = host\n", 2, "database \"db\": syntax error: expected \"=\" after" },
		{ "db = load_balance_hosts=random\n", 2, "unknown load_balance_hosts \"random\"" },
		{ "pgbouncer = host=x\n", 2, "database name \"pgbouncer\" is reserved" },
		{ "\"open = host=x\n", 2, "database \"open: unterminated quoted name" },
	};
	struct fixture *fx = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256], err[512], want[512];
		const char *path;

		snprintf(text, sizeof(text), "[databases]\n%s", cases[i].body);
		path = tmpfile_with(fx, text);
		if (cfg_load(path, err, sizeof(err)) != NULL)
			fail_msg("case %zu loaded", i);
		snprintf(want, sizeof(want), "%s:%d: ", path, cases[i].line);
		if (strncmp(err, want, strlen(want)) != 0 || strstr(err, cases[i].reason) == NULL)
			fail_msg("case %zu: got \"%s\", want \"%s%s\"", i, err, want,
				 cases[i].reason);
		unlink(path);
		fx->n--;
	}
}

static void test_config_find_db_falls_back_to_star(void **state)
{
	struct fixture *fx = *state;
	struct cfg *c = load_ok(tmpfile_with(fx, "[databases]\n"
						 "* = host=fallback\n"
						 "appdb = host=exact\n"
						 "appdb = host=again\n"));
	const struct cfg_db *d;
	char *log;

	assert_int_equal(c->ndbs, 2); /* the second appdb replaced the first */
	d = cfg_find_db(c, "appdb");
	assert_non_null(d);
	assert_string_equal(d->host, "again");
	d = cfg_find_db(c, "other");
	assert_non_null(d);
	assert_string_equal(d->name, "*");
	assert_string_equal(d->host, "fallback");
	assert_null(cfg_find_db(c, NULL));
	log = read_log(fx);
	assert_non_null(strstr(log, "database \"appdb\" is defined again (first at line 3)"));
	free(log);
	cfg_free(c);

	c = load_ok(tmpfile_with(fx, "[databases]\nappdb = host=exact\n"));
	assert_null(cfg_find_db(c, "other"));
	cfg_free(c);
}

static void test_config_users_section(void **state)
{
	struct fixture *fx = *state;
	struct cfg *c = load_ok(tmpfile_with(
		fx, "[users]\n"
		    "alice = pool_mode=session pool_size=3 reserve_pool_size=1"
		    " max_user_connections=4 max_user_client_connections=50\n"
		    "bob = query_timeout=1.5 idle_transaction_timeout=2 transaction_timeout=3"
		    " client_idle_timeout=4\n"
		    "carol =\n"));
	const struct cfg_user *u;
	char err[512];

	assert_int_equal(c->nusers, 3);
	u = cfg_find_user(c, "alice");
	assert_non_null(u);
	assert_int_equal(u->pool_mode, POOL_MODE_SESSION);
	assert_int_equal(u->pool_size, 3);
	assert_int_equal(u->reserve_pool_size, 1);
	assert_int_equal(u->max_user_connections, 4);
	assert_int_equal(u->max_user_client_connections, 50);
	assert_true(u->query_timeout == -1);
	assert_int_equal(u->line, 2);
	u = cfg_find_user(c, "bob");
	assert_non_null(u);
	assert_int_equal(u->pool_mode, -1);
	assert_int_equal(u->pool_size, -1);
	assert_true(u->query_timeout == 1.5);
	assert_true(u->idle_transaction_timeout == 2);
	assert_true(u->transaction_timeout == 3);
	assert_true(u->client_idle_timeout == 4);
	u = cfg_find_user(c, "carol");
	assert_non_null(u);
	assert_int_equal(u->max_user_connections, -1);
	assert_null(cfg_find_user(c, "dave"));
	cfg_free(c);

	assert_null(cfg_load(tmpfile_with(fx, "[users]\nx = pool_mode=party\n"), err,
			     sizeof(err)));
	assert_non_null(strstr(err, ":2: user \"x\": pool_mode: unknown pool mode \"party\""));
	assert_null(cfg_load(tmpfile_with(fx, "[users]\nx = host=a\n"), err, sizeof(err)));
	assert_non_null(strstr(err, ":2: user \"x\": unknown parameter \"host\""));
}

static void test_config_list_contains(void **state)
{
	assert_true(cfg_list_contains("admin", "admin"));
	assert_true(cfg_list_contains("a, admin ,b", "admin"));
	assert_true(cfg_list_contains("a,b,admin", "admin"));
	assert_true(cfg_list_contains("a b\tadmin", "admin"));
	assert_true(cfg_list_contains(",,admin,,", "admin"));
	assert_false(cfg_list_contains("administrator", "admin"));
	assert_false(cfg_list_contains("adm", "admin"));
	assert_false(cfg_list_contains("a,b", "admin"));
	assert_false(cfg_list_contains("", "admin"));
	assert_false(cfg_list_contains(NULL, "admin"));
	assert_false(cfg_list_contains("a,,b", ""));
	assert_false(cfg_list_contains("a", NULL));
}

static void test_config_set_reloadable_vs_fixed(void **state)
{
	struct fixture *fx = *state;
	struct cfg *c = load_ok(tmpfile_with(fx, "[pgmux]\nadmin_users = a\n"));
	char err[256];

	assert_int_equal(cfg_set(c, "default_pool_size", "33", err, sizeof(err)), 0);
	assert_int_equal(c->default_pool_size, 33);
	assert_string_equal(raw_of(c, "default_pool_size"), "33");

	assert_int_equal(cfg_set(c, "pool_mode", "statement", err, sizeof(err)), 0);
	assert_int_equal(c->pool_mode, POOL_MODE_STATEMENT);

	assert_int_equal(cfg_set(c, "admin_users", "x, y", err, sizeof(err)), 0);
	assert_string_equal(c->admin_users, "x, y");
	assert_int_equal(cfg_set(c, "admin_users", "", err, sizeof(err)), 0);
	assert_null(c->admin_users);

	assert_int_equal(cfg_set(c, "dns_max_ttl", "4", err, sizeof(err)), 0);
	assert_string_equal(raw_of(c, "dns_max_ttl"), "4");

	assert_int_equal(cfg_set(c, "verbose", "2", err, sizeof(err)), 0);
	assert_int_equal(c->verbose, 2);
	log_set_verbose(0);

	assert_int_equal(cfg_set(c, "listen_port", "7000", err, sizeof(err)), -1);
	assert_string_equal(err, "listen_port: cannot be changed while running");
	assert_int_equal(c->listen_port, 6432);
	assert_string_equal(raw_of(c, "listen_port"), "6432");

	assert_int_equal(cfg_set(c, "default_pool_size", "-3", err, sizeof(err)), -1);
	assert_string_equal(err, "default_pool_size: must be >= 0");
	assert_int_equal(c->default_pool_size, 33);
	assert_string_equal(raw_of(c, "default_pool_size"), "33");

	assert_int_equal(cfg_set(c, "nope", "1", err, sizeof(err)), -1);
	assert_string_equal(err, "unknown key \"nope\"");
	cfg_free(c);
}

static void test_config_diff_fixed(void **state)
{
	struct fixture *fx = *state;
	struct cfg *a = load_ok(tmpfile_with(fx, "[pgmux]\n"
						 "listen_port = 6432\n"
						 "pool_mode = session\n"));
	struct cfg *b = load_ok(tmpfile_with(fx, "[pgmux]\n"
						 "listen_port = 6433\n"
						 "pool_mode = statement\n"
						 "pkt_buf = 8192\n"
						 "unix_socket_dir = /run\n"));
	struct cfg *same = load_ok(tmpfile_with(fx, "[pgmux]\ndefault_pool_size = 1\n"));
	char out[256], tiny[8];

	assert_int_equal(cfg_diff_fixed(a, b, out, sizeof(out)), 3);
	assert_string_equal(out, "listen_port, pkt_buf, unix_socket_dir");
	assert_int_equal(cfg_diff_fixed(a, same, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	/* Truncated output still counts every key. */
	assert_int_equal(cfg_diff_fixed(a, b, tiny, sizeof(tiny)), 3);
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	cfg_free(a);
	cfg_free(b);
	cfg_free(same);
}

static void test_config_long_line(void **state)
{
	struct fixture *fx = *state;
	char text[4096], val[2048];
	size_t len;
	const struct cfg_db *d;
	struct cfg *c;

	/* Far past inih's 200-byte line buffer. */
	len = (size_t)snprintf(val, sizeof(val),
			       "host=127.0.0.1 port=5432 dbname=appdb connect_query='SELECT 1");
	for (int i = 0; i < 100; i++)
		len += (size_t)snprintf(val + len, sizeof(val) - len, ", %d", i);
	snprintf(val + len, sizeof(val) - len, "' password=last");
	snprintf(text, sizeof(text), "[databases]\nlongdb = %s\nnext = host=n\n[pgmux]\n"
		 "admin_users = %0300d\n", val, 7);
	c = load_ok(tmpfile_with(fx, text));
	assert_true(strlen(val) > 300);
	assert_int_equal(c->ndbs, 2);
	d = cfg_find_db(c, "longdb");
	assert_non_null(d);
	assert_string_equal(d->password, "last");
	assert_int_equal(strncmp(d->connect_query, "SELECT 1, 0, 1,", 15), 0);
	assert_non_null(strstr(d->connect_query, ", 98, 99"));
	assert_non_null(cfg_find_db(c, "next"));
	assert_int_equal(strlen(c->admin_users), 300);
	cfg_free(c);
}

static void test_config_include(void **state)
{
	struct fixture *fx = *state;
	const char *inc = tmpfile_with(fx, "default_pool_size = 11\n[databases]\nincdb = host=i\n");
	const char *bad = tmpfile_with(fx, "\n\nlisten_port = 0\n");
	char text[256], err[512], want[512];
	struct cfg *c;

	snprintf(text, sizeof(text),
		 "[pgmux]\n%%include %s\nafter = host=a\n[pgmux]\nlisten_port = 7002\n", inc);
	c = load_ok(tmpfile_with(fx, text));
	assert_int_equal(c->default_pool_size, 11);
	assert_int_equal(c->listen_port, 7002);
	assert_non_null(cfg_find_db(c, "incdb"));
	/* As in PgBouncer, the section the included file ended in stays current. */
	assert_non_null(cfg_find_db(c, "after"));
	assert_int_equal(cfg_find_db(c, "after")->line, 3);
	cfg_free(c);

	/* Errors inside an included file name that file and its line. */
	snprintf(text, sizeof(text), "[pgmux]\n%%include %s\n", bad);
	assert_null(cfg_load(tmpfile_with(fx, text), err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:3: listen_port: out of range 1..65535", bad);
	assert_string_equal(err, want);

	assert_null(cfg_load(tmpfile_with(fx, "[pgmux]\n%include /nonexistent/x.ini\n"), err,
			     sizeof(err)));
	assert_non_null(strstr(err, ":2: cannot open included file \"/nonexistent/x.ini\""));
}

static void test_config_missing_file(void **state)
{
	char err[256];

	assert_null(cfg_load("/nonexistent/pgmux.ini", err, sizeof(err)));
	assert_string_equal(err, "/nonexistent/pgmux.ini: cannot open: No such file or directory");
	assert_null(cfg_load("/nonexistent/pgmux.ini", NULL, 0));
}

static void test_config_whole_file_checks(void **state)
{
	struct fixture *fx = *state;
	char err[256];

	assert_null(cfg_load(tmpfile_with(fx, "[pgmux]\nunix_socket_dir =\n"), err, sizeof(err)));
	assert_non_null(strstr(err, "nothing to listen on"));
	assert_null(cfg_load(tmpfile_with(fx, "[pgmux]\nauth_type = hba\n"), err, sizeof(err)));
	assert_non_null(strstr(err, "auth_type = hba needs auth_hba_file"));
}

static void test_config_userlist_parsing(void **state)
{
	struct fixture *fx = *state;
	const char *path = tmpfile_with(fx, "; comment\n"
					    "# another\n"
					    "\n"
					    "\"alice\" \"plainpw\"\n"
					    "  \"bob\" \"md5abcdef\" trailing junk is ignored\n"
					    "\"we\"\"ird\" \"pa\"\"ss\"\n"
					    "\"scram\" \"SCRAM-SHA-256$4096:c2FsdA==$a:b\"\n"
					    "\"empty\" \"\"\n"
					    "\"alice\" \"newpw\"\n");
	char err[256];
	struct cfg_userlist *ul = cfg_userlist_load(path, err, sizeof(err));

	if (ul == NULL)
		fail_msg("userlist: %s", err);
	assert_string_equal(cfg_userlist_find(ul, "alice"), "newpw");
	assert_string_equal(cfg_userlist_find(ul, "bob"), "md5abcdef");
	assert_string_equal(cfg_userlist_find(ul, "we\"ird"), "pa\"ss");
	assert_string_equal(cfg_userlist_find(ul, "scram"), "SCRAM-SHA-256$4096:c2FsdA==$a:b");
	assert_string_equal(cfg_userlist_find(ul, "empty"), "");
	assert_null(cfg_userlist_find(ul, "nobody"));
	assert_null(cfg_userlist_find(ul, NULL));
	assert_int_equal(HASH_COUNT(ul->by_user), 5);
	cfg_userlist_free(ul);
	cfg_userlist_free(NULL);
}

static void test_config_userlist_malformed(void **state)
{
	static const struct bad_case cases[] = {
		{ "\"ok\" \"pw\"\nnoquotes pw\n", 2, "malformed line" },
		{ "\"ok\" \"pw\"\n\n\"user\" \"unterminated\n", 3, "malformed line" },
		{ "\"user\"\n", 1, "malformed line" },
		{ "\"user\" pw\n", 1, "malformed line" },
		{ "\"\" \"pw\"\n", 1, "empty user name" },
	};
	struct fixture *fx = *state;
	char err[256], want[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *path = tmpfile_with(fx, cases[i].body);

		assert_null(cfg_userlist_load(path, err, sizeof(err)));
		snprintf(want, sizeof(want), "%s:%d: %s", path, cases[i].line, cases[i].reason);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, want);
		unlink(path);
		fx->n--;
	}
	assert_null(cfg_userlist_load("/nonexistent/userlist.txt", err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open"));
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_config_defaults_with_only_databases),
		TEST(test_config_key_table_is_consistent),
		TEST(test_config_pgbouncer_section_synonym),
		TEST(test_config_typed_values),
		TEST(test_config_rejects_bad_values),
		TEST(test_config_rejects_key_outside_section),
		TEST(test_config_unknown_key_only_warns),
		TEST(test_config_not_implemented_key_is_quiet),
		TEST(test_config_connstring_parsing),
		TEST(test_config_rejects_bad_connstrings),
		TEST(test_config_find_db_falls_back_to_star),
		TEST(test_config_users_section),
		cmocka_unit_test(test_config_list_contains),
		TEST(test_config_set_reloadable_vs_fixed),
		TEST(test_config_diff_fixed),
		TEST(test_config_long_line),
		TEST(test_config_include),
		cmocka_unit_test(test_config_missing_file),
		TEST(test_config_whole_file_checks),
		TEST(test_config_userlist_parsing),
		TEST(test_config_userlist_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
