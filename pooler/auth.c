/*
 * auth.c: client authentication policy and the credentials pgmux logs in
 * to PostgreSQL with. Owns three per-user caches and the PBKDF2 jobs:
 *
 * - derived: SCRAM secrets computed from plain auth_file passwords, one
 *   PBKDF2 per user (on the libuv thread pool; concurrent logins of the
 *   user wait for the same job);
 * - creds: what a successful client login taught pgmux for the server
 *   side: the ClientKey of a SCRAM exchange (pass-through) and secrets from
 *   auth_query (md5 pass-the-hash). Memory only, cleansed when freed;
 * - server_keys: SCRAM keys for plain passwords used to log in to
 *   PostgreSQL, one PBKDF2 per (user, salt, iterations), also on the thread
 *   pool, the server logins of the user waiting for it.
 *
 * Unknown users go through the same exchange as known ones (a mock SCRAM
 * secret or md5 hash) and fail with the same 28P01, so the answer never
 * tells whether a user exists. Every secret comparison is constant-time.
 */
#include "auth.h"

#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/socket.h>

#include <uv.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <uthash.h>

#include "auth_md5.h"
#include "client.h"
#include "config.h"
#include "hba.h"
#include "log.h"
#include "pooler.h"
#include "proto.h"
#include "proto_build.h"
#include "proto_parse.h"
#include "util.h"

/* A SCRAM secret computed from a plain auth_file password. */
struct auth_derived {
	char *user;
	uint8_t pw_digest[SHA256_DIGEST_LENGTH]; /* of the password it came from */
	struct scram_secret secret;              /* valid once job is NULL */
	struct auth_job *job;                    /* PBKDF2 still running */
	UT_hash_handle hh;
};

/* What pgmux learnt from a user's client logins to log in as that user. */
struct auth_cred {
	char *user;
	char *password;             /* md5 hash or plain text from auth_query, or NULL */
	bool has_keys;              /* pass-through: */
	struct scram_secret secret; /* the secret the client proved itself against */
	uint8_t client_key[SCRAM_KEY_LEN];
	UT_hash_handle hh;
};

/* SCRAM keys of a plain password for a server's salt and iterations. */
struct auth_server_keys {
	char *user;
	uint8_t pw_digest[SHA256_DIGEST_LENGTH];
	struct scram_params params;
	struct scram_keys keys; /* valid once job is NULL */
	struct auth_job *job;   /* PBKDF2 still running */
	UT_hash_handle hh;
};

/* What a job computes keys for. */
enum auth_job_kind {
	AUTH_JOB_DERIVE,      /* a client SCRAM secret from an auth_file password */
	AUTH_JOB_VERIFY,      /* a cleartext password against a SCRAM secret */
	AUTH_JOB_SERVER_KEYS, /* a server login's keys for a plain password */
};

/* One PBKDF2 run on the thread pool. The worker touches nothing else. */
struct auth_job {
	uv_work_t req;
	enum auth_job_kind kind;
	struct list_node node;        /* in g_auth.queued until it starts */
	struct list waiters;          /* struct auth_state.job_node */
	struct list server_waiters;   /* struct auth_server_wait.node */
	struct auth_server_keys *keys_entry; /* SERVER_KEYS: the cache entry, or NULL */
	char *password;               /* input; cleansed when done */
	struct scram_params params;   /* input */
	int rc;                       /* output */
	struct scram_keys keys;       /* output */
	struct auth_derived *entry;   /* DERIVE: the cache entry, NULL once dropped */
};

/* Module-private caches and the job queue. */
static struct {
	struct auth_derived *derived;
	struct auth_cred *creds;
	struct auth_server_keys *server_keys;
	struct list queued;  /* jobs waiting for a thread-pool slot */
	unsigned running;    /* jobs on the thread pool */
	unsigned jobs_max;   /* how many may be (0: not computed yet) */
	bool inline_jobs;
	struct list turn;    /* clients whose next login step waits for a new turn */
	unsigned turn_steps; /* login steps run in the current turn */
	uint64_t turn_ms;    /* uv_now() of the current turn */
	uv_idle_t idle;      /* runs g_auth.turn, while it is not empty */
	bool idle_ready;     /* idle was initialised (and not closed) */
	uint8_t mock_nonce[16];
	bool mock_nonce_set;
} g_auth = {
	.queued = { .head = { &g_auth.queued.head, &g_auth.queued.head }, .count = 0 },
	.turn = { .head = { &g_auth.turn.head, &g_auth.turn.head }, .count = 0 },
};

static void auth_job_done(struct auth_job *j);
static void auth_server_keys_done(struct auth_job *j);
static void auth_server_keys_free(struct auth_server_keys *k);
static enum auth_rc auth_begin_step(struct client *c);
static enum auth_rc auth_message_step(struct client *c, const uint8_t *body, size_t len);

/* ---- secrets and caches ---- */

enum auth_secret_kind {
	AUTH_SECRET_NONE, /* unknown user */
	AUTH_SECRET_PLAIN,
	AUTH_SECRET_MD5,
	AUTH_SECRET_SCRAM,
};

static enum auth_secret_kind auth_kind(const char *stored)
{
	if (!stored)
		return AUTH_SECRET_NONE;
	if (md5_is_secret(stored))
		return AUTH_SECRET_MD5;
	if (scram_is_secret(stored))
		return AUTH_SECRET_SCRAM;
	return AUTH_SECRET_PLAIN;
}

static const char *auth_file_secret(const char *user)
{
	if (!g_pooler.userlist)
		return NULL;
	return cfg_userlist_find(g_pooler.userlist, user);
}

static void auth_digest(const char *s, uint8_t out[SHA256_DIGEST_LENGTH])
{
	SHA256((const unsigned char *)s, strlen(s), out);
}

/* Plain passwords compared by digest: constant time, whatever the lengths. */
static bool auth_plain_equal(const char *a, const char *b)
{
	uint8_t da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
	bool eq;

	auth_digest(a, da);
	auth_digest(b, db);
	eq = CRYPTO_memcmp(da, db, sizeof(da)) == 0;
	OPENSSL_cleanse(da, sizeof(da));
	OPENSSL_cleanse(db, sizeof(db));
	return eq;
}

static void auth_free_str(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

static void auth_derived_free(struct auth_derived *d)
{
	HASH_DEL(g_auth.derived, d);
	if (d->job)
		d->job->entry = NULL; /* the job finishes for its waiters only */
	free(d->user);
	OPENSSL_cleanse(d, sizeof(*d));
	free(d);
}

static void auth_cred_free(struct auth_cred *cr)
{
	HASH_DEL(g_auth.creds, cr);
	free(cr->user);
	auth_free_str(cr->password);
	OPENSSL_cleanse(cr, sizeof(*cr));
	free(cr);
}

static struct auth_cred *auth_cred_get(const char *user)
{
	struct auth_cred *cr;

	HASH_FIND_STR(g_auth.creds, user, cr);
	if (cr)
		return cr;
	cr = xcalloc(1, sizeof(*cr));
	cr->user = xstrdup(user);
	HASH_ADD_KEYPTR(hh, g_auth.creds, cr->user, strlen(cr->user), cr);
	return cr;
}

/* A SCRAM login proved client_key against secret: keep both for servers. */
static void auth_cred_keys(const char *user, const struct scram_secret *secret,
			   const uint8_t client_key[SCRAM_KEY_LEN])
{
	struct auth_cred *cr = auth_cred_get(user);

	cr->has_keys = true;
	cr->secret = *secret;
	memcpy(cr->client_key, client_key, SCRAM_KEY_LEN);
}

/* A login checked against a password or md5 hash that auth_query found:
 * the server login needs it later, when the answer has left the cache. */
static void auth_cred_password(const char *user, const char *password)
{
	struct auth_cred *cr = auth_cred_get(user);

	if (cr->password && strcmp(cr->password, password) == 0)
		return;
	auth_free_str(cr->password);
	cr->password = xstrdup(password);
}

static void auth_mock_nonce(void)
{
	if (g_auth.mock_nonce_set)
		return;
	if (RAND_bytes(g_auth.mock_nonce, sizeof(g_auth.mock_nonce)) != 1)
		memset(g_auth.mock_nonce, 0x5a, sizeof(g_auth.mock_nonce));
	g_auth.mock_nonce_set = true;
}

/*
 * A SCRAM secret for a user who does not exist, as PostgreSQL makes one: the
 * salt comes from a per-process nonce and the name, so it is the same at
 * every attempt, and the exchange fails at the proof like a wrong password.
 */
static void auth_mock_secret(const char *user, struct scram_secret *out)
{
	uint8_t digest[SHA256_DIGEST_LENGTH];
	uint8_t input[sizeof(g_auth.mock_nonce) + 256];
	size_t ulen = strlen(user);

	auth_mock_nonce();
	if (ulen > 256)
		ulen = 256;
	memcpy(input, g_auth.mock_nonce, sizeof(g_auth.mock_nonce));
	memcpy(input + sizeof(g_auth.mock_nonce), user, ulen);
	SHA256(input, sizeof(g_auth.mock_nonce) + ulen, digest);
	memset(out, 0, sizeof(*out));
	out->iterations = SCRAM_DEFAULT_ITERATIONS;
	out->salt_len = SCRAM_DEFAULT_SALT_LEN;
	memcpy(out->salt, digest, SCRAM_DEFAULT_SALT_LEN);
	if (RAND_bytes(out->stored_key, SCRAM_KEY_LEN) != 1)
		memset(out->stored_key, 0xa5, SCRAM_KEY_LEN);
	memcpy(out->server_key, digest, SCRAM_KEY_LEN);
}

/* The md5 counterpart: a hash no password is known for. */
static void auth_mock_md5(const char *user, char out[MD5_SECRET_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	char pw[2 * sizeof(g_auth.mock_nonce) + 1];
	size_t i;

	auth_mock_nonce();
	for (i = 0; i < sizeof(g_auth.mock_nonce); i++) {
		pw[2 * i] = hex[g_auth.mock_nonce[i] >> 4];
		pw[2 * i + 1] = hex[g_auth.mock_nonce[i] & 0xf];
	}
	pw[sizeof(pw) - 1] = '\0';
	md5_secret(pw, user, out);
}

void auth_cache_clear(void)
{
	struct auth_derived *d, *dtmp;
	struct auth_server_keys *k, *ktmp;

	HASH_ITER(hh, g_auth.derived, d, dtmp)
	{
		auth_derived_free(d);
	}
	HASH_ITER(hh, g_auth.server_keys, k, ktmp)
	{
		auth_server_keys_free(k);
	}
	authq_cache_clear();
}

void auth_cleanup(void)
{
	struct auth_cred *cr, *tmp;

	auth_cache_clear();
	HASH_ITER(hh, g_auth.creds, cr, tmp)
	{
		auth_cred_free(cr);
	}
	authq_cleanup();
}

void auth_jobs_inline(bool on)
{
	g_auth.inline_jobs = on;
}

/* ---- PBKDF2 off the loop ---- */

/*
 * Half the CPUs, at least one: logins may use that much, and the loop, which
 * serves every running transaction, keeps the rest.
 */
static unsigned auth_jobs_max(void)
{
	if (g_auth.jobs_max == 0) {
		unsigned n = uv_available_parallelism(); /* a system call: asked once */

		g_auth.jobs_max = n > 2 ? n / 2 : 1;
	}
	return g_auth.jobs_max;
}

static struct auth_job *auth_job_new(enum auth_job_kind kind, const char *password,
				     const struct scram_params *params)
{
	struct auth_job *j = xcalloc(1, sizeof(*j));

	j->kind = kind;
	j->password = xstrdup(password);
	j->params = *params;
	list_node_init(&j->node);
	list_init(&j->waiters);
	list_init(&j->server_waiters);
	return j;
}

static void auth_job_free(struct auth_job *j)
{
	auth_free_str(j->password);
	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
}

/* Runs on a thread-pool thread: only the job's own fields. */
static void auth_job_work(uv_work_t *req)
{
	struct auth_job *j = container_of(req, struct auth_job, req);

	j->rc = scram_keys_from_password(j->password, &j->params, &j->keys);
}

static void auth_jobs_pump(void);

static void auth_job_after(uv_work_t *req, int status)
{
	struct auth_job *j = container_of(req, struct auth_job, req);

	g_auth.running--;
	if (status != 0)
		j->rc = SCRAM_ECRYPTO;
	auth_job_done(j);
	auth_jobs_pump();
}

static void auth_jobs_pump(void)
{
	while (g_auth.running < auth_jobs_max() && !list_empty(&g_auth.queued)) {
		struct auth_job *j =
			container_of(list_first(&g_auth.queued), struct auth_job, node);

		list_remove(&g_auth.queued, &j->node);
		if (list_empty(&j->waiters) && list_empty(&j->server_waiters) && !j->entry &&
		    !j->keys_entry) {
			auth_job_free(j); /* everyone who wanted it left */
			continue;
		}
		if (uv_queue_work(g_pooler.loop, &j->req, auth_job_work, auth_job_after) == 0) {
			g_auth.running++;
			continue;
		}
		auth_job_work(&j->req); /* cannot happen with a live loop */
		auth_job_done(j);
	}
}

static void auth_job_submit(struct auth_job *j)
{
	list_append(&g_auth.queued, &j->node);
	auth_jobs_pump();
}

/*
 * Pauses c until something it waits for calls client_auth_continue. Work
 * off the loop or on a server (a lookup) may take long: c is not read
 * meanwhile. A step merely put off to the next loop turn keeps reading (an
 * honest client sends nothing until answered, and client.c holds what
 * comes): two epoll_ctl calls per step would cost more than the step.
 */
static enum auth_rc auth_pause(struct client *c, enum auth_wait wait)
{
	client_auth_state(c)->wait = wait;
	c->phase = CLIENT_PH_AUTH_WAIT;
	if (wait != AUTH_WAIT_TURN)
		conn_read_stop(&c->conn);
	return AUTH_CONTINUE;
}

static void auth_job_join(struct auth_job *j, struct auth_state *st)
{
	st->job = j;
	list_append(&j->waiters, &st->job_node);
}

/* ---- one loop turn's share of login work ---- */

/*
 * A login step costs tens of microseconds; a burst of hundreds arriving in
 * one loop iteration would hold every running transaction up for all of
 * them. So each turn runs at most AUTH_STEPS_PER_TURN; later ones wait (in
 * order) for the next turns. uv_now() marks a new turn when nothing waits;
 * while something does, the idle callback starts each turn.
 */
static bool auth_turn_take(void)
{
	uint64_t now = uv_now(g_pooler.loop);

	if (!list_empty(&g_auth.turn))
		return false; /* first come, first served */
	if (now != g_auth.turn_ms) {
		g_auth.turn_ms = now;
		g_auth.turn_steps = 0;
	}
	if (g_auth.turn_steps >= AUTH_STEPS_PER_TURN)
		return false;
	g_auth.turn_steps++;
	return true;
}

static void auth_on_idle(uv_idle_t *h);

/* Puts c's step (msg: a copy is kept; NULL: auth_begin's) off to a later turn. */
static enum auth_rc auth_defer(struct client *c, const uint8_t *msg, size_t len)
{
	struct auth_state *st = client_auth_state(c);

	st->turn_phase = (int)c->phase;
	if (msg) {
		st->turn_msg = xmalloc(len ? len : 1);
		memcpy(st->turn_msg, msg, len);
		st->turn_len = len;
	}
	list_append(&g_auth.turn, &st->job_node);
	if (!g_auth.idle_ready) {
		uv_idle_init(g_pooler.loop, &g_auth.idle);
		g_auth.idle_ready = true;
	}
	uv_idle_start(&g_auth.idle, auth_on_idle);
	return auth_pause(c, AUTH_WAIT_TURN);
}

/* Runs the step c waited for; it carries on as any paused client does. */
static void auth_turn_resume(struct auth_state *st)
{
	struct client *c = st->client;
	uint8_t *msg = st->turn_msg;
	size_t len = st->turn_len;
	enum auth_rc rc;

	st->wait = AUTH_WAIT_NONE;
	st->turn_msg = NULL;
	st->turn_len = 0;
	c->phase = (enum client_phase)st->turn_phase;
	rc = msg ? auth_message_step(c, msg, len) : auth_begin_step(c);
	if (msg) {
		OPENSSL_cleanse(msg, len);
		free(msg);
	}
	client_auth_continue(c, rc);
}

static void auth_on_idle(uv_idle_t *h)
{
	(void)h;
	g_auth.turn_ms = uv_now(g_pooler.loop);
	g_auth.turn_steps = 0;
	while (g_auth.turn_steps < AUTH_STEPS_PER_TURN && !list_empty(&g_auth.turn)) {
		struct list_node *n = list_first(&g_auth.turn);
		struct auth_state *st = container_of(n, struct auth_state, job_node);

		list_remove(&g_auth.turn, n);
		g_auth.turn_steps++;
		if (st->client->state == CLIENT_CLOSED) {
			st->wait = AUTH_WAIT_NONE; /* auth_forget frees its message */
			continue;
		}
		auth_turn_resume(st);
	}
	if (list_empty(&g_auth.turn))
		uv_idle_stop(&g_auth.idle);
}

void auth_stop(void)
{
	if (!g_auth.idle_ready)
		return;
	uv_close((uv_handle_t *)&g_auth.idle, NULL);
	g_auth.idle_ready = false;
}

/* ---- messages ---- */

static enum auth_rc auth_send(struct client *c, struct proto_buf *b)
{
	int rc = conn_send_buf(&c->conn, b);

	proto_buf_free(b);
	if (rc < 0) {
		client_close(c, "could not send authentication message: %s", uv_strerror(rc));
		return AUTH_CLOSED;
	}
	return AUTH_CONTINUE;
}

/* AuthenticationOk waits for the welcome so a login costs one write. */
static enum auth_rc auth_ok(struct client *c)
{
	proto_build_auth(client_login_out(c), PROTO_AUTH_OK, NULL, 0);
	return AUTH_DONE;
}

/*
 * Every failed check ends here, known user or not, with the same message.
 * client_fatal's line (log_pooler_errors) names the address, user and
 * database; the reason is only for the operator, at DEBUG.
 */
static enum auth_rc auth_refuse(struct client *c, const char *method, const char *why)
{
	struct auth_state *st = client_auth_state(c);
	char ident[200];

	client_ident(c, ident, sizeof(ident));
	log_debug("%s: login failed: %s", ident, why);
	if (!g_pooler.cfg->log_pooler_errors)
		log_warn("%s: login failed: %s authentication failed", ident, method);
	client_fatal(c, "28P01", "%s authentication failed for user \"%s\"", method, st->user);
	return AUTH_FAILED;
}

static enum auth_rc auth_fail(struct client *c, const char *why)
{
	return auth_refuse(c, "password", why);
}

static enum auth_rc auth_begin_md5(struct client *c)
{
	struct auth_state *st = client_auth_state(c);
	struct proto_buf b;

	if (RAND_bytes(st->md5_salt, sizeof(st->md5_salt)) != 1) {
		client_fatal(c, "58000", "could not generate a salt");
		return AUTH_FAILED;
	}
	c->phase = CLIENT_PH_AUTH_MD5;
	proto_buf_init(&b, 256);
	proto_build_auth(&b, PROTO_AUTH_MD5, st->md5_salt, sizeof(st->md5_salt));
	return auth_send(c, &b);
}

static enum auth_rc auth_send_sasl(struct client *c)
{
	static const char *const mechs[] = { "SCRAM-SHA-256", NULL };
	struct proto_buf b;

	c->phase = CLIENT_PH_AUTH_SCRAM_FIRST;
	proto_buf_init(&b, 256);
	proto_build_auth_sasl(&b, mechs);
	return auth_send(c, &b);
}

static void auth_take_derived(struct auth_state *st, const struct scram_params *params,
			      const struct scram_keys *keys)
{
	memset(&st->secret, 0, sizeof(st->secret));
	st->secret.iterations = params->iterations;
	st->secret.salt_len = params->salt_len;
	memcpy(st->secret.salt, params->salt, params->salt_len);
	memcpy(st->secret.stored_key, keys->stored_key, SCRAM_KEY_LEN);
	memcpy(st->secret.server_key, keys->server_key, SCRAM_KEY_LEN);
	st->secret_real = true;
}

/*
 * The SCRAM secret for a plain password: from the cache, or computed once
 * per user off the loop while this and any other login of the user wait.
 */
static enum auth_rc auth_derive(struct client *c)
{
	struct auth_state *st = client_auth_state(c);
	uint8_t digest[SHA256_DIGEST_LENGTH];
	struct scram_params params;
	struct auth_derived *d;
	struct scram_keys keys;

	auth_digest(st->stored, digest);
	HASH_FIND_STR(g_auth.derived, st->user, d);
	if (d && CRYPTO_memcmp(d->pw_digest, digest, sizeof(digest)) != 0) {
		auth_derived_free(d); /* the password changed */
		d = NULL;
	}
	if (d && !d->job) {
		st->secret = d->secret;
		st->secret_real = true;
		return auth_send_sasl(c);
	}
	if (d) {
		auth_job_join(d->job, st);
		return auth_pause(c, AUTH_WAIT_DERIVE);
	}
	memset(&params, 0, sizeof(params));
	params.iterations = SCRAM_DEFAULT_ITERATIONS;
	params.salt_len = SCRAM_DEFAULT_SALT_LEN;
	if (RAND_bytes(params.salt, SCRAM_DEFAULT_SALT_LEN) != 1) {
		client_fatal(c, "58000", "could not generate a salt");
		return AUTH_FAILED;
	}
	d = xcalloc(1, sizeof(*d));
	d->user = xstrdup(st->user);
	memcpy(d->pw_digest, digest, sizeof(digest));
	HASH_ADD_KEYPTR(hh, g_auth.derived, d->user, strlen(d->user), d);
	if (g_auth.inline_jobs) {
		if (scram_keys_from_password(st->stored, &params, &keys) != SCRAM_OK) {
			auth_derived_free(d);
			client_fatal(c, "58000", "could not derive a SCRAM secret");
			return AUTH_FAILED;
		}
		auth_take_derived(st, &params, &keys);
		d->secret = st->secret;
		OPENSSL_cleanse(&keys, sizeof(keys));
		return auth_send_sasl(c);
	}
	d->job = auth_job_new(AUTH_JOB_DERIVE, st->stored, &params);
	d->job->entry = d;
	auth_job_join(d->job, st);
	auth_job_submit(d->job);
	return auth_pause(c, AUTH_WAIT_DERIVE);
}

/* Picks the secret the SCRAM exchange runs against, then asks for SCRAM. */
static enum auth_rc auth_begin_scram(struct client *c)
{
	struct auth_state *st = client_auth_state(c);

	switch (auth_kind(st->stored)) {
	case AUTH_SECRET_SCRAM:
		st->secret_real = scram_secret_parse(st->stored, &st->secret);
		break;
	case AUTH_SECRET_PLAIN:
		return auth_derive(c);
	case AUTH_SECRET_MD5:
	case AUTH_SECRET_NONE:
		/* An md5 hash cannot answer a SCRAM exchange. */
		st->secret_real = false;
		break;
	}
	if (!st->secret_real)
		auth_mock_secret(st->user, &st->secret);
	return auth_send_sasl(c);
}

static enum auth_rc auth_begin_cleartext(struct client *c)
{
	struct proto_buf b;

	c->phase = CLIENT_PH_AUTH_CLEARTEXT;
	proto_buf_init(&b, 256);
	proto_build_auth(&b, PROTO_AUTH_CLEARTEXT, NULL, 0);
	return auth_send(c, &b);
}

/* auth_type = cert, or an hba "cert" rule: a verified client certificate
 * whose CommonName is the user name, as in PgBouncer and PostgreSQL. */
static enum auth_rc auth_cert(struct client *c)
{
	struct auth_state *st = client_auth_state(c);
	char cn[256];

	if (!conn_tls_peer_cn(&c->conn, cn, sizeof(cn))) {
		client_fatal(c, "28000", "certificate authentication failed for user \"%s\": "
			     "no valid client certificate", st->user);
		return AUTH_FAILED;
	}
	if (strcmp(cn, st->user) != 0) {
		client_fatal(c, "28000", "certificate authentication failed for user \"%s\": "
			     "certificate is for \"%s\"", st->user, cn);
		return AUTH_FAILED;
	}
	return auth_ok(c);
}

/* PostgreSQL's words for a failed peer login; why goes to the log only
 * (at verbose = 1, as for passwords). */
static enum auth_rc auth_peer_refuse(struct client *c, const char *why)
{
	struct auth_state *st = client_auth_state(c);
	char ident[200];

	client_ident(c, ident, sizeof(ident));
	log_debug("%s: login failed: %s", ident, why);
	if (!g_pooler.cfg->log_pooler_errors)
		log_warn("%s: login failed: peer authentication failed", ident);
	client_fatal(c, "28000", "Peer authentication failed for user \"%s\"", st->user);
	return AUTH_FAILED;
}

/* hba "peer": a unix-socket client whose OS user has the user's name. */
static enum auth_rc auth_peer(struct client *c)
{
	struct auth_state *st = client_auth_state(c);
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct passwd pw;
	struct passwd *res = NULL;
	char buf[1024], why[256];

	if (!(c->conn.flags & CONN_F_UNIX))
		return auth_peer_refuse(c, "not a unix-socket connection");
	if (getsockopt(conn_fd(&c->conn), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return auth_peer_refuse(c, "could not get the peer's credentials");
	if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &res) != 0 || !res) {
		snprintf(why, sizeof(why), "could not look up local user ID %ld", (long)cred.uid);
		return auth_peer_refuse(c, why);
	}
	if (strcmp(res->pw_name, st->user) != 0) {
		snprintf(why, sizeof(why), "provided user name (%s) and authenticated user name "
			 "(%s) do not match", st->user, res->pw_name);
		return auth_peer_refuse(c, why);
	}
	return auth_ok(c);
}

/*
 * A peer or cert rule with map=: PostgreSQL would map the OS user or the
 * certificate's name through auth_ident_file, which pgmux does not read.
 * Comparing names as if there were no map could let in a user the map
 * excludes, so the login is refused and says why.
 */
static bool auth_hba_map_unsupported(struct client *c, enum hba_method m, int line)
{
	struct auth_state *st = client_auth_state(c);
	const char *map = hba_option(g_pooler.hba, line, "map");

	if (map == NULL)
		return false;
	if (!g_pooler.cfg->log_pooler_errors) {
		char ident[200];

		client_ident(c, ident, sizeof(ident));
		log_warn("%s: login failed: auth_hba_file line %d has map=%s (no ident maps)",
			 ident, line, map);
	}
	client_fatal(c, "28000", "%s authentication failed for user \"%s\": ident map \"%s\" "
		     "is not supported by pgmux", m == HBA_PEER ? "Peer" : "certificate", st->user,
		     map);
	return true;
}

/*
 * The method for this login: auth_type, or with auth_type = hba the first
 * matching rule of auth_hba_file. A "reject" rule, or none matching, ends
 * the login with PostgreSQL's own 28000 message.
 */
static bool auth_method(struct client *c, enum cfg_auth_type *out)
{
	struct auth_state *st = client_auth_state(c);
	struct sockaddr_storage ss;
	struct hba_conn hc;
	int line = 0;
	int sslen = sizeof(ss);
	char addr[64];
	int port;

	*out = g_pooler.cfg->auth_type;
	if (*out != CFG_AUTH_HBA)
		return true;
	memset(&hc, 0, sizeof(hc));
	hc.unix_socket = (c->conn.flags & CONN_F_UNIX) != 0;
	hc.tls = c->conn.tls != NULL;
	if (!hc.unix_socket &&
	    uv_tcp_getpeername(&c->conn.h.tcp, (struct sockaddr *)&ss, &sslen) == 0)
		hc.addr = (const struct sockaddr *)&ss;
	hc.database = st->database;
	hc.user = st->user;
	switch (g_pooler.hba ? hba_match(g_pooler.hba, &hc, &line) : HBA_REJECT) {
	case HBA_TRUST:
		*out = CFG_AUTH_TRUST;
		return true;
	case HBA_PASSWORD:
		*out = CFG_AUTH_PLAIN;
		return true;
	case HBA_MD5:
		*out = CFG_AUTH_MD5;
		return true;
	case HBA_SCRAM:
		*out = CFG_AUTH_SCRAM;
		return true;
	case HBA_CERT:
		if (auth_hba_map_unsupported(c, HBA_CERT, line))
			return false;
		*out = CFG_AUTH_CERT;
		return true;
	case HBA_PEER:
		if (auth_hba_map_unsupported(c, HBA_PEER, line))
			return false;
		*out = CFG_AUTH_PAM; /* stands for "peer" below: pgmux has no PAM */
		return true;
	case HBA_REJECT:
		break;
	}
	client_peer_addr(c, addr, sizeof(addr), &port);
	log_info("C %s:%d %s@%s: %s by auth_hba_file", addr, port, st->user, st->database,
		 line ? "rejected" : "no rule matched");
	/* PostgreSQL names a unix-socket client "[local]". */
	client_fatal(c, "28000", "%s for host \"%s\", user \"%s\", database \"%s\", %s",
		     line ? "auth_hba_file rejects connection" : "no auth_hba_file entry",
		     hc.unix_socket ? "[local]" : addr, st->user, st->database,
		     hc.tls ? "SSL encryption" : "no encryption");
	return false;
}

/* The secret is known (or known not to exist): ask for the method. */
static enum auth_rc auth_start(struct client *c)
{
	struct auth_state *st = client_auth_state(c);
	enum cfg_auth_type method;

	if (!auth_method(c, &method))
		return AUTH_FAILED;
	if (method == CFG_AUTH_PAM && g_pooler.cfg->auth_type == CFG_AUTH_HBA)
		return auth_peer(c);
	switch (method) {
	case CFG_AUTH_ANY:
		return auth_ok(c);
	case CFG_AUTH_TRUST:
		/* As PgBouncer: no password, but the user must exist. The
		 * console keeps its own rules (admin_users). */
		if (st->stored || st->admin)
			return auth_ok(c);
		return auth_refuse(c, "\"trust\"", "no such user");
	case CFG_AUTH_PLAIN:
		return auth_begin_cleartext(c);
	case CFG_AUTH_MD5:
		/* As PostgreSQL: an md5 setting still uses SCRAM for a user
		 * whose stored secret is SCRAM. */
		if (auth_kind(st->stored) == AUTH_SECRET_SCRAM)
			return auth_begin_scram(c);
		return auth_begin_md5(c);
	case CFG_AUTH_SCRAM:
		return auth_begin_scram(c);
	case CFG_AUTH_CERT:
		return auth_cert(c);
	case CFG_AUTH_HBA:
	case CFG_AUTH_PAM:
		break;
	}
	client_fatal(c, "28000", "auth_type %s is not supported yet",
		     cfg_auth_type_str(g_pooler.cfg->auth_type));
	return AUTH_FAILED;
}

/* Takes an auth_query answer into st; false if the client was refused. */
static bool auth_take_lookup(struct client *c, const struct authq_result *r)
{
	struct auth_state *st = client_auth_state(c);

	switch (r->status) {
	case AUTHQ_FOUND:
		st->stored = xstrdup(r->secret);
		st->from_query = true;
		return true;
	case AUTHQ_NOT_FOUND:
		return true;
	case AUTHQ_FAILED:
		break;
	}
	client_fatal(c, r->sqlstate, "%s", r->message);
	return false;
}

/* An auth_query lookup this client waited for has answered. */
static void auth_on_lookup(struct authq_waiter *w, const struct authq_result *r)
{
	struct auth_state *st = container_of(w, struct auth_state, lookup);
	struct client *c = st->client;

	st->wait = AUTH_WAIT_NONE;
	if (c->state == CLIENT_CLOSED)
		return;
	if (!auth_take_lookup(c, r)) {
		client_auth_continue(c, AUTH_FAILED);
		return;
	}
	client_auth_continue(c, auth_start(c));
}

enum auth_rc auth_begin(struct client *c, const char *user, const char *database, bool admin)
{
	struct auth_state *st = client_auth_state(c);

	st->client = c;
	/* Copies: the caller's may live in a read buffer. */
	st->user = xstrdup(user);
	st->database = xstrdup(database);
	st->admin = admin;
	list_node_init(&st->job_node);
	if (!auth_turn_take())
		return auth_defer(c, NULL, 0);
	return auth_begin_step(c);
}

static enum auth_rc auth_begin_step(struct client *c)
{
	struct auth_state *st = client_auth_state(c);
	const char *stored;
	struct authq_result r;

	if (g_pooler.cfg->auth_type == CFG_AUTH_ANY)
		return auth_ok(c);
	stored = auth_file_secret(st->user);
	if (stored) {
		st->stored = xstrdup(stored);
	} else if (!st->admin && authq_enabled(st->database)) {
		st->lookup.done = auth_on_lookup;
		if (!authq_lookup(st->database, st->user, &st->lookup, &r))
			return auth_pause(c, AUTH_WAIT_LOOKUP);
		if (!auth_take_lookup(c, &r))
			return AUTH_FAILED;
	}
	return auth_start(c);
}

void auth_forget(struct client *c)
{
	struct auth_state *st = client_auth_state(c);

	authq_cancel(&st->lookup);
	if (st->job) {
		list_remove(&st->job->waiters, &st->job_node);
		st->job = NULL;
	}
	if (st->wait == AUTH_WAIT_TURN)
		list_remove(&g_auth.turn, &st->job_node);
	if (st->turn_msg) {
		OPENSSL_cleanse(st->turn_msg, st->turn_len);
		free(st->turn_msg);
		st->turn_msg = NULL;
	}
	auth_free_str(st->stored);
	st->stored = NULL;
	free(st->user);
	st->user = NULL;
	free(st->database);
	st->database = NULL;
	st->wait = AUTH_WAIT_NONE;
}

/* ---- the client's answers ---- */

/* A login succeeded against st->stored: keep what the server side needs. */
static void auth_learn(struct auth_state *st)
{
	enum auth_secret_kind kind = auth_kind(st->stored);

	if (st->from_query && (kind == AUTH_SECRET_PLAIN || kind == AUTH_SECRET_MD5))
		auth_cred_password(st->user, st->stored);
}

/*
 * Cleartext against a SCRAM secret: PBKDF2 of the given password with the
 * secret's salt, off the loop, then compared with the StoredKey.
 */
static enum auth_rc auth_verify_scram(struct client *c, const char *password)
{
	struct auth_state *st = client_auth_state(c);
	struct scram_params params;
	struct scram_keys keys;
	struct auth_job *j;
	bool ok;

	if (!scram_secret_parse(st->stored, &st->secret))
		return auth_fail(c, "unusable SCRAM secret");
	scram_secret_params(&st->secret, &params);
	if (!g_auth.inline_jobs) {
		j = auth_job_new(AUTH_JOB_VERIFY, password, &params);
		auth_job_join(j, st);
		auth_job_submit(j);
		return auth_pause(c, AUTH_WAIT_VERIFY);
	}
	ok = scram_keys_from_password(password, &params, &keys) == SCRAM_OK &&
	     CRYPTO_memcmp(keys.stored_key, st->secret.stored_key, SCRAM_KEY_LEN) == 0;
	if (ok)
		auth_cred_keys(st->user, &st->secret, keys.client_key);
	OPENSSL_cleanse(&keys, sizeof(keys));
	return ok ? auth_ok(c) : auth_fail(c, "wrong password");
}

static enum auth_rc auth_check_cleartext(struct client *c, const char *given)
{
	struct auth_state *st = client_auth_state(c);
	char secret[MD5_SECRET_LEN + 1];
	char mock[MD5_SECRET_LEN + 1];
	bool ok = false;

	switch (auth_kind(st->stored)) {
	case AUTH_SECRET_SCRAM:
		return auth_verify_scram(c, given);
	case AUTH_SECRET_PLAIN:
		ok = auth_plain_equal(st->stored, given);
		break;
	case AUTH_SECRET_MD5:
		md5_secret(given, st->user, secret);
		ok = CRYPTO_memcmp(secret, st->stored, MD5_SECRET_LEN) == 0;
		break;
	case AUTH_SECRET_NONE:
		/* The same work as an md5-stored user, then a refusal. */
		auth_mock_md5(st->user, mock);
		md5_secret(given, st->user, secret);
		(void)CRYPTO_memcmp(secret, mock, MD5_SECRET_LEN);
		OPENSSL_cleanse(secret, sizeof(secret));
		return auth_fail(c, "no such user");
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	if (!ok)
		return auth_fail(c, "wrong password");
	auth_learn(st);
	return auth_ok(c);
}

static enum auth_rc auth_check_md5(struct client *c, const char *response)
{
	struct auth_state *st = client_auth_state(c);
	char mock[MD5_SECRET_LEN + 1];

	if (auth_kind(st->stored) == AUTH_SECRET_NONE) {
		auth_mock_md5(st->user, mock);
		(void)md5_verify(mock, st->user, st->md5_salt, response);
		return auth_fail(c, "no such user");
	}
	/* md5_verify refuses a SCRAM secret (it is not a password). */
	if (!md5_verify(st->stored, st->user, st->md5_salt, response))
		return auth_fail(c, "wrong password");
	auth_learn(st);
	return auth_ok(c);
}

static enum auth_rc auth_scram_first(struct client *c, const uint8_t *body, size_t len)
{
	struct auth_state *st = client_auth_state(c);
	const char *mech;
	const uint8_t *data;
	size_t data_len;
	char out[SCRAM_MSG_MAX];
	size_t outlen;
	struct proto_buf b;

	if (!proto_parse_sasl_initial(body, len, &mech, &data, &data_len) ||
	    strcmp(mech, "SCRAM-SHA-256") != 0) {
		client_fatal(c, "08P01", "malformed SASLInitialResponse");
		return AUTH_FAILED;
	}
	if (scram_server_first(&st->scram, &st->secret, NULL, data, data_len, out, sizeof(out),
			       &outlen) != SCRAM_OK) {
		client_fatal(c, "08P01", "malformed SCRAM client-first-message");
		return AUTH_FAILED;
	}
	c->phase = CLIENT_PH_AUTH_SCRAM_FINAL;
	proto_buf_init(&b, 4096);
	proto_build_auth(&b, PROTO_AUTH_SASL_CONTINUE, out, outlen);
	return auth_send(c, &b);
}

static enum auth_rc auth_scram_final(struct client *c, const uint8_t *body, size_t len)
{
	struct auth_state *st = client_auth_state(c);
	char out[SCRAM_MSG_MAX];
	size_t outlen;
	int rc;

	rc = scram_server_final(&st->scram, body, len, out, sizeof(out), &outlen);
	if (rc == SCRAM_EPROTO) {
		client_fatal(c, "08P01", "malformed SCRAM client-final-message");
		return AUTH_FAILED;
	}
	if (rc != SCRAM_OK || !st->secret_real)
		return auth_fail(c, st->stored ? "wrong password" : "no such user");
	/* Against a stored SCRAM secret the ClientKey is the only way pgmux
	 * can log in as this user: keep it (pass-through). */
	if (auth_kind(st->stored) == AUTH_SECRET_SCRAM)
		auth_cred_keys(st->user, &st->secret, st->scram.client_key);
	auth_learn(st);
	proto_build_auth(client_login_out(c), PROTO_AUTH_SASL_FINAL, out, outlen);
	return auth_ok(c);
}

enum auth_rc auth_on_message(struct client *c, const char *user, const uint8_t *body, size_t len)
{
	(void)user; /* auth_begin kept it */
	if (!auth_turn_take())
		return auth_defer(c, body, len);
	return auth_message_step(c, body, len);
}

static enum auth_rc auth_message_step(struct client *c, const uint8_t *body, size_t len)
{
	const char *password;

	switch (c->phase) {
	case CLIENT_PH_AUTH_CLEARTEXT:
	case CLIENT_PH_AUTH_MD5:
		if (!proto_parse_password(body, len, &password)) {
			client_fatal(c, "08P01", "malformed password message");
			return AUTH_FAILED;
		}
		if (c->phase == CLIENT_PH_AUTH_CLEARTEXT)
			return auth_check_cleartext(c, password);
		return auth_check_md5(c, password);
	case CLIENT_PH_AUTH_SCRAM_FIRST:
		return auth_scram_first(c, body, len);
	case CLIENT_PH_AUTH_SCRAM_FINAL:
		return auth_scram_final(c, body, len);
	case CLIENT_PH_STARTUP:
	case CLIENT_PH_AUTH_WAIT:
	case CLIENT_PH_READY:
	case CLIENT_PH_CANCEL:
		break;
	}
	client_fatal(c, "08P01", "unexpected password message");
	return AUTH_FAILED;
}

/* ---- jobs finishing ---- */

/* A DERIVE job finished: this waiter's SCRAM exchange can begin. */
static void auth_derive_resume(struct auth_state *st, const struct auth_job *j)
{
	struct client *c = st->client;

	st->wait = AUTH_WAIT_NONE;
	if (c->state == CLIENT_CLOSED)
		return;
	if (j->rc != SCRAM_OK) {
		client_fatal(c, "58000", "could not derive a SCRAM secret");
		client_auth_continue(c, AUTH_FAILED);
		return;
	}
	auth_take_derived(st, &j->params, &j->keys);
	client_auth_continue(c, auth_send_sasl(c));
}

/* A VERIFY job finished: the cleartext password was right or not. */
static void auth_verify_resume(struct auth_state *st, const struct auth_job *j)
{
	struct client *c = st->client;
	bool ok;

	st->wait = AUTH_WAIT_NONE;
	if (c->state == CLIENT_CLOSED)
		return;
	ok = j->rc == SCRAM_OK &&
	     CRYPTO_memcmp(j->keys.stored_key, st->secret.stored_key, SCRAM_KEY_LEN) == 0;
	if (!ok) {
		client_auth_continue(c, auth_fail(c, "wrong password"));
		return;
	}
	auth_cred_keys(st->user, &st->secret, j->keys.client_key);
	client_auth_continue(c, auth_ok(c));
}

static void auth_job_done(struct auth_job *j)
{
	if (j->kind == AUTH_JOB_SERVER_KEYS) {
		auth_server_keys_done(j);
		return;
	}
	if (j->kind == AUTH_JOB_DERIVE && j->entry) {
		struct auth_derived *d = j->entry;
		struct auth_state tmp;

		d->job = NULL;
		if (j->rc == SCRAM_OK) {
			auth_take_derived(&tmp, &j->params, &j->keys);
			d->secret = tmp.secret;
			OPENSSL_cleanse(&tmp.secret, sizeof(tmp.secret));
		} else {
			auth_derived_free(d);
		}
	}
	while (!list_empty(&j->waiters)) {
		struct list_node *n = list_first(&j->waiters);
		struct auth_state *st = container_of(n, struct auth_state, job_node);

		list_remove(&j->waiters, n);
		st->job = NULL;
		if (j->kind == AUTH_JOB_DERIVE)
			auth_derive_resume(st, j);
		else
			auth_verify_resume(st, j);
	}
	OPENSSL_cleanse(&j->keys, sizeof(j->keys));
	auth_job_free(j);
}

/* ---- server side ---- */

const char *auth_server_password(const char *user, const char *db_password)
{
	const char *s;
	struct auth_cred *cr;

	if (db_password)
		return db_password;
	s = auth_file_secret(user);
	if (s && !scram_is_secret(s))
		return s;
	HASH_FIND_STR(g_auth.creds, user, cr);
	return cr && cr->password ? cr->password : NULL;
}

int auth_server_scram_first(struct scram_client *sc, const char *user, const char *db_password,
			    char *out, size_t outcap, size_t *outlen)
{
	const char *password = auth_server_password(user, db_password);
	struct auth_cred *cr;

	if (password && !md5_is_secret(password))
		return scram_client_first(sc, password, NULL, out, outcap, outlen);
	HASH_FIND_STR(g_auth.creds, user, cr);
	if (!cr || !cr->has_keys)
		return SCRAM_ESTATE;
	return scram_client_first_passthrough(sc, &cr->secret, cr->client_key, NULL, out, outcap,
					      outlen);
}

static void auth_server_keys_free(struct auth_server_keys *k)
{
	HASH_DEL(g_auth.server_keys, k);
	if (k->job)
		k->job->keys_entry = NULL; /* it finishes for its waiters only */
	free(k->user);
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

void auth_server_forget(struct auth_server_wait *w)
{
	if (!w->job)
		return;
	list_remove(&w->job->server_waiters, &w->node);
	w->job = NULL;
}

/* A SERVER_KEYS job finished: cache the keys, wake the server logins. */
static void auth_server_keys_done(struct auth_job *j)
{
	struct auth_server_keys *k = j->keys_entry;

	if (k) {
		k->job = NULL;
		if (j->rc == SCRAM_OK)
			k->keys = j->keys;
		else
			auth_server_keys_free(k);
	}
	while (!list_empty(&j->server_waiters)) {
		struct list_node *n = list_first(&j->server_waiters);
		struct auth_server_wait *w = container_of(n, struct auth_server_wait, node);

		list_remove(&j->server_waiters, n);
		w->job = NULL;
		w->done(w, j->rc);
	}
	auth_job_free(j);
}

/*
 * The keys for a plain password and a server's salt: from the cache, else
 * computed off the loop while w waits (AUTH_SCRAM_PENDING). One job serves
 * every server login of the user that needs the same keys.
 */
static int auth_server_keys_for(const char *user, const char *password,
				struct auth_server_wait *w, struct scram_keys *out)
{
	uint8_t digest[SHA256_DIGEST_LENGTH];
	struct auth_server_keys *k;
	int rc;

	auth_digest(password, digest);
	HASH_FIND_STR(g_auth.server_keys, user, k);
	if (k && (CRYPTO_memcmp(k->pw_digest, digest, sizeof(digest)) != 0 ||
		  !scram_params_equal(&k->params, &w->params))) {
		auth_server_keys_free(k); /* another password or server secret */
		k = NULL;
	}
	if (k && !k->job) {
		*out = k->keys;
		return SCRAM_OK;
	}
	if (!k) {
		k = xcalloc(1, sizeof(*k));
		k->user = xstrdup(user);
		memcpy(k->pw_digest, digest, sizeof(digest));
		k->params = w->params;
		HASH_ADD_KEYPTR(hh, g_auth.server_keys, k->user, strlen(k->user), k);
		if (g_auth.inline_jobs) {
			rc = scram_keys_from_password(password, &w->params, &k->keys);
			if (rc != SCRAM_OK) {
				auth_server_keys_free(k);
				return rc;
			}
			*out = k->keys;
			return SCRAM_OK;
		}
		k->job = auth_job_new(AUTH_JOB_SERVER_KEYS, password, &w->params);
		k->job->keys_entry = k;
		auth_job_submit(k->job);
	}
	w->job = k->job;
	list_append(&k->job->server_waiters, &w->node);
	return AUTH_SCRAM_PENDING;
}

int auth_server_scram_final(struct scram_client *sc, const char *user, const uint8_t *msg,
			    size_t len, char *out, size_t outcap, size_t *outlen,
			    struct auth_server_wait *w)
{
	struct scram_keys keys;
	int rc;

	if (w->job)
		return SCRAM_ESTATE; /* the server spoke again before our answer */
	if (sc->pass_through)
		return msg ? scram_client_final(sc, msg, len, out, outcap, outlen) : SCRAM_ESTATE;
	if (msg) {
		rc = scram_client_read_server_first(sc, msg, len, &w->params);
		if (rc != SCRAM_OK)
			return rc;
	} else if (sc->state != SCRAM_CLIENT_GOT_SERVER_FIRST) {
		return SCRAM_ESTATE;
	}
	rc = auth_server_keys_for(user, sc->password, w, &keys);
	if (rc == SCRAM_OK)
		rc = scram_client_final_keys(sc, &keys, out, outcap, outlen);
	OPENSSL_cleanse(&keys, sizeof(keys));
	return rc;
}
