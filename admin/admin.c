/*
 * admin.c: admin console sessions: message loop, command parsing and the
 * dispatch table. SHOW handlers only read pooler state; control commands
 * (RELOAD, SHUTDOWN) call the pooler's own entry points.
 */
#include "admin.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "config.h"
#include "log.h"
#include "pool.h"
#include "pooler.h"
#include "proto.h"
#include "proto_build.h"
#include "server.h"
#include "util.h"
#include "version.h"

#define ADMIN_QUERY_MAX 8192

struct admin_cmd {
	const char *name;     /* upper case, words separated by one space */
	bool needs_admin;     /* false: stats_users may run it too */
	void (*run)(struct client *c, struct proto_buf *b, const char *arg);
};

static void admin_show_help(struct client *c, struct proto_buf *b, const char *arg);
static void admin_show_version(struct client *c, struct proto_buf *b, const char *arg);
static void admin_show_pools(struct client *c, struct proto_buf *b, const char *arg);
static void admin_show_config(struct client *c, struct proto_buf *b, const char *arg);
static void admin_reload(struct client *c, struct proto_buf *b, const char *arg);
static void admin_shutdown(struct client *c, struct proto_buf *b, const char *arg);

static const struct admin_cmd admin_cmds[] = {
	{ "SHOW HELP", false, admin_show_help },
	{ "SHOW VERSION", false, admin_show_version },
	{ "SHOW POOLS", false, admin_show_pools },
	{ "SHOW CONFIG", false, admin_show_config },
	{ "RELOAD", true, admin_reload },
	{ "SHUTDOWN", true, admin_shutdown },
};

void admin_welcome(struct client *c)
{
	struct proto_buf b;

	proto_buf_init(&b, 4096);
	proto_build_parameter_status(&b, "server_version", PGMUX_VERSION "/pgmux");
	proto_build_parameter_status(&b, "server_encoding", "UTF8");
	proto_build_parameter_status(&b, "client_encoding", "UTF8");
	proto_build_parameter_status(&b, "DateStyle", "ISO");
	proto_build_parameter_status(&b, "TimeZone", "UTC");
	proto_build_parameter_status(&b, "standard_conforming_strings", "on");
	proto_build_parameter_status(&b, "integer_datetimes", "on");
	proto_build_parameter_status(&b, "is_superuser", "off");
	proto_build_backend_key_data(&b, c->cancel_pid, c->cancel_key);
	proto_build_ready_for_query(&b, PROTO_TX_IDLE);
	if (conn_send_buf(&c->conn, &b) < 0)
		log_debug("C-%u: could not send console welcome", c->id);
	proto_buf_free(&b);
}

/* ---- result set helpers ---- */

static void admin_columns(struct proto_buf *b, size_t n, const char *const *names)
{
	proto_build_row_description(b, n, names, NULL);
}

static void admin_row(struct proto_buf *b, size_t n, const char *const *values)
{
	proto_build_data_row(b, n, values);
}

static void admin_done(struct proto_buf *b, const char *tag)
{
	proto_build_command_complete(b, tag);
}

static void admin_error(struct proto_buf *b, const char *sqlstate, const char *msg)
{
	proto_build_error(b, "ERROR", sqlstate, msg, NULL);
}

/* ---- SHOW ---- */

static void admin_show_help(struct client *c, struct proto_buf *b, const char *arg)
{
	size_t i;

	(void)c;
	(void)arg;
	for (i = 0; i < sizeof(admin_cmds) / sizeof(admin_cmds[0]); i++) {
		char line[128];

		snprintf(line, sizeof(line), "\t%s", admin_cmds[i].name);
		proto_build_notice(b, "NOTICE", "00000", line);
	}
	admin_done(b, "SHOW");
}

static void admin_show_version(struct client *c, struct proto_buf *b, const char *arg)
{
	static const char *const cols[] = { "version" };
	const char *row[] = { "pgmux " PGMUX_VERSION };

	(void)c;
	(void)arg;
	admin_columns(b, 1, cols);
	admin_row(b, 1, row);
	admin_done(b, "SHOW");
}

static void fmt_u64(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

static void admin_show_pools(struct client *c, struct proto_buf *b, const char *arg)
{
	static const char *const cols[] = {
		"database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req",
		"cl_waiting_cancel_req", "sv_active", "sv_active_cancel", "sv_being_canceled",
		"sv_idle", "sv_used", "sv_tested", "sv_login", "maxwait", "maxwait_us",
		"pool_mode", "load_balance_hosts",
	};
	enum { NCOLS = sizeof(cols) / sizeof(cols[0]) };
	struct pool *p;
	struct pool *tmp;
	uint64_t now = util_now_us();

	(void)c;
	(void)arg;
	admin_columns(b, NCOLS, cols);
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		char v[NCOLS][32];
		const char *row[NCOLS];
		uint64_t maxwait = 0;
		struct list_node *first = list_first(&p->waiting_clients);
		size_t i;

		if (first) {
			const struct client *w = container_of(first, struct client, node);

			maxwait = now - w->wait_start_us;
		}
		fmt_u64(v[2], 32, p->idle_clients.count + p->active_clients.count);
		fmt_u64(v[3], 32, p->waiting_clients.count + p->welcome_clients.count);
		fmt_u64(v[4], 32, 0);
		fmt_u64(v[5], 32, 0);
		fmt_u64(v[6], 32, p->active_servers.count);
		fmt_u64(v[7], 32, 0);
		fmt_u64(v[8], 32, 0);
		fmt_u64(v[9], 32, p->idle_servers.count);
		fmt_u64(v[10], 32, 0);
		fmt_u64(v[11], 32, 0);
		fmt_u64(v[12], 32, p->login_servers.count);
		fmt_u64(v[13], 32, maxwait / 1000000);
		fmt_u64(v[14], 32, maxwait % 1000000);
		for (i = 0; i < NCOLS; i++)
			row[i] = v[i];
		row[0] = p->db_name;
		row[1] = p->user_name;
		row[15] = cfg_pool_mode_str(p->mode);
		row[16] = NULL;
		admin_row(b, NCOLS, row);
	}
	admin_done(b, "SHOW");
}

static void admin_show_config(struct client *c, struct proto_buf *b, const char *arg)
{
	static const char *const cols[] = { "key", "value", "default", "changeable" };
	size_t i;

	(void)c;
	(void)arg;
	admin_columns(b, 4, cols);
	for (i = 0; i < cfg_key_count(); i++) {
		struct cfg_key_view kv;
		const char *row[4];

		cfg_key_at(g_pooler.cfg, i, &kv);
		row[0] = kv.key;
		row[1] = kv.value ? kv.value : "";
		row[2] = kv.def ? kv.def : "";
		row[3] = kv.reloadable ? "yes" : "no";
		admin_row(b, 4, row);
	}
	admin_done(b, "SHOW");
}

/* ---- control ---- */

static void admin_reload(struct client *c, struct proto_buf *b, const char *arg)
{
	char err[512];

	(void)arg;
	log_info("C-%u: RELOAD from the console", c->id);
	if (pooler_reload(err, sizeof(err)) < 0) {
		admin_error(b, "F0000", err);
		return;
	}
	admin_done(b, "RELOAD");
}

static void admin_shutdown(struct client *c, struct proto_buf *b, const char *arg)
{
	(void)b;
	log_info("C-%u: SHUTDOWN%s%s from the console", c->id, arg[0] ? " " : "", arg);
	if (strcasecmp(arg, "WAIT_FOR_CLIENTS") == 0) {
		admin_done(b, "SHUTDOWN");
		pooler_shutdown(true);
		return;
	}
	pooler_shutdown(false);
}

/* ---- parsing ---- */

/*
 * Normalises a command: trims, drops a trailing ';', upper-cases and folds
 * runs of white space to one space. Returns false if it does not fit.
 */
static bool admin_normalise(const char *in, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	bool space = false;
	size_t i;

	while (len > 0 && (isspace((unsigned char)in[len - 1]) || in[len - 1] == ';'))
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
		out[o++] = (char)toupper(ch);
	}
	out[o] = '\0';
	return true;
}

static const struct admin_cmd *admin_find(const char *cmd, const char **arg)
{
	size_t i;

	for (i = 0; i < sizeof(admin_cmds) / sizeof(admin_cmds[0]); i++) {
		size_t n = strlen(admin_cmds[i].name);

		if (strncmp(cmd, admin_cmds[i].name, n) == 0 && (cmd[n] == '\0' || cmd[n] == ' ')) {
			*arg = cmd[n] ? cmd + n + 1 : cmd + n;
			return &admin_cmds[i];
		}
	}
	return NULL;
}

static void admin_run(struct client *c, struct proto_buf *b, const char *sql, size_t len)
{
	char cmd[ADMIN_QUERY_MAX];
	const struct admin_cmd *ac;
	const char *arg = "";

	if (!admin_normalise(sql, len, cmd, sizeof(cmd))) {
		admin_error(b, "54000", "command too long");
		return;
	}
	if (cmd[0] == '\0') {
		proto_build_empty_query(b);
		return;
	}
	ac = admin_find(cmd, &arg);
	if (!ac) {
		char msg[256];

		snprintf(msg, sizeof(msg), "unknown command: %.200s (try SHOW HELP)", cmd);
		admin_error(b, "42601", msg);
		return;
	}
	if (ac->needs_admin && !cfg_list_contains(g_pooler.cfg->admin_users, c->user)) {
		admin_error(b, "42501", "admin access needed");
		return;
	}
	ac->run(c, b, arg);
}

enum conn_rc admin_on_data(struct client *c)
{
	struct iobuf *rb = c->conn.rbuf;

	while (rb && iobuf_len(rb) > 0 && !conn_is_closing(&c->conn)) {
		struct proto_frame f;
		struct proto_buf b;
		enum proto_frame_rc frc;
		const char *sql;

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
		proto_buf_init(&b, 16u << 20);
		if (f.type != PROTO_FE_QUERY) {
			admin_error(&b, "08P01",
				    "the admin console supports only the simple query protocol");
			if (f.type != PROTO_FE_SYNC && f.type != PROTO_FE_FLUSH) {
				/* Extended protocol: answer once at the next Sync. */
			}
		} else {
			size_t len = f.len - 4;

			/* The query string is NUL-terminated inside the message. */
			if (len == 0 || sql[len - 1] != '\0') {
				proto_buf_free(&b);
				client_fatal(c, "08P01", "malformed Query message");
				return CONN_CLOSED;
			}
			admin_run(c, &b, sql, len - 1);
		}
		if (conn_is_closing(&c->conn)) {
			proto_buf_free(&b);
			return CONN_CLOSED;
		}
		proto_build_ready_for_query(&b, PROTO_TX_IDLE);
		if (!proto_buf_ok(&b)) {
			proto_buf_reset(&b);
			admin_error(&b, "54000", "result too large");
			proto_build_ready_for_query(&b, PROTO_TX_IDLE);
		}
		if (conn_send_buf(&c->conn, &b) < 0) {
			proto_buf_free(&b);
			client_close(c, "could not send console result");
			return CONN_CLOSED;
		}
		proto_buf_free(&b);
	}
	return CONN_OK;
}
