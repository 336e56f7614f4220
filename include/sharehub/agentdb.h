/*
 * agentdb: an agent's durable local store, one SQLite file per organisation
 * (default ./ORG.db). It holds the outbox (events this organisation shares,
 * each kept until the broker's RECEIPT says what happened to it, and then kept
 * as a record of each recipient's outcome) and the inbox (events received,
 * deduplicated on event id). All of the agent side's SQL is in agentdb.c.
 *
 * Several processes open the same file: the running agent and any number of
 * `sharehub-agent submit` commands. The file is in WAL mode with a busy
 * timeout, every change is one transaction, and the agent notices another
 * process's commit through shub_agentdb_changed (PRAGMA data_version) rather
 * than by re-reading tables. synchronous=FULL: the agent ACKs a delivery only
 * after its inbox row is durable, so the row must survive a power cut, not
 * just a crash of the process.
 *
 * Rows handed to callbacks borrow SQLite's memory: valid only during the call.
 *
 * Cursors for the local API (api.h): every outbox row carries `changed`, a
 * change cursor stamped in the transaction of each change a case system may
 * wait for (queued, receipted, failed, an outcome moving on): "changed > N"
 * is exactly what changed since a reader saw N. The inbox's `seq` is its
 * cursor, and `taken` records that the case system has the event.
 */
#ifndef SHAREHUB_AGENTDB_H
#define SHAREHUB_AGENTDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"
#include "sharehub/msg.h"
#include "sharehub/witness.h" /* shub_cp_state_t: witnessed or fork */

#define SHUB_AGENTDB_BUSY_MS 5000 /* how long a writer waits for another process's lock  \
                                   */

typedef struct shub_agentdb shub_agentdb_t;

/* An outbox row's life: pending until a RECEIPT arrives (resent meanwhile),
 * then receipted; or failed when the broker refuses it for good (a final
 * ERROR: malformed, limit, sender-mismatch...). */
typedef enum {
    SHUB_OUTBOX_PENDING = 1,
    SHUB_OUTBOX_RECEIPTED,
    SHUB_OUTBOX_FAILED,
} shub_outbox_state_t;

typedef struct shub_outbox_row {
    int64_t seq;  /* order of queueing */
    shub_id_t id; /* the event id, the same on every resend */
    const char *event_type;
    const char *recipients; /* the `to` selectors, joined by ", " */
    int64_t created_ms;
    shub_outbox_state_t state;
    uint32_t attempts;      /* SHAREs sent so far */
    int64_t last_sent_ms;   /* 0: never sent */
    int64_t done_ms;        /* receipted or failed at; 0 while pending */
    const char *error_code; /* failed: the broker's ERROR code; else NULL */
    const char *error;      /* failed: its message; else NULL */
    const uint8_t *share;   /* the encoded SHARE message, sent as is */
    size_t share_len;
    int64_t changed; /* change cursor of its latest change (store version 3) */
} shub_outbox_row_t;

/* One recipient's outcome of an outbox event, as the broker last reported it. */
typedef struct shub_outcome_row {
    const char *recipient;
    shub_outcome_t outcome;
    const char *reason;    /* denied, dead: reason code; else NULL */
    const char *detail;    /* one line for a person; may be NULL */
    const char *agreement; /* may be NULL (denied with no agreement) */
    uint32_t version;
    const char *flow;
    int64_t updated_ms;
} shub_outcome_row_t;

/* The --on-receive hook of an inbox row: none (no hook configured when it
 * arrived), pending (to run, or running), done (it exited 0), dead (it
 * failed its last allowed attempt). */
typedef enum {
    SHUB_HOOK_NONE = 1,
    SHUB_HOOK_PENDING,
    SHUB_HOOK_DONE,
    SHUB_HOOK_DEAD,
} shub_hook_state_t;

typedef struct shub_inbox_row {
    int64_t seq; /* order of arrival (0 when adding) */
    shub_id_t id;
    const char *event_type;
    const char *sender; /* the authenticated sending organisation */
    const char *agreement;
    uint32_t version;
    const char *flow;
    int64_t received_ms;
    const uint8_t *event; /* the opened event, as shub_event_encode wrote it */
    size_t event_len;
    shub_hook_state_t hook; /* reads only */
    uint32_t hook_attempts;
    const char *hook_error; /* the last failure, or NULL */
    int64_t taken_ms;       /* when the case system took it (0: not yet) */
    int64_t keep_until_ms;  /* adding: when its payload values go (0: kept) */
} shub_inbox_row_t;

/* Non-zero stops the iteration (the list call then returns 0). */
typedef int(shub_outbox_fn)(const shub_outbox_row_t *row, void *ctx);
typedef int(shub_checkpoint_fn)(const shub_signed_head_t *cp, shub_cp_state_t state,
                                const char *note, int64_t received_ms, void *ctx);
typedef int(shub_outcome_fn)(const shub_outcome_row_t *row, void *ctx);
typedef int(shub_inbox_fn)(const shub_inbox_row_t *row, void *ctx);

/* ---- lifecycle ------------------------------------------------------- */

/* Opens (creating if `create`, with the schema) the store at path. SHUB_EIO
 * if the file cannot be opened or does not exist and !create, SHUB_EDB if it
 * is not an agent store of a version this code knows, SHUB_ENOMEM. */
int shub_agentdb_open(const char *path, bool create, shub_agentdb_t **db_p,
                      shub_err_t *err);

/* Closes; accepts NULL; nulls the caller's pointer. */
void shub_agentdb_close(shub_agentdb_t **db_p);

/* Sets *changed when another connection committed since the last call (the
 * first call reports true). SHUB_EDB. */
int shub_agentdb_changed(shub_agentdb_t *db, bool *changed, shub_err_t *err);

/* ---- outbox ---------------------------------------------------------- */

/* Queues an event: its encoded SHARE and, for listing, its type and
 * recipients. SHUB_EEXIST if the id is already in the outbox, SHUB_EDB. */
int shub_agentdb_outbox_add(shub_agentdb_t *db, const shub_id_t *id,
                            const char *event_type, const char *recipients,
                            const void *share, size_t share_len, int64_t now_ms,
                            shub_err_t *err);

/* Pending rows due for sending, in queueing order, at most `max`: never sent,
 * sent before `session_ms` (an earlier connection), or whose retry time has
 * come (<= now_ms). SHUB_EDB. */
int shub_agentdb_outbox_due(shub_agentdb_t *db, int64_t session_ms, int64_t now_ms,
                            size_t max, shub_outbox_fn *fn, void *ctx, shub_err_t *err);

/* Pending rows sent since session_ms whose retry time is still ahead: the
 * SHAREs the broker has not answered yet. SHUB_EDB. */
int shub_agentdb_outbox_inflight(shub_agentdb_t *db, int64_t session_ms, int64_t now_ms,
                                 uint32_t *n, shub_err_t *err);

/* Records that n events were sent at now_ms (attempts + 1) and are to be
 * retried at retry_ms unless answered. One transaction. SHUB_EDB. */
int shub_agentdb_outbox_sent(shub_agentdb_t *db, const shub_id_t *ids, size_t n,
                             int64_t now_ms, int64_t retry_ms, shub_err_t *err);

/* Moves a pending event's retry time to retry_ms (the broker said busy or
 * unavailable). SHUB_ENOTFOUND if not pending, SHUB_EDB. */
int shub_agentdb_outbox_retry(shub_agentdb_t *db, const shub_id_t *id, int64_t retry_ms,
                              shub_err_t *err);

/* Marks a pending event failed for good with the broker's code and message.
 * SHUB_ENOTFOUND if no such pending event, SHUB_EDB. */
int shub_agentdb_outbox_fail(shub_agentdb_t *db, const shub_id_t *id, const char *code,
                             const char *message, int64_t now_ms, shub_err_t *err);

/* Applies a RECEIPT: the event becomes receipted (unless failed), and each
 * item's outcome is stored. Outcomes only move forward: queued < delivered <
 * acknowledged | denied | dead, and a final one is never replaced, so a late
 * or repeated receipt cannot undo a newer one. SHUB_ENOTFOUND if the id is not
 * in the outbox (nothing is written), SHUB_EDB. One transaction. */
int shub_agentdb_receipt(shub_agentdb_t *db, const shub_receipt_t *r, int64_t now_ms,
                         shub_err_t *err);

/* Applies a RECEIPT's receipts in one transaction, each as
 * shub_agentdb_receipt; *unknown (may be NULL) counts those whose event is
 * not in the outbox (ignored). SHUB_EDB. */
int shub_agentdb_receipts(shub_agentdb_t *db, const shub_receipt_t *list, size_t n,
                          int64_t now_ms, size_t *unknown, shub_err_t *err);

/* Applies an UPDATE's later outcomes in one transaction (outcomes only move
 * forward, so a repeat changes nothing) and records the highest update seq
 * applied; *upto gets it (never lower than before), for CONFIRM. SHUB_EDB. */
int shub_agentdb_updates_apply(shub_agentdb_t *db, const shub_update_t *list, size_t n,
                               int64_t now_ms, int64_t *upto, shub_err_t *err);

/* Every outbox row in queueing order. SHUB_EDB. */
int shub_agentdb_outbox_list(shub_agentdb_t *db, shub_outbox_fn *fn, void *ctx,
                             shub_err_t *err);

/* The row with this id. SHUB_ENOTFOUND, SHUB_EDB. */
int shub_agentdb_outbox_get(shub_agentdb_t *db, const shub_id_t *id, shub_outbox_fn *fn,
                            void *ctx, shub_err_t *err);

/* Outbox rows changed after cursor `after`, oldest change first, at most
 * limit: a row changed twice shows once, at its latest change. SHUB_EDB. */
int shub_agentdb_outbox_changes(shub_agentdb_t *db, int64_t after, size_t limit,
                                shub_outbox_fn *fn, void *ctx, shub_err_t *err);

/* The outcomes of one event, by recipient. SHUB_EDB. */
int shub_agentdb_outcomes(shub_agentdb_t *db, const shub_id_t *id, shub_outcome_fn *fn,
                          void *ctx, shub_err_t *err);

/* Number of outbox rows in `state`. SHUB_EDB. */
int shub_agentdb_outbox_count(shub_agentdb_t *db, shub_outbox_state_t state, uint64_t *n,
                              shub_err_t *err);

/* ---- inbox ----------------------------------------------------------- */

/* Commits a received event unless its id is already there. *added says which
 * (false: a redelivery, nothing written). Durable when it returns 0. SHUB_EDB. */
int shub_agentdb_inbox_add(shub_agentdb_t *db, const shub_inbox_row_t *row, bool *added,
                           shub_err_t *err);

/* Commits a batch of received events in one transaction, each unless its id
 * is already there; added[i] says which were new. With `hook`, each new row's
 * --on-receive hook is pending in the same transaction, so a crash after the
 * commit cannot lose it. Durable when it returns 0. SHUB_EINVAL, SHUB_EDB. */
int shub_agentdb_inbox_add_batch(shub_agentdb_t *db, const shub_inbox_row_t *rows,
                                 size_t n, bool hook, bool *added, shub_err_t *err);

/* Rows whose hook is pending and due (next try <= now_ms), oldest first, at
 * most max. SHUB_EDB. */
int shub_agentdb_hooks_due(shub_agentdb_t *db, int64_t now_ms, size_t max,
                           shub_inbox_fn *fn, void *ctx, shub_err_t *err);

/* Records a run of a pending hook: done if ok; else one more attempt, tried
 * again at now_ms + retry_ms, or dead once max_attempts are spent (error
 * kept). *state (may be NULL) gets the new state. SHUB_ENOTFOUND if the row's
 * hook is not pending, SHUB_EDB. */
int shub_agentdb_hook_result(shub_agentdb_t *db, const shub_id_t *id, bool ok,
                             const char *error, int64_t now_ms, uint32_t max_attempts,
                             int64_t retry_ms, shub_hook_state_t *state, shub_err_t *err);

/* "none", "pending", "done", "dead"; "?" otherwise. */
const char *shub_hook_state_name(shub_hook_state_t state);

/* Keeps a checkpoint (a repeat is ignored). SHUB_EDB. */
int shub_agentdb_checkpoint_add(shub_agentdb_t *db, const shub_signed_head_t *cp,
                                shub_cp_state_t state, const char *note, int64_t now_ms,
                                shub_err_t *err);

/* The newest witnessed checkpoint, or the witnessed one at seq.
 * SHUB_ENOTFOUND, SHUB_EDB. */
int shub_agentdb_checkpoint_latest(shub_agentdb_t *db, shub_signed_head_t *out,
                                   shub_err_t *err);
int shub_agentdb_checkpoint_at(shub_agentdb_t *db, int64_t seq, shub_signed_head_t *out,
                               shub_err_t *err);

/* Every kept checkpoint, forks included, by seq. SHUB_EDB. */
int shub_agentdb_checkpoints(shub_agentdb_t *db, shub_checkpoint_fn *fn, void *ctx,
                             shub_err_t *err);

/* Inbox rows received at or after since_ms, in arrival order. SHUB_EDB. */
/* As shub_agentdb_outbox_add, and in the same transaction sets each meta
 * keys[i] to values[i] (a profile's progress, so a restart knows exactly
 * what was emitted). */
int shub_agentdb_outbox_add_marked(shub_agentdb_t *db, const shub_id_t *id,
                                   const char *event_type, const char *recipients,
                                   const void *share, size_t share_len, int64_t now_ms,
                                   const char *const *keys, const int64_t *values,
                                   size_t n_keys, shub_err_t *err);

/* Small durable facts about the agent (the scenario's clock epoch). get:
 * SHUB_ENOTFOUND if unset. */
int shub_agentdb_meta_get(shub_agentdb_t *db, const char *key, int64_t *value,
                          shub_err_t *err);
int shub_agentdb_meta_set(shub_agentdb_t *db, const char *key, int64_t value,
                          shub_err_t *err);

int shub_agentdb_inbox_list(shub_agentdb_t *db, int64_t since_ms, shub_inbox_fn *fn,
                            void *ctx, shub_err_t *err);

/* ---- retention ------------------------------------------------------- */

/* A held blob: an inbox row's event, or an outbox row's SHARE. */
typedef struct shub_held {
    shub_id_t id;
    const uint8_t *bytes;
    size_t len;
} shub_held_t;

typedef int(shub_held_fn)(const shub_held_t *h, void *ctx);

/* Inbox rows whose keep_until has come (and whose hook is not pending), at
 * most max, oldest deadline first. SHUB_EDB. */
int shub_agentdb_inbox_expired(shub_agentdb_t *db, int64_t now_ms, size_t max,
                               shub_held_fn *fn, void *ctx, shub_err_t *err);

/* Outbox rows receipted whose every recipient outcome is final and whose
 * SHARE is still whole, at most max. SHUB_EDB. */
int shub_agentdb_outbox_settled(shub_agentdb_t *db, size_t max, shub_held_fn *fn,
                                void *ctx, shub_err_t *err);

/* Replaces an inbox row's event with `event` (its values dropped), keeping
 * hash (of what it was) and now as purged_at. One transaction. SHUB_EDB. */
int shub_agentdb_inbox_purge(shub_agentdb_t *db, const shub_id_t *id, const void *event,
                             size_t len, const uint8_t hash[32], int64_t now_ms,
                             shub_err_t *err);

/* The same for an outbox row's SHARE, as dropped_at. SHUB_EDB. */
int shub_agentdb_outbox_drop(shub_agentdb_t *db, const shub_id_t *id, const void *share,
                             size_t len, const uint8_t hash[32], int64_t now_ms,
                             shub_err_t *err);

/* After purging: checkpoints and truncates the WAL so that the old pages
 * (deleted content is zeroed in the database by secure_delete) leave the
 * disk. SHUB_EBUSY if a reader holds the WAL (try again later), SHUB_EDB. */
int shub_agentdb_shrink(shub_agentdb_t *db, shub_err_t *err);

/* Number of inbox rows. SHUB_EDB. */
int shub_agentdb_inbox_count(shub_agentdb_t *db, uint64_t *n, shub_err_t *err);

/* Inbox rows with seq > after, in arrival order, at most limit; only those
 * not yet taken if untaken_only. SHUB_EDB. */
int shub_agentdb_inbox_after(shub_agentdb_t *db, int64_t after, bool untaken_only,
                             size_t limit, shub_inbox_fn *fn, void *ctx, shub_err_t *err);

/* Records that the case system has taken an inbox event. The first time
 * counts: *taken_ms (may be NULL) gets when, and *repeat (may be NULL) says
 * whether it was taken before. SHUB_ENOTFOUND, SHUB_EDB. */
int shub_agentdb_inbox_take(shub_agentdb_t *db, const shub_id_t *id, int64_t now_ms,
                            int64_t *taken_ms, bool *repeat, shub_err_t *err);

/* Number of inbox rows not taken yet. SHUB_EDB. */
int shub_agentdb_inbox_untaken(shub_agentdb_t *db, uint64_t *n, shub_err_t *err);

/* "pending", "receipted", "failed"; "?" otherwise. */
const char *shub_outbox_state_name(shub_outbox_state_t state);

#endif
