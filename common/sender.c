/*
 * sender: one heap item per event in flight holds its encoded bytes, so a
 * failed publish is re-sent byte for byte with the same id. The publisher's
 * callback (nats thread) only appends to a mutex-protected queue; poll()
 * drains it on the caller's thread. The queue holds at most one entry per
 * item in flight, so it is bounded by the window; growing it is the only
 * allocation on the callback path, and if that fails the item is marked
 * and reported as failed rather than lost.
 */
#include "sender.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker_pub.h"
#include "codec.h"
#include "log.h"

typedef struct sender__item {
    void *token;
    int64_t first_try_ms;
    int attempts;
    char subject[SF_SUBJECT_MAX];
    char event_id[SF_STR_MAX + 1];
    size_t len;
    uint8_t data[SF_CODEC_EVENT_MAX];
} sender__item;

typedef struct sender__done {
    sender__item *item;
    sf_status status;
    uint64_t seq;
    char error[160];
} sender__done;

struct sf_sender {
    sf_sender_opts opts;
    sf_codec *codec;
    sf_publisher *pub;
    size_t pending; /* sent, outcome not delivered */

    pthread_mutex_t mu; /* guards done[] */
    pthread_cond_t cv;
    sender__done *done;
    size_t n_done, cap_done;
    int lost; /* the queue could not grow: see sender__on_ack */

    sender__item **retry; /* failed publishes waiting to be sent again */
    size_t n_retry, cap_retry;
    int64_t retry_at_ms;
};

void sf_sender_opts_init(sf_sender_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->max_inflight = 4096;
    opts->retry_for_ms = 60000;
}

static int64_t sender__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* nats thread. The queue starts at the window's size; it grows only when
 * the caller publishes more without polling. If it cannot grow, the
 * outcome is counted in `lost` and logged at free: memory exhaustion is
 * the one way an outcome can go missing, and it is never silent. */
static void sender__on_ack(void *closure, void *token, const sf_pub_result *res)
{
    sf_sender *s = closure;
    pthread_mutex_lock(&s->mu);
    if (s->n_done == s->cap_done) {
        size_t cap = s->cap_done * 2;
        sender__done *nd = realloc(s->done, cap * sizeof *nd);
        if (!nd) {
            s->lost++;
            pthread_mutex_unlock(&s->mu);
            return;
        }
        s->done = nd;
        s->cap_done = cap;
    }
    sender__done *d = &s->done[s->n_done++];
    d->item = token;
    d->status = res->status;
    d->seq = res->seq;
    snprintf(d->error, sizeof d->error, "%s", res->error ? res->error : "");
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

sf_status sf_sender_new(sf_broker *b, const sf_sender_opts *opts, sf_sender **out, sf_error *err)
{
    *out = NULL;
    if (!opts->cb)
        return SF_ERR(err, SF_EINVAL, "sender: no outcome callback");
    sf_sender *s = calloc(1, sizeof *s);
    if (!s)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    s->opts = *opts;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->cap_done = (size_t)(opts->max_inflight > 0 ? opts->max_inflight : 1) + 16;
    s->done = malloc(s->cap_done * sizeof *s->done);
    if (!s->done) {
        sf_sender_free(s);
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    }
    sf_publisher_opts po;
    sf_publisher_opts_init(&po);
    po.max_inflight = opts->max_inflight;
    po.cb = sender__on_ack;
    po.closure = s;
    sf_status st = sf_codec_new(&s->codec, err);
    if (!st)
        st = sf_publisher_new(b, &po, &s->pub, err);
    if (st) {
        sf_sender_free(s);
        return st;
    }
    *out = s;
    return SF_OK;
}

static void sender__deliver(sf_sender *s, sender__item *it, sf_status st, uint64_t seq,
                            const char *error)
{
    sf_send_outcome o = {.token = it->token,
                         .status = st,
                         .seq = seq,
                         .event_id = it->event_id,
                         .error = error ? error : "",
                         .attempts = it->attempts};
    s->pending--;
    s->opts.cb(s->opts.closure, &o); /* o.event_id points into it: free after */
    free(it);
}

/* A failed publish: again later, or its final failure now. */
static void sender__failed(sf_sender *s, sender__item *it, sf_status st, const char *why)
{
    int stopping = !s->pub || (s->opts.stop && *s->opts.stop);
    if (stopping || st == SF_EDENIED || /* a permission: retrying cannot help */
        sender__mono_ms() - it->first_try_ms >= s->opts.retry_for_ms) {
        char msg[SF_ERROR_MSG_MAX + 64];
        snprintf(msg, sizeof msg, "not published after %d attempt%s: %s", it->attempts,
                 it->attempts == 1 ? "" : "s", why);
        sender__deliver(s, it, st ? st : SF_EUNAVAIL, 0, msg);
        return;
    }
    if (s->n_retry == s->cap_retry) {
        size_t cap = s->cap_retry ? s->cap_retry * 2 : 256;
        sender__item **nr = realloc(s->retry, cap * sizeof *nr);
        if (!nr) {
            sender__deliver(s, it, SF_ENOMEM, 0, "out of memory queueing a retry");
            return;
        }
        s->retry = nr;
        s->cap_retry = cap;
    }
    s->retry[s->n_retry++] = it;
    int backoff = it->attempts < 6 ? 100 << it->attempts : 5000;
    int64_t at = sender__mono_ms() + backoff;
    if (s->retry_at_ms == 0 || at < s->retry_at_ms)
        s->retry_at_ms = at;
}

static void sender__publish(sf_sender *s, sender__item *it)
{
    sf_error err;
    it->attempts++;
    sf_status st =
        sf_publisher_publish(s->pub, it->subject, it->event_id, it->data, it->len, it, &err);
    if (st == SF_OK)
        return;
    if (s->opts.retry_for_ms > 0 && (it->attempts == 1 || it->attempts % 10 == 0))
        sf_log(SF_LOG_WARN, "event %s: publish failed (attempt %d), will retry: %s", it->event_id,
               it->attempts, err.msg);
    sender__failed(s, it, st, err.msg);
}

sf_status sf_sender_send(sf_sender *s, const sf_event *ev, void *token, sf_error *err)
{
    sender__item *it = malloc(sizeof *it);
    if (!it)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    it->token = token;
    it->attempts = 0;
    it->first_try_ms = sender__mono_ms();
    snprintf(it->event_id, sizeof it->event_id, "%s", ev->event_id);
    sf_status st = sf_event_subject(ev, it->subject, sizeof it->subject, err);
    if (!st)
        st = sf_codec_encode_event(s->codec, ev, it->data, sizeof it->data, &it->len, err);
    if (st) {
        free(it);
        return st;
    }
    s->pending++;
    sender__publish(s, it);
    return SF_OK;
}

size_t sf_sender_poll(sf_sender *s, int wait_ms)
{
    sender__done batch[256];
    size_t n;
    pthread_mutex_lock(&s->mu);
    if (s->n_done == 0 && wait_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    n = s->n_done < 256 ? s->n_done : 256;
    memcpy(batch, s->done, n * sizeof *batch);
    memmove(s->done, s->done + n, (s->n_done - n) * sizeof *s->done);
    s->n_done -= n;
    pthread_mutex_unlock(&s->mu);

    for (size_t i = 0; i < n; i++) {
        sender__done *d = &batch[i];
        if (d->status == SF_OK || d->status == SF_EDUP)
            sender__deliver(s, d->item, d->status, d->seq, "");
        else
            sender__failed(s, d->item, d->status, d->error);
    }
    if (s->n_retry && s->pub && sender__mono_ms() >= s->retry_at_ms) {
        size_t n_retry = s->n_retry;
        sender__item **due = s->retry;
        s->retry = NULL;
        s->n_retry = s->cap_retry = 0;
        s->retry_at_ms = 0;
        for (size_t i = 0; i < n_retry; i++)
            sender__publish(s, due[i]);
        free(due);
    }
    return n;
}

size_t sf_sender_pending(const sf_sender *s)
{
    return s->pending;
}

void sf_sender_finish(sf_sender *s)
{
    while (s->pending > 0) {
        sf_sender_poll(s, 100);
        pthread_mutex_lock(&s->mu);
        int lost = s->lost;
        pthread_mutex_unlock(&s->mu);
        if (lost && s->n_retry == 0 && sf_publisher_inflight(s->pub) == 0)
            break; /* the remaining outcomes were lost to memory exhaustion */
    }
}

void sf_sender_free(sf_sender *s)
{
    if (!s)
        return;
    /* Outstanding publishes complete (or time out) into the queue. */
    sf_publisher_free(s->pub);
    s->pub = NULL;
    while (s->n_done > 0 || s->n_retry > 0) {
        if (s->n_done > 0) {
            sf_sender_poll(s, 0);
            continue;
        }
        sender__item *it = s->retry[--s->n_retry];
        sender__deliver(s, it, SF_EUNAVAIL, 0, "sender closed before the event was published");
    }
    if (s->lost)
        sf_log(SF_LOG_ERROR, "sender: %d publish outcomes lost to memory exhaustion", s->lost);
    free(s->retry);
    free(s->done);
    sf_codec_free(s->codec);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
