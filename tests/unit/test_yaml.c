/*
 * test_yaml: the one YAML loader. The tree keeps each value's line and
 * column; syntax errors keep libyaml's words and say what to do, a tab is
 * called a tab; what our files never need (aliases, a second document, a
 * repeated key, a NUL byte, deep nesting) is refused where it stands. A
 * schema binds values into a struct and reports every mistake, in line
 * order, as "file:line:column: message". Allocation failure at any point is
 * SHUB_ENOMEM and leaks nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "sharehub/alloc.h"
#include "sharehub/yaml.h"

#define MAX_LINES 16

typedef struct lines {
    char v[MAX_LINES][400];
    int n;
} lines_t;

static void collect(const shub_err_t *err, void *ctx)
{
    lines_t *l = ctx;
    if (l->n < MAX_LINES)
        shub_err_format(err, l->v[l->n], sizeof l->v[0]);
    l->n++;
}

/* Parses text as "t.yaml" and returns the formatted errors. */
static int parse_errors(const char *text, lines_t *out)
{
    shub_yaml_doc_t *doc = NULL;
    shub_err_t err;
    memset(out, 0, sizeof *out);
    int rc = shub_yaml_parse("t.yaml", text, strlen(text), &doc, &err);
    assert_non_null(doc);
    shub_yaml_report(doc, collect, out);
    shub_yaml_destroy(&doc);
    return rc;
}

static void expect_one_error(const char *text, const char *want)
{
    lines_t l;
    int rc = parse_errors(text, &l);
    if (rc != SHUB_ECONFIG || l.n != 1 || strcmp(l.v[0], want) != 0)
        fail_msg("text:\n%s\nrc %d, %d errors, first: %s\nwant: %s", text, rc, l.n,
                 l.v[0], want);
}

/* Parses text as `name` and binds it to type into dst; out gets the
 * formatted errors. Returns what the bind returned. Strings bound into dst
 * die with the document, so only numbers may be read afterwards. */
static int bind_errors(const char *name, const char *text, const shub_yaml_type_t *type,
                       void *dst, lines_t *out)
{
    shub_yaml_doc_t *doc = NULL;
    memset(out, 0, sizeof *out);
    assert_int_equal(shub_yaml_parse(name, text, strlen(text), &doc, NULL), 0);
    int rc = shub_yaml_bind(doc, type, dst);
    shub_yaml_report(doc, collect, out);
    shub_yaml_destroy(&doc);
    return rc;
}

/* ---- the tree ----------------------------------------------------------- */

static void test_shub_yaml_parse_tree_keeps_positions(void **state)
{
    (void)state;
    const char *text = "# the partnership\n"
                       "areas: [coventry, walsall]\n"
                       "orgs:\n"
                       "  - id: wmp\n"
                       "    name: \"West Midlands Police\"\n";
    shub_yaml_doc_t *doc = NULL;
    assert_int_equal(shub_yaml_parse("orgs.yaml", text, strlen(text), &doc, NULL), 0);
    const shub_yaml_node_t *root = shub_yaml_root(doc);
    assert_int_equal(root->kind, SHUB_YAML_MAP);
    assert_int_equal(root->n, 4);
    const shub_yaml_node_t *areas = shub_yaml_get(root, "areas");
    assert_int_equal(areas->kind, SHUB_YAML_SEQ);
    assert_int_equal(areas->n, 2);
    assert_string_equal(areas->items[1]->text, "walsall");
    assert_int_equal(areas->items[1]->line, 2);
    assert_int_equal(areas->items[1]->column, 19);
    const shub_yaml_node_t *name = shub_yaml_at(doc, "orgs[0].name");
    assert_string_equal(name->text, "West Midlands Police");
    assert_false(name->plain);
    assert_int_equal(name->line, 5);
    assert_int_equal(name->column, 11);
    assert_true(shub_yaml_at(doc, "orgs[0].id")->plain);
    /* a path that goes nowhere stops at its nearest ancestor */
    assert_ptr_equal(shub_yaml_at(doc, "orgs[0].kind"), shub_yaml_at(doc, "orgs[0]"));
    assert_ptr_equal(shub_yaml_at(doc, "orgs[7].id"), shub_yaml_get(root, "orgs"));
    assert_ptr_equal(shub_yaml_at(doc, ""), root);
    assert_null(shub_yaml_get(root, "nothing"));
    assert_string_equal(shub_yaml_name(doc), "orgs.yaml");
    size_t len;
    assert_string_equal(shub_yaml_bytes(doc, &len), text);
    assert_int_equal(len, strlen(text));
    char shown[64];
    assert_string_equal(shub_yaml_show(areas, shown, sizeof shown), "a list");
    assert_string_equal(shub_yaml_show(root, shown, sizeof shown), "a mapping");
    assert_string_equal(shub_yaml_show(name, shown, sizeof shown),
                        "'West Midlands Police'");
    shub_yaml_destroy(&doc);
    assert_null(doc);
    shub_yaml_destroy(NULL);

    assert_int_equal(shub_yaml_parse("e.yaml", "# only a comment\n", 17, &doc, NULL), 0);
    assert_null(shub_yaml_root(doc));
    shub_yaml_destroy(&doc);
}

/* ---- syntax: libyaml's words and what to do ----------------------------- */

static void test_shub_yaml_parse_syntax_errors_say_what_to_do(void **state)
{
    (void)state;
    expect_one_error("a: 1\n\tb: 2\n",
                     "t.yaml:2:1: yaml: a tab character here: indent with spaces only");
    expect_one_error("a:\n\tb: 2\n",
                     "t.yaml:2:1: yaml: a tab character here: indent with spaces only");
    expect_one_error(
        "title: Joint working: police and MARAC\n",
        "t.yaml:1:21: yaml: mapping values are not allowed in this context: a "
        "value that contains ': ' must be in quotes, or this line is indented "
        "too far");
    expect_one_error(
        "a: 1\n b: 2\n",
        "t.yaml:2:3: yaml: mapping values are not allowed in this context: a "
        "value that contains ': ' must be in quotes, or this line is indented "
        "too far");
    expect_one_error("a: 1\n"
                     "b\n"
                     "c: 2\n",
                     "t.yaml:2:1: yaml: could not find expected ':': this line has a key "
                     "without ': ' and a value");
    expect_one_error(
        "a: {x: 1\nb: 2\n",
        "t.yaml:2:2: yaml: did not find expected ',' or '}': the '{' on line 1 "
        "column 4 is not closed");
    expect_one_error(
        "a: [1, 2\n",
        "t.yaml:2:1: yaml: did not find expected ',' or ']': the '[' on line 1 "
        "column 4 is not closed");
    expect_one_error(
        "a: \"open\n",
        "t.yaml:2:1: yaml: found unexpected end of stream: the quote on line 1 "
        "column 4 is not closed");
    expect_one_error("a: 'it's'\n",
                     "t.yaml:1:8: yaml: did not find expected key: check this line's "
                     "indentation, and that quoted text is not followed by more text");
    expect_one_error(
        "a:\n  - x\n  y: 2\n",
        "t.yaml:3:3: yaml: did not find expected '-' indicator: the entries of a "
        "list each start with '- ' at the same indentation");
    expect_one_error(
        "key: @home\n",
        "t.yaml:1:6: yaml: found character that cannot start any token: a value "
        "that starts with '@' must be in quotes");
    expect_one_error(
        "a: ok\nb: \x01\n",
        "t.yaml:2:4: yaml: control characters are not allowed (byte 0x01): the "
        "file must be plain UTF-8 text");
    expect_one_error(
        "a: caf\xc3\xa9\nb: \xff\n",
        "t.yaml:2:4: yaml: invalid leading UTF-8 octet (byte 0xff): the file "
        "must be plain UTF-8 text");
}

static void test_shub_yaml_parse_refuses_what_our_files_never_need(void **state)
{
    (void)state;
    expect_one_error("a: &x 1\nb: *x\n",
                     "t.yaml:2:4: 'b': aliases are not allowed: write the value out");
    expect_one_error("a: 1\n---\nb: 2\n",
                     "t.yaml:2:1: only one yaml document is allowed per file");
    expect_one_error("orgs:\n  - id: a\n    kind: x\n    kind: y\n",
                     "t.yaml:4:5: duplicate key 'orgs[0].kind' (first on line 3)");
    expect_one_error("a: \"x\\0y\"\n", "t.yaml:1:4: 'a' contains a NUL byte");
    char deep[400] = "";
    for (int i = 0; i < SHUB_YAML_MAX_DEPTH + 1; i++)
        strcat(deep, "[");
    expect_one_error(deep, "t.yaml:1:33: nesting deeper than 32 levels");
}

/* ---- schemas ------------------------------------------------------------ */

typedef struct rec {
    const char *id;
    bool on;
} rec_t;

typedef struct cfg {
    const char *title;
    uint32_t version;
    double ratio;
    int status;
    int64_t from;
    const char **tags;
    size_t tags_count;
    rec_t *recs;
    size_t recs_count;
    struct {
        uint32_t window;
        const char *note;
    } limits;
    int checked;
} cfg_t;

/* A CHECK: accepts only "odd" and counts its calls. */
static int check_odd(shub_yaml_doc_t *doc, const shub_yaml_node_t *node, const char *path,
                     void *dst)
{
    char shown[64];
    if (node->kind != SHUB_YAML_SCALAR || strcmp(node->text, "odd") != 0)
        shub_yaml_error(doc, node, "'%s' must be odd, not %s", path,
                        shub_yaml_show(node, shown, sizeof shown));
    else
        (*(int *)dst)++;
    return 0;
}

static const shub_yaml_type_t text_type = {.kind = SHUB_YAML_TEXT, .min = 1, .max = 20};
static const shub_yaml_type_t tags_type = {.kind = SHUB_YAML_LIST,
                                           .flags = SHUB_YAML_ONE_OR_MORE,
                                           .max = 3,
                                           .entry = &text_type};
static const shub_yaml_type_t bool_type = {.kind = SHUB_YAML_BOOL};
static const shub_yaml_field_t rec_fields[] = {
    {"id", true, offsetof(rec_t, id), 0, &text_type},
    {"on", false, offsetof(rec_t, on), 0, &bool_type},
    {NULL, false, 0, 0, NULL},
};
static const shub_yaml_type_t rec_type = {
    .kind = SHUB_YAML_STRUCT, .size = sizeof(rec_t), .fields = rec_fields};
static const shub_yaml_type_t recs_type = {
    .kind = SHUB_YAML_LIST, .min = 1, .max = 10, .entry = &rec_type};
static const shub_yaml_type_t version_type = {
    .kind = SHUB_YAML_UINT, .min = 1, .max = 99};
static const shub_yaml_type_t ratio_type = {
    .kind = SHUB_YAML_NUMBER, .min = 0, .max = 1, .what = "a number from 0 to 1"};
static const shub_yaml_name_t statuses[] = {{"draft", 1}, {"active", 2}, {NULL, 0}};
static const shub_yaml_type_t status_type = {.kind = SHUB_YAML_ENUM, .names = statuses};
static const shub_yaml_type_t date_type = {.kind = SHUB_YAML_DATE};
static const shub_yaml_type_t window_type = {.kind = SHUB_YAML_UINT};
static const shub_yaml_type_t odd_type = {.kind = SHUB_YAML_CHECK, .check = check_odd};
static const shub_yaml_field_t limits_fields[] = {
    {"window", false, offsetof(cfg_t, limits.window), 0, &window_type},
    {"note", false, offsetof(cfg_t, limits.note), 0, &text_type},
    {NULL, false, 0, 0, NULL},
};
static const shub_yaml_type_t limits_type = {.kind = SHUB_YAML_STRUCT,
                                             .fields = limits_fields};
static const shub_yaml_field_t cfg_fields[] = {
    {"title", true, offsetof(cfg_t, title), 0, &text_type},
    {"version", true, offsetof(cfg_t, version), 0, &version_type},
    {"ratio", false, offsetof(cfg_t, ratio), 0, &ratio_type},
    {"status", false, offsetof(cfg_t, status), 0, &status_type},
    {"from", false, offsetof(cfg_t, from), 0, &date_type},
    {"tags", false, offsetof(cfg_t, tags), offsetof(cfg_t, tags_count), &tags_type},
    {"recs", false, offsetof(cfg_t, recs), offsetof(cfg_t, recs_count), &recs_type},
    {"limits", false, 0, 0, &limits_type}, /* a section of cfg_t itself */
    {"kind", false, offsetof(cfg_t, checked), 0, &odd_type},
    {NULL, false, 0, 0, NULL},
};
static const shub_yaml_type_t cfg_type = {.kind = SHUB_YAML_STRUCT, .fields = cfg_fields};

static void test_shub_yaml_bind_good_document_fills_struct(void **state)
{
    (void)state;
    const char *text = "title: pilot\n"
                       "version: 3\n"
                       "ratio: 0.25\n"
                       "status: active\n"
                       "from: 2026-07-01\n"
                       "tags: solo\n"
                       "recs:\n"
                       "  - {id: a, on: true}\n"
                       "  - id: b\n"
                       "limits: {window: 64}\n"
                       "kind: odd\n";
    shub_yaml_doc_t *doc = NULL;
    assert_int_equal(shub_yaml_parse("c.yaml", text, strlen(text), &doc, NULL), 0);
    cfg_t c = {.limits.window = 256, .limits.note = "default"};
    assert_int_equal(shub_yaml_bind(doc, &cfg_type, &c), 0);
    assert_string_equal(c.title, "pilot");
    assert_int_equal(c.version, 3);
    assert_true(c.ratio == 0.25);
    assert_int_equal(c.status, 2);
    assert_int_equal(c.from, INT64_C(1782864000000));
    assert_int_equal(c.tags_count, 1); /* one value counts as a list of one */
    assert_string_equal(c.tags[0], "solo");
    assert_int_equal(c.recs_count, 2);
    assert_string_equal(c.recs[0].id, "a");
    assert_true(c.recs[0].on);
    assert_string_equal(c.recs[1].id, "b");
    assert_false(c.recs[1].on);
    assert_int_equal(c.limits.window, 64);
    assert_string_equal(c.limits.note, "default"); /* absent: as the caller set it */
    assert_int_equal(c.checked, 1);
    assert_int_equal(shub_yaml_error_count(doc), 0);
    shub_yaml_destroy(&doc);
}

static void test_shub_yaml_bind_reports_every_mistake_in_line_order(void **state)
{
    (void)state;
    const char *text = "recs:\n"                      /* 1 */
                       "  - {on: maybe}\n"            /* 2 */
                       "version: 010\n"               /* 3 */
                       "ratio: 1.5\n"                 /* 4 */
                       "status: live\n"               /* 5 */
                       "from: 2026-02-30\n"           /* 6 */
                       "tags: [a, b, c, d]\n"         /* 7 */
                       "colour: red\n"                /* 8 */
                       "limits: {window: -1, x: 1}\n" /* 9 */
                       "kind: even\n"                 /* 10 */
                       "title: \"\"\n";               /* 11 */
    cfg_t c = {0};
    lines_t l;
    assert_int_equal(bind_errors("c.yaml", text, &cfg_type, &c, &l), SHUB_ECONFIG);
    static const char *const want[] = {
        "c.yaml:2:5: 'recs[0]' is missing required key 'id'",
        "c.yaml:2:10: 'recs[0].on' must be true or false, not 'maybe'",
        "c.yaml:3:10: 'version' must be written without leading zeros, not '010'",
        "c.yaml:4:8: 'ratio' must be a number from 0 to 1, not '1.5'",
        "c.yaml:5:9: 'status' must be one of draft, active, not 'live'",
        "c.yaml:6:7: 'from': '2026-02-30': February 2026 has no day 30",
        "c.yaml:7:7: 'tags' has 4 entries, limit 3",
        "c.yaml:8:1: unknown key 'colour'",
        "c.yaml:9:18: 'limits.window' must be a whole number, not '-1'",
        "c.yaml:9:22: unknown key 'x' in 'limits'",
        "c.yaml:10:7: 'kind' must be odd, not 'even'",
        "c.yaml:11:8: 'title' must not be empty",
    };
    assert_int_equal(l.n, 12);
    for (int i = 0; i < 12; i++)
        if (strcmp(l.v[i], want[i]) != 0)
            fail_msg("error %d: %s\nwant:    %s", i, l.v[i], want[i]);
}

static void test_shub_yaml_bind_wrong_kinds_and_empty_documents(void **state)
{
    (void)state;
    cfg_t c = {0};
    lines_t l;
    assert_int_equal(bind_errors("k.yaml",
                                 "title: [a]\nversion: {x: 1}\nrecs: one\nlimits:\n",
                                 &cfg_type, &c, &l),
                     SHUB_ECONFIG);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.v[0], "k.yaml:1:8: 'title' must be text, not a list");
    assert_string_equal(l.v[1],
                        "k.yaml:2:10: 'version' must be a whole number, not a mapping");
    assert_string_equal(l.v[2], "k.yaml:3:7: 'recs' must be a list, not 'one'");
    assert_string_equal(l.v[3], "k.yaml:4:8: 'limits' must be a mapping, not nothing");

    /* an empty file is an empty mapping: its required keys are missing */
    assert_int_equal(bind_errors("e.yaml", "", &cfg_type, &c, &l), SHUB_ECONFIG);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0], "e.yaml:1:1: missing required key 'title'");
    assert_string_equal(l.v[1], "e.yaml:1:1: missing required key 'version'");

    assert_int_equal(bind_errors("s.yaml", "- a\n", &cfg_type, &c, &l), SHUB_ECONFIG);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "s.yaml:1:1: 'document' must be a mapping, not a list");
}

static void test_shub_yaml_bind_whole_numbers_out_of_range(void **state)
{
    (void)state;
    static const shub_yaml_type_t floor_type = {.kind = SHUB_YAML_UINT, .min = 1};
    static const shub_yaml_field_t fields[] = {
        {"hours", false, offsetof(cfg_t, limits.window), 0, &floor_type},
        {"version", false, offsetof(cfg_t, version), 0, &version_type},
        {"window", false, offsetof(cfg_t, checked), 0, &window_type},
        {NULL, false, 0, 0, NULL},
    };
    static const shub_yaml_type_t type = {.kind = SHUB_YAML_STRUCT, .fields = fields};
    cfg_t c = {0};
    lines_t l;
    assert_int_equal(bind_errors("n.yaml", "hours: 0\nversion: 100\nwindow: 4294967296\n",
                                 &type, &c, &l),
                     SHUB_ECONFIG);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0], "n.yaml:1:8: 'hours' must be at least 1, not 0");
    assert_string_equal(l.v[1], "n.yaml:2:10: 'version' of 100 is outside 1..99");
    assert_string_equal(l.v[2],
                        "n.yaml:3:9: 'window' of 4294967296 is outside 0..4294967295");
}

static void test_shub_yaml_bind_open_struct_ignores_unknown_keys(void **state)
{
    (void)state;
    static const shub_yaml_type_t open_type = {
        .kind = SHUB_YAML_STRUCT, .flags = SHUB_YAML_OPEN, .fields = limits_fields};
    cfg_t c = {0};
    lines_t l;
    assert_int_equal(
        bind_errors("o.yaml", "window: 8\nsomething_new: [1, 2]\n", &open_type, &c, &l),
        0);
    assert_int_equal(l.n, 0);
    assert_int_equal(c.limits.window, 8);
}

static void test_shub_yaml_report_keeps_the_first_hundred(void **state)
{
    (void)state;
    shub_yaml_doc_t *doc = NULL;
    assert_int_equal(shub_yaml_parse("m.yaml", "a: 1\n", 5, &doc, NULL), 0);
    for (int i = 0; i < 150; i++)
        shub_yaml_error(doc, shub_yaml_root(doc), "mistake %d", i);
    assert_int_equal(shub_yaml_error_count(doc), 150);
    lines_t l = {.n = 0};
    assert_int_equal(shub_yaml_report(doc, collect, &l), 150);
    assert_int_equal(l.n, SHUB_YAML_MAX_ERRORS + 1);
    assert_string_equal(l.v[0], "m.yaml:1:1: mistake 0");
    assert_int_equal(shub_yaml_error_count(doc), 0); /* reported and forgotten */
    assert_int_equal(shub_yaml_report(doc, collect, &l), 0);
    shub_yaml_destroy(&doc);
}

static void test_shub_yaml_load_file_errors_name_the_file(void **state)
{
    (void)state;
    shub_yaml_doc_t *doc = NULL;
    shub_err_t err;
    assert_int_equal(shub_yaml_load("/nonexistent/hub.yaml", &doc, &err), SHUB_ENOTFOUND);
    assert_null(doc);
    assert_string_equal(err.file, "/nonexistent/hub.yaml");
    assert_string_equal(err.msg, "cannot open: No such file or directory");
    assert_int_equal(shub_yaml_parse(NULL, "", 0, &doc, &err), SHUB_EINVAL);
}

/* The Nth allocation fails, for every N: SHUB_ENOMEM or success, no leak
 * (ASan), never a bogus syntax error. */
static void test_shub_yaml_parse_and_bind_out_of_memory(void **state)
{
    (void)state;
    const char *text = "title: pilot\nversion: 3\ntags: [a, b]\n"
                       "recs: [{id: a}, {id: b, on: false}]\nlimits: {window: 1}\n";
    int rc = SHUB_ENOMEM;
    long n = 0;
    for (; rc == SHUB_ENOMEM && n < 10000; n++) {
        shub_yaml_doc_t *doc = NULL;
        shub_alloc_fail_after(n);
        rc = shub_yaml_parse("c.yaml", text, strlen(text), &doc, NULL);
        cfg_t c = {0};
        if (rc == 0)
            rc = shub_yaml_bind(doc, &cfg_type, &c);
        shub_alloc_fail_after(-1);
        assert_true(rc == 0 || rc == SHUB_ENOMEM);
        if (rc == 0)
            assert_int_equal(c.recs_count, 2);
        shub_yaml_destroy(&doc);
    }
    assert_int_equal(rc, 0);
    assert_true(n > 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shub_yaml_parse_tree_keeps_positions),
        cmocka_unit_test(test_shub_yaml_parse_syntax_errors_say_what_to_do),
        cmocka_unit_test(test_shub_yaml_parse_refuses_what_our_files_never_need),
        cmocka_unit_test(test_shub_yaml_bind_good_document_fills_struct),
        cmocka_unit_test(test_shub_yaml_bind_reports_every_mistake_in_line_order),
        cmocka_unit_test(test_shub_yaml_bind_wrong_kinds_and_empty_documents),
        cmocka_unit_test(test_shub_yaml_bind_whole_numbers_out_of_range),
        cmocka_unit_test(test_shub_yaml_bind_open_struct_ignores_unknown_keys),
        cmocka_unit_test(test_shub_yaml_report_keeps_the_first_hundred),
        cmocka_unit_test(test_shub_yaml_load_file_errors_name_the_file),
        cmocka_unit_test(test_shub_yaml_parse_and_bind_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
