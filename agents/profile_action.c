/*
 * profile_action: what a member agency does with the MARAC actions it owns
 * (profile_internal.h). The same for every kind a MARAC gives actions to
 * (police, local authority, health, IDVA), so it sits beside the profiles
 * rather than in each: shub_profile_receive hands it every marac.action, and
 * shub_profile_tick fires its jobs (codes from PROFILE_SHARED_JOBS up).
 *
 * An action arrives as `open` with its due date. When it arrives, the agency
 * settles when it will be done, by the scenario's fractions: on time
 * (somewhere between arrival and the due date), late (two days to two weeks
 * after it, so the MARAC's overdue reminder comes first), or not within the
 * simulated period. The update, `done`, goes back to the MARAC that raised
 * it, in answer to the action. A MARAC that transfers the case away sends
 * `transferred`: the agency drops the action and sends nothing. A reminder,
 * `overdue`, changes nothing: the work was already planned.
 *
 * Actions are matched by (MARAC, action id), the only key both sides hold:
 * a MARAC cannot name its own event ids (the runtime assigns them).
 */
#include "profile_internal.h"

#include "sharehub/alloc.h"

#include <stdio.h>
#include <string.h>

#define ACTION_ID_CAP 64
#define WORKDAY_END   (17 * MS_HOUR) /* a due date means by the end of that day */

enum { J_UPDATE = PROFILE_SHARED_JOBS + 1 };

typedef struct owned {
    char from[NAME_CAP];    /* the MARAC that raised it */
    char case_ref[REF_CAP]; /* the MARAC's */
    char subject[REF_CAP];
    char area[NAME_CAP];
    char action_id[ACTION_ID_CAP];
    shub_consent_t consent;
    char override[NAME_CAP];
    shub_id_t answers; /* the marac.action */
    bool withdrawn;    /* transferred away: no update */
} owned_t;

typedef struct owned_list {
    owned_t *v;
    size_t n, cap;
} owned_list_t;

static const char *const notes[] = {
    "completed; the outcome is recorded on our case file",
    "done and reviewed with the victim",
    "completed; nothing further needed from us",
    "done; the address flag and safety plan are in place",
};

void shub_profile_action_free(shub_profile_t *p)
{
    owned_list_t *l = p->actions;
    if (l)
        shub_free(l->v);
    shub_free(l);
    p->actions = NULL;
}

static owned_t *find(owned_list_t *l, const char *from, const char *action_id)
{
    for (size_t i = l->n; i-- > 0;)
        if (strcmp(l->v[i].from, from) == 0 && strcmp(l->v[i].action_id, action_id) == 0)
            return &l->v[i];
    return NULL;
}

static int reserve(shub_profile_t *p)
{
    if (!p->actions && !(p->actions = shub_calloc(1, sizeof(owned_list_t))))
        return SHUB_ENOMEM;
    owned_list_t *l = p->actions;
    void *v = l->v;
    int rc = shub_profile_grow(&v, &l->cap, l->n, sizeof *l->v, 32);
    l->v = v;
    return rc;
}

int shub_profile_action_receive(shub_profile_t *p, int64_t now, const char *from,
                                const shub_event_t *ev)
{
    const char *id = shub_val_str_at(&ev->payload, "action_id");
    const char *status = shub_val_str_at(&ev->payload, "status");
    if (!id || !*id || strlen(id) >= ACTION_ID_CAP || !status)
        return 0; /* not an action we can track */
    owned_list_t *l = p->actions;
    owned_t *known = l ? find(l, from, id) : NULL;
    if (strcmp(status, "transferred") == 0) {
        if (known)
            known->withdrawn = true;
        return 0;
    }
    if (strcmp(status, "open") != 0 || known)
        return 0; /* a reminder, or a copy of one we hold */
    int64_t due;
    if (shub_time_parse_date(shub_val_str_at(&ev->payload, "due"), &due, NULL) != 0)
        due = now + 14 * MS_DAY;
    due += WORKDAY_END;
    int rc = reserve(p);
    if (rc == 0)
        rc = shub_profile_reserve(p, 1);
    if (rc)
        return rc;
    l = p->actions;
    owned_t *a = &l->v[l->n];
    memset(a, 0, sizeof *a);
    shub_str_copy(a->from, sizeof a->from, from);
    shub_str_copy(a->case_ref, sizeof a->case_ref, ev->case_ref);
    shub_str_copy(a->subject, sizeof a->subject, ev->subject_ref);
    shub_str_copy(a->area, sizeof a->area, ev->area);
    shub_str_copy(a->action_id, sizeof a->action_id, id);
    a->consent = ev->consent ? ev->consent : SHUB_CONSENT_NOT_SOUGHT;
    shub_str_copy(a->override, sizeof a->override, ev->override);
    a->answers = ev->id;

    rng_t *r = &p->react;
    double u = shub_rng_unit(r);
    int64_t done_at;
    if (u < p->sc.actions.late)
        done_at = due + shub_rng_range(r, 2 * MS_DAY, 14 * MS_DAY);
    else if (u < p->sc.actions.late + p->sc.actions.undone)
        done_at = 0; /* not within the period */
    else
        done_at = now + (int64_t)((double)(due > now ? due - now : MS_HOUR) *
                                  (0.2 + 0.75 * shub_rng_unit(r)));
    size_t idx = l->n++;
    if (done_at)
        return shub_profile_schedule_in_period(p, done_at, J_UPDATE, (uint32_t)idx, 0,
                                               &a->answers);
    return 0;
}

int shub_profile_action_fire(shub_profile_t *p, const job_t *job,
                             shub_profile_emit_fn *emit, void *ctx)
{
    owned_list_t *l = p->actions;
    if (job->what != J_UPDATE || !l || job->ref >= l->n || l->v[job->ref].withdrawn)
        return 0;
    const owned_t *a = &l->v[job->ref];
    pb_t b = {.arena = shub_arena_new(1024)};
    if (!b.arena)
        return SHUB_ENOMEM;
    rng_t r;
    shub_rng_seed(&r, shub_rng_hash(p->seed, a->action_id));
    shub_val_t payload = shub_val_map();
    shub_pb_str(&b, &payload, "case_ref", a->case_ref);
    shub_pb_str(&b, &payload, "action_id", a->action_id);
    shub_pb_str(&b, &payload, "status", "done");
    shub_pb_str(&b, &payload, "note", PICK(&r, notes));
    const char *to[] = {a->from};
    shub_event_t ev = {
        .type = "marac.action.update",
        .occurred_ms = job->due_ms,
        .case_ref = a->case_ref[0] ? a->case_ref : NULL,
        .subject_ref = a->subject[0] ? a->subject : NULL,
        .area = a->area[0] ? a->area : NULL,
        .purpose = "marac-risk-management",
        .basis = "uk-gdpr-6-1-e",
        .consent = a->consent,
        .override = a->override[0] ? a->override : NULL,
        .reply_to = job->has_reply ? &job->reply_to : NULL,
        .payload = payload,
    };
    return shub_profile_emit_built(&b, &ev, to, 1, emit, ctx);
}
