/*
 * broker_int: what broker.c, broker_pub.c and broker_pull.c share and
 * nothing else may see: the connection's struct and the helpers that turn
 * nats.c's statuses into sf_status and messages. Only those three files
 * include it (and so <nats/nats.h>).
 */
#ifndef SF_BROKER_INT_H
#define SF_BROKER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include "broker.h"

#define BROKER_URLS_MAX 2048 /* the whole comma-separated list */
#define BROKER_URL_COUNT_MAX 32
#define BROKER_TOKEN_MAX 64 /* subject tokens: DESIGN.md caps ids at 64 bytes */
#define BROKER_DUP_WINDOW_NS (3600LL * 1000 * 1000 * 1000)
#define BROKER_MS_TO_NS(ms) ((int64_t)(ms)*1000 * 1000)
/* Bytes nats.c may buffer while reconnecting. nats.c treats 0 as "default
 * 8 MB", so the smallest useful value is set instead: a publish racing a
 * disconnect fails with NATS_INSUFFICIENT_BUFFER instead of being queued. */
#define BROKER_RECONNECT_BUF 1
/* Recently refused publish subjects remembered per connection, to turn the
 * timeout of a refused publish into a permission error (broker__denied). */
#define BROKER_DENIED_RING 16
#define BROKER_DENIED_TEXT 256
/* A subject refused this recently fails the next publish at once (the server
 * would refuse it again, and the caller would wait a whole ack timeout to
 * learn it); older refusals are tried again, so a permission granted by a
 * server reload takes effect. */
#define BROKER_DENIED_FRESH_MS 30000

struct sf_broker {
    natsConnection *nc;
    jsCtx *js;
    int js_wait_ms;
    int64_t reconnect_wait_ms;
    int64_t reconnect_max_ms;
    unsigned int seed; /* jitter; touched only by this connection's reconnect thread */
    sf_broker_state_cb on_state;
    void *state_closure;
    pthread_mutex_t mu; /* guards closed: the closed callback is nats.c's last call into b */
    pthread_cond_t closed_cond;
    bool closed;
    /* permission violations reported by the server (guarded by mu) */
    uint64_t perm_errors;
    char denied[BROKER_DENIED_RING][BROKER_DENIED_TEXT]; /* "Permissions Violation ..." */
    int64_t denied_at[BROKER_DENIED_RING];               /* monotonic ms */
    char urls[BROKER_URLS_MAX]; /* as given, passwords replaced by "***": for messages */
};

/* Set err from a nats.c failure: "<context>: <status text> (<detail>)". The
 * detail is nats.c's thread-local last error, which names the real cause. */
sf_status broker__err(sf_error *err, sf_status st, natsStatus ns, const char *file, int line,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define BROKER_ERR(err, st, ns, ...) broker__err((err), (st), (ns), __FILE__, __LINE__, __VA_ARGS__)

bool broker__is_connected(const sf_broker *b);
/* The fail-fast gate in front of every network call: SF_EUNAVAIL naming
 * "what name" and the connection's state unless connected. */
sf_status broker__check_connected(const sf_broker *b, sf_error *err, const char *what,
                                  const char *name);
/* Classify a nats.c status (b may be NULL). */
sf_status broker__map(const sf_broker *b, natsStatus s);
/* Classify a JetStream API failure (not-found codes: SF_ENOTFOUND). */
sf_status broker__map_js(const sf_broker *b, natsStatus s, jsErrCode code);

/* A msg id: NULL, or 1..SF_MSG_ID_MAX bytes without control characters. */
sf_status broker__check_msg_id(const char *msg_id, const char *subject, sf_error *err);
/* The server's refusal of a publish to subject within max_age_ms, into out. */
bool broker__denied(sf_broker *b, const char *subject, int64_t max_age_ms, char *out, size_t cap);
/* SF_EDENIED at once for a subject the server refused moments ago. */
sf_status broker__check_denied(sf_broker *b, const char *subject, const char *msg_id,
                               sf_error *err);

#endif
