/*
 * zap: the ZeroMQ Authentication Protocol handler (RFC 27) for the broker.
 * Private to the broker: the hub polls it on its own thread, so it reads the
 * registry without locks, and the registry a reload installs is used from
 * the next handshake on.
 */
#ifndef SHAREHUB_ZAP_H
#define SHAREHUB_ZAP_H

#include "sharehub/config.h"
#include "sharehub/err.h"

/* Binds the handler socket on ctx. Must happen before any CURVE server binds:
 * without a handler libzmq admits every key. */
void *shub_zap_bind(void *ctx, shub_err_t *err);

/* Answers one waiting request: 200 with User-Id = the organisation whose
 * public key it is, or 400 (logged with the key in z85) for anything else. */
int shub_zap_handle(void *zap, const shub_config_t *cfg);

#endif
