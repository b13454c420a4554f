/*
 * inv-ingest --http on the real stack: per-line results and their codes
 * (202 / 400 / duplicate), keys (401 / 403), routes (404 / 405), limits
 * (413, overlong line), load shedding while nats-server is stopped (503 +
 * Retry-After, nothing published) and recovery, a slow client not holding
 * up another, and SIGTERM answering the request in flight. The server is
 * started on a free port (127.0.0.1:0) and its log names the port.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "broker.h"
#include "fixture.h"
#include "test_api_http.h"

static void ih_fini(void)
{
    api_fini(); /* restarts nats-server if a test left it stopped */
}

TestSuite(ingest_http, .init = fx_reset, .fini = ih_fini, .timeout = 240);

#define EV(id, sku, qty)                                                                           \
    "{\"event_id\":\"" id "\",\"kind\":\"receipt\",\"sku\":\"" sku                                 \
    "\",\"location\":\"DC-1\",\"qty\":" #qty ",\"occurred_at\":\"2026-11-20T10:00:00Z\"}\n"

static uint64_t events_stored(void)
{
    sf_broker *b = NULL;
    sf_error err;
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = fx_env("INV_NATS_URL");
    cr_assert(sf_broker_connect(&bo, &b, &err) == SF_OK, "%s", err.msg);
    uint64_t msgs = 0, bytes, first, last;
    cr_assert(sf_broker_stream_info(b, SF_STREAM_EVENTS, &msgs, &bytes, &first, &last, &err) ==
                  SF_OK,
              "%s", err.msg);
    sf_broker_close(b);
    return msgs;
}

/* inv-ingest --http 127.0.0.1:0 [--config FILE with `config` as its text];
 * returns the port from the "http listening on" line. */
static int ih_start(const char *config, pid_t *pid, char *log_path, size_t log_size)
{
    sc_tmp("ingest-http.log", log_path, log_size);
    unlink(log_path);
    char cfg_path[512];
    const char *argv[8] = {"inv-ingest", "--http", "127.0.0.1:0", NULL};
    if (config) {
        sc_tmp("ingest-http.ini", cfg_path, sizeof cfg_path);
        FILE *f = fopen(cfg_path, "w");
        cr_assert(f, "cannot write %s", cfg_path);
        fputs(config, f);
        fclose(f);
        argv[3] = "--config";
        argv[4] = cfg_path;
        argv[5] = NULL;
    }
    *pid = fx_spawn(argv, log_path);
    int64_t deadline = fx_now_ms() + 20000;
    for (;;) {
        FILE *f = fopen(log_path, "r");
        char line[1024];
        while (f && fgets(line, sizeof line, f)) {
            const char *at = strstr(line, "http listening on 127.0.0.1:");
            if (at) {
                fclose(f);
                return atoi(at + strlen("http listening on 127.0.0.1:"));
            }
        }
        if (f)
            fclose(f);
        cr_assert(fx_now_ms() < deadline, "inv-ingest --http did not start; see %s", log_path);
        usleep(20000);
    }
}

/* The whole request text of POST target with body. Caller frees. */
static char *ih_request(const char *target, const char *key, const char *body, size_t len,
                        size_t *out_len)
{
    size_t cap = len + 1024;
    char *req = malloc(cap);
    cr_assert(req);
    int n = snprintf(req, cap,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%sContent-Type: "
                     "application/x-ndjson\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     target, key ? "Authorization: Bearer " : "", key ? key : "", key ? "\r\n" : "",
                     len);
    memcpy(req + n, body, len);
    *out_len = (size_t)n + len;
    return req;
}

static int ih_post(int port, const char *key, const char *body, api_resp *r)
{
    size_t len;
    char *req = ih_request("/v1/events", key, body, strlen(body), &len);
    int st = api_raw(port, req, len, r);
    free(req);
    return st;
}

/* results[i] of a reply: asserts its line, status and event_id (NULL: not
 * checked) and returns its error ("" if none). */
static const char *ih_result(json_t *j, size_t i, int line, const char *status,
                             const char *event_id)
{
    json_t *r = json_array_get(json_object_get(j, "results"), i);
    cr_assert(r, "no results[%zu]", i);
    cr_assert_eq(json_integer_value(json_object_get(r, "line")), line, "results[%zu].line", i);
    const char *s = json_string_value(json_object_get(r, "status"));
    cr_assert(s && !strcmp(s, status), "results[%zu].status %s, want %s", i, s ? s : "(none)",
              status);
    if (event_id) {
        const char *id = json_string_value(json_object_get(r, "event_id"));
        cr_assert(id && !strcmp(id, event_id), "results[%zu].event_id %s, want %s", i,
                  id ? id : "(none)", event_id);
    }
    const char *e = json_string_value(json_object_get(r, "error"));
    return e ? e : "";
}

static int64_t ih_count(json_t *j, const char *name)
{
    return json_integer_value(json_object_get(j, name));
}

Test(ingest_http, all_accepted_is_202_with_each_line_and_reaches_the_ledger)
{
    char key[256], log[512];
    api_add_key("feeder", "ingest", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = ih_start(NULL, &pid, log, sizeof log);
    /* line 2 is blank (skipped, still counted); line 4 has no event_id */
    const char body[] = EV("h-1", "SKU-H", 5) "\n" EV(
        "h-2", "SKU-H", 3) "{\"kind\":\"sale\",\"sku\":\"SKU-H\",\"location\":\"DC-1\",\"qty\":2,"
                           "\"occurred_at\":1795514400000}";
    api_resp r;
    int st = ih_post(port, key, body, &r);
    cr_assert_eq(st, 202, "status %d: %s", st, r.body);
    json_t *j = api_json(&r);
    cr_assert_eq(ih_count(j, "accepted"), 3, "%s", r.body);
    cr_assert_eq(ih_count(j, "rejected"), 0);
    cr_assert_eq(json_array_size(json_object_get(j, "results")), 3);
    ih_result(j, 0, 1, "accepted", "h-1");
    ih_result(j, 1, 3, "accepted", "h-2");
    ih_result(j, 2, 4, "accepted", NULL);
    const char *derived = json_string_value(
        json_object_get(json_array_get(json_object_get(j, "results"), 2), "event_id"));
    cr_assert(derived && !strncmp(derived, "d-", 2) && strlen(derived) == 42, "derived id: %s",
              derived ? derived : "(none)");
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM ledger WHERE event_id IN ('h-1','h-2','%s')",
             derived);
    json_decref(j);
    api_resp_free(&r);
    cr_assert_eq(events_stored(), 3); /* answered only after JetStream stored them */

    sc_drain(1);
    cr_assert_eq(fx_query_i64(sql), 3);
    cr_assert_eq(fx_query_i64("SELECT on_hand FROM positions WHERE sku = 'SKU-H' AND "
                              "location = 'DC-1'"),
                 6);
    cr_assert_eq(fx_stop(pid, SIGTERM, 20000), 0, "inv-ingest exit status; see %s", log);
}

Test(ingest_http, a_rejected_line_is_400_and_the_valid_ones_are_still_published)
{
    char key[256], log[512];
    api_add_key("feeder", "ingest", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = ih_start(NULL, &pid, log, sizeof log);
    const char body[] = EV("m-1", "SKU-M", 1) "{\"event_id\":\"m-2\",\"kind\":\"sale\"}\n"
                                              "not json\n" EV("m-3", "SKU-M", 2);
    api_resp r;
    int st = ih_post(port, key, body, &r);
    cr_assert_eq(st, 400, "status %d: %s", st, r.body);
    json_t *j = api_json(&r);
    cr_assert_eq(ih_count(j, "accepted"), 2, "%s", r.body);
    cr_assert_eq(ih_count(j, "rejected"), 2, "%s", r.body);
    ih_result(j, 0, 1, "accepted", "m-1");
    const char *e = ih_result(j, 1, 2, "rejected", NULL);
    cr_assert(strstr(e, "line 2: ") == e && strstr(e, "sku"), "error names line and field: %s", e);
    e = ih_result(j, 2, 3, "rejected", NULL);
    cr_assert(strstr(e, "line 3: ") == e, "%s", e);
    ih_result(j, 3, 4, "accepted", "m-3");
    json_decref(j);
    api_resp_free(&r);
    cr_assert_eq(events_stored(), 2);
    fx_stop(pid, SIGTERM, 20000);
}

Test(ingest_http, a_line_sent_again_is_reported_duplicate)
{
    char key[256], log[512];
    api_add_key("feeder", "ingest", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = ih_start(NULL, &pid, log, sizeof log);
    api_resp r;
    cr_assert_eq(ih_post(port, key, EV("d-1", "SKU-D", 1), &r), 202, "%s", r.body);
    api_resp_free(&r);
    int st = ih_post(port, key, EV("d-1", "SKU-D", 1) EV("d-2", "SKU-D", 1), &r);
    cr_assert_eq(st, 202, "a duplicate is not an error: %d %s", st, r.body);
    json_t *j = api_json(&r);
    ih_result(j, 0, 1, "duplicate", "d-1");
    ih_result(j, 1, 2, "accepted", "d-2");
    cr_assert_eq(ih_count(j, "duplicate"), 1);
    cr_assert_eq(ih_count(j, "accepted"), 1);
    json_decref(j);
    api_resp_free(&r);
    cr_assert_eq(events_stored(), 2);
    fx_stop(pid, SIGTERM, 20000);
}

Test(ingest_http, keys_scopes_routes_and_methods)
{
    char ingest[256], read[256], revoked[256], log[512];
    api_add_key("feeder", "ingest", ingest, sizeof ingest, NULL, 0);
    api_add_key("reader", "read", read, sizeof read, NULL, 0);
    api_add_key("old", "ingest", revoked, sizeof revoked, NULL, 0);
    const char *rv[] = {"invctl", "apikey", "revoke", "old", NULL};
    api_run_ok(rv);
    pid_t pid;
    int port = ih_start(NULL, &pid, log, sizeof log);
    const char *body = EV("k-1", "SKU-K", 1);
    api_resp r;
    char h[256];

    cr_assert_eq(ih_post(port, NULL, body, &r), 401, "no key: %s", r.body);
    cr_assert(strstr(api_header(&r, "WWW-Authenticate", h, sizeof h), "Bearer"));
    api_resp_free(&r);
    cr_assert_eq(
        ih_post(port, "sf_nosuchkey_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", body, &r), 401,
        "unknown key: %s", r.body);
    api_resp_free(&r);
    cr_assert_eq(ih_post(port, revoked, body, &r), 401, "revoked key: %s", r.body);
    api_resp_free(&r);
    cr_assert_eq(ih_post(port, read, body, &r), 403, "read key: %s", r.body);
    cr_assert(strstr(r.body, "scope ingest"), "%s", r.body);
    api_resp_free(&r);

    cr_assert_eq(api_req(port, "GET", "/v1/events", ingest, &r), 405);
    cr_assert_str_eq(api_header(&r, "Allow", h, sizeof h), "POST");
    api_resp_free(&r);
    cr_assert_eq(api_req(port, "PUT", "/v1/events", ingest, &r), 405);
    api_resp_free(&r);
    size_t len;
    char *req = ih_request("/v1/event", ingest, body, strlen(body), &len);
    cr_assert_eq(api_raw(port, req, len, &r), 404, "%s", r.body);
    free(req);
    api_resp_free(&r);
    cr_assert_eq(api_req(port, "GET", "/", ingest, &r), 404);
    api_resp_free(&r);
    cr_assert_eq(events_stored(), 0, "nothing refused may be published");

    cr_assert_eq(ih_post(port, ingest, body, &r), 202, "%s", r.body);
    api_resp_free(&r);
    cr_assert_eq(events_stored(), 1);
    fx_stop(pid, SIGTERM, 20000);
}

Test(ingest_http, body_over_max_body_is_413_and_a_long_line_is_rejected)
{
    char key[256], log[512];
    api_add_key("feeder", "ingest", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = ih_start("[ingest]\nmax_body = 4096\nmax_line = 1024\n", &pid, log, sizeof log);
    char big[5000];
    memset(big, ' ', sizeof big);
    big[sizeof big - 1] = '\0';
    api_resp r;
    int st = ih_post(port, key, big, &r);
    cr_assert_eq(st, 413, "5000 bytes over max_body 4096: %d %s", st, r.body);
    api_resp_free(&r);

    /* a 1500-byte line: within the body limit, over max_line */
    char body[4096];
    int n = snprintf(body, sizeof body, "%s{\"event_id\":\"%01400d\"}\n%s", EV("l-1", "SKU-L", 1),
                     0, EV("l-2", "SKU-L", 1));
    cr_assert(n > 1500 && (size_t)n < sizeof body);
    st = ih_post(port, key, body, &r);
    cr_assert_eq(st, 400, "%d %s", st, r.body);
    json_t *j = api_json(&r);
    ih_result(j, 0, 1, "accepted", "l-1");
    const char *e = ih_result(j, 1, 2, "rejected", NULL);
    cr_assert(strstr(e, "line 2: ") == e && strstr(e, "longer than max_line 1024"), "%s", e);
    ih_result(j, 2, 3, "accepted", "l-2");
    json_decref(j);
    api_resp_free(&r);

    st = ih_post(port, key, "", &r);
    cr_assert_eq(st, 400, "an empty body: %d %s", st, r.body);
    cr_assert(strstr(r.body, "no event lines"), "%s", r.body);
    api_resp_free(&r);
    cr_assert_eq(events_stored(), 2);
    fx_stop(pid, SIGTERM, 20000);
}

Test(ingest_http, sheds_load_with_503_while_nats_is_down_and_recovers)
{
    char key[256], log[512];
    api_add_key("feeder", "ingest", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = ih_start(NULL, &pid, log, sizeof log);
    api_resp r;
    cr_assert_eq(ih_post(port, key, EV("n-1", "SKU-N", 1), &r), 202, "%s", r.body);
    api_resp_free(&r);

    fx_stack("nats-stop");
    /* The client library notices the closed connection within moments;
     * every answer meanwhile is 503 with Retry-After and never a hang. */
    int got503 = 0;
    for (int i = 0; i < 50 && !got503; i++) {
        int st = ih_post(port, key, EV("n-2", "SKU-N", 1), &r);
        cr_assert(st == 503, "while nats-server is stopped: %d %s", st, r.body);
        char h[64];
        cr_assert(atoi(api_header(&r, "Retry-After", h, sizeof h)) > 0, "Retry-After: '%s'", h);
        got503 = strstr(r.body, "not connected") != NULL;
        api_resp_free(&r);
        if (!got503)
            usleep(100000);
    }
    cr_assert(got503, "never shed as disconnected");

    fx_stack("nats-start");
    int st = 0;
    int64_t deadline = fx_now_ms() + 60000;
    while (fx_now_ms() < deadline) {
        st = ih_post(port, key, EV("n-2", "SKU-N", 1) EV("n-3", "SKU-N", 1), &r);
        if (st == 202)
            break;
        cr_assert_eq(st, 503, "%d %s", st, r.body);
        api_resp_free(&r);
        usleep(250000);
    }
    cr_assert_eq(st, 202, "did not recover within 60 s after nats-start");
    api_resp_free(&r);
    cr_assert_eq(events_stored(), 3);
    fx_stop(pid, SIGTERM, 20000);
}

Test(ingest_http, a_slow_or_vanished_client_does_not_block_another)
{
    char key[256], log[512];
    api_add_key("feeder", "ingest", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = ih_start(NULL, &pid, log, sizeof log);
    const char *body = EV("s-1", "SKU-S", 1);
    size_t len;
    char *req = ih_request("/v1/events", key, body, strlen(body), &len);

    /* A: headers and half the body, then silence. */
    int slow = api_connect(port);
    api_send_all(slow, req, len - strlen(body) / 2);
    /* B: sends the whole body, closes without reading the answer. */
    size_t len_b;
    char *req_b =
        ih_request("/v1/events", key, EV("s-3", "SKU-S", 1), strlen(EV("s-3", "SKU-S", 1)), &len_b);
    int gone = api_connect(port);
    api_send_all(gone, req_b, len_b);
    close(gone);
    free(req_b);

    /* C is answered while A still holds its connection open. */
    api_resp r;
    int st = ih_post(port, key, EV("s-2", "SKU-S", 1), &r);
    cr_assert_eq(st, 202, "%d %s", st, r.body);
    cr_assert_lt(r.elapsed_ms, 3000, "took %lld ms behind a slow client", (long long)r.elapsed_ms);
    api_resp_free(&r);

    /* A finishes and gets its own answer. */
    api_send_all(slow, req + len - strlen(body) / 2, strlen(body) / 2);
    api_read_response(slow, &r, 0, API_IO_TIMEOUT_MS, 1);
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_t *j = api_json(&r);
    ih_result(j, 0, 1, "accepted", "s-1");
    json_decref(j);
    api_resp_free(&r);
    close(slow);
    free(req);
    cr_assert_eq(events_stored(), 3, "the client that left still had its line published");
    cr_assert_eq(fx_stop(pid, SIGTERM, 20000), 0, "see %s", log);
}

/* A body of n receipt lines w-<first>.. (about 105 bytes each). Caller frees. */
static char *ih_lines(const char *prefix, int first, int n, size_t *len)
{
    size_t cap = (size_t)n * 160 + 1, used = 0;
    char *body = malloc(cap);
    cr_assert(body);
    body[0] = '\0';
    for (int i = first; i < first + n; i++)
        used += (size_t)snprintf(body + used, cap - used,
                                 "{\"event_id\":\"%s-%d\",\"kind\":\"receipt\",\"sku\":\"SKU-W\","
                                 "\"location\":\"DC-1\",\"qty\":1,\"occurred_at\":1795514400000}\n",
                                 prefix, i);
    *len = used;
    return body;
}

/* With a window of 1 and max_body 64 KiB: while a 59 KB body is publishing
 * (one line at a time), a small request waits in the queue in front of the
 * window and is answered after it; one that would take that queue past
 * max_body is refused at once with 503, publishing nothing. */
Test(ingest_http, sheds_with_503_when_the_window_and_its_queue_are_full)
{
    char key[256], log[512];
    api_add_key("feeder", "ingest", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = ih_start("[ingest]\nmax_inflight = 1\nmax_body = 65536\n", &pid, log, sizeof log);
    size_t blen, len;
    char *body = ih_lines("w", 0, 560, &blen);
    cr_assert(blen > 56000 && blen < 65536, "body of %zu bytes", blen);
    char *req = ih_request("/v1/events", key, body, blen, &len);
    free(body);
    int fd = api_connect(port);
    api_send_all(fd, req, len);
    free(req);
    usleep(100000); /* admitted; one line at a time in flight */

    api_resp r;
    body = ih_lines("x", 0, 100, &blen);
    int st = ih_post(port, key, body, &r);
    free(body);
    char h[64];
    cr_assert_eq(st, 503, "queue past max_body while the window is full: %d %s", st, r.body);
    cr_assert(strstr(r.body, "window full"), "%s", r.body);
    cr_assert(atoi(api_header(&r, "Retry-After", h, sizeof h)) > 0, "Retry-After: '%s'", h);
    api_resp_free(&r);

    st = ih_post(port, key, EV("y-1", "SKU-W", 1), &r);
    cr_assert_eq(st, 202, "a small request queues behind the window: %d %s", st, r.body);
    api_resp_free(&r);
    api_read_response(fd, &r, 0, 120000, 1);
    close(fd);
    cr_assert_eq(r.status, 202, "%.300s", r.body);
    json_t *j = api_json(&r);
    cr_assert_eq(ih_count(j, "accepted"), 560);
    json_decref(j);
    api_resp_free(&r);
    cr_assert_eq(events_stored(), 561, "the refused request published nothing");
    fx_stop(pid, SIGTERM, 20000);
}

static size_t ih_curl_write(char *data, size_t size, size_t n, void *arg)
{
    size_t len = size * n, *used = arg;
    *used += len;
    (void)data;
    return len;
}

/* A real client: libcurl sends "Expect: 100-continue" before a large body. */
Test(ingest_http, a_curl_client_posting_5000_lines_gets_202)
{
    char key[256], log[512];
    api_add_key("feeder", "ingest", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = ih_start(NULL, &pid, log, sizeof log);
    enum { N = 5000 };
    size_t cap = (size_t)N * 160, used = 0;
    char *body = malloc(cap);
    cr_assert(body);
    for (int i = 0; i < N; i++)
        used += (size_t)snprintf(body + used, cap - used,
                                 "{\"event_id\":\"c-%d\",\"kind\":\"sale\",\"sku\":\"SKU-C\","
                                 "\"location\":\"STORE-%d\",\"qty\":1,\"occurred_at\":"
                                 "1795514400000}\n",
                                 i, i % 7);
    char url[128], auth[320];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/events", port);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    CURL *c = curl_easy_init();
    cr_assert(c);
    struct curl_slist *hd = curl_slist_append(NULL, auth);
    size_t got = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)used);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ih_curl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hd);
    curl_easy_cleanup(c);
    free(body);
    cr_assert_eq(rc, CURLE_OK, "curl: %s", curl_easy_strerror(rc));
    cr_assert_eq(code, 202);
    cr_assert_gt(got, (size_t)N * 40, "a result per line: %zu bytes", got);
    cr_assert_eq(events_stored(), N);
    cr_assert_eq(fx_stop(pid, SIGTERM, 20000), 0, "see %s", log);
}

Test(ingest_http, sigterm_answers_the_request_in_flight)
{
    char key[256], log[512];
    api_add_key("feeder", "ingest", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = ih_start(NULL, &pid, log, sizeof log);
    enum { N = 20000 };
    size_t cap = (size_t)N * 160, used = 0;
    char *body = malloc(cap);
    cr_assert(body);
    for (int i = 0; i < N; i++)
        used += (size_t)snprintf(body + used, cap - used,
                                 "{\"event_id\":\"t-%d\",\"kind\":\"receipt\",\"sku\":\"SKU-T%d\","
                                 "\"location\":\"DC-1\",\"qty\":1,\"occurred_at\":1795514400000}\n",
                                 i, i % 50);
    size_t len;
    char *req = ih_request("/v1/events", key, body, used, &len);
    free(body);
    int fd = api_connect(port);
    api_send_all(fd, req, len);
    free(req);
    usleep(200000); /* read and admitted: the publishing is under way */
    kill(pid, SIGTERM);
    api_resp r;
    api_read_response(fd, &r, 0, 60000, 1);
    close(fd);
    cr_assert_eq(r.status, 202, "%.300s", r.body);
    json_t *j = api_json(&r);
    cr_assert_eq(ih_count(j, "accepted"), N);
    json_decref(j);
    api_resp_free(&r);
    cr_assert_eq(fx_stop(pid, 0, 30000), 0, "exit status after SIGTERM; see %s", log);
    cr_assert_eq(events_stored(), N);
}

/* metrics.inv-ingest once a second while --http runs (and the same hook
 * serves --zmq): the ops endpoint is a SUB socket of this test, bound on a
 * free port, so nothing else of the suite is involved. */
Test(ingest_http, publishes_metrics_inv_ingest_every_second)
{
    void *zctx = zmq_ctx_new();
    void *sub = zmq_socket(zctx, ZMQ_SUB);
    cr_assert(sub && zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "metrics.inv-ingest", 18) == 0);
    cr_assert(zmq_bind(sub, "tcp://127.0.0.1:*") == 0, "bind: %s", zmq_strerror(zmq_errno()));
    char endpoint[256];
    size_t elen = sizeof endpoint;
    cr_assert(zmq_getsockopt(sub, ZMQ_LAST_ENDPOINT, endpoint, &elen) == 0);
    setenv("INV_OPS_ENDPOINT", endpoint, 1);

    char key[256], log[512];
    api_add_key("metered", "ingest", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = ih_start(NULL, &pid, log, sizeof log);
    unsetenv("INV_OPS_ENDPOINT");
    api_resp r;
    int st = ih_post(port, key, EV("m-1", "SKU-M", 1) EV("m-2", "SKU-M", 2), &r);
    cr_assert_eq(st, 202, "status %d: %s", st, r.body);
    api_resp_free(&r);

    /* the first messages may predate the request: wait for accepted == 2 */
    int timeout = 1000;
    cr_assert(zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout, sizeof timeout) == 0);
    int64_t deadline = fx_now_ms() + 10000;
    int seen = 0;
    json_t *http = NULL, *msg = NULL;
    while (fx_now_ms() < deadline) {
        char topic[64], body[4096];
        int n = zmq_recv(sub, topic, sizeof topic - 1, 0);
        if (n < 0)
            continue;
        topic[n < (int)sizeof topic - 1 ? n : (int)sizeof topic - 1] = '\0';
        int more = 0;
        size_t ml = sizeof more;
        zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &ml);
        cr_assert(more, "metrics message without its JSON frame");
        int b = zmq_recv(sub, body, sizeof body - 1, 0);
        cr_assert(b > 0);
        body[b < (int)sizeof body - 1 ? b : (int)sizeof body - 1] = '\0';
        cr_assert(!strcmp(topic, "metrics.inv-ingest"), "topic %s", topic);
        seen++;
        json_decref(msg);
        msg = json_loads(body, 0, NULL);
        cr_assert(msg, "not JSON: %s", body);
        http = json_object_get(msg, "http");
        cr_assert(json_is_object(http), "no http section: %s", body);
        cr_assert(json_is_number(json_object_get(msg, "events_per_s")), "%s", body);
        if (json_integer_value(json_object_get(http, "accepted")) == 2)
            break;
    }
    cr_assert(http && json_integer_value(json_object_get(http, "accepted")) == 2,
              "no metrics.inv-ingest with http.accepted 2 in 10 s (%d messages)", seen);
    cr_assert_eq(json_integer_value(json_object_get(http, "requests")), 1);
    const char *svc = json_string_value(json_object_get(msg, "service"));
    cr_assert(svc && !strcmp(svc, "inv-ingest"));
    json_decref(msg);
    cr_assert_eq(fx_stop(pid, SIGTERM, 20000), 0, "inv-ingest did not exit 0 on SIGTERM");
    zmq_close(sub);
    zmq_ctx_term(zctx);
}
