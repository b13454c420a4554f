/*
 * sse: the ops feed bridged to server-sent events (see sse.h).
 *
 * Lifetime of a stream, the one thing to get right when changing this:
 * a client owns nothing of libevent's. Its end is always announced by the
 * connection's close callback (sse__on_close), whoever caused it: the peer
 * (EOF or a write error: libevent detaches the unfinished request from the
 * connection and leaves it to us, so we free it with
 * evhttp_send_reply_end), or us (a slow client or the hub going away:
 * evhttp_connection_free, which frees the request itself after the
 * callback). The callback unlinks and frees the client; nothing else does.
 */
#include "sse.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "log.h"

#define SSE_REPLAY_METRICS 16 /* last metrics.<service>, one per topic */
#define SSE_REPLAY_ALERTS 20  /* last alerts */
#define SSE_READ_LIMIT 4096   /* bytes a client may send while it streams */
#define SSE_WRITE_TIMEOUT_S 10
#define SSE_POLL_MS 200

typedef struct sse__frame {
    struct sse__frame *next;
    size_t len; /* of text */
    char topic[SSE_TOPIC_MAX + 1];
    char text[]; /* "event: <topic>\ndata: <json>\n\n" */
} sse__frame;

typedef struct sse__worker sse__worker;

typedef struct sse__client {
    sse__worker *w;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct sse__client *prev, *next;
    size_t n_filters;
    char filters[SSE_FILTERS_MAX][SSE_TOPIC_MAX + 1];
} sse__client;

struct sse__worker {
    api_sse_hub *hub;
    struct event_base *base;
    int wake_rd, wake_wr;
    struct event *wake, *keepalive;
    struct evbuffer *scratch;
    pthread_mutex_t mu; /* guards head, tail, bytes */
    sse__frame *head, *tail;
    size_t bytes;
    sse__client *clients;     /* this thread's streams; touched by it only */
    _Atomic size_t n_clients; /* read by the reader thread */
};

struct api_sse_hub {
    char endpoint[512];
    int keepalive_ms;
    size_t client_max;
    int n;
    sse__worker *workers;
    void *zctx, *zsub;
    bool sub_all;         /* the reader's: subscribed to every topic now */
    int wake_rd, wake_wr; /* a stream opened or closed: the reader re-subscribes */
    pthread_t reader;
    bool reader_running;
    atomic_bool stop;
    pthread_mutex_t replay_mu; /* guards the two replay arrays */
    sse__frame *metrics[SSE_REPLAY_METRICS];
    sse__frame *alerts[SSE_REPLAY_ALERTS];
    size_t alert_next;
    _Atomic uint64_t received, rejected, queue_dropped, clients_dropped, clients_total, sent;
};

void api_sse_opts_init(api_sse_opts *o)
{
    memset(o, 0, sizeof *o);
    o->keepalive_ms = 10000;
    o->client_max_bytes = 256 * 1024;
}

int api_sse_enabled(const api_sse_hub *h)
{
    return h && h->endpoint[0];
}

/* ------------------------------------------------------------ frames --- */

/* A topic: no control characters. A body: no CR, LF or NUL (they would
 * end the data line); compact JSON has none. */
static bool sse__clean(const char *s, size_t n, bool body)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n' || c == '\0' || (!body && (c < 0x20 || c == 0x7f)))
            return false;
    }
    return true;
}

static sse__frame *sse__frame_new(const char *topic, size_t tlen, const char *data, size_t dlen)
{
    size_t len = 7 + tlen + 7 + dlen + 2; /* "event: " T "\ndata: " D "\n\n" */
    sse__frame *f = malloc(sizeof *f + len + 1);
    if (!f)
        return NULL;
    f->next = NULL;
    memcpy(f->topic, topic, tlen);
    f->topic[tlen] = '\0';
    char *p = f->text;
    memcpy(p, "event: ", 7);
    memcpy(p + 7, topic, tlen);
    memcpy(p + 7 + tlen, "\ndata: ", 7);
    memcpy(p + 14 + tlen, data, dlen);
    memcpy(p + 14 + tlen + dlen, "\n\n", 3);
    f->len = len;
    return f;
}

static sse__frame *sse__frame_copy(const sse__frame *f)
{
    sse__frame *c = malloc(sizeof *c + f->len + 1);
    if (c) {
        memcpy(c, f, sizeof *c + f->len + 1);
        c->next = NULL;
    }
    return c;
}

static void sse__frames_free(sse__frame *f)
{
    while (f) {
        sse__frame *next = f->next;
        free(f);
        f = next;
    }
}

/* ----------------------------------------------------------- clients --- */

/* Tell the reader the number of streams changed (sse__follow). A full
 * pipe means it is told already. */
static void sse__nudge(api_sse_hub *h)
{
    if (h->wake_wr >= 0 && write(h->wake_wr, "c", 1) < 0 && errno != EAGAIN)
        sf_log(SF_LOG_WARN, "ops events: wake-up of the reader: %s", strerror(errno));
}

static void sse__on_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    sse__client *c = arg;
    sse__worker *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    atomic_fetch_sub(&w->n_clients, 1);
    sse__nudge(w->hub);
    /* Closed by the peer: libevent detached the unfinished request and
     * left it to us. Closed by us: it frees the request after this. */
    if (evhttp_request_get_connection(c->req) == NULL)
        evhttp_send_reply_end(c->req);
    free(c);
}

static void sse__drop(sse__client *c)
{
    evhttp_connection_free(c->evcon); /* -> sse__on_close */
}

static bool sse__wants(const sse__client *c, const char *topic)
{
    if (c->n_filters == 0)
        return true;
    for (size_t i = 0; i < c->n_filters; i++)
        if (!strncmp(topic, c->filters[i], strlen(c->filters[i])))
            return true;
    return false;
}

/* Queue text on c's connection unless it already holds client_max unsent
 * bytes: then drop it. false when c is gone. */
static bool sse__write(sse__client *c, const char *text, size_t len)
{
    api_sse_hub *h = c->w->hub;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
    size_t pending = bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
    if (pending + len > h->client_max) {
        atomic_fetch_add(&h->clients_dropped, 1);
        sf_log(SF_LOG_WARN, "ops events: dropping a slow client (%zu bytes unsent)", pending);
        sse__drop(c);
        return false;
    }
    evbuffer_add(c->w->scratch, text, len);
    evhttp_send_reply_chunk(c->req, c->w->scratch); /* moves the bytes out of scratch */
    evbuffer_drain(c->w->scratch, evbuffer_get_length(c->w->scratch));
    return true;
}

static void sse__on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    sse__worker *w = arg;
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&w->mu);
    sse__frame *list = w->head;
    w->head = w->tail = NULL;
    w->bytes = 0;
    pthread_mutex_unlock(&w->mu);
    uint64_t sent = 0;
    for (sse__frame *f = list; f; f = f->next) {
        sse__client *next;
        for (sse__client *c = w->clients; c; c = next) {
            next = c->next; /* c may be freed by the write */
            if (sse__wants(c, f->topic) && sse__write(c, f->text, f->len))
                sent++;
        }
    }
    atomic_fetch_add(&w->hub->sent, sent);
    sse__frames_free(list);
}

static void sse__on_keepalive(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sse__worker *w = arg;
    static const char ka[] = ": keep-alive\n\n";
    sse__client *next;
    for (sse__client *c = w->clients; c; c = next) {
        next = c->next;
        (void)sse__write(c, ka, sizeof ka - 1);
    }
}

sf_status api_sse_check_topics(const char *topics, sf_error *err)
{
    if (!topics || !*topics)
        return SF_OK;
    size_t n = 0;
    for (const char *p = topics;; p++) {
        size_t len = strcspn(p, ",");
        if (++n > SSE_FILTERS_MAX)
            return SF_ERR(err, SF_EINVAL, "field topics: more than %d prefixes", SSE_FILTERS_MAX);
        if (len == 0 || len > SSE_TOPIC_MAX)
            return SF_ERR(err, SF_EINVAL, "field topics: prefix %zu is empty or longer than %d", n,
                          SSE_TOPIC_MAX);
        if (!sse__clean(p, len, false))
            return SF_ERR(err, SF_EINVAL, "field topics: prefix %zu holds a control character", n);
        p += len;
        if (!*p)
            break;
    }
    return SF_OK;
}

void api_sse_attach(api_sse_hub *h, int thread, struct evhttp_request *req, const char *topics)
{
    sse__worker *w = &h->workers[thread];
    sse__client *c = calloc(1, sizeof *c);
    if (!c) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    c->w = w;
    c->req = req;
    for (const char *p = topics; p && *p && c->n_filters < SSE_FILTERS_MAX;) {
        size_t len = strcspn(p, ",");
        if (len > SSE_TOPIC_MAX)
            len = SSE_TOPIC_MAX; /* checked before; belt and braces */
        memcpy(c->filters[c->n_filters], p, len);
        c->filters[c->n_filters++][len] = '\0';
        p += strcspn(p, ",");
        if (*p)
            p++;
    }
    struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
    evhttp_add_header(hd, "Content-Type", "text/event-stream; charset=utf-8");
    evhttp_add_header(hd, "Cache-Control", "no-store");
    evhttp_add_header(hd, "X-Accel-Buffering", "no");
    evhttp_send_reply_start(req, 200, "OK");
    c->evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
    if (bev) {
        /* The client sends nothing more: no read timeout (it would end
         * an idle stream), a write timeout for a stalled one, and a cap
         * on what it may send meanwhile. */
        struct timeval wt = {SSE_WRITE_TIMEOUT_S, 0};
        bufferevent_set_timeouts(bev, NULL, &wt);
        bufferevent_setwatermark(bev, EV_READ, 0, SSE_READ_LIMIT);
    }
    evhttp_connection_set_closecb(c->evcon, sse__on_close, c);
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    atomic_fetch_add(&w->n_clients, 1);
    atomic_fetch_add(&h->clients_total, 1);
    sse__nudge(h);
    static const char hello[] = "retry: 3000\n: stockflow ops feed\n\n";
    if (!sse__write(c, hello, sizeof hello - 1))
        return;
    /* The replay: copied under the lock, written after it. */
    sse__frame *replay = NULL, **tail = &replay;
    pthread_mutex_lock(&h->replay_mu);
    for (size_t i = 0; i < SSE_REPLAY_METRICS; i++) {
        if (h->metrics[i] && (*tail = sse__frame_copy(h->metrics[i])))
            tail = &(*tail)->next;
    }
    for (size_t k = 0; k < SSE_REPLAY_ALERTS; k++) {
        const sse__frame *a = h->alerts[(h->alert_next + k) % SSE_REPLAY_ALERTS];
        if (a && (*tail = sse__frame_copy(a)))
            tail = &(*tail)->next;
    }
    pthread_mutex_unlock(&h->replay_mu);
    for (sse__frame *f = replay; f; f = f->next) {
        if (sse__wants(c, f->topic) && !sse__write(c, f->text, f->len))
            break;
    }
    sse__frames_free(replay);
}

/* ------------------------------------------------------------ reader --- */

static void sse__remember(api_sse_hub *h, const sse__frame *f)
{
    bool metric = !strncmp(f->topic, "metrics.", 8), alert = !strncmp(f->topic, "alert.", 6);
    if (!metric && !alert)
        return;
    sse__frame *copy = sse__frame_copy(f);
    if (!copy)
        return;
    pthread_mutex_lock(&h->replay_mu);
    if (metric) {
        size_t slot = SSE_REPLAY_METRICS;
        for (size_t i = 0; i < SSE_REPLAY_METRICS && slot == SSE_REPLAY_METRICS; i++)
            if (!h->metrics[i] || !strcmp(h->metrics[i]->topic, f->topic))
                slot = i;
        if (slot < SSE_REPLAY_METRICS) {
            free(h->metrics[slot]);
            h->metrics[slot] = copy;
            copy = NULL;
        }
    } else {
        free(h->alerts[h->alert_next]);
        h->alerts[h->alert_next] = copy;
        h->alert_next = (h->alert_next + 1) % SSE_REPLAY_ALERTS;
        copy = NULL;
    }
    pthread_mutex_unlock(&h->replay_mu);
    free(copy); /* more services than slots: not replayed */
}

static void sse__deliver(api_sse_hub *h, const sse__frame *f)
{
    for (int i = 0; i < h->n; i++) {
        sse__worker *w = &h->workers[i];
        if (atomic_load(&w->n_clients) == 0)
            continue;
        sse__frame *copy = sse__frame_copy(f);
        bool queued = false;
        if (copy) {
            pthread_mutex_lock(&w->mu);
            if (w->bytes + copy->len <= SSE_QUEUE_MAX_BYTES) {
                if (w->tail)
                    w->tail->next = copy;
                else
                    w->head = copy;
                w->tail = copy;
                w->bytes += copy->len;
                queued = true;
            }
            pthread_mutex_unlock(&w->mu);
        }
        if (!queued) {
            free(copy);
            atomic_fetch_add(&h->queue_dropped, 1);
            continue;
        }
        /* A full pipe means a wake-up is pending already. */
        if (write(w->wake_wr, "w", 1) < 0 && errno != EAGAIN)
            sf_log(SF_LOG_WARN, "ops events: wake-up of thread %d: %s", i, strerror(errno));
    }
}

/* One message: [topic][body]; anything else is rejected. */
static void sse__read_one(api_sse_hub *h)
{
    zmq_msg_t t, b;
    zmq_msg_init(&t);
    zmq_msg_init(&b);
    int parts = 0;
    bool ok = true;
    if (zmq_msg_recv(&t, h->zsub, ZMQ_DONTWAIT) < 0)
        goto out;
    parts = 1;
    if (zmq_msg_more(&t) && zmq_msg_recv(&b, h->zsub, 0) >= 0)
        parts = 2;
    while (parts == 2 && zmq_msg_more(&b)) { /* extra frames: drain, reject */
        zmq_msg_t x;
        zmq_msg_init(&x);
        int rc = zmq_msg_recv(&x, h->zsub, 0);
        bool more = rc >= 0 && zmq_msg_more(&x);
        zmq_msg_close(&x);
        ok = false;
        if (!more)
            break;
    }
    atomic_fetch_add(&h->received, 1);
    const char *topic = zmq_msg_data(&t), *data = parts == 2 ? zmq_msg_data(&b) : NULL;
    size_t tlen = zmq_msg_size(&t), dlen = parts == 2 ? zmq_msg_size(&b) : 0;
    if (!ok || parts != 2 || tlen == 0 || tlen > SSE_TOPIC_MAX || dlen == 0 ||
        dlen > SSE_BODY_MAX || !sse__clean(topic, tlen, false) || !sse__clean(data, dlen, true)) {
        atomic_fetch_add(&h->rejected, 1);
        goto out;
    }
    sse__frame *f = sse__frame_new(topic, tlen, data, dlen);
    if (!f) {
        atomic_fetch_add(&h->queue_dropped, 1);
        goto out;
    }
    sse__remember(h, f);
    sse__deliver(h, f);
    free(f);
out:
    zmq_msg_close(&t);
    zmq_msg_close(&b);
}

/* Subscribe to every topic while a stream is open, and to the replayed
 * ones (metrics., alert.) only while none is: the reconciler reads positions
 * for stock.<sku> only when someone subscribes (sf_ops_has_reader), so an
 * API nobody watches costs it nothing. */
static void sse__follow(api_sse_hub *h)
{
    size_t open = 0;
    for (int i = 0; i < h->n; i++)
        open += atomic_load(&h->workers[i].n_clients);
    bool all = open > 0;
    if (all == h->sub_all)
        return;
    if (zmq_setsockopt(h->zsub, all ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, "", 0) == 0)
        h->sub_all = all;
    else
        sf_log(SF_LOG_WARN, "ops events: %s every topic: %s",
               all ? "subscribe to" : "unsubscribe from", zmq_strerror(zmq_errno()));
}

static void *sse__reader_main(void *arg)
{
    api_sse_hub *h = arg;
    while (!atomic_load(&h->stop)) {
        sse__follow(h);
        zmq_pollitem_t it[2] = {{h->zsub, 0, ZMQ_POLLIN, 0}, {NULL, h->wake_rd, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(it, 2, SSE_POLL_MS);
        if (rc > 0 && (it[1].revents & ZMQ_POLLIN)) {
            char drain[64];
            while (read(h->wake_rd, drain, sizeof drain) > 0) {
            }
        }
        for (int i = 0; rc > 0 && i < 1000 && !atomic_load(&h->stop); i++) {
            int ev = 0;
            size_t sz = sizeof ev;
            if (zmq_getsockopt(h->zsub, ZMQ_EVENTS, &ev, &sz) || !(ev & ZMQ_POLLIN))
                break;
            sse__read_one(h);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------- setup --- */

sf_status api_sse_hub_start(const api_sse_opts *o, api_sse_hub **out, sf_error *err)
{
    *out = NULL;
    api_sse_hub *h = calloc(1, sizeof *h);
    if (!h)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    snprintf(h->endpoint, sizeof h->endpoint, "%s", o->sub_endpoint ? o->sub_endpoint : "");
    h->keepalive_ms = o->keepalive_ms > 0 ? o->keepalive_ms : 10000;
    h->client_max = o->client_max_bytes ? o->client_max_bytes : 256 * 1024;
    atomic_init(&h->stop, false);
    pthread_mutex_init(&h->replay_mu, NULL);
    h->wake_rd = h->wake_wr = -1;
    sf_status st = SF_OK;
    h->workers = calloc((size_t)o->n_bases, sizeof *h->workers);
    if (!h->workers) {
        st = SF_ERR(err, SF_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < o->n_bases; i++) {
        sse__worker *w = &h->workers[i];
        int fds[2];
        h->n = i + 1;
        w->hub = h;
        w->base = o->bases[i];
        w->wake_rd = w->wake_wr = -1;
        atomic_init(&w->n_clients, 0);
        pthread_mutex_init(&w->mu, NULL);
        if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
            st = SF_ERR(err, SF_EIO, "ops events: pipe: %s", strerror(errno));
            goto fail;
        }
        w->wake_rd = fds[0];
        w->wake_wr = fds[1];
        struct timeval ka = {h->keepalive_ms / 1000, (h->keepalive_ms % 1000) * 1000};
        if (!(w->scratch = evbuffer_new()) ||
            !(w->wake = event_new(w->base, w->wake_rd, EV_READ | EV_PERSIST, sse__on_wake, w)) ||
            event_add(w->wake, NULL) != 0 ||
            !(w->keepalive = event_new(w->base, -1, EV_PERSIST, sse__on_keepalive, w)) ||
            event_add(w->keepalive, &ka) != 0) {
            st = SF_ERR(err, SF_ENOMEM, "ops events: libevent: cannot add an event");
            goto fail;
        }
    }
    if (!h->endpoint[0]) {
        *out = h;
        return SF_OK;
    }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        st = SF_ERR(err, SF_EIO, "ops events: pipe: %s", strerror(errno));
        goto fail;
    }
    h->wake_rd = fds[0];
    h->wake_wr = fds[1];
    int linger = 0, hwm = 10000;
    h->zctx = zmq_ctx_new();
    if (!h->zctx || !(h->zsub = zmq_socket(h->zctx, ZMQ_SUB)) ||
        zmq_setsockopt(h->zsub, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(h->zsub, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(h->zsub, ZMQ_SUBSCRIBE, "metrics.", 8) ||
        zmq_setsockopt(h->zsub, ZMQ_SUBSCRIBE, "alert.", 6) || zmq_connect(h->zsub, h->endpoint)) {
        st = SF_ERR(err, SF_EINVAL, "ops events: subscribe to %s: %s", h->endpoint,
                    zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (pthread_create(&h->reader, NULL, sse__reader_main, h) != 0) {
        st = SF_ERR(err, SF_EINTERNAL, "ops events: cannot start the reader thread");
        goto fail;
    }
    h->reader_running = true;
    *out = h;
    return SF_OK;
fail:
    api_sse_hub_free(h);
    return st;
}

void api_sse_render_metrics(api_sse_hub *h, struct evbuffer *out)
{
    if (!h)
        return;
    size_t open = 0;
    for (int i = 0; i < h->n; i++)
        open += atomic_load(&h->workers[i].n_clients);
    evbuffer_add_printf(
        out,
        "# HELP inv_api_sse_streams Open GET /v1/ops/events streams.\n"
        "# TYPE inv_api_sse_streams gauge\n"
        "inv_api_sse_streams %zu\n"
        "# HELP inv_api_sse_streams_total Streams opened.\n"
        "# TYPE inv_api_sse_streams_total counter\n"
        "inv_api_sse_streams_total %" PRIu64 "\n"
        "# HELP inv_api_sse_slow_clients_dropped_total Streams closed for holding too much "
        "unsent data.\n"
        "# TYPE inv_api_sse_slow_clients_dropped_total counter\n"
        "inv_api_sse_slow_clients_dropped_total %" PRIu64 "\n"
        "# HELP inv_api_ops_feed_messages_total Ops feed messages read.\n"
        "# TYPE inv_api_ops_feed_messages_total counter\n"
        "inv_api_ops_feed_messages_total %" PRIu64 "\n"
        "# HELP inv_api_ops_feed_rejected_total Ops feed messages not [topic][one-line "
        "JSON] or too large.\n"
        "# TYPE inv_api_ops_feed_rejected_total counter\n"
        "inv_api_ops_feed_rejected_total %" PRIu64 "\n"
        "# HELP inv_api_ops_feed_queue_dropped_total Messages dropped because a serving "
        "thread's queue was full.\n"
        "# TYPE inv_api_ops_feed_queue_dropped_total counter\n"
        "inv_api_ops_feed_queue_dropped_total %" PRIu64 "\n"
        "# HELP inv_api_sse_events_sent_total Events written to streams.\n"
        "# TYPE inv_api_sse_events_sent_total counter\n"
        "inv_api_sse_events_sent_total %" PRIu64 "\n",
        open, atomic_load(&h->clients_total), atomic_load(&h->clients_dropped),
        atomic_load(&h->received), atomic_load(&h->rejected), atomic_load(&h->queue_dropped),
        atomic_load(&h->sent));
}

void api_sse_hub_free(api_sse_hub *h)
{
    if (!h)
        return;
    atomic_store(&h->stop, true);
    if (h->reader_running)
        pthread_join(h->reader, NULL);
    if (h->zsub)
        zmq_close(h->zsub);
    if (h->zctx)
        zmq_ctx_term(h->zctx);
    for (int i = 0; i < h->n; i++) {
        sse__worker *w = &h->workers[i];
        while (w->clients)
            sse__drop(w->clients); /* unlinks it */
        if (w->wake)
            event_free(w->wake);
        if (w->keepalive)
            event_free(w->keepalive);
        if (w->scratch)
            evbuffer_free(w->scratch);
        if (w->wake_rd >= 0)
            close(w->wake_rd);
        if (w->wake_wr >= 0)
            close(w->wake_wr);
        sse__frames_free(w->head);
        pthread_mutex_destroy(&w->mu);
    }
    for (size_t i = 0; i < SSE_REPLAY_METRICS; i++)
        free(h->metrics[i]);
    for (size_t i = 0; i < SSE_REPLAY_ALERTS; i++)
        free(h->alerts[i]);
    pthread_mutex_destroy(&h->replay_mu);
    if (h->wake_rd >= 0)
        close(h->wake_rd);
    if (h->wake_wr >= 0)
        close(h->wake_wr);
    free(h->workers);
    free(h);
}
