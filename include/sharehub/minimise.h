/*
 * minimise: a recipient's copy of an event holds only the payload fields its
 * flow allows ("the minimum disclosure required is the maximum permitted"),
 * and the audit row gives an account of it in names and codes, never values:
 * every field the event carried, the fields that went, the fields that were
 * stripped, and the flow's `report` facts. Pure: no I/O; memory comes from
 * the caller's arena.
 *
 * Field lists are comma-separated dotted paths, each once, in payload order
 * (arrays are transparent: `open_actions.owner` names the `owner` of every
 * element). A list longer than SHUB_MINIMISE_MAX_TEXT bytes ends with "..."
 * after the last whole path that fits: a payload of thousands of distinct
 * fields is not a real event, and the audit row stays bounded.
 */
#ifndef SHAREHUB_MINIMISE_H
#define SHAREHUB_MINIMISE_H

#include <stddef.h>

#include "sharehub/err.h"
#include "sharehub/val.h"

#define SHUB_MINIMISE_MAX_TEXT 4096 /* bytes in one field list or fact list */

typedef struct shub_minimised {
    shub_val_t payload;   /* the reduced payload (shares leaves with the original) */
    const char *shared;   /* leaf paths kept ("" if none) */
    const char *stripped; /* top-most paths removed ("" if none) */
    const char *facts;    /* "path=value,..." for the report fields present, or NULL:
                             names, integers and booleans only; anything else is
                             recorded as "(not a code)" */
} shub_minimised_t;

/* Reduces `payload` (a map) to the `allowed` dotted paths and gives the
 * account of it; `report` lists the paths whose code values the audit row
 * records. Strings and the reduced payload live in `arena`. SHUB_EINVAL if
 * payload is not a map, SHUB_ENOMEM. */
int shub_minimise(shub_arena_t *arena, const shub_val_t *payload,
                  const char *const *allowed, size_t n_allowed,
                  const char *const *report, size_t n_report, shub_minimised_t *out,
                  shub_err_t *err);

/* Every leaf path of a payload, as a field list, into *out (in arena):
 * what the audit keeps of an event's shape, for re-deciding it later.
 * SHUB_ENOMEM. */
int shub_minimise_leaves(shub_arena_t *arena, const shub_val_t *payload, const char **out,
                         shub_err_t *err);

#endif
