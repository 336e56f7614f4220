/*
 * test_json: events to and from JSON as `submit`, `inbox --format json` and
 * `--on-receive` use them. A SHARE written as JSON binds to exactly the
 * fields and payload types it names; an event written as JSON reads back the
 * same; and every way of getting the input wrong yields its own code, the
 * path of the field at fault and the codec's own words.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharehub/alloc.h"
#include "sharehub/json.h"

#define NOW 1782900000000LL /* 2026-07-01T10:00:00Z */

static const char full[] =
    "{\"id\": \"0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b\",\n"
    " \"event\": \"marac.referral\", \"occurred\": \"2026-07-01T10:00:00Z\",\n"
    " \"case\": \"CASE-1\", \"subject\": \"SUBJ-42\", \"area\": \"coventry\",\n"
    " \"purpose\": \"marac-risk-management\", \"basis\": \"uk-gdpr-6-1-e\",\n"
    " \"consent\": \"refused\", \"override\": \"risk-to-life\",\n"
    " \"reply_to\": \"0190a5b2-0000-7000-8000-000000000001\",\n"
    " \"to\": [\"marac@coventry\", \"idva-coventry\"],\n"
    " \"payload\": {\"victim\": {\"name\": \"Jane Example\", \"dob\": \"1990-04-01\"},\n"
    "             \"risk\": {\"dash_score\": 16, \"ratio\": 0.5, \"repeat\": true},\n"
    "             \"note\": null, \"children\": [{\"name\": \"A\"}, {\"name\": \"B\"}]}}";

typedef struct {
    shub_arena_t *arena;
    shub_share_t share;
    shub_err_t err;
} parsed_t;

static int parse(parsed_t *p, const char *text)
{
    p->arena = shub_arena_new(0);
    assert_non_null(p->arena);
    memset(&p->share, 0, sizeof p->share);
    shub_err_clear(&p->err);
    return shub_json_share_parse(text, strlen(text), NOW, p->arena, &p->share, &p->err);
}

static void done(parsed_t *p)
{
    shub_arena_destroy(&p->arena);
}

/* Parses text, which must fail with code at path saying msg. */
static void refused(const char *text, int code, const char *path, const char *msg)
{
    parsed_t p;
    assert_int_equal(parse(&p, text), code);
    assert_int_equal(p.err.code, code);
    assert_string_equal(p.err.path, path);
    assert_string_equal(p.err.msg, msg);
    done(&p);
}

/* A valid SHARE with one member replaced: `key` (e.g. "\"case\": 5") is
 * spliced in instead of the default for that key, or added if new. */
static char *with(const char *member)
{
    static const char base[] =
        "{\"event\": \"marac.referral\", \"occurred\": 1782900000000, \"area\": "
        "\"coventry\", "
        "\"purpose\": \"marac-risk-management\", \"basis\": \"uk-gdpr-6-1-e\", "
        "\"consent\": \"given\", \"to\": [\"marac@coventry\"], \"payload\": {\"a\": 1}";
    size_t n = sizeof base + strlen(member) + 8;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%s%s%s}", base, member[0] ? ", " : "", member);
    return out;
}

/* A valid SHARE without `key`. */
static char *without(const char *key)
{
    json_error_t e;
    char *text = with("");
    json_t *j = json_loads(text, 0, &e);
    free(text);
    assert_non_null(j);
    json_object_del(j, key);
    char *out = json_dumps(j, 0);
    json_decref(j);
    return out;
}

/* ---- JSON -> share ---------------------------------------------------- */

static void test_shub_json_share_parse_full_binds_every_field(void **state)
{
    (void)state;
    parsed_t p;
    assert_int_equal(parse(&p, full), 0);
    const shub_event_t *ev = &p.share.ev;
    char idt[SHUB_ID_TEXT];
    shub_id_format(&ev->id, idt);
    assert_string_equal(idt, "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b");
    assert_string_equal(ev->type, "marac.referral");
    assert_int_equal(ev->occurred_ms, NOW);
    assert_string_equal(ev->case_ref, "CASE-1");
    assert_string_equal(ev->subject_ref, "SUBJ-42");
    assert_string_equal(ev->area, "coventry");
    assert_string_equal(ev->purpose, "marac-risk-management");
    assert_string_equal(ev->basis, "uk-gdpr-6-1-e");
    assert_int_equal(ev->consent, SHUB_CONSENT_REFUSED);
    assert_string_equal(ev->override, "risk-to-life");
    assert_non_null(ev->reply_to);
    shub_id_format(ev->reply_to, idt);
    assert_string_equal(idt, "0190a5b2-0000-7000-8000-000000000001");
    assert_int_equal(p.share.to_count, 2);
    assert_string_equal(p.share.to[0], "marac@coventry");
    assert_string_equal(p.share.to[1], "idva-coventry");
    assert_null(p.share.from);

    const shub_val_t *v = shub_val_at(&ev->payload, "victim.name");
    assert_non_null(v);
    assert_int_equal(v->type, SHUB_VAL_STR);
    assert_string_equal(v->as.str, "Jane Example");
    v = shub_val_at(&ev->payload, "risk.dash_score");
    assert_int_equal(v->type, SHUB_VAL_INT);
    assert_int_equal(v->as.i, 16);
    v = shub_val_at(&ev->payload, "risk.ratio");
    assert_int_equal(v->type, SHUB_VAL_FLOAT);
    assert_true(v->as.f == 0.5);
    v = shub_val_at(&ev->payload, "risk.repeat");
    assert_int_equal(v->type, SHUB_VAL_BOOL);
    assert_true(v->as.b);
    assert_int_equal(shub_val_get(&ev->payload, "note")->type, SHUB_VAL_NIL);
    v = shub_val_get(&ev->payload, "children");
    assert_int_equal(v->type, SHUB_VAL_ARRAY);
    assert_int_equal(v->len, 2);
    assert_string_equal(shub_val_get(&v->as.items[1], "name")->as.str, "B");
    /* JSON object order is kept. */
    assert_string_equal(ev->payload.as.pairs[0].key, "victim");
    assert_string_equal(ev->payload.as.pairs[3].key, "children");
    done(&p);
}

static void test_shub_json_share_parse_without_id_generates_one_for_now(void **state)
{
    (void)state;
    parsed_t p;
    char *text = with("");
    assert_int_equal(parse(&p, text), 0);
    free(text);
    assert_int_equal(shub_id_time_ms(&p.share.ev.id), NOW);
    assert_int_equal(p.share.ev.id.bytes[6] >> 4, 7); /* UUIDv7 */
    assert_null(p.share.ev.reply_to);
    assert_null(p.share.ev.case_ref);
    done(&p);
}

static void test_shub_json_share_parse_occurred_accepts_offset_and_ms(void **state)
{
    (void)state;
    parsed_t p;
    char *text = with("\"id\": \"0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b\"");
    assert_int_equal(parse(&p, text), 0);
    free(text);
    assert_int_equal(p.share.ev.occurred_ms, NOW);
    done(&p);

    json_error_t e;
    char *base = with("");
    json_t *j = json_loads(base, 0, &e);
    free(base);
    json_object_set_new(j, "occurred", json_string("2026-07-01T11:00:00.250+01:00"));
    char *t2 = json_dumps(j, 0);
    json_decref(j);
    assert_int_equal(parse(&p, t2), 0);
    free(t2);
    assert_int_equal(p.share.ev.occurred_ms, NOW + 250);
    done(&p);
}

/* ---- JSON -> share: every error ---------------------------------------- */

static void test_shub_json_share_parse_syntax_error_names_line_and_column(void **state)
{
    (void)state;
    refused("{\n  \"event\": \"x\",\n  \"area\" \"coventry\"\n}", SHUB_EMALFORMED, "",
            "line 3 column 19: ':' expected near '\"coventry\"'");
    parsed_t p;
    assert_int_equal(parse(&p, "{\n  \"event\": \"x\",\n  \"area\" \"coventry\"\n}"),
                     SHUB_EMALFORMED);
    assert_int_equal(p.err.line, 3);
    assert_int_equal(p.err.column, 19);
    done(&p);
}

static void test_shub_json_share_parse_empty_input_emalformed(void **state)
{
    (void)state;
    refused("", SHUB_EMALFORMED, "",
            "line 1 column 0: '[' or '{' expected near end of file");
}

static void test_shub_json_share_parse_duplicate_key_emalformed(void **state)
{
    (void)state;
    refused("{\"area\": \"a\", \"area\": \"b\"}", SHUB_EMALFORMED, "",
            "line 1 column 20: duplicate object key near '\"area\"'");
}

static void test_shub_json_share_parse_not_an_object_etype(void **state)
{
    (void)state;
    refused("[1, 2]", SHUB_ETYPE, "", "expected a JSON object with the SHARE fields");
}

static void test_shub_json_share_parse_unknown_key_evalue(void **state)
{
    (void)state;
    char *t = with("\"subjct\": \"SUBJ-1\"");
    refused(t, SHUB_EVALUE, "subjct", "unknown field");
    free(t);
}

static void test_shub_json_share_parse_bad_selector_names_its_index(void **state)
{
    (void)state;
    json_error_t e;
    char *base = with("");
    json_t *j = json_loads(base, 0, &e);
    free(base);
    json_t *to = json_array();
    json_array_append_new(to, json_string("marac@coventry"));
    json_array_append_new(to, json_string("Not A Selector"));
    json_object_set_new(j, "to", to);
    char *t = json_dumps(j, 0);
    json_decref(j);
    refused(t, SHUB_EVALUE, "to[1]", "not an org id, @area or kind@area");
    free(t);
}

typedef struct {
    const char *key;
    int code;
    const char *msg;
} missing_t;

static void test_shub_json_share_parse_each_missing_field_emissing(void **state)
{
    (void)state;
    static const missing_t cases[] = {
        {"event", SHUB_EMISSING, "required field missing"},
        {"occurred", SHUB_EMISSING, "required field missing"},
        {"area", SHUB_EMISSING, "required field missing"},
        {"purpose", SHUB_EMISSING, "required field missing"},
        {"basis", SHUB_EMISSING, "required field missing"},
        {"consent", SHUB_EMISSING, "required field missing"},
        {"to", SHUB_EMISSING, "required field missing"},
        {"payload", SHUB_EMISSING, "required field missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = without(cases[i].key);
        refused(t, cases[i].code, cases[i].key, cases[i].msg);
        free(t);
    }
}

typedef struct {
    const char *member;
    int code;
    const char *path;
    const char *msg;
} bad_t;

static const bad_t bad_values[] = {
    {"\"case\": 5", SHUB_ETYPE, "case", "expected text"},
    {"\"override\": [\"x\"]", SHUB_ETYPE, "override", "expected text"},
    {"\"id\": \"nope\"", SHUB_EVALUE, "id", "not an event id (8-4-4-4-12 hex digits)"},
    {"\"id\": 7", SHUB_ETYPE, "id", "expected text"},
    {"\"reply_to\": \"0190a5b2\"", SHUB_EVALUE, "reply_to",
     "not an event id (8-4-4-4-12 hex digits)"},
    {"\"from\": \"West Midlands\"", SHUB_EVALUE, "from",
     "not a name (lowercase letters, digits, '.', '_', '-')"},
    {"\"subject\": \"\"", SHUB_EVALUE, "subject", "empty text"},
    {"\"subject\": \"a\\tb\"", SHUB_EVALUE, "subject",
     "text contains a control character"},
};

static void test_shub_json_share_parse_bad_value_names_field_and_rule(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        char *t = with(bad_values[i].member);
        refused(t, bad_values[i].code, bad_values[i].path, bad_values[i].msg);
        free(t);
    }
}

/* Replaces one member of the base SHARE with a JSON value given as text. */
static char *replace(const char *key, const char *value_json)
{
    json_error_t e;
    char *base = with("");
    json_t *j = json_loads(base, 0, &e);
    free(base);
    json_t *v = json_loads(value_json, JSON_DECODE_ANY, &e);
    assert_non_null(v);
    json_object_set_new(j, key, v);
    char *out = json_dumps(j, 0);
    json_decref(j);
    return out;
}

static const struct {
    const char *key, *value;
    int code;
    const char *path, *msg;
} replaced[] = {
    {"event", "5", SHUB_ETYPE, "event", "expected text"},
    {"event", "\"Marac Referral\"", SHUB_EVALUE, "event",
     "not a name (lowercase letters, digits, '.', '_', '-')"},
    {"consent", "\"maybe\"", SHUB_EVALUE, "consent",
     "not one of given, refused, not-sought"},
    {"occurred", "\"yesterday\"", SHUB_EVALUE, "occurred",
     "not an RFC 3339 time (2026-07-01T10:00:00Z) or integer ms"},
    {"occurred", "\"2026-02-30T10:00:00Z\"", SHUB_EVALUE, "occurred",
     "not an RFC 3339 time (2026-07-01T10:00:00Z) or integer ms"},
    {"occurred", "true", SHUB_ETYPE, "occurred",
     "expected an RFC 3339 time or integer ms"},
    {"occurred", "-5", SHUB_EVALUE, "occurred",
     "1969-12-31T23:59:59.995Z is before 2000-01-01: give an RFC 3339 time, or ms (not "
     "seconds) since 1970"},
    {"occurred", "12345", SHUB_EVALUE, "occurred",
     "1970-01-01T00:00:12.345Z is before 2000-01-01: give an RFC 3339 time, or ms (not "
     "seconds) since 1970"},
    {"occurred", "1782900000", SHUB_EVALUE, "occurred", /* seconds, not ms */
     "1970-01-21T15:15:00.000Z is before 2000-01-01: give an RFC 3339 time, or ms (not "
     "seconds) since 1970"},
    {"occurred", "\"1999-12-31T23:59:59Z\"", SHUB_EVALUE, "occurred",
     "1999-12-31T23:59:59.000Z is before 2000-01-01: give an RFC 3339 time, or ms (not "
     "seconds) since 1970"},
    {"to", "\"marac@coventry\"", SHUB_ETYPE, "to", "expected an array of recipients"},
    {"to", "[]", SHUB_EVALUE, "to", "no items"},
    {"to", "[\"wmp\", 3]", SHUB_ETYPE, "to[1]", "expected text"},
    {"payload", "[1]", SHUB_ETYPE, "payload", "expected a map of named fields"},
    {"payload", "{\"victim\": {\"first name\": \"J\"}}", SHUB_EVALUE,
     "payload.victim.first name", "key is not a field name (1-64 of A-Z a-z 0-9 _ -)"},
    {"payload", "{\"a\": [[[[[[[[[[[[1]]]]]]]]]]]]}", SHUB_ELIMIT,
     "payload.a[0][0][0][0][0][0][0][0][0][0]", "nesting deeper than limit 12"},
};

static void test_shub_json_share_parse_wrong_type_or_value_each_named(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof replaced / sizeof replaced[0]; i++) {
        char *t = replace(replaced[i].key, replaced[i].value);
        refused(t, replaced[i].code, replaced[i].path, replaced[i].msg);
        free(t);
    }
}

static void test_shub_json_share_parse_oversized_values_elimit(void **state)
{
    (void)state;
    char big[200 + 3];
    memset(big, 'C', 200);
    big[200] = '\0';
    json_error_t e;
    char *base = with("");
    json_t *j = json_loads(base, 0, &e);
    free(base);
    json_object_set_new(j, "case", json_string(big));
    char *t = json_dumps(j, 0);
    refused(t, SHUB_ELIMIT, "case", "text of 200 bytes exceeds limit 128");
    free(t);

    char *huge = malloc(20001);
    memset(huge, 'x', 20000);
    huge[20000] = '\0';
    json_t *payload = json_object(), *incident = json_object();
    json_object_set_new(incident, "summary", json_string(huge));
    json_object_set_new(payload, "incident", incident);
    json_object_set_new(j, "case", json_string("CASE-1"));
    json_object_set_new(j, "payload", payload);
    t = json_dumps(j, 0);
    refused(t, SHUB_ELIMIT, "payload.incident.summary",
            "text of 20000 bytes exceeds limit 16384");
    free(t);
    free(huge);
    json_decref(j);
}

static void test_shub_json_share_parse_event_too_big_to_seal_elimit(void **state)
{
    (void)state;
    /* Under the 1 MiB message limit, over what a DELIVER can carry sealed. */
    json_error_t e;
    char *base = with("");
    json_t *j = json_loads(base, 0, &e);
    free(base);
    json_t *payload = json_object();
    char *chunk = malloc(16341);
    memset(chunk, 'y', 16340);
    chunk[16340] = '\0';
    for (int i = 0; i < 64; i++) {
        char key[16];
        snprintf(key, sizeof key, "f%d", i);
        json_object_set_new(payload, key, json_string(chunk));
    }
    free(chunk);
    json_object_set_new(j, "payload", payload);
    char *t = json_dumps(j, 0);
    json_decref(j);
    parsed_t p;
    assert_int_equal(parse(&p, t), SHUB_ELIMIT);
    assert_string_equal(p.err.path, "payload");
    char limit[64];
    snprintf(limit, sizeof limit, "exceeds limit %d", SHUB_MSG_MAX_EVENT);
    assert_non_null(strstr(p.err.msg, limit));
    assert_int_equal(strncmp(p.err.msg, "event of 10", 11), 0);
    done(&p);
    free(t);
}

static void test_shub_json_share_parse_out_of_memory_enomem_no_leak(void **state)
{
    (void)state;
    int rc = SHUB_ENOMEM;
    for (long n = 0; rc == SHUB_ENOMEM && n < 10000; n++) {
        shub_arena_t *arena = shub_arena_new(0);
        assert_non_null(arena);
        shub_share_t share;
        shub_err_t err;
        shub_alloc_fail_after(n);
        rc = shub_json_share_parse(full, strlen(full), NOW, arena, &share, &err);
        long failures = shub_alloc_failures();
        shub_alloc_fail_after(-1);
        if (rc == SHUB_ENOMEM)
            assert_true(failures > 0);
        shub_arena_destroy(&arena);
    }
    assert_int_equal(rc, 0);
}

/* ---- event -> JSON ---------------------------------------------------- */

static void test_shub_json_event_write_exact_text_with_meta(void **state)
{
    (void)state;
    parsed_t p;
    assert_int_equal(parse(&p, full), 0);
    shub_json_meta_t meta = {.from = "wmp",
                             .agreement = "test-marac",
                             .version = 2,
                             .flow = "referral",
                             .received_ms = NOW + 1500};
    char *text = NULL;
    shub_err_t err;
    assert_int_equal(shub_json_event_write(&p.share.ev, &meta, &text, &err), 0);
    assert_string_equal(
        text,
        "{\"id\":\"0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b\",\"event\":\"marac.referral\","
        "\"occurred\":\"2026-07-01T10:00:00.000Z\",\"case\":\"CASE-1\",\"subject\":"
        "\"SUBJ-42\","
        "\"area\":\"coventry\",\"purpose\":\"marac-risk-management\","
        "\"basis\":\"uk-gdpr-6-1-e\",\"consent\":\"refused\",\"override\":\"risk-to-"
        "life\","
        "\"reply_to\":\"0190a5b2-0000-7000-8000-000000000001\",\"from\":\"wmp\","
        "\"agreement\":\"test-marac\",\"version\":2,\"flow\":\"referral\","
        "\"received\":\"2026-07-01T10:00:01.500Z\",\"payload\":{\"victim\":{\"name\":"
        "\"Jane "
        "Example\",\"dob\":\"1990-04-01\"},\"risk\":{\"dash_score\":16,\"ratio\":0.5,"
        "\"repeat\":true},\"note\":null,\"children\":[{\"name\":\"A\"},{\"name\":\"B\"}]}"
        "}");
    shub_free(text);
    done(&p);
}

static void test_shub_json_event_write_then_parse_round_trips(void **state)
{
    (void)state;
    parsed_t p, q;
    assert_int_equal(parse(&p, full), 0);
    char *text = NULL;
    shub_err_t err;
    assert_int_equal(shub_json_event_write(&p.share.ev, NULL, &text, &err), 0);
    /* An event has no recipients: add them back to make it a SHARE again. */
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    shub_free(text);
    assert_non_null(j);
    json_t *to = json_array();
    json_array_append_new(to, json_string("marac@coventry"));
    json_object_set_new(j, "to", to);
    char *again = json_dumps(j, 0);
    json_decref(j);
    assert_int_equal(parse(&q, again), 0);
    free(again);
    const shub_event_t *a = &p.share.ev, *b = &q.share.ev;
    assert_memory_equal(a->id.bytes, b->id.bytes, SHUB_ID_SIZE);
    assert_string_equal(a->type, b->type);
    assert_int_equal(a->occurred_ms, b->occurred_ms);
    assert_string_equal(a->case_ref, b->case_ref);
    assert_string_equal(a->subject_ref, b->subject_ref);
    assert_string_equal(a->override, b->override);
    assert_int_equal(a->consent, b->consent);
    assert_memory_equal(a->reply_to->bytes, b->reply_to->bytes, SHUB_ID_SIZE);
    assert_true(shub_val_equal(&a->payload, &b->payload));
    done(&p);
    done(&q);
}

static void test_shub_json_event_write_binary_as_base64_and_nan_as_null(void **state)
{
    (void)state;
    shub_arena_t *arena = shub_arena_new(0);
    shub_event_t ev = {.type = "a.b",
                       .occurred_ms = 0,
                       .area = "x",
                       .purpose = "p",
                       .basis = "b",
                       .consent = SHUB_CONSENT_GIVEN};
    shub_val_t payload = shub_val_map(), bin;
    assert_int_equal(shub_val_bin(arena, "\x01\x02\x03", 3, &bin), 0);
    assert_int_equal(shub_val_put(arena, &payload, "scan", bin), 0);
    assert_int_equal(shub_val_put(arena, &payload, "ratio", shub_val_float(NAN)), 0);
    ev.payload = payload;
    char *text = NULL;
    shub_err_t err;
    assert_int_equal(shub_json_event_write(&ev, NULL, &text, &err), 0);
    assert_string_equal(text,
                        "{\"id\":\"00000000-0000-0000-0000-000000000000\","
                        "\"event\":\"a.b\",\"occurred\":\"1970-01-01T00:00:00.000Z\","
                        "\"area\":\"x\",\"purpose\":\"p\",\"basis\":\"b\","
                        "\"consent\":\"given\",\"payload\":{\"scan\":\"AQID\","
                        "\"ratio\":null}}");
    shub_free(text);
    shub_arena_destroy(&arena);
}

/* ---- times ------------------------------------------------------------ */

static void test_shub_json_time_parse_forms_and_refusals(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(shub_json_time_parse("2026-07-01T10:00:00Z", &ms), 0);
    assert_int_equal(ms, NOW);
    assert_int_equal(shub_json_time_parse("2026-07-01t10:00:00.5z", &ms), 0);
    assert_int_equal(ms, NOW + 500);
    assert_int_equal(shub_json_time_parse("2026-07-01T05:30:00-04:30", &ms), 0);
    assert_int_equal(ms, NOW);
    assert_int_equal(shub_json_time_parse("2024-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(shub_json_time_parse("1782900000000", &ms), 0);
    assert_int_equal(ms, NOW);
    /* a date is its midnight, as everywhere else (time.h) */
    assert_int_equal(shub_json_time_parse("2026-07-01", &ms), 0);
    assert_int_equal(ms, NOW - 10 * 3600000);
    static const char *const bad[] = {
        "",
        "2026-07-01T10:00:00",
        "2026-13-01T10:00:00Z",
        "2025-02-29T00:00:00Z",
        "2026-07-01T24:00:00Z",
        "2026-07-01T10:00:00Zjunk",
        "2026-07-01T10:00:00.Z",
        "-5",
        "12345678901234567",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(shub_json_time_parse(bad[i], &ms), SHUB_EVALUE);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shub_json_share_parse_full_binds_every_field),
        cmocka_unit_test(test_shub_json_share_parse_without_id_generates_one_for_now),
        cmocka_unit_test(test_shub_json_share_parse_occurred_accepts_offset_and_ms),
        cmocka_unit_test(test_shub_json_share_parse_syntax_error_names_line_and_column),
        cmocka_unit_test(test_shub_json_share_parse_empty_input_emalformed),
        cmocka_unit_test(test_shub_json_share_parse_duplicate_key_emalformed),
        cmocka_unit_test(test_shub_json_share_parse_not_an_object_etype),
        cmocka_unit_test(test_shub_json_share_parse_unknown_key_evalue),
        cmocka_unit_test(test_shub_json_share_parse_bad_selector_names_its_index),
        cmocka_unit_test(test_shub_json_share_parse_each_missing_field_emissing),
        cmocka_unit_test(test_shub_json_share_parse_bad_value_names_field_and_rule),
        cmocka_unit_test(test_shub_json_share_parse_wrong_type_or_value_each_named),
        cmocka_unit_test(test_shub_json_share_parse_oversized_values_elimit),
        cmocka_unit_test(test_shub_json_share_parse_event_too_big_to_seal_elimit),
        cmocka_unit_test(test_shub_json_share_parse_out_of_memory_enomem_no_leak),
        cmocka_unit_test(test_shub_json_event_write_exact_text_with_meta),
        cmocka_unit_test(test_shub_json_event_write_then_parse_round_trips),
        cmocka_unit_test(test_shub_json_event_write_binary_as_base64_and_nan_as_null),
        cmocka_unit_test(test_shub_json_time_parse_forms_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
