/*
 * conn.h: the part of a connection that clients and servers share: the
 * libuv stream handle, the read buffer, the write path and closing.
 *
 * Buffer ownership, written down once:
 * - A conn owns at most one read buffer (rbuf), taken from the iobuf free
 *   list in alloc_cb and returned as soon as every byte in it is handled,
 *   so an idle conn holds none. Handlers consume rbuf[start, end).
 * - conn_forward writes bytes of the source's rbuf to the destination with
 *   a try-write first. If the kernel does not take them all, the rbuf itself
 *   moves into a write request (it now owns the buffer until its write_cb),
 *   the source gets a fresh rbuf holding only its unhandled tail, and the
 *   source stops reading until the destination drains. That is the whole
 *   backpressure scheme: at most one buffer in flight per direction.
 * - conn_send_buf sends bytes pgmux built itself (proto_buf); a remainder the
 *   kernel did not take is copied into the write request.
 * - Nothing is freed before the handle's close_cb (libuv's rule).
 */
#ifndef PGMUX_CONN_H
#define PGMUX_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "iobuf.h"
#include "proto_build.h"
#include "proto_frame.h"

enum conn_kind {
	CONN_CLIENT,
	CONN_SERVER,
};

/* What a handler tells its caller: whether the conn may still be used. */
enum conn_rc {
	CONN_OK,
	CONN_CLOSED, /* conn_close was called: touch nothing but return */
};

struct conn;

/* Per-kind behaviour, one static table per role. */
struct conn_ops {
	/* Bytes arrived: rbuf[start, end) is unhandled. */
	enum conn_rc (*on_data)(struct conn *c);
	/* Read side ended: status is UV_EOF or a libuv error. */
	void (*on_read_error)(struct conn *c, int status);
	/* Every queued write to c has completed. */
	void (*on_drained)(struct conn *c);
	/* The handle is closed; the owner frees itself. */
	void (*on_closed)(struct conn *c);
	/* The TLS handshake finished (conn_tls_start); may be NULL. */
	enum conn_rc (*on_tls_ready)(struct conn *c);
};

enum conn_flag {
	CONN_F_READING = 1 << 0,     /* uv_read_start is in effect */
	CONN_F_CLOSING = 1 << 1,     /* conn_close was called */
	CONN_F_CLOSE_AFTER_FLUSH = 1 << 2,
	CONN_F_UNIX = 1 << 3,        /* unix-domain socket */
	CONN_F_BLOCKED = 1 << 4,     /* reading stopped: peer's write queue is full */
	CONN_F_CONNECTED = 1 << 5,   /* handle is open on a live socket */
};

struct conn {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	const struct conn_ops *ops;
	enum conn_kind kind;
	uint32_t flags;          /* enum conn_flag bits */
	uint32_t pending_writes; /* uv_write requests not yet called back */
	struct iobuf *rbuf;      /* NULL while nothing is buffered */
	struct proto_stream ps;  /* framing position in the incoming stream */
	uint64_t bytes_in;
	uint64_t bytes_out;
	struct conn_tls *tls;    /* NULL unless TLS was negotiated */
};

void conn_init(struct conn *c, enum conn_kind kind, const struct conn_ops *ops, bool unix_sock);
/* Starts/stops reading; both are idempotent. */
int conn_read_start(struct conn *c);
void conn_read_stop(struct conn *c);

/*
 * Writes src->rbuf[start, start + n) to dst and advances src's start.
 * Returns 0, or a negative libuv error (dst is broken; the caller decides
 * whom to close). May leave src blocked (CONN_F_BLOCKED, not reading) until
 * dst drains; dst's on_drained then calls conn_unblock on its peer.
 */
int conn_forward(struct conn *src, struct conn *dst, size_t n);
/* Resumes a conn stopped by backpressure. */
void conn_unblock(struct conn *c);
/* Stops reading c as backpressure does (conn_unblock resumes it): for a
 * peer that has answers of pgmux's own queued and does not read them. */
void conn_block(struct conn *c);

/* Sends the bytes built in b and resets b. 0 or negative libuv error. */
int conn_send_buf(struct conn *dst, struct proto_buf *b);
int conn_send_bytes(struct conn *dst, const void *p, size_t n);

/*
 * TLS on an open conn (after "S" was sent or received, with nothing
 * buffered past it): from here on reads are decrypted before on_data and
 * every write is encrypted. accept_side: pgmux is the TLS server. The
 * handshake runs as bytes arrive; the connect side starts it at once.
 * on_tls_ready runs when it completes. Returns 0 or -1 (logged).
 */
struct ssl_ctx_st;
int conn_tls_start(struct conn *c, struct ssl_ctx_st *ctx, bool accept_side,
		   const char *verify_host);
/* "TLSv1.3/TLS_AES_256_GCM_SHA384", or "" without TLS. */
void conn_tls_describe(const struct conn *c, char *buf, size_t len);
/* The verified client certificate's CommonName (false: none). */
bool conn_tls_peer_cn(const struct conn *c, char *out, size_t len);
/* Why the last TLS failure on c happened ("" if none). */
const char *conn_tls_error(const struct conn *c);
/* Shutdown: closes the loop handle the TLS code keeps. */
void conn_tls_cleanup(void);

/* Idempotent; frees nothing until close_cb. */
void conn_close(struct conn *c);
/* Stops reading, closes once every queued write has gone out. */
void conn_close_after_flush(struct conn *c);

static inline bool conn_is_closing(const struct conn *c)
{
	return (c->flags & CONN_F_CLOSING) != 0;
}

/*
 * TCP_NODELAY, and keepalive as configured: SO_KEEPALIVE alone leaves the
 * kernel's timings; tcp_keepidle/keepintvl/keepcnt > 0 override them.
 * tcp_user_timeout > 0 sets TCP_USER_TIMEOUT, tcp_socket_buffer > 0 both
 * SO_SNDBUF and SO_RCVBUF. Unix sockets get none of it.
 */
void conn_set_tcp_options(struct conn *c);
struct cfg;
/* The same on a bare TCP socket; returns how many options the kernel
 * refused (each is logged once per reason). */
int conn_tcp_apply(int fd, const struct cfg *cfg);

/* Peer address as text ("1.2.3.4", "::1" or "unix") and port (0 for unix). */
void conn_peer_addr(const struct conn *c, char *addr, size_t addrlen, int *port);
void conn_local_addr(const struct conn *c, char *addr, size_t addrlen, int *port);
/* The socket's file descriptor, or -1. */
int conn_fd(const struct conn *c);

#endif /* PGMUX_CONN_H */
