/*
 * fds.c: the descriptor registry behind fds.h. A flat table indexed by
 * descriptor number: registering and removing cost one store each, so the
 * hot paths (accept, connect, close) pay nothing noticeable for exact
 * accounting. Only SHOW FDS / FD_USAGE read /proc, and only to count.
 */
#include "fds.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "util.h"

#define FDS_LABEL_MAX 64

struct fds_internal_label {
	int fd;
	char label[FDS_LABEL_MAX];
};

static struct {
	struct fds_entry *table;
	size_t cap;      /* table size: the soft limit, or more for inherited descriptors */
	uint64_t limit;  /* the soft limit at startup */
	uint32_t count[FDS_NKINDS];
	uint32_t tracked;
	struct fds_internal_label labels[32];
	size_t nlabels;
} g_fds;

struct fds_counters g_fds_counters;

const char *fds_kind_str(enum fds_kind k)
{
	switch (k) {
	case FDS_FREE:
		return "free";
	case FDS_LISTENER:
		return "listener";
	case FDS_CLIENT:
		return "client";
	case FDS_SERVER:
		return "server";
	case FDS_ADMIN:
		return "admin";
	case FDS_CANCEL:
		return "cancel";
	case FDS_INTERNAL:
		return "internal";
	case FDS_NKINDS:
		break;
	}
	return "unknown";
}

void fds_limits(struct fds_limits *out)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		out->soft = 0;
		out->hard = 0;
		return;
	}
	out->soft = rl.rlim_cur;
	out->hard = rl.rlim_max;
}

/* The highest descriptor number open now (inherited ones can lie above a
 * lowered soft limit), or -1. */
static int fds_highest_open(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int high = -1;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		int fd = de->d_name[0] == '.' ? -1 : atoi(de->d_name);

		if (fd > high && fd != dirfd(d))
			high = fd;
	}
	closedir(d);
	return high;
}

void fds_init(void)
{
	struct fds_limits lim;
	int high = fds_highest_open();

	fds_limits(&lim);
	/* The soft limit bounds every descriptor number we can get, except
	 * ones inherited before it was lowered. */
	g_fds.cap = lim.soft > 0 && lim.soft < (1u << 24) ? (size_t)lim.soft : 1024;
	g_fds.limit = g_fds.cap;
	if (high >= 0 && (size_t)high >= g_fds.cap)
		g_fds.cap = (size_t)high + 1;
	g_fds.table = xcalloc(g_fds.cap, sizeof(*g_fds.table));
}

void fds_cleanup(void)
{
	free(g_fds.table);
	memset(&g_fds, 0, sizeof(g_fds));
}

void fds_track(int fd, enum fds_kind kind, const void *owner)
{
	struct fds_entry *e;

	if (fd < 0 || (size_t)fd >= g_fds.cap)
		return;
	e = &g_fds.table[fd];
	if (e->kind != FDS_FREE)
		fds_untrack(fd);
	e->kind = (uint8_t)kind;
	e->owner = owner;
	e->since_us = util_now_us();
	g_fds.count[kind]++;
	g_fds.tracked++;
}

static void fds_forget_label(int fd)
{
	size_t i;

	for (i = 0; i < g_fds.nlabels; i++) {
		if (g_fds.labels[i].fd == fd) {
			g_fds.labels[i] = g_fds.labels[--g_fds.nlabels];
			return;
		}
	}
}

void fds_untrack(int fd)
{
	struct fds_entry *e;

	if (fd < 0 || (size_t)fd >= g_fds.cap)
		return;
	e = &g_fds.table[fd];
	if (e->kind == FDS_FREE)
		return;
	if (e->kind == FDS_INTERNAL)
		fds_forget_label(fd);
	g_fds.count[e->kind]--;
	g_fds.tracked--;
	e->kind = FDS_FREE;
	e->owner = NULL;
}

void fds_set_kind(int fd, enum fds_kind kind)
{
	struct fds_entry *e;

	if (fd < 0 || (size_t)fd >= g_fds.cap)
		return;
	e = &g_fds.table[fd];
	if (e->kind == FDS_FREE)
		return;
	g_fds.count[e->kind]--;
	e->kind = (uint8_t)kind;
	g_fds.count[kind]++;
}

void fds_adopt_internal(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int self;

	if (!d)
		return;
	self = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		char path[64];
		char target[FDS_LABEL_MAX];
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		if (fd == self || fd < 0 || (size_t)fd >= g_fds.cap ||
		    g_fds.table[fd].kind != FDS_FREE)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		fds_track(fd, FDS_INTERNAL, NULL);
		if (g_fds.nlabels < sizeof(g_fds.labels) / sizeof(g_fds.labels[0])) {
			g_fds.labels[g_fds.nlabels].fd = fd;
			util_strlcpy(g_fds.labels[g_fds.nlabels].label, target, FDS_LABEL_MAX);
			g_fds.nlabels++;
		}
	}
	closedir(d);
}

const char *fds_label(int fd)
{
	size_t i;

	for (i = 0; i < g_fds.nlabels; i++) {
		if (g_fds.labels[i].fd == fd)
			return g_fds.labels[i].label;
	}
	return "";
}

uint32_t fds_count(enum fds_kind k)
{
	return k < FDS_NKINDS ? g_fds.count[k] : 0;
}

uint32_t fds_tracked(void)
{
	return g_fds.tracked;
}

size_t fds_capacity(void)
{
	return g_fds.cap;
}

uint64_t fds_limit(void)
{
	return g_fds.limit;
}

const struct fds_entry *fds_get(int fd)
{
	if (fd < 0 || (size_t)fd >= g_fds.cap || g_fds.table[fd].kind == FDS_FREE)
		return NULL;
	return &g_fds.table[fd];
}

int fds_count_open(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

bool fds_client_room(bool for_admin)
{
	uint64_t limit = g_fds.limit;
	uint64_t keep = for_admin ? 2 : FDS_RESERVED;

	return (uint64_t)g_fds.tracked + keep < limit;
}
