/*
 * log: see include/sharehub/log.h. Each event is formatted into one buffer
 * and written with one call, so processes sharing a terminal or a journal
 * stream do not interleave within a line, and newlines inside a message are
 * turned into spaces so one event is always one line.
 *
 * Under systemd, stderr is a stream into the journal and systemd says so in
 * JOURNAL_STREAM ("device:inode" of that stream). The journal reads an
 * sd-daemon prefix ("<3>") as the line's priority and stamps the time
 * itself, so then each line starts with the priority instead of our
 * timestamp. The check compares the variable with stderr itself, because a
 * child that inherited the variable may have had stderr redirected.
 */
#include "sharehub/log.h"

#include "sharehub/time.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024 /* longer events are cut: a log line is for a person */

static const char *prog = "sharehub";
static shub_log_level_t min_level = SHUB_LOG_INFO;
static int journal = -1; /* -1 not checked yet, else 0 or 1 */
static const char *const names[] = {"debug", "info", "warn", "error", "off"};
static const int priorities[] = {7, 6, 4, 3}; /* sd-daemon: debug, info, warning, err */

static bool stderr_is_journal(void)
{
    const char *stream = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char end;
    struct stat st;
    if (!stream || sscanf(stream, "%llu:%llu%c", &dev, &ino, &end) != 2)
        return false;
    return fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

void shub_log_init(const char *program, shub_log_level_t level)
{
    if (program) {
        const char *slash = strrchr(program, '/');
        prog = slash ? slash + 1 : program;
    }
    min_level = level;
    journal = stderr_is_journal();
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
    if (journal < 0)
        journal = stderr_is_journal();
    char line[LINE_MAX_BYTES];
    int n;
    if (journal) {
        n = snprintf(line, sizeof line, "<%d>%s %s: ", priorities[level], prog,
                     names[level]);
    } else {
        char now[SHUB_TIME_TEXT];
        n = snprintf(line, sizeof line,
                     "%s %s %s: ", shub_time_format(shub_now_ms(), now), prog,
                     names[level]);
    }
    size_t head = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + head, sizeof line - head - 1, fmt, ap);
    va_end(ap);
    size_t len = head + strlen(line + head);
    for (size_t i = head; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}
