/*
 * store_internal: what store.c (writing) and verify.c (checking) share and
 * nobody else may see: the store object, the audit column list, and the one
 * canonical row encoding that both hash. Append and verify must agree byte for
 * byte forever, so the encoding lives here once and both call it with the
 * same array of column values (append builds it from the C row and binds the
 * very same values; verify builds it from what SQLite returns).
 */
#ifndef SHAREHUB_STORE_INTERNAL_H
#define SHAREHUB_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"
#include "sharehub/store.h"

/*
 * The audit columns covered by row_hash, in canonical order: every column but
 * prev_hash and row_hash themselves, seq included (moving a row to another seq
 * changes its hash). The INSERT in store.c and the SELECT in verify.c both use
 * this list, followed by prev_hash, row_hash.
 */
#define SHUB_AUDIT_COLUMNS                                                               \
    "seq, at, action, event_id, event_type, sender, recipient, decision, reason, "       \
    "explanation, agreement, agreement_version, agreement_hash, flow, purpose, "         \
    "legal_basis, consent, override, case_ref, area, fields_shared, fields_stripped, "   \
    "facts, payload_hash, subject_hash"
#define SHUB_AUDIT_NCOLS 25 /* entries in SHUB_AUDIT_COLUMNS */

/* Index of a column in SHUB_AUDIT_COLUMNS. */
enum {
    AC_SEQ,
    AC_AT,
    AC_ACTION,
    AC_EVENT_ID,
    AC_EVENT_TYPE,
    AC_SENDER,
    AC_RECIPIENT,
    AC_DECISION,
    AC_REASON,
    AC_EXPLANATION,
    AC_AGREEMENT,
    AC_AGREEMENT_VERSION,
    AC_AGREEMENT_HASH,
    AC_FLOW,
    AC_PURPOSE,
    AC_LEGAL_BASIS,
    AC_CONSENT,
    AC_OVERRIDE,
    AC_CASE_REF,
    AC_AREA,
    AC_FIELDS_SHARED,
    AC_FIELDS_STRIPPED,
    AC_FACTS,
    AC_PAYLOAD_HASH,
    AC_SUBJECT_HASH,
};

/* One column value as SQLite stores it. The type is part of the encoding: a
 * number edited into text, or "" into NULL, changes the hash. */
typedef enum {
    CANON_NULL = 0,
    CANON_INT = 1,
    CANON_TEXT = 2,
    CANON_BLOB = 3,
    CANON_REAL = 4, /* never written; read back only if someone put one there */
} canon_type_t;

typedef struct canon_val {
    canon_type_t type;
    int64_t i;     /* CANON_INT; CANON_REAL as its IEEE-754 bits */
    const void *p; /* CANON_TEXT, CANON_BLOB (may be NULL when n is 0) */
    size_t n;      /* bytes at p */
} canon_val_t;

/*
 * row_hash = BLAKE2b-256(prev || canonical(vals)), where canonical is the tag
 * "sharehub-audit-v1", then per column one type byte and: nothing for NULL;
 * 8 bytes big-endian for INT and REAL; a 4-byte big-endian length and the
 * bytes for TEXT and BLOB. Lengths make it unambiguous; the type byte keeps
 * NULL apart from "". prev is hashed as given (32 bytes in a sound log).
 */
void shub_store_row_hash(const uint8_t *prev, size_t prev_len,
                         const canon_val_t vals[SHUB_AUDIT_NCOLS], uint8_t out[32]);

/* The message a checkpoint signs: "sharehub-checkpoint-v1" || upto_seq (8 bytes
 * BE) || head_hash || at (8 bytes BE). Writes SHUB_CHECKPOINT_MSG_SIZE bytes. */
#define SHUB_CHECKPOINT_TAG      "sharehub-checkpoint-v1"
#define SHUB_CHECKPOINT_MSG_SIZE (sizeof SHUB_CHECKPOINT_TAG - 1 + 8 + 32 + 8)
void shub_store_checkpoint_msg(int64_t upto_seq, const uint8_t head_hash[32], int64_t at,
                               uint8_t out[SHUB_CHECKPOINT_MSG_SIZE]);

/* Cached prepared statements, one per SQL text in store.c. */
typedef enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_HEAD,
    ST_EVENT_ADD,
    ST_EVENT_SENDER,
    ST_AUDIT_INSERT,
    ST_AUDIT_READ,
    ST_CHECKPOINT_INSERT,
    ST_DELIVERY_PUT,
    ST_OUTCOMES,
    ST_BACKLOG,
    ST_BACKLOG_COUNT,
    ST_REQUEUE,
    ST_DUE,
    ST_SENT,
    ST_FINISH,
    ST_PENDING,
    ST_AGREEMENT,
    ST_COUNT
} stmt_id_t;

struct shub_store {
    sqlite3 *db;
    bool readonly;
    bool in_tx; /* between begin and commit/rollback */
    bool has_subject_key, has_sign_key;
    uint8_t subject_key[32];
    uint8_t sign_secret[64];
    uint8_t sign_public[32];
    uint32_t checkpoint_every;
    int64_t head_seq; /* last appended row, this transaction included */
    uint8_t head_hash[32];
    int64_t committed_seq; /* last committed row: where rollback returns */
    uint8_t committed_hash[32];
    int64_t checkpoint_upto; /* upto_seq of the last checkpoint written */
    int64_t committed_checkpoint_upto;
    sqlite3_stmt *stmts[ST_COUNT];
};

/* The cached statement `id`, prepared on first use. 0 or SHUB_EDB. */
int shub_store_stmt(shub_store_t *s, stmt_id_t id, sqlite3_stmt **out, shub_err_t *err);

/* Fills err with SHUB_EDB "<what>: <sqlite message>" and returns SHUB_EDB. If
 * SQLite has rolled the transaction back by itself (SQLITE_FULL may), the
 * in-memory head goes back to the last commit so the two cannot disagree. */
int shub_store_db_fail(shub_store_t *s, shub_err_t *err, const char *what);

#endif
