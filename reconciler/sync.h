/*
 * sync: the channel availability loop of inv-reconciler (DESIGN.md
 * "Reconciler"). One step claims dirty skus and records every changed ats as
 * a pending channel_stock version in one transaction
 * (sf_reconcile_claim, schemas/sql/004_reconciler.sql), then publishes those
 * versions to INV_CHANNEL (subject inv.chan.<channel>, ChannelStock Avro,
 * msg id <channel>:<sku>:<version>) and marks the acknowledged ones sent.
 *
 * The one idea: the version is decided and recorded before it is published,
 * so whatever fails afterwards (the publish, the ack, the process) leaves a
 * pending row that is republished with the same id and the same ats: a
 * channel is never told two different numbers under one version, and never
 * left on a value that has no record. Several reconcilers may run at once:
 * a sku is claimed by one of them at a time.
 *
 * A channel connector applies a ChannelStock only if its version is higher
 * than the one it holds for that sku: two reconcilers may publish versions
 * v and v+1 of one sku in either order.
 */
#ifndef REC_SYNC_H
#define REC_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "config.h"
#include "ops.h"
#include "sf_error.h"

typedef struct rec_sync rec_sync;

typedef struct rec_sync_stats {
    uint64_t steps;       /* claims that found dirty skus */
    uint64_t skus;        /* skus claimed */
    uint64_t published;   /* versions published and acknowledged */
    uint64_t republished; /* pending versions published again */
    uint64_t failed;      /* publishes not acknowledged (left pending) */
    uint64_t stock_sent;  /* stock.<sku> messages on the ops feed (ops_feed.h) */
    uint64_t negative;    /* alert.negative_stock sent */
} rec_sync_stats;

/* Connects to PostgreSQL (cfg->pg.dsn) and listens on inv_dirty; publishes
 * through b (borrowed); each version told also goes to the ops feed as
 * channel.<channel> (ops borrowed, may be NULL). */
sf_status rec_sync_new(const sf_config *cfg, sf_broker *b, sf_ops *ops, rec_sync **out,
                       sf_error *err) SF_MUSTCHECK;
void rec_sync_free(rec_sync *s);

/* Dirty skus waiting to be claimed (the reconciler's backlog). */
sf_status rec_sync_backlog(rec_sync *s, uint64_t *n, sf_error *err) SF_MUSTCHECK;

/* Claim up to batch dirty skus, record, publish, mark sent. *claimed: how
 * many skus were claimed (0: nothing was dirty). now_ms stamps computed_at.
 * SF_EUNAVAIL when PostgreSQL is down (the caller retries later). */
sf_status rec_sync_step(rec_sync *s, int batch, int64_t now_ms, size_t *claimed,
                        sf_error *err) SF_MUSTCHECK;

/* Publish again every pending version computed at or before
 * older_than_ms (a crash or an unacknowledged publish left it). */
sf_status rec_sync_republish(rec_sync *s, int64_t older_than_ms, sf_error *err) SF_MUSTCHECK;

/* Mark every sku with a position dirty (full-sync); *n gets how many. */
sf_status rec_sync_mark_all(rec_sync *s, uint64_t *n, sf_error *err) SF_MUSTCHECK;

/* Wait up to wait_ms for a NOTIFY on inv_dirty; returns at once if one is
 * already queued. */
sf_status rec_sync_wait(rec_sync *s, int wait_ms, sf_error *err) SF_MUSTCHECK;

const rec_sync_stats *rec_sync_stats_get(const rec_sync *s);

#endif
