/*
 * test_auth.c: client authentication against the auth_file and login errors:
 * trust (the user must be listed), plain, md5 and scram-sha-256 with plain,
 * md5 and SCRAM secrets, wrong passwords and unknown users (28P01), unknown
 * databases (3D000, listed and via the "*" fallback), server-side md5 login,
 * PostgreSQL's own SCRAM secret in the auth_file logging in to the server by
 * pass-through (and refused with another salt), clients leaving while PBKDF2
 * runs for them off the loop, and 2,000 simultaneous SCRAM logins.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#define STORM_CLIENTS 2000
#define STORM_DEADLINE_MS 5000

/* ---- helpers ------------------------------------------------------------- */

/* A userlist with a plain, an md5 and a SCRAM entry, secrets from libpq. */
static void secrets_userlist(char *buf, size_t len)
{
	const struct harness_fixture *fx = harness_fixture();
	PGconn *s = harness_connect_pg_super("postgres");
	char *md5 = PQencryptPasswordConn(s, "pw-md5", "u_md5", "md5");
	char *scram = PQencryptPasswordConn(s, "pw-scram", "u_scram", "scram-sha-256");

	assert_non_null(md5);
	assert_non_null(scram);
	assert_true(strncmp(md5, "md5", 3) == 0);
	assert_true(strncmp(scram, "SCRAM-SHA-256$4096:", 19) == 0);
	harness_fmt(buf, len,
		    "\"u_plain\" \"pw-plain\"\n"
		    "\"u_md5\" \"%s\"\n"
		    "\"u_scram\" \"%s\"\n"
		    "\"%s\" \"%s\"\n",
		    md5, scram, fx->admin_user, fx->admin_password);
	PQfreemem(md5);
	PQfreemem(scram);
	PQfinish(s);
}

/*
 * Databases for the secrets tests: the auth_file users are not PostgreSQL
 * roles, so each entry forces the server login user; md5db logs in as the
 * role whose password PostgreSQL stores as md5 (server-side md5 auth).
 */
static void forced_user_databases(char *buf, size_t len)
{
	const struct harness_fixture *fx = harness_fixture();

	harness_fmt(buf, len,
		    "appdb = host=%s port=%d dbname=%s user=%s password=%s\n"
		    "md5db = host=%s port=%d dbname=%s user=%s password=%s\n",
		    fx->host, fx->port, fx->db, fx->app_user, fx->app_password,
		    fx->host, fx->port, fx->db, fx->md5_user, fx->md5_password);
}

/* ---- tests --------------------------------------------------------------- */

static void test_auth_wrong_password_gives_28P01(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	char ci[512];
	PGconn *c;

	harness_pooler_start(&p, NULL);
	harness_assert_login_refused(p.port, fx->db, fx->app_user, "not-the-password", "28P01",
				     NULL);
	/* An unknown user is refused the same way (no user enumeration). */
	harness_assert_login_refused(p.port, fx->db, "no_such_user", "whatever", "28P01", NULL);
	/* libpq agrees, and the right password still works afterwards. */
	harness_conninfo(ci, sizeof(ci), p.port, fx->db, fx->app_user, "wrong");
	c = PQconnectdb(ci);
	assert_int_equal(PQstatus(c), CONNECTION_BAD);
	/* PostgreSQL says "password authentication failed", PgBouncer "SASL
	 * authentication failed". */
	assert_non_null(strstr(PQerrorMessage(c), "authentication failed"));
	PQfinish(c);
	harness_assert_login_ok(p.port, fx->db, fx->app_user, fx->app_password,
				"scram-sha-256");
	harness_pooler_stop(&p, 20);
}

static void test_auth_unknown_database_gives_3D000(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;

	harness_pooler_start(&p, NULL);
	harness_assert_login_refused(p.port, "no_such_db", fx->app_user, fx->app_password,
				     "3D000", NULL);
	harness_assert_login_ok(p.port, fx->db, fx->app_user, fx->app_password, NULL);
	harness_pooler_stop(&p, 20);
}

static void test_auth_fallback_entry_to_missing_database_gives_3D000(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { 0 };
	struct harness_pooler p;
	char dbs[256];

	harness_fmt(dbs, sizeof(dbs), "* = host=%s port=%d\n", fx->host, fx->port);
	cfg.databases = dbs;
	harness_pooler_start(&p, &cfg);
	/* The fallback works for a database that exists... */
	harness_assert_libpq_user(&p, fx->db, fx->app_user, fx->app_password, fx->app_user);
	/* ...and PostgreSQL's "does not exist" reaches the client as 3D000. */
	harness_assert_login_refused(p.port, "no_such_db_fallback", fx->app_user,
				     fx->app_password, "3D000", NULL);
	/* The failed pool must not break the working one. */
	harness_assert_libpq_user(&p, fx->db, fx->app_user, fx->app_password, fx->app_user);
	harness_pooler_stop(&p, 20);
}

static void test_auth_md5_with_plain_md5_and_scram_secrets(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { .settings = "auth_type = md5\n" };
	struct harness_pooler p;
	char users[2048], dbs[1024];

	secrets_userlist(users, sizeof(users));
	forced_user_databases(dbs, sizeof(dbs));
	cfg.userlist = users;
	cfg.databases = dbs;
	harness_pooler_start(&p, &cfg);

	harness_assert_login_ok(p.port, fx->db, "u_plain", "pw-plain", "md5");
	harness_assert_login_ok(p.port, fx->db, "u_md5", "pw-md5", "md5");
	/* PgBouncer's documented rule: with auth_type = md5, a user whose
	 * auth_file entry is a SCRAM secret is asked for SCRAM instead. */
	harness_assert_login_ok(p.port, fx->db, "u_scram", "pw-scram", "scram-sha-256");
	harness_assert_login_refused(p.port, fx->db, "u_plain", "bad", "28P01", NULL);
	harness_assert_login_refused(p.port, fx->db, "u_md5", "bad", "28P01", NULL);
	harness_assert_login_refused(p.port, fx->db, "u_scram", "bad", "28P01", NULL);

	harness_assert_libpq_user(&p, fx->db, "u_plain", "pw-plain", fx->app_user);
	harness_assert_libpq_user(&p, fx->db, "u_md5", "pw-md5", fx->app_user);
	/* Server side md5: the pooler logs in as the md5-stored role. */
	harness_assert_libpq_user(&p, "md5db", "u_plain", "pw-plain", fx->md5_user);
	harness_pooler_stop(&p, 20);
}

static void test_auth_scram_with_plain_and_scram_secrets(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { .settings = "auth_type = scram-sha-256\n" };
	struct harness_pooler p;
	char users[2048], dbs[1024];

	secrets_userlist(users, sizeof(users));
	forced_user_databases(dbs, sizeof(dbs));
	cfg.userlist = users;
	cfg.databases = dbs;
	harness_pooler_start(&p, &cfg);

	harness_assert_login_ok(p.port, fx->db, "u_plain", "pw-plain", "scram-sha-256");
	harness_assert_login_ok(p.port, fx->db, "u_scram", "pw-scram", "scram-sha-256");
	harness_assert_login_refused(p.port, fx->db, "u_plain", "bad", "28P01", NULL);
	harness_assert_login_refused(p.port, fx->db, "u_scram", "bad", "28P01", NULL);
	/* An md5 secret cannot answer a SCRAM exchange: never let it in. */
	harness_assert_login_refused(p.port, fx->db, "u_md5", "pw-md5", NULL, NULL);

	harness_assert_libpq_user(&p, fx->db, "u_plain", "pw-plain", fx->app_user);
	harness_assert_libpq_user(&p, fx->db, "u_scram", "pw-scram", fx->app_user);
	harness_assert_libpq_user(&p, "md5db", "u_scram", "pw-scram", fx->md5_user);
	harness_pooler_stop(&p, 20);
}

/* As PgBouncer: trust asks for no password, but only listed users get in. */
static void test_auth_trust_needs_a_listed_user(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { .settings = "auth_type = trust\n" };
	struct harness_pooler p;

	harness_pooler_start(&p, &cfg);
	harness_assert_login_ok(p.port, fx->db, fx->app_user, "not-checked", "trust");
	harness_assert_login_refused(p.port, fx->db, "no_such_user", "", "28P01", NULL);
	harness_assert_libpq_user(&p, fx->db, fx->app_user, "", fx->app_user);
	harness_pooler_stop(&p, 20);
}

static void test_auth_plain_with_plain_md5_and_scram_secrets(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { .settings = "auth_type = plain\n" };
	struct harness_pooler p;
	char users[2048], dbs[1024];

	secrets_userlist(users, sizeof(users));
	forced_user_databases(dbs, sizeof(dbs));
	cfg.userlist = users;
	cfg.databases = dbs;
	harness_pooler_start(&p, &cfg);

	harness_assert_login_ok(p.port, fx->db, "u_plain", "pw-plain", "cleartext");
	harness_assert_login_ok(p.port, fx->db, "u_md5", "pw-md5", "cleartext");
	/* Checked against the SCRAM secret off the event loop. */
	harness_assert_login_ok(p.port, fx->db, "u_scram", "pw-scram", "cleartext");
	harness_assert_login_refused(p.port, fx->db, "u_plain", "bad", "28P01", NULL);
	harness_assert_login_refused(p.port, fx->db, "u_md5", "bad", "28P01", NULL);
	harness_assert_login_refused(p.port, fx->db, "u_scram", "bad", "28P01", NULL);
	harness_assert_login_refused(p.port, fx->db, "no_such_user", "bad", "28P01", NULL);
	harness_assert_libpq_user(&p, fx->db, "u_scram", "pw-scram", fx->app_user);
	harness_pooler_stop(&p, 20);
}

/* PostgreSQL's stored secret for user, as a superuser reads it. */
static char *pg_secret(const char *user)
{
	PGconn *s = harness_connect_pg_super("postgres");
	char sql[256];
	char *v;

	harness_fmt(sql, sizeof(sql), "SELECT rolpassword FROM pg_authid WHERE rolname = '%s'",
		    user);
	v = harness_scalar(s, sql);
	PQfinish(s);
	assert_non_null(v);
	return v;
}

/*
 * The auth_file holds PostgreSQL's own SCRAM secret for app and no password:
 * pgmux logs in to PostgreSQL with the keys of the client's exchange, for
 * every new server connection, under scram-sha-256 and under plain.
 */
static void test_auth_file_scram_secret_logs_in_by_passthrough(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	static const char *const types[] = { "auth_type = scram-sha-256\n",
					     "auth_type = plain\n" };
	struct harness_pooler_cfg cfg = { 0 };
	struct harness_pooler p;
	char users[1024];
	char *secret = pg_secret(fx->app_user);
	size_t i;

	assert_true(strncmp(secret, "SCRAM-SHA-256$", 14) == 0);
	harness_fmt(users, sizeof(users), "\"%s\" \"%s\"\n\"%s\" \"%s\"\n", fx->app_user,
		    secret, fx->admin_user, fx->admin_password);
	cfg.userlist = users;
	for (i = 0; i < 2; i++) {
		PGconn *a, *b, *super;

		cfg.settings = types[i];
		harness_wait_no_server_conns(fx->db, fx->app_user, 15);
		harness_pooler_start(&p, &cfg);
		harness_assert_login_refused(p.port, fx->db, fx->app_user, "bad", "28P01",
					     NULL);
		/* Two transactions at once: two server logins, both by pass-through. */
		a = harness_connect_pooler(&p, fx->db, fx->app_user, fx->app_password);
		b = harness_connect_pooler(&p, fx->db, fx->app_user, fx->app_password);
		harness_exec(a, "BEGIN");
		harness_exec(b, "BEGIN");
		harness_exec(a, "SELECT 1");
		harness_exec(b, "SELECT 1");
		super = harness_connect_pg_super(NULL);
		assert_int_equal(harness_count_server_conns(super, fx->db, fx->app_user), 2);
		PQfinish(super);
		harness_exec(a, "COMMIT");
		harness_exec(b, "COMMIT");
		PQfinish(a);
		PQfinish(b);
		harness_pooler_stop(&p, 20);
	}
	free(secret);
}

/*
 * A SCRAM secret for the right password but another salt verifies the
 * client, yet its keys cannot be PostgreSQL's: the server login is refused
 * with a reason, not retried with a guess (PgBouncer documents the same
 * limit: "the SCRAM secrets are identical in PgBouncer and the server").
 */
static void test_auth_file_scram_secret_with_other_salt_cannot_pass_through(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { .settings = "auth_type = scram-sha-256\n" };
	struct harness_pooler p;
	struct harness_login l;
	PGconn *s = harness_connect_pg_super("postgres");
	char *other = PQencryptPasswordConn(s, fx->app_password, fx->app_user, "scram-sha-256");
	char users[1024];

	assert_non_null(other);
	harness_fmt(users, sizeof(users), "\"%s\" \"%s\"\n\"%s\" \"%s\"\n", fx->app_user,
		    other, fx->admin_user, fx->admin_password);
	cfg.userlist = users;
	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	harness_pooler_start(&p, &cfg);
	harness_raw_login(p.port, fx->db, fx->app_user, fx->app_password, &l);
	print_message("login with a foreign salt: ok %d sqlstate %s: %s\n", l.ok, l.sqlstate,
		      l.message);
	assert_false(l.ok);
	assert_string_equal(l.sqlstate, "28P01");
	assert_non_null(strstr(l.message, "salt"));
	harness_pooler_stop(&p, 20);
	PQfreemem(other);
	PQfinish(s);
}

/* ---- clients that leave while pgmux works for them ------------------------ */

#define LEAVERS 40

/*
 * PBKDF2 runs off the loop while its client is paused. Clients that leave
 * meanwhile (after sending a cleartext password checked against a SCRAM
 * secret; right after startup, while the SCRAM secret of a plain password is
 * derived) must cost nothing but the work: the answers are dropped, pgmux
 * stays up, and ASan finds nothing.
 */
static void test_auth_clients_leaving_during_pbkdf2_are_dropped(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { 0 };
	struct harness_pooler p;
	char users[2048], dbs[1024];
	int fds[LEAVERS];
	int i, sent = 0;

	secrets_userlist(users, sizeof(users));
	forced_user_databases(dbs, sizeof(dbs));
	cfg.userlist = users;
	cfg.databases = dbs;

	cfg.settings = "auth_type = plain\n";
	harness_pooler_start(&p, &cfg);
	for (i = 0; i < LEAVERS; i++) {
		struct harness_msg m;

		fds[i] = harness_raw_startup(p.port, fx->db, "u_scram");
		assert_true(fds[i] >= 0);
		if (harness_raw_read_msg(fds[i], &m, 5000) && m.type == 'R' && m.len >= 4 &&
		    harness_get32(m.body) == 3) {
			static const unsigned char msg[] = "p\0\0\0\015pw-scram";

			sent += write(fds[i], msg, sizeof(msg)) == (ssize_t)sizeof(msg);
		}
	}
	for (i = 0; i < LEAVERS; i++)
		close(fds[i]);
	print_message("%d cleartext passwords sent, clients gone before the answer\n", sent);
	assert_int_equal(sent, LEAVERS);
	harness_assert_login_ok(p.port, fx->db, "u_scram", "pw-scram", "cleartext");
	assert_true(harness_pooler_alive(&p));
	harness_pooler_stop(&p, 20);

	cfg.settings = "auth_type = scram-sha-256\n";
	harness_pooler_start(&p, &cfg);
	for (i = 0; i < LEAVERS; i++) {
		fds[i] = harness_raw_startup(p.port, fx->db, "u_plain");
		assert_true(fds[i] >= 0);
	}
	for (i = 0; i < LEAVERS; i++)
		close(fds[i]);
	harness_assert_login_ok(p.port, fx->db, "u_plain", "pw-plain", "scram-sha-256");
	assert_true(harness_pooler_alive(&p));
	harness_pooler_stop(&p, 20);
}

/* ---- 2,000 simultaneous SCRAM logins, raw protocol ------------------------ */

/*
 * libpq derives the salted password (PBKDF2, 4096 rounds, ~4 ms here) on
 * every connection, so 2,000 libpq logins cost the test process ~8 s of CPU
 * whatever the pooler does. harness_storm_run caches it per (salt,
 * iterations): with a pooler that reuses one secret per user, only the
 * first login pays.
 */
static void test_auth_2000_simultaneous_scram_logins_within_5s(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = {
		.settings = "max_client_conn = 3000\nlisten_backlog = 4096\n",
	};
	struct harness_storm st = { .user = fx->app_user, .password = fx->app_password,
				    .db = fx->db };
	struct harness_storm_conn *sc = calloc(STORM_CLIENTS, sizeof(*sc));
	struct harness_pooler p;
	int i, done = 0, failed = 0, pending;
	long long t0, cpu0, cpu1, slowest = 0;

	assert_non_null(sc);
	harness_raise_nofile(3 * STORM_CLIENTS + 1000);
	harness_pooler_start(&p, &cfg);
	/* Warm the pool (first login may wait for a server connection). */
	harness_assert_login_ok(p.port, fx->db, fx->app_user, fx->app_password,
				"scram-sha-256");
	cpu0 = harness_proc_cpu_ms(p.pid);

	t0 = harness_now_ms();
	harness_storm_run(&st, sc, STORM_CLIENTS, p.port, STORM_DEADLINE_MS);
	cpu1 = harness_proc_cpu_ms(p.pid);
	pending = 0;
	for (i = 0; i < STORM_CLIENTS; i++) {
		if (sc[i].state == HARNESS_STORM_DONE) {
			done++;
			if (sc[i].done_ms - t0 > slowest)
				slowest = sc[i].done_ms - t0;
		} else if (sc[i].state == HARNESS_STORM_FAILED) {
			if (failed++ == 0)
				print_message("first failure: %s %s\n", sc[i].why,
					      sc[i].sqlstate);
		} else {
			pending++;
		}
	}
	print_message("%d/%d SCRAM logins done in %lld ms (slowest), %d failed, %d "
		      "unfinished at %d ms; pooler CPU %lld ms; client PBKDF2 runs %d\n",
		      done, STORM_CLIENTS, slowest, failed, pending, STORM_DEADLINE_MS,
		      cpu1 - cpu0, st.derivations);
	for (i = 0; i < STORM_CLIENTS; i++)
		harness_storm_close(&sc[i]);
	free(sc);
	harness_pooler_stop(&p, 30);
	assert_int_equal(failed, 0);
	assert_int_equal(done, STORM_CLIENTS);
}

/* ---- the same through libpq's async API ----------------------------------- */

static void test_auth_2000_libpq_async_scram_logins_succeed_cheaply(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = {
		.settings = "max_client_conn = 3000\nlisten_backlog = 4096\n",
	};
	PGconn **c = calloc(STORM_CLIENTS, sizeof(*c));
	PostgresPollingStatusType *ps = calloc(STORM_CLIENTS, sizeof(*ps));
	struct pollfd *pfd = calloc(STORM_CLIENTS, sizeof(*pfd));
	int *idx = calloc(STORM_CLIENTS, sizeof(*idx));
	struct harness_pooler p;
	char ci[512], first_err[512] = "";
	long long t0, cpu0, cpu1, elapsed;
	int i, ok = 0, bad = 0;

	assert_non_null(c);
	assert_non_null(ps);
	assert_non_null(pfd);
	assert_non_null(idx);
	harness_raise_nofile(3 * STORM_CLIENTS + 1000);
	harness_pooler_start(&p, &cfg);
	harness_assert_login_ok(p.port, fx->db, fx->app_user, fx->app_password,
				"scram-sha-256");
	harness_conninfo(ci, sizeof(ci), p.port, fx->db, fx->app_user, fx->app_password);
	cpu0 = harness_proc_cpu_ms(p.pid);
	t0 = harness_now_ms();
	for (i = 0; i < STORM_CLIENTS; i++) {
		c[i] = PQconnectStart(ci);
		assert_non_null(c[i]);
		ps[i] = PQstatus(c[i]) == CONNECTION_BAD ? PGRES_POLLING_FAILED
							 : PGRES_POLLING_WRITING;
	}
	for (;;) {
		int n = 0;

		for (i = 0; i < STORM_CLIENTS; i++) {
			if (ps[i] == PGRES_POLLING_OK || ps[i] == PGRES_POLLING_FAILED)
				continue;
			pfd[n].fd = PQsocket(c[i]);
			pfd[n].events = ps[i] == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			pfd[n].revents = 0;
			idx[n++] = i;
		}
		if (n == 0 || harness_now_ms() - t0 > 120000)
			break;
		if (poll(pfd, (nfds_t)n, 1000) < 0 && errno != EINTR)
			fail_msg("poll: %s", strerror(errno));
		for (i = 0; i < n; i++)
			if (pfd[i].revents != 0)
				ps[idx[i]] = PQconnectPoll(c[idx[i]]);
	}
	elapsed = harness_now_ms() - t0;
	cpu1 = harness_proc_cpu_ms(p.pid);
	for (i = 0; i < STORM_CLIENTS; i++) {
		if (PQstatus(c[i]) == CONNECTION_OK)
			ok++;
		else if (bad++ == 0)
			snprintf(first_err, sizeof(first_err), "%s", PQerrorMessage(c[i]));
		PQfinish(c[i]);
	}
	print_message("libpq: %d/%d logins ok in %lld ms; pooler CPU %lld ms (%.0f us "
		      "per login)\n", ok, STORM_CLIENTS, elapsed, cpu1 - cpu0,
		      (double)(cpu1 - cpu0) * 1000.0 / STORM_CLIENTS);
	free(c);
	free(ps);
	free(pfd);
	free(idx);
	harness_pooler_stop(&p, 30);
	if (bad)
		fail_msg("%d libpq logins failed; first: %s", bad, first_err);
	/*
	 * One PBKDF2 of 4096 rounds costs ~1.5 ms here, so a pooler that
	 * derives the secret per login cannot stay under 1 ms per login.
	 */
	if ((cpu1 - cpu0) >= STORM_CLIENTS)
		fail_msg("pooler used %lld ms CPU for %d SCRAM logins (>= 1 ms each): "
			 "is the SCRAM secret derived per login?", cpu1 - cpu0,
			 STORM_CLIENTS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_auth_wrong_password_gives_28P01,
					  harness_teardown),
		cmocka_unit_test_teardown(test_auth_unknown_database_gives_3D000,
					  harness_teardown),
		cmocka_unit_test_teardown(test_auth_fallback_entry_to_missing_database_gives_3D000,
					  harness_teardown),
		cmocka_unit_test_teardown(test_auth_md5_with_plain_md5_and_scram_secrets,
					  harness_teardown),
		cmocka_unit_test_teardown(test_auth_scram_with_plain_and_scram_secrets,
					  harness_teardown),
		cmocka_unit_test_teardown(test_auth_trust_needs_a_listed_user, harness_teardown),
		cmocka_unit_test_teardown(test_auth_plain_with_plain_md5_and_scram_secrets,
					  harness_teardown),
		cmocka_unit_test_teardown(test_auth_file_scram_secret_logs_in_by_passthrough,
					  harness_teardown),
		cmocka_unit_test_teardown(
			test_auth_file_scram_secret_with_other_salt_cannot_pass_through,
			harness_teardown),
		cmocka_unit_test_teardown(test_auth_clients_leaving_during_pbkdf2_are_dropped,
					  harness_teardown),
		cmocka_unit_test_teardown(test_auth_2000_simultaneous_scram_logins_within_5s,
					  harness_teardown),
		cmocka_unit_test_teardown(test_auth_2000_libpq_async_scram_logins_succeed_cheaply,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_auth", tests, NULL, NULL);
}
