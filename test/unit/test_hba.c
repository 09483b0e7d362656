/*
 * test_hba.c: unit tests for pooler/hba.c. One mixed rules file (with
 * @files) is checked row by row against a table of connections: local vs
 * host vs hostssl vs hostnossl, IPv4/IPv6 inside and outside CIDRs and a
 * netmask column, database and user lists, @files, quoted keywords,
 * replication, unsupported constructs, first match wins and the implicit
 * reject. A second table holds malformed files, each with the file:line
 * message it must produce. Then warnings, options, long lines, CRLF and
 * odd inputs. Each test writes its files into its own mkdtemp() directory,
 * removed in teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hba.h"

#define MAX_FILES 8

/* The test's directory and the files written into it. */
struct fixture {
	char dir[64];
	char *paths[MAX_FILES];
	int n;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/pgmux-test-hba-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	for (int i = 0; i < fx->n; i++) {
		unlink(fx->paths[i]);
		free(fx->paths[i]);
	}
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* Writes len bytes of text to dir/name; returns the path (owned by fx). */
static const char *write_bytes(struct fixture *fx, const char *name, const char *text, size_t len)
{
	char *path;
	FILE *f;

	assert_true(fx->n < MAX_FILES);
	assert_true(asprintf(&path, "%s/%s", fx->dir, name) > 0);
	fx->paths[fx->n++] = path;
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

static const char *write_file(struct fixture *fx, const char *name, const char *text)
{
	return write_bytes(fx, name, text, strlen(text));
}

static struct hba *load_ok(const char *path)
{
	char err[1024] = "";
	struct hba *h = hba_load(path, err, sizeof(err));

	if (h == NULL)
		fail_msg("hba_load(%s) failed: %s", path, err);
	return h;
}

/* addr: NULL, or an IPv4/IPv6 literal turned into a sockaddr in ss. */
static const struct sockaddr *make_addr(const char *addr, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (addr == NULL)
		return NULL;
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
	}
	return (const struct sockaddr *)ss;
}

/* One connection and the rule it must land on (line 0: implicit reject). */
struct conn_case {
	const char *what;
	bool unix_socket, tls, repl;
	const char *addr;
	const char *db, *user;
	enum hba_method want;
	int line;
};

static void check_case(const struct hba *h, const struct conn_case *cc)
{
	struct sockaddr_storage ss;
	struct hba_conn c = {
		.unix_socket = cc->unix_socket,
		.tls = cc->tls,
		.replication = cc->repl,
		.addr = make_addr(cc->addr, &ss),
		.database = cc->db,
		.user = cc->user,
	};
	int line = -1;
	enum hba_method m = hba_match(h, &c, &line);

	if (m != cc->want || line != cc->line)
		fail_msg("%s: got %s at line %d, want %s at line %d", cc->what, hba_method_str(m),
			 line, hba_method_str(cc->want), cc->line);
}

/* ---- the mixed file ---- */

/* Line numbers are what the comments say; the table below relies on them. */
static const char mixed_hba[] =
	"# TYPE     DATABASE     USER             ADDRESS                     METHOD\n" /* 1 */
	"\n"                                                                             /* 2 */
	"local      all          postgres                                     peer\n"   /* 3 */
	"local      all          heidi                                        cert\n"   /* 4 */
	"local      sameuser     all                                          trust\n"  /* 5 */
	"local      all          all                          scram-sha-256\n"           /* 6 */
	"host       \"all\"        alice            10.0.0.0/8       trust\n"            /* 7 */
	"hostssl    app,reports  @users.txt       10.0.0.0/8       cert\n"             /* 8 */
	"hostnossl  app          @users.txt       10.0.0.0/8       md5\n"              /* 9 */
	"host       app          bob   192.168.1.0  255.255.255.0   password\n"        /* 10 */
	"host       @dbs.txt     all              192.168.0.0/16   scram-sha-256\n"    /* 11 */
	"host       all          mallory          0.0.0.0/0        reject\n"           /* 12 */
	"host       all          \"+staff\" , carol 172.16.0.0/12  md5\n"              /* 13 */
	"host       all          +staff,dave      172.16.0.0/12    trust\n"            /* 14 */
	"host       all          all              ::1/128          trust\n"            /* 15 */
	"host       all          all              2001:db8::/32    scram-sha-256\n"    /* 16 */
	"host       replication  repl             10.0.0.0/8       trust\n"            /* 17 */
	"host       db1,\\\n"                                                          /* 18 */
	"           db2          erin             all              md5\n"              /* 19 */
	"host       all          all              db.example.com   trust\n"            /* 20 */
	"host       all          all              samenet          trust\n"            /* 21 */
	"hostgssenc all          all              0.0.0.0/0        trust\n"            /* 22 */
	"host       all          all              0.0.0.0/0        gss\n"              /* 23 */
	"host       all          grace            10.0.0.0/8       peer\n"             /* 24 */
	"host       all          all              10.0.0.0/8       md5  # catch-all\n"; /* 25 */

static const struct conn_case mixed_cases[] = {
	/* local */
	{ "unix: postgres gets peer", true, false, false, NULL, "x", "postgres", HBA_PEER, 3 },
	{ "unix: the peer line comes before sameuser", true, false, false, NULL, "postgres",
	  "postgres", HBA_PEER, 3 },
	{ "unix: cert needs TLS, so its line rejects", true, false, false, NULL, "x", "heidi",
	  HBA_REJECT, 4 },
	{ "unix: sameuser", true, false, false, NULL, "alice", "alice", HBA_TRUST, 5 },
	{ "unix: another database falls to scram", true, false, false, NULL, "shop", "alice",
	  HBA_SCRAM, 6 },
	{ "unix: host lines never match a unix socket", true, false, false, NULL, "db1", "erin",
	  HBA_SCRAM, 6 },
	/* quoted keyword */
	{ "host: quoted \"all\" is a database called all", false, false, false, "10.1.2.3", "all",
	  "alice", HBA_TRUST, 7 },
	{ "host: alice elsewhere falls to the 10/8 catch-all", false, false, false, "10.1.2.3",
	  "shop", "alice", HBA_MD5, 25 },
	/* hostssl / hostnossl with @file users */
	{ "hostssl: a user from @users.txt with TLS", false, true, false, "10.1.2.3", "app", "ivan",
	  HBA_CERT, 8 },
	{ "hostnossl: the same user without TLS", false, false, false, "10.1.2.3", "app", "ivan",
	  HBA_MD5, 9 },
	{ "@file nested in an @file", false, true, false, "10.1.2.3", "reports", "leo", HBA_CERT,
	  8 },
	{ "@file quoted name with a blank", false, true, false, "10.1.2.3", "app", "kim lee",
	  HBA_CERT, 8 },
	{ "database list: reports is only on the hostssl line", false, false, false, "10.1.2.3",
	  "reports", "judy", HBA_MD5, 25 },
	{ "user not in @users.txt", false, true, false, "10.1.2.3", "app", "zed", HBA_MD5, 25 },
	{ "names are case-sensitive", false, true, false, "10.1.2.3", "APP", "ivan", HBA_MD5, 25 },
	/* netmask column and @file databases */
	{ "netmask column: inside the /24", false, false, false, "192.168.1.77", "app", "bob",
	  HBA_PASSWORD, 10 },
	{ "IPv4-mapped IPv6 client matches an IPv4 rule", false, false, false, "::ffff:192.168.1.77",
	  "app", "bob", HBA_PASSWORD, 10 },
	{ "user names are case-sensitive", false, false, false, "192.168.1.77", "app", "Bob",
	  HBA_REJECT, 0 },
	{ "netmask column: outside the /24, db not in @dbs.txt", false, false, false,
	  "192.168.2.1", "app", "bob", HBA_REJECT, 0 },
	{ "@dbs.txt first name", false, false, false, "192.168.2.1", "shop", "bob", HBA_SCRAM, 11 },
	{ "@dbs.txt second name", false, false, false, "192.168.200.1", "store", "x", HBA_SCRAM,
	  11 },
	/* first match wins */
	{ "reject line stops the walk before the catch-all", false, false, false, "10.1.2.3",
	  "shop", "mallory", HBA_REJECT, 12 },
	{ "reject from anywhere", false, true, false, "8.8.8.8", "x", "mallory", HBA_REJECT, 12 },
	/* user lists, quoting and groups */
	{ "quoted \"+staff\" is a user called +staff", false, false, false, "172.16.5.5", "x",
	  "+staff", HBA_MD5, 13 },
	{ "blanks around a comma keep the list", false, false, false, "172.16.5.5", "x", "carol",
	  HBA_MD5, 13 },
	{ "host lines match TLS connections too", false, true, false, "172.16.5.5", "x", "carol",
	  HBA_MD5, 13 },
	{ "+group never matches, names beside it do", false, false, false, "172.16.5.5", "x",
	  "dave", HBA_TRUST, 14 },
	{ "+group does not match its would-be member", false, false, false, "172.16.5.5", "x",
	  "staff", HBA_REJECT, 0 },
	/* IPv6 */
	{ "IPv6 loopback /128", false, false, false, "::1", "x", "y", HBA_TRUST, 15 },
	{ "IPv6 just outside /128", false, false, false, "::2", "x", "y", HBA_REJECT, 0 },
	{ "IPv6 inside /32", false, false, false, "2001:db8:ffff::1", "x", "y", HBA_SCRAM, 16 },
	{ "IPv6 just outside /32", false, false, false, "2001:db9::1", "x", "y", HBA_REJECT, 0 },
	/* replication */
	{ "replication keyword matches physical replication", false, false, true, "10.1.2.3", "x",
	  "repl", HBA_TRUST, 17 },
	{ "a database called replication is not the keyword", false, false, false, "10.1.2.3",
	  "replication", "repl", HBA_MD5, 25 },
	{ "physical replication matches no \"all\" line", false, false, true, "10.1.2.3", "x",
	  "ivan", HBA_REJECT, 0 },
	/* continuation, address "all", never-matching lines */
	{ "continued line: first database, line of its start", false, false, false, "8.8.4.4",
	  "db1", "erin", HBA_MD5, 18 },
	{ "first match wins: the IPv6 /32 line is above the continued one", false, false, false,
	  "2001:db8::1", "db2", "erin", HBA_SCRAM, 16 },
	{ "continued line: address all from anywhere", false, false, false, "8.8.8.8", "db2", "erin",
	  HBA_MD5, 18 },
	{ "no peer address: only \"all\" addresses match", false, false, false, NULL, "db1", "erin",
	  HBA_MD5, 18 },
	{ "no peer address and no \"all\" line", false, false, false, NULL, "x", "y", HBA_REJECT,
	  0 },
	{ "host name, samenet, hostgssenc and gss never match", false, false, false, "8.8.8.8",
	  "db3", "erin", HBA_REJECT, 0 },
	/* methods that cannot work on the connection */
	{ "peer on a host line rejects at its line", false, false, false, "10.1.2.3", "x", "grace",
	  HBA_REJECT, 24 },
	/* CIDR edges */
	{ "10/8 upper edge", false, false, false, "10.255.255.255", "x", "y", HBA_MD5, 25 },
	{ "just below 10/8", false, false, false, "9.255.255.255", "x", "y", HBA_REJECT, 0 },
	{ "just above 10/8", false, false, false, "11.0.0.0", "x", "y", HBA_REJECT, 0 },
};

static struct hba *load_mixed(struct fixture *fx)
{
	write_file(fx, "users.txt", "# users of app\nivan, judy\n\"kim lee\"   @more.txt\n\n");
	write_file(fx, "more.txt", "leo\n");
	/* A blank line and a comment at the end: PgBouncer issue #304. */
	write_file(fx, "dbs.txt", "shop,store\n\n# trailing comment\n");
	return load_ok(write_file(fx, "hba.conf", mixed_hba));
}

static void test_hba_mixed_file_matches_table(void **state)
{
	struct hba *h = load_mixed(*state);

	assert_int_equal(hba_rule_count(h), 22);
	for (size_t i = 0; i < sizeof(mixed_cases) / sizeof(mixed_cases[0]); i++)
		check_case(h, &mixed_cases[i]);
	hba_free(h);
}

/* The mixed file's warnings name the line of every unsupported construct. */
static void test_hba_mixed_file_warns_per_unsupported_line(void **state)
{
	struct fixture *fx = *state;
	struct hba *h = load_mixed(fx);
	static const struct {
		int line;
		const char *text;
	} want[] = {
		{ 4, "cert on a line that is not hostssl" },
		{ 14, "group \"+staff\" is not supported" },
		{ 20, "host name \"db.example.com\"" },
		{ 21, "address \"samenet\" is not supported" },
		{ 22, "connection type \"hostgssenc\" is not supported" },
		{ 23, "authentication method \"gss\" is not supported" },
		{ 24, "peer on a line that is not local" },
	};
	size_t n = sizeof(want) / sizeof(want[0]);

	assert_int_equal(hba_warning_count(h), n);
	for (size_t i = 0; i < n; i++) {
		char *prefix;

		assert_true(asprintf(&prefix, "%s/hba.conf:%d: %s", fx->dir, want[i].line,
				     want[i].text) > 0);
		if (strncmp(hba_warning(h, i), prefix, strlen(prefix)) != 0)
			fail_msg("warning %zu: got \"%s\", want prefix \"%s\"", i, hba_warning(h, i),
				 prefix);
		free(prefix);
	}
	assert_null(hba_warning(h, n));
	hba_free(h);
}

/* ---- malformed files ---- */

struct bad_case {
	const char *what;
	const char *text;
	size_t len;             /* 0: strlen(text) */
	const char *extra_name; /* an @file to write first, or NULL */
	const char *extra_text;
	int line;
	const char *reason; /* expected after "path:line: " */
	const char *tail;   /* also expected somewhere in the message, or NULL */
};

static const struct bad_case bad_cases[] = {
	{ "unknown connection type", "hots all all 0.0.0.0/0 trust\n", 0, NULL, NULL, 1,
	  "invalid connection type \"hots\"", NULL },
	{ "connection types are case-sensitive", "HOST all all all trust\n", 0, NULL, NULL, 1,
	  "invalid connection type \"HOST\"", NULL },
	{ "include directive", "include other.conf\n", 0, NULL, NULL, 1,
	  "\"include\" directives are not supported", NULL },
	{ "no database field", "# c\nhost\n", 0, NULL, NULL, 2,
	  "end of line before the database field", NULL },
	{ "no user field", "local all\n", 0, NULL, NULL, 1, "end of line before the user field",
	  NULL },
	{ "no address field", "host all all\n", 0, NULL, NULL, 1,
	  "end of line before the address field", NULL },
	{ "no method", "# c\n\nlocal all all   # no method\n", 0, NULL, NULL, 3,
	  "end of line before the authentication method", NULL },
	{ "unknown method", "local all all foo\n", 0, NULL, NULL, 1,
	  "invalid authentication method \"foo\"", NULL },
	{ "method list", "local all all md5,trust\n", 0, NULL, NULL, 1,
	  "the authentication method takes a single value", NULL },
	{ "IPv4 prefix too long", "host all all 10.0.0.0/33 md5\n", 0, NULL, NULL, 1,
	  "invalid CIDR mask \"33\"", NULL },
	{ "IPv6 prefix too long", "host all all ::1/129 md5\n", 0, NULL, NULL, 1,
	  "invalid CIDR mask \"129\"", NULL },
	{ "prefix not a number", "host all all 1.2.3.4/8x md5\n", 0, NULL, NULL, 1,
	  "invalid CIDR mask \"8x\"", NULL },
	{ "empty prefix", "host all all 10.0.0.0/ md5\n", 0, NULL, NULL, 1,
	  "invalid CIDR mask \"\"", NULL },
	{ "octet out of range", "host all all 10.0.0.300/8 md5\n", 0, NULL, NULL, 1,
	  "invalid IP address \"10.0.0.300\"", NULL },
	{ "three octets", "host all all 1.2.3 md5\n", 0, NULL, NULL, 1,
	  "invalid IP address \"1.2.3\"", NULL },
	{ "address without /len and no netmask", "host all all 10.0.0.0 md5\n", 0, NULL, NULL, 1,
	  "invalid IP mask \"md5\"", NULL },
	{ "address without /len at end of line", "host all all 10.0.0.0\n", 0, NULL, NULL, 1,
	  "end of line before the netmask field", NULL },
	{ "IPv6 netmask for an IPv4 address", "host all all 10.0.0.0 ffff:ff00:: md5\n", 0, NULL,
	  NULL, 1, "invalid IP mask \"ffff:ff00::\"", NULL },
	{ "address list", "host all all 10.0.0.0/8,11.0.0.0/8 md5\n", 0, NULL, NULL, 1,
	  "the address field takes a single value", NULL },
	{ "option without =", "local all all trust bar\n", 0, NULL, NULL, 1,
	  "authentication option not in name=value format: \"bar\"", NULL },
	{ "option without a name", "local all all trust =x\n", 0, NULL, NULL, 1,
	  "authentication option not in name=value format: \"=x\"", NULL },
	{ "bad clientcert value", "hostssl all all all md5 clientcert=maybe\n", 0, NULL, NULL, 1,
	  "invalid clientcert \"maybe\"", NULL },
	{ "clientcert on a host line", "host all all all md5 clientcert=verify-full\n", 0, NULL,
	  NULL, 1, "clientcert can only be set on hostssl lines", NULL },
	{ "unterminated quote", "local \"all all trust\n", 0, NULL, NULL, 1,
	  "unterminated quoted string", NULL },
	{ "list ends with a comma", "local all all, # x\n", 0, NULL, NULL, 1,
	  "comma-separated list ends with a comma", NULL },
	{ "empty list entry", "local all,,x all trust\n", 0, NULL, NULL, 1,
	  "empty entry in a comma-separated list", NULL },
	{ "error after a continued line has its first line's number",
	  "local all all trust\nhost all \\\n all 1.2.3.4/40 md5\n", 0, NULL, NULL, 2,
	  "invalid CIDR mask \"40\"", NULL },
	{ "NUL byte", "local all all trust\nlocal all\0 all trust\n", 41, NULL, NULL, 2,
	  "NUL byte in line", NULL },
	{ "missing @file", "local @missing.txt all trust\n", 0, NULL, NULL, 1,
	  "@missing.txt: cannot open ", "missing.txt: No such file or directory" },
	{ "@ without a name", "local all @ trust\n", 0, NULL, NULL, 1, "\"@\" without a file name",
	  NULL },
	{ "@file including itself", "local all @loop.txt trust\n", 0, "loop.txt", "@loop.txt\n", 1,
	  "@loop.txt: @files nested more than 10 deep", "(in " },
	{ "malformed @file names its own line", "local all @bad.txt trust\n", 0, "bad.txt",
	  "ok\n\"unterminated\n", 1, "unterminated quoted string", "/bad.txt:2)" },
};

static void test_hba_malformed_files_fail_with_file_line(void **state)
{
	struct fixture *fx = *state;

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *bc = &bad_cases[i];
		char err[512] = "", name[32], *want;
		const char *path;
		struct hba *h;

		/* Each case gets fresh file names; MAX_FILES bounds only one test's
		 * fixture, so reuse two slots by removing them again below. */
		if (bc->extra_name != NULL)
			write_file(fx, bc->extra_name, bc->extra_text);
		snprintf(name, sizeof(name), "bad%zu.conf", i);
		path = write_bytes(fx, name, bc->text, bc->len ? bc->len : strlen(bc->text));
		h = hba_load(path, err, sizeof(err));
		if (h != NULL)
			fail_msg("%s: loaded, want an error", bc->what);
		assert_true(asprintf(&want, "%s:%d: %s", path, bc->line, bc->reason) > 0);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("%s: got \"%s\", want prefix \"%s\"", bc->what, err, want);
		if (bc->tail != NULL && strstr(err, bc->tail) == NULL)
			fail_msg("%s: \"%s\" lacks \"%s\"", bc->what, err, bc->tail);
		free(want);
		while (fx->n > 0) {
			fx->n--;
			unlink(fx->paths[fx->n]);
			free(fx->paths[fx->n]);
		}
	}
}

static void test_hba_missing_file_fails(void **state)
{
	struct fixture *fx = *state;
	char err[512], *path;

	assert_true(asprintf(&path, "%s/nope.conf", fx->dir) > 0);
	assert_null(hba_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "nope.conf: cannot open: No such file or directory"));
	/* No error buffer, or a tiny one: no crash, no overflow. */
	assert_null(hba_load(path, NULL, 0));
	assert_null(hba_load(path, err, 8));
	assert_int_equal(strlen(err), 7);
	free(path);
}

/* ---- warnings and never-matching lines ---- */

static void test_hba_unsupported_constructs_warn_and_never_match(void **state)
{
	struct fixture *fx = *state;
	const char *path = write_file(fx, "hba.conf",
				      "host all +admins,zoe 10.0.0.0/8 reject\n"    /* 1 */
				      "host samerole,samegroup all 10.0.0.0/8 md5\n" /* 2 */
				      "host \"/^db\" all 10.0.0.0/8 md5\n"           /* 3 */
				      "host all all .example.com md5\n"              /* 4 */
				      "host all all samehost md5\n"                  /* 5 */
				      "hostnogssenc all all all md5\n"               /* 6 */
				      "host all all all ldap ldapserver=x\n"         /* 7 */
				      "host all all 10.1.2.3/8 md5\n"                /* 8 */
				      "host all all all cert\n"                      /* 9 */
				      "local all all peer map=m foo=bar\n");         /* 10 */
	static const struct {
		int line;
		const char *text;
	} want[] = {
		{ 1, "group \"+admins\" is not supported" },
		{ 1, "this reject line is incomplete" },
		{ 2, "\"samerole\" (role membership) is not supported" },
		{ 2, "\"samegroup\" (role membership) is not supported" },
		{ 3, "regular expression \"/^db\" is not supported" },
		{ 4, "host name \".example.com\"" },
		{ 5, "address \"samehost\" is not supported" },
		{ 6, "connection type \"hostnogssenc\" is not supported" },
		{ 7, "authentication method \"ldap\" is not supported" },
		{ 8, "address \"10.1.2.3\" has bits set outside its mask" },
		{ 9, "cert on a line that is not hostssl" },
		{ 10, "option \"foo\" means nothing to pgmux" },
	};
	static const struct conn_case cases[] = {
		{ "a name beside +group still matches", false, false, false, "10.1.2.3", "x", "zoe",
		  HBA_REJECT, 1 },
		{ "host bits are masked off, as in PostgreSQL", false, false, false, "10.9.9.9", "x",
		  "y", HBA_MD5, 8 },
		{ "cert with TLS", false, true, false, "11.0.0.1", "x", "y", HBA_CERT, 9 },
		{ "cert without TLS rejects at its line", false, false, false, "11.0.0.1", "x", "y",
		  HBA_REJECT, 9 },
		{ "local peer", true, false, false, NULL, "x", "y", HBA_PEER, 10 },
	};
	struct hba *h = load_ok(path);
	size_t n = sizeof(want) / sizeof(want[0]);

	assert_int_equal(hba_rule_count(h), 10);
	assert_int_equal(hba_warning_count(h), n);
	for (size_t i = 0; i < n; i++) {
		char *prefix;

		assert_true(asprintf(&prefix, "%s:%d: %s", path, want[i].line, want[i].text) > 0);
		if (strncmp(hba_warning(h, i), prefix, strlen(prefix)) != 0)
			fail_msg("warning %zu: got \"%s\", want prefix \"%s\"", i, hba_warning(h, i),
				 prefix);
		free(prefix);
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(h, &cases[i]);
	hba_free(h);
}

static void test_hba_empty_file_loads_and_rejects_everything(void **state)
{
	struct fixture *fx = *state;
	struct hba *h = load_ok(write_file(fx, "hba.conf", "# nothing here\n\n   \t\n"));
	static const struct conn_case c = { "empty file", true, false, false, NULL, "x", "y",
					    HBA_REJECT, 0 };

	assert_int_equal(hba_rule_count(h), 0);
	assert_int_equal(hba_warning_count(h), 1);
	assert_non_null(strstr(hba_warning(h, 0), "hba.conf: no rules: every connection is rejected"));
	check_case(h, &c);
	hba_free(h);
}

static void test_hba_null_rules_reject(void **state)
{
	struct hba_conn c = { .unix_socket = true, .database = "x", .user = "y" };
	int line = -1;

	assert_int_equal(hba_match(NULL, &c, &line), HBA_REJECT);
	assert_int_equal(line, 0);
	assert_int_equal(hba_rule_count(NULL), 0);
	assert_null(hba_option(NULL, 1, "map"));
	hba_free(NULL);
}

/* ---- options, lengths, line endings ---- */

static void test_hba_options_are_kept_last_one_wins(void **state)
{
	struct fixture *fx = *state;
	struct hba *h = load_ok(write_file(fx, "hba.conf",
					   "# options\n"
					   "hostssl all all 0.0.0.0/0 cert map=omicron "
					   "clientcert=verify-full map=second\n"
					   "local all all peer map=\"a b\"\n"));

	assert_string_equal(hba_option(h, 2, "map"), "second");
	assert_string_equal(hba_option(h, 2, "clientcert"), "verify-full");
	assert_null(hba_option(h, 2, "clientname"));
	assert_string_equal(hba_option(h, 3, "map"), "a b");
	assert_null(hba_option(h, 1, "map"));
	assert_null(hba_option(h, 99, "map"));
	assert_int_equal(hba_warning_count(h), 0);
	hba_free(h);
}

/* No fixed line or token limit: a 3000-name list and a 100 kB name. */
static void test_hba_long_lines_and_names(void **state)
{
	struct fixture *fx = *state;
	size_t cap = 200000, o = 0;
	char *text = malloc(cap), *longname = malloc(100001);
	struct hba *h;

	assert_non_null(text);
	assert_non_null(longname);
	memset(longname, 'n', 100000);
	longname[100000] = '\0';
	o += (size_t)snprintf(text + o, cap - o, "host all ");
	for (int i = 0; i < 3000; i++)
		o += (size_t)snprintf(text + o, cap - o, "%su%d", i ? "," : "", i);
	o += (size_t)snprintf(text + o, cap - o, " all md5\nlocal all \"%s\" trust\n", longname);
	assert_true(o < cap);
	h = load_ok(write_file(fx, "hba.conf", text));
	{
		const struct conn_case cases[] = {
			{ "last of 3000 names", false, false, false, "1.2.3.4", "x", "u2999", HBA_MD5,
			  1 },
			{ "first of 3000 names", false, false, false, "1.2.3.4", "x", "u0", HBA_MD5, 1 },
			{ "not in the list", false, false, false, "1.2.3.4", "x", "u3000", HBA_REJECT,
			  0 },
			{ "100 kB user name", true, false, false, NULL, "x", longname, HBA_TRUST, 2 },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			check_case(h, &cases[i]);
	}
	hba_free(h);
	free(text);
	free(longname);
}

static void test_hba_crlf_and_continuations(void **state)
{
	struct fixture *fx = *state;
	struct hba *h = load_ok(write_file(fx, "hba.conf",
					   "# a comment continues \\\r\n"
					   "local all all reject this is still the comment\r\n"
					   "host all \\\r\n"
					   "  all \\\n"
					   "  ::1/128 \\\n"
					   "  md5\r\n"
					   "local all all trust\\"));
	static const struct conn_case cases[] = {
		{ "CRLF and three continuations", false, false, false, "::1", "x", "y", HBA_MD5, 3 },
		{ "a backslash on the last line ends the record", true, false, false, NULL, "x", "y",
		  HBA_TRUST, 7 },
	};

	assert_int_equal(hba_rule_count(h), 2);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(h, &cases[i]);
	hba_free(h);
}

/* @file is relative to the hba file's directory, also when the hba path is
 * relative (then that directory is the current one). */
static void test_hba_at_file_relative_to_relative_path(void **state)
{
	struct fixture *fx = *state;
	char cwd[4096];
	struct hba *h;
	static const struct conn_case c = { "user from @u.txt", true, false, false, NULL, "x",
					    "walt", HBA_TRUST, 1 };

	write_file(fx, "u.txt", "walt\n");
	write_file(fx, "hba.conf", "local all @u.txt trust\n");
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(fx->dir), 0);
	h = hba_load("hba.conf", NULL, 0);
	assert_int_equal(chdir(cwd), 0);
	assert_non_null(h);
	check_case(h, &c);
	hba_free(h);
}

static void test_hba_method_names(void **state)
{
	assert_string_equal(hba_method_str(HBA_REJECT), "reject");
	assert_string_equal(hba_method_str(HBA_TRUST), "trust");
	assert_string_equal(hba_method_str(HBA_PASSWORD), "password");
	assert_string_equal(hba_method_str(HBA_MD5), "md5");
	assert_string_equal(hba_method_str(HBA_SCRAM), "scram-sha-256");
	assert_string_equal(hba_method_str(HBA_CERT), "cert");
	assert_string_equal(hba_method_str(HBA_PEER), "peer");
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_hba_mixed_file_matches_table),
		TEST(test_hba_mixed_file_warns_per_unsupported_line),
		TEST(test_hba_malformed_files_fail_with_file_line),
		TEST(test_hba_missing_file_fails),
		TEST(test_hba_unsupported_constructs_warn_and_never_match),
		TEST(test_hba_empty_file_loads_and_rejects_everything),
		cmocka_unit_test(test_hba_null_rules_reject),
		TEST(test_hba_options_are_kept_last_one_wins),
		TEST(test_hba_long_lines_and_names),
		TEST(test_hba_crlf_and_continuations),
		TEST(test_hba_at_file_relative_to_relative_path),
		cmocka_unit_test(test_hba_method_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
