/*
 * relay: one step = one transaction holding the claimed outbox rows while
 * their events are published and acknowledged, then one statement deleting
 * the acknowledged ones (sf_outbox_sent, 010_outbox_relayed.sql), then
 * commit. The sender retries a failed publish with the same id for a few
 * seconds; a row still unacknowledged stays and is claimed again by a
 * later step.
 */
#include "relay.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "event.h"
#include "log.h"
#include "sender.h"

#define RELAY_RETRY_MS 5000

struct rec_relay {
    char dsn[SF_CONFIG_URL_MAX + 1];
    PGconn *conn;
    sf_sender *sender;
    /* the step in progress: one slot per claimed row */
    uint64_t *seq;
    int *acked;
    size_t cap;
    rec_relay_stats stats;
};

static void relay__outcome(void *closure, const sf_send_outcome *o)
{
    rec_relay *r = closure;
    size_t i = (size_t)(uintptr_t)o->token - 1;
    if (i >= r->cap)
        return;
    if (o->status == SF_OK || o->status == SF_EDUP) {
        r->acked[i] = 1;
        r->seq[i] = o->seq;
        if (o->status == SF_EDUP)
            r->stats.duplicate++;
    } else {
        r->stats.failed++;
        sf_log(SF_LOG_WARN, "outbox %s not published (sent again next step): %s", o->event_id,
               o->error);
    }
}

sf_status rec_relay_new(const sf_config *cfg, sf_broker *b, rec_relay **out, sf_error *err)
{
    *out = NULL;
    rec_relay *r = calloc(1, sizeof *r);
    if (!r)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    snprintf(r->dsn, sizeof r->dsn, "%s", cfg->pg.dsn);
    sf_sender_opts so;
    sf_sender_opts_init(&so);
    so.max_inflight = 1024;
    so.retry_for_ms = RELAY_RETRY_MS;
    so.cb = relay__outcome;
    so.closure = r;
    sf_status st = sf_sender_new(b, &so, &r->sender, err);
    if (st) {
        rec_relay_free(r);
        return st;
    }
    *out = r;
    return SF_OK;
}

void rec_relay_free(rec_relay *r)
{
    if (!r)
        return;
    sf_sender_free(r->sender);
    if (r->conn)
        PQfinish(r->conn);
    free(r->seq);
    free(r->acked);
    free(r);
}

const rec_relay_stats *rec_relay_stats_get(const rec_relay *r)
{
    return &r->stats;
}

/* Row i of a claim (columns of table outbox) as an event. */
static void relay__event(const PGresult *res, int i, sf_event *ev)
{
    sf_event_init(ev);
    snprintf(ev->event_id, sizeof ev->event_id, "%s", PQgetvalue(res, i, 0));
    sf_error ignored;
    if (sf_kind_parse(PQgetvalue(res, i, 1), &ev->kind, &ignored))
        ev->kind = SF_KIND_RESERVE;
    snprintf(ev->sku, sizeof ev->sku, "%s", PQgetvalue(res, i, 2));
    snprintf(ev->location, sizeof ev->location, "%s", PQgetvalue(res, i, 3));
    ev->qty = strtoll(PQgetvalue(res, i, 4), NULL, 10);
    ev->occurred_at = strtoll(PQgetvalue(res, i, 5), NULL, 10);
    snprintf(ev->source, sizeof ev->source, "%s", PQgetvalue(res, i, 6));
    if (!PQgetisnull(res, i, 7)) {
        ev->has_channel = true;
        snprintf(ev->channel, sizeof ev->channel, "%s", PQgetvalue(res, i, 7));
    }
    if (!PQgetisnull(res, i, 8)) {
        ev->has_ref = true;
        snprintf(ev->ref, sizeof ev->ref, "%s", PQgetvalue(res, i, 8));
    }
    if (!PQgetisnull(res, i, 9)) {
        ev->has_expires_at = true;
        ev->expires_at = strtoll(PQgetvalue(res, i, 9), NULL, 10);
    }
}

static sf_status relay__mark(rec_relay *r, const PGresult *res, int n, size_t *marked,
                             sf_error *err)
{
    sf_db_array ids, seqs;
    sf_db_array_init(&ids);
    sf_db_array_init(&seqs);
    *marked = 0;
    for (int i = 0; i < n; i++) {
        if (!r->acked[i])
            continue;
        sf_db_array_add(&ids, PQgetvalue(res, i, 0));
        sf_db_array_add_int(&seqs, (long long)r->seq[i]);
        (*marked)++;
    }
    const char *params[2] = {sf_db_array_end(&ids), sf_db_array_end(&seqs)};
    sf_status st = SF_OK;
    if (!params[0] || !params[1]) {
        st = SF_ERR(err, SF_ENOMEM, "out of memory");
    } else if (*marked) {
        PGresult *u = NULL;
        st = sf_db_query(r->conn, "SELECT sf_outbox_sent($1::text[], $2::bigint[])", 2, params, &u,
                         err);
        PQclear(u);
    }
    sf_db_array_free(&ids);
    sf_db_array_free(&seqs);
    return st;
}

sf_status rec_relay_step(rec_relay *r, int batch, size_t *found, sf_error *err)
{
    *found = 0;
    sf_status st = sf_db_ensure(&r->conn, r->dsn, NULL, err);
    if (st)
        return st;
    /* The step's commit does not wait for its WAL flush: losing it (a
     * power loss in the next ~200 ms) only leaves its rows in the outbox,
     * published again with the same ids, which JetStream or the ledger
     * drops (relay.h). Waiting would put a flush per step in the queue
     * the reservations' commits wait in. */
    if ((st = sf_db_exec(r->conn, "BEGIN; SET LOCAL synchronous_commit = off", err)))
        return st;
    char b[16];
    snprintf(b, sizeof b, "%d", batch);
    const char *params[1] = {b};
    PGresult *res = NULL;
    st = sf_db_query(r->conn,
                     "SELECT event_id, kind, sku, location, qty, occurred_at, source, channel, ref,"
                     " expires_at FROM sf_outbox_claim($1::int)",
                     1, params, &res, err);
    int n = st ? 0 : PQntuples(res);
    if (!st && (size_t)n > r->cap) {
        uint64_t *seq = realloc(r->seq, (size_t)n * sizeof *seq);
        if (seq)
            r->seq = seq;
        int *acked = realloc(r->acked, (size_t)n * sizeof *acked);
        if (acked)
            r->acked = acked;
        if (!seq || !acked)
            st = SF_ERR(err, SF_ENOMEM, "out of memory");
        else
            r->cap = (size_t)n;
    }
    if (!st && n > 0) {
        memset(r->acked, 0, (size_t)n * sizeof *r->acked);
        memset(r->seq, 0, (size_t)n * sizeof *r->seq);
        for (int i = 0; i < n; i++) {
            sf_event ev;
            relay__event(res, i, &ev);
            sf_error why;
            if (sf_sender_send(r->sender, &ev, (void *)(uintptr_t)(i + 1), &why)) {
                /* Rows come from inv-api, which validated them; say so if not. */
                sf_log(SF_LOG_ERROR, "outbox %s not publishable: %s", ev.event_id, why.msg);
                continue;
            }
        }
        *found = (size_t)n;
        sf_sender_finish(r->sender); /* every publish acknowledged or failed */
        size_t marked = 0;
        st = relay__mark(r, res, n, &marked, err);
        r->stats.published += marked;
    }
    PQclear(res);
    sf_error cerr;
    sf_status cst = sf_db_exec(r->conn, st ? "ROLLBACK" : "COMMIT", &cerr);
    if (!st && cst)
        return sf_error_set(err, cst, cerr.file, cerr.line, "%s", cerr.msg);
    return st;
}
