/*
 * proto_cursor.c: the bounded big-endian reader every protocol parser in
 * pgmux goes through. Each read checks what is left before touching a byte
 * and moves the cursor only on success, so a failed read leaves it intact.
 */
#include "proto_cursor.h"

#include <string.h>

/* Stands in for a NULL range so that data + pos is always defined. */
static const uint8_t proto_cursor_empty[1];

void proto_cursor_init(struct proto_cursor *c, const void *data, size_t len)
{
	c->data = data ? data : proto_cursor_empty;
	c->len = data ? len : 0;
	c->pos = 0;
}

size_t proto_cursor_left(const struct proto_cursor *c)
{
	return c->len - c->pos;
}

bool proto_read_u8(struct proto_cursor *c, uint8_t *out)
{
	if (proto_cursor_left(c) < 1)
		return false;
	*out = c->data[c->pos];
	c->pos += 1;
	return true;
}

bool proto_read_u16(struct proto_cursor *c, uint16_t *out)
{
	const uint8_t *p;

	if (proto_cursor_left(c) < 2)
		return false;
	p = c->data + c->pos;
	*out = (uint16_t)((unsigned)p[0] << 8 | p[1]);
	c->pos += 2;
	return true;
}

bool proto_read_i16(struct proto_cursor *c, int16_t *out)
{
	uint16_t v;

	if (!proto_read_u16(c, &v))
		return false;
	/* Conversion to a signed type is implementation-defined for values
	 * above INT16_MAX; memcpy reinterprets the two's-complement bits. */
	memcpy(out, &v, sizeof(*out));
	return true;
}

bool proto_read_u32(struct proto_cursor *c, uint32_t *out)
{
	const uint8_t *p;

	if (proto_cursor_left(c) < 4)
		return false;
	p = c->data + c->pos;
	*out = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	c->pos += 4;
	return true;
}

bool proto_read_i32(struct proto_cursor *c, int32_t *out)
{
	uint32_t v;

	if (!proto_read_u32(c, &v))
		return false;
	memcpy(out, &v, sizeof(*out));
	return true;
}

bool proto_read_cstr(struct proto_cursor *c, const char **out, size_t *len)
{
	const uint8_t *start = c->data + c->pos;
	const uint8_t *nul;
	size_t left = proto_cursor_left(c);

	if (left == 0)
		return false;
	nul = memchr(start, '\0', left);
	if (!nul)
		return false;
	*out = (const char *)start;
	if (len)
		*len = (size_t)(nul - start);
	c->pos += (size_t)(nul - start) + 1;
	return true;
}

bool proto_read_bytes(struct proto_cursor *c, size_t n, const uint8_t **out)
{
	/* Compare against what is left rather than computing pos + n, which a
	 * huge n from a length field could wrap. */
	if (n > proto_cursor_left(c))
		return false;
	*out = c->data + c->pos;
	c->pos += n;
	return true;
}
