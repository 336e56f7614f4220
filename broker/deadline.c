/*
 * deadline: the open deadlines of allowed shares (include/sharehub/deadline.h).
 * One array, unordered, with the earliest due time of those not yet
 * escalated cached so that the once-a-second overdue check costs nothing
 * until something can be due. Closing a deadline swaps the last entry into
 * its place.
 */
#include "sharehub/deadline.h"

#include "sharehub/alloc.h"
#include "sharehub/time.h"
#include "sharehub/val.h"

#include <stdio.h>

#include <string.h>

struct shub_deadline {
    shub_store_deadline_t *v; /* open deadlines */
    size_t n, cap;
    int64_t next_due; /* earliest due_ms among the unescalated; INT64_MAX: none */
};

shub_deadline_t *shub_deadline_new(void)
{
    shub_deadline_t *dl = shub_calloc(1, sizeof *dl);
    if (dl)
        dl->next_due = INT64_MAX;
    return dl;
}

void shub_deadline_destroy(shub_deadline_t **dl_p)
{
    shub_deadline_t *dl = dl_p ? *dl_p : NULL;
    if (!dl)
        return;
    shub_free(dl->v);
    shub_free(dl);
    *dl_p = NULL;
}

void shub_deadline_clear(shub_deadline_t *dl)
{
    if (!dl)
        return;
    dl->n = 0;
    dl->next_due = INT64_MAX;
}

int shub_deadline_add(shub_deadline_t *dl, const shub_store_deadline_t *d)
{
    if (!dl || !d || !d->recipient || !d->sender)
        return SHUB_EINVAL;
    if (d->answered_ms)
        return 0;
    if (dl->n >= SHUB_DEADLINE_MAX_OPEN)
        return SHUB_ELIMIT;
    if (shub_grow((void **)&dl->v, &dl->cap, dl->n + 1, sizeof *dl->v))
        return SHUB_ENOMEM;
    dl->v[dl->n++] = *d;
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

static bool meets(const shub_store_deadline_t *d, const shub_id_t *reply_to,
                  const char *from, const char *const *to, size_t n_to)
{
    if (memcmp(d->event_id.bytes, reply_to->bytes, SHUB_ID_SIZE) != 0 ||
        strcmp(d->recipient, from) != 0)
        return false;
    return d->kind == SHUB_STORE_DEADLINE_ACK || listed(to, n_to, d->sender);
}

int shub_deadline_answer(shub_deadline_t *dl, const shub_id_t *reply_to, const char *from,
                         const char *const *to, size_t n_to, int64_t now_ms,
                         shub_deadline_fn *fn, void *ctx)
{
    if (!dl || !reply_to || !from || !fn)
        return SHUB_EINVAL;
    int met = 0;
    for (size_t i = 0; i < dl->n; i++) {
        if (!meets(&dl->v[i], reply_to, from, to, n_to))
            continue;
        shub_store_deadline_t d = dl->v[i];
        d.answered_ms = now_ms;
        int rc = fn(&d, ctx);
        if (rc)
            return rc < 0 ? rc : -rc;
        met++;
    }
    for (size_t i = 0; met && i < dl->n;) {
        if (meets(&dl->v[i], reply_to, from, to, n_to))
            dl->v[i] = dl->v[--dl->n];
        else
            i++;
    }
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
        shub_store_deadline_t *d = &dl->v[i];
        if (d->escalated_ms)
            continue;
        if (d->due_ms > now_ms || (size_t)done >= max) {
            if (d->due_ms < next)
                next = d->due_ms;
            continue;
        }
        shub_store_deadline_t copy = *d;
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
