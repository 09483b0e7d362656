/*
 * fuzz_util.h: what the fuzz targets and the seed generator share. A fuzz
 * input is carved into fields by a reader that never fails: a short input
 * reads as zeros and empty parts, so every byte string is a valid input and
 * the fuzzer never wastes runs on a format error. The writer half produces
 * the same layout for hand-made seeds. FZ_CHECK turns a broken invariant
 * into an abort, which libFuzzer reports together with the input.
 */
#ifndef PGMUX_FUZZ_UTIL_H
#define PGMUX_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_CHECK(cond)                                                                      \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                     \
			abort();                                                            \
		}                                                                           \
	} while (0)

/*
 * Input formats. fuzz_proto: one byte picks the case (modulo the count),
 * the case reads the rest. fuzz_client: a flags byte (enum fz_client_flag),
 * a chunking byte (0: the stream is written at once; 1: one message per
 * write; else the seed of a generator of chunk sizes), then the bytes the
 * client sends.
 */
enum fz_proto_case {
	FZ_PROTO_HEADER,
	FZ_PROTO_STARTUP,
	FZ_PROTO_STREAM,
	FZ_PROTO_PARSE,
	FZ_PROTO_SCRAM_SERVER,
	FZ_PROTO_SCRAM_CLIENT,
	FZ_PROTO_SECRET,
	FZ_PROTO_MD5,
	FZ_PROTO_CURSOR,
	FZ_PROTO_BUILD_ERROR,
	FZ_PROTO_BUILD_STARTUP,
	FZ_PROTO_NCASES,
};

/*
 * The SCRAM cases run RFC 7677's example exchange (user "user", password
 * "pencil"): fuzz_proto uses these nonces, the seeds replay the messages.
 */
#define FZ_SCRAM_PASSWORD "pencil"
#define FZ_SCRAM_SALT_B64 "W22ZaJ0SNY7soEsUEjb6gQ=="
#define FZ_SCRAM_CLIENT_NONCE "rOprNGfwEbeRWgbNEkqO"
#define FZ_SCRAM_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
/*
 * The SCRAM client runs PBKDF2 with whatever iteration count the server
 * names, by design (PostgreSQL and libpq do not cap it either). A fuzzer
 * would find that "i=2000000000" takes forever and report a timeout that
 * says nothing about pgmux, and even 4096 rounds per input would slow it
 * a hundredfold, so fuzz_proto runs only server-first messages naming at
 * most this many; the seed uses this count.
 */
#define FZ_SCRAM_MAX_ITERATIONS 16

enum fz_client_flag {
	FZ_CLIENT_AUTH_MASK = 3,  /* auth_type: trust, plain, md5, scram-sha-256 */
	FZ_CLIENT_WARM = 1 << 2,  /* the fake-server pools have an idle server first */
	FZ_CLIENT_TIGHT = 1 << 3, /* small socket buffers: partial writes, backpressure */
	FZ_CLIENT_TWO = 1 << 4,   /* two clients: a 2-byte length, the first one's
				   * bytes, then the second one's */
};

/* Reading side: a cursor over the fuzz input. */
struct fz_in {
	const uint8_t *p;
	size_t n;
};

static inline void fz_in_init(struct fz_in *in, const uint8_t *data, size_t size)
{
	in->p = data;
	in->n = size;
}

static inline uint8_t fz_u8(struct fz_in *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint16_t fz_u16(struct fz_in *in)
{
	uint16_t hi = fz_u8(in);

	return (uint16_t)(hi << 8 | fz_u8(in));
}

/* A part: a 2-byte big-endian length, then that many bytes (fewer if the
 * input ends first). *out points into the input. */
static inline size_t fz_part(struct fz_in *in, const uint8_t **out)
{
	size_t len = fz_u16(in);

	if (len > in->n)
		len = in->n;
	*out = in->p;
	in->p += len;
	in->n -= len;
	return len;
}

/* Whatever is left. */
static inline size_t fz_rest(struct fz_in *in, const uint8_t **out)
{
	size_t len = in->n;

	*out = in->p;
	in->p += len;
	in->n = 0;
	return len;
}

/*
 * A heap copy of exactly len bytes, so that AddressSanitizer catches a
 * read one byte past a message even when the fuzz input goes on after it.
 * malloc(0) may return NULL; one spare byte keeps the pointer real.
 */
static inline uint8_t *fz_dup(const uint8_t *p, size_t len)
{
	uint8_t *d = malloc(len ? len : 1);

	FZ_CHECK(d != NULL);
	if (len)
		memcpy(d, p, len);
	return d;
}

/* A part as a NUL-terminated heap string (cut at an embedded NUL). */
static inline char *fz_cstr(struct fz_in *in)
{
	const uint8_t *p;
	size_t len = fz_part(in, &p);
	char *s = malloc(len + 1);

	FZ_CHECK(s != NULL);
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

/* Writing side, for the seed generator: the same layout. */
struct fz_out {
	uint8_t buf[65536];
	size_t len;
};

static inline void fz_out_u8(struct fz_out *o, uint8_t v)
{
	FZ_CHECK(o->len < sizeof(o->buf));
	o->buf[o->len++] = v;
}

static inline void fz_out_bytes(struct fz_out *o, const void *p, size_t len)
{
	FZ_CHECK(len <= sizeof(o->buf) - o->len);
	memcpy(o->buf + o->len, p, len);
	o->len += len;
}

static inline void fz_out_part(struct fz_out *o, const void *p, size_t len)
{
	FZ_CHECK(len <= 0xffff);
	fz_out_u8(o, (uint8_t)(len >> 8));
	fz_out_u8(o, (uint8_t)len);
	fz_out_bytes(o, p, len);
}

static inline void fz_out_str(struct fz_out *o, const char *s)
{
	fz_out_part(o, s, strlen(s));
}

#endif /* PGMUX_FUZZ_UTIL_H */
