/*
 * log: one readable line per event on stderr, for operators. Never payload
 * contents; ids as key=value. The audit log in SQLite is a product feature
 * and lives elsewhere (store): the two are kept apart on purpose.
 *
 *   2026-11-22T08:01:02.345Z sharehub-broker info: share event=... from=wmp
 *
 * When stderr is the systemd journal (JOURNAL_STREAM names stderr's device
 * and inode), a line carries the journal's priority instead of the time,
 * which the journal records itself (3 error, 4 warning, 6 info, 7 debug):
 *
 *   <6>sharehub-broker info: share event=... from=wmp
 */
#ifndef SHAREHUB_LOG_H
#define SHAREHUB_LOG_H

typedef enum {
    SHUB_LOG_DEBUG = 0,
    SHUB_LOG_INFO = 1,
    SHUB_LOG_WARN = 2,
    SHUB_LOG_ERROR = 3,
    SHUB_LOG_OFF = 4,
} shub_log_level_t;

/* Sets the program name shown on each line and the lowest level printed,
 * and checks whether stderr is the journal (again on every call, so a
 * program that redirects stderr calls it afterwards). */
void shub_log_init(const char *program, shub_log_level_t level);

/* Parses "debug", "info", "warn", "error", "off"; returns -1 if unknown. */
int shub_log_level_parse(const char *name);

/* Writes one line at level, if at or above the level set; a newline in the
 * message becomes a space and a line is cut at 1,024 bytes. */
void shub_log(shub_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define shub_debug(...) shub_log(SHUB_LOG_DEBUG, __VA_ARGS__)
#define shub_info(...)  shub_log(SHUB_LOG_INFO, __VA_ARGS__)
#define shub_warn(...)  shub_log(SHUB_LOG_WARN, __VA_ARGS__)
#define shub_error(...) shub_log(SHUB_LOG_ERROR, __VA_ARGS__)

#endif
