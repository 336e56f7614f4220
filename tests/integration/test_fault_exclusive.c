/*
 * Fault test: one broker per database and per endpoint, and frames at the
 * size limit answered rather than dropped.
 *
 * A second sharehub-broker on the same database (another endpoint) and one
 * on the same ipc endpoint (another database) must each refuse to start,
 * exit 69 and name the process that holds what it wanted (the first
 * broker's pid), leaving the first broker serving on its endpoint.
 *
 * A welcomed client then sends a frame a little under max_message_bytes
 * (a SHARE whose binary field breaks the value limit) and one a little over
 * it: each must be answered ERROR limit, and the same session must go on (a
 * SHARE right after is receipted, not refused as not-welcome, which is what
 * a connection libzmq dropped and silently reconnected would get).
 *
 * Prints `exclusive: same_db=refused same_endpoint=refused ... under=limit
 * over=limit session_kept=2`.
 */
#include "fault.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const harness_org_t orgs[] = {
    {"wmp", "police", "all"},
    {"marac-coventry", "marac", "coventry"},
    {"idva-coventry", "idva", "coventry"},
    {"bcc", "local-authority", "birmingham-east, birmingham-west"},
};

/* Runs a second broker on h's configuration with the given --db and
 * --endpoint; its exit status and output. */
static int second_broker(const harness_t *h, const char *db, const char *endpoint,
                         char *out, size_t size)
{
    const char *argv[] = {harness_program("broker/sharehub-broker"),
                          "--config",
                          h->dir,
                          "--db",
                          db,
                          "--endpoint",
                          endpoint,
                          NULL};
    return fault_run(out, size, argv);
}

/* A SHARE to the MARAC; returns whether its RECEIPT came on this session. */
static bool receipted(tclient_t *c)
{
    static const char *const to[] = {"marac@coventry"};
    shub_arena_t *a = shub_arena_new(0);
    shub_msg_t m = {.type = SHUB_MSG_SHARE};
    share_fill(&m.share, a, "marac.referral", "coventry", to, 1, 16);
    bool ok = tclient_send(c, &m) == 0;
    const shub_receipt_t *r = ok ? tclient_receipt(c, 10000) : NULL;
    ok = r && memcmp(r->id.bytes, m.share.ev.id.bytes, SHUB_ID_SIZE) == 0;
    shub_arena_destroy(&a);
    return ok;
}

/* A msgpack map {"v": 2, "type": "SHARE", "blob": <bin32 of the rest>} of
 * exactly `size` bytes: the shape of a message, too big in one value. */
static char *frame_of(size_t size)
{
    static const char head[] = "\x83\xa1v\x02\xa4type\xa5SHARE\xa4"
                               "blob\xc6";
    size_t n = sizeof head - 1;
    char *f = malloc(size);
    assert_non_null(f);
    memcpy(f, head, n);
    uint32_t len = (uint32_t)(size - n - 4);
    for (int i = 0; i < 4; i++)
        f[n + (size_t)i] = (char)(len >> (24 - 8 * i));
    memset(f + n + 4, 'x', len);
    return f;
}

/* Sends a frame of `size` bytes; the code of the ERROR that answers it. */
static void answer_to_frame(tclient_t *c, size_t size, char code[64])
{
    char *f = frame_of(size);
    assert_int_equal(tclient_send_raw(c, f, size), 0);
    free(f);
    shub_msg_t *e = tclient_expect(c, SHUB_MSG_ERROR, 10000);
    snprintf(code, 64, "%s", e && e->error.code ? e->error.code : "(none)");
    shub_msg_destroy(&e);
}

static void
test_second_broker_refused_naming_holder_frames_at_limit_answered(void **state)
{
    (void)state;
    harness_t *h = fault_harness(orgs, sizeof orgs / sizeof orgs[0]);
    assert_non_null(h);
    assert_int_equal(harness_start(h), 0);
    char db[400], other_db[400], other_ep[400], pid[32], out[8192];
    fault_path(h, "broker.db", db, sizeof db);
    fault_path(h, "other.db", other_db, sizeof other_db);
    snprintf(other_ep, sizeof other_ep, "ipc://%s/other.ipc", h->dir);
    snprintf(pid, sizeof pid, "%ld", (long)h->broker);

    int same_db = second_broker(h, db, other_ep, out, sizeof out);
    bool db_named = strstr(out, pid) != NULL;
    if (same_db != 69 || !db_named)
        fprintf(stderr, "exclusive: same database: exit %d\n%s", same_db, out);
    int same_ep = second_broker(h, other_db, h->endpoint, out, sizeof out);
    bool ep_named = strstr(out, pid) != NULL;
    if (same_ep != 69 || !ep_named)
        fprintf(stderr, "exclusive: same endpoint: exit %d\n%s", same_ep, out);

    /* The first broker serves on, on its own endpoint. */
    tclient_t *c = tclient_new(h, "wmp");
    assert_non_null(c);
    assert_int_equal(tclient_hello(c), 0);
    assert_true(receipted(c));

    char under[64], over[64];
    answer_to_frame(c, SHUB_MSG_MAX_BYTES - 64, under);
    int kept = receipted(c);
    answer_to_frame(c, SHUB_MSG_MAX_BYTES + 64, over);
    kept += receipted(c);
    bool broker_alive = kill(h->broker, 0) == 0;

    printf("exclusive: same_db=%s (exit %d, holder %s) same_endpoint=%s (exit %d, holder "
           "%s) under=%s over=%s session_kept=%d broker_alive=%d\n",
           same_db == 69 ? "refused" : "STARTED", same_db,
           db_named ? "named" : "NOT NAMED", same_ep == 69 ? "refused" : "STARTED",
           same_ep, ep_named ? "named" : "NOT NAMED", under, over, kept, broker_alive);
    fflush(stdout);
    assert_int_equal(same_db, 69);
    assert_true(db_named);
    assert_int_equal(same_ep, 69);
    assert_true(ep_named);
    assert_string_equal(under, "limit");
    assert_string_equal(over, "limit");
    assert_int_equal(kept, 2);
    assert_true(broker_alive);
    tclient_destroy(&c);
    assert_int_equal(harness_stop(h, SIGTERM), 0);
    fault_destroy(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            test_second_broker_refused_naming_holder_frames_at_limit_answered,
            fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
