/*
 * janitor.h: once a second, enforce the timeouts: client_login_timeout,
 * query_wait_timeout, client_idle_timeout, idle_transaction_timeout,
 * query_timeout (cancel first), server_connect_timeout,
 * server_idle_timeout and server_lifetime.
 */
#ifndef PGMUX_JANITOR_H
#define PGMUX_JANITOR_H

void janitor_start(void);
void janitor_stop(void);
/* One pass now (tests and the timer). */
void janitor_run(void);

#endif /* PGMUX_JANITOR_H */
