/*
 * Bounded input (issue 8 point 6) on the real stack: each configurable
 * limit of inv-api crossed by one request, with the error it must give,
 * and the refused attempts counted in /metrics:
 * - [api] rate_per_key / burst: a key gets `burst` requests at once, the
 *   next is 429 with Retry-After and a message naming rate_per_key; another
 *   key is not affected; tokens come back at the configured rate; buckets
 *   follow the key's id, not its name: a config key and a table key of one
 *   name have a bucket each, a renamed key keeps its (empty) bucket and a
 *   new key given the old name gets a full one;
 * - failed key checks counted by reason (missing, malformed, unknown,
 *   revoked, wrong_scope) in inv_api_auth_failures_total;
 * - [api] max_header_bytes and max_body_bytes: one byte under passes, far
 *   over is refused by evhttp (413/400 or a close), never served;
 * - [api] max_query_bytes: a query string one byte over is 414 naming it
 *   (API routes, the public dashboard and ?key= of the event stream alike),
 *   one at the limit is read; [api] max_ledger_page: a larger `limit` is a
 *   400 naming it, and a page without `limit` holds at most that many;
 * - [consumer] max_msg_bytes: a message over it is sidelined to
 *   inv.dlq.decode unread, naming the limit; the events around it apply;
 * - [supplier.<id>] max_segments (and the other X12 limits): an 846 over a
 *   lowered limit is refused whole, naming the file and the segment, moved
 *   to rejected/ with its .errors file, and publishes nothing;
 * - a limit key out of range stops inv-api (or inv-supplier) with exit 2
 *   naming it.
 * docs/security.md lists every limit and the test that crosses it.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "codec.h"
#include "fixture.h"
#include "stockcheck.h"
#include "test_api_http.h"

TestSuite(limits, .init = fx_reset, .fini = api_fini, .timeout = 240);

/* Write text to STACK_DIR/name; the path into path. */
static void write_cfg(const char *name, const char *text, char *path, size_t size)
{
    sc_tmp(name, path, size);
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* The value of the Prometheus sample line starting with `sample ` in
 * body, or -1 when absent. */
static long long metric(const char *body, const char *sample)
{
    size_t n = strlen(sample);
    for (const char *l = body; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (!strncmp(l, sample, n) && l[n] == ' ')
            return atoll(l + n + 1);
    }
    return -1;
}

static char *get_metrics(int port, const char *key)
{
    api_resp r;
    int st = api_get(port, "/metrics", key, &r);
    cr_assert_eq(st, 200, "/metrics: %d %s", st, r.body);
    return r.body; /* caller frees */
}

Test(limits, rate_per_key_gives_429_with_retry_after)
{
    api_load_data();
    char key[128], other[128], admin[128], cfg[512];
    api_add_key("hasty", "read", key, sizeof key, NULL, 0);
    api_add_key("calm", "read", other, sizeof other, NULL, 0);
    api_add_key("ops", "admin", admin, sizeof admin, NULL, 0);
    write_cfg("limits-rate.ini", "[api]\nrate_per_key = 2\nburst = 3\n", cfg, sizeof cfg);
    const char *extra[] = {"--config", cfg, NULL};
    pid_t pid;
    int port = api_start("limits-rate.log", extra, &pid);

    /* burst 3: three at once pass, the fourth is refused */
    for (int i = 0; i < 3; i++) {
        json_t *j = api_get_json(port, "/v1/stock/SKU-A", key, 200);
        json_decref(j);
    }
    api_resp r;
    int st = api_get(port, "/v1/stock/SKU-A", key, &r);
    cr_assert_eq(st, 429, "4th request within the burst: %d %s", st, r.body);
    char ra[32];
    api_header(&r, "Retry-After", ra, sizeof ra);
    cr_assert(atoi(ra) >= 1 && atoi(ra) <= 2, "Retry-After '%s'", ra);
    json_t *j = api_json(&r);
    cr_assert(strstr(json_string_value(json_object_get(j, "error")), "rate_per_key"), "%s", r.body);
    cr_assert(strstr(json_string_value(json_object_get(j, "error")), "hasty"), "%s", r.body);
    json_decref(j);
    api_resp_free(&r);
    /* another key has its own bucket */
    j = api_get_json(port, "/v1/stock/SKU-A", other, 200);
    json_decref(j);
    /* 2 tokens a second: one is back within 600 ms */
    usleep(600 * 1000);
    j = api_get_json(port, "/v1/stock/SKU-A", key, 200);
    json_decref(j);

    char *m = get_metrics(port, admin);
    cr_assert_eq(metric(m, "inv_api_rate_limited_total"), 1, "%s", m);
    cr_assert_eq(metric(m, "inv_api_requests_total{route=\"stock\",status=\"429\"}"), 1, "%s", m);
    free(m);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

/* GET /v1/stock/SKU-A with key until the first 429 (at most 100 tries):
 * the number of 200s before it; its message into msg. */
static int drain(int port, const char *key, char *msg, size_t size)
{
    for (int ok = 0; ok < 100; ok++) {
        api_resp r;
        int st = api_get(port, "/v1/stock/SKU-A", key, &r);
        if (st == 429) {
            json_t *j = api_json(&r);
            snprintf(msg, size, "%s", json_string_value(json_object_get(j, "error")));
            json_decref(j);
            api_resp_free(&r);
            return ok;
        }
        cr_assert_eq(st, 200, "%d: %s", st, r.body);
        api_resp_free(&r);
    }
    cr_assert(false, "no 429 in 100 requests");
    return -1;
}

Test(limits, rate_buckets_follow_the_key_id_not_its_name)
{
    api_load_data();
    char cfg_twin[128], table_twin[128], hasty[128], hasty2[128], ini[8192], section[1024];
    char cfg[2048], text[2048], msg[512];
    api_add_key("twin", "read", cfg_twin, sizeof cfg_twin, ini, sizeof ini); /* --ini: config */
    api_ini_section(ini, section, sizeof section);
    api_add_key("twin", "read", table_twin, sizeof table_twin, NULL, 0);
    api_add_key("hasty", "read", hasty, sizeof hasty, NULL, 0);
    snprintf(text, sizeof text, "[api]\nrate_per_key = 1\nburst = 20\n%s", section);
    write_cfg("limits-buckets.ini", text, cfg, sizeof cfg);
    const char *extra[] = {"--config", cfg, NULL};
    pid_t pid;
    int port = api_start("limits-buckets.log", extra, &pid);

    /* [apikey.twin] and the table's key named twin: a bucket each */
    cr_assert_geq(drain(port, cfg_twin, msg, sizeof msg), 20);
    cr_assert(strstr(msg, "key twin (id twin)"), "%s", msg);
    json_decref(api_get_json(port, "/v1/stock/SKU-A", table_twin, 200));

    /* hasty drained, then renamed; a new key takes the name hasty */
    cr_assert_geq(drain(port, hasty, msg, sizeof msg), 20);
    fx_exec("UPDATE api_keys SET name = 'renamed' WHERE name = 'hasty'");
    api_add_key("hasty", "read", hasty2, sizeof hasty2, NULL, 0);
    /* until inv-api reloads api_keys (every 5 s), the new key is unknown;
     * the renamed one keeps asking meanwhile, so its bucket stays empty */
    int64_t t0 = fx_now_ms(), deadline = t0 + 15000;
    int renamed_ok = 0, st;
    for (;;) {
        api_resp r;
        st = api_get(port, "/v1/stock/SKU-A", hasty, &r);
        renamed_ok += st == 200;
        api_resp_free(&r);
        st = api_get(port, "/v1/stock/SKU-A", hasty2, &r);
        api_resp_free(&r);
        if (st != 401)
            break;
        cr_assert(fx_now_ms() < deadline, "the new key was never loaded");
        usleep(100 * 1000);
    }
    cr_assert_eq(st, 200, "the new key named hasty starts with a full bucket, not hasty's");
    for (int i = 0; i < 14; i++)
        json_decref(api_get_json(port, "/v1/stock/SKU-A", hasty2, 200));
    /* the renamed key: still its own empty bucket (1 token a second) */
    int refused = 0;
    for (int i = 0; i < 5; i++) {
        api_resp r;
        st = api_get(port, "/v1/stock/SKU-A", hasty, &r);
        if (st == 429) {
            refused++;
            cr_assert(strstr(r.body, "key renamed (id "), "%s", r.body);
        }
        api_resp_free(&r);
    }
    cr_assert_geq(refused, 4, "renaming a key gave it a fresh bucket");
    int64_t secs = (fx_now_ms() - t0) / 1000;
    cr_assert_leq(renamed_ok, secs + 2, "%d requests of the renamed key in %lld s", renamed_ok,
                  (long long)secs);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

Test(limits, failed_key_checks_counted_by_reason)
{
    api_load_data();
    char reader[128], feeder[128], gone[128], admin[128], out[4096];
    api_add_key("reader", "read", reader, sizeof reader, NULL, 0);
    api_add_key("feeder", "ingest", feeder, sizeof feeder, NULL, 0);
    api_add_key("gone", "read", gone, sizeof gone, NULL, 0);
    api_add_key("ops", "admin", admin, sizeof admin, NULL, 0);
    const char *revoke[] = {"invctl", "apikey", "revoke", "gone", NULL};
    cr_assert_eq(fx_run(revoke, NULL, out, sizeof out, 30000), 0, "%s", out);
    pid_t pid;
    int port = api_start("limits-auth.log", NULL, &pid);

    /* a wrong secret for a known id: same length, last character changed */
    char wrong[128];
    snprintf(wrong, sizeof wrong, "%s", reader);
    wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == 'A' ? 'B' : 'A';
    api_resp r;
    cr_assert_eq(api_get(port, "/v1/stock/SKU-A", NULL, &r), 401);
    api_resp_free(&r);
    cr_assert_eq(api_get(port, "/v1/stock/SKU-A", "not-a-key", &r), 401);
    api_resp_free(&r);
    cr_assert_eq(api_get(port, "/v1/stock/SKU-A", wrong, &r), 401);
    api_resp_free(&r);
    cr_assert_eq(api_get(port, "/v1/stock/SKU-A", wrong, &r), 401);
    api_resp_free(&r);
    cr_assert_eq(api_get(port, "/v1/stock/SKU-A", gone, &r), 401);
    api_resp_free(&r);
    cr_assert_eq(api_get(port, "/v1/stock/SKU-A", feeder, &r), 403);
    api_resp_free(&r);
    cr_assert_eq(api_get(port, "/v1/stock/SKU-A", reader, &r), 200);
    api_resp_free(&r);

    char *m = get_metrics(port, admin);
    cr_assert_eq(metric(m, "inv_api_auth_failures_total{reason=\"missing\"}"), 1, "%s", m);
    cr_assert_eq(metric(m, "inv_api_auth_failures_total{reason=\"malformed\"}"), 1, "%s", m);
    cr_assert_eq(metric(m, "inv_api_auth_failures_total{reason=\"unknown\"}"), 2, "%s", m);
    cr_assert_eq(metric(m, "inv_api_auth_failures_total{reason=\"revoked\"}"), 1, "%s", m);
    cr_assert_eq(metric(m, "inv_api_auth_failures_total{reason=\"wrong_scope\"}"), 1, "%s", m);
    cr_assert_eq(metric(m, "inv_api_rate_limited_total"), 0, "%s", m);
    free(m);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

/* GET /v1/stock/SKU-A with an X-Pad header of pad bytes (and a body of
 * body bytes when body > 0). */
static int padded(int port, const char *key, size_t pad, size_t body, api_resp *r)
{
    size_t cap = pad + body + 1024;
    char *req = malloc(cap);
    cr_assert(req);
    int n = snprintf(req, cap,
                     "GET /v1/stock/SKU-A HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\nX-Pad: ",
                     key, body);
    memset(req + n, 'p', pad);
    n += (int)pad;
    n += snprintf(req + n, cap - (size_t)n, "\r\n\r\n");
    memset(req + n, 'b', body);
    n += (int)body;
    int st = api_raw_lenient(port, req, (size_t)n, API_IO_TIMEOUT_MS, r);
    free(req);
    return st;
}

Test(limits, header_and_body_sizes_from_the_config)
{
    api_load_data();
    char key[128], cfg[512];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    /* max_batch 1 leaves 200 bytes of room for the channel batch */
    write_cfg("limits-size.ini",
              "[api]\nmax_batch = 1\nmax_header_bytes = 2048\nmax_body_bytes = 1024\n", cfg,
              sizeof cfg);
    const char *extra[] = {"--config", cfg, NULL};
    pid_t pid;
    int port = api_start("limits-size.log", extra, &pid);
    api_resp r;
    int st = padded(port, key, 1000, 0, &r);
    cr_assert_eq(st, 200, "1000-byte header under the limit: %d %s", st, r.body);
    api_resp_free(&r);
    st = padded(port, key, 4000, 0, &r);
    cr_assert(st == 413 || st == 400 || st == 431 || st == 0, "4000-byte header: status %d", st);
    cr_assert(st != 200);
    api_resp_free(&r);
    st = padded(port, key, 10, 1000, &r);
    cr_assert_eq(st, 200, "1000-byte body under the limit: %d %s", st, r.body);
    api_resp_free(&r);
    st = padded(port, key, 10, 5000, &r);
    cr_assert(st == 413 || st == 400 || st == 0, "5000-byte body: status %d", st);
    api_resp_free(&r);
    /* still serving */
    json_t *j = api_get_json(port, "/v1/stock/SKU-A", key, 200);
    json_decref(j);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

/* target = path + "?" + n bytes of query: `name=` then 'x's. */
static char *with_query(const char *path, const char *name, size_t n)
{
    size_t plen = strlen(path), nlen = strlen(name);
    cr_assert(n > nlen);
    char *t = malloc(plen + 1 + n + 1);
    cr_assert(t);
    memcpy(t, path, plen);
    t[plen] = '?';
    memcpy(t + plen + 1, name, nlen);
    memset(t + plen + 1 + nlen, 'x', n - nlen);
    t[plen + 1 + n] = '\0';
    return t;
}

/* The JSON error of r: status, field and a message holding needle. */
static void json_error_is(api_resp *r, int status, const char *field, const char *needle)
{
    cr_assert_eq(r->status, status, "%d: %s", r->status, r->body);
    json_t *j = api_json(r);
    const char *msg = json_string_value(json_object_get(j, "error"));
    cr_assert(msg && strstr(msg, needle), "error lacks '%s': %s", needle, r->body);
    cr_assert(!strcmp(json_string_value(json_object_get(j, "field")), field), "%s", r->body);
    json_decref(j);
    api_resp_free(r);
}

Test(limits, query_bytes_and_ledger_page_from_the_config)
{
    api_load_data();
    char key[128], cfg[512];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    write_cfg("limits-query.ini", "[api]\nmax_query_bytes = 300\nmax_ledger_page = 4\n", cfg,
              sizeof cfg);
    const char *extra[] = {"--config", cfg, NULL};
    pid_t pid;
    int port = api_start("limits-query.log", extra, &pid);
    api_resp r;

    /* 300 bytes are read (an unknown parameter: 400), 301 are not (414) */
    char *t = with_query("/v1/stock/SKU-A", "pad=", 300);
    api_get(port, t, key, &r);
    json_error_is(&r, 400, "query", "pad");
    free(t);
    t = with_query("/v1/stock/SKU-A", "pad=", 301);
    api_get(port, t, key, &r);
    json_error_is(&r, 414, "query",
                  "query string of 301 bytes, longer than 300 ([api] max_query_bytes)");
    free(t);
    /* the public page and the event stream's ?key= meet the same limit */
    t = with_query("/dashboard", "key=", 301);
    api_get(port, t, NULL, &r);
    json_error_is(&r, 414, "query", "[api] max_query_bytes");
    free(t);
    t = with_query("/v1/ops/events", "key=", 301);
    api_get(port, t, NULL, &r);
    json_error_is(&r, 414, "query", "[api] max_query_bytes");
    free(t);

    /* limit=4 is a page; 5 is a 400 naming the key; no limit: 4 at most */
    json_t *j = api_get_json(port, "/v1/ledger/SKU-A?limit=4", key, 200);
    cr_assert_eq(json_array_size(json_object_get(j, "events")), 4);
    json_decref(j);
    api_get(port, "/v1/ledger/SKU-A?limit=5", key, &r);
    json_error_is(&r, 400, "limit",
                  "field limit: '5' is not a whole number in 1..4 ([api] max_ledger_page)");
    j = api_get_json(port, "/v1/ledger/SKU-A", key, 200);
    cr_assert_eq(json_array_size(json_object_get(j, "events")), 4, "SKU-A has 6 events");
    cr_assert(json_is_integer(json_object_get(j, "next_after")), "a next page");
    json_decref(j);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

Test(limits, limit_keys_out_of_range_are_usage_errors)
{
    static const char *const bad[][2] = {
        {"[api]\nrate_per_key = 0\n", "[api] rate_per_key: out of range: 0"},
        {"[api]\nburst = -1\n", "[api] burst: out of range"},
        {"[api]\nmax_header_bytes = 100\n", "[api] max_header_bytes: out of range: 100"},
        {"[api]\nmax_body_bytes = 99999999\n", "[api] max_body_bytes: out of range"},
        {"[api]\nmax_batch = 100001\n", "[api] max_batch: out of range"},
        {"[api]\nmax_query_bytes = 255\n", "[api] max_query_bytes: out of range: 255"},
        {"[api]\nmax_ledger_page = 0\n", "[api] max_ledger_page: out of range: 0"},
        {"[api]\nmax_ledger_page = 100001\n", "[api] max_ledger_page: out of range"},
        {"[ingest]\nmax_line = 10\n", "[ingest] max_line: out of range: 10"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cfg[512], out[4096];
        write_cfg("limits-bad.ini", bad[i][0], cfg, sizeof cfg);
        const char *argv[] = {"inv-api", "--config", cfg, "--listen", "127.0.0.1:0", NULL};
        int rc = fx_run(argv, NULL, out, sizeof out, 30000);
        cr_assert_eq(rc, 2, "%s: exit %d: %s", bad[i][0], rc, out);
        cr_assert(strstr(out, bad[i][1]) && strstr(out, "limits-bad.ini:2"),
                  "%s: message lacks '%s': %s", bad[i][0], bad[i][1], out);
    }
}

Test(limits, consumer_sidelines_a_message_over_max_msg_bytes)
{
    sf_broker *b = NULL;
    sf_codec *c = NULL;
    sf_error err;
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = fx_env("INV_NATS_URL");
    cr_assert(sf_broker_connect(&bo, &b, &err) == SF_OK, "%s", err.msg);
    cr_assert(sf_codec_new(&c, &err) == SF_OK, "%s", err.msg);
    sf_event ev;
    sf_event_init(&ev);
    snprintf(ev.event_id, sizeof ev.event_id, "small-1");
    ev.kind = SF_KIND_RECEIPT;
    snprintf(ev.sku, sizeof ev.sku, "SKU-M");
    snprintf(ev.location, sizeof ev.location, "LOC-1");
    ev.qty = 5;
    ev.occurred_at = 1795000000000;
    snprintf(ev.source, sizeof ev.source, "test");
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len;
    uint64_t seq;
    cr_assert(sf_codec_encode_event(c, &ev, buf, sizeof buf, &len, &err) == SF_OK, "%s", err.msg);
    cr_assert(sf_broker_publish_sync(b, "inv.evt.receipt.LOC-1", ev.event_id, NULL, 0, buf, len,
                                     &seq, &err) == SF_OK,
              "%s", err.msg);
    /* 100 kB: a valid header, then padding (far over the default 1024) */
    size_t big_len = 100000;
    uint8_t *big = calloc(1, big_len);
    cr_assert(big);
    memcpy(big, buf, len);
    cr_assert(sf_broker_publish_sync(b, "inv.evt.receipt.LOC-1", "big-1", NULL, 0, big, big_len,
                                     &seq, &err) == SF_OK,
              "%s", err.msg);
    free(big);
    sc_drain(1);
    cr_assert_eq(fx_query_i64("SELECT on_hand FROM positions WHERE sku = 'SKU-M'"), 5);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger"), 1);
    char out[65536];
    const char *argv[] = {"invctl", "dlq", "list", NULL};
    cr_assert_eq(fx_run(argv, NULL, out, sizeof out, 20000), 0, "%s", out);
    cr_assert(strstr(out, "inv.dlq.decode") && strstr(out, "max_msg_bytes") &&
                  strstr(out, "100000 bytes"),
              "the DLQ does not name the limit: %s", out);
    sf_codec_free(c);
    sf_broker_close(b);
}

/* acme of examples/suppliers (its sku map imported by the test) */
static const char X12_SUPPLIER[] = "[supplier.acme]\nformat = x12-846\n"
                                   "location_map = 0001=DC-EAST, 0002=STORE-NYC\n"
                                   "timezone = -05:00\n";
#define ACME_846 "examples/suppliers/acme-846.edi"

/* inv-supplier --config cfg --supplier acme --file the acme sample; the
 * exit code. */
static int acme_file(const char *cfg, char *out, size_t size)
{
    const char *argv[] = {"inv-supplier", "--config", cfg,      "--supplier",
                          "acme",         "--file",   ACME_846, NULL};
    return fx_run(argv, NULL, out, size, 60000);
}

Test(limits, x12_document_over_max_segments_is_rejected_whole)
{
    /* the acme sample has 27 segments: 26 is one too few */
    char cfg[512], root[512], path[1024], out[16384], text[1024], cmd[4096];
    const char *map[] = {"invctl", "supplier-map", "import", "examples/suppliers/sku-map.csv",
                         NULL};
    cr_assert_eq(fx_run(map, NULL, out, sizeof out, 30000), 0, "%s", out);
    snprintf(text, sizeof text, "%smax_segments = 26\n", X12_SUPPLIER);
    write_cfg("limits-x12.ini", text, cfg, sizeof cfg);
    sc_tmp("limits-drop", root, sizeof root);
    snprintf(cmd, sizeof cmd,
             "rm -rf '%s' && mkdir -p '%s/inbox/acme' && cp " ACME_846
             " '%s/inbox/acme/advice.edi'",
             root, root, root);
    cr_assert(system(cmd) == 0, "%s", cmd);

    /* --file: exit 1, the reason on stderr with the file and the segment */
    int rc = acme_file(cfg, out, sizeof out);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
    cr_assert(strstr(out, ACME_846 ": segment 27: more than 26 segments in the interchange "
                                   "(max_segments)"),
              "%s", out);

    /* the drop directory: the document goes to rejected/ with its reason */
    const char *watch[] = {"inv-supplier", "--config", cfg, "--watch", root, "--once", NULL};
    rc = fx_run(watch, NULL, out, sizeof out, 60000);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    struct stat sb;
    snprintf(path, sizeof path, "%s/rejected/acme/advice.edi", root);
    cr_assert(stat(path, &sb) == 0, "not rejected: %s\n%s", path, out);
    snprintf(path, sizeof path, "%s/inbox/acme/advice.edi", root);
    cr_assert(stat(path, &sb) != 0, "left in the inbox");
    snprintf(path, sizeof path, "%s/rejected/acme/advice.edi.errors", root);
    FILE *f = fopen(path, "r");
    cr_assert(f, "no %s", path);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    fclose(f);
    char want[1200];
    snprintf(want, sizeof want,
             "%s/inbox/acme/advice.edi: segment 27: more than 26 segments in the interchange "
             "(max_segments)",
             root);
    cr_assert(strstr(out, want), "%s lacks '%s':\n%s", path, want, out);
    cr_assert_eq(fx_stream_msgs("INV_EVENTS"), 0, "a refused document publishes nothing");

    /* the same document under the default limits goes through */
    write_cfg("limits-x12.ini", X12_SUPPLIER, cfg, sizeof cfg);
    rc = acme_file(cfg, out, sizeof out);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    cr_assert_eq(fx_stream_msgs("INV_EVENTS"), 5);
}

Test(limits, supplier_limit_keys_out_of_range_are_usage_errors)
{
    static const char *const bad[][2] = {
        {"max_segments = 5", "[supplier.acme] max_segments: '5' is not a whole number of segments "
                             "from 6 to 20000000"},
        {"max_elements = 65", "[supplier.acme] max_elements: '65' is not a whole number of "
                              "elements from 16 to 64"},
        {"max_element_bytes = 0", "[supplier.acme] max_element_bytes: '0' is not a whole number "
                                  "of bytes from 16 to 4096"},
        {"max_locations_per_lin = 1001", "[supplier.acme] max_locations_per_lin: '1001' is not a "
                                         "whole number of locations from 1 to 1000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cfg[512], out[4096], text[512], at[600];
        snprintf(text, sizeof text, "%s%s\n", X12_SUPPLIER, bad[i][0]);
        write_cfg("limits-bad-x12.ini", text, cfg, sizeof cfg);
        int rc = acme_file(cfg, out, sizeof out);
        cr_assert_eq(rc, 2, "%s: exit %d: %s", bad[i][0], rc, out);
        snprintf(at, sizeof at, "%s:5: %s", cfg, bad[i][1]);
        cr_assert(strstr(out, at), "%s: message lacks '%s': %s", bad[i][0], at, out);
    }
    cr_assert_eq(fx_stream_msgs("INV_EVENTS"), 0);
}
