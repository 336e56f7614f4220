/*
 * test_query: the auditors' questions, asked of a store built through the
 * store's own API with known content: twenty audit rows about thirteen
 * events (MARAC referrals, decisions, transfers, a MASH referral denied and
 * one dead-lettered), a checkpoint after row 18, receipts, pending copies and
 * agreement versions; rows 1-12 indexed behind the chain (audit_find), the
 * rest a tail the queries scan. Every expected number below was counted by hand from the table
 * in build_fixture. Then a million rows, to see the first page come back and
 * a case and a person found in every epoch of the index; and a version 2
 * store, read as it is and upgraded.
 *
 * `test_query --make-db DIR` writes the same fixture (DIR/hub.db with
 * DIR/subject.key and DIR/checkpoint.pub) and exits: the CLI's shell test
 * (tests/integration/test_audit_cli.sh) runs the real program against it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sharehub/alloc.h"
#include "sharehub/query.h"
#include "testdb.h"
#include "sharehub/store.h"

#define BASE_MS 1772323200000LL /* 2026-03-01T00:00:00Z */
#define HOUR    3600000LL
#define T(h)    (BASE_MS + (h)*HOUR)

/* ---- the fixture ---------------------------------------------------------- */

/* One audit row of the fixture: at T(hour) + min minutes. */
typedef struct frow {
    int hour, min;
    const char *action, *decision;
    int ev; /* event number: E1..E13 */
    const char *type, *sender, *recipient, *reason, *agreement;
    uint32_t version;
    const char *flow, *case_ref, *area, *shared, *stripped, *facts;
    int subject; /* 1..3: "wmp-person-100N"; 0: none */
} frow_t;

#define REF  "marac.referral"
#define DEC  "marac.referral.decision"
#define TRF  "marac.transfer"
#define MASH "mash.referral"
#define MI   "wm-marac-isa"
#define MS   "wm-mash-isa"
#define COV  "marac-coventry"
#define DUD  "marac-dudley"

/* seq = index + 1. Rows 19 and 20 come after the checkpoint. */
static const frow_t fixture_rows[] = {
    /* 1 */ {1, 0, "decide", "allow", 1, REF, "wmp", COV, NULL, MI, 3, "police-to-marac",
             NULL, "coventry", "dash_score,victim.name", "victim.health,victim.gp", NULL,
             1},
    /* 2 */
    {1, 0, "decide", "deny", 1, REF, "wmp", "idva-coventry", "recipient-not-party", NULL,
     0, NULL, NULL, "coventry", NULL, NULL, NULL, 1},
    /* 3 */
    {1, 30, "ack", "acknowledged", 1, REF, "wmp", COV, NULL, MI, 3, "police-to-marac",
     NULL, NULL, NULL, NULL, NULL, 0},
    /* 4 */
    {2, 0, "decide", "allow", 2, REF, "wmp", COV, NULL, MI, 3, "police-to-marac", NULL,
     "coventry", "dash_score", "victim.health", NULL, 2},
    /* 5 */
    {3, 0, "decide", "allow", 3, REF, "wmp", DUD, NULL, MI, 3, "police-to-marac", NULL,
     "dudley", "dash_score", "victim.gp", NULL, 1},
    /* 6 */
    {3, 30, "ack", "acknowledged", 3, REF, "wmp", DUD, NULL, MI, 3, "police-to-marac",
     NULL, NULL, NULL, NULL, NULL, 0},
    /* 7 */
    {4, 0, "decide", "allow", 4, DEC, COV, "wmp", NULL, MI, 3, "marac-to-referrer",
     "cov-1", "coventry", "decision,case_ref", NULL, "decision=accepted", 1},
    /* 8 */
    {4, 30, "ack", "acknowledged", 4, DEC, COV, "wmp", NULL, MI, 3, "marac-to-referrer",
     NULL, NULL, NULL, NULL, NULL, 0},
    /* 9 */
    {5, 0, "decide", "allow", 5, DEC, COV, "wmp", NULL, MI, 3, "marac-to-referrer",
     "cov-2", "coventry", "decision", NULL, "decision=withdrawn", 2},
    /* 10 */
    {6, 0, "decide", "allow", 6, DEC, COV, "wmp", NULL, MI, 3, "marac-to-referrer",
     "cov-1", "coventry", "decision", NULL, "decision=accepted", 1},
    /* 11 */
    {7, 0, "decide", "allow", 7, TRF, COV, DUD, NULL, MI, 3, "marac-transfer", "cov-1",
     "coventry", "minutes", "victim.gp", NULL, 1},
    /* 12 */
    {8, 0, "decide", "allow", 8, TRF, COV, DUD, NULL, MI, 3, "marac-transfer", "cov-1",
     "coventry", "minutes", "victim.gp", NULL, 1},
    /* 13 */
    {9, 0, "decide", "deny", 9, MASH, "wmp", "coventry-cc", "agreement-expired", MS, 1,
     NULL, NULL, "coventry", NULL, NULL, NULL, 3},
    /* 14 */
    {10, 0, "decide", "allow", 10, MASH, "wmp", "coventry-cc", NULL, MS, 1,
     "police-to-mash", NULL, "coventry", "child.name", "victim.health", NULL, 3},
    /* 15 */
    {10, 30, "dead", "dead", 10, MASH, "wmp", "coventry-cc", "max-attempts", MS, 1,
     "police-to-mash", NULL, NULL, NULL, NULL, NULL, 0},
    /* 16 */
    {11, 0, "decide", "allow", 11, REF, "wmp", COV, NULL, MI, 3, "police-to-marac", NULL,
     "coventry", "dash_score", "victim.health", NULL, 2},
    /* 17 */
    {11, 30, "recheck", "deny", 11, REF, "wmp", COV, "agreement-suspended", MI, 3,
     "police-to-marac", NULL, NULL, NULL, NULL, NULL, 0},
    /* 18 */
    {12, 0, "decide", "allow", 12, DEC, DUD, "wmp", NULL, MI, 3, "marac-to-referrer",
     NULL, "dudley", "decision", NULL, "decision=accepted,risk=high", 0},
    /* 19 */
    {13, 0, "decide", "allow", 13, REF, "wmp", COV, NULL, MI, 3, "police-to-marac", NULL,
     "coventry", "dash_score", "victim.health", NULL, 1},
    /* 20 */
    {13, 0, "decide", "deny", 13, REF, "wmp", "idva-coventry", "recipient-not-party",
     NULL, 0, NULL, NULL, "coventry", NULL, NULL, NULL, 1},
};
#define CHECKPOINTED 18

static const char *const subjects[] = {NULL, "wmp-person-1001", "wmp-person-1002",
                                       "wmp-person-1003"};

static void make_id(int ev, shub_id_t *id)
{
    memset(id, 0, sizeof *id);
    uint64_t v = (uint64_t)T(ev);
    for (int b = 5; b >= 0; b--, v >>= 8)
        id->bytes[b] = (uint8_t)v;
    id->bytes[6] = 0x70;
    id->bytes[15] = (uint8_t)ev;
}

typedef struct keys {
    uint8_t pk[32], sk[64], subject[32];
} keys_t;

#define CHECK(x)                                                                         \
    do {                                                                                 \
        if ((x) != 0) {                                                                  \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #x, err.msg);  \
            goto fail;                                                                   \
        }                                                                                \
    } while (0)

static int write_hex(const char *dir, const char *name, const uint8_t *p, size_t n,
                     mode_t mode)
{
    char path[512], hex[2 * 64 + 2];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sodium_bin2hex(hex, sizeof hex, p, n);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "%s\n", hex);
    fclose(f);
    return chmod(path, mode);
}

/* The fixture of the table above, at path (testdb.h), keys in dir. */
static int build_fixture(const char *dir, const char *path, keys_t *k)
{
    shub_store_t *s = NULL;
    shub_err_t err = {0};
    crypto_sign_keypair(k->pk, k->sk);
    randombytes_buf(k->subject, sizeof k->subject);
    shub_store_opts_t o = {
        .subject_key = k->subject, .sign_secret = k->sk, .checkpoint_every = 1000};
    CHECK(shub_store_open(path, &o, &s, &err));
    /* v3 of the MARAC agreement is current; v2 (overdue) is superseded. */
    CHECK(shub_store_agreement_seen(s, MI, 2, "h2", "MARAC ISA", "active", T(-5000),
                                    T(20000), T(-1000), T(0), &err));
    CHECK(shub_store_agreement_seen(s, MI, 3, "h3", "MARAC ISA", "active", T(-10),
                                    T(20000), T(10000), T(0), &err));
    CHECK(shub_store_agreement_seen(s, MS, 1, "h1", "MASH ISA", "active", T(-5000),
                                    T(20000), T(-24), T(0), &err));
    CHECK(shub_store_agreement_seen(s, "wm-old-isa", 2, "h4", "Old ISA", "expired",
                                    T(-9000), T(-48), T(-30), T(0), &err));
    CHECK(shub_store_begin(s, &err));
    for (size_t i = 0; i < sizeof fixture_rows / sizeof fixture_rows[0]; i++) {
        const frow_t *f = &fixture_rows[i];
        static const uint8_t payload_hash[32] = {0xab, 0xcd};
        shub_audit_row_t r = {
            .at_ms = T(f->hour) + f->min * 60000LL,
            .action = f->action,
            .decision = f->decision,
            .event_type = f->type,
            .sender = f->sender,
            .recipient = f->recipient,
            .reason = f->reason,
            .explanation = f->reason ? "explained, with a comma and \"quotes\"" : NULL,
            .agreement = f->agreement,
            .agreement_version = f->version,
            .agreement_hash = !f->agreement ? NULL : strcmp(f->agreement, MI) ? "h1" : "h3",
            .flow = f->flow,
            .purpose = strcmp(f->action, "decide") ? NULL : "marac-risk-management",
            .legal_basis = strcmp(f->action, "decide") ? NULL : "uk-gdpr-6-1-e",
            .case_ref = f->case_ref,
            .area = f->area,
            .fields_shared = f->shared,
            .fields_stripped = f->stripped,
            .facts = f->facts,
            .payload_hash = f->shared ? payload_hash : NULL,
            .subject_ref = subjects[f->subject],
        };
        make_id(f->ev, &r.event_id);
        CHECK(shub_store_audit_append(s, &r, &err));
        if (r.seq == 12) { /* indexed behind the chain up to here */
            CHECK(shub_store_commit(s, &err));
            CHECK(shub_store_maintain(s, false, NULL, &err));
            CHECK(shub_store_begin(s, &err));
        }
        if (r.seq == CHECKPOINTED)
            CHECK(shub_store_checkpoint(s, T(12) + 60000, true, NULL, NULL, &err));
    }
    /* Receipts and pending copies now: two referrals still pending for
     * Coventry (one after the checkpoint), one acknowledged, one denied, one
     * dead. */
    static const uint8_t sealed[] = {1, 2, 3};
    static const struct {
        int ev;
        const char *recipient, *sender, *type;
        shub_outcome_t state;
    } outbox[] = {
        {2, COV, "wmp", REF, SHUB_OUTCOME_QUEUED},
        {13, COV, "wmp", REF, SHUB_OUTCOME_QUEUED},
        {1, COV, "wmp", REF, SHUB_OUTCOME_QUEUED},
        {1, "idva-coventry", "wmp", REF, SHUB_OUTCOME_DENIED},
        {10, "coventry-cc", "wmp", MASH, SHUB_OUTCOME_QUEUED},
    };
    for (size_t i = 0; i < sizeof outbox / sizeof outbox[0]; i++) {
        bool denied = outbox[i].state == SHUB_OUTCOME_DENIED;
        shub_store_outcome_t oc = {
            .recipient = outbox[i].recipient,
            .state = outbox[i].state,
            .reason = denied ? "recipient-not-party" : NULL,
            .agreement = denied ? NULL : MI,
            .agreement_version = denied ? 0 : 3,
            .agreement_hash = denied ? NULL : "h3",
            .flow = denied ? NULL : "police-to-marac",
        };
        make_id(outbox[i].ev, &oc.event_id);
        CHECK(shub_store_outcome_put(s, &oc, &err));
        if (outbox[i].ev == 2 || outbox[i].ev == 13) {
            shub_store_copy_t c = {.event_id = oc.event_id, .recipient = outbox[i].recipient,
                                   .sender = outbox[i].sender, .event_type = outbox[i].type,
                                   .agreement = MI, .agreement_version = 3,
                                   .agreement_hash = "h3", .flow = "police-to-marac",
                                   .created_ms = T(outbox[i].ev), .sealed = sealed,
                                   .sealed_len = sizeof sealed};
            CHECK(shub_store_copy_put(s, &c, &err));
        }
    }
    shub_id_t dead_id;
    make_id(10, &dead_id);
    CHECK(shub_store_outcome_dead(s, &dead_id, "coventry-cc", "max-attempts", NULL, &err));
    CHECK(shub_store_commit(s, &err));
    shub_store_close(&s);
    if (write_hex(dir, "subject.key", k->subject, 32, 0600) ||
        write_hex(dir, "checkpoint.pub", k->pk, 32, 0644))
        return -1;
    return 0;
fail:
    shub_store_close(&s);
    return -1;
}

/* ---- test state ----------------------------------------------------------- */

typedef struct fixture {
    char dir[64];
    char path[512]; /* a file, or a PostgreSQL schema's URI (testdb.h) */
    keys_t keys;
    shub_store_t *ro; /* the fixture, opened as the audit tool opens it */
} fixture_t;

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[600];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    shub_err_t err;
    if (!f || sodium_init() < 0)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/shub-query-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    testdb_new(f->dir, "hub.db", f->path, sizeof f->path);
    if (build_fixture(f->dir, f->path, &f->keys))
        return -1;
    shub_store_opts_t o = {.readonly = true, .subject_key = f->keys.subject};
    if (shub_store_open(f->path, &o, &f->ro, &err))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    shub_store_close(&f->ro);
    testdb_drop(f->path);
    remove_dir(f->dir);
    free(f);
    return 0;
}

/* ---- helpers -------------------------------------------------------------- */

/* The seqs of a log page, "20,19,18". */
static const char *seqs(const shub_query_result_t *r, char *buf, size_t size)
{
    buf[0] = '\0';
    for (size_t i = 0; i < shub_query_row_count(r, "log"); i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, size - n, "%s%s", i ? "," : "",
                 shub_query_cell(r, "log", i, "seq"));
    }
    return buf;
}

static shub_query_result_t *run_log(fixture_t *f, const shub_query_filter_t *q)
{
    shub_query_result_t *r = NULL;
    shub_err_t err;
    int rc = shub_query_log(f->ro, q, &r, &err);
    if (rc)
        print_error("log: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(r);
    return r;
}

static void expect_page(fixture_t *f, const shub_query_filter_t *q, const char *want,
                        bool more, int64_t cursor)
{
    char buf[512];
    int64_t got_cursor = -1;
    shub_query_result_t *r = run_log(f, q);
    assert_string_equal(seqs(r, buf, sizeof buf), want);
    assert_int_equal(shub_query_next(r, &got_cursor), more);
    if (more)
        assert_int_equal(got_cursor, cursor);
    shub_query_result_destroy(&r);
    assert_null(r);
}

/* The row of `section` whose `key` column is `value`, or -1. */
static long find_row(const shub_query_result_t *r, const char *section, const char *key,
                     const char *value)
{
    for (size_t i = 0; i < shub_query_row_count(r, section); i++) {
        const char *v = shub_query_cell(r, section, i, key);
        if ((v == NULL && value == NULL) || (v && value && strcmp(v, value) == 0))
            return (long)i;
    }
    return -1;
}

/* A cell of the row found by up to two key columns. */
static const char *cell2(const shub_query_result_t *r, const char *section,
                         const char *k1, const char *v1, const char *k2, const char *v2,
                         const char *col)
{
    for (size_t i = 0; i < shub_query_row_count(r, section); i++) {
        const char *a = shub_query_cell(r, section, i, k1);
        const char *b = k2 ? shub_query_cell(r, section, i, k2) : NULL;
        bool ok1 = (!a && !v1) || (a && v1 && strcmp(a, v1) == 0);
        bool ok2 = !k2 || (!b && !v2) || (b && v2 && strcmp(b, v2) == 0);
        if (ok1 && ok2)
            return shub_query_cell(r, section, i, col);
    }
    fail_msg("no row %s=%s %s=%s in %s", k1, v1 ? v1 : "NULL", k2 ? k2 : "", v2 ? v2 : "",
             section);
    return NULL;
}

/* ---- log -------------------------------------------------------------------- */

static void test_log_no_filter_newest_first_pages_by_cursor(void **state)
{
    fixture_t *f = *state;
    expect_page(f, &(shub_query_filter_t){.limit = 3}, "20,19,18", true, 18);
    expect_page(f, &(shub_query_filter_t){.limit = 3, .before_seq = 18}, "17,16,15", true,
                15);
    expect_page(f, &(shub_query_filter_t){.limit = 3, .before_seq = 3}, "2,1", false, 0);
    expect_page(f, &(shub_query_filter_t){.limit = 2, .before_seq = 3}, "2,1", false, 0);
}

static void test_log_oldest_first_after_cursor_ends(void **state)
{
    fixture_t *f = *state;
    expect_page(f, &(shub_query_filter_t){.limit = 5, .oldest_first = true}, "1,2,3,4,5",
                true, 5);
    expect_page(f,
                &(shub_query_filter_t){.limit = 5, .oldest_first = true, .after_seq = 17},
                "18,19,20", false, 0);
    expect_page(f,
                &(shub_query_filter_t){
                    .limit = 50, .oldest_first = true, .after_seq = 5, .before_seq = 9},
                "6,7,8", false, 0);
}

static uint8_t case_cov1[32]; /* the keyed hash of case "cov-1" */

static void test_log_each_filter_matches_hand_count(void **state)
{
    fixture_t *f = *state;
    shub_store_ref_hash_key(f->keys.subject, SHUB_REF_CASE, "cov-1", case_cov1);
    const struct {
        shub_query_filter_t q;
        const char *want;
    } cases[] = {
        {{.org = DUD}, "18,12,11,6,5"},
        {{.sender = COV}, "12,11,10,9,8,7"},
        {{.recipient = "wmp"}, "18,10,9,8,7"},
        {{.agreement = MS}, "15,14,13"},
        {{.event_type = TRF}, "12,11"},
        {{.decision = "deny"}, "20,17,13,2"},
        {{.decision = "allow"}, "19,18,16,14,12,11,10,9,7,5,4,1"},
        {{.reason = "recipient-not-party"}, "20,2"},
        {{.case_hash = case_cov1}, "12,11,10,7"},
        {{.has_since = true, .since_ms = T(11), .has_until = true, .until_ms = T(13)},
         "18,17,16"},
        {{.has_since = true, .since_ms = T(12) + 1}, "20,19"},
        {{.has_until = true, .until_ms = T(1) + 1}, "2,1"},
        {{.org = "wmp", .decision = "deny"}, "20,17,13,2"},
        {{.org = COV, .event_type = DEC}, "10,9,8,7"},
        {{.sender = "wmp", .recipient = COV, .decision = "allow"}, "19,16,4,1"},
        {{.org = "nobody"}, ""},
        {{.org = DUD,
          .has_since = true,
          .since_ms = T(5),
          .has_until = true,
          .until_ms = T(9)},
         "12,11"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[512];
        shub_query_filter_t q = cases[i].q;
        q.limit = 50;
        shub_query_result_t *r = run_log(f, &q);
        if (strcmp(seqs(r, buf, sizeof buf), cases[i].want) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, buf, cases[i].want);
        assert_false(shub_query_next(r, NULL));
        shub_query_result_destroy(&r);
    }
}

static void test_log_org_pages_merge_sender_and_recipient(void **state)
{
    fixture_t *f = *state;
    expect_page(f, &(shub_query_filter_t){.org = DUD, .limit = 2}, "18,12", true, 12);
    expect_page(f, &(shub_query_filter_t){.org = DUD, .limit = 2, .before_seq = 12},
                "11,6", true, 6);
    expect_page(f, &(shub_query_filter_t){.org = DUD, .limit = 2, .before_seq = 6}, "5",
                false, 0);
    expect_page(f, &(shub_query_filter_t){.org = DUD, .limit = 2, .oldest_first = true},
                "5,6", true, 6);
}

static void test_log_row_carries_every_column(void **state)
{
    fixture_t *f = *state;
    shub_query_result_t *r =
        run_log(f, &(shub_query_filter_t){.limit = 1, .before_seq = 2});
    assert_string_equal(shub_query_cell(r, "log", 0, "seq"), "1");
    assert_string_equal(shub_query_cell(r, "log", 0, "at"), "2026-03-01T01:00:00.000Z");
    assert_string_equal(shub_query_cell(r, "log", 0, "event_id"),
                        "019ca6e8-ca80-7000-0000-000000000001");
    assert_string_equal(shub_query_cell(r, "log", 0, "version"), "3");
    assert_string_equal(shub_query_cell(r, "log", 0, "fields_stripped"),
                        "victim.health,victim.gp");
    assert_string_equal(shub_query_cell(r, "log", 0, "legal_basis"), "uk-gdpr-6-1-e");
    assert_string_equal(
        shub_query_cell(r, "log", 0, "payload_hash"),
        "abcd000000000000000000000000000000000000000000000000000000000000");
    assert_null(shub_query_cell(r, "log", 0, "reason"));
    assert_null(shub_query_cell(r, "log", 0, "subject_hash")); /* not an output column */
    assert_null(shub_query_cell(r, "log", 0, "no-such-column"));
    assert_null(shub_query_cell(r, "log", 1, "seq"));
    shub_query_result_destroy(&r);
}

static void test_log_limit_over_max_einval(void **state)
{
    fixture_t *f = *state;
    shub_query_result_t *r = NULL;
    shub_err_t err;
    shub_query_filter_t q = {.limit = SHUB_QUERY_LIMIT_MAX + 1};
    assert_int_equal(shub_query_log(f->ro, &q, &r, &err), SHUB_EINVAL);
    assert_string_equal(err.msg, "log: limit 100001 exceeds 100000");
    assert_null(r);
}

/* ---- subject ---------------------------------------------------------------- */

static void test_subject_finds_exactly_that_subjects_rows(void **state)
{
    fixture_t *f = *state;
    static const char *const want[] = {NULL, "1,2,3,5,6,7,8,10,11,12,19,20", "4,9,16,17",
                                       "13,14,15"};
    for (int i = 1; i <= 3; i++) {
        uint8_t hash[32];
        char buf[256];
        assert_int_equal(shub_store_ref_hash(f->ro, SHUB_REF_SUBJECT, subjects[i], hash), 0);
        shub_query_result_t *r = run_log(
            f, &(shub_query_filter_t){.subject_hash = hash, .oldest_first = true});
        assert_string_equal(seqs(r, buf, sizeof buf), want[i]);
        shub_query_result_destroy(&r);
    }
    uint8_t nobody[32];
    char buf[64];
    assert_int_equal(shub_store_ref_hash(f->ro, SHUB_REF_SUBJECT, "wmp-person-9999", nobody),
                     0);
    shub_query_result_t *r = run_log(f, &(shub_query_filter_t){.subject_hash = nobody});
    assert_string_equal(seqs(r, buf, sizeof buf), "");
    shub_query_result_destroy(&r);
}

/* ---- report ----------------------------------------------------------------- */

static shub_query_result_t *run_report(fixture_t *f, const shub_query_report_opts_t *o)
{
    shub_query_result_t *r = NULL;
    shub_err_t err;
    int rc = shub_query_report(f->ro, o, &r, &err);
    if (rc)
        print_error("report: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return r;
}

static void test_report_counts_match_hand_counts(void **state)
{
    fixture_t *f = *state;
    shub_query_result_t *r = run_report(f, &(shub_query_report_opts_t){.now_ms = T(24)});
    const char *const sections[] = {
        "checkpoint",      "summary",    "timeliness",         "marac_timeliness",
        "agreements",      "orgs",       "areas",              "marac",
        "fields_stripped", "dead_letters", "pending",          "agreement_versions",
        "flows_used",      "witnesses",  "agreement_review",   "marac_repeats"};
    assert_int_equal(shub_query_section_count(r), 16);
    for (size_t i = 0; i < 16; i++)
        assert_string_equal(shub_query_section_name(r, i), sections[i]);
    /* The summary counts decisions, not rows: every decide row is a share. */
    assert_int_equal(shub_query_row_count(r, "summary"), 1);
    assert_int_equal(shub_query_row_count(r, "timeliness"), 0); /* no deadlines stored */

    /* The checkpoint after row 18; rows 19 and 20 are left out. */
    assert_int_equal(shub_query_row_count(r, "checkpoint"), 1);
    assert_string_equal(shub_query_cell(r, "checkpoint", 0, "checkpoint"), "1");
    assert_string_equal(shub_query_cell(r, "checkpoint", 0, "upto_seq"), "18");
    assert_string_equal(shub_query_cell(r, "checkpoint", 0, "checkpoint_at"),
                        "2026-03-01T12:01:00.000Z");
    assert_int_equal(strlen(shub_query_cell(r, "checkpoint", 0, "head_hash")), 64);
    assert_string_equal(shub_query_cell(r, "checkpoint", 0, "rows_covered"), "18");
    assert_string_equal(shub_query_cell(r, "checkpoint", 0, "rows_left_out"), "2");
    assert_null(shub_query_cell(r, "checkpoint", 0, "since"));
    assert_string_equal(shub_query_cell(r, "checkpoint", 0, "computed_at"),
                        "2026-03-02T00:00:00.000Z");

    /* Decisions per agreement: 13 decide rows up to 18. */
    assert_int_equal(shub_query_row_count(r, "agreements"), 4);
    assert_string_equal(
        cell2(r, "agreements", "agreement", MI, "decision", "allow", "shares"), "10");
    assert_string_equal(cell2(r, "agreements", "agreement", NULL, "reason",
                              "recipient-not-party", "shares"),
                        "1");
    assert_string_equal(
        cell2(r, "agreements", "agreement", MS, "reason", "agreement-expired", "shares"),
        "1");
    assert_string_equal(
        cell2(r, "agreements", "agreement", MS, "decision", "allow", "shares"), "1");

    assert_int_equal(shub_query_row_count(r, "orgs"), 7);
    assert_string_equal(cell2(r, "orgs", "sender", COV, "recipient", DUD, "allowed"),
                        "2");
    assert_string_equal(cell2(r, "orgs", "sender", COV, "recipient", "wmp", "allowed"),
                        "3");
    assert_string_equal(cell2(r, "orgs", "sender", DUD, "recipient", "wmp", "allowed"),
                        "1");
    assert_string_equal(
        cell2(r, "orgs", "sender", "wmp", "recipient", "coventry-cc", "allowed"), "1");
    assert_string_equal(
        cell2(r, "orgs", "sender", "wmp", "recipient", "coventry-cc", "denied"), "1");
    assert_string_equal(
        cell2(r, "orgs", "sender", "wmp", "recipient", "idva-coventry", "denied"), "1");
    assert_string_equal(cell2(r, "orgs", "sender", "wmp", "recipient", COV, "allowed"),
                        "3");
    assert_string_equal(cell2(r, "orgs", "sender", "wmp", "recipient", DUD, "allowed"),
                        "1");

    assert_int_equal(shub_query_row_count(r, "areas"), 6);
    assert_string_equal(
        cell2(r, "areas", "area", "coventry", "event_type", REF, "events"), "3");
    assert_string_equal(
        cell2(r, "areas", "area", "coventry", "event_type", REF, "allowed"), "3");
    assert_string_equal(
        cell2(r, "areas", "area", "coventry", "event_type", REF, "denied"), "1");
    assert_string_equal(
        cell2(r, "areas", "area", "coventry", "event_type", DEC, "events"), "3");
    assert_string_equal(
        cell2(r, "areas", "area", "coventry", "event_type", TRF, "events"), "2");
    assert_string_equal(
        cell2(r, "areas", "area", "coventry", "event_type", MASH, "denied"), "1");
    assert_string_equal(cell2(r, "areas", "area", "dudley", "event_type", REF, "allowed"),
                        "1");
    assert_string_equal(cell2(r, "areas", "area", "dudley", "event_type", DEC, "events"),
                        "1");

    /* MARAC: Coventry received E1, E2, E11; accepted twice (two decisions,
     * though on one case, cov-1: decisions count like referrals); withdrew
     * cov-2; transferred cov-1 out (sent twice, one case). Dudley received
     * E3, accepted E12, took cov-1. */
    assert_int_equal(shub_query_row_count(r, "marac"), 2);
    static const char *const cols[] = {"received", "accepted", "withdrawn",
                                       "transferred_in", "transferred_out"};
    static const char *const cov[] = {"3", "2", "1", "0", "1"};
    static const char *const dud[] = {"1", "1", "0", "1", "0"};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(cell2(r, "marac", "marac", COV, NULL, NULL, cols[i]), cov[i]);
        assert_string_equal(cell2(r, "marac", "marac", DUD, NULL, NULL, cols[i]), dud[i]);
    }

    /* Stripped most often: under the MARAC ISA victim.gp 4 times (rows 1, 5,
     * 11, 12), victim.health 3 (1, 4, 16); under the MASH ISA health once. */
    assert_int_equal(shub_query_row_count(r, "fields_stripped"), 3);
    assert_string_equal(
        cell2(r, "fields_stripped", "agreement", MI, "rank", "1", "field"), "victim.gp");
    assert_string_equal(
        cell2(r, "fields_stripped", "agreement", MI, "rank", "1", "times"), "4");
    assert_string_equal(
        cell2(r, "fields_stripped", "agreement", MI, "rank", "2", "field"),
        "victim.health");
    assert_string_equal(
        cell2(r, "fields_stripped", "agreement", MI, "rank", "2", "times"), "3");
    assert_string_equal(
        cell2(r, "fields_stripped", "agreement", MS, "rank", "1", "times"), "1");

    assert_int_equal(shub_query_row_count(r, "dead_letters"), 2);
    assert_string_equal(cell2(r, "dead_letters", "recipient", "coventry-cc", "reason",
                              "max-attempts", "deliveries"),
                        "1");
    assert_string_equal(
        cell2(r, "dead_letters", "recipient", COV, "action", "recheck", "reason"),
        "agreement-suspended");

    /* The copies pending now: both referrals, E13's included. */
    assert_int_equal(shub_query_row_count(r, "pending"), 1);
    assert_string_equal(cell2(r, "pending", "recipient", COV, NULL, NULL, "pending"), "2");
    assert_string_equal(
        cell2(r, "pending", "recipient", COV, NULL, NULL, "oldest_pending"),
        "2026-03-01T02:00:00.000Z");

    /* v2 of the MARAC ISA was overdue but v3 replaced it. */
    assert_int_equal(shub_query_row_count(r, "agreement_review"), 2);
    assert_string_equal(
        cell2(r, "agreement_review", "agreement", MS, NULL, NULL, "problem"),
        "review overdue");
    assert_string_equal(
        cell2(r, "agreement_review", "agreement", "wm-old-isa", NULL, NULL, "problem"),
        "review overdue, expired");
    assert_string_equal(
        cell2(r, "agreement_review", "agreement", "wm-old-isa", NULL, NULL, "status"),
        "expired");
    assert_string_equal(cell2(r, "agreement_review", "agreement", MS, NULL, NULL, "status"),
                        "active");
    assert_int_equal(find_row(r, "agreement_review", "agreement", MI), -1);
    shub_query_result_destroy(&r);
}

static void test_report_time_window_counts_only_inside(void **state)
{
    fixture_t *f = *state;
    shub_query_report_opts_t o = {.now_ms = T(24),
                                  .has_since = true,
                                  .since_ms = T(5),
                                  .has_until = true,
                                  .until_ms = T(10)};
    shub_query_result_t *r = run_report(f, &o);
    /* Decide rows at T(5)..T(9): 9, 10, 11, 12 (MARAC ISA) and 13 (MASH deny). */
    assert_int_equal(shub_query_row_count(r, "agreements"), 2);
    assert_string_equal(
        cell2(r, "agreements", "agreement", MI, "decision", "allow", "shares"), "4");
    assert_string_equal(
        cell2(r, "agreements", "agreement", MS, "decision", "deny", "shares"), "1");
    assert_string_equal(cell2(r, "marac", "marac", COV, NULL, NULL, "withdrawn"), "1");
    assert_string_equal(cell2(r, "marac", "marac", COV, NULL, NULL, "accepted"), "1");
    assert_string_equal(cell2(r, "marac", "marac", COV, NULL, NULL, "received"), "0");
    assert_string_equal(shub_query_cell(r, "checkpoint", 0, "since"),
                        "2026-03-01T05:00:00.000Z");
    assert_string_equal(shub_query_cell(r, "checkpoint", 0, "until"),
                        "2026-03-01T10:00:00.000Z");
    assert_int_equal(shub_query_row_count(r, "dead_letters"), 0);
    shub_query_result_destroy(&r);
}

static void test_report_section_only_that_one_and_checkpoint(void **state)
{
    fixture_t *f = *state;
    shub_query_result_t *r =
        run_report(f, &(shub_query_report_opts_t){.now_ms = T(24), .section = "marac"});
    assert_int_equal(shub_query_section_count(r), 2);
    assert_string_equal(shub_query_section_name(r, 0), "checkpoint");
    assert_string_equal(shub_query_section_name(r, 1), "marac");
    shub_query_result_destroy(&r);

    shub_err_t err;
    shub_query_report_opts_t o = {.section = "nonsense"};
    assert_int_equal(shub_query_report(f->ro, &o, &r, &err), SHUB_EINVAL);
    assert_string_equal(err.msg, "report: unknown section 'nonsense'");
    assert_null(r);
}

static void test_report_without_checkpoint_covers_nothing(void **state)
{
    fixture_t *f = *state;
    char path[512];
    shub_store_t *s = NULL;
    shub_err_t err;
    testdb_new(f->dir, "bare.db", path, sizeof path);
    shub_store_opts_t o = {.subject_key = f->keys.subject};
    assert_int_equal(shub_store_open(path, &o, &s, &err), 0);
    assert_int_equal(shub_store_begin(s, &err), 0);
    for (int i = 0; i < 3; i++) {
        shub_audit_row_t row = {.at_ms = T(i),
                                .action = "decide",
                                .decision = "allow",
                                .sender = "wmp",
                                .recipient = COV,
                                .event_type = REF};
        make_id(i, &row.event_id);
        assert_int_equal(shub_store_audit_append(s, &row, &err), 0);
    }
    assert_int_equal(shub_store_commit(s, &err), 0);
    shub_query_result_t *r = NULL;
    shub_query_report_opts_t ro = {.now_ms = T(0)};
    assert_int_equal(shub_query_report(s, &ro, &r, &err), 0);
    assert_null(shub_query_cell(r, "checkpoint", 0, "checkpoint"));
    assert_string_equal(shub_query_cell(r, "checkpoint", 0, "rows_covered"), "0");
    assert_string_equal(shub_query_cell(r, "checkpoint", 0, "rows_left_out"), "3");
    assert_int_equal(shub_query_row_count(r, "agreements"), 0);
    assert_int_equal(shub_query_row_count(r, "orgs"), 0);
    shub_query_result_destroy(&r);
    shub_store_close(&s);
}

/* ---- explain ------------------------------------------------------------------ */

static void test_explain_tells_each_recipients_story(void **state)
{
    fixture_t *f = *state;
    shub_query_result_t *r = NULL;
    shub_err_t err;
    shub_id_t id;
    make_id(1, &id);
    assert_int_equal(shub_query_explain(f->ro, &id, &r, &err), 0);
    assert_string_equal(shub_query_cell(r, "event", 0, "event_type"), REF);
    assert_string_equal(shub_query_cell(r, "event", 0, "sender"), "wmp");
    assert_string_equal(shub_query_cell(r, "event", 0, "recipients"), "2");
    assert_string_equal(shub_query_cell(r, "event", 0, "decided_at"),
                        "2026-03-01T01:00:00.000Z");
    assert_int_equal(shub_query_row_count(r, "recipients"), 2);
    assert_string_equal(shub_query_cell(r, "recipients", 0, "recipient"), COV);
    assert_string_equal(shub_query_cell(r, "recipients", 0, "decision"), "allow");
    assert_string_equal(shub_query_cell(r, "recipients", 0, "flow"), "police-to-marac");
    assert_string_equal(shub_query_cell(r, "recipients", 0, "fields_stripped"),
                        "victim.health,victim.gp");
    assert_null(shub_query_cell(r, "recipients", 0, "queued_at")); /* not pending */
    assert_string_equal(shub_query_cell(r, "recipients", 0, "acknowledged_at"),
                        "2026-03-01T01:30:00.000Z");
    assert_null(shub_query_cell(r, "recipients", 0, "finished_at"));
    assert_string_equal(shub_query_cell(r, "recipients", 1, "recipient"),
                        "idva-coventry");
    assert_string_equal(shub_query_cell(r, "recipients", 1, "reason"),
                        "recipient-not-party");
    assert_string_equal(shub_query_cell(r, "recipients", 1, "decision"), "deny");
    shub_query_result_destroy(&r);

    /* A pending copy says since when. */
    make_id(2, &id);
    assert_int_equal(shub_query_explain(f->ro, &id, &r, &err), 0);
    assert_string_equal(shub_query_cell(r, "recipients", 0, "queued_at"),
                        "2026-03-01T02:00:00.000Z");
    assert_null(shub_query_cell(r, "recipients", 0, "acknowledged_at"));
    shub_query_result_destroy(&r);

    /* An event whose rows are all in the unindexed tail. */
    make_id(13, &id);
    assert_int_equal(shub_query_explain(f->ro, &id, &r, &err), 0);
    assert_string_equal(shub_query_cell(r, "event", 0, "recipients"), "2");
    shub_query_result_destroy(&r);

    /* A dead letter says when and why. */
    make_id(10, &id);
    assert_int_equal(shub_query_explain(f->ro, &id, &r, &err), 0);
    assert_string_equal(shub_query_cell(r, "recipients", 0, "finished_at"),
                        "2026-03-01T10:30:00.000Z");
    assert_string_equal(shub_query_cell(r, "recipients", 0, "finished_why"),
                        "dead: max-attempts (explained, with a comma and \"quotes\")");
    shub_query_result_destroy(&r);
}

static void test_explain_unknown_event_enotfound(void **state)
{
    fixture_t *f = *state;
    shub_query_result_t *r = NULL;
    shub_err_t err;
    shub_id_t id;
    make_id(99, &id);
    assert_int_equal(shub_query_explain(f->ro, &id, &r, &err), SHUB_ENOTFOUND);
    assert_null(r);
    char want[80], text[SHUB_ID_TEXT];
    shub_id_format(&id, text);
    snprintf(want, sizeof want, "no audit row for event %s", text);
    assert_string_equal(err.msg, want);
}

/* ---- formats ------------------------------------------------------------------- */

/* A tiny RFC 4180 reader: quoted fields, doubled quotes, CRLF rows. Fills
 * fields[row][col] (malloc'd; "" for empty) and returns the row count. */
#define CSV_ROWS 64
#define CSV_COLS 128
typedef struct csv {
    char *f[CSV_ROWS][CSV_COLS];
    size_t ncols[CSV_ROWS];
    size_t nrows;
} csv_t;

static void csv_parse(const char *p, csv_t *c)
{
    char field[4096];
    size_t n = 0;
    memset(c, 0, sizeof *c);
    while (*p) {
        bool quoted = *p == '"';
        n = 0;
        if (quoted) {
            for (p++; *p && !(*p == '"' && p[1] != '"'); p++) {
                if (*p == '"')
                    p++;
                field[n++] = *p;
            }
            assert_int_equal(*p, '"');
            p++;
        } else {
            while (*p && *p != ',' && *p != '\r' && *p != '\n')
                field[n++] = *p++;
        }
        field[n] = '\0';
        assert_true(c->nrows < CSV_ROWS && c->ncols[c->nrows] < CSV_COLS);
        c->f[c->nrows][c->ncols[c->nrows]++] = strdup(field);
        if (*p == ',') {
            p++;
            continue;
        }
        assert_int_equal(*p, '\r'); /* RFC 4180: CRLF ends a record */
        assert_int_equal(p[1], '\n');
        p += 2;
        c->nrows++;
    }
}

static void csv_free(csv_t *c)
{
    for (size_t r = 0; r < CSV_ROWS; r++)
        for (size_t k = 0; k < CSV_COLS; k++)
            free(c->f[r][k]);
}

static void test_render_csv_parses_back_to_same_rows(void **state)
{
    fixture_t *f = *state;
    shub_query_result_t *r = run_log(f, &(shub_query_filter_t){.limit = 50});
    char *text = NULL;
    size_t len = 0;
    shub_err_t err;
    csv_t c;
    assert_int_equal(shub_query_render(r, SHUB_QUERY_CSV, &text, &len, &err), 0);
    assert_int_equal(strlen(text), len);
    csv_parse(text, &c);
    assert_int_equal(c.nrows, 21); /* header and 20 rows */
    assert_string_equal(c.f[0][0], "seq");
    for (size_t row = 1; row < c.nrows; row++) {
        assert_int_equal(c.ncols[row], c.ncols[0]);
        for (size_t k = 0; k < c.ncols[0]; k++) {
            const char *want = shub_query_cell(r, "log", row - 1, c.f[0][k]);
            assert_string_equal(c.f[row][k], want ? want : "");
        }
    }
    /* The explanation with a comma and quotes survived the quoting. */
    assert_string_equal(c.f[1][9], "explained, with a comma and \"quotes\"");
    csv_free(&c);
    shub_free(text);

    /* A report: one header row, a section column, every row of every table. */
    shub_query_result_destroy(&r);
    r = run_report(f, &(shub_query_report_opts_t){.now_ms = T(24)});
    assert_int_equal(shub_query_render(r, SHUB_QUERY_CSV, &text, &len, &err), 0);
    csv_parse(text, &c);
    size_t total = 0;
    for (size_t i = 0; i < shub_query_section_count(r); i++)
        total += shub_query_row_count(r, shub_query_section_name(r, i));
    assert_int_equal(c.nrows, total + 1);
    assert_string_equal(c.f[0][0], "section");
    assert_string_equal(c.f[1][0], "checkpoint");
    csv_free(&c);
    shub_free(text);
    shub_query_result_destroy(&r);
}

static void test_render_json_parses_back_to_same_rows(void **state)
{
    fixture_t *f = *state;
    shub_query_result_t *r = run_log(f, &(shub_query_filter_t){.limit = 50});
    char *text = NULL;
    shub_err_t err;
    json_error_t jerr;
    assert_int_equal(shub_query_render(r, SHUB_QUERY_JSON, &text, NULL, &err), 0);
    json_t *arr = json_loads(text, 0, &jerr);
    assert_non_null(arr);
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 20);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *obj = json_array_get(arr, i);
        const char *key;
        json_t *v;
        assert_int_equal(json_object_size(obj), 28);
        json_object_foreach(obj, key, v)
        {
            const char *want = shub_query_cell(r, "log", i, key);
            if (json_is_null(v)) {
                assert_null(want);
            } else if (json_is_integer(v)) {
                assert_non_null(want);
                assert_int_equal(json_integer_value(v), strtoll(want, NULL, 10));
            } else {
                assert_true(json_is_string(v));
                assert_string_equal(json_string_value(v), want);
            }
        }
    }
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "seq")),
                     20);
    json_decref(arr);
    shub_free(text);
    shub_query_result_destroy(&r);

    /* A report: each object names its section. */
    r = run_report(f, &(shub_query_report_opts_t){.now_ms = T(24), .section = "marac"});
    assert_int_equal(shub_query_render(r, SHUB_QUERY_JSON, &text, NULL, &err), 0);
    arr = json_loads(text, 0, &jerr);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 3);
    json_t *dud = json_array_get(arr, 2);
    assert_string_equal(json_string_value(json_object_get(dud, "section")), "marac");
    assert_string_equal(json_string_value(json_object_get(dud, "marac")), DUD);
    assert_int_equal(json_integer_value(json_object_get(dud, "transferred_in")), 1);
    json_decref(arr);
    shub_free(text);
    shub_query_result_destroy(&r);
}

static void test_render_table_aligns_and_masks_control_characters(void **state)
{
    fixture_t *f = *state;
    char path[512];
    shub_store_t *s = NULL;
    shub_err_t err;
    testdb_new(f->dir, "odd.db", path, sizeof path);
    shub_store_opts_t o = {0};
    assert_int_equal(shub_store_open(path, &o, &s, &err), 0);
    assert_int_equal(shub_store_begin(s, &err), 0);
    shub_audit_row_t row = {.at_ms = T(0),
                            .action = "decide",
                            .decision = "deny",
                            .sender = "wmp",
                            .recipient = "evil\033[2J\nco",
                            .reason = "x"};
    assert_int_equal(shub_store_audit_append(s, &row, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    shub_query_result_t *r = NULL;
    shub_query_filter_t q = {.limit = 5};
    assert_int_equal(shub_query_log(s, &q, &r, &err), 0);
    char *text = NULL;
    assert_int_equal(shub_query_render(r, SHUB_QUERY_TABLE, &text, NULL, &err), 0);
    assert_null(strchr(text, '\033'));
    assert_non_null(strstr(text, "evil?[2J?co"));
    /* Two lines: the header and the row; the columns line up. */
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_string_equal(strchr(nl + 1, '\n'), "\n");
    assert_int_equal(strstr(text, "recipient") - text, strstr(nl + 1, "evil") - (nl + 1));
    shub_free(text);
    shub_query_result_destroy(&r);
    shub_store_close(&s);
}

/* ---- times ---------------------------------------------------------------------- */

static void test_time_parse_rfc3339_and_dates(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool end_of_day;
        int rc;
        int64_t ms;
    } cases[] = {
        {"2026-03-01", false, 0, BASE_MS},
        {"2026-03-01", true, 0, BASE_MS + 24 * HOUR},
        {"2026-03-01T01:00:00Z", false, 0, BASE_MS + HOUR},
        {"2026-03-01t01:00:00.5z", false, 0, BASE_MS + HOUR + 500},
        {"2026-03-01 01:00:00.123456Z", false, 0, BASE_MS + HOUR + 123},
        {"2026-03-01T02:00:00+01:00", false, 0, BASE_MS + HOUR},
        {"2026-02-28T23:00:00-01:00", false, 0, BASE_MS},
        {"2024-02-29", false, 0, 1709164800000LL},
        {"2026-02-29", false, SHUB_EINVAL, 0},
        {"2026-13-01", false, SHUB_EINVAL, 0},
        {"2026-03-01T24:00:00Z", false, SHUB_EINVAL, 0},
        {"2026-03-01T01:00:00", false, SHUB_EINVAL, 0},
        {"2026-03-01T01:00Z", false, SHUB_EINVAL, 0},
        {"2026-03-01Tx", false, SHUB_EINVAL, 0},
        {"26-03-01", false, SHUB_EINVAL, 0},
        {"yesterday", false, SHUB_EINVAL, 0},
        {"2026-03-01T01:00:00Zjunk", false, SHUB_EINVAL, 0},
        {"", false, SHUB_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -1;
        int rc = shub_query_time_parse(cases[i].text, cases[i].end_of_day, &ms);
        if (rc != cases[i].rc || (rc == 0 && ms != cases[i].ms))
            fail_msg("'%s': rc %d ms %lld", cases[i].text, rc, (long long)ms);
    }
    shub_query_format_t fmt;
    assert_int_equal(shub_query_format_parse("csv", &fmt), 0);
    assert_int_equal(fmt, SHUB_QUERY_CSV);
    assert_int_equal(shub_query_format_parse("xml", &fmt), SHUB_EINVAL);
}

/* ---- a million rows --------------------------------------------------------------- */

static const char *const big_orgs[] = {
    "wmp",           "marac-coventry", "marac-dudley", "bcc",
    "idva-coventry", "nps-midlands",   "uhb",          "swbh"};

static void big_row(int64_t i, shub_audit_row_t *r, shub_id_t *id)
{
    memset(r, 0, sizeof *r);
    r->at_ms = BASE_MS + i * 1000;
    r->action = "decide";
    r->decision = i % 10 == 0 ? "deny" : "allow";
    r->reason = i % 10 == 0 ? "no-flow" : NULL;
    r->sender = big_orgs[i % 8];
    r->recipient = big_orgs[(i / 8 + 1 + i) % 8];
    r->event_type = i % 3 ? "marac.referral" : "mash.referral";
    r->agreement = "wm-marac-isa";
    r->agreement_version = 3;
    r->fields_shared = "dash_score";
    if (i % 50000 == 0) { /* one case and one person, in every epoch of audit_find */
        r->case_ref = "big-case";
        r->subject_ref = "big-person";
    }
    memset(id, 0, sizeof *id);
    for (int b = 0; b < 8; b++)
        id->bytes[b] = (uint8_t)(i >> (8 * (7 - b)));
    r->event_id = *id;
}

static void test_log_million_rows_first_page(void **state)
{
    fixture_t *f = *state;
    enum { ROWS = 1000000, BATCH = 10000 };
    char path[512];
    shub_store_t *s = NULL;
    shub_err_t err;
    testdb_new(f->dir, "big.db", path, sizeof path);
    shub_store_opts_t o = {
        .synchronous_full = false, .sign_secret = f->keys.sk, .subject_key = f->keys.subject};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(shub_store_open(path, &o, &s, &err), 0);
    for (int64_t i = 1; i <= ROWS; i++) {
        shub_audit_row_t r;
        shub_id_t id;
        if (i % BATCH == 1)
            assert_int_equal(shub_store_begin(s, &err), 0);
        big_row(i, &r, &id);
        if (shub_store_audit_append(s, &r, &err) != 0)
            fail_msg("append %lld: %s", (long long)i, err.msg);
        if (i % BATCH == 0) {
            bool more = true;
            assert_int_equal(shub_store_commit(s, &err), 0);
            while (more) /* as the idle hub does */
                assert_int_equal(shub_store_maintain(s, false, &more, &err), 0);
        }
    }
    shub_store_close(&s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("built %d rows in %.1f s\n", ROWS,
                  (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);

    shub_store_opts_t ro = {.readonly = true};
    assert_int_equal(shub_store_open(path, &ro, &s, &err), 0);
    /* No filter: the newest 50. */
    shub_query_result_t *r = NULL;
    shub_query_filter_t q = {.limit = 50};
    assert_int_equal(shub_query_log(s, &q, &r, &err), 0);
    assert_int_equal(shub_query_row_count(r, "log"), 50);
    assert_string_equal(shub_query_cell(r, "log", 0, "seq"), "1000000");
    assert_string_equal(shub_query_cell(r, "log", 49, "seq"), "999951");
    shub_query_result_destroy(&r);

    /* Filtered by org and decision, a middle page: compare with a scan of
     * the generator. */
    q = (shub_query_filter_t){
        .org = "uhb", .decision = "deny", .limit = 50, .before_seq = 500000};
    assert_int_equal(shub_query_log(s, &q, &r, &err), 0);
    assert_int_equal(shub_query_row_count(r, "log"), 50);
    size_t k = 0;
    for (int64_t i = 499999; i > 0 && k < 50; i--) {
        shub_audit_row_t row;
        shub_id_t id;
        big_row(i, &row, &id);
        if (i % 10 == 0 &&
            (!strcmp(row.sender, "uhb") || !strcmp(row.recipient, "uhb"))) {
            char want[24];
            snprintf(want, sizeof want, "%lld", (long long)i);
            assert_string_equal(shub_query_cell(r, "log", k, "seq"), want);
            k++;
        }
    }
    assert_int_equal(k, 50);
    assert_true(shub_query_next(r, NULL));
    shub_query_result_destroy(&r);

    /* A time window deep in the log, oldest first. */
    q = (shub_query_filter_t){.has_since = true,
                              .since_ms = BASE_MS + 700000 * 1000LL,
                              .has_until = true,
                              .until_ms = BASE_MS + 700003 * 1000LL,
                              .oldest_first = true,
                              .limit = 50};
    assert_int_equal(shub_query_log(s, &q, &r, &err), 0);
    char buf[200];
    assert_string_equal(seqs(r, buf, sizeof buf), "700000,700001,700002");
    shub_query_result_destroy(&r);

    /* A case and a person with a row in each of sixteen epochs: every row
     * found, newest first. */
    char want[200] = "";
    for (int64_t i = ROWS; i > 0; i -= 50000)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", *want ? "," : "",
                 (long long)i);
    uint8_t case_hash[32], subject_hash[32];
    shub_store_ref_hash_key(f->keys.subject, SHUB_REF_CASE, "big-case", case_hash);
    shub_store_ref_hash_key(f->keys.subject, SHUB_REF_SUBJECT, "big-person", subject_hash);
    q = (shub_query_filter_t){.case_hash = case_hash, .limit = 50};
    assert_int_equal(shub_query_log(s, &q, &r, &err), 0);
    assert_string_equal(seqs(r, buf, sizeof buf), want);
    shub_query_result_destroy(&r);
    q = (shub_query_filter_t){.subject_hash = subject_hash, .limit = 50};
    assert_int_equal(shub_query_log(s, &q, &r, &err), 0);
    assert_string_equal(seqs(r, buf, sizeof buf), want);
    shub_query_result_destroy(&r);
    shub_store_close(&s);
    testdb_drop(path);
    char file[600];
    unlink(path);
    snprintf(file, sizeof file, "%s-wal", path);
    unlink(file);
    snprintf(file, sizeof file, "%s-shm", path);
    unlink(file);
}


/* ---- a version 2 store ---------------------------------------------------------- */

/* The fixture's case and subject pages, as "case|subject 1|subject 2|subject 3". */
static void case_and_subject_pages(shub_store_t *s, const keys_t *k, char *out, size_t size)
{
    uint8_t hash[32];
    char buf[256];
    shub_err_t err;
    shub_query_result_t *r = NULL;
    shub_store_ref_hash_key(k->subject, SHUB_REF_CASE, "cov-1", hash);
    shub_query_filter_t q = {.case_hash = hash, .limit = 50};
    assert_int_equal(shub_query_log(s, &q, &r, &err), 0);
    snprintf(out, size, "%s", seqs(r, buf, sizeof buf));
    shub_query_result_destroy(&r);
    for (int i = 1; i <= 3; i++) {
        shub_store_ref_hash_key(k->subject, SHUB_REF_SUBJECT, subjects[i], hash);
        q = (shub_query_filter_t){.subject_hash = hash, .limit = 50};
        assert_int_equal(shub_query_log(s, &q, &r, &err), 0);
        snprintf(out + strlen(out), size - strlen(out), "|%s", seqs(r, buf, sizeof buf));
        shub_query_result_destroy(&r);
    }
}

/* A version 2 store (audit_find without epochs) is read as it is, and a
 * writable open upgrades it to version 3: the same answers throughout. */
static void test_version_2_store_read_as_it_is_and_upgraded(void **state)
{
    fixture_t *f = *state;
    char path[512], now[600], old[600], upgraded[600];
    keys_t k;
    shub_store_t *s = NULL;
    shub_err_t err;
    testdb_new(f->dir, "v2.db", path, sizeof path);
    assert_int_equal(build_fixture(f->dir, path, &k), 0);
    shub_store_opts_t ro = {.readonly = true, .subject_key = k.subject};
    assert_int_equal(shub_store_open(path, &ro, &s, &err), 0);
    case_and_subject_pages(s, &k, now, sizeof now);
    shub_store_close(&s);
    assert_string_equal(now, "12,11,10,7|20,19,12,11,10,8,7,6,5,3,2,1|17,16,9,4|15,14,13");

    /* Back to version 2's audit_find. */
    testdb_sql(path, "DROP INDEX find_case; DROP INDEX find_subject;"
                     " ALTER TABLE audit_find DROP COLUMN epoch;"
                     " CREATE INDEX find_case ON audit_find(case_hash)"
                     " WHERE case_hash IS NOT NULL;"
                     " CREATE INDEX find_subject ON audit_find(subject_hash)"
                     " WHERE subject_hash IS NOT NULL");
    testdb_sql(path, testdb_pg() ? "UPDATE meta SET value = '2' WHERE key = 'user_version'"
                                 : "PRAGMA user_version = 2");
    assert_int_equal(shub_store_open(path, &ro, &s, &err), 0);
    case_and_subject_pages(s, &k, old, sizeof old);
    shub_store_close(&s);
    assert_string_equal(old, now);
    assert_int_equal(testdb_int(path, testdb_pg() ? "SELECT value::int FROM meta WHERE key ="
                                                    " 'user_version'"
                                                  : "PRAGMA user_version"),
                     2);

    shub_store_opts_t rw = {.subject_key = k.subject, .sign_secret = k.sk};
    assert_int_equal(shub_store_open(path, &rw, &s, &err), 0);
    shub_store_close(&s);
    assert_int_equal(testdb_int(path, testdb_pg() ? "SELECT value::int FROM meta WHERE key ="
                                                    " 'user_version'"
                                                  : "PRAGMA user_version"),
                     3);
    assert_int_equal(testdb_int(path, "SELECT count(*) FROM audit_find WHERE epoch = 0"),
                     testdb_int(path, "SELECT count(*) FROM audit_find"));
    assert_int_equal(shub_store_open(path, &ro, &s, &err), 0);
    case_and_subject_pages(s, &k, upgraded, sizeof upgraded);
    shub_store_close(&s);
    assert_string_equal(upgraded, now);
    testdb_drop(path);
}

/* ---- main ------------------------------------------------------------------------- */

/* ---- the MARAC work sections --------------------------------------------- */

/* A store of its own: referrals with the DASH factor facts, decisions with
 * repeat and complex, transfer acks, actions and their updates, IDVA
 * notifications and engagement outcomes; a denied referral and a fact that
 * is not a code, which count for nothing. */
static const struct {
    int ev;
    const char *type, *sender, *recipient, *decision, *case_ref, *facts;
    int reply_to; /* event answered, 0: none */
} work_rows[] = {
    {1, REF, "wmp", COV, "allow", NULL,
     "risk.factors.coercive_control=true,risk.factors.knife_used=false,"
     "risk.factors.child_contact_conflict=true",
     0},
    {2, REF, "wmp", COV, "allow", NULL,
     "risk.factors.coercive_control=true,risk.factors.knife_used=true,"
     "risk.factors.child_contact_conflict=false",
     0},
    {3, REF, "idva-coventry", COV, "allow", NULL,
     "risk.factors.coercive_control=false,risk.factors.knife_used=(not a code)", 0},
    {4, REF, "wmp", COV, "deny", NULL, "risk.factors.knife_used=true", 0},
    {5, DEC, COV, "wmp", "allow", "cov-1", "decision=accepted,repeat=false,complex=false",
     1},
    {6, DEC, COV, "wmp", "allow", "cov-1", "decision=accepted,repeat=true,complex=true",
     2},
    {7, DEC, COV, "idva-coventry", "allow", "cov-2",
     "decision=withdrawn,repeat=true,complex=false", 3},
    {8, "marac.transfer.ack", DUD, COV, "allow", "dud-1", "complex=true", 0},
    {9, "marac.transfer.ack", DUD, COV, "allow", "dud-1", "complex=true", 0},
    {10, "marac.action", COV, "wmp", "allow", "cov-1", "status=open", 0},
    {11, "marac.action", COV, "idva-coventry", "allow", "cov-1", "status=open", 0},
    {12, "marac.action", COV, "coventry-cc", "allow", "cov-1", "status=open", 0},
    {13, "marac.action.update", "wmp", COV, "allow", "cov-1", "status=done", 10},
    {14, "marac.action.update", "wmp", COV, "allow", "cov-1", "status=done", 10},
    {15, "marac.action", COV, "idva-coventry", "allow", "cov-1", "status=overdue", 0},
    {16, "marac.action", COV, "coventry-cc", "allow", "cov-1", "status=transferred", 0},
    {17, "idva.notification", COV, "idva-coventry", "allow", "cov-1", NULL, 0},
    {18, "idva.notification", COV, "idva-coventry", "allow", "cov-2", NULL, 0},
    {19, "idva.engagement", "idva-coventry", COV, "allow", "cov-1", "outcome=engaged",
     17},
    {20, "idva.engagement", "idva-coventry", COV, "allow", "cov-2", "outcome=no-contact",
     18},
};

static void test_report_marac_work_counts_facts_only(void **state)
{
    fixture_t *f = *state;
    char path[160];
    shub_store_t *s = NULL;
    shub_err_t err;
    snprintf(path, sizeof path, "%s/work.db", f->dir);
    shub_store_opts_t o = {.subject_key = f->keys.subject,
                           .sign_secret = f->keys.sk,
                           .checkpoint_every = 1000};
    assert_int_equal(shub_store_open(path, &o, &s, &err), 0);
    assert_int_equal(shub_store_begin(s, &err), 0);
    for (size_t i = 0; i < sizeof work_rows / sizeof work_rows[0]; i++) {
        shub_id_t id, answered;
        make_id(work_rows[i].ev, &id);
        make_id(work_rows[i].reply_to, &answered);
        shub_audit_row_t row = {.at_ms = T(work_rows[i].ev),
                                .action = "decide",
                                .decision = work_rows[i].decision,
                                .event_type = work_rows[i].type,
                                .sender = work_rows[i].sender,
                                .recipient = work_rows[i].recipient,
                                .case_ref = work_rows[i].case_ref,
                                .facts = work_rows[i].facts,
                                .reply_to = work_rows[i].reply_to ? &answered : NULL,
                                .event_id = id};
        assert_int_equal(shub_store_audit_append(s, &row, &err), 0);
    }
    assert_int_equal(shub_store_checkpoint(s, T(30), true, NULL, NULL, &err), 0);
    assert_int_equal(shub_store_commit(s, &err), 0);
    shub_store_close(&s);
    shub_store_opts_t ro = {.readonly = true, .subject_key = f->keys.subject};
    assert_int_equal(shub_store_open(path, &ro, &s, &err), 0);
    shub_query_result_t *r = NULL;
    assert_int_equal(
        shub_query_report(s, &(shub_query_report_opts_t){.now_ms = T(40)}, &r, &err), 0);

    /* Coventry: three referrals received (not the denied one); two found
     * repeats; coercive control twice, a knife once (a value that is not a
     * code counts for nothing), child contact once; one complex case.
     * Dudley: one complex case, though acknowledged twice. */
    static const char *const cols[] = {"received",
                                       "repeats",
                                       "coercive_control",
                                       "knife_used",
                                       "child_contact_conflict",
                                       "complex_cases"};
    static const char *const cov[] = {"3", "2", "2", "1", "1", "1"};
    static const char *const dud[] = {"0", "0", "0", "0", "0", "1"};
    assert_int_equal(shub_query_row_count(r, "marac_repeats"), 2);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(cell2(r, "marac_repeats", "marac", COV, NULL, NULL, cols[i]),
                            cov[i]);
        assert_string_equal(cell2(r, "marac_repeats", "marac", DUD, NULL, NULL, cols[i]),
                            dud[i]);
    }
    /* Three actions raised, one done (answered twice), one gone overdue, one
     * handed on with the case: one still open. */
    static const char *const acols[] = {"raised", "done", "went_overdue", "transferred",
                                        "still_open"};
    static const char *const avals[] = {"3", "1", "1", "1", "1"};
    assert_int_equal(shub_query_row_count(r, "marac_actions"), 1);
    for (int i = 0; i < 5; i++)
        assert_string_equal(cell2(r, "marac_actions", "marac", COV, NULL, NULL, acols[i]),
                            avals[i]);
    static const char *const icols[] = {"notified", "engaged", "declined", "no_contact"};
    static const char *const ivals[] = {"2", "1", "0", "1"};
    assert_int_equal(shub_query_row_count(r, "idva_engagement"), 1);
    for (int i = 0; i < 4; i++)
        assert_string_equal(
            cell2(r, "idva_engagement", "marac", COV, NULL, NULL, icols[i]), ivals[i]);
    shub_query_result_destroy(&r);

    /* One section on its own, after the checkpoint's. */
    assert_int_equal(
        shub_query_report(
            s, &(shub_query_report_opts_t){.now_ms = T(40), .section = "marac_actions"},
            &r, &err),
        0);
    assert_int_equal(shub_query_section_count(r), 2);
    assert_string_equal(shub_query_section_name(r, 1), "marac_actions");
    shub_query_result_destroy(&r);
    shub_store_close(&s);
}

int main(int argc, char **argv)
{
    /* --make-db DIR [STORE]: the fixture in DIR/hub.db (or STORE, a
     * postgresql:// URI), its keys in DIR, for the audit CLI's test. */
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "--make-db") == 0) {
        keys_t k;
        char path[600];
        snprintf(path, sizeof path, "%s/hub.db", argv[2]);
        if (sodium_init() < 0 || build_fixture(argv[2], argc == 4 ? argv[3] : path, &k) != 0)
            return 1;
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_no_filter_newest_first_pages_by_cursor),
        cmocka_unit_test(test_log_oldest_first_after_cursor_ends),
        cmocka_unit_test(test_log_each_filter_matches_hand_count),
        cmocka_unit_test(test_log_org_pages_merge_sender_and_recipient),
        cmocka_unit_test(test_log_row_carries_every_column),
        cmocka_unit_test(test_log_limit_over_max_einval),
        cmocka_unit_test(test_subject_finds_exactly_that_subjects_rows),
        cmocka_unit_test(test_report_counts_match_hand_counts),
        cmocka_unit_test(test_report_marac_work_counts_facts_only),
        cmocka_unit_test(test_report_time_window_counts_only_inside),
        cmocka_unit_test(test_report_section_only_that_one_and_checkpoint),
        cmocka_unit_test(test_report_without_checkpoint_covers_nothing),
        cmocka_unit_test(test_explain_tells_each_recipients_story),
        cmocka_unit_test(test_explain_unknown_event_enotfound),
        cmocka_unit_test(test_render_csv_parses_back_to_same_rows),
        cmocka_unit_test(test_render_json_parses_back_to_same_rows),
        cmocka_unit_test(test_render_table_aligns_and_masks_control_characters),
        cmocka_unit_test(test_time_parse_rfc3339_and_dates),
        cmocka_unit_test(test_log_million_rows_first_page),
        cmocka_unit_test(test_version_2_store_read_as_it_is_and_upgraded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
