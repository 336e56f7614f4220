/*
 * agentdb: the agent's outbox and inbox in SQLite (include/sharehub/agentdb.h).
 * Every SQL statement of the agent side is in this file.
 *
 * Statements are kept prepared (see prepare). Each write is one transaction taken with BEGIN
 * IMMEDIATE, so two processes never both read, then both try to upgrade and
 * deadlock; the busy timeout makes the second one wait instead of failing.
 */
#include "sharehub/agentdb.h"

#include "sharehub/alloc.h"
#include "sharehub/time.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#define SCHEMA_VERSION 4
#define STMT_CACHE     48 /* more than the distinct statements in this file */

/*
 * Schema version 1 (PRAGMA user_version). Times are ms since the Unix epoch,
 * ids the 16 id bytes.
 *
 * outbox: one row per event this organisation shares. `share` is the encoded
 * SHARE, sent byte for byte on every attempt so a resend is the same event.
 * state: pending | receipted | failed. next_at: when a pending row is due
 * again if unanswered. The partial index keeps "what is due" one descent
 * however long the history grows.
 *
 * outcomes: what the broker last said about each recipient of an outbox
 * event; rank orders them (queued 1, delivered 2, final 3) so updates only
 * move forward.
 *
 * inbox: one row per event received, unique on id (the dedupe that makes
 * at-least-once delivery exactly-once here). `event` is the opened event as
 * the sender's agent encoded it, minimised by the broker. Version 2 adds the
 * --on-receive hook's state, committed with the row so that a crash between
 * the commit and the command cannot lose the case system's copy: hook is
 * none | pending | done | dead, with attempts, the next try and the last
 * failure; and taken_at, when the case system took the event through the
 * local API.
 *
 * checkpoints (version 2): every signed checkpoint of the broker's audit log
 * this agent has checked: `witnessed` (it extended what we held, and we
 * countersigned it) or `fork` (it contradicted a checkpoint we hold: kept as
 * evidence, never countersigned).
 *
 * Version 3 gives the local API (api.h) its cursors. outbox.changed is a
 * change cursor: a number greater than any other row's, stamped in the same
 * transaction as every change a case system may wait for (queued, receipted,
 * failed, a recipient's outcome moving on). Writers are serialised (BEGIN
 * IMMEDIATE), so commits stamp in increasing order and a reader that has seen
 * cursor N has seen every change up to N: "changed > N" is exactly what came
 * since. No row is ever deleted, so max(changed) + 1 (one index descent) is
 * the next value. The inbox's own seq is its cursor; inbox_untaken finds what
 * the case system has not taken yet.
 *
 * Version 4 adds retention: when an inbox event's payload values go, and
 * when an outbox event's unminimised payload goes (see schema_v4_sql).
 */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS outbox(\n"
    "    seq INTEGER PRIMARY KEY,\n"
    "    id BLOB NOT NULL UNIQUE,\n"
    "    event_type TEXT NOT NULL,\n"
    "    recipients TEXT NOT NULL,\n"
    "    created INTEGER NOT NULL,\n"
    "    state TEXT NOT NULL DEFAULT 'pending',\n"
    "    attempts INTEGER NOT NULL DEFAULT 0,\n"
    "    last_sent INTEGER,\n"
    "    next_at INTEGER,\n"
    "    done_at INTEGER,\n"
    "    error_code TEXT,\n"
    "    error TEXT,\n"
    "    share BLOB NOT NULL\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(seq) WHERE state = 'pending';\n"
    "CREATE TABLE IF NOT EXISTS outcomes(\n"
    "    id BLOB NOT NULL,\n"
    "    recipient TEXT NOT NULL,\n"
    "    outcome TEXT NOT NULL,\n"
    "    rank INTEGER NOT NULL,\n"
    "    reason TEXT,\n"
    "    detail TEXT,\n"
    "    agreement TEXT,\n"
    "    version INTEGER,\n"
    "    flow TEXT,\n"
    "    updated INTEGER NOT NULL,\n"
    "    PRIMARY KEY(id, recipient)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE IF NOT EXISTS inbox(\n"
    "    seq INTEGER PRIMARY KEY,\n"
    "    id BLOB NOT NULL UNIQUE,\n"
    "    event_type TEXT NOT NULL,\n"
    "    sender TEXT NOT NULL,\n"
    "    agreement TEXT NOT NULL,\n"
    "    version INTEGER NOT NULL,\n"
    "    flow TEXT NOT NULL,\n"
    "    received INTEGER NOT NULL,\n"
    "    event BLOB NOT NULL\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS inbox_received ON inbox(received);\n"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);\n";

/* Version 2, on a new store and on top of a version 1 store alike. */
static const char schema_v2_sql[] =
    "ALTER TABLE inbox ADD COLUMN hook TEXT NOT NULL DEFAULT 'none';\n"
    "ALTER TABLE inbox ADD COLUMN hook_attempts INTEGER NOT NULL DEFAULT 0;\n"
    "ALTER TABLE inbox ADD COLUMN hook_next_at INTEGER;\n"
    "ALTER TABLE inbox ADD COLUMN hook_error TEXT;\n"
    "ALTER TABLE inbox ADD COLUMN taken_at INTEGER;\n"
    "CREATE INDEX IF NOT EXISTS inbox_hook ON inbox(hook_next_at) WHERE hook = 'pending';\n"
    "CREATE TABLE IF NOT EXISTS checkpoints(\n"
    "    seq INTEGER NOT NULL,\n"
    "    head BLOB NOT NULL,\n"
    "    at INTEGER NOT NULL,\n"
    "    key BLOB NOT NULL,\n"
    "    sig BLOB NOT NULL,\n"
    "    state TEXT NOT NULL,\n"
    "    note TEXT,\n"
    "    received INTEGER NOT NULL,\n"
    "    PRIMARY KEY(seq, head)\n"
    ") WITHOUT ROWID;\n";

/* Version 3, on top of version 2. A store upgraded in place numbers its
 * existing events' changes in queueing order. */
static const char schema_v3_sql[] =
    "ALTER TABLE outbox ADD COLUMN changed INTEGER NOT NULL DEFAULT 0;\n"
    "UPDATE outbox SET changed = seq;\n"
    "CREATE INDEX IF NOT EXISTS outbox_changed ON outbox(changed);\n"
    "CREATE INDEX IF NOT EXISTS inbox_untaken ON inbox(seq) WHERE taken_at IS NULL;\n";

/* The next change cursor, for a statement that writes outbox.changed. */
#define NEXT_CHANGE "(SELECT coalesce(max(changed), 0) + 1 FROM outbox)"

/* Version 4, on top of version 3: retention. inbox.keep_until is when the payload's values go
 * (the flow's retention from the event's own time, as DELIVER said), and
 * purged_at when they went; outbox.dropped_at when the unminimised payload
 * went, once every recipient's outcome was final. event_hash and share_hash
 * keep BLAKE2b-256 of the bytes as received or queued: what was held can
 * still be proved, and ids still dedupe and take receipts. */
static const char schema_v4_sql[] =
    "ALTER TABLE inbox ADD COLUMN keep_until INTEGER;\n"
    "ALTER TABLE inbox ADD COLUMN purged_at INTEGER;\n"
    "ALTER TABLE inbox ADD COLUMN event_hash BLOB;\n"
    "ALTER TABLE outbox ADD COLUMN dropped_at INTEGER;\n"
    "ALTER TABLE outbox ADD COLUMN share_hash BLOB;\n"
    "CREATE INDEX IF NOT EXISTS inbox_keep ON inbox(keep_until)"
    " WHERE keep_until IS NOT NULL AND purged_at IS NULL;\n"
    "CREATE INDEX IF NOT EXISTS outbox_settle ON outbox(seq)"
    " WHERE state = 'receipted' AND dropped_at IS NULL;\n";

struct shub_agentdb {
    sqlite3 *db;
    char *path;
    bool seen_version; /* shub_agentdb_changed has a baseline */
    bool lazy;         /* the open transaction commits with synchronous=NORMAL */
    int64_t busy_since_us; /* when the current wait for the lock began (wait_busy) */
    struct cached {
        const char *sql; /* the statement's text, a constant; NULL: free slot */
        sqlite3_stmt *st;
        bool taken;
    } cache[STMT_CACHE]; /* prepared statements kept (see prepare) */
    int64_t data_version;
};

static int dberr(shub_agentdb_t *s, shub_err_t *err, const char *what)
{
    return shub_err_set(err, SHUB_EDB, "%s: %s: %s", s->path, what,
                        sqlite3_errmsg(s->db));
}

static int exec(shub_agentdb_t *s, const char *sql, shub_err_t *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return dberr(s, err, sql);
    return 0;
}

/* Switching to WAL needs an exclusive lock, and SQLite answers BUSY at once
 * (without its busy handler) when another process is opening the same new
 * store, as `run` and `submit` started together do. Retry for a while. */
static int set_wal(shub_agentdb_t *s, shub_err_t *err)
{
    for (int tries = 0;; tries++) {
        int rc = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            return 0;
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) ||
            tries * 20 >= SHUB_AGENTDB_BUSY_MS)
            return dberr(s, err, "PRAGMA journal_mode=WAL");
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* SQLite's own busy timeout sleeps 1, 2, 5, 10... ms between tries: long
 * beside the transactions that hold this store's lock (one commit, a
 * fraction of a millisecond), and the local API's writers and the agent's
 * loop take turns all the time. A writer of this process that lets go of
 * the lock says so (write_done), and the ones waiting here try again at
 * once; a writer of another process (a `submit`) cannot, so a wait lasts
 * at most 0.1 ms, then 1 ms, for SHUB_AGENTDB_BUSY_MS in all.
 *
 * The wake is process-wide rather than per store: a process opens one
 * store (two connections to it with the API), and a spurious wake costs
 * one more try. */
static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t busy_cond;
static pthread_once_t busy_once = PTHREAD_ONCE_INIT;
static int busy_waiters; /* under busy_lock */

static void busy_init(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&busy_cond, &attr);
    pthread_condattr_destroy(&attr);
}

/* ctx is the store: the wait is measured from its first try, since a wake
 * may end a try early. */
static int wait_busy(void *ctx, int tries)
{
    shub_agentdb_t *s = ctx;
    int64_t now = shub_mono_us();
    if (tries == 0)
        s->busy_since_us = now;
    int64_t waited_us = now - s->busy_since_us;
    if (waited_us >= (int64_t)SHUB_AGENTDB_BUSY_MS * 1000)
        return 0;
    pthread_once(&busy_once, busy_init);
    int64_t wake_us = now + (waited_us < 10000 ? 100 : 1000);
    struct timespec until = {wake_us / 1000000, (wake_us % 1000000) * 1000};
    pthread_mutex_lock(&busy_lock);
    busy_waiters++;
    pthread_cond_timedwait(&busy_cond, &busy_lock, &until);
    busy_waiters--;
    pthread_mutex_unlock(&busy_lock);
    return 1;
}

/* This connection has let go of the write lock: wake whoever waits for it. */
static void write_done(void)
{
    pthread_once(&busy_once, busy_init);
    pthread_mutex_lock(&busy_lock);
    if (busy_waiters)
        pthread_cond_broadcast(&busy_cond);
    pthread_mutex_unlock(&busy_lock);
}

/* Statements are kept prepared, by the address of their SQL text (every
 * statement here is a string constant): with the local API an agent stores
 * thousands of events a second, and compiling a statement costs more than
 * running it. A statement in use is taken; asking for the same SQL again
 * meanwhile (a nested query) prepares a copy that finish() throws away. */
static int prepare(shub_agentdb_t *s, const char *sql, sqlite3_stmt **st, shub_err_t *err)
{
    for (size_t i = 0; i < STMT_CACHE && s->cache[i].sql; i++)
        if (s->cache[i].sql == sql && !s->cache[i].taken) {
            s->cache[i].taken = true;
            *st = s->cache[i].st;
            return 0;
        }
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) !=
        SQLITE_OK) {
        *st = NULL;
        return dberr(s, err, "prepare");
    }
    for (size_t i = 0; i < STMT_CACHE; i++)
        if (!s->cache[i].sql) {
            s->cache[i] = (struct cached){.sql = sql, .st = *st, .taken = true};
            break;
        }
    return 0;
}

/* Gives a statement back: reset (which ends its read of the file) and its
 * bindings cleared, or finalized if it is not a kept one. Accepts NULL. */
static void finish(shub_agentdb_t *s, sqlite3_stmt *st)
{
    if (!st)
        return;
    /* A write outside BEGIN took and let go of the lock in its step. */
    if (!sqlite3_stmt_readonly(st) && sqlite3_get_autocommit(s->db))
        write_done();
    for (size_t i = 0; i < STMT_CACHE && s->cache[i].sql; i++)
        if (s->cache[i].st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            s->cache[i].taken = false;
            return;
        }
    sqlite3_finalize(st);
}

/* Ends a walk over st's rows, run to the end or stopped by the caller (step
 * still SQLITE_ROW): 0, or the error that cut it short. Gives st back. */
static int rows_done(shub_agentdb_t *s, sqlite3_stmt *st, int step, const char *what,
                     shub_err_t *err)
{
    int rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : dberr(s, err, what);
    finish(s, st);
    return rc;
}

/* Prepares a query whose ?1 is `a` and ?2 a row limit. */
static int prepare_limited(shub_agentdb_t *s, const char *sql, int64_t a, size_t limit,
                           sqlite3_stmt **st, shub_err_t *err)
{
    int rc = prepare(s, sql, st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(*st, 1, a);
    sqlite3_bind_int64(*st, 2, limit > INT32_MAX ? INT32_MAX : (int64_t)limit);
    return 0;
}

static int begin(shub_agentdb_t *s, shub_err_t *err)
{
    return exec(s, "BEGIN IMMEDIATE", err);
}

/* A transaction whose commit need not wait for the disk: bookkeeping that
 * the broker's dedupe makes good if it is lost (when a SHARE was sent, what
 * a RECEIPT said: after a loss the event is pending again, is resent with
 * the same id, and the broker answers with the receipt it gave). With the
 * local API these come several times for each event; a commit of each would
 * take the disk from the inserts that must wait for it. In WAL mode a NORMAL
 * commit survives the process being killed; only a power cut can take it
 * back, and the next FULL commit makes it durable as well. */
static int begin_lazy(shub_agentdb_t *s, shub_err_t *err)
{
    int rc = exec(s, "PRAGMA synchronous=NORMAL", err);
    if (rc == 0 && (rc = begin(s, err)) != 0)
        sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    s->lazy = rc == 0;
    return rc;
}

/* Ends a lazy transaction's exception: every other commit waits for the disk. */
static void end_lazy(shub_agentdb_t *s)
{
    if (s->lazy)
        sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    s->lazy = false;
}

static int commit(shub_agentdb_t *s, shub_err_t *err)
{
    int rc = 0;
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = dberr(s, err, "commit");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    write_done();
    end_lazy(s);
    return rc;
}

static void rollback(shub_agentdb_t *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    write_done();
    end_lazy(s);
}

static void bind_id(sqlite3_stmt *st, int i, const shub_id_t *id)
{
    sqlite3_bind_blob(st, i, id->bytes, SHUB_ID_SIZE, SQLITE_TRANSIENT);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* The id in column i; a row with a malformed id is reported as all zeros
 * rather than read past its end (the file may have been edited by hand). */
static shub_id_t col_id(sqlite3_stmt *st, int i)
{
    shub_id_t id = {{0}};
    const void *b = sqlite3_column_blob(st, i);
    if (b && sqlite3_column_bytes(st, i) == SHUB_ID_SIZE)
        memcpy(id.bytes, b, SHUB_ID_SIZE);
    return id;
}

/* ---- lifecycle ------------------------------------------------------- */

static int check_schema(shub_agentdb_t *s, bool create, shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "PRAGMA user_version", &st, err);
    if (rc)
        return rc;
    int version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    finish(s, st);
    if (version == SCHEMA_VERSION)
        return 0;
    if (version < 0)
        return dberr(s, err, "reading schema version");
    if (version > SCHEMA_VERSION)
        return shub_err_set(err, SHUB_EDB,
                            "%s: schema version %d is newer than this program's (%d): use "
                            "a newer sharehub-agent",
                            s->path, version, SCHEMA_VERSION);
    if (version == 0 && !create)
        return shub_err_set(err, SHUB_EDB, "%s: not an agent store", s->path);
    /* Two processes may create or upgrade the file at once: the second waits
     * on the lock, then finds the version set and does nothing. */
    if ((rc = begin(s, err)))
        return rc;
    sqlite3_stmt *again;
    if ((rc = prepare(s, "PRAGMA user_version", &again, err))) {
        rollback(s);
        return rc;
    }
    version = sqlite3_step(again) == SQLITE_ROW ? sqlite3_column_int(again, 0) : -1;
    finish(s, again);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
    if (version != SCHEMA_VERSION &&
        ((version < 1 && (rc = exec(s, schema_sql, err))) ||
         (version < 2 && (rc = exec(s, schema_v2_sql, err))) ||
         (version < 3 && (rc = exec(s, schema_v3_sql, err))) ||
         (version < 4 && (rc = exec(s, schema_v4_sql, err))) || (rc = exec(s, sql, err)))) {
        rollback(s);
        return rc;
    }
    return commit(s, err);
}

int shub_agentdb_open(const char *path, bool create, shub_agentdb_t **db_p,
                      shub_err_t *err)
{
    if (!path || !db_p)
        return shub_err_set(err, SHUB_EINVAL, "no path or no result pointer");
    struct stat sb;
    if (!create && stat(path, &sb) != 0)
        return shub_err_set(err, SHUB_EIO, "'%s' does not exist", path);
    shub_agentdb_t *s = shub_calloc(1, sizeof *s);
    if (!s)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    int rc;
    if (!(s->path = shub_strdup(path))) {
        rc = shub_err_set(err, SHUB_ENOMEM, "out of memory");
        goto fail;
    }
    int flags =
        SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        rc = shub_err_set(err, SHUB_EIO, "cannot open '%s': %s", path,
                          s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_handler(s->db, wait_busy, s);
    sqlite3_extended_result_codes(s->db, 1);
    /* WAL: readers (inbox listings, the agent's polls) never block the
     * writer; FULL: a commit is on disk before the agent ACKs it. */
    if ((rc = set_wal(s, err)) ||
        (rc = exec(s, "PRAGMA synchronous=FULL", err)) ||
        /* What a purge deletes is overwritten, not left in free pages. */
        (rc = exec(s, "PRAGMA secure_delete=ON", err)) ||
        (rc = exec(s, "PRAGMA foreign_keys=ON", err)))
        goto fail;
    if ((rc = check_schema(s, create, err)))
        goto fail;
    *db_p = s;
    return 0;
fail:
    shub_agentdb_close(&s);
    return rc;
}

void shub_agentdb_close(shub_agentdb_t **db_p)
{
    if (!db_p || !*db_p)
        return;
    shub_agentdb_t *s = *db_p;
    for (size_t i = 0; i < STMT_CACHE && s->cache[i].sql; i++)
        sqlite3_finalize(s->cache[i].st);
    if (s->db)
        sqlite3_close_v2(s->db);
    shub_free(s->path);
    shub_free(s);
    *db_p = NULL;
}

int shub_agentdb_changed(shub_agentdb_t *s, bool *changed, shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "PRAGMA data_version", &st, err);
    if (rc)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = dberr(s, err, "data_version");
        finish(s, st);
        return rc;
    }
    int64_t v = sqlite3_column_int64(st, 0);
    finish(s, st);
    *changed = !s->seen_version || v != s->data_version;
    s->seen_version = true;
    s->data_version = v;
    return 0;
}

/* ---- outbox ---------------------------------------------------------- */

static const char *const state_names[] = {NULL, "pending", "receipted", "failed"};

const char *shub_outbox_state_name(shub_outbox_state_t state)
{
    return state >= SHUB_OUTBOX_PENDING && state <= SHUB_OUTBOX_FAILED
               ? state_names[state]
               : "?";
}

static shub_outbox_state_t parse_state(const char *s)
{
    for (int i = SHUB_OUTBOX_PENDING; s && i <= SHUB_OUTBOX_FAILED; i++)
        if (strcmp(s, state_names[i]) == 0)
            return (shub_outbox_state_t)i;
    return 0;
}

#define OUTBOX_COLS                                                                      \
    "seq, id, event_type, recipients, created, state, attempts, coalesce(last_sent, "    \
    "0), "                                                                               \
    "coalesce(done_at, 0), error_code, error, share, changed"

static void read_outbox(sqlite3_stmt *st, shub_outbox_row_t *r)
{
    memset(r, 0, sizeof *r);
    r->seq = sqlite3_column_int64(st, 0);
    r->id = col_id(st, 1);
    r->event_type = col_text(st, 2);
    r->recipients = col_text(st, 3);
    r->created_ms = sqlite3_column_int64(st, 4);
    r->state = parse_state(col_text(st, 5));
    r->attempts = (uint32_t)sqlite3_column_int64(st, 6);
    r->last_sent_ms = sqlite3_column_int64(st, 7);
    r->done_ms = sqlite3_column_int64(st, 8);
    r->error_code = col_text(st, 9);
    r->error = col_text(st, 10);
    r->share = sqlite3_column_blob(st, 11);
    r->share_len = (size_t)sqlite3_column_bytes(st, 11);
    r->changed = sqlite3_column_int64(st, 12);
    if (!r->event_type)
        r->event_type = "";
    if (!r->recipients)
        r->recipients = "";
}

/* Steps a prepared outbox query, calling fn per row; finalizes st. */
static int each_outbox(shub_agentdb_t *s, sqlite3_stmt *st, shub_outbox_fn *fn, void *ctx,
                       size_t *rows, shub_err_t *err)
{
    int rc, step;
    size_t n = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        shub_outbox_row_t r;
        read_outbox(st, &r);
        n++;
        if (fn(&r, ctx))
            break;
    }
    rc = rows_done(s, st, step, "reading the outbox", err);
    if (rows)
        *rows = n;
    return rc;
}

int shub_agentdb_outbox_add(shub_agentdb_t *s, const shub_id_t *id,
                            const char *event_type, const char *recipients,
                            const void *share, size_t share_len, int64_t now_ms,
                            shub_err_t *err)
{
    if (!id || !event_type || !recipients || !share || share_len == 0 ||
        share_len > SHUB_MSG_MAX_BYTES)
        return shub_err_set(err, SHUB_EINVAL, "outbox row without id, type or SHARE");
    sqlite3_stmt *st;
    int rc = prepare(s,
                     "INSERT INTO outbox(id, event_type, recipients, created, share, "
                     "changed) VALUES (?, ?, ?, ?, ?, " NEXT_CHANGE ")",
                     &st, err);
    if (rc)
        return rc;
    bind_id(st, 1, id);
    bind_text(st, 2, event_type);
    bind_text(st, 3, recipients);
    sqlite3_bind_int64(st, 4, now_ms);
    sqlite3_bind_blob(st, 5, share, (int)share_len, SQLITE_TRANSIENT);
    int step = sqlite3_step(st);
    if (step == SQLITE_CONSTRAINT_UNIQUE) {
        char idt[SHUB_ID_TEXT];
        shub_id_format(id, idt);
        rc = shub_err_set(err, SHUB_EEXIST, "event %s is already in the outbox", idt);
    } else if (step != SQLITE_DONE) {
        rc = dberr(s, err, "adding to the outbox");
    }
    finish(s, st);
    return rc;
}

int shub_agentdb_outbox_add_marked(shub_agentdb_t *s, const shub_id_t *id,
                                   const char *event_type, const char *recipients,
                                   const void *share, size_t share_len, int64_t now_ms,
                                   const char *const *keys, const int64_t *values,
                                   size_t n_keys, shub_err_t *err)
{
    int rc = begin(s, err);
    if (rc)
        return rc;
    rc = shub_agentdb_outbox_add(s, id, event_type, recipients, share, share_len, now_ms, err);
    for (size_t i = 0; rc == 0 && i < n_keys; i++)
        rc = shub_agentdb_meta_set(s, keys[i], values[i], err);
    if (rc) {
        rollback(s);
        return rc;
    }
    return commit(s, err);
}

int shub_agentdb_meta_get(shub_agentdb_t *s, const char *key, int64_t *value,
                          shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT value FROM meta WHERE key = ?", &st, err);
    if (rc)
        return rc;
    bind_text(st, 1, key);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *value = sqlite3_column_int64(st, 0);
    else if (step == SQLITE_DONE)
        rc = SHUB_ENOTFOUND;
    else
        rc = dberr(s, err, "reading meta");
    finish(s, st);
    return rc;
}

int shub_agentdb_meta_set(shub_agentdb_t *s, const char *key, int64_t value, shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", &st, err);
    if (rc)
        return rc;
    bind_text(st, 1, key);
    sqlite3_bind_int64(st, 2, value);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = dberr(s, err, "writing meta");
    finish(s, st);
    return rc;
}

int shub_agentdb_outbox_due(shub_agentdb_t *s, int64_t session_ms, int64_t now_ms,
                            size_t max, shub_outbox_fn *fn, void *ctx, shub_err_t *err)
{
    if (max == 0)
        return 0;
    sqlite3_stmt *st;
    int rc = prepare(s,
                     "SELECT " OUTBOX_COLS " FROM outbox WHERE state = 'pending' AND "
                     "(last_sent IS NULL OR last_sent < ?1 OR next_at <= ?2) "
                     "ORDER BY seq LIMIT ?3",
                     &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, session_ms);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int64(st, 3, max > INT32_MAX ? INT32_MAX : (int64_t)max);
    return each_outbox(s, st, fn, ctx, NULL, err);
}

static int count_query(shub_agentdb_t *s, const char *sql, int64_t a, int64_t b,
                       uint64_t *n, shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, sql, &st, err);
    if (rc)
        return rc;
    if (sqlite3_bind_parameter_count(st) >= 1)
        sqlite3_bind_int64(st, 1, a);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int64(st, 2, b);
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = (uint64_t)sqlite3_column_int64(st, 0);
    else
        rc = dberr(s, err, "counting");
    finish(s, st);
    return rc;
}

int shub_agentdb_outbox_inflight(shub_agentdb_t *s, int64_t session_ms, int64_t now_ms,
                                 uint32_t *n, shub_err_t *err)
{
    uint64_t c = 0;
    int rc = count_query(s,
                         "SELECT count(*) FROM outbox WHERE state = 'pending' AND "
                         "last_sent >= ?1 AND next_at > ?2",
                         session_ms, now_ms, &c, err);
    if (rc == 0)
        *n = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
    return rc;
}

int shub_agentdb_outbox_sent(shub_agentdb_t *s, const shub_id_t *ids, size_t n,
                             int64_t now_ms, int64_t retry_ms, shub_err_t *err)
{
    if (n == 0)
        return 0;
    sqlite3_stmt *st;
    int rc = begin_lazy(s, err);
    if (rc)
        return rc;
    if ((rc = prepare(
             s,
             "UPDATE outbox SET attempts = attempts + 1, last_sent = ?, next_at = ? "
             "WHERE id = ? AND state = 'pending'",
             &st, err))) {
        rollback(s);
        return rc;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        sqlite3_bind_int64(st, 1, now_ms);
        sqlite3_bind_int64(st, 2, retry_ms);
        bind_id(st, 3, &ids[i]);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = dberr(s, err, "recording a send");
        sqlite3_reset(st);
    }
    finish(s, st);
    if (rc) {
        rollback(s);
        return rc;
    }
    return commit(s, err);
}

/* Runs a one-row UPDATE on a pending event; SHUB_ENOTFOUND if none matched. */
static int update_pending(shub_agentdb_t *s, sqlite3_stmt *st, const shub_id_t *id,
                          shub_err_t *err)
{
    int rc = 0;
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = dberr(s, err, "updating the outbox");
    } else if (sqlite3_changes(s->db) == 0) {
        char idt[SHUB_ID_TEXT];
        shub_id_format(id, idt);
        rc = shub_err_set(err, SHUB_ENOTFOUND, "no pending event %s in the outbox", idt);
    }
    finish(s, st);
    return rc;
}

int shub_agentdb_outbox_retry(shub_agentdb_t *s, const shub_id_t *id, int64_t retry_ms,
                              shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(
        s, "UPDATE outbox SET next_at = ? WHERE id = ? AND state = 'pending'", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, retry_ms);
    bind_id(st, 2, id);
    return update_pending(s, st, id, err);
}

int shub_agentdb_outbox_fail(shub_agentdb_t *s, const shub_id_t *id, const char *code,
                             const char *message, int64_t now_ms, shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s,
                     "UPDATE outbox SET state = 'failed', done_at = ?, error_code = ?, "
                     "error = ?, next_at = NULL, changed = " NEXT_CHANGE
                     " WHERE id = ? AND state = 'pending'",
                     &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, now_ms);
    bind_text(st, 2, code ? code : "error");
    bind_text(st, 3, message ? message : "");
    bind_id(st, 4, id);
    return update_pending(s, st, id, err);
}

static int outcome_rank(shub_outcome_t o)
{
    return o == SHUB_OUTCOME_QUEUED ? 1 : o == SHUB_OUTCOME_DELIVERED ? 2 : 3;
}

/* Forward only: a stored final outcome (rank 3) stays; otherwise a newer
 * report wins if it is further along. A repeat (the same rank: queued and
 * delivered are one outcome each) writes nothing, so that the change cursor
 * moves only when something did. */
static const char outcome_upsert_sql[] =
    "INSERT INTO outcomes(id, recipient, outcome, rank, reason, detail, "
    "agreement, version, flow, updated) VALUES (?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT(id, recipient) DO UPDATE SET outcome = excluded.outcome, "
    "rank = excluded.rank, reason = excluded.reason, "
    "detail = excluded.detail, "
    "agreement = coalesce(excluded.agreement, agreement), "
    "version = coalesce(excluded.version, version), "
    "flow = coalesce(excluded.flow, flow), updated = excluded.updated "
    "WHERE rank < 3 AND excluded.rank > rank";

/* Stores one outcome; *moved (may be NULL) is set when it changed a row. */
static int put_outcome(shub_agentdb_t *s, sqlite3_stmt *st, const shub_id_t *id,
                       const shub_outcome_item_t *it, int64_t now_ms, bool *moved,
                       shub_err_t *err)
{
    if (!it->to)
        return 0;
    bind_id(st, 1, id);
    bind_text(st, 2, it->to);
    bind_text(st, 3, shub_outcome_name(it->outcome));
    sqlite3_bind_int(st, 4, outcome_rank(it->outcome));
    bind_text(st, 5, it->reason);
    bind_text(st, 6, it->detail);
    bind_text(st, 7, it->agreement);
    if (it->agreement)
        sqlite3_bind_int64(st, 8, it->version);
    else
        sqlite3_bind_null(st, 8);
    bind_text(st, 9, it->flow);
    sqlite3_bind_int64(st, 10, now_ms);
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    if (step != SQLITE_DONE)
        return dberr(s, err, "storing an outcome");
    if (moved && sqlite3_changes(s->db) > 0)
        *moved = true;
    return 0;
}

/* Stamps an event with the next change cursor (nothing if it is not in the
 * outbox: an update for an event restored away). */
static int stamp_change(shub_agentdb_t *s, sqlite3_stmt *st, const shub_id_t *id,
                        shub_err_t *err)
{
    bind_id(st, 1, id);
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    return step == SQLITE_DONE ? 0 : dberr(s, err, "stamping a change");
}

static const char stamp_sql[] =
    "UPDATE outbox SET changed = " NEXT_CHANGE " WHERE id = ?";

/* The statements one receipt or update batch needs, prepared once. */
typedef struct {
    sqlite3_stmt *mark, *known, *put, *stamp;
} outcome_stmts_t;

static void outcome_stmts_free(shub_agentdb_t *s, outcome_stmts_t *q)
{
    finish(s, q->mark);
    finish(s, q->known);
    finish(s, q->put);
    finish(s, q->stamp);
}

/* One receipt inside an open transaction; SHUB_ENOTFOUND (nothing written)
 * if its event is not in the outbox. A pending event becomes receipted; a
 * failed one keeps its state. The event is stamped with a new change cursor
 * if either that or any recipient's outcome moved. */
static int apply_receipt(shub_agentdb_t *s, outcome_stmts_t *q, const shub_receipt_t *r,
                         int64_t now_ms, shub_err_t *err)
{
    if (r->count && !r->items)
        return shub_err_set(err, SHUB_EINVAL, "receipt without its outcomes");
    sqlite3_bind_int64(q->mark, 1, now_ms);
    bind_id(q->mark, 2, &r->id);
    int step = sqlite3_step(q->mark);
    sqlite3_reset(q->mark);
    if (step != SQLITE_DONE)
        return dberr(s, err, "applying a receipt");
    bool moved = sqlite3_changes(s->db) > 0;
    if (!moved) {
        bind_id(q->known, 1, &r->id);
        step = sqlite3_step(q->known);
        sqlite3_reset(q->known);
        if (step == SQLITE_DONE) {
            char idt[SHUB_ID_TEXT];
            shub_id_format(&r->id, idt);
            return shub_err_set(err, SHUB_ENOTFOUND,
                                "receipt for event %s, not in the outbox", idt);
        }
        if (step != SQLITE_ROW)
            return dberr(s, err, "applying a receipt");
    }
    bool outcome_moved = false;
    for (uint32_t i = 0; i < r->count; i++) {
        int rc = put_outcome(s, q->put, &r->id, &r->items[i], now_ms, &outcome_moved, err);
        if (rc)
            return rc;
    }
    /* The mark stamped already; a second stamp only for outcomes alone. */
    return outcome_moved && !moved ? stamp_change(s, q->stamp, &r->id, err) : 0;
}

int shub_agentdb_receipts(shub_agentdb_t *s, const shub_receipt_t *list, size_t n,
                          int64_t now_ms, size_t *unknown, shub_err_t *err)
{
    outcome_stmts_t q = {0};
    size_t missing = 0;
    if (!list && n)
        return shub_err_set(err, SHUB_EINVAL, "no receipts");
    int rc = begin_lazy(s, err);
    if (rc)
        return rc;
    if ((rc = prepare(s,
                      "UPDATE outbox SET state = 'receipted', done_at = ?, next_at = NULL, "
                      "changed = " NEXT_CHANGE " WHERE id = ? AND state = 'pending'",
                      &q.mark, err)) ||
        (rc = prepare(s, "SELECT 1 FROM outbox WHERE id = ?", &q.known, err)) ||
        (rc = prepare(s, outcome_upsert_sql, &q.put, err)) ||
        (rc = prepare(s, stamp_sql, &q.stamp, err)))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        rc = apply_receipt(s, &q, &list[i], now_ms, err);
        if (rc == SHUB_ENOTFOUND) {
            missing++;
            rc = 0;
        }
        if (rc)
            goto fail;
    }
    outcome_stmts_free(s, &q);
    if (unknown)
        *unknown = missing;
    return commit(s, err);
fail:
    outcome_stmts_free(s, &q);
    rollback(s);
    return rc;
}

int shub_agentdb_receipt(shub_agentdb_t *s, const shub_receipt_t *r, int64_t now_ms,
                         shub_err_t *err)
{
    size_t unknown = 0;
    if (!r)
        return shub_err_set(err, SHUB_EINVAL, "no receipt");
    int rc = shub_agentdb_receipts(s, r, 1, now_ms, &unknown, err);
    if (rc == 0 && unknown) {
        char idt[SHUB_ID_TEXT];
        shub_id_format(&r->id, idt);
        return shub_err_set(err, SHUB_ENOTFOUND, "receipt for event %s, not in the outbox",
                            idt);
    }
    return rc;
}

#define META_UPDATES_UPTO "updates_upto"

int shub_agentdb_updates_apply(shub_agentdb_t *s, const shub_update_t *list, size_t n,
                               int64_t now_ms, int64_t *upto, shub_err_t *err)
{
    outcome_stmts_t q = {0};
    sqlite3_stmt *meta = NULL;
    int64_t high = 0;
    if (!list && n)
        return shub_err_set(err, SHUB_EINVAL, "no updates");
    int rc = begin(s, err);
    if (rc)
        return rc;
    if ((rc = prepare(s, outcome_upsert_sql, &q.put, err)) ||
        (rc = prepare(s, stamp_sql, &q.stamp, err)))
        goto fail;
    /* An update for an event this outbox never held (a store restored from an
     * old backup) is still recorded: the outcome is the broker's fact. */
    for (size_t i = 0; i < n; i++) {
        bool moved = false;
        if ((rc = put_outcome(s, q.put, &list[i].id, &list[i].item, now_ms, &moved, err)) ||
            (moved && (rc = stamp_change(s, q.stamp, &list[i].id, err))))
            goto fail;
        if (list[i].seq > high)
            high = list[i].seq;
    }
    if ((rc = prepare(s,
                      "INSERT INTO meta(key, value) VALUES ('" META_UPDATES_UPTO "', ?) "
                      "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value) "
                      "RETURNING value",
                      &meta, err)))
        goto fail;
    sqlite3_bind_int64(meta, 1, high);
    if (sqlite3_step(meta) != SQLITE_ROW) {
        rc = dberr(s, err, "recording the updates applied");
        goto fail;
    }
    high = sqlite3_column_int64(meta, 0);
    finish(s, meta);
    meta = NULL;
    outcome_stmts_free(s, &q);
    if ((rc = commit(s, err)))
        return rc;
    if (upto)
        *upto = high;
    return 0;
fail:
    outcome_stmts_free(s, &q);
    finish(s, meta);
    rollback(s);
    return rc;
}

int shub_agentdb_outbox_list(shub_agentdb_t *s, shub_outbox_fn *fn, void *ctx,
                             shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT " OUTBOX_COLS " FROM outbox ORDER BY seq", &st, err);
    return rc ? rc : each_outbox(s, st, fn, ctx, NULL, err);
}

int shub_agentdb_outbox_get(shub_agentdb_t *s, const shub_id_t *id, shub_outbox_fn *fn,
                            void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT " OUTBOX_COLS " FROM outbox WHERE id = ?", &st, err);
    if (rc)
        return rc;
    bind_id(st, 1, id);
    size_t rows = 0;
    if ((rc = each_outbox(s, st, fn, ctx, &rows, err)))
        return rc;
    if (rows == 0) {
        char idt[SHUB_ID_TEXT];
        shub_id_format(id, idt);
        return shub_err_set(err, SHUB_ENOTFOUND, "no event %s in the outbox", idt);
    }
    return 0;
}

int shub_agentdb_outbox_changes(shub_agentdb_t *s, int64_t after, size_t limit,
                                shub_outbox_fn *fn, void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare_limited(
        s, "SELECT " OUTBOX_COLS " FROM outbox WHERE changed > ? ORDER BY changed LIMIT ?",
        after, limit, &st, err);
    return rc ? rc : each_outbox(s, st, fn, ctx, NULL, err);
}

int shub_agentdb_outcomes(shub_agentdb_t *s, const shub_id_t *id, shub_outcome_fn *fn,
                          void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s,
                     "SELECT recipient, outcome, reason, detail, agreement, "
                     "coalesce(version, 0), flow, updated FROM outcomes WHERE id = ? "
                     "ORDER BY recipient",
                     &st, err);
    if (rc)
        return rc;
    bind_id(st, 1, id);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int o = shub_outcome_parse(col_text(st, 1));
        shub_outcome_row_t r = {
            .recipient = col_text(st, 0) ? col_text(st, 0) : "",
            .outcome = o > 0 ? (shub_outcome_t)o : 0,
            .reason = col_text(st, 2),
            .detail = col_text(st, 3),
            .agreement = col_text(st, 4),
            .version = (uint32_t)sqlite3_column_int64(st, 5),
            .flow = col_text(st, 6),
            .updated_ms = sqlite3_column_int64(st, 7),
        };
        if (fn(&r, ctx))
            break;
    }
    return rows_done(s, st, step, "reading outcomes", err);
}

int shub_agentdb_outbox_count(shub_agentdb_t *s, shub_outbox_state_t state, uint64_t *n,
                              shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT count(*) FROM outbox WHERE state = ?", &st, err);
    if (rc)
        return rc;
    bind_text(st, 1, shub_outbox_state_name(state));
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = (uint64_t)sqlite3_column_int64(st, 0);
    else
        rc = dberr(s, err, "counting the outbox");
    finish(s, st);
    return rc;
}

/* ---- inbox ----------------------------------------------------------- */

static bool row_ok(const shub_inbox_row_t *row)
{
    return row && row->event_type && row->sender && row->agreement && row->flow &&
           row->event && row->event_len > 0 && row->event_len <= SHUB_MSG_MAX_BYTES;
}

int shub_agentdb_inbox_add_batch(shub_agentdb_t *s, const shub_inbox_row_t *rows, size_t n,
                                 bool hook, bool *added, shub_err_t *err)
{
    for (size_t i = 0; i < n; i++)
        if (!row_ok(&rows[i]))
            return shub_err_set(err, SHUB_EINVAL, "inbox row without type, sender or event");
    sqlite3_stmt *st = NULL;
    int rc = begin(s, err);
    if (rc)
        return rc;
    if ((rc = prepare(s,
                      "INSERT INTO inbox(id, event_type, sender, agreement, version, flow, "
                      "received, event, hook, hook_next_at, keep_until) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING",
                      &st, err)))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        const shub_inbox_row_t *row = &rows[i];
        bind_id(st, 1, &row->id);
        bind_text(st, 2, row->event_type);
        bind_text(st, 3, row->sender);
        bind_text(st, 4, row->agreement);
        sqlite3_bind_int64(st, 5, row->version);
        bind_text(st, 6, row->flow);
        sqlite3_bind_int64(st, 7, row->received_ms);
        sqlite3_bind_blob(st, 8, row->event, (int)row->event_len, SQLITE_TRANSIENT);
        bind_text(st, 9, hook ? "pending" : "none");
        sqlite3_bind_int64(st, 10, row->received_ms);
        if (row->keep_until_ms)
            sqlite3_bind_int64(st, 11, row->keep_until_ms);
        else
            sqlite3_bind_null(st, 11);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = dberr(s, err, "adding to the inbox");
            goto fail;
        }
        added[i] = sqlite3_changes(s->db) == 1;
        sqlite3_reset(st);
    }
    finish(s, st);
    return commit(s, err);
fail:
    finish(s, st);
    rollback(s);
    for (size_t i = 0; i < n; i++)
        added[i] = false;
    return rc;
}

int shub_agentdb_inbox_add(shub_agentdb_t *s, const shub_inbox_row_t *row, bool *added,
                           shub_err_t *err)
{
    if (!row_ok(row))
        return shub_err_set(err, SHUB_EINVAL, "inbox row without type, sender or event");
    return shub_agentdb_inbox_add_batch(s, row, 1, false, added, err);
}

#define INBOX_COLS                                                                       \
    "seq, id, event_type, sender, agreement, version, flow, received, event, hook, "     \
    "hook_attempts, hook_error, coalesce(taken_at, 0)"

static const char *const hook_names[] = {NULL, "none", "pending", "done", "dead"};

const char *shub_hook_state_name(shub_hook_state_t state)
{
    return state >= SHUB_HOOK_NONE && state <= SHUB_HOOK_DEAD ? hook_names[state] : "?";
}

static shub_hook_state_t parse_hook(const char *t)
{
    for (int i = SHUB_HOOK_NONE; t && i <= SHUB_HOOK_DEAD; i++)
        if (strcmp(t, hook_names[i]) == 0)
            return (shub_hook_state_t)i;
    return SHUB_HOOK_NONE;
}

static int each_inbox(shub_agentdb_t *s, sqlite3_stmt *st, shub_inbox_fn *fn, void *ctx,
                      shub_err_t *err)
{
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        shub_inbox_row_t r = {
            .seq = sqlite3_column_int64(st, 0),
            .id = col_id(st, 1),
            .event_type = col_text(st, 2) ? col_text(st, 2) : "",
            .sender = col_text(st, 3) ? col_text(st, 3) : "",
            .agreement = col_text(st, 4) ? col_text(st, 4) : "",
            .version = (uint32_t)sqlite3_column_int64(st, 5),
            .flow = col_text(st, 6) ? col_text(st, 6) : "",
            .received_ms = sqlite3_column_int64(st, 7),
            .event = sqlite3_column_blob(st, 8),
            .event_len = (size_t)sqlite3_column_bytes(st, 8),
            .hook = parse_hook(col_text(st, 9)),
            .hook_attempts = (uint32_t)sqlite3_column_int64(st, 10),
            .hook_error = col_text(st, 11),
            .taken_ms = sqlite3_column_int64(st, 12),
        };
        if (fn(&r, ctx))
            break;
    }
    return rows_done(s, st, step, "reading the inbox", err);
}

int shub_agentdb_hooks_due(shub_agentdb_t *s, int64_t now_ms, size_t max, shub_inbox_fn *fn,
                           void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare_limited(s,
                             "SELECT " INBOX_COLS " FROM inbox WHERE hook = 'pending' AND "
                             "hook_next_at <= ? ORDER BY hook_next_at, seq LIMIT ?",
                             now_ms, max, &st, err);
    return rc ? rc : each_inbox(s, st, fn, ctx, err);
}

int shub_agentdb_hook_result(shub_agentdb_t *s, const shub_id_t *id, bool ok,
                             const char *error, int64_t now_ms, uint32_t max_attempts,
                             int64_t retry_ms, shub_hook_state_t *state, shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s,
                     "UPDATE inbox SET hook_attempts = hook_attempts + 1, "
                     "hook = CASE WHEN ? THEN 'done' WHEN hook_attempts + 1 >= ? THEN "
                     "'dead' ELSE 'pending' END, hook_next_at = ?, "
                     "hook_error = CASE WHEN ? THEN NULL ELSE ? END "
                     "WHERE id = ? AND hook = 'pending' RETURNING hook",
                     &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int(st, 1, ok);
    sqlite3_bind_int64(st, 2, max_attempts ? max_attempts : 1);
    sqlite3_bind_int64(st, 3, now_ms + retry_ms);
    sqlite3_bind_int(st, 4, ok);
    bind_text(st, 5, error);
    bind_id(st, 6, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        if (state)
            *state = parse_hook(col_text(st, 0));
        step = sqlite3_step(st);
    } else if (step == SQLITE_DONE) {
        finish(s, st);
        char idt[SHUB_ID_TEXT];
        shub_id_format(id, idt);
        return shub_err_set(err, SHUB_ENOTFOUND, "no pending hook for event %s", idt);
    }
    if (step != SQLITE_DONE)
        rc = dberr(s, err, "recording a hook's result");
    finish(s, st);
    return rc;
}

/* ---- checkpoints -------------------------------------------------------- */

int shub_agentdb_checkpoint_add(shub_agentdb_t *s, const shub_signed_head_t *cp,
                                shub_cp_state_t state, const char *note, int64_t now_ms,
                                shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s,
                     "INSERT INTO checkpoints(seq, head, at, key, sig, state, note, "
                     "received) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                     &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, cp->seq);
    sqlite3_bind_blob(st, 2, cp->head, SHUB_HASH_SIZE, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, cp->at_ms);
    sqlite3_bind_blob(st, 4, cp->key, SHUB_SIGN_PUBLIC_SIZE, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 5, cp->sig, SHUB_SIGNATURE_SIZE, SQLITE_TRANSIENT);
    bind_text(st, 6, state == SHUB_CP_FORK ? "fork" : "witnessed");
    bind_text(st, 7, note);
    sqlite3_bind_int64(st, 8, now_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = dberr(s, err, "keeping a checkpoint");
    finish(s, st);
    return rc;
}

static bool read_cp(sqlite3_stmt *st, int first, shub_signed_head_t *cp)
{
    const void *head = sqlite3_column_blob(st, first + 1);
    const void *key = sqlite3_column_blob(st, first + 3);
    const void *sig = sqlite3_column_blob(st, first + 4);
    if (!head || sqlite3_column_bytes(st, first + 1) != SHUB_HASH_SIZE || !key ||
        sqlite3_column_bytes(st, first + 3) != SHUB_SIGN_PUBLIC_SIZE || !sig ||
        sqlite3_column_bytes(st, first + 4) != SHUB_SIGNATURE_SIZE)
        return false;
    cp->seq = sqlite3_column_int64(st, first);
    memcpy(cp->head, head, SHUB_HASH_SIZE);
    cp->at_ms = sqlite3_column_int64(st, first + 2);
    memcpy(cp->key, key, SHUB_SIGN_PUBLIC_SIZE);
    memcpy(cp->sig, sig, SHUB_SIGNATURE_SIZE);
    return true;
}

static int one_checkpoint(shub_agentdb_t *s, const char *sql, int64_t seq,
                          shub_signed_head_t *out, shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, sql, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, seq);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = read_cp(st, 0, out)
                 ? 0
                 : shub_err_set(err, SHUB_EDB, "%s: a kept checkpoint is malformed", s->path);
    else if (step == SQLITE_DONE)
        rc = shub_err_set(err, SHUB_ENOTFOUND, "no checkpoint kept");
    else
        rc = dberr(s, err, "reading checkpoints");
    finish(s, st);
    return rc;
}

int shub_agentdb_checkpoint_latest(shub_agentdb_t *s, shub_signed_head_t *out,
                                   shub_err_t *err)
{
    return one_checkpoint(s,
                          "SELECT seq, head, at, key, sig FROM checkpoints WHERE state = "
                          "'witnessed' AND seq >= ? ORDER BY seq DESC, at DESC LIMIT 1",
                          0, out, err);
}

int shub_agentdb_checkpoint_at(shub_agentdb_t *s, int64_t seq, shub_signed_head_t *out,
                               shub_err_t *err)
{
    return one_checkpoint(s,
                          "SELECT seq, head, at, key, sig FROM checkpoints WHERE state = "
                          "'witnessed' AND seq = ? LIMIT 1",
                          seq, out, err);
}

int shub_agentdb_checkpoints(shub_agentdb_t *s, shub_checkpoint_fn *fn, void *ctx,
                             shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s,
                     "SELECT seq, head, at, key, sig, state, note, received FROM "
                     "checkpoints ORDER BY seq, received",
                     &st, err);
    if (rc)
        return rc;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        shub_signed_head_t cp;
        if (!read_cp(st, 0, &cp))
            continue;
        shub_cp_state_t state =
            strcmp(col_text(st, 5) ? col_text(st, 5) : "", "fork") == 0 ? SHUB_CP_FORK
                                                                          : SHUB_CP_WITNESSED;
        if (fn(&cp, state, col_text(st, 6), sqlite3_column_int64(st, 7), ctx))
            break;
    }
    return rows_done(s, st, step, "reading checkpoints", err);
}

int shub_agentdb_inbox_list(shub_agentdb_t *s, int64_t since_ms, shub_inbox_fn *fn,
                            void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT " INBOX_COLS " FROM inbox WHERE received >= ? ORDER BY seq",
                     &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, since_ms);
    return each_inbox(s, st, fn, ctx, err);
}

int shub_agentdb_inbox_count(shub_agentdb_t *s, uint64_t *n, shub_err_t *err)
{
    return count_query(s, "SELECT count(*) FROM inbox", 0, 0, n, err);
}

int shub_agentdb_inbox_after(shub_agentdb_t *s, int64_t after, bool untaken_only,
                             size_t limit, shub_inbox_fn *fn, void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare_limited(s,
                             untaken_only ? "SELECT " INBOX_COLS " FROM inbox WHERE seq > ? "
                                            "AND taken_at IS NULL ORDER BY seq LIMIT ?"
                                          : "SELECT " INBOX_COLS " FROM inbox WHERE seq > ? "
                                            "ORDER BY seq LIMIT ?",
                             after, limit, &st, err);
    return rc ? rc : each_inbox(s, st, fn, ctx, err);
}

int shub_agentdb_inbox_take(shub_agentdb_t *s, const shub_id_t *id, int64_t now_ms,
                            int64_t *taken_ms, bool *repeat, shub_err_t *err)
{
    /* Taken once: the first time stays. A row is never untaken, so the
     * second statement, outside the first's transaction, cannot be misled. */
    sqlite3_stmt *st;
    int rc = prepare(s, "UPDATE inbox SET taken_at = ? WHERE id = ? AND taken_at IS NULL",
                     &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, now_ms);
    bind_id(st, 2, id);
    int step = sqlite3_step(st);
    bool first = step == SQLITE_DONE && sqlite3_changes(s->db) == 1;
    finish(s, st);
    if (step != SQLITE_DONE)
        return dberr(s, err, "recording an event taken");
    int64_t at = now_ms;
    if (!first) {
        if ((rc = prepare(s, "SELECT taken_at FROM inbox WHERE id = ?", &st, err)))
            return rc;
        bind_id(st, 1, id);
        step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            at = sqlite3_column_int64(st, 0);
        finish(s, st);
        if (step == SQLITE_DONE) {
            char idt[SHUB_ID_TEXT];
            shub_id_format(id, idt);
            return shub_err_set(err, SHUB_ENOTFOUND, "no event %s in the inbox", idt);
        }
        if (step != SQLITE_ROW)
            return dberr(s, err, "reading the inbox");
    }
    if (taken_ms)
        *taken_ms = at;
    if (repeat)
        *repeat = !first;
    return 0;
}

int shub_agentdb_inbox_untaken(shub_agentdb_t *s, uint64_t *n, shub_err_t *err)
{
    return count_query(s, "SELECT count(*) FROM inbox WHERE taken_at IS NULL", 0, 0, n,
                       err);
}

/* ---- retention -------------------------------------------------------- */

/* Calls fn with each (id, blob) row of sql (?1 = a, ?2 = b) until it stops. */
static int held_rows(shub_agentdb_t *s, const char *sql, int64_t a, int64_t b,
                     shub_held_fn *fn, void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, sql, &st, err), step;
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        shub_held_t h = {
            .id = col_id(st, 0),
            .bytes = sqlite3_column_blob(st, 1),
            .len = (size_t)sqlite3_column_bytes(st, 1),
        };
        if (fn(&h, ctx))
            break;
    }
    return rows_done(s, st, step, "retention", err);
}

int shub_agentdb_inbox_expired(shub_agentdb_t *s, int64_t now_ms, size_t max,
                               shub_held_fn *fn, void *ctx, shub_err_t *err)
{
    return held_rows(s,
                   "SELECT id, event FROM inbox WHERE keep_until IS NOT NULL AND"
                   " purged_at IS NULL AND keep_until <= ?1 AND hook <> 'pending'"
                   " ORDER BY keep_until LIMIT ?2",
                   now_ms, (int64_t)max, fn, ctx, err);
}

int shub_agentdb_outbox_settled(shub_agentdb_t *s, size_t max, shub_held_fn *fn, void *ctx,
                                shub_err_t *err)
{
    /* Receipted, and every recipient's outcome final (rank 3: acknowledged,
     * denied, dead): nobody will ask for the unminimised event again. */
    return held_rows(s,
                   "SELECT o.id, o.share FROM outbox o WHERE o.state = 'receipted' AND"
                   " o.dropped_at IS NULL AND EXISTS (SELECT 1 FROM outcomes c WHERE"
                   " c.id = o.id) AND NOT EXISTS (SELECT 1 FROM outcomes c WHERE c.id ="
                   " o.id AND c.rank < 3) AND ?1 = ?1 ORDER BY o.seq LIMIT ?2",
                   0, (int64_t)max, fn, ctx, err);
}

/* Replaces one held blob with its stripped form and records when and the
 * hash of what it was. */
static int replace_held(shub_agentdb_t *s, const char *sql, const shub_id_t *id,
                        const void *bytes, size_t len, const uint8_t hash[32],
                        int64_t now_ms, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = begin(s, err);
    if (rc)
        return rc;
    if ((rc = prepare(s, sql, &st, err))) {
        rollback(s);
        return rc;
    }
    sqlite3_bind_blob(st, 1, bytes, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_blob(st, 3, hash, 32, SQLITE_TRANSIENT);
    bind_id(st, 4, id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = dberr(s, err, "retention");
        finish(s, st);
        rollback(s);
        return rc;
    }
    finish(s, st);
    return commit(s, err);
}

int shub_agentdb_inbox_purge(shub_agentdb_t *s, const shub_id_t *id, const void *event,
                             size_t len, const uint8_t hash[32], int64_t now_ms,
                             shub_err_t *err)
{
    return replace_held(s,
                        "UPDATE inbox SET event = ?1, purged_at = ?2, event_hash = ?3"
                        " WHERE id = ?4 AND purged_at IS NULL",
                        id, event, len, hash, now_ms, err);
}

int shub_agentdb_outbox_drop(shub_agentdb_t *s, const shub_id_t *id, const void *share,
                             size_t len, const uint8_t hash[32], int64_t now_ms,
                             shub_err_t *err)
{
    return replace_held(s,
                        "UPDATE outbox SET share = ?1, dropped_at = ?2, share_hash = ?3"
                        " WHERE id = ?4 AND dropped_at IS NULL",
                        id, share, len, hash, now_ms, err);
}

int shub_agentdb_shrink(shub_agentdb_t *s, shub_err_t *err)
{
    /* Secure delete zeroes the freed space in the database file; the WAL
     * still holds the old pages until it is checkpointed and truncated. */
    int busy = 0, rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                                 NULL, &busy);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return dberr(s, err, "checkpoint");
    return rc == SQLITE_BUSY ? shub_err_set(err, SHUB_EBUSY, "%s: checkpoint: a reader "
                                                               "holds the log; next time",
                                            s->path)
                             : 0;
}
