/*
 * invctl subcommands. Each takes the loaded configuration and its own
 * argv (argv[0] is the subcommand name) and returns the exit status:
 * 0 ok, 1 runtime failure, 2 usage error.
 */
#ifndef INVCTL_CMD_H
#define INVCTL_CMD_H

#include <stdio.h>

#include "config.h"

int cmd_setup(const sf_config *cfg, int argc, char **argv);
int cmd_stock(const sf_config *cfg, int argc, char **argv);
int cmd_gen(const sf_config *cfg, int argc, char **argv);
int cmd_status(const sf_config *cfg, int argc, char **argv);
int cmd_dlq(const sf_config *cfg, int argc, char **argv);
int cmd_location(const sf_config *cfg, int argc, char **argv);
int cmd_channel(const sf_config *cfg, int argc, char **argv);
int cmd_channel_watch(const sf_config *cfg, int argc, char **argv);
int cmd_supplier_map(const sf_config *cfg, int argc, char **argv);
int cmd_reservations(const sf_config *cfg, int argc, char **argv);
int cmd_apikey(const sf_config *cfg, int argc, char **argv);
int cmd_ops(const sf_config *cfg, int argc, char **argv);

/* Parse a whole decimal int64 in [min, max]; prints "invctl: OPT: ..." and
 * returns 0 on failure. */
int cmd_parse_i64(const char *opt, const char *s, long long min, long long max, long long *out);

#endif
