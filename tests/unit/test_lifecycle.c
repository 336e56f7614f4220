/*
 * test_lifecycle: what --check warns of and when an owner is told, on the
 * agreement of tests/fixtures/config/lifecycle/ (active, in force through
 * 2026-03-31, review due 2025-10-01, owner wmp, signed off by two parties).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sharehub/lifecycle.h"
#include "sharehub/time.h"

#define FIX SHUB_FIXTURES "/config/lifecycle"
#define DAY 86400000LL
#define END 1775001600000LL /* 2026-04-01T00:00:00Z: the first ms no longer in force */

typedef struct seen {
    shub_lifecycle_finding_t v[8];
    size_t n;
} seen_t;

static void collect(const shub_lifecycle_finding_t *f, void *ctx)
{
    seen_t *s = ctx;
    if (s->n < 8)
        s->v[s->n++] = *f;
}

static int setup(void **state)
{
    shub_config_t *cfg = NULL;
    if (shub_config_load(FIX, NULL, &cfg, NULL, NULL) != 0)
        return -1;
    *state = cfg;
    return 0;
}

static int teardown(void **state)
{
    shub_config_t *cfg = *state;
    shub_config_destroy(&cfg);
    return 0;
}

static void test_lifecycle_check_ten_days_before_expiry_warns(void **state)
{
    seen_t s = {.n = 0};
    size_t n = shub_lifecycle_check(*state, END - 10 * DAY - 3600000, 30, collect, &s);
    assert_int_equal(n, 2); /* expiring, and the review long overdue */
    assert_int_equal(s.v[0].due, SHUB_DUE_EXPIRING);
    assert_string_equal(s.v[0].code, "expiring");
    assert_int_equal(s.v[0].days, 10);
    assert_non_null(strstr(s.v[0].text, "agreement 'mini' v2"));
    assert_non_null(strstr(s.v[0].text, "expires at the end of 2026-03-31, in 10 days"));
    assert_int_equal(s.v[1].due, SHUB_DUE_REVIEW_OVERDUE);
    assert_non_null(strstr(s.v[1].text, "was due for review on 2025-10-01"));
    assert_non_null(strstr(s.v[1].text, "days ago"));
}

static void test_lifecycle_check_outside_window_and_after_expiry(void **state)
{
    seen_t s = {.n = 0};
    /* 2025-06-01: review in 122 days, expiry later: nothing within 30 days */
    assert_int_equal(shub_lifecycle_check(*state, 1748736000000LL, 30, collect, &s), 0);
    /* with a 150-day window the review is due */
    assert_int_equal(shub_lifecycle_check(*state, 1748736000000LL, 150, collect, &s), 1);
    assert_string_equal(s.v[0].code, "review-due");
    s.n = 0;
    assert_int_equal(shub_lifecycle_check(*state, END + 2 * DAY, 30, collect, &s), 2);
    assert_string_equal(s.v[0].code, "expired");
    assert_non_null(strstr(s.v[0].text, "expired at the end of 2026-03-31, 2 days ago"));
}

static void test_lifecycle_notice_due_only_before_expiry(void **state)
{
    const shub_agreement_t *ag = shub_config_agreement_at(*state, 0);
    assert_true(shub_lifecycle_notice_due(ag, END - 10 * DAY, 30));
    assert_true(shub_lifecycle_notice_due(ag, END - 1, 30));
    assert_false(shub_lifecycle_notice_due(ag, END, 30));
    assert_false(shub_lifecycle_notice_due(ag, END - 31 * DAY, 30));
    assert_true(shub_lifecycle_notice_due(ag, END - 31 * DAY, 40));
}

static void test_lifecycle_notice_names_agreement_and_days(void **state)
{
    const shub_agreement_t *ag = shub_config_agreement_at(*state, 0);
    shub_arena_t *arena = shub_arena_new(1024);
    shub_event_t ev;
    assert_int_equal(shub_lifecycle_notice(arena, ag, END - 10 * DAY - 5, &ev, NULL), 0);
    assert_string_equal(ev.type, SHUB_LIFECYCLE_NOTICE_TYPE);
    assert_string_equal(shub_val_str_at(&ev.payload, "agreement"), "mini");
    assert_int_equal(shub_val_int_at(&ev.payload, "version", 0), 2);
    assert_string_equal(shub_val_str_at(&ev.payload, "valid_until"), "2026-03-31");
    assert_int_equal(shub_val_int_at(&ev.payload, "days_left", -1), 10);
    assert_int_equal(ev.occurred_ms, END - 10 * DAY - 5);
    shub_arena_destroy(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle_check_ten_days_before_expiry_warns),
        cmocka_unit_test(test_lifecycle_check_outside_window_and_after_expiry),
        cmocka_unit_test(test_lifecycle_notice_due_only_before_expiry),
        cmocka_unit_test(test_lifecycle_notice_names_agreement_and_days),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
