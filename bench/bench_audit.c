/*
 * bench_audit: what `sharehub-audit` costs on a big log. Builds a store of N
 * audit rows (default 1,000,000; `bench_audit 10000000` for the 10M figure)
 * through the store API in 10k-row transactions, then times `verify` (the
 * whole chain and every checkpoint; target >= 500,000 rows/s) and filtered
 * `log` pages (keyset pages of 50; target under 100 ms on 10M rows). Prints
 * seconds, rows/s, the core count and the synchronous setting of the build,
 * and the append cost per row over the first and the last 100,000 rows
 * (target: flat within 20%; subjects and cases are scattered keys, as in a
 * real region). Ends with `summary: name=value` lines (scripts/run-bench.sh).
 *
 * Usage: bench_audit [ROWS] [DIR]   (DIR: where the database goes, default /tmp)
 */
#include "sharehub/query.h"
#include "sharehub/store.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BASE_MS 1772323200000LL
#define BATCH   10000
#define SEGMENT 100000 /* rows over which the append cost is taken */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *const orgs[] = {"wmp",          "marac-coventry", "marac-dudley",
                                   "bcc",          "idva-coventry",  "nps-midlands",
                                   "uhb",          "swbh",           "marac-bham-east",
                                   "coventry-cc",  "dudley-mbc",     "walsall-mbc",
                                   "idva-walsall", "swm-crc",        "rwt",
                                   "sandwell-mbc"};
static const char *const types[] = {"marac.referral",       "marac.referral.decision",
                                    "marac.transfer",       "mash.referral",
                                    "idva.notification",    "missing.report",
                                    "prison.release_notice"};

/* A realistic spread: 16 orgs, 7 event types, 1 in 20 denied, a case ref on
 * half, a subject on four rows in five. */
static void make_row(int64_t i, shub_audit_row_t *r, char case_ref[32], char subject[32])
{
    static const uint8_t payload_hash[32] = {7};
    memset(r, 0, sizeof *r);
    r->at_ms = BASE_MS + i * 100;
    r->action = "decide";
    /* Denials spread by a multiplicative hash, so no filter combination
     * below is empty by arithmetic accident. */
    bool deny = ((uint64_t)i * 2654435761u >> 8) % 20 == 0;
    r->decision = deny ? "deny" : "allow";
    r->reason = deny ? (i % 2 ? "no-flow" : "recipient-not-party") : NULL;
    r->sender = orgs[i % 16];
    r->recipient = orgs[(i * 7 + i / 16 + 1) % 16];
    r->event_type = types[i % 7];
    r->agreement = i % 3 ? "wm-marac-isa" : "wm-mash-isa";
    r->agreement_version = 3;
    r->agreement_hash = "9f2c7a1b";
    r->flow = "police-to-marac";
    r->purpose = "marac-risk-management";
    r->legal_basis = "uk-gdpr-6-1-e";
    r->consent = "not-sought";
    r->area = "coventry";
    r->fields_shared = "dash_score,victim.name,victim.dob";
    r->fields_stripped = deny ? NULL : "victim.health";
    if (i % 2) {
        snprintf(case_ref, 32, "cov-%lld", (long long)(i / 10));
        r->case_ref = case_ref;
    }
    r->payload_hash = payload_hash;
    /* About 16 rows per person, as a busy region might have. */
    snprintf(subject, 32, "wmp-person-%lld", (long long)((i * 7919) % 50000));
    r->subject_ref = i % 5 ? subject : NULL;
    for (int b = 0; b < 8; b++)
        r->event_id.bytes[b] = (uint8_t)((uint64_t)i >> (8 * (7 - b)));
}

/* Indexes behind the chain, as the idle hub does. */
static int maintain(shub_store_t *s, shub_err_t *err)
{
    bool more = true;
    while (more)
        if (shub_store_maintain(s, false, &more, err) != 0)
            return -1;
    return 0;
}

static double log_page(shub_store_t *s, const shub_query_filter_t *q, int reps,
                       size_t *rows)
{
    shub_err_t err;
    double best = 1e9;
    for (int k = 0; k < reps; k++) {
        shub_query_result_t *r = NULL;
        double t0 = now_s();
        if (shub_query_log(s, q, &r, &err) != 0) {
            fprintf(stderr, "log: %s\n", err.msg);
            exit(1);
        }
        double t = now_s() - t0;
        if (t < best)
            best = t;
        *rows = shub_query_row_count(r, "log");
        shub_query_result_destroy(&r);
    }
    return best;
}

int main(int argc, char **argv)
{
    int64_t rows = argc > 1 ? strtoll(argv[1], NULL, 10) : 1000000;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    char path[512], side[600];
    uint8_t pk[32], sk[64], subject[32];
    shub_store_t *s = NULL;
    shub_err_t err;
    if (rows < 4 * SEGMENT || sodium_init() < 0) {
        fprintf(stderr, "usage: bench_audit [ROWS >= %d] [DIR]\n", 4 * SEGMENT);
        return 64;
    }
    snprintf(path, sizeof path, "%s/bench-audit-%ld.db", dir, (long)getpid());
    bool keep = getenv("SHUB_BENCH_KEEP") != NULL; /* leave the database to look at */
    crypto_sign_keypair(pk, sk);
    randombytes_buf(subject, sizeof subject);
    printf("bench_audit: %lld rows, %ld cores, build with synchronous=NORMAL, "
           "%d-row transactions, checkpoint every %d rows\n",
           (long long)rows, sysconf(_SC_NPROCESSORS_ONLN), BATCH,
           SHUB_STORE_CHECKPOINT_EVERY);

    shub_store_opts_t o = {
        .synchronous_full = false, .subject_key = subject, .sign_secret = sk};
    double t0 = now_s(), last_t0 = 0, first_us = 0, last_us = 0;
    if (shub_store_open(path, &o, &s, &err) != 0)
        goto fail;
    for (int64_t i = 1; i <= rows; i++) {
        shub_audit_row_t r;
        char case_ref[32], subject_ref[32];
        if (i % BATCH == 1 && shub_store_begin(s, &err) != 0)
            goto fail;
        make_row(i, &r, case_ref, subject_ref);
        if (shub_store_audit_append(s, &r, &err) != 0)
            goto fail;
        if ((i % BATCH == 0 || i == rows) && shub_store_commit(s, &err) != 0)
            goto fail;
        /* The hub moves the WAL into the database when idle; without this
         * (wal_autocheckpoint is off) the WAL of a 10M-row build would hold
         * every page ever written. */
        if (i % (10 * BATCH) == 0 && maintain(s, &err) != 0)
            goto fail;
        if (i == SEGMENT)
            first_us = (now_s() - t0) * 1e6 / SEGMENT;
        if (i == rows - SEGMENT)
            last_t0 = now_s();
    }
    last_us = (now_s() - last_t0) * 1e6 / SEGMENT;
    bool made;
    if (shub_store_begin(s, &err) != 0 ||
        shub_store_checkpoint(s, shub_now_ms(), true, NULL, &made, &err) != 0 ||
        shub_store_commit(s, &err) != 0 || maintain(s, &err) != 0)
        goto fail;
    shub_store_close(&s);
    double t = now_s() - t0;
    printf("build:  %8.2f s  %10.0f rows/s\n", t, (double)rows / t);
    printf("append: %8.2f us a row over the first %d rows, %.2f us over the last %d "
           "(ratio %.2f; target <= 1.2)\n",
           first_us, SEGMENT, last_us, SEGMENT, last_us / first_us);

    shub_verify_result_t res;
    shub_verify_opts_t vopts = {.expected_key = pk, .now_ms = shub_now_ms()};
    t0 = now_s();
    if (shub_store_verify(path, &vopts, &res, &err) != 0)
        goto fail;
    t = now_s() - t0;
    double verify_rate = (double)res.rows / t;
    printf("verify: %8.2f s  %10.0f rows/s  (%s, %lld checkpoints; target >= 500000 "
           "rows/s)\n",
           t, (double)res.rows / t, res.ok ? "ok" : res.problem,
           (long long)res.checkpoints);

    shub_store_opts_t ro = {.readonly = true, .subject_key = subject};
    if (shub_store_open(path, &ro, &s, &err) != 0)
        goto fail;
    uint8_t hash[32], case_hash[32];
    shub_store_ref_hash(s, SHUB_REF_SUBJECT, "wmp-person-1001", hash);
    int64_t mid = rows / 2;
    char case_ref[32];
    snprintf(case_ref, sizeof case_ref, "cov-%lld", (long long)(mid / 10));
    shub_store_ref_hash_key(subject, SHUB_REF_CASE, case_ref, case_hash);
    const struct {
        const char *what;
        shub_query_filter_t q;
    } pages[] = {
        {"log (no filter), newest page", {.limit = 50}},
        {"log --org uhb --decision deny, newest page",
         {.org = "uhb", .decision = "deny", .limit = 50}},
        {"log --org uhb --decision deny --before ROWS/2",
         {.org = "uhb", .decision = "deny", .limit = 50, .before_seq = mid}},
        {"log --sender wmp --event-type marac.transfer",
         {.sender = "wmp", .event_type = "marac.transfer", .limit = 50}},
        {"log --agreement wm-mash-isa --reason recipient-not-party",
         {.agreement = "wm-mash-isa", .reason = "recipient-not-party", .limit = 50}},
        {"log --case cov-(ROWS/20)", {.case_hash = case_hash, .limit = 50}},
        {"log --since/--until: 1 minute at ROWS/2, oldest first",
         {.has_since = true,
          .since_ms = BASE_MS + mid * 100,
          .has_until = true,
          .until_ms = BASE_MS + mid * 100 + 60000,
          .oldest_first = true,
          .limit = 50}},
        {"subject (one person, newest page)", {.subject_hash = hash, .limit = 50}},
    };
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        size_t got = 0;
        double best = log_page(s, &pages[i].q, 5, &got);
        printf("%-58s %8.2f ms  (%zu rows; best of 5; target < 100 ms)\n", pages[i].what,
               best * 1e3, got);
    }
    shub_store_close(&s);
    printf("summary: audit.rows=%lld\n", (long long)rows);
    printf("summary: audit.verify_rows_per_s=%.0f\n", verify_rate);
    printf("summary: audit.append_us_at_0=%.2f\n", first_us);
    printf("summary: audit.append_us_at_end=%.2f\n", last_us);
    printf("summary: ratio.audit_append_end_to_start=%.2f\n", last_us / first_us);
    if (keep) {
        printf("kept %s\n", path);
        return 0;
    }
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    return 0;
fail:
    fprintf(stderr, "bench_audit: %s\n", err.msg);
    shub_store_close(&s);
    unlink(path);
    return 1;
}
