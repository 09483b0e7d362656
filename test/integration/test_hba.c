/*
 * test_hba.c: auth_type = hba with a mixed auth_hba_file, checked rule by
 * rule through real logins (the parser itself is unit-tested in
 * test/unit/test_hba.c): first match wins, each rule's method asks for the
 * right secret (28P01 for a wrong one), reject and no-match end the login
 * with 28000, hostssl never matches a plaintext client, and a RELOAD with a
 * broken file keeps the old rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void start(struct harness_pooler *p, const char *rules)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { 0 };
	char databases[512], settings[HARNESS_PATH_MAX + 128], userlist[512];
	FILE *f;

	snprintf(databases, sizeof(databases),
		 "appdb = host=127.0.0.1 port=%d dbname=%s\nother = host=127.0.0.1 port=%d "
		 "dbname=%s\nnorule = host=127.0.0.1 port=%d dbname=%s\n",
		 fx->port, fx->db, fx->port, fx->db, fx->port, fx->db);
	snprintf(userlist, sizeof(userlist), "\"%s\" \"%s\"\n\"%s\" \"%s\"\n\"%s\" \"%s\"\n",
		 fx->app_user, fx->app_password, fx->md5_user, fx->md5_password, fx->admin_user,
		 fx->admin_password);
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
	start(&p, g_rules);
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
		  "host appdb app 127.0.0.1/32 scram-sha-256\n");
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_hba_rules_decide_each_login_first_match_wins,
					  harness_teardown),
		cmocka_unit_test_teardown(test_hba_reload_with_a_broken_file_keeps_the_old_rules,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_hba", tests, NULL, NULL);
}
