/*
 * agreement: information-sharing agreements, one YAML file each under
 * DIR/agreements/, loaded into the form the policy function reads.
 *
 * An agreement is the machine-readable half of a real ISA (ICO Data Sharing
 * Code; a WASPI-style protocol over purpose-specific agreements): people
 * review the YAML like code, and the broker enforces exactly what it says.
 * Every audit row names the agreement's id, version and the BLAKE2b-256 of the
 * file's bytes, so the text that allowed a share can be produced years later.
 * docs/agreements.md has a full, commented example. The schema:
 *
 *   id: wm-marac                      # a name, unique across files
 *   title: West Midlands MARAC information sharing agreement
 *   version: 3                        # >= 1; bump on every change
 *   status: active                    # draft | active | suspended | expired
 *   valid_from: 2025-04-01            # YYYY-MM-DD, from 00:00 UTC
 *   valid_until: 2027-03-31           # inclusive: to 23:59:59.999 UTC
 *   review_date: 2026-03-31
 *   retention: "text for people"
 *   parties: {orgs: [wmp], kinds: [marac, idva]}   # ids and/or kinds
 *   roles:                            # optional
 *     - {party: wmp, role: controller}  # controller | joint-controller | processor
 *   purposes: [marac-risk-management]
 *   legal_basis:
 *     - {id: uk-gdpr-6-1-e, text: "UK GDPR Article 6(1)(e) public task"}
 *   data_dictionary:
 *     - {field: victim.name, class: personal}
 *       # personal | special-category | criminal-offence | child | anonymous
 *   consent:
 *     required: true
 *     override_reasons: [risk-of-serious-harm]   # optional
 *   flows:
 *     - id: referral                  # a name, unique in the agreement
 *       from: {kinds: [police]}       # orgs, kinds, serving_subject_area
 *       to: {kinds: [marac], serving_subject_area: true}
 *       events: [marac.referral]      # at least one
 *       purposes: [marac-risk-management]  # optional subset; default: all
 *       legal_basis: [uk-gdpr-6-1-e]  # optional subset of ids; default: all
 *       fields: [victim, risk.dash_score]  # declared, or ancestors of declared
 *       condition: "payload.risk.dash_score >= 14"   # optional (condition.c)
 *       ack_within_hours: 24          # optional
 *       act_within_hours: 48          # optional
 *       onward_sharing: false         # optional, default false
 *       report: [decision]            # optional: fields whose VALUES the audit
 *                                     # log records (as facts, e.g.
 *                                     # decision=withdrawn) for governance
 *                                     # reports; each must be in the dictionary
 *                                     # exactly, classed anonymous, and allowed
 *
 * A set ({orgs, kinds, serving_subject_area}) matches an org listed by id or
 * whose kind is listed; with serving_subject_area the org must also serve the
 * event's `area` (with no orgs or kinds: any party serving it). Orgs and
 * kinds named in a flow must be parties of the agreement.
 */
#include "config_internal.h"

#include "sharehub/alloc.h"
#include "sharehub/time.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- raw schema --------------------------------------------------------- */

typedef struct raw_set {
    char **orgs;
    unsigned orgs_count;
    char **kinds;
    unsigned kinds_count;
    bool serving_subject_area;
} raw_set_t;

typedef struct raw_role {
    char *party;
    int role;
} raw_role_t;

typedef struct raw_basis {
    char *id;
    char *text;
} raw_basis_t;

typedef struct raw_datum {
    char *field;
    int cls;
} raw_datum_t;

typedef struct raw_consent {
    bool required;
    char **override_reasons;
    unsigned override_reasons_count;
} raw_consent_t;

typedef struct raw_flow {
    char *id;
    raw_set_t from, to;
    char **events;
    unsigned events_count;
    char **purposes;
    unsigned purposes_count;
    char **legal_basis;
    unsigned legal_basis_count;
    char **fields;
    unsigned fields_count;
    char *condition;
    uint32_t *ack_within_hours;
    uint32_t *act_within_hours;
    bool onward_sharing;
    char **report;
    unsigned report_count;
} raw_flow_t;

typedef struct raw_agreement {
    char *id;
    char *title;
    uint32_t version;
    int status;
    char *valid_from, *valid_until, *review_date;
    char *retention;
    raw_set_t parties;
    raw_role_t *roles;
    unsigned roles_count;
    char **purposes;
    unsigned purposes_count;
    raw_basis_t *legal_basis;
    unsigned legal_basis_count;
    raw_datum_t *data_dictionary;
    unsigned data_dictionary_count;
    raw_consent_t consent;
    raw_flow_t *flows;
    unsigned flows_count;
} raw_agreement_t;

static const cyaml_schema_value_t name_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, SHUB_MSG_MAX_NAME),
};

static const cyaml_schema_value_t path_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, SHUB_VAL_MAX_PATH - 1),
};

static const cyaml_schema_value_t ref_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, SHUB_MSG_MAX_REF),
};

#define SEQ(key, flags, type, member, entry, min)                                        \
    CYAML_FIELD_SEQUENCE(key, (flags) | CYAML_FLAG_POINTER, type, member, entry, min,    \
                         1024)
#define OPT CYAML_FLAG_OPTIONAL

static const cyaml_schema_field_t parties_fields[] = {
    SEQ("orgs", OPT, raw_set_t, orgs, &name_entry, 0),
    SEQ("kinds", OPT, raw_set_t, kinds, &name_entry, 0),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t set_fields[] = {
    SEQ("orgs", OPT, raw_set_t, orgs, &name_entry, 0),
    SEQ("kinds", OPT, raw_set_t, kinds, &name_entry, 0),
    CYAML_FIELD_BOOL("serving_subject_area", OPT, raw_set_t, serving_subject_area),
    CYAML_FIELD_END,
};

static const cyaml_strval_t role_strings[] = {
    {"controller", 1},
    {"joint-controller", 2},
    {"processor", 3},
};

static const cyaml_schema_field_t role_fields[] = {
    CYAML_FIELD_STRING_PTR("party", CYAML_FLAG_POINTER, raw_role_t, party, 1,
                           SHUB_MSG_MAX_NAME),
    CYAML_FIELD_ENUM("role", CYAML_FLAG_STRICT, raw_role_t, role, role_strings,
                     CYAML_ARRAY_LEN(role_strings)),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t role_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_role_t, role_fields),
};

static const cyaml_schema_field_t basis_fields[] = {
    CYAML_FIELD_STRING_PTR("id", CYAML_FLAG_POINTER, raw_basis_t, id, 1,
                           SHUB_MSG_MAX_REF),
    CYAML_FIELD_STRING_PTR("text", CYAML_FLAG_POINTER, raw_basis_t, text, 1, 1024),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t basis_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_basis_t, basis_fields),
};

static const cyaml_strval_t class_strings[] = {
    {"personal", DATA_PERSONAL},
    {"special-category", DATA_SPECIAL_CATEGORY},
    {"criminal-offence", DATA_CRIMINAL_OFFENCE},
    {"child", DATA_CHILD},
    {"anonymous", DATA_ANONYMOUS},
};

static const cyaml_schema_field_t datum_fields[] = {
    CYAML_FIELD_STRING_PTR("field", CYAML_FLAG_POINTER, raw_datum_t, field, 1,
                           SHUB_VAL_MAX_PATH - 1),
    CYAML_FIELD_ENUM("class", CYAML_FLAG_STRICT, raw_datum_t, cls, class_strings,
                     CYAML_ARRAY_LEN(class_strings)),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t datum_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_datum_t, datum_fields),
};

static const cyaml_schema_field_t consent_fields[] = {
    CYAML_FIELD_BOOL("required", CYAML_FLAG_DEFAULT, raw_consent_t, required),
    SEQ("override_reasons", OPT, raw_consent_t, override_reasons, &name_entry, 0),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t flow_fields[] = {
    CYAML_FIELD_STRING_PTR("id", CYAML_FLAG_POINTER, raw_flow_t, id, 1,
                           SHUB_MSG_MAX_NAME),
    CYAML_FIELD_MAPPING("from", CYAML_FLAG_DEFAULT, raw_flow_t, from, set_fields),
    CYAML_FIELD_MAPPING("to", CYAML_FLAG_DEFAULT, raw_flow_t, to, set_fields),
    SEQ("events", CYAML_FLAG_DEFAULT, raw_flow_t, events, &name_entry, 0),
    SEQ("purposes", OPT, raw_flow_t, purposes, &name_entry, 0),
    SEQ("legal_basis", OPT, raw_flow_t, legal_basis, &ref_entry, 0),
    SEQ("fields", CYAML_FLAG_DEFAULT, raw_flow_t, fields, &path_entry, 0),
    CYAML_FIELD_STRING_PTR("condition", OPT | CYAML_FLAG_POINTER, raw_flow_t, condition,
                           1, SHUB_CONFIG_MAX_CONDITION),
    CYAML_FIELD_UINT_PTR("ack_within_hours", OPT, raw_flow_t, ack_within_hours),
    CYAML_FIELD_UINT_PTR("act_within_hours", OPT, raw_flow_t, act_within_hours),
    CYAML_FIELD_BOOL("onward_sharing", OPT, raw_flow_t, onward_sharing),
    SEQ("report", OPT, raw_flow_t, report, &path_entry, 0),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t flow_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_flow_t, flow_fields),
};

static const cyaml_strval_t status_strings[] = {
    {"draft", AGR_DRAFT},
    {"active", AGR_ACTIVE},
    {"suspended", AGR_SUSPENDED},
    {"expired", AGR_EXPIRED},
};

static const cyaml_schema_field_t agreement_fields[] = {
    CYAML_FIELD_STRING_PTR("id", CYAML_FLAG_POINTER, raw_agreement_t, id, 1,
                           SHUB_MSG_MAX_NAME),
    CYAML_FIELD_STRING_PTR("title", CYAML_FLAG_POINTER, raw_agreement_t, title, 1, 200),
    CYAML_FIELD_UINT("version", CYAML_FLAG_DEFAULT, raw_agreement_t, version),
    CYAML_FIELD_ENUM("status", CYAML_FLAG_STRICT, raw_agreement_t, status, status_strings,
                     CYAML_ARRAY_LEN(status_strings)),
    CYAML_FIELD_STRING_PTR("valid_from", CYAML_FLAG_POINTER, raw_agreement_t, valid_from,
                           1, 32),
    CYAML_FIELD_STRING_PTR("valid_until", CYAML_FLAG_POINTER, raw_agreement_t,
                           valid_until, 1, 32),
    CYAML_FIELD_STRING_PTR("review_date", CYAML_FLAG_POINTER, raw_agreement_t,
                           review_date, 1, 32),
    CYAML_FIELD_STRING_PTR("retention", CYAML_FLAG_POINTER, raw_agreement_t, retention, 1,
                           2048),
    CYAML_FIELD_MAPPING("parties", CYAML_FLAG_DEFAULT, raw_agreement_t, parties,
                        parties_fields),
    SEQ("roles", OPT, raw_agreement_t, roles, &role_entry, 0),
    SEQ("purposes", CYAML_FLAG_DEFAULT, raw_agreement_t, purposes, &name_entry, 1),
    SEQ("legal_basis", CYAML_FLAG_DEFAULT, raw_agreement_t, legal_basis, &basis_entry, 1),
    SEQ("data_dictionary", CYAML_FLAG_DEFAULT, raw_agreement_t, data_dictionary,
        &datum_entry, 1),
    CYAML_FIELD_MAPPING("consent", CYAML_FLAG_DEFAULT, raw_agreement_t, consent,
                        consent_fields),
    SEQ("flows", CYAML_FLAG_DEFAULT, raw_agreement_t, flows, &flow_entry, 1),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t agreement_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_agreement_t, agreement_fields),
};

#undef SEQ
#undef OPT

/* ---- validation helpers ------------------------------------------------- */

typedef struct actx {
    loader_t *ld;
    const ydoc_t *doc;
    const raw_agreement_t *raw;
} actx_t;

static void a_error(actx_t *a, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reports at the node `path` of the current file. */
static void a_error(actx_t *a, const char *path, const char *fmt, ...)
{
    char msg[SHUB_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int col, line = ydoc_line(a->doc, &col, "%s", path);
    ld_error(a->ld, a->doc->file, line, col, "%s", msg);
}

static bool in_list(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

/* Names must be names; a list must not repeat itself. */
static void check_names(actx_t *a, const char *key, char *const *v, size_t n,
                        const char *what)
{
    char path[SHUB_VAL_MAX_PATH + 64];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s[%zu]", key, i);
        if (!shub_is_name(v[i]))
            a_error(a, path, "%s '%s' is not a name ([a-z0-9][a-z0-9._-]*)", what, v[i]);
        else if (in_list(v, i, v[i]))
            a_error(a, path, "duplicate %s '%s'", what, v[i]);
    }
}

static bool is_party_org(const raw_agreement_t *r, const shub_org_t *org)
{
    return in_list(r->parties.orgs, r->parties.orgs_count, org->id) ||
           in_list(r->parties.kinds, r->parties.kinds_count, org->kind);
}

/* A kind is "in the agreement" if listed in parties.kinds or held by a party
 * listed by id. */
static bool is_party_kind(actx_t *a, const char *kind)
{
    const raw_agreement_t *r = a->raw;
    if (in_list(r->parties.kinds, r->parties.kinds_count, kind))
        return true;
    for (size_t i = 0; i < r->parties.orgs_count; i++) {
        const shub_org_t *org = shub_config_org(a->ld->cfg, r->parties.orgs[i]);
        if (org && strcmp(org->kind, kind) == 0)
            return true;
    }
    return false;
}

/* Checks a set's org ids and kinds against the registry (and, for a flow's
 * from/to, against the agreement's parties). */
static void check_set(actx_t *a, const char *key, const raw_set_t *s, bool need_party)
{
    char path[128];
    if (a->ld->registry_failed)
        return;
    for (size_t i = 0; i < s->orgs_count; i++) {
        snprintf(path, sizeof path, "%s.orgs[%zu]", key, i);
        const shub_org_t *org = shub_config_org(a->ld->cfg, s->orgs[i]);
        if (!org)
            a_error(a, path, "unknown org '%s'", s->orgs[i]);
        else if (need_party && !is_party_org(a->raw, org))
            a_error(a, path, "org '%s' is not a party to this agreement", s->orgs[i]);
        else if (in_list(s->orgs, i, s->orgs[i]))
            a_error(a, path, "duplicate org '%s'", s->orgs[i]);
    }
    for (size_t i = 0; i < s->kinds_count; i++) {
        snprintf(path, sizeof path, "%s.kinds[%zu]", key, i);
        if (!ld_kind_known(a->ld, s->kinds[i]))
            a_error(a, path, "unknown kind '%s' (no organisation has it)", s->kinds[i]);
        else if (need_party && !is_party_kind(a, s->kinds[i]))
            a_error(a, path, "kind '%s' is not a party to this agreement", s->kinds[i]);
        else if (in_list(s->kinds, i, s->kinds[i]))
            a_error(a, path, "duplicate kind '%s'", s->kinds[i]);
    }
    if (!s->orgs_count && !s->kinds_count && !s->serving_subject_area)
        a_error(a, key, "'%s' names no organisation, kind or serving_subject_area", key);
}

static bool field_declared(const raw_agreement_t *r, const char *f)
{
    size_t n = strlen(f);
    for (size_t i = 0; i < r->data_dictionary_count; i++) {
        const char *d = r->data_dictionary[i].field;
        if (strcmp(d, f) == 0 || (strncmp(d, f, n) == 0 && d[n] == '.'))
            return true;
    }
    return false;
}

/* The class the dictionary gives exactly this path, or -1. */
static int field_class(const raw_agreement_t *r, const char *f)
{
    for (size_t i = 0; i < r->data_dictionary_count; i++)
        if (strcmp(r->data_dictionary[i].field, f) == 0)
            return r->data_dictionary[i].cls;
    return -1;
}

static bool basis_declared(const raw_agreement_t *r, const char *id)
{
    for (size_t i = 0; i < r->legal_basis_count; i++)
        if (strcmp(r->legal_basis[i].id, id) == 0)
            return true;
    return false;
}

static void check_flow(actx_t *a, size_t i, flow_t *out)
{
    const raw_agreement_t *r = a->raw;
    const raw_flow_t *f = &r->flows[i];
    loader_t *ld = a->ld;
    char path[160], key[64];

    snprintf(path, sizeof path, "flows[%zu].id", i);
    if (!shub_is_name(f->id)) {
        a_error(a, path, "flow id '%s' is not a name", f->id);
    } else {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(r->flows[j].id, f->id) == 0) {
                a_error(a, path, "duplicate flow id '%s' (first at line %d)", f->id,
                        ydoc_line(a->doc, NULL, "flows[%zu].id", j));
                break;
            }
        }
    }
    snprintf(key, sizeof key, "flows[%zu].from", i);
    check_set(a, key, &f->from, true);
    snprintf(key, sizeof key, "flows[%zu].to", i);
    check_set(a, key, &f->to, true);
    snprintf(key, sizeof key, "flows[%zu].events", i);
    check_names(a, key, f->events, f->events_count, "event type");
    if (f->events_count == 0)
        a_error(a, key, "flow '%s' has no event types", f->id);
    for (size_t k = 0; k < f->purposes_count; k++) {
        snprintf(path, sizeof path, "flows[%zu].purposes[%zu]", i, k);
        if (!in_list(r->purposes, r->purposes_count, f->purposes[k]))
            a_error(a, path, "flow '%s': unknown purpose '%s' (not in purposes)", f->id,
                    f->purposes[k]);
    }
    for (size_t k = 0; k < f->legal_basis_count; k++) {
        snprintf(path, sizeof path, "flows[%zu].legal_basis[%zu]", i, k);
        if (!basis_declared(r, f->legal_basis[k]))
            a_error(a, path, "flow '%s': unknown legal basis '%s' (not in legal_basis)",
                    f->id, f->legal_basis[k]);
    }
    for (size_t k = 0; k < f->fields_count; k++) {
        snprintf(path, sizeof path, "flows[%zu].fields[%zu]", i, k);
        if (!shub_val_is_path(f->fields[k]))
            a_error(a, path, "field '%s' is not a dotted path of field names",
                    f->fields[k]);
        else if (!field_declared(r, f->fields[k]))
            a_error(a, path, "flow '%s': field '%s' is not in the data dictionary", f->id,
                    f->fields[k]);
    }
    /* Reported values reach the audit log, which holds no personal data: only
     * fields the agreement itself classes anonymous may be reported, and only
     * ones the flow shares anyway. */
    for (size_t k = 0; k < f->report_count; k++) {
        snprintf(path, sizeof path, "flows[%zu].report[%zu]", i, k);
        bool shared = false;
        for (size_t m = 0; m < f->fields_count && !shared; m++) {
            size_t n = strlen(f->fields[m]);
            shared = strncmp(f->report[k], f->fields[m], n) == 0 &&
                     (f->report[k][n] == '\0' || f->report[k][n] == '.');
        }
        if (field_class(r, f->report[k]) != DATA_ANONYMOUS)
            a_error(a, path,
                    "flow '%s': report field '%s' must be in the data dictionary "
                    "classed anonymous (its value goes into the audit log)",
                    f->id, f->report[k]);
        else if (!shared)
            a_error(a, path, "flow '%s': report field '%s' is not among the flow's fields",
                    f->id, f->report[k]);
    }
    if (f->ack_within_hours && *f->ack_within_hours == 0) {
        snprintf(path, sizeof path, "flows[%zu].ack_within_hours", i);
        a_error(a, path, "ack_within_hours must be at least 1");
    }
    if (f->act_within_hours && *f->act_within_hours == 0) {
        snprintf(path, sizeof path, "flows[%zu].act_within_hours", i);
        a_error(a, path, "act_within_hours must be at least 1");
    }

    out->id = ld_strdup(ld, f->id);
    out->from =
        (party_set_t){ld_strv(ld, f->from.orgs, f->from.orgs_count), f->from.orgs_count,
                      ld_strv(ld, f->from.kinds, f->from.kinds_count),
                      f->from.kinds_count, f->from.serving_subject_area};
    out->to = (party_set_t){ld_strv(ld, f->to.orgs, f->to.orgs_count), f->to.orgs_count,
                            ld_strv(ld, f->to.kinds, f->to.kinds_count),
                            f->to.kinds_count, f->to.serving_subject_area};
    out->events = ld_strv(ld, f->events, f->events_count);
    out->n_events = f->events_count;
    if (f->purposes_count) {
        out->purposes = ld_strv(ld, f->purposes, f->purposes_count);
        out->n_purposes = f->purposes_count;
    } else {
        out->purposes = ld_strv(ld, r->purposes, r->purposes_count);
        out->n_purposes = r->purposes_count;
    }
    if (f->legal_basis_count) {
        out->bases = ld_strv(ld, f->legal_basis, f->legal_basis_count);
        out->n_bases = f->legal_basis_count;
    } else {
        const char **b = ld_alloc(ld, (r->legal_basis_count + 1) * sizeof *b);
        for (size_t k = 0; b && k < r->legal_basis_count; k++)
            b[k] = ld_strdup(ld, r->legal_basis[k].id);
        out->bases = b;
        out->n_bases = r->legal_basis_count;
    }
    out->fields = ld_strv(ld, f->fields, f->fields_count);
    out->n_fields = f->fields_count;
    out->ack_within_hours = f->ack_within_hours ? *f->ack_within_hours : 0;
    out->act_within_hours = f->act_within_hours ? *f->act_within_hours : 0;
    out->onward_sharing = f->onward_sharing;
    out->report = ld_strv(ld, f->report, f->report_count);
    out->n_report = f->report_count;
    if (f->condition && !ld->oom) {
        char msg[SHUB_ERR_MSG_MAX - 32];
        out->condition_text = ld_strdup(ld, f->condition);
        int rc =
            cond_parse(ld->cfg->arena, f->condition, &out->condition, msg, sizeof msg);
        if (rc == SHUB_ENOMEM) {
            ld->oom = true;
        } else if (rc) {
            /* The column is within the expression, so the file column would
             * only mislead: report the line alone. */
            int line = ydoc_line(a->doc, NULL, "flows[%zu].condition", i);
            ld_error(ld, a->doc->file, line, 0, "condition: %s", msg);
        }
    }
}

static const char *status_name(int s)
{
    switch (s) {
    case AGR_DRAFT:
        return "draft";
    case AGR_ACTIVE:
        return "active";
    case AGR_SUSPENDED:
        return "suspended";
    case AGR_EXPIRED:
        return "expired";
    }
    return "?";
}

static const char *role_name(int r)
{
    return r == 1 ? "controller" : r == 2 ? "joint-controller" : "processor";
}

static void check_dates(actx_t *a, agreement_t *ag)
{
    const raw_agreement_t *r = a->raw;
    int64_t from = 0, until = 0, review = 0;
    bool ok_from = shub_time_parse_date(r->valid_from, &from, NULL) == 0;
    bool ok_until = shub_time_parse_date(r->valid_until, &until, NULL) == 0;
    if (!ok_from)
        a_error(a, "valid_from", "valid_from '%s' is not a date (YYYY-MM-DD)",
                r->valid_from);
    if (!ok_until)
        a_error(a, "valid_until", "valid_until '%s' is not a date (YYYY-MM-DD)",
                r->valid_until);
    if (shub_time_parse_date(r->review_date, &review, NULL) != 0)
        a_error(a, "review_date", "review_date '%s' is not a date (YYYY-MM-DD)",
                r->review_date);
    if (ok_from && ok_until && until < from)
        a_error(a, "valid_until", "valid_until %s is before valid_from %s",
                r->valid_until, r->valid_from);
    ag->info.valid_from_ms = from;
    ag->info.valid_until_ms = until + SHUB_TIME_MS_PER_DAY - 1; /* inclusive: the whole last day */
    ag->info.review_ms = review;
}

static void check_header(actx_t *a, agreement_t *ag)
{
    const raw_agreement_t *r = a->raw;
    loader_t *ld = a->ld;
    char path[64];
    if (!shub_is_name(r->id))
        a_error(a, "id", "agreement id '%s' is not a name ([a-z0-9][a-z0-9._-]*)", r->id);
    if (r->version == 0)
        a_error(a, "version", "version must be at least 1");
    check_dates(a, ag);
    check_set(a, "parties", &r->parties, false);
    for (size_t i = 0; i < r->roles_count && !ld->registry_failed; i++) {
        const char *p = r->roles[i].party;
        const shub_org_t *org = shub_config_org(ld->cfg, p);
        snprintf(path, sizeof path, "roles[%zu].party", i);
        if (org ? !is_party_org(r, org) : !is_party_kind(a, p))
            a_error(a, path, "role for '%s', which is not a party org or kind", p);
    }
    check_names(a, "purposes", r->purposes, r->purposes_count, "purpose");
    for (size_t i = 0; i < r->legal_basis_count; i++) {
        snprintf(path, sizeof path, "legal_basis[%zu].id", i);
        const char *id = r->legal_basis[i].id;
        if (!shub_is_name(id))
            a_error(a, path, "legal basis id '%s' is not a name", id);
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->legal_basis[j].id, id) == 0)
                a_error(a, path, "duplicate legal basis '%s'", id);
    }
    for (size_t i = 0; i < r->data_dictionary_count; i++) {
        snprintf(path, sizeof path, "data_dictionary[%zu].field", i);
        const char *f = r->data_dictionary[i].field;
        if (!shub_val_is_path(f))
            a_error(a, path, "field '%s' is not a dotted path of field names", f);
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->data_dictionary[j].field, f) == 0)
                a_error(a, path, "duplicate data dictionary field '%s'", f);
    }
    check_names(a, "consent.override_reasons", r->consent.override_reasons,
                r->consent.override_reasons_count, "override reason");
}

/* ---- loading ------------------------------------------------------------ */

static void fill(actx_t *a, agreement_t *ag)
{
    const raw_agreement_t *r = a->raw;
    loader_t *ld = a->ld;
    ag->info.id = ld_strdup(ld, r->id);
    ag->info.title = ld_strdup(ld, r->title);
    ag->info.status = status_name(r->status);
    ag->info.file = ld_strdup(ld, a->doc->file);
    ag->info.version = r->version;
    ag->status = (agr_status_t)r->status;
    ag->parties = (party_set_t){ld_strv(ld, r->parties.orgs, r->parties.orgs_count),
                                r->parties.orgs_count,
                                ld_strv(ld, r->parties.kinds, r->parties.kinds_count),
                                r->parties.kinds_count, false};
    role_t *roles = ld_alloc(ld, (r->roles_count + 1) * sizeof *roles);
    for (size_t i = 0; roles && i < r->roles_count; i++)
        roles[i] =
            (role_t){ld_strdup(ld, r->roles[i].party), role_name(r->roles[i].role)};
    ag->roles = roles;
    ag->n_roles = r->roles_count;
    ag->purposes = ld_strv(ld, r->purposes, r->purposes_count);
    ag->n_purposes = r->purposes_count;
    basis_t *bases = ld_alloc(ld, (r->legal_basis_count + 1) * sizeof *bases);
    for (size_t i = 0; bases && i < r->legal_basis_count; i++)
        bases[i] = (basis_t){ld_strdup(ld, r->legal_basis[i].id),
                             ld_strdup(ld, r->legal_basis[i].text)};
    ag->bases = bases;
    ag->n_bases = r->legal_basis_count;
    datum_t *data = ld_alloc(ld, (r->data_dictionary_count + 1) * sizeof *data);
    for (size_t i = 0; data && i < r->data_dictionary_count; i++)
        data[i] = (datum_t){ld_strdup(ld, r->data_dictionary[i].field),
                            (data_class_t)r->data_dictionary[i].cls};
    ag->data = data;
    ag->n_data = r->data_dictionary_count;
    ag->retention = ld_strdup(ld, r->retention);
    ag->consent_required = r->consent.required;
    ag->override_reasons =
        ld_strv(ld, r->consent.override_reasons, r->consent.override_reasons_count);
    ag->n_override_reasons = r->consent.override_reasons_count;
}

static int hash_file(loader_t *ld, const ydoc_t *doc, agreement_t *ag)
{
    uint8_t h[crypto_generichash_BYTES];
    char *hex = ld_alloc(ld, 2 * sizeof h + 1);
    if (!hex)
        return SHUB_ENOMEM;
    crypto_generichash(h, sizeof h, doc->bytes, doc->len, NULL, 0);
    sodium_bin2hex(hex, 2 * sizeof h + 1, h, sizeof h);
    ag->info.content_hash = hex;
    return 0;
}

static int append(loader_t *ld, agreement_t *ag)
{
    shub_config_t *cfg = ld->cfg;
    agreement_t **v = shub_realloc(cfg->agreements, (cfg->n_agreements + 1) * sizeof *v);
    if (!v) {
        ld->oom = true;
        return SHUB_ENOMEM;
    }
    cfg->agreements = v;
    v[cfg->n_agreements++] = ag;
    return 0;
}

int agreement_load(loader_t *ld, const char *file)
{
    ydoc_t doc;
    raw_agreement_t *raw = NULL;
    int rc = ydoc_load(ld, file, true, &agreement_schema, &doc, (void **)&raw);
    if (rc || !raw) {
        ydoc_release(&doc);
        return rc;
    }
    actx_t a = {ld, &doc, raw};
    agreement_t *ag = ld_alloc(ld, sizeof *ag);
    if (ag) {
        ag->id_line = ydoc_line(&doc, NULL, "id");
        for (size_t i = 0; i < ld->cfg->n_agreements; i++) {
            const agreement_t *o = ld->cfg->agreements[i];
            if (strcmp(o->info.id, raw->id) == 0) {
                a_error(&a, "id", "duplicate agreement id '%s' (also in %s:%d)", raw->id,
                        o->info.file, o->id_line);
                break;
            }
        }
        check_header(&a, ag);
        fill(&a, ag);
        flow_t *flows = ld_alloc(ld, raw->flows_count * sizeof *flows + 1);
        for (size_t i = 0; flows && i < raw->flows_count && !ld->oom; i++)
            check_flow(&a, i, &flows[i]);
        ag->flows = flows;
        ag->n_flows = raw->flows_count;
        if (!ld->oom && hash_file(ld, &doc, ag) == 0)
            append(ld, ag);
    }
    ydoc_free_data(&agreement_schema, raw);
    ydoc_release(&doc);
    return ld->oom ? SHUB_ENOMEM : 0;
}

static int cmp_agreement(const void *x, const void *y)
{
    const agreement_t *a = *(const agreement_t *const *)x,
                      *b = *(const agreement_t *const *)y;
    return strcmp(a->info.id, b->info.id);
}

void agreements_finish(loader_t *ld)
{
    shub_config_t *cfg = ld->cfg;
    if (cfg->n_agreements > 1)
        qsort(cfg->agreements, cfg->n_agreements, sizeof *cfg->agreements, cmp_agreement);
}

/* ---- accessors ---------------------------------------------------------- */

size_t shub_config_agreement_count(const shub_config_t *cfg)
{
    return cfg ? cfg->n_agreements : 0;
}

const agreement_t *shub_config_agreement_at(const shub_config_t *cfg, size_t i)
{
    return cfg && i < cfg->n_agreements ? cfg->agreements[i] : NULL;
}

int shub_config_agreement_info(const shub_config_t *cfg, size_t i,
                               shub_agreement_info_t *out)
{
    if (!cfg || !out)
        return SHUB_EINVAL;
    if (i >= cfg->n_agreements)
        return SHUB_ENOTFOUND;
    *out = cfg->agreements[i]->info;
    return 0;
}

long shub_config_agreement_find(const shub_config_t *cfg, const char *id)
{
    if (!cfg || !id)
        return -1;
    size_t lo = 0, hi = cfg->n_agreements;
    while (lo < hi) { /* sorted by id at load */
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(cfg->agreements[mid]->info.id, id);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}
