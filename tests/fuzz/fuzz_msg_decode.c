/*
 * fuzz_msg_decode: the libFuzzer target for the wire codec, and (linked with
 * replay.c) the ordinary test that replays its corpus.
 *
 * Any byte string goes to each of the three decoders: shub_msg_decode,
 * shub_payload_decode and shub_event_decode. A refusal must carry one of the
 * wire error codes and a field path. An acceptance must survive a round trip:
 * the encoder takes what the decoder took (so the two sides cannot drift),
 * and decoding its output gives the same value again. Any other outcome is a
 * codec bug, and the harness aborts so that libFuzzer keeps the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharehub/err.h"
#include "sharehub/msg.h"
#include "sharehub/val.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void bug(const char *what, const shub_err_t *err)
{
    char line[512];
    fprintf(stderr, "fuzz_msg_decode: %s: %s\n", what,
            err ? shub_err_format(err, line, sizeof line) : "");
    abort();
}

/* A refusal names a wire rule and the place it was broken. */
static void check_refusal(int rc, const shub_err_t *err)
{
    if (rc < SHUB_EVALUE || rc > SHUB_EMALFORMED)
        bug("refused with a code that is not a wire error", err);
    if (err->code != rc || err->path[0] == '\0' || err->msg[0] == '\0')
        bug("refusal without its code, path or message", err);
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool id_eq(const shub_id_t *a, const shub_id_t *b)
{
    return (!a && !b) || (a && b && memcmp(a->bytes, b->bytes, SHUB_ID_SIZE) == 0);
}

static bool event_eq(const shub_event_t *a, const shub_event_t *b)
{
    return id_eq(&a->id, &b->id) && str_eq(a->type, b->type) &&
           a->occurred_ms == b->occurred_ms && str_eq(a->case_ref, b->case_ref) &&
           str_eq(a->subject_ref, b->subject_ref) && str_eq(a->area, b->area) &&
           str_eq(a->purpose, b->purpose) && str_eq(a->basis, b->basis) &&
           a->consent == b->consent && str_eq(a->override, b->override) &&
           id_eq(a->reply_to, b->reply_to) && str_eq(a->actor, b->actor) &&
           shub_val_equal(&a->payload, &b->payload);
}

static bool outcome_eq(const shub_outcome_item_t *a, const shub_outcome_item_t *b)
{
    return str_eq(a->to, b->to) && a->outcome == b->outcome &&
           str_eq(a->reason, b->reason) && str_eq(a->detail, b->detail) &&
           str_eq(a->agreement, b->agreement) && a->version == b->version &&
           str_eq(a->flow, b->flow);
}

/* List items, compared through void pointers so that one loop serves every
 * batch (list_eq). */
static bool receipt_eq(const void *x, const void *y)
{
    const shub_receipt_t *a = x, *b = y;
    if (!id_eq(&a->id, &b->id) || a->duplicate != b->duplicate || a->count != b->count)
        return false;
    for (uint32_t i = 0; i < a->count; i++)
        if (!outcome_eq(&a->items[i], &b->items[i]))
            return false;
    return true;
}

static bool deliver_eq(const void *x, const void *y)
{
    const shub_deliver_t *a = x, *b = y;
    return id_eq(&a->id, &b->id) && str_eq(a->type, b->type) &&
           str_eq(a->from, b->from) && str_eq(a->agreement, b->agreement) &&
           a->version == b->version && str_eq(a->flow, b->flow) &&
           a->attempt == b->attempt && a->sealed_len == b->sealed_len &&
           memcmp(a->sealed, b->sealed, a->sealed_len) == 0;
}

static bool ack_id_eq(const void *a, const void *b)
{
    return id_eq(a, b);
}

static bool update_eq(const void *x, const void *y)
{
    const shub_update_t *a = x, *b = y;
    return a->seq == b->seq && id_eq(&a->id, &b->id) && outcome_eq(&a->item, &b->item);
}

static bool list_eq(const void *a, uint32_t na, const void *b, uint32_t nb, size_t size,
                    bool (*eq)(const void *, const void *))
{
    if (na != nb)
        return false;
    for (uint32_t i = 0; i < na; i++)
        if (!eq((const char *)a + i * size, (const char *)b + i * size))
            return false;
    return true;
}

static bool head_eq(const shub_signed_head_t *a, const shub_signed_head_t *b)
{
    return a->seq == b->seq && a->at_ms == b->at_ms &&
           memcmp(a->head, b->head, sizeof a->head) == 0 &&
           memcmp(a->key, b->key, sizeof a->key) == 0 &&
           memcmp(a->sig, b->sig, sizeof a->sig) == 0;
}

static bool msg_eq(const shub_msg_t *a, const shub_msg_t *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case SHUB_MSG_HELLO:
        return str_eq(a->hello.agent, b->hello.agent) &&
               a->hello.window == b->hello.window;
    case SHUB_MSG_WELCOME:
        return str_eq(a->welcome.org, b->welcome.org) &&
               a->welcome.heartbeat_ms == b->welcome.heartbeat_ms &&
               a->welcome.max_bytes == b->welcome.max_bytes &&
               a->welcome.window == b->welcome.window &&
               a->welcome.time_ms == b->welcome.time_ms &&
               a->welcome.backlog == b->welcome.backlog;
    case SHUB_MSG_SHARE:
        if (!event_eq(&a->share.ev, &b->share.ev) ||
            a->share.to_count != b->share.to_count ||
            !str_eq(a->share.from, b->share.from))
            return false;
        for (uint32_t i = 0; i < a->share.to_count; i++)
            if (!str_eq(a->share.to[i], b->share.to[i]))
                return false;
        return true;
    case SHUB_MSG_RECEIPT:
        return list_eq(a->receipt.list, a->receipt.count, b->receipt.list,
                       b->receipt.count, sizeof *a->receipt.list, receipt_eq);
    case SHUB_MSG_DELIVER:
        return list_eq(a->deliver.list, a->deliver.count, b->deliver.list,
                       b->deliver.count, sizeof *a->deliver.list, deliver_eq);
    case SHUB_MSG_ACK:
        return list_eq(a->ack.ids, a->ack.count, b->ack.ids, b->ack.count,
                       sizeof *a->ack.ids, ack_id_eq);
    case SHUB_MSG_UPDATE:
        return list_eq(a->update.list, a->update.count, b->update.list, b->update.count,
                       sizeof *a->update.list, update_eq);
    case SHUB_MSG_CONFIRM:
        return a->confirm.upto == b->confirm.upto;
    case SHUB_MSG_CHECKPOINT:
        return head_eq(&a->checkpoint, &b->checkpoint);
    case SHUB_MSG_WITNESS:
        return head_eq(&a->witness, &b->witness);
    case SHUB_MSG_HEARTBEAT:
        return a->heartbeat.time_ms == b->heartbeat.time_ms;
    case SHUB_MSG_ERROR:
        return str_eq(a->error.code, b->error.code) &&
               str_eq(a->error.message, b->error.message) &&
               id_eq(a->error.id, b->error.id);
    case SHUB_MSG_BYE:
        return str_eq(a->bye.reason, b->bye.reason);
    }
    return false;
}

/* Re-encoding may only fail for size, and only for an input near the limit:
 * a float32 (5 bytes) is re-encoded as a float64 (9 bytes), so an input under
 * the limit can come back over it. */
static void check_encode(int rc, const shub_err_t *err, size_t size)
{
    if (rc == 0)
        return;
    if (rc == SHUB_ELIMIT && size > SHUB_MSG_MAX_BYTES / 2 &&
        strstr(err->msg, "bytes exceeds limit"))
        return;
    bug("the encoder refused what the decoder accepted", err);
}

static void fuzz_msg(const uint8_t *data, size_t size)
{
    shub_msg_t *msg = NULL, *again = NULL;
    shub_err_t err = {0};
    int rc = shub_msg_decode(data, size, &msg, &err);
    if (rc) {
        check_refusal(rc, &err);
        return;
    }
    shub_buf_t buf = {0};
    rc = shub_msg_encode(msg, &buf, &err);
    check_encode(rc, &err, size);
    if (rc == 0) {
        if (shub_msg_decode(buf.data, buf.len, &again, &err))
            bug("the decoder refused the encoder's output", &err);
        if (!msg_eq(msg, again))
            bug("message changed in a round trip", NULL);
        /* the encoding is canonical: a second round gives the same bytes */
        shub_buf_t buf2 = {0};
        if (shub_msg_encode(again, &buf2, &err) || buf2.len != buf.len ||
            memcmp(buf2.data, buf.data, buf.len) != 0)
            bug("encoding of a decoded message is not stable", NULL);
        shub_buf_free(&buf2);
    }
    shub_buf_free(&buf);
    shub_msg_destroy(&again);
    shub_msg_destroy(&msg);
}

static void fuzz_payload(const uint8_t *data, size_t size)
{
    shub_arena_t *arena = shub_arena_new(0);
    if (!arena)
        return;
    shub_err_t err = {0};
    shub_val_t v, back;
    int rc = shub_payload_decode(arena, data, size, &v, &err);
    if (rc) {
        check_refusal(rc, &err);
    } else {
        shub_buf_t buf = {0};
        rc = shub_payload_encode(&v, &buf, &err);
        check_encode(rc, &err, size);
        if (rc == 0) {
            if (shub_payload_decode(arena, buf.data, buf.len, &back, &err))
                bug("the payload decoder refused the encoder's output", &err);
            if (!shub_val_equal(&v, &back))
                bug("payload changed in a round trip", NULL);
        }
        shub_buf_free(&buf);
    }
    shub_arena_destroy(&arena);
}

static void fuzz_event(const uint8_t *data, size_t size)
{
    shub_arena_t *arena = shub_arena_new(0);
    if (!arena)
        return;
    shub_err_t err = {0};
    shub_event_t ev, back;
    int rc = shub_event_decode(arena, data, size, &ev, &err);
    if (rc) {
        check_refusal(rc, &err);
    } else {
        shub_buf_t buf = {0};
        rc = shub_event_encode(&ev, &buf, &err);
        check_encode(rc, &err, size);
        if (rc == 0) {
            if (shub_event_decode(arena, buf.data, buf.len, &back, &err))
                bug("the event decoder refused the encoder's output", &err);
            if (!event_eq(&ev, &back))
                bug("event changed in a round trip", NULL);
        }
        shub_buf_free(&buf);
    }
    shub_arena_destroy(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_msg(data, size);
    fuzz_payload(data, size);
    fuzz_event(data, size);
    return 0;
}
