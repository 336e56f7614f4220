/*
 * scenario: the file that tells every agent how busy its organisation is.
 *
 * One YAML mapping. Only `start` and `days` are required; every other key
 * has the default shown. Rates are region-wide and per simulated week; an
 * agent originates the part carried by the areas it serves (see
 * docs/events.md for who sends what).
 *
 *   start: 2026-07-01          # simulated start, midnight UTC (YYYY-MM-DD)
 *   days: 91                   # simulated period, 1..3660
 *   speedup: 131040            # simulated seconds per real second (default 1)
 *   area_weights: {coventry: 2, dudley: 1.5}   # relative load of each area for
 *                              # every stream but marac's; default: all areas equal
 *   marac:
 *     referrals_per_week: 0    # marac.referral by police, region-wide
 *     area_weights: {...}      # as above, for referrals (falls back to the top level)
 *     withdrawn_fraction: 0.08 # referrals a MARAC decides "withdrawn"
 *     move_fraction: 0.05      # accepted victims who move to another area
 *     external_move_fraction: 0.005  # ... out of the force area
 *     external_areas: [outside]      # where external moves go
 *     missing_minutes_fraction: 0.2  # transfers first sent without minutes/plan
 *     repeat_fraction: 0.25    # referrals about a victim referred before
 *     consent_given_fraction: 0.15   # referrals with consent (the rest: override)
 *     origin: [wmp]            # orgs that share the referral stream equally;
 *                              # default: every police org, for its own areas
 *   probation: {releases_per_week: 0, mappa_fraction: 0.6, origin: [...]}
 *   health: {istv: off, assaults_per_week: 10}  # istv: monthly | weekly | off;
 *                              # assaults per site and area served
 *   mash: {referrals_per_week: 0, origin: [...]}     # councils, to a neighbour's MASH
 *   missing: {reports_per_week: 0, origin: [...]}    # police
 *   custody: {arrest_referrals_per_week: 0, origin: [...]}  # custody suites
 *
 * Fractions are 0..1, rates and weights >= 0. Unknown keys, duplicate keys,
 * aliases and more than one document are refused. Every error names the
 * file, line and column of the key or value at fault.
 *
 * The loader walks libyaml's events into a small tree (with positions) and
 * checks it against the field table below. libcyaml's schemas cannot express
 * a map whose keys are data (area_weights), and its error positions point at
 * the event before the fault; libyaml, which libcyaml is built on and links,
 * gives both directly.
 */
#include "profile_internal.h"

#include "sharehub/alloc.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define SC_MAX_FILE  (1 << 20) /* a scenario is a screenful; this is generous */
#define SC_MAX_DEPTH 8         /* the format nests 3 deep */
#define SC_MAX_DAYS  3660

/* ---- the YAML tree ----------------------------------------------------- */

typedef enum { N_SCALAR, N_MAP, N_SEQ } ntype_t;

typedef struct node {
    ntype_t type;
    int line, col;      /* 1-based */
    const char *text;   /* scalar text */
    bool plain;         /* scalar written without quotes */
    struct node **kids; /* map: key, value, key, value ...; seq: items */
    size_t n, cap;
} node_t;

typedef struct loader {
    const char *path;
    shub_arena_t *arena;
    shub_err_t *err;
    int rc;
} loader_t;

static int fail_at(loader_t *ld, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(loader_t *ld, int line, int col, const char *fmt, ...)
{
    if (ld->rc)
        return ld->rc;
    char msg[SHUB_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ld->rc = shub_err_set_at(ld->err, SHUB_ECONFIG, ld->path, line, col, "%s", msg);
    return ld->rc;
}

static int oom(loader_t *ld)
{
    if (!ld->rc)
        ld->rc =
            shub_err_set(ld->err, SHUB_ENOMEM, "out of memory loading \"%s\"", ld->path);
    return ld->rc;
}

static node_t *node_new(loader_t *ld, ntype_t type, const yaml_mark_t *mark)
{
    node_t *n = shub_arena_alloc(ld->arena, sizeof *n);
    if (!n) {
        oom(ld);
        return NULL;
    }
    n->type = type;
    n->line = (int)mark->line + 1;
    n->col = (int)mark->column + 1;
    return n;
}

static int node_add(loader_t *ld, node_t *parent, node_t *kid)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        node_t **kids = shub_arena_alloc(ld->arena, cap * sizeof *kids);
        if (!kids)
            return oom(ld);
        if (parent->n)
            memcpy(kids, parent->kids, parent->n * sizeof *kids);
        parent->kids = kids;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
    return 0;
}

static node_t *parse(loader_t *ld, const char *buf, size_t len)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        oom(ld);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    node_t *stack[SC_MAX_DEPTH];
    size_t depth = 0;
    node_t *root = NULL;
    int docs = 0;
    bool end = false;
    while (!end && !ld->rc) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            fail_at(ld, (int)parser.problem_mark.line + 1,
                    (int)parser.problem_mark.column + 1, "yaml: %s",
                    parser.problem ? parser.problem : "syntax error");
            break;
        }
        node_t *n = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            end = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                fail_at(ld, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                        "a scenario is one YAML document");
            break;
        case YAML_ALIAS_EVENT:
            fail_at(ld, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                    "aliases are not allowed");
            break;
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            n = node_new(ld,
                         ev.type == YAML_SCALAR_EVENT           ? N_SCALAR
                         : ev.type == YAML_SEQUENCE_START_EVENT ? N_SEQ
                                                                : N_MAP,
                         &ev.start_mark);
            if (!n)
                break;
            if (ev.type == YAML_SCALAR_EVENT) {
                n->text = shub_arena_strndup(
                    ld->arena, (const char *)ev.data.scalar.value, ev.data.scalar.length);
                n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                if (!n->text)
                    oom(ld);
                else if (strlen(n->text) != ev.data.scalar.length)
                    fail_at(ld, n->line, n->col, "text holds a NUL byte");
            }
            if (depth == 0)
                root = n;
            else
                node_add(ld, stack[depth - 1], n);
            if (ev.type != YAML_SCALAR_EVENT) {
                if (depth == SC_MAX_DEPTH)
                    fail_at(ld, n->line, n->col, "nested deeper than %d levels",
                            SC_MAX_DEPTH);
                else
                    stack[depth++] = n;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth)
                depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return ld->rc ? NULL : root;
}

/* ---- checking the tree against the format ------------------------------ */

typedef enum {
    K_DATE,     /* YYYY-MM-DD -> int64 ms */
    K_DAYS,     /* whole number 1..SC_MAX_DAYS -> double */
    K_SPEEDUP,  /* number > 0 -> double */
    K_RATE,     /* number >= 0 -> double */
    K_FRACTION, /* number 0..1 -> double */
    K_WEIGHTS,  /* map area -> number >= 0 -> sc_weights_t */
    K_LIST,     /* names (one, or a sequence) -> sc_list_t */
    K_ISTV,     /* monthly | weekly | off -> istv_period_t */
    K_MAP,      /* a section: `sub` */
} kind_t;

typedef struct field {
    const char *key;
    kind_t kind;
    size_t off; /* into raw_t */
    const struct field *sub;
} field_t;

typedef struct raw {
    shub_scenario_t sc;
    double days;
    bool seen_start, seen_days;
} raw_t;

#define F(key, kind, member)                                                             \
    {                                                                                    \
        key, kind, offsetof(raw_t, member), NULL                                         \
    }
#define SUB(key, fields)                                                                 \
    {                                                                                    \
        key, K_MAP, 0, fields                                                            \
    }
#define END                                                                              \
    {                                                                                    \
        NULL, 0, 0, NULL                                                                 \
    }

static const field_t marac_fields[] = {
    F("referrals_per_week", K_RATE, sc.marac.referrals.per_week),
    F("origin", K_LIST, sc.marac.referrals.origin),
    F("area_weights", K_WEIGHTS, sc.marac.weights),
    F("withdrawn_fraction", K_FRACTION, sc.marac.withdrawn),
    F("move_fraction", K_FRACTION, sc.marac.move),
    F("external_move_fraction", K_FRACTION, sc.marac.external_move),
    F("external_areas", K_LIST, sc.marac.external_areas),
    F("missing_minutes_fraction", K_FRACTION, sc.marac.missing_minutes),
    F("repeat_fraction", K_FRACTION, sc.marac.repeat),
    F("consent_given_fraction", K_FRACTION, sc.marac.consent_given),
    END,
};
static const field_t probation_fields[] = {
    F("releases_per_week", K_RATE, sc.probation.releases.per_week),
    F("origin", K_LIST, sc.probation.releases.origin),
    F("mappa_fraction", K_FRACTION, sc.probation.mappa),
    END,
};
static const field_t health_fields[] = {
    F("istv", K_ISTV, sc.health.istv),
    F("assaults_per_week", K_RATE, sc.health.assaults_per_week),
    END,
};
static const field_t mash_fields[] = {
    F("referrals_per_week", K_RATE, sc.mash.per_week),
    F("origin", K_LIST, sc.mash.origin),
    END,
};
static const field_t missing_fields[] = {
    F("reports_per_week", K_RATE, sc.missing.per_week),
    F("origin", K_LIST, sc.missing.origin),
    END,
};
static const field_t custody_fields[] = {
    F("arrest_referrals_per_week", K_RATE, sc.custody.per_week),
    F("origin", K_LIST, sc.custody.origin),
    END,
};
static const field_t top_fields[] = {
    F("start", K_DATE, sc.start_ms),
    F("days", K_DAYS, days),
    F("speedup", K_SPEEDUP, sc.speedup),
    F("area_weights", K_WEIGHTS, sc.weights),
    SUB("marac", marac_fields),
    SUB("probation", probation_fields),
    SUB("health", health_fields),
    SUB("mash", mash_fields),
    SUB("missing", missing_fields),
    SUB("custody", custody_fields),
    END,
};

/* A plain scalar that is a finite decimal number. */
static bool number(const node_t *n, double *out)
{
    if (n->type != N_SCALAR || !n->plain || !n->text[0])
        return false;
    if (strspn(n->text, "0123456789+-.eE") != strlen(n->text))
        return false;
    char *end;
    errno = 0;
    double v = strtod(n->text, &end);
    if (*end || errno || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static const char *shown(const node_t *n)
{
    return n->type == N_SCALAR ? n->text : n->type == N_MAP ? "a mapping" : "a sequence";
}

static void check_weights(loader_t *ld, const char *key, const node_t *v, sc_weights_t *w)
{
    if (v->type != N_MAP) {
        fail_at(ld, v->line, v->col, "\"%s\" must be a mapping of area to weight", key);
        return;
    }
    double total = 0;
    w->n = 0;
    for (size_t i = 0; i + 1 < v->n && !ld->rc; i += 2) {
        const node_t *k = v->kids[i], *val = v->kids[i + 1];
        double x;
        if (k->type != N_SCALAR || !shub_is_name(k->text))
            fail_at(ld, k->line, k->col, "area \"%s\" in \"%s\" is not a name", shown(k),
                    key);
        else if (w->n == SC_MAX_AREAS)
            fail_at(ld, k->line, k->col, "\"%s\" names more than %d areas", key,
                    SC_MAX_AREAS);
        else if (!number(val, &x) || x < 0)
            fail_at(ld, val->line, val->col,
                    "weight of \"%s\" must be a number >= 0, not \"%s\"", k->text,
                    shown(val));
        else {
            shub_str_copy(w->name[w->n], NAME_CAP, k->text);
            w->w[w->n++] = x;
            total += x;
        }
    }
    if (!ld->rc && !(total > 0))
        fail_at(ld, v->line, v->col, "\"%s\" must give some area a weight above 0", key);
}

static void check_list(loader_t *ld, const char *key, const node_t *v, sc_list_t *l)
{
    const node_t *const *items = v->type == N_SEQ ? (const node_t *const *)v->kids : &v;
    size_t n = v->type == N_SEQ ? v->n : 1;
    if (v->type == N_MAP) {
        fail_at(ld, v->line, v->col, "\"%s\" must be a name or a sequence of names", key);
        return;
    }
    if (n > SC_MAX_LIST) {
        fail_at(ld, v->line, v->col, "\"%s\" lists %zu names, more than the limit %d",
                key, n, SC_MAX_LIST);
        return;
    }
    l->n = 0;
    for (size_t i = 0; i < n && !ld->rc; i++) {
        if (items[i]->type != N_SCALAR || !shub_is_name(items[i]->text))
            fail_at(ld, items[i]->line, items[i]->col,
                    "\"%s\" entry \"%s\" is not a name", key, shown(items[i]));
        else
            shub_str_copy(l->item[l->n++], NAME_CAP, items[i]->text);
    }
}

static void check_map(loader_t *ld, const node_t *map, const field_t *fields,
                      const char *where, raw_t *raw);

static void check_value(loader_t *ld, const field_t *f, const node_t *v, raw_t *raw)
{
    void *dst = (char *)raw + f->off;
    double x = 0;
    switch (f->kind) {
    case K_DATE: {
        int64_t ms;
        if (v->type != N_SCALAR || shub_time_parse_date(v->text, &ms, NULL) != 0)
            fail_at(ld, v->line, v->col,
                    "\"%s\" must be a date as YYYY-MM-DD, not \"%s\"", f->key, shown(v));
        else {
            *(int64_t *)dst = ms;
            raw->seen_start = true;
        }
        break;
    }
    case K_DAYS:
        if (!number(v, &x) || x < 1 || x > SC_MAX_DAYS || x != (double)(int64_t)x)
            fail_at(ld, v->line, v->col,
                    "\"%s\" must be a whole number from 1 to %d, not \"%s\"", f->key,
                    SC_MAX_DAYS, shown(v));
        else {
            *(double *)dst = x;
            raw->seen_days = true;
        }
        break;
    case K_SPEEDUP:
        if (!number(v, &x) || !(x > 0) || x > 1e9)
            fail_at(ld, v->line, v->col,
                    "\"%s\" must be a number above 0 and at most 1e9, "
                    "not \"%s\"",
                    f->key, shown(v));
        else
            *(double *)dst = x;
        break;
    case K_RATE:
        if (!number(v, &x) || x < 0)
            fail_at(ld, v->line, v->col, "\"%s\" must be a number >= 0, not \"%s\"",
                    f->key, shown(v));
        else
            *(double *)dst = x;
        break;
    case K_FRACTION:
        if (!number(v, &x) || x < 0 || x > 1)
            fail_at(ld, v->line, v->col,
                    "\"%s\" must be a number from 0 to 1, not \"%s\"", f->key, shown(v));
        else
            *(double *)dst = x;
        break;
    case K_WEIGHTS:
        check_weights(ld, f->key, v, dst);
        break;
    case K_LIST:
        check_list(ld, f->key, v, dst);
        break;
    case K_ISTV:
        if (v->type == N_SCALAR && strcmp(v->text, "monthly") == 0)
            *(istv_period_t *)dst = ISTV_MONTHLY;
        else if (v->type == N_SCALAR && strcmp(v->text, "weekly") == 0)
            *(istv_period_t *)dst = ISTV_WEEKLY;
        else if (v->type == N_SCALAR && strcmp(v->text, "off") == 0)
            *(istv_period_t *)dst = ISTV_OFF;
        else
            fail_at(ld, v->line, v->col,
                    "\"%s\" must be monthly, weekly or off, not \"%s\"", f->key,
                    shown(v));
        break;
    case K_MAP:
        check_map(ld, v, f->sub, f->key, raw);
        break;
    }
}

static void check_map(loader_t *ld, const node_t *map, const field_t *fields,
                      const char *where, raw_t *raw)
{
    if (map->type != N_MAP) {
        fail_at(ld, map->line, map->col, "%s must be a mapping, not %s", where,
                map->type == N_SEQ ? "a sequence" : "a scalar");
        return;
    }
    for (size_t i = 0; i + 1 < map->n && !ld->rc; i += 2) {
        const node_t *k = map->kids[i], *v = map->kids[i + 1];
        if (k->type != N_SCALAR) {
            fail_at(ld, k->line, k->col, "keys in %s must be names", where);
            return;
        }
        for (size_t j = 0; j < i; j += 2)
            if (strcmp(map->kids[j]->text, k->text) == 0) {
                fail_at(ld, k->line, k->col,
                        "duplicate key \"%s\" in %s (first on line %d)", k->text, where,
                        map->kids[j]->line);
                return;
            }
        const field_t *f = fields;
        while (f->key && strcmp(f->key, k->text) != 0)
            f++;
        if (!f->key) {
            fail_at(ld, k->line, k->col, "unknown key \"%s\" in %s", k->text, where);
            return;
        }
        check_value(ld, f, v, raw);
    }
}

/* ---- loading ----------------------------------------------------------- */

void scenario_defaults(shub_scenario_t *s)
{
    memset(s, 0, sizeof *s);
    s->speedup = 1;
    s->marac.withdrawn = 0.08;
    s->marac.move = 0.05;
    s->marac.external_move = 0.005;
    s->marac.missing_minutes = 0.2;
    s->marac.repeat = 0.25;
    s->marac.consent_given = 0.15;
    s->marac.external_areas.n = 1;
    shub_str_copy(s->marac.external_areas.item[0], NAME_CAP, "outside");
    s->probation.mappa = 0.6;
    s->health.istv = ISTV_OFF;
    s->health.assaults_per_week = 10;
}

static int read_file(const char *path, char **buf_p, size_t *len_p, shub_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return shub_err_set_at(err, SHUB_EIO, path, 0, 0, "cannot open scenario: %s",
                               strerror(errno));
    char *buf = shub_malloc(SC_MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        return shub_err_set_at(err, SHUB_ENOMEM, path, 0, 0,
                               "out of memory reading scenario");
    }
    size_t len = fread(buf, 1, SC_MAX_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || len > SC_MAX_FILE) {
        shub_free(buf);
        return bad ? shub_err_set_at(err, SHUB_EIO, path, 0, 0, "cannot read scenario")
                   : shub_err_set_at(err, SHUB_ECONFIG, path, 0, 0,
                                     "scenario exceeds %d bytes", SC_MAX_FILE);
    }
    buf[len] = '\0';
    *buf_p = buf;
    *len_p = len;
    return 0;
}

int shub_scenario_load(const char *path, shub_scenario_t **scenario_p, shub_err_t *err)
{
    if (!path || !scenario_p)
        return shub_err_set(err, SHUB_EINVAL,
                            "scenario load needs a path and an out pointer");
    char *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len, err);
    if (rc)
        return rc;
    loader_t ld = {.path = path, .arena = shub_arena_new(4096), .err = err};
    raw_t *raw = shub_calloc(1, sizeof *raw);
    if (!ld.arena || !raw) {
        oom(&ld);
        goto done;
    }
    scenario_defaults(&raw->sc);
    node_t *root = parse(&ld, buf, len);
    if (ld.rc)
        goto done;
    if (!root) {
        fail_at(&ld, 1, 1, "scenario is empty: it needs at least start and days");
        goto done;
    }
    check_map(&ld, root, top_fields, "the scenario", raw);
    if (!ld.rc && !raw->seen_start)
        fail_at(&ld, root->line, root->col, "missing key \"start\"");
    if (!ld.rc && !raw->seen_days)
        fail_at(&ld, root->line, root->col, "missing key \"days\"");
    if (ld.rc)
        goto done;
    raw->sc.end_ms = raw->sc.start_ms + (int64_t)raw->days * MS_DAY;
    shub_scenario_t *s = shub_malloc(sizeof *s);
    if (!s) {
        oom(&ld);
        goto done;
    }
    *s = raw->sc;
    *scenario_p = s;
done:
    shub_free(raw);
    shub_arena_destroy(&ld.arena);
    shub_free(buf);
    return ld.rc;
}

void shub_scenario_destroy(shub_scenario_t **scenario_p)
{
    if (!scenario_p || !*scenario_p)
        return;
    shub_free(*scenario_p);
    *scenario_p = NULL;
}

int64_t shub_scenario_start_ms(const shub_scenario_t *s)
{
    return s ? s->start_ms : 0;
}

int64_t shub_scenario_end_ms(const shub_scenario_t *s)
{
    return s ? s->end_ms : 0;
}

double shub_scenario_speedup(const shub_scenario_t *s)
{
    return s ? s->speedup : 1;
}
