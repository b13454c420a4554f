/*
 * read_model: inv-api's in-memory copy of what GET /v1/stock/{sku} and
 * GET /v1/stock/{sku}/locations/{location} show, so those routes never
 * wait on PostgreSQL.
 *
 * One background thread owns a PostgreSQL connection. At start (and after
 * every reconnect) it loads positions, locations (safety stock), channels
 * and channel_locations (buffers) and the last 'sent' channel_stock row
 * per (channel, sku), all in one REPEATABLE READ snapshot, and renders the
 * whole reply of every sku (and of each of its locations) into JSON
 * strings, byte for byte what api_db_stock() (api_db_stock_location())
 * sends. Then, every refresh_ms, it reads what changed and
 * re-renders only the skus touched (all of them when a location's safety
 * stock or a channel's buffer or locations changed).
 *
 * The one idea (freshness without missing late commits): positions.updated_at
 * and channel_stock.sent_at are now(), the START of the writing
 * transaction, so "updated_at > last poll" misses a transaction that began
 * before the poll and committed after it. Each poll therefore first reads,
 * in its own statement and BEFORE taking its snapshot, the horizon
 * H = min(now(), xact_start of every other client backend's open
 * transaction in pg_stat_activity; autovacuum and other background
 * workers never write these columns, and counting a long VACUUM would
 * only make every poll re-read more). A transaction not visible in the snapshot that
 * follows was either open at that read (so its start is >= H) or not yet
 * started (so its start is >= now() >= H). The next poll reads
 * "updated_at >= H - 1 s" (the second covers a backend that took its start
 * time but had not yet published it). A poll is skipped when
 * pg_current_snapshot() equals the previous one: then nothing committed.
 * If pg_stat_activity hides another role's sessions, H is taken 60 s back.
 * Freshness bound: a change committed at t is served by t + refresh_ms +
 * one poll (measured: README "Benchmarks"). A poll that finds commits
 * scans positions (no index on updated_at: one would stop the consumers'
 * HOT updates), and a transaction left open holds H back, so every poll
 * re-reads what changed since it began (correct, only slower). Rows are
 * never deleted from positions in stockflow; one deleted by hand would
 * stay in the model until its next full load (restart or reconnect).
 *
 * Serving: api_rm_stock() copies the sku's rendered JSON under the read
 * lock of one of RM stripes (the sku's hash picks it); the refresher
 * swaps a sku's string under that stripe's write lock. No lock is global,
 * readers never wait on PostgreSQL, and a reader holds a lock for one
 * memcpy. When the model is not current (never loaded yet, its connection
 * lost, or no successful poll for a while) api_rm_stock() answers
 * API_RM_UNAVAILABLE and the caller asks PostgreSQL as before, so
 * PostgreSQL down still means 503 and up again means 200 at once.
 *
 * Threads: api_rm_stock() from any thread; start/stop from one.
 */
#ifndef API_READ_MODEL_H
#define API_READ_MODEL_H

#include <event2/buffer.h>
#include <stdint.h>

#include "sf_error.h"

#define API_RM_REFRESH_MS_DEFAULT 100
#define API_RM_REFRESH_MS_MAX 60000

typedef struct api_rm api_rm;

typedef struct api_rm_opts {
    const char *pg_dsn;
    int refresh_ms; /* 1..API_RM_REFRESH_MS_MAX between polls */
} api_rm_opts;

void api_rm_opts_init(api_rm_opts *o);

/* Start the refresher thread; it connects and loads in the background
 * (until then every lookup is API_RM_UNAVAILABLE). */
sf_status api_rm_start(const api_rm_opts *opts, api_rm **out, sf_error *err) SF_MUSTCHECK;

/* Stop and join the thread, free everything. NULL is a no-op. */
void api_rm_stop(api_rm *rm);

typedef enum api_rm_result {
    API_RM_HIT = 0,    /* the reply body was appended to out */
    API_RM_UNKNOWN,    /* no location holds the sku (404) */
    API_RM_UNAVAILABLE /* the model is not current: ask PostgreSQL */
} api_rm_result;

/* Append the JSON reply of GET /v1/stock/{sku} (newline included) to out. */
api_rm_result api_rm_stock(api_rm *rm, const char *sku, struct evbuffer *out);

/* The same for GET /v1/stock/{sku}/locations/{location}; API_RM_UNKNOWN
 * when the sku has no position at location. */
api_rm_result api_rm_stock_location(api_rm *rm, const char *sku, const char *location,
                                    struct evbuffer *out);

typedef struct api_rm_stats {
    int64_t skus;          /* skus with at least one position */
    int64_t positions;     /* (sku, location) rows held */
    int64_t polls;         /* polls that read changes */
    int64_t skipped_polls; /* polls skipped: snapshot unchanged */
    int64_t loads;         /* full loads (1 + reconnects) */
    int64_t last_poll_us;  /* duration of the last poll that read changes */
    int current;           /* 1 when lookups are served from memory */
} api_rm_stats;

void api_rm_stats_get(api_rm *rm, api_rm_stats *out);

#endif
