/*
 * fuzz_check: invariants shared by the fuzz targets. Each abort()s, which
 * libFuzzer reports as a crash with the input kept.
 */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

/* A string field of the event contract in a buffer of cap bytes:
 * NUL-terminated, at most SF_STR_MAX bytes, no C0 control character or
 * DEL; a token if token (and not empty); not empty if required. */
static inline void fz_check_field(const char *s, size_t cap, bool token, bool required)
{
    size_t n = strnlen(s, cap);
    if (n == cap || n > SF_STR_MAX || (required && n == 0))
        abort();
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            abort();
    }
    if (token && n > 0 && !sf_is_token(s))
        abort();
}

#endif
