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

#define ID_A                                                                             \
    {                                                                                    \
        {                                                                                \
            0x01, 0x90, 0xa5, 0xb2, 0x3c, 0x4d, 0x70, 0x01, 0x80, 0x02, 0x03, 0x04,      \
                0x05, 0x06, 0x07, 0x08                                                   \
        }                                                                                \
    }
#define ID_B                                                                             \
    {                                                                                    \
        {                                                                                \
            0x01, 0x90, 0xa5, 0xb2, 0x00, 0x00, 0x7f, 0xff, 0xbf, 0xff, 0xff, 0xff,      \
                0xff, 0xff, 0xff, 0xfe                                                   \
        }                                                                                \
    }
#define ID_C                                                                             \
    {                                                                                    \
        {                                                                                \
            0x01, 0x90, 0xa5, 0xb2, 0x3c, 0x4e, 0x70, 0x02, 0x80, 0x09, 0x08, 0x07,      \
                0x06, 0x05, 0x04, 0x03                                                   \
        }                                                                                \
    }
static const shub_id_t id_a = ID_A;
static const shub_id_t id_b = ID_B;

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

/* Batches: the full ones mix items with every optional field and with none
 * (an empty outcomes array included); the minimal ones hold one bare item. */
static const shub_receipt_t receipts_full[] = {
    {ID_A, true, outcomes_full, 5},
    {ID_B, false, outcomes_min, 0},
    {ID_C, false, outcomes_min, 1},
};
static const shub_receipt_t receipts_min[] = {{ID_A, false, outcomes_min, 1}};

static const shub_deliver_t deliveries_full[] = {
    {ID_A, "marac.referral", "wmp", "wm-marac-isa", 12, "referral", 7, sealed_bytes,
     sizeof sealed_bytes, 2190},
    {ID_B, "marac.transfer", "marac-coventry", "wm-marac-transfer", 3, "marac-to-marac",
     1, sealed_bytes, 1, 0},
};
static const shub_deliver_t deliveries_min[] = {
    {ID_A, "marac.referral", "wmp", "wm-marac-isa", 1, "referral", 1, sealed_bytes,
     sizeof sealed_bytes, 0},
};

static const shub_id_t ids_full[] = {ID_A, ID_B, ID_C};
static const shub_id_t ids_min[] = {ID_B};

static const shub_update_t updates_full[] = {
    {41,
     ID_A,
     {"marac-coventry", SHUB_OUTCOME_ACKNOWLEDGED, NULL, NULL, "wm-marac-isa", 3,
      "referral"}},
    {INT64_MAX,
     ID_B,
     {"uhcw", SHUB_OUTCOME_DEAD, "max-attempts",
      "sent 10 times without an acknowledgement", "wm-marac-isa", 3, "referral"}},
};
static const shub_update_t updates_min[] = {
    {1, ID_A, {"bcc", SHUB_OUTCOME_ACKNOWLEDGED, NULL, NULL, NULL, 0, NULL}},
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
        ev.actor = "PC 4471 Ó Súilleabháin";
        ev.payload = rich_payload(a);
    } else {
        ev.payload = shub_val_map();
    }
    return ev;
}

/* A signed head with every byte set (`full`) or the smallest legal values. */
static shub_signed_head_t sample_head(bool full)
{
    shub_signed_head_t h = {.seq = 1, .at_ms = 0};
    if (full) {
        h.seq = INT64_MAX;
        h.at_ms = 1718000000777;
        for (int i = 0; i < SHUB_HASH_SIZE; i++)
            h.head[i] = (uint8_t)(0xa0 + i);
        for (int i = 0; i < SHUB_SIGN_PUBLIC_SIZE; i++)
            h.key[i] = (uint8_t)(0x30 + i);
        for (int i = 0; i < SHUB_SIGNATURE_SIZE; i++)
            h.sig[i] = (uint8_t)(0xff - i);
    }
    return h;
}

/* A message of `type` with every optional field set (`full`) or none. Types
 * with no optional fields differ between the two only in values; batches
 * hold several items (`full`) or one. */
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
        m.receipt.list = full ? receipts_full : receipts_min;
        m.receipt.count = full ? 3 : 1;
        break;
    case SHUB_MSG_DELIVER:
        m.deliver.list = full ? deliveries_full : deliveries_min;
        m.deliver.count = full ? 2 : 1;
        break;
    case SHUB_MSG_ACK:
        m.ack.ids = full ? ids_full : ids_min;
        m.ack.count = full ? 3 : 1;
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
    case SHUB_MSG_UPDATE:
        m.update.list = full ? updates_full : updates_min;
        m.update.count = full ? 2 : 1;
        break;
    case SHUB_MSG_CONFIRM:
        m.confirm.upto = full ? INT64_MAX : 0; /* 0 is a value: nothing applied yet */
        break;
    case SHUB_MSG_CHECKPOINT:
        m.checkpoint = sample_head(full);
        break;
    case SHUB_MSG_WITNESS:
        m.witness = sample_head(full);
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
    assert_opt_str(a->actor, b->actor);
    assert_true(shub_val_equal(&a->payload, &b->payload));
}

static void assert_outcome_equal(const shub_outcome_item_t *x,
                                 const shub_outcome_item_t *y)
{
    assert_string_equal(x->to, y->to);
    assert_int_equal(x->outcome, y->outcome);
    assert_opt_str(x->reason, y->reason);
    assert_opt_str(x->detail, y->detail);
    assert_opt_str(x->agreement, y->agreement);
    assert_int_equal(x->version, y->version);
    assert_opt_str(x->flow, y->flow);
}

static void assert_head_equal(const shub_signed_head_t *a, const shub_signed_head_t *b)
{
    assert_int_equal(a->seq, b->seq);
    assert_memory_equal(a->head, b->head, SHUB_HASH_SIZE);
    assert_int_equal(a->at_ms, b->at_ms);
    assert_memory_equal(a->key, b->key, SHUB_SIGN_PUBLIC_SIZE);
    assert_memory_equal(a->sig, b->sig, SHUB_SIGNATURE_SIZE);
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
        assert_int_equal(a->receipt.count, b->receipt.count);
        for (uint32_t i = 0; i < a->receipt.count; i++) {
            const shub_receipt_t *x = &a->receipt.list[i], *y = &b->receipt.list[i];
            assert_id(&x->id, &y->id);
            assert_int_equal(x->duplicate, y->duplicate);
            assert_int_equal(x->count, y->count);
            for (uint32_t j = 0; j < x->count; j++)
                assert_outcome_equal(&x->items[j], &y->items[j]);
        }
        break;
    case SHUB_MSG_DELIVER:
        assert_int_equal(a->deliver.count, b->deliver.count);
        for (uint32_t i = 0; i < a->deliver.count; i++) {
            const shub_deliver_t *x = &a->deliver.list[i], *y = &b->deliver.list[i];
            assert_id(&x->id, &y->id);
            assert_string_equal(x->type, y->type);
            assert_string_equal(x->from, y->from);
            assert_string_equal(x->agreement, y->agreement);
            assert_int_equal(x->version, y->version);
            assert_string_equal(x->flow, y->flow);
            assert_int_equal(x->attempt, y->attempt);
            assert_int_equal(x->sealed_len, y->sealed_len);
            assert_memory_equal(x->sealed, y->sealed, x->sealed_len);
        }
        break;
    case SHUB_MSG_ACK:
        assert_int_equal(a->ack.count, b->ack.count);
        for (uint32_t i = 0; i < a->ack.count; i++)
            assert_id(&a->ack.ids[i], &b->ack.ids[i]);
        break;
    case SHUB_MSG_UPDATE:
        assert_int_equal(a->update.count, b->update.count);
        for (uint32_t i = 0; i < a->update.count; i++) {
            const shub_update_t *x = &a->update.list[i], *y = &b->update.list[i];
            assert_int_equal(x->seq, y->seq);
            assert_id(&x->id, &y->id);
            assert_outcome_equal(&x->item, &y->item);
        }
        break;
    case SHUB_MSG_CONFIRM:
        assert_int_equal(a->confirm.upto, b->confirm.upto);
        break;
    case SHUB_MSG_CHECKPOINT:
        assert_head_equal(&a->checkpoint, &b->checkpoint);
        break;
    case SHUB_MSG_WITNESS:
        assert_head_equal(&a->witness, &b->witness);
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

/* Decodes data and expects `code` at `path`; with `rule`, also that text. */
static void expect_decode_rule(const void *data, size_t size, int code, const char *path,
                               const char *rule)
{
    shub_msg_t *msg = NULL;
    shub_err_t err = {0};
    shub_err_clear(&err);
    int rc = shub_msg_decode(data, size, &msg, &err);
    if (rc == 0)
        shub_msg_destroy(&msg);
    expect_err(rc, &err, code, path);
    if (rule)
        assert_string_equal(err.msg, rule);
    assert_null(msg);
}

static void expect_decode(const void *data, size_t size, int code, const char *path)
{
    expect_decode_rule(data, size, code, path, NULL);
}

/* Encodes msg and expects `code` at `path`, and nothing in the buffer; with
 * `rule`, also that text. */
static void expect_encode_rule(const shub_msg_t *msg, int code, const char *path,
                               const char *rule)
{
    shub_buf_t buf = {0};
    shub_err_t err = {0};
    shub_err_clear(&err);
    int rc = shub_msg_encode(msg, &buf, &err);
    expect_err(rc, &err, code, path);
    if (rule)
        assert_string_equal(err.msg, rule);
    assert_int_equal(buf.len, 0);
    shub_buf_free(&buf);
}

static void expect_encode(const shub_msg_t *msg, int code, const char *path)
{
    expect_encode_rule(msg, code, path, NULL);
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

/* The batch messages: the key of each one's array, and its error path. */
static const struct {
    shub_msg_type_t type;
    const char *list, *path;
} batches[] = {
    {SHUB_MSG_RECEIPT, "receipts", "RECEIPT.receipts"},
    {SHUB_MSG_DELIVER, "deliveries", "DELIVER.deliveries"},
    {SHUB_MSG_ACK, "ids", "ACK.ids"},
    {SHUB_MSG_UPDATE, "updates", "UPDATE.updates"},
};
#define N_BATCHES (sizeof batches / sizeof batches[0])

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

typedef enum { KEEP, REPLACE, OMIT, TWICE } edit_t;

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

/* Appends the template's map to out with `key`'s value replaced by raw bytes
 * (added at the end if the template lacks it), the key left out, or the key
 * repeated; or, with KEEP, as it is. */
static void tpl_write(const tpl_t *t, const char *key, const void *raw, size_t len,
                      edit_t how, msgpack_sbuffer *out)
{
    int found = -1;
    for (int i = 0; how != KEEP && i < t->n; i++)
        if (strcmp(t->f[i].key, key) == 0)
            found = i;
    uint32_t n = (uint32_t)t->n;
    if (how == OMIT || how == TWICE)
        assert_true(found >= 0);
    if (how == OMIT)
        n--;
    else if (how == TWICE || (how == REPLACE && found < 0))
        n++;
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

/* A new buffer holding the template with one edit (tpl_write). */
static void tpl_build(const tpl_t *t, const char *key, const void *raw, size_t len,
                      edit_t how, msgpack_sbuffer *out)
{
    msgpack_sbuffer_init(out);
    tpl_write(t, key, raw, len, how, out);
}

/* The raw value of `key` in t; fails the test if t lacks it. */
static const msgpack_object *tpl_array(const tpl_t *t, const char *key,
                                       msgpack_unpacked *up)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->f[i].key, key) == 0) {
            msgpack_unpacked_init(up);
            assert_int_equal(
                msgpack_unpack_next(up, (const char *)t->f[i].raw, t->f[i].len, NULL),
                MSGPACK_UNPACK_SUCCESS);
            assert_int_equal(up->data.type, MSGPACK_OBJECT_ARRAY);
            return &up->data;
        }
    fail_msg("template has no \"%s\"", key);
    return NULL;
}

/* A new buffer holding the array under `list` in t with `n` items: item i is
 * the template's item (i modulo its count), and item `index` carries one edit
 * (tpl_write) of `key`. With n 0, the template's own count. */
static void list_build(const tpl_t *t, const char *list, uint32_t n, uint32_t index,
                       const char *key, const void *raw, size_t len, edit_t how,
                       msgpack_sbuffer *out)
{
    msgpack_unpacked up;
    const msgpack_object *arr = tpl_array(t, list, &up);
    uint32_t have = arr->via.array.size;
    assert_true(have > 0);
    if (n == 0)
        n = have;
    msgpack_sbuffer_init(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *item = &arr->via.array.ptr[i % have];
        if (i != index || how == KEEP) {
            msgpack_pack_object(&pk, *item);
            continue;
        }
        msgpack_sbuffer one;
        msgpack_sbuffer_init(&one);
        msgpack_packer opk;
        msgpack_packer_init(&opk, &one, msgpack_sbuffer_write);
        msgpack_pack_object(&opk, *item);
        tpl_t *it = malloc(sizeof *it);
        assert_non_null(it);
        tpl_from_bytes(it, one.data, one.size);
        tpl_write(it, key, raw, len, how, out);
        free(it);
        msgpack_sbuffer_destroy(&one);
    }
    msgpack_unpacked_destroy(&up);
}

/* The template of item `index` of the array under `list` in t. */
static void tpl_item(const tpl_t *t, const char *list, uint32_t index, tpl_t *item)
{
    msgpack_unpacked up;
    const msgpack_object *arr = tpl_array(t, list, &up);
    assert_true(index < arr->via.array.size);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, arr->via.array.ptr[index]);
    tpl_from_bytes(item, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&up);
}

static tpl_t templates[SHUB_MSG_TYPE_LAST + 1];     /* every optional field present */
static tpl_t templates_min[SHUB_MSG_TYPE_LAST + 1]; /* none present */

static int setup_templates(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    for (int t = SHUB_MSG_HELLO; t <= SHUB_MSG_TYPE_LAST; t++) {
        shub_msg_t m = sample((shub_msg_type_t)t, true, a);
        tpl_from_msg(&templates[t], &m);
        m = sample((shub_msg_type_t)t, false, a);
        tpl_from_msg(&templates_min[t], &m);
    }
    shub_arena_destroy(&a);
    return 0;
}

/* Decodes a template with one edit and checks the outcome; with `rule`, its
 * text too. */
static void expect_edit_rule(const tpl_t *t, const char *key, const void *raw, size_t len,
                             edit_t how, int code, const char *path, const char *rule)
{
    msgpack_sbuffer sb;
    tpl_build(t, key, raw, len, how, &sb);
    expect_decode_rule(sb.data, sb.size, code, path, rule);
    msgpack_sbuffer_destroy(&sb);
}

static void expect_edit(const tpl_t *t, const char *key, const void *raw, size_t len,
                        edit_t how, int code, const char *path)
{
    expect_edit_rule(t, key, raw, len, how, code, path, NULL);
}

/* Packs the msgpack text s into a new buffer. */
static void packed_text(const char *s, msgpack_sbuffer *sb)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_str_with_body(&pk, s, strlen(s));
}

/* Same, with the new value a msgpack text. */
static void expect_edit_text(const tpl_t *t, const char *key, const char *s, int code,
                             const char *path)
{
    msgpack_sbuffer sb;
    packed_text(s, &sb);
    expect_edit(t, key, sb.data, sb.size, REPLACE, code, path);
    msgpack_sbuffer_destroy(&sb);
}

/* Decodes t with item `index` of its array `list` edited (list_build, the
 * template's own count of items) and checks the outcome, and with `rule`
 * its text. */
static void expect_item_edit(const tpl_t *t, const char *list, uint32_t index,
                             const char *key, const void *raw, size_t len, edit_t how,
                             int code, const char *path, const char *rule)
{
    msgpack_sbuffer sb;
    list_build(t, list, 0, index, key, raw, len, how, &sb);
    expect_edit_rule(t, list, sb.data, sb.size, REPLACE, code, path, rule);
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
ROUND_TRIP_TESTS(update, SHUB_MSG_UPDATE)
ROUND_TRIP_TESTS(confirm, SHUB_MSG_CONFIRM)
ROUND_TRIP_TESTS(checkpoint, SHUB_MSG_CHECKPOINT)
ROUND_TRIP_TESTS(witness, SHUB_MSG_WITNESS)

static void test_shub_msg_encode_absent_optionals_are_not_written(void **state)
{
    (void)state;
    /* the encoder writes only the fields present: "v", "type" and required ones */
    static const int fields_min[] = {
        [SHUB_MSG_HELLO] = 2,     [SHUB_MSG_WELCOME] = 7, [SHUB_MSG_SHARE] = 11,
        [SHUB_MSG_RECEIPT] = 3,   [SHUB_MSG_DELIVER] = 3, [SHUB_MSG_ACK] = 3,
        [SHUB_MSG_HEARTBEAT] = 2, [SHUB_MSG_ERROR] = 4,   [SHUB_MSG_BYE] = 2,
        [SHUB_MSG_UPDATE] = 3,    [SHUB_MSG_CONFIRM] = 3, [SHUB_MSG_CHECKPOINT] = 7,
        [SHUB_MSG_WITNESS] = 7,
    };
    static const int fields_full[] = {
        [SHUB_MSG_HELLO] = 4,     [SHUB_MSG_WELCOME] = 8, [SHUB_MSG_SHARE] = 17,
        [SHUB_MSG_RECEIPT] = 3,   [SHUB_MSG_DELIVER] = 3, [SHUB_MSG_ACK] = 3,
        [SHUB_MSG_HEARTBEAT] = 3, [SHUB_MSG_ERROR] = 5,   [SHUB_MSG_BYE] = 3,
        [SHUB_MSG_UPDATE] = 3,    [SHUB_MSG_CONFIRM] = 3, [SHUB_MSG_CHECKPOINT] = 7,
        [SHUB_MSG_WITNESS] = 7,
    };
    for (int t = SHUB_MSG_HELLO; t <= SHUB_MSG_TYPE_LAST; t++) {
        assert_int_equal(templates_min[t].n, fields_min[t]);
        assert_int_equal(templates[t].n, fields_full[t]);
    }
    assert_string_equal(templates_min[SHUB_MSG_HELLO].f[0].key, "v");
    assert_string_equal(templates_min[SHUB_MSG_HELLO].f[1].key, "type");

    /* inside batches too: an item's absent optionals are not written */
    static const struct {
        shub_msg_type_t type;
        const char *list;
        uint32_t index;
        int fields; /* in that item of the full sample */
    } items[] = {
        {SHUB_MSG_RECEIPT, "receipts", 0, 3}, /* id, duplicate, outcomes */
        {SHUB_MSG_RECEIPT, "receipts", 1, 2}, /* id, outcomes (empty) */
        {SHUB_MSG_DELIVER, "deliveries", 1, 8},
        {SHUB_MSG_UPDATE, "updates", 0, 7}, /* seq, id, to, outcome, agreement... */
        {SHUB_MSG_UPDATE, "updates", 1, 9}, /* ... and reason, detail */
    };
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        tpl_t *item = malloc(sizeof *item);
        assert_non_null(item);
        tpl_item(&templates[items[i].type], items[i].list, items[i].index, item);
        assert_int_equal(item->n, items[i].fields);
        free(item);
    }
    tpl_t *item = malloc(sizeof *item);
    assert_non_null(item);
    tpl_item(&templates_min[SHUB_MSG_UPDATE], "updates", 0, item);
    assert_int_equal(item->n, 4); /* seq, id, to, outcome */
    assert_string_equal(item->f[0].key, "seq");
    assert_string_equal(item->f[3].key, "outcome");
    tpl_item(&templates[SHUB_MSG_RECEIPT], "receipts", 0, item);
    tpl_item(item, "outcomes", 3, item); /* "bcc": to and outcome only */
    assert_int_equal(item->n, 2);
    free(item);
}

static void test_shub_msg_encode_exact_bytes(void **state)
{
    (void)state;
    shub_msg_t m = {.type = SHUB_MSG_HELLO};
    shub_buf_t buf = {0};
    assert_int_equal(shub_msg_encode(&m, &buf, NULL), 0);
    static const uint8_t hello[] = {0x82, 0xa1, 'v', 0x02, 0xa4, 't', 'y', 'p',
                                    'e',  0xa5, 'H', 'E',  'L',  'L', 'O'};
    assert_int_equal(buf.len, sizeof hello);
    assert_memory_equal(buf.data, hello, sizeof hello);

    /* a required 0 is written: CONFIRM upto 0 says no update was applied */
    m = (shub_msg_t){.type = SHUB_MSG_CONFIRM};
    assert_int_equal(shub_msg_encode(&m, &buf, NULL), 0);
    static const uint8_t confirm[] = {0x83, 0xa1, 'v', 0x02, 0xa4, 't', 'y', 'p',
                                      'e',  0xa7, 'C', 'O',  'N',  'F', 'I', 'R',
                                      'M',  0xa4, 'u', 'p',  't',  'o', 0x00};
    assert_int_equal(buf.len, sizeof confirm);
    assert_memory_equal(buf.data, confirm, sizeof confirm);

    /* ACK: one id, in an array */
    shub_id_t one = id_a;
    m = (shub_msg_t){.type = SHUB_MSG_ACK, .ack = {&one, 1}};
    assert_int_equal(shub_msg_encode(&m, &buf, NULL), 0);
    static const uint8_t ack_head[] = {0x83, 0xa1, 'v',  0x02, 0xa4, 't', 'y',
                                       'p',  'e',  0xa3, 'A',  'C',  'K', 0xa3,
                                       'i',  'd',  's',  0x91, 0xc4, 0x10};
    assert_int_equal(buf.len, sizeof ack_head + SHUB_ID_SIZE);
    assert_memory_equal(buf.data, ack_head, sizeof ack_head);
    assert_memory_equal(buf.data + sizeof ack_head, id_a.bytes, SHUB_ID_SIZE);
    shub_buf_free(&buf);
}

static void test_shub_msg_decode_receipt_no_outcomes_round_trips(void **state)
{
    (void)state;
    shub_receipt_t r = receipts_min[0];
    r.items = outcomes_min; /* non-NULL with count 0: an empty array */
    r.count = 0;
    shub_msg_t m = {.type = SHUB_MSG_RECEIPT, .receipt = {&r, 1}};
    round_trip(&m);
    /* the template's second receipt is such a one, and decodes */
    tpl_t *item = malloc(sizeof *item);
    assert_non_null(item);
    tpl_item(&templates[SHUB_MSG_RECEIPT], "receipts", 1, item);
    assert_int_equal(item->f[1].len, 1);
    assert_int_equal(item->f[1].raw[0], 0x90);
    free(item);
}

static void test_shub_msg_decode_required_zero_numbers_round_trip(void **state)
{
    (void)state;
    /* 0 is a value for a required number, not an absence */
    shub_msg_t m = sample(SHUB_MSG_WELCOME, false, NULL);
    m.welcome.heartbeat_ms = 0;
    m.welcome.time_ms = 0;
    round_trip(&m);
    shub_deliver_t d = deliveries_min[0];
    d.version = 0;
    d.attempt = 0;
    m = (shub_msg_t){.type = SHUB_MSG_DELIVER, .deliver = {&d, 1}};
    round_trip(&m);
    m = sample(SHUB_MSG_CONFIRM, false, NULL);
    assert_int_equal(m.confirm.upto, 0);
    round_trip(&m);
    shub_signed_head_t h = sample_head(false); /* at 0: the epoch, still a time */
    m = (shub_msg_t){.type = SHUB_MSG_CHECKPOINT, .checkpoint = h};
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
         RAW("\x81\xa1" "v" "\x02"),
         SHUB_EMISSING, "message.type"},
        {"v is text",
         RAW("\x82\xa1" "v" "\xa1" "1" "\xa4" "type" "\xa3" "BYE"),
         SHUB_ETYPE, "BYE.v"},
        {"v is 1: a version 1 peer",
         RAW("\x82\xa1" "v" "\x01" "\xa4" "type" "\xa3" "BYE"),
         SHUB_EVERSION, "BYE.v"},
        {"v is 3",
         RAW("\x82\xa1" "v" "\x03" "\xa4" "type" "\xa3" "BYE"),
         SHUB_EVERSION, "BYE.v"},
        {"v is 2 as a uint16",
         RAW("\x83\xa1" "v" "\xcd\x00\x02" "\xa4" "type" "\xa7" "CONFIRM"
             "\xa4" "upto" "\x00"),
         0, ""},
        {"v is 0",
         RAW("\x82\xa1" "v" "\x00" "\xa4" "type" "\xa3" "BYE"),
         SHUB_EVERSION, "BYE.v"},
        {"v is -1",
         RAW("\x82\xa1" "v" "\xff" "\xa4" "type" "\xa3" "BYE"),
         SHUB_EVERSION, "BYE.v"},
        {"v is 1, type unknown",
         RAW("\x82\xa1" "v" "\x01" "\xa4" "type" "\xa3" "XYZ"),
         SHUB_EVERSION, "message.v"},
        {"type unknown",
         RAW("\x82\xa1" "v" "\x02" "\xa4" "type" "\xa4" "PING"),
         SHUB_EUNKNOWN, "message.type"},
        {"type lowercase",
         RAW("\x82\xa1" "v" "\x02" "\xa4" "type" "\xa3" "bye"),
         SHUB_EUNKNOWN, "message.type"},
        {"type is an integer",
         RAW("\x82\xa1" "v" "\x02" "\xa4" "type" "\x09"),
         SHUB_ETYPE, "message.type"},
        {"type repeated",
         RAW("\x83\xa1" "v" "\x02" "\xa4" "type" "\xa3" "BYE" "\xa4" "type" "\xa3" "BYE"),
         SHUB_EDUPKEY, "BYE"},
        {"trailing byte",
         RAW("\x82\xa1" "v" "\x02" "\xa4" "type" "\xa3" "BYE" "\x00"),
         SHUB_EMALFORMED, "BYE"},
        {"two messages back to back",
         RAW("\x82\xa1" "v" "\x02" "\xa4" "type" "\xa3" "BYE"
             "\x82\xa1" "v" "\x02" "\xa4" "type" "\xa3" "BYE"),
         SHUB_EMALFORMED, "BYE"},
        {"uint64 above INT64_MAX",
         RAW("\x81\xa1" "v" "\xcf\x80\x00\x00\x00\x00\x00\x00\x00"),
         SHUB_ELIMIT, "message.v"},
        {"a new type with v 2",
         RAW("\x82\xa1" "v" "\x02" "\xa4" "type" "\xa7" "CONFIRM"),
         SHUB_EMISSING, "CONFIRM.upto"},
        {"a v2 type lowercase",
         RAW("\x82\xa1" "v" "\x02" "\xa4" "type" "\xa7" "witness"),
         SHUB_EUNKNOWN, "message.type"},
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
        assert_true(rc == 0 ? msg != NULL : msg == NULL);
        shub_msg_destroy(&msg);
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
    for (int t = SHUB_MSG_HELLO; t <= SHUB_MSG_TYPE_LAST; t++) {
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
    /* actor (v2): a ref, optional */
    expect_edit(t, "actor", NULL, 0, OMIT, 0, "");
    expect_edit_text(t, "actor", "", SHUB_EVALUE, "SHARE.actor");
    expect_edit_text(t, "actor", "PC\t4471", SHUB_EVALUE, "SHARE.actor");
    expect_edit(t, "actor", RAW("\x11"), REPLACE, SHUB_ETYPE, "SHARE.actor");
    expect_edit(t, "actor",
                RAW("\xc4\x02" "PC"),
                REPLACE, SHUB_ETYPE, "SHARE.actor");
    expect_edit(t, "actor", RAW("\xa3\xe2\x82\x28"), REPLACE, SHUB_EUTF8, "SHARE.actor");
    expect_edit(t, "actor", NULL, 0, TWICE, SHUB_EDUPKEY, "SHARE");
    expect_edit_text(templates_min + SHUB_MSG_SHARE, "actor", "PC 4471", 0, "");
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
    expect_edit_rule(t, "v", RAW("\x01"), REPLACE, SHUB_EVERSION, "SHARE.v",
                     "protocol version 1 not supported (this side speaks 2)");
    expect_edit(t, "v", RAW("\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"), REPLACE, SHUB_ETYPE,
                "SHARE.v");
}
/* clang-format on */

/* Byte strings below keep one msgpack value per literal, a message per line. */
/* clang-format off */
static void test_shub_msg_decode_other_types_field_errors_exact(void **state)
{
    (void)state;
    const tpl_t *w = &templates[SHUB_MSG_WELCOME];
    expect_edit(w, "heartbeat_ms", NULL, 0, OMIT, SHUB_EMISSING, "WELCOME.heartbeat_ms");
    expect_edit(w, "time", RAW("\xd1\xff\x00"), REPLACE, SHUB_EVALUE, "WELCOME.time");
    expect_edit(w, "window",
                RAW("\xa2" "64"),
                REPLACE, SHUB_ETYPE, "WELCOME.window");
    expect_edit(w, "max_bytes", RAW("\xcf\x00\x00\x00\x01\x00\x00\x00\x00"), REPLACE,
                SHUB_ELIMIT, "WELCOME.max_bytes");

    const tpl_t *e = &templates[SHUB_MSG_ERROR];
    expect_edit(e, "code", NULL, 0, OMIT, SHUB_EMISSING, "ERROR.code");
    expect_edit(e, "id",
                RAW("\xc4\x08" "01234567"),
                REPLACE, SHUB_EVALUE, "ERROR.id");
    expect_edit(e, "message", RAW("\xa0"), REPLACE, 0, ""); /* a line may be empty */

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

/* Every batch's array: wrong type, empty, an item that is not what it should
 * be, missing; each with its exact path and rule. */
static void test_shub_msg_decode_batch_arrays_exact(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_BATCHES; i++) {
        const tpl_t *t = &templates[batches[i].type];
        const char *list = batches[i].list, *path = batches[i].path;
        char item[64];
        snprintf(item, sizeof item, "%s[0]", path);
        expect_edit_rule(t, list, NULL, 0, OMIT, SHUB_EMISSING, path,
                         "required field missing");
        expect_edit_rule(t, list, RAW("\x90"), REPLACE, SHUB_EVALUE, path, "no items");
        expect_edit_rule(t, list, RAW("\x80"), REPLACE, SHUB_ETYPE, path, "expected an array");
        expect_edit(t, list, RAW("\xc0"), REPLACE, SHUB_ETYPE, path);
        expect_edit(t, list, RAW("\x91\xc0"), REPLACE, SHUB_ETYPE, item);
        expect_edit(t, list, NULL, 0, TWICE, SHUB_EDUPKEY, shub_msg_type_name(batches[i].type));
        /* the template's own items, in a longer batch, still decode */
        msgpack_sbuffer sb;
        list_build(t, list, 40, 0, NULL, NULL, 0, KEEP, &sb);
        expect_edit(t, list, sb.data, sb.size, REPLACE, 0, "");
        msgpack_sbuffer_destroy(&sb);
    }
    /* a version 1 body marked version 2: the old keys are unknown (ignored),
     * the batch is missing */
    expect_decode(RAW("\x83\xa1" "v" "\x02" "\xa4" "type" "\xa3" "ACK"
                      "\xa2" "id" "\xc4\x10" "0123456789abcdef"),
                  SHUB_EMISSING, "ACK.ids");
    expect_decode(RAW("\x84\xa1" "v" "\x02" "\xa4" "type" "\xa7" "RECEIPT"
                      "\xa2" "id" "\xc4\x10" "0123456789abcdef"
                      "\xa8" "outcomes" "\x90"),
                  SHUB_EMISSING, "RECEIPT.receipts");
}
/* clang-format on */

/* Byte strings below keep one msgpack value per literal, a message per line. */
/* clang-format off */
static void test_shub_msg_decode_receipt_items_exact(void **state)
{
    (void)state;
    const tpl_t *r = &templates[SHUB_MSG_RECEIPT];
    expect_item_edit(r, "receipts", 1, "id", NULL, 0, OMIT, SHUB_EMISSING,
                     "RECEIPT.receipts[1].id", "required field missing");
    expect_item_edit(r, "receipts", 2, "id",
                     RAW("\xc4\x0c" "0123456789ab"),
                     REPLACE, SHUB_EVALUE, "RECEIPT.receipts[2].id",
                     "id of 12 bytes, expected 16");
    expect_item_edit(r, "receipts", 0, "id", ID_TEXT_RAW, 17, REPLACE, SHUB_ETYPE,
                     "RECEIPT.receipts[0].id", "expected 16 bytes of binary");
    expect_item_edit(r, "receipts", 0, "duplicate", RAW("\x01"), REPLACE, SHUB_ETYPE,
                     "RECEIPT.receipts[0].duplicate", "expected true or false");
    expect_item_edit(r, "receipts", 1, "duplicate", RAW("\xc2"), REPLACE, 0, "", NULL);
    expect_item_edit(r, "receipts", 2, "outcomes", NULL, 0, OMIT, SHUB_EMISSING,
                     "RECEIPT.receipts[2].outcomes", NULL);
    expect_item_edit(r, "receipts", 2, "outcomes", RAW("\xa0"), REPLACE, SHUB_ETYPE,
                     "RECEIPT.receipts[2].outcomes", NULL);
    expect_item_edit(r, "receipts", 0, "outcomes", RAW("\x91\x07"), REPLACE, SHUB_ETYPE,
                     "RECEIPT.receipts[0].outcomes[0]", "expected a map");
    /* the version 1 `update` flag is an unknown key now: ignored */
    expect_item_edit(r, "receipts", 0, "update", RAW("\xc3"), REPLACE, 0, "", NULL);
    expect_item_edit(r, "receipts", 0, "id", NULL, 0, TWICE, SHUB_EDUPKEY,
                     "RECEIPT.receipts[0]", "duplicate key \"id\"");

    /* outcome items, one level further down */
    static const struct {
        uint32_t outcome;
        const char *key;
        const char *raw;
        size_t len;
        edit_t how;
        int code;
        const char *path;
    } cases[] = {
        {1, "outcome", RAW("\xa4" "lost"), REPLACE, SHUB_EVALUE,
         "RECEIPT.receipts[0].outcomes[1].outcome"},
        {0, "to", NULL, 0, OMIT, SHUB_EMISSING, "RECEIPT.receipts[0].outcomes[0].to"},
        {4, "outcome", NULL, 0, OMIT, SHUB_EMISSING,
         "RECEIPT.receipts[0].outcomes[4].outcome"},
        {0, "to", RAW("\xa7" "Bad Org"), REPLACE, SHUB_EVALUE,
         "RECEIPT.receipts[0].outcomes[0].to"},
        {3, "to", RAW("\xa9" "@solihull"), REPLACE, 0, ""}, /* a selector, named as sent */
        {1, "version", RAW("\xff"), REPLACE, SHUB_EVALUE,
         "RECEIPT.receipts[0].outcomes[1].version"},
        {1, "version", RAW("\xcf\x00\x00\x00\x01\x00\x00\x00\x00"), REPLACE, SHUB_ELIMIT,
         "RECEIPT.receipts[0].outcomes[1].version"},
        {1, "detail", RAW("\xa3" "a\tb"), REPLACE, SHUB_EVALUE,
         "RECEIPT.receipts[0].outcomes[1].detail"},
        {1, "reason", RAW("\xa3" "A-B"), REPLACE, SHUB_EVALUE,
         "RECEIPT.receipts[0].outcomes[1].reason"},
        {2, "flow", RAW("\x01"), REPLACE, SHUB_ETYPE, "RECEIPT.receipts[0].outcomes[2].flow"},
        {2, "later", RAW("\x01"), REPLACE, 0, ""}, /* unknown keys are ignored here too */
    };
    tpl_t *receipt = malloc(sizeof *receipt);
    assert_non_null(receipt);
    tpl_item(r, "receipts", 0, receipt);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msgpack_sbuffer outcomes;
        list_build(receipt, "outcomes", 0, cases[i].outcome, cases[i].key, cases[i].raw,
                   cases[i].len, cases[i].how, &outcomes);
        expect_item_edit(r, "receipts", 0, "outcomes", outcomes.data, outcomes.size,
                         REPLACE, cases[i].code, cases[i].path, NULL);
        msgpack_sbuffer_destroy(&outcomes);
    }
    /* the path names each level: the fourth receipt's first outcome */
    msgpack_sbuffer outcomes, receipts;
    list_build(receipt, "outcomes", 0, 0, "to", RAW("\xa1" "-"), REPLACE, &outcomes);
    tpl_build(receipt, "outcomes", outcomes.data, outcomes.size, REPLACE, &receipts);
    msgpack_sbuffer list;
    msgpack_sbuffer_init(&list);
    msgpack_sbuffer_write(&list, "\x94", 1);
    for (int i = 0; i < 3; i++)
        tpl_write(receipt, NULL, NULL, 0, KEEP, &list);
    msgpack_sbuffer_write(&list, receipts.data, receipts.size);
    expect_edit_rule(r, "receipts", list.data, list.size, REPLACE, SHUB_EVALUE,
                     "RECEIPT.receipts[3].outcomes[0].to", "not an org id, @area or kind@area");
    msgpack_sbuffer_destroy(&list);
    msgpack_sbuffer_destroy(&receipts);
    msgpack_sbuffer_destroy(&outcomes);
    free(receipt);
}

static void test_shub_msg_decode_deliver_items_exact(void **state)
{
    (void)state;
    const tpl_t *d = &templates[SHUB_MSG_DELIVER];
    static const char *const required[] = {"id",   "event",   "from",   "agreement",
                                           "version", "flow", "attempt", "sealed"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "DELIVER.deliveries[1].%s", required[i]);
        expect_item_edit(d, "deliveries", 1, required[i], NULL, 0, OMIT, SHUB_EMISSING, path,
                         "required field missing");
    }
    expect_item_edit(d, "deliveries", 1, "sealed", RAW("\xc4\x00"), REPLACE, SHUB_EVALUE,
                     "DELIVER.deliveries[1].sealed", "empty binary");
    expect_item_edit(d, "deliveries", 0, "sealed",
                     RAW("\xa3" "abc"),
                     REPLACE, SHUB_ETYPE, "DELIVER.deliveries[0].sealed", "expected binary");
    expect_item_edit(d, "deliveries", 0, "from",
                     RAW("\xa4" "W M "),
                     REPLACE, SHUB_EVALUE, "DELIVER.deliveries[0].from", NULL);
    expect_item_edit(d, "deliveries", 1, "id",
                     RAW("\xc4\x11" "0123456789abcdefg"),
                     REPLACE, SHUB_EVALUE, "DELIVER.deliveries[1].id",
                     "id of 17 bytes, expected 16");
    expect_item_edit(d, "deliveries", 1, "attempt", RAW("\xff"), REPLACE, SHUB_EVALUE,
                     "DELIVER.deliveries[1].attempt", "negative where unsigned expected");
    expect_item_edit(d, "deliveries", 0, "version", RAW("\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"),
                     REPLACE, SHUB_ETYPE, "DELIVER.deliveries[0].version", NULL);
    expect_item_edit(d, "deliveries", 0, "event", RAW("\xa0"), REPLACE, SHUB_EVALUE,
                     "DELIVER.deliveries[0].event", NULL);
    expect_item_edit(d, "deliveries", 1, "flow", NULL, 0, TWICE, SHUB_EDUPKEY,
                     "DELIVER.deliveries[1]", NULL);
}

static void test_shub_msg_decode_ack_ids_exact(void **state)
{
    (void)state;
    const tpl_t *a = &templates[SHUB_MSG_ACK];
    expect_edit_rule(a, "ids",
                     RAW("\x93\xc4\x10" "0123456789abcdef" "\xc4\x10" "0123456789abcdef"
                         "\xc4\x0c" "0123456789ab"),
                     REPLACE, SHUB_EVALUE, "ACK.ids[2]", "id of 12 bytes, expected 16");
    expect_edit_rule(a, "ids",
                     RAW("\x92\xc4\x10" "0123456789abcdef" "\xb0" "0123456789abcdef"),
                     REPLACE, SHUB_ETYPE, "ACK.ids[1]", "expected 16 bytes of binary");
    expect_edit(a, "ids",
                RAW("\x91\xc4\x11" "0123456789abcdefg"),
                REPLACE, SHUB_EVALUE, "ACK.ids[0]");
    expect_edit(a, "ids", RAW("\x91\xc4\x00"), REPLACE, SHUB_EVALUE, "ACK.ids[0]");
    expect_edit(a, "ids", RAW("\x91\x90"), REPLACE, SHUB_ETYPE, "ACK.ids[0]");
    /* a bare id where the array belongs, as version 1 sent it */
    expect_edit_rule(a, "ids",
                     RAW("\xc4\x10" "0123456789abcdef"),
                     REPLACE, SHUB_ETYPE, "ACK.ids", "expected an array");
    /* the same id twice is the receiver's business, not the codec's */
    expect_edit(a, "ids",
                RAW("\x92\xc4\x10" "0123456789abcdef" "\xc4\x10" "0123456789abcdef"),
                REPLACE, 0, "");
}

static void test_shub_msg_decode_update_items_exact(void **state)
{
    (void)state;
    const tpl_t *u = &templates[SHUB_MSG_UPDATE];
    expect_item_edit(u, "updates", 0, "seq", RAW("\x00"), REPLACE, SHUB_EVALUE,
                     "UPDATE.updates[0].seq", "expected an integer >= 1");
    expect_item_edit(u, "updates", 0, "seq", RAW("\xff"), REPLACE, SHUB_EVALUE,
                     "UPDATE.updates[0].seq", "expected an integer >= 1");
    expect_item_edit(u, "updates", 1, "seq", RAW("\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
                     REPLACE, SHUB_EVALUE, "UPDATE.updates[1].seq", NULL);
    expect_item_edit(u, "updates", 1, "seq",
                     RAW("\xa2" "41"),
                     REPLACE, SHUB_ETYPE, "UPDATE.updates[1].seq", "expected an integer >= 1");
    expect_item_edit(u, "updates", 0, "seq", RAW("\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"),
                     REPLACE, SHUB_ETYPE, "UPDATE.updates[0].seq", NULL);
    expect_item_edit(u, "updates", 0, "seq", RAW("\xcf\x80\x00\x00\x00\x00\x00\x00\x00"),
                     REPLACE, SHUB_ELIMIT, "UPDATE.updates[0].seq", NULL);
    expect_item_edit(u, "updates", 1, "seq", NULL, 0, OMIT, SHUB_EMISSING,
                     "UPDATE.updates[1].seq", NULL);
    expect_item_edit(u, "updates", 0, "seq", RAW("\x01"), REPLACE, 0, "", NULL);
    expect_item_edit(u, "updates", 1, "id", NULL, 0, OMIT, SHUB_EMISSING,
                     "UPDATE.updates[1].id", NULL);
    expect_item_edit(u, "updates", 1, "id",
                     RAW("\xc4\x08" "01234567"),
                     REPLACE, SHUB_EVALUE, "UPDATE.updates[1].id", "id of 8 bytes, expected 16");
    /* the outcome item's fields, and its rules, in the update's own map */
    expect_item_edit(u, "updates", 0, "to", NULL, 0, OMIT, SHUB_EMISSING,
                     "UPDATE.updates[0].to", NULL);
    expect_item_edit(u, "updates", 0, "outcome", NULL, 0, OMIT, SHUB_EMISSING,
                     "UPDATE.updates[0].outcome", NULL);
    expect_item_edit(u, "updates", 1, "outcome",
                     RAW("\xa4" "lost"),
                     REPLACE, SHUB_EVALUE, "UPDATE.updates[1].outcome", NULL);
    expect_item_edit(u, "updates", 1, "to",
                     RAW("\xa5" "a@b@c"),
                     REPLACE, SHUB_EVALUE, "UPDATE.updates[1].to", NULL);
    expect_item_edit(u, "updates", 1, "reason",
                     RAW("\xa3" "Max"),
                     REPLACE, SHUB_EVALUE, "UPDATE.updates[1].reason", NULL);
    expect_item_edit(u, "updates", 1, "detail",
                     RAW("\xa3" "a\x7f" "b"),
                     REPLACE, SHUB_EVALUE, "UPDATE.updates[1].detail", NULL);
    expect_item_edit(u, "updates", 0, "version", RAW("\xff"), REPLACE, SHUB_EVALUE,
                     "UPDATE.updates[0].version", NULL);
    expect_item_edit(u, "updates", 0, "flow", RAW("\xc3"), REPLACE, SHUB_ETYPE,
                     "UPDATE.updates[0].flow", NULL);
    expect_item_edit(u, "updates", 0, "agreement", NULL, 0, OMIT, 0, "", NULL);
    expect_item_edit(u, "updates", 0, "later", RAW("\xc0"), REPLACE, 0, "", NULL);
    expect_item_edit(u, "updates", 0, "to", NULL, 0, TWICE, SHUB_EDUPKEY,
                     "UPDATE.updates[0]", NULL);
}

static void test_shub_msg_decode_confirm_and_signed_heads_exact(void **state)
{
    (void)state;
    const tpl_t *c = &templates[SHUB_MSG_CONFIRM];
    expect_edit_rule(c, "upto", NULL, 0, OMIT, SHUB_EMISSING, "CONFIRM.upto",
                     "required field missing");
    expect_edit_rule(c, "upto", RAW("\xff"), REPLACE, SHUB_EVALUE, "CONFIRM.upto",
                     "expected an integer >= 0");
    expect_edit_rule(c, "upto", RAW("\xc0"), REPLACE, SHUB_ETYPE, "CONFIRM.upto",
                     "expected an integer >= 0");
    expect_edit(c, "upto", RAW("\xc3"), REPLACE, SHUB_ETYPE, "CONFIRM.upto");
    expect_edit(c, "upto", RAW("\x00"), REPLACE, 0, "");
    expect_edit(c, "upto", RAW("\xcf\x7f\xff\xff\xff\xff\xff\xff\xff"), REPLACE, 0, "");

    for (int type = SHUB_MSG_CHECKPOINT; type <= SHUB_MSG_WITNESS; type++) {
        const tpl_t *t = &templates[type];
        const char *name = shub_msg_type_name((shub_msg_type_t)type);
        static const struct {
            const char *key;
            const char *raw;
            size_t len;
            int code;
            const char *rule;
        } cases[] = {
            {"seq", RAW("\x00"), SHUB_EVALUE, "expected an integer >= 1"},
            {"seq", RAW("\xfb"), SHUB_EVALUE, "expected an integer >= 1"},
            {"seq", RAW("\xa1" "1"), SHUB_ETYPE, "expected an integer >= 1"},
            {"head",
             RAW("\xc4\x1f" "0123456789abcdef0123456789abcde"),
             SHUB_EVALUE, "binary of 31 bytes, expected 32"},
            {"head",
             RAW("\xc4\x21" "0123456789abcdef0123456789abcdef0"),
             SHUB_EVALUE, "binary of 33 bytes, expected 32"},
            {"head",
             RAW("\xa2" "ab"),
             SHUB_ETYPE, "expected 32 bytes of binary"},
            {"at", RAW("\xff"), SHUB_EVALUE, "time before 1970"},
            {"at", RAW("\xc2"), SHUB_ETYPE, "expected an integer (ms since 1970)"},
            {"key", RAW("\xc4\x00"), SHUB_EVALUE, "binary of 0 bytes, expected 32"},
            {"key", RAW("\x90"), SHUB_ETYPE, "expected 32 bytes of binary"},
            {"sig",
             RAW("\xc4\x3f" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"),
             SHUB_EVALUE, "binary of 63 bytes, expected 64"},
            {"sig",
             RAW("\xc4\x20" "0123456789abcdef0123456789abcdef"),
             SHUB_EVALUE, "binary of 32 bytes, expected 64"},
            {"sig", RAW("\x01"), SHUB_ETYPE, "expected 64 bytes of binary"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char path[64];
            snprintf(path, sizeof path, "%s.%s", name, cases[i].key);
            expect_edit_rule(t, cases[i].key, cases[i].raw, cases[i].len, REPLACE,
                             cases[i].code, path, cases[i].rule);
            expect_edit(t, cases[i].key, NULL, 0, OMIT, SHUB_EMISSING, path);
        }
        expect_edit(t, "sig", NULL, 0, TWICE, SHUB_EDUPKEY, name);
        expect_edit(t, "signer", RAW("\xa3" "wmp"), REPLACE, 0, "");
    }
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

/* Both sides refuse a repeated key, in small maps and in maps large enough
 * to be sorted, and name the key; keys that differ only in length or in
 * their middle are not repeats. */
static void test_shub_msg_duplicate_key_in_any_map_found(void **state)
{
    (void)state;
    static const struct {
        int n, dup;
        int code;
    } cases[] = {{2, 0, SHUB_EDUPKEY},     {16, 3, SHUB_EDUPKEY},      {16, -1, 0},
                 {17, 0, SHUB_EDUPKEY},    {17, 15, SHUB_EDUPKEY},     {17, -1, 0},
                 {300, 298, SHUB_EDUPKEY}, {4096, 2000, SHUB_EDUPKEY}, {4096, -1, 0}};
    shub_arena_t *a = shub_arena_new(0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msgpack_sbuffer pl;
        msgpack_sbuffer_init(&pl);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &pl, msgpack_sbuffer_write);
        pack_keys(&pk, cases[i].n, cases[i].dup);
        const char *path = cases[i].code ? "SHARE.payload" : "";
        char rule[64];
        snprintf(rule, sizeof rule, "duplicate key \"k%d\"", cases[i].dup);
        expect_edit_rule(&templates[SHUB_MSG_SHARE], "payload", pl.data, pl.size, REPLACE,
                         cases[i].code, path, cases[i].code ? rule : NULL);
        /* the same map through the encoder */
        shub_val_t map;
        assert_int_equal(shub_payload_decode(a, pl.data, pl.size, &map, NULL),
                         cases[i].code);
        if (cases[i].code == 0) {
            shub_msg_t m = share_min();
            m.share.ev.payload = map;
            round_trip(&m);
            /* repeat one key by hand: the encoder must find it too */
            map.as.pairs[map.len - 1].key = map.as.pairs[0].key;
            map.as.pairs[map.len - 1].key_len = map.as.pairs[0].key_len;
            m.share.ev.payload = map;
            expect_encode_rule(&m, SHUB_EDUPKEY, "SHARE.payload", "duplicate key \"k0\"");
        }
        msgpack_sbuffer_destroy(&pl);
    }
    /* near misses: the same ends, another middle; a prefix of another key */
    expect_edit(&templates[SHUB_MSG_SHARE], "payload",
                RAW("\x83\xa3"
                    "abc"
                    "\x01"
                    "\xa3"
                    "axc"
                    "\x02"
                    "\xa2"
                    "ab"
                    "\x03"),
                REPLACE, 0, "");
    shub_msg_t m = share_min();
    shub_val_t p = shub_val_map();
    put(a, &p, "abc", shub_val_int(1));
    put(a, &p, "axc", shub_val_int(2));
    put(a, &p, "ab", shub_val_int(3));
    m.share.ev.payload = p;
    round_trip(&m);
    /* a key is what its length says: "ab" of "abc" repeats "ab" */
    p.as.pairs[0].key_len = 2;
    expect_encode_rule(&m, SHUB_EDUPKEY, "SHARE.payload", "duplicate key \"ab\"");
    shub_arena_destroy(&a);
}

/* Text is checked for NUL bytes and UTF-8 on both sides, wherever in it the
 * offending byte sits (the checks step over plain ASCII eight bytes at a time,
 * so each position of a word and of the bytes after the last word counts). */
static void test_shub_msg_text_checks_at_every_position(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    char s[41];
    for (size_t len = 1; len <= 40; len++) {
        for (size_t at = 0; at < len; at++) {
            static const struct {
                const char *bytes; /* put at `at` */
                size_t n;
                int code;
            } bad[] = {
                {"\x00", 1, SHUB_EVALUE}, /* NUL */
                {"\xff", 1, SHUB_EUTF8},  /* never UTF-8 */
                {"\xc3", 1, SHUB_EUTF8},  /* a lead byte alone */
                {"\xc3\xa9", 2, 0},       /* é */
                {"\x7f", 1, 0},           /* DEL: text, not a control in a payload */
                {"\x01", 1, 0},
            };
            for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
                if (at + bad[b].n > len)
                    continue;
                memset(s, 'x', len);
                memcpy(s + at, bad[b].bytes, bad[b].n);
                int code = bad[b].code;
                const char *path = code ? "SHARE.payload.t" : "";
                /* decoder */
                msgpack_sbuffer pl;
                msgpack_sbuffer_init(&pl);
                msgpack_packer pk;
                msgpack_packer_init(&pk, &pl, msgpack_sbuffer_write);
                msgpack_pack_map(&pk, 1);
                msgpack_pack_str_with_body(&pk, "t", 1);
                msgpack_pack_str_with_body(&pk, s, len);
                expect_edit(&templates_min[SHUB_MSG_SHARE], "payload", pl.data, pl.size,
                            REPLACE, code, path);
                msgpack_sbuffer_destroy(&pl);
                /* encoder */
                shub_msg_t m = share_min();
                shub_val_t p = shub_val_map();
                put(a, &p, "t",
                    (shub_val_t){
                        .type = SHUB_VAL_STR, .len = (uint32_t)len, .as.str = s});
                m.share.ev.payload = p;
                if (code)
                    expect_encode(&m, code, path);
                else
                    round_trip(&m);
            }
        }
    }
    /* names and refs too: a non-ASCII byte in a name is bad UTF-8 or a bad name */
    shub_msg_t m = share_min();
    m.share.ev.area = "coventr\xff";
    expect_encode(&m, SHUB_EUTF8, "SHARE.area");
    m.share.ev.area = "coventr\xc3\xa9";
    expect_encode(&m, SHUB_EVALUE, "SHARE.area");
    m = share_min();
    m.share.ev.actor = "Zoë 12345678901234";
    round_trip(&m);
    shub_arena_destroy(&a);
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
    shub_receipt_t r = {.id = id_a, .items = items, .count = SHUB_MSG_MAX_OUTCOMES};
    shub_msg_t m = {.type = SHUB_MSG_RECEIPT, .receipt = {&r, 1}};
    round_trip(&m);
    r.count = SHUB_MSG_MAX_OUTCOMES + 1;
    expect_encode_rule(&m, SHUB_ELIMIT, "RECEIPT.receipts[0].outcomes",
                       "1025 items exceed limit 1024");
    free(items);

    tpl_t *receipt = malloc(sizeof *receipt);
    assert_non_null(receipt);
    tpl_item(&templates[SHUB_MSG_RECEIPT], "receipts", 2, receipt); /* one outcome */
    for (uint32_t n = SHUB_MSG_MAX_OUTCOMES; n <= SHUB_MSG_MAX_OUTCOMES + 1; n++) {
        msgpack_sbuffer outcomes;
        list_build(receipt, "outcomes", n, 0, NULL, NULL, 0, KEEP, &outcomes);
        bool over = n > SHUB_MSG_MAX_OUTCOMES;
        expect_item_edit(&templates[SHUB_MSG_RECEIPT], "receipts", 2, "outcomes",
                         outcomes.data, outcomes.size, REPLACE, over ? SHUB_ELIMIT : 0,
                         over ? "RECEIPT.receipts[2].outcomes" : "",
                         over ? "1025 items exceed limit 1024" : NULL);
        msgpack_sbuffer_destroy(&outcomes);
    }
    free(receipt);
}

/* n copies of the item of `size` bytes, in a new array (room for one more). */
static void *copies(const void *item, size_t size, uint32_t n)
{
    char *list = calloc(n + 1, size);
    assert_non_null(list);
    for (uint32_t i = 0; i < n; i++)
        memcpy(list + i * size, item, size);
    return list;
}

/* A batch message of `type` holding n copies of one item of its full sample,
 * built through the C structs; *mem is the array to free. */
static shub_msg_t batch_of(shub_msg_type_t type, uint32_t n, void **mem)
{
    shub_msg_t m = sample(type, true, NULL);
    switch (type) {
    case SHUB_MSG_RECEIPT:
        m.receipt = (shub_receipt_batch_t){ *mem = copies(receipts_full,
                                                          sizeof *receipts_full, n),
                                            n};
        break;
    case SHUB_MSG_DELIVER:
        m.deliver = (shub_deliver_batch_t){ *mem = copies(deliveries_full,
                                                          sizeof *deliveries_full, n),
                                            n};
        break;
    case SHUB_MSG_ACK:
        m.ack = (shub_ack_t){ *mem = copies(&id_a, sizeof id_a, n), n};
        break;
    case SHUB_MSG_UPDATE:
        m.update = (shub_update_batch_t){ *mem = copies(&updates_full[1],
                                                        sizeof *updates_full, n),
                                          n};
        break;
    default:
        fail_msg("%s is not a batch", shub_msg_type_name(type));
    }
    return m;
}

/* The count of a batch message built by batch_of. */
static uint32_t *batch_count(shub_msg_t *m)
{
    switch (m->type) {
    case SHUB_MSG_RECEIPT:
        return &m->receipt.count;
    case SHUB_MSG_DELIVER:
        return &m->deliver.count;
    case SHUB_MSG_ACK:
        return &m->ack.count;
    default:
        return &m->update.count;
    }
}

static void test_shub_msg_limits_batches_at_edge(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_BATCHES; i++) {
        void *mem = NULL;
        shub_msg_t m = batch_of(batches[i].type, SHUB_MSG_MAX_BATCH + 1, &mem);
        uint32_t *count = batch_count(&m);

        /* encode: 1 and the limit pass; 0 and one more are refused */
        *count = 1;
        round_trip(&m);
        *count = SHUB_MSG_MAX_BATCH;
        round_trip(&m);
        *count = SHUB_MSG_MAX_BATCH + 1;
        expect_encode_rule(&m, SHUB_ELIMIT, batches[i].path,
                           "1025 items exceed limit 1024");
        *count = 0;
        expect_encode_rule(&m, SHUB_EVALUE, batches[i].path, "no items");
        free(mem);

        /* decode: the same counts, packed without the encoder */
        for (uint32_t n = SHUB_MSG_MAX_BATCH; n <= SHUB_MSG_MAX_BATCH + 1; n++) {
            bool over = n > SHUB_MSG_MAX_BATCH;
            msgpack_sbuffer sb;
            list_build(&templates[batches[i].type], batches[i].list, n, 0, NULL, NULL, 0,
                       KEEP, &sb);
            expect_edit_rule(&templates[batches[i].type], batches[i].list, sb.data,
                             sb.size, REPLACE, over ? SHUB_ELIMIT : 0,
                             over ? batches[i].path : "",
                             over ? "1025 items exceed limit 1024" : NULL);
            msgpack_sbuffer_destroy(&sb);
        }
    }
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

/* Values in an encoded message. */
static uint32_t count_encoded_nodes(const void *data, size_t size)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, data, size, NULL), MSGPACK_UNPACK_SUCCESS);
    uint32_t n = count_nodes(&up.data);
    msgpack_unpacked_destroy(&up);
    return n;
}

/* Packs a RECEIPT with msgpack-c alone, receipt by receipt, as the codec
 * would (so the node count of the bytes does not depend on the encoder). */
static void pack_receipt_batch(const shub_receipt_batch_t *b, msgpack_sbuffer *sb)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "v", 1);
    msgpack_pack_int(&pk, SHUB_PROTOCOL_VERSION);
    msgpack_pack_str_with_body(&pk, "type", 4);
    msgpack_pack_str_with_body(&pk, "RECEIPT", 7);
    msgpack_pack_str_with_body(&pk, "receipts", 8);
    msgpack_pack_array(&pk, b->count);
    for (uint32_t i = 0; i < b->count; i++) {
        const shub_receipt_t *r = &b->list[i];
        msgpack_pack_map(&pk, 2);
        msgpack_pack_str_with_body(&pk, "id", 2);
        msgpack_pack_bin_with_body(&pk, r->id.bytes, SHUB_ID_SIZE);
        msgpack_pack_str_with_body(&pk, "outcomes", 8);
        msgpack_pack_array(&pk, r->count);
        for (uint32_t j = 0; j < r->count; j++) {
            const shub_outcome_item_t *o = &r->items[j];
            const char *name = shub_outcome_name(o->outcome);
            msgpack_pack_map(&pk, o->version ? 3 : 2);
            msgpack_pack_str_with_body(&pk, "to", 2);
            msgpack_pack_str_with_body(&pk, o->to, strlen(o->to));
            msgpack_pack_str_with_body(&pk, "outcome", 7);
            msgpack_pack_str_with_body(&pk, name, strlen(name));
            if (o->version) {
                msgpack_pack_str_with_body(&pk, "version", 7);
                msgpack_pack_uint32(&pk, o->version);
            }
        }
    }
}

/* A batch can reach the node limit well inside the byte limit: a RECEIPT of
 * 1000 receipts and 9921 outcomes, one or two of them with a version, is
 * exactly SHUB_MSG_MAX_NODES values or one more, in about 250 KB. */
static void test_shub_msg_limits_nodes_in_large_batch(void **state)
{
    (void)state;
    enum { RECEIPTS = 1000, OUTCOMES = 9921 };
    shub_receipt_t *receipts = calloc(RECEIPTS, sizeof *receipts);
    shub_outcome_item_t *items = calloc(OUTCOMES, sizeof *items);
    assert_non_null(receipts);
    assert_non_null(items);
    for (uint32_t i = 0; i < OUTCOMES; i++)
        items[i] = (shub_outcome_item_t){.to = "bcc", .outcome = SHUB_OUTCOME_QUEUED};
    /* receipt i holds a slice of the outcomes: 921 hold ten, 79 nine */
    uint32_t at = 0;
    for (uint32_t i = 0; i < RECEIPTS; i++) {
        uint32_t c = i < 921 ? 10 : 9;
        receipts[i] = (shub_receipt_t){.id = id_a, .items = items + at, .count = c};
        at += c;
    }
    assert_int_equal(at, OUTCOMES);
    shub_msg_t m = {.type = SHUB_MSG_RECEIPT, .receipt = {receipts, RECEIPTS}};
    for (uint32_t versions = 1; versions <= 2; versions++) {
        bool over = versions == 2;
        items[versions - 1].version = 7; /* one value more */
        /* 4 (map, v, type, array) + 3 a receipt + 3 an outcome + the versions */
        uint32_t total = 4 + 3 * RECEIPTS + 3 * OUTCOMES + versions;
        assert_int_equal(total, SHUB_MSG_MAX_NODES + (over ? 1 : 0));
        msgpack_sbuffer sb;
        pack_receipt_batch(&m.receipt, &sb);
        assert_int_equal(count_encoded_nodes(sb.data, sb.size), total);
        assert_true(sb.size < SHUB_MSG_MAX_BYTES / 2);
        if (over) {
            /* the last value is the one over */
            expect_encode_rule(&m, SHUB_ELIMIT,
                               "RECEIPT.receipts[999].outcomes[8].outcome",
                               "more than 32768 values in one message");
            expect_decode_rule(sb.data, sb.size, SHUB_ELIMIT,
                               "RECEIPT.receipts[999].outcomes[8].outcome",
                               "more than 32768 values in one message");
        } else {
            shub_buf_t buf = {0};
            assert_int_equal(shub_msg_encode(&m, &buf, NULL), 0);
            assert_int_equal(buf.len, sb.size);
            assert_memory_equal(buf.data, sb.data, sb.size);
            shub_buf_free(&buf);
            round_trip(&m);
        }
        msgpack_sbuffer_destroy(&sb);
    }
    free(items);
    free(receipts);
}

/* A batch of deliveries fills a message to its byte limit exactly, and one
 * byte more is refused on both sides. */
static void test_shub_msg_limits_bytes_in_large_batch(void **state)
{
    (void)state;
    enum { COPIES = 15 };
    uint8_t *fill = calloc(1, SHUB_MSG_MAX_BIN);
    shub_deliver_t *list = calloc(COPIES, sizeof *list);
    assert_non_null(fill);
    assert_non_null(list);
    for (int i = 0; i < COPIES; i++) {
        list[i] = deliveries_full[i % 2];
        list[i].sealed = fill;
        list[i].sealed_len = 66000; /* a bin32 already */
    }
    shub_msg_t m = {.type = SHUB_MSG_DELIVER, .deliver = {list, COPIES}};
    shub_buf_t buf = {0};
    assert_int_equal(shub_msg_encode(&m, &buf, NULL), 0);
    /* the last copy takes up the rest (its bin32 header stays 5 bytes) */
    list[COPIES - 1].sealed_len += (uint32_t)(SHUB_MSG_MAX_BYTES - buf.len);
    assert_int_equal(round_trip(&m), SHUB_MSG_MAX_BYTES);
    assert_int_equal(shub_msg_encode(&m, &buf, NULL), 0);

    list[COPIES - 1].sealed_len++;
    expect_encode_rule(&m, SHUB_ELIMIT, "DELIVER",
                       "message of 1048577 bytes exceeds limit 1048576");
    /* the decoder refuses the size before it reads a byte */
    assert_int_equal(shub_buf_append(&buf, "\xc0", 1), 0);
    expect_decode_rule(buf.data, buf.len, SHUB_ELIMIT, "message",
                       "message of 1048577 bytes exceeds limit 1048576");
    shub_buf_free(&buf);
    free(list);
    free(fill);
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
    shub_deliver_t d = deliveries_full[0];
    d.sealed = bin;
    d.sealed_len = SHUB_MSG_MAX_BIN;
    shub_msg_t m = {.type = SHUB_MSG_DELIVER, .deliver = {&d, 1}};
    round_trip(&m);
    d.sealed_len = SHUB_MSG_MAX_BIN + 1;
    expect_encode(&m, SHUB_ELIMIT, "DELIVER.deliveries[0].sealed");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_bin_with_body(&pk, bin, SHUB_MSG_MAX_BIN + 1);
    expect_item_edit(&templates[SHUB_MSG_DELIVER], "deliveries", 1, "sealed", sb.data,
                     sb.size, REPLACE, SHUB_ELIMIT, "DELIVER.deliveries[1].sealed",
                     "binary of 1044481 bytes exceeds limit 1044480");
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

    /* batches: no list at all is a missing field */
    for (size_t i = 0; i < N_BATCHES; i++) {
        m = (shub_msg_t){.type = batches[i].type}; /* the list NULL, its count 0 */
        expect_encode_rule(&m, SHUB_EMISSING, batches[i].path, "required field missing");
    }
    /* and inside their items */
    shub_receipt_t r = {.id = ID_A};
    m = (shub_msg_t){.type = SHUB_MSG_RECEIPT, .receipt = {&r, 1}};
    expect_encode(&m, SHUB_EMISSING, "RECEIPT.receipts[0].outcomes");
    shub_outcome_item_t item = {.outcome = SHUB_OUTCOME_DENIED};
    r.items = &item;
    r.count = 1;
    expect_encode(&m, SHUB_EMISSING, "RECEIPT.receipts[0].outcomes[0].to");
    item.to = "bcc";
    item.outcome = 0;
    expect_encode(&m, SHUB_EMISSING, "RECEIPT.receipts[0].outcomes[0].outcome");

    shub_deliver_t d[2] = {deliveries_full[0], deliveries_full[1]};
    m = (shub_msg_t){.type = SHUB_MSG_DELIVER, .deliver = {d, 2}};
    d[1].sealed = NULL;
    d[1].sealed_len = 0;
    expect_encode(&m, SHUB_EMISSING, "DELIVER.deliveries[1].sealed");
    d[1] = deliveries_full[1];
    d[1].type = NULL;
    expect_encode(&m, SHUB_EMISSING, "DELIVER.deliveries[1].event");
    d[1] = deliveries_full[1];
    d[0].flow = NULL;
    expect_encode(&m, SHUB_EMISSING, "DELIVER.deliveries[0].flow");

    shub_update_t u[2] = {updates_full[0], updates_full[1]};
    m = (shub_msg_t){.type = SHUB_MSG_UPDATE, .update = {u, 2}};
    u[1].item.to = NULL;
    expect_encode(&m, SHUB_EMISSING, "UPDATE.updates[1].to");
    u[1] = updates_full[1];
    u[0].item.outcome = 0;
    expect_encode(&m, SHUB_EMISSING, "UPDATE.updates[0].outcome");

    static const char *const to_hole[] = {"bcc", NULL};
    m = share_min();
    m.share.to = to_hole;
    m.share.to_count = 2;
    expect_encode_rule(&m, SHUB_EMISSING, "SHARE.to[1]", "required item missing");

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

    shub_deliver_t d = deliveries_min[0];
    d.sealed_len = 0;
    m = (shub_msg_t){.type = SHUB_MSG_DELIVER, .deliver = {&d, 1}};
    expect_encode(&m, SHUB_EVALUE, "DELIVER.deliveries[0].sealed");
    shub_receipt_t r = {.id = ID_A, .items = NULL, .count = 2};
    m = (shub_msg_t){.type = SHUB_MSG_RECEIPT, .receipt = {&r, 1}};
    expect_encode_rule(&m, SHUB_EINVAL, "RECEIPT.receipts[0].outcomes",
                       "2 items but no list");
    m = (shub_msg_t){.type = SHUB_MSG_ACK, .ack = {NULL, 3}};
    expect_encode(&m, SHUB_EINVAL, "ACK.ids");
    m = (shub_msg_t){.type = SHUB_MSG_ACK, .ack = {ids_full, 0}}; /* a list, no items */
    expect_encode_rule(&m, SHUB_EVALUE, "ACK.ids", "no items");

    /* numbers below their minimum */
    shub_update_t u = updates_min[0];
    m = (shub_msg_t){.type = SHUB_MSG_UPDATE, .update = {&u, 1}};
    u.seq = 0;
    expect_encode_rule(&m, SHUB_EVALUE, "UPDATE.updates[0].seq",
                       "expected an integer >= 1");
    u.seq = INT64_MIN;
    expect_encode(&m, SHUB_EVALUE, "UPDATE.updates[0].seq");
    u = updates_min[0];
    u.item.to = "Bad Org";
    expect_encode(&m, SHUB_EVALUE, "UPDATE.updates[0].to");
    u = updates_min[0];
    u.item.outcome = 6;
    expect_encode(&m, SHUB_EVALUE, "UPDATE.updates[0].outcome");
    m = (shub_msg_t){.type = SHUB_MSG_CONFIRM, .confirm = {-1}};
    expect_encode_rule(&m, SHUB_EVALUE, "CONFIRM.upto", "expected an integer >= 0");
    for (int t = SHUB_MSG_CHECKPOINT; t <= SHUB_MSG_WITNESS; t++) {
        char path[32];
        m = (shub_msg_t){.type = (shub_msg_type_t)t};
        shub_signed_head_t *h = t == SHUB_MSG_CHECKPOINT ? &m.checkpoint : &m.witness;
        *h = sample_head(true);
        h->seq = 0;
        snprintf(path, sizeof path, "%s.seq", shub_msg_type_name(m.type));
        expect_encode_rule(&m, SHUB_EVALUE, path, "expected an integer >= 1");
        *h = sample_head(true);
        h->at_ms = -1;
        snprintf(path, sizeof path, "%s.at", shub_msg_type_name(m.type));
        expect_encode_rule(&m, SHUB_EVALUE, path, "time before 1970");
    }

    /* actor: a ref */
    m = share_min();
    m.share.ev.actor = "";
    expect_encode(&m, SHUB_EVALUE, "SHARE.actor");
    m.share.ev.actor = "PC\n4471";
    expect_encode(&m, SHUB_EVALUE, "SHARE.actor");
    m.share.ev.actor = "\xff";
    expect_encode(&m, SHUB_EUTF8, "SHARE.actor");
    char *long_actor = repeat('a', SHUB_MSG_MAX_REF + 1);
    m.share.ev.actor = long_actor;
    expect_encode_rule(&m, SHUB_ELIMIT, "SHARE.actor",
                       "text of 129 bytes exceeds limit 128");
    long_actor[SHUB_MSG_MAX_REF] = '\0';
    round_trip(&m);
    free(long_actor);

    m = share_min();
    m.type = 0;
    expect_encode(&m, SHUB_EUNKNOWN, "message");
    m.type = SHUB_MSG_TYPE_LAST + 1;
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

/* Decodes m's encoding with the nth allocation failing, for n = 0, 1, ...
 * until it succeeds; each failure must be a clean SHUB_ENOMEM. Returns how
 * many allocations could be made to fail. */
static long decode_under_failures(const shub_msg_t *m)
{
    shub_buf_t buf = {0};
    assert_int_equal(shub_msg_encode(m, &buf, NULL), 0);
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
            assert_msg_equal(m, msg);
            shub_msg_destroy(&msg);
            break;
        }
        assert_int_equal(rc, SHUB_ENOMEM);
        assert_int_equal(err.code, SHUB_ENOMEM);
        assert_null(msg);
        assert_true(n < 1000);
    }
    shub_buf_free(&buf);
    return n;
}

static void test_shub_msg_decode_every_allocation_failure_is_clean(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    for (int t = SHUB_MSG_HELLO; t <= SHUB_MSG_TYPE_LAST; t++) {
        shub_msg_t m = sample((shub_msg_type_t)t, true, a);
        /* the message, its arena, a block: each was made to fail */
        assert_true(decode_under_failures(&m) >= 3);
    }
    /* big batches outgrow the arena's first block, so allocations fail in
     * the reader and while binding the lists */
    for (size_t i = 0; i < N_BATCHES; i++) {
        void *mem = NULL;
        shub_msg_t m = batch_of(batches[i].type, 300, &mem);
        long n = decode_under_failures(&m); /* the message, its arena, 2+ blocks */
        if (n < 4)
            fail_msg("%s: %ld allocations", batches[i].path, n);
        free(mem);
    }
    shub_arena_destroy(&a);
}

static void test_shub_msg_encode_every_allocation_failure_is_clean(void **state)
{
    (void)state;
    shub_arena_t *a = shub_arena_new(0);
    for (int t = SHUB_MSG_HELLO; t <= SHUB_MSG_TYPE_LAST; t++) {
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
    static const char *const names[] = {
        "?",         "HELLO", "WELCOME", "SHARE",  "RECEIPT", "DELIVER",    "ACK",
        "HEARTBEAT", "ERROR", "BYE",     "UPDATE", "CONFIRM", "CHECKPOINT", "WITNESS"};
    assert_int_equal(sizeof names / sizeof names[0], SHUB_MSG_TYPE_LAST + 1);
    for (int t = 0; t <= SHUB_MSG_TYPE_LAST; t++)
        assert_string_equal(shub_msg_type_name((shub_msg_type_t)t), names[t]);
    assert_string_equal(shub_msg_type_name((shub_msg_type_t)(SHUB_MSG_TYPE_LAST + 1)),
                        "?");
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
        TR(update),
        TR(confirm),
        TR(checkpoint),
        TR(witness),
        cmocka_unit_test(test_shub_msg_encode_absent_optionals_are_not_written),
        cmocka_unit_test(test_shub_msg_encode_exact_bytes),
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
        cmocka_unit_test(test_shub_msg_decode_batch_arrays_exact),
        cmocka_unit_test(test_shub_msg_decode_receipt_items_exact),
        cmocka_unit_test(test_shub_msg_decode_deliver_items_exact),
        cmocka_unit_test(test_shub_msg_decode_ack_ids_exact),
        cmocka_unit_test(test_shub_msg_decode_update_items_exact),
        cmocka_unit_test(test_shub_msg_decode_confirm_and_signed_heads_exact),
        cmocka_unit_test(test_shub_msg_duplicate_key_in_any_map_found),
        cmocka_unit_test(test_shub_msg_text_checks_at_every_position),
        cmocka_unit_test(test_shub_msg_limits_name_ref_line_at_edge),
        cmocka_unit_test(test_shub_msg_limits_to_count_at_edge),
        cmocka_unit_test(test_shub_msg_limits_outcomes_at_edge),
        cmocka_unit_test(test_shub_msg_limits_batches_at_edge),
        cmocka_unit_test(test_shub_msg_limits_nodes_in_large_batch),
        cmocka_unit_test(test_shub_msg_limits_bytes_in_large_batch),
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
