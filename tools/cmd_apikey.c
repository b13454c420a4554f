/*
 * invctl apikey add | list | revoke: the API keys of table api_keys
 * (common/apikey.h has the format). `add` prints the full key once, on
 * stdout, and stores only its salt and hash; nothing can show it again.
 * `add --ini` stores nothing and prints the key and an [apikey.<name>]
 * section for the config file instead. `list` never prints a secret, a
 * salt or a hash. Servers re-read the table every 5 s, so a revocation
 * takes effect within that.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apikey.h"
#include "cmd.h"
#include "db.h"
#include "event.h"

static const char apikey__usage[] =
    "usage: invctl apikey add NAME --scope read|ingest|admin [--ini]\n"
    "       invctl apikey list [--json]\n"
    "       invctl apikey revoke ID|NAME\n"
    "  add     make a key and print it once (sf_<id>_<secret>); only its salted hash is\n"
    "          stored. --ini: store nothing; print the key, then an [apikey.NAME]\n"
    "          section for the config file (the key's id is then NAME)\n"
    "  list    id, name, scope, created_at, revoked_at of every key (no secrets)\n"
    "  revoke  revoke the key with that id, else the active key with that name;\n"
    "          servers refuse it within 5 s\n"
    "Scopes: read (stock queries, /metrics), ingest (HTTP ingest), admin (all).\n";

static int apikey__add(const sf_config *cfg, int argc, char **argv)
{
    static const struct option longopts[] = {{"scope", required_argument, NULL, 's'},
                                             {"ini", no_argument, NULL, 'i'},
                                             {NULL, 0, NULL, 0}};
    const char *scope_name = NULL;
    int ini = 0, opt;
    optind = 3;
    if (argc < 3 || argv[2][0] == '-') {
        fputs(apikey__usage, stderr);
        return 2;
    }
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 's': scope_name = optarg; break;
        case 'i': ini = 1; break;
        default: fputs(apikey__usage, stderr); return 2;
        }
    }
    const char *name = argv[2];
    sf_apikey_scope scope;
    sf_error err;
    sf_error_clear(&err);
    if (optind != argc || !scope_name) {
        fputs(apikey__usage, stderr);
        return 2;
    }
    if (!sf_is_token(name) || strlen(name) > SF_APIKEY_ID_MAX) {
        fprintf(stderr, "invctl apikey add: NAME '%s' must be 1..%d of A-Z a-z 0-9 _ -\n", name,
                SF_APIKEY_ID_MAX);
        return 2;
    }
    if (sf_apikey_scope_parse(scope_name, &scope, &err)) {
        fprintf(stderr, "invctl apikey add: --scope: %s\n", err.msg);
        return 2;
    }
    sf_apikey_new k;
    if (sf_apikey_generate(ini ? name : NULL, &k, &err)) {
        fprintf(stderr, "invctl apikey add: %s\n", err.msg);
        return 1;
    }
    char salt[2 * SF_APIKEY_SALT_LEN + 1], hash[2 * SF_APIKEY_HASH_LEN + 1];
    sf_apikey_hex(k.salt, sizeof k.salt, salt);
    sf_apikey_hex(k.hash, sizeof k.hash, hash);
    if (ini) {
        printf("%s\n\n[apikey.%s]\nscope = %s\nsalt = %s\nhash = %s\n", k.key, name,
               sf_apikey_scope_name(scope), salt, hash);
        fprintf(stderr,
                "invctl apikey add: the first line is the key, shown once; put the "
                "[apikey.%s] section in the config file of inv-api\n",
                name);
        memset(&k, 0, sizeof k);
        return 0;
    }

    PGconn *pg = NULL;
    PGresult *res = NULL;
    int rc = 1;
    const char *params[] = {k.id, name, sf_apikey_scope_name(scope), salt, hash};
    if (sf_db_connect(cfg->pg.dsn, &pg, &err))
        goto out;
    if (sf_db_query(pg,
                    "INSERT INTO api_keys (id, name, scope, salt, hash)"
                    " SELECT $1, $2, $3, decode($4, 'hex'), decode($5, 'hex')"
                    " WHERE NOT EXISTS (SELECT 1 FROM api_keys"
                    "  WHERE name = $2 AND revoked_at IS NULL)",
                    5, params, &res, &err))
        goto out;
    if (strcmp(PQcmdTuples(res), "1") != 0) {
        SF_ERR(&err, SF_EDUP, "an active key named '%s' exists; revoke it first", name);
        goto out;
    }
    printf("%s\n", k.key);
    fprintf(stderr, "invctl apikey add: key %s (%s, scope %s) added; it is shown once, above\n",
            k.id, name, sf_apikey_scope_name(scope));
    rc = 0;
out:
    memset(&k, 0, sizeof k);
    if (rc)
        fprintf(stderr, "invctl apikey add: %s\n", err.msg);
    PQclear(res);
    if (pg)
        PQfinish(pg);
    return rc;
}

static int apikey__list(const sf_config *cfg, int argc, char **argv)
{
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
    int json = 0, opt;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt != 'j') {
            fputs(apikey__usage, stderr);
            return 2;
        }
        json = 1;
    }
    if (optind != argc) {
        fputs(apikey__usage, stderr);
        return 2;
    }
    sf_error err;
    sf_error_clear(&err);
    PGconn *pg = NULL;
    PGresult *res = NULL;
    if (sf_db_connect(cfg->pg.dsn, &pg, &err) ||
        sf_db_query(pg,
                    "SELECT id, name, scope,"
                    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                    " to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                    " FROM api_keys ORDER BY created_at, id",
                    0, NULL, &res, &err)) {
        fprintf(stderr, "invctl apikey list: %s\n", err.msg);
        if (pg)
            PQfinish(pg);
        return 1;
    }
    json_t *arr = json_array();
    if (!json)
        printf("%-16s %-24s %-7s %-20s %s\n", "id", "name", "scope", "created_at", "revoked_at");
    for (int r = 0; r < PQntuples(res); r++) {
        const char *revoked = PQgetisnull(res, r, 4) ? NULL : PQgetvalue(res, r, 4);
        if (!json) {
            printf("%-16s %-24s %-7s %-20s %s\n", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
                   PQgetvalue(res, r, 2), PQgetvalue(res, r, 3), revoked ? revoked : "-");
            continue;
        }
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:o}", "id",
                                             PQgetvalue(res, r, 0), "name", PQgetvalue(res, r, 1),
                                             "scope", PQgetvalue(res, r, 2), "created_at",
                                             PQgetvalue(res, r, 3), "revoked_at",
                                             revoked ? json_string(revoked) : json_null()));
    }
    if (json) {
        char *s = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s ? s : "[]");
        free(s);
    }
    json_decref(arr);
    PQclear(res);
    PQfinish(pg);
    return 0;
}

static int apikey__revoke(const sf_config *cfg, int argc, char **argv)
{
    if (argc != 3 || argv[2][0] == '-') {
        fputs(apikey__usage, stderr);
        return 2;
    }
    const char *which = argv[2];
    sf_error err;
    sf_error_clear(&err);
    PGconn *pg = NULL;
    PGresult *res = NULL;
    const char *params[] = {which};
    int rc = 1;
    /* An id wins over a name; a name revokes its active key. */
    if (sf_db_connect(cfg->pg.dsn, &pg, &err) ||
        sf_db_query(pg,
                    "UPDATE api_keys SET revoked_at = now() WHERE revoked_at IS NULL"
                    " AND (id = $1 OR (name = $1 AND NOT EXISTS"
                    "  (SELECT 1 FROM api_keys k WHERE k.id = $1)))"
                    " RETURNING id, name",
                    1, params, &res, &err))
        goto out;
    if (PQntuples(res) == 0) {
        PQclear(res);
        res = NULL;
        if (sf_db_query(pg, "SELECT id FROM api_keys WHERE id = $1 OR name = $1", 1, params, &res,
                        &err))
            goto out;
        SF_ERR(&err, SF_ENOTFOUND,
               PQntuples(res) ? "'%s' is already revoked"
                              : "no key with id or name '%s' (invctl apikey list; keys of the "
                                "config file are removed from the file)",
               which);
        goto out;
    }
    printf("revoked %s (%s)\n", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "invctl apikey revoke: %s\n", err.msg);
    PQclear(res);
    if (pg)
        PQfinish(pg);
    return rc;
}

int cmd_apikey(const sf_config *cfg, int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))) {
        fputs(apikey__usage, stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "add"))
        return apikey__add(cfg, argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "list"))
        return apikey__list(cfg, argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "revoke"))
        return apikey__revoke(cfg, argc, argv);
    fputs(apikey__usage, stderr);
    return 2;
}
