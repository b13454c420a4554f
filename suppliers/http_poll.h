/*
 * http_poll: the polling source of the `http` supplier format. It fetches a
 * supplier endpoint with libcurl (conditional GET) and hands back the body
 * bytes; another module parses them with the jsonl or csv adapter. It
 * knows nothing of adapters, SKUs, NATS or PostgreSQL.
 *
 * The one idea: a poller is a small state machine driven by the caller's
 * clock. fetch(now_ms) does one poll (with bounded retries inside), the
 * result says what happened, and next_at() says when the next poll is due;
 * nothing here reads the wall clock for scheduling, so tests can drive a
 * day of polls in a millisecond. Validators (ETag, Last-Modified) are
 * remembered only when the caller says it has processed a body
 * (sf_http_poller_commit), so a crash between fetch and publish re-fetches
 * the same body instead of hearing "304" and losing it.
 *
 * Within one poll: attempts are retried on a transient failure (connect
 * error, timeout, 408, 429, 5xx) after a backoff of backoff_ms doubling
 * per retry, capped at SF_HTTP_BACKOFF_CAP_MS, with jitter (a uniform
 * draw in [d/2, d]); a 429/503 Retry-After in seconds is waited for when
 * it is at most the cap, and ends the poll otherwise (no retry sooner than
 * the server asked). A poll never takes longer than (retries + 1) x
 * timeout_ms of real time: each attempt's timeout is cut to what is left
 * of that budget, and a retry is made only if half a timeout is left after
 * its backoff. Between attempts, and about once a second during a
 * transfer, *stop is checked (SIGTERM sets it).
 *
 * Across polls, a circuit breaker: breaker_failures consecutive failed
 * polls open the circuit; while open, fetch answers SF_POLL_CIRCUIT_OPEN
 * without a request; breaker_cooldown_ms after opening, the next fetch is
 * one trial attempt (half-open, no retries): success or 304 closes the
 * circuit, a failure re-opens it for another cooldown.
 *
 * Example section (supplier_config.h reads format and body_format):
 *
 *   [supplier.acme]
 *   format = http
 *   body_format = jsonl
 *   url = https://feeds.acme.example/stock.jsonl
 *   interval = 300
 *   timeout = 30
 *   retries = 3
 *   backoff_ms = 500
 *   breaker_failures = 5
 *   breaker_cooldown = 300
 *
 * libcurl's global state: main calls sf_http_global_init() once at start-up
 * before starting threads, and sf_http_global_cleanup() once at exit after
 * every poller is freed. sf_http_poller_new() calls sf_http_global_init()
 * too (idempotent, serialised by a mutex), so a forgotten call is safe in a
 * single-threaded program.
 *
 * Ownership: sf_http_poll_opts is a plain value (copy it freely); `stop`
 * is borrowed and must outlive the poller. The poller owns its curl handle
 * and validators; a body returned by fetch belongs to the caller. One
 * poller is used by one thread at a time.
 */
#ifndef SF_SUPPLIER_HTTP_POLL_H
#define SF_SUPPLIER_HTTP_POLL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "sf_error.h"

#define SF_HTTP_URL_MAX 1024
#define SF_HTTP_BACKOFF_CAP_MS 30000 /* longest sleep between two attempts */
#define SF_HTTP_VALIDATOR_MAX 256    /* a longer ETag / Last-Modified is not remembered */
#define SF_HTTP_RETRIES_MAX 100      /* opts bound; the config allows 0..10 */
#define SF_HTTP_USER_AGENT "stockflow-inv-supplier/0.1"

typedef struct sf_http_poll_opts {
    char url[SF_HTTP_URL_MAX + 1]; /* http:// or https:// only */
    int64_t interval_ms;  /* between polls (config `interval`, seconds 1..604800, default 300) */
    int timeout_ms;       /* each attempt, connect included (config `timeout`, seconds
                             1..3600, default 30) */
    int retries;          /* extra attempts within one poll on a transient failure (config
                             `retries`, 0..10, default 3) */
    int backoff_ms;       /* first retry delay, doubling, capped at 30 s, with jitter (config
                             `backoff_ms`, 1..30000, default 500) */
    int breaker_failures; /* consecutive failed polls that open the circuit (config
                             `breaker_failures`, 1..1000, default 5) */
    int64_t breaker_cooldown_ms; /* open this long, then one trial poll (config
                                    `breaker_cooldown`, seconds 1..86400, default 300) */
    size_t max_body;             /* refuse a larger body (1..SF_FEED_MAX_BYTES, default 64 MiB) */
    volatile sig_atomic_t *stop; /* optional, borrowed: nonzero ends a poll early (the
                                    configuration leaves it NULL; main sets it) */
} sf_http_poll_opts;

/* Every field to its default; url "" (required), stop NULL. */
void sf_http_poll_opts_init(sf_http_poll_opts *o);

/* The keys of [supplier.<id>] the poller reads, NULL-terminated: url,
 * interval, timeout, retries, backoff_ms, breaker_failures,
 * breaker_cooldown. */
extern const char *const sf_http_poll_keys[];

/* Read those keys from the generic section (e.g. "supplier.acme") of cfg
 * into *out (defaults for absent keys; url required). SF_EINVAL with
 * "path:line: [section] key: reason". URLs are never echoed in messages
 * (they may carry credentials). */
sf_status sf_http_poll_configure(const sf_config *cfg, const char *section, sf_http_poll_opts *out,
                                 sf_error *err) SF_MUSTCHECK;

/* Idempotent and thread-safe; see the header paragraph for who calls them.
 * SF_EINTERNAL when curl_global_init fails. */
sf_status sf_http_global_init(sf_error *err) SF_MUSTCHECK;
void sf_http_global_cleanup(void);

typedef struct sf_http_poller sf_http_poller;

typedef enum sf_poll_result {
    SF_POLL_NEW,          /* 200: *body holds the new content */
    SF_POLL_NOT_MODIFIED, /* 304 to our conditional GET */
    SF_POLL_FAILED,       /* after the retries; err names the URL and the cause */
    SF_POLL_CIRCUIT_OPEN  /* no request made; err says until when */
} sf_poll_result;

typedef enum sf_circuit_state {
    SF_CIRCUIT_CLOSED = 0,
    SF_CIRCUIT_OPEN = 1,
    SF_CIRCUIT_HALF_OPEN = 2 /* cooldown over: the next fetch is the trial */
} sf_circuit_state;

/* Check opts (SF_EINVAL naming the field) and make a poller with its own
 * curl handle (connections are reused across polls). *out is NULL on
 * failure. */
sf_status sf_http_poller_new(const sf_http_poll_opts *o, sf_http_poller **out,
                             sf_error *err) SF_MUSTCHECK;
/* NULL is fine. */
void sf_http_poller_free(sf_http_poller *p);

/* One poll at now_ms (a non-negative monotonic ms clock given by the
 * caller). Conditional GET with If-None-Match (the committed ETag) and
 * If-Modified-Since (the committed Last-Modified), as the server sent them.
 *   200 -> SF_POLL_NEW, *body malloc'd (caller frees), NUL-terminated,
 *          *len bytes (the NUL excluded; the body may hold NULs itself);
 *   304 -> SF_POLL_NOT_MODIFIED (a 304 to a request without validators is
 *          a failure);
 *   failure after the retries -> SF_POLL_FAILED, err "<url>: <cause>, after
 *          N attempt(s)" where the cause is "HTTP <code>", "timeout after
 *          <ms> ms ...", "body larger than max_body (<n> bytes)", a curl
 *          error, or "stopped"; err->status SF_EUNAVAIL, SF_ETIMEOUT or
 *          SF_EINVAL (not worth retrying soon);
 *   circuit open -> SF_POLL_CIRCUIT_OPEN, no request, err SF_EUNAVAIL.
 * Every failed poll counts toward the breaker except "stopped". Returns
 * SF_OK whenever a result was decided; otherwise the poller's own failure
 * (SF_ENOMEM, SF_EINTERNAL) with *res = SF_POLL_FAILED. A body fetched but
 * not committed is forgotten at the next fetch: its validators are not
 * sent, so the server sends it again. */
sf_status sf_http_poller_fetch(sf_http_poller *p, int64_t now_ms, sf_poll_result *res, char **body,
                               size_t *len, sf_error *err) SF_MUSTCHECK;

/* The caller has processed the body of the last SF_POLL_NEW: remember its
 * ETag and Last-Modified for the next polls (a body without them clears the
 * old ones). No-op when there is nothing to commit. */
void sf_http_poller_commit(sf_http_poller *p);

/* When the next poll is due (same clock): now_ms of the last poll +
 * interval_ms; while the circuit is open, the end of the cooldown; 0
 * (due now) before the first poll. */
int64_t sf_http_poller_next_at(const sf_http_poller *p);

/* Circuit state at now_ms, for metrics. */
sf_circuit_state sf_http_poller_circuit(const sf_http_poller *p, int64_t now_ms);

/* True once each time the circuit opens from closed (a failed half-open
 * trial that re-opens it is the same outage and does not set it again);
 * the call clears it. For an alert. */
bool sf_http_poller_circuit_opened(sf_http_poller *p);

/* Consecutive failed polls so far (0 after a success or 304). */
int sf_http_poller_failures(const sf_http_poller *p);

#endif
