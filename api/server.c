/*
 * server: threads, routing, authentication and replies (see server.h).
 *
 * Order of checks for every request, so each answer says the first thing
 * wrong: path well-formed (400) -> a route matches (404) -> method GET or
 * HEAD, POST for /v1/reservations only (405) -> API key (401 / 403; 503
 * while the key table could never be read; each refusal counted by reason
 * in /metrics) -> the key's request rate (429 with Retry-After,
 * ratelimit.h) -> path parameters (400) -> query (414 too long, 400 bad)
 * -> PostgreSQL (404 unknown, 503 down). Every reply but /metrics is JSON;
 * errors are {"error": "...", "field": "..." | null}. Requests evhttp
 * itself refuses before routing (request line or headers over the limit, a
 * method token it does not know, a malformed request line) get libevent's
 * own short HTML 400, 413 or 501 reply (not counted in /metrics).
 */
#include "server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "dashboard.h"
#include "log.h"
#include "metrics.h"
#include "query.h"
#include "ratelimit.h"
#include "request.h"
#include "reserve.h"
#include "sse.h"

#define SRV_TICK_MS 100
#define SRV_LEDGER_LIMIT_DEFAULT 100 /* or max_ledger_page when that is lower */

/* Scopes the read routes accept: ingest keys are for writing only. */
#define SRV_READ_SCOPES ((unsigned)(SF_APIKEY_READ | SF_APIKEY_ADMIN))
/* Check-and-reserve writes: ingest (or admin) keys. */
#define SRV_WRITE_SCOPES ((unsigned)(SF_APIKEY_INGEST | SF_APIKEY_ADMIN))

typedef struct api_worker {
    struct api_server *srv;
    int idx;
    struct event_base *base;
    struct evhttp *http;
    struct event *tick;
    api_db *db;
    api_metrics metrics;
    /* Reservations answered by the reserver's thread, waiting to be sent
     * from this one (evhttp is not thread-safe): srv__rjob list under
     * done_mu, and a pipe that wakes the loop. */
    pthread_mutex_t done_mu;
    struct srv__rjob *done;
    int done_rd, done_wr;
    struct event *done_ev;
    pthread_t thread;
    bool running;
    bool pg_down; /* logged the outage already; cleared by the next success */
} api_worker;

struct api_server {
    char *pg_dsn;
    char *nats_url;
    sf_broker_tls nats_tls;
    SSL_CTX *ssl_ctx; /* HTTPS when set; shared by the workers (SSL_new is thread-safe) */
    int max_batch;
    int max_query_bytes, max_ledger_page;
    double rate_per_key, burst;
    int64_t now_ms_override; /* 0: the real clock */
    sf_apikey_ring *ring;
    api_rm *rm;             /* NULL: every read from PostgreSQL */
    api_ratelimit *rl;      /* per key, shared by the threads */
    api_reserver *reserver; /* POST /v1/reservations: one thread, batches */
    atomic_bool stop;
    int n_workers;
    api_worker *workers;
    pthread_mutex_t nats_mu; /* guards broker creation */
    sf_broker *broker;       /* NULL until /healthz first connects */
    atomic_bool nats_down;   /* the outage is logged already */
    api_sse_hub *sse;        /* GET /v1/ops/events */
};

static int64_t srv__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The clock reservations expire by: INV_NOW_MS when set, as for invctl
 * and the reconciler. */
static int64_t srv__now_ms(const api_server *s)
{
    return s->now_ms_override > 0 ? s->now_ms_override : sf_now_ms();
}

/* ----------------------------------------------------------------- replies --- */

typedef struct srv__ctx {
    api_worker *w;
    struct evhttp_request *req;
    api_route route;
    int64_t t0_us;
} srv__ctx;

static void srv__send(srv__ctx *c, int code, const char *ctype, struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    const char *reason = NULL; /* evhttp's phrase, except where it has none */
    if (code == 414)
        reason = "URI Too Long";
    else if (code == 431)
        reason = "Request Header Fields Too Large";
    evhttp_send_reply(c->req, code, reason, body);
    api_metrics_observe(&c->w->metrics, c->route, code, (uint64_t)(srv__mono_us() - c->t0_us));
}

static int srv__dump_cb(const char *buf, size_t size, void *data)
{
    return evbuffer_add(data, buf, size);
}

/* Send j (taken over) as the JSON body. */
static void srv__json(srv__ctx *c, int code, json_t *j)
{
    struct evbuffer *b = evbuffer_new();
    if (!b || !j || json_dump_callback(j, srv__dump_cb, b, JSON_COMPACT) != 0) {
        if (b)
            evbuffer_free(b);
        json_decref(j);
        evhttp_send_error(c->req, 500, NULL);
        api_metrics_observe(&c->w->metrics, c->route, 500, 0);
        return;
    }
    evbuffer_add(b, "\n", 1);
    json_decref(j);
    srv__send(c, code, "application/json", b);
    evbuffer_free(b);
}

static void srv__error(srv__ctx *c, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void srv__error(srv__ctx *c, int code, const char *field, const char *fmt, ...)
{
    char msg[API_ERROR_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *e = json_object();
    json_t *m = json_string(msg); /* messages quote input through sf_str_quote */
    json_object_set_new(e, "error", m ? m : json_string("invalid request"));
    json_object_set_new(e, "field", field && *field ? json_string(field) : json_null());
    srv__json(c, code, e);
}

/* PostgreSQL answered: an outage this thread logged is over. */
static void srv__db_ok(srv__ctx *c)
{
    if (c->w->pg_down)
        sf_log(SF_LOG_INFO, "thread %d: postgres answers again", c->w->idx);
    c->w->pg_down = false;
}

/* A failed query: 404 for an unknown thing (naming field and what), 503
 * when PostgreSQL is away (the detail goes to the log, once per outage,
 * not to the client), 500 otherwise. */
static void srv__db_error(srv__ctx *c, sf_status st, const sf_error *err, const char *field,
                          const char *what)
{
    if (st == SF_ENOTFOUND) {
        srv__db_ok(c);
        srv__error(c, 404, field, "%s %s: %s", field, what, err->msg);
        return;
    }
    if (st == SF_EUNAVAIL) {
        if (!c->w->pg_down)
            sf_log(SF_LOG_WARN, "thread %d: %s (answering 503 until it is back)", c->w->idx,
                   err->msg);
        c->w->pg_down = true;
        srv__error(c, 503, NULL, "database unavailable: PostgreSQL does not answer; retry later");
        return;
    }
    sf_log(SF_LOG_ERROR, "%s: %s", api_route_name(c->route), err->msg);
    srv__error(c, 500, NULL, "internal error");
}

/* ---------------------------------------------------------------- handlers --- */

/* GET /v1/stock/{sku} (location NULL) and .../locations/{location}: from
 * the read model when it is current (read_model.h), else from PostgreSQL;
 * both give the same bytes and the same 404. */
static void srv__stock_read(srv__ctx *c, const char *sku, const char *location)
{
    api_rm *rm = c->w->srv->rm;
    json_t *j = NULL;
    sf_error err;
    sf_status st;
    api_rm_result rr = API_RM_UNAVAILABLE;
    struct evbuffer *b = rm ? evbuffer_new() : NULL;
    if (b)
        rr = location ? api_rm_stock_location(rm, sku, location, b) : api_rm_stock(rm, sku, b);
    if (rr == API_RM_HIT) {
        srv__send(c, 200, "application/json", b);
        evbuffer_free(b);
        return;
    }
    if (b)
        evbuffer_free(b);
    if (rr == API_RM_UNKNOWN)
        st = SF_ERR(&err, SF_ENOTFOUND, "no stock recorded%s", location ? " at this location" : "");
    else if (location)
        st = api_db_stock_location(c->w->db, sku, location, &j, &err);
    else
        st = api_db_stock(c->w->db, sku, &j, &err);
    if (st) {
        char q[SF_STR_MAX * 4 + 8], what[SF_STR_MAX * 5 + 32];
        sf_str_quote(sku, strlen(sku), q, sizeof q);
        snprintf(what, sizeof what, "%s%s%s", q, location ? " at " : "", location ? location : "");
        srv__db_error(c, st, &err, "sku", what);
        return;
    }
    srv__db_ok(c);
    srv__json(c, 200, j);
}

static void srv__stock(srv__ctx *c, const api_request *rq)
{
    srv__stock_read(c, rq->sku, NULL);
}

static void srv__stock_location(srv__ctx *c, const api_request *rq)
{
    srv__stock_read(c, rq->sku, rq->location);
}

static void srv__channel_stock(srv__ctx *c, const api_request *rq)
{
    size_t n = 0;
    const char **skus = malloc((rq->n_query ? rq->n_query : 1) * sizeof *skus);
    if (!skus) {
        srv__error(c, 500, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < rq->n_query; i++) {
        if (rq->query[i].value_len == 0) {
            free(skus);
            srv__error(c, 400, "sku", "field sku: must not be empty (parameter %zu)", i + 1);
            return;
        }
        skus[n++] = rq->query[i].value;
    }
    if (n == 0) {
        free(skus);
        srv__error(c, 400, "sku", "field sku: give at least one (?sku=A&sku=B, at most %d)",
                   c->w->srv->max_batch);
        return;
    }
    json_t *j = NULL;
    sf_error err;
    sf_status st = api_db_channel_stock(c->w->db, rq->channel, skus, n, &j, &err);
    free(skus);
    if (st) {
        srv__db_error(c, st, &err, "channel", rq->channel);
        return;
    }
    srv__db_ok(c);
    srv__json(c, 200, j);
}

/* A whole decimal number in [min, max] from a query value; limit (may be
 * NULL) names the setting that max comes from. */
static bool srv__int_param(srv__ctx *c, const api_request *rq, const char *key, long long min,
                           long long max, const char *limit, long long *out)
{
    size_t seen = 0;
    const char *v = NULL;
    for (size_t i = 0; i < rq->n_query; i++) {
        if (!strcmp(rq->query[i].key, key)) {
            seen++;
            v = rq->query[i].value;
        }
    }
    if (seen == 0)
        return true;
    if (seen > 1) {
        srv__error(c, 400, key, "field %s: given %zu times", key, seen);
        return false;
    }
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < min || x > max || v[0] == '+' || v[0] == ' ') {
        char q[SF_STR_MAX * 4 + 8];
        sf_str_quote(v, strlen(v), q, sizeof q);
        srv__error(c, 400, key, "field %s: %s is not a whole number in %lld..%lld%s%s%s", key, q,
                   min, max, limit ? " ([api] " : "", limit ? limit : "", limit ? ")" : "");
        return false;
    }
    *out = x;
    return true;
}

static void srv__ledger(srv__ctx *c, const api_request *rq)
{
    int page = c->w->srv->max_ledger_page;
    long long limit = page < SRV_LEDGER_LIMIT_DEFAULT ? page : SRV_LEDGER_LIMIT_DEFAULT, after = 0;
    if (!srv__int_param(c, rq, "limit", 1, page, "max_ledger_page", &limit) ||
        !srv__int_param(c, rq, "after", 0, INT64_MAX, NULL, &after))
        return;
    const char *location = NULL;
    size_t nloc = 0;
    for (size_t i = 0; i < rq->n_query; i++) {
        if (!strcmp(rq->query[i].key, "location")) {
            nloc++;
            location = rq->query[i].value;
        }
    }
    if (nloc > 1) {
        srv__error(c, 400, "location", "field location: given %zu times", nloc);
        return;
    }
    if (location && !sf_is_token(location)) {
        char q[SF_STR_MAX * 4 + 8];
        sf_str_quote(location, strlen(location), q, sizeof q);
        srv__error(c, 400, "location",
                   "field location: %s is not a location id (only A-Z a-z "
                   "0-9 _ -)",
                   q);
        return;
    }
    json_t *j = NULL;
    sf_error err;
    sf_status st = api_db_ledger(c->w->db, rq->sku, location, after, (int)limit, &j, &err);
    if (st) {
        char q[SF_STR_MAX * 4 + 8];
        sf_str_quote(rq->sku, strlen(rq->sku), q, sizeof q);
        srv__db_error(c, st, &err, "sku", q);
        return;
    }
    srv__db_ok(c);
    srv__json(c, 200, j);
}

static void srv__reservation(srv__ctx *c, const api_request *rq)
{
    json_t *j = NULL;
    sf_error err;
    sf_status st = api_db_reservation(c->w->db, rq->ref, srv__now_ms(c->w->srv), &j, &err);
    if (st) {
        char q[SF_STR_MAX * 4 + 8];
        sf_str_quote(rq->ref, strlen(rq->ref), q, sizeof q);
        srv__db_error(c, st, &err, "ref", q);
        return;
    }
    srv__db_ok(c);
    srv__json(c, 200, j);
}

/* A reservation in flight: the request waits while the reserver's thread
 * runs it in a batch; the answer comes back to the serving thread that
 * owns the connection through its done list (srv__on_reserve_done). */
typedef struct srv__rjob {
    api_reserve_job job; /* first: the reserver's callback gets &job */
    srv__ctx c;
    struct srv__rjob *next;
} srv__rjob;

/* The reserver's thread: hand the answered job to its serving thread. */
static void srv__reserve_done(api_reserve_job *job)
{
    srv__rjob *rj = (srv__rjob *)job;
    api_worker *w = rj->c.w;
    pthread_mutex_lock(&w->done_mu);
    bool wake = !w->done; /* else a wake-up is pending: the thread takes the whole list */
    rj->next = w->done;
    w->done = rj;
    pthread_mutex_unlock(&w->done_mu);
    /* A full pipe means a wake-up is pending already. */
    if (wake && write(w->done_wr, "r", 1) < 0 && errno != EAGAIN)
        sf_log(SF_LOG_WARN, "reservations: wake-up of thread %d: %s", w->idx, strerror(errno));
}

/* 201 {event_id, location, expires_at}, 409 {available}; a repeated
 * Idempotency-Key gets the first answer again, with the header
 * Idempotent-Replayed: true. */
static void srv__reserve_reply(srv__ctx *c, const api_reserve_job *job)
{
    if (job->st == SF_EINVAL) {
        srv__error(c, 400, "body", "%s", job->err.msg);
        return;
    }
    if (job->st) {
        srv__db_error(c, job->st, &job->err, "body", "reservation");
        return;
    }
    srv__db_ok(c);
    const api_reserve_result *res = &job->res;
    if (res->replay)
        evhttp_add_header(evhttp_request_get_output_headers(c->req), "Idempotent-Replayed", "true");
    json_t *j = json_object();
    switch (res->status) {
    case 201: {
        char at[32];
        api_time_format(res->expires_at, at, sizeof at);
        json_object_set_new(j, "event_id", json_string(res->event_id));
        json_object_set_new(j, "location", json_string(res->location));
        json_object_set_new(j, "expires_at", json_string(at));
        srv__json(c, 201, j);
        return;
    }
    case 409:
        json_object_set_new(j, "available", json_integer(res->available));
        srv__json(c, 409, j);
        return;
    case 404:
        json_decref(j);
        srv__error(c, 404, "channel", "channel %s: no such channel", job->rq.channel);
        return;
    default:
        json_decref(j);
        srv__error(c, 422, "Idempotency-Key",
                   "header Idempotency-Key: already used with another request (ref, sku, qty, "
                   "location or channel, ttl_s differ); use a new key for a new reservation");
        return;
    }
}

/* Send every answer the reserver handed to this thread. */
static void srv__reserve_flush(api_worker *w)
{
    pthread_mutex_lock(&w->done_mu);
    srv__rjob *rj = w->done;
    w->done = NULL;
    pthread_mutex_unlock(&w->done_mu);
    while (rj) {
        srv__rjob *next = rj->next;
        srv__reserve_reply(&rj->c, &rj->job);
        free(rj);
        rj = next;
    }
}

static void srv__on_reserve_done(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char drain[64];
    while (read(fd, drain, sizeof drain) > 0) {
    }
    srv__reserve_flush(arg);
}

/* POST /v1/reservations (reserve.h): checked here, queued for the
 * reserver; the reply is sent when its batch has committed. */
static void srv__reserve(srv__ctx *c)
{
    struct evhttp_request *req = c->req;
    const char *key = evhttp_find_header(evhttp_request_get_input_headers(req), "Idempotency-Key");
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : NULL;
    srv__rjob *rj = calloc(1, sizeof *rj);
    if (!rj) {
        srv__error(c, 500, NULL, "internal error: out of memory");
        return;
    }
    api_reserve_bad bad;
    if (!api_reserve_parse(key, body, len, &rj->job.rq, &bad)) {
        free(rj);
        srv__error(c, 400, bad.field, "%s", bad.msg);
        return;
    }
    rj->c = *c;
    rj->job.now_ms = srv__now_ms(c->w->srv);
    rj->job.done = srv__reserve_done;
    sf_error err;
    sf_status st = api_reserver_submit(c->w->srv->reserver, &rj->job, &err);
    if (st == SF_EINVAL) {
        free(rj);
        srv__error(c, 400, "body", "%s", err.msg);
    } else if (st) {
        free(rj);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        srv__error(c, 503, NULL, "reservations: %s", err.msg);
    }
}

/* NATS is up when JetStream answers an API request (a missing stream is
 * an answer too). The connection is made on first use and then kept; it
 * reconnects by itself. */
static sf_status srv__nats_check(api_server *s, sf_error *err)
{
    sf_status st = SF_OK;
    pthread_mutex_lock(&s->nats_mu);
    if (!s->broker) {
        sf_broker_opts bo;
        sf_broker_opts_init(&bo);
        bo.urls = s->nats_url;
        bo.tls = s->nats_tls;
        bo.name = "inv-api";
        bo.connect_timeout_ms = 1000;
        bo.js_wait_ms = 1000;
        st = sf_broker_connect(&bo, &s->broker, err);
    }
    sf_broker *b = s->broker;
    pthread_mutex_unlock(&s->nats_mu);
    if (st)
        return st;
    st = sf_broker_stream_info(b, SF_STREAM_EVENTS, NULL, NULL, NULL, NULL, err);
    return st == SF_ENOTFOUND ? SF_OK : st;
}

static void srv__healthz(srv__ctx *c)
{
    sf_error perr, nerr;
    sf_status ps = api_db_ping(c->w->db, &perr);
    sf_status ns = srv__nats_check(c->w->srv, &nerr);
    json_t *j = json_object(), *down = json_array();
    json_object_set_new(j, "status", json_string(ps || ns ? "unavailable" : "ok"));
    json_object_set_new(j, "postgres", json_string(ps ? "down" : "ok"));
    json_object_set_new(j, "nats", json_string(ns ? "down" : "ok"));
    if (ps) {
        json_array_append_new(down, json_string("postgres"));
        if (!c->w->pg_down)
            sf_log(SF_LOG_WARN, "healthz: %s", perr.msg);
        c->w->pg_down = true;
    } else {
        srv__db_ok(c);
    }
    if (ns) {
        json_array_append_new(down, json_string("nats"));
        if (!atomic_exchange(&c->w->srv->nats_down, true))
            sf_log(SF_LOG_WARN, "healthz: %s", nerr.msg);
    } else if (atomic_exchange(&c->w->srv->nats_down, false)) {
        sf_log(SF_LOG_INFO, "healthz: nats answers again");
    }
    json_object_set_new(j, "down", down);
    if (ps || ns)
        json_object_set_new(j, "error",
                            json_string(ps && ns ? "postgres and nats down"
                                        : ps     ? "postgres down"
                                                 : "nats down"));
    srv__json(c, ps || ns ? 503 : 200, j);
}

static void srv__metrics(srv__ctx *c)
{
    api_server *s = c->w->srv;
    const api_metrics *sets[API_THREADS_MAX];
    for (int i = 0; i < s->n_workers; i++)
        sets[i] = &s->workers[i].metrics;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        srv__error(c, 500, NULL, "out of memory");
        return;
    }
    api_metrics_render(sets, (size_t)s->n_workers, b);
    /* The reservation gauges need PostgreSQL; while it is away they are
     * left out and the request counters still answer. */
    api_resv_totals rt;
    sf_error err;
    sf_status st = api_db_reservation_totals(c->w->db, srv__now_ms(s), &rt, &err);
    if (st == SF_OK) {
        srv__db_ok(c);
        evbuffer_add_printf(b,
                            "# HELP stockflow_reservations_outstanding Quantity held by "
                            "reservations (sum of outstanding).\n"
                            "# TYPE stockflow_reservations_outstanding gauge\n"
                            "stockflow_reservations_outstanding %lld\n"
                            "# HELP stockflow_reservations_open Reservations with something "
                            "outstanding.\n"
                            "# TYPE stockflow_reservations_open gauge\n"
                            "stockflow_reservations_open %lld\n"
                            "# HELP stockflow_reservations_expired Reservations past expires_at "
                            "with something outstanding, not yet released.\n"
                            "# TYPE stockflow_reservations_expired gauge\n"
                            "stockflow_reservations_expired %lld\n",
                            (long long)rt.outstanding, (long long)rt.open, (long long)rt.expired);
    } else if (st == SF_EUNAVAIL) {
        if (!c->w->pg_down)
            sf_log(SF_LOG_WARN, "thread %d: %s (metrics without reservation gauges)", c->w->idx,
                   err.msg);
        c->w->pg_down = true;
    } else {
        sf_log(SF_LOG_ERROR, "metrics: %s", err.msg);
    }
    if (s->rm) {
        api_rm_stats rs;
        api_rm_stats_get(s->rm, &rs);
        evbuffer_add_printf(b,
                            "# HELP inv_api_read_model_current 1 when GET /v1/stock/{sku} is "
                            "served from the in-memory read model, 0 while it asks PostgreSQL.\n"
                            "# TYPE inv_api_read_model_current gauge\n"
                            "inv_api_read_model_current %d\n"
                            "# HELP inv_api_read_model_skus Skus held by the read model.\n"
                            "# TYPE inv_api_read_model_skus gauge\n"
                            "inv_api_read_model_skus %lld\n"
                            "# HELP inv_api_read_model_positions Positions held by the read "
                            "model.\n"
                            "# TYPE inv_api_read_model_positions gauge\n"
                            "inv_api_read_model_positions %lld\n"
                            "# HELP inv_api_read_model_polls_total Read model polls, by what "
                            "they did.\n"
                            "# TYPE inv_api_read_model_polls_total counter\n"
                            "inv_api_read_model_polls_total{kind=\"load\"} %lld\n"
                            "inv_api_read_model_polls_total{kind=\"changes\"} %lld\n"
                            "inv_api_read_model_polls_total{kind=\"unchanged\"} %lld\n"
                            "# HELP inv_api_read_model_last_poll_seconds Duration of the last "
                            "poll that read changes.\n"
                            "# TYPE inv_api_read_model_last_poll_seconds gauge\n"
                            "inv_api_read_model_last_poll_seconds %.6f\n",
                            rs.current, (long long)rs.skus, (long long)rs.positions,
                            (long long)rs.loads, (long long)rs.polls, (long long)rs.skipped_polls,
                            (double)rs.last_poll_us / 1e6);
    }
    size_t cfg_keys = 0, db_keys = 0;
    bool loaded = false;
    sf_apikey_ring_counts(s->ring, &cfg_keys, &db_keys, &loaded);
    evbuffer_add_printf(b,
                        "# HELP inv_api_keys API keys known, by source (revoked included).\n"
                        "# TYPE inv_api_keys gauge\n"
                        "inv_api_keys{source=\"config\"} %zu\n"
                        "inv_api_keys{source=\"table\"} %zu\n"
                        "# HELP inv_api_threads Serving threads.\n"
                        "# TYPE inv_api_threads gauge\n"
                        "inv_api_threads %d\n",
                        cfg_keys, db_keys, s->n_workers);
    api_reserver_stats rs;
    api_reserver_stats_get(s->reserver, &rs);
    evbuffer_add_printf(b,
                        "# HELP inv_api_reserve_batches_total Check-and-reserve statements run "
                        "(each a batch of requests, one commit).\n"
                        "# TYPE inv_api_reserve_batches_total counter\n"
                        "inv_api_reserve_batches_total %lld\n"
                        "# HELP inv_api_reserve_requests_total Reservation requests run in "
                        "those batches.\n"
                        "# TYPE inv_api_reserve_requests_total counter\n"
                        "inv_api_reserve_requests_total %lld\n"
                        "# HELP inv_api_reserve_batch_largest The largest batch so far.\n"
                        "# TYPE inv_api_reserve_batch_largest gauge\n"
                        "inv_api_reserve_batch_largest %lld\n"
                        "# HELP inv_api_reserve_refused_total Reservation requests refused "
                        "with 503 because [api] reserve_queue were waiting.\n"
                        "# TYPE inv_api_reserve_refused_total counter\n"
                        "inv_api_reserve_refused_total %lld\n"
                        "# HELP inv_api_reserve_queued Reservation requests waiting now.\n"
                        "# TYPE inv_api_reserve_queued gauge\n"
                        "inv_api_reserve_queued %d\n",
                        (long long)rs.batches, (long long)rs.requests, (long long)rs.largest,
                        (long long)rs.refused, rs.queued);
    api_sse_render_metrics(s->sse, b);
    srv__send(c, 200, "text/plain; version=0.0.4; charset=utf-8", b);
    evbuffer_free(b);
}

/* ------------------------------------------------------------------ routing --- */

static bool srv__authorized_as(srv__ctx *c, const char *auth)
{
    bool write = c->route == API_R_RESERVE;
    sf_apikey_who who;
    sf_apikey_verdict v = sf_apikey_ring_check(c->w->srv->ring, auth,
                                               write ? SRV_WRITE_SCOPES : SRV_READ_SCOPES, &who);
    int retry_s = 1;
    char bucket[API_RATELIMIT_KEY_MAX + 1];
    switch (v) {
    case SF_APIKEY_OK:
        /* one bucket per key: its id, and where it is kept (a config name
         * cannot hold '.', so "apikey.<id>" is never a table id) */
        snprintf(bucket, sizeof bucket, "%s%s", who.from_config ? "apikey." : "", who.id);
        if (api_ratelimit_take(c->w->srv->rl, bucket, srv__mono_us(), &retry_s))
            return true;
        api_metrics_rate_limited(&c->w->metrics);
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_s);
        evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", ra);
        srv__error(c, 429, "authorization",
                   "rate limit: key %s (id %s) is over [api] rate_per_key (%g requests/s, burst "
                   "%g); retry after %d s",
                   who.name, who.id, c->w->srv->rate_per_key, c->w->srv->burst, retry_s);
        return false;
    case SF_APIKEY_FORBIDDEN:
        api_metrics_auth_fail(&c->w->metrics, API_AUTH_WRONG_SCOPE);
        srv__error(c, 403, "authorization", "%s: this route needs scope %s",
                   sf_apikey_verdict_str(v), write ? "ingest or admin" : "read or admin");
        return false;
    case SF_APIKEY_UNAVAILABLE:
        srv__error(c, 503, "authorization", "%s", sf_apikey_verdict_str(v));
        return false;
    default:
        api_metrics_auth_fail(&c->w->metrics, v == SF_APIKEY_MISSING     ? API_AUTH_MISSING
                                              : v == SF_APIKEY_MALFORMED ? API_AUTH_MALFORMED
                                              : v == SF_APIKEY_REVOKED   ? API_AUTH_REVOKED
                                                                         : API_AUTH_UNKNOWN);
        evhttp_add_header(evhttp_request_get_output_headers(c->req), "WWW-Authenticate",
                          "Bearer realm=\"inv-api\"");
        srv__error(c, 401, "authorization", "%s", sf_apikey_verdict_str(v));
        return false;
    }
}

static bool srv__authorized(srv__ctx *c)
{
    return srv__authorized_as(
        c, evhttp_find_header(evhttp_request_get_input_headers(c->req), "Authorization"));
}

/* 414 when query is longer than max bytes (limit: the setting that says
 * so); true when answered. */
static bool srv__query_too_long(srv__ctx *c, const char *query, size_t max, const char *limit)
{
    size_t n = query ? strlen(query) : 0;
    if (n <= max)
        return false;
    srv__error(c, 414, "query", "query string of %zu bytes, longer than %zu (%s)", n, max, limit);
    return true;
}

/* GET /dashboard: public; ?key= is for the page's script only. */
static void srv__dashboard(srv__ctx *c, api_request *rq, const char *query)
{
    static const char *const keyonly[] = {"key", NULL};
    if (srv__query_too_long(c, query, (size_t)c->w->srv->max_query_bytes, "[api] max_query_bytes"))
        return;
    if (!api_request_query(rq, query, 1, keyonly, "query")) {
        srv__error(c, rq->status, rq->field, "%s", rq->error);
        return;
    }
    size_t len = 0;
    const unsigned char *html = api_dashboard_html(&len);
    struct evbuffer *b = evbuffer_new();
    if (!b || evbuffer_add_reference(b, html, len, NULL, NULL) != 0) {
        if (b)
            evbuffer_free(b);
        srv__error(c, 500, NULL, "out of memory");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "Content-Security-Policy",
                      API_DASHBOARD_CSP);
    srv__send(c, 200, "text/html; charset=utf-8", b);
    evbuffer_free(b);
}

/* GET /v1/ops/events: the key as Authorization or ?key= (an EventSource
 * cannot send headers); ?topics= prefixes. */
static void srv__ops_events(srv__ctx *c, api_request *rq, const char *query)
{
    static const char *const allowed[] = {"key", "topics", NULL};
    if (srv__query_too_long(c, query, (size_t)c->w->srv->max_query_bytes, "[api] max_query_bytes"))
        return;
    if (!api_request_query(rq, query, 2, allowed, "query")) {
        srv__error(c, rq->status, rq->field, "%s", rq->error);
        return;
    }
    const char *hdr = evhttp_find_header(evhttp_request_get_input_headers(c->req), "Authorization");
    const char *key = api_request_get(rq, "key");
    char bearer[SF_APIKEY_KEY_MAX + 16]; /* a longer ?key= is no key: malformed */
    if (!hdr && key)
        snprintf(bearer, sizeof bearer, "Bearer %s",
                 strlen(key) <= SF_APIKEY_KEY_MAX ? key : "(too long)");
    if (!srv__authorized_as(c, hdr || !key ? hdr : bearer))
        return;
    const char *topics = api_request_get(rq, "topics");
    sf_error err;
    if (api_sse_check_topics(topics, &err)) {
        srv__error(c, 400, "topics", "%s", err.msg);
        return;
    }
    if (!api_sse_enabled(c->w->srv->sse)) {
        srv__error(c, 503, NULL, "the ops feed is not configured ([ops] sub_endpoint)");
        return;
    }
    if (evhttp_request_get_command(c->req) == EVHTTP_REQ_HEAD) {
        struct evbuffer *b = evbuffer_new();
        if (b) {
            srv__send(c, 200, "text/event-stream; charset=utf-8", b);
            evbuffer_free(b);
        }
        return;
    }
    api_metrics_observe(&c->w->metrics, c->route, 200, (uint64_t)(srv__mono_us() - c->t0_us));
    api_sse_attach(c->w->srv->sse, c->w->idx, c->req, topics);
}

static void srv__dispatch(srv__ctx *c, api_request *rq, bool params_ok, const char *query)
{
    api_server *s = c->w->srv;
    if (c->route == API_R_HEALTHZ) {
        srv__healthz(c);
        return;
    }
    if (c->route == API_R_DASHBOARD) {
        srv__dashboard(c, rq, query);
        return;
    }
    if (c->route == API_R_OPS_EVENTS) {
        srv__ops_events(c, rq, query);
        return;
    }
    if (!srv__authorized(c))
        return;
    if (!params_ok) {
        srv__error(c, rq->status, rq->field, "%s", rq->error);
        return;
    }
    if (c->route == API_R_METRICS) {
        srv__metrics(c);
        return;
    }
    bool batch = c->route == API_R_CHANNEL_STOCK;
    if (srv__query_too_long(c, query,
                            batch ? (size_t)s->max_batch * 200 + 1024 : (size_t)s->max_query_bytes,
                            batch ? "[api] max_batch x 200 + 1024" : "[api] max_query_bytes"))
        return;
    static const char *const none[] = {NULL};
    static const char *const skus[] = {"sku", NULL};
    static const char *const ledger[] = {"location", "limit", "after", NULL};
    bool ok;
    switch (c->route) {
    case API_R_CHANNEL_STOCK:
        ok = api_request_query(rq, query, (size_t)s->max_batch, skus, "sku");
        break;
    case API_R_LEDGER: ok = api_request_query(rq, query, 8, ledger, "query"); break;
    default: ok = api_request_query(rq, query, 8, none, "query"); break;
    }
    if (!ok) {
        srv__error(c, rq->status, rq->field, "%s", rq->error);
        return;
    }
    switch (c->route) {
    case API_R_STOCK: srv__stock(c, rq); break;
    case API_R_STOCK_LOCATION: srv__stock_location(c, rq); break;
    case API_R_CHANNEL_STOCK: srv__channel_stock(c, rq); break;
    case API_R_LEDGER: srv__ledger(c, rq); break;
    case API_R_RESERVATION: srv__reservation(c, rq); break;
    case API_R_RESERVE: srv__reserve(c); break;
    default: srv__error(c, 404, "path", "no such route"); break;
    }
}

static void srv__on_request(struct evhttp_request *req, void *arg)
{
    srv__ctx c = {.w = arg, .req = req, .route = API_R_UNKNOWN, .t0_us = srv__mono_us()};
    api_request rq;
    memset(&rq, 0, sizeof rq);
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    const char *query = u ? evhttp_uri_get_query(u) : NULL;
    bool params_ok = api_request_route(&rq, path);
    c.route = rq.route;
    if (rq.route == API_R_UNKNOWN) {
        srv__error(&c, rq.status, rq.field, "%s", rq.error);
    } else {
        enum evhttp_cmd_type m = evhttp_request_get_command(req);
        if (rq.route == API_R_RESERVE) {
            if (m != EVHTTP_REQ_POST) {
                evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
                srv__error(&c, 405, "method", "method not allowed: use POST");
            } else {
                srv__dispatch(&c, &rq, params_ok, query);
            }
        } else if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
            srv__error(&c, 405, "method", "method not allowed: use GET");
        } else {
            srv__dispatch(&c, &rq, params_ok, query);
        }
    }
    api_request_free(&rq);
}

/* ------------------------------------------------------------------ threads --- */

static void srv__on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    api_worker *w = arg;
    if (atomic_load(&w->srv->stop))
        event_base_loopbreak(w->base);
}

static void *srv__worker_main(void *arg)
{
    api_worker *w = arg;
    sf_error err;
    if (api_db_ping(w->db, &err)) /* warm the connection; requests retry */
        sf_log(SF_LOG_WARN, "thread %d: %s (connecting again on the next request)", w->idx,
               err.msg);
    event_base_dispatch(w->base);
    return NULL;
}

/* ------------------------------------------------------------------- HTTPS --- */

/* evhttp's per-connection bufferevent: a TLS server session over the
 * accepted socket. A client that does not speak TLS fails the handshake and
 * is closed without a reply. */
static struct bufferevent *srv__tls_bev(struct event_base *base, void *arg)
{
    api_server *s = arg;
    SSL *ssl = SSL_new(s->ssl_ctx);
    if (!ssl)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static sf_status srv__tls_init(api_server *s, const char *cert, const char *key, sf_error *err)
{
    if (!(s->ssl_ctx = SSL_CTX_new(TLS_server_method())))
        return SF_ERR(err, SF_ENOMEM, "TLS: cannot create a context");
    SSL_CTX_set_min_proto_version(s->ssl_ctx, TLS1_2_VERSION);
    char why[256] = "";
    if (SSL_CTX_use_certificate_chain_file(s->ssl_ctx, cert) != 1) {
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        return SF_ERR(err, SF_EINVAL, "[api] tls_cert %s: %s", cert, why);
    }
    if (SSL_CTX_use_PrivateKey_file(s->ssl_ctx, key, SSL_FILETYPE_PEM) != 1) {
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        return SF_ERR(err, SF_EINVAL, "[api] tls_key %s: %s", key, why);
    }
    if (SSL_CTX_check_private_key(s->ssl_ctx) != 1)
        return SF_ERR(err, SF_EINVAL, "[api] tls_key %s does not match tls_cert %s", key, cert);
    return SF_OK;
}

static sf_status srv__worker_init(api_server *s, api_worker *w, int idx, const api_server_opts *o,
                                  sf_error *err)
{
    w->srv = s;
    w->idx = idx;
    api_metrics_init(&w->metrics);
    w->done_rd = w->done_wr = -1;
    pthread_mutex_init(&w->done_mu, NULL);
    sf_status st = api_db_new(o->pg_dsn, &w->db, err);
    if (st)
        return st;
    if (!(w->base = event_base_new()) || !(w->http = evhttp_new(w->base)))
        return SF_ERR(err, SF_ENOMEM, "libevent: cannot create an event base");
    int fds[2];
    if (pipe(fds) != 0)
        return SF_ERR(err, SF_EIO, "pipe for reservation answers: %s", strerror(errno));
    w->done_rd = fds[0];
    w->done_wr = fds[1];
    if (evutil_make_socket_nonblocking(w->done_rd) || evutil_make_socket_nonblocking(w->done_wr) ||
        !(w->done_ev =
              event_new(w->base, w->done_rd, EV_READ | EV_PERSIST, srv__on_reserve_done, w)) ||
        event_add(w->done_ev, NULL) != 0)
        return SF_ERR(err, SF_ENOMEM, "libevent: cannot watch the reservation answers");
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    /* Room for a full channel batch in the request line. */
    evhttp_set_max_headers_size(w->http, (ev_ssize_t)o->max_batch * 200 + o->max_header_bytes);
    evhttp_set_max_body_size(w->http, o->max_body_bytes);
    evhttp_set_timeout(w->http, API_TIMEOUT_S);
    evhttp_set_gencb(w->http, srv__on_request, w);
    if (s->ssl_ctx)
        evhttp_set_bevcb(w->http, srv__tls_bev, s);
    int fd = dup(o->listen_fd); /* each evhttp closes its own on free */
    if (fd < 0)
        return SF_ERR(err, SF_EIO, "dup of the listening socket: %s", strerror(errno));
    evutil_make_socket_closeonexec(fd);
    if (!evhttp_accept_socket_with_handle(w->http, fd)) {
        close(fd);
        return SF_ERR(err, SF_EIO, "libevent: cannot accept on the listening socket");
    }
    struct timeval tv = {0, SRV_TICK_MS * 1000};
    if (!(w->tick = event_new(w->base, -1, EV_PERSIST, srv__on_tick, w)) ||
        event_add(w->tick, &tv) != 0)
        return SF_ERR(err, SF_ENOMEM, "libevent: cannot add a timer");
    return SF_OK;
}

static void srv__worker_free(api_worker *w)
{
    srv__reserve_flush(w); /* answers that came after the loop stopped */
    if (w->done_ev)
        event_free(w->done_ev);
    if (w->done_rd >= 0)
        close(w->done_rd);
    if (w->done_wr >= 0)
        close(w->done_wr);
    pthread_mutex_destroy(&w->done_mu);
    if (w->tick)
        event_free(w->tick);
    if (w->http)
        evhttp_free(w->http);
    if (w->base)
        event_base_free(w->base);
    api_db_free(w->db);
}

sf_status api_server_start(const api_server_opts *o, api_server **out, sf_error *err)
{
    *out = NULL;
    if (o->threads < 1 || o->threads > API_THREADS_MAX)
        return SF_ERR(err, SF_EINVAL, "threads: %d is not in 1..%d", o->threads, API_THREADS_MAX);
    if (o->max_query_bytes < 1 || o->max_ledger_page < 1)
        return SF_ERR(err, SF_EINVAL, "max_query_bytes %d and max_ledger_page %d must be >= 1",
                      o->max_query_bytes, o->max_ledger_page);
    api_server *s = calloc(1, sizeof *s);
    if (!s)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    atomic_init(&s->stop, false);
    atomic_init(&s->nats_down, false);
    pthread_mutex_init(&s->nats_mu, NULL);
    s->max_batch = o->max_batch;
    s->max_query_bytes = o->max_query_bytes;
    s->max_ledger_page = o->max_ledger_page;
    s->rate_per_key = o->rate_per_key;
    s->burst = o->burst;
    s->now_ms_override = o->now_ms_override;
    s->ring = o->ring;
    s->rm = o->rm;
    s->pg_dsn = strdup(o->pg_dsn);
    s->nats_url = strdup(o->nats_url);
    s->nats_tls = o->nats_tls;
    s->workers = calloc((size_t)o->threads, sizeof *s->workers);
    sf_status st = SF_OK;
    if (!s->pg_dsn || !s->nats_url || !s->workers) {
        st = SF_ERR(err, SF_ENOMEM, "out of memory");
        goto fail;
    }
    bool has_cert = o->tls_cert && *o->tls_cert, has_key = o->tls_key && *o->tls_key;
    if (has_cert != has_key) {
        st = SF_ERR(err, SF_EINVAL, "[api] tls_cert and tls_key go together (got only %s)",
                    has_cert ? "tls_cert" : "tls_key");
        goto fail;
    }
    if (has_cert && (st = srv__tls_init(s, o->tls_cert, o->tls_key, err)))
        goto fail;
    if ((st = api_ratelimit_new(o->rate_per_key, o->burst, &s->rl, err)))
        goto fail;
    api_reserver_opts ro;
    api_reserver_opts_init(&ro);
    ro.dsn = o->pg_dsn;
    ro.threads = o->reserve_threads;
    ro.max_batch = o->reserve_batch;
    ro.max_queue = o->reserve_queue;
    if ((st = api_reserver_start(&ro, &s->reserver, err)))
        goto fail;
    for (int i = 0; i < o->threads; i++) {
        s->n_workers = i + 1;
        if ((st = srv__worker_init(s, &s->workers[i], i, o, err)))
            goto fail;
    }
    struct event_base *bases[API_THREADS_MAX];
    for (int i = 0; i < s->n_workers; i++)
        bases[i] = s->workers[i].base;
    api_sse_opts sso;
    api_sse_opts_init(&sso);
    sso.sub_endpoint = o->ops_sub_endpoint;
    sso.bases = bases;
    sso.n_bases = s->n_workers;
    if ((st = api_sse_hub_start(&sso, &s->sse, err)))
        goto fail;
    for (int i = 0; i < s->n_workers; i++) {
        api_worker *w = &s->workers[i];
        if (pthread_create(&w->thread, NULL, srv__worker_main, w) != 0) {
            st = SF_ERR(err, SF_EINTERNAL, "cannot start serving thread %d", i);
            goto fail;
        }
        w->running = true;
    }
    *out = s;
    return SF_OK;
fail:
    api_server_stop(s);
    return st;
}

void api_server_stop(api_server *s)
{
    if (!s)
        return;
    /* First the reserver: it answers what is queued, and the serving
     * threads, still running, send those answers. */
    api_reserver_stop(s->reserver);
    s->reserver = NULL;
    atomic_store(&s->stop, true);
    for (int i = 0; i < s->n_workers; i++) {
        if (s->workers[i].running)
            pthread_join(s->workers[i].thread, NULL);
    }
    api_sse_hub_free(s->sse); /* its streams live on the workers' bases */
    for (int i = 0; i < s->n_workers; i++)
        srv__worker_free(&s->workers[i]);
    if (s->broker) {
        sf_broker_close(s->broker);
        sf_broker_library_cleanup();
    }
    pthread_mutex_destroy(&s->nats_mu);
    if (s->ssl_ctx)
        SSL_CTX_free(s->ssl_ctx);
    api_ratelimit_free(s->rl);
    free(s->workers);
    free(s->pg_dsn);
    free(s->nats_url);
    free(s);
}
