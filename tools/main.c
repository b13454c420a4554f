/*
 * invctl: the admin CLI. main parses the global options, loads the
 * configuration once and dispatches to one cmd_* function per subcommand
 * (tools/cmd_*.c); subcommands parse their own options.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "log.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: invctl [--config FILE] COMMAND [ARGS]\n"
        "\n"
        "Administers stockflow: streams, database, stock, channels, supplier SKUs, DLQ.\n"
        "\n"
        "Commands:\n"
        "  setup                          create streams, consumer and tables (idempotent)\n"
        "  stock SKU [--location L] [--json]\n"
        "                                 positions: on_hand, reserved, available, inbound, "
        "damaged\n"
        "  gen --seed N --events N [--skus N] [--locations N] [--expiring] [--out FILE]\n"
        "                                 deterministic workload as JSON lines\n"
        "  status [--json]                stream depths, consumer lag, redeliveries, DLQ depth\n"
        "  dlq list [--json] [--limit N]  sidelined messages with their reasons\n"
        "  dlq replay (--seq N | --all)   republish sidelined events to INV_EVENTS\n"
        "  location set LOC --safety-stock N\n"
        "  channel add|set CH [--buffer N] [--locations L1,L2]\n"
        "  channel list [--json]\n"
        "  channel watch CH [--durable NAME] [--json] [--drain]\n"
        "                                 the channel's ChannelStock stream, resumable\n"
        "  supplier-map import FILE.csv   supplier SKUs -> ours (supplier,supplier_sku,sku\n"
        "                                 [,units_per_pack]); all rows or none\n"
        "  supplier-map list [--supplier ID] [--json]\n"
        "  reservations list [--sku S] [--ref R] [--expired] [--older-than D] [--json]\n"
        "                                 per order: reserved, released, sold, outstanding\n"
        "  apikey add NAME --scope read|ingest|admin [--ini]\n"
        "                                 prints the key once (sf_<id>_<secret>), stores a hash\n"
        "  apikey list [--json] | apikey revoke ID|NAME\n"
        "  ops tail [TOPIC] [--count N] [--timeout S]\n"
        "                                 print the ops feed ([ops] sub_endpoint)\n"
        "\n"
        "Options: --config FILE (INI), --help, --version. Environment INV_NATS_URL and\n"
        "INV_PG_DSN override the config. Exit: 0 ok, 1 failure, 2 usage error.\n");
}

int cmd_parse_i64(const char *opt, const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "invctl: %s: '%s' is not a whole number in %lld..%lld\n", opt, s, min, max);
        return 0;
    }
    *out = v;
    return 1;
}

static const struct {
    const char *name;
    int (*fn)(const sf_config *, int, char **);
} COMMANDS[] = {
    {"setup", cmd_setup},
    {"stock", cmd_stock},
    {"gen", cmd_gen},
    {"status", cmd_status},
    {"dlq", cmd_dlq},
    {"location", cmd_location},
    {"channel", cmd_channel},
    {"supplier-map", cmd_supplier_map},
    {"reservations", cmd_reservations},
    {"apikey", cmd_apikey},
    {"ops", cmd_ops},
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("invctl %s\n", SF_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[optind];
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++) {
        if (strcmp(name, COMMANDS[i].name) != 0)
            continue;
        sf_config cfg;
        int rc = sf_cli_load_config("invctl", config_path, &cfg);
        if (rc)
            return rc;
        sf_log_init("invctl", SF_LOG_WARN);
        int sub_argc = argc - optind;
        char **sub_argv = argv + optind;
        optind = 1; /* subcommands run their own getopt over sub_argv */
        rc = COMMANDS[i].fn(&cfg, sub_argc, sub_argv);
        sf_config_free(&cfg);
        return rc;
    }
    fprintf(stderr, "invctl: unknown command '%s'\n", name);
    usage(stderr);
    return 2;
}
