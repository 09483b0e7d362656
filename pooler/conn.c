/*
 * conn.c: libuv plumbing shared by clients and servers: read buffers from
 * the iobuf pool, try-write-then-queue forwarding with backpressure, and an
 * idempotent close whose callback is the only place memory is released.
 */
#include "conn.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "fds.h"
#include "log.h"
#include "tls.h"
#include "pooler.h"
#include "list.h"
#include "util.h"

/* A queued write owns exactly one of: an iobuf, or a heap copy. */
struct write_req {
	uv_write_t req;
	struct iobuf *iob;
	void *heap;
};

/*
 * TLS state of a conn. Plaintext lives in the conn's rbuf as usual; the
 * ciphertext of one read passes through g_tls_cipher and is fed to OpenSSL
 * at once, so a TLS conn holds no extra buffer of its own beyond what
 * OpenSSL keeps for a partial record.
 */
struct conn_tls {
	struct tls t;
	struct conn *owner;
	struct list_node pump; /* in g_tls_pumps: input waits for a read restart */
};

static uint8_t g_tls_cipher[32768];
static struct list g_tls_pumps = { .head = { &g_tls_pumps.head, &g_tls_pumps.head },
				   .count = 0 };
static uv_idle_t g_tls_idle;
static bool g_tls_idle_ready;

static void conn_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static enum conn_rc conn_tls_pump(struct conn *c);
static void conn_tls_schedule(struct conn *c);
static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void conn_on_write_done(uv_write_t *req, int status);
static void conn_on_close(uv_handle_t *h);

void conn_init(struct conn *c, enum conn_kind kind, const struct conn_ops *ops, bool unix_sock)
{
	c->ops = ops;
	c->kind = kind;
	c->flags = unix_sock ? CONN_F_UNIX : 0;
	c->pending_writes = 0;
	c->rbuf = NULL;
	c->bytes_in = 0;
	c->bytes_out = 0;
	c->tls = NULL;
	proto_stream_init(&c->ps, kind == CONN_CLIENT ? PROTO_DIR_FRONTEND : PROTO_DIR_BACKEND,
			  false);
}

int conn_read_start(struct conn *c)
{
	int rc;

	if (c->flags & (CONN_F_READING | CONN_F_CLOSING))
		return 0;
	rc = uv_read_start(&c->h.stream, conn_on_alloc, conn_on_read);
	if (rc == 0)
		c->flags |= CONN_F_READING;
	/* Decrypted bytes held while reading was off raise no read event:
	 * hand them over from the loop, not from inside this caller. */
	if (rc == 0 && c->tls && tls_has_input(&c->tls->t))
		conn_tls_schedule(c);
	return rc;
}

void conn_read_stop(struct conn *c)
{
	if (!(c->flags & CONN_F_READING))
		return;
	uv_read_stop(&c->h.stream);
	c->flags &= ~CONN_F_READING;
}

/*
 * Hands out the free tail of the conn's buffer. Unhandled bytes are moved
 * to the front first: they are at most one partial message the handler is
 * waiting to see whole, so the copy is small and rare.
 */
static void conn_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = container_of(h, struct conn, h.handle);
	struct iobuf *b = c->rbuf;
	size_t size = iobuf_size();

	(void)hint;
	if (c->tls) {
		/* Ciphertext: consumed by conn_on_read before anything else
		 * can read, so one buffer serves every TLS conn. */
		*buf = uv_buf_init((char *)g_tls_cipher, sizeof(g_tls_cipher));
		return;
	}
	if (!b) {
		b = iobuf_get();
		c->rbuf = b;
	} else if (b->start > 0) {
		size_t left = iobuf_len(b);

		memmove(b->data, b->data + b->start, left);
		b->start = 0;
		b->end = (uint32_t)left;
	}
	buf->base = (char *)b->data + b->end;
	buf->len = size - b->end;
}

static void conn_release_empty_rbuf(struct conn *c)
{
	if (c->rbuf && c->rbuf->start == c->rbuf->end) {
		iobuf_put(c->rbuf);
		c->rbuf = NULL;
	}
}

static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = container_of(s, struct conn, h.stream);

	(void)buf;
	if (c->tls && nread > 0) {
		c->bytes_in += (uint64_t)nread;
		tls_feed(&c->tls->t, g_tls_cipher, (size_t)nread);
		(void)conn_tls_pump(c);
		return;
	}
	if (nread < 0) {
		conn_release_empty_rbuf(c);
		if (nread == UV_ENOBUFS) {
			/* The handler let a partial message fill the buffer:
			 * it is larger than anything we agreed to hold. */
			c->ops->on_read_error(c, UV_E2BIG);
			return;
		}
		c->ops->on_read_error(c, (int)nread);
		return;
	}
	if (nread == 0) {
		conn_release_empty_rbuf(c);
		return;
	}
	c->rbuf->end += (uint32_t)nread;
	c->bytes_in += (uint64_t)nread;
	if (c->ops->on_data(c) == CONN_CLOSED)
		return;
	conn_release_empty_rbuf(c);
}

static struct write_req *write_req_new(void)
{
	struct write_req *wr = xmalloc(sizeof(*wr));

	wr->iob = NULL;
	wr->heap = NULL;
	return wr;
}

static int conn_queue(struct conn *dst, struct write_req *wr, const uint8_t *p, size_t n)
{
	uv_buf_t ub = uv_buf_init((char *)p, (unsigned int)n);
	int rc = uv_write(&wr->req, &dst->h.stream, &ub, 1, conn_on_write_done);

	if (rc < 0) {
		if (wr->iob)
			iobuf_put(wr->iob);
		free(wr->heap);
		free(wr);
		return rc;
	}
	dst->pending_writes++;
	dst->bytes_out += n;
	return 0;
}

/*
 * Tries a direct write (one syscall, no allocation) and reports how many
 * bytes went out, or a negative error other than EAGAIN.
 */
static ssize_t conn_try_write(struct conn *dst, const uint8_t *p, size_t n)
{
	uv_buf_t ub = uv_buf_init((char *)p, (unsigned int)n);
	int rc;

	if (dst->flags & CONN_F_CLOSING)
		return UV_EPIPE;
	rc = uv_try_write(&dst->h.stream, &ub, 1);
	if (rc == UV_EAGAIN || rc == UV_ENOSYS)
		return 0;
	if (rc > 0)
		dst->bytes_out += (uint64_t)rc;
	return rc;
}

/* Raw bytes (ciphertext, or plaintext without TLS): try, then queue the
 * rest as a heap copy. *queued says whether anything had to wait. */
static int conn_write_raw(struct conn *dst, const uint8_t *p, size_t n, bool *queued)
{
	ssize_t done = conn_try_write(dst, p, n);
	struct write_req *wr;

	if (done < 0)
		return (int)done;
	if ((size_t)done == n)
		return 0;
	*queued = true;
	wr = write_req_new();
	wr->heap = xmalloc(n - (size_t)done);
	memcpy(wr->heap, p + done, n - (size_t)done);
	return conn_queue(dst, wr, wr->heap, n - (size_t)done);
}

/* Sends whatever OpenSSL has produced for the peer. */
static int conn_tls_flush(struct conn *c, bool *queued)
{
	uint8_t chunk[16384];
	size_t n;

	while ((n = tls_out_take(&c->tls->t, chunk, sizeof(chunk))) > 0) {
		int rc = conn_write_raw(c, chunk, n, queued);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Encrypts n plaintext bytes for dst and sends them. */
static int conn_tls_send(struct conn *dst, const uint8_t *p, size_t n, bool *queued)
{
	if (dst->flags & CONN_F_CLOSING)
		return UV_EPIPE;
	if (tls_write(&dst->tls->t, p, n) != 0) {
		log_warn("TLS: %s", dst->tls->t.error);
		return UV_EPROTO;
	}
	return conn_tls_flush(dst, queued);
}

int conn_forward(struct conn *src, struct conn *dst, size_t n)
{
	struct iobuf *b = src->rbuf;
	const uint8_t *p = b->data + b->start;
	ssize_t done;
	struct write_req *wr;
	struct iobuf *tail;
	size_t left;

	if (n == 0)
		return 0;
	if (dst->tls) {
		/* The plaintext is consumed whole; ciphertext the kernel did
		 * not take waits in dst's queue, and src waits for it. */
		bool queued = false;
		int rc = conn_tls_send(dst, p, n, &queued);

		b->start += (uint32_t)n;
		if (rc == 0 && queued) {
			conn_read_stop(src);
			src->flags |= CONN_F_BLOCKED;
		}
		return rc;
	}
	done = conn_try_write(dst, p, n);
	if (done < 0)
		return (int)done;
	b->start += (uint32_t)n;
	if ((size_t)done == n)
		return 0;

	/* The rest waits in dst's queue; the buffer goes with it. */
	left = iobuf_len(b);
	tail = NULL;
	if (left > 0) {
		tail = iobuf_get();
		memcpy(tail->data, b->data + b->start, left);
		tail->end = (uint32_t)left;
	}
	src->rbuf = tail;
	wr = write_req_new();
	wr->iob = b;
	conn_read_stop(src);
	src->flags |= CONN_F_BLOCKED;
	return conn_queue(dst, wr, p + done, n - (size_t)done);
}

void conn_unblock(struct conn *c)
{
	if (!(c->flags & CONN_F_BLOCKED))
		return;
	c->flags &= ~CONN_F_BLOCKED;
	if (conn_read_start(c) < 0)
		conn_close(c);
}

void conn_block(struct conn *c)
{
	conn_read_stop(c);
	c->flags |= CONN_F_BLOCKED;
}

int conn_send_bytes(struct conn *dst, const void *p, size_t n)
{
	bool queued = false;

	if (n == 0)
		return 0;
	if (dst->tls)
		return conn_tls_send(dst, p, n, &queued);
	return conn_write_raw(dst, p, n, &queued);
}

int conn_send_buf(struct conn *dst, struct proto_buf *b)
{
	int rc;

	if (!proto_buf_ok(b)) {
		proto_buf_reset(b);
		return UV_ENOMEM;
	}
	rc = conn_send_bytes(dst, b->data, b->len);
	proto_buf_reset(b);
	return rc;
}

static void conn_on_write_done(uv_write_t *req, int status)
{
	struct write_req *wr = container_of(req, struct write_req, req);
	struct conn *dst = container_of(req->handle, struct conn, h.stream);

	if (wr->iob)
		iobuf_put(wr->iob);
	free(wr->heap);
	free(wr);
	dst->pending_writes--;
	if (dst->flags & CONN_F_CLOSING)
		return;
	if (status < 0) {
		dst->ops->on_read_error(dst, status);
		return;
	}
	if (dst->pending_writes > 0)
		return;
	if (dst->flags & CONN_F_CLOSE_AFTER_FLUSH) {
		conn_close(dst);
		return;
	}
	dst->ops->on_drained(dst);
}

void conn_close(struct conn *c)
{
	if (c->flags & CONN_F_CLOSING)
		return;
	c->flags |= CONN_F_CLOSING;
	conn_read_stop(c);
	if (c->tls && list_node_linked(&c->tls->pump))
		list_remove(&g_tls_pumps, &c->tls->pump);
	/* uv_close closes the descriptor at once; the registry follows. */
	fds_untrack(conn_fd(c));
	uv_close(&c->h.handle, conn_on_close);
}

void conn_close_after_flush(struct conn *c)
{
	if (c->flags & CONN_F_CLOSING)
		return;
	conn_read_stop(c);
	if (c->pending_writes == 0) {
		conn_close(c);
		return;
	}
	c->flags |= CONN_F_CLOSE_AFTER_FLUSH;
}

static void conn_on_close(uv_handle_t *h)
{
	struct conn *c = container_of(h, struct conn, h.handle);

	if (c->rbuf) {
		iobuf_put(c->rbuf);
		c->rbuf = NULL;
	}
	if (c->tls) {
		tls_end(&c->tls->t);
		free(c->tls);
		c->tls = NULL;
	}
	c->ops->on_closed(c);
}

/* One setsockopt; a refusal is logged at most once per option, since the
 * same cause would repeat for every connection. */
static int conn_sockopt(int fd, int level, int name, int value, const char *what)
{
	static uint32_t warned; /* bit per option slot below */
	static const char *const slots[] = { "TCP_NODELAY",   "SO_KEEPALIVE", "TCP_KEEPIDLE",
					     "TCP_KEEPINTVL", "TCP_KEEPCNT",  "TCP_USER_TIMEOUT",
					     "SO_SNDBUF",     "SO_RCVBUF" };

	if (setsockopt(fd, level, name, &value, sizeof(value)) == 0)
		return 0;
	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		if (strcmp(slots[i], what) == 0 && !(warned & (1u << i))) {
			warned |= 1u << i;
			log_warn("setsockopt %s=%d failed: %s (further failures not logged)", what,
				 value, strerror(errno));
		}
	}
	return 1;
}

int conn_tcp_apply(int fd, const struct cfg *cfg)
{
	int failed = conn_sockopt(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");

	if (cfg->tcp_user_timeout > 0)
		failed += conn_sockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, cfg->tcp_user_timeout,
				       "TCP_USER_TIMEOUT");
	if (cfg->tcp_socket_buffer > 0) {
		failed += conn_sockopt(fd, SOL_SOCKET, SO_SNDBUF, cfg->tcp_socket_buffer,
				       "SO_SNDBUF");
		failed += conn_sockopt(fd, SOL_SOCKET, SO_RCVBUF, cfg->tcp_socket_buffer,
				       "SO_RCVBUF");
	}
	if (!cfg->tcp_keepalive)
		return failed;
	failed += conn_sockopt(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
	if (cfg->tcp_keepidle > 0)
		failed += conn_sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, cfg->tcp_keepidle,
				       "TCP_KEEPIDLE");
	if (cfg->tcp_keepintvl > 0)
		failed += conn_sockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, cfg->tcp_keepintvl,
				       "TCP_KEEPINTVL");
	if (cfg->tcp_keepcnt > 0)
		failed += conn_sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, cfg->tcp_keepcnt,
				       "TCP_KEEPCNT");
	return failed;
}

void conn_set_tcp_options(struct conn *c)
{
	int fd = conn_fd(c);

	if (fd < 0 || (c->flags & CONN_F_UNIX))
		return;
	(void)conn_tcp_apply(fd, g_pooler.cfg);
}

static void addr_to_text(const struct sockaddr_storage *ss, char *addr, size_t addrlen, int *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, addr, (socklen_t)addrlen);
		*port = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, addr, (socklen_t)addrlen);
		*port = ntohs(sin6->sin6_port);
	} else {
		util_strlcpy(addr, "unix", addrlen);
		*port = 0;
	}
}

void conn_peer_addr(const struct conn *c, char *addr, size_t addrlen, int *port)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if ((c->flags & CONN_F_UNIX) ||
	    uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) != 0)
		ss.ss_family = AF_UNIX;
	addr_to_text(&ss, addr, addrlen, port);
}

void conn_local_addr(const struct conn *c, char *addr, size_t addrlen, int *port)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if ((c->flags & CONN_F_UNIX) ||
	    uv_tcp_getsockname(&c->h.tcp, (struct sockaddr *)&ss, &len) != 0)
		ss.ss_family = AF_UNIX;
	addr_to_text(&ss, addr, addrlen, port);
}

int conn_fd(const struct conn *c)
{
	uv_os_fd_t fd;

	if (uv_fileno(&c->h.handle, &fd) != 0)
		return -1;
	return fd;
}

/* ---- TLS ---- */

/* Room at the end of c's rbuf for plaintext (0: full). */
static size_t conn_rbuf_room(struct conn *c)
{
	struct iobuf *b = c->rbuf;

	if (!b) {
		b = iobuf_get();
		c->rbuf = b;
	} else if (b->start > 0) {
		size_t left = iobuf_len(b);

		memmove(b->data, b->data + b->start, left);
		b->start = 0;
		b->end = (uint32_t)left;
	}
	return iobuf_size() - b->end;
}

static enum conn_rc conn_tls_broken(struct conn *c, int status)
{
	char who[64];
	int port;

	conn_peer_addr(c, who, sizeof(who), &port);
	if (status == UV_EPROTO)
		log_info("TLS with %s:%d failed: %s", who, port, c->tls->t.error);
	conn_release_empty_rbuf(c);
	c->ops->on_read_error(c, status);
	return CONN_CLOSED;
}

/* Drives the handshake; CONN_OK with c->tls->t.established once done. */
static enum conn_rc conn_tls_handshake(struct conn *c)
{
	bool queued = false;
	enum tls_rc rc = tls_handshake(&c->tls->t);

	if (conn_tls_flush(c, &queued) < 0)
		return conn_tls_broken(c, UV_EPIPE);
	if (rc == TLS_WANT_MORE)
		return CONN_OK;
	if (rc != TLS_OK)
		return conn_tls_broken(c, rc == TLS_EOF ? UV_EOF : UV_EPROTO);
	if (c->ops->on_tls_ready)
		return c->ops->on_tls_ready(c);
	return CONN_OK;
}

/*
 * Decrypts what has arrived into rbuf and hands it to on_data, as long as
 * the conn is reading: a conn stopped by backpressure keeps the rest
 * inside OpenSSL (bounded by one read) until conn_read_start.
 */
static enum conn_rc conn_tls_pump(struct conn *c)
{
	struct tls *t = &c->tls->t;
	bool queued = false;

	if (!t->established) {
		if (conn_tls_handshake(c) == CONN_CLOSED)
			return CONN_CLOSED;
		if (!t->established)
			return CONN_OK;
	}
	while ((c->flags & CONN_F_READING) && !(c->flags & CONN_F_CLOSING)) {
		size_t room = conn_rbuf_room(c);
		size_t got = 0;
		enum tls_rc rc;

		if (room == 0)
			return conn_tls_broken(c, UV_E2BIG);
		rc = tls_read(t, c->rbuf->data + c->rbuf->end, room, &got);
		if (rc == TLS_WANT_MORE)
			break;
		if (rc != TLS_OK)
			return conn_tls_broken(c, rc == TLS_EOF ? UV_EOF : UV_EPROTO);
		c->rbuf->end += (uint32_t)got;
		if (c->ops->on_data(c) == CONN_CLOSED)
			return CONN_CLOSED;
	}
	conn_release_empty_rbuf(c);
	/* Reading may have produced records for the peer (TLS 1.3 tickets,
	 * key updates). */
	if (conn_tls_flush(c, &queued) < 0)
		return conn_tls_broken(c, UV_EPIPE);
	return CONN_OK;
}

static void conn_tls_on_idle(uv_idle_t *h)
{
	while (!list_empty(&g_tls_pumps)) {
		struct list_node *n = list_first(&g_tls_pumps);
		struct conn_tls *ct = container_of(n, struct conn_tls, pump);

		list_remove(&g_tls_pumps, n);
		list_node_init(n);
		(void)conn_tls_pump(ct->owner);
	}
	uv_idle_stop(h);
}

static void conn_tls_schedule(struct conn *c)
{
	if (list_node_linked(&c->tls->pump))
		return;
	list_append(&g_tls_pumps, &c->tls->pump);
	if (!g_tls_idle_ready) {
		uv_idle_init(g_pooler.loop, &g_tls_idle);
		uv_unref((uv_handle_t *)&g_tls_idle);
		g_tls_idle_ready = true;
	}
	uv_idle_start(&g_tls_idle, conn_tls_on_idle);
}

int conn_tls_start(struct conn *c, struct ssl_ctx_st *ctx, bool accept_side,
		   const char *verify_host)
{
	struct conn_tls *ct = xcalloc(1, sizeof(*ct));

	if (tls_start(&ct->t, ctx, accept_side, verify_host) != 0) {
		log_warn("TLS: %s", ct->t.error);
		free(ct);
		return -1;
	}
	ct->owner = c;
	list_node_init(&ct->pump);
	c->tls = ct;
	/* The connect side speaks first: its ClientHello goes out now. */
	if (!accept_side && conn_tls_handshake(c) == CONN_CLOSED)
		return -1;
	return 0;
}

void conn_tls_describe(const struct conn *c, char *buf, size_t len)
{
	if (!c->tls) {
		if (len)
			buf[0] = '\0';
		return;
	}
	tls_describe(&c->tls->t, buf, len);
}

bool conn_tls_peer_cn(const struct conn *c, char *out, size_t len)
{
	return c->tls && tls_peer_cn(&c->tls->t, out, len);
}

const char *conn_tls_error(const struct conn *c)
{
	return c->tls ? c->tls->t.error : "";
}

void conn_tls_cleanup(void)
{
	if (g_tls_idle_ready) {
		uv_close((uv_handle_t *)&g_tls_idle, NULL);
		g_tls_idle_ready = false;
	}
}
