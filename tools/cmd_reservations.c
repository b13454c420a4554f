/*
 * invctl reservations list: the reservations table (DESIGN.md "Stock
 * semantics"), one line per (ref, sku, location): reserved, released, sold,
 * outstanding, expires_at and whether it has expired (expires_at passed
 * with something still outstanding: the reconciler's next pass releases
 * it). The clock is INV_NOW_MS when set, as for the reconciler.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "db.h"
#include "event_parse.h"

/* "90s", "30m", "2h", "7d" -> milliseconds; -1 if malformed. */
static int64_t resv__duration(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 0 || v > 100000000 || end[0] == '\0' || end[1] != '\0')
        return -1;
    switch (*end) {
    case 's': return v * 1000;
    case 'm': return v * 60 * 1000;
    case 'h': return v * 3600 * 1000;
    case 'd': return v * 86400 * 1000;
    default: return -1;
    }
}

int cmd_reservations(const sf_config *cfg, int argc, char **argv)
{
    static const char usage[] =
        "usage: invctl reservations list [--sku S] [--ref R] [--expired] [--older-than D]"
        " [--json] [--limit N]\n"
        "  --expired       only reservations past expires_at with something outstanding\n"
        "  --older-than D  only those last changed more than D ago (90s, 30m, 2h, 7d)\n";
    static const struct option longopts[] = {{"sku", required_argument, NULL, 's'},
                                             {"ref", required_argument, NULL, 'r'},
                                             {"expired", no_argument, NULL, 'e'},
                                             {"older-than", required_argument, NULL, 'o'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"limit", required_argument, NULL, 'l'},
                                             {NULL, 0, NULL, 0}};
    if (argc < 2 || strcmp(argv[1], "list")) {
        fputs(usage, stderr);
        return 2;
    }
    const char *sku = NULL, *ref = NULL;
    int expired = 0, json = 0, opt;
    int64_t older = -1;
    long long limit = 1000;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 's': sku = optarg; break;
        case 'r': ref = optarg; break;
        case 'e': expired = 1; break;
        case 'o':
            if ((older = resv__duration(optarg)) < 0) {
                fprintf(stderr,
                        "invctl reservations: --older-than: '%s' is not like 90s, 30m, "
                        "2h or 7d\n",
                        optarg);
                return 2;
            }
            break;
        case 'j': json = 1; break;
        case 'l':
            if (!cmd_parse_i64("--limit", optarg, 1, 1000000, &limit))
                return 2;
            break;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    char now[24], older_s[24], lim[24];
    snprintf(now, sizeof now, "%" PRId64, sf_cli_now_ms(cfg));
    snprintf(older_s, sizeof older_s, "%" PRId64, older);
    snprintf(lim, sizeof lim, "%lld", limit);
    const char *params[6] = {sku, ref, expired ? "1" : "0", now, older_s, lim};
    sf_error err;
    PGconn *pg = NULL;
    PGresult *res = NULL;
    int rc = 1;
    if (sf_db_connect(cfg->pg.dsn, &pg, &err) ||
        sf_db_query(
            pg,
            "SELECT ref, sku, location, reserved, released, sold, outstanding,"
            " COALESCE(expires_at, -1), never_expires,"
            " (expires_at <= $4::bigint AND outstanding > 0 AND NOT never_expires) AS expired,"
            " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            " FROM reservations"
            " WHERE ($1::text IS NULL OR sku = $1) AND ($2::text IS NULL OR ref = $2)"
            " AND ($3 = '0' OR (expires_at <= $4::bigint AND outstanding > 0"
            "      AND NOT never_expires))"
            " AND ($5::bigint < 0 OR updated_at < to_timestamp(($4::bigint - $5::bigint)"
            "      / 1000.0))"
            " ORDER BY sku, location, ref LIMIT $6::bigint",
            6, params, &res, &err)) {
        fprintf(stderr, "invctl reservations list: %s\n", err.msg);
        goto out;
    }
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("%-24s %-20s %-12s %8s %8s %8s %11s  %-24s %s\n", "REF", "SKU", "LOCATION",
               "RESERVED", "RELEASED", "SOLD", "OUTSTANDING", "EXPIRES_AT", "STATE");
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t exp = strtoll(PQgetvalue(res, i, 7), NULL, 10);
        char when[40] = "never";
        if (exp >= 0 && !sf_time_format_rfc3339(exp, when, sizeof when))
            snprintf(when, sizeof when, "%" PRId64, exp);
        int never = PQgetvalue(res, i, 8)[0] == 't';
        if (never)
            snprintf(when, sizeof when, "never");
        int is_exp = PQgetvalue(res, i, 9)[0] == 't';
        const char *state = is_exp                             ? "expired"
                            : atoll(PQgetvalue(res, i, 6)) > 0 ? "open"
                                                               : "closed";
        if (json) {
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:b, s:s}", "ref",
                               PQgetvalue(res, i, 0), "sku", PQgetvalue(res, i, 1), "location",
                               PQgetvalue(res, i, 2), "reserved",
                               (json_int_t)atoll(PQgetvalue(res, i, 3)), "released",
                               (json_int_t)atoll(PQgetvalue(res, i, 4)), "sold",
                               (json_int_t)atoll(PQgetvalue(res, i, 5)), "outstanding",
                               (json_int_t)atoll(PQgetvalue(res, i, 6)), "expires_at", when,
                               "expired", is_exp, "updated_at", PQgetvalue(res, i, 10)));
        } else {
            printf("%-24s %-20s %-12s %8s %8s %8s %11s  %-24s %s\n", PQgetvalue(res, i, 0),
                   PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                   PQgetvalue(res, i, 4), PQgetvalue(res, i, 5), PQgetvalue(res, i, 6), when,
                   state);
        }
    }
    if (json) {
        char *t = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
        if (!t) {
            fprintf(stderr, "invctl reservations list: out of memory\n");
            json_decref(arr);
            goto out;
        }
        printf("%s\n", t);
        free(t);
        json_decref(arr);
    }
    rc = 0;
out:
    PQclear(res);
    if (pg)
        PQfinish(pg);
    return rc;
}
