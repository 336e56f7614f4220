/*
 * test_time: the one time module, table by table. Parsing (dates, RFC 3339
 * forms, leap years, 29 February, month ends, years before 1970, leap
 * seconds) against numbers computed independently of this code; malformed
 * input with the exact message a person sees; formatting and round trips;
 * the calendar both ways over more than ten thousand years; Europe/London at
 * both changeovers; and calendar-month arithmetic, which MARAC's "referred
 * again within 12 months" depends on, across month ends, leap days and the
 * hour that is skipped or repeated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sharehub/time.h"

#define HOUR INT64_C(3600000)
#define DAY  SHUB_TIME_MS_PER_DAY

/* Parses text that the test knows is good. */
static int64_t at(const char *text)
{
    int64_t ms = 0;
    shub_err_t err;
    if (shub_time_parse(text, &ms, &err) != 0)
        fail_msg("'%s': %s", text, err.msg);
    return ms;
}

static void assert_time(int64_t got, const char *want)
{
    char a[SHUB_TIME_TEXT];
    if (got != at(want))
        fail_msg("got %s, want %s", shub_time_format(got, a), want);
}

/* ---- parsing ------------------------------------------------------------ */

static const struct {
    const char *text;
    int64_t ms;
} good_cases[] = {
    {"1970-01-01", 0},
    {"2024-02-29", INT64_C(1709164800000)},  /* a leap year */
    {"2000-02-29", INT64_C(951782400000)},   /* divisible by 400: leap */
    {"1900-03-01", INT64_C(-2203891200000)}, /* 1900 was not leap: no 29th before */
    {"1969-12-31", INT64_C(-86400000)},
    {"1936-05-12", INT64_C(-1061596800000)}, /* a date of birth */
    {"1600-02-29", INT64_C(-11670998400000)},
    {"0001-01-01", INT64_C(-62135596800000)},
    {"0000-01-01", SHUB_TIME_MIN_MS},
    {"9999-12-31T23:59:59.999Z", SHUB_TIME_MAX_MS},
    {"1969-12-31T23:59:59.999Z", -1},
    {"2026-07-01T10:00:00Z", INT64_C(1782900000000)},
    {"2026-07-01t10:00:00.5z", INT64_C(1782900000500)},
    {"2026-07-01 10:00:00.123456Z", INT64_C(1782900000123)}, /* cut, not rounded */
    {"2026-07-01T10:00:00.999999Z", INT64_C(1782900000999)},
    {"2026-07-01T11:00:00+01:00", INT64_C(1782900000000)},
    {"2026-07-01T05:30:00-04:30", INT64_C(1782900000000)},
    {"2026-07-01T10:00:00-00:00", INT64_C(1782900000000)},
    {"2026-07-02T09:59:00+23:59", INT64_C(1782900000000)},
    {"2024-12-31T23:59:59Z", INT64_C(1735689599000)}, /* a leap year's last second */
    /* leap seconds: the last millisecond of their minute, never the next day */
    {"2016-12-31T23:59:60Z", INT64_C(1483228799999)},
    {"2016-12-31T23:59:60.5Z", INT64_C(1483228799999)},
    {"2017-01-01T00:59:60+01:00", INT64_C(1483228799999)},
};

static void test_shub_time_parse_good_forms_give_exact_ms(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        int64_t ms = 42;
        shub_err_t err;
        int rc = shub_time_parse(good_cases[i].text, &ms, &err);
        if (rc != 0 || ms != good_cases[i].ms)
            fail_msg("'%s': rc %d ms %lld, want %lld (%s)", good_cases[i].text, rc,
                     (long long)ms, (long long)good_cases[i].ms, rc ? err.msg : "");
    }
}

#define FORMS "a date (YYYY-MM-DD) or an RFC 3339 time (YYYY-MM-DDTHH:MM:SSZ)"

static const struct {
    const char *text;
    const char *msg;
} bad_cases[] = {
    {"", "no time given: want " FORMS},
    {NULL, "no time given: want " FORMS},
    {"2025-02-29", "'2025-02-29': February 2025 has no day 29"},
    {"1900-02-29", "'1900-02-29': February 1900 has no day 29"},
    {"2026-04-31", "'2026-04-31': April 2026 has no day 31"},
    {"2026-12-32", "'2026-12-32': December 2026 has no day 32"},
    {"2026-07-00", "'2026-07-00': July 2026 has no day 00"},
    {"2026-13-01", "'2026-13-01': month 13 is not 01 to 12"},
    {"2026-00-10", "'2026-00-10': month 00 is not 01 to 12"},
    {"2026-07-01T24:00:00Z", "'2026-07-01T24:00:00Z': hour 24 is not 00 to 23"},
    {"2026-07-01T10:60:00Z", "'2026-07-01T10:60:00Z': minute 60 is not 00 to 59"},
    {"2026-07-01T10:00:61Z", "'2026-07-01T10:00:61Z': second 61 is not 00 to 60"},
    {"2026-07-01T10:00:00+24:00",
     "'2026-07-01T10:00:00+24:00': offset 24:00 is not 00:00 to 23:59"},
    {"2026-07-01T10:00:00",
     "'2026-07-01T10:00:00' has no time zone: end it with Z (UTC) or an offset such as "
     "+01:00"},
    {"2026-07-01T10:00Z", "'2026-07-01T10:00Z' is not " FORMS},
    {"2026-07-01T10:00:00.Z", "'2026-07-01T10:00:00.Z' is not " FORMS},
    {"2026-07-01T10:00:00Zjunk", "'2026-07-01T10:00:00Zjunk' is not " FORMS},
    {"2026-07-01T10:00:00+0100", "'2026-07-01T10:00:00+0100' is not " FORMS},
    {"2026-07-01Tx", "'2026-07-01Tx' is not " FORMS},
    {"2026-7-1", "'2026-7-1' is not " FORMS},
    {"26-07-01", "'26-07-01' is not " FORMS},
    {"2026/07/01", "'2026/07/01' is not " FORMS},
    {"-2026-07-01", "'-2026-07-01' is not " FORMS},
    {"yesterday", "'yesterday' is not " FORMS},
    {"1782900000000", "'1782900000000' is not " FORMS},
    /* hostile length: the message quotes 40 bytes and stops */
    {"2026-07-01T10:00:00Z-and-then-a-great-deal-more-text",
     "'2026-07-01T10:00:00Z-and-then-a-great-de' is not " FORMS},
};

static void test_shub_time_parse_malformed_names_text_and_fault(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        int64_t ms = 42;
        shub_err_t err;
        int rc = shub_time_parse(bad_cases[i].text, &ms, &err);
        if (rc != SHUB_EVALUE || strcmp(err.msg, bad_cases[i].msg) != 0)
            fail_msg("'%s': rc %d msg \"%s\"",
                     bad_cases[i].text ? bad_cases[i].text : "NULL", rc, err.msg);
        assert_int_equal(err.code, SHUB_EVALUE);
        assert_int_equal(ms, 42); /* out-parameter untouched on failure */
    }
    int64_t ms;
    assert_int_equal(shub_time_parse("2026-13-01", &ms, NULL),
                     SHUB_EVALUE); /* err optional */
}

static void test_shub_time_parse_date_takes_only_dates(void **state)
{
    (void)state;
    int64_t ms = 42;
    shub_err_t err;
    assert_int_equal(shub_time_parse_date("2024-02-29", &ms, &err), 0);
    assert_int_equal(ms, INT64_C(1709164800000));
    assert_int_equal(shub_time_parse_date("1936-05-12", &ms, &err), 0);
    assert_int_equal(ms, INT64_C(-1061596800000));
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"2026-07-01T10:00:00Z", "'2026-07-01T10:00:00Z' is not a date (YYYY-MM-DD)"},
        {"2026-07-01 ", "'2026-07-01 ' is not a date (YYYY-MM-DD)"},
        {"2023-02-29", "'2023-02-29': February 2023 has no day 29"},
        {"2026-02-30", "'2026-02-30': February 2026 has no day 30"},
        {"", "no date given: want a date (YYYY-MM-DD)"},
        {"01/07/2026", "'01/07/2026' is not a date (YYYY-MM-DD)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms = 42;
        assert_int_equal(shub_time_parse_date(bad[i].text, &ms, &err), SHUB_EVALUE);
        assert_string_equal(err.msg, bad[i].msg);
        assert_int_equal(ms, 42);
    }
}

/* ---- formatting --------------------------------------------------------- */

static void test_shub_time_format_utc_with_milliseconds(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {INT64_C(951782400000), "2000-02-29T00:00:00.000Z"},
        {INT64_C(1782900000007), "2026-07-01T10:00:00.007Z"},
        {INT64_C(-1061596800000), "1936-05-12T00:00:00.000Z"},
        {SHUB_TIME_MIN_MS, "0000-01-01T00:00:00.000Z"},
        {SHUB_TIME_MAX_MS, "9999-12-31T23:59:59.999Z"},
        /* outside years 0000-9999 only a corrupt value: shown as its number */
        {SHUB_TIME_MAX_MS + 1, "253402300800000"},
        {SHUB_TIME_MIN_MS - 1, "-62167219200001"},
        {INT64_MIN, "-9223372036854775808"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[SHUB_TIME_TEXT];
        assert_ptr_equal(shub_time_format(cases[i].ms, out), out);
        assert_string_equal(out, cases[i].text);
    }
}

static void test_shub_time_format_date_utc_and_clamped(void **state)
{
    (void)state;
    char out[SHUB_TIME_DATE_TEXT];
    assert_string_equal(shub_time_format_date(-1, out), "1969-12-31");
    assert_string_equal(shub_time_format_date(INT64_C(1709164800000) + DAY - 1, out),
                        "2024-02-29");
    assert_string_equal(shub_time_format_date(INT64_C(-1061596800000), out),
                        "1936-05-12");
    assert_string_equal(shub_time_format_date(INT64_MAX, out), "9999-12-31");
    assert_string_equal(shub_time_format_date(INT64_MIN, out), "0000-01-01");
}

static void test_shub_time_format_then_parse_round_trips(void **state)
{
    (void)state;
    /* A walk over the whole range in uneven steps, negatives included. */
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t ms = SHUB_TIME_MIN_MS +
                     (int64_t)(x % (uint64_t)(SHUB_TIME_MAX_MS - SHUB_TIME_MIN_MS + 1));
        char text[SHUB_TIME_TEXT], date[SHUB_TIME_DATE_TEXT];
        int64_t back = 0;
        assert_int_equal(shub_time_parse(shub_time_format(ms, text), &back, NULL), 0);
        assert_int_equal(back, ms);
        assert_int_equal(
            shub_time_parse_date(shub_time_format_date(ms, date), &back, NULL), 0);
        assert_int_equal(back, ms - ((ms % DAY) + DAY) % DAY);
    }
}

/* ---- the calendar ------------------------------------------------------- */

static void test_shub_time_civil_days_known_dates(void **state)
{
    (void)state;
    static const struct {
        int y, m, d;
        int64_t days;
    } cases[] = {
        {1970, 1, 1, 0},      {1969, 12, 31, -1},      {2000, 3, 1, 11017},
        {2000, 2, 29, 11016}, {1900, 3, 1, -25508},    {1600, 2, 29, -135081},
        {0, 1, 1, -719528},   {9999, 12, 31, 2932896}, {2026, 7, 1, 20635},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(shub_time_days_from_civil(cases[i].y, cases[i].m, cases[i].d),
                         cases[i].days);
        int y, m, d;
        shub_time_civil_from_days(cases[i].days, &y, &m, &d);
        assert_int_equal(y, cases[i].y);
        assert_int_equal(m, cases[i].m);
        assert_int_equal(d, cases[i].d);
    }
}

/* Day by day from year -100 to 10100: each day's date follows the one
 * before by the Gregorian rules written out here, and converts back. */
static void test_shub_time_civil_days_every_day_follows_the_last(void **state)
{
    (void)state;
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t first = shub_time_days_from_civil(-100, 1, 1);
    int64_t last = shub_time_days_from_civil(10100, 12, 31);
    int py = -100, pm = 1, pd = 1;
    for (int64_t days = first + 1; days <= last; days++) {
        int leap = (py % 4 == 0 && py % 100 != 0) || py % 400 == 0;
        int len = month_days[pm - 1] + (pm == 2 && leap);
        int wy = py, wm = pm, wd = pd + 1;
        if (wd > len) {
            wd = 1;
            if (++wm > 12) {
                wm = 1;
                wy++;
            }
        }
        int y, m, d;
        shub_time_civil_from_days(days, &y, &m, &d);
        if (y != wy || m != wm || d != wd)
            fail_msg("day %lld: %d-%d-%d, want %d-%d-%d", (long long)days, y, m, d, wy,
                     wm, wd);
        if (shub_time_days_from_civil(y, m, d) != days)
            fail_msg("day %lld does not convert back", (long long)days);
        py = y, pm = m, pd = d;
    }
}

static void test_shub_time_weekday_utc_and_london(void **state)
{
    (void)state;
    assert_int_equal(shub_time_weekday(0, SHUB_TZ_UTC), 3);  /* Thursday */
    assert_int_equal(shub_time_weekday(-1, SHUB_TZ_UTC), 2); /* Wednesday */
    assert_int_equal(shub_time_weekday(at("2026-07-01"), SHUB_TZ_UTC), 2);
    /* 23:30 UTC on Sunday 5 July is already Monday in London */
    assert_int_equal(shub_time_weekday(at("2026-07-05T23:30:00Z"), SHUB_TZ_UTC), 6);
    assert_int_equal(shub_time_weekday(at("2026-07-05T23:30:00Z"), SHUB_TZ_LONDON), 0);
}

/* ---- Europe/London ------------------------------------------------------ */

static void test_shub_time_london_offset_both_changeovers(void **state)
{
    (void)state;
    static const struct {
        const char *utc;
        int64_t offset;
    } cases[] = {
        {"2026-01-15T12:00:00Z", 0},
        {"2026-03-29T00:59:59.999Z", 0}, /* last Sunday of March, 2026 */
        {"2026-03-29T01:00:00Z", HOUR},
        {"2026-07-15T12:00:00Z", HOUR},
        {"2026-10-25T00:59:59.999Z", HOUR}, /* last Sunday of October */
        {"2026-10-25T01:00:00Z", 0},
        {"2024-03-31T00:59:59.999Z", 0}, /* the 31st is itself the last Sunday */
        {"2024-03-31T01:00:00Z", HOUR},
        {"2024-10-27T00:59:59.999Z", HOUR},
        {"2024-10-27T01:00:00Z", 0},
        {"2026-03-28T12:00:00Z", 0}, /* the Saturday before */
        {"2026-10-24T23:59:59Z", HOUR},
        {"2026-12-31T23:59:59Z", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (shub_time_london_offset_ms(at(cases[i].utc)) != cases[i].offset)
            fail_msg("%s: offset %lld", cases[i].utc,
                     (long long)shub_time_london_offset_ms(at(cases[i].utc)));
}

/* ---- arithmetic --------------------------------------------------------- */

static const struct {
    const char *from;
    int months;
    shub_tz_t tz;
    const char *want;
} month_cases[] = {
    {"2026-03-31T10:00:00Z", -1, SHUB_TZ_UTC,
     "2026-02-28T10:00:00Z"}, /* end of a month */
    {"2024-03-31T10:00:00Z", -1, SHUB_TZ_UTC, "2024-02-29T10:00:00Z"}, /* leap year */
    {"2026-01-31T00:00:00Z", 1, SHUB_TZ_UTC, "2026-02-28T00:00:00Z"},
    {"2026-01-31T00:00:00Z", 2, SHUB_TZ_UTC, "2026-03-31T00:00:00Z"}, /* from the 31st */
    {"2026-05-31T00:00:00Z", 1, SHUB_TZ_UTC, "2026-06-30T00:00:00Z"},
    {"2024-02-29T00:00:00Z", 12, SHUB_TZ_UTC, "2025-02-28T00:00:00Z"},
    {"2024-02-29T00:00:00Z", -12, SHUB_TZ_UTC, "2023-02-28T00:00:00Z"},
    {"2024-02-29T00:00:00Z", 48, SHUB_TZ_UTC, "2028-02-29T00:00:00Z"},
    {"2026-12-15T08:00:00Z", 1, SHUB_TZ_UTC, "2027-01-15T08:00:00Z"},
    {"2026-01-15T08:00:00Z", -1, SHUB_TZ_UTC, "2025-12-15T08:00:00Z"},
    {"2026-01-15T08:00:00Z", -25, SHUB_TZ_UTC, "2023-12-15T08:00:00Z"},
    {"2026-07-01T10:00:00.123Z", -12, SHUB_TZ_UTC, "2025-07-01T10:00:00.123Z"},
    {"2026-07-01T10:00:00.123Z", 0, SHUB_TZ_UTC, "2026-07-01T10:00:00.123Z"},
    {"1970-01-31T12:00:00Z", -1, SHUB_TZ_UTC, "1969-12-31T12:00:00Z"}, /* before 1970 */
    {"1970-03-31T12:00:00Z", -1, SHUB_TZ_UTC, "1970-02-28T12:00:00Z"},
    {"1968-03-31T12:00:00Z", -1, SHUB_TZ_UTC, "1968-02-29T12:00:00Z"},
    /* UTC keeps UTC's clock across the changeover; London keeps London's */
    {"2026-07-15T08:00:00Z", -6, SHUB_TZ_UTC, "2026-01-15T08:00:00Z"},
    {"2026-07-15T09:00:00+01:00", -6, SHUB_TZ_LONDON, "2026-01-15T09:00:00Z"},
    {"2026-01-15T09:00:00Z", 6, SHUB_TZ_LONDON, "2026-07-15T09:00:00+01:00"},
    {"2026-03-31T23:30:00+01:00", -1, SHUB_TZ_LONDON, "2026-02-28T23:30:00Z"},
    /* MARAC's repeat window: 12 months earlier, same wall clock */
    {"2026-10-01T09:30:00+01:00", -12, SHUB_TZ_LONDON, "2025-10-01T09:30:00+01:00"},
    {"2026-02-01T09:30:00Z", -12, SHUB_TZ_LONDON, "2025-02-01T09:30:00Z"},
    /* 01:30 on 29 March 2026 does not exist in London: an hour on, 02:30 BST */
    {"2026-04-29T01:30:00+01:00", -1, SHUB_TZ_LONDON, "2026-03-29T02:30:00+01:00"},
    {"2026-04-29T00:30:00+01:00", -1, SHUB_TZ_LONDON, "2026-03-29T00:30:00Z"},
    {"2026-04-29T02:30:00+01:00", -1, SHUB_TZ_LONDON, "2026-03-29T02:30:00+01:00"},
    /* 01:30 on 25 October 2026 happens twice: the first, still BST */
    {"2026-09-25T01:30:00+01:00", 1, SHUB_TZ_LONDON, "2026-10-25T01:30:00+01:00"},
    {"2026-11-25T01:30:00Z", -1, SHUB_TZ_LONDON, "2026-10-25T01:30:00+01:00"},
    {"2026-10-25T01:30:00Z", -12, SHUB_TZ_LONDON, "2025-10-25T01:30:00+01:00"},
    {"2026-10-25T02:30:00Z", 1, SHUB_TZ_LONDON, "2026-11-25T02:30:00Z"},
};

static void test_shub_time_add_months_clamps_and_keeps_wall_clock(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof month_cases / sizeof month_cases[0]; i++) {
        int64_t got = shub_time_add_months(at(month_cases[i].from), month_cases[i].months,
                                           month_cases[i].tz);
        if (got != at(month_cases[i].want)) {
            char t[SHUB_TIME_TEXT];
            fail_msg("%s %+d months (%s): %s, want %s", month_cases[i].from,
                     month_cases[i].months, month_cases[i].tz ? "London" : "UTC",
                     shub_time_format(got, t), month_cases[i].want);
        }
    }
}

static void test_shub_time_add_months_outside_range_stays_defined(void **state)
{
    (void)state;
    /* brought into years 0000-9999 first; no overflow whatever the input */
    assert_time(shub_time_add_months(INT64_MAX, 0, SHUB_TZ_LONDON),
                "9999-12-31T23:59:59.999Z");
    assert_time(shub_time_add_months(INT64_MIN, 0, SHUB_TZ_UTC), "0000-01-01");
    assert_true(shub_time_add_months(0, 2000000000, SHUB_TZ_UTC) > SHUB_TIME_MAX_MS);
    assert_true(shub_time_add_months(0, -2000000000, SHUB_TZ_LONDON) < SHUB_TIME_MIN_MS);
}

static void test_shub_time_start_of_day_and_month_in_each_zone(void **state)
{
    (void)state;
    assert_time(shub_time_start_of_day(at("2026-07-01T10:00:00Z"), SHUB_TZ_UTC),
                "2026-07-01");
    assert_time(shub_time_start_of_day(at("2026-07-01T10:00:00Z"), SHUB_TZ_LONDON),
                "2026-06-30T23:00:00Z");
    assert_time(shub_time_start_of_day(at("2026-07-01T23:30:00Z"), SHUB_TZ_LONDON),
                "2026-07-01T23:00:00Z"); /* already 2 July in London */
    assert_time(shub_time_start_of_day(at("2026-01-15T10:00:00Z"), SHUB_TZ_LONDON),
                "2026-01-15");
    assert_time(shub_time_start_of_day(at("2026-03-29T12:00:00Z"), SHUB_TZ_LONDON),
                "2026-03-29"); /* midnight was still GMT */
    assert_time(shub_time_start_of_day(at("2026-10-25T12:00:00Z"), SHUB_TZ_LONDON),
                "2026-10-24T23:00:00Z"); /* midnight was still BST */
    assert_time(shub_time_start_of_day(-1, SHUB_TZ_UTC), "1969-12-31");
    assert_time(shub_time_start_of_month(at("2026-07-15T10:00:00Z"), SHUB_TZ_UTC),
                "2026-07-01");
    assert_time(shub_time_start_of_month(at("2026-07-15T10:00:00Z"), SHUB_TZ_LONDON),
                "2026-06-30T23:00:00Z");
    assert_time(shub_time_start_of_month(at("2026-03-31T23:30:00Z"), SHUB_TZ_LONDON),
                "2026-03-31T23:00:00Z"); /* 00:30 BST on 1 April */
    assert_time(shub_time_start_of_month(at("1969-12-31T23:59:59Z"), SHUB_TZ_UTC),
                "1969-12-01");
}

static void test_shub_now_ms_is_after_this_code_was_written(void **state)
{
    (void)state;
    int64_t a = shub_now_ms();
    assert_true(a > at("2026-01-01"));
    assert_true(shub_now_ms() >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shub_time_parse_good_forms_give_exact_ms),
        cmocka_unit_test(test_shub_time_parse_malformed_names_text_and_fault),
        cmocka_unit_test(test_shub_time_parse_date_takes_only_dates),
        cmocka_unit_test(test_shub_time_format_utc_with_milliseconds),
        cmocka_unit_test(test_shub_time_format_date_utc_and_clamped),
        cmocka_unit_test(test_shub_time_format_then_parse_round_trips),
        cmocka_unit_test(test_shub_time_civil_days_known_dates),
        cmocka_unit_test(test_shub_time_civil_days_every_day_follows_the_last),
        cmocka_unit_test(test_shub_time_weekday_utc_and_london),
        cmocka_unit_test(test_shub_time_london_offset_both_changeovers),
        cmocka_unit_test(test_shub_time_add_months_clamps_and_keeps_wall_clock),
        cmocka_unit_test(test_shub_time_add_months_outside_range_stays_defined),
        cmocka_unit_test(test_shub_time_start_of_day_and_month_in_each_zone),
        cmocka_unit_test(test_shub_now_ms_is_after_this_code_was_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
