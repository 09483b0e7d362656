/*
 * fuzz_backend.c: the fake PostgreSQL behind fuzz_client.c (see
 * fuzz_backend.h for what it answers). Only the first bytes of each message
 * body are looked at; the rest is passed over as it arrives, so a body of
 * any size streams through a fixed buffer.
 */
#include "fuzz_backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "proto.h"
#include "proto_build.h"

#define FZB_MAX_CONNS 64
#define FZB_IN_MAX 16384 /* holds a whole startup packet (PROTO_STARTUP_MAX) */
#define FZB_PEEK 32      /* body bytes a message is judged by */
#define FZB_KEY 0x5eed
#define FZB_BIG_ROW (64 * 1024)
/* Like a real server, stop reading while this much output is unsent. */
#define FZB_OUT_HIGH (256 * 1024)

struct fzb_conn {
	int fd;              /* -1: slot free */
	bool started;        /* startup packet seen */
	bool copy_in;        /* COPY FROM STDIN in progress */
	bool close_after;    /* close once out is flushed */
	bool waiting;        /* a WAIT query is unanswered: a cancel ends it */
	uint32_t pid;        /* its BackendKeyData (the key is FZB_KEY) */
	uint8_t tx;          /* 'I', 'T' or 'E' */
	uint32_t skip;       /* body bytes of the current message still to come */
	uint8_t pend_type;   /* the message being received while skip > 0 */
	uint8_t pend_peek[FZB_PEEK];
	size_t pend_len;
	size_t in_len;
	uint8_t in[FZB_IN_MAX];
	struct proto_buf out; /* answers not yet taken by the kernel */
	size_t out_sent;      /* bytes of out already written */
};

static struct {
	int listen_fd;
	uint32_t next_pid;
	struct fzb_conn conns[FZB_MAX_CONNS];
} g_fzb = { .listen_fd = -1 };

static void fzb_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	FZ_CHECK(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
}

int fzb_listen(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int one = 1;
	size_t i;

	for (i = 0; i < FZB_MAX_CONNS; i++)
		g_fzb.conns[i].fd = -1;
	g_fzb.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	FZ_CHECK(g_fzb.listen_fd >= 0);
	setsockopt(g_fzb.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	FZ_CHECK(bind(g_fzb.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	FZ_CHECK(listen(g_fzb.listen_fd, 64) == 0);
	FZ_CHECK(getsockname(g_fzb.listen_fd, (struct sockaddr *)&sa, &len) == 0);
	fzb_nonblock(g_fzb.listen_fd);
	return ntohs(sa.sin_port);
}

size_t fzb_count(void)
{
	size_t i, n = 0;

	for (i = 0; i < FZB_MAX_CONNS; i++)
		n += g_fzb.conns[i].fd >= 0;
	return n;
}

static void fzb_close(struct fzb_conn *c)
{
	close(c->fd);
	c->fd = -1;
	proto_buf_free(&c->out);
}

static bool fzb_accept(void)
{
	bool moved = false;
	int fd;

	while ((fd = accept4(g_fzb.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct fzb_conn *c = NULL;
		size_t i;

		for (i = 0; i < FZB_MAX_CONNS && !c; i++)
			if (g_fzb.conns[i].fd < 0)
				c = &g_fzb.conns[i];
		/* pgmux never opens this many in one run (pool_size is small). */
		FZ_CHECK(c != NULL);
		memset(c, 0, offsetof(struct fzb_conn, in));
		c->fd = fd;
		c->tx = PROTO_TX_IDLE;
		proto_buf_init(&c->out, 4u << 20);
		moved = true;
	}
	FZ_CHECK(errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED);
	return moved;
}

/* ---- answers ---- */

static void fzb_ready(struct fzb_conn *c)
{
	proto_build_ready_for_query(&c->out, c->tx);
}

static void fzb_complete(struct fzb_conn *c, const char *tag)
{
	proto_build_command_complete(&c->out, tag);
}

static void fzb_login(struct fzb_conn *c)
{
	proto_build_auth(&c->out, PROTO_AUTH_OK, NULL, 0);
	proto_build_parameter_status(&c->out, "server_version", "15.0 (pgmux fuzz)");
	proto_build_parameter_status(&c->out, "client_encoding", "UTF8");
	c->pid = ++g_fzb.next_pid;
	proto_build_backend_key_data(&c->out, c->pid, FZB_KEY);
	fzb_ready(c);
}

static bool fzb_starts(const uint8_t *p, size_t n, const char *word)
{
	size_t wl = strlen(word);

	return n >= wl && strncasecmp((const char *)p, word, wl) == 0;
}

static void fzb_big_row(struct fzb_conn *c)
{
	static uint8_t zeros[FZB_BIG_ROW];

	proto_begin(&c->out, PROTO_BE_DATA_ROW);
	proto_put_u16(&c->out, 1);
	proto_put_u32(&c->out, sizeof(zeros));
	proto_put_bytes(&c->out, zeros, sizeof(zeros));
	proto_end(&c->out);
}

static void fzb_query(struct fzb_conn *c, const uint8_t *q, size_t n)
{
	if (n == 0 || q[0] == '\0') {
		proto_build_empty_query(&c->out);
	} else if (fzb_starts(q, n, "BEGIN")) {
		c->tx = PROTO_TX_IN_BLOCK;
		fzb_complete(c, "BEGIN");
	} else if (fzb_starts(q, n, "COMMIT") || fzb_starts(q, n, "ROLLBACK") ||
		   fzb_starts(q, n, "END") || fzb_starts(q, n, "DISCARD")) {
		c->tx = PROTO_TX_IDLE;
		fzb_complete(c, "COMMIT");
	} else if (fzb_starts(q, n, "FAIL")) {
		if (c->tx == PROTO_TX_IN_BLOCK)
			c->tx = PROTO_TX_FAILED;
		proto_build_error(&c->out, "ERROR", "42601", "syntax error (fake)", NULL);
	} else if (fzb_starts(q, n, "FATAL")) {
		proto_build_error(&c->out, "FATAL", "57P01", "terminating connection (fake)", NULL);
		c->close_after = true;
		return;
	} else if (fzb_starts(q, n, "DROP")) {
		c->close_after = true;
		return;
	} else if (fzb_starts(q, n, "WAIT")) {
		c->waiting = true;
		return;
	} else if (fzb_starts(q, n, "COPY")) {
		proto_begin(&c->out, PROTO_BE_COPY_IN_RESPONSE);
		proto_put_u8(&c->out, 0);
		proto_put_u16(&c->out, 0);
		proto_end(&c->out);
		c->copy_in = true;
		return;
	} else if (fzb_starts(q, n, "NOTICE")) {
		proto_build_notice(&c->out, "NOTICE", "00000", "fake notice");
		fzb_complete(c, "SELECT 0");
	} else if (fzb_starts(q, n, "BIG")) {
		fzb_big_row(c);
		fzb_complete(c, "SELECT 1");
	} else {
		fzb_complete(c, "SELECT 1");
	}
	fzb_ready(c);
}

/* During COPY FROM STDIN, as PostgreSQL: data is taken, Sync and Flush
 * are ignored, CopyDone/CopyFail end it, anything else is an error. */
static void fzb_copy_message(struct fzb_conn *c, uint8_t type)
{
	switch (type) {
	case PROTO_FE_COPY_DATA:
	case PROTO_FE_SYNC:
	case PROTO_FE_FLUSH:
		return;
	case PROTO_FE_COPY_DONE:
		fzb_complete(c, "COPY 0");
		break;
	default:
		proto_build_error(&c->out, "ERROR", "57014", "COPY from stdin failed (fake)", NULL);
		break;
	}
	c->copy_in = false;
	fzb_ready(c);
}

static void fzb_message(struct fzb_conn *c, uint8_t type, const uint8_t *peek, size_t n)
{
	if (c->copy_in) {
		fzb_copy_message(c, type);
		return;
	}
	switch (type) {
	case PROTO_FE_QUERY:
		fzb_query(c, peek, n);
		break;
	case PROTO_FE_PARSE:
		proto_begin(&c->out, PROTO_BE_PARSE_COMPLETE);
		proto_end(&c->out);
		break;
	case PROTO_FE_BIND:
		proto_begin(&c->out, PROTO_BE_BIND_COMPLETE);
		proto_end(&c->out);
		break;
	case PROTO_FE_DESCRIBE:
		proto_begin(&c->out, PROTO_BE_NO_DATA);
		proto_end(&c->out);
		break;
	case PROTO_FE_EXECUTE:
		fzb_complete(c, "SELECT 0");
		break;
	case PROTO_FE_CLOSE:
		proto_begin(&c->out, PROTO_BE_CLOSE_COMPLETE);
		proto_end(&c->out);
		break;
	case PROTO_FE_SYNC:
		fzb_ready(c);
		break;
	case PROTO_FE_FUNCTION_CALL:
		proto_begin(&c->out, PROTO_BE_FUNCTION_CALL_RESPONSE);
		proto_put_u32(&c->out, 0xffffffffu);
		proto_end(&c->out);
		fzb_ready(c);
		break;
	case PROTO_FE_TERMINATE:
		c->close_after = true;
		break;
	default:
		break; /* Flush, stray CopyData/CopyDone/CopyFail, 'p' */
	}
}

/* As PostgreSQL: a CancelRequest with the right key ends the query running
 * on that backend with 57014; there is nothing to say to the canceller. */
static void fzb_cancel(uint32_t pid, uint32_t key)
{
	size_t i;

	for (i = 0; i < FZB_MAX_CONNS; i++) {
		struct fzb_conn *c = &g_fzb.conns[i];

		if (c->fd < 0 || c->pid != pid || key != FZB_KEY || !c->waiting)
			continue;
		c->waiting = false;
		proto_build_error(&c->out, "ERROR", "57014",
				  "canceling statement due to user request", NULL);
		fzb_ready(c);
	}
}

/* ---- input ---- */

static uint32_t fzb_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* What pgmux may forward to a server once logged in. */
static bool fzb_type_valid(uint8_t type)
{
	return memchr("BCdcfDEHFPQSX", type, 13) != NULL;
}

/* Handles what in[] holds; returns bytes used. */
static size_t fzb_consume(struct fzb_conn *c)
{
	size_t pos = 0;

	while (!c->close_after && c->out.len - c->out_sent <= FZB_OUT_HIGH) {
		size_t avail = c->in_len - pos;
		const uint8_t *p = c->in + pos;
		uint32_t len;
		size_t total, peek;

		if (c->skip > 0) {
			size_t k = avail < c->skip ? avail : c->skip;

			pos += k;
			c->skip -= (uint32_t)k;
			if (c->skip > 0)
				break;
			/* Like PostgreSQL, act once the whole message is in. */
			fzb_message(c, c->pend_type, c->pend_peek, c->pend_len);
			continue;
		}
		if (!c->started) {
			/* Startup or CancelRequest: small, waited for whole. */
			if (avail < 8 || avail < fzb_be32(p))
				break;
			len = fzb_be32(p);
			FZ_CHECK(len >= 8 && len <= FZB_IN_MAX);
			if (fzb_be32(p + 4) == PROTO_SSL_REQUEST_CODE ||
			    fzb_be32(p + 4) == PROTO_GSSENC_REQUEST_CODE) {
				/* A server built without TLS (sslmode=prefer). */
				proto_put_u8(&c->out, 'N');
			} else if (fzb_be32(p + 4) == PROTO_CANCEL_REQUEST_CODE) {
				if (len == 16)
					fzb_cancel(fzb_be32(p + 8), fzb_be32(p + 12));
				c->close_after = true;
			} else {
				c->started = true;
				fzb_login(c);
			}
			pos += len;
			continue;
		}
		if (avail < PROTO_HEADER_SIZE)
			break;
		len = fzb_be32(p + 1);
		/* pgmux forwards only messages its framer accepted: anything
		 * else means pgmux lost track of where messages begin. */
		FZ_CHECK(fzb_type_valid(p[0]) && len >= 4);
		total = (size_t)len + 1;
		peek = len - 4 < FZB_PEEK ? len - 4 : FZB_PEEK;
		if (avail < PROTO_HEADER_SIZE + peek)
			break;
		if (avail >= total) {
			fzb_message(c, p[0], p + PROTO_HEADER_SIZE, peek);
			pos += total;
		} else {
			c->pend_type = p[0];
			memcpy(c->pend_peek, p + PROTO_HEADER_SIZE, peek);
			c->pend_len = peek;
			pos += avail;
			c->skip = (uint32_t)(total - avail);
		}
	}
	return pos;
}

/* Writes what the kernel takes; true if anything went (or pgmux is gone). */
static bool fzb_flush(struct fzb_conn *c)
{
	bool moved = false;

	FZ_CHECK(proto_buf_ok(&c->out));
	while (c->out_sent < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent,
				 MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			/* pgmux closed it: nothing will be read any more. */
			proto_buf_reset(&c->out);
			c->out_sent = 0;
			c->close_after = true;
			return true;
		}
		if (n <= 0)
			break;
		c->out_sent += (size_t)n;
		moved = true;
	}
	if (c->out_sent == c->out.len) {
		proto_buf_reset(&c->out);
		c->out_sent = 0;
	}
	return moved;
}

/* Handles buffered input; true if any was used. */
static bool fzb_handle(struct fzb_conn *c)
{
	size_t used = fzb_consume(c);

	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
	return used > 0;
}

/* Reads and answers until the socket is dry; false once it should close. */
static bool fzb_serve(struct fzb_conn *c, bool *moved)
{
	for (;;) {
		ssize_t n;

		*moved |= fzb_flush(c);
		if (c->in_len > 0 && !c->close_after)
			*moved |= fzb_handle(c);
		if (c->close_after || c->out.len - c->out_sent > FZB_OUT_HIGH ||
		    c->in_len == sizeof(c->in))
			break;
		n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			*moved = true;
			return false; /* pgmux closed it */
		}
		if (n < 0)
			break;
		*moved = true;
		c->in_len += (size_t)n;
	}
	*moved |= fzb_flush(c);
	return !(c->close_after && c->out.len == 0);
}

bool fzb_session_clean(uint32_t pid)
{
	size_t i;

	for (i = 0; i < FZB_MAX_CONNS; i++) {
		const struct fzb_conn *c = &g_fzb.conns[i];
		int unread = 0;

		if (c->fd < 0 || c->pid != pid)
			continue;
		/* Bytes still in the socket may complete what looks partial. */
		if (ioctl(c->fd, FIONREAD, &unread) != 0 || unread > 0)
			return true;
		return c->in_len == 0 && c->skip == 0 && !c->copy_in && !c->waiting &&
		       c->tx == PROTO_TX_IDLE;
	}
	return true; /* closed already: nothing left to misuse */
}

bool fzb_pump(void)
{
	bool moved = fzb_accept();
	size_t i;

	for (i = 0; i < FZB_MAX_CONNS; i++) {
		struct fzb_conn *c = &g_fzb.conns[i];

		if (c->fd >= 0 && !fzb_serve(c, &moved))
			fzb_close(c);
	}
	return moved;
}
