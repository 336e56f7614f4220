/*
 * test_whatif: past decisions re-decided under drafts of the agreement in
 * tests/fixtures/whatif/ (agreements/ is the one in force: police refer to
 * the MARAC of the area when the DASH score is 14 or more):
 *
 *   draft-basis  the referral flow narrowed to the safeguarding basis
 *   draft-open   no condition, and incident.summary no longer carried
 *   draft-score  DASH >= 16 (which the log cannot judge) or a referral
 *                route of marac-direct (a report code the log keeps)
 *
 * The rows are audit rows as the broker writes them: names and codes only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharehub/config.h"
#include "sharehub/whatif.h"

#define DIR    SHUB_FIXTURES "/whatif"
#define AT     1768478400000LL /* 2026-01-15T12:00:00Z */
#define FIELDS "victim.name,risk.dash_score,incident.summary,referral.route"

typedef struct fx {
    shub_config_t *live;
    char hash[65]; /* test-marac's content hash, as rows name it */
} fx_t;

static int setup(void **state)
{
    static fx_t fx;
    shub_agreement_info_t info;
    if (shub_config_load(DIR, NULL, &fx.live, NULL, NULL) != 0 ||
        shub_config_agreement_info(fx.live, 0, &info) != 0)
        return -1;
    snprintf(fx.hash, sizeof fx.hash, "%s", info.content_hash);
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    shub_config_destroy(&fx->live);
    return 0;
}

static shub_config_t *draft(const char *name)
{
    char path[512];
    shub_config_t *cfg = NULL;
    snprintf(path, sizeof path, "%s/%s", DIR, name);
    shub_config_opts_t o = {.agreements_dir = path};
    assert_int_equal(shub_config_load(DIR, &o, &cfg, NULL, NULL), 0);
    return cfg;
}

/* A referral from wmp to marac-coventry as the log holds it. */
static shub_audit_row_t referral(const fx_t *fx, bool allowed, const char *basis,
                                 const char *facts)
{
    static int64_t seq;
    shub_audit_row_t r = {
        .seq = ++seq,
        .at_ms = AT,
        .action = "decide",
        .decision = allowed ? "allow" : "deny",
        .event_type = "marac.referral",
        .sender = "wmp",
        .recipient = "marac-coventry",
        .reason = allowed ? NULL : "condition-failed",
        .agreement = "test-marac",
        .agreement_version = 2,
        .agreement_hash = fx->hash,
        .flow = "referral",
        .purpose = "marac-risk-management",
        .legal_basis = basis,
        .consent = "given",
        .area = "coventry",
        .fields = FIELDS,
        .fields_shared = allowed ? FIELDS : NULL,
        .facts = allowed ? facts : NULL,
    };
    return r;
}

static shub_whatif_totals_t run(shub_whatif_t *w, const shub_audit_row_t *rows, size_t n)
{
    shub_whatif_totals_t t;
    shub_err_t err;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(shub_whatif_add(w, &rows[i], &err), 0);
    shub_whatif_totals(w, &t);
    return t;
}

/* The count a result's section gives for one (agreement, flow, key, change). */
static long cell_count(const shub_query_result_t *r, const char *section,
                       const char *key_col, const char *key, const char *change)
{
    for (size_t i = 0; i < shub_query_row_count(r, section); i++) {
        const char *k = shub_query_cell(r, section, i, key_col);
        const char *c = shub_query_cell(r, section, i, "change");
        if (k && c && strcmp(k, key) == 0 && strcmp(c, change) == 0)
            return atol(shub_query_cell(r, section, i, "shares"));
    }
    return 0;
}

static void test_whatif_add_same_agreements_changes_nothing(void **state)
{
    fx_t *fx = *state;
    shub_whatif_t *w = NULL;
    shub_audit_row_t rows[] = {
        referral(fx, true, "uk-gdpr-6-1-e", "referral.route=police"),
        referral(fx, false, "uk-gdpr-6-1-e", NULL),
    };
    assert_int_equal(shub_whatif_new(fx->live, fx->live, &w, NULL), 0);
    shub_whatif_totals_t t = run(w, rows, 2);
    /* The DASH score is in no row, but each row's own decision judged the
     * very condition the draft has. */
    assert_int_equal(t.decisions, 2);
    assert_int_equal(t.unchanged, 2);
    assert_int_equal(t.undecidable, 0);
    assert_int_equal(t.fields_changed, 0);
    shub_whatif_destroy(&w);
    assert_null(w);
}

static void test_whatif_add_without_live_config_is_undecidable(void **state)
{
    fx_t *fx = *state;
    shub_whatif_t *w = NULL;
    shub_audit_row_t rows[] = {referral(fx, true, "uk-gdpr-6-1-e", NULL)};
    assert_int_equal(shub_whatif_new(fx->live, NULL, &w, NULL), 0);
    shub_whatif_totals_t t = run(w, rows, 1);
    assert_int_equal(t.undecidable, 1);
    assert_int_equal(t.unchanged, 0);
    shub_whatif_destroy(&w);
}

static void test_whatif_add_narrowed_basis_newly_denies(void **state)
{
    fx_t *fx = *state;
    shub_config_t *d = draft("draft-basis");
    shub_whatif_t *w = NULL;
    shub_query_result_t *r = NULL;
    shub_audit_row_t rows[] = {
        referral(fx, true, "uk-gdpr-6-1-e", NULL),
        referral(fx, true, "uk-gdpr-6-1-e", NULL),
        referral(fx, true, "dpa-2018-sch1-para18", NULL),
        referral(fx, false, "uk-gdpr-6-1-e", NULL),
    };
    assert_int_equal(shub_whatif_new(d, fx->live, &w, NULL), 0);
    shub_whatif_totals_t t = run(w, rows, 4);
    assert_int_equal(t.newly_denied, 2);
    assert_int_equal(t.unchanged, 2);
    assert_int_equal(t.newly_allowed + t.undecidable, 0);
    assert_int_equal(shub_whatif_result(w, &r, NULL), 0);
    assert_int_equal(cell_count(r, "flows", "flow", "referral", "newly-denied"), 2);
    for (size_t i = 0; i < shub_query_row_count(r, "flows"); i++)
        if (strcmp(shub_query_cell(r, "flows", i, "change"), "newly-denied") == 0)
            assert_string_equal(shub_query_cell(r, "flows", i, "reason"),
                                "legal-basis-not-permitted");
    assert_string_equal(shub_query_cell(r, "whatif", 0, "newly_denied"), "2");
    shub_query_result_destroy(&r);
    shub_whatif_destroy(&w);
    shub_config_destroy(&d);
}

static void test_whatif_add_open_draft_allows_and_strips(void **state)
{
    fx_t *fx = *state;
    shub_config_t *d = draft("draft-open");
    shub_whatif_t *w = NULL;
    shub_query_result_t *r = NULL;
    shub_audit_row_t rows[] = {
        referral(fx, true, "uk-gdpr-6-1-e", NULL),
        referral(fx, false, "uk-gdpr-6-1-e", NULL),
    };
    assert_int_equal(shub_whatif_new(d, fx->live, &w, NULL), 0);
    shub_whatif_totals_t t = run(w, rows, 2);
    assert_int_equal(t.newly_allowed, 1);
    assert_int_equal(t.unchanged, 1);
    assert_int_equal(t.fields_changed, 1);
    assert_int_equal(shub_whatif_result(w, &r, NULL), 0);
    assert_int_equal(cell_count(r, "fields", "field", "incident.summary", "newly-stripped"),
                     1);
    assert_int_equal(cell_count(r, "fields", "field", "victim.name", "newly-stripped"), 0);
    shub_query_result_destroy(&r);
    shub_whatif_destroy(&w);
    shub_config_destroy(&d);
}

static void test_whatif_add_condition_on_unkept_value_is_undecidable(void **state)
{
    fx_t *fx = *state;
    shub_config_t *d = draft("draft-score");
    shub_whatif_t *w = NULL;
    shub_audit_row_t rows[] = {
        /* DASH unknown, route police: the answer rests on the score */
        referral(fx, true, "uk-gdpr-6-1-e", "referral.route=police"),
        /* the route alone settles it */
        referral(fx, true, "uk-gdpr-6-1-e", "referral.route=marac-direct"),
        /* a deny keeps no facts at all */
        referral(fx, false, "uk-gdpr-6-1-e", NULL),
    };
    assert_int_equal(shub_whatif_new(d, fx->live, &w, NULL), 0);
    shub_whatif_totals_t t = run(w, rows, 3);
    assert_int_equal(t.undecidable, 2);
    assert_int_equal(t.unchanged, 1);
    assert_int_equal(t.newly_denied + t.newly_allowed, 0);
    shub_whatif_destroy(&w);
    shub_config_destroy(&d);
}

static void test_whatif_add_ignores_other_actions_and_window(void **state)
{
    fx_t *fx = *state;
    shub_whatif_t *w = NULL;
    shub_audit_row_t ack = referral(fx, true, "uk-gdpr-6-1-e", NULL);
    ack.action = "ack";
    ack.decision = "acknowledged";
    assert_int_equal(shub_whatif_new(fx->live, fx->live, &w, NULL), 0);
    shub_whatif_totals_t t = run(w, &ack, 1);
    assert_int_equal(t.decisions, 0);
    shub_whatif_destroy(&w);
}

static void test_whatif_event_rebuilds_names_and_codes(void **state)
{
    (void)state;
    shub_arena_t *arena = shub_arena_new(1024);
    shub_audit_row_t row = {
        .seq = 7,
        .action = "decide",
        .decision = "allow",
        .event_type = "marac.referral.decision",
        .consent = "refused",
        .override = "risk-of-serious-harm",
        .fields = "decision.status,decision.reason,meeting.date,children.name",
        .facts = "decision.status=withdrawn,decision.count=3,decision.urgent=true",
    };
    shub_event_t ev;
    bool complete = false;
    assert_int_equal(shub_whatif_event(arena, &row, &ev, &complete, NULL), 0);
    assert_true(complete);
    assert_int_equal(ev.consent, SHUB_CONSENT_REFUSED);
    assert_string_equal(ev.override, "risk-of-serious-harm");
    assert_string_equal(shub_val_str_at(&ev.payload, "decision.status"), "withdrawn");
    assert_int_equal(shub_val_int_at(&ev.payload, "decision.count", 0), 3);
    assert_true(shub_val_bool_at(&ev.payload, "decision.urgent"));
    const shub_val_t *v = shub_val_at(&ev.payload, "decision.reason");
    assert_non_null(v);
    assert_int_equal(v->type, SHUB_VAL_NIL); /* named, value not kept */
    assert_non_null(shub_val_at(&ev.payload, "children.name"));
    assert_null(shub_val_at(&ev.payload, "victim"));

    row.fields = "decision.status,...";
    assert_int_equal(shub_whatif_event(arena, &row, &ev, &complete, NULL), 0);
    assert_false(complete);
    shub_arena_destroy(&arena);
}

static void test_whatif_add_malformed_row_counts_undecidable(void **state)
{
    fx_t *fx = *state;
    shub_whatif_t *w = NULL;
    shub_audit_row_t rows[3];
    rows[0] = referral(fx, true, "uk-gdpr-6-1-e", NULL);
    rows[0].fields = "victim..name,risk";
    rows[1] = referral(fx, true, "uk-gdpr-6-1-e", "no equals sign");
    rows[2] = referral(fx, true, NULL, NULL);
    rows[2].sender = NULL;
    rows[2].event_type = NULL;
    assert_int_equal(shub_whatif_new(fx->live, fx->live, &w, NULL), 0);
    shub_whatif_totals_t t = run(w, rows, 3);
    assert_int_equal(t.decisions, 3);
    assert_int_equal(t.undecidable, 2);
    assert_int_equal(t.newly_denied, 1); /* no sender: nobody may send it */
    shub_whatif_destroy(&w);
}

static void test_whatif_new_null_args_einval(void **state)
{
    fx_t *fx = *state;
    shub_whatif_t *w = NULL;
    assert_int_equal(shub_whatif_new(NULL, NULL, &w, NULL), SHUB_EINVAL);
    assert_int_equal(shub_whatif_new(fx->live, NULL, NULL, NULL), SHUB_EINVAL);
    assert_int_equal(shub_whatif_add(NULL, NULL, NULL), SHUB_EINVAL);
    shub_whatif_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whatif_add_same_agreements_changes_nothing),
        cmocka_unit_test(test_whatif_add_without_live_config_is_undecidable),
        cmocka_unit_test(test_whatif_add_narrowed_basis_newly_denies),
        cmocka_unit_test(test_whatif_add_open_draft_allows_and_strips),
        cmocka_unit_test(test_whatif_add_condition_on_unkept_value_is_undecidable),
        cmocka_unit_test(test_whatif_add_ignores_other_actions_and_window),
        cmocka_unit_test(test_whatif_event_rebuilds_names_and_codes),
        cmocka_unit_test(test_whatif_add_malformed_row_counts_undecidable),
        cmocka_unit_test(test_whatif_new_null_args_einval),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
