/*
 * sqlprep.c: SQL-level prepared statements across pooled servers (see
 * sqlprep.h). Owns each client's set of names (client.sqlprep) and each
 * server's set with the effects still pending on it (server.sqlprep).
 */
#include "sqlprep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "log.h"
#include "params.h"
#include "pool.h"
#include "pooler.h"
#include "prep_state.h"
#include "proto.h"
#include "server.h"
#include "util.h"

/* ---- the scanner ---- */

/* A cursor over SQL text; std: standard_conforming_strings is on. */
struct sp_lex {
	const uint8_t *p;
	const uint8_t *end;
	bool std;
};

static bool sp_space(uint8_t ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* PostgreSQL's lexer: ASCII letters, '_' and every byte >= 0x80. */
static bool sp_ident_start(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch >= 0x80;
}

static bool sp_ident_char(uint8_t ch)
{
	return sp_ident_start(ch) || (ch >= '0' && ch <= '9') || ch == '$';
}

static bool sp_at(const struct sp_lex *l, char a, char b)
{
	return l->end - l->p >= 2 && l->p[0] == a && l->p[1] == b;
}

/* A block comment at l->p; they nest. */
static void sp_skip_block_comment(struct sp_lex *l)
{
	int depth = 0;

	while (l->p < l->end) {
		if (sp_at(l, '/', '*')) {
			depth++;
			l->p += 2;
		} else if (sp_at(l, '*', '/')) {
			l->p += 2;
			if (--depth == 0)
				return;
		} else {
			l->p++;
		}
	}
}

/* Whitespace and comments. */
static void sp_skip_blank(struct sp_lex *l)
{
	for (;;) {
		while (l->p < l->end && sp_space(*l->p))
			l->p++;
		if (sp_at(l, '-', '-')) {
			while (l->p < l->end && *l->p != '\n')
				l->p++;
		} else if (sp_at(l, '/', '*')) {
			sp_skip_block_comment(l);
		} else {
			return;
		}
	}
}

/* A run quoted by q at l->p: q doubled is q itself; with bs, a backslash
 * escapes the next byte. An unterminated one runs to the end. */
static void sp_skip_quoted(struct sp_lex *l, uint8_t q, bool bs)
{
	l->p++;
	while (l->p < l->end) {
		uint8_t ch = *l->p++;

		if (bs && ch == '\\' && l->p < l->end) {
			l->p++;
		} else if (ch == q) {
			if (l->p < l->end && *l->p == q)
				l->p++;
			else
				return;
		}
	}
}

/* $tag$ ... $tag$ at l->p; false (nothing moved) if '$' opens none ($1). */
static bool sp_skip_dollar(struct sp_lex *l)
{
	const uint8_t *t = l->p + 1;
	const uint8_t *q;
	size_t tag;

	if (t < l->end && *t >= '0' && *t <= '9')
		return false;
	while (t < l->end && *t != '$' && sp_ident_char(*t))
		t++;
	if (t >= l->end || *t != '$')
		return false;
	tag = (size_t)(t + 1 - l->p);
	for (q = t + 1; q < l->end; q++) {
		if (*q == '$' && (size_t)(l->end - q) >= tag && memcmp(q, l->p, tag) == 0) {
			l->p = q + tag;
			return true;
		}
	}
	l->p = l->end;
	return true;
}

/* To the statement's ';' (not taken) or the end. */
static void sp_skip_statement(struct sp_lex *l)
{
	while (l->p < l->end && *l->p != ';') {
		uint8_t ch = *l->p;
		const uint8_t *word = l->p;

		if (sp_space(ch) || sp_at(l, '-', '-') || sp_at(l, '/', '*')) {
			if (sp_space(ch))
				l->p++;
			else
				sp_skip_blank(l);
		} else if (ch == '\'') {
			sp_skip_quoted(l, '\'', !l->std);
		} else if (ch == '"') {
			sp_skip_quoted(l, '"', false);
		} else if (ch == '$' && sp_skip_dollar(l)) {
			continue;
		} else if (sp_ident_start(ch)) {
			while (l->p < l->end && sp_ident_char(*l->p))
				l->p++;
			/* E'...' is an escape string whatever the setting. */
			if (l->p - word == 1 && (ch == 'e' || ch == 'E') && l->p < l->end &&
			    *l->p == '\'')
				sp_skip_quoted(l, '\'', true);
		} else {
			l->p++;
		}
	}
}

/* The next token is the unquoted keyword kw (case-insensitive): taken. */
static bool sp_keyword(struct sp_lex *l, const char *kw)
{
	size_t n = strlen(kw);

	sp_skip_blank(l);
	if ((size_t)(l->end - l->p) < n || strncasecmp((const char *)l->p, kw, n) != 0 ||
	    (l->p + n < l->end && sp_ident_char(l->p[n])))
		return false;
	l->p += n;
	return true;
}

/* Nothing but blanks before the statement's end. */
static bool sp_at_end(struct sp_lex *l)
{
	sp_skip_blank(l);
	return l->p >= l->end || *l->p == ';';
}

/* Cuts a name to NAMEDATALEN - 1 bytes, not inside a UTF-8 character. */
static void sp_name_cut(char *buf, size_t n)
{
	if (n >= SQLPREP_NAME_MAX) {
		n = SQLPREP_NAME_MAX - 1;
		while (n > 0 && ((uint8_t)buf[n] & 0xC0) == 0x80)
			n--;
	}
	buf[n] = '\0';
}

/*
 * The next token as a name, the way PostgreSQL keeps it: unquoted ones
 * folded to lower case (ASCII), quoted ones as written with "" as ",
 * both cut to 63 bytes. U&"..." is not read (false).
 */
static bool sp_name(struct sp_lex *l, char out[SQLPREP_NAME_MAX])
{
	char buf[SQLPREP_NAME_MAX + 4];
	size_t n = 0;

	sp_skip_blank(l);
	if (l->p >= l->end)
		return false;
	if (*l->p == '"') {
		l->p++;
		for (;;) {
			uint8_t ch;

			if (l->p >= l->end)
				return false;
			ch = *l->p++;
			if (ch == '"') {
				if (l->p >= l->end || *l->p != '"')
					break;
				l->p++;
			}
			if (n < sizeof(buf) - 1)
				buf[n++] = (char)ch;
		}
		if (n == 0)
			return false; /* PostgreSQL refuses "" */
	} else if (sp_ident_start(*l->p)) {
		while (l->p < l->end && sp_ident_char(*l->p)) {
			uint8_t ch = *l->p++;

			if (n < sizeof(buf) - 1)
				buf[n++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
		}
		if (l->p < l->end && *l->p == '&')
			return false;
	} else {
		return false;
	}
	sp_name_cut(buf, n);
	memcpy(out, buf, strlen(buf) + 1);
	return true;
}

/* PREPARE TRANSACTION 'gid' (two-phase commit) rather than a statement
 * named "transaction": the name is followed by '(' or AS. */
static bool sp_is_two_phase(struct sp_lex *l)
{
	struct sp_lex look = *l;

	if (!sp_keyword(&look, "transaction"))
		return false;
	sp_skip_blank(&look);
	return !(look.p < look.end && *look.p == '(') && !sp_keyword(&look, "as");
}

static bool sp_prepare(struct sp_lex *l, struct sqlprep_found *f)
{
	const uint8_t *end;

	if (sp_is_two_phase(l) || !sp_name(l, f->name))
		return false;
	sp_skip_blank(l);
	f->op = SQLPREP_OP_PREPARE;
	f->def = l->p;
	sp_skip_statement(l);
	end = l->p;
	while (end > f->def && sp_space(end[-1]))
		end--;
	f->def_len = (size_t)(end - f->def);
	return f->def_len > 0;
}

/* DEALLOCATE [PREPARE] name | ALL; "DEALLOCATE prepare" names "prepare". */
static bool sp_deallocate(struct sp_lex *l, struct sqlprep_found *f)
{
	struct sp_lex before = *l;

	if (sp_keyword(l, "prepare") && sp_at_end(l))
		*l = before;
	if (sp_keyword(l, "all")) {
		f->op = SQLPREP_OP_DEALLOCATE_ALL;
		return sp_at_end(l);
	}
	f->op = SQLPREP_OP_DEALLOCATE;
	return sp_name(l, f->name) && sp_at_end(l);
}

/* One statement from its first token; l ends at its ';' or the end. */
static bool sp_statement(struct sp_lex *l, struct sqlprep_found *f)
{
	bool found = false;

	if (sp_keyword(l, "prepare"))
		found = sp_prepare(l, f);
	else if (sp_keyword(l, "deallocate"))
		found = sp_deallocate(l, f);
	else if (sp_keyword(l, "discard") && sp_keyword(l, "all") && sp_at_end(l)) {
		f->op = SQLPREP_OP_DISCARD_ALL;
		found = true;
	}
	sp_skip_statement(l);
	return found;
}

size_t sqlprep_scan(const uint8_t *sql, size_t len, bool std_strings, sqlprep_found_fn fn,
		    void *arg)
{
	struct sp_lex l = { sql, sql + len, std_strings };
	size_t n = 0;

	for (;;) {
		struct sqlprep_found f;

		sp_skip_blank(&l);
		if (l.p >= l.end)
			break;
		if (*l.p == ';') {
			l.p++;
			continue;
		}
		memset(&f, 0, sizeof(f));
		if (sp_statement(&l, &f)) {
			fn(arg, &f);
			n++;
		}
	}
	return n;
}

/* ---- a set of names ---- */

struct sqlprep_name *sqlprep_set_find(const struct sqlprep_set *set, const char *name)
{
	struct sqlprep_name *e = NULL;

	if (set)
		HASH_FIND_STR(set->names, name, e);
	return e;
}

void sqlprep_set_put(struct sqlprep_set *set, const char *name, struct prep_stmt *def)
{
	struct sqlprep_name *e = sqlprep_set_find(set, name);

	prep_stmt_ref(def);
	if (e) {
		set->bytes -= e->def->len;
		prep_stmt_unref(e->def);
	} else {
		e = xcalloc(1, sizeof(*e));
		util_strlcpy(e->name, name, sizeof(e->name));
		HASH_ADD_STR(set->names, name, e);
		set->count++;
	}
	e->def = def;
	set->bytes += def->len;
}

static void sqlprep_set_remove(struct sqlprep_set *set, struct sqlprep_name *e)
{
	HASH_DEL(set->names, e);
	set->count--;
	set->bytes -= e->def->len;
	prep_stmt_unref(e->def);
	free(e);
}

void sqlprep_set_del(struct sqlprep_set *set, const char *name)
{
	struct sqlprep_name *e = sqlprep_set_find(set, name);

	if (e)
		sqlprep_set_remove(set, e);
}

void sqlprep_set_clear(struct sqlprep_set *set)
{
	struct sqlprep_name *e, *tmp;

	HASH_ITER(hh, set->names, e, tmp)
	{
		sqlprep_set_remove(set, e);
	}
}

bool sqlprep_set_same(const struct sqlprep_set *a, const struct sqlprep_set *b)
{
	uint32_t na = a ? a->count : 0;
	uint32_t nb = b ? b->count : 0;
	struct sqlprep_name *e, *tmp;

	if (na != nb)
		return false;
	if (na == 0)
		return true;
	HASH_ITER(hh, a->names, e, tmp)
	{
		struct sqlprep_name *o = sqlprep_set_find(b, e->name);

		if (!o || o->def != e->def)
			return false;
	}
	return true;
}

/* ---- the server's pending effects ---- */

/* A PREPARE or DEALLOCATE sent, settled by its tag or by the
 * ReadyForQuery numbered due (then it did not happen). */
struct sqlprep_effect {
	uint8_t op;          /* enum sqlprep_op */
	bool server_only;    /* pgmux's own PREPARE, bringing the server in line */
	uint64_t due;
	struct prep_stmt *def; /* PREPARE: referenced */
	char name[SQLPREP_NAME_MAX];
};

struct sqlprep_server {
	struct sqlprep_set set;
	struct sqlprep_effect *fx; /* ring of fx_cap */
	uint32_t fx_head, fx_len, fx_cap;
	uint64_t zs; /* ReadyForQuery messages seen since this was made */
};

static struct sqlprep_server *sqlprep_server_get(struct server *s)
{
	if (!s->sqlprep)
		s->sqlprep = xcalloc(1, sizeof(*s->sqlprep));
	return s->sqlprep;
}

static struct sqlprep_effect *sqlprep_fx_at(struct sqlprep_server *sp, uint32_t i)
{
	return &sp->fx[(sp->fx_head + i) % sp->fx_cap];
}

static void sqlprep_fx_push(struct sqlprep_server *sp, const struct sqlprep_effect *e)
{
	if (sp->fx_len == sp->fx_cap) {
		uint32_t cap = sp->fx_cap ? sp->fx_cap * 2 : 8;
		struct sqlprep_effect *fx = xcalloc(cap, sizeof(*fx));

		for (uint32_t i = 0; i < sp->fx_len; i++)
			fx[i] = *sqlprep_fx_at(sp, i);
		free(sp->fx);
		sp->fx = fx;
		sp->fx_cap = cap;
		sp->fx_head = 0;
	}
	*sqlprep_fx_at(sp, sp->fx_len++) = *e;
	if (e->def)
		prep_stmt_ref(e->def);
}

static void sqlprep_fx_pop(struct sqlprep_server *sp)
{
	struct sqlprep_effect *e = sqlprep_fx_at(sp, 0);

	if (e->def)
		prep_stmt_unref(e->def);
	sp->fx_head = (sp->fx_head + 1) % sp->fx_cap;
	sp->fx_len--;
}

static void sqlprep_fx_clear(struct sqlprep_server *sp)
{
	while (sp->fx_len > 0)
		sqlprep_fx_pop(sp);
}

/* ---- the client's side ---- */

static bool sqlprep_std_strings(const struct client *c)
{
	static int idx = -2;
	const char *v;

	if (idx == -2)
		idx = param_index("standard_conforming_strings");
	if (idx < 0)
		return true;
	v = param_effective(&c->params, &c->pool->defaults, idx);
	return strcasecmp(v, "off") != 0;
}

struct sqlprep_scan_ctx {
	struct client *c;
	struct sqlprep_server *sp;
	unsigned later; /* 1 for a Parse: its ReadyForQuery comes with a Sync to come */
};

static void sqlprep_on_found(void *arg, const struct sqlprep_found *f)
{
	struct sqlprep_scan_ctx *x = arg;
	struct sqlprep_effect e = { .op = (uint8_t)f->op };

	/* The ALL forms are told by their tags alone. */
	if (f->op != SQLPREP_OP_PREPARE && f->op != SQLPREP_OP_DEALLOCATE)
		return;
	e.due = x->sp->zs + x->c->outstanding + x->later;
	util_strlcpy(e.name, f->name, sizeof(e.name));
	if (f->op == SQLPREP_OP_PREPARE)
		e.def = prep_stmt_get(&g_pooler.prep, f->def, f->def_len);
	sqlprep_fx_push(x->sp, &e);
	if (e.def)
		prep_stmt_unref(e.def); /* the effect holds it now */
}

/* Whether the text holds "prepare" or "dealloc" in any case: a cheap
 * first look before the scanner. */
static bool sqlprep_mentions(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 7 <= len; i++) {
		if (((p[i] | 0x20) == 'p' && strncasecmp((const char *)p + i, "prepare", 7) == 0) ||
		    ((p[i] | 0x20) == 'd' && strncasecmp((const char *)p + i, "dealloc", 7) == 0))
			return true;
	}
	return false;
}

void sqlprep_client_message(struct client *c, uint8_t type, const uint8_t *body, size_t len)
{
	struct sqlprep_scan_ctx x = { .c = c };

	if (!c->server)
		return;
	if (type == PROTO_FE_PARSE) {
		/* Only the unnamed statement runs where it is parsed; a named
		 * one that prepares is found by its tag (and reset). */
		if (len == 0 || body[0] != '\0')
			return;
		body++;
		len--;
		x.later = 1;
	} else if (type != PROTO_FE_QUERY) {
		return;
	}
	len = strnlen((const char *)body, len);
	/* Most statements name neither: no server state is made for them. */
	if (!sqlprep_mentions(body, len))
		return;
	x.sp = sqlprep_server_get(c->server);
	(void)sqlprep_scan(body, len, sqlprep_std_strings(c), sqlprep_on_found, &x);
}

void sqlprep_client_closed(struct client *c)
{
	if (!c->sqlprep)
		return;
	sqlprep_set_clear(c->sqlprep);
	free(c->sqlprep);
	c->sqlprep = NULL;
}

uint32_t sqlprep_client_count(const struct client *c)
{
	return c->sqlprep ? c->sqlprep->count : 0;
}

/* ---- the server's side ---- */

static bool sqlprep_tag_is(const uint8_t *tag, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(tag, want, len) == 0;
}

/* The first effect of op due with the next ReadyForQuery; those before it
 * in the same message did not run (or pgmux misread them). */
static struct sqlprep_effect *sqlprep_fx_match(struct sqlprep_server *sp, enum sqlprep_op op)
{
	for (uint32_t i = 0; i < sp->fx_len; i++) {
		struct sqlprep_effect *e = sqlprep_fx_at(sp, i);

		if (e->due > sp->zs + 1)
			return NULL;
		if (e->op == op && e->due == sp->zs + 1) {
			while (i-- > 0)
				sqlprep_fx_pop(sp);
			return sqlprep_fx_at(sp, 0);
		}
	}
	return NULL;
}

/* A client's new name, unless it holds too many already. */
static bool sqlprep_client_put(struct client *c, const struct sqlprep_effect *e)
{
	char who[160];

	if (!c->sqlprep)
		c->sqlprep = xcalloc(1, sizeof(*c->sqlprep));
	if (sqlprep_set_find(c->sqlprep, e->name) ||
	    (c->sqlprep->count < SQLPREP_CLIENT_MAX &&
	     c->sqlprep->bytes + e->def->len <= SQLPREP_CLIENT_BYTES)) {
		sqlprep_set_put(c->sqlprep, e->name, e->def);
		return true;
	}
	client_ident(c, who, sizeof(who));
	log_warn("%s: PREPARE %s not carried across servers: the connection holds %u "
		    "SQL-level statements (pgmux carries at most %d, %u MB of text)",
		    who, e->name, c->sqlprep->count, SQLPREP_CLIENT_MAX,
		    SQLPREP_CLIENT_BYTES >> 20);
	return false;
}

static unsigned sqlprep_apply(struct server *s, struct client *c, struct sqlprep_effect *e)
{
	struct sqlprep_server *sp = s->sqlprep;
	unsigned leak = 0;

	if (e->op == SQLPREP_OP_PREPARE) {
		sqlprep_set_put(&sp->set, e->name, e->def);
		if (!e->server_only && c && !sqlprep_client_put(c, e))
			leak = PARAM_LEAK_PREPARE;
	} else {
		sqlprep_set_del(&sp->set, e->name);
		if (c && c->sqlprep)
			sqlprep_set_del(c->sqlprep, e->name);
	}
	sqlprep_fx_pop(sp);
	return leak;
}

unsigned sqlprep_server_tag(struct server *s, struct client *c, const uint8_t *tag, size_t len)
{
	struct sqlprep_server *sp = s->sqlprep;
	struct sqlprep_effect *e;
	enum sqlprep_op op;

	while (len > 0 && tag[len - 1] == '\0')
		len--;
	if (sqlprep_tag_is(tag, len, "DISCARD ALL") || sqlprep_tag_is(tag, len, "DEALLOCATE ALL")) {
		if (sp)
			sqlprep_set_clear(&sp->set);
		if (c && c->sqlprep)
			sqlprep_set_clear(c->sqlprep);
		return 0;
	}
	if (sqlprep_tag_is(tag, len, "PREPARE"))
		op = SQLPREP_OP_PREPARE;
	else if (sqlprep_tag_is(tag, len, "DEALLOCATE"))
		op = SQLPREP_OP_DEALLOCATE;
	else
		return 0;
	/* Not from a statement pgmux read (a named Parse that prepares, a
	 * Query larger than pkt_buf): the server is reset before reuse. */
	if (!sp || !(e = sqlprep_fx_match(sp, op)))
		return PARAM_LEAK_PREPARE;
	return sqlprep_apply(s, c, e);
}

void sqlprep_server_ready(struct server *s)
{
	struct sqlprep_server *sp = s->sqlprep;

	if (!sp)
		return;
	sp->zs++;
	while (sp->fx_len > 0 && sqlprep_fx_at(sp, 0)->due <= sp->zs)
		sqlprep_fx_pop(sp);
}

void sqlprep_server_released(struct server *s)
{
	if (s->sqlprep)
		sqlprep_fx_clear(s->sqlprep);
}

void sqlprep_server_closed(struct server *s)
{
	struct sqlprep_server *sp = s->sqlprep;

	if (!sp)
		return;
	sqlprep_fx_clear(sp);
	free(sp->fx);
	sqlprep_set_clear(&sp->set);
	free(sp);
	s->sqlprep = NULL;
}

uint32_t sqlprep_server_count(const struct server *s)
{
	return s->sqlprep ? s->sqlprep->set.count : 0;
}

bool sqlprep_in_sync(const struct client *c, const struct server *s)
{
	return sqlprep_set_same(c->sqlprep, s->sqlprep ? &s->sqlprep->set : NULL);
}

/* PREPARE "name" <definition>, as one Query. */
static void sqlprep_build_prepare(struct proto_buf *out, const struct sqlprep_name *n)
{
	proto_begin(out, PROTO_FE_QUERY);
	proto_put_bytes(out, "PREPARE \"", 9);
	for (const char *p = n->name; *p; p++) {
		if (*p == '"')
			proto_put_u8(out, '"');
		proto_put_u8(out, (uint8_t)*p);
	}
	proto_put_bytes(out, "\" ", 2);
	proto_put_bytes(out, n->def->body, n->def->len);
	proto_put_u8(out, 0);
	proto_end(out);
}

unsigned sqlprep_build_sync(struct proto_buf *out, const struct client *c, struct server *s,
			    unsigned zs_before)
{
	struct sqlprep_server *sp;
	struct sqlprep_name *e, *tmp;
	unsigned zs = 0;
	bool closed = false;

	if (sqlprep_in_sync(c, s))
		return 0;
	sp = sqlprep_server_get(s);
	/* A Close never fails, and drops a name whatever made it. */
	HASH_ITER(hh, sp->set.names, e, tmp)
	{
		struct sqlprep_name *mine = sqlprep_set_find(c->sqlprep, e->name);

		if (mine && mine->def == e->def)
			continue;
		proto_build_close(out, 'S', e->name);
		sqlprep_set_remove(&sp->set, e);
		closed = true;
	}
	if (closed) {
		proto_build_sync(out);
		zs++;
	}
	if (!c->sqlprep)
		return zs;
	HASH_ITER(hh, c->sqlprep->names, e, tmp)
	{
		struct sqlprep_effect fx = { .op = SQLPREP_OP_PREPARE, .server_only = true };

		if (sqlprep_set_find(&sp->set, e->name))
			continue;
		sqlprep_build_prepare(out, e);
		zs++;
		fx.due = sp->zs + zs_before + zs;
		fx.def = e->def;
		util_strlcpy(fx.name, e->name, sizeof(fx.name));
		sqlprep_fx_push(sp, &fx);
	}
	return zs;
}
