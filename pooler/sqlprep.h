/*
 * sqlprep.h: SQL-level prepared statements (PREPARE, EXECUTE, DEALLOCATE
 * [ALL], DISCARD ALL) across pooled servers in transaction and statement
 * mode.
 *
 * A statement made with PREPARE keeps the client's own name on the server
 * (EXECUTE, EXPLAIN EXECUTE, CREATE TABLE AS EXECUTE and a protocol Bind
 * of that name pass through untouched). pgmux keeps, for each client and
 * each server, the set of SQL-level names it has with their definitions
 * (the text after the name). Before a client's transaction goes to a
 * server whose set differs, the server is brought in line with the
 * client, in the same round trip as the parameter SETs: names the client
 * lacks are closed (a protocol Close, which never fails), and names it has
 * are prepared again from their text. A client therefore sees exactly its
 * own statements, never another client's, wherever its transactions run.
 *
 * The sets change only on what PostgreSQL confirms: the statement text of
 * each whole Query and unnamed Parse is scanned for PREPARE / DEALLOCATE
 * statements, each becomes a pending effect, and the effect applies when
 * its CommandComplete tag ("PREPARE", "DEALLOCATE") comes back; those not
 * confirmed by the ReadyForQuery that ends their message did not happen
 * (an error stops a multi-statement string). "DEALLOCATE ALL" and
 * "DISCARD ALL" empty both sets. A tag pgmux cannot match falls back to
 * the session-state reset (params.h, PARAM_LEAK_PREPARE).
 *
 * The scanner and the sets are pure code, unit-tested in
 * test/unit/test_sqlprep.c; the sqlprep_client_* / sqlprep_server_*
 * functions are what client.c, server.c and pool.c call.
 */
#ifndef PGMUX_SQLPREP_H
#define PGMUX_SQLPREP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uthash.h>

#include "proto_build.h"

/* PostgreSQL's NAMEDATALEN: names are cut to 63 bytes. */
#define SQLPREP_NAME_MAX 64
/* SQL-level statements one client may hold, and their text; beyond, a
 * PREPARE is not carried (the server is reset, as for any session state). */
#define SQLPREP_CLIENT_MAX 1000
#define SQLPREP_CLIENT_BYTES (1u << 20)
/* What sqlprep_build_sync may append at most: every name closed and
 * prepared again ("PREPARE \"name\" " with quotes doubled, and framing). */
#define SQLPREP_SYNC_MAX                                                                         \
	(SQLPREP_CLIENT_BYTES + (size_t)SQLPREP_CLIENT_MAX * 2 * (3 * SQLPREP_NAME_MAX + 32) + 16)

/* ---- the scanner ---- */

enum sqlprep_op {
	SQLPREP_OP_PREPARE,
	SQLPREP_OP_DEALLOCATE,
	SQLPREP_OP_DEALLOCATE_ALL,
	SQLPREP_OP_DISCARD_ALL,
};

struct sqlprep_found {
	enum sqlprep_op op;
	char name[SQLPREP_NAME_MAX]; /* PREPARE, DEALLOCATE: as PostgreSQL keeps it */
	const uint8_t *def;          /* PREPARE: the text after the name, to the */
	size_t def_len;              /* statement's end (no ';', no trailing space) */
};

typedef void (*sqlprep_found_fn)(void *arg, const struct sqlprep_found *f);

/*
 * Calls fn, in order, for each statement of sql[0..len) that is PREPARE
 * name, DEALLOCATE [PREPARE] name|ALL or DISCARD ALL. Statements are split
 * at top-level ';' with quotes, dollar quotes and comments skipped;
 * std_strings: standard_conforming_strings is on (else a backslash escapes
 * in '' too). PREPARE TRANSACTION is not a statement prepare. Returns how
 * many were found.
 */
size_t sqlprep_scan(const uint8_t *sql, size_t len, bool std_strings, sqlprep_found_fn fn,
		    void *arg);

/* ---- a set of names ---- */

struct prep_stmt;

struct sqlprep_name {
	UT_hash_handle hh;
	struct prep_stmt *def; /* referenced; one per distinct text (prep registry) */
	char name[SQLPREP_NAME_MAX];
};

struct sqlprep_set {
	struct sqlprep_name *names;
	uint32_t count;
	size_t bytes; /* definition bytes its names stand for */
};

struct sqlprep_name *sqlprep_set_find(const struct sqlprep_set *set, const char *name);
/* Adds or replaces name -> def (a new reference to def). */
void sqlprep_set_put(struct sqlprep_set *set, const char *name, struct prep_stmt *def);
void sqlprep_set_del(struct sqlprep_set *set, const char *name);
void sqlprep_set_clear(struct sqlprep_set *set);
/* Whether a and b hold the same names with the same definitions. */
bool sqlprep_set_same(const struct sqlprep_set *a, const struct sqlprep_set *b);

/* ---- called by client.c, server.c and pool.c ---- */

struct client;
struct server;

/* A whole Query or Parse c forwards to its server (transaction and
 * statement mode): its PREPARE/DEALLOCATE statements become pending. */
void sqlprep_client_message(struct client *c, uint8_t type, const uint8_t *body, size_t len);
/* Client gone: its set is dropped. */
void sqlprep_client_closed(struct client *c);
uint32_t sqlprep_client_count(const struct client *c);

/* A CommandComplete from s (c: its client, NULL in pgmux's own queries).
 * Returns enum param_leak bits for what could not be tracked. */
unsigned sqlprep_server_tag(struct server *s, struct client *c, const uint8_t *tag, size_t len);
/* A ReadyForQuery from s: pending effects it ends are settled. */
void sqlprep_server_ready(struct server *s);
/* s goes back to the pool: nothing can be pending any more. */
void sqlprep_server_released(struct server *s);
void sqlprep_server_closed(struct server *s);
uint32_t sqlprep_server_count(const struct server *s);

/* Whether s has exactly c's SQL-level statements. */
bool sqlprep_in_sync(const struct client *c, const struct server *s);
/*
 * Appends to out what brings s in line with c: a Close per name s must
 * lose, then a Sync, then one PREPARE Query per name s lacks. zs_before:
 * ReadyForQuery messages s sends before these (the SET query). Returns
 * the ReadyForQuery messages added.
 */
unsigned sqlprep_build_sync(struct proto_buf *out, const struct client *c, struct server *s,
			    unsigned zs_before);

#endif /* PGMUX_SQLPREP_H */
