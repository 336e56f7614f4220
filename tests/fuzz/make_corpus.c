/*
 * make_corpus: writes the seed corpus for fuzz_msg_decode from the real
 * encoder, one file per message type and variant (every optional field
 * present, every optional field absent), plus an event and a bare payload.
 * The values are fixed, so the output is the same on every run.
 *
 *   make_corpus DIR          write the seeds into DIR (tests/fuzz/msg_decode/)
 *   make_corpus --check DIR  compare DIR's seeds with fresh ones (a ctest)
 *
 * The check fails when a seed is missing, differs from what the encoder now
 * writes, or no longer decodes, so an encoder change cannot leave the fuzzer
 * starting from stale inputs. Seeds are named seed-*. The same directory
 * holds hand-made inputs this program leaves alone: crash-* (an input that
 * once crashed the fuzz target) and regress-* (an input that broke the
 * target's round-trip check before a codec fix, e.g. a required number of 0
 * that the decoder accepted and the encoder refused). Such inputs are never
 * deleted: one written for protocol 1 now checks that its version is refused
 * cleanly, and a twin named *-v2 carries the same case in protocol 2.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharehub/alloc.h"
#include "sharehub/err.h"
#include "sharehub/msg.h"
#include "sharehub/val.h"

#define MAX_SEEDS 48

typedef struct {
    char name[64];
    shub_buf_t bytes;
} seed_t;

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
            0x01, 0x90, 0xa5, 0xb2, 0x3c, 0x4e, 0x7a, 0xbc, 0x9d, 0xef, 0x10, 0x32,      \
                0x54, 0x76, 0x98, 0xba                                                   \
        }                                                                                \
    }
static const shub_id_t id_a = ID_A;
static const shub_id_t id_b = ID_B;

static int put(shub_arena_t *a, shub_val_t *map, const char *key, shub_val_t v)
{
    return shub_val_put(a, map, key, v);
}

static int text(shub_arena_t *a, shub_val_t *map, const char *key, const char *s)
{
    shub_val_t v;
    int rc = shub_val_str(a, s, strlen(s), &v);
    return rc ? rc : put(a, map, key, v);
}

/* A MARAC referral payload touching every value type. */
static int referral(shub_arena_t *a, shub_val_t *out)
{
    static const uint8_t photo[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    shub_val_t victim = shub_val_map(), address = shub_val_map(),
               actions = shub_val_array();
    shub_val_t p = shub_val_map(), action = shub_val_map(), bin;
    int rc = 0;
    rc = rc ? rc : text(a, &address, "postcode", "CV1 2AB");
    rc = rc ? rc : text(a, &address, "line1", "1 High Street");
    rc = rc ? rc : text(a, &victim, "name", "Zoë Ó Súilleabháin");
    rc = rc ? rc : text(a, &victim, "dob", "1990-01-01");
    rc = rc ? rc : put(a, &victim, "address", address);
    rc = rc ? rc : shub_val_bin(a, photo, sizeof photo, &bin);
    rc = rc ? rc : put(a, &victim, "photo", bin);
    rc = rc ? rc : text(a, &action, "owner", "wmp");
    rc = rc ? rc : put(a, &action, "due", shub_val_int(1718600000000));
    rc = rc ? rc : put(a, &action, "done", shub_val_bool(false));
    rc = rc ? rc : shub_val_push(a, &actions, action);
    rc = rc ? rc : shub_val_push(a, &actions, shub_val_nil());
    rc = rc ? rc : put(a, &p, "dash", shub_val_int(16));
    rc = rc ? rc : put(a, &p, "risk", shub_val_float(0.875));
    rc = rc ? rc : put(a, &p, "high_risk", shub_val_bool(true));
    rc = rc ? rc : put(a, &p, "offset", shub_val_int(-40000));
    rc = rc ? rc : put(a, &p, "victim", victim);
    rc = rc ? rc : put(a, &p, "actions", actions);
    rc = rc ? rc : put(a, &p, "children", shub_val_array());
    rc = rc ? rc : put(a, &p, "extra", shub_val_map());
    rc = rc ? rc : text(a, &p, "summary", "incident at home address; children present");
    if (rc == 0)
        *out = p;
    return rc;
}

static const char *const to_full[] = {"marac-coventry", "@coventry", "idva@coventry"};
static const char *const to_one[] = {"marac-coventry"};
static const uint8_t sealed[] = {0x5e, 0xa1, 0xed, 0x00, 0x01, 0x02, 0x03};
static const shub_outcome_item_t outcomes_full[] = {
    {"marac-coventry", SHUB_OUTCOME_DELIVERED, NULL, NULL, "wm-marac-isa", 3, "referral"},
    {"uhcw", SHUB_OUTCOME_DENIED, "recipient-not-party",
     "no agreement lets wmp share marac.referral with uhcw", "wm-marac-isa", 3,
     "referral"},
    {"@solihull", SHUB_OUTCOME_DEAD, "no-recipient", "selector matched no organisation",
     NULL, 0, NULL},
};
static const shub_outcome_item_t outcomes_min[] = {
    {"marac-coventry", SHUB_OUTCOME_QUEUED, NULL, NULL, NULL, 0, NULL},
};

/* Batches: several items, the optional fields in some (full), or one bare item. */
static const shub_receipt_t receipts_full[] = {
    {ID_A, true, outcomes_full, 3},
    {ID_B, false, outcomes_min, 0},
};
static const shub_receipt_t receipts_min[] = {{ID_A, false, outcomes_min, 1}};
static const shub_deliver_t deliveries_full[] = {
    {ID_A, "marac.referral", "wmp", "wm-marac-isa", 3, "referral", 2, sealed,
     sizeof sealed, 365},
    {ID_B, "marac.transfer", "marac-coventry", "wm-marac-transfer", 1, "marac-to-marac",
     1, sealed, 1, 0},
};
static const shub_deliver_t deliveries_min[] = {
    {ID_A, "marac.referral", "wmp", "wm-marac-isa", 3, "referral", 1, sealed,
     sizeof sealed, 0},
};
static const shub_id_t ids_full[] = {ID_A, ID_B};
static const shub_update_t updates_full[] = {
    {41,
     ID_A,
     {"marac-coventry", SHUB_OUTCOME_ACKNOWLEDGED, NULL, NULL, "wm-marac-isa", 3,
      "referral"}},
    {42,
     ID_B,
     {"uhcw", SHUB_OUTCOME_DEAD, "max-attempts",
      "sent 10 times without an acknowledgement", "wm-marac-isa", 3, "referral"}},
};
static const shub_update_t updates_min[] = {
    {1, ID_A, {"bcc", SHUB_OUTCOME_ACKNOWLEDGED, NULL, NULL, NULL, 0, NULL}},
};

/* A signed head with every byte set (full) or the smallest legal values. */
static shub_signed_head_t signed_head(int full)
{
    shub_signed_head_t h = {.seq = 1};
    if (full) {
        h.seq = 1207;
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

static int event(shub_arena_t *a, int full, shub_event_t *ev)
{
    *ev = (shub_event_t){
        .id = id_a,
        .type = "marac.referral",
        .occurred_ms = 1718000000123,
        .area = "coventry",
        .purpose = "marac-risk-management",
        .basis = "uk-gdpr-6-1-e",
        .consent = SHUB_CONSENT_NOT_SOUGHT,
        .payload = shub_val_map(),
    };
    if (!full)
        return 0;
    ev->case_ref = "WMP/2024/000123";
    ev->subject_ref = "subj:7f3a";
    ev->consent = SHUB_CONSENT_REFUSED;
    ev->override = "serious-harm";
    ev->reply_to = &id_b;
    ev->actor = "PC 4471";
    return referral(a, &ev->payload);
}

static int message(shub_arena_t *a, shub_msg_type_t type, int full, shub_msg_t *m)
{
    *m = (shub_msg_t){.type = type};
    switch (type) {
    case SHUB_MSG_HELLO:
        if (full)
            m->hello = (shub_hello_t){"sharehub-agent/0.1.0 (wmp)", 32};
        return 0;
    case SHUB_MSG_WELCOME:
        m->welcome = (shub_welcome_t){"wmp", 5000,          SHUB_MSG_MAX_BYTES,
                                      64,    1718000000999, full ? 17 : 0};
        return 0;
    case SHUB_MSG_SHARE:
        m->share.to = full ? to_full : to_one;
        m->share.to_count = full ? 3 : 1;
        m->share.from = full ? "wmp" : NULL;
        return event(a, full, &m->share.ev);
    case SHUB_MSG_RECEIPT:
        m->receipt =
            (shub_receipt_batch_t){full ? receipts_full : receipts_min, full ? 2 : 1};
        return 0;
    case SHUB_MSG_DELIVER:
        m->deliver =
            (shub_deliver_batch_t){full ? deliveries_full : deliveries_min, full ? 2 : 1};
        return 0;
    case SHUB_MSG_ACK:
        m->ack = (shub_ack_t){full ? ids_full : ids_full + 1, full ? 2 : 1};
        return 0;
    case SHUB_MSG_HEARTBEAT:
        m->heartbeat.time_ms = full ? 1718000000555 : 0;
        return 0;
    case SHUB_MSG_ERROR:
        m->error.code = "limit";
        m->error.message =
            "SHARE.payload.victim.name: text of 20000 bytes exceeds limit 16384";
        m->error.id = full ? &id_a : NULL;
        return 0;
    case SHUB_MSG_BYE:
        m->bye.reason = full ? "shutting down" : NULL;
        return 0;
    case SHUB_MSG_UPDATE:
        m->update =
            (shub_update_batch_t){full ? updates_full : updates_min, full ? 2 : 1};
        return 0;
    case SHUB_MSG_CONFIRM:
        m->confirm.upto = full ? 42 : 0;
        return 0;
    case SHUB_MSG_CHECKPOINT:
        m->checkpoint = signed_head(full);
        return 0;
    case SHUB_MSG_WITNESS:
        m->witness = signed_head(full);
        return 0;
    }
    return SHUB_EINVAL;
}

static void lower(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < size; i++)
        dst[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] - 'A' + 'a' : src[i]);
    dst[i] = '\0';
}

/* Builds every seed and checks each decodes with its own decoder. */
static int build(shub_arena_t *a, seed_t *seeds, int *n)
{
    shub_err_t err = {0};
    char line[512], type[16];
    *n = 0;
    for (int t = SHUB_MSG_HELLO; t <= SHUB_MSG_TYPE_LAST; t++) {
        for (int full = 1; full >= 0; full--) {
            seed_t *s = &seeds[(*n)++];
            shub_msg_t m, *back = NULL;
            lower(type, sizeof type, shub_msg_type_name((shub_msg_type_t)t));
            snprintf(s->name, sizeof s->name, "seed-%s-%s", type, full ? "full" : "min");
            if (message(a, (shub_msg_type_t)t, full, &m) ||
                shub_msg_encode(&m, &s->bytes, &err) ||
                shub_msg_decode(s->bytes.data, s->bytes.len, &back, &err)) {
                fprintf(stderr, "make_corpus: %s: %s\n", s->name,
                        shub_err_format(&err, line, sizeof line));
                return 1;
            }
            shub_msg_destroy(&back);
        }
    }
    for (int full = 1; full >= 0; full--) {
        seed_t *s = &seeds[(*n)++];
        shub_event_t ev, back;
        snprintf(s->name, sizeof s->name, "seed-event-%s", full ? "full" : "min");
        if (event(a, full, &ev) || shub_event_encode(&ev, &s->bytes, &err) ||
            shub_event_decode(a, s->bytes.data, s->bytes.len, &back, &err)) {
            fprintf(stderr, "make_corpus: %s: %s\n", s->name,
                    shub_err_format(&err, line, sizeof line));
            return 1;
        }
    }
    seed_t *s = &seeds[(*n)++];
    shub_val_t p, back;
    snprintf(s->name, sizeof s->name, "seed-payload-referral");
    if (referral(a, &p) || shub_payload_encode(&p, &s->bytes, &err) ||
        shub_payload_decode(a, s->bytes.data, s->bytes.len, &back, &err)) {
        fprintf(stderr, "make_corpus: %s: %s\n", s->name,
                shub_err_format(&err, line, sizeof line));
        return 1;
    }
    return 0;
}

/* dir/name of a seed into path[4096]; 1 (said on stderr) if it does not fit. */
static int seed_path(char path[4096], const char *dir, const seed_t *s)
{
    int n = snprintf(path, 4096, "%s/%s", dir, s->name);
    if (n < 0 || n >= 4096) {
        fprintf(stderr, "make_corpus: %s: path too long\n", dir);
        return 1;
    }
    return 0;
}

static int write_seed(const char *dir, const seed_t *s)
{
    char path[4096];
    if (seed_path(path, dir, s))
        return 1;
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s->bytes.data, 1, s->bytes.len, f) != s->bytes.len ||
        fclose(f) != 0) {
        fprintf(stderr, "make_corpus: %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

/* 0 if dir/name holds exactly the seed's bytes. */
static int check_seed(const char *dir, const seed_t *s)
{
    char path[4096];
    if (seed_path(path, dir, s))
        return 1;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "make_corpus: %s is missing (run make_corpus %s)\n", path, dir);
        return 1;
    }
    shub_buf_t have = {0};
    uint8_t chunk[4096];
    size_t got;
    int rc = 0;
    while (rc == 0 && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = shub_buf_append(&have, chunk, got);
    fclose(f);
    if (rc == 0 &&
        (have.len != s->bytes.len || memcmp(have.data, s->bytes.data, have.len))) {
        fprintf(stderr,
                "make_corpus: %s is stale: %zu bytes, the encoder now writes %zu "
                "(run make_corpus %s)\n",
                path, have.len, s->bytes.len, dir);
        rc = 1;
    }
    shub_buf_free(&have);
    return rc ? 1 : 0;
}

/* Seed files in dir that this program no longer writes. */
static int check_unknown(const char *dir, const seed_t *seeds, int n)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "make_corpus: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    int bad = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "seed-", 5) != 0)
            continue;
        int known = 0;
        for (int i = 0; i < n && !known; i++)
            known = strcmp(seeds[i].name, e->d_name) == 0;
        if (!known) {
            fprintf(stderr, "make_corpus: %s/%s is not a seed this program writes\n", dir,
                    e->d_name);
            bad = 1;
        }
    }
    closedir(d);
    return bad;
}

int main(int argc, char **argv)
{
    int check = argc == 3 && strcmp(argv[1], "--check") == 0;
    if (argc != 2 + check) {
        fprintf(stderr, "usage: %s [--check] DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1 + check];
    shub_arena_t *a = shub_arena_new(0);
    seed_t seeds[MAX_SEEDS];
    memset(seeds, 0, sizeof seeds);
    int n = 0, bad = a ? build(a, seeds, &n) : 1;
    int built_bad = bad;
    for (int i = 0; i < n && !(bad && !check); i++) /* a check reports every seed */
        bad |= check ? check_seed(dir, &seeds[i]) : write_seed(dir, &seeds[i]);
    if (check && !built_bad)
        bad |= check_unknown(dir, seeds, n);
    if (!bad)
        printf("%d seeds %s in %s\n", n, check ? "up to date" : "written", dir);
    for (int i = 0; i < MAX_SEEDS; i++)
        shub_buf_free(&seeds[i].bytes);
    shub_arena_destroy(&a);
    return bad ? 1 : 0;
}
