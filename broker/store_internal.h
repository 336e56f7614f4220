/*
 * store_internal: what the store module's three files share and nobody else
 * may see. store.c writes (schema, hot path, background work), verify.c
 * checks the chain, query.c answers the audit tools; together they are the
 * store module (one library, shub_store) and hold all of the broker's SQL.
 *
 * Here: the store object, the interned names both sides resolve, the audit
 * columns, and the one canonical row encoding that append and verify both
 * hash. Append and verify must agree byte for byte forever, so the encoding
 * lives here once; both call it with the same array of resolved values
 * (append builds it from the C row, verify from the file).
 */
#ifndef SHAREHUB_STORE_INTERNAL_H
#define SHAREHUB_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"
#include "sharehub/store.h"
#include "sharehub/val.h"
#include "sharehub/witness.h"

/*
 * The audit row as hashed, in canonical order: every value of the row with
 * its ids resolved to text (an agreement to its id, version and content
 * hash), seq included, row_hash itself excluded. The table stores ids where
 * the encoding has text (see schema_sql in store.c).
 */
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
    AC_AREA,
    AC_OCCURRED,
    AC_REPLY_TO,
    AC_FIELDS,
    AC_FIELDS_SHARED,
    AC_FIELDS_STRIPPED,
    AC_FACTS,
    AC_PAYLOAD_HASH,
    AC_SUBJECT_HASH,
    AC_CASE_HASH,
    AC_ACTOR_HASH,
    SHUB_AUDIT_NCOLS
};

/* The table's columns in that order, `agreement` standing for the three
 * agreement values (one id into agreement_versions), then row_hash. */
#define SHUB_AUDIT_TABLE_COLUMNS                                                         \
    "seq, at, action, event_id, event_type, sender, recipient, decision, reason, "       \
    "explanation, agreement, flow, purpose, legal_basis, consent, override, area, "      \
    "occurred, reply_to, fields, fields_shared, fields_stripped, facts, payload_hash, "  \
    "subject_hash, case_hash, actor_hash, row_hash"
#define SHUB_AUDIT_TABLE_NCOLS 28

/* One value as the canonical encoding sees it. The type is part of the
 * encoding: a number edited into text, or "" into NULL, changes the hash. */
typedef enum {
    CANON_NULL = 0,
    CANON_INT = 1,
    CANON_TEXT = 2,
    CANON_BLOB = 3,
} canon_type_t;

typedef struct canon_val {
    canon_type_t type;
    int64_t i;     /* CANON_INT */
    const void *p; /* CANON_TEXT, CANON_BLOB */
    size_t n;      /* bytes at p */
} canon_val_t;

/*
 * row_hash = BLAKE2b-256(prev || "sharehub-audit-v2" || per value: one type
 * byte, then nothing for NULL, 8 bytes big-endian for INT, a 4-byte
 * big-endian length and the bytes for TEXT and BLOB). prev is the previous
 * row's row_hash (32 zero bytes before the first row).
 */
void shub_store_row_hash(const uint8_t prev[32], const canon_val_t vals[SHUB_AUDIT_NCOLS],
                         uint8_t out[32]);

/* ---- interned names ---------------------------------------------------- */

typedef struct name_slot {
    uint64_t hash;
    int64_t id; /* 0: empty */
} name_slot_t;

typedef struct names {
    const char **text;  /* by id; NULL where none (or rolled back) */
    uint32_t *len;
    size_t cap_id;      /* entries in text/len */
    int64_t max_id;
    name_slot_t *slots; /* text -> id, open addressing, power of two */
    size_t n_slots, used;
    shub_arena_t *arena; /* the strings: freed only at close */
    int64_t *added;      /* ids added in the open transaction */
    size_t n_added, cap_added;
} names_t;

typedef struct agreement_ref {
    int64_t vid;
    const char *id, *hash; /* interned in the names arena */
    uint32_t version;
} agreement_ref_t;

/* Cached prepared statements, one per SQL text in store.c. */
typedef enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_HEAD,
    ST_NAME_ADD,
    ST_EVENT_ADD,
    ST_EVENT_SENDER,
    ST_AUDIT_INSERT,
    ST_AUDIT_READ,
    ST_CHECKPOINT_INSERT,
    ST_CHECKPOINT_LATEST,
    ST_OUTCOME_PUT,
    ST_OUTCOME_DEAD,
    ST_OUTCOMES,
    ST_COPY_PUT,
    ST_COPY_SEALED,
    ST_COPY_DROP,
    ST_COPIES,
    ST_UPDATE_ADD,
    ST_UPDATES,
    ST_UPDATES_CONFIRM,
    ST_WITNESS_ADD,
    ST_AGREEMENT_ADD,
    ST_AGREEMENT_FIND,
    ST_DEADLINE_PUT,
    ST_DEADLINE_MARK,
    ST_DEADLINES_OPEN,
    ST_INDEX_UPTO,
    ST_INDEX_FILL,
    ST_COUNT
} stmt_id_t;

struct shub_store {
    sqlite3 *db;
    char *path;
    bool readonly;
    bool in_tx; /* between begin and commit/rollback */
    bool has_subject_key, has_sign_key;
    uint8_t subject_key[32];
    uint8_t sign_secret[64];
    uint8_t sign_public[32];
    uint32_t checkpoint_every;
    int64_t checkpoint_ms;
    int lock_fd; /* PATH.lock, held while open (exclusive), else -1 */

    int64_t head_seq; /* last appended row, this transaction included */
    uint8_t head_hash[32];
    int64_t committed_seq; /* last committed row: where rollback returns */
    uint8_t committed_hash[32];
    int64_t checkpoint_upto, committed_checkpoint_upto; /* last checkpoint's seq */
    int64_t unsigned_at, committed_unsigned_at; /* `at` of the first row after it
                                                   (0: none): the timer runs from it */

    names_t names;
    agreement_ref_t *agreements; /* every row of agreement_versions */
    size_t n_agreements, cap_agreements, committed_agreements;

    int64_t *drops; /* sealed rows dropped in the open transaction */
    size_t n_drops, cap_drops;

    /* WAL checkpoints on a connection and thread of their own (writer only) */
    pthread_t ckpt_thread;
    bool ckpt_running;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
    bool ckpt_stop;

    sqlite3_stmt *stmts[ST_COUNT];
};

/* The cached statement `id`, prepared on first use. 0 or SHUB_EDB. */
int shub_store_stmt(shub_store_t *s, stmt_id_t id, sqlite3_stmt **out, shub_err_t *err);

/* Fills err with SHUB_EDB "<what>: <sqlite message>" and returns SHUB_EDB. If
 * SQLite has rolled the transaction back by itself (SQLITE_FULL may), the
 * in-memory state goes back to the last commit so the two cannot disagree. */
int shub_store_db_fail(shub_store_t *s, shub_err_t *err, const char *what);

/* Loads every name and agreement version (readers: once, after BEGIN; the
 * writer keeps them current itself). 0, SHUB_ENOMEM, SHUB_EDB. */
int shub_store_names_load(shub_store_t *s, shub_err_t *err);

/* The text of name id, or NULL (0, unknown, or not loaded). */
const char *shub_store_name(const shub_store_t *s, int64_t id);

/* The id of text if it is a known name, else 0 (readers: filters). */
int64_t shub_store_name_find(shub_store_t *s, const char *text);

/* The agreement version behind vid, or NULL. */
const agreement_ref_t *shub_store_agreement_ref(const shub_store_t *s, int64_t vid);

/* Fills the canonical values of the audit row at the statement's current
 * position, whose columns are SHUB_AUDIT_TABLE_COLUMNS from column `first`.
 * Names resolve through the loaded names; an id that resolves to nothing is
 * encoded as the text "#<id>?" so that the row cannot hash right. *seq and
 * *row_hash (may be NULL) get those columns. */
void shub_store_row_values(const shub_store_t *s, sqlite3_stmt *st, int first,
                           canon_val_t vals[SHUB_AUDIT_NCOLS], char scratch[][32],
                           const uint8_t **row_hash, size_t *row_hash_len);

#endif
