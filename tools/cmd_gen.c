/*
 * invctl gen: a deterministic mixed workload as JSON lines (common/workload).
 * The same options always give the same bytes, so tests and benchmarks can
 * regenerate their input instead of storing it.
 */
#include <getopt.h>
#include <stdio.h>

#include "cmd.h"
#include "workload.h"

int cmd_gen(const sf_config *cfg, int argc, char **argv)
{
    (void)cfg;
    static const struct option longopts[] = {{"seed", required_argument, NULL, 's'},
                                             {"events", required_argument, NULL, 'e'},
                                             {"skus", required_argument, NULL, 'k'},
                                             {"locations", required_argument, NULL, 'l'},
                                             {"expiring", no_argument, NULL, 'x'},
                                             {"out", required_argument, NULL, 'o'},
                                             {"base-ms", required_argument, NULL, 'b'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    sf_workload_opts wo;
    sf_workload_opts_init(&wo);
    const char *out_path = NULL;
    long long v;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            if (!cmd_parse_i64("--seed", optarg, 0, INT64_MAX, &v))
                return 2;
            wo.seed = (uint64_t)v;
            break;
        case 'e':
            if (!cmd_parse_i64("--events", optarg, 0, 1000000000LL, &v))
                return 2;
            wo.events = (uint64_t)v;
            break;
        case 'k':
            if (!cmd_parse_i64("--skus", optarg, 1, SF_WORKLOAD_MAX_SKUS, &v))
                return 2;
            wo.skus = (unsigned)v;
            break;
        case 'l':
            if (!cmd_parse_i64("--locations", optarg, 1, SF_WORKLOAD_MAX_LOCATIONS, &v))
                return 2;
            wo.locations = (unsigned)v;
            break;
        case 'b':
            if (!cmd_parse_i64("--base-ms", optarg, 0, INT64_MAX, &v))
                return 2;
            wo.base_ms = v;
            break;
        case 'x': wo.expiring = true; break;
        case 'o': out_path = optarg; break;
        case 'h':
            printf("usage: invctl gen --seed N --events N [--skus N] [--locations N] [--expiring]\n"
                   "                  [--base-ms MS] [--out FILE]\n"
                   "Writes a deterministic mixed workload (all ten kinds, late events, ~2%%\n"
                   "re-sent duplicates, counts, reservations) as JSON lines to FILE or stdout.\n");
            return 0;
        default: return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "invctl gen: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    FILE *out = stdout;
    if (out_path && !(out = fopen(out_path, "w"))) {
        perror(out_path);
        return 1;
    }
    sf_error err;
    sf_error_clear(&err);
    sf_status st = sf_workload_write(&wo, out, &err);
    int rc = 0;
    if (out != stdout && fclose(out) != 0)
        rc = 1;
    else if (out == stdout && fflush(out) != 0)
        rc = 1;
    if (st) {
        fprintf(stderr, "invctl gen: %s\n", err.msg);
        rc = 1;
    }
    return rc;
}
