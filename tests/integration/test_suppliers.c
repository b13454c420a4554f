/*
 * Supplier feeds on the real stack: every sample format of examples/suppliers
 * -> inv-supplier -> JetStream -> inv-consumer -> positions, exact; re-runs,
 * re-sent documents with new envelopes and a kill -9 mid-feed publish
 * nothing twice; bad rows are rejected with their position while the good
 * ones go through; the drop directory archives and rejects; an http
 * supplier is polled from a local server.
 */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fixture.h"
#include "stockcheck.h"

TestSuite(suppliers, .init = fx_reset, .fini = fx_teardown, .timeout = 300);

#define CONFIG "examples/suppliers/suppliers.ini"

static int64_t col(const char *sku, const char *loc, const char *column)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM positions WHERE sku = '%s' AND location = '%s'",
             column, sku, loc);
    return fx_query_i64(sql);
}

static void import_map(void)
{
    char out[4096];
    const char *argv[] = {"invctl", "supplier-map", "import", "examples/suppliers/sku-map.csv",
                          NULL};
    cr_assert(fx_run(argv, NULL, out, sizeof out, 30000) == 0, "%s", out);
}

/* inv-supplier --config C --supplier S --file F [extra]; returns the exit code. */
static int supplier(const char *config, const char *sup, const char *file, const char *extra,
                    char *out, size_t size)
{
    const char *argv[] = {"inv-supplier", "--config", config, "--supplier", sup,
                          "--file",       file,       extra,  NULL};
    return fx_run(argv, NULL, out, size, 120000);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s", path);
    cr_assert(fputs(text, f) >= 0);
    cr_assert(fclose(f) == 0);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void feed_all_samples(void)
{
    static const char *const feeds[][2] = {{"acme", "examples/suppliers/acme-846.edi"},
                                           {"globex", "examples/suppliers/globex-856.edi"},
                                           {"initech", "examples/suppliers/initech-stock.csv"},
                                           {"umbrella", "examples/suppliers/umbrella-stock.jsonl"}};
    char out[8192];
    for (size_t i = 0; i < 4; i++)
        cr_assert(supplier(CONFIG, feeds[i][0], feeds[i][1], NULL, out, sizeof out) == 0, "%s: %s",
                  feeds[i][1], out);
}

Test(suppliers, every_sample_format_gives_exact_positions)
{
    import_map();
    feed_all_samples();
    cr_assert_eq(fx_stream_msgs("INV_EVENTS"), 5 + 3 + 6 + 5);
    sc_drain(1);
    /* x12-846 (acme): COUNTs, CA x units_per_pack of the sku map. */
    cr_assert_eq(col("WIDGET-S", "DC-EAST", "on_hand"), 120);
    cr_assert_eq(col("WIDGET-S", "DC-EAST", "count_qty"), 120);
    cr_assert_eq(col("WIDGET-L", "DC-EAST", "on_hand"), 15 * 6); /* QTY 33 wins over 17 */
    cr_assert_eq(col("WIDGET-S", "STORE-NYC", "on_hand"), 40);
    cr_assert_eq(col("WIDGET-XL", "STORE-NYC", "on_hand"), 8 * 4);
    cr_assert_eq(col("WIDGET-M", "STORE-NYC", "on_hand"), 0);
    /* x12-856 (globex): ASNs are inbound at the ship-to. */
    cr_assert_eq(col("SPROCKET-10", "DC-EAST", "inbound"), 24);
    cr_assert_eq(col("SPROCKET-20", "DC-EAST", "inbound"), 6 * 10);
    cr_assert_eq(col("SPROCKET-30", "DC-EAST", "inbound"), 12);
    cr_assert_eq(col("SPROCKET-30", "DC-EAST", "on_hand"), 0);
    /* csv (initech): 2.5 CA x 10 per pack = 25. */
    cr_assert_eq(col("STAPLER-RED", "STORE-NYC", "on_hand"), 24);
    cr_assert_eq(col("PAPER-A4", "STORE-NYC", "on_hand"), 25);
    cr_assert_eq(col("TONER-XL", "STORE-NYC", "on_hand"), 7);
    cr_assert_eq(col("STAPLER-RED", "STORE-BOS", "on_hand"), 12);
    cr_assert_eq(col("PAPER-A4", "STORE-BOS", "on_hand"), 100);
    cr_assert_eq(col("TPS-COVER", "STORE-BOS", "on_hand"), 0);
    /* jsonl (umbrella, identity skus, 6 per pack): the RECEIPT at 11:45Z is
     * before the COUNT at 12:00Z, so inside it: on_hand stays 15. */
    cr_assert_eq(col("UMB-100", "DC-EAST", "on_hand"), 40);
    cr_assert_eq(col("UMB-200", "DC-EAST", "on_hand"), 15);
    cr_assert_eq(col("UMB-200", "DC-EAST", "inbound"), -24);
    cr_assert_eq(col("UMB-300", "STORE-BOS", "on_hand"), 18);
    cr_assert_eq(col("UMB-100", "STORE-BOS", "inbound"), 120);
    /* Sources and references travel with the events. */
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger WHERE source = 'acme'"), 5);
    cr_assert_eq(
        fx_query_i64("SELECT count(*) FROM ledger WHERE source = 'globex' AND ref = 'SHP-88213'"),
        3);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger WHERE event_id LIKE 'sup-%'"), 19);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM feed_checkpoints WHERE state = 'done'"), 4);
}

Test(suppliers, rerun_and_resent_document_publish_nothing)
{
    import_map();
    feed_all_samples();
    uint64_t before = fx_stream_msgs("INV_EVENTS");
    char out[8192];
    /* The same file again: the checkpoint says done. */
    cr_assert(supplier(CONFIG, "acme", "examples/suppliers/acme-846.edi", NULL, out, sizeof out) ==
              0);
    cr_assert(strstr(out, "already published"), "%s", out);
    /* The same document re-sent with new control numbers and envelope
     * dates: same business digest, nothing new. */
    char *doc = strdup(read_text("examples/suppliers/acme-846.edi"));
    char *p;
    while ((p = strstr(doc, "000000101")))
        memcpy(p, "000000202", 9);
    while ((p = strstr(doc, "*101")))
        memcpy(p, "*202", 4);
    if ((p = strstr(doc, "ST*846*0001~")))
        memcpy(p, "ST*846*0777~", 12);
    if ((p = strstr(doc, "SE*23*0001~")))
        memcpy(p, "SE*23*0777~", 11);
    if ((p = strstr(doc, "*240301*0930*")))
        memcpy(p, "*240302*1100*", 13);
    char path[512];
    sc_tmp("acme-resent.edi", path, sizeof path);
    write_file(path, doc);
    free(doc);
    cr_assert(supplier(CONFIG, "acme", path, NULL, out, sizeof out) == 0, "%s", out);
    cr_assert(strstr(out, "already published"), "%s", out);
    cr_assert_eq(fx_stream_msgs("INV_EVENTS"), before);

    /* Without the checkpoint (deleted), the same ids come back: JetStream
     * reports them as duplicates and stores nothing. */
    fx_exec("DELETE FROM feed_checkpoints WHERE supplier = 'acme'");
    cr_assert(supplier(CONFIG, "acme", path, NULL, out, sizeof out) == 0, "%s", out);
    cr_assert(strstr(out, "5 records, 0 published, 5 duplicate"), "%s", out);
    cr_assert_eq(fx_stream_msgs("INV_EVENTS"), before);
}

Test(suppliers, bad_rows_rejected_with_position_good_rows_published)
{
    import_map();
    char path[512], errs[512], out[8192];
    sc_tmp("initech-bad.csv", path, sizeof path);
    sc_tmp("initech-bad.errors", errs, sizeof errs);
    unlink(errs);
    write_file(path, "ITEM_NO;DESCRIPTION;QTY ON HAND;UOM;WHSE;AS_OF\n"
                     "IN-1001;ok;5;EA;AUS1;2026-11-20 06:00\n"
                     "IN-9999;unmapped;5;EA;AUS1;2026-11-20 06:00\n"
                     "IN-1003;fraction of a unit;2.5;EA;AUS1;2026-11-20 06:00\n"
                     "IN-1003;weight;3;LB;AUS1;2026-11-20 06:00\n"
                     "IN-1003;unknown warehouse;3;EA;XYZ9;2026-11-20 06:00\n"
                     "IN-1003;bad qty;three;EA;AUS1;2026-11-20 06:00\n"
                     "IN-1004;ok;1;CA;DAL2;2026-11-20 06:00\n");
    const char *argv[] = {"inv-supplier", "--config", CONFIG,     "--supplier", "initech",
                          "--file",       path,       "--errors", errs,         NULL};
    cr_assert_eq(fx_run(argv, NULL, out, sizeof out, 60000), 1, "%s", out);
    cr_assert(
        strstr(out, "7 records, 2 published, 0 duplicate, 0 skipped (checkpoint), 5 rejected"),
        "%s", out);
    const char *e = read_text(errs);
    char want[640];
    snprintf(want, sizeof want, "%s:line 3: field sku: supplier sku 'IN-9999' is not in", path);
    cr_assert(strstr(e, want), "%s", e);
    snprintf(want, sizeof want, "%s:line 4: field qty:", path);
    cr_assert(strstr(e, want), "%s", e);
    snprintf(want, sizeof want, "%s:line 5: field uom: 'LB' is not a count unit", path);
    cr_assert(strstr(e, want), "%s", e);
    snprintf(want, sizeof want, "%s:line 6: field location: their location 'XYZ9'", path);
    cr_assert(strstr(e, want), "%s", e);
    snprintf(want, sizeof want, "%s:line 7:", path);
    cr_assert(strstr(e, want), "%s", e);
    cr_assert_eq(fx_stream_msgs("INV_EVENTS"), 2);
    sc_drain(1);
    cr_assert_eq(col("STAPLER-RED", "STORE-NYC", "on_hand"), 5);
    cr_assert_eq(col("TPS-COVER", "STORE-BOS", "on_hand"), 1);
}

Test(suppliers, drop_directory_archives_and_rejects)
{
    import_map();
    char root[512], path[1024], out[8192];
    sc_tmp("dropdir", root, sizeof root);
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/inbox/acme' '%s/inbox/initech'", root,
             root, root);
    cr_assert(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "cp examples/suppliers/acme-846.edi '%s/inbox/acme/advice.edi'",
             root);
    cr_assert(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/inbox/initech/stock.csv", root);
    write_file(path, "ITEM_NO;DESCRIPTION;QTY ON HAND;UOM;WHSE;AS_OF\n"
                     "IN-1001;ok;5;EA;AUS1;2026-11-20 06:00\n"
                     "IN-0000;unmapped;5;EA;AUS1;2026-11-20 06:00\n");
    snprintf(path, sizeof path, "%s/inbox/initech/.partial.csv", root);
    write_file(path, "still being written");
    const char *argv[] = {"inv-supplier", "--config", CONFIG, "--watch", root, "--once", NULL};
    cr_assert_eq(fx_run(argv, NULL, out, sizeof out, 60000), 0, "%s", out);

    struct stat sb;
    snprintf(path, sizeof path, "%s/archive/acme/advice.edi", root);
    cr_assert(stat(path, &sb) == 0, "not archived: %s\n%s", path, out);
    snprintf(path, sizeof path, "%s/inbox/acme/advice.edi", root);
    cr_assert(stat(path, &sb) != 0);
    snprintf(path, sizeof path, "%s/rejected/initech/stock.csv", root);
    cr_assert(stat(path, &sb) == 0, "not rejected: %s\n%s", path, out);
    snprintf(path, sizeof path, "%s/rejected/initech/stock.csv.errors", root);
    const char *e = read_text(path);
    cr_assert(strstr(e, "stock.csv:line 3: field sku: supplier sku 'IN-0000'"), "%s", e);
    cr_assert(!strstr(e, "line 2"), "%s", e);
    snprintf(path, sizeof path, "%s/inbox/initech/.partial.csv", root);
    cr_assert(stat(path, &sb) == 0, "a dot file must be left alone");
    /* The good row of the rejected feed was published all the same. */
    cr_assert_eq(fx_stream_msgs("INV_EVENTS"), 5 + 1);
}

/* A big identity-mapped CSV feed, kill -9 mid-way, then run again. */
static bool checkpoint_moved(void *arg)
{
    (void)arg;
    return fx_query_i64("SELECT COALESCE(max(acked), 0) FROM feed_checkpoints") >= 4000;
}

Test(suppliers, kill_9_mid_feed_then_resume_publishes_nothing_twice)
{
    enum { ROWS = 120000 };
    char cfg[512], path[512], log[512], out[8192];
    sc_tmp("bulk.ini", cfg, sizeof cfg);
    sc_tmp("bulk.csv", path, sizeof path);
    sc_tmp("bulk-1.log", log, sizeof log);
    write_file(cfg, "[supplier.bulk]\nformat = csv\nsku_map = identity\nlocation = DC-EAST\n"
                    "columns = sku=sku, qty=qty\n");
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "sku,qty\n");
    for (int i = 0; i < ROWS; i++)
        fprintf(f, "BULK-%06d,%d\n", i, i % 50);
    cr_assert(fclose(f) == 0);

    const char *argv[] = {"inv-supplier", "--config", cfg,  "--supplier",
                          "bulk",         "--file",   path, NULL};
    pid_t pid = fx_spawn(argv, log);
    cr_assert(fx_wait_until(checkpoint_moved, NULL, 60000), "no checkpoint progress");
    fx_stop(pid, SIGKILL, 10000);
    /* What the killed process had already sent still lands: a checkpoint
     * update PostgreSQL was running, publishes in nats-server's socket. */
    usleep(1000 * 1000);
    int64_t acked = fx_query_i64("SELECT acked FROM feed_checkpoints");
    uint64_t stored = fx_stream_msgs("INV_EVENTS");
    cr_assert(acked >= 4000 && acked < ROWS, "acked %lld", (long long)acked);
    cr_assert((int64_t)stored >= acked, "stored %llu < acked %lld", (unsigned long long)stored,
              (long long)acked);

    cr_assert_eq(fx_run(argv, NULL, out, sizeof out, 120000), 0, "%s", out);
    unsigned long long records, published, duplicate, skipped;
    const char *line = strstr(out, "records,");
    cr_assert(line, "%s", out);
    while (line > out && line[-1] != '\n')
        line--;
    cr_assert(sscanf(strchr(line, ':') + 1,
                     " %llu records, %llu published, %llu duplicate, %llu skipped", &records,
                     &published, &duplicate, &skipped) == 4,
              "%s", out);
    cr_assert_eq(records, ROWS);
    cr_assert_eq(skipped, (unsigned long long)acked, "%s", out);
    cr_assert_eq(published + duplicate + skipped, ROWS, "%s", out);
    /* Exactly one stored message per record: nothing lost, nothing twice. */
    cr_assert_eq(fx_stream_msgs("INV_EVENTS"), ROWS);
    cr_assert_eq(published, ROWS - stored, "%s", out);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM feed_checkpoints WHERE state = 'done'"), 1);
    sc_drain(2);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger"), ROWS);
    cr_assert_eq(fx_query_i64("SELECT sum(on_hand) FROM positions"),
                 (int64_t)(ROWS / 50) * (49 * 50 / 2));
}

/* ---- http: a local evhttp server the test starts -------------------------- */
typedef struct http_srv {
    struct event_base *base;
    struct evhttp *http;
    pthread_t thread;
    int port;
    int requests;
    int conditional; /* requests that carried If-None-Match */
    volatile int stopping;
    struct event *tick;
} http_srv;

/* libevent is not set up for threads here: the loop breaks itself when a
 * timer sees the stop flag, rather than being broken from outside. */
static void http_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_srv *s = arg;
    if (s->stopping)
        event_base_loopbreak(s->base);
}

static void http_feed(struct evhttp_request *req, void *arg)
{
    http_srv *s = arg;
    s->requests++;
    const char *inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
    if (inm)
        s->conditional++;
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "ETag", "\"v1\"");
    if (inm && !strcmp(inm, "\"v1\"")) {
        evhttp_send_reply(req, 304, "Not Modified", NULL);
        return;
    }
    struct evbuffer *body = evbuffer_new();
    evbuffer_add_printf(body, "%s", read_text("examples/suppliers/umbrella-stock.jsonl"));
    evhttp_send_reply(req, 200, "OK", body);
    evbuffer_free(body);
}

static void *http_loop(void *arg)
{
    event_base_dispatch(((http_srv *)arg)->base);
    return NULL;
}

static void http_start(http_srv *s)
{
    memset(s, 0, sizeof *s);
    s->base = event_base_new();
    s->http = evhttp_new(s->base);
    cr_assert(s->base && s->http);
    evhttp_set_cb(s->http, "/feed.jsonl", http_feed, s);
    struct evhttp_bound_socket *h = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    cr_assert(h);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    cr_assert(getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&ss, &len) == 0);
    s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    s->tick = event_new(s->base, -1, EV_PERSIST, http_tick, s);
    struct timeval tv = {0, 20000};
    cr_assert(s->tick && event_add(s->tick, &tv) == 0);
    cr_assert(pthread_create(&s->thread, NULL, http_loop, s) == 0);
}

static void http_stop(http_srv *s)
{
    s->stopping = 1;
    pthread_join(s->thread, NULL);
    event_free(s->tick);
    evhttp_free(s->http);
    event_base_free(s->base);
}

Test(suppliers, http_supplier_polled_from_a_local_server)
{
    http_srv srv;
    http_start(&srv);
    char cfg[512], text[1024], out[8192];
    sc_tmp("http.ini", cfg, sizeof cfg);
    snprintf(text, sizeof text,
             "[supplier.umbrella]\nformat = http\nbody_format = jsonl\n"
             "url = http://127.0.0.1:%d/feed.jsonl\ninterval = 1\ntimeout = 5\n"
             "fields = sku=/item/id, qty=/qty, uom=/uom, location=/warehouse, "
             "occurred_at=/as_of, kind=/type, ref=/po\n"
             "location_map = RC-1=DC-EAST, RC-2=STORE-BOS\nsku_map = identity\n"
             "units_per_pack = 6\ntimezone = -05:00\n",
             srv.port);
    write_file(cfg, text);
    /* One poll: the body is the umbrella sample, five events. */
    const char *once[] = {"inv-supplier", "--config", cfg, "--supplier", "umbrella", NULL};
    cr_assert_eq(fx_run(once, NULL, out, sizeof out, 60000), 0, "%s", out);
    cr_assert(strstr(out, "umbrella@http: 5 records, 5 published"), "%s", out);
    cr_assert_eq(fx_stream_msgs("INV_EVENTS"), 5);
    /* A new process has no validators: it fetches again, and the document
     * checkpoint makes that a no-op. */
    cr_assert_eq(fx_run(once, NULL, out, sizeof out, 60000), 0, "%s", out);
    cr_assert(strstr(out, "already published"), "%s", out);
    cr_assert_eq(fx_stream_msgs("INV_EVENTS"), 5);
    /* The watcher polls on the interval with If-None-Match after the first. */
    char root[512], log[512];
    sc_tmp("http-drop", root, sizeof root);
    sc_tmp("http-watch.log", log, sizeof log);
    const char *watch[] = {"inv-supplier", "--config", cfg, "--watch", root, NULL};
    int before = srv.requests;
    pid_t pid = fx_spawn(watch, log);
    int64_t until = fx_now_ms() + 15000;
    while (srv.conditional < 2 && fx_now_ms() < until)
        usleep(50 * 1000);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
    http_stop(&srv);
    cr_assert(srv.requests - before >= 3, "requests %d", srv.requests - before);
    cr_assert(srv.conditional >= 2, "conditional requests %d", srv.conditional);
    cr_assert_eq(fx_stream_msgs("INV_EVENTS"), 5);
    sc_drain(1);
    cr_assert_eq(col("UMB-100", "STORE-BOS", "inbound"), 120);
}
