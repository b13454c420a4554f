/*
 * reserve: request checks and the reserver's batches (see reserve.h).
 *
 * The checks here are the API's edge: every field is bounded and checked
 * before PostgreSQL sees it, and the RESERVE event is then built and put
 * through sf_event_validate, the same gate every producer's events pass,
 * so nothing reaches the ledger that a consumer would have sidelined.
 */
#include "reserve.h"

#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"

/* ------------------------------------------------------------------ parsing --- */

static bool res__fail(api_reserve_bad *bad, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool res__fail(api_reserve_bad *bad, const char *field, const char *fmt, ...)
{
    snprintf(bad->field, sizeof bad->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bad->msg, sizeof bad->msg, fmt, ap);
    va_end(ap);
    return false;
}

/* A string field: 1..64 bytes with the event contract's checks
 * (sf_event_set_str: UTF-8, no control characters, C1 ones included), so
 * the RESERVE built from it passes the event gate; a location or channel
 * also a token. */
static bool res__str(json_t *body, const char *name, bool token, bool required, char *out,
                     api_reserve_bad *bad)
{
    out[0] = '\0';
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v)) {
        if (required)
            return res__fail(bad, name, "field %s: missing", name);
        return true;
    }
    if (!json_is_string(v))
        return res__fail(bad, name, "field %s: must be a string", name);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0)
        return res__fail(bad, name, "field %s: must not be empty", name);
    sf_error err;
    if (sf_event_set_str(out, s, len, name, &err))
        return res__fail(bad, name, "%s", err.msg);
    if (token && !sf_is_token(out)) {
        char q[SF_STR_MAX * 4 + 8];
        sf_str_quote(s, len, q, sizeof q);
        out[0] = '\0';
        return res__fail(bad, name, "field %s: %s is not a %s id (only A-Z a-z 0-9 _ -)", name, q,
                         name);
    }
    return true;
}

static bool res__int(json_t *body, const char *name, int64_t min, int64_t max, int64_t *out,
                     api_reserve_bad *bad)
{
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v))
        return res__fail(bad, name, "field %s: missing", name);
    if (!json_is_integer(v))
        return res__fail(bad, name, "field %s: must be a whole number in %" PRId64 "..%" PRId64,
                         name, min, max);
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return res__fail(bad, name, "field %s: %" PRId64 " is not in %" PRId64 "..%" PRId64, name,
                         (int64_t)x, min, max);
    *out = (int64_t)x;
    return true;
}

bool api_reserve_parse(const char *key, const char *body, size_t len, api_reserve_req *out,
                       api_reserve_bad *bad)
{
    memset(out, 0, sizeof *out);
    memset(bad, 0, sizeof *bad);
    if (!key || !*key)
        return res__fail(bad, "Idempotency-Key",
                         "header Idempotency-Key: missing (one unique value per reservation; a "
                         "retry sends the same one)");
    size_t klen = strlen(key);
    char q[SF_STR_MAX * 4 + 8];
    sf_str_quote(key, klen, q, sizeof q);
    if (klen > API_RESERVE_KEY_MAX)
        return res__fail(bad, "Idempotency-Key",
                         "header Idempotency-Key: %s is %zu bytes, longer "
                         "than %d",
                         q, klen, API_RESERVE_KEY_MAX);
    for (size_t i = 0; i < klen; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x21 || c > 0x7e)
            return res__fail(bad, "Idempotency-Key",
                             "header Idempotency-Key: %s: only visible ASCII characters", q);
    }
    memcpy(out->key, key, klen + 1);

    if (!body || len == 0)
        return res__fail(bad, "body",
                         "body: missing; send {\"ref\", \"sku\", \"qty\", \"location\" or "
                         "\"channel\", \"ttl_s\"}");
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return res__fail(bad, "body", "body: not JSON (line %d column %d: %s)", je.line, je.column,
                         je.text);
    bool ok = false;
    const char *k;
    json_t *v;
    if (!json_is_object(j)) {
        res__fail(bad, "body", "body: must be a JSON object");
        goto out;
    }
    json_object_foreach(j, k, v)
    {
        (void)v;
        if (strcmp(k, "ref") && strcmp(k, "sku") && strcmp(k, "qty") && strcmp(k, "location") &&
            strcmp(k, "channel") && strcmp(k, "ttl_s")) {
            char fq[SF_STR_MAX * 4 + 8];
            sf_str_quote(k, strlen(k), fq, sizeof fq);
            res__fail(bad, "body",
                      "body: unknown field %s (ref, sku, qty, location, channel, ttl_s)", fq);
            goto out;
        }
    }
    if (!res__str(j, "ref", false, true, out->ref, bad) ||
        !res__str(j, "sku", false, true, out->sku, bad) ||
        !res__int(j, "qty", 1, API_RESERVE_QTY_MAX, &out->qty, bad) ||
        !res__str(j, "location", true, false, out->location, bad) ||
        !res__str(j, "channel", true, false, out->channel, bad) ||
        !res__int(j, "ttl_s", 1, API_RESERVE_TTL_MAX, &out->ttl_s, bad))
        goto out;
    if (!out->location[0] == !out->channel[0]) {
        res__fail(bad, out->location[0] ? "channel" : "location",
                  "fields location and channel: give exactly one (where to reserve)");
        goto out;
    }
    ok = true;
out:
    json_decref(j);
    return ok;
}

void api_reserve_event_id(const api_reserve_req *rq, char *out, size_t size)
{
    const char *parts[3] = {rq->key, rq->ref, rq->sku};
    char hex[41];
    sf_sha256_hex_joined(parts, 3, 40, hex);
    snprintf(out, size, "rsv-%s", hex);
}

sf_status api_reserve_event(const api_reserve_req *rq, int64_t now_ms, sf_event *ev, sf_error *err)
{
    sf_event_init(ev);
    api_reserve_event_id(rq, ev->event_id, sizeof ev->event_id);
    ev->kind = SF_KIND_RESERVE;
    snprintf(ev->sku, sizeof ev->sku, "%s", rq->sku);
    snprintf(ev->location, sizeof ev->location, "%s", rq->location[0] ? rq->location : "X");
    ev->qty = rq->qty;
    ev->occurred_at = now_ms;
    snprintf(ev->source, sizeof ev->source, API_RESERVE_SOURCE);
    ev->has_ref = true;
    snprintf(ev->ref, sizeof ev->ref, "%s", rq->ref);
    if (rq->channel[0]) {
        ev->has_channel = true;
        snprintf(ev->channel, sizeof ev->channel, "%s", rq->channel);
    }
    ev->has_expires_at = true;
    ev->expires_at = now_ms + rq->ttl_s * 1000;
    return sf_event_validate(ev, now_ms, 0, err);
}

/* ----------------------------------------------------------------- reserver --- */

#define RES_STMT "api_reserve_batch"
#define RES_STATEMENT_TIMEOUT "SET statement_timeout = 10000"
#define RES_ATTEMPTS 3 /* a lost connection or a deadlock victim: the batch is run again */
#define RES_NOTIFY_MS 50

static const char RES_SQL[] =
    "SELECT i, status, event_id, location, expires_at, available, replay"
    " FROM sf_reserve_batch($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::bigint[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11)";
#define RES_NPARAMS 11

/* One reserver thread and its PostgreSQL session. */
typedef struct res__session {
    struct api_reserver *r;
    PGconn *pg; /* NULL until connected */
    pthread_t thread;
    bool started;
} res__session;

struct api_reserver {
    char *dsn;
    int max_batch, max_queue, threads;
    res__session session[API_RESERVE_THREADS_MAX];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    api_reserve_job *head, *tail; /* FIFO; guarded by mu */
    int queued;                   /* guarded by mu */
    bool stopping;                /* guarded by mu */
    api_reserver_stats stats;     /* guarded by mu */
    int64_t last_notify_ms;       /* guarded by mu */
};

void api_reserver_opts_init(api_reserver_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_batch = API_RESERVE_BATCH;
    o->max_queue = API_RESERVE_QUEUE;
    o->threads = API_RESERVE_THREADS;
}

/* Connect and prepare the statement. */
static sf_status res__connect(res__session *r, sf_error *err)
{
    bool fresh = false;
    sf_status st = sf_db_ensure(&r->pg, r->r->dsn, &fresh, err);
    if (st || !fresh)
        return st;
    if ((st = sf_db_exec(r->pg, RES_STATEMENT_TIMEOUT, err)))
        goto fail;
    PGresult *res = PQprepare(r->pg, RES_STMT, RES_SQL, 0, NULL);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = sf_db_fail(r->pg, res, "prepare sf_reserve_batch (run invctl setup?)", err);
        PQclear(res);
        goto fail;
    }
    PQclear(res);
    return SF_OK;
fail:
    PQfinish(r->pg);
    r->pg = NULL;
    return st;
}

static void res__copy(char *dst, size_t size, const PGresult *res, int row, int col)
{
    snprintf(dst, size, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

static int64_t res__bigint(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Run a batch's jobs as one statement; on failure every one of them gets
 * the error, except a data error, after which each runs alone. */
static void res__run(res__session *r, api_reserve_job **job, int n)
{
    enum { KEY, REQUEST, EVENT_ID, REF, SKU, QTY, LOCATION, CHANNEL, AT, EXPIRES, NARR };
    sf_db_array arr[NARR];
    for (int a = 0; a < NARR; a++)
        sf_db_array_init(&arr[a]);
    for (int k = 0; k < n; k++) {
        api_reserve_job *jb = job[k];
        const api_reserve_req *rq = &jb->rq;
        char request[SF_STR_MAX * 4 + 64];
        snprintf(request, sizeof request, "%s\x1f%s\x1f%" PRId64 "\x1f%s\x1f%s\x1f%" PRId64,
                 rq->ref, rq->sku, rq->qty, rq->location, rq->channel, rq->ttl_s);
        sf_db_array_add(&arr[KEY], rq->key);
        sf_db_array_add(&arr[REQUEST], request);
        sf_db_array_add(&arr[EVENT_ID], jb->event_id);
        sf_db_array_add(&arr[REF], rq->ref);
        sf_db_array_add(&arr[SKU], rq->sku);
        sf_db_array_add_int(&arr[QTY], rq->qty);
        sf_db_array_add(&arr[LOCATION], rq->location[0] ? rq->location : NULL);
        sf_db_array_add(&arr[CHANNEL], rq->channel[0] ? rq->channel : NULL);
        sf_db_array_add_int(&arr[AT], jb->now_ms);
        sf_db_array_add_int(&arr[EXPIRES], jb->expires_at);
    }
    const char *params[RES_NPARAMS];
    sf_status st = SF_OK;
    sf_error err;
    for (int a = 0; a < NARR; a++) {
        if (!(params[a] = sf_db_array_end(&arr[a])))
            st = SF_ERR(&err, SF_ENOMEM, "out of memory for a batch of %d reservations", n);
    }
    params[NARR] = API_RESERVE_SOURCE;
    for (int attempt = 1; !st && n > 0; attempt++) {
        if ((st = res__connect(r, &err))) {
            if (attempt < RES_ATTEMPTS && st == SF_EUNAVAIL) {
                st = SF_OK;
                continue;
            }
            break;
        }
        PGresult *res = PQexecPrepared(r->pg, RES_STMT, RES_NPARAMS, params, NULL, NULL, 0);
        if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == n) {
            for (int row = 0; row < n; row++) {
                int i = atoi(PQgetvalue(res, row, 0));
                if (i < 1 || i > n)
                    continue; /* cannot happen: the function numbers its input */
                api_reserve_result *o = &job[i - 1]->res;
                o->status = atoi(PQgetvalue(res, row, 1));
                res__copy(o->event_id, sizeof o->event_id, res, row, 2);
                res__copy(o->location, sizeof o->location, res, row, 3);
                o->expires_at = res__bigint(res, row, 4);
                o->available = res__bigint(res, row, 5);
                o->replay = PQgetvalue(res, row, 6)[0] == 't';
            }
            PQclear(res);
            break;
        }
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        bool deadlock = state && (!strcmp(state, "40P01") || !strcmp(state, "40001"));
        st = sf_db_fail(r->pg, res, "sf_reserve_batch", &err);
        PQclear(res);
        if (attempt < RES_ATTEMPTS && (deadlock || st == SF_EUNAVAIL))
            st = SF_OK; /* safe: each key makes a repeat return the first answer */
        else
            break;
    }
    for (int a = 0; a < NARR; a++)
        sf_db_array_free(&arr[a]);
    if (st == SF_EINVAL && n > 1) {
        /* A data error (SQLSTATE 22, 23) rolled the whole batch back, and
         * belongs to one of its requests: run each alone, so only that
         * one is refused. */
        sf_log(SF_LOG_WARN, "reservations: a batch of %d failed (%s); running each alone", n,
               err.msg);
        for (int k = 0; k < n; k++)
            res__run(r, &job[k], 1);
        return;
    }
    for (int k = 0; st && k < n; k++) {
        job[k]->st = st;
        job[k]->err = err;
    }
}

/* Wake the reconciler (NOTIFY inv_dirty: recompute the channels, relay the
 * outbox), at most every RES_NOTIFY_MS from all sessions together. It
 * runs after the batch's commit, on its own: a NOTIFY holds a database-wide
 * lock through its commit. A skipped or failed wake-up is covered by the
 * reconciler's poll. */
static void res__notify(res__session *ss)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    api_reserver *r = ss->r;
    pthread_mutex_lock(&r->mu);
    bool due = now - r->last_notify_ms >= RES_NOTIFY_MS;
    if (due)
        r->last_notify_ms = now;
    pthread_mutex_unlock(&r->mu);
    if (due && ss->pg)
        PQclear(PQexec(ss->pg, "NOTIFY inv_dirty"));
}

/* Take the next batch off the queue: up to max_batch jobs, oldest first,
 * each key once (a repeat stays queued for a later batch). Called with mu
 * held; returns 0 when stopping with nothing queued. */
static int res__take(api_reserver *r, api_reserve_job **job)
{
    while (!r->head && !r->stopping)
        pthread_cond_wait(&r->cv, &r->mu);
    int n = 0;
    api_reserve_job **link = &r->head, *prev = NULL;
    while (*link && n < r->max_batch) {
        api_reserve_job *jb = *link;
        bool repeat = false;
        for (int k = 0; k < n && !repeat; k++)
            repeat = !strcmp(job[k]->rq.key, jb->rq.key);
        if (repeat) {
            prev = jb;
            link = &jb->next;
            continue;
        }
        *link = jb->next;
        if (r->tail == jb)
            r->tail = prev;
        jb->next = NULL;
        job[n++] = jb;
        r->queued--;
    }
    if (n > 0) {
        r->stats.batches++;
        r->stats.requests += n;
        if (n > r->stats.largest)
            r->stats.largest = n;
    }
    return n;
}

static void *res__main(void *arg)
{
    res__session *ss = arg;
    api_reserver *r = ss->r;
    api_reserve_job *job[API_RESERVE_BATCH_MAX];
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int n = res__take(r, job);
        pthread_mutex_unlock(&r->mu);
        if (n == 0)
            break;
        res__run(ss, job, n);
        bool granted = false;
        for (int k = 0; k < n; k++)
            granted |= !job[k]->st && job[k]->res.status == 201 && !job[k]->res.replay;
        for (int k = 0; k < n; k++)
            job[k]->done(job[k]); /* the job is the caller's again */
        if (granted)
            res__notify(ss);
    }
    return NULL;
}

sf_status api_reserver_start(const api_reserver_opts *o, api_reserver **out, sf_error *err)
{
    *out = NULL;
    if (o->max_batch < 1 || o->max_batch > API_RESERVE_BATCH_MAX)
        return SF_ERR(err, SF_EINVAL, "reservation batch: %d is not in 1..%d", o->max_batch,
                      API_RESERVE_BATCH_MAX);
    if (o->threads < 1 || o->threads > API_RESERVE_THREADS_MAX)
        return SF_ERR(err, SF_EINVAL, "reservation threads: %d is not in 1..%d", o->threads,
                      API_RESERVE_THREADS_MAX);
    if (o->max_queue < 1)
        return SF_ERR(err, SF_EINVAL, "reservation queue: %d must be at least 1", o->max_queue);
    api_reserver *r = calloc(1, sizeof *r);
    if (!r || !(r->dsn = strdup(o->dsn))) {
        free(r);
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    }
    r->max_batch = o->max_batch;
    r->max_queue = o->max_queue;
    r->threads = o->threads;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    for (int t = 0; t < r->threads; t++) {
        res__session *ss = &r->session[t];
        ss->r = r;
        if (pthread_create(&ss->thread, NULL, res__main, ss) != 0) {
            api_reserver_stop(r);
            return SF_ERR(err, SF_EINTERNAL, "cannot start reservation thread %d", t);
        }
        ss->started = true;
    }
    *out = r;
    return SF_OK;
}

sf_status api_reserver_submit(api_reserver *r, api_reserve_job *job, sf_error *err)
{
    memset(&job->res, 0, sizeof job->res);
    job->st = SF_OK;
    job->next = NULL;
    sf_event ev;
    sf_status st = api_reserve_event(&job->rq, job->now_ms, &ev, err);
    if (st)
        return st;
    snprintf(job->event_id, sizeof job->event_id, "%s", ev.event_id);
    job->expires_at = ev.expires_at;
    pthread_mutex_lock(&r->mu);
    if (r->stopping)
        st = SF_ERR(err, SF_EUNAVAIL, "inv-api is stopping");
    else if (r->queued >= r->max_queue) {
        r->stats.refused++;
        st =
            SF_ERR(err, SF_EUNAVAIL, "%d reservations are waiting already; retry later", r->queued);
    }
    if (!st) {
        if (r->tail)
            r->tail->next = job;
        else
            r->head = job;
        r->tail = job;
        r->queued++;
        pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return st;
}

void api_reserver_stats_get(api_reserver *r, api_reserver_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->stats;
    out->queued = r->queued;
    pthread_mutex_unlock(&r->mu);
}

void api_reserver_stop(api_reserver *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (int t = 0; t < r->threads; t++) {
        res__session *ss = &r->session[t];
        if (ss->started)
            pthread_join(ss->thread, NULL); /* they answer the queue first */
        if (ss->pg)
            PQfinish(ss->pg);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r->dsn);
    free(r);
}
