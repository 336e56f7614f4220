/*
 * orgs: see include/sharehub/orgs.h. The limits on counts and lengths are
 * sanity bounds against a wrong file, not tuning: a region has well under a
 * hundred organisations.
 */
#include "sharehub/orgs.h"

#include "sharehub/name.h"

#include <stdio.h>
#include <string.h>

static const shub_yaml_type_t name_type = {
    .kind = SHUB_YAML_TEXT, .min = 1, .max = SHUB_NAME_MAX};
static const shub_yaml_type_t title_type = {.kind = SHUB_YAML_TEXT, .min = 1, .max = 200};
static const shub_yaml_type_t key_type = {.kind = SHUB_YAML_TEXT, .min = 1, .max = 64};
static const shub_yaml_type_t org_areas_type = {
    .kind = SHUB_YAML_LIST, .min = 1, .max = 256, .entry = &name_type};
static const shub_yaml_type_t areas_type = {
    .kind = SHUB_YAML_LIST, .min = 1, .max = 1024, .entry = &name_type};

#define FIELD(key, req, member, type)                                                    \
    {                                                                                    \
        key, req, offsetof(shub_orgs_entry_t, member), 0, type                           \
    }
static const shub_yaml_field_t org_fields[] = {
    FIELD("id", true, id, &name_type),
    FIELD("name", true, name, &title_type),
    FIELD("kind", true, kind, &name_type),
    {"areas", true, offsetof(shub_orgs_entry_t, areas),
     offsetof(shub_orgs_entry_t, areas_count), &org_areas_type},
    FIELD("public_key", false, public_key, &key_type),
    {NULL, false, 0, 0, NULL},
};
#undef FIELD

static const shub_yaml_type_t org_type = {
    .kind = SHUB_YAML_STRUCT, .size = sizeof(shub_orgs_entry_t), .fields = org_fields};
static const shub_yaml_type_t orgs_type = {
    .kind = SHUB_YAML_LIST, .min = 1, .max = 4096, .entry = &org_type};
static const shub_yaml_field_t file_fields[] = {
    {"areas", true, offsetof(shub_orgs_t, areas), offsetof(shub_orgs_t, areas_count),
     &areas_type},
    {"orgs", true, offsetof(shub_orgs_t, orgs), offsetof(shub_orgs_t, orgs_count),
     &orgs_type},
    {NULL, false, 0, 0, NULL},
};
static const shub_yaml_type_t file_type = {.kind = SHUB_YAML_STRUCT,
                                           .fields = file_fields};

static bool listed(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static void check_areas(shub_yaml_doc_t *doc, const shub_orgs_t *o)
{
    char path[64];
    for (size_t i = 0; i < o->areas_count; i++) {
        const char *a = o->areas[i];
        snprintf(path, sizeof path, "areas[%zu]", i);
        if (!shub_is_name(a))
            shub_yaml_error_path(doc, path,
                                 "area '%s' is not a name ([a-z0-9][a-z0-9._-]*)", a);
        else if (strcmp(a, "all") == 0)
            shub_yaml_error_path(doc, path,
                                 "area 'all' is reserved: it means every area");
        else if (listed(o->areas, i, a))
            shub_yaml_error_path(doc, path, "duplicate area '%s'", a);
    }
}

static void check_org(shub_yaml_doc_t *doc, const shub_orgs_t *o, size_t i)
{
    const shub_orgs_entry_t *r = &o->orgs[i];
    char path[96];
    snprintf(path, sizeof path, "orgs[%zu].id", i);
    if (!shub_is_name(r->id)) {
        shub_yaml_error_path(doc, path,
                             "org id '%s' is not a name ([a-z0-9][a-z0-9._-]*)", r->id);
    } else if (strcmp(r->id, SHUB_HUB_SENDER) == 0) {
        shub_yaml_error_path(doc, path,
                             "org id '%s' is reserved: the broker sends its own notices "
                             "as '%s'",
                             r->id, SHUB_HUB_SENDER);
    } else {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(o->orgs[j].id, r->id) == 0) {
                char first[64];
                snprintf(first, sizeof first, "orgs[%zu].id", j);
                shub_yaml_error_path(doc, path,
                                     "duplicate org id '%s' (first at line %d)", r->id,
                                     shub_yaml_at(doc, first)->line);
                break;
            }
        }
    }
    snprintf(path, sizeof path, "orgs[%zu].kind", i);
    if (!shub_is_name(r->kind))
        shub_yaml_error_path(doc, path, "org '%s': kind '%s' is not a name", r->id,
                             r->kind);
    bool all = shub_orgs_serves_all(r) || listed(r->areas, r->areas_count, "all");
    if (all && r->areas_count > 1) {
        snprintf(path, sizeof path, "orgs[%zu].areas", i);
        shub_yaml_error_path(doc, path, "org '%s': 'all' must be its only area", r->id);
    }
    for (size_t k = 0; k < r->areas_count && !all; k++) {
        if (!listed(o->areas, o->areas_count, r->areas[k])) {
            snprintf(path, sizeof path, "orgs[%zu].areas[%zu]", i, k);
            shub_yaml_error_path(doc, path, "org '%s': unknown area '%s'", r->id,
                                 r->areas[k]);
        }
    }
}

int shub_orgs_bind(shub_yaml_doc_t *doc, shub_orgs_t *out)
{
    shub_orgs_t o = {0};
    int rc = shub_yaml_bind(doc, &file_type, &o);
    if (rc)
        return rc;
    size_t before = shub_yaml_error_count(doc);
    check_areas(doc, &o);
    for (size_t i = 0; i < o.orgs_count; i++)
        check_org(doc, &o, i);
    if (shub_yaml_oom(doc))
        return SHUB_ENOMEM;
    *out = o;
    return shub_yaml_error_count(doc) > before ? SHUB_ECONFIG : 0;
}

const shub_orgs_entry_t *shub_orgs_find(const shub_orgs_t *orgs, const char *id)
{
    for (size_t i = 0; orgs && id && i < orgs->orgs_count; i++)
        if (strcmp(orgs->orgs[i].id, id) == 0)
            return &orgs->orgs[i];
    return NULL;
}

bool shub_orgs_serves_all(const shub_orgs_entry_t *org)
{
    return org && org->areas_count >= 1 && strcmp(org->areas[0], "all") == 0;
}
