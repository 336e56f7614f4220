/*
 * json: events to and from JSON (include/sharehub/json.h), through jansson.
 *
 * Parsing is in two steps, like the codec's decoder: jansson turns the text
 * into a tree (syntax errors with line and column, duplicate keys refused),
 * then the tree is bound to a shub_share_t here, checking only what the
 * codec cannot see (JSON types, unknown keys, RFC 3339 times, uuids). The
 * share is then run through shub_msg_encode, which applies every protocol
 * rule and names the field at fault; this file only renames the path root.
 * Nothing a broker would refuse gets into an outbox.
 *
 * jansson allocates through shub_malloc/shub_free (json_set_alloc_funcs), so
 * the allocation-failure hook reaches inside it too.
 */
#include "sharehub/json.h"

#include "sharehub/alloc.h"
#include "sharehub/time.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_TEXT 512

/* jansson reports many allocation failures as syntax errors ("invalid token"),
 * so its allocator notes them here and the parser says out of memory instead.
 * Per thread: the agent's loop and the local API's threads parse at once. */
static _Thread_local bool j_failed;

static void *j_malloc(size_t n)
{
    void *p = shub_malloc(n);
    if (!p)
        j_failed = true;
    return p;
}

static void j_free(void *p)
{
    shub_free(p);
}

static void set_alloc(void)
{
    json_set_alloc_funcs(j_malloc, j_free);
}

/* jansson's allocator is process-wide: set once, before any thread uses it. */
static void use_shub_alloc(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, set_alloc);
}

/* ---- times ------------------------------------------------------------ */

int shub_json_time_parse(const char *text, int64_t *ms)
{
    /* Digits alone are ms since the epoch; anything else is a time. */
    if (text && *text && strspn(text, "0123456789") == strlen(text)) {
        if (strlen(text) > 15) /* more than 30,000 years of ms: a mistake */
            return SHUB_EVALUE;
        *ms = strtoll(text, NULL, 10);
        return 0;
    }
    return shub_time_parse(text, ms, NULL);
}

/* ---- JSON -> share ---------------------------------------------------- */

typedef struct {
    shub_arena_t *arena;
    shub_err_t *err;
    char path[PATH_MAX_TEXT];
    size_t len;
} conv_t;

static size_t path_push(conv_t *c, const char *key, long index)
{
    size_t mark = c->len;
    int n;
    if (key)
        n = snprintf(c->path + c->len, sizeof c->path - c->len, "%s%s", c->len ? "." : "",
                     key);
    else
        n = snprintf(c->path + c->len, sizeof c->path - c->len, "[%ld]", index);
    if (n > 0)
        c->len =
            c->len + (size_t)n < sizeof c->path ? c->len + (size_t)n : sizeof c->path - 1;
    return mark;
}

static void path_pop(conv_t *c, size_t mark)
{
    c->len = mark;
    c->path[mark] = '\0';
}

__attribute__((format(printf, 3, 4))) static int cfail(conv_t *c, int code,
                                                       const char *fmt, ...)
{
    if (!c->err)
        return code;
    char msg[SHUB_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return shub_err_set_path(c->err, code, c->path, "%s", msg);
}

static int nomem(conv_t *c)
{
    return cfail(c, SHUB_ENOMEM, "out of memory");
}

static int to_val(conv_t *c, json_t *j, int depth, shub_val_t *out);

static int object_to_map(conv_t *c, json_t *j, int depth, shub_val_t *out)
{
    shub_val_t map = shub_val_map();
    const char *key;
    json_t *value;
    json_object_foreach(j, key, value)
    {
        size_t mark = path_push(c, key, 0);
        if (!shub_val_is_field_name(key, strlen(key)))
            return cfail(c, SHUB_EVALUE,
                         "key is not a field name (1-64 of A-Z a-z 0-9 _ -)");
        shub_val_t v;
        int rc = to_val(c, value, depth + 1, &v);
        if (rc)
            return rc;
        rc = shub_val_put(c->arena, &map, key, v);
        if (rc == SHUB_ENOMEM)
            return nomem(c);
        if (rc)
            return cfail(c, rc, "duplicate key \"%s\"", key);
        path_pop(c, mark);
    }
    *out = map;
    return 0;
}

static int to_val(conv_t *c, json_t *j, int depth, shub_val_t *out)
{
    /* Deeper than the codec allows is refused here with the codec's words,
     * rather than built only to be refused. */
    if ((json_is_object(j) || json_is_array(j)) && depth + 1 > SHUB_MSG_MAX_DEPTH)
        return cfail(c, SHUB_ELIMIT, "nesting deeper than limit %d", SHUB_MSG_MAX_DEPTH);
    switch (json_typeof(j)) {
    case JSON_NULL:
        *out = shub_val_nil();
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        *out = shub_val_bool(json_is_true(j));
        return 0;
    case JSON_INTEGER:
        *out = shub_val_int(json_integer_value(j));
        return 0;
    case JSON_REAL:
        *out = shub_val_float(json_real_value(j));
        return 0;
    case JSON_STRING: {
        int rc = shub_val_str(c->arena, json_string_value(j), json_string_length(j), out);
        if (rc == SHUB_ENOMEM)
            return nomem(c);
        if (rc)
            return cfail(c, rc, "%s",
                         rc == SHUB_EUTF8 ? "text is not valid UTF-8"
                                          : "text contains a NUL byte");
        return 0;
    }
    case JSON_ARRAY: {
        shub_val_t arr = shub_val_array();
        for (size_t i = 0; i < json_array_size(j); i++) {
            size_t mark = path_push(c, NULL, (long)i);
            shub_val_t v;
            int rc = to_val(c, json_array_get(j, i), depth + 1, &v);
            if (rc)
                return rc;
            if (shub_val_push(c->arena, &arr, v))
                return nomem(c);
            path_pop(c, mark);
        }
        *out = arr;
        return 0;
    }
    case JSON_OBJECT:
        return object_to_map(c, j, depth, out);
    }
    return cfail(c, SHUB_ETYPE, "unsupported JSON type");
}

/* The envelope's keys; anything else is a mistake worth naming (a typo in
 * "subject" must not silently drop the field). */
static const char *const share_keys[] = {
    "id",    "event",   "occurred", "case",     "subject", "area",    "purpose",
    "basis", "consent", "override", "reply_to", "to",      "payload", "from",
    "actor",
};

/* Finds key in root: *v is NULL when absent; when present its path is
 * pushed (*mark, for the caller to pop) and it must be text. */
static int find_text(conv_t *c, json_t *root, const char *key, json_t **v, size_t *mark)
{
    if (!(*v = json_object_get(root, key)))
        return 0;
    *mark = path_push(c, key, 0);
    return json_is_string(*v) ? 0 : cfail(c, SHUB_ETYPE, "expected text");
}

/* Finds key in root, which must have it, and pushes its path (*mark, for
 * the caller to pop). */
static int find_required(conv_t *c, json_t *root, const char *key, json_t **v,
                         size_t *mark)
{
    *v = json_object_get(root, key);
    *mark = path_push(c, key, 0);
    return *v ? 0 : cfail(c, SHUB_EMISSING, "required field missing");
}

static int get_text(conv_t *c, json_t *root, const char *key, const char **out)
{
    json_t *v;
    size_t mark;
    int rc = find_text(c, root, key, &v, &mark);
    if (rc || !v)
        return rc;
    /* The codec checks the content; a NUL cannot occur (jansson refuses
     * \u0000 unless asked to allow it). */
    if (!(*out =
              shub_arena_strndup(c->arena, json_string_value(v), json_string_length(v))))
        return nomem(c);
    path_pop(c, mark);
    return 0;
}

static int get_id(conv_t *c, json_t *root, const char *key, shub_id_t *out, bool *found)
{
    json_t *v;
    size_t mark;
    int rc = find_text(c, root, key, &v, &mark);
    *found = v != NULL;
    if (rc || !v)
        return rc;
    if (shub_id_parse(json_string_value(v), out) != 0)
        return cfail(c, SHUB_EVALUE, "not an event id (8-4-4-4-12 hex digits)");
    path_pop(c, mark);
    return 0;
}

static int bind_share(conv_t *c, json_t *root, int64_t now_ms, shub_share_t *share)
{
    int rc;
    if (!json_is_object(root))
        return cfail(c, SHUB_ETYPE, "expected a JSON object with the SHARE fields");
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof share_keys / sizeof share_keys[0] && !known; i++)
            known = strcmp(key, share_keys[i]) == 0;
        if (!known) {
            path_push(c, key, 0);
            return cfail(c, SHUB_EVALUE, "unknown field");
        }
    }
    shub_event_t *ev = &share->ev;
    bool found;
    if ((rc = get_id(c, root, "id", &ev->id, &found)))
        return rc;
    if (!found && shub_id_generate(&ev->id, now_ms) != 0)
        return cfail(c, SHUB_ECRYPTO, "the system's random source failed");

    json_t *occurred;
    size_t mark;
    if ((rc = find_required(c, root, "occurred", &occurred, &mark)))
        return rc;
    if (json_is_integer(occurred)) {
        ev->occurred_ms = json_integer_value(occurred);
    } else if (json_is_string(occurred)) {
        if (shub_json_time_parse(json_string_value(occurred), &ev->occurred_ms) != 0)
            return cfail(c, SHUB_EVALUE,
                         "not an RFC 3339 time (2026-07-01T10:00:00Z) or integer ms");
    } else {
        return cfail(c, SHUB_ETYPE, "expected an RFC 3339 time or integer ms");
    }
    if (ev->occurred_ms < SHUB_JSON_MIN_OCCURRED_MS) {
        char t[SHUB_TIME_TEXT];
        return cfail(
            c, SHUB_EVALUE,
            "%s is before 2000-01-01: give an RFC 3339 time, or ms (not seconds) "
            "since 1970",
            shub_time_format(ev->occurred_ms, t));
    }
    path_pop(c, mark);

    if ((rc = get_text(c, root, "event", &ev->type)) ||
        (rc = get_text(c, root, "case", &ev->case_ref)) ||
        (rc = get_text(c, root, "subject", &ev->subject_ref)) ||
        (rc = get_text(c, root, "area", &ev->area)) ||
        (rc = get_text(c, root, "purpose", &ev->purpose)) ||
        (rc = get_text(c, root, "basis", &ev->basis)) ||
        (rc = get_text(c, root, "override", &ev->override)) ||
        (rc = get_text(c, root, "actor", &ev->actor)) ||
        (rc = get_text(c, root, "from", &share->from)))
        return rc;

    const char *consent = NULL;
    if ((rc = get_text(c, root, "consent", &consent)))
        return rc;
    if (consent) {
        int v = shub_consent_parse(consent);
        if (v < 0) {
            path_push(c, "consent", 0);
            return cfail(c, SHUB_EVALUE, "not one of given, refused, not-sought");
        }
        ev->consent = (shub_consent_t)v;
    }

    shub_id_t *reply = shub_arena_alloc(c->arena, sizeof *reply);
    if (!reply)
        return nomem(c);
    if ((rc = get_id(c, root, "reply_to", reply, &found)))
        return rc;
    ev->reply_to = found ? reply : NULL;

    json_t *to;
    if ((rc = find_required(c, root, "to", &to, &mark)))
        return rc;
    if (!json_is_array(to))
        return cfail(c, SHUB_ETYPE, "expected an array of recipients");
    size_t n_to = json_array_size(to);
    if (n_to > SHUB_MSG_MAX_TO)
        return cfail(c, SHUB_ELIMIT, "%zu recipients exceed limit %d", n_to,
                     SHUB_MSG_MAX_TO);
    const char **sel = shub_arena_alloc(c->arena, (n_to ? n_to : 1) * sizeof *sel);
    if (!sel)
        return nomem(c);
    for (size_t i = 0; i < n_to; i++) {
        json_t *item = json_array_get(to, i);
        size_t m2 = path_push(c, NULL, (long)i);
        if (!json_is_string(item))
            return cfail(c, SHUB_ETYPE, "expected text");
        if (!(sel[i] = shub_arena_strndup(c->arena, json_string_value(item),
                                          json_string_length(item))))
            return nomem(c);
        path_pop(c, m2);
    }
    share->to = sel;
    share->to_count = (uint32_t)n_to;
    path_pop(c, mark);

    json_t *payload;
    if ((rc = find_required(c, root, "payload", &payload, &mark)))
        return rc;
    if (!json_is_object(payload))
        return cfail(c, SHUB_ETYPE, "expected a map of named fields");
    if ((rc = object_to_map(c, payload, 1, &ev->payload)))
        return rc;
    path_pop(c, mark);
    return 0;
}

/* "SHARE.to[1]" -> "to[1]": the person wrote JSON, not a SHARE message. */
static void strip_root(shub_err_t *err)
{
    if (!err)
        return;
    static const char root[] = "SHARE";
    size_t n = sizeof root - 1;
    if (strncmp(err->path, root, n) != 0)
        return;
    const char *rest = err->path + n;
    if (*rest == '.')
        rest++;
    else if (*rest != '\0' && *rest != '[')
        return;
    memmove(err->path, rest, strlen(rest) + 1);
}

int shub_json_share_parse(const char *text, size_t len, int64_t now_ms,
                          shub_arena_t *arena, shub_share_t *share, shub_err_t *err)
{
    if (!text || !arena || !share)
        return shub_err_set(err, SHUB_EINVAL, "no text, arena or share");
    if (len > SHUB_JSON_MAX_INPUT)
        return shub_err_set(err, SHUB_ELIMIT, "input of %zu bytes exceeds limit %d", len,
                            SHUB_JSON_MAX_INPUT);
    use_shub_alloc();
    json_error_t jerr;
    j_failed = false;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (j_failed || json_error_code(&jerr) == json_error_out_of_memory)
            return shub_err_set(err, SHUB_ENOMEM, "out of memory");
        int rc = shub_err_set(err, SHUB_EMALFORMED, "line %d column %d: %s", jerr.line,
                              jerr.column, jerr.text);
        if (err) {
            err->line = jerr.line;
            err->column = jerr.column;
        }
        return rc;
    }
    shub_share_t tmp = {.ev = {.payload = shub_val_nil()}};
    conv_t c = {.arena = arena, .err = err};
    int rc = bind_share(&c, root, now_ms, &tmp);
    json_decref(root);
    if (rc)
        return rc;

    /* Every protocol rule, as the broker will apply it. */
    shub_buf_t buf = {0};
    shub_msg_t msg = {.type = SHUB_MSG_SHARE, .share = tmp};
    rc = shub_msg_encode(&msg, &buf, err);
    if (rc) {
        strip_root(err);
    } else if ((rc = shub_event_encode(&tmp.ev, &buf, err)) == 0 &&
               buf.len > SHUB_MSG_MAX_EVENT) {
        /* The broker seals the event into one DELIVER: it must fit there. */
        rc = shub_err_set_path(err, SHUB_ELIMIT, "payload",
                               "event of %zu bytes exceeds limit %d", buf.len,
                               SHUB_MSG_MAX_EVENT);
    }
    shub_buf_free(&buf);
    if (rc == 0)
        *share = tmp;
    return rc;
}

/* ---- event -> JSON ---------------------------------------------------- */

static json_t *from_val(const shub_val_t *v)
{
    switch (v->type) {
    case SHUB_VAL_NIL:
        return json_null();
    case SHUB_VAL_BOOL:
        return json_boolean(v->as.b);
    case SHUB_VAL_INT:
        return json_integer(v->as.i);
    case SHUB_VAL_FLOAT:
        return isfinite(v->as.f) ? json_real(v->as.f) : json_null();
    case SHUB_VAL_STR:
        return json_stringn_nocheck(v->as.str, v->len);
    case SHUB_VAL_BIN: {
        size_t n = sodium_base64_ENCODED_LEN(v->len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = shub_malloc(n);
        if (!b64)
            return NULL;
        sodium_bin2base64(b64, n, v->as.bin, v->len, sodium_base64_VARIANT_ORIGINAL);
        json_t *s = json_string(b64);
        shub_free(b64);
        return s;
    }
    case SHUB_VAL_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < v->len; i++)
            if (json_array_append_new(a, from_val(&v->as.items[i])) != 0) {
                json_decref(a);
                return NULL;
            }
        return a;
    }
    case SHUB_VAL_MAP: {
        json_t *o = json_object();
        for (uint32_t i = 0; o && i < v->len; i++)
            if (json_object_set_new_nocheck(o, v->as.pairs[i].key,
                                            from_val(&v->as.pairs[i].val)) != 0) {
                json_decref(o);
                return NULL;
            }
        return o;
    }
    }
    return json_null();
}

/* Adds key: text unless s is NULL. False on out of memory. */
static bool put_text(json_t *o, const char *key, const char *s)
{
    return !s || json_object_set_new(o, key, json_string(s)) == 0;
}

static bool put_id(json_t *o, const char *key, const shub_id_t *id)
{
    char t[SHUB_ID_TEXT];
    if (!id)
        return true;
    shub_id_format(id, t);
    return put_text(o, key, t);
}

static bool put_time(json_t *o, const char *key, int64_t ms)
{
    char t[SHUB_TIME_TEXT];
    return put_text(o, key, shub_time_format(ms, t));
}

int shub_json_event_write(const shub_event_t *ev, const shub_json_meta_t *meta,
                          char **out_p, shub_err_t *err)
{
    if (!ev || !out_p)
        return shub_err_set(err, SHUB_EINVAL, "no event or no result pointer");
    use_shub_alloc();
    json_t *o = json_object();
    bool ok =
        o && put_id(o, "id", &ev->id) && put_text(o, "event", ev->type) &&
        put_time(o, "occurred", ev->occurred_ms) && put_text(o, "case", ev->case_ref) &&
        put_text(o, "subject", ev->subject_ref) && put_text(o, "area", ev->area) &&
        put_text(o, "purpose", ev->purpose) && put_text(o, "basis", ev->basis) &&
        put_text(o, "consent", ev->consent ? shub_consent_name(ev->consent) : NULL) &&
        put_text(o, "override", ev->override) && put_id(o, "reply_to", ev->reply_to) &&
        put_text(o, "actor", ev->actor);
    if (ok && meta)
        ok = put_text(o, "from", meta->from) &&
             put_text(o, "agreement", meta->agreement) &&
             json_object_set_new(o, "version", json_integer(meta->version)) == 0 &&
             put_text(o, "flow", meta->flow) &&
             put_time(o, "received", meta->received_ms) && put_text(o, "hook", meta->hook) &&
             (!meta->taken_ms || put_time(o, "taken", meta->taken_ms));
    if (ok) {
        json_t *p = from_val(&ev->payload);
        ok = p && json_object_set_new(o, "payload", p) == 0;
    }
    char *text = ok ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!text)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    *out_p = text;
    return 0;
}
