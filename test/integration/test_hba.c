/*
 * test_hba.c: auth_type = hba with a mixed auth_hba_file, checked rule by
 * rule through real logins (the parser itself is unit-tested in
 * test/unit/test_hba.c): first match wins, each rule's method asks for the
 * right secret (28P01 for a wrong one), reject and no-match end the login
 * with 28000, hostssl never matches a plaintext client, and a RELOAD with a
 * broken file keeps the old rules. peer over the unix socket: the OS user
 * (SO_PEERCRED) must be the requested user, no password is asked, a peer
 * rule matched over TCP refuses, and map= (ident maps, unsupported) refuses
 * instead of being ignored.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

static char g_hba_path[HARNESS_PATH_MAX + 32];

/* Rules in order; the comment says which test case each serves. */
static const char g_rules[] =
	"# first match wins\n"
	"host    all     admin       127.0.0.1/32   reject        # admin refused\n"
	"hostssl all     all         127.0.0.1/32   cert          # never: no TLS here\n"
	"host    appdb   app_md5     127.0.0.1/32   md5\n"
	"host    appdb   app         127.0.0.1/32   scram-sha-256\n"
	"host    other   app         127.0.0.0/8    password\n"
	"host    appdb   \"all\"       ::1/128        trust         # a user named all, IPv6 only\n";

/* extra_users: more auth_file lines (NULL: none). */
static void start(struct harness_pooler *p, const char *rules, const char *extra_users)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { 0 };
	char databases[512], settings[HARNESS_PATH_MAX + 128], userlist[1024];
	FILE *f;

	snprintf(databases, sizeof(databases),
		 "appdb = host=127.0.0.1 port=%d dbname=%s\nother = host=127.0.0.1 port=%d "
		 "dbname=%s\nnorule = host=127.0.0.1 port=%d dbname=%s\n",
		 fx->port, fx->db, fx->port, fx->db, fx->port, fx->db);
	snprintf(userlist, sizeof(userlist), "\"%s\" \"%s\"\n\"%s\" \"%s\"\n\"%s\" \"%s\"\n",
		 fx->app_user, fx->app_password, fx->md5_user, fx->md5_password, fx->admin_user,
		 fx->admin_password);
	if (extra_users)
		harness_fmt(userlist + strlen(userlist), sizeof(userlist) - strlen(userlist), "%s",
			    extra_users);
	harness_pooler_prepare(p, &(struct harness_pooler_cfg){ .databases = databases,
							      .userlist = userlist });
	snprintf(g_hba_path, sizeof(g_hba_path), "%s/hba.conf", p->dir);
	f = fopen(g_hba_path, "w");
	assert_non_null(f);
	fputs(rules, f);
	fclose(f);
	snprintf(settings, sizeof(settings), "auth_type = hba\nauth_hba_file = %s\n", g_hba_path);
	cfg.settings = settings;
	cfg.databases = databases;
	cfg.userlist = userlist;
	harness_pooler_rewrite(p, &cfg);
	harness_pooler_spawn(p);
	harness_pooler_wait_ready(p);
}

/* Logs in; returns "" on success, else the SQLSTATE-bearing message. */
static void try_login(const struct harness_pooler *p, const char *db, const char *user,
		      const char *password, char *msg, size_t len)
{
	char ci[512];
	PGconn *c;

	harness_conninfo(ci, sizeof(ci), p->port, db, user, password);
	c = PQconnectdb(ci);
	if (PQstatus(c) == CONNECTION_OK) {
		PGresult *r = PQexec(c, "SELECT 1");

		snprintf(msg, len, "%s", PQresultStatus(r) == PGRES_TUPLES_OK ? "" : "query failed");
		PQclear(r);
	} else {
		snprintf(msg, len, "%s", PQerrorMessage(c));
	}
	PQfinish(c);
}

static void expect_login(const struct harness_pooler *p, const char *db, const char *user,
			 const char *password, const char *want)
{
	char msg[512];

	try_login(p, db, user, password, msg, sizeof(msg));
	print_message("%s@%s with %s: %s\n", user, db, password, msg[0] ? msg : "ok");
	if (!want[0] && msg[0])
		fail_msg("%s@%s should log in: %s", user, db, msg);
	if (want[0] && !strstr(msg, want))
		fail_msg("%s@%s: expected \"%s\", got \"%s\"", user, db, want, msg);
}

static void test_hba_rules_decide_each_login_first_match_wins(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;

	(void)state;
	start(&p, g_rules, NULL);
	/* scram-sha-256 rule. */
	expect_login(&p, "appdb", fx->app_user, fx->app_password, "");
	expect_login(&p, "appdb", fx->app_user, "wrong", "password authentication failed");
	/* md5 rule. */
	expect_login(&p, "appdb", fx->md5_user, fx->md5_password, "");
	expect_login(&p, "appdb", fx->md5_user, "wrong", "password authentication failed");
	/* password rule on another database (CIDR /8). */
	expect_login(&p, "other", fx->app_user, fx->app_password, "");
	expect_login(&p, "other", fx->app_user, "wrong", "password authentication failed");
	/* reject, before any later rule could match. */
	expect_login(&p, "appdb", fx->admin_user, fx->admin_password,
		     "auth_hba_file rejects connection");
	/* no rule for this database and user: implicit reject. */
	expect_login(&p, "norule", fx->app_user, fx->app_password, "no auth_hba_file entry");
	expect_login(&p, "other", fx->md5_user, fx->md5_password, "no auth_hba_file entry");
	harness_pooler_stop(&p, 10);
}

static void test_hba_reload_with_a_broken_file_keeps_the_old_rules(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	PGconn *admin;
	PGresult *r;
	FILE *f;

	(void)state;
	/* admin may reach the console through a trust rule here. */
	start(&p, "host all admin 127.0.0.1/32 scram-sha-256\n"
		  "host appdb app 127.0.0.1/32 scram-sha-256\n", NULL);
	expect_login(&p, "appdb", fx->app_user, fx->app_password, "");
	f = fopen(g_hba_path, "w");
	assert_non_null(f);
	fputs("host appdb app 127.0.0.1/99 md5\n", f); /* bad prefix */
	fclose(f);
	admin = harness_connect_admin(&p);
	r = PQexec(admin, "RELOAD");
	print_message("RELOAD with a broken file: %s", PQresultErrorMessage(r));
	assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
	PQclear(r);
	PQfinish(admin);
	expect_login(&p, "appdb", fx->app_user, fx->app_password, "");
	harness_pooler_stop(&p, 10);
}

/* ---- peer ---- */

/* The fields of an ErrorResponse body (a type byte, a string; 0 ends). */
static void error_fields(const unsigned char *body, size_t len, struct harness_login *out)
{
	for (size_t i = 0; i < len && body[i] != 0;) {
		const char *f = (const char *)body + i + 1;

		if (body[i] == 'C')
			snprintf(out->sqlstate, sizeof(out->sqlstate), "%s", f);
		else if (body[i] == 'M')
			snprintf(out->message, sizeof(out->message), "%s", f);
		i += 2 + strnlen(f, len - i - 1);
	}
}

/*
 * One message of a login in buf (type, then its length-counted body):
 * true once the login is decided. peer never asks for a password, so any
 * authentication request but AuthenticationOk ends it, named in out->method.
 */
static bool login_message(const unsigned char *buf, uint32_t len, struct harness_login *out)
{
	uint32_t code;

	switch (buf[0]) {
	case 'R':
		memcpy(&code, buf + 5, 4);
		if (ntohl(code) == 0)
			return false;
		snprintf(out->method, sizeof(out->method), "auth %u", ntohl(code));
		return true;
	case 'E':
		error_fields(buf + 5, len - 4, out);
		return true;
	case 'Z':
		out->ok = true;
		return true;
	default:
		return false; /* ParameterStatus, BackendKeyData */
	}
}

/*
 * A raw login over pgmux's unix socket (dir/.s.PGSQL.port), so that a
 * refusal's SQLSTATE is visible (libpq only gives the text).
 */
static void unix_login(const struct harness_pooler *p, const char *db, const char *user,
		       struct harness_login *out)
{
	static const unsigned char terminate[] = { 'X', 0, 0, 0, 4 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	unsigned char pkt[256], buf[4096];
	size_t n = 8, have = 0;
	uint32_t v, len;
	int fd;

	memset(out, 0, sizeof(*out));
	snprintf(out->method, sizeof(out->method), "trust");
	harness_fmt(sa.sun_path, sizeof(sa.sun_path), "%s/.s.PGSQL.%d", p->dir, p->port);
	n += (size_t)snprintf((char *)pkt + n, sizeof(pkt) - n, "user%c%s%cdatabase%c%s%c", 0,
			      user, 0, 0, db, 0);
	pkt[n++] = 0;
	v = htonl((uint32_t)n);
	memcpy(pkt, &v, 4);
	v = htonl(196608u); /* protocol 3.0 */
	memcpy(pkt + 4, &v, 4);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		fail_msg("connect %s: %s", sa.sun_path, strerror(errno));
	assert_int_equal(write(fd, pkt, n), (ssize_t)n);
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t got;

		while (have >= 5) {
			memcpy(&len, buf + 1, 4);
			len = ntohl(len);
			if (len < 4 || len + 1 > sizeof(buf))
				fail_msg("bad message length %u", len);
			if (have < len + 1)
				break;
			if (login_message(buf, len, out)) {
				if (out->ok)
					(void)!write(fd, terminate, sizeof(terminate));
				close(fd);
				return;
			}
			memmove(buf, buf + len + 1, have - len - 1);
			have -= len + 1;
		}
		if (poll(&pfd, 1, 10000) <= 0)
			break;
		got = read(fd, buf + have, sizeof(buf) - have);
		if (got <= 0)
			break;
		have += (size_t)got;
	}
	close(fd);
	snprintf(out->message, sizeof(out->message), "no answer from pgmux");
}

static void expect_unix_refused(const struct harness_pooler *p, const char *db,
				const char *user, const char *want)
{
	struct harness_login l;

	unix_login(p, db, user, &l);
	print_message("unix %s@%s: %s %s (asked: %s)\n", user, db, l.sqlstate, l.message,
		      l.method);
	assert_false(l.ok);
	assert_string_equal(l.method, "trust"); /* refused without a password exchange */
	assert_string_equal(l.sqlstate, "28000");
	if (!strstr(l.message, want))
		fail_msg("unix %s@%s: expected \"%s\", got \"%s\"", user, db, want, l.message);
}

/* The OS user the test runs as (root in CI), for a PostgreSQL role of the
 * same name that pgmux logs in as with a password from its auth_file. */
static char g_os_user[64];
static bool g_os_role_created;
static const char g_os_password[] = "peer-os-pw";

static void os_role_create(void)
{
	struct passwd *pw = getpwuid(geteuid());
	PGconn *super = harness_connect_pg_super(NULL);
	char sql[256], *esc;
	char *exists;

	assert_non_null(pw);
	harness_fmt(g_os_user, sizeof(g_os_user), "%s", pw->pw_name);
	esc = PQescapeIdentifier(super, g_os_user, strlen(g_os_user));
	harness_fmt(sql, sizeof(sql), "SELECT count(*) FROM pg_roles WHERE rolname = '%s'",
		    g_os_user);
	exists = harness_scalar(super, sql);
	if (strcmp(exists, "0") == 0) {
		harness_fmt(sql, sizeof(sql), "CREATE ROLE %s LOGIN PASSWORD '%s'", esc,
			    g_os_password);
		g_os_role_created = true;
	} else {
		harness_fmt(sql, sizeof(sql), "ALTER ROLE %s LOGIN PASSWORD '%s'", esc,
			    g_os_password);
	}
	harness_exec(super, sql);
	free(exists);
	PQfreemem(esc);
	PQfinish(super);
}

static int os_role_teardown(void **state)
{
	if (g_os_role_created) {
		PGconn *super = harness_connect_pg_super(NULL);
		char sql[256], *esc = PQescapeIdentifier(super, g_os_user, strlen(g_os_user));
		PGresult *r;

		snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", esc);
		r = PQexec(super, sql);
		PQclear(r);
		PQfreemem(esc);
		PQfinish(super);
		g_os_role_created = false;
	}
	return harness_teardown(state);
}

static void test_hba_peer_accepts_the_os_user_only_and_never_over_tcp(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct harness_login l;
	char rules[1024], userlist[512], ci[1024], want[256];
	PGconn *c;
	char *who;

	(void)state;
	os_role_create();
	harness_fmt(rules, sizeof(rules),
		    "local   other   all   peer map=omap   # ident maps: refused, not ignored\n"
		    "local   appdb   all   peer\n"
		    "host    appdb   all   127.0.0.1/32  peer   # peer over TCP: refused\n"
		    "host    other   all   127.0.0.1/32  scram-sha-256\n");
	/* pgmux logs in to PostgreSQL as the OS user with this password. */
	harness_fmt(userlist, sizeof(userlist), "\"%s\" \"%s\"\n", g_os_user, g_os_password);
	start(&p, rules, userlist);
	assert_true(harness_pooler_log_contains(&p, "peer on a line that is not local"));

	/* The OS user, no password: in, and PostgreSQL sees that role. */
	harness_fmt(ci, sizeof(ci), "host=%s port=%d dbname=appdb user=%s connect_timeout=20",
		    p.dir, p.port, g_os_user);
	c = harness_connect(ci);
	who = harness_scalar(c, "SELECT current_user");
	print_message("peer login as %s: PostgreSQL says current_user = %s\n", g_os_user, who);
	assert_string_equal(who, g_os_user);
	free(who);
	PQfinish(c);
	unix_login(&p, "appdb", g_os_user, &l);
	assert_true(l.ok);
	assert_string_equal(l.method, "trust");

	/* Another user over the same socket: PostgreSQL's words, 28000, and
	 * the user's real password does not help (none is asked). */
	harness_fmt(want, sizeof(want), "Peer authentication failed for user \"%s\"",
		    fx->app_user);
	expect_unix_refused(&p, "appdb", fx->app_user, want);
	harness_fmt(ci, sizeof(ci), "host=%s port=%d dbname=appdb user=%s password=%s "
		    "connect_timeout=20", p.dir, p.port, fx->app_user, fx->app_password);
	c = PQconnectdb(ci);
	print_message("libpq as %s: %s", fx->app_user, PQerrorMessage(c));
	assert_int_equal(PQstatus(c), CONNECTION_BAD);
	assert_non_null(strstr(PQerrorMessage(c), want));
	PQfinish(c);

	/* map=: pgmux has no ident maps, so the rule refuses even the OS user
	 * rather than silently comparing names. */
	expect_unix_refused(&p, "other", g_os_user, "ident map \"omap\"");

	/* No local rule for this database: PostgreSQL's [local] wording. */
	harness_fmt(want, sizeof(want),
		    "no auth_hba_file entry for host \"[local]\", user \"%s\", database \"norule\"",
		    g_os_user);
	expect_unix_refused(&p, "norule", g_os_user, want);

	/* A peer rule matched over TCP refuses, whoever the user is, and does
	 * not fall through to a later line. */
	harness_raw_login(p.port, "appdb", g_os_user, g_os_password, &l);
	print_message("TCP %s@appdb: %s %s\n", g_os_user, l.sqlstate, l.message);
	assert_false(l.ok);
	assert_string_equal(l.sqlstate, "28000");
	assert_non_null(strstr(l.message, "rejects connection for host \"127.0.0.1\""));
	harness_raw_login(p.port, "appdb", fx->app_user, fx->app_password, &l);
	assert_false(l.ok);
	assert_string_equal(l.sqlstate, "28000");
	/* TCP is fine where a password rule applies. */
	expect_login(&p, "other", g_os_user, g_os_password, "");
	expect_login(&p, "other", fx->app_user, fx->app_password, "");
	harness_pooler_stop(&p, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_hba_rules_decide_each_login_first_match_wins,
					  harness_teardown),
		cmocka_unit_test_teardown(test_hba_reload_with_a_broken_file_keeps_the_old_rules,
					  harness_teardown),
		cmocka_unit_test_teardown(test_hba_peer_accepts_the_os_user_only_and_never_over_tcp,
					  os_role_teardown),
	};

	return cmocka_run_group_tests_name("integration_hba", tests, NULL, NULL);
}
