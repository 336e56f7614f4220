/*
 * test_store: the broker's store on real SQLite files in a temporary
 * directory. It reads as the hub uses it (begin, dedupe, audit, outbox,
 * commit), then attacks the audit log the way an insider with the sqlite3
 * shell would (edit, delete, reorder, insert, truncate, forge a signature)
 * and checks that verify names the problem and the first bad row. Raw SQL
 * here is the attacker's tool; the store's own SQL stays in broker/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sharehub/alloc.h"
#include "sharehub/store.h"

#define BASE_MS 1760000000000LL

typedef struct fixture {
    char dir[64];
    char path[128];
    uint8_t pk[32], sk[64]; /* checkpoint signing key */
    uint8_t subject[32];    /* subject hashing key */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f || sodium_init() < 0)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/shub-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/hub.db", f->dir);
    crypto_sign_keypair(f->pk, f->sk);
    randombytes_buf(f->subject, sizeof f->subject);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    char p[sizeof f->dir + 1 + sizeof e->d_name];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
    }
    if (d)
        closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

static shub_store_opts_t opts_for(const fixture_t *f, uint32_t every)
{
    shub_store_opts_t o = {
        .synchronous_full = false,
        .subject_key = f->subject,
        .sign_secret = f->sk,
        .checkpoint_every = every,
    };
    return o;
}

static shub_store_t *open_store(const fixture_t *f, const char *path, uint32_t every)
{
    shub_store_opts_t o = opts_for(f, every);
    shub_store_t *s = NULL;
    shub_err_t err;
    int rc = shub_store_open(path ? path : f->path, &o, &s, &err);
    if (rc)
        print_error("open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

static void make_id(int64_t i, shub_id_t *id)
{
    memset(id, 0, sizeof *id);
    uint64_t v = (uint64_t)(BASE_MS + i);
    for (int b = 5; b >= 0; b--, v >>= 8)
        id->bytes[b] = (uint8_t)v;
    id->bytes[6] = 0x70;
    id->bytes[15] = (uint8_t)(i * 37);
}

static const char *const subjects[] = {"wmp-person-1001", "wmp-person-1002",
                                       "wmp-person-1003"};

/* A realistic, deterministic row: the same i gives the same row in any store,
 * which lets a test build a second chain with the same history and then fork
 * it (the forger's workbench). */
static void make_row(int64_t i, shub_audit_row_t *r)
{
    static const uint8_t payload_hash[32] = {1, 2, 3, 4, 5, 6, 7, 8};
    memset(r, 0, sizeof *r);
    r->at_ms = BASE_MS + i;
    r->action = "decide";
    make_id(i, &r->event_id);
    r->event_type = "marac.referral";
    r->sender = "wmp";
    r->recipient = i % 2 ? "marac-coventry" : "idva-coventry";
    r->decision = i % 3 ? "allow" : "deny";
    r->reason = i % 3 ? NULL : "recipient-not-party";
    r->explanation = i % 7 ? "allowed by flow police-to-marac" : "";
    r->agreement = "wm-marac-isa";
    r->agreement_version = 3;
    r->agreement_hash = "9f2c7a";
    r->flow = "police-to-marac";
    r->purpose = "marac-risk-management";
    r->legal_basis = "uk-gdpr-6-1-e";
    r->consent = "not-sought";
    r->case_ref = "cov-2026-0042";
    r->area = "coventry";
    r->fields_shared = "dash_score,victim.name";
    r->fields_stripped = "victim.health";
    r->payload_hash = payload_hash;
    r->subject_ref = subjects[i % 3];
}

/* Appends rows from..to (inclusive) in transactions of `batch` rows. */
static void append_rows(shub_store_t *s, int64_t from, int64_t to, int64_t batch)
{
    shub_err_t err;
    for (int64_t i = from; i <= to; i++) {
        shub_audit_row_t r;
        if ((i - from) % batch == 0)
            assert_int_equal(shub_store_begin(s, &err), 0);
        make_row(i, &r);
        assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
        assert_int_equal(r.seq, i);
        if ((i - from) % batch == batch - 1 || i == to)
            assert_int_equal(shub_store_commit(s, &err), 0);
    }
}

static void sql(const char *path, const char *text)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    int rc = sqlite3_exec(db, text, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        print_error("sql: %s\n", msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
    assert_int_equal(rc, SQLITE_OK);
}

static int64_t sql_int(const char *path, const char *text)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, text, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static shub_verify_result_t verify(const fixture_t *f, const uint8_t *pk)
{
    shub_verify_result_t res;
    shub_err_t err;
    int rc = shub_store_verify(f->path, pk, &res, &err);
    if (rc)
        print_error("verify: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return res;
}

/* The standard victim: 50 rows, checkpoints at rows 20 and 40, closed. */
static void build_log(fixture_t *f)
{
    shub_store_t *s = open_store(f, NULL, 20);
    append_rows(s, 1, 50, 10);
    shub_store_close(&s);
    shub_verify_result_t res = verify(f, f->pk);
    assert_true(res.ok);
    assert_int_equal(res.checkpoints, 2);
}

/* ---- the chain ----------------------------------------------------------- */

typedef struct seen {
    int n;
    shub_audit_row_t row;
    char explanation[64], recipient[64];
    int explanation_null, reason_null;
    uint8_t subject_hash[32];
} seen_t;

static int keep_row(const shub_audit_row_t *row, void *ctx)
{
    seen_t *s = ctx;
    s->n++;
    s->row = *row;
    s->explanation_null = row->explanation == NULL;
    s->reason_null = row->reason == NULL;
    snprintf(s->explanation, sizeof s->explanation, "%s",
             row->explanation ? row->explanation : "");
    snprintf(s->recipient, sizeof s->recipient, "%s",
             row->recipient ? row->recipient : "");
    if (row->subject_hash)
        memcpy(s->subject_hash, row->subject_hash, 32);
    s->row.explanation = s->row.reason = s->row.recipient = NULL;
    return 0;
}

static void test_audit_append_many_rows_verify_ok(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, NULL, 1000);
    shub_err_t err;
    int64_t seq;
    append_rows(s, 1, 5000, 250);
    shub_store_head(s, &seq, NULL);
    assert_int_equal(seq, 5000);

    /* Row 42 comes back exactly, NULL and "" kept apart, subject only hashed. */
    seen_t seen = {0};
    uint8_t want[32];
    assert_int_equal(shub_store_audit_read(s, 41, 1, keep_row, &seen, &err), 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.row.seq, 42);
    assert_int_equal(seen.row.at_ms, BASE_MS + 42);
    assert_string_equal(seen.explanation, "");
    assert_false(seen.explanation_null);
    assert_false(seen.reason_null); /* 42 % 3 == 0: a deny with a reason */
    assert_string_equal(seen.recipient, "idva-coventry");
    assert_int_equal(seen.row.agreement_version, 3);
    assert_null(seen.row.subject_ref);
    assert_int_equal(shub_store_subject_hash(s, subjects[0], want), 0);
    assert_memory_equal(seen.subject_hash, want, 32);
    seen.n = 0;
    assert_int_equal(shub_store_audit_read(s, 43, 1, keep_row, &seen, &err), 0);
    assert_true(seen.reason_null); /* 44 % 3 != 0: allow, reason NULL */
    shub_store_close(&s);

    shub_verify_result_t res = verify(f, f->pk);
    assert_true(res.ok);
    assert_int_equal(res.rows, 5000);
    assert_int_equal(res.checkpoints, 5);
    assert_int_equal(res.bad_seq, 0);
    assert_string_equal(res.problem, "");
    /* Nothing of a subject reference is in the file. */
    assert_int_equal(sql_int(f->path,
                             "SELECT count(*) FROM audit WHERE "
                             "instr(CAST(subject_hash AS TEXT), 'wmp-person') > 0"),
                     0);
}

static void test_audit_append_outside_transaction_eproto(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, NULL, 0);
    shub_audit_row_t r;
    shub_err_t err;
    make_row(1, &r);
    assert_int_equal(shub_store_audit_append(s, &r, &err), SHUB_EPROTO);
    assert_string_equal(err.msg, "audit append: no transaction is open");
    assert_int_equal(shub_store_commit(s, &err), SHUB_EPROTO);
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_begin(s, &err), SHUB_EPROTO);
    r.decision = NULL;
    assert_int_equal(shub_store_audit_append(s, &r, &err), SHUB_EINVAL);
    shub_store_rollback(s);
    shub_store_close(&s);
}

/* ---- dedupe and group commit -------------------------------------------- */

static void test_event_add_twice_eexist_with_original_sender(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, NULL, 0);
    shub_err_t err;
    shub_id_t id;
    char sender[SHUB_MSG_MAX_NAME + 1] = "";
    make_id(7, &id);
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(
        shub_store_event_add(s, &id, "wmp", "marac.referral", BASE_MS, sender, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_event_add(s, &id, "coventry-cc", "marac.referral",
                                          BASE_MS + 5, sender, &err),
                     SHUB_EEXIST);
    assert_string_equal(sender, "wmp");
    assert_int_equal(err.code, SHUB_EEXIST);
    assert_non_null(strstr(err.msg, "already seen from 'wmp'"));
    /* The transaction survives a duplicate: the rest of the batch goes on. */
    shub_id_t other;
    make_id(8, &other);
    assert_int_equal(
        shub_store_event_add(s, &other, "wmp", "marac.referral", BASE_MS, NULL, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    assert_int_equal(shub_store_event_add(s, &other, "wmp", "x", BASE_MS, NULL, &err),
                     SHUB_EPROTO);
    shub_store_close(&s);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM events"), 2);
}

static void test_rollback_group_leaves_nothing_restores_head(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, NULL, 0);
    shub_err_t err;
    uint8_t head[32], after[32];
    int64_t seq;
    append_rows(s, 1, 10, 10);
    shub_store_head(s, &seq, head);
    assert_int_equal(seq, 10);

    /* One batch: three events, each with an audit row and a delivery. */
    static const uint8_t sealed[40] = {9};
    assert_int_equal(shub_store_begin(s, &err), 0);
    for (int64_t i = 11; i <= 13; i++) {
        shub_audit_row_t r;
        make_row(i, &r);
        assert_int_equal(shub_store_event_add(s, &r.event_id, "wmp", "marac.referral",
                                              BASE_MS, NULL, &err),
                         0);
        assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
        shub_delivery_t d = {.event_id = r.event_id,
                             .recipient = "marac-coventry",
                             .sender = "wmp",
                             .event_type = "marac.referral",
                             .state = SHUB_OUTCOME_QUEUED,
                             .sealed = sealed,
                             .sealed_len = sizeof sealed,
                             .created_ms = BASE_MS};
        assert_int_equal(shub_store_delivery_put(s, &d, &err), 0);
    }
    shub_store_head(s, &seq, NULL);
    assert_int_equal(seq, 13);
    shub_store_rollback(s);
    shub_store_head(s, &seq, after);
    assert_int_equal(seq, 10);
    assert_memory_equal(after, head, 32);

    /* The same ids are new again, and the chain continues at 11. */
    append_rows(s, 11, 12, 2);
    assert_int_equal(shub_store_begin(s, &err), 0);
    shub_id_t id;
    make_id(11, &id);
    assert_int_equal(
        shub_store_event_add(s, &id, "wmp", "marac.referral", BASE_MS, NULL, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    shub_store_close(&s);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM deliveries"), 0);
    shub_verify_result_t res = verify(f, f->pk);
    assert_true(res.ok);
    assert_int_equal(res.rows, 12);
}

static void test_open_existing_continues_chain_verify_ok(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, NULL, 15);
    append_rows(s, 1, 20, 7);
    shub_store_close(&s);
    s = open_store(f, NULL, 15);
    int64_t seq;
    shub_store_head(s, &seq, NULL);
    assert_int_equal(seq, 20);
    append_rows(s, 21, 30, 7);
    shub_err_t err;
    assert_int_equal(shub_store_checkpoint(s, BASE_MS + 99, &err), 0);
    assert_int_equal(shub_store_checkpoint(s, BASE_MS + 100, &err), 0); /* no-op */
    shub_store_close(&s);
    shub_verify_result_t res = verify(f, f->pk);
    assert_true(res.ok);
    assert_int_equal(res.rows, 30);
    /* At the commit of row 20 (15 rows due), then on demand at 30; not again. */
    assert_int_equal(res.checkpoints, 2);
    assert_int_equal(sql_int(f->path, "SELECT upto_seq FROM checkpoints WHERE seq = 1"),
                     20);
    assert_int_equal(sql_int(f->path, "SELECT upto_seq FROM checkpoints WHERE seq = 2"),
                     30);
}

static void test_checkpoint_without_key_einval(void **state)
{
    fixture_t *f = *state;
    shub_store_opts_t o = {.subject_key = f->subject};
    shub_store_t *s = NULL;
    shub_err_t err;
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), 0);
    assert_int_equal(shub_store_checkpoint(s, BASE_MS, &err), SHUB_EINVAL);
    assert_string_equal(err.msg, "checkpoint: no signing key");
    shub_store_close(&s);
    assert_null(s);
}

/* ---- outbox ------------------------------------------------------------- */

typedef struct got {
    int n;
    int64_t ids[16];
    char recipient[16][32];
    shub_outcome_t state[16];
    size_t sealed_len[16];
    uint32_t attempts[16];
    shub_store_t *store; /* when set, each row is marked sent from the callback */
} got_t;

static int collect(const shub_delivery_t *d, void *ctx)
{
    got_t *g = ctx;
    int64_t i = 0;
    for (int b = 0; b < 6; b++)
        i = (i << 8) | d->event_id.bytes[b];
    g->ids[g->n] = i - BASE_MS;
    snprintf(g->recipient[g->n], sizeof g->recipient[0], "%s", d->recipient);
    g->state[g->n] = d->state;
    g->sealed_len[g->n] = d->sealed ? d->sealed_len : 0;
    g->attempts[g->n] = d->attempts;
    g->n++;
    if (g->store) {
        shub_err_t err;
        assert_int_equal(shub_store_delivery_sent(g->store, &d->event_id, d->recipient,
                                                  d->attempts + 1, BASE_MS + 1000, &err),
                         0);
    }
    return 0;
}

static void put(shub_store_t *s, int64_t i, const char *to, shub_outcome_t state)
{
    static const uint8_t sealed[100] = {0xA5};
    shub_delivery_t d = {.recipient = to,
                         .sender = "wmp",
                         .event_type = "marac.referral",
                         .state = state,
                         .agreement = "wm-marac-isa",
                         .agreement_version = 3,
                         .flow = "police-to-marac",
                         .created_ms = BASE_MS + i};
    shub_err_t err;
    make_id(i, &d.event_id);
    if (state == SHUB_OUTCOME_QUEUED) {
        d.sealed = sealed;
        d.sealed_len = sizeof sealed;
    } else {
        d.reason = "recipient-not-party";
    }
    assert_int_equal(shub_store_delivery_put(s, &d, &err), 0);
}

static void test_delivery_lifecycle_backlog_due_finish_outcomes(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, NULL, 0);
    shub_err_t err;
    got_t g = {0};
    shub_id_t id;
    uint32_t count = 99;

    put(s, 30, "marac-coventry", SHUB_OUTCOME_QUEUED);
    put(s, 10, "marac-coventry", SHUB_OUTCOME_QUEUED);
    put(s, 20, "marac-coventry", SHUB_OUTCOME_QUEUED);
    put(s, 10, "idva-coventry", SHUB_OUTCOME_QUEUED);
    put(s, 10, "dudley-mbc", SHUB_OUTCOME_DENIED);

    /* Backlog: event-id order, not insertion order; denied rows never. */
    assert_int_equal(shub_store_backlog_count(s, "marac-coventry", &count, &err), 0);
    assert_int_equal(count, 3);
    assert_int_equal(shub_store_backlog(s, "marac-coventry", NULL, 10, collect, &g, &err),
                     0);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.ids[0], 10);
    assert_int_equal(g.ids[1], 20);
    assert_int_equal(g.ids[2], 30);
    assert_int_equal(g.sealed_len[0], 100);
    memset(&g, 0, sizeof g);
    make_id(10, &id);
    assert_int_equal(shub_store_backlog(s, "marac-coventry", &id, 1, collect, &g, &err),
                     0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.ids[0], 20);
    memset(&g, 0, sizeof g);
    assert_int_equal(shub_store_backlog(s, "dudley-mbc", NULL, 10, collect, &g, &err), 0);
    assert_int_equal(g.n, 0);

    /* Sent from inside the backlog walk: rows are copied out first. */
    memset(&g, 0, sizeof g);
    g.store = s;
    assert_int_equal(shub_store_backlog(s, "marac-coventry", NULL, 10, collect, &g, &err),
                     0);
    assert_int_equal(g.n, 3);
    memset(&g, 0, sizeof g);
    assert_int_equal(shub_store_due(s, BASE_MS + 999, 10, collect, &g, &err), 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(shub_store_due(s, BASE_MS + 1000, 2, collect, &g, &err), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.state[0], SHUB_OUTCOME_DELIVERED);
    assert_int_equal(g.attempts[0], 1);

    /* Acknowledged: the sealed copy goes, the outcome stays for receipts. */
    assert_int_equal(shub_store_delivery_finish(s, &id, "marac-coventry",
                                                SHUB_OUTCOME_ACKNOWLEDGED, NULL, BASE_MS,
                                                &err),
                     0);
    assert_int_equal(shub_store_delivery_finish(s, &id, "marac-coventry",
                                                SHUB_OUTCOME_ACKNOWLEDGED, NULL, BASE_MS,
                                                &err),
                     SHUB_ENOTFOUND);
    assert_int_equal(shub_store_delivery_finish(s, &id, "marac-coventry",
                                                SHUB_OUTCOME_QUEUED, NULL, BASE_MS, &err),
                     SHUB_EINVAL);
    assert_int_equal(shub_store_delivery_sent(s, &id, "marac-coventry", 2, BASE_MS, &err),
                     SHUB_ENOTFOUND);
    memset(&g, 0, sizeof g);
    assert_int_equal(shub_store_outcomes(s, &id, collect, &g, &err), 0);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.recipient[0], "dudley-mbc");
    assert_int_equal(g.state[0], SHUB_OUTCOME_DENIED);
    assert_int_equal(g.sealed_len[0], 0);
    assert_string_equal(g.recipient[1], "idva-coventry");
    assert_int_equal(g.state[1], SHUB_OUTCOME_QUEUED);
    assert_int_equal(g.sealed_len[1], 100);
    assert_string_equal(g.recipient[2], "marac-coventry");
    assert_int_equal(g.state[2], SHUB_OUTCOME_ACKNOWLEDGED);
    assert_int_equal(g.sealed_len[2], 0);
    assert_int_equal(shub_store_backlog_count(s, "marac-coventry", &count, &err), 0);
    assert_int_equal(count, 2);

    /* Dead letter, duplicate put, a denied row that would carry a payload. */
    make_id(20, &id);
    assert_int_equal(shub_store_delivery_finish(s, &id, "marac-coventry",
                                                SHUB_OUTCOME_DEAD, "attempts-exhausted",
                                                BASE_MS, &err),
                     0);
    shub_delivery_t d = {.event_id = id,
                         .recipient = "marac-coventry",
                         .sender = "wmp",
                         .event_type = "marac.referral",
                         .state = SHUB_OUTCOME_DENIED};
    assert_int_equal(shub_store_delivery_put(s, &d, &err), SHUB_EEXIST);
    d.recipient = "uhcw";
    d.sealed = (const uint8_t *)"x";
    d.sealed_len = 1;
    assert_int_equal(shub_store_delivery_put(s, &d, &err), SHUB_EINVAL);
    shub_store_close(&s);
    assert_int_equal(sql_int(f->path,
                             "SELECT count(*) FROM deliveries WHERE sealed IS NOT "
                             "NULL"),
                     2);
    assert_int_equal(sql_int(f->path,
                             "SELECT count(*) FROM deliveries WHERE state = 'dead' "
                             "AND reason = 'attempts-exhausted'"),
                     1);
}

static void test_agreement_seen_twice_one_row(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, NULL, 0);
    shub_err_t err;
    for (int i = 0; i < 2; i++)
        assert_int_equal(shub_store_agreement_seen(s, "wm-marac-isa", 3, "9f2c7a",
                                                   "MARAC ISA", "active", BASE_MS, 0,
                                                   BASE_MS + 5, BASE_MS, &err),
                         0);
    assert_int_equal(shub_store_agreement_seen(s, "wm-marac-isa", 3, "77aa01",
                                               "MARAC ISA", "active", BASE_MS, 0, 0,
                                               BASE_MS, &err),
                     0);
    shub_store_close(&s);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM agreement_versions"), 2);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM agreement_versions WHERE "
                                      "valid_until IS NULL"),
                     2);
}

/* ---- tampering ------------------------------------------------------------ */

static void expect_bad(fixture_t *f, const uint8_t *pk, int64_t bad_seq,
                       const char *problem)
{
    shub_verify_result_t res = verify(f, pk);
    assert_false(res.ok);
    assert_string_equal(res.problem, problem);
    assert_int_equal(res.bad_seq, bad_seq);
}

static void test_verify_edited_column_edited(void **state)
{
    fixture_t *f = *state;
    build_log(f);
    sql(f->path, "UPDATE audit SET reason = 'consent-given' WHERE seq = 17");
    expect_bad(f, f->pk, 17, "edited: row 17 does not match its row_hash");
}

static void test_verify_empty_text_to_null_edited(void **state)
{
    fixture_t *f = *state;
    build_log(f);
    sql(f->path, "UPDATE audit SET explanation = NULL WHERE seq = 14"); /* was "" */
    expect_bad(f, f->pk, 14, "edited: row 14 does not match its row_hash");
}

static void test_verify_deleted_middle_row_missing(void **state)
{
    fixture_t *f = *state;
    build_log(f);
    sql(f->path, "DELETE FROM audit WHERE seq = 23");
    expect_bad(f, f->pk, 23, "missing: row 23 (row 24 follows row 22)");
}

static void test_verify_deleted_tail_truncated(void **state)
{
    fixture_t *f = *state;
    build_log(f);
    sql(f->path, "DELETE FROM audit WHERE seq > 35");
    expect_bad(
        f, f->pk, 36,
        "truncated after checkpoint 2: the log ends at row 35, the checkpoint signed "
        "rows up to 40");
}

static void test_verify_swapped_rows_out_of_order(void **state)
{
    fixture_t *f = *state;
    build_log(f);
    sql(f->path, "UPDATE audit SET seq = -1 WHERE seq = 10;"
                 "UPDATE audit SET seq = 10 WHERE seq = 11;"
                 "UPDATE audit SET seq = 11 WHERE seq = -1;");
    expect_bad(f, f->pk, 10,
               "out of order: row 10 follows row 11 in the chain, not row 9");
}

/* A forger with the store's own code: a second store with the same history up
 * to row 29, a made-up row 30 that chains correctly, spliced into the victim
 * by moving rows 30.. up one. Only the link of the next row gives it away. */
static void test_verify_forged_row_inserted(void **state)
{
    fixture_t *f = *state;
    char forge[160], attach[400];
    build_log(f);
    snprintf(forge, sizeof forge, "%s/forge.db", f->dir);
    shub_store_t *s = open_store(f, forge, 1000);
    append_rows(s, 1, 29, 29);
    shub_err_t err;
    shub_audit_row_t r;
    make_row(30, &r);
    r.decision = "allow";
    r.recipient = "swm-crc";
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    shub_store_close(&s);
    snprintf(attach, sizeof attach,
             "ATTACH '%s' AS forge;"
             "UPDATE audit SET seq = seq + 1000 WHERE seq >= 30;"
             "UPDATE audit SET seq = seq - 999 WHERE seq >= 1000;"
             "INSERT INTO audit SELECT * FROM forge.audit WHERE seq = 30;",
             forge);
    sql(f->path, attach);
    expect_bad(f, f->pk, 30,
               "inserted: row 30 is not in the chain (row 31 follows row 29)");
}

/* A chain recomputed from row 15 on is consistent in itself; only the signed
 * checkpoint at row 20 shows it is not the chain the broker wrote. */
static void test_verify_rewritten_chain_edited_at_checkpoint(void **state)
{
    fixture_t *f = *state;
    char forge[160], copy[400];
    build_log(f);
    snprintf(forge, sizeof forge, "%s/forge.db", f->dir);
    shub_store_t *s = open_store(f, forge, 1000);
    append_rows(s, 1, 14, 14);
    shub_err_t err;
    assert_int_equal(shub_store_begin(s, &err), 0);
    for (int64_t i = 15; i <= 50; i++) {
        shub_audit_row_t r;
        make_row(i, &r);
        if (i == 15)
            r.legal_basis = "uk-gdpr-9-2-g";
        assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    }
    assert_int_equal(shub_store_commit(s, &err), 0);
    shub_store_close(&s);
    snprintf(copy, sizeof copy,
             "ATTACH '%s' AS forge; DELETE FROM audit;"
             "INSERT INTO audit SELECT * FROM forge.audit;",
             forge);
    sql(f->path, copy);
    expect_bad(
        f, f->pk, 20,
        "edited: row 20 differs from signed checkpoint 1 (chain rewritten at or before "
        "it)");
}

static void test_verify_corrupt_signature_bad_signature(void **state)
{
    fixture_t *f = *state;
    build_log(f);
    sql(f->path, "UPDATE checkpoints SET signature = zeroblob(64) WHERE seq = 1");
    expect_bad(f, NULL, 20,
               "bad signature: checkpoint 1 (rows up to 20) does not verify");
}

static void test_verify_wrong_expected_key_bad_signature(void **state)
{
    fixture_t *f = *state;
    uint8_t pk[32], sk[64];
    build_log(f);
    crypto_sign_keypair(pk, sk);
    expect_bad(f, pk, 20, "bad signature: checkpoint 1 is signed by another key");
    shub_verify_result_t res = verify(f, NULL);
    assert_true(res.ok);
    assert_int_equal(res.rows, 50);
}

/* ---- opening -------------------------------------------------------------- */

typedef struct counter {
    int n;
} counter_t;

static int count_rows(const shub_audit_row_t *row, void *ctx)
{
    (void)row;
    ((counter_t *)ctx)->n++;
    return 0;
}

static void test_open_readonly_beside_writer_reads_committed(void **state)
{
    fixture_t *f = *state;
    shub_store_t *w = open_store(f, NULL, 0);
    append_rows(w, 1, 5, 5);
    shub_err_t err;
    shub_audit_row_t r;
    make_row(6, &r);
    assert_int_equal(shub_store_begin(w, &err), 0);
    assert_int_equal(shub_store_audit_append(w, &r, &err), 0); /* uncommitted */

    shub_store_opts_t ro = {.readonly = true, .subject_key = f->subject};
    shub_store_t *s = NULL;
    assert_int_equal(shub_store_open(f->path, &ro, &s, &err), 0);
    counter_t c = {0};
    assert_int_equal(shub_store_audit_read(s, 0, 100, count_rows, &c, &err), 0);
    assert_int_equal(c.n, 5);
    assert_int_equal(shub_store_begin(s, &err), SHUB_EPROTO);
    shub_verify_result_t res = verify(f, f->pk);
    assert_true(res.ok);
    assert_int_equal(res.rows, 5);

    assert_int_equal(shub_store_commit(w, &err), 0);
    c.n = 0;
    assert_int_equal(shub_store_audit_read(s, 0, 100, count_rows, &c, &err), 0);
    assert_int_equal(c.n, 6);
    shub_store_close(&s);
    shub_store_close(&w);
}

static void test_open_foreign_database_edb_untouched(void **state)
{
    fixture_t *f = *state;
    shub_store_opts_t o = opts_for(f, 0);
    shub_store_t *s = NULL;
    shub_err_t err;
    char want[256];
    sql(f->path, "CREATE TABLE patients(name TEXT)");
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), SHUB_EDB);
    assert_null(s);
    snprintf(want, sizeof want,
             "'%s' is not a sharehub store (tables of another application, no "
             "application_id)",
             f->path);
    assert_string_equal(err.msg, want);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_schema"), 1);
    assert_int_equal(access(f->dir, F_OK), 0);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_not_equal(access(wal, F_OK), 0); /* still in rollback-journal mode */

    sql(f->path, "DROP TABLE patients; PRAGMA application_id = 1234");
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), SHUB_EDB);
    snprintf(
        want, sizeof want,
        "'%s' is not a sharehub store (application_id 0x000004d2, expected 0x53485542)",
        f->path);
    assert_string_equal(err.msg, want);
}

static void test_open_text_file_edb(void **state)
{
    fixture_t *f = *state;
    shub_store_opts_t o = opts_for(f, 0);
    shub_store_t *s = NULL;
    shub_err_t err;
    char want[256];
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is a config file, not a database\n", fp);
    fclose(fp);
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), SHUB_EDB);
    snprintf(want, sizeof want, "'%s' is not a sharehub store: file is not a database",
             f->path);
    assert_string_equal(err.msg, want);
    shub_verify_result_t res;
    assert_int_equal(shub_store_verify(f->path, NULL, &res, &err), SHUB_EDB);
}

static void test_open_future_schema_version_edb(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, NULL, 0);
    shub_store_close(&s);
    sql(f->path, "PRAGMA user_version = 2");
    shub_store_opts_t o = opts_for(f, 0);
    shub_err_t err;
    char want[256];
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), SHUB_EDB);
    snprintf(
        want, sizeof want,
        "'%s' has store schema version 2, newer than this sharehub understands (1): use "
        "a newer sharehub",
        f->path);
    assert_string_equal(err.msg, want);
    shub_verify_result_t res;
    assert_int_equal(shub_store_verify(f->path, NULL, &res, &err), SHUB_EDB);
    assert_string_equal(err.msg, want);
}

static void test_open_other_subject_key_ecrypto(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, NULL, 0);
    shub_store_close(&s);
    uint8_t other[32] = {1};
    shub_store_opts_t o = opts_for(f, 0);
    o.subject_key = other;
    shub_err_t err;
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), SHUB_ECRYPTO);
    assert_null(s);
}

static void test_open_missing_readonly_edb(void **state)
{
    fixture_t *f = *state;
    shub_store_opts_t o = {.readonly = true};
    shub_store_t *s = NULL;
    shub_err_t err;
    char want[256];
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), SHUB_EDB);
    snprintf(want, sizeof want, "open '%s': unable to open database file", f->path);
    assert_string_equal(err.msg, want);
}

/* ---- failure ---------------------------------------------------------------- */

/* A disk that fills mid-batch: the batch fails whole, the committed chain and
 * its head stay as they were, and once there is room again it carries on. */
static void test_commit_disk_full_rolls_back_then_recovers(void **state)
{
    fixture_t *f = *state;
    shub_store_opts_t o = opts_for(f, 50);
    o.max_pages = 48;
    shub_store_t *s = NULL;
    shub_err_t err;
    static uint8_t sealed[3000];
    int rc = 0;
    int64_t i = 0, good = 0, failed_from = 0;
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), 0);
    while (rc == 0 && i < 2000) {
        int64_t first = i + 1;
        assert_int_equal(shub_store_begin(s, &err), 0);
        for (int k = 0; k < 10 && rc == 0; k++) {
            shub_audit_row_t r;
            make_row(++i, &r);
            rc = shub_store_event_add(s, &r.event_id, "wmp", "marac.referral", BASE_MS,
                                      NULL, &err);
            if (rc == 0)
                rc = shub_store_audit_append(s, &r, &err);
            shub_delivery_t d = {.event_id = r.event_id,
                                 .recipient = "marac-coventry",
                                 .sender = "wmp",
                                 .event_type = "marac.referral",
                                 .state = SHUB_OUTCOME_QUEUED,
                                 .sealed = sealed,
                                 .sealed_len = sizeof sealed,
                                 .created_ms = BASE_MS};
            if (rc == 0)
                rc = shub_store_delivery_put(s, &d, &err);
        }
        if (rc == 0)
            rc = shub_store_commit(s, &err);
        if (rc == 0)
            good = i;
        else
            failed_from = first;
    }
    assert_int_equal(rc, SHUB_EDB);
    assert_non_null(strstr(err.msg, ": database or disk is full"));
    assert_true(good > 0);
    shub_store_rollback(s);
    int64_t seq;
    shub_store_head(s, &seq, NULL);
    assert_int_equal(seq, good);

    /* Nothing of the failed batch is visible: its first id is new again. */
    shub_id_t id;
    make_id(failed_from, &id);
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(
        shub_store_event_add(s, &id, "wmp", "marac.referral", BASE_MS, NULL, &err), 0);
    shub_store_rollback(s);
    shub_verify_result_t res = verify(f, f->pk);
    assert_true(res.ok);
    assert_int_equal(res.rows, good);
    shub_store_close(&s);

    o.max_pages = 100000;
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), 0);
    append_rows(s, good + 1, good + 120, 40);
    shub_store_close(&s);
    res = verify(f, f->pk);
    assert_true(res.ok);
    assert_int_equal(res.rows, good + 120);
    assert_true(res.checkpoints >= 2);
}

static void test_open_alloc_failure_enomem_no_leak(void **state)
{
    fixture_t *f = *state;
    shub_store_opts_t o = opts_for(f, 0);
    shub_err_t err;
    long n;
    int rc = -1;
    for (n = 0; n < 50; n++) {
        shub_store_t *s = NULL;
        shub_alloc_fail_after(n);
        rc = shub_store_open(f->path, &o, &s, &err);
        shub_alloc_fail_after(-1);
        if (rc == 0) {
            shub_store_close(&s);
            break;
        }
        assert_int_equal(rc, SHUB_ENOMEM);
        assert_null(s);
    }
    assert_int_equal(rc, 0);
    assert_true(n > 0);
}

static void test_outcomes_alloc_failure_enomem_no_leak(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, NULL, 0);
    shub_err_t err;
    shub_id_t id;
    int rc = -1;
    long n;
    put(s, 10, "marac-coventry", SHUB_OUTCOME_QUEUED);
    put(s, 10, "idva-coventry", SHUB_OUTCOME_QUEUED);
    put(s, 10, "dudley-mbc", SHUB_OUTCOME_DENIED);
    make_id(10, &id);
    for (n = 0; n < 50; n++) {
        got_t g = {0};
        shub_alloc_fail_after(n);
        rc = shub_store_outcomes(s, &id, collect, &g, &err);
        shub_alloc_fail_after(-1);
        if (rc == 0) {
            assert_int_equal(g.n, 3);
            break;
        }
        assert_int_equal(rc, SHUB_ENOMEM);
        assert_int_equal(g.n, 0); /* all or nothing: no partial receipt */
    }
    assert_int_equal(rc, 0);
    assert_true(n > 3);
    shub_store_close(&s);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(test_##name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(audit_append_many_rows_verify_ok),
        T(audit_append_outside_transaction_eproto),
        T(event_add_twice_eexist_with_original_sender),
        T(rollback_group_leaves_nothing_restores_head),
        T(open_existing_continues_chain_verify_ok),
        T(checkpoint_without_key_einval),
        T(delivery_lifecycle_backlog_due_finish_outcomes),
        T(agreement_seen_twice_one_row),
        T(verify_edited_column_edited),
        T(verify_empty_text_to_null_edited),
        T(verify_deleted_middle_row_missing),
        T(verify_deleted_tail_truncated),
        T(verify_swapped_rows_out_of_order),
        T(verify_forged_row_inserted),
        T(verify_rewritten_chain_edited_at_checkpoint),
        T(verify_corrupt_signature_bad_signature),
        T(verify_wrong_expected_key_bad_signature),
        T(open_readonly_beside_writer_reads_committed),
        T(open_foreign_database_edb_untouched),
        T(open_text_file_edb),
        T(open_future_schema_version_edb),
        T(open_other_subject_key_ecrypto),
        T(open_missing_readonly_edb),
        T(commit_disk_full_rolls_back_then_recovers),
        T(open_alloc_failure_enomem_no_leak),
        T(outcomes_alloc_failure_enomem_no_leak),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
