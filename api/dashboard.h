/*
 * dashboard: GET /dashboard, one self-contained HTML page (inline CSS and
 * JS, nothing fetched from elsewhere) that opens GET /v1/ops/events with
 * the key given as ?key= (a browser EventSource cannot send headers) and
 * shows live throughput and lag, each service's last metrics, recent
 * alerts and stock changes, and a stock lookup (GET /v1/stock/{sku}).
 *
 * The page is api/dashboard.html, embedded at build time (the Makefile
 * turns it into a C array with xxd): edit the .html, not a C string.
 */
#ifndef API_DASHBOARD_H
#define API_DASHBOARD_H

#include <stddef.h>

/* The page's bytes (static, not NUL-terminated) and their length. */
const unsigned char *api_dashboard_html(size_t *len);

/* The Content-Security-Policy sent with it: inline code only, requests to
 * this origin only. */
#define API_DASHBOARD_CSP                                                                          \
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "                  \
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'"

#endif
