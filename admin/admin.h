/*
 * admin.h: the admin console, a virtual database ("pgmux", or "pgbouncer"
 * for existing tools) that speaks the simple query protocol and answers
 * SHOW and control commands from admin_users and stats_users.
 */
#ifndef PGMUX_ADMIN_H
#define PGMUX_ADMIN_H

#include "conn.h"

struct client;

/* Finishes the console login (AuthenticationOk has been sent). */
void admin_welcome(struct client *c);
/* Handles bytes from a console client. */
enum conn_rc admin_on_data(struct client *c);

#endif /* PGMUX_ADMIN_H */
