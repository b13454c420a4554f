/*
 * file_source: one file (or stdin) of JSON lines or CSV with a header into
 * JetStream. Every line ends in exactly one count: accepted (stored),
 * duplicate (JetStream already had its id), rejected (bad line, written to
 * the rejects file as FILE:LINE: reason), or failed (could not be
 * published within retry_for_ms; also written to the rejects file).
 */
#ifndef INGEST_FILE_SOURCE_H
#define INGEST_FILE_SOURCE_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "broker.h"
#include "event_parse.h"
#include "ops.h"
#include "sender.h"

typedef struct ingest_file_ctx {
    sf_broker *broker;
    int max_inflight; /* publish window */
    const sf_parse_opts *parse;
    FILE *rejects;        /* NULL: rejects go to stderr only */
    int64_t retry_for_ms; /* how long to keep retrying an unpublished event */
    volatile sig_atomic_t *stop;
    sf_ops *ops; /* optional: metrics.inv-ingest once a second */
} ingest_file_ctx;

typedef struct ingest_file_stats {
    uint64_t lines;
    uint64_t accepted;
    uint64_t duplicate;
    uint64_t rejected;
    uint64_t failed;
} ingest_file_stats;

/* Ingest path ("-" = stdin). Returns SF_OK when the file was read to the
 * end (whatever the per-line outcomes), an error if it could not be read. */
sf_status ingest_file_run(const ingest_file_ctx *ctx, const char *path, ingest_file_stats *stats,
                          sf_error *err) SF_MUSTCHECK;

#endif
