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
/* pgmux's own bytes per direction and server, at most. */
#define PREP_OUT_MAX (4u << 20)

/* ---- shared statements ---- */

uint64_t prep_hash(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Case-insensitive search for a lower-case word in untrusted bytes. */
static bool prep_mentions(const uint8_t *s, size_t len, const char *word)
{
	size_t wl = strlen(word);

	for (size_t i = 0; i + wl <= len; i++) {
		if (strncasecmp((const char *)s + i, word, wl) == 0)
			return true;
	}
	return false;
}

bool prep_sql_may_deallocate(const uint8_t *sql, size_t len)
{
	return prep_mentions(sql, len, "discard") || prep_mentions(sql, len, "deallocate");
}

/* Skips blanks; returns the next word's length (letters only). */
static size_t prep_word(const uint8_t *s, size_t len, size_t *pos)
{
	size_t n = 0;

	while (*pos < len && (s[*pos] == ' ' || s[*pos] == '\t' || s[*pos] == '\n' ||
			      s[*pos] == '\r'))
		(*pos)++;
	while (*pos + n < len && ((s[*pos + n] | 0x20) >= 'a' && (s[*pos + n] | 0x20) <= 'z'))
		n++;
	return n;
}

static bool prep_word_is(const uint8_t *s, size_t len, size_t *pos, const char *word)
{
	size_t n = prep_word(s, len, pos);

	if (n != strlen(word) || strncasecmp((const char *)s + *pos, word, n) != 0)
		return false;
	*pos += n;
	return true;
}

bool prep_sql_clears_all(const uint8_t *sql, size_t len)
{
	size_t pos = 0;
	size_t save;

	while (len > 0 && sql[len - 1] == '\0')
		len--;
	if (prep_word_is(sql, len, &pos, "discard")) {
		if (!prep_word_is(sql, len, &pos, "all"))
			return false;
	} else if (prep_word_is(sql, len, &pos, "deallocate")) {
		save = pos;
		if (!prep_word_is(sql, len, &pos, "prepare"))
			pos = save;
		if (!prep_word_is(sql, len, &pos, "all"))
			return false;
	} else {
		return false;
	}
	(void)prep_word(sql, len, &pos);
	if (pos < len && sql[pos] == ';') {
		pos++;
		(void)prep_word(sql, len, &pos);
	}
	return pos == len;
}

bool prep_sql_may_clear(const uint8_t *sql, size_t len)
{
	static const char *const words[] = { "deallocate", "discard" };
	size_t pos = 0;

	(void)prep_word(sql, len, &pos);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t n = strlen(words[i]);
		size_t have = len - pos < n ? len - pos : n;

		if (strncasecmp((const char *)sql + pos, words[i], have) == 0)
			return true;
	}
	return false;
}

struct prep_stmt *prep_stmt_get(struct prep_registry *r, const uint8_t *body, size_t len)
{
	struct prep_stmt *st;
	struct prep_stmt *other;
	uint64_t h;

	HASH_FIND(hh, r->by_body, body, len, st);
	if (st) {
		st->refs++;
		return st;
	}
	st = xcalloc(1, sizeof(*st) + len);
	memcpy(st->body, body, len);
	st->len = len;
	st->reg = r;
	st->refs = 1;
	st->may_deallocate = prep_sql_may_deallocate(body, strnlen((const char *)body, len));
	/* Names must stay unique among live statements: a server that has
	 * "PGMUX_x" must never be taken to have another statement. */
	h = prep_hash(body, len);
	for (;;) {
		HASH_FIND(hh_hash, r->by_hash, &h, sizeof(h), other);
		if (!other)
			break;
		h++;
	}
	st->hash = h;
	snprintf(st->name, sizeof(st->name), PREP_NAME_PREFIX "%016" PRIx64, h);
	HASH_ADD_KEYPTR(hh, r->by_body, st->body, st->len, st);
	HASH_ADD(hh_hash, r->by_hash, hash, sizeof(st->hash), st);
	r->count++;
	r->bytes += len;
	return st;
}

struct prep_stmt *prep_stmt_find(struct prep_registry *r, const uint8_t *body, size_t len)
{
	struct prep_stmt *st;

	HASH_FIND(hh, r->by_body, body, len, st);
	return st;
}

void prep_stmt_ref(struct prep_stmt *st)
{
	st->refs++;
}

void prep_stmt_unref(struct prep_stmt *st)
{
	struct prep_registry *r;

	if (!st || --st->refs > 0)
		return;
	r = st->reg;
	HASH_DELETE(hh, r->by_body, st);
	HASH_DELETE(hh_hash, r->by_hash, st);
	r->count--;
	r->bytes -= st->len;
	free(st);
}

/* ---- a client's names ---- */

struct prep_client *prep_client_new(void)
{
	struct prep_client *pc = xcalloc(1, sizeof(struct prep_client));

	proto_buf_init(&pc->big, PREP_STMT_MAX);
	return pc;
}

static void prep_name_free(struct prep_name *nm)
{
	prep_stmt_unref(nm->stmt);
	free(nm);
}

struct prep_name *prep_name_find(struct prep_client *pc, const char *name)
{
	struct prep_name *nm;

	HASH_FIND_STR(pc->names, name, nm);
	return nm;
}

struct prep_name *prep_name_add(struct prep_client *pc, const char *name, struct prep_stmt *st)
{
	size_t n = strlen(name);
	struct prep_name *nm = xcalloc(1, sizeof(*nm) + n + 1);

	memcpy(nm->name, name, n + 1);
	nm->stmt = st;
	prep_stmt_ref(st);
	nm->live = true;
	HASH_ADD_KEYPTR(hh, pc->names, nm->name, n, nm);
	pc->count++;
	pc->bytes += st->len;
	return nm;
}

void prep_name_kill(struct prep_client *pc, struct prep_name *nm)
{
	if (!nm->live)
		return;
	HASH_DEL(pc->names, nm);
	nm->live = false;
	pc->count--;
	pc->bytes -= nm->stmt->len;
	if (nm->refs == 0)
		prep_name_free(nm);
}

void prep_name_revive(struct prep_client *pc, struct prep_name *nm)
{
	if (nm->live || prep_name_find(pc, nm->name))
		return;
	HASH_ADD_KEYPTR(hh, pc->names, nm->name, strlen(nm->name), nm);
	nm->live = true;
	pc->count++;
	pc->bytes += nm->stmt->len;
}

void prep_name_unref(struct prep_name *nm)
{
	if (!nm)
		return;
	nm->refs--;
	if (!nm->live && nm->refs == 0)
		prep_name_free(nm);
}

void prep_names_clear(struct prep_client *pc)
{
	struct prep_name *nm;
	struct prep_name *tmp;

	HASH_ITER(hh, pc->names, nm, tmp)
	{
		prep_name_kill(pc, nm);
	}
}

void prep_client_free(struct prep_client *pc)
{
	if (!pc)
		return;
	prep_names_clear(pc);
	proto_buf_free(&pc->big);
	free(pc);
}

/* ---- a server's set ---- */

struct prep_server *prep_server_new(void)
{
	struct prep_server *ps = xcalloc(1, sizeof(*ps));

	list_init(&ps->lru);
	ps->epoch = 1;
	ps->gen = 1;
	proto_buf_init(&ps->replay, PREP_REPLAY_MAX);
	proto_buf_init(&ps->to_client, PREP_OUT_MAX);
	proto_buf_init(&ps->to_server, PREP_OUT_MAX);
	return ps;
}

struct prep_sstmt *prep_set_find(struct prep_server *ps, struct prep_stmt *st)
{
	struct prep_sstmt *e;

	HASH_FIND(hh, ps->set, &st, sizeof(st), e);
	return e;
}

bool prep_set_valid(const struct prep_server *ps, const struct prep_sstmt *e)
{
	return !e->stale && e->gen == ps->gen;
}

void prep_set_touch(struct prep_server *ps, struct prep_sstmt *e)
{
	list_remove(&ps->lru, &e->lru);
	list_append(&ps->lru, &e->lru);
	e->used_epoch = ps->epoch;
}

struct prep_sstmt *prep_set_add(struct prep_server *ps, struct prep_stmt *st)
{
	struct prep_sstmt *e = prep_set_find(ps, st);

	if (!e) {
		e = xcalloc(1, sizeof(*e));
		e->stmt = st;
		prep_stmt_ref(st);
		list_node_init(&e->lru);
		list_append(&ps->lru, &e->lru);
		HASH_ADD(hh, ps->set, stmt, sizeof(e->stmt), e);
		st->reg->server_entries++;
	}
	e->gen = ps->gen;
	e->stale = false;
	prep_set_touch(ps, e);
	return e;
}

void prep_set_remove(struct prep_server *ps, struct prep_stmt *st)
{
	struct prep_sstmt *e = prep_set_find(ps, st);

	if (!e)
		return;
	HASH_DEL(ps->set, e);
	list_remove(&ps->lru, &e->lru);
	st->reg->server_entries--;
	prep_stmt_unref(st);
	free(e);
}

/*
 * The least recently used statement goes first, but never one used since
 * the server was linked: closing a statement closes its portals too, and
 * the linked client may still have one open. The set may then run over
 * its limit until the next link.
 */
struct prep_stmt *prep_set_victim(struct prep_server *ps, uint32_t limit)
{
	struct list_node *n = list_first(&ps->lru);
	struct prep_sstmt *e;

	if (!n || ps->lru.count < limit)
		return NULL;
	e = container_of(n, struct prep_sstmt, lru);
	return e->used_epoch == ps->epoch ? NULL : e->stmt;
}

uint32_t prep_set_count(const struct prep_server *ps)
{
	return (uint32_t)ps->lru.count;
}

/* ---- the answer queue ---- */

static bool prep_entry_plain(const struct prep_entry *e)
{
	return e->act == PREP_A_FORWARD && e->undo == PREP_U_NONE && !e->stmt && !e->name &&
	       !e->synth && !e->flags;
}

static void prep_q_grow(struct prep_server *ps)
{
	uint32_t cap = ps->q_cap ? ps->q_cap * 2 : 16;
	struct prep_entry *q = xcalloc(cap, sizeof(*q));

	for (uint32_t i = 0; i < ps->q_len; i++)
		q[i] = ps->q[(ps->q_head + i) % ps->q_cap];
	free(ps->q);
	ps->q = q;
	ps->q_cap = cap;
	ps->q_head = 0;
}

struct prep_entry *prep_q_at(struct prep_server *ps, uint32_t i)
{
	return &ps->q[(ps->q_head + i) % ps->q_cap];
}

struct prep_entry *prep_q_head(struct prep_server *ps)
{
	return ps->q_len ? prep_q_at(ps, 0) : NULL;
}

/* The queue may pass PREP_QUEUE_MAX by the few entries of one message:
 * the limit is checked before a message, not within it. */
bool prep_q_push(struct prep_server *ps, const struct prep_entry *e)
{
	struct prep_entry *tail = ps->q_len ? prep_q_at(ps, ps->q_len - 1) : NULL;

	if (tail && prep_entry_plain(e) && prep_entry_plain(tail) && tail->kind == e->kind) {
		tail->count++;
		return true;
	}
	if (ps->q_len == ps->q_cap)
		prep_q_grow(ps);
	*prep_q_at(ps, ps->q_len) = *e;
	prep_q_at(ps, ps->q_len)->count = 1;
	ps->q_len++;
	return true;
}

/* Removes the head entry whole, with its references. */
static void prep_q_discard(struct prep_server *ps)
{
	struct prep_entry *h = prep_q_head(ps);

	prep_stmt_unref(h->stmt);
	prep_name_unref(h->name);
	free(h->synth);
	memset(h, 0, sizeof(*h));
	ps->q_head = (ps->q_head + 1) % ps->q_cap;
	ps->q_len--;
}

void prep_q_pop(struct prep_server *ps)
{
	struct prep_entry *h = prep_q_head(ps);

	if (!h)
		return;
	if (h->count > 1) {
		h->count--;
		return;
	}
	prep_q_discard(ps);
}

void prep_server_free(struct prep_server *ps)
{
	struct prep_sstmt *e;
	struct prep_sstmt *tmp;

	if (!ps)
		return;
	while (ps->q_len)
		prep_q_discard(ps);
	free(ps->q);
	HASH_ITER(hh, ps->set, e, tmp)
	{
		prep_set_remove(ps, e->stmt);
	}
	proto_buf_free(&ps->replay);
	proto_buf_free(&ps->to_client);
	proto_buf_free(&ps->to_server);
	free(ps);
}

/* ---- answers ---- */

void prep_drain_synth(struct prep_server *ps)
{
	struct prep_entry *h;

	while ((h = prep_q_head(ps)) && h->act == PREP_A_SYNTH) {
		if (h->expect == PROTO_BE_PARSE_COMPLETE)
			proto_build_parse_complete(&ps->to_client);
		else
			proto_build_close_complete(&ps->to_client);
		if (h->undo == PREP_U_NAMED && h->name)
			h->name->pending = false;
		prep_q_discard(ps);
	}
}

/* What e recorded did not happen on the server (it failed or was skipped). */
static void prep_undo(struct prep_server *ps, struct prep_client *pc, struct prep_entry *e)
{
	switch ((enum prep_undo)e->undo) {
	case PREP_U_NONE:
		break;
	case PREP_U_PARSED:
		prep_set_remove(ps, e->stmt);
		if (e->name && pc)
			prep_name_kill(pc, e->name);
		break;
	case PREP_U_NAMED:
		if (pc)
			prep_name_kill(pc, e->name);
		break;
	case PREP_U_EVICTED:
		if (!prep_set_find(ps, e->stmt))
			prep_set_add(ps, e->stmt);
		break;
	case PREP_U_CLOSED:
		if (pc)
			prep_name_revive(pc, e->name);
		break;
	}
	e->undo = PREP_U_NONE;
}

/* The last answer of an extended-protocol message (t: ParameterDescription
 * comes before the RowDescription or NoData of a Describe). */
static bool prep_ends_ext(uint8_t type)
{
	switch (type) {
	case PROTO_BE_PARSE_COMPLETE:
	case PROTO_BE_BIND_COMPLETE:
	case PROTO_BE_CLOSE_COMPLETE:
	case PROTO_BE_COMMAND_COMPLETE:
	case PROTO_BE_EMPTY_QUERY_RESPONSE:
	case PROTO_BE_PORTAL_SUSPENDED:
	case PROTO_BE_NO_DATA:
	case PROTO_BE_ROW_DESCRIPTION:
		return true;
	default:
		return false;
	}
}

static bool prep_sqlstate_is(const char *sqlstate, const char *want)
{
	return sqlstate && strcmp(sqlstate, want) == 0;
}

/*
 * An error to an extended-protocol message: PostgreSQL now ignores
 * everything up to the next Sync, so the entries before it get no answer.
 * Their records are undone last to first, so a name closed and parsed
 * again within the skipped messages ends as it was.
 */
static enum prep_answer prep_answer_error(struct prep_server *ps, struct prep_client *pc,
					  struct prep_entry *h, const char *sqlstate)
{
	enum prep_answer res = PREP_ANS_PASS;
	uint32_t n = 0;

	if (h->act == PREP_A_REPLACE && prep_sqlstate_is(sqlstate, "34000")) {
		proto_put_bytes(&ps->to_client, h->synth, h->synth_len);
		res = PREP_ANS_DROP;
	}
	/* The server's copy is unusable (the schema changed under a cached
	 * plan) or gone: the next use prepares it again. */
	if ((h->what == PROTO_FE_BIND || h->what == PROTO_FE_DESCRIBE) && h->stmt &&
	    (prep_sqlstate_is(sqlstate, "0A000") || prep_sqlstate_is(sqlstate, "26000"))) {
		struct prep_sstmt *e = prep_set_find(ps, h->stmt);

		if (e)
			e->stale = true;
	}
	prep_undo(ps, pc, h);
	prep_q_discard(ps);
	while (n < ps->q_len && prep_q_at(ps, n)->kind != PREP_K_SYNC)
		n++;
	for (uint32_t i = n; i-- > 0;)
		prep_undo(ps, pc, prep_q_at(ps, i));
	while (n-- > 0)
		prep_q_discard(ps);
	if (ps->q_len == 0)
		ps->skipping = true; /* its Sync has not been sent yet */
	return res;
}

enum prep_answer prep_answer(struct prep_server *ps, struct prep_client *pc, uint8_t type,
			     const char *sqlstate)
{
	struct prep_entry *h = prep_q_head(ps);
	enum prep_act act;

	switch (type) {
	case PROTO_BE_NOTICE_RESPONSE:
	case PROTO_BE_PARAMETER_STATUS:
	case PROTO_BE_NOTIFICATION_RESPONSE:
		return PREP_ANS_PASS; /* asynchronous: owed to nobody */
	default:
		break;
	}
	if (!h)
		return PREP_ANS_PASS;
	if (type == PROTO_BE_ERROR_RESPONSE)
		return h->kind == PREP_K_EXT ? prep_answer_error(ps, pc, h, sqlstate) :
					       PREP_ANS_PASS;
	if (type == PROTO_BE_READY_FOR_QUERY) {
		if (h->kind == PREP_K_EXT)
			return PREP_ANS_BROKEN;
		act = (enum prep_act)h->act;
		prep_q_pop(ps);
		prep_drain_synth(ps);
		return act == PREP_A_SWALLOW ? PREP_ANS_DROP : PREP_ANS_PASS;
	}
	if (h->kind != PREP_K_EXT)
		return PREP_ANS_PASS; /* within the answers to a Query */
	if (!prep_ends_ext(type))
		return h->act == PREP_A_FORWARD ? PREP_ANS_PASS : PREP_ANS_BROKEN;
	act = (enum prep_act)h->act;
	if (type == PROTO_BE_PARSE_COMPLETE && h->undo == PREP_U_PARSED && h->stmt) {
		h->stmt->proven = true;
		if (h->name)
			h->name->pending = false;
	}
	if (act == PREP_A_FORWARD) {
		prep_q_pop(ps);
		prep_drain_synth(ps);
		return PREP_ANS_PASS;
	}
	if (act != PREP_A_SWALLOW || type != h->expect)
		return PREP_ANS_BROKEN;
	prep_q_pop(ps);
	prep_drain_synth(ps);
	return PREP_ANS_DROP;
}

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
		if (m->whole && m->body_len > 1 && prep_sql_may_deallocate(m->body + 1, m->body_len - 1))
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

	if (!h || !prep_sqlstate_is(sqlstate, "0A000") || h->what != PROTO_FE_BIND || !h->stmt ||
	    h->act != PREP_A_FORWARD || !(h->flags & PREP_F_SEG_FIRST))
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
			"%s: %s: cached plan must not change result type: prepared again and retried",
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
