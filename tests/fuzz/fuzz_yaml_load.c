/*
 * fuzz_yaml_load: the libFuzzer target for the one YAML loader, and (linked
 * with replay.c) the ordinary test that replays its corpus.
 *
 * Any byte string is parsed into a tree, then bound twice: to the orgs.yaml
 * schema (orgs.h), and to a schema here that uses every kind of value the
 * loader knows. The rules checked: a parse either gives a document or says
 * why in err; every error a document reports has the document's name, a
 * line and column of at least 1, a message, and comes in line order; every
 * node has a position inside the input's lines; and the tree can be walked
 * and searched by path. Any other outcome is a loader bug, and the harness
 * aborts so that libFuzzer keeps the input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharehub/orgs.h"
#include "sharehub/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void bug(const char *what)
{
    fprintf(stderr, "fuzz_yaml_load: %s\n", what);
    abort();
}

typedef struct seen {
    int line, column;
    size_t n;
} seen_t;

static void check_error(const shub_err_t *err, void *ctx)
{
    seen_t *s = ctx;
    if (err->code != SHUB_ECONFIG || strcmp(err->file, "fuzz.yaml") != 0)
        bug("an error without its code or file");
    if (err->line < 1 || err->column < 1 || err->msg[0] == '\0')
        bug("an error without a position or a message");
    if (err->line < s->line || (err->line == s->line && err->column < s->column))
        bug("errors out of line order");
    s->line = err->line;
    s->column = err->column;
    s->n++;
}

static void walk(const shub_yaml_doc_t *doc, const shub_yaml_node_t *n, int lines,
                 int depth)
{
    if (depth > SHUB_YAML_MAX_DEPTH + 1)
        bug("a tree deeper than the limit");
    /* libyaml places a value that is not written (the key of a lone "?")
     * at the end of the input, which may be the line after the last. */
    if (n->line < 1 || n->line > lines + 1 || n->column < 1)
        bug("a node outside the input");
    if (n->kind == SHUB_YAML_SCALAR && (!n->text || strlen(n->text) > n->len))
        bug("a scalar longer than its length");
    if (n->kind == SHUB_YAML_SCALAR && strlen(n->text) != n->len &&
        !shub_yaml_error_count(doc))
        bug("a NUL byte in a scalar, and no error for it");
    if (n->kind == SHUB_YAML_MAP && n->n % 2)
        bug("a mapping with a key and no value");
    for (size_t i = 0; i < n->n; i++)
        walk(doc, n->items[i], lines, depth + 1);
}

/* A schema with every kind of value, so that binding meets each. */
typedef struct any {
    const char *text;
    uint32_t count;
    double ratio;
    bool flag;
    int choice;
    int64_t date;
    const char **names;
    size_t names_count;
    struct inner {
        const char *id;
        uint32_t n;
    } * items;
    size_t items_count;
    int checked;
} any_t;

static int check_any(shub_yaml_doc_t *doc, const shub_yaml_node_t *node, const char *path,
                     void *dst)
{
    (void)doc;
    (void)path;
    (*(int *)dst) += node->kind;
    return 0;
}

static const shub_yaml_type_t text_type = {.kind = SHUB_YAML_TEXT, .min = 1, .max = 64};
static const shub_yaml_type_t count_type = {
    .kind = SHUB_YAML_UINT, .min = 1, .max = 1000};
static const shub_yaml_type_t ratio_type = {
    .kind = SHUB_YAML_NUMBER, .min = 0, .max = 1, .what = "a number from 0 to 1"};
static const shub_yaml_type_t flag_type = {.kind = SHUB_YAML_BOOL};
static const shub_yaml_name_t choices[] = {{"a", 1}, {"b", 2}, {NULL, 0}};
static const shub_yaml_type_t choice_type = {.kind = SHUB_YAML_ENUM, .names = choices};
static const shub_yaml_type_t date_type = {.kind = SHUB_YAML_DATE};
static const shub_yaml_type_t names_type = {.kind = SHUB_YAML_LIST,
                                            .flags = SHUB_YAML_ONE_OR_MORE,
                                            .max = 8,
                                            .entry = &text_type};
static const shub_yaml_field_t inner_fields[] = {
    {"id", true, offsetof(struct inner, id), 0, &text_type},
    {"n", false, offsetof(struct inner, n), 0, &count_type},
    {NULL, false, 0, 0, NULL},
};
static const shub_yaml_type_t inner_type = {
    .kind = SHUB_YAML_STRUCT, .size = sizeof(struct inner), .fields = inner_fields};
static const shub_yaml_type_t items_type = {
    .kind = SHUB_YAML_LIST, .min = 1, .max = 100, .entry = &inner_type};
static const shub_yaml_type_t check_type = {.kind = SHUB_YAML_CHECK, .check = check_any};
static const shub_yaml_field_t any_fields[] = {
    {"text", true, offsetof(any_t, text), 0, &text_type},
    {"count", false, offsetof(any_t, count), 0, &count_type},
    {"ratio", false, offsetof(any_t, ratio), 0, &ratio_type},
    {"flag", false, offsetof(any_t, flag), 0, &flag_type},
    {"choice", false, offsetof(any_t, choice), 0, &choice_type},
    {"date", false, offsetof(any_t, date), 0, &date_type},
    {"names", false, offsetof(any_t, names), offsetof(any_t, names_count), &names_type},
    {"items", false, offsetof(any_t, items), offsetof(any_t, items_count), &items_type},
    {"other", false, offsetof(any_t, checked), 0, &check_type},
    {NULL, false, 0, 0, NULL},
};
static const shub_yaml_type_t any_type = {.kind = SHUB_YAML_STRUCT, .fields = any_fields};

/* Parses, binds to the orgs schema or to any_type, and checks the tree and
 * what was reported. */
static void run(const uint8_t *data, size_t size, int lines, bool orgs)
{
    shub_yaml_doc_t *doc = NULL;
    shub_err_t err;
    int rc = shub_yaml_parse("fuzz.yaml", (const char *)data, size, &doc, &err);
    if (rc != 0 && rc != SHUB_ECONFIG) {
        if (doc || rc != SHUB_ENOMEM)
            bug("a parse that failed without a document must be out of memory");
        return;
    }
    if (!doc)
        bug("no document");
    const shub_yaml_node_t *root = shub_yaml_root(doc);
    if (rc == SHUB_ECONFIG && !shub_yaml_error_count(doc))
        bug("a refused parse without an error");
    if (root) {
        walk(doc, root, lines, 1);
        if (shub_yaml_at(doc, "orgs[0].areas[1]") == NULL ||
            shub_yaml_at(doc, "") != root)
            bug("a path search that found nothing in a tree");
    }
    if (rc == 0) {
        any_t any = {0};
        shub_orgs_t o = {0};
        rc = orgs ? shub_orgs_bind(doc, &o) : shub_yaml_bind(doc, &any_type, &any);
        if (rc != 0 && rc != SHUB_ECONFIG)
            bug("binding failed other than with errors");
        if ((rc == 0) != (shub_yaml_error_count(doc) == 0))
            bug("binding's result disagrees with its errors");
    }
    seen_t s = {0, 0, 0};
    size_t n = shub_yaml_report(doc, check_error, &s);
    if (n != s.n && !(n > SHUB_YAML_MAX_ERRORS && s.n == SHUB_YAML_MAX_ERRORS + 1))
        bug("report counted other than it reported");
    shub_yaml_destroy(&doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* At most this many lines: YAML also breaks lines at \r, NEL (0x85)
     * and the Unicode separators (E2 80 A8, E2 80 A9). */
    int lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n' || data[i] == '\r' || data[i] == 0x85 ||
                 data[i] == 0xA8 || data[i] == 0xA9;
    run(data, size, lines, true);
    run(data, size, lines, false);
    return 0;
}
