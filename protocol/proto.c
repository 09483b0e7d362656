/*
 * proto.c: names for PostgreSQL message type bytes, for log lines.
 * The two directions reuse letters ('C' is Close from a client but
 * CommandComplete from a server), so each has its own table.
 */
#include "proto.h"

const char *proto_fe_type_str(uint8_t type)
{
	switch ((enum proto_fe_type)type) {
	case PROTO_FE_BIND:
		return "Bind";
	case PROTO_FE_CLOSE:
		return "Close";
	case PROTO_FE_COPY_DATA:
		return "CopyData";
	case PROTO_FE_COPY_DONE:
		return "CopyDone";
	case PROTO_FE_COPY_FAIL:
		return "CopyFail";
	case PROTO_FE_DESCRIBE:
		return "Describe";
	case PROTO_FE_EXECUTE:
		return "Execute";
	case PROTO_FE_FLUSH:
		return "Flush";
	case PROTO_FE_FUNCTION_CALL:
		return "FunctionCall";
	case PROTO_FE_PARSE:
		return "Parse";
	case PROTO_FE_PASSWORD:
		return "PasswordMessage";
	case PROTO_FE_QUERY:
		return "Query";
	case PROTO_FE_SYNC:
		return "Sync";
	case PROTO_FE_TERMINATE:
		return "Terminate";
	}
	return "unknown";
}

const char *proto_be_type_str(uint8_t type)
{
	switch ((enum proto_be_type)type) {
	case PROTO_BE_AUTH:
		return "Authentication";
	case PROTO_BE_BACKEND_KEY_DATA:
		return "BackendKeyData";
	case PROTO_BE_BIND_COMPLETE:
		return "BindComplete";
	case PROTO_BE_CLOSE_COMPLETE:
		return "CloseComplete";
	case PROTO_BE_COMMAND_COMPLETE:
		return "CommandComplete";
	case PROTO_BE_COPY_DATA:
		return "CopyData";
	case PROTO_BE_COPY_DONE:
		return "CopyDone";
	case PROTO_BE_COPY_IN_RESPONSE:
		return "CopyInResponse";
	case PROTO_BE_COPY_OUT_RESPONSE:
		return "CopyOutResponse";
	case PROTO_BE_COPY_BOTH_RESPONSE:
		return "CopyBothResponse";
	case PROTO_BE_DATA_ROW:
		return "DataRow";
	case PROTO_BE_EMPTY_QUERY_RESPONSE:
		return "EmptyQueryResponse";
	case PROTO_BE_ERROR_RESPONSE:
		return "ErrorResponse";
	case PROTO_BE_FUNCTION_CALL_RESPONSE:
		return "FunctionCallResponse";
	case PROTO_BE_NEGOTIATE_PROTOCOL_VERSION:
		return "NegotiateProtocolVersion";
	case PROTO_BE_NO_DATA:
		return "NoData";
	case PROTO_BE_NOTICE_RESPONSE:
		return "NoticeResponse";
	case PROTO_BE_NOTIFICATION_RESPONSE:
		return "NotificationResponse";
	case PROTO_BE_PARAMETER_DESCRIPTION:
		return "ParameterDescription";
	case PROTO_BE_PARAMETER_STATUS:
		return "ParameterStatus";
	case PROTO_BE_PARSE_COMPLETE:
		return "ParseComplete";
	case PROTO_BE_PORTAL_SUSPENDED:
		return "PortalSuspended";
	case PROTO_BE_READY_FOR_QUERY:
		return "ReadyForQuery";
	case PROTO_BE_ROW_DESCRIPTION:
		return "RowDescription";
	}
	return "unknown";
}
