/*
 * test_store: the broker's store on real SQLite files in a temporary
 * directory, or (SHUB_TEST_DB=postgresql, testdb.h) in schemas of a private
 * PostgreSQL cluster: the same tests on both backends. It reads as the hub uses it (begin, dedupe, audit, receipts,
 * sealed copies, updates, checkpoints, commit), then attacks the audit log the
 * way an insider with the sqlite3 shell and this very code would (edit,
 * delete, reorder, insert, truncate, remove checkpoints, rewrite and rehash
 * the whole chain) and checks that verify names the problem, with and
 * without a witness's checkpoint. Raw SQL here is the attacker's tool (psql
 * or the sqlite3 shell, through testdb.c); the store's own SQL stays in
 * broker/. The few tests of one engine's own machinery (a file header, the
 * lock file, a full disk) say so and are skipped on the other.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sharehub/alloc.h"
#include "sharehub/store.h"
#include "sharehub/witness.h"
#include "testdb.h"

#define BASE_MS 1760000000000LL

typedef struct fixture {
    char dir[64];
    char path[512], path2[512]; /* files, or PostgreSQL URIs (testdb.h) */
    uint8_t pk[32], sk[64];   /* checkpoint signing key */
    uint8_t fpk[32], fsk[64]; /* a forger's key */
    uint8_t subject[32];      /* subject hashing key */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f || sodium_init() < 0)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/shub-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    testdb_new(f->dir, "hub.db", f->path, sizeof f->path);
    testdb_new(f->dir, "forged.db", f->path2, sizeof f->path2);
    crypto_sign_keypair(f->pk, f->sk);
    crypto_sign_keypair(f->fpk, f->fsk);
    randombytes_buf(f->subject, sizeof f->subject);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    testdb_drop(f->path);
    testdb_drop(f->path2);
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
        .checkpoint_ms = 5000,
    };
    return o;
}

static bool last_opened_unsigned; /* the store last opened has no signing key */

static shub_store_t *open_path(const fixture_t *f, const char *path, uint32_t every,
                               const uint8_t *sk)
{
    shub_store_opts_t o = opts_for(f, every);
    o.sign_secret = sk;
    last_opened_unsigned = sk == NULL;
    shub_store_t *s = NULL;
    shub_err_t err;
    int rc = shub_store_open(path, &o, &s, &err);
    if (rc)
        print_error("open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

static shub_store_t *open_store(const fixture_t *f, uint32_t every)
{
    return open_path(f, f->path, every, f->sk);
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
 * it (the forger's workbench). Rows are 300 ms apart. */
static void make_row(int64_t i, shub_audit_row_t *r)
{
    static const uint8_t payload_hash[32] = {1, 2, 3, 4, 5, 6, 7, 8};
    static shub_id_t reply;
    memset(r, 0, sizeof *r);
    r->at_ms = BASE_MS + i * 300;
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
    r->occurred_ms = BASE_MS + i * 300 - 60000;
    if (i % 5 == 0) {
        make_id(i - 1, &reply);
        r->reply_to = &reply;
    }
    r->fields = "dash_score,victim.health,victim.name";
    r->fields_shared = "dash_score,victim.name";
    r->fields_stripped = "victim.health";
    r->facts = i % 4 ? NULL : "decision=accepted";
    r->payload_hash = payload_hash;
    r->subject_ref = subjects[i % 3];
    r->actor_ref = i % 2 ? "pc-4471" : NULL;
}

/* Appends rows from..to (inclusive) in transactions of `batch` rows, signing
 * a checkpoint at each commit that is due, as the hub does (a store opened
 * without a signing key signs nothing). */
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
        if ((i - from) % batch == batch - 1 || i == to) {
            if (!last_opened_unsigned)
                assert_int_equal(
                    shub_store_checkpoint(s, r.at_ms, false, NULL, NULL, &err), 0);
            assert_int_equal(shub_store_commit(s, &err), 0);
        }
    }
}

/* Signs whatever is unsigned, as the broker does at a clean stop. */
static void sign_now(shub_store_t *s, int64_t at, shub_signed_head_t *cp)
{
    shub_err_t err;
    bool made = false;
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_checkpoint(s, at, true, cp, &made, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    assert_true(made);
}

static void sql(const char *path, const char *text)
{
    testdb_sql(path, text);
}

static int64_t sql_int(const char *path, const char *text)
{
    return testdb_int(path, text);
}

/* The test is about one engine's own machinery: skipped on the other. */
#define SQLITE_ONLY(why)                                                                 \
    do {                                                                                 \
        if (testdb_pg()) {                                                               \
            print_message("skipped on PostgreSQL: %s\n", why);                           \
            skip();                                                                      \
        }                                                                                \
    } while (0)

static shub_verify_result_t verify_with(const char *path, const uint8_t *pk,
                                        const shub_witnessed_t *w, size_t nw, int64_t now)
{
    shub_verify_result_t res;
    shub_verify_opts_t o = {.expected_key = pk, .witnessed = w, .n_witnessed = nw,
                            .now_ms = now};
    shub_err_t err;
    int rc = shub_store_verify(path, &o, &res, &err);
    if (rc)
        print_error("verify: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return res;
}

static shub_verify_result_t verify(const fixture_t *f, const uint8_t *pk)
{
    return verify_with(f->path, pk, NULL, 0, BASE_MS + 10000000);
}

/* The standard victim: 50 rows, checkpoints at rows 20, 40 and (a clean
 * stop) 50, closed. *last gets the newest checkpoint: what a witness holds. */
static void build_log(fixture_t *f, shub_signed_head_t *last)
{
    shub_store_t *s = open_store(f, 20);
    append_rows(s, 1, 50, 10);
    sign_now(s, BASE_MS + 15100, last);
    shub_store_close(&s);
    shub_verify_result_t res = verify(f, f->pk);
    assert_true(res.ok);
    assert_int_equal(res.checkpoints, 3);
    assert_int_equal(res.unsigned_rows, 0);
}

static shub_witnessed_t witness_of(const shub_signed_head_t *cp, const char *org)
{
    shub_witnessed_t w;
    memset(&w, 0, sizeof w);
    snprintf(w.org, sizeof w.org, "%s", org);
    snprintf(w.source, sizeof w.source, "test");
    w.cp = *cp;
    return w;
}

/* ---- the chain ----------------------------------------------------------- */

typedef struct seen {
    int n;
    int64_t seq, occurred;
    char recipient[64], agreement[64], fields[128], facts[64];
    int reason_null, case_set, actor_set, reply_set;
    uint32_t version;
    uint8_t subject_hash[32];
} seen_t;

static int keep_row(const shub_audit_row_t *row, void *ctx)
{
    seen_t *s = ctx;
    s->n++;
    s->seq = row->seq;
    s->occurred = row->occurred_ms;
    s->reason_null = row->reason == NULL;
    s->case_set = row->case_hash != NULL;
    s->actor_set = row->actor_hash != NULL;
    s->reply_set = row->reply_to != NULL;
    s->version = row->agreement_version;
    snprintf(s->recipient, sizeof s->recipient, "%s", row->recipient ? row->recipient : "");
    snprintf(s->agreement, sizeof s->agreement, "%s", row->agreement ? row->agreement : "");
    snprintf(s->fields, sizeof s->fields, "%s", row->fields ? row->fields : "");
    snprintf(s->facts, sizeof s->facts, "%s", row->facts ? row->facts : "");
    if (row->subject_hash)
        memcpy(s->subject_hash, row->subject_hash, 32);
    return 0;
}

static void test_audit_append_many_rows_verify_ok(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 100);
    append_rows(s, 1, 1000, 50);
    int64_t seq;
    uint8_t head[32], zero[32] = {0};
    shub_store_head(s, &seq, head);
    assert_int_equal(seq, 1000);
    assert_memory_not_equal(head, zero, 32);
    shub_store_close(&s);

    shub_verify_result_t res = verify(f, f->pk);
    assert_true(res.ok);
    assert_int_equal(res.rows, 1000);
    assert_int_equal(res.checkpoints, 20); /* each commit: 50 rows over 15 s */
    assert_string_equal(res.problem, "");
    /* Names are stored once: a row is small integers and hashes. */
    assert_true(sql_int(f->path, "SELECT count(*) FROM names") < 40);
    assert_int_equal(sql_int(f->path, testdb_pg() ? "SELECT pg_typeof(sender) = 'bigint'"
                                                    "::regtype FROM audit LIMIT 1"
                                                  : "SELECT typeof(sender) = 'integer' FROM"
                                                    " audit LIMIT 1"),
                     1);
}

static void test_audit_read_gives_text_and_hashes_back(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    append_rows(s, 1, 5, 5);
    seen_t seen = {0};
    assert_int_equal(shub_store_audit_read(s, 4, 10, keep_row, &seen, &err), 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.seq, 5);
    assert_string_equal(seen.recipient, "marac-coventry");
    assert_string_equal(seen.agreement, "wm-marac-isa");
    assert_int_equal(seen.version, 3);
    assert_string_equal(seen.fields, "dash_score,victim.health,victim.name");
    assert_int_equal(seen.occurred, BASE_MS + 1500 - 60000);
    assert_true(seen.case_set);
    assert_true(seen.actor_set);
    assert_true(seen.reply_set);
    assert_true(seen.reason_null); /* row 5 is an allow: no reason, NULL not "" */
    uint8_t want[32];
    assert_int_equal(shub_store_ref_hash(s, SHUB_REF_SUBJECT, subjects[5 % 3], want), 0);
    assert_memory_equal(seen.subject_hash, want, 32);
    shub_store_close(&s);
}

/* `actor: clear`: the actor's id itself, as text, in the chain like any
 * value (an edit of it is caught); otherwise its keyed hash. PostgreSQL
 * keeps the text in a column of its own (store_internal.h). */
static void test_audit_append_actor_clear_keeps_text_verify_ok(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    assert_int_equal(shub_store_begin(s, &err), 0);
    shub_audit_row_t r = {.at_ms = BASE_MS, .action = "decide", .decision = "allow",
                          .actor_ref = "pc-4471", .actor_clear = true};
    assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    shub_audit_row_t h = {.at_ms = BASE_MS, .action = "decide", .decision = "allow",
                          .actor_ref = "pc-4471"};
    assert_int_equal(shub_store_audit_append(s, &h, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    shub_store_close(&s);
    const char *clear = testdb_pg() ? "actor_text" : "actor_hash";
    char text[200];
    snprintf(text, sizeof text, "SELECT count(*) FROM audit WHERE seq = 1 AND %s = 'pc-4471'",
             clear);
    assert_int_equal(sql_int(f->path, text), 1);
    assert_int_equal(sql_int(f->path, "SELECT length(actor_hash) FROM audit WHERE seq = 2"),
                     32);
    assert_true(verify(f, NULL).ok);
    snprintf(text, sizeof text, "UPDATE audit SET %s = 'pc-9999' WHERE seq = 1", clear);
    sql(f->path, text);
    shub_verify_result_t res = verify(f, NULL);
    assert_false(res.ok);
    assert_int_equal(res.bad_seq, 1);
}

static void test_ref_hash_kinds_differ_and_key_form_agrees(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    uint8_t a[32], b[32], c[32], d[32];
    assert_int_equal(shub_store_ref_hash(s, SHUB_REF_SUBJECT, "x-1", a), 0);
    assert_int_equal(shub_store_ref_hash(s, SHUB_REF_CASE, "x-1", b), 0);
    assert_int_equal(shub_store_ref_hash(s, SHUB_REF_ACTOR, "x-1", c), 0);
    assert_memory_not_equal(a, b, 32);
    assert_memory_not_equal(b, c, 32);
    shub_store_ref_hash_key(f->subject, SHUB_REF_CASE, "x-1", d);
    assert_memory_equal(b, d, 32);
    shub_store_close(&s);
}

static void test_audit_append_outside_transaction_eproto(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_audit_row_t r;
    shub_err_t err;
    make_row(1, &r);
    assert_int_equal(shub_store_audit_append(s, &r, &err), SHUB_EPROTO);
    r.action = NULL;
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_audit_append(s, &r, &err), SHUB_EINVAL);
    shub_store_rollback(s);
    shub_store_close(&s);
}

static void test_event_add_twice_eexist_with_original_sender(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    shub_id_t id;
    char first[SHUB_MSG_MAX_NAME + 1] = "";
    make_id(7, &id);
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_event_add(s, &id, "wmp", BASE_MS, first, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_event_add(s, &id, "bcc", BASE_MS, first, &err), SHUB_EEXIST);
    assert_string_equal(first, "wmp");
    assert_non_null(strstr(err.msg, "already seen from 'wmp'"));
    shub_store_rollback(s);
    shub_store_close(&s);
}

/* Most new events are known to be new without a read of the file: the ids
 * committed lately are held in memory, 65,536 of them, and every committed
 * id at or above the lowest held is among them; lower ids are looked up.
 * Whichever way an id is answered, one accepted before is refused: ids from
 * before the store opened, ids forgotten since, the newest, and after the
 * largest id there is has been accepted. */
static void expect_add(shub_store_t *s, const shub_id_t *id, int rc)
{
    shub_err_t err;
    assert_int_equal(shub_store_event_add(s, id, "wmp", BASE_MS, NULL, &err), rc);
}

static void test_event_add_dedupe_across_recent_window_and_reopen(void **state)
{
    enum { FIRST = 1000, N = 70000, BATCH = 5000, HELD = 65536 };
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    shub_id_t id, top;
    memset(top.bytes, 0xff, SHUB_ID_SIZE);
    for (int64_t b = 0; b < N; b += BATCH) {
        assert_int_equal(shub_store_begin(s, &err), 0);
        for (int64_t i = b; i < b + BATCH; i++) {
            make_id(FIRST + i, &id);
            expect_add(s, &id, 0);
        }
        assert_int_equal(shub_store_commit(s, &err), 0);
    }
    const int64_t seen[] = {FIRST, FIRST + 1, FIRST + N - HELD - 1, FIRST + N - HELD,
                            FIRST + N - 1};
    for (int round = 0; round < 2; round++) { /* then again after reopening */
        assert_int_equal(shub_store_begin(s, &err), 0);
        for (size_t k = 0; k < sizeof seen / sizeof seen[0]; k++) {
            make_id(seen[k], &id);
            expect_add(s, &id, SHUB_EEXIST);
        }
        make_id(5 + round, &id); /* below every id accepted, never seen */
        expect_add(s, &id, 0);
        make_id(FIRST + N + 5 + round, &id); /* above them */
        expect_add(s, &id, 0);
        assert_int_equal(shub_store_commit(s, &err), 0);
        assert_int_equal(shub_store_begin(s, &err), 0);
        expect_add(s, &id, SHUB_EEXIST);
        make_id(5 + round, &id);
        expect_add(s, &id, SHUB_EEXIST);
        make_id(5, &id);
        expect_add(s, &id, SHUB_EEXIST);
        shub_store_rollback(s);
        shub_store_close(&s);
        s = open_store(f, 0);
        if (round == 0)
            continue;
        /* The largest id there is: accepted once; after it every lookup
         * reads the file, and still finds what it should. */
        assert_int_equal(shub_store_begin(s, &err), 0);
        expect_add(s, &top, 0);
        assert_int_equal(shub_store_commit(s, &err), 0);
        assert_int_equal(shub_store_begin(s, &err), 0);
        expect_add(s, &top, SHUB_EEXIST);
        make_id(FIRST + N + 9, &id);
        expect_add(s, &id, 0);
        assert_int_equal(shub_store_commit(s, &err), 0);
        shub_store_close(&s);
        s = open_store(f, 0);
        assert_int_equal(shub_store_begin(s, &err), 0);
        expect_add(s, &top, SHUB_EEXIST);
        expect_add(s, &id, SHUB_EEXIST);
        make_id(FIRST + N + 11, &id);
        expect_add(s, &id, 0);
        assert_int_equal(shub_store_commit(s, &err), 0);
        assert_int_equal(shub_store_begin(s, &err), 0);
        expect_add(s, &id, SHUB_EEXIST);
        shub_store_rollback(s);
    }
    shub_store_close(&s);
}

/* FNV-1a, the names map's hash before it was keyed: what a partner could
 * compute offline to choose field names that share a slot. */
static uint64_t fnv1a(const char *t)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *t; t++) {
        h ^= (unsigned char)*t;
        h *= 1099511628211ULL;
    }
    return h | 1;
}

/* Field names chosen so that all share a slot under an unkeyed hash (the
 * low 13 bits, past the map's size here) cost a lookup no more than any:
 * 1,200 of them interned, then found again (the second round adds no
 * name) in under 12 slots a row, where their one chain would have taken
 * some 720,000 for the round. */
static void test_names_chosen_to_collide_stay_one_probe(void **state)
{
    enum { N = 1200, MASK = 0x1fff };
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    append_rows(s, 1, 2, 2);
    int64_t names = sql_int(f->path, "SELECT count(*) FROM names");
    static char texts[N][32];
    for (int k = 0; k < N; k++)
        for (uint32_t c = 0;; c++) {
            snprintf(texts[k], sizeof texts[k], "field-%d-%u", k, c);
            if ((fnv1a(texts[k]) & MASK) == 1)
                break;
        }
    uint64_t probes[2];
    int64_t stored[2];
    for (int round = 0; round < 2; round++) {
        uint64_t before = shub_store_name_probes(s);
        assert_int_equal(shub_store_begin(s, &err), 0);
        for (int k = 0; k < N; k++) {
            shub_audit_row_t r;
            make_row(3 + round * N + k, &r);
            r.fields = texts[k];
            assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
        }
        assert_int_equal(shub_store_commit(s, &err), 0);
        probes[round] = shub_store_name_probes(s) - before;
        stored[round] = sql_int(f->path, "SELECT count(*) FROM names");
    }
    printf("names: %d chosen texts, %llu slots visited interning them (the map grown"
           " twice), %llu finding them again\n",
           N, (unsigned long long)probes[0], (unsigned long long)probes[1]);
    assert_true(probes[1] < 12 * N);
    assert_true(stored[0] >= names + N); /* the texts, and the odd rows' reasons */
    assert_int_equal(stored[1], stored[0]);
    shub_store_close(&s);
}

/* A rolled-back transaction leaves no row, no name and no head behind: a name
 * first used in it and a different name after get distinct ids, and the chain
 * verifies. */
static void test_rollback_leaves_nothing_names_ids_not_reused(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    append_rows(s, 1, 3, 3);
    int64_t names = sql_int(f->path, "SELECT count(*) FROM names");
    shub_audit_row_t r;
    assert_int_equal(shub_store_begin(s, &err), 0);
    make_row(4, &r);
    r.recipient = "brand-new-org";
    assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    shub_store_rollback(s);
    int64_t seq;
    shub_store_head(s, &seq, NULL);
    assert_int_equal(seq, 3);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM names"), names);

    assert_int_equal(shub_store_begin(s, &err), 0);
    make_row(4, &r);
    r.recipient = "another-new-org";
    assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    r.recipient = "brand-new-org";
    make_row(5, &r);
    r.recipient = "brand-new-org";
    assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    seen_t seen = {0};
    assert_int_equal(shub_store_audit_read(s, 3, 1, keep_row, &seen, &err), 0);
    assert_string_equal(seen.recipient, "another-new-org");
    assert_int_equal(shub_store_audit_read(s, 4, 1, keep_row, &seen, &err), 0);
    assert_string_equal(seen.recipient, "brand-new-org");
    shub_store_close(&s);
    assert_true(verify(f, NULL).ok);
}

/* A row takes its texts' ids and its references' hashes from the row before
 * when they are the same (each recipient of a share has a row of its own):
 * rows that repeat a person, a case and every text, then change some (one
 * text a prefix of the last, one the last with more after it), each read
 * back as written, with its own keyed hashes, and the chain verifies. */
static void test_audit_rows_repeating_texts_and_refs_read_back_each(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    static const struct {
        const char *recipient, *subject, *fields;
    } want[] = {
        {"marac-coventry", "wmp-person-1001", "dash_score,victim.name"},
        {"marac-coventry", "wmp-person-1001", "dash_score,victim.name"},
        {"marac-cov", "wmp-person-1001", "dash_score,victim.name,victim.dob"},
        {"marac-coventry", "wmp-person-10012", "dash_score"},
        {"marac-coventry", "wmp-person-1001", "dash_score"},
    };
    size_t n = sizeof want / sizeof want[0];
    assert_int_equal(shub_store_begin(s, &err), 0);
    for (size_t i = 0; i < n; i++) {
        shub_audit_row_t r;
        make_row((int64_t)i + 1, &r);
        char recipient[64], subject[64], fields[128]; /* fresh copies each row */
        snprintf(recipient, sizeof recipient, "%s", want[i].recipient);
        snprintf(subject, sizeof subject, "%s", want[i].subject);
        snprintf(fields, sizeof fields, "%s", want[i].fields);
        r.recipient = recipient;
        r.subject_ref = subject;
        r.fields = fields;
        assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    }
    assert_int_equal(shub_store_commit(s, &err), 0);
    for (size_t i = 0; i < n; i++) {
        seen_t seen = {0};
        uint8_t hash[32];
        assert_int_equal(shub_store_audit_read(s, (int64_t)i, 1, keep_row, &seen, &err), 0);
        assert_int_equal(seen.seq, (int64_t)i + 1);
        assert_string_equal(seen.recipient, want[i].recipient);
        assert_string_equal(seen.fields, want[i].fields);
        assert_int_equal(shub_store_ref_hash(s, SHUB_REF_SUBJECT, want[i].subject, hash), 0);
        assert_memory_equal(seen.subject_hash, hash, 32);
    }
    shub_store_close(&s);
    assert_true(verify(f, NULL).ok);
}

static void test_open_existing_continues_chain_verify_ok(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    append_rows(s, 1, 30, 7);
    shub_store_close(&s);
    s = open_store(f, 0);
    append_rows(s, 31, 60, 11);
    shub_store_close(&s);
    shub_verify_result_t res = verify(f, NULL);
    assert_true(res.ok);
    assert_int_equal(res.rows, 60);
}

static void test_checkpoint_due_by_rows_time_or_force(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 10);
    shub_err_t err;
    bool made = true;
    shub_signed_head_t cp;
    append_rows(s, 1, 3, 3); /* rows at +0.3..0.9 s: not due (10 rows, 5 s) */
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_checkpoint(s, BASE_MS + 5299, false, &cp, &made, &err), 0);
    assert_false(made);
    /* due once the oldest unsigned row (at +0.3 s) has waited 5 s */
    assert_int_equal(shub_store_checkpoint(s, BASE_MS + 5300, false, &cp, &made, &err), 0);
    assert_true(made);
    assert_int_equal(cp.seq, 3);
    assert_int_equal(shub_store_commit(s, &err), 0);
    append_rows(s, 4, 5, 2); /* +1.2 s and +1.5 s */
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_checkpoint(s, BASE_MS + 6199, false, &cp, &made, &err), 0);
    assert_false(made);
    assert_int_equal(shub_store_checkpoint(s, BASE_MS + 6200, false, &cp, &made, &err), 0);
    assert_true(made);
    assert_int_equal(cp.seq, 5);
    assert_int_equal(shub_store_checkpoint(s, BASE_MS + 9500, true, &cp, &made, &err), 0);
    assert_false(made); /* nothing new to sign, even forced */
    assert_int_equal(shub_store_commit(s, &err), 0);
    shub_signed_head_t latest;
    assert_int_equal(shub_store_checkpoint_latest(s, &latest, &err), 0);
    assert_memory_equal(&latest, &cp, sizeof cp);
    assert_memory_equal(latest.key, f->pk, 32);
    append_rows(s, 6, 15, 10); /* 10 rows: due by count at once */
    assert_int_equal(shub_store_checkpoint_latest(s, &latest, &err), 0);
    assert_int_equal(latest.seq, 15);
    shub_store_close(&s);
}

static void test_checkpoint_without_key_einval(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_path(f, f->path, 0, NULL);
    shub_err_t err;
    shub_signed_head_t cp;
    append_rows(s, 1, 2, 2);
    assert_int_equal(shub_store_checkpoint_latest(s, &cp, &err), SHUB_ENOTFOUND);
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_checkpoint(s, BASE_MS, true, NULL, NULL, &err), SHUB_EINVAL);
    shub_store_rollback(s);
    shub_store_close(&s);
}

/* ---- receipts, copies, updates, witnesses --------------------------------- */

typedef struct got {
    int n;
    char to[8][64];
    shub_outcome_t state[8];
    char reason[8][64], agreement[8][64];
} got_t;

static int collect(const shub_store_outcome_t *o, void *ctx)
{
    got_t *g = ctx;
    if (g->n < 8) {
        snprintf(g->to[g->n], 64, "%s", o->recipient);
        g->state[g->n] = o->state;
        snprintf(g->reason[g->n], 64, "%s", o->reason ? o->reason : "");
        snprintf(g->agreement[g->n], 64, "%s", o->agreement ? o->agreement : "");
    }
    g->n++;
    return 0;
}

static void put_outcome(shub_store_t *s, int64_t i, const char *to, shub_outcome_t state)
{
    shub_err_t err;
    shub_store_outcome_t o = {.recipient = to, .state = state};
    make_id(i, &o.event_id);
    if (state == SHUB_OUTCOME_DENIED) {
        o.reason = "recipient-not-party";
        o.detail = "dudley-mbc is not a party";
    } else {
        o.agreement = "wm-marac-isa";
        o.agreement_version = 3;
        o.agreement_hash = "9f2c7a";
        o.flow = "police-to-marac";
    }
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_outcome_put(s, &o, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
}

static void test_outcomes_put_dead_and_read_in_recipient_order(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    shub_id_t id;
    put_outcome(s, 10, "marac-coventry", SHUB_OUTCOME_QUEUED);
    put_outcome(s, 10, "idva-coventry", SHUB_OUTCOME_QUEUED);
    put_outcome(s, 10, "dudley-mbc", SHUB_OUTCOME_DENIED);
    make_id(10, &id);
    shub_store_outcome_t dup = {.event_id = id, .recipient = "dudley-mbc",
                                .state = SHUB_OUTCOME_DENIED};
    /* A second row for one recipient fails its batch at commit: nothing of
     * the batch lands, and the store goes on. */
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_outcome_put(s, &dup, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), SHUB_EDB);
    assert_true(strstr(err.msg, "UNIQUE") || strstr(err.msg, "unique constraint"));
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_outcome_dead(s, &id, "idva-coventry", "max-attempts",
                                             "no acknowledgement after 5 attempts", &err),
                     0);
    assert_int_equal(shub_store_outcome_dead(s, &id, "dudley-mbc", "max-attempts", NULL,
                                             &err),
                     0); /* denied is final: left alone */
    assert_int_equal(shub_store_commit(s, &err), 0);
    got_t g = {0};
    assert_int_equal(shub_store_outcomes(s, &id, collect, &g, &err), 0);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.to[0], "dudley-mbc");
    assert_int_equal(g.state[0], SHUB_OUTCOME_DENIED);
    assert_string_equal(g.reason[0], "recipient-not-party");
    assert_string_equal(g.to[1], "idva-coventry");
    assert_int_equal(g.state[1], SHUB_OUTCOME_DEAD);
    assert_string_equal(g.reason[1], "max-attempts");
    assert_string_equal(g.to[2], "marac-coventry");
    assert_int_equal(g.state[2], SHUB_OUTCOME_QUEUED);
    assert_string_equal(g.agreement[2], "wm-marac-isa");
    shub_store_close(&s);
}

typedef struct copies {
    int n;
    int64_t seq[16];
    char to[16][32];
    char fields[16][64];
} copies_t;

static int on_copy(const shub_store_copy_t *c, void *ctx)
{
    copies_t *l = ctx;
    if (l->n < 16) {
        l->seq[l->n] = c->seq;
        snprintf(l->to[l->n], 32, "%s", c->recipient);
        snprintf(l->fields[l->n], 64, "%s", c->fields_shared ? c->fields_shared : "");
    }
    l->n++;
    return 0;
}

static int64_t put_copy(shub_store_t *s, int64_t i, const char *to)
{
    shub_err_t err;
    uint8_t sealed[100];
    memset(sealed, (int)i, sizeof sealed);
    char sender[16];
    snprintf(sender, sizeof sender, "wmp");
    shub_store_copy_t c = {
        .recipient = to, .sender = sender, .event_type = "marac.referral",
        .agreement = "wm-marac-isa", .agreement_version = 3, .agreement_hash = "9f2c7a",
        .flow = "police-to-marac", .purpose = "marac-risk-management",
        .basis = "uk-gdpr-6-1-e", .fields_shared = "dash_score,victim.name",
        .created_ms = BASE_MS + i, .sealed = sealed, .sealed_len = sizeof sealed,
    };
    make_id(i, &c.event_id);
    assert_int_equal(shub_store_copy_put(s, &c, &err), 0);
    assert_true(c.sender != sender); /* interned: the store's own copy */
    assert_string_equal(c.sender, "wmp");
    return c.seq;
}

/* Names held in memory stay near their budget (64 KiB here) while rows
 * record 6,000 texts never seen before, and what was let go is still what it
 * was: texts recorded again get their first ids (the file gains no row),
 * outcomes read back their let-go names from the file and hold none of
 * them (4,000 receipts of their own), a copy's interned strings outlive
 * every trim, a rolled-back batch after trims hands out no id the file
 * has, and a store opened again with more names than its budget
 * finds the ones it did not load. The chain verifies throughout. */
static void test_names_bounded_let_go_read_back(void **state)
{
    enum { N = 6000, BUDGET = 64 << 10 };
    fixture_t *f = *state;
    shub_store_opts_t o = opts_for(f, 0);
    o.names_budget = BUDGET;
    shub_store_t *s = NULL;
    shub_err_t err;
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), 0);
    static char texts[N][40];
    for (int k = 0; k < N; k++)
        snprintf(texts[k], sizeof texts[k], "note_%d,dash_score,victim.name", k);
    /* a copy (its strings interned) and a denied outcome, before the flood */
    assert_int_equal(shub_store_begin(s, &err), 0);
    int64_t seq = put_copy(s, 1, "marac-coventry");
    assert_int_equal(shub_store_commit(s, &err), 0);
    put_outcome(s, 2, "dudley-mbc", SHUB_OUTCOME_DENIED);
    shub_store_copy_t c = {.recipient = "idva-coventry", .sender = "wmp",
                           .event_type = "marac.referral", .agreement = "wm-marac-isa",
                           .agreement_version = 3, .agreement_hash = "9f2c7a",
                           .flow = "police-to-marac", .fields_shared = texts[0],
                           .created_ms = BASE_MS, .sealed = (const uint8_t *)"x",
                           .sealed_len = 1};
    make_id(3, &c.event_id);
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_copy_put(s, &c, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    uint64_t held, bytes, most = 0;
    for (int k = 0; k < N; k++) {
        if (k % 100 == 0)
            assert_int_equal(shub_store_begin(s, &err), 0);
        shub_audit_row_t r;
        make_row(10 + k, &r);
        r.fields = texts[k];
        assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
        if (k % 100 == 99) {
            assert_int_equal(shub_store_commit(s, &err), 0);
            shub_store_names_held(s, &held, &bytes);
            most = bytes > most ? bytes : most;
        }
    }
    int64_t rows = sql_int(f->path, "SELECT count(*) FROM names");
    printf("names: %d new texts recorded; memory held at most %llu bytes (budget %d),"
           " %llu names at the end\n",
           N, (unsigned long long)most, BUDGET, (unsigned long long)held);
    assert_true(rows >= N);
    assert_true(most < 2 * BUDGET + 32768); /* the budget and one batch past it */
    assert_true(held < N / 4);
    /* the interned strings of the copy put before the flood */
    assert_string_equal(c.fields_shared, texts[0]);
    assert_string_equal(c.recipient, "idva-coventry");
    /* texts recorded again: the ids they had, no new row */
    assert_int_equal(shub_store_begin(s, &err), 0);
    for (int k = 0; k < N; k += 250) {
        shub_audit_row_t r;
        make_row(10 + N + k, &r);
        r.fields = texts[k];
        assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    }
    assert_int_equal(shub_store_commit(s, &err), 0);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM names"), rows);
    /* a let-go name read back: the denied outcome's detail */
    got_t g = {0};
    shub_id_t id;
    make_id(2, &id);
    assert_int_equal(shub_store_outcomes(s, &id, collect, &g, &err), 0);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.reason[0], "recipient-not-party");
    copies_t l = {0};
    assert_int_equal(shub_store_copies(s, on_copy, &l, &err), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.seq[0], seq);
    assert_string_equal(l.fields[1], texts[0]);
    /* a rolled-back batch with new names, then one that commits */
    assert_int_equal(shub_store_begin(s, &err), 0);
    shub_audit_row_t r;
    make_row(20 + N, &r);
    r.fields = "rolled,back";
    assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    shub_store_rollback(s);
    assert_int_equal(shub_store_begin(s, &err), 0);
    make_row(20 + N, &r);
    r.fields = "committed,after";
    assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    r.fields = texts[N - 1];
    make_row(21 + N, &r);
    r.fields = texts[N - 1];
    assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM names"), rows + 1);
    /* receipts read back hold nothing for good: 4,000 denied outcomes with
     * details of their own, then each read back, batches opening between */
    for (int k = 0; k < 4000; k++) {
        char detail[48];
        snprintf(detail, sizeof detail, "not a party to case %d", k);
        shub_store_outcome_t out = {.recipient = "dudley-mbc",
                                    .state = SHUB_OUTCOME_DENIED,
                                    .reason = "recipient-not-party",
                                    .detail = detail};
        make_id(100000 + k, &out.event_id);
        if (k % 100 == 0)
            assert_int_equal(shub_store_begin(s, &err), 0);
        assert_int_equal(shub_store_outcome_put(s, &out, &err), 0);
        if (k % 100 == 99)
            assert_int_equal(shub_store_commit(s, &err), 0);
    }
    uint64_t most_read = 0;
    for (int k = 0; k < 4000; k++) {
        if (k % 100 == 0)
            assert_int_equal(shub_store_begin(s, &err), 0);
        got_t g2 = {0};
        make_id(100000 + k, &id);
        assert_int_equal(shub_store_outcomes(s, &id, collect, &g2, &err), 0);
        assert_int_equal(g2.n, 1);
        assert_string_equal(g2.reason[0], "recipient-not-party");
        if (k % 100 == 99) {
            shub_store_rollback(s);
            shub_store_names_held(s, &held, &bytes);
            most_read = bytes > most_read ? bytes : most_read;
        }
    }
    printf("names: 4,000 receipts read back, memory held at most %llu bytes\n",
           (unsigned long long)most_read);
    assert_true(most_read < 2 * BUDGET + 32768);
    rows = sql_int(f->path, "SELECT count(*) FROM names");
    shub_store_close(&s);
    /* opened again: half the budget loaded, the rest found in the file */
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), 0);
    shub_store_names_held(s, &held, &bytes);
    assert_true(bytes <= BUDGET);
    assert_int_equal(shub_store_begin(s, &err), 0);
    for (int k = 0; k < N; k += 500) {
        make_row(30 + N + k, &r);
        r.fields = texts[k];
        assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    }
    assert_int_equal(shub_store_commit(s, &err), 0);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM names"), rows);
    shub_store_close(&s);
    shub_verify_result_t res = verify(f, NULL);
    if (!res.ok)
        print_error("verify: %s\n", res.problem);
    assert_true(res.ok);
}

/* An edited names table whose largest id leaves no room: a new text is
 * refused (SHUB_EDB) rather than given an id that wraps; known texts still
 * intern. */
static void test_names_edited_largest_id_refuses_new_text(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    append_rows(s, 1, 2, 2);
    shub_store_close(&s);
    sql(f->path, "INSERT INTO names(id, text) VALUES(9223372036854775807, 'edited')");
    s = open_store(f, 0);
    shub_err_t err;
    shub_audit_row_t r;
    assert_int_equal(shub_store_begin(s, &err), 0);
    make_row(1, &r); /* every text known */
    assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    make_row(1, &r);
    r.fields = "a,text,never,seen";
    assert_int_equal(shub_store_audit_append(s, &r, &err), SHUB_EDB);
    assert_non_null(strstr(err.msg, "largest id"));
    shub_store_rollback(s);
    shub_store_close(&s);
}

static void test_copies_put_list_read_drop_by_runs(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    int64_t seq[8];
    assert_int_equal(shub_store_begin(s, &err), 0);
    for (int i = 0; i < 8; i++)
        seq[i] = put_copy(s, i + 1, i % 2 ? "marac-coventry" : "idva-coventry");
    assert_int_equal(shub_store_commit(s, &err), 0);
    copies_t l = {0};
    assert_int_equal(shub_store_copies(s, on_copy, &l, &err), 0);
    assert_int_equal(l.n, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(l.seq[i], seq[i]);
    assert_string_equal(l.to[1], "marac-coventry");
    assert_string_equal(l.fields[0], "dash_score,victim.name");
    shub_buf_t buf = {0};
    assert_int_equal(shub_store_copy_sealed(s, seq[2], &buf, &err), 0);
    assert_int_equal(buf.len, 100);
    assert_int_equal(buf.data[0], 3);

    /* 1, 2, 3, 6, 7 dropped: two runs; a rolled-back drop stays. */
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_copy_drop(s, seq[4], &err), 0);
    shub_store_rollback(s);
    assert_int_equal(shub_store_begin(s, &err), 0);
    int drop[] = {6, 0, 2, 1, 5};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        assert_int_equal(shub_store_copy_drop(s, seq[drop[i]], &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    memset(&l, 0, sizeof l);
    assert_int_equal(shub_store_copies(s, on_copy, &l, &err), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.seq[0], seq[3]);
    assert_int_equal(l.seq[1], seq[4]);
    assert_int_equal(l.seq[2], seq[7]);
    assert_int_equal(shub_store_copy_sealed(s, seq[0], &buf, &err), SHUB_ENOTFOUND);
    shub_buf_free(&buf);
    shub_store_close(&s);
}

typedef struct ups {
    int n;
    int64_t seq[8];
    char to[8][32];
} ups_t;

static int on_update(const shub_store_update_t *u, void *ctx)
{
    ups_t *l = ctx;
    if (l->n < 8) {
        l->seq[l->n] = u->seq;
        snprintf(l->to[l->n], 32, "%s", u->recipient);
    }
    l->n++;
    return 0;
}

/* Receipts go once an event is old and done with; its id stays (a resend is
 * still a duplicate) and an event with a copy pending keeps its receipt. */
static void test_purge_outcomes_old_and_done_only(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    shub_id_t id;
    const int64_t day = 86400000LL;
    assert_int_equal(shub_store_begin(s, &err), 0);
    for (int64_t i = 1; i <= 3; i++) {
        make_id(i, &id);
        assert_int_equal(
            shub_store_event_add(s, &id, "wmp", i == 3 ? BASE_MS : BASE_MS - 100 * day, NULL,
                                 &err),
            0);
    }
    put_copy(s, 2, "marac-coventry"); /* event 2: a copy still pending */
    assert_int_equal(shub_store_commit(s, &err), 0);
    for (int64_t i = 1; i <= 3; i++)
        put_outcome(s, i, "marac-coventry", SHUB_OUTCOME_QUEUED);
    put_outcome(s, 1, "dudley-mbc", SHUB_OUTCOME_DENIED);
    assert_int_equal(shub_store_purge_outcomes(s, BASE_MS - 90 * day, 100, &err),
                     SHUB_EPROTO);
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_purge_outcomes(s, BASE_MS - 90 * day, 100, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    /* event 1's two rows went; 2 (pending) and 3 (recent) keep theirs */
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM outcomes"), 2);
    make_id(1, &id);
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_event_add(s, &id, "wmp", BASE_MS, NULL, &err), SHUB_EEXIST);
    shub_store_rollback(s);
    shub_store_close(&s);
}

static void test_updates_per_sender_in_order_until_confirmed(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    assert_int_equal(shub_store_begin(s, &err), 0);
    for (int i = 1; i <= 6; i++) {
        shub_store_update_t u = {
            .seq = i * 10, .sender = i % 2 ? "wmp" : "bcc",
            .recipient = i % 3 ? "marac-coventry" : "idva-coventry",
            .state = i == 5 ? SHUB_OUTCOME_DEAD : SHUB_OUTCOME_ACKNOWLEDGED,
            .reason = i == 5 ? "max-attempts" : NULL,
        };
        make_id(i, &u.event_id);
        assert_int_equal(shub_store_update_add(s, &u, &err), 0);
    }
    assert_int_equal(shub_store_commit(s, &err), 0);
    ups_t l = {0};
    assert_int_equal(shub_store_updates(s, "wmp", 0, 10, on_update, &l, &err), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.seq[0], 10);
    assert_int_equal(l.seq[1], 30);
    assert_int_equal(l.seq[2], 50);
    assert_string_equal(l.to[1], "idva-coventry");
    memset(&l, 0, sizeof l);
    assert_int_equal(shub_store_updates(s, "wmp", 10, 1, on_update, &l, &err), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.seq[0], 30);
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_updates_confirm(s, "wmp", 30, &err), 0);
    assert_int_equal(shub_store_updates_confirm(s, "nobody", 30, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    memset(&l, 0, sizeof l);
    assert_int_equal(shub_store_updates(s, "wmp", 0, 10, on_update, &l, &err), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.seq[0], 50);
    memset(&l, 0, sizeof l);
    assert_int_equal(shub_store_updates(s, "bcc", 0, 10, on_update, &l, &err), 0);
    assert_int_equal(l.n, 3);
    shub_store_close(&s);
}

typedef struct dls {
    int n;
    shub_store_deadline_t d[4];
} dls_t;

static int on_deadline(const shub_store_deadline_t *d, void *ctx)
{
    dls_t *l = ctx;
    if (l->n < 4)
        l->d[l->n] = *d;
    l->n++;
    return 0;
}

static void test_deadlines_put_mark_open_survive_reopen(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    assert_int_equal(shub_store_begin(s, &err), 0);
    for (int i = 1; i <= 3; i++) {
        shub_store_deadline_t d = {
            .recipient = "marac-coventry", .sender = "wmp", .event_type = "marac.referral",
            .area = "coventry", .agreement = "wm-marac", .agreement_version = 4,
            .agreement_hash = "abc", .flow = "referral", .kind = SHUB_STORE_DEADLINE_ACK,
            .hours = 24, .started_ms = 1000 * i, .due_ms = 1000 * i + 86400000,
        };
        make_id(i, &d.event_id);
        assert_int_equal(shub_store_deadline_put(s, &d, &err), 0);
        assert_int_equal(shub_store_deadline_put(s, &d, &err), 0); /* repeat ignored */
    }
    shub_id_t id;
    make_id(1, &id);
    assert_int_equal(shub_store_deadline_mark(s, &id, "marac-coventry",
                                              SHUB_STORE_DEADLINE_ACK, 5000, 0, &err),
                     0);
    make_id(2, &id);
    assert_int_equal(shub_store_deadline_mark(s, &id, "marac-coventry",
                                              SHUB_STORE_DEADLINE_ACK, 0, 90000000, &err),
                     0);
    assert_int_equal(shub_store_deadline_mark(s, &id, "marac-coventry",
                                              SHUB_STORE_DEADLINE_ACT, 0, 1, &err),
                     0); /* no act deadline: left alone */
    assert_int_equal(shub_store_commit(s, &err), 0);
    shub_store_close(&s);

    s = open_store(f, 0);
    dls_t l = {0};
    assert_int_equal(shub_store_deadlines_open(s, on_deadline, &l, &err), 0);
    assert_int_equal(l.n, 2); /* the answered one is closed */
    assert_int_equal(l.d[0].escalated_ms, 90000000);
    assert_string_equal(l.d[0].flow, "referral");
    assert_string_equal(l.d[0].agreement, "wm-marac");
    assert_int_equal(l.d[0].agreement_version, 4);
    assert_int_equal(l.d[1].escalated_ms, 0);
    assert_int_equal(l.d[1].due_ms, 3000 + 86400000);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM deadlines WHERE answered_at = 5000"),
                     1);
    shub_store_close(&s);
}

static void test_witness_add_of_own_checkpoint_repeat_ignored(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    shub_signed_head_t cp, w;
    append_rows(s, 1, 5, 5);
    sign_now(s, BASE_MS + 2000, &cp);
    w = cp;
    memset(w.key, 8, 32); /* the witness's own key and signature */
    memset(w.sig, 9, 64);
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_witness_add(s, "marac-coventry", &w, BASE_MS, &err), 0);
    assert_int_equal(shub_store_witness_add(s, "marac-coventry", &w, BASE_MS, &err), 0);
    assert_int_equal(shub_store_witness_add(s, "wmp", &w, BASE_MS, &err), 0);
    w.head[0] ^= 1; /* a checkpoint this log never made */
    assert_int_equal(shub_store_witness_add(s, "wmp", &w, BASE_MS, &err), SHUB_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no checkpoint of rows up to 5"));
    assert_int_equal(shub_store_commit(s, &err), 0);
    shub_store_close(&s);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM witnesses"), 2);
}

static void test_agreement_seen_twice_one_row(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    for (int i = 0; i < 2; i++)
        assert_int_equal(shub_store_agreement_seen(s, "wm-marac-isa", 3, "9f2c7a",
                                                   "MARAC ISA", "active", BASE_MS, 0,
                                                   BASE_MS + 1, BASE_MS, &err),
                         0);
    append_rows(s, 1, 2, 2); /* rows naming it refer to the same version row */
    shub_store_close(&s);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM agreement_versions"), 1);
    assert_int_equal(sql_int(f->path, "SELECT count(DISTINCT agreement) FROM audit"), 1);
}

static void test_maintain_indexes_rows_behind_the_chain(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    bool more = true;
    append_rows(s, 1, SHUB_STORE_INDEX_BATCH + 10, 500);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM audit_find"), 0);
    assert_int_equal(shub_store_maintain(s, false, &more, &err), 0);
    assert_true(more);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM audit_find"),
                     SHUB_STORE_INDEX_BATCH);
    assert_int_equal(shub_store_maintain(s, true, &more, &err), 0);
    assert_false(more);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM audit_find"),
                     SHUB_STORE_INDEX_BATCH + 10);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM audit_find f JOIN audit a"
                                      " USING(seq) WHERE f.sender IS NOT DISTINCT FROM a.sender AND"
                                      " f.case_hash IS NOT DISTINCT FROM a.case_hash"),
                     SHUB_STORE_INDEX_BATCH + 10);
    shub_store_close(&s);
}

/* ---- tampering: what verify catches ------------------------------------- */

static void expect_bad(fixture_t *f, const uint8_t *pk, const shub_witnessed_t *w,
                       size_t nw, int64_t bad_seq, const char *problem)
{
    shub_verify_result_t res = verify_with(f->path, pk, w, nw, BASE_MS + 10000000);
    if (res.ok || strncmp(res.problem, problem, strlen(problem)) != 0)
        print_error("verify said ok=%d at %lld: %s\n", res.ok, (long long)res.bad_seq,
                    res.problem);
    assert_false(res.ok);
    assert_int_equal(res.bad_seq, bad_seq);
    assert_int_equal(strncmp(res.problem, problem, strlen(problem)), 0);
}

static void test_verify_edited_column_edited(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    sql(f->path, "UPDATE audit SET at = at + 1 WHERE seq = 17");
    expect_bad(f, f->pk, NULL, 0, 17, "edited");
}

static void test_verify_name_swapped_edited(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    /* point row 12 at another existing name */
    sql(f->path, "UPDATE audit SET recipient = (SELECT id FROM names WHERE text ="
                 " 'marac-coventry') WHERE seq = 12");
    expect_bad(f, f->pk, NULL, 0, 12, "edited");
}

static void test_verify_names_text_edited_edits_every_row_using_it(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    sql(f->path, "UPDATE names SET text = 'marac-dudley' WHERE text = 'marac-coventry'");
    expect_bad(f, f->pk, NULL, 0, 1, "edited");
}

static void test_verify_id_to_null_edited(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    sql(f->path, "UPDATE audit SET explanation = NULL WHERE seq = 7");
    expect_bad(f, f->pk, NULL, 0, 7, "edited");
}

static void test_verify_deleted_middle_row_missing(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    sql(f->path, "DELETE FROM audit WHERE seq = 23");
    expect_bad(f, f->pk, NULL, 0, 23, "missing: row 23");
}

static void test_verify_deleted_signed_tail_truncated(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    sql(f->path, "DELETE FROM audit WHERE seq > 45");
    expect_bad(f, f->pk, NULL, 0, 46, "truncated after checkpoint");
}

/* The newest checkpoint and the rows it signed, removed together: a chain
 * alone cannot tell; a witness who holds that checkpoint can. */
static void test_verify_newest_checkpoint_and_rows_removed_needs_witness(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    sql(f->path, "DELETE FROM audit WHERE seq > 40;"
                 " DELETE FROM checkpoints WHERE upto_seq > 40");
    shub_verify_result_t res = verify(f, f->pk);
    assert_true(res.ok); /* what no chain can show on its own */
    shub_witnessed_t w = witness_of(&cp, "marac-coventry");
    expect_bad(f, f->pk, &w, 1, 50, "not witnessed");
}

static void test_verify_unsigned_tail_removed_needs_witness(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    shub_store_t *s = open_store(f, 20);
    append_rows(s, 1, 50, 10); /* checkpoints at 20 and 40; 41-50 unsigned (a kill -9) */
    shub_store_close(&s);
    shub_verify_result_t res = verify(f, f->pk);
    assert_true(res.ok);
    assert_int_equal(res.unsigned_rows, 10);
    assert_int_equal(res.signed_upto, 40);
    assert_int_equal(res.unsigned_span_ms, 2700);
    /* a restarted broker signs the tail; a witness keeps that checkpoint */
    s = open_store(f, 20);
    sign_now(s, BASE_MS + 16000, &cp);
    shub_store_close(&s);
    sql(f->path, "DELETE FROM audit WHERE seq > 44; DELETE FROM checkpoints WHERE"
                 " upto_seq > 44");
    assert_true(verify(f, f->pk).ok);
    shub_witnessed_t w = witness_of(&cp, "wmp");
    expect_bad(f, f->pk, &w, 1, 50, "not witnessed");
}

static void test_verify_swapped_rows_edited(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    sql(f->path, "UPDATE audit SET seq = -1 WHERE seq = 31;"
                 "UPDATE audit SET seq = 31 WHERE seq = 32;"
                 "UPDATE audit SET seq = 32 WHERE seq = -1");
    expect_bad(f, f->pk, NULL, 0, 31, "edited");
}

/* A forger with this code and the names table builds a row that hashes right
 * after row 24 and slides it in, moving the rest down: verify names it. */
static void test_verify_forged_row_inserted(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    /* The forged chain: the same 24 rows, then a row of the forger's, in a
     * second file; its row 25 goes into the victim as row 25, the victim's
     * rows 25.. move up one. */
    shub_store_t *s = open_path(f, f->path2, 0, NULL);
    append_rows(s, 1, 24, 24);
    shub_err_t err;
    shub_audit_row_t r;
    make_row(25, &r);
    r.recipient = "idva-coventry";
    r.decision = "allow";
    r.reason = NULL;
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    shub_store_close(&s);
    char text[2048];
    testdb_attach(f->path2,
                  "UPDATE audit SET seq = seq + 1000 WHERE seq >= 25;"
                  " UPDATE audit SET seq = seq - 999 WHERE seq >= 1025;"
                  " INSERT INTO audit SELECT * FROM f.audit WHERE seq = 25",
                  text, sizeof text);
    sql(f->path, text);
    expect_bad(f, NULL, NULL, 0, 25, "inserted: row 25");
}

/* Rewriting the chain from row 10 on and rehashing every later row: with the
 * real checkpoints kept, the first one after the edit no longer matches. */
static void test_verify_rewritten_chain_edited_at_checkpoint(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    shub_store_t *s = open_path(f, f->path2, 0, NULL);
    append_rows(s, 1, 9, 9);
    shub_err_t err;
    assert_int_equal(shub_store_begin(s, &err), 0);
    for (int64_t i = 10; i <= 50; i++) {
        shub_audit_row_t r;
        make_row(i, &r);
        if (i == 10)
            r.decision = "deny";
        assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
    }
    assert_int_equal(shub_store_commit(s, &err), 0);
    shub_store_close(&s);
    char text[2048];
    testdb_attach(f->path2,
                  "DELETE FROM audit; DELETE FROM names;"
                  " INSERT INTO names SELECT * FROM f.names;"
                  " INSERT INTO audit SELECT * FROM f.audit",
                  text, sizeof text);
    sql(f->path, text);
    expect_bad(f, f->pk, NULL, 0, 20, "edited: row 20 differs from signed checkpoint");
}

/* The whole log rewritten and rehashed, every checkpoint deleted (the forger
 * cannot sign with the broker's key): the tail spans far more than the
 * signing interval; re-signed with the forger's key it is another key; and a
 * witness's checkpoint is not in it. */
static void test_verify_whole_chain_rewritten_checkpoints_deleted(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    shub_store_t *s = open_path(f, f->path2, 0, f->fsk);
    for (int64_t i = 1; i <= 50; i++) {
        shub_err_t err;
        shub_audit_row_t r;
        make_row(i, &r);
        if (i == 3)
            r.recipient = "wmp-custody";
        assert_int_equal(shub_store_begin(s, &err), 0);
        assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
        assert_int_equal(shub_store_commit(s, &err), 0);
    }
    shub_store_close(&s);
    char text[2048];
    testdb_attach(f->path2,
                  "DELETE FROM audit; DELETE FROM checkpoints;"
                  " DELETE FROM names; INSERT INTO names SELECT * FROM f.names;"
                  " INSERT INTO audit SELECT * FROM f.audit",
                  text, sizeof text);
    sql(f->path, text);
    assert_true(verify(f, NULL).ok); /* self-consistent: only evidence tells */
    expect_bad(f, f->pk, NULL, 0, 1, "unsigned tail");
    shub_witnessed_t w = witness_of(&cp, "marac-coventry");
    expect_bad(f, f->pk, &w, 1, 50, "not witnessed");
    /* re-signed by the forger */
    s = open_path(f, f->path, 0, f->fsk);
    sign_now(s, BASE_MS + 15200, NULL);
    shub_store_close(&s);
    expect_bad(f, f->pk, NULL, 0, 50, "bad signature");
}

static void test_verify_emptied_log_detected_by_witness(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    sql(f->path, "DELETE FROM audit; DELETE FROM checkpoints");
    shub_verify_result_t res = verify(f, f->pk);
    assert_true(res.ok);
    assert_int_equal(res.rows, 0);
    shub_witnessed_t w = witness_of(&cp, "wmp");
    expect_bad(f, f->pk, &w, 1, 50, "not witnessed");
}

static void test_verify_corrupt_signature_bad_signature(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    sql(f->path, "UPDATE checkpoints SET at = at + 1 WHERE upto_seq = 40");
    expect_bad(f, NULL, NULL, 0, 40, "bad signature");
}

static void test_verify_witness_checks(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    shub_witnessed_t w = witness_of(&cp, "marac-coventry");
    shub_verify_result_t res = verify_with(f->path, f->pk, &w, 1, BASE_MS);
    assert_true(res.ok);
    assert_int_equal(res.witnessed, 1);
    /* a witness's copy that does not verify is not evidence of anything */
    w.cp.head[0] ^= 1;
    expect_bad(f, f->pk, &w, 1, 50, "bad signature");
    /* one signed by another key than the one the verifier expects */
    w = witness_of(&cp, "marac-coventry");
    memcpy(w.cp.key, f->fpk, 32);
    expect_bad(f, f->pk, &w, 1, 50, "bad signature");
}

/* A fork an agent kept: a checkpoint the broker's key signed that contradicts
 * one the agent held. Whatever the log says, the broker signed two histories;
 * one signed by another key is no evidence of that, and says so. */
static void test_verify_fork_held_by_witness_forked(void **state)
{
    fixture_t *f = *state;
    shub_signed_head_t cp;
    build_log(f, &cp);
    shub_witnessed_t w[2] = {witness_of(&cp, "wmp"), witness_of(&cp, "wmp")};
    shub_verify_result_t res = verify_with(f->path, f->pk, w, 1, BASE_MS);
    assert_true(res.ok);
    assert_int_equal(res.witnessed_upto, 50);
    /* the same rows, another head, signed by the broker */
    uint8_t other[32];
    memcpy(other, cp.head, 32);
    other[0] ^= 0x80;
    assert_int_equal(
        shub_checkpoint_sign(50, other, cp.at_ms + 1, f->sk, f->pk, &w[1].cp), 0);
    w[1].fork = true;
    expect_bad(f, f->pk, w, 2, 50, "forked: wmp keeps a checkpoint of rows up to 50");
    expect_bad(f, NULL, w, 2, 50, "forked");
    /* the log's own checkpoint, kept as a fork (an agent that had a later one) */
    w[1].cp = cp;
    expect_bad(f, f->pk, w, 2, 50, "forked");
    /* a fork signed by a key other than the broker's */
    assert_int_equal(
        shub_checkpoint_sign(50, other, cp.at_ms + 1, f->fsk, f->fpk, &w[1].cp), 0);
    expect_bad(f, f->pk, w, 2, 50,
               "bad signature: the fork of rows up to 50 held by wmp");
}

/* Untouched logs never raise an alarm: a clean stop, a broker killed with
 * rows unsigned (within the interval), an empty store. */
static void test_verify_untouched_logs_no_false_alarm(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_verify_result_t res = verify(f, f->pk);
    assert_true(res.ok);
    assert_int_equal(res.rows, 0);
    append_rows(s, 1, 4, 1); /* 4 rows over 0.9 s: none signed yet (a kill -9) */
    shub_store_close(&s);
    res = verify(f, f->pk);
    assert_true(res.ok);
    assert_int_equal(res.signed_upto, 0);
    assert_int_equal(res.unsigned_rows, 4);
    assert_int_equal(res.unsigned_span_ms, 900);
    assert_true(res.unsigned_age_ms > 0);
}

static void test_open_readonly_beside_writer_reads_committed(void **state)
{
    fixture_t *f = *state;
    shub_store_t *w = open_store(f, 0);
    append_rows(w, 1, 10, 10);
    shub_err_t err;
    shub_audit_row_t r;
    assert_int_equal(shub_store_begin(w, &err), 0);
    make_row(11, &r);
    assert_int_equal(shub_store_audit_append(w, &r, &err), 0);
    shub_store_opts_t ro = {.readonly = true};
    shub_store_t *rd = NULL;
    assert_int_equal(shub_store_open(f->path, &ro, &rd, &err), 0);
    seen_t seen = {0};
    assert_int_equal(shub_store_audit_read(rd, 0, 100, keep_row, &seen, &err), 0);
    assert_int_equal(seen.n, 10); /* row 11 is not committed */
    assert_int_equal(shub_store_commit(w, &err), 0);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(shub_store_audit_read(rd, 0, 100, keep_row, &seen, &err), 0);
    assert_int_equal(seen.n, 11);
    shub_store_close(&rd);
    shub_store_close(&w);
}

static void test_open_exclusive_second_broker_ebusy_names_pid(void **state)
{
    fixture_t *f = *state;
    shub_store_opts_t o = opts_for(f, 0);
    o.exclusive = true;
    shub_store_t *a = NULL, *b = NULL;
    shub_err_t err;
    char pid[32];
    assert_int_equal(shub_store_open(f->path, &o, &a, &err), 0);
    assert_int_equal(shub_store_open(f->path, &o, &b, &err), SHUB_EBUSY);
    assert_null(b);
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid()); /* the lock file's, or the
                                                              holder's session name */
    assert_non_null(strstr(err.msg, pid));
    assert_non_null(strstr(err.msg, "in use by another broker"));
    shub_store_close(&a);
    assert_int_equal(shub_store_open(f->path, &o, &b, &err), 0); /* released */
    shub_store_close(&b);
}

static void test_open_foreign_database_edb_untouched(void **state)
{
    fixture_t *f = *state;
    sql(f->path, "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)");
    shub_store_opts_t o = opts_for(f, 0);
    shub_store_t *s = NULL;
    shub_err_t err;
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), SHUB_EDB);
    assert_null(s);
    assert_non_null(strstr(err.msg, "is not a sharehub store"));
    if (testdb_pg()) {
        assert_int_equal(sql_int(f->path, "SELECT count(*) FROM information_schema.tables"
                                          " WHERE table_schema = current_schema()"),
                         1);
        return;
    }
    assert_int_equal(sql_int(f->path, "PRAGMA application_id"), 0);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_schema"), 1);
}

static void test_open_version_1_store_says_what_to_do(void **state)
{
    fixture_t *f = *state;
    sql(f->path, testdb_pg() ? "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
                               " INSERT INTO meta VALUES('application_id', '1397249346'),"
                               " ('user_version', '1');"
                               " CREATE TABLE audit(seq INTEGER PRIMARY KEY)"
                             : "PRAGMA application_id = 1397249346; PRAGMA user_version = 1;"
                               " CREATE TABLE audit(seq INTEGER PRIMARY KEY)");
    shub_store_opts_t o = opts_for(f, 0);
    shub_store_t *s = NULL;
    shub_err_t err;
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), SHUB_EDB);
    assert_non_null(strstr(err.msg, "version 1 store"));
    assert_non_null(strstr(err.msg, "new database file"));
}

static void test_open_future_schema_version_edb(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_store_close(&s);
    sql(f->path, testdb_pg() ? "UPDATE meta SET value = '9' WHERE key = 'user_version'"
                             : "PRAGMA user_version = 9");
    shub_store_opts_t o = opts_for(f, 0);
    shub_err_t err;
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), SHUB_EDB);
    assert_non_null(strstr(err.msg, "newer than this sharehub"));
}

static void test_open_other_subject_key_ecrypto(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_store_close(&s);
    shub_store_opts_t o = opts_for(f, 0);
    uint8_t other[32] = {1};
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
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), SHUB_EDB);
    assert_null(s);
    if (testdb_pg()) /* nothing created in the schema */
        assert_int_equal(sql_int(f->path, "SELECT count(*) FROM information_schema.tables"
                                          " WHERE table_schema = current_schema()"),
                         0);
    else
        assert_int_equal(access(f->path, F_OK), -1); /* not created */
}

/* A full disk fails the commit; the transaction leaves nothing behind, the
 * head stays, and once there is room again the store carries on. */
static void test_commit_disk_full_rolls_back_then_recovers(void **state)
{
    SQLITE_ONLY("a full disk is simulated with SQLite's max_page_count");
    fixture_t *f = *state;
    shub_store_opts_t o = opts_for(f, 50);
    o.max_pages = 60;
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
            rc = shub_store_event_add(s, &r.event_id, "wmp", BASE_MS, NULL, &err);
            if (rc == 0)
                rc = shub_store_audit_append(s, &r, &err);
            shub_store_copy_t c = {.event_id = r.event_id, .recipient = "marac-coventry",
                                   .sender = "wmp", .event_type = "marac.referral",
                                   .agreement = "wm-marac-isa", .agreement_version = 3,
                                   .agreement_hash = "9f2c7a", .flow = "police-to-marac",
                                   .sealed = sealed, .sealed_len = sizeof sealed,
                                   .created_ms = BASE_MS};
            if (rc == 0)
                rc = shub_store_copy_put(s, &c, &err);
        }
        if (rc == 0)
            rc = shub_store_commit(s, &err);
        if (rc == 0)
            good = i;
        else
            failed_from = first;
    }
    assert_int_equal(rc, SHUB_EDB);
    assert_non_null(strstr(err.msg, "database or disk is full"));
    assert_true(good > 0);
    shub_store_rollback(s);
    int64_t seq;
    shub_store_head(s, &seq, NULL);
    assert_int_equal(seq, good);

    /* Nothing of the failed batch is visible: its first id is new again. */
    shub_id_t id;
    make_id(failed_from, &id);
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_event_add(s, &id, "wmp", BASE_MS, NULL, &err), 0);
    shub_store_rollback(s);
    shub_store_close(&s);
    shub_verify_result_t res = verify(f, NULL);
    assert_true(res.ok);
    assert_int_equal(res.rows, good);

    o.max_pages = 100000;
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), 0);
    append_rows(s, good + 1, good + 120, 40);
    shub_store_close(&s);
    res = verify(f, NULL);
    assert_true(res.ok);
    assert_int_equal(res.rows, good + 120);
}

/* ---- the writer thread ------------------------------------------------------ */

static shub_store_t *open_writer(const fixture_t *f, int64_t max_pages)
{
    shub_store_opts_t o = opts_for(f, 0);
    o.writer_thread = true;
    o.max_pages = max_pages;
    shub_store_t *s = NULL;
    shub_err_t err;
    int rc = shub_store_open(f->path, &o, &s, &err);
    if (rc)
        print_error("open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_true(shub_store_fd(s) >= 0);
    return s;
}

/* Records rows from..to with their events and sealed copies, then submits:
 * the batch's ticket. */
static uint64_t submit_rows(shub_store_t *s, int64_t from, int64_t to, size_t sealed_len)
{
    static uint8_t sealed[4000];
    shub_err_t err;
    uint64_t ticket = 0;
    assert_int_equal(shub_store_begin(s, &err), 0);
    for (int64_t i = from; i <= to; i++) {
        shub_audit_row_t r;
        make_row(i, &r);
        assert_int_equal(shub_store_event_add(s, &r.event_id, "wmp", BASE_MS, NULL, &err), 0);
        assert_int_equal(shub_store_audit_append(s, &r, &err), 0);
        shub_store_copy_t c = {.event_id = r.event_id, .recipient = "marac-coventry",
                               .sender = "wmp", .event_type = "marac.referral",
                               .agreement = "wm-marac-isa", .agreement_version = 3,
                               .agreement_hash = "9f2c7a", .flow = "police-to-marac",
                               .sealed = sealed, .sealed_len = sealed_len,
                               .created_ms = BASE_MS};
        assert_int_equal(shub_store_copy_put(s, &c, &err), 0);
    }
    assert_int_equal(shub_store_submit(s, &ticket, &err), 0);
    return ticket;
}

/* Waits on the store's descriptor until `ticket` is settled or a failure is
 * reported (its return). */
static int wait_settled(shub_store_t *s, uint64_t ticket, shub_err_t *err)
{
    for (int i = 0; i < 1000; i++) {
        uint64_t done = 0;
        int rc = shub_store_poll(s, &done, err);
        if (rc || done >= ticket)
            return rc;
        usleep(5000);
    }
    fail_msg("ticket %llu never settled", (unsigned long long)ticket);
    return -1;
}

/* Twenty batches handed over without waiting: each later one starts from the
 * earlier's end, all land in order, and the chain verifies. While a batch is
 * in flight its event is busy for its sender and taken for any other. */
static void test_writer_batches_commit_in_order_and_verify(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_writer(f, 0);
    shub_err_t err;
    uint64_t last = 0;
    for (int b = 0; b < 20; b++)
        last = submit_rows(s, b * 10 + 1, b * 10 + 10, 700);
    assert_true(shub_store_busy(s) || shub_store_settled(s) == last);

    shub_id_t id;
    char first[SHUB_MSG_MAX_NAME + 1] = "";
    make_id(200, &id);
    assert_int_equal(shub_store_begin(s, &err), 0);
    int rc = shub_store_event_add(s, &id, "wmp", BASE_MS, first, &err);
    assert_true(rc == SHUB_EBUSY || rc == SHUB_EEXIST); /* in flight, or committed */
    assert_int_equal(shub_store_event_add(s, &id, "bcc", BASE_MS, first, &err), SHUB_EEXIST);
    assert_string_equal(first, "wmp");
    shub_store_rollback(s);

    assert_int_equal(wait_settled(s, last, &err), 0);
    assert_false(shub_store_busy(s));
    int64_t seq;
    shub_store_head(s, &seq, NULL);
    assert_int_equal(seq, 200);
    assert_int_equal(shub_store_begin(s, &err), 0);
    assert_int_equal(shub_store_event_add(s, &id, "wmp", BASE_MS, NULL, &err), SHUB_EEXIST);
    shub_store_rollback(s);
    sign_now(s, BASE_MS + 300 * 201, NULL);
    shub_store_close(&s);
    shub_verify_result_t res = verify(f, NULL);
    assert_true(res.ok);
    assert_int_equal(res.rows, 200);
}

/* Reads see the last commit: updates wait for what was submitted, so one
 * submitted just before is read. */
static void test_writer_updates_read_waits_for_submitted(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_writer(f, 0);
    shub_err_t err;
    uint64_t ticket = 0;
    assert_int_equal(shub_store_begin(s, &err), 0);
    shub_store_update_t u = {.seq = 7, .sender = "wmp", .recipient = "marac-coventry",
                             .state = SHUB_OUTCOME_ACKNOWLEDGED};
    make_id(1, &u.event_id);
    assert_int_equal(shub_store_update_add(s, &u, &err), 0);
    assert_int_equal(shub_store_submit(s, &ticket, &err), 0);
    ups_t l = {0};
    assert_int_equal(shub_store_updates(s, "wmp", 0, 10, on_update, &l, &err), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.seq[0], 7);
    assert_true(shub_store_settled(s) >= ticket);
    shub_store_close(&s);
}

/* A full disk fails a batch on the writer: it and every batch behind it are
 * not in the file, poll says so until recover, and recover puts the head
 * back at the last commit; the file verifies and takes rows again once there
 * is room. */
static void test_writer_disk_full_fails_the_rest_then_recovers(void **state)
{
    SQLITE_ONLY("a full disk is simulated with SQLite's max_page_count");
    fixture_t *f = *state;
    shub_store_t *s = open_writer(f, 80);
    shub_err_t err;
    uint64_t ticket = 0;
    int rc = 0;
    int64_t next = 1;
    while (rc == 0 && next < 5000) {
        ticket = submit_rows(s, next, next + 9, 3000);
        next += 10;
        rc = wait_settled(s, ticket > 1 ? ticket - 1 : ticket, &err);
    }
    assert_int_equal(rc, SHUB_EDB);
    assert_non_null(strstr(err.msg, "database or disk is full"));
    /* Still refused: nothing runs until recover. */
    uint64_t after = submit_rows(s, next, next + 9, 10);
    assert_int_equal(wait_settled(s, after, &err), SHUB_EDB);
    uint64_t settled = shub_store_settled(s);
    assert_true(settled < after);
    assert_int_equal(shub_store_recover(s, &err), 0);
    int64_t seq;
    shub_store_head(s, &seq, NULL);
    assert_true(seq > 0);
    assert_int_equal(seq % 10, 0);
    uint64_t polled = 0;
    assert_int_equal(shub_store_poll(s, &polled, &err), 0);
    shub_store_close(&s);
    shub_verify_result_t res = verify(f, NULL);
    assert_true(res.ok);
    assert_int_equal(res.rows, seq);

    s = open_writer(f, 100000);
    shub_store_head(s, &seq, NULL);
    uint64_t t = submit_rows(s, seq + 1, seq + 10, 10);
    assert_int_equal(wait_settled(s, t, &err), 0);
    shub_store_close(&s);
    res = verify(f, NULL);
    assert_true(res.ok);
    assert_int_equal(res.rows, seq + 10);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The broker's options for the WAL tests: a writer thread, synchronous
 * FULL, and the WAL limit. */
static shub_store_opts_t wal_opts(const fixture_t *f, int64_t limit)
{
    shub_store_opts_t o = opts_for(f, 0);
    o.writer_thread = true;
    o.synchronous_full = true;
    o.wal_limit = limit;
    return o;
}

/* The store opened with wal_opts, and its WAL file's path in wal. */
static shub_store_t *open_wal(const fixture_t *f, int64_t limit, char *wal, size_t size)
{
    shub_store_opts_t o = wal_opts(f, limit);
    shub_store_t *s = NULL;
    shub_err_t err;
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), 0);
    snprintf(wal, size, "%s-wal", f->path);
    return s;
}

/* Signs the chain, closes the store, and checks that verify finds it whole
 * with `rows` rows. */
static void close_verified(const fixture_t *f, shub_store_t **s, int64_t rows)
{
    sign_now(*s, BASE_MS + 300 * (rows + 1), NULL);
    shub_store_close(s);
    shub_verify_result_t res = verify(f, NULL);
    assert_true(res.ok);
    assert_int_equal(res.rows, rows);
}

/* Under traffic that never pauses (the broker's idle restart never comes),
 * with a reader beside the writer as the hub has, the WAL is written from
 * its start again once it is past its limit: writing 24 times the limit
 * leaves a file a few times the limit long (a checkpointer's tick of
 * writes), not one that grew by everything written. Every row is kept. */
static void test_writer_wal_bounded_under_unbroken_traffic(void **state)
{
    SQLITE_ONLY("the WAL file is SQLite's");
    enum { LIMIT = 2 << 20, ROWS = 60, COPY = 4000 };
    fixture_t *f = *state;
    char wal[600];
    shub_store_t *s = open_wal(f, LIMIT, wal, sizeof wal);
    shub_err_t err;
    int64_t next = 1, written = 0, most = 0;
    uint64_t prev = 0;
    while (written < 24LL * LIMIT) {
        uint64_t t = submit_rows(s, next, next + ROWS - 1, COPY);
        next += ROWS;
        written += ROWS * COPY;
        /* two batches in flight, as the hub keeps them, and a read between */
        if (prev)
            assert_int_equal(wait_settled(s, prev, &err), 0);
        prev = t;
        ups_t l = {0};
        assert_int_equal(shub_store_updates(s, "wmp", 0, 10, on_update, &l, &err), 0);
        off_t size = file_size(wal);
        if (size > most)
            most = size;
        usleep(10000); /* at most about 24 MB/s: a tick of it is 6 MB */
    }
    assert_int_equal(wait_settled(s, prev, &err), 0);
    print_message("wal: %lld MiB written, the file at most %.1f MiB (limit %d MiB)\n",
                  (long long)(written >> 20), (double)most / (1 << 20), LIMIT >> 20);
    assert_true(most > 0);
    assert_true(most <= 8LL * LIMIT);
    close_verified(f, &s, next - 1);
}

/* A WAL file that once grew past the limit keeps its length (it is written
 * over in place), and a trickle of commits afterwards fills far less than
 * the limit: no restart is asked for then. Judged by the file's length,
 * every checkpointer tick asked for one (six in this test), each holding
 * the writer for a RESTART. */
static void test_writer_wal_restart_judged_by_frames_not_file_length(void **state)
{
    SQLITE_ONLY("the WAL file is SQLite's");
    enum { LIMIT = 1 << 20, COPY = 4000 };
    fixture_t *f = *state;
    char wal[600];
    shub_store_t *s = open_wal(f, LIMIT, wal, sizeof wal);
    shub_err_t err;

    /* A burst of 4 MiB in one go: the file grows past the limit, and the
     * checkpointer asks for a restart within a tick or two. */
    int64_t next = 1;
    uint64_t t = submit_rows(s, next, next + 999, COPY);
    next += 1000;
    assert_int_equal(wait_settled(s, t, &err), 0);
    assert_true(file_size(wal) > LIMIT);
    for (int waited = 0; shub_store_wal_restarts(s) == 0 && waited < 3000; waited += 10)
        usleep(10000);
    assert_true(shub_store_wal_restarts(s) >= 1);
    /* The commit after the request restarts the WAL; the one after that
     * writes it from its start. */
    for (int i = 0; i < 2; i++) {
        t = submit_rows(s, next, next, COPY);
        next++;
        assert_int_equal(wait_settled(s, t, &err), 0);
    }
    uint64_t before = shub_store_wal_restarts(s);
    off_t length = file_size(wal);

    /* Then 1.5 s of a trickle, six ticks: about 20 KB of frames a commit,
     * 300 KB in all, under the limit. */
    for (int i = 0; i < 15; i++) {
        t = submit_rows(s, next, next, COPY);
        next++;
        assert_int_equal(wait_settled(s, t, &err), 0);
        usleep(100000);
    }
    uint64_t asked = shub_store_wal_restarts(s) - before;
    print_message("wal: file %.1f MiB (limit %d MiB), restarts asked during the trickle: %llu\n",
                  (double)length / (1 << 20), LIMIT >> 20, (unsigned long long)asked);
    assert_true(length > LIMIT);
    assert_int_equal(asked, 0);
    close_verified(f, &s, next - 1);
}

/* The broker's WAL is grown to its limit with zeros as the store opens, so
 * that commits write over blocks the file already has. A store that died
 * with commits in its WAL (a child that exits without closing) opens again
 * with every row: the zeros go past what SQLite wrote, never over it. */
static void test_writer_wal_prefilled_and_frames_kept_after_crash(void **state)
{
    SQLITE_ONLY("the WAL file is SQLite's");
    fixture_t *f = *state;
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    shub_store_opts_t o = wal_opts(f, 1 << 20);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        shub_store_t *s = NULL;
        shub_err_t err;
        if (shub_store_open(f->path, &o, &s, &err) != 0 || file_size(wal) != o.wal_limit)
            _exit(2);
        uint64_t t = submit_rows(s, 1, 40, 3000);
        _exit(wait_settled(s, t, &err) == 0 ? 0 : 3); /* no close: a crash */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(file_size(wal), 1 << 20);

    o.wal_limit = 4 << 20;
    shub_store_t *s = NULL;
    shub_err_t err;
    assert_int_equal(shub_store_open(f->path, &o, &s, &err), 0);
    assert_int_equal(file_size(wal), 4 << 20);
    int64_t seq;
    shub_store_head(s, &seq, NULL);
    assert_int_equal(seq, 40);
    uint64_t t = submit_rows(s, 41, 50, 3000);
    assert_int_equal(wait_settled(s, t, &err), 0);
    sign_now(s, BASE_MS + 300 * 51, NULL);
    shub_store_close(&s);
    shub_verify_result_t res = verify(f, NULL);
    assert_true(res.ok);
    assert_int_equal(res.rows, 50);
}

static void test_open_alloc_failure_enomem_no_leak(void **state)
{
    fixture_t *f = *state;
    shub_store_opts_t o = opts_for(f, 0);
    shub_err_t err;
    long n;
    int rc = -1;
    {
        shub_store_t *s = open_store(f, 0); /* a store with names to load */
        append_rows(s, 1, 5, 5);
        shub_store_close(&s);
    }
    for (n = 0; n < 200; n++) {
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
    assert_true(n > 2);
}

static void test_outcomes_alloc_failure_enomem_no_leak(void **state)
{
    fixture_t *f = *state;
    shub_store_t *s = open_store(f, 0);
    shub_err_t err;
    shub_id_t id;
    int rc = -1;
    long n;
    for (int k = 0; k < 20; k++) {
        char to[32];
        snprintf(to, sizeof to, "org-%02d", k);
        put_outcome(s, 10, to, SHUB_OUTCOME_QUEUED);
    }
    make_id(10, &id);
    for (n = 0; n < 50; n++) {
        got_t g = {0};
        shub_alloc_fail_after(n);
        rc = shub_store_outcomes(s, &id, collect, &g, &err);
        shub_alloc_fail_after(-1);
        if (rc == 0) {
            assert_int_equal(g.n, 20);
            break;
        }
        assert_int_equal(rc, SHUB_ENOMEM);
        assert_int_equal(g.n, 0); /* all or nothing: no partial receipt */
    }
    assert_int_equal(rc, 0);
    assert_true(n >= 1);
    shub_store_close(&s);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(test_##name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(audit_append_many_rows_verify_ok),
        T(deadlines_put_mark_open_survive_reopen),
        T(audit_read_gives_text_and_hashes_back),
        T(audit_append_actor_clear_keeps_text_verify_ok),
        T(purge_outcomes_old_and_done_only),
        T(ref_hash_kinds_differ_and_key_form_agrees),
        T(audit_append_outside_transaction_eproto),
        T(event_add_twice_eexist_with_original_sender),
        T(event_add_dedupe_across_recent_window_and_reopen),
        T(names_chosen_to_collide_stay_one_probe),
        T(names_bounded_let_go_read_back),
        T(names_edited_largest_id_refuses_new_text),
        T(rollback_leaves_nothing_names_ids_not_reused),
        T(audit_rows_repeating_texts_and_refs_read_back_each),
        T(open_existing_continues_chain_verify_ok),
        T(checkpoint_due_by_rows_time_or_force),
        T(checkpoint_without_key_einval),
        T(outcomes_put_dead_and_read_in_recipient_order),
        T(copies_put_list_read_drop_by_runs),
        T(updates_per_sender_in_order_until_confirmed),
        T(witness_add_of_own_checkpoint_repeat_ignored),
        T(agreement_seen_twice_one_row),
        T(maintain_indexes_rows_behind_the_chain),
        T(verify_edited_column_edited),
        T(verify_name_swapped_edited),
        T(verify_names_text_edited_edits_every_row_using_it),
        T(verify_id_to_null_edited),
        T(verify_deleted_middle_row_missing),
        T(verify_deleted_signed_tail_truncated),
        T(verify_newest_checkpoint_and_rows_removed_needs_witness),
        T(verify_unsigned_tail_removed_needs_witness),
        T(verify_swapped_rows_edited),
        T(verify_forged_row_inserted),
        T(verify_fork_held_by_witness_forked),
        T(verify_rewritten_chain_edited_at_checkpoint),
        T(verify_whole_chain_rewritten_checkpoints_deleted),
        T(verify_emptied_log_detected_by_witness),
        T(verify_corrupt_signature_bad_signature),
        T(verify_witness_checks),
        T(verify_untouched_logs_no_false_alarm),
        T(open_readonly_beside_writer_reads_committed),
        T(open_exclusive_second_broker_ebusy_names_pid),
        T(open_foreign_database_edb_untouched),
        T(open_version_1_store_says_what_to_do),
        T(open_future_schema_version_edb),
        T(open_other_subject_key_ecrypto),
        T(open_missing_readonly_edb),
        T(commit_disk_full_rolls_back_then_recovers),
        T(writer_batches_commit_in_order_and_verify),
        T(writer_updates_read_waits_for_submitted),
        T(writer_disk_full_fails_the_rest_then_recovers),
        T(writer_wal_bounded_under_unbroken_traffic),
        T(writer_wal_restart_judged_by_frames_not_file_length),
        T(writer_wal_prefilled_and_frames_kept_after_crash),
        T(open_alloc_failure_enomem_no_leak),
        T(outcomes_alloc_failure_enomem_no_leak),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
