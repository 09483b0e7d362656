/*
 * admin_show.c: SHOW commands with PgBouncer's names, columns and column
 * order, so existing tools (exporters, scripts) work unchanged. Handlers
 * only read: pools, client and server lists, the config, the stats period.
 * pgmux's own views (FDS, FD_USAGE, SATURATION) are in admin_fds.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_show.h"
#include "client.h"
#include "config.h"
#include "fds.h"
#include "iobuf.h"
#include "pool.h"
#include "pooler.h"
#include "prepared.h"
#include "server.h"
#include "sqlprep.h"
#include "stats.h"
#include "util.h"
#include "version.h"

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

static void fmt_u64(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* PgBouncer prints times as "YYYY-MM-DD HH:MM:SS TZ" in local time. */
static void fmt_wall(char *buf, size_t len, uint64_t wall_us)
{
	time_t t = (time_t)(wall_us / 1000000u);
	struct tm tm;

	if (!wall_us || !localtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
		util_strlcpy(buf, "", len);
}

/* A monotonic instant as wall-clock µs. */
static uint64_t mono_to_wall(uint64_t mono_us)
{
	uint64_t now_mono = util_now_us();
	uint64_t now_wall = util_wall_us();

	if (!mono_us || mono_us > now_mono)
		return now_wall;
	return now_wall - (now_mono - mono_us);
}

/* ---- HELP, VERSION, CONFIG, STATE ---- */

/* PgBouncer sends its usage as one NOTICE whose detail lists the
 * commands; pgmux adds its own views on a last line. */
void admin_show_help(struct client *c, struct proto_buf *b, const char *arg)
{
	static const char detail[] =
		"\n\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION\n"
		"\tSHOW PEERS|PEER_POOLS\n"
		"\tSHOW FDS|LISTS|MEM|STATE\n"
		"\tSHOW DNS_HOSTS|DNS_ZONES\n"
		"\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS\n"
		"\tSET key = arg\n\tRELOAD\n\tPAUSE [<db>]\n\tRESUME [<db>]\n"
		"\tDISABLE <db>\n\tENABLE <db>\n\tRECONNECT [<db>]\n\tKILL [<db>]\n"
		"\tKILL_CLIENT <client_id>\n\tSUSPEND\n\tSHUTDOWN\n"
		"\tSHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS\n\tWAIT_CLOSE [<db>]\n"
		"\tSHOW FD_USAGE|SATURATION|SESSION_LEAKS (pgmux)";

	(void)c;
	(void)arg;
	proto_begin(b, 'N');
	proto_put_u8(b, 'S');
	proto_put_cstr(b, "NOTICE");
	proto_put_u8(b, 'C');
	proto_put_cstr(b, "00000");
	proto_put_u8(b, 'M');
	proto_put_cstr(b, "Console usage");
	proto_put_u8(b, 'D');
	proto_put_cstr(b, detail);
	proto_put_u8(b, 0);
	proto_end(b);
	admin_result_done(b, "SHOW");
}

void admin_show_version(struct client *c, struct proto_buf *b, const char *arg)
{
	static const struct admin_column cols[] = { { "version", ADMIN_TEXT } };
	const char *row[] = { "pgmux " PGMUX_VERSION };

	(void)c;
	(void)arg;
	admin_result_columns(b, cols, 1);
	admin_result_row(b, 1, row);
	admin_result_done(b, "SHOW");
}

void admin_show_config(struct client *c, struct proto_buf *b, const char *arg)
{
	static const struct admin_column cols[] = {
		{ "key", ADMIN_TEXT },
		{ "value", ADMIN_TEXT },
		{ "default", ADMIN_TEXT },
		{ "changeable", ADMIN_TEXT },
	};
	size_t i;

	(void)c;
	(void)arg;
	admin_result_columns(b, cols, NCOLS(cols));
	for (i = 0; i < cfg_key_count(); i++) {
		struct cfg_key_view kv;
		const char *row[4];

		cfg_key_at(g_pooler.cfg, i, &kv);
		row[0] = kv.key;
		row[1] = kv.value ? kv.value : "";
		row[2] = kv.def ? kv.def : "";
		row[3] = kv.reloadable ? "yes" : "no";
		admin_result_row(b, 4, row);
	}
	admin_result_done(b, "SHOW");
}

void admin_show_state(struct client *c, struct proto_buf *b, const char *arg)
{
	static const struct admin_column cols[] = { { "key", ADMIN_TEXT }, { "value", ADMIN_TEXT } };
	bool paused_now = g_pooler.paused || g_pooler.run_state == POOLER_SHUTDOWN_WAIT_SERVERS;
	const char *active[] = { "active", paused_now ? "no" : "yes" };
	const char *paused[] = { "paused", paused_now ? "yes" : "no" };
	const char *suspended[] = { "suspended", "no" };

	(void)c;
	(void)arg;
	admin_result_columns(b, cols, 2);
	admin_result_row(b, 2, active);
	admin_result_row(b, 2, paused);
	admin_result_row(b, 2, suspended);
	admin_result_done(b, "SHOW");
}

/* ---- ordering ---- */

static int pool_cmp(const void *a, const void *b)
{
	const struct pool *pa = *(const struct pool *const *)a;
	const struct pool *pb = *(const struct pool *const *)b;
	int r = strcmp(pa->db_name, pb->db_name);

	return r ? r : strcmp(pa->user_name, pb->user_name);
}

/* Pools sorted by (database, user), as PgBouncer lists them. Caller frees. */
static struct pool **sorted_pools(size_t *n)
{
	size_t cap = HASH_COUNT(g_pooler.pools);
	struct pool **v = xcalloc(cap + 1, sizeof(*v));
	struct pool *p;
	struct pool *tmp;

	*n = 0;
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		v[(*n)++] = p;
	}
	qsort(v, *n, sizeof(*v), pool_cmp);
	return v;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The admin console is listed as PgBouncer lists its own: database and
 * user "pgbouncer", statement mode, its sessions as clients. */
#define ADMIN_DB "pgbouncer"

/* ---- DATABASES, USERS ---- */

/* Client connections (any state) of the pools of one database. */
static uint64_t db_client_count(const char *db)
{
	struct pool *p;
	struct pool *tmp;
	uint64_t n = 0;

	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		if (strcmp(p->db_name, db) == 0)
			n += p->welcome_clients.count + p->idle_clients.count +
			     p->waiting_clients.count + p->active_clients.count;
	}
	return n;
}

static uint64_t db_server_count(const char *db)
{
	struct pool *p;
	struct pool *tmp;
	uint64_t n = 0;

	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		if (strcmp(p->db_name, db) == 0)
			n += pool_server_total(p);
	}
	return n;
}

static const struct admin_column database_cols[] = {
	{ "name", ADMIN_TEXT },
	{ "host", ADMIN_TEXT },
	{ "port", ADMIN_INT4 },
	{ "database", ADMIN_TEXT },
	{ "force_user", ADMIN_TEXT },
	{ "pool_size", ADMIN_INT4 },
	{ "min_pool_size", ADMIN_INT4 },
	{ "reserve_pool_size", ADMIN_INT4 },
	{ "server_lifetime", ADMIN_INT4 },
	{ "pool_mode", ADMIN_TEXT },
	{ "load_balance_hosts", ADMIN_TEXT },
	{ "max_connections", ADMIN_INT4 },
	{ "current_connections", ADMIN_INT4 },
	{ "max_client_connections", ADMIN_INT4 },
	{ "current_client_connections", ADMIN_INT4 },
	{ "paused", ADMIN_INT4 },
	{ "disabled", ADMIN_INT4 },
	/* Not in PgBouncer 1.25: its name before 1.24, which the Debian
	 * bookworm exporter still reads. Last, so positions are unchanged. */
	{ "reserve_pool", ADMIN_INT4 },
};
#define DATABASE_NCOLS NCOLS(database_cols)

struct database_row {
	const char *name;
	const struct cfg_db *db; /* NULL: the admin console */
};

static void show_database_row(struct proto_buf *b, const struct database_row *dr)
{
	const struct cfg *cfg = g_pooler.cfg;
	const struct cfg_db *db = dr->db;
	const struct pool_db_state *st = pool_db_state(dr->name, false);
	char v[DATABASE_NCOLS][24];
	const char *row[DATABASE_NCOLS];
	size_t i;

	if (!db) {
		static const char *const admin_row[DATABASE_NCOLS] = {
			ADMIN_DB, NULL, NULL, ADMIN_DB, ADMIN_DB, "2", "0", "0", NULL,
			"statement", NULL, "0", "0", "0", NULL, "0", "0", "0",
		};
		char port[16];
		char clients[24];
		char life[24];

		memcpy(row, admin_row, sizeof(row));
		snprintf(port, sizeof(port), "%d", cfg->listen_port);
		fmt_u64(clients, sizeof(clients), g_pooler.admin_clients.count);
		snprintf(life, sizeof(life), "%.0f", cfg->server_lifetime);
		row[2] = port;
		row[8] = life;
		row[14] = clients;
		admin_result_row(b, DATABASE_NCOLS, row);
		return;
	}
	snprintf(v[2], 24, "%d", db->port > 0 ? db->port : 5432);
	snprintf(v[5], 24, "%d", db->pool_size >= 0 ? db->pool_size : cfg->default_pool_size);
	snprintf(v[6], 24, "%d", db->min_pool_size >= 0 ? db->min_pool_size : cfg->min_pool_size);
	snprintf(v[7], 24, "%d", db->reserve_pool >= 0 ? db->reserve_pool : cfg->reserve_pool_size);
	snprintf(v[8], 24, "%d",
		 (int)(db->server_lifetime > 0 ? db->server_lifetime : cfg->server_lifetime));
	snprintf(v[11], 24, "%d",
		 db->max_db_connections > 0 ? db->max_db_connections : cfg->max_db_connections);
	fmt_u64(v[12], 24, db_server_count(dr->name));
	snprintf(v[13], 24, "%d", db->max_db_client_connections > 0 ? db->max_db_client_connections :
								      0);
	fmt_u64(v[14], 24, db_client_count(dr->name));
	snprintf(v[15], 24, "%d", st && st->paused ? 1 : 0);
	snprintf(v[16], 24, "%d", st && st->disabled ? 1 : 0);
	util_strlcpy(v[17], v[7], 24);
	for (i = 0; i < DATABASE_NCOLS; i++)
		row[i] = v[i];
	row[0] = dr->name;
	/* A socket directory is not a host: NULL, as PgBouncer shows it. */
	row[1] = db->host && db->host[0] != '/' ? db->host : NULL;
	row[3] = db->dbname ? db->dbname : dr->name;
	row[4] = db->user;
	row[9] = db->pool_mode >= 0 ? cfg_pool_mode_str((enum pool_mode)db->pool_mode) : NULL;
	row[10] = NULL;
	admin_result_row(b, DATABASE_NCOLS, row);
}

static int database_row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct database_row *)a)->name, ((const struct database_row *)b)->name);
}

void admin_show_databases(struct client *c, struct proto_buf *b, const char *arg)
{
	const struct cfg *cfg = g_pooler.cfg;
	size_t npools;
	struct pool **pools = sorted_pools(&npools);
	struct database_row *rows = xcalloc(cfg->ndbs + npools + 1, sizeof(*rows));
	size_t n = 0;
	size_t i;

	(void)c;
	(void)arg;
	rows[n++] = (struct database_row){ ADMIN_DB, NULL };
	for (i = 0; i < cfg->ndbs; i++) {
		if (strcmp(cfg->dbs[i].name, "*") != 0)
			rows[n++] = (struct database_row){ cfg->dbs[i].name, &cfg->dbs[i] };
	}
	/* Databases reached through "*" appear once they have a pool. */
	for (i = 0; i < npools; i++) {
		const struct cfg_db *db = cfg_find_db(cfg, pools[i]->db_name);

		if (db && strcmp(db->name, "*") == 0 &&
		    (i == 0 || strcmp(pools[i - 1]->db_name, pools[i]->db_name) != 0))
			rows[n++] = (struct database_row){ pools[i]->db_name, db };
	}
	qsort(rows, n, sizeof(*rows), database_row_cmp);
	admin_result_columns(b, database_cols, DATABASE_NCOLS);
	for (i = 0; i < n; i++)
		show_database_row(b, &rows[i]);
	admin_result_done(b, "SHOW");
	free(rows);
	free(pools);
}

static void show_user_row(struct proto_buf *b, const char *name)
{
	const struct cfg *cfg = g_pooler.cfg;
	const struct cfg_user *u = cfg_find_user(cfg, name);
	char ps[16] = "", rps[16] = "", maxc[16], curc[24], maxcc[16], curcc[24];
	const char *row[8];
	uint64_t servers = 0;
	uint64_t clients = 0;
	struct pool *p;
	struct pool *tmp;

	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		if (strcmp(p->user_name, name) != 0)
			continue;
		servers += pool_server_total(p);
		clients += p->welcome_clients.count + p->idle_clients.count +
			   p->waiting_clients.count + p->active_clients.count;
	}
	if (strcmp(name, ADMIN_DB) == 0)
		clients += g_pooler.admin_clients.count;
	/* PgBouncer sends these two as text: width 9, or '' when unset. */
	if (u && u->pool_size >= 0)
		snprintf(ps, sizeof(ps), "%9d", u->pool_size);
	if (u && u->reserve_pool_size >= 0)
		snprintf(rps, sizeof(rps), "%9d", u->reserve_pool_size);
	snprintf(maxc, sizeof(maxc), "%d",
		 u && u->max_user_connections > 0 ? u->max_user_connections :
						    cfg->max_user_connections);
	fmt_u64(curc, sizeof(curc), servers);
	snprintf(maxcc, sizeof(maxcc), "%d",
		 u && u->max_user_client_connections > 0 ? u->max_user_client_connections : 0);
	fmt_u64(curcc, sizeof(curcc), clients);
	row[0] = name;
	row[1] = ps;
	row[2] = rps;
	row[3] = u && u->pool_mode >= 0 ? cfg_pool_mode_str((enum pool_mode)u->pool_mode) : NULL;
	row[4] = maxc;
	row[5] = curc;
	row[6] = maxcc;
	row[7] = curcc;
	admin_result_row(b, 8, row);
}

/* Every user with a [users] entry, an auth_file line or a pool, sorted,
 * duplicates removed. Caller frees the array (not the strings). */
static const char **collect_user_names(size_t *count)
{
	const struct cfg *cfg = g_pooler.cfg;
	size_t cap = 1 + cfg->nusers + HASH_COUNT(g_pooler.pools) +
		     (g_pooler.userlist ? HASH_COUNT(g_pooler.userlist->by_user) : 0);
	const char **names = xcalloc(cap, sizeof(*names));
	size_t n = 0;
	size_t out = 0;
	size_t i;
	struct pool *p;
	struct pool *tmp;

	names[n++] = ADMIN_DB;
	for (i = 0; i < cfg->nusers; i++)
		names[n++] = cfg->users[i].name;
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		names[n++] = p->user_name;
	}
	if (g_pooler.userlist) {
		struct cfg_secret *e;
		struct cfg_secret *etmp;

		HASH_ITER(hh, g_pooler.userlist->by_user, e, etmp)
		{
			names[n++] = e->user;
		}
	}
	qsort(names, n, sizeof(*names), str_cmp);
	for (i = 0; i < n; i++) {
		if (out == 0 || strcmp(names[i], names[out - 1]) != 0)
			names[out++] = names[i];
	}
	*count = out;
	return names;
}

void admin_show_users(struct client *c, struct proto_buf *b, const char *arg)
{
	static const struct admin_column cols[] = {
		{ "name", ADMIN_TEXT },
		{ "pool_size", ADMIN_TEXT },
		{ "reserve_pool_size", ADMIN_TEXT },
		{ "pool_mode", ADMIN_TEXT },
		{ "max_user_connections", ADMIN_INT4 },
		{ "current_connections", ADMIN_INT4 },
		{ "max_user_client_connections", ADMIN_INT4 },
		{ "current_client_connections", ADMIN_INT4 },
	};
	size_t n;
	const char **names = collect_user_names(&n);
	size_t i;

	(void)c;
	(void)arg;
	admin_result_columns(b, cols, NCOLS(cols));
	for (i = 0; i < n; i++)
		show_user_row(b, names[i]);
	admin_result_done(b, "SHOW");
	free(names);
}

/* ---- POOLS ---- */

static const struct admin_column pool_cols[] = {
	{ "database", ADMIN_TEXT },
	{ "user", ADMIN_TEXT },
	{ "cl_active", ADMIN_INT4 },
	{ "cl_waiting", ADMIN_INT4 },
	{ "cl_active_cancel_req", ADMIN_INT4 },
	{ "cl_waiting_cancel_req", ADMIN_INT4 },
	{ "sv_active", ADMIN_INT4 },
	{ "sv_active_cancel", ADMIN_INT4 },
	{ "sv_being_canceled", ADMIN_INT4 },
	{ "sv_idle", ADMIN_INT4 },
	{ "sv_used", ADMIN_INT4 },
	{ "sv_tested", ADMIN_INT4 },
	{ "sv_login", ADMIN_INT4 },
	{ "maxwait", ADMIN_INT4 },
	{ "maxwait_us", ADMIN_INT4 },
	{ "pool_mode", ADMIN_TEXT },
	{ "load_balance_hosts", ADMIN_TEXT },
};
#define POOL_NCOLS NCOLS(pool_cols)

static void show_pool_row(struct proto_buf *b, const struct pool *p, uint64_t now)
{
	char v[POOL_NCOLS][24];
	const char *row[POOL_NCOLS];
	uint64_t maxwait = 0;
	uint32_t tested;
	uint32_t canceling;
	struct list_node *first;
	size_t i;

	if (!p) {
		/* The console's own row. */
		memset(v, 0, sizeof(v));
		for (i = 0; i < POOL_NCOLS; i++) {
			util_strlcpy(v[i], "0", 24);
			row[i] = v[i];
		}
		fmt_u64(v[2], 24, g_pooler.admin_clients.count);
		row[0] = ADMIN_DB;
		row[1] = ADMIN_DB;
		row[15] = "statement";
		row[16] = NULL;
		admin_result_row(b, POOL_NCOLS, row);
		return;
	}
	first = list_first(&p->waiting_clients);
	if (first) {
		const struct client *w = container_of(first, struct client, node);

		maxwait = now - (w->request_time_us ? w->request_time_us : w->wait_start_us);
	}
	fmt_u64(v[2], 24, p->idle_clients.count + p->active_clients.count);
	fmt_u64(v[3], 24, p->waiting_clients.count + p->welcome_clients.count);
	tested = pool_count_in_state(p, SERVER_RESETTING);
	canceling = pool_count_in_state(p, SERVER_CANCELING);
	fmt_u64(v[4], 24, p->cancel_requesters);
	fmt_u64(v[5], 24, 0);
	fmt_u64(v[6], 24, p->active_servers.count - tested - canceling);
	fmt_u64(v[7], 24, p->cancel_conns);
	fmt_u64(v[8], 24, canceling);
	fmt_u64(v[9], 24, p->idle_servers.count);
	fmt_u64(v[10], 24, 0);
	fmt_u64(v[11], 24, tested);
	fmt_u64(v[12], 24, p->login_servers.count);
	fmt_u64(v[13], 24, maxwait / 1000000u);
	fmt_u64(v[14], 24, maxwait % 1000000u);
	for (i = 0; i < POOL_NCOLS; i++)
		row[i] = v[i];
	row[0] = p->db_name;
	row[1] = p->user_name;
	row[15] = cfg_pool_mode_str(p->mode);
	row[16] = NULL;
	admin_result_row(b, POOL_NCOLS, row);
}

void admin_show_pools(struct client *c, struct proto_buf *b, const char *arg)
{
	uint64_t now = util_now_us();
	size_t n;
	struct pool **pools = sorted_pools(&n);
	bool admin_done = false;
	size_t i;

	(void)c;
	(void)arg;
	admin_result_columns(b, pool_cols, POOL_NCOLS);
	for (i = 0; i < n; i++) {
		if (!admin_done && strcmp(pools[i]->db_name, ADMIN_DB) > 0) {
			show_pool_row(b, NULL, now);
			admin_done = true;
		}
		show_pool_row(b, pools[i], now);
	}
	if (!admin_done)
		show_pool_row(b, NULL, now);
	admin_result_done(b, "SHOW");
	free(pools);
}

/* ---- CLIENTS, SERVERS ---- */

static const struct admin_column sock_cols[] = {
	{ "type", ADMIN_TEXT },
	{ "user", ADMIN_TEXT },
	{ "database", ADMIN_TEXT },
	{ "replication", ADMIN_TEXT },
	{ "state", ADMIN_TEXT },
	{ "addr", ADMIN_TEXT },
	{ "port", ADMIN_INT4 },
	{ "local_addr", ADMIN_TEXT },
	{ "local_port", ADMIN_INT4 },
	{ "connect_time", ADMIN_TEXT },
	{ "request_time", ADMIN_TEXT },
	{ "wait", ADMIN_INT4 },
	{ "wait_us", ADMIN_INT4 },
	{ "close_needed", ADMIN_INT4 },
	{ "ptr", ADMIN_TEXT },
	{ "link", ADMIN_TEXT },
	{ "remote_pid", ADMIN_INT4 },
	{ "tls", ADMIN_TEXT },
	{ "application_name", ADMIN_TEXT },
	{ "prepared_statements", ADMIN_INT4 },
	{ "id", ADMIN_INT4 },
};
#define SOCK_NCOLS NCOLS(sock_cols)

struct sock_row {
	const char *type, *user, *database, *state;
	char addr[64], port[16], laddr[64], lport[16];
	char ctime[48], rtime[48], wait[24], wait_us[24];
	const char *close_needed;
	char ptr[32], link[32], pid[16];
	const char *app;
	char id[24];
	char tls[96];
	char prepared[16]; /* named statements (protocol and SQL level): the client's, or the server's */
};

static void sock_row_emit(struct proto_buf *b, const struct sock_row *r)
{
	const char *v[SOCK_NCOLS] = {
		r->type,    r->user,	     r->database, "none",  r->state, r->addr, r->port,
		r->laddr,   r->lport,	     r->ctime,	  r->rtime, r->wait,  r->wait_us,
		r->close_needed, r->ptr,     r->link,	  r->pid,   r->tls,   r->app,
		r->prepared, r->id,
	};

	admin_result_row(b, SOCK_NCOLS, v);
}

/* PgBouncer 1.25: a logged-in client without a server is "idle". */
static const char *client_state_pgb(const struct client *c)
{
	switch (c->state) {
	case CLIENT_WELCOME:
	case CLIENT_WAITING:
		return "waiting";
	case CLIENT_ACTIVE:
		return "active";
	case CLIENT_IDLE:
	case CLIENT_ADMIN:
		return "idle";
	case CLIENT_LOGIN:
		return "login";
	case CLIENT_CLOSED:
		break;
	}
	return "justfree";
}

static void show_client(struct proto_buf *b, struct client *c, uint64_t now)
{
	struct sock_row r;
	int port;
	uint64_t wait = 0;

	/* As PgBouncer: "wait" is the age of the request in progress. */
	if (c->state == CLIENT_WAITING || c->state == CLIENT_ACTIVE)
		wait = now - (c->request_time_us ? c->request_time_us : c->wait_start_us);
	memset(&r, 0, sizeof(r));
	r.type = "C";
	r.user = c->user ? c->user : "(nouser)";
	r.database = c->pool ? c->pool->db_name : (c->state == CLIENT_ADMIN ? ADMIN_DB : "(nodb)");
	r.state = client_state_pgb(c);
	client_peer_addr(c, r.addr, sizeof(r.addr), &port);
	snprintf(r.port, sizeof(r.port), "%d", port ? port : g_pooler.cfg->listen_port);
	conn_local_addr(&c->conn, r.laddr, sizeof(r.laddr), &port);
	snprintf(r.lport, sizeof(r.lport), "%d", port ? port : g_pooler.cfg->listen_port);
	fmt_wall(r.ctime, sizeof(r.ctime), c->connect_time_us);
	fmt_wall(r.rtime, sizeof(r.rtime),
		 c->request_time_us ? mono_to_wall(c->request_time_us) : c->connect_time_us);
	fmt_u64(r.wait, sizeof(r.wait), wait / 1000000u);
	fmt_u64(r.wait_us, sizeof(r.wait_us), wait % 1000000u);
	r.close_needed = "0";
	snprintf(r.ptr, sizeof(r.ptr), "%p", (const void *)c);
	if (c->server)
		snprintf(r.link, sizeof(r.link), "%p", (const void *)c->server);
	util_strlcpy(r.pid, "0", sizeof(r.pid));
	r.app = c->app_name ? c->app_name : "";
	fmt_u64(r.prepared, sizeof(r.prepared), prep_client_count(c) + sqlprep_client_count(c));
	conn_tls_describe(&c->conn, r.tls, sizeof(r.tls));
	fmt_u64(r.id, sizeof(r.id), c->id);
	sock_row_emit(b, &r);
}

static void show_client_list(struct proto_buf *b, struct list *l, uint64_t now)
{
	struct list_node *it;

	for (it = l->head.next; it != &l->head; it = it->next)
		show_client(b, container_of(it, struct client, node), now);
}

/* Per pool in (database, user) order: active and idle, then waiting, as
 * PgBouncer; the console's sessions in the "pgbouncer" pool's place.
 * Clients still logging in are not listed (PgBouncer does not either). */
void admin_show_clients(struct client *c, struct proto_buf *b, const char *arg)
{
	uint64_t now = util_now_us();
	size_t n;
	struct pool **pools = sorted_pools(&n);
	bool admin_done = false;
	size_t i;

	(void)c;
	(void)arg;
	admin_result_columns(b, sock_cols, SOCK_NCOLS);
	for (i = 0; i < n; i++) {
		if (!admin_done && strcmp(pools[i]->db_name, ADMIN_DB) > 0) {
			show_client_list(b, &g_pooler.admin_clients, now);
			admin_done = true;
		}
		show_client_list(b, &pools[i]->active_clients, now);
		show_client_list(b, &pools[i]->idle_clients, now);
		show_client_list(b, &pools[i]->waiting_clients, now);
		show_client_list(b, &pools[i]->welcome_clients, now);
	}
	if (!admin_done)
		show_client_list(b, &g_pooler.admin_clients, now);
	admin_result_done(b, "SHOW");
	free(pools);
}

static const char *server_state_pgb(const struct server *s)
{
	switch (s->state) {
	case SERVER_CONNECTING:
	case SERVER_LOGIN:
		return "new";
	case SERVER_IDLE:
		return "idle";
	case SERVER_ACTIVE:
		return "active";
	case SERVER_RESETTING:
		return "tested";
	case SERVER_CANCELING:
		return "being_canceled";
	case SERVER_CLOSED:
		break;
	}
	return "justfree";
}

static void show_server(struct proto_buf *b, const struct server *s)
{
	struct sock_row r;
	int port;

	memset(&r, 0, sizeof(r));
	r.type = "S";
	r.user = s->pool->user_name;
	r.database = s->pool->db_name;
	r.state = server_state_pgb(s);
	if (s->conn.flags & CONN_F_CONNECTED) {
		conn_peer_addr(&s->conn, r.addr, sizeof(r.addr), &port);
		snprintf(r.port, sizeof(r.port), "%d", port ? port : s->pool->port);
		conn_local_addr(&s->conn, r.laddr, sizeof(r.laddr), &port);
		snprintf(r.lport, sizeof(r.lport), "%d", port);
	} else {
		util_strlcpy(r.addr, "unix", sizeof(r.addr));
		snprintf(r.port, sizeof(r.port), "%d", s->pool->port);
		util_strlcpy(r.laddr, "unix", sizeof(r.laddr));
		util_strlcpy(r.lport, "0", sizeof(r.lport));
	}
	fmt_wall(r.ctime, sizeof(r.ctime), s->connect_time_us);
	fmt_wall(r.rtime, sizeof(r.rtime),
		 s->last_used_us ? mono_to_wall(s->last_used_us) : s->connect_time_us);
	util_strlcpy(r.wait, "0", sizeof(r.wait));
	util_strlcpy(r.wait_us, "0", sizeof(r.wait_us));
	r.close_needed = s->close_needed ? "1" : "0";
	snprintf(r.ptr, sizeof(r.ptr), "%p", (const void *)s);
	if (s->client)
		snprintf(r.link, sizeof(r.link), "%p", (const void *)s->client);
	snprintf(r.pid, sizeof(r.pid), "%u", s->be_pid);
	r.app = s->client && s->client->app_name ? s->client->app_name : "";
	fmt_u64(r.prepared, sizeof(r.prepared), prep_server_count(s) + sqlprep_server_count(s));
	conn_tls_describe(&s->conn, r.tls, sizeof(r.tls));
	fmt_u64(r.id, sizeof(r.id), s->id);
	sock_row_emit(b, &r);
}

static void show_server_list(struct proto_buf *b, const struct list *l, enum server_state only)
{
	const struct list_node *it;

	for (it = l->head.next; it != &l->head; it = it->next) {
		const struct server *s = container_of(it, struct server, node);

		if (s->state == only || (only == SERVER_LOGIN && s->state == SERVER_CONNECTING))
			show_server(b, s);
	}
}

/* Per pool: active, idle, tested (resetting), new (logging in). */
void admin_show_servers(struct client *c, struct proto_buf *b, const char *arg)
{
	size_t n;
	struct pool **pools = sorted_pools(&n);
	size_t i;

	(void)c;
	(void)arg;
	admin_result_columns(b, sock_cols, SOCK_NCOLS);
	for (i = 0; i < n; i++) {
		show_server_list(b, &pools[i]->active_servers, SERVER_ACTIVE);
		show_server_list(b, &pools[i]->idle_servers, SERVER_IDLE);
		show_server_list(b, &pools[i]->active_servers, SERVER_RESETTING);
		show_server_list(b, &pools[i]->login_servers, SERVER_LOGIN);
	}
	admin_result_done(b, "SHOW");
	free(pools);
}

/* ---- STATS ---- */

struct db_stats {
	const char *name;
	struct pool_stats total;
	struct pool_stats delta;
	uint64_t length_us;
};

/* One entry per database in name order: its pools add up. */
static size_t collect_db_stats(struct db_stats **out)
{
	size_t npools;
	struct pool **pools = sorted_pools(&npools);
	struct db_stats *v = xcalloc(npools + 2, sizeof(*v));
	bool admin_done = false;
	size_t n = 0;
	size_t i;

	for (i = 0; i <= npools; i++) {
		struct pool_stats delta;
		uint64_t length;

		/* The console's row, in its place by name, as PgBouncer. */
		if (!admin_done && (i == npools || strcmp(pools[i]->db_name, ADMIN_DB) > 0)) {
			v[n++].name = ADMIN_DB;
			admin_done = true;
		}
		if (i == npools)
			break;
		if (n == 0 || strcmp(v[n - 1].name, pools[i]->db_name) != 0)
			v[n++].name = pools[i]->db_name;
		stats_window(pools[i], &delta, &length);
		stats_add(&v[n - 1].total, &pools[i]->stats);
		stats_add(&v[n - 1].delta, &delta);
		if (length > v[n - 1].length_us)
			v[n - 1].length_us = length;
	}
	free(pools);
	*out = v;
	return n;
}

static void totals_values(const struct pool_stats *t, char v[12][24])
{
	fmt_u64(v[0], 24, t->server_assignments);
	fmt_u64(v[1], 24, t->xact_count);
	fmt_u64(v[2], 24, t->query_count);
	fmt_u64(v[3], 24, t->bytes_received);
	fmt_u64(v[4], 24, t->bytes_sent);
	fmt_u64(v[5], 24, t->xact_time_us);
	fmt_u64(v[6], 24, t->query_time_us);
	fmt_u64(v[7], 24, t->wait_time_us);
	fmt_u64(v[8], 24, t->client_parse_count);
	fmt_u64(v[9], 24, t->server_parse_count);
	fmt_u64(v[10], 24, t->bind_count);
	fmt_u64(v[11], 24, t->client_logins);
}

static void average_values(const struct pool_stats *d, uint64_t length_us, char v[12][24])
{
	struct stats_avg a;

	stats_average(d, length_us, &a);
	fmt_u64(v[0], 24, a.server_assignment_count);
	fmt_u64(v[1], 24, a.xact_count);
	fmt_u64(v[2], 24, a.query_count);
	fmt_u64(v[3], 24, a.recv);
	fmt_u64(v[4], 24, a.sent);
	fmt_u64(v[5], 24, a.xact_time);
	fmt_u64(v[6], 24, a.query_time);
	fmt_u64(v[7], 24, a.wait_time);
	fmt_u64(v[8], 24, a.client_parse_count);
	fmt_u64(v[9], 24, a.server_parse_count);
	fmt_u64(v[10], 24, a.bind_count);
	fmt_u64(v[11], 24, a.client_login_count);
}

/*
 * Column names of the four stats views. PgBouncer 1.25 sends eleven
 * figures (client_login_count is pgmux's own: last, in SHOW STATS only)
 * and names them differently in each view; these are its names.
 */
static const char *const stats_names[] = {
	"total_server_assignment_count", "total_xact_count", "total_query_count",
	"total_received", "total_sent", "total_xact_time", "total_query_time",
	"total_wait_time", "total_client_parse_count", "total_server_parse_count",
	"total_bind_count", "total_client_login_count",
};
static const char *const stats_avg_names[] = {
	"avg_server_assignment_count", "avg_xact_count", "avg_query_count", "avg_recv",
	"avg_sent", "avg_xact_time", "avg_query_time", "avg_wait_time",
	"avg_client_parse_count", "avg_server_parse_count", "avg_bind_count",
	"avg_client_login_count",
};
static const char *const totals_view_names[] = {
	"server_assignment_count", "xact_count", "query_count", "bytes_received",
	"bytes_sent", "xact_time", "query_time", "wait_time", "client_parse_count",
	"server_parse_count", "bind_count",
};
static const char *const averages_view_names[] = {
	"server_assignment_count", "xact_count", "query_count", "bytes_received",
	"bytes_sent", "xact_time", "query_time", "wait_time", "avg_client_parse_count",
	"avg_server_parse_count", "avg_bind_count",
};

enum stats_view { STATS_BOTH, STATS_TOTALS_ONLY, STATS_AVERAGES_ONLY };

static void show_stats(struct proto_buf *b, enum stats_view view)
{
	struct admin_column cols[32];
	struct db_stats *dbs;
	size_t ndb = collect_db_stats(&dbs);
	size_t n = 0;
	size_t i;

	cols[n++] = (struct admin_column){ "database", ADMIN_TEXT };
	if (view == STATS_BOTH) {
		for (i = 0; i < 12; i++)
			cols[n++] = (struct admin_column){ stats_names[i], ADMIN_NUMERIC };
		for (i = 0; i < 12; i++)
			cols[n++] = (struct admin_column){ stats_avg_names[i], ADMIN_NUMERIC };
		/* Not in 1.25: PgBouncer < 1.8 called total_query_count this,
		 * and the Debian bookworm exporter still reads it. */
		cols[n++] = (struct admin_column){ "total_requests", ADMIN_NUMERIC };
	} else {
		const char *const *names = view == STATS_TOTALS_ONLY ? totals_view_names :
								       averages_view_names;

		for (i = 0; i < 11; i++)
			cols[n++] = (struct admin_column){ names[i], ADMIN_NUMERIC };
	}
	admin_result_columns(b, cols, n);
	for (i = 0; i < ndb; i++) {
		char tv[12][24];
		char av[12][24];
		const char *row[32];
		size_t k = 0;
		size_t j;

		totals_values(&dbs[i].total, tv);
		average_values(&dbs[i].delta, dbs[i].length_us, av);
		row[k++] = dbs[i].name;
		if (view == STATS_BOTH) {
			for (j = 0; j < 12; j++)
				row[k++] = tv[j];
			for (j = 0; j < 12; j++)
				row[k++] = av[j];
			row[k++] = tv[2];
		} else {
			for (j = 0; j < 11; j++)
				row[k++] = view == STATS_TOTALS_ONLY ? tv[j] : av[j];
		}
		admin_result_row(b, k, row);
	}
	free(dbs);
	admin_result_done(b, "SHOW");
}

void admin_show_stats(struct client *c, struct proto_buf *b, const char *arg)
{
	(void)c;
	(void)arg;
	show_stats(b, STATS_BOTH);
}

void admin_show_stats_totals(struct client *c, struct proto_buf *b, const char *arg)
{
	(void)c;
	(void)arg;
	show_stats(b, STATS_TOTALS_ONLY);
}

void admin_show_stats_averages(struct client *c, struct proto_buf *b, const char *arg)
{
	(void)c;
	(void)arg;
	show_stats(b, STATS_AVERAGES_ONLY);
}

/* One name/value list over every pool, with PgBouncer's internal names. */
void admin_show_totals(struct client *c, struct proto_buf *b, const char *arg)
{
	static const struct admin_column cols[] = { { "name", ADMIN_TEXT },
						    { "value", ADMIN_NUMERIC } };
	static const char *const names[] = {
		"server_assignment_count", "xact_count", "query_count", "client_bytes",
		"server_bytes", "xact_time", "query_time", "wait_time", "ps_client_parse_count",
		"ps_server_parse_count", "ps_bind_count",
	};
	struct pool_stats total;
	struct pool_stats delta;
	uint64_t length = 0;
	struct pool *p;
	struct pool *tmp;
	char tv[12][24];
	char av[12][24];
	size_t i;

	(void)c;
	(void)arg;
	memset(&total, 0, sizeof(total));
	memset(&delta, 0, sizeof(delta));
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		struct pool_stats d;
		uint64_t len;

		stats_window(p, &d, &len);
		stats_add(&total, &p->stats);
		stats_add(&delta, &d);
		if (len > length)
			length = len;
	}
	totals_values(&total, tv);
	average_values(&delta, length, av);
	admin_result_columns(b, cols, 2);
	for (i = 0; i < NCOLS(names); i++) {
		char name[48];
		const char *row[2] = { name, tv[i] };

		snprintf(name, sizeof(name), "total_%s", names[i]);
		admin_result_row(b, 2, row);
	}
	for (i = 0; i < NCOLS(names); i++) {
		char name[48];
		const char *row[2] = { name, av[i] };

		snprintf(name, sizeof(name), "avg_%s", names[i]);
		admin_result_row(b, 2, row);
	}
	admin_result_done(b, "SHOW");
}

/* ---- LISTS, MEM ---- */

struct object_counts {
	uint64_t databases, users, pools;
	uint64_t used_clients, login_clients, used_servers;
};

/* The same objects SHOW DATABASES, USERS and POOLS list, console included. */
static void count_objects(struct object_counts *o)
{
	const struct cfg *cfg = g_pooler.cfg;
	size_t npools;
	struct pool **pools = sorted_pools(&npools);
	size_t nusers;
	const char **users = collect_user_names(&nusers);
	size_t i;

	memset(o, 0, sizeof(*o));
	o->databases = 1;
	for (i = 0; i < cfg->ndbs; i++)
		o->databases += strcmp(cfg->dbs[i].name, "*") != 0;
	for (i = 0; i < npools; i++) {
		const struct cfg_db *db = cfg_find_db(cfg, pools[i]->db_name);

		if (db && strcmp(db->name, "*") == 0 &&
		    (i == 0 || strcmp(pools[i - 1]->db_name, pools[i]->db_name) != 0))
			o->databases++;
	}
	o->users = nusers;
	o->pools = npools + 1;
	o->login_clients = g_pooler.login_clients.count;
	o->used_clients = g_pooler.client_count;
	o->used_servers = g_pooler.server_count;
	free(users);
	free(pools);
}

void admin_show_lists(struct client *c, struct proto_buf *b, const char *arg)
{
	static const struct admin_column cols[] = { { "list", ADMIN_TEXT },
						    { "items", ADMIN_INT4 } };
	struct object_counts o;
	const char *names[] = { "databases",	"users",	"peers",	"pools",
				"peer_pools",	"free_clients", "used_clients", "login_clients",
				"free_servers", "used_servers", "dns_names",	"dns_zones",
				"dns_queries",	"dns_pending" };
	uint64_t vals[NCOLS(names)];
	size_t i;

	(void)c;
	(void)arg;
	count_objects(&o);
	memset(vals, 0, sizeof(vals));
	vals[0] = o.databases;
	vals[1] = o.users;
	vals[3] = o.pools;
	vals[6] = o.used_clients;
	vals[7] = o.login_clients;
	vals[9] = o.used_servers;
	admin_result_columns(b, cols, 2);
	for (i = 0; i < NCOLS(names); i++) {
		char v[24];
		const char *row[2] = { names[i], v };

		fmt_u64(v, sizeof(v), vals[i]);
		admin_result_row(b, 2, row);
	}
	admin_result_done(b, "SHOW");
}

/*
 * PgBouncer's cache names, so tools find the rows they know. pgmux keeps
 * no slabs: objects are allocated one by one, "free" is non-zero only for
 * the iobuf free list, and caches pgmux does not have report zeros.
 */
void admin_show_mem(struct client *c, struct proto_buf *b, const char *arg)
{
	static const struct admin_column cols[] = {
		{ "name", ADMIN_TEXT }, { "size", ADMIN_INT4 },	   { "used", ADMIN_INT4 },
		{ "free", ADMIN_INT4 }, { "memtotal", ADMIN_INT4 },
	};
	struct object_counts o;
	struct iobuf_stats io;
	struct {
		const char *name;
		uint64_t size, used, free;
	} rows[] = {
		{ "user_cache", sizeof(struct cfg_user), 0, 0 },
		{ "credentials_cache", sizeof(struct cfg_secret), 0, 0 },
		{ "db_cache", sizeof(struct cfg_db), 0, 0 },
		{ "peer_cache", 0, 0, 0 },
		{ "peer_pool_cache", 0, 0, 0 },
		{ "pool_cache", sizeof(struct pool), 0, 0 },
		{ "outstanding_request_cache", 0, 0, 0 },
		{ "server_cache", sizeof(struct server), 0, 0 },
		{ "client_cache", sizeof(struct client), 0, 0 },
		{ "iobuf_cache", 0, 0, 0 },
		{ "var_list_cache", 0, 0, 0 },
		{ "server_prepared_statement_cache", sizeof(struct prep_sstmt), 0, 0 },
	};
	size_t i;

	(void)c;
	(void)arg;
	count_objects(&o);
	iobuf_stats(&io);
	rows[0].used = o.users;
	rows[1].used = g_pooler.userlist ? HASH_COUNT(g_pooler.userlist->by_user) : 0;
	rows[2].used = o.databases;
	rows[5].used = o.pools;
	rows[7].used = o.used_servers;
	rows[8].used = o.used_clients;
	rows[9].size = sizeof(struct iobuf) + io.size;
	rows[9].used = io.used;
	rows[9].free = io.free;
	rows[11].used = prep_server_entries();
	admin_result_columns(b, cols, NCOLS(cols));
	for (i = 0; i < NCOLS(rows); i++) {
		char v[4][24];
		const char *row[5] = { rows[i].name, v[0], v[1], v[2], v[3] };

		fmt_u64(v[0], 24, rows[i].size);
		fmt_u64(v[1], 24, rows[i].used);
		fmt_u64(v[2], 24, rows[i].free);
		fmt_u64(v[3], 24, rows[i].size * (rows[i].used + rows[i].free));
		admin_result_row(b, 5, row);
	}
	admin_result_done(b, "SHOW");
}

/* ---- PEERS, DNS: pgmux has no peering and resolves through libuv's
 * getaddrinfo without a cache, so these are empty with the right columns. */

static void show_empty(struct proto_buf *b, const struct admin_column *cols, size_t n)
{
	admin_result_columns(b, cols, n);
	admin_result_done(b, "SHOW");
}

/* Column sets of the views that are always empty in pgmux. */
static const struct admin_column peers_cols[] = {
	{ "peer_id", ADMIN_INT4 }, { "host", ADMIN_TEXT }, { "port", ADMIN_INT4 },
	{ "pool_size", ADMIN_INT4 },
};
static const struct admin_column peer_pools_cols[] = {
	{ "peer_id", ADMIN_INT4 },	       { "cl_active_cancel_req", ADMIN_INT4 },
	{ "cl_waiting_cancel_req", ADMIN_INT4 }, { "sv_active_cancel", ADMIN_INT4 },
	{ "sv_login", ADMIN_INT4 },
};
static const struct admin_column dns_hosts_cols[] = {
	{ "hostname", ADMIN_TEXT }, { "ttl", ADMIN_INT8 }, { "addrs", ADMIN_TEXT },
};
static const struct admin_column dns_zones_cols[] = {
	{ "zonename", ADMIN_TEXT }, { "serial", ADMIN_INT8 }, { "count", ADMIN_INT4 },
};

#define EMPTY_VIEW(fn, cols)                                                              \
	void fn(struct client *c, struct proto_buf *b, const char *arg)                  \
	{                                                                                 \
		(void)c;                                                                  \
		(void)arg;                                                                \
		show_empty(b, cols, NCOLS(cols));                                         \
	}

EMPTY_VIEW(admin_show_peers, peers_cols)
EMPTY_VIEW(admin_show_peer_pools, peer_pools_cols)
EMPTY_VIEW(admin_show_dns_hosts, dns_hosts_cols)
EMPTY_VIEW(admin_show_dns_zones, dns_zones_cols)
