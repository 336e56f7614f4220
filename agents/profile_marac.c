/*
 * profile_marac: a MARAC (multi-agency risk assessment conference) for one
 * area. It originates nothing on its own; everything follows from what it
 * receives:
 *
 *   marac.referral  -> marac.referral.decision to the referrer (reply_to the
 *                      referral) within 40 h, saying whether it is a repeat
 *                      and whether the case is complex; for accepted cases
 *                      an idva.notification to idva@<area> within 48 h of
 *                      the referral, and after the meeting a marac.action to
 *                      each agency that owns an action (<kind>@<area>), a
 *                      reminder (status overdue) the day after one falls due
 *                      undone. Some accepted victims later move: a
 *                      marac.transfer to marac@<new area>, subject.moved_area
 *                      to the partners of the area left (idva, the council
 *                      when there are children, police) and of every area
 *                      that held the case before (idva, council), and a
 *                      marac.action `transferred` for each open action
 *   marac.transfer  -> idva.notification to idva@<area> (the early IDVA
 *                      handover), then marac.transfer.ack (saying whether the
 *                      case is complex), or marac.transfer.request_missing
 *                      when the minutes or the action plan are absent; the
 *                      complete resend that answers the request is
 *                      acknowledged; the open actions it lists are raised
 *                      again with this area's agencies; the victim may move
 *                      on again
 *   marac.transfer.request_missing -> the complete marac.transfer again,
 *                      reply_to the request
 *   marac.transfer.ack -> the transfer is closed; nothing is sent
 *   marac.transfer.escalation -> the acknowledgement again, if the case is
 *                      already acknowledged here
 *   marac.action.update -> the action is done
 *   idva.engagement -> the IDVA's outcome is kept with the case
 *
 * A transfer nobody answers within TRANSFER_ANSWER_HOURS (the transfer
 * flow's ack_within_hours) escalates: a marac.transfer.escalation to the
 * receiving MARAC and a warning in the agent's log. This is the MARAC's own
 * chase, in its profile; the broker's deadline tracking is separate.
 *
 * Repeats follow shub_profile_is_repeat on the person's referral history
 * here: her referrals, and the instants a transfer carried in. A case is
 * complex when three referrals fall within 12 months (the two before this
 * one are both within 12 months of it), or when it arrives by transfer with
 * open actions. A MARAC withdraws its area's share of referrals
 * (withdrawn_by_area) by a running tally started at a random point rather
 * than by a coin per referral: the count it withdraws in a quarter is the
 * rate's, give or take one, as in the board's table.
 *
 * Every roll (decision, move, whether the first transfer lacks its minutes,
 * the actions) is made when the event arrives, and the jobs are queued then;
 * firing only builds and sends. Text that must be the same in a transfer
 * and its resend (the new address, minutes) comes from a generator seeded
 * by the case, not by the moment.
 *
 * A case keeps a copy of the payload it came with (its own arena), because a
 * received event lives only for the call. Cases are matched to requests,
 * acknowledgements and updates by subject reference or action id: the
 * runtime, not the profile, gives our own events their ids, so a reply_to
 * naming one of ours cannot be read back here.
 */
#include "profile_internal.h"

#include "sharehub/alloc.h"
#include "sharehub/log.h"

#include <stdio.h>
#include <string.h>

#define MAX_HELD              8 /* areas a case remembers having been held in */
#define MAX_ACTIONS           3 /* agreed at one meeting */
#define ACTION_ID_CAP         48
#define ACTION_TEXT_CAP       200
#define TRANSFER_ANSWER_HOURS 24 /* wm-marac's transfer flow: ack_within_hours */
/* Jobs one case may queue when it arrives: decision, IDVA, the actions and
 * their reminders, the transfer and a notice per area that held it. */
#define CASE_JOBS (2 + 2 * MAX_ACTIONS + 1 + MAX_HELD + 1)

typedef enum { D_ACCEPTED, D_WITHDRAWN, D_REJECTED } decision_t;
/* A transfer we sent: sent -> (request received -> resend queued -> resent) -> acked. */
typedef enum { OUT_NONE, OUT_SENT, OUT_RESEND_QUEUED, OUT_RESENT, OUT_ACKED } out_state_t;
/* A transfer we received: awaiting the resend, or with our ack queued/sent. */
typedef enum { IN_NONE, IN_AWAIT_RESEND, IN_ACK_QUEUED } in_state_t;
/* An action: agreed, raised with its owner, done, or handed to the next area. */
typedef enum { A_AGREED, A_OPEN, A_DONE, A_TRANSFERRED } action_state_t;

enum {
    J_DECIDE = 1,
    J_IDVA,
    J_TRANSFER,
    J_MOVED,
    J_ACK,
    J_REQUEST,
    J_RESEND,
    J_ACTION,      /* arg: the action */
    J_ACTION_DUE,  /* arg: the action */
    J_ACTION_GONE, /* arg: the action */
    J_CHASE,       /* arg: 1 the first transfer, 2 the resend */
};

typedef struct maction {
    char id[ACTION_ID_CAP];
    char owner[NAME_CAP]; /* an agency kind */
    char text[ACTION_TEXT_CAP];
    int64_t due_ms;
    action_state_t state;
} maction_t;

typedef struct mcase {
    shub_arena_t *arena; /* owns payload */
    shub_val_t payload;  /* the referral or transfer as received */
    bool transferred_in; /* came by marac.transfer */
    char from[NAME_CAP]; /* the referrer or the sending MARAC */
    char subject[REF_CAP];
    char case_ref[40];      /* ours */
    char area[NAME_CAP];    /* where it is heard */
    shub_consent_t consent; /* carried onto everything we send about it */
    char override[NAME_CAP];
    int64_t decided_ms, idva_ms, meeting_ms;
    int64_t last_referral_ms; /* this referral, or the last one a transfer carried */
    int64_t earlier_ms[2];    /* transfer in: the referrals before it; else INT64_MIN */
    int64_t prior_ms;         /* the referral before this one, when a repeat */
    decision_t decision;
    bool repeat; /* within 12 months of the last referral we knew */
    bool complex;
    int dash;
    int64_t move_ms; /* 0: the victim stays */
    char new_area[NAME_CAP];
    bool temporary;  /* a refuge, say */
    bool incomplete; /* the first transfer leaves out minutes and plan */
    out_state_t out;
    in_state_t in;
    bool ask_minutes, ask_plan;
    char held[MAX_HELD][NAME_CAP]; /* areas that held the case before, oldest first */
    size_t n_held;
    maction_t actions[MAX_ACTIONS];
    size_t n_actions;
    char engagement[NAME_CAP]; /* what the IDVA reported, when it has */
} mcase_t;

typedef struct marac {
    mcase_t *cases;
    size_t n, cap;
    uint32_t serial, action_serial;
    double tally; /* withdrawals owed, by the running tally */
} marac_t;

static const char *const withdrawn_reasons[] = {
    "referrer withdrew the referral after reviewing the risk",
    "duplicate of a referral already on the agenda",
    "risk reduced after safety planning; referrer withdrew",
};
static const char *const safe_times[] = {
    "weekdays 09:00-12:00",
    "weekday afternoons while the children are at school",
    "evenings after 19:00, text first",
    "Tuesday and Thursday mornings",
};
/* Who owns an action, and what it is. */
static const struct {
    const char *owner, *text;
} action_kinds[] = {
    {"police", "flag the address for a priority response"},
    {"idva", "agree a safety plan with the victim and review it fortnightly"},
    {"local-authority", "assess the children's needs and share the outcome"},
    {"health", "alert the GP and maternity services; record routine enquiry"},
    {"local-authority", "housing: fit the sanctuary scheme and change the locks"},
};
static const char *const minutes_text[] = {
    "Heard at MARAC; risk confirmed high. Actions agreed with police, IDVA and "
    "children's services; perpetrator on bail with conditions.",
    "Heard at MARAC; escalation noted since the referral. Safety plan reviewed; housing "
    "to consider a move; IDVA to keep weekly contact.",
    "Heard at MARAC; victim engaging with the IDVA. Police to flag the address; health "
    "to share A&E attendances.",
};

static int init(shub_profile_t *p, shub_err_t *err)
{
    (void)err;
    marac_t *st = shub_calloc(1, sizeof(marac_t));
    if (!st)
        return SHUB_ENOMEM;
    st->tally = shub_rng_unit(&p->react); /* where in its cycle the tally starts */
    p->state = st;
    return 0;
}

static void fini(shub_profile_t *p)
{
    marac_t *st = p->state;
    if (st) {
        for (size_t i = 0; i < st->n; i++)
            shub_arena_destroy(&st->cases[i].arena);
        shub_free(st->cases);
    }
    shub_free(st);
    p->state = NULL;
}

/* ---- helpers ----------------------------------------------------------- */

static rng_t case_rng(const shub_profile_t *p, size_t idx, uint64_t salt)
{
    rng_t r;
    shub_rng_seed(&r, shub_rng_mix(p->seed ^ shub_rng_mix(idx * 0x100 + salt)));
    return r;
}

static int reserve_case(marac_t *st)
{
    void *cases = st->cases;
    int rc = shub_profile_grow(&cases, &st->cap, st->n, sizeof *st->cases, 32);
    st->cases = cases;
    return rc;
}

/* The received payload, copied into a fresh arena. */
static int copy_payload(const shub_event_t *ev, shub_arena_t **arena_p, shub_val_t *out)
{
    pb_t b = {.arena = shub_arena_new(2048)};
    if (!b.arena)
        return SHUB_ENOMEM;
    shub_val_t v = ev->payload.type == SHUB_VAL_MAP ? shub_pb_copy(&b, &ev->payload)
                                                    : shub_val_map();
    if (b.rc) {
        shub_arena_destroy(&b.arena);
        return b.rc;
    }
    *arena_p = b.arena;
    *out = v;
    return 0;
}

/* Room for one more case and its jobs, and the event's payload copied into
 * c: what a referral and an unasked-for transfer need before the case starts. */
static int case_room(shub_profile_t *p, const shub_event_t *ev, mcase_t *c)
{
    int rc = reserve_case(p->state);
    if (rc == 0)
        rc = shub_profile_reserve(p, CASE_JOBS);
    if (rc == 0)
        rc = copy_payload(ev, &c->arena, &c->payload);
    return rc;
}

static void case_start(shub_profile_t *p, mcase_t *c, const char *from,
                       const shub_event_t *ev)
{
    marac_t *st = p->state;
    shub_str_copy(c->from, sizeof c->from, from);
    shub_str_copy(c->subject, sizeof c->subject, ev->subject_ref);
    if (shub_profile_serves(p, ev->area) || p->n_areas == 0)
        shub_str_copy(c->area, sizeof c->area, ev->area);
    else
        shub_str_copy(c->area, sizeof c->area, p->areas[0]);
    c->consent = ev->consent ? ev->consent : SHUB_CONSENT_NOT_SOUGHT;
    shub_str_copy(c->override, sizeof c->override, ev->override);
    c->earlier_ms[0] = c->earlier_ms[1] = c->prior_ms = INT64_MIN;
    char code[8];
    shub_profile_area_code(c->area, code);
    snprintf(c->case_ref, sizeof c->case_ref, "MARAC-%s-%02d-%04u", code,
             shub_profile_year2(ev->occurred_ms), ++st->serial);
}

/* The person's latest case here, or NULL. */
static mcase_t *latest_case(marac_t *st, const char *subject)
{
    mcase_t *best = NULL;
    for (size_t i = 0; subject && subject[0] && i < st->n; i++)
        if (strcmp(st->cases[i].subject, subject) == 0 &&
            (!best || st->cases[i].last_referral_ms >= best->last_referral_ms))
            best = &st->cases[i];
    return best;
}

static void keep_latest(int64_t top[3], int64_t t)
{
    if (t == INT64_MIN || t == top[0] || t == top[1] || t == top[2])
        return;
    for (int k = 0; k < 3; k++)
        if (t > top[k]) {
            for (int j = 2; j > k; j--)
                top[j] = top[j - 1];
            top[k] = t;
            return;
        }
}

/* The person's three latest referral instants we know of, newest first
 * (INT64_MIN where there are fewer): her referrals here and what transfers
 * carried in. */
static void history(const marac_t *st, const char *subject, int64_t top[3])
{
    top[0] = top[1] = top[2] = INT64_MIN;
    for (size_t i = 0; subject && subject[0] && i < st->n; i++) {
        const mcase_t *c = &st->cases[i];
        if (strcmp(c->subject, subject) != 0)
            continue;
        keep_latest(top, c->last_referral_ms);
        keep_latest(top, c->earlier_ms[0]);
        keep_latest(top, c->earlier_ms[1]);
    }
}

/* True if any case of the person here has moved away by t, or will. */
static bool moving(const marac_t *st, const char *subject, int64_t by_ms)
{
    for (size_t i = 0; subject && subject[0] && i < st->n; i++)
        if (st->cases[i].move_ms && st->cases[i].move_ms <= by_ms &&
            strcmp(st->cases[i].subject, subject) == 0)
            return true;
    return false;
}

static bool held(const mcase_t *c, const char *area)
{
    for (size_t i = 0; i < c->n_held; i++)
        if (strcmp(c->held[i], area) == 0)
            return true;
    return strcmp(c->area, area) == 0;
}

/* An area outside the partnership (a neighbouring force's MARAC runs this
 * profile too): its partners are not on the hub, so nothing goes to them. */
static bool outside(const shub_profile_t *p, const char *area)
{
    for (size_t e = 0; e < p->sc.marac.external_areas.n; e++)
        if (strcmp(area, p->sc.marac.external_areas.item[e]) == 0)
            return true;
    return false;
}

/* The first MARAC sitting at 10:00 on this area's meeting weekday, at least
 * three days after `ms` (agenda deadline). */
static int64_t next_meeting(const char *area, int64_t ms)
{
    int weekday = (int)(shub_rng_hash(0, area) % 5);
    int64_t day = (ms + 3 * MS_DAY) / MS_DAY;
    while (shub_time_weekday(day * MS_DAY, SHUB_TZ_UTC) != weekday)
        day++;
    return day * MS_DAY + 10 * MS_HOUR;
}

/* An area to move to, by weight, that has not held the case (she moves on,
 * not back) and is not external; false if there is none. */
static bool pick_new_area(shub_profile_t *p, rng_t *r, const mcase_t *c,
                          char out[NAME_CAP])
{
    const sc_weights_t *w = shub_profile_marac_weights(p);
    size_t n = w->n ? w->n : p->n_all_areas;
    double total = 0, cum[SC_MAX_AREAS] = {0};
    for (size_t k = 0; k < n; k++) {
        const char *a = w->n ? w->name[k] : p->all_areas[k];
        bool skip = held(c, a);
        for (size_t e = 0; e < p->sc.marac.external_areas.n; e++)
            skip = skip || strcmp(a, p->sc.marac.external_areas.item[e]) == 0;
        total += skip ? 0 : (w->n ? w->w[k] : 1);
        cum[k] = total;
    }
    double x = shub_rng_unit(r) * total;
    for (size_t k = 0; k < n && total > 0; k++)
        if (x < cum[k]) {
            shub_str_copy(out, NAME_CAP, w->n ? w->name[k] : p->all_areas[k]);
            return true;
        }
    return false;
}

/* Whether and where the victim of case c moves, rolled now: at a time in
 * [from_ms + 2 days, from_ms + 60 days] inside the period. */
static void roll_move(shub_profile_t *p, mcase_t *c, int64_t from_ms)
{
    rng_t *r = &p->react;
    double u = shub_rng_unit(r);
    int64_t move_at = from_ms + shub_rng_range(r, 2 * MS_DAY, 60 * MS_DAY);
    c->temporary = shub_rng_chance(r, 0.3);
    c->incomplete = shub_rng_chance(r, p->sc.marac.missing_minutes);
    bool external = u < p->sc.marac.external_move;
    bool internal = !external && u < p->sc.marac.external_move + p->sc.marac.move;
    const sc_list_t *ext = &p->sc.marac.external_areas;
    if (!p->has_scenario || move_at >= p->sc.end_ms || outside(p, c->area))
        return;
    if (external && ext->n)
        shub_str_copy(c->new_area, sizeof c->new_area,
                      ext->item[shub_rng_below(r, ext->n)]);
    else if (internal)
        pick_new_area(p, r, c, c->new_area);
    if (c->new_area[0])
        c->move_ms = move_at;
}

static int64_t date_or(const char *text, int64_t dflt)
{
    int64_t ms;
    return shub_time_parse_date(text, &ms, NULL) == 0 ? ms : dflt;
}

/* The latest instant of a date's day in London: a transfer that gives only
 * the date of the last referral starts the repeat clock then, so that the
 * missing time of day can only keep a case a repeat, never end it early. */
static int64_t date_end_london(int64_t date_ms)
{
    return shub_time_start_of_day(date_ms + 36 * MS_HOUR, SHUB_TZ_LONDON) - 1;
}

static int64_t instant_or(const char *text, int64_t dflt)
{
    int64_t ms;
    return shub_time_parse(text, &ms, NULL) == 0 ? ms : dflt;
}

/* ---- receiving ---------------------------------------------------------- */

/* The actions agreed for an accepted case at its meeting, with ids and
 * owners; raised after the meeting unless the victim has moved by then. */
static void agree_actions(shub_profile_t *p, mcase_t *c, size_t idx)
{
    marac_t *st = p->state;
    rng_t r = case_rng(p, idx, 3);
    c->n_actions = (size_t)shub_rng_range(&r, 1, MAX_ACTIONS);
    for (size_t k = 0; k < c->n_actions; k++) {
        maction_t *a = &c->actions[k];
        size_t kind =
            (size_t)shub_rng_below(&r, sizeof action_kinds / sizeof action_kinds[0]);
        snprintf(a->id, sizeof a->id, "%s-A%u", c->case_ref, ++st->action_serial);
        shub_str_copy(a->owner, sizeof a->owner, action_kinds[kind].owner);
        shub_str_copy(a->text, sizeof a->text, action_kinds[kind].text);
        a->due_ms = c->meeting_ms + shub_rng_range(&r, 7, 28) * MS_DAY;
        a->state = A_AGREED;
    }
}

static int schedule_actions(shub_profile_t *p, const mcase_t *c, size_t idx, int64_t at)
{
    int rc = 0;
    for (size_t k = 0; k < c->n_actions && rc == 0; k++) {
        if (c->actions[k].state != A_AGREED)
            continue;
        rc = shub_profile_schedule_in_period(p, at + (int64_t)k * MS_MINUTE, J_ACTION,
                                             (uint32_t)idx, (int64_t)k, NULL);
        if (rc == 0)
            rc = shub_profile_schedule_in_period(p, c->actions[k].due_ms + MS_DAY,
                                                 J_ACTION_DUE, (uint32_t)idx, (int64_t)k,
                                                 NULL);
    }
    return rc;
}

static int on_referral(shub_profile_t *p, int64_t now, const char *from,
                       const shub_event_t *ev)
{
    marac_t *st = p->state;
    mcase_t c = {0};
    int rc = case_room(p, ev, &c);
    if (rc)
        return rc;
    int64_t at = ev->occurred_ms > 0 ? ev->occurred_ms : now;
    const char *subject = ev->subject_ref ? ev->subject_ref : "";
    int64_t hist[3];
    history(st, subject, hist);
    const mcase_t *prior = latest_case(st, subject);
    case_start(p, &c, from, ev);
    c.repeat = shub_profile_is_repeat(hist[0], at);
    c.complex = c.repeat && shub_profile_is_repeat(hist[1], at);
    c.prior_ms = hist[0];
    if (prior) { /* the same person: her case's history travels on */
        for (size_t k = 0; k < prior->n_held; k++)
            shub_str_copy(c.held[k], NAME_CAP, prior->held[k]);
        c.n_held = prior->n_held;
        if (c.repeat) /* a repeat is heard as the same case */
            shub_str_copy(c.case_ref, sizeof c.case_ref, prior->case_ref);
    }
    c.last_referral_ms = at;
    c.dash = (int)shub_val_int_at(&c.payload, "risk.dash_score", -1);
    bool meets =
        c.dash >= 14 || c.repeat || shub_val_bool_at(&c.payload, "risk.repeat") ||
        shub_val_array_has(&c.payload, "risk.criteria", "professional_judgement") ||
        shub_val_array_has(&c.payload, "risk.criteria", "escalation") ||
        shub_val_array_has(&c.payload, "risk.criteria", "repeat");

    rng_t *r = &p->react;
    bool withdrawn = false;
    if (meets) {
        st->tally += shub_profile_area_fraction(&p->sc.marac.withdrawn_by_area, c.area,
                                                p->sc.marac.withdrawn);
        withdrawn = st->tally >= 1;
        if (withdrawn)
            st->tally -= 1;
    }
    c.decision = !meets ? D_REJECTED : withdrawn ? D_WITHDRAWN : D_ACCEPTED;
    c.decided_ms = now + shub_rng_range(r, 2 * MS_HOUR, 40 * MS_HOUR);
    c.idva_ms = c.decided_ms + shub_rng_range(r, 15 * MS_MINUTE, 6 * MS_HOUR);
    c.meeting_ms = next_meeting(c.area, c.decided_ms);
    size_t idx = st->n;
    if (c.decision == D_ACCEPTED && !outside(p, c.area)) {
        agree_actions(p, &c, idx);
        if (!moving(st, subject, INT64_MAX)) /* one move at a time */
            roll_move(p, &c, c.decided_ms);
    }

    st->cases[st->n++] = c;
    shub_profile_schedule(p, c.decided_ms, J_DECIDE, (uint32_t)idx, 0, &ev->id);
    if (c.decision == D_ACCEPTED && !outside(p, c.area)) {
        shub_profile_schedule(p, c.idva_ms, J_IDVA, (uint32_t)idx, 0, NULL);
        schedule_actions(p, &c, idx, c.meeting_ms + 2 * MS_HOUR);
    }
    if (c.move_ms) {
        shub_profile_schedule(p, c.move_ms, J_TRANSFER, (uint32_t)idx, 0, NULL);
        for (size_t k = 0; k <= c.n_held; k++)
            shub_profile_schedule(p, c.move_ms, J_MOVED, (uint32_t)idx, (int64_t)k, NULL);
    }
    return 0;
}

static bool has_key(const shub_val_t *payload, const char *key)
{
    return shub_val_get(payload, key) != NULL;
}

/* What a transfer says of the case's past: the repeat clock (the exact
 * instant, or the end of the day when only the date came), the referrals
 * before it, and the areas that held it. */
static void read_history(mcase_t *c, int64_t fallback)
{
    const shub_val_t *pl = &c->payload;
    int64_t date = date_or(shub_val_str_at(pl, "last_referral_date"), INT64_MIN);
    c->last_referral_ms =
        instant_or(shub_val_str_at(pl, "last_referral_at"),
                   date != INT64_MIN ? date_end_london(date) : fallback);
    const shub_val_t *earlier = shub_val_get(pl, "earlier_referrals_at");
    for (uint32_t k = 0;
         earlier && earlier->type == SHUB_VAL_ARRAY && k < earlier->len && k < 2; k++) {
        const shub_val_t *v = &earlier->as.items[k];
        c->earlier_ms[k] =
            v->type == SHUB_VAL_STR ? instant_or(v->as.str, INT64_MIN) : INT64_MIN;
    }
    const shub_val_t *areas = shub_val_get(pl, "held_in");
    c->n_held = 0;
    for (uint32_t k = 0; areas && areas->type == SHUB_VAL_ARRAY && k < areas->len; k++) {
        const shub_val_t *v = &areas->as.items[k];
        if (v->type != SHUB_VAL_STR || !shub_is_name(v->as.str) ||
            strlen(v->as.str) >= NAME_CAP || held(c, v->as.str))
            continue;
        if (c->n_held == MAX_HELD) /* keep the latest */
            memmove(c->held[0], c->held[1], (MAX_HELD - 1) * NAME_CAP);
        else
            c->n_held++;
        shub_str_copy(c->held[c->n_held - 1], NAME_CAP, v->as.str);
    }
}

/* The open actions a complete transfer lists, to raise with our agencies. */
static void take_actions(mcase_t *c, int64_t now)
{
    const shub_val_t *plan = shub_val_get(&c->payload, "action_plan");
    c->n_actions = 0;
    for (uint32_t k = 0; plan && plan->type == SHUB_VAL_ARRAY && k < plan->len &&
                         c->n_actions < MAX_ACTIONS;
         k++) {
        const shub_val_t *item = &plan->as.items[k];
        const char *id = shub_val_str_at(item, "action_id");
        const char *owner = shub_val_str_at(item, "owner");
        const char *status = shub_val_str_at(item, "status");
        if (!id || !owner || !shub_is_name(owner) || strlen(owner) >= NAME_CAP ||
            strlen(id) >= ACTION_ID_CAP || !status || strcmp(status, "open") != 0)
            continue;
        maction_t *a = &c->actions[c->n_actions++];
        shub_str_copy(a->id, sizeof a->id, id);
        shub_str_copy(a->owner, sizeof a->owner, owner);
        const char *text = shub_val_str_at(item, "description");
        shub_str_copy(a->text, sizeof a->text,
                      text && strlen(text) < sizeof a->text
                          ? text
                          : "as in the action plan transferred with the case");
        a->due_ms = date_or(shub_val_str_at(item, "due"), INT64_MIN);
        if (a->due_ms < now + 7 * MS_DAY) /* reviewed afresh here */
            a->due_ms = now + 7 * MS_DAY;
        a->state = A_AGREED;
    }
}

/* A complete transfer has arrived: decide the ack, and what follows it. */
static int accept_transfer(shub_profile_t *p, mcase_t *c, size_t idx, int64_t now,
                           const shub_id_t *answering)
{
    rng_t *r = &p->react;
    if (!outside(p, c->area))
        take_actions(c, now);
    int64_t hist[3] = {c->last_referral_ms, c->earlier_ms[0], c->earlier_ms[1]};
    c->complex = shub_val_int_at(&c->payload, "open_actions", 0) > 0 ||
                 c->n_actions > 0 ||
                 (hist[2] != INT64_MIN && shub_profile_is_repeat(hist[2], hist[0]));
    c->in = IN_ACK_QUEUED;
    int64_t ack_at = now + shub_rng_range(r, 15 * MS_MINUTE, 4 * MS_HOUR);
    int rc = shub_profile_schedule(p, ack_at, J_ACK, (uint32_t)idx, 0, answering);
    if (rc == 0)
        rc = schedule_actions(p, c, idx, ack_at + MS_HOUR);
    if (rc == 0 && !c->move_ms) {
        roll_move(p, c, now);
        if (c->move_ms) {
            rc = shub_profile_schedule(p, c->move_ms, J_TRANSFER, (uint32_t)idx, 0, NULL);
            for (size_t k = 0; k <= c->n_held && rc == 0; k++)
                rc = shub_profile_schedule(p, c->move_ms, J_MOVED, (uint32_t)idx,
                                           (int64_t)k, NULL);
        }
    }
    return rc;
}

static mcase_t *find_case(marac_t *st, const char *subject, bool transferred_in,
                          int state)
{
    for (size_t i = st->n; subject && subject[0] && i-- > 0;) {
        mcase_t *c = &st->cases[i];
        if (c->transferred_in == transferred_in && strcmp(c->subject, subject) == 0 &&
            (transferred_in ? (int)c->in : (int)c->out) == state)
            return c;
    }
    return NULL;
}

static int on_transfer(shub_profile_t *p, int64_t now, const char *from,
                       const shub_event_t *ev)
{
    marac_t *st = p->state;
    rng_t *r = &p->react;
    mcase_t *waiting =
        ev->reply_to ? find_case(st, ev->subject_ref, true, IN_AWAIT_RESEND) : NULL;
    if (waiting && strcmp(waiting->from, from) == 0) { /* the resend we asked for */
        shub_arena_t *arena = NULL;
        shub_val_t payload;
        int rc = shub_profile_reserve(p, CASE_JOBS);
        if (rc == 0)
            rc = copy_payload(ev, &arena, &payload);
        if (rc)
            return rc;
        shub_arena_destroy(&waiting->arena);
        waiting->arena = arena;
        waiting->payload = payload;
        read_history(waiting, waiting->last_referral_ms);
        return accept_transfer(p, waiting, (size_t)(waiting - st->cases), now, &ev->id);
    }

    if (ev->reply_to && ev->subject_ref)
        for (size_t i = 0; i < st->n; i++)
            if (st->cases[i].transferred_in && strcmp(st->cases[i].from, from) == 0 &&
                strcmp(st->cases[i].subject, ev->subject_ref) == 0)
                return 0; /* a resend we did not ask for, or a late copy: known case */

    mcase_t c = {0};
    int rc = case_room(p, ev, &c);
    if (rc)
        return rc;
    case_start(p, &c, from, ev);
    c.transferred_in = true;
    c.decision = D_ACCEPTED;
    read_history(&c, ev->occurred_ms > 0 ? ev->occurred_ms : now);
    c.dash = (int)shub_val_int_at(&c.payload, "risk.dash_score", -1);
    bool heard = shub_val_bool_at(&c.payload, "heard_at_origin");
    c.ask_minutes = !has_key(&c.payload, "minutes") ||
                    (heard && shub_val_array_len(&c.payload, "minutes") == 0);
    c.ask_plan = !has_key(&c.payload, "action_plan");
    c.idva_ms = now + shub_rng_range(r, 10 * MS_MINUTE, 2 * MS_HOUR);
    c.meeting_ms = next_meeting(c.area, now);

    size_t idx = st->n;
    st->cases[st->n++] = c;
    mcase_t *in = &st->cases[idx];
    if (!outside(p, in->area))
        shub_profile_schedule(p, in->idva_ms, J_IDVA, (uint32_t)idx, 0, NULL);
    if (in->ask_minutes || in->ask_plan) {
        in->in = IN_AWAIT_RESEND;
        return shub_profile_schedule(p,
                                     now + shub_rng_range(r, 30 * MS_MINUTE, 4 * MS_HOUR),
                                     J_REQUEST, (uint32_t)idx, 0, &ev->id);
    }
    return accept_transfer(p, in, idx, now, &ev->id);
}

/* The case of ours the person's transfer went out from, waiting in `state`. */
static mcase_t *outgoing(marac_t *st, const char *subject, out_state_t state)
{
    for (size_t i = st->n; subject && subject[0] && i-- > 0;)
        if (st->cases[i].out == state && strcmp(st->cases[i].subject, subject) == 0)
            return &st->cases[i];
    return NULL;
}

static int on_request_missing(shub_profile_t *p, int64_t now, const shub_event_t *ev)
{
    marac_t *st = p->state;
    mcase_t *c = outgoing(st, ev->subject_ref, OUT_SENT);
    if (!c)
        return 0; /* not ours, or already answered: nothing to resend */
    int rc = shub_profile_reserve(p, 1);
    if (rc)
        return rc;
    c->out = OUT_RESEND_QUEUED;
    shub_profile_schedule(p,
                          now + shub_rng_range(&p->react, 30 * MS_MINUTE, 12 * MS_HOUR),
                          J_RESEND, (uint32_t)(c - st->cases), 0, &ev->id);
    return 0;
}

static int on_ack(shub_profile_t *p, const shub_event_t *ev)
{
    marac_t *st = p->state;
    mcase_t *c = outgoing(st, ev->subject_ref, OUT_RESENT);
    if (!c)
        c = outgoing(st, ev->subject_ref, OUT_SENT);
    if (c)
        c->out = OUT_ACKED;
    return 0;
}

/* A sender chasing a transfer: acknowledge again what we have acknowledged. */
static int on_escalation(shub_profile_t *p, int64_t now, const char *from,
                         const shub_event_t *ev)
{
    marac_t *st = p->state;
    for (size_t i = st->n; ev->subject_ref && i-- > 0;) {
        mcase_t *c = &st->cases[i];
        if (!c->transferred_in || strcmp(c->from, from) != 0 ||
            strcmp(c->subject, ev->subject_ref) != 0)
            continue;
        if (c->in != IN_NONE)
            return 0; /* our answer is on its way */
        int rc = shub_profile_reserve(p, 1);
        if (rc)
            return rc;
        return shub_profile_schedule(
            p, now + shub_rng_range(&p->react, 15 * MS_MINUTE, 2 * MS_HOUR), J_ACK,
            (uint32_t)i, 0, &ev->id);
    }
    shub_warn("transfer escalation from=%s for a case this MARAC does not hold", from);
    return 0;
}

static int on_action_update(shub_profile_t *p, const shub_event_t *ev)
{
    marac_t *st = p->state;
    const char *id = shub_val_str_at(&ev->payload, "action_id");
    const char *status = shub_val_str_at(&ev->payload, "status");
    if (!id || !status || strcmp(status, "done") != 0)
        return 0;
    for (size_t i = st->n; i-- > 0;)
        for (size_t k = 0; k < st->cases[i].n_actions; k++) {
            maction_t *a = &st->cases[i].actions[k];
            if (strcmp(a->id, id) == 0 && a->state == A_OPEN) {
                a->state = A_DONE;
                return 0;
            }
        }
    return 0;
}

static int on_engagement(shub_profile_t *p, const shub_event_t *ev)
{
    mcase_t *c = latest_case(p->state, ev->subject_ref);
    const char *outcome = shub_val_str_at(&ev->payload, "outcome");
    if (c && outcome && shub_is_name(outcome))
        shub_str_copy(c->engagement, sizeof c->engagement, outcome);
    return 0;
}

static int receive(shub_profile_t *p, int64_t now, const char *from,
                   const shub_event_t *ev)
{
    if (strcmp(ev->type, "marac.referral") == 0)
        return on_referral(p, now, from, ev);
    if (strcmp(ev->type, "marac.transfer") == 0)
        return on_transfer(p, now, from, ev);
    if (strcmp(ev->type, "marac.transfer.request_missing") == 0)
        return on_request_missing(p, now, ev);
    if (strcmp(ev->type, "marac.transfer.ack") == 0)
        return on_ack(p, ev);
    if (strcmp(ev->type, "marac.transfer.escalation") == 0)
        return on_escalation(p, now, from, ev);
    if (strcmp(ev->type, "marac.action.update") == 0)
        return on_action_update(p, ev);
    if (strcmp(ev->type, "idva.engagement") == 0)
        return on_engagement(p, ev);
    return 0;
}

/* ---- firing ------------------------------------------------------------ */

static shub_val_t decision_payload(pb_t *b, const mcase_t *c)
{
    static const char *const names[] = {"accepted", "withdrawn", "rejected"};
    shub_val_t pl = shub_val_map();
    char date[SHUB_TIME_DATE_TEXT], meeting[SHUB_TIME_DATE_TEXT];
    shub_pb_str(b, &pl, "decision", names[c->decision]);
    if (c->decision == D_WITHDRAWN) {
        rng_t r;
        shub_rng_seed(&r, shub_rng_hash(0, c->case_ref));
        shub_pb_str(b, &pl, "reason", PICK(&r, withdrawn_reasons));
    } else if (c->decision == D_REJECTED) {
        char score[24] = "no DASH score";
        if (c->dash >= 0)
            snprintf(score, sizeof score, "DASH %d", c->dash);
        shub_pb_strf(b, &pl, "reason",
                     "does not meet the MARAC threshold: %s and no other criterion",
                     score);
    } else if (c->repeat) {
        shub_time_format_date(c->prior_ms, date);
        shub_pb_strf(b, &pl, "reason", "repeat: referred again within 12 months of %s",
                     date);
    } else if (c->dash >= 14) {
        shub_pb_strf(b, &pl, "reason", "high risk: DASH %d", c->dash);
    } else {
        shub_pb_str(b, &pl, "reason", "professional judgement or escalation");
    }
    shub_pb_str(b, &pl, "case_ref", c->case_ref);
    if (c->decision == D_ACCEPTED) {
        shub_time_format_date(c->meeting_ms, meeting);
        shub_pb_str(b, &pl, "meeting_date", meeting);
    }
    shub_pb_bool(b, &pl, "repeat", c->repeat);
    shub_pb_bool(b, &pl, "complex", c->decision == D_ACCEPTED && c->complex);
    return pl;
}

static shub_val_t idva_payload(pb_t *b, const shub_profile_t *p, size_t idx,
                               const mcase_t *c)
{
    rng_t r = case_rng(p, idx, 1);
    shub_val_t pl = shub_val_map(), victim = shub_val_map(), risk = shub_val_map();
    shub_pb_str(b, &pl, "case_ref", c->case_ref);
    shub_pb_str(b, &victim, "name", shub_val_str_at(&c->payload, "victim.name"));
    shub_pb_str(b, &victim, "phone", shub_val_str_at(&c->payload, "victim.phone"));
    if (shub_val_str_at(&c->payload, "victim.safe_contact"))
        shub_pb_str(b, &victim, "safe_contact",
                    shub_val_str_at(&c->payload, "victim.safe_contact"));
    shub_pb_str(b, &victim, "safe_times", PICK(&r, safe_times));
    shub_pb_put(b, &pl, "victim", victim);
    if (c->dash >= 0)
        shub_pb_int(b, &risk, "dash_score", c->dash);
    if (c->transferred_in)
        shub_pb_strf(b, &risk, "summary",
                     "transferred in from %s; DASH %d at the last assessment", c->from,
                     c->dash);
    else
        shub_pb_strf(b, &risk, "summary", "%s; DASH %d%s",
                     c->dash >= 14 ? "high risk" : "below 14, referred on other criteria",
                     c->dash, c->repeat ? "; repeat within 12 months" : "");
    shub_pb_put(b, &pl, "risk", risk);
    return pl;
}

static void put_time(pb_t *b, shub_val_t *map, const char *key, int64_t ms)
{
    char t[SHUB_TIME_TEXT];
    shub_pb_str(b, map, key, shub_time_format(ms, t));
}

/* The transfer of case idx; complete or without minutes and action plan.
 * The case generator makes the first send and the resend agree; the action
 * plan is every action agreed for the person here, as it stands. */
static shub_val_t transfer_payload(pb_t *b, const shub_profile_t *p, size_t idx,
                                   const mcase_t *c, bool complete)
{
    const marac_t *st = p->state;
    rng_t r = case_rng(p, idx, 2);
    shub_val_t pl = shub_val_map(), move = shub_val_map(), addr = shub_val_map();
    char date[SHUB_TIME_DATE_TEXT], line1[64], postcode[12];
    shub_time_format_date(c->move_ms, date);
    shub_profile_address_make(&r, c->new_area, line1, postcode);
    shub_pb_str(b, &move, "date", date);
    shub_pb_bool(b, &move, "temporary", c->temporary);
    shub_pb_str(b, &move, "new_area", c->new_area);
    shub_pb_str(b, &addr, "line1", c->temporary ? "refuge (address withheld)" : line1);
    shub_pb_str(b, &addr, "postcode", postcode);
    shub_pb_put(b, &move, "new_address", addr);
    shub_pb_put(b, &pl, "move", move);
    bool heard = c->move_ms >= c->meeting_ms;
    shub_pb_bool(b, &pl, "heard_at_origin", heard);
    int64_t hist[3];
    history(st, c->subject, hist);
    if (hist[0] == INT64_MIN)
        hist[0] = c->last_referral_ms;
    shub_time_format_date(hist[0], date);
    shub_pb_str(b, &pl, "last_referral_date", date);
    put_time(b, &pl, "last_referral_at", hist[0]);
    shub_val_t earlier = shub_val_array();
    for (int k = 1; k < 3; k++)
        if (hist[k] != INT64_MIN && shub_profile_is_repeat(hist[k], hist[0])) {
            char t[SHUB_TIME_TEXT];
            shub_pb_push_str(b, &earlier, shub_time_format(hist[k], t));
        }
    shub_pb_put(b, &pl, "earlier_referrals_at", earlier);
    shub_val_t areas = shub_val_array();
    for (size_t k = 0; k < c->n_held; k++)
        shub_pb_push_str(b, &areas, c->held[k]);
    shub_pb_push_str(b, &areas, c->area);
    shub_pb_put(b, &pl, "held_in", areas);

    shub_val_t minutes = shub_val_array(), plan = shub_val_array();
    int open = 0;
    const char *text = PICK(&r, minutes_text);
    if (heard) {
        shub_val_t m = shub_val_map();
        shub_time_format_date(c->meeting_ms, date);
        shub_pb_str(b, &m, "meeting_date", date);
        shub_pb_str(b, &m, "text", text);
        shub_pb_push(b, &minutes, m);
    }
    for (size_t i = 0; i < st->n; i++) {
        const mcase_t *o = &st->cases[i];
        if (strcmp(o->subject, c->subject) != 0 || (o != c && !c->subject[0]))
            continue;
        for (size_t k = 0; k < o->n_actions; k++) {
            const maction_t *a = &o->actions[k];
            if (!o->transferred_in && o->meeting_ms > c->move_ms)
                continue; /* no meeting before the move: nothing agreed */
            bool done = a->state == A_DONE;
            open += !done;
            shub_val_t item = shub_val_map();
            shub_pb_str(b, &item, "action_id", a->id);
            shub_pb_str(b, &item, "owner", a->owner);
            shub_time_format_date(a->due_ms, date);
            shub_pb_str(b, &item, "due", date);
            shub_pb_str(b, &item, "status", done ? "done" : "open");
            shub_pb_str(b, &item, "description", a->text);
            shub_pb_push(b, &plan, item);
        }
    }
    if (complete) {
        shub_pb_put(b, &pl, "minutes", minutes);
        shub_pb_put(b, &pl, "action_plan", plan);
    }
    shub_pb_int(b, &pl, "open_actions", open);

    shub_val_t victim = shub_val_map(), risk = shub_val_map(),
               children = shub_val_array();
    shub_pb_str(b, &victim, "name", shub_val_str_at(&c->payload, "victim.name"));
    if (shub_val_str_at(&c->payload, "victim.dob"))
        shub_pb_str(b, &victim, "dob", shub_val_str_at(&c->payload, "victim.dob"));
    shub_pb_str(b, &victim, "phone", shub_val_str_at(&c->payload, "victim.phone"));
    shub_pb_put(b, &pl, "victim", victim);
    if (c->dash >= 0)
        shub_pb_int(b, &risk, "dash_score", c->dash);
    shub_pb_put(b, &pl, "risk", risk);
    const shub_val_t *kids = shub_val_get(&c->payload, "children");
    for (uint32_t k = 0; kids && kids->type == SHUB_VAL_ARRAY && k < kids->len; k++) {
        shub_val_t child = shub_val_map();
        shub_pb_str(b, &child, "name", shub_val_str_at(&kids->as.items[k], "name"));
        shub_pb_str(b, &child, "dob", shub_val_str_at(&kids->as.items[k], "dob"));
        shub_pb_push(b, &children, child);
    }
    shub_pb_put(b, &pl, "children", children);
    return pl;
}

static shub_val_t ack_payload(pb_t *b, const mcase_t *c)
{
    static const char *const items[] = {
        "move",
        "heard_at_origin",
        "last_referral_date",
        "last_referral_at",
        "earlier_referrals_at",
        "held_in",
        "minutes",
        "action_plan",
        "open_actions",
        "victim",
        "risk",
        "children",
    };
    shub_val_t pl = shub_val_map(), got = shub_val_array();
    shub_pb_str(b, &pl, "new_case_ref", c->case_ref);
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        if (has_key(&c->payload, items[i]))
            shub_pb_push_str(b, &got, items[i]);
    shub_pb_put(b, &pl, "received_items", got);
    shub_pb_bool(b, &pl, "complex", c->complex);
    return pl;
}

static shub_val_t request_payload(pb_t *b, const mcase_t *c)
{
    shub_val_t pl = shub_val_map(), missing = shub_val_array();
    if (c->ask_minutes)
        shub_pb_push_str(b, &missing, "minutes");
    if (c->ask_plan)
        shub_pb_push_str(b, &missing, "action_plan");
    shub_pb_put(b, &pl, "missing", missing);
    return pl;
}

static shub_val_t action_payload(pb_t *b, const mcase_t *c, const maction_t *a,
                                 const char *status)
{
    char date[SHUB_TIME_DATE_TEXT];
    shub_val_t pl = shub_val_map();
    shub_pb_str(b, &pl, "case_ref", c->case_ref);
    shub_pb_str(b, &pl, "action_id", a->id);
    shub_pb_str(b, &pl, "owner", a->owner);
    shub_time_format_date(a->due_ms, date);
    shub_pb_str(b, &pl, "due", date);
    shub_pb_str(b, &pl, "status", status);
    shub_pb_str(b, &pl, "description", a->text);
    return pl;
}

/* Whether job `what` still has something to send for case c. */
static bool still_due(const marac_t *st, const mcase_t *c, const job_t *job)
{
    const maction_t *a =
        job->arg >= 0 && (size_t)job->arg < c->n_actions ? &c->actions[job->arg] : NULL;
    switch (job->what) {
    case J_ACTION: /* not once she has moved away: the next area raises it */
        return a && a->state == A_AGREED && !moving(st, c->subject, job->due_ms);
    case J_ACTION_DUE:
        return a && a->state == A_OPEN;
    case J_ACTION_GONE:
        return a && a->state == A_OPEN;
    case J_CHASE:
        return c->out == (job->arg == 1 ? OUT_SENT : OUT_RESENT);
    case J_MOVED:
        return job->arg == 0 || ((size_t)job->arg <= c->n_held &&
                                 strcmp(c->held[job->arg - 1], c->area) != 0 &&
                                 strcmp(c->held[job->arg - 1], c->new_area) != 0);
    default:
        return true;
    }
}

/* After a transfer has gone: its chase, and every open action of the
 * person here handed over (one job each, as each sends one share). */
static void after_transfer(shub_profile_t *p, mcase_t *c, size_t idx, int64_t at,
                           int64_t send)
{
    marac_t *st = p->state;
    (void)shub_profile_schedule_in_period(p, at + TRANSFER_ANSWER_HOURS * MS_HOUR,
                                          J_CHASE, (uint32_t)idx, send, NULL);
    if (send != 1)
        return;
    for (size_t i = 0; i < st->n; i++) {
        mcase_t *o = &st->cases[i];
        if (strcmp(o->subject, c->subject) != 0)
            continue;
        for (size_t k = 0; k < o->n_actions; k++)
            if (o->actions[k].state == A_OPEN)
                (void)shub_profile_schedule(p, at + MS_MINUTE, J_ACTION_GONE, (uint32_t)i,
                                            (int64_t)k, NULL);
    }
}

/* Jobs the actions handed over will need (room made before the emit). */
static size_t open_actions_of(const marac_t *st, const char *subject)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->cases[i].subject, subject) == 0)
            for (size_t k = 0; k < st->cases[i].n_actions; k++)
                n += st->cases[i].actions[k].state == A_OPEN;
    return n;
}

static int fire(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                void *ctx)
{
    marac_t *st = p->state;
    if (job->ref >= st->n)
        return 0;
    mcase_t *c = &st->cases[job->ref];
    if (!still_due(st, c, job))
        return 0;
    int rc = 0;
    if (job->what == J_TRANSFER)
        rc = shub_profile_reserve(p, 1 + open_actions_of(st, c->subject));
    if (rc)
        return rc;
    pb_t b = {.arena = shub_arena_new(4096)};
    if (!b.arena)
        return SHUB_ENOMEM;
    char sel[3][2 * NAME_CAP + 2]; /* "kind@area" */
    const char *to[3] = {sel[0], sel[1], sel[2]};
    uint32_t n_to = 1;
    shub_event_t ev = {
        .occurred_ms = job->due_ms,
        .case_ref = c->case_ref,
        .subject_ref = c->subject[0] ? c->subject : NULL,
        .area = c->area,
        .purpose = "marac-risk-management",
        .basis = "uk-gdpr-6-1-e",
        .consent = c->consent,
        .override = c->override[0] ? c->override : NULL,
        .reply_to = job->has_reply ? &job->reply_to : NULL,
    };
    const maction_t *a =
        job->arg >= 0 && (size_t)job->arg < c->n_actions ? &c->actions[job->arg] : NULL;
    switch (job->what) {
    case J_DECIDE:
        ev.type = "marac.referral.decision";
        ev.payload = decision_payload(&b, c);
        to[0] = c->from;
        break;
    case J_IDVA:
        ev.type = "idva.notification";
        ev.payload = idva_payload(&b, p, job->ref, c);
        snprintf(sel[0], sizeof sel[0], "idva@%s", c->area);
        break;
    case J_TRANSFER:
    case J_RESEND:
        ev.type = "marac.transfer";
        ev.area = c->new_area;
        ev.payload =
            transfer_payload(&b, p, job->ref, c, job->what == J_RESEND || !c->incomplete);
        snprintf(sel[0], sizeof sel[0], "marac@%s", c->new_area);
        break;
    case J_MOVED: {
        /* arg 0: the area just left (police told where she went, which the
         * agreement strips from the others' copies); arg k: an area that
         * held the case before, which hears that she has moved on again. */
        const char *area = job->arg == 0 ? c->area : c->held[job->arg - 1];
        char date[SHUB_TIME_DATE_TEXT];
        ev.type = "subject.moved_area";
        ev.case_ref = NULL; /* that the person left, and nothing about the case */
        ev.area = area;
        ev.payload = shub_val_map();
        shub_time_format_date(c->move_ms, date);
        shub_pb_str(&b, &ev.payload, "left_area", c->area);
        shub_pb_str(&b, &ev.payload, "date", date);
        shub_pb_str(&b, &ev.payload, "new_area", c->new_area);
        snprintf(sel[0], sizeof sel[0], "idva@%s", area);
        if (job->arg == 0)
            snprintf(sel[n_to++], sizeof sel[0], "police@%s", area);
        if (shub_val_array_len(&c->payload, "children"))
            snprintf(sel[n_to++], sizeof sel[0], "local-authority@%s", area);
        break;
    }
    case J_ACK:
        ev.type = "marac.transfer.ack";
        ev.payload = ack_payload(&b, c);
        to[0] = c->from;
        break;
    case J_REQUEST:
        ev.type = "marac.transfer.request_missing";
        ev.payload = request_payload(&b, c);
        to[0] = c->from;
        break;
    case J_ACTION:
    case J_ACTION_DUE:
    case J_ACTION_GONE:
        ev.type = "marac.action";
        ev.payload = action_payload(&b, c, a,
                                    job->what == J_ACTION       ? "open"
                                    : job->what == J_ACTION_DUE ? "overdue"
                                                                : "transferred");
        snprintf(sel[0], sizeof sel[0], "%s@%s", a->owner, c->area);
        break;
    case J_CHASE: {
        int64_t sent = job->due_ms - TRANSFER_ANSWER_HOURS * MS_HOUR;
        ev.type = "marac.transfer.escalation";
        ev.area = c->new_area;
        ev.payload = shub_val_map();
        put_time(&b, &ev.payload, "waiting_since", sent);
        shub_pb_int(&b, &ev.payload, "hours_waiting", TRANSFER_ANSWER_HOURS);
        snprintf(sel[0], sizeof sel[0], "marac@%s", c->new_area);
        break;
    }
    default:
        shub_arena_destroy(&b.arena);
        return 0;
    }
    rc = b.rc ? b.rc : shub_profile_emit(emit, ctx, &ev, to, n_to);
    shub_arena_destroy(&b.arena);
    if (rc)
        return rc;
    switch (job->what) {
    case J_TRANSFER:
        c->out = OUT_SENT;
        after_transfer(p, c, job->ref, job->due_ms, 1);
        for (size_t i = 0; i < st->n; i++) /* the next area raises them now */
            if (strcmp(st->cases[i].subject, c->subject) == 0)
                for (size_t k = 0; k < st->cases[i].n_actions; k++)
                    if (st->cases[i].actions[k].state == A_AGREED)
                        st->cases[i].actions[k].state = A_TRANSFERRED;
        break;
    case J_RESEND:
        c->out = OUT_RESENT;
        after_transfer(p, c, job->ref, job->due_ms, 2);
        break;
    case J_ACK:
        c->in = IN_NONE;
        break;
    case J_ACTION:
        c->actions[job->arg].state = A_OPEN;
        break;
    case J_ACTION_GONE:
        c->actions[job->arg].state = A_TRANSFERRED;
        break;
    case J_CHASE:
        shub_warn("transfer unanswered case=%s to=marac@%s after %d h: escalated",
                  c->case_ref, c->new_area, TRANSFER_ANSWER_HOURS);
        break;
    default:
        break;
    }
    return 0;
}

const profile_ops_t shub_profile_marac_ops = {
    .kind = "marac",
    .init = init,
    .fini = fini,
    .fire = fire,
    .receive = receive,
};
