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

#include <stdbool.h>
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

/* The tracker against a plain model: thousands of deadlines over a few
 * thousand shares (half of the ids alike in their last eight bytes, where
 * an unkeyed hash of a UUIDv7 would look), answered at random from and to
 * random organisations while new ones are added. Every answer meets exactly
 * the deadlines the model says, each once, and what stays open agrees. */
enum { MODEL_EVENTS = 3000, MODEL_ORGS = 4 };
static const char *const model_orgs[MODEL_ORGS] = {"wmp", "marac-coventry", "idva-coventry",
                                                   "probation-wm"};
typedef struct model_dl {
    int event, recipient, sender, kind;
    bool open;
} model_dl_t;
typedef struct model {
    shub_id_t ids[MODEL_EVENTS];
    model_dl_t *dls;
    size_t n;
    int calls, wrong;
} model_t;

static uint64_t model_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int model_met(const shub_store_deadline_t *d, void *ctx)
{
    model_t *m = ctx;
    m->calls++;
    bool found = false;
    for (size_t i = 0; i < m->n && !found; i++) {
        model_dl_t *e = &m->dls[i];
        found = e->open && e->kind == d->kind &&
                memcmp(m->ids[e->event].bytes, d->event_id.bytes, SHUB_ID_SIZE) == 0 &&
                strcmp(model_orgs[e->recipient], d->recipient) == 0 &&
                strcmp(model_orgs[e->sender], d->sender) == 0;
    }
    m->wrong += !found;
    return 0;
}

static void model_add(shub_deadline_t *dl, model_t *m, uint64_t *x)
{
    int ev = (int)(model_rand(x) % MODEL_EVENTS), kind = 1 + (int)(model_rand(x) % 2);
    int sender = (int)(model_rand(x) % MODEL_ORGS);
    int recipient = (sender + 1 + (int)(model_rand(x) % (MODEL_ORGS - 1))) % MODEL_ORGS;
    for (size_t i = 0; i < m->n; i++) /* one per share, recipient and kind */
        if (m->dls[i].open && m->dls[i].event == ev && m->dls[i].recipient == recipient &&
            m->dls[i].kind == kind)
            return;
    shub_store_deadline_t d = referral(0, kind, 24, 1000);
    d.event_id = m->ids[ev];
    d.sender = model_orgs[sender];
    d.recipient = model_orgs[recipient];
    assert_int_equal(shub_deadline_add(dl, &d), 0);
    m->dls[m->n++] = (model_dl_t){ev, recipient, sender, kind, true};
}

static void test_answers_agree_with_a_model_across_many_open(void **state)
{
    (void)state;
    enum { ADDS = 8000, ANSWERS = 12000 };
    model_t m = {.dls = shub_calloc(ADDS * 2, sizeof(model_dl_t))};
    assert_non_null(m.dls);
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < MODEL_EVENTS; i++)
        for (int b = 0; b < SHUB_ID_SIZE; b++) /* odd ids share their last 8 bytes */
            m.ids[i].bytes[b] = b >= 8 && i % 2 ? 0xA5 : (uint8_t)model_rand(&x);
    shub_deadline_t *dl = shub_deadline_new();
    assert_non_null(dl);
    for (int i = 0; i < ADDS; i++)
        model_add(dl, &m, &x);
    size_t open = 0, met_total = 0;
    for (size_t i = 0; i < m.n; i++)
        open += m.dls[i].open;
    assert_int_equal(shub_deadline_open(dl), open);
    for (int a = 0; a < ANSWERS; a++) {
        int ev = (int)(model_rand(&x) % MODEL_EVENTS);
        int from = (int)(model_rand(&x) % MODEL_ORGS), to = (int)(model_rand(&x) % MODEL_ORGS);
        const char *to_list[] = {model_orgs[to]};
        int expect = 0;
        for (size_t i = 0; i < m.n; i++) {
            model_dl_t *e = &m.dls[i];
            expect += e->open && e->event == ev && e->recipient == from &&
                      (e->kind == SHUB_STORE_DEADLINE_ACK || e->sender == to);
        }
        int calls = m.calls;
        int got = shub_deadline_answer(dl, &m.ids[ev], model_orgs[from], to_list, 1, 5000,
                                       model_met, &m);
        assert_int_equal(got, expect);
        assert_int_equal(m.calls - calls, expect);
        for (size_t i = 0; i < m.n; i++) {
            model_dl_t *e = &m.dls[i];
            if (e->open && e->event == ev && e->recipient == from &&
                (e->kind == SHUB_STORE_DEADLINE_ACK || e->sender == to)) {
                e->open = false;
                open--;
            }
        }
        met_total += (size_t)got;
        if (a % 3 == 0 && m.n < ADDS * 2) { /* new shares while others close */
            size_t before = m.n;
            model_add(dl, &m, &x);
            open += m.n - before;
        }
        assert_int_equal(shub_deadline_open(dl), open);
    }
    assert_int_equal(m.wrong, 0);
    print_message("deadlines: %zu added, %zu met by %d answers, %zu open\n", m.n, met_total,
                  ANSWERS, open);
    assert_true(met_total > 1000); /* the answers did meet deadlines */
    assert_true(open > 1000);      /* and many stayed open around them */
    shub_deadline_destroy(&dl);
    shub_free(m.dls);
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
        cmocka_unit_test(test_answers_agree_with_a_model_across_many_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
