/*
 * scenario: the file that tells every agent how busy its organisation is.
 *
 * One YAML mapping. Only `start` and `days` are required; every other key
 * has the default shown. Rates are region-wide and per simulated week; an
 * agent originates the part carried by the areas it serves (see
 * docs/events.md for who sends what).
 *
 *   start: 2026-07-01          # simulated start, midnight UTC (YYYY-MM-DD)
 *   days: 91                   # simulated period, 1..3660
 *   speedup: 131040            # simulated seconds per real second (default 1)
 *   area_weights: {coventry: 2, dudley: 1.5}   # relative load of each area for
 *                              # every stream but marac's; default: all areas equal
 *   marac:
 *     referrals_per_week: 0    # marac.referral by every referrer, region-wide
 *     area_weights: {...}      # as above, for referrals (falls back to the top level)
 *     withdrawn_fraction: 0.08 # referrals a MARAC decides "withdrawn"
 *     withdrawn_by_area: {coventry: 0.133}  # the same per area (others: above)
 *     sources: {police: 0.64, idva: 0.12, probation: {share: 0.04, origin: [...]}}
 *                              # who refers, as shares adding up to 1; default:
 *                              # the police alone
 *     move_fraction: 0.05      # accepted victims who move to another area
 *     external_move_fraction: 0.005  # ... out of the force area
 *     external_areas: [outside]      # where external moves go
 *     missing_minutes_fraction: 0.2  # transfers first sent without minutes/plan
 *     repeat_fraction: 0.25    # referrals about a victim referred before
 *     consent_given_fraction: 0.15   # referrals with consent (the rest: override)
 *     origin: [wmp]            # police orgs that share the police's part equally;
 *                              # default: every police org, for its own areas
 *   idva: {engaged_fraction: 0.6, declined_fraction: 0.15}  # engagement outcomes
 *                              # an IDVA service reports; the rest no contact
 *   actions: {late_fraction: 0.15, undone_fraction: 0.05}   # MARAC actions done
 *                              # after their due date, or not in the period
 *   probation: {releases_per_week: 0, mappa_fraction: 0.6, origin: [...]}
 *   health: {istv: off, assaults_per_week: 10}  # istv: monthly | weekly | off;
 *                              # assaults per site and area served
 *   mash: {referrals_per_week: 0, origin: [...]}     # councils, to a neighbour's MASH
 *   missing: {reports_per_week: 0, origin: [...]}    # police
 *   custody: {arrest_referrals_per_week: 0, origin: [...]}  # custody suites
 *
 * Fractions are 0..1, rates and weights >= 0. Unknown keys, duplicate keys,
 * aliases and more than one document are refused. The file goes through the
 * one YAML loader (yaml.h) against the schema below, so every error names
 * the file, line and column of the key or value at fault; the first, in line
 * order, is the one returned. Two kinds of value are read here rather than
 * by the loader's own types: area_weights, a mapping whose keys are data,
 * and a list of names, which may also be written as one name.
 */
#include "profile_internal.h"

#include "sharehub/alloc.h"
#include "sharehub/yaml.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SC_MAX_DAYS 3660

/* ---- values the loader's types do not cover ---------------------------- */

static const shub_yaml_type_t weight_type = {
    .kind = SHUB_YAML_NUMBER, .max = INFINITY, .what = "a number of 0 or more"};
static const shub_yaml_type_t fraction_type = {
    .kind = SHUB_YAML_NUMBER, .min = 0, .max = 1, .what = "a number from 0 to 1"};

/* A mapping of area name to a number of `type`, into w; what it maps to is
 * named in messages. */
static int bind_area_map(shub_yaml_doc_t *doc, const shub_yaml_node_t *node,
                         const char *path, sc_weights_t *w, const shub_yaml_type_t *type,
                         const char *to, double *total_p)
{
    char shown[64], at[SHUB_YAML_MAX_PATH];
    *total_p = 0;
    if (node->kind != SHUB_YAML_MAP) {
        shub_yaml_error(doc, node, "'%s' must be a mapping of area to %s, not %s", path,
                        to, shub_yaml_show(node, shown, sizeof shown));
        return 1;
    }
    double total = 0;
    w->n = 0;
    for (size_t i = 0; i + 1 < node->n; i += 2) {
        const shub_yaml_node_t *k = node->items[i], *v = node->items[i + 1];
        double x = 0;
        if (k->kind != SHUB_YAML_SCALAR || !shub_is_name(k->text)) {
            shub_yaml_error(doc, k, "area %s in '%s' is not a name",
                            shub_yaml_show(k, shown, sizeof shown), path);
            continue;
        }
        if (w->n == SC_MAX_AREAS) {
            shub_yaml_error(doc, k, "'%s' names more than %d areas", path, SC_MAX_AREAS);
            return 0;
        }
        snprintf(at, sizeof at, "%s.%s", path, k->text);
        int rc = shub_yaml_bind_node(doc, type, v, at, &x);
        if (rc == SHUB_ENOMEM)
            return rc;
        if (rc == 0) {
            shub_str_copy(w->name[w->n], NAME_CAP, k->text);
            w->w[w->n++] = x;
            total += x;
        }
    }
    *total_p = total;
    return 0;
}

/* area_weights: a mapping of area name to weight, some weight above 0. */
static int bind_weights(shub_yaml_doc_t *doc, const shub_yaml_node_t *node,
                        const char *path, void *dst)
{
    double total = 0;
    int rc = bind_area_map(doc, node, path, dst, &weight_type, "weight", &total);
    if (rc == 0 && !(total > 0))
        shub_yaml_error(doc, node, "'%s' must give some area a weight above 0", path);
    return rc == SHUB_ENOMEM ? rc : 0;
}

/* withdrawn_by_area: a mapping of area name to a fraction. */
static int bind_fractions(shub_yaml_doc_t *doc, const shub_yaml_node_t *node,
                          const char *path, void *dst)
{
    double total = 0;
    int rc = bind_area_map(doc, node, path, dst, &fraction_type, "fraction", &total);
    return rc == SHUB_ENOMEM ? rc : 0;
}

/* origin, external_areas: names, as a list or a single name. */
static int bind_names(shub_yaml_doc_t *doc, const shub_yaml_node_t *node,
                      const char *path, void *dst)
{
    sc_list_t *l = dst;
    char shown[64];
    const shub_yaml_node_t *const *items =
        node->kind == SHUB_YAML_SEQ ? (const shub_yaml_node_t *const *)node->items
                                    : &node;
    size_t n = node->kind == SHUB_YAML_SEQ ? node->n : 1;
    if (node->kind == SHUB_YAML_MAP) {
        shub_yaml_error(doc, node,
                        "'%s' must be a name or a list of names, not a mapping", path);
        return 0;
    }
    if (n > SC_MAX_LIST) {
        shub_yaml_error(doc, node, "'%s' lists %zu names, limit %d", path, n,
                        SC_MAX_LIST);
        return 0;
    }
    l->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i]->kind == SHUB_YAML_SCALAR && shub_is_name(items[i]->text))
            shub_str_copy(l->item[l->n++], NAME_CAP, items[i]->text);
        else
            shub_yaml_error(doc, items[i], "'%s' entry %s is not a name", path,
                            shub_yaml_show(items[i], shown, sizeof shown));
    }
    return 0;
}

/* ---- the schema -------------------------------------------------------- */

typedef struct raw {
    shub_scenario_t sc;
    uint32_t days;
} raw_t;

static const shub_yaml_type_t date_type = {.kind = SHUB_YAML_DATE};
static const shub_yaml_type_t days_type = {
    .kind = SHUB_YAML_UINT, .min = 1, .max = SC_MAX_DAYS};
static const shub_yaml_type_t speedup_type = {.kind = SHUB_YAML_NUMBER,
                                              .flags = SHUB_YAML_ABOVE_MIN,
                                              .min = 0,
                                              .max = 1e9,
                                              .what = "a number above 0 and at most 1e9"};
static const shub_yaml_type_t rate_type = {
    .kind = SHUB_YAML_NUMBER, .max = INFINITY, .what = "a number of 0 or more"};
static const shub_yaml_type_t weights_type = {.kind = SHUB_YAML_CHECK,
                                              .check = bind_weights};
static const shub_yaml_type_t fractions_type = {.kind = SHUB_YAML_CHECK,
                                                .check = bind_fractions};
static const shub_yaml_type_t names_type = {.kind = SHUB_YAML_CHECK, .check = bind_names};

/* One source written out in full: {share: 0.04, origin: [nps-midlands]}. */
static const shub_yaml_field_t source_fields[] = {
    {"share", true, offsetof(sc_source_t, share), 0, &fraction_type},
    {"origin", false, offsetof(sc_source_t, origin), 0, &names_type},
    {NULL, false, 0, 0, NULL},
};
static const shub_yaml_type_t source_type = {.kind = SHUB_YAML_STRUCT,
                                             .fields = source_fields};

/* marac.sources: partner kind -> its share of the referrals, as a number or
 * as {share, origin}; the shares add up to 1. */
static int bind_sources(shub_yaml_doc_t *doc, const shub_yaml_node_t *node,
                        const char *path, void *dst)
{
    sc_sources_t *out = dst;
    char shown[64], at[SHUB_YAML_MAX_PATH];
    if (node->kind != SHUB_YAML_MAP) {
        shub_yaml_error(doc, node,
                        "'%s' must be a mapping of partner kind to share, not %s", path,
                        shub_yaml_show(node, shown, sizeof shown));
        return 0;
    }
    double total = 0;
    bool bad = false; /* an entry already said what is wrong: no sum to check */
    out->n = 0;
    for (size_t i = 0; i + 1 < node->n; i += 2) {
        const shub_yaml_node_t *k = node->items[i], *v = node->items[i + 1];
        if (k->kind != SHUB_YAML_SCALAR || !shub_is_name(k->text)) {
            shub_yaml_error(doc, k, "kind %s in '%s' is not a name",
                            shub_yaml_show(k, shown, sizeof shown), path);
            bad = true;
            continue;
        }
        if (out->n == SC_MAX_SOURCES) {
            shub_yaml_error(doc, k, "'%s' names more than %d kinds", path,
                            SC_MAX_SOURCES);
            return 0;
        }
        sc_source_t src;
        memset(&src, 0, sizeof src);
        snprintf(at, sizeof at, "%s.%s", path, k->text);
        int rc = shub_yaml_bind_node(
            doc, v->kind == SHUB_YAML_MAP ? &source_type : &fraction_type, v, at,
            v->kind == SHUB_YAML_MAP ? (void *)&src : (void *)&src.share);
        if (rc == SHUB_ENOMEM)
            return rc;
        if (rc == 0) {
            shub_str_copy(src.kind, NAME_CAP, k->text);
            out->item[out->n++] = src;
            total += src.share;
        } else {
            bad = true;
        }
    }
    if (!bad && out->n && (total < 0.999 || total > 1.001))
        shub_yaml_error(doc, node, "the shares in '%s' add up to %g, not 1", path, total);
    return 0;
}
static const shub_yaml_type_t sources_type = {.kind = SHUB_YAML_CHECK,
                                              .check = bind_sources};
static const shub_yaml_name_t istv_names[] = {
    {"monthly", ISTV_MONTHLY}, {"weekly", ISTV_WEEKLY}, {"off", ISTV_OFF}, {NULL, 0}};
static const shub_yaml_type_t istv_type = {.kind = SHUB_YAML_ENUM, .names = istv_names};

/* Every section writes into the one raw_t: its offsets are raw_t's. */
#define F(key, member, type)                                                             \
    {                                                                                    \
        key, false, offsetof(raw_t, member), 0, type                                     \
    }
#define SECTION(name, list)                                                              \
    static const shub_yaml_type_t name = {.kind = SHUB_YAML_STRUCT, .fields = list}
#define END                                                                              \
    {                                                                                    \
        NULL, false, 0, 0, NULL                                                          \
    }

static const shub_yaml_field_t marac_fields[] = {
    F("referrals_per_week", sc.marac.referrals.per_week, &rate_type),
    F("origin", sc.marac.referrals.origin, &names_type),
    F("area_weights", sc.marac.weights, &weights_type),
    F("withdrawn_fraction", sc.marac.withdrawn, &fraction_type),
    F("withdrawn_by_area", sc.marac.withdrawn_by_area, &fractions_type),
    F("sources", sc.marac.sources, &sources_type),
    F("move_fraction", sc.marac.move, &fraction_type),
    F("external_move_fraction", sc.marac.external_move, &fraction_type),
    F("external_areas", sc.marac.external_areas, &names_type),
    F("missing_minutes_fraction", sc.marac.missing_minutes, &fraction_type),
    F("repeat_fraction", sc.marac.repeat, &fraction_type),
    F("consent_given_fraction", sc.marac.consent_given, &fraction_type),
    END,
};
SECTION(marac_type, marac_fields);
static const shub_yaml_field_t idva_fields[] = {
    F("engaged_fraction", sc.idva.engaged, &fraction_type),
    F("declined_fraction", sc.idva.declined, &fraction_type),
    END,
};
SECTION(idva_type, idva_fields);
static const shub_yaml_field_t actions_fields[] = {
    F("late_fraction", sc.actions.late, &fraction_type),
    F("undone_fraction", sc.actions.undone, &fraction_type),
    END,
};
SECTION(actions_type, actions_fields);
static const shub_yaml_field_t probation_fields[] = {
    F("releases_per_week", sc.probation.releases.per_week, &rate_type),
    F("origin", sc.probation.releases.origin, &names_type),
    F("mappa_fraction", sc.probation.mappa, &fraction_type),
    END,
};
SECTION(probation_type, probation_fields);
static const shub_yaml_field_t health_fields[] = {
    F("istv", sc.health.istv, &istv_type),
    F("assaults_per_week", sc.health.assaults_per_week, &rate_type),
    END,
};
SECTION(health_type, health_fields);
/* mash, missing and custody: one rate and who originates it, under a key
 * that names what the stream carries. Offsets are sc_rate_t's: the section
 * sits at the stream's place in raw_t. */
#define RATE_SECTION(name, per_week_key)                                                 \
    static const shub_yaml_field_t name##_fields[] = {                                   \
        {per_week_key, false, offsetof(sc_rate_t, per_week), 0, &rate_type},             \
        {"origin", false, offsetof(sc_rate_t, origin), 0, &names_type},                  \
        END,                                                                             \
    };                                                                                   \
    SECTION(name, name##_fields)
RATE_SECTION(mash_type, "referrals_per_week");
RATE_SECTION(missing_type, "reports_per_week");
RATE_SECTION(custody_type, "arrest_referrals_per_week");
static const shub_yaml_field_t top_fields[] = {
    {"start", true, offsetof(raw_t, sc.start_ms), 0, &date_type},
    {"days", true, offsetof(raw_t, days), 0, &days_type},
    F("speedup", sc.speedup, &speedup_type),
    F("area_weights", sc.weights, &weights_type),
    {"marac", false, 0, 0, &marac_type},
    {"idva", false, 0, 0, &idva_type},
    {"actions", false, 0, 0, &actions_type},
    {"probation", false, 0, 0, &probation_type},
    {"health", false, 0, 0, &health_type},
    {"mash", false, offsetof(raw_t, sc.mash), 0, &mash_type},
    {"missing", false, offsetof(raw_t, sc.missing), 0, &missing_type},
    {"custody", false, offsetof(raw_t, sc.custody), 0, &custody_type},
    END,
};
SECTION(scenario_type, top_fields);

#undef F
#undef SECTION
#undef RATE_SECTION
#undef END

/* ---- loading ----------------------------------------------------------- */

/* Fractions that split one whole: together at most 1. */
static int check_parts(shub_yaml_doc_t *doc, const shub_scenario_t *sc)
{
    if (sc->idva.engaged + sc->idva.declined > 1)
        shub_yaml_error_path(
            doc, "idva.declined_fraction",
            "'idva.engaged_fraction' and 'idva.declined_fraction' add up "
            "to %g, more than 1",
            sc->idva.engaged + sc->idva.declined);
    if (sc->actions.late + sc->actions.undone > 1)
        shub_yaml_error_path(
            doc, "actions.undone_fraction",
            "'actions.late_fraction' and 'actions.undone_fraction' add up "
            "to %g, more than 1",
            sc->actions.late + sc->actions.undone);
    return shub_yaml_error_count(doc) ? SHUB_ECONFIG : 0;
}

void shub_scenario_defaults(shub_scenario_t *s)
{
    memset(s, 0, sizeof *s);
    s->speedup = 1;
    s->marac.withdrawn = 0.08;
    s->marac.move = 0.05;
    s->marac.external_move = 0.005;
    s->marac.missing_minutes = 0.2;
    s->marac.repeat = 0.25;
    s->marac.consent_given = 0.15;
    s->idva.engaged = 0.6;
    s->idva.declined = 0.15;
    s->actions.late = 0.15;
    s->actions.undone = 0.05;
    s->marac.external_areas.n = 1;
    shub_str_copy(s->marac.external_areas.item[0], NAME_CAP, "outside");
    s->probation.mappa = 0.6;
    s->health.istv = ISTV_OFF;
    s->health.assaults_per_week = 10;
}

int shub_scenario_load(const char *path, shub_scenario_t **scenario_p, shub_err_t *err)
{
    if (!path || !scenario_p)
        return shub_err_set(err, SHUB_EINVAL,
                            "scenario load needs a path and an out pointer");
    shub_yaml_doc_t *doc = NULL;
    raw_t *raw = NULL;
    int rc = shub_yaml_load(path, &doc, err);
    if (rc == SHUB_ENOTFOUND)
        rc = SHUB_EIO;
    if (rc == 0) {
        if (!(raw = shub_calloc(1, sizeof *raw)))
            rc = SHUB_ENOMEM;
        else {
            shub_scenario_defaults(&raw->sc);
            rc = shub_yaml_bind(doc, &scenario_type, raw);
        }
    }
    if (rc == 0 && (rc = check_parts(doc, &raw->sc)) == 0 && shub_yaml_oom(doc))
        rc = SHUB_ENOMEM;
    if (rc == 0) {
        raw->sc.end_ms = raw->sc.start_ms + (int64_t)raw->days * MS_DAY;
        shub_scenario_t *s = shub_malloc(sizeof *s);
        if (s) {
            *s = raw->sc;
            *scenario_p = s;
        } else {
            rc = SHUB_ENOMEM;
        }
    }
    if (rc == SHUB_ECONFIG) {
        shub_yaml_report_first(doc, err);
    } else if (rc == SHUB_ENOMEM) {
        shub_err_set_at(err, SHUB_ENOMEM, path, 0, 0,
                        "out of memory loading the scenario");
    }
    shub_free(raw);
    shub_yaml_destroy(&doc);
    return rc;
}

void shub_scenario_destroy(shub_scenario_t **scenario_p)
{
    if (!scenario_p || !*scenario_p)
        return;
    shub_free(*scenario_p);
    *scenario_p = NULL;
}

int64_t shub_scenario_start_ms(const shub_scenario_t *s)
{
    return s ? s->start_ms : 0;
}

int64_t shub_scenario_end_ms(const shub_scenario_t *s)
{
    return s ? s->end_ms : 0;
}

double shub_scenario_speedup(const shub_scenario_t *s)
{
    return s ? s->speedup : 1;
}
