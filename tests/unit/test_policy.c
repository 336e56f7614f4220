/*
 * test_policy: the pure decision function against the agreements in
 * tests/fixtures/config/good/agreements/:
 *
 *   wm-marac           v3 active 2025-04-01..2027-03-31, consent required with
 *                      overrides; flows referral (police/LA/health/IDVA -> the
 *                      MARAC serving the area, DASH >= 14 or a criterion),
 *                      idva-notification, referral-decision
 *   wm-istv            v1 active, anonymised A&E data uhcw -> wmvrp, council
 *   wm-marac-transfer  v1 draft, MARAC -> MARAC of the new area
 *   moved-pilot        v2 active but only valid through 2023
 *
 * One table row per share: who, what, when, and the exact decision expected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sharehub/config.h"
#include "sharehub/policy.h"
#include "sharehub/val.h"

#define GOOD       SHUB_FIXTURES "/config/good"
#define NOW        1768478400000LL /* 2026-01-15T12:00:00Z */
#define MARAC_FROM 1743465600000LL /* 2025-04-01T00:00:00Z */
#define MARAC_END  1806537600000LL /* 2027-04-01T00:00:00Z: first ms after validity */

static int setup(void **state)
{
    shub_config_t *cfg = NULL;
    if (shub_config_load(GOOD, NULL, &cfg, NULL, NULL) != 0)
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

/* ---- building the share ------------------------------------------------- */

typedef struct share {
    const char *sender, *recipient;
    const char *type, *area, *purpose, *basis, *override;
    shub_consent_t consent; /* 0: given */
    int64_t dash;           /* DASH score in the payload; 0: 15; -1: absent */
    bool repeat;
    int64_t now;      /* 0: NOW */
    int64_t occurred; /* 0: an hour before the decision */
} share_t;

typedef struct built {
    shub_arena_t *arena;
    shub_event_t ev;
} built_t;

static void build(const share_t *s, built_t *b)
{
    memset(b, 0, sizeof *b);
    b->arena = shub_arena_new(0);
    assert_non_null(b->arena);
    shub_val_t root = shub_val_map(), risk = shub_val_map(), criteria = shub_val_map(),
               name;
    if (s->dash >= 0) {
        int64_t dash = s->dash ? s->dash : 15;
        assert_int_equal(shub_val_put(b->arena, &risk, "dash_score", shub_val_int(dash)),
                         0);
    }
    assert_int_equal(
        shub_val_put(b->arena, &criteria, "repeat", shub_val_bool(s->repeat)), 0);
    assert_int_equal(shub_val_str(b->arena, "A Victim", 8, &name), 0);
    shub_val_t victim = shub_val_map();
    assert_int_equal(shub_val_put(b->arena, &victim, "name", name), 0);
    assert_int_equal(shub_val_put(b->arena, &root, "victim", victim), 0);
    assert_int_equal(shub_val_put(b->arena, &root, "risk", risk), 0);
    assert_int_equal(shub_val_put(b->arena, &root, "criteria", criteria), 0);
    b->ev.type = s->type ? s->type : "marac.referral";
    b->ev.area = s->area ? s->area : "coventry";
    b->ev.purpose = s->purpose ? s->purpose : "marac-risk-management";
    b->ev.basis = s->basis ? s->basis : "uk-gdpr-6-1-e";
    b->ev.consent = s->consent ? s->consent : SHUB_CONSENT_GIVEN;
    b->ev.override = s->override;
    b->ev.payload = root;
    b->ev.occurred_ms = s->occurred ? s->occurred : (s->now ? s->now : NOW) - 3600000;
}

typedef struct want {
    bool allow;
    const char *reason;
    const char *agreement;
    const char *flow;
    const char *explain; /* a fragment of the explanation */
} want_t;

typedef struct pcase {
    const char *name;
    share_t share;
    want_t want;
} pcase_t;

#define REFERRAL(...)                                                                    \
    {                                                                                    \
        "wmp", "marac-coventry", __VA_ARGS__                                             \
    }

static const pcase_t cases[] = {
    {"referral allowed",
     REFERRAL(.dash = 15),
     {true, NULL, "wm-marac", "referral",
      "flow 'referral' of 'wm-marac' v3 lets wmp send 'marac.referral' to marac-coventry "
      "(basis uk-gdpr-6-1-e)"}},
    {"consent refused, allowed override",
     REFERRAL(.consent = SHUB_CONSENT_REFUSED, .override = "risk-of-serious-harm"),
     {true, NULL, "wm-marac", "referral", "lets wmp send"}},
    {"consent refused, no override",
     REFERRAL(.consent = SHUB_CONSENT_REFUSED),
     {false, "consent-missing", "wm-marac", "referral",
      "flow 'referral' of 'wm-marac' v3 needs consent, which is 'refused'; an override "
      "reason of 'risk-of-serious-harm', 'prevention-of-crime' would permit it"}},
    {"consent not sought, unlisted override",
     REFERRAL(.consent = SHUB_CONSENT_NOT_SOUGHT, .override = "convenience"),
     {false, "consent-missing", "wm-marac", "referral",
      "which is 'not-sought', and override 'convenience' is not allowed"}},
    {"below threshold, no criterion",
     REFERRAL(.dash = 10),
     {false, "condition-failed", "wm-marac", "referral",
      "flow 'referral' of 'wm-marac' v3: condition not met: payload.risk.dash_score >= "
      "14 "
      "or payload.criteria.repeat == true"}},
    {"below threshold, repeat",
     REFERRAL(.dash = 10, .repeat = true),
     {true, NULL, "wm-marac", "referral", "lets wmp send"}},
    {"no DASH score, no criterion",
     REFERRAL(.dash = -1),
     {false, "condition-failed", "wm-marac", "referral", "condition not met"}},
    {"event type not in flow",
     REFERRAL(.type = "marac.action"),
     {false, "event-type-not-permitted", "wm-marac", "referral",
      "flow 'referral' of 'wm-marac' v3 from wmp to marac-coventry carries "
      "'marac.referral', not 'marac.action'"}},
    {"purpose not in flow",
     REFERRAL(.purpose = "safeguarding"),
     {false, "purpose-not-permitted", "wm-marac", "referral",
      "permits purpose 'marac-risk-management', not 'safeguarding'"}},
    {"basis not in flow",
     REFERRAL(.basis = "dpa-2018-part3"),
     {false, "legal-basis-not-permitted", "wm-marac", "referral",
      "permits legal basis 'uk-gdpr-6-1-e', 'uk-gdpr-9-2-g', 'dpa-2018-sch1-para18', "
      "'cda-1998-s115', not 'dpa-2018-part3'"}},
    {"recipient kind not in flow",
     {"wmp", "idva-coventry", .dash = 15},
     {false, "recipient-not-party", "wm-marac", "referral",
      "no flow of 'wm-marac' v3 lets wmp send 'marac.referral' to idva-coventry; flow "
      "'referral' would if the recipient were a marac serving 'coventry'"}},
    {"recipient serves another area",
     {"wmp", "marac-bham-east", .dash = 15},
     {false, "recipient-not-party", "wm-marac", "referral",
      "would if the recipient were a marac serving 'coventry'"}},
    {"unknown area serves no one",
     REFERRAL(.area = "solihull"),
     {false, "recipient-not-party", "wm-marac", "referral",
      "a marac serving 'solihull'"}},
    {"recipient not a party at all",
     {"wmp", "wmvrp", .dash = 15},
     {false, "recipient-not-party", "wm-marac", NULL,
      "no agreement lets wmp send 'marac.referral' to wmvrp: wmvrp is not a party to "
      "'wm-marac' v3"}},
    {"sender not in flow's from",
     {"coventry-cc", "idva-coventry", .type = "idva.notification", .dash = 15},
     {false, "no-agreement", "wm-marac", "idva-notification",
      "flow 'idva-notification' would if the sender were a marac"}},
    {"sender party to nothing",
     {"cranstoun", "wmp", .dash = 15},
     {false, "no-agreement", NULL, NULL,
      "no agreement names cranstoun as a party, so none lets it send 'marac.referral' to "
      "wmp"}},
    {"unknown sender",
     {"nobody", "wmp", .dash = 15},
     {false, "no-agreement", NULL, NULL, "unknown sender 'nobody'"}},
    {"unknown recipient",
     {"wmp", "nobody", .dash = 15},
     {false, "no-agreement", NULL, NULL, "unknown recipient 'nobody'"}},
    {"draft agreement",
     {"marac-coventry", "marac-bham-east", .type = "marac.transfer",
      .area = "birmingham-east"},
     {false, "agreement-not-active", "wm-marac-transfer", "transfer",
      "'wm-marac-transfer' v1 is draft, not active; flow 'transfer' would allow it once "
      "active"}},
    {"expired window",
     {"wmp", "coventry-cc", .type = "subject.moved_area", .purpose = "safeguarding",
      .basis = "dpa-2018-part3"},
     {false, "outside-validity", "moved-pilot", "moved",
      "'moved-pilot' v2 is in force from 2023-01-01 to 2023-12-31, not on 2026-01-15: "
      "it has expired; flow 'moved' would allow it within those dates"}},
    {"idva notification, basis from the agreement's list",
     {"marac-coventry", "idva-coventry", .type = "idva.notification",
      .basis = "uk-gdpr-9-2-g"},
     {true, NULL, "wm-marac", "idva-notification", "(basis uk-gdpr-9-2-g)"}},
    {"istv batch, consent not required",
     {"uhcw", "wmvrp", .type = "ae.istv.batch", .purpose = "violence-reduction",
      .basis = "cda-1998-s115", .consent = SHUB_CONSENT_NOT_SOUGHT},
     {true, NULL, "wm-istv", "istv-batch", "lets uhcw send 'ae.istv.batch' to wmvrp"}},
    /* validity edges of wm-marac: from 00:00:00.000 of valid_from to the last
     * millisecond of valid_until */
    {"exactly at valid_from",
     REFERRAL(.now = MARAC_FROM),
     {true, NULL, "wm-marac", "referral", "lets wmp send"}},
    {"1 ms before valid_from",
     REFERRAL(.now = MARAC_FROM - 1),
     {false, "outside-validity", "wm-marac", "referral",
      "in force from 2025-04-01 to 2027-03-31, not on 2025-03-31"}},
    {"last ms of valid_until",
     REFERRAL(.now = MARAC_END - 1),
     {true, NULL, "wm-marac", "referral", "lets wmp send"}},
    {"first ms after valid_until",
     REFERRAL(.now = MARAC_END),
     {false, "outside-validity", "wm-marac", "referral", "not on 2027-04-01: it has expired"}},
    /* validity is judged at the decision, not on the event's time (SPEC 7.3) */
    {"occurred before valid_from, shared while in force",
     REFERRAL(.now = MARAC_FROM + 1000, .occurred = MARAC_FROM - 86400000),
     {true, NULL, "wm-marac", "referral", "lets wmp send"}},
    {"occurred while in force, shared after valid_until",
     REFERRAL(.now = MARAC_END, .occurred = MARAC_END - 86400000),
     {false, "outside-validity", "wm-marac", "referral", "not on 2027-04-01: it has expired"}},
};

static void check_case(const shub_config_t *cfg, const pcase_t *c)
{
    built_t b;
    build(&c->share, &b);
    shub_decision_t d;
    memset(&d, 0xa5, sizeof d); /* every field must be written */
    int rc = shub_policy_decide(cfg, c->share.sender, c->share.recipient, &b.ev,
                                c->share.now ? c->share.now : NOW, &d);
    assert_int_equal(rc, 0);
    if (d.allow != c->want.allow || !strstr(d.explanation, c->want.explain))
        print_error("case '%s': allow=%d reason=%s\n  explanation: %s\n", c->name,
                    d.allow, d.reason ? d.reason : "-", d.explanation);
    assert_int_equal(d.allow, c->want.allow);
    if (c->want.reason)
        assert_string_equal(d.reason, c->want.reason);
    else
        assert_null(d.reason);
    if (c->want.agreement) {
        assert_string_equal(d.agreement, c->want.agreement);
        assert_true(d.version > 0);
        assert_int_equal(strlen(d.agreement_hash), 64);
    } else {
        assert_null(d.agreement);
        assert_int_equal(d.version, 0);
        assert_null(d.agreement_hash);
    }
    if (c->want.flow)
        assert_string_equal(d.flow, c->want.flow);
    else
        assert_null(d.flow);
    assert_non_null(strstr(d.explanation, c->want.explain));
    assert_true(strlen(d.explanation) < SHUB_POLICY_MAX_EXPLAIN);
    if (d.allow) {
        assert_string_equal(d.legal_basis, b.ev.basis);
        assert_true(d.n_fields > 0);
    } else {
        assert_null(d.legal_basis);
        assert_null(d.fields);
        assert_int_equal(d.n_fields, 0);
    }
    shub_arena_destroy(&b.arena);
}

static void test_policy_decide_each_case_gives_expected_decision(void **state)
{
    const shub_config_t *cfg = *state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(cfg, &cases[i]);
}

/* A decision's fields, deadlines and basis come from the flow that allowed
 * it, not from another flow of the same agreement. */
static void test_policy_decide_fields_come_from_allowing_flow(void **state)
{
    const shub_config_t *cfg = *state;
    share_t s = {"wmp", "marac-coventry", .dash = 20};
    built_t b;
    build(&s, &b);
    shub_decision_t d;
    assert_int_equal(shub_policy_decide(cfg, s.sender, s.recipient, &b.ev, NOW, &d), 0);
    assert_true(d.allow);
    static const char *const referral[] = {"victim", "children", "perpetrator.name",
                                           "risk",   "criteria", "incident.summary"};
    assert_int_equal(d.n_fields, 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(d.fields[i], referral[i]);
    assert_int_equal(d.ack_within_hours, 24);
    assert_int_equal(d.act_within_hours, 48);
    assert_false(d.onward_sharing);
    shub_arena_destroy(&b.arena);

    share_t n = {"marac-coventry", "idva-coventry", .type = "idva.notification"};
    build(&n, &b);
    assert_int_equal(shub_policy_decide(cfg, n.sender, n.recipient, &b.ev, NOW, &d), 0);
    assert_true(d.allow);
    assert_string_equal(d.flow, "idva-notification");
    static const char *const notif[] = {"case_ref", "victim.name", "victim.contact",
                                        "risk.summary"};
    assert_int_equal(d.n_fields, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(d.fields[i], notif[i]);
    assert_int_equal(d.ack_within_hours, 0);
    assert_int_equal(d.act_within_hours, 48);

    shub_agreement_info_t info;
    assert_int_equal(shub_config_agreement_info(cfg, 2, &info), 0);
    assert_string_equal(info.id, "wm-marac");
    assert_ptr_equal(d.agreement_hash, info.content_hash);
    assert_int_equal(d.version, 3);
    shub_arena_destroy(&b.arena);
}

/* Same inputs, same decision: nothing hidden feeds the function. */
static void test_policy_decide_is_repeatable(void **state)
{
    const shub_config_t *cfg = *state;
    share_t s = {"wmp", "idva-coventry", .dash = 15};
    built_t b;
    build(&s, &b);
    shub_decision_t d1, d2;
    memset(&d1, 0, sizeof d1);
    memset(&d2, 0xff, sizeof d2);
    assert_int_equal(shub_policy_decide(cfg, s.sender, s.recipient, &b.ev, NOW, &d1), 0);
    assert_int_equal(shub_policy_decide(cfg, s.sender, s.recipient, &b.ev, NOW, &d2), 0);
    assert_memory_equal(&d1, &d2, sizeof d1);
    shub_arena_destroy(&b.arena);
}

static void test_policy_decide_null_args_einval(void **state)
{
    const shub_config_t *cfg = *state;
    shub_event_t ev;
    memset(&ev, 0, sizeof ev);
    shub_decision_t d;
    assert_int_equal(shub_policy_decide(NULL, "a", "b", &ev, NOW, &d), SHUB_EINVAL);
    assert_int_equal(shub_policy_decide(cfg, NULL, "b", &ev, NOW, &d), SHUB_EINVAL);
    assert_int_equal(shub_policy_decide(cfg, "a", NULL, &ev, NOW, &d), SHUB_EINVAL);
    assert_int_equal(shub_policy_decide(cfg, "a", "b", NULL, NOW, &d), SHUB_EINVAL);
    assert_int_equal(shub_policy_decide(cfg, "a", "b", &ev, NOW, NULL), SHUB_EINVAL);
    /* an event with nothing set is denied, not a crash */
    assert_int_equal(shub_policy_decide(cfg, "wmp", "marac-coventry", &ev, NOW, &d), 0);
    assert_false(d.allow);
    assert_string_equal(d.reason, "recipient-not-party");
    assert_non_null(strstr(d.explanation, "send '(none)' to marac-coventry"));
    assert_non_null(
        strstr(d.explanation, "serving the subject's area (the event names none)"));
}

/* ---- recheck at delivery ------------------------------------------------ */

typedef struct rcase {
    const char *agreement;
    int64_t now;
    bool allow;
    const char *reason;
    const char *explain;
} rcase_t;

static const rcase_t rcases[] = {
    {"wm-marac", NOW, true, NULL, "'wm-marac' v3 is in force"},
    {"wm-marac", MARAC_FROM, true, NULL, "in force"},
    {"wm-marac", MARAC_END - 1, true, NULL, "in force"},
    {"wm-marac", MARAC_END, false, "agreement-expired",
     "'wm-marac' v3 expired at the end of 2027-03-31"},
    {"wm-marac", MARAC_FROM - 1, false, "agreement-not-active",
     "'wm-marac' v3 is not in force until 2025-04-01"},
    {"wm-marac-transfer", NOW, false, "agreement-not-active",
     "'wm-marac-transfer' v1 is draft, not active"},
    {"moved-pilot", NOW, false, "agreement-expired", "expired at the end of 2023-12-31"},
    {"retired-agreement", NOW, false, "no-agreement",
     "agreement 'retired-agreement' is no longer loaded"},
};

static void test_policy_recheck_each_case(void **state)
{
    const shub_config_t *cfg = *state;
    for (size_t i = 0; i < sizeof rcases / sizeof rcases[0]; i++) {
        const rcase_t *c = &rcases[i];
        shub_decision_t d;
        assert_int_equal(shub_policy_recheck(cfg, c->agreement, c->now, &d), 0);
        if (d.allow != c->allow || !strstr(d.explanation, c->explain))
            print_error("recheck %s at %lld: %s\n", c->agreement, (long long)c->now,
                        d.explanation);
        assert_int_equal(d.allow, c->allow);
        if (c->reason)
            assert_string_equal(d.reason, c->reason);
        else
            assert_null(d.reason);
        assert_non_null(strstr(d.explanation, c->explain));
        if (strcmp(c->reason ? c->reason : "", "no-agreement") == 0) {
            assert_null(d.agreement);
        } else {
            assert_string_equal(d.agreement, c->agreement);
            assert_int_equal(strlen(d.agreement_hash), 64);
        }
    }
    shub_decision_t d;
    assert_int_equal(shub_policy_recheck(NULL, "wm-marac", NOW, &d), SHUB_EINVAL);
    assert_int_equal(shub_policy_recheck(cfg, NULL, NOW, &d), SHUB_EINVAL);
    assert_int_equal(shub_policy_recheck(cfg, "wm-marac", NOW, NULL), SHUB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_decide_each_case_gives_expected_decision),
        cmocka_unit_test(test_policy_decide_fields_come_from_allowing_flow),
        cmocka_unit_test(test_policy_decide_is_repeatable),
        cmocka_unit_test(test_policy_decide_null_args_einval),
        cmocka_unit_test(test_policy_recheck_each_case),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
