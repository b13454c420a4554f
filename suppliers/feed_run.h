/*
 * feed_run: one supplier feed document, whole, through its adapter, the
 * mapper and the sender to JetStream, with its progress in
 * feed_checkpoints.
 *
 * The one idea: a document is identified by (supplier, business digest),
 * and its events by (supplier, digest, record ordinal), so every re-run of
 * the same document maps to the same event ids. feed_checkpoints.acked is
 * the highest ordinal up to which every record is settled (published and
 * acknowledged by JetStream, or rejected); a restart after kill -9 skips
 * those records and re-sends the rest with their old ids (JetStream's
 * duplicate window, then the ledger's primary key, absorb any that were
 * stored but not yet checkpointed). A document whose checkpoint is 'done'
 * publishes nothing at all.
 *
 * Every rejected row is written to `errors` as "NAME:POSITION: reason" and
 * counted; nothing is dropped silently.
 */
#ifndef SF_FEED_RUN_H
#define SF_FEED_RUN_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "broker.h"
#include "sf_error.h"
#include "supplier_config.h"

typedef struct sf_feed_run_ctx {
    const sf_supplier *sup;
    sf_broker *broker; /* NULL with dry_run */
    PGconn *conn;      /* sku map and checkpoints; may be NULL with dry_run + identity */
    int max_inflight;
    int64_t retry_for_ms;
    volatile sig_atomic_t *stop;
    int64_t now_ms; /* the read time: occurred_at of rows without one, future limit */
    bool dry_run;   /* print events as JSON lines to dry_out, publish nothing */
    FILE *dry_out;
    FILE *errors; /* rejected rows; NULL: stderr only */
} sf_feed_run_ctx;

typedef struct sf_feed_stats {
    char digest[65];
    uint64_t records;   /* rows the adapter produced, rejected ones included */
    uint64_t published; /* stored by JetStream now */
    uint64_t duplicate; /* JetStream already had the id */
    uint64_t skipped;   /* settled by an earlier run (checkpoint) */
    uint64_t rejected;
    uint64_t failed;   /* could not be published within retry_for_ms */
    bool already_done; /* the checkpoint says this document was fully published */
    bool stopped;      /* stop was requested before the end */
} sf_feed_stats;

/* Run the document data[0..len) named `name` (file name or URL). SF_OK when
 * the document was read to the end (see stats for the outcome of each
 * record); SF_EINVAL when the document as a whole is unreadable (err names
 * the position; also written to errors); SF_EUNAVAIL when PostgreSQL is
 * down. */
sf_status sf_feed_run(const sf_feed_run_ctx *ctx, const char *name, const char *data, size_t len,
                      sf_feed_stats *stats, sf_error *err) SF_MUSTCHECK;

/* The whole file at path (at most SF_FEED_MAX_BYTES) into *data (malloc'd,
 * NUL-terminated), *len bytes. */
sf_status sf_feed_read_file(const char *path, char **data, size_t *len, sf_error *err) SF_MUSTCHECK;

#endif
