/*
 * config_internal: what the config module's four files share, and what the
 * policy function reads. Not a public header: only broker/ includes it.
 *
 * Loading has two passes per YAML file. The first walks libyaml's events with
 * the cyaml schema in hand: it records the line and column of every node under
 * a path ("flows[2].fields[0]") and reports every structural error it meets
 * (unknown or duplicate key, missing key, wrong node kind, bad scalar), so a
 * file with five mistakes gets five messages. Only a clean file goes to
 * libcyaml, which builds the raw structs; semantic checks then look lines up
 * by path. libcyaml's own errors, should any remain, are captured from its
 * log callback as a fallback.
 *
 * Everything the loaded config holds lives in one arena, freed at once.
 */
#ifndef SHAREHUB_CONFIG_INTERNAL_H
#define SHAREHUB_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cyaml/cyaml.h>

#include "sharehub/config.h"
#include "sharehub/val.h"

/* ---- the loaded model --------------------------------------------------- */

typedef enum {
    AGR_DRAFT = 1,
    AGR_ACTIVE,
    AGR_SUSPENDED,
    AGR_EXPIRED,
} agr_status_t;

typedef enum {
    DATA_PERSONAL = 1,
    DATA_SPECIAL_CATEGORY,
    DATA_CRIMINAL_OFFENCE,
    DATA_CHILD,
    DATA_ANONYMOUS,
} data_class_t;

/* A set of organisations: by id, by kind, and optionally only those serving
 * the event's area. Empty orgs and kinds with serving_subject_area means any
 * party serving the area. */
typedef struct party_set {
    const char *const *orgs;
    size_t n_orgs;
    const char *const *kinds;
    size_t n_kinds;
    bool serving_subject_area;
} party_set_t;

typedef struct cond_node cond_node_t; /* condition AST (condition.c) */

typedef struct flow {
    const char *id;
    party_set_t from, to;
    const char *const *events; /* 1.. */
    size_t n_events;
    const char *const *purposes; /* the flow's subset, else the agreement's */
    size_t n_purposes;
    const char *const *bases; /* legal basis ids: the flow's subset, else all */
    size_t n_bases;
    const char *const *fields; /* allowed dotted paths */
    size_t n_fields;
    const char *condition_text; /* NULL: no condition */
    const cond_node_t *condition;
    uint32_t ack_within_hours; /* 0: none */
    uint32_t act_within_hours;
    bool onward_sharing;
    const char *const *report; /* fields whose values the audit log records */
    size_t n_report;
} flow_t;

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

/* One agreement, as loaded. `info` is what the public accessor hands out. */
typedef struct agreement {
    shub_agreement_info_t info;
    agr_status_t status;
    party_set_t parties;
    const role_t *roles;
    size_t n_roles;
    const char *const *purposes;
    size_t n_purposes;
    const basis_t *bases;
    size_t n_bases;
    const datum_t *data;
    size_t n_data;
    const char *retention;
    bool consent_required;
    const char *const *override_reasons;
    size_t n_override_reasons;
    const flow_t *flows;
    size_t n_flows;
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

/* The i-th agreement (id order) for the policy function; NULL if out of range. */
const agreement_t *shub_config_agreement_at(const shub_config_t *cfg, size_t i);

/* ---- conditions (condition.c) ------------------------------------------ */

/* Parses text into an AST in arena. SHUB_ECONFIG with msg set to
 * "unexpected 'x' at column N" (or similar), SHUB_ENOMEM. */
int cond_parse(shub_arena_t *arena, const char *text, const cond_node_t **out, char *msg,
               size_t msg_size);

/* True if the condition holds for ev; false for a missing field, a type
 * mismatch or a NULL condition's absence of meaning (NULL means "no
 * condition" and is true). */
bool cond_eval(const cond_node_t *cond, const shub_event_t *ev);

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

/* Reports one error (file, 1-based line and column, 0 when unknown). */
void ld_error(loader_t *ld, const char *file, int line, int column, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Arena helpers that set ld->oom on failure. */
char *ld_strdup(loader_t *ld, const char *s);
void *ld_alloc(loader_t *ld, size_t size);
const char *const *ld_strv(loader_t *ld, char *const *v, size_t n);

/* A YAML file read into memory, with the position of each node by path. */
typedef struct ynode {
    const char *path; /* "", "orgs[2]", "orgs[2].public_key" */
    int line, column; /* 1-based; a mapping entry's position is its key's */
} ynode_t;

typedef struct ydoc {
    char *file;     /* path as reported */
    uint8_t *bytes; /* the file */
    size_t len;
    shub_arena_t *arena; /* node paths */
    ynode_t *nodes;      /* shub_realloc'd */
    size_t n_nodes, cap_nodes;
} ydoc_t;

/* Reads `file` and walks it against `schema`, reporting structural errors.
 * Then, if clean, loads it with libcyaml into *data (NULL for an empty
 * document). Returns 0, SHUB_ECONFIG (errors reported), SHUB_EIO (reported,
 * only when `must_exist` or the file exists but cannot be read), SHUB_ENOENT-
 * like SHUB_ENOTFOUND (absent and !must_exist, nothing reported) or
 * SHUB_ENOMEM. The caller frees with ydoc_release and ydoc_free_data. */
int ydoc_load(loader_t *ld, const char *file, bool must_exist,
              const cyaml_schema_value_t *schema, ydoc_t *doc, void **data);

void ydoc_free_data(const cyaml_schema_value_t *schema, void *data);
void ydoc_release(ydoc_t *doc);

/* Line (and column) of the node at the printf-formed path, or of its nearest
 * recorded ancestor; 1 if nothing matches. */
int ydoc_line(const ydoc_t *doc, int *column, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Loads DIR/orgs.yaml into cfg (registry.c). */
int registry_load(loader_t *ld, const char *file);

/* Loads one agreement file, appending to cfg->agreements (agreement.c). */
int agreement_load(loader_t *ld, const char *file);

/* Sorts agreements by id and reports duplicate ids (agreement.c). */
void agreements_finish(loader_t *ld);

/* True if some org has this kind. */
bool ld_kind_known(const loader_t *ld, const char *kind);

#endif
