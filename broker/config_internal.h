/*
 * config_internal: what the config module's four files share. Not a public
 * header: only config.c, registry.c, agreement.c and condition.c include it
 * (the policy reads the loaded model through config.h).
 *
 * Each YAML file goes through the one loader (yaml.h): read into a tree
 * with positions, bound to the file's schema table, then checked here for
 * what a schema cannot say (ids that must exist, keys that must be unique,
 * dates in order, conditions that must parse). Errors collect in the
 * file's document and are reported in line order when the file is closed.
 * The semantic checks run only on a file that bound cleanly, so they never
 * see half a value.
 *
 * Everything the loaded config holds lives in one arena, freed at once.
 */
#ifndef SHAREHUB_CONFIG_INTERNAL_H
#define SHAREHUB_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/config.h"
#include "sharehub/val.h"
#include "sharehub/yaml.h"

/* ---- the loaded model --------------------------------------------------- */

typedef enum {
    DATA_PERSONAL = 1,
    DATA_SPECIAL_CATEGORY,
    DATA_CRIMINAL_OFFENCE,
    DATA_CHILD,
    DATA_ANONYMOUS,
} data_class_t;

typedef struct basis {
    const char *id;   /* uk-gdpr-6-1-e */
    const char *text; /* UK GDPR Article 6(1)(e) public task */
} basis_t;

typedef struct datum {
    const char *field; /* dotted path */
    data_class_t cls;
} datum_t;

typedef struct role {
    const char *party; /* org id or kind */
    const char *role;  /* controller | joint-controller | processor */
} role_t;

/* One agreement, as loaded: what the policy reads (config.h), and the rest
 * of what the file says, kept for the people who read it back. */
typedef struct agreement {
    shub_agreement_t pub;
    const role_t *roles;
    size_t n_roles;
    const char *const *purposes;
    size_t n_purposes;
    const basis_t *bases;
    size_t n_bases;
    const datum_t *data;
    size_t n_data;
    const char *retention;
    int id_line; /* where its id was declared, for duplicate reports */
} agreement_t;

struct shub_config {
    shub_arena_t *arena;
    shub_hub_settings_t hub;
    const char *const *areas;
    size_t n_areas;
    shub_org_t *orgs;
    size_t n_orgs;
    agreement_t **agreements; /* sorted by id; array from shub_malloc, items in arena */
    size_t n_agreements;
};

/* ---- conditions (condition.c) ------------------------------------------ */

/* Parses text into a condition in arena (which owns it). SHUB_ECONFIG with
 * msg set to "unexpected 'x' at column N" (or similar), SHUB_ENOMEM. */
int shub_cond_parse(shub_arena_t *arena, const char *text, shub_condition_t **out,
                    char *msg, size_t msg_size);

/* ---- the loader --------------------------------------------------------- */

typedef struct loader {
    shub_config_t *cfg;
    shub_config_report_fn *report;
    void *report_ctx;
    const char *dir;
    const char *key_dir; /* resolved, for orgs' .pub files; NULL if hub.yaml failed */
    const char **kinds;  /* distinct org kinds, in the cfg arena */
    size_t n_kinds;
    int n_errors;
    bool registry_failed; /* orgs.yaml did not load: skip checks against it */
    bool oom;             /* sticky: an allocation failed somewhere */
} loader_t;

/* Loads file as YAML into *doc_p. 0: a tree to bind. SHUB_ECONFIG: a syntax
 * error, waiting in *doc_p for shub_config_close. SHUB_ENOTFOUND: absent and
 * !must_exist, nothing reported, no document. Otherwise the failure is
 * reported (or ld->oom set) and there is no document. */
int shub_config_open(loader_t *ld, const char *file, bool must_exist,
                     shub_yaml_doc_t **doc_p);

/* Reports the document's errors in line order and frees it. */
void shub_config_close(loader_t *ld, shub_yaml_doc_t **doc_p);

/* Copies into the cfg arena; they set ld->oom on failure. */
char *shub_config_strdup(loader_t *ld, const char *s);
void *shub_config_alloc(loader_t *ld, size_t size);
const char *const *shub_config_strv(loader_t *ld, const char *const *v, size_t n);

/* Loads DIR/orgs.yaml into cfg (registry.c). */
int shub_registry_load(loader_t *ld, const char *file);

/* True if some org has this kind (registry.c). */
bool shub_registry_kind_known(const loader_t *ld, const char *kind);

/* Loads one agreement file, appending to cfg->agreements (agreement.c). */
int shub_agreement_load(loader_t *ld, const char *file);

/* Sorts agreements by id (agreement.c). */
void shub_agreements_finish(loader_t *ld);

#endif
