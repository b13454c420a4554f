/*
 * broker_pull: durable pull consumption on a broker connection (see
 * broker.h for the connection, its threads and units): bind to a durable
 * consumer, fetch batches, read each message's data, subject, headers and
 * metadata, and acknowledge it.
 *
 * Threads: an sf_sub and an sf_batch belong to one thread at a time. Free
 * subscriptions before sf_broker_close(). Pointers returned by the batch
 * accessors belong to the batch and stay valid until the next fetch into
 * it, sf_batch_release or sf_batch_destroy.
 */
#ifndef SF_BROKER_PULL_H
#define SF_BROKER_PULL_H

#include <stddef.h>
#include <stdint.h>

#include "broker.h"

typedef struct sf_sub sf_sub;
typedef struct sf_batch sf_batch;

/* Create, if missing, the durable pull consumer `durable` on INV_CHANNEL
 * that reads inv.chan.<channel> only (explicit ack, deliver all, ack wait
 * 30 s): a channel connector's resumable cursor. An existing consumer with
 * another filter is SF_EINVAL naming it. */
SF_MUSTCHECK sf_status sf_broker_ensure_channel_consumer(sf_broker *b, const char *channel,
                                                         const char *durable, sf_error *err);

/* Bind to the existing durable pull consumer (never creates it):
 * SF_ENOTFOUND naming stream/durable if `invctl setup` has not run. */
SF_MUSTCHECK sf_status sf_broker_pull_subscribe(sf_broker *b, const char *stream,
                                                const char *durable, sf_sub **out, sf_error *err);
void sf_sub_free(sf_sub *s);

/* A reusable batch; allocate once per consuming thread. */
SF_MUSTCHECK sf_status sf_batch_new(sf_batch **out, sf_error *err);
/* Destroy the messages (un-acked ones are redelivered after AckWait). */
void sf_batch_destroy(sf_batch *bt);
/* Drop the messages but keep the batch for the next fetch. */
void sf_batch_release(sf_batch *bt);

/* Fetch up to max (1..SF_FETCH_MAX) messages into bt, replacing its previous
 * content, waiting at most timeout_ms for the first. SF_ETIMEOUT when nothing
 * is available, SF_EUNAVAIL when disconnected. Keep max <= MaxAckPending. */
#define SF_FETCH_MAX 100000
SF_MUSTCHECK sf_status sf_sub_fetch(sf_sub *s, int max, int timeout_ms, sf_batch *bt,
                                    sf_error *err);

size_t sf_batch_count(const sf_batch *bt);
/* Accessors return NULL / 0 for an index out of range. */
const void *sf_batch_data(const sf_batch *bt, size_t i, size_t *len);
const char *sf_batch_subject(const sf_batch *bt, size_t i);
uint64_t sf_batch_stream_seq(sf_batch *bt, size_t i);
uint64_t sf_batch_num_delivered(sf_batch *bt, size_t i);               /* 1 on first delivery */
const char *sf_batch_header(sf_batch *bt, size_t i, const char *name); /* NULL if absent */

/* Acknowledgements of message i. ack/nak/in_progress/term are fire-and-forget
 * (SF_EUNAVAIL if they could not be sent); ack_sync waits js_wait_ms for the
 * server's confirmation. A message acked, nak'ed or termed once ignores later
 * calls (nats.c). */
SF_MUSTCHECK sf_status sf_batch_ack(sf_batch *bt, size_t i, sf_error *err);
SF_MUSTCHECK sf_status sf_batch_ack_sync(sf_batch *bt, size_t i, sf_error *err);
SF_MUSTCHECK sf_status sf_batch_nak(sf_batch *bt, size_t i, sf_error *err);
SF_MUSTCHECK sf_status sf_batch_nak_delay(sf_batch *bt, size_t i, int64_t delay_ms, sf_error *err);
SF_MUSTCHECK sf_status sf_batch_in_progress(sf_batch *bt, size_t i, sf_error *err);
SF_MUSTCHECK sf_status sf_batch_term(sf_batch *bt, size_t i, sf_error *err);
/* InProgress for every message of the batch (keeps a batch alive while the
 * database is down). Stops at the first failure. */
SF_MUSTCHECK sf_status sf_batch_in_progress_all(sf_batch *bt, sf_error *err);

#endif
