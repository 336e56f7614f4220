/*
 * yaml: see include/sharehub/yaml.h.
 *
 * The tree is built from libyaml's event stream with an explicit stack (no
 * recursion, so depth is a counted limit, not a crash), and the path of the
 * node being built ("orgs[2].kind") is kept alongside so that messages name
 * where they are. libyaml's marks are 0-based and count characters; ours
 * are 1-based. libyaml's reader errors (a control character, bytes that are
 * not UTF-8) carry only a byte offset, which is turned into a line and
 * column here.
 *
 * Binding walks the tree against the schema tables recursively; the depth
 * is bounded by the schema's, not by the input's.
 */
#include "sharehub/yaml.h"

#include "sharehub/alloc.h"
#include "sharehub/file.h"
#include "sharehub/time.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct yerr {
    int line, column;
    size_t seq; /* order added: ties keep it */
    char msg[SHUB_ERR_MSG_MAX];
} yerr_t;

struct shub_yaml_doc {
    char *name;
    char *bytes;
    size_t len;
    shub_arena_t *arena;
    shub_yaml_node_t *root;
    yerr_t *errors; /* the first SHUB_YAML_MAX_ERRORS */
    size_t n_errors, n_kept;
    size_t n_nodes;
    bool oom;
};

/* ---- errors ------------------------------------------------------------- */

static void add_error(shub_yaml_doc_t *doc, int line, int column, const char *msg)
{
    size_t i = doc->n_errors++;
    if (i >= SHUB_YAML_MAX_ERRORS)
        return;
    if (!doc->errors) {
        doc->errors = shub_calloc(SHUB_YAML_MAX_ERRORS, sizeof *doc->errors);
        if (!doc->errors) {
            doc->oom = true;
            return;
        }
    }
    yerr_t *e = &doc->errors[doc->n_kept++];
    e->line = line;
    e->column = column;
    e->seq = i;
    snprintf(e->msg, sizeof e->msg, "%s", msg);
}

__attribute__((format(printf, 4, 0))) static void
verror(shub_yaml_doc_t *doc, int line, int column, const char *fmt, va_list ap)
{
    char msg[SHUB_ERR_MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    add_error(doc, line, column, msg);
}

void shub_yaml_error(shub_yaml_doc_t *doc, const shub_yaml_node_t *node, const char *fmt,
                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(doc, node ? node->line : 1, node ? node->column : 1, fmt, ap);
    va_end(ap);
}

void shub_yaml_error_path(shub_yaml_doc_t *doc, const char *path, const char *fmt, ...)
{
    const shub_yaml_node_t *node = shub_yaml_at(doc, path);
    va_list ap;
    va_start(ap, fmt);
    verror(doc, node ? node->line : 1, node ? node->column : 1, fmt, ap);
    va_end(ap);
}

static void error_at(shub_yaml_doc_t *doc, int line, int column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void error_at(shub_yaml_doc_t *doc, int line, int column, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(doc, line, column, fmt, ap);
    va_end(ap);
}

size_t shub_yaml_error_count(const shub_yaml_doc_t *doc)
{
    return doc ? doc->n_errors : 0;
}

bool shub_yaml_oom(const shub_yaml_doc_t *doc)
{
    return doc && doc->oom;
}

static int cmp_error(const void *a, const void *b)
{
    const yerr_t *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->column != y->column)
        return x->column < y->column ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

size_t shub_yaml_report(shub_yaml_doc_t *doc, shub_yaml_report_fn *report, void *ctx)
{
    if (!doc)
        return 0;
    size_t n = doc->n_errors;
    if (doc->n_kept > 1)
        qsort(doc->errors, doc->n_kept, sizeof *doc->errors, cmp_error);
    for (size_t i = 0; report && i < doc->n_kept; i++) {
        shub_err_t err;
        const yerr_t *e = &doc->errors[i];
        shub_err_set_at(&err, SHUB_ECONFIG, doc->name, e->line, e->column, "%s", e->msg);
        report(&err, ctx);
    }
    if (report && n > doc->n_kept && doc->n_kept) { /* none kept: out of memory */
        shub_err_t err;
        const yerr_t *last = &doc->errors[doc->n_kept - 1];
        shub_err_set_at(&err, SHUB_ECONFIG, doc->name, last->line, last->column,
                        "%zu more errors not shown: fix these first", n - doc->n_kept);
        report(&err, ctx);
    }
    doc->n_errors = doc->n_kept = 0;
    return n;
}

static void keep_first(const shub_err_t *e, void *ctx)
{
    shub_err_t *err = ctx;
    if (err && err->code == 0)
        *err = *e;
}

size_t shub_yaml_report_first(shub_yaml_doc_t *doc, shub_err_t *err)
{
    shub_err_clear(err);
    return shub_yaml_report(doc, keep_first, err);
}

/* ---- paths -------------------------------------------------------------- */

typedef struct path {
    char text[SHUB_YAML_MAX_PATH];
    size_t len;
} path_t;

/* Appends ".key" (or "key" at the root); returns the old length to restore
 * with path_cut. A path too long to hold is cut: it only names a place in
 * messages. */
static size_t path_key(path_t *p, const char *key)
{
    size_t mark = p->len;
    int n = snprintf(p->text + p->len, sizeof p->text - p->len, "%s%.64s",
                     p->len ? "." : "", key);
    p->len = n < 0 || (size_t)n >= sizeof p->text - p->len ? sizeof p->text - 1
                                                           : p->len + (size_t)n;
    return mark;
}

/* Appends "[i]". */

static size_t path_index(path_t *p, size_t i)
{
    size_t mark = p->len;
    int n = snprintf(p->text + p->len, sizeof p->text - p->len, "[%zu]", i);
    p->len = n < 0 || (size_t)n >= sizeof p->text - p->len ? sizeof p->text - 1
                                                           : p->len + (size_t)n;
    return mark;
}

static void path_cut(path_t *p, size_t mark)
{
    p->len = mark;
    p->text[mark] = '\0';
}

static const char *shown_path(const path_t *p)
{
    return p->len ? p->text : "document";
}

/* ---- reading nodes ------------------------------------------------------ */

const shub_yaml_node_t *shub_yaml_root(const shub_yaml_doc_t *doc)
{
    return doc ? doc->root : NULL;
}

const char *shub_yaml_name(const shub_yaml_doc_t *doc)
{
    return doc ? doc->name : NULL;
}

const char *shub_yaml_bytes(const shub_yaml_doc_t *doc, size_t *len)
{
    if (len)
        *len = doc ? doc->len : 0;
    return doc ? doc->bytes : NULL;
}

shub_arena_t *shub_yaml_arena(shub_yaml_doc_t *doc)
{
    return doc ? doc->arena : NULL;
}

const shub_yaml_node_t *shub_yaml_get(const shub_yaml_node_t *map, const char *key)
{
    if (!map || map->kind != SHUB_YAML_MAP || !key)
        return NULL;
    for (size_t i = 0; i + 1 < map->n; i += 2)
        if (map->items[i]->kind == SHUB_YAML_SCALAR &&
            strcmp(map->items[i]->text, key) == 0)
            return map->items[i + 1];
    return NULL;
}

const shub_yaml_node_t *shub_yaml_at(const shub_yaml_doc_t *doc, const char *path)
{
    const shub_yaml_node_t *n = doc ? doc->root : NULL;
    const char *p = path ? path : "";
    while (n && *p) {
        const shub_yaml_node_t *next = NULL;
        if (*p == '[') {
            char *end;
            unsigned long i = strtoul(p + 1, &end, 10);
            if (*end != ']' || n->kind != SHUB_YAML_SEQ || i >= n->n)
                return n;
            next = n->items[i];
            p = end + 1;
        } else {
            if (*p == '.')
                p++;
            size_t len = strcspn(p, ".[");
            char key[SHUB_YAML_MAX_PATH];
            if (len >= sizeof key)
                return n;
            memcpy(key, p, len);
            key[len] = '\0';
            if (!(next = shub_yaml_get(n, key)))
                return n;
            p += len;
        }
        n = next;
    }
    return n;
}

const char *shub_yaml_show(const shub_yaml_node_t *node, char *buf, size_t size)
{
    if (!node)
        snprintf(buf, size, "nothing");
    else if (node->kind == SHUB_YAML_MAP)
        snprintf(buf, size, "a mapping");
    else if (node->kind == SHUB_YAML_SEQ)
        snprintf(buf, size, "a list");
    else if (node->len == 0 && node->plain)
        snprintf(buf, size, "nothing");
    else
        snprintf(buf, size, "'%.40s'", node->text);
    return buf;
}

/* ---- syntax errors ------------------------------------------------------ */

/* The byte at a 0-based line and character column of the text, or 0. */
static unsigned char byte_at(const shub_yaml_doc_t *doc, size_t line, size_t column)
{
    size_t i = 0;
    for (size_t l = 0; l < line && i < doc->len; i++)
        if (doc->bytes[i] == '\n')
            l++;
    for (size_t c = 0; c < column && i < doc->len; c++)
        while (++i < doc->len && ((unsigned char)doc->bytes[i] & 0xC0) == 0x80)
            ;
    return i < doc->len ? (unsigned char)doc->bytes[i] : 0;
}

/* 1-based line and column (in characters) of a byte offset. */
static void position_of(const shub_yaml_doc_t *doc, size_t offset, int *line, int *column)
{
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < offset && i < doc->len; i++) {
        if (doc->bytes[i] == '\n') {
            (*line)++;
            *column = 1;
        } else if (((unsigned char)doc->bytes[i] & 0xC0) != 0x80) {
            (*column)++;
        }
    }
}

/* libyaml's problem, in its own words and with what to do about it. */
static void syntax_error(shub_yaml_doc_t *doc, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "syntax error";
    const char *context = p->context ? p->context : "";
    const yaml_mark_t *pm = &p->problem_mark, *cm = &p->context_mark;
    int line = (int)pm->line + 1, column = (int)pm->column + 1;
    if (p->error == YAML_READER_ERROR) {
        position_of(doc, p->problem_offset, &line, &column);
        if (p->problem_value >= 0)
            error_at(doc, line, column,
                     "yaml: %s (byte 0x%02x): the file must be plain UTF-8 text", problem,
                     (unsigned)p->problem_value & 0xff);
        else
            error_at(doc, line, column, "yaml: %s: the file must be plain UTF-8 text",
                     problem);
        return;
    }
    unsigned char c = byte_at(doc, pm->line, pm->column);
    if (p->error == YAML_SCANNER_ERROR && c == '\t') {
        error_at(doc, line, column,
                 "yaml: a tab character here: indent with spaces only");
    } else if (strcmp(problem, "mapping values are not allowed in this context") == 0) {
        error_at(
            doc, line, column,
            "yaml: %s: a value that contains ': ' must be in quotes, or this line is "
            "indented too far",
            problem);
    } else if (strcmp(problem, "could not find expected ':'") == 0) {
        error_at(doc, (int)cm->line + 1, (int)cm->column + 1,
                 "yaml: %s: this line has a key without ': ' and a value", problem);
    } else if (strncmp(problem, "did not find expected ',' or ", 29) == 0) {
        error_at(doc, line, column,
                 "yaml: %s: the '%c' on line %d column %d is not closed", problem,
                 problem[29 + 1] == '}' ? '{' : '[', (int)cm->line + 1,
                 (int)cm->column + 1);
    } else if (strstr(context, "quoted scalar")) {
        error_at(doc, line, column,
                 "yaml: %s: the quote on line %d column %d is not closed", problem,
                 (int)cm->line + 1, (int)cm->column + 1);
    } else if (strcmp(problem, "did not find expected key") == 0) {
        error_at(doc, line, column,
                 "yaml: %s: check this line's indentation, and that quoted text is not "
                 "followed by more text",
                 problem);
    } else if (strcmp(problem, "did not find expected '-' indicator") == 0) {
        error_at(doc, line, column,
                 "yaml: %s: the entries of a list each start with '- ' at the same "
                 "indentation",
                 problem);
    } else if (strcmp(problem, "found character that cannot start any token") == 0 && c) {
        error_at(doc, line, column,
                 "yaml: %s: a value that starts with '%c' must be in quotes", problem, c);
    } else {
        error_at(doc, line, column, "yaml: %s%s%s", problem, *context ? " " : "",
                 context);
    }
}

/* ---- building the tree -------------------------------------------------- */

typedef struct frame {
    shub_yaml_node_t *node;
    size_t cap;    /* slots in node->items */
    size_t mark;   /* path length before this node's segment */
    bool want_key; /* MAP: the next node is a key */
    size_t index;  /* SEQ: the next entry's index */
} frame_t;

typedef struct builder {
    shub_yaml_doc_t *doc;
    frame_t stack[SHUB_YAML_MAX_DEPTH];
    size_t depth;
    path_t path;
    bool fatal;
} builder_t;

/* An error that ends the file: what follows cannot be read reliably. */
static void stop(builder_t *b, int line, int column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void stop(builder_t *b, int line, int column, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(b->doc, line, column, fmt, ap);
    va_end(ap);
    b->fatal = true;
}

static shub_yaml_node_t *node_new(builder_t *b, shub_yaml_kind_t kind,
                                  const yaml_mark_t *m)
{
    if (++b->doc->n_nodes > SHUB_YAML_MAX_NODES) {
        stop(b, (int)m->line + 1, (int)m->column + 1, "more than %d values in one file",
             SHUB_YAML_MAX_NODES);
        return NULL;
    }
    shub_yaml_node_t *n = shub_arena_alloc(b->doc->arena, sizeof *n);
    if (!n) {
        b->doc->oom = b->fatal = true;
        return NULL;
    }
    n->kind = kind;
    n->line = (int)m->line + 1;
    n->column = (int)m->column + 1;
    n->text = "";
    return n;
}

/* Appends kid to a MAP or SEQ, doubling its array in the arena (the old one
 * is left behind; the arena frees all at once). */
static bool node_add(builder_t *b, shub_yaml_node_t *parent, shub_yaml_node_t *kid,
                     size_t *cap)
{
    if (parent->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        shub_yaml_node_t **items = shub_arena_alloc(b->doc->arena, ncap * sizeof *items);
        if (!items) {
            b->doc->oom = b->fatal = true;
            return false;
        }
        if (parent->n)
            memcpy(items, parent->items, parent->n * sizeof *items);
        parent->items = items;
        *cap = ncap;
    }
    parent->items[parent->n++] = kid;
    return true;
}

/* A new key of the MAP on top: must not repeat one before it. */
static void check_key(builder_t *b, const shub_yaml_node_t *map,
                      const shub_yaml_node_t *key)
{
    if (map->n / 2 >= SHUB_YAML_MAX_KEYS) {
        stop(b, key->line, key->column, "more than %d keys in one mapping",
             SHUB_YAML_MAX_KEYS);
        return;
    }
    if (key->kind != SHUB_YAML_SCALAR)
        return; /* the binder says keys must be text */
    for (size_t i = 0; i < map->n; i += 2) {
        const shub_yaml_node_t *k = map->items[i];
        if (k->kind == SHUB_YAML_SCALAR && strcmp(k->text, key->text) == 0) {
            size_t mark = path_key(&b->path, key->text);
            error_at(b->doc, key->line, key->column,
                     "duplicate key '%s' (first on line %d)", b->path.text, k->line);
            path_cut(&b->path, mark);
            return;
        }
    }
}

/* Places a new node under the top of the stack; returns the path mark to
 * restore once the node is complete. */
static size_t place(builder_t *b, shub_yaml_node_t *n)
{
    if (b->depth == 0) {
        b->doc->root = n;
        return 0;
    }
    frame_t *top = &b->stack[b->depth - 1];
    size_t mark = b->path.len;
    if (top->node->kind == SHUB_YAML_SEQ) {
        mark = path_index(&b->path, top->index++);
    } else if (top->want_key) {
        check_key(b, top->node, n);
    } else {
        const shub_yaml_node_t *key = top->node->items[top->node->n - 1];
        mark = path_key(&b->path, key->kind == SHUB_YAML_SCALAR ? key->text : "?");
    }
    if (top->node->kind == SHUB_YAML_MAP)
        top->want_key = !top->want_key;
    node_add(b, top->node, n, &top->cap);
    return mark;
}

static void build(builder_t *b, yaml_parser_t *parser)
{
    int docs = 0;
    while (!b->fatal) {
        yaml_event_t ev;
        if (!yaml_parser_parse(parser, &ev)) {
            if (parser->error == YAML_MEMORY_ERROR)
                b->doc->oom = true;
            else
                syntax_error(b->doc, parser);
            b->fatal = true;
            return;
        }
        const yaml_mark_t *m = &ev.start_mark;
        int line = (int)m->line + 1, column = (int)m->column + 1;
        shub_yaml_node_t *n = NULL;
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                stop(b, line, column, "only one yaml document is allowed per file");
            break;
        case YAML_ALIAS_EVENT: /* placed only so that the message names its path */
            if ((n = node_new(b, SHUB_YAML_SCALAR, m))) {
                size_t mark = place(b, n);
                stop(b, line, column,
                     "'%s': aliases are not allowed: write the value out",
                     shown_path(&b->path));
                path_cut(&b->path, mark);
            }
            break;
        case YAML_SCALAR_EVENT:
            if (!(n = node_new(b, SHUB_YAML_SCALAR, m)))
                break;
            n->len = ev.data.scalar.length;
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            if (!(n->text = shub_arena_strndup(
                      b->doc->arena, (const char *)ev.data.scalar.value, n->len))) {
                b->doc->oom = b->fatal = true;
                break;
            }
            path_cut(&b->path, place(b, n));
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            n = node_new(
                b, ev.type == YAML_MAPPING_START_EVENT ? SHUB_YAML_MAP : SHUB_YAML_SEQ,
                m);
            if (!n)
                break;
            if (b->depth == SHUB_YAML_MAX_DEPTH) {
                stop(b, line, column, "nesting deeper than %d levels",
                     SHUB_YAML_MAX_DEPTH);
                break;
            }
            {
                size_t mark = place(b, n);
                b->stack[b->depth++] =
                    (frame_t){.node = n, .mark = mark, .want_key = true};
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (b->depth)
                path_cut(&b->path, b->stack[--b->depth].mark);
            break;
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&ev);
            return;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
}

/* Text values are C strings: one holding a NUL byte would be cut short
 * without anyone noticing. Checked once the tree is whole, with its path. */
static void check_nul(shub_yaml_doc_t *doc, const shub_yaml_node_t *n, path_t *p)
{
    if (n->kind == SHUB_YAML_SCALAR) {
        if (strlen(n->text) != n->len)
            shub_yaml_error(doc, n, "'%s' contains a NUL byte", shown_path(p));
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        size_t mark;
        if (n->kind == SHUB_YAML_SEQ) {
            mark = path_index(p, i);
        } else if (i % 2 == 0) {
            check_nul(doc, n->items[i], p); /* the key itself */
            continue;
        } else {
            const shub_yaml_node_t *k = n->items[i - 1];
            mark = path_key(p, k->kind == SHUB_YAML_SCALAR ? k->text : "?");
        }
        check_nul(doc, n->items[i], p);
        path_cut(p, mark);
    }
}

int shub_yaml_parse(const char *name, const char *text, size_t len,
                    shub_yaml_doc_t **doc_p, shub_err_t *err)
{
    if (!name || (!text && len) || !doc_p)
        return shub_err_set(err, SHUB_EINVAL, "no yaml text to parse");
    shub_yaml_doc_t *doc = shub_calloc(1, sizeof *doc);
    if (!doc || !(doc->name = shub_strdup(name)) ||
        !(doc->arena = shub_arena_new(16384)) || !(doc->bytes = shub_malloc(len + 1))) {
        shub_yaml_destroy(&doc);
        return shub_err_set_at(err, SHUB_ENOMEM, name, 0, 0,
                               "out of memory loading the file");
    }
    if (len)
        memcpy(doc->bytes, text, len);
    doc->bytes[len] = '\0';
    doc->len = len;

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        shub_yaml_destroy(&doc);
        return shub_err_set_at(err, SHUB_ENOMEM, name, 0, 0,
                               "out of memory loading the file");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)doc->bytes, doc->len);
    builder_t b = {.doc = doc};
    build(&b, &parser);
    yaml_parser_delete(&parser);
    if (!b.fatal && doc->root) {
        path_t p = {.len = 0};
        check_nul(doc, doc->root, &p);
    }
    if (b.fatal)
        doc->root = NULL; /* a tree cut short would only mislead the binder */
    if (doc->oom) {
        shub_yaml_destroy(&doc);
        return shub_err_set_at(err, SHUB_ENOMEM, name, 0, 0,
                               "out of memory loading the file");
    }
    *doc_p = doc;
    return doc->n_errors ? SHUB_ECONFIG : 0;
}

int shub_yaml_load(const char *path, shub_yaml_doc_t **doc_p, shub_err_t *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = shub_file_read(path, SHUB_YAML_MAX_BYTES, &text, &len, err);
    if (rc)
        return rc;
    rc = shub_yaml_parse(path, text, len, doc_p, err);
    shub_free(text);
    return rc;
}

void shub_yaml_destroy(shub_yaml_doc_t **doc_p)
{
    if (!doc_p || !*doc_p)
        return;
    shub_yaml_doc_t *doc = *doc_p;
    shub_free(doc->name);
    shub_free(doc->bytes);
    shub_free(doc->errors);
    shub_arena_destroy(&doc->arena);
    shub_free(doc);
    *doc_p = NULL;
}

/* ---- binding ------------------------------------------------------------ */

typedef struct binder {
    shub_yaml_doc_t *doc;
    path_t path;
    int rc; /* SHUB_ENOMEM once an allocation failed */
} binder_t;

static void bind_value(binder_t *b, const shub_yaml_type_t *t, const shub_yaml_node_t *n,
                       void *dst);

static const char *kind_text(const shub_yaml_type_t *t)
{
    switch (t->kind) {
    case SHUB_YAML_STRUCT:
        return "a mapping";
    case SHUB_YAML_LIST:
        return "a list";
    case SHUB_YAML_UINT:
        return "a whole number";
    case SHUB_YAML_NUMBER:
    case SHUB_YAML_CHECK:
        return t->what ? t->what : "a number";
    case SHUB_YAML_BOOL:
        return "true or false";
    case SHUB_YAML_DATE:
        return "a date (YYYY-MM-DD)";
    default:
        return "text";
    }
}

static void wrong_kind(binder_t *b, const shub_yaml_type_t *t, const shub_yaml_node_t *n)
{
    char shown[64];
    shub_yaml_error(b->doc, n, "'%s' must be %s, not %s", shown_path(&b->path),
                    kind_text(t), shub_yaml_show(n, shown, sizeof shown));
}

static void bind_field(binder_t *b, const shub_yaml_field_t *f, const shub_yaml_node_t *n,
                       char *base);

static void bind_struct(binder_t *b, const shub_yaml_type_t *t, const shub_yaml_node_t *n,
                        char *base)
{
    uint64_t seen = 0; /* schemas have fewer than 64 keys */
    for (size_t i = 0; n && i + 1 < n->n; i += 2) {
        const shub_yaml_node_t *k = n->items[i];
        if (k->kind != SHUB_YAML_SCALAR) {
            shub_yaml_error(b->doc, k, "keys in '%s' must be text", shown_path(&b->path));
            continue;
        }
        size_t f = 0;
        while (t->fields[f].key && strcmp(t->fields[f].key, k->text) != 0)
            f++;
        if (!t->fields[f].key) {
            if (t->flags & SHUB_YAML_OPEN)
                continue;
            if (b->path.len)
                shub_yaml_error(b->doc, k, "unknown key '%.64s' in '%s'", k->text,
                                b->path.text);
            else
                shub_yaml_error(b->doc, k, "unknown key '%.64s'", k->text);
            continue;
        }
        seen |= UINT64_C(1) << (f & 63);
        size_t mark = path_key(&b->path, t->fields[f].key);
        bind_field(b, &t->fields[f], n->items[i + 1], base);
        path_cut(&b->path, mark);
    }
    for (size_t f = 0; t->fields[f].key; f++) {
        if (!t->fields[f].required || (seen >> (f & 63) & 1))
            continue;
        if (b->path.len)
            shub_yaml_error(b->doc, n, "'%s' is missing required key '%s'", b->path.text,
                            t->fields[f].key);
        else
            shub_yaml_error(b->doc, n, "missing required key '%s'", t->fields[f].key);
    }
}

/* Bytes one value of type t takes in an array. */
static size_t value_size(const shub_yaml_type_t *t)
{
    switch (t->kind) {
    case SHUB_YAML_TEXT:
        return sizeof(const char *);
    case SHUB_YAML_UINT:
        return sizeof(uint32_t);
    case SHUB_YAML_NUMBER:
        return sizeof(double);
    case SHUB_YAML_BOOL:
        return sizeof(bool);
    case SHUB_YAML_ENUM:
        return sizeof(int);
    case SHUB_YAML_DATE:
        return sizeof(int64_t);
    default:
        return t->size ? t->size : 1;
    }
}

/* A list: its entries into a new array in the arena, whose address goes to
 * base + offset and whose length to base + count_offset. */
static void bind_list(binder_t *b, const shub_yaml_field_t *f, const shub_yaml_node_t *n,
                      char *base)
{
    const shub_yaml_type_t *t = f->type;
    const shub_yaml_node_t *const *items = (const shub_yaml_node_t *const *)n->items;
    size_t count = n->n;
    if (n->kind != SHUB_YAML_SEQ) {
        if (n->kind == SHUB_YAML_MAP || !(t->flags & SHUB_YAML_ONE_OR_MORE)) {
            wrong_kind(b, t, n);
            return;
        }
        items = &n; /* one value stands for a list of one */
        count = 1;
    }
    if ((double)count < t->min) {
        shub_yaml_error(b->doc, n, "'%s' needs at least %.0f entr%s, has %zu",
                        shown_path(&b->path), t->min, t->min == 1 ? "y" : "ies", count);
        return;
    }
    if ((double)count > t->max) {
        shub_yaml_error(b->doc, n, "'%s' has %zu entries, limit %.0f",
                        shown_path(&b->path), count, t->max);
        return;
    }
    size_t size = value_size(t->entry);
    char *array = shub_arena_alloc(b->doc->arena, (count ? count : 1) * size);
    if (!array) {
        b->rc = SHUB_ENOMEM;
        return;
    }
    for (size_t i = 0; i < count; i++) {
        size_t mark = path_index(&b->path, i);
        bind_value(b, t->entry, items[i], array + i * size);
        path_cut(&b->path, mark);
    }
    memcpy(base + f->offset, &array, sizeof array);
    memcpy(base + f->count_offset, &count, sizeof count);
}

static void bind_field(binder_t *b, const shub_yaml_field_t *f, const shub_yaml_node_t *n,
                       char *base)
{
    if (f->type->kind == SHUB_YAML_LIST)
        bind_list(b, f, n, base);
    else
        bind_value(b, f->type, n, base + f->offset);
}

/* A whole number in decimal, no sign, no leading zeros (YAML 1.1 reads
 * "010" as octal 8, which no one writing a limit means). */
static void bind_uint(binder_t *b, const shub_yaml_type_t *t, const shub_yaml_node_t *n,
                      uint32_t *dst)
{
    const char *v = n->text;
    bool digits = n->len > 0 && n->len <= 20 && strspn(v, "0123456789") == n->len;
    if (digits && v[0] == '0' && v[1] != '\0') {
        shub_yaml_error(b->doc, n,
                        "'%s' must be written without leading zeros, not '%.40s'",
                        shown_path(&b->path), v);
        return;
    }
    if (!digits) {
        shub_yaml_error(b->doc, n, "'%s' must be a whole number, not '%.40s'",
                        shown_path(&b->path), v);
        return;
    }
    double max = t->max > 0 ? t->max : UINT32_MAX;
    unsigned long long u = strtoull(v, NULL, 10);
    if ((double)u < t->min && t->max <= 0) { /* only a floor: say just that */
        shub_yaml_error(b->doc, n, "'%s' must be at least %.0f, not %s",
                        shown_path(&b->path), t->min, v);
        return;
    }
    if ((double)u < t->min || (double)u > max) {
        shub_yaml_error(b->doc, n, "'%s' of %s is outside %.0f..%.0f",
                        shown_path(&b->path), v, t->min, max);
        return;
    }
    *dst = (uint32_t)u;
}

static void bind_number(binder_t *b, const shub_yaml_type_t *t, const shub_yaml_node_t *n,
                        double *dst)
{
    const char *v = n->text;
    char *end = NULL;
    double x = 0;
    bool ok = n->len > 0 && strspn(v, "0123456789+-.eE") == n->len;
    if (ok) {
        errno = 0;
        x = strtod(v, &end);
        ok = *end == '\0' && errno == 0 && isfinite(x);
    }
    ok = ok && (t->flags & SHUB_YAML_ABOVE_MIN ? x > t->min : x >= t->min) && x <= t->max;
    if (!ok) {
        shub_yaml_error(b->doc, n, "'%s' must be %s, not '%.40s'", shown_path(&b->path),
                        kind_text(t), v);
        return;
    }
    *dst = x;
}

static void bind_enum(binder_t *b, const shub_yaml_type_t *t, const shub_yaml_node_t *n,
                      int *dst)
{
    char list[160] = "";
    size_t used = 0;
    for (const shub_yaml_name_t *e = t->names; e->name; e++) {
        if (strcmp(n->text, e->name) == 0) {
            *dst = e->value;
            return;
        }
        int w =
            snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", e->name);
        if (w > 0 && (size_t)w < sizeof list - used)
            used += (size_t)w;
    }
    shub_yaml_error(b->doc, n, "'%s' must be one of %s, not '%.40s'",
                    shown_path(&b->path), list, n->text);
}

static void bind_value(binder_t *b, const shub_yaml_type_t *t, const shub_yaml_node_t *n,
                       void *dst)
{
    if (t->kind == SHUB_YAML_CHECK) {
        int rc = t->check(b->doc, n, shown_path(&b->path), dst);
        if (rc)
            b->rc = rc;
        return;
    }
    if (t->kind == SHUB_YAML_STRUCT) {
        if (n->kind != SHUB_YAML_MAP)
            wrong_kind(b, t, n);
        else
            bind_struct(b, t, n, dst);
        return;
    }
    if (n->kind != SHUB_YAML_SCALAR) {
        wrong_kind(b, t, n);
        return;
    }
    switch (t->kind) {
    case SHUB_YAML_TEXT:
        if (n->len == 0 && t->min >= 1)
            shub_yaml_error(b->doc, n, "'%s' must not be empty", shown_path(&b->path));
        else if ((double)n->len > t->max)
            shub_yaml_error(b->doc, n, "'%s' of %zu bytes exceeds limit %.0f",
                            shown_path(&b->path), n->len, t->max);
        else
            *(const char **)dst = n->text;
        return;
    case SHUB_YAML_UINT:
        bind_uint(b, t, n, dst);
        return;
    case SHUB_YAML_NUMBER:
        bind_number(b, t, n, dst);
        return;
    case SHUB_YAML_BOOL:
        if (strcmp(n->text, "true") == 0 || strcmp(n->text, "false") == 0)
            *(bool *)dst = n->text[0] == 't';
        else
            shub_yaml_error(b->doc, n, "'%s' must be true or false, not '%.40s'",
                            shown_path(&b->path), n->text);
        return;
    case SHUB_YAML_ENUM:
        bind_enum(b, t, n, dst);
        return;
    case SHUB_YAML_DATE: {
        shub_err_t err;
        if (shub_time_parse_date(n->text, dst, &err) != 0)
            shub_yaml_error(b->doc, n, "'%s': %s", shown_path(&b->path), err.msg);
        return;
    }
    default:
        wrong_kind(b, t, n);
        return;
    }
}

int shub_yaml_bind_node(shub_yaml_doc_t *doc, const shub_yaml_type_t *type,
                        const shub_yaml_node_t *node, const char *path, void *dst)
{
    if (!doc || !type || type->kind == SHUB_YAML_LIST || !node || !dst)
        return SHUB_EINVAL;
    binder_t b = {.doc = doc};
    snprintf(b.path.text, sizeof b.path.text, "%s", path ? path : "");
    b.path.len = strlen(b.path.text);
    size_t before = doc->n_errors;
    bind_value(&b, type, node, dst);
    if (b.rc || doc->oom) {
        doc->oom = true;
        return SHUB_ENOMEM;
    }
    return doc->n_errors > before ? SHUB_ECONFIG : 0;
}

int shub_yaml_bind(shub_yaml_doc_t *doc, const shub_yaml_type_t *type, void *dst)
{
    if (!doc || !type || type->kind != SHUB_YAML_STRUCT || !dst)
        return SHUB_EINVAL;
    binder_t b = {.doc = doc};
    size_t before = doc->n_errors;
    if (doc->root && doc->root->kind != SHUB_YAML_MAP)
        wrong_kind(&b, type, doc->root);
    else
        bind_struct(&b, type, doc->root, dst); /* an empty file: no keys at all */
    if (b.rc || doc->oom) {
        doc->oom = true;
        return SHUB_ENOMEM;
    }
    return doc->n_errors > before ? SHUB_ECONFIG : 0;
}
