/*
 * server: inv-api's serving threads. Each of N threads runs its own
 * event_base and evhttp, accepting on its own dup() of one listening
 * socket (the kernel hands each new connection to whichever thread's
 * accept wins), with its own PostgreSQL connection and prepared statements
 * (query.h) and its own metrics (metrics.h). Nothing on the request path is
 * shared between threads except the key ring (read-locked), the rate
 * limiter, the reserver's queue (POST /v1/reservations, reserve.h: its
 * answers come back through a per-thread list and wake-up pipe) and, for
 * /healthz only, the NATS connection.
 *
 * A thread is busy while its PostgreSQL statement runs; the other threads
 * keep accepting and serving meanwhile, and evhttp reads every connection
 * without blocking, so a slow or stalled client costs a connection slot,
 * never a thread.
 */
#ifndef API_SERVER_H
#define API_SERVER_H

#include <stdint.h>

#include "apikey.h"
#include "broker.h"
#include "config.h"
#include "read_model.h"
#include "sf_error.h"

/* Limits applied to every connection (the others are [api] keys). */
#define API_TIMEOUT_S 10 /* evhttp read/write timeout: a stalled client is dropped */
#define API_THREADS_MAX 64

typedef struct api_server api_server;

typedef struct api_server_opts {
    const char *pg_dsn;
    const char *nats_url;    /* for /healthz */
    sf_broker_tls nats_tls;  /* its TLS settings; the strings must outlive the server */
    const char *tls_cert;    /* HTTPS: PEM certificate chain and key, both or neither; */
    const char *tls_key;     /* set, the port speaks TLS only (no plain HTTP) */
    int max_batch;           /* skus per /v1/channels/{channel}/stock */
    int threads;             /* 1..API_THREADS_MAX */
    int listen_fd;           /* bound and listening, non-blocking; not taken over */
    sf_apikey_ring *ring;    /* shared, not taken over; must outlive the server */
    int64_t now_ms_override; /* the clock of reservation expiry (INV_NOW_MS); 0 = real */
    api_rm *rm; /* GET /v1/stock/{sku} from memory; NULL: from PostgreSQL; not taken over */
    double rate_per_key;  /* requests per second per key ([api] rate_per_key) */
    double burst;         /* token bucket size per key ([api] burst) */
    int max_header_bytes; /* request line + headers, beyond the channel batch's room */
    int max_body_bytes;   /* request body */
    int reserve_threads;  /* POST /v1/reservations: batches in flight (reserve.h) */
    int reserve_batch;    /* requests in one batch */
    int reserve_queue;    /* requests waiting; one more gets 503 */
    int max_query_bytes;  /* query string (414 over it), except the channel batch route's */
    int max_ledger_page;  /* largest `limit` of GET /v1/ledger/{sku} (400 over it) */
    /* [ops] sub_endpoint, read for GET /v1/ops/events (sse.h); "" = none */
    const char *ops_sub_endpoint;
} api_server_opts;

/* Start opts->threads serving threads. */
sf_status api_server_start(const api_server_opts *opts, api_server **out,
                           sf_error *err) SF_MUSTCHECK;

/* Stop accepting, finish the requests in hand, join and free everything
 * (the NATS connection included). NULL is a no-op. */
void api_server_stop(api_server *srv);

#endif
