/*
 * prep_state.c: the bookkeeping behind prepared.c as pure data structures:
 * shared statements (names from a hash of their text, unique among live
 * ones), a client's names, a server's prepared set and LRU, and the answer
 * queue with what each server answer does to it (forward, swallow,
 * synthesize, replace; skip to Sync and undo after an error). No I/O.
 */
#include "prep_state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto.h"
#include "util.h"

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

/* One pass over untrusted bytes, case-insensitive: both words start with
 * 'd', so most bytes cost one comparison (every Query goes through here). */
bool prep_sql_may_deallocate(const uint8_t *sql, size_t len)
{
	for (size_t i = 0; i + 7 <= len; i++) {
		if ((sql[i] | 0x20) != 'd')
			continue;
		if (strncasecmp((const char *)sql + i, "discard", 7) == 0 ||
		    (i + 10 <= len && strncasecmp((const char *)sql + i, "deallocate", 10) == 0))
			return true;
	}
	return false;
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
void prep_q_discard(struct prep_server *ps)
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
