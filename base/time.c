/*
 * time: see include/sharehub/time.h for the decisions (years, leap seconds,
 * Europe/London).
 *
 * The calendar is Howard Hinnant's days_from_civil / civil_from_days: the
 * year is shifted to start on 1 March, so the leap day is the last day of
 * its year, and 400-year eras make the arithmetic exact for negative years
 * as well. Local time in London is UTC plus an offset that depends only on
 * the UTC instant, which keeps the conversion one way and exact; the way
 * back (wall clock to UTC) tries both offsets and applies the rules for the
 * hour that is skipped and the hour that repeats.
 */
#include "sharehub/time.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MS_PER_HOUR INT64_C(3600000)
#define MS_PER_MIN  INT64_C(60000)
#define DAY         SHUB_TIME_MS_PER_DAY

static const char *const month_names[] = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December",
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return days[m - 1] + (m == 2 && is_leap(y));
}

/* ---- the calendar ------------------------------------------------------- */

int64_t shub_time_days_from_civil(int y, int m, int d)
{
    int64_t yy = (int64_t)y - (m <= 2);
    int64_t era = floor_div(yy, 400);
    int64_t yoe = yy - era * 400;                                  /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* from 1 March */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

void shub_time_civil_from_days(int64_t days, int *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int64_t clamp(int64_t ms)
{
    return ms < SHUB_TIME_MIN_MS   ? SHUB_TIME_MIN_MS
           : ms > SHUB_TIME_MAX_MS ? SHUB_TIME_MAX_MS
                                   : ms;
}

/* 0 Monday .. 6 Sunday: 1970-01-01 was a Thursday. */
static int weekday_of_days(int64_t days)
{
    return (int)(((days % 7) + 7 + 3) % 7);
}

/* ---- Europe/London ------------------------------------------------------ */

/* 01:00 UTC on the last Sunday of month m of year y. */
static int64_t last_sunday_0100(int y, int m)
{
    int64_t last = shub_time_days_from_civil(y, m, days_in_month(y, m));
    return (last - (weekday_of_days(last) + 1) % 7) * DAY + MS_PER_HOUR;
}

int64_t shub_time_london_offset_ms(int64_t ms)
{
    int y, m, d;
    shub_time_civil_from_days(floor_div(ms, DAY), &y, &m, &d);
    if (m < 3 || m > 10)
        return 0;
    return ms >= last_sunday_0100(y, 3) && ms < last_sunday_0100(y, 10) ? MS_PER_HOUR : 0;
}

static int64_t offset(int64_t ms, shub_tz_t tz)
{
    return tz == SHUB_TZ_LONDON ? shub_time_london_offset_ms(ms) : 0;
}

/* The UTC instant of a wall-clock time (ms counted as if it were UTC). Of
 * the two offsets London has, the one that agrees with itself wins; both
 * agreeing is the repeated hour (take the earlier instant, BST), neither is
 * the skipped hour (use the offset in force before it, which moves the wall
 * clock forward by the hour). */
static int64_t from_local(int64_t local, shub_tz_t tz)
{
    if (tz != SHUB_TZ_LONDON)
        return local;
    int64_t bst = local - MS_PER_HOUR;
    if (shub_time_london_offset_ms(bst) == MS_PER_HOUR)
        return bst; /* in BST, or the first of a repeated hour */
    return local;   /* in GMT, or the skipped hour read as GMT: an hour on in BST */
}

int shub_time_weekday(int64_t ms, shub_tz_t tz)
{
    ms = clamp(ms);
    return weekday_of_days(floor_div(ms + offset(ms, tz), DAY));
}

/* ---- arithmetic --------------------------------------------------------- */

int64_t shub_time_add_months(int64_t ms, int months, shub_tz_t tz)
{
    ms = clamp(ms);
    int64_t local = ms + offset(ms, tz);
    int64_t days = floor_div(local, DAY);
    int64_t time_of_day = local - days * DAY;
    int y, m, d;
    shub_time_civil_from_days(days, &y, &m, &d);
    int64_t total = (int64_t)y * 12 + (m - 1) + months;
    int ny = (int)floor_div(total, 12);
    int nm = (int)(total - (int64_t)ny * 12) + 1;
    int last = days_in_month(ny, nm);
    int64_t nlocal =
        shub_time_days_from_civil(ny, nm, d < last ? d : last) * DAY + time_of_day;
    return from_local(nlocal, tz);
}

bool shub_time_within_months(int64_t from_ms, int64_t t_ms, int months, shub_tz_t tz)
{
    return months > 0 && t_ms >= from_ms &&
           t_ms < shub_time_add_months(from_ms, months, tz);
}

int64_t shub_time_start_of_day(int64_t ms, shub_tz_t tz)
{
    ms = clamp(ms);
    return from_local(floor_div(ms + offset(ms, tz), DAY) * DAY, tz);
}

int64_t shub_time_start_of_month(int64_t ms, shub_tz_t tz)
{
    ms = clamp(ms);
    int y, m, d;
    shub_time_civil_from_days(floor_div(ms + offset(ms, tz), DAY), &y, &m, &d);
    return from_local(shub_time_days_from_civil(y, m, 1) * DAY, tz);
}

/* ---- parsing ------------------------------------------------------------ */

#define FORMS "a date (YYYY-MM-DD) or an RFC 3339 time (YYYY-MM-DDTHH:MM:SSZ)"

/* Reads exactly n digits at *p. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool expect(const char **p, const char *any)
{
    if (!**p || !strchr(any, **p))
        return false;
    (*p)++;
    return true;
}

/* Reads YYYY-MM-DD at *p and checks it is a real day: days since 1970 in
 * *days, or SHUB_EVALUE (err filled). */
static int read_date(const char *text, const char **p, const char *forms, int64_t *days,
                     shub_err_t *err)
{
    int y, m, d;
    if (!digits(p, 4, &y) || !expect(p, "-") || !digits(p, 2, &m) || !expect(p, "-") ||
        !digits(p, 2, &d))
        return shub_err_set(err, SHUB_EVALUE, "'%.40s' is not %s", text, forms);
    if (m < 1 || m > 12)
        return shub_err_set(err, SHUB_EVALUE, "'%.40s': month %02d is not 01 to 12", text,
                            m);
    if (d < 1 || d > days_in_month(y, m))
        return shub_err_set(err, SHUB_EVALUE, "'%.40s': %s %04d has no day %02d", text,
                            month_names[m - 1], y, d);
    *days = shub_time_days_from_civil(y, m, d);
    return 0;
}

/* Reads "hh:mm" of an offset at *p into minutes. */
static int read_offset(const char *text, const char **p, int64_t *minutes,
                       shub_err_t *err)
{
    int sign = **p == '-' ? -1 : 1, h, m;
    (*p)++;
    if (!digits(p, 2, &h) || !expect(p, ":") || !digits(p, 2, &m))
        return shub_err_set(err, SHUB_EVALUE, "'%.40s' is not %s", text, FORMS);
    if (h > 23 || m > 59)
        return shub_err_set(err, SHUB_EVALUE,
                            "'%.40s': offset %02d:%02d is not 00:00 to 23:59", text, h,
                            m);
    *minutes = sign * (h * 60 + m);
    return 0;
}

int shub_time_parse(const char *text, int64_t *ms, shub_err_t *err)
{
    if (!text || !*text)
        return shub_err_set(err, SHUB_EVALUE, "no time given: want %s", FORMS);
    const char *p = text;
    int64_t days, offset_min = 0;
    int h, mi, s, frac = 0;
    int rc = read_date(text, &p, FORMS, &days, err);
    if (rc)
        return rc;
    if (!*p) {
        *ms = days * DAY;
        return 0;
    }
    if (!expect(&p, "Tt ") || !digits(&p, 2, &h) || !expect(&p, ":") ||
        !digits(&p, 2, &mi) || !expect(&p, ":") || !digits(&p, 2, &s))
        return shub_err_set(err, SHUB_EVALUE, "'%.40s' is not %s", text, FORMS);
    if (h > 23)
        return shub_err_set(err, SHUB_EVALUE, "'%.40s': hour %02d is not 00 to 23", text,
                            h);
    if (mi > 59)
        return shub_err_set(err, SHUB_EVALUE, "'%.40s': minute %02d is not 00 to 59",
                            text, mi);
    if (s > 60)
        return shub_err_set(err, SHUB_EVALUE, "'%.40s': second %02d is not 00 to 60",
                            text, s);
    if (*p == '.') {
        p++;
        int n = 0;
        for (; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                frac = frac * 10 + (*p - '0');
        if (n == 0)
            return shub_err_set(err, SHUB_EVALUE, "'%.40s' is not %s", text, FORMS);
        for (; n < 3; n++)
            frac *= 10;
    }
    if (s == 60) { /* a leap second: the minute's last millisecond */
        s = 59;
        frac = 999;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        if ((rc = read_offset(text, &p, &offset_min, err)))
            return rc;
    } else if (!*p) {
        return shub_err_set(err, SHUB_EVALUE,
                            "'%.40s' has no time zone: end it with Z (UTC) or an offset "
                            "such as +01:00",
                            text);
    }
    if (*p)
        return shub_err_set(err, SHUB_EVALUE, "'%.40s' is not %s", text, FORMS);
    *ms = days * DAY + ((int64_t)h * 3600 + mi * 60 + s - offset_min * 60) * 1000 + frac;
    return 0;
}

int shub_time_parse_date(const char *text, int64_t *ms, shub_err_t *err)
{
    static const char forms[] = "a date (YYYY-MM-DD)";
    if (!text || !*text)
        return shub_err_set(err, SHUB_EVALUE, "no date given: want %s", forms);
    const char *p = text;
    int64_t days;
    int rc = read_date(text, &p, forms, &days, err);
    if (rc)
        return rc;
    if (*p)
        return shub_err_set(err, SHUB_EVALUE, "'%.40s' is not %s", text, forms);
    *ms = days * DAY;
    return 0;
}

/* ---- formatting --------------------------------------------------------- */

const char *shub_time_format(int64_t ms, char out[SHUB_TIME_TEXT])
{
    if (ms != clamp(ms)) {
        snprintf(out, SHUB_TIME_TEXT, "%lld", (long long)ms);
        return out;
    }
    int64_t days = floor_div(ms, DAY), rem = ms - days * DAY;
    int y, m, d;
    shub_time_civil_from_days(days, &y, &m, &d);
    /* Every field is in range here; the wide buffer is for the compiler,
     * which cannot know that. */
    char wide[96];
    snprintf(wide, sizeof wide, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d,
             (int)(rem / MS_PER_HOUR), (int)(rem / MS_PER_MIN % 60),
             (int)(rem / 1000 % 60), (int)(rem % 1000));
    memcpy(out, wide, SHUB_TIME_TEXT - 1);
    out[SHUB_TIME_TEXT - 1] = '\0';
    return out;
}

const char *shub_time_format_date(int64_t ms, char out[SHUB_TIME_DATE_TEXT])
{
    int y, m, d;
    shub_time_civil_from_days(floor_div(clamp(ms), DAY), &y, &m, &d);
    char wide[48];
    snprintf(wide, sizeof wide, "%04d-%02d-%02d", y, m, d);
    memcpy(out, wide, SHUB_TIME_DATE_TEXT - 1);
    out[SHUB_TIME_DATE_TEXT - 1] = '\0';
    return out;
}

/* ---- the clock ---------------------------------------------------------- */

int64_t shub_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t shub_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
