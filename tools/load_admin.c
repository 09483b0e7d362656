/*
 * load_admin.c: pgmux's admin console from pgmux-load's parent process.
 * Plain libpq with a poll()-bounded wait per query: the parent does nothing
 * time-critical (the clients run in the workers), so a blocking query of a
 * few milliseconds once a second is fine, but a hung console must not hang
 * the run, hence the deadline.
 */
#include "load_admin.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#define LOAD_ADMIN_TIMEOUT_MS 2000
#define LOAD_ADMIN_MAX_PARAMS 64

struct load_admin {
	PGconn *pg; /* NULL once a query failed */
};

/* Keywords of the run's conninfo the console connection must not inherit. */
static bool admin_skip_keyword(const char *k)
{
	static const char *const skip[] = {
		"dbname", "user", "password", "application_name", "fallback_application_name",
		"connect_timeout", "options", "replication", "target_session_attrs",
	};
	size_t i;

	for (i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (strcmp(k, skip[i]) == 0)
			return true;
	return false;
}

static PGconn *admin_connect(const char *const *kw, const char *const *vals, const char *db,
			     const char *user, const char *password)
{
	const char *k[LOAD_ADMIN_MAX_PARAMS + 8];
	const char *v[LOAD_ADMIN_MAX_PARAMS + 8];
	size_t n = 0, i;

	for (i = 0; kw[i] != NULL && n < LOAD_ADMIN_MAX_PARAMS; i++) {
		if (admin_skip_keyword(kw[i]))
			continue;
		k[n] = kw[i];
		v[n++] = vals[i];
	}
	k[n] = "dbname";
	v[n++] = db;
	k[n] = "user";
	v[n++] = user;
	if (password != NULL) {
		k[n] = "password";
		v[n++] = password;
	}
	k[n] = "connect_timeout";
	v[n++] = "2";
	k[n] = "application_name";
	v[n++] = "pgmux-load-admin";
	k[n] = NULL;
	v[n] = NULL;
	return PQconnectdbParams(k, v, 0);
}

static long long admin_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the socket is ready for events or the deadline; false on timeout/error. */
static bool admin_wait(PGconn *pg, short events, long long deadline)
{
	struct pollfd p = { .fd = PQsocket(pg), .events = events };
	long long left;
	int rc;

	for (;;) {
		left = deadline - admin_now_ms();
		if (left <= 0)
			return false;
		rc = poll(&p, 1, (int)left);
		if (rc > 0)
			return true;
		if (rc == 0 || errno != EINTR)
			return false;
	}
}

/* Runs sql; returns its last result if that has rows, else NULL. */
static PGresult *admin_query(PGconn *pg, const char *sql)
{
	long long deadline = admin_now_ms() + LOAD_ADMIN_TIMEOUT_MS;
	PGresult *last = NULL;
	int rc;

	if (!PQsendQuery(pg, sql))
		return NULL;
	while ((rc = PQflush(pg)) == 1)
		if (!admin_wait(pg, POLLOUT, deadline))
			return NULL;
	if (rc < 0)
		return NULL;
	for (;;) {
		while (!PQisBusy(pg)) {
			PGresult *r = PQgetResult(pg);

			if (r == NULL) {
				if (last != NULL && PQresultStatus(last) == PGRES_TUPLES_OK)
					return last;
				PQclear(last);
				return NULL;
			}
			PQclear(last);
			last = r;
		}
		if (!admin_wait(pg, POLLIN, deadline) || !PQconsumeInput(pg)) {
			PQclear(last);
			return NULL;
		}
	}
}

struct load_admin *load_admin_open(const char *const *kw, const char *const *vals,
				   const char *user, const char *password)
{
	static const char *const dbs[] = { "pgmux", "pgbouncer" };
	struct load_admin *a;
	PGconn *pg = NULL;
	PGresult *r;
	size_t i;

	for (i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		pg = admin_connect(kw, vals, dbs[i], user, password);
		if (pg != NULL && PQstatus(pg) == CONNECTION_OK)
			break;
		PQfinish(pg);
		pg = NULL;
	}
	if (pg == NULL)
		return NULL;
	/* PgBouncer has a console too, but no SHOW FD_USAGE: not a pgmux. */
	r = admin_query(pg, "SHOW FD_USAGE");
	if (r == NULL || PQsetnonblocking(pg, 1) != 0) {
		PQclear(r);
		PQfinish(pg);
		return NULL;
	}
	PQclear(r);
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		PQfinish(pg);
		return NULL;
	}
	a->pg = pg;
	return a;
}

static char *admin_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

/* Copies a result into t (emptied first); -1 when out of memory. */
static int admin_table(const PGresult *r, struct load_table *t)
{
	int nf = PQnfields(r), nt = PQntuples(r);
	size_t cells = (size_t)nf * (size_t)nt;
	int i, j;

	load_report_table_free(t);
	/* calloc(0) may return NULL: ask for at least one slot. */
	t->names = calloc(nf > 0 ? (size_t)nf : 1, sizeof(char *));
	t->values = calloc(cells > 0 ? cells : 1, sizeof(char *));
	if (t->names == NULL || t->values == NULL) {
		load_report_table_free(t);
		return -1;
	}
	t->ncols = nf;
	t->nrows = nt;
	for (j = 0; j < nf; j++)
		if ((t->names[j] = admin_strdup(PQfname(r, j))) == NULL)
			goto oom;
	for (i = 0; i < nt; i++)
		for (j = 0; j < nf; j++)
			if (!PQgetisnull(r, i, j) &&
			    (t->values[i * nf + j] = admin_strdup(PQgetvalue(r, i, j))) == NULL)
				goto oom;
	return 0;
oom:
	load_report_table_free(t);
	return -1;
}

/* One SHOW into t; -1 if it failed. */
static int admin_show(struct load_admin *a, const char *sql, struct load_table *t)
{
	PGresult *r = admin_query(a->pg, sql);
	int rc;

	if (r == NULL)
		return -1;
	rc = admin_table(r, t);
	PQclear(r);
	return rc;
}

int load_admin_snapshot(struct load_admin *a, struct load_snapshot *out)
{
	if (a == NULL || a->pg == NULL)
		return -1;
	if (admin_show(a, "SHOW FD_USAGE", &out->fd_usage) != 0 ||
	    admin_show(a, "SHOW SATURATION", &out->saturation) != 0) {
		/* A console that failed once (or hung) is not asked again. */
		PQfinish(a->pg);
		a->pg = NULL;
		return -1;
	}
	return 0;
}

void load_admin_close(struct load_admin *a)
{
	if (a == NULL)
		return;
	PQfinish(a->pg);
	free(a);
}
