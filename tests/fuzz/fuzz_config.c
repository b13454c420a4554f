/*
 * fuzz_config: any bytes as the INI text of --config (common/config.c,
 * inih underneath). sf_config_load reads a path, so each input is written
 * to one private temporary file first (truncated and rewritten per input).
 * Beyond the sanitizers: a load that succeeds leaves every known limit in
 * its documented range and every generic entry NUL-terminated within its
 * size; a load that fails says why, naming the file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz__path[64];

static void fz__cleanup(void)
{
    if (fz__path[0])
        unlink(fz__path);
}

static int fz__write(const uint8_t *data, size_t size)
{
    if (!fz__path[0]) {
        snprintf(fz__path, sizeof fz__path, "/tmp/fuzz_config-XXXXXX");
        int fd = mkstemp(fz__path);
        if (fd < 0)
            abort();
        close(fd);
        atexit(fz__cleanup);
    }
    FILE *fp = fopen(fz__path, "wb");
    if (!fp)
        abort();
    if (size && fwrite(data, 1, size, fp) != size)
        abort();
    return fclose(fp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024 || fz__write(data, size) != 0)
        return 0;
    sf_config cfg;
    sf_config_init(&cfg);
    sf_error err;
    memset(&err, 0, sizeof err);
    sf_status st = sf_config_load(&cfg, fz__path, &err);
    if (st == SF_OK) {
        if (cfg.nats.replicas != 1 && cfg.nats.replicas != 3 && cfg.nats.replicas != 5)
            abort();
        if (cfg.pg.pool < 1 || cfg.consumer.batch < 1 || cfg.ingest.max_line < 1024 ||
            cfg.api.max_batch < 1 || cfg.ingest.max_inflight < 1)
            abort();
        if (cfg.n_entries > SF_CONFIG_ENTRIES_MAX || cfg.n_entries > cfg.cap_entries)
            abort();
        for (size_t i = 0; i < cfg.n_entries; i++) {
            const sf_config_entry *e = &cfg.entries[i];
            if (strnlen(e->value, sizeof e->value) == sizeof e->value ||
                strnlen(e->key, sizeof e->key) == sizeof e->key || e->line < 1 ||
                sf_config_find(&cfg, e->section, e->key) != e)
                abort();
        }
    } else if (err.msg[0] == '\0' || !strstr(err.msg, fz__path)) {
        abort();
    }
    sf_config_free(&cfg);
    return 0;
}
