/*
 * query: the read side of inv-api: one PostgreSQL connection with its
 * prepared statements, and one function per endpoint that runs a single
 * statement and builds the JSON body.
 *
 * The one idea: each answer comes from ONE statement, so it is one
 * snapshot (a sku's locations and its channels' ats can never disagree)
 * and one round trip. A lost connection is re-opened and the statement
 * retried once within the same call (every statement here is a read, so a
 * retry is safe); if PostgreSQL is still away the call fails with
 * SF_EUNAVAIL and the next call tries again. Statements run under a
 * statement_timeout, so a worker is never stuck on one query for long.
 *
 * Threads: an api_db belongs to one thread (it is a PGconn).
 */
#ifndef API_QUERY_H
#define API_QUERY_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "sf_error.h"

typedef struct api_db api_db;

/* A handle for dsn; connects on first use (or now, with api_db_ping). */
sf_status api_db_new(const char *dsn, api_db **out, sf_error *err) SF_MUSTCHECK;
void api_db_free(api_db *db); /* NULL is a no-op */

/* SELECT 1 (connecting if needed). */
sf_status api_db_ping(api_db *db, sf_error *err) SF_MUSTCHECK;

/* Every location of sku (on_hand, reserved, safety_stock, available,
 * inbound floored at 0, damaged, version, updated_at), the totals, and per
 * channel the ats computed now (sf_channel_ats) with the last version the
 * channel was sent. SF_ENOTFOUND when no location holds the sku. */
sf_status api_db_stock(api_db *db, const char *sku, json_t **out, sf_error *err) SF_MUSTCHECK;

/* One (sku, location) position; SF_ENOTFOUND if there is none. */
sf_status api_db_stock_location(api_db *db, const char *sku, const char *location, json_t **out,
                                sf_error *err) SF_MUSTCHECK;

/* The ats of skus[0..n) (duplicates answered once, in first-seen order)
 * in channel; a sku no location holds has ats 0 and "known": false.
 * SF_ENOTFOUND when the channel does not exist. */
sf_status api_db_channel_stock(api_db *db, const char *channel, const char *const *skus, size_t n,
                               json_t **out, sf_error *err) SF_MUSTCHECK;

/* Ledger rows of sku (at location, when not NULL) with stream sequence >
 * after, in sequence order, at most limit; "next_after" is the cursor of
 * the next page, or null when this one is the last. SF_ENOTFOUND when the
 * page is empty and the sku is unknown. */
sf_status api_db_ledger(api_db *db, const char *sku, const char *location, int64_t after, int limit,
                        json_t **out, sf_error *err) SF_MUSTCHECK;

/* Every line of the order ref (one per sku and location, sorted): reserved,
 * released, sold, outstanding, expires_at (null when none or when
 * never_expires), never_expires, expired and updated_at, with the total
 * outstanding. expired is the rule of `invctl reservations list`:
 * expires_at <= now_ms with something outstanding and not never_expires.
 * SF_ENOTFOUND when no reservation has this ref. */
sf_status api_db_reservation(api_db *db, const char *ref, int64_t now_ms, json_t **out,
                             sf_error *err) SF_MUSTCHECK;

/* The reservation gauges of /metrics, as of now_ms. */
typedef struct api_resv_totals {
    int64_t outstanding; /* Σ outstanding over every reservation */
    int64_t open;        /* reservations with outstanding > 0 */
    int64_t expired;     /* expired (same rule) and not yet released */
} api_resv_totals;

/* One statement: a scan of the open reservations and, for the expired
 * count, the partial index reservations_expiry. */
sf_status api_db_reservation_totals(api_db *db, int64_t now_ms, api_resv_totals *out,
                                    sf_error *err) SF_MUSTCHECK;

/* Route pg's notices (a server shutting down says so) to the log
 * instead of libpq's default of raw lines on stderr. */
void api_db_quiet(PGconn *pg);

/* Epoch milliseconds as RFC 3339 UTC with milliseconds into buf (>= 32). */
void api_time_format(int64_t ms, char *buf, size_t size);

#endif
