/*
 * hist.c: log-linear histogram. A value v >= HIST_SUB with its highest set
 * bit at position e lands in group (e - HIST_SUB_BITS + 1), sub-bucket given
 * by the HIST_SUB_BITS bits below the top bit.
 */
#include "hist.h"

#include <string.h>

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

unsigned hist_bucket(uint64_t v)
{
	unsigned e;

	if (v < HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	return (e - HIST_SUB_BITS + 1) * HIST_SUB +
	       (unsigned)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

uint64_t hist_bucket_upper(unsigned i)
{
	unsigned group = i / HIST_SUB;
	uint64_t sub = i % HIST_SUB;
	unsigned e;

	if (group == 0)
		return sub;
	e = group + HIST_SUB_BITS - 1;
	if (e >= 63 && sub == HIST_SUB - 1)
		return UINT64_MAX;
	return ((HIST_SUB + sub + 1) << (e - HIST_SUB_BITS)) - 1;
}

void hist_record(struct hist *h, uint64_t v)
{
	h->buckets[hist_bucket(v)]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	unsigned i;

	for (i = 0; i < HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t rank;
	uint64_t seen = 0;
	unsigned i;

	if (h->count == 0)
		return 0;
	if (q <= 0)
		q = 0;
	if (q >= 1)
		return h->max;
	rank = (uint64_t)(q * (double)h->count);
	if (rank >= h->count)
		rank = h->count - 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen > rank) {
			uint64_t up = hist_bucket_upper(i);

			return up < h->max ? up : h->max;
		}
	}
	return h->max;
}
