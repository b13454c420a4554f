/*
 * expiry: one step = one transaction holding the found reservation rows
 * (SKIP LOCKED, so a second reconciler takes other rows) while their
 * RELEASEs are published and acknowledged; then commit. The sender retries
 * a failed publish with the same id; one that still fails is logged and the
 * row is found again on the next step.
 */
#include "expiry.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "sender.h"

struct rec_expiry {
    sf_ops *ops;
    char dsn[SF_CONFIG_URL_MAX + 1];
    PGconn *conn;
    sf_sender *sender;
    uint64_t published, failed;
};

static void expiry__outcome(void *closure, const sf_send_outcome *o)
{
    rec_expiry *x = closure;
    sf_event *ev = o->token;
    if (o->status == SF_OK) {
        x->published++;
        sf_log(SF_LOG_INFO, "reservation expired: RELEASE %s published", o->event_id);
        char msg[256];
        snprintf(msg, sizeof msg, "reservation %s of %s at %s expired: %" PRId64 " released",
                 ev->has_ref ? ev->ref : "(no ref)", ev->sku, ev->location, ev->qty);
        sf_ops_alert(x->ops, "reservation_expired", msg,
                     json_pack("{s:s, s:s, s:s, s:s, s:I}", "event_id", o->event_id, "ref",
                               ev->has_ref ? ev->ref : "", "sku", ev->sku, "location", ev->location,
                               "qty", (json_int_t)ev->qty));
    } else if (o->status == SF_EDUP) {
        /* published before, not applied yet by a consumer: nothing new */
    } else {
        x->failed++;
        sf_log(SF_LOG_WARN, "expiry %s not published (found again next step): %s", o->event_id,
               o->error);
    }
    free(ev);
}

sf_status rec_expiry_new(const sf_config *cfg, sf_broker *b, sf_ops *ops, rec_expiry **out,
                         sf_error *err)
{
    *out = NULL;
    rec_expiry *x = calloc(1, sizeof *x);
    if (!x)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    x->ops = ops;
    snprintf(x->dsn, sizeof x->dsn, "%s", cfg->pg.dsn);
    sf_sender_opts so;
    sf_sender_opts_init(&so);
    so.max_inflight = 1024;
    so.retry_for_ms = 5000;
    so.cb = expiry__outcome;
    so.closure = x;
    sf_status st = sf_sender_new(b, &so, &x->sender, err);
    if (st) {
        rec_expiry_free(x);
        return st;
    }
    *out = x;
    return SF_OK;
}

void rec_expiry_free(rec_expiry *x)
{
    if (!x)
        return;
    sf_sender_free(x->sender);
    if (x->conn)
        PQfinish(x->conn);
    free(x);
}

void rec_expiry_event(const char *ref, const char *sku, const char *location, int64_t outstanding,
                      int64_t reserved, int64_t expires_at, sf_event *out)
{
    sf_event_init(out);
    out->kind = SF_KIND_RELEASE;
    snprintf(out->sku, sizeof out->sku, "%s", sku);
    snprintf(out->location, sizeof out->location, "%s", location);
    out->qty = outstanding;
    out->occurred_at = expires_at;
    snprintf(out->source, sizeof out->source, "reservation-expiry");
    if (ref[0]) {
        out->has_ref = true;
        snprintf(out->ref, sizeof out->ref, "%s", ref);
    }
    char at[24], total[24], hex[41];
    snprintf(at, sizeof at, "%" PRId64, expires_at);
    snprintf(total, sizeof total, "%" PRId64, reserved);
    const char *parts[5] = {ref, sku, location, at, total};
    sf_sha256_hex_joined(parts, 5, 40, hex);
    snprintf(out->event_id, sizeof out->event_id, "exp-%s", hex);
}

sf_status rec_expiry_step(rec_expiry *x, int batch, int64_t now_ms, size_t *found, sf_error *err)
{
    *found = 0;
    sf_status st = sf_db_ensure(&x->conn, x->dsn, NULL, err);
    if (st)
        return st;
    char b[16], now[24];
    snprintf(b, sizeof b, "%d", batch);
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    const char *params[2] = {b, now};
    PGresult *res = NULL;
    if ((st = sf_db_exec(x->conn, "BEGIN", err)))
        return st;
    st = sf_db_query(x->conn,
                     "SELECT ref, sku, location, outstanding, reserved, expires_at"
                     " FROM sf_expired_reservations($1::int, $2::bigint)",
                     2, params, &res, err);
    for (int i = 0; !st && i < PQntuples(res); i++) {
        sf_event ev;
        rec_expiry_event(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                         strtoll(PQgetvalue(res, i, 3), NULL, 10),
                         strtoll(PQgetvalue(res, i, 4), NULL, 10),
                         strtoll(PQgetvalue(res, i, 5), NULL, 10), &ev);
        sf_error why;
        sf_event *copy = malloc(sizeof *copy); /* the outcome's token; freed there */
        if (copy)
            *copy = ev;
        if (!copy || sf_event_validate(&ev, now_ms, 0, &why) ||
            sf_sender_send(x->sender, &ev, copy, &why)) {
            if (!copy)
                snprintf(why.msg, sizeof why.msg, "out of memory");
            free(copy);
            /* Cannot happen for rows the consumer wrote; say so if it does. */
            sf_log(SF_LOG_ERROR, "expiry of (%s, %s, %s) not publishable: %s",
                   PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), why.msg);
            continue;
        }
        (*found)++;
    }
    PQclear(res);
    sf_sender_finish(x->sender); /* every RELEASE acknowledged (or failed) */
    sf_error cerr;
    sf_status cst = sf_db_exec(x->conn, st ? "ROLLBACK" : "COMMIT", &cerr);
    if (!st && cst)
        return sf_error_set(err, cst, cerr.file, cerr.line, "%s", cerr.msg);
    return st;
}
