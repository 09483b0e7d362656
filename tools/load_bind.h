/*
 * load_bind.h: gives libpq's client sockets a chosen IPv4 source address
 * (--source-addrs). libpq has no bind-address option and takes no ready
 * socket, so pgmux-load defines connect() itself: the dynamic linker binds
 * libpq's call to the executable's definition, which binds the socket to
 * the armed address with IP_BIND_ADDRESS_NO_PORT and then calls the C
 * library's connect(). Only calls made while an address is armed are
 * touched: every other connect() in the process passes straight through.
 */
#ifndef PGMUX_LOAD_BIND_H
#define PGMUX_LOAD_BIND_H

#include <netinet/in.h>
#include <stdbool.h>

/*
 * Arms src for the connect() calls libpq makes until load_bind_disarm():
 * call it around PQconnectStartParams() and PQconnectPoll() (libpq may
 * open a new socket inside either, e.g. to try the next address).
 * src must stay valid while armed. Single-threaded by design.
 */
void load_bind_arm(const struct sockaddr_in *src);
void load_bind_disarm(void);

/*
 * True if the interposed connect() is the one libpq calls. The program
 * checks this once before promising --source-addrs: a static libpq, or a
 * link that did not export connect(), would make the option a no-op.
 */
bool load_bind_active(void);

#endif /* PGMUX_LOAD_BIND_H */
