/*
 * metrics: request counts per route and status, and latency histograms per
 * route, rendered as Prometheus text (GET /metrics).
 *
 * Each serving thread owns one api_metrics and is its only writer; the
 * counters are relaxed atomics so the thread rendering /metrics may read
 * every thread's set without a lock and without slowing the writers (no
 * shared cache line is written by two threads). Rendering sums them.
 */
#ifndef API_METRICS_H
#define API_METRICS_H

#include <event2/buffer.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "request.h"

/* Statuses counted separately; any other lands in the "other" slot. */
#define API_METRICS_STATUSES 16
#define API_METRICS_BUCKETS 13 /* upper bounds in api_metrics.c; the last is +Inf */

/* Why a request was refused before it reached a handler (401/403/429),
 * the label of inv_api_auth_failures_total / inv_api_rate_limited_total. */
typedef enum api_auth_fail {
    API_AUTH_MISSING = 0, /* no Authorization header */
    API_AUTH_MALFORMED,   /* not "Bearer sf_<id>_<secret>" */
    API_AUTH_UNKNOWN,     /* no such key, or a wrong secret */
    API_AUTH_REVOKED,
    API_AUTH_WRONG_SCOPE,
    API_AUTH__COUNT
} api_auth_fail;

typedef struct api_metrics {
    _Atomic uint64_t auth_fail[API_AUTH__COUNT];
    _Atomic uint64_t rate_limited; /* 429: a key over [api] rate_per_key */
    _Atomic uint64_t count[API_R__COUNT][API_METRICS_STATUSES + 1];
    _Atomic uint64_t bucket[API_R__COUNT][API_METRICS_BUCKETS]; /* not cumulative */
    _Atomic uint64_t sum_us[API_R__COUNT];
} api_metrics;

/* Zero every counter (the struct may be embedded; no allocation). */
void api_metrics_init(api_metrics *m);

/* One request of route answered with status after us microseconds. */
void api_metrics_observe(api_metrics *m, api_route route, int status, uint64_t us);

/* One refused attempt (counted besides the request itself). */
void api_metrics_auth_fail(api_metrics *m, api_auth_fail why);
/* One request refused by the per-key rate limit. */
void api_metrics_rate_limited(api_metrics *m);

/* Append the Prometheus text of the sum of sets[0..n) to out. */
void api_metrics_render(const api_metrics *const *sets, size_t n, struct evbuffer *out);

#endif
