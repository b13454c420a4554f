/*
 * reserve: request checks and the one sf_reserve() call (see reserve.h).
 *
 * The checks here are the API's edge: every field is bounded and checked
 * before PostgreSQL sees it, and the RESERVE event is then built and put
 * through sf_event_validate, the same gate every producer's events pass,
 * so nothing reaches the ledger that a consumer would have sidelined.
 */
#include "reserve.h"

#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

#define RES_STMT "api_reserve"
#define RES_STATEMENT_TIMEOUT "SET statement_timeout = 10000"
#define RES_ATTEMPTS 3 /* a lost connection or a deadlock victim is run again */

static const char RES_SQL[] =
    "SELECT status, event_id, location, expires_at, available, replay"
    " FROM sf_reserve($1, $2, $3, $4, $5, $6::bigint, NULLIF($7, ''), NULLIF($8, ''),"
    " $9::bigint, $10::bigint, $11)";

struct api_reserve {
    char *dsn;
    PGconn *pg;             /* NULL until connected */
    int64_t last_notify_ms; /* monotonic */
};

/* ------------------------------------------------------------------ parsing --- */

static bool res__fail(api_reserve_bad *bad, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool res__fail(api_reserve_bad *bad, const char *field, const char *fmt, ...)
{
    snprintf(bad->field, sizeof bad->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bad->msg, sizeof bad->msg, fmt, ap);
    va_end(ap);
    return false;
}

/* A required string field: 1..64 bytes of UTF-8 (jansson checked that)
 * without control characters; a location or channel also a token. */
static bool res__str(json_t *body, const char *name, bool token, bool required, char *out,
                     api_reserve_bad *bad)
{
    out[0] = '\0';
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v)) {
        if (required)
            return res__fail(bad, name, "field %s: missing", name);
        return true;
    }
    if (!json_is_string(v))
        return res__fail(bad, name, "field %s: must be a string", name);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    char q[SF_STR_MAX * 4 + 8];
    sf_str_quote(s, len, q, sizeof q);
    if (len == 0)
        return res__fail(bad, name, "field %s: must not be empty", name);
    if (len > SF_STR_MAX)
        return res__fail(bad, name, "field %s: %s is %zu bytes, longer than %d", name, q, len,
                         SF_STR_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return res__fail(bad, name, "field %s: %s holds a control character", name, q);
    }
    if (token && !sf_is_token(s))
        return res__fail(bad, name, "field %s: %s is not a %s id (only A-Z a-z 0-9 _ -)", name, q,
                         name);
    memcpy(out, s, len + 1);
    return true;
}

static bool res__int(json_t *body, const char *name, int64_t min, int64_t max, int64_t *out,
                     api_reserve_bad *bad)
{
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v))
        return res__fail(bad, name, "field %s: missing", name);
    if (!json_is_integer(v))
        return res__fail(bad, name, "field %s: must be a whole number in %" PRId64 "..%" PRId64,
                         name, min, max);
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return res__fail(bad, name, "field %s: %" PRId64 " is not in %" PRId64 "..%" PRId64, name,
                         (int64_t)x, min, max);
    *out = (int64_t)x;
    return true;
}

bool api_reserve_parse(const char *key, const char *body, size_t len, api_reserve_req *out,
                       api_reserve_bad *bad)
{
    memset(out, 0, sizeof *out);
    memset(bad, 0, sizeof *bad);
    if (!key || !*key)
        return res__fail(bad, "Idempotency-Key",
                         "header Idempotency-Key: missing (one unique value per reservation; a "
                         "retry sends the same one)");
    size_t klen = strlen(key);
    char q[SF_STR_MAX * 4 + 8];
    sf_str_quote(key, klen, q, sizeof q);
    if (klen > API_RESERVE_KEY_MAX)
        return res__fail(bad, "Idempotency-Key",
                         "header Idempotency-Key: %s is %zu bytes, longer "
                         "than %d",
                         q, klen, API_RESERVE_KEY_MAX);
    for (size_t i = 0; i < klen; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x21 || c > 0x7e)
            return res__fail(bad, "Idempotency-Key",
                             "header Idempotency-Key: %s: only visible ASCII characters", q);
    }
    memcpy(out->key, key, klen + 1);

    if (!body || len == 0)
        return res__fail(bad, "body",
                         "body: missing; send {\"ref\", \"sku\", \"qty\", \"location\" or "
                         "\"channel\", \"ttl_s\"}");
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return res__fail(bad, "body", "body: not JSON (line %d column %d: %s)", je.line, je.column,
                         je.text);
    bool ok = false;
    const char *k;
    json_t *v;
    if (!json_is_object(j)) {
        res__fail(bad, "body", "body: must be a JSON object");
        goto out;
    }
    json_object_foreach(j, k, v)
    {
        (void)v;
        if (strcmp(k, "ref") && strcmp(k, "sku") && strcmp(k, "qty") && strcmp(k, "location") &&
            strcmp(k, "channel") && strcmp(k, "ttl_s")) {
            char fq[SF_STR_MAX * 4 + 8];
            sf_str_quote(k, strlen(k), fq, sizeof fq);
            res__fail(bad, "body",
                      "body: unknown field %s (ref, sku, qty, location, channel, ttl_s)", fq);
            goto out;
        }
    }
    if (!res__str(j, "ref", false, true, out->ref, bad) ||
        !res__str(j, "sku", false, true, out->sku, bad) ||
        !res__int(j, "qty", 1, API_RESERVE_QTY_MAX, &out->qty, bad) ||
        !res__str(j, "location", true, false, out->location, bad) ||
        !res__str(j, "channel", true, false, out->channel, bad) ||
        !res__int(j, "ttl_s", 1, API_RESERVE_TTL_MAX, &out->ttl_s, bad))
        goto out;
    if (!out->location[0] == !out->channel[0]) {
        res__fail(bad, out->location[0] ? "channel" : "location",
                  "fields location and channel: give exactly one (where to reserve)");
        goto out;
    }
    ok = true;
out:
    json_decref(j);
    return ok;
}

void api_reserve_event_id(const api_reserve_req *rq, char *out, size_t size)
{
    const char *parts[3] = {rq->key, rq->ref, rq->sku};
    char hex[41];
    sf_sha256_hex_joined(parts, 3, 40, hex);
    snprintf(out, size, "rsv-%s", hex);
}

/* ----------------------------------------------------------------- database --- */

sf_status api_reserve_new(const char *dsn, api_reserve **out, sf_error *err)
{
    *out = NULL;
    api_reserve *r = calloc(1, sizeof *r);
    if (!r || !(r->dsn = strdup(dsn))) {
        free(r);
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    }
    *out = r;
    return SF_OK;
}

void api_reserve_free(api_reserve *r)
{
    if (!r)
        return;
    if (r->pg)
        PQfinish(r->pg);
    free(r->dsn);
    free(r);
}

/* Connect and prepare the statement. */
static sf_status res__connect(api_reserve *r, sf_error *err)
{
    bool fresh = false;
    sf_status st = sf_db_ensure(&r->pg, r->dsn, &fresh, err);
    if (st || !fresh)
        return st;
    if ((st = sf_db_exec(r->pg, RES_STATEMENT_TIMEOUT, err)))
        goto fail;
    PGresult *res = PQprepare(r->pg, RES_STMT, RES_SQL, 0, NULL);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = sf_db_fail(r->pg, res, "prepare sf_reserve (run invctl setup?)", err);
        PQclear(res);
        goto fail;
    }
    PQclear(res);
    return SF_OK;
fail:
    PQfinish(r->pg);
    r->pg = NULL;
    return st;
}

static void res__copy(char *dst, size_t size, const PGresult *res, int col)
{
    snprintf(dst, size, "%s", PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col));
}

sf_status api_reserve_run(api_reserve *r, const api_reserve_req *rq, int64_t now_ms,
                          api_reserve_result *out, sf_error *err)
{
    memset(out, 0, sizeof *out);
    sf_event ev;
    sf_event_init(&ev);
    api_reserve_event_id(rq, ev.event_id, sizeof ev.event_id);
    ev.kind = SF_KIND_RESERVE;
    snprintf(ev.sku, sizeof ev.sku, "%s", rq->sku);
    /* The channel form's location is picked by sf_reserve; any valid one
     * stands in for the check. */
    snprintf(ev.location, sizeof ev.location, "%s", rq->location[0] ? rq->location : "X");
    ev.qty = rq->qty;
    ev.occurred_at = now_ms;
    snprintf(ev.source, sizeof ev.source, API_RESERVE_SOURCE);
    ev.has_ref = true;
    snprintf(ev.ref, sizeof ev.ref, "%s", rq->ref);
    if (rq->channel[0]) {
        ev.has_channel = true;
        snprintf(ev.channel, sizeof ev.channel, "%s", rq->channel);
    }
    ev.has_expires_at = true;
    ev.expires_at = now_ms + rq->ttl_s * 1000;
    sf_status st = sf_event_validate(&ev, now_ms, 0, err);
    if (st)
        return st;

    char qty[24], ttl[24], now[24], exp[24], request[SF_STR_MAX * 4 + 64];
    snprintf(qty, sizeof qty, "%" PRId64, rq->qty);
    snprintf(ttl, sizeof ttl, "%" PRId64, rq->ttl_s);
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    snprintf(exp, sizeof exp, "%" PRId64, ev.expires_at);
    snprintf(request, sizeof request, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", rq->ref, rq->sku, qty,
             rq->location, rq->channel, ttl);
    const char *params[11] = {rq->key, request, ev.event_id,       rq->ref,
                              rq->sku, qty,     rq->location,      rq->channel,
                              now,     exp,     API_RESERVE_SOURCE};
    for (int attempt = 1;; attempt++) {
        if ((st = res__connect(r, err))) {
            if (attempt < RES_ATTEMPTS && st == SF_EUNAVAIL)
                continue;
            return st;
        }
        PGconn *pg = r->pg;
        PGresult *res = PQexecPrepared(pg, RES_STMT, 11, params, NULL, NULL, 0);
        if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
            out->status = atoi(PQgetvalue(res, 0, 0));
            res__copy(out->event_id, sizeof out->event_id, res, 1);
            res__copy(out->location, sizeof out->location, res, 2);
            out->expires_at = PQgetisnull(res, 0, 3) ? 0 : strtoll(PQgetvalue(res, 0, 3), NULL, 10);
            out->available = PQgetisnull(res, 0, 4) ? 0 : strtoll(PQgetvalue(res, 0, 4), NULL, 10);
            out->replay = PQgetvalue(res, 0, 5)[0] == 't';
            PQclear(res);
            return SF_OK;
        }
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        bool deadlock = state && (!strcmp(state, "40P01") || !strcmp(state, "40001"));
        st = sf_db_fail(pg, res, "sf_reserve", err);
        PQclear(res);
        if (attempt < RES_ATTEMPTS && (deadlock || st == SF_EUNAVAIL))
            continue; /* safe: the key makes a repeat return the first answer */
        return st;
    }
}

void api_reserve_notify(api_reserve *r, int64_t mono_ms)
{
    if (!r->pg || mono_ms - r->last_notify_ms < API_RESERVE_NOTIFY_MS)
        return;
    r->last_notify_ms = mono_ms;
    PQclear(PQexec(r->pg, "NOTIFY inv_dirty"));
}
