/*
 * params.c: tracked session parameters and session-state detection (see
 * params.h). The registry is built once at startup: track_extra_parameters
 * cannot change on RELOAD, so indexes stay valid for the process's life.
 */
#include "params.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto.h"
#include "proto_frame.h"
#include "util.h"

/* PgBouncer's tracked set; PostgreSQL reports all of them (GUC_REPORT). */
static const char *const param_builtin[] = {
	"client_encoding", "DateStyle",		       "TimeZone",
	"IntervalStyle",   "standard_conforming_strings", "application_name",
};
#define PARAM_NBUILTIN (sizeof(param_builtin) / sizeof(param_builtin[0]))

static char *g_names[PARAM_MAX];
static size_t g_count;

static bool param_is_identifier(const char *s, size_t n)
{
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.')
			return false;
	}
	return true;
}

static int param_add(const char *name, size_t n, char *err, size_t errlen)
{
	char buf[64];

	if (!param_is_identifier(name, n)) {
		snprintf(err, errlen, "track_extra_parameters: \"%.*s\" is not a parameter name",
			 (int)(n > 64 ? 64 : n), name);
		return -1;
	}
	memcpy(buf, name, n);
	buf[n] = '\0';
	if (param_index(buf) >= 0)
		return 0;
	if (g_count >= PARAM_MAX) {
		snprintf(err, errlen, "track_extra_parameters: more than %d tracked parameters",
			 PARAM_MAX);
		return -1;
	}
	g_names[g_count++] = xstrdup(buf);
	return 0;
}

int param_registry_init(const char *extra, char *err, size_t errlen)
{
	const char *p = extra ? extra : "";

	param_registry_free();
	for (size_t i = 0; i < PARAM_NBUILTIN; i++)
		g_names[g_count++] = xstrdup(param_builtin[i]);
	while (*p) {
		size_t n;

		p += strspn(p, " \t,");
		n = strcspn(p, " \t,");
		if (n > 0 && param_add(p, n, err, errlen) != 0)
			return -1;
		p += n;
	}
	return 0;
}

void param_registry_free(void)
{
	for (size_t i = 0; i < g_count; i++)
		free(g_names[i]);
	g_count = 0;
}

size_t param_count(void)
{
	return g_count;
}

int param_index(const char *name)
{
	for (size_t i = 0; i < g_count; i++) {
		if (strcasecmp(g_names[i], name) == 0)
			return (int)i;
	}
	return -1;
}

const char *param_name(int idx)
{
	return idx >= 0 && (size_t)idx < g_count ? g_names[idx] : "";
}

void param_set_value(struct param_set *ps, int idx, const char *value)
{
	if (idx < 0 || idx >= PARAM_MAX)
		return;
	if (ps->v[idx] && value && strcmp(ps->v[idx], value) == 0)
		return;
	free(ps->v[idx]);
	ps->v[idx] = value ? xstrdup(value) : NULL;
}

void param_set_clear(struct param_set *ps)
{
	for (size_t i = 0; i < PARAM_MAX; i++) {
		free(ps->v[i]);
		ps->v[i] = NULL;
	}
}

bool param_set_same(const struct param_set *a, const struct param_set *b)
{
	for (size_t i = 0; i < PARAM_MAX; i++) {
		if (!a->v[i] != !b->v[i] || (a->v[i] && strcmp(a->v[i], b->v[i]) != 0))
			return false;
	}
	return true;
}

void param_set_copy(struct param_set *dst, const struct param_set *src)
{
	for (int i = 0; i < PARAM_MAX; i++)
		param_set_value(dst, i, src->v[i]);
}

size_t param_set_used(const struct param_set *ps)
{
	size_t n = 0;

	for (size_t i = 0; i < PARAM_MAX; i++)
		n += ps->v[i] != NULL;
	return n;
}

const char *param_effective(const struct param_set *ps, const struct param_set *defaults,
			    int idx)
{
	if (ps && ps->v[idx])
		return ps->v[idx];
	if (defaults && defaults->v[idx])
		return defaults->v[idx];
	return "";
}

/* A growing SQL text; xrealloc aborts on exhaustion like every pgmux alloc. */
struct param_sql {
	char *p;
	size_t len;
	size_t cap;
};

static void param_sql_put(struct param_sql *q, const char *s, size_t n)
{
	if (q->len + n + 1 > q->cap) {
		q->cap = (q->len + n + 1) * 2;
		q->p = xrealloc(q->p, q->cap);
	}
	memcpy(q->p + q->len, s, n);
	q->len += n;
	q->p[q->len] = '\0';
}

/* SET name TO E'value'; with ' and \ doubled inside E''. */
static void param_append_set(struct param_sql *q, const char *name, const char *value)
{
	param_sql_put(q, "SET ", 4);
	param_sql_put(q, name, strlen(name));
	param_sql_put(q, " TO E'", 6);
	for (const char *p = value; *p; p++) {
		if (*p == '\'' || *p == '\\')
			param_sql_put(q, p, 1);
		param_sql_put(q, p, 1);
	}
	param_sql_put(q, "';", 2);
}

int param_build_sync(struct proto_buf *out, const struct param_set *want,
		     const struct param_set *have, const struct param_set *defaults)
{
	struct param_sql q = { NULL, 0, 0 };
	int n = 0;

	for (size_t i = 0; i < g_count; i++) {
		const char *w = param_effective(want, defaults, (int)i);
		const char *h = param_effective(have, defaults, (int)i);

		if (w == h || strcmp(w, h) == 0)
			continue;
		n++;
		if (out)
			param_append_set(&q, g_names[i], w);
	}
	if (n > 0 && out)
		proto_build_query(out, q.p);
	free(q.p);
	return n;
}

bool param_walk(const uint8_t *buf, size_t len, size_t *pos, struct param_msg *out)
{
	struct proto_frame f;

	if (*pos >= len ||
	    proto_frame_header(buf + *pos, len - *pos, PROTO_DIR_BACKEND, true, &f) !=
		    PROTO_FRAME_OK ||
	    f.total > len - *pos)
		return false;
	out->bytes = buf + *pos;
	out->total = f.total;
	out->idx = -1;
	out->name = NULL;
	out->value = NULL;
	if (f.type == PROTO_BE_PARAMETER_STATUS &&
	    param_parse_status(out->bytes + PROTO_HEADER_SIZE, f.len - 4, &out->name, &out->value))
		out->idx = param_index(out->name);
	*pos += f.total;
	return true;
}

bool param_parse_status(const uint8_t *body, size_t len, const char **name, const char **value)
{
	const uint8_t *nul1 = memchr(body, 0, len);
	const uint8_t *nul2;

	if (!nul1)
		return false;
	nul2 = memchr(nul1 + 1, 0, len - (size_t)(nul1 + 1 - body));
	if (!nul2 || nul2 != body + len - 1)
		return false;
	*name = (const char *)body;
	*value = (const char *)nul1 + 1;
	return true;
}

/* ---- session state ---- */

unsigned param_leak_from_tag(const uint8_t *tag, size_t len)
{
	if (len >= 6 && memcmp(tag, "LISTEN", 6) == 0)
		return PARAM_LEAK_LISTEN;
	if (len >= 7 && memcmp(tag, "PREPARE", 7) == 0)
		return PARAM_LEAK_PREPARE;
	return 0;
}

/* A case-insensitive word at p (not followed by an identifier char). */
static bool param_word(const uint8_t *p, const uint8_t *end, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(end - p) < n || strncasecmp((const char *)p, word, n) != 0)
		return false;
	return p + n == end || !(isalnum(p[n]) || p[n] == '_');
}

static const uint8_t *param_skip_space(const uint8_t *p, const uint8_t *end)
{
	while (p < end && (isspace(*p) || *p == '('))
		p++;
	return p;
}

static const uint8_t *param_next_word(const uint8_t *p, const uint8_t *end)
{
	while (p < end && (isalnum(*p) || *p == '_' || *p == '.' || *p == '"'))
		p++;
	return param_skip_space(p, end);
}

/*
 * One statement's start: SET of a parameter pgmux does not track (LOCAL
 * ends with the transaction; tracked ones are carried by ParameterStatus).
 */
static unsigned param_leak_set(const uint8_t *p, const uint8_t *end)
{
	char name[64];
	size_t n = 0;

	if (!param_word(p, end, "set"))
		return 0;
	p = param_next_word(p, end);
	if (param_word(p, end, "local"))
		return 0;
	if (param_word(p, end, "session")) {
		p = param_next_word(p, end);
		if (param_word(p, end, "authorization"))
			return PARAM_LEAK_SET;
	}
	if (param_word(p, end, "time") && param_word(param_next_word(p, end), end, "zone"))
		return param_index("TimeZone") >= 0 ? 0 : PARAM_LEAK_SET;
	while (p < end && n < sizeof(name) - 1 && (isalnum(*p) || *p == '_' || *p == '.')) {
		name[n++] = (char)*p;
		p++;
	}
	name[n] = '\0';
	return n > 0 && param_index(name) >= 0 ? 0 : PARAM_LEAK_SET;
}

/* CREATE TEMP|TEMPORARY TABLE|VIEW|SEQUENCE, and SELECT ... INTO TEMP. */
static unsigned param_leak_temp(const uint8_t *p, const uint8_t *end)
{
	if (!param_word(p, end, "temp") && !param_word(p, end, "temporary"))
		return 0;
	p = param_next_word(p, end);
	return param_word(p, end, "table") || param_word(p, end, "view") ||
			       param_word(p, end, "sequence") ?
		       PARAM_LEAK_TEMP :
		       0;
}

unsigned param_leak_from_sql(const uint8_t *sql, size_t len)
{
	const uint8_t *end = sql + len;
	const uint8_t *p = sql;
	unsigned bits = 0;
	bool stmt_start = true;

	while (p < end) {
		if (stmt_start) {
			p = param_skip_space(p, end);
			bits |= param_leak_set(p, end);
			stmt_start = false;
		}
		if (p >= end)
			break;
		if (*p == ';') {
			stmt_start = true;
			p++;
			continue;
		}
		if ((p == sql || !(isalnum(p[-1]) || p[-1] == '_'))) {
			bits |= param_leak_temp(p, end);
			/* pg_advisory_lock, pg_try_advisory_lock(_shared); the
			 * _xact_ ones end with their transaction. */
			if (((size_t)(end - p) >= 16 &&
			     strncasecmp((const char *)p, "pg_advisory_lock", 16) == 0) ||
			    ((size_t)(end - p) >= 20 &&
			     strncasecmp((const char *)p, "pg_try_advisory_lock", 20) == 0))
				bits |= PARAM_LEAK_ADVISORY;
		}
		p++;
	}
	return bits;
}

const char *param_leak_str(unsigned bit)
{
	switch (bit) {
	case PARAM_LEAK_SET:
		return "SET";
	case PARAM_LEAK_LISTEN:
		return "LISTEN";
	case PARAM_LEAK_PREPARE:
		return "PREPARE";
	case PARAM_LEAK_TEMP:
		return "temporary object";
	case PARAM_LEAK_ADVISORY:
		return "advisory lock";
	default:
		return "session state";
	}
}
