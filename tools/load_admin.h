/*
 * load_admin.h: the pooler's admin console as seen by pgmux-load. When the
 * target is pgmux, the parent process keeps one console connection open
 * and snapshots SHOW FD_USAGE and SHOW SATURATION whenever the connected
 * count reaches a new high, so the report shows the pooler at the peak.
 * Every step has a short timeout and failure just means "no snapshot".
 */
#ifndef PGMUX_LOAD_ADMIN_H
#define PGMUX_LOAD_ADMIN_H

#include "load_report.h"

struct load_admin;

/*
 * Connects to the console on the target's host and port: database "pgmux",
 * then "pgbouncer", as user, with password (NULL: libpq's PGPASSWORD or
 * ~/.pgpass). kw/vals are the run's parsed conninfo. Returns NULL, quietly,
 * if no console answers or it is not pgmux (SHOW FD_USAGE fails).
 */
struct load_admin *load_admin_open(const char *const *kw, const char *const *vals,
				   const char *user, const char *password);
/*
 * Takes SHOW FD_USAGE and SHOW SATURATION into out's tables (emptied
 * first; out->has is left to the caller). 0, or -1 if a query failed or
 * timed out: the console is then closed and later calls fail at once.
 */
int load_admin_snapshot(struct load_admin *a, struct load_snapshot *out)
	__attribute__((warn_unused_result));
void load_admin_close(struct load_admin *a);

#endif /* PGMUX_LOAD_ADMIN_H */
