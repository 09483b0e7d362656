/*
 * admin.c: admin console sessions: the message loop, command parsing, the
 * dispatch table and the control commands (PAUSE, RESUME, RECONNECT, KILL,
 * KILL_CLIENT, DISABLE, ENABLE, WAIT_CLOSE, RELOAD, SET, SHUTDOWN). SHOW
 * handlers live in admin_show.c and only read. A command that must wait for
 * the pooler (PAUSE, WAIT_CLOSE) parks its session; the loop's check hook
 * calls admin_check_waiting, which answers once the condition holds.
 */
#include "admin.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin_show.h"
#include "client.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "pooler.h"
#include "proto.h"
#include "server.h"
#include "stats.h"
#include "util.h"
#include "version.h"

#define ADMIN_QUERY_MAX 8192

enum admin_wait {
	ADMIN_WAIT_NONE,
	ADMIN_WAIT_PAUSE,      /* until the paused pools have no servers */
	ADMIN_WAIT_CLOSE,      /* until no close_needed server is left */
};

/* Console-only state, hung off struct client while it is a console. */
struct admin_session {
	bool is_admin;        /* admin_users (or the local pgbouncer user); else stats only */
	enum admin_wait wait;
	char *wait_db;        /* NULL: every database */
	const char *wait_tag; /* CommandComplete tag to send when done */
};

typedef void admin_cmd_fn(struct client *c, struct proto_buf *b, const char *arg);

struct admin_cmd {
	const char *name;  /* upper case, words separated by one space */
	bool needs_admin;  /* false: stats_users may run it too */
	admin_cmd_fn *run;
};

static admin_cmd_fn admin_cmd_pause;
static admin_cmd_fn admin_cmd_resume;
static admin_cmd_fn admin_cmd_reconnect;
static admin_cmd_fn admin_cmd_kill;
static admin_cmd_fn admin_cmd_kill_client;
static admin_cmd_fn admin_cmd_disable;
static admin_cmd_fn admin_cmd_enable;
static admin_cmd_fn admin_cmd_wait_close;
static admin_cmd_fn admin_cmd_reload;
static admin_cmd_fn admin_cmd_set;
static admin_cmd_fn admin_cmd_shutdown;
static admin_cmd_fn admin_cmd_suspend;

/* Longest names first where one is a prefix of another (SHOW STATS_*). */
static const struct admin_cmd admin_cmds[] = {
	{ "SHOW HELP", false, admin_show_help },
	{ "SHOW VERSION", false, admin_show_version },
	{ "SHOW CONFIG", false, admin_show_config },
	{ "SHOW DATABASES", false, admin_show_databases },
	{ "SHOW USERS", false, admin_show_users },
	{ "SHOW POOLS", false, admin_show_pools },
	{ "SHOW CLIENTS", false, admin_show_clients },
	{ "SHOW SERVERS", false, admin_show_servers },
	{ "SHOW STATS_TOTALS", false, admin_show_stats_totals },
	{ "SHOW STATS_AVERAGES", false, admin_show_stats_averages },
	{ "SHOW STATS", false, admin_show_stats },
	{ "SHOW TOTALS", false, admin_show_totals },
	{ "SHOW LISTS", false, admin_show_lists },
	{ "SHOW MEM", false, admin_show_mem },
	{ "SHOW STATE", false, admin_show_state },
	{ "SHOW PEERS", false, admin_show_peers },
	{ "SHOW PEER_POOLS", false, admin_show_peer_pools },
	{ "SHOW DNS_HOSTS", false, admin_show_dns_hosts },
	{ "SHOW DNS_ZONES", false, admin_show_dns_zones },
	{ "SHOW FDS", false, admin_show_fds },
	{ "SHOW FD_USAGE", false, admin_show_fd_usage },
	{ "SHOW SATURATION", false, admin_show_saturation },
	{ "SHOW SESSION_LEAKS", false, admin_show_session_leaks },
	{ "PAUSE", true, admin_cmd_pause },
	{ "RESUME", true, admin_cmd_resume },
	{ "RECONNECT", true, admin_cmd_reconnect },
	{ "KILL_CLIENT", true, admin_cmd_kill_client },
	{ "KILL", true, admin_cmd_kill },
	{ "DISABLE", true, admin_cmd_disable },
	{ "ENABLE", true, admin_cmd_enable },
	{ "WAIT_CLOSE", true, admin_cmd_wait_close },
	{ "RELOAD", true, admin_cmd_reload },
	{ "SET", true, admin_cmd_set },
	{ "SHUTDOWN", true, admin_cmd_shutdown },
	{ "SUSPEND", true, admin_cmd_suspend },
};

/* ---- lifecycle ---- */

int admin_start(void)
{
	stats_start();
	return metrics_start();
}

void admin_stop(void)
{
	stats_stop();
	metrics_stop();
}

void admin_build_welcome(struct proto_buf *b)
{
	proto_build_parameter_status(b, "server_version", PGMUX_VERSION "/pgmux");
	proto_build_parameter_status(b, "server_encoding", "UTF8");
	proto_build_parameter_status(b, "client_encoding", "UTF8");
	proto_build_parameter_status(b, "DateStyle", "ISO");
	proto_build_parameter_status(b, "TimeZone", "UTC");
	proto_build_parameter_status(b, "standard_conforming_strings", "on");
	proto_build_parameter_status(b, "integer_datetimes", "on");
	proto_build_parameter_status(b, "is_superuser", "off");
	proto_build_parameter_status(b, "application_name", "");
}

bool admin_user_allowed(const char *user, bool *is_admin)
{
	const struct cfg *cfg = g_pooler.cfg;

	*is_admin = cfg_list_contains(cfg->admin_users, user);
	if (*is_admin || cfg_list_contains(cfg->stats_users, user))
		return true;
	/* As PgBouncer: with auth_type any, everyone may look. */
	return cfg->auth_type == CFG_AUTH_ANY;
}

void admin_session_start(struct client *c, bool is_admin)
{
	c->admin = xcalloc(1, sizeof(*c->admin));
	c->admin->is_admin = is_admin;
	log_info("C-%u: console session for user \"%s\" (%s)", c->id, c->user,
		 is_admin ? "admin" : "stats only");
}

static void admin_clear_wait(struct admin_session *as)
{
	if (as->wait != ADMIN_WAIT_NONE)
		g_pooler.admin_waiting--;
	as->wait = ADMIN_WAIT_NONE;
	free(as->wait_db);
	as->wait_db = NULL;
}

void admin_session_end(struct client *c)
{
	if (!c->admin)
		return;
	admin_clear_wait(c->admin);
	free(c->admin);
	c->admin = NULL;
}

static void admin_park(struct client *c, enum admin_wait w, const char *db, const char *tag)
{
	struct admin_session *as = c->admin;

	as->wait = w;
	as->wait_db = db ? xstrdup(db) : NULL;
	as->wait_tag = tag;
	g_pooler.admin_waiting++;
}

/* ---- arguments ---- */

/* The database argument: NULL for none; quotes removed. Written into buf. */
static const char *admin_db_arg(const char *arg, char *buf, size_t len)
{
	size_t n;

	while (isspace((unsigned char)*arg))
		arg++;
	if (!*arg)
		return NULL;
	util_strlcpy(buf, arg, len);
	n = strlen(buf);
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		buf[--n] = '\0';
	if (n >= 2 && buf[0] == '"' && buf[n - 1] == '"') {
		memmove(buf, buf + 1, n - 2);
		buf[n - 2] = '\0';
	}
	return buf;
}

static bool admin_db_known(const char *db)
{
	struct pool *p;
	struct pool *tmp;

	if (cfg_find_db(g_pooler.cfg, db))
		return true;
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		if (strcmp(p->db_name, db) == 0)
			return true;
	}
	return false;
}

/* ---- control commands ---- */

static bool admin_require_db(struct proto_buf *b, const char *db)
{
	if (db && !admin_db_known(db)) {
		admin_result_error(b, "08P01", "no such database: %s", db);
		return false;
	}
	return true;
}

static void admin_cmd_pause(struct client *c, struct proto_buf *b, const char *arg)
{
	char buf[256];
	const char *db = admin_db_arg(arg, buf, sizeof(buf));

	if (!admin_require_db(b, db))
		return;
	if (g_pooler.paused) {
		admin_result_error(b, "08P01", "already suspended/paused");
		return;
	}
	log_info("C-%u: PAUSE %s", c->id, db ? db : "(all)");
	pool_set_paused(db, true);
	/* The reply waits until every server of those pools has gone. */
	admin_park(c, ADMIN_WAIT_PAUSE, db, "PAUSE");
}

static void admin_cmd_resume(struct client *c, struct proto_buf *b, const char *arg)
{
	char buf[256];
	const char *db = admin_db_arg(arg, buf, sizeof(buf));

	if (!admin_require_db(b, db))
		return;
	if (!db && g_pooler.run_state != POOLER_RUNNING) {
		admin_result_error(b, "08P01", "pooler is shutting down");
		return;
	}
	if (!db && !g_pooler.paused) {
		admin_result_error(b, "08P01", "pooler is not paused/suspended");
		return;
	}
	if (db && !pool_db_state(db, false)) {
		admin_result_error(b, "08P01", "database %s is not paused", db);
		return;
	}
	if (db && !pool_db_state(db, false)->paused) {
		admin_result_error(b, "08P01", "database %s is not paused", db);
		return;
	}
	log_info("C-%u: RESUME %s", c->id, db ? db : "(all)");
	if (!db)
		pool_set_paused(NULL, false);
	else
		pool_set_paused(db, false);
	admin_result_done(b, "RESUME");
}

static void admin_cmd_reconnect(struct client *c, struct proto_buf *b, const char *arg)
{
	char buf[256];
	const char *db = admin_db_arg(arg, buf, sizeof(buf));

	if (!admin_require_db(b, db))
		return;
	log_info("C-%u: RECONNECT %s", c->id, db ? db : "(all)");
	pool_reconnect(db);
	admin_result_done(b, "RECONNECT");
}

static void admin_cmd_kill(struct client *c, struct proto_buf *b, const char *arg)
{
	char buf[256];
	const char *db = admin_db_arg(arg, buf, sizeof(buf));

	if (g_pooler.paused) {
		admin_result_error(b, "08P01", "already suspended/paused");
		return;
	}
	if (!admin_require_db(b, db))
		return;
	log_info("C-%u: KILL %s", c->id, db ? db : "(all)");
	/* As PgBouncer: a killed database stays paused until RESUME <db>. */
	if (db) {
		pool_set_paused(db, true);
	} else {
		struct pool *p;
		struct pool *tmp;

		HASH_ITER(hh, g_pooler.pools, p, tmp)
		{
			pool_db_state(p->db_name, true)->paused = true;
		}
	}
	pool_kill(db);
	admin_result_done(b, "KILL");
}

static struct client *admin_find_client_in(struct list *l, uint32_t id)
{
	struct list_node *it;

	for (it = l->head.next; it != &l->head; it = it->next) {
		struct client *c = container_of(it, struct client, node);

		if (c->id == id)
			return c;
	}
	return NULL;
}

static struct client *admin_find_client(uint32_t id)
{
	struct client *c = admin_find_client_in(&g_pooler.login_clients, id);
	struct pool *p;
	struct pool *tmp;

	if (!c)
		c = admin_find_client_in(&g_pooler.admin_clients, id);
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		if (c)
			break;
		c = admin_find_client_in(&p->welcome_clients, id);
		if (!c)
			c = admin_find_client_in(&p->idle_clients, id);
		if (!c)
			c = admin_find_client_in(&p->waiting_clients, id);
		if (!c)
			c = admin_find_client_in(&p->active_clients, id);
	}
	return c;
}

static void admin_cmd_kill_client(struct client *c, struct proto_buf *b, const char *arg)
{
	char *end;
	unsigned long id;
	struct client *victim;

	while (isspace((unsigned char)*arg))
		arg++;
	id = strtoul(arg, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	if (end == arg || *end || id > UINT32_MAX) {
		admin_result_error(b, "08P01", "invalid client pointer supplied");
		return;
	}
	victim = admin_find_client((uint32_t)id);
	if (!victim) {
		admin_result_error(b, "08P01", "client not found");
		return;
	}
	log_info("C-%u: KILL_CLIENT %lu", c->id, id);
	if (victim == c) {
		admin_result_done(b, "KILL_CLIENT");
		client_close(c, "killed by its own KILL_CLIENT");
		return;
	}
	client_fatal(victim, "08P01", "admin forced disconnect");
	admin_result_done(b, "KILL_CLIENT");
}

/* DISABLE db / ENABLE db: refuse or accept new logins to a database. */
static void admin_set_disabled(struct client *c, struct proto_buf *b, const char *arg,
			       bool disabled)
{
	const char *tag = disabled ? "DISABLE" : "ENABLE";
	char buf[256];
	const char *db = admin_db_arg(arg, buf, sizeof(buf));

	if (!db) {
		admin_result_error(b, "08P01", "a database is required");
		return;
	}
	if (!admin_require_db(b, db))
		return;
	log_info("C-%u: %s %s", c->id, tag, db);
	pool_set_disabled(db, disabled);
	admin_result_done(b, tag);
}

static void admin_cmd_disable(struct client *c, struct proto_buf *b, const char *arg)
{
	admin_set_disabled(c, b, arg, true);
}

static void admin_cmd_enable(struct client *c, struct proto_buf *b, const char *arg)
{
	admin_set_disabled(c, b, arg, false);
}

static void admin_cmd_wait_close(struct client *c, struct proto_buf *b, const char *arg)
{
	char buf[256];
	const char *db = admin_db_arg(arg, buf, sizeof(buf));

	if (!admin_require_db(b, db))
		return;
	admin_park(c, ADMIN_WAIT_CLOSE, db, "WAIT_CLOSE");
}

static void admin_cmd_reload(struct client *c, struct proto_buf *b, const char *arg)
{
	char err[512];

	(void)arg;
	log_info("C-%u: RELOAD from the console", c->id);
	if (arg[0]) {
		admin_result_error(b, "08P01", "invalid command 'RELOAD %s', use SHOW HELP;", arg);
		return;
	}
	if (pooler_reload(err, sizeof(err)) < 0) {
		log_error("RELOAD failed: %s", err);
		admin_result_error(b, "F0000", "RELOAD failed, see logs for additional details");
		return;
	}
	admin_result_done(b, "RELOAD");
}

/* SET key = value, or SET key TO value; the value may be quoted. */
static void admin_cmd_set(struct client *c, struct proto_buf *b, const char *arg)
{
	char key[128];
	char value[1024];
	char err[256];
	size_t n = 0;
	size_t vlen;

	while (isspace((unsigned char)*arg))
		arg++;
	while (*arg && !isspace((unsigned char)*arg) && *arg != '=' && n + 1 < sizeof(key))
		key[n++] = (char)tolower((unsigned char)*arg++);
	key[n] = '\0';
	while (isspace((unsigned char)*arg))
		arg++;
	if (*arg == '=')
		arg++;
	else if (strncasecmp(arg, "TO", 2) == 0 && isspace((unsigned char)arg[2]))
		arg += 2;
	else
		n = 0;
	while (isspace((unsigned char)*arg))
		arg++;
	util_strlcpy(value, arg, sizeof(value));
	vlen = strlen(value);
	while (vlen > 0 && isspace((unsigned char)value[vlen - 1]))
		value[--vlen] = '\0';
	if (vlen >= 2 && value[0] == '\'' && value[vlen - 1] == '\'') {
		memmove(value, value + 1, vlen - 2);
		value[vlen - 2] = '\0';
	}
	if (n == 0) {
		admin_result_error(b, "08P01", "bad arguments");
		return;
	}
	if (cfg_set(g_pooler.cfg, key, value, err, sizeof(err)) < 0) {
		/* PgBouncer says only "SET failed"; the reason helps. */
		admin_result_error(b, "08P01", "SET failed: %s", err);
		return;
	}
	log_info("C-%u: SET %s = '%s'", c->id, key, value);
	pool_apply_config();
	{
		char tag[1200];

		snprintf(tag, sizeof(tag), "SET %s=%s", key, value);
		admin_result_done(b, tag);
	}
}

static void admin_cmd_shutdown(struct client *c, struct proto_buf *b, const char *arg)
{
	char buf[64];
	const char *mode = admin_db_arg(arg, buf, sizeof(buf));

	log_info("C-%u: SHUTDOWN%s%s from the console", c->id, mode ? " " : "", mode ? mode : "");
	if (!mode) {
		pooler_shutdown(false);
		return;
	}
	if (strcasecmp(mode, "WAIT_FOR_CLIENTS") == 0) {
		admin_result_done(b, "SHUTDOWN");
		pooler_shutdown(true);
		return;
	}
	if (strcasecmp(mode, "WAIT_FOR_SERVERS") == 0) {
		admin_result_done(b, "SHUTDOWN");
		pooler_shutdown_wait_servers();
		return;
	}
	admin_result_error(b, "08P01", "invalid command 'SHUTDOWN %s', use SHOW HELP;", mode);
}

static void admin_cmd_suspend(struct client *c, struct proto_buf *b, const char *arg)
{
	(void)c;
	(void)arg;
	/* SUSPEND exists for online restart (socket hand-over), which pgmux
	 * does not do; PAUSE is the way to quiesce servers. */
	admin_result_error(b, "08P01", "SUSPEND is not supported by pgmux (no online restart); use PAUSE");
}

/* ---- waiting commands ---- */

static bool admin_wait_done(const struct admin_session *as)
{
	switch (as->wait) {
	case ADMIN_WAIT_PAUSE:
		return pool_count_servers(as->wait_db, false) == 0;
	case ADMIN_WAIT_CLOSE:
		return pool_count_servers(as->wait_db, true) == 0;
	case ADMIN_WAIT_NONE:
		break;
	}
	return true;
}

static void admin_finish_wait(struct client *c)
{
	struct proto_buf b;
	const char *tag = c->admin->wait_tag;

	admin_clear_wait(c->admin);
	proto_buf_init(&b, 4096);
	admin_result_done(&b, tag);
	proto_build_ready_for_query(&b, PROTO_TX_IDLE);
	if (conn_send_buf(&c->conn, &b) < 0) {
		proto_buf_free(&b);
		client_close(c, "could not send console result");
		return;
	}
	proto_buf_free(&b);
	/* Commands typed while this one waited run now. */
	(void)admin_on_data(c);
}

void admin_check_waiting(void)
{
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(&g_pooler.admin_clients, it, tmp)
	{
		struct client *c = container_of(it, struct client, node);

		if (c->admin && c->admin->wait != ADMIN_WAIT_NONE && admin_wait_done(c->admin))
			admin_finish_wait(c);
	}
}

/* ---- parsing and the message loop ---- */

/*
 * Trims, drops one trailing ';', and folds runs of white space to one space,
 * keeping case (database names are case-sensitive). False if too long.
 */
static bool admin_normalise(const char *in, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	bool space = false;
	size_t i;

	/* As PgBouncer: white space, at most one ';', white space. */
	while (len > 0 && isspace((unsigned char)in[len - 1]))
		len--;
	if (len > 0 && in[len - 1] == ';')
		len--;
	while (len > 0 && isspace((unsigned char)in[len - 1]))
		len--;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (isspace(ch)) {
			space = o > 0;
			continue;
		}
		if (o + 2 >= outlen)
			return false;
		if (space)
			out[o++] = ' ';
		space = false;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return true;
}

static const struct admin_cmd *admin_find(const char *cmd, const char **arg)
{
	size_t i;

	for (i = 0; i < sizeof(admin_cmds) / sizeof(admin_cmds[0]); i++) {
		size_t n = strlen(admin_cmds[i].name);

		if (strncasecmp(cmd, admin_cmds[i].name, n) == 0 &&
		    (cmd[n] == '\0' || cmd[n] == ' ')) {
			*arg = cmd[n] ? cmd + n + 1 : cmd + n;
			return &admin_cmds[i];
		}
	}
	return NULL;
}

void admin_list_commands(struct proto_buf *b)
{
	size_t i;

	for (i = 0; i < sizeof(admin_cmds) / sizeof(admin_cmds[0]); i++)
		admin_result_notice(b, "\t%s", admin_cmds[i].name);
}

/*
 * PgBouncer answers SHOW/SET of a few session parameters itself so that
 * drivers that probe them on connect keep working.
 */
static const char *const admin_fake_params[][2] = {
	{ "client_encoding", "UTF-8" },	     { "default_transaction_isolation", "read committed" },
	{ "standard_conforming_strings", "on" }, { "datestyle", "ISO" },
	{ "timezone", "GMT" },		     { "extra_float_digits", "2" },
};

static bool admin_fake_param(struct proto_buf *b, const char *cmd)
{
	size_t i;
	bool is_set = strncasecmp(cmd, "SET ", 4) == 0;

	if (!is_set && strncasecmp(cmd, "SHOW ", 5) != 0)
		return false;
	for (i = 0; i < sizeof(admin_fake_params) / sizeof(admin_fake_params[0]); i++) {
		const char *name = admin_fake_params[i][0];
		size_t n = strlen(name);
		const char *rest = cmd + (is_set ? 4 : 5);

		if (strncasecmp(rest, name, n) != 0)
			continue;
		if (is_set && (rest[n] == ' ' || rest[n] == '=')) {
			admin_result_notice(b, "SET ignored");
			admin_result_done(b, "SET");
			return true;
		}
		if (!is_set && rest[n] == '\0') {
			struct admin_column col = { name, ADMIN_TEXT };
			const char *row[] = { admin_fake_params[i][1] };

			admin_result_columns(b, &col, 1);
			admin_result_row(b, 1, row);
			admin_result_done(b, "SHOW");
			return true;
		}
	}
	return false;
}

static bool admin_is_admin(const struct client *c)
{
	return c->admin && c->admin->is_admin;
}

static void admin_run(struct client *c, struct proto_buf *b, const char *sql, size_t len)
{
	char cmd[ADMIN_QUERY_MAX];
	char orig[ADMIN_QUERY_MAX];
	const struct admin_cmd *ac;
	const char *arg = "";

	util_strlcpy(orig, sql, len + 1 < sizeof(orig) ? len + 1 : sizeof(orig));
	if (!admin_normalise(sql, len, cmd, sizeof(cmd))) {
		admin_result_error(b, "08P01", "bad arguments");
		return;
	}
	/* As PgBouncer: SELECT x is SHOW x ("SELECT" is two letters longer). */
	if (strncasecmp(cmd, "SELECT ", 7) == 0) {
		memcpy(cmd + 2, "SHOW", 4);
		memmove(cmd, cmd + 2, strlen(cmd + 2) + 1);
	}
	if (admin_fake_param(b, cmd))
		return;
	ac = admin_find(cmd, &arg);
	if (!ac) {
		admin_result_error(b, "08P01", "invalid command '%.900s', use SHOW HELP;", orig);
		return;
	}
	if (ac->needs_admin && !admin_is_admin(c)) {
		admin_result_error(b, "08P01", "admin access needed");
		return;
	}
	ac->run(c, b, arg);
}

/* Sends b (plus ReadyForQuery unless the command parked the session). */
static enum conn_rc admin_reply(struct client *c, struct proto_buf *b)
{
	if (conn_is_closing(&c->conn)) {
		proto_buf_free(b);
		return CONN_CLOSED;
	}
	if (c->admin->wait != ADMIN_WAIT_NONE && b->len == 0) {
		proto_buf_free(b);
		return CONN_OK;
	}
	proto_build_ready_for_query(b, PROTO_TX_IDLE);
	if (!proto_buf_ok(b)) {
		proto_buf_reset(b);
		admin_result_error(b, "54000", "result too large");
		proto_build_ready_for_query(b, PROTO_TX_IDLE);
	}
	if (conn_send_buf(&c->conn, b) < 0) {
		proto_buf_free(b);
		client_close(c, "could not send console result");
		return CONN_CLOSED;
	}
	proto_buf_free(b);
	return CONN_OK;
}

/*
 * As PgBouncer: anything but a simple Query gets an error and
 * ReadyForQuery, then the session is closed with "bad packet".
 */
static void admin_refuse_packet(struct client *c, uint8_t type)
{
	struct proto_buf b;

	proto_buf_init(&b, 4096);
	if (type == PROTO_FE_PARSE || type == PROTO_FE_BIND || type == PROTO_FE_EXECUTE)
		admin_result_error(&b, "08P01",
				   "extended query protocol not supported by admin console");
	else
		admin_result_error(&b, "08P01", "unsupported packet type for admin console: %d",
				   (int)type);
	proto_build_ready_for_query(&b, PROTO_TX_IDLE);
	(void)conn_send_buf(&c->conn, &b);
	proto_buf_free(&b);
	client_fatal(c, "08P01", "bad packet");
}

enum conn_rc admin_on_data(struct client *c)
{
	while (c->conn.rbuf && iobuf_len(c->conn.rbuf) > 0 && !conn_is_closing(&c->conn)) {
		struct iobuf *rb = c->conn.rbuf;
		struct proto_frame f;
		struct proto_buf b;
		enum proto_frame_rc frc;
		const char *sql;

		if (c->admin->wait != ADMIN_WAIT_NONE)
			return CONN_OK; /* a command is still waiting: hold the rest */
		frc = proto_frame_header(rb->data + rb->start, iobuf_len(rb), PROTO_DIR_FRONTEND,
					 true, &f);
		if (frc == PROTO_FRAME_NEED_MORE)
			return CONN_OK;
		if (frc != PROTO_FRAME_OK || f.total > iobuf_size()) {
			client_fatal(c, "08P01", "invalid message on the admin console");
			return CONN_CLOSED;
		}
		if (iobuf_len(rb) < f.total)
			return CONN_OK;
		if (f.type == PROTO_FE_TERMINATE) {
			client_close(c, "console client sent Terminate");
			return CONN_CLOSED;
		}
		sql = (const char *)rb->data + rb->start + PROTO_HEADER_SIZE;
		rb->start += (uint32_t)f.total;
		if (f.type != PROTO_FE_QUERY) {
			admin_refuse_packet(c, f.type);
			return CONN_CLOSED;
		}
		proto_buf_init(&b, 64u << 20);
		{
			size_t len = f.len - 4;

			/* The query string is NUL-terminated inside the message. */
			if (len == 0 || sql[len - 1] != '\0') {
				proto_buf_free(&b);
				client_fatal(c, "08P01", "malformed Query message");
				return CONN_CLOSED;
			}
			admin_run(c, &b, sql, len - 1);
		}
		if (admin_reply(c, &b) == CONN_CLOSED)
			return CONN_CLOSED;
	}
	return CONN_OK;
}
