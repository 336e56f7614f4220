/*
 * profile: the part every organisation profile shares (include/sharehub/profile.h).
 *
 * shub_profile_new picks the kind's implementation (a small vtable, see
 * profile_internal.h), copies the organisation and the scenario, and seeds
 * the generators; tick pops due jobs from the schedule and lets the kind fire
 * them one share at a time; receive hands events to the kind, which only
 * records and schedules. The helpers below (generator, heap, streams,
 * payload builder, calendar, synthetic people) are what keeps the six kinds
 * short and alike.
 *
 * Synthetic people are built from small word lists so that they look real
 * in a demo and in an audit report while being plainly invented: surnames
 * are two parts joined ("Thornbrook"), telephone numbers come from Ofcom's
 * range reserved for drama (07700 900xxx), NHS numbers from the 999 test
 * range.
 */
#include "profile_internal.h"

#include "sharehub/alloc.h"
#include "sharehub/time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define FNV_OFFSET     UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME      UINT64_C(0x100000001b3)
#define REPLY_HEADROOM 8 /* jobs a fire may queue after its emit succeeded */

/* ---- random numbers ---------------------------------------------------- */

uint64_t shub_rng_mix(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

uint64_t shub_rng_hash(uint64_t h, const char *s)
{
    h ^= FNV_OFFSET;
    for (; s && *s; s++)
        h = (h ^ (uint8_t)*s) * FNV_PRIME;
    return shub_rng_mix(h);
}

void shub_rng_seed(rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) /* splitmix64, as xoshiro's authors advise */
        r->s[i] = shub_rng_mix(seed += UINT64_C(0x9e3779b97f4a7c15));
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t shub_rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double shub_rng_unit(rng_t *r)
{
    return (double)(shub_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t shub_rng_below(rng_t *r, uint64_t n)
{
    /* Modulo; the bias (below n / 2^64) is far below anything a test sees. */
    return n ? shub_rng_next(r) % n : 0;
}

int64_t shub_rng_range(rng_t *r, int64_t lo, int64_t hi)
{
    return hi <= lo ? lo : lo + (int64_t)shub_rng_below(r, (uint64_t)(hi - lo) + 1);
}

bool shub_rng_chance(rng_t *r, double p)
{
    return shub_rng_unit(r) < p;
}

/* Natural logarithm of x in (0, 1], in plain IEEE arithmetic: the module
 * links no libm, and a home-grown log gives the same stream on every libc.
 * x = m * 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s), s = (m-1)/(m+1),
 * |s| < 0.172, so a dozen terms reach double precision. */
static double ln_unit(double x)
{
    int e = 0;
    while (x < 0.70710678118654752) {
        x *= 2;
        e--;
    }
    double s = (x - 1) / (x + 1), s2 = s * s, term = s, sum = 0;
    for (int k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= s2;
    }
    return 2 * sum + e * 0.69314718055994531;
}

double shub_rng_exp(rng_t *r, double mean)
{
    return -mean * ln_unit(1.0 - shub_rng_unit(r)); /* 1 - u is in (0, 1] */
}

const char *shub_rng_pick(rng_t *r, const char *const *list, size_t n)
{
    return list[shub_rng_below(r, n)];
}

/* ---- the schedule ------------------------------------------------------ */

static bool job_before(const job_t *a, const job_t *b)
{
    return a->due_ms != b->due_ms ? a->due_ms < b->due_ms : a->seq < b->seq;
}

int shub_profile_reserve(shub_profile_t *p, size_t extra)
{
    sched_t *h = &p->sched;
    if (h->n + extra > PROFILE_MAX_JOBS)
        return SHUB_EBUSY;
    if (h->n + extra <= h->cap)
        return 0;
    size_t cap = h->cap ? h->cap * 2 : 64;
    while (cap < h->n + extra)
        cap *= 2;
    job_t *jobs = shub_realloc(h->jobs, cap * sizeof *jobs);
    if (!jobs)
        return SHUB_ENOMEM;
    h->jobs = jobs;
    h->cap = cap;
    return 0;
}

/* Sift-up of a job into reserved room. */
static void heap_push(sched_t *h, const job_t *job)
{
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!job_before(job, &h->jobs[parent]))
            break;
        h->jobs[i] = h->jobs[parent];
        i = parent;
    }
    h->jobs[i] = *job;
}

static job_t heap_pop(sched_t *h)
{
    job_t top = h->jobs[0];
    job_t last = h->jobs[--h->n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && job_before(&h->jobs[child + 1], &h->jobs[child]))
            child++;
        if (!job_before(&h->jobs[child], &last))
            break;
        h->jobs[i] = h->jobs[child];
        i = child;
    }
    if (h->n)
        h->jobs[i] = last;
    return top;
}

int shub_profile_schedule(shub_profile_t *p, int64_t due_ms, uint32_t what, uint32_t ref,
                          int64_t arg, const shub_id_t *reply_to)
{
    int rc = shub_profile_reserve(p, 1);
    if (rc)
        return rc;
    job_t job = {.due_ms = due_ms,
                 .seq = p->next_seq++,
                 .what = what,
                 .ref = ref,
                 .arg = arg,
                 .has_reply = reply_to != NULL};
    if (reply_to)
        job.reply_to = *reply_to;
    heap_push(&p->sched, &job);
    return 0;
}

int shub_profile_grow(void **items, size_t *cap, size_t n, size_t size, size_t first)
{
    if (n < *cap)
        return 0;
    if (*cap >= PROFILE_MAX_RECORDS)
        return SHUB_EBUSY;
    size_t grown = *cap ? *cap * 2 : first;
    void *p = shub_realloc(*items, grown * size);
    if (!p)
        return SHUB_ENOMEM;
    *items = p;
    *cap = grown;
    return 0;
}

int shub_profile_schedule_in_period(shub_profile_t *p, int64_t due_ms, uint32_t what,
                                    uint32_t ref, int64_t arg, const shub_id_t *reply_to)
{
    if (p->has_scenario && due_ms >= p->sc.end_ms)
        return 0;
    return shub_profile_schedule(p, due_ms, what, ref, arg, reply_to);
}

/* ---- origination streams ----------------------------------------------- */

bool shub_profile_serves(const shub_profile_t *p, const char *area)
{
    if (!area)
        return false;
    if (p->n_areas == 0) /* an org with no listed areas serves the whole partnership */
        return true;
    for (size_t i = 0; i < p->n_areas; i++)
        if (strcmp(p->areas[i], area) == 0)
            return true;
    return false;
}

static bool list_has(const sc_list_t *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->item[i], s) == 0)
            return true;
    return false;
}

const sc_weights_t *shub_profile_marac_weights(const shub_profile_t *p)
{
    return p->sc.marac.weights.n ? &p->sc.marac.weights : &p->sc.weights;
}

const sc_weights_t *shub_profile_area_weights(const shub_profile_t *p)
{
    return p->sc.weights.n ? &p->sc.weights : &p->sc.marac.weights;
}

int shub_profile_stream_init(shub_profile_t *p, size_t i, const char *name,
                             const sc_rate_t *rate, const sc_weights_t *weights,
                             bool kind_default, uint32_t what)
{
    stream_t *s = &p->streams[i];
    memset(s, 0, sizeof *s);
    shub_rng_seed(&s->rng, shub_rng_hash(p->seed, name));
    if (!p->has_scenario || !(rate->per_week > 0))
        return 0;
    double share;
    if (rate->origin.n)
        share = list_has(&rate->origin, p->id) ? 1.0 / (double)rate->origin.n : 0;
    else
        share = kind_default ? 1 : 0;
    if (share == 0)
        return 0;

    /* The areas and their weights: the scenario's map, else every area of
     * the partnership but the external ones, equally. This org takes the
     * part of the region-wide rate that its areas carry. */
    double total = 0, served = 0;
    size_t n = weights->n ? weights->n : p->n_all_areas;
    for (size_t k = 0; k < n; k++) {
        const char *area = weights->n ? weights->name[k] : p->all_areas[k];
        double w = weights->n ? weights->w[k] : 1;
        if (!weights->n && list_has(&p->sc.marac.external_areas, area))
            continue;
        total += w;
        if (!shub_profile_serves(p, area) || w <= 0)
            continue;
        served += w;
        s->areas[s->n_areas].name = area;
        s->areas[s->n_areas++].cum = served;
    }
    if (n == 0 && p->n_areas) { /* nothing known of the partnership: own areas */
        for (size_t k = 0; k < p->n_areas && k < SC_MAX_AREAS; k++) {
            s->areas[s->n_areas].name = p->areas[k];
            s->areas[s->n_areas++].cum = (double)(k + 1);
        }
        served = total = (double)s->n_areas;
    }
    if (!(served > 0) || !(total > 0))
        return 0;
    s->per_ms = rate->per_week / (double)MS_WEEK * share * (served / total);
    return shub_profile_stream_next(p, i, what, p->sc.start_ms);
}

int shub_profile_stream_next(shub_profile_t *p, size_t i, uint32_t what, int64_t from_ms)
{
    stream_t *s = &p->streams[i];
    if (!(s->per_ms > 0))
        return 0;
    double gap = shub_rng_exp(&s->rng, 1.0 / s->per_ms);
    if (gap > (double)(p->sc.end_ms - from_ms))
        return 0;
    int64_t due = from_ms + (gap < 1 ? 1 : (int64_t)gap);
    if (due >= p->sc.end_ms)
        return 0;
    return shub_profile_schedule(p, due, what, (uint32_t)i, 0, NULL);
}

double shub_profile_area_fraction(const sc_weights_t *map, const char *area, double dflt)
{
    for (size_t k = 0; area && k < map->n; k++)
        if (strcmp(map->name[k], area) == 0)
            return map->w[k];
    return dflt;
}

/* ---- MARAC referral sequences ------------------------------------------ */

/* This org's part of the referrals: its kind's share (marac.sources; the
 * police alone when none are given), divided among the kind's `origin` orgs
 * when the scenario names them. */
static double referral_share(const shub_profile_t *p)
{
    const sc_sources_t *src = &p->sc.marac.sources;
    const sc_list_t *police_origin = &p->sc.marac.referrals.origin;
    double share = 0;
    const sc_list_t *origin = NULL;
    if (src->n == 0 && strcmp(p->kind, "police") == 0) {
        share = 1;
        origin = police_origin;
    }
    for (size_t i = 0; i < src->n; i++) {
        if (strcmp(src->item[i].kind, p->kind) != 0)
            continue;
        share = src->item[i].share;
        origin = src->item[i].origin.n || strcmp(p->kind, "police") != 0
                     ? &src->item[i].origin
                     : police_origin;
    }
    if (origin && origin->n)
        share = list_has(origin, p->id) ? share / (double)origin->n : 0;
    return share;
}

static rng_t refseq_gen(const shub_profile_t *p, uint32_t area, int64_t k, uint64_t salt)
{
    rng_t r;
    uint64_t at = shub_rng_mix(((uint64_t)area << 40) ^ (uint64_t)k ^ salt);
    shub_rng_seed(&r, shub_rng_hash(p->seed ^ at, "marac.referral"));
    return r;
}

/* The gap before referral k of an area: the first is a random phase within
 * one mean gap, the others between half and one and a half means. */
static double refseq_gap(const shub_profile_t *p, uint32_t area, int64_t k)
{
    rng_t r = refseq_gen(p, area, k, UINT64_C(0x676170));
    double u = shub_rng_unit(&r), mean = p->refseq.mean_ms[area];
    double gap = k == 0 ? u * mean : (0.5 + u) * mean;
    return gap < 1 ? 1 : gap;
}

static int refseq_queue(shub_profile_t *p, uint32_t what, uint32_t area, int64_t k,
                        int64_t from_ms)
{
    double gap = refseq_gap(p, area, k); /* a tiny weight's gap may be huge */
    if (!(gap < (double)(p->sc.end_ms - from_ms)))
        return 0;
    return shub_profile_schedule(p, from_ms + (int64_t)gap, what, area, k, NULL);
}

int shub_profile_refseq_init(shub_profile_t *p, uint32_t what)
{
    refseq_t *q = &p->refseq;
    memset(q, 0, sizeof *q);
    double per_week = p->sc.marac.referrals.per_week;
    double share = referral_share(p);
    if (!p->has_scenario || !(per_week > 0) || !(share > 0))
        return 0;
    const sc_weights_t *w = shub_profile_marac_weights(p);
    size_t n = w->n ? w->n : p->n_all_areas;
    double total = 0;
    for (size_t k = 0; k < n; k++) {
        const char *area = w->n ? w->name[k] : p->all_areas[k];
        if (!w->n && list_has(&p->sc.marac.external_areas, area))
            continue;
        total += w->n ? w->w[k] : 1;
    }
    for (size_t k = 0; k < n && total > 0; k++) {
        const char *area = w->n ? w->name[k] : p->all_areas[k];
        double weight = w->n ? w->w[k] : 1;
        if (!(weight > 0) || !shub_profile_serves(p, area) ||
            (!w->n && list_has(&p->sc.marac.external_areas, area)))
            continue;
        double per_ms = per_week / (double)MS_WEEK * share * weight / total;
        q->area[q->n] = area;
        q->mean_ms[q->n++] = 1.0 / per_ms;
    }
    for (size_t a = 0; a < q->n; a++) {
        int rc = refseq_queue(p, what, (uint32_t)a, 0, p->sc.start_ms);
        if (rc)
            return rc;
    }
    return 0;
}

int shub_profile_refseq_next(shub_profile_t *p, const job_t *job)
{
    if (job->ref >= p->refseq.n)
        return 0;
    return refseq_queue(p, job->what, job->ref, job->arg + 1, job->due_ms);
}

const char *shub_profile_refseq_area(const shub_profile_t *p, const job_t *job)
{
    return job->ref < p->refseq.n ? p->refseq.area[job->ref] : NULL;
}

rng_t shub_profile_refseq_rng(const shub_profile_t *p, const job_t *job)
{
    return refseq_gen(p, job->ref, job->arg, UINT64_C(0x636f6e74656e74));
}

/* ---- the repeat rule --------------------------------------------------- */

bool shub_profile_is_repeat(int64_t last_ms, int64_t t_ms)
{
    return last_ms != INT64_MIN &&
           shub_time_within_months(last_ms, t_ms, SHUB_PROFILE_REPEAT_MONTHS,
                                   SHUB_TZ_LONDON);
}

const char *shub_profile_stream_area(stream_t *s)
{
    double x = shub_rng_unit(&s->rng) * s->areas[s->n_areas - 1].cum;
    for (size_t k = 0; k < s->n_areas; k++)
        if (x < s->areas[k].cum)
            return s->areas[k].name;
    return s->areas[s->n_areas - 1].name;
}

void *shub_profile_pick_in_area(void *items, size_t n, size_t size, const char *area,
                                bool (*in_area)(const void *rec, const char *area),
                                rng_t *r)
{
    char *at = items;
    size_t there = 0;
    for (size_t i = 0; i < n; i++)
        there += in_area(at + i * size, area);
    if (there == 0)
        return NULL;
    size_t k = (size_t)shub_rng_below(r, there);
    for (size_t i = 0; i < n; i++)
        if (in_area(at + i * size, area) && k-- == 0)
            return at + i * size;
    return NULL;
}

/* ---- emitting ---------------------------------------------------------- */

int shub_profile_emit(shub_profile_emit_fn *emit, void *ctx, const shub_event_t *ev,
                      const char *const *to, uint32_t n_to)
{
    shub_share_t share = {.ev = *ev, .to = to, .to_count = n_to};
    memset(&share.ev.id, 0, sizeof share.ev.id); /* the runtime assigns it */
    return emit(ctx, &share);
}

int shub_profile_emit_built(pb_t *b, const shub_event_t *ev, const char *const *to,
                            uint32_t n_to, shub_profile_emit_fn *emit, void *ctx)
{
    int rc = b->rc ? b->rc : shub_profile_emit(emit, ctx, ev, to, n_to);
    shub_arena_destroy(&b->arena);
    return rc;
}

int shub_profile_emit_to_area(pb_t *b, const shub_event_t *ev, const char *service,
                              const char *also, shub_profile_emit_fn *emit, void *ctx)
{
    char sel[2][2 * NAME_CAP];
    snprintf(sel[0], sizeof sel[0], "%s@%s", service, ev->area);
    if (also)
        snprintf(sel[1], sizeof sel[1], "%s@%s", also, ev->area);
    const char *to[] = {sel[0], sel[1]};
    return shub_profile_emit_built(b, ev, to, also ? 2 : 1, emit, ctx);
}

/* ---- payload building -------------------------------------------------- */

void shub_pb_put(pb_t *b, shub_val_t *map, const char *key, shub_val_t v)
{
    if (b->rc == 0)
        b->rc = shub_val_put(b->arena, map, key, v);
}

void shub_pb_push(pb_t *b, shub_val_t *array, shub_val_t v)
{
    if (b->rc == 0)
        b->rc = shub_val_push(b->arena, array, v);
}

static shub_val_t pb_text(pb_t *b, const char *s)
{
    shub_val_t v = shub_val_nil();
    if (b->rc == 0)
        b->rc = shub_val_str(b->arena, s ? s : "", s ? strlen(s) : 0, &v);
    return v;
}

void shub_pb_str(pb_t *b, shub_val_t *map, const char *key, const char *s)
{
    shub_val_t v = pb_text(b, s);
    shub_pb_put(b, map, key, v);
}

void shub_pb_strf(pb_t *b, shub_val_t *map, const char *key, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    shub_pb_str(b, map, key, text);
}

void shub_pb_int(pb_t *b, shub_val_t *map, const char *key, int64_t i)
{
    shub_pb_put(b, map, key, shub_val_int(i));
}

void shub_pb_bool(pb_t *b, shub_val_t *map, const char *key, bool v)
{
    shub_pb_put(b, map, key, shub_val_bool(v));
}

void shub_pb_push_str(pb_t *b, shub_val_t *array, const char *s)
{
    shub_val_t v = pb_text(b, s);
    shub_pb_push(b, array, v);
}

shub_val_t shub_pb_copy(pb_t *b, const shub_val_t *v)
{
    shub_val_t out = shub_val_nil();
    if (b->rc || !v)
        return out;
    switch (v->type) {
    case SHUB_VAL_STR: {
        char *s = shub_arena_strndup(b->arena, v->as.str, v->len);
        if (!s)
            b->rc = SHUB_ENOMEM;
        return (shub_val_t){.type = SHUB_VAL_STR, .len = s ? v->len : 0, .as.str = s};
    }
    case SHUB_VAL_BIN:
        if (b->rc == 0)
            b->rc = shub_val_bin(b->arena, v->as.bin, v->len, &out);
        return out;
    case SHUB_VAL_ARRAY:
        out = shub_val_array();
        for (uint32_t i = 0; i < v->len && b->rc == 0; i++) {
            shub_val_t item = shub_pb_copy(b, &v->as.items[i]);
            shub_pb_push(b, &out, item);
        }
        return out;
    case SHUB_VAL_MAP:
        out = shub_val_map();
        for (uint32_t i = 0; i < v->len && b->rc == 0; i++) {
            shub_val_t item = shub_pb_copy(b, &v->as.pairs[i].val);
            shub_pb_put(b, &out, v->as.pairs[i].key, item);
        }
        return out;
    default:
        return *v;
    }
}

/* ---- calendar ---------------------------------------------------------- */

int shub_profile_year2(int64_t ms)
{
    int y, m, d;
    shub_time_civil_from_days(shub_time_start_of_day(ms, SHUB_TZ_UTC) / MS_DAY, &y, &m,
                              &d);
    return ((y % 100) + 100) % 100;
}

int64_t shub_profile_add_working_time(int64_t ms, int64_t work_ms)
{
    int64_t t = ms;
    while (work_ms > 0) {
        int64_t midnight = shub_time_start_of_day(t, SHUB_TZ_UTC);
        int wd = shub_time_weekday(t, SHUB_TZ_UTC);
        if (wd >= 5) { /* Saturday or Sunday: skip to Monday */
            t = midnight + (7 - wd) * MS_DAY;
            continue;
        }
        int64_t left = midnight + MS_DAY - t;
        int64_t step = work_ms < left ? work_ms : left;
        t += step;
        work_ms -= step;
    }
    return t;
}

/* ---- synthetic people and places --------------------------------------- */

static const char *const first_f[] = {
    "Amara",  "Bethany", "Chloe",   "Danielle", "Eleanor", "Farah",  "Gemma",
    "Hannah", "Imogen",  "Jasmine", "Kirsty",   "Leanne",  "Maryam", "Natalie",
    "Olivia", "Priya",   "Rebecca", "Shannon",  "Tanya",   "Zara",
};
static const char *const first_m[] = {
    "Aaron",  "Ben",   "Callum", "Darren", "Ethan", "Faisal",   "Gareth",
    "Harvey", "Imran", "Jordan", "Kieran", "Liam",  "Mohammed", "Nathan",
    "Owen",   "Ryan",  "Scott",  "Tyler",  "Wayne", "Zain",
};
/* Surnames are two parts joined, so they read like English surnames without
 * belonging to anyone in particular. */
static const char *const sur_a[] = {
    "Ash",  "Birch", "Bram", "Cold", "Elder", "Fern",  "Glen", "Hazel", "Holly",
    "Lark", "Marsh", "Oak",  "Rook", "Sedge", "Thorn", "Wil",  "Wren",  "Yew",
};
static const char *const sur_b[] = {
    "acre",  "brook", "combe", "dale",  "field",  "ford", "gate",  "holm",
    "hurst", "ley",   "mere",  "stead", "thorpe", "wick", "worth", "well",
};
static const char *const street_kind[] = {
    "Road", "Close", "Avenue", "Lane", "Grove", "Street", "Crescent", "Way", "Drive",
};

typedef struct district {
    const char *area;
    const char *const *out; /* outward codes of the area's postcode districts */
    size_t n;
} district_t;

#define DISTRICT(area, ...)                                                              \
    {                                                                                    \
        area, (const char *const[]){__VA_ARGS__},                                        \
            sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)            \
    }
static const district_t districts[] = {
    DISTRICT("birmingham-east", "B8", "B9", "B25", "B26", "B33", "B34", "B36"),
    DISTRICT("birmingham-west", "B16", "B17", "B29", "B30", "B31", "B32"),
    DISTRICT("coventry", "CV1", "CV2", "CV3", "CV4", "CV5", "CV6"),
    DISTRICT("dudley", "DY1", "DY2", "DY3", "DY5"),
    DISTRICT("sandwell", "B66", "B67", "B68", "B69", "B70", "B71"),
    DISTRICT("solihull", "B90", "B91", "B92", "B93"),
    DISTRICT("walsall", "WS1", "WS2", "WS3", "WS4", "WS5"),
    DISTRICT("wolverhampton", "WV1", "WV2", "WV3", "WV4", "WV10"),
    DISTRICT("staffordshire", "ST16", "ST17", "ST19"),
};

void shub_profile_address_make(rng_t *r, const char *area, char line1[64],
                               char postcode[12])
{
    static const char inward[] =
        "ABDEFGHJLNPQRSTUWXYZ"; /* letters a postcode may end in */
    const char *out = "ZZ1";
    for (size_t i = 0; i < sizeof districts / sizeof districts[0]; i++)
        if (area && strcmp(districts[i].area, area) == 0)
            out = districts[i].out[shub_rng_below(r, districts[i].n)];
    snprintf(line1, 64, "%d %s%s %s", (int)shub_rng_range(r, 1, 180), PICK(r, sur_a),
             PICK(r, sur_b), PICK(r, street_kind));
    snprintf(postcode, 12, "%s %d%c%c", out, (int)shub_rng_range(r, 1, 9),
             inward[shub_rng_below(r, sizeof inward - 1)],
             inward[shub_rng_below(r, sizeof inward - 1)]);
}

void shub_profile_person_make(uint64_t seed, const char *area, int min_age, int max_age,
                              double female, person_t *out)
{
    rng_t r;
    shub_rng_seed(&r, seed);
    memset(out, 0, sizeof *out);
    bool f = shub_rng_chance(&r, female);
    out->gender = f ? "female" : "male";
    shub_str_copy(out->first, sizeof out->first,
                  f ? PICK(&r, first_f) : PICK(&r, first_m));
    snprintf(out->surname, sizeof out->surname, "%s%s", PICK(&r, sur_a), PICK(&r, sur_b));
    snprintf(out->name, sizeof out->name, "%s %s", out->first, out->surname);
    int64_t ref = shub_time_days_from_civil(2026, 1, 1);
    int64_t age_days =
        shub_rng_range(&r, (int64_t)min_age * 365, (int64_t)max_age * 365 + 364);
    shub_time_format_date((ref - age_days) * MS_DAY, out->dob);
    shub_profile_address_make(&r, area, out->line1, out->postcode);
    snprintf(out->phone, sizeof out->phone, "07700 900%03d",
             (int)shub_rng_below(&r, 1000));
    snprintf(out->subject, sizeof out->subject, "P-%016llx",
             (unsigned long long)shub_rng_mix(seed ^ UINT64_C(0x5375626a656374)));
}

void shub_profile_id_prefix(const char *id, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *c = id ? id : ""; *c && *c != '-' && n + 1 < cap; c++)
        out[n++] = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
    if (cap)
        out[n] = '\0';
}

void shub_profile_area_code(const char *area, char out[8])
{
    /* "coventry" -> "COV", "birmingham-east" -> "BIE": two letters of the
     * first part and one of each later part, or three of a single part. */
    const char *s = area ? area : "";
    bool parts = strchr(s, '-') != NULL;
    size_t n = 0;
    for (size_t i = 0; s[i] && s[i] != '-' && n < (parts ? 2u : 3u); i++)
        out[n++] = s[i];
    for (const char *dash = strchr(s, '-'); dash && n < 7; dash = strchr(dash + 1, '-'))
        if (dash[1] && dash[1] != '-')
            out[n++] = dash[1];
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (out[i] >= 'a' && out[i] <= 'z')
            out[i] = (char)(out[i] - 'a' + 'A');
}

/* ---- the profile ------------------------------------------------------- */

static const profile_ops_t *const kinds[] = {
    &shub_profile_police_ops, &shub_profile_custody_ops,   &shub_profile_marac_ops,
    &shub_profile_la_ops,     &shub_profile_probation_ops, &shub_profile_health_ops,
    &shub_profile_idva_ops,
};

static int copy_areas(const char *const *src, size_t n, char (**dst)[NAME_CAP],
                      const char *what, shub_err_t *err)
{
    if (n > SC_MAX_AREAS)
        return shub_err_set(err, SHUB_EINVAL,
                            "%s lists %zu areas, more than the limit %d", what, n,
                            SC_MAX_AREAS);
    if (n && !src)
        return shub_err_set(err, SHUB_EINVAL, "%s is NULL with %zu entries", what, n);
    for (size_t i = 0; i < n; i++)
        if (!shub_is_name(src[i]))
            return shub_err_set(err, SHUB_EINVAL, "%s[%zu] \"%s\" is not a name", what, i,
                                src[i] ? src[i] : "(null)");
    *dst = shub_calloc(n ? n : 1, NAME_CAP);
    if (!*dst)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory copying %s", what);
    for (size_t i = 0; i < n; i++)
        shub_str_copy((*dst)[i], NAME_CAP, src[i]);
    return 0;
}

int shub_profile_new(const shub_profile_org_t *org, const shub_scenario_t *scenario,
                     uint64_t seed, shub_profile_t **profile_p, shub_err_t *err)
{
    if (!org || !profile_p)
        return shub_err_set(err, SHUB_EINVAL,
                            "profile needs an organisation and an out pointer");
    if (!shub_is_name(org->id))
        return shub_err_set(err, SHUB_EINVAL, "organisation id \"%s\" is not a name",
                            org->id ? org->id : "(null)");
    const profile_ops_t *ops = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0] && org->kind; i++)
        if (strcmp(kinds[i]->kind, org->kind) == 0)
            ops = kinds[i];
    if (!ops)
        return shub_err_set(err, SHUB_ENOTFOUND, "no profile for kind \"%s\" of \"%s\"",
                            org->kind ? org->kind : "(null)", org->id);

    shub_profile_t *p = shub_calloc(1, sizeof *p);
    if (!p)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory creating profile \"%s\"",
                            org->id);
    p->ops = ops;
    shub_str_copy(p->id, sizeof p->id, org->id);
    shub_str_copy(p->kind, sizeof p->kind, org->kind);
    int rc = copy_areas(org->areas, org->n_areas, &p->areas, "areas", err);
    if (rc == 0)
        rc =
            copy_areas(org->all_areas, org->n_all_areas, &p->all_areas, "all_areas", err);
    if (rc)
        goto fail;
    p->n_areas = org->n_areas;
    p->n_all_areas = org->n_all_areas;
    if (scenario) {
        p->sc = *scenario;
        p->has_scenario = true;
    } else {
        shub_scenario_defaults(&p->sc);
    }
    p->seed = shub_rng_hash(shub_rng_mix(seed), org->id);
    shub_rng_seed(&p->react, shub_rng_hash(p->seed, "react"));
    rc = ops->init(p, err);
    if (rc) {
        if (rc == SHUB_ENOMEM)
            shub_err_set(err, rc, "out of memory starting profile \"%s\"", org->id);
        goto fail;
    }
    *profile_p = p;
    return 0;
fail:
    shub_profile_destroy(&p);
    return rc;
}

void shub_profile_destroy(shub_profile_t **profile_p)
{
    if (!profile_p || !*profile_p)
        return;
    shub_profile_t *p = *profile_p;
    if (p->ops && p->ops->fini)
        p->ops->fini(p);
    shub_profile_action_free(p);
    shub_free(p->sched.jobs);
    shub_free(p->areas);
    shub_free(p->all_areas);
    shub_free(p);
    *profile_p = NULL;
}

int64_t shub_profile_due_ms(const shub_profile_t *p)
{
    return p ? p->firing_due_ms : 0;
}

int shub_profile_tick(shub_profile_t *p, int64_t now_ms, shub_profile_emit_fn *emit,
                      void *ctx)
{
    if (!p || !emit)
        return SHUB_EINVAL;
    while (p->sched.n && p->sched.jobs[0].due_ms <= now_ms) {
        /* Room for what the job queues after its emit, so nothing after a
         * successful emit can fail. */
        int rc = shub_profile_reserve(p, REPLY_HEADROOM);
        if (rc)
            return rc;
        rng_t saved[PROFILE_MAX_STREAMS];
        for (size_t i = 0; i < PROFILE_MAX_STREAMS; i++)
            saved[i] = p->streams[i].rng;
        job_t job = heap_pop(&p->sched);
        p->firing_due_ms = job.due_ms;
        rc = job.what >= PROFILE_SHARED_JOBS
                 ? shub_profile_action_fire(p, &job, emit, ctx)
                 : p->ops->fire(p, &job, emit, ctx);
        p->firing_due_ms = 0;
        if (rc) { /* put everything back: the next tick emits the same event */
            for (size_t i = 0; i < PROFILE_MAX_STREAMS; i++)
                p->streams[i].rng = saved[i];
            heap_push(&p->sched, &job);
            return rc;
        }
    }
    return 0;
}

int shub_profile_receive(shub_profile_t *p, int64_t now_ms, const char *from,
                         const shub_event_t *ev, shub_profile_emit_fn *emit, void *ctx)
{
    (void)emit; /* reactions are always due later; ticks emit them */
    (void)ctx;
    if (!p || !ev || !ev->type || !from)
        return SHUB_EINVAL;
    if (strcmp(ev->type, "marac.action") == 0 && strcmp(p->kind, "marac") != 0)
        return shub_profile_action_receive(p, now_ms, from, ev);
    return p->ops->receive ? p->ops->receive(p, now_ms, from, ev) : 0;
}

bool shub_profile_done(const shub_profile_t *p, int64_t now_ms)
{
    if (!p)
        return true;
    return p->sched.n == 0 && (!p->has_scenario || now_ms >= p->sc.end_ms);
}
