/*
 * GET /v1/ops/events and GET /dashboard on a running inv-api: the page is
 * public, self-contained HTML; the stream needs a read or admin key (as
 * the Authorization header or ?key=), bridges the ops feed through the
 * proxy inv-api runs (event: <topic>, data: <json>), filters by topic
 * prefix, replays the last metrics and alerts to a new stream, sends
 * keep-alive comments and outlives evhttp's 10 s timeout, and drops a
 * client that does not read while another keeps receiving.
 *
 * The ops ports are free ports picked at start (never the fixed ones of
 * test_ops.c / test_zmq.c).
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
#include "test_api_http.h"

TestSuite(sse, .init = fx_reset, .fini = api_fini, .timeout = 180);

typedef struct sse_env {
    int port;
    pid_t pid;
    char front[64];
    char key[128];
} sse_env;

/* inv-api with its ops proxy on two free ports, and a read key. */
static void sse_start(sse_env *e, const char *log)
{
    api_add_key("reader", "read", e->key, sizeof e->key, NULL, 0);
    const char *extra[] = {"--threads", "2", NULL};
    e->port = api_start_with_ops(log, extra, e->front, &e->pid);
}

/* A stream: the request sent, the socket returned. */
static int sse_open(int port, const char *target, const char *key)
{
    int fd = api_connect(port);
    char req[2048];
    int n =
        snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                 "%s%s%s\r\n",
                 target, key ? "Authorization: Bearer " : "", key ? key : "", key ? "\r\n" : "");
    api_send_all(fd, req, (size_t)n);
    return fd;
}

typedef struct sse_buf {
    char *data;
    size_t len, cap;
    bool eof;
} sse_buf;

/* Read from fd into b until needle shows up (true) or ms pass (false). */
static bool sse_read_until(int fd, sse_buf *b, const char *needle, int ms)
{
    int64_t until = fx_now_ms() + ms;
    while (!(b->data && strstr(b->data, needle))) {
        int left = (int)(until - fx_now_ms());
        if (left <= 0 || b->eof)
            return false;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, left < 100 ? left : 100) <= 0)
            continue;
        if (b->cap - b->len < 65537) {
            b->cap = b->cap ? b->cap * 2 : 131072;
            b->data = realloc(b->data, b->cap);
            cr_assert(b->data);
        }
        ssize_t r = recv(fd, b->data + b->len, b->cap - b->len - 1, 0);
        if (r <= 0) {
            b->eof = true;
            continue;
        }
        b->len += (size_t)r;
        b->data[b->len] = '\0';
    }
    return true;
}

/* Publish topic/body through the proxy every 100 ms until the stream on
 * fd shows needle (the first messages meet ZeroMQ's slow joiner). */
static void publish_until(sf_ops *ops, const char *topic, const char *body_json, int fd, sse_buf *b,
                          const char *needle)
{
    int64_t until = fx_now_ms() + 15000;
    while (fx_now_ms() < until) {
        json_t *j = json_loads(body_json, 0, NULL);
        cr_assert(j, "bad test JSON %s", body_json);
        sf_ops_send(ops, topic, j);
        if (sse_read_until(fd, b, needle, 100))
            return;
    }
    cr_assert_fail("%s never arrived on the stream; got: %.2000s", needle,
                   b->data ? b->data : "(nothing)");
}

static long long metric_value(const char *text, const char *name)
{
    char line[256];
    snprintf(line, sizeof line, "\n%s ", name);
    const char *at = strstr(text, line);
    cr_assert(at, "no %s in /metrics", name);
    return atoll(at + strlen(line));
}

Test(sse, dashboard_is_a_public_self_contained_page)
{
    sse_env e;
    sse_start(&e, "sse-dash.log");
    api_resp r;
    cr_assert_eq(api_get(e.port, "/dashboard", NULL, &r), 200, "%s", r.head);
    char h[512];
    cr_assert(strstr(api_header(&r, "Content-Type", h, sizeof h), "text/html"), "%s", h);
    cr_assert(strstr(api_header(&r, "Content-Security-Policy", h, sizeof h), "default-src 'none'"),
              "%s", h);
    cr_assert(strstr(r.body, "/v1/ops/events"), "the page does not open the feed");
    cr_assert(strstr(r.body, "/v1/stock/"), "the page has no stock lookup");
    cr_assert(strstr(r.body, "<canvas"), "the page has no chart");
    cr_assert_null(strstr(r.body, "src=\"http"), "the page loads something from elsewhere");
    cr_assert_null(strstr(r.body, "href=\"http"), "the page links elsewhere");
    api_resp_free(&r);
    /* ?key= is for the page's script; anything else is a clear 400. */
    cr_assert_eq(api_get(e.port, "/dashboard?key=abc", NULL, &r), 200);
    api_resp_free(&r);
    json_t *j = api_get_json(e.port, "/dashboard?color=red", NULL, 400);
    cr_assert(strstr(json_string_value(json_object_get(j, "error")), "color"), "%s",
              json_dumps(j, 0));
    json_decref(j);
    cr_assert_eq(api_req(e.port, "POST", "/dashboard", NULL, &r), 405);
    api_resp_free(&r);
}

Test(sse, events_need_a_read_key_as_header_or_query)
{
    sse_env e;
    sse_start(&e, "sse-auth.log");
    char ingest[128];
    api_add_key("writer", "ingest", ingest, sizeof ingest, NULL, 0);
    json_t *j = api_get_json(e.port, "/v1/ops/events", NULL, 401);
    json_decref(j);
    j = api_get_json(e.port, "/v1/ops/events?key=sf_nope_nope", NULL, 401);
    json_decref(j);
    char target[256];
    snprintf(target, sizeof target, "/v1/ops/events?key=%s", ingest);
    int64_t until = fx_now_ms() + 12000; /* keys are reloaded every 5 s */
    api_resp r;
    while (api_get(e.port, target, NULL, &r) == 401 && fx_now_ms() < until) {
        api_resp_free(&r);
        usleep(200000);
    }
    cr_assert_eq(r.status, 403, "an ingest key: %d %s", r.status, r.body);
    cr_assert(strstr(r.body, "scope read or admin"), "%s", r.body);
    api_resp_free(&r);
    j = api_get_json(e.port, "/v1/ops/events?topics=a,b,c,d,e,f,g,h,i", e.key, 400);
    cr_assert(!strcmp(json_string_value(json_object_get(j, "field")), "topics"));
    cr_assert(strstr(json_string_value(json_object_get(j, "error")), "more than 8"));
    json_decref(j);
    j = api_get_json(e.port, "/v1/ops/events?topics=a,,b", e.key, 400);
    json_decref(j);
    j = api_get_json(e.port, "/v1/ops/events?since=1", e.key, 400);
    cr_assert(strstr(json_string_value(json_object_get(j, "error")), "since"));
    json_decref(j);
    /* A good key by query: the stream opens. */
    snprintf(target, sizeof target, "/v1/ops/events?key=%s", e.key);
    int fd = sse_open(e.port, target, NULL);
    sse_buf b = {0};
    cr_assert(sse_read_until(fd, &b, ": stockflow ops feed", 5000), "%s", b.data);
    cr_assert(strstr(b.data, "HTTP/1.1 200"), "%s", b.data);
    cr_assert(strstr(b.data, "Content-Type: text/event-stream"), "%s", b.data);
    close(fd);
    free(b.data);
}

Test(sse, feed_messages_become_events_filtered_replayed_and_kept_alive)
{
    sse_env e;
    sse_start(&e, "sse-flow.log");
    sf_ops *ops = NULL;
    sf_error err;
    cr_assert(sf_ops_open(e.front, "inv-test", &ops, &err) == SF_OK, "%s", err.msg);

    char target[256];
    snprintf(target, sizeof target, "/v1/ops/events?key=%s", e.key);
    int all = sse_open(e.port, target, NULL);
    int alerts = sse_open(e.port, "/v1/ops/events?topics=alert.", e.key);
    sse_buf ba = {0}, bl = {0};
    cr_assert(sse_read_until(all, &ba, ": stockflow ops feed", 5000));
    cr_assert(sse_read_until(alerts, &bl, ": stockflow ops feed", 5000));
    publish_until(ops, "stock.SKU 1", "{\"sku\":\"SKU 1\",\"on_hand\":7}", all, &ba,
                  "event: stock.SKU 1\ndata: {\"sku\":\"SKU 1\",\"on_hand\":7,\"service\":"
                  "\"inv-test\",\"ts\":");
    sf_ops_alert(ops, "drift", "1 drift", json_pack("{s:i}", "drifts", 1));
    sf_ops_send(ops, "metrics.inv-test", json_pack("{s:f}", "events_per_s", 12.5));
    cr_assert(
        sse_read_until(all, &ba, "event: metrics.inv-test\ndata: {\"events_per_s\":12.5", 5000),
        "%s", ba.data);
    cr_assert(sse_read_until(all, &ba, "event: alert.drift\ndata: {\"kind\":\"drift\"", 5000));
    /* the filtered stream: the alert only */
    cr_assert(sse_read_until(alerts, &bl, "event: alert.drift\n", 5000), "%s", bl.data);
    cr_assert_null(strstr(bl.data, "event: stock."), "%s", bl.data);
    cr_assert_null(strstr(bl.data, "event: metrics."), "%s", bl.data);
    /* Feed messages that would break the framing (a line break in the
     * body, a lone frame) are refused, not sent. */
    void *zctx = zmq_ctx_new();
    void *raw = zmq_socket(zctx, ZMQ_PUB);
    int linger = 0;
    zmq_setsockopt(raw, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert(zmq_connect(raw, e.front) == 0);
    usleep(300000); /* the slow joiner */
    zmq_send(raw, "alert.bad", 9, ZMQ_SNDMORE);
    zmq_send(raw, "{\"a\":1}\ndata: {\"forged\":1}", 26, 0);
    zmq_send(raw, "alert.lone", 10, 0);
    zmq_send(raw, "alert.good", 10, ZMQ_SNDMORE);
    zmq_send(raw, "{\"ok\":1}", 8, 0);
    cr_assert(sse_read_until(alerts, &bl, "event: alert.good\ndata: {\"ok\":1}\n\n", 5000), "%s",
              bl.data);
    cr_assert_null(strstr(bl.data, "alert.bad"), "%s", bl.data);
    cr_assert_null(strstr(bl.data, "forged"), "%s", bl.data);
    cr_assert_null(strstr(bl.data, "alert.lone"), "%s", bl.data);
    zmq_close(raw);
    zmq_ctx_term(zctx);

    /* A new stream starts with the last metrics and alerts. */
    int late = sse_open(e.port, "/v1/ops/events", e.key);
    sse_buf bz = {0};
    cr_assert(sse_read_until(late, &bz, "event: metrics.inv-test\n", 5000), "%s", bz.data);
    cr_assert(sse_read_until(late, &bz, "event: alert.drift\n", 5000), "%s", bz.data);
    cr_assert_null(strstr(bz.data, "event: stock."), "stock changes are not replayed");

    /* Idle for longer than evhttp's 10 s timeout: keep-alives, still open,
     * still delivering. */
    cr_assert(sse_read_until(late, &bz, ": keep-alive\n\n", 12000), "%s", bz.data);
    int64_t t0 = fx_now_ms();
    while (fx_now_ms() - t0 < 2500)
        sse_read_until(late, &bz, "never-there", 500);
    cr_assert(!bz.eof, "the idle stream was closed");
    sf_ops_send(ops, "stock.LATE", json_pack("{s:s}", "sku", "LATE"));
    cr_assert(sse_read_until(late, &bz, "event: stock.LATE\n", 5000), "%s",
              bz.data + (bz.len > 500 ? bz.len - 500 : 0));

    api_resp r;
    cr_assert_eq(api_get(e.port, "/metrics", e.key, &r), 200);
    cr_assert_eq(metric_value(r.body, "inv_api_sse_streams"), 3, "%s", r.body);
    cr_assert(metric_value(r.body, "inv_api_ops_feed_messages_total") >= 6);
    cr_assert_eq(metric_value(r.body, "inv_api_ops_feed_rejected_total"), 2, "%s", r.body);
    cr_assert(strstr(r.body, "inv_api_requests_total{route=\"ops_events\",status=\"200\"} 3"), "%s",
              r.body);
    api_resp_free(&r);
    close(all);
    close(alerts);
    close(late);
    free(ba.data);
    free(bl.data);
    free(bz.data);
    /* closed streams are noticed and freed */
    int64_t until = fx_now_ms() + 5000;
    long long open = -1;
    while (fx_now_ms() < until && open != 0) {
        cr_assert_eq(api_get(e.port, "/metrics", e.key, &r), 200);
        open = metric_value(r.body, "inv_api_sse_streams");
        api_resp_free(&r);
        usleep(100000);
    }
    cr_assert_eq(open, 0, "closed streams still counted as open");
    sf_ops_close(ops);
    cr_assert_eq(fx_stop(e.pid, SIGTERM, 10000), 0, "inv-api did not stop cleanly");
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

Test(sse, a_client_that_does_not_read_is_dropped_and_others_keep_receiving)
{
    /* Under ASan, freed memory waits in a quarantine (256 MB by default)
     * and would count as growth: keep it small for this inv-api. */
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=8", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    sse_env e;
    sse_start(&e, "sse-slow.log");
    sf_ops *ops = NULL;
    sf_error err;
    cr_assert(sf_ops_open(e.front, "inv-test", &ops, &err) == SF_OK, "%s", err.msg);
    /* The slow one: a small receive buffer, never read after the start. */
    int slow = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(slow, (struct sockaddr *)&a, sizeof a) == 0);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /v1/ops/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n",
                     e.key);
    api_send_all(slow, req, (size_t)n);
    int fast = sse_open(e.port, "/v1/ops/events", e.key);
    sse_buf bf = {0};
    cr_assert(sse_read_until(fast, &bf, ": stockflow ops feed", 5000));
    publish_until(ops, "stock.WARMUP", "{\"sku\":\"WARMUP\"}", fast, &bf, "event: stock.WARMUP");
    long rss0 = rss_kb(e.pid);
    /* 3000 messages of 8 KB (24 MB): far past the 256 KiB a stream may hold. */
    char *pad = malloc(8001);
    cr_assert(pad);
    memset(pad, 'x', 8000);
    pad[8000] = '\0';
    for (int i = 0; i < 3000; i++) {
        char topic[32];
        snprintf(topic, sizeof topic, "stock.BULK-%d", i);
        sf_ops_send(ops, topic, json_pack("{s:s, s:i}", "pad", pad, "i", i));
        sse_read_until(fast, &bf, "never-there", 1); /* the fast reader keeps up */
        bf.len = 0;                                  /* and keeps its buffer small */
        bf.data[0] = '\0';
        cr_assert(!bf.eof, "the fast reader was dropped at message %d", i);
    }
    free(pad);
    publish_until(ops, "stock.LAST", "{\"sku\":\"LAST\"}", fast, &bf, "event: stock.LAST\n");
    long rss1 = rss_kb(e.pid);
    cr_assert(rss1 - rss0 < 64 * 1024, "inv-api grew from %ld to %ld kB", rss0, rss1);
    api_resp r;
    cr_assert_eq(api_get(e.port, "/metrics", e.key, &r), 200);
    cr_assert_geq(metric_value(r.body, "inv_api_sse_slow_clients_dropped_total"), 1, "%s", r.body);
    cr_assert_eq(metric_value(r.body, "inv_api_sse_streams"), 1, "%s", r.body);
    api_resp_free(&r);
    /* the slow socket is closed by the server: reading ends in EOF */
    sse_buf bs = {0};
    sse_read_until(slow, &bs, "never-there", 10000);
    cr_assert(bs.eof, "the slow client was not disconnected");
    close(slow);
    /* Stopping inv-api with a stream open: a clean exit (no leak under
     * ASan) and the stream ends. */
    cr_assert_eq(fx_stop(e.pid, SIGTERM, 10000), 0, "inv-api did not stop cleanly");
    sse_read_until(fast, &bf, "never-there", 5000);
    cr_assert(bf.eof, "the open stream did not end when inv-api stopped");
    close(fast);
    free(bs.data);
    free(bf.data);
    sf_ops_close(ops);
}

/* Poll sf_ops_has_reader(ops, topic) until it says want (true) or ms pass. */
static bool reader_becomes(sf_ops *ops, const char *topic, bool want, int ms)
{
    int64_t until = fx_now_ms() + ms;
    while (sf_ops_has_reader(ops, topic) != want) {
        if (fx_now_ms() >= until)
            return false;
        usleep(20000);
    }
    return true;
}

/* A publisher learns through the proxy which topics are read: a reader's
 * subscription counts for every topic it passes ("" and "stock." for
 * stock.<sku>) and every topic that continues it ("stock.SKU-1" for
 * "stock."), and stops counting when the reader leaves. */
Test(sse, publishers_see_which_topics_are_read)
{
    char front[64], back[64];
    fx_ops_endpoints(front, back);
    sf_ops_proxy *proxy = NULL;
    sf_ops *ops = NULL;
    sf_error err;
    cr_assert(sf_ops_proxy_start(front, back, &proxy, &err) == SF_OK, "%s", err.msg);
    cr_assert(sf_ops_open(front, "inv-test", &ops, &err) == SF_OK, "%s", err.msg);
    cr_assert(!sf_ops_has_reader(ops, "stock."), "no reader yet");
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert(zmq_connect(sub, back) == 0);
    cr_assert(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "stock.SKU-1", 11) == 0);
    cr_assert(sf_ops_wait_reader(ops, "stock.", 5000), "stock.SKU-1 is a stock. reader");
    cr_assert(sf_ops_has_reader(ops, "stock.SKU-1"));
    cr_assert(!sf_ops_has_reader(ops, "stock.SKU-2"), "another sku is not read");
    cr_assert(!sf_ops_has_reader(ops, "alert."), "alerts are not read");
    cr_assert(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0) == 0);
    cr_assert(sf_ops_wait_reader(ops, "alert.drift", 5000), "'' reads every topic");
    cr_assert(zmq_setsockopt(sub, ZMQ_UNSUBSCRIBE, "", 0) == 0);
    cr_assert(reader_becomes(ops, "alert.drift", false, 5000), "'' was unsubscribed");
    cr_assert(sf_ops_has_reader(ops, "stock."), "stock.SKU-1 is still read");
    zmq_close(sub); /* the reader leaves: its subscriptions go */
    cr_assert(reader_becomes(ops, "stock.", false, 5000), "the reader left");
    zmq_ctx_term(ctx);
    sf_ops_close(ops);
    sf_ops_proxy_stop(proxy);
}

/* inv-api's bridge reads metrics. and alert. always (to replay them) and
 * every other topic only while a stream is open, so the reconciler skips
 * its positions query for stock.<sku> while nobody watches. */
Test(sse, the_bridge_reads_stock_only_while_a_stream_is_open)
{
    sse_env e;
    sse_start(&e, "sse-follow.log");
    sf_ops *ops = NULL;
    sf_error err;
    cr_assert(sf_ops_open(e.front, "inv-test", &ops, &err) == SF_OK, "%s", err.msg);
    cr_assert(sf_ops_wait_reader(ops, "alert.negative_stock", 10000), "alerts are always read");
    cr_assert(sf_ops_wait_reader(ops, "metrics.inv-test", 5000), "metrics are always read");
    cr_assert(!sf_ops_has_reader(ops, "stock."), "no stream open: stock. is not read");
    cr_assert(!sf_ops_has_reader(ops, "channel."), "no stream open: channel. is not read");
    for (int round = 0; round < 2; round++) {
        int fd = sse_open(e.port, "/v1/ops/events", e.key);
        sse_buf b = {0};
        cr_assert(sse_read_until(fd, &b, ": stockflow ops feed", 5000));
        cr_assert(sf_ops_wait_reader(ops, "stock.", 5000), "round %d: a stream reads stock.",
                  round);
        cr_assert(sf_ops_has_reader(ops, "channel."));
        publish_until(ops, "stock.FOLLOW", "{\"sku\":\"FOLLOW\"}", fd, &b, "event: stock.FOLLOW\n");
        close(fd);
        cr_assert(reader_becomes(ops, "stock.", false, 5000),
                  "round %d: the last stream closed, stock. is still read", round);
        cr_assert(sf_ops_has_reader(ops, "alert.negative_stock"), "alerts stay read");
        free(b.data);
    }
    sf_ops_close(ops);
}
