/*
 * store: the broker's durable state in one SQLite file (WAL mode), and the only
 * module that speaks SQL. It holds the audit log (hash-chained, with signed
 * checkpoints), the outbox of sealed deliveries, the dedupe set of event ids
 * (forever), and the agreement versions the broker has loaded.
 *
 * The hub drains a batch of messages, then writes all of it between
 * shub_store_begin and shub_store_commit (group commit): one fsync per batch,
 * not per event. Nothing is acknowledged to a peer before commit returns 0.
 * After any error inside a transaction the caller calls shub_store_rollback;
 * that also resets the in-memory chain head, so a later append continues from
 * the last committed row. SQLITE_FULL is recoverable this way: roll back, wait
 * for space, begin again.
 *
 * The audit log keeps metadata only: names of fields, never their values; a
 * hash of the payload; a keyed hash of the subject reference (so a subject
 * access request can find a person's rows without the log holding who they
 * are). Each row carries prev_hash and row_hash = BLAKE2b-256(prev_hash ||
 * canonical(row)); every checkpoint_every rows the chain head is signed with
 * Ed25519. shub_store_verify re-walks the chain and the signatures.
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

#define SHUB_STORE_SCHEMA_VERSION   1          /* PRAGMA user_version this code writes */
#define SHUB_STORE_APPLICATION_ID   0x53485542 /* 'SHUB' in the SQLite file header */
#define SHUB_STORE_HASH_SIZE        32         /* row, payload and subject hashes */
#define SHUB_STORE_KEY_SIZE         32         /* subject key; Ed25519 public key */
#define SHUB_STORE_SECRET_SIZE      64         /* Ed25519 secret key (libsodium form) */
#define SHUB_STORE_CHECKPOINT_EVERY 10000      /* default rows between checkpoints */
#define SHUB_STORE_BUSY_MS          5000       /* wait for a lock before SHUB_EDB */
#define SHUB_STORE_MAX_TEXT         1048576    /* bytes in one audit or delivery text */

typedef struct shub_store shub_store_t;

typedef struct shub_store_opts {
    bool readonly;         /* the audit tool: SQLITE_OPEN_READONLY, works while the
                              broker runs (WAL) */
    bool synchronous_full; /* true: synchronous=FULL; false: NORMAL */
    const uint8_t
        *subject_key; /* 32 bytes: keyed hash of subject refs (NULL: readonly use) */
    const uint8_t
        *sign_secret; /* 64-byte Ed25519 secret key for checkpoints (NULL: none) */
    uint32_t checkpoint_every; /* audit rows between checkpoints (0: default 10000) */
    int64_t max_pages;         /* test hook: PRAGMA max_page_count, simulates a full disk
                                  (0: unlimited) */
} shub_store_opts_t;

/* ---- lifecycle --------------------------------------------------------- */

/* Opens (and if new, creates) the store at path; *store_p gets the new store.
 * Refuses a file that is not a sharehub store (application_id) and a schema
 * newer than this code (user_version) with SHUB_EDB and a message naming the
 * file. A subject key different from the one the store was created with is
 * refused too (SHUB_ECRYPTO): hashes under two keys would split a subject.
 * SHUB_ENOMEM, SHUB_EINVAL (bad opts), SHUB_EDB. */
int shub_store_open(const char *path, const shub_store_opts_t *opts,
                    shub_store_t **store_p, shub_err_t *err);

/* Rolls back an open transaction, finalizes statements, closes the file, wipes
 * the keys. Accepts NULL; nulls the caller's pointer. Does not checkpoint:
 * call shub_store_checkpoint first at shutdown. */
void shub_store_close(shub_store_t **store_p);

/* ---- transactions ------------------------------------------------------ */

/* BEGIN IMMEDIATE: takes the write lock now, so the batch cannot fail later
 * for want of it. SHUB_EPROTO if a transaction is already open. */
int shub_store_begin(shub_store_t *s, shub_err_t *err);

/* Writes a checkpoint inside the transaction if one is due, then COMMIT. On
 * failure the transaction is rolled back (nothing of it is visible) and the
 * chain head is back at the last committed row. */
int shub_store_commit(shub_store_t *s, shub_err_t *err);

/* Rolls back the open transaction, if any, and resets the in-memory chain head
 * to the last committed row. Safe to call at any time. */
void shub_store_rollback(shub_store_t *s);

/* Signs the chain head now in its own transaction (shutdown, or a timer).
 * No-op (0) if no rows were appended since the last checkpoint. SHUB_EINVAL
 * without a signing key; SHUB_EPROTO inside a transaction. */
int shub_store_checkpoint(shub_store_t *s, int64_t now_ms, shub_err_t *err);

/* PRAGMA wal_checkpoint(PASSIVE): moves WAL pages into the database without
 * blocking readers or writers. The store opens with wal_autocheckpoint=0 so
 * that this work stays off the commit path; the hub calls this when idle.
 * 0, or SHUB_EDB. A read-only store does nothing. */
int shub_store_maintain(shub_store_t *s);

/* The chain head as this connection sees it: the last appended seq (0 for an
 * empty log) and its row_hash (32 zero bytes for an empty log). Either out
 * pointer may be NULL. */
void shub_store_head(const shub_store_t *s, int64_t *seq, uint8_t hash[32]);

/* ---- dedupe ------------------------------------------------------------ */

/* Records an event id as seen, inside a transaction. SHUB_EEXIST if the id is
 * known (then *sender_out, if not NULL, gets the original sender, NUL-
 * terminated, size SHUB_MSG_MAX_NAME+1). SHUB_EPROTO outside a transaction. */
int shub_store_event_add(shub_store_t *s, const shub_id_t *id, const char *sender,
                         const char *event_type, int64_t now_ms, char *sender_out,
                         shub_err_t *err);

/* ---- audit log --------------------------------------------------------- */

/*
 * One audit row: one decision, delivery, acknowledgement, dead letter or
 * recheck, for one (event, recipient). It answers the DPA 2018 s62 questions
 * for a disclosure, years later: the justification (agreement id, version
 * and content hash, flow, purpose, legal basis, consent and override), when
 * (at_ms), who disclosed (sender) and to whom (recipient), and which fields
 * went and which were stripped (names only). action is one of decide,
 * deliver, ack, dead, recheck; decision one of allow, deny, delivered,
 * acknowledged, dead. Both are required; every other text is optional (NULL
 * is stored as NULL, distinct from ""). fields_shared and fields_stripped are
 * comma-separated field paths ("victim.name,victim.dob"). Strings are
 * borrowed: by append for the call, by a read callback for the callback.
 */
typedef struct shub_audit_row {
    int64_t seq;                   /* out: set by append */
    int64_t at_ms;                 /* when, ms since the Unix epoch */
    const char *action, *decision; /* see above; required */
    shub_id_t event_id;
    const char *event_type, *sender, *recipient, *reason, *explanation;
    const char *agreement;             /* agreement id */
    uint32_t agreement_version;        /* 0: none (stored as NULL) */
    const char *agreement_hash, *flow; /* content hash of the agreement text */
    const char *purpose, *legal_basis, *consent, *override, *case_ref, *area;
    const char *fields_shared, *fields_stripped;
    const char *facts;           /* "path=value,..." for the flow's `report` fields:
                                    codes the agreement classes anonymous (e.g.
                                    decision=withdrawn), never personal values */
    const uint8_t *payload_hash; /* 32 bytes or NULL */
    const char *subject_ref;     /* in: raw ref or NULL; the store keeps only
                                    crypto_generichash(ref, key=subject_key) */
    const uint8_t *subject_hash; /* out (reads): 32 bytes or NULL */
} shub_audit_row_t;

/* Appends one row to the chain, inside a transaction; sets row->seq. Needs the
 * subject key if row->subject_ref is set. SHUB_EINVAL (missing action or
 * decision, text over SHUB_STORE_MAX_TEXT), SHUB_EPROTO (no transaction or
 * read-only), SHUB_EDB. On failure the chain head is unchanged. */
int shub_store_audit_append(shub_store_t *s, shub_audit_row_t *row, shub_err_t *err);

/* The keyed hash the store keeps for a subject reference: how a subject access
 * request finds a person's rows. SHUB_EINVAL without a subject key. */
int shub_store_subject_hash(const shub_store_t *s, const char *ref, uint8_t out[32]);

typedef int(shub_audit_fn)(const shub_audit_row_t *row, void *ctx); /* non-zero stops */

/* Calls fn for up to `limit` rows with seq > after_seq, in seq order (keyset
 * paging: pass the last seq seen). The row is read in place: fn must not call
 * into the store. Returns 0, fn's non-zero value if it stopped, or SHUB_EDB.
 * subject_ref is NULL in rows read back; subject_hash is set. */
int shub_store_audit_read(shub_store_t *s, int64_t after_seq, size_t limit,
                          shub_audit_fn *fn, void *ctx, shub_err_t *err);

/* ---- outbox ------------------------------------------------------------ */

/* One recipient's copy of an event: its state and, while pending, the payload
 * sealed to the recipient's key (the store never sees plaintext). */
typedef struct shub_delivery {
    shub_id_t event_id;
    const char *recipient, *sender, *event_type;
    shub_outcome_t state; /* from msg.h */
    const char *reason, *detail, *agreement;
    uint32_t agreement_version; /* 0: none */
    const char *flow;
    uint32_t attempts;              /* sends so far */
    int64_t next_at_ms, created_ms; /* next redelivery; when queued */
    const uint8_t *sealed;          /* NULL for denied, acknowledged, dead */
    size_t sealed_len;
} shub_delivery_t;

/* Adds an outbox row (any state: denied rows keep the outcome for receipts).
 * SHUB_EEXIST if (event, recipient) already has one; SHUB_EINVAL; SHUB_EDB. */
int shub_store_delivery_put(shub_store_t *s, const shub_delivery_t *d, shub_err_t *err);

/* Callback for outbox reads; the row is borrowed for the call. The rows of one
 * read are copied out before the first call, so fn may write to the store
 * (mark a row sent while walking the backlog). Non-zero stops. */
typedef int(shub_delivery_fn)(const shub_delivery_t *d, void *ctx);

/* Every recipient row of an event, in recipient order (receipts and duplicate
 * SHAREs). Returns 0, fn's non-zero value, SHUB_ENOMEM or SHUB_EDB. */
int shub_store_outcomes(shub_store_t *s, const shub_id_t *id, shub_delivery_fn *fn,
                        void *ctx, shub_err_t *err);

/* Up to `limit` queued rows (stored, not yet sent in this session) for a
 * recipient with event id after `after` (NULL: from the start), in event-id
 * order, with their sealed copy: the backlog the hub pumps. Returns as
 * shub_store_outcomes. */
int shub_store_backlog(shub_store_t *s, const char *recipient, const shub_id_t *after,
                       size_t limit, shub_delivery_fn *fn, void *ctx, shub_err_t *err);

/* How many queued or delivered rows wait for a recipient (WELCOME's backlog),
 * capped at UINT32_MAX. 0, SHUB_EINVAL or SHUB_EDB; *count written on success. */
int shub_store_backlog_count(shub_store_t *s, const char *recipient, uint32_t *count,
                             shub_err_t *err);

/* Inside a transaction: puts every delivery sent to `recipient` and not yet
 * acknowledged back in the queue (state delivered -> queued), so that a new
 * session receives them again in event-id order through the backlog. */
int shub_store_requeue(shub_store_t *s, const char *recipient, int64_t now_ms,
                       shub_err_t *err);

/* Up to `limit` rows in state delivered with next_at <= now_ms, earliest
 * first: redeliveries that are due. Returns as shub_store_outcomes. */
int shub_store_due(shub_store_t *s, int64_t now_ms, size_t limit, shub_delivery_fn *fn,
                   void *ctx, shub_err_t *err);

/* A queued or delivered row was sent: state -> delivered, with its attempt
 * count and the time to try again. SHUB_ENOTFOUND if no such pending row. */
int shub_store_delivery_sent(shub_store_t *s, const shub_id_t *id, const char *recipient,
                             uint32_t attempts, int64_t next_at_ms, shub_err_t *err);

/* A pending row is done: state -> acknowledged or dead (else SHUB_EINVAL),
 * with a reason (may be NULL); the sealed copy is dropped. SHUB_ENOTFOUND if
 * no such pending row. */
int shub_store_delivery_finish(shub_store_t *s, const shub_id_t *id,
                               const char *recipient, shub_outcome_t state,
                               const char *reason, int64_t now_ms, shub_err_t *err);

/* shub_store_delivery_finish for a caller that needs the row: one point
 * lookup of the pending row calls fn with event_id, recipient, sender,
 * event_type, agreement, agreement_version, flow and the new state (nothing
 * else: the sealed copy is not read; fn must not call into the store), then
 * the row is finished. 0; SHUB_ENOTFOUND if no such pending row (fn is not
 * called); SHUB_EINVAL; SHUB_EDB. fn's return value is ignored. */
int shub_store_delivery_end(shub_store_t *s, const shub_id_t *id, const char *recipient,
                            shub_outcome_t state, const char *reason, int64_t now_ms,
                            shub_delivery_fn *fn, void *ctx, shub_err_t *err);

/* ---- agreements -------------------------------------------------------- */

/* Records an agreement version as loaded (insert-or-ignore on id, version and
 * content hash), so an audit row's agreement_hash names the exact text. */
int shub_store_agreement_seen(shub_store_t *s, const char *id, uint32_t version,
                              const char *content_hash, const char *title,
                              const char *status, int64_t valid_from, int64_t valid_until,
                              int64_t review, int64_t now_ms, shub_err_t *err);

/* ---- verification ------------------------------------------------------ */

typedef struct shub_verify_result {
    bool ok;             /* the whole chain and every checkpoint hold */
    int64_t rows;        /* rows found intact (all rows when ok) */
    int64_t checkpoints; /* checkpoints whose signature was checked */
    int64_t bad_seq;     /* the first bad row (0 when ok); for a bad signature,
                            the last row that checkpoint covers */
    char problem[256];   /* "edited", "missing", "inserted", "out of order",
                            "truncated after checkpoint N", "bad signature",
                            then ": " and detail; "" when ok */
} shub_verify_result_t;

/* Re-walks the audit chain of the store at path (opened read-only, so it runs
 * beside a live broker) and checks every checkpoint's signature, with
 * expected_pubkey (32 bytes) if given, else with the key each one names.
 * Returns 0 with out->ok true or false; a negative code only if it cannot
 * check at all (no such file, not a sharehub store). */
int shub_store_verify(const char *path, const uint8_t *expected_pubkey,
                      shub_verify_result_t *out, shub_err_t *err);

#endif
