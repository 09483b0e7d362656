/*
 * proto.h: PostgreSQL v3 wire-protocol constants shared by every module.
 * Message types are named enums carrying their wire byte; size limits say
 * how much pgmux will accept from a peer before it gives up on it.
 * Pure header: no I/O, no libuv, no globals.
 */
#ifndef PGMUX_PROTO_H
#define PGMUX_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Frontend (client -> server) message types. */
enum proto_fe_type {
	PROTO_FE_BIND = 'B',
	PROTO_FE_CLOSE = 'C',
	PROTO_FE_COPY_DATA = 'd',
	PROTO_FE_COPY_DONE = 'c',
	PROTO_FE_COPY_FAIL = 'f',
	PROTO_FE_DESCRIBE = 'D',
	PROTO_FE_EXECUTE = 'E',
	PROTO_FE_FLUSH = 'H',
	PROTO_FE_FUNCTION_CALL = 'F',
	PROTO_FE_PARSE = 'P',
	PROTO_FE_PASSWORD = 'p', /* also SASLInitialResponse, SASLResponse */
	PROTO_FE_QUERY = 'Q',
	PROTO_FE_SYNC = 'S',
	PROTO_FE_TERMINATE = 'X',
};

/* Backend (server -> client) message types. */
enum proto_be_type {
	PROTO_BE_AUTH = 'R',
	PROTO_BE_BACKEND_KEY_DATA = 'K',
	PROTO_BE_BIND_COMPLETE = '2',
	PROTO_BE_CLOSE_COMPLETE = '3',
	PROTO_BE_COMMAND_COMPLETE = 'C',
	PROTO_BE_COPY_DATA = 'd',
	PROTO_BE_COPY_DONE = 'c',
	PROTO_BE_COPY_IN_RESPONSE = 'G',
	PROTO_BE_COPY_OUT_RESPONSE = 'H',
	PROTO_BE_COPY_BOTH_RESPONSE = 'W',
	PROTO_BE_DATA_ROW = 'D',
	PROTO_BE_EMPTY_QUERY_RESPONSE = 'I',
	PROTO_BE_ERROR_RESPONSE = 'E',
	PROTO_BE_FUNCTION_CALL_RESPONSE = 'V',
	PROTO_BE_NEGOTIATE_PROTOCOL_VERSION = 'v',
	PROTO_BE_NO_DATA = 'n',
	PROTO_BE_NOTICE_RESPONSE = 'N',
	PROTO_BE_NOTIFICATION_RESPONSE = 'A',
	PROTO_BE_PARAMETER_DESCRIPTION = 't',
	PROTO_BE_PARAMETER_STATUS = 'S',
	PROTO_BE_PARSE_COMPLETE = '1',
	PROTO_BE_PORTAL_SUSPENDED = 's',
	PROTO_BE_READY_FOR_QUERY = 'Z',
	PROTO_BE_ROW_DESCRIPTION = 'T',
};

/* Authentication request codes carried in an 'R' message. */
enum proto_auth_code {
	PROTO_AUTH_OK = 0,
	PROTO_AUTH_KERBEROS_V5 = 2,
	PROTO_AUTH_CLEARTEXT = 3,
	PROTO_AUTH_MD5 = 5,
	PROTO_AUTH_GSS = 7,
	PROTO_AUTH_GSS_CONTINUE = 8,
	PROTO_AUTH_SSPI = 9,
	PROTO_AUTH_SASL = 10,
	PROTO_AUTH_SASL_CONTINUE = 11,
	PROTO_AUTH_SASL_FINAL = 12,
};

/* Codes in the version field of untyped startup-phase packets. */
#define PROTO_VERSION_3_0 0x00030000u
#define PROTO_CANCEL_REQUEST_CODE 80877102u
#define PROTO_SSL_REQUEST_CODE 80877103u
#define PROTO_GSSENC_REQUEST_CODE 80877104u

/* Transaction status byte of ReadyForQuery. */
enum proto_tx_status {
	PROTO_TX_IDLE = 'I',
	PROTO_TX_IN_BLOCK = 'T',
	PROTO_TX_FAILED = 'E',
};

/*
 * Size limits. A length field counts itself (4 bytes) but not the type
 * byte. Before authentication a peer is a stranger: it gets a cap small
 * enough that thousands of half-open logins cannot pin much memory.
 */
#define PROTO_HEADER_SIZE 5                 /* type byte + int32 length */
#define PROTO_STARTUP_MAX 10000             /* whole startup packet, as PostgreSQL */
#define PROTO_PREAUTH_MSG_MAX 8192          /* any message before auth is done */
#define PROTO_SMALL_MSG_MAX 4               /* Sync, Flush, Terminate, CopyDone: length field */
#define PROTO_LARGE_MSG_MAX 0x3fffffffu     /* PostgreSQL's MaxAllocSize - 1 */

/* Human-readable names for logs; unknown bytes give "unknown". */
const char *proto_fe_type_str(uint8_t type);
const char *proto_be_type_str(uint8_t type);

#endif /* PGMUX_PROTO_H */
