/*
 * invctl location / channel: the channel model (DESIGN.md "Reconciler").
 * Every change that moves a channel's availability (safety stock, buffer,
 * locations) marks the affected skus dirty in the same transaction, so the
 * reconciler recomputes them.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "db.h"
#include "event.h"

static int chan__run(const sf_config *cfg, const char *what, const char *const *sqls,
                     const int *nparams, const char *const *params, size_t nsql)
{
    sf_error err;
    sf_error_clear(&err);
    PGconn *pg = NULL;
    PGresult *res = NULL;
    int rc = 1;
    if (sf_db_connect(cfg->pg.dsn, &pg, &err) || sf_db_exec(pg, "BEGIN", &err))
        goto out;
    for (size_t i = 0; i < nsql; i++) {
        if (sf_db_query(pg, sqls[i], nparams[i], params, &res, &err))
            goto out;
        PQclear(res);
        res = NULL;
    }
    if (sf_db_exec(pg, "COMMIT", &err))
        goto out;
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "invctl %s: %s\n", what, err.msg);
    if (pg)
        PQfinish(pg);
    return rc;
}

int cmd_location(const sf_config *cfg, int argc, char **argv)
{
    static const struct option longopts[] = {{"safety-stock", required_argument, NULL, 's'},
                                             {NULL, 0, NULL, 0}};
    long long safety = -1;
    int opt;
    optind = 3;
    if (argc < 3 || strcmp(argv[1], "set") != 0 || !sf_is_token(argv[2])) {
        fprintf(stderr, "usage: invctl location set LOC --safety-stock N\n"
                        "(LOC uses only A-Z a-z 0-9 _ -)\n");
        return 2;
    }
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt != 's' || !cmd_parse_i64("--safety-stock", optarg, 0, INT64_MAX / 4, &safety))
            return 2;
    }
    if (safety < 0 || optind != argc) {
        fprintf(stderr, "usage: invctl location set LOC --safety-stock N\n");
        return 2;
    }
    char n[24];
    snprintf(n, sizeof n, "%lld", safety);
    const char *params[] = {argv[2], n};
    const char *sqls[] = {
        "INSERT INTO locations (location, safety_stock) VALUES ($1, $2)"
        " ON CONFLICT (location) DO UPDATE SET safety_stock = excluded.safety_stock",
        "INSERT INTO dirty (sku) SELECT DISTINCT sku FROM positions WHERE location = $1"
        " ORDER BY 1 ON CONFLICT (sku) DO UPDATE SET marked_at = now()"};
    const int np[] = {2, 1};
    int rc = chan__run(cfg, "location set", sqls, np, params, 2);
    if (!rc)
        printf("location %s: safety stock %lld\n", argv[2], safety);
    return rc;
}

static int chan__list(const sf_config *cfg, int json)
{
    sf_error err;
    sf_error_clear(&err);
    PGconn *pg = NULL;
    PGresult *res = NULL;
    if (sf_db_connect(cfg->pg.dsn, &pg, &err) ||
        sf_db_query(pg,
                    "SELECT c.channel, c.buffer,"
                    " COALESCE(string_agg(cl.location, ',' ORDER BY cl.location), '')"
                    " FROM channels c LEFT JOIN channel_locations cl USING (channel)"
                    " GROUP BY c.channel, c.buffer ORDER BY c.channel",
                    0, NULL, &res, &err)) {
        fprintf(stderr, "invctl channel list: %s\n", err.msg);
        if (pg)
            PQfinish(pg);
        return 1;
    }
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        if (!json) {
            printf("%-16s buffer %-6s locations %s\n", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
                   PQgetvalue(res, r, 2));
            continue;
        }
        json_t *locs = json_array();
        char *list = strdup(PQgetvalue(res, r, 2)), *save = NULL;
        for (char *t = list ? strtok_r(list, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(locs, json_string(t));
        free(list);
        json_array_append_new(arr, json_pack("{s:s, s:I, s:o}", "channel", PQgetvalue(res, r, 0),
                                             "buffer",
                                             (json_int_t)strtoll(PQgetvalue(res, r, 1), NULL, 10),
                                             "locations", locs));
    }
    if (json) {
        char *s = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
    }
    json_decref(arr);
    PQclear(res);
    PQfinish(pg);
    return 0;
}

int cmd_channel(const sf_config *cfg, int argc, char **argv)
{
    const char *usage = "usage: invctl channel add|set CH [--buffer N] [--locations L1,L2]\n"
                        "       invctl channel list [--json]\n"
                        "       invctl channel watch CH [--durable NAME] [--json] [--drain]\n";
    static const struct option longopts[] = {{"buffer", required_argument, NULL, 'b'},
                                             {"locations", required_argument, NULL, 'l'},
                                             {"json", no_argument, NULL, 'j'},
                                             {NULL, 0, NULL, 0}};
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *action = argv[1];
    if (!strcmp(action, "watch"))
        return cmd_channel_watch(cfg, argc, argv);
    long long buffer = -1;
    const char *locations = NULL;
    int json = 0, opt;
    int is_list = !strcmp(action, "list");
    optind = is_list ? 2 : 3;
    if (!is_list &&
        (argc < 3 || (strcmp(action, "add") && strcmp(action, "set")) || !sf_is_token(argv[2]))) {
        fputs(usage, stderr);
        return 2;
    }
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b':
            if (!cmd_parse_i64("--buffer", optarg, 0, INT64_MAX / 4, &buffer))
                return 2;
            break;
        case 'l': locations = optarg; break;
        case 'j': json = 1; break;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (is_list)
        return chan__list(cfg, json);
    if (locations) { /* every listed location must be a token */
        char *copy = strdup(locations), *save = NULL;
        int bad = !copy || !*locations;
        for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && !bad;
             t = strtok_r(NULL, ",", &save))
            bad = !sf_is_token(t);
        free(copy);
        if (bad) {
            fprintf(stderr,
                    "invctl channel: --locations: '%s' is not a comma-separated list "
                    "of location ids (A-Z a-z 0-9 _ -)\n",
                    locations);
            return 2;
        }
    }
    int is_add = !strcmp(action, "add");
    char b[24];
    snprintf(b, sizeof b, "%lld", buffer < 0 ? 0 : buffer);
    const char *params[] = {argv[2], b, locations ? locations : ""};
    /* $1 channel, $2 buffer, $3 locations ("" = leave as they are). The skus
     * stocked at the old or new locations are marked dirty. */
    const char *sqls[] = {
        is_add ? "INSERT INTO channels (channel, buffer) VALUES ($1, $2)"
               : (buffer < 0 ? "UPDATE channels SET buffer = buffer WHERE channel = $1 AND $2 = $2"
                             : "UPDATE channels SET buffer = $2 WHERE channel = $1"),
        "INSERT INTO dirty (sku) SELECT DISTINCT p.sku FROM positions p"
        " WHERE p.location IN (SELECT location FROM channel_locations WHERE channel = $1"
        "  UNION SELECT unnest(string_to_array(NULLIF($3, ''), ',')))"
        " AND $2::text IS NOT NULL ORDER BY 1 ON CONFLICT (sku) DO UPDATE SET marked_at = now()",
        "DELETE FROM channel_locations WHERE channel = $1 AND $3 <> '' AND $2::text IS NOT NULL",
        "INSERT INTO channel_locations (channel, location)"
        " SELECT $1, unnest(string_to_array(NULLIF($3, ''), ',')) WHERE $2::text IS NOT NULL"
        " ON CONFLICT DO NOTHING",
        /* set on a channel that does not exist is an error, not a no-op */
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM channels WHERE channel = $1)"
        " THEN sf_raise('no such channel (invctl channel add ' || $1 || ')') END"
        " WHERE $2::text IS NOT NULL AND $3::text IS NOT NULL"};
    const int np[] = {2, 3, 3, 3, 3};
    int rc = chan__run(cfg, is_add ? "channel add" : "channel set", sqls, np, params, 5);
    if (!rc)
        printf("channel %s %s\n", argv[2], is_add ? "added" : "updated");
    return rc;
}
