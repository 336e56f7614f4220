/*
 * time: the one place sharehub reads, writes and does arithmetic on dates
 * and times. Times are int64 milliseconds since 1970-01-01T00:00:00Z (Unix
 * time: every day has 86,400 seconds), dates are proleptic Gregorian, and
 * text is RFC 3339. Nothing here reads the TZ environment or calls the C
 * library's time zone functions: Europe/London's rule is written out below,
 * so a result is the same on every machine and in every test.
 *
 * Decisions every caller inherits:
 *   - Years 0000 to 9999 are accepted. A time before 1970 is a negative
 *     number (a date of birth may be one); a caller that needs a later floor,
 *     such as the wire protocol's "not before 1970", checks it itself.
 *   - A leap second, ":60", is accepted and read as the last millisecond of
 *     its minute (hh:mm:59.999), so it sorts after every instant of that
 *     minute and never spills into the next day, month or year.
 *   - Fractions of a second are cut to milliseconds, not rounded.
 *
 * Europe/London is GMT, and BST (GMT+1) from 01:00 UTC on the last Sunday of
 * March to 01:00 UTC on the last Sunday of October: the rule in force since
 * 1996, applied to every year. Wall-clock times that do not exist (the hour
 * skipped in March) are moved forward by the hour, so 01:30 on that day is
 * 02:30 BST; wall-clock times that occur twice (the hour repeated in
 * October) mean the first, still BST.
 */
#ifndef SHAREHUB_TIME_H
#define SHAREHUB_TIME_H

#include <stdbool.h>
#include <stdint.h>

#include "sharehub/err.h"

#define SHUB_TIME_TEXT       25 /* "2026-07-01T10:00:00.000Z" and a NUL */
#define SHUB_TIME_DATE_TEXT  11 /* "2026-07-01" and a NUL */
#define SHUB_TIME_MS_PER_DAY INT64_C(86400000)
#define SHUB_TIME_MIN_MS     INT64_C(-62167219200000) /* 0000-01-01T00:00:00.000Z */
#define SHUB_TIME_MAX_MS     INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */

typedef enum {
    SHUB_TZ_UTC = 0,
    SHUB_TZ_LONDON, /* Europe/London: GMT, BST in summer (see above) */
} shub_tz_t;

/* ---- text --------------------------------------------------------------- */

/* Parses a date, "2026-07-01" (midnight UTC), or an RFC 3339 date-time:
 * "2026-07-01T10:00:00Z", with 't' or ' ' for 'T', an optional fraction
 * (".5", ".123456"), and "Z" or an offset ("+01:00", "-04:30"). On success
 * writes *ms and returns 0; otherwise SHUB_EVALUE with err->msg naming the
 * text and what is wrong with it ("'2025-02-29': February 2025 has no day
 * 29"). err may be NULL. */
int shub_time_parse(const char *text, int64_t *ms, shub_err_t *err);

/* As shub_time_parse, but only a date "YYYY-MM-DD" is accepted (midnight
 * UTC): agreement and scenario dates, dates in payloads. */
int shub_time_parse_date(const char *text, int64_t *ms, shub_err_t *err);

/* Writes ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) and returns out. A time
 * outside years 0000-9999 (only a corrupt value can be one) is written as
 * its decimal number of milliseconds, so it is shown, not hidden. */
const char *shub_time_format(int64_t ms, char out[SHUB_TIME_TEXT]);

/* Writes the UTC date of ms as "YYYY-MM-DD" and returns out. Times outside
 * years 0000-9999 give the nearest date inside them. */
const char *shub_time_format_date(int64_t ms, char out[SHUB_TIME_DATE_TEXT]);

/* ---- the calendar ------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d (negative before it). m is 1..12; d counts
 * from the first of the month, so a d past the month's end lands in the
 * next month. Exact for every year an int holds. */
int64_t shub_time_days_from_civil(int y, int m, int d);

/* The inverse: the date `days` days from 1970-01-01. */
void shub_time_civil_from_days(int64_t days, int *y, int *m, int *d);

/* Day of the week of ms in tz: 0 Monday .. 6 Sunday. */
int shub_time_weekday(int64_t ms, shub_tz_t tz);

/* ---- arithmetic --------------------------------------------------------- */

/* The same instant `months` calendar months later (earlier if negative) in
 * tz: the wall-clock date moves by whole months, the day is cut to the end
 * of a shorter month (31 March - 1 month = 28 or 29 February), and the
 * wall-clock time of day is kept, across a change between GMT and BST too.
 * A result that does not exist or occurs twice is resolved as said above.
 * Times outside years 0000-9999 are first brought to the nearest inside. */
int64_t shub_time_add_months(int64_t ms, int months, shub_tz_t tz);

/* True if t_ms falls in the `months` calendar months that begin at from_ms:
 * from_ms <= t_ms < shub_time_add_months(from_ms, months, tz). The period is
 * half-open, as every period in sharehub is: the anniversary instant itself
 * is the first instant after it, so consecutive periods never share one. It
 * counts forward from from_ms (12 months after 29 February is 28 February),
 * never back from t_ms. months <= 0 gives false. */
bool shub_time_within_months(int64_t from_ms, int64_t t_ms, int months, shub_tz_t tz);

/* Midnight (wall clock in tz) at the start of the day that holds ms. */
int64_t shub_time_start_of_day(int64_t ms, shub_tz_t tz);

/* Midnight (wall clock in tz) on the first of the month that holds ms. */
int64_t shub_time_start_of_month(int64_t ms, shub_tz_t tz);

/* What Europe/London adds to UTC at the instant ms: 3,600,000 during BST,
 * else 0. */
int64_t shub_time_london_offset_ms(int64_t ms);

/* ---- the clock ---------------------------------------------------------- */

/* Wall clock, ms since the Unix epoch. */
int64_t shub_now_ms(void);

/* A clock for durations and deadlines within a process, in us: steps of
 * the wall clock do not show (CLOCK_MONOTONIC). */
int64_t shub_mono_us(void);

#endif
