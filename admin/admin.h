/*
 * admin.h: the admin console, a virtual database ("pgmux", or "pgbouncer"
 * for existing tools) that speaks the simple query protocol and answers
 * SHOW and control commands from admin_users and stats_users.
 */
#ifndef PGMUX_ADMIN_H
#define PGMUX_ADMIN_H

#include <stdbool.h>

#include "conn.h"
#include "proto_build.h"

struct client;

/* Starts what the console owns besides sessions: the stats timer and the
 * metrics listener. 0 or -1 (logged). */
int admin_start(void);
/* Closes those handles (shutdown). */
void admin_stop(void);

/* Appends the ParameterStatus set a console session starts with. */
void admin_build_welcome(struct proto_buf *b);
/* A console client finished logging in; is_admin: may run control
 * commands (else SHOW only). */
void admin_session_start(struct client *c, bool is_admin);
/* Whether user may use the console at all, and with admin rights. */
bool admin_user_allowed(const char *user, bool *is_admin);
/* A console client is going away (close_cb). */
void admin_session_end(struct client *c);
/* Handles bytes from a console client. */
enum conn_rc admin_on_data(struct client *c);
/* Finishes console commands whose condition is now met (PAUSE, WAIT_CLOSE). */
void admin_check_waiting(void);

#endif /* PGMUX_ADMIN_H */
