/*
 * prepared.h: protocol-level named prepared statements across pooled
 * servers (transaction and statement mode, max_prepared_statements > 0).
 *
 * A client's Parse("s1", query, types) is kept as a name in the client's
 * map pointing at a shared statement: one per distinct (query, types),
 * named "PGMUX_<16 hex>" after a hash of them, so identical statements of
 * different clients are one statement on each server. Every Bind,
 * Describe('S') and Close('S') naming a mapped statement is rewritten to
 * the shared name; a server that lacks the statement (or may have lost it)
 * gets Close + Parse injected just before. Each server keeps the set of
 * statements it has, with an LRU list bounded by max_prepared_statements
 * (the least recently used is closed on the server when room is needed).
 * The unnamed statement and portals pass through untouched.
 *
 * Responses are ordered per pipeline, so each server has a queue of the
 * answers it owes, one entry per message that gets one, each with an
 * action: forward it, swallow it (pgmux injected the message), synthesize
 * it (pgmux did not send the message: ParseComplete for a statement the
 * server already has, CloseComplete for a client's Close), or replace an
 * error. An ErrorResponse to an extended-protocol message makes
 * PostgreSQL skip everything until Sync: the entries in between get no
 * answer, synthesized ones are not sent either, and whatever pgmux had
 * recorded for them is undone, so the client's map and the server's set
 * stay what PostgreSQL has.
 *
 * The data structures are in prep_state.h (pure, unit-tested); this is
 * what client.c and server.c call.
 */
#ifndef PGMUX_PREPARED_H
#define PGMUX_PREPARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prep_state.h"
#include "proto_frame.h"

/* ---- called by client.c and server.c ---- */

struct client;
struct server;
struct pool;

/* Whether clients of p get their statements tracked (mode and config). */
bool prep_enabled(const struct pool *p);
/* c starts tracking if enabled for its pool and nothing is in flight. */
void prep_client_maybe_start(struct client *c);
/* Client gone: its names are dropped. */
void prep_client_closed(struct client *c);

enum prep_idle {
	PREP_IDLE_NO,     /* it needs a server */
	PREP_IDLE_DONE,   /* answered here: a Parse and its Sync were consumed */
	PREP_IDLE_WAIT,   /* cannot tell before more bytes come */
	PREP_IDLE_CLOSED, /* the answer could not be sent: c is closed */
};
/*
 * A client without a server whose buffer starts with Parse (named) then
 * Sync, outside a transaction, for a statement some server has already
 * prepared: pgmux records the name and answers ParseComplete and
 * ReadyForQuery itself. libpq's PQprepare sends exactly that; answering
 * it without a server keeps a client (pgbench) that prepares with a
 * blocking call from waiting for servers its own other sessions hold.
 */
enum prep_idle prep_client_idle(struct client *c);

enum prep_msg {
	PREP_MSG_PASS,    /* forward the message as it is */
	PREP_MSG_REWRITE, /* send the server's to_server bytes instead of the
			   * message's first *consume bytes (the rest, if any,
			   * flows through unchanged) */
	PREP_MSG_WAIT,    /* needs more of the message: stop, keep it buffered */
	PREP_MSG_FULL,    /* stop until the server answers more (its queue is full,
			   * or a name's Parse is unanswered); a Flush is queued
			   * for the server so that its answers come */
	PREP_MSG_FATAL,   /* the client must go; *why says why */
	PREP_MSG_COLLECT, /* a Parse larger than the read buffer: pgmux keeps its
			   * first *consume bytes; prep_client_collect takes
			   * the rest */
};

/*
 * A client message for linked server about to be forwarded. raw: its
 * first byte, avail: bytes of it at hand (m->whole says if all). Nothing
 * is changed on WAIT or FULL.
 */
enum prep_msg prep_client_message(struct client *c, const struct proto_msg *m,
				  const uint8_t *raw, size_t avail, size_t *consume,
				  const char **why);
/* Whether c is in the middle of a Parse pgmux gathers. */
bool prep_client_collecting(const struct client *c);
/*
 * Takes up to n more bytes of it (*took). WAIT while more must come; once
 * all is here it is handled as prep_client_message would a whole message
 * (REWRITE, FULL to try again later).
 */
enum prep_msg prep_client_collect(struct client *c, const uint8_t *p, size_t n, size_t *took);

/*
 * A server message for the linked (tracking) client, after every wait for
 * it to be whole: what to do with it. sets *why on BROKEN.
 */
enum prep_answer prep_server_message(struct server *s, const struct proto_msg *m,
				     const char **why);
/* The server has bytes of pgmux's own to send (to either side). */
bool prep_has_output(const struct server *s);
/* How many of them are for the server. */
size_t prep_output_to_server(const struct server *s);
/* A client message joins pgmux's bytes for s, so one write carries all. */
void prep_append_server(struct server *s, const uint8_t *p, size_t n);
/* Sends them: rewritten/injected messages to s, synthesized answers to its
 * client. 0, or -1 if the server (1: the client) could not be written.
 * *answered (may be NULL): answers went to the client. */
int prep_send_output(struct server *s, bool *answered);
/* Nothing is owed and nothing pending: s may go back to the pool. */
bool prep_server_quiet(const struct server *s);
/* s was linked to a client: statements it uses from now on are pinned. */
void prep_server_linked(struct server *s);
/* A CommandComplete s sent in a reset or check: DISCARD ALL or
 * DEALLOCATE ALL drops its statements. */
void prep_server_note_complete(struct server *s, const uint8_t *body, size_t len);
/* Server gone. */
void prep_server_closed(struct server *s);
/* After the server answered: resumes a client that stopped (queue full). */
void prep_kick_client(struct client *c);
/* SHOW CLIENTS / SHOW SERVERS. */
uint32_t prep_client_count(const struct client *c);
uint32_t prep_server_count(const struct server *s);
/* SHOW MEM: statements known prepared over all servers. */
uint32_t prep_server_entries(void);

#endif /* PGMUX_PREPARED_H */
