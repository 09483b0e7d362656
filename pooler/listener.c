/*
 * listener.c: listening sockets and accept. One uv handle per address; each
 * accepted connection becomes a struct client straight away, so even a
 * client that will be refused (max_client_conn, shutdown) is told why with
 * an ErrorResponse after its startup packet instead of a silent close.
 */
#include "listener.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "fds.h"
#include "log.h"
#include "pooler.h"
#include "util.h"

static void listener_on_connection(uv_stream_t *server, int status);
static void listener_on_close(uv_handle_t *h);

static void listener_on_connection(uv_stream_t *server, int status)
{
	struct listener *l = container_of(server, struct listener, h.stream);
	struct client *c;
	int rc;

	if (status < 0) {
		if (status == UV_EMFILE || status == UV_ENFILE)
			g_fds_counters.emfile++;
		log_warn("accept on %s:%d failed: %s", l->addr, l->port, uv_strerror(status));
		return;
	}
	c = client_new();
	if (l->is_unix)
		rc = uv_pipe_init(g_pooler.loop, &c->conn.h.pipe, 0);
	else
		rc = uv_tcp_init(g_pooler.loop, &c->conn.h.tcp);
	if (rc == 0)
		rc = uv_accept(server, &c->conn.h.stream);
	if (rc < 0) {
		log_warn("accept on %s:%d failed: %s", l->addr, l->port, uv_strerror(rc));
		free(c);
		return;
	}
	client_accepted(c);
}

static void listener_track(struct listener *l)
{
	uv_os_fd_t fd;

	if (uv_fileno(&l->h.handle, &fd) == 0)
		fds_track(fd, FDS_LISTENER, l);
}

static struct listener *listener_new(const char *addr, int port)
{
	struct listener *l = xcalloc(1, sizeof(*l));

	util_strlcpy(l->addr, addr, sizeof(l->addr));
	l->port = port;
	list_node_init(&l->node);
	return l;
}

static int listener_tcp(const char *addr, int port, int backlog)
{
	struct listener *l = listener_new(addr, port);
	struct sockaddr_storage ss;
	int rc;

	if (uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss) != 0) {
		log_error("listen_addr \"%s\" is not a numeric IPv4 or IPv6 address", addr);
		free(l);
		return -1;
	}
	uv_tcp_init(g_pooler.loop, &l->h.tcp);
	list_append(&g_pooler.listeners, &l->node);
	rc = uv_tcp_bind(&l->h.tcp, (const struct sockaddr *)&ss,
			 ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
	if (rc == 0)
		rc = uv_listen(&l->h.stream, backlog, listener_on_connection);
	if (rc < 0) {
		log_error("could not listen on %s:%d: %s", addr, port, uv_strerror(rc));
		return -1;
	}
	listener_track(l);
	log_info("listening on %s:%d", addr, port);
	return 0;
}

static int listener_unix(const char *dir, int port, int backlog, int mode)
{
	struct listener *l;
	char path[512];
	int rc;

	if (snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", dir, port) >= (int)sizeof(path)) {
		log_error("unix_socket_dir too long");
		return -1;
	}
	l = listener_new("unix", port);
	l->is_unix = true;
	uv_pipe_init(g_pooler.loop, &l->h.pipe, 0);
	list_append(&g_pooler.listeners, &l->node);
	/* A socket file left by a crashed pgmux would block bind. Only a
	 * socket is removed, never a regular file someone put there. */
	{
		struct stat st;

		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path);
	}
	rc = uv_pipe_bind(&l->h.pipe, path);
	if (rc == 0) {
		l->unix_path = xstrdup(path);
		if (mode > 0)
			chmod(path, (mode_t)mode);
		rc = uv_listen(&l->h.stream, backlog, listener_on_connection);
	}
	if (rc < 0) {
		log_error("could not listen on %s: %s", path, uv_strerror(rc));
		return -1;
	}
	listener_track(l);
	log_info("listening on %s", path);
	return 0;
}

int listener_start_all(void)
{
	const struct cfg *cfg = g_pooler.cfg;
	int backlog = cfg->listen_backlog > 0 ? cfg->listen_backlog : 128;
	char *addrs;
	char *tok;
	char *save = NULL;
	int rc = 0;

	if (cfg->listen_addr) {
		addrs = xstrdup(cfg->listen_addr);
		for (tok = strtok_r(addrs, ", \t", &save); tok && rc == 0;
		     tok = strtok_r(NULL, ", \t", &save)) {
			if (strcmp(tok, "*") == 0) {
				rc = listener_tcp("0.0.0.0", cfg->listen_port, backlog);
				/* A host without IPv6 still serves IPv4. */
				if (rc == 0 && listener_tcp("::", cfg->listen_port, backlog) < 0)
					log_warn("IPv6 listener unavailable; IPv4 only");
			} else {
				rc = listener_tcp(tok, cfg->listen_port, backlog);
			}
		}
		free(addrs);
	}
	if (rc == 0 && cfg->unix_socket_dir && cfg->unix_socket_dir[0])
		rc = listener_unix(cfg->unix_socket_dir, cfg->listen_port, backlog,
				   cfg->unix_socket_mode);
	return rc;
}

static void listener_on_close(uv_handle_t *h)
{
	struct listener *l = container_of(h, struct listener, h.handle);

	free(l->unix_path);
	free(l);
}

void listener_close_all(bool tcp_only)
{
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(&g_pooler.listeners, it, tmp)
	{
		struct listener *l = container_of(it, struct listener, node);

		if (tcp_only && l->is_unix)
			continue;
		list_remove(&g_pooler.listeners, it);
		if (l->unix_path)
			unlink(l->unix_path);
		if (!uv_is_closing(&l->h.handle)) {
			uv_os_fd_t fd;

			if (uv_fileno(&l->h.handle, &fd) == 0)
				fds_untrack(fd);
			uv_close(&l->h.handle, listener_on_close);
		}
	}
}
