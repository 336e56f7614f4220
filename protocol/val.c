/*
 * val: payload values (include/sharehub/val.h): building them in an arena,
 * reading them by dotted path, and minimisation (shub_val_select).
 */
#include "sharehub/val.h"

#include "sharehub/alloc.h"
#include "sharehub/err.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

/* ---- building --------------------------------------------------------- */

shub_val_t shub_val_nil(void)
{
    return (shub_val_t){.type = SHUB_VAL_NIL};
}

shub_val_t shub_val_bool(bool b)
{
    return (shub_val_t){.type = SHUB_VAL_BOOL, .as.b = b};
}

shub_val_t shub_val_int(int64_t i)
{
    return (shub_val_t){.type = SHUB_VAL_INT, .as.i = i};
}

shub_val_t shub_val_float(double f)
{
    return (shub_val_t){.type = SHUB_VAL_FLOAT, .as.f = f};
}

shub_val_t shub_val_map(void)
{
    return (shub_val_t){.type = SHUB_VAL_MAP};
}

shub_val_t shub_val_array(void)
{
    return (shub_val_t){.type = SHUB_VAL_ARRAY};
}

int shub_val_str(shub_arena_t *arena, const char *s, size_t len, shub_val_t *out)
{
    if (len > UINT32_MAX)
        return SHUB_ELIMIT;
    if (len && memchr(s, '\0', len))
        return SHUB_EVALUE;
    if (!shub_utf8_valid(s, len))
        return SHUB_EUTF8;
    char *copy = shub_arena_strndup(arena, s, len);
    if (!copy)
        return SHUB_ENOMEM;
    *out = (shub_val_t){.type = SHUB_VAL_STR, .len = (uint32_t)len, .as.str = copy};
    return 0;
}

int shub_val_bin(shub_arena_t *arena, const void *data, size_t len, shub_val_t *out)
{
    if (len > UINT32_MAX)
        return SHUB_ELIMIT;
    uint8_t *copy = shub_arena_alloc(arena, len);
    if (!copy)
        return SHUB_ENOMEM;
    if (len)
        memcpy(copy, data, len);
    *out = (shub_val_t){.type = SHUB_VAL_BIN, .len = (uint32_t)len, .as.bin = copy};
    return 0;
}

/* Makes room for one more slot of `width` bytes, copying into a doubled
 * array in the arena (the old one is left behind; arenas free all at once). */
static int grow(shub_arena_t *arena, shub_val_t *v, void **slots, size_t width)
{
    if (v->len < v->cap)
        return 0;
    uint32_t cap = v->cap ? v->cap * 2 : 4;
    void *fresh = shub_arena_alloc(arena, (size_t)cap * width);
    if (!fresh)
        return SHUB_ENOMEM;
    if (v->len)
        memcpy(fresh, *slots, (size_t)v->len * width);
    *slots = fresh;
    v->cap = cap;
    return 0;
}

int shub_val_put(shub_arena_t *arena, shub_val_t *map, const char *key, shub_val_t val)
{
    if (map->type != SHUB_VAL_MAP)
        return SHUB_EINVAL;
    size_t klen = strlen(key);
    if (!shub_val_is_field_name(key, klen))
        return SHUB_EVALUE;
    if (shub_val_get(map, key))
        return SHUB_EEXIST;
    void *slots = map->as.pairs;
    int rc = grow(arena, map, &slots, sizeof(shub_pair_t));
    if (rc)
        return rc;
    map->as.pairs = slots;
    char *kcopy = shub_arena_strndup(arena, key, klen);
    if (!kcopy)
        return SHUB_ENOMEM;
    map->as.pairs[map->len++] = (shub_pair_t){kcopy, (uint32_t)klen, val};
    return 0;
}

int shub_val_push(shub_arena_t *arena, shub_val_t *array, shub_val_t val)
{
    if (array->type != SHUB_VAL_ARRAY)
        return SHUB_EINVAL;
    void *slots = array->as.items;
    int rc = grow(arena, array, &slots, sizeof(shub_val_t));
    if (rc)
        return rc;
    array->as.items = slots;
    array->as.items[array->len++] = val;
    return 0;
}

/* ---- reading ---------------------------------------------------------- */

const shub_val_t *shub_val_get(const shub_val_t *map, const char *key)
{
    if (!map || map->type != SHUB_VAL_MAP || !key)
        return NULL;
    /* Lengths first: most keys differ in length, and the codec's field tables
     * look up every one of their keys in every message they bind. */
    size_t n = strlen(key);
    for (uint32_t i = 0; i < map->len; i++)
        if (map->as.pairs[i].key_len == n && memcmp(map->as.pairs[i].key, key, n) == 0)
            return &map->as.pairs[i].val;
    return NULL;
}

const shub_val_t *shub_val_at(const shub_val_t *root, const char *path)
{
    const shub_val_t *v = root;
    const char *seg = path;
    while (v && seg) {
        const char *dot = strchr(seg, '.');
        size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
        if (v->type != SHUB_VAL_MAP || n == 0)
            return NULL;
        const shub_val_t *next = NULL;
        for (uint32_t i = 0; i < v->len && !next; i++)
            if (v->as.pairs[i].key_len == n && memcmp(v->as.pairs[i].key, seg, n) == 0)
                next = &v->as.pairs[i].val;
        v = next;
        seg = dot ? dot + 1 : NULL;
    }
    return v;
}

bool shub_val_equal(const shub_val_t *a, const shub_val_t *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case SHUB_VAL_NIL:
        return true;
    case SHUB_VAL_BOOL:
        return a->as.b == b->as.b;
    case SHUB_VAL_INT:
        return a->as.i == b->as.i;
    case SHUB_VAL_FLOAT:
        return memcmp(&a->as.f, &b->as.f, sizeof a->as.f) == 0;
    case SHUB_VAL_STR:
        return a->len == b->len && memcmp(a->as.str, b->as.str, a->len) == 0;
    case SHUB_VAL_BIN:
        return a->len == b->len &&
               (a->len == 0 || memcmp(a->as.bin, b->as.bin, a->len) == 0);
    case SHUB_VAL_ARRAY:
        if (a->len != b->len)
            return false;
        for (uint32_t i = 0; i < a->len; i++)
            if (!shub_val_equal(&a->as.items[i], &b->as.items[i]))
                return false;
        return true;
    case SHUB_VAL_MAP:
        if (a->len != b->len)
            return false;
        for (uint32_t i = 0; i < a->len; i++)
            if (strcmp(a->as.pairs[i].key, b->as.pairs[i].key) != 0 ||
                !shub_val_equal(&a->as.pairs[i].val, &b->as.pairs[i].val))
                return false;
        return true;
    }
    return false;
}

bool shub_val_is_field_name(const char *name, size_t len)
{
    if (len == 0 || len > SHUB_VAL_MAX_KEY)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool shub_val_is_path(const char *path)
{
    if (!path)
        return false;
    size_t total = strlen(path);
    if (total == 0 || total > SHUB_VAL_MAX_PATH)
        return false;
    const char *seg = path;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
        if (!shub_val_is_field_name(seg, n))
            return false;
        if (!dot)
            return true;
        seg = dot + 1;
    }
}

bool shub_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        /* Most text is ASCII: step over it eight bytes at a time. */
        while (end - p >= 8) {
            uint64_t word;
            memcpy(&word, p, sizeof word);
            if (word & 0x8080808080808080u)
                break;
            p += 8;
        }
        if (p == end)
            break;
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        unsigned cp, min;
        if ((c & 0xE0) == 0xC0) {
            n = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if ((size_t)(end - p) <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n + 1;
    }
    return true;
}

/* ---- reading by type ---------------------------------------------------- */

const char *shub_val_str_at(const shub_val_t *root, const char *path)
{
    const shub_val_t *v = shub_val_at(root, path);
    return v && v->type == SHUB_VAL_STR ? v->as.str : NULL;
}

int64_t shub_val_int_at(const shub_val_t *root, const char *path, int64_t fallback)
{
    const shub_val_t *v = shub_val_at(root, path);
    return v && v->type == SHUB_VAL_INT ? v->as.i : fallback;
}

bool shub_val_bool_at(const shub_val_t *root, const char *path)
{
    const shub_val_t *v = shub_val_at(root, path);
    return v && v->type == SHUB_VAL_BOOL && v->as.b;
}

bool shub_val_array_has(const shub_val_t *root, const char *path, const char *s)
{
    const shub_val_t *v = shub_val_at(root, path);
    if (!v || v->type != SHUB_VAL_ARRAY)
        return false;
    for (uint32_t i = 0; i < v->len; i++)
        if (v->as.items[i].type == SHUB_VAL_STR && strcmp(v->as.items[i].as.str, s) == 0)
            return true;
    return false;
}

size_t shub_val_array_len(const shub_val_t *root, const char *path)
{
    const shub_val_t *v = shub_val_at(root, path);
    return v && v->type == SHUB_VAL_ARRAY ? v->len : 0;
}

/* ---- minimisation ----------------------------------------------------- */

typedef struct {
    shub_arena_t *arena;
    const char *const *allowed;
    size_t n_allowed;
    shub_val_strip_fn *stripped;
    void *ctx;
    int in_array;      /* > 0 below an array, where one path recurs per element */
    const char **seen; /* open-addressed set of paths reported below arrays */
    size_t seen_cap;   /* slots, a power of two; 0 until first needed */
    size_t seen_len;
    char path[SHUB_VAL_MAX_PATH * 2 + 2]; /* current dotted path */
} select_t;

/* The paths are the sender's field names: hashed with SipHash under a key
 * drawn once per process, as an unkeyed hash lets a sender compute offline
 * names that share a slot, and one message of them would walk a chain of
 * thousands for each. */
static uint8_t path_key[crypto_shorthash_KEYBYTES];
static pthread_once_t path_key_once = PTHREAD_ONCE_INIT;
static _Thread_local uint64_t path_probes;

static void path_key_draw(void)
{
    if (sodium_init() >= 0)
        randombytes_buf(path_key, sizeof path_key);
}

static size_t path_hash(const char *p)
{
    uint8_t out[crypto_shorthash_BYTES];
    uint64_t h;
    crypto_shorthash(out, (const unsigned char *)p, strlen(p), path_key);
    memcpy(&h, out, sizeof h);
    return (size_t)h;
}

static const char **seen_slot(const char **table, size_t cap, const char *path)
{
    size_t i = path_hash(path) & (cap - 1);
    for (path_probes++; table[i] && strcmp(table[i], path) != 0; path_probes++)
        i = (i + 1) & (cap - 1);
    return &table[i];
}

uint64_t shub_val_select_probes(void)
{
    return path_probes;
}

/* Adds s->path to the set of reported paths: 1 if it is new, 0 if it was
 * there, SHUB_ENOMEM. Old tables stay in the arena; it frees all at once. */
static int remember(select_t *s)
{
    if (s->seen_len * 2 >= s->seen_cap) {
        if (!s->seen_cap)
            pthread_once(&path_key_once, path_key_draw);
        size_t cap = s->seen_cap ? s->seen_cap * 2 : 64;
        const char **table = shub_arena_alloc(s->arena, cap * sizeof *table);
        if (!table)
            return SHUB_ENOMEM;
        for (size_t i = 0; i < s->seen_cap; i++)
            if (s->seen[i])
                *seen_slot(table, cap, s->seen[i]) = s->seen[i];
        s->seen = table;
        s->seen_cap = cap;
    }
    const char **slot = seen_slot(s->seen, s->seen_cap, s->path);
    if (*slot)
        return 0;
    if (!(*slot = shub_arena_strndup(s->arena, s->path, strlen(s->path))))
        return SHUB_ENOMEM;
    s->seen_len++;
    return 1;
}

/* Tells the caller that the field at s->path was stripped, once per path:
 * below an array the same path comes up once per element, and the audit
 * row wants each field name once. Outside arrays a path cannot repeat, as
 * keys are unique within their map. */
static int report(select_t *s)
{
    if (!s->stripped)
        return 0;
    if (s->in_array) {
        int rc = remember(s);
        if (rc <= 0)
            return rc;
    }
    s->stripped(s->path, s->ctx);
    return 0;
}

typedef enum { KEEP_NONE, KEEP_WHOLE, KEEP_PART } keep_t;

/* How much of the field at s->path the allowed list keeps. */
static keep_t verdict(const select_t *s, size_t plen)
{
    keep_t k = KEEP_NONE;
    for (size_t i = 0; i < s->n_allowed; i++) {
        const char *a = s->allowed[i];
        size_t alen = strlen(a);
        if (strcmp(a, "*") == 0)
            return KEEP_WHOLE;
        /* allowed is the path itself or an ancestor of it */
        if (alen <= plen && memcmp(a, s->path, alen) == 0 &&
            (alen == plen || s->path[alen] == '.'))
            return KEEP_WHOLE;
        /* allowed lies below the path */
        if (alen > plen && memcmp(a, s->path, plen) == 0 && a[plen] == '.')
            k = KEEP_PART;
    }
    return k;
}

static int select_map(select_t *s, const shub_val_t *src, size_t plen, shub_val_t *dst);

/* Keeps the allowed parts below a partly-kept value. Arrays pass through
 * element by element; a scalar under KEEP_PART has nothing below it, so it
 * is dropped, and an array element dropped that way is reported under the
 * array's path. Returns 1 if anything was kept. */
static int select_part(select_t *s, const shub_val_t *src, size_t plen, shub_val_t *dst,
                       int *rc)
{
    if (src->type == SHUB_VAL_MAP) {
        *rc = select_map(s, src, plen, dst);
        return 1;
    }
    if (src->type == SHUB_VAL_ARRAY) {
        *dst = shub_val_array();
        s->in_array++;
        for (uint32_t i = 0; i < src->len && !*rc; i++) {
            shub_val_t item;
            if (select_part(s, &src->as.items[i], plen, &item, rc)) {
                if (!*rc)
                    *rc = shub_val_push(s->arena, dst, item);
            } else {
                *rc = report(s);
            }
        }
        s->in_array--;
        return 1;
    }
    return 0;
}

static int select_map(select_t *s, const shub_val_t *src, size_t plen, shub_val_t *dst)
{
    *dst = shub_val_map();
    for (uint32_t i = 0; i < src->len; i++) {
        const shub_pair_t *p = &src->as.pairs[i];
        size_t klen = p->key_len;
        if (plen + 1 + klen >= sizeof s->path)
            return SHUB_ELIMIT;
        size_t nlen = plen ? plen + 1 + klen : klen;
        if (plen)
            s->path[plen] = '.';
        memcpy(s->path + (plen ? plen + 1 : 0), p->key, klen);
        s->path[nlen] = '\0';

        int rc = 0;
        keep_t k = verdict(s, nlen);
        if (k == KEEP_WHOLE) {
            rc = shub_val_put(s->arena, dst, p->key, p->val);
        } else if (k == KEEP_PART) {
            shub_val_t part;
            if (select_part(s, &p->val, nlen, &part, &rc)) {
                if (!rc)
                    rc = shub_val_put(s->arena, dst, p->key, part);
            } else {
                rc = report(s);
            }
        } else {
            rc = report(s);
        }
        s->path[plen] = '\0';
        if (rc)
            return rc;
    }
    return 0;
}

int shub_val_select(shub_arena_t *arena, const shub_val_t *src,
                    const char *const *allowed, size_t n_allowed, shub_val_t *dst,
                    shub_val_strip_fn *stripped, void *ctx)
{
    if (!src || src->type != SHUB_VAL_MAP || !dst)
        return SHUB_EINVAL;
    select_t s = {.arena = arena,
                  .allowed = allowed,
                  .n_allowed = n_allowed,
                  .stripped = stripped,
                  .ctx = ctx};
    shub_val_t out;
    int rc = select_map(&s, src, 0, &out);
    if (rc == 0)
        *dst = out;
    return rc;
}
