/*
 * verify: re-walks the audit hash chain, checks the signed checkpoints and
 * what witnesses hold (shub_store_verify in include/sharehub/store.h). It is
 * what `sharehub-audit verify` runs, beside a live broker: the file is opened
 * read-only and read in one snapshot, so rows appended meanwhile are simply
 * not looked at.
 *
 * Speed matters (a region's log runs to millions of rows; the target is
 * 500k rows/s): one prepared statement streams the rows in seq order (the
 * rowid, so no sort), names resolve through an array loaded once, each row is
 * hashed once with the encoding append used (store_internal.h), and only two
 * hashes of history are kept. The first bad row stops the walk:
 *
 *   seq jumps past the previous row + 1            -> "missing"
 *   the row hashes right one seq lower, chained from the row before the
 *   previous one                                   -> "inserted" (the previous)
 *   otherwise                                      -> "edited" (this row, or a
 *                                                     row before it rehashed)
 *
 * What each kind of evidence shows (SPEC section 11 says the same):
 *   - the chain alone: any edit, insertion, deletion or reordering of rows
 *     that is not followed by rehashing every row after it;
 *   - signed checkpoints (with --key): also a rewrite of the chain up to any
 *     signed row, and a log cut short before the newest checkpoint; and an
 *     unsigned tail appended over more than twice the signing interval (the
 *     newest checkpoints were removed, or the broker was not signing);
 *   - a witness (a checkpoint an organisation's agent holds): also the
 *     removal of rows and checkpoints up to what it holds, a rewrite and
 *     re-signing of the whole log, and an emptied log; and a fork it kept
 *     (two checkpoints the broker's key signed that cannot both be true)
 *     shows that the broker signed two histories, whatever the log says now.
 * No log can show rows appended after the newest checkpoint any witness holds
 * and then removed with the checkpoints that signed them: with checkpoints
 * every few seconds and every agent a witness, that window is seconds.
 */
#include "store_internal.h"

#include "sharehub/alloc.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct checkpoint {
    int64_t seq, upto, at;
    uint8_t head[32];
} checkpoint_t;

typedef struct witness_check {
    const shub_witnessed_t *w;
    bool seen_row; /* the walk reached its seq */
} witness_check_t;

typedef struct walk {
    shub_store_t *s;
    const shub_verify_opts_t *opts;
    shub_verify_result_t *out;
    checkpoint_t *cps;
    size_t ncps;
    witness_check_t *wit; /* sorted by seq */
    size_t nwit;
    int64_t last_at;         /* `at` of the last good row */
    int64_t first_unsigned_at;
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

static bool signature_ok(const uint8_t key[32], const uint8_t sig[64], int64_t upto,
                         const uint8_t head[32], int64_t at)
{
    shub_signed_head_t cp = {.seq = upto, .at_ms = at};
    memcpy(cp.head, head, 32);
    memcpy(cp.key, key, 32);
    memcpy(cp.sig, sig, 64);
    return shub_checkpoint_verify(&cp, NULL) == 0;
}

/* Loads the checkpoints in upto_seq order and checks each signature. 0 with
 * out->ok false on the first bad one; negative if it cannot read them. */
static int load_checkpoints(walk_t *w, shub_err_t *err)
{
    const uint8_t *expected = w->opts->expected_key;
    shub_db_stmt_t *st = NULL;
    size_t cap = 0;
    int rc = shub_db_prepare(w->s->db,
                             "SELECT seq, upto_seq, head_hash, at, public_key, signature"
                             " FROM checkpoints ORDER BY upto_seq, seq",
                             false, &st);
    if (rc != 0)
        return shub_store_db_fail(w->s, err, "verify: read checkpoints");
    while ((rc = shub_db_step(st)) == SHUB_DB_ROW) {
        checkpoint_t cp;
        const void *head = shub_db_column_blob(st, 2);
        const void *pk = shub_db_column_blob(st, 4);
        const void *sig = shub_db_column_blob(st, 5);
        cp.seq = shub_db_column_int(st, 0);
        cp.upto = shub_db_column_int(st, 1);
        cp.at = shub_db_column_int(st, 3);
        if (!head || shub_db_column_bytes(st, 2) != 32 || !pk ||
            shub_db_column_bytes(st, 4) != 32 || !sig ||
            shub_db_column_bytes(st, 5) != crypto_sign_BYTES) {
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
        if (!signature_ok(pk, sig, cp.upto, cp.head, cp.at)) {
            bad(w, cp.upto,
                "bad signature: checkpoint %lld (rows up to %lld) does not verify",
                (long long)cp.seq, (long long)cp.upto);
            break;
        }
        if (w->ncps == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            checkpoint_t *grown = shub_realloc(w->cps, ncap * sizeof *grown);
            if (!grown) {
                shub_db_finalize(st);
                return shub_err_set(err, SHUB_ENOMEM, "verify: out of memory");
            }
            w->cps = grown;
            cap = ncap;
        }
        w->cps[w->ncps++] = cp;
        w->out->checkpoints++;
    }
    if (w->out->ok && rc != SHUB_DB_DONE) {
        rc = shub_store_db_fail(w->s, err, "verify: read checkpoints");
        shub_db_finalize(st);
        return rc;
    }
    shub_db_finalize(st);
    return 0;
}

static const char *who(const shub_witnessed_t *wd)
{
    return wd->org[0] ? wd->org : wd->source;
}

static int cmp_witness(const void *a, const void *b)
{
    const witness_check_t *x = a, *y = b;
    return (x->w->cp.seq > y->w->cp.seq) - (x->w->cp.seq < y->w->cp.seq);
}

/* Whether a checkpoint a witness holds is the broker's: signed by the key
 * the verifier expects (or, without one, by the key it names). */
static bool held_signature_ok(walk_t *w, const shub_witnessed_t *wd)
{
    const shub_signed_head_t *cp = &wd->cp;
    const char *kind = wd->fork ? "fork" : "checkpoint";
    if (w->opts->expected_key && memcmp(cp->key, w->opts->expected_key, 32) != 0) {
        bad(w, cp->seq,
            "bad signature: the %s of rows up to %lld held by %s is signed by another "
            "key",
            kind, (long long)cp->seq, who(wd));
        return false;
    }
    if (!signature_ok(cp->key, cp->sig, cp->seq, cp->head, cp->at_ms)) {
        bad(w, cp->seq,
            "bad signature: the %s of rows up to %lld held by %s does not verify", kind,
            (long long)cp->seq, who(wd));
        return false;
    }
    return true;
}

static bool in_log(const walk_t *w, const shub_signed_head_t *cp)
{
    for (size_t k = 0; k < w->ncps; k++)
        if (w->cps[k].upto == cp->seq && w->cps[k].at == cp->at_ms &&
            memcmp(w->cps[k].head, cp->head, 32) == 0)
            return true;
    return false;
}

/* A fork a witness kept and the broker's key signed: two signed histories,
 * which no log can reconcile. Checked before anything else, so the most
 * serious evidence is the one named. */
static void check_forks(walk_t *w)
{
    for (size_t i = 0; i < w->opts->n_witnessed && w->out->ok; i++) {
        const shub_witnessed_t *wd = &w->opts->witnessed[i];
        if (!wd->fork || !held_signature_ok(w, wd))
            continue;
        bad(w, wd->cp.seq,
            "forked: %s keeps a checkpoint of rows up to %lld signed by the broker at "
            "%lld "
            "that contradicts one it kept before (%s): the broker signed two histories",
            who(wd), (long long)wd->cp.seq, (long long)wd->cp.at_ms,
            in_log(w, &wd->cp) ? "this log has it" : "this log lacks it");
    }
}

/* Each witnessed checkpoint: signed by the broker's key, and present in the
 * log's own checkpoints with the same head. The rows it covers are checked
 * during the walk. */
static int load_witnesses(walk_t *w, shub_err_t *err)
{
    const shub_verify_opts_t *o = w->opts;
    if (o->n_witnessed == 0)
        return 0;
    w->wit = shub_calloc(o->n_witnessed, sizeof *w->wit);
    if (!w->wit)
        return shub_err_set(err, SHUB_ENOMEM, "verify: out of memory");
    check_forks(w);
    for (size_t i = 0; i < o->n_witnessed && w->out->ok; i++) {
        const shub_witnessed_t *wd = &o->witnessed[i];
        const shub_signed_head_t *cp = &wd->cp;
        if (wd->fork)
            continue;
        if (!held_signature_ok(w, wd))
            return 0;
        if (!in_log(w, cp)) {
            bad(w, cp->seq,
                "not witnessed: the log lacks the checkpoint of rows up to %lld signed at "
                "%lld that %s holds (checkpoints removed or the log replaced)",
                (long long)cp->seq, (long long)cp->at_ms, who(wd));
            return 0;
        }
        w->wit[w->nwit++] = (witness_check_t){.w = wd};
    }
    qsort(w->wit, w->nwit, sizeof *w->wit, cmp_witness);
    return 0;
}

static int read_interval(walk_t *w)
{
    shub_db_stmt_t *st = NULL;
    w->out->interval_ms = SHUB_STORE_CHECKPOINT_MS;
    if (shub_db_prepare(w->s->db, "SELECT value FROM meta WHERE key = 'checkpoint_ms'",
                        false, &st) == 0 &&
        shub_db_step(st) == SHUB_DB_ROW) {
        long long v = shub_db_column_int(st, 0);
        if (v > 0)
            w->out->interval_ms = v;
    }
    shub_db_finalize(st);
    return 0;
}

static int walk_rows(walk_t *w, shub_err_t *err)
{
    uint8_t expect[32] = {0}, before[32] = {0}, hash[32];
    canon_val_t v[SHUB_AUDIT_NCOLS];
    char scratch[SHUB_AUDIT_NCOLS][32];
    int64_t last = 0, first_seq = 0;
    size_t ci = 0, wi = 0;
    int64_t signed_upto = w->ncps ? w->cps[w->ncps - 1].upto : 0;
    shub_db_stmt_t *st = NULL;
    int rc = shub_db_prepare(w->s->db,
                             shub_db_kind(w->s->db) == SHUB_DB_PG
                                 ? "SELECT " SHUB_AUDIT_READ_COLUMNS_PG " FROM audit ORDER BY seq"
                                 : "SELECT " SHUB_AUDIT_TABLE_COLUMNS " FROM audit ORDER BY seq",
                             false, &st);
    if (rc != 0)
        return shub_store_db_fail(w->s, err, "verify: read audit log");
    shub_db_stream(st); /* millions of rows: one at a time, never all in memory */
    while ((rc = shub_db_step(st)) == SHUB_DB_ROW) {
        const uint8_t *r;
        size_t rlen;
        shub_store_row_values(w->s, st, 0, v, scratch, &r, &rlen);
        int64_t seq = v[AC_SEQ].type == CANON_INT ? v[AC_SEQ].i : 0;
        int64_t at = v[AC_AT].type == CANON_INT ? v[AC_AT].i : 0;
        if (!first_seq)
            first_seq = seq;
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
        shub_store_row_hash(expect, v, hash);
        if (rlen != 32 || memcmp(hash, r, 32) != 0) {
            /* A row slid in before this one, the rest renumbered up: this row
             * then hashes right one seq lower, chained from the row before
             * the intruder. */
            uint8_t alt[32];
            v[AC_SEQ].i = seq - 1;
            shub_store_row_hash(before, v, alt);
            if (last > 0 && rlen == 32 && memcmp(alt, r, 32) == 0)
                bad(w, last,
                    "inserted: row %lld is not in the chain (row %lld was row %lld, "
                    "renumbered)",
                    (long long)last, (long long)seq, (long long)last);
            else
                bad(w, seq,
                    "edited: row %lld does not match its hash (the row, or a row before "
                    "it that was rehashed, was changed)",
                    (long long)seq);
            goto done;
        }
        /* Every checkpoint and witness at this row must have signed this hash. */
        while (ci < w->ncps && w->cps[ci].upto <= seq) {
            if (w->cps[ci].upto == seq && memcmp(w->cps[ci].head, r, 32) != 0) {
                bad(w, seq,
                    "edited: row %lld differs from signed checkpoint %lld (chain rewritten "
                    "at or before it)",
                    (long long)seq, (long long)w->cps[ci].seq);
                goto done;
            }
            ci++;
        }
        while (wi < w->nwit && w->wit[wi].w->cp.seq <= seq) {
            const shub_witnessed_t *wd = w->wit[wi].w;
            if (wd->cp.seq == seq && memcmp(wd->cp.head, r, 32) != 0) {
                bad(w, seq,
                    "edited: row %lld differs from the checkpoint %s holds (chain "
                    "rewritten at or before it)",
                    (long long)seq, who(wd));
                goto done;
            }
            w->wit[wi].seen_row = wd->cp.seq == seq;
            if (!w->wit[wi].seen_row) {
                bad(w, wd->cp.seq, "missing: row %lld, which the checkpoint %s holds covers",
                    (long long)wd->cp.seq, who(wd));
                goto done;
            }
            w->out->witnessed++;
            w->out->witnessed_upto = wd->cp.seq;
            wi++;
        }
        if (seq > signed_upto && !w->first_unsigned_at)
            w->first_unsigned_at = at;
        w->last_at = at;
        memcpy(before, expect, 32);
        memcpy(expect, r, 32);
        last = seq;
        w->out->rows++;
    }
    if (rc != SHUB_DB_DONE) {
        rc = shub_store_db_fail(w->s, err, "verify: read audit log");
        shub_db_finalize(st);
        return rc;
    }
    if (w->nwit > wi) {
        const shub_witnessed_t *wd = w->wit[w->nwit - 1].w;
        bad(w, last + 1,
            "truncated: the log ends at row %lld, but %s holds a checkpoint of rows up to "
            "%lld",
            (long long)last, who(wd), (long long)wd->cp.seq);
        goto done;
    }
    if (w->ncps > 0 && signed_upto > last) {
        const checkpoint_t *cp = &w->cps[w->ncps - 1];
        bad(w, last + 1,
            "truncated after checkpoint %lld: the log ends at row %lld, the checkpoint "
            "signed rows up to %lld",
            (long long)cp->seq, (long long)last, (long long)cp->upto);
        goto done;
    }
    w->out->signed_upto = signed_upto < last ? signed_upto : last;
    w->out->unsigned_rows = last - w->out->signed_upto;
    if (w->out->unsigned_rows > 0) {
        w->out->unsigned_span_ms = w->last_at - w->first_unsigned_at;
        w->out->unsigned_age_ms = w->opts->now_ms - w->first_unsigned_at;
        if (w->opts->expected_key && w->out->unsigned_span_ms > 2 * w->out->interval_ms)
            bad(w, w->out->signed_upto + 1,
                "unsigned tail: %lld rows after the newest checkpoint were appended over "
                "%lld ms, more than twice the signing interval (%lld ms): checkpoints "
                "were removed, or the broker was not signing",
                (long long)w->out->unsigned_rows, (long long)w->out->unsigned_span_ms,
                (long long)w->out->interval_ms);
    }
done:
    shub_db_finalize(st);
    return 0;
}

int shub_store_verify(const char *path, const shub_verify_opts_t *opts,
                      shub_verify_result_t *out, shub_err_t *err)
{
    shub_store_opts_t sopts = {.readonly = true};
    shub_verify_opts_t none = {0};
    walk_t w = {0};
    int rc;
    if (!path || !out)
        return shub_err_set(err, SHUB_EINVAL, "verify: missing path or result");
    memset(out, 0, sizeof *out);
    out->ok = true;
    if ((rc = shub_store_open(path, &sopts, &w.s, err)))
        return rc;
    w.out = out;
    w.opts = opts ? opts : &none;
    /* One read transaction: names, checkpoints and rows from one snapshot. */
    if (shub_db_begin_read(w.s->db) != 0) {
        rc = shub_store_db_fail(w.s, err, "verify: begin");
        goto done;
    }
    read_interval(&w);
    if ((rc = shub_store_names_load(w.s, err)) == 0 &&
        (rc = load_checkpoints(&w, err)) == 0 && out->ok &&
        (rc = load_witnesses(&w, err)) == 0 && out->ok)
        rc = walk_rows(&w, err);
    shub_db_exec(w.s->db, "COMMIT");
done:
    if (rc) {
        memset(out, 0, sizeof *out);
    }
    shub_free(w.cps);
    shub_free(w.wit);
    shub_store_close(&w.s);
    return rc;
}
