/*
 * main.c: command line, startup order and shutdown order:
 * config -> log -> pooler (auth_file, fd limit) -> listeners and signals ->
 * loop; then close every handle, free everything, and check the loop is
 * empty so a leaked handle shows up in tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "config.h"
#include "log.h"
#include "pooler.h"
#include "version.h"

static void usage(FILE *out)
{
	fprintf(out,
		"pgmux %s: a PostgreSQL connection pooler\n"
		"\n"
		"Usage: pgmux [OPTIONS] CONFIG_FILE\n"
		"\n"
		"Options:\n"
		"  -v, --verbose   more log output (repeat for even more)\n"
		"  -q, --quiet     do not log to stderr (logfile only)\n"
		"  -h, --help      show this help and exit\n"
		"  -V, --version   show the version and exit\n"
		"\n"
		"CONFIG_FILE is in PgBouncer's ini format ([databases], [users], and a\n"
		"[pgmux] or [pgbouncer] section); see etc/pgmux.ini.\n"
		"Signals: SIGINT stops at once, SIGTERM lets clients finish (up to\n"
		"shutdown_wait_timeout), SIGHUP reloads the configuration.\n",
		PGMUX_VERSION);
}

static int write_pidfile(const char *path)
{
	char buf[32];
	int fd;
	int n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static void walk_report(uv_handle_t *h, void *arg)
{
	(void)arg;
	log_error("handle still open at exit: type %s", uv_handle_type_name(h->type));
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' }, { "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },    { "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char err[1024];
	struct cfg *cfg;
	uv_loop_t loop;
	int verbose = 0;
	bool quiet = false;
	int opt;
	int rc;

	while ((opt = getopt_long(argc, argv, "vqhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'v':
			verbose++;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("pgmux %s\n", PGMUX_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}

	cfg = cfg_load(argv[optind], err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "pgmux: %s\n", err);
		return 1;
	}
	log_set_verbose(cfg->verbose > verbose ? cfg->verbose : verbose);
	if (log_open(cfg->logfile, !quiet) < 0) {
		fprintf(stderr, "pgmux: cannot open logfile %s: %s\n", cfg->logfile,
			strerror(errno));
		cfg_free(cfg);
		return 1;
	}
	/* A client vanishing mid-write must be an error code, not a signal. */
	signal(SIGPIPE, SIG_IGN);

	uv_loop_init(&loop);
	rc = pooler_init(&loop, cfg, argv[optind]);
	if (rc == 0)
		rc = pooler_start();
	if (rc == 0 && cfg->pidfile && write_pidfile(cfg->pidfile) < 0) {
		log_error("cannot write pidfile %s: %s", cfg->pidfile, strerror(errno));
		rc = -1;
	}
	if (rc == 0) {
		log_info("pgmux %s started, pid %ld", PGMUX_VERSION, (long)getpid());
		uv_run(&loop, UV_RUN_DEFAULT);
	} else {
		pooler_shutdown(false);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	if (g_pooler.cfg && g_pooler.cfg->pidfile && rc == 0)
		unlink(g_pooler.cfg->pidfile);
	if (uv_loop_close(&loop) != 0) {
		uv_walk(&loop, walk_report, NULL);
		rc = -1;
	}
	log_info("pgmux stopped");
	pooler_cleanup();
	cfg_free(g_pooler.cfg);
	log_close();
	return rc == 0 ? 0 : 1;
}
