/*
 * store: the SQLite schema, group commit, the audit chain, the outbox, dedupe
 * and agreement versions (include/sharehub/store.h). All of sharehub's SQL is
 * in this file and verify.c, so that the store can one day sit behind the same
 * interface on PostgreSQL without the hub noticing.
 *
 * Hot path: the hub calls begin, then per event event_add, audit_append and
 * delivery_put, then commit. Every statement is prepared once and cached; the
 * chain head (seq and row_hash of the last row) is kept in memory so an append
 * is one hash and one INSERT, and is re-read after BEGIN IMMEDIATE (one index
 * descent) so the in-memory head can never drift from the file. WAL
 * checkpoints are kept off the commit path (wal_autocheckpoint=0) and run from
 * shub_store_maintain when the hub is idle.
 */
#include "store_internal.h"

#include "sharehub/alloc.h"

#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/*
 * The schema, version 1. Later tools read it: the audit CLI (filters by org,
 * sender, recipient, agreement, event type, decision, reason, case and time,
 * paged over millions of rows), subject access requests (by keyed hash), board
 * reports per agreement, org, area and event type, and the outbox views
 * (pending, dead-lettered). Times are ms since the Unix epoch; ids are the 16
 * id bytes. No payload value is ever stored in the audit log.
 */
static const char schema_sql[] =
    /* Facts about the file: created_at, checkpoint_public_key (hex, the key
     * the broker signs with now), subject_key_id (a hash of the subject key,
     * so a store is never written under two keys). */
    "CREATE TABLE meta(\n"
    "    key TEXT PRIMARY KEY,\n"
    "    value TEXT NOT NULL\n"
    ") WITHOUT ROWID;\n"

    /* Dedupe: every event id ever accepted, kept forever (an id is 16 bytes
     * and UUIDv7 ids are time-ordered, so inserts append to the B-tree). */
    "CREATE TABLE events(\n"
    "    event_id BLOB PRIMARY KEY,\n"
    "    sender TEXT NOT NULL,\n"
    "    event_type TEXT NOT NULL,\n"
    "    received_at INTEGER NOT NULL\n"
    ") WITHOUT ROWID;\n"

    /* The audit log: one row per decision, delivery, ack, dead letter or
     * recheck. action: decide | deliver | ack | dead | recheck; decision:
     * allow | deny | delivered | acknowledged | dead. fields_* are
     * comma-separated field paths (names, never values); a report can split
     * them with json_each('["' || replace(fields_stripped, ',', '","') || '"]')
     * since field paths are names without quotes. payload_hash is BLAKE2b of
     * the payload; subject_hash is BLAKE2b of the subject ref keyed with the
     * hub's subject key. prev_hash/row_hash chain the rows (store_internal.h).
     * seq is the rowid, so paging by seq (WHERE seq < ? ORDER BY seq DESC
     * LIMIT n) costs one descent per page however long the log. */
    "CREATE TABLE audit(\n"
    "    seq INTEGER PRIMARY KEY,\n"
    "    at INTEGER NOT NULL,\n"
    "    action TEXT NOT NULL,\n"
    "    event_id BLOB NOT NULL,\n"
    "    event_type TEXT,\n"
    "    sender TEXT,\n"
    "    recipient TEXT,\n"
    "    decision TEXT NOT NULL,\n"
    "    reason TEXT,\n"
    "    explanation TEXT,\n"
    "    agreement TEXT,\n"
    "    agreement_version INTEGER,\n"
    "    agreement_hash TEXT,\n"
    "    flow TEXT,\n"
    "    purpose TEXT,\n"
    "    legal_basis TEXT,\n"
    "    consent TEXT,\n"
    "    override TEXT,\n"
    "    case_ref TEXT,\n"
    "    area TEXT,\n"
    "    fields_shared TEXT,\n"
    "    fields_stripped TEXT,\n"
    "    facts TEXT,\n"
    "    payload_hash BLOB,\n"
    "    subject_hash BLOB,\n"
    "    prev_hash BLOB NOT NULL,\n"
    "    row_hash BLOB NOT NULL\n"
    ");\n"
    /* On the hot path: event_id (receipts, "what happened to this event"; ids
     * are time-ordered, so this index appends) and subject_hash (subject
     * access; partial, so rows about no one cost nothing). Deliberately not
     * yet: (sender, seq), (recipient, seq), (agreement, agreement_version,
     * seq), (event_type, seq), (decision, reason, seq), (case_ref), (at).
     * Each is one more B-tree insert per audit row, several scattered, on a
     * path that must carry 100k rows/s; the audit CLI can add them (CREATE
     * INDEX IF NOT EXISTS, schema note in meta) when an operator asks for
     * fast filtered queries, or build them on a copy. Time filters can
     * bisect seq instead: at grows with seq. */
    "CREATE INDEX audit_event ON audit(event_id);\n"
    "CREATE INDEX audit_subject ON audit(subject_hash) WHERE subject_hash IS NOT NULL;\n"
    /* The audit CLI's filters (broker/query.c). An index on a column of a
     * rowid table ends with the rowid, so each is also (column, seq): a
     * filtered page newest or oldest first is one descent and a walk, and
     * an org filter merges the sender and recipient ranges. Their keys are
     * few (orgs, agreements, types, reasons) and seq grows, so an append
     * lands at the right edge of a range already in cache. Partial where a
     * column is often NULL (only denials have a reason; only case traffic a
     * case ref). Decision and time have none: decision has two values and
     * no selectivity, and time bisects seq (at grows with seq). */
    "CREATE INDEX audit_sender ON audit(sender);\n"
    "CREATE INDEX audit_recipient ON audit(recipient);\n"
    "CREATE INDEX audit_agreement ON audit(agreement) WHERE agreement IS NOT NULL;\n"
    "CREATE INDEX audit_type ON audit(event_type);\n"
    "CREATE INDEX audit_reason ON audit(reason) WHERE reason IS NOT NULL;\n"
    "CREATE INDEX audit_case ON audit(case_ref) WHERE case_ref IS NOT NULL;\n"

    /* The outbox: one row per (event, recipient), denied ones included so a
     * duplicate SHARE gets the original receipt. state: queued | delivered |
     * acknowledged | denied | dead. sealed is the payload sealed to the
     * recipient's key by the hub (the store never sees plaintext); it is NULL
     * for denied rows and dropped on acknowledgement or dead letter. */
    "CREATE TABLE deliveries(\n"
    "    event_id BLOB NOT NULL,\n"
    "    recipient TEXT NOT NULL,\n"
    "    sender TEXT NOT NULL,\n"
    "    event_type TEXT NOT NULL,\n"
    "    state TEXT NOT NULL,\n"
    "    reason TEXT,\n"
    "    detail TEXT,\n"
    "    agreement TEXT,\n"
    "    agreement_version INTEGER,\n"
    "    flow TEXT,\n"
    "    attempts INTEGER NOT NULL DEFAULT 0,\n"
    "    next_at INTEGER,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    updated_at INTEGER NOT NULL,\n"
    "    sealed BLOB,\n"
    "    PRIMARY KEY(event_id, recipient)\n"
    ") WITHOUT ROWID;\n"
    /* A recipient's backlog in event-id order (HELLO), and due redeliveries.
     * Partial indexes: finished rows leave them, so they stay as small as
     * the work outstanding. Queries must repeat the WHERE terms verbatim for
     * the planner to use them. Dead letters: WHERE state = 'dead' (rare). */
    "CREATE INDEX deliveries_pending ON deliveries(recipient, event_id)\n"
    "    WHERE state IN ('queued', 'delivered');\n"
    "CREATE INDEX deliveries_due ON deliveries(next_at) WHERE state = 'delivered';\n"

    /* Every agreement version the broker has loaded, by content hash, so an
     * audit row's agreement_hash names the exact text that allowed it. */
    "CREATE TABLE agreement_versions(\n"
    "    id TEXT NOT NULL,\n"
    "    version INTEGER NOT NULL,\n"
    "    content_hash TEXT NOT NULL,\n"
    "    title TEXT,\n"
    "    status TEXT,\n"
    "    valid_from INTEGER,\n"
    "    valid_until INTEGER,\n"
    "    review INTEGER,\n"
    "    first_loaded_at INTEGER NOT NULL,\n"
    "    PRIMARY KEY(id, version, content_hash)\n"
    ") WITHOUT ROWID;\n"

    /* Signed chain heads: Ed25519 over "sharehub-checkpoint-v1" || upto_seq ||
     * head_hash || at (store_internal.h). The public key is kept per row, so
     * a key rotation leaves old checkpoints checkable. */
    "CREATE TABLE checkpoints(\n"
    "    seq INTEGER PRIMARY KEY,\n"
    "    upto_seq INTEGER NOT NULL,\n"
    "    head_hash BLOB NOT NULL,\n"
    "    at INTEGER NOT NULL,\n"
    "    public_key BLOB NOT NULL,\n"
    "    signature BLOB NOT NULL\n"
    ");\n";

#define DELIVERY_COLUMNS                                                                 \
    "event_id, recipient, sender, event_type, state, reason, detail, agreement, "        \
    "agreement_version, flow, attempts, next_at, created_at, sealed"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_HEAD] = "SELECT (SELECT seq FROM audit ORDER BY seq DESC LIMIT 1),"
                " (SELECT row_hash FROM audit ORDER BY seq DESC LIMIT 1),"
                " (SELECT upto_seq FROM checkpoints ORDER BY seq DESC LIMIT 1)",
    [ST_EVENT_ADD] = "INSERT INTO events(event_id, sender, event_type, received_at)"
                     " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(event_id) DO NOTHING",
    [ST_EVENT_SENDER] = "SELECT sender FROM events WHERE event_id = ?1",
    [ST_AUDIT_INSERT] =
        "INSERT INTO audit(" SHUB_AUDIT_COLUMNS ", prev_hash, row_hash)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
        " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)",
    [ST_AUDIT_READ] = "SELECT " SHUB_AUDIT_COLUMNS " FROM audit WHERE seq > ?1"
                      " ORDER BY seq LIMIT ?2",
    [ST_CHECKPOINT_INSERT] =
        "INSERT INTO checkpoints(upto_seq, head_hash, at, public_key,"
        " signature) VALUES(?1, ?2, ?3, ?4, ?5)",
    [ST_DELIVERY_PUT] = "INSERT INTO deliveries(" DELIVERY_COLUMNS ", updated_at)"
                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                        " ?14, ?13)",
    [ST_OUTCOMES] = "SELECT " DELIVERY_COLUMNS " FROM deliveries WHERE event_id = ?1"
                    " ORDER BY recipient",
    /* The IN term repeats the partial index's WHERE so the planner uses it. */
    [ST_BACKLOG] = "SELECT " DELIVERY_COLUMNS " FROM deliveries WHERE recipient = ?1"
                   " AND state IN ('queued', 'delivered') AND state = 'queued'"
                   " AND event_id > ?2 ORDER BY event_id LIMIT ?3",
    [ST_BACKLOG_COUNT] = "SELECT count(*) FROM deliveries WHERE recipient = ?1"
                         " AND state IN ('queued', 'delivered')",
    [ST_REQUEUE] = "UPDATE deliveries SET state = 'queued', updated_at = ?2"
                   " WHERE recipient = ?1 AND state IN ('queued', 'delivered')"
                   " AND state = 'delivered'",
    [ST_DUE] = "SELECT " DELIVERY_COLUMNS " FROM deliveries WHERE state = 'delivered'"
               " AND next_at <= ?1 ORDER BY next_at LIMIT ?2",
    [ST_SENT] = "UPDATE deliveries SET state = 'delivered', attempts = ?3, next_at = ?4,"
                " updated_at = ?5 WHERE event_id = ?1 AND recipient = ?2"
                " AND state IN ('queued', 'delivered')",
    [ST_FINISH] = "UPDATE deliveries SET state = ?3, reason = coalesce(?4, reason),"
                  " sealed = NULL, next_at = NULL, updated_at = ?5"
                  " WHERE event_id = ?1 AND recipient = ?2"
                  " AND state IN ('queued', 'delivered')",
    /* What the audit row of a delivery's end needs, for one pending row: a
     * point lookup that leaves the sealed copy unread (UPDATE ... RETURNING
     * measured slower: SQLite 3.40 stages its rows in a temporary table). */
    [ST_PENDING] = "SELECT sender, event_type, agreement, agreement_version, flow"
                   " FROM deliveries WHERE event_id = ?1 AND recipient = ?2"
                   " AND state IN ('queued', 'delivered')",
    [ST_AGREEMENT] = "INSERT INTO agreement_versions(id, version, content_hash, title,"
                     " status, valid_from, valid_until, review, first_loaded_at)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                     " ON CONFLICT DO NOTHING",
};

static const uint8_t zero_hash[32];

/* ---- canonical row encoding (shared with verify.c) --------------------- */

#define CANON_TAG "sharehub-audit-v1"

/* Small values are gathered in buf and hashed in one update: BLAKE2b's
 * per-call cost would otherwise dominate rows of two dozen short fields. */
typedef struct canon {
    crypto_generichash_state h;
    uint8_t buf[512];
    size_t n;
} canon_t;

static void canon_flush(canon_t *c)
{
    if (c->n) {
        crypto_generichash_update(&c->h, c->buf, c->n);
        c->n = 0;
    }
}

static void canon_put(canon_t *c, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (c->n + n > sizeof c->buf) {
        canon_flush(c);
        if (n > sizeof c->buf) {
            crypto_generichash_update(&c->h, p, n);
            return;
        }
    }
    memcpy(c->buf + c->n, p, n);
    c->n += n;
}

static void put_be64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

static void put_be32(uint8_t *out, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

void shub_store_row_hash(const uint8_t *prev, size_t prev_len,
                         const canon_val_t vals[SHUB_AUDIT_NCOLS], uint8_t out[32])
{
    canon_t c;
    crypto_generichash_init(&c.h, NULL, 0, 32);
    c.n = 0;
    canon_put(&c, prev, prev_len);
    canon_put(&c, CANON_TAG, sizeof CANON_TAG - 1);
    for (int i = 0; i < SHUB_AUDIT_NCOLS; i++) {
        const canon_val_t *v = &vals[i];
        uint8_t head[1 + 8];
        head[0] = (uint8_t)v->type;
        switch (v->type) {
        case CANON_INT:
        case CANON_REAL:
            put_be64(head + 1, (uint64_t)v->i);
            canon_put(&c, head, 9);
            break;
        case CANON_TEXT:
        case CANON_BLOB:
            put_be32(head + 1, (uint32_t)v->n);
            canon_put(&c, head, 5);
            canon_put(&c, v->p, v->n);
            break;
        default:
            canon_put(&c, head, 1);
            break;
        }
    }
    canon_flush(&c);
    crypto_generichash_final(&c.h, out, 32);
}

void shub_store_checkpoint_msg(int64_t upto_seq, const uint8_t head_hash[32], int64_t at,
                               uint8_t out[SHUB_CHECKPOINT_MSG_SIZE])
{
    size_t tag = sizeof SHUB_CHECKPOINT_TAG - 1;
    memcpy(out, SHUB_CHECKPOINT_TAG, tag);
    put_be64(out + tag, (uint64_t)upto_seq);
    memcpy(out + tag + 8, head_hash, 32);
    put_be64(out + tag + 8 + 32, (uint64_t)at);
}

/* ---- statements and errors ---------------------------------------------- */

static void reset_head(shub_store_t *s)
{
    s->head_seq = s->committed_seq;
    memcpy(s->head_hash, s->committed_hash, 32);
    s->checkpoint_upto = s->committed_checkpoint_upto;
}

int shub_store_db_fail(shub_store_t *s, shub_err_t *err, const char *what)
{
    shub_err_set(err, SHUB_EDB, "%s: %s", what, sqlite3_errmsg(s->db));
    if (s->in_tx && sqlite3_get_autocommit(s->db)) {
        /* SQLite gave the transaction up itself (SQLITE_FULL, IOERR): the
         * rows appended in it are gone, so is the head that counted them. */
        s->in_tx = false;
        reset_head(s);
    }
    return SHUB_EDB;
}

int shub_store_stmt(shub_store_t *s, stmt_id_t id, sqlite3_stmt **out, shub_err_t *err)
{
    if (!s->stmts[id]) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmts[id], NULL);
        if (rc != SQLITE_OK) {
            sqlite3_finalize(s->stmts[id]);
            s->stmts[id] = NULL;
            return shub_store_db_fail(s, err, "prepare statement");
        }
    }
    *out = s->stmts[id];
    return 0;
}

/* Runs a statement that returns no rows to DONE and resets it. */
static int step_done(shub_store_t *s, sqlite3_stmt *st, const char *what, shub_err_t *err)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        shub_store_db_fail(s, err, what);
        sqlite3_reset(st);
        return SHUB_EDB;
    }
    sqlite3_reset(st);
    return 0;
}

static int bind_text(sqlite3_stmt *st, int i, const char *t)
{
    return t ? sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* 0 is "none" for versions and optional times: stored as NULL, not 0. */
static int bind_opt_int(sqlite3_stmt *st, int i, int64_t v)
{
    return v ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
}

static int bind_id(sqlite3_stmt *st, int i, const shub_id_t *id)
{
    return sqlite3_bind_blob(st, i, id->bytes, SHUB_ID_SIZE, SQLITE_STATIC);
}

static int bind_val(sqlite3_stmt *st, int i, const canon_val_t *v)
{
    switch (v->type) {
    case CANON_INT:
        return sqlite3_bind_int64(st, i, v->i);
    case CANON_TEXT:
        return sqlite3_bind_text(st, i, v->p, (int)v->n, SQLITE_STATIC);
    case CANON_BLOB:
        return v->n ? sqlite3_bind_blob(st, i, v->p, (int)v->n, SQLITE_STATIC)
                    : sqlite3_bind_zeroblob(st, i, 0);
    default:
        return sqlite3_bind_null(st, i);
    }
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- opening ------------------------------------------------------------ */

/* One-off statement returning at most one integer (PRAGMAs, counts). */
static int query_int(shub_store_t *s, const char *sql, int64_t *out, const char *what,
                     shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            *out = sqlite3_column_int64(st, 0);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        shub_store_db_fail(s, err, what);
        sqlite3_finalize(st);
        return SHUB_EDB;
    }
    sqlite3_finalize(st);
    return 0;
}

static int exec(shub_store_t *s, const char *sql, const char *what, shub_err_t *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return shub_store_db_fail(s, err, what);
    return 0;
}

/* Reads meta[key] into buf. 0, SHUB_ENOTFOUND or SHUB_EDB. */
static int meta_get(shub_store_t *s, const char *key, char *buf, size_t size,
                    shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc =
        sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        snprintf(buf, size, "%s", v ? v : "");
        sqlite3_finalize(st);
        return 0;
    }
    if (rc != SQLITE_DONE) {
        shub_store_db_fail(s, err, "read store meta");
        sqlite3_finalize(st);
        return SHUB_EDB;
    }
    sqlite3_finalize(st);
    return SHUB_ENOTFOUND;
}

static int meta_put(shub_store_t *s, const char *key, const char *value, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        s->db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return shub_store_db_fail(s, err, "write store meta");
    return 0;
}

/* Creates the schema in a new, empty file. The application id is checked
 * again under the write lock: two processes may race to create the same file. */
static int create_schema(shub_store_t *s, const char *path, shub_err_t *err)
{
    int64_t app_id = 0, tables = 0;
    char pragmas[128], now[32];
    int rc;
    if ((rc = exec(s, "BEGIN IMMEDIATE", "create schema", err)))
        return rc;
    if ((rc = query_int(s, "PRAGMA application_id", &app_id, "create schema", err)) ||
        (rc = query_int(s, "SELECT count(*) FROM sqlite_schema", &tables, "create schema",
                        err)))
        goto fail;
    if (app_id == SHUB_STORE_APPLICATION_ID) {
        exec(s, "ROLLBACK", "create schema", NULL);
        return 0;
    }
    if (tables != 0) {
        rc = shub_err_set(err, SHUB_EDB,
                          "'%s' is not a sharehub store (tables of another "
                          "application, no application_id)",
                          path);
        goto fail;
    }
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA application_id = %ld; PRAGMA user_version = %d",
             (long)SHUB_STORE_APPLICATION_ID, SHUB_STORE_SCHEMA_VERSION);
    snprintf(now, sizeof now, "%lld", (long long)shub_now_ms());
    if ((rc = exec(s, schema_sql, "create schema", err)) ||
        (rc = exec(s, pragmas, "create schema", err)) ||
        (rc = meta_put(s, "created_at", now, err)) ||
        (rc = meta_put(s, "schema",
                       "sharehub store v1: audit (hash chain), events (dedupe), "
                       "deliveries (outbox), agreement_versions, checkpoints",
                       err)) ||
        (rc = exec(s, "COMMIT", "create schema", err)))
        goto fail;
    return 0;
fail:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Refuses files that are not ours, or newer than us; creates a new one. */
static int check_schema(shub_store_t *s, const char *path, shub_err_t *err)
{
    int64_t app_id = 0, version = 0, tables = 0;
    int rc = query_int(s, "PRAGMA application_id", &app_id, "open", err);
    if (rc) {
        return shub_err_set(err, SHUB_EDB, "'%s' is not a sharehub store: %s", path,
                            sqlite3_errmsg(s->db));
    }
    if (app_id == 0) {
        if ((rc = query_int(s, "SELECT count(*) FROM sqlite_schema", &tables, "open",
                            err)))
            return rc;
        if (tables != 0)
            return shub_err_set(err, SHUB_EDB,
                                "'%s' is not a sharehub store (tables of another "
                                "application, no application_id)",
                                path);
        if (s->readonly)
            return shub_err_set(err, SHUB_EDB,
                                "'%s' is not a sharehub store (empty file)", path);
        if ((rc = create_schema(s, path, err)))
            return rc;
        app_id = SHUB_STORE_APPLICATION_ID;
    }
    if (app_id != SHUB_STORE_APPLICATION_ID)
        return shub_err_set(err, SHUB_EDB,
                            "'%s' is not a sharehub store (application_id 0x%08llx, "
                            "expected 0x%08x)",
                            path, (unsigned long long)(uint32_t)app_id,
                            SHUB_STORE_APPLICATION_ID);
    if ((rc = query_int(s, "PRAGMA user_version", &version, "open", err)))
        return rc;
    if (version > SHUB_STORE_SCHEMA_VERSION)
        return shub_err_set(
            err, SHUB_EDB,
            "'%s' has store schema version %lld, newer than this sharehub "
            "understands (%d): use a newer sharehub",
            path, (long long)version, SHUB_STORE_SCHEMA_VERSION);
    if (version < 1)
        return shub_err_set(err, SHUB_EDB,
                            "'%s' has store schema version %lld, expected %d", path,
                            (long long)version, SHUB_STORE_SCHEMA_VERSION);
    return 0;
}

static int set_pragmas(shub_store_t *s, const shub_store_opts_t *opts, shub_err_t *err)
{
    char sql[160];
    const unsigned char *mode;
    sqlite3_stmt *st = NULL;
    int rc;
    if (s->readonly)
        return 0;
    /* journal_mode answers with the mode it ended up in: a file system that
     * cannot do WAL (no shared memory) answers "delete", and then readers
     * would block the broker. Refuse rather than run that way. */
    rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return shub_store_db_fail(s, err, "set WAL mode");
    }
    mode = sqlite3_column_text(st, 0);
    if (!mode || strcmp((const char *)mode, "wal") != 0) {
        rc = shub_err_set(err, SHUB_EDB, "set WAL mode: journal mode is '%s'",
                          mode ? (const char *)mode : "?");
        sqlite3_finalize(st);
        return rc;
    }
    sqlite3_finalize(st);
    /* A 64 MiB page cache keeps the index pages a batch touches (the subject
     * index is keyed by a hash, so its inserts scatter) out of pread. */
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous = %s; PRAGMA wal_autocheckpoint = 0;"
             /* 16 MiB of page cache: enough for the hot index pages, and
              * a bound on resident memory with a large backlog. */
             " PRAGMA cache_size = -16384",
             opts->synchronous_full ? "FULL" : "NORMAL");
    if ((rc = exec(s, sql, "set pragmas", err)))
        return rc;
    if (opts->max_pages > 0) {
        int64_t got = 0;
        snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld",
                 (long long)opts->max_pages);
        if ((rc = query_int(s, sql, &got, "set max_page_count", err)))
            return rc;
    }
    return 0;
}

/* Reads the chain head and the last checkpoint from the file. */
static int load_head(shub_store_t *s, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = shub_store_stmt(s, ST_HEAD, &st, err);
    if (rc)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        shub_store_db_fail(s, err, "read audit head");
        sqlite3_reset(st);
        return SHUB_EDB;
    }
    int64_t seq = sqlite3_column_int64(st, 0);
    const void *hash = sqlite3_column_blob(st, 1);
    int len = sqlite3_column_bytes(st, 1);
    int64_t upto = sqlite3_column_int64(st, 2);
    if (seq > 0 && (!hash || len != 32)) {
        sqlite3_reset(st);
        return shub_err_set(
            err, SHUB_EDB,
            "read audit head: row %lld has a malformed row_hash (run verify)",
            (long long)seq);
    }
    s->head_seq = s->committed_seq = seq;
    memcpy(s->head_hash, seq > 0 ? hash : zero_hash, 32);
    memcpy(s->committed_hash, s->head_hash, 32);
    s->checkpoint_upto = s->committed_checkpoint_upto = upto;
    sqlite3_reset(st);
    return 0;
}

/* Records the subject key's id on first use and refuses a different key after:
 * rows hashed under two keys would hide half a subject from an access request. */
static int check_keys(shub_store_t *s, shub_err_t *err)
{
    static const char label[] = "sharehub-subject-key-id";
    char want[65], have[80];
    int rc;
    if (s->has_subject_key) {
        uint8_t id[32];
        crypto_generichash(id, 32, (const uint8_t *)label, sizeof label - 1,
                           s->subject_key, 32);
        hex(id, 32, want);
        rc = meta_get(s, "subject_key_id", have, sizeof have, err);
        if (rc == SHUB_ENOTFOUND && !s->readonly)
            rc = meta_put(s, "subject_key_id", want, err);
        else if (rc == 0 && strcmp(have, want) != 0)
            return shub_err_set(err, SHUB_ECRYPTO,
                                "subject key does not match the key this store was "
                                "created with (subject_key_id %.16s...)",
                                have);
        else if (rc == SHUB_ENOTFOUND)
            rc = 0;
        if (rc)
            return rc;
    }
    if (s->has_sign_key && !s->readonly) {
        hex(s->sign_public, 32, want);
        rc = meta_get(s, "checkpoint_public_key", have, sizeof have, err);
        if (rc == SHUB_ENOTFOUND || (rc == 0 && strcmp(have, want) != 0))
            rc = meta_put(s, "checkpoint_public_key", want, err);
        if (rc)
            return rc;
    }
    return 0;
}

int shub_store_open(const char *path, const shub_store_opts_t *opts,
                    shub_store_t **store_p, shub_err_t *err)
{
    shub_store_t *s = NULL;
    int rc, flags;
    if (!path || !opts || !store_p)
        return shub_err_set(err, SHUB_EINVAL, "open store: missing argument");
    if (sodium_init() < 0)
        return shub_err_set(err, SHUB_ECRYPTO,
                            "open store: libsodium failed to initialise");
    s = shub_calloc(1, sizeof *s);
    if (!s)
        return shub_err_set(err, SHUB_ENOMEM, "open store: out of memory");
    s->readonly = opts->readonly;
    s->checkpoint_every =
        opts->checkpoint_every ? opts->checkpoint_every : SHUB_STORE_CHECKPOINT_EVERY;
    if (opts->subject_key) {
        memcpy(s->subject_key, opts->subject_key, 32);
        s->has_subject_key = true;
    }
    if (opts->sign_secret) {
        memcpy(s->sign_secret, opts->sign_secret, 64);
        if (crypto_sign_ed25519_sk_to_pk(s->sign_public, s->sign_secret) != 0) {
            rc =
                shub_err_set(err, SHUB_ECRYPTO, "open store: bad checkpoint signing key");
            goto fail;
        }
        s->has_sign_key = true;
    }

    flags =
        s->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        rc = shub_err_set(err, SHUB_EDB, "open '%s': %s", path,
                          s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, SHUB_STORE_BUSY_MS);
    /* Schema check first: another application's file is refused untouched
     * (switching it to WAL would already be a change to it). */
    if ((rc = check_schema(s, path, err)) || (rc = set_pragmas(s, opts, err)) ||
        (rc = load_head(s, err)) || (rc = check_keys(s, err)))
        goto fail;
    *store_p = s;
    return 0;
fail:
    shub_store_close(&s);
    return rc;
}

void shub_store_close(shub_store_t **store_p)
{
    shub_store_t *s = store_p ? *store_p : NULL;
    if (!s)
        return;
    if (s->db && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    sqlite3_close(s->db);
    sodium_memzero(s, sizeof *s);
    shub_free(s);
    *store_p = NULL;
}

/* ---- transactions and checkpoints --------------------------------------- */

int shub_store_begin(shub_store_t *s, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "begin: a transaction is already open");
    if (s->readonly)
        return shub_err_set(err, SHUB_EPROTO, "begin: store is open read-only");
    if ((rc = shub_store_stmt(s, ST_BEGIN, &st, err)) ||
        (rc = step_done(s, st, "begin", err)))
        return rc;
    s->in_tx = true;
    /* Under the write lock the file is the truth: re-read the head. */
    if ((rc = load_head(s, err))) {
        shub_store_rollback(s);
        return rc;
    }
    return 0;
}

static int write_checkpoint(shub_store_t *s, int64_t at, shub_err_t *err)
{
    uint8_t msg[SHUB_CHECKPOINT_MSG_SIZE], sig[crypto_sign_BYTES];
    sqlite3_stmt *st = NULL;
    int rc;
    shub_store_checkpoint_msg(s->head_seq, s->head_hash, at, msg);
    if (crypto_sign_detached(sig, NULL, msg, sizeof msg, s->sign_secret) != 0)
        return shub_err_set(err, SHUB_ECRYPTO, "checkpoint: signing failed");
    if ((rc = shub_store_stmt(s, ST_CHECKPOINT_INSERT, &st, err)))
        return rc;
    if (sqlite3_bind_int64(st, 1, s->head_seq) ||
        sqlite3_bind_blob(st, 2, s->head_hash, 32, SQLITE_STATIC) ||
        sqlite3_bind_int64(st, 3, at) ||
        sqlite3_bind_blob(st, 4, s->sign_public, 32, SQLITE_STATIC) ||
        sqlite3_bind_blob(st, 5, sig, sizeof sig, SQLITE_STATIC))
        return shub_store_db_fail(s, err, "checkpoint");
    if ((rc = step_done(s, st, "checkpoint", err)))
        return rc;
    s->checkpoint_upto = s->head_seq;
    return 0;
}

int shub_store_commit(shub_store_t *s, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "commit: no transaction is open");
    if (s->has_sign_key &&
        s->head_seq - s->checkpoint_upto >= (int64_t)s->checkpoint_every) {
        if ((rc = write_checkpoint(s, shub_now_ms(), err))) {
            shub_store_rollback(s);
            return rc;
        }
    }
    if ((rc = shub_store_stmt(s, ST_COMMIT, &st, err)) ||
        (rc = step_done(s, st, "commit", err))) {
        shub_store_rollback(s);
        return rc;
    }
    s->in_tx = false;
    s->committed_seq = s->head_seq;
    memcpy(s->committed_hash, s->head_hash, 32);
    s->committed_checkpoint_upto = s->checkpoint_upto;
    return 0;
}

void shub_store_rollback(shub_store_t *s)
{
    if (!s)
        return;
    if (s->db && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->in_tx = false;
    reset_head(s);
}

int shub_store_checkpoint(shub_store_t *s, int64_t now_ms, shub_err_t *err)
{
    int rc;
    if (!s->has_sign_key)
        return shub_err_set(err, SHUB_EINVAL, "checkpoint: no signing key");
    if (s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "checkpoint: a transaction is open");
    if ((rc = shub_store_begin(s, err)))
        return rc;
    if (s->head_seq == s->checkpoint_upto) {
        shub_store_rollback(s);
        return 0;
    }
    if ((rc = write_checkpoint(s, now_ms, err))) {
        shub_store_rollback(s);
        return rc;
    }
    return shub_store_commit(s, err);
}

int shub_store_maintain(shub_store_t *s)
{
    if (s->readonly)
        return 0;
    if (sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) !=
        SQLITE_OK)
        return SHUB_EDB;
    return 0;
}

void shub_store_head(const shub_store_t *s, int64_t *seq, uint8_t hash[32])
{
    if (seq)
        *seq = s->head_seq;
    if (hash)
        memcpy(hash, s->head_hash, 32);
}

/* ---- dedupe ------------------------------------------------------------- */

int shub_store_event_add(shub_store_t *s, const shub_id_t *id, const char *sender,
                         const char *event_type, int64_t now_ms, char *sender_out,
                         shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    char text[SHUB_ID_TEXT];
    int rc;
    if (!id || !sender || !event_type)
        return shub_err_set(err, SHUB_EINVAL, "event add: missing id, sender or type");
    if (!s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "event add: no transaction is open");
    if ((rc = shub_store_stmt(s, ST_EVENT_ADD, &st, err)))
        return rc;
    if (bind_id(st, 1, id) || bind_text(st, 2, sender) || bind_text(st, 3, event_type) ||
        sqlite3_bind_int64(st, 4, now_ms))
        return shub_store_db_fail(s, err, "event add");
    if ((rc = step_done(s, st, "event add", err)))
        return rc;
    if (sqlite3_changes(s->db) == 1)
        return 0;

    /* Known id: say who sent it first (a replay by another org is suspicious). */
    if ((rc = shub_store_stmt(s, ST_EVENT_SENDER, &st, err)))
        return rc;
    if (bind_id(st, 1, id))
        return shub_store_db_fail(s, err, "event lookup");
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        shub_store_db_fail(s, err, "event lookup");
        sqlite3_reset(st);
        return SHUB_EDB;
    }
    const char *first = (const char *)sqlite3_column_text(st, 0);
    if (sender_out)
        snprintf(sender_out, SHUB_MSG_MAX_NAME + 1, "%s", first ? first : "");
    shub_id_format(id, text);
    shub_err_set(err, SHUB_EEXIST, "event %s already seen from '%s'", text,
                 first ? first : "");
    sqlite3_reset(st);
    return SHUB_EEXIST;
}

/* ---- audit log ---------------------------------------------------------- */

int shub_store_subject_hash(const shub_store_t *s, const char *ref, uint8_t out[32])
{
    if (!s || !ref || !s->has_subject_key)
        return SHUB_EINVAL;
    crypto_generichash(out, 32, (const uint8_t *)ref, strlen(ref), s->subject_key, 32);
    return 0;
}

static int canon_text(canon_val_t *v, const char *t, const char *name, shub_err_t *err)
{
    if (!t) {
        v->type = CANON_NULL;
        return 0;
    }
    size_t n = strnlen(t, SHUB_STORE_MAX_TEXT + 1);
    if (n > SHUB_STORE_MAX_TEXT)
        return shub_err_set(err, SHUB_EINVAL, "audit append: %s exceeds limit %d bytes",
                            name, SHUB_STORE_MAX_TEXT);
    v->type = CANON_TEXT;
    v->p = t;
    v->n = n;
    return 0;
}

static void canon_blob(canon_val_t *v, const void *p, size_t n)
{
    v->type = p ? CANON_BLOB : CANON_NULL;
    v->p = p;
    v->n = p ? n : 0;
}

static void canon_int(canon_val_t *v, int64_t i)
{
    v->type = CANON_INT;
    v->i = i;
}

/* The text columns of an audit row and where each lives in shub_audit_row_t,
 * used by append (to hash and bind) and by read (to fill rows back). */
static const struct {
    int col;
    size_t off;
    const char *name;
} audit_texts[] = {
#define T(c, f) {c, offsetof(shub_audit_row_t, f), #f}
    T(AC_ACTION, action),
    T(AC_EVENT_TYPE, event_type),
    T(AC_SENDER, sender),
    T(AC_RECIPIENT, recipient),
    T(AC_DECISION, decision),
    T(AC_REASON, reason),
    T(AC_EXPLANATION, explanation),
    T(AC_AGREEMENT, agreement),
    T(AC_AGREEMENT_HASH, agreement_hash),
    T(AC_FLOW, flow),
    T(AC_PURPOSE, purpose),
    T(AC_LEGAL_BASIS, legal_basis),
    T(AC_CONSENT, consent),
    T(AC_OVERRIDE, override),
    T(AC_CASE_REF, case_ref),
    T(AC_AREA, area),
    T(AC_FIELDS_SHARED, fields_shared),
    T(AC_FIELDS_STRIPPED, fields_stripped),
    T(AC_FACTS, facts),
#undef T
};

int shub_store_audit_append(shub_store_t *s, shub_audit_row_t *row, shub_err_t *err)
{
    canon_val_t v[SHUB_AUDIT_NCOLS];
    uint8_t subject[32], row_hash[32];
    sqlite3_stmt *st = NULL;
    int rc;

    if (!row || !row->action || !row->decision || !row->action[0] || !row->decision[0])
        return shub_err_set(err, SHUB_EINVAL,
                            "audit append: action and decision are required");
    if (!s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "audit append: no transaction is open");
    memset(v, 0, sizeof v);
    for (size_t i = 0; i < sizeof audit_texts / sizeof audit_texts[0]; i++) {
        const char *t = *(const char *const *)((const char *)row + audit_texts[i].off);
        if ((rc = canon_text(&v[audit_texts[i].col], t, audit_texts[i].name, err)))
            return rc;
    }
    if (row->subject_ref) {
        if (shub_store_subject_hash(s, row->subject_ref, subject) != 0)
            return shub_err_set(err, SHUB_EINVAL,
                                "audit append: subject_ref given but the "
                                "store has no subject key");
    }
    canon_int(&v[AC_SEQ], s->head_seq + 1);
    canon_int(&v[AC_AT], row->at_ms);
    canon_blob(&v[AC_EVENT_ID], row->event_id.bytes, SHUB_ID_SIZE);
    if (row->agreement_version)
        canon_int(&v[AC_AGREEMENT_VERSION], row->agreement_version);
    canon_blob(&v[AC_PAYLOAD_HASH], row->payload_hash, 32);
    canon_blob(&v[AC_SUBJECT_HASH], row->subject_ref ? subject : NULL, 32);
    shub_store_row_hash(s->head_hash, 32, v, row_hash);

    if ((rc = shub_store_stmt(s, ST_AUDIT_INSERT, &st, err)))
        return rc;
    for (int i = 0; i < SHUB_AUDIT_NCOLS; i++) {
        if (bind_val(st, i + 1, &v[i]) != SQLITE_OK)
            return shub_store_db_fail(s, err, "audit append");
    }
    if (sqlite3_bind_blob(st, SHUB_AUDIT_NCOLS + 1, s->head_hash, 32, SQLITE_STATIC) ||
        sqlite3_bind_blob(st, SHUB_AUDIT_NCOLS + 2, row_hash, 32, SQLITE_STATIC))
        return shub_store_db_fail(s, err, "audit append");
    if ((rc = step_done(s, st, "audit append", err)))
        return rc;
    s->head_seq++;
    memcpy(s->head_hash, row_hash, 32);
    row->seq = s->head_seq;
    return 0;
}

int shub_store_audit_read(shub_store_t *s, int64_t after_seq, size_t limit,
                          shub_audit_fn *fn, void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc, stop = 0;
    if (!fn)
        return shub_err_set(err, SHUB_EINVAL, "audit read: no callback");
    if (limit == 0)
        return 0;
    if ((rc = shub_store_stmt(s, ST_AUDIT_READ, &st, err)))
        return rc;
    if (sqlite3_bind_int64(st, 1, after_seq) ||
        sqlite3_bind_int64(st, 2, limit > INT64_MAX ? INT64_MAX : (int64_t)limit))
        return shub_store_db_fail(s, err, "audit read");
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        shub_audit_row_t row;
        memset(&row, 0, sizeof row);
        row.seq = sqlite3_column_int64(st, AC_SEQ);
        row.at_ms = sqlite3_column_int64(st, AC_AT);
        for (size_t i = 0; i < sizeof audit_texts / sizeof audit_texts[0]; i++)
            *(const char **)((char *)&row + audit_texts[i].off) =
                (const char *)sqlite3_column_text(st, audit_texts[i].col);
        const void *id = sqlite3_column_blob(st, AC_EVENT_ID);
        if (id && sqlite3_column_bytes(st, AC_EVENT_ID) == SHUB_ID_SIZE)
            memcpy(row.event_id.bytes, id, SHUB_ID_SIZE);
        row.agreement_version = (uint32_t)sqlite3_column_int64(st, AC_AGREEMENT_VERSION);
        row.payload_hash = sqlite3_column_blob(st, AC_PAYLOAD_HASH);
        if (sqlite3_column_bytes(st, AC_PAYLOAD_HASH) != 32)
            row.payload_hash = NULL;
        row.subject_hash = sqlite3_column_blob(st, AC_SUBJECT_HASH);
        if (sqlite3_column_bytes(st, AC_SUBJECT_HASH) != 32)
            row.subject_hash = NULL;
        if (!row.action || !row.decision) {
            sqlite3_reset(st);
            return shub_err_set(err, SHUB_EDB,
                                "audit read: row %lld lacks action or decision",
                                (long long)row.seq);
        }
        stop = fn(&row, ctx);
    }
    if (!stop && rc != SQLITE_DONE) {
        shub_store_db_fail(s, err, "audit read");
        sqlite3_reset(st);
        return SHUB_EDB;
    }
    sqlite3_reset(st);
    return stop;
}

/* ---- outbox ------------------------------------------------------------- */

int shub_store_delivery_put(shub_store_t *s, const shub_delivery_t *d, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    bool pending;
    if (!d || !d->recipient || !d->sender || !d->event_type)
        return shub_err_set(err, SHUB_EINVAL,
                            "delivery put: missing recipient, sender or event type");
    if (d->state < SHUB_OUTCOME_QUEUED || d->state > SHUB_OUTCOME_DEAD)
        return shub_err_set(err, SHUB_EINVAL, "delivery put: unknown state %d",
                            (int)d->state);
    pending = d->state == SHUB_OUTCOME_QUEUED || d->state == SHUB_OUTCOME_DELIVERED;
    if (pending != (d->sealed != NULL))
        return shub_err_set(err, SHUB_EINVAL, "delivery put: a %s row %s a sealed copy",
                            shub_outcome_name(d->state),
                            pending ? "needs" : "must not carry");
    if (d->sealed_len > (size_t)SHUB_MSG_MAX_BIN)
        return shub_err_set(err, SHUB_EINVAL,
                            "delivery put: sealed copy of %zu bytes exceeds "
                            "limit %d",
                            d->sealed_len, SHUB_MSG_MAX_BIN);
    if ((rc = shub_store_stmt(s, ST_DELIVERY_PUT, &st, err)))
        return rc;
    if (bind_id(st, 1, &d->event_id) || bind_text(st, 2, d->recipient) ||
        bind_text(st, 3, d->sender) || bind_text(st, 4, d->event_type) ||
        bind_text(st, 5, shub_outcome_name(d->state)) || bind_text(st, 6, d->reason) ||
        bind_text(st, 7, d->detail) || bind_text(st, 8, d->agreement) ||
        bind_opt_int(st, 9, d->agreement_version) || bind_text(st, 10, d->flow) ||
        sqlite3_bind_int64(st, 11, d->attempts) ||
        sqlite3_bind_int64(st, 12, d->next_at_ms) ||
        sqlite3_bind_int64(st, 13, d->created_ms) ||
        (d->sealed
             ? sqlite3_bind_blob(st, 14, d->sealed, (int)d->sealed_len, SQLITE_STATIC)
             : sqlite3_bind_null(st, 14)))
        return shub_store_db_fail(s, err, "delivery put");
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
            char text[SHUB_ID_TEXT];
            shub_id_format(&d->event_id, text);
            rc = shub_err_set(err, SHUB_EEXIST,
                              "delivery put: event %s already has a row for "
                              "'%s'",
                              text, d->recipient);
        } else {
            rc = shub_store_db_fail(s, err, "delivery put");
        }
        sqlite3_reset(st);
        return rc;
    }
    sqlite3_reset(st);
    return 0;
}

/* Copies the current row into one allocation: the struct, its strings and the
 * sealed bytes. NULL with *rc set on failure. */
static shub_delivery_t *delivery_copy(sqlite3_stmt *st, int *rc, shub_err_t *err)
{
    enum {
        C_ID,
        C_RECIPIENT,
        C_SENDER,
        C_TYPE,
        C_STATE,
        C_REASON,
        C_DETAIL,
        C_AGREEMENT,
        C_VERSION,
        C_FLOW,
        C_ATTEMPTS,
        C_NEXT,
        C_CREATED,
        C_SEALED
    };
    static const int text_cols[] = {C_RECIPIENT, C_SENDER,    C_TYPE, C_REASON,
                                    C_DETAIL,    C_AGREEMENT, C_FLOW};
    const char *texts[sizeof text_cols / sizeof text_cols[0]];
    size_t lens[sizeof text_cols / sizeof text_cols[0]];
    size_t size = sizeof(shub_delivery_t), sealed_len;
    const void *id = sqlite3_column_blob(st, C_ID);
    const char *state = (const char *)sqlite3_column_text(st, C_STATE);
    int outcome = shub_outcome_parse(state);

    if (!id || sqlite3_column_bytes(st, C_ID) != SHUB_ID_SIZE || outcome < 0) {
        *rc = shub_err_set(err, SHUB_EDB,
                           "outbox row with a malformed event id or state '%s'",
                           state ? state : "");
        return NULL;
    }
    for (size_t i = 0; i < sizeof text_cols / sizeof text_cols[0]; i++) {
        texts[i] = (const char *)sqlite3_column_text(st, text_cols[i]);
        lens[i] = texts[i] ? (size_t)sqlite3_column_bytes(st, text_cols[i]) : 0;
        size += texts[i] ? lens[i] + 1 : 0;
    }
    const void *sealed = sqlite3_column_blob(st, C_SEALED);
    sealed_len = sealed ? (size_t)sqlite3_column_bytes(st, C_SEALED) : 0;
    size += sealed_len;

    shub_delivery_t *d = shub_malloc(size);
    if (!d) {
        *rc = shub_err_set(err, SHUB_ENOMEM, "outbox read: out of memory");
        return NULL;
    }
    memset(d, 0, sizeof *d);
    char *p = (char *)(d + 1);
    const char **dst[] = {&d->recipient, &d->sender,    &d->event_type, &d->reason,
                          &d->detail,    &d->agreement, &d->flow};
    if (sealed_len) {
        memcpy(p, sealed, sealed_len);
        d->sealed = (const uint8_t *)p;
        d->sealed_len = sealed_len;
        p += sealed_len;
    }
    for (size_t i = 0; i < sizeof text_cols / sizeof text_cols[0]; i++) {
        if (!texts[i])
            continue;
        memcpy(p, texts[i], lens[i] + 1);
        *dst[i] = p;
        p += lens[i] + 1;
    }
    memcpy(d->event_id.bytes, id, SHUB_ID_SIZE);
    d->state = (shub_outcome_t)outcome;
    d->agreement_version = (uint32_t)sqlite3_column_int64(st, C_VERSION);
    d->attempts = (uint32_t)sqlite3_column_int64(st, C_ATTEMPTS);
    d->next_at_ms = sqlite3_column_int64(st, C_NEXT);
    d->created_ms = sqlite3_column_int64(st, C_CREATED);
    if (!d->recipient || !d->sender || !d->event_type) {
        shub_free(d);
        *rc = shub_err_set(err, SHUB_EDB, "outbox row lacks recipient, sender or type");
        return NULL;
    }
    return d;
}

/* Steps a bound outbox query to the end, copying rows, resets it, and only
 * then calls fn on each: fn may write to the store (even to the same rows)
 * without disturbing the scan or reusing a statement that is still running. */
static int deliver_rows(shub_store_t *s, sqlite3_stmt *st, const char *what,
                        shub_delivery_fn *fn, void *ctx, shub_err_t *err)
{
    shub_delivery_t **rows = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            shub_delivery_t **grown = shub_realloc(rows, ncap * sizeof *rows);
            if (!grown) {
                rc = shub_err_set(err, SHUB_ENOMEM, "%s: out of memory", what);
                break;
            }
            rows = grown;
            cap = ncap;
        }
        if (!(rows[n] = delivery_copy(st, &rc, err)))
            break;
        n++;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = shub_store_db_fail(s, err, what);
    sqlite3_reset(st);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = fn(rows[i], ctx);
        shub_free(rows[i]);
    }
    shub_free(rows);
    return rc;
}

static int64_t limit64(size_t limit)
{
    return limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
}

int shub_store_outcomes(shub_store_t *s, const shub_id_t *id, shub_delivery_fn *fn,
                        void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!id || !fn)
        return shub_err_set(err, SHUB_EINVAL, "outcomes: missing id or callback");
    if ((rc = shub_store_stmt(s, ST_OUTCOMES, &st, err)))
        return rc;
    if (bind_id(st, 1, id))
        return shub_store_db_fail(s, err, "outcomes");
    return deliver_rows(s, st, "outcomes", fn, ctx, err);
}

int shub_store_backlog(shub_store_t *s, const char *recipient, const shub_id_t *after,
                       size_t limit, shub_delivery_fn *fn, void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!recipient || !fn)
        return shub_err_set(err, SHUB_EINVAL, "backlog: missing recipient or callback");
    if (limit == 0)
        return 0;
    if ((rc = shub_store_stmt(s, ST_BACKLOG, &st, err)))
        return rc;
    /* No `after`: an empty blob sorts before every 16-byte id. */
    if (bind_text(st, 1, recipient) ||
        (after ? bind_id(st, 2, after) : sqlite3_bind_zeroblob(st, 2, 0)) ||
        sqlite3_bind_int64(st, 3, limit64(limit)))
        return shub_store_db_fail(s, err, "backlog");
    return deliver_rows(s, st, "backlog", fn, ctx, err);
}

int shub_store_backlog_count(shub_store_t *s, const char *recipient, uint32_t *count,
                             shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!recipient || !count)
        return shub_err_set(err, SHUB_EINVAL,
                            "backlog count: missing recipient or count");
    if ((rc = shub_store_stmt(s, ST_BACKLOG_COUNT, &st, err)))
        return rc;
    if (bind_text(st, 1, recipient) || sqlite3_step(st) != SQLITE_ROW) {
        shub_store_db_fail(s, err, "backlog count");
        sqlite3_reset(st);
        return SHUB_EDB;
    }
    int64_t n = sqlite3_column_int64(st, 0);
    *count = n > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    sqlite3_reset(st);
    return 0;
}

int shub_store_due(shub_store_t *s, int64_t now_ms, size_t limit, shub_delivery_fn *fn,
                   void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!fn)
        return shub_err_set(err, SHUB_EINVAL, "due: missing callback");
    if (limit == 0)
        return 0;
    if ((rc = shub_store_stmt(s, ST_DUE, &st, err)))
        return rc;
    if (sqlite3_bind_int64(st, 1, now_ms) || sqlite3_bind_int64(st, 2, limit64(limit)))
        return shub_store_db_fail(s, err, "due");
    return deliver_rows(s, st, "due", fn, ctx, err);
}

/* Runs a bound UPDATE of one pending row; SHUB_ENOTFOUND if it matched none. */
static int update_pending(shub_store_t *s, sqlite3_stmt *st, const shub_id_t *id,
                          const char *recipient, const char *what, shub_err_t *err)
{
    int rc = step_done(s, st, what, err);
    if (rc)
        return rc;
    if (sqlite3_changes(s->db) == 0) {
        char text[SHUB_ID_TEXT];
        shub_id_format(id, text);
        return shub_err_set(err, SHUB_ENOTFOUND, "%s: no pending delivery of %s to '%s'",
                            what, text, recipient);
    }
    return 0;
}

int shub_store_delivery_sent(shub_store_t *s, const shub_id_t *id, const char *recipient,
                             uint32_t attempts, int64_t next_at_ms, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!id || !recipient)
        return shub_err_set(err, SHUB_EINVAL, "delivery sent: missing id or recipient");
    if ((rc = shub_store_stmt(s, ST_SENT, &st, err)))
        return rc;
    if (bind_id(st, 1, id) || bind_text(st, 2, recipient) ||
        sqlite3_bind_int64(st, 3, attempts) || sqlite3_bind_int64(st, 4, next_at_ms) ||
        sqlite3_bind_int64(st, 5, shub_now_ms()))
        return shub_store_db_fail(s, err, "delivery sent");
    return update_pending(s, st, id, recipient, "delivery sent", err);
}

int shub_store_requeue(shub_store_t *s, const char *recipient, int64_t now_ms,
                       shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!recipient)
        return shub_err_set(err, SHUB_EINVAL, "requeue: missing recipient");
    if ((rc = shub_store_stmt(s, ST_REQUEUE, &st, err)))
        return rc;
    if (bind_text(st, 1, recipient) || sqlite3_bind_int64(st, 2, now_ms))
        return shub_store_db_fail(s, err, "requeue");
    return step_done(s, st, "requeue", err);
}

int shub_store_delivery_finish(shub_store_t *s, const shub_id_t *id,
                               const char *recipient, shub_outcome_t state,
                               const char *reason, int64_t now_ms, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!id || !recipient)
        return shub_err_set(err, SHUB_EINVAL, "delivery finish: missing id or recipient");
    if (state != SHUB_OUTCOME_ACKNOWLEDGED && state != SHUB_OUTCOME_DEAD)
        return shub_err_set(
            err, SHUB_EINVAL,
            "delivery finish: state must be acknowledged or dead, not '%s'",
            shub_outcome_name(state));
    if ((rc = shub_store_stmt(s, ST_FINISH, &st, err)))
        return rc;
    if (bind_id(st, 1, id) || bind_text(st, 2, recipient) ||
        bind_text(st, 3, shub_outcome_name(state)) || bind_text(st, 4, reason) ||
        sqlite3_bind_int64(st, 5, now_ms))
        return shub_store_db_fail(s, err, "delivery finish");
    return update_pending(s, st, id, recipient, "delivery finish", err);
}

int shub_store_delivery_end(shub_store_t *s, const shub_id_t *id, const char *recipient,
                            shub_outcome_t state, const char *reason, int64_t now_ms,
                            shub_delivery_fn *fn, void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!id || !recipient || !fn)
        return shub_err_set(err, SHUB_EINVAL,
                            "delivery end: missing id, recipient or callback");
    if (state != SHUB_OUTCOME_ACKNOWLEDGED && state != SHUB_OUTCOME_DEAD)
        return shub_err_set(err, SHUB_EINVAL,
                            "delivery end: state must be acknowledged or dead, not '%s'",
                            shub_outcome_name(state));
    if ((rc = shub_store_stmt(s, ST_PENDING, &st, err)))
        return rc;
    if (bind_id(st, 1, id) || bind_text(st, 2, recipient))
        return shub_store_db_fail(s, err, "delivery end");
    /* (event_id, recipient) is the primary key: at most one row. */
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? SHUB_ENOTFOUND : shub_store_db_fail(s, err, "delivery end");
        sqlite3_reset(st);
        if (rc == SHUB_ENOTFOUND) {
            char text[SHUB_ID_TEXT];
            shub_id_format(id, text);
            shub_err_set(err, SHUB_ENOTFOUND,
                         "delivery end: no pending delivery of %s to '%s'", text,
                         recipient);
        }
        return rc;
    }
    shub_delivery_t d = {
        .event_id = *id,
        .recipient = recipient,
        .sender = (const char *)sqlite3_column_text(st, 0),
        .event_type = (const char *)sqlite3_column_text(st, 1),
        .agreement = (const char *)sqlite3_column_text(st, 2),
        .agreement_version = (uint32_t)sqlite3_column_int64(st, 3),
        .flow = (const char *)sqlite3_column_text(st, 4),
        .state = state,
    };
    fn(&d, ctx);
    sqlite3_reset(st);
    return shub_store_delivery_finish(s, id, recipient, state, reason, now_ms, err);
}

/* ---- agreements ---------------------------------------------------------- */

int shub_store_agreement_seen(shub_store_t *s, const char *id, uint32_t version,
                              const char *content_hash, const char *title,
                              const char *status, int64_t valid_from, int64_t valid_until,
                              int64_t review, int64_t now_ms, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!id || !content_hash)
        return shub_err_set(err, SHUB_EINVAL,
                            "agreement seen: missing id or content hash");
    if ((rc = shub_store_stmt(s, ST_AGREEMENT, &st, err)))
        return rc;
    if (bind_text(st, 1, id) || sqlite3_bind_int64(st, 2, version) ||
        bind_text(st, 3, content_hash) || bind_text(st, 4, title) ||
        bind_text(st, 5, status) || bind_opt_int(st, 6, valid_from) ||
        bind_opt_int(st, 7, valid_until) || bind_opt_int(st, 8, review) ||
        sqlite3_bind_int64(st, 9, now_ms))
        return shub_store_db_fail(s, err, "agreement seen");
    return step_done(s, st, "agreement seen", err);
}
