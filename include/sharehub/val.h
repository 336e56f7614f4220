/*
 * val: payload values. (Their arena and the codec's byte buffer are the
 * ground floor's, arena.h and buf.h, included here for every codec user.)
 *
 * A payload is a tree of msgpack values: maps of named fields, arrays, text,
 * bytes, numbers. The tree is read-only once built and lives in an arena, so a
 * decoded message is freed in one call and a minimised copy for a recipient
 * can share leaves with the original (shub_val_select). Map keys are field
 * names ([A-Za-z0-9_-], 1..SHUB_VAL_MAX_KEY bytes), which keeps dotted paths
 * such as `victim.name` unambiguous; text never contains a NUL byte, so every
 * text value is also a valid C string.
 */
#ifndef SHAREHUB_VAL_H
#define SHAREHUB_VAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/arena.h"
#include "sharehub/buf.h"

#define SHUB_VAL_MAX_KEY  64  /* bytes in a field name */
#define SHUB_VAL_MAX_PATH 256 /* bytes in a dotted path, e.g. an allowed field */

typedef enum {
    SHUB_VAL_NIL = 0,
    SHUB_VAL_BOOL,
    SHUB_VAL_INT, /* int64; msgpack integers above INT64_MAX are refused */
    SHUB_VAL_FLOAT,
    SHUB_VAL_STR, /* UTF-8, NUL-terminated, len excludes the NUL */
    SHUB_VAL_BIN,
    SHUB_VAL_ARRAY,
    SHUB_VAL_MAP,
} shub_val_type_t;

typedef struct shub_val shub_val_t;
typedef struct shub_pair shub_pair_t;

/* One value. Scalars are held inline; text, bytes, items and pairs point into
 * the arena that built the value. `cap` is only used while building. */
struct shub_val {
    shub_val_type_t type;
    uint32_t len; /* STR/BIN: bytes; ARRAY: items; MAP: pairs */
    uint32_t cap; /* ARRAY/MAP under construction: slots allocated */
    union {
        bool b;
        int64_t i;
        double f;
        const char *str;
        const uint8_t *bin;
        shub_val_t *items;
        shub_pair_t *pairs;
    } as;
};

struct shub_pair {
    const char *key; /* field name, NUL-terminated */
    uint32_t key_len;
    shub_val_t val;
};

/* ---- building values -------------------------------------------------- */

shub_val_t shub_val_nil(void);
shub_val_t shub_val_bool(bool b);
shub_val_t shub_val_int(int64_t i);
shub_val_t shub_val_float(double f);

/* Text copied into the arena. SHUB_EUTF8 if not UTF-8, SHUB_EVALUE if it holds
 * a NUL, SHUB_ENOMEM. */
int shub_val_str(shub_arena_t *arena, const char *s, size_t len, shub_val_t *out);

/* Bytes copied into the arena. */
int shub_val_bin(shub_arena_t *arena, const void *data, size_t len, shub_val_t *out);

/* Empty map or array ready for shub_val_put / shub_val_push. */
shub_val_t shub_val_map(void);
shub_val_t shub_val_array(void);

/* Adds key=val to a map built here (grows in the arena). SHUB_EVALUE if the key
 * is not a field name, SHUB_EEXIST if the key is already present. */
int shub_val_put(shub_arena_t *arena, shub_val_t *map, const char *key, shub_val_t val);

/* Appends to an array built here. */
int shub_val_push(shub_arena_t *arena, shub_val_t *array, shub_val_t val);

/* ---- reading values --------------------------------------------------- */

/* Value of `key` in a map; NULL if absent or `map` is not a map. Linear scan:
 * payload maps are small (tens of fields). */
const shub_val_t *shub_val_get(const shub_val_t *map, const char *key);

/* Value at a dotted path ("victim.address.postcode") through nested maps;
 * NULL if any step is missing or not a map. */
const shub_val_t *shub_val_at(const shub_val_t *root, const char *path);

/* The value at a dotted path if it has the type asked for: text (NULL if
 * absent or not text), an integer (fallback if absent or not one), true
 * only for the boolean true. For reading received payloads without a type
 * check at every step. */
const char *shub_val_str_at(const shub_val_t *root, const char *path);
int64_t shub_val_int_at(const shub_val_t *root, const char *path, int64_t fallback);
bool shub_val_bool_at(const shub_val_t *root, const char *path);

/* True if the array at path holds the text s. */
bool shub_val_array_has(const shub_val_t *root, const char *path, const char *s);

/* Items in the array at path; 0 if absent or not an array. */
size_t shub_val_array_len(const shub_val_t *root, const char *path);

/* Deep equality (maps compare as ordered pair lists). */
bool shub_val_equal(const shub_val_t *a, const shub_val_t *b);

/* True if `name` is a field name: [A-Za-z0-9_-], 1..SHUB_VAL_MAX_KEY bytes. */
bool shub_val_is_field_name(const char *name, size_t len);

/* True if `path` is one or more field names joined by '.'. */
bool shub_val_is_path(const char *path);

/* True if s[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool shub_utf8_valid(const char *s, size_t len);

/* ---- minimisation ----------------------------------------------------- */

/* Called once for each top-most field removed by shub_val_select, with its
 * dotted path (array elements do not add a segment). */
typedef void(shub_val_strip_fn)(const char *path, void *ctx);

/* Projects the map `src` onto `allowed` dotted paths into `dst`: a field is
 * kept whole if its path or an ancestor's is allowed, kept in part if an
 * allowed path lies below it, and dropped otherwise (reported to `stripped`).
 * Arrays are transparent: "actions.owner" keeps `owner` in every element of
 * the array `actions`. "*" allows everything. `dst` shares leaves with `src`,
 * so it must not outlive it. SHUB_EINVAL if src is not a map, SHUB_ENOMEM. */
int shub_val_select(shub_arena_t *arena, const shub_val_t *src,
                    const char *const *allowed, size_t n_allowed, shub_val_t *dst,
                    shub_val_strip_fn *stripped, void *ctx);

/* Slots this thread's shub_val_select calls have visited in their sets of
 * the paths reported below arrays: about one a path whatever the names. */
uint64_t shub_val_select_probes(void);

#endif
