/*
 * hist.h: a log-linear histogram of microsecond values: exact below 16,
 * then 16 linear sub-buckets per power of two (worst-case error 1/16).
 * Fixed size, no allocation, O(1) record; percentiles walk the buckets.
 * Pure code: pgmux's wait times and pgmux-load's latencies both use it.
 */
#ifndef PGMUX_HIST_H
#define PGMUX_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 4
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS) * HIST_SUB + HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t sum;
	uint64_t max;
	uint64_t buckets[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_record(struct hist *h, uint64_t v);
/* Adds every sample of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/* The value at quantile q (0..1): the upper bound of the bucket holding it,
 * never above the true maximum. 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);
/* Bucket index for v, and the largest value bucket i holds. */
unsigned hist_bucket(uint64_t v);
uint64_t hist_bucket_upper(unsigned i);

#endif /* PGMUX_HIST_H */
