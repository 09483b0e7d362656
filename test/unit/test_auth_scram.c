/*
 * test_auth_scram.c: SCRAM-SHA-256 against the RFC 7677 test vector, both
 * sides round-tripping against each other, wrong passwords, tables of
 * malformed peer messages and stored secrets, and pass-through (a ClientKey
 * proven to our server logs in to another server with the same secret).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth_scram.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define U8(s) ((const uint8_t *)(s))

/* RFC 7677 section 3. */
#define RFC_PASSWORD "pencil"
#define RFC_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_NONCE RFC_CNONCE RFC_SNONCE
#define RFC_SALT_B64 "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CLIENT_FIRST "n,,n=user,r=" RFC_CNONCE
#define RFC_SERVER_FIRST "r=" RFC_NONCE ",s=" RFC_SALT_B64 ",i=4096"
#define RFC_CLIENT_FINAL_NO_PROOF "c=biws,r=" RFC_NONCE
#define RFC_PROOF "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_CLIENT_FINAL RFC_CLIENT_FINAL_NO_PROOF ",p=" RFC_PROOF
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* StoredKey and ServerKey for "pencil" with the RFC salt, computed with
 * Python's hashlib.pbkdf2_hmac and hmac modules. */
#define RFC_STORED_KEY_B64 "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
#define RFC_SERVER_KEY_B64 "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define RFC_SECRET \
	"SCRAM-SHA-256$4096:" RFC_SALT_B64 "$" RFC_STORED_KEY_B64 ":" RFC_SERVER_KEY_B64

static const uint8_t rfc_salt[16] = { 0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
				      0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81 };

static void rfc_secret(struct scram_secret *sec)
{
	assert_true(scram_secret_parse(RFC_SECRET, sec));
}

/* Runs scram_server_first on a C string and asserts success. */
static void server_start(struct scram_server *s, const char *client_first, const char *snonce,
			 char *out, size_t outcap)
{
	struct scram_secret sec;
	size_t outlen = 0;

	rfc_secret(&sec);
	memset(s, 0, sizeof(*s));
	assert_int_equal(scram_server_first(s, &sec, snonce, U8(client_first),
					    strlen(client_first), out, outcap, &outlen),
			 SCRAM_OK);
	assert_int_equal(outlen, strlen(out));
}

/*
 * An independent client proof, straight from RFC 5802 with OpenSSL calls:
 * writes without_proof + ",p=" + base64(ClientKey XOR ClientSignature).
 */
static void make_client_final(const char *password, const char *bare, const char *server_first,
			      const char *without_proof, char *out, size_t outcap)
{
	uint8_t salted[32], client_key[32], stored_key[32], sig[32], proof[32];
	char auth[1024], proof_b64[64];
	unsigned int len = 0;
	size_t i;
	int n;

	assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), rfc_salt,
					   sizeof(rfc_salt), 4096, EVP_sha256(), 32, salted),
			 1);
	assert_non_null(HMAC(EVP_sha256(), salted, 32, U8("Client Key"), 10, client_key, &len));
	assert_int_equal(EVP_Digest(client_key, 32, stored_key, &len, EVP_sha256(), NULL), 1);
	n = snprintf(auth, sizeof(auth), "%s,%s,%s", bare, server_first, without_proof);
	assert_true(n > 0 && (size_t)n < sizeof(auth));
	assert_non_null(HMAC(EVP_sha256(), stored_key, 32, U8(auth), (size_t)n, sig, &len));
	for (i = 0; i < 32; i++)
		proof[i] = client_key[i] ^ sig[i];
	assert_int_equal(EVP_EncodeBlock((unsigned char *)proof_b64, proof, 32), 44);
	n = snprintf(out, outcap, "%s,p=%s", without_proof, proof_b64);
	assert_true(n > 0 && (size_t)n < outcap);
}

/* Secrets. */

static void test_scram_secret_from_password_matches_rfc7677(void **state)
{
	struct scram_secret derived, parsed;
	char text[256];
	size_t len = 0;

	assert_int_equal(scram_secret_from_password(RFC_PASSWORD, rfc_salt, sizeof(rfc_salt), 4096,
						    &derived),
			 SCRAM_OK);
	rfc_secret(&parsed);
	assert_int_equal(derived.iterations, 4096);
	assert_int_equal(derived.salt_len, 16);
	assert_memory_equal(derived.salt, rfc_salt, 16);
	assert_memory_equal(derived.stored_key, parsed.stored_key, SCRAM_KEY_LEN);
	assert_memory_equal(derived.server_key, parsed.server_key, SCRAM_KEY_LEN);
	assert_int_equal(scram_secret_format(&derived, text, sizeof(text), &len), SCRAM_OK);
	assert_string_equal(text, RFC_SECRET);
	assert_int_equal(len, strlen(RFC_SECRET));
}

static void test_scram_secret_parse_format_round_trip(void **state)
{
	struct scram_secret a, b;
	char text[256], text2[256];
	size_t len = 0, len2 = 0;

	/* Random salt of the default size, one iteration to stay fast. */
	assert_int_equal(scram_secret_from_password("s3cret", NULL, 0, 1, &a), SCRAM_OK);
	assert_int_equal(a.salt_len, SCRAM_DEFAULT_SALT_LEN);
	assert_int_equal(scram_secret_format(&a, text, sizeof(text), &len), SCRAM_OK);
	assert_true(scram_is_secret(text));
	assert_true(scram_secret_parse(text, &b));
	assert_int_equal(b.iterations, 1);
	assert_int_equal(b.salt_len, a.salt_len);
	assert_memory_equal(b.salt, a.salt, a.salt_len);
	assert_memory_equal(b.stored_key, a.stored_key, SCRAM_KEY_LEN);
	assert_memory_equal(b.server_key, a.server_key, SCRAM_KEY_LEN);
	assert_int_equal(scram_secret_format(&b, text2, sizeof(text2), &len2), SCRAM_OK);
	assert_string_equal(text, text2);
	assert_int_equal(len, len2);
}

static void test_scram_secret_random_salts_differ(void **state)
{
	struct scram_secret a, b;

	assert_int_equal(scram_secret_from_password("pw", NULL, 0, 1, &a), SCRAM_OK);
	assert_int_equal(scram_secret_from_password("pw", NULL, 0, 1, &b), SCRAM_OK);
	assert_memory_not_equal(a.salt, b.salt, SCRAM_DEFAULT_SALT_LEN);
	assert_memory_not_equal(a.stored_key, b.stored_key, SCRAM_KEY_LEN);
}

static void test_scram_secret_from_password_rejects_bad_parameters(void **state)
{
	uint8_t salt[SCRAM_SALT_MAX + 1] = { 1 };
	struct scram_secret sec;

	assert_int_equal(scram_secret_from_password("pw", salt, 16, 0, &sec), SCRAM_EPROTO);
	assert_int_equal(scram_secret_from_password("pw", salt, 16, -5, &sec), SCRAM_EPROTO);
	assert_int_equal(scram_secret_from_password("pw", salt, 0, 1, &sec), SCRAM_EPROTO);
	assert_int_equal(scram_secret_from_password("pw", salt, SCRAM_SALT_MAX + 1, 1, &sec),
			 SCRAM_EPROTO);
	assert_int_equal(scram_secret_from_password("pw", salt, SCRAM_SALT_MAX, 1, &sec),
			 SCRAM_OK);
	assert_int_equal(sec.salt_len, SCRAM_SALT_MAX);
}

static void test_scram_secret_parse_rejects_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"SCRAM-SHA-256$",
		"SCRAM-SHA-1$4096:" RFC_SALT_B64 "$" RFC_STORED_KEY_B64 ":" RFC_SERVER_KEY_B64,
		"scram-sha-256$4096:" RFC_SALT_B64 "$" RFC_STORED_KEY_B64 ":" RFC_SERVER_KEY_B64,
		"SCRAM-SHA-256$0:" RFC_SALT_B64 "$" RFC_STORED_KEY_B64 ":" RFC_SERVER_KEY_B64,
		"SCRAM-SHA-256$-1:" RFC_SALT_B64 "$" RFC_STORED_KEY_B64 ":" RFC_SERVER_KEY_B64,
		"SCRAM-SHA-256$:" RFC_SALT_B64 "$" RFC_STORED_KEY_B64 ":" RFC_SERVER_KEY_B64,
		"SCRAM-SHA-256$40x6:" RFC_SALT_B64 "$" RFC_STORED_KEY_B64 ":" RFC_SERVER_KEY_B64,
		"SCRAM-SHA-256$99999999999:" RFC_SALT_B64 "$" RFC_STORED_KEY_B64
		":" RFC_SERVER_KEY_B64,
		"SCRAM-SHA-256$2147483648:" RFC_SALT_B64 "$" RFC_STORED_KEY_B64
		":" RFC_SERVER_KEY_B64,
		"SCRAM-SHA-256$4096" RFC_SALT_B64 "$" RFC_STORED_KEY_B64 ":" RFC_SERVER_KEY_B64,
		"SCRAM-SHA-256$4096:" RFC_SALT_B64 RFC_STORED_KEY_B64 ":" RFC_SERVER_KEY_B64,
		"SCRAM-SHA-256$4096:" RFC_SALT_B64 "$" RFC_STORED_KEY_B64 RFC_SERVER_KEY_B64,
		"SCRAM-SHA-256$4096:$" RFC_STORED_KEY_B64 ":" RFC_SERVER_KEY_B64,
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=$" RFC_STORED_KEY_B64
		":" RFC_SERVER_KEY_B64,
		"SCRAM-SHA-256$4096:W22ZaJ0S NY7soEsUEjb6gQ==$" RFC_STORED_KEY_B64
		":" RFC_SERVER_KEY_B64,
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6g=Q=$" RFC_STORED_KEY_B64
		":" RFC_SERVER_KEY_B64,
		/* StoredKey of 31 and 33 bytes. */
		"SCRAM-SHA-256$4096:" RFC_SALT_B64
		"$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4g==:" RFC_SERVER_KEY_B64,
		"SCRAM-SHA-256$4096:" RFC_SALT_B64 "$" RFC_STORED_KEY_B64
		":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dUA",
		"SCRAM-SHA-256$4096:" RFC_SALT_B64 "$" RFC_STORED_KEY_B64 ":",
		"SCRAM-SHA-256$4096:" RFC_SALT_B64 "$" RFC_STORED_KEY_B64 ":" RFC_SERVER_KEY_B64
		"x",
		"SCRAM-SHA-256$4096:" RFC_SALT_B64 "$" RFC_STORED_KEY_B64 ":" RFC_SERVER_KEY_B64
		"\n",
		"md53858f62230ac3c915f300c664312c63f",
		"pencil",
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(bad); i++) {
		struct scram_secret sec;

		if (scram_secret_parse(bad[i], &sec) || scram_is_secret(bad[i]))
			fail_msg("accepted '%s'", bad[i]);
	}
	assert_true(scram_is_secret(RFC_SECRET));
}

static void test_scram_secret_format_needs_room(void **state)
{
	struct scram_secret sec;
	char text[256];
	size_t len = 0, need = strlen(RFC_SECRET);

	rfc_secret(&sec);
	assert_int_equal(scram_secret_format(&sec, text, need, &len), SCRAM_ESPACE);
	assert_int_equal(scram_secret_format(&sec, text, 10, &len), SCRAM_ESPACE);
	assert_int_equal(scram_secret_format(&sec, text, 0, &len), SCRAM_ESPACE);
	assert_int_equal(scram_secret_format(&sec, text, need + 1, &len), SCRAM_OK);
	assert_string_equal(text, RFC_SECRET);
}

/* Server side. */

static void test_scram_server_rfc7677(void **state)
{
	struct scram_server s;
	char out[SCRAM_MSG_MAX];
	size_t outlen = 0;

	server_start(&s, RFC_CLIENT_FIRST, RFC_SNONCE, out, sizeof(out));
	assert_string_equal(out, RFC_SERVER_FIRST);
	assert_int_equal(s.state, SCRAM_SERVER_SENT_FIRST);
	assert_string_equal(s.nonce, RFC_NONCE);
	assert_string_equal(s.client_first_bare, "n=user,r=" RFC_CNONCE);

	assert_int_equal(scram_server_final(&s, U8(RFC_CLIENT_FINAL), strlen(RFC_CLIENT_FINAL),
					    out, sizeof(out), &outlen),
			 SCRAM_OK);
	assert_string_equal(out, RFC_SERVER_FINAL);
	assert_int_equal(outlen, strlen(RFC_SERVER_FINAL));
	assert_int_equal(s.state, SCRAM_SERVER_DONE);
}

static void test_scram_server_rejects_wrong_proof(void **state)
{
	struct scram_server s;
	char out[SCRAM_MSG_MAX], final[256];
	size_t outlen = 0;

	/* The RFC's message with the proof of another password. */
	server_start(&s, RFC_CLIENT_FIRST, RFC_SNONCE, out, sizeof(out));
	make_client_final("pencil2", "n=user,r=" RFC_CNONCE, RFC_SERVER_FIRST,
			  RFC_CLIENT_FINAL_NO_PROOF, final, sizeof(final));
	assert_int_equal(scram_server_final(&s, U8(final), strlen(final), out, sizeof(out),
					    &outlen),
			 SCRAM_EPROOF);
	assert_int_equal(s.state, SCRAM_SERVER_DONE);
	/* One exchange, one guess: a retry with the right proof is refused. */
	assert_int_equal(scram_server_final(&s, U8(RFC_CLIENT_FINAL), strlen(RFC_CLIENT_FINAL),
					    out, sizeof(out), &outlen),
			 SCRAM_ESTATE);

	/* The RFC's proof with one bit flipped ('d' -> 'e' in base64). */
	server_start(&s, RFC_CLIENT_FIRST, RFC_SNONCE, out, sizeof(out));
	snprintf(final, sizeof(final), "%s", RFC_CLIENT_FINAL);
	final[strlen(RFC_CLIENT_FINAL_NO_PROOF) + 3] = 'e';
	assert_int_equal(scram_server_final(&s, U8(final), strlen(final), out, sizeof(out),
					    &outlen),
			 SCRAM_EPROOF);
}

/* The proof covers the whole client-final-without-proof, so changing the
 * nonce in the client-first changes what must be signed. */
static void test_scram_server_proof_bound_to_auth_message(void **state)
{
	struct scram_server s;
	char out[SCRAM_MSG_MAX];
	size_t outlen = 0;

	/* Same nonce, but "n=someone" instead of "n=user" in client-first. */
	server_start(&s, "n,,n=someone,r=" RFC_CNONCE, RFC_SNONCE, out, sizeof(out));
	assert_string_equal(out, RFC_SERVER_FIRST);
	assert_int_equal(scram_server_final(&s, U8(RFC_CLIENT_FINAL), strlen(RFC_CLIENT_FINAL),
					    out, sizeof(out), &outlen),
			 SCRAM_EPROOF);
}

struct msg_case {
	const char *name;
	const char *msg;
	size_t len; /* 0: strlen(msg) */
	int rc;
};

static void test_scram_server_client_first_table(void **state)
{
	static char too_long[SCRAM_MSG_MAX + 2];
	static char long_nonce[300];
	const struct msg_case cases[] = {
		{ "RFC 7677", RFC_CLIENT_FIRST, 0, SCRAM_OK },
		{ "empty user, as libpq", "n,,n=,r=abc", 0, SCRAM_OK },
		{ "client supports binding, thinks we do not", "y,,n=,r=abc", 0, SCRAM_OK },
		{ "extension after nonce", "n,,n=,r=abc,x=1", 0, SCRAM_OK },
		{ "channel binding requested", "p=tls-server-end-point,,n=,r=abc", 0,
		  SCRAM_EPROTO },
		{ "authzid", "n,a=admin,n=,r=abc", 0, SCRAM_EPROTO },
		{ "unknown gs2 flag", "x,,n=,r=abc", 0, SCRAM_EPROTO },
		{ "p flag without binding name", "p,,n=,r=abc", 0, SCRAM_EPROTO },
		{ "uppercase flag", "N,,n=,r=abc", 0, SCRAM_EPROTO },
		{ "gs2 header only", "n,,", 0, SCRAM_EPROTO },
		{ "truncated gs2 header", "n,", 0, SCRAM_EPROTO },
		{ "empty", "", 0, SCRAM_EPROTO },
		{ "no gs2 header", "n=,r=abc", 0, SCRAM_EPROTO },
		{ "missing n=", "n,,r=abc", 0, SCRAM_EPROTO },
		{ "missing r=", "n,,n=user", 0, SCRAM_EPROTO },
		{ "empty nonce", "n,,n=user,r=", 0, SCRAM_EPROTO },
		{ "mandatory extension", "n,,m=ext,n=user,r=abc", 0, SCRAM_EPROTO },
		{ "nonce before user", "n,,r=abc,n=user", 0, SCRAM_EPROTO },
		{ "space in nonce", "n,,n=,r=ab c", 0, SCRAM_EPROTO },
		{ "NUL in nonce", "n,,n=,r=ab\0c", 11, SCRAM_EPROTO },
		{ "high byte in nonce", "n,,n=,r=ab\x80", 0, SCRAM_EPROTO },
		{ "trailing comma", "n,,n=,r=abc,", 0, SCRAM_EPROTO },
		{ "extension without value", "n,,n=,r=abc,x", 0, SCRAM_EPROTO },
		{ "nonce over SCRAM_NONCE_MAX", long_nonce, 0, SCRAM_EPROTO },
		{ "message over SCRAM_MSG_MAX", too_long, 0, SCRAM_EPROTO },
	};
	struct scram_secret sec;
	size_t i;

	memcpy(long_nonce, "n,,n=,r=", 8);
	memset(long_nonce + 8, 'a', sizeof(long_nonce) - 9);
	memcpy(too_long, "n,,n=,r=", 8);
	memset(too_long + 8, 'a', sizeof(too_long) - 9);
	rfc_secret(&sec);
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct scram_server s;
		char out[SCRAM_MSG_MAX] = "";
		size_t outlen = 0, len = cases[i].len ? cases[i].len : strlen(cases[i].msg);
		int rc;

		memset(&s, 0, sizeof(s));
		rc = scram_server_first(&s, &sec, "SNONCE", U8(cases[i].msg), len, out,
					sizeof(out), &outlen);
		if (rc != cases[i].rc)
			fail_msg("case '%s': got %d, want %d", cases[i].name, rc, cases[i].rc);
		if (rc == SCRAM_OK) {
			assert_int_equal(s.state, SCRAM_SERVER_SENT_FIRST);
			assert_memory_equal(out, "r=", 2);
		} else {
			assert_int_equal(s.state, SCRAM_SERVER_INIT);
		}
	}
}

static void test_scram_server_client_final_table(void **state)
{
	const struct msg_case cases[] = {
		{ "RFC 7677", RFC_CLIENT_FINAL, 0, SCRAM_OK },
		{ "c= of y,, after n,,", "c=eSws,r=" RFC_NONCE ",p=" RFC_PROOF, 0, SCRAM_EPROTO },
		{ "channel binding data", "c=cD10bHMtdW5pcXVlLCw=,r=" RFC_NONCE ",p=" RFC_PROOF, 0,
		  SCRAM_EPROTO },
		{ "missing c=", "r=" RFC_NONCE ",p=" RFC_PROOF, 0, SCRAM_EPROTO },
		{ "empty c=", "c=,r=" RFC_NONCE ",p=" RFC_PROOF, 0, SCRAM_EPROTO },
		{ "other nonce",
		  "c=biws,r=" RFC_CNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,p=" RFC_PROOF, 0,
		  SCRAM_EPROTO },
		{ "client nonce only", "c=biws,r=" RFC_CNONCE ",p=" RFC_PROOF, 0, SCRAM_EPROTO },
		{ "nonce with extra", "c=biws,r=" RFC_NONCE "x,p=" RFC_PROOF, 0, SCRAM_EPROTO },
		{ "missing proof", RFC_CLIENT_FINAL_NO_PROOF, 0, SCRAM_EPROTO },
		{ "proof not last", RFC_CLIENT_FINAL ",x=1", 0, SCRAM_EPROTO },
		{ "empty proof", RFC_CLIENT_FINAL_NO_PROOF ",p=", 0, SCRAM_EPROTO },
		{ "proof not base64", RFC_CLIENT_FINAL_NO_PROOF ",p=!!!!", 0, SCRAM_EPROTO },
		{ "proof without padding", RFC_CLIENT_FINAL_NO_PROOF
		  ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ", 0, SCRAM_EPROTO },
		{ "proof of 31 bytes", RFC_CLIENT_FINAL_NO_PROOF
		  ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndQ==", 0, SCRAM_EPROTO },
		{ "proof of 33 bytes", RFC_CLIENT_FINAL_NO_PROOF
		  ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQA", 0, SCRAM_EPROTO },
		{ "NUL inside", RFC_CLIENT_FINAL_NO_PROOF "\0,p=" RFC_PROOF,
		  sizeof(RFC_CLIENT_FINAL_NO_PROOF "\0,p=" RFC_PROOF) - 1, SCRAM_EPROTO },
		{ "truncated", "c=bi", 0, SCRAM_EPROTO },
		{ "empty", "", 0, SCRAM_EPROTO },
		{ "client-first again", RFC_CLIENT_FIRST, 0, SCRAM_EPROTO },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct scram_server s;
		char out[SCRAM_MSG_MAX];
		size_t outlen = 0, len = cases[i].len ? cases[i].len : strlen(cases[i].msg);
		int rc;

		server_start(&s, RFC_CLIENT_FIRST, RFC_SNONCE, out, sizeof(out));
		rc = scram_server_final(&s, U8(cases[i].msg), len, out, sizeof(out), &outlen);
		if (rc != cases[i].rc)
			fail_msg("case '%s': got %d, want %d", cases[i].name, rc, cases[i].rc);
		assert_int_equal(s.state, SCRAM_SERVER_DONE);
	}
}

/* A client that sent "y,," must send c=eSws, with a proof over it. */
static void test_scram_server_gs2_y_needs_matching_cbind(void **state)
{
	struct scram_server s;
	char out[SCRAM_MSG_MAX], final[256];
	size_t outlen = 0;

	server_start(&s, "y,,n=,r=abc", "XYZ", out, sizeof(out));
	assert_string_equal(out, "r=abcXYZ,s=" RFC_SALT_B64 ",i=4096");
	make_client_final(RFC_PASSWORD, "n=,r=abc", out, "c=eSws,r=abcXYZ", final,
			  sizeof(final));
	assert_int_equal(scram_server_final(&s, U8(final), strlen(final), out, sizeof(out),
					    &outlen),
			 SCRAM_OK);
	assert_memory_equal(out, "v=", 2);

	/* The same client claiming "n,," in its final message. */
	server_start(&s, "y,,n=,r=abc", "XYZ", out, sizeof(out));
	make_client_final(RFC_PASSWORD, "n=,r=abc", out, "c=biws,r=abcXYZ", final,
			  sizeof(final));
	assert_int_equal(scram_server_final(&s, U8(final), strlen(final), out, sizeof(out),
					    &outlen),
			 SCRAM_EPROTO);
}

/* Extensions between r= and p= are covered by the proof and accepted. */
static void test_scram_server_accepts_extension_before_proof(void **state)
{
	struct scram_server s;
	char out[SCRAM_MSG_MAX], final[256];
	size_t outlen = 0;

	server_start(&s, RFC_CLIENT_FIRST, RFC_SNONCE, out, sizeof(out));
	make_client_final(RFC_PASSWORD, "n=user,r=" RFC_CNONCE, RFC_SERVER_FIRST,
			  RFC_CLIENT_FINAL_NO_PROOF ",x=ext", final, sizeof(final));
	assert_int_equal(scram_server_final(&s, U8(final), strlen(final), out, sizeof(out),
					    &outlen),
			 SCRAM_OK);
}

static void test_scram_server_random_nonce(void **state)
{
	struct scram_server s;
	char out[SCRAM_MSG_MAX];
	const char *comma;
	size_t i, snonce_len;

	server_start(&s, "n,,n=,r=abc", NULL, out, sizeof(out));
	comma = strchr(out, ',');
	assert_non_null(comma);
	assert_memory_equal(out, "r=abc", 5);
	snonce_len = (size_t)(comma - out) - 5;
	assert_int_equal(snonce_len, 24); /* 18 random bytes in base64 */
	for (i = 5; i < 5 + snonce_len; i++)
		assert_true(out[i] > 0x20 && out[i] < 0x7f && out[i] != ',');
	assert_int_equal(strlen(s.nonce), 3 + 24);
}

/* Client side. */

static void client_start(struct scram_client *c, const char *password, const char *cnonce)
{
	char out[SCRAM_MSG_MAX];
	size_t outlen = 0;

	memset(c, 0, sizeof(*c));
	assert_int_equal(scram_client_first(c, password, cnonce, out, sizeof(out), &outlen),
			 SCRAM_OK);
	assert_int_equal(c->state, SCRAM_CLIENT_SENT_FIRST);
}

/*
 * Our client sends an empty n= where RFC 7677 has n=user; with the bare
 * message swapped for the RFC's, the client must produce the RFC's bytes.
 */
static void test_scram_client_matches_rfc7677(void **state)
{
	struct scram_client c;
	char out[SCRAM_MSG_MAX];
	size_t outlen = 0;

	memset(&c, 0, sizeof(c));
	assert_int_equal(scram_client_first(&c, RFC_PASSWORD, RFC_CNONCE, out, sizeof(out),
					    &outlen),
			 SCRAM_OK);
	assert_string_equal(out, "n,,n=,r=" RFC_CNONCE);
	assert_int_equal(outlen, strlen(out));
	assert_string_equal(c.client_first_bare, "n=,r=" RFC_CNONCE);
	snprintf(c.client_first_bare, sizeof(c.client_first_bare), "n=user,r=%s", RFC_CNONCE);

	assert_int_equal(scram_client_final(&c, U8(RFC_SERVER_FIRST), strlen(RFC_SERVER_FIRST),
					    out, sizeof(out), &outlen),
			 SCRAM_OK);
	assert_string_equal(out, RFC_CLIENT_FINAL);
	assert_int_equal(outlen, strlen(RFC_CLIENT_FINAL));
	assert_int_equal(c.state, SCRAM_CLIENT_SENT_FINAL);
	assert_int_equal(scram_client_verify(&c, U8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL)),
			 SCRAM_OK);
	assert_int_equal(c.state, SCRAM_CLIENT_DONE);
}

/* Our client against our server, random nonces, both outcomes. */
static void round_trip(const char *client_pw, const struct scram_secret *sec, int want_server,
		       int want_client)
{
	struct scram_client c;
	struct scram_server s;
	char m1[SCRAM_MSG_MAX], m2[SCRAM_MSG_MAX], m3[SCRAM_MSG_MAX], m4[SCRAM_MSG_MAX];
	size_t l1 = 0, l2 = 0, l3 = 0, l4 = 0;

	memset(&c, 0, sizeof(c));
	memset(&s, 0, sizeof(s));
	assert_int_equal(scram_client_first(&c, client_pw, NULL, m1, sizeof(m1), &l1), SCRAM_OK);
	assert_memory_equal(m1, "n,,n=,r=", 8);
	assert_int_equal(l1, 8 + 24);
	assert_int_equal(scram_server_first(&s, sec, NULL, U8(m1), l1, m2, sizeof(m2), &l2),
			 SCRAM_OK);
	assert_int_equal(scram_client_final(&c, U8(m2), l2, m3, sizeof(m3), &l3), SCRAM_OK);
	assert_int_equal(scram_server_final(&s, U8(m3), l3, m4, sizeof(m4), &l4), want_server);
	if (want_server == SCRAM_OK)
		assert_int_equal(scram_client_verify(&c, U8(m4), l4), want_client);
}

static void test_scram_client_server_round_trip(void **state)
{
	struct scram_secret sec;
	static const uint8_t salt[] = "saltsaltsalt";

	rfc_secret(&sec);
	round_trip(RFC_PASSWORD, &sec, SCRAM_OK, SCRAM_OK);
	assert_int_equal(scram_secret_from_password("correct horse", salt, sizeof(salt) - 1, 2,
						    &sec),
			 SCRAM_OK);
	round_trip("correct horse", &sec, SCRAM_OK, SCRAM_OK);
	assert_int_equal(scram_secret_from_password("", NULL, 0, 1, &sec), SCRAM_OK);
	round_trip("", &sec, SCRAM_OK, SCRAM_OK);
}

static void test_scram_wrong_password_is_eproof(void **state)
{
	struct scram_secret sec;

	rfc_secret(&sec);
	round_trip("pencil2", &sec, SCRAM_EPROOF, SCRAM_OK);
	round_trip("Pencil", &sec, SCRAM_EPROOF, SCRAM_OK);
	round_trip("", &sec, SCRAM_EPROOF, SCRAM_OK);
}

static void test_scram_client_server_first_table(void **state)
{
	const struct msg_case cases[] = {
		{ "RFC 7677", RFC_SERVER_FIRST, 0, SCRAM_OK },
		{ "extension after i", RFC_SERVER_FIRST ",x=y", 0, SCRAM_OK },
		{ "nonce does not extend ours", "r=XXXXNGfwEbeRWgbNEkqOabc,s=" RFC_SALT_B64 ",i=1",
		  0, SCRAM_EPROTO },
		{ "nonce only echoes ours", "r=" RFC_CNONCE ",s=" RFC_SALT_B64 ",i=1", 0,
		  SCRAM_EPROTO },
		{ "nonce shorter than ours", "r=rOprNG,s=" RFC_SALT_B64 ",i=1", 0, SCRAM_EPROTO },
		{ "space in server nonce", "r=" RFC_CNONCE "a b,s=" RFC_SALT_B64 ",i=1", 0,
		  SCRAM_EPROTO },
		{ "missing salt", "r=" RFC_NONCE ",i=4096", 0, SCRAM_EPROTO },
		{ "empty salt", "r=" RFC_NONCE ",s=,i=4096", 0, SCRAM_EPROTO },
		{ "salt not base64", "r=" RFC_NONCE ",s=W22ZaJ0S*Y7soEsUEjb6gQ==,i=4096", 0,
		  SCRAM_EPROTO },
		{ "salt bad padding", "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096", 0,
		  SCRAM_EPROTO },
		{ "missing iterations", "r=" RFC_NONCE ",s=" RFC_SALT_B64, 0, SCRAM_EPROTO },
		{ "zero iterations", "r=" RFC_NONCE ",s=" RFC_SALT_B64 ",i=0", 0, SCRAM_EPROTO },
		{ "negative iterations", "r=" RFC_NONCE ",s=" RFC_SALT_B64 ",i=-1", 0,
		  SCRAM_EPROTO },
		{ "iterations not a number", "r=" RFC_NONCE ",s=" RFC_SALT_B64 ",i=4k", 0,
		  SCRAM_EPROTO },
		{ "iterations overflow", "r=" RFC_NONCE ",s=" RFC_SALT_B64 ",i=99999999999", 0,
		  SCRAM_EPROTO },
		{ "empty iterations", "r=" RFC_NONCE ",s=" RFC_SALT_B64 ",i=", 0, SCRAM_EPROTO },
		{ "mandatory extension", "m=x,r=" RFC_NONCE ",s=" RFC_SALT_B64 ",i=4096", 0,
		  SCRAM_EPROTO },
		{ "fields out of order", "s=" RFC_SALT_B64 ",r=" RFC_NONCE ",i=4096", 0,
		  SCRAM_EPROTO },
		{ "server error instead", "e=other-error", 0, SCRAM_EPROTO },
		{ "trailing comma", RFC_SERVER_FIRST ",", 0, SCRAM_EPROTO },
		{ "NUL inside", "r=" RFC_NONCE "\0,s=" RFC_SALT_B64 ",i=4096",
		  sizeof("r=" RFC_NONCE "\0,s=" RFC_SALT_B64 ",i=4096") - 1, SCRAM_EPROTO },
		{ "empty", "", 0, SCRAM_EPROTO },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct scram_client c;
		char out[SCRAM_MSG_MAX];
		size_t outlen = 0, len = cases[i].len ? cases[i].len : strlen(cases[i].msg);
		int rc;

		client_start(&c, RFC_PASSWORD, RFC_CNONCE);
		rc = scram_client_final(&c, U8(cases[i].msg), len, out, sizeof(out), &outlen);
		if (rc != cases[i].rc)
			fail_msg("case '%s': got %d, want %d", cases[i].name, rc, cases[i].rc);
		assert_int_equal(c.state, rc == SCRAM_OK ? SCRAM_CLIENT_SENT_FINAL
							 : SCRAM_CLIENT_SENT_FIRST);
	}
}

static void test_scram_client_server_final_table(void **state)
{
	const struct msg_case cases[] = {
		{ "RFC 7677 (bare swapped)", RFC_SERVER_FINAL, 0, SCRAM_OK },
		{ "extension after v", RFC_SERVER_FINAL ",x=y", 0, SCRAM_OK },
		{ "server error", "e=invalid-proof", 0, SCRAM_EPROOF },
		{ "empty server error", "e=", 0, SCRAM_EPROOF },
		{ "wrong signature", "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", 0,
		  SCRAM_EPROOF },
		{ "signature of 31 bytes", "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95A==", 0,
		  SCRAM_EPROTO },
		{ "signature not base64", "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl9 G4=", 0,
		  SCRAM_EPROTO },
		{ "empty signature", "v=", 0, SCRAM_EPROTO },
		{ "unknown attribute", "x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", 0,
		  SCRAM_EPROTO },
		{ "trailing comma", RFC_SERVER_FINAL ",", 0, SCRAM_EPROTO },
		{ "no attribute", "6rriTRBi23WpRR", 0, SCRAM_EPROTO },
		{ "empty", "", 0, SCRAM_EPROTO },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct scram_client c;
		char out[SCRAM_MSG_MAX];
		size_t outlen = 0, len = cases[i].len ? cases[i].len : strlen(cases[i].msg);
		int rc;

		client_start(&c, RFC_PASSWORD, RFC_CNONCE);
		snprintf(c.client_first_bare, sizeof(c.client_first_bare), "n=user,r=%s",
			 RFC_CNONCE);
		assert_int_equal(scram_client_final(&c, U8(RFC_SERVER_FIRST),
						    strlen(RFC_SERVER_FIRST), out, sizeof(out),
						    &outlen),
				 SCRAM_OK);
		rc = scram_client_verify(&c, U8(cases[i].msg), len);
		if (rc != cases[i].rc)
			fail_msg("case '%s': got %d, want %d", cases[i].name, rc, cases[i].rc);
		assert_int_equal(c.state, SCRAM_CLIENT_DONE);
	}
}

static void test_scram_client_first_checks_inputs(void **state)
{
	struct scram_client c;
	char out[SCRAM_MSG_MAX], long_pw[300], long_nonce[SCRAM_NONCE_MAX + 1];
	size_t outlen = 0;

	memset(long_pw, 'p', sizeof(long_pw) - 1);
	long_pw[sizeof(long_pw) - 1] = '\0';
	memset(long_nonce, 'n', sizeof(long_nonce) - 1);
	long_nonce[sizeof(long_nonce) - 1] = '\0';

	memset(&c, 0, sizeof(c));
	assert_int_equal(scram_client_first(&c, long_pw, "abc", out, sizeof(out), &outlen),
			 SCRAM_ESPACE);
	assert_int_equal(scram_client_first(&c, "pw", "a,b", out, sizeof(out), &outlen),
			 SCRAM_EPROTO);
	assert_int_equal(scram_client_first(&c, "pw", "", out, sizeof(out), &outlen),
			 SCRAM_EPROTO);
	assert_int_equal(scram_client_first(&c, "pw", long_nonce, out, sizeof(out), &outlen),
			 SCRAM_EPROTO);
	assert_int_equal(c.state, SCRAM_CLIENT_INIT);
}

static void test_scram_random_client_nonces_differ(void **state)
{
	struct scram_client a, b;

	client_start(&a, "pw", NULL);
	client_start(&b, "pw", NULL);
	assert_int_equal(strlen(a.client_nonce), 24);
	assert_string_not_equal(a.client_nonce, b.client_nonce);
}

/* Calls out of order are refused without touching the exchange. */
static void test_scram_calls_out_of_order(void **state)
{
	struct scram_secret sec;
	struct scram_server s;
	struct scram_client c;
	char out[SCRAM_MSG_MAX];
	size_t outlen = 0;

	rfc_secret(&sec);
	memset(&s, 0, sizeof(s));
	memset(&c, 0, sizeof(c));
	assert_int_equal(scram_server_final(&s, U8(RFC_CLIENT_FINAL), strlen(RFC_CLIENT_FINAL),
					    out, sizeof(out), &outlen),
			 SCRAM_ESTATE);
	assert_int_equal(scram_client_final(&c, U8(RFC_SERVER_FIRST), strlen(RFC_SERVER_FIRST),
					    out, sizeof(out), &outlen),
			 SCRAM_ESTATE);
	assert_int_equal(scram_client_verify(&c, U8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL)),
			 SCRAM_ESTATE);

	server_start(&s, RFC_CLIENT_FIRST, RFC_SNONCE, out, sizeof(out));
	assert_int_equal(scram_server_first(&s, &sec, RFC_SNONCE, U8(RFC_CLIENT_FIRST),
					    strlen(RFC_CLIENT_FIRST), out, sizeof(out), &outlen),
			 SCRAM_ESTATE);
	client_start(&c, RFC_PASSWORD, RFC_CNONCE);
	assert_int_equal(scram_client_first(&c, RFC_PASSWORD, RFC_CNONCE, out, sizeof(out),
					    &outlen),
			 SCRAM_ESTATE);
	assert_int_equal(scram_client_verify(&c, U8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL)),
			 SCRAM_ESTATE);
}

/* Every output is checked against outcap, NUL included. */
static void test_scram_outputs_check_outcap(void **state)
{
	struct scram_secret sec;
	struct scram_server s;
	struct scram_client c;
	char out[SCRAM_MSG_MAX];
	size_t outlen = 0;

	rfc_secret(&sec);
	memset(&s, 0, sizeof(s));
	assert_int_equal(scram_server_first(&s, &sec, RFC_SNONCE, U8(RFC_CLIENT_FIRST),
					    strlen(RFC_CLIENT_FIRST), out,
					    strlen(RFC_SERVER_FIRST), &outlen),
			 SCRAM_ESPACE);
	assert_int_equal(s.state, SCRAM_SERVER_INIT);
	assert_int_equal(scram_server_first(&s, &sec, RFC_SNONCE, U8(RFC_CLIENT_FIRST),
					    strlen(RFC_CLIENT_FIRST), out,
					    strlen(RFC_SERVER_FIRST) + 1, &outlen),
			 SCRAM_OK);
	assert_string_equal(out, RFC_SERVER_FIRST);
	assert_int_equal(scram_server_final(&s, U8(RFC_CLIENT_FINAL), strlen(RFC_CLIENT_FINAL),
					    out, strlen(RFC_SERVER_FINAL), &outlen),
			 SCRAM_ESPACE);

	memset(&c, 0, sizeof(c));
	assert_int_equal(scram_client_first(&c, RFC_PASSWORD, RFC_CNONCE, out, 10, &outlen),
			 SCRAM_ESPACE);
	assert_int_equal(c.state, SCRAM_CLIENT_INIT);
	client_start(&c, RFC_PASSWORD, RFC_CNONCE);
	assert_int_equal(scram_client_final(&c, U8(RFC_SERVER_FIRST), strlen(RFC_SERVER_FIRST),
					    out, 50, &outlen),
			 SCRAM_ESPACE);
	assert_int_equal(c.state, SCRAM_CLIENT_SENT_FIRST);
}

/* ---- keys, split client steps, pass-through ---- */

static void test_scram_keys_from_password_match_secret(void **state)
{
	struct scram_secret sec;
	struct scram_params params;
	struct scram_keys keys;

	rfc_secret(&sec);
	scram_secret_params(&sec, &params);
	assert_int_equal(params.iterations, 4096);
	assert_int_equal(params.salt_len, sizeof(rfc_salt));
	assert_memory_equal(params.salt, rfc_salt, sizeof(rfc_salt));
	assert_int_equal(scram_keys_from_password(RFC_PASSWORD, &params, &keys), SCRAM_OK);
	assert_memory_equal(keys.stored_key, sec.stored_key, SCRAM_KEY_LEN);
	assert_memory_equal(keys.server_key, sec.server_key, SCRAM_KEY_LEN);
	params.iterations = 0;
	assert_int_equal(scram_keys_from_password(RFC_PASSWORD, &params, &keys), SCRAM_EPROTO);
	params.iterations = 4096;
	params.salt_len = 0;
	assert_int_equal(scram_keys_from_password(RFC_PASSWORD, &params, &keys), SCRAM_EPROTO);
}

static void test_scram_params_equal(void **state)
{
	struct scram_params a, b;

	memset(&a, 0, sizeof(a));
	a.iterations = 4096;
	a.salt_len = sizeof(rfc_salt);
	memcpy(a.salt, rfc_salt, sizeof(rfc_salt));
	b = a;
	assert_true(scram_params_equal(&a, &b));
	b.iterations = 4097;
	assert_false(scram_params_equal(&a, &b));
	b = a;
	b.salt[3] ^= 1;
	assert_false(scram_params_equal(&a, &b));
	b = a;
	b.salt_len--;
	assert_false(scram_params_equal(&a, &b));
}

/* read_server_first + final_keys give what scram_client_final gives. */
static void test_scram_client_split_steps_match_rfc7677(void **state)
{
	struct scram_client c;
	struct scram_params params;
	struct scram_keys keys;
	char out[SCRAM_MSG_MAX];
	size_t outlen = 0;

	client_start(&c, RFC_PASSWORD, RFC_CNONCE);
	/* The RFC's client sent n=user (see test_scram_client_matches_rfc7677). */
	snprintf(c.client_first_bare, sizeof(c.client_first_bare), "n=user,r=%s", RFC_CNONCE);
	assert_int_equal(scram_client_final_keys(&c, NULL, out, sizeof(out), &outlen),
			 SCRAM_ESTATE);
	assert_int_equal(scram_client_read_server_first(&c, U8(RFC_SERVER_FIRST),
							strlen(RFC_SERVER_FIRST), &params),
			 SCRAM_OK);
	assert_int_equal(c.state, SCRAM_CLIENT_GOT_SERVER_FIRST);
	assert_int_equal(params.iterations, 4096);
	assert_memory_equal(params.salt, rfc_salt, sizeof(rfc_salt));
	assert_int_equal(scram_keys_from_password(RFC_PASSWORD, &params, &keys), SCRAM_OK);
	/* No keys and no pass-through: nothing to answer with. */
	assert_int_equal(scram_client_final_keys(&c, NULL, out, sizeof(out), &outlen),
			 SCRAM_ESTATE);
	assert_int_equal(scram_client_final_keys(&c, &keys, out, 50, &outlen), SCRAM_ESPACE);
	assert_int_equal(c.state, SCRAM_CLIENT_GOT_SERVER_FIRST);
	assert_int_equal(scram_client_final_keys(&c, &keys, out, sizeof(out), &outlen), SCRAM_OK);
	assert_string_equal(out, RFC_CLIENT_FINAL);
	assert_int_equal(c.state, SCRAM_CLIENT_SENT_FINAL);
	assert_int_equal(scram_client_verify(&c, U8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL)),
			 SCRAM_OK);
	/* A malformed server-first changes nothing. */
	client_start(&c, RFC_PASSWORD, RFC_CNONCE);
	assert_int_equal(scram_client_read_server_first(&c, U8("r=x"), 3, &params), SCRAM_EPROTO);
	assert_int_equal(c.state, SCRAM_CLIENT_SENT_FIRST);
}

/*
 * A client logs in to our server with a password; the ClientKey the server
 * recovered then logs in, without the password, to another server holding
 * the same secret.
 */
static void passthrough_client_key(const char *password, const struct scram_secret *sec,
				   uint8_t client_key[SCRAM_KEY_LEN])
{
	struct scram_client c;
	struct scram_server s;
	char m1[SCRAM_MSG_MAX], m2[SCRAM_MSG_MAX], m3[SCRAM_MSG_MAX], m4[SCRAM_MSG_MAX];
	size_t l1 = 0, l2 = 0, l3 = 0, l4 = 0;

	memset(&c, 0, sizeof(c));
	memset(&s, 0, sizeof(s));
	assert_int_equal(scram_client_first(&c, password, NULL, m1, sizeof(m1), &l1), SCRAM_OK);
	assert_int_equal(scram_server_first(&s, sec, NULL, U8(m1), l1, m2, sizeof(m2), &l2),
			 SCRAM_OK);
	assert_int_equal(scram_client_final(&c, U8(m2), l2, m3, sizeof(m3), &l3), SCRAM_OK);
	assert_int_equal(scram_server_final(&s, U8(m3), l3, m4, sizeof(m4), &l4), SCRAM_OK);
	memcpy(client_key, s.client_key, SCRAM_KEY_LEN);
}

/* Pass-through client against a server holding sec; returns the first failure. */
static int passthrough_login(const struct scram_secret *known, const uint8_t *client_key,
			     const struct scram_secret *server_sec)
{
	struct scram_client c;
	struct scram_server s;
	char m1[SCRAM_MSG_MAX], m2[SCRAM_MSG_MAX], m3[SCRAM_MSG_MAX], m4[SCRAM_MSG_MAX];
	size_t l1 = 0, l2 = 0, l3 = 0, l4 = 0;
	int rc;

	memset(&c, 0, sizeof(c));
	memset(&s, 0, sizeof(s));
	rc = scram_client_first_passthrough(&c, known, client_key, NULL, m1, sizeof(m1), &l1);
	if (rc != SCRAM_OK)
		return rc;
	assert_true(c.pass_through);
	assert_int_equal(scram_server_first(&s, server_sec, NULL, U8(m1), l1, m2, sizeof(m2), &l2),
			 SCRAM_OK);
	rc = scram_client_final(&c, U8(m2), l2, m3, sizeof(m3), &l3);
	if (rc != SCRAM_OK)
		return rc;
	/* The keys are gone once the final message is out. */
	assert_int_equal(c.keys.client_key[0] | c.keys.client_key[31], 0);
	rc = scram_server_final(&s, U8(m3), l3, m4, sizeof(m4), &l4);
	if (rc != SCRAM_OK)
		return rc;
	return scram_client_verify(&c, U8(m4), l4);
}

static void test_scram_passthrough_logs_in_with_same_secret(void **state)
{
	struct scram_secret sec, other_salt, other_iter;
	uint8_t client_key[SCRAM_KEY_LEN], bad_key[SCRAM_KEY_LEN];
	static const uint8_t salt2[] = "another salt";

	rfc_secret(&sec);
	passthrough_client_key(RFC_PASSWORD, &sec, client_key);
	assert_int_equal(passthrough_login(&sec, client_key, &sec), SCRAM_OK);

	/* Same password, other salt or iterations: the keys cannot match. */
	assert_int_equal(scram_secret_from_password(RFC_PASSWORD, salt2, sizeof(salt2) - 1, 4096,
						    &other_salt),
			 SCRAM_OK);
	assert_int_equal(passthrough_login(&sec, client_key, &other_salt), SCRAM_ESECRET);
	assert_int_equal(scram_secret_from_password(RFC_PASSWORD, rfc_salt, sizeof(rfc_salt), 4095,
						    &other_iter),
			 SCRAM_OK);
	assert_int_equal(passthrough_login(&sec, client_key, &other_iter), SCRAM_ESECRET);

	/* A ClientKey that is not the secret's is refused before anything is sent. */
	memcpy(bad_key, client_key, SCRAM_KEY_LEN);
	bad_key[0] ^= 0x80;
	assert_int_equal(passthrough_login(&sec, bad_key, &sec), SCRAM_EPROOF);
}

/* Pass-through also works through the split steps (keys == NULL). */
static void test_scram_passthrough_split_steps(void **state)
{
	struct scram_secret sec;
	struct scram_client c;
	struct scram_params params;
	uint8_t client_key[SCRAM_KEY_LEN];
	char out[SCRAM_MSG_MAX];
	size_t outlen = 0;

	rfc_secret(&sec);
	passthrough_client_key(RFC_PASSWORD, &sec, client_key);
	memset(&c, 0, sizeof(c));
	assert_int_equal(scram_client_first_passthrough(&c, &sec, client_key, RFC_CNONCE, out,
							sizeof(out), &outlen),
			 SCRAM_OK);
	assert_string_equal(out, "n,,n=,r=" RFC_CNONCE);
	snprintf(c.client_first_bare, sizeof(c.client_first_bare), "n=user,r=%s", RFC_CNONCE);
	assert_int_equal(scram_client_first_passthrough(&c, &sec, client_key, RFC_CNONCE, out,
							sizeof(out), &outlen),
			 SCRAM_ESTATE);
	assert_int_equal(scram_client_read_server_first(&c, U8(RFC_SERVER_FIRST),
							strlen(RFC_SERVER_FIRST), &params),
			 SCRAM_OK);
	assert_int_equal(scram_client_final_keys(&c, NULL, out, sizeof(out), &outlen), SCRAM_OK);
	/* The same proof the password gives (RFC 7677). */
	assert_string_equal(out, RFC_CLIENT_FINAL);
	assert_int_equal(scram_client_verify(&c, U8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL)),
			 SCRAM_OK);
}

/* A failed proof leaves no ClientKey behind. */
static void test_scram_server_keeps_no_key_on_wrong_proof(void **state)
{
	struct scram_secret sec;
	struct scram_client c;
	struct scram_server s;
	char m1[SCRAM_MSG_MAX], m2[SCRAM_MSG_MAX], m3[SCRAM_MSG_MAX], m4[SCRAM_MSG_MAX];
	size_t l1 = 0, l2 = 0, l3 = 0, l4 = 0;
	static const uint8_t zero[SCRAM_KEY_LEN];

	rfc_secret(&sec);
	memset(&c, 0, sizeof(c));
	memset(&s, 0, sizeof(s));
	assert_int_equal(scram_client_first(&c, "wrong", NULL, m1, sizeof(m1), &l1), SCRAM_OK);
	assert_int_equal(scram_server_first(&s, &sec, NULL, U8(m1), l1, m2, sizeof(m2), &l2),
			 SCRAM_OK);
	assert_int_equal(scram_client_final(&c, U8(m2), l2, m3, sizeof(m3), &l3), SCRAM_OK);
	assert_int_equal(scram_server_final(&s, U8(m3), l3, m4, sizeof(m4), &l4), SCRAM_EPROOF);
	assert_memory_equal(s.client_key, zero, SCRAM_KEY_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scram_secret_from_password_matches_rfc7677),
		cmocka_unit_test(test_scram_secret_parse_format_round_trip),
		cmocka_unit_test(test_scram_secret_random_salts_differ),
		cmocka_unit_test(test_scram_secret_from_password_rejects_bad_parameters),
		cmocka_unit_test(test_scram_secret_parse_rejects_malformed),
		cmocka_unit_test(test_scram_secret_format_needs_room),
		cmocka_unit_test(test_scram_server_rfc7677),
		cmocka_unit_test(test_scram_server_rejects_wrong_proof),
		cmocka_unit_test(test_scram_server_proof_bound_to_auth_message),
		cmocka_unit_test(test_scram_server_client_first_table),
		cmocka_unit_test(test_scram_server_client_final_table),
		cmocka_unit_test(test_scram_server_gs2_y_needs_matching_cbind),
		cmocka_unit_test(test_scram_server_accepts_extension_before_proof),
		cmocka_unit_test(test_scram_server_random_nonce),
		cmocka_unit_test(test_scram_client_matches_rfc7677),
		cmocka_unit_test(test_scram_client_server_round_trip),
		cmocka_unit_test(test_scram_wrong_password_is_eproof),
		cmocka_unit_test(test_scram_client_server_first_table),
		cmocka_unit_test(test_scram_client_server_final_table),
		cmocka_unit_test(test_scram_client_first_checks_inputs),
		cmocka_unit_test(test_scram_random_client_nonces_differ),
		cmocka_unit_test(test_scram_calls_out_of_order),
		cmocka_unit_test(test_scram_outputs_check_outcap),
		cmocka_unit_test(test_scram_keys_from_password_match_secret),
		cmocka_unit_test(test_scram_params_equal),
		cmocka_unit_test(test_scram_client_split_steps_match_rfc7677),
		cmocka_unit_test(test_scram_passthrough_logs_in_with_same_secret),
		cmocka_unit_test(test_scram_passthrough_split_steps),
		cmocka_unit_test(test_scram_server_keeps_no_key_on_wrong_proof),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
