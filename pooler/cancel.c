/*
 * cancel.c: CancelRequests to PostgreSQL, each on its own connection,
 * tracked in one list so the janitor can bound their life and shutdown can
 * end them. See cancel.h for why the requesting client waits.
 */
#include "cancel.h"

#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <uv.h>

#include "client.h"
#include "fds.h"
#include "list.h"
#include "log.h"
#include "pool.h"
#include "pooler.h"
#include "proto.h"
#include "server.h"
#include "util.h"

struct cancel_conn {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	uv_connect_t connect_req;
	uv_write_t write_req;
	struct list_node node;     /* in g_cancels while not closing */
	struct client *requester;  /* NULL: nobody waits for the outcome */
	struct pool *pool;         /* of the server being cancelled (SHOW POOLS) */
	struct server *server;     /* being cancelled; NULL once it has closed */
	uint64_t started_ms;       /* uv_now() when sent (cancel_wait_timeout) */
	uint8_t packet[16];
	char sink[64];             /* PostgreSQL sends nothing; EOF is the answer */
};

static struct list g_cancels = { .head = { &g_cancels.head, &g_cancels.head }, .count = 0 };

static void cancel_on_close(uv_handle_t *h)
{
	free(container_of(h, struct cancel_conn, h.handle));
}

/* Ends the exchange: the requester hears (by its socket closing) that the
 * server has the request, or that it could not be delivered. */
static void cancel_finish(struct cancel_conn *cc, const char *outcome, bool taken)
{
	uv_os_fd_t fd;
	struct client *requester = cc->requester;
	struct server *s = cc->server;

	if (uv_is_closing(&cc->h.handle))
		return;
	list_remove(&g_cancels, &cc->node);
	cc->pool->cancel_conns--;
	if (requester)
		cc->pool->cancel_requesters--;
	cc->requester = NULL;
	if (uv_fileno(&cc->h.handle, &fd) == 0)
		fds_untrack(fd);
	uv_close(&cc->h.handle, cancel_on_close);
	cc->server = NULL;
	if (s)
		server_cancel_done(s, taken);
	if (requester)
		client_close(requester, "cancel request %s", outcome);
}

static void cancel_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct cancel_conn *cc = container_of(h, struct cancel_conn, h.handle);

	(void)suggested;
	*buf = uv_buf_init(cc->sink, sizeof(cc->sink));
}

static void cancel_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct cancel_conn *cc = container_of(st, struct cancel_conn, h.stream);

	(void)buf;
	if (nread < 0)
		cancel_finish(cc, nread == UV_EOF ? "delivered" : "ended by a socket error", true);
}

static void cancel_on_written(uv_write_t *req, int status)
{
	struct cancel_conn *cc = container_of(req, struct cancel_conn, write_req);

	if (status == UV_ECANCELED)
		return; /* closed under us: cancel_finish already ran */
	if (status < 0 || uv_read_start(&cc->h.stream, cancel_on_alloc, cancel_on_read) != 0) {
		log_warn("cancel request could not be written to the server: %s",
			 uv_strerror(status < 0 ? status : UV_EIO));
		cancel_finish(cc, "not delivered", true);
	}
}

static void cancel_on_connect(uv_connect_t *req, int status)
{
	struct cancel_conn *cc = container_of(req, struct cancel_conn, connect_req);
	uv_buf_t buf = uv_buf_init((char *)cc->packet, sizeof(cc->packet));

	if (status == UV_ECANCELED)
		return;
	if (status < 0 || uv_write(&cc->write_req, &cc->h.stream, &buf, 1, cancel_on_written) < 0) {
		log_warn("cancel request could not reach the server: %s",
			 uv_strerror(status < 0 ? status : UV_EIO));
		cancel_finish(cc, "not delivered", true);
	}
}

static void cancel_track(struct cancel_conn *cc)
{
	uv_os_fd_t fd;

	if (uv_fileno(&cc->h.handle, &fd) == 0)
		fds_track(fd, FDS_CANCEL, cc);
}

/* Opens the cancel connection toward the address s is connected to. */
static int cancel_connect(struct cancel_conn *cc, struct server *s)
{
	if (s->conn.flags & CONN_F_UNIX) {
		char path[512];
		size_t len = sizeof(path) - 1;

		uv_pipe_init(g_pooler.loop, &cc->h.pipe, 0);
		if (uv_pipe_getpeername(&s->conn.h.pipe, path, &len) != 0)
			return -1;
		path[len] = '\0';
		uv_pipe_connect(&cc->connect_req, &cc->h.pipe, path, cancel_on_connect);
	} else {
		struct sockaddr_storage ss;
		int len = sizeof(ss);

		uv_tcp_init(g_pooler.loop, &cc->h.tcp);
		if (uv_tcp_getpeername(&s->conn.h.tcp, (struct sockaddr *)&ss, &len) != 0 ||
		    uv_tcp_connect(&cc->connect_req, &cc->h.tcp, (struct sockaddr *)&ss,
				   cancel_on_connect) != 0)
			return -1;
	}
	cancel_track(cc);
	return 0;
}

void cancel_send(struct server *s, struct client *requester)
{
	struct cancel_conn *cc = xcalloc(1, sizeof(*cc));
	uint32_t v[4] = { htonl(16), htonl(PROTO_CANCEL_REQUEST_CODE), htonl(s->be_pid),
			  htonl(s->be_key) };

	memcpy(cc->packet, v, sizeof(v));
	cc->requester = requester;
	cc->pool = s->pool;
	cc->server = s;
	s->cancels_in_flight++;
	cc->started_ms = uv_now(g_pooler.loop);
	list_append(&g_cancels, &cc->node);
	cc->pool->cancel_conns++;
	if (requester)
		cc->pool->cancel_requesters++;
	if (cancel_connect(cc, s) != 0) {
		log_warn("cancel request for server pid %u could not be started", s->be_pid);
		cancel_finish(cc, "not delivered", true);
	}
}

void cancel_forget_server(const struct server *s)
{
	struct list_node *it;

	for (it = g_cancels.head.next; it != &g_cancels.head; it = it->next) {
		struct cancel_conn *cc = container_of(it, struct cancel_conn, node);

		if (cc->server == s)
			cc->server = NULL;
	}
}

void cancel_forget(const struct client *requester)
{
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(&g_cancels, it, tmp)
	{
		struct cancel_conn *cc = container_of(it, struct cancel_conn, node);

		if (cc->requester == requester) {
			cc->requester = NULL;
			cc->pool->cancel_requesters--;
		}
	}
}

void cancel_expire(uint64_t now_ms)
{
	double limit_s = g_pooler.cfg->cancel_wait_timeout;
	uint64_t limit = limit_s > 0 ? (uint64_t)(limit_s * 1000.0) : 0;
	struct list_node *it;
	struct list_node *tmp;

	if (limit == 0)
		return;
	list_foreach_safe(&g_cancels, it, tmp)
	{
		struct cancel_conn *cc = container_of(it, struct cancel_conn, node);

		if (now_ms - cc->started_ms < limit)
			continue;
		log_warn("cancel request not taken by the server within cancel_wait_timeout "
			 "(%.1f s): given up", limit_s);
		cancel_finish(cc, "timed out (cancel_wait_timeout)", false);
	}
}

void cancel_close_all(void)
{
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(&g_cancels, it, tmp)
	{
		cancel_finish(container_of(it, struct cancel_conn, node), "dropped: shutting down", false);
	}
}

uint32_t cancel_in_flight(void)
{
	return (uint32_t)g_cancels.count;
}
