/*
 * tmp_ini: a config loaded from INI text through a real file, for unit
 * tests of modules that read sf_config (messages cite "path:line", so the
 * text has to come from a file). The file is removed once loaded; its name
 * stays in path for the expected messages.
 */
#ifndef SF_TEST_TMP_INI_H
#define SF_TEST_TMP_INI_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define TMP_INI_PATH_MAX 32

/* sf_config_init(cfg), then ini (NULL: nothing) loaded over it. */
static inline void tmp_ini_load(sf_config *cfg, const char *ini, char path[TMP_INI_PATH_MAX])
{
    sf_config_init(cfg);
    snprintf(path, TMP_INI_PATH_MAX, "/tmp/sf-test-ini-XXXXXX");
    if (!ini)
        return;
    int fd = mkstemp(path);
    cr_assert(fd >= 0, "mkstemp failed");
    cr_assert(write(fd, ini, strlen(ini)) == (ssize_t)strlen(ini));
    close(fd);
    sf_error err;
    cr_assert(sf_config_load(cfg, path, &err) == SF_OK, "%s", err.msg);
    unlink(path);
}

/* configure(cfg of ini, section) refuses with "<path>:<msg>" and leaves
 * its options NULL (an adapter's configure, suppliers/adapter.h). */
typedef sf_status (*tmp_ini_configure_fn)(const sf_config *cfg, const char *section, void **opts,
                                          sf_error *err);
static inline void tmp_ini_refused(tmp_ini_configure_fn configure, const char *section,
                                   const char *ini, const char *msg)
{
    sf_config cfg;
    char path[TMP_INI_PATH_MAX], want[512];
    tmp_ini_load(&cfg, ini, path);
    void *opts = (void *)1;
    sf_error err;
    cr_assert(configure(&cfg, section, &opts, &err) == SF_EINVAL, "accepted: %s", ini);
    cr_assert(opts == NULL);
    snprintf(want, sizeof want, "%s:%s", path, msg);
    cr_assert(strcmp(err.msg, want) == 0, "\n  got:  %s\n  want: %s", err.msg, want);
    sf_config_free(&cfg);
}

#endif
