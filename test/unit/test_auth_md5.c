/*
 * test_auth_md5.c: PostgreSQL md5 auth against hardcoded vectors. Expected
 * values were computed independently with coreutils, e.g.
 *   echo -n foobar | md5sum
 *   { echo -n 3858f62230ac3c915f300c664312c63f; printf '\x01\x02\x03\x04'; } | md5sum
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth_md5.h"

#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_md5_secret_vectors(void **state)
{
	static const struct {
		const char *password, *user, *secret;
	} cases[] = {
		{ "foo", "bar", "md53858f62230ac3c915f300c664312c63f" },
		{ "pencil", "user", "md520c46e3762c864548e296b33c3406aa9" },
		{ "", "postgres", "md5e8a48653851e28c69d0506508fb27fc5" },
		{ "secretpassword", "alice", "md5f5d5929547d25b776c0890afdb67be91" },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		char out[MD5_SECRET_LEN + 1];

		memset(out, 'x', sizeof(out));
		md5_secret(cases[i].password, cases[i].user, out);
		assert_string_equal(out, cases[i].secret);
		assert_int_equal(strlen(out), MD5_SECRET_LEN);
		assert_true(md5_is_secret(out));
	}
}

static void test_md5_response_vectors(void **state)
{
	static const struct {
		const char *secret;
		uint8_t salt[4];
		const char *response;
	} cases[] = {
		{ "md53858f62230ac3c915f300c664312c63f", { 1, 2, 3, 4 },
		  "md56e4f0b50f7277feb74acbf2a7734c9cb" },
		{ "md53858f62230ac3c915f300c664312c63f", { 0xff, 0x00, 0x80, 0x7f },
		  "md5796e0ecaa276a3fdca87397f657a47e4" },
		{ "md520c46e3762c864548e296b33c3406aa9", { 0xde, 0xad, 0xbe, 0xef },
		  "md50f5b636d891e9860623ac8ca91fc9dfc" },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		char out[MD5_SECRET_LEN + 1];

		md5_response(cases[i].secret, cases[i].salt, out);
		assert_string_equal(out, cases[i].response);
	}
}

static void test_md5_is_secret_table(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
		{ "md53858f62230ac3c915f300c664312c63f", true },
		{ "md53858F62230AC3C915F300C664312C63F", false }, /* uppercase hex */
		{ "md53858f62230ac3c915f300c664312c63", false },  /* 31 digits */
		{ "md53858f62230ac3c915f300c664312c63f0", false }, /* 33 digits */
		{ "md53858f62230ac3c915f300c664312c63g", false },
		{ "MD53858f62230ac3c915f300c664312c63f", false },
		{ "xyz3858f62230ac3c915f300c664312c63f", false },
		{ "md5", false },
		{ "", false },
		{ "SCRAM-SHA-256$4096:c2FsdA==$a:b", false },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		if (md5_is_secret(cases[i].s) != cases[i].ok)
			fail_msg("'%s'", cases[i].s);
	}
}

/* The auth file may hold the plain password or its md5 secret. */
static void test_md5_verify_accepts_right_answer(void **state)
{
	static const uint8_t salt[4] = { 1, 2, 3, 4 };
	static const char response[] = "md56e4f0b50f7277feb74acbf2a7734c9cb";

	assert_true(md5_verify("foo", "bar", salt, response));
	assert_true(md5_verify("md53858f62230ac3c915f300c664312c63f", "bar", salt, response));
	/* With a stored secret the user argument does not enter the hash. */
	assert_true(md5_verify("md53858f62230ac3c915f300c664312c63f", "other", salt, response));
}

static void test_md5_verify_rejects_wrong_answers(void **state)
{
	static const uint8_t salt[4] = { 1, 2, 3, 4 };
	static const uint8_t other_salt[4] = { 1, 2, 3, 5 };
	static const char response[] = "md56e4f0b50f7277feb74acbf2a7734c9cb";
	static const char *const bad[] = {
		"md56e4f0b50f7277feb74acbf2a7734c9cc",  /* last digit off */
		"md56e4f0b50f7277feb74acbf2a7734c9c",   /* truncated */
		"md56e4f0b50f7277feb74acbf2a7734c9cbb", /* extra digit */
		"6e4f0b50f7277feb74acbf2a7734c9cb",     /* no prefix */
		"md53858f62230ac3c915f300c664312c63f",  /* the secret itself */
		"foo",                                  /* the password itself */
		"",
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(bad); i++) {
		if (md5_verify("foo", "bar", salt, bad[i]))
			fail_msg("accepted '%s'", bad[i]);
	}
	assert_false(md5_verify("foo", "baz", salt, response));   /* other user */
	assert_false(md5_verify("fo0", "bar", salt, response));   /* other password */
	assert_false(md5_verify("foo", "bar", other_salt, response)); /* replayed */
}

/* A SCRAM secret is never treated as a plain password. */
static void test_md5_verify_refuses_scram_secret(void **state)
{
	static const char scram[] = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
				    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
				    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
	static const uint8_t salt[4] = { 9, 9, 9, 9 };
	char secret[MD5_SECRET_LEN + 1], response[MD5_SECRET_LEN + 1];

	/* The answer someone would compute by hashing the secret's text. */
	md5_secret(scram, "user", secret);
	md5_response(secret, salt, response);
	assert_true(md5_is_secret(response));
	assert_false(md5_verify(scram, "user", salt, response));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_md5_secret_vectors),
		cmocka_unit_test(test_md5_response_vectors),
		cmocka_unit_test(test_md5_is_secret_table),
		cmocka_unit_test(test_md5_verify_accepts_right_answer),
		cmocka_unit_test(test_md5_verify_rejects_wrong_answers),
		cmocka_unit_test(test_md5_verify_refuses_scram_secret),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
