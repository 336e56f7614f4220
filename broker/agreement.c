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
 *   retention_days: 2190              # optional: how long a recipient keeps a
 *                                     # copy's payload, for every flow
 *   retention_by_class:               # optional: at most this long for a copy
 *     - {class: special-category, days: 365}   # carrying a field of the class
 *   owner: bcc                        # optional: the party org answering for it;
 *                                     # the broker tells it before expiry
 *   signatories:                      # optional: the sign-off trail
 *     - {org: wmp, role: SIRO, name: "A. Person", date: 2025-03-20}
 *   status_history:                   # optional, oldest first; the last entry
 *     - {status: active, date: 2025-04-01, note: "signed off"}  # is `status`
 *   actor: hashed                     # optional: hashed (default) | clear
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
 *   escalation: marac-team            # optional: an org that is a party; told,
 *                                     # with the sender, of overdue shares
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

/* ---- the schema ----------------------------------------------------------- */

typedef struct raw_set {
    const char **orgs;
    size_t orgs_count;
    const char **kinds;
    size_t kinds_count;
    bool serving_subject_area;
} raw_set_t;

typedef struct raw_role {
    const char *party;
    int role;
} raw_role_t;

typedef struct raw_basis {
    const char *id;
    const char *text;
} raw_basis_t;

typedef struct raw_datum {
    const char *field;
    int cls;
} raw_datum_t;

typedef struct raw_flow {
    const char *id;
    raw_set_t from, to;
    const char **events;
    size_t events_count;
    const char **purposes;
    size_t purposes_count;
    const char **legal_basis;
    size_t legal_basis_count;
    const char **fields;
    size_t fields_count;
    const char *condition;
    uint32_t ack_within_hours; /* 0: absent (the schema refuses a written 0) */
    uint32_t act_within_hours;
    bool onward_sharing;
    const char **report;
    size_t report_count;
    uint32_t retention_days; /* 0: absent */
} raw_flow_t;

typedef struct raw_signatory {
    const char *org, *role, *name;
    int64_t date;
} raw_signatory_t;

typedef struct raw_change {
    int status;
    int64_t date;
    const char *note;
} raw_change_t;

typedef struct raw_class_days {
    int cls;
    uint32_t days;
} raw_class_days_t;

typedef struct raw_agreement {
    const char *id;
    const char *title;
    uint32_t version;
    int status;
    int64_t valid_from, valid_until, review_date;
    const char *retention;
    raw_set_t parties;
    raw_role_t *roles;
    size_t roles_count;
    const char **purposes;
    size_t purposes_count;
    raw_basis_t *legal_basis;
    size_t legal_basis_count;
    raw_datum_t *data_dictionary;
    size_t data_dictionary_count;
    bool consent_required;
    const char **override_reasons;
    size_t override_reasons_count;
    raw_flow_t *flows;
    size_t flows_count;
    const char *escalation; /* org told of overdue shares, besides their sender */
    uint32_t retention_days;
    raw_class_days_t *retention_by_class;
    size_t retention_by_class_count;
    const char *owner;
    raw_signatory_t *signatories;
    size_t signatories_count;
    raw_change_t *status_history;
    size_t status_history_count;
    int actor; /* ACTOR_*; 0: absent, hashed */
} raw_agreement_t;

enum { ACTOR_HASHED = 1, ACTOR_CLEAR };

static const shub_yaml_type_t name_type = {
    .kind = SHUB_YAML_TEXT, .min = 1, .max = SHUB_MSG_MAX_NAME};
static const shub_yaml_type_t path_type = {
    .kind = SHUB_YAML_TEXT, .min = 1, .max = SHUB_VAL_MAX_PATH - 1};
static const shub_yaml_type_t ref_type = {
    .kind = SHUB_YAML_TEXT, .min = 1, .max = SHUB_MSG_MAX_REF};
static const shub_yaml_type_t title_type = {.kind = SHUB_YAML_TEXT, .min = 1, .max = 200};
static const shub_yaml_type_t text_type = {.kind = SHUB_YAML_TEXT, .min = 1, .max = 2048};
static const shub_yaml_type_t condition_type = {
    .kind = SHUB_YAML_TEXT, .min = 1, .max = SHUB_CONFIG_MAX_CONDITION};
static const shub_yaml_type_t bool_type = {.kind = SHUB_YAML_BOOL};
static const shub_yaml_type_t date_type = {.kind = SHUB_YAML_DATE};
static const shub_yaml_type_t version_type = {.kind = SHUB_YAML_UINT, .min = 1};
static const shub_yaml_type_t hours_type = {.kind = SHUB_YAML_UINT, .min = 1};
static const shub_yaml_type_t days_type = {.kind = SHUB_YAML_UINT, .min = 1, .max = 36600};
static const shub_yaml_type_t names_type = {
    .kind = SHUB_YAML_LIST, .max = 1024, .entry = &name_type};
static const shub_yaml_type_t some_names_type = {
    .kind = SHUB_YAML_LIST, .min = 1, .max = 1024, .entry = &name_type};
static const shub_yaml_type_t paths_type = {
    .kind = SHUB_YAML_LIST, .max = 1024, .entry = &path_type};
static const shub_yaml_type_t refs_type = {
    .kind = SHUB_YAML_LIST, .max = 1024, .entry = &ref_type};

#define FIELD(key, req, type, member, ytype)                                             \
    {                                                                                    \
        key, req, offsetof(type, member), 0, ytype                                       \
    }
#define LIST(key, req, type, member, ytype)                                              \
    {                                                                                    \
        key, req, offsetof(type, member), offsetof(type, member##_count), ytype          \
    }
#define END                                                                              \
    {                                                                                    \
        NULL, false, 0, 0, NULL                                                          \
    }

static const shub_yaml_field_t parties_fields[] = {
    LIST("orgs", false, raw_set_t, orgs, &names_type),
    LIST("kinds", false, raw_set_t, kinds, &names_type),
    END,
};
static const shub_yaml_type_t parties_type = {.kind = SHUB_YAML_STRUCT,
                                              .fields = parties_fields};

static const shub_yaml_field_t set_fields[] = {
    LIST("orgs", false, raw_set_t, orgs, &names_type),
    LIST("kinds", false, raw_set_t, kinds, &names_type),
    FIELD("serving_subject_area", false, raw_set_t, serving_subject_area, &bool_type),
    END,
};
static const shub_yaml_type_t set_type = {.kind = SHUB_YAML_STRUCT, .fields = set_fields};

static const shub_yaml_name_t role_names[] = {
    {"controller", 1}, {"joint-controller", 2}, {"processor", 3}, {NULL, 0}};
static const shub_yaml_type_t role_name_type = {.kind = SHUB_YAML_ENUM,
                                                .names = role_names};
static const shub_yaml_field_t role_fields[] = {
    FIELD("party", true, raw_role_t, party, &name_type),
    FIELD("role", true, raw_role_t, role, &role_name_type),
    END,
};
static const shub_yaml_type_t role_type = {
    .kind = SHUB_YAML_STRUCT, .size = sizeof(raw_role_t), .fields = role_fields};
static const shub_yaml_type_t roles_type = {
    .kind = SHUB_YAML_LIST, .max = 1024, .entry = &role_type};

static const shub_yaml_field_t basis_fields[] = {
    FIELD("id", true, raw_basis_t, id, &ref_type),
    FIELD("text", true, raw_basis_t, text, &text_type),
    END,
};
static const shub_yaml_type_t basis_type = {
    .kind = SHUB_YAML_STRUCT, .size = sizeof(raw_basis_t), .fields = basis_fields};
static const shub_yaml_type_t bases_type = {
    .kind = SHUB_YAML_LIST, .min = 1, .max = 1024, .entry = &basis_type};

static const shub_yaml_name_t class_names[] = {
    {"personal", DATA_PERSONAL},
    {"special-category", DATA_SPECIAL_CATEGORY},
    {"criminal-offence", DATA_CRIMINAL_OFFENCE},
    {"child", DATA_CHILD},
    {"anonymous", DATA_ANONYMOUS},
    {NULL, 0},
};
static const shub_yaml_type_t class_type = {.kind = SHUB_YAML_ENUM, .names = class_names};
static const shub_yaml_field_t datum_fields[] = {
    FIELD("field", true, raw_datum_t, field, &path_type),
    FIELD("class", true, raw_datum_t, cls, &class_type),
    END,
};
static const shub_yaml_type_t datum_type = {
    .kind = SHUB_YAML_STRUCT, .size = sizeof(raw_datum_t), .fields = datum_fields};
static const shub_yaml_type_t dictionary_type = {
    .kind = SHUB_YAML_LIST, .min = 1, .max = 1024, .entry = &datum_type};

static const shub_yaml_field_t class_days_fields[] = {
    FIELD("class", true, raw_class_days_t, cls, &class_type),
    FIELD("days", true, raw_class_days_t, days, &days_type),
    END,
};
static const shub_yaml_type_t class_days_type = {
    .kind = SHUB_YAML_STRUCT, .size = sizeof(raw_class_days_t), .fields = class_days_fields};
static const shub_yaml_type_t class_days_list_type = {
    .kind = SHUB_YAML_LIST, .max = 5, .entry = &class_days_type};

static const shub_yaml_field_t signatory_fields[] = {
    FIELD("org", true, raw_signatory_t, org, &name_type),
    FIELD("role", true, raw_signatory_t, role, &title_type),
    FIELD("name", false, raw_signatory_t, name, &title_type),
    FIELD("date", true, raw_signatory_t, date, &date_type),
    END,
};
static const shub_yaml_type_t signatory_type = {
    .kind = SHUB_YAML_STRUCT, .size = sizeof(raw_signatory_t), .fields = signatory_fields};
static const shub_yaml_type_t signatories_type = {
    .kind = SHUB_YAML_LIST, .max = 1024, .entry = &signatory_type};

/* consent: a section of the agreement's own struct */
static const shub_yaml_field_t consent_fields[] = {
    FIELD("required", true, raw_agreement_t, consent_required, &bool_type),
    LIST("override_reasons", false, raw_agreement_t, override_reasons, &names_type),
    END,
};
static const shub_yaml_type_t consent_type = {.kind = SHUB_YAML_STRUCT,
                                              .fields = consent_fields};

static const shub_yaml_field_t flow_fields[] = {
    FIELD("id", true, raw_flow_t, id, &name_type),
    FIELD("from", true, raw_flow_t, from, &set_type),
    FIELD("to", true, raw_flow_t, to, &set_type),
    LIST("events", true, raw_flow_t, events, &names_type),
    LIST("purposes", false, raw_flow_t, purposes, &names_type),
    LIST("legal_basis", false, raw_flow_t, legal_basis, &refs_type),
    LIST("fields", true, raw_flow_t, fields, &paths_type),
    FIELD("condition", false, raw_flow_t, condition, &condition_type),
    FIELD("ack_within_hours", false, raw_flow_t, ack_within_hours, &hours_type),
    FIELD("act_within_hours", false, raw_flow_t, act_within_hours, &hours_type),
    FIELD("onward_sharing", false, raw_flow_t, onward_sharing, &bool_type),
    LIST("report", false, raw_flow_t, report, &paths_type),
    FIELD("retention_days", false, raw_flow_t, retention_days, &days_type),
    END,
};
static const shub_yaml_type_t flow_type = {
    .kind = SHUB_YAML_STRUCT, .size = sizeof(raw_flow_t), .fields = flow_fields};
static const shub_yaml_type_t flows_type = {
    .kind = SHUB_YAML_LIST, .min = 1, .max = 1024, .entry = &flow_type};

static const shub_yaml_name_t status_names[] = {
    {"draft", SHUB_AGREEMENT_DRAFT},
    {"active", SHUB_AGREEMENT_ACTIVE},
    {"suspended", SHUB_AGREEMENT_SUSPENDED},
    {"expired", SHUB_AGREEMENT_EXPIRED},
    {NULL, 0},
};
static const shub_yaml_type_t status_type = {.kind = SHUB_YAML_ENUM,
                                             .names = status_names};

static const shub_yaml_field_t change_fields[] = {
    FIELD("status", true, raw_change_t, status, &status_type),
    FIELD("date", true, raw_change_t, date, &date_type),
    FIELD("note", false, raw_change_t, note, &text_type),
    END,
};
static const shub_yaml_type_t change_type = {
    .kind = SHUB_YAML_STRUCT, .size = sizeof(raw_change_t), .fields = change_fields};
static const shub_yaml_type_t history_type = {
    .kind = SHUB_YAML_LIST, .max = 1024, .entry = &change_type};

static const shub_yaml_name_t actor_names[] = {
    {"hashed", ACTOR_HASHED}, {"clear", ACTOR_CLEAR}, {NULL, 0}};
static const shub_yaml_type_t actor_type = {.kind = SHUB_YAML_ENUM, .names = actor_names};

static const shub_yaml_field_t agreement_fields[] = {
    FIELD("id", true, raw_agreement_t, id, &name_type),
    FIELD("title", true, raw_agreement_t, title, &title_type),
    FIELD("version", true, raw_agreement_t, version, &version_type),
    FIELD("status", true, raw_agreement_t, status, &status_type),
    FIELD("valid_from", true, raw_agreement_t, valid_from, &date_type),
    FIELD("valid_until", true, raw_agreement_t, valid_until, &date_type),
    FIELD("review_date", true, raw_agreement_t, review_date, &date_type),
    FIELD("retention", true, raw_agreement_t, retention, &text_type),
    FIELD("parties", true, raw_agreement_t, parties, &parties_type),
    LIST("roles", false, raw_agreement_t, roles, &roles_type),
    LIST("purposes", true, raw_agreement_t, purposes, &some_names_type),
    LIST("legal_basis", true, raw_agreement_t, legal_basis, &bases_type),
    LIST("data_dictionary", true, raw_agreement_t, data_dictionary, &dictionary_type),
    {"consent", true, 0, 0, &consent_type},
    LIST("flows", true, raw_agreement_t, flows, &flows_type),
    FIELD("escalation", false, raw_agreement_t, escalation, &name_type),
    FIELD("retention_days", false, raw_agreement_t, retention_days, &days_type),
    LIST("retention_by_class", false, raw_agreement_t, retention_by_class,
         &class_days_list_type),
    FIELD("owner", false, raw_agreement_t, owner, &name_type),
    LIST("signatories", false, raw_agreement_t, signatories, &signatories_type),
    LIST("status_history", false, raw_agreement_t, status_history, &history_type),
    FIELD("actor", false, raw_agreement_t, actor, &actor_type),
    END,
};
static const shub_yaml_type_t agreement_type = {.kind = SHUB_YAML_STRUCT,
                                                .fields = agreement_fields};

#undef FIELD
#undef LIST
#undef END

/* ---- checks a schema cannot make ------------------------------------------ */

typedef struct actx {
    loader_t *ld;
    shub_yaml_doc_t *doc;
    const raw_agreement_t *raw;
} actx_t;

/* Reports at the node `path` of the current file. */
#define a_error(a, path, ...) shub_yaml_error_path((a)->doc, path, __VA_ARGS__)

static bool in_list(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

/* Names must be names; a list must not repeat itself. */
static void check_names(actx_t *a, const char *key, const char *const *v, size_t n,
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
        if (!shub_registry_kind_known(a->ld, s->kinds[i]))
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

/* The limit retention_by_class puts on a copy carrying class `cls`; 0: none. */
static uint32_t class_days(const raw_agreement_t *r, int cls)
{
    for (size_t i = 0; i < r->retention_by_class_count; i++)
        if (r->retention_by_class[i].cls == cls)
            return r->retention_by_class[i].days;
    return 0;
}

/* How long a recipient keeps what flow f carries: the flow's days, else the
 * agreement's, cut by the class limit of every declared field the flow's
 * paths cover (`victim` covers `victim.name`). 0: no limit set anywhere. */
static uint32_t flow_retention(const raw_agreement_t *r, const raw_flow_t *f)
{
    uint32_t days = f->retention_days ? f->retention_days : r->retention_days;
    for (size_t k = 0; k < f->fields_count; k++) {
        size_t n = strlen(f->fields[k]);
        for (size_t i = 0; i < r->data_dictionary_count; i++) {
            const char *d = r->data_dictionary[i].field;
            if (strncmp(d, f->fields[k], n) != 0 || (d[n] != '\0' && d[n] != '.'))
                continue;
            uint32_t limit = class_days(r, r->data_dictionary[i].cls);
            if (limit && (!days || limit < days))
                days = limit;
        }
    }
    return days;
}

/* A set as the loaded config keeps it, copied into its arena. */
static shub_party_set_t party_set(loader_t *ld, const raw_set_t *s)
{
    return (shub_party_set_t){shub_config_strv(ld, s->orgs, s->orgs_count), s->orgs_count,
                              shub_config_strv(ld, s->kinds, s->kinds_count),
                              s->kinds_count, s->serving_subject_area};
}

static void check_flow(actx_t *a, size_t i, shub_flow_t *out)
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
                char first[64];
                snprintf(first, sizeof first, "flows[%zu].id", j);
                a_error(a, path, "duplicate flow id '%s' (first at line %d)", f->id,
                        shub_yaml_at(a->doc, first)->line);
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
            a_error(a, path,
                    "flow '%s': report field '%s' is not among the flow's fields", f->id,
                    f->report[k]);
    }

    out->id = shub_config_strdup(ld, f->id);
    out->from = party_set(ld, &f->from);
    out->to = party_set(ld, &f->to);
    out->events = shub_config_strv(ld, f->events, f->events_count);
    out->n_events = f->events_count;
    if (f->purposes_count) {
        out->purposes = shub_config_strv(ld, f->purposes, f->purposes_count);
        out->n_purposes = f->purposes_count;
    } else {
        out->purposes = shub_config_strv(ld, r->purposes, r->purposes_count);
        out->n_purposes = r->purposes_count;
    }
    if (f->legal_basis_count) {
        out->bases = shub_config_strv(ld, f->legal_basis, f->legal_basis_count);
        out->n_bases = f->legal_basis_count;
    } else {
        const char **b = shub_config_alloc(ld, (r->legal_basis_count + 1) * sizeof *b);
        for (size_t k = 0; b && k < r->legal_basis_count; k++)
            b[k] = shub_config_strdup(ld, r->legal_basis[k].id);
        out->bases = b;
        out->n_bases = r->legal_basis_count;
    }
    out->fields = shub_config_strv(ld, f->fields, f->fields_count);
    out->n_fields = f->fields_count;
    out->ack_within_hours = f->ack_within_hours;
    out->act_within_hours = f->act_within_hours;
    out->onward_sharing = f->onward_sharing;
    out->report = shub_config_strv(ld, f->report, f->report_count);
    out->n_report = f->report_count;
    out->retention_days = flow_retention(r, f);
    if (f->condition && !ld->oom) {
        char msg[SHUB_ERR_MSG_MAX - 32];
        shub_condition_t *cond = NULL;
        out->condition_text = shub_config_strdup(ld, f->condition);
        int rc = shub_cond_parse(ld->cfg->arena, f->condition, &cond, msg, sizeof msg);
        out->condition = cond;
        if (rc == SHUB_ENOMEM) {
            ld->oom = true;
        } else if (rc) {
            /* Reported at the condition's value; the column in the message
             * counts within the expression. */
            snprintf(path, sizeof path, "flows[%zu].condition", i);
            a_error(a, path, "condition: %s", msg);
        }
    }
}

static const char *status_name(int s)
{
    for (const shub_yaml_name_t *n = status_names; n->name; n++)
        if (n->value == s)
            return n->name;
    return "?";
}

static const char *role_name(int r)
{
    for (const shub_yaml_name_t *n = role_names; n->name; n++)
        if (n->value == r)
            return n->name;
    return "?";
}

static void check_dates(actx_t *a, agreement_t *ag)
{
    const raw_agreement_t *r = a->raw;
    if (r->valid_until < r->valid_from) {
        char until[SHUB_TIME_DATE_TEXT], from[SHUB_TIME_DATE_TEXT];
        a_error(a, "valid_until", "valid_until %s is before valid_from %s",
                shub_time_format_date(r->valid_until, until),
                shub_time_format_date(r->valid_from, from));
    }
    ag->pub.info.valid_from_ms = r->valid_from;
    /* inclusive: in force to the last millisecond of its last day */
    ag->pub.info.valid_until_ms = r->valid_until + SHUB_TIME_MS_PER_DAY - 1;
    ag->pub.info.review_ms = r->review_date;
}

/* An org named by the lifecycle keys must exist and be a party. */
static void check_party_org(actx_t *a, const char *path, const char *id, const char *what)
{
    if (a->ld->registry_failed)
        return;
    const shub_org_t *org = shub_config_org(a->ld->cfg, id);
    if (!org)
        a_error(a, path, "%s: unknown org '%s'", what, id);
    else if (!is_party_org(a->raw, org))
        a_error(a, path, "%s: org '%s' is not a party to this agreement", what, id);
}

/* Owner and signatories are party orgs; the status history runs forward in
 * time and ends in the status the file declares; a class is limited once. */
static void check_lifecycle(actx_t *a)
{
    const raw_agreement_t *r = a->raw;
    char path[64];
    if (r->owner)
        check_party_org(a, "owner", r->owner, "owner");
    for (size_t i = 0; i < r->signatories_count; i++) {
        snprintf(path, sizeof path, "signatories[%zu].org", i);
        check_party_org(a, path, r->signatories[i].org, "signatory");
    }
    for (size_t i = 1; i < r->status_history_count; i++) {
        if (r->status_history[i].date < r->status_history[i - 1].date) {
            snprintf(path, sizeof path, "status_history[%zu].date", i);
            a_error(a, path, "status_history is not in date order: entry %zu is earlier "
                             "than entry %zu",
                    i, i - 1);
        }
    }
    if (r->status_history_count &&
        r->status_history[r->status_history_count - 1].status != r->status) {
        snprintf(path, sizeof path, "status_history[%zu].status",
                 r->status_history_count - 1);
        a_error(a, path,
                "the last status_history entry is '%s' but the agreement's status is "
                "'%s'",
                status_name(r->status_history[r->status_history_count - 1].status),
                status_name(r->status));
    }
    for (size_t i = 0; i < r->retention_by_class_count; i++) {
        for (size_t j = 0; j < i; j++) {
            if (r->retention_by_class[j].cls == r->retention_by_class[i].cls) {
                snprintf(path, sizeof path, "retention_by_class[%zu].class", i);
                a_error(a, path, "duplicate class in retention_by_class");
            }
        }
    }
}

static void check_header(actx_t *a, agreement_t *ag)
{
    const raw_agreement_t *r = a->raw;
    loader_t *ld = a->ld;
    char path[64];
    if (!shub_is_name(r->id))
        a_error(a, "id", "agreement id '%s' is not a name ([a-z0-9][a-z0-9._-]*)", r->id);
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
    check_names(a, "consent.override_reasons", r->override_reasons,
                r->override_reasons_count, "override reason");
    if (r->escalation && !ld->registry_failed) {
        const shub_org_t *org = shub_config_org(ld->cfg, r->escalation);
        if (!org)
            a_error(a, "escalation", "unknown org '%s'", r->escalation);
        else if (!is_party_org(r, org))
            a_error(a, "escalation", "org '%s' is not a party to this agreement",
                    r->escalation);
    }
    check_lifecycle(a);
}

/* ---- loading ------------------------------------------------------------ */

static void fill(actx_t *a, agreement_t *ag)
{
    const raw_agreement_t *r = a->raw;
    loader_t *ld = a->ld;
    shub_agreement_t *pub = &ag->pub;
    pub->info.id = shub_config_strdup(ld, r->id);
    pub->info.title = shub_config_strdup(ld, r->title);
    pub->info.status = status_name(r->status);
    pub->info.file = shub_config_strdup(ld, shub_yaml_name(a->doc));
    pub->info.version = r->version;
    pub->status = (shub_agreement_status_t)r->status;
    pub->parties = party_set(ld, &r->parties);
    pub->parties.serving_subject_area = false;
    pub->consent_required = r->consent_required;
    pub->escalation = r->escalation ? shub_config_strdup(ld, r->escalation) : NULL;
    pub->override_reasons =
        shub_config_strv(ld, r->override_reasons, r->override_reasons_count);
    pub->n_override_reasons = r->override_reasons_count;
    role_t *roles = shub_config_alloc(ld, (r->roles_count + 1) * sizeof *roles);
    for (size_t i = 0; roles && i < r->roles_count; i++)
        roles[i] = (role_t){shub_config_strdup(ld, r->roles[i].party),
                            role_name(r->roles[i].role)};
    ag->roles = roles;
    ag->n_roles = r->roles_count;
    ag->purposes = shub_config_strv(ld, r->purposes, r->purposes_count);
    ag->n_purposes = r->purposes_count;
    basis_t *bases = shub_config_alloc(ld, (r->legal_basis_count + 1) * sizeof *bases);
    for (size_t i = 0; bases && i < r->legal_basis_count; i++)
        bases[i] = (basis_t){shub_config_strdup(ld, r->legal_basis[i].id),
                             shub_config_strdup(ld, r->legal_basis[i].text)};
    ag->bases = bases;
    ag->n_bases = r->legal_basis_count;
    datum_t *data = shub_config_alloc(ld, (r->data_dictionary_count + 1) * sizeof *data);
    for (size_t i = 0; data && i < r->data_dictionary_count; i++)
        data[i] = (datum_t){shub_config_strdup(ld, r->data_dictionary[i].field),
                            (data_class_t)r->data_dictionary[i].cls};
    ag->data = data;
    ag->n_data = r->data_dictionary_count;
    ag->retention = shub_config_strdup(ld, r->retention);
    pub->info.owner = shub_config_strdup(ld, r->owner);
    pub->actor_clear = r->actor == ACTOR_CLEAR;
    shub_signatory_t *sig =
        shub_config_alloc(ld, (r->signatories_count + 1) * sizeof *sig);
    for (size_t i = 0; sig && i < r->signatories_count; i++)
        sig[i] = (shub_signatory_t){shub_config_strdup(ld, r->signatories[i].org),
                                    shub_config_strdup(ld, r->signatories[i].role),
                                    shub_config_strdup(ld, r->signatories[i].name),
                                    r->signatories[i].date};
    pub->signatories = sig;
    pub->n_signatories = r->signatories_count;
    shub_status_change_t *hist =
        shub_config_alloc(ld, (r->status_history_count + 1) * sizeof *hist);
    for (size_t i = 0; hist && i < r->status_history_count; i++)
        hist[i] = (shub_status_change_t){status_name(r->status_history[i].status),
                                         r->status_history[i].date,
                                         shub_config_strdup(ld, r->status_history[i].note)};
    pub->history = hist;
    pub->n_history = r->status_history_count;
}

/* The BLAKE2b-256 of the file's bytes, in hex: what an audit row names. */
static int hash_file(loader_t *ld, const shub_yaml_doc_t *doc, agreement_t *ag)
{
    uint8_t h[crypto_generichash_BYTES];
    char *hex = shub_config_alloc(ld, 2 * sizeof h + 1);
    if (!hex)
        return SHUB_ENOMEM;
    size_t len;
    const char *bytes = shub_yaml_bytes(doc, &len);
    crypto_generichash(h, sizeof h, (const uint8_t *)bytes, len, NULL, 0);
    sodium_bin2hex(hex, 2 * sizeof h + 1, h, sizeof h);
    ag->pub.info.content_hash = hex;
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

static void check_and_fill(actx_t *a)
{
    loader_t *ld = a->ld;
    const raw_agreement_t *raw = a->raw;
    agreement_t *ag = shub_config_alloc(ld, sizeof *ag);
    if (!ag)
        return;
    ag->id_line = shub_yaml_at(a->doc, "id")->line;
    for (size_t i = 0; i < ld->cfg->n_agreements; i++) {
        const agreement_t *o = ld->cfg->agreements[i];
        if (strcmp(o->pub.info.id, raw->id) == 0) {
            a_error(a, "id", "duplicate agreement id '%s' (also in %s:%d)", raw->id,
                    o->pub.info.file, o->id_line);
            break;
        }
    }
    check_header(a, ag);
    fill(a, ag);
    shub_flow_t *flows = shub_config_alloc(ld, raw->flows_count * sizeof *flows + 1);
    for (size_t i = 0; flows && i < raw->flows_count && !ld->oom; i++)
        check_flow(a, i, &flows[i]);
    ag->pub.flows = flows;
    ag->pub.n_flows = raw->flows_count;
    if (!ld->oom && hash_file(ld, a->doc, ag) == 0)
        append(ld, ag);
}

int shub_agreement_load(loader_t *ld, const char *file)
{
    shub_yaml_doc_t *doc = NULL;
    raw_agreement_t raw = {0};
    int rc = shub_config_open(ld, file, true, &doc);
    if (rc == 0)
        rc = shub_yaml_bind(doc, &agreement_type, &raw);
    if (rc == 0) {
        actx_t a = {ld, doc, &raw};
        check_and_fill(&a);
    }
    shub_config_close(ld, &doc);
    return ld->oom ? SHUB_ENOMEM : 0;
}

static int cmp_agreement(const void *x, const void *y)
{
    const agreement_t *a = *(const agreement_t *const *)x,
                      *b = *(const agreement_t *const *)y;
    return strcmp(a->pub.info.id, b->pub.info.id);
}

void shub_agreements_finish(loader_t *ld)
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

const shub_agreement_t *shub_config_agreement_at(const shub_config_t *cfg, size_t i)
{
    return cfg && i < cfg->n_agreements ? &cfg->agreements[i]->pub : NULL;
}

int shub_config_agreement_info(const shub_config_t *cfg, size_t i,
                               shub_agreement_info_t *out)
{
    if (!cfg || !out)
        return SHUB_EINVAL;
    if (i >= cfg->n_agreements)
        return SHUB_ENOTFOUND;
    *out = cfg->agreements[i]->pub.info;
    return 0;
}

long shub_config_agreement_find(const shub_config_t *cfg, const char *id)
{
    if (!cfg || !id)
        return -1;
    size_t lo = 0, hi = cfg->n_agreements;
    while (lo < hi) { /* sorted by id at load */
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(cfg->agreements[mid]->pub.info.id, id);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}
