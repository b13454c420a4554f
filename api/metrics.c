/*
 * metrics: counters and Prometheus rendering (see metrics.h). Buckets are
 * stored per bucket, not cumulatively, so an observation is two relaxed
 * increments and an add; rendering accumulates them in `le` order.
 */
#include "metrics.h"

#include <inttypes.h>
#include <string.h>

static const int met__statuses[API_METRICS_STATUSES] = {200, 201, 400, 401, 403, 404, 405, 409,
                                                        413, 414, 422, 429, 431, 500, 501, 503};

static const char *const met__auth_reasons[API_AUTH__COUNT] = {"missing", "malformed", "unknown",
                                                               "revoked", "wrong_scope"};

/* Upper bounds in microseconds; the last bucket is +Inf. */
static const uint64_t met__bounds_us[API_METRICS_BUCKETS - 1] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};

void api_metrics_init(api_metrics *m)
{
    for (size_t r = 0; r < API_R__COUNT; r++) {
        for (size_t s = 0; s <= API_METRICS_STATUSES; s++)
            atomic_init(&m->count[r][s], 0);
        for (size_t b = 0; b < API_METRICS_BUCKETS; b++)
            atomic_init(&m->bucket[r][b], 0);
        atomic_init(&m->sum_us[r], 0);
    }
    for (size_t a = 0; a < API_AUTH__COUNT; a++)
        atomic_init(&m->auth_fail[a], 0);
    atomic_init(&m->rate_limited, 0);
}

void api_metrics_auth_fail(api_metrics *m, api_auth_fail why)
{
    if ((unsigned)why < API_AUTH__COUNT)
        atomic_fetch_add_explicit(&m->auth_fail[why], 1, memory_order_relaxed);
}

void api_metrics_rate_limited(api_metrics *m)
{
    atomic_fetch_add_explicit(&m->rate_limited, 1, memory_order_relaxed);
}

static size_t met__status_slot(int status)
{
    for (size_t i = 0; i < API_METRICS_STATUSES; i++) {
        if (met__statuses[i] == status)
            return i;
    }
    return API_METRICS_STATUSES;
}

void api_metrics_observe(api_metrics *m, api_route route, int status, uint64_t us)
{
    if ((unsigned)route >= API_R__COUNT)
        route = API_R_UNKNOWN;
    size_t b = 0;
    while (b < API_METRICS_BUCKETS - 1 && us > met__bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&m->count[route][met__status_slot(status)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bucket[route][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_us[route], us, memory_order_relaxed);
}

static uint64_t met__load(const _Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

void api_metrics_render(const api_metrics *const *sets, size_t n, struct evbuffer *out)
{
    evbuffer_add_printf(out, "# HELP inv_api_requests_total HTTP requests answered, by route "
                             "and status.\n"
                             "# TYPE inv_api_requests_total counter\n");
    for (size_t r = 0; r < API_R__COUNT; r++) {
        for (size_t s = 0; s <= API_METRICS_STATUSES; s++) {
            uint64_t total = 0;
            for (size_t i = 0; i < n; i++)
                total += met__load(&sets[i]->count[r][s]);
            if (total == 0)
                continue;
            if (s < API_METRICS_STATUSES)
                evbuffer_add_printf(
                    out, "inv_api_requests_total{route=\"%s\",status=\"%d\"} %" PRIu64 "\n",
                    api_route_name((api_route)r), met__statuses[s], total);
            else
                evbuffer_add_printf(
                    out, "inv_api_requests_total{route=\"%s\",status=\"other\"} %" PRIu64 "\n",
                    api_route_name((api_route)r), total);
        }
    }
    evbuffer_add_printf(out, "# HELP inv_api_auth_failures_total Requests refused for their "
                             "API key, by reason (401 missing, malformed, unknown, revoked; "
                             "403 wrong_scope).\n"
                             "# TYPE inv_api_auth_failures_total counter\n");
    for (size_t a = 0; a < API_AUTH__COUNT; a++) {
        uint64_t total = 0;
        for (size_t i = 0; i < n; i++)
            total += met__load(&sets[i]->auth_fail[a]);
        evbuffer_add_printf(out, "inv_api_auth_failures_total{reason=\"%s\"} %" PRIu64 "\n",
                            met__auth_reasons[a], total);
    }
    uint64_t limited = 0;
    for (size_t i = 0; i < n; i++)
        limited += met__load(&sets[i]->rate_limited);
    evbuffer_add_printf(out,
                        "# HELP inv_api_rate_limited_total Requests refused with 429: the key "
                        "was over [api] rate_per_key.\n"
                        "# TYPE inv_api_rate_limited_total counter\n"
                        "inv_api_rate_limited_total %" PRIu64 "\n",
                        limited);
    evbuffer_add_printf(out, "# HELP inv_api_request_duration_seconds Time from the parsed "
                             "request to the queued reply, by route.\n"
                             "# TYPE inv_api_request_duration_seconds histogram\n");
    for (size_t r = 0; r < API_R__COUNT; r++) {
        uint64_t cum = 0, sum_us = 0;
        const char *name = api_route_name((api_route)r);
        for (size_t b = 0; b < API_METRICS_BUCKETS; b++) {
            for (size_t i = 0; i < n; i++)
                cum += met__load(&sets[i]->bucket[r][b]);
            if (b < API_METRICS_BUCKETS - 1)
                evbuffer_add_printf(
                    out,
                    "inv_api_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"}"
                    " %" PRIu64 "\n",
                    name, (double)met__bounds_us[b] / 1e6, cum);
            else
                evbuffer_add_printf(out,
                                    "inv_api_request_duration_seconds_bucket{route=\"%s\","
                                    "le=\"+Inf\"} %" PRIu64 "\n",
                                    name, cum);
        }
        for (size_t i = 0; i < n; i++)
            sum_us += met__load(&sets[i]->sum_us[r]);
        evbuffer_add_printf(out,
                            "inv_api_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                            "inv_api_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n",
                            name, (double)sum_us / 1e6, name, cum);
    }
}
