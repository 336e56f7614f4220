/*
 * name: the partnership's one rule for identifiers. Organisation ids,
 * areas, kinds, event types, purposes and reason codes are all names, in
 * orgs.yaml and agreements as on the wire, so the rule lives on the ground
 * floor where the orgs schema and the codec both reach it.
 */
#ifndef SHAREHUB_NAME_H
#define SHAREHUB_NAME_H

#include <stdbool.h>
#include <stddef.h>

#define SHUB_NAME_MAX 64 /* bytes in a name */
#define SHUB_HUB_SENDER "hub" /* DELIVER.from of notices the broker itself sends;
                                 no organisation may take this id */

/* True if s[0..n) is a name: [a-z0-9][a-z0-9._-]*, 1..SHUB_NAME_MAX bytes. */
bool shub_name_span(const char *s, size_t n);

/* True if the C string s is a name; false for NULL. */
bool shub_is_name(const char *s);

#endif
