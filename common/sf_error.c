/*
 * sf_error: formatting of error records. Messages are truncated to
 * SF_ERROR_MSG_MAX rather than allocated, so setting an error never fails.
 */
#include "sf_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sf_error_clear(sf_error *err)
{
    if (!err)
        return;
    err->status = SF_OK;
    err->msg[0] = '\0';
    err->file = NULL;
    err->line = 0;
}

sf_status sf_error_set(sf_error *err, sf_status status, const char *file, int line, const char *fmt,
                       ...)
{
    if (!err)
        return status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->status = status;
    err->file = file;
    err->line = line;
    return status;
}

void sf_error_prefix(sf_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[SF_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t plen = (size_t)n < sizeof prefix ? (size_t)n : sizeof prefix - 1;
    size_t mlen = strnlen(err->msg, sizeof err->msg - 1);
    if (plen > sizeof err->msg - 1)
        plen = sizeof err->msg - 1;
    if (mlen > sizeof err->msg - 1 - plen)
        mlen = sizeof err->msg - 1 - plen; /* keep the prefix, cut the tail */
    memmove(err->msg + plen, err->msg, mlen);
    memcpy(err->msg, prefix, plen);
    err->msg[plen + mlen] = '\0';
}

const char *sf_status_str(sf_status status)
{
    switch (status) {
    case SF_OK: return "ok";
    case SF_EINVAL: return "invalid";
    case SF_ENOMEM: return "out of memory";
    case SF_EIO: return "i/o error";
    case SF_EUNAVAIL: return "unavailable";
    case SF_ETIMEOUT: return "timeout";
    case SF_EDUP: return "duplicate";
    case SF_ENOTFOUND: return "not found";
    case SF_EINTERNAL: return "internal error";
    case SF_EDENIED: return "permission denied";
    }
    return "unknown";
}
