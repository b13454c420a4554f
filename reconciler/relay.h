/*
 * relay: the outbox of check-and-reserve (schemas/sql/007_reserve.sql,
 * 010_outbox_relayed.sql) to INV_EVENTS. inv-api commits each RESERVE to
 * the ledger and, in the same transaction, to `outbox`; the relay
 * publishes every outbox row with Nats-Msg-Id = event_id (subject
 * inv.evt.reserve.<location>), then deletes it and fills the ledger's
 * stream_seq from JetStream's ack. The outbox holds the backlog only.
 *
 * The one idea: a row is deleted only after JetStream acknowledged it,
 * in a transaction that held the row (SKIP LOCKED) during the publish. A
 * crash (kill -9) or a JetStream outage before that commit leaves the row
 * in place, and it is published again with the same id: JetStream drops the
 * copy within its duplicate window, and after the window the consumer
 * finds the event_id in the ledger and applies nothing. Nothing is lost,
 * and no copy changes any position. For the same reason the step commits
 * without waiting for its WAL flush (synchronous_commit off for that
 * transaction): a commit lost to a power loss is the crash case above.
 */
#ifndef REC_RELAY_H
#define REC_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "config.h"
#include "sf_error.h"

typedef struct rec_relay rec_relay;

typedef struct rec_relay_stats {
    uint64_t published; /* rows relayed and deleted (stored or already stored) */
    uint64_t duplicate; /* of those, JetStream already had the id */
    uint64_t failed;    /* publishes not acknowledged (found again next step) */
} rec_relay_stats;

sf_status rec_relay_new(const sf_config *cfg, sf_broker *b, rec_relay **out,
                        sf_error *err) SF_MUSTCHECK;
void rec_relay_free(rec_relay *r); /* NULL is a no-op */

/* Publish up to batch outbox rows, wait for their acks, delete the
 * acknowledged ones. *found: rows claimed. SF_EUNAVAIL: PostgreSQL
 * away (nothing deleted; retry later). */
sf_status rec_relay_step(rec_relay *r, int batch, size_t *found, sf_error *err) SF_MUSTCHECK;

const rec_relay_stats *rec_relay_stats_get(const rec_relay *r);

#endif
