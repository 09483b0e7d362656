/*
 * fuzz_client.c: libFuzzer target over the client state machine. Each
 * input is one client connection, or two taking turns: the harness hands
 * pgmux an accepted TCP socket the way listener.c does (client_new, handle
 * init, client_accepted), writes the input's bytes into the other end in
 * chunks the input chooses, and runs the loop until nothing moves, checking
 * after every iteration that each idle server's session really is clean
 * (the fake server knows). Then it closes its ends, checks that the clients
 * are gone (a client that outlives its socket is a leak or a hang), closes
 * every server (pool_kill), checks that no libuv handle is left, and frees
 * the pools, so every input starts from the same state and a crash file
 * replays alone.
 *
 * The pooler is the real one (pooler_init with a generated config, no
 * listeners, no timers): [databases] points three pools (transaction,
 * session, statement; one server each, so two clients contend) at the
 * fake PostgreSQL in fuzz_backend.c, and one at a closed port so its
 * server launches fail at once. The auth_file has a plain, an md5 and a
 * SCRAM user; the input's first byte picks auth_type. Set PGMUX_FUZZ_LOG=1
 * (2, 3: more verbose) to see pgmux's log on stderr; it goes to /dev/null
 * otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "auth.h"
#include "auth_scram.h"
#include "client.h"
#include "config.h"
#include "fuzz_backend.h"
#include "fuzz_util.h"
#include "iobuf.h"
#include "log.h"
#include "pool.h"
#include "pooler.h"
#include "proto.h"
#include "server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Rounds (one loop iteration plus one pass of the harness) with nothing
 * moving before the system counts as settled. libuv delivers some results
 * one iteration late (a refused connect, close callbacks), hence not 1. */
#define FZ_QUIET_ROUNDS 3
/* More rounds than any honest exchange needs; more means pgmux spins. */
#define FZ_MAX_ROUNDS 20000
#define FZ_TIGHT_BUF 4096 /* socket buffer size under FZ_CLIENT_TIGHT */

/* The pools the warm flag logs a server in for (the fake-server ones). */
static const char *const fz_warm_dbs[] = { "fuzz", "sess", "stmt" };

static struct {
	uv_loop_t loop;
	int app_listen_fd;           /* accepts the harness's side of each client */
	struct sockaddr_in app_addr;
} g_fz;

/* ---- setup, once ---- */

static void fz_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	FZ_CHECK(f != NULL);
	FZ_CHECK(fputs(text, f) >= 0);
	FZ_CHECK(fclose(f) == 0);
}

/* A SCRAM secret with few iterations: PBKDF2 runs on every cleartext
 * login of this user, and 4096 rounds would dominate the run time. */
static void fz_scram_secret(char *out, size_t outcap)
{
	static const uint8_t salt[16] = "pgmux-fuzz-salt";
	struct scram_secret sec;
	size_t len;

	FZ_CHECK(scram_secret_from_password("scrampass", salt, sizeof(salt), 16, &sec) ==
		 SCRAM_OK);
	FZ_CHECK(scram_secret_format(&sec, out, outcap, &len) == SCRAM_OK);
}

/*
 * Writes the config and auth_file into a fresh temporary directory, loads
 * them, and removes the directory: pgmux keeps both in memory, and RELOAD
 * is an admin command the fuzzed console user ("stats") may not run.
 */
static void fz_load_config(int backend_port)
{
	char dir[] = "/tmp/pgmux-fuzz-XXXXXX";
	char ini_path[64], auth_path[64], secret[256], text[2048], err[512];
	struct cfg *cfg;

	FZ_CHECK(mkdtemp(dir) != NULL);
	snprintf(ini_path, sizeof(ini_path), "%s/pgmux.ini", dir);
	snprintf(auth_path, sizeof(auth_path), "%s/userlist.txt", dir);
	fz_scram_secret(secret, sizeof(secret));
	snprintf(text, sizeof(text),
		 "\"fuzz\" \"fuzz\"\n"
		 "\"md5user\" \"md509c85c4b8a32ea4ee667388a4f515933\"\n" /* password "pw" */
		 "\"scramuser\" \"%s\"\n"
		 "\"stats\" \"stats\"\n",
		 secret);
	fz_write_file(auth_path, text);
	snprintf(text, sizeof(text),
		 "[databases]\n"
		 "fuzz = host=127.0.0.1 port=%d user=fuzz pool_mode=transaction min_pool_size=1\n"
		 "sess = host=127.0.0.1 port=%d user=fuzz pool_mode=session min_pool_size=1\n"
		 "stmt = host=127.0.0.1 port=%d user=fuzz pool_mode=statement min_pool_size=1\n"
		 "down = host=127.0.0.1 port=1 user=fuzz\n"
		 "[pgmux]\n"
		 "listen_addr = 127.0.0.1\n"
		 "unix_socket_dir =\n"
		 "auth_type = trust\n"
		 "auth_file = %s\n"
		 "stats_users = stats\n"
		 "default_pool_size = 1\n"
		 "max_client_conn = 10\n"
		 "pkt_buf = 4096\n",
		 backend_port, backend_port, backend_port, auth_path);
	fz_write_file(ini_path, text);
	cfg = cfg_load(ini_path, err, sizeof(err));
	if (!cfg)
		fprintf(stderr, "fuzz_client: %s\n", err);
	FZ_CHECK(cfg != NULL);
	/* The userlist is read by pooler_init, so the files go after it. */
	FZ_CHECK(pooler_init(&g_fz.loop, cfg, ini_path) == 0);
	unlink(ini_path);
	unlink(auth_path);
	rmdir(dir);
}

static void fz_listen_app(void)
{
	socklen_t len = sizeof(g_fz.app_addr);

	g_fz.app_listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	FZ_CHECK(g_fz.app_listen_fd >= 0);
	memset(&g_fz.app_addr, 0, sizeof(g_fz.app_addr));
	g_fz.app_addr.sin_family = AF_INET;
	g_fz.app_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	FZ_CHECK(bind(g_fz.app_listen_fd, (struct sockaddr *)&g_fz.app_addr,
		      sizeof(g_fz.app_addr)) == 0);
	FZ_CHECK(listen(g_fz.app_listen_fd, 8) == 0);
	FZ_CHECK(getsockname(g_fz.app_listen_fd, (struct sockaddr *)&g_fz.app_addr, &len) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *show_log = getenv("PGMUX_FUZZ_LOG");

	(void)argc;
	(void)argv;
	/* As main.c: a client vanishing mid-write is an error code, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	/* PGMUX_FUZZ_LOG=1 shows pgmux's log, 2 with DEBUG, 3 with NOISE. */
	if (show_log && show_log[0] >= '1' && show_log[0] <= '3')
		log_set_verbose(show_log[0] - '1');
	else
		FZ_CHECK(log_open("/dev/null", false) == 0);
	FZ_CHECK(uv_loop_init(&g_fz.loop) == 0);
	fz_load_config(fzb_listen());
	fz_listen_app();
	/* PBKDF2 and SCRAM derivation run inline, not on the thread pool:
	 * the same input then always takes the same path. */
	auth_jobs_inline(true);
	return 0;
}

/* ---- running the loop ---- */

/*
 * The harness's end of one client connection and what is left to write
 * into it. With FZ_CLIENT_TWO an input drives two of them.
 */
struct fz_peer {
	int fd;          /* -1 until connected, and after close */
	uint8_t *buf;    /* the bytes to send (a copy: cancel keys are patched in) */
	size_t len, off; /* off: bytes sent so far */
	bool startup;    /* still in the untyped startup packets (message chunking) */
	bool done;       /* nothing more will be sent */
	uint32_t id;     /* the pgmux client's id */
};

#define FZ_MAX_PEERS 2

struct fz_run {
	struct fz_peer peers[FZ_MAX_PEERS];
	size_t npeers;
	uint32_t rng; /* chunk sizes; 0: all at once, 1: one message per write */
	bool tight;
};

/* Reads and drops whatever pgmux sent the client; true if anything came. */
static bool fz_drain(const struct fz_peer *p)
{
	uint8_t buf[16384];
	bool moved = false;

	if (p->fd < 0)
		return false;
	while (recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		moved = true;
	return moved;
}

/* What pgmux's state looks like from outside: any change is progress. */
struct fz_state {
	uint32_t clients, servers;
	size_t bufs, backends;
};

static struct fz_state fz_state_now(void)
{
	struct iobuf_stats st;
	struct fz_state s;

	iobuf_stats(&st);
	s.clients = g_pooler.client_count;
	s.servers = g_pooler.server_count;
	s.bufs = st.used;
	s.backends = fzb_count();
	return s;
}

/*
 * The pooler's first duty: a server in the idle list is one the next
 * client may have. The fake server knows whether that is true (nothing
 * half sent, no transaction, no COPY, no unanswered query); once pgmux has
 * nothing queued for it, the two must agree.
 */
static void fz_check_idle_servers(void)
{
	struct pool *p, *tmp;

	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		const struct list_node *it;

		for (it = p->idle_servers.head.next; it != &p->idle_servers.head; it = it->next) {
			const struct server *s = container_of(it, const struct server, node);

			if (s->conn.pending_writes > 0 || fzb_session_clean(s->be_pid))
				continue;
			fprintf(stderr, "fuzz_client: S-%u is idle in pool %s@%s but its session "
				"is not clean (partial message, transaction, COPY or an "
				"unanswered query)\n", s->id, p->user_name, p->db_name);
			abort();
		}
	}
}

/* One loop iteration and one pass of the harness; true if anything moved. */
static bool fz_round(const struct fz_run *run)
{
	struct fz_state before = fz_state_now(), after;
	bool moved;
	size_t i;

	uv_run(&g_fz.loop, UV_RUN_NOWAIT);
	moved = fzb_pump();
	fz_check_idle_servers();
	for (i = 0; run && i < run->npeers; i++)
		moved |= fz_drain(&run->peers[i]);
	after = fz_state_now();
	return moved || memcmp(&before, &after, sizeof(before)) != 0;
}

/*
 * Runs rounds until `done` holds (when given) or, without one, until
 * FZ_QUIET_ROUNDS rounds in a row move nothing. Returns whether anything
 * moved. A system that never settles is a busy loop in pgmux (or a client
 * that never goes away): abort so that the fuzzer reports the input.
 */
static bool fz_settle(const struct fz_run *run, bool (*done)(void))
{
	bool any = false;
	int quiet = 0;
	int rounds;

	for (rounds = 0; rounds < FZ_MAX_ROUNDS; rounds++) {
		bool moved = fz_round(run);

		any |= moved;
		quiet = moved ? 0 : quiet + 1;
		if (done ? done() : quiet >= FZ_QUIET_ROUNDS)
			return any;
	}
	fprintf(stderr, "fuzz_client: pgmux did not settle in %d rounds (%u clients, %u servers)\n",
		FZ_MAX_ROUNDS, g_pooler.client_count, g_pooler.server_count);
	abort();
}

/* ---- one input ---- */

static void fz_set_auth(uint8_t flags)
{
	static const enum cfg_auth_type types[] = { CFG_AUTH_TRUST, CFG_AUTH_PLAIN, CFG_AUTH_MD5,
						    CFG_AUTH_SCRAM };

	/* The admin SET path changes auth_type the same way: one field of
	 * the live config, read at each login. */
	g_pooler.cfg->auth_type = types[flags & FZ_CLIENT_AUTH_MASK];
}

static bool fz_pools_warm(void)
{
	size_t i;

	for (i = 0; i < sizeof(fz_warm_dbs) / sizeof(fz_warm_dbs[0]); i++) {
		const struct cfg_db *db = cfg_find_db(g_pooler.cfg, fz_warm_dbs[i]);
		const struct pool *p = pool_get(db, fz_warm_dbs[i], db->user);

		if (p->idle_servers.count == 0)
			return false;
	}
	return true;
}

/* Logs one server in for each fake-server pool, as the janitor does for
 * min_pool_size, so the client finds its pool's welcome known and a server
 * idle: the path every client but a pool's first one takes. */
static void fz_warm(void)
{
	size_t i;

	for (i = 0; i < sizeof(fz_warm_dbs) / sizeof(fz_warm_dbs[0]); i++) {
		const struct cfg_db *db = cfg_find_db(g_pooler.cfg, fz_warm_dbs[i]);

		pool_maintain(pool_get(db, fz_warm_dbs[i], db->user), uv_now(&g_fz.loop));
	}
	fz_settle(NULL, fz_pools_warm);
}

static void fz_set_bufs(int fd, int size)
{
	FZ_CHECK(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) == 0);
	FZ_CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) == 0);
}

/*
 * A loopback connection, non-blocking from the start: libFuzzer's -timeout
 * alarm interrupts blocking calls (its handler is not SA_RESTART), and an
 * interrupted connect cannot simply be repeated.
 */
static int fz_dial(bool tight)
{
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	FZ_CHECK(fd >= 0);
	if (tight)
		fz_set_bufs(fd, FZ_TIGHT_BUF);
	if (connect(fd, (struct sockaddr *)&g_fz.app_addr, sizeof(g_fz.app_addr)) != 0) {
		FZ_CHECK(errno == EINPROGRESS);
		pfd.fd = fd;
		pfd.events = POLLOUT;
		while (poll(&pfd, 1, -1) < 0)
			FZ_CHECK(errno == EINTR);
		FZ_CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0);
		if (err != 0)
			fprintf(stderr, "fuzz_client: connect: %s\n", strerror(err));
		FZ_CHECK(err == 0);
	}
	return fd;
}

/*
 * Connects the harness's end and hands the accepted end to pgmux exactly
 * as listener_on_connection does after uv_accept.
 */
static void fz_connect(struct fz_peer *p, bool tight)
{
	struct client *c;
	int fd;

	p->fd = fz_dial(tight);
	while ((fd = accept4(g_fz.app_listen_fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		FZ_CHECK(errno == EINTR);
	if (tight)
		fz_set_bufs(fd, FZ_TIGHT_BUF);

	c = client_new();
	p->id = c->id;
	FZ_CHECK(uv_tcp_init(&g_fz.loop, &c->conn.h.tcp) == 0);
	FZ_CHECK(uv_tcp_open(&c->conn.h.tcp, fd) == 0);
	client_accepted(c);
}

static uint32_t fz_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * The length of the message at p, as a client that writes one message per
 * send would cut the stream: untyped packets while *startup holds (it ends
 * after a StartupMessage), typed ones after. A length that makes no sense
 * takes the rest.
 */
static size_t fz_message_len(const uint8_t *p, size_t n, bool *startup)
{
	size_t len;

	if (*startup) {
		uint32_t code;

		if (n < 8)
			return n;
		len = fz_be32(p);
		code = fz_be32(p + 4);
		if (code != PROTO_SSL_REQUEST_CODE && code != PROTO_GSSENC_REQUEST_CODE &&
		    code != PROTO_CANCEL_REQUEST_CODE)
			*startup = false;
	} else {
		if (n < PROTO_HEADER_SIZE)
			return n;
		len = (size_t)fz_be32(p + 1) + 1;
	}
	return len == 0 || len > n ? n : len;
}

/* The next chunk to write to p (see struct fz_run for the modes). */
static size_t fz_chunk(struct fz_run *run, struct fz_peer *p)
{
	size_t left = p->len - p->off;
	size_t k;

	if (run->rng == 0)
		return left;
	if (run->rng == 1)
		return fz_message_len(p->buf + p->off, left, &p->startup);
	run->rng ^= run->rng << 13;
	run->rng ^= run->rng >> 17;
	run->rng ^= run->rng << 5;
	k = 1 + (run->rng % 256);
	return k < left ? k : left;
}

/*
 * A CancelRequest needs the key pgmux gave the client it cancels, which no
 * input can know. So a CancelRequest with pid and key 0 about to be sent
 * gets the other client's key (the one pgmux is holding for it right now).
 */
static void fz_patch_cancel(struct fz_run *run, struct fz_peer *p, size_t k)
{
	static const uint8_t zero_cancel[16] = { 0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e };
	const struct fz_peer *other = &run->peers[p == &run->peers[0] ? 1 : 0];
	struct client *c, *tmp;
	size_t i;

	if (run->npeers < 2)
		return;
	HASH_ITER(hh, g_pooler.by_cancel_key, c, tmp)
	{
		if (c->id != other->id)
			continue;
		for (i = p->off; i < p->off + k && i + 16 <= p->len; i++) {
			uint32_t v[2] = { htonl(c->cancel_pid), htonl(c->cancel_key) };

			if (memcmp(p->buf + i, zero_cancel, sizeof(zero_cancel)) == 0)
				memcpy(p->buf + i + 8, v, sizeof(v));
		}
	}
}

/*
 * Writes the next chunk of p, connecting first if needed, and lets pgmux
 * settle so that the chunk boundary is a read boundary. Marks p done when
 * everything is sent or pgmux stopped taking bytes: it closed the client,
 * or stopped reading it and nothing that could resume it is moving.
 */
static void fz_feed_one(struct fz_run *run, struct fz_peer *p)
{
	size_t k;
	ssize_t w;

	if (p->fd < 0)
		fz_connect(p, run->tight);
	if (p->off == p->len) {
		p->done = true;
		return;
	}
	k = fz_chunk(run, p);
	fz_patch_cancel(run, p, k);
	w = send(p->fd, p->buf + p->off, k, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w > 0) {
		p->off += (size_t)w;
		fz_settle(run, NULL);
	} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		p->done = !fz_settle(run, NULL);
	} else {
		p->done = true;
	}
}

/* Alternates chunks between the clients until each is done. */
static void fz_feed(struct fz_run *run)
{
	bool more = true;
	size_t i;

	while (more) {
		more = false;
		for (i = 0; i < run->npeers; i++) {
			if (!run->peers[i].done)
				fz_feed_one(run, &run->peers[i]);
			more |= !run->peers[i].done;
		}
	}
}

static bool fz_no_clients(void)
{
	return g_pooler.client_count == 0;
}

/* Every server closed and every handle (cancel connections too) gone. */
static bool fz_all_closed(void)
{
	return g_pooler.server_count == 0 && fzb_count() == 0 && !uv_loop_alive(&g_fz.loop);
}

static void fz_count_handle(uv_handle_t *h, void *arg)
{
	(void)h;
	(*(size_t *)arg)++;
}

/* Back to the state LLVMFuzzerInitialize left: no client, server or pool. */
static void fz_reset(void)
{
	struct iobuf_stats st;
	size_t handles = 0;

	pool_kill(NULL);
	fz_settle(NULL, fz_all_closed);
	uv_walk(&g_fz.loop, fz_count_handle, &handles);
	FZ_CHECK(handles == 0);
	FZ_CHECK(list_empty(&g_pooler.login_clients) && list_empty(&g_pooler.admin_clients));
	FZ_CHECK(g_pooler.by_cancel_key == NULL);
	iobuf_stats(&st);
	FZ_CHECK(st.used == 0);
	pool_free_all();
}

/* Splits the stream between the clients: with FZ_CLIENT_TWO, a 2-byte
 * length for the first one's share, the second gets the rest. */
static void fz_plan(struct fz_run *run, struct fz_in *in, uint8_t flags)
{
	size_t i;

	memset(run, 0, sizeof(*run));
	run->npeers = (flags & FZ_CLIENT_TWO) ? 2 : 1;
	run->tight = (flags & FZ_CLIENT_TIGHT) != 0;
	for (i = 0; i < run->npeers; i++) {
		struct fz_peer *p = &run->peers[i];
		const uint8_t *bytes;

		p->len = i + 1 < run->npeers ? fz_part(in, &bytes) : fz_rest(in, &bytes);
		p->buf = fz_dup(bytes, p->len);
		p->fd = -1;
		p->startup = true;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_run run;
	struct fz_in in;
	uint8_t flags, seed;
	size_t i;

	fz_in_init(&in, data, size);
	flags = fz_u8(&in);
	seed = fz_u8(&in);
	fz_plan(&run, &in, flags);
	/* Spread a small seed over the bits; 0 and 1 keep their meaning. */
	run.rng = seed > 1 ? seed * 2654435761u : seed;

	fz_set_auth(flags);
	if (flags & FZ_CLIENT_WARM)
		fz_warm();
	fz_feed(&run);
	fz_settle(&run, NULL);
	/* The applications hang up: pgmux must notice and free the clients.
	 * (ENOTCONN when pgmux reset a connection already.) */
	for (i = 0; i < run.npeers; i++)
		(void)shutdown(run.peers[i].fd, SHUT_WR);
	fz_settle(&run, fz_no_clients);
	for (i = 0; i < run.npeers; i++) {
		close(run.peers[i].fd);
		free(run.peers[i].buf);
	}
	fz_reset();
	return 0;
}
