/*
 * hub: the broker's loop. It only orchestrates (DESIGN.md): receive, decode,
 * decide (policy), minimise, seal, commit (store), then send RECEIPTs and
 * DELIVERs. It holds no policy and no SQL. The caller (sharehub-broker's
 * main) owns signals: it calls shub_hub_poll in a loop, shub_hub_reload when
 * SIGHUP set its flag, and shub_hub_destroy to shut down cleanly.
 */
#ifndef SHAREHUB_HUB_H
#define SHAREHUB_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"

typedef struct shub_hub shub_hub_t;

typedef struct shub_hub_opts {
    const char *config_dir; /* hub.yaml, orgs.yaml, agreements/ */
    const char *database;   /* NULL: hub.yaml's */
    const char *endpoint;   /* NULL: hub.yaml's; "tcp://127.0.0.1:*" picks a port */
    const char *key_dir;    /* NULL: hub.yaml's */
    const char *ready_file; /* optional: the bound endpoint is written here once
                               the broker accepts connections (for scripts and tests) */
    /* PostgreSQL: while another broker holds the database, called every
     * 200 ms; true waits on (a standby), false gives up (SHUB_EBUSY). NULL:
     * refuse at once, as on SQLite. */
    bool (*wait_lock)(void *ctx);
    void *wait_ctx;
} shub_hub_opts_t;

/* Loads the config (each error logged as file:line: message), the broker's
 * keys, opens the store, binds the ZAP handler and then the ROUTER.
 * SHUB_ECONFIG for a bad config, SHUB_ECRYPTO for keys, SHUB_EDB, SHUB_EIO. */
int shub_hub_new(const shub_hub_opts_t *opts, shub_hub_t **hub_p, shub_err_t *err);

/* One turn of the loop: waits up to timeout_ms for traffic, drains a batch,
 * commits it, sends what the commit allows, runs timers. Returns 0; a store
 * failure is handled inside (shares refused with ERROR unavailable until the
 * store recovers) and never ends the loop, except SHUB_EBUSY: on PostgreSQL
 * the session holding the database lock is gone, and the caller must stop
 * (a standby may be serving). */
int shub_hub_poll(shub_hub_t *hub, int timeout_ms);

/* Re-reads organisations and agreements. A config that fails to load is
 * logged error by error and the old one stays in force (SHUB_ECONFIG). */
int shub_hub_reload(shub_hub_t *hub);

/* The endpoint actually bound. */
const char *shub_hub_endpoint(const shub_hub_t *hub);

/* Commits what is in hand, signs a final checkpoint, closes everything;
 * accepts NULL; nulls the caller's pointer. */
void shub_hub_destroy(shub_hub_t **hub_p);

#endif
