/*
 * outcomes: publish results handed from the nats callback thread to the
 * ingest main thread. The publisher's callback only pushes; everything
 * that touches files or sockets (ZeroMQ sockets are not thread-safe) runs
 * on the main thread when it drains. At most one outcome exists per
 * in-flight publish, so the queue is bounded by the publisher's window.
 */
#ifndef INGEST_OUTCOMES_H
#define INGEST_OUTCOMES_H

#include <stddef.h>
#include <stdint.h>

#include "broker.h"

typedef struct ingest_outcome {
    void *token;      /* what the publisher was given */
    sf_status status; /* SF_OK, SF_EDUP, or the failure */
    uint64_t seq;
    char error[160];
} ingest_outcome;

typedef struct ingest_outcomes ingest_outcomes;

sf_status ingest_outcomes_new(ingest_outcomes **out, sf_error *err) SF_MUSTCHECK;
void ingest_outcomes_free(ingest_outcomes *q);

/* The sf_pub_cb to give the publisher, with the queue as closure. */
void ingest_outcomes_cb(void *closure, void *token, const sf_pub_result *res);

/* Move up to cap outcomes into out; waits up to wait_ms for the first. */
size_t ingest_outcomes_take(ingest_outcomes *q, ingest_outcome *out, size_t cap, int wait_ms);

#endif
