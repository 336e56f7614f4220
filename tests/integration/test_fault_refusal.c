/*
 * Fault test: refusals of authenticated peers are audited, and no payload
 * value reaches the broker's files. A real broker and CURVE clients (wmp and
 * marac-coventry, both welcomed) send what the broker must refuse, every
 * payload carrying a marker string:
 *
 *   malformed          bytes that are not msgpack, and a SHARE cut short
 *                      in the middle of its payload
 *   future-event       a SHARE dated an hour ahead of the broker's clock
 *   sender-mismatch    a SHARE whose body names another sender
 *   payload-too-large  a SHARE whose sealed copy could not be delivered
 *   bad-value          a SHARE reusing an event id another organisation owns
 *
 * Each must be answered with ERROR and its code, and must leave an audit row
 * (action refuse, the reason code, the sender) that is durable by the time
 * the ERROR arrives: the broker is killed with SIGKILL as soon as each ERROR
 * is read, and the row must be there when it is restarted. Then the bytes of
 * the database, its WAL and the broker's log are searched for the marker.
 *
 * Prints `refusal: rounds=N refused=N audited=N marker_in_files=0 ...`.
 */
#define _GNU_SOURCE /* memmem */
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

#define MARKER "PAYLOAD-VALUE-5c1d8e77"

static const harness_org_t orgs[] = {
    {"wmp", "police", "all"},
    {"marac-coventry", "marac", "coventry"},
    {"idva-coventry", "idva", "coventry"},
    {"bcc", "local-authority", "birmingham-east, birmingham-west"},
};

enum { R_GARBAGE, R_CUT, R_FUTURE, R_SENDER, R_LARGE, R_REUSED, N_KINDS };

static const struct {
    const char *name, *code;
} kinds[N_KINDS] = {
    {"bytes that are not msgpack", "malformed"},
    {"a SHARE cut short in its payload", "malformed"},
    {"an event an hour ahead", "future-event"},
    {"a body naming another sender", "sender-mismatch"},
    {"a payload too large to deliver", "payload-too-large"},
    {"an event id another organisation owns", "bad-value"},
};

/* A referral to the MARAC whose payload carries the marker; with `big`, a
 * binary field large enough that its sealed copy would not fit a DELIVER. */
static void marked_share(shub_msg_t *m, shub_arena_t *a, bool big)
{
    static const char *const to[] = {"marac@coventry"};
    memset(m, 0, sizeof *m);
    m->type = SHUB_MSG_SHARE;
    share_fill(&m->share, a, "marac.referral", "coventry", to, 1, 16);
    shub_val_t v;
    assert_int_equal(shub_val_str(a, MARKER, strlen(MARKER), &v), 0);
    assert_int_equal(shub_val_put(a, &m->share.ev.payload, "note", v), 0);
    if (big) {
        size_t len = SHUB_MSG_MAX_BIN - 80;
        char *bytes = shub_arena_alloc(a, len);
        for (size_t i = 0; i < len; i++)
            bytes[i] = MARKER[i % (sizeof MARKER - 1)];
        assert_int_equal(shub_val_bin(a, bytes, len, &v), 0);
        assert_int_equal(shub_val_put(a, &m->share.ev.payload, "attachment", v), 0);
    }
}

/* Sends one refusal of `kind` and returns the ERROR's code (empty if none
 * came). `owned` is an event id wmp has had accepted. */
static void send_refused(tclient_t *wmp, tclient_t *marac, int kind,
                         const shub_id_t *owned, char code[64])
{
    shub_arena_t *a = shub_arena_new(0);
    shub_msg_t m;
    tclient_t *c = wmp;
    marked_share(&m, a, kind == R_LARGE);
    switch (kind) {
    case R_GARBAGE: {
        static const char junk[] = "\xc1 " MARKER;
        assert_int_equal(tclient_send_raw(c, junk, sizeof junk - 1), 0);
        break;
    }
    case R_CUT: {
        shub_buf_t buf = {0};
        shub_err_t err;
        assert_int_equal(shub_msg_encode(&m, &buf, &err), 0);
        const char *at = memmem(buf.data, buf.len, MARKER, strlen(MARKER));
        assert_non_null(at);
        size_t cut = (size_t)(at - (const char *)buf.data) + strlen(MARKER);
        assert_int_equal(tclient_send_raw(c, buf.data, cut), 0);
        shub_buf_free(&buf);
        break;
    }
    case R_FUTURE:
        m.share.ev.occurred_ms = shub_now_ms() + 3600 * 1000;
        assert_int_equal(tclient_send(c, &m), 0);
        break;
    case R_SENDER:
        m.share.from = "marac-coventry";
        assert_int_equal(tclient_send(c, &m), 0);
        break;
    case R_LARGE:
        assert_int_equal(tclient_send(c, &m), 0);
        break;
    case R_REUSED:
        c = marac;
        m.share.ev.id = *owned;
        assert_int_equal(tclient_send(c, &m), 0);
        break;
    }
    shub_msg_t *e = tclient_expect(c, SHUB_MSG_ERROR, 10000);
    snprintf(code, 64, "%s", e && e->error.code ? e->error.code : "");
    shub_msg_destroy(&e);
    shub_arena_destroy(&a);
}

/* wmp shares one event and gets its receipt: an id wmp owns from then on. */
static void owned_id(tclient_t *wmp, shub_id_t *id)
{
    shub_arena_t *a = shub_arena_new(0);
    shub_msg_t m;
    marked_share(&m, a, false);
    *id = m.share.ev.id;
    assert_int_equal(tclient_send(wmp, &m), 0);
    assert_non_null(tclient_receipt(wmp, 10000));
    shub_arena_destroy(&a);
}

static tclient_t *online(const harness_t *h, const char *org)
{
    tclient_t *c = tclient_new(h, org);
    assert_non_null(c);
    assert_int_equal(tclient_hello(c), 0);
    return c;
}

static int marker_files(const harness_t *h)
{
    static const char *const files[] = {"broker.db", "broker.db-wal", "broker.db-shm",
                                        "broker.log"};
    int found = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[400];
        fault_path(h, files[i], path, sizeof path);
        if (fault_file_has(path, MARKER, strlen(MARKER))) {
            fprintf(stderr, "refusal: the marker is in %s\n", path);
            found++;
        }
    }
    return found;
}

static void test_refusals_audited_before_answered_and_no_payload_value_kept(void **state)
{
    (void)state;
    harness_t *h = fault_harness(orgs, sizeof orgs / sizeof orgs[0]);
    assert_non_null(h);
    assert_int_equal(harness_start(h), 0);
    int rounds = fault_count(5, 1), refused = 0, audited = 0, wrong_code = 0;
    int marker_running = 0;
    for (int round = 0; round < rounds; round++) {
        for (int kind = 0; kind < N_KINDS; kind++) {
            tclient_t *wmp = online(h, "wmp"), *marac = online(h, "marac-coventry");
            shub_id_t owned;
            if (kind == R_REUSED)
                owned_id(wmp, &owned);
            char code[64], sql[300];
            snprintf(
                sql, sizeof sql,
                "audit WHERE action = 'refuse' AND decision = 'refused' AND reason = "
                "'%s' AND sender = '%s'",
                kinds[kind].code, kind == R_REUSED ? "marac-coventry" : "wmp");
            long before = harness_count(h, sql);
            send_refused(wmp, marac, kind, &owned, code);
            /* The ERROR is the broker's word that the refusal happened: the
             * row must be durable by now, whatever happens next. */
            assert_int_equal(harness_stop(h, SIGKILL), 128 + SIGKILL);
            refused += code[0] != '\0';
            if (strcmp(code, kinds[kind].code) != 0) {
                wrong_code++;
                fprintf(stderr, "refusal: %s answered '%s', expected '%s'\n",
                        kinds[kind].name, code, kinds[kind].code);
            }
            long after = harness_count(h, sql);
            if (after == before + 1)
                audited++;
            else
                fprintf(stderr,
                        "refusal: %s: %ld audit rows after the ERROR, expected %ld\n",
                        kinds[kind].name, after, before + 1);
            marker_running += marker_files(h);
            tclient_destroy(&wmp);
            tclient_destroy(&marac);
            assert_int_equal(harness_start(h), 0);
        }
    }
    /* Rows name the reason, never a value: no explanation quotes the body. */
    long with_text =
        harness_count(h, "audit WHERE action = 'refuse' AND (explanation LIKE "
                         "'%" MARKER "%' OR reason IS NULL)");
    assert_int_equal(harness_stop(h, SIGTERM), 0);
    int marker_stopped = marker_files(h);
    printf("refusal: kinds=%d rounds=%d sent=%d refused=%d wrong_code=%d audited=%d "
           "marker_in_files=%d marker_after_stop=%d\n",
           N_KINDS, rounds, rounds * N_KINDS, refused, wrong_code, audited,
           marker_running, marker_stopped);
    fflush(stdout);
    assert_int_equal(refused, rounds * N_KINDS);
    assert_int_equal(wrong_code, 0);
    assert_int_equal(audited, rounds * N_KINDS);
    assert_int_equal(with_text, 0);
    assert_int_equal(marker_running, 0);
    assert_int_equal(marker_stopped, 0);
    fault_destroy(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            test_refusals_audited_before_answered_and_no_payload_value_kept,
            fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
