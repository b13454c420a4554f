/*
 * http_source: one libevent loop on its own thread. A request admitted is
 * queued (FIFO) with its body (ingest/http_body.h); the pump parses lines
 * and hands valid ones to the sender only while the publish window has
 * room, so sf_sender_send never waits for room and the loop never blocks.
 * The sender's outcomes are collected by a timer on the loop (1 ms while
 * anything is in flight, 50 ms when idle) and settle their line; a request
 * whose lines are all settled is answered and freed by the sweep.
 *
 * The one idea to keep when changing it: nothing answers or frees a
 * request except http__sweep, because outcomes can arrive from inside
 * sf_sender_send (a publish that fails at once) while the pump is walking
 * the queue. A client that goes away changes nothing here: its lines still
 * settle and its request is still answered, which is what lets evhttp free
 * a request it detached from a closed connection.
 */
#include "http_source.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "db.h"
#include "http_body.h"
#include "log.h"
#include "sender.h"

#define HTTP__PATH "/v1/events"
#define HTTP__SCOPES ((unsigned)(SF_APIKEY_INGEST | SF_APIKEY_ADMIN))

enum {
    HTTP__KEY_RELOAD_MS = 5000,
    HTTP__TICK_BUSY_MS = 1,
    HTTP__TICK_IDLE_MS = 50,
    HTTP__DRAIN_GRACE_MS = 200,
    HTTP__QUEUE_BODIES = 4, /* admitted bytes waiting: at most this many max_body */
    HTTP__ADDR_MAX = NI_MAXHOST + NI_MAXSERV + 4
};

typedef struct http__req http__req;

struct ingest_http {
    ingest_http_opts o;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *listener;
    struct event *tick;
    sf_sender *sender;
    http__req *head, *tail; /* admitted, not yet answered, oldest first */
    size_t queued_bytes;    /* bodies admitted, not yet answered */
    size_t backlog_bytes;   /* of those, bodies not yet all handed to the sender */
    bool draining;
    int64_t drained_at_ms; /* while draining: when the queue was first empty */
    atomic_bool stop;
    pthread_t thread, keys_thread;
    bool thread_started, keys_started;
    PGconn *keys_pg; /* the keys thread's */
    bool keys_failing;
    pthread_mutex_t stats_mu; /* stats are read by other threads (metrics) */
    ingest_http_stats stats;
    char bound[HTTP__ADDR_MAX];
};

struct http__req {
    ingest_http *h;
    /* Always answered, even after the client went away: evhttp then
     * detaches the request from its connection, and only sending the
     * reply frees it. */
    struct evhttp_request *req;
    ingest_body *body;
    size_t bytes;
    bool parsed_all;
    bool internal_error; /* a line could not be recorded: answer 500 */
    http__req *next;
};

/* The sender's token: which line of which request. */
typedef struct http__tok {
    http__req *rq;
    ingest_line_result *line;
} http__tok;

void ingest_http_opts_init(ingest_http_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_inflight = 4096;
    o->max_body = (size_t)4 << 20;
    o->retry_for_ms = 10000;
    o->timeout_s = 30;
}

static int64_t http__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- replies --- */

static int http__dump_cb(const char *buf, size_t size, void *data)
{
    return evbuffer_add(data, buf, size);
}

/* Send j (taken over) as the JSON body of a code reply. */
static void http__json(struct evhttp_request *req, int code, json_t *j)
{
    struct evbuffer *b = evbuffer_new();
    if (!b || !j || json_dump_callback(j, http__dump_cb, b, JSON_COMPACT) != 0) {
        if (b)
            evbuffer_free(b);
        json_decref(j);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    json_decref(j);
    evbuffer_add(b, "\n", 1);
    struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
    evhttp_add_header(hd, "Content-Type", "application/json");
    evhttp_add_header(hd, "Cache-Control", "no-store");
    evhttp_send_reply(req, code, NULL, b);
    evbuffer_free(b);
}

static void http__error(struct evhttp_request *req, int code, const char *field, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

/* {"error": message, "field": field | null} */
static void http__error(struct evhttp_request *req, int code, const char *field, const char *fmt,
                        ...)
{
    char msg[SF_ERROR_MSG_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *m = json_string(msg);
    http__json(req, code,
               json_pack("{s:o, s:o}", "error", m ? m : json_string("request refused"), "field",
                         field ? json_string(field) : json_null()));
}

/* 503 with Retry-After: nothing of the request was published. */
static void http__shed(ingest_http *h, struct evhttp_request *req, int retry_s, const char *why)
{
    char v[16];
    snprintf(v, sizeof v, "%d", retry_s);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", v);
    pthread_mutex_lock(&h->stats_mu);
    h->stats.shed++;
    pthread_mutex_unlock(&h->stats_mu);
    http__error(req, 503, NULL, "%s; nothing was published, send the body again", why);
}

/* -------------------------------------------------------- the request queue --- */

static void http__req_free(http__req *rq)
{
    ingest_body_free(rq->body);
    free(rq);
}

/* Answer (when the client is still there) and free a finished request. */
static void http__finish(ingest_http *h, http__req *rq)
{
    ingest_body_counts c = ingest_body_count(rq->body);
    pthread_mutex_lock(&h->stats_mu);
    h->stats.accepted += c.accepted;
    h->stats.duplicate += c.duplicate;
    h->stats.rejected += c.rejected;
    h->stats.failed += c.failed;
    pthread_mutex_unlock(&h->stats_mu);
    h->queued_bytes -= rq->bytes;
    struct evhttp_request *req = rq->req;
    if (rq->internal_error) {
        http__error(req, 500, NULL, "out of memory while reading the body; send it again");
    } else {
        int code = ingest_body_http_status(rq->body);
        if (code == 503)
            evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "2");
        http__json(req, code, ingest_body_reply_json(rq->body));
    }
    http__req_free(rq);
}

/* Answer every request whose lines are all settled (the only place that
 * frees requests). Requests finish in any order. */
static void http__sweep(ingest_http *h)
{
    http__req **pp = &h->head, *prev = NULL;
    while (*pp) {
        http__req *rq = *pp;
        if (rq->parsed_all && ingest_body_done(rq->body)) {
            *pp = rq->next;
            if (h->tail == rq)
                h->tail = prev;
            http__finish(h, rq);
        } else {
            prev = rq;
            pp = &rq->next;
        }
    }
}

/* The sender's outcome (from sf_sender_poll or sf_sender_send): settle. */
static void http__outcome(void *closure, const sf_send_outcome *o)
{
    (void)closure;
    http__tok *t = o->token;
    ingest_body *b = t->rq->body;
    if (o->status == SF_OK)
        ingest_body_settle(b, t->line, INGEST_LINE_ACCEPTED, NULL);
    else if (o->status == SF_EDUP)
        ingest_body_settle(b, t->line, INGEST_LINE_DUPLICATE, NULL);
    else
        ingest_body_settle(b, t->line, INGEST_LINE_FAILED, o->error);
    free(t);
}

static void http__parsed_all(ingest_http *h, http__req *rq)
{
    rq->parsed_all = true;
    h->backlog_bytes -= rq->bytes;
}

/* Parse and publish lines of the queued requests, oldest first, while the
 * window has room. */
static void http__pump(ingest_http *h)
{
    for (http__req *rq = h->head; rq; rq = rq->next) {
        while (!rq->parsed_all) {
            if (sf_sender_pending(h->sender) >= (size_t)h->o.max_inflight)
                return;
            sf_event ev;
            ingest_line_result *line = NULL;
            sf_error err;
            sf_status st = ingest_body_next(rq->body, &ev, &line, &err);
            if (st == SF_ENOTFOUND) {
                http__parsed_all(h, rq);
                break;
            }
            if (st) {
                sf_log(SF_LOG_ERROR, "http: %s", err.msg);
                if (line)
                    ingest_body_settle(rq->body, line, INGEST_LINE_FAILED, err.msg);
                rq->internal_error = true;
                http__parsed_all(h, rq);
                break;
            }
            if (line->status != INGEST_LINE_PENDING)
                continue; /* rejected */
            http__tok *t = malloc(sizeof *t);
            if (!t) {
                ingest_body_settle(rq->body, line, INGEST_LINE_FAILED, "out of memory");
                continue;
            }
            *t = (http__tok){.rq = rq, .line = line};
            st = sf_sender_send(h->sender, &ev, t, &err);
            if (st) {
                ingest_body_settle(rq->body, line,
                                   st == SF_EINVAL ? INGEST_LINE_REJECTED : INGEST_LINE_FAILED,
                                   err.msg);
                free(t);
            }
        }
    }
}

/* ------------------------------------------------------------- the loop --- */

static void http__arm(ingest_http *h)
{
    bool busy = h->head || sf_sender_pending(h->sender) > 0;
    int ms = busy ? HTTP__TICK_BUSY_MS : HTTP__TICK_IDLE_MS;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(h->tick, &tv);
}

static void http__on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ingest_http *h = arg;
    /* every outcome that arrived (a poll delivers at most 256), bounded */
    for (int i = 0; i < 64 && sf_sender_poll(h->sender, 0) > 0; i++)
        http__pump(h);
    http__pump(h);
    http__sweep(h);
    if (atomic_load(&h->stop) && !h->draining) {
        h->draining = true;
        if (h->listener)
            evhttp_del_accept_socket(h->http, h->listener);
        h->listener = NULL;
        sf_log(SF_LOG_INFO, "http: stopping; answering %s requests in flight",
               h->head ? "the" : "no");
    }
    /* Stop once every admitted request is answered, after a short grace
     * for the loop to write the last replies out. */
    if (h->draining && !h->head && sf_sender_pending(h->sender) == 0) {
        int64_t now = http__mono_ms();
        if (!h->drained_at_ms)
            h->drained_at_ms = now;
        if (now - h->drained_at_ms >= HTTP__DRAIN_GRACE_MS) {
            event_base_loopbreak(h->base);
            return;
        }
    }
    http__arm(h);
}

static void http__on_request(struct evhttp_request *req, void *arg)
{
    ingest_http *h = arg;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    if (!path || strcmp(path, HTTP__PATH) != 0) {
        http__error(req, 404, "path", "no such route (POST " HTTP__PATH " takes events)");
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        http__error(req, 405, "method", "method not allowed: use POST");
        return;
    }
    if (h->draining) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        http__shed(h, req, 1, "shutting down");
        return;
    }
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    sf_apikey_verdict v = sf_apikey_ring_check(h->o.ring, auth, HTTP__SCOPES, NULL);
    if (v == SF_APIKEY_FORBIDDEN) {
        http__error(req, 403, "authorization", "%s: " HTTP__PATH " needs scope ingest or admin",
                    sf_apikey_verdict_str(v));
        return;
    }
    if (v == SF_APIKEY_UNAVAILABLE) {
        http__shed(h, req, 5, sf_apikey_verdict_str(v));
        return;
    }
    if (v != SF_APIKEY_OK) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"inv-ingest\"");
        http__error(req, 401, "authorization", "%s", sf_apikey_verdict_str(v));
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > h->o.max_body) { /* evhttp enforces it while reading; never trust one layer */
        http__error(req, 413, "body", "body of %zu bytes, larger than max_body %zu", len,
                    h->o.max_body);
        return;
    }
    if (!sf_broker_connected(h->o.broker)) {
        http__shed(h, req, 2, "JetStream unavailable: not connected");
        return;
    }
    /* A full window queues at most one max_body of bodies in front of it. */
    if ((sf_sender_pending(h->sender) >= (size_t)h->o.max_inflight &&
         h->backlog_bytes + len > h->o.max_body) ||
        (h->head && h->queued_bytes + len > HTTP__QUEUE_BODIES * h->o.max_body)) {
        http__shed(h, req, 1, "publish window full");
        return;
    }
    char *data = len ? malloc(len) : NULL;
    http__req *rq = calloc(1, sizeof *rq);
    sf_error err;
    if ((len && !data) || !rq || (len && evbuffer_remove(in, data, len) != (int)len)) {
        free(data);
        free(rq);
        http__shed(h, req, 1, "out of memory");
        return;
    }
    if (ingest_body_new(data, len, h->o.parse, &rq->body, &err)) { /* takes data */
        free(rq);
        http__shed(h, req, 1, err.msg);
        return;
    }
    rq->h = h;
    rq->req = req;
    rq->bytes = len;
    if (h->tail)
        h->tail->next = rq;
    else
        h->head = rq;
    h->tail = rq;
    h->queued_bytes += len;
    h->backlog_bytes += len;
    pthread_mutex_lock(&h->stats_mu);
    h->stats.requests++;
    pthread_mutex_unlock(&h->stats_mu);
    http__pump(h);
    http__sweep(h); /* a body of rejected lines only is answered now */
    event_del(h->tick);
    http__arm(h);
}

static void *http__main(void *arg)
{
    ingest_http *h = arg;
    event_base_dispatch(h->base);
    return NULL;
}

/* ------------------------------------------------------------- api keys --- */

static void http__reload_keys(ingest_http *h)
{
    sf_error err;
    sf_status st = SF_OK;
    if (!h->keys_pg)
        st = sf_db_connect(h->o.pg_dsn, &h->keys_pg, &err);
    size_t n = 0, skipped = 0;
    if (!st)
        st = sf_apikey_ring_load_db(h->o.ring, h->keys_pg, &n, &skipped, &err);
    if (st) {
        if (!h->keys_failing)
            sf_log(SF_LOG_WARN,
                   "http: api keys: cannot read table api_keys (%s); keeping the keys already "
                   "loaded, retrying every %d s",
                   err.msg, HTTP__KEY_RELOAD_MS / 1000);
        h->keys_failing = true;
        if (h->keys_pg && PQstatus(h->keys_pg) != CONNECTION_OK) {
            PQfinish(h->keys_pg);
            h->keys_pg = NULL;
        }
        return;
    }
    if (h->keys_failing)
        sf_log(SF_LOG_INFO, "http: api keys: table api_keys read again (%zu rows)", n);
    if (skipped)
        sf_log(SF_LOG_WARN, "http: api keys: %zu rows of api_keys are not valid keys", skipped);
    h->keys_failing = false;
}

static void *http__keys_main(void *arg)
{
    ingest_http *h = arg;
    int64_t next = http__mono_ms() + HTTP__KEY_RELOAD_MS;
    while (!atomic_load(&h->stop)) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        if (http__mono_ms() >= next) {
            http__reload_keys(h);
            next = http__mono_ms() + HTTP__KEY_RELOAD_MS;
        }
    }
    return NULL;
}

/* ------------------------------------------------------- start and stop --- */

bool ingest_http_split_addr(const char *addr, char *host, size_t size, uint16_t *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1])
        return false;
    const char *h = addr;
    size_t n = (size_t)(colon - addr);
    if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n == 0 || n >= size)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end || p > 65535)
        return false;
    *port = (uint16_t)p;
    return true;
}

static void http__describe_bound(ingest_http *h, const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[NI_MAXHOST], port[NI_MAXSERV];
    evutil_socket_t fd = evhttp_bound_socket_get_fd(h->listener);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(h->bound, sizeof h->bound, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
                 port);
    else
        snprintf(h->bound, sizeof h->bound, "%s", addr);
}

static void http__free(ingest_http *h)
{
    sf_sender_free(h->sender); /* delivers what is left as failed: settles lines */
    while (h->head) {          /* only after a failed start or a hard stop */
        http__req *rq = h->head;
        h->head = rq->next;
        http__req_free(rq);
    }
    if (h->tick)
        event_free(h->tick);
    if (h->http)
        evhttp_free(h->http);
    if (h->base)
        event_base_free(h->base);
    if (h->keys_pg)
        PQfinish(h->keys_pg);
    pthread_mutex_destroy(&h->stats_mu);
    free(h);
}

void ingest_http_stats_get(ingest_http *h, ingest_http_stats *out)
{
    pthread_mutex_lock(&h->stats_mu);
    *out = h->stats;
    pthread_mutex_unlock(&h->stats_mu);
}

sf_status ingest_http_start(const ingest_http_opts *o, const char *addr, ingest_http **out,
                            sf_error *err)
{
    *out = NULL;
    char host[NI_MAXHOST];
    uint16_t port;
    if (!ingest_http_split_addr(addr, host, sizeof host, &port))
        return SF_ERR(err, SF_EINVAL, "--http '%s': expected host:port", addr);
    if (o->max_inflight < 1 || o->max_body < 1 || !o->ring || !o->parse || !o->broker)
        return SF_ERR(err, SF_EINVAL, "http: incomplete options");
    ingest_http *h = calloc(1, sizeof *h);
    if (!h)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    h->o = *o;
    atomic_init(&h->stop, false);
    pthread_mutex_init(&h->stats_mu, NULL);
    sf_sender_opts so;
    sf_sender_opts_init(&so);
    so.max_inflight = o->max_inflight;
    so.retry_for_ms = o->retry_for_ms;
    so.cb = http__outcome;
    so.closure = h;
    sf_status st = sf_sender_new(o->broker, &so, &h->sender, err);
    if (st)
        goto fail;
    if (!(h->base = event_base_new()) || !(h->http = evhttp_new(h->base)) ||
        !(h->tick = evtimer_new(h->base, http__on_tick, h))) {
        st = SF_ERR(err, SF_ENOMEM, "libevent: cannot create the event loop");
        goto fail;
    }
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(h->http, 16384);
    evhttp_set_max_body_size(h->http, (ev_ssize_t)o->max_body);
    evhttp_set_timeout(h->http, o->timeout_s);
    evhttp_set_gencb(h->http, http__on_request, h);
    if (!(h->listener = evhttp_bind_socket_with_handle(h->http, host, port))) {
        st = SF_ERR(err, SF_EIO, "--http %s: cannot listen (address in use or invalid)", addr);
        goto fail;
    }
    http__describe_bound(h, addr);
    if (o->pg_dsn)
        http__reload_keys(h);
    http__arm(h);
    if (pthread_create(&h->thread, NULL, http__main, h) != 0) {
        st = SF_ERR(err, SF_EINTERNAL, "http: cannot start the serving thread");
        goto fail;
    }
    h->thread_started = true;
    if (o->pg_dsn) {
        if (pthread_create(&h->keys_thread, NULL, http__keys_main, h) != 0) {
            st = SF_ERR(err, SF_EINTERNAL, "http: cannot start the key reload thread");
            ingest_http_stop(h, NULL);
            return st;
        }
        h->keys_started = true;
    }
    size_t ncfg = 0, ndb = 0;
    sf_apikey_ring_counts(o->ring, &ncfg, &ndb, NULL);
    sf_log(SF_LOG_INFO,
           "http listening on %s (POST " HTTP__PATH "; %zu keys from the config, %zu from "
           "api_keys; max_body %zu, window %d)",
           h->bound, ncfg, ndb, o->max_body, o->max_inflight);
    *out = h;
    return SF_OK;
fail:
    http__free(h);
    return st;
}

void ingest_http_stop(ingest_http *h, ingest_http_stats *stats)
{
    if (!h)
        return;
    atomic_store(&h->stop, true);
    if (h->thread_started)
        pthread_join(h->thread, NULL);
    if (h->keys_started)
        pthread_join(h->keys_thread, NULL);
    if (stats)
        *stats = h->stats;
    http__free(h);
}
