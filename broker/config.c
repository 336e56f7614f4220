/*
 * config: loading the configuration directory, and hub.yaml.
 *
 * This file holds the loader's skeleton (read each file, report errors, build
 * one immutable shub_config_t or nothing), the YAML pass that gives every
 * error a line (see config_internal.h), and the broker settings. The
 * organisation registry lives in registry.c, agreements in agreement.c,
 * conditions in condition.c.
 *
 * libcyaml stops at the first error in a document and its backtrace lines
 * point at the event before the offending one, so they are not what a person
 * editing the file needs. Our own walk over libyaml's events, driven by the
 * same schema tables, reports every structural error at the key or value at
 * fault; libcyaml then only ever sees documents that already conform, and its
 * log output is kept solely as a fallback.
 */
#include "config_internal.h"

#include "sharehub/alloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define WALK_MAX_DEPTH 32 /* our schemas nest 6 deep; more is a mistake or an attack */
#define WALK_MAX_PATH  512

/* ---- errors and arena helpers ------------------------------------------ */

void ld_error(loader_t *ld, const char *file, int line, int column, const char *fmt, ...)
{
    shub_err_t err;
    va_list ap;
    shub_err_clear(&err);
    err.code = SHUB_ECONFIG;
    snprintf(err.file, sizeof err.file, "%s", file ? file : "");
    err.line = line;
    err.column = column;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    ld->n_errors++;
    if (ld->report)
        ld->report(&err, ld->report_ctx);
}

void *ld_alloc(loader_t *ld, size_t size)
{
    void *p = shub_arena_alloc(ld->cfg->arena, size);
    if (!p)
        ld->oom = true;
    return p;
}

char *ld_strdup(loader_t *ld, const char *s)
{
    if (!s)
        return NULL;
    char *p = shub_arena_strndup(ld->cfg->arena, s, strlen(s));
    if (!p)
        ld->oom = true;
    return p;
}

const char *const *ld_strv(loader_t *ld, char *const *v, size_t n)
{
    const char **out = ld_alloc(ld, (n ? n : 1) * sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(out[i] = ld_strdup(ld, v[i])))
            return NULL;
    return out;
}

bool ld_kind_known(const loader_t *ld, const char *kind)
{
    for (size_t i = 0; i < ld->n_kinds; i++)
        if (strcmp(ld->kinds[i], kind) == 0)
            return true;
    return false;
}

/* ---- libcyaml glue ------------------------------------------------------ */

/* libcyaml allocates through this, so the test hook that fails the Nth
 * allocation reaches inside the parser too. */
static void *cy_mem(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (size == 0) {
        shub_free(ptr);
        return NULL;
    }
    return shub_realloc(ptr, size);
}

/* libcyaml's first error message and the first line its backtrace names. */
typedef struct cy_capture {
    char msg[SHUB_ERR_MSG_MAX];
    int line, column;
} cy_capture_t;

/* libcyaml hands its own format string to this callback. */
__attribute__((format(printf, 3, 0))) static void cy_log(cyaml_log_t level, void *ctx,
                                               const char *fmt, va_list args)
{
    cy_capture_t *cap = ctx;
    char line[SHUB_ERR_MSG_MAX];
    if (level < CYAML_LOG_ERROR)
        return;
    vsnprintf(line, sizeof line, fmt, args);
    line[strcspn(line, "\n")] = '\0';
    const char *at = strstr(line, "(line: ");
    if (at && cap->line == 0) {
        unsigned long l = 0, c = 0;
        if (sscanf(at, "(line: %lu, column: %lu)", &l, &c) >= 1 && l < 1000000 &&
            c < 1000000) {
            cap->line = (int)l + 1; /* libyaml marks are 0-based */
            cap->column = (int)c + 1;
        }
    } else if (!cap->msg[0] && strncmp(line, "Load: ", 6) == 0 &&
               strcmp(line, "Load: Backtrace:") != 0) {
        snprintf(cap->msg, sizeof cap->msg, "%s", line + 6);
        cap->msg[0] = (char)(cap->msg[0] >= 'A' && cap->msg[0] <= 'Z' ? cap->msg[0] + 32
                                                                      : cap->msg[0]);
    }
}

static const cyaml_config_t cy_free_config = {
    .log_fn = NULL,
    .mem_fn = cy_mem,
    .log_level = CYAML_LOG_ERROR,
    .flags = CYAML_CFG_NO_ALIAS,
};

void ydoc_free_data(const cyaml_schema_value_t *schema, void *data)
{
    if (data)
        cyaml_free(&cy_free_config, schema, data, 0);
}

/* ---- the YAML pass ------------------------------------------------------ */

typedef struct walker {
    loader_t *ld;
    ydoc_t *doc;
    yaml_parser_t parser;
    int fatal; /* 0, or the code that stops this file (ENOMEM, ECONFIG) */
    int errors;
    char path[WALK_MAX_PATH];
} walker_t;

static void w_error(walker_t *w, const yaml_mark_t *mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void w_error(walker_t *w, const yaml_mark_t *mark, const char *fmt, ...)
{
    char msg[SHUB_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    w->errors++;
    ld_error(w->ld, w->doc->file, (int)mark->line + 1, (int)mark->column + 1, "%s", msg);
}

static bool w_next(walker_t *w, yaml_event_t *ev)
{
    if (w->fatal)
        return false;
    if (yaml_parser_parse(&w->parser, ev))
        return true;
    if (w->parser.error == YAML_MEMORY_ERROR) {
        w->ld->oom = true;
        w->fatal = SHUB_ENOMEM;
        return false;
    }
    const yaml_mark_t *m = &w->parser.problem_mark;
    w_error(w, m, "yaml: %s%s%s", w->parser.problem ? w->parser.problem : "syntax error",
            w->parser.context ? " " : "", w->parser.context ? w->parser.context : "");
    w->fatal = SHUB_ECONFIG;
    return false;
}

static void w_record(walker_t *w, const yaml_mark_t *mark)
{
    ydoc_t *d = w->doc;
    if (d->n_nodes == d->cap_nodes) {
        size_t cap = d->cap_nodes ? d->cap_nodes * 2 : 64;
        ynode_t *n = shub_realloc(d->nodes, cap * sizeof *n);
        if (!n) {
            w->ld->oom = true;
            w->fatal = SHUB_ENOMEM;
            return;
        }
        d->nodes = n;
        d->cap_nodes = cap;
    }
    char *p = shub_arena_strndup(d->arena, w->path, strlen(w->path));
    if (!p) {
        w->ld->oom = true;
        w->fatal = SHUB_ENOMEM;
        return;
    }
    d->nodes[d->n_nodes++] = (ynode_t){p, (int)mark->line + 1, (int)mark->column + 1};
}

/* Appends a path segment; false (and a fatal error) if the path would not fit. */
static bool w_push(walker_t *w, size_t plen, const yaml_mark_t *mark, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

static bool w_push(walker_t *w, size_t plen, const yaml_mark_t *mark, const char *fmt,
                   ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->path + plen, sizeof w->path - plen, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof w->path - plen) {
        w->path[plen] = '\0';
        w_error(w, mark, "key path longer than %d bytes", WALK_MAX_PATH - 1);
        w->fatal = SHUB_ECONFIG;
        return false;
    }
    return true;
}

static const char *kind_text(const cyaml_schema_value_t *s)
{
    switch (s->type) {
    case CYAML_MAPPING:
        return "a mapping";
    case CYAML_SEQUENCE:
    case CYAML_SEQUENCE_FIXED:
    case CYAML_FLAGS:
        return "a list";
    case CYAML_INT:
    case CYAML_UINT:
        return "a whole number";
    case CYAML_BOOL:
        return "true or false";
    default:
        return "text";
    }
}

static const char *shown_path(const walker_t *w)
{
    return w->path[0] ? w->path : "document";
}

/* Checks a scalar against a scalar schema: the rules libcyaml would apply,
 * written out so that each failure gets its own message and position. */
static void check_scalar(walker_t *w, const cyaml_schema_value_t *s,
                         const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const yaml_mark_t *m = &ev->start_mark;
    switch (s->type) {
    case CYAML_MAPPING:
    case CYAML_SEQUENCE:
    case CYAML_SEQUENCE_FIXED:
    case CYAML_FLAGS:
        w_error(w, m, "'%s' must be %s", shown_path(w), kind_text(s));
        return;
    case CYAML_STRING:
        if (strlen(v) != len)
            w_error(w, m, "'%s' contains a NUL byte", shown_path(w));
        else if (len < s->string.min)
            w_error(w, m, "'%s' must not be empty", shown_path(w));
        else if (len > s->string.max)
            w_error(w, m, "'%s' of %zu bytes exceeds limit %u", shown_path(w), len,
                    s->string.max);
        return;
    case CYAML_INT:
    case CYAML_UINT: {
        const char *p = v;
        bool neg = *p == '-';
        if (neg || *p == '+')
            p++;
        bool digits = *p != '\0';
        for (const char *q = p; *q; q++)
            digits = digits && *q >= '0' && *q <= '9';
        /* No leading zeros: libcyaml reads "010" as octal 8, which no one
         * writing a limit or a version means. */
        if (digits && p[0] == '0' && p[1] != '\0') {
            w_error(w, m, "'%s' must be written without leading zeros, not '%.40s'",
                    shown_path(w), v);
            return;
        }
        if (!digits || (neg && s->type == CYAML_UINT) || len > 20) {
            w_error(w, m, "'%s' must be %s%s, not '%.40s'", shown_path(w),
                    s->type == CYAML_UINT ? "a non-negative " : "", "whole number", v);
            return;
        }
        errno = 0;
        unsigned long long u = strtoull(p, NULL, 10);
        unsigned long long lim =
            s->data_size >= 8 ? 0x7fffffffffffffffULL
                              : (1ULL << (s->data_size * 8 - (s->type == CYAML_INT))) - 1;
        if (s->type == CYAML_UINT && s->data_size < 8)
            lim = (1ULL << (s->data_size * 8)) - 1;
        if (errno || u > lim)
            w_error(w, m, "'%s' value %.40s is out of range (limit %llu)", shown_path(w),
                    v, lim);
        return;
    }
    case CYAML_BOOL:
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
            w_error(w, m, "'%s' must be true or false, not '%.40s'", shown_path(w), v);
        return;
    case CYAML_ENUM: {
        char list[160] = "";
        size_t used = 0;
        for (uint32_t i = 0; i < s->enumeration.count; i++) {
            if (strcmp(v, s->enumeration.strings[i].str) == 0)
                return;
            int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                             s->enumeration.strings[i].str);
            if (n > 0 && (size_t)n < sizeof list - used)
                used += (size_t)n;
        }
        w_error(w, m, "'%s' must be one of %s, not '%.40s'", shown_path(w), list, v);
        return;
    }
    default:
        return;
    }
}

static void walk_node(walker_t *w, const cyaml_schema_value_t *s, yaml_event_t *ev,
                      size_t plen, int depth);

static void missing_keys(walker_t *w, const cyaml_schema_field_t *fields, uint64_t seen,
                         const yaml_mark_t *mark)
{
    for (int i = 0; fields[i].key; i++) {
        if ((fields[i].value.flags & CYAML_FLAG_OPTIONAL) || (seen >> i & 1))
            continue;
        if (w->path[0])
            w_error(w, mark, "'%s' is missing required key '%s'", w->path, fields[i].key);
        else
            w_error(w, mark, "missing required key '%s'", fields[i].key);
    }
}

static void walk_mapping(walker_t *w, const cyaml_schema_value_t *s,
                         const yaml_mark_t *start, size_t plen, int depth)
{
    bool ok = s && s->type == CYAML_MAPPING;
    const cyaml_schema_field_t *fields = ok ? s->mapping.fields : NULL;
    uint64_t seen = 0;
    if (s && !ok)
        w_error(w, start, "'%s' must be %s, not a mapping", shown_path(w), kind_text(s));
    for (;;) {
        yaml_event_t k, v;
        if (!w_next(w, &k))
            return;
        if (k.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&k);
            break;
        }
        const cyaml_schema_field_t *f = NULL;
        if (k.type != YAML_SCALAR_EVENT) {
            if (ok)
                w_error(w, &k.start_mark, "keys in '%s' must be text", shown_path(w));
            walk_node(w, NULL, &k, plen, depth + 1);
        } else {
            const char *key = (const char *)k.data.scalar.value;
            yaml_mark_t km = k.start_mark;
            if (!w_push(w, plen, &km, plen ? ".%s" : "%s", key)) {
                yaml_event_delete(&k);
                return;
            }
            w_record(w, &km);
            int i = 0;
            for (; fields && fields[i].key; i++)
                if (strcmp(fields[i].key, key) == 0)
                    break;
            if (fields && !fields[i].key) {
                w->path[plen] = '\0';
                if (plen)
                    w_error(w, &km, "unknown key '%s' in '%s'", key, w->path);
                else
                    w_error(w, &km, "unknown key '%s'", key);
            } else if (fields && i < 64 && (seen >> i & 1)) {
                w_error(w, &km, "duplicate key '%s'", w->path);
            } else if (fields) {
                if (i < 64)
                    seen |= (uint64_t)1 << i;
                f = &fields[i];
            }
            size_t klen = strlen(key);
            yaml_event_delete(&k);
            if (!f)
                w->path[plen] = '\0';
            if (!w_next(w, &v))
                return;
            walk_node(w, f ? &f->value : NULL, &v,
                      f ? plen + (plen ? 1 : 0) + klen : plen, depth + 1);
            if (w->fatal)
                return;
            w->path[plen] = '\0';
            continue;
        }
        if (!w_next(w, &v))
            return;
        walk_node(w, NULL, &v, plen, depth + 1);
        if (w->fatal)
            return;
    }
    if (fields)
        missing_keys(w, fields, seen, start);
}

static void walk_sequence(walker_t *w, const cyaml_schema_value_t *s,
                          const yaml_mark_t *start, size_t plen, int depth)
{
    bool ok = s && (s->type == CYAML_SEQUENCE || s->type == CYAML_SEQUENCE_FIXED ||
                    s->type == CYAML_FLAGS);
    if (s && !ok)
        w_error(w, start, "'%s' must be %s, not a list", shown_path(w), kind_text(s));
    const cyaml_schema_value_t *entry =
        ok && s->type != CYAML_FLAGS ? s->sequence.entry : NULL;
    unsigned count = 0;
    for (;;) {
        yaml_event_t e;
        if (!w_next(w, &e))
            return;
        if (e.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&e);
            break;
        }
        if (!w_push(w, plen, &e.start_mark, "[%u]", count)) {
            yaml_event_delete(&e);
            return;
        }
        w_record(w, &e.start_mark);
        walk_node(w, entry, &e, strlen(w->path), depth + 1);
        if (w->fatal)
            return;
        w->path[plen] = '\0';
        count++;
    }
    if (!ok || s->type == CYAML_FLAGS)
        return;
    if (count < s->sequence.min)
        w_error(w, start, "'%s' needs at least %u entr%s, has %u", shown_path(w),
                s->sequence.min, s->sequence.min == 1 ? "y" : "ies", count);
    else if (s->sequence.max != CYAML_UNLIMITED && count > s->sequence.max)
        w_error(w, start, "'%s' has %u entries, limit %u", shown_path(w), count,
                s->sequence.max);
}

/* Consumes the node that starts with ev (and deletes ev). s NULL: skip it,
 * recording positions only. */
static void walk_node(walker_t *w, const cyaml_schema_value_t *s, yaml_event_t *ev,
                      size_t plen, int depth)
{
    yaml_mark_t start = ev->start_mark;
    w->path[plen] = '\0';
    if (depth > WALK_MAX_DEPTH) {
        yaml_event_delete(ev);
        w_error(w, &start, "nesting deeper than %d levels", WALK_MAX_DEPTH);
        w->fatal = SHUB_ECONFIG;
        return;
    }
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        yaml_event_delete(ev);
        w_error(w, &start, "'%s': aliases are not allowed", shown_path(w));
        return;
    case YAML_SCALAR_EVENT:
        if (s)
            check_scalar(w, s, ev);
        yaml_event_delete(ev);
        return;
    case YAML_SEQUENCE_START_EVENT:
        yaml_event_delete(ev);
        walk_sequence(w, s, &start, plen, depth);
        return;
    case YAML_MAPPING_START_EVENT:
        yaml_event_delete(ev);
        walk_mapping(w, s, &start, plen, depth);
        return;
    default:
        yaml_event_delete(ev);
        w_error(w, &start, "unexpected yaml structure");
        w->fatal = SHUB_ECONFIG;
        return;
    }
}

/* Walks the whole stream. Sets *empty when there is no document, or only an
 * empty one (a file of comments). */
static void walk_stream(walker_t *w, const cyaml_schema_value_t *schema, bool *empty)
{
    yaml_event_t ev;
    int docs = 0;
    *empty = true;
    while (w_next(w, &ev)) {
        yaml_event_type_t t = ev.type;
        yaml_mark_t m = ev.start_mark;
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT)
            break;
        if (t != YAML_DOCUMENT_START_EVENT)
            continue;
        if (++docs > 1) {
            w_error(w, &m, "only one yaml document is allowed per file");
            w->fatal = SHUB_ECONFIG;
            return;
        }
        w->path[0] = '\0';
        w_record(w, &m);
        yaml_event_t root;
        if (!w_next(w, &root))
            return;
        if (root.type == YAML_SCALAR_EVENT && root.data.scalar.length == 0 &&
            root.data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
            yaml_event_delete(&root);
        } else {
            *empty = false;
            walk_node(w, schema, &root, 0, 1);
        }
        if (w->fatal)
            return;
    }
    if (*empty && !w->fatal) {
        yaml_mark_t m = {0, 0, 0};
        missing_keys(w, schema->mapping.fields, 0, &m);
    }
}

/* ---- ydoc --------------------------------------------------------------- */

void ydoc_release(ydoc_t *doc)
{
    if (!doc)
        return;
    shub_free(doc->file);
    shub_free(doc->bytes);
    shub_free(doc->nodes);
    shub_arena_destroy(&doc->arena);
    memset(doc, 0, sizeof *doc);
}

int ydoc_line(const ydoc_t *doc, int *column, const char *fmt, ...)
{
    char path[WALK_MAX_PATH];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof path)
        path[0] = '\0';
    /* Exact path first, then each ancestor: a node we did not record (an
     * absent optional key) is reported at its parent. */
    for (;;) {
        for (size_t i = 0; i < doc->n_nodes; i++) {
            if (strcmp(doc->nodes[i].path, path) == 0) {
                if (column)
                    *column = doc->nodes[i].column;
                return doc->nodes[i].line;
            }
        }
        if (!path[0])
            break;
        char *cut = strrchr(path, '.');
        char *br = strrchr(path, '[');
        if (br && (!cut || br > cut))
            cut = br;
        if (cut)
            *cut = '\0';
        else
            path[0] = '\0';
    }
    if (column)
        *column = 0;
    return 1;
}

static int read_file(loader_t *ld, ydoc_t *doc, bool must_exist)
{
    int fd = open(doc->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && !must_exist)
            return SHUB_ENOTFOUND;
        ld_error(ld, doc->file, 0, 0, "cannot open: %s", strerror(errno));
        return SHUB_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        ld_error(ld, doc->file, 0, 0, "not a regular file");
        return SHUB_EIO;
    }
    if (st.st_size > SHUB_CONFIG_MAX_FILE_BYTES) {
        close(fd);
        ld_error(ld, doc->file, 0, 0, "file of %lld bytes exceeds limit %d",
                 (long long)st.st_size, SHUB_CONFIG_MAX_FILE_BYTES);
        return SHUB_EIO;
    }
    doc->bytes = shub_malloc((size_t)st.st_size + 1);
    if (!doc->bytes) {
        close(fd);
        ld->oom = true;
        return SHUB_ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, doc->bytes + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(fd);
            ld_error(ld, doc->file, 0, 0, "cannot read: %s",
                     r < 0 ? strerror(errno) : "file shrank");
            return SHUB_EIO;
        }
        got += (size_t)r;
    }
    close(fd);
    doc->len = got;
    doc->bytes[got] = 0;
    return 0;
}

int ydoc_load(loader_t *ld, const char *file, bool must_exist,
              const cyaml_schema_value_t *schema, ydoc_t *doc, void **data)
{
    memset(doc, 0, sizeof *doc);
    *data = NULL;
    doc->file = shub_strdup(file);
    doc->arena = shub_arena_new(4096);
    if (!doc->file || !doc->arena) {
        ld->oom = true;
        return SHUB_ENOMEM;
    }
    int rc = read_file(ld, doc, must_exist);
    if (rc)
        return rc;

    walker_t w = {.ld = ld, .doc = doc};
    if (!yaml_parser_initialize(&w.parser)) {
        ld->oom = true;
        return SHUB_ENOMEM;
    }
    yaml_parser_set_input_string(&w.parser, doc->bytes, doc->len);
    bool empty = true;
    walk_stream(&w, schema, &empty);
    yaml_parser_delete(&w.parser);
    if (w.fatal == SHUB_ENOMEM || ld->oom)
        return SHUB_ENOMEM;
    if (w.fatal || w.errors)
        return SHUB_ECONFIG;
    if (empty)
        return 0;

    cy_capture_t cap = {.msg = "", .line = 0, .column = 0};
    cyaml_config_t cc = {
        .log_fn = cy_log,
        .log_ctx = &cap,
        .mem_fn = cy_mem,
        .log_level = CYAML_LOG_ERROR,
        .flags = CYAML_CFG_NO_ALIAS,
    };
    cyaml_err_t cerr = cyaml_load_data(doc->bytes, doc->len, &cc, schema, data, NULL);
    if (cerr == CYAML_OK)
        return 0;
    *data = NULL;
    if (cerr == CYAML_ERR_OOM) {
        ld->oom = true;
        return SHUB_ENOMEM;
    }
    ld_error(ld, doc->file, cap.line ? cap.line : 1, cap.column, "%s",
             cap.msg[0] ? cap.msg : cyaml_strerror(cerr));
    return SHUB_ECONFIG;
}

/* ---- hub.yaml ----------------------------------------------------------- */

enum { SYNC_DEFAULT = 0, SYNC_FULL, SYNC_NORMAL };

typedef struct raw_limits {
    uint32_t *max_message_bytes, *window, *batch_max, *heartbeat_ms, *peer_timeout_ms,
        *redeliver_ms, *max_attempts, *future_skew_ms, *checkpoint_every;
} raw_limits_t;

typedef struct raw_hub {
    char *endpoint;
    char *database;
    char *key_dir;
    int synchronous;
    raw_limits_t *limits;
} raw_hub_t;

#define LIMIT(name) CYAML_FIELD_UINT_PTR(#name, CYAML_FLAG_OPTIONAL, raw_limits_t, name)
static const cyaml_schema_field_t limits_fields[] = {
    LIMIT(max_message_bytes), LIMIT(window),          LIMIT(batch_max),
    LIMIT(heartbeat_ms),      LIMIT(peer_timeout_ms), LIMIT(redeliver_ms),
    LIMIT(max_attempts),      LIMIT(future_skew_ms),  LIMIT(checkpoint_every),
    CYAML_FIELD_END,
};
#undef LIMIT

static const cyaml_strval_t sync_strings[] = {{"full", SYNC_FULL},
                                              {"normal", SYNC_NORMAL}};

static const cyaml_schema_field_t hub_fields[] = {
    CYAML_FIELD_STRING_PTR("endpoint", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER,
                           raw_hub_t, endpoint, 1, 255),
    CYAML_FIELD_STRING_PTR("database", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER,
                           raw_hub_t, database, 1, 1024),
    CYAML_FIELD_STRING_PTR("key_dir", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER, raw_hub_t,
                           key_dir, 1, 1024),
    CYAML_FIELD_ENUM("synchronous", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, raw_hub_t,
                     synchronous, sync_strings, CYAML_ARRAY_LEN(sync_strings)),
    CYAML_FIELD_MAPPING_PTR("limits", CYAML_FLAG_OPTIONAL, raw_hub_t, limits,
                            limits_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t hub_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_hub_t, hub_fields),
};

/* Each limit: its default and the range that makes sense. The ranges are
 * sanity bounds against typos (an extra zero), not tuning advice. */
static const struct {
    const char *name;
    size_t raw_off, out_off;
    uint32_t def, min, max;
} limit_table[] = {
#define L(n, d, lo, hi)                                                                  \
    {                                                                                    \
#n, offsetof(raw_limits_t, n), offsetof(shub_hub_settings_t, n), d, lo, hi       \
    }
    L(max_message_bytes, 1048576, 1024, SHUB_MSG_MAX_BYTES),
    L(window, 256, 1, 65536),
    L(batch_max, 512, 1, 65536),
    L(heartbeat_ms, 2000, 100, 3600000),
    L(peer_timeout_ms, 10000, 200, 86400000),
    L(redeliver_ms, 10000, 100, 86400000),
    L(max_attempts, 10, 1, 100000),
    L(future_skew_ms, 300000, 0, 86400000),
    L(checkpoint_every, 10000, 1, 100000000),
#undef L
};

/* dir/p unless p is absolute; in the cfg arena. */
static const char *resolve(loader_t *ld, const char *dir, const char *p)
{
    if (p[0] == '/')
        return ld_strdup(ld, p);
    size_t n = strlen(dir) + 1 + strlen(p) + 1;
    char *out = ld_alloc(ld, n);
    if (out)
        snprintf(out, n, "%s/%s", dir, p);
    return out;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *out = shub_malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", dir, name);
    return out;
}

static int hub_load(loader_t *ld, const char *file)
{
    ydoc_t doc;
    raw_hub_t *raw = NULL;
    shub_hub_settings_t *h = &ld->cfg->hub;
    int rc = ydoc_load(ld, file, false, &hub_schema, &doc, (void **)&raw);
    if (rc == SHUB_ENOTFOUND)
        rc = 0; /* no hub.yaml: every setting has a default */
    if (rc) {
        ydoc_release(&doc);
        return rc;
    }
    h->endpoint =
        ld_strdup(ld, raw && raw->endpoint ? raw->endpoint : "tcp://127.0.0.1:7400");
    h->database =
        resolve(ld, ld->dir, raw && raw->database ? raw->database : "sharehub.db");
    h->key_dir = resolve(ld, ld->dir, raw && raw->key_dir ? raw->key_dir : "keys");
    h->synchronous_full = !raw || raw->synchronous != SYNC_NORMAL;
    if (raw && raw->endpoint && !strstr(raw->endpoint, "://")) {
        int col, line = ydoc_line(&doc, &col, "endpoint");
        ld_error(ld, doc.file, line, col,
                 "endpoint '%s' must be a zeromq endpoint such as tcp://127.0.0.1:7400",
                 raw->endpoint);
    }
    for (size_t i = 0; i < sizeof limit_table / sizeof limit_table[0]; i++) {
        uint32_t *const *src =
            raw && raw->limits
                ? (uint32_t *const *)((const char *)raw->limits + limit_table[i].raw_off)
                : NULL;
        uint32_t v = src && *src ? **src : limit_table[i].def;
        if (v < limit_table[i].min || v > limit_table[i].max) {
            int col, line = ydoc_line(&doc, &col, "limits.%s", limit_table[i].name);
            ld_error(ld, doc.file, line, col, "limits.%s of %u is outside %u..%u",
                     limit_table[i].name, v, limit_table[i].min, limit_table[i].max);
        }
        *(uint32_t *)((char *)h + limit_table[i].out_off) = v;
    }
    if (h->peer_timeout_ms <= h->heartbeat_ms) {
        int col, line = ydoc_line(&doc, &col, "limits.peer_timeout_ms");
        ld_error(ld, doc.file, line, col,
                 "limits.peer_timeout_ms of %u must exceed limits.heartbeat_ms of %u",
                 h->peer_timeout_ms, h->heartbeat_ms);
    }
    ydoc_free_data(&hub_schema, raw);
    ydoc_release(&doc);
    return ld->oom ? SHUB_ENOMEM : 0;
}

/* ---- agreements directory ----------------------------------------------- */

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_yaml_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".yaml") == 0;
}

/* Loads every *.yaml in dir, in name order so that reports and the sort of
 * equal-id duplicates are the same on every machine. */
static int agreements_load_dir(loader_t *ld, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        ld_error(ld, dir, 0, 0, "cannot open agreements directory: %s", strerror(errno));
        return 0;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_yaml_name(e->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = shub_realloc(names, ncap * sizeof *nn);
            if (!nn) {
                rc = SHUB_ENOMEM;
                break;
            }
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = join(dir, e->d_name))) {
            rc = SHUB_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (!rc && n) {
        qsort(names, n, sizeof *names, cmp_name);
        for (size_t i = 0; i < n && !ld->oom; i++)
            agreement_load(ld, names[i]);
    }
    for (size_t i = 0; i < n; i++)
        shub_free(names[i]);
    shub_free(names);
    if (rc)
        ld->oom = true;
    return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

void shub_config_destroy(shub_config_t **cfg_p)
{
    if (!cfg_p || !*cfg_p)
        return;
    shub_config_t *cfg = *cfg_p;
    shub_free(cfg->agreements);
    shub_arena_destroy(&cfg->arena);
    shub_free(cfg);
    *cfg_p = NULL;
}

int shub_config_load(const char *dir, const shub_config_opts_t *opts,
                     shub_config_t **cfg_p, shub_config_report_fn *report, void *ctx)
{
    if (!dir || !cfg_p)
        return SHUB_EINVAL;
    shub_config_t *cfg = shub_calloc(1, sizeof *cfg);
    if (!cfg)
        return SHUB_ENOMEM;
    cfg->arena = shub_arena_new(16384);
    if (!cfg->arena) {
        shub_free(cfg);
        return SHUB_ENOMEM;
    }
    loader_t ld = {.cfg = cfg, .report = report, .report_ctx = ctx, .dir = dir};
    char *file = join(dir, "hub.yaml");
    if (!file)
        ld.oom = true;
    else
        hub_load(&ld, file);
    shub_free(file);

    if (!ld.oom) {
        if (opts && opts->key_dir)
            cfg->hub.key_dir = ld_strdup(&ld, opts->key_dir);
        ld.key_dir = cfg->hub.key_dir;
    }
    if (!ld.oom) {
        file = join(dir, "orgs.yaml");
        if (!file)
            ld.oom = true;
        else
            registry_load(&ld, file);
        shub_free(file);
    }
    if (!ld.oom) {
        file = join(dir, "agreements");
        if (!file)
            ld.oom = true;
        else
            agreements_load_dir(&ld, file);
        shub_free(file);
    }
    if (!ld.oom)
        agreements_finish(&ld);

    if (ld.oom || ld.n_errors) {
        shub_config_destroy(&cfg);
        return ld.oom ? SHUB_ENOMEM : SHUB_ECONFIG;
    }
    *cfg_p = cfg;
    return 0;
}

const shub_hub_settings_t *shub_config_hub(const shub_config_t *cfg)
{
    return cfg ? &cfg->hub : NULL;
}
