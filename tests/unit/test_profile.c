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
#include <unistd.h>

#include "sharehub/alloc.h"
#include "sharehub/err.h"
#include "sharehub/log.h"
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

/* Events of a type emitted from index `from` on. */
static size_t count_since(const sink_t *s, size_t from, const char *type)
{
    size_t n = 0;
    for (size_t i = from; i < s->n; i++)
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

static void assert_to3(const rec_t *r, const char *a, const char *b, const char *c)
{
    assert_int_equal(r->n_to, 3);
    assert_string_equal(r->to[0], a);
    assert_string_equal(r->to[1], b);
    assert_string_equal(r->to[2], c);
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
    expect_load_error(
        "bad-negative-rate.yaml", SHUB_ECONFIG, 5, 22,
        "'probation.releases_per_week' must be a number of 0 or more, not '-15'");
}

static void test_shub_scenario_load_other_errors_name_line(void **state)
{
    (void)state;
    expect_load_error(
        "bad-fraction.yaml", SHUB_ECONFIG, 4, 23,
        "'marac.withdrawn_fraction' must be a number from 0 to 1, not '1.5'");
    expect_load_error("bad-duplicate-key.yaml", SHUB_ECONFIG, 4, 1,
                      "duplicate key 'days' (first on line 2)");
    expect_load_error("bad-missing-days.yaml", SHUB_ECONFIG, 1, 1,
                      "missing required key 'days'");
    expect_load_error(
        "bad-weight.yaml", SHUB_ECONFIG, 6, 13,
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

static void test_shub_scenario_load_new_keys_name_line(void **state)
{
    (void)state;
    expect_load_error("bad-sources.yaml", SHUB_ECONFIG, 4, 12,
                      "the shares in 'marac.sources' add up to 0.9, not 1");
    expect_load_error("bad-source-share.yaml", SHUB_ECONFIG, 6, 24,
                      "'marac.sources.probation.share' must be a number from 0 to 1, not "
                      "'lots'");
    expect_load_error(
        "bad-parts.yaml", SHUB_ECONFIG, 3, 50,
        "'idva.engaged_fraction' and 'idva.declined_fraction' add up to 1.1, "
        "more than 1");
    expect_load_error(
        "bad-withdrawn-by-area.yaml", SHUB_ECONFIG, 4, 33,
        "'marac.withdrawn_by_area.coventry' must be a number from 0 to 1, not "
        "'1.2'");
}

/* marac.sources splits the referrals among the kinds, and a kind's part
 * among its `origin` orgs; a kind not named refers no one. */
static void test_scenario_sources_split_referrals_by_kind_and_origin(void **state)
{
    (void)state;
    shub_scenario_t *sc = load(fixture("good.yaml"));
    static const char *const cov[] = {"coventry"}, *const both[] = {"coventry", "dudley"};
    static const struct {
        const char *id, *kind;
        const char *const *areas;
        size_t n;
        size_t lo, hi; /* a week's referrals */
    } orgs[] = {
        {"wmp", "police", both, 2, 55, 65},            /* 0.6 of 100 */
        {"idva-coventry", "idva", cov, 1, 12, 18},     /* 0.2 of coventry's 3/4 */
        {"nps-midlands", "probation", both, 2, 8, 12}, /* 0.2, half each */
        {"hmpps-other", "probation", both, 2, 0, 0},   /* not in origin */
        {"uhcw", "health", cov, 1, 0, 0},              /* no share */
    };
    for (size_t i = 0; i < sizeof orgs / sizeof orgs[0]; i++) {
        shub_profile_t *p =
            make(orgs[i].id, orgs[i].kind, orgs[i].areas, orgs[i].n, sc, 4);
        sink_t out = {0};
        tick(p, JUL1 + 7 * DAY, &out, orgs[i].id);
        size_t n = count_type(&out, "marac.referral");
        if (n < orgs[i].lo || n > orgs[i].hi)
            fail_msg("%s: %zu referrals in a week, want %zu..%zu", orgs[i].id, n,
                     orgs[i].lo, orgs[i].hi);
        sink_free(&out);
        shub_profile_destroy(&p);
    }
    shub_scenario_destroy(&sc);
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
    assert_in_range(n, 50, 80); /* 64 % of 101 a week */
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
        static const char *const factors[] = {"risk.factors.coercive_control",
                                              "risk.factors.knife_used",
                                              "risk.factors.child_contact_conflict"};
        for (size_t k = 0; k < 3; k++) {
            const shub_val_t *f = shub_val_at(&r->ev.payload, factors[k]);
            assert_non_null(f);
            assert_int_equal(f->type, SHUB_VAL_BOOL);
        }
        if (array_at(r, "children")->len == 0)
            assert_false(
                shub_val_at(&r->ev.payload, "risk.factors.child_contact_conflict")->as.b);
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
    assert_in_range(repeats, 100, 260); /* 25 % of ~840, fewer early in the quarter */
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
    assert_false(shub_val_bool_at(&dec->ev.payload, "repeat"));
    assert_false(shub_val_bool_at(&dec->ev.payload, "complex"));
    assert_non_null(shub_val_at(&dec->ev.payload, "complex"));

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

    /* After the meeting each action agreed goes to the agency that owns it;
     * with no update back, a reminder the day after it falls due. Nothing
     * else, ever. */
    char case_ref[40];
    snprintf(case_ref, sizeof case_ref, "%s", dec->ev.case_ref);
    int64_t meeting = date_ms(str_at(dec, "meeting_date"));
    tick(m, shub_scenario_end_ms(sc) + 90 * DAY, &out, "marac-coventry");
    size_t raised = 0, overdue = 0;
    for (size_t i = 2; i < out.n; i++) {
        const rec_t *a = &out.recs[i];
        assert_string_equal(a->ev.type, "marac.action");
        char sel[96];
        snprintf(sel, sizeof sel, "%s@coventry", str_at(a, "owner"));
        assert_to(a, sel, NULL);
        assert_string_equal(a->ev.case_ref, case_ref);
        assert_string_equal(str_at(a, "case_ref"), case_ref);
        assert_memory_equal(str_at(a, "action_id"), case_ref, strlen(case_ref));
        assert_non_null(str_at(a, "description"));
        int64_t due = date_ms(str_at(a, "due"));
        assert_true(due >= meeting + 7 * DAY && due <= meeting + 28 * DAY);
        if (strcmp(str_at(a, "status"), "open") == 0) {
            raised++;
            assert_true(a->ev.occurred_ms > meeting && a->ev.occurred_ms < meeting + DAY);
        } else {
            assert_string_equal(str_at(a, "status"), "overdue");
            overdue++;
            assert_true(a->ev.occurred_ms > due + DAY);
        }
    }
    assert_in_range(raised, 1, 3);
    assert_true(overdue <= raised);
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

/* ---- the repeat rule at its edges ------------------------------------------ */

static int64_t at_text(const char *text)
{
    int64_t ms = 0;
    if (shub_time_parse(text, &ms, NULL) != 0)
        fail_msg("bad time %s", text);
    return ms;
}

/* A fresh MARAC hears a high-risk referral at `first`, then one below the
 * threshold (DASH 8, no criterion) about the same person at `second`: only
 * a repeat is accepted. Returns the second decision. */
static bool second_is_repeat(const char *first, const char *second)
{
    shub_scenario_t *sc = load(fixture("marac-stay.yaml"));
    static const char *const area[] = {"walsall"};
    shub_profile_t *m = make("marac-walsall", "marac", area, 1, sc, 5);
    sink_t in = {0}, out = {0};
    int64_t t1 = at_text(first), t2 = at_text(second);
    receive(m, t1, "wmp",
            referral(&in, t1, "P-00000000000000c3", "walsall", 15, "dash", 0));
    receive(m, t2, "wmp", referral(&in, t2, "P-00000000000000c3", "walsall", 8, NULL, 0));
    tick(m, t2 + 3 * DAY, &out, "marac-walsall");
    const rec_t *d = nth_of(&out, "marac.referral.decision", 1);
    bool repeat = strcmp(str_at(d, "decision"), "accepted") == 0;
    assert_int_equal(shub_val_bool_at(&d->ev.payload, "repeat"), repeat);
    assert_int_equal(shub_profile_is_repeat(t1, t2), repeat);
    sink_free(&in);
    sink_free(&out);
    shub_profile_destroy(&m);
    shub_scenario_destroy(&sc);
    return repeat;
}

static void test_marac_repeat_boundary_calendar_months_on_london_clock(void **state)
{
    (void)state;
    static const struct {
        const char *first, *second;
        bool repeat;
    } cases[] = {
        /* 12 months less a minute, exactly, and a minute more */
        {"2026-07-14T15:00:00Z", "2027-07-14T14:59:00Z", true},
        {"2026-07-14T15:00:00Z", "2027-07-14T15:00:00Z", false},
        {"2026-07-14T15:00:00Z", "2027-07-14T15:01:00Z", false},
        /* from 29 February the anniversary is 28 February */
        {"2028-02-29T10:00:00Z", "2029-02-28T09:59:00Z", true},
        {"2028-02-29T10:00:00Z", "2029-02-28T10:00:00Z", false},
        /* across 29 February: 366 days, still within 12 months */
        {"2027-03-01T10:00:00Z", "2028-02-29T10:00:00Z", true},
        {"2027-03-01T10:00:00Z", "2028-03-01T10:00:00Z", false},
        /* local midnight in BST (23:00 UTC the day before) ... */
        {"2026-07-15T00:00:00+01:00", "2027-07-14T23:59:00+01:00", true},
        {"2026-07-15T00:00:00+01:00", "2027-07-15T00:00:00+01:00", false},
        /* ... and in GMT */
        {"2027-01-15T00:00:00Z", "2028-01-14T23:59:00Z", true},
        {"2027-01-15T00:00:00Z", "2028-01-15T00:00:00Z", false},
        /* midnight BST, its anniversary midnight GMT: the clocks went back a
         * day earlier the next year, and London's clock decides */
        {"2025-10-26T00:00:00+01:00", "2026-10-25T23:30:00Z", true},
        {"2025-10-26T00:00:00+01:00", "2026-10-26T00:00:00Z", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (second_is_repeat(cases[i].first, cases[i].second) != cases[i].repeat)
            fail_msg("%s after %s: want %s", cases[i].second, cases[i].first,
                     cases[i].repeat ? "a repeat" : "not a repeat");
    assert_false(shub_profile_is_repeat(INT64_MIN, at_text("2026-07-14T15:00:00Z")));
}

/* A copy of transfer tr without the keys named: an older sender's. */
static const rec_t *transfer_without(sink_t *in, const rec_t *tr, const char *drop)
{
    shub_arena_t *a = shub_arena_new(0);
    shub_val_t pl = shub_val_map();
    for (uint32_t i = 0; i < tr->ev.payload.len; i++)
        if (strcmp(tr->ev.payload.as.pairs[i].key, drop) != 0)
            assert_int_equal(shub_val_put(a, &pl, tr->ev.payload.as.pairs[i].key,
                                          tr->ev.payload.as.pairs[i].val),
                             0);
    const char *to[] = {"marac@dudley"};
    shub_share_t share = {.ev = tr->ev, .to = to, .to_count = 1};
    memset(&share.ev.id, 0, sizeof share.ev.id); /* the sink gives it one */
    share.ev.payload = pl;
    sink_emit(in, &share);
    shub_arena_destroy(&a);
    return &in->recs[in->n - 1];
}

/* Dudley takes over a transferred case, then hears a referral below the
 * threshold about her at `second`; returns whether it was a repeat. */
static bool repeat_after_transfer(const rec_t *tr, const char *second)
{
    shub_scenario_t *sc = load(fixture("marac-move-complete.yaml"));
    static const char *const area[] = {"dudley"};
    shub_profile_t *dud = make("marac-dudley", "marac", area, 1, sc, 9);
    sink_t in = {0}, out = {0};
    int64_t t2 = at_text(second);
    receive(dud, tr->ev.occurred_ms, "marac-coventry", tr);
    receive(dud, t2, "wmp", referral(&in, t2, tr->ev.subject_ref, "dudley", 8, NULL, 0));
    tick(dud, t2 + 3 * DAY, &out, "marac-dudley");
    const rec_t *d = nth_of(&out, "marac.referral.decision", 0);
    bool repeat = strcmp(str_at(d, "decision"), "accepted") == 0;
    sink_free(&in);
    sink_free(&out);
    shub_profile_destroy(&dud);
    shub_scenario_destroy(&sc);
    return repeat;
}

static void test_marac_repeat_clock_travels_with_a_transfer_to_the_instant(void **state)
{
    (void)state;
    shub_scenario_t *sc = load(fixture("marac-move-complete.yaml"));
    static const char *const cov[] = {"coventry"};
    shub_profile_t *m = make("marac-coventry", "marac", cov, 1, sc, 9);
    sink_t in = {0}, out = {0};
    int64_t t0 = at_text("2026-07-02T15:37:00Z");
    receive(m, t0, "wmp",
            referral(&in, t0, "P-00000000000000e5", "coventry", 17, "dash", 0));
    tick(m, shub_scenario_end_ms(sc), &out, "marac-coventry");
    const rec_t *tr = nth_of(&out, "marac.transfer", 0);
    assert_string_equal(str_at(tr, "last_referral_at"), "2026-07-02T15:37:00.000Z");
    assert_string_equal(str_at(tr, "last_referral_date"), "2026-07-02");

    /* The instant travels: 16:37 BST on the anniversary is the edge. */
    assert_true(repeat_after_transfer(tr, "2027-07-02T15:36:00Z"));
    assert_false(repeat_after_transfer(tr, "2027-07-02T15:37:00Z"));
    assert_false(repeat_after_transfer(tr, "2027-07-02T15:38:00Z"));

    /* From a sender that gives only the date, the clock runs to the end of
     * that day in London: never shorter than the true one. */
    sink_t older = {0};
    const rec_t *dated = transfer_without(&older, tr, "last_referral_at");
    assert_null(shub_val_at(&dated->ev.payload, "last_referral_at"));
    assert_true(repeat_after_transfer(dated, "2027-07-02T15:37:00Z"));
    assert_true(repeat_after_transfer(dated, "2027-07-02T22:59:00Z"));
    assert_false(repeat_after_transfer(dated, "2027-07-02T23:00:00Z")); /* midnight BST */
    sink_free(&older);
    sink_free(&in);
    sink_free(&out);
    shub_profile_destroy(&m);
    shub_scenario_destroy(&sc);
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
    /* Coventry runs until the victim moves; Dudley's answers come later. */
    for (int64_t t = JUL1 + DAY;
         t < shub_scenario_end_ms(x->sc) && count_type(&x->out, "marac.transfer") == 0;
         t += HOUR)
        tick(x->cov, t, &x->out, "marac-coventry");
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
    assert_int_equal(count_type(&x.out, "marac.referral.decision"), 1);
    assert_int_equal(count_type(&x.out, "idva.notification"), 1);
    assert_int_equal(count_type(&x.out, "marac.transfer"), 1);
    assert_int_equal(count_type(&x.out, "subject.moved_area"), 1);
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
    assert_string_equal(str_at(tr, "last_referral_at"), "2026-07-02T00:00:00.000Z");
    assert_int_equal(array_at(tr, "earlier_referrals_at")->len, 0);
    assert_int_equal(array_at(tr, "held_in")->len, 1);
    assert_string_equal(array_at(tr, "held_in")->as.items[0].as.str, "coventry");
    assert_null(shub_val_at(&tr->ev.payload, "minutes")); /* sent incomplete */
    assert_null(shub_val_at(&tr->ev.payload, "action_plan"));
    int_at(tr, "open_actions");
    assert_string_equal(str_at(tr, "victim.name"), "Farah Thornbrook");
    assert_string_equal(str_at(tr, "victim.dob"), "1991-03-14");
    assert_string_equal(str_at(tr, "victim.phone"), "07700 900123");
    assert_int_equal(int_at(tr, "risk.dash_score"), 17);
    assert_int_equal(array_at(tr, "children")->len, 2);

    /* The old area's partners learn that the person left; the agreement
     * leaves the new area in the police's copy alone. */
    assert_to3(moved, "idva@coventry", "police@coventry", "local-authority@coventry");
    assert_string_equal(moved->ev.area, "coventry");
    assert_string_equal(moved->ev.subject_ref, "P-00000000000000e5");
    assert_null(moved->ev.case_ref);
    assert_int_equal(moved->ev.payload.len, 3);
    assert_string_equal(str_at(moved, "left_area"), "coventry");
    assert_string_equal(str_at(moved, "new_area"), "dudley");
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
    tr = nth_of(&x.out, "marac.transfer", 0);
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

    /* The old area resends everything, in answer to the request (besides,
     * perhaps, telling the owners of open actions that they moved on). */
    before = x.out.n;
    const rec_t *again = pass(&x, req, x.cov, "marac-coventry", "marac.transfer");
    assert_int_equal(x.out.n - before, 1 + count_since(&x.out, before, "marac.action"));
    assert_int_equal(count_since(&x.out, before, "marac.transfer.escalation"), 0);
    tr = nth_of(&x.out, "marac.transfer", 0);
    req = nth_of(&x.out, "marac.transfer.request_missing", 0);
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

    /* The new area acknowledges the complete transfer, and raises the open
     * actions with its own agencies. */
    before = x.out.n;
    const rec_t *ack = pass(&x, again, x.dud, "marac-dudley", "marac.transfer.ack");
    assert_int_equal(x.out.n - before, 1 + (size_t)open);
    assert_int_equal(count_since(&x.out, before, "marac.action"), (size_t)open);
    again = nth_of(&x.out, "marac.transfer", 1);
    handover = nth_of(&x.out, "idva.notification", 1);
    assert_to(ack, "marac-coventry", NULL);
    assert_reply_to(ack, again, &x.out);
    assert_string_equal(str_at(ack, "new_case_ref"), handover->ev.case_ref);
    assert_memory_equal(str_at(ack, "new_case_ref"), "MARAC-DUD-26-", 13);
    const shub_val_t *items = array_at(ack, "received_items");
    assert_true(array_has(items, "minutes"));
    assert_true(array_has(items, "action_plan"));
    assert_true(array_has(items, "move"));
    assert_true(array_has(items, "last_referral_date"));
    assert_true(array_has(items, "last_referral_at"));
    assert_true(array_has(items, "held_in"));
    assert_int_equal(shub_val_bool_at(&ack->ev.payload, "complex"), open > 0);

    /* The ack closes it: neither side sends anything more about the
     * transfer, not even for a late second copy of the resend; only the
     * actions Dudley raised go on (reminders when overdue). */
    receive(x.cov, ack->ev.occurred_ms, "marac-dudley", ack);
    receive(x.dud, ack->ev.occurred_ms, "marac-coventry", again);
    before = x.out.n;
    tick(x.cov, JUL1 + 400 * DAY, &x.out, "marac-coventry");
    tick(x.dud, JUL1 + 400 * DAY, &x.out, "marac-dudley");
    assert_int_equal(x.out.n - before, count_since(&x.out, before, "marac.action"));
    for (size_t i = before; i < x.out.n; i++)
        assert_string_equal(str_at(&x.out.recs[i], "status"), "overdue");
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
    /* the IDVA handover, the ack, and the open actions raised again */
    assert_int_equal(
        x.out.n - before,
        2 + (size_t)int_at(nth_of(&x.out, "marac.transfer", 0), "open_actions"));
    tr = nth_of(&x.out, "marac.transfer", 0);
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
    assert_true(shub_val_bool_at(&dec->ev.payload, "repeat"));
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
    assert_to3(moved, "idva@coventry", "police@coventry", "local-authority@coventry");
    assert_string_equal(str_at(moved, "new_area"), "staffordshire");
    pair_end(&x);
}

/* ---- a region in one process --------------------------------------------- */

/* The West Midlands organisations that act on MARAC events, as orgs.yaml
 * lists them, and a router standing in for the broker: it expands each
 * selector (`kind@area`, or an org id) to every organisation that matches
 * and hands it the event an hour-step after it was sent. No policy and no
 * minimisation: the broker's part is tested with the broker. */
static const char
    *const A_BE[] = {"birmingham-east"},
           *const A_BW[] = {"birmingham-west"}, *const A_COV[] = {"coventry"},
           *const A_DUD[] = {"dudley"}, *const A_SAN[] = {"sandwell"},
           *const A_SOL[] = {"solihull"}, *const A_WAL[] = {"walsall"},
           *const A_WOL[] = {"wolverhampton"}, *const A_STA[] = {"staffordshire"},
           *const A_BCC[] = {"birmingham-east", "birmingham-west"},
           *const A_UHB[] = {"birmingham-east", "solihull"},
           *const A_SWBH[] = {"birmingham-west", "sandwell"},
           *const A_BSWA[] = {"birmingham-east", "birmingham-west", "solihull"};

typedef struct rorg {
    const char *id, *kind;
    const char *const *areas;
    size_t n_areas;
} rorg_t;

#define ORG(id, kind, areas)                                                             \
    {                                                                                    \
        id, kind, areas, sizeof(areas) / sizeof(areas[0])                                \
    }
static const rorg_t WM[] = {
    {"wmp", "police", ALL, N_FORCE},
    ORG("marac-bham-east", "marac", A_BE),
    ORG("marac-bham-west", "marac", A_BW),
    ORG("marac-coventry", "marac", A_COV),
    ORG("marac-dudley", "marac", A_DUD),
    ORG("marac-sandwell", "marac", A_SAN),
    ORG("marac-solihull", "marac", A_SOL),
    ORG("marac-walsall", "marac", A_WAL),
    ORG("marac-wolverhampton", "marac", A_WOL),
    ORG("marac-staffordshire", "marac", A_STA),
    ORG("bcc", "local-authority", A_BCC),
    ORG("coventry-cc", "local-authority", A_COV),
    ORG("dudley-mbc", "local-authority", A_DUD),
    ORG("sandwell-mbc", "local-authority", A_SAN),
    ORG("solihull-mbc", "local-authority", A_SOL),
    ORG("walsall-mbc", "local-authority", A_WAL),
    ORG("wolverhampton-cc", "local-authority", A_WOL),
    {"nps-midlands", "probation", ALL, N_FORCE},
    {"swm-crc", "probation", ALL, N_FORCE},
    ORG("uhb", "health", A_UHB),
    ORG("swbh", "health", A_SWBH),
    ORG("uhcw", "health", A_COV),
    ORG("dgft", "health", A_DUD),
    ORG("walsall-hc", "health", A_WAL),
    ORG("rwt", "health", A_WOL),
    ORG("bswa", "idva", A_BSWA),
    ORG("bcwa", "idva", A_SAN),
    ORG("idva-coventry", "idva", A_COV),
    ORG("idva-dudley", "idva", A_DUD),
    ORG("idva-walsall", "idva", A_WAL),
    ORG("idva-wolverhampton", "idva", A_WOL),
};
#undef ORG
#define N_WM (sizeof WM / sizeof WM[0])

/* The region's real quarter (docs/events.md): received and withdrawn. */
static const struct {
    const char *marac;
    int received, withdrawn;
} TABLE[] = {
    {"marac-bham-east", 189, 22}, {"marac-bham-west", 271, 14},
    {"marac-coventry", 120, 16},  {"marac-dudley", 143, 7},
    {"marac-sandwell", 161, 7},   {"marac-solihull", 64, 5},
    {"marac-walsall", 136, 10},   {"marac-wolverhampton", 231, 26},
};

typedef struct region {
    shub_scenario_t *sc;
    const rorg_t *orgs;
    size_t n;
    shub_profile_t *p[N_WM];
    sink_t out;
} region_t;

static bool rorg_serves(const rorg_t *o, const char *area)
{
    for (size_t k = 0; k < o->n_areas; k++)
        if (strcmp(o->areas[k], area) == 0)
            return true;
    return false;
}

static void region_deliver(region_t *g, rec_t *r, int64_t t)
{
    r->delivered = true;
    for (uint32_t k = 0; k < r->n_to; k++) {
        const char *sel = r->to[k], *at = strchr(sel, '@');
        for (size_t i = 0; i < g->n; i++) {
            const rorg_t *o = &g->orgs[i];
            bool match = at ? strncmp(sel, o->kind, (size_t)(at - sel)) == 0 &&
                                  o->kind[at - sel] == '\0' && rorg_serves(o, at + 1)
                            : strcmp(sel, o->id) == 0;
            if (match && strcmp(o->id, r->by) != 0)
                receive(g->p[i], t, r->by, r);
        }
    }
}

/* Runs orgs[0..n) on `scenario` with `seed` until 30 days after its end. */
static void region_run(region_t *g, const char *scenario, const rorg_t *orgs, size_t n,
                       uint64_t seed)
{
    g->sc = load(scenario);
    g->orgs = orgs;
    g->n = n;
    for (size_t i = 0; i < n; i++)
        g->p[i] =
            make(orgs[i].id, orgs[i].kind, orgs[i].areas, orgs[i].n_areas, g->sc, seed);
    int64_t end = shub_scenario_end_ms(g->sc) + 30 * DAY;
    size_t cursor = 0; /* everything before it has been delivered */
    for (int64_t t = shub_scenario_start_ms(g->sc); t <= end; t += HOUR) {
        for (size_t i = 0; i < n; i++)
            tick(g->p[i], t, &g->out, orgs[i].id);
        for (; cursor < g->out.n; cursor++)
            region_deliver(g, &g->out.recs[cursor], t);
    }
    for (size_t i = 0; i < n; i++)
        assert_true(shub_profile_done(g->p[i], end));
}

static void region_free(region_t *g)
{
    sink_free(&g->out);
    for (size_t i = 0; i < g->n; i++)
        shub_profile_destroy(&g->p[i]);
    shub_scenario_destroy(&g->sc);
}

static bool is_marac_org(const char *id)
{
    return strncmp(id, "marac-", 6) == 0;
}

/* The area of a selector ("marac@dudley" -> "dudley"). */
static const char *sel_area(const char *sel)
{
    const char *at = strchr(sel, '@');
    return at ? at + 1 : sel;
}

static bool sent_to(const rec_t *r, const char *sel)
{
    for (uint32_t k = 0; k < r->n_to; k++)
        if (strcmp(r->to[k], sel) == 0)
            return true;
    return false;
}

/* A victim moves A to B to C: B's MARAC tells B's partners (IDVA, police,
 * the council when there are children) and A's (IDVA, council); the police
 * follow her, and every later referral of theirs about her goes to C. */
static void test_region_move_a_b_c_tells_every_area_and_referrals_follow(void **state)
{
    (void)state;
    static const rorg_t orgs[] = {
        {"wmp", "police", ALL, N_FORCE},
        {"marac-coventry", "marac", A_COV, 1},
        {"marac-dudley", "marac", A_DUD, 1},
        {"marac-walsall", "marac", A_WAL, 1},
        {"idva-coventry", "idva", A_COV, 1},
        {"idva-dudley", "idva", A_DUD, 1},
        {"idva-walsall", "idva", A_WAL, 1},
        {"coventry-cc", "local-authority", A_COV, 1},
        {"dudley-mbc", "local-authority", A_DUD, 1},
        {"walsall-mbc", "local-authority", A_WAL, 1},
    };
    size_t chains = 0, followed = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        region_t g = {0};
        region_run(&g, fixture("marac-chain.yaml"), orgs, sizeof orgs / sizeof orgs[0],
                   seed);
        const sink_t *s = &g.out;
        for (size_t i = 0; i < s->n; i++) {
            const rec_t *t2 = &s->recs[i];
            if (strcmp(t2->ev.type, "marac.transfer") != 0 || t2->ev.reply_to ||
                array_at(t2, "held_in")->len != 2)
                continue;
            /* the second move: held in A then B, now to C */
            const shub_val_t *held = array_at(t2, "held_in");
            const char *a = held->as.items[0].as.str, *b = held->as.items[1].as.str;
            const char *c = str_at(t2, "move.new_area"), *who = t2->ev.subject_ref;
            char b_marac[40];
            snprintf(b_marac, sizeof b_marac, "marac-%s", b);
            assert_string_equal(t2->by, b_marac);
            assert_true(strcmp(a, b) != 0 && strcmp(b, c) != 0 && strcmp(a, c) != 0);
            chains++;

            /* B's notices: one to B's partners, one to A's, at the move */
            bool told_b = false, told_a = false;
            for (size_t k = 0; k < s->n; k++) {
                const rec_t *m = &s->recs[k];
                if (strcmp(m->ev.type, "subject.moved_area") != 0 ||
                    strcmp(m->by, b_marac) != 0 || strcmp(m->ev.subject_ref, who) != 0)
                    continue;
                assert_string_equal(str_at(m, "left_area"), b);
                assert_string_equal(str_at(m, "new_area"), c);
                assert_int_equal(m->ev.occurred_ms, t2->ev.occurred_ms);
                char idva[64], police[64];
                snprintf(idva, sizeof idva, "idva@%s", m->ev.area);
                snprintf(police, sizeof police, "police@%s", m->ev.area);
                assert_true(sent_to(m, idva));
                if (strcmp(m->ev.area, b) == 0) {
                    told_b = true;
                    assert_true(sent_to(m, police));
                } else {
                    assert_string_equal(m->ev.area, a);
                    told_a = true;
                    assert_false(sent_to(m, police)); /* told once, by B's copy */
                }
            }
            assert_true(told_b && told_a);

            /* The police's referrals about her go where she lives: A before
             * the first move, B before the second, C after it. */
            int64_t moved_to_c = t2->ev.occurred_ms + HOUR; /* delivered by then */
            for (size_t k = 0; k < s->n; k++) {
                const rec_t *r = &s->recs[k];
                if (strcmp(r->ev.type, "marac.referral") != 0 ||
                    strcmp(r->by, "wmp") != 0 || strcmp(r->ev.subject_ref, who) != 0)
                    continue;
                if (r->ev.occurred_ms >= moved_to_c) {
                    assert_string_equal(sel_area(r->to[0]), c);
                    followed++;
                } else if (r->ev.occurred_ms < t2->ev.occurred_ms) {
                    assert_true(strcmp(sel_area(r->to[0]), c) != 0);
                }
            }
        }
        region_free(&g);
    }
    assert_true(chains >= 3);
    assert_true(followed >= 1);
}

/* Actions raised after the meeting go to the agency of the owning kind,
 * which answers each at most once, in answer to it: on time, late (after
 * the MARAC's overdue reminder), or not within the quarter, in the
 * scenario's proportions. */
static void test_region_actions_are_answered_or_chased(void **state)
{
    (void)state;
    static const rorg_t orgs[] = {
        {"wmp", "police", ALL, N_FORCE},    {"marac-walsall", "marac", A_WAL, 1},
        {"idva-walsall", "idva", A_WAL, 1}, {"walsall-mbc", "local-authority", A_WAL, 1},
        {"walsall-hc", "health", A_WAL, 1},
    };
    region_t g = {0};
    region_run(&g, fixture("marac-actions.yaml"), orgs, sizeof orgs / sizeof orgs[0], 3);
    const sink_t *s = &g.out;
    size_t raised = 0, on_time = 0, late = 0, undone = 0;
    for (size_t i = 0; i < s->n; i++) {
        const rec_t *a = &s->recs[i];
        if (strcmp(a->ev.type, "marac.action") != 0 ||
            strcmp(str_at(a, "status"), "open"))
            continue;
        raised++;
        char sel[64];
        snprintf(sel, sizeof sel, "%s@walsall", str_at(a, "owner"));
        assert_to(a, sel, NULL);
        const char *id = str_at(a, "action_id");
        int64_t due = date_ms(str_at(a, "due")) + 17 * HOUR;
        const rec_t *update = NULL, *reminder = NULL;
        for (size_t k = 0; k < s->n; k++) {
            const rec_t *r = &s->recs[k];
            if (strcmp(r->ev.type, "marac.action.update") == 0 &&
                index_of(r->ev.reply_to) == i) {
                assert_null(update); /* once */
                update = r;
            }
            if (strcmp(r->ev.type, "marac.action") == 0 &&
                strcmp(str_at(r, "action_id"), id) == 0 &&
                strcmp(str_at(r, "status"), "overdue") == 0)
                reminder = r;
        }
        if (update) {
            assert_to(update, "marac-walsall", NULL);
            assert_string_equal(str_at(update, "action_id"), id);
            assert_string_equal(str_at(update, "status"), "done");
            assert_string_equal(update->ev.case_ref, a->ev.case_ref);
            for (size_t o = 0; o < sizeof orgs / sizeof orgs[0]; o++)
                if (strcmp(update->by, orgs[o].id) == 0)
                    assert_string_equal(orgs[o].kind, str_at(a, "owner"));
        }
        if (update && update->ev.occurred_ms <= due) {
            on_time++;
            assert_null(reminder);
        } else if (update) {
            late++;
            assert_non_null(reminder);
            assert_true(reminder->ev.occurred_ms < update->ev.occurred_ms);
        } else if (due + DAY < shub_scenario_end_ms(g.sc) - 15 * DAY) {
            undone++; /* long enough before the end that "late" would show */
            assert_non_null(reminder);
        }
    }
    assert_true(raised > 150);
    double n = (double)(on_time + late + undone);
    assert_true(on_time / n > 0.35 && on_time / n < 0.65);
    assert_true(late / n > 0.15 && late / n < 0.45);
    assert_true(undone / n > 0.08 && undone / n < 0.35);
    region_free(&g);
}

/* A transfer nobody answers is chased a day later, with a line in the log;
 * once it is acknowledged, it is closed. */
static void test_marac_unanswered_transfer_escalates_once(void **state)
{
    (void)state;
    pair_t x;
    pair_start(&x, "marac-move-complete.yaml");
    const rec_t *tr = nth_of(&x.out, "marac.transfer", 0);
    int64_t sent = tr->ev.occurred_ms;

    char log_path[] = "/tmp/shub-test-log-XXXXXX";
    int fd = mkstemp(log_path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    shub_log_init("test_profile", SHUB_LOG_WARN);
    tick(x.cov, sent + 23 * HOUR, &x.out, "marac-coventry");
    size_t before = count_type(&x.out, "marac.transfer.escalation");
    tick(x.cov, sent + 26 * HOUR, &x.out, "marac-coventry");
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    shub_log_init("test_profile", SHUB_LOG_ERROR); /* the other tests' chases: quiet */
    char logged[4096] = "";
    FILE *f = fdopen(fd, "r");
    rewind(f);
    size_t got = fread(logged, 1, sizeof logged - 1, f);
    logged[got] = '\0';
    fclose(f);
    unlink(log_path);

    assert_int_equal(before, 0);
    assert_int_equal(count_type(&x.out, "marac.transfer.escalation"), 1);
    const rec_t *esc = nth_of(&x.out, "marac.transfer.escalation", 0);
    tr = nth_of(&x.out, "marac.transfer", 0);
    assert_to(esc, "marac@dudley", NULL);
    assert_string_equal(esc->ev.area, "dudley");
    assert_string_equal(esc->ev.subject_ref, tr->ev.subject_ref);
    assert_string_equal(esc->ev.case_ref, tr->ev.case_ref);
    assert_int_equal(esc->ev.occurred_ms, sent + 24 * HOUR);
    assert_int_equal(int_at(esc, "hours_waiting"), 24);
    int64_t since = 0;
    assert_int_equal(shub_time_parse(str_at(esc, "waiting_since"), &since, NULL), 0);
    assert_int_equal(since, sent);
    char want[160];
    snprintf(want, sizeof want, "transfer unanswered case=%s to=marac@dudley after 24 h",
             tr->ev.case_ref);
    assert_non_null(strstr(logged, want));

    /* Dudley, back, acknowledges the transfer; the chase needs nothing more,
     * and nothing more is chased. */
    receive(x.dud, esc->ev.occurred_ms + HOUR, "marac-coventry", tr);
    receive(x.dud, esc->ev.occurred_ms + HOUR, "marac-coventry", esc);
    size_t mark = x.out.n;
    tick(x.dud, esc->ev.occurred_ms + 2 * DAY, &x.out, "marac-dudley");
    assert_int_equal(count_since(&x.out, mark, "marac.transfer.ack"), 1);
    const rec_t *ack = nth_of(&x.out, "marac.transfer.ack", 0);
    receive(x.cov, ack->ev.occurred_ms, "marac-dudley", ack);
    /* a second chase, after the ack: acknowledged again, in answer to it */
    esc = nth_of(&x.out, "marac.transfer.escalation", 0);
    receive(x.dud, ack->ev.occurred_ms + HOUR, "marac-coventry", esc);
    mark = x.out.n;
    tick(x.dud, ack->ev.occurred_ms + DAY, &x.out, "marac-dudley");
    assert_int_equal(count_since(&x.out, mark, "marac.transfer.ack"), 1);
    const rec_t *again = nth_of(&x.out, "marac.transfer.ack", 1);
    esc = nth_of(&x.out, "marac.transfer.escalation", 0);
    assert_reply_to(again, esc, &x.out);
    mark = x.out.n;
    tick(x.cov, shub_scenario_end_ms(x.sc), &x.out, "marac-coventry");
    assert_int_equal(count_since(&x.out, mark, "marac.transfer.escalation"), 0);
    pair_end(&x);
}

/* The board's table, from the events as the MARACs received and decided
 * them, for three seeds: each MARAC within 12 % of its referrals and 3
 * points of its withdrawn share, the region within 5 %. (The same figures
 * through the real broker, agents and audit report: the integration test
 * tests/integration/test_quarter.sh.) */
static void test_region_quarter_matches_the_board_table_for_three_seeds(void **state)
{
    (void)state;
    static const uint64_t seeds[] = {2026, 7, 31337};
    for (size_t s = 0; s < 3; s++) {
        region_t g = {0};
        region_run(&g, quarter_path(), WM, N_WM, seeds[s]);
        int total = 0, table_total = 0;
        for (size_t m = 0; m < sizeof TABLE / sizeof TABLE[0]; m++) {
            char sel[64];
            const char *area = ALL[m];
            snprintf(sel, sizeof sel, "marac@%s", area);
            int received = 0, withdrawn = 0;
            for (size_t i = 0; i < g.out.n; i++) {
                const rec_t *r = &g.out.recs[i];
                if (strcmp(r->ev.type, "marac.referral") == 0 &&
                    strcmp(r->to[0], sel) == 0)
                    received++;
                if (strcmp(r->ev.type, "marac.referral.decision") == 0 &&
                    strcmp(r->by, TABLE[m].marac) == 0 &&
                    strcmp(str_at(r, "decision"), "withdrawn") == 0)
                    withdrawn++;
            }
            double want = TABLE[m].received, share = (double)withdrawn / received,
                   want_share = (double)TABLE[m].withdrawn / want;
            if (received < want * 0.88 || received > want * 1.12 ||
                share < want_share - 0.03 || share > want_share + 0.03)
                fail_msg("seed %llu: %s received %d (table %d), withdrew %.1f %% (table "
                         "%.1f %%)",
                         (unsigned long long)seeds[s], TABLE[m].marac, received,
                         TABLE[m].received, 100 * share, 100 * want_share);
            print_message(
                "seed %llu %-20s received %3d (table %3d) withdrawn %2d = %4.1f %% "
                "(table %4.1f %%)\n",
                (unsigned long long)seeds[s], TABLE[m].marac, received, TABLE[m].received,
                withdrawn, 100 * share, 100 * want_share);
            total += received;
            table_total += TABLE[m].received;
        }
        print_message("seed %llu region received %d (table %d)\n",
                      (unsigned long long)seeds[s], total, table_total);
        assert_true(total >= table_total * 0.95 && total <= table_total * 1.05);
        region_free(&g);
    }
}

/* Every partner kind refers, in the scenario's proportions; every referral
 * is decided within 48 h; every transfer in the force ends acknowledged and
 * every request is answered; every action raised is for an agency that
 * answers it. */
static void test_region_quarter_every_partner_refers_and_answers(void **state)
{
    (void)state;
    region_t g = {0};
    region_run(&g, quarter_path(), WM, N_WM, 2026);
    const sink_t *s = &g.out;

    static const struct {
        const char *kind;
        double share;
    } sources[] = {{"police", 0.64},
                   {"idva", 0.12},
                   {"local-authority", 0.10},
                   {"health", 0.10},
                   {"probation", 0.04}};
    size_t referrals = count_type(s, "marac.referral");
    assert_in_range(referrals, 1250, 1380);
    for (size_t k = 0; k < sizeof sources / sizeof sources[0]; k++) {
        size_t n = 0;
        for (size_t i = 0; i < s->n; i++)
            for (size_t o = 0; o < N_WM; o++)
                n += strcmp(s->recs[i].ev.type, "marac.referral") == 0 &&
                     strcmp(s->recs[i].by, WM[o].id) == 0 &&
                     strcmp(WM[o].kind, sources[k].kind) == 0;
        double got = (double)n / (double)referrals;
        if (got < sources[k].share - 0.02 || got > sources[k].share + 0.02)
            fail_msg("%s refer %.1f %%, not %.0f %%", sources[k].kind, 100 * got,
                     100 * sources[k].share);
    }

    size_t decisions = 0, repeats = 0, complex = 0;
    for (size_t i = 0; i < s->n; i++) {
        const rec_t *d = &s->recs[i];
        if (strcmp(d->ev.type, "marac.referral.decision") != 0)
            continue;
        decisions++;
        const rec_t *ref = &s->recs[index_of(d->ev.reply_to)];
        assert_string_equal(ref->ev.type, "marac.referral");
        assert_string_equal(d->to[0], ref->by);
        assert_true(d->ev.occurred_ms - ref->ev.occurred_ms <= 49 * HOUR);
        assert_string_not_equal(str_at(d, "decision"), "rejected");
        repeats += shub_val_bool_at(&d->ev.payload, "repeat");
        complex += shub_val_bool_at(&d->ev.payload, "complex");
    }
    assert_int_equal(decisions, referrals);
    assert_in_range(repeats, 100, 330);
    assert_true(complex >= 1 && complex < repeats);

    size_t first = 0, requests = 0, resends = 0, acks = 0, chases = 0;
    for (size_t i = 0; i < s->n; i++) {
        const rec_t *r = &s->recs[i];
        if (strcmp(r->ev.type, "marac.transfer.escalation") == 0)
            chases++;
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
        } else {
            first++;
        }
    }
    assert_true(first >= 20); /* 5 % of ~1200 accepted, less those late in the quarter */
    assert_true(requests >= 1);
    assert_int_equal(resends, requests);
    assert_int_equal(acks, first); /* Staffordshire answers too */
    assert_int_equal(chases, 0);   /* everyone answered within a day */

    /* Actions: every update answers an action sent to the agency updating. */
    size_t actions = 0, updates = 0, engagements = 0;
    for (size_t i = 0; i < s->n; i++) {
        const rec_t *r = &s->recs[i];
        if (strcmp(r->ev.type, "marac.action") == 0 &&
            strcmp(str_at(r, "status"), "open") == 0)
            actions++;
        if (strcmp(r->ev.type, "idva.engagement") == 0) {
            engagements++;
            const rec_t *n = &s->recs[index_of(r->ev.reply_to)];
            assert_string_equal(n->ev.type, "idva.notification");
            assert_string_equal(r->to[0], n->by);
        }
        if (strcmp(r->ev.type, "marac.action.update") != 0)
            continue;
        updates++;
        const rec_t *a = &s->recs[index_of(r->ev.reply_to)];
        assert_string_equal(a->ev.type, "marac.action");
        assert_string_equal(r->to[0], a->by);
        assert_string_equal(str_at(r, "action_id"), str_at(a, "action_id"));
        assert_true(is_marac_org(a->by));
    }
    assert_true(actions > 1000);
    assert_true(updates > actions / 2 && updates < actions);
    assert_true(engagements > 900);
    region_free(&g);
}

/* ---- referrals from every partner kind ------------------------------------ */

static bool in_areas(const char *area, const char *const *areas, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(areas[k], area) == 0)
            return true;
    return false;
}

/* Takes the marac.referral events out of s, checks that each is a
 * well-formed referral to the MARAC of one of `areas`, signed by someone of
 * `role`, that meets the threshold; returns how many there were. */
static size_t take_marac_referrals(sink_t *s, const char *const *areas, size_t n_areas,
                                   const char *role)
{
    size_t kept = 0, taken = 0;
    for (size_t i = 0; i < s->n; i++) {
        rec_t *r = &s->recs[i];
        if (strcmp(r->ev.type, "marac.referral") != 0) {
            s->recs[kept++] = *r;
            continue;
        }
        taken++;
        char sel[96];
        assert_true(in_areas(r->ev.area, areas, n_areas));
        snprintf(sel, sizeof sel, "marac@%s", r->ev.area);
        assert_to(r, sel, NULL);
        assert_memory_equal(r->ev.subject_ref, "P-", 2);
        assert_non_null(strstr(r->ev.case_ref, "-MR-26-"));
        assert_non_null(str_at(r, "victim.name"));
        assert_memory_equal(str_at(r, "referrer.officer"), role, strlen(role));
        assert_memory_equal(str_at(r, "referrer.contact"), "07700 900", 9);
        assert_non_null(str_at(r, "incident.summary"));
        assert_null(shub_val_at(&r->ev.payload, "incident.crime_ref")); /* police only */
        int64_t dash = int_at(r, "risk.dash_score");
        const shub_val_t *crit = array_at(r, "risk.criteria");
        assert_true(dash >= 14 || array_has(crit, "professional_judgement") ||
                    array_has(crit, "escalation"));
        assert_non_null(shub_val_at(&r->ev.payload, "risk.factors.knife_used"));
        shub_arena_destroy(&r->arena);
        free(r->bytes);
    }
    s->n = kept;
    return taken;
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
    /* Its social workers refer to Birmingham's MARACs: 10 % of the 460 the
     * table has for the two areas. */
    assert_in_range(take_marac_referrals(&out, area, 2, "Social worker "), 38, 54);
    /* 5 a week region-wide; Birmingham's areas carry 35 % of them: ~23 */
    assert_in_range(out.n, 10, 40);
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
    /* the two providers share 4 % of the region's referrals: 26 each */
    assert_in_range(take_marac_referrals(&out, ALL, N_FORCE, "Probation officer "), 18,
                    34);
    size_t from_nps = out.n;
    tick(crc, shub_scenario_end_ms(sc), &out, "swm-crc");
    assert_in_range(take_marac_referrals(&out, ALL, N_FORCE, "Probation officer "), 18,
                    34);
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
    take_marac_referrals(&out, area, 2, "Safeguarding nurse ");
    assert_int_equal(out.n, 0); /* no batch before the month ends */
    tick(h, shub_scenario_end_ms(sc), &out, "uhb");
    /* its staff refer 10 % of the 253 the table has for its two areas */
    assert_in_range(take_marac_referrals(&out, area, 2, "Safeguarding nurse "), 10, 30);
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

/* A subject.moved_area from a MARAC: she left `left` for `to`. */
static const rec_t *moved_notice(sink_t *in, int64_t at, const char *subject,
                                 const char *left, const char *to)
{
    shub_arena_t *a = shub_arena_new(0);
    shub_val_t pl = shub_val_map();
    char date[SHUB_TIME_DATE_TEXT];
    assert_int_equal(shub_val_put(a, &pl, "left_area", text(a, left)), 0);
    assert_int_equal(
        shub_val_put(a, &pl, "date", text(a, shub_time_format_date(at, date))), 0);
    assert_int_equal(shub_val_put(a, &pl, "new_area", text(a, to)), 0);
    const char *sel[] = {"idva@x"};
    shub_share_t share = {
        .ev = {.type = "subject.moved_area",
               .occurred_ms = at,
               .subject_ref = subject,
               .area = left,
               .purpose = "marac-risk-management",
               .basis = "uk-gdpr-6-1-e",
               .consent = SHUB_CONSENT_NOT_SOUGHT,
               .override = "risk-of-serious-harm",
               .payload = pl},
        .to = sel,
        .to_count = 1,
    };
    sink_emit(in, &share);
    shub_arena_destroy(&a);
    return &in->recs[in->n - 1];
}

static void test_idva_reports_engagement_and_refers_its_clients(void **state)
{
    (void)state;
    shub_scenario_t *sc = load(fixture("idva-clients.yaml"));
    static const char *const area[] = {"coventry"};
    shub_profile_t *marac = make("marac-coventry", "marac", area, 1, sc, 1);
    shub_profile_t *idva = make("idva-coventry", "idva", area, 1, sc, 1);
    sink_t in = {0}, m = {0}, out = {0};
    const char *her = "P-0000000000000107";
    receive(marac, JUL1 + DAY, "wmp",
            referral(&in, JUL1 + DAY, her, "coventry", 16, "dash", 0));
    tick(marac, JUL1 + 3 * DAY, &m, "marac-coventry");
    const rec_t *n = nth_of(&m, "idva.notification", 0);
    int64_t notified = n->ev.occurred_ms;

    /* Before the notification the service's referrals are of people who came
     * to it; from then on about its client, a repeat, until she leaves. */
    tick(idva, notified, &out, "idva-coventry");
    size_t before = out.n;
    assert_true(before >= 1);
    receive(idva, notified, "marac-coventry", n);
    tick(idva, JUL1 + 30 * DAY, &out, "idva-coventry");
    const rec_t *e = nth_of(&out, "idva.engagement", 0);
    assert_to(e, "marac-coventry", NULL);
    assert_reply_to(e, n, &m);
    assert_string_equal(e->ev.case_ref, n->ev.case_ref);
    assert_string_equal(e->ev.subject_ref, her);
    assert_string_equal(str_at(e, "case_ref"), str_at(n, "case_ref"));
    assert_string_equal(str_at(e, "outcome"), "engaged");
    int64_t first = 0;
    assert_int_equal(shub_time_parse(str_at(e, "first_contact"), &first, NULL), 0);
    assert_true(first > notified && first <= notified + 48 * HOUR);
    assert_true(e->ev.occurred_ms > first);
    assert_in_range(int_at(e, "contact_attempts"), 1, 3);
    size_t hers = 0;
    for (size_t i = 0; i < out.n; i++) {
        const rec_t *r = &out.recs[i];
        if (strcmp(r->ev.type, "marac.referral") != 0)
            continue;
        assert_to(r, "marac@coventry", NULL);
        assert_memory_equal(str_at(r, "referrer.officer"), "IDVA ", 5);
        bool about_her = strcmp(r->ev.subject_ref, her) == 0;
        assert_int_equal(about_her, i >= before);
        if (!about_her)
            continue;
        hers++;
        assert_string_equal(str_at(r, "victim.name"), "Farah Thornbrook");
        assert_true(shub_val_bool_at(&r->ev.payload, "risk.repeat"));
        assert_true(array_has(array_at(r, "risk.criteria"), "repeat"));
        assert_int_equal(array_at(r, "children")->len, 0); /* the IDVA does not know */
    }
    assert_true(hers >= 5);

    /* The MARAC keeps the outcome and answers nothing. */
    size_t m_before = m.n;
    receive(marac, e->ev.occurred_ms, "idva-coventry", e);
    tick(marac, JUL1 + 30 * DAY, &m, "marac-coventry");
    assert_int_equal(count_since(&m, m_before, "marac.referral.decision"), 0);

    /* She moves away: the service refers no more about her. */
    size_t after_move = out.n;
    receive(idva, JUL1 + 30 * DAY, "marac-coventry",
            moved_notice(&in, JUL1 + 30 * DAY, her, "coventry", "dudley"));
    tick(idva, shub_scenario_end_ms(sc), &out, "idva-coventry");
    assert_true(count_since(&out, after_move, "marac.referral") >= 5);
    for (size_t i = after_move; i < out.n; i++)
        assert_string_not_equal(out.recs[i].ev.subject_ref, her);
    assert_true(shub_profile_done(idva, shub_scenario_end_ms(sc)));
    sink_free(&in);
    sink_free(&m);
    sink_free(&out);
    shub_profile_destroy(&idva);
    shub_profile_destroy(&marac);
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
    shub_log_init("test_profile", SHUB_LOG_ERROR); /* chases warn; one test reads them */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shub_scenario_load_good_reads_every_key),
        cmocka_unit_test(test_shub_scenario_load_minimal_uses_defaults),
        cmocka_unit_test(test_shub_scenario_load_example_quarter_loads),
        cmocka_unit_test(test_shub_scenario_load_unknown_key_names_line),
        cmocka_unit_test(test_shub_scenario_load_bad_date_names_line),
        cmocka_unit_test(test_shub_scenario_load_negative_rate_names_line),
        cmocka_unit_test(test_shub_scenario_load_other_errors_name_line),
        cmocka_unit_test(test_shub_scenario_load_new_keys_name_line),
        cmocka_unit_test(test_scenario_sources_split_referrals_by_kind_and_origin),
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
        cmocka_unit_test(test_marac_repeat_boundary_calendar_months_on_london_clock),
        cmocka_unit_test(test_marac_repeat_clock_travels_with_a_transfer_to_the_instant),
        cmocka_unit_test(test_marac_move_sends_transfer_and_moved_area_notice),
        cmocka_unit_test(test_marac_transfer_missing_minutes_request_resend_ack),
        cmocka_unit_test(test_marac_transfer_complete_acknowledged_at_once),
        cmocka_unit_test(test_marac_external_move_goes_to_external_area),
        cmocka_unit_test(test_region_quarter_matches_the_board_table_for_three_seeds),
        cmocka_unit_test(test_region_quarter_every_partner_refers_and_answers),
        cmocka_unit_test(test_region_move_a_b_c_tells_every_area_and_referrals_follow),
        cmocka_unit_test(test_region_actions_are_answered_or_chased),
        cmocka_unit_test(test_marac_unanswered_transfer_escalates_once),
        cmocka_unit_test(test_la_mash_referral_decided_within_one_working_day),
        cmocka_unit_test(test_la_originates_mash_referrals_to_neighbours),
        cmocka_unit_test(test_probation_release_notices_to_police_and_council),
        cmocka_unit_test(test_health_istv_batches_monthly_with_patient_to_strip),
        cmocka_unit_test(test_idva_reports_engagement_and_refers_its_clients),
        cmocka_unit_test(test_shub_profile_every_allocation_failure_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
