/*
 * msg: the codec (include/sharehub/msg.h, protocol/SPEC.md).
 *
 * Decoding is two steps. First a bounded reader walks the bytes into a value
 * tree in the message's arena, enforcing every structural rule: declared
 * lengths against the bytes that remain, the size/depth/count/length limits,
 * UTF-8, field-name keys, no duplicate keys, no trailing bytes. Nothing is
 * allocated from a declared length until that length has been checked against
 * both its limit and the input that is really there. Then the top-level map is
 * bound to the C struct of its type through a field table: one table per
 * message type (a batch's items have tables of their own, reached from it),
 * used by the encoder too, so the two sides cannot drift.
 *
 * Encoding uses msgpack-c's packer, writing through a callback into a
 * shub_buf_t, and checks each field against the same table and limits. Short
 * text, most keys and values, is written straight into the buffer in the bytes
 * msgpack-c would write, which halves the calls on the hot path.
 */
#include "sharehub/msg.h"

#include "sharehub/alloc.h"

#include <msgpack.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- field paths for error messages ----------------------------------- */

typedef struct {
    const char *root; /* "SHARE", "payload", or "message" until the type is known */
    int depth;
    struct {
        const char *key; /* NULL: an array index */
        uint32_t index;
    } seg[SHUB_MSG_MAX_DEPTH + 2];
} path_t;

static void path_push_key(path_t *p, const char *key)
{
    if (p->depth < (int)(sizeof p->seg / sizeof p->seg[0]))
        p->seg[p->depth].key = key, p->seg[p->depth].index = 0;
    p->depth++;
}

static void path_push_index(path_t *p, uint32_t index)
{
    if (p->depth < (int)(sizeof p->seg / sizeof p->seg[0]))
        p->seg[p->depth].key = NULL, p->seg[p->depth].index = index;
    p->depth++;
}

static void path_pop(path_t *p)
{
    p->depth--;
}

static void path_format(const path_t *p, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "%s", p->root);
    int shown = p->depth < (int)(sizeof p->seg / sizeof p->seg[0])
                    ? p->depth
                    : (int)(sizeof p->seg / sizeof p->seg[0]);
    for (int i = 0; i < shown && n < size; i++) {
        if (p->seg[i].key)
            n += (size_t)snprintf(out + n, size - n, ".%s", p->seg[i].key);
        else
            n += (size_t)snprintf(out + n, size - n, "[%u]", p->seg[i].index);
    }
}

__attribute__((format(printf, 4, 5))) static int fail(const path_t *p, shub_err_t *err,
                                                      int code, const char *fmt, ...)
{
    if (!err)
        return code;
    /* Room for the longest path the reader can build (every segment a 64-byte
     * key), so that shub_err_set_path, not this buffer, decides what to cut:
     * it keeps the tail, the deepest and most telling part. */
    char path[16 + (SHUB_VAL_MAX_KEY + 1) * (SHUB_MSG_MAX_DEPTH + 2)];
    char msg[SHUB_ERR_MSG_MAX];
    path_format(p, path, sizeof path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return shub_err_set_path(err, code, path, "%s", msg);
}

/* ---- names and enums -------------------------------------------------- */

static const char *const type_names[] = {
    NULL,        "HELLO", "WELCOME", "SHARE",  "RECEIPT", "DELIVER",    "ACK",
    "HEARTBEAT", "ERROR", "BYE",     "UPDATE", "CONFIRM", "CHECKPOINT", "WITNESS",
};
_Static_assert(sizeof type_names / sizeof type_names[0] == SHUB_MSG_TYPE_LAST + 1,
               "a name for every message type");
static const char *const consent_names[] = {NULL, "given", "refused", "not-sought"};
static const char *const outcome_names[] = {NULL,     "queued", "delivered", "acknowledged",
                                            "denied", "dead"};

#define COUNT(a) (int)(sizeof(a) / sizeof((a)[0]))

static int lookup(const char *const *names, int count, const char *name)
{
    for (int i = 1; name && i < count; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

const char *shub_msg_type_name(shub_msg_type_t type)
{
    /* unsigned, so that an out-of-range value from a cast cannot index backwards */
    return (unsigned)type >= 1 && (unsigned)type < COUNT(type_names) ? type_names[type]
                                                                     : "?";
}

const char *shub_consent_name(shub_consent_t c)
{
    return (unsigned)c >= 1 && (unsigned)c < COUNT(consent_names) ? consent_names[c]
                                                                  : "?";
}

int shub_consent_parse(const char *name)
{
    return lookup(consent_names, COUNT(consent_names), name);
}

const char *shub_outcome_name(shub_outcome_t o)
{
    return (unsigned)o >= 1 && (unsigned)o < COUNT(outcome_names) ? outcome_names[o]
                                                                  : "?";
}

int shub_outcome_parse(const char *name)
{
    return lookup(outcome_names, COUNT(outcome_names), name);
}

bool shub_is_selector(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n == 0 || n > SHUB_MSG_MAX_NAME)
        return false;
    const char *at = memchr(s, '@', n);
    if (!at)
        return shub_name_span(s, n);
    size_t kind = (size_t)(at - s);
    return (kind == 0 || shub_name_span(s, kind)) && shub_name_span(at + 1, n - kind - 1);
}

/* ---- the bounded reader ----------------------------------------------- */

typedef struct {
    const uint8_t *p, *end;
    shub_arena_t *arena;
    uint32_t nodes;
    bool typed; /* a whole message: its "type" key renames the path root */
    path_t path;
    shub_err_t *err;
    char *text;        /* room for the copies of text values and keys */
    size_t text_left;  /* bytes of it still free */
    size_t text_chunk; /* bytes to take from the arena when it runs out */
} reader_t;

/* Text values and keys are copied into chunks of the arena, one after the
 * other, instead of one arena allocation each. Every one of them occupies
 * its length plus at least a header byte of the input, so their copies (with
 * a NUL each) never need more room than the input's size: a message of up
 * to TEXT_CHUNK bytes takes one chunk of its own size, a larger one chunks of
 * TEXT_CHUNK, and a text too long for a quarter chunk an allocation alone. */
#define TEXT_CHUNK 4096

static void reader_init(reader_t *r, const void *data, size_t size, shub_arena_t *arena,
                        const char *root, shub_err_t *err)
{
    *r = (reader_t){.p = data,
                    .end = (const uint8_t *)data + size,
                    .arena = arena,
                    .path = {.root = root},
                    .err = err,
                    .text_chunk = size < 64           ? 64
                                  : size < TEXT_CHUNK ? size
                                                      : TEXT_CHUNK};
}

/* A NUL-terminated copy of s[0..n) in the reader's text room. */
static char *copy_text(reader_t *r, const uint8_t *s, size_t n)
{
    if (n >= r->text_left) {
        if (n >= r->text_chunk / 4)
            return shub_arena_strndup(r->arena, (const char *)s, n);
        r->text = shub_arena_alloc(r->arena, r->text_chunk);
        if (!r->text)
            return NULL;
        r->text_left = r->text_chunk;
    }
    char *copy = r->text;
    memcpy(copy, s, n);
    copy[n] = '\0';
    r->text += n + 1;
    r->text_left -= n + 1;
    return copy;
}

/* True if every byte is 0x01..0x7f: ASCII without a NUL, so valid UTF-8 and
 * a valid C string. Most text is; only the rest needs the full checks. */
static bool plain_ascii(const void *data, size_t n)
{
    const uint8_t *s = data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, sizeof w);
        /* a high bit set, or (with none set) a zero byte */
        if ((w & 0x8080808080808080u) ||
            ((w - 0x0101010101010101u) & ~w & 0x8080808080808080u))
            return false;
    }
    for (; i < n; i++)
        if (s[i] == 0 || s[i] >= 0x80)
            return false;
    return true;
}

static size_t remain(const reader_t *r)
{
    return (size_t)(r->end - r->p);
}

static int need(reader_t *r, size_t n)
{
    if (remain(r) < n)
        return fail(&r->path, r->err, SHUB_EMALFORMED,
                    "truncated: %zu more bytes needed, %zu remain", n, remain(r));
    return 0;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads an n-byte big-endian length or number that follows the type byte. */
static int read_be(reader_t *r, int n, uint64_t *out)
{
    int rc = need(r, (size_t)n);
    if (rc)
        return rc;
    *out = be(r->p, n);
    r->p += n;
    return 0;
}

static int nomem(reader_t *r)
{
    return fail(&r->path, r->err, SHUB_ENOMEM, "out of memory");
}

static int read_value(reader_t *r, shub_val_t *out, int depth);

static int read_text(reader_t *r, uint64_t len, shub_val_t *out)
{
    if (len > SHUB_MSG_MAX_TEXT)
        return fail(&r->path, r->err, SHUB_ELIMIT, "text of %llu bytes exceeds limit %d",
                    (unsigned long long)len, SHUB_MSG_MAX_TEXT);
    int rc = need(r, (size_t)len);
    if (rc)
        return rc;
    const char *s = (const char *)r->p;
    if (!plain_ascii(s, (size_t)len)) {
        if (memchr(s, '\0', (size_t)len))
            return fail(&r->path, r->err, SHUB_EVALUE, "text contains a NUL byte");
        if (!shub_utf8_valid(s, (size_t)len))
            return fail(&r->path, r->err, SHUB_EUTF8, "text is not valid UTF-8");
    }
    char *copy = copy_text(r, r->p, (size_t)len);
    if (!copy)
        return nomem(r);
    r->p += len;
    *out = (shub_val_t){.type = SHUB_VAL_STR, .len = (uint32_t)len, .as.str = copy};
    return 0;
}

static int read_bin(reader_t *r, uint64_t len, shub_val_t *out)
{
    if (len > SHUB_MSG_MAX_BIN)
        return fail(&r->path, r->err, SHUB_ELIMIT, "binary of %llu bytes exceeds limit %d",
                    (unsigned long long)len, SHUB_MSG_MAX_BIN);
    int rc = need(r, (size_t)len);
    if (rc)
        return rc;
    uint8_t *copy = shub_arena_alloc(r->arena, (size_t)len);
    if (!copy)
        return nomem(r);
    if (len)
        memcpy(copy, r->p, (size_t)len);
    r->p += len;
    *out = (shub_val_t){.type = SHUB_VAL_BIN, .len = (uint32_t)len, .as.bin = copy};
    return 0;
}

/* Checks a declared count before anything is allocated for it: the limit
 * first, then that the input can hold it (each item takes at least
 * `min_bytes` bytes), so a 5-byte message cannot ask for gigabytes. */
static int check_count(reader_t *r, uint64_t n, size_t min_bytes, const char *what)
{
    if (n > SHUB_MSG_MAX_ITEMS)
        return fail(&r->path, r->err, SHUB_ELIMIT, "%s of %llu entries exceeds limit %d",
                    what, (unsigned long long)n, SHUB_MSG_MAX_ITEMS);
    if (n * min_bytes > remain(r))
        return fail(&r->path, r->err, SHUB_EMALFORMED,
                    "%s declares %llu entries but only %zu bytes remain", what,
                    (unsigned long long)n, remain(r));
    return 0;
}

static int read_array(reader_t *r, uint64_t n, shub_val_t *out, int depth)
{
    int rc = check_count(r, n, 1, "array");
    if (rc)
        return rc;
    shub_val_t *items = shub_arena_alloc(r->arena, (size_t)n * sizeof *items);
    if (!items)
        return nomem(r);
    for (uint32_t i = 0; i < n; i++) {
        path_push_index(&r->path, i);
        rc = read_value(r, &items[i], depth + 1);
        if (rc)
            return rc;
        path_pop(&r->path);
    }
    *out = (shub_val_t){.type = SHUB_VAL_ARRAY, .len = (uint32_t)n, .cap = (uint32_t)n,
                        .as.items = items};
    return 0;
}

static int read_key(reader_t *r, shub_pair_t *pair)
{
    int rc = need(r, 1);
    if (rc)
        return rc;
    uint8_t b = *r->p++;
    uint64_t len;
    if (b >= 0xa0 && b <= 0xbf)
        len = b & 0x1f;
    else if (b == 0xd9 || b == 0xda || b == 0xdb) {
        rc = read_be(r, 1 << (b - 0xd9), &len);
        if (rc)
            return rc;
    } else {
        return fail(&r->path, r->err, SHUB_ETYPE, "map key is not text");
    }
    if (len > SHUB_VAL_MAX_KEY)
        return fail(&r->path, r->err, SHUB_ELIMIT, "key of %llu bytes exceeds limit %d",
                    (unsigned long long)len, SHUB_VAL_MAX_KEY);
    rc = need(r, (size_t)len);
    if (rc)
        return rc;
    if (!shub_val_is_field_name((const char *)r->p, (size_t)len))
        return fail(&r->path, r->err, SHUB_EVALUE,
                    "key is not a field name (1-64 of A-Z a-z 0-9 _ -)");
    char *key = copy_text(r, r->p, (size_t)len);
    if (!key)
        return nomem(r);
    r->p += len;
    pair->key = key;
    pair->key_len = (uint32_t)len;
    return 0;
}

/* Whether two keys are the same: lengths and end bytes first, as most keys of
 * one map differ there. Keys are field names, so never empty. */
static bool same_key(const shub_pair_t *a, const shub_pair_t *b)
{
    return a->key_len == b->key_len && a->key[0] == b->key[0] &&
           a->key[a->key_len - 1] == b->key[b->key_len - 1] &&
           memcmp(a->key, b->key, a->key_len) == 0;
}

/* Orders keys by their bytes, then by length. */
static int cmp_pair_key(const void *a, const void *b)
{
    const shub_pair_t *x = *(const shub_pair_t *const *)a,
                      *y = *(const shub_pair_t *const *)b;
    int c = memcmp(x->key, y->key, x->key_len < y->key_len ? x->key_len : y->key_len);
    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

#define SMALL_MAP 16 /* above this, find_duplicate sorts */

/* A pair whose key repeats an earlier one, or NULL; decoder and encoder both
 * ask, once the map's values are read or written. Pairwise in a small map; a
 * larger one is sorted through `sorted`, room for n pointers the caller
 * provides, so a 4096-key map cannot cost 8 million comparisons. */
static const shub_pair_t *find_duplicate(const shub_pair_t *pairs, uint32_t n,
                                         const shub_pair_t **sorted)
{
    if (n <= SMALL_MAP) {
        for (uint32_t i = 1; i < n; i++)
            for (uint32_t j = 0; j < i; j++)
                if (same_key(&pairs[i], &pairs[j]))
                    return &pairs[i];
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++)
        sorted[i] = &pairs[i];
    qsort(sorted, n, sizeof *sorted, cmp_pair_key);
    for (uint32_t i = 1; i < n; i++)
        if (same_key(sorted[i], sorted[i - 1]))
            return sorted[i];
    return NULL;
}

static int read_map(reader_t *r, uint64_t n, shub_val_t *out, int depth)
{
    int rc = check_count(r, n, 2, "map");
    if (rc)
        return rc;
    shub_pair_t *pairs = shub_arena_alloc(r->arena, (size_t)n * sizeof *pairs);
    if (!pairs)
        return nomem(r);
    for (uint32_t i = 0; i < n; i++) {
        rc = read_key(r, &pairs[i]);
        if (rc)
            return rc;
        path_push_key(&r->path, pairs[i].key);
        rc = read_value(r, &pairs[i].val, depth + 1);
        if (rc)
            return rc;
        path_pop(&r->path);
        /* Name errors after the type as soon as the type is known. */
        if (r->typed && depth == 0 && pairs[i].key_len == 4 &&
            memcmp(pairs[i].key, "type", 4) == 0 && pairs[i].val.type == SHUB_VAL_STR) {
            int t = lookup(type_names, COUNT(type_names), pairs[i].val.as.str);
            if (t > 0)
                r->path.root = type_names[t];
        }
    }
    const shub_pair_t **sorted = NULL;
    if (n > SMALL_MAP && !(sorted = shub_arena_alloc(r->arena, n * sizeof *sorted)))
        return nomem(r);
    const shub_pair_t *dup = find_duplicate(pairs, (uint32_t)n, sorted);
    if (dup)
        return fail(&r->path, r->err, SHUB_EDUPKEY, "duplicate key \"%.*s\"",
                    (int)dup->key_len, dup->key);
    *out = (shub_val_t){.type = SHUB_VAL_MAP, .len = (uint32_t)n, .cap = (uint32_t)n,
                        .as.pairs = pairs};
    return 0;
}

static int read_value(reader_t *r, shub_val_t *out, int depth)
{
    if (++r->nodes > SHUB_MSG_MAX_NODES)
        return fail(&r->path, r->err, SHUB_ELIMIT, "more than %d values in one message",
                    SHUB_MSG_MAX_NODES);
    int rc = need(r, 1);
    if (rc)
        return rc;
    uint8_t b = *r->p++;
    uint64_t u;

    if (b <= 0x7f) {
        *out = shub_val_int(b);
        return 0;
    }
    if (b >= 0xe0) {
        *out = shub_val_int((int8_t)b);
        return 0;
    }
    if ((b >= 0x80 && b <= 0x9f) || b == 0xdc || b == 0xdd || b == 0xde || b == 0xdf) {
        if (depth + 1 > SHUB_MSG_MAX_DEPTH)
            return fail(&r->path, r->err, SHUB_ELIMIT, "nesting deeper than limit %d",
                        SHUB_MSG_MAX_DEPTH);
    }
    if (b >= 0x80 && b <= 0x8f)
        return read_map(r, b & 0x0f, out, depth);
    if (b >= 0x90 && b <= 0x9f)
        return read_array(r, b & 0x0f, out, depth);
    if (b >= 0xa0 && b <= 0xbf)
        return read_text(r, b & 0x1f, out);

    switch (b) {
    case 0xc0:
        *out = shub_val_nil();
        return 0;
    case 0xc2:
    case 0xc3:
        *out = shub_val_bool(b == 0xc3);
        return 0;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        rc = read_be(r, 1 << (b - 0xc4), &u);
        return rc ? rc : read_bin(r, u, out);
    case 0xca: {
        rc = read_be(r, 4, &u);
        if (rc)
            return rc;
        uint32_t bits = (uint32_t)u;
        float f;
        memcpy(&f, &bits, sizeof f);
        *out = shub_val_float(f);
        return 0;
    }
    case 0xcb: {
        rc = read_be(r, 8, &u);
        if (rc)
            return rc;
        double d;
        memcpy(&d, &u, sizeof d);
        *out = shub_val_float(d);
        return 0;
    }
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        rc = read_be(r, 1 << (b - 0xcc), &u);
        if (rc)
            return rc;
        if (u > INT64_MAX)
            return fail(&r->path, r->err, SHUB_ELIMIT, "integer %llu exceeds limit %lld",
                        (unsigned long long)u, (long long)INT64_MAX);
        *out = shub_val_int((int64_t)u);
        return 0;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        int n = 1 << (b - 0xd0);
        rc = read_be(r, n, &u);
        if (rc)
            return rc;
        int64_t v = n == 1   ? (int8_t)u
                    : n == 2 ? (int16_t)u
                    : n == 4 ? (int32_t)u
                             : (int64_t)u;
        *out = shub_val_int(v);
        return 0;
    }
    case 0xd9:
    case 0xda:
    case 0xdb:
        rc = read_be(r, 1 << (b - 0xd9), &u);
        return rc ? rc : read_text(r, u, out);
    case 0xdc:
    case 0xdd:
        rc = read_be(r, b == 0xdc ? 2 : 4, &u);
        return rc ? rc : read_array(r, u, out, depth);
    case 0xde:
    case 0xdf:
        rc = read_be(r, b == 0xde ? 2 : 4, &u);
        return rc ? rc : read_map(r, u, out, depth);
    case 0xc1:
        return fail(&r->path, r->err, SHUB_EMALFORMED, "byte 0xc1 is never used in msgpack");
    default: /* 0xc7-0xc9, 0xd4-0xd8: extension types */
        return fail(&r->path, r->err, SHUB_ETYPE, "extension types are not used");
    }
}

/* Reads exactly one map filling all of [data, data+size). */
static int read_document(reader_t *r, shub_val_t *out)
{
    shub_val_t v;
    int rc = read_value(r, &v, 0);
    if (rc)
        return rc;
    if (v.type != SHUB_VAL_MAP)
        return fail(&r->path, r->err, SHUB_ETYPE, "is not a map");
    if (r->p != r->end)
        return fail(&r->path, r->err, SHUB_EMALFORMED, "%zu trailing bytes after the map",
                    remain(r));
    *out = v;
    return 0;
}

/* ---- field tables ----------------------------------------------------- */

/* A message is a map of named fields. A field table says, for one struct,
 * which key each member travels under, its kind (the wire type and the rule
 * it must satisfy), whether it is required, and where it sits in the struct.
 * Kinds that hold more than one value point at what they hold: a list at the
 * field that describes one item, a nested map or an inlined group at its
 * table. So a batch of maps inside a message is described, checked and
 * encoded exactly like a message, by the same code on both sides. */
typedef enum {
    K_NAME,    /* text, shub_is_name */
    K_SEL,     /* text, shub_is_selector: an org id, "@area" or "kind@area" */
    K_REF,     /* text 1..SHUB_MSG_MAX_REF, no control characters */
    K_LINE,    /* text 0..SHUB_MSG_MAX_LINE, no control characters */
    K_ID,      /* bin 16: an event id, held inline */
    K_IDP,     /* optional bin 16, held by pointer */
    K_FIXBIN,  /* bin of exactly `size` bytes (a hash, a key, a signature), inline */
    K_BIN,     /* bin 1..SHUB_MSG_MAX_BIN; pointer at `off`, length at `count` */
    K_TIME,    /* int >= 0, ms since the epoch */
    K_U32,     /* int 0..UINT32_MAX */
    K_COUNT,   /* int64 >= `min`: a sequence number */
    K_BOOL,    /* bool */
    K_CONSENT, /* text enum */
    K_OUTCOME, /* text enum */
    K_PAYLOAD, /* map of named fields, any values */
    K_STRUCT,  /* a map bound through the table `sub`, at `off` */
    K_LIST,    /* array of `min`..`max` items, each bound as the field `*sub` into an
                  element of `size` bytes; the elements' address at `off`, their
                  number (uint32_t) at `count` */
    K_INLINE,  /* the fields of the table `sub` at `off`, in this same map */
} kind_t;

typedef struct field {
    const char *key;  /* NULL ends a table; "" for K_INLINE and list items */
    uint32_t key_len; /* strlen(key): lookups compare lengths first */
    kind_t kind;
    bool required;
    size_t off;              /* of the member in its struct */
    size_t count;            /* K_LIST, K_BIN: of the uint32_t count */
    const struct field *sub; /* K_INLINE, K_STRUCT: a table; K_LIST: the item */
    size_t size;             /* K_LIST: bytes per element; K_FIXBIN: bytes of binary */
    uint32_t min, max;       /* K_LIST: items allowed (min is 0 or 1); K_COUNT: min */
} field_t;

/* One macro per shape of field; T is the struct the member belongs to. */
/* clang-format off */
#define KEY(k) .key = k, .key_len = sizeof(k) - 1
#define F(T, k, kd, req, m) {KEY(k), .kind = kd, .required = req, .off = offsetof(T, m)}
#define F_BIN(T, k, m, len)                                                                \
    {KEY(k), .kind = K_BIN, .required = true, .off = offsetof(T, m),                       \
     .count = offsetof(T, len)}
#define F_FIXBIN(T, k, m)                                                                  \
    {KEY(k), .kind = K_FIXBIN, .required = true, .off = offsetof(T, m),                    \
     .size = sizeof(((T *)0)->m)}
#define F_COUNT(T, k, m, lo)                                                               \
    {KEY(k), .kind = K_COUNT, .required = true, .off = offsetof(T, m), .min = lo}
#define F_LIST(T, k, m, n, item, lo, hi)                                                   \
    {KEY(k), .kind = K_LIST, .required = true, .off = offsetof(T, m),                      \
     .count = offsetof(T, n), .sub = &item, .size = sizeof(*((T *)0)->m), .min = lo,       \
     .max = hi}
#define F_INLINE(T, m, table)                                                              \
    {KEY(""), .kind = K_INLINE, .required = true, .off = offsetof(T, m), .sub = table}
#define ITEM(kd, table) {KEY(""), .kind = kd, .required = true, .sub = table}
#define END {.key = NULL}
/* clang-format on */

/* What one element of a list is: a selector, an id, or (item_outcome and
 * the like, each after its table) a map bound through a table. */
static const field_t item_selector = ITEM(K_SEL, NULL);
static const field_t item_id = ITEM(K_ID, NULL);

/* The event: envelope and payload. Inlined in SHARE; alone, it is what a
 * DELIVER carries sealed. */
static const field_t event_fields[] = {
    F(shub_event_t, "id", K_ID, true, id),
    F(shub_event_t, "event", K_NAME, true, type),
    F(shub_event_t, "occurred", K_TIME, true, occurred_ms),
    F(shub_event_t, "case", K_REF, false, case_ref),
    F(shub_event_t, "subject", K_REF, false, subject_ref),
    F(shub_event_t, "area", K_NAME, true, area),
    F(shub_event_t, "purpose", K_NAME, true, purpose),
    F(shub_event_t, "basis", K_REF, true, basis),
    F(shub_event_t, "consent", K_CONSENT, true, consent),
    F(shub_event_t, "override", K_NAME, false, override),
    F(shub_event_t, "reply_to", K_IDP, false, reply_to),
    F(shub_event_t, "actor", K_REF, false, actor),
    F(shub_event_t, "payload", K_PAYLOAD, true, payload),
    END,
};

/* One recipient's outcome: an item of a receipt, and the body of an update. */
static const field_t outcome_fields[] = {
    F(shub_outcome_item_t, "to", K_SEL, true, to),
    F(shub_outcome_item_t, "outcome", K_OUTCOME, true, outcome),
    F(shub_outcome_item_t, "reason", K_NAME, false, reason),
    F(shub_outcome_item_t, "detail", K_LINE, false, detail),
    F(shub_outcome_item_t, "agreement", K_NAME, false, agreement),
    F(shub_outcome_item_t, "version", K_U32, false, version),
    F(shub_outcome_item_t, "flow", K_NAME, false, flow),
    END,
};
static const field_t item_outcome = ITEM(K_STRUCT, outcome_fields);

static const field_t receipt_fields[] = {
    F(shub_receipt_t, "id", K_ID, true, id),
    F(shub_receipt_t, "duplicate", K_BOOL, false, duplicate),
    F_LIST(shub_receipt_t, "outcomes", items, count, item_outcome, 0,
           SHUB_MSG_MAX_OUTCOMES),
    END,
};
static const field_t item_receipt = ITEM(K_STRUCT, receipt_fields);

static const field_t deliver_fields[] = {
    F(shub_deliver_t, "id", K_ID, true, id),
    F(shub_deliver_t, "event", K_NAME, true, type),
    F(shub_deliver_t, "from", K_NAME, true, from),
    F(shub_deliver_t, "agreement", K_NAME, true, agreement),
    F(shub_deliver_t, "version", K_U32, true, version),
    F(shub_deliver_t, "flow", K_NAME, true, flow),
    F(shub_deliver_t, "attempt", K_U32, true, attempt),
    F_BIN(shub_deliver_t, "sealed", sealed, sealed_len),
    F(shub_deliver_t, "keep_days", K_U32, false, keep_days),
    END,
};
static const field_t item_deliver = ITEM(K_STRUCT, deliver_fields);

/* An update: its number and event, then the outcome item's own fields. */
static const field_t update_fields[] = {
    F_COUNT(shub_update_t, "seq", seq, 1),
    F(shub_update_t, "id", K_ID, true, id),
    F_INLINE(shub_update_t, item, outcome_fields),
    END,
};
static const field_t item_update = ITEM(K_STRUCT, update_fields);

/* CHECKPOINT and WITNESS: the same five fields, signed by different keys. */
static const field_t signed_head_fields[] = {
    F_COUNT(shub_signed_head_t, "seq", seq, 1),
    F_FIXBIN(shub_signed_head_t, "head", head),
    F(shub_signed_head_t, "at", K_TIME, true, at_ms),
    F_FIXBIN(shub_signed_head_t, "key", key),
    F_FIXBIN(shub_signed_head_t, "sig", sig),
    END,
};

/* The messages. Their members are reached from shub_msg_t. */
static const field_t hello_fields[] = {
    F(shub_msg_t, "agent", K_REF, false, hello.agent),
    F(shub_msg_t, "window", K_U32, false, hello.window),
    END,
};
static const field_t welcome_fields[] = {
    F(shub_msg_t, "org", K_NAME, true, welcome.org),
    F(shub_msg_t, "heartbeat_ms", K_U32, true, welcome.heartbeat_ms),
    F(shub_msg_t, "max_bytes", K_U32, true, welcome.max_bytes),
    F(shub_msg_t, "window", K_U32, true, welcome.window),
    F(shub_msg_t, "time", K_TIME, true, welcome.time_ms),
    F(shub_msg_t, "backlog", K_U32, false, welcome.backlog),
    END,
};
static const field_t share_fields[] = {
    F_INLINE(shub_msg_t, share.ev, event_fields),
    F_LIST(shub_msg_t, "to", share.to, share.to_count, item_selector, 1, SHUB_MSG_MAX_TO),
    F(shub_msg_t, "from", K_NAME, false, share.from),
    END,
};
static const field_t receipt_batch_fields[] = {
    F_LIST(shub_msg_t, "receipts", receipt.list, receipt.count, item_receipt, 1,
           SHUB_MSG_MAX_BATCH),
    END,
};
static const field_t deliver_batch_fields[] = {
    F_LIST(shub_msg_t, "deliveries", deliver.list, deliver.count, item_deliver, 1,
           SHUB_MSG_MAX_BATCH),
    END,
};
static const field_t ack_fields[] = {
    F_LIST(shub_msg_t, "ids", ack.ids, ack.count, item_id, 1, SHUB_MSG_MAX_BATCH),
    END,
};
static const field_t update_batch_fields[] = {
    F_LIST(shub_msg_t, "updates", update.list, update.count, item_update, 1,
           SHUB_MSG_MAX_BATCH),
    END,
};
static const field_t confirm_fields[] = {
    F_COUNT(shub_msg_t, "upto", confirm.upto, 0),
    END,
};
static const field_t checkpoint_fields[] = {
    F_INLINE(shub_msg_t, checkpoint, signed_head_fields),
    END,
};
static const field_t witness_fields[] = {
    F_INLINE(shub_msg_t, witness, signed_head_fields),
    END,
};
static const field_t heartbeat_fields[] = {
    F(shub_msg_t, "time", K_TIME, false, heartbeat.time_ms),
    END,
};
static const field_t error_fields[] = {
    F(shub_msg_t, "code", K_NAME, true, error.code),
    F(shub_msg_t, "message", K_LINE, true, error.message),
    F(shub_msg_t, "id", K_IDP, false, error.id),
    END,
};
static const field_t bye_fields[] = {
    F(shub_msg_t, "reason", K_LINE, false, bye.reason),
    END,
};

/* Indexed by shub_msg_type_t. */
static const field_t *const tables[] = {
    [SHUB_MSG_HELLO] = hello_fields,
    [SHUB_MSG_WELCOME] = welcome_fields,
    [SHUB_MSG_SHARE] = share_fields,
    [SHUB_MSG_RECEIPT] = receipt_batch_fields,
    [SHUB_MSG_DELIVER] = deliver_batch_fields,
    [SHUB_MSG_ACK] = ack_fields,
    [SHUB_MSG_HEARTBEAT] = heartbeat_fields,
    [SHUB_MSG_ERROR] = error_fields,
    [SHUB_MSG_BYE] = bye_fields,
    [SHUB_MSG_UPDATE] = update_batch_fields,
    [SHUB_MSG_CONFIRM] = confirm_fields,
    [SHUB_MSG_CHECKPOINT] = checkpoint_fields,
    [SHUB_MSG_WITNESS] = witness_fields,
};

/* ---- checks shared by decode and encode ------------------------------- */

static bool has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

/* Checks text for a field kind. `s` is NUL-free and valid UTF-8 already when
 * it came from the reader; the encoder checks those here too. */
static int check_text(const path_t *p, shub_err_t *err, kind_t kind, const char *s, size_t n)
{
    if (kind == K_NAME || kind == K_SEL) {
        if (n > SHUB_MSG_MAX_NAME)
            return fail(p, err, SHUB_ELIMIT, "name of %zu bytes exceeds limit %d", n,
                        SHUB_MSG_MAX_NAME);
        if (kind == K_SEL && !shub_is_selector(s))
            return fail(p, err, SHUB_EVALUE, "not an org id, @area or kind@area");
        if (kind == K_NAME && !shub_name_span(s, n))
            return fail(p, err, SHUB_EVALUE,
                        "not a name (lowercase letters, digits, '.', '_', '-')");
        return 0;
    }
    size_t max = kind == K_LINE ? SHUB_MSG_MAX_LINE : SHUB_MSG_MAX_REF;
    if (n > max)
        return fail(p, err, SHUB_ELIMIT, "text of %zu bytes exceeds limit %zu", n, max);
    if (kind == K_REF && n == 0)
        return fail(p, err, SHUB_EVALUE, "empty text");
    if (has_control(s, n))
        return fail(p, err, SHUB_EVALUE, "text contains a control character");
    return 0;
}

/* The number of items a list holds, against its table's bounds. */
static int check_items(const path_t *p, shub_err_t *err, const field_t *f, uint32_t n)
{
    if (n < f->min)
        return fail(p, err, SHUB_EVALUE, "no items");
    if (n > f->max)
        return fail(p, err, SHUB_ELIMIT, "%u items exceed limit %u", n, f->max);
    return 0;
}

static int check_min(const path_t *p, shub_err_t *err, const field_t *f, int64_t v)
{
    if (v < f->min)
        return fail(p, err, SHUB_EVALUE, "expected an integer >= %u", f->min);
    return 0;
}

/* A list's elements are reached through a pointer member whose type the
 * table does not know; memcpy moves its value without type punning. */
static const void *load_ptr(const void *src)
{
    const void *ptr;
    memcpy(&ptr, src, sizeof ptr);
    return ptr;
}

static void store_ptr(void *dst, const void *ptr)
{
    memcpy(dst, &ptr, sizeof ptr);
}

/* ---- binding: value tree -> struct ------------------------------------ */

static int bind_fields(const field_t *table, void *base, const shub_val_t *map,
                       uint32_t *hint, path_t *p, shub_arena_t *arena, shub_err_t *err);

static int want(const path_t *p, shub_err_t *err, const shub_val_t *v, shub_val_type_t t,
                const char *what)
{
    if (v->type == t)
        return 0;
    return fail(p, err, SHUB_ETYPE, "expected %s", what);
}

/* Binary of exactly `size` bytes into out: an id, a hash, a key, a signature. */
static int bind_fixed(const path_t *p, shub_err_t *err, const shub_val_t *v, uint8_t *out,
                      size_t size, const char *noun)
{
    if (v->type != SHUB_VAL_BIN)
        return fail(p, err, SHUB_ETYPE, "expected %zu bytes of binary", size);
    if (v->len != size)
        return fail(p, err, SHUB_EVALUE, "%s of %u bytes, expected %zu", noun, v->len,
                    size);
    memcpy(out, v->as.bin, size);
    return 0;
}

static int bind_one(const field_t *f, void *base, const shub_val_t *v, path_t *p,
                    shub_arena_t *arena, shub_err_t *err)
{
    char *dst = (char *)base + f->off;
    int rc = 0;
    switch (f->kind) {
    case K_NAME:
    case K_SEL:
    case K_REF:
    case K_LINE:
        if ((rc = want(p, err, v, SHUB_VAL_STR, "text")) ||
            (rc = check_text(p, err, f->kind, v->as.str, v->len)))
            return rc;
        *(const char **)dst = v->as.str;
        return 0;
    case K_ID:
        return bind_fixed(p, err, v, (uint8_t *)dst, SHUB_ID_SIZE, "id");
    case K_IDP: {
        shub_id_t *id = shub_arena_alloc(arena, sizeof *id);
        if (!id)
            return fail(p, err, SHUB_ENOMEM, "out of memory");
        if ((rc = bind_fixed(p, err, v, id->bytes, SHUB_ID_SIZE, "id")))
            return rc;
        *(const shub_id_t **)dst = id;
        return 0;
    }
    case K_FIXBIN:
        return bind_fixed(p, err, v, (uint8_t *)dst, f->size, "binary");
    case K_BIN:
        if ((rc = want(p, err, v, SHUB_VAL_BIN, "binary")))
            return rc;
        if (v->len == 0)
            return fail(p, err, SHUB_EVALUE, "empty binary");
        *(const uint8_t **)dst = v->as.bin;
        *(uint32_t *)((char *)base + f->count) = v->len;
        return 0;
    case K_TIME:
        if ((rc = want(p, err, v, SHUB_VAL_INT, "an integer (ms since 1970)")))
            return rc;
        if (v->as.i < 0)
            return fail(p, err, SHUB_EVALUE, "time before 1970");
        *(int64_t *)dst = v->as.i;
        return 0;
    case K_U32:
        if ((rc = want(p, err, v, SHUB_VAL_INT, "an unsigned integer")))
            return rc;
        if (v->as.i < 0)
            return fail(p, err, SHUB_EVALUE, "negative where unsigned expected");
        if (v->as.i > UINT32_MAX)
            return fail(p, err, SHUB_ELIMIT, "integer %lld exceeds limit %u",
                        (long long)v->as.i, UINT32_MAX);
        *(uint32_t *)dst = (uint32_t)v->as.i;
        return 0;
    case K_COUNT:
        if (v->type != SHUB_VAL_INT)
            return fail(p, err, SHUB_ETYPE, "expected an integer >= %u", f->min);
        if ((rc = check_min(p, err, f, v->as.i)))
            return rc;
        *(int64_t *)dst = v->as.i;
        return 0;
    case K_BOOL:
        if ((rc = want(p, err, v, SHUB_VAL_BOOL, "true or false")))
            return rc;
        *(bool *)dst = v->as.b;
        return 0;
    case K_CONSENT:
    case K_OUTCOME: {
        bool consent = f->kind == K_CONSENT;
        if ((rc = want(p, err, v, SHUB_VAL_STR, "text")))
            return rc;
        int e = consent ? shub_consent_parse(v->as.str) : shub_outcome_parse(v->as.str);
        if (e < 0)
            return fail(p, err, SHUB_EVALUE, "%s",
                        consent ? "not one of given, refused, not-sought"
                                : "not one of queued, delivered, acknowledged, denied, dead");
        *(int *)dst = e;
        return 0;
    }
    case K_PAYLOAD:
        if ((rc = want(p, err, v, SHUB_VAL_MAP, "a map of named fields")))
            return rc;
        *(shub_val_t *)dst = *v;
        return 0;
    case K_STRUCT: {
        if ((rc = want(p, err, v, SHUB_VAL_MAP, "a map")))
            return rc;
        uint32_t hint = 0;
        return bind_fields(f->sub, dst, v, &hint, p, arena, err);
    }
    case K_LIST: {
        if ((rc = want(p, err, v, SHUB_VAL_ARRAY, "an array")) ||
            (rc = check_items(p, err, f, v->len)))
            return rc;
        /* v->len is at most SHUB_MSG_MAX_ITEMS and its values are already
         * read, so this is bounded by what the input really holds */
        char *items = shub_arena_alloc(arena, (size_t)v->len * f->size);
        if (!items)
            return fail(p, err, SHUB_ENOMEM, "out of memory");
        for (uint32_t i = 0; i < v->len; i++) {
            path_push_index(p, i);
            if ((rc = bind_one(f->sub, items + (size_t)i * f->size, &v->as.items[i], p,
                               arena, err)))
                return rc;
            path_pop(p);
        }
        store_ptr(dst, items);
        *(uint32_t *)((char *)base + f->count) = v->len;
        return 0;
    }
    case K_INLINE:
        return fail(p, err, SHUB_EINVAL, "inline table bound as a value");
    }
    return fail(p, err, SHUB_EINVAL, "unknown field kind");
}

/* The value of f's key in map, or NULL. The search starts after the key found
 * last (*hint) and wraps around: a peer that writes keys in table order, as
 * this encoder does, costs one comparison per field, and the length is
 * compared before the bytes. The reader has refused repeated keys, so the
 * first match is the only one. */
static const shub_val_t *find(const shub_val_t *map, const field_t *f, uint32_t *hint)
{
    uint32_t n = map->len, i = *hint;
    for (uint32_t k = 0; k < n; k++, i = i + 1 < n ? i + 1 : 0) {
        const shub_pair_t *pair = &map->as.pairs[i];
        if (pair->key_len == f->key_len && pair->key[0] == f->key[0] &&
            memcmp(pair->key, f->key, f->key_len) == 0) {
            *hint = i + 1 < n ? i + 1 : 0;
            return &pair->val;
        }
    }
    return NULL;
}

/* Binds the table's fields in table order, so the first field in the table
 * that is wrong is the one reported (SPEC section 4). */
static int bind_fields(const field_t *table, void *base, const shub_val_t *map,
                       uint32_t *hint, path_t *p, shub_arena_t *arena, shub_err_t *err)
{
    for (const field_t *f = table; f->key; f++) {
        int rc;
        if (f->kind == K_INLINE) {
            if ((rc = bind_fields(f->sub, (char *)base + f->off, map, hint, p, arena,
                                  err)))
                return rc;
            continue;
        }
        const shub_val_t *v = find(map, f, hint);
        path_push_key(p, f->key);
        if (!v) {
            if (f->required)
                return fail(p, err, SHUB_EMISSING, "required field missing");
        } else if ((rc = bind_one(f, base, v, p, arena, err))) {
            return rc;
        }
        path_pop(p);
    }
    return 0; /* keys not in the table are ignored: SPEC 4, forward compatibility */
}

int shub_msg_decode(const void *data, size_t size, shub_msg_t **msg_p, shub_err_t *err)
{
    path_t path = {.root = "message"};
    if (!data || !msg_p)
        return shub_err_set(err, SHUB_EINVAL, "no buffer or no result pointer");
    if (size == 0)
        return fail(&path, err, SHUB_EMALFORMED, "empty message");
    if (size > SHUB_MSG_MAX_BYTES)
        return fail(&path, err, SHUB_ELIMIT, "message of %zu bytes exceeds limit %d", size,
                    SHUB_MSG_MAX_BYTES);

    shub_msg_t *msg = shub_calloc(1, sizeof *msg);
    if (!msg)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    /* The tree is at most a few times the input; start near it to save blocks. */
    msg->arena = shub_arena_new(size * 2 + 256);
    if (!msg->arena) {
        shub_free(msg);
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    }

    reader_t r;
    reader_init(&r, data, size, msg->arena, path.root, err);
    r.typed = true;
    shub_val_t top;
    int rc = read_document(&r, &top);
    if (rc)
        goto fail;

    path_t *p = &r.path;
    p->depth = 0;
    const shub_val_t *v = shub_val_get(&top, "v");
    path_push_key(p, "v");
    if (!v) {
        rc = fail(p, err, SHUB_EMISSING, "required field missing");
        goto fail;
    }
    if (v->type != SHUB_VAL_INT) {
        rc = fail(p, err, SHUB_ETYPE, "expected an unsigned integer");
        goto fail;
    }
    if (v->as.i != SHUB_PROTOCOL_VERSION) {
        rc = fail(p, err, SHUB_EVERSION, "protocol version %lld not supported (this side "
                  "speaks %d)", (long long)v->as.i, SHUB_PROTOCOL_VERSION);
        goto fail;
    }
    path_pop(p);

    const shub_val_t *t = shub_val_get(&top, "type");
    path_push_key(p, "type");
    if (!t) {
        rc = fail(p, err, SHUB_EMISSING, "required field missing");
        goto fail;
    }
    if (t->type != SHUB_VAL_STR) {
        rc = fail(p, err, SHUB_ETYPE, "expected text");
        goto fail;
    }
    int type = lookup(type_names, COUNT(type_names), t->as.str);
    if (type < 0) {
        rc = fail(p, err, SHUB_EUNKNOWN, "unknown message type");
        goto fail;
    }
    path_pop(p);
    p->root = type_names[type];
    msg->type = (shub_msg_type_t)type;
    uint32_t hint = 0;
    rc = bind_fields(tables[type], msg, &top, &hint, p, msg->arena, err);
    if (rc)
        goto fail;
    *msg_p = msg;
    return 0;
fail:
    shub_msg_destroy(&msg);
    return rc;
}

void shub_msg_destroy(shub_msg_t **msg_p)
{
    if (!msg_p || !*msg_p)
        return;
    shub_arena_destroy(&(*msg_p)->arena);
    shub_free(*msg_p);
    *msg_p = NULL;
}

int shub_payload_decode(shub_arena_t *arena, const void *data, size_t size, shub_val_t *out,
                        shub_err_t *err)
{
    path_t path = {.root = "payload"};
    if (size == 0)
        return fail(&path, err, SHUB_EMALFORMED, "empty payload");
    if (size > SHUB_MSG_MAX_BYTES)
        return fail(&path, err, SHUB_ELIMIT, "payload of %zu bytes exceeds limit %d", size,
                    SHUB_MSG_MAX_BYTES);
    /* depth 1: a stored payload sits at the depth it had inside its message */
    reader_t r;
    reader_init(&r, data, size, arena, path.root, err);
    shub_val_t v;
    int rc = read_value(&r, &v, 1);
    if (rc)
        return rc;
    if (v.type != SHUB_VAL_MAP)
        return fail(&r.path, err, SHUB_ETYPE, "is not a map");
    if (r.p != r.end)
        return fail(&r.path, err, SHUB_EMALFORMED, "%zu trailing bytes after the map",
                    remain(&r));
    *out = v;
    return 0;
}

/* ---- encoding --------------------------------------------------------- */

typedef struct {
    msgpack_packer pk;
    shub_buf_t *out;
    path_t path;
    shub_err_t *err;
    uint32_t nodes;
} writer_t;

/* msgpack-c calls this for every header and every body it packs, about 150
 * times for a typical SHARE, so the usual case (room already there) is done
 * here rather than through two calls into val.c. */
static int buf_write(void *data, const char *bytes, size_t len)
{
    shub_buf_t *buf = data;
    if (buf->data && buf->cap - buf->len >= len) {
        uint8_t *to = buf->data + buf->len;
        if (len <= 9) /* a header or a number: cheaper than a call to memcpy */
            for (size_t i = 0; i < len; i++)
                to[i] = (uint8_t)bytes[i];
        else
            memcpy(to, bytes, len);
        buf->len += len;
        return 0;
    }
    return shub_buf_append(buf, bytes, len) ? -1 : 0;
}

static int wfail_nomem(writer_t *w)
{
    return fail(&w->path, w->err, SHUB_ENOMEM, "out of memory");
}

/* Text, keys included. Most are short: a fixstr (header 0xa0 | n, as msgpack-c
 * writes it) goes into the buffer in one step when there is room. */
static int pack_text(writer_t *w, const char *s, size_t n)
{
    shub_buf_t *buf = w->out;
    if (n < 32 && buf->data && buf->cap - buf->len > n) {
        buf->data[buf->len] = (uint8_t)(0xa0 | n);
        memcpy(buf->data + buf->len + 1, s, n);
        buf->len += n + 1;
        return 0;
    }
    if (msgpack_pack_str(&w->pk, n) || msgpack_pack_str_body(&w->pk, s, n))
        return wfail_nomem(w);
    return 0;
}

static int pack_fixed(writer_t *w, const void *bytes, size_t n)
{
    if (msgpack_pack_bin(&w->pk, n) || msgpack_pack_bin_body(&w->pk, bytes, n))
        return wfail_nomem(w);
    return 0;
}
/* Counts one value against SHUB_MSG_MAX_NODES as the reader does (every
 * value, envelope fields included; keys are not values), so the encoder
 * refuses exactly the messages a peer would. */
static int count_node(writer_t *w)
{
    if (++w->nodes > SHUB_MSG_MAX_NODES)
        return fail(&w->path, w->err, SHUB_ELIMIT, "more than %d values in one message",
                    SHUB_MSG_MAX_NODES);
    return 0;
}

/* Refuses a map that repeats a key, as the reader does after reading it. */
static int check_duplicates(writer_t *w, const shub_val_t *map)
{
    const shub_pair_t **sorted = NULL;
    if (map->len > SMALL_MAP && !(sorted = shub_malloc(map->len * sizeof *sorted)))
        return wfail_nomem(w);
    const shub_pair_t *dup = find_duplicate(map->as.pairs, map->len, sorted);
    shub_free(sorted);
    if (dup)
        return fail(&w->path, w->err, SHUB_EDUPKEY, "duplicate key \"%.*s\"",
                    (int)dup->key_len, dup->key);
    return 0;
}

static int pack_val(writer_t *w, const shub_val_t *v, int depth)
{
    if (count_node(w))
        return SHUB_ELIMIT;
    msgpack_packer *pk = &w->pk;
    int rc = 0;
    switch (v->type) {
    case SHUB_VAL_NIL:
        rc = msgpack_pack_nil(pk);
        break;
    case SHUB_VAL_BOOL:
        rc = v->as.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case SHUB_VAL_INT:
        rc = msgpack_pack_int64(pk, v->as.i);
        break;
    case SHUB_VAL_FLOAT:
        rc = msgpack_pack_double(pk, v->as.f);
        break;
    case SHUB_VAL_STR:
        if (v->len > SHUB_MSG_MAX_TEXT)
            return fail(&w->path, w->err, SHUB_ELIMIT, "text of %u bytes exceeds limit %d",
                        v->len, SHUB_MSG_MAX_TEXT);
        if (!plain_ascii(v->as.str, v->len)) {
            if (memchr(v->as.str, '\0', v->len))
                return fail(&w->path, w->err, SHUB_EVALUE, "text contains a NUL byte");
            if (!shub_utf8_valid(v->as.str, v->len))
                return fail(&w->path, w->err, SHUB_EUTF8, "text is not valid UTF-8");
        }
        return pack_text(w, v->as.str, v->len);
    case SHUB_VAL_BIN:
        if (v->len > SHUB_MSG_MAX_BIN)
            return fail(&w->path, w->err, SHUB_ELIMIT, "binary of %u bytes exceeds limit %d",
                        v->len, SHUB_MSG_MAX_BIN);
        rc = msgpack_pack_bin(pk, v->len) || msgpack_pack_bin_body(pk, v->as.bin, v->len);
        break;
    case SHUB_VAL_ARRAY:
    case SHUB_VAL_MAP: {
        bool map = v->type == SHUB_VAL_MAP;
        if (depth + 1 > SHUB_MSG_MAX_DEPTH)
            return fail(&w->path, w->err, SHUB_ELIMIT, "nesting deeper than limit %d",
                        SHUB_MSG_MAX_DEPTH);
        if (v->len > SHUB_MSG_MAX_ITEMS)
            return fail(&w->path, w->err, SHUB_ELIMIT, "%s of %u entries exceeds limit %d",
                        map ? "map" : "array", v->len, SHUB_MSG_MAX_ITEMS);
        if ((map ? msgpack_pack_map(pk, v->len) : msgpack_pack_array(pk, v->len)))
            return wfail_nomem(w);
        for (uint32_t i = 0; i < v->len; i++) {
            const shub_val_t *item;
            if (map) {
                const shub_pair_t *pair = &v->as.pairs[i];
                if (pair->key && pair->key_len > SHUB_VAL_MAX_KEY)
                    return fail(&w->path, w->err, SHUB_ELIMIT,
                                "key of %u bytes exceeds limit %d", pair->key_len,
                                SHUB_VAL_MAX_KEY);
                if (!pair->key || !shub_val_is_field_name(pair->key, pair->key_len))
                    return fail(&w->path, w->err, SHUB_EVALUE,
                                "key is not a field name (1-64 of A-Z a-z 0-9 _ -)");
                if ((rc = pack_text(w, pair->key, pair->key_len)))
                    return rc;
                path_push_key(&w->path, pair->key);
                item = &pair->val;
            } else {
                path_push_index(&w->path, i);
                item = &v->as.items[i];
            }
            if ((rc = pack_val(w, item, depth + 1)))
                return rc;
            path_pop(&w->path);
        }
        return map ? check_duplicates(w, v) : 0;
    }
    default:
        return fail(&w->path, w->err, SHUB_EINVAL, "value of unknown type %d", (int)v->type);
    }
    return rc ? wfail_nomem(w) : 0;
}

/* Whether the encoder writes field f. An optional number is absent when 0;
 * a required one is always written, 0 included, because the decoder accepts
 * 0 there and the encoder must not refuse what it accepts. */
static bool present(const field_t *f, const void *base)
{
    const char *src = (const char *)base + f->off;
    switch (f->kind) {
    case K_NAME:
    case K_SEL:
    case K_REF:
    case K_LINE:
    case K_IDP:
    case K_BIN:
        return load_ptr(src) != NULL;
    case K_TIME:
    case K_COUNT:
        return f->required || *(const int64_t *)src != 0;
    case K_U32:
        return f->required || *(const uint32_t *)src != 0;
    case K_BOOL:
        return *(const bool *)src;
    case K_CONSENT:
    case K_OUTCOME:
        return *(const int *)src != 0;
    case K_LIST:
        return *(const uint32_t *)((const char *)base + f->count) != 0 ||
               load_ptr(src) != NULL;
    case K_ID:
    case K_FIXBIN:
    case K_PAYLOAD:
    case K_STRUCT:
    case K_INLINE:
        return true;
    }
    return false;
}

static int pack_fields(writer_t *w, const field_t *table, const void *base);
static int pack_value(writer_t *w, const field_t *f, const void *base);

/* Packs field f of the struct at base, once present() has said it is there. */
static int pack_one(writer_t *w, const field_t *f, const void *base)
{
    const char *src = (const char *)base + f->off;
    msgpack_packer *pk = &w->pk;
    int rc;
    switch (f->kind) {
    case K_NAME:
    case K_SEL:
    case K_REF:
    case K_LINE: {
        const char *s = *(const char *const *)src;
        size_t n = strlen(s);
        if (!plain_ascii(s, n) && !shub_utf8_valid(s, n))
            return fail(&w->path, w->err, SHUB_EUTF8, "text is not valid UTF-8");
        if ((rc = check_text(&w->path, w->err, f->kind, s, n)))
            return rc;
        return pack_text(w, s, n);
    }
    case K_ID:
        return pack_fixed(w, src, SHUB_ID_SIZE);
    case K_IDP:
        return pack_fixed(w, *(const shub_id_t *const *)src, SHUB_ID_SIZE);
    case K_FIXBIN:
        return pack_fixed(w, src, f->size);
    case K_BIN: {
        const uint8_t *bin = *(const uint8_t *const *)src;
        uint32_t n = *(const uint32_t *)((const char *)base + f->count);
        if (n == 0)
            return fail(&w->path, w->err, SHUB_EVALUE, "empty binary");
        if (n > SHUB_MSG_MAX_BIN)
            return fail(&w->path, w->err, SHUB_ELIMIT,
                        "binary of %u bytes exceeds limit %d", n, SHUB_MSG_MAX_BIN);
        return msgpack_pack_bin(pk, n) || msgpack_pack_bin_body(pk, bin, n)
                   ? wfail_nomem(w)
                   : 0;
    }
    case K_TIME: {
        int64_t t = *(const int64_t *)src;
        if (t < 0)
            return fail(&w->path, w->err, SHUB_EVALUE, "time before 1970");
        return msgpack_pack_int64(pk, t) ? wfail_nomem(w) : 0;
    }
    case K_U32:
        return msgpack_pack_uint32(pk, *(const uint32_t *)src) ? wfail_nomem(w) : 0;
    case K_COUNT: {
        int64_t v = *(const int64_t *)src;
        if ((rc = check_min(&w->path, w->err, f, v)))
            return rc;
        return msgpack_pack_int64(pk, v) ? wfail_nomem(w) : 0;
    }
    case K_BOOL:
        return msgpack_pack_true(pk) ? wfail_nomem(w) : 0;
    case K_CONSENT:
    case K_OUTCOME: {
        int e = *(const int *)src;
        const char *name = f->kind == K_CONSENT ? shub_consent_name((shub_consent_t)e)
                                                : shub_outcome_name((shub_outcome_t)e);
        if (strcmp(name, "?") == 0)
            return fail(&w->path, w->err, SHUB_EVALUE, "value %d out of range", e);
        return pack_text(w, name, strlen(name));
    }
    case K_PAYLOAD: {
        const shub_val_t *v = (const shub_val_t *)src;
        if (v->type != SHUB_VAL_MAP)
            return fail(&w->path, w->err, SHUB_ETYPE, "expected a map of named fields");
        return pack_val(w, v, 1);
    }
    case K_STRUCT:
        return pack_fields(w, f->sub, src);
    case K_LIST: {
        const char *items = load_ptr(src);
        uint32_t n = *(const uint32_t *)((const char *)base + f->count);
        if ((rc = check_items(&w->path, w->err, f, n)))
            return rc;
        if (n && !items)
            return fail(&w->path, w->err, SHUB_EINVAL, "%u items but no list", n);
        if (msgpack_pack_array(pk, n))
            return wfail_nomem(w);
        for (uint32_t i = 0; i < n; i++) {
            const char *item = items + (size_t)i * f->size;
            path_push_index(&w->path, i);
            if (!present(f->sub, item))
                return fail(&w->path, w->err, SHUB_EMISSING, "required item missing");
            if ((rc = pack_value(w, f->sub, item)))
                return rc;
            path_pop(&w->path);
        }
        return 0;
    }
    case K_INLINE:
        return fail(&w->path, w->err, SHUB_EINVAL, "inline table packed as a value");
    }
    return fail(&w->path, w->err, SHUB_EINVAL, "unknown field kind");
}

/* Packs one value, counting it against SHUB_MSG_MAX_NODES first (a payload
 * counts its own values in pack_val). */
static int pack_value(writer_t *w, const field_t *f, const void *base)
{
    int rc;
    if (f->kind != K_PAYLOAD && (rc = count_node(w)))
        return rc;
    return pack_one(w, f, base);
}

/* Counts the table's present fields (inlined tables included), or fails on
 * the first required one that is absent. */
static int count_fields(writer_t *w, const field_t *table, const void *base, uint32_t *n)
{
    for (const field_t *f = table; f->key; f++) {
        if (f->kind == K_INLINE) {
            int rc = count_fields(w, f->sub, (const char *)base + f->off, n);
            if (rc)
                return rc;
        } else if (present(f, base)) {
            (*n)++;
        } else if (f->required) {
            path_push_key(&w->path, f->key);
            return fail(&w->path, w->err, SHUB_EMISSING, "required field missing");
        }
    }
    return 0;
}

static int pack_members(writer_t *w, const field_t *table, const void *base)
{
    for (const field_t *f = table; f->key; f++) {
        int rc;
        if (f->kind == K_INLINE) {
            if ((rc = pack_members(w, f->sub, (const char *)base + f->off)))
                return rc;
            continue;
        }
        if (!present(f, base))
            continue;
        if ((rc = pack_text(w, f->key, f->key_len)))
            return rc;
        path_push_key(&w->path, f->key);
        if ((rc = pack_value(w, f, base)))
            return rc;
        path_pop(&w->path);
    }
    return 0;
}

/* Packs a map of the table's present fields. The map itself is a value its
 * caller has counted. */
static int pack_fields(writer_t *w, const field_t *table, const void *base)
{
    uint32_t n = 0;
    int rc = count_fields(w, table, base, &n);
    if (rc)
        return rc;
    if (msgpack_pack_map(&w->pk, n))
        return wfail_nomem(w);
    return pack_members(w, table, base);
}

/* Starts encoding into out for a document named `root` in error paths. */
static void writer_init(writer_t *w, shub_buf_t *out, const char *root, shub_err_t *err)
{
    *w = (writer_t){.out = out, .path = {.root = root}, .err = err};
    out->len = 0;
    msgpack_packer_init(&w->pk, out, buf_write);
}

/* Ends an encoding of `what`: refuses a document the decoder would refuse
 * for its size, and leaves nothing in out on failure. */
static int writer_done(writer_t *w, int rc, const char *what)
{
    if (rc == 0 && w->out->len > SHUB_MSG_MAX_BYTES) {
        w->path.depth = 0;
        rc = fail(&w->path, w->err, SHUB_ELIMIT, "%s of %zu bytes exceeds limit %d", what,
                  w->out->len, SHUB_MSG_MAX_BYTES);
    }
    if (rc)
        w->out->len = 0;
    return rc;
}

int shub_msg_encode(const shub_msg_t *msg, shub_buf_t *out, shub_err_t *err)
{
    if (!msg || !out)
        return shub_err_set(err, SHUB_EINVAL, "no message or no buffer");
    if (msg->type < SHUB_MSG_HELLO || msg->type > SHUB_MSG_TYPE_LAST)
        return shub_err_set_path(err, SHUB_EUNKNOWN, "message", "unknown message type %d",
                                 (int)msg->type);
    writer_t w;
    const char *tname = type_names[msg->type];
    writer_init(&w, out, tname, err);
    const field_t *table = tables[msg->type];
    /* The map and its "v" and "type" are values too, and come first. */
    uint32_t n = 2;
    int rc = count_fields(&w, table, msg, &n);
    for (int i = 0; rc == 0 && i < 3; i++)
        rc = count_node(&w);
    if (rc == 0 && (msgpack_pack_map(&w.pk, n) || pack_text(&w, "v", 1) ||
                    msgpack_pack_uint8(&w.pk, SHUB_PROTOCOL_VERSION) ||
                    pack_text(&w, "type", 4) || pack_text(&w, tname, strlen(tname))))
        rc = wfail_nomem(&w);
    if (rc == 0)
        rc = pack_members(&w, table, msg);
    return writer_done(&w, rc, "message");
}

int shub_event_encode(const shub_event_t *ev, shub_buf_t *out, shub_err_t *err)
{
    if (!ev || !out)
        return shub_err_set(err, SHUB_EINVAL, "no event or no buffer");
    writer_t w;
    writer_init(&w, out, "event", err);
    int rc = count_node(&w);
    return writer_done(&w, rc ? rc : pack_fields(&w, event_fields, ev), "event");
}

int shub_event_decode(shub_arena_t *arena, const void *data, size_t size, shub_event_t *ev,
                      shub_err_t *err)
{
    path_t path = {.root = "event"};
    if (!data || size == 0)
        return fail(&path, err, SHUB_EMALFORMED, "empty event");
    if (size > SHUB_MSG_MAX_BYTES)
        return fail(&path, err, SHUB_ELIMIT, "event of %zu bytes exceeds limit %d", size,
                    SHUB_MSG_MAX_BYTES);
    reader_t r;
    reader_init(&r, data, size, arena, path.root, err);
    shub_val_t top;
    int rc = read_document(&r, &top);
    if (rc)
        return rc;
    shub_event_t tmp = {0};
    r.path.depth = 0;
    uint32_t hint = 0;
    rc = bind_fields(event_fields, &tmp, &top, &hint, &r.path, arena, err);
    if (rc == 0)
        *ev = tmp;
    return rc;
}

int shub_payload_encode(const shub_val_t *payload, shub_buf_t *out, shub_err_t *err)
{
    if (!out)
        return shub_err_set(err, SHUB_EINVAL, "no buffer");
    writer_t w;
    writer_init(&w, out, "payload", err);
    if (!payload || payload->type != SHUB_VAL_MAP)
        return fail(&w.path, err, SHUB_ETYPE, "expected a map of named fields");
    return writer_done(&w, pack_val(&w, payload, 1), "payload");
}

/* ---- event ids -------------------------------------------------------- */

int shub_id_generate(shub_id_t *id, int64_t now_ms)
{
    if (sodium_init() < 0)
        return SHUB_ECRYPTO;
    uint64_t ms = (uint64_t)now_ms;
    for (int i = 0; i < 6; i++)
        id->bytes[i] = (uint8_t)(ms >> (40 - 8 * i));
    randombytes_buf(id->bytes + 6, SHUB_ID_SIZE - 6);
    id->bytes[6] = (uint8_t)(0x70 | (id->bytes[6] & 0x0f)); /* version 7 */
    id->bytes[8] = (uint8_t)(0x80 | (id->bytes[8] & 0x3f)); /* RFC 9562 variant */
    return 0;
}

void shub_id_format(const shub_id_t *id, char out[SHUB_ID_TEXT])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < SHUB_ID_SIZE; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[id->bytes[i] >> 4];
        out[o++] = hex[id->bytes[i] & 0x0f];
    }
    out[o] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int shub_id_parse(const char *text, shub_id_t *id)
{
    if (!text)
        return SHUB_EVALUE;
    size_t n = strlen(text);
    bool dashed = n == 36;
    if (!dashed && n != 32)
        return SHUB_EVALUE;
    shub_id_t tmp;
    size_t o = 0;
    for (int i = 0; i < SHUB_ID_SIZE; i++) {
        if (dashed && (i == 4 || i == 6 || i == 8 || i == 10) && text[o++] != '-')
            return SHUB_EVALUE;
        int hi = hexval(text[o]), lo = hexval(text[o + 1]);
        if (hi < 0 || lo < 0)
            return SHUB_EVALUE;
        tmp.bytes[i] = (uint8_t)(hi << 4 | lo);
        o += 2;
    }
    *id = tmp;
    return 0;
}

int64_t shub_id_time_ms(const shub_id_t *id)
{
    return (int64_t)be(id->bytes, 6);
}
