/*
 * test_bad_input.c: malformed input over raw sockets at every stage of a
 * connection: the startup packet (lengths, protocol versions, layout,
 * truncation), SSLRequest and GSSENCRequest, CancelRequest, md5 and SCRAM
 * authentication, and messages after login, inside a transaction and on
 * the admin console. For each case the test asserts the exact bytes the
 * pooler answers: a FATAL ErrorResponse with SQLSTATE 08P01 wherever the
 * protocol lets it answer, nothing where it cannot (the comment on the case
 * says why); then EOF within CLOSE_MS. Around each case a client in an open
 * transaction (connected before) and a client connected after must both be
 * served, and the pooler must stay up and exit cleanly with no sanitizer
 * report. The last test hammers 200 malformed connections at the pooler
 * while one client runs a transaction through it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

/*
 * How long a malformed connection may stay open once its bytes are out.
 * pgmux closes within milliseconds; this is slack for a loaded machine.
 */
#define CLOSE_MS 3000
/* client_login_timeout = 1 fires on the janitor's 1 s tick: 1..2 s, plus slack. */
#define LOGIN_TIMEOUT_MS (1000 + 1000 + 3000)
/* Bound on every answer a well-behaved client waits for. */
#define ANSWER_MS 10000

#define PROTO_3_0 0x00030000u
#define SSL_REQUEST 80877103u
#define GSSENC_REQUEST 80877104u
#define CANCEL_REQUEST 80877102u

#define HAMMER_CONNS 200

/* ---- building packets ------------------------------------------------------ */

/* A packet being built; overflow is sticky and checked once by the sender. */
struct pkt {
	unsigned char b[2048];
	size_t len;
	bool overflow;
};

static void pkt_bytes(struct pkt *k, const void *p, size_t n)
{
	if (k->len + n > sizeof(k->b)) {
		k->overflow = true;
		return;
	}
	memcpy(k->b + k->len, p, n);
	k->len += n;
}

static void pkt_u8(struct pkt *k, uint8_t v)
{
	pkt_bytes(k, &v, 1);
}

static void pkt_u32(struct pkt *k, uint32_t v)
{
	v = htonl(v);
	pkt_bytes(k, &v, 4);
}

/* A string with its NUL. */
static void pkt_str(struct pkt *k, const char *s)
{
	pkt_bytes(k, s, strlen(s) + 1);
}

static void pkt_set_u32(struct pkt *k, size_t at, uint32_t v)
{
	v = htonl(v);
	if (at + 4 <= k->len)
		memcpy(k->b + at, &v, 4);
}

/* Starts an untyped startup-phase packet: length (patched by pkt_end_untyped), code. */
static size_t pkt_begin_untyped(struct pkt *k, uint32_t code)
{
	size_t at = k->len;

	pkt_u32(k, 0);
	pkt_u32(k, code);
	return at;
}

static void pkt_end_untyped(struct pkt *k, size_t at)
{
	pkt_set_u32(k, at, (uint32_t)(k->len - at));
}

/* Starts a typed message: type, length (patched by pkt_end_typed). */
static size_t pkt_begin_typed(struct pkt *k, uint8_t type)
{
	size_t at = k->len;

	pkt_u8(k, type);
	pkt_u32(k, 0);
	return at;
}

static void pkt_end_typed(struct pkt *k, size_t at)
{
	pkt_set_u32(k, at + 1, (uint32_t)(k->len - at - 1));
}

/* A StartupMessage with this version code for user and the fixture's db. */
static void pkt_startup(struct pkt *k, uint32_t version, const char *user)
{
	size_t at = pkt_begin_untyped(k, version);

	pkt_str(k, "user");
	pkt_str(k, user);
	pkt_str(k, "database");
	pkt_str(k, harness_fixture()->db);
	pkt_u8(k, 0);
	pkt_end_untyped(k, at);
}

/* An 8-byte request (SSLRequest, GSSENCRequest). */
static void pkt_request(struct pkt *k, uint32_t code)
{
	pkt_end_untyped(k, pkt_begin_untyped(k, code));
}

/* A simple Query. */
static void pkt_query(struct pkt *k, const char *sql)
{
	size_t at = pkt_begin_typed(k, 'Q');

	pkt_str(k, sql);
	pkt_end_typed(k, at);
}

/* A header only: type and a length field that claims len. */
static void pkt_header(struct pkt *k, uint8_t type, uint32_t len)
{
	pkt_u8(k, type);
	pkt_u32(k, len);
}

/* ---- raw sockets ------------------------------------------------------------- */

/* One send() per call where the kernel allows it, as a real client does. */
static void raw_send(int fd, const struct pkt *k)
{
	if (k->overflow)
		fail_msg("test bug: packet larger than %zu bytes", sizeof(k->b));
	if (!harness_raw_write_all(fd, k->b, k->len))
		fail_msg("send to the pooler: %s", strerror(errno));
}

/* The one-byte answer to SSLRequest/GSSENCRequest must be exactly want. */
static void expect_byte(int fd, char want, const char *what)
{
	unsigned char got = 0;

	if (!harness_raw_read_exact(fd, &got, 1, ANSWER_MS))
		fail_msg("%s: no answer byte within %d ms", what, ANSWER_MS);
	if (got != (unsigned char)want)
		fail_msg("%s: answered '%c' (0x%02x), expected '%c'", what,
			 got >= 0x20 && got < 0x7f ? got : '?', got, want);
}

/* The next message must be an Authentication request with this code. */
static void expect_auth(int fd, uint32_t code, const char *what)
{
	struct harness_msg m;

	if (!harness_raw_read_msg(fd, &m, ANSWER_MS))
		fail_msg("%s: no whole message within %d ms", what, ANSWER_MS);
	if (m.type != 'R' || m.len < 4 || harness_get32(m.body) != code)
		fail_msg("%s: got '%c' (code %u), expected Authentication code %u", what,
			 m.type, m.len >= 4 ? harness_get32(m.body) : 0, code);
}

/* ---- what the pooler answered ------------------------------------------------ */

struct reply {
	unsigned char buf[8192];
	size_t len;
	long long eof_ms;   /* ms from the start of reading to EOF; -1: none */
	bool reset;         /* a read error instead of EOF */
	char types[64];     /* types of the whole messages, in order */
	bool torn;          /* trailing bytes that are no whole message */
	struct harness_wire_error err; /* of the first ErrorResponse */
};

/* Reads until EOF or timeout_ms, then splits the bytes into messages. thread-safe. */
static void read_reply(int fd, struct reply *r, int timeout_ms)
{
	long long t0 = harness_now_ms(), eof;
	size_t whole;

	memset(r, 0, sizeof(*r));
	r->len = harness_raw_read_to_eof(fd, r->buf, sizeof(r->buf), timeout_ms, &eof,
					 &r->reset);
	r->eof_ms = eof < 0 ? -1 : eof - t0;
	harness_raw_split(r->buf, r->len, &r->err, r->types, sizeof(r->types), &whole);
	r->torn = whole != r->len;
}

enum want {
	WANT_FATAL, /* prefix, then FATAL 08P01 as the last message, then EOF */
	WANT_CLOSE, /* prefix and nothing more, then EOF */
};

/*
 * Does r show what was wanted? prefix: the message types that must come
 * before (e.g. "R" for the authentication request). msg_part, if not NULL,
 * must occur in the error's message (pgmux's wording; not checked against
 * PgBouncer). On false, why says what was wrong. thread-safe.
 */
static bool reply_ok(const struct reply *r, const char *prefix, enum want w,
		     const char *msg_part, char *why, size_t why_len)
{
	const struct harness_wire_error *e = &r->err;
	size_t pl = strlen(prefix), tl = strlen(r->types);
	bool pgmux = !harness_is_pgbouncer();

	if (r->reset || r->eof_ms < 0) {
		snprintf(why, why_len, "%s (messages \"%s\")",
			 r->reset ? "the connection was reset, not closed" : "no EOF in time",
			 r->types);
		return false;
	}
	if (r->torn) {
		snprintf(why, why_len, "%zu bytes that are not whole messages (\"%s\")", r->len,
			 r->types);
		return false;
	}
	if (w == WANT_CLOSE) {
		if (strcmp(r->types, prefix) == 0)
			return true;
		snprintf(why, why_len, "messages \"%s\" (%s %s \"%s\"), expected \"%s\" then "
			 "EOF", r->types, e->severity, e->sqlstate, e->message, prefix);
		return false;
	}
	if (tl != pl + 1 || strncmp(r->types, prefix, pl) != 0 || r->types[pl] != 'E') {
		snprintf(why, why_len, "messages \"%s\" (%s %s \"%s\"), expected \"%sE\"",
			 r->types, e->severity, e->sqlstate, e->message, prefix);
		return false;
	}
	if (strcmp(e->severity, "FATAL") != 0 || strcmp(e->sqlstate, "08P01") != 0 ||
	    (pgmux && msg_part != NULL && strstr(e->message, msg_part) == NULL)) {
		snprintf(why, why_len, "error %s %s \"%s\", expected FATAL 08P01%s%s%s",
			 e->severity, e->sqlstate, e->message, msg_part ? " \"..." : "",
			 msg_part ? msg_part : "", msg_part ? "...\"" : "");
		return false;
	}
	return true;
}

static void expect_reply(const struct reply *r, const char *what, const char *prefix,
			 enum want w, const char *msg_part)
{
	const struct harness_wire_error *e = &r->err;
	char why[512];

	print_message("%s: messages \"%s\"%s%s%s%s%s%s, EOF after %lld ms\n", what, r->types,
		      e->sqlstate[0] ? ", " : "", e->severity, e->sqlstate[0] ? " " : "",
		      e->sqlstate, e->sqlstate[0] ? " " : "", e->message, r->eof_ms);
	if (!reply_ok(r, prefix, w, msg_part, why, sizeof(why)))
		fail_msg("%s: %s", what, why);
}

/* ---- libpq with bounds --------------------------------------------------------- */

/*
 * Runs sql and returns its first result, waiting at most ANSWER_MS: a
 * pooler that hands out a broken server would otherwise hang the test.
 * Later results are drained. The caller clears the result.
 */
static PGresult *exec_bounded(PGconn *c, const char *sql)
{
	long long deadline = harness_now_ms() + ANSWER_MS;
	PGresult *first = NULL, *r;

	if (!PQsendQuery(c, sql))
		fail_msg("\"%s\": could not send: %s", sql, PQerrorMessage(c));
	for (;;) {
		while (PQisBusy(c)) {
			struct pollfd pfd = { PQsocket(c), POLLIN, 0 };
			long long left = deadline - harness_now_ms();

			if (left <= 0)
				fail_msg("\"%s\": no answer within %d ms", sql, ANSWER_MS);
			if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
				fail_msg("poll: %s", strerror(errno));
			if (!PQconsumeInput(c))
				break;
		}
		r = PQgetResult(c);
		if (r == NULL)
			break;
		if (first == NULL)
			first = r;
		else
			PQclear(r);
	}
	if (first == NULL)
		fail_msg("\"%s\": no result: %s", sql, PQerrorMessage(c));
	return first;
}

/* sql must answer one row with one value, want. */
static void expect_scalar(PGconn *c, const char *sql, const char *want)
{
	PGresult *r = exec_bounded(c, sql);

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
	    strcmp(PQgetvalue(r, 0, 0), want) != 0)
		fail_msg("\"%s\": %s %s \"%s\", expected the value %s", sql,
			 PQresStatus(PQresultStatus(r)), harness_sqlstate(r),
			 PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : PQerrorMessage(c), want);
	PQclear(r);
}

static void expect_command_ok(PGconn *c, const char *sql)
{
	PGresult *r = exec_bounded(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("\"%s\": %s %s %s", sql, PQresStatus(PQresultStatus(r)),
			 harness_sqlstate(r), PQerrorMessage(c));
	PQclear(r);
}

/* ---- one pooler, a client before and a client after ------------------------------ */

struct bi {
	struct harness_pooler p;
	PGconn *before; /* in a transaction across the bad input */
	char txid[32];  /* of that transaction */
};

/*
 * Starts the pooler with settings on top of a pool of two servers (one for
 * the client in its transaction, one for the rest), then opens the client
 * that will hold its transaction across the bad input.
 */
static void bi_start(struct bi *t, const char *settings)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_pooler_cfg cfg = { 0 };
	char all[1024];

	harness_fmt(all, sizeof(all), "default_pool_size = 2\n%s", settings ? settings : "");
	cfg.settings = all;
	harness_wait_no_server_conns(fx->db, fx->app_user, 15);
	harness_pooler_start(&t->p, &cfg);
	t->before = harness_connect_pooler(&t->p, NULL, NULL, NULL);
	expect_command_ok(t->before, "BEGIN");
	{
		char *txid = harness_scalar(t->before, "SELECT txid_current()");

		assert_non_null(txid);
		harness_fmt(t->txid, sizeof(t->txid), "%s", txid);
		free(txid);
	}
}

/*
 * No other client noticed: the one in its transaction carries on and
 * commits, a new one logs in and is served, and the pooler is still up;
 * then it must stop cleanly (harness_pooler_stop fails the test on a
 * sanitizer report or a bad exit).
 */
static void bi_finish(struct bi *t)
{
	PGconn *after;

	if (!harness_pooler_alive(&t->p))
		fail_msg("the pooler died");
	/* Still the same transaction, on the same server. */
	expect_scalar(t->before, "SELECT txid_current()", t->txid);
	expect_command_ok(t->before, "COMMIT");
	PQfinish(t->before);
	after = harness_connect_pooler(&t->p, NULL, NULL, NULL);
	expect_scalar(after, "SELECT 3", "3");
	PQfinish(after);
	if (!harness_pooler_alive(&t->p))
		fail_msg("the pooler died");
	harness_pooler_stop(&t->p, 20);
}

static int bi_connect(const struct bi *t)
{
	int fd = harness_raw_connect(t->p.port, false);

	if (fd < 0)
		fail_msg("connect to the pooler on port %d: %s", t->p.port, strerror(errno));
	return fd;
}

/* Sends k on a new connection and checks the answer (within timeout_ms). */
static void bi_send_expect_within(struct bi *t, const struct pkt *k, const char *what,
				  const char *prefix, enum want w, const char *msg_part,
				  int timeout_ms)
{
	struct reply r;
	int fd = bi_connect(t);

	raw_send(fd, k);
	read_reply(fd, &r, timeout_ms);
	close(fd);
	expect_reply(&r, what, prefix, w, msg_part);
}

static void bi_send_expect(struct bi *t, const struct pkt *k, const char *what,
			   const char *prefix, enum want w, const char *msg_part)
{
	bi_send_expect_within(t, k, what, prefix, w, msg_part, CLOSE_MS);
}

/* A new connection that sent a valid StartupMessage and got the auth request. */
static int bi_until_auth(struct bi *t, uint32_t code)
{
	struct pkt k = { 0 };
	int fd = bi_connect(t);

	pkt_startup(&k, PROTO_3_0, harness_fixture()->app_user);
	raw_send(fd, &k);
	expect_auth(fd, code, "startup");
	return fd;
}

/* After the auth request on fd, sends k and checks the answer. */
static void bi_auth_send_expect(int fd, const struct pkt *k, const char *what, enum want w,
				const char *msg_part)
{
	struct reply r;

	raw_send(fd, k);
	read_reply(fd, &r, CLOSE_MS);
	close(fd);
	expect_reply(&r, what, "", w, msg_part);
}

/* A logged-in raw session (SCRAM through harness_raw_login_keep). */
static int bi_login(struct bi *t, const char *db, const char *user, const char *password)
{
	const struct harness_fixture *fx = harness_fixture();
	struct harness_login login;
	int fd = harness_raw_login_keep(t->p.port, db ? db : fx->db,
					user ? user : fx->app_user,
					password ? password : fx->app_password, ANSWER_MS, &login);

	if (fd < 0)
		fail_msg("raw login failed: %s %s", login.sqlstate, login.message);
	return fd;
}

/*
 * Sends a simple Query on a raw session and reads up to ReadyForQuery.
 * Returns its transaction status; *value gets the first column of the
 * first DataRow ("" if none).
 */
static char raw_query(int fd, const char *sql, char *value, size_t value_len)
{
	struct pkt k = { 0 };
	struct harness_msg m;
	bool have_value = false;

	value[0] = '\0';
	pkt_query(&k, sql);
	raw_send(fd, &k);
	for (;;) {
		if (!harness_raw_read_msg(fd, &m, ANSWER_MS))
			fail_msg("\"%s\": no ReadyForQuery within %d ms", sql, ANSWER_MS);
		if (m.type == 'E')
			fail_msg("\"%s\" failed on the raw session", sql);
		if (m.type == 'D' && !have_value && m.len >= 6) {
			uint32_t vl = harness_get32(m.body + 2);

			if (vl != 0xffffffffu && 6 + (size_t)vl <= m.len)
				snprintf(value, value_len, "%.*s", (int)vl, (const char *)m.body + 6);
			have_value = true;
		}
		if (m.type == 'Z' && m.len == 1)
			return (char)m.body[0];
	}
}

/*
 * Sends k on a raw session and reads the answers up to ReadyForQuery into
 * r (types, first error); fails if none comes within ANSWER_MS.
 */
static void raw_exchange(int fd, const struct pkt *k, struct reply *r, const char *what)
{
	struct harness_msg m;
	size_t nt = 0;

	memset(r, 0, sizeof(*r));
	r->eof_ms = -1;
	raw_send(fd, k);
	do {
		if (!harness_raw_read_msg(fd, &m, ANSWER_MS))
			fail_msg("%s: no ReadyForQuery within %d ms (messages \"%s\")", what,
				 ANSWER_MS, r->types);
		if (nt + 1 < sizeof(r->types)) {
			r->types[nt++] = m.type;
			r->types[nt] = '\0';
		}
		if (m.type == 'E' && r->err.sqlstate[0] == '\0')
			harness_raw_error_fields(m.body, m.len, &r->err);
	} while (m.type != 'Z');
	print_message("%s: messages \"%s\"%s%s %s %s\n", what, r->types,
		      r->err.sqlstate[0] ? ", " : "", r->err.severity, r->err.sqlstate,
		      r->err.message);
}

/* Waits until PostgreSQL backend pid is gone (its session was closed). */
static void expect_backend_gone(int pid, int timeout_ms, const char *why)
{
	PGconn *super = harness_connect_pg_super(NULL);

	harness_wait_backend_gone(super, pid, timeout_ms, why);
	PQfinish(super);
}

/* ---- startup packet ----------------------------------------------------------- */

/*
 * PostgreSQL drops a startup packet whose length is impossible without a
 * word (COMMERROR: the peer may not speak the protocol at all). pgmux
 * answers FATAL 08P01 instead: an ErrorResponse is a legal answer to any
 * startup packet, and it tells a confused client what happened.
 */
static void test_bad_input_startup_length_below_8_gets_08P01_and_close(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_u32(&k, 7);
	pkt_u32(&k, PROTO_3_0);
	bi_send_expect(&t, &k, "startup length 7", "", WANT_FATAL, "startup packet");
	bi_finish(&t);
}

static void test_bad_input_startup_length_below_4_gets_08P01_and_close(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_u32(&k, 3);
	bi_send_expect(&t, &k, "startup length 3", "", WANT_FATAL, "startup packet");
	bi_finish(&t);
}

static void test_bad_input_startup_length_zero_gets_08P01_and_close(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_u32(&k, 0);
	pkt_u32(&k, PROTO_3_0);
	bi_send_expect(&t, &k, "startup length 0", "", WANT_FATAL, "startup packet");
	bi_finish(&t);
}

/* The claim alone is refused: the pooler must not wait for 100 MB to arrive. */
static void test_bad_input_startup_length_100MB_gets_08P01_at_once(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_u32(&k, 100u * 1024 * 1024);
	pkt_u32(&k, PROTO_3_0);
	pkt_str(&k, "user");
	pkt_str(&k, harness_fixture()->app_user);
	bi_send_expect(&t, &k, "startup length 100 MB", "", WANT_FATAL, "startup packet");
	bi_finish(&t);
}

/* Negative as an int32: the largest claim of all. */
static void test_bad_input_startup_length_minus_1_gets_08P01_at_once(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_u32(&k, 0xffffffffu);
	pkt_u32(&k, PROTO_3_0);
	bi_send_expect(&t, &k, "startup length -1", "", WANT_FATAL, "startup packet");
	bi_finish(&t);
}

/* One past the cap (10,000 bytes, as PostgreSQL's MAX_STARTUP_PACKET_LENGTH). */
static void test_bad_input_startup_length_10001_gets_08P01_at_once(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_u32(&k, 10001);
	pkt_u32(&k, PROTO_3_0);
	bi_send_expect(&t, &k, "startup length 10001", "", WANT_FATAL, "startup packet");
	bi_finish(&t);
}

/* An HTTP request read as a startup packet claims a length of 1.2 GB. */
static void test_bad_input_startup_http_request_gets_08P01_at_once(void **state)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_bytes(&k, http, sizeof(http) - 1);
	bi_send_expect(&t, &k, "HTTP request", "", WANT_FATAL, "startup packet");
	bi_finish(&t);
}

static void test_bad_input_startup_protocol_2_0_gets_08P01_and_close(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_startup(&k, 0x00020000u, harness_fixture()->app_user);
	bi_send_expect(&t, &k, "protocol 2.0", "", WANT_FATAL, "protocol");
	bi_finish(&t);
}

static void test_bad_input_startup_protocol_4_0_gets_08P01_and_close(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_startup(&k, 0x00040000u, harness_fixture()->app_user);
	bi_send_expect(&t, &k, "protocol 4.0", "", WANT_FATAL, "protocol");
	bi_finish(&t);
}

/*
 * Not malformed: a 3.x minor above 0 is legal, and PostgreSQL answers it
 * (and any "_pq_." protocol option it does not know) with
 * NegotiateProtocolVersion (3.0 plus the options it did not recognize)
 * before the authentication request, then carries on in 3.0. The client
 * here logs in (trust) and runs a query.
 */
static void test_bad_input_startup_protocol_3_1_gets_NegotiateProtocolVersion_and_logs_in(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct bi t;
	struct pkt k = { 0 };
	struct harness_msg m;
	char value[32];
	size_t at;
	int fd;

	bi_start(&t, "auth_type = trust\n");
	at = pkt_begin_untyped(&k, 0x00030001u);
	pkt_str(&k, "user");
	pkt_str(&k, fx->app_user);
	pkt_str(&k, "database");
	pkt_str(&k, fx->db);
	pkt_str(&k, "_pq_.it_bad_input");
	pkt_str(&k, "on");
	pkt_u8(&k, 0);
	pkt_end_untyped(&k, at);
	fd = bi_connect(&t);
	raw_send(fd, &k);
	if (!harness_raw_read_msg(fd, &m, ANSWER_MS))
		fail_msg("protocol 3.1: no whole message within %d ms", ANSWER_MS);
	print_message("protocol 3.1: first message '%c'\n", m.type);
	if (m.type != 'v')
		fail_msg("protocol 3.1 was answered with '%c', expected NegotiateProtocolVersion",
			 m.type);
	assert_true(m.len >= 8);
	assert_int_equal(harness_get32(m.body), PROTO_3_0);
	assert_int_equal(harness_get32(m.body + 4), 1);
	assert_string_equal((const char *)m.body + 8, "_pq_.it_bad_input");
	expect_auth(fd, 0, "protocol 3.1 after NegotiateProtocolVersion");
	do {
		if (!harness_raw_read_msg(fd, &m, ANSWER_MS))
			fail_msg("protocol 3.1: no ReadyForQuery within %d ms", ANSWER_MS);
	} while (m.type != 'Z');
	assert_int_equal(raw_query(fd, "SELECT 41 + 1", value, sizeof(value)), 'I');
	assert_string_equal(value, "42");
	close(fd);
	bi_finish(&t);
}

/*
 * PostgreSQL says 28000 ("no PostgreSQL user name specified"); the packet
 * breaks the protocol's one required field, and the requirement for pgmux
 * is 08P01 for every malformed startup packet.
 */
static void test_bad_input_startup_without_user_gets_08P01_and_close(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	size_t at;

	bi_start(&t, NULL);
	at = pkt_begin_untyped(&k, PROTO_3_0);
	pkt_str(&k, "database");
	pkt_str(&k, harness_fixture()->db);
	pkt_u8(&k, 0);
	pkt_end_untyped(&k, at);
	bi_send_expect(&t, &k, "startup without user", "", WANT_FATAL, "user");
	bi_finish(&t);
}

/* The list of pairs lacks its final empty name. */
static void test_bad_input_startup_missing_terminator_gets_08P01_and_close(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	size_t at;

	bi_start(&t, NULL);
	at = pkt_begin_untyped(&k, PROTO_3_0);
	pkt_str(&k, "user");
	pkt_str(&k, harness_fixture()->app_user);
	pkt_end_untyped(&k, at);
	bi_send_expect(&t, &k, "startup without final NUL", "", WANT_FATAL, "terminated");
	bi_finish(&t);
}

/* A value that runs off the end of the packet. */
static void test_bad_input_startup_unterminated_value_gets_08P01_and_close(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	size_t at;

	bi_start(&t, NULL);
	at = pkt_begin_untyped(&k, PROTO_3_0);
	pkt_str(&k, "user");
	pkt_bytes(&k, "app", 3);
	pkt_end_untyped(&k, at);
	bi_send_expect(&t, &k, "startup value without NUL", "", WANT_FATAL, "terminated");
	bi_finish(&t);
}

/* A name without its value: "user\0" then the terminator. */
static void test_bad_input_startup_name_without_value_gets_08P01_and_close(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	size_t at;

	bi_start(&t, NULL);
	at = pkt_begin_untyped(&k, PROTO_3_0);
	pkt_str(&k, "user");
	pkt_u8(&k, 0);
	pkt_end_untyped(&k, at);
	bi_send_expect(&t, &k, "startup name without value", "", WANT_FATAL, NULL);
	bi_finish(&t);
}

/* Bytes after the terminator (PostgreSQL: "expected terminator as last byte"). */
static void test_bad_input_startup_bytes_after_terminator_gets_08P01_and_close(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	size_t at;

	bi_start(&t, NULL);
	at = pkt_begin_untyped(&k, PROTO_3_0);
	pkt_str(&k, "user");
	pkt_str(&k, harness_fixture()->app_user);
	pkt_u8(&k, 0);
	pkt_str(&k, "junk");
	pkt_end_untyped(&k, at);
	bi_send_expect(&t, &k, "startup with bytes after the terminator", "", WANT_FATAL,
		       "startup");
	bi_finish(&t);
}

/*
 * Half a startup packet, then the client shuts its side. Nothing can be
 * said to a client that has left (PostgreSQL logs "incomplete startup
 * packet" and answers nothing either): the answer is EOF alone.
 */
static void test_bad_input_startup_truncated_then_closed_is_closed_silently(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	struct reply r;
	int fd;

	bi_start(&t, NULL);
	pkt_startup(&k, PROTO_3_0, harness_fixture()->app_user);
	k.len /= 2;
	fd = bi_connect(&t);
	raw_send(fd, &k);
	shutdown(fd, SHUT_WR);
	read_reply(fd, &r, CLOSE_MS);
	close(fd);
	expect_reply(&r, "half a startup packet, then shutdown", "", WANT_CLOSE, NULL);
	bi_finish(&t);
}

/* Half a startup packet, then silence: client_login_timeout ends it. */
static void test_bad_input_startup_truncated_then_stalled_gets_08P01_at_login_timeout(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, "client_login_timeout = 1\n");
	pkt_startup(&k, PROTO_3_0, harness_fixture()->app_user);
	k.len /= 2;
	bi_send_expect_within(&t, &k, "half a startup packet, then silence", "", WANT_FATAL,
			      "client_login_timeout", LOGIN_TIMEOUT_MS);
	bi_finish(&t);
}

/* Only 3 bytes of the length field, then silence. */
static void test_bad_input_startup_partial_length_then_stalled_gets_08P01_at_login_timeout(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, "client_login_timeout = 1\n");
	pkt_bytes(&k, "\0\0\0", 3);
	bi_send_expect_within(&t, &k, "3 bytes of a length, then silence", "", WANT_FATAL,
			      "client_login_timeout", LOGIN_TIMEOUT_MS);
	bi_finish(&t);
}

/* ---- SSLRequest, GSSENCRequest ---------------------------------------------------- */

/*
 * A StartupMessage right behind the SSLRequest, before the answer: the
 * CVE-2021-3935 pattern (bytes that a man in the middle could have
 * injected before TLS would start). No 'N' is sent: the error comes first.
 */
static void test_bad_input_sslrequest_then_startup_before_answer_gets_08P01(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_request(&k, SSL_REQUEST);
	pkt_startup(&k, PROTO_3_0, harness_fixture()->app_user);
	bi_send_expect(&t, &k, "SSLRequest + StartupMessage in one write", "", WANT_FATAL,
		       "unencrypted data after SSL request");
	bi_finish(&t);
}

static void test_bad_input_gssencrequest_then_startup_before_answer_gets_08P01(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_request(&k, GSSENC_REQUEST);
	pkt_startup(&k, PROTO_3_0, harness_fixture()->app_user);
	bi_send_expect(&t, &k, "GSSENCRequest + StartupMessage in one write", "", WANT_FATAL,
		       "unencrypted data after");
	bi_finish(&t);
}

/* After 'N' the client is back at the start: garbage there is a bad startup packet. */
static void test_bad_input_sslrequest_answered_N_then_garbage_gets_08P01(void **state)
{
	static const char garbage[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
	struct bi t;
	struct pkt k = { 0 }, g = { 0 };
	struct reply r;
	int fd;

	bi_start(&t, NULL);
	pkt_request(&k, SSL_REQUEST);
	fd = bi_connect(&t);
	raw_send(fd, &k);
	expect_byte(fd, 'N', "SSLRequest");
	/* A TLS ClientHello regardless of the 'N'. */
	pkt_bytes(&g, garbage, sizeof(garbage) - 1);
	raw_send(fd, &g);
	read_reply(fd, &r, CLOSE_MS);
	close(fd);
	expect_reply(&r, "TLS ClientHello after 'N'", "", WANT_FATAL, "startup packet");
	bi_finish(&t);
}

/*
 * PostgreSQL negotiates SSL at most once per connection: a second
 * SSLRequest is read as a startup packet of protocol 1234.5679 and refused.
 */
static void test_bad_input_sslrequest_twice_gets_08P01(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	int fd;

	bi_start(&t, NULL);
	pkt_request(&k, SSL_REQUEST);
	fd = bi_connect(&t);
	raw_send(fd, &k);
	expect_byte(fd, 'N', "first SSLRequest");
	bi_auth_send_expect(fd, &k, "second SSLRequest", WANT_FATAL, NULL);
	bi_finish(&t);
}

static void test_bad_input_gssencrequest_twice_gets_08P01(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	int fd;

	bi_start(&t, NULL);
	pkt_request(&k, GSSENC_REQUEST);
	fd = bi_connect(&t);
	raw_send(fd, &k);
	expect_byte(fd, 'N', "first GSSENCRequest");
	bi_auth_send_expect(fd, &k, "second GSSENCRequest", WANT_FATAL, NULL);
	bi_finish(&t);
}

/*
 * Legal, and what libpq does with gssencmode=prefer and sslmode=prefer:
 * GSSENCRequest, 'N', SSLRequest, 'N', then the StartupMessage in the
 * clear, which gets the authentication request.
 */
static void test_bad_input_gssencrequest_then_sslrequest_then_startup_is_legal(void **state)
{
	struct bi t;
	struct pkt gss = { 0 }, ssl = { 0 }, st = { 0 };
	int fd;

	bi_start(&t, NULL);
	pkt_request(&gss, GSSENC_REQUEST);
	pkt_request(&ssl, SSL_REQUEST);
	pkt_startup(&st, PROTO_3_0, harness_fixture()->app_user);
	fd = bi_connect(&t);
	raw_send(fd, &gss);
	expect_byte(fd, 'N', "GSSENCRequest");
	raw_send(fd, &ssl);
	expect_byte(fd, 'N', "SSLRequest after GSSENCRequest");
	raw_send(fd, &st);
	expect_auth(fd, 10, "StartupMessage after both requests");
	close(fd);
	bi_finish(&t);
}

/* An SSLRequest is exactly 8 bytes. */
static void test_bad_input_sslrequest_length_12_gets_08P01(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	size_t at;

	bi_start(&t, NULL);
	at = pkt_begin_untyped(&k, SSL_REQUEST);
	pkt_u32(&k, 0);
	pkt_end_untyped(&k, at);
	bi_send_expect(&t, &k, "SSLRequest of 12 bytes", "", WANT_FATAL, "startup packet");
	bi_finish(&t);
}

/* ---- CancelRequest ------------------------------------------------------------------ */

/*
 * A CancelRequest is exactly 16 bytes. PostgreSQL drops a wrong one
 * silently (it never answers cancel connections); pgmux says 08P01, which
 * a client that sent such a thing can only benefit from, and closes.
 */
static void test_bad_input_cancel_request_length_20_gets_08P01_and_close(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	size_t at;

	bi_start(&t, NULL);
	at = pkt_begin_untyped(&k, CANCEL_REQUEST);
	pkt_u32(&k, 1);
	pkt_u32(&k, 2);
	pkt_u32(&k, 3);
	pkt_end_untyped(&k, at);
	bi_send_expect(&t, &k, "CancelRequest of 20 bytes", "", WANT_FATAL, "cancel");
	bi_finish(&t);
}

static void test_bad_input_cancel_request_length_12_gets_08P01_and_close(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	size_t at;

	bi_start(&t, NULL);
	at = pkt_begin_untyped(&k, CANCEL_REQUEST);
	pkt_u32(&k, 1);
	pkt_end_untyped(&k, at);
	bi_send_expect(&t, &k, "CancelRequest of 12 bytes", "", WANT_FATAL, "cancel");
	bi_finish(&t);
}

/* A well-formed CancelRequest with a key nobody holds: closed without a word. */
static void test_bad_input_cancel_request_unknown_key_is_closed_silently(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	size_t at;

	bi_start(&t, NULL);
	at = pkt_begin_untyped(&k, CANCEL_REQUEST);
	pkt_u32(&k, 12345);
	pkt_u32(&k, 67890);
	pkt_end_untyped(&k, at);
	bi_send_expect(&t, &k, "CancelRequest with an unknown key", "", WANT_CLOSE, NULL);
	bi_finish(&t);
}

/* ---- during authentication ------------------------------------------------------------ */

#define MD5_SETTINGS "auth_type = md5\n"
#define AUTH_MD5 5
#define AUTH_SASL 10
#define AUTH_SASL_CONTINUE 11

static void query_instead_of_password(const char *settings, uint32_t code)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, settings);
	pkt_query(&k, "SELECT 1");
	bi_auth_send_expect(bi_until_auth(&t, code), &k, "Query instead of the password",
			    WANT_FATAL, "password");
	bi_finish(&t);
}

static void test_bad_input_md5_query_instead_of_password_gets_08P01(void **state)
{
	query_instead_of_password(MD5_SETTINGS, AUTH_MD5);
}

static void test_bad_input_scram_query_instead_of_sasl_initial_gets_08P01(void **state)
{
	query_instead_of_password(NULL, AUTH_SASL);
}

/* The startup packet and a Query in one write, before any authentication request. */
static void test_bad_input_scram_query_pipelined_behind_startup_gets_08P01(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_startup(&k, PROTO_3_0, harness_fixture()->app_user);
	pkt_query(&k, "SELECT 1");
	bi_send_expect(&t, &k, "StartupMessage + Query in one write", "R", WANT_FATAL,
		       "password");
	bi_finish(&t);
}

/* The header alone must be refused (cap: 8192 bytes before authentication). */
static void password_beyond_cap(const char *settings, uint32_t code)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, settings);
	pkt_header(&k, 'p', 100000);
	pkt_str(&k, "md5");
	bi_auth_send_expect(bi_until_auth(&t, code), &k, "password message of 100000 bytes",
			    WANT_FATAL, "too large");
	bi_finish(&t);
}

static void test_bad_input_md5_password_beyond_cap_gets_08P01_at_once(void **state)
{
	password_beyond_cap(MD5_SETTINGS, AUTH_MD5);
}

static void test_bad_input_scram_sasl_initial_beyond_cap_gets_08P01_at_once(void **state)
{
	password_beyond_cap(NULL, AUTH_SASL);
}

static void test_bad_input_md5_password_length_below_4_gets_08P01(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, MD5_SETTINGS);
	pkt_header(&k, 'p', 3);
	bi_auth_send_expect(bi_until_auth(&t, AUTH_MD5), &k, "password message of length 3",
			    WANT_FATAL, "length");
	bi_finish(&t);
}

static void test_bad_input_md5_password_without_nul_gets_08P01(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	size_t at;

	bi_start(&t, MD5_SETTINGS);
	at = pkt_begin_typed(&k, 'p');
	pkt_bytes(&k, "md5abc", 6);
	pkt_end_typed(&k, at);
	bi_auth_send_expect(bi_until_auth(&t, AUTH_MD5), &k, "password without NUL",
			    WANT_FATAL, "password");
	bi_finish(&t);
}

static void test_bad_input_md5_undefined_type_gets_08P01(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, MD5_SETTINGS);
	pkt_header(&k, 'z', 4);
	bi_auth_send_expect(bi_until_auth(&t, AUTH_MD5), &k, "type 'z' during md5", WANT_FATAL,
			    "type");
	bi_finish(&t);
}

/* SASLInitialResponse: mechanism, int32 length of the data, the data. */
static void pkt_sasl_initial(struct pkt *k, const char *mech, uint32_t claimed,
			     const char *data)
{
	size_t at = pkt_begin_typed(k, 'p');

	pkt_str(k, mech);
	pkt_u32(k, claimed);
	pkt_bytes(k, data, strlen(data));
	pkt_end_typed(k, at);
}

static void sasl_initial_expect(uint32_t claimed, const char *data, const char *what)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_sasl_initial(&k, "SCRAM-SHA-256", claimed, data);
	bi_auth_send_expect(bi_until_auth(&t, AUTH_SASL), &k, what, WANT_FATAL, "SASL");
	bi_finish(&t);
}

static void test_bad_input_scram_sasl_inner_length_beyond_message_gets_08P01(void **state)
{
	sasl_initial_expect(1000, "n,,n=,r=abcdefghijklmnop", "SASL data length 1000 > 24");
}

static void test_bad_input_scram_sasl_inner_length_short_of_message_gets_08P01(void **state)
{
	sasl_initial_expect(4, "n,,n=,r=abcdefghijklmnop", "SASL data length 4 < 24");
}

static void test_bad_input_scram_sasl_inner_length_negative_gets_08P01(void **state)
{
	sasl_initial_expect(0xfffffffeu, "n,,n=,r=abcdefghijklmnop", "SASL data length -2");
}

static void test_bad_input_scram_sasl_unknown_mechanism_gets_08P01(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_sasl_initial(&k, "SCRAM-SHA-1", 24, "n,,n=,r=abcdefghijklmnop");
	bi_auth_send_expect(bi_until_auth(&t, AUTH_SASL), &k, "mechanism SCRAM-SHA-1",
			    WANT_FATAL, "SASL");
	bi_finish(&t);
}

/* A mechanism name that runs to the end of the message. */
static void test_bad_input_scram_sasl_unterminated_mechanism_gets_08P01(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	size_t at;

	bi_start(&t, NULL);
	at = pkt_begin_typed(&k, 'p');
	pkt_bytes(&k, "SCRAM-SHA-256", 13);
	pkt_end_typed(&k, at);
	bi_auth_send_expect(bi_until_auth(&t, AUTH_SASL), &k, "mechanism without NUL",
			    WANT_FATAL, "SASL");
	bi_finish(&t);
}

/* A client-first-message that is not SCRAM at all. */
static void test_bad_input_scram_garbage_client_first_gets_08P01(void **state)
{
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_sasl_initial(&k, "SCRAM-SHA-256", 9, "\x01\x02garbage");
	bi_auth_send_expect(bi_until_auth(&t, AUTH_SASL), &k, "client-first garbage",
			    WANT_FATAL, "SCRAM");
	bi_finish(&t);
}

/* A valid client-first, then a client-final that is not SCRAM. */
static void test_bad_input_scram_garbage_client_final_gets_08P01(void **state)
{
	static const char first[] = "n,,n=,r=abcdefghijklmnopqrstuvwx";
	struct bi t;
	struct pkt k = { 0 }, fin = { 0 };
	size_t at;
	int fd;

	bi_start(&t, NULL);
	fd = bi_until_auth(&t, AUTH_SASL);
	pkt_sasl_initial(&k, "SCRAM-SHA-256", sizeof(first) - 1, first);
	raw_send(fd, &k);
	expect_auth(fd, AUTH_SASL_CONTINUE, "client-first");
	at = pkt_begin_typed(&fin, 'p');
	pkt_bytes(&fin, "p=not-a-proof", 13);
	pkt_end_typed(&fin, at);
	bi_auth_send_expect(fd, &fin, "client-final garbage", WANT_FATAL, "SCRAM");
	bi_finish(&t);
}

/*
 * A password message cut short, then the client shuts its side: as with a
 * truncated startup packet, nobody is left to tell.
 */
static void truncated_auth_then_closed(const char *settings, uint32_t code)
{
	struct bi t;
	struct pkt k = { 0 };
	struct reply r;
	int fd;

	bi_start(&t, settings);
	fd = bi_until_auth(&t, code);
	pkt_header(&k, 'p', 40);
	pkt_bytes(&k, "md5", 3);
	raw_send(fd, &k);
	shutdown(fd, SHUT_WR);
	read_reply(fd, &r, CLOSE_MS);
	close(fd);
	expect_reply(&r, "password message cut short, then shutdown", "", WANT_CLOSE, NULL);
	bi_finish(&t);
}

static void test_bad_input_md5_truncated_password_then_closed_is_closed_silently(void **state)
{
	truncated_auth_then_closed(MD5_SETTINGS, AUTH_MD5);
}

static void test_bad_input_scram_truncated_sasl_then_closed_is_closed_silently(void **state)
{
	truncated_auth_then_closed(NULL, AUTH_SASL);
}

/* A password message cut short, then silence: client_login_timeout ends it. */
static void test_bad_input_scram_truncated_sasl_then_stalled_gets_08P01_at_login_timeout(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	struct reply r;
	int fd;

	bi_start(&t, "client_login_timeout = 1\n");
	fd = bi_until_auth(&t, AUTH_SASL);
	pkt_header(&k, 'p', 40);
	pkt_str(&k, "SCRAM-SHA-256");
	raw_send(fd, &k);
	read_reply(fd, &r, LOGIN_TIMEOUT_MS);
	close(fd);
	expect_reply(&r, "SASLInitialResponse cut short, then silence", "", WANT_FATAL,
		     "client_login_timeout");
	bi_finish(&t);
}

/* ---- after login ------------------------------------------------------------------------ */

/* A logged-in raw session sends k; the answer must be FATAL 08P01 then EOF. */
static void after_login_expect(const struct pkt *k, const char *what, const char *msg_part)
{
	struct bi t;

	bi_start(&t, NULL);
	bi_auth_send_expect(bi_login(&t, NULL, NULL, NULL), k, what, WANT_FATAL, msg_part);
	bi_finish(&t);
}

static void test_bad_input_after_login_length_below_4_gets_08P01(void **state)
{
	struct pkt k = { 0 };

	pkt_header(&k, 'Q', 3);
	after_login_expect(&k, "Query of length 3", "length");
}

static void test_bad_input_after_login_length_minus_1_gets_08P01(void **state)
{
	struct pkt k = { 0 };

	pkt_header(&k, 'Q', 0xffffffffu);
	after_login_expect(&k, "Query of length -1", "too large");
}

/* Over PostgreSQL's 1 GB message limit (PROTO_LARGE_MSG_MAX). */
static void test_bad_input_after_login_query_beyond_1GB_gets_08P01_at_once(void **state)
{
	struct pkt k = { 0 };

	pkt_header(&k, 'Q', 0x40000000u);
	pkt_str(&k, "SELECT");
	after_login_expect(&k, "Query of 1 GB", "too large");
}

/* Sync never has a body (PROTO_SMALL_MSG_MAX). */
static void test_bad_input_after_login_sync_with_body_gets_08P01(void **state)
{
	struct pkt k = { 0 };

	pkt_header(&k, 'S', 5);
	pkt_u8(&k, 0);
	after_login_expect(&k, "Sync of length 5", "too large");
}

static void test_bad_input_after_login_terminate_with_body_gets_08P01(void **state)
{
	struct pkt k = { 0 };

	pkt_header(&k, 'X', 8);
	pkt_u32(&k, 0);
	after_login_expect(&k, "Terminate of length 8", "too large");
}

static void test_bad_input_after_login_undefined_type_z_gets_08P01(void **state)
{
	struct pkt k = { 0 };

	pkt_header(&k, 'z', 4);
	after_login_expect(&k, "type 'z'", "type");
}

static void test_bad_input_after_login_type_0x00_gets_08P01(void **state)
{
	struct pkt k = { 0 };

	pkt_header(&k, 0, 4);
	after_login_expect(&k, "type 0x00", "type");
}

/* ReadyForQuery comes only from servers. */
static void test_bad_input_after_login_server_only_type_Z_gets_08P01(void **state)
{
	struct pkt k = { 0 };

	pkt_header(&k, 'Z', 5);
	pkt_u8(&k, 'I');
	after_login_expect(&k, "ReadyForQuery from a client", "type");
}

/* RowDescription ('T') comes only from servers. */
static void test_bad_input_after_login_server_only_type_T_gets_08P01(void **state)
{
	struct pkt k = { 0 };

	pkt_header(&k, 'T', 6);
	pkt_u8(&k, 0);
	pkt_u8(&k, 0);
	after_login_expect(&k, "RowDescription from a client", "type");
}

/*
 * A password message once logged in: PostgreSQL's backend refuses it as
 * an invalid frontend message type (FATAL 08P01), so forwarding it would
 * only kill a pooled server; pgmux refuses it itself.
 */
static void test_bad_input_after_login_password_message_gets_08P01(void **state)
{
	struct pkt k = { 0 };
	size_t at = pkt_begin_typed(&k, 'p');

	pkt_str(&k, "secret");
	pkt_end_typed(&k, at);
	after_login_expect(&k, "PasswordMessage after login", "type");
}

/* A good Query and a bad message in one write: the session ends at the bad one. */
static void test_bad_input_after_login_good_query_then_bad_type_gets_08P01(void **state)
{
	struct pkt k = { 0 };

	pkt_query(&k, "SELECT 1");
	pkt_header(&k, 'z', 4);
	after_login_expect(&k, "Query + type 'z' in one write", "type");
}

/*
 * A message pgmux frames but does not decode, malformed inside: a Query
 * whose text lacks its NUL. Its body is PostgreSQL's to judge, which
 * answers ERROR 08P01 and ReadyForQuery, as it would without a pooler; the
 * session and its server carry on.
 */
static void test_bad_input_after_login_query_without_nul_gets_postgres_08P01_and_session_lives(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	struct reply r;
	char value[32];
	size_t at;
	int fd;

	bi_start(&t, NULL);
	fd = bi_login(&t, NULL, NULL, NULL);
	at = pkt_begin_typed(&k, 'Q');
	pkt_bytes(&k, "SELECT 1", 8);
	pkt_end_typed(&k, at);
	raw_exchange(fd, &k, &r, "Query without NUL");
	assert_string_equal(r.types, "EZ");
	assert_string_equal(r.err.severity, "ERROR");
	assert_string_equal(r.err.sqlstate, "08P01");
	assert_int_equal(raw_query(fd, "SELECT 6 * 7", value, sizeof(value)), 'I');
	assert_string_equal(value, "42");
	close(fd);
	bi_finish(&t);
}

/*
 * A good Query, then an undefined type, sent while every server is busy.
 * pgmux checks the first header before queueing; the rest is judged when a
 * server frees up, and then the session ends without the server being
 * sent anything.
 */
static void test_bad_input_bad_message_queued_for_a_server_gets_08P01_once_served(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	struct reply r;
	PGconn *other;
	int fd;

	bi_start(&t, NULL);
	/* The client in its transaction holds one server of two; this the other. */
	other = harness_connect_pooler(&t.p, NULL, NULL, NULL);
	expect_command_ok(other, "BEGIN");
	expect_scalar(other, "SELECT 4", "4");
	fd = bi_login(&t, NULL, NULL, NULL);
	pkt_query(&k, "SELECT 5");
	pkt_header(&k, 'z', 4);
	raw_send(fd, &k);
	read_reply(fd, &r, 300);
	if (r.len != 0 || r.eof_ms >= 0 || r.reset)
		fail_msg("a client queued for a server got %zu bytes (\"%s\")%s", r.len, r.types,
			 r.eof_ms >= 0 || r.reset ? " and was closed" : "");
	expect_command_ok(other, "COMMIT");
	read_reply(fd, &r, CLOSE_MS);
	close(fd);
	expect_reply(&r, "Query + type 'z' queued, then served", "", WANT_FATAL, "type");
	expect_scalar(other, "SELECT 5", "5");
	PQfinish(other);
	bi_finish(&t);
}

/*
 * A Query cut short, then the client shuts its side. Nobody is left to
 * tell; what matters is that the server that got half a message is closed,
 * not handed to the next client (whose query would become the rest of the
 * body). With two servers in the pool and one held by the client in its
 * transaction, the raw session always gets the other one.
 */
static void test_bad_input_after_login_truncated_query_then_closed_drops_its_server(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	struct reply r;
	char pid[32];
	int fd;

	bi_start(&t, NULL);
	fd = bi_login(&t, NULL, NULL, NULL);
	assert_int_equal(raw_query(fd, "SELECT pg_backend_pid()", pid, sizeof(pid)), 'I');
	pkt_header(&k, 'Q', 100);
	pkt_bytes(&k, "SELECT 'cut", 11);
	raw_send(fd, &k);
	shutdown(fd, SHUT_WR);
	read_reply(fd, &r, CLOSE_MS);
	close(fd);
	expect_reply(&r, "Query cut short, then shutdown", "", WANT_CLOSE, NULL);
	expect_backend_gone(atoi(pid), CLOSE_MS, "the server that got half a Query");
	bi_finish(&t);
}

/*
 * A CopyData outside COPY (PostgreSQL ignores those, so nothing is owed for
 * it) sent in pieces: header and 10 body bytes, then, in a later read, the
 * other 90 and an undefined type. The 90 are never forwarded, so the server
 * still waits for them: it must be closed, not handed to the next client,
 * whose query would become the rest of the body. (If the two writes reach
 * pgmux in one read, the CopyData goes out whole and the case passes
 * trivially: it can miss the bug, never invent one.)
 */
static void test_bad_input_after_login_bad_type_behind_a_split_message_drops_its_server(void **state)
{
	struct bi t;
	struct pkt head = { 0 }, rest = { 0 };
	struct reply r;
	char body[90], pid[32];
	int fd;

	bi_start(&t, NULL);
	fd = bi_login(&t, NULL, NULL, NULL);
	assert_int_equal(raw_query(fd, "SELECT pg_backend_pid()", pid, sizeof(pid)), 'I');
	pkt_header(&head, 'd', 4 + 10 + sizeof(body));
	pkt_bytes(&head, "0123456789", 10);
	raw_send(fd, &head);
	usleep(200 * 1000);
	memset(body, 'x', sizeof(body));
	pkt_bytes(&rest, body, sizeof(body));
	pkt_header(&rest, 'z', 4);
	raw_send(fd, &rest);
	read_reply(fd, &r, CLOSE_MS);
	close(fd);
	expect_reply(&r, "rest of a CopyData + type 'z'", "", WANT_FATAL, "type");
	expect_backend_gone(atoi(pid), CLOSE_MS, "the server that got part of a CopyData");
	bi_finish(&t);
}

/*
 * A message cut short after login, then silence: the client is linked to
 * a server that waits for the rest, so it holds that server. It owes no
 * answer (a CopyData outside COPY) and is in no transaction, so only
 * client_idle_timeout can end it: FATAL 08P01 client_idle_timeout, and the
 * server holding half a message is closed.
 */
static void test_bad_input_after_login_truncated_copydata_then_stalled_gets_08P01_at_client_idle_timeout(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	struct reply r;
	char pid[32];
	int fd;

	bi_start(&t, "client_idle_timeout = 1\n");
	fd = bi_login(&t, NULL, NULL, NULL);
	assert_int_equal(raw_query(fd, "SELECT pg_backend_pid()", pid, sizeof(pid)), 'I');
	pkt_header(&k, 'd', 100);
	pkt_bytes(&k, "0123456789", 10);
	raw_send(fd, &k);
	read_reply(fd, &r, LOGIN_TIMEOUT_MS);
	close(fd);
	expect_reply(&r, "CopyData cut short, then silence", "", WANT_FATAL, "client_idle_timeout");
	expect_backend_gone(atoi(pid), CLOSE_MS, "the server that got part of a CopyData");
	bi_finish(&t);
}

/*
 * A bad message inside a transaction: the session ends, and its server is
 * closed with it so the transaction rolls back rather than being reused.
 */
static void test_bad_input_in_transaction_undefined_type_gets_08P01_and_rolls_back(void **state)
{
	struct bi t;
	struct pkt k = { 0 };
	struct reply r;
	char pid[32];
	int fd;

	bi_start(&t, NULL);
	fd = bi_login(&t, NULL, NULL, NULL);
	assert_int_equal(raw_query(fd, "BEGIN", pid, sizeof(pid)), 'T');
	assert_int_equal(raw_query(fd, "SELECT pg_backend_pid()", pid, sizeof(pid)), 'T');
	pkt_header(&k, 'z', 4);
	raw_send(fd, &k);
	read_reply(fd, &r, CLOSE_MS);
	close(fd);
	expect_reply(&r, "type 'z' inside a transaction", "", WANT_FATAL, "type");
	expect_backend_gone(atoi(pid), CLOSE_MS, "the server of the broken transaction");
	bi_finish(&t);
}

/* The admin console frames its input the same way. */
static void test_bad_input_admin_console_undefined_type_gets_08P01(void **state)
{
	const struct harness_fixture *fx = harness_fixture();
	struct bi t;
	struct pkt k = { 0 };

	bi_start(&t, NULL);
	pkt_header(&k, 'z', 4);
	bi_auth_send_expect(bi_login(&t, harness_pooler_name(), fx->admin_user,
				     fx->admin_password),
			    &k, "type 'z' on the admin console", WANT_FATAL, NULL);
	bi_finish(&t);
}

/* ---- 200 malformed connections against one transaction ----------------------------- */

struct hammer_case {
	const char *name;
	const char *prefix;          /* messages before the error */
	void (*build)(struct pkt *k);
};

static void hammer_length_7(struct pkt *k)
{
	pkt_u32(k, 7);
	pkt_u32(k, PROTO_3_0);
}

static void hammer_length_100MB(struct pkt *k)
{
	pkt_u32(k, 100u * 1024 * 1024);
	pkt_u32(k, PROTO_3_0);
}

static void hammer_protocol_2(struct pkt *k)
{
	pkt_startup(k, 0x00020000u, harness_fixture()->app_user);
}

static void hammer_no_user(struct pkt *k)
{
	size_t at = pkt_begin_untyped(k, PROTO_3_0);

	pkt_str(k, "database");
	pkt_str(k, harness_fixture()->db);
	pkt_u8(k, 0);
	pkt_end_untyped(k, at);
}

static void hammer_no_terminator(struct pkt *k)
{
	size_t at = pkt_begin_untyped(k, PROTO_3_0);

	pkt_str(k, "user");
	pkt_str(k, harness_fixture()->app_user);
	pkt_end_untyped(k, at);
}

static void hammer_ssl_then_startup(struct pkt *k)
{
	pkt_request(k, SSL_REQUEST);
	pkt_startup(k, PROTO_3_0, harness_fixture()->app_user);
}

static void hammer_cancel_20(struct pkt *k)
{
	size_t at = pkt_begin_untyped(k, CANCEL_REQUEST);

	pkt_u32(k, 1);
	pkt_u32(k, 2);
	pkt_u32(k, 3);
	pkt_end_untyped(k, at);
}

static void hammer_query_in_auth(struct pkt *k)
{
	pkt_startup(k, PROTO_3_0, harness_fixture()->app_user);
	pkt_query(k, "SELECT 1");
}

static void hammer_password_beyond_cap(struct pkt *k)
{
	pkt_startup(k, PROTO_3_0, harness_fixture()->app_user);
	pkt_header(k, 'p', 100000);
}

static void hammer_sasl_inner_length(struct pkt *k)
{
	pkt_startup(k, PROTO_3_0, harness_fixture()->app_user);
	pkt_sasl_initial(k, "SCRAM-SHA-256", 1000, "n,,n=,r=abc");
}

static void hammer_undefined_type_in_auth(struct pkt *k)
{
	pkt_startup(k, PROTO_3_0, harness_fixture()->app_user);
	pkt_header(k, 0, 4);
}

static const struct hammer_case hammer_cases[] = {
	{ "startup length 7", "", hammer_length_7 },
	{ "startup length 100 MB", "", hammer_length_100MB },
	{ "protocol 2.0", "", hammer_protocol_2 },
	{ "startup without user", "", hammer_no_user },
	{ "startup without terminator", "", hammer_no_terminator },
	{ "SSLRequest + StartupMessage", "", hammer_ssl_then_startup },
	{ "CancelRequest of 20 bytes", "", hammer_cancel_20 },
	{ "Query during SCRAM", "R", hammer_query_in_auth },
	{ "password beyond the cap", "R", hammer_password_beyond_cap },
	{ "SASL inner length", "R", hammer_sasl_inner_length },
	{ "type 0x00 during SCRAM", "R", hammer_undefined_type_in_auth },
};

#define HAMMER_NCASES (sizeof(hammer_cases) / sizeof(hammer_cases[0]))

struct hammer {
	int port;
	volatile int done;  /* set by the thread when it has finished */
	int sent, bad;
	char why[512];      /* the first bad answer */
};

/* The thread: HAMMER_CONNS malformed connections, one after another. */
static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	int i;

	for (i = 0; i < HAMMER_CONNS; i++) {
		const struct hammer_case *hc = &hammer_cases[(size_t)i % HAMMER_NCASES];
		struct pkt k = { 0 };
		struct reply r;
		char why[400];
		int fd = harness_raw_connect(h->port, false);

		hc->build(&k);
		if (fd < 0 || k.overflow || !harness_raw_write_all(fd, k.b, k.len)) {
			snprintf(why, sizeof(why), "could not connect or send: %s", strerror(errno));
		} else {
			read_reply(fd, &r, CLOSE_MS);
			why[0] = '\0';
			if (!reply_ok(&r, hc->prefix, WANT_FATAL, NULL, why, sizeof(why)) &&
			    why[0] == '\0')
				snprintf(why, sizeof(why), "bad answer");
		}
		if (fd >= 0)
			close(fd);
		h->sent++;
		if (why[0] != '\0' && h->bad++ == 0)
			snprintf(h->why, sizeof(h->why), "connection %d (%s): %s", i, hc->name, why);
	}
	h->done = 1;
	return NULL;
}

static void test_bad_input_200_malformed_connections_leave_a_transaction_intact(void **state)
{
	struct bi t;
	struct hammer h = { 0 };
	PGconn *super, *c, *after;
	pthread_t thread;
	char sql[160], want[64];
	long long t0;
	int n = 0;

	super = harness_connect_pg_super(NULL);
	harness_exec(super, "DROP TABLE IF EXISTS it_bad_input_hammer");
	harness_exec(super, "CREATE TABLE it_bad_input_hammer (i int)");
	harness_exec(super, "GRANT ALL ON it_bad_input_hammer TO PUBLIC");
	bi_start(&t, NULL);
	c = harness_connect_pooler(&t.p, NULL, NULL, NULL);
	expect_command_ok(c, "BEGIN");

	h.port = t.p.port;
	t0 = harness_now_ms();
	assert_int_equal(pthread_create(&thread, NULL, hammer_main, &h), 0);
	/* Step by step, each result checked, for as long as the hammer lasts. */
	while (!h.done || n < 20) {
		n++;
		harness_fmt(sql, sizeof(sql), "INSERT INTO it_bad_input_hammer VALUES (%d)", n);
		expect_command_ok(c, sql);
		harness_fmt(want, sizeof(want), "%d,%lld", n, (long long)n * (n + 1) / 2);
		expect_scalar(c, "SELECT count(*) || ',' || sum(i) FROM it_bad_input_hammer", want);
	}
	pthread_join(thread, NULL);
	print_message("%d malformed connections in %lld ms, %d answered wrongly; the "
		      "transaction ran %d steps meanwhile\n", h.sent, harness_now_ms() - t0,
		      h.bad, n);
	if (h.bad > 0)
		fail_msg("%d of %d malformed connections were not answered FATAL 08P01 and "
			 "closed; first: %s", h.bad, h.sent, h.why);
	expect_command_ok(c, "COMMIT");
	PQfinish(c);

	/* Committed as a whole, as seen by a new client. */
	after = harness_connect_pooler(&t.p, NULL, NULL, NULL);
	harness_fmt(want, sizeof(want), "%d,%lld", n, (long long)n * (n + 1) / 2);
	expect_scalar(after, "SELECT count(*) || ',' || sum(i) FROM it_bad_input_hammer", want);
	PQfinish(after);
	bi_finish(&t);
	harness_exec(super, "DROP TABLE it_bad_input_hammer");
	PQfinish(super);
}

#define BI_TEST(f) cmocka_unit_test_teardown(f, harness_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BI_TEST(test_bad_input_startup_length_below_8_gets_08P01_and_close),
		BI_TEST(test_bad_input_startup_length_below_4_gets_08P01_and_close),
		BI_TEST(test_bad_input_startup_length_zero_gets_08P01_and_close),
		BI_TEST(test_bad_input_startup_length_100MB_gets_08P01_at_once),
		BI_TEST(test_bad_input_startup_length_minus_1_gets_08P01_at_once),
		BI_TEST(test_bad_input_startup_length_10001_gets_08P01_at_once),
		BI_TEST(test_bad_input_startup_http_request_gets_08P01_at_once),
		BI_TEST(test_bad_input_startup_protocol_2_0_gets_08P01_and_close),
		BI_TEST(test_bad_input_startup_protocol_4_0_gets_08P01_and_close),
		BI_TEST(test_bad_input_startup_protocol_3_1_gets_NegotiateProtocolVersion_and_logs_in),
		BI_TEST(test_bad_input_startup_without_user_gets_08P01_and_close),
		BI_TEST(test_bad_input_startup_missing_terminator_gets_08P01_and_close),
		BI_TEST(test_bad_input_startup_unterminated_value_gets_08P01_and_close),
		BI_TEST(test_bad_input_startup_name_without_value_gets_08P01_and_close),
		BI_TEST(test_bad_input_startup_bytes_after_terminator_gets_08P01_and_close),
		BI_TEST(test_bad_input_startup_truncated_then_closed_is_closed_silently),
		BI_TEST(test_bad_input_startup_truncated_then_stalled_gets_08P01_at_login_timeout),
		BI_TEST(test_bad_input_startup_partial_length_then_stalled_gets_08P01_at_login_timeout),
		BI_TEST(test_bad_input_sslrequest_then_startup_before_answer_gets_08P01),
		BI_TEST(test_bad_input_gssencrequest_then_startup_before_answer_gets_08P01),
		BI_TEST(test_bad_input_sslrequest_answered_N_then_garbage_gets_08P01),
		BI_TEST(test_bad_input_sslrequest_twice_gets_08P01),
		BI_TEST(test_bad_input_gssencrequest_twice_gets_08P01),
		BI_TEST(test_bad_input_gssencrequest_then_sslrequest_then_startup_is_legal),
		BI_TEST(test_bad_input_sslrequest_length_12_gets_08P01),
		BI_TEST(test_bad_input_cancel_request_length_20_gets_08P01_and_close),
		BI_TEST(test_bad_input_cancel_request_length_12_gets_08P01_and_close),
		BI_TEST(test_bad_input_cancel_request_unknown_key_is_closed_silently),
		BI_TEST(test_bad_input_md5_query_instead_of_password_gets_08P01),
		BI_TEST(test_bad_input_scram_query_instead_of_sasl_initial_gets_08P01),
		BI_TEST(test_bad_input_scram_query_pipelined_behind_startup_gets_08P01),
		BI_TEST(test_bad_input_md5_password_beyond_cap_gets_08P01_at_once),
		BI_TEST(test_bad_input_scram_sasl_initial_beyond_cap_gets_08P01_at_once),
		BI_TEST(test_bad_input_md5_password_length_below_4_gets_08P01),
		BI_TEST(test_bad_input_md5_password_without_nul_gets_08P01),
		BI_TEST(test_bad_input_md5_undefined_type_gets_08P01),
		BI_TEST(test_bad_input_scram_sasl_inner_length_beyond_message_gets_08P01),
		BI_TEST(test_bad_input_scram_sasl_inner_length_short_of_message_gets_08P01),
		BI_TEST(test_bad_input_scram_sasl_inner_length_negative_gets_08P01),
		BI_TEST(test_bad_input_scram_sasl_unknown_mechanism_gets_08P01),
		BI_TEST(test_bad_input_scram_sasl_unterminated_mechanism_gets_08P01),
		BI_TEST(test_bad_input_scram_garbage_client_first_gets_08P01),
		BI_TEST(test_bad_input_scram_garbage_client_final_gets_08P01),
		BI_TEST(test_bad_input_md5_truncated_password_then_closed_is_closed_silently),
		BI_TEST(test_bad_input_scram_truncated_sasl_then_closed_is_closed_silently),
		BI_TEST(test_bad_input_scram_truncated_sasl_then_stalled_gets_08P01_at_login_timeout),
		BI_TEST(test_bad_input_after_login_length_below_4_gets_08P01),
		BI_TEST(test_bad_input_after_login_length_minus_1_gets_08P01),
		BI_TEST(test_bad_input_after_login_query_beyond_1GB_gets_08P01_at_once),
		BI_TEST(test_bad_input_after_login_sync_with_body_gets_08P01),
		BI_TEST(test_bad_input_after_login_terminate_with_body_gets_08P01),
		BI_TEST(test_bad_input_after_login_undefined_type_z_gets_08P01),
		BI_TEST(test_bad_input_after_login_type_0x00_gets_08P01),
		BI_TEST(test_bad_input_after_login_server_only_type_Z_gets_08P01),
		BI_TEST(test_bad_input_after_login_server_only_type_T_gets_08P01),
		BI_TEST(test_bad_input_after_login_password_message_gets_08P01),
		BI_TEST(test_bad_input_after_login_good_query_then_bad_type_gets_08P01),
		BI_TEST(test_bad_input_after_login_query_without_nul_gets_postgres_08P01_and_session_lives),
		BI_TEST(test_bad_input_bad_message_queued_for_a_server_gets_08P01_once_served),
		BI_TEST(test_bad_input_after_login_truncated_query_then_closed_drops_its_server),
		BI_TEST(test_bad_input_after_login_bad_type_behind_a_split_message_drops_its_server),
		BI_TEST(test_bad_input_after_login_truncated_copydata_then_stalled_gets_08P01_at_client_idle_timeout),
		BI_TEST(test_bad_input_in_transaction_undefined_type_gets_08P01_and_rolls_back),
		BI_TEST(test_bad_input_admin_console_undefined_type_gets_08P01),
		BI_TEST(test_bad_input_200_malformed_connections_leave_a_transaction_intact),
	};

	/* A pooler closing on us mid-send must fail a check, not kill the program. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("integration_bad_input", tests, NULL, NULL);
}
