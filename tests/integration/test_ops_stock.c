/*
 * The reconciler's part of the ops feed: stock.<sku> with every location
 * of a sku whose positions changed, alert.negative_stock once per change of
 * a negative position (not on every poll, not when another location of the
 * sku changes), the backlog and rates in metrics.inv-reconciler, and
 * alert.drift from `inv-reconciler audit`.
 *
 * The proxy runs on free ports picked here (test_ops.c has fixed ones).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "fixture.h"
#include "ops.h"
#include "stockcheck.h"

TestSuite(ops_stock, .init = fx_reset, .fini = fx_teardown, .timeout = 240);

typedef struct msg {
    char topic[128];
    char body[4096];
} msg;

typedef struct feed {
    sf_ops_proxy *proxy;
    void *ctx, *sub;
    msg *v;
    size_t n, cap;
} feed;

static void feed_start(feed *f)
{
    char front[64], back[64];
    fx_ops_endpoints(front, back);
    sf_error err;
    cr_assert(sf_ops_proxy_start(front, back, &f->proxy, &err) == SF_OK, "%s", err.msg);
    f->ctx = zmq_ctx_new();
    f->sub = zmq_socket(f->ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(f->sub, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert(zmq_setsockopt(f->sub, ZMQ_SUBSCRIBE, "", 0) == 0);
    cr_assert(zmq_connect(f->sub, back) == 0);
    f->cap = 4000;
    f->v = calloc(f->cap, sizeof *f->v);
    cr_assert(f->v);
}

static void feed_stop(feed *f)
{
    unsetenv("INV_OPS_ENDPOINT");
    zmq_close(f->sub);
    zmq_ctx_term(f->ctx);
    sf_ops_proxy_stop(f->proxy);
    free(f->v);
}

/* Messages on topic whose body holds needle (NULL: any). */
static size_t count(const feed *f, const char *topic, const char *needle)
{
    size_t k = 0;
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->v[i].topic, topic) && (!needle || strstr(f->v[i].body, needle)))
            k++;
    return k;
}

static const msg *last_of(const feed *f, const char *topic)
{
    for (size_t i = f->n; i-- > 0;)
        if (!strcmp(f->v[i].topic, topic))
            return &f->v[i];
    return NULL;
}

/* Read for up to ms, until topic shows a body with needle `want` times. */
static bool feed_wait(feed *f, const char *topic, const char *needle, size_t want, int ms)
{
    int64_t until = fx_now_ms() + ms;
    while (count(f, topic, needle) < want && fx_now_ms() < until) {
        zmq_pollitem_t it = {f->sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        cr_assert(f->n < f->cap, "more than %zu feed messages", f->cap);
        msg *m = &f->v[f->n];
        int t = zmq_recv(f->sub, m->topic, sizeof m->topic - 1, 0);
        int b = zmq_recv(f->sub, m->body, sizeof m->body - 1, 0);
        if (t < 0 || b < 0)
            continue;
        m->topic[t] = '\0';
        m->body[b < (int)sizeof m->body - 1 ? b : (int)sizeof m->body - 1] = '\0';
        f->n++;
    }
    return count(f, topic, needle) >= want;
}

static void ingest_lines(const char *name, const char *lines)
{
    char path[512], out[8192];
    sc_tmp(name, path, sizeof path);
    FILE *fp = fopen(path, "w");
    cr_assert(fp, "cannot write %s", path);
    fputs(lines, fp);
    fclose(fp);
    sc_ingest(path, out, sizeof out);
}

#define EV(id, kind, loc, qty)                                                                     \
    "{\"event_id\":\"" id "\",\"kind\":\"" kind "\",\"sku\":\"MUG\",\"location\":\"" loc           \
    "\",\"qty\":" #qty ",\"occurred_at\":\"2026-11-20T08:00:00Z\",\"source\":\"t\"}\n"

static json_t *location_of(json_t *stock, const char *loc)
{
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(stock, "locations"), i, l)
    {
        if (!strcmp(json_string_value(json_object_get(l, "location")), loc))
            return l;
    }
    cr_assert_fail("no location %s", loc);
    return NULL;
}

static json_int_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_integer(v), "%s is not an integer", k);
    return json_integer_value(v);
}

Test(ops_stock, positions_negative_stock_metrics_and_drift)
{
    feed f = {0};
    feed_start(&f);
    feed_wait(&f, "none", NULL, 1, 300); /* the slow joiner */
    const char *cons[] = {"inv-consumer", NULL};
    const char *rec[] = {"inv-reconciler", NULL};
    pid_t c = fx_spawn(cons, NULL);
    pid_t r = fx_spawn(rec, NULL);

    /* MUG: 10 at DC-1, a walk-in sale of 3 at STORE-1 that had none. */
    ingest_lines("opsstock-1.jsonl",
                 EV("m1", "receipt", "DC-1", 10) EV("m2", "sale", "STORE-1", 3));
    cr_assert(feed_wait(&f, "stock.MUG", "\"on_hand\":7", 1, 30000), "no stock.MUG totalling 7");
    json_t *s = json_loads(last_of(&f, "stock.MUG")->body, 0, NULL);
    cr_assert(s);
    cr_assert(!strcmp(json_string_value(json_object_get(s, "sku")), "MUG"));
    cr_assert_eq(json_array_size(json_object_get(s, "locations")), 2);
    json_t *dc = location_of(s, "DC-1"), *st = location_of(s, "STORE-1");
    cr_assert_eq(jint(dc, "on_hand"), 10);
    cr_assert_eq(jint(dc, "available"), 10);
    cr_assert_eq(jint(st, "on_hand"), -3);
    cr_assert_eq(jint(st, "reserved"), 0);
    cr_assert_eq(jint(json_object_get(s, "totals"), "on_hand"), 7);
    json_decref(s);
    cr_assert(feed_wait(&f, "alert.negative_stock", "\"location\":\"STORE-1\"", 1, 10000),
              "no alert.negative_stock");
    const msg *a = last_of(&f, "alert.negative_stock");
    cr_assert(strstr(a->body, "\"sku\":\"MUG\"") && strstr(a->body, "\"on_hand\":-3"), "%s",
              a->body);

    /* DC-1 changes, STORE-1 does not: a new stock.MUG, no new alert. */
    ingest_lines("opsstock-2.jsonl", EV("m3", "receipt", "DC-1", 5));
    cr_assert(feed_wait(&f, "stock.MUG", "\"on_hand\":12", 1, 30000), "no stock.MUG totalling 12");
    /* metrics.inv-reconciler carries the backlog and the rate */
    cr_assert(feed_wait(&f, "metrics.inv-reconciler", "\"dirty\":0", 1, 5000));
    const msg *m = last_of(&f, "metrics.inv-reconciler");
    cr_assert(strstr(m->body, "\"skus_per_s\":") && strstr(m->body, "\"stock_published\":") &&
                  strstr(m->body, "\"step_ms\":"),
              "%s", m->body);
    cr_assert_eq(count(&f, "alert.negative_stock", NULL), 1,
                 "negative_stock repeated without a change at STORE-1");

    /* STORE-1 changes and stays negative: alerted again. */
    ingest_lines("opsstock-3.jsonl", EV("m4", "sale", "STORE-1", 1));
    cr_assert(feed_wait(&f, "alert.negative_stock", "\"on_hand\":-4", 1, 30000),
              "no alert for on_hand -4");
    cr_assert_eq(count(&f, "alert.negative_stock", NULL), 2);

    cr_assert_eq(fx_stop(r, SIGTERM, 30000), 0);
    cr_assert_eq(fx_stop(c, SIGTERM, 30000), 0);

    /* Drift: a position edited behind the ledger's back. */
    fx_exec("UPDATE positions SET on_hand = on_hand + 2 WHERE sku = 'MUG' AND location = 'DC-1'");
    char out[16384];
    const char *audit[] = {"inv-reconciler", "audit", NULL};
    cr_assert_eq(fx_run(audit, NULL, out, sizeof out, 60000), 1, "%s", out);
    cr_assert(feed_wait(&f, "alert.drift", "\"drifts\":1", 1, 10000), "no alert.drift");
    const msg *d = last_of(&f, "alert.drift");
    cr_assert(strstr(d->body, "\"sku\":\"MUG\"") && strstr(d->body, "\"location\":\"DC-1\"") &&
                  strstr(d->body, "\"field\":\"on_hand\"") &&
                  strstr(d->body, "\"stored\":\"17\"") && strstr(d->body, "\"rebuilt\":\"15\""),
              "%s", d->body);
    /* repaired: a second audit finds nothing and says nothing */
    const char *repair[] = {"inv-reconciler", "audit", "--repair", NULL};
    cr_assert_eq(fx_run(repair, NULL, out, sizeof out, 60000), 0, "%s", out);
    cr_assert_eq(fx_run(audit, NULL, out, sizeof out, 60000), 0, "%s", out);
    feed_wait(&f, "alert.drift", NULL, 3, 1500);
    cr_assert_eq(count(&f, "alert.drift", NULL), 2, "an audit without drift raised alert.drift");
    feed_stop(&f);
}
