/*
 * cli: see include/sharehub/cli.h. The version comes from the generated
 * sharehub/version.h (CMake's project VERSION), so every program, the man
 * pages and the agent's HELLO say the same thing.
 */
#include "sharehub/cli.h"

#include "sharehub/alloc.h"
#include "sharehub/version.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

int shub_cli_exit(int rc)
{
    switch (rc) {
    case SHUB_OK:
        return EX_OK;
    case SHUB_ECONFIG:
    case SHUB_ECRYPTO: /* a key file that is malformed, not a pair, or too open */
        return EX_CONFIG;
    case SHUB_ENOTFOUND:
        return EX_NOINPUT;
    case SHUB_EIO:
    case SHUB_EDB:
        return EX_IOERR;
    case SHUB_EEXIST:
        return EX_CANTCREAT;
    case SHUB_EBUSY:
    case SHUB_EPROTO:
        return EX_UNAVAILABLE;
    case SHUB_ENOMEM:
        return EX_OSERR;
    case SHUB_EMALFORMED:
    case SHUB_ETYPE:
    case SHUB_EMISSING:
    case SHUB_EDUPKEY:
    case SHUB_ELIMIT:
    case SHUB_EUTF8:
    case SHUB_EUNKNOWN:
    case SHUB_EVERSION:
    case SHUB_EVALUE:
        return EX_DATAERR;
    default:
        return EX_SOFTWARE;
    }
}

int shub_cli_version(const char *prog)
{
    printf("%s %s\n", prog, SHUB_VERSION);
    return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
}

void shub_cli_exit_help(FILE *out)
{
#define ROW(code, name, meaning) fprintf(out, "  %3d  %s\n", code, meaning);
    fprintf(out, "exit status:\n");
    SHUB_EXIT_CODES(ROW)
#undef ROW
}

int shub_cli_usage(void (*usage)(FILE *out), bool asked)
{
    usage(asked ? stdout : stderr);
    return asked ? 0 : EX_USAGE;
}

void shub_cli_on_signal(int sig, void (*handler)(int))
{
    struct sigaction sa = {0};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = handler;
    sigaction(sig, &sa, NULL);
}

int shub_cli_read_all(FILE *f, size_t limit, char **data_p, size_t *len_p)
{
    size_t cap = 8192, n = 0;
    char *data = shub_malloc(cap);
    if (!data)
        return SHUB_ENOMEM;
    for (;;) {
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0 || n > limit)
            break;
        if (n == cap) {
            char *bigger = shub_realloc(data, cap * 2);
            if (!bigger) {
                shub_free(data);
                return SHUB_ENOMEM;
            }
            data = bigger;
            cap *= 2;
        }
    }
    if (ferror(f)) {
        shub_free(data);
        return SHUB_EIO;
    }
    *data_p = data;
    *len_p = n;
    return 0;
}

int shub_cli_need(const char *path, shub_cli_kind_t kind, const char *role,
                  shub_err_t *err)
{
    struct stat st;
    bool dir = kind == SHUB_CLI_DIR;
    if (stat(path, &st) != 0) {
        int e = errno;
        shub_err_set(err, SHUB_ENOTFOUND, "cannot open '%s' (%s): %s", path, role,
                     strerror(e));
        return e == ENOENT || e == ENOTDIR ? EX_NOINPUT
               : e == EACCES               ? EX_NOPERM
                                           : EX_IOERR;
    }
    if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
        shub_err_set(err, SHUB_ENOTFOUND, "cannot open '%s' (%s): not a %s", path, role,
                     dir ? "directory" : "regular file");
        return EX_NOINPUT;
    }
    if (access(path, dir ? R_OK | X_OK : R_OK) != 0) {
        int e = errno;
        shub_err_set(err, SHUB_EIO, "cannot open '%s' (%s): %s", path, role, strerror(e));
        return e == EACCES ? EX_NOPERM : EX_IOERR;
    }
    return 0;
}
