/*
 * yaml: the one YAML loader, for every file a person writes: hub.yaml,
 * orgs.yaml, agreements and scenarios.
 *
 * Loading is in two steps. shub_yaml_load reads the file (file.h) and turns
 * libyaml's events into a tree of nodes, each with the line and column where
 * it starts; it refuses what no file of ours needs and what makes mistakes
 * easy to miss: aliases, more than one document, duplicate keys, NUL bytes,
 * nesting deeper than SHUB_YAML_MAX_DEPTH. Then shub_yaml_bind checks the
 * tree against a schema (the tables below) and fills the caller's struct:
 * unknown, missing and duplicate keys, the wrong kind of value, numbers out
 * of range, dates that are not dates. The caller's own checks (an org that
 * must exist, dates in order) add errors at a node or a path.
 *
 * Errors are collected, not stopped at, so one edit fixes a whole batch;
 * shub_yaml_report hands them over in line order as "file:line:column:
 * message" (a shub_err_t with code SHUB_ECONFIG). Lines and columns are
 * 1-based, columns count characters. A syntax error stops the file; its
 * message keeps libyaml's words and adds what to do about them, and a tab
 * is called a tab.
 *
 * Everything the tree and the bound values hold lives in the document's
 * arena: strings in a bound struct point into it, so copy what must outlive
 * the document.
 */
#ifndef SHAREHUB_YAML_H
#define SHAREHUB_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "sharehub/arena.h"
#include "sharehub/err.h"

#define SHUB_YAML_MAX_BYTES  (1024 * 1024) /* one file: agreements are text */
#define SHUB_YAML_MAX_DEPTH  32            /* our formats nest 6 deep at most */
#define SHUB_YAML_MAX_NODES  200000        /* values in one file */
#define SHUB_YAML_MAX_KEYS   1024          /* keys in one mapping */
#define SHUB_YAML_MAX_ERRORS 100           /* kept per file; more are counted */
#define SHUB_YAML_MAX_PATH   256           /* "flows[2].fields[0]": longer is cut */

/* ---- the tree ----------------------------------------------------------- */

typedef enum {
    SHUB_YAML_SCALAR = 1,
    SHUB_YAML_MAP,
    SHUB_YAML_SEQ,
} shub_yaml_kind_t;

typedef struct shub_yaml_node shub_yaml_node_t;

struct shub_yaml_node {
    shub_yaml_kind_t kind;
    int line, column;         /* 1-based, where the node starts */
    const char *text;         /* SCALAR: the value, NUL-terminated; "" for nothing */
    size_t len;               /* SCALAR: bytes in text */
    bool plain;               /* SCALAR: written without quotes */
    shub_yaml_node_t **items; /* MAP: key, value, key, value ...; SEQ: entries */
    size_t n;                 /* entries in items (a MAP has n / 2 keys) */
};

typedef struct shub_yaml_doc shub_yaml_doc_t; /* opaque */

/* Reads path and builds its tree. 0: *doc_p is a new document (its root is
 * NULL for an empty file). SHUB_ECONFIG: *doc_p is a document holding the
 * syntax error, for shub_yaml_report. Otherwise no document, and err says
 * why the file could not be read (file.h: SHUB_ENOTFOUND, SHUB_EIO,
 * SHUB_ELIMIT) or SHUB_ENOMEM. */
int shub_yaml_load(const char *path, shub_yaml_doc_t **doc_p, shub_err_t *err);

/* As shub_yaml_load, from text[0..len) named `name` in messages (tests,
 * fuzzing). The text is copied. */
int shub_yaml_parse(const char *name, const char *text, size_t len,
                    shub_yaml_doc_t **doc_p, shub_err_t *err);

/* Frees the document and everything bound from it; accepts NULL; nulls the
 * caller's pointer. */
void shub_yaml_destroy(shub_yaml_doc_t **doc_p);

const shub_yaml_node_t *shub_yaml_root(const shub_yaml_doc_t *doc);
const char *shub_yaml_name(const shub_yaml_doc_t *doc);               /* the path given */
const char *shub_yaml_bytes(const shub_yaml_doc_t *doc, size_t *len); /* the file */
shub_arena_t *shub_yaml_arena(shub_yaml_doc_t *doc);

/* The value of `key` in a MAP node, or NULL. */
const shub_yaml_node_t *shub_yaml_get(const shub_yaml_node_t *map, const char *key);

/* The node at a path such as "flows[2].fields[0]" ("" is the root), or its
 * nearest ancestor that exists: where to report something about that path.
 * NULL only for an empty document. */
const shub_yaml_node_t *shub_yaml_at(const shub_yaml_doc_t *doc, const char *path);

/* How a message shows a node: "'text'" (cut at 40 bytes), "nothing" for an
 * empty value, "a mapping", "a list". Returns buf. */
const char *shub_yaml_show(const shub_yaml_node_t *node, char *buf, size_t size);

/* ---- errors ------------------------------------------------------------- */

/* Adds an error at node (NULL: line 1, column 1) with a printf-style message
 * (lowercase, no full stop, the subject in quotes). */
void shub_yaml_error(shub_yaml_doc_t *doc, const shub_yaml_node_t *node, const char *fmt,
                     ...) __attribute__((format(printf, 3, 4)));

/* Adds an error where shub_yaml_at(doc, path) points: for checks made on
 * bound values, which know the path ("flows[2].id") but not the node. */
void shub_yaml_error_path(shub_yaml_doc_t *doc, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Errors added so far (including those past SHUB_YAML_MAX_ERRORS). */
size_t shub_yaml_error_count(const shub_yaml_doc_t *doc);

/* True once an allocation failed while building, binding or adding errors:
 * the caller returns SHUB_ENOMEM rather than trusting a partial result. */
bool shub_yaml_oom(const shub_yaml_doc_t *doc);

/* Calls report (if not NULL) once per error, in line and column order, then
 * forgets them. Returns how many there were. */
typedef void(shub_yaml_report_fn)(const shub_err_t *err, void *ctx);
size_t shub_yaml_report(shub_yaml_doc_t *doc, shub_yaml_report_fn *report, void *ctx);

/* For a caller that returns one error: fills err (may be NULL) with the
 * first in line order, forgets them all, and returns how many there were. */
size_t shub_yaml_report_first(shub_yaml_doc_t *doc, shub_err_t *err);

/* ---- schemas ------------------------------------------------------------ */

typedef enum {
    SHUB_YAML_TEXT = 1, /* const char *: min..max bytes */
    SHUB_YAML_UINT,     /* uint32_t: a whole number min..max, no leading zeros */
    SHUB_YAML_NUMBER,   /* double: a finite decimal number min..max */
    SHUB_YAML_BOOL,     /* bool: true or false */
    SHUB_YAML_ENUM,     /* int: the value of one of `names` */
    SHUB_YAML_DATE,     /* int64_t: YYYY-MM-DD, ms at midnight UTC (time.h) */
    SHUB_YAML_STRUCT,   /* a mapping of `fields` into a struct */
    SHUB_YAML_LIST,     /* a sequence of `entry`: an array in the arena and its
                           size_t count (see shub_yaml_field_t) */
    SHUB_YAML_CHECK,    /* the caller's `check` reads the node */
} shub_yaml_type_kind_t;

enum {
    SHUB_YAML_ONE_OR_MORE = 1, /* LIST: a single value counts as a list of one */
    SHUB_YAML_OPEN = 2,        /* STRUCT: keys it does not know are ignored */
    SHUB_YAML_ABOVE_MIN = 4,   /* NUMBER: min itself is not allowed */
};

typedef struct shub_yaml_type shub_yaml_type_t;
typedef struct shub_yaml_field shub_yaml_field_t;

typedef struct shub_yaml_name {
    const char *name;
    int value;
} shub_yaml_name_t;

/* Reads node (at `path`) into dst, adding errors to doc. Returns 0, or
 * SHUB_ENOMEM. */
typedef int(shub_yaml_check_fn)(shub_yaml_doc_t *doc, const shub_yaml_node_t *node,
                                const char *path, void *dst);

struct shub_yaml_type {
    shub_yaml_type_kind_t kind;
    unsigned flags;                  /* SHUB_YAML_ONE_OR_MORE, ... */
    double min, max;                 /* TEXT: bytes; UINT, NUMBER: value; LIST: entries */
    const char *what;                /* NUMBER, CHECK: what a right value is, for
                                        "'x' must be <what>, not '-1'" */
    size_t size;                     /* STRUCT, CHECK: bytes of one value, for a
                                        list of them (other kinds know theirs) */
    const shub_yaml_field_t *fields; /* STRUCT: ends with a NULL key */
    const shub_yaml_type_t *entry;   /* LIST */
    const shub_yaml_name_t *names;   /* ENUM: ends with a NULL name */
    shub_yaml_check_fn *check;       /* CHECK */
};

/* One key of a STRUCT. A STRUCT field's struct sits at `offset` inside the
 * parent's (offset 0 with fields of the parent's own type is a section of
 * the same struct). A LIST writes its array pointer at `offset` and its
 * count (size_t) at `count_offset`. Absent optional keys leave dst as the
 * caller set it, which is how defaults are given. */
struct shub_yaml_field {
    const char *key;
    bool required;
    size_t offset;
    size_t count_offset;
    const shub_yaml_type_t *type;
};

/* Binds one node found at `path` (for messages) to type, not a LIST, into
 * dst: for a CHECK that reads a value with the ordinary rules, such as a
 * weight in a mapping whose keys are data. Returns as shub_yaml_bind. */
int shub_yaml_bind_node(shub_yaml_doc_t *doc, const shub_yaml_type_t *type,
                        const shub_yaml_node_t *node, const char *path, void *dst);

/* Binds the document's root (an empty document is an empty mapping) to
 * type, a STRUCT, filling dst. Errors go to doc. Returns 0 when there were
 * none (so the caller's own checks can trust dst), SHUB_ECONFIG, or
 * SHUB_ENOMEM. */
int shub_yaml_bind(shub_yaml_doc_t *doc, const shub_yaml_type_t *type, void *dst);

#endif
