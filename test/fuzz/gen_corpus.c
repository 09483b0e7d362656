/*
 * gen_corpus.c: writes the hand-made seeds of both fuzz targets, so that
 * the checked-in corpus can be rebuilt and reviewed. Usage:
 *
 *   fuzz_gen_corpus DIR     writes DIR/proto/seed-* and DIR/client/seed-*
 *
 * Messages come from pgmux's own builders (protocol/proto_build.c) where
 * one exists, else from the same put primitives; the layout of each seed
 * is the one fuzz_util.h documents. The client seeds get the fuzzer past
 * the startup packet and authentication at once and steer the fake server
 * (fuzz_backend.h) into every answer it knows.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "auth_md5.h"
#include "auth_scram.h"
#include "fuzz_util.h"
#include "proto.h"
#include "proto_build.h"

static const char *g_dir;

static void gen_mkdir(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
}

static void gen_write(const char *target, const char *name, const struct fz_out *o)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/seed-%s", g_dir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(o->buf, 1, o->len, f) != o->len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* Appends a string without its NUL (the rest of an input, not a part). */
static void gen_text(struct fz_out *o, const char *s)
{
	fz_out_bytes(o, s, strlen(s));
}

/* Appends what b holds to o (b must be ok) and empties b. */
static void gen_take(struct fz_out *o, struct proto_buf *b)
{
	FZ_CHECK(proto_buf_ok(b));
	fz_out_bytes(o, b->data, b->len);
	proto_buf_reset(b);
}

/* ---- frontend messages ---- */

static struct proto_buf g_b;

static void msg_startup(struct fz_out *o, const char *user, const char *db)
{
	const char *params[] = { "user", user, "database", db, "application_name", "fuzz",
				 NULL };

	proto_build_startup(&g_b, params);
	gen_take(o, &g_b);
}

static void msg_untyped(struct fz_out *o, uint32_t code)
{
	proto_begin(&g_b, 0);
	proto_put_u32(&g_b, code);
	proto_end(&g_b);
	gen_take(o, &g_b);
}

static void msg_query(struct fz_out *o, const char *sql)
{
	proto_build_query(&g_b, sql);
	gen_take(o, &g_b);
}

/* A message of one type with a body made of C strings (each with its NUL). */
static void msg_strs(struct fz_out *o, uint8_t type, const char *const *strs, size_t n)
{
	size_t i;

	proto_begin(&g_b, type);
	for (i = 0; i < n; i++)
		proto_put_cstr(&g_b, strs[i]);
	proto_end(&g_b);
	gen_take(o, &g_b);
}

static void msg_empty(struct fz_out *o, uint8_t type)
{
	msg_strs(o, type, NULL, 0);
}

/* Parse, Bind, Describe, Execute: one statement of the extended protocol. */
static void msg_extended(struct fz_out *o, const char *sql)
{
	proto_begin(&g_b, PROTO_FE_PARSE);
	proto_put_cstr(&g_b, "");
	proto_put_cstr(&g_b, sql);
	proto_put_u16(&g_b, 0);
	proto_end(&g_b);
	proto_begin(&g_b, PROTO_FE_BIND);
	proto_put_cstr(&g_b, "");
	proto_put_cstr(&g_b, "");
	proto_put_u16(&g_b, 0);
	proto_put_u16(&g_b, 0);
	proto_put_u16(&g_b, 0);
	proto_end(&g_b);
	proto_begin(&g_b, PROTO_FE_DESCRIBE);
	proto_put_u8(&g_b, 'P');
	proto_put_cstr(&g_b, "");
	proto_end(&g_b);
	proto_begin(&g_b, PROTO_FE_EXECUTE);
	proto_put_cstr(&g_b, "");
	proto_put_u32(&g_b, 0);
	proto_end(&g_b);
	gen_take(o, &g_b);
}

static void msg_password(struct fz_out *o, const char *password)
{
	proto_build_password(&g_b, password);
	gen_take(o, &g_b);
}

static void msg_sasl_initial(struct fz_out *o, const char *data)
{
	proto_build_sasl_initial(&g_b, "SCRAM-SHA-256", data, strlen(data));
	gen_take(o, &g_b);
}

static void msg_sasl_response(struct fz_out *o, const char *data)
{
	proto_build_sasl_response(&g_b, data, strlen(data));
	gen_take(o, &g_b);
}

/* ---- client seeds ---- */

enum { CH_ALL = 0, CH_MESSAGES = 1, CH_RANDOM = 7 };

static void client_begin(struct fz_out *o, uint8_t flags, uint8_t chunking)
{
	o->len = 0;
	fz_out_u8(o, flags);
	fz_out_u8(o, chunking);
}

/* A trust login to db, the queries, then Terminate. */
static void client_queries(const char *name, uint8_t flags, uint8_t chunking, const char *db,
			   const char *const *sqls, size_t n)
{
	static struct fz_out o;
	size_t i;

	client_begin(&o, flags, chunking);
	msg_startup(&o, "fuzz", db);
	for (i = 0; i < n; i++)
		msg_query(&o, sqls[i]);
	msg_empty(&o, PROTO_FE_TERMINATE);
	gen_write("client", name, &o);
}

#define QUERIES(name, flags, chunking, db, ...)                                               \
	do {                                                                                  \
		static const char *const q_[] = { __VA_ARGS__ };                              \
		client_queries(name, flags, chunking, db, q_, sizeof(q_) / sizeof(q_[0]));    \
	} while (0)

static void gen_client_traffic(void)
{
	static struct fz_out o;
	static char big[10001];

	QUERIES("query", 0, CH_ALL, "fuzz", "SELECT 1");
	QUERIES("query-messages", 0, CH_MESSAGES, "fuzz", "SELECT 1", "SELECT 2");
	QUERIES("query-chunks", 0, CH_RANDOM, "fuzz", "SELECT 1", "BEGIN", "SELECT 2", "COMMIT");
	QUERIES("tx", 0, CH_MESSAGES, "fuzz", "BEGIN", "SELECT 1", "FAIL", "ROLLBACK", "SELECT 2");
	QUERIES("session", 0, CH_MESSAGES, "sess", "BEGIN", "SELECT 1", "COMMIT", "SELECT 2");
	QUERIES("statement", 0, CH_MESSAGES, "stmt", "SELECT 1", "BEGIN", "SELECT 2");
	QUERIES("warm", FZ_CLIENT_WARM, CH_ALL, "fuzz", "SELECT 1", "SELECT 2");
	QUERIES("warm-session", FZ_CLIENT_WARM, CH_MESSAGES, "sess", "BEGIN", "COMMIT");
	QUERIES("warm-statement", FZ_CLIENT_WARM, CH_ALL, "stmt", "SELECT 1", "BEGIN");
	QUERIES("fatal", 0, CH_MESSAGES, "fuzz", "FATAL", "SELECT 1");
	QUERIES("fatal-in-tx", 0, CH_MESSAGES, "fuzz", "BEGIN", "FATAL");
	QUERIES("drop", 0, CH_MESSAGES, "fuzz", "SELECT 1", "DROP", "SELECT 2");
	QUERIES("notice", 0, CH_ALL, "fuzz", "NOTICE", "", "SELECT 1");
	QUERIES("big", FZ_CLIENT_TIGHT, CH_MESSAGES, "fuzz", "BIG", "BIG", "SELECT 1");
	QUERIES("down", 0, CH_ALL, "down", "SELECT 1");
	QUERIES("no-such-db", 0, CH_ALL, "nosuch", "SELECT 1");

	/* A request still owed when the client leaves: its server is
	 * cancelled and closed. No Terminate. */
	client_begin(&o, 0, CH_MESSAGES);
	msg_startup(&o, "fuzz", "fuzz");
	msg_query(&o, "WAIT");
	gen_write("client", "wait-leave", &o);

	/* Extended protocol, pipelined, with a Flush and a FunctionCall. */
	client_begin(&o, 0, CH_MESSAGES);
	msg_startup(&o, "fuzz", "fuzz");
	msg_extended(&o, "SELECT 1");
	msg_empty(&o, PROTO_FE_FLUSH);
	msg_extended(&o, "SELECT 2");
	msg_empty(&o, PROTO_FE_SYNC);
	proto_begin(&g_b, PROTO_FE_FUNCTION_CALL);
	proto_put_u32(&g_b, 1598);
	proto_put_u16(&g_b, 0);
	proto_put_u16(&g_b, 0);
	proto_put_u16(&g_b, 0);
	proto_end(&g_b);
	gen_take(&o, &g_b);
	{
		static const char *const close_stmt[] = { "S" };

		msg_strs(&o, PROTO_FE_CLOSE, close_stmt, 1);
	}
	msg_empty(&o, PROTO_FE_SYNC);
	msg_empty(&o, PROTO_FE_TERMINATE);
	gen_write("client", "extended", &o);

	/* The same, unsynced when the client leaves. */
	client_begin(&o, FZ_CLIENT_WARM, CH_RANDOM);
	msg_startup(&o, "fuzz", "fuzz");
	msg_extended(&o, "SELECT 1");
	gen_write("client", "extended-unsynced", &o);

	/* COPY FROM STDIN, finished and failed. */
	client_begin(&o, 0, CH_MESSAGES);
	msg_startup(&o, "fuzz", "fuzz");
	msg_query(&o, "COPY t FROM STDIN");
	proto_begin(&g_b, PROTO_FE_COPY_DATA);
	proto_put_bytes(&g_b, "1\n2\n", 4);
	proto_end(&g_b);
	gen_take(&o, &g_b);
	msg_empty(&o, PROTO_FE_SYNC);
	msg_empty(&o, PROTO_FE_COPY_DONE);
	msg_query(&o, "COPY t FROM STDIN");
	{
		static const char *const why[] = { "no more" };

		msg_strs(&o, PROTO_FE_COPY_FAIL, why, 1);
	}
	msg_empty(&o, PROTO_FE_TERMINATE);
	gen_write("client", "copy", &o);

	/* Regression: a CopyData (ignored by PostgreSQL outside COPY) still
	 * arriving after the ReadyForQuery that ends the transaction; the
	 * server used to go back to the pool with the message half sent. */
	client_begin(&o, 0, CH_ALL);
	msg_startup(&o, "fuzz", "fuzz");
	msg_query(&o, "SELECT 1");
	fz_out_bytes(&o, "d\x00\x00\x03\xe8" "0123456789", 15);
	gen_write("client", "partial-copydata", &o);

	/* A query larger than pkt_buf streams through. */
	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "SELECT '", 8);
	client_begin(&o, 0, CH_RANDOM);
	msg_startup(&o, "fuzz", "fuzz");
	msg_query(&o, big);
	msg_query(&o, "SELECT 1");
	msg_empty(&o, PROTO_FE_TERMINATE);
	gen_write("client", "big-query", &o);
}

static void gen_client_startup(void)
{
	static struct fz_out o;

	/* SSLRequest answered 'N', then the login. */
	client_begin(&o, 0, CH_MESSAGES);
	msg_untyped(&o, PROTO_SSL_REQUEST_CODE);
	msg_startup(&o, "fuzz", "fuzz");
	msg_query(&o, "SELECT 1");
	msg_empty(&o, PROTO_FE_TERMINATE);
	gen_write("client", "ssl", &o);

	/* The same bytes in one write: refused (CVE-2021-3935 class). */
	o.buf[1] = CH_ALL;
	gen_write("client", "ssl-pipelined", &o);

	client_begin(&o, 0, CH_MESSAGES);
	msg_untyped(&o, PROTO_GSSENC_REQUEST_CODE);
	msg_startup(&o, "fuzz", "sess");
	gen_write("client", "gssenc", &o);

	client_begin(&o, 0, CH_ALL);
	proto_build_cancel_request(&g_b, 1234, 5678);
	gen_take(&o, &g_b);
	gen_write("client", "cancel", &o);

	/* Protocol 3.1 with an unknown _pq_ option: NegotiateProtocolVersion. */
	client_begin(&o, 0, CH_ALL);
	proto_begin(&g_b, 0);
	proto_put_u32(&g_b, 0x00030001);
	proto_put_cstr(&g_b, "user");
	proto_put_cstr(&g_b, "fuzz");
	proto_put_cstr(&g_b, "_pq_.fuzz");
	proto_put_cstr(&g_b, "1");
	proto_put_u8(&g_b, 0);
	proto_end(&g_b);
	gen_take(&o, &g_b);
	msg_query(&o, "SELECT 1");
	gen_write("client", "protocol-3.1", &o);

	/* A startup packet under PROTO_STARTUP_MAX but over pkt_buf (4096 in
	 * the harness): the read buffer fills before the packet is whole. */
	{
		static char opt[6000];
		const char *params[] = { "user", "fuzz", "options", opt, NULL };

		memset(opt, 'o', sizeof(opt) - 1);
		client_begin(&o, 0, CH_RANDOM);
		proto_build_startup(&g_b, params);
		gen_take(&o, &g_b);
		gen_write("client", "startup-over-pkt-buf", &o);
	}

	/* A startup length over PROTO_STARTUP_MAX, and protocol 2.0. */
	client_begin(&o, 0, CH_ALL);
	fz_out_bytes(&o, "\x00\x00\x4e\x20\x00\x03\x00\x00", 8);
	gen_write("client", "startup-too-long", &o);
	client_begin(&o, 0, CH_ALL);
	fz_out_bytes(&o, "\x00\x00\x00\x09\x00\x02\x00\x00\x00", 9);
	gen_write("client", "protocol-2", &o);
}

static void gen_client_auth(void)
{
	static struct fz_out o;

	client_begin(&o, 1, CH_MESSAGES); /* plain */
	msg_startup(&o, "fuzz", "fuzz");
	msg_password(&o, "fuzz");
	msg_query(&o, "SELECT 1");
	msg_empty(&o, PROTO_FE_TERMINATE);
	gen_write("client", "plain", &o);

	client_begin(&o, 1, CH_ALL);
	msg_startup(&o, "scramuser", "fuzz");
	msg_password(&o, "scrampass");
	msg_query(&o, "SELECT 1");
	gen_write("client", "plain-scram-secret", &o);

	client_begin(&o, 1, CH_MESSAGES);
	msg_startup(&o, "fuzz", "fuzz");
	msg_empty(&o, PROTO_FE_TERMINATE);
	gen_write("client", "plain-terminate", &o);

	client_begin(&o, 2, CH_MESSAGES); /* md5 */
	msg_startup(&o, "md5user", "fuzz");
	msg_password(&o, "md50123456789abcdef0123456789abcdef");
	gen_write("client", "md5", &o);

	client_begin(&o, 3, CH_MESSAGES); /* scram-sha-256 */
	msg_startup(&o, "scramuser", "fuzz");
	msg_sasl_initial(&o, "n,,n=,r=fyko+d2lbbFgONRv9qkxdawL");
	msg_sasl_response(&o, "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
			      "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
	gen_write("client", "scram", &o);

	client_begin(&o, 3, CH_ALL);
	msg_startup(&o, "nobody", "fuzz");
	msg_sasl_initial(&o, "n,,n=,r=fyko+d2lbbFgONRv9qkxdawL");
	gen_write("client", "scram-unknown-user", &o);

	/* A password under PROTO_PREAUTH_MSG_MAX but over pkt_buf. */
	{
		static char pw[6000];

		memset(pw, 'p', sizeof(pw) - 1);
		client_begin(&o, 1, CH_RANDOM);
		msg_startup(&o, "fuzz", "fuzz");
		msg_password(&o, pw);
		gen_write("client", "password-over-pkt-buf", &o);
	}

	/* A pre-authentication message over PROTO_PREAUTH_MSG_MAX. */
	client_begin(&o, 1, CH_ALL);
	msg_startup(&o, "fuzz", "fuzz");
	fz_out_bytes(&o, "p\x00\x00\x30\x00", 5);
	gen_write("client", "preauth-too-long", &o);
}

/* Two clients: a 2-byte length, the first one's bytes, the second one's. */
static void gen_client_two(const char *name, uint8_t flags, uint8_t chunking,
			   const struct fz_out *a, const struct fz_out *b)
{
	static struct fz_out o;

	client_begin(&o, flags | FZ_CLIENT_TWO, chunking);
	fz_out_part(&o, a->buf, a->len);
	fz_out_bytes(&o, b->buf, b->len);
	gen_write("client", name, &o);
}

static void gen_client_pairs(void)
{
	static struct fz_out a, b;

	/* The second one cancels the first one's query (the harness puts the
	 * first one's key into a CancelRequest whose pid and key are 0). */
	a.len = 0;
	msg_startup(&a, "fuzz", "fuzz");
	msg_query(&a, "WAIT");
	b.len = 0;
	proto_build_cancel_request(&g_b, 0, 0);
	gen_take(&b, &g_b);
	gen_client_two("two-cancel", 0, CH_ALL, &a, &b);
	gen_client_two("two-cancel-warm", FZ_CLIENT_WARM, CH_MESSAGES, &a, &b);

	/* ... and a client that is idle, without a server. */
	a.len = 0;
	msg_startup(&a, "fuzz", "fuzz");
	msg_query(&a, "SELECT 1");
	gen_client_two("two-cancel-idle", 0, CH_MESSAGES, &a, &b);

	/* One server per pool: the second client waits for the first one's
	 * transaction, in each pooling mode. */
	a.len = 0;
	msg_startup(&a, "fuzz", "fuzz");
	msg_query(&a, "BEGIN");
	msg_query(&a, "SELECT 1");
	msg_query(&a, "COMMIT");
	msg_empty(&a, PROTO_FE_TERMINATE);
	b.len = 0;
	msg_startup(&b, "fuzz", "fuzz");
	msg_query(&b, "SELECT 2");
	msg_query(&b, "SELECT 3");
	msg_empty(&b, PROTO_FE_TERMINATE);
	gen_client_two("two-transaction", FZ_CLIENT_WARM, CH_MESSAGES, &a, &b);
	gen_client_two("two-transaction-chunks", 0, CH_RANDOM, &a, &b);

	a.len = 0;
	msg_startup(&a, "fuzz", "sess");
	msg_query(&a, "SELECT 1");
	b.len = 0;
	msg_startup(&b, "fuzz", "sess");
	msg_query(&b, "SELECT 2");
	msg_empty(&b, PROTO_FE_TERMINATE);
	gen_client_two("two-session", FZ_CLIENT_WARM, CH_MESSAGES, &a, &b);

	/* The console watching another client. */
	a.len = 0;
	msg_startup(&a, "fuzz", "stmt");
	msg_query(&a, "WAIT");
	b.len = 0;
	msg_startup(&b, "stats", "pgbouncer");
	msg_query(&b, "SHOW CLIENTS");
	msg_query(&b, "SHOW SERVERS");
	msg_query(&b, "SHOW POOLS");
	gen_client_two("two-console", 0, CH_MESSAGES, &a, &b);
}

static void gen_client_admin(void)
{
	static struct fz_out o;
	static const char *const cmds[] = {
		"SHOW HELP", "SHOW VERSION", "SHOW CONFIG", "SHOW DATABASES", "SHOW USERS",
		"SHOW POOLS", "SHOW CLIENTS", "SHOW SERVERS", "SHOW STATS_TOTALS",
		"SHOW STATS_AVERAGES", "SHOW STATS", "SHOW TOTALS", "SHOW LISTS", "SHOW MEM",
		"SHOW STATE", "SHOW PEERS", "SHOW PEER_POOLS", "SHOW DNS_HOSTS",
		"SHOW DNS_ZONES", "SHOW FDS", "SHOW FD_USAGE", "SHOW SATURATION",
		"  show   pools ; ", "PAUSE", "SET verbose = 2", "SHOW NOSUCH", "",
	};
	size_t i;

	client_begin(&o, FZ_CLIENT_WARM, CH_MESSAGES);
	msg_startup(&o, "stats", "pgmux");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		msg_query(&o, cmds[i]);
	msg_extended(&o, "SHOW POOLS");
	msg_empty(&o, PROTO_FE_TERMINATE);
	gen_write("client", "admin", &o);

	client_begin(&o, 0, CH_ALL);
	msg_startup(&o, "fuzz", "pgbouncer");
	msg_query(&o, "SHOW POOLS");
	gen_write("client", "admin-denied", &o);
}

/* ---- proto seeds ---- */

static void proto_begin_case(struct fz_out *o, enum fz_proto_case c)
{
	o->len = 0;
	fz_out_u8(o, (uint8_t)c);
}

static void gen_proto_framing(void)
{
	static struct fz_out o;

	proto_begin_case(&o, FZ_PROTO_HEADER);
	fz_out_u8(&o, 0);
	msg_query(&o, "SELECT 1");
	gen_write("proto", "header-query", &o);
	proto_begin_case(&o, FZ_PROTO_HEADER);
	fz_out_u8(&o, 3);
	proto_build_ready_for_query(&g_b, 'I');
	gen_take(&o, &g_b);
	gen_write("proto", "header-backend", &o);

	proto_begin_case(&o, FZ_PROTO_STARTUP);
	msg_startup(&o, "alice", "appdb");
	gen_write("proto", "startup", &o);
	proto_begin_case(&o, FZ_PROTO_STARTUP);
	msg_untyped(&o, PROTO_SSL_REQUEST_CODE);
	gen_write("proto", "startup-ssl", &o);
	proto_begin_case(&o, FZ_PROTO_STARTUP);
	proto_build_cancel_request(&g_b, 42, 4242);
	gen_take(&o, &g_b);
	gen_write("proto", "startup-cancel", &o);

	/* A client stream: extended protocol then a simple query, framed in
	 * 64-byte windows, chunk seed 0x1234. */
	proto_begin_case(&o, FZ_PROTO_STREAM);
	fz_out_u8(&o, 1 << 2);
	fz_out_u8(&o, 0x12);
	fz_out_u8(&o, 0x34);
	msg_extended(&o, "SELECT $1");
	msg_empty(&o, PROTO_FE_SYNC);
	msg_query(&o, "SELECT 1");
	msg_empty(&o, PROTO_FE_TERMINATE);
	gen_write("proto", "stream-frontend", &o);

	/* A server stream (authed, 16-byte window): a result and an error. */
	proto_begin_case(&o, FZ_PROTO_STREAM);
	fz_out_u8(&o, 3);
	fz_out_u8(&o, 0);
	fz_out_u8(&o, 5);
	{
		static const char *const names[] = { "a" };
		static const char *const values[] = { "1" };

		proto_build_row_description(&g_b, 1, names, NULL);
		proto_build_data_row(&g_b, 1, values);
	}
	proto_build_command_complete(&g_b, "SELECT 1");
	proto_build_error(&g_b, "ERROR", "42601", "syntax error", "near here");
	proto_build_ready_for_query(&g_b, 'E');
	gen_take(&o, &g_b);
	gen_write("proto", "stream-backend", &o);
}

/* One seed per decoder: a message body, without its 5-byte header. */
static void gen_proto_parse(void)
{
	static const char *const mechs[] = { "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", NULL };
	static const char *const names[] = { "auth-sasl", "auth-md5", "parameter-status",
					     "backend-key-data", "ready-for-query", "error",
					     "password", "sasl-initial" };
	static struct fz_out o;
	size_t i, k;

	proto_build_auth_sasl(&g_b, mechs);
	proto_build_auth(&g_b, PROTO_AUTH_MD5, "salt", 4);
	proto_build_parameter_status(&g_b, "server_version", "15.0");
	proto_build_backend_key_data(&g_b, 1, 2);
	proto_build_ready_for_query(&g_b, 'T');
	proto_build_error(&g_b, "FATAL", "57P01", "terminating", NULL);
	proto_build_password(&g_b, "secret");
	proto_build_sasl_initial(&g_b, "SCRAM-SHA-256", "n,,n=,r=abc", 11);
	FZ_CHECK(proto_buf_ok(&g_b));
	for (i = 0, k = 0; i < g_b.len; k++) {
		uint32_t len = (uint32_t)g_b.data[i + 1] << 24 | (uint32_t)g_b.data[i + 2] << 16 |
			       (uint32_t)g_b.data[i + 3] << 8 | g_b.data[i + 4];
		char name[64];

		FZ_CHECK(k < sizeof(names) / sizeof(names[0]));
		proto_begin_case(&o, FZ_PROTO_PARSE);
		fz_out_bytes(&o, g_b.data + i + PROTO_HEADER_SIZE, len - 4);
		snprintf(name, sizeof(name), "parse-%s", names[k]);
		gen_write("proto", name, &o);
		i += (size_t)len + 1;
	}
	proto_buf_reset(&g_b);
}

/*
 * The client side of an exchange that verifies: the server half is run
 * here with pgmux's own SCRAM server, at FZ_SCRAM_MAX_ITERATIONS rounds
 * (the RFC's 4096 would make every run of this seed slow).
 */
static void gen_scram_client(struct fz_out *o)
{
	static const uint8_t salt[16] = "pgmux-fuzz-salt";
	struct scram_secret secret;
	struct scram_client cl;
	struct scram_server sv;
	char first[SCRAM_MSG_MAX], sfirst[SCRAM_MSG_MAX], final[SCRAM_MSG_MAX];
	char sfinal[SCRAM_MSG_MAX];
	size_t first_len, sfirst_len, final_len, sfinal_len;

	memset(&cl, 0, sizeof(cl));
	memset(&sv, 0, sizeof(sv));
	FZ_CHECK(scram_secret_from_password(FZ_SCRAM_PASSWORD, salt, sizeof(salt),
					    FZ_SCRAM_MAX_ITERATIONS, &secret) == SCRAM_OK);
	FZ_CHECK(scram_client_first(&cl, FZ_SCRAM_PASSWORD, FZ_SCRAM_CLIENT_NONCE, first,
				    sizeof(first), &first_len) == SCRAM_OK);
	FZ_CHECK(scram_server_first(&sv, &secret, FZ_SCRAM_SERVER_NONCE, (uint8_t *)first,
				    first_len, sfirst, sizeof(sfirst), &sfirst_len) == SCRAM_OK);
	FZ_CHECK(scram_client_final(&cl, (uint8_t *)sfirst, sfirst_len, final, sizeof(final),
				    &final_len) == SCRAM_OK);
	FZ_CHECK(scram_server_final(&sv, (uint8_t *)final, final_len, sfinal, sizeof(sfinal),
				    &sfinal_len) == SCRAM_OK);
	proto_begin_case(o, FZ_PROTO_SCRAM_CLIENT);
	fz_out_u8(o, 0xff);
	fz_out_str(o, FZ_SCRAM_PASSWORD);
	fz_out_part(o, sfirst, sfirst_len);
	fz_out_bytes(o, sfinal, sfinal_len);
	gen_write("proto", "scram-client", o);
}

/* RFC 7677 section 3, server side; then the client side of our own. */
static void gen_proto_scram(void)
{
	static struct fz_out o;

	proto_begin_case(&o, FZ_PROTO_SCRAM_SERVER);
	fz_out_u8(&o, 0xff);
	fz_out_str(&o, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
	gen_text(&o, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		     "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
	gen_write("proto", "scram-server", &o);

	gen_scram_client(&o);

	proto_begin_case(&o, FZ_PROTO_SECRET);
	gen_text(&o, "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
		     "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		     "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
	gen_write("proto", "secret-scram", &o);

	proto_begin_case(&o, FZ_PROTO_MD5);
	fz_out_str(&o, "alicepass");
	fz_out_str(&o, "alice");
	fz_out_str(&o, "md5f4c9e4b1c2d3a4b5c6d7e8f9a0b1c2d3");
	fz_out_bytes(&o, "salt", 4);
	gen_write("proto", "md5", &o);
}

static void gen_proto_misc(void)
{
	static struct fz_out o;
	static const uint8_t ops[] = { 0, 1, 2, 3, 4, 5, 6 | (3 << 3), 7 | (31 << 3), 5 };

	proto_begin_case(&o, FZ_PROTO_CURSOR);
	fz_out_part(&o, ops, sizeof(ops));
	fz_out_bytes(&o, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c" "abc\0def", 19);
	gen_write("proto", "cursor", &o);

	proto_begin_case(&o, FZ_PROTO_BUILD_ERROR);
	fz_out_str(&o, "FATAL");
	fz_out_str(&o, "08P01");
	fz_out_str(&o, "invalid startup packet");
	fz_out_str(&o, "detail");
	gen_write("proto", "build-error", &o);

	proto_begin_case(&o, FZ_PROTO_BUILD_STARTUP);
	fz_out_u8(&o, 3);
	fz_out_str(&o, "user");
	fz_out_str(&o, "alice");
	fz_out_str(&o, "database");
	fz_out_str(&o, "appdb");
	fz_out_str(&o, "options");
	fz_out_str(&o, "-c search_path=x");
	gen_write("proto", "build-startup", &o);
}

int main(int argc, char **argv)
{
	char path[1024];

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	g_dir = argv[1];
	gen_mkdir(g_dir);
	snprintf(path, sizeof(path), "%s/proto", g_dir);
	gen_mkdir(path);
	snprintf(path, sizeof(path), "%s/client", g_dir);
	gen_mkdir(path);
	proto_buf_init(&g_b, 1u << 20);

	gen_proto_framing();
	gen_proto_parse();
	gen_proto_scram();
	gen_proto_misc();
	gen_client_traffic();
	gen_client_startup();
	gen_client_auth();
	gen_client_admin();
	gen_client_pairs();

	proto_buf_free(&g_b);
	return 0;
}
