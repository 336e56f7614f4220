/*
 * minimise: the recipient's copy and its account (include/sharehub/minimise.h).
 * The projection itself is shub_val_select (protocol/val.c), shared with
 * anything else that reduces a payload; this module turns it into the names
 * an audit row keeps.
 */
#include "sharehub/minimise.h"

#include "sharehub/msg.h"

#include <stdio.h>
#include <string.h>

/* A field list being built: fixed room, each name once, cut with "..." once
 * full. Each name's hash and place are kept beside the text, so the
 * duplicate check compares hashes, not the text scanned at every comma. A
 * name takes at least two bytes of room (itself and its comma), which bounds
 * the entries. */
#define MAX_NAMES (SHUB_MINIMISE_MAX_TEXT / 2 + 1)

typedef struct names {
    char text[SHUB_MINIMISE_MAX_TEXT + 1];
    size_t len;
    bool cut;
    size_t n;
    uint32_t hash[MAX_NAMES];
    uint16_t at[MAX_NAMES];
} names_t;

static uint32_t name_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a; a collision costs one memcmp */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static bool names_has(const names_t *n, const char *path, size_t plen, uint32_t h)
{
    for (size_t i = 0; i < n->n; i++) {
        const char *s = n->text + n->at[i];
        if (n->hash[i] == h && strncmp(s, path, plen) == 0 &&
            (s[plen] == ',' || s[plen] == '\0'))
            return true;
    }
    return false;
}

static void names_add(names_t *n, const char *path)
{
    size_t plen = strlen(path);
    if (n->cut || plen == 0)
        return;
    uint32_t h = name_hash(path, plen);
    if (names_has(n, path, plen, h))
        return;
    if (n->len + plen + 1 + 4 > SHUB_MINIMISE_MAX_TEXT || n->n == MAX_NAMES) {
        memcpy(n->text + n->len, n->len ? ",..." : "...", n->len ? 5 : 4);
        n->len += n->len ? 4 : 3;
        n->cut = true;
        return;
    }
    if (n->len)
        n->text[n->len++] = ',';
    n->hash[n->n] = h;
    n->at[n->n++] = (uint16_t)n->len;
    memcpy(n->text + n->len, path, plen + 1);
    n->len += plen;
}

static void on_stripped(const char *path, void *ctx)
{
    names_add(ctx, path);
}

/* Names the leaves below v (arrays transparent); path holds plen bytes. */
static void collect_leaves(const shub_val_t *v, char *path, size_t plen, names_t *out)
{
    if (v->type == SHUB_VAL_ARRAY) {
        for (uint32_t i = 0; i < v->len && !out->cut; i++)
            collect_leaves(&v->as.items[i], path, plen, out);
        return;
    }
    if (v->type != SHUB_VAL_MAP) {
        if (plen)
            names_add(out, path);
        return;
    }
    for (uint32_t i = 0; i < v->len && !out->cut; i++) {
        const shub_pair_t *p = &v->as.pairs[i];
        if (plen + 1 + p->key_len >= SHUB_VAL_MAX_PATH * 2)
            continue; /* deeper than any agreement path can name */
        size_t n = plen ? plen + 1 + p->key_len : p->key_len;
        if (plen)
            path[plen] = '.';
        memcpy(path + (plen ? plen + 1 : 0), p->key, p->key_len + 1);
        collect_leaves(&p->val, path, n, out);
        path[plen] = '\0';
    }
}

/* The report fields as "path=value": only codes are recorded (names,
 * integers, booleans), so free text never reaches the audit log even when a
 * sender puts it where a code belongs. */
static void collect_facts(const shub_val_t *payload, const char *const *report,
                          size_t n_report, names_t *out)
{
    for (size_t i = 0; i < n_report; i++) {
        const shub_val_t *v = shub_val_at(payload, report[i]);
        char fact[SHUB_VAL_MAX_PATH + SHUB_MSG_MAX_NAME + 2];
        if (!v)
            continue;
        if (v->type == SHUB_VAL_STR && shub_is_name(v->as.str))
            snprintf(fact, sizeof fact, "%s=%s", report[i], v->as.str);
        else if (v->type == SHUB_VAL_INT)
            snprintf(fact, sizeof fact, "%s=%lld", report[i], (long long)v->as.i);
        else if (v->type == SHUB_VAL_BOOL)
            snprintf(fact, sizeof fact, "%s=%s", report[i], v->as.b ? "true" : "false");
        else
            snprintf(fact, sizeof fact, "%s=(not a code)", report[i]);
        names_add(out, fact);
    }
}

static const char *keep(shub_arena_t *arena, const names_t *n)
{
    return shub_arena_strndup(arena, n->text, n->len);
}

int shub_minimise_leaves(shub_arena_t *arena, const shub_val_t *payload, const char **out,
                         shub_err_t *err)
{
    names_t all;
    all.len = all.n = 0;
    all.cut = false;
    char path[SHUB_VAL_MAX_PATH * 2 + 2] = "";
    all.text[0] = '\0';
    if (payload)
        collect_leaves(payload, path, 0, &all);
    const char *s = keep(arena, &all);
    if (!s)
        return shub_err_set(err, SHUB_ENOMEM, "minimise: out of memory");
    *out = s;
    return 0;
}

int shub_minimise(shub_arena_t *arena, const shub_val_t *payload,
                  const char *const *allowed, size_t n_allowed,
                  const char *const *report, size_t n_report, shub_minimised_t *out,
                  shub_err_t *err)
{
    names_t shared, stripped, facts;
    shared.len = stripped.len = facts.len = 0;
    shared.n = stripped.n = facts.n = 0;
    shared.cut = stripped.cut = facts.cut = false;
    char path[SHUB_VAL_MAX_PATH * 2 + 2] = "";
    shub_val_t copy;
    shared.text[0] = stripped.text[0] = facts.text[0] = '\0';
    if (!payload || payload->type != SHUB_VAL_MAP)
        return shub_err_set(err, SHUB_EINVAL, "minimise: the payload is not a map");
    int rc = shub_val_select(arena, payload, allowed, n_allowed, &copy, on_stripped,
                             &stripped);
    if (rc)
        return shub_err_set(err, rc, "minimise: %s",
                            rc == SHUB_ENOMEM ? "out of memory" : "cannot select fields");
    collect_leaves(&copy, path, 0, &shared);
    collect_facts(&copy, report, n_report, &facts);
    shub_minimised_t m = {
        .payload = copy,
        .shared = keep(arena, &shared),
        .stripped = keep(arena, &stripped),
        .facts = facts.len ? keep(arena, &facts) : NULL,
    };
    if (!m.shared || !m.stripped || (facts.len && !m.facts))
        return shub_err_set(err, SHUB_ENOMEM, "minimise: out of memory");
    *out = m;
    return 0;
}
