/*
 * admin_result.c: building console replies: typed RowDescription, DataRow,
 * CommandComplete, errors and notices. Everything goes into the caller's
 * proto_buf, whose sticky error catches an oversized result.
 */
#include <stdarg.h>
#include <stdio.h>

#include "admin_show.h"

void admin_result_columns(struct proto_buf *b, const struct admin_column *cols, size_t n)
{
	const char *names[64];
	uint32_t oids[64];
	size_t i;

	if (n > 64) {
		b->failed = true;
		return;
	}
	for (i = 0; i < n; i++) {
		names[i] = cols[i].name;
		oids[i] = cols[i].type;
	}
	proto_build_row_description(b, n, names, oids);
}

void admin_result_row(struct proto_buf *b, size_t n, const char *const *values)
{
	proto_build_data_row(b, n, values);
}

void admin_result_done(struct proto_buf *b, const char *tag)
{
	proto_build_command_complete(b, tag);
}

void admin_result_error(struct proto_buf *b, const char *sqlstate, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	proto_build_error(b, "ERROR", sqlstate, msg, NULL);
}

void admin_result_notice(struct proto_buf *b, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	proto_build_notice(b, "NOTICE", "00000", msg);
}
