/*
 * cancel.h: forwarding CancelRequest to PostgreSQL. A cancel travels on its
 * own short-lived connection to the server's address, as PostgreSQL expects.
 *
 * When a client asked for the cancel, its connection stays open (not read)
 * until PostgreSQL has taken the request and closed the cancel connection:
 * libpq's PQcancel() returns when its socket closes, and a client that
 * sent its next query before the signal reached the backend could see that
 * query cancelled instead, or, with transaction pooling, another client's.
 * cancel_wait_timeout bounds the whole exchange.
 */
#ifndef PGMUX_CANCEL_H
#define PGMUX_CANCEL_H

#include <stdint.h>

struct client;
struct server;

/*
 * Sends a CancelRequest for the query s is running. requester is the
 * client connection that carried the request (closed once the server has
 * taken it), or NULL when pgmux cancels on its own (query_timeout, a client
 * that left mid-query).
 */
void cancel_send(struct server *s, struct client *requester);
/* s is closing: its cancels go on without it. */
void cancel_forget_server(const struct server *s);
/* The requester is closing: the cancel goes on without it. */
void cancel_forget(const struct client *requester);
/* Janitor: ends cancels older than cancel_wait_timeout. */
void cancel_expire(uint64_t now_ms);
/* Shutdown: ends every cancel in flight. */
void cancel_close_all(void);
/* Cancels in flight (SHOW FDS counts their descriptors too). */
uint32_t cancel_in_flight(void);

#endif /* PGMUX_CANCEL_H */
