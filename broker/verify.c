/*
 * verify: re-walks the audit hash chain and checks the signed checkpoints
 * (shub_store_verify in include/sharehub/store.h). It is what
 * `sharehub-audit verify` runs, beside a live broker: the file is opened
 * read-only and read in one snapshot, so rows appended meanwhile are simply
 * not looked at.
 *
 * Speed matters (a region's log runs to millions of rows; the target is
 * 500k rows/s): one prepared statement streams the rows in seq order (the
 * rowid, so no sort), each row is hashed once with the same canonical encoding
 * append used (store_internal.h), and only two hashes of history are kept.
 * The first bad row stops the walk and is classified:
 *
 *   row_hash fits prev_hash and the row, but prev_hash is not the previous
 *   row's row_hash: the chain is broken before this row, so
 *     seq jumps past the previous row + 1          -> "missing"
 *     prev_hash is the row_hash of the row before the previous one
 *                                                   -> "inserted" (the previous)
 *     prev_hash is the row_hash of some other row   -> "out of order"
 *     the row's own hash does not fit either        -> "edited"
 *     otherwise (a self-consistent stranger)        -> "inserted"
 *   prev_hash links but row_hash does not fit      -> "edited"
 *
 * Checkpoints anchor the chain: a chain rewritten wholesale from some row on
 * is self-consistent, but no longer matches the signed head_hash ("edited"),
 * and a log cut short ends before the last signed upto_seq ("truncated after
 * checkpoint N"). What no chain can show: rows appended after the last
 * checkpoint and then deleted, or the newest checkpoints deleted with them.
 * The broker checkpoints at shutdown to keep that window small.
 */
#include "store_internal.h"

#include "sharehub/alloc.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct checkpoint {
    int64_t seq, upto, at;
    uint8_t head[32];
} checkpoint_t;

typedef struct walk {
    shub_store_t *s;
    shub_verify_result_t *out;
    checkpoint_t *cps;
    size_t ncps;
} walk_t;

static void bad(walk_t *w, int64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void bad(walk_t *w, int64_t seq, const char *fmt, ...)
{
    va_list ap;
    w->out->ok = false;
    w->out->bad_seq = seq;
    va_start(ap, fmt);
    vsnprintf(w->out->problem, sizeof w->out->problem, fmt, ap);
    va_end(ap);
}

/* Loads the checkpoints in upto_seq order and checks each signature. 0 with
 * out->ok false on the first bad one; negative if it cannot read them. */
static int load_checkpoints(walk_t *w, const uint8_t *expected, shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int rc =
        sqlite3_prepare_v2(w->s->db,
                           "SELECT seq, upto_seq, head_hash, at, public_key, signature"
                           " FROM checkpoints ORDER BY upto_seq, seq",
                           -1, &st, NULL);
    if (rc != SQLITE_OK)
        return shub_store_db_fail(w->s, err, "verify: read checkpoints");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint8_t msg[SHUB_CHECKPOINT_MSG_SIZE];
        checkpoint_t cp;
        const void *head = sqlite3_column_blob(st, 2);
        const void *pk = sqlite3_column_blob(st, 4);
        const void *sig = sqlite3_column_blob(st, 5);
        cp.seq = sqlite3_column_int64(st, 0);
        cp.upto = sqlite3_column_int64(st, 1);
        cp.at = sqlite3_column_int64(st, 3);
        if (!head || sqlite3_column_bytes(st, 2) != 32 || !pk ||
            sqlite3_column_bytes(st, 4) != 32 || !sig ||
            sqlite3_column_bytes(st, 5) != crypto_sign_BYTES) {
            bad(w, cp.upto, "bad signature: checkpoint %lld is malformed",
                (long long)cp.seq);
            break;
        }
        memcpy(cp.head, head, 32);
        if (expected && memcmp(pk, expected, 32) != 0) {
            bad(w, cp.upto, "bad signature: checkpoint %lld is signed by another key",
                (long long)cp.seq);
            break;
        }
        shub_store_checkpoint_msg(cp.upto, cp.head, cp.at, msg);
        if (crypto_sign_verify_detached(sig, msg, sizeof msg, pk) != 0) {
            bad(w, cp.upto,
                "bad signature: checkpoint %lld (rows up to %lld) does not verify",
                (long long)cp.seq, (long long)cp.upto);
            break;
        }
        if (w->ncps == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            checkpoint_t *grown = shub_realloc(w->cps, ncap * sizeof *grown);
            if (!grown) {
                sqlite3_finalize(st);
                return shub_err_set(err, SHUB_ENOMEM, "verify: out of memory");
            }
            w->cps = grown;
            cap = ncap;
        }
        w->cps[w->ncps++] = cp;
        w->out->checkpoints++;
    }
    if (w->out->ok && rc != SQLITE_DONE) {
        rc = shub_store_db_fail(w->s, err, "verify: read checkpoints");
        sqlite3_finalize(st);
        return rc;
    }
    sqlite3_finalize(st);
    return 0;
}

/* Reads column i of the current row as the canonical encoding sees it.
 * Through sqlite3_value: the sqlite3_column_* calls each pay an API exit
 * check, which at two dozen columns a row was a fifth of verify's time. */
static void read_val(sqlite3_stmt *st, int i, canon_val_t *v)
{
    sqlite3_value *x = sqlite3_column_value(st, i);
    switch (sqlite3_value_type(x)) {
    case SQLITE_INTEGER:
        v->type = CANON_INT;
        v->i = sqlite3_value_int64(x);
        break;
    case SQLITE_FLOAT: {
        double d = sqlite3_value_double(x);
        v->type = CANON_REAL;
        memcpy(&v->i, &d, sizeof d);
        break;
    }
    case SQLITE_TEXT:
        v->type = CANON_TEXT;
        v->p = sqlite3_value_text(x);
        v->n = (size_t)sqlite3_value_bytes(x);
        break;
    case SQLITE_BLOB:
        v->type = CANON_BLOB;
        v->p = sqlite3_value_blob(x);
        v->n = (size_t)sqlite3_value_bytes(x);
        break;
    default:
        v->type = CANON_NULL;
        v->p = NULL;
        v->n = 0;
        break;
    }
}

/* True if some row other than `seq` has row_hash `hash`. A full scan (there
 * is no index on row_hash, and none is wanted on the hot path), but it runs
 * once, for the first bad row only. */
static int other_row_has(walk_t *w, const uint8_t hash[32], int64_t seq, int64_t *found,
                         shub_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(w->s->db,
                                "SELECT seq FROM audit WHERE row_hash = ?1 AND seq <> ?2"
                                " LIMIT 1",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = shub_store_db_fail(w->s, err, "verify: look up row hash");
        sqlite3_finalize(st);
        return rc;
    }
    *found = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return 0;
}

static int walk_rows(walk_t *w, shub_err_t *err)
{
    uint8_t expect[32] = {0}, before[32] = {0}, hash[32], prev[32];
    canon_val_t v[SHUB_AUDIT_NCOLS];
    int64_t last = 0;
    size_t ci = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(w->s->db,
                                "SELECT " SHUB_AUDIT_COLUMNS ", prev_hash, row_hash"
                                " FROM audit ORDER BY seq",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return shub_store_db_fail(w->s, err, "verify: read audit log");
    memset(v, 0, sizeof v);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < SHUB_AUDIT_NCOLS; i++)
            read_val(st, i, &v[i]);
        int64_t seq = sqlite3_column_int64(st, AC_SEQ);
        const uint8_t *p = sqlite3_column_blob(st, SHUB_AUDIT_NCOLS);
        size_t plen = p ? (size_t)sqlite3_column_bytes(st, SHUB_AUDIT_NCOLS) : 0;
        const uint8_t *r = sqlite3_column_blob(st, SHUB_AUDIT_NCOLS + 1);
        size_t rlen = r ? (size_t)sqlite3_column_bytes(st, SHUB_AUDIT_NCOLS + 1) : 0;

        shub_store_row_hash(p, plen, v, hash);
        bool self_ok = rlen == 32 && memcmp(hash, r, 32) == 0;
        bool link_ok = plen == 32 && memcmp(p, expect, 32) == 0;
        if (self_ok && link_ok) {
            /* Every checkpoint at this row must have signed exactly this hash. */
            while (ci < w->ncps && w->cps[ci].upto <= seq) {
                if (w->cps[ci].upto == seq && memcmp(w->cps[ci].head, r, 32) != 0) {
                    bad(w, seq,
                        "edited: row %lld differs from signed checkpoint %lld "
                        "(chain rewritten at or before it)",
                        (long long)seq, (long long)w->cps[ci].seq);
                    goto done;
                }
                ci++;
            }
            memcpy(before, expect, 32);
            memcpy(expect, r, 32);
            last = seq;
            w->out->rows++;
            continue;
        }
        if (link_ok) {
            bad(w, seq, "edited: row %lld does not match its row_hash", (long long)seq);
            goto done;
        }
        if (seq > last + 1) {
            if (seq == last + 2)
                bad(w, last + 1, "missing: row %lld (row %lld follows row %lld)",
                    (long long)(last + 1), (long long)seq, (long long)last);
            else
                bad(w, last + 1, "missing: rows %lld to %lld (row %lld follows row %lld)",
                    (long long)(last + 1), (long long)(seq - 1), (long long)seq,
                    (long long)last);
            goto done;
        }
        if (last > 0 && plen == 32 && memcmp(p, before, 32) == 0) {
            bad(w, last,
                "inserted: row %lld is not in the chain (row %lld follows row %lld)",
                (long long)last, (long long)seq, (long long)(last - 1));
            goto done;
        }
        /* Needs a second query: copy what it needs before leaving the row. */
        memset(prev, 0, sizeof prev);
        memcpy(prev, p, plen < 32 ? plen : 32);
        bool prev_ok = plen == 32;
        sqlite3_reset(st);
        int64_t other = 0;
        if (prev_ok && (rc = other_row_has(w, prev, seq, &other, err))) {
            sqlite3_finalize(st);
            return rc;
        }
        if (other)
            bad(w, seq,
                "out of order: row %lld follows row %lld in the chain, not row %lld",
                (long long)seq, (long long)other, (long long)last);
        else if (!self_ok)
            bad(w, seq, "edited: row %lld does not match its hashes", (long long)seq);
        else
            bad(w, seq, "inserted: row %lld does not follow any row of the chain",
                (long long)seq);
        goto done;
    }
    if (rc != SQLITE_DONE) {
        rc = shub_store_db_fail(w->s, err, "verify: read audit log");
        sqlite3_finalize(st);
        return rc;
    }
    if (w->ncps > 0 && w->cps[w->ncps - 1].upto > last) {
        const checkpoint_t *cp = &w->cps[w->ncps - 1];
        bad(w, last + 1,
            "truncated after checkpoint %lld: the log ends at row %lld, the checkpoint "
            "signed rows up to %lld",
            (long long)cp->seq, (long long)last, (long long)cp->upto);
    }
done:
    sqlite3_finalize(st);
    return 0;
}

int shub_store_verify(const char *path, const uint8_t *expected_pubkey,
                      shub_verify_result_t *out, shub_err_t *err)
{
    shub_store_opts_t opts = {.readonly = true};
    walk_t w = {0};
    int rc;
    if (!path || !out)
        return shub_err_set(err, SHUB_EINVAL, "verify: missing path or result");
    memset(out, 0, sizeof *out);
    out->ok = true;
    if ((rc = shub_store_open(path, &opts, &w.s, err)))
        return rc;
    w.out = out;
    /* One read transaction: checkpoints and rows from the same snapshot. */
    if (sqlite3_exec(w.s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = shub_store_db_fail(w.s, err, "verify: begin");
        goto done;
    }
    if ((rc = load_checkpoints(&w, expected_pubkey, err)) == 0 && out->ok)
        rc = walk_rows(&w, err);
    sqlite3_exec(w.s->db, "COMMIT", NULL, NULL, NULL);
done:
    if (rc) {
        memset(out, 0, sizeof *out);
    }
    shub_free(w.cps);
    shub_store_close(&w.s);
    return rc;
}
