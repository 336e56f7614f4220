/*
 * err: result codes and the sticky, readable error detail every module fills.
 *
 * Functions return int: 0 on success, a negative SHUB_E* code on failure. The
 * optional shub_err_t says what went wrong in words a person can act on, and
 * where: a field path for wire input (`SHARE.payload.victim.name`), or a file,
 * line and column for configuration. Codes are stable and each has a short
 * token (shub_err_token) that travels in the wire protocol's ERROR message.
 */
#ifndef SHAREHUB_ERR_H
#define SHAREHUB_ERR_H

#include <stddef.h>

#define SHUB_ERR_PATH_MAX 128 /* a field path longer than this is cut with "..." */
#define SHUB_ERR_MSG_MAX 256
#define SHUB_ERR_FILE_MAX 256

enum {
    SHUB_OK = 0,
    SHUB_ENOMEM = -1,     /* out of memory */
    SHUB_EINVAL = -2,     /* bad argument from the caller */
    SHUB_EPROTO = -3,     /* protocol violation (state, order) */
    SHUB_ECONFIG = -4,    /* configuration error */
    SHUB_EIO = -5,        /* file or socket I/O failed */
    SHUB_EDB = -6,        /* database error */
    SHUB_ECRYPTO = -7,    /* key, signature or seal failure */
    SHUB_ENOTFOUND = -8,  /* no such item */
    SHUB_EEXIST = -9,     /* already exists */
    SHUB_EBUSY = -10,     /* try again later (cap reached, store unavailable) */
    /* Wire decoding. Each names one rule so tests and peers can tell them apart. */
    SHUB_EMALFORMED = -20, /* not msgpack, truncated, or trailing bytes */
    SHUB_ETYPE = -21,      /* a field has the wrong msgpack type */
    SHUB_EMISSING = -22,   /* a required field is absent */
    SHUB_EDUPKEY = -23,    /* a map repeats a key */
    SHUB_ELIMIT = -24,     /* a size, length, count or depth limit is exceeded */
    SHUB_EUTF8 = -25,      /* text is not valid UTF-8 */
    SHUB_EUNKNOWN = -26,   /* unknown message type */
    SHUB_EVERSION = -27,   /* unsupported protocol version */
    SHUB_EVALUE = -28,     /* right type, value not allowed (enum, id size, syntax) */
};

typedef struct shub_err {
    int code;                     /* SHUB_E* or 0 */
    char path[SHUB_ERR_PATH_MAX]; /* field path for wire errors, "" otherwise */
    char file[SHUB_ERR_FILE_MAX]; /* config file, "" when not about a file */
    int line;                     /* 1-based line in file, 0 when unknown */
    int column;                   /* 1-based column, 0 when unknown */
    char msg[SHUB_ERR_MSG_MAX];   /* lowercase, no full stop: what failed and why */
} shub_err_t;

/* Static English text for a code ("out of memory"); never NULL. */
const char *shub_strerror(int code);

/* Stable token for a code as used on the wire ("malformed", "limit"). */
const char *shub_err_token(int code);

/* Clears err (may be NULL). */
void shub_err_clear(shub_err_t *err);

/* Fills err (may be NULL) with code and a printf-style message; returns code so
 * callers can write `return shub_err_set(err, SHUB_EINVAL, "...")`. */
int shub_err_set(shub_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As shub_err_set, with a field path. */
int shub_err_set_path(shub_err_t *err, int code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* As shub_err_set, with a file position (line/column 0 when unknown). */
int shub_err_set_at(shub_err_t *err, int code, const char *file, int line, int column,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Writes the one-line form: "file:line:col: msg", "path: msg" or "msg". Returns
 * buf, always NUL-terminated. */
const char *shub_err_format(const shub_err_t *err, char *buf, size_t size);

#endif
