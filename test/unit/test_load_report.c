/*
 * test_load_report.c: pgmux-load's report. Classification of real libpq
 * and server messages (verbose and plain) into causes, the "other" message
 * table, merging worker totals, the worker -> parent line records (round
 * trip and malformed lines), and the JSON, CSV and summary writers.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "load_report.h"

/* ---- classification ---- */

static void test_load_report_classifies_messages(void **state)
{
	static const struct {
		const char *sqlstate;
		const char *message;
		enum load_cause want;
	} cases[] = {
		/* A result's SQLSTATE wins. */
		{ "53300", "whatever", LOAD_CAUSE_53300 },
		{ "08006", NULL, LOAD_CAUSE_08006 },
		{ "28P01", "", LOAD_CAUSE_28P01 },
		{ "57P01", "FATAL:  terminating connection due to administrator command",
		  LOAD_CAUSE_OTHER },
		{ "XX000", "Connection refused", LOAD_CAUSE_OTHER },
		/* Refused logins in libpq's verbose form: the code is in the text. */
		{ NULL,
		  "connection to server at \"127.0.0.1\", port 6432 failed: FATAL:  53300: too "
		  "many connections: file descriptor limit reached\nLOCATION:  client.c:226\n",
		  LOAD_CAUSE_53300 },
		{ "", "FATAL:  28P01: password authentication failed for user \"app\"\n",
		  LOAD_CAUSE_28P01 },
		{ NULL, "FATAL:  08006: server conn crashed?\n", LOAD_CAUSE_08006 },
		{ NULL, "FATAL:  3D000: database \"nope\" does not exist\n", LOAD_CAUSE_OTHER },
		{ NULL, "FATAL:  XX000: sorry, too many clients already\n", LOAD_CAUSE_OTHER },
		{ NULL, "ERROR:  53300: too many connections for role \"app\"\n",
		  LOAD_CAUSE_53300 },
		/* Plain (terse/default) texts: PostgreSQL, pgmux, libpq. */
		{ NULL, "FATAL:  sorry, too many clients already\n", LOAD_CAUSE_53300 },
		{ NULL,
		  "FATAL:  remaining connection slots are reserved for non-replication superuser "
		  "connections\n",
		  LOAD_CAUSE_53300 },
		{ NULL, "FATAL:  no more connections allowed (max_client_conn = 100)\n",
		  LOAD_CAUSE_53300 },
		{ NULL, "FATAL:  too many connections: file descriptor limit reached\n",
		  LOAD_CAUSE_53300 },
		{ NULL, "FATAL:  password authentication failed for user \"app\"\n",
		  LOAD_CAUSE_28P01 },
		{ NULL,
		  "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n"
		  "\tIs the server running on that host and accepting TCP/IP connections?\n",
		  LOAD_CAUSE_ECONNREFUSED },
		{ NULL,
		  "connection to server at \"10.0.0.1\", port 5432 failed: Connection timed "
		  "out\n",
		  LOAD_CAUSE_ETIMEDOUT },
		{ NULL, "timeout expired\n", LOAD_CAUSE_ETIMEDOUT },
		{ NULL, "could not create socket: Too many open files\n", LOAD_CAUSE_EMFILE },
		{ NULL, "could not create socket: Too many open files in system\n",
		  LOAD_CAUSE_EMFILE },
		{ NULL,
		  "connection to server at \"127.0.0.1\", port 6432 failed: Cannot assign "
		  "requested address\n",
		  LOAD_CAUSE_EADDRNOTAVAIL },
		{ NULL,
		  "server closed the connection unexpectedly\n\tThis probably means the server "
		  "terminated abnormally\n\tbefore or while processing the request.\n",
		  LOAD_CAUSE_08006 },
		{ NULL, "could not receive data from server: Connection reset by peer\n",
		  LOAD_CAUSE_08006 },
		{ NULL, "could not send data to server: Broken pipe\n", LOAD_CAUSE_08006 },
		{ NULL, "no connection to the server\n", LOAD_CAUSE_08006 },
		{ NULL, "SSL SYSCALL error: EOF detected\n", LOAD_CAUSE_08006 },
		/* Nothing recognisable. */
		{ NULL, "server sent an error response during SSL exchange\n", LOAD_CAUSE_OTHER },
		{ NULL, "FATAL:  53300 in the text but not after the severity", LOAD_CAUSE_OTHER },
		{ NULL, "", LOAD_CAUSE_OTHER },
		{ NULL, NULL, LOAD_CAUSE_OTHER },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum load_cause got = load_report_classify(cases[i].sqlstate, cases[i].message);

		if (got != cases[i].want)
			fail_msg("case %zu (\"%.50s\"): %s, want %s", i,
				 cases[i].message ? cases[i].message : "(null)",
				 load_report_cause_name(got),
				 load_report_cause_name(cases[i].want));
	}
}

static void test_load_report_cause_names(void **state)
{
	(void)state;
	assert_string_equal(load_report_cause_name(LOAD_CAUSE_ECONNREFUSED), "ECONNREFUSED");
	assert_string_equal(load_report_cause_name(LOAD_CAUSE_ETIMEDOUT), "ETIMEDOUT");
	assert_string_equal(load_report_cause_name(LOAD_CAUSE_EMFILE), "EMFILE");
	assert_string_equal(load_report_cause_name(LOAD_CAUSE_53300), "53300");
	assert_string_equal(load_report_cause_name(LOAD_CAUSE_08006), "08006");
	assert_string_equal(load_report_cause_name(LOAD_CAUSE_28P01), "28P01");
	assert_string_equal(load_report_cause_name(LOAD_CAUSE_OTHER), "other");
	assert_string_equal(load_report_cause_name(LOAD_CAUSE_COUNT), "invalid");
}

static void test_load_report_short_message(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		const char *want;
	} cases[] = {
		{ "FATAL:  53300: no\nLOCATION:  x.c:1\n", 64, "FATAL:  53300: no" },
		{ "\n\n  first real line  \t\nsecond", 64, "first real line" },
		{ "tab\there\rand cr", 64, "tab here and cr" },
		{ "abcdefghij", 5, "abcd" },
		{ "", 8, "" },
		{ NULL, 8, "" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[64];

		load_report_short_message(cases[i].in, out, cases[i].len);
		assert_string_equal(out, cases[i].want);
	}
}

/* ---- counting ---- */

static void test_load_report_other_messages_grouped_then_unlisted(void **state)
{
	struct load_causes cs;
	char msg[64];
	int i;

	(void)state;
	memset(&cs, 0, sizeof(cs));
	load_report_cause_add(&cs, LOAD_CAUSE_53300, "ignored for known causes");
	load_report_cause_add(&cs, LOAD_CAUSE_OTHER, "FATAL:  3D000: no db\nLOCATION: x");
	load_report_cause_add(&cs, LOAD_CAUSE_OTHER, "FATAL:  3D000: no db\nLOCATION: y");
	load_report_cause_add(&cs, LOAD_CAUSE_OTHER, NULL);
	for (i = 0; i < LOAD_OTHER_MAX + 3; i++) {
		(void)snprintf(msg, sizeof(msg), "distinct %d", i);
		load_report_cause_add(&cs, LOAD_CAUSE_OTHER, msg);
	}
	assert_int_equal(cs.n[LOAD_CAUSE_53300], 1);
	assert_int_equal(cs.n[LOAD_CAUSE_OTHER], 3 + LOAD_OTHER_MAX + 3);
	assert_int_equal(cs.n_other, LOAD_OTHER_MAX);
	assert_string_equal(cs.other[0].msg, "FATAL:  3D000: no db");
	assert_int_equal(cs.other[0].count, 2);
	assert_string_equal(cs.other[1].msg, "(no message)");
	/* 2 table slots used above: 6 distinct ones fit, 5 are unlisted. */
	assert_int_equal(cs.other_unlisted, LOAD_OTHER_MAX + 3 - (LOAD_OTHER_MAX - 2));
	assert_int_equal(load_report_causes_total(&cs), 1 + 3 + LOAD_OTHER_MAX + 3);
}

/* Fills t with recognisable values; k makes two totals differ. */
static void fill_totals(struct load_totals *t, uint64_t k)
{
	uint64_t v;

	load_report_totals_reset(t);
	t->attempted = 100 * k;
	t->connected = 90 * k;
	t->failed = 10 * k;
	t->lost = 2 * k;
	t->tx_ok = 1000 * k;
	t->tx_failed = 3 * k;
	t->peak_connected = 88 * k;
	t->src_bound = 90 * k;
	t->src_mismatch = k;
	t->elapsed_ms = 3000 + k;
	t->connect_fail.n[LOAD_CAUSE_53300] = 7 * k;
	t->connect_fail.n[LOAD_CAUSE_OTHER] = 3 * k;
	t->connect_fail.n_other = 1;
	(void)snprintf(t->connect_fail.other[0].msg, LOAD_MSG_MAX, "FATAL:  3D000: worker %llu",
		       (unsigned long long)k);
	t->connect_fail.other[0].count = 3 * k;
	t->lost_by.n[LOAD_CAUSE_08006] = 2 * k;
	t->tx_fail_by.n[LOAD_CAUSE_OTHER] = 3 * k;
	t->tx_fail_by.n_other = 1;
	(void)snprintf(t->tx_fail_by.other[0].msg, LOAD_MSG_MAX, "ERROR:  40P01: deadlock");
	t->tx_fail_by.other[0].count = 3 * k;
	t->tx_fail_by.other_unlisted = k;
	for (v = 1; v <= 1000; v++)
		hist_record(&t->tx_latency, v * 37 * k);
	hist_record(&t->connect_latency, 1234 * k);
}

static void test_load_report_merge_adds_everything(void **state)
{
	static struct load_totals a, b;

	(void)state;
	fill_totals(&a, 1);
	fill_totals(&b, 2);
	load_report_totals_merge(&a, &b);
	assert_int_equal(a.attempted, 300);
	assert_int_equal(a.connected + a.failed, a.attempted);
	assert_int_equal(a.lost, 6);
	assert_int_equal(a.tx_ok, 3000);
	assert_int_equal(a.peak_connected, 264);
	assert_int_equal(a.elapsed_ms, 3002);
	assert_int_equal(a.connect_fail.n[LOAD_CAUSE_53300], 21);
	assert_int_equal(a.connect_fail.n_other, 2);
	/* The same message from two workers is one row. */
	assert_int_equal(a.tx_fail_by.n_other, 1);
	assert_int_equal(a.tx_fail_by.other[0].count, 9);
	assert_int_equal(a.tx_fail_by.other_unlisted, 3);
	assert_int_equal(a.tx_latency.count, 2000);
	assert_int_equal(a.tx_latency.max, 74000);
	assert_int_equal(a.connect_latency.count, 2);
	assert_true(load_report_tps(&a) > 999.0 && load_report_tps(&a) < 1000.0);
}

/* ---- worker -> parent records ---- */

/* Feeds the lines of b to rx; fails the test on a malformed one. */
static void feed(struct load_wire_rx *rx, const struct load_buf *b)
{
	char *copy, *line, *save = NULL;

	assert_false(b->failed);
	copy = strndup(b->p, b->len);
	assert_non_null(copy);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (load_report_wire_line(rx, line) != 0)
			fail_msg("line does not parse: %.80s", line);
	free(copy);
}

static void assert_hist_equal(const struct hist *a, const struct hist *b)
{
	assert_int_equal(a->count, b->count);
	assert_int_equal(a->sum, b->sum);
	assert_int_equal(a->max, b->max);
	assert_memory_equal(a->buckets, b->buckets, sizeof(a->buckets));
}

static void assert_causes_equal(const struct load_causes *a, const struct load_causes *b)
{
	unsigned i;

	assert_memory_equal(a->n, b->n, sizeof(a->n));
	assert_int_equal(a->n_other, b->n_other);
	for (i = 0; i < a->n_other; i++) {
		assert_string_equal(a->other[i].msg, b->other[i].msg);
		assert_int_equal(a->other[i].count, b->other[i].count);
	}
	assert_int_equal(a->other_unlisted, b->other_unlisted);
}

static void test_load_report_wire_round_trip(void **state)
{
	static struct load_totals t;
	static struct load_wire_rx rx;
	static struct load_tick tk;
	struct load_buf b = { 0 };

	(void)state;
	fill_totals(&t, 3);
	memset(&tk, 0, sizeof(tk));
	tk.t_ms = 1001;
	tk.attempted = 50;
	tk.connected = 40;
	tk.connecting = 5;
	tk.failed = 5;
	tk.lost = 1;
	tk.tx_ok = 777;
	hist_record(&tk.latency, 10);
	hist_record(&tk.latency, 100000);

	load_report_wire_rx_init(&rx);
	load_report_wire_tick(&b, &tk);
	load_report_wire_tick(&b, &tk);
	load_report_wire_final(&b, &t);
	feed(&rx, &b);
	load_buf_free(&b);

	assert_true(rx.have_tick);
	assert_int_equal(rx.tick.t_ms, 1001);
	assert_int_equal(rx.tick.connected, 40);
	assert_int_equal(rx.tick.connecting, 5);
	assert_int_equal(rx.tick.lost, 1);
	assert_int_equal(rx.tick.tx_ok, 777);
	/* Tick latencies accumulate until the parent takes them. */
	assert_int_equal(rx.tick_latency.count, 4);
	assert_int_equal(rx.tick_latency.max, 100000);

	assert_true(rx.done);
	assert_int_equal(rx.final.attempted, t.attempted);
	assert_int_equal(rx.final.connected, t.connected);
	assert_int_equal(rx.final.failed, t.failed);
	assert_int_equal(rx.final.lost, t.lost);
	assert_int_equal(rx.final.tx_ok, t.tx_ok);
	assert_int_equal(rx.final.tx_failed, t.tx_failed);
	assert_int_equal(rx.final.peak_connected, t.peak_connected);
	assert_int_equal(rx.final.src_bound, t.src_bound);
	assert_int_equal(rx.final.src_mismatch, t.src_mismatch);
	assert_int_equal(rx.final.elapsed_ms, t.elapsed_ms);
	assert_causes_equal(&rx.final.connect_fail, &t.connect_fail);
	assert_causes_equal(&rx.final.lost_by, &t.lost_by);
	assert_causes_equal(&rx.final.tx_fail_by, &t.tx_fail_by);
	assert_hist_equal(&rx.final.tx_latency, &t.tx_latency);
	assert_hist_equal(&rx.final.connect_latency, &t.connect_latency);
}

static void test_load_report_wire_message_stays_one_line(void **state)
{
	static struct load_totals t;
	static struct load_wire_rx rx;
	struct load_buf b = { 0 };

	(void)state;
	load_report_totals_reset(&t);
	t.connect_fail.n[LOAD_CAUSE_OTHER] = 1;
	t.connect_fail.n_other = 1;
	/* A control character that got into the table must not split the record. */
	(void)snprintf(t.connect_fail.other[0].msg, LOAD_MSG_MAX, "bad\rmessage\x01here");
	t.connect_fail.other[0].count = 1;
	load_report_wire_final(&b, &t);
	load_report_wire_rx_init(&rx);
	feed(&rx, &b);
	load_buf_free(&b);
	assert_true(rx.done);
	assert_string_equal(rx.final.connect_fail.other[0].msg, "bad message here");
}

static void test_load_report_wire_rejects_malformed_lines(void **state)
{
	static const char *const bad[] = {
		"",
		"X 1 2 3",
		"T 1 2",
		"T 1 2 3 4 5 6 7 0 0 1 5",
		"T 1 2 3 4 5 6 7 0 0 1 99999:1",
		"T 1 2 3 4 5 6 7 0 0 0 trailing",
		"R 1 2 3",
		"R 1 2 3 4 5 6 7 8 9 10 11",
		"C c 99 1",
		"C q 1 1",
		"C c 1",
		"O c x message",
		"U t",
		"H tx 0 0 1 5:",
		"H tx 0 0 1 :5",
		"H other 0 0 0",
		"E extra",
		"T -1 2 3 4 5 6 7 0 0 0",
	};
	static struct load_wire_rx rx;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		load_report_wire_rx_init(&rx);
		if (load_report_wire_line(&rx, bad[i]) == 0)
			fail_msg("accepted malformed line \"%s\"", bad[i]);
	}
	/* Nothing may follow the end of a report. */
	load_report_wire_rx_init(&rx);
	assert_int_equal(load_report_wire_line(&rx, "E"), 0);
	assert_int_equal(load_report_wire_line(&rx, "T 1 2 3 4 5 6 7 0 0 0"), -1);
}

/* ---- writers ---- */

/* Runs a writer into a string (the caller frees it). */
static char *capture_report(const struct load_report *r, bool json)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	if (json)
		assert_int_equal(load_report_json(f, r), 0);
	else
		load_report_print(f, r);
	fclose(f);
	return text;
}

static void make_table(struct load_table *t, int ncols, int nrows, const char *const *names,
		       const char *const *values)
{
	int i;

	t->ncols = ncols;
	t->nrows = nrows;
	t->names = calloc((size_t)ncols, sizeof(char *));
	t->values = calloc((size_t)(ncols * nrows), sizeof(char *));
	assert_non_null(t->names);
	assert_non_null(t->values);
	for (i = 0; i < ncols; i++)
		t->names[i] = strdup(names[i]);
	for (i = 0; i < ncols * nrows; i++)
		t->values[i] = values[i] ? strdup(values[i]) : NULL;
}

static void fill_report(struct load_report *r)
{
	static const char *const fd_names[] = { "limit_soft", "open", "note" };
	static const char *const fd_values[] = { "64", "56", "a \"quoted\"\nline" };
	static const char *const sat_names[] = { "database", "utilization_pct", "wait_p99_us" };
	static const char *const sat_values[] = { "appdb", "78.0", NULL, "007", "-1.5", "1." };

	memset(r, 0, sizeof(*r));
	fill_totals(&r->totals, 1);
	r->meta.conninfo = "host=127.0.0.1 password=***";
	r->meta.clients = 100;
	r->meta.connect_rate = 2000;
	r->meta.duration_ms = 3000;
	r->meta.workload = "select";
	r->meta.workload_sql = "SELECT 1";
	r->meta.procs = 2;
	r->meta.sources = "127.0.0.1-127.0.0.8";
	r->meta.n_sources = 8;
	r->snapshot.has = true;
	r->snapshot.t_ms = 2100;
	r->snapshot.connected = 88;
	make_table(&r->snapshot.fd_usage, 3, 1, fd_names, fd_values);
	make_table(&r->snapshot.saturation, 3, 2, sat_names, sat_values);
}

static void test_load_report_json(void **state)
{
	static struct load_report r;
	char *json;

	(void)state;
	fill_report(&r);
	json = capture_report(&r, true);
	assert_non_null(strstr(json, "\"attempted\": 100, \"connected\": 90, \"failed\": 10"));
	assert_non_null(strstr(json, "\"53300\": 7"));
	assert_non_null(strstr(json, "{\"message\": \"FATAL:  3D000: worker 1\", \"count\": 3}"));
	assert_non_null(strstr(json, "\"transactions\": {\"completed\": 1000, \"failed\": 3"));
	assert_non_null(strstr(json, "\"latency_us\": {\"count\": 1000"));
	assert_non_null(strstr(json, "\"source_addrs\": \"127.0.0.1-127.0.0.8\""));
	assert_non_null(strstr(json, "\"bound\": 90, \"mismatch\": 1"));
	/* Console values: numbers stay numbers, text and odd numbers are strings. */
	assert_non_null(strstr(json, "\"limit_soft\": 64, \"open\": 56"));
	assert_non_null(strstr(json, "\"note\": \"a \\\"quoted\\\"\\nline\""));
	assert_non_null(strstr(json, "\"utilization_pct\": 78.0, \"wait_p99_us\": null"));
	assert_non_null(strstr(json, "\"database\": \"007\", \"utilization_pct\": -1.5, "
				     "\"wait_p99_us\": \"1.\""));
	free(json);

	r.snapshot.has = false;
	json = capture_report(&r, true);
	assert_non_null(strstr(json, "\"pooler\": null"));
	free(json);
	load_report_free(&r);
}

static void test_load_report_summary(void **state)
{
	static struct load_report r;
	char *text;

	(void)state;
	fill_report(&r);
	text = capture_report(&r, false);
	assert_non_null(strstr(text, "100 clients, workload select"));
	assert_non_null(strstr(text, "53300         too_many_connections"));
	assert_non_null(strstr(text, "ECONNREFUSED  connection refused"));
	assert_non_null(strstr(text, "3 x FATAL:  3D000: worker 1"));
	assert_non_null(strstr(text, "p99.9"));
	assert_non_null(strstr(text, "90 connections bound as asked"));
	assert_non_null(strstr(text, "pooler at peak (t = 2.1 s, 88 connected)"));
	assert_non_null(strstr(text, "limit_soft               64"));
	free(text);

	/* The idle workload has no transaction section. */
	r.meta.workload_sql = NULL;
	r.workers_missing = 1;
	text = capture_report(&r, false);
	assert_null(strstr(text, "\ntransactions\n"));
	assert_non_null(strstr(text, "WARNING: 1 worker process died"));
	free(text);
	load_report_free(&r);
}

static void test_load_report_csv(void **state)
{
	struct load_tl_row row = { 2.1, 40, 5, 3, 1234.56, 4095 };
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	load_report_csv_header(f);
	load_report_csv_row(f, &row);
	fclose(f);
	assert_string_equal(text, "t,connected,connecting,failed,tps,p99_us\n"
				  "2.1,40,5,3,1234.6,4095\n");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_report_classifies_messages),
		cmocka_unit_test(test_load_report_cause_names),
		cmocka_unit_test(test_load_report_short_message),
		cmocka_unit_test(test_load_report_other_messages_grouped_then_unlisted),
		cmocka_unit_test(test_load_report_merge_adds_everything),
		cmocka_unit_test(test_load_report_wire_round_trip),
		cmocka_unit_test(test_load_report_wire_message_stays_one_line),
		cmocka_unit_test(test_load_report_wire_rejects_malformed_lines),
		cmocka_unit_test(test_load_report_json),
		cmocka_unit_test(test_load_report_summary),
		cmocka_unit_test(test_load_report_csv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
