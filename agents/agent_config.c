/*
 * agent_config: the agent's view of the partnership's config directory
 * (include/sharehub/agent.h). The broker validates these files in full (see
 * broker/config.c); an agent reads only the few keys it needs, ignoring the
 * rest with CYAML_CFG_IGNORE_UNKNOWN_KEYS, so a new broker setting never
 * breaks an old agent.
 */
#include "sharehub/agent.h"

#include "sharehub/alloc.h"

#include <cyaml/cyaml.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_FILE_BYTES (1024 * 1024) /* the same bound the broker puts on a YAML file */

/* ---- libcyaml glue ---------------------------------------------------- */

static void *cy_mem(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (size == 0) {
        shub_free(ptr);
        return NULL;
    }
    return shub_realloc(ptr, size);
}

typedef struct {
    char msg[SHUB_ERR_MSG_MAX];
    int line, column;
} capture_t;

/* Keeps libcyaml's first error line and the first position it names. */
/* libcyaml hands its own format string to this callback. */
__attribute__((format(printf, 3, 0))) static void cy_log(cyaml_log_t level, void *ctx,
                                               const char *fmt, va_list args)
{
    capture_t *cap = ctx;
    char line[SHUB_ERR_MSG_MAX];
    if (level < CYAML_LOG_ERROR)
        return;
    vsnprintf(line, sizeof line, fmt, args);
    line[strcspn(line, "\n")] = '\0';
    const char *at = strstr(line, "(line: ");
    if (at && cap->line == 0) {
        unsigned long l = 0, c = 0;
        if (sscanf(at, "(line: %lu, column: %lu)", &l, &c) >= 1 && l < 1000000 &&
            c < 1000000) {
            cap->line = (int)l; /* libcyaml 1.3 prints 1-based positions */
            cap->column = (int)c;
        }
    } else if (!cap->msg[0] && strncmp(line, "Load: ", 6) == 0 &&
               strcmp(line, "Load: Backtrace:") != 0) {
        snprintf(cap->msg, sizeof cap->msg, "%s", line + 6);
        if (cap->msg[0] >= 'A' && cap->msg[0] <= 'Z')
            cap->msg[0] = (char)(cap->msg[0] + 32);
    }
}

static const cyaml_config_t free_config = {
    .mem_fn = cy_mem,
    .log_level = CYAML_LOG_ERROR,
    .flags = CYAML_CFG_IGNORE_UNKNOWN_KEYS,
};

/* Reads a whole file, at most MAX_FILE_BYTES. SHUB_ENOTFOUND if it does not
 * exist, SHUB_EIO otherwise. */
static int read_file(const char *path, char **text_p, size_t *len_p, shub_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return shub_err_set(err, errno == ENOENT ? SHUB_ENOTFOUND : SHUB_EIO,
                            "cannot read '%s': %s", path, strerror(errno));
    char *buf = shub_malloc(MAX_FILE_BYTES + 1);
    if (!buf) {
        fclose(f);
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad || n > MAX_FILE_BYTES) {
        shub_free(buf);
        return bad ? shub_err_set(err, SHUB_EIO, "cannot read '%s'", path)
                   : shub_err_set(err, SHUB_ECONFIG, "'%s' exceeds %d bytes", path,
                                  MAX_FILE_BYTES);
    }
    buf[n] = '\0';
    *text_p = buf;
    *len_p = n;
    return 0;
}

/* Parses path against schema into *data. An empty file loads as NULL. */
static int load_yaml(const char *path, const cyaml_schema_value_t *schema, void **data,
                     shub_err_t *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, err);
    if (rc)
        return rc;
    capture_t cap = {.msg = "", .line = 0, .column = 0};
    cyaml_config_t cc = free_config;
    cc.log_fn = cy_log;
    cc.log_ctx = &cap;
    *data = NULL;
    cyaml_err_t cerr =
        cyaml_load_data((const uint8_t *)text, len, &cc, schema, data, NULL);
    shub_free(text);
    if (cerr == CYAML_OK)
        return 0;
    *data = NULL;
    if (cerr == CYAML_ERR_OOM)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    return shub_err_set_at(err, SHUB_ECONFIG, path, cap.line ? cap.line : 1, cap.column,
                           "%s", cap.msg[0] ? cap.msg : cyaml_strerror(cerr));
}

/* ---- hub.yaml: endpoint and key_dir ----------------------------------- */

typedef struct raw_hub {
    char *endpoint;
    char *key_dir;
} raw_hub_t;

static const cyaml_schema_field_t hub_fields[] = {
    CYAML_FIELD_STRING_PTR("endpoint", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER,
                           raw_hub_t, endpoint, 1, 255),
    CYAML_FIELD_STRING_PTR("key_dir", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER, raw_hub_t,
                           key_dir, 1, 1024),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t hub_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_hub_t, hub_fields),
};

/* ---- orgs.yaml: areas, and each org's id, kind and areas -------------- */

typedef struct raw_org {
    char *id;
    char *kind;
    char **areas;
    unsigned areas_count;
} raw_org_t;

typedef struct raw_orgs {
    char **areas;
    unsigned areas_count;
    raw_org_t *orgs;
    unsigned orgs_count;
} raw_orgs_t;

static const cyaml_schema_value_t name_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, SHUB_MSG_MAX_NAME),
};

static const cyaml_schema_field_t org_fields[] = {
    CYAML_FIELD_STRING_PTR("id", CYAML_FLAG_POINTER, raw_org_t, id, 1, SHUB_MSG_MAX_NAME),
    CYAML_FIELD_STRING_PTR("kind", CYAML_FLAG_POINTER, raw_org_t, kind, 1,
                           SHUB_MSG_MAX_NAME),
    CYAML_FIELD_SEQUENCE("areas", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, raw_org_t,
                         areas, &name_entry, 0, 256),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t org_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_org_t, org_fields),
};

static const cyaml_schema_field_t orgs_fields[] = {
    CYAML_FIELD_SEQUENCE("areas", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, raw_orgs_t,
                         areas, &name_entry, 0, 256),
    CYAML_FIELD_SEQUENCE("orgs", CYAML_FLAG_POINTER, raw_orgs_t, orgs, &org_entry, 0,
                         100000),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t orgs_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_orgs_t, orgs_fields),
};

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

static char **copy_list(char *const *v, size_t n)
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
    raw_hub_t *hub = NULL;
    raw_orgs_t *orgs = NULL;
    char *path = NULL;
    int rc;
    if (!cfg)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");

    if (!(path = join(dir, "hub.yaml")))
        goto nomem;
    rc = load_yaml(path, &hub_schema, (void **)&hub, err);
    if (rc == SHUB_ENOTFOUND) /* no hub.yaml: defaults, the endpoint from --broker */
        rc = 0;
    if (rc)
        goto fail;
    if (hub && hub->endpoint && !(cfg->endpoint = shub_strdup(hub->endpoint)))
        goto nomem;
    if (!(cfg->key_dir = join(dir, hub && hub->key_dir ? hub->key_dir : "keys")))
        goto nomem;

    shub_free(path);
    if (!(path = join(dir, "orgs.yaml")))
        goto nomem;
    if ((rc = load_yaml(path, &orgs_schema, (void **)&orgs, err))) {
        if (rc == SHUB_ENOTFOUND)
            rc = SHUB_EIO;
        goto fail;
    }
    const raw_org_t *me = NULL;
    for (unsigned i = 0; orgs && i < orgs->orgs_count && !me; i++)
        if (strcmp(orgs->orgs[i].id, org) == 0)
            me = &orgs->orgs[i];
    if (!me) {
        rc = shub_err_set(err, SHUB_ENOTFOUND, "organisation '%s' is not in '%s'", org,
                          path);
        goto fail;
    }
    bool all = false;
    for (unsigned i = 0; i < me->areas_count; i++)
        all = all || strcmp(me->areas[i], "all") == 0;
    if (!(cfg->org = shub_strdup(me->id)) || !(cfg->kind = shub_strdup(me->kind)) ||
        !(cfg->all_areas = copy_list(orgs->areas, orgs->areas_count)))
        goto nomem;
    cfg->n_all_areas = orgs->areas_count;
    /* `all` means every area of the partnership: the profile gets them named. */
    if (!(cfg->areas = all ? copy_list(orgs->areas, orgs->areas_count)
                           : copy_list(me->areas, me->areas_count)))
        goto nomem;
    cfg->n_areas = all ? orgs->areas_count : me->areas_count;

    cyaml_free(&free_config, &hub_schema, hub, 0);
    cyaml_free(&free_config, &orgs_schema, orgs, 0);
    shub_free(path);
    *cfg_p = cfg;
    return 0;
nomem:
    rc = shub_err_set(err, SHUB_ENOMEM, "out of memory");
fail:
    if (hub)
        cyaml_free(&free_config, &hub_schema, hub, 0);
    if (orgs)
        cyaml_free(&free_config, &orgs_schema, orgs, 0);
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
    shub_free(cfg->key_dir);
    shub_free(cfg->org);
    shub_free(cfg->kind);
    free_list(cfg->areas, cfg->n_areas);
    free_list(cfg->all_areas, cfg->n_all_areas);
    shub_free(cfg);
    *cfg_p = NULL;
}
