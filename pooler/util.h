/*
 * util.h: small helpers used everywhere: allocation that aborts on OOM,
 * monotonic time, bounded string copies.
 */
#ifndef PGMUX_UTIL_H
#define PGMUX_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *old, size_t n);
char *xstrdup(const char *s);
/* Monotonic microseconds (libuv's hrtime / 1000). */
uint64_t util_now_us(void);
/* Wall-clock microseconds since the epoch. */
uint64_t util_wall_us(void);
/* Copies with truncation; always NUL-terminates when cap > 0. */
void util_strlcpy(char *dst, const char *src, size_t cap);

#endif /* PGMUX_UTIL_H */
