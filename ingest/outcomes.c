/*
 * outcomes: a mutex + condition variable around a growable array. Growth
 * failure is the only way to lose an outcome, so it is fatal by design: the
 * process aborts rather than dropping an acknowledgement silently.
 */
#include "outcomes.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ingest_outcomes {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ingest_outcome *items;
    size_t len, cap;
};

sf_status ingest_outcomes_new(ingest_outcomes **out, sf_error *err)
{
    ingest_outcomes *q = calloc(1, sizeof *q);
    if (!q)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    *out = q;
    return SF_OK;
}

void ingest_outcomes_free(ingest_outcomes *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->items);
    free(q);
}

void ingest_outcomes_cb(void *closure, void *token, const sf_pub_result *res)
{
    ingest_outcomes *q = closure;
    pthread_mutex_lock(&q->mu);
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 1024;
        ingest_outcome *ni = realloc(q->items, cap * sizeof *ni);
        if (!ni) {
            fprintf(stderr, "inv-ingest: out of memory queueing a publish outcome\n");
            abort();
        }
        q->items = ni;
        q->cap = cap;
    }
    ingest_outcome *o = &q->items[q->len++];
    o->token = token;
    o->status = res->status;
    o->seq = res->seq;
    snprintf(o->error, sizeof o->error, "%s", res->error ? res->error : "");
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

size_t ingest_outcomes_take(ingest_outcomes *q, ingest_outcome *out, size_t cap, int wait_ms)
{
    pthread_mutex_lock(&q->mu);
    if (q->len == 0 && wait_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&q->cv, &q->mu, &ts);
    }
    size_t n = q->len < cap ? q->len : cap;
    if (n > 0) {
        memcpy(out, q->items, n * sizeof *out);
        memmove(q->items, q->items + n, (q->len - n) * sizeof *out);
        q->len -= n;
    }
    pthread_mutex_unlock(&q->mu);
    return n;
}
