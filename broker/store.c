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
#include "sharehub/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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
     * seq): a page newest or oldest first is one descent and a walk. Case
     * and subject hashes are scattered keys: their indexes lead with the
     * row's epoch (FIND_EPOCH_ROWS rows each), so a row lands in the newest
     * epoch's part of the tree, whose size is bounded, and what these two
     * indexes add to an append does not grow with the log; a lookup seeks
     * once per epoch. */
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
    "    subject_hash BLOB,\n"
    "    epoch INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE INDEX find_event ON audit_find(event_id);\n"
    "CREATE INDEX find_sender ON audit_find(sender);\n"
    "CREATE INDEX find_recipient ON audit_find(recipient);\n"
    "CREATE INDEX find_agreement ON audit_find(agreement) WHERE agreement IS NOT NULL;\n"
    "CREATE INDEX find_type ON audit_find(event_type);\n"
    "CREATE INDEX find_reason ON audit_find(reason) WHERE reason IS NOT NULL;\n"
    FIND_EPOCH_INDEXES

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

/* Deadlines of allowed shares (a flow's ack_within_hours, act_within_hours):
 * one row per (event, recipient, kind), kind 1 acknowledge, 2 act. Written
 * when the share is allowed, when the recipient answers it, and when the hub
 * escalates it; live state like `outcomes`, not part of the chain (the
 * escalation itself is an audit row). Made on open when missing, so a store
 * written before deadlines were tracked gains it. */
static const char deadlines_sql[] =
    "CREATE TABLE IF NOT EXISTS deadlines(\n"
    "    event_id BLOB NOT NULL,\n"
    "    recipient INTEGER NOT NULL,\n"
    "    kind INTEGER NOT NULL,\n"
    "    sender INTEGER NOT NULL,\n"
    "    event_type INTEGER NOT NULL,\n"
    "    agreement INTEGER NOT NULL,\n"
    "    flow INTEGER NOT NULL,\n"
    "    area INTEGER,\n"
    "    hours INTEGER NOT NULL,\n"
    "    started_at INTEGER NOT NULL,\n"
    "    due_at INTEGER NOT NULL,\n"
    "    answered_at INTEGER,\n"
    "    escalated_at INTEGER,\n"
    "    PRIMARY KEY(event_id, recipient, kind)\n"
    ") WITHOUT ROWID;\n";

#define DEADLINE_COLUMNS                                                                 \
    "event_id, recipient, kind, sender, event_type, agreement, flow, area, hours, "       \
    "started_at, due_at, answered_at, escalated_at"

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

/* The same two for PostgreSQL, also made on open when missing; the
 * deadlines' view for the report (SQLite's is made per connection, in
 * query.c) comes with its table, made only if missing: replacing it would
 * wait for every reader of it, and a standby taking over must not. */
static const char deadlines_sql_pg[] =
    "CREATE TABLE IF NOT EXISTS deadlines(\n"
    "    event_id BYTEA NOT NULL,\n"
    "    recipient BIGINT NOT NULL,\n"
    "    kind BIGINT NOT NULL,\n"
    "    sender BIGINT NOT NULL,\n"
    "    event_type BIGINT NOT NULL,\n"
    "    agreement BIGINT NOT NULL,\n"
    "    flow BIGINT NOT NULL,\n"
    "    area BIGINT,\n"
    "    hours BIGINT NOT NULL,\n"
    "    started_at BIGINT NOT NULL,\n"
    "    due_at BIGINT NOT NULL,\n"
    "    answered_at BIGINT,\n"
    "    escalated_at BIGINT,\n"
    "    PRIMARY KEY(event_id, recipient, kind)\n"
    ");\n"
    "DO $$BEGIN IF to_regclass('deadlines_t') IS NULL THEN "
    SHUB_STORE_DEADLINES_VIEW_SQL("", "CREATE VIEW ") "; END IF; END$$;\n";
static const char notices_sql_pg[] = "CREATE TABLE IF NOT EXISTS notices(\n"
                                     "    kind TEXT NOT NULL,\n"
                                     "    subject TEXT NOT NULL,\n"
                                     "    recipient TEXT NOT NULL,\n"
                                     "    event_id BYTEA NOT NULL,\n"
                                     "    at BIGINT NOT NULL,\n"
                                     "    PRIMARY KEY(kind, subject)\n"
                                     ");\n";

/*
 * The same schema for PostgreSQL: the same tables, columns and keys, with
 * its types (bigint for every integer and name id, bytea for ids and hashes)
 * and identity and conflict clauses where SQLite has rowids. The application
 * id and schema version, which SQLite keeps in the file header, are rows of
 * meta. The views the audit tools read (query.c) are part of the schema
 * here; SQLite's are made per connection, in its temp schema.
 */
static const char *const schema_sql_pg[] = {
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);\n",
    "CREATE TABLE names(id BIGINT PRIMARY KEY, text TEXT NOT NULL UNIQUE);\n",
    "CREATE TABLE agreement_versions(\n"
    "    vid BIGINT PRIMARY KEY,\n"
    "    id TEXT NOT NULL,\n"
    "    version BIGINT NOT NULL,\n"
    "    content_hash TEXT NOT NULL,\n"
    "    title TEXT,\n"
    "    status TEXT,\n"
    "    valid_from BIGINT,\n"
    "    valid_until BIGINT,\n"
    "    review BIGINT,\n"
    "    first_loaded_at BIGINT NOT NULL,\n"
    "    UNIQUE(id, version, content_hash)\n"
    ");\n",
    "CREATE TABLE events(\n"
    "    event_id BYTEA PRIMARY KEY,\n"
    "    sender BIGINT NOT NULL,\n"
    "    received_at BIGINT NOT NULL\n"
    ");\n",
    "CREATE TABLE audit(\n"
    "    seq BIGINT PRIMARY KEY,\n"
    "    at BIGINT NOT NULL,\n"
    "    action BIGINT NOT NULL,\n"
    "    event_id BYTEA,\n"
    "    event_type BIGINT,\n"
    "    sender BIGINT,\n"
    "    recipient BIGINT,\n"
    "    decision BIGINT NOT NULL,\n"
    "    reason BIGINT,\n"
    "    explanation BIGINT,\n"
    "    agreement BIGINT,\n"
    "    flow BIGINT,\n"
    "    purpose BIGINT,\n"
    "    legal_basis BIGINT,\n"
    "    consent BIGINT,\n"
    "    override BIGINT,\n"
    "    area BIGINT,\n"
    "    occurred BIGINT,\n"
    "    reply_to BYTEA,\n"
    "    fields BIGINT,\n"
    "    fields_shared BIGINT,\n"
    "    fields_stripped BIGINT,\n"
    "    facts BIGINT,\n"
    "    payload_hash BYTEA,\n"
    "    subject_hash BYTEA,\n"
    "    case_hash BYTEA,\n"
    "    actor_hash BYTEA,\n"
    "    row_hash BYTEA NOT NULL,\n"
    "    actor_text TEXT\n" /* SHUB_AUDIT_READ_COLUMNS_PG */
    ");\n",
    "CREATE TABLE audit_find(\n"
    "    seq BIGINT PRIMARY KEY,\n"
    "    event_id BYTEA,\n"
    "    sender BIGINT,\n"
    "    recipient BIGINT,\n"
    "    agreement BIGINT,\n"
    "    event_type BIGINT,\n"
    "    decision BIGINT,\n"
    "    reason BIGINT,\n"
    "    case_hash BYTEA,\n"
    "    subject_hash BYTEA,\n"
    "    epoch BIGINT NOT NULL DEFAULT 0\n"
    ");\n",
    "CREATE INDEX find_event ON audit_find(event_id, seq);\n",
    "CREATE INDEX find_sender ON audit_find(sender, seq);\n",
    "CREATE INDEX find_recipient ON audit_find(recipient, seq);\n",
    "CREATE INDEX find_agreement ON audit_find(agreement, seq) WHERE agreement IS NOT "
    "NULL;\n",
    "CREATE INDEX find_type ON audit_find(event_type, seq);\n",
    "CREATE INDEX find_reason ON audit_find(reason, seq) WHERE reason IS NOT NULL;\n",
    FIND_EPOCH_INDEXES,
    "CREATE TABLE outcomes(\n"
    "    event_id BYTEA NOT NULL,\n"
    "    recipient BIGINT NOT NULL,\n"
    "    state BIGINT NOT NULL,\n"
    "    reason BIGINT,\n"
    "    detail BIGINT,\n"
    "    agreement BIGINT,\n"
    "    flow BIGINT,\n"
    "    PRIMARY KEY(event_id, recipient)\n"
    ");\n",
    "CREATE TABLE sealed(\n"
    "    seq BIGINT PRIMARY KEY,\n"
    "    event_id BYTEA NOT NULL,\n"
    "    recipient BIGINT NOT NULL,\n"
    "    sender BIGINT NOT NULL,\n"
    "    event_type BIGINT NOT NULL,\n"
    "    agreement BIGINT NOT NULL,\n"
    "    flow BIGINT NOT NULL,\n"
    "    area BIGINT,\n"
    "    purpose BIGINT,\n"
    "    basis BIGINT,\n"
    "    fields_shared BIGINT,\n"
    "    created_at BIGINT NOT NULL,\n"
    "    copy BYTEA NOT NULL\n"
    ");\n",
    "CREATE TABLE updates(\n"
    "    sender BIGINT NOT NULL,\n"
    "    seq BIGINT NOT NULL,\n"
    "    event_id BYTEA NOT NULL,\n"
    "    recipient BIGINT NOT NULL,\n"
    "    state BIGINT NOT NULL,\n"
    "    reason BIGINT,\n"
    "    detail BIGINT,\n"
    "    agreement BIGINT,\n"
    "    flow BIGINT,\n"
    "    PRIMARY KEY(sender, seq)\n"
    ");\n",
    "CREATE TABLE checkpoints(\n"
    "    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
    "    upto_seq BIGINT NOT NULL,\n"
    "    head_hash BYTEA NOT NULL,\n"
    "    at BIGINT NOT NULL,\n"
    "    public_key BYTEA NOT NULL,\n"
    "    signature BYTEA NOT NULL\n"
    ");\n",
    "CREATE INDEX checkpoints_upto ON checkpoints(upto_seq);\n",
    "CREATE TABLE witnesses(\n"
    "    org BIGINT NOT NULL,\n"
    "    upto_seq BIGINT NOT NULL,\n"
    "    head_hash BYTEA NOT NULL,\n"
    "    at BIGINT NOT NULL,\n"
    "    public_key BYTEA NOT NULL,\n"
    "    signature BYTEA NOT NULL,\n"
    "    received_at BIGINT NOT NULL,\n"
    "    PRIMARY KEY(org, upto_seq)\n"
    ");\n",
    SHUB_STORE_VIEWS_SQL("", "CREATE VIEW ",
                         "coalesce(a.actor_text, encode(a.actor_hash, 'hex'))") ";\n",
    deadlines_sql_pg,
    notices_sql_pg,
};

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
    [ST_NAME_ADD] = "INSERT INTO names(id, text) VALUES(?1, ?2)",
    [ST_NAME_ID] = "SELECT id FROM names WHERE text = ?1",
    [ST_NAME_TEXT] = "SELECT text FROM names WHERE id = ?1",
    [ST_EVENT_ADD] = "INSERT INTO events(event_id, sender, received_at)"
                     " VALUES(?1, ?2, ?3)",
    [ST_EVENT_SENDER] = "SELECT sender FROM events WHERE event_id = ?1",
    [ST_EVENT_LAST] = "SELECT event_id FROM events ORDER BY event_id DESC LIMIT 1",
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
                    " copy, seq) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
                    " ?13)",
    [ST_COPY_SEALED] = "SELECT copy FROM sealed WHERE seq = ?1",
    [ST_COPY_DROP] = "DELETE FROM sealed WHERE seq BETWEEN ?1 AND ?2",
    [ST_COPIES] = "SELECT " COPY_COLUMNS " FROM sealed ORDER BY seq",
    [ST_UPDATE_ADD] = "INSERT INTO updates(" UPDATE_COLUMNS ")"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_UPDATES] = "SELECT " UPDATE_COLUMNS " FROM updates WHERE sender = ?1 AND seq > ?2"
                   " ORDER BY seq LIMIT ?3",
    [ST_UPDATES_CONFIRM] = "DELETE FROM updates WHERE sender = ?1 AND seq <= ?2",
    [ST_WITNESS_ADD] = "INSERT INTO witnesses(org, upto_seq, head_hash, at, public_key,"
                       " signature, received_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                       " ON CONFLICT DO NOTHING",
    [ST_WITNESS_CHECK] = "SELECT 1 FROM checkpoints WHERE upto_seq = ?1"
                         " AND head_hash = ?2 AND at = ?3",
    [ST_AGREEMENT_ADD] = "INSERT INTO agreement_versions(id, version, content_hash, title,"
                         " status, valid_from, valid_until, review, first_loaded_at, vid)"
                         " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_AGREEMENT_FIND] = "SELECT vid FROM agreement_versions WHERE id = ?1"
                          " AND version = ?2 AND content_hash = ?3",
    [ST_INDEX_UPTO] = "SELECT coalesce(max(seq), 0) FROM audit_find",
    [ST_DEADLINE_PUT] = "INSERT INTO deadlines(" DEADLINE_COLUMNS ") VALUES(?1, ?2, ?3,"
                        " ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT DO NOTHING",
    [ST_DEADLINE_MARK] = "UPDATE deadlines SET answered_at = coalesce(answered_at, ?4),"
                         " escalated_at = coalesce(escalated_at, ?5)"
                         " WHERE event_id = ?1 AND recipient = ?2 AND kind = ?3",
    [ST_DEADLINES_OPEN] = "SELECT " DEADLINE_COLUMNS " FROM deadlines"
                          " WHERE answered_at IS NULL ORDER BY event_id, recipient, kind",
    [ST_INDEX_FILL] = "INSERT INTO audit_find(seq, event_id, sender, recipient, agreement,"
                      " event_type, decision, reason, case_hash, subject_hash, epoch)"
                      " SELECT seq, event_id, sender, recipient, agreement, event_type,"
                      " decision, reason, case_hash, subject_hash, " FIND_EPOCH_OF_SEQ
                      " FROM audit"
                      " WHERE seq > (SELECT coalesce(max(seq), 0) FROM audit_find)"
                      " ORDER BY seq LIMIT ?1",
    [ST_COPY_MAX] = "SELECT coalesce(max(seq), 0) FROM sealed",
    [ST_NOTICE_FIND] = "SELECT 1 FROM notices WHERE kind = ?1 AND subject = ?2",
    [ST_NOTICE_ADD] = "INSERT INTO notices(kind, subject, recipient, event_id, at)"
                      " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
    /* events.received_at is not indexed: one scan an hour of a table of ids
     * and times, rather than an index every SHARE would pay for. */
    [ST_PURGE_OUTCOMES] = "DELETE FROM outcomes WHERE event_id IN (SELECT e.event_id"
                          " FROM events e WHERE e.received_at < ?1 AND EXISTS (SELECT 1"
                          " FROM outcomes o WHERE o.event_id = e.event_id) AND NOT EXISTS"
                          " (SELECT 1 FROM sealed c WHERE c.event_id = e.event_id)"
                          " LIMIT ?2)",
};

/* Where PostgreSQL's dialect differs; NULL: the text above serves both. */
static const char *const stmt_sql_pg[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN",
    [ST_AUDIT_INSERT] = "INSERT INTO audit(" SHUB_AUDIT_TABLE_COLUMNS ", actor_text)"
                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                        " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26,"
                        " ?27, ?28, ?29)",
    [ST_AUDIT_READ] = "SELECT " SHUB_AUDIT_READ_COLUMNS_PG " FROM audit WHERE seq > ?1"
                      " ORDER BY seq LIMIT ?2",
};

const char *shub_store_sql(const shub_store_t *s, stmt_id_t id)
{
    if (shub_db_kind(s->db) == SHUB_DB_PG && stmt_sql_pg[id])
        return stmt_sql_pg[id];
    return stmt_sql[id];
}

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

void shub_store_base_save(shub_store_t *s)
{
    base_t *b = &s->base;
    b->head_seq = s->head_seq;
    memcpy(b->head_hash, s->head_hash, 32);
    b->checkpoint_upto = s->checkpoint_upto;
    b->unsigned_at = s->unsigned_at;
    b->copy_seq = s->copy_seq;
    b->indexed_upto = s->indexed_upto;
    b->n_agreements = s->n_agreements;
    b->names_added = s->names.n_added;
}

/* Back to where the open batch began: the head, and nothing of what it
 * interned or appended. */
void shub_store_base_restore(shub_store_t *s)
{
    const base_t *b = &s->base;
    s->head_seq = b->head_seq;
    memcpy(s->head_hash, b->head_hash, 32);
    s->checkpoint_upto = b->checkpoint_upto;
    s->unsigned_at = b->unsigned_at;
    s->copy_seq = b->copy_seq;
    s->indexed_upto = b->indexed_upto;
    s->n_agreements = b->n_agreements;
    shub_names_forget_from(s, b->names_added);
}

void shub_store_base_confirm(shub_store_t *s)
{
    shub_store_base_save(s);
    if (!s->unsettled) { /* everything is committed: nothing left to forget */
        s->names.n_added = s->names_confirmed = 0;
        s->base.names_added = 0;
        s->agreements_confirmed = s->n_agreements;
    }
}

int shub_store_db_fail(shub_store_t *s, shub_err_t *err, const char *what)
{
    if (shub_db_out_of_memory(s->db))
        return shub_err_set(err, SHUB_ENOMEM, "%s: out of memory", what);
    return shub_err_set(err, SHUB_EDB, "%s: %s", what, shub_db_errmsg(s->db));
}

int shub_store_stmt(shub_store_t *s, stmt_id_t id, shub_db_stmt_t **out, shub_err_t *err)
{
    if (!s->stmts[id] &&
        shub_db_prepare(s->db, shub_store_sql(s, id), true, &s->stmts[id]) != 0)
        return shub_store_db_fail(s, err, "prepare statement");
    *out = s->stmts[id];
    return 0;
}

static int bind_id(shub_db_stmt_t *st, int i, const shub_id_t *id)
{
    return shub_db_bind_blob(st, i, id->bytes, SHUB_ID_SIZE);
}

static int bind_str(shub_db_stmt_t *st, int i, const char *t)
{
    return shub_db_bind_text(st, i, t, strlen(t));
}

/* Reads column col as an event id into out; false when it is not one (NULL or
 * the wrong length), which the walks below take for a malformed row. */
static bool column_id(shub_db_stmt_t *st, int col, shub_id_t *out)
{
    const void *p = shub_db_column_blob(st, col);
    if (!p || shub_db_column_bytes(st, col) != SHUB_ID_SIZE)
        return false;
    memcpy(out->bytes, p, SHUB_ID_SIZE);
    return true;
}

/* Ends a walk over st's rows and resets st. A step that stopped before the
 * last row, when the walk had not stopped itself (stop, from its callback or
 * its own error), becomes fail's error for what. Returns stop or that error. */
static int walk_end(shub_store_t *s, shub_db_stmt_t *st, int stop, int step,
                    int (*fail)(shub_store_t *, shub_err_t *, const char *),
                    const char *what, shub_err_t *err)
{
    if (!stop && step != SHUB_DB_DONE)
        stop = fail(s, err, what);
    shub_db_reset(st);
    return stop;
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


/* ---- interned names (names.c) -------------------------------------------- */

/* The id of text, interning it (inside the transaction) if new; 0 for NULL.
 * *interned (may be NULL) gets a copy that holds until close. */
static int intern(shub_store_t *s, const char *text, int64_t *id, const char **interned,
                  shub_err_t *err)
{
    name_t *e = NULL;
    int rc = shub_names_intern(s, text, &e, err);
    *id = e ? e->id : 0;
    if (interned) {
        if (e)
            e->lent = true;
        *interned = e ? e->text : NULL;
    }
    return rc;
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
    if (shub_grow((void **)&s->agreements, &s->cap_agreements, s->n_agreements + 1,
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
    shub_db_stmt_t *st = NULL;
    int rc = shub_names_load(s, err);
    if (rc)
        return rc;
    rc = shub_db_prepare(s->db,
                         "SELECT vid, id, version, content_hash FROM agreement_versions"
                         " WHERE vid > ?1 ORDER BY vid",
                         false, &st);
    if (rc == 0)
        rc = shub_db_bind_int(
            st, 1, s->n_agreements ? s->agreements[s->n_agreements - 1].vid : 0);
    if (rc != 0) {
        shub_db_finalize(st);
        return shub_store_db_fail(s, err, "read agreement versions");
    }
    while ((rc = shub_db_step(st)) == SHUB_DB_ROW) {
        const char *id = shub_db_column_text(st, 1);
        const char *h = shub_db_column_text(st, 3);
        if (agreement_add_ref(s, shub_db_column_int(st, 0), id ? id : "",
                              (uint32_t)shub_db_column_int(st, 2), h ? h : "")) {
            shub_db_finalize(st);
            return shub_err_set(err, SHUB_ENOMEM, "read agreements: out of memory");
        }
    }
    shub_db_finalize(st);
    if (rc != SHUB_DB_DONE)
        return shub_store_db_fail(s, err, "read agreement versions");
    s->agreements_confirmed = s->n_agreements;
    return 0;
}

/* ---- opening ------------------------------------------------------------ */

/* One-off statement returning at most one integer (PRAGMAs, counts). */
static int query_int(shub_store_t *s, const char *sql, int64_t *out, const char *what,
                     shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    int rc = shub_db_prepare(s->db, sql, false, &st);
    if (rc == 0) {
        rc = shub_db_step(st);
        if (rc == SHUB_DB_ROW)
            *out = shub_db_column_int(st, 0);
    }
    if (rc != SHUB_DB_ROW && rc != SHUB_DB_DONE) {
        rc = shub_store_db_fail(s, err, what);
        shub_db_finalize(st);
        return rc;
    }
    shub_db_finalize(st);
    return 0;
}

static int exec(shub_store_t *s, const char *sql, const char *what, shub_err_t *err)
{
    if (shub_db_exec(s->db, sql) != 0)
        return shub_store_db_fail(s, err, what);
    return 0;
}

/* Reads meta[key] into buf. 0, SHUB_ENOTFOUND or SHUB_EDB. */
static int meta_get(shub_store_t *s, const char *key, char *buf, size_t size,
                    shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    int rc = shub_db_prepare(s->db, "SELECT value FROM meta WHERE key = ?1", false, &st);
    if (rc == 0)
        rc = bind_str(st, 1, key);
    if (rc == 0)
        rc = shub_db_step(st);
    if (rc == SHUB_DB_ROW) {
        const char *v = shub_db_column_text(st, 0);
        snprintf(buf, size, "%s", v ? v : "");
        shub_db_finalize(st);
        return 0;
    }
    if (rc != SHUB_DB_DONE) {
        rc = shub_store_db_fail(s, err, "read store meta");
        shub_db_finalize(st);
        return rc;
    }
    shub_db_finalize(st);
    return SHUB_ENOTFOUND;
}

static int meta_put(shub_store_t *s, const char *key, const char *value, shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    int rc = shub_db_prepare(s->db,
                             "INSERT INTO meta(key, value) VALUES(?1, ?2)"
                             " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                             false, &st);
    if (rc == 0)
        rc = bind_str(st, 1, key);
    if (rc == 0)
        rc = bind_str(st, 2, value);
    if (rc == 0)
        rc = shub_db_step(st);
    shub_db_finalize(st);
    if (rc != SHUB_DB_DONE)
        return shub_store_db_fail(s, err, "write store meta");
    return 0;
}

/* The store's identity as the database holds it: the application id (0:
 * none), the schema version, and how many tables there are. SQLite keeps the
 * first two in the file header (PRAGMA); PostgreSQL, which has no such
 * header, in meta. */
static int probe(shub_store_t *s, int64_t *app_id, int64_t *version, int64_t *tables,
                 shub_err_t *err)
{
    char text[32];
    int rc;
    *app_id = *version = *tables = 0;
    if (shub_db_kind(s->db) == SHUB_DB_SQLITE) {
        if ((rc = query_int(s, "PRAGMA application_id", app_id, "open", err)) ||
            (rc = query_int(s, "PRAGMA user_version", version, "open", err)))
            return rc;
        return query_int(s, "SELECT count(*) FROM sqlite_schema", tables, "open", err);
    }
    int64_t has_meta = 0;
    if ((rc = query_int(s,
                        "SELECT count(*), count(*) FILTER (WHERE table_name = 'meta')"
                        " FROM information_schema.tables"
                        " WHERE table_schema = current_schema()",
                        tables, "open", err)) ||
        (rc = query_int(s,
                        "SELECT count(*) FROM information_schema.tables"
                        " WHERE table_schema = current_schema() AND table_name = 'meta'",
                        &has_meta, "open", err)))
        return rc;
    if (!has_meta)
        return 0;
    if ((rc = meta_get(s, "application_id", text, sizeof text, err)) == 0)
        *app_id = strtoll(text, NULL, 10);
    else if (rc != SHUB_ENOTFOUND)
        return rc;
    if ((rc = meta_get(s, "user_version", text, sizeof text, err)) == 0)
        *version = strtoll(text, NULL, 10);
    else if (rc != SHUB_ENOTFOUND)
        return rc;
    return 0;
}

/* Opens a transaction that holds the lock on the schema (SQLite's write
 * lock; on PostgreSQL an advisory lock, as no table may exist yet) and
 * reads the store's identity under it. */
static int schema_locked(shub_store_t *s, int64_t *app_id, int64_t *version,
                         int64_t *tables, const char *what, shub_err_t *err)
{
    int rc = exec(s,
                  shub_db_kind(s->db) == SHUB_DB_PG
                      ? "BEGIN; SELECT pg_advisory_xact_lock(1397249346,"
                        " hashtext('create ' || current_schema()))"
                      : "BEGIN IMMEDIATE",
                  what, err);
    if (rc == 0 && (rc = probe(s, app_id, version, tables, err)) != 0)
        shub_db_exec(s->db, "ROLLBACK");
    return rc;
}

/* Creates the schema in a new, empty file or database schema. The
 * application id is checked again under the write lock: two processes may
 * race to create the same store. */
static int create_schema(shub_store_t *s, const char *path, shub_err_t *err)
{
    int64_t app_id = 0, version = 0, tables = 0;
    char now[32], num[32];
    bool pg = shub_db_kind(s->db) == SHUB_DB_PG;
    int rc;
    if ((rc = schema_locked(s, &app_id, &version, &tables, "create schema", err)))
        return rc;
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
    snprintf(now, sizeof now, "%lld", (long long)shub_now_ms());
    if (!pg && (rc = exec(s, schema_sql, "create schema", err)))
        goto fail;
    for (size_t i = 0; pg && i < sizeof schema_sql_pg / sizeof schema_sql_pg[0]; i++)
        if ((rc = exec(s, schema_sql_pg[i], "create schema", err)))
            goto fail;
    if (pg) {
        snprintf(num, sizeof num, "%ld", (long)SHUB_STORE_APPLICATION_ID);
        rc = meta_put(s, "application_id", num, err);
        snprintf(num, sizeof num, "%d", SHUB_STORE_SCHEMA_VERSION);
        if (!rc)
            rc = meta_put(s, "user_version", num, err);
    } else {
        char pragmas[128];
        snprintf(pragmas, sizeof pragmas,
                 "PRAGMA application_id = %ld; PRAGMA user_version = %d",
                 (long)SHUB_STORE_APPLICATION_ID, SHUB_STORE_SCHEMA_VERSION);
        rc = exec(s, pragmas, "create schema", err);
    }
    if (rc || (rc = meta_put(s, "created_at", now, err)) ||
        (rc = meta_put(s, "schema",
                       "sharehub store v3: audit (hash chain over interned names), "
                       "events (dedupe), outcomes (receipts), sealed (pending copies), "
                       "updates (to senders), checkpoints, witnesses, audit_find",
                       err)) ||
        (rc = exec(s, "COMMIT", "create schema", err)))
        goto fail;
    return 0;
fail:
    shub_db_exec(s->db, "ROLLBACK");
    return rc;
}

/* Version 2 to 3: audit_find's case and subject indexes lead with the
 * epoch. The version is read again under the write lock (as create_schema
 * does), so of two processes opening the store at once one upgrades it. */
static int upgrade_v2(shub_store_t *s, const char *path, shub_err_t *err)
{
    int64_t app_id = 0, version = 0, tables = 0;
    bool pg = shub_db_kind(s->db) == SHUB_DB_PG;
    char sql[1024];
    int rc = schema_locked(s, &app_id, &version, &tables, "upgrade the store", err);
    if (rc)
        goto fail;
    if (version != 2) {
        exec(s, "ROLLBACK", "upgrade the store", NULL);
        return 0;
    }
    shub_info("store %s: upgrading from version 2 to 3 (the audit tools' case and "
              "subject indexes by epoch)", s->shown);
    snprintf(sql, sizeof sql,
             "ALTER TABLE audit_find ADD COLUMN epoch %s NOT NULL DEFAULT 0;"
             " UPDATE audit_find SET epoch = " FIND_EPOCH_OF_SEQ " WHERE seq >= "
             FIND_EPOCH_ROWS ";"
             " DROP INDEX find_case; DROP INDEX find_subject; " FIND_EPOCH_INDEXES
             "UPDATE meta SET value = replace(value, 'store v2', 'store v3')"
             " WHERE key = 'schema'; %s",
             pg ? "BIGINT" : "INTEGER",
             pg ? "UPDATE meta SET value = '3' WHERE key = 'user_version';"
                : "PRAGMA user_version = 3;");
    if ((rc = exec(s, sql, "upgrade the store", err)) ||
        (rc = exec(s, "COMMIT", "upgrade the store", err)))
        goto fail;
    return 0;
fail:
    shub_db_exec(s->db, "ROLLBACK");
    if (err) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        shub_err_set(err, rc, "'%s': upgrading from version 2: %s", path, why);
    }
    return rc;
}

/* Refuses stores that are not ours, or of another version; creates a new one. */
static int check_schema(shub_store_t *s, const char *path, shub_err_t *err)
{
    int64_t app_id = 0, version = 0, tables = 0;
    int rc = probe(s, &app_id, &version, &tables, err);
    if (rc == SHUB_ENOMEM)
        return rc;
    if (rc) {
        return shub_err_set(err, SHUB_EDB, "'%s' is not a sharehub store: %s", path,
                            shub_db_errmsg(s->db));
    }
    if (app_id == 0) {
        if (tables != 0)
            return shub_err_set(err, SHUB_EDB,
                                "'%s' is not a sharehub store (tables of another "
                                "application, no application_id)",
                                path);
        if (s->readonly)
            return shub_err_set(err, SHUB_EDB, "'%s' is not a sharehub store (%s)", path,
                                shub_db_kind(s->db) == SHUB_DB_PG ? "no tables"
                                                                  : "empty file");
        if ((rc = create_schema(s, path, err)) ||
            (rc = probe(s, &app_id, &version, &tables, err)))
            return rc;
    }
    if (app_id != SHUB_STORE_APPLICATION_ID)
        return shub_err_set(err, SHUB_EDB,
                            "'%s' is not a sharehub store (application_id 0x%08llx, "
                            "expected 0x%08x)",
                            path, (unsigned long long)(uint32_t)app_id,
                            SHUB_STORE_APPLICATION_ID);
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
    /* Version 2 differs in audit_find alone: upgraded when opened to write,
     * read as it is otherwise. */
    if (version == 2 && !s->readonly) {
        if ((rc = upgrade_v2(s, path, err)))
            return rc;
        version = SHUB_STORE_SCHEMA_VERSION;
    }
    if (version != SHUB_STORE_SCHEMA_VERSION && version != 2)
        return shub_err_set(err, SHUB_EDB,
                            "'%s' has store schema version %lld, expected %d", path,
                            (long long)version, SHUB_STORE_SCHEMA_VERSION);
    s->find_epochs = version >= 3;
    return 0;
}

/* PostgreSQL: the session's durability. synchronous_commit on waits for the
 * server's WAL flush (and, where the server is set up for it, a synchronous
 * standby's: docs/postgresql.md); off keeps commits across a crash of the
 * broker but not of the database server, as SQLite's NORMAL does for power. */
static int set_session(shub_store_t *s, const shub_store_opts_t *opts, shub_err_t *err)
{
    if (s->readonly)
        return 0;
    return exec(s,
                opts->synchronous_full ? "SET synchronous_commit = on"
                                       : "SET synchronous_commit = off",
                "set synchronous_commit", err);
}
static int set_pragmas(shub_store_t *s, const shub_store_opts_t *opts, shub_err_t *err)
{
    if (shub_db_kind(s->db) == SHUB_DB_PG)
        return set_session(s, opts, err);
    char sql[256];
    const char *mode;
    shub_db_stmt_t *st = NULL;
    int rc;
    if (s->readonly)
        return exec(s, "PRAGMA cache_size = -16384", "set pragmas", err);
    /* journal_mode answers with the mode it ended up in: a file system that
     * cannot do WAL (no shared memory) answers "delete", and then readers
     * would block the broker. Refuse rather than run that way. */
    rc = shub_db_prepare(s->db, "PRAGMA journal_mode = WAL", false, &st);
    if (rc == 0)
        rc = shub_db_step(st);
    if (rc != SHUB_DB_ROW) {
        shub_db_finalize(st);
        return shub_store_db_fail(s, err, "set WAL mode");
    }
    mode = shub_db_column_text(st, 0);
    if (!mode || strcmp(mode, "wal") != 0) {
        rc = shub_err_set(err, SHUB_EDB, "set WAL mode: journal mode is '%s'",
                          mode ? mode : "?");
        shub_db_finalize(st);
        return rc;
    }
    shub_db_finalize(st);
    /* WAL checkpoints run on their own thread (below), so none on commit.
     * journal_size_limit shrinks the WAL back after a burst when it
     * restarts, so a disk that filled up gets its space back; it is twice
     * the size that asks for a restart, so that a steady WAL is written over
     * in place: cut back to the restart size itself, every cycle freed the
     * blocks past it and allocated them again, a truncate in a commit that
     * doubled the p99 latency at 10,000 events/s. 8 MiB
     * of page cache keeps the B-tree edges a turn appends to in memory (16
     * was no faster in bench_broker) and bounds resident memory with a large
     * backlog (100,000 queued copies in 64 MiB). secure_delete FAST zeroes
     * deleted rows in the pages a commit writes anyway, without writing
     * freed pages again (Debian's default, ON, does): what is deleted on the
     * hot path is sealed copies, ciphertext whose key is gone, and
     * confirmed updates, which hold no payload. */
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous = %s; PRAGMA wal_autocheckpoint = 0;"
             " PRAGMA journal_size_limit = %lld; PRAGMA cache_size = -8192;"
             " PRAGMA temp_store = MEMORY; PRAGMA secure_delete = FAST",
             opts->synchronous_full ? "FULL" : "NORMAL", (long long)s->wal_limit * 2);
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
    shub_db_stmt_t *st = NULL;
    int rc = shub_store_stmt(s, ST_HEAD, &st, err);
    if (rc)
        return rc;
    if (shub_db_step(st) != SHUB_DB_ROW) {
        rc = shub_store_db_fail(s, err, "read audit head");
        shub_db_reset(st);
        return rc;
    }
    int64_t seq = shub_db_column_int(st, 0);
    const void *hash = shub_db_column_blob(st, 1);
    int len = shub_db_column_bytes(st, 1);
    if (seq > 0 && (!hash || len != 32)) {
        shub_db_reset(st);
        return shub_err_set(
            err, SHUB_EDB,
            "read audit head: row %lld has a malformed row_hash (run verify)",
            (long long)seq);
    }
    s->head_seq = seq;
    memcpy(s->head_hash, seq > 0 ? hash : zero_hash, 32);
    s->checkpoint_upto = shub_db_column_int(st, 2);
    s->unsigned_at = shub_db_column_int(st, 3);
    shub_db_reset(st);
    if (s->readonly)
        return 0;
    int64_t v[2] = {0, 0};
    stmt_id_t ids[2] = {ST_COPY_MAX, ST_INDEX_UPTO};
    for (int i = 0; i < 2; i++) {
        if ((rc = shub_store_stmt(s, ids[i], &st, err)))
            return rc;
        if (shub_db_step(st) != SHUB_DB_ROW) {
            rc = shub_store_db_fail(s, err, "read store head");
            shub_db_reset(st);
            return rc;
        }
        v[i] = shub_db_column_int(st, 0);
        shub_db_reset(st);
    }
    s->copy_seq = v[0];
    s->indexed_upto = v[1];
    return shub_store_recent_reset(s, err);
}

int shub_store_reload(shub_store_t *s, shub_err_t *err)
{
    shub_names_forget_from(s, s->names_confirmed);
    s->names.n_added = s->names_confirmed = 0;
    s->n_agreements = s->agreements_confirmed;
    int rc = load_head(s, err);
    shub_store_base_save(s);
    return rc;
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

/* PostgreSQL: the same promise as the lock file, kept by the database
 * server: a session-level advisory lock on the writing connection, so every
 * write the broker makes is made by the session that holds it. The server
 * drops it when the session ends (the broker stopped, was killed, or its
 * host went silent past the keepalives set in store_backend.c), and a
 * standby waiting here takes over. */
#define LOCK_RETRY_MS 200

static int take_db_lock(shub_store_t *s, const shub_store_opts_t *opts, shub_err_t *err)
{
    char holder[256];
    bool got = false, waited = false;
    int64_t since = shub_now_ms();
    for (;;) {
        if (shub_db_try_lock(s->db, &got, holder, sizeof holder))
            return shub_store_db_fail(s, err, "take the database lock");
        if (got)
            break;
        if (!opts->wait_lock || !opts->wait_lock(opts->wait_ctx))
            return shub_err_set(err, SHUB_EBUSY, "'%s' is in use by another broker (%s)",
                                s->shown, holder[0] ? holder : "holder unknown");
        if (!waited)
            shub_info("standby: waiting for the database lock db=%s holder=\"%s\"",
                      s->shown, holder);
        waited = true;
        struct timespec pause = {0, LOCK_RETRY_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    if (waited)
        shub_info("taking over: the database lock is ours after %lld ms db=%s",
                  (long long)(shub_now_ms() - since), s->shown);
    return 0;
}

static void *ckpt_main(void *arg);
static void wal_prefill(const shub_store_t *s);

int shub_store_open(const char *path, const shub_store_opts_t *opts,
                    shub_store_t **store_p, shub_err_t *err)
{
    shub_store_t *s = NULL;
    int rc;
    if (!path || !opts || !store_p)
        return shub_err_set(err, SHUB_EINVAL, "open store: missing argument");
    if (sodium_init() < 0)
        return shub_err_set(err, SHUB_ECRYPTO,
                            "open store: libsodium failed to initialise");
    s = shub_calloc(1, sizeof *s);
    if (!s)
        return shub_err_set(err, SHUB_ENOMEM, "open store: out of memory");
    s->lock_fd = -1;
    s->efd = -1;
    s->readonly = opts->readonly;
    s->checkpoint_every =
        opts->checkpoint_every ? opts->checkpoint_every : SHUB_STORE_CHECKPOINT_EVERY;
    s->checkpoint_ms = opts->checkpoint_ms ? opts->checkpoint_ms : SHUB_STORE_CHECKPOINT_MS;
    s->wal_limit = opts->wal_limit > 0 ? opts->wal_limit : SHUB_STORE_WAL_LIMIT;
    int names_rc = shub_names_init(
        &s->names, opts->readonly ? 0
                   : opts->names_budget ? opts->names_budget
                                        : SHUB_STORE_NAMES_BUDGET);
    s->path = shub_strdup(path);
    size_t wal_size = strlen(path) + sizeof "-wal";
    s->wal_path = shub_malloc(wal_size);
    if (names_rc || !s->path || !s->wal_path) {
        rc = shub_err_set(err, SHUB_ENOMEM, "open store: out of memory");
        goto fail;
    }
    snprintf(s->wal_path, wal_size, "%s-wal", path);
    shub_db_display(path, s->shown, sizeof s->shown);
    bool pg = shub_db_is_uri(path);
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
    if (!pg && opts->exclusive && !s->readonly && (rc = take_lock(s, path, err)))
        goto fail;

    char app[128], host[64] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(app, sizeof app, "sharehub-%s pid %ld on %s",
             s->readonly ? "reader" : "broker", (long)getpid(), host);
    shub_db_opts_t dopts = {.readonly = s->readonly, .create = true, .app_name = app};
    if ((rc = shub_db_open(path, &dopts, &s->db, err)))
        goto fail;
    if (pg && opts->exclusive && !s->readonly && (rc = take_db_lock(s, opts, err)))
        goto fail;
    /* Schema check first: another application's file is refused untouched
     * (switching it to WAL would already be a change to it). */
    if ((rc = check_schema(s, s->shown, err)) || (rc = set_pragmas(s, opts, err)) ||
        (rc = load_head(s, err)) || (rc = check_keys(s, err)) ||
        (!s->readonly && (rc = exec(s, pg ? notices_sql_pg : notices_sql, "create notices",
                                    err))))
        goto fail;
    if (!s->readonly) {
        if ((rc = exec(s, pg ? deadlines_sql_pg : deadlines_sql, "create deadlines table",
                       err)) ||
            (rc = shub_store_names_load(s, err)))
            goto fail;
        if (!pg && (pthread_mutex_init(&s->ckpt_mu, NULL) != 0 ||
                    pthread_cond_init(&s->ckpt_cv, NULL) != 0 ||
                    pthread_create(&s->ckpt_thread, NULL, ckpt_main, s) != 0)) {
            rc = shub_err_set(err, SHUB_ENOMEM, "open store: cannot start its thread");
            goto fail;
        }
        s->ckpt_running = !pg;
        if (opts->writer_thread && (rc = shub_store_writer_start(s, err)))
            goto fail;
        if (opts->writer_thread && !pg)
            wal_prefill(s); /* before anything is submitted: no write beside it */
    }
    shub_store_base_save(s);
    *store_p = s;
    return 0;
fail:
    shub_store_close(&s);
    return rc;
}

bool shub_store_is_uri(const char *path)
{
    return shub_db_is_uri(path);
}

void shub_store_display(const char *path, char *out, size_t size)
{
    shub_db_display(path, out, size);
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
    shub_store_batch_discard(s);
    shub_store_writer_stop(s); /* what was submitted is written first */
    shub_store_batches_free(s);
    if (s->db && shub_db_in_txn(s->db))
        shub_db_exec(s->db, "ROLLBACK");
    for (int i = 0; i < ST_COUNT; i++)
        shub_db_finalize(s->stmts[i]);
    shub_db_close(&s->db); /* on PostgreSQL, releases the advisory lock */
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    shub_names_free(&s->names);
    shub_free(s->agreements);
    shub_store_recent_free(s);
    shub_free(s->path);
    shub_free(s->wal_path);
    sodium_memzero(s, sizeof *s);
    shub_free(s);
    *store_p = NULL;
}

/* ---- the WAL checkpointer ------------------------------------------------- */

/* A passive checkpoint copies committed WAL pages into the database without
 * blocking the writer or readers; on its own connection and thread it costs
 * the hub's loop nothing. But SQLite writes the WAL from its start again only
 * when a write transaction begins with every frame already copied, and under
 * traffic that never pauses the writer always has frames the last checkpoint
 * had not seen: the file would grow without end (by 100 MB a second in
 * bench_broker) until the disk is full. So once the WAL holds more than
 * wal_limit bytes of frames, this thread asks the writing connection to
 * restart it after its next commit (writer.c): by then nearly everything has
 * been copied, and what is left is the last few commits. What it judges by
 * is the frames written since the last restart, not the file's length: a
 * file once grown past the limit stays that long (journal_size_limit is
 * twice it), and judged by its length every tick asked for a restart, which
 * holds the writer 1 to 3 ms (four times a second at 10,000 events/s). */
#define CKPT_EVERY_MS 250

/* Until the WAL has once grown to wal_limit, each commit extends the file,
 * and an fdatasync that must also put the file's new blocks and size in the
 * file system's journal took 0.4 to 1.1 ms here where one that writes data
 * alone took 0.13. So the broker grows the file once, as it opens, with
 * zeros written past its end (fallocate would leave extents that the first
 * write must convert: the same journal commit), as PostgreSQL zero-fills its
 * WAL segments. Nothing SQLite wrote is touched, and SQLite reads frames
 * only up to the first that fails its checksum, which zeros never pass. Only
 * where the file system has four times that room free, so that filling it
 * never leaves others on the disk (agents, say) without space even for a
 * moment; whatever fails, the file is cut back to its size. */
static void wal_prefill(const shub_store_t *s)
{
    static const uint8_t zeros[1 << 16];
    struct stat st;
    struct statvfs vfs;
    int fd = open(s->wal_path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (fstat(fd, &st) == 0 && st.st_size < s->wal_limit && fstatvfs(fd, &vfs) == 0 &&
        (double)vfs.f_bavail * (double)vfs.f_frsize >=
            4.0 * (double)(s->wal_limit - st.st_size)) {
        off_t at = st.st_size;
        while (at < s->wal_limit) {
            size_t n = s->wal_limit - at < (off_t)sizeof zeros ? (size_t)(s->wal_limit - at)
                                                               : sizeof zeros;
            ssize_t w = pwrite(fd, zeros, n, at);
            if (w <= 0)
                break;
            at += w;
        }
        if (at < s->wal_limit || fdatasync(fd) != 0) {
            if (ftruncate(fd, st.st_size) != 0)
                shub_warn("store: cannot cut %s back to %lld bytes: %s", s->wal_path,
                          (long long)st.st_size, strerror(errno));
        }
    }
    close(fd);
}

static void *ckpt_main(void *arg)
{
    shub_store_t *s = arg;
    shub_db_t *db = NULL;
    shub_db_opts_t dopts = {0};
    prctl(PR_SET_NAME, "shub-wal", 0, 0, 0); /* this thread, as top -H and perf name it */
    /* A connection learns that a file is in WAL mode when it first reads it;
     * until then a checkpoint on it does nothing. */
    if (shub_db_open(s->path, &dopts, &db, NULL) != 0 ||
        shub_db_exec(db, "SELECT 1 FROM sqlite_schema LIMIT 1") != 0)
        shub_db_close(&db);
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
        if (shub_db_wal_passive(db) > s->wal_limit) {
            /* Once more, for what came in while the first copied: what the
             * writer's RESTART then copies, holding the writer, is what its
             * last commit or two wrote. */
            shub_db_wal_checkpoint(db, SHUB_WAL_PASSIVE, 0);
            atomic_store(&s->wal_restart, true);
            atomic_fetch_add(&s->wal_restarts, 1);
        }
        pthread_mutex_lock(&s->ckpt_mu);
    }
    pthread_mutex_unlock(&s->ckpt_mu);
    shub_db_close(&db);
    return NULL;
}

/* ---- transactions and checkpoints --------------------------------------- */

int shub_store_begin(shub_store_t *s, shub_err_t *err)
{
    if (s->readonly)
        return shub_err_set(err, SHUB_EPROTO, "begin: store is open read-only");
    return shub_store_batch_open(s, err);
}

void shub_store_rollback(shub_store_t *s)
{
    if (s)
        shub_store_batch_discard(s);
}

int shub_store_checkpoint(shub_store_t *s, int64_t now_ms, bool force,
                          shub_signed_head_t *out, bool *made, shub_err_t *err)
{
    shub_signed_head_t cp;
    int rc;
    if (made)
        *made = false;
    if (!s->has_sign_key)
        return shub_err_set(err, SHUB_EINVAL, "checkpoint: no signing key");
    if (!s->open)
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
    shub_store_op_begin(s, ST_CHECKPOINT_INSERT);
    shub_store_op_int(s, 1, s->head_seq);
    shub_store_op_blob(s, 2, s->head_hash, 32);
    shub_store_op_int(s, 3, now_ms);
    shub_store_op_blob(s, 4, s->sign_public, 32);
    shub_store_op_blob(s, 5, cp.sig, sizeof cp.sig);
    if ((rc = shub_store_op_end(s, "checkpoint", err)))
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
    shub_db_stmt_t *st = NULL;
    int rc = shub_store_read_stmt(s, ST_CHECKPOINT_LATEST, &st, err);
    if (rc)
        return rc;
    rc = shub_db_step(st);
    if (rc == SHUB_DB_DONE) {
        shub_db_reset(st);
        return shub_err_set(err, SHUB_ENOTFOUND, "no checkpoint yet");
    }
    if (rc != SHUB_DB_ROW) {
        shub_store_read_fail(s, err, "read checkpoint");
        shub_db_reset(st);
        return SHUB_EDB;
    }
    const void *head = shub_db_column_blob(st, 1);
    const void *key = shub_db_column_blob(st, 3);
    const void *sig = shub_db_column_blob(st, 4);
    if (!head || shub_db_column_bytes(st, 1) != 32 || !key ||
        shub_db_column_bytes(st, 3) != 32 || !sig || shub_db_column_bytes(st, 4) != 64) {
        shub_db_reset(st);
        return shub_err_set(err, SHUB_EDB, "the newest checkpoint is malformed");
    }
    out->seq = shub_db_column_int(st, 0);
    memcpy(out->head, head, 32);
    out->at_ms = shub_db_column_int(st, 2);
    memcpy(out->key, key, 32);
    memcpy(out->sig, sig, 64);
    shub_db_reset(st);
    return 0;
}

int shub_store_maintain(shub_store_t *s, bool idle, bool *more, shub_err_t *err)
{
    int rc;
    if (more)
        *more = false;
    if (s->readonly)
        return 0;
    if (s->open)
        return shub_err_set(err, SHUB_EPROTO, "maintain: a transaction is open");
    if (s->indexed_upto >= s->head_seq && !idle)
        return 0;
    if ((rc = shub_store_begin(s, err)))
        return rc;
    if (s->indexed_upto < s->head_seq) {
        shub_store_op_begin(s, ST_INDEX_FILL);
        shub_store_op_int(s, 1, SHUB_STORE_INDEX_BATCH);
        if ((rc = shub_store_op_end(s, "index audit rows", err))) {
            shub_store_rollback(s);
            return rc;
        }
        s->indexed_upto += SHUB_STORE_INDEX_BATCH;
        if (s->indexed_upto > s->head_seq)
            s->indexed_upto = s->head_seq;
    }
    shub_store_mark_restart(s, idle);
    if (more)
        *more = s->indexed_upto < s->head_seq;
    if (s->writer_running) {
        uint64_t ticket;
        return shub_store_submit(s, &ticket, err);
    }
    return shub_store_commit(s, err);
}

uint64_t shub_store_wal_restarts(const shub_store_t *s)
{
    return atomic_load(&s->wal_restarts);
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
    shub_db_stmt_t *st = NULL;
    char text[SHUB_ID_TEXT];
    int64_t sid, first_id = 0;
    int rc;
    if (!id || !sender)
        return shub_err_set(err, SHUB_EINVAL, "event add: missing id or sender");
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "event add: no transaction is open");
    if ((rc = intern(s, sender, &sid, NULL, err)))
        return rc;
    const flight_t *f = shub_store_flight_find(s, id);
    if (f && f->sender == sid) {
        shub_id_format(id, text);
        return shub_err_set(err, SHUB_EBUSY,
                            "event %s is being decided; its receipt follows the commit",
                            text);
    }
    if (f) {
        first_id = f->sender;
    } else if (!shub_store_recent_unseen(s, id)) {
        /* Committed? On the reading connection, which sees the last commit. */
        if ((rc = shub_store_read_stmt(s, ST_EVENT_SENDER, &st, err)))
            return rc;
        if (shub_db_bind_blob(st, 1, id->bytes, SHUB_ID_SIZE))
            return shub_store_read_fail(s, err, "event lookup");
        rc = shub_db_step(st);
        if (rc == SHUB_DB_ROW)
            first_id = shub_db_column_int(st, 0);
        shub_db_reset(st);
        if (rc != SHUB_DB_ROW && rc != SHUB_DB_DONE)
            return shub_store_read_fail(s, err, "event lookup");
    }
    if (first_id) {
        /* Known id: say who sent it first (a replay by another org is suspicious). */
        const name_t *e = shub_names_entry(s, first_id);
        const char *first = e ? e->text : NULL;
        if (sender_out)
            snprintf(sender_out, SHUB_MSG_MAX_NAME + 1, "%s", first ? first : "");
        shub_id_format(id, text);
        return shub_err_set(err, SHUB_EEXIST, "event %s already seen from '%s'", text,
                            first ? first : "");
    }
    shub_store_op_begin(s, ST_EVENT_ADD);
    shub_store_op_blob(s, 1, id->bytes, SHUB_ID_SIZE);
    shub_store_op_int(s, 2, sid);
    shub_store_op_int(s, 3, now_ms);
    if ((rc = shub_store_op_end(s, "event add", err)))
        return rc;
    if (shub_store_flight_add(s, id, sid))
        return shub_err_set(err, SHUB_ENOMEM, "event add: out of memory");
    return 0;
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
_Static_assert(N_AUDIT_TEXTS == SHUB_STORE_TEXT_COLS, "text columns");

/* Text column i's name id: the last row's for that column when the text is
 * the same (a compare, no hashing; a forgotten name's text is NULL), else
 * interned. */
static int intern_col(shub_store_t *s, size_t i, const char *t, int64_t *id,
                      shub_err_t *err)
{
    const name_t *last = s->text_last[i];
    if (t && last && strncmp(last->text, t, last->len) == 0 && t[last->len] == '\0') {
        *id = last->id;
        return 0;
    }
    name_t *e = NULL;
    int rc = shub_names_intern(s, t, &e, err);
    *id = e ? e->id : 0;
    if (rc == 0 && e)
        s->text_last[i] = e;
    return rc;
}

/* The keyed hash of a reference, kept for the next row about the same
 * person or case (each recipient of a share has a row of its own). */
static void ref_hash_cached(shub_store_t *s, shub_ref_kind_t kind, const char *ref,
                            uint8_t out[32])
{
    char *last = s->ref_last[kind].ref;
    if (last[0] && strcmp(last, ref) == 0) {
        memcpy(out, s->ref_last[kind].hash, 32);
        return;
    }
    shub_store_ref_hash_key(s->subject_key, kind, ref, out);
    size_t n = strlen(ref);
    if (n < SHUB_STORE_REF_CACHE) {
        memcpy(last, ref, n + 1);
        memcpy(s->ref_last[kind].hash, out, 32);
    } else {
        last[0] = '\0';
    }
}

int shub_store_audit_append(shub_store_t *s, shub_audit_row_t *row, shub_err_t *err)
{
    canon_val_t v[SHUB_AUDIT_NCOLS];
    int64_t ids[N_AUDIT_TEXTS], vid = 0;
    uint8_t subject[32], case_h[32], actor[32], row_hash[32];
    int rc;

    if (!row || !row->action || !row->decision || !row->action[0] || !row->decision[0])
        return shub_err_set(err, SHUB_EINVAL,
                            "audit append: action and decision are required");
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "audit append: no transaction is open");
    if ((row->subject_ref || row->case_ref || row->actor_ref) && !s->has_subject_key)
        return shub_err_set(err, SHUB_EINVAL,
                            "audit append: a reference given but the store has no "
                            "subject key");
    memset(v, 0, sizeof v);
    for (size_t i = 0; i < N_AUDIT_TEXTS; i++) {
        const char *t = *(const char *const *)((const char *)row + audit_texts[i].off);
        if ((rc = intern_col(s, i, t, &ids[i], err)))
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
        ref_hash_cached(s, SHUB_REF_SUBJECT, row->subject_ref, subject);
    if (row->case_ref)
        ref_hash_cached(s, SHUB_REF_CASE, row->case_ref, case_h);
    if (row->actor_ref)
        ref_hash_cached(s, SHUB_REF_ACTOR, row->actor_ref, actor);
    canon_blob(&v[AC_SUBJECT_HASH], row->subject_ref ? subject : NULL, 32);
    canon_blob(&v[AC_CASE_HASH], row->case_ref ? case_h : NULL, 32);
    if (row->actor_ref && row->actor_clear)
        canon_text(&v[AC_ACTOR_HASH], row->actor_ref); /* the type is hashed too */
    else
        canon_blob(&v[AC_ACTOR_HASH], row->actor_ref ? actor : NULL, 32);
    shub_store_row_hash(s->head_hash, v, row_hash);

    shub_store_op_begin(s, ST_AUDIT_INSERT);
    shub_store_op_int(s, 1, s->head_seq + 1);
    shub_store_op_int(s, 2, row->at_ms);
    shub_store_op_blob(s, 4, v[AC_EVENT_ID].p, SHUB_ID_SIZE);
    shub_store_op_opt_int(s, 11, vid);
    shub_store_op_opt_int(s, 18, row->occurred_ms);
    shub_store_op_blob(s, 19, v[AC_REPLY_TO].p, SHUB_ID_SIZE);
    shub_store_op_blob(s, 24, row->payload_hash, 32);
    shub_store_op_blob(s, 25, v[AC_SUBJECT_HASH].p, 32);
    shub_store_op_blob(s, 26, v[AC_CASE_HASH].p, 32);
    if (v[AC_ACTOR_HASH].type == CANON_TEXT) /* actor_text on PostgreSQL */
        shub_store_op_text(s, shub_db_kind(s->db) == SHUB_DB_PG ? 29 : 27, row->actor_ref);
    else
        shub_store_op_blob(s, 27, v[AC_ACTOR_HASH].p, 32);
    shub_store_op_blob(s, 28, row_hash, 32);
    for (size_t i = 0; i < N_AUDIT_TEXTS; i++)
        shub_store_op_opt_int(s, audit_texts[i].bind, ids[i]);
    if ((rc = shub_store_op_end(s, "audit append", err)))
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
static void read_plain(shub_db_stmt_t *st, int i, canon_val_t *v)
{
    switch (shub_db_column_type(st, i)) {
    case SHUB_DB_INT:
        v->type = CANON_INT;
        v->i = shub_db_column_int(st, i);
        break;
    case SHUB_DB_TEXT:
        v->type = CANON_TEXT;
        v->p = shub_db_column_text(st, i);
        v->n = shub_db_column_bytes(st, i);
        break;
    case SHUB_DB_BLOB:
        v->type = CANON_BLOB;
        v->p = shub_db_column_blob(st, i);
        v->n = shub_db_column_bytes(st, i);
        break;
    case SHUB_DB_OTHER: /* never written: encode so that it cannot match */
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

void shub_store_row_values(shub_store_t *s, shub_db_stmt_t *st, int first,
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
        int col = first + from[c];
        shub_db_type_t type = shub_db_column_type(st, col);
        canon_val_t *v = &vals[c];
        if (type == SHUB_DB_NULL) {
            canon_text(v, NULL);
        } else {
            int64_t id = shub_db_column_int(st, col);
            const name_t *e = s->read_last[i]; /* rows in order mostly repeat */
            if (type != SHUB_DB_INT)
                e = NULL;
            else if (!e || e->id != id)
                e = s->read_last[i] = shub_names_entry(s, id);
            v->type = CANON_TEXT;
            if (e) {
                v->p = e->text;
                v->n = e->len;
            } else { /* a name that is not there: the row cannot hash right */
                snprintf(scratch[c], 32, "#%lld?", (long long)id);
                v->p = scratch[c];
                v->n = strlen(scratch[c]);
            }
        }
    }
    int acol = first + from[AC_AGREEMENT];
    if (shub_db_column_type(st, acol) == SHUB_DB_NULL) {
        canon_text(&vals[AC_AGREEMENT], NULL);
        canon_int(&vals[AC_AGREEMENT_VERSION], 0, false);
        canon_text(&vals[AC_AGREEMENT_HASH], NULL);
    } else {
        int64_t vid = shub_db_column_int(st, acol);
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
    int actor_text = first + SHUB_AUDIT_TABLE_NCOLS; /* SHUB_AUDIT_READ_COLUMNS_PG */
    if (shub_db_column_count(st) > actor_text &&
        shub_db_column_type(st, actor_text) != SHUB_DB_NULL)
        read_plain(st, actor_text, &vals[AC_ACTOR_HASH]);
    if (row_hash) {
        const void *p = shub_db_column_blob(st, first + 27);
        *row_hash = p;
        *row_hash_len = p ? (size_t)shub_db_column_bytes(st, first + 27) : 0;
    }
}

static const uint8_t *blob32(const canon_val_t *v)
{
    return v->type == CANON_BLOB && v->n == 32 ? v->p : NULL;
}

int shub_store_audit_read(shub_store_t *s, int64_t after_seq, size_t limit,
                          shub_audit_fn *fn, void *ctx, shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    int rc, stop = 0;
    if (!fn)
        return shub_err_set(err, SHUB_EINVAL, "audit read: no callback");
    if (limit == 0)
        return 0;
    if (s->readonly && (rc = shub_store_names_load(s, err)))
        return rc;
    if ((rc = shub_store_stmt(s, ST_AUDIT_READ, &st, err)))
        return rc;
    if (shub_db_bind_int(st, 1, after_seq) ||
        shub_db_bind_int(st, 2, limit > INT64_MAX ? INT64_MAX : (int64_t)limit))
        return shub_store_db_fail(s, err, "audit read");
    while (!stop && (rc = shub_db_step(st)) == SHUB_DB_ROW) {
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
        if (!row.action || !row.decision)
            stop = shub_err_set(err, SHUB_EDB,
                                "audit read: row %lld lacks action or decision",
                                (long long)row.seq);
        else
            stop = fn(&row, ctx);
    }
    return walk_end(s, st, stop, rc, shub_store_db_fail, "audit read", err);
}

/* ---- receipts ------------------------------------------------------------ */

/* What an outcome row and an update row to its sender both hold, as name ids. */
typedef struct outcome_ids {
    int64_t recipient, reason, detail, flow, vid;
} outcome_ids_t;

/* Interns o's recipient, reason, detail, flow and agreement version, in that
 * order (before the row's own op begins: interning queues ops of its own). */
static int outcome_intern(shub_store_t *s, const shub_store_outcome_t *o,
                          outcome_ids_t *ids, shub_err_t *err)
{
    int rc;
    if ((rc = intern(s, o->recipient, &ids->recipient, NULL, err)) ||
        (rc = intern(s, o->reason, &ids->reason, NULL, err)) ||
        (rc = intern(s, o->detail, &ids->detail, NULL, err)) ||
        (rc = intern(s, o->flow, &ids->flow, NULL, err)))
        return rc;
    return agreement_vid(s, o->agreement, o->agreement_version, o->agreement_hash,
                         &ids->vid, err);
}

/* Binds recipient, state, reason, detail, agreement version and flow to the
 * open op, from parameter `first` on. */
static void outcome_bind(shub_store_t *s, int first, shub_outcome_t state,
                         const outcome_ids_t *ids)
{
    shub_store_op_int(s, first, ids->recipient);
    shub_store_op_int(s, first + 1, state);
    shub_store_op_opt_int(s, first + 2, ids->reason);
    shub_store_op_opt_int(s, first + 3, ids->detail);
    shub_store_op_opt_int(s, first + 4, ids->vid);
    shub_store_op_opt_int(s, first + 5, ids->flow);
}

int shub_store_outcome_put(shub_store_t *s, const shub_store_outcome_t *o,
                           shub_err_t *err)
{
    outcome_ids_t ids;
    int rc;
    if (!o || !o->recipient)
        return shub_err_set(err, SHUB_EINVAL, "outcome put: missing recipient");
    if (o->state != SHUB_OUTCOME_QUEUED && o->state != SHUB_OUTCOME_DENIED &&
        o->state != SHUB_OUTCOME_DEAD)
        return shub_err_set(err, SHUB_EINVAL, "outcome put: state '%s' is not stored",
                            shub_outcome_name(o->state));
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "outcome put: no transaction is open");
    if ((rc = outcome_intern(s, o, &ids, err)))
        return rc;
    shub_store_op_begin(s, ST_OUTCOME_PUT);
    shub_store_op_blob(s, 1, o->event_id.bytes, SHUB_ID_SIZE);
    outcome_bind(s, 2, o->state, &ids);
    return shub_store_op_end(s, "outcome put", err);
}

int shub_store_outcome_dead(shub_store_t *s, const shub_id_t *id, const char *recipient,
                            const char *reason, const char *detail, shub_err_t *err)
{
    int64_t rid, rsn, det;
    int rc;
    if (!id || !recipient)
        return shub_err_set(err, SHUB_EINVAL, "outcome dead: missing id or recipient");
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "outcome dead: no transaction is open");
    if ((rc = intern(s, recipient, &rid, NULL, err)) ||
        (rc = intern(s, reason, &rsn, NULL, err)) ||
        (rc = intern(s, detail, &det, NULL, err)))
        return rc;
    shub_store_op_begin(s, ST_OUTCOME_DEAD);
    shub_store_op_blob(s, 1, id->bytes, SHUB_ID_SIZE);
    shub_store_op_int(s, 2, rid);
    shub_store_op_opt_int(s, 3, rsn);
    shub_store_op_opt_int(s, 4, det);
    return shub_store_op_end(s, "outcome dead", err);
}

static int cmp_outcome(const void *a, const void *b)
{
    const shub_store_outcome_t *x = a, *y = b;
    return strcmp(x->recipient, y->recipient);
}

/* The text of name id for a callback's call: not lent (the reader copies
 * what it keeps), so a read that partners can drive (a resent SHARE's
 * receipt, a sender's updates) holds no name in memory for good. */
static const char *name_for_call(shub_store_t *s, int64_t id)
{
    const name_t *e = shub_names_entry(s, id);
    return e ? e->text : NULL;
}

int shub_store_outcomes(shub_store_t *s, const shub_id_t *id, shub_outcome_store_fn *fn,
                        void *ctx, shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    shub_store_outcome_t *rows = NULL;
    size_t n = 0, cap = 0;
    int rc, step;
    if (!id || !fn)
        return shub_err_set(err, SHUB_EINVAL, "outcomes: missing id or callback");
    if ((rc = shub_store_read_stmt(s, ST_OUTCOMES, &st, err)))
        return rc;
    if (bind_id(st, 1, id))
        return shub_store_read_fail(s, err, "outcomes");
    rc = 0;
    while ((step = shub_db_step(st)) == SHUB_DB_ROW) {
        if (shub_grow((void **)&rows, &cap, n + 1, sizeof *rows)) {
            rc = shub_err_set(err, SHUB_ENOMEM, "outcomes: out of memory");
            break;
        }
        const agreement_ref_t *a = agreement_by_vid(s, shub_db_column_int(st, 4));
        rows[n++] = (shub_store_outcome_t){
            .event_id = *id,
            .recipient = name_for_call(s, shub_db_column_int(st, 0)),
            .state = (shub_outcome_t)shub_db_column_int(st, 1),
            .reason = name_for_call(s, shub_db_column_int(st, 2)),
            .detail = name_for_call(s, shub_db_column_int(st, 3)),
            .agreement = a ? a->id : NULL,
            .agreement_version = a ? a->version : 0,
            .agreement_hash = a ? a->hash : NULL,
            .flow = name_for_call(s, shub_db_column_int(st, 5)),
        };
        if (!rows[n - 1].recipient)
            rows[n - 1].recipient = "?";
    }
    rc = walk_end(s, st, rc, step, shub_store_read_fail, "outcomes", err);
    if (rc == 0 && n > 1)
        qsort(rows, n, sizeof *rows, cmp_outcome);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = fn(&rows[i], ctx);
    shub_free(rows);
    return rc;
}

/* ---- sealed copies --------------------------------------------------------- */

/* What a stored copy and a deadline both name: recipient, sender, event type,
 * flow, area and agreement version. Each text is interned and pointed at the
 * store's copy (valid until close); the ids come back in the struct. */
typedef struct route {
    const char **recipient, **sender, **type, **flow, **area, **agreement, **hash;
    uint32_t version;
    int64_t recipient_id, sender_id, type_id, flow_id, area_id, vid;
} route_t;

static int intern_route(shub_store_t *s, route_t *r, shub_err_t *err)
{
    int rc;
    if ((rc = intern(s, *r->recipient, &r->recipient_id, r->recipient, err)) ||
        (rc = intern(s, *r->sender, &r->sender_id, r->sender, err)) ||
        (rc = intern(s, *r->type, &r->type_id, r->type, err)) ||
        (rc = intern(s, *r->flow, &r->flow_id, r->flow, err)) ||
        (rc = intern(s, *r->area, &r->area_id, r->area, err)) ||
        (rc = agreement_vid(s, *r->agreement, r->version, *r->hash, &r->vid, err)))
        return rc;
    const agreement_ref_t *a = agreement_by_vid(s, r->vid);
    if (a) {
        *r->agreement = a->id;
        *r->hash = a->hash;
    }
    return 0;
}

int shub_store_copy_put(shub_store_t *s, shub_store_copy_t *c, shub_err_t *err)
{
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
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "copy put: no transaction is open");
    route_t r = {.recipient = &c->recipient, .sender = &c->sender, .type = &c->event_type,
                 .flow = &c->flow, .area = &c->area, .agreement = &c->agreement,
                 .hash = &c->agreement_hash, .version = c->agreement_version};
    if ((rc = intern_route(s, &r, err)) ||
        (rc = intern(s, c->purpose, &pid, &c->purpose, err)) ||
        (rc = intern(s, c->basis, &bid, &c->basis, err)) ||
        (rc = intern(s, c->fields_shared, &fsid, &c->fields_shared, err)))
        return rc;
    rid = r.recipient_id, sid = r.sender_id, tid = r.type_id, fid = r.flow_id,
    aid = r.area_id, vid = r.vid;
    shub_store_op_begin(s, ST_COPY_PUT);
    shub_store_op_blob(s, 1, c->event_id.bytes, SHUB_ID_SIZE);
    shub_store_op_int(s, 2, rid);
    shub_store_op_int(s, 3, sid);
    shub_store_op_int(s, 4, tid);
    shub_store_op_int(s, 5, vid);
    shub_store_op_int(s, 6, fid);
    shub_store_op_opt_int(s, 7, aid);
    shub_store_op_opt_int(s, 8, pid);
    shub_store_op_opt_int(s, 9, bid);
    shub_store_op_opt_int(s, 10, fsid);
    shub_store_op_int(s, 11, c->created_ms);
    shub_store_op_blob(s, 12, c->sealed, c->sealed_len);
    shub_store_op_int(s, 13, s->copy_seq + 1);
    if ((rc = shub_store_op_end(s, "copy put", err)))
        return rc;
    c->seq = ++s->copy_seq;
    return 0;
}

int shub_store_copy_sealed(shub_store_t *s, int64_t seq, shub_buf_t *out, shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    int rc = shub_store_read_stmt(s, ST_COPY_SEALED, &st, err);
    if (rc)
        return rc;
    if (shub_db_bind_int(st, 1, seq))
        return shub_store_read_fail(s, err, "read sealed copy");
    rc = shub_db_step(st);
    if (rc != SHUB_DB_ROW) {
        rc = rc == SHUB_DB_DONE ? shub_err_set(err, SHUB_ENOTFOUND, "no sealed copy %lld",
                                               (long long)seq)
                                : shub_store_read_fail(s, err, "read sealed copy");
        shub_db_reset(st);
        return rc;
    }
    const void *p = shub_db_column_blob(st, 0);
    size_t n = (size_t)shub_db_column_bytes(st, 0);
    out->len = 0;
    rc = p && n ? shub_buf_append(out, p, n) : 0;
    shub_db_reset(st);
    return rc ? shub_err_set(err, SHUB_ENOMEM, "read sealed copy: out of memory") : 0;
}

int shub_store_copy_drop(shub_store_t *s, int64_t seq, shub_err_t *err)
{
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "copy drop: no transaction is open");
    if (shub_store_op_drop(s, seq))
        return shub_err_set(err, SHUB_ENOMEM, "copy drop: out of memory");
    return 0;
}

int shub_store_copies(shub_store_t *s, shub_copy_fn *fn, void *ctx, shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    int rc, step, stop = 0;
    if (!fn)
        return shub_err_set(err, SHUB_EINVAL, "copies: no callback");
    if ((rc = shub_store_drain(s, err)) || (rc = shub_store_read_stmt(s, ST_COPIES, &st, err)))
        return rc;
    while (!stop && (step = shub_db_step(st)) == SHUB_DB_ROW) {
        const agreement_ref_t *a = agreement_by_vid(s, shub_db_column_int(st, 5));
        shub_store_copy_t c = {
            .seq = shub_db_column_int(st, 0),
            .recipient = shub_store_name(s, shub_db_column_int(st, 2)),
            .sender = shub_store_name(s, shub_db_column_int(st, 3)),
            .event_type = shub_store_name(s, shub_db_column_int(st, 4)),
            .agreement = a ? a->id : NULL,
            .agreement_hash = a ? a->hash : NULL,
            .agreement_version = a ? a->version : 0,
            .flow = shub_store_name(s, shub_db_column_int(st, 6)),
            .area = shub_store_name(s, shub_db_column_int(st, 7)),
            .purpose = shub_store_name(s, shub_db_column_int(st, 8)),
            .basis = shub_store_name(s, shub_db_column_int(st, 9)),
            .fields_shared = shub_store_name(s, shub_db_column_int(st, 10)),
            .created_ms = shub_db_column_int(st, 11),
        };
        if (!column_id(st, 1, &c.event_id) || !c.recipient || !c.sender ||
            !c.event_type || !c.agreement || !c.flow)
            stop = shub_err_set(err, SHUB_EDB,
                                "sealed copy %lld is malformed (names missing)",
                                (long long)c.seq);
        else
            stop = fn(&c, ctx);
    }
    return walk_end(s, st, stop, step, shub_store_read_fail, "read sealed copies", err);
}

/* ---- updates to senders ------------------------------------------------------ */

int shub_store_update_add(shub_store_t *s, const shub_store_update_t *u, shub_err_t *err)
{
    int64_t sid;
    outcome_ids_t ids;
    int rc;
    if (!u || !u->sender || !u->recipient || u->seq <= 0)
        return shub_err_set(err, SHUB_EINVAL, "update add: missing sender, recipient or seq");
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "update add: no transaction is open");
    const shub_store_outcome_t o = {.recipient = u->recipient,
                                    .reason = u->reason,
                                    .detail = u->detail,
                                    .agreement = u->agreement,
                                    .agreement_version = u->agreement_version,
                                    .flow = u->flow};
    if ((rc = intern(s, u->sender, &sid, NULL, err)) ||
        (rc = outcome_intern(s, &o, &ids, err)))
        return rc;
    shub_store_op_begin(s, ST_UPDATE_ADD);
    shub_store_op_int(s, 1, sid);
    shub_store_op_int(s, 2, u->seq);
    shub_store_op_blob(s, 3, u->event_id.bytes, SHUB_ID_SIZE);
    outcome_bind(s, 4, u->state, &ids);
    return shub_store_op_end(s, "update add", err);
}

int shub_store_updates(shub_store_t *s, const char *sender, int64_t after, size_t limit,
                       shub_update_fn *fn, void *ctx, shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    int rc, step, stop = 0;
    int64_t sid = shub_store_name_find(s, sender);
    if (!fn || !sender)
        return shub_err_set(err, SHUB_EINVAL, "updates: missing sender or callback");
    if (sid == 0 || limit == 0)
        return 0;
    if ((rc = shub_store_drain(s, err)) || (rc = shub_store_read_stmt(s, ST_UPDATES, &st, err)))
        return rc;
    if (shub_db_bind_int(st, 1, sid) || shub_db_bind_int(st, 2, after) ||
        shub_db_bind_int(st, 3, limit > INT64_MAX ? INT64_MAX : (int64_t)limit))
        return shub_store_read_fail(s, err, "updates");
    while (!stop && (step = shub_db_step(st)) == SHUB_DB_ROW) {
        const agreement_ref_t *a = agreement_by_vid(s, shub_db_column_int(st, 7));
        shub_store_update_t u = {
            .sender = sender,
            .seq = shub_db_column_int(st, 1),
            .recipient = name_for_call(s, shub_db_column_int(st, 3)),
            .state = (shub_outcome_t)shub_db_column_int(st, 4),
            .reason = name_for_call(s, shub_db_column_int(st, 5)),
            .detail = name_for_call(s, shub_db_column_int(st, 6)),
            .agreement = a ? a->id : NULL,
            .agreement_version = a ? a->version : 0,
            .flow = name_for_call(s, shub_db_column_int(st, 8)),
        };
        if (!column_id(st, 2, &u.event_id) || !u.recipient)
            continue; /* malformed: skipped, never sent half */
        stop = fn(&u, ctx);
    }
    return walk_end(s, st, stop, step, shub_store_read_fail, "updates", err);
}

int shub_store_updates_confirm(shub_store_t *s, const char *sender, int64_t upto,
                               shub_err_t *err)
{
    int64_t sid = sender ? shub_store_name_find(s, sender) : 0;
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "confirm: no transaction is open");
    if (sid == 0)
        return 0;
    shub_store_op_begin(s, ST_UPDATES_CONFIRM);
    shub_store_op_int(s, 1, sid);
    shub_store_op_int(s, 2, upto);
    return shub_store_op_end(s, "confirm updates", err);
}

/* ---- witnesses ------------------------------------------------------------- */

int shub_store_witness_add(shub_store_t *s, const char *org, const shub_signed_head_t *w,
                           int64_t now_ms, shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    int64_t oid;
    int rc;
    if (!org || !w)
        return shub_err_set(err, SHUB_EINVAL, "witness add: missing org or witness");
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "witness add: no transaction is open");
    /* Agents countersign what they were sent, and checkpoints are sent only
     * once committed: the reading connection sees every one a witness can
     * name. */
    if ((rc = shub_store_read_stmt(s, ST_WITNESS_CHECK, &st, err)))
        return rc;
    if (shub_db_bind_int(st, 1, w->seq) || shub_db_bind_blob(st, 2, w->head, 32) ||
        shub_db_bind_int(st, 3, w->at_ms))
        return shub_store_read_fail(s, err, "witness add");
    rc = shub_db_step(st);
    shub_db_reset(st);
    if (rc == SHUB_DB_DONE)
        return shub_err_set(err, SHUB_ENOTFOUND,
                            "witness add: no checkpoint of rows up to %lld at %lld",
                            (long long)w->seq, (long long)w->at_ms);
    if (rc != SHUB_DB_ROW)
        return shub_store_read_fail(s, err, "witness add");
    if ((rc = intern(s, org, &oid, NULL, err)))
        return rc;
    shub_store_op_begin(s, ST_WITNESS_ADD);
    shub_store_op_int(s, 1, oid);
    shub_store_op_int(s, 2, w->seq);
    shub_store_op_blob(s, 3, w->head, 32);
    shub_store_op_int(s, 4, w->at_ms);
    shub_store_op_blob(s, 5, w->key, 32);
    shub_store_op_blob(s, 6, w->sig, 64);
    shub_store_op_int(s, 7, now_ms);
    return shub_store_op_end(s, "witness add", err);
}

/* ---- agreements ---------------------------------------------------------- */

int shub_store_agreement_seen(shub_store_t *s, const char *id, uint32_t version,
                              const char *content_hash, const char *title,
                              const char *status, int64_t valid_from, int64_t valid_until,
                              int64_t review, int64_t now_ms, shub_err_t *err)
{
    int rc;
    if (!id || !content_hash)
        return shub_err_set(err, SHUB_EINVAL,
                            "agreement seen: missing id or content hash");
    if (s->readonly)
        return shub_err_set(err, SHUB_EPROTO, "agreement seen: store is open read-only");
    for (size_t i = s->n_agreements; i-- > 0;) {
        const agreement_ref_t *a = &s->agreements[i];
        if (a->version == version && strcmp(a->id, id) == 0 &&
            strcmp(a->hash, content_hash) == 0)
            return 0; /* known */
    }
    bool own = !s->open; /* outside a transaction: one of its own */
    if (own && (rc = shub_store_begin(s, err)))
        return rc;
    int64_t vid = s->n_agreements ? s->agreements[s->n_agreements - 1].vid + 1 : 1;
    shub_store_op_begin(s, ST_AGREEMENT_ADD);
    shub_store_op_text(s, 1, id);
    shub_store_op_int(s, 2, version);
    shub_store_op_text(s, 3, content_hash);
    shub_store_op_text(s, 4, title);
    shub_store_op_text(s, 5, status);
    shub_store_op_opt_int(s, 6, valid_from);
    shub_store_op_opt_int(s, 7, valid_until);
    shub_store_op_opt_int(s, 8, review);
    shub_store_op_int(s, 9, now_ms);
    shub_store_op_int(s, 10, vid);
    if ((rc = shub_store_op_end(s, "agreement seen", err)) == 0 &&
        agreement_add_ref(s, vid, id, version, content_hash))
        rc = shub_err_set(err, SHUB_ENOMEM, "agreement seen: out of memory");
    if (own)
        rc = rc ? (shub_store_rollback(s), rc) : shub_store_commit(s, err);
    return rc;
}

/* ---- deadlines ---------------------------------------------------------- */

int shub_store_deadline_put(shub_store_t *s, shub_store_deadline_t *d, shub_err_t *err)
{
    int rc;
    if (!d || !d->recipient || !d->sender || !d->event_type || !d->agreement || !d->flow ||
        (d->kind != SHUB_STORE_DEADLINE_ACK && d->kind != SHUB_STORE_DEADLINE_ACT))
        return shub_err_set(err, SHUB_EINVAL,
                            "deadline put: missing recipient, sender, type, agreement, "
                            "flow or kind");
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "deadline put: no transaction is open");
    route_t r = {.recipient = &d->recipient, .sender = &d->sender, .type = &d->event_type,
                 .flow = &d->flow, .area = &d->area, .agreement = &d->agreement,
                 .hash = &d->agreement_hash, .version = d->agreement_version};
    if ((rc = intern_route(s, &r, err)))
        return rc;
    shub_store_op_begin(s, ST_DEADLINE_PUT);
    shub_store_op_blob(s, 1, d->event_id.bytes, SHUB_ID_SIZE);
    shub_store_op_int(s, 2, r.recipient_id);
    shub_store_op_int(s, 3, d->kind);
    shub_store_op_int(s, 4, r.sender_id);
    shub_store_op_int(s, 5, r.type_id);
    shub_store_op_int(s, 6, r.vid);
    shub_store_op_int(s, 7, r.flow_id);
    shub_store_op_opt_int(s, 8, r.area_id);
    shub_store_op_int(s, 9, d->hours);
    shub_store_op_int(s, 10, d->started_ms);
    shub_store_op_int(s, 11, d->due_ms);
    shub_store_op_opt_int(s, 12, d->answered_ms);
    shub_store_op_opt_int(s, 13, d->escalated_ms);
    return shub_store_op_end(s, "deadline put", err);
}

int shub_store_deadline_mark(shub_store_t *s, const shub_id_t *id, const char *recipient,
                             int kind, int64_t answered_ms, int64_t escalated_ms,
                             shub_err_t *err)
{
    int64_t rid;
    int rc;
    if (!id || !recipient)
        return shub_err_set(err, SHUB_EINVAL, "deadline mark: missing event id or recipient");
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "deadline mark: no transaction is open");
    if ((rc = intern(s, recipient, &rid, NULL, err)))
        return rc;
    shub_store_op_begin(s, ST_DEADLINE_MARK);
    shub_store_op_blob(s, 1, id->bytes, SHUB_ID_SIZE);
    shub_store_op_int(s, 2, rid);
    shub_store_op_int(s, 3, kind);
    shub_store_op_opt_int(s, 4, answered_ms);
    shub_store_op_opt_int(s, 5, escalated_ms);
    return shub_store_op_end(s, "deadline mark", err);
}

int shub_store_deadlines_open(shub_store_t *s, shub_deadline_store_fn *fn, void *ctx,
                              shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    int rc, step, stop = 0;
    if (!fn)
        return shub_err_set(err, SHUB_EINVAL, "deadlines: no callback");
    if ((rc = shub_store_drain(s, err)) ||
        (rc = shub_store_read_stmt(s, ST_DEADLINES_OPEN, &st, err)))
        return rc;
    while (!stop && (step = shub_db_step(st)) == SHUB_DB_ROW) {
        const agreement_ref_t *a = agreement_by_vid(s, shub_db_column_int(st, 5));
        shub_store_deadline_t d = {
            .recipient = shub_store_name(s, shub_db_column_int(st, 1)),
            .kind = (int)shub_db_column_int(st, 2),
            .sender = shub_store_name(s, shub_db_column_int(st, 3)),
            .event_type = shub_store_name(s, shub_db_column_int(st, 4)),
            .agreement = a ? a->id : NULL,
            .agreement_hash = a ? a->hash : NULL,
            .agreement_version = a ? a->version : 0,
            .flow = shub_store_name(s, shub_db_column_int(st, 6)),
            .area = shub_store_name(s, shub_db_column_int(st, 7)),
            .hours = (uint32_t)shub_db_column_int(st, 8),
            .started_ms = shub_db_column_int(st, 9),
            .due_ms = shub_db_column_int(st, 10),
            .answered_ms = shub_db_column_int(st, 11),
            .escalated_ms = shub_db_column_int(st, 12),
        };
        if (!column_id(st, 0, &d.event_id) || !d.recipient || !d.sender ||
            !d.event_type || !d.agreement || !d.flow)
            continue; /* malformed: never escalated on half a row */
        stop = fn(&d, ctx);
    }
    return walk_end(s, st, stop, step, shub_store_read_fail, "read deadlines", err);
}

/* ---- notices from the hub ------------------------------------------------ */

int shub_store_notice_sent(shub_store_t *s, const char *kind, const char *subject,
                           bool *sent, shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    if (!kind || !subject || !sent)
        return shub_err_set(err, SHUB_EINVAL, "notice: missing kind or subject");
    int rc = shub_store_read_stmt(s, ST_NOTICE_FIND, &st, err);
    if (rc)
        return rc;
    if (bind_str(st, 1, kind) || bind_str(st, 2, subject))
        return shub_store_read_fail(s, err, "notice lookup");
    rc = shub_db_step(st);
    shub_db_reset(st);
    if (rc != SHUB_DB_ROW && rc != SHUB_DB_DONE)
        return shub_store_read_fail(s, err, "notice lookup");
    *sent = rc == SHUB_DB_ROW;
    return 0;
}

int shub_store_notice_add(shub_store_t *s, const char *kind, const char *subject,
                          const char *recipient, const shub_id_t *id, int64_t at_ms,
                          shub_err_t *err)
{
    if (!kind || !subject || !recipient || !id)
        return shub_err_set(err, SHUB_EINVAL, "notice: missing argument");
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "notice: no transaction is open");
    shub_store_op_begin(s, ST_NOTICE_ADD);
    shub_store_op_text(s, 1, kind);
    shub_store_op_text(s, 2, subject);
    shub_store_op_text(s, 3, recipient);
    shub_store_op_blob(s, 4, id->bytes, SHUB_ID_SIZE);
    shub_store_op_int(s, 5, at_ms);
    return shub_store_op_end(s, "notice add", err);
}

/* ---- retention ------------------------------------------------------------- */

int shub_store_purge_outcomes(shub_store_t *s, int64_t before_ms, size_t max,
                              shub_err_t *err)
{
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "purge: no transaction is open");
    shub_store_op_begin(s, ST_PURGE_OUTCOMES);
    shub_store_op_int(s, 1, before_ms);
    shub_store_op_int(s, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    return shub_store_op_end(s, "purge receipts", err);
}
