/*
 * invctl setup: JetStream streams and the durable consumer, then the SQL
 * migrations. Both halves are idempotent, so setup may run at every deploy.
 * Migrations are read from schemas/sql beside the installed binary's folder
 * (bin/../schemas/sql) unless --sql-dir says otherwise.
 */
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "cmd.h"
#include "db.h"

/* schemas/sql of the tree the binary was built in: bin/ sits at the root,
 * sanitizer builds at build/<variant>/bin; else ./schemas/sql. */
static void setup__default_sql_dir(char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        const char *dir = dirname(exe);
        static const char *const ups[] = {"/..", "/../../.."};
        for (size_t i = 0; i < sizeof ups / sizeof ups[0]; i++) {
            snprintf(out, size, "%s%s/schemas/sql", dir, ups[i]);
            if (access(out, R_OK | X_OK) == 0)
                return;
        }
    }
    snprintf(out, size, "schemas/sql");
}

int cmd_setup(const sf_config *cfg, int argc, char **argv)
{
    static const struct option longopts[] = {{"sql-dir", required_argument, NULL, 's'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    char sql_dir[PATH_MAX];
    setup__default_sql_dir(sql_dir, sizeof sql_dir);
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 's': snprintf(sql_dir, sizeof sql_dir, "%s", optarg); break;
        case 'h':
            printf("usage: invctl setup [--sql-dir DIR]\n"
                   "Creates or updates streams INV_EVENTS, INV_DLQ, INV_CHANNEL (replicas from\n"
                   "[nats] replicas), the durable consumer stock-applier, and applies the SQL\n"
                   "migrations of DIR (default: schemas/sql next to bin/). Idempotent.\n");
            return 0;
        default: return 2;
        }
    }
    sf_error err;
    sf_error_clear(&err);
    sf_broker *b = NULL;
    PGconn *pg = NULL;
    int rc = 1;
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = cfg->nats.url;
    bo.tls = (sf_broker_tls){cfg->nats.tls_ca, cfg->nats.tls_cert, cfg->nats.tls_key,
                             cfg->nats.tls_required};
    bo.name = "invctl";
    sf_setup_opts so;
    sf_setup_opts_init(&so);
    so.replicas = cfg->nats.replicas;
    so.ack_wait_ms = cfg->nats.ack_wait_ms;
    sf_setup_result res;
    if (sf_broker_connect(&bo, &b, &err) || sf_broker_setup(b, &so, &res, &err))
        goto out;
    for (size_t i = 0; i < res.count; i++)
        printf("%s %s: %s\n", res.items[i].kind, res.items[i].name,
               sf_setup_action_str(res.items[i].action));
    int applied = 0;
    if (sf_db_connect(cfg->pg.dsn, &pg, &err) || sf_db_migrate(pg, sql_dir, &applied, &err))
        goto out;
    printf("migrations: %d applied from %s\n", applied, sql_dir);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "invctl setup: %s\n", err.msg);
    if (pg)
        PQfinish(pg);
    sf_broker_close(b);
    return rc;
}
