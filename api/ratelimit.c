/*
 * ratelimit: token buckets per key in one open-addressing table (see
 * ratelimit.h). Buckets are refilled lazily, on the key's next request:
 * tokens = min(burst, tokens + elapsed * rate).
 */
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct rl__bucket {
    char key[API_RATELIMIT_KEY_MAX + 1]; /* "" = free */
    double tokens;
    int64_t last_us;
} rl__bucket;

struct api_ratelimit {
    pthread_mutex_t mu;
    double rate, burst;
    rl__bucket slot[API_RATELIMIT_SLOTS];
};

sf_status api_ratelimit_new(double rate, double burst, api_ratelimit **out, sf_error *err)
{
    *out = NULL;
    if (!(rate > 0) || !(burst >= 1))
        return SF_ERR(err, SF_EINVAL, "rate limit: rate %g must be > 0 and burst %g >= 1", rate,
                      burst);
    api_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    pthread_mutex_init(&rl->mu, NULL);
    rl->rate = rate;
    rl->burst = burst;
    *out = rl;
    return SF_OK;
}

void api_ratelimit_free(api_ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

static uint64_t rl__hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* The bucket of key: its own, else a free slot, else the one idle longest
 * (reset full). Called with mu held. */
static rl__bucket *rl__find(api_ratelimit *rl, const char *key, size_t n)
{
    size_t at = (size_t)(rl__hash(key, n) % API_RATELIMIT_SLOTS);
    rl__bucket *oldest = NULL;
    for (size_t probe = 0; probe < API_RATELIMIT_SLOTS; probe++) {
        rl__bucket *b = &rl->slot[(at + probe) % API_RATELIMIT_SLOTS];
        if (b->key[0] == '\0') {
            oldest = b;
            break;
        }
        if (strncmp(b->key, key, n) == 0 && b->key[n] == '\0')
            return b;
        if (!oldest || b->last_us < oldest->last_us)
            oldest = b;
    }
    memcpy(oldest->key, key, n);
    oldest->key[n] = '\0';
    oldest->tokens = rl->burst;
    oldest->last_us = 0;
    return oldest;
}

bool api_ratelimit_take(api_ratelimit *rl, const char *key, int64_t now_us, int *retry_after_s)
{
    size_t n = strnlen(key, API_RATELIMIT_KEY_MAX);
    if (n == 0)
        key = "-", n = 1;
    pthread_mutex_lock(&rl->mu);
    rl__bucket *b = rl__find(rl, key, n);
    if (b->last_us != 0 && now_us > b->last_us) {
        b->tokens += (double)(now_us - b->last_us) / 1e6 * rl->rate;
        if (b->tokens > rl->burst)
            b->tokens = rl->burst;
    }
    if (now_us > b->last_us)
        b->last_us = now_us;
    bool ok = b->tokens >= 1.0;
    if (ok)
        b->tokens -= 1.0;
    else
        *retry_after_s = (int)ceil((1.0 - b->tokens) / rl->rate);
    pthread_mutex_unlock(&rl->mu);
    if (!ok && *retry_after_s < 1)
        *retry_after_s = 1;
    return ok;
}
