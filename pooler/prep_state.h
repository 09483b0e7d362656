/*
 * prep_state.h: the bookkeeping behind prepared.c, as pure data structures
 * (no I/O, no globals; unit-tested in test/unit/test_prepared.c): shared
 * statements and their names, a client's names, a server's prepared set
 * with its LRU, and the queue of answers a server owes with what each
 * answer does to it. See prepared.h for the scheme.
 */
#ifndef PGMUX_PREP_STATE_H
#define PGMUX_PREP_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uthash.h>

#include "list.h"
#include "proto_build.h"

#define PREP_NAME_PREFIX "PGMUX_"
#define PREP_NAME_SIZE 24 /* "PGMUX_" + 16 hex digits + NUL, rounded */
/* Answers one server may owe before its client is made to wait. */
#define PREP_QUEUE_MAX 4096
/* A pipeline segment this small is kept to be sent again (0A000 retry). */
#define PREP_REPLAY_MAX 8192
/* Names one client may hold: this many times max_prepared_statements. */
#define PREP_CLIENT_FACTOR 10
#define PREP_CLIENT_MIN 100
/* Statement bytes (query and types) one client's names may stand for. */
#define PREP_CLIENT_BYTES (64u << 20)
/* A named Parse larger than the read buffer is gathered on the heap up to
 * this size; a larger one is refused (54000). */
#define PREP_STMT_MAX (1u << 20)
/* pgmux's own bytes per direction and server, at most. */
#define PREP_OUT_MAX (4u << 20)

/* ---- shared statements ---- */

struct prep_registry {
	struct prep_stmt *by_body; /* uthash keyed by the statement's bytes */
	struct prep_stmt *by_hash; /* uthash keyed by the name's hash: names stay unique */
	uint32_t count;
	size_t bytes;              /* statement bytes held */
	uint32_t server_entries;   /* statements known prepared, over all servers */
};

struct prep_stmt {
	UT_hash_handle hh;       /* registry by_body */
	UT_hash_handle hh_hash;  /* registry by_hash */
	struct prep_registry *reg;
	uint32_t refs;           /* names, server sets and queue entries using it */
	uint64_t hash;
	bool may_deallocate;     /* its text mentions DISCARD or DEALLOCATE */
	bool proven;             /* a server has prepared it: the text is valid SQL */
	char name[PREP_NAME_SIZE];
	size_t len;
	uint8_t body[];          /* query NUL, int16 count, count x int32 type OIDs */
};

/* FNV-1a, 64 bits. */
uint64_t prep_hash(const void *p, size_t n);
/* Finds or creates the statement for body (one more reference). A name
 * whose hash is taken by a different statement moves to the next free one. */
struct prep_stmt *prep_stmt_get(struct prep_registry *r, const uint8_t *body, size_t len);
/* The statement for body if one exists (no new reference). */
struct prep_stmt *prep_stmt_find(struct prep_registry *r, const uint8_t *body, size_t len);
void prep_stmt_ref(struct prep_stmt *st);
/* Drops a reference; the last one frees it. */
void prep_stmt_unref(struct prep_stmt *st);
/* Whether SQL text mentions DISCARD or DEALLOCATE (case-insensitive): it
 * may drop the server's statements when run. */
bool prep_sql_may_deallocate(const uint8_t *sql, size_t len);
/* Whether a whole Query is DEALLOCATE [PREPARE] ALL or DISCARD ALL. */
bool prep_sql_clears_all(const uint8_t *sql, size_t len);
/* Whether the first len bytes of a Query may still turn out to be one. */
bool prep_sql_may_clear(const uint8_t *sql, size_t len);

/* ---- a client's names ---- */

struct prep_name {
	UT_hash_handle hh;      /* prep_client.names */
	struct prep_stmt *stmt;
	uint32_t refs;          /* queue entries that may undo its creation or removal */
	bool live;              /* in the map; else kept only for those entries */
	bool pending;           /* created by a Parse the server has not answered yet */
	char name[];
};

struct prep_client {
	struct prep_name *names;
	uint32_t count;
	size_t bytes;           /* statement bytes its names stand for */
	bool stalled;           /* stopped with requests buffered: resume when the server drains */
	/* A named Parse larger than the read buffer, gathered here. */
	struct proto_buf big;
	uint32_t big_left;      /* its bytes still to come */
	bool big_ready;         /* all here, not yet handled (a stall came first) */
	bool big_refused;       /* over PREP_STMT_MAX: its bytes are dropped */
};

struct prep_client *prep_client_new(void);
void prep_client_free(struct prep_client *pc);
struct prep_name *prep_name_find(struct prep_client *pc, const char *name);
/* Adds name -> st (a new reference to st). The name must not be live. */
struct prep_name *prep_name_add(struct prep_client *pc, const char *name, struct prep_stmt *st);
/* Takes a live name out of the map; freed once no entry refers to it. */
void prep_name_kill(struct prep_client *pc, struct prep_name *nm);
/* Puts a killed name back, unless the name is live again meanwhile. */
void prep_name_revive(struct prep_client *pc, struct prep_name *nm);
void prep_name_unref(struct prep_name *nm);
/* Drops every name (DEALLOCATE ALL, DISCARD ALL). */
void prep_names_clear(struct prep_client *pc);

/* ---- a server's statements and the answers it owes ---- */

struct prep_sstmt {
	UT_hash_handle hh;      /* prep_server.set, keyed by stmt pointer */
	struct list_node lru;   /* prep_server.lru: least recently used first */
	struct prep_stmt *stmt;
	uint64_t used_epoch;    /* link during which it was last used */
	uint32_t gen;           /* valid while equal to prep_server.gen */
	bool stale;             /* the server's copy is unusable (0A000, 26000) */
};

enum prep_kind {
	PREP_K_EXT,   /* Parse, Bind, Describe, Execute, Close: one answer; an
		       * error skips to the next Sync */
	PREP_K_QUERY, /* Query, FunctionCall: answers end with ReadyForQuery */
	PREP_K_SYNC,  /* Sync: ReadyForQuery; ends a skip */
};

enum prep_act {
	PREP_A_FORWARD, /* the client's message: its answer goes to the client */
	PREP_A_SWALLOW, /* pgmux's own message: its answer is dropped (an error is not) */
	PREP_A_SYNTH,   /* not sent: pgmux answers in its place, in order */
	PREP_A_REPLACE, /* sent to make the server fail here: its 34000 error becomes ours */
};

enum prep_undo {
	PREP_U_NONE,
	PREP_U_PARSED,  /* the server did not prepare stmt; a name it created is no more */
	PREP_U_NAMED,   /* a name created with a synthesized ParseComplete is no more */
	PREP_U_EVICTED, /* the server did not close stmt: it is still in its set */
	PREP_U_CLOSED,  /* the client's Close did not happen: the name is back */
};

enum prep_entry_flag {
	PREP_F_SEG_FIRST = 1, /* first answer of a segment kept for replay */
};

struct prep_entry {
	uint8_t kind;     /* enum prep_kind */
	uint8_t act;      /* enum prep_act */
	uint8_t undo;     /* enum prep_undo, applied if it fails or is skipped */
	uint8_t expect;   /* SWALLOW/SYNTH: '1' ParseComplete, '3' CloseComplete, 'Z' */
	uint8_t what;     /* message type sent ('B', 'D', ...) */
	uint8_t flags;    /* enum prep_entry_flag */
	uint32_t count;   /* plain FORWARD entries of one kind are folded */
	struct prep_stmt *stmt; /* referenced, or NULL */
	struct prep_name *name; /* referenced, or NULL */
	uint8_t *synth;   /* REPLACE: the error to send instead (owned) */
	size_t synth_len;
};

/* Recording of the current pipeline segment for the 0A000 retry. */
enum prep_seg {
	PREP_SEG_OFF,   /* not eligible */
	PREP_SEG_REC,   /* recording: started outside a transaction, nothing owed */
	PREP_SEG_READY, /* complete up to its Sync, nothing sent after it */
};

struct prep_server {
	struct prep_sstmt *set;
	struct list lru;
	uint64_t epoch;           /* bumped at each link: statements used since are pinned */
	uint32_t gen;             /* bumped when the server may have dropped its statements */
	struct prep_entry *q;     /* ring of q_cap */
	uint32_t q_head, q_len, q_cap;
	bool skipping;            /* after an error, the server ignores all until Sync */
	enum prep_seg seg;
	bool seg_first;           /* the next entry pushed opens the segment */
	bool seg_describe;        /* the segment asks for a row description */
	bool seg_retried;
	struct proto_buf replay;  /* the segment's bytes as the server got them */
	struct proto_buf to_client; /* synthesized answers, sent in order by the caller */
	struct proto_buf to_server; /* rewritten or injected messages */
};

struct prep_server *prep_server_new(void);
void prep_server_free(struct prep_server *ps);

struct prep_sstmt *prep_set_find(struct prep_server *ps, struct prep_stmt *st);
bool prep_set_valid(const struct prep_server *ps, const struct prep_sstmt *e);
/* Marks e used now (most recent, pinned for this link). */
void prep_set_touch(struct prep_server *ps, struct prep_sstmt *e);
/* Adds st as prepared and valid (or revalidates it); returns its entry. */
struct prep_sstmt *prep_set_add(struct prep_server *ps, struct prep_stmt *st);
void prep_set_remove(struct prep_server *ps, struct prep_stmt *st);
/* The statement to close to make room under limit: the least recently
 * used, if not used during the current link; NULL if none may go. */
struct prep_stmt *prep_set_victim(struct prep_server *ps, uint32_t limit);
uint32_t prep_set_count(const struct prep_server *ps);

/* Queue. push copies e (taking over its references); false if full. */
bool prep_q_push(struct prep_server *ps, const struct prep_entry *e);
struct prep_entry *prep_q_head(struct prep_server *ps);
struct prep_entry *prep_q_at(struct prep_server *ps, uint32_t i);
/* Removes one answer from the head, dropping the entry's references. */
void prep_q_pop(struct prep_server *ps);

enum prep_answer {
	PREP_ANS_PASS,   /* forward it to the client */
	PREP_ANS_DROP,   /* swallow it */
	PREP_ANS_WAIT,   /* it must be whole first: stop, nothing changed */
	PREP_ANS_BROKEN, /* it is not what the queue says: the server cannot be trusted */
};

/*
 * One message from the server against the queue. sqlstate: of an
 * ErrorResponse (NULL if unknown). pc: the linked client's names (undo
 * target; NULL if it has gone). Synthesized answers that are due after
 * this message are appended to ps->to_client.
 */
enum prep_answer prep_answer(struct prep_server *ps, struct prep_client *pc, uint8_t type,
			     const char *sqlstate);
/* Appends the synthesized answers now at the head of the queue. */
void prep_drain_synth(struct prep_server *ps);
/* Removes the head entry whole (every answer folded into it), with its
 * references and without undoing anything. */
void prep_q_discard(struct prep_server *ps);

#endif /* PGMUX_PREP_STATE_H */
