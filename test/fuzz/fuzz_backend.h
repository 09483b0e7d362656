/*
 * fuzz_backend.h: a fake PostgreSQL for the client fuzz target. It listens
 * on 127.0.0.1 with plain non-blocking sockets that the harness polls
 * between loop iterations, logs every server connection in at once (trust),
 * and answers what pgmux forwards. Its answers depend only on those bytes,
 * which come from the fuzz input, so a run is repeatable. Queries starting
 * with one of these words steer it (anything else is "SELECT 1"):
 *
 *   BEGIN                         opens a transaction block ('T')
 *   COMMIT, ROLLBACK, END, DISCARD  closes it ('I')
 *   FAIL                          ErrorResponse ERROR ('E' inside a block)
 *   FATAL                         ErrorResponse FATAL, then the server closes
 *   DROP                          the server closes without a word
 *   WAIT                          no answer until a CancelRequest for it (57014)
 *   COPY                          CopyInResponse; CopyDone/CopyFail end it
 *   NOTICE                        a NoticeResponse before the answer
 *   BIG                           a 64 kB DataRow (backpressure toward the client)
 *
 * As PostgreSQL, it acts on a message only once all of it is in.
 * Extended-protocol messages get their completion messages, Sync and
 * FunctionCall their ReadyForQuery.
 */
#ifndef PGMUX_FUZZ_BACKEND_H
#define PGMUX_FUZZ_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Starts listening; returns the port. Aborts on failure. */
int fzb_listen(void);
/* Accepts, reads, answers and flushes once; true if any byte moved or a
 * connection opened or closed. */
bool fzb_pump(void);
/* Connections currently open. */
size_t fzb_count(void);
/*
 * Whether the backend with this BackendKeyData pid is where a pooler may
 * hand it to the next client: no message half received, no COPY, no
 * unanswered query, outside a transaction block. True when undecidable
 * (bytes still unread in its socket) or when it is gone.
 */
bool fzb_session_clean(uint32_t pid);

#endif /* PGMUX_FUZZ_BACKEND_H */
