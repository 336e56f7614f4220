/*
 * profile_idva: an IDVA service (independent domestic violence advisers).
 * It receives idva.notification from the MARAC of its area, and
 * subject.moved_area when a victim it supports leaves, and acts on them off
 * the wire: it sends nothing back, and originates nothing. It exists so that
 * an IDVA agent runs like every other, and so that its inbox shows exactly
 * what the agreements let through to it.
 */
#include "profile_internal.h"

static int init(shub_profile_t *p, shub_err_t *err)
{
    (void)p;
    (void)err;
    return 0;
}

static int fire(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                void *ctx)
{
    (void)p;
    (void)job;
    (void)emit;
    (void)ctx;
    return 0;
}

const profile_ops_t shub_profile_idva_ops = {
    .kind = "idva",
    .init = init,
    .fini = NULL,
    .fire = fire,
    .receive = NULL,
};
