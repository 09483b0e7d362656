/*
 * params.h: the session parameters pgmux carries from client to server, and
 * the session state a client can leave behind on a shared server.
 *
 * Tracked parameters are PostgreSQL's GUC_REPORT ones that PgBouncer tracks
 * (client_encoding, DateStyle, TimeZone, IntervalStyle,
 * standard_conforming_strings, application_name) plus track_extra_parameters.
 * PostgreSQL reports every change of them with ParameterStatus, so pgmux
 * always knows each client's values and each server's; before a client's
 * transaction runs on a server whose values differ, one SET query brings
 * the server in line. A value of NULL in a set means "the pool's default":
 * what the server reported at login, which is what every fresh server has.
 *
 * Everything here is pure code (no I/O), unit-tested in test/unit/test_params.c.
 */
#ifndef PGMUX_PARAMS_H
#define PGMUX_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto_build.h"

#define PARAM_MAX 16

/* Values by registry index; NULL: the pool's default. Owns its strings. */
struct param_set {
	char *v[PARAM_MAX];
};

/*
 * Builds the registry from track_extra_parameters (comma-separated, may be
 * NULL). Returns 0, or -1 with a reason when a name is not a plain
 * identifier or there are too many.
 */
int param_registry_init(const char *extra, char *err, size_t errlen);
void param_registry_free(void);
size_t param_count(void);
/* Registry index of a parameter name (case-insensitive), -1 if untracked. */
int param_index(const char *name);
const char *param_name(int idx);

void param_set_value(struct param_set *ps, int idx, const char *value);
void param_set_clear(struct param_set *ps);
/* Whether a and b hold the same values (NULL only equal to NULL). */
bool param_set_same(const struct param_set *a, const struct param_set *b);
/* Copies src's values over dst's. */
void param_set_copy(struct param_set *dst, const struct param_set *src);
/* Number of values set (bytes per client: SHOW MEM-style accounting). */
size_t param_set_used(const struct param_set *ps);

/* The value in effect: ps's own, else the default's, else "". */
const char *param_effective(const struct param_set *ps, const struct param_set *defaults,
			    int idx);

/*
 * Appends to out one Query message that sets every tracked parameter whose
 * effective value in want differs from the one in have (both resolved
 * against defaults). Returns how many differ (0: nothing appended); with
 * out NULL it only counts, allocating nothing.
 * Values are sent as E'' literals, so quotes and backslashes are safe
 * whatever standard_conforming_strings says.
 */
int param_build_sync(struct proto_buf *out, const struct param_set *want,
		     const struct param_set *have, const struct param_set *defaults);

/* One message of a run of server messages (a pool's welcome). */
struct param_msg {
	const uint8_t *bytes; /* the whole message, header included */
	size_t total;
	int idx;              /* tracked parameter it reports, or -1 */
	const char *name;     /* ParameterStatus only, else NULL */
	const char *value;
};
/* Steps *pos to the next message of buf[0..len); false at the end or at a
 * malformed frame (framed by proto_frame_header). */
bool param_walk(const uint8_t *buf, size_t len, size_t *pos, struct param_msg *out);

/* A ParameterStatus body: name and value, or false if malformed. */
bool param_parse_status(const uint8_t *body, size_t len, const char **name, const char **value);

/*
 * Session state a statement can leave on a server that outlives its
 * transaction. pgmux sees it from two sides: the CommandComplete tag
 * (SET, RESET, LISTEN, PREPARE) and the statement text (session advisory
 * locks, CREATE TEMP ...), and resets such a server before reuse.
 */
enum param_leak {
	PARAM_LEAK_SET = 1 << 0,      /* SET/RESET of an untracked parameter */
	PARAM_LEAK_LISTEN = 1 << 1,
	PARAM_LEAK_PREPARE = 1 << 2,  /* SQL-level PREPARE */
	PARAM_LEAK_TEMP = 1 << 3,     /* temporary table, view or sequence */
	PARAM_LEAK_ADVISORY = 1 << 4, /* session-level advisory lock */
	PARAM_LEAK_KINDS = 5,
};
/* Bits for a CommandComplete tag (its body, NUL-terminated or not). */
unsigned param_leak_from_tag(const uint8_t *tag, size_t len);
/* Bits for statement text (Query or Parse); case-insensitive scan. */
unsigned param_leak_from_sql(const uint8_t *sql, size_t len);
const char *param_leak_str(unsigned bit);

#endif /* PGMUX_PARAMS_H */
