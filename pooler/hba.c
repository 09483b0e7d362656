/*
 * hba.c: the auth_hba_file loader and matcher (format and PgBouncer
 * differences in hba.h). Loading reads records (physical lines joined by
 * trailing backslashes), splits them into fields of comma-separated
 * entries, and turns each into a struct hba_rule with sorted name lists and
 * a pre-masked address, so hba_match() only compares. Owns every struct
 * hba it returns; hba_free() releases it.
 */
#include "hba.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keyword flags of a name list. */
#define HBA_NAME_ALL 1u
#define HBA_NAME_SAMEUSER 2u
#define HBA_NAME_REPLICATION 4u

/* PostgreSQL's limit too; a deeper chain is almost surely an @file loop. */
#define HBA_MAX_DEPTH 10

enum hba_type {
	HBA_T_LOCAL,
	HBA_T_HOST,
	HBA_T_HOSTSSL,
	HBA_T_HOSTNOSSL,
};

enum hba_addr_kind {
	HBA_ADDR_NONE, /* local rules */
	HBA_ADDR_ALL,
	HBA_ADDR_IP,
};

/* A database or user field: keywords plus literal names. */
struct hba_names {
	unsigned flags; /* HBA_NAME_* */
	char **v;       /* sorted and unique once the rule is complete (bsearch) */
	size_t n, cap;
};

struct hba_opt {
	char *name;
	char *value;
};

struct hba_rule {
	int line;            /* first line of the record in the hba file */
	enum hba_type type;
	bool never;          /* needs something pgmux cannot check: hba_match skips it */
	bool partial;        /* some name entry was dropped as unsupported */
	bool foreign;        /* method pgmux does not implement (so never is set) */
	struct hba_names db, user;
	enum hba_addr_kind addr_kind;
	int family;                               /* AF_INET or AF_INET6 for HBA_ADDR_IP */
	unsigned char addr[16], mask[16];         /* addr is already addr & mask */
	enum hba_method method;
	struct hba_opt *opts;
	size_t nopts, optcap;
};

struct hba {
	struct hba_rule *rules; /* file order, so lines increase */
	size_t nrules, rulecap;
	char **warnings;
	size_t nwarnings, warncap;
};

/* ---- small helpers ---- */

/* Makes room for need elements of size elem in *p; false on overflow or OOM
 * (then *p is untouched). */
static bool hba_grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 8;
	void *np;

	if (need <= *cap)
		return true;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return false;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / elem)
		return false;
	np = realloc(*p, ncap * elem);
	if (np == NULL)
		return false;
	*p = np;
	*cap = ncap;
	return true;
}

static bool hba_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int hba_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

const char *hba_method_str(enum hba_method m)
{
	switch (m) {
	case HBA_REJECT:
		return "reject";
	case HBA_TRUST:
		return "trust";
	case HBA_PASSWORD:
		return "password";
	case HBA_MD5:
		return "md5";
	case HBA_SCRAM:
		return "scram-sha-256";
	case HBA_CERT:
		return "cert";
	case HBA_PEER:
		return "peer";
	}
	return "unknown";
}

/* ---- reading records ---- */

struct hba_reader {
	FILE *f;
	int line;          /* physical lines read so far */
	char *phys;        /* getline() buffer */
	size_t physcap;
	char *rec;         /* the record: physical lines joined, without newlines */
	size_t reccap;
	const char *why;   /* set when hba_read_record() fails */
};

static bool hba_rec_append(struct hba_reader *r, size_t *len, const char *s, size_t n)
{
	void *p = r->rec;

	if (n > SIZE_MAX - *len - 1)
		return false;
	if (!hba_grow(&p, &r->reccap, *len + n + 1, 1))
		return false;
	r->rec = p;
	memcpy(r->rec + *len, s, n);
	*len += n;
	r->rec[*len] = '\0';
	return true;
}

/*
 * Reads the next record into r->rec: one line, or several when each but
 * the last ends in a backslash (which is dropped; PostgreSQL 16 does the
 * same, even inside quotes and comments). Returns 1 with *first set to its
 * first line, 0 at end of file, -1 with r->why (r->line is then the line
 * at fault).
 */
static int hba_read_record(struct hba_reader *r, int *first)
{
	size_t len = 0;
	bool more = false;

	if (!hba_rec_append(r, &len, "", 0)) {
		r->why = "out of memory";
		return -1;
	}
	for (;;) {
		ssize_t n = getline(&r->phys, &r->physcap, r->f);
		size_t m;

		if (n < 0) {
			if (ferror(r->f)) {
				r->why = strerror(errno);
				return -1;
			}
			if (!more)
				return 0;
			break; /* a backslash on the last line just ends the record */
		}
		if (r->line == INT_MAX) {
			r->why = "too many lines";
			return -1;
		}
		r->line++;
		if (!more)
			*first = r->line;
		m = (size_t)n;
		if (memchr(r->phys, '\0', m) != NULL) {
			r->why = "NUL byte in line";
			return -1;
		}
		if (m > 0 && r->phys[m - 1] == '\n')
			m--;
		if (m > 0 && r->phys[m - 1] == '\r')
			m--;
		more = m > 0 && r->phys[m - 1] == '\\';
		if (more)
			m--;
		if (!hba_rec_append(r, &len, r->phys, m)) {
			r->why = "out of memory";
			return -1;
		}
		if (!more)
			break;
	}
	return 1;
}

static void hba_reader_free(struct hba_reader *r)
{
	free(r->phys);
	free(r->rec);
	if (r->f != NULL)
		fclose(r->f);
}

/* ---- splitting a record into fields ---- */

/* One comma-separated entry of a field. Quoted entries lose keyword meaning. */
struct hba_elem {
	char *text; /* unquoted text, in hba_toks.buf */
	bool quoted;
};

struct hba_field {
	size_t first, n; /* entries elems[first .. first+n) */
};

/* Reused for every record of one file; rebuilt by each hba_tokenize(). */
struct hba_toks {
	char *buf;
	size_t bufcap;
	struct hba_elem *elems;
	size_t nelems, elemcap;
	struct hba_field *fields;
	size_t nfields, fieldcap;
};

/*
 * Reads one entry at *pp into t->buf at *o: up to a blank, comma or '#'
 * outside double quotes. Inside quotes "" is a literal quote; quotes may
 * start mid-word as in PostgreSQL (ldapbinddn="cn=x, o=y"). Returns NULL or
 * the reason it is malformed.
 */
static const char *hba_read_elem(struct hba_toks *t, const char **pp, size_t *o)
{
	const char *p = *pp;
	size_t start = *o;
	bool inq = false, quoted = false;

	/* The output never outgrows the record (see hba_tokenize), but a
	 * check is cheaper than a proof that must survive edits. */
#define HBA_PUT(ch)                                  \
	do {                                         \
		if (*o >= t->bufcap)                 \
			return "internal: token buffer"; \
		t->buf[(*o)++] = (ch);               \
	} while (0)
	for (; *p != '\0'; p++) {
		if (inq) {
			if (*p != '"') {
				HBA_PUT(*p);
			} else if (p[1] == '"') {
				HBA_PUT('"');
				p++;
			} else {
				inq = false;
			}
			continue;
		}
		if (hba_is_blank(*p) || *p == ',' || *p == '#')
			break;
		if (*p == '"')
			inq = quoted = true;
		else
			HBA_PUT(*p);
	}
	if (inq)
		return "unterminated quoted string";
	if (*o == start && !quoted)
		return "empty entry in a comma-separated list";
	HBA_PUT('\0');
#undef HBA_PUT
	if (!hba_grow((void **)&t->elems, &t->elemcap, t->nelems + 1, sizeof(*t->elems)))
		return "out of memory";
	t->elems[t->nelems].text = t->buf + start;
	t->elems[t->nelems].quoted = quoted;
	t->nelems++;
	*pp = p;
	return NULL;
}

/*
 * Splits rec into blank-separated fields of comma-separated entries,
 * stopping at '#'. Blanks around a comma are allowed ("a , b" is one list),
 * as PgBouncer reads them. Returns NULL or the reason.
 */
static const char *hba_tokenize(struct hba_toks *t, const char *rec)
{
	size_t len = strlen(rec), o = 0;
	const char *p = rec, *why;

	/* Each entry copies at most the characters it consumed, and every
	 * entry but the last is followed by a separator that is not copied:
	 * so len + 1 bytes hold all texts and their NULs. */
	if (len == SIZE_MAX || !hba_grow((void **)&t->buf, &t->bufcap, len + 1, 1))
		return "out of memory";
	t->nelems = t->nfields = 0;
	for (;;) {
		size_t first = t->nelems;

		while (hba_is_blank(*p))
			p++;
		if (*p == '\0' || *p == '#')
			return NULL;
		for (;;) {
			const char *q;

			why = hba_read_elem(t, &p, &o);
			if (why != NULL)
				return why;
			for (q = p; hba_is_blank(*q); q++)
				;
			if (*q != ',')
				break;
			for (p = q + 1; hba_is_blank(*p); p++)
				;
			if (*p == '\0' || *p == '#')
				return "comma-separated list ends with a comma";
		}
		if (!hba_grow((void **)&t->fields, &t->fieldcap, t->nfields + 1, sizeof(*t->fields)))
			return "out of memory";
		t->fields[t->nfields].first = first;
		t->fields[t->nfields].n = t->nelems - first;
		t->nfields++;
	}
}

static void hba_toks_free(struct hba_toks *t)
{
	free(t->buf);
	free(t->elems);
	free(t->fields);
}

/* ---- loader state and messages ---- */

struct hba_loader {
	struct hba *h;
	const char *path; /* the hba file */
	int line;         /* its line being parsed; 0 for whole-file messages */
	const char *inc_path; /* innermost @file being read, or NULL */
	int inc_line;
	char *err;
	size_t errlen;
};

/* "path:line: <fmt> (in @file:line)" as a malloc'd string, or NULL on OOM. */
static char *hba_vmessage(const struct hba_loader *ld, const char *fmt, va_list ap)
{
	char *body = NULL, *out = NULL;
	int n;

	if (vasprintf(&body, fmt, ap) < 0)
		return NULL;
	if (ld->line == 0)
		n = asprintf(&out, "%s: %s", ld->path, body);
	else if (ld->inc_path == NULL)
		n = asprintf(&out, "%s:%d: %s", ld->path, ld->line, body);
	else
		n = asprintf(&out, "%s:%d: %s (in %s:%d)", ld->path, ld->line, body, ld->inc_path,
			     ld->inc_line);
	free(body);
	return n < 0 ? NULL : out;
}

/* Records the load error; always returns false so callers can return it. */
__attribute__((format(printf, 2, 3))) static bool hba_fail(struct hba_loader *ld, const char *fmt,
							   ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = hba_vmessage(ld, fmt, ap);
	va_end(ap);
	snprintf(ld->err, ld->errlen, "%s", msg != NULL ? msg : "out of memory");
	free(msg);
	return false;
}

/* Adds a warning; false (with the error set) only when out of memory. */
__attribute__((format(printf, 2, 3))) static bool hba_warn(struct hba_loader *ld, const char *fmt,
							   ...)
{
	struct hba *h = ld->h;
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = hba_vmessage(ld, fmt, ap);
	va_end(ap);
	if (msg == NULL ||
	    !hba_grow((void **)&h->warnings, &h->warncap, h->nwarnings + 1, sizeof(*h->warnings))) {
		free(msg);
		return hba_fail(ld, "out of memory");
	}
	h->warnings[h->nwarnings++] = msg;
	return true;
}

/* ---- database and user fields ---- */

static bool hba_names_add(struct hba_names *nm, const char *s)
{
	char *copy;

	if (!hba_grow((void **)&nm->v, &nm->cap, nm->n + 1, sizeof(*nm->v)))
		return false;
	copy = strdup(s);
	if (copy == NULL)
		return false;
	nm->v[nm->n++] = copy;
	return true;
}

/* Sorts and de-duplicates, so hba_match can bsearch. */
static void hba_names_finish(struct hba_names *nm)
{
	size_t i, k = 0;

	if (nm->n == 0)
		return;
	qsort(nm->v, nm->n, sizeof(*nm->v), hba_cmp_str);
	for (i = 1; i < nm->n; i++) {
		if (strcmp(nm->v[i], nm->v[k]) == 0)
			free(nm->v[i]);
		else
			nm->v[++k] = nm->v[i];
	}
	nm->n = k + 1;
}

static void hba_names_free(struct hba_names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
}

/* Path of @name as seen from the file from: relative to from's directory. */
static char *hba_path_join(const char *from, const char *name)
{
	const char *slash = strrchr(from, '/');
	size_t dirlen, namelen;
	char *out;

	if (name[0] == '/' || slash == NULL)
		return strdup(name);
	dirlen = (size_t)(slash - from) + 1;
	namelen = strlen(name);
	if (namelen > SIZE_MAX - dirlen - 1)
		return NULL;
	out = malloc(dirlen + namelen + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, from, dirlen);
	memcpy(out + dirlen, name, namelen + 1);
	return out;
}

static bool hba_parse_name(struct hba_loader *ld, struct hba_rule *r, struct hba_names *nm,
			   const struct hba_elem *e, bool is_db, int depth, const char *from);

/*
 * Reads the entries of @file (path relative to from) into nm, each parsed
 * as if written in the field itself, keywords and nested @files included.
 */
static bool hba_include(struct hba_loader *ld, struct hba_rule *r, struct hba_names *nm,
			const char *name, bool is_db, int depth, const char *from)
{
	const char *saved_path = ld->inc_path, *why;
	int saved_line = ld->inc_line, first = 0, rc;
	struct hba_reader rd = { 0 };
	struct hba_toks t = { 0 };
	bool ok = true;
	char *path;

	if (name[0] == '\0')
		return hba_fail(ld, "\"@\" without a file name");
	if (depth >= HBA_MAX_DEPTH)
		return hba_fail(ld, "@%s: @files nested more than %d deep", name, HBA_MAX_DEPTH);
	path = hba_path_join(from, name);
	if (path == NULL)
		return hba_fail(ld, "out of memory");
	rd.f = fopen(path, "re");
	if (rd.f == NULL) {
		hba_fail(ld, "@%s: cannot open %s: %s", name, path, strerror(errno));
		free(path);
		return false;
	}
	ld->inc_path = path;
	while (ok && (rc = hba_read_record(&rd, &first)) != 0) {
		ld->inc_line = rc < 0 ? rd.line : first;
		if (rc < 0) {
			ok = hba_fail(ld, "%s", rd.why);
			break;
		}
		why = hba_tokenize(&t, rd.rec);
		if (why != NULL) {
			ok = hba_fail(ld, "%s", why);
			break;
		}
		for (size_t i = 0; ok && i < t.nelems; i++)
			ok = hba_parse_name(ld, r, nm, &t.elems[i], is_db, depth + 1, path);
	}
	ld->inc_path = saved_path;
	ld->inc_line = saved_line;
	hba_toks_free(&t);
	hba_reader_free(&rd);
	free(path);
	return ok;
}

/* A list entry pgmux cannot evaluate: warn; the entry matches nothing. */
__attribute__((format(printf, 3, 4))) static bool hba_unsupported(struct hba_loader *ld,
								  struct hba_rule *r,
								  const char *fmt, ...)
{
	va_list ap;
	char *what;
	bool ok;

	va_start(ap, fmt);
	if (vasprintf(&what, fmt, ap) < 0)
		what = NULL;
	va_end(ap);
	if (what == NULL)
		return hba_fail(ld, "out of memory");
	r->partial = true;
	ok = hba_warn(ld, "%s is not supported (PgBouncer does not support it either); "
			  "that entry never matches",
		      what);
	free(what);
	return ok;
}

/* One entry of a database (is_db) or user field, from the hba file or an @file. */
static bool hba_parse_name(struct hba_loader *ld, struct hba_rule *r, struct hba_names *nm,
			   const struct hba_elem *e, bool is_db, int depth, const char *from)
{
	const char *s = e->text;

	if (!e->quoted) {
		if (strcmp(s, "all") == 0) {
			nm->flags |= HBA_NAME_ALL;
			return true;
		}
		if (is_db && strcmp(s, "sameuser") == 0) {
			nm->flags |= HBA_NAME_SAMEUSER;
			return true;
		}
		if (is_db && strcmp(s, "replication") == 0) {
			nm->flags |= HBA_NAME_REPLICATION;
			return true;
		}
		if (is_db && (strcmp(s, "samerole") == 0 || strcmp(s, "samegroup") == 0))
			return hba_unsupported(ld, r, "\"%s\" (role membership)", s);
		if (!is_db && s[0] == '+')
			return hba_unsupported(ld, r, "group \"%s\"", s);
		if (s[0] == '@')
			return hba_include(ld, r, nm, s + 1, is_db, depth, from);
	}
	/* PostgreSQL 16 reads a leading slash as a regular expression even
	 * when quoted; a literal name like that would be a mistake anyway. */
	if (s[0] == '/')
		return hba_unsupported(ld, r, "regular expression \"%s\"", s);
	if (!hba_names_add(nm, s))
		return hba_fail(ld, "out of memory");
	return true;
}

static bool hba_parse_names(struct hba_loader *ld, struct hba_rule *r, struct hba_names *nm,
			    const struct hba_toks *t, const struct hba_field *f, bool is_db)
{
	for (size_t i = 0; i < f->n; i++) {
		if (!hba_parse_name(ld, r, nm, &t->elems[f->first + i], is_db, 0, ld->path))
			return false;
	}
	hba_names_finish(nm);
	return true;
}

/* ---- address field ---- */

static bool hba_parse_ip(const char *s, int *family, unsigned char out[16])
{
	memset(out, 0, 16);
	if (strchr(s, ':') != NULL) {
		*family = AF_INET6;
		return inet_pton(AF_INET6, s, out) == 1;
	}
	*family = AF_INET;
	return inet_pton(AF_INET, s, out) == 1;
}

/* "/len": 1 to 3 digits, at most 32 (IPv4) or 128 (IPv6). */
static bool hba_parse_prefix(const char *s, int family, unsigned char mask[16])
{
	unsigned bits = 0, max = family == AF_INET ? 32 : 128;
	size_t i;

	if (s[0] == '\0' || strlen(s) > 3)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		bits = bits * 10 + (unsigned)(s[i] - '0');
	}
	if (bits > max)
		return false;
	memset(mask, 0, 16);
	for (i = 0; i < bits / 8; i++)
		mask[i] = 0xff;
	if (bits % 8 != 0)
		mask[i] = (unsigned char)(0xff << (8 - bits % 8));
	return true;
}

/* Something PostgreSQL would resolve as a host name (or .domain suffix). */
static bool hba_looks_like_hostname(const char *s)
{
	bool alpha = false;

	for (; *s != '\0'; s++) {
		if (isalpha((unsigned char)*s))
			alpha = true;
		else if (!isdigit((unsigned char)*s) && *s != '.' && *s != '-' && *s != '_')
			return false;
	}
	return alpha;
}

/*
 * The address (and netmask) fields starting at *f; advances *f past them.
 * Sets r->never for forms pgmux cannot evaluate.
 */
static bool hba_parse_address(struct hba_loader *ld, struct hba_rule *r, const struct hba_toks *t,
			      size_t *f)
{
	const struct hba_field *fld;
	const struct hba_elem *e;
	unsigned char bits = 0;
	char *slash;
	size_t len;

	if (*f >= t->nfields)
		return hba_fail(ld, "end of line before the address field");
	fld = &t->fields[(*f)++];
	if (fld->n != 1)
		return hba_fail(ld, "the address field takes a single value");
	e = &t->elems[fld->first];
	if (!e->quoted && strcmp(e->text, "all") == 0) {
		r->addr_kind = HBA_ADDR_ALL;
		return true;
	}
	if (!e->quoted && (strcmp(e->text, "samehost") == 0 || strcmp(e->text, "samenet") == 0)) {
		r->never = true;
		return hba_warn(ld, "address \"%s\" is not supported (PgBouncer does not support it "
				    "either); this line never matches",
				e->text);
	}
	r->addr_kind = HBA_ADDR_IP;
	slash = strchr(e->text, '/');
	if (slash != NULL) {
		*slash = '\0'; /* e->text lives in the token buffer, which is ours */
		if (!hba_parse_ip(e->text, &r->family, r->addr))
			return hba_fail(ld, "invalid IP address \"%s\"", e->text);
		if (!hba_parse_prefix(slash + 1, r->family, r->mask))
			return hba_fail(ld, "invalid CIDR mask \"%s\" in address \"%s\"", slash + 1,
					e->text);
	} else if (hba_parse_ip(e->text, &r->family, r->addr)) {
		const struct hba_elem *m;
		int mfamily;

		if (*f >= t->nfields)
			return hba_fail(ld, "end of line before the netmask field (an address "
					    "without /len needs one)");
		fld = &t->fields[(*f)++];
		m = &t->elems[fld->first];
		if (fld->n != 1 || !hba_parse_ip(m->text, &mfamily, r->mask) ||
		    mfamily != r->family)
			return hba_fail(ld, "invalid IP mask \"%s\" for address \"%s\" (an address "
					    "without /len is followed by a netmask)",
					m->text, e->text);
	} else if (hba_looks_like_hostname(e->text)) {
		r->never = true;
		return hba_warn(ld, "host name \"%s\": host names are not supported (PgBouncer does "
				    "not support them either); this line never matches",
				e->text);
	} else {
		return hba_fail(ld, "invalid IP address \"%s\"", e->text);
	}
	len = r->family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < len; i++) {
		bits |= (unsigned char)(r->addr[i] & ~r->mask[i]);
		r->addr[i] &= r->mask[i];
	}
	/* PostgreSQL compares both sides masked, so 10.1.2.3/8 means 10/8;
	 * PgBouncer instead never matches such a rule. Say so. */
	if (bits != 0)
		return hba_warn(ld, "address \"%s\" has bits set outside its mask; they are ignored",
				e->text);
	return true;
}

/* ---- method and options ---- */

static const struct {
	const char *name;
	enum hba_method method;
} hba_methods[] = {
	{ "trust", HBA_TRUST }, { "reject", HBA_REJECT },	{ "md5", HBA_MD5 },
	{ "password", HBA_PASSWORD }, { "scram-sha-256", HBA_SCRAM }, { "cert", HBA_CERT },
	{ "peer", HBA_PEER },
};

/* Valid in PostgreSQL but not in pgmux (nor PgBouncer, which drops them). */
static const char *const hba_foreign_methods[] = {
	"gss", "sspi", "ident", "ldap", "radius", "pam", "bsd", "oauth",
};

/* Options pgmux knows the meaning of; others are kept with a warning. */
static const char *const hba_known_options[] = { "map", "clientcert", "clientname" };

static bool hba_in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s, list[i]) == 0)
			return true;
	}
	return false;
}

#define HBA_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool hba_parse_method(struct hba_loader *ld, struct hba_rule *r, const struct hba_toks *t,
			     size_t *f)
{
	const struct hba_field *fld;
	const char *s;

	if (*f >= t->nfields)
		return hba_fail(ld, "end of line before the authentication method");
	fld = &t->fields[(*f)++];
	if (fld->n != 1)
		return hba_fail(ld, "the authentication method takes a single value");
	s = t->elems[fld->first].text;
	for (size_t i = 0; i < HBA_COUNT(hba_methods); i++) {
		if (strcmp(s, hba_methods[i].name) == 0) {
			r->method = hba_methods[i].method;
			return true;
		}
	}
	if (hba_in_list(s, hba_foreign_methods, HBA_COUNT(hba_foreign_methods))) {
		/* Refusing here is what a matching line would do in effect, but
		 * PgBouncer drops the line and lets later ones match; follow it
		 * and say so. */
		r->foreign = r->never = true;
		return hba_warn(ld, "authentication method \"%s\" is not supported by pgmux; this "
				    "line never matches (as in PgBouncer)",
				s);
	}
	return hba_fail(ld, "invalid authentication method \"%s\"", s);
}

static bool hba_add_option(struct hba_loader *ld, struct hba_rule *r, const char *s)
{
	const char *eq = strchr(s, '=');
	struct hba_opt *o;

	if (eq == NULL || eq == s)
		return hba_fail(ld, "authentication option not in name=value format: \"%s\"", s);
	if (!hba_grow((void **)&r->opts, &r->optcap, r->nopts + 1, sizeof(*r->opts)))
		return hba_fail(ld, "out of memory");
	o = &r->opts[r->nopts];
	o->name = strndup(s, (size_t)(eq - s));
	o->value = strdup(eq + 1);
	if (o->name == NULL || o->value == NULL) {
		free(o->name);
		free(o->value);
		return hba_fail(ld, "out of memory");
	}
	r->nopts++;
	if (strcmp(o->name, "clientcert") == 0) {
		if (strcmp(o->value, "verify-ca") != 0 && strcmp(o->value, "verify-full") != 0)
			return hba_fail(ld, "invalid clientcert \"%s\" (verify-ca or verify-full)",
					o->value);
		if (r->type != HBA_T_HOSTSSL)
			return hba_fail(ld, "clientcert can only be set on hostssl lines");
	} else if (!r->never &&
		   !hba_in_list(o->name, hba_known_options, HBA_COUNT(hba_known_options))) {
		return hba_warn(ld, "option \"%s\" means nothing to pgmux; it is ignored", o->name);
	}
	return true;
}

/* Warnings about rules that parse but behave differently than they read. */
static bool hba_check_rule(struct hba_loader *ld, const struct hba_rule *r)
{
	if (r->method == HBA_REJECT && !r->foreign && (r->never || r->partial) &&
	    !hba_warn(ld, "this reject line is incomplete in pgmux: connections it was meant to "
			  "refuse may match a later line"))
		return false;
	if (r->never)
		return true;
	if (r->method == HBA_PEER && r->type != HBA_T_LOCAL)
		return hba_warn(ld, "peer on a line that is not local: TCP connections it matches "
				    "are rejected");
	if (r->method == HBA_CERT && r->type != HBA_T_HOSTSSL)
		return hba_warn(ld, "cert on a line that is not hostssl: connections without TLS it "
				    "matches are rejected");
	return true;
}

/* ---- records ---- */

static void hba_rule_free(struct hba_rule *r)
{
	hba_names_free(&r->db);
	hba_names_free(&r->user);
	for (size_t i = 0; i < r->nopts; i++) {
		free(r->opts[i].name);
		free(r->opts[i].value);
	}
	free(r->opts);
}

static bool hba_parse_type(struct hba_loader *ld, struct hba_rule *r, const struct hba_toks *t)
{
	const struct hba_field *fld = &t->fields[0];
	const char *s = t->elems[fld->first].text;

	if (fld->n != 1)
		return hba_fail(ld, "the connection type takes a single value");
	if (strcmp(s, "local") == 0)
		r->type = HBA_T_LOCAL;
	else if (strcmp(s, "host") == 0)
		r->type = HBA_T_HOST;
	else if (strcmp(s, "hostssl") == 0)
		r->type = HBA_T_HOSTSSL;
	else if (strcmp(s, "hostnossl") == 0)
		r->type = HBA_T_HOSTNOSSL;
	else if (strcmp(s, "hostgssenc") == 0 || strcmp(s, "hostnogssenc") == 0) {
		r->type = HBA_T_HOST;
		r->never = true;
		return hba_warn(ld, "connection type \"%s\" is not supported (pgmux has no GSSAPI "
				    "encryption, PgBouncer neither); this line never matches",
				s);
	} else if (strcmp(s, "include") == 0 || strcmp(s, "include_if_exists") == 0 ||
		   strcmp(s, "include_dir") == 0)
		return hba_fail(ld, "\"%s\" directives are not supported", s);
	else
		return hba_fail(ld, "invalid connection type \"%s\"", s);
	return true;
}

/* One tokenized record (t->nfields > 0) into a new rule of ld->h. */
static bool hba_parse_rule(struct hba_loader *ld, const struct hba_toks *t)
{
	struct hba_rule r = { .line = ld->line };
	struct hba *h = ld->h;
	size_t f = 1;
	bool ok;

	ok = hba_parse_type(ld, &r, t);
	if (ok && f >= t->nfields)
		ok = hba_fail(ld, "end of line before the database field");
	if (ok)
		ok = hba_parse_names(ld, &r, &r.db, t, &t->fields[f++], true);
	if (ok && f >= t->nfields)
		ok = hba_fail(ld, "end of line before the user field");
	if (ok)
		ok = hba_parse_names(ld, &r, &r.user, t, &t->fields[f++], false);
	if (ok && r.type != HBA_T_LOCAL)
		ok = hba_parse_address(ld, &r, t, &f);
	if (ok)
		ok = hba_parse_method(ld, &r, t, &f);
	for (; ok && f < t->nfields; f++) {
		const struct hba_field *fld = &t->fields[f];

		for (size_t i = 0; ok && i < fld->n; i++)
			ok = hba_add_option(ld, &r, t->elems[fld->first + i].text);
	}
	if (ok)
		ok = hba_check_rule(ld, &r);
	if (ok && !hba_grow((void **)&h->rules, &h->rulecap, h->nrules + 1, sizeof(*h->rules)))
		ok = hba_fail(ld, "out of memory");
	if (!ok) {
		hba_rule_free(&r);
		return false;
	}
	h->rules[h->nrules++] = r;
	return true;
}

struct hba *hba_load(const char *path, char *err, size_t errlen)
{
	struct hba_loader ld = { .path = path, .err = err, .errlen = errlen };
	struct hba_reader rd = { 0 };
	struct hba_toks t = { 0 };
	const char *why;
	bool ok = true;
	int first = 0, rc;
	char dummy[1];

	if (err == NULL || errlen == 0) {
		ld.err = dummy;
		ld.errlen = sizeof(dummy);
	}
	ld.err[0] = '\0';
	rd.f = fopen(path, "re");
	if (rd.f == NULL) {
		snprintf(ld.err, ld.errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	ld.h = calloc(1, sizeof(*ld.h));
	if (ld.h == NULL) {
		snprintf(ld.err, ld.errlen, "%s: out of memory", path);
		hba_reader_free(&rd);
		return NULL;
	}
	while (ok && (rc = hba_read_record(&rd, &first)) != 0) {
		ld.line = rc < 0 ? rd.line : first;
		if (rc < 0) {
			ok = hba_fail(&ld, "%s", rd.why);
			break;
		}
		why = hba_tokenize(&t, rd.rec);
		if (why != NULL)
			ok = hba_fail(&ld, "%s", why);
		else if (t.nfields > 0)
			ok = hba_parse_rule(&ld, &t);
	}
	ld.line = 0;
	if (ok && ld.h->nrules == 0)
		ok = hba_warn(&ld, "no rules: every connection is rejected");
	hba_toks_free(&t);
	hba_reader_free(&rd);
	if (!ok) {
		hba_free(ld.h);
		return NULL;
	}
	return ld.h;
}

void hba_free(struct hba *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->nrules; i++)
		hba_rule_free(&h->rules[i]);
	free(h->rules);
	for (size_t i = 0; i < h->nwarnings; i++)
		free(h->warnings[i]);
	free(h->warnings);
	free(h);
}

/* ---- matching ---- */

static bool hba_type_match(enum hba_type type, const struct hba_conn *c)
{
	switch (type) {
	case HBA_T_LOCAL:
		return c->unix_socket;
	case HBA_T_HOST:
		return !c->unix_socket;
	case HBA_T_HOSTSSL:
		return !c->unix_socket && c->tls;
	case HBA_T_HOSTNOSSL:
		return !c->unix_socket && !c->tls;
	}
	return false;
}

/* The peer's address bytes; false for families other than IPv4/IPv6. */
static bool hba_peer_ip(const struct sockaddr *sa, int *family, unsigned char ip[16])
{
	/* memcpy, not a cast: sa may point at a plain struct sockaddr. */
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in sin;

		memcpy(&sin, sa, sizeof(sin));
		memcpy(ip, &sin.sin_addr, 4);
		*family = AF_INET;
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, sa, sizeof(sin6));
		memcpy(ip, &sin6.sin6_addr, 16);
		*family = AF_INET6;
		return true;
	}
	return false;
}

static bool hba_addr_match(const struct hba_rule *r, const struct sockaddr *sa)
{
	static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	unsigned char ip[16];
	size_t len;
	int family;

	if (r->addr_kind == HBA_ADDR_ALL)
		return true;
	if (sa == NULL || !hba_peer_ip(sa, &family, ip))
		return false;
	/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; PostgreSQL
	 * lets IPv4 rules match them. */
	if (family == AF_INET6 && r->family == AF_INET && memcmp(ip, v4mapped, 12) == 0) {
		memmove(ip, ip + 12, 4);
		family = AF_INET;
	}
	if (family != r->family)
		return false;
	len = family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < len; i++) {
		if ((ip[i] & r->mask[i]) != r->addr[i])
			return false;
	}
	return true;
}

/* name is in nm; same is the other name, for sameuser. */
static bool hba_names_match(const struct hba_names *nm, const char *name, const char *same)
{
	if (nm->flags & HBA_NAME_ALL)
		return true;
	if ((nm->flags & HBA_NAME_SAMEUSER) && strcmp(name, same) == 0)
		return true;
	return nm->n > 0 && bsearch(&name, nm->v, nm->n, sizeof(*nm->v), hba_cmp_str) != NULL;
}

static bool hba_rule_match(const struct hba_rule *r, const struct hba_conn *c)
{
	if (r->never || !hba_type_match(r->type, c))
		return false;
	if (!c->unix_socket && !hba_addr_match(r, c->addr))
		return false;
	/* Physical replication has no database: only the keyword covers it. */
	if (c->replication ? !(r->db.flags & HBA_NAME_REPLICATION)
			   : !hba_names_match(&r->db, c->database, c->user))
		return false;
	return hba_names_match(&r->user, c->user, c->database);
}

enum hba_method hba_match(const struct hba *h, const struct hba_conn *c, int *line_out)
{
	if (line_out != NULL)
		*line_out = 0;
	if (h == NULL || c == NULL || c->database == NULL || c->user == NULL)
		return HBA_REJECT;
	for (size_t i = 0; i < h->nrules; i++) {
		const struct hba_rule *r = &h->rules[i];

		if (!hba_rule_match(r, c))
			continue;
		if (line_out != NULL)
			*line_out = r->line;
		/* The first match decides; a method that cannot work on this
		 * connection fails authentication instead of falling through. */
		if (r->method == HBA_PEER && !c->unix_socket)
			return HBA_REJECT;
		if (r->method == HBA_CERT && (c->unix_socket || !c->tls))
			return HBA_REJECT;
		return r->method;
	}
	return HBA_REJECT;
}

static int hba_cmp_line(const void *key, const void *elem)
{
	int line = *(const int *)key, rl = ((const struct hba_rule *)elem)->line;

	return (line > rl) - (line < rl);
}

const char *hba_option(const struct hba *h, int line, const char *name)
{
	const struct hba_rule *r;

	if (h == NULL || name == NULL || h->nrules == 0)
		return NULL;
	r = bsearch(&line, h->rules, h->nrules, sizeof(*h->rules), hba_cmp_line);
	if (r == NULL)
		return NULL;
	for (size_t i = r->nopts; i > 0; i--) {
		if (strcmp(r->opts[i - 1].name, name) == 0)
			return r->opts[i - 1].value;
	}
	return NULL;
}

size_t hba_rule_count(const struct hba *h)
{
	return h != NULL ? h->nrules : 0;
}

size_t hba_warning_count(const struct hba *h)
{
	return h != NULL ? h->nwarnings : 0;
}

const char *hba_warning(const struct hba *h, size_t i)
{
	return h != NULL && i < h->nwarnings ? h->warnings[i] : NULL;
}
