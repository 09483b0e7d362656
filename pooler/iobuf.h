/*
 * iobuf.h: fixed-size I/O buffers (pkt_buf bytes) from a free list.
 * A connection holds one only while bytes are in flight; an idle connection
 * holds none, which is what keeps an idle client in a few hundred bytes.
 * Ownership is single: a conn's read buffer, or a write request after a
 * partial write. Whoever holds it returns it with iobuf_put.
 */
#ifndef PGMUX_IOBUF_H
#define PGMUX_IOBUF_H

#include <stddef.h>
#include <stdint.h>

struct iobuf {
	uint32_t start; /* first byte not yet handled */
	uint32_t end;   /* one past the last byte read */
	struct iobuf *next_free;
	uint8_t data[];
};

/* Sets the buffer size; call once before the first iobuf_get. */
void iobuf_setup(size_t size);
size_t iobuf_size(void);
/* Never fails: aborts on out-of-memory, like every allocation in pgmux. */
struct iobuf *iobuf_get(void);
void iobuf_put(struct iobuf *b);
/* Frees the cached free buffers (shutdown). */
void iobuf_cleanup(void);

struct iobuf_stats {
	size_t used;
	size_t free;
	size_t size;
};
void iobuf_stats(struct iobuf_stats *out);

static inline size_t iobuf_len(const struct iobuf *b)
{
	return b->end - b->start;
}

#endif /* PGMUX_IOBUF_H */
