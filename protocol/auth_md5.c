/*
 * auth_md5.c: PostgreSQL's md5 password scheme for both ends of pgmux:
 * deriving stored secrets, answering a server's salt challenge, and
 * checking a client's answer in constant time.
 */
#include "auth_md5.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#define MD5_PREFIX "md5"
#define MD5_PREFIX_LEN 3
#define MD5_DIGEST_LEN 16
#define MD5_HEX_LEN (2 * MD5_DIGEST_LEN)
#define MD5_SCRAM_PREFIX "SCRAM-SHA-256$"

/*
 * Writes "md5" + hex(md5(a || b)) into out. On an OpenSSL failure out is
 * left empty, which never matches a response and fails md5_is_secret.
 */
static void md5_hex2(const void *a, size_t alen, const void *b, size_t blen,
		     char out[MD5_SECRET_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t digest[MD5_DIGEST_LEN];
	unsigned int dlen = 0;
	EVP_MD_CTX *ctx;
	bool ok;
	size_t i;

	out[0] = '\0';
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return;
	ok = EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 && EVP_DigestUpdate(ctx, a, alen) == 1 &&
	     EVP_DigestUpdate(ctx, b, blen) == 1 && EVP_DigestFinal_ex(ctx, digest, &dlen) == 1 &&
	     dlen == MD5_DIGEST_LEN;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return;
	memcpy(out, MD5_PREFIX, MD5_PREFIX_LEN);
	for (i = 0; i < MD5_DIGEST_LEN; i++) {
		out[MD5_PREFIX_LEN + 2 * i] = hex[digest[i] >> 4];
		out[MD5_PREFIX_LEN + 2 * i + 1] = hex[digest[i] & 0xf];
	}
	out[MD5_SECRET_LEN] = '\0';
}

void md5_secret(const char *password, const char *user, char out[MD5_SECRET_LEN + 1])
{
	md5_hex2(password, strlen(password), user, strlen(user), out);
}

bool md5_is_secret(const char *s)
{
	size_t i;

	if (strncmp(s, MD5_PREFIX, MD5_PREFIX_LEN) != 0)
		return false;
	for (i = MD5_PREFIX_LEN; i < MD5_SECRET_LEN; i++) {
		char ch = s[i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return false;
	}
	return s[MD5_SECRET_LEN] == '\0';
}

/* The salted hash covers the hex digits of the secret, not its "md5". */
void md5_response(const char *secret, const uint8_t salt[4], char out[MD5_SECRET_LEN + 1])
{
	if (!md5_is_secret(secret)) {
		out[0] = '\0';
		return;
	}
	md5_hex2(secret + MD5_PREFIX_LEN, MD5_HEX_LEN, salt, 4, out);
}

bool md5_verify(const char *stored, const char *user, const uint8_t salt[4],
		const char *response)
{
	char secret[MD5_SECRET_LEN + 1];
	char expected[MD5_SECRET_LEN + 1];
	bool ok;

	/*
	 * A SCRAM secret is not a password. Hashing its text as one would let
	 * whoever read the auth file log in with md5, which the SCRAM secret
	 * alone is designed not to allow.
	 */
	if (strncmp(stored, MD5_SCRAM_PREFIX, strlen(MD5_SCRAM_PREFIX)) == 0)
		return false;
	if (md5_is_secret(stored)) {
		memcpy(secret, stored, sizeof(secret));
	} else {
		md5_secret(stored, user, secret);
	}
	md5_response(secret, salt, expected);
	/* The length is public (always 35 for a well-formed answer); only
	 * the comparison of the digits has to be constant-time. */
	ok = expected[0] != '\0' && strnlen(response, MD5_SECRET_LEN + 1) == MD5_SECRET_LEN &&
	     CRYPTO_memcmp(expected, response, MD5_SECRET_LEN) == 0;
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(expected, sizeof(expected));
	return ok;
}
