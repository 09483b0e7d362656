/*
 * iobuf.c: the free list behind iobuf.h. Buffers are recycled rather than
 * freed so a busy pooler does no malloc per read; the cache is capped so a
 * burst does not pin memory forever.
 */
#include "iobuf.h"

#include <stdlib.h>

#include "util.h"

#define IOBUF_FREE_MAX 256

static struct {
	size_t size;
	size_t used;
	size_t nfree;
	struct iobuf *free_list;
} g_iobuf = { .size = 16384 };

void iobuf_setup(size_t size)
{
	g_iobuf.size = size;
}

size_t iobuf_size(void)
{
	return g_iobuf.size;
}

struct iobuf *iobuf_get(void)
{
	struct iobuf *b = g_iobuf.free_list;

	if (b) {
		g_iobuf.free_list = b->next_free;
		g_iobuf.nfree--;
	} else {
		b = xmalloc(sizeof(*b) + g_iobuf.size);
	}
	b->start = 0;
	b->end = 0;
	b->next_free = NULL;
	g_iobuf.used++;
	return b;
}

void iobuf_put(struct iobuf *b)
{
	g_iobuf.used--;
	if (g_iobuf.nfree >= IOBUF_FREE_MAX) {
		free(b);
		return;
	}
	b->next_free = g_iobuf.free_list;
	g_iobuf.free_list = b;
	g_iobuf.nfree++;
}

void iobuf_cleanup(void)
{
	while (g_iobuf.free_list) {
		struct iobuf *b = g_iobuf.free_list;

		g_iobuf.free_list = b->next_free;
		free(b);
	}
	g_iobuf.nfree = 0;
}

void iobuf_stats(struct iobuf_stats *out)
{
	out->used = g_iobuf.used;
	out->free = g_iobuf.nfree;
	out->size = g_iobuf.size;
}
