/*
 * broker_pub: the asynchronous publisher on a broker connection (see
 * broker.h for the connection, its threads and units). Every accepted
 * publish gets exactly one completion callback, even if the ack never
 * comes; the window (max_inflight) and every wait are bounded.
 *
 * Threads: an sf_publisher may be used by several publishing threads.
 * Callbacks (sf_pub_cb) run on nats.c library threads, never on the
 * caller's: keep them short, take your own locks, and never publish, flush
 * or free the publisher from inside one. Free publishers before
 * sf_broker_close().
 */
#ifndef SF_BROKER_PUB_H
#define SF_BROKER_PUB_H

#include <stddef.h>
#include <stdint.h>

#include "broker.h"

typedef struct sf_publisher sf_publisher;

typedef struct sf_pub_result {
    sf_status status;    /* SF_OK stored; SF_EDUP already stored (same msg id within
                            the window); SF_ETIMEOUT outcome unknown: no ack within
                            ack_timeout_ms, or the publisher was freed first (it may
                            be stored: resend with the same id); SF_EDENIED not
                            stored: this user may not publish there; SF_EUNAVAIL not
                            stored: no stream answers the subject, or the server
                            refused it (error, js_code) */
    uint64_t seq;        /* stream sequence (the original one for SF_EDUP); 0 on error */
    const char *subject; /* as published */
    const char *msg_id;  /* as published, or NULL */
    const char *error;   /* "" on SF_OK/SF_EDUP, else the reason */
    int js_code;         /* JetStream error code, 0 if none */
} sf_pub_result;

/* Completion of one accepted publish. Runs on a nats.c thread (the
 * publisher's ack subscription), exactly once per publish that returned
 * SF_OK; res and its strings are valid only during the call. */
typedef void (*sf_pub_cb)(void *closure, void *token, const sf_pub_result *res);

typedef struct sf_publisher_opts {
    int max_inflight;   /* window: publishes awaiting their ack (4096) */
    int ack_timeout_ms; /* per message: no ack by then -> SF_ETIMEOUT callback (5000) */
    int stall_ms;       /* how long publish waits for room in a full window
                           (0: ack_timeout_ms, which is when the oldest one resolves) */
    sf_pub_cb cb;       /* required */
    void *closure;
} sf_publisher_opts;

void sf_publisher_opts_init(sf_publisher_opts *opts);

SF_MUSTCHECK sf_status sf_publisher_new(sf_broker *b, const sf_publisher_opts *opts,
                                        sf_publisher **out, sf_error *err);

/* Publish data to subject with header Nats-Msg-Id: msg_id (msg_id may be NULL
 * for none; else 1..SF_MSG_ID_MAX bytes, no control characters). The data is
 * copied. On SF_OK the callback will fire exactly once with token. Fails
 * without a callback: SF_EUNAVAIL when not connected (nothing is buffered
 * for a later reconnect), SF_ETIMEOUT when the window stayed full for
 * stall_ms, SF_EINVAL for a bad subject, msg id or oversize data. */
SF_MUSTCHECK sf_status sf_publisher_publish(sf_publisher *p, const char *subject,
                                            const char *msg_id, const void *data, size_t len,
                                            void *token, sf_error *err);

/* Wait until nothing is in flight (every callback has returned), at most
 * timeout_ms: SF_ETIMEOUT otherwise. */
SF_MUSTCHECK sf_status sf_publisher_flush(sf_publisher *p, int timeout_ms, sf_error *err);

/* Publishes accepted and not yet completed. */
size_t sf_publisher_inflight(sf_publisher *p);

/* Free the publisher: waits up to ack_timeout_ms for outstanding acks, then
 * completes every remaining token with SF_ETIMEOUT ("publisher closed before
 * the ack arrived"), so no token leaks. Flush first for a clean shutdown; do
 * not publish concurrently with free. NULL is a no-op. */
void sf_publisher_free(sf_publisher *p);

#endif
