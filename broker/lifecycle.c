/*
 * lifecycle: what is due in an agreement's life, and the owner's notice
 * before it expires (include/sharehub/lifecycle.h). Dates are the loaded
 * agreement's: valid_until_ms is the last millisecond in force, review_ms
 * the midnight the review falls due. A day here is 24 hours of UTC, as the
 * agreement's dates are UTC days.
 */
#include "sharehub/lifecycle.h"

#include "sharehub/time.h"

#include <stdio.h>
#include <string.h>

/* Whole days from now to t, rounded towards the past: 0 on the day itself. */
static int64_t days_to(int64_t now_ms, int64_t t)
{
    int64_t d = t - now_ms;
    return d >= 0 ? d / SHUB_TIME_MS_PER_DAY : -((-d + SHUB_TIME_MS_PER_DAY - 1) /
                                                 SHUB_TIME_MS_PER_DAY);
}

static void report(shub_lifecycle_fn *fn, void *ctx, const shub_agreement_t *ag,
                   shub_due_t due, const char *code, int64_t days, const char *what,
                   int64_t date)
{
    shub_lifecycle_finding_t f = {.agreement = ag, .due = due, .code = code, .days = days};
    char d[SHUB_TIME_DATE_TEXT];
    shub_time_format_date(date, d);
    if (due == SHUB_DUE_UNSIGNED)
        snprintf(f.text, sizeof f.text,
                 "agreement '%s' v%u (%s) is active but names no signatory: nobody has "
                 "signed it off",
                 ag->info.id, ag->info.version, ag->info.file);
    else
        snprintf(f.text, sizeof f.text, "agreement '%s' v%u (%s) %s %s, %s%lld day%s%s",
                 ag->info.id, ag->info.version, ag->info.file, what, d,
                 days >= 0 ? "in " : "", (long long)(days >= 0 ? days : -days),
                 (days == 1 || days == -1) ? "" : "s", days >= 0 ? "" : " ago");
    if (fn)
        fn(&f, ctx);
}

size_t shub_lifecycle_check(const shub_config_t *cfg, int64_t now_ms, uint32_t notice_days,
                            shub_lifecycle_fn *fn, void *ctx)
{
    size_t n = 0;
    int64_t window = (int64_t)notice_days * SHUB_TIME_MS_PER_DAY;
    for (size_t i = 0; i < shub_config_agreement_count(cfg); i++) {
        const shub_agreement_t *ag = shub_config_agreement_at(cfg, i);
        if (ag->status != SHUB_AGREEMENT_ACTIVE)
            continue; /* a draft, a suspension or an expiry is already said */
        int64_t end = ag->info.valid_until_ms + 1; /* the first ms no longer in force */
        if (now_ms >= end) {
            report(fn, ctx, ag, SHUB_DUE_EXPIRED, "expired", days_to(now_ms, end),
                   "expired at the end of", ag->info.valid_until_ms);
            n++;
        } else if (end - now_ms <= window) {
            report(fn, ctx, ag, SHUB_DUE_EXPIRING, "expiring", days_to(now_ms, end),
                   "expires at the end of", ag->info.valid_until_ms);
            n++;
        }
        if (now_ms >= ag->info.review_ms) {
            report(fn, ctx, ag, SHUB_DUE_REVIEW_OVERDUE, "review-overdue",
                   days_to(now_ms, ag->info.review_ms), "was due for review on",
                   ag->info.review_ms);
            n++;
        } else if (ag->info.review_ms - now_ms <= window) {
            report(fn, ctx, ag, SHUB_DUE_REVIEW_SOON, "review-due",
                   days_to(now_ms, ag->info.review_ms), "is due for review on",
                   ag->info.review_ms);
            n++;
        }
        if (ag->n_signatories == 0) {
            report(fn, ctx, ag, SHUB_DUE_UNSIGNED, "not-signed-off", 0, "", 0);
            n++;
        }
    }
    return n;
}

bool shub_lifecycle_notice_due(const shub_agreement_t *ag, int64_t now_ms,
                               uint32_t notice_days)
{
    int64_t end = ag->info.valid_until_ms + 1;
    return ag->status == SHUB_AGREEMENT_ACTIVE && ag->info.owner && now_ms < end &&
           end - now_ms <= (int64_t)notice_days * SHUB_TIME_MS_PER_DAY;
}

int shub_lifecycle_notice(shub_arena_t *arena, const shub_agreement_t *ag, int64_t now_ms,
                          shub_event_t *ev, shub_err_t *err)
{
    char until[SHUB_TIME_DATE_TEXT];
    shub_val_t v;
    int rc;
    memset(ev, 0, sizeof *ev);
    if ((rc = shub_id_generate(&ev->id, now_ms)))
        return shub_err_set(err, rc, "notice: cannot make an event id");
    ev->type = SHUB_LIFECYCLE_NOTICE_TYPE;
    ev->occurred_ms = now_ms;
    ev->consent = SHUB_CONSENT_NOT_SOUGHT;
    ev->area = SHUB_LIFECYCLE_NOTICE_AREA;
    ev->purpose = SHUB_LIFECYCLE_NOTICE_PURPOSE;
    ev->basis = SHUB_LIFECYCLE_NOTICE_BASIS;
    ev->payload = shub_val_map();
    shub_time_format_date(ag->info.valid_until_ms, until);
    if ((rc = shub_val_str(arena, ag->info.id, strlen(ag->info.id), &v)) ||
        (rc = shub_val_put(arena, &ev->payload, "agreement", v)) ||
        (rc = shub_val_put(arena, &ev->payload, "version", shub_val_int(ag->info.version))) ||
        (rc = shub_val_str(arena, ag->info.title, strlen(ag->info.title), &v)) ||
        (rc = shub_val_put(arena, &ev->payload, "title", v)) ||
        (rc = shub_val_str(arena, until, strlen(until), &v)) ||
        (rc = shub_val_put(arena, &ev->payload, "valid_until", v)) ||
        (rc = shub_val_put(arena, &ev->payload, "days_left",
                           shub_val_int(days_to(now_ms, ag->info.valid_until_ms + 1)))))
        return shub_err_set(err, rc == SHUB_ENOMEM ? rc : SHUB_EINVAL,
                            "notice: cannot build the event");
    return 0;
}
