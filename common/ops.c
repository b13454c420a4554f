/*
 * ops: one XPUB socket (a PUB that reports a full queue: with
 * ZMQ_XPUB_NODROP a send at the high-water mark fails with EAGAIN instead
 * of dropping silently, so drops can be counted), ZMQ_DONTWAIT sends, a
 * bounded queue (SNDHWM) and a 100 ms linger, so neither a slow reader
 * nor a missing proxy can hold a service back or keep it alive at exit. The
 * subscription notices an XPUB receives are read and thrown away.
 */
#include "ops.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "event.h"

#define OPS_TOPICS_MAX 64 /* distinct subscriptions tracked; more: all wanted */
#define OPS_TOPIC_MAX 256

struct sf_ops {
    void *ctx;
    void *sock;
    char service[64];
    uint64_t dropped;
    size_t n_topics;  /* the topics readers subscribe to now, as the notices told */
    bool topics_lost; /* a notice did not fit: count every topic as wanted */
    struct {
        size_t len;
        char text[OPS_TOPIC_MAX];
    } topics[OPS_TOPICS_MAX];
};

/* Read the subscription notices the XPUB queued (byte 1 = subscribe, 0 =
 * unsubscribe, then the topic; without ZMQ_XPUB_VERBOSE one per topic,
 * from its first reader and after its last) and keep the set of topics. */
static void ops__notices(sf_ops *o)
{
    char sub[OPS_TOPIC_MAX + 1];
    int n;
    while ((n = zmq_recv(o->sock, sub, sizeof sub, ZMQ_DONTWAIT)) >= 0) {
        if (n == 0 || (sub[0] != 0 && sub[0] != 1))
            continue;
        size_t len = (size_t)n - 1;
        if (len > OPS_TOPIC_MAX) { /* truncated: never forgotten, so never missed */
            o->topics_lost = true;
            continue;
        }
        size_t i = 0;
        while (i < o->n_topics &&
               (o->topics[i].len != len || memcmp(o->topics[i].text, sub + 1, len) != 0))
            i++;
        if (sub[0] == 1 && i == o->n_topics) {
            if (o->n_topics == OPS_TOPICS_MAX) {
                o->topics_lost = true;
                continue;
            }
            o->topics[i].len = len;
            memcpy(o->topics[i].text, sub + 1, len);
            o->n_topics++;
        } else if (sub[0] == 0 && i < o->n_topics) {
            o->topics[i] = o->topics[--o->n_topics];
        }
    }
}

/* Whether a subscription would pass a message whose topic starts with
 * prefix: the subscription is a prefix of it ("" and "stock." for
 * "stock.") or it continues it ("stock.SKU-1" for "stock."). */
static bool ops__wanted(const sf_ops *o, const char *prefix)
{
    if (o->topics_lost)
        return true;
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < o->n_topics; i++) {
        size_t len = o->topics[i].len < plen ? o->topics[i].len : plen;
        if (memcmp(o->topics[i].text, prefix, len) == 0)
            return true;
    }
    return false;
}

sf_status sf_ops_open(const char *endpoint, const char *service, sf_ops **out, sf_error *err)
{
    *out = NULL;
    sf_ops *o = calloc(1, sizeof *o);
    if (!o)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    snprintf(o->service, sizeof o->service, "%s", service ? service : "");
    if (!endpoint || !*endpoint) {
        *out = o; /* disabled */
        return SF_OK;
    }
    int hwm = 10000, linger = 100, nodrop = 1; /* a last message gets 100 ms at exit */
    o->ctx = zmq_ctx_new();
    o->sock = o->ctx ? zmq_socket(o->ctx, ZMQ_XPUB) : NULL;
    if (!o->sock || zmq_setsockopt(o->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(o->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(o->sock, ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop) ||
        zmq_connect(o->sock, endpoint)) {
        sf_status st = SF_ERR(err, SF_EINVAL, "ops feed %s: %s", endpoint, zmq_strerror(errno));
        sf_ops_close(o);
        return st;
    }
    *out = o;
    return SF_OK;
}

void sf_ops_close(sf_ops *o)
{
    if (!o)
        return;
    if (o->sock)
        zmq_close(o->sock);
    if (o->ctx)
        zmq_ctx_term(o->ctx);
    free(o);
}

void sf_ops_send(sf_ops *o, const char *topic, json_t *obj)
{
    if (!o || !obj || !o->sock) {
        json_decref(obj);
        return;
    }
    json_object_set_new(obj, "service", json_string(o->service));
    json_object_set_new(obj, "ts", json_integer(sf_now_ms()));
    ops__notices(o);
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text) {
        o->dropped++;
        return;
    }
    if (zmq_send(o->sock, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(o->sock, text, strlen(text), ZMQ_DONTWAIT) < 0)
        o->dropped++;
    free(text);
}

void sf_ops_alert(sf_ops *o, const char *kind, const char *message, json_t *details)
{
    char topic[96];
    snprintf(topic, sizeof topic, "alert.%s", kind);
    json_t *obj = json_pack("{s:s, s:s}", "kind", kind, "message", message);
    if (obj && details)
        json_object_set_new(obj, "details", details);
    else
        json_decref(details);
    sf_ops_send(o, topic, obj);
}

bool sf_ops_wait_reader(sf_ops *o, const char *topic, int ms)
{
    if (!o || !o->sock)
        return false;
    int64_t until = sf_now_ms() + ms;
    ops__notices(o);
    while (!ops__wanted(o, topic)) {
        int64_t left = until - sf_now_ms();
        zmq_pollitem_t it = {o->sock, 0, ZMQ_POLLIN, 0};
        if (left <= 0 || zmq_poll(&it, 1, (long)left) < 0)
            return false;
        ops__notices(o);
    }
    return true;
}

bool sf_ops_has_reader(sf_ops *o, const char *topic)
{
    if (!o || !o->sock)
        return false;
    ops__notices(o);
    return ops__wanted(o, topic);
}

uint64_t sf_ops_dropped(const sf_ops *o)
{
    return o ? o->dropped : 0;
}

struct sf_ops_proxy {
    void *ctx;
    void *xsub, *xpub, *ctl_in, *ctl_out;
    pthread_t thread;
    bool running;
};

static void *ops__proxy_main(void *arg)
{
    sf_ops_proxy *p = arg;
    zmq_proxy_steerable(p->xsub, p->xpub, NULL, p->ctl_in);
    return NULL;
}

sf_status sf_ops_proxy_start(const char *frontend, const char *backend, sf_ops_proxy **out,
                             sf_error *err)
{
    *out = NULL;
    sf_ops_proxy *p = calloc(1, sizeof *p);
    if (!p)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    int linger = 0;
    char ctl[64];
    snprintf(ctl, sizeof ctl, "inproc://sf-ops-proxy-%p", (void *)p);
    p->ctx = zmq_ctx_new();
    if (!p->ctx || !(p->xsub = zmq_socket(p->ctx, ZMQ_XSUB)) ||
        !(p->xpub = zmq_socket(p->ctx, ZMQ_XPUB)) || !(p->ctl_in = zmq_socket(p->ctx, ZMQ_PAIR)) ||
        !(p->ctl_out = zmq_socket(p->ctx, ZMQ_PAIR)) ||
        zmq_setsockopt(p->xsub, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(p->xpub, ZMQ_LINGER, &linger, sizeof linger) || zmq_bind(p->ctl_in, ctl) ||
        zmq_connect(p->ctl_out, ctl) || zmq_bind(p->xsub, frontend) || zmq_bind(p->xpub, backend)) {
        sf_status st = SF_ERR(err, SF_EIO, "ops proxy %s -> %s: %s", frontend, backend,
                              zmq_strerror(zmq_errno()));
        sf_ops_proxy_stop(p);
        return st;
    }
    if (pthread_create(&p->thread, NULL, ops__proxy_main, p)) {
        sf_ops_proxy_stop(p);
        return SF_ERR(err, SF_EINTERNAL, "ops proxy: cannot start its thread");
    }
    p->running = true;
    *out = p;
    return SF_OK;
}

void sf_ops_proxy_stop(sf_ops_proxy *p)
{
    if (!p)
        return;
    if (p->running) {
        zmq_send(p->ctl_out, "TERMINATE", 9, 0);
        pthread_join(p->thread, NULL);
    }
    void *socks[4] = {p->xsub, p->xpub, p->ctl_in, p->ctl_out};
    for (int i = 0; i < 4; i++)
        if (socks[i])
            zmq_close(socks[i]);
    if (p->ctx)
        zmq_ctx_term(p->ctx);
    free(p);
}
