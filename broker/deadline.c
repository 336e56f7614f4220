/*
 * deadline: the open deadlines of allowed shares (include/sharehub/deadline.h).
 * One array, unordered, with the earliest due time of those not yet
 * escalated cached so that the once-a-second overdue check costs nothing
 * until something can be due. Closing a deadline swaps the last entry into
 * its place.
 *
 * Beside the array, an index of its positions by event id (idindex.h), so
 * that an answer finds its share's deadlines without reading every open one.
 *
 * A broker may hold a hundred thousand open deadlines (a partner offline
 * for a day), so an entry keeps only what differs from share to share: the
 * event, its two parties and its times. What deadlines of one flow share
 * (type, area, agreement, flow, kind, hours) is one class, kept once and
 * pointed at; the full shub_store_deadline_t is rebuilt for the callbacks.
 */
#include "sharehub/deadline.h"

#include "sharehub/alloc.h"
#include "sharehub/idindex.h"
#include "sharehub/time.h"
#include "sharehub/val.h"

#include <stdio.h>
#include <string.h>

typedef struct dclass {
    shub_store_deadline_t shared; /* the class's fields; the per-share ones unset */
    struct dclass *next;
} dclass_t;

typedef struct entry {
    shub_id_t event_id;
    const char *recipient, *sender;
    const dclass_t *cls;
    int64_t started_ms, due_ms, escalated_ms;
} entry_t;

struct shub_deadline {
    entry_t *v; /* open deadlines */
    size_t n, cap;
    shub_idindex_t index; /* positions in v by event id */
    dclass_t *classes, *last; /* last: the class of the latest add */
    int64_t next_due; /* earliest due_ms among the unescalated; INT64_MAX: none */
};

static const shub_id_t *id_at(size_t pos, void *ctx)
{
    const shub_deadline_t *dl = ctx;
    return &dl->v[pos].event_id;
}

shub_deadline_t *shub_deadline_new(void)
{
    shub_deadline_t *dl = shub_calloc(1, sizeof *dl);
    if (!dl)
        return NULL;
    dl->next_due = INT64_MAX;
    if (shub_idindex_init(&dl->index, id_at, dl) != 0) {
        shub_free(dl);
        return NULL;
    }
    return dl;
}

static void free_classes(shub_deadline_t *dl)
{
    while (dl->classes) {
        dclass_t *c = dl->classes;
        dl->classes = c->next;
        shub_free(c);
    }
    dl->last = NULL;
}

void shub_deadline_destroy(shub_deadline_t **dl_p)
{
    shub_deadline_t *dl = dl_p ? *dl_p : NULL;
    if (!dl)
        return;
    free_classes(dl);
    shub_free(dl->v);
    shub_idindex_free(&dl->index);
    shub_free(dl);
    *dl_p = NULL;
}

/* The classes go too: their strings are the store's, which a reload may
 * replace. */
void shub_deadline_clear(shub_deadline_t *dl)
{
    if (!dl)
        return;
    dl->n = 0;
    dl->next_due = INT64_MAX;
    shub_idindex_clear(&dl->index);
    free_classes(dl);
}

static bool same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_class(const dclass_t *cl, const shub_store_deadline_t *d)
{
    const shub_store_deadline_t *c = &cl->shared;
    return c->kind == d->kind && c->hours == d->hours &&
           c->agreement_version == d->agreement_version &&
           same_text(c->event_type, d->event_type) && same_text(c->area, d->area) &&
           same_text(c->agreement, d->agreement) &&
           same_text(c->agreement_hash, d->agreement_hash) && same_text(c->flow, d->flow);
}

/* d's class, found (the latest add's first) or made. NULL: out of memory. */
static const dclass_t *class_of(shub_deadline_t *dl, const shub_store_deadline_t *d)
{
    if (dl->last && same_class(dl->last, d))
        return dl->last;
    for (dclass_t *c = dl->classes; c; c = c->next)
        if (same_class(c, d))
            return dl->last = c;
    dclass_t *c = shub_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->shared = (shub_store_deadline_t){.event_type = d->event_type,
                                        .area = d->area,
                                        .agreement = d->agreement,
                                        .agreement_hash = d->agreement_hash,
                                        .flow = d->flow,
                                        .agreement_version = d->agreement_version,
                                        .kind = d->kind,
                                        .hours = d->hours};
    c->next = dl->classes;
    dl->classes = c;
    return dl->last = c;
}

/* Closes the deadline at position pos: the last entry takes its place. */
static void entry_remove(shub_deadline_t *dl, size_t pos)
{
    shub_idindex_del(&dl->index, pos);
    size_t last = dl->n - 1;
    if (pos != last) {
        shub_idindex_move(&dl->index, last, pos);
        dl->v[pos] = dl->v[last];
    }
    dl->n--;
}

/* The whole deadline an entry stands for. */
static shub_store_deadline_t expand(const entry_t *e)
{
    shub_store_deadline_t d = e->cls->shared;
    d.event_id = e->event_id;
    d.recipient = e->recipient;
    d.sender = e->sender;
    d.started_ms = e->started_ms;
    d.due_ms = e->due_ms;
    d.escalated_ms = e->escalated_ms;
    return d;
}

int shub_deadline_add(shub_deadline_t *dl, const shub_store_deadline_t *d)
{
    if (!dl || !d || !d->recipient || !d->sender)
        return SHUB_EINVAL;
    if (d->answered_ms)
        return 0;
    if (dl->n >= SHUB_DEADLINE_MAX_OPEN)
        return SHUB_ELIMIT;
    const dclass_t *cls = class_of(dl, d);
    if (!cls || shub_grow((void **)&dl->v, &dl->cap, dl->n + 1, sizeof *dl->v))
        return SHUB_ENOMEM;
    dl->v[dl->n] = (entry_t){.event_id = d->event_id,
                             .recipient = d->recipient,
                             .sender = d->sender,
                             .cls = cls,
                             .started_ms = d->started_ms,
                             .due_ms = d->due_ms,
                             .escalated_ms = d->escalated_ms};
    if (shub_idindex_put(&dl->index, dl->n))
        return SHUB_ENOMEM;
    dl->n++;
    if (!d->escalated_ms && d->due_ms < dl->next_due)
        dl->next_due = d->due_ms;
    return 0;
}

static bool listed(const char *const *to, size_t n, const char *org)
{
    for (size_t i = 0; i < n; i++)
        if (to[i] && strcmp(to[i], org) == 0)
            return true;
    return false;
}

static bool meets(const entry_t *e, const shub_id_t *reply_to, const char *from,
                  const char *const *to, size_t n_to)
{
    if (memcmp(e->event_id.bytes, reply_to->bytes, SHUB_ID_SIZE) != 0 ||
        strcmp(e->recipient, from) != 0)
        return false;
    return e->cls->shared.kind == SHUB_STORE_DEADLINE_ACK || listed(to, n_to, e->sender);
}

/* The position of the first open deadline that the answer meets; -1: none. */
static long first_met(const shub_deadline_t *dl, const shub_id_t *reply_to, const char *from,
                      const char *const *to, size_t n_to)
{
    size_t cursor = 0, pos;
    while (shub_idindex_next(&dl->index, reply_to, &cursor, &pos))
        if (meets(&dl->v[pos], reply_to, from, to, n_to))
            return (long)pos;
    return -1;
}

int shub_deadline_answer(shub_deadline_t *dl, const shub_id_t *reply_to, const char *from,
                         const char *const *to, size_t n_to, int64_t now_ms,
                         shub_deadline_fn *fn, void *ctx)
{
    if (!dl || !reply_to || !from || !fn)
        return SHUB_EINVAL;
    int met = 0;
    size_t cursor = 0, pos;
    while (shub_idindex_next(&dl->index, reply_to, &cursor, &pos)) {
        if (!meets(&dl->v[pos], reply_to, from, to, n_to))
            continue;
        shub_store_deadline_t d = expand(&dl->v[pos]);
        d.answered_ms = now_ms;
        int rc = fn(&d, ctx);
        if (rc)
            return rc < 0 ? rc : -rc;
        met++;
    }
    for (long at; met && (at = first_met(dl, reply_to, from, to, n_to)) >= 0;)
        entry_remove(dl, (size_t)at);
    return met;
}

int shub_deadline_overdue(shub_deadline_t *dl, int64_t now_ms, size_t max,
                          shub_deadline_fn *fn, void *ctx)
{
    if (!dl || !fn)
        return SHUB_EINVAL;
    if (now_ms < dl->next_due)
        return 0;
    int done = 0;
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < dl->n; i++) {
        entry_t *d = &dl->v[i];
        if (d->escalated_ms)
            continue;
        if (d->due_ms > now_ms || (size_t)done >= max) {
            if (d->due_ms < next)
                next = d->due_ms;
            continue;
        }
        shub_store_deadline_t copy = expand(d);
        copy.escalated_ms = now_ms;
        int rc = fn(&copy, ctx);
        if (rc) {
            dl->next_due = now_ms; /* try again at the next check */
            return rc < 0 ? rc : -rc;
        }
        d->escalated_ms = now_ms;
        done++;
    }
    dl->next_due = next;
    return done;
}

size_t shub_deadline_open(const shub_deadline_t *dl)
{
    return dl ? dl->n : 0;
}

size_t shub_deadline_past_due(const shub_deadline_t *dl, int64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; dl && i < dl->n; i++)
        n += dl->v[i].due_ms <= now_ms;
    return n;
}

int64_t shub_deadline_due(int64_t started_ms, uint32_t hours, uint32_t hour_ms)
{
    if (hours == 0)
        return 0;
    uint64_t span = (uint64_t)hours * hour_ms; /* < 2^64: both are 32-bit */
    if (span > (uint64_t)INT64_MAX || started_ms > INT64_MAX - (int64_t)span)
        return INT64_MAX;
    return started_ms + (int64_t)span;
}

const char *shub_deadline_kind_name(int kind)
{
    return kind == SHUB_STORE_DEADLINE_ACK   ? "ack"
           : kind == SHUB_STORE_DEADLINE_ACT ? "act"
                                             : "?";
}

void shub_deadline_explain(const shub_store_deadline_t *d, char *buf, size_t size)
{
    char due[SHUB_TIME_TEXT];
    shub_time_format(d->due_ms, due);
    snprintf(buf, size, "'%s' from %s not %s by %s within %u h (due %s)", d->event_type,
             d->sender,
             d->kind == SHUB_STORE_DEADLINE_ACT ? "answered to its sender" : "answered",
             d->recipient, d->hours, due);
}

static int put_text(shub_arena_t *a, shub_val_t *map, const char *key, const char *text)
{
    shub_val_t v;
    if (!text)
        return 0;
    return shub_val_str(a, text, strlen(text), &v) || shub_val_put(a, map, key, v)
               ? SHUB_ENOMEM
               : 0;
}

int shub_deadline_notice(shub_arena_t *arena, const shub_store_deadline_t *d,
                         const shub_id_t *id, int64_t now_ms, shub_id_t *reply_to,
                         shub_event_t *ev)
{
    char idt[SHUB_ID_TEXT], due[SHUB_TIME_TEXT], line[SHUB_MSG_MAX_LINE];
    shub_val_t pl = shub_val_map();
    if (!arena || !d || !id || !reply_to || !ev)
        return SHUB_EINVAL;
    shub_id_format(&d->event_id, idt);
    shub_time_format(d->due_ms, due);
    shub_deadline_explain(d, line, sizeof line);
    if (put_text(arena, &pl, "event", idt) ||
        put_text(arena, &pl, "event_type", d->event_type) ||
        put_text(arena, &pl, "sender", d->sender) ||
        put_text(arena, &pl, "recipient", d->recipient) ||
        put_text(arena, &pl, "agreement", d->agreement) ||
        put_text(arena, &pl, "flow", d->flow) ||
        put_text(arena, &pl, "deadline", shub_deadline_kind_name(d->kind)) ||
        shub_val_put(arena, &pl, "hours", shub_val_int(d->hours)) ||
        put_text(arena, &pl, "due", due) || put_text(arena, &pl, "summary", line))
        return SHUB_ENOMEM;
    *reply_to = d->event_id;
    *ev = (shub_event_t){
        .id = *id,
        .type = SHUB_DEADLINE_NOTICE_TYPE,
        .occurred_ms = now_ms,
        .area = d->area ? d->area : "none",
        .purpose = SHUB_DEADLINE_PURPOSE,
        .basis = d->agreement,
        .consent = SHUB_CONSENT_NOT_SOUGHT,
        .reply_to = reply_to,
        .payload = pl,
    };
    return 0;
}
