/*
 * test_config: loading the configuration directory (hub, registry,
 * agreements), selector expansion, dates and conditions.
 *
 * Fixtures live in tests/fixtures/config/<case>/, one directory per case.
 * Every error case asserts the file, the line and a fragment of the message,
 * because "file:line: message" is the whole user interface of a config error.
 * Organisation keys in the fixtures are public test keys only: each is the
 * Z85 text of SHA-256("sharehub test public key <org id>"), which lets the
 * tests check the Z85 decoder against an independent computation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharehub/alloc.h"
#include "sharehub/config.h"
#include "sharehub/val.h"

#define FIX        SHUB_FIXTURES "/config/"
#define MAX_ERRORS 32

/* ---- collecting reported errors ----------------------------------------- */

typedef struct errors {
    shub_err_t v[MAX_ERRORS];
    int n;
} errors_t;

static void collect(const shub_err_t *err, void *ctx)
{
    errors_t *e = ctx;
    if (e->n < MAX_ERRORS)
        e->v[e->n] = *err;
    e->n++;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void assert_error(const shub_err_t *e, const char *file, int line,
                         const char *frag)
{
    if (strcmp(base_name(e->file), file) != 0 || e->line != line || !strstr(e->msg, frag))
        print_error("got %s:%d: %s\nwant %s:%d: ...%s...\n", e->file, e->line, e->msg,
                    file, line, frag);
    assert_string_equal(base_name(e->file), file);
    assert_int_equal(e->line, line);
    assert_non_null(strstr(e->msg, frag));
    assert_int_equal(e->code, SHUB_ECONFIG);
}

static shub_config_t *load_good(void)
{
    shub_config_t *cfg = NULL;
    errors_t errs = {.n = 0};
    int rc = shub_config_load(FIX "good", NULL, &cfg, collect, &errs);
    if (rc)
        print_error("first error: %s:%d: %s\n", errs.v[0].file, errs.v[0].line,
                    errs.v[0].msg);
    assert_int_equal(rc, 0);
    assert_int_equal(errs.n, 0);
    assert_non_null(cfg);
    return cfg;
}

static void test_key_of(const char *org, uint8_t out[32])
{
    char text[128];
    snprintf(text, sizeof text, "sharehub test public key %s", org);
    crypto_hash_sha256(out, (const uint8_t *)text, strlen(text));
}

/* ---- a good config ------------------------------------------------------ */

static void test_config_load_good_hub_settings_are_right(void **state)
{
    (void)state;
    shub_config_t *cfg = load_good();
    const shub_hub_settings_t *h = shub_config_hub(cfg);
    assert_string_equal(h->endpoint, "tcp://127.0.0.1:7500");
    assert_string_equal(h->database, FIX "good/audit/sharehub.db");
    assert_string_equal(h->key_dir, FIX "good/keys");
    assert_false(h->synchronous_full);
    assert_int_equal(h->max_message_bytes, 524288);
    assert_int_equal(h->window, 64);
    assert_int_equal(h->batch_max, 128);
    assert_int_equal(h->heartbeat_ms, 1000);
    assert_int_equal(h->peer_timeout_ms, 5000);
    assert_int_equal(h->redeliver_ms, 3000);
    assert_int_equal(h->max_attempts, 5);
    assert_int_equal(h->future_skew_ms, 60000);
    assert_int_equal(h->checkpoint_every, 500);
    assert_int_equal(h->checkpoint_ms, 2500);
    shub_config_destroy(&cfg);
    assert_null(cfg);
}

static void test_config_load_no_hub_yaml_uses_defaults(void **state)
{
    (void)state;
    shub_config_t *cfg = NULL;
    assert_int_equal(shub_config_load(FIX "minimal", NULL, &cfg, NULL, NULL), 0);
    const shub_hub_settings_t *h = shub_config_hub(cfg);
    assert_string_equal(h->endpoint, "tcp://127.0.0.1:7400");
    assert_string_equal(h->database, FIX "minimal/sharehub.db");
    assert_string_equal(h->key_dir, FIX "minimal/keys");
    assert_true(h->synchronous_full);
    assert_int_equal(h->max_message_bytes, 1048576);
    assert_int_equal(h->window, 256);
    assert_int_equal(h->batch_max, 512);
    assert_int_equal(h->heartbeat_ms, 2000);
    assert_int_equal(h->peer_timeout_ms, 10000);
    assert_int_equal(h->redeliver_ms, 10000);
    assert_int_equal(h->max_attempts, 10);
    assert_int_equal(h->future_skew_ms, 300000);
    assert_int_equal(h->checkpoint_every, 10000);
    assert_int_equal(h->checkpoint_ms, 5000);
    assert_int_equal(shub_config_org_count(cfg), 3);
    assert_int_equal(shub_config_agreement_count(cfg), 1);
    shub_config_destroy(&cfg);
}

static void test_config_load_good_orgs_are_right(void **state)
{
    (void)state;
    shub_config_t *cfg = load_good();
    assert_int_equal(shub_config_org_count(cfg), 9);
    const shub_org_t *wmp = shub_config_org_at(cfg, 0);
    assert_string_equal(wmp->id, "wmp");
    assert_string_equal(wmp->name, "West Midlands Police");
    assert_string_equal(wmp->kind, "police");
    assert_true(wmp->all_areas);
    assert_int_equal(wmp->n_areas, 0);
    assert_ptr_equal(shub_config_org(cfg, "wmp"), wmp);
    assert_null(shub_config_org_at(cfg, 9));
    assert_null(shub_config_org(cfg, "nobody"));

    const shub_org_t *cranstoun = shub_config_org(cfg, "cranstoun");
    assert_int_equal(cranstoun->n_areas, 3);
    assert_string_equal(cranstoun->areas[0], "birmingham-east");
    assert_string_equal(cranstoun->areas[2], "walsall");
    assert_false(cranstoun->all_areas);

    /* every key, inline or from keys/<id>.pub, decodes to the right bytes */
    for (size_t i = 0; i < shub_config_org_count(cfg); i++) {
        const shub_org_t *org = shub_config_org_at(cfg, i);
        uint8_t want[32];
        test_key_of(org->id, want);
        assert_memory_equal(org->public_key, want, 32);
        assert_int_equal(strlen(org->public_z85), 40);
        assert_ptr_equal(shub_config_org_by_key(cfg, want), org);
    }
    assert_string_equal(shub_config_org(cfg, "marac-coventry")->public_z85,
                        "Q:l=q&lc.1a(du!?OJ8#:q+D4OyW8E!vY485X<8w");
    uint8_t other[32] = {0};
    assert_null(shub_config_org_by_key(cfg, other));
    shub_config_destroy(&cfg);
}

static void test_config_load_good_agreements_are_right(void **state)
{
    (void)state;
    shub_config_t *cfg = load_good();
    assert_int_equal(shub_config_agreement_count(cfg), 4);
    static const char *const ids[] = {"moved-pilot", "wm-istv", "wm-marac",
                                      "wm-marac-transfer"};
    shub_agreement_info_t info;
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(shub_config_agreement_info(cfg, i, &info), 0);
        assert_string_equal(info.id, ids[i]);
        assert_int_equal(shub_config_agreement_find(cfg, ids[i]), (long)i);
    }
    assert_int_equal(shub_config_agreement_info(cfg, 4, &info), SHUB_ENOTFOUND);
    assert_int_equal(shub_config_agreement_find(cfg, "nope"), -1);

    assert_int_equal(shub_config_agreement_info(cfg, 2, &info), 0);
    assert_string_equal(info.title, "West Midlands MARAC information sharing agreement");
    assert_string_equal(info.status, "active");
    assert_int_equal(info.version, 3);
    assert_int_equal(info.valid_from_ms, 1743465600000LL);      /* 2025-04-01T00:00Z */
    assert_int_equal(info.valid_until_ms, 1806537600000LL - 1); /* end of 2027-03-31 */
    assert_int_equal(info.review_ms, 1774915200000LL);          /* 2026-03-31T00:00Z */
    assert_string_equal(base_name(info.file), "wm-marac.yaml");

    /* the content hash is BLAKE2b-256 of the file's bytes */
    FILE *f = fopen(FIX "good/agreements/wm-marac.yaml", "rb");
    assert_non_null(f);
    static uint8_t bytes[65536];
    size_t n = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    uint8_t h[32];
    char hex[65];
    crypto_generichash(h, sizeof h, bytes, n, NULL, 0);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    assert_string_equal(info.content_hash, hex);

    assert_int_equal(shub_config_agreement_info(cfg, 3, &info), 0);
    assert_string_equal(info.status, "draft");
    shub_config_destroy(&cfg);
}

static void test_config_load_key_dir_option_overrides_hub_yaml(void **state)
{
    (void)state;
    shub_config_t *cfg = NULL;
    errors_t errs = {.n = 0};
    shub_config_opts_t opts = {.key_dir = FIX "minimal/nonexistent-keys"};
    assert_int_equal(shub_config_load(FIX "good", &opts, &cfg, collect, &errs),
                     SHUB_ECONFIG);
    assert_null(cfg);
    /* eight orgs keep their key in a file; the option moved the directory */
    assert_int_equal(errs.n, 8);
    assert_error(&errs.v[0], "orgs.yaml", 4, "org 'wmp': no public_key, and key file");
    assert_non_null(strstr(errs.v[0].msg, "nonexistent-keys/wmp.pub"));
}

static void test_config_load_missing_dir_reports_orgs_yaml(void **state)
{
    (void)state;
    shub_config_t *cfg = NULL;
    errors_t errs = {.n = 0};
    assert_int_equal(shub_config_load(FIX "no-such-dir", NULL, &cfg, collect, &errs),
                     SHUB_ECONFIG);
    assert_null(cfg);
    assert_int_equal(errs.n, 2);
    assert_string_equal(base_name(errs.v[0].file), "orgs.yaml");
    assert_int_equal(errs.v[0].line, 0);
    assert_non_null(strstr(errs.v[0].msg, "cannot open"));
    assert_string_equal(base_name(errs.v[1].file), "agreements");
}

static void test_config_load_null_args_einval(void **state)
{
    (void)state;
    shub_config_t *cfg = NULL;
    assert_int_equal(shub_config_load(NULL, NULL, &cfg, NULL, NULL), SHUB_EINVAL);
    assert_int_equal(shub_config_load(FIX "good", NULL, NULL, NULL, NULL), SHUB_EINVAL);
    shub_config_destroy(NULL);
    shub_config_destroy(&cfg);
}

/* ---- one fixture per error ---------------------------------------------- */

typedef struct bad_case {
    const char *dir;
    int n_errors;
    const char *file; /* basename of the first error's file */
    int line;
    const char *fragment;
} bad_case_t;

static const bad_case_t bad_cases[] = {
    {"bad-duplicate-org", 1, "orgs.yaml", 18, "duplicate org id 'wmp' (first at line 3)"},
    {"bad-reserved-org", 1, "orgs.yaml", 18,
     "org id 'hub' is reserved: the broker sends its own notices as 'hub'"},
    {"bad-unknown-area", 1, "orgs.yaml", 16,
     "org 'idva-coventry': unknown area 'solihull'"},
    {"bad-org-kind", 2, "orgs.yaml", 15, "kind 'IDVA Service' is not a name"},
    {"bad-org-id", 1, "orgs.yaml", 13, "org id 'IDVA_Coventry' is not a name"},
    {"bad-missing-key", 1, "orgs.yaml", 13,
     "org 'idva-coventry': no public_key, and key file"},
    {"bad-malformed-key", 1, "orgs.yaml", 12,
     "org 'marac-coventry': public_key is not a 40-character z85 key"},
    {"bad-key-file", 1, "orgs.yaml", 13,
     "keys/idva-coventry.pub' does not hold a 40-character"},
    {"bad-same-key", 1, "orgs.yaml", 13,
     "org 'idva-coventry' has the same public key as org 'marac-coventry'"},
    {"bad-unknown-key", 1, "orgs.yaml", 11, "unknown key 'colour' in 'orgs[1]'"},
    {"bad-duplicate-key", 1, "orgs.yaml", 16, "duplicate key 'orgs[2].kind'"},
    {"bad-limit", 1, "hub.yaml", 3,
     "limits.max_message_bytes of 2000000 is outside 1024..1048576"},
    {"bad-leading-zero", 1, "hub.yaml", 2,
     "'limits.window' must be written without leading zeros, not '010'"},
    {"bad-unknown-org", 1, "mini.yaml", 10, "unknown org 'wmp-custody'"},
    {"bad-unknown-kind", 1, "mini.yaml", 11, "unknown kind 'probation'"},
    {"bad-field-not-in-dictionary", 1, "mini.yaml", 25,
     "field 'victim.nhs_number' is not in the data dictionary"},
    {"bad-report-not-anonymous", 1, "mini.yaml", 27,
     "report field 'victim.name' must be in the data dictionary classed anonymous"},
    {"bad-duplicate-agreement-id", 1, "b-second.yaml", 1,
     "duplicate agreement id 'mini' (also in "},
    {"bad-duplicate-flow-id", 1, "mini.yaml", 27,
     "duplicate flow id 'referral' (first at line 21)"},
    {"bad-valid-until", 1, "mini.yaml", 6,
     "valid_until 2025-03-31 is before valid_from 2025-04-01"},
    {"bad-no-events", 1, "mini.yaml", 24, "flow 'referral' has no event types"},
    {"bad-condition", 1, "mini.yaml", 26, "condition: unexpected 'xyz' at column 31"},
    {"bad-unknown-purpose", 1, "mini.yaml", 25, "unknown purpose 'research'"},
    {"bad-unknown-basis", 1, "mini.yaml", 25, "unknown legal basis 'uk-gdpr-6-1-a'"},
};

static void test_config_load_each_bad_fixture_reports_file_and_line(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case_t *c = &bad_cases[i];
        char dir[512];
        snprintf(dir, sizeof dir, FIX "%s", c->dir);
        shub_config_t *cfg = NULL;
        errors_t errs = {.n = 0};
        int rc = shub_config_load(dir, NULL, &cfg, collect, &errs);
        if (rc != SHUB_ECONFIG || errs.n != c->n_errors)
            print_error("case %s: rc %d, %d errors\n", c->dir, rc, errs.n);
        assert_int_equal(rc, SHUB_ECONFIG);
        assert_null(cfg);
        assert_int_equal(errs.n, c->n_errors);
        assert_error(&errs.v[0], c->file, c->line, c->fragment);
    }
}

/* The position is the condition's value; the column in the message counts
 * within the expression. */
static void test_config_load_condition_error_names_value_and_column_in_it(void **state)
{
    (void)state;
    shub_config_t *cfg = NULL;
    errors_t errs = {.n = 0};
    assert_int_equal(shub_config_load(FIX "bad-condition", NULL, &cfg, collect, &errs),
                     SHUB_ECONFIG);
    char line[600];
    shub_err_format(&errs.v[0], line, sizeof line);
    assert_non_null(strstr(line,
                           "agreements/mini.yaml:26:16: condition: unexpected 'xyz' at "
                           "column 31"));
}

static void test_config_load_several_errors_reports_all(void **state)
{
    (void)state;
    shub_config_t *cfg = NULL;
    errors_t errs = {.n = 0};
    assert_int_equal(shub_config_load(FIX "bad-several", NULL, &cfg, collect, &errs),
                     SHUB_ECONFIG);
    assert_null(cfg);
    assert_int_equal(errs.n, 6);
    assert_error(&errs.v[0], "hub.yaml", 2,
                 "'synchronous' must be one of full, normal, not 'sometimes'");
    assert_int_equal(errs.v[0].column, 14);
    assert_error(&errs.v[1], "orgs.yaml", 16, "unknown key 'shoe_size' in 'orgs[2]'");
    assert_error(&errs.v[2], "mini.yaml", 6,
                 "valid_until 2025-03-31 is before valid_from");
    assert_error(&errs.v[3], "mini.yaml", 25, "field 'perpetrator' is not in the data");
    assert_error(&errs.v[4], "other.yaml", 4, "'status' must be one of draft, active");
    assert_error(&errs.v[5], "other.yaml", 9, "unknown key 'owner'");
}

/* The agreement's header is checked before its flows, but a file that puts
 * its flows first gets its errors in the order of its lines. */
static void test_config_load_errors_come_in_line_order(void **state)
{
    (void)state;
    shub_config_t *cfg = NULL;
    errors_t errs = {.n = 0};
    assert_int_equal(shub_config_load(FIX "bad-order", NULL, &cfg, collect, &errs),
                     SHUB_ECONFIG);
    assert_int_equal(errs.n, 2);
    assert_error(&errs.v[0], "mini.yaml", 8, "flow 'referral': unknown purpose 'research'");
    assert_int_equal(errs.v[0].column, 16);
    assert_error(&errs.v[1], "mini.yaml", 10, "agreement id 'Mini' is not a name");
    assert_int_equal(errs.v[1].column, 5);
}

/* The Nth allocation fails, for every N the load makes: the result is the
 * config or SHUB_ENOMEM, never a crash, a leak (ASan) or a bogus SHUB_ECONFIG. */
static void test_config_load_alloc_failure_is_enomem_or_success(void **state)
{
    (void)state;
    int rc = SHUB_ENOMEM;
    long n = 0;
    for (; rc == SHUB_ENOMEM && n < 100000; n++) {
        shub_config_t *cfg = NULL;
        shub_alloc_fail_after(n);
        rc = shub_config_load(FIX "good", NULL, &cfg, NULL, NULL);
        long failures = shub_alloc_failures();
        shub_alloc_fail_after(-1);
        if (rc != 0 && rc != SHUB_ENOMEM)
            print_error("fail after %ld: rc %d\n", n, rc);
        assert_true(rc == 0 || rc == SHUB_ENOMEM);
        if (rc == SHUB_ENOMEM)
            assert_true(failures > 0);
        if (rc == 0)
            assert_int_equal(shub_config_agreement_count(cfg), 4);
        shub_config_destroy(&cfg);
    }
    assert_int_equal(rc, 0);
    assert_true(n > 50); /* the loop really went through the allocations */
}

/* ---- selectors ---------------------------------------------------------- */

typedef struct sel_case {
    const char *selector;
    const char *sender;
    const char *want; /* space-separated ids, in registry order */
} sel_case_t;

static const sel_case_t sel_cases[] = {
    {"marac-coventry", "wmp", "marac-coventry"},
    {"marac-coventry", "marac-coventry", ""}, /* sender excluded */
    {"nobody", "wmp", ""},                    /* unknown id: zero */
    {"@coventry", "wmp", "marac-coventry idva-coventry coventry-cc uhcw wmvrp cranstoun"},
    {"@coventry", NULL,
     "wmp marac-coventry idva-coventry coventry-cc uhcw wmvrp cranstoun"},
    {"@walsall", "wmp", "wmvrp cranstoun"}, /* all-area orgs serve it */
    {"@solihull", "wmp", ""},               /* unknown area: zero */
    {"marac@coventry", "wmp", "marac-coventry"},
    {"idva@birmingham-east", "wmp", "bswa"},
    {"police@walsall", "cranstoun", "wmp"},
    {"police@walsall", "wmp", ""},
    {"probation@coventry", "wmp", ""}, /* unknown kind: zero */
};

static void test_config_expand_each_selector_gives_right_orgs(void **state)
{
    (void)state;
    shub_config_t *cfg = load_good();
    for (size_t i = 0; i < sizeof sel_cases / sizeof sel_cases[0]; i++) {
        const shub_org_t *out[16];
        size_t n = 0;
        char got[512] = "";
        assert_int_equal(shub_config_expand(cfg, sel_cases[i].selector,
                                            sel_cases[i].sender, out, 16, &n),
                         0);
        for (size_t k = 0; k < n; k++) {
            strcat(got, k ? " " : "");
            strcat(got, out[k]->id);
        }
        if (strcmp(got, sel_cases[i].want) != 0)
            print_error("selector %s\n", sel_cases[i].selector);
        assert_string_equal(got, sel_cases[i].want);
    }
    shub_config_destroy(&cfg);
}

static void test_config_expand_appends_without_duplicates(void **state)
{
    (void)state;
    shub_config_t *cfg = load_good();
    const shub_org_t *out[16];
    size_t n = 0;
    assert_int_equal(shub_config_expand(cfg, "marac-coventry", "wmp", out, 16, &n), 0);
    assert_int_equal(shub_config_expand(cfg, "marac@coventry", "wmp", out, 16, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(shub_config_expand(cfg, "idva@coventry", "wmp", out, 16, &n), 0);
    assert_int_equal(shub_config_expand(cfg, "@coventry", "wmp", out, 16, &n), 0);
    assert_int_equal(n, 6);
    assert_string_equal(out[0]->id, "marac-coventry");
    assert_string_equal(out[1]->id, "idva-coventry");
    assert_string_equal(out[2]->id, "coventry-cc");
    shub_config_destroy(&cfg);
}

static void test_config_expand_over_max_elimit(void **state)
{
    (void)state;
    shub_config_t *cfg = load_good();
    const shub_org_t *out[2];
    size_t n = 0;
    assert_int_equal(shub_config_expand(cfg, "@coventry", "wmp", out, 2, &n),
                     SHUB_ELIMIT);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(shub_config_expand(cfg, "Not A Selector", "wmp", out, 2, &n),
                     SHUB_EINVAL);
    assert_int_equal(shub_config_expand(cfg, "@", "wmp", out, 2, &n), SHUB_EINVAL);
    assert_int_equal(n, 0);
    shub_config_destroy(&cfg);
}

static void test_org_serves_areas(void **state)
{
    (void)state;
    shub_config_t *cfg = load_good();
    const shub_org_t *idva = shub_config_org(cfg, "idva-coventry");
    assert_true(shub_org_serves(idva, "coventry"));
    assert_false(shub_org_serves(idva, "walsall"));
    assert_false(shub_org_serves(idva, NULL));
    assert_true(shub_org_serves(shub_config_org(cfg, "wmp"), "anywhere"));
    assert_false(shub_org_serves(NULL, "coventry"));
    shub_config_destroy(&cfg);
}

/* ---- conditions --------------------------------------------------------- */

typedef struct fixture_ev {
    shub_arena_t *arena;
    shub_event_t ev;
} fixture_ev_t;

/* The event conditions are evaluated against: a referral with a DASH score
 * of 15, no repeat, a risk level in text, a decimal, a nested map, and an
 * array of flags. */
static void make_event(fixture_ev_t *f)
{
    memset(f, 0, sizeof *f);
    f->arena = shub_arena_new(0);
    assert_non_null(f->arena);
    shub_val_t risk = shub_val_map(), criteria = shub_val_map(), root = shub_val_map(), s;
    assert_int_equal(shub_val_put(f->arena, &risk, "dash_score", shub_val_int(15)), 0);
    assert_int_equal(shub_val_str(f->arena, "high", 4, &s), 0);
    assert_int_equal(shub_val_put(f->arena, &risk, "level", s), 0);
    assert_int_equal(shub_val_put(f->arena, &risk, "weight", shub_val_float(2.5)), 0);
    assert_int_equal(shub_val_put(f->arena, &criteria, "repeat", shub_val_bool(false)),
                     0);
    assert_int_equal(shub_val_put(f->arena, &criteria, "escalation", shub_val_bool(true)),
                     0);
    assert_int_equal(shub_val_put(f->arena, &root, "risk", risk), 0);
    assert_int_equal(shub_val_put(f->arena, &root, "criteria", criteria), 0);
    assert_int_equal(shub_val_put(f->arena, &root, "nothing", shub_val_nil()), 0);
    shub_val_t list = shub_val_array(), item;
    assert_int_equal(shub_val_str(f->arena, "escalation", 10, &item), 0);
    assert_int_equal(shub_val_push(f->arena, &list, item), 0);
    assert_int_equal(shub_val_push(f->arena, &list, shub_val_int(7)), 0);
    assert_int_equal(shub_val_put(f->arena, &root, "flags", list), 0);
    f->ev.type = "marac.referral";
    f->ev.area = "coventry";
    f->ev.purpose = "marac-risk-management";
    f->ev.basis = "uk-gdpr-6-1-e";
    f->ev.consent = SHUB_CONSENT_REFUSED;
    f->ev.override = "risk-of-serious-harm";
    f->ev.payload = root;
}

typedef struct cond_case {
    const char *text;
    bool want;
} cond_case_t;

static const cond_case_t cond_cases[] = {
    {"payload.risk.dash_score >= 14", true},
    {"payload.risk.dash_score >= 15", true},
    {"payload.risk.dash_score > 15", false},
    {"payload.risk.dash_score < 16", true},
    {"payload.risk.dash_score <= 14", false},
    {"payload.risk.dash_score == 15", true},
    {"payload.risk.dash_score != 15", false},
    {"payload.risk.dash_score == 15.0", true}, /* integer against decimal by value */
    {"payload.risk.weight > 2.4", true},
    {"payload.risk.weight < 3", true},
    {"payload.risk.dash_score >= -1", true},
    {"payload.risk.level == 'high'", true},
    {"payload.risk.level == \"high\"", true},
    {"payload.risk.level != 'high'", false},
    {"payload.risk.level < 'low'", true}, /* text orders bytewise */
    {"payload.criteria.repeat == false", true},
    {"payload.criteria.escalation", true}, /* lone boolean */
    {"payload.criteria.repeat", false},
    {"payload.risk.level", false}, /* lone non-boolean is not true */
    /* missing field: that comparison is false, whatever the operator */
    {"payload.risk.missing == 1", false},
    {"payload.risk.missing != 1", false},
    {"payload.nothing == 1", false}, /* nil counts as missing */
    {"not payload.risk.missing == 1", true},
    /* type mismatch: false */
    {"payload.risk.level == 15", false},
    {"payload.risk.level != 15", false},
    {"payload.risk.dash_score == 'high'", false},
    {"payload.criteria.repeat < true", false}, /* booleans have no order */
    {"payload.risk == 1", false},              /* a map compares with nothing */
    /* precedence: not > and > or */
    {"true or false and false", true},
    {"(true or false) and false", false},
    {"not false and false", false},
    {"not (false and false)", true},
    {"false or not false", true},
    {"payload.risk.dash_score >= 14 or payload.criteria.repeat == true or "
     "payload.criteria.professional_judgement == true",
     true},
    {"payload.risk.dash_score >= 16 or payload.criteria.repeat == true or "
     "payload.criteria.professional_judgement == true",
     false},
    /* in lists */
    {"payload.risk.level in ['medium', 'high']", true},
    {"payload.risk.level in ['medium']", false},
    {"payload.risk.dash_score in [14, 15, 16]", true},
    {"payload.risk.dash_score in ['15']", false},
    {"payload.risk.missing in [1, 2]", false},
    {"'escalation' in payload.flags", true},
    {"'repeat' in payload.flags", false},
    {"7 in payload.flags", true},
    {"7.0 in payload.flags", true},
    {"'7' in payload.flags", false},
    {"'escalation' in payload.nope", false},
    {"'high' in payload.risk.level", false}, /* text, not an array */
    {"not 'repeat' in payload.flags", true},
    {"payload.risk.dash_score >= 16 or 'escalation' in payload.flags", true},
    /* event fields */
    {"event.area == 'coventry'", true},
    {"event.purpose == 'marac-risk-management'", true},
    {"event.type == 'marac.referral'", true},
    {"event.basis in ['uk-gdpr-6-1-e', 'dpa-2018-part3']", true},
    {"event.consent == 'refused'", true},
    {"event.override == 'risk-of-serious-harm'", true},
};

static void test_condition_eval_each_case(void **state)
{
    (void)state;
    fixture_ev_t f;
    make_event(&f);
    for (size_t i = 0; i < sizeof cond_cases / sizeof cond_cases[0]; i++) {
        shub_condition_t *c = NULL;
        shub_err_t err;
        int rc = shub_condition_new(cond_cases[i].text, &c, &err);
        if (rc)
            print_error("%s: %s\n", cond_cases[i].text, err.msg);
        assert_int_equal(rc, 0);
        bool got = shub_condition_eval(c, &f.ev);
        if (got != cond_cases[i].want)
            print_error("%s: got %d\n", cond_cases[i].text, got);
        assert_int_equal(got, cond_cases[i].want);
        shub_condition_destroy(&c);
        assert_null(c);
    }
    shub_condition_t *c = NULL;
    assert_int_equal(shub_condition_new("event.override == 'x'", &c, NULL), 0);
    f.ev.override = NULL; /* a missing event field is false too */
    assert_false(shub_condition_eval(c, &f.ev));
    shub_condition_destroy(&c);
    shub_arena_destroy(&f.arena);
}

typedef struct cond_bad {
    const char *text;
    const char *msg;
} cond_bad_t;

static const cond_bad_t cond_bad_cases[] = {
    {"payload.x >= 14 xyz", "condition: unexpected 'xyz' at column 17"},
    {"payload.x >=", "condition: unexpected end of condition at column 13"},
    {"payload.x = 1", "condition: unexpected '=' at column 11"},
    {"(payload.x == 1", "condition: unexpected end of condition at column 16"},
    {"payload.x == 'open", "condition: unterminated text at column 14"},
    {"event.colour == 'red'", "condition: unexpected 'event.colour' at column 1"},
    {"victim.name == 'x'", "condition: unexpected 'victim.name' at column 1"},
    {"payload.x in 1", "condition: unexpected '1' at column 14"},
    {"1 in event.area", "condition: unexpected 'event.area' at column 6"},
    {"payload.x in []", "condition: unexpected ']' at column 15"},
    {"payload.a..b == 1", "condition: unexpected 'payload.a..b' at column 1"},
    {"payload.x == 99999999999999999999", "condition: number out of range at column 14"},
    {"", "condition: unexpected end of condition at column 1"},
    {"payload.x == 1 and", "condition: unexpected end of condition at column 19"},
};

static void test_condition_new_bad_syntax_names_column(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cond_bad_cases / sizeof cond_bad_cases[0]; i++) {
        shub_condition_t *c = NULL;
        shub_err_t err;
        assert_int_equal(shub_condition_new(cond_bad_cases[i].text, &c, &err),
                         SHUB_ECONFIG);
        assert_null(c);
        assert_string_equal(err.msg, cond_bad_cases[i].msg);
    }
}

static void test_condition_new_deep_nesting_refused(void **state)
{
    (void)state;
    char text[256] = "";
    for (int i = 0; i < 40; i++)
        strcat(text, "not ");
    strcat(text, "true");
    shub_condition_t *c = NULL;
    shub_err_t err;
    assert_int_equal(shub_condition_new(text, &c, &err), SHUB_ECONFIG);
    assert_non_null(strstr(err.msg, "nested too deeply"));
    /* within the limit it parses, and double negation cancels */
    assert_int_equal(shub_condition_new("not not not not true", &c, &err), 0);
    fixture_ev_t f;
    make_event(&f);
    assert_true(shub_condition_eval(c, &f.ev));
    shub_condition_destroy(&c);
    shub_arena_destroy(&f.arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_load_good_hub_settings_are_right),
        cmocka_unit_test(test_config_load_no_hub_yaml_uses_defaults),
        cmocka_unit_test(test_config_load_good_orgs_are_right),
        cmocka_unit_test(test_config_load_good_agreements_are_right),
        cmocka_unit_test(test_config_load_key_dir_option_overrides_hub_yaml),
        cmocka_unit_test(test_config_load_missing_dir_reports_orgs_yaml),
        cmocka_unit_test(test_config_load_null_args_einval),
        cmocka_unit_test(test_config_load_each_bad_fixture_reports_file_and_line),
        cmocka_unit_test(test_config_load_condition_error_names_value_and_column_in_it),
        cmocka_unit_test(test_config_load_several_errors_reports_all),
        cmocka_unit_test(test_config_load_errors_come_in_line_order),
        cmocka_unit_test(test_config_load_alloc_failure_is_enomem_or_success),
        cmocka_unit_test(test_config_expand_each_selector_gives_right_orgs),
        cmocka_unit_test(test_config_expand_appends_without_duplicates),
        cmocka_unit_test(test_config_expand_over_max_elimit),
        cmocka_unit_test(test_org_serves_areas),
        cmocka_unit_test(test_condition_eval_each_case),
        cmocka_unit_test(test_condition_new_bad_syntax_names_column),
        cmocka_unit_test(test_condition_new_deep_nesting_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
