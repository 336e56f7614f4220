/*
 * registry: the partnership's areas and organisations (orgs.yaml), each
 * organisation's CURVE public key, and the expansion of recipient selectors.
 *
 * The public key is how the broker knows who is talking: the ZAP handler maps
 * the authenticated key to an org here, so two orgs sharing a key, or an org
 * without one, is a configuration error, never a warning. A key is given
 * inline (public_key) or read from <key_dir>/<id>.pub. Keys are Z85 text
 * (ZeroMQ RFC 32); the small decoder below keeps this module free of libzmq.
 *
 * Lookups are linear scans: a region has well under a hundred organisations,
 * and the scans run once per recipient per share.
 */
#include "config_internal.h"

#include "sharehub/alloc.h"
#include "sharehub/file.h"

#include <stdio.h>
#include <string.h>

#define KEY_FILE_MAX 256 /* a .pub file: 40 characters, maybe a newline or two */

/* ---- Z85 (RFC 32) ------------------------------------------------------- */

static const char z85_chars[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ".-:+=^!/*?&<>()[]{}@%$#";

/* Decodes exactly 40 Z85 characters into 32 bytes; false if malformed. */
static bool z85_decode32(const char *text, size_t len, uint8_t out[32])
{
    if (len != 40)
        return false;
    for (size_t i = 0; i < 40; i += 5) {
        uint64_t v = 0;
        for (size_t j = 0; j < 5; j++) {
            const char *p = text[i + j] ? strchr(z85_chars, text[i + j]) : NULL;
            if (!p)
                return false;
            v = v * 85 + (uint64_t)(p - z85_chars);
        }
        if (v > 0xffffffffu)
            return false;
        for (size_t j = 0; j < 4; j++)
            out[i / 5 * 4 + j] = (uint8_t)(v >> (24 - 8 * j));
    }
    return true;
}

/* ---- orgs.yaml schema --------------------------------------------------- */

typedef struct raw_org {
    char *id;
    char *name;
    char *kind;
    char **areas;
    unsigned areas_count;
    char *public_key;
} raw_org_t;

typedef struct raw_registry {
    char **areas;
    unsigned areas_count;
    raw_org_t *orgs;
    unsigned orgs_count;
} raw_registry_t;

static const cyaml_schema_value_t name_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, SHUB_MSG_MAX_NAME),
};

static const cyaml_schema_field_t org_fields[] = {
    CYAML_FIELD_STRING_PTR("id", CYAML_FLAG_POINTER, raw_org_t, id, 1, SHUB_MSG_MAX_NAME),
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, raw_org_t, name, 1, 200),
    CYAML_FIELD_STRING_PTR("kind", CYAML_FLAG_POINTER, raw_org_t, kind, 1,
                           SHUB_MSG_MAX_NAME),
    CYAML_FIELD_SEQUENCE("areas", CYAML_FLAG_POINTER, raw_org_t, areas, &name_entry, 1,
                         256),
    CYAML_FIELD_STRING_PTR("public_key", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER,
                           raw_org_t, public_key, 1, 64),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t org_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_org_t, org_fields),
};

static const cyaml_schema_field_t registry_fields[] = {
    CYAML_FIELD_SEQUENCE("areas", CYAML_FLAG_POINTER, raw_registry_t, areas, &name_entry,
                         1, 1024),
    CYAML_FIELD_SEQUENCE("orgs", CYAML_FLAG_POINTER, raw_registry_t, orgs, &org_entry, 1,
                         4096),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t registry_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_registry_t, registry_fields),
};

/* ---- keys --------------------------------------------------------------- */

static void load_key(loader_t *ld, const ydoc_t *doc, size_t i, const raw_org_t *r,
                     shub_org_t *org)
{
    int col, line;
    if (r->public_key) {
        if (!z85_decode32(r->public_key, strlen(r->public_key), org->public_key)) {
            line = ydoc_line(doc, &col, "orgs[%zu].public_key", i);
            ld_error(ld, doc->file, line, col,
                     "org '%s': public_key is not a 40-character z85 key", r->id);
            return;
        }
        memcpy(org->public_z85, r->public_key, 40);
        return;
    }
    char path[1024];
    char *buf = NULL;
    size_t len = 0;
    shub_err_t err;
    line = ydoc_line(doc, &col, "orgs[%zu].id", i);
    int n = snprintf(path, sizeof path, "%s/%s.pub", ld->key_dir, r->id);
    if (n < 0 || (size_t)n >= sizeof path) {
        ld_error(ld, doc->file, line, col, "org '%s': key file path is too long", r->id);
        return;
    }
    int rc = shub_file_read(path, KEY_FILE_MAX, &buf, &len, &err);
    if (rc == SHUB_ENOMEM) {
        ld->oom = true;
        return;
    }
    if (rc) {
        ld_error(ld, doc->file, line, col, "org '%s': no public_key, and key file '%s': %s",
                 r->id, path, err.msg);
        return;
    }
    len = strcspn(buf, "\r\n"); /* the first line, without trailing blanks */
    while (len && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        len--;
    if (z85_decode32(buf, len, org->public_key))
        memcpy(org->public_z85, buf, 40);
    else
        ld_error(ld, doc->file, line, col,
                 "org '%s': key file '%s' does not hold a 40-character z85 key", r->id,
                 path);
    shub_free(buf);
}

/* ---- validation --------------------------------------------------------- */

static bool in_list(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static void check_areas(loader_t *ld, const ydoc_t *doc, const raw_registry_t *raw)
{
    for (size_t i = 0; i < raw->areas_count; i++) {
        const char *a = raw->areas[i];
        int col, line = ydoc_line(doc, &col, "areas[%zu]", i);
        if (!shub_is_name(a))
            ld_error(ld, doc->file, line, col,
                     "area '%s' is not a name ([a-z0-9][a-z0-9._-]*)", a);
        else if (strcmp(a, "all") == 0)
            ld_error(ld, doc->file, line, col,
                     "area 'all' is reserved: it means every area");
        else if (in_list(raw->areas, i, a))
            ld_error(ld, doc->file, line, col, "duplicate area '%s'", a);
    }
}

static void add_kind(loader_t *ld, const char *kind)
{
    if (ld_kind_known(ld, kind))
        return;
    const char **k = ld_alloc(ld, (ld->n_kinds + 1) * sizeof *k);
    if (!k)
        return;
    if (ld->n_kinds) /* arena: the old array is simply left behind */
        memcpy(k, ld->kinds, ld->n_kinds * sizeof *k);
    k[ld->n_kinds++] = kind;
    ld->kinds = k;
}

static void check_org(loader_t *ld, const ydoc_t *doc, const raw_registry_t *raw,
                      size_t i, shub_org_t *org)
{
    const raw_org_t *r = &raw->orgs[i];
    int col, line = ydoc_line(doc, &col, "orgs[%zu].id", i);
    if (!shub_is_name(r->id)) {
        ld_error(ld, doc->file, line, col,
                 "org id '%s' is not a name ([a-z0-9][a-z0-9._-]*)", r->id);
    } else {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(raw->orgs[j].id, r->id) == 0) {
                ld_error(ld, doc->file, line, col,
                         "duplicate org id '%s' (first at line %d)", r->id,
                         ydoc_line(doc, NULL, "orgs[%zu].id", j));
                break;
            }
        }
    }
    if (!shub_is_name(r->kind)) {
        line = ydoc_line(doc, &col, "orgs[%zu].kind", i);
        ld_error(ld, doc->file, line, col, "org '%s': kind '%s' is not a name", r->id,
                 r->kind);
    } else {
        add_kind(ld, org->kind);
    }
    bool all = in_list(r->areas, r->areas_count, "all");
    if (all && r->areas_count > 1) {
        line = ydoc_line(doc, &col, "orgs[%zu].areas", i);
        ld_error(ld, doc->file, line, col, "org '%s': 'all' must be its only area",
                 r->id);
    }
    org->all_areas = all;
    for (size_t k = 0; k < r->areas_count && !all; k++) {
        if (!in_list(raw->areas, raw->areas_count, r->areas[k])) {
            line = ydoc_line(doc, &col, "orgs[%zu].areas[%zu]", i, k);
            ld_error(ld, doc->file, line, col, "org '%s': unknown area '%s'", r->id,
                     r->areas[k]);
        }
    }
    if (!all) {
        org->areas = ld_strv(ld, r->areas, r->areas_count);
        org->n_areas = r->areas_count;
    }
    load_key(ld, doc, i, r, org);
}

int registry_load(loader_t *ld, const char *file)
{
    ydoc_t doc;
    raw_registry_t *raw = NULL;
    int rc = ydoc_load(ld, file, true, &registry_schema, &doc, (void **)&raw);
    if (rc || !raw) {
        /* Checking agreements against a registry that did not load would
         * only bury the real error under "unknown org" for every party. */
        ld->registry_failed = true;
        ydoc_release(&doc);
        return rc;
    }
    shub_config_t *cfg = ld->cfg;
    check_areas(ld, &doc, raw);
    cfg->areas = ld_strv(ld, raw->areas, raw->areas_count);
    cfg->n_areas = raw->areas_count;
    cfg->orgs = ld_alloc(ld, raw->orgs_count * sizeof *cfg->orgs);
    for (size_t i = 0; i < raw->orgs_count && cfg->orgs && !ld->oom; i++) {
        shub_org_t *org = &cfg->orgs[i];
        org->id = ld_strdup(ld, raw->orgs[i].id);
        org->name = ld_strdup(ld, raw->orgs[i].name);
        org->kind = ld_strdup(ld, raw->orgs[i].kind);
        if (ld->oom)
            break;
        check_org(ld, &doc, raw, i, org);
        cfg->n_orgs = i + 1;
    }
    /* Two orgs with one key would make authentication ambiguous. Keys that
     * failed to load are all zero and already reported. */
    static const uint8_t zero[32];
    for (size_t i = 0; i < cfg->n_orgs && !ld->oom; i++) {
        if (memcmp(cfg->orgs[i].public_key, zero, 32) == 0)
            continue;
        for (size_t j = 0; j < i; j++) {
            if (memcmp(cfg->orgs[i].public_key, cfg->orgs[j].public_key, 32) == 0) {
                int col, line = ydoc_line(&doc, &col, "orgs[%zu].id", i);
                ld_error(ld, doc.file, line, col,
                         "org '%s' has the same public key as org '%s'", cfg->orgs[i].id,
                         cfg->orgs[j].id);
                break;
            }
        }
    }
    ydoc_free_data(&registry_schema, raw);
    ydoc_release(&doc);
    return ld->oom ? SHUB_ENOMEM : 0;
}

/* ---- accessors ---------------------------------------------------------- */

size_t shub_config_org_count(const shub_config_t *cfg)
{
    return cfg ? cfg->n_orgs : 0;
}

const shub_org_t *shub_config_org_at(const shub_config_t *cfg, size_t i)
{
    return cfg && i < cfg->n_orgs ? &cfg->orgs[i] : NULL;
}

const shub_org_t *shub_config_org(const shub_config_t *cfg, const char *id)
{
    if (!cfg || !id)
        return NULL;
    for (size_t i = 0; i < cfg->n_orgs; i++)
        if (strcmp(cfg->orgs[i].id, id) == 0)
            return &cfg->orgs[i];
    return NULL;
}

const shub_org_t *shub_config_org_by_key(const shub_config_t *cfg, const uint8_t key[32])
{
    if (!cfg || !key)
        return NULL;
    for (size_t i = 0; i < cfg->n_orgs; i++)
        if (memcmp(cfg->orgs[i].public_key, key, 32) == 0)
            return &cfg->orgs[i];
    return NULL;
}

bool shub_config_area_known(const shub_config_t *cfg, const char *area)
{
    if (!cfg || !area)
        return false;
    for (size_t i = 0; i < cfg->n_areas; i++)
        if (strcmp(cfg->areas[i], area) == 0)
            return true;
    return false;
}

bool shub_org_serves(const shub_org_t *org, const char *area)
{
    if (!org || !area)
        return false;
    if (org->all_areas)
        return true;
    for (size_t i = 0; i < org->n_areas; i++)
        if (strcmp(org->areas[i], area) == 0)
            return true;
    return false;
}

static int add_org(const shub_org_t *org, const char *sender, const shub_org_t **out,
                   size_t max, size_t *n)
{
    if (sender && strcmp(org->id, sender) == 0)
        return 0;
    for (size_t i = 0; i < *n; i++)
        if (out[i] == org)
            return 0;
    if (*n >= max)
        return SHUB_ELIMIT;
    out[(*n)++] = org;
    return 0;
}

int shub_config_expand(const shub_config_t *cfg, const char *selector, const char *sender,
                       const shub_org_t **out, size_t max, size_t *n)
{
    if (!cfg || !selector || !n || (!out && max) || !shub_is_selector(selector))
        return SHUB_EINVAL;
    const char *at = strchr(selector, '@');
    if (!at) {
        const shub_org_t *org = shub_config_org(cfg, selector);
        return org ? add_org(org, sender, out, max, n) : 0;
    }
    size_t kind_len = (size_t)(at - selector);
    const char *area = at + 1;
    if (!shub_config_area_known(cfg, area))
        return 0; /* else orgs serving "all" would match any typo */
    for (size_t i = 0; i < cfg->n_orgs; i++) {
        const shub_org_t *org = &cfg->orgs[i];
        if (kind_len &&
            (strlen(org->kind) != kind_len || memcmp(org->kind, selector, kind_len) != 0))
            continue;
        if (!shub_org_serves(org, area))
            continue;
        int rc = add_org(org, sender, out, max, n);
        if (rc)
            return rc;
    }
    return 0;
}
