/*
 * agent_link: the agent's connection state, told in its own log (see
 * agent_internal.h). Nothing here sends or decides anything: agent.c owns the
 * session and calls in when it makes a socket, is welcomed or loses a
 * session; this file only listens to libzmq's monitor and speaks.
 */
#include "agent_internal.h"

#include "sharehub/log.h"
#include "sharehub/transport.h"

#include <stdio.h>
#include <zmq.h>

#define LINK_EVENTS                                                                      \
    (ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |      \
     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |        \
     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

static long long seconds(int64_t ms)
{
    return (long long)((ms + 500) / 1000);
}

void shub_agent_link_init(agent_link_t *l, void *ctx, const char *endpoint,
                          const char *public_z85, int64_t now_ms)
{
    *l = (agent_link_t){.ctx = ctx, .endpoint = endpoint, .public_z85 = public_z85};
    shub_agent_link_lost(l, now_ms);
}

void shub_agent_link_attach(agent_link_t *l, void *sock)
{
    char name[64];
    shub_err_t err;
    snprintf(name, sizeof name, "inproc://shub-agent-link-%u", l->seq++);
    l->sock = sock;
    l->connected = false;
    l->monitor = shub_transport_watch(l->ctx, sock, name, LINK_EVENTS, &err);
    if (!l->monitor) /* the agent works without it; it only says less */
        shub_debug("connection state not watched: %s", err.msg);
}

void shub_agent_link_release(agent_link_t *l)
{
    if (l->monitor) {
        zmq_socket_monitor(l->sock, NULL, 0);
        zmq_close(l->monitor);
    }
    l->monitor = NULL;
    l->sock = NULL;
    l->connected = false;
}

/* The broker's ZAP handler said no (status 400): the one cause there is. */
static void refused(agent_link_t *l, int64_t now_ms)
{
    if (l->explained && now_ms < l->next_report_ms)
        return;
    if (l->explained)
        shub_warn("still refused after %lld s: is %s in orgs.yaml? endpoint=%s",
                  seconds(now_ms - l->down_since_ms), l->public_z85, l->endpoint);
    else
        shub_warn("refused: the broker does not accept our key: is %s in orgs.yaml? "
                  "endpoint=%s",
                  l->public_z85, l->endpoint);
    l->explained = true;
    l->next_report_ms = now_ms + LINK_REPEAT_MS;
}

/* The connection closed inside the CURVE handshake. From the client's side
 * that is what a server key other than the broker's looks like. */
static void handshake_failed(agent_link_t *l, int64_t now_ms)
{
    if (l->explained && now_ms < l->next_report_ms)
        return;
    shub_warn("%s: the broker at %s does not answer to the key in our broker.pub; is it "
              "this broker's?",
              l->explained ? "handshakes still failing" : "handshake failed",
              l->endpoint);
    l->explained = true;
    l->next_report_ms = now_ms + LINK_REPEAT_MS;
}

void shub_agent_link_poll(agent_link_t *l, int64_t now_ms)
{
    shub_transport_event_t ev;
    while (l->monitor && shub_transport_watch_read(l->monitor, &ev) == 0) {
        switch (ev.event) {
        case ZMQ_EVENT_CONNECTED:
            l->connected = true;
            break;
        case ZMQ_EVENT_DISCONNECTED:
            l->connected = false;
            l->dropped |= l->welcomed;
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            refused(l, now_ms);
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            handshake_failed(l, now_ms);
            break;
        default:
            break;
        }
    }
    if (l->welcomed || l->explained || now_ms < l->next_report_ms)
        return;
    if (l->connected)
        shub_warn("no WELCOME from the broker at %s for %lld s; still trying",
                  l->endpoint, seconds(now_ms - l->down_since_ms));
    else
        shub_warn("cannot reach the broker at %s for %lld s; still trying", l->endpoint,
                  seconds(now_ms - l->down_since_ms));
    l->next_report_ms = now_ms + LINK_REPEAT_MS;
}

bool shub_agent_link_dropped(agent_link_t *l)
{
    bool d = l->dropped;
    l->dropped = false;
    return d;
}

void shub_agent_link_welcomed(agent_link_t *l, int64_t now_ms)
{
    if (!l->welcomed &&
        (l->explained || now_ms - l->down_since_ms >= LINK_FIRST_REPORT_MS))
        shub_info("reached the broker at %s after %lld s without a session", l->endpoint,
                  seconds(now_ms - l->down_since_ms));
    l->welcomed = true;
    l->explained = false;
    l->dropped = false;
}

void shub_agent_link_lost(agent_link_t *l, int64_t now_ms)
{
    if (l->welcomed || l->down_since_ms == 0)
        shub_info("connecting endpoint=%s key=%s", l->endpoint, l->public_z85);
    l->welcomed = false;
    l->explained = false;
    l->down_since_ms = now_ms;
    l->next_report_ms = now_ms + LINK_FIRST_REPORT_MS;
}

int64_t shub_agent_link_down_ms(const agent_link_t *l, int64_t now_ms)
{
    return l->welcomed ? 0 : now_ms - l->down_since_ms;
}
