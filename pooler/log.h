/*
 * log.h: leveled logging to stderr and/or the logfile. Every line carries a
 * timestamp, the pid and a level; connection-scoped lines also say who
 * (client address, database, user) via the caller's prefix.
 */
#ifndef PGMUX_LOG_H
#define PGMUX_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LVL_FATAL,
	LOG_LVL_ERROR,
	LOG_LVL_WARNING,
	LOG_LVL_LOG,   /* normal operational messages */
	LOG_LVL_DEBUG, /* verbose >= 1 */
	LOG_LVL_NOISE, /* verbose >= 2 */
};

/* Opens (or reopens, for SIGHUP) the logfile; NULL or "" logs to stderr only.
 * Returns 0 or -errno. */
int log_open(const char *path, bool also_stderr);
void log_close(void);
void log_set_verbose(int verbose);
/* The log file's descriptor, or -1 (for fd accounting). */
int log_fd(void);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_fatal(...) log_msg(LOG_LVL_FATAL, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_LOG, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_noise(...) log_msg(LOG_LVL_NOISE, __VA_ARGS__)

#endif /* PGMUX_LOG_H */
