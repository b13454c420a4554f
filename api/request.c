/*
 * request: split, decode, route, check (see request.h).
 *
 * Decoding happens per segment, after the split, and only after the
 * segment's percent-escapes were found well-formed ('%' and two hex
 * digits): evhttp_uridecode passes a stray '%' through unchanged, which
 * would make "%zz" and "%257a" look alike. A decoded segment may hold any
 * byte, NUL included, so lengths come from the decoder, never strlen.
 */
#include "request.h"

#include <event2/http.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQ_SEGS_MAX 8 /* no route is longer; deeper paths are 404 */

static const char *const req__route_names[API_R__COUNT] = {
    "stock",   "stock_location", "channel_stock", "ledger",     "reservation", "reserve",
    "healthz", "metrics",        "dashboard",     "ops_events", "unknown",
};

const char *api_route_name(api_route route)
{
    return (unsigned)route < API_R__COUNT ? req__route_names[route] : "unknown";
}

bool api_request_fail(api_request *rq, int status, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rq->error, sizeof rq->error, fmt, ap);
    va_end(ap);
    rq->status = status;
    snprintf(rq->field, sizeof rq->field, "%s", field ? field : "");
    return false;
}

void api_request_free(api_request *rq)
{
    for (size_t i = 0; i < rq->n_query; i++) {
        free(rq->query[i].key);
        free(rq->query[i].value);
    }
    free(rq->query);
    rq->query = NULL;
    rq->n_query = 0;
}

static bool req__hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Every '%' of s[0..n) starts an escape of two hex digits. */
static bool req__escapes_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && (i + 2 >= n || !req__hex(s[i + 1]) || !req__hex(s[i + 2])))
            return false;
    }
    return true;
}

/* Strict UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF) without control characters (C0, DEL, C1). */
static bool req__clean_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        uint32_t cp;
        size_t len;
        if (c < 0x80) {
            cp = c;
            len = 1;
        } else if (c >= 0xC2 && c <= 0xDF) {
            cp = c & 0x1F;
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            cp = c & 0x0F;
            len = 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            cp = c & 0x07;
            len = 4;
        } else {
            return false;
        }
        if (len > n - i)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F))
            return false;
        i += len;
    }
    return true;
}

/* Decode s[0..n) (a copy is NUL-terminated for evhttp). *out is malloc'd
 * (caller frees), NUL-terminated, *out_len its decoded length. */
static bool req__decode(api_request *rq, const char *s, size_t n, int decode_plus,
                        const char *field, char **out, size_t *out_len)
{
    *out = NULL;
    if (!req__escapes_ok(s, n))
        return api_request_fail(rq, 400, field,
                                "malformed percent-encoding in %s: '%%' must be followed by two "
                                "hex digits",
                                field);
    char *copy = malloc(n + 1);
    if (!copy)
        return api_request_fail(rq, 500, field, "out of memory");
    memcpy(copy, s, n);
    copy[n] = '\0';
    size_t len = 0;
    char *dec = evhttp_uridecode(copy, decode_plus, &len);
    free(copy);
    if (!dec)
        return api_request_fail(rq, 500, field, "out of memory");
    *out = dec;
    *out_len = len;
    return true;
}

/* A decoded path or query value into dst (a contract string: at most 64
 * bytes, UTF-8, no control characters; token: a location/channel id). */
static bool req__param(api_request *rq, char dst[SF_STR_MAX + 1], const char *v, size_t len,
                       const char *field, bool token)
{
    sf_error err;
    if (len == 0)
        return api_request_fail(rq, 400, field, "field %s: must not be empty", field);
    if (sf_event_set_str(dst, v, len, field, &err) != SF_OK)
        return api_request_fail(rq, 400, field, "%s", err.msg);
    if (token && !sf_is_token(dst))
        return api_request_fail(rq, 400, field,
                                "field %s: '%s' is not a %s id (only A-Z a-z 0-9 _ -)", field, dst,
                                field);
    return true;
}

typedef struct req__route_def {
    api_route route;
    size_t n;
    const char *seg[5]; /* literal, or "{sku}", "{location}", "{channel}", "{ref}" */
} req__route_def;

static const req__route_def req__routes[] = {
    {API_R_HEALTHZ, 1, {"healthz"}},
    {API_R_METRICS, 1, {"metrics"}},
    {API_R_DASHBOARD, 1, {"dashboard"}},
    {API_R_OPS_EVENTS, 3, {"v1", "ops", "events"}},
    {API_R_STOCK, 3, {"v1", "stock", "{sku}"}},
    {API_R_STOCK_LOCATION, 5, {"v1", "stock", "{sku}", "locations", "{location}"}},
    {API_R_CHANNEL_STOCK, 4, {"v1", "channels", "{channel}", "stock"}},
    {API_R_LEDGER, 3, {"v1", "ledger", "{sku}"}},
    {API_R_RESERVATION, 3, {"v1", "reservations", "{ref}"}},
    {API_R_RESERVE, 2, {"v1", "reservations"}},
};

bool api_request_route(api_request *rq, const char *path)
{
    rq->route = API_R_UNKNOWN;
    if (!path || path[0] != '/')
        return api_request_fail(rq, 404, "path", "no such route");
    char *seg[REQ_SEGS_MAX];
    size_t seg_len[REQ_SEGS_MAX], n = 0;
    bool ok = true, too_deep = false;
    const char *p = path + 1;
    for (;;) {
        size_t len = strcspn(p, "/");
        if (n == REQ_SEGS_MAX) {
            too_deep = true;
            break;
        }
        if (!req__decode(rq, p, len, 0, "path", &seg[n], &seg_len[n])) {
            ok = false;
            break;
        }
        n++;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }

    const req__route_def *match = NULL;
    for (size_t r = 0; ok && !too_deep && !match && r < sizeof req__routes / sizeof *req__routes;
         r++) {
        const req__route_def *d = &req__routes[r];
        if (d->n != n)
            continue;
        bool same = true;
        for (size_t i = 0; i < n && same; i++) {
            if (d->seg[i][0] != '{')
                same =
                    seg_len[i] == strlen(d->seg[i]) && memcmp(seg[i], d->seg[i], seg_len[i]) == 0;
        }
        if (same)
            match = d;
    }
    if (ok && match) {
        rq->route = match->route;
        for (size_t i = 0; i < n && ok; i++) {
            const char *s = match->seg[i];
            if (!strcmp(s, "{sku}"))
                ok = req__param(rq, rq->sku, seg[i], seg_len[i], "sku", false);
            else if (!strcmp(s, "{location}"))
                ok = req__param(rq, rq->location, seg[i], seg_len[i], "location", true);
            else if (!strcmp(s, "{channel}"))
                ok = req__param(rq, rq->channel, seg[i], seg_len[i], "channel", true);
            else if (!strcmp(s, "{ref}"))
                ok = req__param(rq, rq->ref, seg[i], seg_len[i], "ref", false);
        }
    } else if (ok) {
        /* No route: a segment that is not clean text is the client's
         * error (400); a clean unknown path is 404. */
        for (size_t i = 0; i < n && ok; i++) {
            if (!req__clean_utf8((const unsigned char *)seg[i], seg_len[i]))
                ok = api_request_fail(rq, 400, "path",
                                      "path segment %zu is not valid UTF-8 or holds a control "
                                      "character",
                                      i + 1);
        }
        if (ok)
            ok = api_request_fail(rq, 404, "path", "no such route");
    }
    for (size_t i = 0; i < n; i++)
        free(seg[i]);
    return ok;
}

bool api_request_query(api_request *rq, const char *query, size_t max_params,
                       const char *const *allowed, const char *many_field)
{
    if (!query || !*query)
        return true;
    size_t parts = 1;
    for (const char *q = query; *q; q++)
        parts += *q == '&';
    if (parts > max_params) {
        /* empty parts ("a=1&&b=2") do not count: recount exactly */
        parts = 0;
        for (const char *q = query; *q;) {
            size_t len = strcspn(q, "&");
            parts += len > 0;
            q += len + (q[len] == '&');
        }
        if (parts > max_params)
            return api_request_fail(rq, 400, many_field,
                                    "%zu query parameters, more than the %zu allowed here", parts,
                                    max_params);
    }
    rq->query = calloc(parts ? parts : 1, sizeof *rq->query);
    if (!rq->query)
        return api_request_fail(rq, 500, "query", "out of memory");
    for (const char *q = query; *q;) {
        size_t len = strcspn(q, "&");
        const char *part = q;
        q += len + (q[len] == '&');
        if (len == 0)
            continue;
        const char *eq = memchr(part, '=', len);
        size_t klen = eq ? (size_t)(eq - part) : len;
        api_param *prm = &rq->query[rq->n_query];
        size_t key_dec_len = 0;
        if (!req__decode(rq, part, klen, 1, "query", &prm->key, &key_dec_len))
            return false;
        rq->n_query++;
        bool known = false;
        for (size_t i = 0; allowed && allowed[i] && !known; i++)
            known = key_dec_len == strlen(allowed[i]) && !strcmp(prm->key, allowed[i]);
        if (!known) {
            char shown[SF_STR_MAX + 16];
            sf_str_quote(prm->key, key_dec_len, shown, sizeof shown);
            return api_request_fail(rq, 400, "query", "unknown query parameter %s", shown);
        }
        const char *v = eq ? eq + 1 : part + len;
        if (!req__decode(rq, v, (size_t)(part + len - v), 1, prm->key, &prm->value,
                         &prm->value_len))
            return false;
        char check[SF_STR_MAX + 1];
        if (prm->value_len > 0 &&
            !req__param(rq, check, prm->value, prm->value_len, prm->key, false))
            return false;
    }
    return true;
}

const char *api_request_get(const api_request *rq, const char *key)
{
    for (size_t i = 0; i < rq->n_query; i++) {
        if (!strcmp(rq->query[i].key, key))
            return rq->query[i].value;
    }
    return NULL;
}
