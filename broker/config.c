/*
 * config: loading the configuration directory, and hub.yaml.
 *
 * This file holds the loader's skeleton (read each file, report errors, build
 * one immutable shub_config_t or nothing) and the broker settings. Every
 * file goes through the one YAML loader (yaml.h), which gives each error its
 * line and column and reports them in line order; the organisation registry
 * lives in registry.c, agreements in agreement.c, conditions in condition.c.
 */
#include "config_internal.h"

#include "sharehub/alloc.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors, files and arena helpers ------------------------------------ */

/* Reports an error that has no place in a YAML file (a file or directory
 * that cannot be read). */
static void report_error(loader_t *ld, const shub_err_t *err)
{
    ld->n_errors++;
    if (ld->report)
        ld->report(err, ld->report_ctx);
}

int shub_config_open(loader_t *ld, const char *file, bool must_exist,
                     shub_yaml_doc_t **doc_p)
{
    shub_err_t err;
    *doc_p = NULL;
    int rc = shub_yaml_load(file, doc_p, &err);
    if (rc == 0 || rc == SHUB_ECONFIG || (rc == SHUB_ENOTFOUND && !must_exist))
        return rc;
    if (rc == SHUB_ENOMEM)
        ld->oom = true;
    else
        report_error(ld, &err);
    return rc;
}

void shub_config_close(loader_t *ld, shub_yaml_doc_t **doc_p)
{
    if (!*doc_p)
        return;
    if (shub_yaml_oom(*doc_p))
        ld->oom = true;
    ld->n_errors += (int)shub_yaml_report(*doc_p, ld->report, ld->report_ctx);
    shub_yaml_destroy(doc_p);
}

void *shub_config_alloc(loader_t *ld, size_t size)
{
    void *p = shub_arena_alloc(ld->cfg->arena, size);
    if (!p)
        ld->oom = true;
    return p;
}

char *shub_config_strdup(loader_t *ld, const char *s)
{
    if (!s)
        return NULL;
    char *p = shub_arena_strndup(ld->cfg->arena, s, strlen(s));
    if (!p)
        ld->oom = true;
    return p;
}

const char *const *shub_config_strv(loader_t *ld, const char *const *v, size_t n)
{
    const char **out = shub_config_alloc(ld, (n ? n : 1) * sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(out[i] = shub_config_strdup(ld, v[i])))
            return NULL;
    return out;
}

/* ---- hub.yaml ----------------------------------------------------------- */

enum { SYNC_FULL = 1, SYNC_NORMAL };

/* Each limit: its default and the range that makes sense. The ranges are
 * sanity bounds against typos (an extra zero), not tuning advice. */
static const struct {
    const char *name;
    size_t offset; /* in shub_hub_settings_t */
    uint32_t def, min, max;
} limit_table[] = {
#define L(n, d, lo, hi)                                                                  \
    {                                                                                    \
#n, offsetof(shub_hub_settings_t, n), d, lo, hi                                  \
    }
    L(max_message_bytes, 1048576, 1024, SHUB_MSG_MAX_BYTES),
    L(window, 256, 1, 65536),
    L(batch_max, 512, 1, 65536),
    L(heartbeat_ms, 2000, 100, 3600000),
    L(peer_timeout_ms, 10000, 200, 86400000),
    L(redeliver_ms, 10000, 100, 86400000),
    L(max_attempts, 10, 1, 100000),
    L(future_skew_ms, 300000, 0, 86400000),
    L(checkpoint_every, 10000, 1, 100000000),
    L(checkpoint_ms, 5000, 100, 86400000),
    L(deadline_hour_ms, 3600000, 1, 3600000),
    L(notice_days, 30, 1, 366),
    L(delivery_days, 90, 1, 36600),
    L(names_memory_mib, 64, 1, 1048576),
#undef L
};

#define LIMIT_COUNT (sizeof limit_table / sizeof limit_table[0])

typedef struct raw_hub {
    const char *endpoint, *database, *key_dir, *metrics;
    const char **brokers; /* for the agents: the broker and its standbys */
    size_t n_brokers;
    int synchronous;
    shub_hub_settings_t limits; /* only the limit fields are used */
} raw_hub_t;

static const shub_yaml_type_t endpoint_type = {
    .kind = SHUB_YAML_TEXT, .min = 1, .max = 255};
static const shub_yaml_type_t path_type = {.kind = SHUB_YAML_TEXT, .min = 1, .max = 1024};
static const shub_yaml_type_t limit_type = {.kind = SHUB_YAML_UINT};
static const shub_yaml_name_t sync_names[] = {
    {"full", SYNC_FULL}, {"normal", SYNC_NORMAL}, {NULL, 0}};
static const shub_yaml_type_t sync_type = {.kind = SHUB_YAML_ENUM, .names = sync_names};

#define LIMIT(n)                                                                         \
    {                                                                                    \
#n, false, offsetof(raw_hub_t, limits.n), 0, &limit_type                         \
    }
static const shub_yaml_field_t limits_fields[] = {
    LIMIT(max_message_bytes),  LIMIT(window),          LIMIT(batch_max),
    LIMIT(heartbeat_ms),       LIMIT(peer_timeout_ms), LIMIT(redeliver_ms),
    LIMIT(max_attempts),       LIMIT(future_skew_ms),  LIMIT(checkpoint_every),
    LIMIT(checkpoint_ms),
    LIMIT(deadline_hour_ms),   LIMIT(notice_days),     LIMIT(delivery_days),
    LIMIT(names_memory_mib),
    {NULL, false, 0, 0, NULL},
};
#undef LIMIT

static const shub_yaml_type_t limits_type = {.kind = SHUB_YAML_STRUCT,
                                             .fields = limits_fields};

/* Agents read `brokers` (the endpoints of an active broker and its
 * standbys, tried in turn); the broker only checks that it is a list. */
static const shub_yaml_type_t brokers_type = {
    .kind = SHUB_YAML_LIST, .min = 1, .max = 8, .entry = &endpoint_type};

static const shub_yaml_field_t hub_fields[] = {
    {"endpoint", false, offsetof(raw_hub_t, endpoint), 0, &endpoint_type},
    {"brokers", false, offsetof(raw_hub_t, brokers), offsetof(raw_hub_t, n_brokers),
     &brokers_type},
    {"database", false, offsetof(raw_hub_t, database), 0, &path_type},
    {"key_dir", false, offsetof(raw_hub_t, key_dir), 0, &path_type},
    {"synchronous", false, offsetof(raw_hub_t, synchronous), 0, &sync_type},
    {"metrics", false, offsetof(raw_hub_t, metrics), 0, &endpoint_type},
    {"limits", false, 0, 0, &limits_type},
    {NULL, false, 0, 0, NULL},
};

static const shub_yaml_type_t hub_type = {.kind = SHUB_YAML_STRUCT, .fields = hub_fields};

/* dir/p unless p is absolute; in the cfg arena. */
static const char *resolve(loader_t *ld, const char *dir, const char *p)
{
    if (p[0] == '/')
        return shub_config_strdup(ld, p);
    size_t n = strlen(dir) + 1 + strlen(p) + 1;
    char *out = shub_config_alloc(ld, n);
    if (out)
        snprintf(out, n, "%s/%s", dir, p);
    return out;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *out = shub_malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", dir, name);
    return out;
}

bool shub_config_metrics_address_ok(const char *text)
{
    const char *colon = text ? strrchr(text, ':') : NULL;
    if (!colon || colon == text || !colon[1] || strlen(colon + 1) > 5)
        return false;
    unsigned long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port > 65535)
        return false;
    size_t n = (size_t)(colon - text);
    if ((n == 9 && strncmp(text, "localhost", 9) == 0) ||
        (n == 5 && strncmp(text, "[::1]", 5) == 0))
        return true;
    /* 127.a.b.c, each part 0..255 */
    unsigned parts = 0, value = 0, digits = 0;
    if (n < 9 || strncmp(text, "127.", 4) != 0)
        return false;
    for (size_t i = 0; i <= n; i++) {
        char c = i < n ? text[i] : '.';
        if (c == '.') {
            if (digits == 0 || value > 255)
                return false;
            parts++;
            value = digits = 0;
        } else if (c >= '0' && c <= '9' && digits < 3) {
            value = value * 10 + (unsigned)(c - '0');
            digits++;
        } else {
            return false;
        }
    }
    return parts == 4;
}

/* Checks what the schema cannot: an endpoint that is one, limits in range. */
static void check_hub(shub_yaml_doc_t *doc, const raw_hub_t *raw,
                      const shub_hub_settings_t *h)
{
    if (raw->endpoint && !strstr(raw->endpoint, "://"))
        shub_yaml_error_path(
            doc, "endpoint",
            "endpoint '%s' must be a zeromq endpoint such as tcp://127.0.0.1:7400",
            raw->endpoint);
    if (raw->metrics && !shub_config_metrics_address_ok(raw->metrics))
        shub_yaml_error_path(doc, "metrics",
                             "metrics '%s' must be a loopback address and port such as "
                             "127.0.0.1:9464 (port 0: any free port)",
                             raw->metrics);
    char path[64];
    for (size_t i = 0; i < LIMIT_COUNT; i++) {
        uint32_t v = *(const uint32_t *)((const char *)h + limit_table[i].offset);
        snprintf(path, sizeof path, "limits.%s", limit_table[i].name);
        if (v < limit_table[i].min || v > limit_table[i].max)
            shub_yaml_error_path(doc, path, "limits.%s of %u is outside %u..%u",
                                 limit_table[i].name, v, limit_table[i].min,
                                 limit_table[i].max);
    }
    if (h->peer_timeout_ms <= h->heartbeat_ms)
        shub_yaml_error_path(doc, "limits.peer_timeout_ms",
                             "limits.peer_timeout_ms of %u must exceed "
                             "limits.heartbeat_ms of %u",
                             h->peer_timeout_ms, h->heartbeat_ms);
}

static int hub_load(loader_t *ld, const char *file)
{
    shub_hub_settings_t *h = &ld->cfg->hub;
    raw_hub_t raw = {.synchronous = SYNC_FULL};
    for (size_t i = 0; i < LIMIT_COUNT; i++)
        *(uint32_t *)((char *)&raw.limits + limit_table[i].offset) = limit_table[i].def;
    shub_yaml_doc_t *doc = NULL;
    int rc = shub_config_open(ld, file, false, &doc);
    if (rc == 0)
        rc = shub_yaml_bind(doc, &hub_type, &raw);
    if (rc == 0 || rc == SHUB_ENOTFOUND) { /* no hub.yaml: every setting has a default */
        h->endpoint =
            shub_config_strdup(ld, raw.endpoint ? raw.endpoint : "tcp://127.0.0.1:7400");
        /* A PostgreSQL URI is used as written; a file is relative to the
         * configuration directory. */
        h->database = raw.database && (strncmp(raw.database, "postgresql://", 13) == 0 ||
                                       strncmp(raw.database, "postgres://", 11) == 0)
                          ? shub_config_strdup(ld, raw.database)
                          : resolve(ld, ld->dir, raw.database ? raw.database : "sharehub.db");
        h->key_dir = resolve(ld, ld->dir, raw.key_dir ? raw.key_dir : "keys");
        h->synchronous_full = raw.synchronous != SYNC_NORMAL;
        h->metrics = raw.metrics ? shub_config_strdup(ld, raw.metrics) : NULL;
        for (size_t i = 0; i < LIMIT_COUNT; i++) {
            size_t off = limit_table[i].offset;
            *(uint32_t *)((char *)h + off) = *(uint32_t *)((char *)&raw.limits + off);
        }
        if (doc)
            check_hub(doc, &raw, h);
    }
    shub_config_close(ld, &doc);
    return ld->oom ? SHUB_ENOMEM : 0;
}

/* ---- agreements directory ----------------------------------------------- */

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_yaml_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".yaml") == 0;
}

/* Loads every *.yaml in dir, in name order so that reports and the sort of
 * equal-id duplicates are the same on every machine. */
static int agreements_load_dir(loader_t *ld, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        shub_err_t err;
        shub_err_set_at(&err, SHUB_ECONFIG, dir, 0, 0,
                        "cannot open agreements directory: %s", strerror(errno));
        report_error(ld, &err);
        return 0;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_yaml_name(e->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = shub_realloc(names, ncap * sizeof *nn);
            if (!nn) {
                rc = SHUB_ENOMEM;
                break;
            }
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = join(dir, e->d_name))) {
            rc = SHUB_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (!rc && n) {
        qsort(names, n, sizeof *names, cmp_name);
        for (size_t i = 0; i < n && !ld->oom; i++)
            shub_agreement_load(ld, names[i]);
    }
    for (size_t i = 0; i < n; i++)
        shub_free(names[i]);
    shub_free(names);
    if (rc)
        ld->oom = true;
    return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

void shub_config_destroy(shub_config_t **cfg_p)
{
    if (!cfg_p || !*cfg_p)
        return;
    shub_config_t *cfg = *cfg_p;
    shub_free(cfg->agreements);
    shub_arena_destroy(&cfg->arena);
    shub_free(cfg);
    *cfg_p = NULL;
}

/* Runs load on path, a new string that this frees; a NULL path (it could not
 * be built) is out of memory. */
static void load_path(loader_t *ld, char *path, int (*load)(loader_t *, const char *))
{
    if (!path)
        ld->oom = true;
    else
        load(ld, path);
    shub_free(path);
}

int shub_config_load(const char *dir, const shub_config_opts_t *opts,
                     shub_config_t **cfg_p, shub_config_report_fn *report, void *ctx)
{
    if (!dir || !cfg_p)
        return SHUB_EINVAL;
    shub_config_t *cfg = shub_calloc(1, sizeof *cfg);
    if (!cfg)
        return SHUB_ENOMEM;
    cfg->arena = shub_arena_new(16384);
    if (!cfg->arena) {
        shub_free(cfg);
        return SHUB_ENOMEM;
    }
    loader_t ld = {.cfg = cfg, .report = report, .report_ctx = ctx, .dir = dir};
    load_path(&ld, join(dir, "hub.yaml"), hub_load);

    if (!ld.oom) {
        if (opts && opts->key_dir)
            cfg->hub.key_dir = shub_config_strdup(&ld, opts->key_dir);
        ld.key_dir = cfg->hub.key_dir;
    }
    if (!ld.oom)
        load_path(&ld, join(dir, "orgs.yaml"), shub_registry_load);
    if (!ld.oom)
        load_path(&ld,
                  opts && opts->agreements_dir ? shub_strdup(opts->agreements_dir)
                                               : join(dir, "agreements"),
                  agreements_load_dir);
    if (!ld.oom)
        shub_agreements_finish(&ld);

    if (ld.oom || ld.n_errors) {
        shub_config_destroy(&cfg);
        return ld.oom ? SHUB_ENOMEM : SHUB_ECONFIG;
    }
    *cfg_p = cfg;
    return 0;
}

const shub_hub_settings_t *shub_config_hub(const shub_config_t *cfg)
{
    return cfg ? &cfg->hub : NULL;
}
