/*
 * test_hist.c: the log-linear histogram behind SHOW SATURATION's wait
 * percentiles and pgmux-load's latencies: bucket boundaries, quantiles
 * within the promised 1/16 relative error, merge, and the extremes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hist.h"

static struct hist g_h;

static void test_hist_small_values_are_exact(void **state)
{
	uint64_t v;

	(void)state;
	for (v = 0; v < HIST_SUB; v++) {
		assert_int_equal(hist_bucket(v), v);
		assert_int_equal(hist_bucket_upper((unsigned)v), v);
	}
}

/* Every value lands in a bucket whose upper bound is >= it and within
 * 1/16 of it, and buckets are ordered. */
static void test_hist_buckets_bound_values_within_one_sixteenth(void **state)
{
	static const uint64_t values[] = { 16,	17,   31,	 32,	     33,     100,
					   1000, 4095, 4096,	 123456,     999999, 1000000,
					   (1ull << 40) + 12345, UINT64_MAX / 3, UINT64_MAX };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		uint64_t v = values[i];
		unsigned b = hist_bucket(v);
		uint64_t up = hist_bucket_upper(b);

		assert_true(b < HIST_BUCKETS);
		assert_true(up >= v);
		assert_true(up - v <= v / 16 + 1);
		if (b > 0)
			assert_true(hist_bucket_upper(b - 1) < v);
	}
}

static void test_hist_quantiles_of_uniform_samples(void **state)
{
	uint64_t v;
	uint64_t p50;
	uint64_t p99;

	(void)state;
	hist_reset(&g_h);
	for (v = 1; v <= 100000; v++)
		hist_record(&g_h, v);
	assert_int_equal(g_h.count, 100000);
	assert_int_equal(g_h.max, 100000);
	assert_int_equal(g_h.sum, 100000ull * 100001ull / 2);
	p50 = hist_quantile(&g_h, 0.50);
	p99 = hist_quantile(&g_h, 0.99);
	assert_true(p50 >= 50000 && p50 <= 50000 + 50000 / 16 + 1);
	assert_true(p99 >= 99000 && p99 <= 100000);
	assert_int_equal(hist_quantile(&g_h, 1.0), 100000);
}

static void test_hist_quantile_never_exceeds_max(void **state)
{
	(void)state;
	hist_reset(&g_h);
	hist_record(&g_h, 1000001);
	assert_int_equal(hist_quantile(&g_h, 0.5), 1000001);
	assert_int_equal(hist_quantile(&g_h, 0.99), 1000001);
}

static void test_hist_empty_gives_zero(void **state)
{
	(void)state;
	hist_reset(&g_h);
	assert_int_equal(hist_quantile(&g_h, 0.5), 0);
	assert_int_equal(hist_quantile(&g_h, 0.99), 0);
}

static void test_hist_merge_adds_counts_and_keeps_max(void **state)
{
	static struct hist other;

	(void)state;
	hist_reset(&g_h);
	hist_reset(&other);
	hist_record(&g_h, 10);
	hist_record(&g_h, 20);
	hist_record(&other, 5000);
	hist_merge(&g_h, &other);
	assert_int_equal(g_h.count, 3);
	assert_int_equal(g_h.sum, 5030);
	assert_int_equal(g_h.max, 5000);
	assert_int_equal(hist_quantile(&g_h, 0.0), 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_small_values_are_exact),
		cmocka_unit_test(test_hist_buckets_bound_values_within_one_sixteenth),
		cmocka_unit_test(test_hist_quantiles_of_uniform_samples),
		cmocka_unit_test(test_hist_quantile_never_exceeds_max),
		cmocka_unit_test(test_hist_empty_gives_zero),
		cmocka_unit_test(test_hist_merge_adds_counts_and_keeps_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
