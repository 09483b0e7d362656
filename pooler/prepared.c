/*
 * prepared.c: protocol-level named prepared statements across pooled
 * servers (see prepared.h for the scheme). Owns the shared statements
 * (g_pooler.prep), each tracking client's names (client.prep) and each
 * server's prepared set and answer queue (server.prep). client.c and
 * server.c call in once per message; everything else stays here.
 */
#include "prepared.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "log.h"
#include "pool.h"
#include "pooler.h"
#include "proto.h"
#include "proto_parse.h"
#include "server.h"
#include "util.h"

/* A portal no client names: Describe of it fails (34000) with no side
 * effect, which is how pgmux makes a server fail at a chosen point. */
#define PREP_FAIL_PORTAL "pgmux\001refused"

/* ---- the client's side ---- */

bool prep_enabled(const struct pool *p)
{
	return p->mode != POOL_MODE_SESSION && g_pooler.cfg->max_prepared_statements > 0;
}

void prep_client_maybe_start(struct client *c)
{
	/* Only from a point where the server owes nothing: answers already
	 * under way would have no entries. */
	if (c->prep || !c->pool || !prep_enabled(c->pool) || c->outstanding > 0 || c->unsynced ||
	    c->copy_in || c->conn.ps.body_left > 0)
		return;
	c->prep = prep_client_new();
}

void prep_client_closed(struct client *c)
{
	prep_client_free(c->prep);
	c->prep = NULL;
}

/* Names one client may hold. */
static uint64_t prep_client_limit(void)
{
	uint64_t n = (uint64_t)g_pooler.cfg->max_prepared_statements * PREP_CLIENT_FACTOR;

	return n < PREP_CLIENT_MIN ? PREP_CLIENT_MIN : n;
}

enum prep_idle prep_client_idle(struct client *c)
{
	struct iobuf *b = c->conn.rbuf;
	const uint8_t *p = b->data + b->start;
	size_t len = iobuf_len(b);
	struct proto_frame f, sync;
	const char *name;
	const uint8_t *rest;
	size_t name_len, rest_len;
	struct prep_stmt *st;
	struct proto_buf out;
	int rc;

	prep_client_maybe_start(c);
	if (!c->prep || c->tx_status != PROTO_TX_IDLE ||
	    proto_frame_header(p, len, PROTO_DIR_FRONTEND, true, &f) != PROTO_FRAME_OK ||
	    f.type != PROTO_FE_PARSE)
		return PREP_IDLE_NO;
	if (len < f.total + PROTO_HEADER_SIZE)
		return f.total + PROTO_HEADER_SIZE <= iobuf_size() ? PREP_IDLE_WAIT : PREP_IDLE_NO;
	if (proto_frame_header(p + f.total, len - f.total, PROTO_DIR_FRONTEND, true, &sync) !=
		    PROTO_FRAME_OK ||
	    sync.type != PROTO_FE_SYNC ||
	    !proto_parse_parse(p + PROTO_HEADER_SIZE, f.len - 4, &name, &name_len, &rest,
			       &rest_len) ||
	    !name[0] || prep_name_find(c->prep, name) || c->prep->count >= prep_client_limit())
		return PREP_IDLE_NO;
	st = prep_stmt_find(&g_pooler.prep, rest, rest_len);
	if (!st || !st->proven)
		return PREP_IDLE_NO;
	(void)prep_name_add(c->prep, name, st);
	c->pool->stats.client_parse_count++;
	c->pool->stats.bytes_received += f.total + sync.total;
	b->start += (uint32_t)(f.total + sync.total);
	proto_buf_init(&out, 64);
	proto_build_parse_complete(&out);
	proto_build_ready_for_query(&out, PROTO_TX_IDLE);
	rc = conn_send_buf(&c->conn, &out);
	proto_buf_free(&out);
	if (rc < 0) {
		client_close(c, "could not send to client");
		return PREP_IDLE_CLOSED;
	}
	return PREP_IDLE_DONE;
}

/* Everything one client message needs. */
struct prep_ctx {
	struct client *c;
	struct server *s;
	struct prep_server *ps;
	struct prep_client *pc;
	const struct proto_msg *m;
	const uint8_t *raw; /* the message's first byte */
	size_t avail;       /* bytes of it at hand */
	size_t out_base;    /* to_server's length before this message */
};

static struct prep_server *prep_server_get(struct server *s)
{
	if (!s->prep)
		s->prep = prep_server_new();
	return s->prep;
}

/* Keeps bytes sent for the segment, while it can still be replayed. */
static void prep_rec(struct prep_server *ps, const uint8_t *p, size_t n)
{
	if (ps->seg != PREP_SEG_REC)
		return;
	if (ps->replay.len + n > PREP_REPLAY_MAX) {
		ps->seg = PREP_SEG_OFF;
		return;
	}
	proto_put_bytes(&ps->replay, p, n);
}

static void prep_rec_msg(struct prep_ctx *x)
{
	if (!x->m->whole)
		x->ps->seg = PREP_SEG_OFF;
	else
		prep_rec(x->ps, x->raw, x->m->total);
}

/* A segment that starts with nothing owed, outside a transaction block,
 * can be sent again whole if it fails for a stale plan. */
static void prep_seg_begin(struct prep_ctx *x)
{
	struct prep_server *ps = x->ps;
	struct client *c = x->c;

	if (ps->q_len == 0 && c->tx_status == PROTO_TX_IDLE && c->outstanding == 0 &&
	    !c->unsynced && c->conn.ps.body_left == 0) {
		ps->seg = PREP_SEG_REC;
		proto_buf_reset(&ps->replay);
		ps->seg_first = true;
		ps->seg_describe = false;
		ps->seg_retried = false;
	} else if (ps->seg == PREP_SEG_READY) {
		ps->seg = PREP_SEG_OFF; /* bytes now follow its Sync */
	}
}

static void prep_push(struct prep_server *ps, struct prep_entry *e)
{
	if (ps->seg == PREP_SEG_REC) {
		if (e->act != PREP_A_FORWARD || e->undo != PREP_U_NONE) {
			ps->seg = PREP_SEG_OFF;
		} else if (ps->seg_first) {
			e->flags |= PREP_F_SEG_FIRST;
			ps->seg_first = false;
		}
	}
	prep_q_push(ps, e);
	prep_drain_synth(ps);
}

static void prep_push_plain(struct prep_server *ps, enum prep_kind kind, uint8_t what)
{
	struct prep_entry e = { .kind = (uint8_t)kind, .act = PREP_A_FORWARD, .what = what };

	prep_push(ps, &e);
}

/* An entry that holds a reference to st and/or nm. */
static void prep_push_ref(struct prep_server *ps, enum prep_act act, uint8_t what,
			  uint8_t expect, enum prep_undo undo, struct prep_stmt *st,
			  struct prep_name *nm)
{
	struct prep_entry e = {
		.kind = PREP_K_EXT,
		.act = (uint8_t)act,
		.what = what,
		.expect = expect,
		.undo = (uint8_t)undo,
		.stmt = st,
		.name = nm,
	};

	if (st)
		prep_stmt_ref(st);
	if (nm)
		nm->refs++;
	prep_push(ps, &e);
}

static void prep_count_server_parse(struct prep_ctx *x)
{
	x->c->pool->stats.server_parse_count++;
}

/* Makes room in the server's set for st: closes least recently used ones. */
static void prep_make_room(struct prep_ctx *x, struct prep_stmt *st)
{
	struct prep_server *ps = x->ps;
	uint32_t limit = (uint32_t)g_pooler.cfg->max_prepared_statements;
	struct prep_stmt *v;

	if (prep_set_find(ps, st))
		return; /* re-preparing it takes no room */
	while ((v = prep_set_victim(ps, limit)) != NULL) {
		proto_build_close(&ps->to_server, 'S', v->name);
		/* The entry keeps v alive: a skipped Close puts it back. */
		prep_push_ref(ps, PREP_A_SWALLOW, PROTO_FE_CLOSE, PROTO_BE_CLOSE_COMPLETE,
			      PREP_U_EVICTED, v, NULL);
		prep_set_remove(ps, v);
	}
}

/*
 * Makes sure the server has st before a message that uses it. A Close
 * goes first whenever pgmux prepares, so a server that still has a copy
 * pgmux gave up on (DISCARD seen, a stale plan) never answers "already
 * exists".
 */
static void prep_ensure(struct prep_ctx *x, struct prep_stmt *st)
{
	struct prep_server *ps = x->ps;
	struct prep_sstmt *e = prep_set_find(ps, st);

	if (e && prep_set_valid(ps, e)) {
		prep_set_touch(ps, e);
		return;
	}
	prep_make_room(x, st);
	proto_build_close(&ps->to_server, 'S', st->name);
	prep_push_ref(ps, PREP_A_SWALLOW, PROTO_FE_CLOSE, PROTO_BE_CLOSE_COMPLETE, PREP_U_NONE,
		      NULL, NULL);
	proto_build_parse(&ps->to_server, st->name, st->body, st->len);
	prep_push_ref(ps, PREP_A_SWALLOW, PROTO_FE_PARSE, PROTO_BE_PARSE_COMPLETE, PREP_U_PARSED,
		      st, NULL);
	prep_set_add(ps, st);
	prep_count_server_parse(x);
}

/*
 * Refuses one message the way PostgreSQL would, with an ErrorResponse in
 * its place: the server is made to fail at the same point (Describe of a
 * portal nobody has), so it skips to Sync and aborts a transaction block
 * exactly as it would have, and pgmux sends its own error instead of the
 * server's.
 */
static enum prep_msg prep_refuse(struct prep_ctx *x, size_t *consume, const char *sqlstate,
				 const char *msg)
{
	struct prep_entry e = { .kind = PREP_K_EXT, .act = PREP_A_REPLACE,
				.what = PROTO_FE_DESCRIBE };
	struct proto_buf b;

	proto_buf_init(&b, 4096);
	proto_build_error(&b, "ERROR", sqlstate, msg, NULL);
	e.synth = proto_buf_steal(&b, &e.synth_len);
	proto_buf_free(&b);
	proto_build_describe(&x->ps->to_server, 'P', PREP_FAIL_PORTAL);
	prep_push(x->ps, &e);
	*consume = x->m->total;
	return PREP_MSG_REWRITE;
}

/*
 * The client waits for the server's answers. PostgreSQL holds them until a
 * Sync or Flush, and the client's next one may sit behind the message
 * that waits: pgmux asks for them itself (Flush has no answer).
 */
static enum prep_msg prep_stall(struct prep_ctx *x)
{
	x->pc->stalled = true;
	proto_build_flush(&x->ps->to_server);
	return PREP_MSG_FULL;
}

/*
 * A named Parse that cannot be whole in the read buffer: gathered on the
 * heap (prep_client_collect), or, past PREP_STMT_MAX, dropped as it comes
 * and refused once it has all come.
 */
static enum prep_msg prep_collect_begin(struct prep_ctx *x, size_t *consume)
{
	struct prep_client *pc = x->pc;

	proto_buf_reset(&pc->big);
	pc->big_refused = x->m->total > PREP_STMT_MAX;
	if (!pc->big_refused)
		proto_put_bytes(&pc->big, x->raw, x->avail);
	pc->big_left = (uint32_t)(x->m->total - x->avail);
	pc->big_ready = false;
	*consume = x->avail;
	return PREP_MSG_COLLECT;
}

static enum prep_msg prep_pass(struct prep_ctx *x, uint8_t what)
{
	prep_push_plain(x->ps, PREP_K_EXT, what);
	prep_rec_msg(x);
	return PREP_MSG_PASS;
}

static enum prep_msg prep_on_parse(struct prep_ctx *x, size_t *consume, const char **why)
{
	const struct proto_msg *m = x->m;
	const char *name;
	const uint8_t *rest;
	size_t name_len, rest_len;
	struct prep_stmt *st;
	struct prep_name *nm;
	struct prep_sstmt *e;
	char msg[256];

	if (m->body_len > 0 && x->avail <= PROTO_HEADER_SIZE)
		return PREP_MSG_WAIT; /* the name's first byte decides */
	if (m->body_len == 0 || x->raw[PROTO_HEADER_SIZE] == '\0') {
		/* The unnamed statement passes through; its text may still
		 * drop named ones when it runs. */
		if (m->whole && m->body_len > 1 &&
		    prep_sql_may_deallocate(m->body + 1, m->body_len - 1))
			x->ps->gen++;
		prep_count_server_parse(x);
		return prep_pass(x, PROTO_FE_PARSE);
	}
	if (!m->whole)
		return m->total <= iobuf_size() ? PREP_MSG_WAIT : prep_collect_begin(x, consume);
	if (!proto_parse_parse(m->body, m->body_len, &name, &name_len, &rest, &rest_len)) {
		prep_count_server_parse(x); /* PostgreSQL says what is wrong with it */
		return prep_pass(x, PROTO_FE_PARSE);
	}
	if ((nm = prep_name_find(x->pc, name)) != NULL) {
		/* PostgreSQL says 42P05 unless the Parse that made the name
		 * fails: while its answer is on the way, wait for it. */
		if (nm->pending)
			return prep_stall(x);
		snprintf(msg, sizeof(msg), "prepared statement \"%.128s\" already exists", name);
		return prep_refuse(x, consume, "42P05", msg);
	}
	if (x->pc->bytes + rest_len > PREP_CLIENT_BYTES) {
		snprintf(msg, sizeof(msg),
			 "prepared statements on this connection exceed %u MB of text",
			 PREP_CLIENT_BYTES >> 20);
		return prep_refuse(x, consume, "53400", msg);
	}
	if (x->pc->count >= prep_client_limit()) {
		snprintf(msg, sizeof(msg),
			 "too many prepared statements on this connection (%u; pgmux allows %d "
			 "times max_prepared_statements)",
			 x->pc->count, PREP_CLIENT_FACTOR);
		return prep_refuse(x, consume, "53400", msg);
	}
	st = prep_stmt_get(&g_pooler.prep, rest, rest_len);
	nm = prep_name_add(x->pc, name, st);
	nm->pending = true;
	prep_stmt_unref(st); /* the name holds it now */
	*consume = m->total;
	e = prep_set_find(x->ps, st);
	if (e && prep_set_valid(x->ps, e)) {
		/* The server has it already: nothing to send, answer in order. */
		prep_set_touch(x->ps, e);
		prep_push_ref(x->ps, PREP_A_SYNTH, PROTO_FE_PARSE, PROTO_BE_PARSE_COMPLETE,
			      PREP_U_NAMED, NULL, nm);
		return PREP_MSG_REWRITE;
	}
	prep_make_room(x, st);
	proto_build_close(&x->ps->to_server, 'S', st->name);
	prep_push_ref(x->ps, PREP_A_SWALLOW, PROTO_FE_CLOSE, PROTO_BE_CLOSE_COMPLETE, PREP_U_NONE,
		      NULL, NULL);
	proto_build_parse(&x->ps->to_server, st->name, st->body, st->len);
	prep_push_ref(x->ps, PREP_A_FORWARD, PROTO_FE_PARSE, 0, PREP_U_PARSED, st, nm);
	prep_set_add(x->ps, st);
	prep_count_server_parse(x);
	return PREP_MSG_REWRITE;
}

/* The bytes the server gets for this message are kept for a replay. */
static void prep_rec_out(struct prep_ctx *x)
{
	if (!x->m->whole)
		x->ps->seg = PREP_SEG_OFF;
	else
		prep_rec(x->ps, x->ps->to_server.data + x->out_base,
			 x->ps->to_server.len - x->out_base);
}

static enum prep_msg prep_on_bind(struct prep_ctx *x, size_t *consume, const char **why)
{
	const struct proto_msg *m = x->m;
	struct proto_buf *out = &x->ps->to_server;
	const char *portal;
	const char *sname;
	size_t head;
	struct prep_name *nm;
	struct prep_stmt *st;
	enum proto_head_rc rc;
	size_t plen, tail;

	rc = proto_parse_bind_head(x->raw + PROTO_HEADER_SIZE, x->avail - PROTO_HEADER_SIZE,
				   m->body_len, &portal, &sname, &head);
	if (rc == PROTO_HEAD_NEED_MORE) {
		/* The names come first; only names longer than the whole
		 * buffer cannot be read. */
		*why = "Bind with names longer than pkt_buf";
		return x->avail >= iobuf_size() ? PREP_MSG_FATAL : PREP_MSG_WAIT;
	}
	if (rc == PROTO_HEAD_BAD || !sname[0] || !(nm = prep_name_find(x->pc, sname)))
		return prep_pass(x, PROTO_FE_BIND); /* PostgreSQL answers for it */
	st = nm->stmt;
	prep_ensure(x, st);
	/* New head, then the rest of the message as the client sent it (all
	 * of it here, or streamed after this when it is larger). */
	plen = strlen(portal) + 1;
	tail = m->body_len - head;
	proto_put_u8(out, PROTO_FE_BIND);
	proto_put_u32(out, (uint32_t)(4 + plen + strlen(st->name) + 1 + tail));
	proto_put_bytes(out, portal, plen);
	proto_put_cstr(out, st->name);
	if (m->whole)
		proto_put_bytes(out, x->raw + PROTO_HEADER_SIZE + head, tail);
	prep_push_ref(x->ps, PREP_A_FORWARD, PROTO_FE_BIND, 0, PREP_U_NONE, st, NULL);
	prep_rec_out(x);
	if (st->may_deallocate)
		x->ps->gen++; /* once it runs, the server may have none left */
	*consume = m->whole ? m->total : PROTO_HEADER_SIZE + head;
	return PREP_MSG_REWRITE;
}

static enum prep_msg prep_on_describe(struct prep_ctx *x, size_t *consume)
{
	const struct proto_msg *m = x->m;
	uint8_t kind;
	const char *name;
	struct prep_name *nm;

	if (!m->whole && m->total <= iobuf_size())
		return PREP_MSG_WAIT;
	if (!m->whole || !proto_parse_target(m->body, m->body_len, &kind, &name))
		return prep_pass(x, PROTO_FE_DESCRIBE);
	x->ps->seg_describe = true;
	if (kind != 'S' || !name[0] || !(nm = prep_name_find(x->pc, name)))
		return prep_pass(x, PROTO_FE_DESCRIBE);
	prep_ensure(x, nm->stmt);
	proto_build_describe(&x->ps->to_server, 'S', nm->stmt->name);
	prep_push_ref(x->ps, PREP_A_FORWARD, PROTO_FE_DESCRIBE, 0, PREP_U_NONE, nm->stmt, NULL);
	prep_rec_out(x);
	*consume = m->total;
	return PREP_MSG_REWRITE;
}

/* Close of a mapped name: only the client's name goes; the server keeps
 * the statement for others (the LRU closes it when room is needed). */
static enum prep_msg prep_on_close(struct prep_ctx *x, size_t *consume)
{
	const struct proto_msg *m = x->m;
	uint8_t kind;
	const char *name;
	struct prep_name *nm;

	if (!m->whole && m->total <= iobuf_size())
		return PREP_MSG_WAIT;
	if (!m->whole || !proto_parse_target(m->body, m->body_len, &kind, &name) ||
	    kind != 'S' || !name[0] || !(nm = prep_name_find(x->pc, name)))
		return prep_pass(x, PROTO_FE_CLOSE);
	prep_push_ref(x->ps, PREP_A_SYNTH, PROTO_FE_CLOSE, PROTO_BE_CLOSE_COMPLETE, PREP_U_CLOSED,
		      NULL, nm);
	/* The entry's reference keeps it for a revival if it is skipped;
	 * pushed first, since a SYNTH at the head is answered at once. */
	prep_name_kill(x->pc, nm);
	*consume = m->total;
	return PREP_MSG_REWRITE;
}

static enum prep_msg prep_on_query(struct prep_ctx *x)
{
	const struct proto_msg *m = x->m;

	/* Only a Query that may still be DEALLOCATE ALL or DISCARD ALL waits
	 * to be whole; any other goes on in pieces, as without pgmux. */
	if (!m->whole && m->total <= iobuf_size() &&
	    prep_sql_may_clear(x->raw + PROTO_HEADER_SIZE, x->avail - PROTO_HEADER_SIZE))
		return PREP_MSG_WAIT;
	if (m->whole) {
		if (prep_sql_clears_all(m->body, m->body_len))
			prep_names_clear(x->pc); /* as PgBouncer 1.21+ */
		if (prep_sql_may_deallocate(m->body, m->body_len))
			x->ps->gen++;
	}
	x->ps->seg = PREP_SEG_OFF;
	prep_push_plain(x->ps, PREP_K_QUERY, m->type);
	return PREP_MSG_PASS;
}

/* After an error PostgreSQL ignores everything up to Sync: so does pgmux. */
static enum prep_msg prep_while_skipping(struct prep_ctx *x)
{
	x->ps->seg = PREP_SEG_OFF;
	if (x->m->type == PROTO_FE_SYNC && !x->c->copy_in) {
		x->ps->skipping = false;
		prep_push_plain(x->ps, PREP_K_SYNC, PROTO_FE_SYNC);
	}
	return PREP_MSG_PASS;
}

enum prep_msg prep_client_message(struct client *c, const struct proto_msg *m,
				  const uint8_t *raw, size_t avail, size_t *consume,
				  const char **why)
{
	struct prep_ctx x = { .c = c, .s = c->server, .pc = c->prep, .m = m, .raw = raw,
			      .avail = avail };

	*consume = 0;
	x.ps = prep_server_get(c->server);
	x.out_base = x.ps->to_server.len;
	if (x.ps->q_len >= PREP_QUEUE_MAX)
		return prep_stall(&x);
	if (x.ps->skipping)
		return prep_while_skipping(&x);
	prep_seg_begin(&x);
	switch (m->type) {
	case PROTO_FE_PARSE:
		return prep_on_parse(&x, consume, why);
	case PROTO_FE_BIND:
		return prep_on_bind(&x, consume, why);
	case PROTO_FE_DESCRIBE:
		return prep_on_describe(&x, consume);
	case PROTO_FE_CLOSE:
		return prep_on_close(&x, consume);
	case PROTO_FE_EXECUTE:
		return prep_pass(&x, PROTO_FE_EXECUTE);
	case PROTO_FE_SYNC:
		if (c->copy_in) { /* PostgreSQL ignores it during COPY FROM STDIN */
			x.ps->seg = PREP_SEG_OFF;
			return PREP_MSG_PASS;
		}
		prep_push_plain(x.ps, PREP_K_SYNC, PROTO_FE_SYNC);
		prep_rec_msg(&x);
		if (x.ps->seg == PREP_SEG_REC)
			x.ps->seg = PREP_SEG_READY;
		return PREP_MSG_PASS;
	case PROTO_FE_FLUSH:
		prep_rec_msg(&x);
		return PREP_MSG_PASS;
	case PROTO_FE_QUERY:
		return prep_on_query(&x);
	case PROTO_FE_FUNCTION_CALL:
		x.ps->seg = PREP_SEG_OFF;
		prep_push_plain(x.ps, PREP_K_QUERY, m->type);
		return PREP_MSG_PASS;
	default:
		x.ps->seg = PREP_SEG_OFF; /* COPY data: no answers of its own */
		return PREP_MSG_PASS;
	}
}

bool prep_client_collecting(const struct client *c)
{
	return c->prep && (c->prep->big_left > 0 || c->prep->big_ready);
}

enum prep_msg prep_client_collect(struct client *c, const uint8_t *p, size_t n, size_t *took)
{
	struct prep_client *pc = c->prep;
	struct proto_msg m = { .type = PROTO_FE_PARSE, .whole = true };
	struct prep_ctx x = { .c = c, .s = c->server, .pc = pc, .m = &m };
	const char *why = "";
	size_t consume = 0;
	enum prep_msg rc;
	char msg[160];

	*took = n < pc->big_left ? n : pc->big_left;
	if (!pc->big_refused)
		proto_put_bytes(&pc->big, p, *took);
	pc->big_left -= (uint32_t)*took;
	if (pc->big_left > 0)
		return PREP_MSG_WAIT;
	pc->big_ready = true;
	x.ps = prep_server_get(c->server);
	x.out_base = x.ps->to_server.len;
	if (x.ps->q_len >= PREP_QUEUE_MAX)
		return prep_stall(&x);
	if (x.ps->skipping) {
		/* Ignored by PostgreSQL: nothing to send or record. */
		pc->big_ready = false;
		proto_buf_free(&pc->big);
		return PREP_MSG_REWRITE;
	}
	prep_seg_begin(&x);
	if (pc->big_refused) {
		pc->big_ready = false;
		m.total = 0;
		snprintf(msg, sizeof(msg), "prepared statement too large for pgmux to keep "
			 "(more than %u bytes)", PREP_STMT_MAX);
		(void)prep_refuse(&x, &consume, "54000", msg);
		return PREP_MSG_REWRITE;
	}
	m.len = (uint32_t)pc->big.len - 1;
	m.total = pc->big.len;
	m.body = pc->big.data + PROTO_HEADER_SIZE;
	m.body_len = pc->big.len - PROTO_HEADER_SIZE;
	x.raw = pc->big.data;
	x.avail = pc->big.len;
	rc = prep_on_parse(&x, &consume, &why);
	if (rc == PREP_MSG_FULL)
		return rc; /* kept: handled again when the client resumes */
	pc->big_ready = false;
	proto_buf_free(&pc->big);
	if (rc == PREP_MSG_PASS) {
		/* Malformed (PostgreSQL says how) or unnamed: sent as it came. */
		proto_put_bytes(&x.ps->to_server, x.raw, x.avail);
		return PREP_MSG_REWRITE;
	}
	return rc;
}

/* ---- the server's side ---- */

/*
 * 0A000 "cached plan must not change result type" on the first message of
 * a segment that began outside a transaction block and has all been sent:
 * nothing of it has reached the client and its implicit transaction rolls
 * back, so pgmux prepares the statement again and sends the segment again.
 * Only when the segment asks for a row description (libpq's
 * PQexecPrepared does), since a client that kept an old one would read the
 * new rows wrongly.
 */
static bool prep_can_retry(struct server *s, const char *sqlstate)
{
	struct prep_server *ps = s->prep;
	struct prep_entry *h = prep_q_head(ps);
	struct prep_entry *t;

	if (!h || !sqlstate || strcmp(sqlstate, "0A000") != 0 || h->what != PROTO_FE_BIND ||
	    !h->stmt || h->act != PREP_A_FORWARD || !(h->flags & PREP_F_SEG_FIRST))
		return false;
	if (ps->seg != PREP_SEG_READY || !ps->seg_describe || ps->seg_retried || ps->skipping ||
	    s->client->conn.ps.body_left > 0)
		return false;
	t = prep_q_at(ps, ps->q_len - 1);
	return t->kind == PREP_K_SYNC && t->count == 1;
}

/* Entries for the messages of a replayed segment, from its bytes. */
static void prep_push_replay(struct prep_server *ps)
{
	size_t pos = 0;

	while (pos < ps->replay.len) {
		struct proto_frame f;

		if (proto_frame_header(ps->replay.data + pos, ps->replay.len - pos,
				       PROTO_DIR_FRONTEND, true, &f) != PROTO_FRAME_OK)
			break;
		if (f.type == PROTO_FE_SYNC)
			prep_push_plain(ps, PREP_K_SYNC, f.type);
		else if (f.type != PROTO_FE_FLUSH)
			prep_push_plain(ps, PREP_K_EXT, f.type);
		pos += f.total;
	}
}

static enum prep_answer prep_retry(struct server *s)
{
	struct prep_server *ps = s->prep;
	struct prep_stmt *st = prep_q_head(ps)->stmt;

	prep_stmt_ref(st);
	prep_q_discard(ps); /* the failed Bind: its error is dropped */
	while (prep_q_head(ps)->kind != PREP_K_SYNC)
		prep_q_discard(ps); /* skipped by the server */
	prep_q_head(ps)->act = PREP_A_SWALLOW; /* its ReadyForQuery too */
	prep_q_head(ps)->expect = PROTO_BE_READY_FOR_QUERY;
	proto_build_close(&ps->to_server, 'S', st->name);
	prep_push_ref(ps, PREP_A_SWALLOW, PROTO_FE_CLOSE, PROTO_BE_CLOSE_COMPLETE, PREP_U_NONE,
		      NULL, NULL);
	proto_build_parse(&ps->to_server, st->name, st->body, st->len);
	prep_push_ref(ps, PREP_A_SWALLOW, PROTO_FE_PARSE, PROTO_BE_PARSE_COMPLETE, PREP_U_PARSED,
		      st, NULL);
	prep_set_add(ps, st);
	proto_put_bytes(&ps->to_server, ps->replay.data, ps->replay.len);
	prep_push_replay(ps);
	ps->seg_retried = true;
	s->pool->stats.server_parse_count++;
	{
		char ident[200];

		server_ident(s, ident, sizeof(ident));
		log_msg(LOG_LVL_LOG,
			"%s: %s: cached plan must not change result type: prepared again, "
			"retried",
			ident, st->name);
	}
	prep_stmt_unref(st);
	return PREP_ANS_DROP;
}

/* Answers pgmux may drop must be whole before anything is decided. */
static bool prep_needs_whole(const struct prep_server *ps, uint8_t type)
{
	switch (type) {
	case PROTO_BE_ERROR_RESPONSE:
	case PROTO_BE_PARSE_COMPLETE:
	case PROTO_BE_CLOSE_COMPLETE:
	case PROTO_BE_READY_FOR_QUERY:
		return ps->q_len > 0;
	default:
		return false;
	}
}

enum prep_answer prep_server_message(struct server *s, const struct proto_msg *m,
				     const char **why)
{
	struct prep_server *ps = s->prep;
	struct client *c = s->client;
	struct proto_error_fields ef;
	const char *sqlstate = NULL;
	enum prep_answer a;

	if (!ps || !c || !c->prep)
		return PREP_ANS_PASS;
	if (!m->whole && prep_needs_whole(ps, m->type)) {
		if (m->total <= iobuf_size())
			return PREP_ANS_WAIT;
		if (m->type != PROTO_BE_ERROR_RESPONSE) {
			*why = "oversized answer to a prepared-statement message";
			return PREP_ANS_BROKEN;
		}
	}
	if (m->type == PROTO_BE_COMMAND_COMPLETE && m->whole)
		prep_server_note_complete(s, m->body, m->body_len);
	if (m->type == PROTO_BE_ERROR_RESPONSE && m->whole &&
	    proto_parse_error(m->body, m->body_len, &ef)) {
		sqlstate = ef.sqlstate;
		if (prep_can_retry(s, sqlstate))
			return prep_retry(s);
	}
	a = prep_answer(ps, c->prep, m->type, sqlstate);
	if (a == PREP_ANS_BROKEN)
		*why = "server answer out of step with pgmux's prepared-statement queue";
	return a;
}

bool prep_has_output(const struct server *s)
{
	return s->prep && (s->prep->to_client.len > 0 || s->prep->to_server.len > 0);
}

size_t prep_output_to_server(const struct server *s)
{
	return s->prep ? s->prep->to_server.len : 0;
}

void prep_append_server(struct server *s, const uint8_t *p, size_t n)
{
	proto_put_bytes(&s->prep->to_server, p, n);
}

/* Large buffers are not kept once sent: most servers need a few bytes. */
static void prep_trim(struct proto_buf *b)
{
	if (b->len == 0 && b->cap > 4096)
		proto_buf_free(b);
}

int prep_send_output(struct server *s, bool *answered)
{
	struct prep_server *ps = s->prep;
	int rc = 0;

	if (answered)
		*answered = ps && ps->to_client.len > 0;
	if (!ps)
		return 0;
	if (ps->to_server.len > 0 && conn_send_buf(&s->conn, &ps->to_server) < 0)
		rc = -1;
	proto_buf_reset(&ps->to_server);
	if (rc == 0 && ps->to_client.len > 0 && s->client &&
	    conn_send_buf(&s->client->conn, &ps->to_client) < 0)
		rc = 1;
	proto_buf_reset(&ps->to_client);
	prep_trim(&ps->to_server);
	prep_trim(&ps->to_client);
	return rc;
}

bool prep_server_quiet(const struct server *s)
{
	return !s->prep || (s->prep->q_len == 0 && !s->prep->skipping && !prep_has_output(s));
}

void prep_server_linked(struct server *s)
{
	if (s->prep)
		s->prep->epoch++;
}

/* "DISCARD ALL" and "DEALLOCATE ALL" drop every statement of the session. */
void prep_server_note_complete(struct server *s, const uint8_t *body, size_t len)
{
	if (!s->prep)
		return;
	while (len > 0 && body[len - 1] == '\0')
		len--;
	if ((len == 11 && strncasecmp((const char *)body, "DISCARD ALL", 11) == 0) ||
	    (len == 14 && strncasecmp((const char *)body, "DEALLOCATE ALL", 14) == 0))
		s->prep->gen++;
}

void prep_server_closed(struct server *s)
{
	prep_server_free(s->prep);
	s->prep = NULL;
}

void prep_kick_client(struct client *c)
{
	if (!c || !c->prep || !c->prep->stalled || c->state == CLIENT_CLOSED)
		return;
	/* A full queue must drain to half first; a wait for one answer
	 * (a name still pending) just tries again. */
	if (c->server && c->server->prep && c->server->prep->q_len >= PREP_QUEUE_MAX / 2)
		return;
	c->prep->stalled = false;
	conn_unblock(&c->conn);
	(void)client_resume(c);
}

uint32_t prep_client_count(const struct client *c)
{
	return c->prep ? c->prep->count : 0;
}

uint32_t prep_server_count(const struct server *s)
{
	return s->prep ? prep_set_count(s->prep) : 0;
}

uint32_t prep_server_entries(void)
{
	return g_pooler.prep.server_entries;
}
