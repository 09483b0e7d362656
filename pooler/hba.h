/*
 * hba.h: the auth_hba_file loader and matcher (pg_hba.conf syntax, with
 * PgBouncer's subset of features). hba_load() parses the whole file once
 * into pre-parsed rules; hba_match() walks them in file order and returns
 * the method of the first rule that matches a connection, without
 * allocating. Pure code: no libuv, no logging, no I/O except reading the
 * file and the @files it names. The caller owns the struct hba and frees
 * it with hba_free(); a reload loads a new one and swaps pointers on
 * success, so a broken file never replaces a working one.
 *
 * The format, and where pgmux departs from PgBouncer:
 *   - Records: TYPE DATABASE USER [ADDRESS [NETMASK]] METHOD [name=value...].
 *     Fields are separated by blanks; '#' starts a comment; a line ending in
 *     '\' continues on the next one (PostgreSQL 16), and the rule keeps the
 *     number of its first line. Lines may be of any length.
 *   - TYPE: local, host, hostssl, hostnossl. hostgssenc and hostnogssenc
 *     parse but never match (pgmux has no GSSAPI encryption), with a warning.
 *   - DATABASE: comma-separated names and the keywords all, sameuser and
 *     replication. "replication" matches only physical replication
 *     connections, and those match nothing else (PgBouncer 1.23+,
 *     PostgreSQL). samerole/samegroup are warned about and never match.
 *   - USER: comma-separated names and the keyword all. "+group" is warned
 *     about and never matches (PgBouncer does not support groups either).
 *   - In both name fields: "@file" reads more names (separated by blanks,
 *     commas or newlines, '#' comments, nesting up to 10 deep) from a file
 *     relative to the directory of the file that names it. A quoted word
 *     is a plain name: "all" is a database called all, "+x" a user called
 *     +x. Names starting with '/' (PostgreSQL 16 regular expressions) are
 *     warned about and never match. Comparisons are exact (case-sensitive).
 *   - ADDRESS: all; an IPv4 or IPv6 address with /prefix; or an address
 *     followed by a NETMASK field. Bits of the address outside the mask are
 *     ignored, as in PostgreSQL, with a warning. An IPv4 rule also matches
 *     an IPv4-mapped IPv6 client (::ffff:a.b.c.d), as in PostgreSQL.
 *     samehost, samenet and host names are warned about and never match.
 *   - METHOD: trust, reject, md5, password, scram-sha-256, cert, peer.
 *     gss, sspi, ident, ldap, radius, pam, bsd and oauth are warned about
 *     and the rule never matches (PgBouncer drops such lines). Any other
 *     word is an error.
 *   - Options: every word after the method must be name=value; they are
 *     kept for hba_option() but not acted on here. clientcert must be
 *     verify-ca or verify-full and only on hostssl (PostgreSQL's rules).
 *   - Errors: PgBouncer logs a malformed line and skips it, which can drop
 *     a "reject" line and let a later, looser one through. pgmux follows
 *     PostgreSQL instead: any malformed line makes the whole load fail with
 *     "file:line: reason". Unsupported-but-valid constructs (above) are
 *     warnings, readable with hba_warning().
 */
#ifndef PGMUX_HBA_H
#define PGMUX_HBA_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct hba;

/* What the first matching rule asks for. HBA_REJECT is 0 so that a zeroed
 * value refuses. */
enum hba_method {
	HBA_REJECT,
	HBA_TRUST,
	HBA_PASSWORD, /* "password": cleartext password */
	HBA_MD5,      /* "md5": like PostgreSQL and PgBouncer, the auth code should
		       * use SCRAM when the stored secret is a SCRAM secret */
	HBA_SCRAM,    /* "scram-sha-256" */
	HBA_CERT,     /* TLS client certificate; only returned for tls connections */
	HBA_PEER,     /* unix-socket peer credentials; only returned for unix_socket */
};

/* The method's name as written in the file ("scram-sha-256", ...). */
const char *hba_method_str(enum hba_method m);

/* A connection to classify. Strings and addr are only read during the call. */
struct hba_conn {
	bool unix_socket;             /* came in on the unix socket: only "local" rules apply */
	bool tls;                     /* TLS is up (hostssl vs hostnossl) */
	bool replication;             /* physical replication (startup replication=true/on/yes/1);
				       * logical replication (replication=database) is false */
	const struct sockaddr *addr;  /* TCP peer, AF_INET or AF_INET6 storage; ignored for unix.
				       * NULL: only "all" addresses match */
	const char *database;         /* startup database, already defaulted to user */
	const char *user;
};

/*
 * Loads path. Returns the rules, or NULL with "path:line: reason" (or
 * "path: reason" for open/read errors) in err (errlen bytes, always
 * NUL-terminated when errlen > 0; err may be NULL). A file with no rules
 * loads (everything is then rejected) with a warning.
 */
struct hba *hba_load(const char *path, char *err, size_t errlen);

/* Frees h and everything it owns; NULL is a no-op. */
void hba_free(struct hba *h);

/*
 * The method of the first rule that matches c, in file order. *line_out
 * (if not NULL) gets that rule's line in the hba file, or 0 when no rule
 * matched, which is a reject (PostgreSQL's implicit reject at the end).
 * A matched peer rule on a TCP connection, or cert rule without TLS,
 * yields HBA_REJECT with the rule's line: PostgreSQL never falls through
 * to a later line once one matched. h == NULL rejects everything.
 * Never allocates; O(rules * log(names per rule)).
 */
enum hba_method hba_match(const struct hba *h, const struct hba_conn *c, int *line_out);

/* Value of option name (e.g. "map", "clientcert") on the rule at line, the
 * last one when repeated; NULL when absent. Valid while h lives. */
const char *hba_option(const struct hba *h, int line, const char *name);

/* Number of rules loaded, lines that can never match included. */
size_t hba_rule_count(const struct hba *h);

/* Warnings from hba_load ("path:line: ..."), for the caller to log.
 * i < hba_warning_count(h); valid while h lives. */
size_t hba_warning_count(const struct hba *h);
const char *hba_warning(const struct hba *h, size_t i);

#endif /* PGMUX_HBA_H */
