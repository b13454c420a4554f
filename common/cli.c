/*
 * cli: shared start-up of every binary. Only main() calls these; nothing
 * below main reads the environment (sf_config_apply_env is handed getenv).
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "event.h"

volatile sig_atomic_t sf_shutdown = 0;

static void cli__on_signal(int sig)
{
    (void)sig;
    sf_shutdown = 1;
}

void sf_cli_handle_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cli__on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int sf_cli_load_config(const char *prog, const char *path, sf_config *cfg)
{
    sf_error err;
    sf_error_clear(&err);
    sf_config_init(cfg);
    if (path && sf_config_load(cfg, path, &err) != SF_OK) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        return 2;
    }
    if (sf_config_apply_env(cfg, sf_config_getenv, &err) != SF_OK) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        return 2;
    }
    return 0;
}

int64_t sf_cli_now_ms(const sf_config *cfg)
{
    return cfg->now_ms_override > 0 ? cfg->now_ms_override : sf_now_ms();
}
