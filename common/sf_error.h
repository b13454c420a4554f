/*
 * sf_error: the one status type and error record every fallible call uses.
 *
 * A call returns sf_status (SF_OK = 0) and, on failure, fills the caller's
 * sf_error with a message that names the input (file:line, subject:seq,
 * field) plus the source position that set it. Set errors only through
 * SF_ERR so the position is always recorded. The error is a fixed-size
 * value: no allocation, nothing to free.
 */
#ifndef SF_ERROR_H
#define SF_ERROR_H

#include <stddef.h>

#define SF_MUSTCHECK __attribute__((warn_unused_result))

typedef enum sf_status {
    SF_OK = 0,
    SF_EINVAL,    /* bad input: the data is wrong, retrying cannot help */
    SF_ENOMEM,    /* allocation failed */
    SF_EIO,       /* file or socket error */
    SF_EUNAVAIL,  /* infrastructure down (NATS, PostgreSQL): retry later */
    SF_ETIMEOUT,  /* nothing arrived in time */
    SF_EDUP,      /* duplicate (already known) */
    SF_ENOTFOUND, /* no such thing */
    SF_EINTERNAL, /* a bug or an unexpected library answer */
    SF_EDENIED    /* refused by a permission (NATS user): retrying cannot help */
} sf_status;

#define SF_ERROR_MSG_MAX 512

typedef struct sf_error {
    sf_status status;
    char msg[SF_ERROR_MSG_MAX];
    const char *file; /* source position that set the error */
    int line;
} sf_error;

/* Clear an error record. err may be NULL. */
void sf_error_clear(sf_error *err);

/* Record status and a printf-style message in err (may be NULL); returns
 * status so callers can write `return SF_ERR(err, SF_EINVAL, "...")`. */
sf_status sf_error_set(sf_error *err, sf_status status, const char *file, int line, const char *fmt,
                       ...) __attribute__((format(printf, 5, 6)));

/* Prefix the existing message with context ("file.jsonl:12: "). */
void sf_error_prefix(sf_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A short word for a status ("invalid", "unavailable", ...). */
const char *sf_status_str(sf_status status);

#define SF_ERR(err, status, ...) sf_error_set((err), (status), __FILE__, __LINE__, __VA_ARGS__)

#endif
