/*
 * sender: validated events -> Avro single-object bytes -> JetStream
 * (INV_EVENTS, subject inv.evt.<kind>.<location>, Nats-Msg-Id = event_id),
 * asynchronously within a bounded window. Every producer of events (ingest
 * files and ZeroMQ, supplier feeds) publishes through it.
 *
 * The one idea: each event sent gets exactly one outcome, delivered on the
 * caller's thread from sf_sender_poll() (never on the nats thread, so the
 * callback may touch files and sockets). A publish that fails (JetStream
 * away, no ack in time) is sent again with the same Nats-Msg-Id until
 * retry_for_ms has passed: the broker's duplicate window makes the retry
 * safe, and the ledger's primary key makes it harmless even after it.
 *
 * Ownership: the sender owns its publisher, codec and every in-flight
 * copy of an event; the caller's token is passed back untouched.
 */
#ifndef SF_SENDER_H
#define SF_SENDER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "event.h"
#include "sf_error.h"

typedef struct sf_sender sf_sender;

typedef struct sf_send_outcome {
    void *token;          /* as given to sf_sender_send */
    sf_status status;     /* SF_OK stored; SF_EDUP JetStream already had the id;
                             anything else: not published (error says why) */
    uint64_t seq;         /* stream sequence when stored, else 0 */
    const char *event_id; /* valid during the callback */
    const char *error;    /* "" unless failed */
    int attempts;
} sf_send_outcome;

typedef void (*sf_sender_cb)(void *closure, const sf_send_outcome *o);

typedef struct sf_sender_opts {
    int max_inflight;            /* publishes awaiting their ack (4096) */
    int64_t retry_for_ms;        /* keep re-publishing a failed event this long;
                                    0 = report the first failure (60000) */
    volatile sig_atomic_t *stop; /* optional: once set, failures are not retried */
    sf_sender_cb cb;             /* required */
    void *closure;
} sf_sender_opts;

void sf_sender_opts_init(sf_sender_opts *opts);

SF_MUSTCHECK sf_status sf_sender_new(sf_broker *b, const sf_sender_opts *opts, sf_sender **out,
                                     sf_error *err);

/* Encode ev and publish it. SF_OK: exactly one outcome follows (a publish
 * that cannot start now is queued for retry or reported as failed).
 * SF_EINVAL: the event has no valid subject or cannot be encoded; nothing
 * was sent and no outcome follows. SF_ENOMEM likewise. */
SF_MUSTCHECK sf_status sf_sender_send(sf_sender *s, const sf_event *ev, void *token, sf_error *err);

/* Deliver the outcomes that arrived and re-publish the retries that are
 * due; waits up to wait_ms for the first outcome. Returns how many
 * outcomes were delivered. */
size_t sf_sender_poll(sf_sender *s, int wait_ms);

/* Events sent whose outcome has not been delivered yet. */
size_t sf_sender_pending(const sf_sender *s);

/* Poll until every event sent has its outcome. */
void sf_sender_finish(sf_sender *s);

/* Free the sender; outcomes still pending are delivered first as failed
 * ("sender closed"), so no token leaks. NULL is a no-op. */
void sf_sender_free(sf_sender *s);

#endif
