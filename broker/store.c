/*
 * store: the schema, group commit, the audit chain, dedupe, receipts, sealed
 * copies, sender updates, checkpoints and witnesses, and the background work
 * (include/sharehub/store.h; docs/internals.md explains the shape).
 *
 * Hot path: the hub calls begin, then per event event_add, audit_append,
 * outcome_put and copy_put, per acknowledgement audit_append, update_add
 * and copy_drop, then commit. Every statement is prepared once and cached;
 * the chain head is kept in memory (re-read after BEGIN IMMEDIATE, one index
 * descent, so it cannot drift from the file); text is interned in memory so
 * an audit row binds small integers; and nothing on the commit path is
 * indexed beyond each table's own key. The audit tools' indexes (audit_find)
 * are filled behind the chain by shub_store_maintain, and WAL checkpoints run
 * on a thread and connection of their own, so the hub's loop never waits for
 * them.
 */
#include "store_internal.h"

#include "sharehub/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/*
 * The schema, version 2. Times are ms since the Unix epoch; ids are the 16
 * id bytes; every "INT name" column is an id into `names`.
 */
static const char schema_sql[] =
    /* Facts about the file: created_at, checkpoint_public_key (hex),
     * checkpoint_ms (the signing interval verify judges the tail by),
     * subject_key_id (a hash of the subject key: one key per store). */
    "CREATE TABLE meta(\n"
    "    key TEXT PRIMARY KEY,\n"
    "    value TEXT NOT NULL\n"
    ") WITHOUT ROWID;\n"

    /* Every distinct text the other tables refer to, stored once. */
    "CREATE TABLE names(\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    text TEXT NOT NULL UNIQUE\n"
    ");\n"

    /* Every agreement version the broker has loaded, by content hash. */
    "CREATE TABLE agreement_versions(\n"
    "    vid INTEGER PRIMARY KEY,\n"
    "    id TEXT NOT NULL,\n"
    "    version INTEGER NOT NULL,\n"
    "    content_hash TEXT NOT NULL,\n"
    "    title TEXT,\n"
    "    status TEXT,\n"
    "    valid_from INTEGER,\n"
    "    valid_until INTEGER,\n"
    "    review INTEGER,\n"
    "    first_loaded_at INTEGER NOT NULL,\n"
    "    UNIQUE(id, version, content_hash)\n"
    ");\n"

    /* Dedupe: every event id ever accepted, kept forever (UUIDv7 ids are
     * time-ordered, so inserts append to the B-tree). */
    "CREATE TABLE events(\n"
    "    event_id BLOB PRIMARY KEY,\n"
    "    sender INTEGER NOT NULL,\n"
    "    received_at INTEGER NOT NULL\n"
    ") WITHOUT ROWID;\n"

    /* The audit log. action and decision are names ("decide", "allow"); the
     * canonical encoding (store_internal.h) hashes the resolved text, so an
     * edit of names is an edit of every row that uses the name. agreement is
     * an agreement_versions row. seq is the rowid: paging by seq costs one
     * descent, and no other index is maintained on the commit path. */
    "CREATE TABLE audit(\n"
    "    seq INTEGER PRIMARY KEY,\n"
    "    at INTEGER NOT NULL,\n"
    "    action INTEGER NOT NULL,\n"
    "    event_id BLOB,\n"
    "    event_type INTEGER,\n"
    "    sender INTEGER,\n"
    "    recipient INTEGER,\n"
    "    decision INTEGER NOT NULL,\n"
    "    reason INTEGER,\n"
    "    explanation INTEGER,\n"
    "    agreement INTEGER,\n"
    "    flow INTEGER,\n"
    "    purpose INTEGER,\n"
    "    legal_basis INTEGER,\n"
    "    consent INTEGER,\n"
    "    override INTEGER,\n"
    "    area INTEGER,\n"
    "    occurred INTEGER,\n"
    "    reply_to BLOB,\n"
    "    fields INTEGER,\n"
    "    fields_shared INTEGER,\n"
    "    fields_stripped INTEGER,\n"
    "    facts INTEGER,\n"
    "    payload_hash BLOB,\n"
    "    subject_hash BLOB,\n"
    "    case_hash BLOB,\n"
    "    actor_hash BLOB,\n"
    "    row_hash BLOB NOT NULL\n"
    ");\n"

    /* The audit tools' filters, filled behind the chain (maintain): a copy
     * of each row's filter columns with the indexes a filtered page needs.
     * An index on a rowid table ends with the rowid, so each is (column,
     * seq): a page newest or oldest first is one descent and a walk. */
    "CREATE TABLE audit_find(\n"
    "    seq INTEGER PRIMARY KEY,\n"
    "    event_id BLOB,\n"
    "    sender INTEGER,\n"
    "    recipient INTEGER,\n"
    "    agreement INTEGER,\n"
    "    event_type INTEGER,\n"
    "    decision INTEGER,\n"
    "    reason INTEGER,\n"
    "    case_hash BLOB,\n"
    "    subject_hash BLOB\n"
    ");\n"
    "CREATE INDEX find_event ON audit_find(event_id);\n"
    "CREATE INDEX find_sender ON audit_find(sender);\n"
    "CREATE INDEX find_recipient ON audit_find(recipient);\n"
    "CREATE INDEX find_agreement ON audit_find(agreement) WHERE agreement IS NOT NULL;\n"
    "CREATE INDEX find_type ON audit_find(event_type);\n"
    "CREATE INDEX find_reason ON audit_find(reason) WHERE reason IS NOT NULL;\n"
    "CREATE INDEX find_case ON audit_find(case_hash) WHERE case_hash IS NOT NULL;\n"
    "CREATE INDEX find_subject ON audit_find(subject_hash) WHERE subject_hash IS NOT NULL;\n"

    /* Receipts: one row per (event, recipient), denied ones included, so a
     * resent SHARE gets its outcomes. state: 1 allowed (pending or
     * acknowledged: the hub's memory knows which), 4 denied, 5 dead. */
    "CREATE TABLE outcomes(\n"
    "    event_id BLOB NOT NULL,\n"
    "    recipient INTEGER NOT NULL,\n"
    "    state INTEGER NOT NULL,\n"
    "    reason INTEGER,\n"
    "    detail INTEGER,\n"
    "    agreement INTEGER,\n"
    "    flow INTEGER,\n"
    "    PRIMARY KEY(event_id, recipient)\n"
    ") WITHOUT ROWID;\n"

    /* Pending copies, each sealed to its recipient (the store never sees
     * plaintext), append-only and deleted by runs of seq once acknowledged
     * or dead. Everything the hub needs to rebuild its pending set. */
    "CREATE TABLE sealed(\n"
    "    seq INTEGER PRIMARY KEY,\n"
    "    event_id BLOB NOT NULL,\n"
    "    recipient INTEGER NOT NULL,\n"
    "    sender INTEGER NOT NULL,\n"
    "    event_type INTEGER NOT NULL,\n"
    "    agreement INTEGER NOT NULL,\n"
    "    flow INTEGER NOT NULL,\n"
    "    area INTEGER,\n"
    "    purpose INTEGER,\n"
    "    basis INTEGER,\n"
    "    fields_shared INTEGER,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    copy BLOB NOT NULL\n"
    ");\n"

    /* Later outcomes a sender has not confirmed yet; seq is the audit row
     * that recorded each, so seqs grow and are never reused. */
    "CREATE TABLE updates(\n"
    "    sender INTEGER NOT NULL,\n"
    "    seq INTEGER NOT NULL,\n"
    "    event_id BLOB NOT NULL,\n"
    "    recipient INTEGER NOT NULL,\n"
    "    state INTEGER NOT NULL,\n"
    "    reason INTEGER,\n"
    "    detail INTEGER,\n"
    "    agreement INTEGER,\n"
    "    flow INTEGER,\n"
    "    PRIMARY KEY(sender, seq)\n"
    ") WITHOUT ROWID;\n"

    /* Signed chain heads: Ed25519 over "sharehub-checkpoint-v1" || upto_seq
     * || head_hash || at. The public key is kept per row, so a key rotation
     * leaves old checkpoints checkable. */
    "CREATE TABLE checkpoints(\n"
    "    seq INTEGER PRIMARY KEY,\n"
    "    upto_seq INTEGER NOT NULL,\n"
    "    head_hash BLOB NOT NULL,\n"
    "    at INTEGER NOT NULL,\n"
    "    public_key BLOB NOT NULL,\n"
    "    signature BLOB NOT NULL\n"
    ");\n"
    "CREATE INDEX checkpoints_upto ON checkpoints(upto_seq);\n"

    /* Countersignatures: an organisation's agent checked the checkpoint up
     * to upto_seq and keeps it (witness.h says what was signed). */
    "CREATE TABLE witnesses(\n"
    "    org INTEGER NOT NULL,\n"
    "    upto_seq INTEGER NOT NULL,\n"
    "    head_hash BLOB NOT NULL,\n"
    "    at INTEGER NOT NULL,\n"
    "    public_key BLOB NOT NULL,\n"
    "    signature BLOB NOT NULL,\n"
    "    received_at INTEGER NOT NULL,\n"
    "    PRIMARY KEY(org, upto_seq)\n"
    ") WITHOUT ROWID;\n";

/* Notices the hub has sent on its own account (an agreement expiring soon),
 * one per kind and subject, so that each is sent once however often the
 * broker restarts. Added to store 2 files as they are opened: a table of its
 * own, outside the audit chain (each notice is also an audit row). */
static const char notices_sql[] = "CREATE TABLE IF NOT EXISTS notices(\n"
                                  "    kind TEXT NOT NULL,\n"
                                  "    subject TEXT NOT NULL,\n"
                                  "    recipient TEXT NOT NULL,\n"
                                  "    event_id BLOB NOT NULL,\n"
                                  "    at INTEGER NOT NULL,\n"
                                  "    PRIMARY KEY(kind, subject)\n"
                                  ") WITHOUT ROWID;\n";

#define COPY_COLUMNS                                                                     \
    "seq, event_id, recipient, sender, event_type, agreement, flow, area, purpose, "     \
    "basis, fields_shared, created_at"
#define UPDATE_COLUMNS                                                                   \
    "sender, seq, event_id, recipient, state, reason, detail, agreement, flow"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_HEAD] = "SELECT (SELECT seq FROM audit ORDER BY seq DESC LIMIT 1),"
                " (SELECT row_hash FROM audit ORDER BY seq DESC LIMIT 1),"
                " (SELECT upto_seq FROM checkpoints ORDER BY seq DESC LIMIT 1),"
                " (SELECT at FROM audit WHERE seq = 1 + coalesce((SELECT upto_seq FROM"
                " checkpoints ORDER BY seq DESC LIMIT 1), 0))",
    [ST_NAME_ADD] = "INSERT INTO names(text) VALUES(?1)",
    [ST_EVENT_ADD] = "INSERT INTO events(event_id, sender, received_at)"
                     " VALUES(?1, ?2, ?3) ON CONFLICT(event_id) DO NOTHING",
    [ST_EVENT_SENDER] = "SELECT sender FROM events WHERE event_id = ?1",
    [ST_AUDIT_INSERT] = "INSERT INTO audit(" SHUB_AUDIT_TABLE_COLUMNS ")"
                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                        " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26,"
                        " ?27, ?28)",
    [ST_AUDIT_READ] = "SELECT " SHUB_AUDIT_TABLE_COLUMNS " FROM audit WHERE seq > ?1"
                      " ORDER BY seq LIMIT ?2",
    [ST_CHECKPOINT_INSERT] = "INSERT INTO checkpoints(upto_seq, head_hash, at, public_key,"
                             " signature) VALUES(?1, ?2, ?3, ?4, ?5)",
    [ST_CHECKPOINT_LATEST] = "SELECT upto_seq, head_hash, at, public_key, signature"
                             " FROM checkpoints ORDER BY seq DESC LIMIT 1",
    [ST_OUTCOME_PUT] = "INSERT INTO outcomes(event_id, recipient, state, reason, detail,"
                       " agreement, flow) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_OUTCOME_DEAD] = "UPDATE outcomes SET state = 5, reason = ?3, detail = ?4"
                        " WHERE event_id = ?1 AND recipient = ?2 AND state = 1",
    [ST_OUTCOMES] = "SELECT recipient, state, reason, detail, agreement, flow"
                    " FROM outcomes WHERE event_id = ?1",
    [ST_COPY_PUT] = "INSERT INTO sealed(event_id, recipient, sender, event_type,"
                    " agreement, flow, area, purpose, basis, fields_shared, created_at,"
                    " copy) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [ST_COPY_SEALED] = "SELECT copy FROM sealed WHERE seq = ?1",
    [ST_COPY_DROP] = "DELETE FROM sealed WHERE seq BETWEEN ?1 AND ?2",
    [ST_COPIES] = "SELECT " COPY_COLUMNS " FROM sealed ORDER BY seq",
    [ST_UPDATE_ADD] = "INSERT INTO updates(" UPDATE_COLUMNS ")"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_UPDATES] = "SELECT " UPDATE_COLUMNS " FROM updates WHERE sender = ?1 AND seq > ?2"
                   " ORDER BY seq LIMIT ?3",
    [ST_UPDATES_CONFIRM] = "DELETE FROM updates WHERE sender = ?1 AND seq <= ?2",
    [ST_WITNESS_ADD] = "INSERT INTO witnesses(org, upto_seq, head_hash, at, public_key,"
                       " signature, received_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7"
                       " WHERE EXISTS (SELECT 1 FROM checkpoints WHERE upto_seq = ?2"
                       " AND head_hash = ?3 AND at = ?4)"
                       " ON CONFLICT DO NOTHING",
    [ST_AGREEMENT_ADD] = "INSERT INTO agreement_versions(id, version, content_hash, title,"
                         " status, valid_from, valid_until, review, first_loaded_at)"
                         " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                         " ON CONFLICT DO NOTHING",
    [ST_AGREEMENT_FIND] = "SELECT vid FROM agreement_versions WHERE id = ?1"
                          " AND version = ?2 AND content_hash = ?3",
    [ST_INDEX_UPTO] = "SELECT coalesce(max(seq), 0) FROM audit_find",
    [ST_INDEX_FILL] = "INSERT INTO audit_find(seq, event_id, sender, recipient, agreement,"
                      " event_type, decision, reason, case_hash, subject_hash)"
                      " SELECT seq, event_id, sender, recipient, agreement, event_type,"
                      " decision, reason, case_hash, subject_hash FROM audit"
                      " WHERE seq > ?1 ORDER BY seq LIMIT ?2",
};

static const uint8_t zero_hash[32];

/* ---- canonical row encoding (shared with verify.c) --------------------- */

#define CANON_TAG "sharehub-audit-v2"

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

void shub_store_row_hash(const uint8_t prev[32], const canon_val_t vals[SHUB_AUDIT_NCOLS],
                         uint8_t out[32])
{
    canon_t c;
    crypto_generichash_init(&c.h, NULL, 0, 32);
    c.n = 0;
    canon_put(&c, prev, 32);
    canon_put(&c, CANON_TAG, sizeof CANON_TAG - 1);
    for (int i = 0; i < SHUB_AUDIT_NCOLS; i++) {
        const canon_val_t *v = &vals[i];
        uint8_t head[1 + 8];
        head[0] = (uint8_t)v->type;
        switch (v->type) {
        case CANON_INT:
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

/* ---- statements and errors ---------------------------------------------- */

static void names_forget_added(shub_store_t *s);

/* Back to what the last commit left: the head, and nothing of what the
 * transaction interned, recorded or dropped. */
static void reset_to_commit(shub_store_t *s)
{
    s->head_seq = s->committed_seq;
    memcpy(s->head_hash, s->committed_hash, 32);
    s->checkpoint_upto = s->committed_checkpoint_upto;
    s->unsigned_at = s->committed_unsigned_at;
    s->n_agreements = s->committed_agreements;
    s->n_drops = 0;
    names_forget_added(s);
}

int shub_store_db_fail(shub_store_t *s, shub_err_t *err, const char *what)
{
    shub_err_set(err, SHUB_EDB, "%s: %s", what, sqlite3_errmsg(s->db));
    if (s->in_tx && sqlite3_get_autocommit(s->db)) {
        /* SQLite gave the transaction up itself (SQLITE_FULL, IOERR). */
        s->in_tx = false;
        reset_to_commit(s);
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

/* 0 is "none" for ids, versions and optional times: stored as NULL. */
static int bind_opt_int(sqlite3_stmt *st, int i, int64_t v)
{
    return v ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
}

static int bind_id(sqlite3_stmt *st, int i, const shub_id_t *id)
{
    return sqlite3_bind_blob(st, i, id->bytes, SHUB_ID_SIZE, SQLITE_STATIC);
}

static int bind_opt_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    return p ? sqlite3_bind_blob(st, i, p, (int)n, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static bool id_is_zero(const shub_id_t *id)
{
    static const uint8_t zero[SHUB_ID_SIZE];
    return memcmp(id->bytes, zero, SHUB_ID_SIZE) == 0;
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

static int grow(void **arr, size_t *cap, size_t need, size_t width)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *p = shub_realloc(*arr, n * width);
    if (!p)
        return SHUB_ENOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

/* ---- interned names ------------------------------------------------------ */

static uint64_t text_hash(const char *t, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: short keys, no adversary gain
                                            beyond a slower probe */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)t[i];
        h *= 1099511628211ULL;
    }
    return h | 1; /* never 0 */
}

static int64_t slot_find(const names_t *nm, const char *t, size_t n, uint64_t h,
                         size_t *slot)
{
    size_t mask = nm->n_slots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const name_slot_t *e = &nm->slots[i];
        if (e->id == 0) {
            *slot = i;
            return 0;
        }
        if (e->hash == h && nm->len[e->id] == n && memcmp(nm->text[e->id], t, n) == 0) {
            *slot = i;
            return e->id;
        }
    }
}

static int slots_rebuild(names_t *nm, size_t want)
{
    size_t n = 1024;
    while (n < want * 2)
        n *= 2;
    name_slot_t *slots = shub_calloc(n, sizeof *slots);
    if (!slots)
        return SHUB_ENOMEM;
    shub_free(nm->slots);
    nm->slots = slots;
    nm->n_slots = n;
    nm->used = 0;
    for (int64_t id = 1; id <= nm->max_id; id++) {
        if (!nm->text[id])
            continue;
        size_t slot;
        uint64_t h = text_hash(nm->text[id], nm->len[id]);
        slot_find(nm, nm->text[id], nm->len[id], h, &slot);
        nm->slots[slot] = (name_slot_t){h, id};
        nm->used++;
    }
    return 0;
}

/* Records text as name id (both maps). */
static int names_set(names_t *nm, int64_t id, const char *t, size_t n)
{
    if (id <= 0 || (size_t)id >= SIZE_MAX / sizeof(char *) - 1)
        return SHUB_EINVAL;
    if ((size_t)id >= nm->cap_id) {
        size_t cap = nm->cap_id ? nm->cap_id : 256;
        while (cap <= (size_t)id)
            cap *= 2;
        const char **text = shub_realloc(nm->text, cap * sizeof *text);
        if (!text)
            return SHUB_ENOMEM;
        nm->text = text;
        uint32_t *len = shub_realloc(nm->len, cap * sizeof *len);
        if (!len)
            return SHUB_ENOMEM;
        nm->len = len;
        memset(nm->text + nm->cap_id, 0, (cap - nm->cap_id) * sizeof *text);
        memset(nm->len + nm->cap_id, 0, (cap - nm->cap_id) * sizeof *len);
        nm->cap_id = cap;
    }
    char *copy = shub_arena_strndup(nm->arena, t, n);
    if (!copy)
        return SHUB_ENOMEM;
    nm->text[id] = copy;
    nm->len[id] = (uint32_t)n;
    if (id > nm->max_id)
        nm->max_id = id;
    if (nm->slots && (nm->used + 1) * 2 < nm->n_slots) {
        size_t slot;
        uint64_t h = text_hash(t, n);
        if (slot_find(nm, t, n, h, &slot) == 0) {
            nm->slots[slot] = (name_slot_t){h, id};
            nm->used++;
        }
        return 0;
    }
    return slots_rebuild(nm, nm->used + 1);
}

static void names_forget_added(shub_store_t *s)
{
    names_t *nm = &s->names;
    if (nm->n_added == 0)
        return;
    for (size_t i = 0; i < nm->n_added; i++) {
        int64_t id = nm->added[i];
        nm->text[id] = NULL; /* the string stays in the arena: pointers handed out
                                in the failed transaction must not dangle */
        nm->len[id] = 0;
    }
    nm->n_added = 0;
    while (nm->max_id > 0 && !nm->text[nm->max_id])
        nm->max_id--;
    slots_rebuild(nm, nm->used); /* out of memory leaves the old map: a miss
                                    re-interns, a stale hit cannot happen as the
                                    text of a forgotten id is NULL */
}

const char *shub_store_name(const shub_store_t *s, int64_t id)
{
    if (id <= 0 || id > s->names.max_id)
        return NULL;
    return s->names.text[id];
}

int64_t shub_store_name_find(shub_store_t *s, const char *text)
{
    size_t slot;
    if (!text || !s->names.slots)
        return 0;
    size_t n = strlen(text);
    return slot_find(&s->names, text, n, text_hash(text, n), &slot);
}

/* The id of text, interning it (inside the transaction) if new; 0 for NULL.
 * *interned (may be NULL) gets the stable copy. */
static int intern(shub_store_t *s, const char *text, int64_t *id, const char **interned,
                  shub_err_t *err)
{
    if (!text) {
        *id = 0;
        if (interned)
            *interned = NULL;
        return 0;
    }
    size_t n = strnlen(text, SHUB_STORE_MAX_TEXT + 1);
    if (n > SHUB_STORE_MAX_TEXT)
        return shub_err_set(err, SHUB_EINVAL, "text of %zu bytes exceeds limit %d", n,
                            SHUB_STORE_MAX_TEXT);
    size_t slot;
    uint64_t h = text_hash(text, n);
    int64_t found = s->names.slots ? slot_find(&s->names, text, n, h, &slot) : 0;
    if (found) {
        *id = found;
        if (interned)
            *interned = s->names.text[found];
        return 0;
    }
    if (s->readonly || !s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "intern: no transaction is open");
    sqlite3_stmt *st = NULL;
    int rc = shub_store_stmt(s, ST_NAME_ADD, &st, err);
    if (rc)
        return rc;
    if (sqlite3_bind_text(st, 1, text, (int)n, SQLITE_STATIC))
        return shub_store_db_fail(s, err, "intern");
    if ((rc = step_done(s, st, "intern", err)))
        return rc;
    int64_t nid = sqlite3_last_insert_rowid(s->db);
    if (grow((void **)&s->names.added, &s->names.cap_added, s->names.n_added + 1,
             sizeof *s->names.added) ||
        names_set(&s->names, nid, text, n))
        return shub_err_set(err, SHUB_ENOMEM, "intern: out of memory");
    s->names.added[s->names.n_added++] = nid;
    *id = nid;
    if (interned)
        *interned = s->names.text[nid];
    return 0;
}

static const agreement_ref_t *agreement_by_vid(const shub_store_t *s, int64_t vid)
{
    /* vids are rowids in insertion order and the array is in that order:
     * bisect. */
    size_t lo = 0, hi = s->n_agreements;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->agreements[mid].vid < vid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n_agreements && s->agreements[lo].vid == vid ? &s->agreements[lo]
                                                                 : NULL;
}

const agreement_ref_t *shub_store_agreement_ref(const shub_store_t *s, int64_t vid)
{
    return agreement_by_vid(s, vid);
}

static int agreement_add_ref(shub_store_t *s, int64_t vid, const char *id,
                             uint32_t version, const char *hash)
{
    if (grow((void **)&s->agreements, &s->cap_agreements, s->n_agreements + 1,
             sizeof *s->agreements))
        return SHUB_ENOMEM;
    agreement_ref_t *a = &s->agreements[s->n_agreements];
    a->id = shub_arena_strndup(s->names.arena, id, strlen(id));
    a->hash = shub_arena_strndup(s->names.arena, hash, strlen(hash));
    if (!a->id || !a->hash)
        return SHUB_ENOMEM;
    a->vid = vid;
    a->version = version;
    s->n_agreements++;
    return 0;
}

/* The agreement_versions row of (id, version, hash); with no hash, the
 * newest row of (id, version). Records one if the broker never loaded it (a
 * row must still name its text). 0 for no id. */
static int agreement_vid(shub_store_t *s, const char *id, uint32_t version,
                         const char *hash, int64_t *vid, shub_err_t *err)
{
    *vid = 0;
    if (!id)
        return 0;
    for (size_t i = s->n_agreements; i-- > 0;) {
        const agreement_ref_t *a = &s->agreements[i];
        if (a->version == version && strcmp(a->id, id) == 0 &&
            (!hash || strcmp(a->hash, hash) == 0)) {
            *vid = a->vid;
            return 0;
        }
    }
    if (!hash)
        hash = "";
    int rc = shub_store_agreement_seen(s, id, version, hash, NULL, NULL, 0, 0, 0,
                                       shub_now_ms(), err);
    if (rc)
        return rc;
    for (size_t i = s->n_agreements; i-- > 0;) {
        const agreement_ref_t *a = &s->agreements[i];
        if (a->version == version && strcmp(a->id, id) == 0 && strcmp(a->hash, hash) == 0) {
            *vid = a->vid;
            return 0;
        }
    }
    return shub_err_set(err, SHUB_EDB, "agreement '%s' v%u could not be recorded", id,
                        version);
}

int shub_store_names_load(shub_store_t *s, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT id, text FROM names ORDER BY id", -1, &st,
                                NULL);
    if (rc != SQLITE_OK)
        return shub_store_db_fail(s, err, "read names");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *t = (const char *)sqlite3_column_text(st, 1);
        if (!t || id <= 0 || id > (int64_t)1 << 40)
            continue; /* verify reports the rows that use it */
        if (id <= s->names.max_id && s->names.text[id])
            continue; /* already known */
        if (names_set(&s->names, id, t, (size_t)sqlite3_column_bytes(st, 1))) {
            sqlite3_finalize(st);
            return shub_err_set(err, SHUB_ENOMEM, "read names: out of memory");
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return shub_store_db_fail(s, err, "read names");
    if (!s->names.slots && slots_rebuild(&s->names, 16))
        return shub_err_set(err, SHUB_ENOMEM, "read names: out of memory");

    rc = sqlite3_prepare_v2(s->db,
                            "SELECT vid, id, version, content_hash FROM agreement_versions"
                            " WHERE vid > ?1 ORDER BY vid",
                            -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(
            st, 1, s->n_agreements ? s->agreements[s->n_agreements - 1].vid : 0);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return shub_store_db_fail(s, err, "read agreement versions");
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 1);
        const char *h = (const char *)sqlite3_column_text(st, 3);
        if (agreement_add_ref(s, sqlite3_column_int64(st, 0), id ? id : "",
                              (uint32_t)sqlite3_column_int64(st, 2), h ? h : "")) {
            sqlite3_finalize(st);
            return shub_err_set(err, SHUB_ENOMEM, "read agreements: out of memory");
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return shub_store_db_fail(s, err, "read agreement versions");
    s->committed_agreements = s->n_agreements;
    return 0;
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
                       "sharehub store v2: audit (hash chain over interned names), "
                       "events (dedupe), outcomes (receipts), sealed (pending copies), "
                       "updates (to senders), checkpoints, witnesses, audit_find",
                       err)) ||
        (rc = exec(s, "COMMIT", "create schema", err)))
        goto fail;
    return 0;
fail:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Refuses files that are not ours, or of another version; creates a new one. */
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
    if (version == 1)
        return shub_err_set(
            err, SHUB_EDB,
            "'%s' is a version 1 store, which this sharehub does not write: verify it "
            "with the sharehub that wrote it, keep it as the archive of that period, "
            "and give the broker a new database file",
            path);
    if (version != SHUB_STORE_SCHEMA_VERSION)
        return shub_err_set(err, SHUB_EDB,
                            "'%s' has store schema version %lld, expected %d", path,
                            (long long)version, SHUB_STORE_SCHEMA_VERSION);
    return 0;
}

static int set_pragmas(shub_store_t *s, const shub_store_opts_t *opts, shub_err_t *err)
{
    char sql[256];
    const unsigned char *mode;
    sqlite3_stmt *st = NULL;
    int rc;
    if (s->readonly)
        return exec(s, "PRAGMA cache_size = -16384", "set pragmas", err);
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
    /* WAL checkpoints run on their own thread (below), so none on commit;
     * journal_size_limit shrinks the WAL back after a burst, so a disk that
     * filled up gets its space back once the burst is checkpointed. 16 MiB
     * of page cache keeps the B-tree edges a turn appends to in memory and
     * bounds resident memory with a large backlog. */
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous = %s; PRAGMA wal_autocheckpoint = 0;"
             " PRAGMA journal_size_limit = %lld; PRAGMA cache_size = -16384;"
             " PRAGMA temp_store = MEMORY",
             opts->synchronous_full ? "FULL" : "NORMAL", (long long)SHUB_STORE_WAL_LIMIT);
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
    s->checkpoint_upto = s->committed_checkpoint_upto = sqlite3_column_int64(st, 2);
    s->unsigned_at = s->committed_unsigned_at = sqlite3_column_int64(st, 3);
    sqlite3_reset(st);
    return 0;
}

/* Records the subject key's id on first use and refuses a different key after:
 * rows hashed under two keys would hide half a subject from an access request. */
static int check_keys(shub_store_t *s, shub_err_t *err)
{
    static const char label[] = "sharehub-subject-key-id";
    char want[65], have[80], interval[32];
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
        snprintf(interval, sizeof interval, "%lld", (long long)s->checkpoint_ms);
        rc = meta_get(s, "checkpoint_ms", have, sizeof have, err);
        if (rc == SHUB_ENOTFOUND || (rc == 0 && strcmp(have, interval) != 0))
            rc = meta_put(s, "checkpoint_ms", interval, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* A second broker on the same file would interleave two chains: the lock file
 * beside the database says who holds it. flock is released by the kernel when
 * the holder dies, so a kill -9 leaves nothing to clean up. */
static int take_lock(shub_store_t *s, const char *path, shub_err_t *err)
{
    char lock[4200], holder[32] = "";
    snprintf(lock, sizeof lock, "%s.lock", path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return shub_err_set(err, SHUB_EIO, "cannot open lock file '%s': %s", lock,
                            strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return shub_err_set(err, SHUB_EBUSY,
                                "'%s' is in use by another broker (pid %s, holding '%s')",
                                path, holder[0] ? holder : "unknown", lock);
        return shub_err_set(err, SHUB_EIO, "cannot lock '%s': %s", lock, strerror(e));
    }
    snprintf(holder, sizeof holder, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 ||
        pwrite(fd, holder, strlen(holder), 0) != (ssize_t)strlen(holder)) {
        /* The lock holds regardless; only the pid in messages is lost. */
    }
    s->lock_fd = fd;
    return 0;
}

static void *ckpt_main(void *arg);

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
    s->lock_fd = -1;
    s->readonly = opts->readonly;
    s->checkpoint_every =
        opts->checkpoint_every ? opts->checkpoint_every : SHUB_STORE_CHECKPOINT_EVERY;
    s->checkpoint_ms = opts->checkpoint_ms ? opts->checkpoint_ms : SHUB_STORE_CHECKPOINT_MS;
    s->names.arena = shub_arena_new(16384);
    s->path = shub_malloc(strlen(path) + 1);
    if (!s->names.arena || !s->path) {
        rc = shub_err_set(err, SHUB_ENOMEM, "open store: out of memory");
        goto fail;
    }
    memcpy(s->path, path, strlen(path) + 1);
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
    if (opts->exclusive && !s->readonly && (rc = take_lock(s, path, err)))
        goto fail;

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
        (rc = load_head(s, err)) || (rc = check_keys(s, err)) ||
        (!s->readonly && (rc = exec(s, notices_sql, "create notices", err))))
        goto fail;
    if (!s->readonly) {
        if ((rc = shub_store_names_load(s, err)))
            goto fail;
        if (pthread_mutex_init(&s->ckpt_mu, NULL) != 0 ||
            pthread_cond_init(&s->ckpt_cv, NULL) != 0 ||
            pthread_create(&s->ckpt_thread, NULL, ckpt_main, s) != 0) {
            rc = shub_err_set(err, SHUB_ENOMEM, "open store: cannot start its thread");
            goto fail;
        }
        s->ckpt_running = true;
    }
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
    if (s->ckpt_running) {
        pthread_mutex_lock(&s->ckpt_mu);
        s->ckpt_stop = true;
        pthread_cond_signal(&s->ckpt_cv);
        pthread_mutex_unlock(&s->ckpt_mu);
        pthread_join(s->ckpt_thread, NULL);
        pthread_cond_destroy(&s->ckpt_cv);
        pthread_mutex_destroy(&s->ckpt_mu);
    }
    if (s->db && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    sqlite3_close(s->db);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    shub_arena_destroy(&s->names.arena);
    shub_free(s->names.text);
    shub_free(s->names.len);
    shub_free(s->names.slots);
    shub_free(s->names.added);
    shub_free(s->agreements);
    shub_free(s->drops);
    shub_free(s->path);
    sodium_memzero(s, sizeof *s);
    shub_free(s);
    *store_p = NULL;
}

/* ---- the WAL checkpointer ------------------------------------------------- */

/* A passive checkpoint copies committed WAL pages into the database without
 * blocking the writer or readers; on its own connection and thread it costs
 * the hub's loop nothing. The WAL file restarts from its beginning once a
 * checkpoint has caught up, so under steady traffic it stays a few turns
 * long. */
#define CKPT_EVERY_MS 250

static void *ckpt_main(void *arg)
{
    shub_store_t *s = arg;
    sqlite3 *db = NULL;
    /* A connection learns that a file is in WAL mode when it first reads it;
     * until then a checkpoint on it does nothing. */
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(db, "SELECT 1 FROM sqlite_schema LIMIT 1", NULL, NULL, NULL) !=
            SQLITE_OK) {
        sqlite3_close(db);
        db = NULL;
    }
    pthread_mutex_lock(&s->ckpt_mu);
    while (!s->ckpt_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += CKPT_EVERY_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->ckpt_cv, &s->ckpt_mu, &until);
        if (s->ckpt_stop || !db)
            continue;
        pthread_mutex_unlock(&s->ckpt_mu);
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&s->ckpt_mu);
    }
    pthread_mutex_unlock(&s->ckpt_mu);
    sqlite3_close(db);
    return NULL;
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
    s->n_drops = 0;
    s->names.n_added = 0;
    /* Under the write lock the file is the truth: re-read the head. */
    if ((rc = load_head(s, err))) {
        shub_store_rollback(s);
        return rc;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Deletes the dropped copies as runs of consecutive seqs: acknowledgements
 * mostly arrive in the order copies were stored, so a turn's worth is one or
 * a few range deletes rather than one B-tree search each. */
static int delete_drops(shub_store_t *s, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (s->n_drops == 0)
        return 0;
    if ((rc = shub_store_stmt(s, ST_COPY_DROP, &st, err)))
        return rc;
    qsort(s->drops, s->n_drops, sizeof *s->drops, cmp_i64);
    for (size_t i = 0; i < s->n_drops;) {
        size_t j = i;
        while (j + 1 < s->n_drops && s->drops[j + 1] <= s->drops[j] + 1)
            j++;
        if (sqlite3_bind_int64(st, 1, s->drops[i]) ||
            sqlite3_bind_int64(st, 2, s->drops[j]))
            return shub_store_db_fail(s, err, "drop sealed copies");
        if ((rc = step_done(s, st, "drop sealed copies", err)))
            return rc;
        i = j + 1;
    }
    s->n_drops = 0;
    return 0;
}

int shub_store_commit(shub_store_t *s, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "commit: no transaction is open");
    if ((rc = delete_drops(s, err)) || (rc = shub_store_stmt(s, ST_COMMIT, &st, err)) ||
        (rc = step_done(s, st, "commit", err))) {
        shub_store_rollback(s);
        return rc;
    }
    s->in_tx = false;
    s->committed_seq = s->head_seq;
    memcpy(s->committed_hash, s->head_hash, 32);
    s->committed_checkpoint_upto = s->checkpoint_upto;
    s->committed_unsigned_at = s->unsigned_at;
    s->committed_agreements = s->n_agreements;
    s->names.n_added = 0;
    return 0;
}

void shub_store_rollback(shub_store_t *s)
{
    if (!s)
        return;
    if (s->db && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->in_tx = false;
    reset_to_commit(s);
}

int shub_store_checkpoint(shub_store_t *s, int64_t now_ms, bool force,
                          shub_signed_head_t *out, bool *made, shub_err_t *err)
{
    shub_signed_head_t cp;
    sqlite3_stmt *st = NULL;
    int rc;
    if (made)
        *made = false;
    if (!s->has_sign_key)
        return shub_err_set(err, SHUB_EINVAL, "checkpoint: no signing key");
    if (!s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "checkpoint: no transaction is open");
    int64_t rows = s->head_seq - s->checkpoint_upto;
    if (rows <= 0)
        return 0;
    /* Due when enough rows wait, or the oldest unsigned row has waited the
     * interval: so a crash leaves at most about one interval unsigned. */
    if (!force && rows < (int64_t)s->checkpoint_every &&
        now_ms - s->unsigned_at < s->checkpoint_ms)
        return 0;
    if (shub_checkpoint_sign(s->head_seq, s->head_hash, now_ms, s->sign_secret,
                             s->sign_public, &cp) != 0)
        return shub_err_set(err, SHUB_ECRYPTO, "checkpoint: signing failed");
    if ((rc = shub_store_stmt(s, ST_CHECKPOINT_INSERT, &st, err)))
        return rc;
    if (sqlite3_bind_int64(st, 1, s->head_seq) ||
        sqlite3_bind_blob(st, 2, s->head_hash, 32, SQLITE_STATIC) ||
        sqlite3_bind_int64(st, 3, now_ms) ||
        sqlite3_bind_blob(st, 4, s->sign_public, 32, SQLITE_STATIC) ||
        sqlite3_bind_blob(st, 5, cp.sig, sizeof cp.sig, SQLITE_STATIC))
        return shub_store_db_fail(s, err, "checkpoint");
    if ((rc = step_done(s, st, "checkpoint", err)))
        return rc;
    s->checkpoint_upto = s->head_seq;
    s->unsigned_at = 0;
    if (out)
        *out = cp;
    if (made)
        *made = true;
    return 0;
}

bool shub_store_checkpoint_due(const shub_store_t *s, int64_t now_ms)
{
    int64_t rows = s->head_seq - s->checkpoint_upto;
    return s->has_sign_key && rows > 0 &&
           (rows >= (int64_t)s->checkpoint_every || now_ms - s->unsigned_at >= s->checkpoint_ms);
}

int shub_store_checkpoint_latest(shub_store_t *s, shub_signed_head_t *out,
                                 shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = shub_store_stmt(s, ST_CHECKPOINT_LATEST, &st, err);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return shub_err_set(err, SHUB_ENOTFOUND, "no checkpoint yet");
    }
    if (rc != SQLITE_ROW) {
        shub_store_db_fail(s, err, "read checkpoint");
        sqlite3_reset(st);
        return SHUB_EDB;
    }
    const void *head = sqlite3_column_blob(st, 1);
    const void *key = sqlite3_column_blob(st, 3);
    const void *sig = sqlite3_column_blob(st, 4);
    if (!head || sqlite3_column_bytes(st, 1) != 32 || !key ||
        sqlite3_column_bytes(st, 3) != 32 || !sig || sqlite3_column_bytes(st, 4) != 64) {
        sqlite3_reset(st);
        return shub_err_set(err, SHUB_EDB, "the newest checkpoint is malformed");
    }
    out->seq = sqlite3_column_int64(st, 0);
    memcpy(out->head, head, 32);
    out->at_ms = sqlite3_column_int64(st, 2);
    memcpy(out->key, key, 32);
    memcpy(out->sig, sig, 64);
    sqlite3_reset(st);
    return 0;
}

int shub_store_maintain(shub_store_t *s, bool idle, bool *more, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    int64_t upto = 0;
    if (more)
        *more = false;
    if (s->readonly)
        return 0;
    if (s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "maintain: a transaction is open");
    if ((rc = shub_store_begin(s, err)))
        return rc;
    if ((rc = shub_store_stmt(s, ST_INDEX_UPTO, &st, err)))
        goto fail;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = shub_store_db_fail(s, err, "index audit rows");
        sqlite3_reset(st);
        goto fail;
    }
    upto = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (upto < s->head_seq) {
        if ((rc = shub_store_stmt(s, ST_INDEX_FILL, &st, err)))
            goto fail;
        if (sqlite3_bind_int64(st, 1, upto) ||
            sqlite3_bind_int64(st, 2, SHUB_STORE_INDEX_BATCH)) {
            rc = shub_store_db_fail(s, err, "index audit rows");
            goto fail;
        }
        if ((rc = step_done(s, st, "index audit rows", err)))
            goto fail;
        if (more)
            *more = upto + SHUB_STORE_INDEX_BATCH < s->head_seq;
    }
    if ((rc = shub_store_commit(s, err)))
        return rc;
    if (idle)
        sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    return 0;
fail:
    shub_store_rollback(s);
    return rc;
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
                         int64_t now_ms, char *sender_out, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    char text[SHUB_ID_TEXT];
    int64_t sid;
    int rc;
    if (!id || !sender)
        return shub_err_set(err, SHUB_EINVAL, "event add: missing id or sender");
    if (!s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "event add: no transaction is open");
    if ((rc = intern(s, sender, &sid, NULL, err)) ||
        (rc = shub_store_stmt(s, ST_EVENT_ADD, &st, err)))
        return rc;
    if (bind_id(st, 1, id) || sqlite3_bind_int64(st, 2, sid) ||
        sqlite3_bind_int64(st, 3, now_ms))
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
    const char *first = shub_store_name(s, sqlite3_column_int64(st, 0));
    if (sender_out)
        snprintf(sender_out, SHUB_MSG_MAX_NAME + 1, "%s", first ? first : "");
    shub_id_format(id, text);
    shub_err_set(err, SHUB_EEXIST, "event %s already seen from '%s'", text,
                 first ? first : "");
    sqlite3_reset(st);
    return SHUB_EEXIST;
}

/* ---- audit log ---------------------------------------------------------- */

static const char *const ref_tags[] = {
    [SHUB_REF_SUBJECT] = NULL, /* subjects predate the tags: the bare keyed hash */
    [SHUB_REF_CASE] = "case:",
    [SHUB_REF_ACTOR] = "actor:",
};

void shub_store_ref_hash_key(const uint8_t key[32], shub_ref_kind_t kind, const char *ref,
                             uint8_t out[32])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, key, 32, 32);
    if (ref_tags[kind])
        crypto_generichash_update(&h, (const uint8_t *)ref_tags[kind],
                                  strlen(ref_tags[kind]));
    crypto_generichash_update(&h, (const uint8_t *)ref, strlen(ref));
    crypto_generichash_final(&h, out, 32);
}

int shub_store_ref_hash(const shub_store_t *s, shub_ref_kind_t kind, const char *ref,
                        uint8_t out[32])
{
    if (!s || !ref || !s->has_subject_key || (unsigned)kind > SHUB_REF_ACTOR)
        return SHUB_EINVAL;
    shub_store_ref_hash_key(s->subject_key, kind, ref, out);
    return 0;
}

static void canon_text(canon_val_t *v, const char *t)
{
    v->type = t ? CANON_TEXT : CANON_NULL;
    v->p = t;
    v->n = t ? strlen(t) : 0;
}

static void canon_blob(canon_val_t *v, const void *p, size_t n)
{
    v->type = p ? CANON_BLOB : CANON_NULL;
    v->p = p;
    v->n = p ? n : 0;
}

static void canon_int(canon_val_t *v, int64_t i, bool present)
{
    v->type = present ? CANON_INT : CANON_NULL;
    v->i = i;
}

/* The text columns of an audit row: where each lives in shub_audit_row_t, its
 * canonical column and its table column (1-based bind index). */
static const struct {
    int col, bind;
    size_t off;
} audit_texts[] = {
#define T(c, b, f) {c, b, offsetof(shub_audit_row_t, f)}
    T(AC_ACTION, 3, action),
    T(AC_EVENT_TYPE, 5, event_type),
    T(AC_SENDER, 6, sender),
    T(AC_RECIPIENT, 7, recipient),
    T(AC_DECISION, 8, decision),
    T(AC_REASON, 9, reason),
    T(AC_EXPLANATION, 10, explanation),
    T(AC_FLOW, 12, flow),
    T(AC_PURPOSE, 13, purpose),
    T(AC_LEGAL_BASIS, 14, legal_basis),
    T(AC_CONSENT, 15, consent),
    T(AC_OVERRIDE, 16, override),
    T(AC_AREA, 17, area),
    T(AC_FIELDS, 20, fields),
    T(AC_FIELDS_SHARED, 21, fields_shared),
    T(AC_FIELDS_STRIPPED, 22, fields_stripped),
    T(AC_FACTS, 23, facts),
#undef T
};
#define N_AUDIT_TEXTS (sizeof audit_texts / sizeof audit_texts[0])

int shub_store_audit_append(shub_store_t *s, shub_audit_row_t *row, shub_err_t *err)
{
    canon_val_t v[SHUB_AUDIT_NCOLS];
    int64_t ids[N_AUDIT_TEXTS], vid = 0;
    uint8_t subject[32], case_h[32], actor[32], row_hash[32];
    sqlite3_stmt *st = NULL;
    int rc;

    if (!row || !row->action || !row->decision || !row->action[0] || !row->decision[0])
        return shub_err_set(err, SHUB_EINVAL,
                            "audit append: action and decision are required");
    if (!s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "audit append: no transaction is open");
    if ((row->subject_ref || row->case_ref || row->actor_ref) && !s->has_subject_key)
        return shub_err_set(err, SHUB_EINVAL,
                            "audit append: a reference given but the store has no "
                            "subject key");
    memset(v, 0, sizeof v);
    for (size_t i = 0; i < N_AUDIT_TEXTS; i++) {
        const char *t = *(const char *const *)((const char *)row + audit_texts[i].off);
        if ((rc = intern(s, t, &ids[i], NULL, err)))
            return rc;
        canon_text(&v[audit_texts[i].col], t);
    }
    if ((rc = agreement_vid(s, row->agreement, row->agreement_version,
                            row->agreement_hash, &vid, err)))
        return rc;
    const agreement_ref_t *ag = vid ? agreement_by_vid(s, vid) : NULL;
    canon_int(&v[AC_SEQ], s->head_seq + 1, true);
    canon_int(&v[AC_AT], row->at_ms, true);
    bool has_id = !id_is_zero(&row->event_id);
    canon_blob(&v[AC_EVENT_ID], has_id ? row->event_id.bytes : NULL, SHUB_ID_SIZE);
    canon_text(&v[AC_AGREEMENT], ag ? ag->id : NULL);
    canon_int(&v[AC_AGREEMENT_VERSION], ag ? ag->version : 0, ag != NULL);
    canon_text(&v[AC_AGREEMENT_HASH], ag ? ag->hash : NULL);
    canon_int(&v[AC_OCCURRED], row->occurred_ms, row->occurred_ms != 0);
    canon_blob(&v[AC_REPLY_TO], row->reply_to ? row->reply_to->bytes : NULL, SHUB_ID_SIZE);
    canon_blob(&v[AC_PAYLOAD_HASH], row->payload_hash, 32);
    if (row->subject_ref)
        shub_store_ref_hash_key(s->subject_key, SHUB_REF_SUBJECT, row->subject_ref,
                                subject);
    if (row->case_ref)
        shub_store_ref_hash_key(s->subject_key, SHUB_REF_CASE, row->case_ref, case_h);
    if (row->actor_ref)
        shub_store_ref_hash_key(s->subject_key, SHUB_REF_ACTOR, row->actor_ref, actor);
    canon_blob(&v[AC_SUBJECT_HASH], row->subject_ref ? subject : NULL, 32);
    canon_blob(&v[AC_CASE_HASH], row->case_ref ? case_h : NULL, 32);
    if (row->actor_ref && row->actor_clear)
        canon_text(&v[AC_ACTOR_HASH], row->actor_ref); /* the type is hashed too */
    else
        canon_blob(&v[AC_ACTOR_HASH], row->actor_ref ? actor : NULL, 32);
    shub_store_row_hash(s->head_hash, v, row_hash);

    if ((rc = shub_store_stmt(s, ST_AUDIT_INSERT, &st, err)))
        return rc;
    int bad = sqlite3_bind_int64(st, 1, s->head_seq + 1) ||
              sqlite3_bind_int64(st, 2, row->at_ms) ||
              bind_opt_blob(st, 4, v[AC_EVENT_ID].p, SHUB_ID_SIZE) ||
              bind_opt_int(st, 11, vid) || bind_opt_int(st, 18, row->occurred_ms) ||
              bind_opt_blob(st, 19, v[AC_REPLY_TO].p, SHUB_ID_SIZE) ||
              bind_opt_blob(st, 24, row->payload_hash, 32) ||
              bind_opt_blob(st, 25, v[AC_SUBJECT_HASH].p, 32) ||
              bind_opt_blob(st, 26, v[AC_CASE_HASH].p, 32) ||
              (v[AC_ACTOR_HASH].type == CANON_TEXT
                   ? sqlite3_bind_text(st, 27, row->actor_ref, -1, SQLITE_STATIC)
                   : bind_opt_blob(st, 27, v[AC_ACTOR_HASH].p, 32)) ||
              sqlite3_bind_blob(st, 28, row_hash, 32, SQLITE_STATIC);
    for (size_t i = 0; !bad && i < N_AUDIT_TEXTS; i++)
        bad = bind_opt_int(st, audit_texts[i].bind, ids[i]);
    if (bad)
        return shub_store_db_fail(s, err, "audit append");
    if ((rc = step_done(s, st, "audit append", err)))
        return rc;
    if (s->head_seq == s->checkpoint_upto)
        s->unsigned_at = row->at_ms;
    s->head_seq++;
    memcpy(s->head_hash, row_hash, 32);
    row->seq = s->head_seq;
    return 0;
}

/* Column i of the statement as the canonical encoding sees it, for a column
 * that holds a value itself (not a name). */
static void read_plain(sqlite3_stmt *st, int i, canon_val_t *v)
{
    sqlite3_value *x = sqlite3_column_value(st, i);
    switch (sqlite3_value_type(x)) {
    case SQLITE_INTEGER:
        v->type = CANON_INT;
        v->i = sqlite3_value_int64(x);
        break;
    case SQLITE_TEXT:
        v->type = CANON_TEXT;
        v->p = sqlite3_value_text(x);
        v->n = (size_t)sqlite3_value_bytes(x);
        break;
    case SQLITE_BLOB:
        v->type = CANON_BLOB;
        v->p = sqlite3_value_blob(x);
        v->n = (size_t)sqlite3_value_bytes(x);
        break;
    case SQLITE_FLOAT: /* never written: encode so that it cannot match */
        v->type = CANON_TEXT;
        v->p = "#real?";
        v->n = 6;
        break;
    default:
        v->type = CANON_NULL;
        v->p = NULL;
        v->n = 0;
        break;
    }
}

void shub_store_row_values(const shub_store_t *s, sqlite3_stmt *st, int first,
                           canon_val_t vals[SHUB_AUDIT_NCOLS], char scratch[][32],
                           const uint8_t **row_hash, size_t *row_hash_len)
{
    /* table column (from `first`) of each canonical value; -1: from agreement */
    static const int from[SHUB_AUDIT_NCOLS] = {
        [AC_SEQ] = 0,           [AC_AT] = 1,           [AC_ACTION] = 2,
        [AC_EVENT_ID] = 3,      [AC_EVENT_TYPE] = 4,   [AC_SENDER] = 5,
        [AC_RECIPIENT] = 6,     [AC_DECISION] = 7,     [AC_REASON] = 8,
        [AC_EXPLANATION] = 9,   [AC_AGREEMENT] = 10,   [AC_AGREEMENT_VERSION] = -1,
        [AC_AGREEMENT_HASH] = -1, [AC_FLOW] = 11,      [AC_PURPOSE] = 12,
        [AC_LEGAL_BASIS] = 13,  [AC_CONSENT] = 14,     [AC_OVERRIDE] = 15,
        [AC_AREA] = 16,         [AC_OCCURRED] = 17,    [AC_REPLY_TO] = 18,
        [AC_FIELDS] = 19,       [AC_FIELDS_SHARED] = 20, [AC_FIELDS_STRIPPED] = 21,
        [AC_FACTS] = 22,        [AC_PAYLOAD_HASH] = 23, [AC_SUBJECT_HASH] = 24,
        [AC_CASE_HASH] = 25,    [AC_ACTOR_HASH] = 26,
    };
    for (size_t i = 0; i < N_AUDIT_TEXTS; i++) {
        int c = audit_texts[i].col;
        sqlite3_value *x = sqlite3_column_value(st, first + from[c]);
        canon_val_t *v = &vals[c];
        if (sqlite3_value_type(x) == SQLITE_NULL) {
            canon_text(v, NULL);
        } else {
            int64_t id = sqlite3_value_int64(x);
            const char *t = sqlite3_value_type(x) == SQLITE_INTEGER ? shub_store_name(s, id)
                                                                    : NULL;
            if (!t) { /* a name that is not there: the row cannot hash right */
                snprintf(scratch[c], 32, "#%lld?", (long long)id);
                t = scratch[c];
            }
            v->type = CANON_TEXT;
            v->p = t;
            v->n = t == scratch[c] ? strlen(t) : s->names.len[id];
        }
    }
    sqlite3_value *ax = sqlite3_column_value(st, first + from[AC_AGREEMENT]);
    if (sqlite3_value_type(ax) == SQLITE_NULL) {
        canon_text(&vals[AC_AGREEMENT], NULL);
        canon_int(&vals[AC_AGREEMENT_VERSION], 0, false);
        canon_text(&vals[AC_AGREEMENT_HASH], NULL);
    } else {
        int64_t vid = sqlite3_value_int64(ax);
        const agreement_ref_t *a = agreement_by_vid(s, vid);
        if (!a) {
            snprintf(scratch[AC_AGREEMENT], 32, "#%lld?", (long long)vid);
            canon_text(&vals[AC_AGREEMENT], scratch[AC_AGREEMENT]);
            canon_int(&vals[AC_AGREEMENT_VERSION], 0, false);
            canon_text(&vals[AC_AGREEMENT_HASH], NULL);
        } else {
            canon_text(&vals[AC_AGREEMENT], a->id);
            canon_int(&vals[AC_AGREEMENT_VERSION], a->version, true);
            canon_text(&vals[AC_AGREEMENT_HASH], a->hash);
        }
    }
    static const int plain[] = {AC_SEQ,          AC_AT,           AC_EVENT_ID,
                                AC_OCCURRED,     AC_REPLY_TO,     AC_PAYLOAD_HASH,
                                AC_SUBJECT_HASH, AC_CASE_HASH,    AC_ACTOR_HASH};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        read_plain(st, first + from[plain[i]], &vals[plain[i]]);
    if (row_hash) {
        const void *p = sqlite3_column_blob(st, first + 27);
        *row_hash = p;
        *row_hash_len = p ? (size_t)sqlite3_column_bytes(st, first + 27) : 0;
    }
}

static const uint8_t *blob32(const canon_val_t *v)
{
    return v->type == CANON_BLOB && v->n == 32 ? v->p : NULL;
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
    if (s->readonly && (rc = shub_store_names_load(s, err)))
        return rc;
    if ((rc = shub_store_stmt(s, ST_AUDIT_READ, &st, err)))
        return rc;
    if (sqlite3_bind_int64(st, 1, after_seq) ||
        sqlite3_bind_int64(st, 2, limit > INT64_MAX ? INT64_MAX : (int64_t)limit))
        return shub_store_db_fail(s, err, "audit read");
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        canon_val_t v[SHUB_AUDIT_NCOLS];
        char scratch[SHUB_AUDIT_NCOLS][32];
        shub_store_row_values(s, st, 0, v, scratch, NULL, NULL);
        shub_audit_row_t row;
        memset(&row, 0, sizeof row);
        for (size_t i = 0; i < N_AUDIT_TEXTS; i++)
            *(const char **)((char *)&row + audit_texts[i].off) =
                v[audit_texts[i].col].type == CANON_TEXT ? v[audit_texts[i].col].p : NULL;
        row.seq = v[AC_SEQ].i;
        row.at_ms = v[AC_AT].i;
        if (v[AC_EVENT_ID].type == CANON_BLOB && v[AC_EVENT_ID].n == SHUB_ID_SIZE)
            memcpy(row.event_id.bytes, v[AC_EVENT_ID].p, SHUB_ID_SIZE);
        row.agreement = v[AC_AGREEMENT].type == CANON_TEXT ? v[AC_AGREEMENT].p : NULL;
        row.agreement_version =
            v[AC_AGREEMENT_VERSION].type == CANON_INT ? (uint32_t)v[AC_AGREEMENT_VERSION].i
                                                      : 0;
        row.agreement_hash =
            v[AC_AGREEMENT_HASH].type == CANON_TEXT ? v[AC_AGREEMENT_HASH].p : NULL;
        row.occurred_ms = v[AC_OCCURRED].type == CANON_INT ? v[AC_OCCURRED].i : 0;
        row.reply_to = v[AC_REPLY_TO].type == CANON_BLOB && v[AC_REPLY_TO].n == SHUB_ID_SIZE
                           ? (const shub_id_t *)v[AC_REPLY_TO].p
                           : NULL;
        row.payload_hash = blob32(&v[AC_PAYLOAD_HASH]);
        row.subject_hash = blob32(&v[AC_SUBJECT_HASH]);
        row.case_hash = blob32(&v[AC_CASE_HASH]);
        row.actor_hash = blob32(&v[AC_ACTOR_HASH]);
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

/* ---- receipts ------------------------------------------------------------ */

int shub_store_outcome_put(shub_store_t *s, const shub_store_outcome_t *o,
                           shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int64_t rid, reason, detail, flow, vid;
    int rc;
    if (!o || !o->recipient)
        return shub_err_set(err, SHUB_EINVAL, "outcome put: missing recipient");
    if (o->state != SHUB_OUTCOME_QUEUED && o->state != SHUB_OUTCOME_DENIED &&
        o->state != SHUB_OUTCOME_DEAD)
        return shub_err_set(err, SHUB_EINVAL, "outcome put: state '%s' is not stored",
                            shub_outcome_name(o->state));
    if (!s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "outcome put: no transaction is open");
    if ((rc = intern(s, o->recipient, &rid, NULL, err)) ||
        (rc = intern(s, o->reason, &reason, NULL, err)) ||
        (rc = intern(s, o->detail, &detail, NULL, err)) ||
        (rc = intern(s, o->flow, &flow, NULL, err)) ||
        (rc = agreement_vid(s, o->agreement, o->agreement_version, o->agreement_hash, &vid,
                            err)) ||
        (rc = shub_store_stmt(s, ST_OUTCOME_PUT, &st, err)))
        return rc;
    if (bind_id(st, 1, &o->event_id) || sqlite3_bind_int64(st, 2, rid) ||
        sqlite3_bind_int64(st, 3, o->state) || bind_opt_int(st, 4, reason) ||
        bind_opt_int(st, 5, detail) || bind_opt_int(st, 6, vid) ||
        bind_opt_int(st, 7, flow))
        return shub_store_db_fail(s, err, "outcome put");
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
            char text[SHUB_ID_TEXT];
            shub_id_format(&o->event_id, text);
            rc = shub_err_set(err, SHUB_EEXIST,
                              "outcome put: event %s already has a row for '%s'", text,
                              o->recipient);
        } else {
            rc = shub_store_db_fail(s, err, "outcome put");
        }
        sqlite3_reset(st);
        return rc;
    }
    sqlite3_reset(st);
    return 0;
}

int shub_store_outcome_dead(shub_store_t *s, const shub_id_t *id, const char *recipient,
                            const char *reason, const char *detail, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int64_t rid, rsn, det;
    int rc;
    if (!id || !recipient)
        return shub_err_set(err, SHUB_EINVAL, "outcome dead: missing id or recipient");
    if ((rc = intern(s, recipient, &rid, NULL, err)) ||
        (rc = intern(s, reason, &rsn, NULL, err)) ||
        (rc = intern(s, detail, &det, NULL, err)) ||
        (rc = shub_store_stmt(s, ST_OUTCOME_DEAD, &st, err)))
        return rc;
    if (bind_id(st, 1, id) || sqlite3_bind_int64(st, 2, rid) || bind_opt_int(st, 3, rsn) ||
        bind_opt_int(st, 4, det))
        return shub_store_db_fail(s, err, "outcome dead");
    if ((rc = step_done(s, st, "outcome dead", err)))
        return rc;
    if (sqlite3_changes(s->db) == 0) {
        char text[SHUB_ID_TEXT];
        shub_id_format(id, text);
        return shub_err_set(err, SHUB_ENOTFOUND,
                            "outcome dead: no allowed row of %s for '%s'", text, recipient);
    }
    return 0;
}

static int cmp_outcome(const void *a, const void *b)
{
    const shub_store_outcome_t *x = a, *y = b;
    return strcmp(x->recipient, y->recipient);
}

int shub_store_outcomes(shub_store_t *s, const shub_id_t *id, shub_outcome_store_fn *fn,
                        void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    shub_store_outcome_t *rows = NULL;
    size_t n = 0, cap = 0;
    int rc, step;
    if (!id || !fn)
        return shub_err_set(err, SHUB_EINVAL, "outcomes: missing id or callback");
    if ((rc = shub_store_stmt(s, ST_OUTCOMES, &st, err)))
        return rc;
    if (bind_id(st, 1, id))
        return shub_store_db_fail(s, err, "outcomes");
    rc = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow((void **)&rows, &cap, n + 1, sizeof *rows)) {
            rc = shub_err_set(err, SHUB_ENOMEM, "outcomes: out of memory");
            break;
        }
        const agreement_ref_t *a = agreement_by_vid(s, sqlite3_column_int64(st, 4));
        rows[n++] = (shub_store_outcome_t){
            .event_id = *id,
            .recipient = shub_store_name(s, sqlite3_column_int64(st, 0)),
            .state = (shub_outcome_t)sqlite3_column_int(st, 1),
            .reason = shub_store_name(s, sqlite3_column_int64(st, 2)),
            .detail = shub_store_name(s, sqlite3_column_int64(st, 3)),
            .agreement = a ? a->id : NULL,
            .agreement_version = a ? a->version : 0,
            .agreement_hash = a ? a->hash : NULL,
            .flow = shub_store_name(s, sqlite3_column_int64(st, 5)),
        };
        if (!rows[n - 1].recipient)
            rows[n - 1].recipient = "?";
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = shub_store_db_fail(s, err, "outcomes");
    sqlite3_reset(st);
    if (rc == 0 && n > 1)
        qsort(rows, n, sizeof *rows, cmp_outcome);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = fn(&rows[i], ctx);
    shub_free(rows);
    return rc;
}

/* ---- sealed copies --------------------------------------------------------- */

int shub_store_copy_put(shub_store_t *s, shub_store_copy_t *c, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int64_t rid, sid, tid, fid, aid, pid, bid, fsid, vid;
    int rc;
    if (!c || !c->recipient || !c->sender || !c->event_type || !c->agreement || !c->flow ||
        !c->sealed || c->sealed_len == 0)
        return shub_err_set(err, SHUB_EINVAL,
                            "copy put: missing recipient, sender, type, agreement, flow "
                            "or sealed bytes");
    if (c->sealed_len > (size_t)SHUB_MSG_MAX_BIN)
        return shub_err_set(err, SHUB_EINVAL,
                            "copy put: sealed copy of %zu bytes exceeds limit %d",
                            c->sealed_len, SHUB_MSG_MAX_BIN);
    if (!s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "copy put: no transaction is open");
    if ((rc = intern(s, c->recipient, &rid, &c->recipient, err)) ||
        (rc = intern(s, c->sender, &sid, &c->sender, err)) ||
        (rc = intern(s, c->event_type, &tid, &c->event_type, err)) ||
        (rc = intern(s, c->flow, &fid, &c->flow, err)) ||
        (rc = intern(s, c->area, &aid, &c->area, err)) ||
        (rc = intern(s, c->purpose, &pid, &c->purpose, err)) ||
        (rc = intern(s, c->basis, &bid, &c->basis, err)) ||
        (rc = intern(s, c->fields_shared, &fsid, &c->fields_shared, err)) ||
        (rc = agreement_vid(s, c->agreement, c->agreement_version, c->agreement_hash, &vid,
                            err)) ||
        (rc = shub_store_stmt(s, ST_COPY_PUT, &st, err)))
        return rc;
    const agreement_ref_t *a = agreement_by_vid(s, vid);
    if (a) {
        c->agreement = a->id;
        c->agreement_hash = a->hash;
    }
    if (bind_id(st, 1, &c->event_id) || sqlite3_bind_int64(st, 2, rid) ||
        sqlite3_bind_int64(st, 3, sid) || sqlite3_bind_int64(st, 4, tid) ||
        sqlite3_bind_int64(st, 5, vid) || sqlite3_bind_int64(st, 6, fid) ||
        bind_opt_int(st, 7, aid) || bind_opt_int(st, 8, pid) || bind_opt_int(st, 9, bid) ||
        bind_opt_int(st, 10, fsid) || sqlite3_bind_int64(st, 11, c->created_ms) ||
        sqlite3_bind_blob(st, 12, c->sealed, (int)c->sealed_len, SQLITE_STATIC))
        return shub_store_db_fail(s, err, "copy put");
    if ((rc = step_done(s, st, "copy put", err)))
        return rc;
    c->seq = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int shub_store_copy_sealed(shub_store_t *s, int64_t seq, shub_buf_t *out, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = shub_store_stmt(s, ST_COPY_SEALED, &st, err);
    if (rc)
        return rc;
    if (sqlite3_bind_int64(st, 1, seq))
        return shub_store_db_fail(s, err, "read sealed copy");
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = rc == SQLITE_DONE
                 ? shub_err_set(err, SHUB_ENOTFOUND, "no sealed copy %lld", (long long)seq)
                 : shub_store_db_fail(s, err, "read sealed copy");
        sqlite3_reset(st);
        return rc;
    }
    const void *p = sqlite3_column_blob(st, 0);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    out->len = 0;
    rc = p && n ? shub_buf_append(out, p, n) : 0;
    sqlite3_reset(st);
    return rc ? shub_err_set(err, SHUB_ENOMEM, "read sealed copy: out of memory") : 0;
}

int shub_store_copy_drop(shub_store_t *s, int64_t seq, shub_err_t *err)
{
    if (!s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "copy drop: no transaction is open");
    if (grow((void **)&s->drops, &s->cap_drops, s->n_drops + 1, sizeof *s->drops))
        return shub_err_set(err, SHUB_ENOMEM, "copy drop: out of memory");
    s->drops[s->n_drops++] = seq;
    return 0;
}

int shub_store_copies(shub_store_t *s, shub_copy_fn *fn, void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc, step, stop = 0;
    if (!fn)
        return shub_err_set(err, SHUB_EINVAL, "copies: no callback");
    if ((rc = shub_store_stmt(s, ST_COPIES, &st, err)))
        return rc;
    while (!stop && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const void *id = sqlite3_column_blob(st, 1);
        const agreement_ref_t *a = agreement_by_vid(s, sqlite3_column_int64(st, 5));
        shub_store_copy_t c = {
            .seq = sqlite3_column_int64(st, 0),
            .recipient = shub_store_name(s, sqlite3_column_int64(st, 2)),
            .sender = shub_store_name(s, sqlite3_column_int64(st, 3)),
            .event_type = shub_store_name(s, sqlite3_column_int64(st, 4)),
            .agreement = a ? a->id : NULL,
            .agreement_hash = a ? a->hash : NULL,
            .agreement_version = a ? a->version : 0,
            .flow = shub_store_name(s, sqlite3_column_int64(st, 6)),
            .area = shub_store_name(s, sqlite3_column_int64(st, 7)),
            .purpose = shub_store_name(s, sqlite3_column_int64(st, 8)),
            .basis = shub_store_name(s, sqlite3_column_int64(st, 9)),
            .fields_shared = shub_store_name(s, sqlite3_column_int64(st, 10)),
            .created_ms = sqlite3_column_int64(st, 11),
        };
        if (!id || sqlite3_column_bytes(st, 1) != SHUB_ID_SIZE || !c.recipient ||
            !c.sender || !c.event_type || !c.agreement || !c.flow) {
            sqlite3_reset(st);
            return shub_err_set(err, SHUB_EDB,
                                "sealed copy %lld is malformed (names missing)",
                                (long long)c.seq);
        }
        memcpy(c.event_id.bytes, id, SHUB_ID_SIZE);
        stop = fn(&c, ctx);
    }
    if (!stop && step != SQLITE_DONE) {
        rc = shub_store_db_fail(s, err, "read sealed copies");
        sqlite3_reset(st);
        return rc;
    }
    sqlite3_reset(st);
    return stop;
}

/* ---- updates to senders ------------------------------------------------------ */

int shub_store_update_add(shub_store_t *s, const shub_store_update_t *u, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int64_t sid, rid, rsn, det, vid, fid;
    int rc;
    if (!u || !u->sender || !u->recipient || u->seq <= 0)
        return shub_err_set(err, SHUB_EINVAL, "update add: missing sender, recipient or seq");
    if ((rc = intern(s, u->sender, &sid, NULL, err)) ||
        (rc = intern(s, u->recipient, &rid, NULL, err)) ||
        (rc = intern(s, u->reason, &rsn, NULL, err)) ||
        (rc = intern(s, u->detail, &det, NULL, err)) ||
        (rc = intern(s, u->flow, &fid, NULL, err)) ||
        (rc = agreement_vid(s, u->agreement, u->agreement_version, NULL, &vid, err)) ||
        (rc = shub_store_stmt(s, ST_UPDATE_ADD, &st, err)))
        return rc;
    if (sqlite3_bind_int64(st, 1, sid) || sqlite3_bind_int64(st, 2, u->seq) ||
        bind_id(st, 3, &u->event_id) || sqlite3_bind_int64(st, 4, rid) ||
        sqlite3_bind_int64(st, 5, u->state) || bind_opt_int(st, 6, rsn) ||
        bind_opt_int(st, 7, det) || bind_opt_int(st, 8, vid) || bind_opt_int(st, 9, fid))
        return shub_store_db_fail(s, err, "update add");
    return step_done(s, st, "update add", err);
}

int shub_store_updates(shub_store_t *s, const char *sender, int64_t after, size_t limit,
                       shub_update_fn *fn, void *ctx, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc, step, stop = 0;
    int64_t sid = shub_store_name_find(s, sender);
    if (!fn || !sender)
        return shub_err_set(err, SHUB_EINVAL, "updates: missing sender or callback");
    if (sid == 0 || limit == 0)
        return 0;
    if ((rc = shub_store_stmt(s, ST_UPDATES, &st, err)))
        return rc;
    if (sqlite3_bind_int64(st, 1, sid) || sqlite3_bind_int64(st, 2, after) ||
        sqlite3_bind_int64(st, 3, limit > INT64_MAX ? INT64_MAX : (int64_t)limit))
        return shub_store_db_fail(s, err, "updates");
    while (!stop && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const void *id = sqlite3_column_blob(st, 2);
        const agreement_ref_t *a = agreement_by_vid(s, sqlite3_column_int64(st, 7));
        shub_store_update_t u = {
            .sender = sender,
            .seq = sqlite3_column_int64(st, 1),
            .recipient = shub_store_name(s, sqlite3_column_int64(st, 3)),
            .state = (shub_outcome_t)sqlite3_column_int(st, 4),
            .reason = shub_store_name(s, sqlite3_column_int64(st, 5)),
            .detail = shub_store_name(s, sqlite3_column_int64(st, 6)),
            .agreement = a ? a->id : NULL,
            .agreement_version = a ? a->version : 0,
            .flow = shub_store_name(s, sqlite3_column_int64(st, 8)),
        };
        if (!id || sqlite3_column_bytes(st, 2) != SHUB_ID_SIZE || !u.recipient)
            continue; /* malformed: skipped, never sent half */
        memcpy(u.event_id.bytes, id, SHUB_ID_SIZE);
        stop = fn(&u, ctx);
    }
    if (!stop && step != SQLITE_DONE) {
        rc = shub_store_db_fail(s, err, "updates");
        sqlite3_reset(st);
        return rc;
    }
    sqlite3_reset(st);
    return stop;
}

int shub_store_updates_confirm(shub_store_t *s, const char *sender, int64_t upto,
                               shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    int64_t sid = sender ? shub_store_name_find(s, sender) : 0;
    if (!s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "confirm: no transaction is open");
    if (sid == 0)
        return 0;
    if ((rc = shub_store_stmt(s, ST_UPDATES_CONFIRM, &st, err)))
        return rc;
    if (sqlite3_bind_int64(st, 1, sid) || sqlite3_bind_int64(st, 2, upto))
        return shub_store_db_fail(s, err, "confirm updates");
    return step_done(s, st, "confirm updates", err);
}

/* ---- witnesses ------------------------------------------------------------- */

int shub_store_witness_add(shub_store_t *s, const char *org, const shub_signed_head_t *w,
                           int64_t now_ms, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int64_t oid;
    int rc;
    if (!org || !w)
        return shub_err_set(err, SHUB_EINVAL, "witness add: missing org or witness");
    if ((rc = intern(s, org, &oid, NULL, err)) ||
        (rc = shub_store_stmt(s, ST_WITNESS_ADD, &st, err)))
        return rc;
    if (sqlite3_bind_int64(st, 1, oid) || sqlite3_bind_int64(st, 2, w->seq) ||
        sqlite3_bind_blob(st, 3, w->head, 32, SQLITE_STATIC) ||
        sqlite3_bind_int64(st, 4, w->at_ms) ||
        sqlite3_bind_blob(st, 5, w->key, 32, SQLITE_STATIC) ||
        sqlite3_bind_blob(st, 6, w->sig, 64, SQLITE_STATIC) ||
        sqlite3_bind_int64(st, 7, now_ms))
        return shub_store_db_fail(s, err, "witness add");
    if ((rc = step_done(s, st, "witness add", err)))
        return rc;
    if (sqlite3_changes(s->db) == 0) {
        /* a repeat, or a checkpoint this log never signed */
        sqlite3_stmt *q = NULL;
        bool known = false;
        if (sqlite3_prepare_v2(s->db,
                               "SELECT 1 FROM witnesses WHERE org = ?1 AND upto_seq = ?2"
                               " AND head_hash = ?3 AND at = ?4",
                               -1, &q, NULL) == SQLITE_OK &&
            sqlite3_bind_int64(q, 1, oid) == SQLITE_OK &&
            sqlite3_bind_int64(q, 2, w->seq) == SQLITE_OK &&
            sqlite3_bind_blob(q, 3, w->head, 32, SQLITE_STATIC) == SQLITE_OK &&
            sqlite3_bind_int64(q, 4, w->at_ms) == SQLITE_OK)
            known = sqlite3_step(q) == SQLITE_ROW;
        sqlite3_finalize(q);
        if (!known)
            return shub_err_set(err, SHUB_ENOTFOUND,
                                "witness add: no checkpoint of rows up to %lld at %lld",
                                (long long)w->seq, (long long)w->at_ms);
    }
    return 0;
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
    if (s->readonly)
        return shub_err_set(err, SHUB_EPROTO, "agreement seen: store is open read-only");
    if ((rc = shub_store_stmt(s, ST_AGREEMENT_ADD, &st, err)))
        return rc;
    if (bind_text(st, 1, id) || sqlite3_bind_int64(st, 2, version) ||
        bind_text(st, 3, content_hash) || bind_text(st, 4, title) ||
        bind_text(st, 5, status) || bind_opt_int(st, 6, valid_from) ||
        bind_opt_int(st, 7, valid_until) || bind_opt_int(st, 8, review) ||
        sqlite3_bind_int64(st, 9, now_ms))
        return shub_store_db_fail(s, err, "agreement seen");
    if ((rc = step_done(s, st, "agreement seen", err)))
        return rc;
    if (sqlite3_changes(s->db) == 0)
        return 0; /* known: the cache has it */
    int64_t vid = sqlite3_last_insert_rowid(s->db);
    if (agreement_add_ref(s, vid, id, version, content_hash))
        return shub_err_set(err, SHUB_ENOMEM, "agreement seen: out of memory");
    if (!s->in_tx)
        s->committed_agreements = s->n_agreements; /* autocommitted */
    return 0;
}

/* ---- notices from the hub ------------------------------------------------ */

int shub_store_notice_sent(shub_store_t *s, const char *kind, const char *subject,
                           bool *sent, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    if (!kind || !subject || !sent)
        return shub_err_set(err, SHUB_EINVAL, "notice: missing kind or subject");
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM notices WHERE kind = ?1 AND subject = ?2",
                           -1, &st, NULL) != SQLITE_OK ||
        bind_text(st, 1, kind) || bind_text(st, 2, subject)) {
        sqlite3_finalize(st);
        return shub_store_db_fail(s, err, "notice lookup");
    }
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return shub_store_db_fail(s, err, "notice lookup");
    *sent = rc == SQLITE_ROW;
    return 0;
}

int shub_store_notice_add(shub_store_t *s, const char *kind, const char *subject,
                          const char *recipient, const shub_id_t *id, int64_t at_ms,
                          shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    if (!kind || !subject || !recipient || !id)
        return shub_err_set(err, SHUB_EINVAL, "notice: missing argument");
    if (!s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "notice: no transaction is open");
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO notices(kind, subject, recipient, event_id, at)"
                           " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                           -1, &st, NULL) != SQLITE_OK ||
        bind_text(st, 1, kind) || bind_text(st, 2, subject) || bind_text(st, 3, recipient) ||
        bind_id(st, 4, id) || sqlite3_bind_int64(st, 5, at_ms)) {
        sqlite3_finalize(st);
        return shub_store_db_fail(s, err, "notice add");
    }
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : shub_store_db_fail(s, err, "notice add");
}

/* ---- retention ------------------------------------------------------------- */

int shub_store_purge_outcomes(shub_store_t *s, int64_t before_ms, size_t max, size_t *n,
                              shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    if (n)
        *n = 0;
    if (!s->in_tx)
        return shub_err_set(err, SHUB_EPROTO, "purge: no transaction is open");
    /* events.received_at is not indexed: one scan an hour of a table of ids
     * and times, rather than an index every SHARE would pay for. */
    if (sqlite3_prepare_v2(
            s->db,
            "DELETE FROM outcomes WHERE event_id IN (SELECT e.event_id FROM events e"
            " WHERE e.received_at < ?1 AND EXISTS (SELECT 1 FROM outcomes o WHERE"
            " o.event_id = e.event_id) AND NOT EXISTS (SELECT 1 FROM sealed c WHERE"
            " c.event_id = e.event_id) LIMIT ?2)",
            -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 1, before_ms) ||
        sqlite3_bind_int64(st, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max)) {
        sqlite3_finalize(st);
        return shub_store_db_fail(s, err, "purge receipts");
    }
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return shub_store_db_fail(s, err, "purge receipts");
    if (n)
        *n = (size_t)sqlite3_changes(s->db);
    return 0;
}
