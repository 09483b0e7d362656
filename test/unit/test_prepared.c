/*
 * test_prepared.c: the pure parts of prepared statements (prep_state.c):
 * statement names and sharing, the SQL checks for DISCARD/DEALLOCATE, a
 * client's names, a server's LRU (with statements pinned during a link),
 * the answer queue (folding, growth) and what each server answer does to
 * it: forward, swallow, synthesize, replace, and the skip to Sync after an
 * error with its records undone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prep_state.h"
#include "proto.h"

/* A Parse body after the name: query NUL, int16 0 (no parameter types). */
static size_t body_of(const char *query, uint8_t *out)
{
	size_t n = strlen(query) + 1;

	memcpy(out, query, n);
	out[n] = 0;
	out[n + 1] = 0;
	return n + 2;
}

static struct prep_stmt *stmt(struct prep_registry *r, const char *query)
{
	uint8_t b[256];

	return prep_stmt_get(r, b, body_of(query, b));
}

static void test_prepared_hash_is_fnv1a(void **state)
{
	(void)state;
	assert_true(prep_hash("", 0) == 0xcbf29ce484222325ull);
	assert_true(prep_hash("a", 1) == 0xaf63dc4c8601ec8cull);
	assert_true(prep_hash("foobar", 6) == 0x85944171f73967e8ull);
}

static void test_prepared_identical_statements_share_a_name(void **state)
{
	struct prep_registry r = { 0 };
	struct prep_stmt *a = stmt(&r, "SELECT 1");
	struct prep_stmt *b = stmt(&r, "SELECT 1");
	struct prep_stmt *c = stmt(&r, "SELECT 2");
	uint8_t body[64];
	size_t n = body_of("SELECT 1", body);
	char want[PREP_NAME_SIZE];

	(void)state;
	assert_ptr_equal(a, b);
	assert_ptr_not_equal(a, c);
	assert_int_equal(a->refs, 2);
	assert_int_equal(r.count, 2);
	assert_string_not_equal(a->name, c->name);
	snprintf(want, sizeof(want), "PGMUX_%016llx", (unsigned long long)prep_hash(body, n));
	assert_string_equal(a->name, want);
	assert_int_equal(strlen(a->name), 22);
	assert_ptr_equal(prep_stmt_find(&r, body, n), a);
	prep_stmt_unref(a);
	prep_stmt_unref(b);
	prep_stmt_unref(c);
	assert_int_equal(r.count, 0);
	assert_int_equal(r.bytes, 0);
	assert_null(prep_stmt_find(&r, body, n));
}

/* Parameter types are part of the statement. */
static void test_prepared_types_make_a_different_statement(void **state)
{
	struct prep_registry r = { 0 };
	uint8_t b1[] = { 'S', 'E', 'L', 'E', 'C', 'T', ' ', '$', '1', 0, 0, 1, 0, 0, 0, 23 };
	uint8_t b2[] = { 'S', 'E', 'L', 'E', 'C', 'T', ' ', '$', '1', 0, 0, 1, 0, 0, 0, 25 };
	struct prep_stmt *a = prep_stmt_get(&r, b1, sizeof(b1));
	struct prep_stmt *b = prep_stmt_get(&r, b2, sizeof(b2));

	(void)state;
	assert_ptr_not_equal(a, b);
	prep_stmt_unref(a);
	prep_stmt_unref(b);
}

/* A name whose hash is taken by another statement moves on: a server that
 * has one must never be taken to have the other. */
static void test_prepared_hash_collision_gets_next_name(void **state)
{
	struct prep_registry r = { 0 };
	uint8_t body[64];
	size_t n = body_of("SELECT 'b'", body);
	struct prep_stmt *a = stmt(&r, "SELECT 'a'");
	struct prep_stmt *b;
	char want[PREP_NAME_SIZE];

	(void)state;
	/* Pretend a's text hashes like b's. */
	HASH_DELETE(hh_hash, r.by_hash, a);
	a->hash = prep_hash(body, n);
	HASH_ADD(hh_hash, r.by_hash, hash, sizeof(a->hash), a);
	b = prep_stmt_get(&r, body, n);
	assert_true(b->hash == a->hash + 1);
	snprintf(want, sizeof(want), "PGMUX_%016llx", (unsigned long long)(a->hash + 1));
	assert_string_equal(b->name, want);
	prep_stmt_unref(a);
	prep_stmt_unref(b);
	assert_int_equal(r.count, 0);
}

static void test_prepared_sql_checks(void **state)
{
	static const struct {
		const char *sql;
		bool clears, mentions;
	} cases[] = {
		{ "DEALLOCATE ALL", true, true },
		{ "deallocate prepare all;", true, true },
		{ "  DISCARD ALL ; ", true, true },
		{ "discard\tall\n", true, true },
		{ "DISCARD ALLX", false, true },
		{ "DISCARD PLANS", false, true },
		{ "DEALLOCATE s1", false, true },
		{ "SELECT 1; DISCARD ALL", false, true },
		{ "SELECT 'DeAllocate'", false, true },
		{ "SELECT 1", false, false },
		{ "", false, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const uint8_t *s = (const uint8_t *)cases[i].sql;
		size_t len = strlen(cases[i].sql) + 1; /* as in a Query body */

		assert_int_equal(prep_sql_clears_all(s, len), cases[i].clears);
		assert_int_equal(prep_sql_may_deallocate(s, len), cases[i].mentions);
	}
}

/* A Query seen in part waits only if it may still clear everything. */
static void test_prepared_partial_query_check(void **state)
{
	static const struct {
		const char *start;
		bool may;
	} cases[] = {
		{ "", true }, { "  ", true }, { "DEA", true }, { "deallocate al", true },
		{ "Disc", true }, { "SELECT 'cut", false }, { "  sel", false },
		{ "DEALLOCATX", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(prep_sql_may_clear((const uint8_t *)cases[i].start,
						    strlen(cases[i].start)),
				 cases[i].may);
}

static void test_prepared_names_kill_and_revive(void **state)
{
	struct prep_registry r = { 0 };
	struct prep_client *pc = prep_client_new();
	struct prep_stmt *st = stmt(&r, "SELECT 1");
	struct prep_name *nm = prep_name_add(pc, "s1", st);
	struct prep_name *other;

	(void)state;
	prep_stmt_unref(st);
	assert_int_equal(pc->count, 1);
	assert_ptr_equal(prep_name_find(pc, "s1"), nm);
	nm->refs++; /* a queue entry may revive it */
	prep_name_kill(pc, nm);
	assert_null(prep_name_find(pc, "s1"));
	assert_int_equal(pc->count, 0);
	prep_name_revive(pc, nm);
	assert_ptr_equal(prep_name_find(pc, "s1"), nm);
	assert_int_equal(pc->count, 1);
	/* Killed, then the name is taken again: no revival over it. */
	prep_name_kill(pc, nm);
	other = prep_name_add(pc, "s1", nm->stmt);
	prep_name_revive(pc, nm);
	assert_ptr_equal(prep_name_find(pc, "s1"), other);
	prep_name_unref(nm); /* freed now */
	assert_int_equal(r.count, 1);
	prep_client_free(pc);
	assert_int_equal(r.count, 0);
}

static void test_prepared_lru_evicts_least_recent_unpinned(void **state)
{
	struct prep_registry r = { 0 };
	struct prep_server *ps = prep_server_new();
	struct prep_stmt *s[4];
	const char *q[4] = { "SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4" };

	(void)state;
	for (int i = 0; i < 4; i++)
		s[i] = stmt(&r, q[i]);
	for (int i = 0; i < 3; i++)
		prep_set_add(ps, s[i]);
	assert_int_equal(prep_set_count(ps), 3);
	assert_int_equal(r.server_entries, 3);
	/* All used during this link: none may go. */
	assert_null(prep_set_victim(ps, 3));
	ps->epoch++; /* next link */
	assert_ptr_equal(prep_set_victim(ps, 3), s[0]);
	assert_null(prep_set_victim(ps, 4)); /* room left */
	prep_set_touch(ps, prep_set_find(ps, s[0]));
	/* s[0] is now pinned and most recent; s[1] is the least recent. */
	assert_ptr_equal(prep_set_victim(ps, 3), s[1]);
	prep_set_remove(ps, s[1]);
	prep_set_add(ps, s[3]);
	assert_int_equal(prep_set_count(ps), 3);
	assert_ptr_equal(prep_set_victim(ps, 3), s[2]);
	/* Validity: a generation bump (DISCARD ALL) or a stale plan. */
	assert_true(prep_set_valid(ps, prep_set_find(ps, s[2])));
	ps->gen++;
	assert_false(prep_set_valid(ps, prep_set_find(ps, s[2])));
	prep_set_add(ps, s[2]);
	assert_true(prep_set_valid(ps, prep_set_find(ps, s[2])));
	prep_set_find(ps, s[2])->stale = true;
	assert_false(prep_set_valid(ps, prep_set_find(ps, s[2])));
	prep_server_free(ps);
	assert_int_equal(r.server_entries, 0);
	for (int i = 0; i < 4; i++)
		prep_stmt_unref(s[i]);
	assert_int_equal(r.count, 0);
}

static void push(struct prep_server *ps, enum prep_kind kind, enum prep_act act, uint8_t what,
		 uint8_t expect)
{
	struct prep_entry e = { .kind = (uint8_t)kind, .act = (uint8_t)act, .what = what,
				.expect = expect };

	prep_q_push(ps, &e);
}

static void push_ref(struct prep_server *ps, enum prep_act act, uint8_t what, uint8_t expect,
		     enum prep_undo undo, struct prep_stmt *st, struct prep_name *nm)
{
	struct prep_entry e = { .kind = PREP_K_EXT, .act = (uint8_t)act, .what = what,
				.expect = expect, .undo = (uint8_t)undo, .stmt = st, .name = nm };

	if (st)
		prep_stmt_ref(st);
	if (nm)
		nm->refs++;
	prep_q_push(ps, &e);
}

static void test_prepared_queue_folds_and_grows(void **state)
{
	struct prep_server *ps = prep_server_new();

	(void)state;
	for (int i = 0; i < 100; i++)
		push(ps, PREP_K_EXT, PREP_A_FORWARD, PROTO_FE_EXECUTE, 0);
	assert_int_equal(ps->q_len, 1);
	assert_int_equal(prep_q_head(ps)->count, 100);
	for (int i = 0; i < 100; i++) {
		push(ps, PREP_K_SYNC, PREP_A_FORWARD, PROTO_FE_SYNC, 0);
		push(ps, PREP_K_EXT, PREP_A_FORWARD, PROTO_FE_EXECUTE, 0);
	}
	assert_int_equal(ps->q_len, 201);
	assert_true(ps->q_cap >= 201);
	for (int i = 0; i < 100; i++)
		assert_int_equal(prep_answer(ps, NULL, PROTO_BE_COMMAND_COMPLETE, NULL),
				 PREP_ANS_PASS);
	assert_int_equal(ps->q_len, 200);
	assert_int_equal(prep_q_head(ps)->kind, PREP_K_SYNC);
	prep_server_free(ps);
}

/*
 * [Close X (pgmux)][Parse X (pgmux)][Bind][Parse s2 (synthesized)][Sync]:
 * pgmux's answers vanish, the client's pass, the synthesized
 * ParseComplete comes right after BindComplete, before ReadyForQuery.
 */
static void test_prepared_answers_swallow_and_synthesize(void **state)
{
	struct prep_registry r = { 0 };
	struct prep_server *ps = prep_server_new();
	struct prep_client *pc = prep_client_new();
	struct prep_stmt *x = stmt(&r, "SELECT 1");
	struct prep_name *nm = prep_name_add(pc, "s2", x);

	(void)state;
	prep_set_add(ps, x);
	push_ref(ps, PREP_A_SWALLOW, PROTO_FE_CLOSE, PROTO_BE_CLOSE_COMPLETE, PREP_U_NONE, NULL,
		 NULL);
	push_ref(ps, PREP_A_SWALLOW, PROTO_FE_PARSE, PROTO_BE_PARSE_COMPLETE, PREP_U_PARSED, x,
		 NULL);
	push_ref(ps, PREP_A_FORWARD, PROTO_FE_BIND, 0, PREP_U_NONE, x, NULL);
	push_ref(ps, PREP_A_SYNTH, PROTO_FE_PARSE, PROTO_BE_PARSE_COMPLETE, PREP_U_NAMED, NULL, nm);
	push(ps, PREP_K_SYNC, PREP_A_FORWARD, PROTO_FE_SYNC, 0);
	assert_int_equal(prep_answer(ps, pc, PROTO_BE_NOTICE_RESPONSE, NULL), PREP_ANS_PASS);
	assert_int_equal(prep_answer(ps, pc, PROTO_BE_CLOSE_COMPLETE, NULL), PREP_ANS_DROP);
	assert_int_equal(prep_answer(ps, pc, PROTO_BE_PARSE_COMPLETE, NULL), PREP_ANS_DROP);
	assert_true(x->proven);
	assert_int_equal(ps->to_client.len, 0);
	assert_int_equal(prep_answer(ps, pc, PROTO_BE_BIND_COMPLETE, NULL), PREP_ANS_PASS);
	assert_int_equal(ps->to_client.len, 5);
	assert_int_equal(ps->to_client.data[0], PROTO_BE_PARSE_COMPLETE);
	assert_int_equal(prep_answer(ps, pc, PROTO_BE_READY_FOR_QUERY, NULL), PREP_ANS_PASS);
	assert_int_equal(ps->q_len, 0);
	assert_ptr_equal(prep_name_find(pc, "s2"), nm); /* it stays */
	prep_server_free(ps);
	prep_client_free(pc);
	prep_stmt_unref(x);
	assert_int_equal(r.count, 0);
}

/*
 * An error to the client's Parse s1: the rest up to Sync gets no answer.
 * s1 is not created, the Close of s9 did not happen, the injected Parse of
 * Y did not either, the synthesized CloseComplete is not sent; after Sync
 * the synthesized answer that follows does go out.
 */
static void test_prepared_error_skips_to_sync_and_undoes(void **state)
{
	struct prep_registry r = { 0 };
	struct prep_server *ps = prep_server_new();
	struct prep_client *pc = prep_client_new();
	struct prep_stmt *x = stmt(&r, "SELECT bad");
	struct prep_stmt *y = stmt(&r, "SELECT y");
	struct prep_name *s1 = prep_name_add(pc, "s1", x);
	struct prep_name *s9 = prep_name_add(pc, "s9", y);
	struct prep_name *s3 = prep_name_add(pc, "s3", y);

	(void)state;
	prep_set_add(ps, x);
	prep_set_add(ps, y);
	push_ref(ps, PREP_A_FORWARD, PROTO_FE_PARSE, 0, PREP_U_PARSED, x, s1);
	push_ref(ps, PREP_A_SYNTH, PROTO_FE_CLOSE, PROTO_BE_CLOSE_COMPLETE, PREP_U_CLOSED, NULL,
		 s9);
	prep_name_kill(pc, s9);
	push_ref(ps, PREP_A_SWALLOW, PROTO_FE_PARSE, PROTO_BE_PARSE_COMPLETE, PREP_U_PARSED, y,
		 NULL);
	push(ps, PREP_K_EXT, PREP_A_FORWARD, PROTO_FE_EXECUTE, 0);
	push(ps, PREP_K_QUERY, PREP_A_FORWARD, PROTO_FE_QUERY, 0); /* ignored too */
	push(ps, PREP_K_SYNC, PREP_A_FORWARD, PROTO_FE_SYNC, 0);
	push_ref(ps, PREP_A_SYNTH, PROTO_FE_PARSE, PROTO_BE_PARSE_COMPLETE, PREP_U_NAMED, NULL, s3);

	assert_int_equal(prep_answer(ps, pc, PROTO_BE_ERROR_RESPONSE, "42601"), PREP_ANS_PASS);
	assert_null(prep_name_find(pc, "s1"));
	assert_ptr_equal(prep_name_find(pc, "s9"), s9);
	assert_null(prep_set_find(ps, x));
	assert_null(prep_set_find(ps, y));
	assert_int_equal(ps->to_client.len, 0);
	assert_false(ps->skipping);
	assert_int_equal(ps->q_len, 2);
	assert_int_equal(prep_q_head(ps)->kind, PREP_K_SYNC);
	assert_int_equal(prep_answer(ps, pc, PROTO_BE_READY_FOR_QUERY, NULL), PREP_ANS_PASS);
	assert_int_equal(ps->to_client.len, 5); /* s3's ParseComplete */
	assert_int_equal(ps->q_len, 0);
	assert_ptr_equal(prep_name_find(pc, "s3"), s3);
	prep_server_free(ps);
	prep_client_free(pc);
	prep_stmt_unref(x);
	prep_stmt_unref(y);
	assert_int_equal(r.count, 0);
}

/* Killed and created again within the skipped part: undone last to first,
 * the name ends as it began. */
static void test_prepared_undo_runs_last_to_first(void **state)
{
	struct prep_registry r = { 0 };
	struct prep_server *ps = prep_server_new();
	struct prep_client *pc = prep_client_new();
	struct prep_stmt *x = stmt(&r, "SELECT x");
	struct prep_stmt *y = stmt(&r, "SELECT y");
	struct prep_name *old = prep_name_add(pc, "s1", x);
	struct prep_name *fresh;

	(void)state;
	push(ps, PREP_K_EXT, PREP_A_FORWARD, PROTO_FE_BIND, 0);
	push_ref(ps, PREP_A_SYNTH, PROTO_FE_CLOSE, PROTO_BE_CLOSE_COMPLETE, PREP_U_CLOSED, NULL,
		 old);
	prep_name_kill(pc, old);
	fresh = prep_name_add(pc, "s1", y);
	push_ref(ps, PREP_A_FORWARD, PROTO_FE_PARSE, 0, PREP_U_PARSED, y, fresh);
	prep_set_add(ps, y);
	push(ps, PREP_K_SYNC, PREP_A_FORWARD, PROTO_FE_SYNC, 0);
	assert_int_equal(prep_answer(ps, pc, PROTO_BE_ERROR_RESPONSE, "22012"), PREP_ANS_PASS);
	assert_ptr_equal(prep_name_find(pc, "s1"), old);
	assert_ptr_equal(prep_name_find(pc, "s1")->stmt, x);
	prep_server_free(ps);
	prep_client_free(pc);
	prep_stmt_unref(x);
	prep_stmt_unref(y);
	assert_int_equal(r.count, 0);
}

/* No Sync queued yet: the server now ignores everything until one. */
static void test_prepared_error_without_sync_means_skipping(void **state)
{
	struct prep_server *ps = prep_server_new();

	(void)state;
	push(ps, PREP_K_EXT, PREP_A_FORWARD, PROTO_FE_BIND, 0);
	push(ps, PREP_K_EXT, PREP_A_FORWARD, PROTO_FE_EXECUTE, 0);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_ERROR_RESPONSE, "22012"), PREP_ANS_PASS);
	assert_int_equal(ps->q_len, 0);
	assert_true(ps->skipping);
	prep_server_free(ps);
}

/* Errors inside a Query or at Sync do not skip anything. */
static void test_prepared_error_in_query_does_not_skip(void **state)
{
	struct prep_server *ps = prep_server_new();

	(void)state;
	push(ps, PREP_K_QUERY, PREP_A_FORWARD, PROTO_FE_QUERY, 0);
	push(ps, PREP_K_EXT, PREP_A_FORWARD, PROTO_FE_BIND, 0);
	push(ps, PREP_K_SYNC, PREP_A_FORWARD, PROTO_FE_SYNC, 0);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_ROW_DESCRIPTION, NULL), PREP_ANS_PASS);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_ERROR_RESPONSE, "22012"), PREP_ANS_PASS);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_READY_FOR_QUERY, NULL), PREP_ANS_PASS);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_BIND_COMPLETE, NULL), PREP_ANS_PASS);
	/* The Sync's own error (a deferred constraint at commit). */
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_ERROR_RESPONSE, "23505"), PREP_ANS_PASS);
	assert_int_equal(ps->q_len, 1);
	assert_false(ps->skipping);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_READY_FOR_QUERY, NULL), PREP_ANS_PASS);
	assert_int_equal(ps->q_len, 0);
	prep_server_free(ps);
}

/* pgmux's refusal: the server's 34000 becomes pgmux's error; any other
 * error (25P02 in an aborted transaction) is the server's to tell. */
static void test_prepared_replace_error(void **state)
{
	struct prep_server *ps = prep_server_new();
	struct prep_entry e = { .kind = PREP_K_EXT, .act = PREP_A_REPLACE,
				.what = PROTO_FE_DESCRIBE };
	static const uint8_t err[] = { 'E', 0, 0, 0, 5, 0 };

	(void)state;
	e.synth = malloc(sizeof(err));
	memcpy(e.synth, err, sizeof(err));
	e.synth_len = sizeof(err);
	prep_q_push(ps, &e);
	push(ps, PREP_K_SYNC, PREP_A_FORWARD, PROTO_FE_SYNC, 0);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_ERROR_RESPONSE, "34000"), PREP_ANS_DROP);
	assert_int_equal(ps->to_client.len, sizeof(err));
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_READY_FOR_QUERY, NULL), PREP_ANS_PASS);
	proto_buf_reset(&ps->to_client);

	e.synth = malloc(sizeof(err));
	memcpy(e.synth, err, sizeof(err));
	prep_q_push(ps, &e);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_ERROR_RESPONSE, "25P02"), PREP_ANS_PASS);
	assert_int_equal(ps->to_client.len, 0);
	prep_server_free(ps);
}

/* A stale plan (0A000) or a statement the server lost (26000): the next
 * use prepares it again. */
static void test_prepared_stale_plan_marks_statement(void **state)
{
	struct prep_registry r = { 0 };
	struct prep_server *ps = prep_server_new();
	struct prep_stmt *x = stmt(&r, "SELECT * FROM t");

	(void)state;
	prep_set_add(ps, x);
	push_ref(ps, PREP_A_FORWARD, PROTO_FE_BIND, 0, PREP_U_NONE, x, NULL);
	push(ps, PREP_K_SYNC, PREP_A_FORWARD, PROTO_FE_SYNC, 0);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_ERROR_RESPONSE, "0A000"), PREP_ANS_PASS);
	assert_non_null(prep_set_find(ps, x));
	assert_false(prep_set_valid(ps, prep_set_find(ps, x)));
	prep_server_free(ps);
	prep_stmt_unref(x);
	assert_int_equal(r.count, 0);
}

/* The LRU's Close skipped: the server still has the statement. */
static void test_prepared_skipped_eviction_keeps_statement(void **state)
{
	struct prep_registry r = { 0 };
	struct prep_server *ps = prep_server_new();
	struct prep_stmt *old = stmt(&r, "SELECT old");

	(void)state;
	push(ps, PREP_K_EXT, PREP_A_FORWARD, PROTO_FE_BIND, 0);
	push_ref(ps, PREP_A_SWALLOW, PROTO_FE_CLOSE, PROTO_BE_CLOSE_COMPLETE, PREP_U_EVICTED, old,
		 NULL);
	push(ps, PREP_K_SYNC, PREP_A_FORWARD, PROTO_FE_SYNC, 0);
	assert_null(prep_set_find(ps, old));
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_ERROR_RESPONSE, "22012"), PREP_ANS_PASS);
	assert_non_null(prep_set_find(ps, old));
	prep_server_free(ps);
	prep_stmt_unref(old);
	assert_int_equal(r.count, 0);
}

/* Answers that do not fit the queue: the server cannot be trusted. */
static void test_prepared_out_of_step_is_broken(void **state)
{
	struct prep_server *ps = prep_server_new();

	(void)state;
	push(ps, PREP_K_EXT, PREP_A_FORWARD, PROTO_FE_BIND, 0);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_READY_FOR_QUERY, NULL), PREP_ANS_BROKEN);
	prep_q_pop(ps);
	push(ps, PREP_K_EXT, PREP_A_SWALLOW, PROTO_FE_PARSE, PROTO_BE_PARSE_COMPLETE);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_BIND_COMPLETE, NULL), PREP_ANS_BROKEN);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_DATA_ROW, NULL), PREP_ANS_BROKEN);
	prep_server_free(ps);
}

/* Describe of a statement: ParameterDescription, then RowDescription or
 * NoData ends it. A COPY inside an Execute ends with CommandComplete. */
static void test_prepared_multi_message_answers(void **state)
{
	struct prep_server *ps = prep_server_new();

	(void)state;
	push(ps, PREP_K_EXT, PREP_A_FORWARD, PROTO_FE_DESCRIBE, 0);
	push(ps, PREP_K_SYNC, PREP_A_FORWARD, PROTO_FE_SYNC, 0);
	push(ps, PREP_K_EXT, PREP_A_FORWARD, PROTO_FE_EXECUTE, 0);
	push(ps, PREP_K_SYNC, PREP_A_FORWARD, PROTO_FE_SYNC, 0);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_PARAMETER_DESCRIPTION, NULL),
			 PREP_ANS_PASS);
	assert_int_equal(ps->q_len, 4);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_NO_DATA, NULL), PREP_ANS_PASS);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_READY_FOR_QUERY, NULL), PREP_ANS_PASS);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_COPY_OUT_RESPONSE, NULL), PREP_ANS_PASS);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_COPY_DATA, NULL), PREP_ANS_PASS);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_COPY_DONE, NULL), PREP_ANS_PASS);
	assert_int_equal(ps->q_len, 2);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_COMMAND_COMPLETE, NULL), PREP_ANS_PASS);
	assert_int_equal(prep_answer(ps, NULL, PROTO_BE_READY_FOR_QUERY, NULL), PREP_ANS_PASS);
	assert_int_equal(ps->q_len, 0);
	prep_server_free(ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prepared_hash_is_fnv1a),
		cmocka_unit_test(test_prepared_identical_statements_share_a_name),
		cmocka_unit_test(test_prepared_types_make_a_different_statement),
		cmocka_unit_test(test_prepared_hash_collision_gets_next_name),
		cmocka_unit_test(test_prepared_sql_checks),
		cmocka_unit_test(test_prepared_partial_query_check),
		cmocka_unit_test(test_prepared_names_kill_and_revive),
		cmocka_unit_test(test_prepared_lru_evicts_least_recent_unpinned),
		cmocka_unit_test(test_prepared_queue_folds_and_grows),
		cmocka_unit_test(test_prepared_answers_swallow_and_synthesize),
		cmocka_unit_test(test_prepared_error_skips_to_sync_and_undoes),
		cmocka_unit_test(test_prepared_undo_runs_last_to_first),
		cmocka_unit_test(test_prepared_error_without_sync_means_skipping),
		cmocka_unit_test(test_prepared_error_in_query_does_not_skip),
		cmocka_unit_test(test_prepared_replace_error),
		cmocka_unit_test(test_prepared_stale_plan_marks_statement),
		cmocka_unit_test(test_prepared_skipped_eviction_keeps_statement),
		cmocka_unit_test(test_prepared_out_of_step_is_broken),
		cmocka_unit_test(test_prepared_multi_message_answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
