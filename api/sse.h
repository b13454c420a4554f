/*
 * sse: GET /v1/ops/events, the ops feed (DESIGN.md "Ops dashboard feed") as
 * server-sent events: each feed message [topic][json] becomes
 * "event: <topic>\ndata: <json>\n\n" on every open stream.
 *
 * Threads: ONE reader thread holds a ZeroMQ SUB socket on [ops]
 * sub_endpoint (ZeroMQ sockets belong to one thread). The streams live on
 * the serving threads (server.h), each inside its own event_base, and only
 * that thread may touch them. The reader hands each message to every
 * serving thread that has a stream open: a copy is appended to that
 * thread's queue (a mutex held for the append only) and one byte written
 * to the thread's wake pipe; the thread's event on the pipe drains the
 * queue and writes to its own streams. libevent itself is never called
 * across threads, so no evthread locking is needed.
 *
 * Bounds: a thread's queue holds at most SSE_QUEUE_MAX_BYTES (beyond that
 * the reader drops and counts); a stream may have at most
 * client_max_bytes unsent (a slow client is disconnected and counted: it
 * never grows memory and never blocks anyone, since a write only appends
 * to that connection's buffer); a message over SSE_BODY_MAX, or with a
 * CR, LF or NUL (which would break the framing), is dropped and counted.
 * A comment line every keepalive_ms keeps proxies and browsers from
 * closing an idle stream. New streams first get the last metrics.<service>
 * of each service and the last alerts, so a page is not blank until the
 * next report.
 *
 * Subscriptions: the reader always takes metrics. and alert. (for that
 * replay), and every other topic (stock., channel.) only while a stream
 * is open: publishers learn it through the proxy and skip work nobody
 * reads (the reconciler's positions query for stock.<sku>). A stream
 * opening starts the subscription at once; messages published before it
 * reached the publisher are not seen (they were not replayed before
 * either).
 */
#ifndef API_SSE_H
#define API_SSE_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stddef.h>

#include "sf_error.h"

#define SSE_TOPIC_MAX 160
#define SSE_BODY_MAX (64 * 1024)
#define SSE_QUEUE_MAX_BYTES (4 * 1024 * 1024)
#define SSE_FILTERS_MAX 8

typedef struct api_sse_hub api_sse_hub;

typedef struct api_sse_opts {
    const char *sub_endpoint;  /* [ops] sub_endpoint; NULL or "": no feed (streams get 503) */
    struct event_base **bases; /* one per serving thread; not taken over */
    int n_bases;
    int keepalive_ms;        /* default 10000 */
    size_t client_max_bytes; /* unsent bytes per stream before it is dropped; default 256 KiB */
} api_sse_opts;

void api_sse_opts_init(api_sse_opts *o);

/* Create the per-thread queues and events (call before the serving
 * threads run) and start the reader thread. */
sf_status api_sse_hub_start(const api_sse_opts *o, api_sse_hub **out, sf_error *err) SF_MUSTCHECK;

/* Whether a feed is configured (else a stream request is a 503). */
int api_sse_enabled(const api_sse_hub *h);

/* Check topics (NULL or "": every topic; else up to SSE_FILTERS_MAX
 * comma-separated topic prefixes, each 1..SSE_TOPIC_MAX bytes without
 * control characters). On failure err names the bad one. */
sf_status api_sse_check_topics(const char *topics, sf_error *err) SF_MUSTCHECK;

/* On serving thread `thread` (0-based): answer req with a 200 stream and
 * keep it open, sending the messages whose topic starts with one of the
 * prefixes of topics (checked by api_sse_check_topics before). req is
 * owned by libevent; the stream ends when the client goes, is too slow,
 * or the hub is freed. */
void api_sse_attach(api_sse_hub *h, int thread, struct evhttp_request *req, const char *topics);

/* Prometheus text: open streams, messages read, dropped. Any thread. */
void api_sse_render_metrics(api_sse_hub *h, struct evbuffer *out);

/* Close every stream and stop the reader. Call after the serving threads
 * have stopped and BEFORE their evhttp and event_base are freed. NULL is a
 * no-op. */
void api_sse_hub_free(api_sse_hub *h);

#endif
