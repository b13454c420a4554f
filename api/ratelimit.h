/*
 * ratelimit: the request rate per API key of inv-api (issue 8 point 6), a
 * token bucket per key: `burst` tokens at most, refilled at `rate` per
 * second; a request takes one token or is refused with the seconds until
 * the next token (429 with Retry-After).
 *
 * The caller names the bucket by the key's identity, never by its name
 * (server.c: the key id, "apikey.<id>" for a config key), so two keys
 * never share a bucket, and renaming a key or issuing a revoked key's
 * name again cannot hand anyone a fresh one.
 *
 * One table is shared by every serving thread (a key's requests land on
 * any thread), guarded by one mutex held for a hash probe and a few
 * arithmetic operations. Only keys that authenticated reach it, so its
 * size follows the key ring; it still has a fixed capacity
 * (API_RATELIMIT_SLOTS): when full, the bucket idle longest is reused,
 * which can only hand a key a fresh (full) bucket, never refuse a request
 * wrongly.
 */
#ifndef API_RATELIMIT_H
#define API_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "sf_error.h"

#define API_RATELIMIT_SLOTS 4096
#define API_RATELIMIT_KEY_MAX 80 /* "apikey." and a 64-byte id fit */

typedef struct api_ratelimit api_ratelimit;

/* rate: tokens per second (> 0); burst: bucket size (>= 1). */
sf_status api_ratelimit_new(double rate, double burst, api_ratelimit **out,
                            sf_error *err) SF_MUSTCHECK;
void api_ratelimit_free(api_ratelimit *rl); /* NULL is a no-op */

/* Take one token from key's bucket at now_us (a monotonic clock). true
 * when allowed; false with *retry_after_s (>= 1) the whole seconds until a
 * token is back. Keys longer than API_RATELIMIT_KEY_MAX share the bucket
 * of their first API_RATELIMIT_KEY_MAX bytes. */
bool api_ratelimit_take(api_ratelimit *rl, const char *key, int64_t now_us, int *retry_after_s);

#endif
