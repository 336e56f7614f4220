/*
 * fuzz_checkpoints_parse: the libFuzzer target for the parser of exported
 * checkpoints (include/sharehub/witness.h), and (linked with replay.c) the
 * ordinary test that replays its corpus in checkpoints_parse/.
 *
 * The file an auditor is handed may be anything. A refusal must carry one of
 * the parser's codes, the line and column, and a message. An acceptance must
 * be exact: the format has one spelling for every value (single spaces, no
 * leading zeros, lowercase hex, a newline after every line), so writing back
 * what was parsed gives the input byte for byte. Any other outcome is a
 * parser bug, and the harness aborts so that libFuzzer keeps the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharehub/alloc.h"
#include "sharehub/err.h"
#include "sharehub/witness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void bug(const char *what, const shub_err_t *err)
{
    char line[512];
    fprintf(stderr, "fuzz_checkpoints_parse: %s: %s\n", what,
            err ? shub_err_format(err, line, sizeof line) : "");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    shub_kept_cp_t *list = NULL;
    size_t n = 0;
    shub_err_t err;
    shub_err_clear(&err);
    int rc = shub_cp_export_parse("input", (const char *)data, size, &list, &n, &err);
    if (rc) {
        if (rc != SHUB_EMALFORMED && rc != SHUB_EVERSION && rc != SHUB_EVALUE &&
            rc != SHUB_ELIMIT && rc != SHUB_ENOMEM)
            bug("refused with a code the parser does not give", &err);
        if (err.code != rc || err.msg[0] == '\0')
            bug("refusal without its code or message", &err);
        if (rc != SHUB_ENOMEM &&
            (err.line < 1 || err.column < 1 || strcmp(err.file, "input") != 0))
            bug("refusal that does not name the file, line and column", &err);
        return 0;
    }
    if ((n == 0) != (list == NULL))
        bug("accepted, with a list that does not match its count", NULL);
    size_t header = sizeof SHUB_CP_EXPORT_HEADER; /* with its newline */
    if (size < header || memcmp(data, SHUB_CP_EXPORT_HEADER "\n", header) != 0)
        bug("accepted without the header line", NULL);
    size_t pos = header;
    for (size_t i = 0; i < n; i++) {
        char line[SHUB_CP_EXPORT_LINE_MAX];
        size_t len;
        if (shub_cp_export_line(&list[i], line, &len) != 0)
            bug("accepted a checkpoint the writer refuses", NULL);
        if (len > size - pos || memcmp(data + pos, line, len) != 0)
            bug("written back, an accepted line differs from the input", NULL);
        pos += len;
    }
    if (pos != size)
        bug("accepted, with bytes that no checkpoint accounts for", NULL);
    shub_free(list);
    return 0;
}
