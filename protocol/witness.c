/*
 * witness: checkpoints and countersignatures (include/sharehub/witness.h).
 *
 * Everything here is a fixed byte layout and one libsodium call: Ed25519
 * detached signatures, and BLAKE2b for deriving an agent's witness key from
 * its CURVE secret key. Values the protocol forbids (a seq below 1, a time
 * before 1970, an org id that is not a name) are refused before anything is
 * signed or verified, so a signature never covers what a peer's codec would
 * refuse to carry.
 *
 * The export format of kept checkpoints is written and read here too, so the
 * one writer and the one parser cannot drift apart. The parser reads a file
 * an auditor was handed: it walks the bytes once, checks each line's length
 * before looking inside it, each field's length before decoding it, and
 * grows its list only as lines are accepted (never from a declared count).
 */
#include "sharehub/witness.h"

#include "sharehub/alloc.h"
#include "sharehub/err.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

_Static_assert(crypto_sign_PUBLICKEYBYTES == SHUB_SIGN_PUBLIC_SIZE, "Ed25519 public key");
_Static_assert(crypto_sign_SECRETKEYBYTES == SHUB_SIGN_SECRET_SIZE, "Ed25519 secret key");
_Static_assert(crypto_sign_BYTES == SHUB_SIGNATURE_SIZE, "Ed25519 signature");
_Static_assert(crypto_sign_SEEDBYTES == 32, "Ed25519 seed");

static void put_be64(uint8_t *out, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* seq || head || at: the tail both layouts share. Writes 48 bytes. */
static void put_head(uint8_t *out, int64_t seq, const uint8_t head[SHUB_HASH_SIZE],
                     int64_t at_ms)
{
    put_be64(out, (uint64_t)seq);
    memcpy(out + 8, head, SHUB_HASH_SIZE);
    put_be64(out + 8 + SHUB_HASH_SIZE, (uint64_t)at_ms);
}

/* The protocol's rules for a signed head (SPEC 5.13): seq >= 1, at >= 0. */
static bool head_valid(int64_t seq, int64_t at_ms)
{
    return seq >= 1 && at_ms >= 0;
}

/* Whether pk is the public half of sk (libsodium keeps it in sk's tail). */
static bool pair_matches(const uint8_t sk[SHUB_SIGN_SECRET_SIZE],
                         const uint8_t pk[SHUB_SIGN_PUBLIC_SIZE])
{
    uint8_t derived[SHUB_SIGN_PUBLIC_SIZE];
    return crypto_sign_ed25519_sk_to_pk(derived, sk) == 0 &&
           sodium_memcmp(derived, pk, sizeof derived) == 0;
}

/* Signs msg with sk into a copy of `from` whose key becomes pk; *out is
 * written only when the signature is made. */
static int sign_head(const uint8_t *msg, size_t len, const shub_signed_head_t *from,
                     const uint8_t sk[SHUB_SIGN_SECRET_SIZE],
                     const uint8_t pk[SHUB_SIGN_PUBLIC_SIZE], shub_signed_head_t *out)
{
    if (sodium_init() < 0)
        return SHUB_ECRYPTO;
    if (!pair_matches(sk, pk))
        return SHUB_EINVAL;
    shub_signed_head_t signed_ = *from;
    memcpy(signed_.key, pk, SHUB_SIGN_PUBLIC_SIZE);
    if (crypto_sign_detached(signed_.sig, NULL, msg, len, sk) != 0)
        return SHUB_ECRYPTO;
    *out = signed_;
    return 0;
}

/* ---- checkpoints ------------------------------------------------------- */

void shub_checkpoint_message(int64_t seq, const uint8_t head[SHUB_HASH_SIZE],
                             int64_t at_ms, uint8_t out[SHUB_CHECKPOINT_MSG_SIZE])
{
    size_t tag = sizeof SHUB_CHECKPOINT_TAG - 1;
    memcpy(out, SHUB_CHECKPOINT_TAG, tag);
    put_head(out + tag, seq, head, at_ms);
}

int shub_checkpoint_sign(int64_t seq, const uint8_t head[SHUB_HASH_SIZE], int64_t at_ms,
                         const uint8_t sk[SHUB_SIGN_SECRET_SIZE],
                         const uint8_t pk[SHUB_SIGN_PUBLIC_SIZE], shub_signed_head_t *out)
{
    if (!head || !sk || !pk || !out || !head_valid(seq, at_ms))
        return SHUB_EINVAL;
    uint8_t msg[SHUB_CHECKPOINT_MSG_SIZE];
    shub_checkpoint_message(seq, head, at_ms, msg);
    shub_signed_head_t cp = {.seq = seq, .at_ms = at_ms};
    memcpy(cp.head, head, SHUB_HASH_SIZE);
    return sign_head(msg, sizeof msg, &cp, sk, pk, out);
}

int shub_checkpoint_verify(const shub_signed_head_t *cp, const uint8_t *expected_key)
{
    if (!cp || !head_valid(cp->seq, cp->at_ms))
        return SHUB_EINVAL;
    if (sodium_init() < 0)
        return SHUB_ECRYPTO;
    if (expected_key && sodium_memcmp(cp->key, expected_key, SHUB_SIGN_PUBLIC_SIZE) != 0)
        return SHUB_ECRYPTO;
    uint8_t msg[SHUB_CHECKPOINT_MSG_SIZE];
    shub_checkpoint_message(cp->seq, cp->head, cp->at_ms, msg);
    return crypto_sign_verify_detached(cp->sig, msg, sizeof msg, cp->key) == 0
               ? 0
               : SHUB_ECRYPTO;
}

/* ---- witnesses --------------------------------------------------------- */

int shub_witness_keypair(const uint8_t curve_secret[32],
                         uint8_t pk[SHUB_SIGN_PUBLIC_SIZE],
                         uint8_t sk[SHUB_SIGN_SECRET_SIZE])
{
    if (!curve_secret || !pk || !sk)
        return SHUB_EINVAL;
    if (sodium_init() < 0)
        return SHUB_ECRYPTO;
    uint8_t seed[crypto_sign_SEEDBYTES];
    int rc = crypto_generichash(seed, sizeof seed, curve_secret, 32,
                                (const uint8_t *)SHUB_WITNESS_KEY_TAG,
                                sizeof SHUB_WITNESS_KEY_TAG - 1) == 0 &&
                     crypto_sign_seed_keypair(pk, sk, seed) == 0
                 ? 0
                 : SHUB_ECRYPTO;
    sodium_memzero(seed, sizeof seed);
    return rc;
}

int shub_witness_message(const char *org, int64_t seq, const uint8_t head[SHUB_HASH_SIZE],
                         int64_t at_ms, uint8_t out[SHUB_WITNESS_MSG_MAX], size_t *len)
{
    if (!shub_is_name(org) || !head || !out || !len)
        return SHUB_EINVAL;
    size_t tag = sizeof SHUB_WITNESS_TAG - 1, n = strlen(org); /* n <= 64: a name */
    memcpy(out, SHUB_WITNESS_TAG, tag);
    out[tag] = (uint8_t)n;
    memcpy(out + tag + 1, org, n);
    put_head(out + tag + 1 + n, seq, head, at_ms);
    *len = tag + 1 + n + 8 + SHUB_HASH_SIZE + 8;
    return 0;
}

int shub_witness_sign(const char *org, const shub_signed_head_t *checkpoint,
                      const uint8_t sk[SHUB_SIGN_SECRET_SIZE],
                      const uint8_t pk[SHUB_SIGN_PUBLIC_SIZE], shub_signed_head_t *out)
{
    if (!checkpoint || !sk || !pk || !out ||
        !head_valid(checkpoint->seq, checkpoint->at_ms))
        return SHUB_EINVAL;
    uint8_t msg[SHUB_WITNESS_MSG_MAX];
    size_t len;
    int rc = shub_witness_message(org, checkpoint->seq, checkpoint->head,
                                  checkpoint->at_ms, msg, &len);
    return rc ? rc : sign_head(msg, len, checkpoint, sk, pk, out);
}

int shub_witness_verify(const char *org, const shub_signed_head_t *w)
{
    if (!w || !head_valid(w->seq, w->at_ms))
        return SHUB_EINVAL;
    uint8_t msg[SHUB_WITNESS_MSG_MAX];
    size_t len;
    int rc = shub_witness_message(org, w->seq, w->head, w->at_ms, msg, &len);
    if (rc)
        return rc;
    if (sodium_init() < 0)
        return SHUB_ECRYPTO;
    return crypto_sign_verify_detached(w->sig, msg, len, w->key) == 0 ? 0 : SHUB_ECRYPTO;
}

/* ---- the export format ------------------------------------------------- */

static const char *const cp_state_names[] = {NULL, "witnessed", "fork"};

const char *shub_cp_state_name(shub_cp_state_t state)
{
    return state == SHUB_CP_WITNESSED || state == SHUB_CP_FORK ? cp_state_names[state]
                                                               : "?";
}

static char *put_hex(char *out, const uint8_t *bin, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        *out++ = digits[bin[i] >> 4];
        *out++ = digits[bin[i] & 15];
    }
    return out;
}

int shub_cp_export_line(const shub_kept_cp_t *k, char out[SHUB_CP_EXPORT_LINE_MAX],
                        size_t *len)
{
    if (!k || !out || !len || !shub_is_name(k->org) ||
        (k->state != SHUB_CP_WITNESSED && k->state != SHUB_CP_FORK) ||
        !head_valid(k->cp.seq, k->cp.at_ms))
        return SHUB_EINVAL;
    /* 64 + 1 + 9 + 1 + 19 + 1 + 19 + 1 + 64 + 1 + 64 + 1 + 128 + 1 = 375 at most */
    int n = snprintf(out, SHUB_CP_EXPORT_LINE_MAX, "%s %s %lld %lld ", k->org,
                     shub_cp_state_name(k->state), (long long)k->cp.seq,
                     (long long)k->cp.at_ms);
    char *p = out + n;
    p = put_hex(p, k->cp.head, SHUB_HASH_SIZE);
    *p++ = ' ';
    p = put_hex(p, k->cp.key, SHUB_SIGN_PUBLIC_SIZE);
    *p++ = ' ';
    p = put_hex(p, k->cp.sig, SHUB_SIGNATURE_SIZE);
    *p++ = '\n';
    *p = '\0';
    *len = (size_t)(p - out);
    return 0;
}

/* Where the parser is, for messages: the file's name, the line, and the
 * column (1-based) the offending field starts at. */
typedef struct cursor {
    const char *name;
    int line;
    shub_err_t *err;
} cursor_t;

static int fail_at(const cursor_t *c, int code, size_t column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(const cursor_t *c, int code, size_t column, const char *fmt, ...)
{
    char msg[SHUB_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return shub_err_set_at(c->err, code, c->name ? c->name : "checkpoints", c->line,
                           (int)column, "%s", msg);
}

/* A field of a line: where it starts and how long it is. */
typedef struct field {
    const char *p;
    size_t len, column;
} field_t;

enum { F_ORG, F_STATE, F_SEQ, F_AT, F_HEAD, F_KEY, F_SIG, N_FIELDS };

static const char *const field_names[N_FIELDS] = {"org",  "state", "seq", "at",
                                                  "head", "key",   "sig"};

/* A decimal number from min to INT64_MAX: digits only, no sign, no leading
 * zero, at most 19 digits, checked before it is added up. */
static int parse_number(const cursor_t *c, const field_t *f, int which, int64_t min,
                        int64_t *out)
{
    const char *what = field_names[which];
    if (f->len > 19 || (f->len > 1 && f->p[0] == '0'))
        return fail_at(c, SHUB_EVALUE, f->column,
                       "%s: expected a decimal integer from %lld to 9223372036854775807",
                       what, (long long)min);
    uint64_t v = 0;
    for (size_t i = 0; i < f->len; i++) {
        if (f->p[i] < '0' || f->p[i] > '9')
            return fail_at(c, SHUB_EVALUE, f->column + i, "%s: not a decimal digit",
                           what);
        v = v * 10 + (uint64_t)(f->p[i] - '0'); /* 19 digits cannot overflow 64 bits */
    }
    if (v > (uint64_t)INT64_MAX || (int64_t)v < min)
        return fail_at(c, SHUB_EVALUE, f->column,
                       "%s: expected a decimal integer from %lld to 9223372036854775807",
                       what, (long long)min);
    *out = (int64_t)v;
    return 0;
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Exactly 2n lowercase hex digits into n bytes. */
static int parse_hex(const cursor_t *c, const field_t *f, int which, uint8_t *out,
                     size_t n)
{
    const char *what = field_names[which];
    if (f->len != 2 * n)
        return fail_at(c, SHUB_EVALUE, f->column,
                       "%s: %zu characters, expected %zu lowercase hex digits", what,
                       f->len, 2 * n);
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(f->p[2 * i]), lo = hex_digit(f->p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return fail_at(c, SHUB_EVALUE, f->column + 2 * i + (hi < 0 ? 0 : 1),
                           "%s: not a lowercase hex digit", what);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* One checkpoint line (without its newline), already checked for length
 * and for bytes outside printable ASCII. */
static int parse_line(const cursor_t *c, const char *p, size_t len, shub_kept_cp_t *k)
{
    field_t f[N_FIELDS];
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != ' ')
            continue;
        if (nf == N_FIELDS)
            return fail_at(c, SHUB_EMALFORMED, start + 1,
                           "more than %d fields, expected: org state seq at head key sig",
                           N_FIELDS);
        if (i == start)
            return fail_at(c, SHUB_EMALFORMED, start + 1,
                           "%s: empty (fields are separated by one space)",
                           field_names[nf]);
        f[nf++] = (field_t){.p = p + start, .len = i - start, .column = start + 1};
        start = i + 1;
    }
    if (nf < N_FIELDS)
        return fail_at(c, SHUB_EMALFORMED, len + 1,
                       "%s: missing (%zu fields, expected %d: org state seq at head key "
                       "sig)",
                       field_names[nf], nf, N_FIELDS);

    memset(k, 0, sizeof *k);
    const field_t *org = &f[F_ORG];
    if (org->len > SHUB_MSG_MAX_NAME)
        return fail_at(c, SHUB_EVALUE, org->column, "org: %zu bytes exceeds limit %d",
                       org->len, SHUB_MSG_MAX_NAME);
    memcpy(k->org, org->p, org->len);
    k->org[org->len] = '\0';
    if (!shub_is_name(k->org))
        return fail_at(c, SHUB_EVALUE, org->column,
                       "org: not an organisation id (a-z, 0-9, '.', '_', '-')");
    const field_t *st = &f[F_STATE];
    if (st->len == 9 && memcmp(st->p, "witnessed", 9) == 0)
        k->state = SHUB_CP_WITNESSED;
    else if (st->len == 4 && memcmp(st->p, "fork", 4) == 0)
        k->state = SHUB_CP_FORK;
    else
        return fail_at(c, SHUB_EVALUE, st->column, "state: not one of witnessed, fork");
    int rc;
    if ((rc = parse_number(c, &f[F_SEQ], F_SEQ, 1, &k->cp.seq)) ||
        (rc = parse_number(c, &f[F_AT], F_AT, 0, &k->cp.at_ms)) ||
        (rc = parse_hex(c, &f[F_HEAD], F_HEAD, k->cp.head, SHUB_HASH_SIZE)) ||
        (rc = parse_hex(c, &f[F_KEY], F_KEY, k->cp.key, SHUB_SIGN_PUBLIC_SIZE)) ||
        (rc = parse_hex(c, &f[F_SIG], F_SIG, k->cp.sig, SHUB_SIGNATURE_SIZE)))
        return rc;
    return 0;
}

int shub_cp_export_parse(const char *name, const char *data, size_t len,
                         shub_kept_cp_t **list_p, size_t *n_p, shub_err_t *err)
{
    cursor_t c = {.name = name, .line = 0, .err = err};
    shub_kept_cp_t *list = NULL;
    size_t n = 0, cap = 0, pos = 0;
    int rc = 0;
    if (!data || !list_p || !n_p)
        return shub_err_set(err, SHUB_EINVAL, "checkpoints: no input or no result");
    const size_t header = sizeof SHUB_CP_EXPORT_HEADER - 1;
    while (pos < len) {
        c.line++;
        size_t rest = len - pos, max = SHUB_CP_EXPORT_LINE_MAX;
        const char *nl = memchr(data + pos, '\n', rest < max ? rest : max);
        if (!nl) {
            rc = rest < max ? fail_at(&c, SHUB_EMALFORMED, rest + 1,
                                      "no newline at the end of the file (cut short?)")
                            : fail_at(&c, SHUB_ELIMIT, max, "line longer than %zu bytes",
                                      max - 1);
            goto fail;
        }
        size_t llen = (size_t)(nl - (data + pos));
        const char *line = data + pos;
        pos += llen + 1;
        for (size_t i = 0; i < llen; i++) {
            unsigned char ch = (unsigned char)line[i];
            if (ch < 0x20 || ch >= 0x7f) {
                rc = fail_at(&c, SHUB_EMALFORMED, i + 1,
                             "byte 0x%02x: only printable ASCII is allowed", ch);
                goto fail;
            }
        }
        if (c.line == 1) {
            if (llen >= 21 && memcmp(line, "sharehub-checkpoints ", 21) == 0 &&
                !(llen == header && memcmp(line, SHUB_CP_EXPORT_HEADER, header) == 0)) {
                rc = fail_at(&c, SHUB_EVERSION, 22,
                             "not version 1 of the checkpoint export format (this "
                             "program reads 1)");
                goto fail;
            }
            if (llen != header || memcmp(line, SHUB_CP_EXPORT_HEADER, header) != 0) {
                rc = fail_at(&c, SHUB_EMALFORMED, 1,
                             "not a checkpoint export: the first line must be '%s'",
                             SHUB_CP_EXPORT_HEADER);
                goto fail;
            }
            continue;
        }
        if (n == SHUB_CP_EXPORT_MAX) {
            rc = fail_at(&c, SHUB_ELIMIT, 1, "more than %u checkpoints in one file",
                         SHUB_CP_EXPORT_MAX);
            goto fail;
        }
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            shub_kept_cp_t *grown = shub_realloc(list, ncap * sizeof *grown);
            if (!grown) {
                rc = shub_err_set(err, SHUB_ENOMEM, "checkpoints: out of memory");
                goto fail;
            }
            list = grown;
            cap = ncap;
        }
        if ((rc = parse_line(&c, line, llen, &list[n])))
            goto fail;
        n++;
    }
    if (c.line == 0) {
        c.line = 1;
        rc = fail_at(&c, SHUB_EMALFORMED, 1,
                     "empty: a checkpoint export starts with the line '%s'",
                     SHUB_CP_EXPORT_HEADER);
        goto fail;
    }
    if (n == 0) {
        shub_free(list);
        list = NULL;
    }
    *list_p = list;
    *n_p = n;
    return 0;
fail:
    shub_free(list);
    return rc;
}
