/*
 * test_minimise: a recipient's copy holds only what its flow allows, and the
 * audit's account of it names fields and codes, never values. Payloads are
 * built with val.h's builders, as the codec builds a decoded one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sharehub/alloc.h"
#include "sharehub/minimise.h"

static shub_val_t text(shub_arena_t *a, const char *s)
{
    shub_val_t v;
    assert_int_equal(shub_val_str(a, s, strlen(s), &v), 0);
    return v;
}

static shub_val_t num(int64_t i)
{
    return (shub_val_t){.type = SHUB_VAL_INT, .as.i = i};
}

/* A MARAC referral: a victim, a score, a decision code, free text, actions. */
static shub_val_t referral(shub_arena_t *a)
{
    shub_val_t p = shub_val_map(), victim = shub_val_map(), actions = {.type = SHUB_VAL_ARRAY};
    assert_int_equal(shub_val_put(a, &victim, "name", text(a, "Jane Example")), 0);
    assert_int_equal(shub_val_put(a, &victim, "dob", text(a, "1991-03-07")), 0);
    assert_int_equal(shub_val_put(a, &p, "victim", victim), 0);
    assert_int_equal(shub_val_put(a, &p, "dash_score", num(17)), 0);
    assert_int_equal(shub_val_put(a, &p, "decision", text(a, "accepted")), 0);
    assert_int_equal(shub_val_put(a, &p, "summary", text(a, "Free text about Jane")), 0);
    for (int i = 0; i < 2; i++) {
        shub_val_t act = shub_val_map();
        assert_int_equal(shub_val_put(a, &act, "id", text(a, i ? "A-2" : "A-1")), 0);
        assert_int_equal(shub_val_put(a, &act, "owner", text(a, "wmp")), 0);
        assert_int_equal(shub_val_push(a, &actions, act), 0);
    }
    assert_int_equal(shub_val_put(a, &p, "open_actions", actions), 0);
    return p;
}

static void test_minimise_keeps_allowed_strips_rest_names_only(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(4096);
    shub_val_t p = referral(a);
    const char *allowed[] = {"victim.name", "dash_score", "open_actions.id", "decision"};
    const char *report[] = {"decision", "dash_score", "summary"};
    shub_minimised_t m;
    shub_err_t err;
    assert_int_equal(shub_minimise(a, &p, allowed, 4, report, 3, &m, &err), 0);
    assert_string_equal(m.shared, "victim.name,dash_score,decision,open_actions.id");
    assert_string_equal(m.stripped, "victim.dob,summary,open_actions.owner");
    assert_string_equal(m.facts, "decision=accepted,dash_score=17");
    assert_non_null(shub_val_at(&m.payload, "victim.name"));
    assert_null(shub_val_at(&m.payload, "victim.dob"));
    assert_null(shub_val_at(&m.payload, "summary"));
    /* no value ever appears in the account */
    assert_null(strstr(m.shared, "Jane"));
    assert_null(strstr(m.stripped, "Jane"));
    shub_arena_destroy(&a);
}

static void test_minimise_free_text_in_a_report_field_is_not_a_code(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(4096);
    shub_val_t p = referral(a);
    const char *allowed[] = {"*"};
    const char *report[] = {"summary", "victim"};
    shub_minimised_t m;
    shub_err_t err;
    assert_int_equal(shub_minimise(a, &p, allowed, 1, report, 2, &m, &err), 0);
    assert_string_equal(m.facts, "summary=(not a code),victim=(not a code)");
    assert_string_equal(m.stripped, "");
    shub_arena_destroy(&a);
}

static void test_minimise_nothing_allowed_shares_nothing(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(4096);
    shub_val_t p = referral(a);
    shub_minimised_t m;
    shub_err_t err;
    assert_int_equal(shub_minimise(a, &p, NULL, 0, NULL, 0, &m, &err), 0);
    assert_string_equal(m.shared, "");
    assert_string_equal(m.stripped, "victim,dash_score,decision,summary,open_actions");
    assert_null(m.facts);
    assert_int_equal(m.payload.len, 0);
    shub_arena_destroy(&a);
}

static void test_leaves_name_every_field_once(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(4096);
    shub_val_t p = referral(a);
    const char *leaves;
    shub_err_t err;
    assert_int_equal(shub_minimise_leaves(a, &p, &leaves, &err), 0);
    assert_string_equal(leaves, "victim.name,victim.dob,dash_score,decision,summary,"
                                "open_actions.id,open_actions.owner");
    shub_arena_destroy(&a);
}

static void test_leaves_of_thousands_of_fields_cut_with_ellipsis(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(65536);
    shub_val_t p = shub_val_map();
    for (int i = 0; i < 2000; i++) {
        char key[32];
        snprintf(key, sizeof key, "field_%04d", i);
        assert_int_equal(shub_val_put(a, &p, key, num(i)), 0);
    }
    const char *leaves;
    shub_err_t err;
    assert_int_equal(shub_minimise_leaves(a, &p, &leaves, &err), 0);
    size_t n = strlen(leaves);
    assert_true(n <= SHUB_MINIMISE_MAX_TEXT);
    assert_string_equal(leaves + n - 4, ",...");
    assert_int_equal(strncmp(leaves, "field_0000,field_0001,", 22), 0);
    shub_arena_destroy(&a);
}

static void test_minimise_not_a_map_einval(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(256);
    shub_val_t v = num(3);
    shub_minimised_t m;
    shub_err_t err;
    assert_int_equal(shub_minimise(a, &v, NULL, 0, NULL, 0, &m, &err), SHUB_EINVAL);
    assert_string_equal(err.msg, "minimise: the payload is not a map");
    shub_arena_destroy(&a);
}

static void test_minimise_alloc_failure_enomem(void **state)
{
    (void)state;
    shub_arena_t *src = shub_arena_new(4096);
    shub_val_t p = referral(src);
    const char *allowed[] = {"victim.name", "open_actions.id"};
    int rc = -1;
    long n;
    for (n = 0; n < 100; n++) {
        shub_arena_t *a = shub_arena_new(16);
        shub_minimised_t m;
        shub_err_t err;
        shub_alloc_fail_after(n);
        rc = a ? shub_minimise(a, &p, allowed, 2, NULL, 0, &m, &err) : SHUB_ENOMEM;
        shub_alloc_fail_after(-1);
        shub_arena_destroy(&a);
        if (rc == 0)
            break;
        assert_int_equal(rc, SHUB_ENOMEM);
    }
    assert_int_equal(rc, 0);
    assert_true(n > 0);
    shub_arena_destroy(&src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimise_keeps_allowed_strips_rest_names_only),
        cmocka_unit_test(test_minimise_free_text_in_a_report_field_is_not_a_code),
        cmocka_unit_test(test_minimise_nothing_allowed_shares_nothing),
        cmocka_unit_test(test_leaves_name_every_field_once),
        cmocka_unit_test(test_leaves_of_thousands_of_fields_cut_with_ellipsis),
        cmocka_unit_test(test_minimise_not_a_map_einval),
        cmocka_unit_test(test_minimise_alloc_failure_enomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
