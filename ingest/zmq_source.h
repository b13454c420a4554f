/*
 * zmq_source: a ZeroMQ ROUTER socket taking one JSON event per message.
 * The reply is "ok <event_id>" only after JetStream acknowledged the event
 * (a duplicate is also "ok": JetStream holds it), else "err <reason>":
 * "err invalid: ..." for a bad event, "err unavailable: ..." when JetStream
 * cannot take it (down, no ack in time, the in-flight window full). REQ and
 * DEALER clients both work: the envelope frames are echoed back.
 */
#ifndef INGEST_ZMQ_SOURCE_H
#define INGEST_ZMQ_SOURCE_H

#include <signal.h>
#include <stdint.h>

#include "broker.h"
#include "event_parse.h"
#include "sender.h"

struct ingest_zmq_stats;

typedef struct ingest_zmq_ctx {
    sf_broker *broker; /* publishes; also to refuse fast while disconnected */
    int max_inflight;  /* publish window */
    const sf_parse_opts *parse;
    volatile sig_atomic_t *stop;
    /* Called once a second from the serving loop (its thread) with the
     * counts so far, when set: inv-ingest's metrics.inv-ingest. */
    void (*every_second)(const struct ingest_zmq_stats *so_far, void *arg);
    void *arg;
} ingest_zmq_ctx;

typedef struct ingest_zmq_stats {
    uint64_t received, ok, rejected, failed;
} ingest_zmq_stats;

/* Serve on endpoint until *stop. */
sf_status ingest_zmq_run(const ingest_zmq_ctx *ctx, const char *endpoint, ingest_zmq_stats *stats,
                         sf_error *err) SF_MUSTCHECK;

#endif
