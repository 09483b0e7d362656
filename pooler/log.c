/*
 * log.c: leveled log lines to stderr and/or the logfile, in PgBouncer's
 * format ("2026-11-22 12:00:00.123 UTC [pid] LOG message"). Owns the
 * logfile descriptor. Uses only libc, so that config.c and the unit tests
 * can link it without libuv.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* One line, prefix included. Longer messages are cut and end in "...". */
#define LOG_LINE_MAX 4096

/*
 * The log is process-wide by nature (the header's API has no handle), and
 * log.c must not depend on struct pooler, so its three settings live here
 * rather than in g_pooler. Only the loop thread touches them.
 */
static struct {
	int fd;           /* logfile, or -1 */
	bool also_stderr; /* copy lines to stderr even when a logfile is open */
	int verbose;      /* 0: up to LOG; 1: + DEBUG; 2: + NOISE */
} log_state = { .fd = -1, .also_stderr = true, .verbose = 0 };

static const char *const log_level_names[] = {
	[LOG_LVL_FATAL] = "FATAL",
	[LOG_LVL_ERROR] = "ERROR",
	[LOG_LVL_WARNING] = "WARNING",
	[LOG_LVL_LOG] = "LOG",
	[LOG_LVL_DEBUG] = "DEBUG",
	[LOG_LVL_NOISE] = "NOISE",
};

int log_open(const char *path, bool also_stderr)
{
	int fd;

	log_state.also_stderr = also_stderr;
	if (path == NULL || path[0] == '\0') {
		log_close();
		return 0;
	}

	/*
	 * Open the new file before closing the old one: if a SIGHUP reopen
	 * fails (say, the directory was removed), lines keep going to the
	 * old file instead of nowhere. 0640 because log lines name users,
	 * databases and client addresses.
	 */
	do {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;

	if (log_state.fd >= 0)
		close(log_state.fd);
	log_state.fd = fd;
	return 0;
}

void log_close(void)
{
	if (log_state.fd >= 0)
		close(log_state.fd);
	log_state.fd = -1;
}

void log_set_verbose(int verbose)
{
	log_state.verbose = verbose;
}

int log_fd(void)
{
	return log_state.fd;
}

/*
 * One write() per line, so that lines from a forked helper or a second
 * pgmux sharing the file (O_APPEND) never interleave mid-line. The loop
 * only repeats on EINTR or a short write, which a regular file hardly ever
 * produces; errors are dropped because there is nowhere left to report them.
 */
static void log_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static long g_log_pid;

/* Formats "YYYY-MM-DD HH:MM:SS.mmm UTC [pid] LEVEL " into buf; returns its length. */
static size_t log_prefix(char *buf, size_t size, enum log_level lvl)
{
	struct timespec ts;
	struct tm tm;
	size_t len;
	int n;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
		ts.tv_sec = time(NULL);
		ts.tv_nsec = 0;
	}
	if (gmtime_r(&ts.tv_sec, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	len = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	/* pgmux never forks: the pid is looked up once, not per line. */
	if (g_log_pid == 0)
		g_log_pid = (long)getpid();
	n = snprintf(buf + len, size - len, ".%03ld UTC [%ld] %s ", ts.tv_nsec / 1000000L,
		     g_log_pid, log_level_names[lvl]);
	if (n < 0)
		return len;
	len += (size_t)n;
	return len < size ? len : size - 1;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	size_t len, start, end, i;
	va_list ap;
	int n;

	if (lvl > LOG_LVL_NOISE)
		lvl = LOG_LVL_NOISE;
	if (lvl == LOG_LVL_DEBUG && log_state.verbose < 1)
		return;
	if (lvl == LOG_LVL_NOISE && log_state.verbose < 2)
		return;

	start = log_prefix(line, sizeof(line), lvl);

	/* Leave room for the "\n" that every line ends with. */
	va_start(ap, fmt);
	n = vsnprintf(line + start, sizeof(line) - start - 1, fmt, ap);
	va_end(ap);
	if (n < 0) {
		n = snprintf(line + start, sizeof(line) - start - 1, "(bad log format \"%s\")",
			     fmt);
		if (n < 0)
			n = 0;
	}
	end = start + (size_t)n;
	if (end > sizeof(line) - 2) {
		end = sizeof(line) - 2;
		memcpy(line + end - 3, "...", 3);
	}
	while (end > start && (line[end - 1] == '\n' || line[end - 1] == '\r'))
		end--;

	/*
	 * Messages quote client-supplied text (user and database names,
	 * connection strings). A newline in there must not start a fake log
	 * line, so control characters other than tab become '?'.
	 */
	for (i = start; i < end; i++) {
		unsigned char ch = (unsigned char)line[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			line[i] = '?';
	}
	line[end++] = '\n';
	len = end;

	if (log_state.fd >= 0)
		log_write_all(log_state.fd, line, len);
	if (log_state.fd < 0 || log_state.also_stderr)
		log_write_all(STDERR_FILENO, line, len);
}
