/*
 * ops_feed: what the reconciler tells the ops feed (DESIGN.md "Ops
 * dashboard feed") about positions. After each claim, stock.<sku> for
 * every claimed sku (its claim means its positions changed):
 *   {"sku", "locations": [{"location", "on_hand", "reserved", "available",
 *    "inbound", "damaged", "safety_stock", "version"}], "totals":
 *    {"on_hand", "reserved", "available"}}
 * and alert.negative_stock for a position with on_hand < 0, once per
 * change of that position: the last version alerted is remembered per
 * (sku, location) in a fixed-size cache (REC_OPSFEED_SLOTS, direct-mapped;
 * an evicted position may be alerted again, never more often than it
 * changes).
 *
 * The feed is for eyes: a failure here is logged by the caller and never
 * holds up the channel sync. Not thread-safe (one per reconciler loop).
 */
#ifndef REC_OPS_FEED_H
#define REC_OPS_FEED_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "ops.h"
#include "sf_error.h"

#define REC_OPSFEED_SLOTS 4096

typedef struct rec_opsfeed rec_opsfeed;

/* ops is borrowed (NULL: every call a no-op). */
sf_status rec_opsfeed_new(sf_ops *ops, rec_opsfeed **out, sf_error *err) SF_MUSTCHECK;
void rec_opsfeed_free(rec_opsfeed *f);

/* Who reads now (sf_ops_has_reader), asked once per claim: */
#define REC_OPSFEED_STOCK 1u    /* someone subscribes to stock. */
#define REC_OPSFEED_NEGATIVE 2u /* ... to alert.negative_stock */
unsigned rec_opsfeed_readers(rec_opsfeed *f);

/* Read the positions of skus (a PostgreSQL text[] literal) over conn and
 * publish what readers (rec_opsfeed_readers) asks for: stock.<sku> and the
 * negative_stock alerts (inv-api's page bridge always reads those, to
 * replay them). Only the negative positions are read when stock. has no
 * reader; nothing when readers is 0. */
sf_status rec_opsfeed_positions(rec_opsfeed *f, unsigned readers, PGconn *conn,
                                const char *skus_literal, sf_error *err) SF_MUSTCHECK;

/* stock.<sku> messages and negative_stock alerts sent so far. */
void rec_opsfeed_counts(const rec_opsfeed *f, uint64_t *stock, uint64_t *negative);

#endif
