/*
 * zap: admits organisations by CURVE public key (broker/zap.h). A request is
 * at most a handful of short frames; anything else is answered 400 without
 * being trusted further.
 */
#include "zap.h"

#include "sharehub/keys.h"
#include "sharehub/log.h"
#include "sharehub/transport.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES 8   /* version, id, domain, address, routing id, mechanism, credentials */
#define ZAP_FRAME_MAX 256

void *shub_zap_bind(void *ctx, shub_err_t *err)
{
    void *zap = zmq_socket(ctx, ZMQ_REP);
    if (!zap) {
        shub_err_set(err, SHUB_EIO, "creating ZAP socket: %s", zmq_strerror(errno));
        return NULL;
    }
    int linger = 0;
    zmq_setsockopt(zap, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(zap, ZAP_ENDPOINT) != 0) {
        shub_err_set(err, SHUB_EIO, "binding ZAP handler: %s", zmq_strerror(errno));
        zmq_close(zap);
        return NULL;
    }
    return zap;
}

typedef struct {
    char data[ZAP_FRAME_MAX];
    size_t len;
} frame_t;

static void reply(void *zap, const frame_t *id, const char *code, const char *text,
                  const char *user)
{
    zmq_send(zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(zap, id->data, id->len, ZMQ_SNDMORE);
    zmq_send(zap, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(zap, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(zap, "", 0, 0);
}

static bool frame_is(const frame_t *f, const char *s)
{
    return f->len == strlen(s) && memcmp(f->data, s, f->len) == 0;
}

int shub_zap_handle(void *zap, const shub_config_t *cfg)
{
    frame_t f[ZAP_FRAMES];
    int n = 0, more = 1;
    size_t more_len = sizeof more;
    bool oversize = false;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, zap, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            return n == 0 ? SHUB_EBUSY : SHUB_EIO;
        }
        if (n < ZAP_FRAMES) {
            size_t len = zmq_msg_size(&m);
            oversize |= len > ZAP_FRAME_MAX;
            f[n].len = len > ZAP_FRAME_MAX ? ZAP_FRAME_MAX : len;
            memcpy(f[n].data, zmq_msg_data(&m), f[n].len);
        }
        n++;
        zmq_msg_close(&m);
        more_len = sizeof more;
        zmq_getsockopt(zap, ZMQ_RCVMORE, &more, &more_len);
    }
    static const frame_t none = {{0}, 0};
    const frame_t *req_id = n >= 2 ? &f[1] : &none;
    if (n != 7 || oversize || !frame_is(&f[0], "1.0")) {
        shub_warn("zap refused: malformed request (%d frames)", n);
        reply(zap, req_id, "400", "malformed request", "");
        return 0;
    }
    char address[ZAP_FRAME_MAX + 1];
    memcpy(address, f[3].data, f[3].len);
    address[f[3].len] = '\0';
    if (!frame_is(&f[2], SHUB_TRANSPORT_ZAP_DOMAIN) || !frame_is(&f[5], "CURVE") ||
        f[6].len != SHUB_KEY_SIZE) {
        shub_warn("zap refused: not a CURVE handshake in domain '%s' address=%s",
                  SHUB_TRANSPORT_ZAP_DOMAIN, address);
        reply(zap, req_id, "400", "CURVE required", "");
        return 0;
    }
    const uint8_t *key = (const uint8_t *)f[6].data;
    const shub_org_t *org = shub_config_org_by_key(cfg, key);
    if (!org) {
        char z85[SHUB_KEY_Z85];
        shub_keys_z85_encode(key, z85);
        shub_warn("zap refused: unknown key=%s address=%s", z85, address);
        reply(zap, req_id, "400", "unknown key", "");
        return 0;
    }
    shub_debug("zap admitted org=%s address=%s", org->id, address);
    reply(zap, req_id, "200", "OK", org->id);
    return 0;
}
