/*
 * invctl stock: positions of one sku, per location, from PostgreSQL, and
 * per channel: the ats the stock gives now (sf_channel_ats) next to the
 * last value the channel was told (channel_stock, state sent).
 * available = on_hand - reserved - safety_stock(location); inbound is
 * floored at 0 when read (DESIGN.md "Derived").
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "db.h"

static const char STOCK_SQL[] =
    "SELECT p.location, p.on_hand, p.reserved,"
    " p.on_hand - p.reserved - COALESCE(l.safety_stock, 0) AS available,"
    " GREATEST(p.inbound, 0) AS inbound, p.damaged, p.version"
    " FROM positions p LEFT JOIN locations l ON l.location = p.location"
    " WHERE p.sku = $1 AND ($2::text IS NULL OR p.location = $2)"
    " ORDER BY p.location";

static const char CHANNEL_SQL[] =
    "SELECT a.channel, a.ats, COALESCE(l.version, 0), COALESCE(l.ats, -1)"
    " FROM sf_channel_ats(ARRAY[$1::text]) a"
    " LEFT JOIN LATERAL (SELECT s.version, s.ats FROM channel_stock s"
    "  WHERE s.channel = a.channel AND s.sku = a.sku AND s.state = 'sent'"
    "  ORDER BY s.version DESC LIMIT 1) l ON true"
    " ORDER BY 1";

int cmd_stock(const sf_config *cfg, int argc, char **argv)
{
    static const struct option longopts[] = {{"location", required_argument, NULL, 'l'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *location = NULL;
    int json = 0, opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l': location = optarg; break;
        case 'j': json = 1; break;
        case 'h':
            printf("usage: invctl stock SKU [--location L] [--json]\n"
                   "Prints on_hand, reserved, available (after safety stock), inbound and\n"
                   "damaged per location, the totals (--json), and per channel the ats the stock\n"
                   "gives now next to the last value the channel was told. Exit 1 if the sku\n"
                   "has no stock record.\n");
            return 0;
        default: return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: invctl stock SKU [--location L] [--json]\n");
        return 2;
    }
    const char *sku = argv[optind];
    sf_error err;
    sf_error_clear(&err);
    PGconn *pg = NULL;
    PGresult *res = NULL, *chres = NULL;
    const char *params[2] = {sku, location};
    if (sf_db_connect(cfg->pg.dsn, &pg, &err) ||
        sf_db_query(pg, STOCK_SQL, 2, params, &res, &err) ||
        sf_db_query(pg, CHANNEL_SQL, 1, params, &chres, &err)) {
        fprintf(stderr, "invctl stock: %s\n", err.msg);
        PQclear(res);
        if (pg)
            PQfinish(pg);
        return 1;
    }
    int nch = PQntuples(chres);
    int rows = PQntuples(res);
    int rc = 0;
    if (rows == 0) {
        fprintf(stderr, "invctl stock: no stock recorded for sku '%s'%s%s\n", sku,
                location ? " at " : "", location ? location : "");
        rc = 1;
    } else if (json) {
        json_t *locs = json_array();
        long long tot[5] = {0};
        for (int r = 0; r < rows; r++) {
            long long v[5];
            for (int c = 0; c < 5; c++) {
                v[c] = strtoll(PQgetvalue(res, r, c + 1), NULL, 10);
                tot[c] += v[c];
            }
            json_array_append_new(locs, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "location",
                                                  PQgetvalue(res, r, 0), "on_hand",
                                                  (json_int_t)v[0], "reserved", (json_int_t)v[1],
                                                  "available", (json_int_t)v[2], "inbound",
                                                  (json_int_t)v[3], "damaged", (json_int_t)v[4]));
        }
        json_t *chans = json_array();
        for (int r = 0; r < nch; r++) {
            long long told = strtoll(PQgetvalue(chres, r, 3), NULL, 10);
            json_array_append_new(
                chans, json_pack("{s:s, s:I, s:o, s:I}", "channel", PQgetvalue(chres, r, 0), "ats",
                                 (json_int_t)strtoll(PQgetvalue(chres, r, 1), NULL, 10), "told",
                                 told < 0 ? json_null() : json_integer(told), "version",
                                 (json_int_t)strtoll(PQgetvalue(chres, r, 2), NULL, 10)));
        }
        json_t *doc =
            json_pack("{s:s, s:o, s:{s:I, s:I, s:I, s:I, s:I}, s:o}", "sku", sku, "locations", locs,
                      "totals", "on_hand", (json_int_t)tot[0], "reserved", (json_int_t)tot[1],
                      "available", (json_int_t)tot[2], "inbound", (json_int_t)tot[3], "damaged",
                      (json_int_t)tot[4], "channels", chans);
        char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
        json_decref(doc);
    } else {
        printf("%s\n%-16s %9s %9s %9s %9s %9s\n", sku, "location", "on_hand", "reserved",
               "available", "inbound", "damaged");
        for (int r = 0; r < rows; r++)
            printf("%-16s %9s %9s %9s %9s %9s\n", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
                   PQgetvalue(res, r, 2), PQgetvalue(res, r, 3), PQgetvalue(res, r, 4),
                   PQgetvalue(res, r, 5));
        if (nch > 0)
            printf("%-16s %9s %14s\n", "channel", "ats", "told (version)");
        for (int r = 0; r < nch; r++) {
            char told[48] = "-";
            if (strtoll(PQgetvalue(chres, r, 3), NULL, 10) >= 0)
                snprintf(told, sizeof told, "%s (v%s)", PQgetvalue(chres, r, 3),
                         PQgetvalue(chres, r, 2));
            printf("%-16s %9s %14s\n", PQgetvalue(chres, r, 0), PQgetvalue(chres, r, 1), told);
        }
    }
    PQclear(res);
    PQclear(chres);
    PQfinish(pg);
    return rc;
}
