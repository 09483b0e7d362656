/*
 * admin_fds.c: the console views no other pooler has: SHOW FDS (every open
 * descriptor and what it is), SHOW FD_USAGE (the budget against the limit)
 * and SHOW SATURATION (how long each pool ran out of servers and what that
 * cost its clients). All read the registry and pool counters; /proc is read
 * only to count descriptors and the kernel's listen-overflow counter.
 */
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin_show.h"
#include "client.h"
#include "fds.h"
#include "listener.h"
#include "pool.h"
#include "pooler.h"
#include "server.h"
#include "stats.h"
#include "util.h"

static void fmt_u64(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

static void fmt_i64(char *buf, size_t len, int64_t v)
{
	snprintf(buf, len, "%lld", (long long)v);
}

/* ---- SHOW FDS ---- */

static const struct admin_column fds_cols[] = {
	{ "fd", ADMIN_INT4 },	  { "kind", ADMIN_TEXT },     { "state", ADMIN_TEXT },
	{ "user", ADMIN_TEXT },	  { "database", ADMIN_TEXT }, { "addr", ADMIN_TEXT },
	{ "port", ADMIN_INT4 },	  { "age_s", ADMIN_INT8 },
};
#define FDS_NCOLS (sizeof(fds_cols) / sizeof(fds_cols[0]))

struct fds_row {
	char fd[16];
	const char *kind;
	const char *state;
	const char *user;
	const char *database;
	char addr[128];
	char port[16];
	char age[24];
};

static void fds_row_client(struct fds_row *r, struct client *c)
{
	int port;

	r->state = client_state_str(c->state);
	r->user = c->user ? c->user : NULL;
	r->database = c->pool ? c->pool->db_name : (c->state == CLIENT_ADMIN ? "pgmux" : NULL);
	client_peer_addr(c, r->addr, sizeof(r->addr), &port);
	snprintf(r->port, sizeof(r->port), "%d", port);
}

static void fds_row_server(struct fds_row *r, const struct server *s)
{
	r->state = server_state_str(s->state);
	r->user = s->pool->user_name;
	r->database = s->pool->db_name;
	util_strlcpy(r->addr, s->pool->host ? s->pool->host : "unix", sizeof(r->addr));
	snprintf(r->port, sizeof(r->port), "%d", s->pool->port);
}

static void fds_row_listener(struct fds_row *r, const struct listener *l)
{
	r->state = "listening";
	util_strlcpy(r->addr, l->unix_path ? l->unix_path : l->addr, sizeof(r->addr));
	snprintf(r->port, sizeof(r->port), "%d", l->port);
}

static void fds_emit(struct proto_buf *b, const struct fds_row *r)
{
	const char *v[FDS_NCOLS] = { r->fd,	  r->kind, r->state, r->user, r->database,
				     r->addr[0] ? r->addr : NULL,
				     r->port[0] ? r->port : NULL, r->age };

	admin_result_row(b, FDS_NCOLS, v);
}

static void fds_describe(struct fds_row *r, int fd, const struct fds_entry *e, uint64_t now)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->fd, sizeof(r->fd), "%d", fd);
	r->kind = fds_kind_str((enum fds_kind)e->kind);
	fmt_u64(r->age, sizeof(r->age), (now - e->since_us) / 1000000u);
	switch ((enum fds_kind)e->kind) {
	case FDS_CLIENT:
	case FDS_ADMIN:
		/* The registry keeps owners const; the row caches the peer. */
		if (e->owner)
			fds_row_client(r, (struct client *)(uintptr_t)e->owner);
		break;
	case FDS_SERVER:
		if (e->owner)
			fds_row_server(r, e->owner);
		break;
	case FDS_LISTENER:
		if (e->owner)
			fds_row_listener(r, e->owner);
		break;
	case FDS_CANCEL:
		r->state = "cancel request";
		break;
	case FDS_INTERNAL:
		r->state = fds_label(fd);
		break;
	case FDS_FREE:
	case FDS_NKINDS:
		break;
	}
}

/* Descriptors the registry does not know are listed too: that is the bug
 * the view exists to show. */
static void fds_emit_unaccounted(struct proto_buf *b)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int self;

	if (!d)
		return;
	self = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		struct fds_row r;
		char path[64];
		char target[128];
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		if (fd == self || fds_get(fd))
			continue;
		memset(&r, 0, sizeof(r));
		snprintf(r.fd, sizeof(r.fd), "%d", fd);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		r.kind = "unaccounted";
		r.state = target;
		util_strlcpy(r.age, "0", sizeof(r.age));
		fds_emit(b, &r);
	}
	closedir(d);
}

void admin_show_fds(struct client *c, struct proto_buf *b, const char *arg)
{
	uint64_t now = util_now_us();
	size_t fd;

	(void)c;
	(void)arg;
	admin_result_columns(b, fds_cols, FDS_NCOLS);
	for (fd = 0; fd < fds_capacity(); fd++) {
		const struct fds_entry *e = fds_get((int)fd);
		struct fds_row r;

		if (!e)
			continue;
		fds_describe(&r, (int)fd, e, now);
		fds_emit(b, &r);
	}
	fds_emit_unaccounted(b);
	admin_result_done(b, "SHOW");
}

/* ---- SHOW FD_USAGE ---- */

/* Connections waiting in the accept queues of the TCP listeners. */
static uint64_t fd_usage_accept_backlog(void)
{
	struct list_node *it;
	uint64_t n = 0;

	for (it = g_pooler.listeners.head.next; it != &g_pooler.listeners.head; it = it->next) {
		struct listener *l = container_of(it, struct listener, node);
		struct tcp_info ti;
		socklen_t len = sizeof(ti);
		uv_os_fd_t fd;

		if (l->is_unix || uv_fileno(&l->h.handle, &fd) != 0)
			continue;
		/* For a listening socket the kernel reports the accept queue
		 * length in tcpi_unacked. */
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
			n += ti.tcpi_unacked;
	}
	return n;
}

/* The kernel's TcpExt ListenOverflows: host-wide, monotonic. */
static uint64_t fd_usage_listen_overflows(void)
{
	FILE *f = fopen("/proc/net/netstat", "re");
	char names[4096];
	char values[4096];
	uint64_t result = 0;

	if (!f)
		return 0;
	while (fgets(names, sizeof(names), f) && fgets(values, sizeof(values), f)) {
		char *ns = NULL;
		char *vs = NULL;
		char *n;
		char *v;

		if (strncmp(names, "TcpExt:", 7) != 0)
			continue;
		n = strtok_r(names, " \n", &ns);
		v = strtok_r(values, " \n", &vs);
		while (n && v) {
			if (strcmp(n, "ListenOverflows") == 0) {
				result = strtoull(v, NULL, 10);
				break;
			}
			n = strtok_r(NULL, " \n", &ns);
			v = strtok_r(NULL, " \n", &vs);
		}
		break;
	}
	fclose(f);
	return result;
}

/* The most server connections the configuration allows at once. */
static uint64_t fd_usage_server_budget(void)
{
	const struct cfg *cfg = g_pooler.cfg;
	uint64_t from_cfg = 0;
	uint64_t from_pools = 0;
	struct pool *p;
	struct pool *tmp;
	size_t i;

	for (i = 0; i < cfg->ndbs; i++) {
		if (strcmp(cfg->dbs[i].name, "*") == 0)
			continue;
		from_cfg += (uint64_t)(cfg->dbs[i].pool_size >= 0 ? cfg->dbs[i].pool_size :
								   cfg->default_pool_size);
	}
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		from_pools += (uint64_t)p->pool_size;
	}
	return from_cfg > from_pools ? from_cfg : from_pools;
}

void admin_fd_usage(struct admin_fd_usage *u)
{
	struct fds_limits lim;
	uint64_t fixed;
	int open_now = fds_count_open();

	fds_limits(&lim);
	u->limit_soft = lim.soft;
	u->limit_hard = lim.hard;
	u->open = open_now < 0 ? 0 : (uint64_t)open_now;
	u->listeners = fds_count(FDS_LISTENER);
	u->clients = fds_count(FDS_CLIENT);
	u->servers = fds_count(FDS_SERVER);
	u->admin = fds_count(FDS_ADMIN);
	u->cancel = fds_count(FDS_CANCEL);
	u->internal = fds_count(FDS_INTERNAL);
	u->unaccounted = (int64_t)u->open - (int64_t)fds_tracked();
	u->reserved = FDS_RESERVED;
	fixed = u->listeners + u->internal + u->admin + u->cancel + fd_usage_server_budget() +
		u->reserved;
	u->max_clients_possible = lim.soft > fixed ? lim.soft - fixed : 0;
	u->headroom = u->max_clients_possible > u->clients ? u->max_clients_possible - u->clients : 0;
	if (g_pooler.cfg->max_client_conn > 0) {
		uint64_t by_cfg = (uint64_t)g_pooler.cfg->max_client_conn > g_pooler.client_count ?
					  (uint64_t)g_pooler.cfg->max_client_conn - g_pooler.client_count :
					  0;

		if (by_cfg < u->headroom)
			u->headroom = by_cfg;
	}
	u->emfile_count = g_fds_counters.emfile;
	u->refused_count = g_fds_counters.refused;
	u->accept_backlog = fd_usage_accept_backlog();
	u->backlog_overflows = fd_usage_listen_overflows();
}

void admin_show_fd_usage(struct client *c, struct proto_buf *b, const char *arg)
{
	static const struct admin_column cols[] = {
		{ "limit_soft", ADMIN_INT8 },	     { "limit_hard", ADMIN_INT8 },
		{ "open", ADMIN_INT8 },		     { "listeners", ADMIN_INT8 },
		{ "clients", ADMIN_INT8 },	     { "servers", ADMIN_INT8 },
		{ "admin", ADMIN_INT8 },	     { "cancel", ADMIN_INT8 },
		{ "internal", ADMIN_INT8 },	     { "unaccounted", ADMIN_INT8 },
		{ "reserved", ADMIN_INT8 },	     { "headroom", ADMIN_INT8 },
		{ "max_clients_possible", ADMIN_INT8 }, { "emfile_count", ADMIN_INT8 },
		{ "refused_count", ADMIN_INT8 },      { "accept_backlog", ADMIN_INT8 },
		{ "backlog_overflows", ADMIN_INT8 },
	};
	enum { N = sizeof(cols) / sizeof(cols[0]) };
	struct admin_fd_usage u;
	char v[N][24];
	const char *row[N];
	size_t i;

	(void)c;
	(void)arg;
	admin_fd_usage(&u);
	fmt_u64(v[0], 24, u.limit_soft);
	fmt_u64(v[1], 24, u.limit_hard);
	fmt_u64(v[2], 24, u.open);
	fmt_u64(v[3], 24, u.listeners);
	fmt_u64(v[4], 24, u.clients);
	fmt_u64(v[5], 24, u.servers);
	fmt_u64(v[6], 24, u.admin);
	fmt_u64(v[7], 24, u.cancel);
	fmt_u64(v[8], 24, u.internal);
	fmt_i64(v[9], 24, u.unaccounted);
	fmt_u64(v[10], 24, u.reserved);
	fmt_u64(v[11], 24, u.headroom);
	fmt_u64(v[12], 24, u.max_clients_possible);
	fmt_u64(v[13], 24, u.emfile_count);
	fmt_u64(v[14], 24, u.refused_count);
	fmt_u64(v[15], 24, u.accept_backlog);
	fmt_u64(v[16], 24, u.backlog_overflows);
	for (i = 0; i < N; i++)
		row[i] = v[i];
	admin_result_columns(b, cols, N);
	admin_result_row(b, N, row);
	admin_result_done(b, "SHOW");
}

/* ---- SHOW SATURATION ---- */

double admin_pool_utilization_pct(struct pool *p)
{
	uint64_t now = util_now_us();
	uint64_t length;
	uint64_t busy;

	if (p->period.length_us > 0)
		return p->period.utilization_pct;
	/* No full period yet: the one in progress. */
	pool_account(p);
	length = now - p->period.start_us;
	busy = p->sat.busy_server_us - p->period.start_busy_us;
	if (length == 0 || p->pool_size <= 0)
		return 0.0;
	return 100.0 * (double)busy / ((double)length * p->pool_size);
}

void admin_show_saturation(struct client *c, struct proto_buf *b, const char *arg)
{
	static const struct admin_column cols[] = {
		{ "database", ADMIN_TEXT },	      { "user", ADMIN_TEXT },
		{ "pool_size", ADMIN_INT4 },	      { "sv_active", ADMIN_INT4 },
		{ "sv_idle", ADMIN_INT4 },	      { "cl_waiting", ADMIN_INT4 },
		{ "cl_waiting_max", ADMIN_INT4 },     { "saturated_s", ADMIN_NUMERIC },
		{ "utilization_pct", ADMIN_NUMERIC }, { "wait_p50_us", ADMIN_INT8 },
		{ "wait_p99_us", ADMIN_INT8 },	      { "wait_max_us", ADMIN_INT8 },
		{ "query_wait_timeouts", ADMIN_INT8 }, { "rejected", ADMIN_INT8 },
	};
	enum { N = sizeof(cols) / sizeof(cols[0]) };
	struct pool *p;
	struct pool *tmp;

	(void)c;
	(void)arg;
	admin_result_columns(b, cols, N);
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		char v[N][32];
		const char *row[N];
		size_t i;

		pool_account(p);
		snprintf(v[2], 32, "%d", p->pool_size);
		fmt_u64(v[3], 32, p->active_servers.count);
		fmt_u64(v[4], 32, p->idle_servers.count);
		fmt_u64(v[5], 32, p->waiting_clients.count);
		fmt_u64(v[6], 32, p->sat.cl_waiting_max);
		snprintf(v[7], 32, "%.3f", (double)p->sat.saturated_us / 1e6);
		snprintf(v[8], 32, "%.1f", admin_pool_utilization_pct(p));
		fmt_u64(v[9], 32, hist_quantile(&p->sat.wait, 0.50));
		fmt_u64(v[10], 32, hist_quantile(&p->sat.wait, 0.99));
		fmt_u64(v[11], 32, p->sat.wait.max);
		fmt_u64(v[12], 32, p->sat.query_wait_timeouts);
		fmt_u64(v[13], 32, p->sat.rejected);
		for (i = 2; i < N; i++)
			row[i] = v[i];
		row[0] = p->db_name;
		row[1] = p->user_name;
		admin_result_row(b, N, row);
	}
	admin_result_done(b, "SHOW");
}

/*
 * pgmux: session state clients left on servers in transaction/statement
 * mode, per pool, and who did it last: where to look when one client's
 * SET or advisory lock would otherwise have reached another.
 */
void admin_show_session_leaks(struct client *c, struct proto_buf *b, const char *arg)
{
	static const struct admin_column cols[] = {
		{ "database", ADMIN_TEXT },	     { "user", ADMIN_TEXT },
		{ "set", ADMIN_INT8 },		     { "listen", ADMIN_INT8 },
		{ "prepare", ADMIN_INT8 },	     { "temp", ADMIN_INT8 },
		{ "advisory_lock", ADMIN_INT8 },     { "resets", ADMIN_INT8 },
		{ "last_kind", ADMIN_TEXT },	     { "last_client", ADMIN_TEXT },
		{ "last_at", ADMIN_TEXT },
	};
	enum { N = sizeof(cols) / sizeof(cols[0]) };
	struct pool *p;
	struct pool *tmp;

	(void)c;
	(void)arg;
	admin_result_columns(b, cols, N);
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		char v[N][32];
		const char *row[N];
		time_t t = (time_t)(p->leaks.last_at_us / 1000000u);
		struct tm tm;
		size_t i;

		for (i = 0; i < PARAM_LEAK_KINDS; i++)
			fmt_u64(v[2 + i], 32, p->leaks.by_kind[i]);
		fmt_u64(v[7], 32, p->leaks.resets);
		v[10][0] = '\0';
		if (p->leaks.last_at_us && gmtime_r(&t, &tm))
			strftime(v[10], 32, "%Y-%m-%d %H:%M:%S UTC", &tm);
		for (i = 2; i < 8; i++)
			row[i] = v[i];
		row[0] = p->db_name;
		row[1] = p->user_name;
		row[8] = p->leaks.resets ? param_leak_str(p->leaks.last_kind) : "";
		row[9] = p->leaks.last_client;
		row[10] = v[10];
		admin_result_row(b, N, row);
	}
	admin_result_done(b, "SHOW");
}
