/*
 * file: reading a whole small file, the one way sharehub does it: YAML
 * configuration, scenarios, key files. A size cap is always given, because
 * a file named by a person may be a log, a device or a mistake, and the
 * error names the file and says why in words. And removing a directory tree,
 * the one way the benchmarks and the integration tests clear their
 * temporary directories.
 */
#ifndef SHAREHUB_FILE_H
#define SHAREHUB_FILE_H

#include <stddef.h>

#include "sharehub/err.h"

/* Reads the regular file at path, at most max_bytes, into *data_p (a new
 * buffer with a NUL after the last byte, for the caller to shub_free) and its
 * length into *len_p. On failure nothing is allocated and err (may be NULL)
 * has err->file = path and a message:
 *   SHUB_ENOTFOUND  "cannot open: No such file or directory"
 *   SHUB_EIO        "cannot open: ...", "cannot read: ...", "not a regular file"
 *   SHUB_ELIMIT     "file of N bytes exceeds limit M"
 *   SHUB_ENOMEM     "out of memory reading the file" */
int shub_file_read(const char *path, size_t max_bytes, char **data_p, size_t *len_p,
                   shub_err_t *err);

/* Removes dir and everything below it, without following links. Best effort:
 * what cannot be removed is left. 0 when dir is gone, SHUB_EIO otherwise. */
int shub_file_remove_tree(const char *dir);

#endif
