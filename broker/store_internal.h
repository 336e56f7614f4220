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
#include <sodium.h>
#include <stdatomic.h>
#include "store_backend.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"
#include "sharehub/idindex.h"
#include "sharehub/msg.h"
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
#define SHUB_STORE_TEXT_COLS   17  /* of them, texts kept in `names` (store.c) */
#define SHUB_STORE_REF_CACHE   (SHUB_MSG_MAX_REF + 1)

/* PostgreSQL keeps an actor named in clear (an agreement's `actor: clear`)
 * in a text column of its own, actor_text, as its bytea actor_hash cannot
 * hold text the way a SQLite column can; reads name it after row_hash and
 * shub_store_row_values takes the actor from it when it is set. */
#define SHUB_AUDIT_READ_COLUMNS_PG SHUB_AUDIT_TABLE_COLUMNS ", actor_text"

/*
 * The views the audit tools read (query.c): audit rows and pending copies
 * with their names as text. `prefix` qualifies the tables ("main." for
 * SQLite's temp views), `create` starts each statement, `actor` is the
 * actor_hash column (PostgreSQL's holds an actor in clear apart, and shows
 * a hash as the hex text the tools print for a blob). Two statements,
 * separated by ';'.
 */
#define SHUB_STORE_NAME_OF(col) "(SELECT text FROM names WHERE id = a." col ") AS " col
#define SHUB_STORE_VIEWS_SQL(prefix, create, actor)                                           \
    create "audit_t AS SELECT a.seq AS seq, a.at AS at, " SHUB_STORE_NAME_OF("action")  \
    ", a.event_id AS event_id, " SHUB_STORE_NAME_OF("event_type") ", "                  \
    SHUB_STORE_NAME_OF("sender") ", " SHUB_STORE_NAME_OF("recipient") ", "              \
    SHUB_STORE_NAME_OF("decision") ", " SHUB_STORE_NAME_OF("reason") ", "               \
    SHUB_STORE_NAME_OF("explanation") ", v.id AS agreement,"                             \
    " v.version AS agreement_version, v.content_hash AS agreement_hash, "                \
    SHUB_STORE_NAME_OF("flow") ", " SHUB_STORE_NAME_OF("purpose") ", "                  \
    SHUB_STORE_NAME_OF("legal_basis") ", " SHUB_STORE_NAME_OF("consent") ", "           \
    SHUB_STORE_NAME_OF("override") ", " SHUB_STORE_NAME_OF("area") ","                  \
    " a.occurred AS occurred, a.reply_to AS reply_to, " SHUB_STORE_NAME_OF("fields")    \
    ", " SHUB_STORE_NAME_OF("fields_shared") ", " SHUB_STORE_NAME_OF("fields_stripped") \
    ", " SHUB_STORE_NAME_OF("facts") ","                                                 \
    " a.payload_hash AS payload_hash, a.subject_hash AS subject_hash,"                   \
    " a.case_hash AS case_hash, " actor " AS actor_hash"                                 \
    " FROM " prefix "audit a LEFT JOIN " prefix "agreement_versions v"                   \
    " ON v.vid = a.agreement;" create "sealed_t AS SELECT c.seq AS seq,"                 \
    " c.event_id AS event_id, (SELECT text FROM names WHERE id = c.recipient)"           \
    " AS recipient, c.created_at AS created_at FROM " prefix "sealed c"

/*
 * The deadlines (store.c) with their names as text, for the report's
 * timeliness sections; `prefix` and `create` as above. One statement.
 */
#define SHUB_STORE_DEADLINE_VIEW_COLUMNS                                                 \
    "event_id, recipient, kind, sender, event_type, agreement, flow, hours, started_at, " \
    "due_at, answered_at, escalated_at"
#define SHUB_STORE_DEADLINES_VIEW_SQL(prefix, create)                                     \
    create "deadlines_t(" SHUB_STORE_DEADLINE_VIEW_COLUMNS ") AS SELECT"                   \
    " d.event_id, (SELECT text FROM names WHERE id = d.recipient), d.kind,"               \
    " (SELECT text FROM names WHERE id = d.sender),"                                      \
    " (SELECT text FROM names WHERE id = d.event_type), v.id,"                            \
    " (SELECT text FROM names WHERE id = d.flow), d.hours, d.started_at, d.due_at,"       \
    " d.answered_at, d.escalated_at FROM " prefix "deadlines d"                           \
    " LEFT JOIN " prefix "agreement_versions v ON v.vid = d.agreement"

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

/* One name (names.c). */
typedef struct name {
    int64_t id;
    uint64_t hash; /* of text, keyed */
    uint32_t len;
    bool lent;     /* text was handed out: kept until close */
    char text[];   /* NUL-terminated */
} name_t;

/* The names held in memory (names.c), bounded by budget. */
typedef struct names {
    name_t **by_text, **by_id; /* open addressing, n_slots each (a power of two) */
    size_t n_slots, used;
    size_t bytes;              /* of the entries */
    size_t budget;             /* bytes past which a batch lets names go; 0: none */
    size_t trim_at;            /* and not before the maps reach this */
    bool complete;             /* every row of the file's names is held */
    int64_t max_id;            /* the largest id the file or a batch has */
    int64_t loaded_upto;       /* shub_names_load read the file's ids up to it */
    uint64_t trims, probes;
    uint8_t key[crypto_shorthash_KEYBYTES]; /* text_hash's, random per open */
    int64_t *added;            /* ids added and not yet known committed, in order */
    size_t n_added, cap_added;
    name_t **dead;             /* let go while lent: freed at close */
    size_t n_dead, cap_dead;
    shub_arena_t *arena;       /* the agreement references' strings */
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
    ST_NAME_ID,
    ST_NAME_TEXT,
    ST_EVENT_ADD,
    ST_EVENT_SENDER,
    ST_EVENT_LAST,
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
    ST_WITNESS_CHECK,
    ST_COPY_MAX,
    ST_NOTICE_FIND,
    ST_NOTICE_ADD,
    ST_PURGE_OUTCOMES,
    ST_COUNT
} stmt_id_t;

typedef struct batch batch_t; /* writer.c */

/* An event id accepted in a batch not yet committed (dedupe before commit). */
typedef struct flight {
    shub_id_t id;
    int64_t sender; /* name id */
} flight_t;

/* The ids of the events committed lately, RECENT_IDS of them, oldest
 * forgotten first (writer.c). Every committed id at or above `cut` (in the
 * ids' byte order) is among them; the ids the file held when the store
 * opened are all below it. So an id at or above cut that is not among them
 * was never accepted, which the dedupe of a new event learns without a read
 * of the file. An id below cut (an old event resent, an agent whose clock is
 * behind by more than the window) is looked up in the file as before.
 * Forgetting an id raises cut above it. The ids are partners' choice: one
 * made as large as can be only sends every lookup to the file, as before. */
#define RECENT_IDS 65536
typedef struct recent {
    shub_id_t *ring;      /* RECENT_IDS; NULL until the first */
    size_t head, n;       /* the next slot written; how many are held */
    shub_idindex_t index; /* ring slots by id */
    shub_id_t cut;
    bool cut_top;         /* no id is at or above cut: every lookup reads the file */
} recent_t;

/* What a rollback of the open batch returns to: the state after the batch
 * before it (submitted or committed). */
typedef struct base {
    int64_t head_seq;
    uint8_t head_hash[32];
    int64_t checkpoint_upto, unsigned_at;
    int64_t copy_seq, indexed_upto;
    size_t n_agreements, names_added;
} base_t;

/* audit_find's epochs (store.c's schema, version 3): the case and subject
 * indexes lead with seq / FIND_EPOCH_ROWS, and a lookup by either names
 * every epoch up to :indexed's (FIND_EPOCHS, for `epoch IN`). */
#define FIND_EPOCH_ROWS   "16384"
#define FIND_EPOCH_OF_SEQ "(seq / " FIND_EPOCH_ROWS ")"
#define FIND_EPOCH_INDEXES                                                               \
    "CREATE INDEX find_case ON audit_find(epoch, case_hash) WHERE case_hash IS NOT NULL;\n" \
    "CREATE INDEX find_subject ON audit_find(epoch, subject_hash)"                       \
    " WHERE subject_hash IS NOT NULL;\n"
#define FIND_EPOCHS                                                                      \
    "(WITH RECURSIVE epochs(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM epochs"          \
    " WHERE n < :indexed / " FIND_EPOCH_ROWS ") SELECT n FROM epochs)"

struct shub_store {
    shub_db_t *db; /* the writer's connection (the caller's without a writer thread);
                     on PostgreSQL the broker's advisory lock is held on it */
    char *path;       /* a file, or a postgresql:// URI */
    char shown[512];  /* path as logs show it: a URI without its password */
    bool readonly;
    bool find_epochs; /* audit_find has epochs (a version 2 store read as it is has not) */
    bool has_subject_key, has_sign_key;
    uint8_t subject_key[32];
    /* What the last audit row of each kind held (audit_append): the next
     * row usually holds the same texts and the same person, so a compare
     * stands in for interning and for a keyed hash. */
    const name_t *text_last[SHUB_STORE_TEXT_COLS]; /* by text column; NULL: none */
    const name_t *read_last[SHUB_STORE_TEXT_COLS]; /* the same for rows read back */
    struct {
        char ref[SHUB_STORE_REF_CACHE]; /* "" : nothing kept */
        uint8_t hash[32];
    } ref_last[3]; /* by shub_ref_kind_t */
    uint8_t sign_secret[64];
    uint8_t sign_public[32];
    uint32_t checkpoint_every;
    int64_t checkpoint_ms;
    int lock_fd; /* PATH.lock, held while open (exclusive), else -1 */

    /* The state every recorded op has moved (the open batch included). */
    int64_t head_seq; /* last appended row */
    uint8_t head_hash[32];
    int64_t checkpoint_upto; /* last checkpoint's seq */
    int64_t unsigned_at;     /* `at` of the first row after it (0: none): the
                                checkpoint timer runs from it */
    int64_t copy_seq;        /* the last sealed seq handed out */
    int64_t indexed_upto;    /* audit rows audit_find will hold */
    base_t base;

    names_t names;
    agreement_ref_t *agreements; /* every row of agreement_versions */
    size_t n_agreements, cap_agreements;
    size_t names_confirmed, agreements_confirmed; /* as far as a commit took them */

    /* The write path (writer.c). */
    batch_t *open;      /* being recorded: between begin and commit/submit */
    batch_t *unsettled; /* submitted, not yet settled by the caller, in order */
    batch_t *free;
    uint64_t next_ticket, settled_ticket;
    flight_t *flight; /* events of unsettled and open batches, in no order */
    size_t n_flight, cap_flight;
    shub_idindex_t flight_index; /* their places in flight, by id */
    recent_t recent;  /* events committed lately: most dedupe without a read */
    shub_db_t *rdb;   /* the caller's reads while the writer writes (NULL: db) */
    shub_db_stmt_t *rstmts[ST_COUNT];
    int efd;          /* eventfd: the writer finished a group */
    pthread_t writer;
    bool writer_running, writer_sync;
    pthread_mutex_t wmu; /* guards what follows */
    pthread_cond_t wcv, wdone;
    batch_t *queue; /* submitted, not yet taken by the writer (along qnext) */
    bool writing, writer_stop, failed;
    uint64_t done_ticket, failed_ticket;
    int failed_rc;
    shub_err_t failed_err;

    /* WAL checkpoints on a connection and thread of their own (writer only) */
    int64_t wal_limit;        /* bytes: past it the WAL is restarted */
    char *wal_path;           /* path "-wal" (grown to wal_limit as the store opens) */
    atomic_bool wal_restart;  /* the checkpointer asks the writing connection to */
    atomic_uint_fast64_t wal_restarts; /* how often it has asked */
    pthread_t ckpt_thread;
    bool ckpt_running;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
    bool ckpt_stop;

    shub_db_stmt_t *stmts[ST_COUNT];
};

/* The cached statement `id`, prepared on first use. 0 or SHUB_EDB. */
int shub_store_stmt(shub_store_t *s, stmt_id_t id, shub_db_stmt_t **out, shub_err_t *err);

/* Fills err with SHUB_EDB "<what>: <sqlite message>" and returns SHUB_EDB. */
int shub_store_db_fail(shub_store_t *s, shub_err_t *err, const char *what);

/* The SQL of statement id for the store's engine. */
const char *shub_store_sql(const shub_store_t *s, stmt_id_t id);

/* ---- the write path (writer.c) ----------------------------------------- */

/* Recording one op into the open batch: begin, its parameters by index
 * (opt_int stores 0 as NULL; text and blob store NULL pointers as NULL), end.
 * end says SHUB_ENOMEM if anything of it could not be recorded, and then
 * nothing of it is. */
void shub_store_op_begin(shub_store_t *s, stmt_id_t id);
void shub_store_op_int(shub_store_t *s, int index, int64_t v);
void shub_store_op_opt_int(shub_store_t *s, int index, int64_t v);
void shub_store_op_text(shub_store_t *s, int index, const char *t);
void shub_store_op_blob(shub_store_t *s, int index, const void *p, size_t n);
int shub_store_op_end(shub_store_t *s, const char *what, shub_err_t *err);
/* A sealed row to delete when the batch runs. SHUB_ENOMEM. */
int shub_store_op_drop(shub_store_t *s, int64_t seq);
/* Restarts the WAL after the open batch commits (when `restart`). */
void shub_store_mark_restart(shub_store_t *s, bool restart);

/* Events in flight: the entry of id in an open or unsettled batch, or NULL;
 * add records it for the open batch (SHUB_ENOMEM). */
const flight_t *shub_store_flight_find(const shub_store_t *s, const shub_id_t *id);
int shub_store_flight_add(shub_store_t *s, const shub_id_t *id, int64_t sender);

/* Recent ids (recent_t): forgets them all and sets cut above the largest id
 * in the file (on open and after a failure); whether id was never accepted,
 * as far as they can tell without the file (false: look it up); the ring's
 * memory. */
int shub_store_recent_reset(shub_store_t *s, shub_err_t *err);
bool shub_store_recent_unseen(const shub_store_t *s, const shub_id_t *id);
void shub_store_recent_free(shub_store_t *s);

int shub_store_batch_open(shub_store_t *s, shub_err_t *err);
void shub_store_batch_discard(shub_store_t *s);
void shub_store_batches_free(shub_store_t *s);
int shub_store_writer_start(shub_store_t *s, shub_err_t *err);
void shub_store_writer_stop(shub_store_t *s); /* runs what is queued first */

/* The open batch's starting state (store.c): saved when it opens, restored
 * when it is discarded, moved to the current state when it is closed. */
void shub_store_base_save(shub_store_t *s);
void shub_store_base_restore(shub_store_t *s);
void shub_store_base_confirm(shub_store_t *s);

/* Re-reads the state the write path keeps in memory from the file (head,
 * sequence numbers; names and agreements no commit confirmed are forgotten).
 * Only while nothing is in flight. */
int shub_store_reload(shub_store_t *s, shub_err_t *err);

/* Reads on the caller's connection: the last commit, never the open batch. */
int shub_store_read_stmt(shub_store_t *s, stmt_id_t id, shub_db_stmt_t **out,
                         shub_err_t *err);
int shub_store_read_fail(shub_store_t *s, shub_err_t *err, const char *what);

/* Loads the names (as many as the budget allows; the rest are read when
 * needed) and every agreement version (readers: once, after BEGIN; the
 * writer keeps them current itself). 0, SHUB_ENOMEM, SHUB_EDB. */
int shub_store_names_load(shub_store_t *s, shub_err_t *err);

/* ---- names.c ---- */

/* An empty set of names that may take `budget` bytes (0: no bound). */
int shub_names_init(names_t *nm, size_t budget);
void shub_names_free(names_t *nm);
/* What the names take in memory, their maps included. */
size_t shub_names_bytes(const names_t *nm);
/* The names of the file, up to half the budget (shub_store_names_load). */
int shub_names_load(shub_store_t *s, shub_err_t *err);
/* The entry of text (NULL for NULL text), added inside the open batch if the
 * file has none. The pointer holds until the next batch opens. */
int shub_names_intern(shub_store_t *s, const char *text, name_t **out, shub_err_t *err);
/* The entry of id, from memory or the file; NULL if none. The pointer holds
 * until the next batch opens. */
const name_t *shub_names_entry(shub_store_t *s, int64_t id);
/* Forgets the names added from entry `first` of the added list on (their
 * batch was rolled back). */
void shub_names_forget_from(shub_store_t *s, size_t first);
/* As a batch opens: past the budget, lets go of what nobody holds. */
void shub_names_trim(shub_store_t *s);

/* The text of name id, or NULL (0, or unknown); it holds until close. */
const char *shub_store_name(shub_store_t *s, int64_t id);

/* The id of text if it is a known name, else 0 (readers: filters). */
int64_t shub_store_name_find(shub_store_t *s, const char *text);

/* The agreement version behind vid, or NULL. */
const agreement_ref_t *shub_store_agreement_ref(const shub_store_t *s, int64_t vid);

/* Fills the canonical values of the audit row at the statement's current
 * position, whose columns are SHUB_AUDIT_TABLE_COLUMNS from column `first`.
 * Names resolve through the loaded names; an id that resolves to nothing is
 * encoded as the text "#<id>?" so that the row cannot hash right. *seq and
 * *row_hash (may be NULL) get those columns. */
void shub_store_row_values(shub_store_t *s, shub_db_stmt_t *st, int first,
                           canon_val_t vals[SHUB_AUDIT_NCOLS], char scratch[][32],
                           const uint8_t **row_hash, size_t *row_hash_len);

#endif
