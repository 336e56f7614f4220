/*
 * registry: the partnership's areas and organisations (orgs.yaml), each
 * organisation's CURVE public key, and the expansion of recipient selectors.
 *
 * The public key is how the broker knows who is talking: the ZAP handler maps
 * the authenticated key to an org here, so two orgs sharing a key, or an org
 * without one, is a configuration error, never a warning. A key is given
 * inline (public_key) or read from <key_dir>/<id>.pub. Keys are Z85 text
 * (ZeroMQ RFC 32); the small decoder below keeps this module free of libzmq.
 * The file's schema and the checks that need no key are shared with the
 * agents (orgs.h); keys and kinds are the broker's.
 *
 * Lookups are linear scans: a region has well under a hundred organisations,
 * and the scans run once per recipient per share.
 */
#include "config_internal.h"

#include "sharehub/alloc.h"
#include "sharehub/file.h"
#include "sharehub/orgs.h"

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

/* ---- keys --------------------------------------------------------------- */

/* The org's CURVE public key: inline, or from <key_dir>/<id>.pub. */
static void load_key(loader_t *ld, shub_yaml_doc_t *doc, size_t i,
                     const shub_orgs_entry_t *r, shub_org_t *org)
{
    char at[64];
    if (r->public_key) {
        snprintf(at, sizeof at, "orgs[%zu].public_key", i);
        if (!z85_decode32(r->public_key, strlen(r->public_key), org->public_key))
            shub_yaml_error_path(
                doc, at, "org '%s': public_key is not a 40-character z85 key", r->id);
        else
            memcpy(org->public_z85, r->public_key, 40);
        return;
    }
    /* hub.yaml did not load, so there is no key directory to look in; its
     * own error says why, and one line per org here would only bury it. */
    if (!ld->key_dir)
        return;
    char path[1024];
    char *buf = NULL;
    size_t len = 0;
    shub_err_t err;
    snprintf(at, sizeof at, "orgs[%zu].id", i);
    int n = snprintf(path, sizeof path, "%s/%s.pub", ld->key_dir, r->id);
    if (n < 0 || (size_t)n >= sizeof path) {
        shub_yaml_error_path(doc, at, "org '%s': key file path is too long", r->id);
        return;
    }
    int rc = shub_file_read(path, KEY_FILE_MAX, &buf, &len, &err);
    if (rc == SHUB_ENOMEM) {
        ld->oom = true;
        return;
    }
    if (rc) {
        shub_yaml_error_path(doc, at, "org '%s': no public_key, and key file '%s': %s",
                             r->id, path, err.msg);
        return;
    }
    len = strcspn(buf, "\r\n"); /* the first line, without trailing blanks */
    while (len && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        len--;
    if (z85_decode32(buf, len, org->public_key))
        memcpy(org->public_z85, buf, 40);
    else
        shub_yaml_error_path(
            doc, at, "org '%s': key file '%s' does not hold a 40-character z85 key",
            r->id, path);
    shub_free(buf);
}

/* ---- loading ------------------------------------------------------------ */

bool shub_registry_kind_known(const loader_t *ld, const char *kind)
{
    for (size_t i = 0; i < ld->n_kinds; i++)
        if (strcmp(ld->kinds[i], kind) == 0)
            return true;
    return false;
}

static void add_kind(loader_t *ld, const char *kind)
{
    if (shub_registry_kind_known(ld, kind))
        return;
    const char **k = shub_config_alloc(ld, (ld->n_kinds + 1) * sizeof *k);
    if (!k)
        return;
    if (ld->n_kinds) /* arena: the old array is simply left behind */
        memcpy(k, ld->kinds, ld->n_kinds * sizeof *k);
    k[ld->n_kinds++] = kind;
    ld->kinds = k;
}

/* Copies one org out of the document, with its key. */
static void fill_org(loader_t *ld, shub_yaml_doc_t *doc, size_t i,
                     const shub_orgs_entry_t *r, shub_org_t *org)
{
    org->id = shub_config_strdup(ld, r->id);
    org->name = shub_config_strdup(ld, r->name);
    org->kind = shub_config_strdup(ld, r->kind);
    org->all_areas = shub_orgs_serves_all(r);
    if (!org->all_areas) {
        org->areas = shub_config_strv(ld, r->areas, r->areas_count);
        org->n_areas = r->areas_count;
    }
    if (org->kind)
        add_kind(ld, org->kind);
    load_key(ld, doc, i, r, org);
}

/* Two orgs with one key would make authentication ambiguous. Keys that
 * failed to load are all zero and already reported. */
static void check_keys_unique(shub_yaml_doc_t *doc, const shub_config_t *cfg)
{
    static const uint8_t zero[32];
    char at[64];
    for (size_t i = 0; i < cfg->n_orgs; i++) {
        if (memcmp(cfg->orgs[i].public_key, zero, 32) == 0)
            continue;
        for (size_t j = 0; j < i; j++) {
            if (memcmp(cfg->orgs[i].public_key, cfg->orgs[j].public_key, 32) == 0) {
                snprintf(at, sizeof at, "orgs[%zu].id", i);
                shub_yaml_error_path(doc, at,
                                     "org '%s' has the same public key as org '%s'",
                                     cfg->orgs[i].id, cfg->orgs[j].id);
                break;
            }
        }
    }
}

int shub_registry_load(loader_t *ld, const char *file)
{
    shub_yaml_doc_t *doc = NULL;
    shub_orgs_t raw = {0};
    int rc = shub_config_open(ld, file, true, &doc);
    if (rc == 0)
        rc = shub_orgs_bind(doc, &raw);
    if (rc == SHUB_ENOMEM || !raw.orgs) {
        /* Checking agreements against a registry that did not load would
         * only bury the real error under "unknown org" for every party. A
         * registry with a bad name in it still loads, to check against. */
        ld->registry_failed = true;
        shub_config_close(ld, &doc);
        return rc;
    }
    shub_config_t *cfg = ld->cfg;
    cfg->areas = shub_config_strv(ld, raw.areas, raw.areas_count);
    cfg->n_areas = raw.areas_count;
    cfg->orgs = shub_config_alloc(ld, raw.orgs_count * sizeof *cfg->orgs);
    for (size_t i = 0; i < raw.orgs_count && cfg->orgs && !ld->oom; i++) {
        fill_org(ld, doc, i, &raw.orgs[i], &cfg->orgs[i]);
        cfg->n_orgs = i + 1;
    }
    if (!ld->oom)
        check_keys_unique(doc, cfg);
    shub_config_close(ld, &doc);
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
