/*
 * fuzz_whatif_row: the libFuzzer target for what-if's reading of an audit
 * row (shub_whatif_event), and (linked with replay.c) the ordinary test that
 * replays its corpus. The store is outside input to `sharehub-audit
 * what-if`: anyone who can write the file can put anything in a row's
 * `fields` and `facts` texts.
 *
 * The input is the field list, a newline, then the facts. The rules
 * checked: the call returns 0, SHUB_EVALUE or SHUB_ENOMEM; on 0 the payload
 * is a map, the consent is the row's, and the list counts as cut short only
 * if it holds "...". Any other outcome aborts so that libFuzzer keeps it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharehub/whatif.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void bug(const char *what)
{
    fprintf(stderr, "fuzz_whatif_row: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *facts = strchr(text, '\n');
    if (facts)
        *facts++ = '\0';
    shub_audit_row_t row = {
        .seq = 1,
        .action = "decide",
        .decision = "allow",
        .event_type = "marac.referral",
        .consent = facts && facts[0] == 'r' ? "refused" : "given",
        .fields = text,
        .facts = facts,
    };
    shub_arena_t *arena = shub_arena_new(256);
    shub_event_t ev;
    shub_err_t err;
    bool complete = true;
    int rc = arena ? shub_whatif_event(arena, &row, &ev, &complete, &err) : SHUB_ENOMEM;
    if (rc != 0 && rc != SHUB_EVALUE && rc != SHUB_ENOMEM)
        bug("an error code other than EVALUE or ENOMEM");
    if (rc == 0 && ev.payload.type != SHUB_VAL_MAP)
        bug("the payload is not a map");
    if (rc == 0 && !complete && !strstr(text, "..."))
        bug("a field list without '...' read as cut short");
    if (rc == 0 && ev.consent != SHUB_CONSENT_GIVEN && ev.consent != SHUB_CONSENT_REFUSED)
        bug("consent not read back");
    shub_arena_destroy(&arena);
    free(text);
    return 0;
}
