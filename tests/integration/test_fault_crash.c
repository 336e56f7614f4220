/*
 * Fault test: crash points. A real broker and three real agents (wmp sends
 * referrals to the MARAC, some denied; marac-coventry receives them and
 * sends notifications to idva-coventry; both recipients run an --on-receive
 * hook that appends the event id to a file) carry a few thousand events
 * while the broker is killed with SIGKILL 200 times and the agents 200 times
 * (some of those restarts arm the agent's own crash right after an inbox
 * commit, before its ACK), each restarted at once, at moments spread at
 * random over the traffic (the seed is printed; SHUB_FAULT_SEED repeats a
 * run). Then everything runs quietly until it settles, and:
 *
 *   lost            every recipient an event was receipted to (queued,
 *                   delivered, acknowledged) has it in its inbox, and the
 *                   broker knows the event
 *   duplicates      no inbox holds an id twice; the log has one decision and
 *                   at most one acknowledgement per (event, recipient)
 *   hooks never run every inbox row's hook is done, and its id is in the
 *                   hook's file at least once
 *   stale outcomes  each sender's outbox says what the broker says of every
 *                   recipient: its outcomes table and its pending copies
 *   also            nothing is dead-lettered or failed, no agent kept a fork,
 *                   and the log verifies with every agent's store as witness
 *
 * Prints `crash: events=N broker_kills=N agent_kills=N lost=0 duplicates=0
 * hooks_never_run=0 stale_outcomes=0 ...`.
 */
#include "fault.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define SETTLE_MS 180000 /* how long the quiet run may take to settle */

static const harness_org_t orgs[] = {
    {"wmp", "police", "all"},
    {"marac-coventry", "marac", "coventry"},
    {"idva-coventry", "idva", "coventry"},
    {"bcc", "local-authority", "birmingham-east, birmingham-west"},
};

enum { A_WMP, A_MARAC, A_IDVA, N_AGENTS };
static const char *const names[N_AGENTS] = {"wmp", "marac-coventry", "idva-coventry"};

typedef struct run {
    harness_t *h;
    pid_t pid[N_AGENTS];
    char hook[N_AGENTS][600]; /* the --on-receive command, "" for none */
    char hooked[N_AGENTS][400];
    int broker_kills, agent_kills, self_crashes;
} run_t;

static void db_of(const run_t *r, int a, char *out, size_t size)
{
    snprintf(out, size, "%s/%s.db", r->h->dir, names[a]);
}

static void agent_up(run_t *r, int a, bool crash_after_commit)
{
    static const char *const crash[] = {"SHUB_AGENT_CRASH_AFTER_COMMIT=1", NULL};
    const char *extra[] = {"--on-receive", r->hook[a], NULL};
    r->pid[a] = fault_agent(r->h, names[a], r->hook[a][0] ? extra : NULL,
                            crash_after_commit ? crash : NULL);
}

/* An agent that crashed by itself (the armed crash point) is started again,
 * unarmed. */
static void reap(run_t *r)
{
    for (int a = 0; a < N_AGENTS; a++) {
        int status;
        if (waitpid(r->pid[a], &status, WNOHANG) == r->pid[a]) {
            fault_forget(r->pid[a]);
            r->self_crashes++;
            agent_up(r, a, false);
        }
    }
}

/* One fault: the broker or an agent killed and started again at once. */
static void crash_one(run_t *r, bool broker)
{
    if (broker) {
        int status = harness_stop(r->h, SIGKILL);
        if (status != 128 + SIGKILL)
            fail_msg("the broker ended by itself before it was killed (status %d); its "
                     "log is %s (SHUB_KEEP_TEST_DIR=1 keeps it)",
                     status, r->h->log);
        assert_int_equal(harness_start(r->h), 0);
        r->broker_kills++;
        return;
    }
    int a = (int)fault_random(N_AGENTS);
    fault_stop(r->pid[a], SIGKILL);
    r->agent_kills++;
    /* Every fourth restart of a recipient arms its crash between the inbox
     * commit and the ACK. */
    agent_up(r, a, a != A_WMP && r->agent_kills % 4 == 0);
}

/* ---- what settled means ------------------------------------------------------- */

static long count_in(const run_t *r, int a, const char *sql)
{
    char path[400];
    db_of(r, a, path, sizeof path);
    return harness_file_count(path, sql);
}

static bool settled(const run_t *r)
{
    return count_in(r, A_WMP, "outbox WHERE state = 'pending'") == 0 &&
           count_in(r, A_MARAC, "outbox WHERE state = 'pending'") == 0 &&
           harness_count(r->h, "sealed") == 0 && harness_count(r->h, "updates") == 0 &&
           count_in(r, A_MARAC, "inbox WHERE hook != 'done'") == 0 &&
           count_in(r, A_IDVA, "inbox WHERE hook != 'done'") == 0;
}

/* ---- checks --------------------------------------------------------------------- */

typedef struct idset {
    char (*ids)[SHUB_ID_TEXT];
    size_t n, cap;
} idset_t;

static void idset_add(idset_t *s, const char *id)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->ids = realloc(s->ids, s->cap * sizeof *s->ids);
        assert_non_null(s->ids);
    }
    snprintf(s->ids[s->n++], SHUB_ID_TEXT, "%s", id);
}

static int by_text(const void *a, const void *b)
{
    return strcmp(a, b);
}

static bool idset_has(const idset_t *s, const char *id)
{
    return bsearch(id, s->ids, s->n, sizeof *s->ids, by_text) != NULL;
}

static void idset_sort(idset_t *s)
{
    qsort(s->ids, s->n, sizeof *s->ids, by_text);
}

/* Rows of a query on a SQLite file, each handed to fn as text columns. */
static void each_row(const char *path, const char *sql,
                     void (*fn)(sqlite3_stmt *st, void *ctx), void *ctx)
{
    sqlite3 *db = harness_sqlite_open(path);
    assert_non_null(db);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    while (sqlite3_step(st) == SQLITE_ROW)
        fn(st, ctx);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void id_text(sqlite3_stmt *st, int col, char out[SHUB_ID_TEXT])
{
    shub_id_t id;
    memset(&id, 0, sizeof id);
    if (sqlite3_column_bytes(st, col) == SHUB_ID_SIZE)
        memcpy(id.bytes, sqlite3_column_blob(st, col), SHUB_ID_SIZE);
    shub_id_format(&id, out);
}

static void add_id(sqlite3_stmt *st, void *ctx)
{
    char id[SHUB_ID_TEXT];
    id_text(st, 0, id);
    idset_add(ctx, id);
}

/* The ids in a hook's file, one per line. */
static void hooked_ids(const char *path, idset_t *s)
{
    FILE *f = fopen(path, "r");
    char line[128];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strlen(line) == SHUB_ID_TEXT - 1)
            idset_add(s, line);
    }
    if (f)
        fclose(f);
    idset_sort(s);
}

typedef struct outcome_check {
    const idset_t *inbox[N_AGENTS]; /* by recipient agent; NULL if none runs */
    const idset_t *events;          /* the broker's dedupe set */
    long lost, checked, dead;
} outcome_check_t;

static int agent_index(const char *org)
{
    for (int a = 0; a < N_AGENTS; a++)
        if (strcmp(names[a], org) == 0)
            return a;
    return -1;
}

/* A sender's outcome row (id, recipient, outcome): a receipted event an
 * allowed recipient must hold. */
static void check_delivered(sqlite3_stmt *st, void *ctx)
{
    outcome_check_t *oc = ctx;
    char id[SHUB_ID_TEXT];
    id_text(st, 0, id);
    const char *to = (const char *)sqlite3_column_text(st, 1);
    const char *outcome = (const char *)sqlite3_column_text(st, 2);
    oc->checked++;
    if (!idset_has(oc->events, id)) {
        fprintf(stderr,
                "crash: LOST event %s: receipted, but the broker does not know it\n", id);
        oc->lost++;
    }
    if (strcmp(outcome, "dead") == 0)
        oc->dead++;
    if (strcmp(outcome, "denied") == 0 || strcmp(outcome, "dead") == 0)
        return;
    int a = agent_index(to);
    if (a < 0 || !oc->inbox[a] || !idset_has(oc->inbox[a], id)) {
        fprintf(stderr, "crash: LOST event %s: %s to %s, not in its inbox\n", id, outcome,
                to);
        oc->lost++;
    }
}

/* Each sender's outcomes, keyed "id recipient" -> outcome and reason. */
typedef struct kv {
    char key[SHUB_ID_TEXT + SHUB_MSG_MAX_NAME + 2];
    char outcome[16], reason[64];
} kv_t;

typedef struct kvs {
    kv_t *v;
    size_t n, cap;
} kvs_t;

static int by_key(const void *a, const void *b)
{
    return strcmp(((const kv_t *)a)->key, ((const kv_t *)b)->key);
}

static void add_outcome(sqlite3_stmt *st, void *ctx)
{
    kvs_t *k = ctx;
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 1024;
        k->v = realloc(k->v, k->cap * sizeof *k->v);
        assert_non_null(k->v);
    }
    kv_t *e = &k->v[k->n++];
    char id[SHUB_ID_TEXT];
    id_text(st, 0, id);
    const char *reason = (const char *)sqlite3_column_text(st, 3);
    snprintf(e->key, sizeof e->key, "%s %s", id, sqlite3_column_text(st, 1));
    snprintf(e->outcome, sizeof e->outcome, "%s", sqlite3_column_text(st, 2));
    snprintf(e->reason, sizeof e->reason, "%s", reason ? reason : "");
}

typedef struct stale_check {
    kvs_t sender[N_AGENTS];
    long stale, compared;
} stale_check_t;

/* A broker outcome (event, sender, recipient, state, reason) against the
 * sender's outbox: pending copies are queued or delivered there, the rest
 * acknowledged, denied or dead as the broker has them. */
static void check_stale(sqlite3_stmt *st, void *ctx)
{
    stale_check_t *sc = ctx;
    char id[SHUB_ID_TEXT];
    id_text(st, 0, id);
    const char *sender = (const char *)sqlite3_column_text(st, 1);
    const char *to = (const char *)sqlite3_column_text(st, 2);
    const char *state = (const char *)sqlite3_column_text(st, 3);
    const char *reason = (const char *)sqlite3_column_text(st, 4);
    int a = agent_index(sender);
    sc->compared++;
    kv_t want;
    snprintf(want.key, sizeof want.key, "%s %s", id, to);
    const kv_t *got =
        a < 0 ? NULL
              : bsearch(&want, sc->sender[a].v, sc->sender[a].n, sizeof want, by_key);
    bool ok = got != NULL;
    if (ok && strcmp(state, "pending") == 0)
        ok =
            strcmp(got->outcome, "queued") == 0 || strcmp(got->outcome, "delivered") == 0;
    else if (ok)
        ok = strcmp(got->outcome, state) == 0 &&
             strcmp(got->reason, reason ? reason : "") == 0;
    if (!ok) {
        sc->stale++;
        fprintf(stderr, "crash: STALE %s to %s: broker says %s, %s's outbox says %s\n",
                id, to, state, sender, got ? got->outcome : "nothing");
    }
}

static void test_crash_points_lose_duplicate_and_stale_nothing(void **state)
{
    (void)state;
    run_t r = {0};
    r.h = fault_harness(orgs, sizeof orgs / sizeof orgs[0]);
    assert_non_null(r.h);
    assert_int_equal(harness_start(r.h), 0);
    for (int a = A_MARAC; a <= A_IDVA; a++) {
        snprintf(r.hooked[a], sizeof r.hooked[a], "%s/%s.hooked", r.h->dir, names[a]);
        /* the event JSON starts {"id":"<36 characters>" */
        snprintf(r.hook[a], sizeof r.hook[a], "cut -c8-43 >> '%s'", r.hooked[a]);
    }
    for (int a = 0; a < N_AGENTS; a++)
        agent_up(&r, a, false);
    fault_outbox_t *wmp = fault_outbox_open(r.h, "wmp");
    fault_outbox_t *marac = fault_outbox_open(r.h, "marac-coventry");

    int events = fault_count(3000, 60), broker_kills = fault_count(200, 4);
    int agent_kills = fault_count(200, 4), steps = broker_kills + agent_kills;
    printf("crash: seed=%llu scale=%.2f\n", (unsigned long long)fault_seed(),
           fault_scale());
    int64_t t0 = fault_now_ms();
    int submitted = 0, referrals = 0;
    char json[2048];
    for (int step = 0; step < steps; step++) {
        int target = (int)((int64_t)events * (step + 1) / steps);
        for (; submitted < target; submitted++) {
            if (submitted % 3 == 2) {
                fault_notification(json, sizeof json, submitted);
                assert_int_equal(fault_submit(marac, json, NULL), 0);
            } else {
                fault_referral(json, sizeof json, submitted, referrals % 5 == 4 ? 9 : 16,
                               referrals % 7 == 0);
                referrals++;
                assert_int_equal(fault_submit(wmp, json, NULL), 0);
            }
        }
        fault_nap_ms((int)fault_random(120)); /* a moment anywhere in the traffic */
        int left_b = broker_kills - r.broker_kills, left_a = agent_kills - r.agent_kills;
        crash_one(&r, (int)fault_random((uint32_t)(left_a + left_b)) < left_b);
        reap(&r);
    }
    int64_t faulted = fault_now_ms();
    fault_outbox_close(&wmp);
    fault_outbox_close(&marac);

    /* Quiet: everything settles with no more faults. */
    int64_t quiet = fault_now_ms();
    while (!settled(&r) && fault_now_ms() - quiet < SETTLE_MS) {
        reap(&r);
        fault_nap_ms(100);
    }
    bool settled_ok = settled(&r);

    char path[400], broker_db[400];
    fault_path(r.h, "broker.db", broker_db, sizeof broker_db);
    idset_t inbox[N_AGENTS] = {0}, hooked[N_AGENTS] = {0}, events_set = {0};
    each_row(broker_db, "SELECT event_id FROM events", add_id, &events_set);
    idset_sort(&events_set);
    long duplicates = 0, hooks_never_run = 0;
    for (int a = A_MARAC; a <= A_IDVA; a++) {
        db_of(&r, a, path, sizeof path);
        each_row(path, "SELECT id FROM inbox", add_id, &inbox[a]);
        idset_sort(&inbox[a]);
        duplicates += harness_file_count(path, "inbox") -
                      harness_file_count(path, "(SELECT DISTINCT id FROM inbox)");
        hooked_ids(r.hooked[a], &hooked[a]);
        hooks_never_run += harness_file_count(path, "inbox WHERE hook != 'done'");
        for (size_t i = 0; i < inbox[a].n; i++)
            if (!idset_has(&hooked[a], inbox[a].ids[i])) {
                fprintf(stderr, "crash: hook never ran for %s at %s\n", inbox[a].ids[i],
                        names[a]);
                hooks_never_run++;
            }
    }
    /* One decision per (event, recipient); an acknowledgement at most once. */
    duplicates +=
        harness_count(r.h, "(SELECT 1 FROM audit WHERE action = 'decide' GROUP BY "
                           "event_id, recipient HAVING count(*) > 1)");
    duplicates += harness_count(r.h, "(SELECT 1 FROM audit WHERE action = 'ack' GROUP BY "
                                     "event_id, recipient HAVING count(*) > 1)");

    outcome_check_t oc = {.inbox = {NULL, &inbox[A_MARAC], &inbox[A_IDVA]},
                          .events = &events_set};
    stale_check_t sc = {0};
    long unreceipted = 0, failed = 0;
    for (int a = A_WMP; a <= A_MARAC; a++) {
        db_of(&r, a, path, sizeof path);
        each_row(path,
                 "SELECT o.id, o.recipient, o.outcome FROM outcomes o JOIN outbox b ON "
                 "b.id = o.id WHERE b.state = 'receipted'",
                 check_delivered, &oc);
        each_row(path, "SELECT id, recipient, outcome, reason FROM outcomes", add_outcome,
                 &sc.sender[a]);
        qsort(sc.sender[a].v, sc.sender[a].n, sizeof *sc.sender[a].v, by_key);
        unreceipted += harness_file_count(path, "outbox WHERE state = 'pending'");
        failed += harness_file_count(path, "outbox WHERE state = 'failed'");
    }
    each_row(
        broker_db,
        "SELECT d.event_id, e.sender, d.recipient, d.state, d.reason FROM deliveries d "
        "JOIN events e ON e.event_id = d.event_id",
        check_stale, &sc);
    long receipted = count_in(&r, A_WMP, "outbox WHERE state = 'receipted'") +
                     count_in(&r, A_MARAC, "outbox WHERE state = 'receipted'");
    long forks = 0;
    const char *stores[N_AGENTS + 1];
    char store_paths[N_AGENTS][400];
    for (int a = 0; a < N_AGENTS; a++) {
        forks += count_in(&r, a, "checkpoints WHERE state = 'fork'");
        db_of(&r, a, store_paths[a], sizeof store_paths[a]);
        stores[a] = store_paths[a];
    }
    stores[N_AGENTS] = NULL;
    char key[400], out[4096];
    fault_path(r.h, "keys/checkpoint.pub", key, sizeof key);
    const char *verify[] = {harness_program("broker/sharehub-audit"),
                            "verify",
                            "--db",
                            broker_db,
                            "--key",
                            key,
                            "--witness",
                            stores[0],
                            "--witness",
                            stores[1],
                            "--witness",
                            stores[2],
                            NULL};
    int verified = fault_run(out, sizeof out, verify);
    if (verified != 0)
        fprintf(stderr, "crash: verify: exit %d\n%s", verified, out);

    printf("crash: events=%d receipted=%ld broker_kills=%d agent_kills=%d "
           "self_crashes_after_commit=%d fault_seconds=%lld settle_seconds=%lld\n",
           events, receipted, r.broker_kills, r.agent_kills, r.self_crashes,
           (long long)(faulted - t0) / 1000, (long long)(fault_now_ms() - quiet) / 1000);
    printf(
        "crash: lost=%ld duplicates=%ld hooks_never_run=%ld stale_outcomes=%ld "
        "(checked %ld receipts, %ld broker outcomes) dead=%ld unreceipted=%ld failed=%ld "
        "forks=%ld verify=%s settled=%s\n",
        oc.lost, duplicates, hooks_never_run, sc.stale, oc.checked, sc.compared, oc.dead,
        unreceipted, failed, forks, verified == 0 ? "ok" : "FAILED",
        settled_ok ? "yes" : "NO");
    fflush(stdout);
    assert_true(settled_ok);
    assert_int_equal(receipted, events);
    assert_int_equal(oc.lost, 0);
    assert_int_equal(duplicates, 0);
    assert_int_equal(hooks_never_run, 0);
    assert_int_equal(sc.stale, 0);
    assert_int_equal(oc.dead, 0);
    assert_int_equal(failed, 0);
    assert_int_equal(forks, 0);
    assert_int_equal(verified, 0);
    for (int a = 0; a < N_AGENTS; a++) {
        free(inbox[a].ids);
        free(hooked[a].ids);
        free(sc.sender[a].v);
        fault_stop(r.pid[a], SIGTERM);
    }
    free(events_set.ids);
    fault_destroy(&r.h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_crash_points_lose_duplicate_and_stale_nothing,
                                  fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
