/*
 * proto_cursor.h: bounded big-endian reader over an untrusted byte range.
 * Every read checks the remaining length first and advances only when it
 * succeeds, so a short or malformed message can never be read past its end.
 */
#ifndef PGMUX_PROTO_CURSOR_H
#define PGMUX_PROTO_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct proto_cursor {
	const uint8_t *data; /* borrowed; the cursor never frees it */
	size_t len;
	size_t pos;
};

void proto_cursor_init(struct proto_cursor *c, const void *data, size_t len);
size_t proto_cursor_left(const struct proto_cursor *c);

bool proto_read_u8(struct proto_cursor *c, uint8_t *out);
bool proto_read_u16(struct proto_cursor *c, uint16_t *out);
bool proto_read_i16(struct proto_cursor *c, int16_t *out);
bool proto_read_u32(struct proto_cursor *c, uint32_t *out);
bool proto_read_i32(struct proto_cursor *c, int32_t *out);
/* A NUL-terminated string; *out points into the data, *len excludes the NUL.
 * Fails (and does not advance) when no NUL occurs before the end. */
bool proto_read_cstr(struct proto_cursor *c, const char **out, size_t *len);
/* n raw bytes; *out points into the data. */
bool proto_read_bytes(struct proto_cursor *c, size_t n, const uint8_t **out);

#endif /* PGMUX_PROTO_CURSOR_H */
