/*
 * orgs: the schema of orgs.yaml, the partnership's areas and organisations,
 * as the broker and every agent read it. One schema means an agent and the
 * broker can never disagree about what the file says: a file one of them
 * refuses, the other refuses too.
 *
 *   areas: [birmingham-east, coventry, walsall]   # names; 'all' is reserved
 *   orgs:
 *     - id: wmp                       # a name, unique
 *       name: West Midlands Police    # for people
 *       kind: police                  # a name: what agreements and selectors use
 *       areas: [all]                  # declared areas, or 'all' alone
 *       public_key: "rq:rM>}U?@..."   # optional: else <key_dir>/<id>.pub
 *
 * Binding checks everything that needs no key file: names are names, ids
 * and areas unique, every area an org serves declared. Keys are the
 * broker's business (broker/registry.c).
 */
#ifndef SHAREHUB_ORGS_H
#define SHAREHUB_ORGS_H

#include <stdbool.h>
#include <stddef.h>

#include "sharehub/yaml.h"

typedef struct shub_orgs_entry {
    const char *id;
    const char *name;
    const char *kind;
    const char **areas; /* as written: declared areas, or "all" alone */
    size_t areas_count;
    const char *public_key; /* Z85 text; NULL: in <key_dir>/<id>.pub */
} shub_orgs_entry_t;

typedef struct shub_orgs {
    const char **areas; /* the partnership's declared areas */
    size_t areas_count;
    shub_orgs_entry_t *orgs; /* in file order */
    size_t orgs_count;
} shub_orgs_t;

/* Binds an orgs.yaml document into out (strings borrowed from doc) and
 * checks it; errors go to doc, at the value at fault. Returns 0,
 * SHUB_ECONFIG or SHUB_ENOMEM. After SHUB_ECONFIG, out is filled if the
 * file had the right shape (only names or areas were wrong), else left
 * as it was. */
int shub_orgs_bind(shub_yaml_doc_t *doc, shub_orgs_t *out);

/* The organisation with this id, or NULL. */
const shub_orgs_entry_t *shub_orgs_find(const shub_orgs_t *orgs, const char *id);

/* True if the organisation serves every area (`areas: [all]`). */
bool shub_orgs_serves_all(const shub_orgs_entry_t *org);

#endif
