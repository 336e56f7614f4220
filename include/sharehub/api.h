/*
 * api: the agent's local HTTP/JSON API, for a partner's own case system
 * (police records, council case management, a hospital system) to share and
 * receive events without C, a shell per event, or the command line. The
 * running agent serves it on a loopback address or a unix socket
 * (`sharehub-agent run --api`); docs/api.openapi.json is its contract and
 * examples/python/sharehub_client.py a client.
 *
 *   POST /v1/events                  queue an event: the JSON `submit` takes,
 *                                    the same checks; 201, or 200 for a repeat
 *                                    of an id already queued with the same
 *                                    content (409 with other content)
 *   GET  /v1/events?after=C&wait=S   outbox events changed after cursor C
 *   GET  /v1/events/ID?since=C&wait=S one event: state, and each recipient's
 *                                    outcome; waits up to S seconds for a
 *                                    change after cursor C
 *   GET  /v1/inbox?after=Q&wait=S    events received after inbox seq Q not yet
 *                                    taken (all=1: taken ones too)
 *   POST /v1/inbox/ID/ack            the case system has taken the event
 *   GET  /v1/health                  connection, backlog, newest checkpoint
 *
 * Delivery to the case system is at least once: an event stays in the inbox
 * listing until acknowledged, and a client that crashes reads it again; the
 * event id lets it drop repeats. Errors are JSON,
 * {"error": {"code", "path", "message"}}, validation errors 422 with the
 * path and message `submit` gives.
 *
 * Two halves. The handler (api.c) takes a request already read (method,
 * target, two headers, body) and answers it: routing, the token check, body
 * parsing, the store, JSON; it holds no socket, so tests and the fuzz target
 * call it directly. The server (api_http.c) is libmicrohttpd on threads of
 * its own, one per connection, with bounds on connections, request size and
 * idle time; it only reads requests and writes answers. The API has its own
 * connection to the agent's store and never calls into the agent's loop
 * except through shub_agent_wake; the agent tells it of changes through
 * shub_api_observe. Long polls wait on a condition variable, never inside a
 * transaction.
 */
#ifndef SHAREHUB_API_H
#define SHAREHUB_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/agent.h"
#include "sharehub/err.h"

#define SHUB_API_MAX_BODY        (1024 * 1024) /* bytes of a request body: an event's
                                                  sealed copy must fit a DELIVER anyway */
#define SHUB_API_MAX_TARGET      1024 /* bytes of path and query */
#define SHUB_API_MAX_WAIT_S      60   /* the longest long poll */
#define SHUB_API_MAX_WAITERS     32   /* long polls waiting at once; more get 503 */
#define SHUB_API_DEFAULT_LIMIT   100  /* events in one listing */
#define SHUB_API_MAX_LIMIT       1000
#define SHUB_API_MAX_CONNECTIONS 64   /* connections served at once (a thread each) */
#define SHUB_API_TIMEOUT_S       10   /* a connection idle this long is closed */
#define SHUB_API_TOKEN_MIN       16   /* bytes of a bearer token, at least */
#define SHUB_API_TOKEN_MAX       512

typedef struct shub_api shub_api_t;

typedef struct shub_api_opts {
    const char *db_path;            /* the agent's store, opened again here */
    const shub_agent_config_t *cfg; /* areas `submit` checks (NULL: none); borrowed */
    const char *token;              /* the bearer token every request must carry;
                                       NULL: none (only behind a unix socket) */
    int max_wait_ms;                /* longest long poll; 0: SHUB_API_MAX_WAIT_S;
                                       < 0: never wait (the fuzz target) */
    void (*wake)(void *ctx);        /* new events are queued (may be NULL) */
    void *wake_ctx;
} shub_api_opts_t;

/* A request as the server read it. Strings are NUL-terminated and borrowed. */
typedef struct shub_api_request {
    const char *method;        /* "GET", "POST", ... */
    const char *target;        /* path and query as sent: "/v1/inbox?after=12" */
    const char *authorization; /* the Authorization header, or NULL */
    const char *content_type;  /* the Content-Type header, or NULL */
    const char *body;          /* may be NULL when body_len is 0; need not end in NUL */
    size_t body_len;
    bool body_too_large;       /* more than SHUB_API_MAX_BODY arrived (not kept) */
} shub_api_request_t;

/* An answer: status, a JSON body, and the headers some statuses need. */
typedef struct shub_api_response {
    int status;
    char *body;            /* JSON and a newline; free with shub_api_response_free */
    size_t body_len;
    char location[64];     /* 201: the event's URL; else "" */
    const char *allow;     /* 405: the methods the resource takes; else NULL */
    int retry_after;       /* 503: seconds to wait before trying again; else 0 */
    bool authenticate;     /* 401: send WWW-Authenticate: Bearer */
} shub_api_response_t;

/* Opens the API's own connection to the store. The options' strings are
 * copied. SHUB_EINVAL, SHUB_EIO / SHUB_EDB (the store), SHUB_ENOMEM. */
int shub_api_new(const shub_api_opts_t *opts, shub_api_t **api_p, shub_err_t *err);

/* Wakes every long poll (they answer at once) and refuses to wait again;
 * for the server, before it stops its threads. */
void shub_api_stop(shub_api_t *api);

/* Closes the store; accepts NULL; nulls the pointer. No request may be
 * running. */
void shub_api_destroy(shub_api_t **api_p);

/* Answers one request; thread-safe, and may block for a long poll (up to
 * its `wait`). Never fails: every outcome, out of memory included, is a
 * status in resp, whose body the caller frees. */
void shub_api_handle(shub_api_t *api, const shub_api_request_t *req,
                     shub_api_response_t *resp);

/* What can be answered from the headers alone, before the body is read: a
 * missing or wrong token (401), a declared length over the limit (413).
 * content_length < 0: not declared. True if resp holds the answer. */
bool shub_api_refuse_early(shub_api_t *api, const shub_api_request_t *req,
                           int64_t content_length, shub_api_response_t *resp);

void shub_api_response_free(shub_api_response_t *resp);

/* A shub_agent_observer_fn (ctx is the api): records the agent's state for
 * /v1/health and wakes the long polls. Safe from any thread. */
void shub_api_observe(void *api, const shub_agent_state_t *state);

/* Reads a bearer token from `path`: a regular file of mode 0600 or 0400
 * (refused otherwise, naming the file and its mode), SHUB_API_TOKEN_MIN to
 * SHUB_API_TOKEN_MAX printable bytes after trailing white space is cut.
 * *token_p is the caller's to free with shub_free. shub_file_read's errors
 * (SHUB_ENOTFOUND, SHUB_EIO, SHUB_ELIMIT), SHUB_ECONFIG (mode or content). */
int shub_api_token_load(const char *path, char **token_p, shub_err_t *err);

/* ---- the server (api_http.c) ------------------------------------------- */

typedef struct shub_api_server shub_api_server_t;

/* Starts serving api on `listen`: "HOST:PORT" (an IPv4 address or [IPv6];
 * PORT 0 picks a free one), "PORT" alone (127.0.0.1), or "unix:PATH" (a
 * socket made with mode 0600; a stale one left by a killed agent is
 * replaced, a live one refused). Without a token the API listens only on a
 * unix socket (SHUB_ECONFIG otherwise). ready_file (may be NULL) receives
 * the address bound, as http://HOST:PORT or unix:PATH, once serving.
 * SHUB_ECONFIG (address), SHUB_EIO (bind, listen, ready file), SHUB_ENOMEM. */
int shub_api_server_start(shub_api_t *api, const char *listen, bool have_token,
                          const char *ready_file, shub_api_server_t **srv_p,
                          shub_err_t *err);

/* The address served, as written to the ready file. */
const char *shub_api_server_address(const shub_api_server_t *srv);

/* Stops accepting, ends long polls, waits for the connections' threads,
 * removes a unix socket's file; accepts NULL; nulls the pointer. */
void shub_api_server_stop(shub_api_server_t **srv_p);

#endif
