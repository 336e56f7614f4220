/*
 * test_config_errors: what a person sees for a mistake in each kind of file
 * they write, hub.yaml, orgs.yaml, an agreement and a scenario: exactly one
 * line, "file:line:column: message", pointing at the mistake itself and
 * saying what to do about it. The fixtures under tests/fixtures/errors/ each
 * hold one known mistake in an otherwise good configuration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sharehub/config.h"
#include "sharehub/profile.h"

#define FIX SHUB_FIXTURES "/errors/"

typedef struct lines {
    char v[4][512];
    int n;
} lines_t;

static void collect(const shub_err_t *err, void *ctx)
{
    lines_t *l = ctx;
    if (l->n < 4)
        shub_err_format(err, l->v[l->n], sizeof l->v[0]);
    l->n++;
}

/* Loads the configuration directory FIX<dir> and expects exactly `want`. */
static void expect_config_error(const char *dir, const char *want)
{
    shub_config_t *cfg = NULL;
    lines_t l = {.n = 0};
    assert_int_equal(shub_config_load(dir, NULL, &cfg, collect, &l), SHUB_ECONFIG);
    assert_null(cfg);
    if (l.n != 1 || strcmp(l.v[0], want) != 0)
        fail_msg("%d errors, first:\n  %s\nwant:\n  %s", l.n, l.v[0], want);
}

static void test_hub_yaml_tab_is_called_a_tab_at_its_place(void **state)
{
    (void)state;
    expect_config_error(FIX "hub", FIX "hub/hub.yaml:4:1: yaml: a tab character here: "
                                       "indent with spaces only");
}

static void test_orgs_yaml_colon_in_a_value_gets_a_hint(void **state)
{
    (void)state;
    expect_config_error(FIX "orgs", FIX
                        "orgs/orgs.yaml:9:25: yaml: mapping values are not allowed in "
                        "this context: a value that contains ': ' must be in quotes, or "
                        "this line is indented too far");
}

static void test_agreement_unknown_class_names_value_and_choices(void **state)
{
    (void)state;
    expect_config_error(
        FIX "agreement",
        FIX "agreement/agreements/mini.yaml:17:37: 'data_dictionary[1].class' "
            "must be one of personal, special-category, criminal-offence, "
            "child, anonymous, not 'secret'");
}

static void test_scenario_percent_for_a_fraction_names_value(void **state)
{
    (void)state;
    shub_scenario_t *s = NULL;
    shub_err_t err;
    char line[512];
    assert_int_equal(shub_scenario_load(FIX "scenario.yaml", &s, &err), SHUB_ECONFIG);
    assert_null(s);
    assert_string_equal(shub_err_format(&err, line, sizeof line), FIX
                        "scenario.yaml:5:18: 'marac.move_fraction' must be a number from "
                        "0 to 1, not '5%'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hub_yaml_tab_is_called_a_tab_at_its_place),
        cmocka_unit_test(test_orgs_yaml_colon_in_a_value_gets_a_hint),
        cmocka_unit_test(test_agreement_unknown_class_names_value_and_choices),
        cmocka_unit_test(test_scenario_percent_for_a_fraction_names_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
