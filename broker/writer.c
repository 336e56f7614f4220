/*
 * writer: the store's write path (store_internal.h). Every change a caller
 * makes between shub_store_begin and a commit is recorded as an op in the
 * open batch: a cached statement and its parameters, copied. The in-memory
 * state (chain head, names, sequence numbers) moves at once, so the next
 * call sees it; the database moves when the batch runs, in one transaction.
 *
 * A batch runs either on the caller's thread (shub_store_commit) or on the
 * writer thread (shub_store_submit), which takes every batch waiting and
 * runs them in one transaction: a group commit of several turns, while the
 * hub goes on deciding the next one. The writer signals each group on an
 * eventfd; the caller settles what it submitted with shub_store_poll. A
 * failed group fails every batch queued behind it too (each assumed the one
 * before), until the caller has called shub_store_recover, which waits for
 * the writer and reloads the in-memory state from the file.
 *
 * The writer thread alone uses the write connection while it runs; the
 * caller reads on a connection of its own (WAL readers see the last commit),
 * so a read never waits for a commit.
 */
#include "store_internal.h"

#include "sharehub/alloc.h"
#include "sharehub/log.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Op records in batch->ops, read back with memcpy (no alignment):
 *   u16 stmt, u16 params, then per parameter u8 index, u8 type and
 *   type INT: i64; TEXT, BLOB: u32 length and the bytes; NULL: nothing. */
enum { P_NULL, P_INT, P_TEXT, P_BLOB };

struct batch {
    shub_buf_t ops;
    size_t n_ops, op_at;    /* op_at: where the op being recorded starts */
    uint16_t op_params;
    bool op_failed;         /* out of memory while recording */
    int64_t *drops;         /* sealed rows to delete when the batch runs */
    size_t n_drops, cap_drops;
    shub_id_t *ids;         /* events it adds: in flight until settled */
    size_t n_ids, cap_ids;
    size_t names_added;     /* s->names.n_added when it was closed */
    size_t n_agreements;    /* s->n_agreements when it was closed */
    bool restart_wal;       /* restart the WAL after it (the caller is idle) */
    uint64_t ticket;
    batch_t *next;  /* the caller's list of unsettled batches, or the free list */
    batch_t *qnext; /* the writer's queue */
};


/* ---- events in flight ------------------------------------------------------ */

/* An array, found by id through an idindex; a settled event's place is taken
 * by the last. */
static const shub_id_t *flight_id_at(size_t pos, void *ctx)
{
    const shub_store_t *s = ctx;
    return &s->flight[pos].id;
}

/* The place of id among the events in flight, or -1. */
static long flight_pos(const shub_store_t *s, const shub_id_t *id)
{
    size_t cursor = 0, pos;
    return shub_idindex_next(&s->flight_index, id, &cursor, &pos) ? (long)pos : -1;
}

const flight_t *shub_store_flight_find(const shub_store_t *s, const shub_id_t *id)
{
    long pos = flight_pos(s, id);
    return pos >= 0 ? &s->flight[pos] : NULL;
}

int shub_store_flight_add(shub_store_t *s, const shub_id_t *id, int64_t sender)
{
    batch_t *b = s->open;
    if (!s->flight_index.id_at && shub_idindex_init(&s->flight_index, flight_id_at, s) != 0)
        return SHUB_ECRYPTO;
    if (shub_grow((void **)&s->flight, &s->cap_flight, s->n_flight + 1, sizeof *s->flight) ||
        shub_grow((void **)&b->ids, &b->cap_ids, b->n_ids + 1, sizeof *b->ids))
        return SHUB_ENOMEM;
    s->flight[s->n_flight] = (flight_t){.id = *id, .sender = sender};
    if (shub_idindex_put(&s->flight_index, s->n_flight))
        return SHUB_ENOMEM;
    s->n_flight++;
    b->ids[b->n_ids++] = *id;
    return 0;
}

static void flight_remove(shub_store_t *s, const shub_id_t *id)
{
    long pos = flight_pos(s, id);
    if (pos < 0)
        return;
    shub_idindex_del(&s->flight_index, (size_t)pos);
    size_t last = s->n_flight - 1;
    if ((size_t)pos != last) {
        shub_idindex_move(&s->flight_index, last, (size_t)pos);
        s->flight[pos] = s->flight[last];
    }
    s->n_flight--;
}

static void flight_clear(shub_store_t *s)
{
    shub_idindex_clear(&s->flight_index);
    s->n_flight = 0;
}

/* ---- recording ---------------------------------------------------------------- */

/* Appends to the op being recorded; out of memory marks it failed. A hot
 * path (a few dozen calls per audit row): the room is checked here and the
 * copy, of a size the caller usually knows, is inlined. */
static inline void put(batch_t *b, const void *p, size_t n)
{
    shub_buf_t *o = &b->ops;
    if (b->op_failed)
        return;
    if (o->cap - o->len < n && shub_buf_reserve(o, n) != 0) {
        b->op_failed = true;
        return;
    }
    memcpy(o->data + o->len, p, n);
    o->len += n;
}

void shub_store_op_begin(shub_store_t *s, stmt_id_t id)
{
    batch_t *b = s->open;
    uint16_t head[2] = {(uint16_t)id, 0};
    b->op_at = b->ops.len;
    b->op_params = 0;
    put(b, head, sizeof head);
}

static void param(batch_t *b, int index, int type)
{
    uint8_t h[2] = {(uint8_t)index, (uint8_t)type};
    put(b, h, 2);
    b->op_params++;
}

void shub_store_op_int(shub_store_t *s, int index, int64_t v)
{
    uint8_t rec[2 + sizeof v] = {(uint8_t)index, P_INT};
    memcpy(rec + 2, &v, sizeof v);
    put(s->open, rec, sizeof rec);
    s->open->op_params++;
}

void shub_store_op_opt_int(shub_store_t *s, int index, int64_t v)
{
    if (v)
        shub_store_op_int(s, index, v);
    else
        param(s->open, index, P_NULL);
}

static void op_bytes(shub_store_t *s, int index, int type, const void *p, size_t n)
{
    if (!p) {
        param(s->open, index, P_NULL);
        return;
    }
    uint32_t len = (uint32_t)n;
    uint8_t rec[2 + sizeof len] = {(uint8_t)index, (uint8_t)type};
    memcpy(rec + 2, &len, sizeof len);
    put(s->open, rec, sizeof rec);
    put(s->open, p, n);
    s->open->op_params++;
}

void shub_store_op_text(shub_store_t *s, int index, const char *t)
{
    op_bytes(s, index, P_TEXT, t, t ? strlen(t) : 0);
}

void shub_store_op_blob(shub_store_t *s, int index, const void *p, size_t n)
{
    op_bytes(s, index, P_BLOB, p, n);
}

int shub_store_op_end(shub_store_t *s, const char *what, shub_err_t *err)
{
    batch_t *b = s->open;
    if (b->op_failed) {
        b->ops.len = b->op_at; /* the op is not recorded; the batch stays whole */
        b->op_failed = false;
        return shub_err_set(err, SHUB_ENOMEM, "%s: out of memory", what);
    }
    memcpy(b->ops.data + b->op_at + 2, &b->op_params, sizeof b->op_params);
    b->n_ops++;
    return 0;
}

void shub_store_mark_restart(shub_store_t *s, bool restart)
{
    s->open->restart_wal |= restart;
}

int shub_store_op_drop(shub_store_t *s, int64_t seq)
{
    batch_t *b = s->open;
    if (shub_grow((void **)&b->drops, &b->cap_drops, b->n_drops + 1, sizeof *b->drops))
        return SHUB_ENOMEM;
    b->drops[b->n_drops++] = seq;
    return 0;
}

/* ---- running a batch ---------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int fail(shub_store_t *s, shub_err_t *err, const char *what)
{
    return shub_store_db_fail(s, err, what);
}

static int step_done(shub_store_t *s, shub_db_stmt_t *st, const char *what,
                     shub_err_t *err)
{
    int rc = shub_db_step(st);
    shub_db_reset(st);
    return rc == SHUB_DB_DONE || rc == SHUB_DB_ROW ? 0 : fail(s, err, what);
}

/* Deletes the dropped copies as runs of consecutive seqs: acknowledgements
 * mostly arrive in the order copies were stored, so a turn's worth is one or
 * a few range deletes rather than one B-tree search each. */
static int run_drops(shub_store_t *s, batch_t *b, shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    int rc;
    if (b->n_drops == 0)
        return 0;
    if ((rc = shub_store_stmt(s, ST_COPY_DROP, &st, err)))
        return rc;
    qsort(b->drops, b->n_drops, sizeof *b->drops, cmp_i64);
    for (size_t i = 0; i < b->n_drops;) {
        size_t j = i;
        while (j + 1 < b->n_drops && b->drops[j + 1] <= b->drops[j] + 1)
            j++;
        if (shub_db_bind_int(st, 1, b->drops[i]) || shub_db_bind_int(st, 2, b->drops[j]))
            return fail(s, err, "drop sealed copies");
        if ((rc = step_done(s, st, "drop sealed copies", err)))
            return rc;
        i = j + 1;
    }
    return 0;
}

static int run_ops(shub_store_t *s, batch_t *b, shub_err_t *err)
{
    const uint8_t *p = b->ops.data, *end = p + b->ops.len;
    for (size_t k = 0; k < b->n_ops; k++) {
        uint16_t head[2];
        shub_db_stmt_t *st = NULL;
        int rc;
        memcpy(head, p, sizeof head);
        p += sizeof head;
        if ((rc = shub_store_stmt(s, (stmt_id_t)head[0], &st, err)))
            return rc;
        shub_db_clear(st);
        int bad = 0;
        for (uint16_t i = 0; i < head[1] && p + 2 <= end; i++) {
            int index = p[0], type = p[1];
            p += 2;
            if (type == P_INT) {
                int64_t v;
                memcpy(&v, p, sizeof v);
                p += sizeof v;
                bad |= shub_db_bind_int(st, index, v);
            } else if (type == P_TEXT || type == P_BLOB) {
                uint32_t n;
                memcpy(&n, p, sizeof n);
                p += sizeof n;
                bad |= type == P_TEXT ? shub_db_bind_text(st, index, (const char *)p, n)
                                      : shub_db_bind_blob(st, index, p, (int)n);
                p += n;
            } else {
                bad |= shub_db_bind_null(st, index);
            }
        }
        if (bad)
            return fail(s, err, "bind");
        if ((rc = step_done(s, st, "write", err)))
            return rc;
    }
    return run_drops(s, b, err);
}

/* After a commit, on the connection that writes: a RESTART checkpoint when
 * a batch asked for one (the broker when idle) or the checkpointer found the
 * WAL past its limit. It waits only briefly for readers, and else the WAL
 * waits for the next chance. The file is not emptied (no TRUNCATE): it is
 * written over in place (store.c, wal_prefill). */
#define WAL_WAIT_MS 10

static void wal_after_commit(shub_store_t *s, bool asked)
{
    bool restart = atomic_exchange(&s->wal_restart, false);
    if (asked || restart)
        shub_db_wal_checkpoint(s->db, SHUB_WAL_RESTART, WAL_WAIT_MS);
}

/* Runs the batches from `first` along qnext in one transaction. */
static int run_group(shub_store_t *s, batch_t *first, bool *restart, shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    int rc;
    *restart = false;
    /* On PostgreSQL the whole group, BEGIN to COMMIT, goes as one pipeline:
     * a round trip per few hundred writes instead of one per write. */
    if (shub_db_pipeline_begin(s->db))
        return fail(s, err, "begin");
    if ((rc = shub_store_stmt(s, ST_BEGIN, &st, err)) == 0)
        rc = step_done(s, st, "begin", err);
    for (batch_t *b = first; b && rc == 0; b = b->qnext) {
        rc = run_ops(s, b, err);
        *restart |= b->restart_wal;
    }
    if (rc == 0 && ((rc = shub_store_stmt(s, ST_COMMIT, &st, err)) == 0))
        rc = step_done(s, st, "commit", err);
    if (shub_db_pipeline_end(s->db) && rc == 0)
        rc = fail(s, err, "commit");
    if (rc && shub_db_in_txn(s->db))
        shub_db_exec(s->db, "ROLLBACK");
    return rc;
}

/* ---- the writer thread -------------------------------------------------------- */

static void *writer_main(void *arg)
{
    shub_store_t *s = arg;
    prctl(PR_SET_NAME, "shub-writer", 0, 0, 0);
    pthread_mutex_lock(&s->wmu);
    for (;;) {
        while (!s->queue && !s->writer_stop)
            pthread_cond_wait(&s->wcv, &s->wmu);
        if (!s->queue && s->writer_stop)
            break;
        batch_t *first = s->queue, *last = first;
        while (last->qnext)
            last = last->qnext;
        s->queue = NULL;
        bool failed = s->failed;
        s->writing = true;
        pthread_mutex_unlock(&s->wmu);

        shub_err_t err = {0};
        bool restart = false;
        int rc = failed ? SHUB_EDB : run_group(s, first, &restart, &err);

        pthread_mutex_lock(&s->wmu);
        if (rc && !s->failed) {
            s->failed = true;
            s->failed_rc = rc;
            s->failed_err = err;
            s->failed_ticket = first->ticket;
        }
        s->done_ticket = last->ticket;
        pthread_cond_broadcast(&s->wdone);
        pthread_mutex_unlock(&s->wmu);
        uint64_t one = 1;
        if (write(s->efd, &one, sizeof one) < 0 && errno != EAGAIN) {
            /* the counter is saturated: the caller will read it anyway */
        }
        /* The group is answered first; the connection stays the writer's
         * (writing) until the checkpoint is done. */
        if (rc == 0)
            wal_after_commit(s, restart);
        pthread_mutex_lock(&s->wmu);
        s->writing = false;
        pthread_cond_broadcast(&s->wdone);
    }
    pthread_mutex_unlock(&s->wmu);
    return NULL;
}

int shub_store_writer_start(shub_store_t *s, shub_err_t *err)
{
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0)
        return shub_err_set(err, SHUB_EIO, "open store: eventfd: %s", strerror(errno));
    shub_db_opts_t dopts = {.readonly = true, .app_name = "sharehub-broker reads"};
    if (shub_db_open(s->path, &dopts, &s->rdb, err))
        return err ? err->code : SHUB_EDB;
    if (shub_db_kind(s->rdb) == SHUB_DB_SQLITE)
        shub_db_exec(s->rdb, "PRAGMA cache_size = -8192");
    if (pthread_mutex_init(&s->wmu, NULL) != 0 || pthread_cond_init(&s->wcv, NULL) != 0 ||
        pthread_cond_init(&s->wdone, NULL) != 0)
        return shub_err_set(err, SHUB_ENOMEM, "open store: cannot start its writer");
    s->writer_sync = true;
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0)
        return shub_err_set(err, SHUB_ENOMEM, "open store: cannot start its writer");
    s->writer_running = true;
    return 0;
}

static void wait_idle(shub_store_t *s)
{
    pthread_mutex_lock(&s->wmu);
    while (s->queue || s->writing)
        pthread_cond_wait(&s->wdone, &s->wmu);
    pthread_mutex_unlock(&s->wmu);
}

void shub_store_writer_stop(shub_store_t *s)
{
    if (s->writer_running) {
        pthread_mutex_lock(&s->wmu);
        s->writer_stop = true;
        pthread_cond_signal(&s->wcv);
        pthread_mutex_unlock(&s->wmu);
        pthread_join(s->writer, NULL);
        s->writer_running = false;
    }
    if (s->writer_sync) {
        pthread_cond_destroy(&s->wcv);
        pthread_cond_destroy(&s->wdone);
        pthread_mutex_destroy(&s->wmu);
        s->writer_sync = false;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        shub_db_finalize(s->rstmts[i]);
        s->rstmts[i] = NULL;
    }
    shub_db_close(&s->rdb);
    if (s->efd >= 0)
        close(s->efd);
    s->efd = -1;
}

/* ---- events committed lately (recent_t) ------------------------------------ */

static const shub_id_t *recent_id_at(size_t pos, void *ctx)
{
    const recent_t *r = ctx;
    return &r->ring[pos];
}

/* The id after id in byte order; false if id is the last there is. */
static bool id_successor(const shub_id_t *id, shub_id_t *next)
{
    *next = *id;
    for (int i = SHUB_ID_SIZE - 1; i >= 0; i--)
        if (++next->bytes[i] != 0)
            return true;
    return false;
}

/* cut rises to just above id (it never falls). */
static void recent_raise_cut(recent_t *r, const shub_id_t *id)
{
    if (r->cut_top || memcmp(id->bytes, r->cut.bytes, SHUB_ID_SIZE) < 0)
        return;
    r->cut_top = !id_successor(id, &r->cut);
}

static bool recent_covers(const recent_t *r, const shub_id_t *id)
{
    return !r->cut_top && memcmp(id->bytes, r->cut.bytes, SHUB_ID_SIZE) >= 0;
}

/* A committed id. Without memory for the ring or its index, cut goes to the
 * top: the lookups read the file, and nothing is wrong, only slower. */
static void recent_add(shub_store_t *s, const shub_id_t *id)
{
    recent_t *r = &s->recent;
    if (!recent_covers(r, id))
        return; /* below cut: looked up in the file anyway */
    if (!r->ring && !(r->ring = shub_malloc(RECENT_IDS * sizeof *r->ring))) {
        r->cut_top = true;
        return;
    }
    if (r->n == RECENT_IDS) {
        shub_idindex_del(&r->index, r->head);
        recent_raise_cut(r, &r->ring[r->head]);
        r->n--;
    }
    r->ring[r->head] = *id;
    if (shub_idindex_put(&r->index, r->head) != 0) {
        r->cut_top = true;
        return;
    }
    r->head = (r->head + 1) % RECENT_IDS;
    r->n++;
}

bool shub_store_recent_unseen(const shub_store_t *s, const shub_id_t *id)
{
    size_t cursor = 0, pos;
    return recent_covers(&s->recent, id) &&
           !shub_idindex_next(&s->recent.index, id, &cursor, &pos);
}

int shub_store_recent_reset(shub_store_t *s, shub_err_t *err)
{
    recent_t *r = &s->recent;
    if (!r->index.id_at && shub_idindex_init(&r->index, recent_id_at, r) != 0)
        return shub_err_set(err, SHUB_ECRYPTO, "open store: libsodium failed to initialise");
    shub_idindex_clear(&r->index);
    r->head = r->n = 0;
    memset(r->cut.bytes, 0, SHUB_ID_SIZE);
    r->cut_top = false;
    shub_db_stmt_t *st = NULL;
    int rc = shub_store_stmt(s, ST_EVENT_LAST, &st, err);
    if (rc)
        return rc;
    rc = shub_db_step(st);
    if (rc == SHUB_DB_ROW && shub_db_column_bytes(st, 0) == SHUB_ID_SIZE) {
        shub_id_t last;
        memcpy(last.bytes, shub_db_column_blob(st, 0), SHUB_ID_SIZE);
        recent_raise_cut(r, &last);
    } else if (rc == SHUB_DB_ROW) {
        r->cut_top = true; /* an id of another size: the file decides every time */
    }
    shub_db_reset(st);
    if (rc != SHUB_DB_ROW && rc != SHUB_DB_DONE)
        return shub_store_db_fail(s, err, "read the last event id");
    return 0;
}

void shub_store_recent_free(shub_store_t *s)
{
    shub_idindex_free(&s->recent.index);
    shub_free(s->recent.ring);
    s->recent.ring = NULL;
    s->recent.n = 0;
}

/* ---- batches: open, close, settle -------------------------------------------- */

static batch_t *batch_take(shub_store_t *s)
{
    batch_t *b = s->free;
    if (b) {
        s->free = b->next;
    } else if (!(b = shub_calloc(1, sizeof *b))) {
        return NULL;
    }
    b->ops.len = 0;
    b->n_ops = b->n_drops = b->n_ids = 0;
    b->op_failed = b->restart_wal = false;
    b->next = b->qnext = NULL;
    return b;
}

static void batch_give(shub_store_t *s, batch_t *b)
{
    b->next = s->free;
    s->free = b;
}

void shub_store_batches_free(shub_store_t *s)
{
    batch_t *lists[] = {s->free, s->unsettled, s->open};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        for (batch_t *b = lists[i], *next; b; b = next) {
            next = b == s->open ? NULL : b->next;
            shub_buf_free(&b->ops);
            shub_free(b->drops);
            shub_free(b->ids);
            shub_free(b);
        }
    }
    s->free = s->unsettled = s->open = NULL;
    shub_free(s->flight);
    s->flight = NULL;
    s->n_flight = s->cap_flight = 0;
    shub_idindex_free(&s->flight_index);
}

int shub_store_batch_open(shub_store_t *s, shub_err_t *err)
{
    if (s->open)
        return shub_err_set(err, SHUB_EPROTO, "begin: a transaction is already open");
    if (!(s->open = batch_take(s)))
        return shub_err_set(err, SHUB_ENOMEM, "begin: out of memory");
    s->open->ticket = ++s->next_ticket;
    shub_names_trim(s);
    shub_store_base_save(s);
    return 0;
}

void shub_store_batch_discard(shub_store_t *s)
{
    batch_t *b = s->open;
    if (!b)
        return;
    for (size_t i = 0; i < b->n_ids; i++)
        flight_remove(s, &b->ids[i]);
    s->open = NULL;
    s->next_ticket--; /* the ticket was never handed to anyone */
    batch_give(s, b);
    shub_store_base_restore(s);
}

/* What settling a batch that committed makes permanent on the caller's side. */
static void settled_ok(shub_store_t *s, batch_t *b)
{
    for (size_t i = 0; i < b->n_ids; i++) {
        recent_add(s, &b->ids[i]);
        flight_remove(s, &b->ids[i]);
    }
    s->settled_ticket = b->ticket;
    s->names_confirmed = b->names_added;
    s->agreements_confirmed = b->n_agreements;
}

/* Closes the open batch onto the caller's unsettled list. */
static batch_t *batch_close(shub_store_t *s)
{
    batch_t *b = s->open;
    b->names_added = s->names.n_added;
    b->n_agreements = s->n_agreements;
    s->open = NULL;
    batch_t **tail = &s->unsettled;
    while (*tail)
        tail = &(*tail)->next;
    *tail = b;
    return b;
}

/* Settles the unsettled batches up to `done` (the writer's report), stopping
 * at `failed` (0: none). */
static void settle(shub_store_t *s, uint64_t done, uint64_t failed)
{
    while (s->unsettled && s->unsettled->ticket <= done &&
           (!failed || s->unsettled->ticket < failed)) {
        batch_t *b = s->unsettled;
        s->unsettled = b->next;
        settled_ok(s, b);
        batch_give(s, b);
    }
}

int shub_store_commit(shub_store_t *s, shub_err_t *err)
{
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "commit: no transaction is open");
    if (s->writer_running) {
        uint64_t ticket = 0;
        int rc = shub_store_submit(s, &ticket, err);
        if (rc)
            return rc;
        pthread_mutex_lock(&s->wmu);
        while (s->done_ticket < ticket)
            pthread_cond_wait(&s->wdone, &s->wmu);
        pthread_mutex_unlock(&s->wmu);
        uint64_t done = 0;
        rc = shub_store_poll(s, &done, err);
        if (rc == 0)
            return 0;
        shub_store_recover(s, NULL);
        return rc;
    }
    batch_t *b = batch_close(s);
    b->qnext = NULL;
    bool restart = false;
    int rc = run_group(s, b, &restart, err);
    s->unsettled = b->next; /* it was the only one */
    if (rc) {
        for (size_t i = 0; i < b->n_ids; i++)
            flight_remove(s, &b->ids[i]);
        batch_give(s, b);
        shub_store_base_restore(s);
        return rc;
    }
    wal_after_commit(s, restart);
    settled_ok(s, b);
    batch_give(s, b);
    shub_store_base_confirm(s);
    return 0;
}

int shub_store_submit(shub_store_t *s, uint64_t *ticket, shub_err_t *err)
{
    if (!s->open)
        return shub_err_set(err, SHUB_EPROTO, "submit: no transaction is open");
    if (!s->writer_running)
        return shub_err_set(err, SHUB_EPROTO, "submit: the store has no writer thread");
    batch_t *b = batch_close(s);
    *ticket = b->ticket;
    pthread_mutex_lock(&s->wmu);
    batch_t **tail = &s->queue;
    while (*tail)
        tail = &(*tail)->qnext;
    b->qnext = NULL;
    *tail = b;
    pthread_cond_signal(&s->wcv);
    pthread_mutex_unlock(&s->wmu);
    shub_store_base_confirm(s); /* the next batch starts from this one's end */
    return 0;
}

int shub_store_poll(shub_store_t *s, uint64_t *done, shub_err_t *err)
{
    uint64_t n;
    if (s->efd >= 0 && read(s->efd, &n, sizeof n) < 0 && errno != EAGAIN) {
        /* nothing to clear */
    }
    if (!s->writer_running) {
        *done = s->settled_ticket;
        return 0;
    }
    pthread_mutex_lock(&s->wmu);
    uint64_t upto = s->done_ticket, failed = s->failed ? s->failed_ticket : 0;
    int rc = s->failed_rc;
    shub_err_t ferr = s->failed_err;
    pthread_mutex_unlock(&s->wmu);
    settle(s, upto, failed);
    *done = s->settled_ticket;
    if (!failed)
        return 0;
    if (err)
        *err = ferr;
    return rc ? rc : SHUB_EDB;
}

bool shub_store_busy(const shub_store_t *s)
{
    return s->unsettled != NULL;
}

bool shub_store_queued(shub_store_t *s)
{
    if (!s->writer_running)
        return false;
    pthread_mutex_lock(&s->wmu);
    bool queued = s->queue != NULL;
    pthread_mutex_unlock(&s->wmu);
    return queued;
}

int shub_store_fd(const shub_store_t *s)
{
    return s->writer_running ? s->efd : -1;
}

uint64_t shub_store_ticket(const shub_store_t *s)
{
    return s->open ? s->open->ticket : s->next_ticket;
}

uint64_t shub_store_settled(const shub_store_t *s)
{
    return s->settled_ticket;
}

int shub_store_drain(shub_store_t *s, shub_err_t *err)
{
    if (!s->writer_running || !s->unsettled)
        return 0;
    wait_idle(s);
    uint64_t done = 0;
    return shub_store_poll(s, &done, err);
}

int shub_store_recover(shub_store_t *s, shub_err_t *err)
{
    if (s->open)
        shub_store_batch_discard(s);
    if (s->writer_running) {
        wait_idle(s);
        pthread_mutex_lock(&s->wmu);
        s->failed = false;
        s->failed_rc = 0;
        s->failed_ticket = 0;
        pthread_mutex_unlock(&s->wmu);
    }
    /* Every unsettled batch failed with the first that did. */
    while (s->unsettled) {
        batch_t *b = s->unsettled;
        s->unsettled = b->next;
        batch_give(s, b);
    }
    flight_clear(s);
    /* PostgreSQL: the session that held the broker's lock is gone, and with
     * it the lock; a standby may be writing already. Never reconnect and
     * write on: the caller must stop. */
    if (shub_db_broken(s->db))
        return shub_err_set(err, SHUB_EBUSY,
                            "lost the database session that holds the broker's lock "
                            "(%s): another broker may have taken over",
                            shub_db_errmsg(s->db));
    return shub_store_reload(s, err);
}

/* ---- the caller's reading connection ---------------------------------------- */

int shub_store_read_stmt(shub_store_t *s, stmt_id_t id, shub_db_stmt_t **out,
                         shub_err_t *err)
{
    if (!s->rdb)
        return shub_store_stmt(s, id, out, err);
    if (!s->rstmts[id] &&
        shub_db_prepare(s->rdb, shub_store_sql(s, id), true, &s->rstmts[id]) != 0)
        return shub_store_read_fail(s, err, "prepare statement");
    *out = s->rstmts[id];
    return 0;
}

int shub_store_read_fail(shub_store_t *s, shub_err_t *err, const char *what)
{
    if (shub_db_out_of_memory(s->rdb ? s->rdb : s->db))
        return shub_err_set(err, SHUB_ENOMEM, "%s: out of memory", what);
    return shub_err_set(err, SHUB_EDB, "%s: %s", what,
                        shub_db_errmsg(s->rdb ? s->rdb : s->db));
}
