/*
 * invctl supplier-map: their SKU -> ours (supplier_sku_map), the table the
 * supplier feeds map through (DESIGN.md "Supplier adapters").
 *
 * import reads a CSV with the header `supplier,supplier_sku,sku` and an
 * optional fourth column `units_per_pack` (default 1). PostgreSQL's own CSV
 * parser reads it (COPY ... HEADER MATCH) into a temp table, every row is
 * checked there, and the import is all or nothing: one bad row lists every
 * bad row as FILE:LINE: reason and imports none, so a half-applied mapping
 * never turns a feed's SKUs into a mix of old and new.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "db.h"
#include "event.h"

static const char MAP_CHECK_SQL[] =
    "SELECT line + 1, reason FROM ("
    " SELECT line, CASE"
    "  WHEN COALESCE(supplier, '') = '' THEN 'supplier is empty'"
    "  WHEN supplier !~ '^[A-Za-z0-9_-]{1,64}$'"
    "   THEN 'supplier ' || quote_literal(left(supplier, 40)) || ' is not an id"
    " (1..64 of A-Z a-z 0-9 _ -)'"
    "  WHEN COALESCE(supplier_sku, '') = '' THEN 'supplier_sku is empty'"
    "  WHEN octet_length(supplier_sku) > 64 THEN 'supplier_sku is longer than 64 bytes'"
    "  WHEN supplier_sku ~ '[[:cntrl:]]' THEN 'supplier_sku holds a control character'"
    "  WHEN COALESCE(sku, '') = '' THEN 'sku is empty'"
    "  WHEN octet_length(sku) > 64 THEN 'sku is longer than 64 bytes'"
    "  WHEN sku ~ '[[:cntrl:]]' THEN 'sku holds a control character'"
    "  WHEN units_per_pack IS NOT NULL AND units_per_pack !~ '^[0-9]{1,7}$'"
    "   THEN 'units_per_pack ' || quote_literal(left(units_per_pack, 20)) ||"
    " ' is not a whole number 1..9999999'"
    "  WHEN units_per_pack IS NOT NULL AND units_per_pack::bigint < 1"
    "   THEN 'units_per_pack must be at least 1'"
    "  WHEN count(*) OVER (PARTITION BY supplier, supplier_sku) > 1"
    "   THEN 'supplier_sku ' || quote_literal(left(supplier_sku, 40)) ||"
    " ' of ' || supplier || ' appears more than once'"
    "  END AS reason FROM sf_map_import) x"
    " WHERE reason IS NOT NULL ORDER BY line";

static const char MAP_UPSERT_SQL[] =
    "WITH up AS ("
    " INSERT INTO supplier_sku_map AS m (supplier, supplier_sku, sku, units_per_pack)"
    " SELECT supplier, supplier_sku, sku, COALESCE(units_per_pack::bigint, 1)"
    " FROM sf_map_import ORDER BY 1, 2"
    " ON CONFLICT (supplier, supplier_sku) DO UPDATE SET sku = excluded.sku,"
    " units_per_pack = excluded.units_per_pack, updated_at = now()"
    " RETURNING (xmax = 0) AS inserted)"
    " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up";

/* Send the file through COPY; the header decides whether units_per_pack is there. */
static sf_status map__copy(PGconn *pg, FILE *in, const char *path, sf_error *err)
{
    char head[256];
    if (!fgets(head, sizeof head, in))
        return SF_ERR(err, SF_EINVAL, "%s:1: empty file (expected a header line)", path);
    head[strcspn(head, "\r\n")] = '\0';
    const char *cols = NULL;
    if (!strcmp(head, "supplier,supplier_sku,sku"))
        cols = "supplier, supplier_sku, sku";
    else if (!strcmp(head, "supplier,supplier_sku,sku,units_per_pack"))
        cols = "supplier, supplier_sku, sku, units_per_pack";
    else
        return SF_ERR(err, SF_EINVAL,
                      "%s:1: header must be supplier,supplier_sku,sku[,units_per_pack]", path);
    char sql[256];
    /* The header goes through COPY too, so PostgreSQL's line numbers are the file's. */
    snprintf(sql, sizeof sql, "COPY sf_map_import (%s) FROM STDIN WITH (FORMAT csv, HEADER true)",
             cols);
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        sf_status st = sf_db_fail(pg, res, "COPY sf_map_import", err);
        PQclear(res);
        return st;
    }
    PQclear(res);
    char buf[65536];
    size_t n;
    int ok = PQputCopyData(pg, head, (int)strlen(head)) == 1 && PQputCopyData(pg, "\n", 1) == 1;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = PQputCopyData(pg, buf, (int)n) == 1;
    if (!ok || ferror(in))
        PQputCopyEnd(pg, "client read error");
    else
        PQputCopyEnd(pg, NULL);
    sf_status st = SF_OK;
    while ((res = PQgetResult(pg))) {
        if (!st && PQresultStatus(res) != PGRES_COMMAND_OK) {
            const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
            const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            st = SF_ERR(err, SF_EINVAL, "%s: %s (%s)", path, msg ? msg : "COPY failed",
                        ctx ? ctx : "no position");
        }
        PQclear(res);
    }
    return st;
}

static int map__import(const sf_config *cfg, const char *path)
{
    sf_error err;
    sf_error_clear(&err);
    FILE *in = fopen(path, "rb");
    if (!in) {
        fprintf(stderr, "invctl supplier-map import: %s: %s\n", path, strerror(errno));
        return 1;
    }
    PGconn *pg = NULL;
    PGresult *res = NULL;
    int rc = 1;
    if (sf_db_connect(cfg->pg.dsn, &pg, &err) || sf_db_exec(pg, "BEGIN", &err) ||
        sf_db_exec(pg,
                   "CREATE TEMP TABLE sf_map_import (line bigserial, supplier text,"
                   " supplier_sku text, sku text, units_per_pack text) ON COMMIT DROP",
                   &err) ||
        map__copy(pg, in, path, &err) || sf_db_query(pg, MAP_CHECK_SQL, 0, NULL, &res, &err))
        goto out;
    if (PQntuples(res) > 0) {
        for (int i = 0; i < PQntuples(res); i++)
            fprintf(stderr, "%s:%s: %s\n", path, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
        fprintf(stderr, "invctl supplier-map import: %d bad rows; nothing imported\n",
                PQntuples(res));
        goto out;
    }
    PQclear(res);
    res = NULL;
    if (sf_db_query(pg, MAP_UPSERT_SQL, 0, NULL, &res, &err) || sf_db_exec(pg, "COMMIT", &err))
        goto out;
    printf("%s: %s new, %s updated mappings\n", path, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    rc = 0;
out:
    if (err.status)
        fprintf(stderr, "invctl supplier-map import: %s\n", err.msg);
    PQclear(res);
    if (pg)
        PQfinish(pg);
    fclose(in);
    return rc;
}

static int map__list(const sf_config *cfg, const char *supplier, int json)
{
    sf_error err;
    PGconn *pg = NULL;
    PGresult *res = NULL;
    const char *params[1] = {supplier};
    int rc = 1;
    if (sf_db_connect(cfg->pg.dsn, &pg, &err) ||
        sf_db_query(pg,
                    "SELECT supplier, supplier_sku, sku, units_per_pack FROM supplier_sku_map"
                    " WHERE $1::text IS NULL OR supplier = $1 ORDER BY 1, 2",
                    1, params, &res, &err)) {
        fprintf(stderr, "invctl supplier-map list: %s\n", err.msg);
        goto out;
    }
    if (json) {
        json_t *arr = json_array();
        for (int i = 0; arr && i < PQntuples(res); i++)
            json_array_append_new(
                arr,
                json_pack("{s:s, s:s, s:s, s:I}", "supplier", PQgetvalue(res, i, 0), "supplier_sku",
                          PQgetvalue(res, i, 1), "sku", PQgetvalue(res, i, 2), "units_per_pack",
                          (json_int_t)strtoll(PQgetvalue(res, i, 3), NULL, 10)));
        char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
        if (!s) {
            fprintf(stderr, "invctl supplier-map list: out of memory\n");
            json_decref(arr);
            goto out;
        }
        printf("%s\n", s);
        free(s);
        json_decref(arr);
    } else {
        printf("%-16s %-24s %-24s %s\n", "SUPPLIER", "SUPPLIER_SKU", "SKU", "UNITS/PACK");
        for (int i = 0; i < PQntuples(res); i++)
            printf("%-16s %-24s %-24s %s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                   PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
    }
    rc = 0;
out:
    PQclear(res);
    if (pg)
        PQfinish(pg);
    return rc;
}

int cmd_supplier_map(const sf_config *cfg, int argc, char **argv)
{
    static const char usage[] = "usage: invctl supplier-map import FILE.csv\n"
                                "       invctl supplier-map list [--supplier ID] [--json]\n"
                                "FILE.csv: header supplier,supplier_sku,sku[,units_per_pack]\n";
    if (argc >= 2 && !strcmp(argv[1], "import")) {
        if (argc != 3) {
            fputs(usage, stderr);
            return 2;
        }
        return map__import(cfg, argv[2]);
    }
    if (argc >= 2 && !strcmp(argv[1], "list")) {
        static const struct option longopts[] = {{"supplier", required_argument, NULL, 's'},
                                                 {"json", no_argument, NULL, 'j'},
                                                 {NULL, 0, NULL, 0}};
        const char *supplier = NULL;
        int json = 0, opt;
        optind = 2;
        while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
            if (opt == 's')
                supplier = optarg;
            else if (opt == 'j')
                json = 1;
            else {
                fputs(usage, stderr);
                return 2;
            }
        }
        if (optind != argc) {
            fputs(usage, stderr);
            return 2;
        }
        return map__list(cfg, supplier, json);
    }
    fputs(usage, stderr);
    return 2;
}
