/*
 * names: the texts rows refer to (store.c's `names` table), held in memory
 * so that a row's twenty texts cost a compare or a hash each rather than a
 * read of the file.
 *
 * An entry is found by its text (interning a row's texts) and by its id
 * (reading rows back). The memory entries take is bounded (names_t.budget):
 * when a batch opens past it, the entries nobody holds are let go, and from
 * then on a text or an id that is not in memory is looked up in the file.
 * An entry is held once a pointer to its text has been handed out (a
 * pending copy's recipient, an open deadline's flow: lent), and while the
 * batch that added it is not known committed, as the file does not have it
 * yet.
 * Without the bound, every distinct text ever recorded stayed for the
 * broker's life: a case system whose payload keys change with every event
 * (record ids made keys) grew it without end.
 *
 * Both maps are open addressing over entry pointers at a load of at most a
 * half; entries leave them only in bulk (names_keep), which builds them
 * again.
 */
#include "store_internal.h"

#include "sharehub/alloc.h"
#include "sharehub/log.h"

#include <stdlib.h>
#include <string.h>

/* SipHash under a key drawn at open: the texts include what partners choose
 * (a payload's field names, an event type), and an unkeyed hash lets anyone
 * compute offline texts that share a slot, a probe chain every later name
 * walks. */
static uint64_t text_hash(const names_t *nm, const char *t, size_t n)
{
    uint8_t out[crypto_shorthash_BYTES];
    uint64_t h;
    crypto_shorthash(out, (const unsigned char *)t, n, nm->key);
    memcpy(&h, out, sizeof h);
    return h | 1; /* never 0 */
}

/* Ids are the store's own, handed out in order: a multiplicative spread. */
static size_t id_hash(int64_t id)
{
    uint64_t h = (uint64_t)id * UINT64_C(0x9e3779b97f4a7c15);
    return (size_t)(h ^ (h >> 29));
}

static size_t entry_bytes(const name_t *e)
{
    return sizeof *e + e->len + 1;
}

static name_t *find_text(names_t *nm, const char *t, size_t n, uint64_t h)
{
    if (!nm->n_slots)
        return NULL;
    size_t mask = nm->n_slots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        name_t *e = nm->by_text[i];
        nm->probes++;
        if (!e || (e->hash == h && e->len == n && memcmp(e->text, t, n) == 0))
            return e;
    }
}

static name_t *find_id(const names_t *nm, int64_t id)
{
    if (!nm->n_slots)
        return NULL;
    size_t mask = nm->n_slots - 1;
    for (size_t i = id_hash(id) & mask;; i = (i + 1) & mask) {
        name_t *e = nm->by_id[i];
        if (!e || e->id == id)
            return e;
    }
}

static void place(name_t **table, size_t mask, size_t from, name_t *e)
{
    size_t i = from & mask;
    while (table[i])
        i = (i + 1) & mask;
    table[i] = e;
}

/* Both maps again, `slots` slots each, with the entries keep() keeps; the
 * others go to drop(). SHUB_ENOMEM leaves everything as it was. */
static int rebuild(names_t *nm, size_t slots, bool (*keep)(const name_t *, void *),
                   void (*drop)(names_t *, name_t *), void *ctx)
{
    name_t **by_text = shub_calloc(slots, sizeof *by_text);
    name_t **by_id = shub_calloc(slots, sizeof *by_id);
    if (!by_text || !by_id) {
        shub_free(by_text);
        shub_free(by_id);
        return SHUB_ENOMEM;
    }
    size_t used = 0, bytes = 0;
    for (size_t i = 0; i < nm->n_slots; i++) {
        name_t *e = nm->by_id[i];
        if (!e)
            continue;
        if (keep && !keep(e, ctx)) {
            drop(nm, e);
            continue;
        }
        place(by_text, slots - 1, e->hash, e);
        place(by_id, slots - 1, id_hash(e->id), e);
        used++;
        bytes += entry_bytes(e);
    }
    shub_free(nm->by_text);
    shub_free(nm->by_id);
    nm->by_text = by_text;
    nm->by_id = by_id;
    nm->n_slots = slots;
    nm->used = used;
    nm->bytes = bytes;
    return 0;
}

static size_t slots_for(size_t entries)
{
    size_t n = 1024;
    while (n < entries * 2 + 2)
        n *= 2;
    return n;
}

/* A new entry for (id, text), in both maps; NULL when out of memory. */
static name_t *add(names_t *nm, int64_t id, const char *t, size_t n, uint64_t h)
{
    if ((nm->used + 1) * 2 > nm->n_slots &&
        rebuild(nm, slots_for(nm->used + 1), NULL, NULL, NULL) != 0)
        return NULL;
    name_t *e = shub_malloc(sizeof *e + n + 1);
    if (!e)
        return NULL;
    e->id = id;
    e->hash = h;
    e->len = (uint32_t)n;
    e->lent = false;
    memcpy(e->text, t, n);
    e->text[n] = '\0';
    place(nm->by_text, nm->n_slots - 1, h, e);
    place(nm->by_id, nm->n_slots - 1, id_hash(id), e);
    nm->used++;
    nm->bytes += entry_bytes(e);
    if (id > nm->max_id)
        nm->max_id = id;
    return e;
}

/* An entry let go: freed, unless its text was lent, which must not dangle
 * (it is kept, unreachable, until close). */
static void drop(names_t *nm, name_t *e)
{
    if (!e->lent) {
        shub_free(e);
        return;
    }
    if (shub_grow((void **)&nm->dead, &nm->cap_dead, nm->n_dead + 1, sizeof *nm->dead) == 0)
        nm->dead[nm->n_dead++] = e;
    /* else: a leak rather than a dangling pointer */
}

int shub_names_init(names_t *nm, size_t budget)
{
    memset(nm, 0, sizeof *nm);
    nm->budget = budget;
    nm->complete = true;
    randombytes_buf(nm->key, sizeof nm->key);
    nm->arena = shub_arena_new(4096);
    return nm->arena ? 0 : SHUB_ENOMEM;
}

void shub_names_free(names_t *nm)
{
    for (size_t i = 0; i < nm->n_slots; i++)
        shub_free(nm->by_id[i]);
    for (size_t i = 0; i < nm->n_dead; i++)
        shub_free(nm->dead[i]);
    shub_free(nm->by_text);
    shub_free(nm->by_id);
    shub_free(nm->dead);
    shub_free(nm->added);
    shub_arena_destroy(&nm->arena);
    memset(nm, 0, sizeof *nm);
}

size_t shub_names_bytes(const names_t *nm)
{
    return nm->bytes + nm->n_slots * 2 * sizeof *nm->by_id +
           nm->cap_added * sizeof *nm->added + nm->cap_dead * sizeof *nm->dead;
}

/* The store's last-row entries (text_last, read_last) point at entries
 * that may go: forgotten. */
static void last_forget(shub_store_t *s)
{
    memset(s->text_last, 0, sizeof s->text_last);
    memset(s->read_last, 0, sizeof s->read_last);
}

/* ---- the file, for what memory does not hold ------------------------------ */

/* Reads one name by text (ST_NAME_ID) or by id (ST_NAME_TEXT) on the
 * caller's read connection, the committed file, into memory: *out is NULL
 * when the file has none. 0, SHUB_ENOMEM, or the read's error. */
static int fetch(shub_store_t *s, const char *t, size_t n, int64_t id, name_t **out,
                 shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    *out = NULL;
    int rc = shub_store_read_stmt(s, t ? ST_NAME_ID : ST_NAME_TEXT, &st, err);
    if (rc)
        return rc;
    if (t ? shub_db_bind_text(st, 1, t, n) : shub_db_bind_int(st, 1, id))
        rc = shub_store_read_fail(s, err, "look up a name");
    else if ((rc = shub_db_step(st)) == SHUB_DB_ROW) {
        int64_t got = t ? shub_db_column_int(st, 0) : id;
        const char *text = t ? t : shub_db_column_text(st, 0);
        size_t len = t ? n : (size_t)shub_db_column_bytes(st, 0);
        rc = 0;
        if (text && got > 0 && !(*out = find_id(&s->names, got)) &&
            !(*out = add(&s->names, got, text, len, text_hash(&s->names, text, len))))
            rc = shub_err_set(err, SHUB_ENOMEM, "look up a name: out of memory");
    } else {
        rc = rc == SHUB_DB_DONE ? 0 : shub_store_read_fail(s, err, "look up a name");
    }
    shub_db_reset(st);
    return rc;
}

/* The entry of text (n bytes, hash h), from memory or, when memory may not
 * hold every name, the file; *out NULL when neither has it. */
static int lookup_text(shub_store_t *s, const char *t, size_t n, uint64_t h, name_t **out,
                       shub_err_t *err)
{
    *out = find_text(&s->names, t, n, h);
    return *out || s->names.complete ? 0 : fetch(s, t, n, 0, out, err);
}

/* ---- interning and resolving ---------------------------------------------- */

static void forget_from(shub_store_t *s, size_t first);

int shub_names_intern(shub_store_t *s, const char *text, name_t **out, shub_err_t *err)
{
    names_t *nm = &s->names;
    *out = NULL;
    if (!text)
        return 0;
    size_t n = strnlen(text, SHUB_STORE_MAX_TEXT + 1);
    if (n > SHUB_STORE_MAX_TEXT)
        return shub_err_set(err, SHUB_EINVAL, "text of %zu bytes exceeds limit %d", n,
                            SHUB_STORE_MAX_TEXT);
    uint64_t h = text_hash(nm, text, n);
    name_t *e;
    int rc = lookup_text(s, text, n, h, &e, err);
    if (rc)
        return rc;
    if (e) {
        *out = e;
        return 0;
    }
    if (s->readonly || !s->open)
        return shub_err_set(err, SHUB_EPROTO, "intern: no transaction is open");
    if (nm->max_id >= INT64_MAX / 2) /* an edited file: never wrap */
        return shub_err_set(err, SHUB_EDB, "intern: the names table's largest id (%lld) "
                            "leaves none to hand out", (long long)nm->max_id);
    if (shub_grow((void **)&nm->added, &nm->cap_added, nm->n_added + 1, sizeof *nm->added) ||
        !(e = add(nm, nm->max_id + 1, text, n, h)))
        return shub_err_set(err, SHUB_ENOMEM, "intern: out of memory");
    nm->added[nm->n_added++] = e->id;
    shub_store_op_begin(s, ST_NAME_ADD);
    shub_store_op_int(s, 1, e->id);
    shub_store_op_text(s, 2, e->text);
    rc = shub_store_op_end(s, "intern", err);
    if (rc) {
        forget_from(s, nm->n_added - 1);
        return rc;
    }
    *out = e;
    return 0;
}

const name_t *shub_names_entry(shub_store_t *s, int64_t id)
{
    if (id <= 0)
        return NULL;
    name_t *e = find_id(&s->names, id);
    if (!e && (!s->names.complete || id > s->names.max_id))
        fetch(s, NULL, 0, id, &e, NULL); /* a failed read: no such name, as callers take it */
    return e;
}

const char *shub_store_name(shub_store_t *s, int64_t id)
{
    name_t *e = (name_t *)shub_names_entry(s, id);
    if (!e)
        return NULL;
    e->lent = true;
    return e->text;
}

int64_t shub_store_name_find(shub_store_t *s, const char *text)
{
    if (!text)
        return 0;
    size_t n = strlen(text);
    name_t *e;
    lookup_text(s, text, n, text_hash(&s->names, text, n), &e, NULL);
    return e ? e->id : 0;
}

/* ---- letting go ------------------------------------------------------------ */

static bool is_unforgotten(const name_t *e, void *ctx)
{
    return e->id < *(const int64_t *)ctx;
}

/* Forgets the names added from entry `first` of the added list on: they are
 * in no committed row, and their ids are handed out again. */
static void forget_from(shub_store_t *s, size_t first)
{
    names_t *nm = &s->names;
    if (first >= nm->n_added)
        return;
    int64_t from = nm->added[first];
    if (rebuild(nm, nm->n_slots, is_unforgotten, drop, &from) != 0) {
        /* Out of memory: hide them instead, where no lookup can find them. */
        for (size_t i = first; i < nm->n_added; i++) {
            name_t *e = find_id(nm, nm->added[i]);
            if (e) {
                e->hash = 0; /* no text hashes to 0 */
                e->id = -e->id;
            }
        }
    }
    nm->n_added = first;
    nm->max_id = from - 1;
    last_forget(s);
}

void shub_names_forget_from(shub_store_t *s, size_t first)
{
    forget_from(s, first);
}

/* Kept through a trim: what was lent, and what the file may not have yet. */
static bool is_held(const name_t *e, void *ctx)
{
    return e->lent || e->id >= *(const int64_t *)ctx;
}

void shub_names_trim(shub_store_t *s)
{
    names_t *nm = &s->names;
    if (!nm->budget || shub_names_bytes(nm) <= nm->trim_at || shub_names_bytes(nm) <= nm->budget)
        return;
    int64_t unsettled = s->names_confirmed < nm->n_added ? nm->added[s->names_confirmed]
                                                          : INT64_MAX;
    size_t before = nm->used, kept = 0;
    for (size_t i = 0; i < nm->n_slots; i++)
        kept += nm->by_id[i] && is_held(nm->by_id[i], &unsettled);
    if (rebuild(nm, slots_for(kept), is_held, drop, &unsettled) != 0)
        return;
    last_forget(s);
    nm->complete = false;
    nm->trims++;
    /* What is held stays; the next trim waits until there is as much again
     * to let go, so that trims cost no more than the names they follow. */
    nm->trim_at = shub_names_bytes(nm) * 2 > nm->budget ? shub_names_bytes(nm) * 2 : 0;
    if (nm->trims == 1)
        shub_warn("store: the names held in memory passed %zu MiB: %zu of %zu let go, to be"
                  " read back from the file when needed (texts that change with every"
                  " event, such as payload keys made of record ids, make new ones without"
                  " end)",
                  nm->budget >> 20, before - nm->used, before);
}

/* ---- loading ------------------------------------------------------------------ */

int shub_names_load(shub_store_t *s, shub_err_t *err)
{
    names_t *nm = &s->names;
    shub_db_stmt_t *st = NULL;
    int rc = shub_db_prepare(s->db, "SELECT coalesce(max(id), 0) FROM names", false, &st);
    if (rc == 0 && shub_db_step(st) == SHUB_DB_ROW) {
        int64_t max = shub_db_column_int(st, 0);
        if (max > nm->max_id)
            nm->max_id = max;
    } else {
        shub_db_finalize(st);
        return shub_store_db_fail(s, err, "read names");
    }
    shub_db_finalize(st);
    rc = shub_db_prepare(s->db, "SELECT id, text FROM names WHERE id > ?1 ORDER BY id", false,
                         &st);
    if (rc != 0 || shub_db_bind_int(st, 1, nm->loaded_upto) != 0) {
        shub_db_finalize(st);
        return shub_store_db_fail(s, err, "read names");
    }
    while ((rc = shub_db_step(st)) == SHUB_DB_ROW) {
        if (nm->budget && shub_names_bytes(nm) >= nm->budget / 2) {
            nm->complete = false; /* the rest is read when needed */
            rc = SHUB_DB_DONE;
            break;
        }
        int64_t id = shub_db_column_int(st, 0);
        const char *t = shub_db_column_text(st, 1);
        nm->loaded_upto = id;
        if (!t || id <= 0 || find_id(nm, id))
            continue; /* verify reports the rows that use a missing one */
        size_t n = (size_t)shub_db_column_bytes(st, 1);
        if (!add(nm, id, t, n, text_hash(nm, t, n))) {
            shub_db_finalize(st);
            return shub_err_set(err, SHUB_ENOMEM, "read names: out of memory");
        }
    }
    shub_db_finalize(st);
    if (rc != SHUB_DB_DONE)
        return shub_store_db_fail(s, err, "read names");
    if (!nm->n_slots && rebuild(nm, slots_for(16), NULL, NULL, NULL) != 0)
        return shub_err_set(err, SHUB_ENOMEM, "read names: out of memory");
    return 0;
}

void shub_store_names_held(const shub_store_t *s, uint64_t *count, uint64_t *bytes)
{
    if (count)
        *count = s ? s->names.used : 0;
    if (bytes)
        *bytes = s ? shub_names_bytes(&s->names) : 0;
}

uint64_t shub_store_name_probes(const shub_store_t *s)
{
    return s->names.probes;
}
