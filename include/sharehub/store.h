/*
 * store: the broker's durable state in one SQLite file (WAL mode): the audit
 * log (hash-chained, with signed checkpoints and the witnesses' countersig-
 * natures), the dedupe set of event ids (forever), each event's receipt, the
 * pending copies sealed to their recipients, the later outcomes not yet
 * confirmed by their senders, and the agreement versions the broker has
 * loaded. The store, verify.c and query.c are one module (one library, one
 * private header, store_internal.h): all of the broker's SQL is in them.
 * docs/internals.md describes the schema and why it is shaped so.
 *
 * The hub writes a turn's work between shub_store_begin and shub_store_commit
 * (group commit): one fsync per turn. Nothing is acknowledged to a peer before
 * commit returns 0. After any error inside a transaction the caller calls
 * shub_store_rollback, which also resets the chain head to the last committed
 * row; the hub then rebuilds what it holds in memory from the store (pending
 * copies, unconfirmed updates), so the two can never disagree. SQLITE_FULL is
 * recoverable this way.
 *
 * Text in audit rows, receipts and copies is interned: each distinct string is
 * stored once in `names` and referred to by id. Strings the store hands back
 * (interned) stay valid until the store is closed.
 *
 * Errors: every SQLite failure is SHUB_EDB with what was being done and
 * SQLite's words ("commit: database or disk is full"). One store object
 * belongs to one thread.
 */
#ifndef SHAREHUB_STORE_H
#define SHAREHUB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"
#include "sharehub/msg.h"

#define SHUB_STORE_SCHEMA_VERSION   3          /* PRAGMA user_version this code writes */
#define SHUB_STORE_APPLICATION_ID   0x53485542 /* 'SHUB' in the SQLite file header */
#define SHUB_STORE_HASH_SIZE        32         /* row, payload, subject, case, actor */
#define SHUB_STORE_KEY_SIZE         32         /* subject key; Ed25519 public key */
#define SHUB_STORE_SECRET_SIZE      64         /* Ed25519 secret key (libsodium form) */
#define SHUB_STORE_CHECKPOINT_EVERY 10000      /* default rows between checkpoints */
#define SHUB_STORE_CHECKPOINT_MS    5000       /* default time between checkpoints
                                                  while rows are appended */
#define SHUB_STORE_BUSY_MS          5000       /* wait for a lock before SHUB_EDB */
#define SHUB_STORE_MAX_TEXT         65536      /* bytes in one text of a row */
#define SHUB_STORE_INDEX_BATCH      4096       /* audit rows indexed per maintain call */
#define SHUB_STORE_NAMES_BUDGET     ((size_t)64 << 20) /* bytes: opts.names_budget */
#define SHUB_STORE_WAL_LIMIT        (64LL << 20) /* bytes of WAL before it is written
                                                    from its start again (twice this:
                                                    what it shrinks back to then) */

typedef struct shub_store shub_store_t;

typedef struct shub_store_opts {
    bool readonly;         /* the audit tools: SQLITE_OPEN_READONLY, works beside a
                              running broker (WAL) */
    bool synchronous_full; /* true: synchronous=FULL; false: NORMAL */
    bool exclusive;        /* the broker: hold PATH.lock (flock) while open, so a
                              second broker on the same file is refused, naming the
                              holder's pid */
    const uint8_t *subject_key; /* 32 bytes: keyed hashes of subject, case and actor
                                   references (NULL: readonly use) */
    const uint8_t *sign_secret; /* 64-byte Ed25519 secret key for checkpoints */
    uint32_t checkpoint_every;  /* audit rows between checkpoints (0: default) */
    uint32_t checkpoint_ms;     /* ms between checkpoints while rows are appended
                                   (0: default); recorded in meta for verify */
    int64_t max_pages; /* test hook: PRAGMA max_page_count, simulates a full disk
                          (0: unlimited) */
    bool writer_thread; /* the broker: batches run on a thread of the store's own
                           (shub_store_submit), reads on a second connection */
    int64_t wal_limit;  /* SQLite: bytes of WAL before it restarts from its start
                           (0: SHUB_STORE_WAL_LIMIT) */
    size_t names_budget; /* bytes the names held in memory may take before a batch
                            lets go of those nobody holds, read back from the file
                            when needed (0: SHUB_STORE_NAMES_BUDGET; readonly
                            stores hold every name) */
    /* PostgreSQL with `exclusive`: while another broker holds the database's
     * lock, called every 200 ms; true keeps waiting (a standby broker), false
     * gives up with SHUB_EBUSY. NULL: give up at once. */
    bool (*wait_lock)(void *ctx);
    void *wait_ctx;
} shub_store_opts_t;

/* ---- lifecycle --------------------------------------------------------- */

/* Opens (and if new, creates) the store at path; *store_p gets the new store.
 * path is a SQLite file, or a PostgreSQL database as a connection URI
 * (postgresql://...; the store lives in the connection's current schema, and
 * the database must exist). On PostgreSQL `exclusive` is a session advisory
 * lock the database server holds for the broker's connection, released when
 * that session ends, and `max_pages` does nothing.
 * Refuses a file that is not a sharehub store (application_id), a schema
 * newer than this code, and a version 1 store (with what to do about it),
 * all SHUB_EDB naming the file; a subject key different from the one the
 * store was created with (SHUB_ECRYPTO); with opts->exclusive, a file another
 * process holds (SHUB_EBUSY, naming its pid). SHUB_ENOMEM, SHUB_EINVAL. */
int shub_store_open(const char *path, const shub_store_opts_t *opts,
                    shub_store_t **store_p, shub_err_t *err);

/* Whether path names a PostgreSQL database (postgresql:// or postgres://)
 * rather than a SQLite file. */
bool shub_store_is_uri(const char *path);

/* path as logs and messages show it: a URI without any password (libpq's
 * own parser reads it), at most size-1 bytes into out. */
void shub_store_display(const char *path, char *out, size_t size);

/* Rolls back an open transaction, finalizes statements, closes the file, wipes
 * the keys, releases the lock. Accepts NULL; nulls the caller's pointer. */
void shub_store_close(shub_store_t **store_p);

/* ---- transactions ------------------------------------------------------ */

/*
 * Writes are recorded in a batch and reach the file when it runs, in one
 * transaction. The in-memory state (chain head, names, sequence numbers)
 * moves as each write is recorded; reads see the last commit, never the
 * open batch.
 */

/* Opens a batch. SHUB_EPROTO if one is open. No I/O. */
int shub_store_begin(shub_store_t *s, shub_err_t *err);

/* Runs the open batch and waits for it: BEGIN IMMEDIATE, its writes, the
 * sealed copies it dropped (as runs of consecutive rows), COMMIT. On failure
 * nothing of it is in the file and the in-memory state is back at the last
 * commit. */
int shub_store_commit(shub_store_t *s, shub_err_t *err);

/* Forgets the open batch, if any, and what it interned and appended. Safe to
 * call at any time. */
void shub_store_rollback(shub_store_t *s);

/* With a writer thread: hands the open batch to it and returns at once;
 * *ticket names the batch (tickets grow by one per batch). The writer runs
 * every batch waiting in one transaction. The next batch may be opened at
 * once and starts from this one's end. */
int shub_store_submit(shub_store_t *s, uint64_t *ticket, shub_err_t *err);

/* Settles what the writer finished: *done gets the last ticket known
 * committed. Non-zero (the failure, err filled) once a batch failed: that
 * batch and every one submitted after it are not in the file, and the store
 * refuses to run more until shub_store_recover. Never blocks. */
int shub_store_poll(shub_store_t *s, uint64_t *done, shub_err_t *err);

/* A file descriptor readable when the writer has finished a group (poll it,
 * then call shub_store_poll); -1 without a writer thread. */
int shub_store_fd(const shub_store_t *s);

/* The open batch's ticket (or the last one handed out), and the last ticket
 * known committed. Something recorded in batch t is in the file once
 * shub_store_settled() >= t. */
uint64_t shub_store_ticket(const shub_store_t *s);
uint64_t shub_store_settled(const shub_store_t *s);

/* How many times the WAL checkpointer has asked the writer to write the WAL
 * from its start again (it had more than the WAL limit of frames). */
uint64_t shub_store_wal_restarts(const shub_store_t *s);

/* The names held in memory: how many texts, and the bytes they take (the
 * texts themselves and the maps by id and by text). Every distinct text a
 * row records (an organisation, an event type, a payload's list of field
 * names) is a row of `names`; memory holds those in use and, up to
 * opts.names_budget, those used before. */
void shub_store_names_held(const shub_store_t *s, uint64_t *count, uint64_t *bytes);

/* How many slots of the names map lookups have visited since open: with a
 * load of at most a half, under two a lookup whatever texts were chosen. */
uint64_t shub_store_name_probes(const shub_store_t *s);

/* Whether submitted batches are not yet settled. */
bool shub_store_busy(const shub_store_t *s);

/* Whether a submitted batch waits for the writer thread, which is still
 * committing the groups before it (false without a writer thread). */
bool shub_store_queued(shub_store_t *s);

/* Waits until everything submitted has run, then settles it (as poll). */
int shub_store_drain(shub_store_t *s, shub_err_t *err);

/* After a failure: forgets the open batch and every unsettled one, waits for
 * the writer, and re-reads the chain head and sequence numbers from the file.
 * 0 or SHUB_EDB; SHUB_EBUSY on PostgreSQL when the session holding the
 * broker's lock is gone (the broker must stop: a standby may be active). */
int shub_store_recover(shub_store_t *s, shub_err_t *err);

/* Inside a transaction: whether a checkpoint is due at now_ms (rows appended
 * since the last one, and checkpoint_every rows or checkpoint_ms elapsed, or
 * `force`); if so signs the head and stores it, and *out (may be NULL) gets
 * it, *made true. SHUB_EINVAL without a signing key. */
int shub_store_checkpoint(shub_store_t *s, int64_t now_ms, bool force,
                          shub_signed_head_t *out, bool *made, shub_err_t *err);

/* Whether shub_store_checkpoint would sign at now_ms (no I/O). */
bool shub_store_checkpoint_due(const shub_store_t *s, int64_t now_ms);

/* The newest checkpoint into *out. SHUB_ENOTFOUND if there is none. */
int shub_store_checkpoint_latest(shub_store_t *s, shub_signed_head_t *out,
                                 shub_err_t *err);

/* Background work, outside a transaction, never on the commit path: index up
 * to SHUB_STORE_INDEX_BATCH audit rows into audit_find (its own short
 * transaction), then checkpoint the WAL (TRUNCATE when `idle`, else PASSIVE).
 * *more (may be NULL) says whether rows are still unindexed. 0 or SHUB_EDB. */
int shub_store_maintain(shub_store_t *s, bool idle, bool *more, shub_err_t *err);

/* The chain head as this connection sees it: the last appended seq (0 for an
 * empty log) and its row hash (zeros for an empty log). */
void shub_store_head(const shub_store_t *s, int64_t *seq, uint8_t hash[32]);

/* ---- dedupe ------------------------------------------------------------ */

/* Records an event id as accepted from sender, inside a transaction.
 * SHUB_EEXIST if the id is committed, or in flight from another sender (then
 * *sender_out, if not NULL, gets the original sender, size
 * SHUB_MSG_MAX_NAME+1); SHUB_EBUSY if the same sender's event is in a batch
 * not yet committed (its receipt follows that commit). */
int shub_store_event_add(shub_store_t *s, const shub_id_t *id, const char *sender,
                         int64_t now_ms, char *sender_out, shub_err_t *err);

/* ---- audit log --------------------------------------------------------- */

/*
 * One audit row: a decision, acknowledgement, dead letter, re-check at
 * delivery, refusal of a peer's message, or a notice the hub sent, about one
 * (event, recipient). It answers the DPA 2018 s62 questions for a disclosure,
 * years later: the justification (agreement id, version and content hash,
 * flow, purpose, legal basis, consent and override), when (at_ms), who
 * disclosed (sender, and actor: the person, as a keyed hash) and to whom
 * (recipient), and what (the payload's field names; which went, which were
 * stripped; a hash of the copy). Never a payload value.
 *
 * action: decide, ack, dead, recheck, refuse, notice. decision: allow, deny,
 * acknowledged, dead, refused, sent. Both required; every other text is
 * optional (NULL is stored as NULL, distinct from ""). Field lists are
 * comma-separated paths. Strings are borrowed: by append for the call, by a
 * read callback for the callback.
 */
typedef struct shub_audit_row {
    int64_t seq;                   /* out: set by append */
    int64_t at_ms;                 /* when, ms since the Unix epoch */
    const char *action, *decision; /* see above; required */
    shub_id_t event_id;            /* all zero: none (a message that did not decode) */
    const char *event_type, *sender, *recipient, *reason, *explanation;
    const char *agreement;      /* agreement id */
    uint32_t agreement_version; /* 0: none */
    const char *agreement_hash; /* content hash of that version's text */
    const char *flow, *purpose, *legal_basis, *consent, *override, *area;
    int64_t occurred_ms;        /* the event's own time (0: none) */
    const shub_id_t *reply_to;  /* the event it answers, or NULL */
    const char *fields;         /* every leaf path of the payload, names only */
    const char *fields_shared, *fields_stripped;
    const char *facts;          /* "path=value,..." for the flow's `report` fields:
                                   codes the agreement classes anonymous */
    const uint8_t *payload_hash; /* 32 bytes or NULL: the copy as sealed */
    /* in (append): raw references, of which the store keeps keyed hashes only */
    const char *subject_ref, *case_ref, *actor_ref;
    bool actor_clear; /* in: the agreement says `actor: clear`: the actor_hash
                         column keeps actor_ref itself, as text */
    /* out (reads): those hashes, 32 bytes or NULL */
    const uint8_t *subject_hash, *case_hash, *actor_hash;
} shub_audit_row_t;

/* Appends one row to the chain, inside a transaction; sets row->seq. Needs
 * the subject key for any *_ref. SHUB_EINVAL (missing action or decision,
 * text over SHUB_STORE_MAX_TEXT), SHUB_EPROTO (no transaction, read-only),
 * SHUB_EDB. On failure the chain head is unchanged. */
int shub_store_audit_append(shub_store_t *s, shub_audit_row_t *row, shub_err_t *err);

/* The keyed hash the store keeps for a reference of a kind: how a subject
 * access request finds a person's rows, `log --case` a case's. SHUB_EINVAL
 * without a subject key. */
typedef enum { SHUB_REF_SUBJECT, SHUB_REF_CASE, SHUB_REF_ACTOR } shub_ref_kind_t;
int shub_store_ref_hash(const shub_store_t *s, shub_ref_kind_t kind, const char *ref,
                        uint8_t out[32]);

/* The same with a bare key (the audit tool holds the key, not a writable
 * store). */
void shub_store_ref_hash_key(const uint8_t key[32], shub_ref_kind_t kind,
                             const char *ref, uint8_t out[32]);

typedef int(shub_audit_fn)(const shub_audit_row_t *row, void *ctx); /* non-zero stops */

/* Calls fn for up to `limit` rows with seq > after_seq, in seq order. fn must
 * not call into the store. Returns 0, fn's non-zero value, or SHUB_EDB. */
int shub_store_audit_read(shub_store_t *s, int64_t after_seq, size_t limit,
                          shub_audit_fn *fn, void *ctx, shub_err_t *err);

/* ---- receipts ------------------------------------------------------------ */

/* One recipient's outcome of an event as the store keeps it: `allowed` rows
 * (state SHUB_OUTCOME_QUEUED) are pending or acknowledged, which only the
 * hub's memory tells apart; denied and dead are final. Strings borrowed. */
typedef struct shub_store_outcome {
    shub_id_t event_id;
    const char *recipient;        /* an org id, or the selector that matched none */
    shub_outcome_t state;         /* QUEUED (allowed), DENIED or DEAD */
    const char *reason, *detail;  /* denied, dead */
    const char *agreement;        /* may be NULL */
    uint32_t agreement_version;
    const char *agreement_hash, *flow;
} shub_store_outcome_t;

/* Adds the row for (event, recipient), inside a transaction. SHUB_EEXIST if
 * there is one; SHUB_EINVAL; SHUB_EDB. */
int shub_store_outcome_put(shub_store_t *s, const shub_store_outcome_t *o,
                           shub_err_t *err);

/* An allowed row becomes dead, with reason and detail (a row that is not
 * allowed, or not there, is left alone). */
int shub_store_outcome_dead(shub_store_t *s, const shub_id_t *id, const char *recipient,
                            const char *reason, const char *detail, shub_err_t *err);

typedef int(shub_outcome_store_fn)(const shub_store_outcome_t *o, void *ctx);

/* Every recipient row of an event, in recipient order. fn must not call into
 * the store; the strings hold for its call only. 0, fn's non-zero value,
 * SHUB_EDB. */
int shub_store_outcomes(shub_store_t *s, const shub_id_t *id, shub_outcome_store_fn *fn,
                        void *ctx, shub_err_t *err);

/* ---- sealed copies --------------------------------------------------------- */

/* A pending copy: what DELIVER needs, and what a re-check at delivery needs
 * (the purpose, basis and fields it was allowed under). */
typedef struct shub_store_copy {
    int64_t seq;       /* its row; set by put */
    shub_id_t event_id;
    const char *recipient, *sender, *event_type;
    const char *agreement, *agreement_hash, *flow;
    uint32_t agreement_version;
    const char *area, *purpose, *basis, *fields_shared;
    int64_t created_ms;
    const uint8_t *sealed; /* put only: the copy sealed to the recipient */
    size_t sealed_len;
} shub_store_copy_t;

/* Stores a copy, inside a transaction; sets c->seq, and points c's strings at
 * the store's interned copies (valid until close). SHUB_EINVAL, SHUB_EDB. */
int shub_store_copy_put(shub_store_t *s, shub_store_copy_t *c, shub_err_t *err);

/* The sealed bytes of committed copy `seq` into out (replacing its
 * contents). SHUB_ENOTFOUND, SHUB_EDB. */
int shub_store_copy_sealed(shub_store_t *s, int64_t seq, shub_buf_t *out,
                           shub_err_t *err);

/* Inside a transaction: copy `seq` is done with (acknowledged, dead); it is
 * deleted at commit, with its neighbours as one range. */
int shub_store_copy_drop(shub_store_t *s, int64_t seq, shub_err_t *err);

typedef int(shub_copy_fn)(const shub_store_copy_t *c, void *ctx);

/* Every stored copy in seq order, without its sealed bytes (strings interned,
 * valid until close): how the hub rebuilds its pending set. Waits for what
 * was submitted. */
int shub_store_copies(shub_store_t *s, shub_copy_fn *fn, void *ctx, shub_err_t *err);

/* ---- updates to senders ------------------------------------------------------ */

/* A later outcome for a sender: its seq is the audit row that recorded it
 * (so seqs grow and are never reused). Strings borrowed. */
typedef struct shub_store_update {
    int64_t seq;
    const char *sender;
    shub_id_t event_id;
    const char *recipient;
    shub_outcome_t state; /* ACKNOWLEDGED or DEAD */
    const char *reason, *detail, *agreement, *flow;
    uint32_t agreement_version;
} shub_store_update_t;

int shub_store_update_add(shub_store_t *s, const shub_store_update_t *u, shub_err_t *err);

typedef int(shub_update_fn)(const shub_store_update_t *u, void *ctx);

/* A sender's unconfirmed updates with seq > after, in seq order, at most
 * limit, as committed (it waits for what was submitted; the open batch's are
 * not seen). fn must not call into the store; the strings hold for its call
 * only. */
int shub_store_updates(shub_store_t *s, const char *sender, int64_t after, size_t limit,
                       shub_update_fn *fn, void *ctx, shub_err_t *err);

/* Inside a transaction: the sender has applied every update up to `upto`. */
int shub_store_updates_confirm(shub_store_t *s, const char *sender, int64_t upto,
                               shub_err_t *err);

/* ---- witnesses ------------------------------------------------------------- */

/* Keeps an organisation's countersignature of a checkpoint (its signature
 * checked by the caller), inside a transaction. SHUB_ENOTFOUND if the log has
 * no checkpoint with that seq, head and time; a repeat is ignored. */
int shub_store_witness_add(shub_store_t *s, const char *org, const shub_signed_head_t *w,
                           int64_t now_ms, shub_err_t *err);

/* ---- agreements -------------------------------------------------------- */

/* Records an agreement version as loaded (once per id, version and content
 * hash), so an audit row names the exact text. Outside or inside a
 * transaction. */
int shub_store_agreement_seen(shub_store_t *s, const char *id, uint32_t version,
                              const char *content_hash, const char *title,
                              const char *status, int64_t valid_from, int64_t valid_until,
                              int64_t review, int64_t now_ms, shub_err_t *err);

/* ---- deadlines ----------------------------------------------------------- */

#define SHUB_STORE_DEADLINE_ACK 1 /* the recipient answers the share (any reply) */
#define SHUB_STORE_DEADLINE_ACT 2 /* the recipient answers its sender */

/* One deadline of an allowed share, from its flow (ack_within_hours,
 * act_within_hours): due at due_ms on the hub's clock. answered_ms and
 * escalated_ms are 0 until they happen. Strings borrowed (put: for the call,
 * then pointed at the store's interned copies, valid until close). */
typedef struct shub_store_deadline {
    shub_id_t event_id;
    const char *recipient, *sender, *event_type, *area;
    const char *agreement, *agreement_hash, *flow;
    uint32_t agreement_version;
    int kind;       /* SHUB_STORE_DEADLINE_ACK or _ACT */
    uint32_t hours; /* the flow's target, as written */
    int64_t started_ms, due_ms, answered_ms, escalated_ms;
} shub_store_deadline_t;

/* Records a deadline, inside a transaction (a repeat is ignored). SHUB_EINVAL,
 * SHUB_EPROTO (no transaction), SHUB_EDB. */
int shub_store_deadline_put(shub_store_t *s, shub_store_deadline_t *d, shub_err_t *err);

/* Inside a transaction: sets answered_ms and/or escalated_ms (0: leave as is;
 * a time already set is kept); a deadline that is not there is left alone. */
int shub_store_deadline_mark(shub_store_t *s, const shub_id_t *id, const char *recipient,
                             int kind, int64_t answered_ms, int64_t escalated_ms,
                             shub_err_t *err);

typedef int(shub_deadline_store_fn)(const shub_store_deadline_t *d, void *ctx);

/* Every deadline not answered yet (escalated or not), as committed (it waits
 * for what was submitted): how the hub rebuilds what it tracks on start. fn
 * must not call into the store. 0, fn's non-zero value, SHUB_EDB. */
int shub_store_deadlines_open(shub_store_t *s, shub_deadline_store_fn *fn, void *ctx,
                              shub_err_t *err);

/* ---- notices from the hub ----------------------------------------------- */

/* Whether the hub has sent its notice of `kind` about `subject` (e.g.
 * "agreement.expiring" about "wm-marac v3 until 2027-03-31"): *sent, as of
 * the last commit. A notice is sent once, whatever restarts in between.
 * SHUB_EDB. */
int shub_store_notice_sent(shub_store_t *s, const char *kind, const char *subject,
                           bool *sent, shub_err_t *err);

/* Records that notice, as event id to recipient, inside the transaction that
 * audits and stores it. A repeat is ignored. SHUB_EPROTO, SHUB_EDB. */
int shub_store_notice_add(shub_store_t *s, const char *kind, const char *subject,
                          const char *recipient, const shub_id_t *id, int64_t at_ms,
                          shub_err_t *err);

/* ---- retention ---------------------------------------------------------- */

/* Inside a transaction: deletes (when it commits) the receipts (outcomes
 * rows) of up to max events received before before_ms of which no copy is
 * pending. The event ids stay (a resent event is still a duplicate,
 * answered with the outcomes left: none), and so does the audit log.
 * SHUB_EPROTO, SHUB_ENOMEM. */
int shub_store_purge_outcomes(shub_store_t *s, int64_t before_ms, size_t max,
                              shub_err_t *err);

/* ---- verification ------------------------------------------------------ */

/* A checkpoint some organisation holds: evidence for verify. A witnessed one
 * must be in the log and agree with its rows; a fork (one the organisation's
 * agent found contradicting another it kept) that the broker's key signed
 * shows by itself that the broker signed two histories. */
typedef struct shub_witnessed {
    char org[SHUB_MSG_MAX_NAME + 1]; /* who holds it ("" if unknown) */
    char source[256];                /* where it came from, for messages */
    shub_signed_head_t cp;           /* as the broker signed it */
    bool fork;                       /* kept as a fork, not countersigned */
} shub_witnessed_t;

typedef struct shub_verify_opts {
    const uint8_t *expected_key;      /* 32 bytes: checkpoints must be signed with
                                         it (NULL: with the key each one names) */
    const shub_witnessed_t *witnessed; /* checkpoints held by witnesses */
    size_t n_witnessed;
    int64_t now_ms;                   /* for the unsigned tail's age */
} shub_verify_opts_t;

typedef struct shub_verify_result {
    bool ok;             /* the chain, every checkpoint and every witness hold */
    int64_t rows;        /* rows found intact (all rows when ok) */
    int64_t checkpoints; /* checkpoints whose signature was checked */
    int64_t witnessed;   /* witnessed checkpoints checked against the log */
    int64_t witnessed_upto; /* the newest of them: rows up to here are proven by a
                               checkpoint someone else holds */
    int64_t bad_seq;     /* the first bad row (0 when ok) */
    int64_t signed_upto; /* rows up to here are covered by a checkpoint */
    int64_t unsigned_rows;     /* rows after the newest checkpoint */
    int64_t unsigned_span_ms;  /* time those rows were appended over */
    int64_t unsigned_age_ms;   /* now - the first of them */
    int64_t interval_ms;       /* the broker's checkpoint interval (meta) */
    char problem[384];         /* "edited", "missing", "inserted", "truncated ...",
                                  "bad signature", "not witnessed", "forked",
                                  "unsigned tail", then ": " and detail; "" when ok */
} shub_verify_result_t;

/* Re-walks the audit chain of the store at path (read-only, beside a live
 * broker), checks every checkpoint's signature and every witnessed
 * checkpoint against the log, fails on any fork a witness holds whose
 * signature verifies, and judges the unsigned tail (with expected_key set, a
 * tail appended over more than twice the checkpoint interval fails). 0 with
 * out->ok true or false; negative only if it cannot check at all. */
int shub_store_verify(const char *path, const shub_verify_opts_t *opts,
                      shub_verify_result_t *out, shub_err_t *err);

#endif
