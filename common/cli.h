/*
 * cli: what every binary's main does the same way: the version string, the
 * signal-driven shutdown flag (the one global, STYLE rule 4), loading the
 * configuration (file, then environment overrides) and the clock override.
 */
#ifndef SF_CLI_H
#define SF_CLI_H

#include <signal.h>
#include <stdint.h>

#include "config.h"

#define SF_VERSION "0.1.0"

/* Set by SIGINT/SIGTERM once sf_cli_handle_signals has run. */
extern volatile sig_atomic_t sf_shutdown;

/* Install SIGINT/SIGTERM handlers that set sf_shutdown; ignore SIGPIPE. */
void sf_cli_handle_signals(void);

/* sf_config_init, then the file (when path is non-NULL), then the INV_*
 * environment. On failure prints "<prog>: <error>" to stderr and returns 1
 * (runtime failure) or 2 (usage: a bad file); 0 on success. */
int sf_cli_load_config(const char *prog, const char *path, sf_config *cfg);

/* Now in epoch ms: the INV_NOW_MS override when set, else the real clock. */
int64_t sf_cli_now_ms(const sf_config *cfg);

#endif
