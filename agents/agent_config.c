/*
 * agent_config: the agent's view of the partnership's config directory
 * (include/sharehub/agent.h). orgs.yaml is read through the one schema the
 * broker reads it with (orgs.h), so the two never disagree about the file.
 * Of hub.yaml an agent reads only endpoint and key_dir and ignores the
 * rest, so a new broker setting never stops an old agent. Both go through
 * the one YAML loader; the first error, in line order, is the one returned.
 */
#include "sharehub/agent.h"

#include "sharehub/alloc.h"
#include "sharehub/orgs.h"
#include "sharehub/yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- hub.yaml: endpoint, brokers and key_dir ------------------------- */

typedef struct raw_hub {
    const char *endpoint;
    const char *key_dir;
    const char **brokers;
    size_t n_brokers;
} raw_hub_t;

static const shub_yaml_type_t endpoint_type = {
    .kind = SHUB_YAML_TEXT, .min = 1, .max = 255};
static const shub_yaml_type_t path_type = {.kind = SHUB_YAML_TEXT, .min = 1, .max = 1024};
static const shub_yaml_type_t brokers_type = {.kind = SHUB_YAML_LIST,
                                              .min = 1,
                                              .max = SHUB_AGENT_MAX_BROKERS,
                                              .entry = &endpoint_type};
static const shub_yaml_field_t hub_fields[] = {
    {"endpoint", false, offsetof(raw_hub_t, endpoint), 0, &endpoint_type},
    {"brokers", false, offsetof(raw_hub_t, brokers), offsetof(raw_hub_t, n_brokers),
     &brokers_type},
    {"key_dir", false, offsetof(raw_hub_t, key_dir), 0, &path_type},
    {NULL, false, 0, 0, NULL},
};
/* Open: the broker owns the rest of hub.yaml, and a setting an agent does
 * not know must not stop it. */
static const shub_yaml_type_t hub_type = {
    .kind = SHUB_YAML_STRUCT, .flags = SHUB_YAML_OPEN, .fields = hub_fields};

/* Loads path and binds it into dst with bind. On failure err holds the
 * first error in line order, and *doc_p is freed. */
static int load(const char *path, int (*bind)(shub_yaml_doc_t *, void *), void *dst,
                shub_yaml_doc_t **doc_p, shub_err_t *err)
{
    int rc = shub_yaml_load(path, doc_p, err);
    if (rc == 0)
        rc = bind(*doc_p, dst);
    if (rc && *doc_p) {
        shub_yaml_report_first(*doc_p, err);
        shub_yaml_destroy(doc_p);
        if (rc == SHUB_ENOMEM)
            shub_err_set(err, SHUB_ENOMEM, "out of memory");
    }
    return rc;
}

static int bind_hub(shub_yaml_doc_t *doc, void *dst)
{
    return shub_yaml_bind(doc, &hub_type, dst);
}

static int bind_orgs(shub_yaml_doc_t *doc, void *dst)
{
    return shub_orgs_bind(doc, dst);
}

/* ---- building the config ---------------------------------------------- */

static char *join(const char *dir, const char *name)
{
    if (name[0] == '/')
        return shub_strdup(name);
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *out = shub_malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", dir, name);
    return out;
}

static char **copy_list(const char *const *v, size_t n)
{
    char **out = shub_calloc(n ? n : 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++)
        if (!(out[i] = shub_strdup(v[i]))) {
            for (size_t k = 0; k < i; k++)
                shub_free(out[k]);
            shub_free(out);
            return NULL;
        }
    return out;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        shub_free(v[i]);
    shub_free(v);
}

int shub_agent_config_load(const char *dir, const char *org, shub_agent_config_t **cfg_p,
                           shub_err_t *err)
{
    if (!dir || !org || !cfg_p)
        return shub_err_set(err, SHUB_EINVAL, "no config directory or organisation");
    shub_agent_config_t *cfg = shub_calloc(1, sizeof *cfg);
    shub_yaml_doc_t *hub_doc = NULL, *orgs_doc = NULL;
    raw_hub_t hub = {0};
    shub_orgs_t orgs = {0};
    char *path = NULL;
    int rc;
    if (!cfg)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");

    if (!(path = join(dir, "hub.yaml")))
        goto nomem;
    rc = load(path, bind_hub, &hub, &hub_doc, err);
    if (rc == SHUB_ENOTFOUND) /* no hub.yaml: defaults, the endpoint from --broker */
        rc = 0;
    if (rc)
        goto fail;
    if (hub.endpoint && !(cfg->endpoint = shub_strdup(hub.endpoint)))
        goto nomem;
    if (hub.n_brokers) {
        if (!(cfg->brokers = copy_list(hub.brokers, hub.n_brokers)))
            goto nomem;
        cfg->n_brokers = hub.n_brokers;
    }
    if (!(cfg->key_dir = join(dir, hub.key_dir ? hub.key_dir : "keys")))
        goto nomem;

    shub_free(path);
    if (!(path = join(dir, "orgs.yaml")))
        goto nomem;
    if ((rc = load(path, bind_orgs, &orgs, &orgs_doc, err))) {
        if (rc == SHUB_ENOTFOUND || rc == SHUB_ELIMIT)
            rc = SHUB_EIO;
        goto fail;
    }
    const shub_orgs_entry_t *me = shub_orgs_find(&orgs, org);
    if (!me) {
        rc = shub_err_set(err, SHUB_ENOTFOUND, "organisation '%s' is not in '%s'", org,
                          path);
        goto fail;
    }
    bool all = shub_orgs_serves_all(me);
    if (!(cfg->org = shub_strdup(me->id)) || !(cfg->kind = shub_strdup(me->kind)) ||
        !(cfg->all_areas = copy_list(orgs.areas, orgs.areas_count)))
        goto nomem;
    cfg->n_all_areas = orgs.areas_count;
    /* `all` means every area of the partnership: the profile gets them named. */
    if (!(cfg->areas = all ? copy_list(orgs.areas, orgs.areas_count)
                           : copy_list(me->areas, me->areas_count)))
        goto nomem;
    cfg->n_areas = all ? orgs.areas_count : me->areas_count;

    shub_yaml_destroy(&hub_doc);
    shub_yaml_destroy(&orgs_doc);
    shub_free(path);
    *cfg_p = cfg;
    return 0;
nomem:
    rc = shub_err_set(err, SHUB_ENOMEM, "out of memory");
fail:
    shub_yaml_destroy(&hub_doc);
    shub_yaml_destroy(&orgs_doc);
    shub_free(path);
    shub_agent_config_destroy(&cfg);
    return rc;
}

void shub_agent_config_destroy(shub_agent_config_t **cfg_p)
{
    if (!cfg_p || !*cfg_p)
        return;
    shub_agent_config_t *cfg = *cfg_p;
    shub_free(cfg->endpoint);
    free_list(cfg->brokers, cfg->n_brokers);
    shub_free(cfg->key_dir);
    shub_free(cfg->org);
    shub_free(cfg->kind);
    free_list(cfg->areas, cfg->n_areas);
    free_list(cfg->all_areas, cfg->n_all_areas);
    shub_free(cfg);
    *cfg_p = NULL;
}
