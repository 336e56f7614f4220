/*
 * cli: what the five programs share at their edge: the version they report,
 * the one table of exit codes, the check that names a required file before
 * anything tries to parse it, the answer to --help, catching a signal, and
 * reading a whole input.
 *
 * Exit codes are <sysexits.h> codes so that a service manager, a cron job or
 * a shell script can tell a configuration error from a crash without reading
 * the log. SHUB_EXIT_CODES is the only list: `--help` prints it, the man
 * pages are generated with it (docs/man/exit_table.c prints it), and
 * shub_cli_exit() maps every SHUB_E* result to one of its rows. A program
 * that needs a finer answer (sharehub-audit's "does not verify") uses a row
 * of this table for it, never a number of its own.
 */
#ifndef SHAREHUB_CLI_H
#define SHAREHUB_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "sharehub/err.h"

/* X(code, name, meaning): one row per exit code any program returns. The
 * meanings are written for the person reading a failed unit's status. */
#define SHUB_EXIT_CODES(X)                                                               \
    X(0, "EX_OK", "success")                                                             \
    X(1, "-", "a negative answer: the audit log does not verify, or has no such event")  \
    X(64, "EX_USAGE",                                                                    \
      "the command line is wrong: an unknown option, a missing argument")                \
    X(65, "EX_DATAERR",                                                                  \
      "the input is wrong: an event, a message, or a database that is not sharehub's")   \
    X(66, "EX_NOINPUT",                                                                  \
      "a file or directory that must exist does not: configuration, key, database")      \
    X(69, "EX_UNAVAILABLE",                                                              \
      "unavailable: the endpoint is taken, or (agent --until-done) no broker session")   \
    X(70, "EX_SOFTWARE", "an internal error: please report it")                          \
    X(71, "EX_OSERR", "the system failed: out of memory, no random numbers")             \
    X(73, "EX_CANTCREAT", "an output file cannot be created, or exists already")         \
    X(74, "EX_IOERR", "reading or writing failed: the database, the disk, the output")   \
    X(77, "EX_NOPERM", "permission denied: run as the service's user")                   \
    X(78, "EX_CONFIG",                                                                   \
      "the configuration is invalid: hub.yaml, orgs.yaml, an agreement, a key file")

/* The exit code for a SHUB_E* result (0 for 0): ECONFIG and ECRYPTO 78,
 * ENOTFOUND 66, EIO and EDB 74, EEXIST 73, EBUSY and EPROTO 69, ENOMEM 71,
 * the wire-decoding codes 65, EINVAL and anything unknown 70. */
int shub_cli_exit(int rc);

/* Prints "PROG VERSION" on stdout; returns 0, the exit code of --version. */
int shub_cli_version(const char *prog);

/* Prints the exit-code table, one aligned line per row, under "exit status:". */
void shub_cli_exit_help(FILE *out);

/* Answers --help and a wrong option alike for getopt's switch: prints usage on
 * stdout and returns 0 when `asked`, else on stderr and returns EX_USAGE. */
int shub_cli_usage(void (*usage)(FILE *out), bool asked);

/* Installs handler for signal sig, with no flags: no SA_RESTART, so a blocking
 * call returns EINTR and the program's loop sees the flag the handler set. */
void shub_cli_on_signal(int sig, void (*handler)(int));

/* Reads all of f into a new buffer, the caller's to free with shub_free. It
 * stops once more than `limit` bytes have come, so *len_p > limit says the
 * input is too long. 0, SHUB_ENOMEM, or SHUB_EIO (a read failed); *data_p and
 * *len_p are written only on success. */
int shub_cli_read_all(FILE *f, size_t limit, char **data_p, size_t *len_p);

typedef enum {
    SHUB_CLI_FILE, /* a regular file (or a link to one) */
    SHUB_CLI_DIR,  /* a directory */
} shub_cli_kind_t;

/* Checks that `path` exists, is of `kind` and can be read, before a loader
 * meets it. 0 if so; otherwise fills err with "cannot open 'PATH' (ROLE):
 * REASON" and returns the exit code: 66 missing, 77 not readable, 74 any
 * other failure, 66 for the wrong kind. `role` says what the file is for
 * ("the partnership's organisations"). */
int shub_cli_need(const char *path, shub_cli_kind_t kind, const char *role,
                  shub_err_t *err);

#endif
