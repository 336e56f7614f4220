/*
 * bench_codec: what the codec's safety costs on the hot path.
 *
 * Every SHARE the broker takes is decoded with hard limits, UTF-8 and name
 * checks, duplicate-key detection and a copy into the message's arena, and
 * every RECEIPT and DELIVER it sends is encoded with the same checks. This
 * measures one encode + decode + destroy of a representative SHARE (a
 * marac.referral of about 600 bytes) against the floor under it: msgpack-c
 * packing the very same map into a reused sbuffer and unpacking it with
 * msgpack_unpack_next, which checks nothing and points into the input. The
 * target is a codec no slower than twice that floor.
 *
 * Method: one warm-up second, then five rounds of about one second for each
 * side, alternating so that clock-speed drift hits both alike; the median
 * round is reported. Figures vary with the machine; the ratio is the point.
 */
#include "bench_report.h"

#include "sharehub/alloc.h"
#include "sharehub/err.h"
#include "sharehub/msg.h"
#include "sharehub/val.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS       5
#define ROUND_NS     1000000000LL /* about one second a round */
#define WARMUP_NS    1000000000LL
#define BATCH        1000 /* iterations between clock reads */
#define TARGET_RATIO 2.0

/* ---- the message ------------------------------------------------------ */

typedef struct {
    shub_arena_t *arena;
    shub_val_t map; /* being built */
    int rc;         /* first failure; later puts are skipped */
} builder_t;

static void put(builder_t *b, shub_val_t *map, const char *key, shub_val_t v)
{
    if (b->rc == 0)
        b->rc = shub_val_put(b->arena, map, key, v);
}

static void put_text(builder_t *b, shub_val_t *map, const char *key, const char *s)
{
    shub_val_t v;
    if (b->rc == 0 && (b->rc = shub_val_str(b->arena, s, strlen(s), &v)) == 0)
        put(b, map, key, v);
}

static void push(builder_t *b, shub_val_t *array, shub_val_t v)
{
    if (b->rc == 0)
        b->rc = shub_val_push(b->arena, array, v);
}

static shub_val_t person(builder_t *b, const char *name, const char *dob)
{
    shub_val_t p = shub_val_map();
    put_text(b, &p, "name", name);
    put_text(b, &p, "dob", dob);
    return p;
}

static shub_val_t action(builder_t *b, const char *id, const char *owner, const char *due)
{
    shub_val_t a = shub_val_map();
    put_text(b, &a, "id", id);
    put_text(b, &a, "owner", owner);
    put_text(b, &a, "due", due);
    return a;
}

/* A MARAC referral as DOMAIN.md describes it: criteria and DASH score, the
 * victim, the perpetrator, the children, the incident, consent overridden,
 * and the first actions. Every name and reference is invented. */
static int build_payload(shub_arena_t *arena, shub_val_t *out)
{
    builder_t b = {.arena = arena};
    shub_val_t p = shub_val_map();
    put_text(&b, &p, "criteria", "dash");
    put(&b, &p, "dash_score", shub_val_int(16));

    put(&b, &p, "victim", person(&b, "Jane Example", "1991-03-07"));

    shub_val_t perps = shub_val_array();
    push(&b, &perps, person(&b, "John Example", "1988-11-21"));
    put(&b, &p, "perpetrators", perps);

    shub_val_t children = shub_val_array();
    push(&b, &children, person(&b, "Amy Example", "2016-05-02"));
    push(&b, &children, person(&b, "Ben Example", "2019-09-14"));
    put(&b, &p, "children", children);

    shub_val_t incident = shub_val_map();
    put_text(&b, &incident, "date", "2024-06-01");
    put_text(&b, &incident, "summary",
             "strangulation and threats to kill; third incident this year");
    put(&b, &incident, "weapon", shub_val_bool(false));
    put(&b, &p, "incident", incident);

    shub_val_t actions = shub_val_array();
    push(&b, &actions, action(&b, "A-201", "wmp", "2024-06-07"));
    push(&b, &actions, action(&b, "A-202", "bswa", "2024-06-05"));
    put(&b, &p, "actions", actions);
    if (b.rc == 0)
        *out = p;
    return b.rc;
}

static const char *const referral_to[] = {"marac@coventry"};

static int build_share(shub_arena_t *arena, shub_msg_t *msg)
{
    *msg = (shub_msg_t){.type = SHUB_MSG_SHARE};
    shub_share_t *s = &msg->share;
    s->ev = (shub_event_t){
        .id = {{0x01, 0x8f, 0xdd, 0x61, 0x7a, 0x3b, 0x7c, 0x4e, 0x9a, 0x15, 0x3d, 0x6f,
                0x0b, 0x2e, 0x8c, 0x71}},
        .type = "marac.referral",
        .occurred_ms = 1717405920000LL,
        .case_ref = "WMP-DA-2024-118734",
        .subject_ref = "subj-9a41c7",
        .area = "coventry",
        .purpose = "marac-risk-management",
        .basis = "uk-gdpr-6-1-e",
        .consent = SHUB_CONSENT_REFUSED,
        .override = "risk-of-serious-harm",
    };
    s->to = referral_to;
    s->to_count = 1;
    return build_payload(arena, &s->ev.payload);
}

/* ---- the baseline: msgpack-c alone ------------------------------------ */

/* Packs a value tree with nothing but msgpack-c calls. Fed the tree of the
 * codec's own output, it writes the same bytes (checked in main). */
static int pack_tree(msgpack_packer *pk, const shub_val_t *v)
{
    switch (v->type) {
    case SHUB_VAL_NIL:
        return msgpack_pack_nil(pk);
    case SHUB_VAL_BOOL:
        return v->as.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case SHUB_VAL_INT:
        return msgpack_pack_int64(pk, v->as.i);
    case SHUB_VAL_FLOAT:
        return msgpack_pack_double(pk, v->as.f);
    case SHUB_VAL_STR:
        return msgpack_pack_str_with_body(pk, v->as.str, v->len);
    case SHUB_VAL_BIN:
        return msgpack_pack_bin_with_body(pk, v->as.bin, v->len);
    case SHUB_VAL_ARRAY:
        if (msgpack_pack_array(pk, v->len))
            return -1;
        for (uint32_t i = 0; i < v->len; i++)
            if (pack_tree(pk, &v->as.items[i]))
                return -1;
        return 0;
    case SHUB_VAL_MAP:
        if (msgpack_pack_map(pk, v->len))
            return -1;
        for (uint32_t i = 0; i < v->len; i++)
            if (msgpack_pack_str_with_body(pk, v->as.pairs[i].key,
                                           v->as.pairs[i].key_len) ||
                pack_tree(pk, &v->as.pairs[i].val))
                return -1;
        return 0;
    }
    return -1;
}

/* ---- timing ----------------------------------------------------------- */

typedef struct {
    const shub_msg_t *msg;  /* codec: the message to encode */
    shub_buf_t buf;         /* codec: reused output buffer */
    const shub_val_t *tree; /* baseline: the same map as a tree */
    msgpack_sbuffer sbuf;   /* baseline: reused output buffer */
    msgpack_packer pk;
    msgpack_unpacked unpacked;
    unsigned long long check; /* results folded in, so no work is elided */
    int failed;
} bench_t;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void codec_batch(bench_t *b)
{
    for (int i = 0; i < BATCH; i++) {
        shub_msg_t *out = NULL;
        if (shub_msg_encode(b->msg, &b->buf, NULL) ||
            shub_msg_decode(b->buf.data, b->buf.len, &out, NULL)) {
            b->failed = 1;
            return;
        }
        b->check += out->share.ev.payload.len;
        shub_msg_destroy(&out);
    }
}

static void baseline_batch(bench_t *b)
{
    for (int i = 0; i < BATCH; i++) {
        msgpack_sbuffer_clear(&b->sbuf);
        size_t off = 0;
        if (pack_tree(&b->pk, b->tree) ||
            msgpack_unpack_next(&b->unpacked, b->sbuf.data, b->sbuf.size, &off) !=
                MSGPACK_UNPACK_SUCCESS) {
            b->failed = 1;
            return;
        }
        b->check += b->unpacked.data.via.map.size;
        msgpack_unpacked_destroy(&b->unpacked);
    }
}

/* Runs batches for about `ns`; returns nanoseconds per message. */
static double run(bench_t *b, void (*batch)(bench_t *), long long ns)
{
    long long start = now_ns(), elapsed;
    long long n = 0;
    do {
        batch(b);
        n += BATCH;
        elapsed = now_ns() - start;
    } while (elapsed < ns && !b->failed);
    return (double)elapsed / (double)n;
}

int main(void)
{
    int status = 1;
    shub_arena_t *arena = shub_arena_new(0);
    shub_msg_t msg;
    shub_err_t err = {0};
    char line[SHUB_ERR_PATH_MAX + SHUB_ERR_MSG_MAX + 4];
    bench_t b = {.msg = &msg};
    msgpack_sbuffer_init(&b.sbuf);
    msgpack_packer_init(&b.pk, &b.sbuf, msgpack_sbuffer_write);
    msgpack_unpacked_init(&b.unpacked);

    if (!arena || build_share(arena, &msg) != 0) {
        fprintf(stderr, "bench_codec: cannot build the message\n");
        goto done;
    }
    if (shub_msg_encode(&msg, &b.buf, &err) != 0) {
        fprintf(stderr, "bench_codec: %s\n", shub_err_format(&err, line, sizeof line));
        goto done;
    }
    /* The baseline packs the codec's own output, read back as a plain tree,
     * so both sides handle the same map; check that the bytes agree. */
    shub_val_t tree;
    if (shub_payload_decode(arena, b.buf.data, b.buf.len, &tree, &err) != 0) {
        fprintf(stderr, "bench_codec: %s\n", shub_err_format(&err, line, sizeof line));
        goto done;
    }
    b.tree = &tree;
    if (pack_tree(&b.pk, &tree) != 0 || b.sbuf.size != b.buf.len ||
        memcmp(b.sbuf.data, b.buf.data, b.buf.len) != 0) {
        fprintf(stderr, "bench_codec: msgpack-c and the codec disagree on the bytes\n");
        goto done;
    }

    printf("cores:    %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
    printf("message:  SHARE marac.referral, %zu bytes encoded\n", b.buf.len);
    fflush(stdout);
    run(&b, codec_batch, WARMUP_NS / 2);
    run(&b, baseline_batch, WARMUP_NS / 2);
    bench_stat_t codec = {0}, base = {0};
    for (int i = 0; i < ROUNDS; i++) {
        bench_stat_add(&codec, run(&b, codec_batch, ROUND_NS));
        bench_stat_add(&base, run(&b, baseline_batch, ROUND_NS));
    }
    if (b.failed) {
        fprintf(stderr, "bench_codec: a round failed to encode or decode\n");
        goto done;
    }
    double c = bench_stat_median(&codec), m = bench_stat_median(&base), ratio = c / m;
    printf(
        "codec:    %.0f ns/msg  (shub_msg_encode + shub_msg_decode + shub_msg_destroy)\n",
        c);
    printf("baseline: %.0f ns/msg  (msgpack-c pack into sbuffer + msgpack_unpack_next)\n",
           m);
    printf("ratio:    %.2fx (target <= %.1fx): %s\n", ratio, TARGET_RATIO,
           ratio <= TARGET_RATIO ? "target met" : "target missed");
    printf("(median of %d rounds of ~1 s each; check %llu)\n", ROUNDS, b.check);
    bench_summary("codec.ns_per_msg", c, 0);
    bench_summary("codec.baseline_ns_per_msg", m, 0);
    bench_summary("codec.ratio_to_msgpack", ratio, 3);
    status = 0;
done:
    msgpack_unpacked_destroy(&b.unpacked);
    msgpack_sbuffer_destroy(&b.sbuf);
    shub_buf_free(&b.buf);
    shub_arena_destroy(&arena);
    return status;
}
