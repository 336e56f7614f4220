/*
 * log: see include/sharehub/log.h. One fprintf per line so concurrent
 * processes writing to one terminal do not interleave within a line.
 */
#include "sharehub/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *prog = "sharehub";
static shub_log_level_t min_level = SHUB_LOG_INFO;
static const char *names[] = {"debug", "info", "warn", "error", "off"};

void shub_log_init(const char *program, shub_log_level_t level)
{
    if (program) {
        const char *slash = strrchr(program, '/');
        prog = slash ? slash + 1 : program;
    }
    min_level = level;
}

int shub_log_level_parse(const char *name)
{
    for (int i = 0; name && i <= SHUB_LOG_OFF; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

void shub_log(shub_log_level_t level, const char *fmt, ...)
{
    if (level < min_level || level >= SHUB_LOG_OFF)
        return;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, prog, names[level], line);
}
