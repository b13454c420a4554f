/*
 * request: the request target of inv-api, from raw bytes to a route and its
 * checked parameters.
 *
 * The one rule (DESIGN.md "Stock query API"): the path is split on '/'
 * FIRST and each segment is percent-decoded afterwards (evhttp_uridecode,
 * '+' left alone), so a sku may hold '/' (as %2F) or spaces. A segment must
 * be well-formed percent-encoding; a path parameter must then be valid
 * UTF-8 without control characters (NUL included) and fit the contract
 * (sku and ref: at most 64 bytes, not empty; location and channel:
 * subject tokens). Query strings are form-encoded ('+' is a space) and
 * checked the same way.
 * Every failure leaves an HTTP status, a message and the field it concerns
 * in the api_request, ready for the JSON error body.
 *
 * Ownership: an api_request owns its decoded query parameters; release
 * them with api_request_free (safe on a zeroed or failed request).
 */
#ifndef API_REQUEST_H
#define API_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "event.h"

typedef enum api_route {
    API_R_STOCK = 0,      /* /v1/stock/{sku} */
    API_R_STOCK_LOCATION, /* /v1/stock/{sku}/locations/{location} */
    API_R_CHANNEL_STOCK,  /* /v1/channels/{channel}/stock */
    API_R_LEDGER,         /* /v1/ledger/{sku} */
    API_R_RESERVATION,    /* /v1/reservations/{ref} */
    API_R_RESERVE,        /* POST /v1/reservations (reserve.h) */
    API_R_HEALTHZ,        /* /healthz */
    API_R_METRICS,        /* /metrics */
    API_R_DASHBOARD,      /* /dashboard (public page, api/dashboard.h) */
    API_R_OPS_EVENTS,     /* /v1/ops/events (server-sent events, api/sse.h) */
    API_R_UNKNOWN,        /* anything else (404) or unparsable (400) */
    API_R__COUNT
} api_route;

/* "stock", "stock_location", ... (the metrics label). */
const char *api_route_name(api_route route);

#define API_ERROR_MAX 400
#define API_FIELD_MAX 32

typedef struct api_param {
    char *key;
    char *value; /* NUL-terminated; value_len excludes the NUL */
    size_t value_len;
} api_param;

typedef struct api_request {
    api_route route;
    char sku[SF_STR_MAX + 1];
    char location[SF_STR_MAX + 1];
    char channel[SF_STR_MAX + 1];
    char ref[SF_STR_MAX + 1]; /* an order's ref; never the empty-ref pool */
    api_param *query;         /* in request order, duplicates kept */
    size_t n_query;
    /* set when a parse step fails */
    int status; /* 400, 404 or 414 */
    char error[API_ERROR_MAX];
    char field[API_FIELD_MAX];
} api_request;

/* Split and decode path (the raw path of the request target, starting
 * with '/'), match it against the routes and check its parameters. true
 * when rq->route is a route with valid parameters; false with status 404
 * (no such route) or 400 (malformed segment, bad parameter: rq->route is
 * then the route if one matched). */
bool api_request_route(api_request *rq, const char *path);

/* Parse the raw query string (NULL or "" = none): at most max_params
 * parameters (more: 400 naming many_field), each key in allowed
 * (NULL-terminated list; another key is a 400 naming it), each value
 * checked as UTF-8 without control characters. */
bool api_request_query(api_request *rq, const char *query, size_t max_params,
                       const char *const *allowed, const char *many_field);

/* The first value of key, or NULL. */
const char *api_request_get(const api_request *rq, const char *key);

/* Set status, field and message (printf) on rq; returns false. */
bool api_request_fail(api_request *rq, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void api_request_free(api_request *rq);

#endif
