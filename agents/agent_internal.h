/*
 * agent_internal: what agent.c shares with the files beside it.
 *
 * The link (agent_link.c) says, in the agent's log, what state its
 * connection to the broker is in, because the broker cannot tell a partner
 * anything before the handshake succeeds: a refused key or a wrong
 * broker.pub is otherwise visible only in the broker's log, on another
 * organisation's host. It watches each socket the agent makes with a libzmq
 * monitor and logs one line per change of state, never one per retry:
 *
 *   connecting   at start, and whenever a session is lost
 *   welcomed     the broker's WELCOME (agent.c logs it; the link resets)
 *   refused      the broker's ZAP handler does not know our key
 *   handshake    the connection closes inside CURVE: most often broker.pub
 *                is not this broker's key
 *   unreachable  no connection at all for LINK_FIRST_REPORT_MS, then again
 *                every LINK_REPEAT_MS while it lasts
 */
#ifndef SHAREHUB_AGENT_INTERNAL_H
#define SHAREHUB_AGENT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#define LINK_FIRST_REPORT_MS 3000  /* quiet this long before "cannot reach" */
#define LINK_REPEAT_MS       30000 /* then say it again this often */

typedef struct agent_link {
    void *ctx;              /* borrowed: the agent's ZeroMQ context */
    void *sock, *monitor;   /* the socket watched (borrowed) and its monitor */
    unsigned seq;           /* names one inproc endpoint per socket watched */
    const char *endpoint;   /* borrowed, for the log lines */
    const char *public_z85; /* our public key, for the refusal line */
    bool welcomed;
    int64_t down_since_ms;  /* start of the current time without a session */
    bool connected;         /* a transport connection exists now */
    bool explained;         /* a refusal or failed handshake was seen in this outage */
    bool dropped;           /* the connection closed while welcomed (a broker that
                               died, or a standby's endpoint it never was) */
    int64_t next_report_ms; /* when to say again that there is no session */
} agent_link_t;

/* Starts watching: logs "connecting" and counts the time without a session
 * from now. Strings are borrowed and must outlive the link. */
void shub_agent_link_init(agent_link_t *l, void *ctx, const char *endpoint,
                          const char *public_z85, int64_t now_ms);

/* Watches a freshly connected socket (the previous one must be released). */
void shub_agent_link_attach(agent_link_t *l, void *sock);

/* Stops watching the current socket; call before closing it. */
void shub_agent_link_release(agent_link_t *l);

/* Reads what the monitor saw and logs what changed or is overdue. */
void shub_agent_link_poll(agent_link_t *l, int64_t now_ms);

/* Whether the welcomed connection closed since last asked (then clears it):
 * the broker went away without a BYE, and silence need not be waited for. */
bool shub_agent_link_dropped(agent_link_t *l);

/* The broker welcomed us: says how long it took if an outage was reported. */
void shub_agent_link_welcomed(agent_link_t *l, int64_t now_ms);

/* The session is gone (silence, BYE, not-welcome): logs "connecting" again. */
void shub_agent_link_lost(agent_link_t *l, int64_t now_ms);

/* How long the agent has been without a session; 0 while welcomed. */
int64_t shub_agent_link_down_ms(const agent_link_t *l, int64_t now_ms);

#endif
