/*
 * auth.h: how pgmux checks a client's identity (auth_type against the
 * auth_file, or against a secret auth_query fetched) and what it logs in to
 * PostgreSQL with: a password, an md5 hash (pass-the-hash), or the keys of
 * a client's SCRAM exchange (pass-through).
 *
 * PBKDF2 never runs on the event loop for a client: SCRAM secrets derived
 * from plain passwords are computed once per user on the libuv thread pool
 * and cached, and a cleartext password checked against a SCRAM secret is
 * hashed there too, the client paused (not read) meanwhile. What is left (a
 * few HMACs per SCRAM step) is rationed: at most AUTH_STEPS_PER_TURN login
 * steps per loop iteration, the rest wait for the next one, so a burst of
 * logins cannot hold up running transactions. Unknown users go through the
 * same exchange as known ones and fail the same way (28P01).
 */
#ifndef PGMUX_AUTH_H
#define PGMUX_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth_scram.h"
#include "authq.h"
#include "list.h"

struct client;
struct auth_job;

/* Login steps (startup, each password/SASL message) run per loop turn. */
#define AUTH_STEPS_PER_TURN 32

enum auth_rc {
	AUTH_DONE,     /* authenticated */
	AUTH_CONTINUE, /* a challenge was sent, or the client is paused; wait */
	AUTH_FAILED,   /* the client was told (28P01) and is closing */
	AUTH_CLOSED,   /* the client is gone */
};

/* What a client paused in CLIENT_PH_AUTH_WAIT waits for. */
enum auth_wait {
	AUTH_WAIT_NONE,
	AUTH_WAIT_LOOKUP, /* auth_query */
	AUTH_WAIT_DERIVE, /* PBKDF2 of the user's plain auth_file password (shared) */
	AUTH_WAIT_VERIFY, /* PBKDF2 of a cleartext password against a SCRAM secret */
	AUTH_WAIT_TURN,   /* this loop turn's login steps are used up */
};

/* State that lives only while a client authenticates (zeroed at start,
 * cleansed at the end by client.c). */
struct auth_state {
	struct client *client;
	char *user;                 /* the login's user name (a copy: owned) */
	char *database;             /* the database it asked for (a copy: owned) */
	bool admin;                 /* logging in to the console */
	char *stored;               /* the user's secret text (owned), NULL: unknown user */
	bool from_query;            /* stored came from auth_query */
	uint8_t md5_salt[4];
	struct scram_server scram;
	struct scram_secret secret; /* what the SCRAM exchange runs against */
	bool secret_real;           /* false: a mock (unknown user, or unusable secret) */
	enum auth_wait wait;
	struct authq_waiter lookup; /* AUTH_WAIT_LOOKUP */
	struct auth_job *job;       /* AUTH_WAIT_DERIVE/VERIFY */
	struct list_node job_node;  /* in job->waiters, or the turn queue (AUTH_WAIT_TURN) */
	int turn_phase;             /* AUTH_WAIT_TURN: the client_phase to resume in */
	uint8_t *turn_msg;          /* AUTH_WAIT_TURN: the message to handle (owned), */
	size_t turn_len;            /* NULL: auth_begin's own step */
};

/*
 * After the startup packet: finds the user's secret (auth_file, else
 * auth_query for database) and sends the first authentication message.
 */
enum auth_rc auth_begin(struct client *c, const char *user, const char *database, bool admin);
/* A PasswordMessage / SASL message arrived (body after the 5-byte header). */
enum auth_rc auth_on_message(struct client *c, const char *user, const uint8_t *body,
			     size_t len);
/* The client's login state is going away: stop waiting for anything. */
void auth_forget(struct client *c);

/*
 * Server login as user. The password (plain or md5 text) pgmux knows:
 * db_password if set, else the auth_file's, else one learnt through
 * auth_query; never a SCRAM secret. NULL if none.
 */
const char *auth_server_password(const char *user, const char *db_password);
/*
 * Server login asked for SCRAM-SHA-256: writes the client-first-message,
 * with a plain password if one is known, else with the keys of the user's
 * last SCRAM login (pass-through). SCRAM_ESTATE: nothing to log in with.
 */
int auth_server_scram_first(struct scram_client *sc, const char *user, const char *db_password,
			    char *out, size_t outcap, size_t *outlen);
/* auth_server_scram_final's "come back later". */
#define AUTH_SCRAM_PENDING 1

/*
 * A server login waiting for SCRAM keys being computed off the loop.
 * Embedded in the login state; owner and done are set by the caller.
 */
struct auth_server_wait {
	struct list_node node;     /* in the job's server waiters */
	struct auth_job *job;      /* NULL when not waiting */
	struct scram_params params; /* what the server asked for */
	void *owner;
	/* rc: SCRAM_OK (call auth_server_scram_final again, msg NULL) or the
	 * failure. Called from the loop, never from inside auth.c's callers. */
	void (*done)(struct auth_server_wait *w, int rc);
};

/*
 * Server-first-message in, client-final-message out. A plain password's
 * PBKDF2 runs once per (user, password, salt, iterations), on the thread
 * pool, and is cached: until it is done this returns AUTH_SCRAM_PENDING and
 * w->done is called later; then call again with msg NULL.
 * SCRAM_ESECRET: pass-through with a secret the server does not store.
 */
int auth_server_scram_final(struct scram_client *sc, const char *user, const uint8_t *msg,
			    size_t len, char *out, size_t outcap, size_t *outlen,
			    struct auth_server_wait *w);
/* The server login is going away: no w->done call will come. */
void auth_server_forget(struct auth_server_wait *w);

/* Shutdown: closes the handle that runs deferred login steps. */
void auth_stop(void);
/* RELOAD: drops cached secrets and auth_query answers (not the pass-through
 * keys of logged-in users: their pools may need new servers). */
void auth_cache_clear(void);
/* At exit, after the loop: frees everything. */
void auth_cleanup(void);
/* For the fuzzer: run PBKDF2 on the loop so every input is deterministic. */
void auth_jobs_inline(bool on);

#endif /* PGMUX_AUTH_H */
