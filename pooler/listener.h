/*
 * listener.h: the sockets clients connect to: TCP on each listen_addr and
 * a unix socket in unix_socket_dir, both on listen_port.
 */
#ifndef PGMUX_LISTENER_H
#define PGMUX_LISTENER_H

#include <stdbool.h>

#include <uv.h>

#include "list.h"

struct listener {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	struct list_node node; /* g_pooler.listeners */
	char addr[128];        /* for logs and SHOW FDS */
	int port;
	char *unix_path;       /* socket file to unlink on close, or NULL */
	bool is_unix;
};

/* Opens every listener the config asks for; 0 or -1 (logged). */
int listener_start_all(void);
/* Closes the listeners: all of them, or only the TCP ones so the admin
 * console stays reachable on the unix socket during a waiting shutdown. */
void listener_close_all(bool tcp_only);

#endif /* PGMUX_LISTENER_H */
