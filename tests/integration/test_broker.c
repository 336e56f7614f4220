/*
 * Process tests for sharehub-broker: a real broker process, real CURVE
 * clients over ipc://, real SQLite files. Each test starts its own broker
 * from tests/fixtures/broker/ so tests never share state.
 *
 * Organisations: wmp (police, all areas), marac-coventry, idva-coventry,
 * bcc (Birmingham's council), and probation-x, which no agreement names.
 */
#include "harness.h"

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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

static const harness_org_t orgs[] = {
    {"wmp", "police", "all"},
    {"marac-coventry", "marac", "coventry"},
    {"idva-coventry", "idva", "coventry"},
    {"bcc", "local-authority", "birmingham-east, birmingham-west"},
    {"probation-x", "probation", "all"},
};

static int setup(void **state)
{
    harness_t *h = harness_new(orgs, sizeof orgs / sizeof orgs[0],
                               SHUB_FIXTURES "/broker/agreements");
    if (!h || harness_start(h) != 0) {
        if (h)
            fprintf(stderr, "broker did not start; log in %s\n", h->log);
        harness_destroy(&h);
        return -1;
    }
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    harness_t *h = *state;
    harness_destroy(&h);
    return 0;
}

static tclient_t *online(harness_t *h, const char *org)
{
    tclient_t *c = tclient_new(h, org);
    assert_non_null(c);
    assert_int_equal(tclient_hello(c), 0);
    return c;
}

/* Sends a referral and returns its receipt (borrowed until the client's
 * next receipt). */
static const shub_receipt_t *refer(tclient_t *c, shub_share_t *out, const char *const *to,
                                   uint32_t n, int dash, const char *type)
{
    shub_arena_t *a = shub_arena_new(0);
    shub_msg_t m = {.type = SHUB_MSG_SHARE};
    share_fill(&m.share, a, type, "coventry", to, n, dash);
    if (out)
        *out = m.share;
    assert_int_equal(tclient_send(c, &m), 0);
    const shub_receipt_t *r = tclient_receipt(c, 5000);
    assert_non_null(r);
    assert_memory_equal(r->id.bytes, m.share.ev.id.bytes, SHUB_ID_SIZE);
    shub_arena_destroy(&a);
    if (out) {
        out->ev.payload = shub_val_nil(); /* its arena is gone */
        out->to = NULL;
    }
    return r;
}

static void test_share_allowed_delivers_only_allowed_fields(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp"), *marac = online(h, "marac-coventry");
    const char *to[] = {"marac@coventry"};
    shub_share_t sent;
    const shub_receipt_t *r = refer(police, &sent, to, 1, 16, "marac.referral");
    assert_int_equal(r->count, 1);
    assert_string_equal(r->items[0].to, "marac-coventry");
    assert_int_equal(r->items[0].outcome, SHUB_OUTCOME_DELIVERED);
    assert_string_equal(r->items[0].agreement, "test-marac");
    assert_string_equal(r->items[0].flow, "referral");

    const shub_deliver_t *d = tclient_delivery(marac, 5000);
    assert_non_null(d);
    assert_string_equal(d->from, "wmp");
    assert_memory_equal(d->id.bytes, sent.ev.id.bytes, SHUB_ID_SIZE);
    shub_arena_t *a = shub_arena_new(0);
    shub_event_t ev;
    assert_int_equal(tclient_open(marac, d, a, &ev), 0);
    assert_non_null(shub_val_at(&ev.payload, "victim.name"));
    assert_non_null(shub_val_at(&ev.payload, "risk.dash_score"));
    assert_non_null(shub_val_at(&ev.payload, "incident.summary"));
    assert_null(shub_val_at(&ev.payload, "victim.address"));
    assert_null(shub_val_at(&ev.payload, "children"));
    assert_null(shub_val_at(&ev.payload, "actions"));
    assert_string_equal(ev.case_ref, "CASE-0001");
    shub_arena_destroy(&a);

    /* ACK: the sender hears, the payload is dropped, the ack is audited. */
    assert_int_equal(tclient_ack(marac, &d->id), 0);
    const shub_update_t *u = tclient_update(police, 5000);
    assert_non_null(u);
    assert_memory_equal(u->id.bytes, sent.ev.id.bytes, SHUB_ID_SIZE);
    assert_string_equal(u->item.to, "marac-coventry");
    assert_int_equal(u->item.outcome, SHUB_OUTCOME_ACKNOWLEDGED);
    assert_true(u->seq > 0);

    assert_int_equal(harness_count(h, "audit WHERE action='decide' AND decision='allow' "
                                      "AND agreement='test-marac' AND flow='referral'"),
                     1);
    assert_int_equal(harness_count(h, "audit WHERE action='ack' AND recipient="
                                      "'marac-coventry'"),
                     1);
    char stripped[512];
    assert_int_equal(harness_text(h, "SELECT fields_stripped FROM audit WHERE decision='allow'",
                                  stripped, sizeof stripped),
                     0);
    assert_non_null(strstr(stripped, "victim.address"));
    assert_non_null(strstr(stripped, "children"));
    assert_int_equal(harness_count(h, "deliveries WHERE sealed IS NOT NULL"), 0);
    /* The flow reports referral.route (an anonymous code) and nothing else. */
    assert_int_equal(harness_count(h, "audit WHERE facts='referral.route=police'"), 1);
    /* No payload value reaches the audit log. */
    assert_int_equal(harness_count(h, "audit WHERE explanation LIKE '%Jane%' OR "
                                      "fields_shared LIKE '%Jane%'"),
                     0);
    tclient_destroy(&police);
    tclient_destroy(&marac);
}

static void expect_denied(harness_t *h, tclient_t *c, const char *const *to, int dash,
                          const char *type, const char *reason)
{
    const shub_receipt_t *r = refer(c, NULL, to, 1, dash, type);
    assert_int_equal(r->count, 1);
    assert_int_equal(r->items[0].outcome, SHUB_OUTCOME_DENIED);
    assert_string_equal(r->items[0].reason, reason);
    assert_non_null(r->items[0].detail);
    char sql[256];
    snprintf(sql, sizeof sql, "audit WHERE decision='deny' AND reason='%s' AND "
             "length(explanation) > 10", reason);
    assert_int_equal(harness_count(h, sql), 1);
}

static void test_share_denied_is_audited_and_never_delivered(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp"), *marac = online(h, "marac-coventry");
    tclient_t *probation = online(h, "probation-x");
    const char *to_marac[] = {"marac-coventry"}, *to_prob[] = {"probation-x"};
    const char *to_bcc[] = {"bcc"};
    expect_denied(h, police, to_marac, 9, "marac.referral", "condition-failed");
    expect_denied(h, police, to_marac, 16, "missing.report", "event-type-not-permitted");
    expect_denied(h, police, to_prob, 16, "marac.referral", "recipient-not-party");
    expect_denied(h, police, to_bcc, 16, "mash.referral", "outside-validity");
    assert_null(tclient_delivery(marac, 1500));
    assert_null(tclient_delivery(probation, 200));
    assert_int_equal(harness_count(h, "deliveries WHERE state != 'denied'"), 0);
    tclient_destroy(&police);
    tclient_destroy(&marac);
    tclient_destroy(&probation);
}

/* Two recipients denied for different reasons in one SHARE: each item of
 * the receipt carries its own explanation, not the last one decided. */
static void test_receipt_items_keep_their_own_explanations(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp");
    const char *to[] = {"marac-coventry", "probation-x"};
    const shub_receipt_t *r = refer(police, NULL, to, 2, 9, "marac.referral");
    assert_int_equal(r->count, 2);
    int marac = strcmp(r->items[0].to, "marac-coventry") == 0 ? 0 : 1;
    assert_string_equal(r->items[marac].reason, "condition-failed");
    assert_string_equal(r->items[1 - marac].reason, "recipient-not-party");
    assert_non_null(r->items[0].detail);
    assert_non_null(r->items[1].detail);
    assert_string_not_equal(r->items[0].detail, r->items[1].detail);
    assert_non_null(strstr(r->items[1 - marac].detail, "probation-x"));
    tclient_destroy(&police);
}

/* The ephemeral sealing key serves for about a second (SPEC 5.6): two copies
 * sealed within it share it, a copy sealed well after has a new one. */
static void test_sealing_key_is_replaced_after_a_second(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp"), *marac = online(h, "marac-coventry");
    const char *to[] = {"marac-coventry"};
    uint8_t keys[3][32];
    for (int i = 0; i < 3; i++) {
        if (i == 2)
            usleep(1600 * 1000);
        refer(police, NULL, to, 1, 16, "marac.referral");
        const shub_deliver_t *d = tclient_delivery(marac, 5000);
        assert_non_null(d);
        assert_true(d->sealed_len > 32);
        memcpy(keys[i], d->sealed, 32);
        assert_int_equal(tclient_ack(marac, &d->id), 0);
    }
    assert_memory_equal(keys[0], keys[1], 32);
    assert_memory_not_equal(keys[1], keys[2], 32);
    tclient_destroy(&police);
    tclient_destroy(&marac);
}

/* A broker that holds no pending copy (as after a restart with nothing
 * queued) answers an ACK, and a resent SHARE of an event already
 * acknowledged, without a copy to look in: it must not fall over. */
/* A WITNESS that does not countersign one of the broker's checkpoints is
 * refused with ERROR bad-value (SPEC 5.13), audited, and kept nowhere. */
static void test_witness_of_no_checkpoint_is_refused_bad_value(void **state)
{
    harness_t *h = *state;
    tclient_t *c = online(h, "wmp");
    shub_msg_t w = {.type = SHUB_MSG_WITNESS};
    w.witness.seq = 12345;
    w.witness.at_ms = shub_now_ms();
    memset(w.witness.head, 0xab, sizeof w.witness.head);
    memset(w.witness.key, 0xcd, sizeof w.witness.key);
    memset(w.witness.sig, 0xef, sizeof w.witness.sig);
    assert_int_equal(tclient_send(c, &w), 0);
    shub_msg_t *e = tclient_expect(c, SHUB_MSG_ERROR, 5000);
    assert_non_null(e);
    assert_string_equal(e->error.code, "bad-value");
    shub_msg_destroy(&e);
    /* the ERROR follows the commit of the refusal's row */
    assert_int_equal(harness_count(h, "audit WHERE action = 'refuse' AND reason = "
                                      "'bad-value' AND sender = 'wmp'"),
                     1);
    assert_int_equal(harness_count(h, "witnesses"), 0);
    tclient_destroy(&c);
}

static void test_ack_and_resend_with_no_copy_pending_are_harmless(void **state)
{
    harness_t *h = *state;
    tclient_t *marac = online(h, "marac-coventry");
    shub_id_t never;
    shub_id_generate(&never, shub_now_ms());
    assert_int_equal(tclient_ack(marac, &never), 0);
    tclient_t *police = online(h, "wmp");
    const char *to[] = {"marac@coventry"};
    shub_share_t sent;
    refer(police, &sent, to, 1, 16, "marac.referral");
    const shub_deliver_t *d = tclient_delivery(marac, 5000);
    assert_non_null(d);
    assert_int_equal(tclient_ack(marac, &d->id), 0);
    assert_non_null(tclient_update(police, 5000));
    tclient_destroy(&police);
    tclient_destroy(&marac);
    /* Restarted with nothing pending; the same SHARE again gets its receipt. */
    assert_int_equal(harness_stop(h, SIGKILL), 128 + SIGKILL);
    assert_int_equal(harness_start(h), 0);
    police = online(h, "wmp");
    shub_arena_t *a = shub_arena_new(0);
    shub_msg_t m = {.type = SHUB_MSG_SHARE};
    share_fill(&m.share, a, "marac.referral", "coventry", to, 1, 16);
    m.share.ev.id = sent.ev.id;
    assert_int_equal(tclient_send(police, &m), 0);
    const shub_receipt_t *r = tclient_receipt(police, 5000);
    assert_non_null(r);
    assert_true(r->duplicate);
    assert_int_equal(r->items[0].outcome, SHUB_OUTCOME_ACKNOWLEDGED);
    shub_arena_destroy(&a);
    tclient_destroy(&police);
}

static void test_unknown_key_is_refused_and_logged(void **state)
{
    harness_t *h = *state;
    shub_curve_keys_t stranger;
    shub_err_t err;
    assert_int_equal(shub_keys_generate(&stranger, &err), 0);
    tclient_t *c = tclient_new_keys(h, &stranger);
    assert_non_null(c);
    shub_msg_t hello = {.type = SHUB_MSG_HELLO};
    tclient_send(c, &hello);
    assert_null(tclient_recv(c, 1500));
    char needle[80];
    snprintf(needle, sizeof needle, "unknown key=%s", stranger.public_z85);
    assert_true(harness_log_has(h, needle));
    tclient_destroy(&c);
}

static void test_wrong_secret_for_real_public_key_is_refused(void **state)
{
    harness_t *h = *state;
    shub_curve_keys_t real, forged;
    shub_err_t err;
    char keys[400];
    snprintf(keys, sizeof keys, "%s/keys", h->dir);
    assert_int_equal(shub_keys_read_pair(keys, "wmp", &real, &err), 0);
    assert_int_equal(shub_keys_generate(&forged, &err), 0);
    memcpy(forged.public_key, real.public_key, sizeof forged.public_key); /* not its pair */
    tclient_t *c = tclient_new_keys(h, &forged);
    assert_non_null(c);
    shub_msg_t hello = {.type = SHUB_MSG_HELLO};
    tclient_send(c, &hello);
    assert_null(tclient_recv(c, 1500));
    assert_int_equal(harness_count(h, "audit"), 0);
    /* Such a handshake fails inside CURVE, before ZAP: the monitor logs it. */
    assert_true(harness_log_has(h, "failed handshake"));
    assert_true(harness_log_has(h, "does not prove its secret"));
    tclient_destroy(&c);
}

static void test_body_claiming_another_sender_is_refused(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp");
    shub_arena_t *a = shub_arena_new(0);
    const char *to[] = {"marac-coventry"};
    shub_msg_t m = {.type = SHUB_MSG_SHARE};
    share_fill(&m.share, a, "marac.referral", "coventry", to, 1, 16);
    m.share.from = "marac-coventry";
    assert_int_equal(tclient_send(police, &m), 0);
    shub_msg_t *e = tclient_expect(police, SHUB_MSG_ERROR, 5000);
    assert_non_null(e);
    assert_string_equal(e->error.code, "sender-mismatch");
    assert_non_null(e->error.id);
    shub_msg_destroy(&e);
    shub_arena_destroy(&a);
    assert_int_equal(harness_count(h, "events"), 0);
    /* Nothing was decided; the refusal itself is audited, without the body
     * (its row commits with the turn, just after the ERROR went out). */
    assert_int_equal(harness_count_until(h, "audit", 1, 5000), 1);
    assert_int_equal(harness_count(h, "audit WHERE action='refuse' AND decision='refused' AND "
                                      "reason='sender-mismatch' AND sender='wmp' AND "
                                      "event_id IS NOT NULL AND recipient IS NULL"),
                     1);
    tclient_destroy(&police);
}

static void test_event_dated_in_the_future_is_refused(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp");
    shub_arena_t *a = shub_arena_new(0);
    const char *to[] = {"marac-coventry"};
    shub_msg_t m = {.type = SHUB_MSG_SHARE};
    share_fill(&m.share, a, "marac.referral", "coventry", to, 1, 16);
    m.share.ev.occurred_ms = shub_now_ms() + 10 * 60 * 1000; /* limit: 5 minutes */
    assert_int_equal(tclient_send(police, &m), 0);
    shub_msg_t *e = tclient_expect(police, SHUB_MSG_ERROR, 5000);
    assert_non_null(e);
    assert_string_equal(e->error.code, "future-event");
    assert_non_null(strstr(e->error.message, "SHARE.occurred"));
    shub_msg_destroy(&e);
    /* Four minutes ahead is within the allowed clock skew. */
    shub_id_generate(&m.share.ev.id, shub_now_ms());
    m.share.ev.occurred_ms = shub_now_ms() + 4 * 60 * 1000;
    assert_int_equal(tclient_send(police, &m), 0);
    assert_non_null(tclient_receipt(police, 5000));
    assert_int_equal(harness_count(h, "events"), 1);
    shub_arena_destroy(&a);
    tclient_destroy(&police);
}

static void test_malformed_frames_answered_while_others_flow(void **state)
{
    harness_t *h = *state;
    tclient_t *bad = online(h, "bcc"), *police = online(h, "wmp");
    tclient_t *marac = online(h, "marac-coventry");
    const char *to[] = {"marac-coventry"};
    int receipts = 0, errors = 0;
    for (int i = 0; i < 100; i++) {
        uint8_t junk[64];
        size_t n = (size_t)(i % 60) + 1;
        for (size_t k = 0; k < n; k++)
            junk[k] = (uint8_t)(i * 31 + k * 7);
        junk[0] = (uint8_t)(i % 3 == 0 ? 0xdf : i % 3 == 1 ? 0xc1 : 0x92);
        assert_int_equal(tclient_send_raw(bad, junk, n), 0);
        if (i % 5 == 0) {
            shub_arena_t *a = shub_arena_new(0);
            shub_msg_t m = {.type = SHUB_MSG_SHARE};
            share_fill(&m.share, a, "marac.referral", "coventry", to, 1, 15);
            assert_int_equal(tclient_send(police, &m), 0);
            shub_arena_destroy(&a);
        }
    }
    for (shub_msg_t *m; errors < 100 && (m = tclient_expect(bad, SHUB_MSG_ERROR, 5000));) {
        errors++;
        shub_msg_destroy(&m);
    }
    for (const shub_receipt_t *m; receipts < 20 && (m = tclient_receipt(police, 5000));) {
        assert_int_equal(m->items[0].outcome, SHUB_OUTCOME_DELIVERED);
        receipts++;
    }
    assert_int_equal(errors, 100);
    assert_int_equal(receipts, 20);
    assert_true(harness_log_has(h, "bad message from org=bcc"));
    tclient_destroy(&bad);
    tclient_destroy(&police);
    tclient_destroy(&marac);
}

static void test_offline_recipient_receives_backlog_in_order(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp");
    const char *to[] = {"marac-coventry"};
    shub_id_t ids[5];
    for (int i = 0; i < 5; i++) {
        shub_share_t s;
        const shub_receipt_t *r = refer(police, &s, to, 1, 14 + i, "marac.referral");
        assert_int_equal(r->items[0].outcome, SHUB_OUTCOME_QUEUED);
        ids[i] = s.ev.id;
    }
    /* The backlog comes in the order the broker accepted it. */
    tclient_t *marac = tclient_new(h, "marac-coventry");
    shub_msg_t hello = {.type = SHUB_MSG_HELLO};
    assert_int_equal(tclient_send(marac, &hello), 0);
    shub_msg_t *w = tclient_expect(marac, SHUB_MSG_WELCOME, 5000);
    assert_non_null(w);
    assert_int_equal(w->welcome.backlog, 5);
    assert_string_equal(w->welcome.org, "marac-coventry");
    shub_msg_destroy(&w);
    for (int i = 0; i < 5; i++) {
        const shub_deliver_t *d = tclient_delivery(marac, 5000);
        assert_non_null(d);
        assert_memory_equal(d->id.bytes, ids[i].bytes, SHUB_ID_SIZE);
        tclient_ack(marac, &d->id);
    }
    tclient_destroy(&police);
    tclient_destroy(&marac);
}

static void test_full_window_queues_then_pumps_as_acks_arrive(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp");
    tclient_t *marac = tclient_new(h, "marac-coventry");
    shub_msg_t hello = {.type = SHUB_MSG_HELLO};
    hello.hello.window = 2; /* at most two DELIVERs un-ACKed */
    assert_int_equal(tclient_send(marac, &hello), 0);
    shub_msg_t *w = tclient_expect(marac, SHUB_MSG_WELCOME, 5000);
    assert_non_null(w);
    shub_msg_destroy(&w);
    const char *to[] = {"marac-coventry"};
    shub_id_t ids[10];
    for (int i = 0; i < 10; i++) {
        shub_share_t s;
        refer(police, &s, to, 1, 15, "marac.referral");
        ids[i] = s.ev.id;
    }
    shub_arena_t *a = shub_arena_new(0);
    for (int i = 0; i < 10; i++) {
        const shub_deliver_t *d = tclient_delivery(marac, 5000);
        assert_non_null(d);
        /* The two that fit the window went straight out; the rest queued
         * behind them and come, as ACKs free the window, in the same order,
         * each its own sealed copy (held in memory while it waited). */
        assert_memory_equal(d->id.bytes, ids[i].bytes, SHUB_ID_SIZE);
        shub_event_t ev;
        assert_int_equal(tclient_open(marac, d, a, &ev), 0);
        tclient_ack(marac, &d->id);
    }
    shub_arena_destroy(&a);
    assert_null(tclient_delivery(marac, 500));
    for (int i = 0; i < 100 && harness_count(h, "deliveries WHERE state='acknowledged'") < 10;
         i++)
        usleep(20000);
    assert_int_equal(harness_count(h, "deliveries WHERE state='acknowledged'"), 10);
    tclient_destroy(&police);
    tclient_destroy(&marac);
}

static void test_resend_after_kill9_is_delivered_once(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp");
    const char *to[] = {"marac-coventry"};
    shub_arena_t *a = shub_arena_new(0);
    shub_msg_t m = {.type = SHUB_MSG_SHARE};
    share_fill(&m.share, a, "marac.referral", "coventry", to, 1, 18);
    assert_int_equal(tclient_send(police, &m), 0);
    assert_non_null(tclient_receipt(police, 5000));
    tclient_destroy(&police);

    assert_int_equal(harness_stop(h, SIGKILL), 128 + SIGKILL);
    assert_int_equal(harness_start(h), 0);

    /* The agent did not see... or did see the receipt: either way it may resend. */
    police = online(h, "wmp");
    assert_int_equal(tclient_send(police, &m), 0);
    const shub_receipt_t *r = tclient_receipt(police, 5000);
    assert_non_null(r);
    assert_true(r->duplicate);
    assert_int_equal(r->items[0].outcome, SHUB_OUTCOME_QUEUED);

    tclient_t *marac = online(h, "marac-coventry");
    const shub_deliver_t *d = tclient_delivery(marac, 5000);
    assert_non_null(d);
    assert_memory_equal(d->id.bytes, m.share.ev.id.bytes, SHUB_ID_SIZE);
    tclient_ack(marac, &d->id);
    assert_null(tclient_delivery(marac, 2500)); /* past a redelivery timeout */
    assert_int_equal(harness_count(h, "deliveries WHERE state='acknowledged'"), 1);
    assert_int_equal(harness_count(h, "audit WHERE action='decide'"), 1);
    shub_arena_destroy(&a);
    tclient_destroy(&police);
    tclient_destroy(&marac);
}

/* Runs sharehub-audit verify on db; returns its exit code, output in out. */
static int verify(const char *db, char *out, size_t size)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s verify --db %s 2>&1", harness_program("broker/sharehub-audit"),
             db);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void tamper(const char *from, const char *to, const char *sql)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp %s %s", from, to);
    assert_int_equal(system(cmd), 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(to, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_verify_catches_edited_deleted_truncated_rows(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp");
    const char *to[] = {"marac-coventry", "idva-coventry", "probation-x"};
    for (int i = 0; i < 30; i++) {
        refer(police, NULL, to, 3, 15, "marac.referral");
    }
    tclient_destroy(&police);
    assert_int_equal(harness_stop(h, SIGTERM), 0); /* clean stop signs a checkpoint */

    char db[400], copy[400], out[2048];
    snprintf(db, sizeof db, "%s/broker.db", h->dir);
    snprintf(copy, sizeof copy, "%s/tampered.db", h->dir);
    assert_int_equal(verify(db, out, sizeof out), 0);
    assert_non_null(strstr(out, "ok: 90 rows"));

    /* the recipient of row 8 written into row 7 (the store keeps name ids) */
    tamper(db, copy, "UPDATE audit SET recipient=(SELECT recipient FROM audit WHERE seq=8)"
                     " WHERE seq=7");
    assert_int_equal(verify(copy, out, sizeof out), 1);
    assert_non_null(strstr(out, "row 7"));
    assert_non_null(strstr(out, "edited"));

    tamper(db, copy, "DELETE FROM audit WHERE seq=12");
    assert_int_equal(verify(copy, out, sizeof out), 1);
    assert_non_null(strstr(out, "missing"));

    tamper(db, copy, "DELETE FROM audit WHERE seq > 80");
    assert_int_equal(verify(copy, out, sizeof out), 1);
    assert_non_null(strstr(out, "truncated"));
}

static void test_bad_reload_keeps_old_agreements(void **state)
{
    harness_t *h = *state;
    char path[400];
    snprintf(path, sizeof path, "%s/agreements/zz-broken.yaml", h->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("id: broken\nversion: [not a number\n", f);
    fclose(f);
    kill(h->broker, SIGHUP);
    for (int i = 0; i < 200 && !harness_log_has(h, "reload failed"); i++)
        usleep(10000);
    assert_true(harness_log_has(h, "zz-broken.yaml:"));
    assert_true(harness_log_has(h, "reload failed"));

    tclient_t *police = online(h, "wmp");
    const char *to[] = {"marac-coventry"};
    const shub_receipt_t *r = refer(police, NULL, to, 1, 16, "marac.referral");
    assert_int_equal(r->items[0].outcome, SHUB_OUTCOME_QUEUED);
    tclient_destroy(&police);

    /* --check reports the same error with its file, line and column, exit 78:
     * where the ']' was missed, and where the '[' was opened. */
    char cmd[1024], out[2048];
    snprintf(cmd, sizeof cmd, "%s --check --config %s 2>&1",
             harness_program("broker/sharehub-broker"), h->dir);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    assert_int_equal(WEXITSTATUS(status), 78);
    assert_non_null(strstr(out, "zz-broken.yaml:3:1: yaml: did not find expected ',' or "
                                "']': the '[' on line 2 column 10 is not closed"));
}

static void test_unacked_delivery_is_resent_then_dead_lettered(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp"), *marac = online(h, "marac-coventry");
    const char *to[] = {"marac-coventry"};
    shub_share_t s;
    refer(police, &s, to, 1, 16, "marac.referral");
    /* The harness sets redeliver_ms 1000 and max_attempts 5: never ACK, but
     * stay alive (a silent peer is marked offline and gets nothing). */
    shub_msg_t hb = {.type = SHUB_MSG_HEARTBEAT};
    for (uint32_t attempt = 1; attempt <= 5; attempt++) {
        tclient_send(marac, &hb);
        tclient_send(police, &hb);
        const shub_deliver_t *d = tclient_delivery(marac, 2500);
        assert_non_null(d);
        assert_memory_equal(d->id.bytes, s.ev.id.bytes, SHUB_ID_SIZE);
        assert_int_equal(d->attempt, attempt);
    }
    tclient_send(marac, &hb);
    tclient_send(police, &hb);
    const shub_update_t *u = tclient_update(police, 2500);
    assert_non_null(u);
    assert_int_equal(u->item.outcome, SHUB_OUTCOME_DEAD);
    assert_string_equal(u->item.reason, "max-attempts");
    tclient_send(marac, &hb);
    assert_null(tclient_delivery(marac, 1500));
    assert_int_equal(harness_count(h, "deliveries WHERE state='dead' AND sealed IS NULL"), 1);
    assert_int_equal(harness_count(h, "audit WHERE action='dead' AND reason='max-attempts'"),
                     1);
    tclient_destroy(&police);
    tclient_destroy(&marac);
}

static void test_share_queued_under_suspended_agreement_is_not_delivered(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp");
    const char *to[] = {"marac-coventry"};
    const shub_receipt_t *r = refer(police, NULL, to, 1, 16, "marac.referral");
    assert_int_equal(r->items[0].outcome, SHUB_OUTCOME_QUEUED);

    /* The partnership suspends the agreement before the MARAC reconnects. */
    char path[400], cmd[900];
    snprintf(path, sizeof path, "%s/agreements/test-marac.yaml", h->dir);
    snprintf(cmd, sizeof cmd,
             "sed -i -e 's/^status: active/status: suspended/'"
             " -e '/^parties:/i\\  - {status: suspended, date: 2025-06-01}' %s",
             path);
    assert_int_equal(system(cmd), 0);
    kill(h->broker, SIGHUP);
    for (int i = 0; i < 300 && !harness_log_has(h, "reloaded"); i++)
        usleep(10000);
    assert_true(harness_log_has(h, "reloaded"));

    tclient_t *marac = online(h, "marac-coventry");
    assert_null(tclient_delivery(marac, 1500));
    const shub_update_t *u = tclient_update(police, 3000);
    assert_non_null(u);
    assert_int_equal(u->item.outcome, SHUB_OUTCOME_DEAD);
    assert_string_equal(u->item.reason, "agreement-not-active");
    assert_int_equal(harness_count(h, "audit WHERE action='recheck' AND decision='dead' AND "
                                      "reason='agreement-not-active'"),
                     1);
    tclient_destroy(&police);
    tclient_destroy(&marac);
}

static void test_silent_peer_is_marked_offline_and_shares_queue(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp");
    tclient_t *marac = online(h, "marac-coventry");
    /* marac-coventry now says nothing; the harness's peer timeout is 3 s. */
    for (int i = 0; i < 600 && !harness_log_has(h, "offline org=marac-coventry"); i++) {
        shub_msg_t hb = {.type = SHUB_MSG_HEARTBEAT};
        tclient_send(police, &hb); /* the sender stays alive */
        usleep(10000);
    }
    assert_true(harness_log_has(h, "offline org=marac-coventry (silent"));
    const char *to[] = {"marac-coventry"};
    const shub_receipt_t *r = refer(police, NULL, to, 1, 16, "marac.referral");
    assert_int_equal(r->items[0].outcome, SHUB_OUTCOME_QUEUED);
    tclient_destroy(&police);
    tclient_destroy(&marac);
}

static void test_second_connection_with_a_bound_routing_id_is_refused(void **state)
{
    harness_t *h = *state;
    tclient_t *police = tclient_new(h, "wmp"), *council = tclient_new(h, "bcc");
    assert_non_null(police);
    assert_non_null(council);
    /* Reconnect both with a chosen routing id: the second claim must fail. */
    zmq_setsockopt(police->sock, ZMQ_ROUTING_ID, "same-id", 7);
    zmq_disconnect(police->sock, h->endpoint);
    zmq_connect(police->sock, h->endpoint);
    assert_int_equal(tclient_hello(police), 0);
    zmq_setsockopt(council->sock, ZMQ_ROUTING_ID, "same-id", 7);
    zmq_disconnect(council->sock, h->endpoint);
    zmq_connect(council->sock, h->endpoint);
    shub_msg_t hello = {.type = SHUB_MSG_HELLO};
    tclient_send(council, &hello);
    assert_null(tclient_expect(council, SHUB_MSG_WELCOME, 1500));
    /* The first organisation's session is untouched. */
    const char *to[] = {"marac-coventry"};
    const shub_receipt_t *r = refer(police, NULL, to, 1, 16, "marac.referral");
    assert_int_equal(r->count, 1);
    tclient_destroy(&police);
    tclient_destroy(&council);
}

static void test_kill9_mid_stream_loses_no_receipted_share(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp");
    const char *to[] = {"marac-coventry"};
    enum { N = 200 };
    shub_msg_t *msgs = calloc(N, sizeof *msgs);
    shub_arena_t *a = shub_arena_new(0);
    bool *receipted = calloc(N, sizeof *receipted);
    for (int i = 0; i < N; i++) {
        msgs[i].type = SHUB_MSG_SHARE;
        share_fill(&msgs[i].share, a, "marac.referral", "coventry", to, 1, 15);
        assert_int_equal(tclient_send(police, &msgs[i]), 0);
    }
    /* Take some receipts, then kill the broker while the rest are in flight. */
    for (int got = 0; got < N / 4;) {
        const shub_receipt_t *r = tclient_receipt(police, 5000);
        assert_non_null(r);
        for (int i = 0; i < N; i++)
            if (memcmp(msgs[i].share.ev.id.bytes, r->id.bytes, SHUB_ID_SIZE) == 0)
                receipted[i] = true, got++;
    }
    assert_int_equal(harness_stop(h, SIGKILL), 128 + SIGKILL);
    for (const shub_receipt_t *r; (r = tclient_receipt(police, 200));) /* already sent */
        for (int i = 0; i < N; i++)
            if (memcmp(msgs[i].share.ev.id.bytes, r->id.bytes, SHUB_ID_SIZE) == 0)
                receipted[i] = true;
    tclient_destroy(&police);
    assert_int_equal(harness_start(h), 0);

    /* Every receipted share is in the store after the restart. */
    long stored = harness_count(h, "deliveries");
    int n_receipted = 0;
    for (int i = 0; i < N; i++)
        n_receipted += receipted[i];
    assert_true(stored >= n_receipted);

    /* The agent resends everything it holds no receipt for, and some it does. */
    police = online(h, "wmp");
    for (int i = 0; i < N; i++)
        assert_int_equal(tclient_send(police, &msgs[i]), 0);
    for (int got = 0; got < N; got++)
        assert_non_null(tclient_receipt(police, 5000));
    tclient_t *marac = online(h, "marac-coventry");
    int delivered = 0;
    for (const shub_deliver_t *d; (d = tclient_delivery(marac, 2000));) {
        tclient_ack(marac, &d->id);
        delivered++;
    }
    assert_int_equal(delivered, N);
    assert_int_equal(harness_count(h, "deliveries WHERE state='acknowledged'"), N);
    assert_int_equal(harness_count(h, "audit WHERE action='decide'"), N);
    shub_arena_destroy(&a);
    free(msgs);
    free(receipted);
    tclient_destroy(&police);
    tclient_destroy(&marac);
}

/* hub.yaml's checkpoint_ms (400 ms in the harness): a row appended while the
 * broker runs is signed within about that long, with no further traffic. */
static void test_quiet_row_is_signed_within_checkpoint_ms(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp"), *marac = online(h, "marac-coventry");
    const char *to[] = {"marac-coventry"};
    refer(police, NULL, to, 1, 16, "marac.referral");
    assert_int_equal(harness_count_until(h, "checkpoints WHERE upto_seq >= (SELECT max(seq) "
                                            "FROM audit WHERE action='decide')",
                                         1, 2000),
                     1);
    tclient_destroy(&police);
    tclient_destroy(&marac);
}

static void test_sigterm_exits_zero_with_checkpoint_at_head(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp");
    const char *to[] = {"marac-coventry"};
    for (int i = 0; i < 3; i++) {
        refer(police, NULL, to, 1, 16, "marac.referral");
    }
    tclient_destroy(&police);
    assert_int_equal(harness_stop(h, SIGTERM), 0);
    assert_int_equal(harness_count(h, "checkpoints WHERE upto_seq = (SELECT max(seq) FROM "
                                      "audit)"),
                     1);
    assert_true(harness_log_has(h, "stopped"));
}

static void test_keygen_writes_secret_with_mode_0600(void **state)
{
    harness_t *h = *state;
    char cmd[1024], path[400];
    snprintf(cmd, sizeof cmd, "%s --dir %s/keys newpartner >/dev/null",
             harness_program("protocol/sharehub-keygen"), h->dir);
    assert_int_equal(system(cmd), 0);
    struct stat st;
    snprintf(path, sizeof path, "%s/keys/newpartner.key", h->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s/keys/newpartner.pub", h->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    /* A second run refuses to overwrite the keypair (EX_CANTCREAT). */
    assert_int_equal(WEXITSTATUS(system(cmd)), 73);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_share_allowed_delivers_only_allowed_fields,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_share_denied_is_audited_and_never_delivered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_receipt_items_keep_their_own_explanations,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealing_key_is_replaced_after_a_second,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_witness_of_no_checkpoint_is_refused_bad_value, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_ack_and_resend_with_no_copy_pending_are_harmless, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_is_refused_and_logged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_secret_for_real_public_key_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_claiming_another_sender_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_dated_in_the_future_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_frames_answered_while_others_flow,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_recipient_receives_backlog_in_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_window_queues_then_pumps_as_acks_arrive,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_resend_after_kill9_is_delivered_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_verify_catches_edited_deleted_truncated_rows,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_reload_keeps_old_agreements, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_unacked_delivery_is_resent_then_dead_lettered, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_share_queued_under_suspended_agreement_is_not_delivered, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_silent_peer_is_marked_offline_and_shares_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_second_connection_with_a_bound_routing_id_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_mid_stream_loses_no_receipted_share,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_quiet_row_is_signed_within_checkpoint_ms,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_exits_zero_with_checkpoint_at_head,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen_writes_secret_with_mode_0600, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("broker", tests, NULL, NULL);
}
