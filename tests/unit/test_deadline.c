/*
 * test_deadline: the tracker of open deadlines. An acknowledgement deadline is
 * met by any answer from the recipient, an act deadline only by one to the
 * share's sender; an overdue deadline is escalated once and stays open until
 * answered; a failed store write leaves the tracker as it was, so the hub can
 * retry; the notice names the share and never its payload.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "sharehub/alloc.h"
#include "sharehub/deadline.h"
#include "sharehub/val.h"

#define HOUR 3600000

static shub_store_deadline_t referral(uint8_t id, int kind, uint32_t hours, int64_t at)
{
    shub_store_deadline_t d = {
        .recipient = "marac-coventry",
        .sender = "wmp",
        .event_type = "marac.referral",
        .area = "coventry",
        .agreement = "wm-marac",
        .agreement_version = 4,
        .flow = "referral",
        .kind = kind,
        .hours = hours,
        .started_ms = at,
        .due_ms = shub_deadline_due(at, hours, HOUR),
    };
    memset(d.event_id.bytes, id, SHUB_ID_SIZE);
    return d;
}

typedef struct seen {
    int calls, fail_at;
    shub_store_deadline_t last;
} seen_t;

static int record(const shub_store_deadline_t *d, void *ctx)
{
    seen_t *s = ctx;
    s->calls++;
    s->last = *d;
    return s->fail_at && s->calls == s->fail_at ? -1 : 0;
}

static void test_answer_any_reply_meets_ack_only_reply_to_sender_meets_act(void **state)
{
    (void)state;
    shub_deadline_t *dl = shub_deadline_new();
    shub_store_deadline_t ack = referral(1, SHUB_STORE_DEADLINE_ACK, 24, 1000);
    shub_store_deadline_t act = referral(1, SHUB_STORE_DEADLINE_ACT, 48, 1000);
    assert_int_equal(shub_deadline_add(dl, &ack), 0);
    assert_int_equal(shub_deadline_add(dl, &act), 0);
    seen_t seen = {0};
    const char *idva[] = {"idva-coventry"};
    /* an IDVA notification naming the referral: reviewed, not yet answered */
    assert_int_equal(shub_deadline_answer(dl, &ack.event_id, "marac-coventry", idva, 1,
                                          5000, record, &seen),
                     1);
    assert_int_equal(seen.last.kind, SHUB_STORE_DEADLINE_ACK);
    assert_int_equal(seen.last.answered_ms, 5000);
    assert_int_equal(shub_deadline_open(dl), 1);
    /* someone else answering it meets nothing */
    const char *wmp[] = {"wmp"};
    assert_int_equal(shub_deadline_answer(dl, &ack.event_id, "marac-dudley", wmp, 1, 6000,
                                          record, &seen),
                     0);
    /* the decision to the referrer */
    assert_int_equal(shub_deadline_answer(dl, &ack.event_id, "marac-coventry", wmp, 1,
                                          7000, record, &seen),
                     1);
    assert_int_equal(seen.last.kind, SHUB_STORE_DEADLINE_ACT);
    assert_int_equal(shub_deadline_open(dl), 0);
    shub_deadline_destroy(&dl);
    assert_null(dl);
}

static void test_overdue_escalates_once_and_stays_open_until_answered(void **state)
{
    (void)state;
    shub_deadline_t *dl = shub_deadline_new();
    shub_store_deadline_t late = referral(2, SHUB_STORE_DEADLINE_ACK, 24, 0);
    shub_store_deadline_t timely = referral(3, SHUB_STORE_DEADLINE_ACK, 24, 10 * HOUR);
    assert_int_equal(shub_deadline_add(dl, &late), 0);
    assert_int_equal(shub_deadline_add(dl, &timely), 0);
    seen_t seen = {0};
    assert_int_equal(shub_deadline_overdue(dl, 24 * HOUR - 1, 10, record, &seen), 0);
    assert_int_equal(shub_deadline_overdue(dl, 24 * HOUR, 10, record, &seen), 1);
    assert_memory_equal(seen.last.event_id.bytes, late.event_id.bytes, SHUB_ID_SIZE);
    assert_int_equal(seen.last.escalated_ms, 24 * HOUR);
    /* once: the next check finds nothing new */
    assert_int_equal(shub_deadline_overdue(dl, 25 * HOUR, 10, record, &seen), 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(shub_deadline_past_due(dl, 25 * HOUR), 1);
    /* the late answer still closes it; the timely one is answered in time */
    const char *wmp[] = {"wmp"};
    assert_int_equal(shub_deadline_answer(dl, &late.event_id, "marac-coventry", wmp, 1,
                                          26 * HOUR, record, &seen),
                     1);
    assert_true(seen.last.answered_ms > seen.last.due_ms);
    assert_int_equal(shub_deadline_answer(dl, &timely.event_id, "marac-coventry", wmp, 1,
                                          12 * HOUR, record, &seen),
                     1);
    assert_true(seen.last.answered_ms <= seen.last.due_ms);
    assert_int_equal(shub_deadline_overdue(dl, 100 * HOUR, 10, record, &seen), 0);
    shub_deadline_destroy(&dl);
}

static void test_overdue_failed_write_retried_at_next_check(void **state)
{
    (void)state;
    shub_deadline_t *dl = shub_deadline_new();
    shub_store_deadline_t a = referral(4, SHUB_STORE_DEADLINE_ACT, 1, 0);
    assert_int_equal(shub_deadline_add(dl, &a), 0);
    seen_t seen = {.fail_at = 1};
    assert_true(shub_deadline_overdue(dl, 2 * HOUR, 10, record, &seen) < 0);
    seen.fail_at = 0;
    assert_int_equal(shub_deadline_overdue(dl, 2 * HOUR, 10, record, &seen), 1);
    assert_int_equal(seen.calls, 2);
    shub_deadline_destroy(&dl);
}

static void test_overdue_bounded_per_call(void **state)
{
    (void)state;
    shub_deadline_t *dl = shub_deadline_new();
    for (uint8_t i = 10; i < 20; i++) {
        shub_store_deadline_t d = referral(i, SHUB_STORE_DEADLINE_ACK, 1, 0);
        assert_int_equal(shub_deadline_add(dl, &d), 0);
    }
    seen_t seen = {0};
    assert_int_equal(shub_deadline_overdue(dl, HOUR, 4, record, &seen), 4);
    assert_int_equal(shub_deadline_overdue(dl, HOUR, 4, record, &seen), 4);
    assert_int_equal(shub_deadline_overdue(dl, HOUR, 4, record, &seen), 2);
    assert_int_equal(shub_deadline_overdue(dl, HOUR, 4, record, &seen), 0);
    shub_deadline_destroy(&dl);
}

static void test_due_none_and_saturation(void **state)
{
    (void)state;
    assert_int_equal(shub_deadline_due(5, 0, HOUR), 0);
    assert_int_equal(shub_deadline_due(5, 2, 1000), 2005);
    assert_true(shub_deadline_due(INT64_MAX - 10, 4294967295u, 4294967295u) == INT64_MAX);
    assert_string_equal(shub_deadline_kind_name(SHUB_STORE_DEADLINE_ACK), "ack");
    assert_string_equal(shub_deadline_kind_name(SHUB_STORE_DEADLINE_ACT), "act");
}

static void test_notice_names_the_share_not_its_payload(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(1024);
    shub_store_deadline_t d = referral(5, SHUB_STORE_DEADLINE_ACK, 24, 0);
    shub_id_t id, reply;
    memset(id.bytes, 9, SHUB_ID_SIZE);
    shub_event_t ev;
    assert_int_equal(shub_deadline_notice(a, &d, &id, 25 * HOUR, &reply, &ev), 0);
    assert_string_equal(ev.type, SHUB_DEADLINE_NOTICE_TYPE);
    assert_ptr_equal(ev.reply_to, &reply);
    assert_memory_equal(reply.bytes, d.event_id.bytes, SHUB_ID_SIZE);
    assert_string_equal(ev.area, "coventry");
    assert_string_equal(shub_val_str_at(&ev.payload, "deadline"), "ack");
    assert_string_equal(shub_val_str_at(&ev.payload, "recipient"), "marac-coventry");
    assert_int_equal(shub_val_int_at(&ev.payload, "hours", 0), 24);
    assert_string_equal(shub_val_str_at(&ev.payload, "due"), "1970-01-02T00:00:00.000Z");
    assert_null(shub_val_get(&ev.payload, "victim"));
    char line[256];
    shub_deadline_explain(&d, line, sizeof line);
    assert_string_equal(line, "'marac.referral' from wmp not answered by marac-coventry "
                              "within 24 h (due 1970-01-02T00:00:00.000Z)");
    shub_arena_destroy(&a);
}

static void test_add_alloc_failure_enomem(void **state)
{
    (void)state;
    shub_deadline_t *dl = shub_deadline_new();
    shub_store_deadline_t d = referral(6, SHUB_STORE_DEADLINE_ACK, 1, 0);
    shub_alloc_fail_after(0);
    assert_int_equal(shub_deadline_add(dl, &d), SHUB_ENOMEM);
    shub_alloc_fail_after(-1);
    assert_int_equal(shub_deadline_open(dl), 0);
    assert_int_equal(shub_deadline_add(dl, &d), 0);
    d.answered_ms = 1; /* already answered: nothing to track */
    assert_int_equal(shub_deadline_add(dl, &d), 0);
    assert_int_equal(shub_deadline_open(dl), 1);
    shub_deadline_destroy(&dl);
    shub_deadline_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_any_reply_meets_ack_only_reply_to_sender_meets_act),
        cmocka_unit_test(test_overdue_escalates_once_and_stays_open_until_answered),
        cmocka_unit_test(test_overdue_failed_write_retried_at_next_check),
        cmocka_unit_test(test_overdue_bounded_per_call),
        cmocka_unit_test(test_due_none_and_saturation),
        cmocka_unit_test(test_notice_names_the_share_not_its_payload),
        cmocka_unit_test(test_add_alloc_failure_enomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
