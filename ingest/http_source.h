/*
 * http_source: `inv-ingest --http ADDR`, the HTTP ingest (DESIGN.md
 * "Ingest"): POST /v1/events with a body of JSON lines and an API key of
 * scope ingest (or admin). Valid lines are always published; the reply
 * comes only once JetStream acknowledged every accepted line: 202 when
 * every line was accepted (or a duplicate), 400 when any was rejected, with
 * {"accepted","duplicate","rejected","failed","results":[{line, status,
 * event_id | error}]} (ingest/http_body.h).
 *
 * Limits and load shedding, so memory stays bounded whatever clients do:
 * a body over max_body is 413 (evhttp refuses it while reading), a line
 * over max_line is a rejected line. A request is refused with 503 and
 * Retry-After (nothing published) while JetStream is disconnected, while
 * the publish window (max_inflight) is full and the bodies waiting for room
 * in it already hold max_body, or while the bodies admitted and not yet
 * answered exceed 4 x max_body. A line that could not be
 * published within retry_for_ms is "failed" and the reply is 503 with
 * Retry-After: sending the same body again is safe (ids are kept).
 *
 * Other paths are 404, other methods on /v1/events 405 (Allow: POST); keys
 * missing, unknown or revoked 401, another scope 403 (common/apikey.h).
 *
 * Threads: ingest_http_start binds, then serves on its own thread (one
 * libevent loop, which never blocks: publish outcomes are collected by a
 * timer on the loop) so it runs beside --zmq; a second thread re-reads the
 * api_keys table every 5 s. ingest_http_stop stops accepting, answers every
 * request already admitted, then joins both.
 */
#ifndef INGEST_HTTP_SOURCE_H
#define INGEST_HTTP_SOURCE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apikey.h"
#include "broker.h"
#include "event_parse.h"

typedef struct ingest_http_opts {
    sf_broker *broker;          /* publishes (borrowed) */
    sf_apikey_ring *ring;       /* keys, config keys already loaded (borrowed) */
    const char *pg_dsn;         /* api_keys is read from here every 5 s; NULL: never */
    const sf_parse_opts *parse; /* borrowed; must outlive the server */
    int max_inflight;           /* publish window ([ingest] max_inflight) */
    size_t max_body;            /* bytes of one body ([ingest] max_body) */
    int64_t retry_for_ms;       /* keep re-publishing a failed line this long (10000) */
    int timeout_s;              /* evhttp read/write timeout per connection (30) */
} ingest_http_opts;

void ingest_http_opts_init(ingest_http_opts *o);

typedef struct ingest_http ingest_http;

typedef struct ingest_http_stats {
    uint64_t requests;                              /* POST /v1/events admitted */
    uint64_t shed;                                  /* refused with 503 before parsing */
    uint64_t accepted, duplicate, rejected, failed; /* lines */
} ingest_http_stats;

/* "host:port" or "[v6]:port" -> host (NUL-terminated, size bytes) and
 * port; false if malformed (main checks --http with it: a usage error). */
bool ingest_http_split_addr(const char *addr, char *host, size_t size, uint16_t *port);

/* Bind addr ("host:port", "[v6]:port"; port 0 picks a free one, logged as
 * "http listening on HOST:PORT"), read api_keys once, start serving. */
sf_status ingest_http_start(const ingest_http_opts *o, const char *addr, ingest_http **out,
                            sf_error *err) SF_MUSTCHECK;

/* Stop accepting connections, answer the requests admitted (new requests
 * on open connections get 503), join the threads and free. stats may be
 * NULL. NULL h is a no-op. */
void ingest_http_stop(ingest_http *h, ingest_http_stats *stats);

/* The counts so far; callable from any thread while h runs. */
void ingest_http_stats_get(ingest_http *h, ingest_http_stats *out);

#endif
