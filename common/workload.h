/*
 * workload: a deterministic generator of realistic event feeds (JSON lines)
 * for `invctl gen`, tests and benchmarks.
 *
 * The same options give the same bytes on every machine: all choices come
 * from a private splitmix64 stream seeded by opts.seed, and all times are
 * offsets from opts.base_ms, never the clock. To change the mix safely, add
 * draws at the end of a step rather than in the middle, or every existing
 * seed's output (and anything pinned to it) changes.
 *
 * The feed holds all ten kinds: mostly SALE, RECEIPT, ASN, RETURN (some
 * DAMAGED); ADJUST of both signs; TRANSFER_OUT/TRANSFER_IN pairs; COUNTs;
 * orders that RESERVE and are then sold with their ref, partly sold, released,
 * over-released, or released before they are reserved; walk-in SALEs without
 * a ref; late events (occurred_at before lines already written) and about 2%
 * exact duplicate lines. Every other line has event_id "g-<seed>-<n>".
 * Every line passes sf_event_parse_json() as long as base_ms plus the span
 * (at most about 180 days) lies in the past.
 */
#ifndef SF_WORKLOAD_H
#define SF_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sf_error.h"

#define SF_WORKLOAD_BASE_MS_DEFAULT INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define SF_WORKLOAD_MAX_SKUS 99999
#define SF_WORKLOAD_MAX_LOCATIONS 9999

typedef struct sf_workload_opts {
    uint64_t seed;      /* default 1 */
    uint64_t events;    /* lines to produce, duplicates included; default 10000 */
    unsigned skus;      /* SKU-00001..; default 100, 1..SF_WORKLOAD_MAX_SKUS */
    unsigned locations; /* LOC-1..; default 3, 1..SF_WORKLOAD_MAX_LOCATIONS */
    bool expiring;      /* every RESERVE carries expires_at (default false) */
    int64_t base_ms;    /* first occurred_at; default 2026-01-01T00:00:00Z */
} sf_workload_opts;

void sf_workload_opts_init(sf_workload_opts *opts);

/* Receives one line (without the newline, not NUL-terminated, valid only
 * during the call). Non-zero stops the generation early (not an error). */
typedef int (*sf_workload_line_fn)(const char *line, size_t len, void *ctx);

/* Produce opts->events lines. SF_EINVAL for out-of-range options. */
sf_status sf_workload_generate(const sf_workload_opts *opts, sf_workload_line_fn fn, void *ctx,
                               sf_error *err) SF_MUSTCHECK;

/* Write the lines to out, each followed by '\n'. SF_EIO if a write fails. */
sf_status sf_workload_write(const sf_workload_opts *opts, FILE *out, sf_error *err) SF_MUSTCHECK;

#endif
