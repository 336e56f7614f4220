/*
 * whatif: past shares re-decided under a draft (include/sharehub/whatif.h).
 *
 * Each decide row becomes an event again (shub_whatif_event: the names and
 * codes the row keeps, never a value it does not), the draft decides it with
 * shub_policy_decide_partial at the row's own time, and the pair (then, now)
 * is counted under the agreement and flow it concerns: a share newly denied
 * under the one that allowed it, a share newly allowed under the one that
 * would allow it. For shares allowed both times, the leaves the draft's flow
 * would carry are compared with those the row says went.
 *
 * Counts live in two small arrays searched linearly: a region has tens of
 * agreements and flows, and a field list tens of leaves.
 */
#include "sharehub/whatif.h"

#include "sharehub/alloc.h"
#include "sharehub/policy.h"
#include "sharehub/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_PAGE 4096 /* audit rows read per store call */

typedef struct counter {
    char *agreement, *flow, *key, *change, *reason; /* key: a field, or NULL */
    uint64_t n;
} counter_t;

typedef struct counters {
    counter_t *v;
    size_t n, cap;
} counters_t;

struct shub_whatif {
    const shub_config_t *draft;
    const shub_config_t *live; /* the agreements in force, for hints; or NULL */
    shub_whatif_totals_t totals;
    counters_t flows, fields;
    bool has_since, has_until;
    int64_t since_ms, until_ms;
    bool oom;
};

/* ---- counters ------------------------------------------------------------- */

static bool same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static char *dup_or_null(const char *s)
{
    return s ? shub_strdup(s) : NULL;
}

static void counter_free(counter_t *e)
{
    shub_free(e->agreement);
    shub_free(e->flow);
    shub_free(e->key);
    shub_free(e->change);
    shub_free(e->reason);
}

/* Adds one to the counter of (agreement, flow, key, change, reason). */
static int count(counters_t *c, const char *agreement, const char *flow, const char *key,
                 const char *change, const char *reason)
{
    for (size_t i = 0; i < c->n; i++) {
        counter_t *e = &c->v[i];
        if (same(e->agreement, agreement) && same(e->flow, flow) && same(e->key, key) &&
            same(e->change, change) && same(e->reason, reason)) {
            e->n++;
            return 0;
        }
    }
    if (shub_grow((void **)&c->v, &c->cap, c->n + 1, sizeof *c->v))
        return SHUB_ENOMEM;
    counter_t *e = &c->v[c->n];
    memset(e, 0, sizeof *e);
    e->n = 1;
    if ((agreement && !(e->agreement = dup_or_null(agreement))) ||
        (flow && !(e->flow = dup_or_null(flow))) || (key && !(e->key = dup_or_null(key))) ||
        !(e->change = dup_or_null(change)) || (reason && !(e->reason = dup_or_null(reason)))) {
        counter_free(e);
        return SHUB_ENOMEM;
    }
    c->n++;
    return 0;
}

static void counters_free(counters_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        counter_free(&c->v[i]);
    shub_free(c->v);
    memset(c, 0, sizeof *c);
}

/* ---- lifecycle ------------------------------------------------------------- */

int shub_whatif_new(const shub_config_t *draft, const shub_config_t *live,
                    shub_whatif_t **out, shub_err_t *err)
{
    if (!draft || !out)
        return shub_err_set(err, SHUB_EINVAL, "what-if: missing draft or result");
    shub_whatif_t *w = shub_calloc(1, sizeof *w);
    if (!w)
        return shub_err_set(err, SHUB_ENOMEM, "what-if: out of memory");
    w->draft = draft;
    w->live = live;
    *out = w;
    return 0;
}

void shub_whatif_destroy(shub_whatif_t **w_p)
{
    if (!w_p || !*w_p)
        return;
    counters_free(&(*w_p)->flows);
    counters_free(&(*w_p)->fields);
    shub_free(*w_p);
    *w_p = NULL;
}

/* ---- the event a row describes ------------------------------------------- */

/* The comma-separated item of list at *p into buf (NUL-terminated); false at
 * the end. An item longer than buf is an error (*bad). */
static bool next_item(const char **p, char *buf, size_t size, bool *bad)
{
    if (!*p || !**p)
        return false;
    const char *e = strchr(*p, ',');
    size_t n = e ? (size_t)(e - *p) : strlen(*p);
    if (n >= size) {
        *bad = true;
        return false;
    }
    memcpy(buf, *p, n);
    buf[n] = '\0';
    *p = e ? e + 1 : *p + n;
    return true;
}

/* The map entry `key` of map, created (as an empty map) if absent. NULL if the
 * key is there but not a map, or out of memory. */
static shub_val_t *child_map(shub_arena_t *arena, shub_val_t *map, const char *key, int *rc)
{
    for (uint32_t i = 0; i < map->len; i++)
        if (strcmp(map->as.pairs[i].key, key) == 0)
            return map->as.pairs[i].val.type == SHUB_VAL_MAP ? &map->as.pairs[i].val
                                                             : NULL;
    if ((*rc = shub_val_put(arena, map, key, shub_val_map())))
        return NULL;
    return &map->as.pairs[map->len - 1].val;
}

/* Sets the leaf at a dotted path to v (replacing a leaf there). A path
 * through a leaf, or a leaf where a map is, is left alone: a log edited by
 * hand cannot make the rebuild fail, only be less complete. */
static int set_leaf(shub_arena_t *arena, shub_val_t *root, const char *path, shub_val_t v)
{
    char seg[SHUB_VAL_MAX_KEY + 1];
    shub_val_t *map = root;
    int rc = 0;
    if (!shub_val_is_path(path))
        return SHUB_EVALUE;
    for (const char *p = path;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        memcpy(seg, p, n);
        seg[n] = '\0';
        if (!dot) {
            for (uint32_t i = 0; i < map->len; i++) {
                if (strcmp(map->as.pairs[i].key, seg) == 0) {
                    if (map->as.pairs[i].val.type != SHUB_VAL_MAP)
                        map->as.pairs[i].val = v;
                    return 0;
                }
            }
            return shub_val_put(arena, map, seg, v);
        }
        if (!(map = child_map(arena, map, seg, &rc)))
            return rc;
        p = dot + 1;
    }
}

/* A fact's value as the minimiser wrote it: an integer, a boolean, a name;
 * "(not a code)" stays unknown. */
static int fact_value(shub_arena_t *arena, const char *text, shub_val_t *out)
{
    char *end = NULL;
    long long i = strtoll(text, &end, 10);
    if (*text && end && *end == '\0' && (text[0] != '0' || text[1] == '\0')) {
        *out = shub_val_int(i);
        return 0;
    }
    if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
        *out = shub_val_bool(text[0] == 't');
        return 0;
    }
    if (strcmp(text, "(not a code)") == 0) {
        *out = shub_val_nil();
        return 0;
    }
    return shub_val_str(arena, text, strlen(text), out);
}

int shub_whatif_event(shub_arena_t *arena, const shub_audit_row_t *row, shub_event_t *ev,
                      bool *complete, shub_err_t *err)
{
    char item[SHUB_VAL_MAX_PATH + SHUB_MSG_MAX_NAME + 2];
    bool bad = false, whole = true;
    int rc = 0;
    if (!arena || !row || !ev)
        return shub_err_set(err, SHUB_EINVAL, "what-if: missing argument");
    memset(ev, 0, sizeof *ev);
    ev->id = row->event_id;
    ev->type = row->event_type;
    ev->area = row->area;
    ev->purpose = row->purpose;
    ev->basis = row->legal_basis;
    ev->override = row->override;
    ev->occurred_ms = row->occurred_ms;
    int consent = row->consent ? shub_consent_parse(row->consent) : -1;
    ev->consent = consent > 0 ? (shub_consent_t)consent : SHUB_CONSENT_NOT_SOUGHT;
    ev->payload = shub_val_map();
    for (const char *p = row->fields; !rc && next_item(&p, item, sizeof item, &bad);) {
        if (strcmp(item, "...") == 0)
            whole = false;
        else
            rc = set_leaf(arena, &ev->payload, item, shub_val_nil());
    }
    for (const char *p = row->facts; !rc && next_item(&p, item, sizeof item, &bad);) {
        char *eq = strchr(item, '=');
        shub_val_t v;
        if (!eq) {
            bad = true;
            break;
        }
        *eq = '\0';
        if (!(rc = fact_value(arena, eq + 1, &v)))
            rc = set_leaf(arena, &ev->payload, item, v);
    }
    if (rc == SHUB_ENOMEM)
        return shub_err_set(err, rc, "what-if: out of memory");
    if (rc || bad)
        return shub_err_set(err, SHUB_EVALUE,
                            "what-if: row %lld: its field list or facts do not parse",
                            (long long)row->seq);
    if (complete)
        *complete = whole;
    return 0;
}

/* ---- one row --------------------------------------------------------------- */

/* What the row's own decision proves about its flow's condition, if the
 * agreement in force now is the very text that decided it (same content
 * hash): an allow held it, a condition-failed deny did not. */
static bool hint_for(const shub_whatif_t *w, const shub_audit_row_t *row,
                     shub_policy_hint_t *hint)
{
    hint->condition = NULL;
    if (!w->live || !row->agreement || !row->agreement_hash || !row->flow)
        return false;
    long i = shub_config_agreement_find(w->live, row->agreement);
    const shub_agreement_t *ag = i >= 0 ? shub_config_agreement_at(w->live, (size_t)i) : NULL;
    if (!ag || strcmp(ag->info.content_hash, row->agreement_hash) != 0)
        return false;
    bool allowed = strcmp(row->decision, "allow") == 0;
    if (!allowed && !same(row->reason, "condition-failed"))
        return false;
    for (size_t k = 0; k < ag->n_flows; k++) {
        if (strcmp(ag->flows[k].id, row->flow) == 0 && ag->flows[k].condition_text) {
            hint->condition = ag->flows[k].condition_text;
            hint->holds = allowed;
            return true;
        }
    }
    return false;
}

/* Is the leaf `leaf` carried by the flow (an allowed path is the leaf or one
 * of its ancestors)? */
static bool carried(const shub_decision_t *d, const char *leaf)
{
    size_t n = strlen(leaf);
    for (size_t i = 0; i < d->n_fields; i++) {
        size_t an = strlen(d->fields[i]);
        if (an <= n && memcmp(d->fields[i], leaf, an) == 0 &&
            (an == n || leaf[an] == '.'))
            return true;
    }
    return false;
}

static bool in_text_list(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, item, n) == 0)
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

/* The leaves that would go under the draft against those that went; counts
 * each difference under the draft's flow. True if any. */
static bool compare_fields(shub_whatif_t *w, const shub_audit_row_t *row,
                           const shub_decision_t *d)
{
    char leaf[SHUB_VAL_MAX_PATH + 1];
    bool bad = false, changed = false;
    for (const char *p = row->fields; next_item(&p, leaf, sizeof leaf, &bad);) {
        if (strcmp(leaf, "...") == 0)
            continue;
        bool now = carried(d, leaf), then = in_text_list(row->fields_shared, leaf);
        if (now == then)
            continue;
        changed = true;
        if (count(&w->fields, d->agreement, d->flow, leaf,
                  now ? "newly-shared" : "newly-stripped", NULL))
            w->oom = true;
    }
    return changed;
}

int shub_whatif_add(shub_whatif_t *w, const shub_audit_row_t *row, shub_err_t *err)
{
    if (!w || !row)
        return shub_err_set(err, SHUB_EINVAL, "what-if: missing argument");
    if (!row->action || strcmp(row->action, "decide") != 0 || !row->decision)
        return 0;
    if ((w->has_since && row->at_ms < w->since_ms) ||
        (w->has_until && row->at_ms >= w->until_ms))
        return 0;
    bool then = strcmp(row->decision, "allow") == 0;
    shub_arena_t *arena = shub_arena_new(4096);
    if (!arena)
        return shub_err_set(err, SHUB_ENOMEM, "what-if: out of memory");
    shub_event_t ev;
    shub_decision_t d;
    shub_err_t rowerr;
    memset(&d, 0, sizeof d);
    bool complete = true, undecidable = false;
    int rc = shub_whatif_event(arena, row, &ev, &complete, &rowerr);
    if (rc == SHUB_ENOMEM) {
        shub_arena_destroy(&arena);
        return shub_err_set(err, rc, "what-if: out of memory");
    }
    w->totals.decisions++;
    shub_policy_hint_t hint;
    hint_for(w, row, &hint);
    if (rc == 0)
        shub_policy_decide_partial(w->draft, row->sender ? row->sender : "",
                                   row->recipient ? row->recipient : "", &ev, row->at_ms,
                                   &hint, &d, &undecidable);
    /* A cut field list hides leaves a condition may read: decided only if
     * the draft's answer does not rest on a condition at all. */
    if (rc || (!complete && (undecidable || d.allow != then))) {
        undecidable = true;
    }
    const char *ag = then ? row->agreement : d.agreement;
    const char *flow = then ? row->flow : d.flow;
    const char *change, *reason = NULL;
    if (undecidable) {
        change = "undecidable";
        w->totals.undecidable++;
    } else if (then && !d.allow) {
        change = "newly-denied";
        reason = d.reason;
        w->totals.newly_denied++;
    } else if (!then && d.allow) {
        change = "newly-allowed";
        ag = d.agreement;
        flow = d.flow;
        w->totals.newly_allowed++;
    } else {
        change = "unchanged";
        if (then) {
            ag = d.agreement;
            flow = d.flow;
        }
        w->totals.unchanged++;
        if (then && compare_fields(w, row, &d))
            w->totals.fields_changed++;
    }
    if (count(&w->flows, ag, flow, NULL, change, reason))
        w->oom = true;
    shub_arena_destroy(&arena);
    if (w->oom)
        return shub_err_set(err, SHUB_ENOMEM, "what-if: out of memory");
    return 0;
}

/* ---- reading the store ------------------------------------------------------ */

typedef struct run {
    shub_whatif_t *w;
    shub_err_t *err;
    int64_t last;
    size_t seen;
    int rc;
} run_t;

static int on_row(const shub_audit_row_t *row, void *ctx)
{
    run_t *r = ctx;
    r->last = row->seq;
    r->seen++;
    if (r->w->has_until && row->at_ms >= r->w->until_ms)
        return 1; /* `at` does not decrease along seq (query.h's seq_at_time) */
    r->rc = shub_whatif_add(r->w, row, r->err);
    return r->rc ? 1 : 0;
}

int shub_whatif_run(shub_whatif_t *w, shub_store_t *s, bool has_since, int64_t since_ms,
                    bool has_until, int64_t until_ms, shub_err_t *err)
{
    if (!w || !s)
        return shub_err_set(err, SHUB_EINVAL, "what-if: missing argument");
    w->has_since = has_since;
    w->since_ms = since_ms;
    w->has_until = has_until;
    w->until_ms = until_ms;
    run_t r = {.w = w, .err = err};
    for (;;) {
        r.seen = 0;
        int rc = shub_store_audit_read(s, r.last, READ_PAGE, on_row, &r, err);
        if (r.rc)
            return r.rc;
        if (rc < 0)
            return rc;
        if (rc > 0 || r.seen < READ_PAGE)
            return 0;
    }
}

void shub_whatif_totals(const shub_whatif_t *w, shub_whatif_totals_t *out)
{
    if (w && out)
        *out = w->totals;
}

/* ---- the answer ------------------------------------------------------------- */

static int cmp_counter(const void *a, const void *b)
{
    const counter_t *x = a, *y = b;
    const char *xs[] = {x->agreement, x->flow, x->key, x->change, x->reason};
    const char *ys[] = {y->agreement, y->flow, y->key, y->change, y->reason};
    for (size_t i = 0; i < 5; i++) {
        int c = strcmp(xs[i] ? xs[i] : "", ys[i] ? ys[i] : "");
        if (c)
            return c;
    }
    return 0;
}

/* A section of counters: (agreement, flow, change, reason, shares), or with
 * `by_field` (agreement, flow, field, change, shares). */
static int add_counts(shub_query_result_t *r, const char *name, const char *const *cols,
                      const counters_t *c, bool by_field)
{
    static const bool num[] = {false, false, false, false, true};
    int rc = shub_query_section_add(r, name, cols, 5);
    for (size_t i = 0; !rc && i < c->n; i++) {
        const counter_t *e = &c->v[i];
        char n[24];
        snprintf(n, sizeof n, "%llu", (unsigned long long)e->n);
        const char *cells[] = {e->agreement, e->flow, by_field ? e->key : e->change,
                               by_field ? e->change : e->reason, n};
        rc = shub_query_row_add(r, cells, num);
    }
    return rc;
}

int shub_whatif_result(const shub_whatif_t *w, shub_query_result_t **out,
                       shub_err_t *err)
{
    static const char *const sum_cols[] = {"decisions",     "unchanged",   "newly_denied",
                                           "newly_allowed", "undecidable", "fields_changed",
                                           "since",         "until"};
    static const char *const flow_cols[] = {"agreement", "flow", "change", "reason",
                                            "shares"};
    static const char *const field_cols[] = {"agreement", "flow", "field", "change",
                                             "shares"};
    static const bool sum_num[] = {true, true, true, true, true, true, false, false};
    shub_query_result_t *r = NULL;
    char num[6][24], since[SHUB_TIME_TEXT] = "", until[SHUB_TIME_TEXT] = "";
    if (!w || !out)
        return shub_err_set(err, SHUB_EINVAL, "what-if: missing argument");
    const uint64_t v[6] = {w->totals.decisions,     w->totals.unchanged,
                           w->totals.newly_denied,  w->totals.newly_allowed,
                           w->totals.undecidable,   w->totals.fields_changed};
    for (size_t i = 0; i < 6; i++)
        snprintf(num[i], sizeof num[i], "%llu", (unsigned long long)v[i]);
    if (w->has_since)
        shub_time_format(w->since_ms, since);
    if (w->has_until)
        shub_time_format(w->until_ms, until);
    const char *sum[] = {num[0], num[1], num[2], num[3], num[4], num[5],
                         w->has_since ? since : NULL, w->has_until ? until : NULL};
    if (w->flows.n) /* qsort's array may not be NULL, even empty */
        qsort(w->flows.v, w->flows.n, sizeof *w->flows.v, cmp_counter);
    if (w->fields.n)
        qsort(w->fields.v, w->fields.n, sizeof *w->fields.v, cmp_counter);
    int rc = shub_query_result_new(&r);
    if (!rc)
        rc = shub_query_section_add(r, "whatif", sum_cols, 8);
    if (!rc)
        rc = shub_query_row_add(r, sum, sum_num);
    if (!rc)
        rc = add_counts(r, "flows", flow_cols, &w->flows, false);
    if (!rc)
        rc = add_counts(r, "fields", field_cols, &w->fields, true);
    if (rc) {
        shub_query_result_destroy(&r);
        return shub_err_set(err, SHUB_ENOMEM, "what-if: out of memory");
    }
    *out = r;
    return 0;
}
