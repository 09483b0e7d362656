/*
 * pool.c: pools keyed by (database, user). Decides which client gets which
 * server: an idle server goes to the longest-waiting client (FIFO), the pool
 * grows one login at a time per waiter up to pool_size, and the first login
 * supplies the parameters every client of the pool is welcomed with.
 */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <uv.h>

#include "authq.h"
#include "client.h"
#include "log.h"
#include "pooler.h"
#include "server.h"
#include "sqlprep.h"
#include "util.h"

static char *pool_key(const char *db, const char *user, size_t *len)
{
	size_t dl = strlen(db);
	size_t ul = strlen(user);
	char *k = xmalloc(dl + ul + 2);

	memcpy(k, db, dl);
	k[dl] = '\x01';
	memcpy(k + dl + 1, user, ul + 1);
	*len = dl + ul + 1;
	return k;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* A [users] value (-1: not set) overrides the global one; seconds to ms. */
static uint64_t pool_timeout_ms(double global_s, double user_s)
{
	double s = user_s >= 0 ? user_s : global_s;

	return s > 0 ? (uint64_t)(s * 1000.0) : 0;
}

/* Copies what the pool needs from its database entry. */
static void pool_configure(struct pool *p, const struct cfg_db *db)
{
	const struct cfg *cfg = g_pooler.cfg;
	const struct cfg_user *u = cfg_find_user(cfg, p->user_name);

	free(p->host);
	free(p->server_db);
	free(p->password);
	p->host = dup_or_null(db->host);
	p->port = db->port > 0 ? db->port : 5432;
	/* The "*" entry names no database: the client's name is used. */
	p->server_db = xstrdup(db->dbname ? db->dbname : p->db_name);
	/* The entry's password is its forced user's; an auth_user pool on
	 * the same entry takes its own from the auth_file. */
	p->password = db->user && db->password && strcmp(db->user, p->user_name) == 0 ?
			      xstrdup(db->password) :
			      NULL;
	p->pool_size = db->pool_size >= 0 ? db->pool_size : cfg->default_pool_size;
	if (u && u->pool_size >= 0)
		p->pool_size = u->pool_size;
	p->min_pool_size = db->min_pool_size >= 0 ? db->min_pool_size : cfg->min_pool_size;
	p->reserve_pool = db->reserve_pool >= 0 ? db->reserve_pool : cfg->reserve_pool_size;
	if (u && u->reserve_pool_size >= 0)
		p->reserve_pool = u->reserve_pool_size;
	p->max_db_connections = db->max_db_connections > 0 ? db->max_db_connections :
							      cfg->max_db_connections;
	p->max_user_connections = u && u->max_user_connections > 0 ? u->max_user_connections :
								       cfg->max_user_connections;
	p->mode = db->pool_mode >= 0 ? (enum pool_mode)db->pool_mode : cfg->pool_mode;
	if (u && u->pool_mode >= 0)
		p->mode = (enum pool_mode)u->pool_mode;
	p->query_timeout_ms = pool_timeout_ms(cfg->query_timeout, u ? u->query_timeout : -1);
	p->idle_transaction_timeout_ms = pool_timeout_ms(
		cfg->idle_transaction_timeout, u ? u->idle_transaction_timeout : -1);
	p->transaction_timeout_ms =
		pool_timeout_ms(cfg->transaction_timeout, u ? u->transaction_timeout : -1);
	p->client_idle_timeout_ms =
		pool_timeout_ms(cfg->client_idle_timeout, u ? u->client_idle_timeout : -1);
}

struct pool *pool_get(const struct cfg_db *db, const char *client_db, const char *user)
{
	struct pool *p;
	size_t klen;
	char *key = pool_key(client_db, user, &klen);

	HASH_FIND(hh, g_pooler.pools, key, klen, p);
	if (p) {
		free(key);
		return p;
	}
	p = xcalloc(1, sizeof(*p));
	p->key = key;
	p->db_name = xstrdup(client_db);
	p->user_name = xstrdup(user);
	list_init(&p->welcome_clients);
	list_init(&p->idle_clients);
	list_init(&p->waiting_clients);
	list_init(&p->active_clients);
	list_init(&p->login_servers);
	list_init(&p->idle_servers);
	list_init(&p->active_servers);
	pool_configure(p, db);
	p->sat.last_us = util_now_us();
	p->period.start_us = p->sat.last_us;
	p->period.old_us = p->sat.last_us;
	/* As PgBouncer: before the first tick the window began a second
	 * before the pool did. */
	p->period.older_us = p->sat.last_us > 1000000u ? p->sat.last_us - 1000000u : 0;
	HASH_ADD_KEYPTR(hh, g_pooler.pools, p->key, klen, p);
	log_info("new pool %s@%s: pool_size=%d pool_mode=%s server=%s:%d/%s", user, client_db,
		 p->pool_size, cfg_pool_mode_str(p->mode), p->host ? p->host : "unix", p->port,
		 p->server_db);
	return p;
}

void pool_apply_config(void)
{
	struct pool *p;
	struct pool *tmp;

	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		const struct cfg_db *db = cfg_find_db(g_pooler.cfg, p->db_name);

		if (db)
			pool_configure(p, db);
		/* The operator may just have fixed what made logins fail. */
		p->login_failing = false;
		pool_launch_servers(p);
	}
}

static void pool_free_db_states(void);

static void pool_free(struct pool *p)
{
	free(p->key);
	free(p->db_name);
	free(p->user_name);
	free(p->host);
	free(p->server_db);
	free(p->password);
	free(p->welcome);
	free(p->server_version);
	free(p->last_error_sqlstate);
	free(p->last_error_message);
	param_set_clear(&p->defaults);
	free(p);
}

void pool_free_all(void)
{
	pool_free_db_states();
	struct pool *p;
	struct pool *tmp;

	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		HASH_DEL(g_pooler.pools, p);
		pool_free(p);
	}
}

uint32_t pool_server_total(const struct pool *p)
{
	return (uint32_t)(p->login_servers.count + p->idle_servers.count +
			  p->active_servers.count);
}

/* Servers of every pool of a database (by_user false) or of a user. */
static uint32_t pool_group_servers(const struct pool *p, bool by_user)
{
	struct pool *q;
	struct pool *tmp;
	uint32_t n = 0;

	HASH_ITER(hh, g_pooler.pools, q, tmp)
	{
		if (by_user ? strcmp(q->user_name, p->user_name) == 0 :
			      strcmp(q->db_name, p->db_name) == 0)
			n += pool_server_total(q);
	}
	return n;
}

/* Whether max_db_connections and max_user_connections allow one more. */
static bool pool_group_room(const struct pool *p)
{
	if (p->max_db_connections > 0 &&
	    pool_group_servers(p, false) >= (uint32_t)p->max_db_connections)
		return false;
	if (p->max_user_connections > 0 &&
	    pool_group_servers(p, true) >= (uint32_t)p->max_user_connections)
		return false;
	return true;
}

/*
 * max_db/user_connections is full: close one idle server of another pool
 * in the same group so this pool's waiting client can have one, as
 * PgBouncer does. Returns whether a server was evicted.
 */
static bool pool_evict_for(const struct pool *p)
{
	/* Evict from the group that is full: the database's, else the user's. */
	bool by_user = !(p->max_db_connections > 0 &&
			 pool_group_servers(p, false) >= (uint32_t)p->max_db_connections);
	struct pool *q;
	struct pool *tmp;

	HASH_ITER(hh, g_pooler.pools, q, tmp)
	{
		struct list_node *n;

		if (q == p || strcmp(by_user ? q->user_name : q->db_name,
				     by_user ? p->user_name : p->db_name) != 0)
			continue;
		n = list_first(&q->idle_servers);
		if (n) {
			server_close(container_of(n, struct server, node),
				     "evicted: %s@%s needs a server under max_db/user_connections",
				     p->user_name, p->db_name);
			return true;
		}
	}
	return false;
}

static void pool_fail_list(struct list *l, const char *sqlstate, const char *message);

static uint64_t pool_retry_ms(void)
{
	double s = g_pooler.cfg->server_login_retry;

	return s > 0 ? (uint64_t)(s * 1000.0) : 0;
}

/* Whether server_login_retry still holds launches back after a failure. */
static bool pool_retry_pending(const struct pool *p)
{
	return p->login_failing && uv_now(g_pooler.loop) < p->retry_at_ms;
}

/*
 * Inside the retry interval a pool with no server at all cannot serve
 * anyone: its clients hear the cached error now instead of waiting for an
 * attempt that is seconds away.
 */
static void pool_fail_fast(struct pool *p)
{
	char msg[512];

	if (pool_server_total(p) > 0 || (list_empty(&p->waiting_clients) &&
					 list_empty(&p->welcome_clients) && p->authq_waiting == 0))
		return;
	snprintf(msg, sizeof(msg), "server login has been failing, try again later "
		 "(server_login_retry): %s", p->last_error_message ? p->last_error_message : "");
	pool_fail_list(&p->welcome_clients, p->last_error_sqlstate, msg);
	pool_fail_list(&p->waiting_clients, p->last_error_sqlstate, msg);
	authq_pool_failed(p, p->last_error_sqlstate, msg);
}

/*
 * Session mode: the startup parameters of the idx-th waiting client, which
 * the server launched for it starts with (so RESET returns to them, as on
 * a direct connection). NULL: the pool's plain server. Until the pool has
 * its defaults (welcome), plain servers only.
 */
static const struct param_set *pool_waiting_startup(const struct pool *p, size_t idx)
{
	const struct list_node *it;

	if (p->mode != POOL_MODE_SESSION || !p->welcome)
		return NULL;
	for (it = p->waiting_clients.head.next; it != &p->waiting_clients.head; it = it->next) {
		const struct client *c = container_of(it, const struct client, node);

		if (idx-- == 0)
			return param_set_used(&c->startup) ? &c->startup : NULL;
	}
	return NULL;
}

/* Opens up to `need` servers while the pool stays under `cap`; with
 * for_waiting, the k-th one for waiting client first + k. */
static void pool_launch_up_to(struct pool *p, size_t need, uint32_t cap, bool for_waiting,
			      size_t first)
{
	size_t k = 0;

	if (pool_retry_pending(p))
		return;
	/* Counted once: a launch that fails at once must not be retried in
	 * a tight loop. */
	while (need-- > 0 && pool_server_total(p) < cap) {
		if (!pool_group_room(p) && (!pool_evict_for(p) || !pool_group_room(p)))
			return;
		server_launch_with(p, for_waiting ? pool_waiting_startup(p, first + k) : NULL);
		k++;
	}
}

void pool_launch_servers(struct pool *p)
{
	size_t want = p->waiting_clients.count + p->authq_waiting;
	size_t coming;
	size_t need;

	if (g_pooler.run_state == POOLER_SHUTDOWN_NOW || pool_is_paused(p))
		return;
	if (!list_empty(&p->welcome_clients) && want == 0)
		want = 1;
	if (pool_retry_pending(p)) {
		pool_fail_fast(p);
		return;
	}
	/* Servers logging in or being checked will each take a client. */
	coming = p->login_servers.count + p->checking_servers;
	need = want > coming ? want - coming : 0;
	pool_launch_up_to(p, need, (uint32_t)p->pool_size, true, coming);
	if (want > 0 && pool_server_total(p) == 0 && p->pool_size <= 0)
		log_warn("pool %s@%s has pool_size 0: %zu clients cannot be served", p->user_name,
			 p->db_name, want);
}

/* Whether servers may be handed to clients right now. */
static bool pool_may_serve(const struct pool *p)
{
	return !pool_is_paused(p) && g_pooler.run_state != POOLER_SHUTDOWN_WAIT_SERVERS &&
	       g_pooler.run_state != POOLER_SHUTDOWN_NOW;
}

/* Whether another pool sharing a max_db/user_connections limit with p has
 * clients waiting and cannot open a server because the limit is full. */
static bool pool_related_waiting(const struct pool *p)
{
	struct pool *q;
	struct pool *tmp;

	if (p->max_db_connections <= 0 && p->max_user_connections <= 0)
		return false;
	HASH_ITER(hh, g_pooler.pools, q, tmp)
	{
		if (q == p || list_empty(&q->waiting_clients) || q->login_servers.count > 0)
			continue;
		if (strcmp(q->db_name, p->db_name) != 0 && strcmp(q->user_name, p->user_name) != 0)
			continue;
		if (!pool_group_room(q))
			return true;
	}
	return false;
}

/*
 * Idle servers due for server_check_query start it, one per waiting client
 * not already covered by a check; each is handed to the first waiting
 * client when it answers (pool_server_ready). Most recently used first.
 */
static void pool_start_checks(struct pool *p)
{
	while (p->waiting_clients.count > p->checking_servers && pool_may_serve(p)) {
		struct list_node *n = list_last(&p->idle_servers);

		if (!n)
			return;
		(void)server_start_check(container_of(n, struct server, node));
	}
}

/* Whether s is ready for c as it is: same parameters, same SQL-level
 * prepared statements. */
static bool pool_in_line(const struct server *s, const struct client *c)
{
	return param_build_sync(NULL, &c->params, &s->params, &s->pool->defaults) == 0 &&
	       sqlprep_in_sync(c, s);
}

bool pool_give(struct server *s, struct client *c)
{
	struct proto_buf q;
	bool with_set;
	uint32_t owed;
	bool sent;

	if (pool_in_line(s, c)) {
		server_link(s, c);
		return true;
	}
	/* The SETs, then at most every SQL-level statement the client has. */
	proto_buf_init(&q, 64 * 1024 + SQLPREP_SYNC_MAX);
	with_set = param_build_sync(&q, &c->params, &s->params, &s->pool->defaults) > 0;
	owed = with_set ? 1 : 0;
	owed += sqlprep_build_sync(&q, c, s, owed);
	sent = server_start_sync(s, c, &q, owed, with_set);
	proto_buf_free(&q);
	(void)sent; /* not sent: s is closed and c waits for another server */
	return false;
}

/*
 * The idle server for c: the most recently used one, except in session
 * mode, where it must have been started with c's startup parameters.
 */
static struct server *pool_idle_for(struct pool *p, const struct client *c)
{
	struct list_node *it;

	for (it = p->idle_servers.head.prev; it != &p->idle_servers.head; it = it->prev) {
		struct server *s = container_of(it, struct server, node);

		if (p->mode != POOL_MODE_SESSION || param_set_same(&s->startup, &c->startup))
			return s;
	}
	return NULL;
}

/* Session mode, pool full, only idle servers started for other startup
 * parameters: the oldest makes room (its close launches a new one). */
static void pool_make_room(struct pool *p)
{
	struct list_node *n = list_first(&p->idle_servers);

	if (p->mode != POOL_MODE_SESSION || !n ||
	    pool_server_total(p) < (uint32_t)p->pool_size)
		return;
	server_close(container_of(n, struct server, node),
		     "idle, started with other startup parameters than the waiting clients'");
}

bool pool_acquire(struct pool *p, struct client *c)
{
	struct server *s = pool_idle_for(p, c);

	bool fast = s && list_empty(&p->waiting_clients) && pool_may_serve(p) &&
		    !server_check_due(s);

	if (fast && pool_in_line(s, c)) {
		/* Most recently used first: its caches are warm. */
		server_link(s, c);
		return true;
	}
	c->wait_start_us = util_now_us();
	client_set_state(c, CLIENT_WAITING);
	if (p->waiting_clients.count > p->sat.cl_waiting_max)
		p->sat.cl_waiting_max = (uint32_t)p->waiting_clients.count;
	if (fast) {
		/* Parameters or statements differ: one round trip, then the
		 * request. */
		(void)pool_give(s, c);
		return false;
	}
	/* Idle servers exist only while clients wait if they are due for
	 * a check (LIFO: if the newest is due, all are), or, in session
	 * mode, were started for other startup parameters. */
	pool_start_checks(p);
	pool_launch_servers(p);
	if (c->state == CLIENT_WAITING && !s && p->login_servers.count == 0)
		pool_make_room(p);
	return false;
}

/* The longest-waiting client no syncing server has claimed and s can
 * serve (session mode: started with its startup parameters). */
static struct client *pool_first_unreserved(struct pool *p, const struct server *s,
					    bool *others)
{
	struct list_node *it;

	*others = false;
	for (it = p->waiting_clients.head.next; it != &p->waiting_clients.head; it = it->next) {
		struct client *c = container_of(it, struct client, node);

		if (c->sync_server)
			continue;
		if (p->mode == POOL_MODE_SESSION && !param_set_same(&s->startup, &c->startup)) {
			*others = true;
			continue;
		}
		return c;
	}
	return NULL;
}

void pool_server_ready(struct server *s)
{
	struct pool *p = s->pool;
	struct list_node *n = list_first(&p->waiting_clients);
	struct client *c;
	bool others;

	if (s->close_needed || pool_is_paused(p)) {
		server_close(s, s->close_needed ? "closing: reconnect requested" :
						  "closing: database paused");
		return;
	}
	/* A login needs it to look a user up: it goes before the waiters,
	 * who are already logged in. */
	if (p->authq_waiting > 0 && pool_may_serve(p) && authq_take_server(s))
		return;
	if (!n || !pool_may_serve(p)) {
		server_set_state(s, SERVER_IDLE);
		/* Nobody here needs it, but another pool of the same database
		 * or user may be held back by max_db/user_connections: let it
		 * launch now, evicting an idle server (likely this one) in the
		 * same call so the group's count never dips. */
		if (!n && pool_related_waiting(p))
			pool_kick_related(p);
		pooler_maybe_finish_shutdown();
		return;
	}
	c = pool_first_unreserved(p, s, &others);
	if (!c && others) {
		/* Its slot serves them better as a server started for them. */
		server_close(s, "started with other startup parameters than the waiting clients'");
		return;
	}
	if (!c) {
		server_set_state(s, SERVER_IDLE);
		return;
	}
	if (pool_give(s, c))
		(void)client_resume(c);
}

void pool_want_welcome(struct pool *p)
{
	pool_launch_servers(p);
}

/* The tracked parameters among the welcome's ParameterStatus messages. */
static void pool_parse_defaults(struct pool *p)
{
	struct param_msg m;
	size_t pos = 0;

	param_set_clear(&p->defaults);
	while (param_walk(p->welcome, p->welcome_len, &pos, &m)) {
		if (m.idx >= 0)
			param_set_value(&p->defaults, m.idx, m.value);
	}
}

void pool_set_welcome(struct pool *p, const struct proto_buf *params, const char *server_version)
{
	struct list_node *it;
	struct list_node *tmp;

	free(p->welcome);
	p->welcome = xmalloc(params->len);
	memcpy(p->welcome, params->data, params->len);
	p->welcome_len = params->len;
	free(p->server_version);
	p->server_version = server_version ? xstrdup(server_version) : NULL;
	pool_parse_defaults(p);
	list_foreach_safe(&p->welcome_clients, it, tmp)
	{
		client_welcome(container_of(it, struct client, node));
	}
}

static void pool_fail_list(struct list *l, const char *sqlstate, const char *message)
{
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(l, it, tmp)
	{
		client_fatal(container_of(it, struct client, node), sqlstate, "%s", message);
	}
}

/* Logs a failed server login at most once per server_login_retry: with
 * hundreds of clients and a database down, one line per interval says it. */
static void pool_log_login_failure(struct pool *p, const char *sqlstate, const char *message,
				   uint64_t now)
{
	uint64_t retry = pool_retry_ms();

	if (p->fail_logged_ms != 0 && now - p->fail_logged_ms < (retry > 1000 ? retry : 1000)) {
		p->fails_unlogged++;
		return;
	}
	log_warn("pool %s@%s: server login failed: %s (%s); %u more failures since last "
		 "report; next attempt in %.1f s (server_login_retry)",
		 p->user_name, p->db_name, message, sqlstate, p->fails_unlogged,
		 (double)retry / 1000.0);
	p->fail_logged_ms = now;
	p->fails_unlogged = 0;
}

void pool_login_failed(struct pool *p, const char *sqlstate, const char *message)
{
	uint64_t now = uv_now(g_pooler.loop);

	free(p->last_error_sqlstate);
	free(p->last_error_message);
	p->last_error_sqlstate = xstrdup(sqlstate);
	p->last_error_message = xstrdup(message);
	p->last_login_failure_us = util_now_us();
	pool_log_login_failure(p, sqlstate, message, now);
	p->login_failing = true;
	p->retry_at_ms = now + pool_retry_ms();
	/*
	 * Clients that some live or still-connecting server will serve keep
	 * waiting; if this was the last hope, they hear why now rather than
	 * hang. (The failing server is still counted in login_servers here.)
	 */
	if (p->idle_servers.count + p->active_servers.count > 0 || p->login_servers.count > 1)
		return;
	pool_fail_list(&p->welcome_clients, sqlstate, message);
	pool_fail_list(&p->waiting_clients, sqlstate, message);
	authq_pool_failed(p, sqlstate, message);
}

void pool_login_succeeded(struct pool *p)
{
	if (!p->login_failing)
		return;
	log_info("pool %s@%s: server login works again (%u failures not reported)",
		 p->user_name, p->db_name, p->fails_unlogged);
	p->login_failing = false;
	p->fail_logged_ms = 0;
	p->fails_unlogged = 0;
}

/* ---- saturation ---- */

const uint64_t pool_wait_prom_bounds_us[POOL_WAIT_PROM_BUCKETS] = {
	100, 500, 1000, 5000, 10000, 50000, 100000, 500000, 1000000, 5000000, 10000000,
	30000000, 60000000,
};

void pool_account(struct pool *p)
{
	uint64_t now = util_now_us();
	uint64_t dt = p->sat.last_us ? now - p->sat.last_us : 0;

	p->sat.last_us = now;
	if (dt == 0)
		return;
	p->sat.busy_server_us += (uint64_t)p->active_servers.count * dt;
	if (p->waiting_clients.count > 0 && p->idle_servers.count == 0 &&
	    pool_server_total(p) >= (uint32_t)p->pool_size)
		p->sat.saturated_us += dt;
}

void pool_note_wait(struct pool *p, uint64_t wait_us)
{
	unsigned i;

	hist_record(&p->sat.wait, wait_us);
	for (i = 0; i < POOL_WAIT_PROM_BUCKETS; i++) {
		if (wait_us <= pool_wait_prom_bounds_us[i]) {
			p->sat.wait_prom[i]++;
			return;
		}
	}
}

/* ---- admin state ---- */

struct pool_db_state *pool_db_state(const char *db, bool create)
{
	struct pool_db_state *st;

	HASH_FIND_STR(g_pooler.db_states, db, st);
	if (st || !create)
		return st;
	st = xcalloc(1, sizeof(*st));
	st->name = xstrdup(db);
	HASH_ADD_KEYPTR(hh, g_pooler.db_states, st->name, strlen(st->name), st);
	return st;
}

static void pool_free_db_states(void)
{
	struct pool_db_state *st;
	struct pool_db_state *tmp;

	HASH_ITER(hh, g_pooler.db_states, st, tmp)
	{
		HASH_DEL(g_pooler.db_states, st);
		free(st->name);
		free(st);
	}
}

bool pool_matches(const struct pool *p, const char *db)
{
	return !db || strcmp(p->db_name, db) == 0;
}

bool pool_is_paused(const struct pool *p)
{
	const struct pool_db_state *st;

	if (g_pooler.paused)
		return true;
	HASH_FIND_STR(g_pooler.db_states, p->db_name, st);
	return st && st->paused;
}

bool pool_db_disabled(const char *db)
{
	const struct pool_db_state *st;

	HASH_FIND_STR(g_pooler.db_states, db, st);
	return st && st->disabled;
}

static void pool_close_idle_servers(struct pool *p, const char *why)
{
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(&p->idle_servers, it, tmp)
	{
		server_close(container_of(it, struct server, node), "%s", why);
	}
}

static void pool_close_login_servers(struct pool *p, const char *why)
{
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(&p->login_servers, it, tmp)
	{
		server_close(container_of(it, struct server, node), "%s", why);
	}
}

void pool_set_paused(const char *db, bool paused)
{
	struct pool *p;
	struct pool *tmp;

	if (db)
		pool_db_state(db, true)->paused = paused;
	else
		g_pooler.paused = paused;
	if (!paused) {
		pool_kick_all(db);
		return;
	}
	/* Idle and half-open servers go now; busy ones when released. */
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		if (!pool_matches(p, db))
			continue;
		pool_close_idle_servers(p, "closing: database paused");
		pool_close_login_servers(p, "closing: database paused");
	}
}

void pool_set_disabled(const char *db, bool disabled)
{
	pool_db_state(db, true)->disabled = disabled;
}

static void pool_mark_close_needed(struct list *l)
{
	struct list_node *it;

	for (it = l->head.next; it != &l->head; it = it->next)
		container_of(it, struct server, node)->close_needed = true;
}

void pool_reconnect(const char *db)
{
	struct pool *p;
	struct pool *tmp;

	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		if (!pool_matches(p, db))
			continue;
		pool_mark_close_needed(&p->login_servers);
		pool_mark_close_needed(&p->active_servers);
		pool_close_idle_servers(p, "closing: reconnect requested");
	}
}

static void pool_kill_clients(struct list *l)
{
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(l, it, tmp)
	{
		client_fatal(container_of(it, struct client, node), "08P01",
			     "database killed by the admin console");
	}
}

void pool_kill(const char *db)
{
	struct pool *p;
	struct pool *tmp;

	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		struct list_node *it;
		struct list_node *next;

		if (!pool_matches(p, db))
			continue;
		pool_kill_clients(&p->welcome_clients);
		pool_kill_clients(&p->idle_clients);
		pool_kill_clients(&p->waiting_clients);
		pool_kill_clients(&p->active_clients);
		list_foreach_safe(&p->active_servers, it, next)
		{
			server_close(container_of(it, struct server, node), "killed");
		}
		pool_close_idle_servers(p, "killed");
		pool_close_login_servers(p, "killed");
	}
}

static uint32_t pool_count_flagged(const struct list *l)
{
	const struct list_node *it;
	uint32_t n = 0;

	for (it = l->head.next; it != &l->head; it = it->next)
		n += container_of(it, struct server, node)->close_needed;
	return n;
}

uint32_t pool_count_servers(const char *db, bool close_needed_only)
{
	struct pool *p;
	struct pool *tmp;
	uint32_t n = 0;

	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		if (!pool_matches(p, db))
			continue;
		if (close_needed_only)
			n += pool_count_flagged(&p->login_servers) +
			     pool_count_flagged(&p->idle_servers) +
			     pool_count_flagged(&p->active_servers);
		else
			n += pool_server_total(p);
	}
	return n;
}

uint32_t pool_count_active_servers(void)
{
	struct pool *p;
	struct pool *tmp;
	uint32_t n = 0;

	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		n += (uint32_t)p->active_servers.count;
	}
	return n;
}

uint32_t pool_count_in_state(const struct pool *p, enum server_state st)
{
	const struct list_node *it;
	uint32_t n = 0;

	for (it = p->active_servers.head.next; it != &p->active_servers.head; it = it->next) {
		if (container_of(it, const struct server, node)->state == st)
			n++;
	}
	return n;
}

void pool_kick_all(const char *db)
{
	struct pool *p;
	struct pool *tmp;

	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		struct list_node *n;

		if (!pool_matches(p, db) || !pool_may_serve(p))
			continue;
		/* Idle servers first, then new logins for whoever is left. */
		while ((n = list_last(&p->idle_servers)) != NULL && !list_empty(&p->waiting_clients))
			pool_server_ready(container_of(n, struct server, node));
		pool_launch_servers(p);
	}
}

/* ---- limits and maintenance ---- */

static uint64_t pool_group_clients(const char *db, const char *user)
{
	struct pool *p;
	struct pool *tmp;
	uint64_t n = 0;

	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		if ((db && strcmp(p->db_name, db) != 0) || (user && strcmp(p->user_name, user) != 0))
			continue;
		n += p->welcome_clients.count + p->idle_clients.count + p->waiting_clients.count +
		     p->active_clients.count;
	}
	return n;
}

const char *pool_client_limit(const char *db, const char *user, char *buf, size_t len)
{
	const struct cfg *cfg = g_pooler.cfg;
	const struct cfg_db *d = cfg_find_db(cfg, db);
	const struct cfg_user *u = cfg_find_user(cfg, user);
	int max_db = d && d->max_db_client_connections > 0 ? d->max_db_client_connections :
							      cfg->max_db_client_connections;
	int max_user = u && u->max_user_client_connections > 0 ? u->max_user_client_connections :
								   cfg->max_user_client_connections;

	if (max_db > 0 && pool_group_clients(db, NULL) >= (uint64_t)max_db) {
		snprintf(buf, len, "too many client connections for database \"%s\" "
			 "(max_db_client_connections = %d)", db, max_db);
		return buf;
	}
	if (max_user > 0 && pool_group_clients(NULL, user) >= (uint64_t)max_user) {
		snprintf(buf, len, "too many client connections for user \"%s\" "
			 "(max_user_client_connections = %d)", user, max_user);
		return buf;
	}
	return NULL;
}

void pool_maintain(struct pool *p, uint64_t now_ms)
{
	uint64_t reserve_ms = (uint64_t)(g_pooler.cfg->reserve_pool_timeout * 1000.0);
	struct list_node *first = list_first(&p->waiting_clients);
	uint32_t total = pool_server_total(p);

	if (g_pooler.run_state != POOLER_RUNNING || pool_is_paused(p))
		return;
	/* Clients held back by server_login_retry get their attempt (or
	 * the cached error) once the interval is over. */
	if (p->login_failing && (first || !list_empty(&p->welcome_clients))) {
		pool_launch_servers(p);
		first = list_first(&p->waiting_clients);
		total = pool_server_total(p);
	}
	if (p->min_pool_size > 0 && total < (uint32_t)p->min_pool_size)
		pool_launch_up_to(p, (size_t)p->min_pool_size - total,
				  (uint32_t)(p->min_pool_size < p->pool_size ? p->min_pool_size :
									       p->pool_size),
				  false, 0);
	/* The reserve is for a pool that is full and has kept someone
	 * waiting too long: one more server per pass. */
	if (first && p->reserve_pool > 0 && p->login_servers.count == 0 &&
	    now_ms - container_of(first, struct client, node)->wait_start_us / 1000 >= reserve_ms) {
		uint32_t before = pool_server_total(p);

		pool_launch_up_to(p, 1, (uint32_t)(p->pool_size + p->reserve_pool), true,
				  p->login_servers.count);
		if (pool_server_total(p) > before)
			log_info("pool %s@%s: opening a reserve server for clients waiting over "
				 "%.1f s", p->user_name, p->db_name,
				 g_pooler.cfg->reserve_pool_timeout);
	}
}

void pool_kick_related(const struct pool *p)
{
	struct pool *q;
	struct pool *tmp;

	if (p->max_db_connections <= 0 && p->max_user_connections <= 0)
		return;
	HASH_ITER(hh, g_pooler.pools, q, tmp)
	{
		if (q != p && !list_empty(&q->waiting_clients) &&
		    (strcmp(q->db_name, p->db_name) == 0 || strcmp(q->user_name, p->user_name) == 0))
			pool_launch_servers(q);
	}
}
