/*
 * idle_clients: open many idle libpq connections to a pooler and hold them.
 *
 * Purpose: bench/bench.sh measures a pooler's memory per idle client and
 * the time (and pooler CPU) of a burst of logins. This program opens N
 * connections asynchronously (PQconnectStart/PQconnectPoll driven by
 * poll()), keeping at most --inflight logins in progress at once, then
 * prints a result line and "READY <connected>" on stdout and keeps every
 * connection open, without sending anything, until SIGTERM/SIGINT or
 * until --hold seconds have passed.
 *
 * Usage: idle_clients -n COUNT [--inflight K] [--hold SECS] CONNINFO
 *   CONNINFO is a libpq connection string ("host=127.0.0.1 port=6432 ...");
 *   the password may come from it or from PGPASSWORD as usual.
 *
 * stdout (for scripts):
 *   RESULT connected=C failed=F elapsed_s=S client_cpu_s=U
 *   (client_cpu_s: this process's user+system CPU for the logins)
 *   READY C
 *   ...and, after the signal, "CLOSED C".
 * stderr: the first connection error, if any, and a human summary.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

#include <libpq-fe.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s -n COUNT [--inflight K] [--hold SECS] CONNINFO\n"
		"  -n COUNT        connections to open (required)\n"
		"  --inflight K    logins in progress at once (default 200)\n"
		"  --hold SECS     release everything after SECS (default 600)\n",
		argv0);
}

/* Parses a positive int; exits with a message on anything else. */
static int parse_pos_int(const char *what, const char *s)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v <= 0 || v > 10000000) {
		fprintf(stderr, "idle_clients: bad %s: '%s'\n", what, s);
		exit(2);
	}
	return (int)v;
}

/* One login in progress: which connection, and what PQconnectPoll last asked for. */
struct pending {
	int idx;
	PostgresPollingStatusType want;
};

/* Raise the soft fd limit to the hard one: we need COUNT sockets. */
static void raise_nofile(int needed)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)needed + 16 > rl.rlim_cur)
		fprintf(stderr, "idle_clients: warning: fd limit %llu < %d connections needed\n",
			(unsigned long long)rl.rlim_cur, needed);
}

int main(int argc, char **argv)
{
	int count = 0, inflight = 200, hold = 600;
	const char *conninfo = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			count = parse_pos_int("-n", argv[++i]);
		} else if (strcmp(argv[i], "--inflight") == 0 && i + 1 < argc) {
			inflight = parse_pos_int("--inflight", argv[++i]);
		} else if (strcmp(argv[i], "--hold") == 0 && i + 1 < argc) {
			hold = parse_pos_int("--hold", argv[++i]);
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(argv[0]);
			return 0;
		} else if (argv[i][0] != '-' && conninfo == NULL) {
			conninfo = argv[i];
		} else {
			usage(argv[0]);
			return 2;
		}
	}
	if (count == 0 || conninfo == NULL) {
		usage(argv[0]);
		return 2;
	}
	if (inflight > count)
		inflight = count;

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	raise_nofile(count);

	PGconn **conns = calloc((size_t)count, sizeof *conns);
	struct pending *pend = calloc((size_t)inflight, sizeof *pend);
	struct pollfd *pfds = calloc((size_t)inflight, sizeof *pfds);
	if (conns == NULL || pend == NULL || pfds == NULL) {
		fprintf(stderr, "idle_clients: out of memory\n");
		return 1;
	}

	int next = 0;       /* next connection index to start */
	int npend = 0;      /* logins in progress, pend[0..npend) */
	int connected = 0, failed = 0;
	char first_error[512] = "";
	double t0 = now_s();

	while ((next < count || npend > 0) && !stop_requested) {
		/* Top up the in-flight window. A start that fails at once counts as failed. */
		while (next < count && npend < inflight) {
			PGconn *c = PQconnectStart(conninfo);
			int idx = next++;
			if (c == NULL || PQstatus(c) == CONNECTION_BAD) {
				failed++;
				if (first_error[0] == '\0')
					snprintf(first_error, sizeof first_error, "%s",
						 c ? PQerrorMessage(c) : "PQconnectStart: out of memory");
				PQfinish(c);
				continue;
			}
			conns[idx] = c;
			/* libpq: act as if PQconnectPoll had returned PGRES_POLLING_WRITING. */
			pend[npend].idx = idx;
			pend[npend].want = PGRES_POLLING_WRITING;
			npend++;
		}
		if (npend == 0)
			break;

		for (int i = 0; i < npend; i++) {
			/* The socket can change between calls (e.g. next address tried). */
			pfds[i].fd = PQsocket(conns[pend[i].idx]);
			pfds[i].events = pend[i].want == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			pfds[i].revents = 0;
		}
		int rc = poll(pfds, (nfds_t)npend, 1000);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			perror("idle_clients: poll");
			return 1;
		}
		if (rc == 0)
			continue;

		/* Advance every ready login; compact the pending array as logins finish. */
		int keep = 0;
		for (int i = 0; i < npend; i++) {
			struct pending p = pend[i];
			if (pfds[i].revents != 0) {
				PGconn *c = conns[p.idx];
				p.want = PQconnectPoll(c);
				if (p.want == PGRES_POLLING_OK) {
					connected++;
					continue;
				}
				if (p.want == PGRES_POLLING_FAILED) {
					failed++;
					if (first_error[0] == '\0')
						snprintf(first_error, sizeof first_error, "%s", PQerrorMessage(c));
					PQfinish(c);
					conns[p.idx] = NULL;
					continue;
				}
			}
			pend[keep++] = p;
		}
		npend = keep;
	}
	double elapsed = now_s() - t0;
	struct rusage ru;
	double client_cpu = 0;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		client_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
			     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;

	/* Logins interrupted by a signal are neither connected nor failed: drop them. */
	for (int i = 0; i < npend; i++) {
		PQfinish(conns[pend[i].idx]);
		conns[pend[i].idx] = NULL;
	}

	if (first_error[0] != '\0') {
		size_t n = strlen(first_error);
		while (n > 0 && (first_error[n - 1] == '\n' || first_error[n - 1] == ' '))
			first_error[--n] = '\0';
		fprintf(stderr, "idle_clients: first error: %s\n", first_error);
	}
	fprintf(stderr, "idle_clients: %d connected, %d failed in %.3f s (%.0f logins/s), %.3f s client CPU\n",
		connected, failed, elapsed, elapsed > 0 ? connected / elapsed : 0.0, client_cpu);
	printf("RESULT connected=%d failed=%d elapsed_s=%.3f client_cpu_s=%.3f\n",
	       connected, failed, elapsed, client_cpu);
	printf("READY %d\n", connected);
	fflush(stdout);

	/* Hold the connections open, idle, until told to stop or the hold time passes. */
	double deadline = now_s() + hold;
	while (!stop_requested) {
		double left = deadline - now_s();
		if (left <= 0)
			break;
		/* Bounded sleep so a signal that lands just before poll() is seen soon. */
		int ms = left > 0.2 ? 200 : (int)(left * 1000) + 1;
		(void)poll(NULL, 0, ms);
	}

	int closed = 0;
	for (int i = 0; i < count; i++) {
		if (conns[i] != NULL) {
			PQfinish(conns[i]);
			closed++;
		}
	}
	printf("CLOSED %d\n", closed);
	fflush(stdout);
	free(conns);
	free(pend);
	free(pfds);
	return failed > 0 ? 1 : 0;
}
