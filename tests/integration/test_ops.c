/*
 * The ops feed end to end: the XSUB/XPUB proxy (as inv-api runs it), the
 * services publishing to it, readers subscribing: metrics.inv-consumer and
 * metrics.inv-ingest with their figures, alert.sidelined for a poison event,
 * channel.<channel> for each ats the reconciler publishes,
 * alert.reservation_expired for an expired hold, and invctl ops tail
 * comparing topics exactly.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "fixture.h"
#include "ops.h"
#include "stockcheck.h"

TestSuite(ops, .init = fx_reset, .fini = fx_teardown, .timeout = 300);

typedef struct seen {
    char topic[128];
    char body[4096];
} seen;

/* Collect messages for up to ms, until pred says enough. */
static size_t collect(void *sub, seen *out, size_t cap, int ms, bool (*enough)(seen *, size_t))
{
    size_t n = 0;
    int64_t until = fx_now_ms() + ms;
    while (n < cap && fx_now_ms() < until && !(enough && enough(out, n))) {
        zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        int t = zmq_recv(sub, out[n].topic, sizeof out[n].topic - 1, 0);
        int b = zmq_recv(sub, out[n].body, sizeof out[n].body - 1, 0);
        if (t < 0 || b < 0)
            continue;
        out[n].topic[t] = '\0';
        out[n].body[b < (int)sizeof out[n].body - 1 ? b : (int)sizeof out[n].body - 1] = '\0';
        n++;
    }
    return n;
}

static const seen *find(const seen *v, size_t n, const char *topic)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].topic, topic))
            return &v[i];
    return NULL;
}

/* The first message on topic whose body holds needle. */
static const seen *find_with(const seen *v, size_t n, const char *topic, const char *needle)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].topic, topic) && strstr(v[i].body, needle))
            return &v[i];
    return NULL;
}

static bool release_applied(void *arg)
{
    (void)arg;
    return fx_query_i64("SELECT count(*) FROM ledger WHERE source = 'reservation-expiry'") == 1;
}

static bool metrics_there(seen *v, size_t n)
{
    return find(v, n, "metrics.inv-consumer") && find(v, n, "metrics.inv-ingest");
}

static bool sidelined_there(seen *v, size_t n)
{
    return find(v, n, "alert.sidelined") != NULL;
}

static bool reconciler_there(seen *v, size_t n)
{
    return find_with(v, n, "channel.web", "\"sku\":\"MUG\",\"ats\":10") &&
           find(v, n, "alert.reservation_expired");
}

Test(ops, services_publish_metrics_alerts_and_channel_changes)
{
    sf_ops_proxy *proxy = NULL;
    sf_error err;
    char front[64], back[64];
    fx_ops_endpoints(front, back); /* also sets INV_OPS_ENDPOINT */
    cr_assert(sf_ops_proxy_start(front, back, &proxy, &err) == SF_OK, "%s", err.msg);
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0) == 0);
    cr_assert(zmq_connect(sub, back) == 0);

    const char *cons[] = {"inv-consumer", NULL};
    pid_t c = fx_spawn(cons, NULL);
    char path[512], out[8192];
    sc_tmp("ops.jsonl", path, sizeof path);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("{\"event_id\":\"o1\",\"kind\":\"receipt\",\"sku\":\"MUG\",\"location\":\"DC-1\","
          "\"qty\":10,\"occurred_at\":\"2026-11-20T08:00:00Z\",\"source\":\"t\"}\n"
          "{\"event_id\":\"o2\",\"kind\":\"reserve\",\"sku\":\"MUG\",\"location\":\"DC-1\","
          "\"qty\":4,\"occurred_at\":\"2026-11-20T08:00:00Z\",\"source\":\"t\",\"ref\":\"cart-1\","
          "\"expires_at\":\"2026-11-20T08:30:00Z\"}\n",
          f);
    fclose(f);
    /* The slow joiner: give the subscription time to reach the proxy. */
    seen *v = calloc(2000, sizeof *v);
    cr_assert(v);
    collect(sub, v, 2000, 300, NULL);
    sc_ingest(path, out, sizeof out);
    /* A longer run: inv-ingest reports once a second while it works. */
    char work[512];
    sc_tmp("ops-work.jsonl", work, sizeof work);
    sc_gen(work, 5, 40000, 50, 2);
    sc_ingest(work, out, sizeof out);
    size_t n = collect(sub, v, 2000, 15000, metrics_there);
    const seen *m = find(v, n, "metrics.inv-consumer");
    cr_assert(m, "no metrics.inv-consumer in %zu messages", n);
    json_t *j = json_loads(m->body, 0, NULL);
    cr_assert(j, "%s", m->body);
    cr_assert(!strcmp(json_string_value(json_object_get(j, "service")), "inv-consumer"));
    cr_assert(json_is_integer(json_object_get(j, "lag")), "%s", m->body);
    cr_assert(json_is_real(json_object_get(j, "events_per_s")), "%s", m->body);
    json_decref(j);
    cr_assert(find(v, n, "metrics.inv-ingest"), "no metrics.inv-ingest");
    cr_assert_null(find(v, n, "alert.sidelined"), "nothing was sidelined yet");
    /* Garbage bytes straight onto the stream: sidelined, and said so. */
    cr_assert(js_Publish(NULL, fx_js(), "inv.evt.sale.DC-1", "garbage", 7, NULL, NULL) == NATS_OK);
    n = collect(sub, v, 2000, 15000, sidelined_there);
    const seen *sl = find(v, n, "alert.sidelined");
    cr_assert(sl, "no alert.sidelined");
    cr_assert(strstr(sl->body, "\"reason\":\"decode\""), "%s", sl->body);
    cr_assert(strstr(sl->body, "\"subject\":\"inv.evt.sale.DC-1\""), "%s", sl->body);

    /* The reconciler: channel.web for the new ats, then the expired hold. */
    const char *add[] = {"invctl", "channel", "add", "web", "--locations", "DC-1", NULL};
    cr_assert_eq(fx_run(add, NULL, out, sizeof out, 30000), 0, "%s", out);
    setenv("INV_NOW_MS", "1795164000000", 1); /* 2026-11-20T08:40Z: cart-1 expired */
    const char *rec[] = {"inv-reconciler", "--drain", NULL};
    cr_assert_eq(fx_run(rec, NULL, out, sizeof out, 60000), 0, "%s", out);
    /* Once the consumer applied the expiry RELEASE, web can sell all 10. */
    fx_wait_until(release_applied, NULL, 15000);
    cr_assert_eq(fx_run(rec, NULL, out, sizeof out, 60000), 0, "%s", out);
    unsetenv("INV_NOW_MS");
    n = collect(sub, v, 2000, 10000, reconciler_there);
    cr_assert(find_with(v, n, "channel.web", "\"sku\":\"MUG\",\"ats\":10"),
              "no channel.web with MUG at 10");
    const seen *ex = find(v, n, "alert.reservation_expired");
    cr_assert(ex, "no alert.reservation_expired");
    cr_assert(strstr(ex->body, "\"ref\":\"cart-1\""), "%s", ex->body);

    /* invctl ops tail compares the topic exactly. */
    char cfg[512];
    sc_tmp("ops.ini", cfg, sizeof cfg);
    f = fopen(cfg, "w");
    cr_assert(f);
    fprintf(f, "[ops]\nsub_endpoint = %s\n", back);
    fclose(f);
    const char *tail[] = {"invctl",  "--config", cfg, "ops", "tail", "metrics.inv-consumer",
                          "--count", "2",        NULL};
    cr_assert_eq(fx_run(tail, NULL, out, sizeof out, 30000), 0, "%s", out);
    int lines = 0;
    for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
        if (strncmp(l, "20", 2) == 0)
            continue; /* log lines */
        cr_assert(!strncmp(l, "metrics.inv-consumer {", 22), "%s", l);
        lines++;
    }
    cr_assert_eq(lines, 2);

    cr_assert_eq(fx_stop(c, SIGTERM, 30000), 0);
    unsetenv("INV_OPS_ENDPOINT");
    free(v);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    sf_ops_proxy_stop(proxy);
}
