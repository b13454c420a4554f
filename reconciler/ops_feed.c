/*
 * ops_feed: stock.<sku> and alert.negative_stock (see ops_feed.h). One
 * query per claim reads every position of the claimed skus, ordered by
 * sku, so each sku's message is built from consecutive rows.
 */
#include "ops_feed.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "event.h"

typedef struct opsfeed__slot {
    char sku[SF_STR_MAX + 1];
    char location[SF_STR_MAX + 1];
    long long version; /* of the last negative_stock alert; 0 = empty */
} opsfeed__slot;

struct rec_opsfeed {
    sf_ops *ops;
    opsfeed__slot *slots; /* REC_OPSFEED_SLOTS */
    uint64_t stock, negative;
};

static const char OPSFEED_SQL[] =
    "SELECT p.sku, p.location, p.on_hand, p.reserved, GREATEST(p.inbound, 0), p.damaged,"
    " COALESCE(l.safety_stock, 0), p.on_hand - p.reserved - COALESCE(l.safety_stock, 0),"
    " p.version"
    " FROM positions p LEFT JOIN locations l ON l.location = p.location"
    " WHERE p.sku = ANY ($1::text[]) AND ($2::boolean OR p.on_hand < 0)"
    " ORDER BY p.sku COLLATE \"C\", p.location COLLATE \"C\"";

sf_status rec_opsfeed_new(sf_ops *ops, rec_opsfeed **out, sf_error *err)
{
    *out = NULL;
    rec_opsfeed *f = calloc(1, sizeof *f);
    if (!f || !(f->slots = calloc(REC_OPSFEED_SLOTS, sizeof *f->slots))) {
        free(f);
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    }
    f->ops = ops;
    *out = f;
    return SF_OK;
}

void rec_opsfeed_free(rec_opsfeed *f)
{
    if (!f)
        return;
    free(f->slots);
    free(f);
}

void rec_opsfeed_counts(const rec_opsfeed *f, uint64_t *stock, uint64_t *negative)
{
    *stock = f ? f->stock : 0;
    *negative = f ? f->negative : 0;
}

/* FNV-1a over sku, a separator and location. */
static opsfeed__slot *opsfeed__slot_of(rec_opsfeed *f, const char *sku, const char *location)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = sku; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0x1f) * 1099511628211ULL;
    for (const char *p = location; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return &f->slots[h % REC_OPSFEED_SLOTS];
}

/* on_hand < 0 at (sku, location, version): alert unless done for this
 * version already. */
static void opsfeed__negative(rec_opsfeed *f, const char *sku, const char *location,
                              long long on_hand, long long version)
{
    opsfeed__slot *s = opsfeed__slot_of(f, sku, location);
    if (s->version == version && !strcmp(s->sku, sku) && !strcmp(s->location, location))
        return;
    snprintf(s->sku, sizeof s->sku, "%s", sku);
    snprintf(s->location, sizeof s->location, "%s", location);
    s->version = version;
    char msg[3 * SF_STR_MAX];
    snprintf(msg, sizeof msg, "%s at %s: on_hand %lld", sku, location, on_hand);
    sf_ops_alert(f->ops, "negative_stock", msg,
                 json_pack("{s:s, s:s, s:I, s:I}", "sku", sku, "location", location, "on_hand",
                           (json_int_t)on_hand, "version", (json_int_t)version));
    f->negative++;
}

static void opsfeed__send(rec_opsfeed *f, const char *sku, json_t *locs, long long on_hand,
                          long long reserved, long long available)
{
    char topic[SF_STR_MAX + 16];
    snprintf(topic, sizeof topic, "stock.%s", sku);
    sf_ops_send(f->ops, topic,
                json_pack("{s:s, s:o, s:{s:I, s:I, s:I}}", "sku", sku, "locations", locs, "totals",
                          "on_hand", (json_int_t)on_hand, "reserved", (json_int_t)reserved,
                          "available", (json_int_t)available));
    f->stock++;
}

unsigned rec_opsfeed_readers(rec_opsfeed *f)
{
    if (!f)
        return 0;
    return (sf_ops_has_reader(f->ops, "stock.") ? REC_OPSFEED_STOCK : 0) |
           (sf_ops_has_reader(f->ops, "alert.negative_stock") ? REC_OPSFEED_NEGATIVE : 0);
}

sf_status rec_opsfeed_positions(rec_opsfeed *f, unsigned readers, PGconn *conn,
                                const char *skus_literal, sf_error *err)
{
    if (!f || !readers)
        return SF_OK;
    bool stock = readers & REC_OPSFEED_STOCK, negative = readers & REC_OPSFEED_NEGATIVE;
    const char *params[2] = {skus_literal, stock ? "true" : "false"};
    PGresult *res = NULL;
    sf_status st = sf_db_query(conn, OPSFEED_SQL, 2, params, &res, err);
    if (st)
        return st;
    int n = PQntuples(res);
    json_t *locs = NULL;
    long long on_hand = 0, reserved = 0, available = 0;
    for (int i = 0; i < n; i++) {
        const char *sku = PQgetvalue(res, i, 0), *loc = PQgetvalue(res, i, 1);
        long long v[7];
        for (int k = 0; k < 7; k++)
            v[k] = strtoll(PQgetvalue(res, i, 2 + k), NULL, 10);
        if (negative && v[0] < 0)
            opsfeed__negative(f, sku, loc, v[0], v[6]);
        if (!stock)
            continue; /* the rows are the negative ones, for the alerts only */
        if (!locs) {
            locs = json_array();
            on_hand = reserved = available = 0;
        }
        json_array_append_new(locs,
                              json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "location", loc,
                                        "on_hand", (json_int_t)v[0], "reserved", (json_int_t)v[1],
                                        "available", (json_int_t)v[5], "inbound", (json_int_t)v[2],
                                        "damaged", (json_int_t)v[3], "safety_stock",
                                        (json_int_t)v[4], "version", (json_int_t)v[6]));
        on_hand += v[0];
        reserved += v[1];
        available += v[5];
        if (i + 1 == n || strcmp(sku, PQgetvalue(res, i + 1, 0))) {
            opsfeed__send(f, sku, locs, on_hand, reserved, available); /* takes locs */
            locs = NULL;
        }
    }
    PQclear(res);
    return SF_OK;
}
