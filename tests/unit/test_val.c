/*
 * test_val: payload values as the codec, the policy and the broker use them.
 * Values are built in an arena (test_arena) with
 * checked keys and text; dotted paths find fields; shub_val_select keeps
 * exactly what an agreement allows and names each stripped field once, at its
 * top-most point, which is what the audit row records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sharehub/alloc.h"
#include "sharehub/err.h"
#include "sharehub/val.h"

/* ---- fixtures ---------------------------------------------------------- */

static int setup_arena(void **state)
{
    *state = shub_arena_new(0);
    return *state ? 0 : -1;
}

static int teardown_arena(void **state)
{
    shub_arena_t *arena = *state;
    shub_arena_destroy(&arena);
    return 0;
}

static shub_val_t str(shub_arena_t *a, const char *s)
{
    shub_val_t v;
    assert_int_equal(shub_val_str(a, s, strlen(s), &v), 0);
    return v;
}

static void put(shub_arena_t *a, shub_val_t *map, const char *key, shub_val_t v)
{
    assert_int_equal(shub_val_put(a, map, key, v), 0);
}

static void push(shub_arena_t *a, shub_val_t *array, shub_val_t v)
{
    assert_int_equal(shub_val_push(a, array, v), 0);
}

/* A MARAC referral payload:
 * { dash: 16, victim: {name, dob, address: {postcode, line1}},
 *   actions: [{owner, due}, {owner, due, note}], children: [{name}, "unborn"],
 *   summary: "..." } */
static shub_val_t referral(shub_arena_t *a)
{
    shub_val_t address = shub_val_map();
    put(a, &address, "postcode", str(a, "CV1 2AB"));
    put(a, &address, "line1", str(a, "1 High St"));
    shub_val_t victim = shub_val_map();
    put(a, &victim, "name", str(a, "Jo Bloggs"));
    put(a, &victim, "dob", str(a, "1990-01-01"));
    put(a, &victim, "address", address);

    shub_val_t actions = shub_val_array();
    for (int i = 0; i < 2; i++) {
        shub_val_t action = shub_val_map();
        put(a, &action, "owner", str(a, i ? "bcc" : "wmp"));
        put(a, &action, "due", str(a, "2024-06-01"));
        if (i)
            put(a, &action, "note", str(a, "call first"));
        push(a, &actions, action);
    }
    shub_val_t child = shub_val_map();
    put(a, &child, "name", str(a, "Sam"));
    shub_val_t children = shub_val_array();
    push(a, &children, child);
    push(a, &children, str(a, "unborn"));

    shub_val_t root = shub_val_map();
    put(a, &root, "dash", shub_val_int(16));
    put(a, &root, "victim", victim);
    put(a, &root, "actions", actions);
    put(a, &root, "children", children);
    put(a, &root, "summary", str(a, "incident at home"));
    return root;
}

typedef struct {
    int n;
    char paths[32][128];
} strips_t;

static void collect(const char *path, void *ctx)
{
    strips_t *s = ctx;
    assert_true(s->n < 32);
    snprintf(s->paths[s->n++], sizeof s->paths[0], "%s", path);
}

/* Checks the strip reports, in order. */
static void assert_strips(const strips_t *s, const char *const *want, int n)
{
    if (s->n != n) {
        for (int i = 0; i < s->n; i++)
            print_message("stripped: %s\n", s->paths[i]);
    }
    assert_int_equal(s->n, n);
    for (int i = 0; i < n; i++)
        assert_string_equal(s->paths[i], want[i]);
}

/* ---- building ---------------------------------------------------------- */

static void test_shub_val_str_valid_text_copied(void **state)
{
    shub_arena_t *a = *state;
    char text[] = "Zoë";
    shub_val_t v;
    assert_int_equal(shub_val_str(a, text, strlen(text), &v), 0);
    text[0] = 'X';
    assert_int_equal(v.type, SHUB_VAL_STR);
    assert_int_equal(v.len, 4);
    assert_string_equal(v.as.str, "Zoë");
    assert_int_equal(shub_val_str(a, NULL, 0, &v), 0);
    assert_int_equal(v.len, 0);
    assert_string_equal(v.as.str, "");
}

static void test_shub_val_str_nul_byte_returns_evalue(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t v = shub_val_nil();
    assert_int_equal(shub_val_str(a, "ab\0cd", 5, &v), SHUB_EVALUE);
    assert_int_equal(v.type, SHUB_VAL_NIL); /* out untouched on failure */
}

static void test_shub_val_str_bad_utf8_returns_eutf8(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t v = shub_val_nil();
    assert_int_equal(shub_val_str(a, "\xc0\xaf", 2, &v), SHUB_EUTF8);
    assert_int_equal(v.type, SHUB_VAL_NIL);
}

static void test_shub_val_bin_copies_bytes_including_empty(void **state)
{
    shub_arena_t *a = *state;
    uint8_t data[3] = {0, 1, 2};
    shub_val_t v;
    assert_int_equal(shub_val_bin(a, data, 3, &v), 0);
    data[1] = 9;
    assert_int_equal(v.type, SHUB_VAL_BIN);
    assert_int_equal(v.len, 3);
    assert_int_equal(v.as.bin[1], 1);
    assert_int_equal(shub_val_bin(a, NULL, 0, &v), 0);
    assert_int_equal(v.len, 0);
}

static void test_shub_val_scalars_hold_their_values(void **state)
{
    (void)state;
    assert_int_equal(shub_val_nil().type, SHUB_VAL_NIL);
    assert_true(shub_val_bool(true).as.b);
    assert_int_equal(shub_val_bool(false).type, SHUB_VAL_BOOL);
    assert_int_equal(shub_val_int(INT64_MIN).as.i, INT64_MIN);
    assert_true(shub_val_float(2.5).as.f == 2.5);
    assert_int_equal(shub_val_map().type, SHUB_VAL_MAP);
    assert_int_equal(shub_val_array().len, 0);
}

static void test_shub_val_put_duplicate_key_returns_eexist(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t m = shub_val_map();
    put(a, &m, "name", shub_val_int(1));
    assert_int_equal(shub_val_put(a, &m, "name", shub_val_int(2)), SHUB_EEXIST);
    assert_int_equal(m.len, 1);
    assert_int_equal(shub_val_get(&m, "name")->as.i, 1);
}

static void test_shub_val_put_bad_keys_return_evalue(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t m = shub_val_map();
    static const char *const bad[] = {"", "a.b", "a b", "naïve", "x/y", "k\x7f", "@area"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(shub_val_put(a, &m, bad[i], shub_val_nil()), SHUB_EVALUE);
    char key[SHUB_VAL_MAX_KEY + 2];
    memset(key, 'k', SHUB_VAL_MAX_KEY + 1);
    key[SHUB_VAL_MAX_KEY + 1] = '\0';
    assert_int_equal(shub_val_put(a, &m, key, shub_val_nil()), SHUB_EVALUE);
    key[SHUB_VAL_MAX_KEY] = '\0';
    assert_int_equal(shub_val_put(a, &m, key, shub_val_nil()), 0);
    assert_int_equal(m.len, 1);
}

static void test_shub_val_put_not_a_map_returns_einval(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t arr = shub_val_array();
    assert_int_equal(shub_val_put(a, &arr, "k", shub_val_nil()), SHUB_EINVAL);
    shub_val_t m = shub_val_map();
    assert_int_equal(shub_val_push(a, &m, shub_val_nil()), SHUB_EINVAL);
}

static void test_shub_val_put_many_keys_grow_in_order(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t m = shub_val_map();
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "k%d", i);
        put(a, &m, key, shub_val_int(i));
    }
    assert_int_equal(m.len, 300);
    assert_true(m.cap >= 300);
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_string_equal(m.as.pairs[i].key, key);
        assert_int_equal(m.as.pairs[i].key_len, strlen(key));
        assert_int_equal(shub_val_get(&m, key)->as.i, i);
    }
}

static void test_shub_val_put_out_of_memory_returns_enomem(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    shub_val_t m = shub_val_map();
    shub_alloc_fail_after(0);
    int rc = shub_val_put(a, &m, "k", shub_val_int(1));
    shub_alloc_fail_after(-1);
    assert_int_equal(rc, SHUB_ENOMEM);
    assert_int_equal(m.len, 0);
    assert_int_equal(shub_val_put(a, &m, "k", shub_val_int(1)), 0);
    shub_arena_destroy(&a);
}

/* ---- reading ----------------------------------------------------------- */

static void test_shub_val_get_absent_or_not_map_returns_null(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t root = referral(a);
    assert_null(shub_val_get(&root, "nope"));
    assert_null(shub_val_get(&root, NULL));
    assert_null(shub_val_get(NULL, "dash"));
    shub_val_t i = shub_val_int(1);
    assert_null(shub_val_get(&i, "dash"));
    assert_int_equal(shub_val_get(&root, "dash")->as.i, 16);
}

static void test_shub_val_at_nested_path_finds_value(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t root = referral(a);
    const shub_val_t *v = shub_val_at(&root, "victim.address.postcode");
    assert_non_null(v);
    assert_string_equal(v->as.str, "CV1 2AB");
    assert_int_equal(shub_val_at(&root, "dash")->as.i, 16);
    assert_int_equal(shub_val_at(&root, "victim")->type, SHUB_VAL_MAP);
}

static void test_shub_val_at_bad_paths_return_null(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t root = referral(a);
    static const char *const bad[] = {
        "victim.address.town",  /* missing last step */
        "victim.nope.postcode", /* missing middle step */
        "dash.x",               /* through a scalar */
        "actions.owner",        /* through an array: shub_val_at does not descend */
        "",                     /* empty */
        "victim.",              /* trailing dot */
        ".victim",              /* leading dot */
        "victim..name",         /* empty segment */
        "vic",                  /* prefix of a key */
        "victimx",              /* key plus more */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (shub_val_at(&root, bad[i]))
            fail_msg("shub_val_at found \"%s\"", bad[i]);
    }
    assert_null(shub_val_at(NULL, "dash"));
}

static void test_shub_val_equal_compares_deeply(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t x = referral(a), y = referral(a);
    assert_true(shub_val_equal(&x, &y));
    /* change one deep leaf */
    y.as.pairs[1].val.as.pairs[2].val.as.pairs[0].val = str(a, "CV1 2AC");
    assert_false(shub_val_equal(&x, &y));

    shub_val_t m1 = shub_val_map(), m2 = shub_val_map();
    put(a, &m1, "a", shub_val_int(1));
    put(a, &m1, "b", shub_val_int(2));
    put(a, &m2, "b", shub_val_int(2));
    put(a, &m2, "a", shub_val_int(1));
    assert_false(shub_val_equal(&m1, &m2)); /* maps compare as ordered lists */

    shub_val_t i1 = shub_val_int(1), f1 = shub_val_float(1.0);
    assert_false(shub_val_equal(&i1, &f1));
    shub_val_t n1 = shub_val_float(NAN), n2 = shub_val_float(NAN);
    assert_true(shub_val_equal(&n1, &n2)); /* same bits */
    shub_val_t z1 = shub_val_float(0.0), z2 = shub_val_float(-0.0);
    assert_false(shub_val_equal(&z1, &z2));
    shub_val_t b1, b2, b3;
    assert_int_equal(shub_val_bin(a, "ab", 2, &b1), 0);
    assert_int_equal(shub_val_bin(a, "ab", 2, &b2), 0);
    assert_int_equal(shub_val_bin(a, "ac", 2, &b3), 0);
    assert_true(shub_val_equal(&b1, &b2));
    assert_false(shub_val_equal(&b1, &b3));
    shub_val_t t1 = shub_val_bool(true), t2 = shub_val_bool(false), nil = shub_val_nil();
    assert_false(shub_val_equal(&t1, &t2));
    assert_true(shub_val_equal(&nil, &nil));
}

static void test_shub_val_typed_readers_fall_back_on_absence_and_type(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t risk = shub_val_map(), root = shub_val_map(), flags = shub_val_array();
    put(a, &risk, "level", str(a, "high"));
    put(a, &risk, "score", shub_val_int(15));
    put(a, &risk, "repeat", shub_val_bool(true));
    put(a, &risk, "seen", shub_val_bool(false));
    assert_int_equal(shub_val_push(a, &flags, str(a, "escalation")), 0);
    assert_int_equal(shub_val_push(a, &flags, shub_val_int(7)), 0);
    put(a, &risk, "flags", flags);
    put(a, &root, "risk", risk);

    assert_string_equal(shub_val_str_at(&root, "risk.level"), "high");
    assert_null(shub_val_str_at(&root, "risk.score")); /* not text */
    assert_null(shub_val_str_at(&root, "risk.missing"));
    assert_int_equal(shub_val_int_at(&root, "risk.score", -1), 15);
    assert_int_equal(shub_val_int_at(&root, "risk.level", -1), -1);
    assert_int_equal(shub_val_int_at(&root, "nowhere", 42), 42);
    assert_true(shub_val_bool_at(&root, "risk.repeat"));
    assert_false(shub_val_bool_at(&root, "risk.seen"));
    assert_false(shub_val_bool_at(&root, "risk.level")); /* text is not true */
    assert_true(shub_val_array_has(&root, "risk.flags", "escalation"));
    assert_false(shub_val_array_has(&root, "risk.flags", "7")); /* an int, not text */
    assert_false(shub_val_array_has(&root, "risk.level", "high")); /* not an array */
    assert_int_equal(shub_val_array_len(&root, "risk.flags"), 2);
    assert_int_equal(shub_val_array_len(&root, "risk.level"), 0);
    assert_int_equal(shub_val_array_len(&root, "none"), 0);
}

static void test_shub_val_is_field_name_table(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"name", true}, {"Name_2", true}, {"dash-score", true}, {"_", true},
        {"0", true},    {"", false},      {"a.b", false},       {"a b", false},
        {"a@b", false}, {"é", false},     {"a\tb", false},      {"a/b", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (shub_val_is_field_name(cases[i].s, strlen(cases[i].s)) != cases[i].ok)
            fail_msg("shub_val_is_field_name(\"%s\") != %d", cases[i].s, cases[i].ok);
    char key[SHUB_VAL_MAX_KEY + 1];
    memset(key, 'a', sizeof key);
    assert_true(shub_val_is_field_name(key, SHUB_VAL_MAX_KEY));
    assert_false(shub_val_is_field_name(key, SHUB_VAL_MAX_KEY + 1));
}

static void test_shub_val_is_path_table(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"victim", true}, {"victim.name", true}, {"a.b.c", true}, {"", false},
        {".a", false},    {"a.", false},         {"a..b", false}, {"a.b c", false},
        {"*", false},     {"a.*", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (shub_val_is_path(cases[i].s) != cases[i].ok)
            fail_msg("shub_val_is_path(\"%s\") != %d", cases[i].s, cases[i].ok);
    assert_false(shub_val_is_path(NULL));
    /* "a.a.a...": a path of exactly SHUB_VAL_MAX_PATH bytes passes, one more fails */
    char path[SHUB_VAL_MAX_PATH + 2];
    for (size_t i = 0; i < sizeof path - 1; i++)
        path[i] = i % 2 ? '.' : 'a';
    path[SHUB_VAL_MAX_PATH - 1] = 'b'; /* would be '.'; the last segment is "ab" */
    path[SHUB_VAL_MAX_PATH] = '\0';
    assert_int_equal(strlen(path), SHUB_VAL_MAX_PATH);
    assert_true(shub_val_is_path(path));
    path[SHUB_VAL_MAX_PATH] = 'c';
    path[SHUB_VAL_MAX_PATH + 1] = '\0';
    assert_false(shub_val_is_path(path));
}

static void test_shub_utf8_valid_table(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        const char *s;
        size_t len;
        bool ok;
    } cases[] = {
        {"empty", "", 0, true},
        {"ascii", "abc", 3, true},
        {"nul is valid utf-8", "a\0b", 3, true},
        {"2-byte e-acute", "\xc3\xa9", 2, true},
        {"3-byte euro", "\xe2\x82\xac", 3, true},
        {"4-byte emoji", "\xf0\x9f\x98\x80", 4, true},
        {"smallest 2-byte U+0080", "\xc2\x80", 2, true},
        {"smallest 3-byte U+0800", "\xe0\xa0\x80", 3, true},
        {"smallest 4-byte U+10000", "\xf0\x90\x80\x80", 4, true},
        {"last before surrogates U+D7FF", "\xed\x9f\xbf", 3, true},
        {"first after surrogates U+E000", "\xee\x80\x80", 3, true},
        {"U+FFFF", "\xef\xbf\xbf", 3, true},
        {"largest U+10FFFF", "\xf4\x8f\xbf\xbf", 4, true},
        {"overlong slash c0 af", "\xc0\xaf", 2, false},
        {"overlong c1 bf", "\xc1\xbf", 2, false},
        {"overlong 3-byte e0 80 af", "\xe0\x80\xaf", 3, false},
        {"overlong 3-byte U+07FF", "\xe0\x9f\xbf", 3, false},
        {"overlong 4-byte U+FFFF", "\xf0\x8f\xbf\xbf", 4, false},
        {"surrogate U+D800", "\xed\xa0\x80", 3, false},
        {"surrogate U+DFFF", "\xed\xbf\xbf", 3, false},
        {"above U+10FFFF", "\xf4\x90\x80\x80", 4, false},
        {"f5 lead", "\xf5\x80\x80\x80", 4, false},
        {"f8 lead (5-byte form)", "\xf8\x88\x80\x80\x80", 5, false},
        {"ff", "\xff", 1, false},
        {"lone continuation", "\x80", 1, false},
        {"truncated 2-byte", "\xc3", 1, false},
        {"truncated 3-byte", "\xe2\x82", 2, false},
        {"truncated 4-byte", "\xf0\x9f\x98", 3, false},
        {"bad continuation", "\xc3\x28", 2, false},
        {"ascii then truncated", "ab\xe2", 3, false},
        {"valid then bad", "\xc3\xa9\xc3", 3, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (shub_utf8_valid(cases[i].s, cases[i].len) != cases[i].ok)
            fail_msg("utf8 case \"%s\": expected %s", cases[i].what,
                     cases[i].ok ? "valid" : "invalid");
}

/* ---- minimisation ------------------------------------------------------ */

static void test_shub_val_select_whole_field_kept_rest_stripped(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t src = referral(a), dst;
    const char *allowed[] = {"dash", "victim"};
    strips_t s = {0};
    assert_int_equal(shub_val_select(a, &src, allowed, 2, &dst, collect, &s), 0);
    assert_int_equal(dst.type, SHUB_VAL_MAP);
    assert_int_equal(dst.len, 2);
    assert_string_equal(dst.as.pairs[0].key, "dash");
    assert_string_equal(dst.as.pairs[1].key, "victim");
    assert_true(
        shub_val_equal(shub_val_get(&dst, "victim"), shub_val_get(&src, "victim")));
    /* leaves are shared, not copied */
    assert_ptr_equal(shub_val_at(&dst, "victim.name")->as.str,
                     shub_val_at(&src, "victim.name")->as.str);
    const char *want[] = {"actions", "children", "summary"};
    assert_strips(&s, want, 3);
}

static void count_strip(const char *path, void *ctx)
{
    (void)path;
    (*(int *)ctx)++;
}

/* A sender's field names below an array, chosen so that all share a slot
 * under an unkeyed hash (FNV-1a, the set's hash before it was keyed; the low
 * 13 bits, past the set's size here), cost about one slot each to report
 * once: 2,000 of them, where their one chain would walk some 2,000,000. */
static void test_shub_val_select_chosen_names_below_array_stay_one_probe(void **state)
{
    enum { N = 2000, MASK = 0x1fff };
    shub_arena_t *a = *state;
    shub_val_t items = shub_val_array(), src = shub_val_map(), dst;
    for (int k = 0; k < N; k++) {
        char key[48], path[64];
        for (uint32_t c = 0;; c++) {
            snprintf(key, sizeof key, "k%d-%u", k, c);
            snprintf(path, sizeof path, "items.%s", key);
            uint64_t h = 14695981039346656037u;
            for (const char *p = path; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211u;
            if ((h & MASK) == 7)
                break;
        }
        shub_val_t item = shub_val_map();
        put(a, &item, key, shub_val_int(k));
        push(a, &items, item);
    }
    put(a, &src, "items", items);
    const char *allowed[] = {"items.kept"};
    int stripped = 0;
    uint64_t before = shub_val_select_probes();
    assert_int_equal(shub_val_select(a, &src, allowed, 1, &dst, count_strip, &stripped), 0);
    uint64_t probes = shub_val_select_probes() - before;
    print_message("select: %d chosen names below an array, %llu slots visited\n", N,
                  (unsigned long long)probes);
    assert_int_equal(stripped, N);
    assert_true(probes < 8 * N);
}

static void test_shub_val_select_nested_path_keeps_only_that_leaf(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t src = referral(a), dst;
    const char *allowed[] = {"victim.address.postcode"};
    strips_t s = {0};
    assert_int_equal(shub_val_select(a, &src, allowed, 1, &dst, collect, &s), 0);
    assert_int_equal(dst.len, 1);
    const shub_val_t *victim = shub_val_get(&dst, "victim");
    assert_int_equal(victim->len, 1);
    const shub_val_t *address = shub_val_get(victim, "address");
    assert_int_equal(address->len, 1);
    assert_string_equal(shub_val_at(&dst, "victim.address.postcode")->as.str, "CV1 2AB");
    /* top-most: "victim.name", not anything below; "actions", not "actions.owner" */
    const char *want[] = {"dash",    "victim.name", "victim.dob", "victim.address.line1",
                          "actions", "children",    "summary"};
    assert_strips(&s, want, 7);
}

static void test_shub_val_select_array_path_applies_to_every_element(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t src = referral(a), dst;
    const char *allowed[] = {"actions.owner"};
    strips_t s = {0};
    assert_int_equal(shub_val_select(a, &src, allowed, 1, &dst, collect, &s), 0);
    const shub_val_t *actions = shub_val_get(&dst, "actions");
    assert_non_null(actions);
    assert_int_equal(actions->type, SHUB_VAL_ARRAY);
    assert_int_equal(actions->len, 2);
    for (uint32_t i = 0; i < 2; i++) {
        assert_int_equal(actions->as.items[i].len, 1);
        assert_string_equal(actions->as.items[i].as.pairs[0].key, "owner");
    }
    assert_string_equal(actions->as.items[1].as.pairs[0].val.as.str, "bcc");
    /* "actions.due" is in both elements and reported once */
    const char *want[] = {"dash",         "victim",   "actions.due",
                          "actions.note", "children", "summary"};
    assert_strips(&s, want, 6);
}

static void test_shub_val_select_array_scalar_element_reported_at_array(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t src = referral(a), dst;
    const char *allowed[] = {"children.name"};
    strips_t s = {0};
    assert_int_equal(shub_val_select(a, &src, allowed, 1, &dst, collect, &s), 0);
    const shub_val_t *children = shub_val_get(&dst, "children");
    assert_int_equal(children->len, 1); /* the "unborn" scalar has no name field */
    assert_string_equal(shub_val_at(&children->as.items[0], "name")->as.str, "Sam");
    const char *want[] = {"dash", "victim", "actions", "children", "summary"};
    assert_strips(&s, want, 5);
}

static void test_shub_val_select_same_path_in_many_elements_reported_once(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t items = shub_val_array();
    for (int i = 0; i < 500; i++) {
        shub_val_t m = shub_val_map();
        put(a, &m, "keep", shub_val_int(i));
        put(a, &m, "drop", shub_val_int(i));
        shub_val_t inner = shub_val_array();
        shub_val_t leaf = shub_val_map();
        put(a, &leaf, "x", shub_val_int(i));
        put(a, &leaf, "y", shub_val_int(i));
        push(a, &inner, leaf);
        put(a, &m, "inner", inner);
        push(a, &items, m);
    }
    shub_val_t src = shub_val_map(), dst;
    put(a, &src, "items", items);
    const char *allowed[] = {"items.keep", "items.inner.x"};
    strips_t s = {0};
    assert_int_equal(shub_val_select(a, &src, allowed, 2, &dst, collect, &s), 0);
    const char *want[] = {"items.drop", "items.inner.y"};
    assert_strips(&s, want, 2);
    assert_int_equal(shub_val_get(&dst, "items")->len, 500);
}

static void test_shub_val_select_star_keeps_everything(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t src = referral(a), dst;
    const char *allowed[] = {"dash", "*"};
    strips_t s = {0};
    assert_int_equal(shub_val_select(a, &src, allowed, 2, &dst, collect, &s), 0);
    assert_true(shub_val_equal(&src, &dst));
    assert_int_equal(s.n, 0);
}

static void test_shub_val_select_nothing_allowed_strips_all(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t src = referral(a), dst;
    strips_t s = {0};
    assert_int_equal(shub_val_select(a, &src, NULL, 0, &dst, collect, &s), 0);
    assert_int_equal(dst.type, SHUB_VAL_MAP);
    assert_int_equal(dst.len, 0);
    const char *want[] = {"dash", "victim", "actions", "children", "summary"};
    assert_strips(&s, want, 5);
    /* no callback: still works */
    assert_int_equal(shub_val_select(a, &src, NULL, 0, &dst, NULL, NULL), 0);
}

static void test_shub_val_select_prefix_is_not_an_ancestor(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t src = shub_val_map(), dst;
    put(a, &src, "victim", shub_val_int(1));
    put(a, &src, "victim_x", shub_val_int(2));
    put(a, &src, "vic", shub_val_int(3));
    const char *allowed[] = {"victim"};
    strips_t s = {0};
    assert_int_equal(shub_val_select(a, &src, allowed, 1, &dst, collect, &s), 0);
    assert_int_equal(dst.len, 1);
    assert_non_null(shub_val_get(&dst, "victim"));
    const char *want[] = {"victim_x", "vic"};
    assert_strips(&s, want, 2);
}

static void test_shub_val_select_path_below_scalar_strips_scalar(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t src = referral(a), dst;
    const char *allowed[] = {"dash.score", "summary"};
    strips_t s = {0};
    assert_int_equal(shub_val_select(a, &src, allowed, 2, &dst, collect, &s), 0);
    assert_null(shub_val_get(&dst, "dash"));
    assert_non_null(shub_val_get(&dst, "summary"));
    const char *want[] = {"dash", "victim", "actions", "children"};
    assert_strips(&s, want, 4);
}

static void test_shub_val_select_not_a_map_returns_einval(void **state)
{
    shub_arena_t *a = *state;
    shub_val_t arr = shub_val_array(), dst = shub_val_nil();
    assert_int_equal(shub_val_select(a, &arr, NULL, 0, &dst, NULL, NULL), SHUB_EINVAL);
    assert_int_equal(dst.type, SHUB_VAL_NIL);
    assert_int_equal(shub_val_select(a, NULL, NULL, 0, &dst, NULL, NULL), SHUB_EINVAL);
}

static void test_shub_val_select_deep_long_keys_within_limits(void **state)
{
    shub_arena_t *a = *state;
    /* 11 levels of 64-byte keys: longer than any allowed path can be */
    char keys[11][SHUB_VAL_MAX_KEY + 1];
    for (int i = 0; i < 11; i++) {
        memset(keys[i], 'a' + i, SHUB_VAL_MAX_KEY);
        keys[i][SHUB_VAL_MAX_KEY] = '\0';
    }
    shub_val_t v = shub_val_int(7);
    for (int i = 10; i >= 0; i--) {
        shub_val_t m = shub_val_map();
        put(a, &m, keys[i], v);
        put(a, &m, "other", shub_val_int(i));
        v = m;
    }
    char allowed0[3 * (SHUB_VAL_MAX_KEY + 1)];
    snprintf(allowed0, sizeof allowed0, "%s.%s.%s", keys[0], keys[1], keys[2]);
    const char *allowed[] = {allowed0};
    shub_val_t dst;
    strips_t s = {0};
    assert_int_equal(shub_val_select(a, &v, allowed, 1, &dst, collect, &s), 0);
    assert_int_equal(s.n, 3); /* "other" at each of the three levels */
    char deep[4 * (SHUB_VAL_MAX_KEY + 1)];
    snprintf(deep, sizeof deep, "%s.%s.%s.%s", keys[0], keys[1], keys[2], keys[3]);
    assert_non_null(shub_val_at(&dst, deep));
}

static void test_shub_val_select_out_of_memory_returns_enomem_cleanly(void **state)
{
    (void)state;
    int saw_enomem = 0;
    for (long n = 0; n < 200; n++) {
        shub_arena_t *src_arena = shub_arena_new(0);
        shub_val_t src = referral(src_arena), dst = shub_val_nil();
        shub_arena_t *a = shub_arena_new(0);
        const char *allowed[] = {"actions.owner", "victim.name", "children.name"};
        shub_alloc_fail_after(n);
        int rc = shub_val_select(a, &src, allowed, 3, &dst, NULL, NULL);
        shub_alloc_fail_after(-1);
        shub_arena_destroy(&a);
        shub_arena_destroy(&src_arena);
        if (rc == 0)
            break;
        assert_int_equal(rc, SHUB_ENOMEM);
        assert_int_equal(dst.type, SHUB_VAL_NIL);
        saw_enomem++;
    }
    assert_true(saw_enomem >= 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_arena, teardown_arena)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_shub_val_str_valid_text_copied),
        T(test_shub_val_str_nul_byte_returns_evalue),
        T(test_shub_val_str_bad_utf8_returns_eutf8),
        T(test_shub_val_bin_copies_bytes_including_empty),
        cmocka_unit_test(test_shub_val_scalars_hold_their_values),
        T(test_shub_val_put_duplicate_key_returns_eexist),
        T(test_shub_val_put_bad_keys_return_evalue),
        T(test_shub_val_put_not_a_map_returns_einval),
        T(test_shub_val_put_many_keys_grow_in_order),
        cmocka_unit_test(test_shub_val_put_out_of_memory_returns_enomem),
        T(test_shub_val_get_absent_or_not_map_returns_null),
        T(test_shub_val_at_nested_path_finds_value),
        T(test_shub_val_at_bad_paths_return_null),
        T(test_shub_val_equal_compares_deeply),
        T(test_shub_val_typed_readers_fall_back_on_absence_and_type),
        cmocka_unit_test(test_shub_val_is_field_name_table),
        cmocka_unit_test(test_shub_val_is_path_table),
        cmocka_unit_test(test_shub_utf8_valid_table),
        T(test_shub_val_select_whole_field_kept_rest_stripped),
        T(test_shub_val_select_chosen_names_below_array_stay_one_probe),
        T(test_shub_val_select_nested_path_keeps_only_that_leaf),
        T(test_shub_val_select_array_path_applies_to_every_element),
        T(test_shub_val_select_array_scalar_element_reported_at_array),
        T(test_shub_val_select_same_path_in_many_elements_reported_once),
        T(test_shub_val_select_star_keeps_everything),
        T(test_shub_val_select_nothing_allowed_strips_all),
        T(test_shub_val_select_prefix_is_not_an_ancestor),
        T(test_shub_val_select_path_below_scalar_strips_scalar),
        T(test_shub_val_select_not_a_map_returns_einval),
        T(test_shub_val_select_deep_long_keys_within_limits),
        cmocka_unit_test(test_shub_val_select_out_of_memory_returns_enomem_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
