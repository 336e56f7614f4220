/*
 * bench_report: how every benchmark prints what it measured, so that the
 * programs' outputs read as one table and a script can read their figures.
 *
 * The machine a benchmark runs on is shared and noisy, so a figure that
 * matters is measured several times: a bench_stat_t keeps one value per run
 * and is reported as its median with the spread (lowest..highest), and a
 * ratio is the median of the ratios of runs made side by side. Every
 * figure a script may want is also printed as one `summary: name=value`
 * line; scripts/run-bench.sh gathers those lines into the block that ends
 * `make bench` (the names are listed there). Plain data and stdout only:
 * nothing here allocates.
 */
#ifndef SHAREHUB_BENCH_REPORT_H
#define SHAREHUB_BENCH_REPORT_H

#include <stdbool.h>

#define BENCH_MAX_RUNS 15   /* --runs at most: a median of more says little more */
#define BENCH_DEFAULT_RUNS 3
#define BENCH_DEFAULT_EVENTS 40000 /* a throughput run, broker's and peers' alike */

/* One figure over repeated runs. Zero-initialise; add one value per run. */
typedef struct bench_stat {
    double v[BENCH_MAX_RUNS];
    int n;
} bench_stat_t;

/* Records one run's value; values beyond BENCH_MAX_RUNS are ignored. */
void bench_stat_add(bench_stat_t *s, double value);

/* The median (the mean of the middle two for an even count), lowest and
 * highest value; 0 when no run was recorded. */
double bench_stat_median(const bench_stat_t *s);
double bench_stat_min(const bench_stat_t *s);
double bench_stat_max(const bench_stat_t *s);

/* The run-by-run ratios a / b of two stats recorded in the same rounds,
 * runs where b is 0 left out. Each round measures both close together, so
 * the median of these cancels what a round's load did to both, which a
 * ratio of medians drawn from different rounds would not. */
bench_stat_t bench_stat_ratio(const bench_stat_t *a, const bench_stat_t *b);

/* "[low..high of N]" for a stat of more than one run, "" otherwise, into
 * out (size bytes), with `decimals` digits after the point. Returns out. */
const char *bench_stat_spread(const bench_stat_t *s, int decimals, char *out,
                              unsigned size);

/* One aligned row: what was measured, the figure, the target (or ""), and
 * whether it was met (1), missed (0) or has no target (-1); `note`, if not
 * NULL, follows on the same line (the spread of a median, for instance). */
void bench_row(const char *what, const char *figure, const char *target, int met,
               const char *note);

/* A row for a rate that is the median of runs: "12345 ev/s" (the unit is
 * `unit`) with its spread as the note. `target_min` > 0 prints
 * ">= target_min" and judges the median against it. */
void bench_row_rate(const char *what, const bench_stat_t *s, const char *unit,
                    double target_min);

/* A row for a ratio's median against `target_min` (> 0: judged; 0: shown
 * only) with its spread, "n/a" when no run has one. Returns the median. */
double bench_row_ratio(const char *what, const bench_stat_t *ratio, double target_min);

/* Prints `summary: name=value` with `decimals` digits after the point. */
void bench_summary(const char *name, double value, int decimals);

/* bench_summary of a stat's median. */
void bench_summary_stat(const char *name, const bench_stat_t *s, int decimals);

/* Parses a --runs argument: 1..BENCH_MAX_RUNS, else -1. */
int bench_runs_parse(const char *arg);

#endif
