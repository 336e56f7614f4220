/*
 * sharehub-wire: look at the wire protocol from the command line.
 *
 * `example NAME` builds one message with the real codec and prints its bytes
 * (a hex dump, 16 bytes a line) and then a readable rendering; protocol/SPEC.md
 * pastes this output, so every example there is what the encoder really
 * writes. Examples are deterministic: ids, times and the keys a DELIVER is
 * sealed with are fixed, so the same build always prints the same bytes.
 * `decode` reads one captured message and prints it, or the codec's error in
 * the same `PATH: rule (token)` words a broker puts in an ERROR.
 *
 * The readable form is JSON-like, not JSON: binary is shown as <hex> (an event
 * id as its canonical UUID text) and a time is followed by a comment with its
 * UTC date. It is rendered from the decoded struct, so it shows what a
 * receiver binds: keys in the encoder's order, unknown keys left out.
 */
#include "sharehub/alloc.h"
#include "sharehub/cli.h"
#include "sharehub/err.h"
#include "sharehub/msg.h"
#include "sharehub/seal.h"
#include "sharehub/time.h"
#include "sharehub/val.h"
#include "sharehub/witness.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

/* ---- readable printer ------------------------------------------------- */

#define PRINT_MAX_DEPTH (SHUB_MSG_MAX_DEPTH + 2)

/* Prints nested maps and arrays with two-space indents. A separator is only
 * known once the next item (or the closing bracket) comes, so a trailing
 * comment waits in `note` until then. */
typedef struct {
    FILE *f;
    int depth;
    bool first[PRINT_MAX_DEPTH + 1]; /* nothing printed yet at this depth */
    char note[64];                   /* comment for the value just printed */
} printer_t;

static void flush_note(printer_t *p)
{
    if (p->note[0])
        fprintf(p->f, "  // %s", p->note);
    p->note[0] = '\0';
}

static void newline(printer_t *p)
{
    flush_note(p);
    fprintf(p->f, "\n%*s", p->depth * 2, "");
}

/* Writes s[0..n) in double quotes. Control characters are escaped so that
 * captured hostile text cannot drive the terminal; other UTF-8 passes as is
 * (the codec has already checked it). */
static void print_quoted(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Starts an item: separator, line break, and the key when inside a map. */
static void item(printer_t *p, const char *key)
{
    if (!p->first[p->depth])
        fputc(',', p->f);
    p->first[p->depth] = false;
    if (p->depth > 0)
        newline(p);
    if (key) {
        print_quoted(p->f, key, strlen(key));
        fputs(": ", p->f);
    }
}

static void open_(printer_t *p, const char *key, char bracket)
{
    item(p, key);
    fputc(bracket, p->f);
    if (p->depth < PRINT_MAX_DEPTH)
        p->depth++;
    p->first[p->depth] = true;
}

static void close_(printer_t *p, char bracket)
{
    bool empty = p->first[p->depth];
    if (p->depth > 0)
        p->depth--;
    if (!empty)
        newline(p);
    fputc(bracket, p->f);
}

static void print_text(printer_t *p, const char *key, const char *s)
{
    item(p, key);
    print_quoted(p->f, s, strlen(s));
}

static void print_int(printer_t *p, const char *key, int64_t i)
{
    item(p, key);
    fprintf(p->f, "%lld", (long long)i);
}

/* A time is an integer of ms since 1970; the comment gives its UTC date. */
static void print_time(printer_t *p, const char *key, int64_t ms)
{
    print_int(p, key, ms);
    char text[SHUB_TIME_TEXT];
    snprintf(p->note, sizeof p->note, "%s", shub_time_format(ms, text));
}

static void print_bool(printer_t *p, const char *key, bool b)
{
    item(p, key);
    fputs(b ? "true" : "false", p->f);
}

/* The shortest of %.15g and %.17g that reads back as the same double. */
static void print_float(printer_t *p, const char *key, double d)
{
    char text[32];
    snprintf(text, sizeof text, "%.15g", d);
    if (!isfinite(d) || strtod(text, NULL) != d)
        snprintf(text, sizeof text, "%.17g", d);
    item(p, key);
    fputs(text, p->f);
}

static void print_id(printer_t *p, const char *key, const shub_id_t *id)
{
    char text[SHUB_ID_TEXT];
    shub_id_format(id, text);
    item(p, key);
    fprintf(p->f, "<%s>", text);
}

/* Long binary shows its size and both ends; the middle says nothing to a
 * reader (sealed data is noise by design). */
static void print_bin(printer_t *p, const char *key, const uint8_t *bin, size_t n)
{
    item(p, key);
    fputc('<', p->f);
    if (n > 32)
        fprintf(p->f, "%zu bytes: ", n);
    for (size_t i = 0; i < n; i++) {
        if (n > 32 && i == 16) {
            fputs("...", p->f);
            i = n - 16;
        }
        fprintf(p->f, "%02x", bin[i]);
    }
    fputc('>', p->f);
}

static void print_val(printer_t *p, const char *key, const shub_val_t *v)
{
    switch (v->type) {
    case SHUB_VAL_NIL:
        item(p, key);
        fputs("null", p->f);
        return;
    case SHUB_VAL_BOOL:
        print_bool(p, key, v->as.b);
        return;
    case SHUB_VAL_INT:
        print_int(p, key, v->as.i);
        return;
    case SHUB_VAL_FLOAT:
        print_float(p, key, v->as.f);
        return;
    case SHUB_VAL_STR:
        item(p, key);
        print_quoted(p->f, v->as.str, v->len);
        return;
    case SHUB_VAL_BIN:
        print_bin(p, key, v->as.bin, v->len);
        return;
    case SHUB_VAL_ARRAY:
        open_(p, key, '[');
        for (uint32_t i = 0; i < v->len; i++)
            print_val(p, NULL, &v->as.items[i]);
        close_(p, ']');
        return;
    case SHUB_VAL_MAP:
        open_(p, key, '{');
        for (uint32_t i = 0; i < v->len; i++)
            print_val(p, v->as.pairs[i].key, &v->as.pairs[i].val);
        close_(p, '}');
        return;
    }
}

/* Optional fields are printed only when present (msg.h: a NULL pointer, a
 * zero number or a false flag means absent). */
static void opt_text(printer_t *p, const char *key, const char *s)
{
    if (s)
        print_text(p, key, s);
}

static void opt_u32(printer_t *p, const char *key, uint32_t u)
{
    if (u)
        print_int(p, key, u);
}

/* The event's fields, in the order the encoder writes them. */
static void print_event_fields(printer_t *p, const shub_event_t *ev)
{
    print_id(p, "id", &ev->id);
    print_text(p, "event", ev->type);
    print_time(p, "occurred", ev->occurred_ms);
    opt_text(p, "case", ev->case_ref);
    opt_text(p, "subject", ev->subject_ref);
    print_text(p, "area", ev->area);
    print_text(p, "purpose", ev->purpose);
    print_text(p, "basis", ev->basis);
    print_text(p, "consent", shub_consent_name(ev->consent));
    opt_text(p, "override", ev->override);
    if (ev->reply_to)
        print_id(p, "reply_to", ev->reply_to);
    opt_text(p, "actor", ev->actor);
    print_val(p, "payload", &ev->payload);
}

/* An outcome item's fields, in the map that holds them (an outcome's own, or
 * an update's). */
static void print_outcome_fields(printer_t *p, const shub_outcome_item_t *o)
{
    print_text(p, "to", o->to);
    print_text(p, "outcome", shub_outcome_name(o->outcome));
    opt_text(p, "reason", o->reason);
    opt_text(p, "detail", o->detail);
    opt_text(p, "agreement", o->agreement);
    opt_u32(p, "version", o->version);
    opt_text(p, "flow", o->flow);
}

static void print_receipt(printer_t *p, const shub_receipt_t *r)
{
    open_(p, NULL, '{');
    print_id(p, "id", &r->id);
    if (r->duplicate)
        print_bool(p, "duplicate", true);
    open_(p, "outcomes", '[');
    for (uint32_t i = 0; i < r->count; i++) {
        open_(p, NULL, '{');
        print_outcome_fields(p, &r->items[i]);
        close_(p, '}');
    }
    close_(p, ']');
    close_(p, '}');
}

static void print_deliver(printer_t *p, const shub_deliver_t *d)
{
    open_(p, NULL, '{');
    print_id(p, "id", &d->id);
    print_text(p, "event", d->type);
    print_text(p, "from", d->from);
    print_text(p, "agreement", d->agreement);
    print_int(p, "version", d->version);
    print_text(p, "flow", d->flow);
    print_int(p, "attempt", d->attempt);
    print_bin(p, "sealed", d->sealed, d->sealed_len);
    close_(p, '}');
}

static void print_update(printer_t *p, const shub_update_t *u)
{
    open_(p, NULL, '{');
    print_int(p, "seq", u->seq);
    print_id(p, "id", &u->id);
    print_outcome_fields(p, &u->item);
    close_(p, '}');
}

static void print_signed_head(printer_t *p, const shub_signed_head_t *h)
{
    print_int(p, "seq", h->seq);
    print_bin(p, "head", h->head, sizeof h->head);
    print_time(p, "at", h->at_ms);
    print_bin(p, "key", h->key, sizeof h->key);
    print_bin(p, "sig", h->sig, sizeof h->sig);
}

static void print_msg(FILE *f, const shub_msg_t *m)
{
    printer_t p = {.f = f, .first = {true}};
    open_(&p, NULL, '{');
    print_int(&p, "v", SHUB_PROTOCOL_VERSION);
    print_text(&p, "type", shub_msg_type_name(m->type));
    switch (m->type) {
    case SHUB_MSG_HELLO:
        opt_text(&p, "agent", m->hello.agent);
        opt_u32(&p, "window", m->hello.window);
        break;
    case SHUB_MSG_WELCOME:
        print_text(&p, "org", m->welcome.org);
        print_int(&p, "heartbeat_ms", m->welcome.heartbeat_ms);
        print_int(&p, "max_bytes", m->welcome.max_bytes);
        print_int(&p, "window", m->welcome.window);
        print_time(&p, "time", m->welcome.time_ms);
        opt_u32(&p, "backlog", m->welcome.backlog);
        break;
    case SHUB_MSG_SHARE:
        print_event_fields(&p, &m->share.ev);
        open_(&p, "to", '[');
        for (uint32_t i = 0; i < m->share.to_count; i++)
            print_text(&p, NULL, m->share.to[i]);
        close_(&p, ']');
        opt_text(&p, "from", m->share.from);
        break;
    case SHUB_MSG_RECEIPT:
        open_(&p, "receipts", '[');
        for (uint32_t i = 0; i < m->receipt.count; i++)
            print_receipt(&p, &m->receipt.list[i]);
        close_(&p, ']');
        break;
    case SHUB_MSG_DELIVER:
        open_(&p, "deliveries", '[');
        for (uint32_t i = 0; i < m->deliver.count; i++)
            print_deliver(&p, &m->deliver.list[i]);
        close_(&p, ']');
        break;
    case SHUB_MSG_ACK:
        open_(&p, "ids", '[');
        for (uint32_t i = 0; i < m->ack.count; i++)
            print_id(&p, NULL, &m->ack.ids[i]);
        close_(&p, ']');
        break;
    case SHUB_MSG_UPDATE:
        open_(&p, "updates", '[');
        for (uint32_t i = 0; i < m->update.count; i++)
            print_update(&p, &m->update.list[i]);
        close_(&p, ']');
        break;
    case SHUB_MSG_CONFIRM:
        print_int(&p, "upto", m->confirm.upto);
        break;
    case SHUB_MSG_CHECKPOINT:
        print_signed_head(&p, &m->checkpoint);
        break;
    case SHUB_MSG_WITNESS:
        print_signed_head(&p, &m->witness);
        break;
    case SHUB_MSG_HEARTBEAT:
        if (m->heartbeat.time_ms)
            print_time(&p, "time", m->heartbeat.time_ms);
        break;
    case SHUB_MSG_ERROR:
        print_text(&p, "code", m->error.code);
        print_text(&p, "message", m->error.message);
        if (m->error.id)
            print_id(&p, "id", m->error.id);
        break;
    case SHUB_MSG_BYE:
        opt_text(&p, "reason", m->bye.reason);
        break;
    }
    close_(&p, '}');
    fputc('\n', f);
}

static void print_event(FILE *f, const shub_event_t *ev)
{
    printer_t p = {.f = f, .first = {true}};
    open_(&p, NULL, '{');
    print_event_fields(&p, ev);
    close_(&p, '}');
    fputc('\n', f);
}

/* Offset, 16 bytes in two groups of 8, then the printable ASCII. */
static void hexdump(FILE *f, const uint8_t *data, size_t n)
{
    for (size_t off = 0; off < n; off += 16) {
        fprintf(f, "%04zx ", off);
        for (size_t i = off; i < off + 16; i++) {
            if (i % 16 == 8)
                fputc(' ', f);
            if (i < n)
                fprintf(f, " %02x", data[i]);
            else
                fputs("   ", f);
        }
        fputs("  |", f);
        for (size_t i = off; i < off + 16 && i < n; i++)
            fputc(data[i] >= 0x20 && data[i] < 0x7f ? data[i] : '.', f);
        fputs("|\n", f);
    }
}

/* ---- examples --------------------------------------------------------- */

/* Fixed so that SPEC.md's examples are reproducible. The event happened at
 * 09:12 UTC on 3 June 2024 and was shared at 09:15:04.123, which the id's
 * first 48 bits record (0x018fdd617a3b); then version 7, the RFC 9562
 * variant, and fixed bytes standing in for the random ones. */
#define EX_OCCURRED_MS 1717405920000LL
#define EX_BROKER_MS   1717406104871LL
static const shub_id_t ex_id = {{0x01, 0x8f, 0xdd, 0x61, 0x7a, 0x3b, 0x7c, 0x4e, 0x9a,
                                 0x15, 0x3d, 0x6f, 0x0b, 0x2e, 0x8c, 0x71}};
static const char *const ex_to[] = {"marac-dudley", "idva@dudley"};

/* What the Coventry-Dudley transfer flow lets the receiving MARAC see: all
 * of it but the victim's date of birth (re-collected at the new area's DASH)
 * and who owned each action at the origin. */
static const char *const ex_allowed[] = {
    "move_date",          "temporary",        "new_address",         "heard_at_origin",
    "last_referral_date", "victim.name",      "dash_score",          "minutes",
    "open_actions.id",    "open_actions.due", "open_actions.status",
};

/* Small builders for the example payload; each returns 0 or a SHUB_E* code,
 * and the first failure stops the chain in build_payload. */
static int put_text(shub_arena_t *a, shub_val_t *map, const char *key, const char *s)
{
    shub_val_t v;
    int rc = shub_val_str(a, s, strlen(s), &v);
    return rc ? rc : shub_val_put(a, map, key, v);
}

static int put_action(shub_arena_t *a, shub_val_t *list, const char *id,
                      const char *owner, const char *due)
{
    shub_val_t act = shub_val_map();
    int rc = put_text(a, &act, "id", id);
    rc = rc ? rc : put_text(a, &act, "owner", owner);
    rc = rc ? rc : put_text(a, &act, "due", due);
    rc = rc ? rc : put_text(a, &act, "status", "open");
    return rc ? rc : shub_val_push(a, list, act);
}

/* A marac.transfer payload (DOMAIN.md): the move, the repeat clock, the
 * victim, the last DASH score, the origin's minutes and its open actions.
 * Every name and reference in it is invented. */
static int build_payload(shub_arena_t *a, shub_val_t *out)
{
    shub_val_t p = shub_val_map(), addr = shub_val_map(), victim = shub_val_map();
    shub_val_t actions = shub_val_array();
    int rc = put_text(a, &p, "move_date", "2024-05-28");
    rc = rc ? rc : shub_val_put(a, &p, "temporary", shub_val_bool(true));
    rc = rc ? rc : put_text(a, &addr, "line1", "Refuge (address withheld)");
    rc = rc ? rc : put_text(a, &addr, "postcode", "DY1");
    rc = rc ? rc : shub_val_put(a, &p, "new_address", addr);
    rc = rc ? rc : shub_val_put(a, &p, "heard_at_origin", shub_val_bool(true));
    rc = rc ? rc : put_text(a, &p, "last_referral_date", "2024-02-14");
    rc = rc ? rc : put_text(a, &victim, "name", "Jane Example");
    rc = rc ? rc : put_text(a, &victim, "dob", "1991-03-07");
    rc = rc ? rc : shub_val_put(a, &p, "victim", victim);
    rc = rc ? rc : shub_val_put(a, &p, "dash_score", shub_val_int(17));
    rc = rc ? rc : put_text(a, &p, "minutes", "COV-MARAC-2024-03-12 minutes, item 4");
    rc = rc ? rc : put_action(a, &actions, "A-118", "wmp", "2024-06-10");
    rc = rc ? rc : put_action(a, &actions, "A-121", "idva-coventry", "2024-06-05");
    rc = rc ? rc : shub_val_put(a, &p, "open_actions", actions);
    if (rc == 0)
        *out = p;
    return rc;
}

static int build_event(shub_arena_t *a, shub_event_t *ev)
{
    *ev = (shub_event_t){
        .id = ex_id,
        .type = "marac.transfer",
        .occurred_ms = EX_OCCURRED_MS,
        .case_ref = "COV-MARAC-2024-0412",
        .subject_ref = "subj-5c2e91",
        .actor = "coordinator-0417",
        .area = "dudley",
        .purpose = "marac-risk-management",
        .basis = "uk-gdpr-6-1-e",
        .consent = SHUB_CONSENT_NOT_SOUGHT,
    };
    return build_payload(a, &ev->payload);
}

/* Example keys from fixed seeds. Never use them for anything real. */
static void seed_keypair(const char *label, uint8_t pk[crypto_box_PUBLICKEYBYTES],
                         uint8_t sk[crypto_box_SECRETKEYBYTES])
{
    uint8_t seed[crypto_box_SEEDBYTES];
    crypto_generichash(seed, sizeof seed, (const uint8_t *)label, strlen(label), NULL, 0);
    crypto_box_seed_keypair(pk, sk, seed);
}

/* One example being built: the message, and what it borrows. */
typedef struct {
    shub_arena_t *arena;
    shub_msg_t msg;
    shub_outcome_item_t outcomes[2];
    shub_receipt_t receipt; /* RECEIPT: the one receipt in the batch */
    shub_deliver_t deliver; /* DELIVER: the one copy in the batch */
    shub_update_t update;   /* UPDATE: the one update in the batch */
    shub_buf_t event; /* DELIVER: the minimised event, encoded */
    uint8_t *sealed;  /* DELIVER: the event sealed to the recipient */
    uint8_t rpk[crypto_box_PUBLICKEYBYTES], rsk[crypto_box_SECRETKEYBYTES];
} example_t;

static void example_free(example_t *ex)
{
    shub_arena_destroy(&ex->arena);
    shub_buf_free(&ex->event);
    shub_free(ex->sealed);
    sodium_memzero(ex->rsk, sizeof ex->rsk);
}

/* DELIVER as the broker sends it to marac-dudley: the event minimised to the
 * flow's fields, encoded alone, sealed to marac-dudley's CURVE public key. */
static int build_deliver(example_t *ex, shub_err_t *err)
{
    shub_event_t ev;
    int rc = build_event(ex->arena, &ev);
    if (rc)
        return shub_err_set(err, rc, "cannot build the example event");
    shub_val_t full = ev.payload;
    rc = shub_val_select(ex->arena, &full, ex_allowed,
                         sizeof ex_allowed / sizeof ex_allowed[0], &ev.payload, NULL,
                         NULL);
    if (rc)
        return shub_err_set(err, rc, "cannot minimise the example payload");
    if ((rc = shub_event_encode(&ev, &ex->event, err)))
        return rc;
    seed_keypair("sharehub example key: marac-dudley", ex->rpk, ex->rsk);
    size_t sealed_len = ex->event.len + SHUB_SEAL_OVERHEAD;
    ex->sealed = shub_malloc(sealed_len);
    if (!ex->sealed)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    /* A fixed ephemeral seed, so the example's bytes are reproducible; the
     * broker uses a fresh ephemeral key for every batch. */
    uint8_t seed[32];
    crypto_generichash(seed, sizeof seed, (const uint8_t *)"sharehub example batch key", 26,
                       NULL, 0);
    shub_sealer_t *sealer = shub_sealer_new_seeded(seed);
    rc = sealer ? shub_seal(sealer, ex->rpk, ex->event.data, ex->event.len, ex->sealed)
                : SHUB_ENOMEM;
    shub_sealer_destroy(&sealer);
    if (rc)
        return shub_err_set(err, SHUB_ECRYPTO, "cannot seal the example event");
    ex->deliver = (shub_deliver_t){
        .id = ex_id,
        .type = "marac.transfer",
        .from = "marac-coventry",
        .agreement = "wm-marac-transfer",
        .version = 3,
        .flow = "marac-to-marac",
        .attempt = 1,
        .sealed = ex->sealed,
        .sealed_len = (uint32_t)sealed_len,
    };
    ex->msg.deliver = (shub_deliver_batch_t){&ex->deliver, 1};
    return 0;
}

/* The ERROR a broker sends for a SHARE whose victim name is 20000 bytes. The
 * encoder applies the decoder's rules in the decoder's words, so asking it to
 * encode that SHARE yields exactly the path and rule a broker reports. */
static int build_error(example_t *ex, shub_err_t *err)
{
    shub_event_t ev;
    int rc = build_event(ex->arena, &ev);
    if (rc)
        return shub_err_set(err, rc, "cannot build the example event");
    char *name = shub_arena_alloc(ex->arena, 20000);
    if (!name)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    memset(name, 'x', 20000);
    shub_val_t *victim = (shub_val_t *)shub_val_get(&ev.payload, "victim");
    shub_val_t *vname = (shub_val_t *)shub_val_get(victim, "name");
    if (!vname)
        return shub_err_set(err, SHUB_EINVAL, "example payload has no victim.name");
    *vname = (shub_val_t){.type = SHUB_VAL_STR, .len = 20000, .as.str = name};
    shub_msg_t bad = {.type = SHUB_MSG_SHARE};
    bad.share = (shub_share_t){.ev = ev, .to = ex_to, .to_count = 2};
    shub_buf_t scratch = {0};
    shub_err_t refused;
    rc = shub_msg_encode(&bad, &scratch, &refused);
    shub_buf_free(&scratch);
    if (rc == 0)
        return shub_err_set(err, SHUB_EINVAL, "the oversized SHARE was not refused");
    char line[SHUB_ERR_PATH_MAX + SHUB_ERR_MSG_MAX + 4];
    shub_err_format(&refused, line, sizeof line);
    char *message = shub_arena_strndup(ex->arena, line, strlen(line));
    if (!message)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    ex->msg.error = (shub_error_msg_t){
        .code = shub_err_token(refused.code), .message = message, .id = &ex_id};
    return 0;
}

/* The broker's checkpoint over its chain up to audit row EX_CHECKPOINT_SEQ,
 * signed with an example checkpoint key, into *cp. */
#define EX_UPDATE_SEQ     3107
#define EX_CHECKPOINT_SEQ 48213
#define EX_CHECKPOINT_MS  (EX_BROKER_MS + 5000)
static int build_checkpoint(shub_signed_head_t *cp, shub_err_t *err)
{
    uint8_t seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES],
        sk[crypto_sign_SECRETKEYBYTES], head[SHUB_HASH_SIZE];
    static const char label[] = "sharehub example key: checkpoint";
    static const char chain[] = "sharehub example chain head";
    crypto_generichash(seed, sizeof seed, (const uint8_t *)label, sizeof label - 1, NULL,
                       0);
    crypto_sign_seed_keypair(pk, sk, seed);
    crypto_generichash(head, sizeof head, (const uint8_t *)chain, sizeof chain - 1, NULL,
                       0);
    int rc = shub_checkpoint_sign(EX_CHECKPOINT_SEQ, head, EX_CHECKPOINT_MS, sk, pk, cp);
    sodium_memzero(sk, sizeof sk);
    return rc ? shub_err_set(err, rc, "cannot sign the example checkpoint") : 0;
}

/* marac-coventry's countersignature of that checkpoint, with the witness key
 * its example CURVE key derives. */
static int build_witness(example_t *ex, shub_err_t *err)
{
    shub_signed_head_t cp;
    int rc = build_checkpoint(&cp, err);
    if (rc)
        return rc;
    uint8_t cpk[crypto_box_PUBLICKEYBYTES], csk[crypto_box_SECRETKEYBYTES];
    uint8_t wpk[SHUB_SIGN_PUBLIC_SIZE], wsk[SHUB_SIGN_SECRET_SIZE];
    seed_keypair("sharehub example key: marac-coventry", cpk, csk);
    rc = shub_witness_keypair(csk, wpk, wsk);
    if (rc == 0)
        rc = shub_witness_sign("marac-coventry", &cp, wsk, wpk, &ex->msg.witness);
    sodium_memzero(csk, sizeof csk);
    sodium_memzero(wsk, sizeof wsk);
    return rc ? shub_err_set(err, rc, "cannot countersign the example checkpoint") : 0;
}

/* Fills ex->msg with the example called `name`. SHUB_ENOTFOUND if there is
 * no such example. */
static int example_build(example_t *ex, const char *name, shub_err_t *err)
{
    ex->arena = shub_arena_new(0);
    if (!ex->arena)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    shub_msg_t *m = &ex->msg;
    int rc = 0;
    if (strcmp(name, "hello") == 0) {
        m->type = SHUB_MSG_HELLO;
        m->hello = (shub_hello_t){.agent = "sharehub-agent/0.1.0", .window = 32};
    } else if (strcmp(name, "welcome") == 0) {
        m->type = SHUB_MSG_WELCOME;
        m->welcome = (shub_welcome_t){.org = "marac-coventry",
                                      .heartbeat_ms = 5000,
                                      .max_bytes = SHUB_MSG_MAX_BYTES,
                                      .window = 64,
                                      .time_ms = EX_BROKER_MS,
                                      .backlog = 2};
    } else if (strcmp(name, "share") == 0) {
        m->type = SHUB_MSG_SHARE;
        rc = build_event(ex->arena, &m->share.ev);
        if (rc)
            return shub_err_set(err, rc, "cannot build the example event");
        m->share.to = ex_to;
        m->share.to_count = 2;
    } else if (strcmp(name, "receipt") == 0) {
        m->type = SHUB_MSG_RECEIPT;
        ex->outcomes[0] = (shub_outcome_item_t){.to = "marac-dudley",
                                                .outcome = SHUB_OUTCOME_DELIVERED,
                                                .agreement = "wm-marac-transfer",
                                                .version = 3,
                                                .flow = "marac-to-marac"};
        ex->outcomes[1] = (shub_outcome_item_t){
            .to = "idva-dudley",
            .outcome = SHUB_OUTCOME_DENIED,
            .reason = "event-type-not-permitted",
            .detail = "no active flow lets marac-coventry send marac.transfer to "
                      "idva-dudley",
            .agreement = "wm-marac-transfer",
            .version = 3};
        ex->receipt = (shub_receipt_t){.id = ex_id, .items = ex->outcomes, .count = 2};
        m->receipt = (shub_receipt_batch_t){&ex->receipt, 1};
    } else if (strcmp(name, "deliver") == 0) {
        m->type = SHUB_MSG_DELIVER;
        rc = build_deliver(ex, err);
    } else if (strcmp(name, "ack") == 0) {
        m->type = SHUB_MSG_ACK;
        m->ack = (shub_ack_t){&ex_id, 1};
    } else if (strcmp(name, "update") == 0) {
        /* marac-dudley has committed the transfer to its inbox */
        m->type = SHUB_MSG_UPDATE;
        ex->update = (shub_update_t){.seq = EX_UPDATE_SEQ,
                                     .id = ex_id,
                                     .item = {.to = "marac-dudley",
                                              .outcome = SHUB_OUTCOME_ACKNOWLEDGED,
                                              .agreement = "wm-marac-transfer",
                                              .version = 3,
                                              .flow = "marac-to-marac"}};
        m->update = (shub_update_batch_t){&ex->update, 1};
    } else if (strcmp(name, "confirm") == 0) {
        m->type = SHUB_MSG_CONFIRM;
        m->confirm.upto = EX_UPDATE_SEQ;
    } else if (strcmp(name, "checkpoint") == 0) {
        m->type = SHUB_MSG_CHECKPOINT;
        rc = build_checkpoint(&m->checkpoint, err);
    } else if (strcmp(name, "witness") == 0) {
        m->type = SHUB_MSG_WITNESS;
        rc = build_witness(ex, err);
    } else if (strcmp(name, "heartbeat") == 0) {
        m->type = SHUB_MSG_HEARTBEAT;
        m->heartbeat.time_ms = EX_BROKER_MS;
    } else if (strcmp(name, "error") == 0) {
        m->type = SHUB_MSG_ERROR;
        rc = build_error(ex, err);
    } else if (strcmp(name, "bye") == 0) {
        m->type = SHUB_MSG_BYE;
        m->bye.reason = "agent shutting down";
    } else {
        return shub_err_set(err, SHUB_ENOTFOUND, "no example called \"%s\"", name);
    }
    return rc;
}

/* The sealed part of the example DELIVER, opened with the example recipient
 * key and printed: what marac-dudley's agent commits to its inbox. */
static int print_opened(const example_t *ex)
{
    const shub_deliver_t *d = &ex->deliver;
    size_t n = d->sealed_len - SHUB_SEAL_OVERHEAD;
    uint8_t *plain = shub_malloc(n);
    shub_arena_t *arena = shub_arena_new(0);
    shub_opener_t *opener = shub_opener_new(ex->rpk, ex->rsk);
    int rc = EX_SOFTWARE;
    shub_event_t ev;
    shub_err_t err;
    if (plain && arena && opener &&
        shub_unseal(opener, d->sealed, d->sealed_len, plain) == 0 &&
        shub_event_decode(arena, plain, n, &ev, &err) == 0 &&
        memcmp(ev.id.bytes, d->id.bytes, SHUB_ID_SIZE) == 0) {
        printf("\nsealed, opened with marac-dudley's secret key (%zu bytes):\n", n);
        print_event(stdout, &ev);
        rc = 0;
    } else {
        fprintf(stderr, "sharehub-wire: the example DELIVER does not open\n");
    }
    shub_opener_destroy(&opener);
    shub_arena_destroy(&arena);
    shub_free(plain);
    return rc;
}

static int cmd_example(const char *name, bool raw)
{
    example_t ex = {0};
    shub_err_t err = {0};
    shub_buf_t out = {0};
    char line[SHUB_ERR_PATH_MAX + SHUB_ERR_MSG_MAX + 4];
    int status = 0;
    if (sodium_init() < 0) {
        fprintf(stderr, "sharehub-wire: libsodium cannot start\n");
        return EX_SOFTWARE;
    }
    int rc = example_build(&ex, name, &err);
    if (rc == 0)
        rc = shub_msg_encode(&ex.msg, &out, &err);
    if (rc) {
        fprintf(stderr, "sharehub-wire: %s\n", shub_err_format(&err, line, sizeof line));
        status = rc == SHUB_ENOTFOUND ? EX_USAGE : EX_SOFTWARE;
    } else if (raw) {
        if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0)
            status = EX_IOERR;
    } else {
        printf("%s, %zu bytes:\n", shub_msg_type_name(ex.msg.type), out.len);
        hexdump(stdout, out.data, out.len);
        printf("\n");
        print_msg(stdout, &ex.msg);
        if (ex.msg.type == SHUB_MSG_DELIVER)
            status = print_opened(&ex);
    }
    shub_buf_free(&out);
    example_free(&ex);
    return status;
}

/* ---- decode ----------------------------------------------------------- */

/* Reads all of f, refusing more than the protocol allows in one message.
 * Returns 0, EX_DATAERR (too big), EX_IOERR or EX_OSERR (out of memory);
 * *data_p and *size_p are written only on success. */
static int read_all(FILE *f, uint8_t **data_p, size_t *size_p)
{
    char *data = NULL;
    size_t n = 0;
    int rc = shub_cli_read_all(f, SHUB_MSG_MAX_BYTES, &data, &n);
    if (rc)
        return rc == SHUB_ENOMEM ? EX_OSERR : EX_IOERR;
    if (n > SHUB_MSG_MAX_BYTES) {
        shub_free(data);
        return EX_DATAERR;
    }
    *data_p = (uint8_t *)data;
    *size_p = n;
    return 0;
}

static int cmd_decode(const char *file)
{
    bool is_stdin = !file || strcmp(file, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "sharehub-wire: cannot open \"%s\": %s\n", file, strerror(errno));
        return EX_NOINPUT;
    }
    uint8_t *data = NULL;
    size_t size = 0;
    int status = read_all(f, &data, &size);
    if (!is_stdin)
        fclose(f);
    if (status == EX_DATAERR) {
        fprintf(stderr, "message: input of more than %d bytes exceeds limit %d (%s)\n",
                SHUB_MSG_MAX_BYTES, SHUB_MSG_MAX_BYTES, shub_err_token(SHUB_ELIMIT));
        return status;
    }
    if (status) {
        fprintf(stderr, "sharehub-wire: cannot read \"%s\"\n", is_stdin ? "-" : file);
        return status;
    }
    shub_msg_t *msg = NULL;
    shub_err_t err = {0};
    /* An empty input is a message of 0 bytes; the codec says why that is bad. */
    static const uint8_t none;
    if (shub_msg_decode(size ? data : &none, size, &msg, &err) != 0) {
        char line[SHUB_ERR_PATH_MAX + SHUB_ERR_MSG_MAX + 4];
        fprintf(stderr, "%s (%s)\n", shub_err_format(&err, line, sizeof line),
                shub_err_token(err.code));
        status = err.code == SHUB_ENOMEM ? EX_OSERR : EX_DATAERR;
    } else {
        print_msg(stdout, msg);
    }
    shub_msg_destroy(&msg);
    shub_free(data);
    return status;
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs(
        "usage: sharehub-wire example NAME [--raw]\n"
        "       sharehub-wire decode [FILE|-]\n"
        "       sharehub-wire --version | --help\n"
        "\n"
        "  example NAME  print one example message, built with the real encoder:\n"
        "                its bytes as a hex dump, then a readable form. NAME is one of\n"
        "                hello welcome share receipt deliver ack update confirm\n"
        "                checkpoint witness heartbeat error bye.\n"
        "                --raw writes the encoded bytes alone to stdout.\n"
        "  decode        decode one encoded message from FILE or stdin and print it;\n"
        "                a message the codec refuses is reported as\n"
        "                \"PATH: rule (token)\" with exit status 65.\n"
        "\n",
        f);
    shub_cli_exit_help(f);
}

/* Says what is wrong (and with which argument, if any), then how to call. */
static int usage_error(const char *what, const char *arg)
{
    if (arg)
        fprintf(stderr, "sharehub-wire: %s \"%s\"\n", what, arg);
    else
        fprintf(stderr, "sharehub-wire: %s\n", what);
    usage(stderr);
    return EX_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("no command given", NULL);
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0)
        return shub_cli_version("sharehub-wire");
    if (strcmp(cmd, "example") == 0) {
        const char *name = NULL;
        bool raw = false;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--raw") == 0)
                raw = true;
            else if (!name && argv[i][0] != '-')
                name = argv[i];
            else
                return usage_error("unexpected argument", argv[i]);
        }
        if (!name)
            return usage_error("example needs a NAME", NULL);
        return cmd_example(name, raw);
    }
    if (strcmp(cmd, "decode") == 0) {
        if (argc > 3)
            return usage_error("unexpected argument", argv[3]);
        return cmd_decode(argc == 3 ? argv[2] : NULL);
    }
    return usage_error("unknown command", cmd);
}
