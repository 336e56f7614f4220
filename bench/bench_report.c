/*
 * bench_report: see bench_report.h. Sorting a copy of at most
 * BENCH_MAX_RUNS values is all the statistics a median needs.
 */
#include "bench_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bench_stat_add(bench_stat_t *s, double value)
{
    if (s->n < BENCH_MAX_RUNS)
        s->v[s->n++] = value;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A sorted copy of the values in out; returns the count. */
static int sorted(const bench_stat_t *s, double out[BENCH_MAX_RUNS])
{
    memcpy(out, s->v, (size_t)s->n * sizeof *out);
    qsort(out, (size_t)s->n, sizeof *out, cmp_double);
    return s->n;
}

double bench_stat_median(const bench_stat_t *s)
{
    double v[BENCH_MAX_RUNS];
    int n = sorted(s, v);
    if (n == 0)
        return 0;
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_stat_min(const bench_stat_t *s)
{
    double v[BENCH_MAX_RUNS];
    return sorted(s, v) ? v[0] : 0;
}

double bench_stat_max(const bench_stat_t *s)
{
    double v[BENCH_MAX_RUNS];
    int n = sorted(s, v);
    return n ? v[n - 1] : 0;
}

bench_stat_t bench_stat_ratio(const bench_stat_t *a, const bench_stat_t *b)
{
    bench_stat_t r = {0};
    for (int i = 0; i < a->n && i < b->n; i++)
        if (b->v[i] != 0)
            bench_stat_add(&r, a->v[i] / b->v[i]);
    return r;
}

const char *bench_stat_spread(const bench_stat_t *s, int decimals, char *out,
                              unsigned size)
{
    if (s->n > 1)
        snprintf(out, size, "[%.*f..%.*f of %d]", decimals, bench_stat_min(s), decimals,
                 bench_stat_max(s), s->n);
    else if (size)
        out[0] = '\0';
    return out;
}

void bench_row(const char *what, const char *figure, const char *target, int met,
               const char *note)
{
    printf("  %-48s %16s  %-14s %-6s %s\n", what, figure, target,
           met < 0 ? "" : met ? "met" : "MISSED", note ? note : "");
}

void bench_row_rate(const char *what, const bench_stat_t *s, const char *unit,
                    double target_min)
{
    char fig[64], tgt[64] = "", spread[96];
    double m = bench_stat_median(s);
    snprintf(fig, sizeof fig, "%.0f %s", m, unit);
    if (target_min > 0)
        snprintf(tgt, sizeof tgt, ">= %.0f", target_min);
    bench_row(what, fig, tgt, target_min > 0 ? m >= target_min : -1,
              bench_stat_spread(s, 0, spread, sizeof spread));
}

double bench_row_ratio(const char *what, const bench_stat_t *ratio, double target_min)
{
    char fig[64], tgt[64] = "", spread[96];
    double m = bench_stat_median(ratio);
    if (ratio->n)
        snprintf(fig, sizeof fig, "%.3f", m);
    else
        snprintf(fig, sizeof fig, "n/a");
    if (target_min > 0)
        snprintf(tgt, sizeof tgt, ">= %g", target_min);
    bench_row(what, fig, tgt, target_min > 0 && ratio->n ? m >= target_min : -1,
              bench_stat_spread(ratio, 3, spread, sizeof spread));
    return m;
}

void bench_summary(const char *name, double value, int decimals)
{
    printf("summary: %s=%.*f\n", name, decimals, value);
}

void bench_summary_stat(const char *name, const bench_stat_t *s, int decimals)
{
    bench_summary(name, bench_stat_median(s), decimals);
}

int bench_runs_parse(const char *arg)
{
    char *end;
    long n = strtol(arg, &end, 10);
    return *end == '\0' && n >= 1 && n <= BENCH_MAX_RUNS ? (int)n : -1;
}
