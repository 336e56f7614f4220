/*
 * test_profile: the organisation profiles and the scenario they run.
 *
 * Each profile is driven the way the agent runtime drives it: events handed
 * to shub_profile_receive at a simulated time, shub_profile_tick moving the
 * clock, and every emitted share caught by a sink that encodes it with the
 * real codec (so nothing a profile emits could be refused on the wire),
 * decodes it back and gives it a test id. Tests then read like "given these
 * events at these times, it emits exactly these": types, recipients,
 * reply_to, key payload fields and emission times against the deadlines in
 * DOMAIN.md. A quarter at the West Midlands rates checks the load; a small
 * router between police and the eight MARACs checks that every transfer ends
 * acknowledged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharehub/alloc.h"
#include "sharehub/err.h"
#include "sharehub/msg.h"
#include "sharehub/profile.h"
#include "sharehub/time.h"
#include "sharehub/val.h"

#define HOUR INT64_C(3600000)
#define DAY  (24 * HOUR)
#define JUL1 INT64_C(1782864000000) /* 2026-07-01T00:00:00Z, a Wednesday */
#define FRI3 INT64_C(1783036800000) /* 2026-07-03, a Friday */
#define MON6 INT64_C(1783296000000) /* 2026-07-06 */
#define TUE7 INT64_C(1783382400000) /* 2026-07-07 */

static const char *const ALL[] = {
    "birmingham-east", "birmingham-west", "coventry",      "dudley",        "sandwell",
    "solihull",        "walsall",         "wolverhampton", "staffordshire",
};
#define N_ALL   9
#define N_FORCE 8 /* ALL without staffordshire */

/* ---- fixtures ---------------------------------------------------------- */

static const char *fixture(const char *name)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 512, "%s/scenarios/%s", SHUB_FIXTURES, name);
    return p;
}

static const char *quarter_path(void)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/../../examples/west-midlands/scenario-quarter.yaml",
             SHUB_FIXTURES);
    return path;
}

static shub_scenario_t *load(const char *path)
{
    shub_scenario_t *s = NULL;
    shub_err_t err;
    int rc = shub_scenario_load(path, &s, &err);
    if (rc)
        fail_msg("%s: %s (line %d)", path, err.msg, err.line);
    return s;
}

static shub_profile_t *make(const char *id, const char *kind, const char *const *areas,
                            size_t n_areas, const shub_scenario_t *sc, uint64_t seed)
{
    shub_profile_org_t org = {id, kind, areas, n_areas, ALL, N_ALL};
    shub_profile_t *p = NULL;
    shub_err_t err;
    int rc = shub_profile_new(&org, sc, seed, &p, &err);
    if (rc)
        fail_msg("profile %s: %s", id, err.msg);
    return p;
}

/* ---- the sink: every emitted share, encoded, decoded, given an id ------- */

typedef struct rec {
    shub_arena_t *arena;
    shub_event_t ev; /* decoded copy; ev.id is the test's id (index + 1) */
    char to[4][96];
    uint32_t n_to;
    uint8_t *bytes; /* the encoded event, for byte-exact comparisons */
    size_t len;
    const char *by; /* the profile that emitted it (the router's `from`) */
    bool delivered;
} rec_t;

typedef struct sink {
    rec_t *recs;
    size_t n, cap;
    bool count_only; /* alloc-failure tests: no allocation in the sink */
    size_t count;
    int fail_every; /* > 0: every n-th call fails once with SHUB_EIO */
    int calls;
    const char *by;
} sink_t;

static void id_of(size_t index, shub_id_t *id)
{
    memset(id, 0, sizeof *id);
    uint64_t v = (uint64_t)index + 1;
    for (int i = 0; i < 8; i++)
        id->bytes[15 - i] = (uint8_t)(v >> (8 * i));
}

static size_t index_of(const shub_id_t *id)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)id->bytes[15 - i] << (8 * i);
    return (size_t)v - 1;
}

static int sink_emit(void *ctx, const shub_share_t *share)
{
    sink_t *s = ctx;
    if (s->fail_every > 0 && ++s->calls % s->fail_every == 0)
        return SHUB_EIO;
    static const shub_id_t zero;
    assert_memory_equal(&share->ev.id, &zero, sizeof zero); /* the runtime assigns it */
    assert_true(share->to_count >= 1 && share->to_count <= 4);
    for (uint32_t i = 0; i < share->to_count; i++)
        assert_true(shub_is_selector(share->to[i]));
    s->count++;
    if (s->count_only)
        return 0;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->recs = realloc(s->recs, s->cap * sizeof *s->recs);
        assert_non_null(s->recs);
    }
    rec_t *r = &s->recs[s->n];
    memset(r, 0, sizeof *r);
    shub_event_t ev = share->ev;
    id_of(s->n, &ev.id);
    shub_buf_t buf = {0};
    shub_err_t err;
    if (shub_event_encode(&ev, &buf, &err) != 0)
        fail_msg("%s: %s: %s", ev.type, err.path, err.msg);
    r->arena = shub_arena_new(0);
    assert_non_null(r->arena);
    assert_int_equal(shub_event_decode(r->arena, buf.data, buf.len, &r->ev, &err), 0);
    r->bytes = malloc(buf.len);
    assert_non_null(r->bytes);
    memcpy(r->bytes, buf.data, buf.len);
    r->len = buf.len;
    shub_buf_free(&buf);
    r->n_to = share->to_count;
    for (uint32_t i = 0; i < share->to_count; i++)
        snprintf(r->to[i], sizeof r->to[i], "%s", share->to[i]);
    r->by = s->by;
    s->n++;
    return 0;
}

static void sink_free(sink_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        shub_arena_destroy(&s->recs[i].arena);
        free(s->recs[i].bytes);
    }
    free(s->recs);
    memset(s, 0, sizeof *s);
}

static void tick(shub_profile_t *p, int64_t now, sink_t *s, const char *by)
{
    s->by = by;
    assert_int_equal(shub_profile_tick(p, now, sink_emit, s), 0);
}

static size_t count_type(const sink_t *s, const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += strcmp(s->recs[i].ev.type, type) == 0;
    return n;
}

/* The nth event of a type; the test fails if there is none. */
static const rec_t *nth_of(const sink_t *s, const char *type, size_t nth)
{
    static const rec_t none;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->recs[i].ev.type, type) == 0 && nth-- == 0)
            return &s->recs[i];
    fail_msg("no %s", type);
    return &none;
}

/* A text field of the payload; the test fails if it is absent. */
static const char *str_at(const rec_t *r, const char *path)
{
    const shub_val_t *v = shub_val_at(&r->ev.payload, path);
    if (!v || v->type != SHUB_VAL_STR)
        fail_msg("%s: no text at %s", r->ev.type ? r->ev.type : "payload", path);
    return v && v->type == SHUB_VAL_STR ? v->as.str : "";
}

static int64_t int_at(const rec_t *r, const char *path)
{
    const shub_val_t *v = shub_val_at(&r->ev.payload, path);
    assert_non_null(v);
    assert_int_equal(v->type, SHUB_VAL_INT);
    return v->as.i;
}

static const shub_val_t *array_at(const rec_t *r, const char *path)
{
    const shub_val_t *v = shub_val_at(&r->ev.payload, path);
    assert_non_null(v);
    assert_int_equal(v->type, SHUB_VAL_ARRAY);
    return v;
}

static bool array_has(const shub_val_t *a, const char *s)
{
    for (uint32_t i = 0; i < a->len; i++)
        if (a->as.items[i].type == SHUB_VAL_STR && strcmp(a->as.items[i].as.str, s) == 0)
            return true;
    return false;
}

static void assert_to(const rec_t *r, const char *a, const char *b)
{
    assert_int_equal(r->n_to, b ? 2 : 1);
    assert_string_equal(r->to[0], a);
    if (b)
        assert_string_equal(r->to[1], b);
}

static void assert_reply_to(const rec_t *r, const rec_t *to_this, const sink_t *of)
{
    assert_non_null(r->ev.reply_to);
    assert_int_equal(index_of(r->ev.reply_to), (size_t)(to_this - of->recs));
}

static int64_t date_ms(const char *s)
{
    int64_t ms = 0;
    assert_int_equal(shub_time_parse_date(s, &ms, NULL), 0);
    return ms;
}

/* ---- hand-made received events ----------------------------------------- */

typedef struct inbox {
    shub_arena_t *arena;
    sink_t events; /* made events live here, with ids, like emitted ones */
} inbox_t;

static shub_val_t text(shub_arena_t *a, const char *s)
{
    shub_val_t v;
    assert_int_equal(shub_val_str(a, s, strlen(s), &v), 0);
    return v;
}

/* A police referral for `subject` in `area`: dash score, criteria, children. */
static const rec_t *referral(sink_t *in, int64_t at, const char *subject,
                             const char *area, int dash, const char *criterion,
                             int children)
{
    shub_arena_t *a = shub_arena_new(0);
    shub_val_t pl = shub_val_map(), victim = shub_val_map(), risk = shub_val_map();
    shub_val_t crit = shub_val_array(), kids = shub_val_array();
    assert_int_equal(shub_val_put(a, &victim, "name", text(a, "Farah Thornbrook")), 0);
    assert_int_equal(shub_val_put(a, &victim, "dob", text(a, "1991-03-14")), 0);
    assert_int_equal(shub_val_put(a, &victim, "phone", text(a, "07700 900123")), 0);
    assert_int_equal(shub_val_put(a, &victim, "safe_contact", text(a, "text first")), 0);
    assert_int_equal(shub_val_put(a, &pl, "victim", victim), 0);
    for (int i = 0; i < children; i++) {
        shub_val_t c = shub_val_map();
        assert_int_equal(shub_val_put(a, &c, "name",
                                      text(a, i ? "Owen Thornbrook" : "Zara Thornbrook")),
                         0);
        assert_int_equal(shub_val_put(a, &c, "dob", text(a, "2019-05-02")), 0);
        assert_int_equal(shub_val_push(a, &kids, c), 0);
    }
    assert_int_equal(shub_val_put(a, &pl, "children", kids), 0);
    assert_int_equal(shub_val_put(a, &risk, "dash_score", shub_val_int(dash)), 0);
    if (criterion)
        assert_int_equal(shub_val_push(a, &crit, text(a, criterion)), 0);
    assert_int_equal(shub_val_put(a, &risk, "criteria", crit), 0);
    assert_int_equal(shub_val_put(a, &pl, "risk", risk), 0);
    const char *to[] = {"marac@x"};
    shub_share_t share = {
        .ev = {.type = "marac.referral",
               .occurred_ms = at,
               .case_ref = "WMP-26-000001",
               .subject_ref = subject,
               .area = area,
               .purpose = "marac-risk-management",
               .basis = "uk-gdpr-6-1-e",
               .consent = SHUB_CONSENT_NOT_SOUGHT,
               .override = "risk-of-serious-harm",
               .payload = pl},
        .to = to,
        .to_count = 1,
    };
    sink_emit(in, &share);
    shub_arena_destroy(&a);
    return &in->recs[in->n - 1];
}

static void receive(shub_profile_t *p, int64_t now, const char *from, const rec_t *r)
{
    assert_int_equal(shub_profile_receive(p, now, from, &r->ev, sink_emit, NULL), 0);
}

/* ---- scenario loading ---------------------------------------------------- */

static void test_shub_scenario_load_good_reads_every_key(void **state)
{
    (void)state;
    shub_scenario_t *s = load(fixture("good.yaml"));
    assert_int_equal(shub_scenario_start_ms(s), JUL1);
    assert_int_equal(shub_scenario_end_ms(s), JUL1 + 91 * DAY);
    assert_true(shub_scenario_speedup(s) == 131040.0);
    shub_scenario_destroy(&s);
    assert_null(s);
    shub_scenario_destroy(&s); /* idempotent */
    shub_scenario_destroy(NULL);
}

static void test_shub_scenario_load_minimal_uses_defaults(void **state)
{
    (void)state;
    shub_scenario_t *s = load(fixture("minimal.yaml"));
    assert_int_equal(shub_scenario_end_ms(s) - shub_scenario_start_ms(s), 7 * DAY);
    assert_true(shub_scenario_speedup(s) == 1.0);
    /* no rates: a police profile originates nothing */
    shub_profile_t *p = make("wmp", "police", ALL, N_FORCE, s, 1);
    sink_t out = {0};
    tick(p, shub_scenario_end_ms(s), &out, "wmp");
    assert_int_equal(out.n, 0);
    assert_true(shub_profile_done(p, shub_scenario_end_ms(s)));
    shub_profile_destroy(&p);
    shub_scenario_destroy(&s);
}

static void test_shub_scenario_load_example_quarter_loads(void **state)
{
    (void)state;
    shub_scenario_t *s = load(quarter_path());
    assert_int_equal(shub_scenario_start_ms(s), JUL1);
    assert_int_equal(shub_scenario_end_ms(s), JUL1 + 91 * DAY);
    assert_true(shub_scenario_speedup(s) == 131040.0);
    shub_scenario_destroy(&s);
}

static void expect_load_error(const char *name, int code, int line, int column,
                              const char *msg)
{
    shub_scenario_t *s = NULL;
    shub_err_t err;
    const char *path = fixture(name);
    assert_int_equal(shub_scenario_load(path, &s, &err), code);
    assert_null(s);
    assert_int_equal(err.code, code);
    assert_string_equal(err.file, path);
    assert_int_equal(err.line, line);
    assert_int_equal(err.column, column);
    assert_string_equal(err.msg, msg);
}

static void test_shub_scenario_load_unknown_key_names_line(void **state)
{
    (void)state;
    expect_load_error("bad-unknown-key.yaml", SHUB_ECONFIG, 5, 3,
                      "unknown key 'withdrawn_fractoin' in 'marac'");
}

static void test_shub_scenario_load_bad_date_names_line(void **state)
{
    (void)state;
    expect_load_error("bad-date.yaml", SHUB_ECONFIG, 2, 8,
                      "'start': '2026-02-30': February 2026 has no day 30");
}

static void test_shub_scenario_load_negative_rate_names_line(void **state)
{
    (void)state;
    expect_load_error("bad-negative-rate.yaml", SHUB_ECONFIG, 5, 22,
                      "'probation.releases_per_week' must be a number of 0 or more, not '-15'");
}

static void test_shub_scenario_load_other_errors_name_line(void **state)
{
    (void)state;
    expect_load_error("bad-fraction.yaml", SHUB_ECONFIG, 4, 23,
                      "'marac.withdrawn_fraction' must be a number from 0 to 1, not '1.5'");
    expect_load_error("bad-duplicate-key.yaml", SHUB_ECONFIG, 4, 1,
                      "duplicate key 'days' (first on line 2)");
    expect_load_error("bad-missing-days.yaml", SHUB_ECONFIG, 1, 1,
                      "missing required key 'days'");
    expect_load_error("bad-weight.yaml", SHUB_ECONFIG, 6, 13,
                      "'marac.area_weights.dudley' must be a number of 0 or more, not 'lots'");
    expect_load_error("bad-istv.yaml", SHUB_ECONFIG, 3, 16,
                      "'health.istv' must be one of monthly, weekly, off, not 'daily'");
    shub_scenario_t *s = NULL;
    shub_err_t err;
    assert_int_equal(shub_scenario_load(fixture("bad-syntax.yaml"), &s, &err),
                     SHUB_ECONFIG);
    assert_int_equal(err.line, 4);
    assert_non_null(strstr(err.msg, "yaml: "));
}

static void test_shub_scenario_load_missing_file_returns_eio(void **state)
{
    (void)state;
    shub_scenario_t *s = NULL;
    shub_err_t err;
    const char *path = fixture("no-such-file.yaml");
    assert_int_equal(shub_scenario_load(path, &s, &err), SHUB_EIO);
    assert_null(s);
    assert_string_equal(err.file, path);
    assert_int_equal(shub_scenario_load(NULL, &s, &err), SHUB_EINVAL);
}

/* ---- profile construction ------------------------------------------------ */

static void test_shub_profile_new_unknown_kind_returns_enotfound(void **state)
{
    (void)state;
    shub_profile_org_t org = {"yot-dudley", "youth-offending", ALL + 3, 1, ALL, N_ALL};
    shub_profile_t *p = NULL;
    shub_err_t err;
    assert_int_equal(shub_profile_new(&org, NULL, 1, &p, &err), SHUB_ENOTFOUND);
    assert_null(p);
    assert_string_equal(err.msg,
                        "no profile for kind \"youth-offending\" of \"yot-dudley\"");
    org.kind = "marac";
    org.id = "Not A Name";
    assert_int_equal(shub_profile_new(&org, NULL, 1, &p, &err), SHUB_EINVAL);
    assert_null(p);
    shub_profile_destroy(&p);
    shub_profile_destroy(NULL);
}

/* ---- police -------------------------------------------------------------- */

static bool is_force_area(const char *a)
{
    for (int i = 0; i < N_FORCE; i++)
        if (strcmp(ALL[i], a) == 0)
            return true;
    return false;
}

static void test_police_tick_week_emits_well_formed_referrals(void **state)
{
    (void)state;
    shub_scenario_t *sc = load(quarter_path());
    shub_profile_t *p = make("wmp", "police", ALL, N_FORCE, sc, 42);
    sink_t out = {0};
    tick(p, JUL1 + 7 * DAY, &out, "wmp");
    size_t n = count_type(&out, "marac.referral");
    assert_in_range(n, 70, 130); /* 100 a week */
    assert_in_range(count_type(&out, "missing.report"), 1, 15);
    assert_int_equal(count_type(&out, "custody.arrest_referral"),
                     0); /* custody's stream */
    int64_t last = JUL1;
    for (size_t i = 0; i < out.n; i++) {
        const rec_t *r = &out.recs[i];
        assert_true(r->ev.occurred_ms >= last && r->ev.occurred_ms <= JUL1 + 7 * DAY);
        last = r->ev.occurred_ms;
        assert_true(is_force_area(r->ev.area));
        char sel[96];
        if (strcmp(r->ev.type, "missing.report") == 0) {
            snprintf(sel, sizeof sel, "local-authority@%s", r->ev.area);
            assert_to(r, sel, NULL);
            assert_non_null(str_at(r, "person.name"));
            assert_non_null(str_at(r, "risk_level"));
            continue;
        }
        snprintf(sel, sizeof sel, "marac@%s", r->ev.area);
        assert_to(r, sel, NULL);
        assert_string_equal(r->ev.purpose, "marac-risk-management");
        assert_string_equal(r->ev.basis, "uk-gdpr-6-1-e");
        assert_null(r->ev.reply_to);
        assert_int_equal(strlen(r->ev.subject_ref), 18);
        assert_memory_equal(r->ev.subject_ref, "P-", 2);
        assert_int_equal(strncmp(r->ev.case_ref, "WMP-26-", 7), 0);
        if (r->ev.consent == SHUB_CONSENT_GIVEN)
            assert_null(r->ev.override);
        else
            assert_string_equal(r->ev.override, "risk-of-serious-harm");
        assert_non_null(str_at(r, "victim.name"));
        assert_non_null(str_at(r, "victim.dob"));
        assert_non_null(str_at(r, "victim.gender"));
        assert_non_null(str_at(r, "victim.address.line1"));
        assert_non_null(str_at(r, "victim.address.postcode"));
        assert_memory_equal(str_at(r, "victim.phone"), "07700 900", 9);
        assert_non_null(str_at(r, "victim.safe_contact"));
        assert_true(array_at(r, "perpetrators")->len >= 1);
        assert_non_null(
            str_at(&(rec_t){.ev.payload = array_at(r, "perpetrators")->as.items[0]},
                   "relationship"));
        array_at(r, "children");
        int64_t dash = int_at(r, "risk.dash_score");
        assert_in_range(dash, 0, 24);
        const shub_val_t *crit = array_at(r, "risk.criteria");
        assert_true(crit->len >= 1);
        assert_int_equal(array_has(crit, "dash"), dash >= 14);
        assert_non_null(shub_val_at(&r->ev.payload, "risk.repeat"));
        assert_non_null(str_at(r, "incident.date"));
        assert_non_null(str_at(r, "incident.summary"));
        assert_non_null(str_at(r, "incident.crime_ref"));
        assert_memory_equal(str_at(r, "referrer.officer"), "PC ", 3);
        assert_non_null(str_at(r, "referrer.contact"));
    }
    sink_free(&out);
    shub_profile_destroy(&p);
    shub_scenario_destroy(&sc);
}

static void test_police_repeat_referral_is_same_person_within_12_months(void **state)
{
    (void)state;
    shub_scenario_t *sc = load(quarter_path());
    shub_profile_t *p = make("wmp", "police", ALL, N_FORCE, sc, 7);
    sink_t out = {0};
    tick(p, shub_scenario_end_ms(sc), &out, "wmp");
    size_t repeats = 0;
    for (size_t i = 0; i < out.n; i++) {
        const rec_t *r = &out.recs[i];
        if (strcmp(r->ev.type, "marac.referral") != 0)
            continue;
        const shub_val_t *rep = shub_val_at(&r->ev.payload, "risk.repeat");
        assert_int_equal(rep->type, SHUB_VAL_BOOL);
        const rec_t *before = NULL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(out.recs[j].ev.type, "marac.referral") == 0 &&
                strcmp(out.recs[j].ev.subject_ref, r->ev.subject_ref) == 0)
                before = &out.recs[j];
        assert_int_equal(rep->as.b, before != NULL); /* a quarter is within 12 months */
        if (!before)
            continue;
        repeats++;
        assert_true(array_has(array_at(r, "risk.criteria"), "repeat"));
        assert_string_equal(str_at(r, "victim.name"), str_at(before, "victim.name"));
        assert_string_equal(str_at(r, "victim.dob"), str_at(before, "victim.dob"));
        assert_string_equal(r->ev.area, before->ev.area);
    }
    assert_in_range(repeats, 150, 400); /* 25 % of ~1300, fewer early in the quarter */
    sink_free(&out);
    shub_profile_destroy(&p);
    shub_scenario_destroy(&sc);
}

static void test_custody_tick_emits_arrest_referrals_to_treatment(void **state)
{
    (void)state;
    shub_scenario_t *sc = load(quarter_path());
    shub_profile_t *p = make("wmp-custody", "custody", ALL, N_FORCE, sc, 42);
    sink_t out = {0};
    tick(p, JUL1 + 28 * DAY, &out, "wmp-custody");
    assert_in_range(out.n, 6, 30); /* 4 a week */
    assert_int_equal(count_type(&out, "custody.arrest_referral"), out.n);
    for (size_t i = 0; i < out.n; i++) {
        const rec_t *r = &out.recs[i];
        char sel[96];
        snprintf(sel, sizeof sel, "treatment@%s", r->ev.area);
        assert_to(r, sel, NULL);
        assert_string_equal(r->ev.basis, "dpa-2018-part3");
        assert_non_null(str_at(r, "detainee.name"));
        assert_non_null(str_at(r, "detainee.dob"));
        assert_non_null(str_at(r, "trigger_offence"));
        assert_memory_equal(str_at(r, "test_result"), "positive-", 9);
        assert_true(date_ms(str_at(r, "assessment.date")) > r->ev.occurred_ms - DAY);
        assert_non_null(str_at(r, "assessment.location"));
    }
    sink_free(&out);
    shub_profile_destroy(&p);
    shub_scenario_destroy(&sc);
}

/* ---- determinism --------------------------------------------------------- */

static void week(const char *id, uint64_t seed, int64_t step, sink_t *out)
{
    shub_scenario_t *sc = load(quarter_path());
    shub_profile_t *p = make(id, "police", ALL, N_FORCE, sc, seed);
    for (int64_t t = JUL1; t <= JUL1 + 7 * DAY; t += step)
        tick(p, t, out, id);
    shub_profile_destroy(&p);
    shub_scenario_destroy(&sc);
}

static bool same_stream(const sink_t *a, const sink_t *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (a->recs[i].len != b->recs[i].len ||
            memcmp(a->recs[i].bytes, b->recs[i].bytes, a->recs[i].len) != 0 ||
            strcmp(a->recs[i].to[0], b->recs[i].to[0]) != 0)
            return false;
    return true;
}

static void test_police_same_seed_same_stream_other_seed_differs(void **state)
{
    (void)state;
    sink_t a = {0}, b = {0}, c = {0}, d = {0};
    week("wmp", 42, 7 * DAY, &a);
    week("wmp", 42, HOUR, &b); /* tick granularity does not matter */
    week("wmp", 43, 7 * DAY, &c);
    week("wmp2", 42, 7 * DAY, &d); /* the org id is part of the seed */
    assert_true(a.n > 50);
    assert_true(same_stream(&a, &b));
    assert_false(same_stream(&a, &c));
    assert_false(same_stream(&a, &d));
    sink_free(&a);
    sink_free(&b);
    sink_free(&c);
    sink_free(&d);
}

static void test_shub_profile_tick_failed_emit_retries_same_event(void **state)
{
    (void)state;
    sink_t ref = {0}, flaky = {.fail_every = 3};
    week("wmp", 42, 7 * DAY, &ref);
    shub_scenario_t *sc = load(quarter_path());
    shub_profile_t *p = make("wmp", "police", ALL, N_FORCE, sc, 42);
    int failures = 0;
    for (int guard = 0; guard < 10000; guard++) {
        int rc = shub_profile_tick(p, JUL1 + 7 * DAY, sink_emit, &flaky);
        if (rc == 0)
            break;
        assert_int_equal(rc, SHUB_EIO);
        failures++;
    }
    assert_true(failures > 10);
    assert_true(same_stream(&ref, &flaky));
    sink_free(&ref);
    sink_free(&flaky);
    shub_profile_destroy(&p);
    shub_scenario_destroy(&sc);
}

/* ---- MARAC: referral, decision, IDVA notification ------------------------ */

static void
test_marac_referral_accepted_decides_and_notifies_idva_within_48h(void **state)
{
    (void)state;
    shub_scenario_t *sc = load(fixture("marac-stay.yaml"));
    static const char *const area[] = {"coventry"};
    shub_profile_t *m = make("marac-coventry", "marac", area, 1, sc, 5);
    sink_t in = {0}, out = {0};
    int64_t t0 = JUL1 + 2 * DAY + 9 * HOUR;
    const rec_t *ref = referral(&in, t0, "P-00000000000000a1", "coventry", 16, "dash", 1);
    tick(m, t0, &out, "marac-coventry");
    receive(m, t0, "wmp", ref);
    assert_int_equal(out.n, 0); /* nothing at once */
    assert_false(shub_profile_done(m, shub_scenario_end_ms(sc)));
    tick(m, t0 + 48 * HOUR, &out, "marac-coventry");
    assert_int_equal(out.n, 2);

    const rec_t *dec = &out.recs[0], *idva = &out.recs[1];
    assert_string_equal(dec->ev.type, "marac.referral.decision");
    assert_to(dec, "wmp", NULL);
    assert_reply_to(dec, ref, &in);
    assert_string_equal(dec->ev.area, "coventry");
    assert_string_equal(dec->ev.subject_ref, "P-00000000000000a1");
    assert_string_equal(dec->ev.override, "risk-of-serious-harm");
    assert_true(dec->ev.occurred_ms > t0 && dec->ev.occurred_ms <= t0 + 48 * HOUR);
    assert_string_equal(str_at(dec, "decision"), "accepted");
    assert_string_equal(str_at(dec, "reason"), "high risk: DASH 16");
    assert_string_equal(str_at(dec, "case_ref"), dec->ev.case_ref);
    assert_memory_equal(dec->ev.case_ref, "MARAC-COV-26-", 13);
    assert_true(date_ms(str_at(dec, "meeting_date")) >= dec->ev.occurred_ms + 2 * DAY);

    assert_string_equal(idva->ev.type, "idva.notification");
    assert_to(idva, "idva@coventry", NULL);
    assert_null(idva->ev.reply_to);
    assert_true(idva->ev.occurred_ms > dec->ev.occurred_ms &&
                idva->ev.occurred_ms <= t0 + 48 * HOUR);
    assert_string_equal(str_at(idva, "case_ref"), dec->ev.case_ref);
    assert_string_equal(str_at(idva, "victim.name"), "Farah Thornbrook");
    assert_string_equal(str_at(idva, "victim.phone"), "07700 900123");
    assert_string_equal(str_at(idva, "victim.safe_contact"), "text first");
    assert_non_null(str_at(idva, "victim.safe_times"));
    assert_int_equal(int_at(idva, "risk.dash_score"), 16);
    assert_non_null(str_at(idva, "risk.summary"));

    tick(m, shub_scenario_end_ms(sc) + 90 * DAY, &out, "marac-coventry");
    assert_int_equal(out.n, 2); /* and nothing more, ever */
    assert_true(shub_profile_done(m, shub_scenario_end_ms(sc)));
    sink_free(&in);
    sink_free(&out);
    shub_profile_destroy(&m);
    shub_scenario_destroy(&sc);
}

static void test_marac_referral_withdrawn_decides_without_idva(void **state)
{
    (void)state;
    shub_scenario_t *sc = load(fixture("marac-withdraw.yaml"));
    static const char *const area[] = {"dudley"};
    shub_profile_t *m = make("marac-dudley", "marac", area, 1, sc, 5);
    sink_t in = {0}, out = {0};
    const rec_t *ref =
        referral(&in, JUL1 + DAY, "P-00000000000000b2", "dudley", 20, "dash", 0);
    receive(m, JUL1 + DAY, "wmp", ref);
    tick(m, JUL1 + 30 * DAY, &out, "marac-dudley");
    assert_int_equal(out.n, 1);
    assert_string_equal(out.recs[0].ev.type, "marac.referral.decision");
    assert_reply_to(&out.recs[0], ref, &in);
    assert_string_equal(str_at(&out.recs[0], "decision"), "withdrawn");
    assert_true(strlen(str_at(&out.recs[0], "reason")) > 10);
    assert_null(shub_val_at(&out.recs[0].ev.payload, "meeting_date"));
    sink_free(&in);
    sink_free(&out);
    shub_profile_destroy(&m);
    shub_scenario_destroy(&sc);
}

static void test_marac_repeat_within_12_months_accepted_after_rejected(void **state)
{
    (void)state;
    shub_scenario_t *sc = load(fixture("marac-stay.yaml"));
    static const char *const area[] = {"walsall"};
    shub_profile_t *m = make("marac-walsall", "marac", area, 1, sc, 5);
    sink_t in = {0}, out = {0};
    /* 1: high risk, accepted. 2: DASH 8 and no criterion, 3 months later: a
     * repeat, accepted as the same case. 3: a stranger with DASH 8: rejected.
     * 4: the first person again 13 months after 2: rejected. */
    const rec_t *r1 = referral(&in, JUL1, "P-00000000000000c3", "walsall", 15, "dash", 0);
    const rec_t *r2 =
        referral(&in, JUL1 + 92 * DAY, "P-00000000000000c3", "walsall", 8, NULL, 0);
    const rec_t *r3 =
        referral(&in, JUL1 + 92 * DAY, "P-00000000000000d4", "walsall", 8, NULL, 0);
    const rec_t *r4 = referral(&in, JUL1 + 92 * DAY + 396 * DAY, "P-00000000000000c3",
                               "walsall", 8, NULL, 0);
    receive(m, JUL1, "wmp", r1);
    tick(m, JUL1 + 92 * DAY, &out, "marac-walsall");
    receive(m, JUL1 + 92 * DAY, "wmp", r2);
    receive(m, JUL1 + 92 * DAY, "wmp", r3);
    tick(m, JUL1 + 92 * DAY + 396 * DAY, &out, "marac-walsall");
    receive(m, JUL1 + 92 * DAY + 396 * DAY, "wmp", r4);
    tick(m, JUL1 + 600 * DAY, &out, "marac-walsall");
    assert_int_equal(count_type(&out, "marac.referral.decision"), 4);
    const rec_t *d[4];
    for (size_t i = 0; i < 4; i++) {
        d[i] = NULL;
        for (size_t k = 0; k < out.n; k++)
            if (out.recs[k].ev.reply_to && index_of(out.recs[k].ev.reply_to) == i)
                d[i] = &out.recs[k];
        assert_non_null(d[i]);
    }
    assert_string_equal(str_at(d[0], "decision"), "accepted");
    assert_string_equal(str_at(d[1], "decision"), "accepted");
    assert_string_equal(str_at(d[1], "reason"),
                        "repeat: referred again within 12 months of 2026-07-01");
    assert_string_equal(str_at(d[1], "case_ref"), str_at(d[0], "case_ref"));
    assert_string_equal(str_at(d[2], "decision"), "rejected");
    assert_string_equal(
        str_at(d[2], "reason"),
        "does not meet the MARAC threshold: DASH 8 and no other criterion");
    assert_string_equal(str_at(d[3], "decision"), "rejected");
    assert_int_equal(count_type(&out, "idva.notification"), 2);
    sink_free(&in);
    sink_free(&out);
    shub_profile_destroy(&m);
    shub_scenario_destroy(&sc);
}

static void test_marac_receive_odd_events_survives(void **state)
{
    (void)state;
    static const char *const area[] = {"sandwell"};
    shub_profile_t *m = make("marac-sandwell", "marac", area, 1, NULL, 5);
    sink_t out = {0};
    /* A referral whose payload the broker minimised to nothing, with no
     * subject, plus events a MARAC does not act on. */
    shub_event_t ev = {.type = "marac.referral",
                       .occurred_ms = JUL1,
                       .area = "sandwell",
                       .purpose = "marac-risk-management",
                       .basis = "uk-gdpr-6-1-e",
                       .consent = SHUB_CONSENT_GIVEN,
                       .payload = shub_val_map()};
    assert_int_equal(shub_profile_receive(m, JUL1, "wmp", &ev, sink_emit, &out), 0);
    ev.type = "marac.transfer.ack";
    assert_int_equal(shub_profile_receive(m, JUL1, "marac-dudley", &ev, sink_emit, &out),
                     0);
    ev.type = "marac.transfer.request_missing";
    assert_int_equal(shub_profile_receive(m, JUL1, "marac-dudley", &ev, sink_emit, &out),
                     0);
    ev.type = "ae.istv.batch";
    ev.payload = shub_val_nil();
    assert_int_equal(shub_profile_receive(m, JUL1, "uhb", &ev, sink_emit, &out), 0);
    assert_int_equal(shub_profile_receive(m, JUL1, NULL, &ev, sink_emit, &out),
                     SHUB_EINVAL);
    assert_int_equal(shub_profile_receive(m, JUL1, "uhb", NULL, sink_emit, &out),
                     SHUB_EINVAL);
    tick(m, JUL1 + 30 * DAY, &out, "marac-sandwell");
    assert_int_equal(out.n, 1);
    assert_string_equal(str_at(&out.recs[0], "decision"), "rejected");
    assert_null(out.recs[0].ev.subject_ref);
    assert_true(shub_profile_done(m, JUL1 + 30 * DAY)); /* no scenario: done when idle */
    sink_free(&out);
    shub_profile_destroy(&m);
}

/* ---- MARAC: moves and transfers ------------------------------------------ */

typedef struct pair {
    shub_scenario_t *sc;
    shub_profile_t *cov, *dud;
    sink_t in, out;
    const rec_t *ref;
} pair_t;

static void pair_start(pair_t *x, const char *scenario)
{
    static const char *const cov[] = {"coventry"}, *const dud[] = {"dudley"};
    memset(x, 0, sizeof *x);
    x->sc = load(fixture(scenario));
    x->cov = make("marac-coventry", "marac", cov, 1, x->sc, 9);
    x->dud = make("marac-dudley", "marac", dud, 1, x->sc, 9);
    x->ref =
        referral(&x->in, JUL1 + DAY, "P-00000000000000e5", "coventry", 17, "dash", 2);
    receive(x->cov, JUL1 + DAY, "wmp", x->ref);
    tick(x->cov, shub_scenario_end_ms(x->sc), &x->out, "marac-coventry");
}

static void pair_end(pair_t *x)
{
    sink_free(&x->in);
    sink_free(&x->out);
    shub_profile_destroy(&x->cov);
    shub_profile_destroy(&x->dud);
    shub_scenario_destroy(&x->sc);
}

/* Hands the rec to `to` at its time, then runs `to` for a day. */
static const rec_t *pass(pair_t *x, const rec_t *r, shub_profile_t *to, const char *to_id,
                         const char *type)
{
    size_t before = x->out.n;
    receive(to, r->ev.occurred_ms, r->by, r);
    tick(to, r->ev.occurred_ms + DAY, &x->out, to_id);
    for (size_t i = before; i < x->out.n; i++)
        if (strcmp(x->out.recs[i].ev.type, type) == 0)
            return &x->out.recs[i];
    fail_msg("%s did not answer %s with %s", to_id, r->ev.type, type);
    return NULL;
}

static void test_marac_move_sends_transfer_and_moved_area_notice(void **state)
{
    (void)state;
    pair_t x;
    pair_start(&x, "marac-move-missing.yaml");
    assert_int_equal(x.out.n, 4);
    const rec_t *dec = nth_of(&x.out, "marac.referral.decision", 0);
    const rec_t *tr = nth_of(&x.out, "marac.transfer", 0);
    const rec_t *moved = nth_of(&x.out, "subject.moved_area", 0);
    assert_non_null(nth_of(&x.out, "idva.notification", 0));
    assert_true(tr->ev.occurred_ms >= dec->ev.occurred_ms + 2 * DAY);
    assert_true(tr->ev.occurred_ms < shub_scenario_end_ms(x.sc));

    assert_to(tr, "marac@dudley", NULL);
    assert_string_equal(tr->ev.area, "dudley");
    assert_string_equal(tr->ev.subject_ref, "P-00000000000000e5");
    assert_string_equal(tr->ev.case_ref, dec->ev.case_ref);
    assert_null(tr->ev.reply_to);
    assert_string_equal(str_at(tr, "move.new_area"), "dudley");
    assert_non_null(str_at(tr, "move.date"));
    assert_non_null(shub_val_at(&tr->ev.payload, "move.temporary"));
    assert_non_null(str_at(tr, "move.new_address.line1"));
    assert_memory_equal(str_at(tr, "move.new_address.postcode"), "DY", 2);
    assert_non_null(shub_val_at(&tr->ev.payload, "heard_at_origin"));
    assert_string_equal(str_at(tr, "last_referral_date"), "2026-07-02");
    assert_null(shub_val_at(&tr->ev.payload, "minutes")); /* sent incomplete */
    assert_null(shub_val_at(&tr->ev.payload, "action_plan"));
    int_at(tr, "open_actions");
    assert_string_equal(str_at(tr, "victim.name"), "Farah Thornbrook");
    assert_string_equal(str_at(tr, "victim.dob"), "1991-03-14");
    assert_string_equal(str_at(tr, "victim.phone"), "07700 900123");
    assert_int_equal(int_at(tr, "risk.dash_score"), 17);
    assert_int_equal(array_at(tr, "children")->len, 2);

    /* The old area's partners learn that the person left, and nothing else. */
    assert_to(moved, "idva@coventry", "local-authority@coventry");
    assert_string_equal(moved->ev.area, "coventry");
    assert_string_equal(moved->ev.subject_ref, "P-00000000000000e5");
    assert_null(moved->ev.case_ref);
    assert_int_equal(moved->ev.payload.len, 2);
    assert_string_equal(str_at(moved, "left_area"), "coventry");
    assert_string_equal(str_at(moved, "date"), str_at(tr, "move.date"));
    assert_int_equal(moved->ev.occurred_ms, tr->ev.occurred_ms);
    pair_end(&x);
}

static void test_marac_transfer_missing_minutes_request_resend_ack(void **state)
{
    (void)state;
    pair_t x;
    pair_start(&x, "marac-move-missing.yaml");
    const rec_t *tr = nth_of(&x.out, "marac.transfer", 0);

    /* The new area asks for what is missing and hands over to its IDVAs. */
    size_t before = x.out.n;
    const rec_t *req =
        pass(&x, tr, x.dud, "marac-dudley", "marac.transfer.request_missing");
    assert_int_equal(x.out.n - before, 2);
    const rec_t *handover = nth_of(&x.out, "idva.notification", 1);
    assert_to(handover, "idva@dudley", NULL);
    assert_string_equal(str_at(handover, "victim.name"), "Farah Thornbrook");
    assert_to(req, "marac-coventry", NULL);
    assert_reply_to(req, tr, &x.out);
    assert_string_equal(req->ev.area, "dudley");
    assert_string_equal(req->ev.subject_ref, "P-00000000000000e5");
    assert_true(req->ev.occurred_ms > tr->ev.occurred_ms &&
                req->ev.occurred_ms <= tr->ev.occurred_ms + 4 * HOUR);
    const shub_val_t *missing = array_at(req, "missing");
    assert_int_equal(missing->len, 2);
    assert_string_equal(missing->as.items[0].as.str, "minutes");
    assert_string_equal(missing->as.items[1].as.str, "action_plan");

    /* The old area resends everything, in answer to the request. */
    before = x.out.n;
    const rec_t *again = pass(&x, req, x.cov, "marac-coventry", "marac.transfer");
    assert_int_equal(x.out.n - before, 1);
    assert_to(again, "marac@dudley", NULL);
    assert_reply_to(again, req, &x.out);
    assert_string_equal(again->ev.area, "dudley");
    assert_true(shub_val_equal(shub_val_at(&again->ev.payload, "move"),
                               shub_val_at(&tr->ev.payload, "move")));
    const shub_val_t *minutes = array_at(again, "minutes");
    const shub_val_t *plan = array_at(again, "action_plan");
    bool heard = shub_val_at(&again->ev.payload, "heard_at_origin")->as.b;
    assert_int_equal(minutes->len, heard ? 1 : 0);
    assert_int_equal(plan->len == 0, !heard);
    int64_t open = 0;
    for (uint32_t i = 0; i < plan->len; i++) {
        rec_t item = {.ev.payload = plan->as.items[i]};
        assert_memory_equal(str_at(&item, "action_id"), tr->ev.case_ref,
                            strlen(tr->ev.case_ref));
        assert_non_null(str_at(&item, "owner"));
        assert_non_null(str_at(&item, "due"));
        assert_non_null(str_at(&item, "description"));
        open += strcmp(str_at(&item, "status"), "open") == 0;
    }
    assert_int_equal(int_at(again, "open_actions"), open);

    /* The new area acknowledges the complete transfer. */
    before = x.out.n;
    const rec_t *ack = pass(&x, again, x.dud, "marac-dudley", "marac.transfer.ack");
    assert_int_equal(x.out.n - before, 1);
    assert_to(ack, "marac-coventry", NULL);
    assert_reply_to(ack, again, &x.out);
    assert_string_equal(str_at(ack, "new_case_ref"), handover->ev.case_ref);
    assert_memory_equal(str_at(ack, "new_case_ref"), "MARAC-DUD-26-", 13);
    const shub_val_t *items = array_at(ack, "received_items");
    assert_true(array_has(items, "minutes"));
    assert_true(array_has(items, "action_plan"));
    assert_true(array_has(items, "move"));
    assert_true(array_has(items, "last_referral_date"));

    /* The ack closes it: neither side sends anything more, not even for a
     * late second copy of the resend. */
    receive(x.cov, ack->ev.occurred_ms, "marac-dudley", ack);
    receive(x.dud, ack->ev.occurred_ms, "marac-coventry", again);
    before = x.out.n;
    tick(x.cov, JUL1 + 400 * DAY, &x.out, "marac-coventry");
    tick(x.dud, JUL1 + 400 * DAY, &x.out, "marac-dudley");
    assert_int_equal(x.out.n, before);
    assert_true(shub_profile_done(x.cov, JUL1 + 400 * DAY));
    assert_true(shub_profile_done(x.dud, JUL1 + 400 * DAY));
    pair_end(&x);
}

static void test_marac_transfer_complete_acknowledged_at_once(void **state)
{
    (void)state;
    pair_t x;
    pair_start(&x, "marac-move-complete.yaml");
    const rec_t *tr = nth_of(&x.out, "marac.transfer", 0);
    assert_non_null(shub_val_at(&tr->ev.payload, "minutes"));
    assert_non_null(shub_val_at(&tr->ev.payload, "action_plan"));
    size_t before = x.out.n;
    const rec_t *ack = pass(&x, tr, x.dud, "marac-dudley", "marac.transfer.ack");
    assert_int_equal(x.out.n - before, 2); /* the IDVA handover and the ack */
    assert_int_equal(count_type(&x.out, "marac.transfer.request_missing"), 0);
    assert_reply_to(ack, tr, &x.out);
    assert_to(ack, "marac-coventry", NULL);

    /* A later referral in the new area within 12 months is a repeat there. */
    const rec_t *again = referral(&x.in, tr->ev.occurred_ms + 30 * DAY,
                                  "P-00000000000000e5", "dudley", 6, NULL, 0);
    receive(x.dud, again->ev.occurred_ms, "wmp", again);
    tick(x.dud, again->ev.occurred_ms + 3 * DAY, &x.out, "marac-dudley");
    const rec_t *dec = nth_of(&x.out, "marac.referral.decision", 1);
    assert_non_null(dec);
    assert_string_equal(str_at(dec, "decision"), "accepted");
    assert_string_equal(str_at(dec, "reason"),
                        "repeat: referred again within 12 months of 2026-07-02");
    pair_end(&x);
}

static void test_marac_external_move_goes_to_external_area(void **state)
{
    (void)state;
    pair_t x;
    pair_start(&x, "marac-move-external.yaml");
    const rec_t *tr = nth_of(&x.out, "marac.transfer", 0);
    assert_non_null(tr);
    assert_to(tr, "marac@staffordshire", NULL);
    assert_string_equal(tr->ev.area, "staffordshire");
    assert_memory_equal(str_at(tr, "move.new_address.postcode"), "S", 1);
    const rec_t *moved = nth_of(&x.out, "subject.moved_area", 0);
    assert_to(moved, "idva@coventry", "local-authority@coventry");
    pair_end(&x);
}

/* ---- a quarter at the West Midlands rates -------------------------------- */

typedef struct region {
    shub_scenario_t *sc;
    shub_profile_t *police;
    shub_profile_t *marac[N_FORCE];
    char marac_id[N_FORCE][40];
    sink_t out;
} region_t;

static int find_marac(const region_t *g, const char *selector)
{
    for (int i = 0; i < N_FORCE; i++)
        if (strncmp(selector, "marac@", 6) == 0 && strcmp(selector + 6, ALL[i]) == 0)
            return i;
    for (int i = 0; i < N_FORCE; i++)
        if (strcmp(selector, g->marac_id[i]) == 0)
            return i;
    return -1;
}

/* Police and the eight MARACs, with a router that delivers marac.* events
 * between them an hour-step at a time (the broker's part, minus policy). */
static void region_run(region_t *g)
{
    g->sc = load(quarter_path());
    g->police = make("wmp", "police", ALL, N_FORCE, g->sc, 2026);
    for (int i = 0; i < N_FORCE; i++) {
        snprintf(g->marac_id[i], sizeof g->marac_id[i], "marac-%s", ALL[i]);
        g->marac[i] = make(g->marac_id[i], "marac", ALL + i, 1, g->sc, 2026);
    }
    int64_t end = shub_scenario_end_ms(g->sc) + 30 * DAY;
    size_t cursor = 0; /* everything before it has been delivered */
    for (int64_t t = JUL1; t <= end; t += HOUR) {
        tick(g->police, t, &g->out, "wmp");
        for (int i = 0; i < N_FORCE; i++)
            tick(g->marac[i], t, &g->out, g->marac_id[i]);
        for (size_t k = cursor; k < g->out.n; k++, cursor++) {
            rec_t *r = &g->out.recs[k];
            if (r->delivered || strncmp(r->ev.type, "marac.", 6) != 0 ||
                strcmp(r->ev.type, "marac.referral.decision") == 0)
                continue;
            r->delivered = true;
            int to = find_marac(g, r->to[0]);
            if (to >= 0)
                receive(g->marac[to], t, r->by, r);
        }
    }
    bool done = shub_profile_done(g->police, end);
    for (int i = 0; i < N_FORCE; i++)
        done = done && shub_profile_done(g->marac[i], end);
    assert_true(done);
}

static void region_free(region_t *g)
{
    sink_free(&g->out);
    shub_profile_destroy(&g->police);
    for (int i = 0; i < N_FORCE; i++)
        shub_profile_destroy(&g->marac[i]);
    shub_scenario_destroy(&g->sc);
}

static void test_region_quarter_rates_match_west_midlands(void **state)
{
    (void)state;
    region_t g = {0};
    region_run(&g);
    const sink_t *s = &g.out;

    /* ~1,300 referrals, busiest area ~4x the smallest */
    size_t referrals = count_type(s, "marac.referral");
    assert_in_range(referrals, 1170, 1430);
    size_t per_area[N_FORCE] = {0};
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->recs[i].ev.type, "marac.referral") == 0)
            per_area[find_marac(&g, s->recs[i].to[0])]++;
    size_t hi = 0, lo = 0;
    for (int i = 1; i < N_FORCE; i++) {
        hi = per_area[i] > per_area[hi] ? (size_t)i : hi;
        lo = per_area[i] < per_area[lo] ? (size_t)i : lo;
    }
    assert_string_equal(ALL[hi], "birmingham-east");
    assert_string_equal(ALL[lo], "solihull");
    double ratio = (double)per_area[hi] / (double)per_area[lo];
    assert_true(ratio >= 3.0 && ratio <= 5.0);

    /* every referral decided within 48 h (plus the router's hour), ~8 % withdrawn */
    size_t decisions = 0, withdrawn = 0, accepted = 0;
    for (size_t i = 0; i < s->n; i++) {
        const rec_t *d = &s->recs[i];
        if (strcmp(d->ev.type, "marac.referral.decision") != 0)
            continue;
        decisions++;
        const rec_t *ref = &s->recs[index_of(d->ev.reply_to)];
        assert_string_equal(ref->ev.type, "marac.referral");
        assert_to(d, "wmp", NULL);
        assert_true(d->ev.occurred_ms - ref->ev.occurred_ms <= 49 * HOUR);
        withdrawn += strcmp(str_at(d, "decision"), "withdrawn") == 0;
        accepted += strcmp(str_at(d, "decision"), "accepted") == 0;
    }
    assert_int_equal(decisions, referrals);
    assert_int_equal(accepted + withdrawn,
                     decisions); /* police referrals meet a criterion */
    double wf = (double)withdrawn / (double)decisions;
    assert_true(wf >= 0.05 && wf <= 0.11);

    /* every transfer in the force ends acknowledged; every request is answered */
    size_t first = 0, external = 0, requests = 0, resends = 0, acks = 0, moved = 0;
    for (size_t i = 0; i < s->n; i++) {
        const rec_t *r = &s->recs[i];
        if (strcmp(r->ev.type, "subject.moved_area") == 0)
            moved++;
        if (strcmp(r->ev.type, "marac.transfer.request_missing") == 0) {
            requests++;
            assert_string_equal(s->recs[index_of(r->ev.reply_to)].ev.type,
                                "marac.transfer");
        }
        if (strcmp(r->ev.type, "marac.transfer.ack") == 0) {
            acks++;
            const rec_t *tr = &s->recs[index_of(r->ev.reply_to)];
            assert_string_equal(tr->ev.type, "marac.transfer");
            assert_non_null(shub_val_at(&tr->ev.payload, "minutes"));
        }
        if (strcmp(r->ev.type, "marac.transfer") != 0)
            continue;
        if (r->ev.reply_to) {
            resends++;
            assert_string_equal(s->recs[index_of(r->ev.reply_to)].ev.type,
                                "marac.transfer.request_missing");
        } else if (find_marac(&g, r->to[0]) < 0) {
            external++;
            assert_string_equal(r->to[0], "marac@staffordshire");
        } else {
            first++;
        }
    }
    assert_true(first >= 20); /* 5 % of ~1200 accepted, less those late in the quarter */
    assert_int_equal(moved, first + external);
    assert_true(requests >= 1);
    assert_int_equal(resends, requests);
    assert_int_equal(acks, first);
    region_free(&g);
}

/* ---- local authority ----------------------------------------------------- */

static const rec_t *mash_referral(sink_t *in, int64_t at, const char *area,
                                  const char *urgency)
{
    shub_arena_t *a = shub_arena_new(0);
    shub_val_t pl = shub_val_map(), child = shub_val_map();
    assert_int_equal(shub_val_put(a, &child, "name", text(a, "Zara Ashcombe")), 0);
    assert_int_equal(shub_val_put(a, &child, "dob", text(a, "2017-09-01")), 0);
    assert_int_equal(shub_val_put(a, &pl, "child", child), 0);
    assert_int_equal(shub_val_put(a, &pl, "urgency", text(a, urgency)), 0);
    const char *to[] = {"local-authority@x"};
    shub_share_t share = {
        .ev = {.type = "mash.referral",
               .occurred_ms = at,
               .subject_ref = "P-00000000000000f6",
               .area = area,
               .purpose = "safeguarding",
               .basis = "uk-gdpr-6-1-e",
               .consent = SHUB_CONSENT_GIVEN,
               .payload = pl},
        .to = to,
        .to_count = 1,
    };
    sink_emit(in, &share);
    shub_arena_destroy(&a);
    return &in->recs[in->n - 1];
}

static void test_la_mash_referral_decided_within_one_working_day(void **state)
{
    (void)state;
    static const char *const area[] = {"dudley"};
    shub_profile_t *la = make("dudley-mbc", "local-authority", area, 1, NULL, 3);
    sink_t in = {0}, out = {0};
    static const struct {
        int64_t at, deadline;
    } cases[] = {
        {FRI3 + 16 * HOUR, MON6 + 16 * HOUR},       /* Friday 16:00 -> Monday 16:00 */
        {TUE7 + 10 * HOUR, TUE7 + DAY + 10 * HOUR}, /* Tuesday 10:00 -> Wednesday 10:00 */
        {FRI3 + DAY + 12 * HOUR, MON6 + DAY},       /* Saturday -> Tuesday 00:00 */
    };
    for (size_t i = 0; i < 3; i++) {
        const rec_t *ref =
            mash_referral(&in, cases[i].at, "dudley", i ? "routine" : "immediate");
        receive(la, cases[i].at, "wmp", ref);
        tick(la, cases[i].deadline, &out, "dudley-mbc");
        assert_int_equal(out.n, i + 1);
        const rec_t *d = &out.recs[i];
        assert_string_equal(d->ev.type, "mash.decision");
        assert_to(d, "wmp", NULL);
        assert_reply_to(d, ref, &in);
        assert_string_equal(d->ev.area, "dudley");
        assert_string_equal(d->ev.subject_ref, "P-00000000000000f6");
        assert_int_equal(d->ev.consent, SHUB_CONSENT_GIVEN);
        assert_true(d->ev.occurred_ms > cases[i].at &&
                    d->ev.occurred_ms <= cases[i].deadline);
        assert_true(d->ev.occurred_ms >= cases[i].at + 30 * 60000);
        int wd = (int)(((d->ev.occurred_ms / DAY) + 3) % 7);
        assert_true(wd < 5 || d->ev.occurred_ms % DAY == 0); /* never at a weekend */
        const char *dec = str_at(d, "decision");
        assert_true(strcmp(dec, "strategy-discussion") == 0 ||
                    strcmp(dec, "child-and-family-assessment") == 0 ||
                    strcmp(dec, "early-help") == 0 ||
                    strcmp(dec, "no-further-action") == 0);
        assert_non_null(str_at(d, "reason"));
        assert_memory_equal(d->ev.case_ref, "MASH-DUD-26-", 12);
    }
    sink_free(&in);
    sink_free(&out);
    shub_profile_destroy(&la);
}

static void test_la_originates_mash_referrals_to_neighbours(void **state)
{
    (void)state;
    shub_scenario_t *sc = load(quarter_path());
    static const char *const area[] = {"birmingham-east", "birmingham-west"};
    shub_profile_t *la = make("bcc", "local-authority", area, 2, sc, 3);
    sink_t out = {0};
    tick(la, shub_scenario_end_ms(sc), &out, "bcc");
    /* 5 a week region-wide; Birmingham's areas carry 7 of 17 parts: ~27 */
    assert_in_range(out.n, 12, 45);
    for (size_t i = 0; i < out.n; i++) {
        const rec_t *r = &out.recs[i];
        assert_string_equal(r->ev.type, "mash.referral");
        assert_true(strcmp(r->ev.area, "birmingham-east") != 0 &&
                    strcmp(r->ev.area, "birmingham-west") != 0 &&
                    strcmp(r->ev.area, "staffordshire") != 0);
        char sel[96];
        snprintf(sel, sizeof sel, "local-authority@%s", r->ev.area);
        assert_to(r, sel, NULL);
        assert_non_null(str_at(r, "child.name"));
        assert_non_null(str_at(r, "child.dob"));
        assert_non_null(str_at(r, "concern"));
        assert_true(array_at(r, "household")->len >= 1);
        assert_non_null(str_at(r, "urgency"));
    }
    sink_free(&out);
    shub_profile_destroy(&la);
    shub_scenario_destroy(&sc);
}

/* ---- probation, health, IDVA --------------------------------------------- */

static void test_probation_release_notices_to_police_and_council(void **state)
{
    (void)state;
    shub_scenario_t *sc = load(quarter_path());
    shub_profile_t *nps = make("nps-midlands", "probation", ALL, N_FORCE, sc, 11);
    shub_profile_t *crc = make("swm-crc", "probation", ALL, N_FORCE, sc, 11);
    shub_profile_t *other = make("hmpps-other", "probation", ALL, N_FORCE, sc, 11);
    sink_t out = {0}, none = {0};
    tick(nps, shub_scenario_end_ms(sc), &out, "nps-midlands");
    size_t from_nps = out.n;
    tick(crc, shub_scenario_end_ms(sc), &out, "swm-crc");
    tick(other, shub_scenario_end_ms(sc), &none, "hmpps-other"); /* not in origin */
    assert_int_equal(none.n, 0);
    assert_in_range(from_nps, 70, 125); /* half of 15 a week for 13 weeks */
    assert_in_range(out.n, 165, 225);   /* ~195 between the two */
    size_t mappa = 0;
    for (size_t i = 0; i < out.n; i++) {
        const rec_t *r = &out.recs[i];
        char police[96], council[96];
        assert_string_equal(r->ev.type, "prison.release_notice");
        snprintf(police, sizeof police, "police@%s", r->ev.area);
        snprintf(council, sizeof council, "local-authority@%s", r->ev.area);
        assert_to(r, police, council);
        assert_string_equal(r->ev.purpose, "offender-management");
        assert_string_equal(r->ev.basis, "dpa-2018-part3");
        assert_string_equal(str_at(r, "release.area"), r->ev.area);
        int64_t release = date_ms(str_at(r, "release.date"));
        assert_true(release >= r->ev.occurred_ms + 6 * DAY &&
                    release <= r->ev.occurred_ms + 28 * DAY);
        assert_non_null(str_at(r, "release.type"));
        assert_non_null(str_at(r, "release.address.postcode"));
        assert_non_null(str_at(r, "offender.name"));
        assert_non_null(str_at(r, "offender.dob"));
        assert_non_null(str_at(r, "offender.pnc_id"));
        assert_true(array_at(r, "licence_conditions")->len >= 2);
        assert_non_null(str_at(r, "offence_summary"));
        if (shub_val_at(&r->ev.payload, "mappa")) {
            mappa++;
            assert_in_range(int_at(r, "mappa.category"), 1, 3);
            assert_in_range(int_at(r, "mappa.level"), 1, 3);
        }
    }
    assert_true(mappa > out.n / 3 && mappa < out.n * 5 / 6); /* 60 % */
    sink_free(&out);
    sink_free(&none);
    shub_profile_destroy(&nps);
    shub_profile_destroy(&crc);
    shub_profile_destroy(&other);
    shub_scenario_destroy(&sc);
}

static bool nhs_valid(const char *s)
{
    int d[10], n = 0, sum = 0;
    for (; *s; s++)
        if (*s != ' ') {
            if (*s < '0' || *s > '9' || n == 10)
                return false;
            d[n++] = *s - '0';
        }
    if (n != 10 || d[0] != 9 || d[1] != 9 || d[2] != 9)
        return false;
    for (int i = 0; i < 9; i++)
        sum += d[i] * (10 - i);
    int check = 11 - sum % 11;
    return (check == 11 ? 0 : check) == d[9];
}

static void test_health_istv_batches_monthly_with_patient_to_strip(void **state)
{
    (void)state;
    shub_scenario_t *sc = load(quarter_path());
    static const char *const area[] = {"birmingham-east", "solihull"};
    shub_profile_t *h = make("uhb", "health", area, 2, sc, 13);
    sink_t out = {0};
    tick(h, JUL1 + 31 * DAY - 1, &out, "uhb");
    assert_int_equal(out.n, 0); /* nothing before the month ends */
    tick(h, shub_scenario_end_ms(sc), &out, "uhb");
    assert_int_equal(out.n, 6); /* July, August, September (to the end) x 2 areas */
    static const char *const from[] = {"2026-07-01", "2026-08-01", "2026-09-01"};
    static const char *const to[] = {"2026-07-31", "2026-08-31", "2026-09-29"};
    static const int64_t at[] = {JUL1 + 31 * DAY, JUL1 + 62 * DAY, JUL1 + 91 * DAY};
    for (size_t i = 0; i < out.n; i++) {
        const rec_t *r = &out.recs[i];
        char csp[96], vrp[96];
        assert_string_equal(r->ev.type, "ae.istv.batch");
        assert_string_equal(r->ev.area, area[i % 2]);
        snprintf(csp, sizeof csp, "local-authority@%s", area[i % 2]);
        snprintf(vrp, sizeof vrp, "partnership@%s", area[i % 2]);
        assert_to(r, csp, vrp);
        assert_int_equal(r->ev.occurred_ms, at[i / 2]);
        assert_string_equal(r->ev.purpose, "violence-reduction");
        assert_string_equal(r->ev.basis, "uk-gdpr-6-1-e");
        assert_null(r->ev.subject_ref);
        assert_string_equal(str_at(r, "period.from"), from[i / 2]);
        assert_string_equal(str_at(r, "period.to"), to[i / 2]);
        assert_non_null(str_at(r, "site"));
        const shub_val_t *as = array_at(r, "assaults");
        assert_in_range(as->len, 20, 80); /* 10 a week */
        for (uint32_t k = 0; k < as->len; k++) {
            rec_t a = {.ev.payload = as->as.items[k]};
            assert_non_null(str_at(&a, "arrival_time"));
            assert_true(strcmp(str_at(&a, "assault_time"), str_at(&a, "arrival_time")) <
                        0);
            assert_non_null(str_at(&a, "method"));
            assert_non_null(str_at(&a, "location_type"));
            assert_non_null(str_at(&a, "patient.name"));
            assert_non_null(str_at(&a, "patient.dob"));
            assert_true(nhs_valid(str_at(&a, "patient.nhs_number")));
        }
    }
    assert_true(shub_profile_done(h, shub_scenario_end_ms(sc)));
    sink_free(&out);
    shub_profile_destroy(&h);
    shub_scenario_destroy(&sc);
}

static void test_idva_receives_and_emits_nothing(void **state)
{
    (void)state;
    shub_scenario_t *sc = load(quarter_path());
    static const char *const area[] = {"coventry"};
    shub_profile_t *idva = make("idva-coventry", "idva", area, 1, sc, 1);
    sink_t in = {0}, out = {0};
    const rec_t *r =
        referral(&in, JUL1 + DAY, "P-0000000000000107", "coventry", 16, "dash", 0);
    receive(idva, JUL1 + DAY, "marac-coventry", r);
    tick(idva, shub_scenario_end_ms(sc) - 1, &out, "idva-coventry");
    assert_false(shub_profile_done(idva, shub_scenario_end_ms(sc) - 1));
    tick(idva, shub_scenario_end_ms(sc), &out, "idva-coventry");
    assert_int_equal(out.n, 0);
    assert_true(shub_profile_done(idva, shub_scenario_end_ms(sc)));
    sink_free(&in);
    sink_free(&out);
    shub_profile_destroy(&idva);
    shub_scenario_destroy(&sc);
}

/* ---- allocation failure -------------------------------------------------- */

typedef struct alloc_case {
    const char *id, *kind;
    const char *const *areas;
    size_t n_areas;
    const char *scenario; /* NULL: the quarter */
    int64_t until;
    bool referral; /* feed one marac.referral first */
} alloc_case_t;

/* One run: new, optionally receive, tick. With failures injected, the run
 * either completes or returns SHUB_ENOMEM; then, failures off, receive and
 * tick again must complete and reach the reference count: nothing lost,
 * nothing doubled. */
static int alloc_run(const alloc_case_t *c, const shub_scenario_t *sc, const rec_t *ref,
                     long fail_after, size_t *count)
{
    shub_profile_org_t org = {c->id, c->kind, c->areas, c->n_areas, ALL, N_ALL};
    shub_profile_t *p = NULL;
    sink_t s = {.count_only = true};
    shub_alloc_fail_after(fail_after);
    int rc = shub_profile_new(&org, sc, 77, &p, NULL);
    bool received = false;
    if (rc == 0 && c->referral) {
        rc = shub_profile_receive(p, JUL1 + DAY, "wmp", &ref->ev, sink_emit, &s);
        received = rc == 0;
    }
    if (rc == 0)
        rc = shub_profile_tick(p, c->until, sink_emit, &s);
    shub_alloc_fail_after(-1);
    assert_true(rc == 0 || rc == SHUB_ENOMEM);
    if (rc && p) {
        if (c->referral && !received)
            assert_int_equal(
                shub_profile_receive(p, JUL1 + DAY, "wmp", &ref->ev, sink_emit, &s), 0);
        assert_int_equal(shub_profile_tick(p, c->until, sink_emit, &s), 0);
    }
    shub_profile_destroy(&p);
    *count = s.count;
    return rc;
}

static void test_shub_profile_every_allocation_failure_is_clean(void **state)
{
    (void)state;
    static const char *const cov[] = {"coventry"};
    static const char *const uhb[] = {"birmingham-east", "solihull"};
    const alloc_case_t cases[] = {
        {"wmp", "police", ALL, N_FORCE, NULL, JUL1 + 7 * DAY, false},
        {"marac-coventry", "marac", cov, 1, "marac-move-missing.yaml", JUL1 + 91 * DAY,
         true},
        {"coventry-cc", "local-authority", cov, 1, NULL, JUL1 + 28 * DAY, false},
        {"nps-midlands", "probation", ALL, N_FORCE, NULL, JUL1 + 14 * DAY, false},
        {"uhb", "health", uhb, 2, NULL, JUL1 + 62 * DAY, false},
    };
    sink_t in = {0};
    const rec_t *ref =
        referral(&in, JUL1 + DAY, "P-00000000000000a8", "coventry", 18, "dash", 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const alloc_case_t *c = &cases[i];
        shub_scenario_t *sc = load(c->scenario ? fixture(c->scenario) : quarter_path());
        size_t expect = 0, got = 0;
        assert_int_equal(alloc_run(c, sc, ref, -1, &expect), 0);
        assert_true(expect > 0);
        long n = 0;
        for (;; n++) {
            int rc = alloc_run(c, sc, ref, n, &got);
            long failures = shub_alloc_failures();
            if (rc == 0 && failures == 0)
                break;
            if (got) /* the profile was made: the retried run reaches the same end */
                assert_int_equal(got, expect);
        }
        assert_true(n > 5); /* the profile really allocates along the way */
        assert_int_equal(got, expect);
        shub_scenario_destroy(&sc);
    }
    sink_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shub_scenario_load_good_reads_every_key),
        cmocka_unit_test(test_shub_scenario_load_minimal_uses_defaults),
        cmocka_unit_test(test_shub_scenario_load_example_quarter_loads),
        cmocka_unit_test(test_shub_scenario_load_unknown_key_names_line),
        cmocka_unit_test(test_shub_scenario_load_bad_date_names_line),
        cmocka_unit_test(test_shub_scenario_load_negative_rate_names_line),
        cmocka_unit_test(test_shub_scenario_load_other_errors_name_line),
        cmocka_unit_test(test_shub_scenario_load_missing_file_returns_eio),
        cmocka_unit_test(test_shub_profile_new_unknown_kind_returns_enotfound),
        cmocka_unit_test(test_police_tick_week_emits_well_formed_referrals),
        cmocka_unit_test(test_police_repeat_referral_is_same_person_within_12_months),
        cmocka_unit_test(test_custody_tick_emits_arrest_referrals_to_treatment),
        cmocka_unit_test(test_police_same_seed_same_stream_other_seed_differs),
        cmocka_unit_test(test_shub_profile_tick_failed_emit_retries_same_event),
        cmocka_unit_test(
            test_marac_referral_accepted_decides_and_notifies_idva_within_48h),
        cmocka_unit_test(test_marac_referral_withdrawn_decides_without_idva),
        cmocka_unit_test(test_marac_repeat_within_12_months_accepted_after_rejected),
        cmocka_unit_test(test_marac_receive_odd_events_survives),
        cmocka_unit_test(test_marac_move_sends_transfer_and_moved_area_notice),
        cmocka_unit_test(test_marac_transfer_missing_minutes_request_resend_ack),
        cmocka_unit_test(test_marac_transfer_complete_acknowledged_at_once),
        cmocka_unit_test(test_marac_external_move_goes_to_external_area),
        cmocka_unit_test(test_region_quarter_rates_match_west_midlands),
        cmocka_unit_test(test_la_mash_referral_decided_within_one_working_day),
        cmocka_unit_test(test_la_originates_mash_referrals_to_neighbours),
        cmocka_unit_test(test_probation_release_notices_to_police_and_council),
        cmocka_unit_test(test_health_istv_batches_monthly_with_patient_to_strip),
        cmocka_unit_test(test_idva_receives_and_emits_nothing),
        cmocka_unit_test(test_shub_profile_every_allocation_failure_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
