/*
 * admin_show.h: SHOW handlers and the result-set helpers every console
 * command uses. A handler appends one complete reply (RowDescription,
 * DataRows, CommandComplete, or an ErrorResponse) to b; it only reads
 * pooler state. `arg` is the rest of the command, case preserved.
 */
#ifndef PGMUX_ADMIN_SHOW_H
#define PGMUX_ADMIN_SHOW_H

#include <stddef.h>
#include <stdint.h>

#include "proto_build.h"

struct client;

/* Column types, as PostgreSQL type OIDs. */
#define ADMIN_TEXT 25u
#define ADMIN_INT4 23u
#define ADMIN_INT8 20u
#define ADMIN_NUMERIC 1700u
#define ADMIN_TIMESTAMPTZ 1184u

struct admin_column {
	const char *name;
	uint32_t type; /* ADMIN_* OID */
};

void admin_result_columns(struct proto_buf *b, const struct admin_column *cols, size_t n);
/* values[i] == NULL sends SQL NULL. */
void admin_result_row(struct proto_buf *b, size_t n, const char *const *values);
void admin_result_done(struct proto_buf *b, const char *tag);
void admin_result_error(struct proto_buf *b, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void admin_result_notice(struct proto_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* SHOW FD_USAGE's figures, shared with /metrics. */
struct admin_fd_usage {
	uint64_t limit_soft, limit_hard, open;
	uint64_t listeners, clients, servers, admin, cancel, internal;
	int64_t unaccounted; /* open minus registered; 0 unless something leaked */
	uint64_t reserved, headroom, max_clients_possible;
	uint64_t emfile_count, refused_count, accept_backlog, backlog_overflows;
};
void admin_fd_usage(struct admin_fd_usage *u);

struct pool;
/* Share of pool_size busy over the last stats period (or the current one
 * when none has ended yet), in percent. */
double admin_pool_utilization_pct(struct pool *p);

/* SHOW HELP's body: one NOTICE per command in the dispatch table. */
void admin_list_commands(struct proto_buf *b);

typedef void admin_show_fn(struct client *c, struct proto_buf *b, const char *arg);

admin_show_fn admin_show_help;
admin_show_fn admin_show_version;
admin_show_fn admin_show_config;
admin_show_fn admin_show_databases;
admin_show_fn admin_show_users;
admin_show_fn admin_show_pools;
admin_show_fn admin_show_clients;
admin_show_fn admin_show_servers;
admin_show_fn admin_show_stats;
admin_show_fn admin_show_stats_totals;
admin_show_fn admin_show_stats_averages;
admin_show_fn admin_show_totals;
admin_show_fn admin_show_lists;
admin_show_fn admin_show_mem;
admin_show_fn admin_show_state;
admin_show_fn admin_show_peers;
admin_show_fn admin_show_peer_pools;
admin_show_fn admin_show_dns_hosts;
admin_show_fn admin_show_dns_zones;
admin_show_fn admin_show_fds;
admin_show_fn admin_show_fd_usage;
admin_show_fn admin_show_saturation;
admin_show_fn admin_show_session_leaks;

#endif /* PGMUX_ADMIN_SHOW_H */
