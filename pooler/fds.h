/*
 * fds.h: the descriptor registry. Every descriptor pgmux opens is entered
 * here with its kind and owner when it is created and removed when it is
 * closed, so SHOW FDS and SHOW FD_USAGE are read from the registry, and the
 * difference between it and /proc/self/fd ("unaccounted") is a bug to see.
 */
#ifndef PGMUX_FDS_H
#define PGMUX_FDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fds_kind {
	FDS_FREE = 0,
	FDS_LISTENER, /* a listening socket (console and metrics included) */
	FDS_CLIENT,   /* a client connection before or after login */
	FDS_SERVER,   /* a connection to PostgreSQL */
	FDS_ADMIN,    /* a logged-in console client, or a metrics scrape */
	FDS_CANCEL,   /* a short-lived connection carrying a CancelRequest */
	FDS_INTERNAL, /* the loop, its wakeup and signal descriptors, the log file */
	FDS_NKINDS,
};

/* Descriptors kept free for the admin console when clients hit the limit. */
#define FDS_RESERVED 8

struct fds_entry {
	uint8_t kind;        /* enum fds_kind */
	const void *owner;   /* struct client / server / listener, or NULL */
	uint64_t since_us;   /* monotonic time it was registered */
};

/* Sizes the table for the current RLIMIT_NOFILE soft limit. */
void fds_init(void);
void fds_cleanup(void);
void fds_track(int fd, enum fds_kind kind, const void *owner);
void fds_untrack(int fd);
void fds_set_kind(int fd, enum fds_kind kind);
/* Registers every open descriptor not yet known as FDS_INTERNAL, with the
 * target /proc/self/fd shows for it as its label (startup, log reopen). */
void fds_adopt_internal(void);

const char *fds_kind_str(enum fds_kind k);
uint32_t fds_count(enum fds_kind k);
uint32_t fds_tracked(void);
/* The soft limit at startup, which admission is measured against. */
uint64_t fds_limit(void);
/* The table's size (the soft limit, or more when descriptors were
 * inherited above it) and an entry, or NULL. */
size_t fds_capacity(void);
const struct fds_entry *fds_get(int fd);
/* The label of an internal descriptor ("anon_inode:[eventpoll]", ...). */
const char *fds_label(int fd);

/* The true number of open descriptors, from /proc/self/fd; -1 on error. */
int fds_count_open(void);
struct fds_limits {
	uint64_t soft;
	uint64_t hard;
};
void fds_limits(struct fds_limits *out);

/*
 * Admission: whether one more client may be accepted. `for_admin` asks for
 * the reserve too. Returns false when the registry is within the reserve
 * (or, for the console, within 2 of the limit).
 */
bool fds_client_room(bool for_admin);

/* Counters shown by SHOW FD_USAGE; monotonic. */
struct fds_counters {
	uint64_t emfile;  /* accept() failed with EMFILE/ENFILE */
	uint64_t refused; /* clients refused with 53300 (fds or max_client_conn) */
};
extern struct fds_counters g_fds_counters;

#endif /* PGMUX_FDS_H */
