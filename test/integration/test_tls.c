/*
 * test_tls.c: TLS on both sides of pgmux against real PostgreSQL. The group
 * setup makes a throwaway CA, a certificate for "localhost"/127.0.0.1 and a
 * client certificate with the openssl CLI, and turns ssl on in the shared
 * cluster (ALTER SYSTEM + reload); the teardown turns it off again.
 *
 * Checked: libpq and psql with sslmode=require and verify-full to pgmux, the
 * admin console over TLS, a plaintext client refused when TLS is required,
 * pgmux to PostgreSQL with server_tls_sslmode=verify-full (and refused when
 * the CA does not match), large results and large queries through TLS on
 * both sides (backpressure), the tls column of SHOW CLIENTS/SERVERS, a
 * certificate swapped by RELOAD, and plaintext sent after SSLRequest.
 * pgmux's own client certificate (server_tls_cert_file/key_file): with
 * pg_hba.conf requiring one for two roles (cert, and scram-sha-256 with
 * clientcert=verify-full), the right certificate logs in; none, another
 * role's, or one from a CA PostgreSQL does not trust is refused promptly
 * with PostgreSQL's error. pg_hba.conf is restored by the test's teardown.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

static char g_dir[256];

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fail_msg("command failed (%d): %s", rc, cmd);
}

/* Key and certificate <name> signed by CA <ca>, with a subjectAltName. */
static void make_cert(const char *ca, const char *name, const char *cn, const char *san)
{
	run("cd %s && openssl req -new -newkey rsa:2048 -nodes -keyout %s.key -out %s.csr "
	    "-subj '/CN=%s' >/dev/null 2>&1", g_dir, name, name, cn);
	run("cd %s && printf 'subjectAltName=%s\\n' >%s.ext && "
	    "openssl x509 -req -in %s.csr -CA %s.crt -CAkey %s.key -CAcreateserial "
	    "-days 2 -extfile %s.ext -out %s.crt >/dev/null 2>&1",
	    g_dir, san, name, name, ca, ca, name, name);
}

static void make_ca(const char *name)
{
	run("cd %s && openssl req -x509 -new -newkey rsa:2048 -nodes -keyout %s.key -out %s.crt "
	    "-days 2 -subj '/CN=pgmux test %s' >/dev/null 2>&1", g_dir, name, name, name);
}

static void pg_ssl(bool on)
{
	PGconn *super = harness_connect_pg_super("postgres");
	char sql[1024];

	if (on) {
		snprintf(sql, sizeof(sql), "ALTER SYSTEM SET ssl_cert_file = '%s/pg.crt'", g_dir);
		harness_exec(super, sql);
		snprintf(sql, sizeof(sql), "ALTER SYSTEM SET ssl_key_file = '%s/pg.key'", g_dir);
		harness_exec(super, sql);
		harness_exec(super, "ALTER SYSTEM SET ssl = on");
	} else {
		harness_exec(super, "ALTER SYSTEM RESET ssl");
		harness_exec(super, "ALTER SYSTEM RESET ssl_cert_file");
		harness_exec(super, "ALTER SYSTEM RESET ssl_key_file");
	}
	harness_exec(super, "SELECT pg_reload_conf()");
	PQfinish(super);
	usleep(300000); /* the postmaster rereads its files asynchronously */
}

static int group_setup(void **state)
{
	struct passwd *pg = getpwnam("postgres");

	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/pgmux-tls.XXXXXX");
	if (!mkdtemp(g_dir))
		return -1;
	chmod(g_dir, 0755);
	make_ca("ca");
	make_ca("otherca");
	make_cert("ca", "server", "localhost", "DNS:localhost,IP:127.0.0.1");
	make_cert("ca", "server2", "localhost", "DNS:localhost,IP:127.0.0.1");
	make_cert("ca", "client", "app", "DNS:app");
	/* pgmux's certificates toward PostgreSQL (pg_hba cert rules). */
	make_cert("ca", "certuser", "certuser", "DNS:certuser");
	make_cert("ca", "certpw", "certpw", "DNS:certpw");
	make_cert("otherca", "certuser_other", "certuser", "DNS:certuser");
	/* PostgreSQL wants its key owned by it and private. */
	run("cd %s && cp server.crt pg.crt && cp server.key pg.key && chmod 600 pg.key", g_dir);
	if (pg && getuid() == 0)
		run("chown %d:%d %s/pg.key %s/pg.crt", (int)pg->pw_uid, (int)pg->pw_gid, g_dir, g_dir);
	run("chmod 644 %s/*.crt %s/server.key %s/server2.key", g_dir, g_dir, g_dir);
	/* libpq refuses a readable key */
	run("chmod 600 %s/client.key %s/certuser.key %s/certpw.key %s/certuser_other.key", g_dir,
	    g_dir, g_dir, g_dir);
	pg_ssl(true);
	return 0;
}

static void cert_rules_off(void);

static int group_teardown(void **state)
{
	(void)state;
	cert_rules_off(); /* normally done already by the test's teardown */
	pg_ssl(false);
	run("rm -rf %s", g_dir);
	return 0;
}

/* The settings of a pgmux with client TLS on (sslmode given). */
static void tls_settings(char *buf, size_t len, const char *mode, const char *extra)
{
	snprintf(buf, len,
		 "client_tls_sslmode = %s\nclient_tls_cert_file = %s/server.crt\n"
		 "client_tls_key_file = %s/server.key\nclient_tls_ca_file = %s/ca.crt\n%s",
		 mode, g_dir, g_dir, g_dir, extra ? extra : "");
}

/* conninfo to pgmux as app with extra libpq keywords (later ones win). */
static void conninfo(char *buf, size_t len, const struct harness_pooler *p, const char *db,
		     const char *extra)
{
	const struct harness_fixture *fx = harness_fixture();
	char base[512];
	bool admin = db && strcmp(db, harness_pooler_name()) == 0;

	harness_conninfo(base, sizeof(base), p->port, db ? db : fx->db,
			 admin ? fx->admin_user : fx->app_user,
			 admin ? fx->admin_password : fx->app_password);
	snprintf(buf, len, "%.500s %.500s", base, extra);
}

static const char *tls_column(PGresult *r, int row)
{
	return PQgetvalue(r, row, harness_col(r, "tls"));
}

static void test_tls_libpq_require_and_verify_full_reach_pgmux_over_tls(void **state)
{
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = { 0 };
	char settings[1024], ci[1024];
	PGconn *c, *admin;
	PGresult *r;
	int row;

	(void)state;
	tls_settings(settings, sizeof(settings), "require", NULL);
	cfg.settings = settings;
	harness_pooler_start(&p, &cfg);

	conninfo(ci, sizeof(ci), &p, NULL, "sslmode=require");
	c = harness_connect(ci);
	assert_true(PQsslInUse(c));
	print_message("client TLS: %s %s\n", PQsslAttribute(c, "protocol"),
		      PQsslAttribute(c, "cipher"));
	assert_int_equal(harness_scalar_ll(c, "SELECT 41 + 1"), 42);
	PQfinish(c);

	/* verify-full: the certificate names localhost and chains to the CA. */
	snprintf(settings, sizeof(settings), "host=localhost sslmode=verify-full sslrootcert=%s/ca.crt",
		 g_dir);
	conninfo(ci, sizeof(ci), &p, NULL, settings);
	c = harness_connect(ci);
	assert_true(PQsslInUse(c));
	assert_int_equal(harness_scalar_ll(c, "SELECT 7"), 7);

	/* The console over TLS too, and SHOW CLIENTS names the protocol. */
	conninfo(ci, sizeof(ci), &p, harness_pooler_name(), "sslmode=require");
	admin = harness_connect(ci);
	assert_true(PQsslInUse(admin));
	r = harness_query(admin, "SHOW CLIENTS");
	row = harness_find_row(r, "database", harness_fixture()->db, NULL, NULL);
	assert_true(row >= 0);
	print_message("SHOW CLIENTS tls: %s\n", tls_column(r, row));
	assert_non_null(strstr(tls_column(r, row), "TLSv1."));
	PQclear(r);
	PQfinish(admin);
	PQfinish(c);

	/* psql as users run it. */
	run("PGPASSWORD=%s psql -X -q -t -A 'host=localhost port=%d dbname=%s user=%s "
	    "sslmode=verify-full sslrootcert=%s/ca.crt' -c 'SELECT 1' | grep -qx 1",
	    harness_fixture()->app_password, p.port, harness_fixture()->db,
	    harness_fixture()->app_user, g_dir);
	harness_pooler_stop(&p, 10);
}

static void test_tls_plaintext_client_is_refused_with_28000_when_tls_is_required(void **state)
{
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = { 0 };
	char settings[1024], ci[1024];
	PGconn *c;

	(void)state;
	tls_settings(settings, sizeof(settings), "require", NULL);
	cfg.settings = settings;
	harness_pooler_start(&p, &cfg);
	conninfo(ci, sizeof(ci), &p, NULL, "sslmode=disable");
	c = PQconnectdb(ci);
	assert_int_equal(PQstatus(c), CONNECTION_BAD);
	print_message("plaintext client: %s", PQerrorMessage(c));
	assert_non_null(strstr(PQerrorMessage(c), "SSL required"));
	PQfinish(c);
	/* With TLS merely offered (prefer), both kinds get in. */
	harness_pooler_stop(&p, 10);
	tls_settings(settings, sizeof(settings), "prefer", NULL);
	harness_pooler_start(&p, &cfg);
	conninfo(ci, sizeof(ci), &p, NULL, "sslmode=disable");
	c = harness_connect(ci);
	assert_false(PQsslInUse(c));
	PQfinish(c);
	conninfo(ci, sizeof(ci), &p, NULL, "sslmode=require");
	c = harness_connect(ci);
	assert_true(PQsslInUse(c));
	PQfinish(c);
	harness_pooler_stop(&p, 10);
}

/* pgmux -> PostgreSQL over TLS, verified; PostgreSQL itself confirms it. */
static void test_tls_server_verify_full_connects_over_tls_and_wrong_ca_is_refused(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = { 0 };
	char settings[1024], databases[512];
	PGconn *c, *admin;
	PGresult *r;
	char *ssl;

	(void)state;
	snprintf(databases, sizeof(databases), "%s = host=localhost port=%d dbname=%s\n", fx->db,
		 fx->port, fx->db);
	snprintf(settings, sizeof(settings),
		 "server_tls_sslmode = verify-full\nserver_tls_ca_file = %s/ca.crt\n", g_dir);
	cfg.settings = settings;
	cfg.databases = databases;
	harness_pooler_start(&p, &cfg);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	ssl = harness_scalar(c, "SELECT ssl::text || ' ' || version FROM pg_stat_ssl "
				"WHERE pid = pg_backend_pid()");
	print_message("PostgreSQL sees pgmux's connection as: %s\n", ssl);
	assert_non_null(ssl);
	assert_true(strncmp(ssl, "true TLSv1.", 11) == 0);
	free(ssl);
	admin = harness_connect_admin(&p);
	r = harness_query(admin, "SHOW SERVERS");
	assert_true(PQntuples(r) >= 1);
	assert_non_null(strstr(tls_column(r, 0), "TLSv1."));
	PQclear(r);
	PQfinish(admin);
	PQfinish(c);
	harness_pooler_stop(&p, 10);

	/* A CA that did not sign PostgreSQL's certificate: no server login. */
	snprintf(settings, sizeof(settings),
		 "server_tls_sslmode = verify-full\nserver_tls_ca_file = %s/otherca.crt\n", g_dir);
	harness_pooler_start(&p, &cfg);
	{
		char ci[1024];

		/* The pool has never logged in, so the client's own login
		 * waits for the first server and hears why it failed. */
		conninfo(ci, sizeof(ci), &p, NULL, "sslmode=disable");
		c = PQconnectdb(ci);
		print_message("with the wrong CA: %s", PQerrorMessage(c));
		assert_int_equal(PQstatus(c), CONNECTION_BAD);
		assert_non_null(strstr(PQerrorMessage(c), "certificate verify failed"));
		PQfinish(c);
	}
	harness_pooler_stop(&p, 10);
}

/* TLS on both sides, 20 MB out and 2 MB in: records span reads and the
 * slow direction holds the other back. */
static void test_tls_large_results_and_queries_cross_both_tls_legs_intact(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = { 0 };
	char settings[2048], extra[512], databases[512], ci[1024];
	PGconn *c;
	PGresult *r;
	char *big;
	size_t n = 2 * 1024 * 1024;
	const char *params[1];

	(void)state;
	snprintf(extra, sizeof(extra),
		 "server_tls_sslmode = verify-full\nserver_tls_ca_file = %s/ca.crt\n", g_dir);
	tls_settings(settings, sizeof(settings), "require", extra);
	snprintf(databases, sizeof(databases), "%s = host=localhost port=%d dbname=%s\n", fx->db,
		 fx->port, fx->db);
	cfg.settings = settings;
	cfg.databases = databases;
	harness_pooler_start(&p, &cfg);
	conninfo(ci, sizeof(ci), &p, NULL, "sslmode=require");
	c = harness_connect(ci);
	assert_true(PQsslInUse(c));
	r = harness_query(c, "SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 150000) i");
	assert_int_equal(PQntuples(r), 150000);
	for (int i = 0; i < PQntuples(r); i += 997) {
		assert_int_equal(atoi(PQgetvalue(r, i, 0)), i + 1);
		assert_int_equal(strlen(PQgetvalue(r, i, 1)), 128);
	}
	PQclear(r);

	big = malloc(n + 1);
	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	big[n] = '\0';
	params[0] = big;
	r = PQexecParams(c, "SELECT length($1), md5($1)", 1, NULL, params, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_int_equal(atol(PQgetvalue(r, 0, 0)), (long)n);
	PQclear(r);
	free(big);
	PQfinish(c);
	harness_pooler_stop(&p, 10);
}

/* The subject of the certificate pgmux presents right now. */
static void presented_subject(int port, char *out, size_t len)
{
	char cmd[512];
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "openssl s_client -starttls postgres -connect 127.0.0.1:%d </dev/null 2>/dev/null | "
		 "openssl x509 -noout -serial 2>/dev/null", port);
	f = popen(cmd, "r");
	assert_non_null(f);
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	pclose(f);
}

static void test_tls_reload_swaps_the_certificate_for_new_connections(void **state)
{
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = { 0 };
	char settings[1024], ci[1024], before[128], after[128];
	PGconn *old_conn, *admin;

	(void)state;
	tls_settings(settings, sizeof(settings), "require", NULL);
	cfg.settings = settings;
	harness_pooler_start(&p, &cfg);
	conninfo(ci, sizeof(ci), &p, NULL, "sslmode=require");
	old_conn = harness_connect(ci);
	presented_subject(p.port, before, sizeof(before));

	snprintf(settings, sizeof(settings),
		 "client_tls_sslmode = require\nclient_tls_cert_file = %s/server2.crt\n"
		 "client_tls_key_file = %s/server2.key\n", g_dir, g_dir);
	harness_pooler_rewrite(&p, &cfg);
	admin = harness_connect_admin(&p);
	harness_exec(admin, "RELOAD");
	PQfinish(admin);
	presented_subject(p.port, after, sizeof(after));
	print_message("certificate serial before RELOAD: %safter: %s", before, after);
	assert_true(before[0] != '\0' && after[0] != '\0');
	assert_string_not_equal(before, after);
	/* The connection made with the old certificate carries on. */
	assert_int_equal(harness_scalar_ll(old_conn, "SELECT 3"), 3);
	PQfinish(old_conn);

	/* A RELOAD pointing at a missing key keeps the working certificate. */
	snprintf(settings, sizeof(settings),
		 "client_tls_sslmode = require\nclient_tls_cert_file = %s/server2.crt\n"
		 "client_tls_key_file = %s/missing.key\n", g_dir, g_dir);
	harness_pooler_rewrite(&p, &cfg);
	admin = harness_connect_admin(&p);
	{
		PGresult *r = PQexec(admin, "RELOAD");

		assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
		PQclear(r);
	}
	PQfinish(admin);
	old_conn = harness_connect(ci);
	assert_true(PQsslInUse(old_conn));
	PQfinish(old_conn);
	harness_pooler_stop(&p, 10);
}

/* auth_type = cert: the client certificate's CN is the user; no
 * certificate, or one for another user, is refused with 28000. */
static void test_tls_auth_type_cert_accepts_the_certificate_of_the_user_only(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = { 0 };
	char settings[1024], extra[640], ci[1024];
	PGconn *c;

	(void)state;
	tls_settings(settings, sizeof(settings), "require", "auth_type = cert\n");
	cfg.settings = settings;
	harness_pooler_start(&p, &cfg);
	snprintf(extra, sizeof(extra), "sslmode=require sslcert=%s/client.crt sslkey=%s/client.key",
		 g_dir, g_dir);
	conninfo(ci, sizeof(ci), &p, NULL, extra);
	c = harness_connect(ci);
	assert_int_equal(harness_scalar_ll(c, "SELECT 5"), 5);
	PQfinish(c);

	conninfo(ci, sizeof(ci), &p, NULL, "sslmode=require");
	c = PQconnectdb(ci);
	print_message("without a certificate: %s", PQerrorMessage(c));
	assert_int_equal(PQstatus(c), CONNECTION_BAD);
	assert_non_null(strstr(PQerrorMessage(c), "certificate authentication failed"));
	PQfinish(c);

	/* app's certificate presented for another user. */
	{
		char base[512];

		harness_conninfo(base, sizeof(base), p.port, fx->db, fx->admin_user,
				 fx->admin_password);
		snprintf(ci, sizeof(ci), "%.500s %.500s", base, extra);
	}
	c = PQconnectdb(ci);
	print_message("someone else's certificate: %s", PQerrorMessage(c));
	assert_int_equal(PQstatus(c), CONNECTION_BAD);
	assert_non_null(strstr(PQerrorMessage(c), "certificate is for \"app\""));
	PQfinish(c);
	harness_pooler_stop(&p, 10);
}

/* SSLRequest and a StartupMessage in one write: refused before any 'S'. */
static void test_tls_plaintext_after_ssl_request_is_refused_with_08P01(void **state)
{
	struct harness_pooler p;
	struct harness_pooler_cfg cfg = { 0 };
	char settings[1024];
	unsigned char pkt[64];
	unsigned char reply[512];
	struct sockaddr_in sa = { 0 };
	ssize_t got, total = 0;
	int fd;
	static const char startup[] = "user\0app\0database\0appdb\0";
	uint32_t v;

	(void)state;
	tls_settings(settings, sizeof(settings), "require", NULL);
	cfg.settings = settings;
	harness_pooler_start(&p, &cfg);
	v = htonl(8);
	memcpy(pkt, &v, 4);
	v = htonl(80877103u);
	memcpy(pkt + 4, &v, 4);
	v = htonl((uint32_t)(8 + sizeof(startup)));
	memcpy(pkt + 8, &v, 4);
	v = htonl(196608u);
	memcpy(pkt + 12, &v, 4);
	memcpy(pkt + 16, startup, sizeof(startup));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)p.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, pkt, 16 + sizeof(startup)), (ssize_t)(16 + sizeof(startup)));
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };

		if (poll(&pfd, 1, 3000) <= 0)
			break;
		got = read(fd, reply + total, sizeof(reply) - (size_t)total - 1);
		if (got <= 0)
			break;
		total += got;
	}
	close(fd);
	assert_true(total > 0);
	assert_int_equal(reply[0], 'E'); /* not 'S' */
	reply[total] = '\0';
	assert_non_null(memmem(reply, (size_t)total, "08P01", 5));
	assert_true(harness_pooler_alive(&p));
	harness_pooler_stop(&p, 10);
}

/* ---- pgmux presenting a client certificate to PostgreSQL ---- */

/*
 * Rules for two roles of this test only, put above the fixture's: certuser
 * logs in by certificate alone, certpw by password plus a certificate for
 * its name. Without TLS both are turned away, so a fall-through to the
 * fixture's scram-sha-256 line cannot hide a missing certificate. The rules
 * name only these roles, so a copy left behind by a killed run cannot
 * change any other test.
 */
static const char g_cert_rules[] =
	"# test_tls.c: server_tls_cert_file (restored when the test ends)\n"
	"hostssl   appdb  certuser         127.0.0.1/32  cert\n"
	"hostssl   appdb  certpw           127.0.0.1/32  scram-sha-256 clientcert=verify-full\n"
	"hostnossl all    certuser,certpw  127.0.0.1/32  reject\n";
static const char g_certpw_password[] = "certpw-pw";
static char g_hba_file[HARNESS_PATH_MAX];
static char *g_hba_saved; /* the fixture's pg_hba.conf while ours is in place */

/* Writes text over path in place, so the file keeps its owner and mode. */
static bool overwrite(const char *path, const char *text)
{
	FILE *f = fopen(path, "r+");
	bool ok;

	if (f == NULL)
		return false;
	ok = ftruncate(fileno(f), 0) == 0 && fputs(text, f) != EOF;
	return fclose(f) == 0 && ok;
}

/* Until a test backend sees want (1: the cert rules in force, 0: gone). */
static void pg_reload_and_wait(PGconn *super, int want)
{
	harness_exec(super, "SELECT pg_reload_conf()");
	for (int i = 0; i < 100; i++) {
		/* A new backend reads the postmaster's current rules. */
		PGconn *c = harness_connect_pg_super("postgres");
		long long n = harness_scalar_ll(c, "SELECT count(*) FROM pg_hba_file_rules "
						   "WHERE 'certuser' = ANY(user_name)");
		char *ca = harness_scalar(c, "SHOW ssl_ca_file");
		bool done = (n > 0) == (want == 1) && (ca[0] != '\0') == (want == 1);

		free(ca);
		PQfinish(c);
		if (done)
			break;
		usleep(50000);
	}
	usleep(200000); /* the postmaster rereads pg_hba.conf on SIGHUP, asynchronously */
}

static void cert_rules_on(void)
{
	PGconn *super = harness_connect_pg_super("postgres");
	char sql[1024], *path, *text;
	size_t len;

	harness_exec(super, "SET client_min_messages = warning");
	harness_exec(super, "DROP ROLE IF EXISTS certuser");
	harness_exec(super, "DROP ROLE IF EXISTS certpw");
	harness_exec(super, "CREATE ROLE certuser LOGIN");
	harness_fmt(sql, sizeof(sql), "CREATE ROLE certpw LOGIN PASSWORD '%s'", g_certpw_password);
	harness_exec(super, sql);
	path = harness_scalar(super, "SHOW hba_file");
	harness_fmt(g_hba_file, sizeof(g_hba_file), "%s", path);
	free(path);
	/* From here on the teardown puts everything back. */
	g_hba_saved = harness_read_file(g_hba_file, &len);
	/* PostgreSQL asks for and checks client certificates against this CA. */
	harness_fmt(sql, sizeof(sql), "ALTER SYSTEM SET ssl_ca_file = '%s/ca.crt'", g_dir);
	harness_exec(super, sql);
	text = malloc(sizeof(g_cert_rules) + len);
	assert_non_null(text);
	memcpy(text, g_cert_rules, sizeof(g_cert_rules) - 1);
	memcpy(text + sizeof(g_cert_rules) - 1, g_hba_saved, len + 1);
	if (!overwrite(g_hba_file, text))
		fail_msg("cannot write %s: %s", g_hba_file, strerror(errno));
	free(text);
	pg_reload_and_wait(super, 1);
	PQfinish(super);
}

/* Puts the fixture's pg_hba.conf back; safe to call when nothing changed. */
static void cert_rules_off(void)
{
	PGconn *super;

	if (g_hba_saved == NULL)
		return;
	if (!overwrite(g_hba_file, g_hba_saved))
		print_error("cannot restore %s: %s\n", g_hba_file, strerror(errno));
	free(g_hba_saved);
	g_hba_saved = NULL;
	super = harness_connect_pg_super("postgres");
	harness_exec(super, "ALTER SYSTEM RESET ssl_ca_file");
	pg_reload_and_wait(super, 0);
	harness_exec(super, "DROP ROLE IF EXISTS certuser");
	harness_exec(super, "DROP ROLE IF EXISTS certpw");
	PQfinish(super);
}

static int cert_rules_teardown(void **state)
{
	int rc = harness_teardown(state); /* stop pgmux first: it holds certuser's servers */

	cert_rules_off();
	return rc;
}

/* A pgmux whose server connections use TLS (mode) with the key pair
 * <cert>.crt/.key from g_dir (cert NULL: none); TCP clients in plaintext. */
static void start_cert_pgmux(struct harness_pooler *p, const char *mode, const char *cert)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { 0 };
	char settings[1024], databases[512], userlist[512], pair[HARNESS_PATH_MAX * 2 + 64] = "";

	if (cert)
		harness_fmt(pair, sizeof(pair),
			    "server_tls_cert_file = %s/%s.crt\nserver_tls_key_file = %s/%s.key\n",
			    g_dir, cert, g_dir, cert);
	harness_fmt(settings, sizeof(settings),
		    "server_tls_sslmode = %s\nserver_tls_ca_file = %s/ca.crt\n%s"
		    "server_login_retry = 1\n", mode, g_dir, pair);
	harness_fmt(databases, sizeof(databases), "%s = host=localhost port=%d dbname=%s\n", fx->db,
		    fx->port, fx->db);
	/* Clients log in to pgmux with a password; certuser's is only pgmux's. */
	harness_fmt(userlist, sizeof(userlist),
		    "\"%s\" \"%s\"\n\"%s\" \"%s\"\n"
		    "\"certuser\" \"certuser-pw\"\n\"certpw\" \"%s\"\n",
		    fx->app_user, fx->app_password, fx->admin_user, fx->admin_password,
		    g_certpw_password);
	cfg.settings = settings;
	cfg.databases = databases;
	cfg.userlist = userlist;
	harness_pooler_start(p, &cfg);
}

static void certuser_conninfo(char *ci, size_t len, const struct harness_pooler *p,
			      const char *user)
{
	harness_conninfo(ci, len, p->port, harness_fixture()->db, user,
			 strcmp(user, "certpw") == 0 ? g_certpw_password : "certuser-pw");
}

/* user logs in through p and runs a query; PostgreSQL saw pgmux's
 * certificate with this subject. */
static void expect_cert_login(const struct harness_pooler *p, const char *user, const char *dn)
{
	char ci[1024], *got;
	PGconn *c;

	certuser_conninfo(ci, sizeof(ci), p, user);
	c = harness_connect(ci);
	got = harness_scalar(c, "SELECT current_user || ' ' || coalesce(client_dn, '(none)') "
				"FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
	print_message("%s through pgmux: PostgreSQL sees %s\n", user, got);
	assert_non_null(got);
	assert_non_null(strstr(got, user));
	assert_non_null(strstr(got, dn));
	free(got);
	assert_int_equal(harness_scalar_ll(c, "SELECT 6 * 7"), 42);
	PQfinish(c);
}

static size_t pg_log_size(void)
{
	struct stat st;

	return stat(harness_fixture()->log, &st) == 0 ? (size_t)st.st_size : 0;
}

/*
 * user's login through p fails, within seconds, with want in the message;
 * PostgreSQL's log, past offset from, has pg_said (unless NULL): the
 * refusal came from PostgreSQL, not from pgmux's own password check.
 */
static void expect_cert_refused(struct harness_pooler *p, const char *user, const char *want,
				const char *pg_said)
{
	char ci[1024], *log;
	size_t from = pg_log_size(), len;
	long long t0 = harness_now_ms(), ms;
	PGconn *c;

	certuser_conninfo(ci, sizeof(ci), p, user);
	c = PQconnectdb(ci);
	ms = harness_now_ms() - t0;
	print_message("%s through pgmux (%lld ms): %s", user, ms, PQerrorMessage(c));
	assert_int_equal(PQstatus(c), CONNECTION_BAD);
	if (!strstr(PQerrorMessage(c), want))
		fail_msg("%s: expected \"%s\", got \"%s\"", user, want, PQerrorMessage(c));
	assert_true(ms < 10000); /* an answer, not connect_timeout */
	PQfinish(c);
	assert_true(harness_pooler_alive(p));
	if (pg_said == NULL)
		return;
	for (int i = 0; i < 50; i++) { /* the postmaster's log collector may lag */
		log = harness_read_file(harness_fixture()->log, &len);
		if (len > from && strstr(log + from, pg_said)) {
			free(log);
			return;
		}
		free(log);
		usleep(100000);
	}
	fail_msg("PostgreSQL's log does not say \"%s\"", pg_said);
}

static void test_tls_server_client_certificate_logs_in_and_missing_or_wrong_is_refused(void **state)
{
	struct harness_pooler p;
	PGconn *c;

	(void)state;
	cert_rules_on();

	/* certuser's certificate: certuser in by cert alone; certpw, whose
	 * password is right, refused for the name on the certificate. */
	start_cert_pgmux(&p, "verify-full", "certuser");
	expect_cert_login(&p, "certuser", "CN=certuser");
	expect_cert_refused(&p, "certpw", "password authentication failed for user \"certpw\"",
			    "certificate validation (clientcert=verify-full) failed for user "
			    "\"certpw\": CN mismatch");
	/* Other users of the same pgmux are unaffected. */
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	assert_int_equal(harness_scalar_ll(c, "SELECT 1"), 1);
	PQfinish(c);
	harness_pooler_stop(&p, 10);

	/* certpw's certificate: the other way round. */
	start_cert_pgmux(&p, "verify-full", "certpw");
	expect_cert_login(&p, "certpw", "CN=certpw");
	expect_cert_refused(&p, "certuser", "certificate authentication failed for user "
			    "\"certuser\"", NULL);
	harness_pooler_stop(&p, 10);

	/* No certificate at all. */
	start_cert_pgmux(&p, "require", NULL);
	expect_cert_refused(&p, "certuser", "connection requires a valid client certificate", NULL);
	expect_cert_refused(&p, "certpw", "connection requires a valid client certificate", NULL);
	c = harness_connect_pooler(&p, NULL, NULL, NULL);
	assert_int_equal(harness_scalar_ll(c, "SELECT 1"), 1);
	PQfinish(c);
	harness_pooler_stop(&p, 10);

	/* certuser's name, but signed by a CA PostgreSQL does not trust: the
	 * handshake fails on PostgreSQL's side (under TLS 1.3 after pgmux
	 * thinks it is done), and the client still hears about it. */
	start_cert_pgmux(&p, "require", "certuser_other");
	expect_cert_refused(&p, "certuser", "unknown ca", NULL);
	harness_pooler_stop(&p, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_tls_libpq_require_and_verify_full_reach_pgmux_over_tls,
					  harness_teardown),
		cmocka_unit_test_teardown(test_tls_plaintext_client_is_refused_with_28000_when_tls_is_required,
					  harness_teardown),
		cmocka_unit_test_teardown(test_tls_server_verify_full_connects_over_tls_and_wrong_ca_is_refused,
					  harness_teardown),
		cmocka_unit_test_teardown(test_tls_large_results_and_queries_cross_both_tls_legs_intact,
					  harness_teardown),
		cmocka_unit_test_teardown(test_tls_reload_swaps_the_certificate_for_new_connections,
					  harness_teardown),
		cmocka_unit_test_teardown(test_tls_plaintext_after_ssl_request_is_refused_with_08P01,
					  harness_teardown),
		cmocka_unit_test_teardown(test_tls_auth_type_cert_accepts_the_certificate_of_the_user_only,
					  harness_teardown),
		cmocka_unit_test_teardown(
			test_tls_server_client_certificate_logs_in_and_missing_or_wrong_is_refused,
			cert_rules_teardown),
	};

	return cmocka_run_group_tests_name("integration_tls", tests, group_setup, group_teardown);
}
