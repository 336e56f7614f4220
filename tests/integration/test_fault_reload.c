/*
 * Fault test: an agreement changed while copies wait. A real broker, wmp's
 * agent sharing referrals under test-marac version 2 while marac-coventry's
 * agent is stopped, so every copy is queued. Then test-marac version 3,
 * which no longer has the referral flow, is put in place and the broker
 * reloads (SIGHUP). When the MARAC's agent comes back, the broker decides
 * each queued copy again before sending it (SPEC section 8): none may be
 * delivered; each must be dead-lettered `agreement-changed`, audited with
 * the version that refused it (3), and reported to wmp, whose outbox must
 * show every recipient's outcome dead with that reason.
 *
 * Prints `reload: queued=N delivered=0 dead=N audited_v3=N sender_dead=N`.
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

/* test-marac as the harness copied it, made version 3 without its referral
 * flow. */
static void withdraw_referral_flow(const harness_t *h)
{
    char path[400];
    fault_path(h, "agreements/test-marac.yaml", path, sizeof path);
    char *text = fault_read_file(path, NULL);
    assert_non_null(text);
    char *version = strstr(text, "version: 2\n");
    char *flow = strstr(text, "  - id: referral\n");
    char *next = flow ? strstr(flow, "  - id: idva-notification\n") : NULL;
    assert_non_null(version);
    assert_non_null(next);
    version[9] = '3';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite(text, 1, (size_t)(flow - text), f);
    fputs(next, f);
    assert_int_equal(fclose(f), 0);
    free(text);
}

static void test_reload_withdrawing_a_flow_dead_letters_every_queued_copy(void **state)
{
    (void)state;
    harness_t *h = fault_harness(orgs, sizeof orgs / sizeof orgs[0]);
    assert_non_null(h);
    assert_int_equal(harness_start(h), 0);
    char wmp_db[400], marac_db[400], broker_db[400];
    fault_path(h, "wmp.db", wmp_db, sizeof wmp_db);
    fault_path(h, "marac-coventry.db", marac_db, sizeof marac_db);
    fault_path(h, "broker.db", broker_db, sizeof broker_db);
    pid_t wmp = fault_agent(h, "wmp", NULL, NULL);

    int n = fault_count(40, 5);
    fault_outbox_t *out = fault_outbox_open(h, "wmp");
    char json[2048];
    for (int i = 0; i < n; i++) {
        fault_referral(json, sizeof json, i, 16, false);
        assert_int_equal(fault_submit(out, json, NULL), 0);
    }
    fault_outbox_close(&out);
    assert_int_equal(harness_file_wait_count(wmp_db, "outbox WHERE state = 'receipted'",
                                             n, FAULT_WAIT_MS),
                     n);
    long queued = harness_count(h, "deliveries WHERE state = 'pending'");
    assert_int_equal(harness_file_count(wmp_db, "outcomes WHERE outcome = 'queued'"), n);

    int reloads = harness_file_lines(h->log, "reloaded orgs=");
    withdraw_referral_flow(h);
    assert_int_equal(kill(h->broker, SIGHUP), 0);
    int64_t t0 = fault_now_ms();
    while (harness_file_lines(h->log, "reloaded orgs=") == reloads) {
        assert_true(fault_now_ms() - t0 < FAULT_WAIT_MS);
        fault_nap_ms(20);
    }
    assert_true(
        harness_count(h, "agreement_versions WHERE id = 'test-marac' AND version = 3") ==
        1);

    pid_t marac = fault_agent(h, "marac-coventry", NULL, NULL);
    long left = harness_file_wait_count(broker_db, "sealed", 0, FAULT_WAIT_MS);
    long sender_dead =
        harness_file_wait_count(wmp_db,
                                "outcomes WHERE outcome = 'dead' AND reason = "
                                "'agreement-changed'",
                                n, FAULT_WAIT_MS);
    long delivered = harness_file_count(marac_db, "inbox");
    long acks = harness_count(h, "audit WHERE action = 'ack'");
    long dead = harness_count(h, "deliveries WHERE state = 'dead' AND reason = "
                                 "'agreement-changed'");
    long audited_v3 =
        harness_count(h, "audit WHERE action = 'recheck' AND decision = 'dead' "
                         "AND reason = 'agreement-changed' AND agreement = "
                         "'test-marac' AND agreement_version = 3");
    printf("reload: queued=%ld delivered=%ld acks=%ld dead=%ld audited_v3=%ld "
           "sender_dead=%ld copies_left=%ld\n",
           queued, delivered, acks, dead, audited_v3, sender_dead, left);
    fflush(stdout);
    assert_int_equal(queued, n);
    assert_int_equal(left, 0);
    assert_int_equal(delivered, 0);
    assert_int_equal(acks, 0);
    assert_int_equal(dead, n);
    assert_int_equal(audited_v3, n);
    assert_int_equal(sender_dead, n);
    fault_stop(marac, SIGTERM);
    fault_stop(wmp, SIGTERM);
    fault_destroy(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            test_reload_withdrawing_a_flow_dead_letters_every_queued_copy,
            fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
