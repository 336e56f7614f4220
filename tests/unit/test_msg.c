/*
 * test_msg: the wire codec as both ends of a connection use it.
 *
 * Every message type goes through encode -> decode with all of its optional
 * fields present and with all of them absent, and must come back field for
 * field. Then hostile input: each malformed message is a valid message with
 * one field replaced, removed or repeated (a template taken from the real
 * encoder's output, so the rest of the message is known to be good), and each
 * must fail with its exact code and field path. Every limit is tried at its
 * edge on both sides of the wire, allocation failure is injected at every
 * step, and ids are checked for order and layout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sharehub/alloc.h"
#include "sharehub/err.h"
#include "sharehub/msg.h"
#include "sharehub/val.h"

#define RAW(s) s, sizeof(s) - 1

/* ---- sample messages --------------------------------------------------- */

static const shub_id_t id_a = {{0x01, 0x90, 0xa5, 0xb2, 0x3c, 0x4d, 0x70, 0x01, 0x80,
                                0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}};
static const shub_id_t id_b = {{0x01, 0x90, 0xa5, 0xb2, 0x00, 0x00, 0x7f, 0xff, 0xbf,
                                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}};

static shub_val_t text(shub_arena_t *a, const char *s)
{
    shub_val_t v;
    assert_int_equal(shub_val_str(a, s, strlen(s), &v), 0);
    return v;
}

static void put(shub_arena_t *a, shub_val_t *map, const char *key, shub_val_t v)
{
    assert_int_equal(shub_val_put(a, map, key, v), 0);
}

static void push(shub_arena_t *a, shub_val_t *array, shub_val_t v)
{
    assert_int_equal(shub_val_push(a, array, v), 0);
}

/* A payload with every scalar type, every integer width, nested maps and
 * arrays, and empty ones. */
static shub_val_t rich_payload(shub_arena_t *a)
{
    shub_val_t p = shub_val_map();
    put(a, &p, "nil", shub_val_nil());
    put(a, &p, "yes", shub_val_bool(true));
    put(a, &p, "no", shub_val_bool(false));
    put(a, &p, "zero", shub_val_int(0));
    put(a, &p, "fix", shub_val_int(127));
    put(a, &p, "negfix", shub_val_int(-32));
    put(a, &p, "i8", shub_val_int(-128));
    put(a, &p, "u8", shub_val_int(255));
    put(a, &p, "i16", shub_val_int(-32768));
    put(a, &p, "u16", shub_val_int(65535));
    put(a, &p, "i32", shub_val_int(INT32_MIN));
    put(a, &p, "u32", shub_val_int(UINT32_MAX));
    put(a, &p, "max", shub_val_int(INT64_MAX));
    put(a, &p, "min", shub_val_int(INT64_MIN));
    put(a, &p, "pi", shub_val_float(3.141592653589793));
    put(a, &p, "negzero", shub_val_float(-0.0));
    put(a, &p, "name", text(a, "Zoë Ó Súilleabháin — €5 😀"));
    put(a, &p, "empty", text(a, ""));
    shub_val_t bin;
    uint8_t bytes[300];
    for (int i = 0; i < 300; i++)
        bytes[i] = (uint8_t)i;
    assert_int_equal(shub_val_bin(a, bytes, sizeof bytes, &bin), 0);
    put(a, &p, "bytes", bin);
    assert_int_equal(shub_val_bin(a, NULL, 0, &bin), 0);
    put(a, &p, "nobytes", bin);

    shub_val_t inner = shub_val_array();
    push(a, &inner, shub_val_int(4));
    shub_val_t list = shub_val_array();
    push(a, &list, shub_val_int(1));
    push(a, &list, text(a, "two"));
    push(a, &list, inner);
    shub_val_t in_list = shub_val_map();
    put(a, &in_list, "k", shub_val_nil());
    push(a, &list, in_list);
    push(a, &list, shub_val_array());
    put(a, &p, "list", list);

    shub_val_t c = shub_val_map();
    put(a, &c, "c", text(a, "deep"));
    shub_val_t b = shub_val_map();
    put(a, &b, "b", c);
    shub_val_t nested = shub_val_map();
    put(a, &nested, "a", b);
    put(a, &p, "nested", nested);
    put(a, &p, "emptymap", shub_val_map());
    put(a, &p, "emptylist", shub_val_array());
    put(a, &p, "long_text",
        text(a, "a line of text longer than thirty-one bytes, so str8"));
    return p;
}

static const char *const to_full[] = {"marac-coventry", "@coventry", "idva@coventry"};
static const char *const to_one[] = {"marac-coventry"};
static const uint8_t sealed_bytes[] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};

static const shub_outcome_item_t outcomes_full[] = {
    {"marac-coventry", SHUB_OUTCOME_DELIVERED, NULL, NULL, "wm-marac-isa", 3, "referral"},
    {"uhcw", SHUB_OUTCOME_DENIED, "recipient-not-party",
     "no agreement lets wmp share marac.referral with uhcw", "wm-marac-isa", 3,
     "referral"},
    {"@solihull", SHUB_OUTCOME_DEAD, "no-recipient", "selector matched no organisation",
     NULL, 0, NULL},
    {"bcc", SHUB_OUTCOME_QUEUED, NULL, NULL, NULL, 0, NULL},
    {"idva-coventry", SHUB_OUTCOME_ACKNOWLEDGED, NULL, "", NULL, 1, NULL},
};
static const shub_outcome_item_t outcomes_min[] = {
    {"marac-coventry", SHUB_OUTCOME_QUEUED, NULL, NULL, NULL, 0, NULL},
};

static shub_event_t sample_event(shub_arena_t *a, bool full)
{
    shub_event_t ev = {
        .id = id_a,
        .type = "marac.referral",
        .occurred_ms = 1718000000123,
        .area = "coventry",
        .purpose = "marac-risk-management",
        .basis = "uk-gdpr-6-1-e",
        .consent = SHUB_CONSENT_NOT_SOUGHT,
    };
    if (full) {
        ev.case_ref = "WMP/2024/000123";
        ev.subject_ref = "subj:7f3a";
        ev.consent = SHUB_CONSENT_REFUSED;
        ev.override = "serious-harm";
        ev.reply_to = &id_b;
        ev.payload = rich_payload(a);
    } else {
        ev.payload = shub_val_map();
    }
    return ev;
}

/* A message of `type` with every optional field set (`full`) or none. DELIVER
 * and ACK have no optional fields: their two variants differ only in values. */
static shub_msg_t sample(shub_msg_type_t type, bool full, shub_arena_t *a)
{
    shub_msg_t m = {.type = type};
    switch (type) {
    case SHUB_MSG_HELLO:
        if (full)
            m.hello = (shub_hello_t){"sharehub-agent/0.1.0 (wmp)", 32};
        break;
    case SHUB_MSG_WELCOME:
        m.welcome = (shub_welcome_t){"wmp", 5000,          SHUB_MSG_MAX_BYTES,
                                     64,    1718000000999, full ? 17 : 0};
        break;
    case SHUB_MSG_SHARE:
        m.share.ev = sample_event(a, full);
        m.share.to = full ? to_full : to_one;
        m.share.to_count = full ? 3 : 1;
        m.share.from = full ? "wmp" : NULL;
        break;
    case SHUB_MSG_RECEIPT:
        m.receipt.id = id_a;
        m.receipt.duplicate = full;
        m.receipt.update = full;
        m.receipt.items = full ? outcomes_full : outcomes_min;
        m.receipt.count = full ? 5 : 1;
        break;
    case SHUB_MSG_DELIVER:
        m.deliver = (shub_deliver_t){
            id_a,       "marac.referral", "wmp",        "wm-marac-isa",     full ? 12 : 1,
            "referral", full ? 7 : 1,     sealed_bytes, sizeof sealed_bytes};
        break;
    case SHUB_MSG_ACK:
        m.ack.id = full ? id_a : id_b;
        break;
    case SHUB_MSG_HEARTBEAT:
        m.heartbeat.time_ms = full ? 1718000000555 : 0;
        break;
    case SHUB_MSG_ERROR:
        m.error.code = "limit";
        m.error.message =
            "SHARE.payload.victim.name: text of 20000 bytes exceeds limit 16384";
        m.error.id = full ? &id_a : NULL;
        break;
    case SHUB_MSG_BYE:
        m.bye.reason = full ? "shutting down" : NULL;
        break;
    }
    return m;
}

/* ---- comparing --------------------------------------------------------- */

static void assert_opt_str(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_id(const shub_id_t *a, const shub_id_t *b)
{
    assert_memory_equal(a->bytes, b->bytes, SHUB_ID_SIZE);
}

static void assert_opt_id(const shub_id_t *a, const shub_id_t *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_id(a, b);
}

static void assert_event_equal(const shub_event_t *a, const shub_event_t *b)
{
    assert_id(&a->id, &b->id);
    assert_string_equal(a->type, b->type);
    assert_int_equal(a->occurred_ms, b->occurred_ms);
    assert_opt_str(a->case_ref, b->case_ref);
    assert_opt_str(a->subject_ref, b->subject_ref);
    assert_string_equal(a->area, b->area);
    assert_string_equal(a->purpose, b->purpose);
    assert_string_equal(a->basis, b->basis);
    assert_int_equal(a->consent, b->consent);
    assert_opt_str(a->override, b->override);
    assert_opt_id(a->reply_to, b->reply_to);
    assert_true(shub_val_equal(&a->payload, &b->payload));
}

static void assert_msg_equal(const shub_msg_t *a, const shub_msg_t *b)
{
    assert_int_equal(a->type, b->type);
    switch (a->type) {
    case SHUB_MSG_HELLO:
        assert_opt_str(a->hello.agent, b->hello.agent);
        assert_int_equal(a->hello.window, b->hello.window);
        break;
    case SHUB_MSG_WELCOME:
        assert_string_equal(a->welcome.org, b->welcome.org);
        assert_int_equal(a->welcome.heartbeat_ms, b->welcome.heartbeat_ms);
        assert_int_equal(a->welcome.max_bytes, b->welcome.max_bytes);
        assert_int_equal(a->welcome.window, b->welcome.window);
        assert_int_equal(a->welcome.time_ms, b->welcome.time_ms);
        assert_int_equal(a->welcome.backlog, b->welcome.backlog);
        break;
    case SHUB_MSG_SHARE:
        assert_event_equal(&a->share.ev, &b->share.ev);
        assert_int_equal(a->share.to_count, b->share.to_count);
        for (uint32_t i = 0; i < a->share.to_count; i++)
            assert_string_equal(a->share.to[i], b->share.to[i]);
        assert_opt_str(a->share.from, b->share.from);
        break;
    case SHUB_MSG_RECEIPT:
        assert_id(&a->receipt.id, &b->receipt.id);
        assert_int_equal(a->receipt.duplicate, b->receipt.duplicate);
        assert_int_equal(a->receipt.update, b->receipt.update);
        assert_int_equal(a->receipt.count, b->receipt.count);
        for (uint32_t i = 0; i < a->receipt.count; i++) {
            const shub_outcome_item_t *x = &a->receipt.items[i],
                                      *y = &b->receipt.items[i];
            assert_string_equal(x->to, y->to);
            assert_int_equal(x->outcome, y->outcome);
            assert_opt_str(x->reason, y->reason);
            assert_opt_str(x->detail, y->detail);
            assert_opt_str(x->agreement, y->agreement);
            assert_int_equal(x->version, y->version);
            assert_opt_str(x->flow, y->flow);
        }
        break;
    case SHUB_MSG_DELIVER:
        assert_id(&a->deliver.id, &b->deliver.id);
        assert_string_equal(a->deliver.type, b->deliver.type);
        assert_string_equal(a->deliver.from, b->deliver.from);
        assert_string_equal(a->deliver.agreement, b->deliver.agreement);
        assert_int_equal(a->deliver.version, b->deliver.version);
        assert_string_equal(a->deliver.flow, b->deliver.flow);
        assert_int_equal(a->deliver.attempt, b->deliver.attempt);
        assert_int_equal(a->deliver.sealed_len, b->deliver.sealed_len);
        assert_memory_equal(a->deliver.sealed, b->deliver.sealed, a->deliver.sealed_len);
        break;
    case SHUB_MSG_ACK:
        assert_id(&a->ack.id, &b->ack.id);
        break;
    case SHUB_MSG_HEARTBEAT:
        assert_int_equal(a->heartbeat.time_ms, b->heartbeat.time_ms);
        break;
    case SHUB_MSG_ERROR:
        assert_string_equal(a->error.code, b->error.code);
        assert_string_equal(a->error.message, b->error.message);
        assert_opt_id(a->error.id, b->error.id);
        break;
    case SHUB_MSG_BYE:
        assert_opt_str(a->bye.reason, b->bye.reason);
        break;
    }
}

/* ---- expecting outcomes ------------------------------------------------ */

static void expect_err(int rc, const shub_err_t *err, int code, const char *path)
{
    if (rc != code || strcmp(err->path, path) != 0) {
        char line[512];
        fail_msg("got %d (%s) at \"%s\", expected %d (%s) at \"%s\": %s", rc,
                 shub_err_token(rc), err->path, code, shub_err_token(code), path,
                 shub_err_format(err, line, sizeof line));
    }
}

static void expect_decode(const void *data, size_t size, int code, const char *path)
{
    shub_msg_t *msg = NULL;
    shub_err_t err = {0};
    shub_err_clear(&err);
    int rc = shub_msg_decode(data, size, &msg, &err);
    if (rc == 0)
        shub_msg_destroy(&msg);
    expect_err(rc, &err, code, path);
    assert_null(msg);
}

static void expect_encode(const shub_msg_t *msg, int code, const char *path)
{
    shub_buf_t buf = {0};
    shub_err_t err = {0};
    shub_err_clear(&err);
    int rc = shub_msg_encode(msg, &buf, &err);
    expect_err(rc, &err, code, path);
    assert_int_equal(buf.len, 0);
    shub_buf_free(&buf);
}

/* Encodes, decodes and compares; returns the encoded size. */
static size_t round_trip(const shub_msg_t *msg)
{
    shub_buf_t buf = {0};
    shub_err_t err = {0};
    shub_err_clear(&err);
    int rc = shub_msg_encode(msg, &buf, &err);
    expect_err(rc, &err, 0, "");
    shub_msg_t *back = NULL;
    rc = shub_msg_decode(buf.data, buf.len, &back, &err);
    expect_err(rc, &err, 0, "");
    assert_non_null(back);
    assert_non_null(back->arena);
    assert_msg_equal(msg, back);

    /* the decoded copy owns its memory: re-encoding it gives the same bytes */
    shub_buf_t again = {0};
    assert_int_equal(shub_msg_encode(back, &again, &err), 0);
    assert_int_equal(again.len, buf.len);
    assert_memory_equal(again.data, buf.data, buf.len);
    shub_buf_free(&again);

    shub_msg_destroy(&back);
    assert_null(back);
    size_t len = buf.len;
    shub_buf_free(&buf);
    return len;
}

/* ---- templates: real encodings, one field changed ---------------------- */

#define TPL_FIELDS 24
#define TPL_RAW    4096

typedef struct {
    int n;
    struct {
        char key[32];
        uint8_t raw[TPL_RAW];
        size_t len;
    } f[TPL_FIELDS];
} tpl_t;

typedef enum { REPLACE, OMIT, TWICE } edit_t;

static void tpl_from_bytes(tpl_t *t, const void *data, size_t size)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, data, size, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
    const msgpack_object_map *map = &up.data.via.map;
    assert_true(map->size <= TPL_FIELDS);
    t->n = (int)map->size;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object_kv *kv = &map->ptr[i];
        assert_int_equal(kv->key.type, MSGPACK_OBJECT_STR);
        assert_true(kv->key.via.str.size < sizeof t->f[i].key);
        memcpy(t->f[i].key, kv->key.via.str.ptr, kv->key.via.str.size);
        t->f[i].key[kv->key.via.str.size] = '\0';
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        assert_int_equal(msgpack_pack_object(&pk, kv->val), 0);
        assert_true(sb.size <= TPL_RAW);
        memcpy(t->f[i].raw, sb.data, sb.size);
        t->f[i].len = sb.size;
        msgpack_sbuffer_destroy(&sb);
    }
    msgpack_unpacked_destroy(&up);
}

static void tpl_from_msg(tpl_t *t, const shub_msg_t *msg)
{
    shub_buf_t buf = {0};
    assert_int_equal(shub_msg_encode(msg, &buf, NULL), 0);
    tpl_from_bytes(t, buf.data, buf.len);
    shub_buf_free(&buf);
}

/* The template's map with `key`'s value replaced by raw bytes (added at the
 * end if the template lacks it), the key left out, or the key repeated. */
static void tpl_build(const tpl_t *t, const char *key, const void *raw, size_t len,
                      edit_t how, msgpack_sbuffer *out)
{
    int found = -1;
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->f[i].key, key) == 0)
            found = i;
    uint32_t n = (uint32_t)t->n;
    if (how != REPLACE)
        assert_true(found >= 0);
    if (how == OMIT)
        n--;
    else if (how == TWICE || found < 0)
        n++;
    msgpack_sbuffer_init(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    for (int i = 0; i < t->n; i++) {
        if (i == found && how == OMIT)
            continue;
        msgpack_pack_str_with_body(&pk, t->f[i].key, strlen(t->f[i].key));
        if (i == found && how == REPLACE)
            msgpack_sbuffer_write(out, raw, len);
        else
            msgpack_sbuffer_write(out, (const char *)t->f[i].raw, t->f[i].len);
    }
    if (how == TWICE) {
        msgpack_pack_str_with_body(&pk, key, strlen(key));
        msgpack_sbuffer_write(out, (const char *)t->f[found].raw, t->f[found].len);
    } else if (how == REPLACE && found < 0) {
        msgpack_pack_str_with_body(&pk, key, strlen(key));
        msgpack_sbuffer_write(out, raw, len);
    }
}

static tpl_t templates[SHUB_MSG_BYE + 1];     /* every optional field present */
static tpl_t templates_min[SHUB_MSG_BYE + 1]; /* none present */

static int setup_templates(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    for (int t = SHUB_MSG_HELLO; t <= SHUB_MSG_BYE; t++) {
        shub_msg_t m = sample((shub_msg_type_t)t, true, a);
        tpl_from_msg(&templates[t], &m);
        m = sample((shub_msg_type_t)t, false, a);
        tpl_from_msg(&templates_min[t], &m);
    }
    shub_arena_destroy(&a);
    return 0;
}

/* Decodes a template with one edit and checks the outcome. */
static void expect_edit(const tpl_t *t, const char *key, const void *raw, size_t len,
                        edit_t how, int code, const char *path)
{
    msgpack_sbuffer sb;
    tpl_build(t, key, raw, len, how, &sb);
    expect_decode(sb.data, sb.size, code, path);
    msgpack_sbuffer_destroy(&sb);
}

/* Same, with the new value a msgpack text. */
static void expect_edit_text(const tpl_t *t, const char *key, const char *s, int code,
                             const char *path)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_str_with_body(&pk, s, strlen(s));
    expect_edit(t, key, sb.data, sb.size, REPLACE, code, path);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- round trips ------------------------------------------------------- */

static void round_trip_type(shub_msg_type_t type, bool full)
{
    shub_arena_t *a = shub_arena_new(0);
    shub_msg_t m = sample(type, full, a);
    round_trip(&m);
    shub_arena_destroy(&a);
}

#define ROUND_TRIP_TESTS(name, TYPE)                                                     \
    static void test_shub_msg_decode_##name##_all_optional_round_trips(void **state)     \
    {                                                                                    \
        (void)state;                                                                     \
        round_trip_type(TYPE, true);                                                     \
    }                                                                                    \
    static void test_shub_msg_decode_##name##_no_optional_round_trips(void **state)      \
    {                                                                                    \
        (void)state;                                                                     \
        round_trip_type(TYPE, false);                                                    \
    }

ROUND_TRIP_TESTS(hello, SHUB_MSG_HELLO)
ROUND_TRIP_TESTS(welcome, SHUB_MSG_WELCOME)
ROUND_TRIP_TESTS(share, SHUB_MSG_SHARE)
ROUND_TRIP_TESTS(receipt, SHUB_MSG_RECEIPT)
ROUND_TRIP_TESTS(deliver, SHUB_MSG_DELIVER)
ROUND_TRIP_TESTS(ack, SHUB_MSG_ACK)
ROUND_TRIP_TESTS(heartbeat, SHUB_MSG_HEARTBEAT)
ROUND_TRIP_TESTS(error, SHUB_MSG_ERROR)
ROUND_TRIP_TESTS(bye, SHUB_MSG_BYE)

static void test_shub_msg_encode_absent_optionals_are_not_written(void **state)
{
    (void)state;
    /* the encoder writes only the fields present: "v", "type" and required ones */
    static const int fields_min[] = {0, 2, 7, 11, 4, 10, 3, 2, 4, 2};
    static const int fields_full[] = {0, 4, 8, 16, 6, 10, 3, 3, 5, 3};
    for (int t = SHUB_MSG_HELLO; t <= SHUB_MSG_BYE; t++) {
        assert_int_equal(templates_min[t].n, fields_min[t]);
        assert_int_equal(templates[t].n, fields_full[t]);
    }
    assert_string_equal(templates_min[SHUB_MSG_HELLO].f[0].key, "v");
    assert_string_equal(templates_min[SHUB_MSG_HELLO].f[1].key, "type");
}

static void test_shub_msg_encode_hello_exact_bytes(void **state)
{
    (void)state;
    shub_msg_t m = {.type = SHUB_MSG_HELLO};
    shub_buf_t buf = {0};
    assert_int_equal(shub_msg_encode(&m, &buf, NULL), 0);
    static const uint8_t want[] = {0x82, 0xa1, 'v', 0x01, 0xa4, 't', 'y', 'p',
                                   'e',  0xa5, 'H', 'E',  'L',  'L', 'O'};
    assert_int_equal(buf.len, sizeof want);
    assert_memory_equal(buf.data, want, sizeof want);
    shub_buf_free(&buf);
}

static void test_shub_msg_decode_receipt_no_outcomes_round_trips(void **state)
{
    (void)state;
    shub_msg_t m = sample(SHUB_MSG_RECEIPT, false, NULL);
    m.receipt.items = outcomes_min; /* non-NULL with count 0: an empty array */
    m.receipt.count = 0;
    round_trip(&m);
}

static void test_shub_msg_decode_required_zero_numbers_round_trip(void **state)
{
    (void)state;
    /* 0 is a value for a required number, not an absence */
    shub_msg_t m = sample(SHUB_MSG_WELCOME, false, NULL);
    m.welcome.heartbeat_ms = 0;
    m.welcome.time_ms = 0;
    round_trip(&m);
    m = sample(SHUB_MSG_DELIVER, false, NULL);
    m.deliver.version = 0;
    m.deliver.attempt = 0;
    round_trip(&m);
}

static void test_shub_msg_decode_unknown_top_level_key_ignored(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    tpl_build(&templates[SHUB_MSG_SHARE], "future", RAW("\x81\xa1x\x92\x01\xc0"), REPLACE,
              &sb);
    shub_msg_t *msg = NULL;
    shub_err_t err = {0};
    assert_int_equal(shub_msg_decode(sb.data, sb.size, &msg, &err), 0);
    assert_int_equal(msg->type, SHUB_MSG_SHARE);
    assert_string_equal(msg->share.ev.type, "marac.referral");
    shub_msg_destroy(&msg);
    msgpack_sbuffer_destroy(&sb);
    /* still held to the structural rules */
    expect_edit(&templates[SHUB_MSG_SHARE], "future", RAW("\xa2\xc0\xaf"), REPLACE,
                SHUB_EUTF8, "SHARE.future");
}

static void test_shub_msg_decode_float32_widened_to_double(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    tpl_build(&templates[SHUB_MSG_SHARE], "payload",
              RAW("\x82\xa1"
                  "f"
                  "\xca\x3f\xc0\x00\x00"
                  "\xa1"
                  "g"
                  "\xd0\x80"),
              REPLACE, &sb);
    shub_msg_t *msg = NULL;
    assert_int_equal(shub_msg_decode(sb.data, sb.size, &msg, NULL), 0);
    const shub_val_t *f = shub_val_get(&msg->share.ev.payload, "f");
    assert_int_equal(f->type, SHUB_VAL_FLOAT);
    assert_true(f->as.f == 1.5);
    assert_int_equal(shub_val_get(&msg->share.ev.payload, "g")->as.i, -128);
    shub_msg_destroy(&msg);
    msgpack_sbuffer_destroy(&sb);
}

static void test_shub_msg_decode_outlives_input_buffer(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    shub_msg_t m = sample(SHUB_MSG_SHARE, true, a);
    shub_buf_t buf = {0};
    assert_int_equal(shub_msg_encode(&m, &buf, NULL), 0);
    shub_msg_t *back = NULL;
    assert_int_equal(shub_msg_decode(buf.data, buf.len, &back, NULL), 0);
    memset(buf.data, 0xc1, buf.len);
    shub_buf_free(&buf);
    assert_msg_equal(&m, back);
    shub_msg_destroy(&back);
    shub_arena_destroy(&a);
}

static void test_shub_event_encode_round_trips_both_variants(void **state)
{
    (void)state;
    for (int full = 0; full < 2; full++) {
        shub_arena_t *a = shub_arena_new(0);
        shub_event_t ev = sample_event(a, full);
        shub_buf_t buf = {0};
        shub_err_t err = {0};
        assert_int_equal(shub_event_encode(&ev, &buf, &err), 0);
        shub_arena_t *b = shub_arena_new(0);
        shub_event_t back;
        memset(&back, 0x5a, sizeof back);
        int rc = shub_event_decode(b, buf.data, buf.len, &back, &err);
        expect_err(rc, &err, 0, "");
        assert_event_equal(&ev, &back);
        /* an event is not a message: it has no "v" or "type" */
        expect_decode(buf.data, buf.len, SHUB_EMISSING, "message.v");
        shub_buf_free(&buf);
        shub_arena_destroy(&b);
        shub_arena_destroy(&a);
    }
}

static void test_shub_event_decode_errors_under_event(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    shub_event_t ev = sample_event(a, true);
    shub_buf_t buf = {0};
    assert_int_equal(shub_event_encode(&ev, &buf, NULL), 0);
    tpl_t t;
    tpl_from_bytes(&t, buf.data, buf.len);
    shub_buf_free(&buf);

    shub_event_t out;
    shub_err_t err = {0};
    msgpack_sbuffer sb;
    tpl_build(&t, "area", NULL, 0, OMIT, &sb);
    int rc = shub_event_decode(a, sb.data, sb.size, &out, &err);
    expect_err(rc, &err, SHUB_EMISSING, "event.area");
    msgpack_sbuffer_destroy(&sb);

    /* a "type" key in an event does not rename the path root */
    tpl_build(&t, "type", RAW("\xa5SHARE"), REPLACE, &sb);
    tpl_t t2;
    tpl_from_bytes(&t2, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    tpl_build(&t2, "consent", RAW("\xa5maybe"), REPLACE, &sb);
    rc = shub_event_decode(a, sb.data, sb.size, &out, &err);
    expect_err(rc, &err, SHUB_EVALUE, "event.consent");
    msgpack_sbuffer_destroy(&sb);

    rc = shub_event_decode(a, "", 0, &out, &err);
    expect_err(rc, &err, SHUB_EMALFORMED, "event");
    rc = shub_event_decode(a, "\x80\x00", 2, &out, &err);
    expect_err(rc, &err, SHUB_EMALFORMED, "event");
    rc = shub_event_decode(a, "\x90", 1, &out, &err);
    expect_err(rc, &err, SHUB_ETYPE, "event");
    shub_arena_destroy(&a);
}

static void test_shub_payload_encode_round_trips_rich_payload(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    shub_val_t p = rich_payload(a);
    shub_buf_t buf = {0};
    shub_err_t err = {0};
    assert_int_equal(shub_payload_encode(&p, &buf, &err), 0);
    shub_arena_t *b = shub_arena_new(0);
    shub_val_t back;
    int rc = shub_payload_decode(b, buf.data, buf.len, &back, &err);
    expect_err(rc, &err, 0, "");
    assert_true(shub_val_equal(&p, &back));
    assert_int_equal(shub_val_get(&back, "min")->as.i, INT64_MIN);
    assert_int_equal(shub_val_get(&back, "u32")->as.i, UINT32_MAX);
    assert_string_equal(shub_val_at(&back, "nested.a.b.c")->as.str, "deep");
    assert_int_equal(shub_val_get(&back, "bytes")->len, 300);
    shub_buf_free(&buf);
    shub_arena_destroy(&b);
    shub_arena_destroy(&a);
}

/* Byte strings below keep one msgpack value per literal, a message per line. */
/* clang-format off */
static void test_shub_payload_decode_errors_under_payload(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    shub_val_t out = shub_val_nil();
    shub_err_t err = {0};
    static const struct {
        const char *data;
        size_t size;
        int code;
        const char *path;
    } cases[] = {
        {"", 0, SHUB_EMALFORMED, "payload"},
        {RAW("\x93\x01\x02\x03"), SHUB_ETYPE, "payload"},
        {RAW("\x80\x80"), SHUB_EMALFORMED, "payload"},
        {RAW("\x81\xa1x\xc1"), SHUB_EMALFORMED, "payload.x"},
        {RAW("\x81\xa1x\x91\xd4\x00\x00"), SHUB_ETYPE, "payload.x[0]"},
        {RAW("\x82\xa1x\x01\xa1x\x02"), SHUB_EDUPKEY, "payload"},
        {RAW("\x81\xa1" "x" "\xa3" "a" "\x00" "b"),
         SHUB_EVALUE, "payload.x"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        shub_err_clear(&err);
        int rc = shub_payload_decode(a, cases[i].data, cases[i].size, &out, &err);
        expect_err(rc, &err, cases[i].code, cases[i].path);
    }
    assert_int_equal(out.type, SHUB_VAL_NIL); /* written only on success */
    shub_buf_t buf = {0};
    shub_val_t arr = shub_val_array();
    assert_int_equal(shub_payload_encode(&arr, &buf, &err), SHUB_ETYPE);
    assert_string_equal(err.path, "payload");
    assert_int_equal(shub_payload_encode(NULL, &buf, &err), SHUB_ETYPE);
    shub_buf_free(&buf);
    shub_arena_destroy(&a);
}
/* clang-format on */

/* ---- malformed input: whole messages ----------------------------------- */

/* Byte strings below keep one msgpack value per literal, a message per line. */
/* clang-format off */
static void test_shub_msg_decode_raw_malformed_exact_errors(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        const char *data;
        size_t size;
        int code;
        const char *path;
    } cases[] = {
        {"empty input", "", 0, SHUB_EMALFORMED, "message"},
        {"top level is an array", RAW("\x93\x01\x02\x03"), SHUB_ETYPE, "message"},
        {"top level is text",
         RAW("\xa3" "abc"),
         SHUB_ETYPE, "message"},
        {"top level is nil", RAW("\xc0"), SHUB_ETYPE, "message"},
        {"0xc1 byte", RAW("\xc1"), SHUB_EMALFORMED, "message"},
        {"fixext top level", RAW("\xd4\x01\x00"), SHUB_ETYPE, "message"},
        {"ext8 top level", RAW("\xc7\x01\x05\x00"), SHUB_ETYPE, "message"},
        {"array32 of 4 GiB entries", RAW("\xdd\xff\xff\xff\xff"), SHUB_ELIMIT, "message"},
        {"map32 of 4 GiB entries", RAW("\xdf\xff\xff\xff\xff"), SHUB_ELIMIT, "message"},
        {"str32 of 4 GiB", RAW("\xdb\xff\xff\xff\xff"), SHUB_ELIMIT, "message"},
        {"bin32 of 4 GiB", RAW("\xc6\xff\xff\xff\xff"), SHUB_ELIMIT, "message"},
        {"map of 4096 entries, no bytes", RAW("\xdf\x00\x00\x10\x00"), SHUB_EMALFORMED,
         "message"},
        {"array of 4095 items, no bytes", RAW("\xdc\x0f\xff"), SHUB_EMALFORMED,
         "message"},
        {"str16 of 1000 bytes, 3 there",
         RAW("\xda\x03\xe8" "abc"),
         SHUB_EMALFORMED, "message"},
        {"bin16 of 1000 bytes, 3 there",
         RAW("\xc5\x03\xe8" "abc"),
         SHUB_EMALFORMED, "message"},
        {"truncated length", RAW("\xdd\xff"), SHUB_EMALFORMED, "message"},
        {"truncated float", RAW("\xcb\x00\x00"), SHUB_EMALFORMED, "message"},
        {"map key is an integer", RAW("\x81\x01\x02"), SHUB_ETYPE, "message"},
        {"map key is binary",
         RAW("\x81\xc4\x01" "v" "\x01"),
         SHUB_ETYPE, "message"},
        {"map key has a dot",
         RAW("\x81\xa3" "a.b" "\x01"),
         SHUB_EVALUE, "message"},
        {"map key is empty", RAW("\x81\xa0\x01"), SHUB_EVALUE, "message"},
        {"map key is not UTF-8", RAW("\x81\xa2\xc3\x28\x01"), SHUB_EVALUE, "message"},
        {"map key truncated",
         RAW("\x81\xa5" "ab"),
         SHUB_EMALFORMED, "message"},
        {"empty map", RAW("\x80"), SHUB_EMISSING, "message.v"},
        {"type but no v",
         RAW("\x81\xa4" "type" "\xa3" "BYE"),
         SHUB_EMISSING, "BYE.v"},
        {"v but no type",
         RAW("\x81\xa1" "v" "\x01"),
         SHUB_EMISSING, "message.type"},
        {"v is text",
         RAW("\x82\xa1" "v" "\xa1" "1" "\xa4" "type" "\xa3" "BYE"),
         SHUB_ETYPE, "BYE.v"},
        {"v is 2",
         RAW("\x82\xa1" "v" "\x02" "\xa4" "type" "\xa3" "BYE"),
         SHUB_EVERSION, "BYE.v"},
        {"v is 0",
         RAW("\x82\xa1" "v" "\x00" "\xa4" "type" "\xa3" "BYE"),
         SHUB_EVERSION, "BYE.v"},
        {"v is -1",
         RAW("\x82\xa1" "v" "\xff" "\xa4" "type" "\xa3" "BYE"),
         SHUB_EVERSION, "BYE.v"},
        {"v is 2, type unknown",
         RAW("\x82\xa1" "v" "\x02" "\xa4" "type" "\xa3" "XYZ"),
         SHUB_EVERSION, "message.v"},
        {"type unknown",
         RAW("\x82\xa1" "v" "\x01" "\xa4" "type" "\xa4" "PING"),
         SHUB_EUNKNOWN, "message.type"},
        {"type lowercase",
         RAW("\x82\xa1" "v" "\x01" "\xa4" "type" "\xa3" "bye"),
         SHUB_EUNKNOWN, "message.type"},
        {"type is an integer",
         RAW("\x82\xa1" "v" "\x01" "\xa4" "type" "\x09"),
         SHUB_ETYPE, "message.type"},
        {"type repeated",
         RAW("\x83\xa1" "v" "\x01" "\xa4" "type" "\xa3" "BYE" "\xa4" "type" "\xa3" "BYE"),
         SHUB_EDUPKEY, "BYE"},
        {"trailing byte",
         RAW("\x82\xa1" "v" "\x01" "\xa4" "type" "\xa3" "BYE" "\x00"),
         SHUB_EMALFORMED, "BYE"},
        {"two messages back to back",
         RAW("\x82\xa1" "v" "\x01" "\xa4" "type" "\xa3" "BYE"
             "\x82\xa1" "v" "\x01" "\xa4" "type" "\xa3" "BYE"),
         SHUB_EMALFORMED, "BYE"},
        {"uint64 above INT64_MAX",
         RAW("\x81\xa1" "v" "\xcf\x80\x00\x00\x00\x00\x00\x00\x00"),
         SHUB_ELIMIT, "message.v"},
        {"ext in a value",
         RAW("\x81\xa1" "v" "\xd5\x01\x00\x00"),
         SHUB_ETYPE, "message.v"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        shub_msg_t *msg = NULL;
        shub_err_t err = {0};
        int rc = shub_msg_decode(cases[i].data, cases[i].size, &msg, &err);
        if (rc != cases[i].code || strcmp(err.path, cases[i].path) != 0)
            fail_msg("%s: got %s at \"%s\", expected %s at \"%s\"", cases[i].what,
                     shub_err_token(rc), err.path, shub_err_token(cases[i].code),
                     cases[i].path);
        assert_null(msg);
    }
}
/* clang-format on */

static void test_shub_msg_decode_huge_declared_length_allocates_nothing(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "\xdd\xff\xff\xff\xff", "\xdf\xff\xff\xff\xff", "\xdb\xff\xff\xff\xff",
        "\xc6\xff\xff\xff\xff", "\xdf\x00\x00\x10\x00", "\xdd\x00\x00\x10\x00",
    };
    static const int codes[] = {SHUB_ELIMIT, SHUB_ELIMIT,     SHUB_ELIMIT,
                                SHUB_ELIMIT, SHUB_EMALFORMED, SHUB_EMALFORMED};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        /* the message and its arena may be allocated; no arena block may */
        shub_alloc_fail_after(2);
        shub_msg_t *msg = NULL;
        shub_err_t err = {0};
        int rc = shub_msg_decode(inputs[i], 5, &msg, &err);
        long failures = shub_alloc_failures();
        shub_alloc_fail_after(-1);
        assert_int_equal(rc, codes[i]);
        assert_int_equal(failures, 0);
        assert_null(msg);
    }
}

static void test_shub_msg_decode_bad_arguments_return_einval(void **state)
{
    (void)state;
    shub_msg_t *msg = NULL;
    shub_err_t err = {0};
    assert_int_equal(shub_msg_decode(NULL, 3, &msg, &err), SHUB_EINVAL);
    assert_int_equal(shub_msg_decode("\x80", 1, NULL, &err), SHUB_EINVAL);
    assert_int_equal(shub_msg_decode("\x80", 1, &msg, NULL), SHUB_EMISSING);
    assert_null(msg);
    shub_msg_destroy(NULL);
    shub_msg_destroy(&msg);
}

static void test_shub_msg_decode_truncated_at_every_offset_is_malformed(void **state)
{
    (void)state;
    for (int t = SHUB_MSG_HELLO; t <= SHUB_MSG_BYE; t++) {
        shub_arena_t *a = shub_arena_new(0);
        shub_msg_t m = sample((shub_msg_type_t)t, true, a);
        shub_buf_t buf = {0};
        assert_int_equal(shub_msg_encode(&m, &buf, NULL), 0);
        for (size_t n = 1; n < buf.len; n++) {
            shub_msg_t *msg = NULL;
            shub_err_t err = {0};
            int rc = shub_msg_decode(buf.data, n, &msg, &err);
            if (rc != SHUB_EMALFORMED)
                fail_msg("%s cut to %zu of %zu bytes: %d at %s",
                         shub_msg_type_name(m.type), n, buf.len, rc, err.path);
        }
        shub_buf_free(&buf);
        shub_arena_destroy(&a);
    }
}

/* Offset of the first occurrence of s in buf; fails the test if absent. */
static size_t find_bytes(const shub_buf_t *buf, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= buf->len; i++)
        if (memcmp(buf->data + i, s, n) == 0)
            return i;
    fail_msg("\"%s\" not in the encoding", s);
    return 0;
}

static void test_shub_msg_decode_truncated_inside_field_names_the_field(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    shub_msg_t m = sample(SHUB_MSG_SHARE, false, a);
    shub_val_t victim = shub_val_map();
    put(a, &victim, "name", text(a, "Jo Bloggs"));
    put(a, &m.share.ev.payload, "victim", victim);
    shub_buf_t buf = {0};
    assert_int_equal(shub_msg_encode(&m, &buf, NULL), 0);
    size_t at = find_bytes(&buf, "Jo Bloggs");
    expect_decode(buf.data, at + 4, SHUB_EMALFORMED, "SHARE.payload.victim.name");
    at = find_bytes(&buf, "marac.referral");
    expect_decode(buf.data, at + 1, SHUB_EMALFORMED, "SHARE.event");
    shub_buf_free(&buf);
    shub_arena_destroy(&a);
}

/* ---- malformed input: one field of a valid message changed ------------- */

static const char *const ID_TEXT_RAW = "\xb0"
                                       "0123456789abcdef";

/* Byte strings below keep one msgpack value per literal, a message per line. */
/* clang-format off */
static void test_shub_msg_decode_share_field_errors_exact(void **state)
{
    (void)state;
    const tpl_t *t = &templates[SHUB_MSG_SHARE];
    /* wrong types */
    expect_edit(t, "id", ID_TEXT_RAW, 17, REPLACE, SHUB_ETYPE, "SHARE.id");
    expect_edit(t, "occurred", RAW("\xcb\x40\x00\x00\x00\x00\x00\x00\x00"), REPLACE,
                SHUB_ETYPE, "SHARE.occurred");
    expect_edit(t, "consent", RAW("\x01"), REPLACE, SHUB_ETYPE, "SHARE.consent");
    expect_edit(t, "reply_to", ID_TEXT_RAW, 17, REPLACE, SHUB_ETYPE, "SHARE.reply_to");
    expect_edit(t, "payload", RAW("\x91\x01"), REPLACE, SHUB_ETYPE, "SHARE.payload");
    expect_edit(t, "payload", RAW("\xc0"), REPLACE, SHUB_ETYPE, "SHARE.payload");
    expect_edit(t, "to",
                RAW("\xa3" "bcc"),
                REPLACE, SHUB_ETYPE, "SHARE.to");
    expect_edit(t, "to",
                RAW("\x92\xa3" "bcc" "\x07"),
                REPLACE, SHUB_ETYPE, "SHARE.to[1]");
    expect_edit(t, "area", RAW("\xc3"), REPLACE, SHUB_ETYPE, "SHARE.area");
    expect_edit(t, "case", RAW("\x2a"), REPLACE, SHUB_ETYPE, "SHARE.case");
    /* missing required keys */
    expect_edit(t, "id", NULL, 0, OMIT, SHUB_EMISSING, "SHARE.id");
    expect_edit(t, "event", NULL, 0, OMIT, SHUB_EMISSING, "SHARE.event");
    expect_edit(t, "occurred", NULL, 0, OMIT, SHUB_EMISSING, "SHARE.occurred");
    expect_edit(t, "area", NULL, 0, OMIT, SHUB_EMISSING, "SHARE.area");
    expect_edit(t, "purpose", NULL, 0, OMIT, SHUB_EMISSING, "SHARE.purpose");
    expect_edit(t, "basis", NULL, 0, OMIT, SHUB_EMISSING, "SHARE.basis");
    expect_edit(t, "consent", NULL, 0, OMIT, SHUB_EMISSING, "SHARE.consent");
    expect_edit(t, "payload", NULL, 0, OMIT, SHUB_EMISSING, "SHARE.payload");
    expect_edit(t, "to", NULL, 0, OMIT, SHUB_EMISSING, "SHARE.to");
    expect_edit(t, "v", NULL, 0, OMIT, SHUB_EMISSING, "SHARE.v");
    expect_edit(t, "type", NULL, 0, OMIT, SHUB_EMISSING, "message.type");
    /* optional ones may go */
    expect_edit(t, "case", NULL, 0, OMIT, 0, "");
    expect_edit(t, "reply_to", NULL, 0, OMIT, 0, "");
    /* values not allowed */
    expect_edit(t, "id",
                RAW("\xc4\x0f" "0123456789abcde"),
                REPLACE, SHUB_EVALUE, "SHARE.id");
    expect_edit(t, "id",
                RAW("\xc4\x11" "0123456789abcdefg"),
                REPLACE, SHUB_EVALUE, "SHARE.id");
    expect_edit(t, "id", RAW("\xc4\x00"), REPLACE, SHUB_EVALUE, "SHARE.id");
    expect_edit(t, "reply_to",
                RAW("\xc4\x08" "01234567"),
                REPLACE, SHUB_EVALUE, "SHARE.reply_to");
    expect_edit(t, "occurred", RAW("\xff"), REPLACE, SHUB_EVALUE, "SHARE.occurred");
    expect_edit(t, "occurred", RAW("\xd3\x80\x00\x00\x00\x00\x00\x00\x00"), REPLACE,
                SHUB_EVALUE, "SHARE.occurred");
    expect_edit(t, "occurred", RAW("\xcf\xff\xff\xff\xff\xff\xff\xff\xff"), REPLACE,
                SHUB_ELIMIT, "SHARE.occurred");
    expect_edit_text(t, "consent", "maybe", SHUB_EVALUE, "SHARE.consent");
    expect_edit_text(t, "consent", "Given", SHUB_EVALUE, "SHARE.consent");
    expect_edit_text(t, "event", "Marac.Referral", SHUB_EVALUE, "SHARE.event");
    expect_edit_text(t, "event", "", SHUB_EVALUE, "SHARE.event");
    expect_edit_text(t, "event", ".referral", SHUB_EVALUE, "SHARE.event");
    expect_edit_text(t, "area", "west midlands", SHUB_EVALUE, "SHARE.area");
    expect_edit_text(t, "purpose", "risk/management", SHUB_EVALUE, "SHARE.purpose");
    expect_edit_text(t, "override", "serious harm", SHUB_EVALUE, "SHARE.override");
    expect_edit_text(t, "from", "WMP", SHUB_EVALUE, "SHARE.from");
    expect_edit_text(t, "case", "", SHUB_EVALUE, "SHARE.case");
    expect_edit_text(t, "case", "WMP/2024\n/1", SHUB_EVALUE, "SHARE.case");
    expect_edit_text(t, "subject", "subj\x7f", SHUB_EVALUE, "SHARE.subject");
    expect_edit_text(t, "basis", "\x1b[31mred", SHUB_EVALUE, "SHARE.basis");
    /* recipients */
    expect_edit(t, "to", RAW("\x90"), REPLACE, SHUB_EVALUE, "SHARE.to");
    expect_edit(t, "to",
                RAW("\x93\xa3" "bcc" "\xa4" "uhcw" "\xa7" "Bad Org"),
                REPLACE, SHUB_EVALUE, "SHARE.to[2]");
    expect_edit(t, "to",
                RAW("\x91\xa1" "@"),
                REPLACE, SHUB_EVALUE, "SHARE.to[0]");
    expect_edit(t, "to",
                RAW("\x91\xa5" "idva@"),
                REPLACE, SHUB_EVALUE, "SHARE.to[0]");
    expect_edit(t, "to",
                RAW("\x91\xa5" "a@b@c"),
                REPLACE, SHUB_EVALUE, "SHARE.to[0]");
    expect_edit(t, "to", RAW("\x91\xa0"), REPLACE, SHUB_EVALUE, "SHARE.to[0]");
    /* text encoding, anywhere in the payload */
    expect_edit(t, "payload",
                RAW("\x81\xa6" "victim" "\x81\xa4" "name" "\xa2\xc0\xaf"),
                REPLACE, SHUB_EUTF8, "SHARE.payload.victim.name");
    expect_edit(t, "payload",
                RAW("\x81\xa6" "victim" "\x81\xa4" "name" "\xa3\xed\xa0\x80"),
                REPLACE, SHUB_EUTF8, "SHARE.payload.victim.name");
    expect_edit(t, "payload",
                RAW("\x81\xa6" "victim" "\x81\xa4" "name" "\xa3" "Jo\xe2"),
                REPLACE, SHUB_EUTF8, "SHARE.payload.victim.name");
    expect_edit(t, "payload",
                RAW("\x81\xa6" "victim" "\x81\xa4" "name" "\xa4\xf4\x90\x80\x80"),
                REPLACE, SHUB_EUTF8, "SHARE.payload.victim.name");
    expect_edit(t, "payload",
                RAW("\x81\xa6" "victim" "\x81\xa4" "name" "\xa3" "J\x00o"),
                REPLACE, SHUB_EVALUE, "SHARE.payload.victim.name");
    expect_edit(t, "payload",
                RAW("\x81\xa4" "kids" "\x92\xa1" "a" "\xa1\xff"),
                REPLACE, SHUB_EUTF8, "SHARE.payload.kids[1]");
    expect_edit(t, "case", RAW("\xa2\xc3\x28"), REPLACE, SHUB_EUTF8, "SHARE.case");
    /* payload structure */
    expect_edit(t, "payload",
                RAW("\x82\xa1" "a" "\x01" "\xa1" "a" "\x02"),
                REPLACE, SHUB_EDUPKEY, "SHARE.payload");
    expect_edit(t, "payload",
                RAW("\x81\xa1" "x" "\x81\xa1" "y" "\xd6\x01\x00\x00\x00\x00"),
                REPLACE, SHUB_ETYPE, "SHARE.payload.x.y");
    expect_edit(t, "payload",
                RAW("\x81\xa1" "x" "\xc1"),
                REPLACE, SHUB_EMALFORMED, "SHARE.payload.x");
    expect_edit(t, "payload",
                RAW("\x81\xa1" "x" "\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),
                REPLACE, SHUB_ELIMIT, "SHARE.payload.x");
    expect_edit(t, "payload",
                RAW("\x81\xa1" "x" "\x91\x81\x01\x02"),
                REPLACE, SHUB_ETYPE, "SHARE.payload.x[0]");
    expect_edit(t, "payload",
                RAW("\x81\xa3" "a b" "\x01"),
                REPLACE, SHUB_EVALUE, "SHARE.payload");
    /* duplicate top-level key */
    expect_edit(t, "to", NULL, 0, TWICE, SHUB_EDUPKEY, "SHARE");
    expect_edit(t, "id", NULL, 0, TWICE, SHUB_EDUPKEY, "SHARE");
    /* version */
    expect_edit(t, "v", RAW("\x02"), REPLACE, SHUB_EVERSION, "SHARE.v");
    expect_edit(t, "v", RAW("\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"), REPLACE, SHUB_ETYPE,
                "SHARE.v");
}
/* clang-format on */

/* Byte strings below keep one msgpack value per literal, a message per line. */
/* clang-format off */
static void test_shub_msg_decode_other_types_field_errors_exact(void **state)
{
    (void)state;
    const tpl_t *r = &templates[SHUB_MSG_RECEIPT];
    expect_edit(r, "outcomes",
                RAW("\x92\x82\xa2" "to" "\xa3" "bcc" "\xa7" "outcome" "\xa6" "queued"
                    "\x82\xa2" "to" "\xa3" "wmp" "\xa7" "outcome" "\xa4" "lost"),
                REPLACE, SHUB_EVALUE, "RECEIPT.outcomes[1].outcome");
    expect_edit(r, "outcomes", RAW("\x91\x07"), REPLACE, SHUB_ETYPE,
                "RECEIPT.outcomes[0]");
    expect_edit(r, "outcomes",
                RAW("\x91\x81\xa7" "outcome" "\xa6" "queued"),
                REPLACE, SHUB_EMISSING, "RECEIPT.outcomes[0].to");
    expect_edit(r, "outcomes",
                RAW("\x91\x81\xa2" "to" "\xa3" "bcc"),
                REPLACE, SHUB_EMISSING, "RECEIPT.outcomes[0].outcome");
    expect_edit(r, "outcomes",
                RAW("\x91\x83\xa2" "to" "\xa3" "bcc" "\xa7" "outcome" "\xa6" "denied"
                    "\xa7" "version" "\xff"),
                REPLACE, SHUB_EVALUE, "RECEIPT.outcomes[0].version");
    expect_edit(r, "outcomes",
                RAW("\x91\x83\xa2" "to" "\xa3" "bcc" "\xa7" "outcome" "\xa6" "denied"
                    "\xa7" "version" "\xcf\x00\x00\x00\x01\x00\x00\x00\x00"),
                REPLACE, SHUB_ELIMIT, "RECEIPT.outcomes[0].version");
    expect_edit(r, "outcomes",
                RAW("\x91\x83\xa2" "to" "\xa3" "bcc" "\xa7" "outcome" "\xa6" "denied"
                    "\xa6" "detail" "\xa3" "a\tb"),
                REPLACE, SHUB_EVALUE, "RECEIPT.outcomes[0].detail");
    expect_edit(r, "outcomes", RAW("\xa0"), REPLACE, SHUB_ETYPE, "RECEIPT.outcomes");
    expect_edit(r, "outcomes",
                RAW("\x91\x82\xa2" "to" "\xa7" "Bad Org"
                    "\xa7" "outcome" "\xa6" "queued"),
                REPLACE, SHUB_EVALUE, "RECEIPT.outcomes[0].to");
    expect_edit(r, "outcomes",
                RAW("\x91\x82\xa2" "to" "\xa9" "@solihull"
                    "\xa7" "outcome" "\xa4" "dead"),
                REPLACE, 0, ""); /* a selector that matched no one is named as sent */
    expect_edit(r, "duplicate", RAW("\x01"), REPLACE, SHUB_ETYPE, "RECEIPT.duplicate");
    expect_edit(r, "outcomes", NULL, 0, OMIT, SHUB_EMISSING, "RECEIPT.outcomes");

    const tpl_t *w = &templates[SHUB_MSG_WELCOME];
    expect_edit(w, "heartbeat_ms", NULL, 0, OMIT, SHUB_EMISSING, "WELCOME.heartbeat_ms");
    expect_edit(w, "time", RAW("\xd1\xff\x00"), REPLACE, SHUB_EVALUE, "WELCOME.time");
    expect_edit(w, "window",
                RAW("\xa2" "64"),
                REPLACE, SHUB_ETYPE, "WELCOME.window");
    expect_edit(w, "max_bytes", RAW("\xcf\x00\x00\x00\x01\x00\x00\x00\x00"), REPLACE,
                SHUB_ELIMIT, "WELCOME.max_bytes");

    const tpl_t *d = &templates[SHUB_MSG_DELIVER];
    expect_edit(d, "sealed", RAW("\xc4\x00"), REPLACE, SHUB_EVALUE, "DELIVER.sealed");
    expect_edit(d, "sealed",
                RAW("\xa3" "abc"),
                REPLACE, SHUB_ETYPE, "DELIVER.sealed");
    expect_edit(d, "attempt", NULL, 0, OMIT, SHUB_EMISSING, "DELIVER.attempt");
    expect_edit(d, "from",
                RAW("\xa4" "W M "),
                REPLACE, SHUB_EVALUE, "DELIVER.from");

    const tpl_t *e = &templates[SHUB_MSG_ERROR];
    expect_edit(e, "code", NULL, 0, OMIT, SHUB_EMISSING, "ERROR.code");
    expect_edit(e, "id",
                RAW("\xc4\x08" "01234567"),
                REPLACE, SHUB_EVALUE, "ERROR.id");
    expect_edit(e, "message", RAW("\xa0"), REPLACE, 0, ""); /* a line may be empty */

    expect_edit(&templates[SHUB_MSG_ACK], "id", NULL, 0, OMIT, SHUB_EMISSING, "ACK.id");
    expect_edit(&templates[SHUB_MSG_HEARTBEAT], "time",
                RAW("\xa3" "now"),
                REPLACE, SHUB_ETYPE, "HEARTBEAT.time");
    expect_edit(&templates[SHUB_MSG_BYE], "reason",
                RAW("\xa3" "a\rb"),
                REPLACE, SHUB_EVALUE, "BYE.reason");
    expect_edit(&templates[SHUB_MSG_HELLO], "window", RAW("\xfb"), REPLACE, SHUB_EVALUE,
                "HELLO.window");
    expect_edit(&templates[SHUB_MSG_HELLO], "agent", RAW("\xa0"), REPLACE, SHUB_EVALUE,
                "HELLO.agent");
}
/* clang-format on */

/* A map of `n` keys k0..k(n-1), with key `dup` (when >= 0) repeated as the last. */
static void pack_keys(msgpack_packer *pk, int n, int dup)
{
    char key[16];
    msgpack_pack_map(pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        int k = (dup >= 0 && i == n - 1) ? dup : i;
        int len = snprintf(key, sizeof key, "k%d", k);
        msgpack_pack_str_with_body(pk, key, (size_t)len);
        msgpack_pack_int(pk, i);
    }
}

static void test_shub_msg_decode_duplicate_key_in_large_map_found(void **state)
{
    (void)state;
    static const struct {
        int n, dup;
        int code;
    } cases[] = {{16, 3, SHUB_EDUPKEY},      {17, 0, SHUB_EDUPKEY},
                 {17, 15, SHUB_EDUPKEY},     {17, -1, 0},
                 {4096, 2000, SHUB_EDUPKEY}, {4096, -1, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msgpack_sbuffer pl;
        msgpack_sbuffer_init(&pl);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &pl, msgpack_sbuffer_write);
        pack_keys(&pk, cases[i].n, cases[i].dup);
        expect_edit(&templates[SHUB_MSG_SHARE], "payload", pl.data, pl.size, REPLACE,
                    cases[i].code, cases[i].code ? "SHARE.payload" : "");
        msgpack_sbuffer_destroy(&pl);
    }
}

/* ---- limits at their edges --------------------------------------------- */

/* A SHARE with one recipient and an empty payload, to vary one field at a time. */
static shub_msg_t share_min(void)
{
    return sample(SHUB_MSG_SHARE, false, NULL);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* Encodes msg; on `code` 0 also decodes it. Otherwise checks the encoder's
 * refusal, then decodes the same message built by hand (template edit of
 * `key` to the msgpack text `s`) and expects the same refusal. */
static void expect_text_limit(shub_msg_t *m, const char *key, const char *s, int code,
                              const char *path)
{
    if (code == 0) {
        round_trip(m);
    } else {
        expect_encode(m, code, path);
    }
    tpl_t t;
    shub_msg_t base = *m;
    if (base.type == SHUB_MSG_SHARE)
        base = share_min();
    else if (base.type == SHUB_MSG_ERROR)
        base = sample(SHUB_MSG_ERROR, false, NULL);
    tpl_from_msg(&t, &base);
    expect_edit_text(&t, key, s, code, path);
}

static void test_shub_msg_limits_name_ref_line_at_edge(void **state)
{
    (void)state;
    char *name = repeat('n', SHUB_MSG_MAX_NAME + 1);
    char *ref = repeat('r', SHUB_MSG_MAX_REF + 1);
    char *line = repeat('l', SHUB_MSG_MAX_LINE + 1);
    shub_msg_t m = share_min();

    name[SHUB_MSG_MAX_NAME] = '\0';
    m.share.ev.type = name;
    expect_text_limit(&m, "event", name, 0, "");
    name[SHUB_MSG_MAX_NAME] = 'n';
    expect_text_limit(&m, "event", name, SHUB_ELIMIT, "SHARE.event");

    m = share_min();
    ref[SHUB_MSG_MAX_REF] = '\0';
    m.share.ev.case_ref = ref;
    expect_text_limit(&m, "case", ref, 0, "");
    ref[SHUB_MSG_MAX_REF] = 'r';
    expect_text_limit(&m, "case", ref, SHUB_ELIMIT, "SHARE.case");

    m = sample(SHUB_MSG_ERROR, false, NULL);
    line[SHUB_MSG_MAX_LINE] = '\0';
    m.error.message = line;
    expect_text_limit(&m, "message", line, 0, "");
    line[SHUB_MSG_MAX_LINE] = 'l';
    expect_text_limit(&m, "message", line, SHUB_ELIMIT, "ERROR.message");

    free(name);
    free(ref);
    free(line);
}

static void test_shub_msg_limits_to_count_at_edge(void **state)
{
    (void)state;
    const char *to[SHUB_MSG_MAX_TO + 1];
    for (int i = 0; i <= SHUB_MSG_MAX_TO; i++)
        to[i] = "bcc";
    shub_msg_t m = share_min();
    m.share.to = to;
    m.share.to_count = SHUB_MSG_MAX_TO;
    round_trip(&m);
    m.share.to_count = SHUB_MSG_MAX_TO + 1;
    expect_encode(&m, SHUB_ELIMIT, "SHARE.to");

    for (int n = SHUB_MSG_MAX_TO; n <= SHUB_MSG_MAX_TO + 1; n++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, (size_t)n);
        for (int i = 0; i < n; i++)
            msgpack_pack_str_with_body(&pk, "bcc", 3);
        expect_edit(&templates[SHUB_MSG_SHARE], "to", sb.data, sb.size, REPLACE,
                    n > SHUB_MSG_MAX_TO ? SHUB_ELIMIT : 0,
                    n > SHUB_MSG_MAX_TO ? "SHARE.to" : "");
        msgpack_sbuffer_destroy(&sb);
    }
}

static void test_shub_msg_limits_outcomes_at_edge(void **state)
{
    (void)state;
    shub_outcome_item_t *items = calloc(SHUB_MSG_MAX_OUTCOMES + 1, sizeof *items);
    assert_non_null(items);
    for (int i = 0; i <= SHUB_MSG_MAX_OUTCOMES; i++)
        items[i] = (shub_outcome_item_t){.to = "bcc", .outcome = SHUB_OUTCOME_QUEUED};
    shub_msg_t m = sample(SHUB_MSG_RECEIPT, false, NULL);
    m.receipt.items = items;
    m.receipt.count = SHUB_MSG_MAX_OUTCOMES;
    round_trip(&m);
    m.receipt.count = SHUB_MSG_MAX_OUTCOMES + 1;
    expect_encode(&m, SHUB_ELIMIT, "RECEIPT.outcomes");
    free(items);

    for (int n = SHUB_MSG_MAX_OUTCOMES; n <= SHUB_MSG_MAX_OUTCOMES + 1; n++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, (size_t)n);
        for (int i = 0; i < n; i++) {
            msgpack_pack_map(&pk, 2);
            msgpack_pack_str_with_body(&pk, "to", 2);
            msgpack_pack_str_with_body(&pk, "bcc", 3);
            msgpack_pack_str_with_body(&pk, "outcome", 7);
            msgpack_pack_str_with_body(&pk, "queued", 6);
        }
        bool over = n > SHUB_MSG_MAX_OUTCOMES;
        expect_edit(&templates[SHUB_MSG_RECEIPT], "outcomes", sb.data, sb.size, REPLACE,
                    over ? SHUB_ELIMIT : 0, over ? "RECEIPT.outcomes" : "");
        msgpack_sbuffer_destroy(&sb);
    }
}

/* Puts payload p into a minimal SHARE, encodes it and checks the outcome; then
 * decodes the same payload, packed independently of the encoder's checks,
 * inside a SHARE and alone, and checks the same outcome there. */
static void expect_payload(const shub_val_t *p, const msgpack_sbuffer *packed, int code,
                           const char *path)
{
    shub_msg_t m = share_min();
    m.share.ev.payload = *p;
    if (code == 0)
        round_trip(&m);
    else
        expect_encode(&m, code, path);
    expect_edit(&templates_min[SHUB_MSG_SHARE], "payload", packed->data, packed->size,
                REPLACE, code, path);

    /* the bare payload: same rule, paths under "payload" */
    const char *sub = code ? path + strlen("SHARE.") : "";
    shub_buf_t buf = {0};
    shub_err_t err = {0};
    int rc = shub_payload_encode(p, &buf, &err);
    expect_err(rc, &err, code, sub);
    shub_arena_t *a = shub_arena_new(0);
    shub_val_t out;
    shub_err_clear(&err);
    rc = shub_payload_decode(a, packed->data, packed->size, &out, &err);
    expect_err(rc, &err, code, sub);
    shub_arena_destroy(&a);
    shub_buf_free(&buf);
}

/* Packs a value tree with msgpack-c directly, so the bytes do not depend on
 * the encoder's checks (keys of any length included). */
static void pack_tree(msgpack_packer *pk, const shub_val_t *v)
{
    switch (v->type) {
    case SHUB_VAL_NIL:
        msgpack_pack_nil(pk);
        break;
    case SHUB_VAL_BOOL:
        v->as.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case SHUB_VAL_INT:
        msgpack_pack_int64(pk, v->as.i);
        break;
    case SHUB_VAL_FLOAT:
        msgpack_pack_double(pk, v->as.f);
        break;
    case SHUB_VAL_STR:
        msgpack_pack_str_with_body(pk, v->as.str, v->len);
        break;
    case SHUB_VAL_BIN:
        msgpack_pack_bin_with_body(pk, v->as.bin, v->len);
        break;
    case SHUB_VAL_ARRAY:
        msgpack_pack_array(pk, v->len);
        for (uint32_t i = 0; i < v->len; i++)
            pack_tree(pk, &v->as.items[i]);
        break;
    case SHUB_VAL_MAP:
        msgpack_pack_map(pk, v->len);
        for (uint32_t i = 0; i < v->len; i++) {
            msgpack_pack_str_with_body(pk, v->as.pairs[i].key, v->as.pairs[i].key_len);
            pack_tree(pk, &v->as.pairs[i].val);
        }
        break;
    }
}

static void expect_payload_tree(const shub_val_t *p, int code, const char *path)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_tree(&pk, p);
    expect_payload(p, &sb, code, path);
    msgpack_sbuffer_destroy(&sb);
}

static void test_shub_msg_limits_text_and_bin_at_edge(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    char *s = repeat('t', SHUB_MSG_MAX_TEXT + 1);
    shub_val_t p = shub_val_map(), v;
    assert_int_equal(shub_val_str(a, s, SHUB_MSG_MAX_TEXT, &v), 0);
    put(a, &p, "t", v);
    expect_payload_tree(&p, 0, "");
    assert_int_equal(shub_val_str(a, s, SHUB_MSG_MAX_TEXT + 1, &p.as.pairs[0].val), 0);
    expect_payload_tree(&p, SHUB_ELIMIT, "SHARE.payload.t");
    free(s);

    uint8_t *bin = calloc(1, SHUB_MSG_MAX_BIN + 1);
    assert_non_null(bin);
    p = shub_val_map();
    assert_int_equal(shub_val_bin(a, bin, SHUB_MSG_MAX_BIN, &v), 0);
    put(a, &p, "b", v);
    expect_payload_tree(&p, 0, "");
    assert_int_equal(shub_val_bin(a, bin, SHUB_MSG_MAX_BIN + 1, &p.as.pairs[0].val), 0);
    expect_payload_tree(&p, SHUB_ELIMIT, "SHARE.payload.b");

    /* and a DELIVER's sealed event */
    shub_msg_t m = sample(SHUB_MSG_DELIVER, true, NULL);
    m.deliver.sealed = bin;
    m.deliver.sealed_len = SHUB_MSG_MAX_BIN;
    round_trip(&m);
    m.deliver.sealed_len = SHUB_MSG_MAX_BIN + 1;
    expect_encode(&m, SHUB_ELIMIT, "DELIVER.sealed");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_bin_with_body(&pk, bin, SHUB_MSG_MAX_BIN + 1);
    expect_edit(&templates[SHUB_MSG_DELIVER], "sealed", sb.data, sb.size, REPLACE,
                SHUB_ELIMIT, "DELIVER.sealed");
    msgpack_sbuffer_destroy(&sb);
    free(bin);
    shub_arena_destroy(&a);
}

static void test_shub_msg_limits_key_length_at_edge(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    char *key = repeat('k', SHUB_VAL_MAX_KEY + 1);
    shub_val_t p = shub_val_map();
    key[SHUB_VAL_MAX_KEY] = '\0';
    put(a, &p, key, shub_val_int(1));
    expect_payload_tree(&p, 0, "");
    /* one byte more: built by hand, as shub_val_put refuses it */
    key[SHUB_VAL_MAX_KEY] = 'k';
    p.as.pairs[0].key = key;
    p.as.pairs[0].key_len = SHUB_VAL_MAX_KEY + 1;
    expect_payload_tree(&p, SHUB_ELIMIT, "SHARE.payload");
    free(key);
    shub_arena_destroy(&a);
}

static void test_shub_msg_limits_items_at_edge(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    for (uint32_t n = SHUB_MSG_MAX_ITEMS; n <= SHUB_MSG_MAX_ITEMS + 1; n++) {
        bool over = n > SHUB_MSG_MAX_ITEMS;
        shub_val_t list = shub_val_array(), map = shub_val_map();
        for (uint32_t i = 0; i < n; i++) {
            char key[16];
            snprintf(key, sizeof key, "k%u", i);
            push(a, &list, shub_val_nil());
            put(a, &map, key, shub_val_bool(true));
        }
        shub_val_t p = shub_val_map();
        put(a, &p, "list", list);
        expect_payload_tree(&p, over ? SHUB_ELIMIT : 0, over ? "SHARE.payload.list" : "");
        p = shub_val_map();
        put(a, &p, "map", map);
        expect_payload_tree(&p, over ? SHUB_ELIMIT : 0, over ? "SHARE.payload.map" : "");
    }
    shub_arena_destroy(&a);
}

static void test_shub_msg_limits_depth_at_edge(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    /* The message map is level 1 and its payload level 2, so a payload may
     * hold SHUB_MSG_MAX_DEPTH - 2 more levels of nesting. */
    for (int extra = SHUB_MSG_MAX_DEPTH - 2; extra <= SHUB_MSG_MAX_DEPTH - 1; extra++) {
        bool over = extra > SHUB_MSG_MAX_DEPTH - 2;
        char path[256] = "SHARE.payload";
        shub_val_t v = shub_val_int(1);
        for (int i = 0; i < extra; i++) {
            shub_val_t m = shub_val_map();
            put(a, &m, "n", v);
            v = m;
            if (i < extra - 1)
                strcat(path, ".n");
        }
        strcat(path, ".n"); /* the deepest map sits under one more "n" */
        shub_val_t p = shub_val_map();
        put(a, &p, "n", v);
        expect_payload_tree(&p, over ? SHUB_ELIMIT : 0, over ? path : "");

        /* arrays count the same */
        v = shub_val_int(1);
        char apath[256] = "SHARE.payload.n";
        for (int i = 0; i < extra; i++) {
            shub_val_t arr = shub_val_array();
            push(a, &arr, v);
            v = arr;
            if (i < extra - 1)
                strcat(apath, "[0]");
        }
        p = shub_val_map();
        put(a, &p, "n", v);
        expect_payload_tree(&p, over ? SHUB_ELIMIT : 0, over ? apath : "");
    }
    shub_arena_destroy(&a);
}

/* A payload of exactly `nodes` values: a map of arrays of nils. */
static shub_val_t payload_of_nodes(shub_arena_t *a, uint32_t nodes)
{
    shub_val_t p = shub_val_map();
    uint32_t left = nodes - 1;
    for (int k = 0; left > 0; k++) {
        char key[16];
        snprintf(key, sizeof key, "a%d", k);
        shub_val_t arr = shub_val_array();
        left--;
        for (uint32_t i = 0; i < SHUB_MSG_MAX_ITEMS && left > 0; i++, left--)
            push(a, &arr, shub_val_nil());
        put(a, &p, key, arr);
    }
    return p;
}

/* Values in a msgpack object, as the decoder counts them (keys are not). */
static uint32_t count_nodes(const msgpack_object *o)
{
    uint32_t n = 1;
    if (o->type == MSGPACK_OBJECT_ARRAY)
        for (uint32_t i = 0; i < o->via.array.size; i++)
            n += count_nodes(&o->via.array.ptr[i]);
    if (o->type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < o->via.map.size; i++)
            n += count_nodes(&o->via.map.ptr[i].val);
    return n;
}

static void test_shub_msg_limits_nodes_at_edge(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    /* the values a minimal SHARE spends outside its payload */
    shub_msg_t m = share_min();
    shub_buf_t buf = {0};
    assert_int_equal(shub_msg_encode(&m, &buf, NULL), 0);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, (const char *)buf.data, buf.len, NULL),
                     MSGPACK_UNPACK_SUCCESS);
    uint32_t envelope = count_nodes(&up.data) - 1; /* less the empty payload map */
    msgpack_unpacked_destroy(&up);
    shub_buf_free(&buf);
    assert_int_equal(envelope, 12);

    for (uint32_t total = SHUB_MSG_MAX_NODES; total <= SHUB_MSG_MAX_NODES + 1; total++) {
        bool over = total > SHUB_MSG_MAX_NODES;
        /* in a message */
        shub_val_t p = payload_of_nodes(a, total - envelope);
        m.share.ev.payload = p;
        shub_err_t err = {0};
        int rc = shub_msg_encode(&m, &buf, &err);
        assert_int_equal(rc, over ? SHUB_ELIMIT : 0);
        shub_buf_free(&buf);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_tree(&pk, &p);
        msgpack_sbuffer out;
        tpl_build(&templates_min[SHUB_MSG_SHARE], "payload", sb.data, sb.size, REPLACE,
                  &out);
        shub_msg_t *msg = NULL;
        rc = shub_msg_decode(out.data, out.size, &msg, &err);
        assert_int_equal(rc, over ? SHUB_ELIMIT : 0);
        shub_msg_destroy(&msg);
        msgpack_sbuffer_destroy(&out);
        msgpack_sbuffer_destroy(&sb);

        /* a bare payload counts its own values only */
        p = payload_of_nodes(a, total);
        assert_int_equal(shub_payload_encode(&p, &buf, &err), over ? SHUB_ELIMIT : 0);
        shub_buf_free(&buf);
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_tree(&pk, &p);
        shub_val_t back;
        rc = shub_payload_decode(a, sb.data, sb.size, &back, &err);
        assert_int_equal(rc, over ? SHUB_ELIMIT : 0);
        msgpack_sbuffer_destroy(&sb);
    }
    shub_arena_destroy(&a);
}

static void test_shub_msg_limits_message_size_at_edge(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    uint8_t *fill = calloc(1, SHUB_MSG_MAX_BIN);
    assert_non_null(fill);
    /* two binaries, the second sized so the message is exactly the limit */
    shub_msg_t m = share_min();
    shub_val_t p = shub_val_map(), blob, pad;
    assert_int_equal(shub_val_bin(a, fill, 900000, &blob), 0);
    assert_int_equal(shub_val_bin(a, fill, 100000, &pad), 0);
    blob.as.bin = fill; /* borrowed, so the length can be tuned below */
    pad.as.bin = fill;
    put(a, &p, "blob", blob);
    put(a, &p, "pad", pad);
    m.share.ev.payload = p;
    shub_buf_t buf = {0};
    assert_int_equal(shub_msg_encode(&m, &buf, NULL), 0);
    m.share.ev.payload.as.pairs[1].val.len += (uint32_t)(SHUB_MSG_MAX_BYTES - buf.len);
    size_t len = round_trip(&m);
    assert_int_equal(len, SHUB_MSG_MAX_BYTES);

    m.share.ev.payload.as.pairs[1].val.len++;
    expect_encode(&m, SHUB_ELIMIT, "SHARE");
    /* the same message, one byte over, made without the encoder */
    shub_val_t over = m.share.ev.payload;
    msgpack_sbuffer sb, out;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_tree(&pk, &over);
    tpl_build(&templates_min[SHUB_MSG_SHARE], "payload", sb.data, sb.size, REPLACE, &out);
    assert_int_equal(out.size, SHUB_MSG_MAX_BYTES + 1);
    expect_decode(out.data, out.size, SHUB_ELIMIT, "message");
    msgpack_sbuffer_destroy(&out);
    msgpack_sbuffer_destroy(&sb);
    shub_buf_free(&buf);
    free(fill);
    shub_arena_destroy(&a);
}

static void test_shub_event_and_payload_limits_size_at_edge(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    uint8_t *fill = calloc(1, SHUB_MSG_MAX_BYTES + 1);
    assert_non_null(fill);
    shub_event_t ev = sample_event(NULL, false);
    shub_val_t blob, pad;
    assert_int_equal(shub_val_bin(a, NULL, 0, &blob), 0);
    pad = blob;
    blob.as.bin = pad.as.bin = fill;
    blob.len = 900000;
    pad.len = 100000;
    put(a, &ev.payload, "blob", blob);
    put(a, &ev.payload, "pad", pad);
    shub_val_t *pad_len = &ev.payload.as.pairs[1].val;
    shub_buf_t buf = {0};
    shub_err_t err = {0};

    for (int event = 0; event < 2; event++) {
        const char *root = event ? "event" : "payload";
        int rc = event ? shub_event_encode(&ev, &buf, &err)
                       : shub_payload_encode(&ev.payload, &buf, &err);
        assert_int_equal(rc, 0);
        pad_len->len += (uint32_t)(SHUB_MSG_MAX_BYTES - buf.len);
        rc = event ? shub_event_encode(&ev, &buf, &err)
                   : shub_payload_encode(&ev.payload, &buf, &err);
        assert_int_equal(rc, 0);
        assert_int_equal(buf.len, SHUB_MSG_MAX_BYTES);
        shub_event_t out;
        shub_val_t val;
        shub_err_clear(&err);
        rc = event ? shub_event_decode(a, buf.data, buf.len, &out, &err)
                   : shub_payload_decode(a, buf.data, buf.len, &val, &err);
        expect_err(rc, &err, 0, "");

        pad_len->len++;
        rc = event ? shub_event_encode(&ev, &buf, &err)
                   : shub_payload_encode(&ev.payload, &buf, &err);
        expect_err(rc, &err, SHUB_ELIMIT, root);
        assert_int_equal(buf.len, 0);
        /* the decoder refuses the same size before reading a byte */
        rc = event ? shub_event_decode(a, fill, SHUB_MSG_MAX_BYTES + 1, &out, &err)
                   : shub_payload_decode(a, fill, SHUB_MSG_MAX_BYTES + 1, &val, &err);
        expect_err(rc, &err, SHUB_ELIMIT, root);
        pad_len->len = 100000;
    }
    shub_buf_free(&buf);
    free(fill);
    shub_arena_destroy(&a);
}

static void test_shub_msg_decode_deep_long_path_keeps_tail(void **state)
{
    (void)state;
    /* payload.k0.k1...k9.bad, each key 64 bytes: far longer than err.path */
    char keys[10][SHUB_VAL_MAX_KEY + 1];
    char full[1024] = "SHARE.payload";
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (int i = 0; i < 10; i++) {
        memset(keys[i], 'a' + i, SHUB_VAL_MAX_KEY);
        keys[i][SHUB_VAL_MAX_KEY] = '\0';
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str_with_body(&pk, keys[i], SHUB_VAL_MAX_KEY);
        strcat(full, ".");
        strcat(full, keys[i]);
    }
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "bad", 3);
    msgpack_sbuffer_write(&sb, "\xc1", 1);
    strcat(full, ".bad");

    msgpack_sbuffer out;
    tpl_build(&templates[SHUB_MSG_SHARE], "payload", sb.data, sb.size, REPLACE, &out);
    shub_msg_t *msg = NULL;
    shub_err_t err = {0};
    assert_int_equal(shub_msg_decode(out.data, out.size, &msg, &err), SHUB_EMALFORMED);
    size_t n = strlen(err.path), fn = strlen(full);
    assert_int_equal(n, SHUB_ERR_PATH_MAX - 1);
    assert_memory_equal(err.path, "...", 3);
    assert_string_equal(err.path + 3, full + fn - (n - 3));
    msgpack_sbuffer_destroy(&out);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- the encoder refuses what the decoder would ------------------------ */

static void test_shub_msg_encode_missing_required_returns_emissing(void **state)
{
    (void)state;
    shub_msg_t m = share_min();
    m.share.ev.type = NULL;
    expect_encode(&m, SHUB_EMISSING, "SHARE.event");
    m = share_min();
    m.share.ev.area = NULL;
    expect_encode(&m, SHUB_EMISSING, "SHARE.area");
    m = share_min();
    m.share.ev.basis = NULL;
    expect_encode(&m, SHUB_EMISSING, "SHARE.basis");
    m = share_min();
    m.share.ev.consent = 0;
    expect_encode(&m, SHUB_EMISSING, "SHARE.consent");
    m = share_min();
    m.share.to = NULL;
    m.share.to_count = 0;
    expect_encode(&m, SHUB_EMISSING, "SHARE.to");

    m = sample(SHUB_MSG_WELCOME, false, NULL);
    m.welcome.org = NULL;
    expect_encode(&m, SHUB_EMISSING, "WELCOME.org");
    m = sample(SHUB_MSG_RECEIPT, false, NULL);
    m.receipt.items = NULL;
    m.receipt.count = 0;
    expect_encode(&m, SHUB_EMISSING, "RECEIPT.outcomes");
    shub_outcome_item_t item = {.outcome = SHUB_OUTCOME_DENIED};
    m.receipt.items = &item;
    m.receipt.count = 1;
    expect_encode(&m, SHUB_EMISSING, "RECEIPT.outcomes[0].to");
    item.to = "bcc";
    item.outcome = 0;
    expect_encode(&m, SHUB_EMISSING, "RECEIPT.outcomes[0].outcome");
    m = sample(SHUB_MSG_DELIVER, false, NULL);
    m.deliver.sealed = NULL;
    m.deliver.sealed_len = 0;
    expect_encode(&m, SHUB_EMISSING, "DELIVER.sealed");
    m = sample(SHUB_MSG_ERROR, false, NULL);
    m.error.message = NULL;
    expect_encode(&m, SHUB_EMISSING, "ERROR.message");

    shub_event_t ev = sample_event(NULL, false);
    ev.purpose = NULL;
    shub_buf_t buf = {0};
    shub_err_t err = {0};
    expect_err(shub_event_encode(&ev, &buf, &err), &err, SHUB_EMISSING, "event.purpose");
    assert_int_equal(buf.len, 0);
    shub_buf_free(&buf);
}

static void test_shub_msg_encode_bad_values_refused_with_path(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    shub_msg_t m = share_min();
    static const char *const bad_to[] = {"bcc", "Bad Org"};
    m.share.to = bad_to;
    m.share.to_count = 2;
    expect_encode(&m, SHUB_EVALUE, "SHARE.to[1]");
    m = share_min();
    m.share.to_count = 0; /* pointer, no count */
    expect_encode(&m, SHUB_EVALUE, "SHARE.to");
    m = share_min();
    m.share.ev.occurred_ms = -1;
    expect_encode(&m, SHUB_EVALUE, "SHARE.occurred");
    m = share_min();
    m.share.ev.consent = 9;
    expect_encode(&m, SHUB_EVALUE, "SHARE.consent");
    m = share_min();
    m.share.ev.case_ref = "WMP\n1";
    expect_encode(&m, SHUB_EVALUE, "SHARE.case");
    m = share_min();
    m.share.ev.case_ref = "";
    expect_encode(&m, SHUB_EVALUE, "SHARE.case");
    m = share_min();
    m.share.ev.subject_ref = "\xc0\xaf";
    expect_encode(&m, SHUB_EUTF8, "SHARE.subject");
    m = share_min();
    m.share.ev.area = "Coventry";
    expect_encode(&m, SHUB_EVALUE, "SHARE.area");
    m = share_min();
    m.share.from = "W M P";
    expect_encode(&m, SHUB_EVALUE, "SHARE.from");
    m = share_min();
    m.share.ev.payload = shub_val_array();
    expect_encode(&m, SHUB_ETYPE, "SHARE.payload");

    /* payload values: bad text, NUL, a repeated key, a bad key */
    m = share_min();
    shub_val_t p = shub_val_map(), victim = shub_val_map();
    put(a, &victim, "name", text(a, "Jo"));
    put(a, &p, "victim", victim);
    m.share.ev.payload = p;
    shub_val_t *name = &p.as.pairs[0].val.as.pairs[0].val;
    name->as.str = "\xed\xa0\x80";
    name->len = 3;
    expect_encode(&m, SHUB_EUTF8, "SHARE.payload.victim.name");
    name->as.str = "J\0o";
    expect_encode(&m, SHUB_EVALUE, "SHARE.payload.victim.name");
    name->as.str = "Jo";
    name->len = 2;
    round_trip(&m);
    shub_val_t dup = shub_val_map();
    put(a, &dup, "a", shub_val_int(1));
    put(a, &dup, "b", shub_val_int(2));
    dup.as.pairs[1].key = "a";
    dup.as.pairs[1].key_len = 1;
    m.share.ev.payload = dup;
    expect_encode(&m, SHUB_EDUPKEY, "SHARE.payload");
    dup.as.pairs[1].key = "a.b";
    dup.as.pairs[1].key_len = 3;
    m.share.ev.payload = dup;
    expect_encode(&m, SHUB_EVALUE, "SHARE.payload");

    m = sample(SHUB_MSG_DELIVER, false, NULL);
    m.deliver.sealed_len = 0;
    expect_encode(&m, SHUB_EVALUE, "DELIVER.sealed");
    m = sample(SHUB_MSG_RECEIPT, false, NULL);
    m.receipt.items = NULL;
    m.receipt.count = 2;
    expect_encode(&m, SHUB_EINVAL, "RECEIPT.outcomes");

    m = share_min();
    m.type = 0;
    expect_encode(&m, SHUB_EUNKNOWN, "message");
    m.type = SHUB_MSG_BYE + 1;
    expect_encode(&m, SHUB_EUNKNOWN, "message");
    shub_buf_t buf = {0};
    assert_int_equal(shub_msg_encode(NULL, &buf, NULL), SHUB_EINVAL);
    assert_int_equal(shub_msg_encode(&m, NULL, NULL), SHUB_EINVAL);
    shub_arena_destroy(&a);
}

static void test_shub_msg_encode_failure_empties_buffer(void **state)
{
    (void)state;
    shub_buf_t buf = {0};
    shub_msg_t m = sample(SHUB_MSG_HELLO, true, NULL);
    assert_int_equal(shub_msg_encode(&m, &buf, NULL), 0);
    assert_true(buf.len > 0);
    m = share_min();
    m.share.ev.area = NULL;
    assert_int_equal(shub_msg_encode(&m, &buf, NULL), SHUB_EMISSING);
    assert_int_equal(buf.len, 0);
    shub_buf_free(&buf);
}

/* ---- allocation failure ------------------------------------------------ */

static void test_shub_msg_decode_every_allocation_failure_is_clean(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    shub_msg_t m = sample(SHUB_MSG_SHARE, true, a);
    shub_buf_t buf = {0};
    assert_int_equal(shub_msg_encode(&m, &buf, NULL), 0);
    long n = 0;
    for (;; n++) {
        shub_msg_t *msg = NULL;
        shub_err_t err = {0};
        shub_alloc_fail_after(n);
        int rc = shub_msg_decode(buf.data, buf.len, &msg, &err);
        long failures = shub_alloc_failures();
        shub_alloc_fail_after(-1);
        if (rc == 0) {
            assert_int_equal(failures, 0);
            assert_msg_equal(&m, msg);
            shub_msg_destroy(&msg);
            break;
        }
        assert_int_equal(rc, SHUB_ENOMEM);
        assert_int_equal(err.code, SHUB_ENOMEM);
        assert_null(msg);
        assert_true(n < 1000);
    }
    assert_true(n >= 3); /* the message, its arena, a block: each was made to fail */
    shub_buf_free(&buf);
    shub_arena_destroy(&a);
}

static void test_shub_msg_encode_every_allocation_failure_is_clean(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    for (int t = SHUB_MSG_HELLO; t <= SHUB_MSG_BYE; t++) {
        shub_msg_t m = sample((shub_msg_type_t)t, true, a);
        for (long n = 0;; n++) {
            shub_buf_t buf = {0};
            shub_err_t err = {0};
            shub_alloc_fail_after(n);
            int rc = shub_msg_encode(&m, &buf, &err);
            long failures = shub_alloc_failures();
            shub_alloc_fail_after(-1);
            shub_buf_free(&buf);
            if (rc == 0 && failures == 0)
                break;
            assert_int_equal(rc, SHUB_ENOMEM);
            assert_true(n < 100);
        }
    }
    shub_arena_destroy(&a);
}

static void test_shub_event_and_payload_decode_allocation_failure_is_clean(void **state)
{
    (void)state;
    shub_arena_t *src = shub_arena_new(0);
    shub_event_t ev = sample_event(src, true);
    shub_buf_t ebuf = {0}, pbuf = {0};
    assert_int_equal(shub_event_encode(&ev, &ebuf, NULL), 0);
    assert_int_equal(shub_payload_encode(&ev.payload, &pbuf, NULL), 0);
    for (int which = 0; which < 2; which++) {
        for (long n = 0;; n++) {
            shub_arena_t *a = shub_arena_new(0);
            shub_err_t err = {0};
            shub_event_t out;
            shub_val_t val;
            shub_alloc_fail_after(n);
            int rc = which ? shub_payload_decode(a, pbuf.data, pbuf.len, &val, &err)
                           : shub_event_decode(a, ebuf.data, ebuf.len, &out, &err);
            long failures = shub_alloc_failures();
            shub_alloc_fail_after(-1);
            shub_arena_destroy(&a);
            if (rc == 0 && failures == 0)
                break;
            assert_int_equal(rc, SHUB_ENOMEM);
            assert_true(n < 1000);
        }
    }
    shub_buf_free(&ebuf);
    shub_buf_free(&pbuf);
    shub_arena_destroy(&src);
}

/* ---- names, enums, selectors ------------------------------------------- */

static void test_shub_msg_type_name_every_type(void **state)
{
    (void)state;
    static const char *const names[] = {"?",       "HELLO",   "WELCOME", "SHARE",
                                        "RECEIPT", "DELIVER", "ACK",     "HEARTBEAT",
                                        "ERROR",   "BYE"};
    for (int t = 0; t <= SHUB_MSG_BYE; t++)
        assert_string_equal(shub_msg_type_name((shub_msg_type_t)t), names[t]);
    assert_string_equal(shub_msg_type_name((shub_msg_type_t)10), "?");
    assert_string_equal(shub_msg_type_name((shub_msg_type_t)-1), "?");
}

static void test_shub_consent_and_outcome_names_round_trip(void **state)
{
    (void)state;
    static const char *const consents[] = {"given", "refused", "not-sought"};
    for (int c = 1; c <= 3; c++) {
        assert_string_equal(shub_consent_name((shub_consent_t)c), consents[c - 1]);
        assert_int_equal(shub_consent_parse(consents[c - 1]), c);
    }
    static const char *const outcomes[] = {"queued", "delivered", "acknowledged",
                                           "denied", "dead"};
    for (int o = 1; o <= 5; o++) {
        assert_string_equal(shub_outcome_name((shub_outcome_t)o), outcomes[o - 1]);
        assert_int_equal(shub_outcome_parse(outcomes[o - 1]), o);
    }
    assert_string_equal(shub_consent_name((shub_consent_t)0), "?");
    assert_string_equal(shub_consent_name((shub_consent_t)4), "?");
    assert_string_equal(shub_outcome_name((shub_outcome_t)6), "?");
    assert_int_equal(shub_consent_parse("GIVEN"), -1);
    assert_int_equal(shub_consent_parse(""), -1);
    assert_int_equal(shub_consent_parse(NULL), -1);
    assert_int_equal(shub_outcome_parse("lost"), -1);
    assert_int_equal(shub_outcome_parse(NULL), -1);
}

static void test_shub_is_name_and_selector_tables(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool name, selector;
    } cases[] = {
        {"wmp", true, true},
        {"marac-bham-east", true, true},
        {"marac.transfer.ack", true, true},
        {"0day", true, true},
        {"a_b", true, true},
        {"@coventry", false, true},
        {"idva@coventry", false, true},
        {"local-authority@walsall", false, true},
        {"", false, false},
        {"Wmp", false, false},
        {"-wmp", false, false},
        {".wmp", false, false},
        {"_wmp", false, false},
        {"w m p", false, false},
        {"@", false, false},
        {"idva@", false, false},
        {"@Coventry", false, false},
        {"a@b@c", false, false},
        {"@@x", false, false},
        {"wmp\n", false, false},
        {"wmp/x", false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (shub_is_name(cases[i].s) != cases[i].name)
            fail_msg("shub_is_name(\"%s\") != %d", cases[i].s, cases[i].name);
        if (shub_is_selector(cases[i].s) != cases[i].selector)
            fail_msg("shub_is_selector(\"%s\") != %d", cases[i].s, cases[i].selector);
    }
    assert_false(shub_is_name(NULL));
    assert_false(shub_is_selector(NULL));
    char *s = repeat('a', SHUB_MSG_MAX_NAME + 1);
    assert_false(shub_is_name(s));
    assert_false(shub_is_selector(s));
    s[SHUB_MSG_MAX_NAME] = '\0';
    assert_true(shub_is_name(s));
    assert_true(shub_is_selector(s));
    s[10] = '@';
    assert_true(shub_is_selector(s)); /* kind@area of 64 bytes in all */
    free(s);
}

/* ---- event ids --------------------------------------------------------- */

static void test_shub_id_generate_layout_and_time(void **state)
{
    (void)state;
    const int64_t t = 1718000000123;
    shub_id_t id;
    assert_int_equal(shub_id_generate(&id, t), 0);
    assert_int_equal(id.bytes[6] >> 4, 7);      /* version 7 */
    assert_int_equal(id.bytes[8] & 0xc0, 0x80); /* RFC 9562 variant 10xx */
    assert_int_equal(shub_id_time_ms(&id), t);
    assert_int_equal(id.bytes[0], 0x01);
    assert_int_equal(id.bytes[5], (uint8_t)t);
}

static void test_shub_id_generate_time_ordered_across_calls(void **state)
{
    (void)state;
    shub_id_t prev, id;
    int64_t t = shub_now_ms();
    assert_int_equal(shub_id_generate(&prev, t), 0);
    for (int i = 1; i <= 2000; i++) {
        assert_int_equal(shub_id_generate(&id, t + i), 0);
        assert_true(memcmp(prev.bytes, id.bytes, SHUB_ID_SIZE) < 0);
        char a[SHUB_ID_TEXT], b[SHUB_ID_TEXT];
        shub_id_format(&prev, a);
        shub_id_format(&id, b);
        assert_true(strcmp(a, b) < 0); /* the text sorts the same way */
        prev = id;
    }
    /* two ids in the same millisecond still differ (74 random bits) */
    shub_id_t x, y;
    assert_int_equal(shub_id_generate(&x, t), 0);
    assert_int_equal(shub_id_generate(&y, t), 0);
    assert_memory_not_equal(x.bytes, y.bytes, SHUB_ID_SIZE);
    /* ids made from the wall clock, one after another, do not go backwards */
    assert_int_equal(shub_id_generate(&x, shub_now_ms()), 0);
    struct timespec pause = {0, 2000000};
    nanosleep(&pause, NULL);
    assert_int_equal(shub_id_generate(&y, shub_now_ms()), 0);
    assert_true(memcmp(x.bytes, y.bytes, SHUB_ID_SIZE) < 0);
}

static void test_shub_id_format_parse_round_trip(void **state)
{
    (void)state;
    char text_[SHUB_ID_TEXT];
    shub_id_format(&id_a, text_);
    assert_string_equal(text_, "0190a5b2-3c4d-7001-8002-030405060708");
    shub_id_t back;
    assert_int_equal(shub_id_parse(text_, &back), 0);
    assert_memory_equal(back.bytes, id_a.bytes, SHUB_ID_SIZE);
    assert_int_equal(shub_id_parse("0190A5B23C4D70018002030405060708", &back), 0);
    assert_memory_equal(back.bytes, id_a.bytes, SHUB_ID_SIZE);
    for (int i = 0; i < 100; i++) {
        shub_id_t id;
        assert_int_equal(shub_id_generate(&id, 1718000000000 + i), 0);
        shub_id_format(&id, text_);
        assert_int_equal(strlen(text_), 36);
        assert_int_equal(shub_id_parse(text_, &back), 0);
        assert_memory_equal(back.bytes, id.bytes, SHUB_ID_SIZE);
    }
}

static void test_shub_id_parse_bad_text_returns_evalue(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "0190a5b2-3c4d-7001-8002-03040506070",   /* 35 */
        "0190a5b2-3c4d-7001-8002-0304050607080", /* 37 */
        "0190a5b2-3c4d-7001-8002_030405060708",  /* wrong separator */
        "0190a5b23-c4d-7001-8002-030405060708",  /* dash misplaced */
        "0190a5b2-3c4d-7001-8002-03040506070g",  /* not hex */
        "0190a5b2-3c4d-7001-8002-03040506070 ",  /* space */
        "0190a5b23c4d70018002030405060-08",      /* 32 with a dash */
        "0190a5b23c4d7001800203040506070",       /* 31 */
        "{0190a5b2-3c4d-7001-8002-0304050607}",  /* braces */
    };
    shub_id_t id;
    memset(&id, 0x77, sizeof id);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (shub_id_parse(bad[i], &id) != SHUB_EVALUE)
            fail_msg("shub_id_parse accepted \"%s\"", bad[i]);
    assert_int_equal(shub_id_parse(NULL, &id), SHUB_EVALUE);
    assert_int_equal(id.bytes[0], 0x77); /* untouched on failure */
}

static void test_shub_now_ms_is_current(void **state)
{
    (void)state;
    int64_t a = shub_now_ms();
    assert_true(a > 1704067200000); /* after 2024-01-01 */
    assert_true(shub_now_ms() >= a);
}

#define TR(name)                                                                         \
    cmocka_unit_test(test_shub_msg_decode_##name##_all_optional_round_trips),            \
        cmocka_unit_test(test_shub_msg_decode_##name##_no_optional_round_trips)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TR(hello),
        TR(welcome),
        TR(share),
        TR(receipt),
        TR(deliver),
        TR(ack),
        TR(heartbeat),
        TR(error),
        TR(bye),
        cmocka_unit_test(test_shub_msg_encode_absent_optionals_are_not_written),
        cmocka_unit_test(test_shub_msg_encode_hello_exact_bytes),
        cmocka_unit_test(test_shub_msg_decode_receipt_no_outcomes_round_trips),
        cmocka_unit_test(test_shub_msg_decode_required_zero_numbers_round_trip),
        cmocka_unit_test(test_shub_msg_decode_unknown_top_level_key_ignored),
        cmocka_unit_test(test_shub_msg_decode_float32_widened_to_double),
        cmocka_unit_test(test_shub_msg_decode_outlives_input_buffer),
        cmocka_unit_test(test_shub_event_encode_round_trips_both_variants),
        cmocka_unit_test(test_shub_event_decode_errors_under_event),
        cmocka_unit_test(test_shub_payload_encode_round_trips_rich_payload),
        cmocka_unit_test(test_shub_payload_decode_errors_under_payload),
        cmocka_unit_test(test_shub_msg_decode_raw_malformed_exact_errors),
        cmocka_unit_test(test_shub_msg_decode_huge_declared_length_allocates_nothing),
        cmocka_unit_test(test_shub_msg_decode_bad_arguments_return_einval),
        cmocka_unit_test(test_shub_msg_decode_truncated_at_every_offset_is_malformed),
        cmocka_unit_test(test_shub_msg_decode_truncated_inside_field_names_the_field),
        cmocka_unit_test(test_shub_msg_decode_share_field_errors_exact),
        cmocka_unit_test(test_shub_msg_decode_other_types_field_errors_exact),
        cmocka_unit_test(test_shub_msg_decode_duplicate_key_in_large_map_found),
        cmocka_unit_test(test_shub_msg_limits_name_ref_line_at_edge),
        cmocka_unit_test(test_shub_msg_limits_to_count_at_edge),
        cmocka_unit_test(test_shub_msg_limits_outcomes_at_edge),
        cmocka_unit_test(test_shub_msg_limits_text_and_bin_at_edge),
        cmocka_unit_test(test_shub_msg_limits_key_length_at_edge),
        cmocka_unit_test(test_shub_msg_limits_items_at_edge),
        cmocka_unit_test(test_shub_msg_limits_depth_at_edge),
        cmocka_unit_test(test_shub_msg_limits_nodes_at_edge),
        cmocka_unit_test(test_shub_msg_limits_message_size_at_edge),
        cmocka_unit_test(test_shub_event_and_payload_limits_size_at_edge),
        cmocka_unit_test(test_shub_msg_decode_deep_long_path_keeps_tail),
        cmocka_unit_test(test_shub_msg_encode_missing_required_returns_emissing),
        cmocka_unit_test(test_shub_msg_encode_bad_values_refused_with_path),
        cmocka_unit_test(test_shub_msg_encode_failure_empties_buffer),
        cmocka_unit_test(test_shub_msg_decode_every_allocation_failure_is_clean),
        cmocka_unit_test(test_shub_msg_encode_every_allocation_failure_is_clean),
        cmocka_unit_test(test_shub_event_and_payload_decode_allocation_failure_is_clean),
        cmocka_unit_test(test_shub_msg_type_name_every_type),
        cmocka_unit_test(test_shub_consent_and_outcome_names_round_trip),
        cmocka_unit_test(test_shub_is_name_and_selector_tables),
        cmocka_unit_test(test_shub_id_generate_layout_and_time),
        cmocka_unit_test(test_shub_id_generate_time_ordered_across_calls),
        cmocka_unit_test(test_shub_id_format_parse_round_trip),
        cmocka_unit_test(test_shub_id_parse_bad_text_returns_evalue),
        cmocka_unit_test(test_shub_now_ms_is_current),
    };
    return cmocka_run_group_tests(tests, setup_templates, NULL);
}
