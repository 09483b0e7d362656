/*
 * userlist.c: the auth_file loader (PgBouncer's userlist.txt: lines of
 * "user" "secret", a doubled quote standing for a quote). Owns every
 * struct cfg_userlist it returns; cfg_userlist_free() releases it.
 */
/* Insertion failures must come back to us, not call exit(); see cfg_userlist_add(). */
#define HASH_NONFATAL_OOM 1

#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- auth_file ---- */

/*
 * Reads one "..."-quoted field at *pp, where "" stands for a quote, into
 * a malloc'd string. NULL when there is no opening or closing quote.
 */
static char *cfg_userlist_field(const char **pp)
{
	const char *p = *pp;
	char *out, *dst;

	if (*p != '"')
		return NULL;
	out = malloc(strlen(p));
	if (out == NULL)
		return NULL;
	dst = out;
	for (p++;; p++) {
		if (*p == '\0') {
			free(out);
			return NULL;
		}
		if (*p == '"') {
			if (p[1] != '"')
				break;
			p++;
		}
		*dst++ = *p;
	}
	*dst = '\0';
	*pp = p + 1;
	return out;
}

/* Adds or (a later line wins, as in PgBouncer) replaces user's secret. */
static bool cfg_userlist_add(struct cfg_userlist *ul, char *user, char *secret)
{
	struct cfg_secret *s, *found;

	HASH_FIND_STR(ul->by_user, user, s);
	if (s != NULL) {
		free(s->secret);
		s->secret = secret;
		free(user);
		return true;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return false;
	s->user = user;
	s->secret = secret;
	/* With HASH_NONFATAL_OOM a failed insert leaves s out of the table. */
	HASH_ADD_KEYPTR(hh, ul->by_user, s->user, strlen(s->user), s);
	HASH_FIND_STR(ul->by_user, user, found);
	if (found != s) {
		free(s);
		return false;
	}
	return true;
}

struct cfg_userlist *cfg_userlist_load(const char *path, char *err, size_t errlen)
{
	struct cfg_userlist *ul;
	char *buf = NULL, *user = NULL, *secret = NULL;
	const char *why = NULL;
	size_t cap = 0;
	int line = 0;
	ssize_t n;
	FILE *f;
	char dummy[1];

	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	ul = calloc(1, sizeof(*ul));
	if (ul == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}

	while ((n = getline(&buf, &cap, f)) >= 0) {
		const char *p = buf;

		line++;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0' || *p == ';' || *p == '#')
			continue;
		if (memchr(buf, '\0', (size_t)n) != NULL) {
			why = "NUL byte in line";
			break;
		}
		user = cfg_userlist_field(&p);
		if (user == NULL) {
			why = "malformed line, expected \"user\" \"secret\"";
			break;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		secret = cfg_userlist_field(&p);
		if (secret == NULL) {
			why = "malformed line, expected \"user\" \"secret\"";
			break;
		}
		/* PgBouncer ignores whatever follows the second field. */
		if (user[0] == '\0') {
			why = "empty user name";
			break;
		}
		if (!cfg_userlist_add(ul, user, secret)) {
			why = "out of memory";
			break;
		}
		user = secret = NULL;
	}
	if (why == NULL && ferror(f)) {
		snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
		why = "";
	} else if (why != NULL) {
		snprintf(err, errlen, "%s:%d: %s", path, line, why);
	}
	free(user);
	free(secret);
	free(buf);
	fclose(f);
	if (why != NULL) {
		cfg_userlist_free(ul);
		return NULL;
	}
	return ul;
}

const char *cfg_userlist_find(const struct cfg_userlist *ul, const char *user)
{
	struct cfg_secret *s;

	if (ul == NULL || user == NULL)
		return NULL;
	HASH_FIND_STR(ul->by_user, user, s);
	return s != NULL ? s->secret : NULL;
}

void cfg_userlist_free(struct cfg_userlist *ul)
{
	struct cfg_secret *s, *tmp;

	if (ul == NULL)
		return;
	HASH_ITER(hh, ul->by_user, s, tmp) {
		HASH_DEL(ul->by_user, s);
		free(s->user);
		free(s->secret);
		free(s);
	}
	free(ul);
}
