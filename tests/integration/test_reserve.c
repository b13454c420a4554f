/*
 * Check-and-reserve under concurrency (issue 11, point 3): 64 clients at
 * once on the last K units of a sku (K = 1..10, location and channel form
 * for each K), while two consumers apply a stream of SALE, RECEIPT, ASN
 * and damaged RETURN events through JetStream at the same time, the ASNs
 * and returns on the very positions rows being reserved (they take the
 * same row locks and leave available unchanged), the SALEs and RECEIPTs on
 * the same sku at a location outside the reservation's reach and on other
 * skus at the same locations. Exactly K are granted, the rest get 409, no
 * position is reserved past its available, and the ledger, positions and
 * reservations equal the in-memory model rebuilt from the ledger rows.
 * Then every RESERVE is relayed to INV_EVENTS and delivered to the
 * consumers a second time, which changes nothing.
 *
 * And idempotency: every request sent three times by each of two racing
 * threads with the same Idempotency-Key gets one answer six times, and
 * nothing is reserved twice; bad requests get 400 naming the field.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "reserve_client.h"
#include "stockcheck.h"

TestSuite(reserve, .init = fx_reset, .fini = api_fini, .timeout = 900);

enum { CLIENTS = 64, STREAM_EVENTS = 1500 };

#define AT "\"occurred_at\":\"2026-11-20T10:00:00Z\""

static void setup_places(void)
{
    const char *l2[] = {"invctl", "location", "set", "CC-L2", "--safety-stock", "1", NULL};
    const char *cc[] = {"invctl", "channel",     "add",         "cc", "--buffer",
                        "1",      "--locations", "CC-L1,CC-L2", NULL};
    api_run_ok(l2);
    api_run_ok(cc);
}

static int64_t g_want;
static bool ledger_has(void *arg)
{
    (void)arg;
    return fx_query_i64("SELECT count(*) FROM ledger WHERE source = 'rt'") >= g_want;
}

/* Publish lines (JSON) with inv-ingest in the background; returns its pid. */
static pid_t ingest_bg(const char *name, const char *lines)
{
    char path[512];
    sc_tmp(name, path, sizeof path);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(lines, f);
    fclose(f);
    const char *argv[] = {"inv-ingest", "--file", path, NULL};
    return fx_spawn(argv, NULL);
}

/* Ingest and wait until the consumers applied every "rt" event so far. */
static void ingest_wait(const char *name, const char *lines, int64_t total_rt)
{
    pid_t p = ingest_bg(name, lines);
    cr_assert_eq(fx_stop(p, 0, 60000), 0, "inv-ingest of %s failed", name);
    g_want = total_rt;
    cr_assert(fx_wait_until(ledger_has, NULL, 60000), "consumers did not apply %s", name);
}

static void consumers_idle_wait(void)
{
    int64_t deadline = fx_now_ms() + 60000;
    for (;;) {
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetConsumerInfo(&ci, fx_js(), "INV_EVENTS", "stock-applier", NULL, &jerr);
        cr_assert(s == NATS_OK, "consumer info: %s", natsStatus_GetText(s));
        bool idle = ci->NumPending == 0 && ci->NumAckPending == 0;
        jsConsumerInfo_Destroy(ci);
        if (idle)
            return;
        cr_assert(fx_now_ms() < deadline, "consumers still busy after 60 s");
        usleep(50000);
    }
}

/* One run: K units left, CLIENTS clients of qty 1. */
static void run_once(int port, const char *key, int run, int k, bool channel, int64_t *rt_total)
{
    char sku[32], lines[4096], *stream;
    snprintf(sku, sizeof sku, "HOT-%d-%s", run, channel ? "ch" : "loc");
    /* Location form: CC-L1 (safety 0) for odd K, CC-L2 (safety 1) for even. */
    const char *loc = k % 2 ? "CC-L1" : "CC-L2";
    int a = (k + 1) / 2, b = k + 1 - a; /* channel: available a + b, buffer 1 */
    size_t len = 0;
    if (channel) {
        len += (size_t)snprintf(lines + len, sizeof lines - len,
                                "{\"event_id\":\"i-%d-%s1\",\"kind\":\"RECEIPT\",\"sku\":\"%s\","
                                "\"location\":\"CC-L1\",\"qty\":%d," AT ",\"source\":\"rt\"}\n"
                                "{\"event_id\":\"i-%d-%s2\",\"kind\":\"RECEIPT\",\"sku\":\"%s\","
                                "\"location\":\"CC-L2\",\"qty\":%d," AT ",\"source\":\"rt\"}\n",
                                run, "c", sku, a, run, "c", sku, b + 1);
        *rt_total += 2;
    } else {
        len += (size_t)snprintf(lines + len, sizeof lines - len,
                                "{\"event_id\":\"i-%d-%s1\",\"kind\":\"RECEIPT\",\"sku\":\"%s\","
                                "\"location\":\"%s\",\"qty\":%d," AT ",\"source\":\"rt\"}\n",
                                run, "l", sku, loc, k % 2 ? k : k + 1);
        *rt_total += 1;
    }
    ingest_wait("reserve-initial.jsonl", lines, *rt_total);

    /* The stream the consumers apply while the clients fire. */
    size_t cap = STREAM_EVENTS * 200;
    stream = malloc(cap);
    cr_assert(stream);
    len = 0;
    for (int j = 0; j < STREAM_EVENTS; j++) {
        const char *hot = channel ? (j % 2 ? "CC-L1" : "CC-L2") : loc;
        char ev[256];
        switch (j % 5) {
        case 0: /* on the hot row: inbound only */
            snprintf(ev, sizeof ev, "\"kind\":\"ASN\",\"sku\":\"%s\",\"location\":\"%s\"", sku,
                     hot);
            break;
        case 1: /* on the hot row: damaged only */
            snprintf(ev, sizeof ev,
                     "\"kind\":\"RETURN\",\"sku\":\"%s\",\"location\":\"%s\","
                     "\"condition\":\"DAMAGED\"",
                     sku, hot);
            break;
        case 2:
            snprintf(ev, sizeof ev, "\"kind\":\"RECEIPT\",\"sku\":\"%s\",\"location\":\"CC-OUT\"",
                     sku);
            break;
        case 3:
            snprintf(ev, sizeof ev, "\"kind\":\"SALE\",\"sku\":\"%s\",\"location\":\"CC-OUT\"",
                     sku);
            break;
        default:
            snprintf(ev, sizeof ev, "\"kind\":\"%s\",\"sku\":\"BG-%d\",\"location\":\"%s\"",
                     j % 10 == 4 ? "SALE" : "RECEIPT", j % 37, hot);
            break;
        }
        len += (size_t)snprintf(stream + len, cap - len,
                                "{\"event_id\":\"s-%d-%s-%d\",%s,\"qty\":1," AT
                                ",\"source\":\"rt\"}\n",
                                run, channel ? "c" : "l", j, ev);
        cr_assert(len < cap);
    }
    pid_t ing = ingest_bg("reserve-stream.jsonl", stream);
    free(stream);
    *rt_total += STREAM_EVENTS;
    usleep(100000); /* let the stream start flowing into the consumers */

    rc_call *calls = calloc(CLIENTS, sizeof *calls);
    cr_assert(calls);
    for (int c = 0; c < CLIENTS; c++) {
        calls[c].port = port;
        calls[c].api_key = key;
        snprintf(calls[c].idem, sizeof calls[c].idem, "k-%d-%s-%d", run, channel ? "c" : "l", c);
        snprintf(calls[c].body, sizeof calls[c].body,
                 "{\"ref\":\"o-%d-%d\",\"sku\":\"%s\",\"qty\":1,\"%s\":\"%s\",\"ttl_s\":600}", run,
                 c, sku, channel ? "channel" : "location", channel ? "cc" : loc);
    }
    int64_t applied_before = fx_query_i64("SELECT count(*) FROM ledger WHERE source = 'rt'");
    rc_fire(calls, CLIENTS);
    int64_t applied_after = fx_query_i64("SELECT count(*) FROM ledger WHERE source = 'rt'");
    int granted = 0, refused = 0;
    for (int c = 0; c < CLIENTS; c++) {
        if (calls[c].status[0] == 201) {
            granted++;
            cr_assert(strstr(calls[c].answer[0], "\"event_id\":\"rsv-"), "%s", calls[c].answer[0]);
        } else {
            cr_assert_eq(calls[c].status[0], 409, "run %d client %d: status %d: %s", run, c,
                         calls[c].status[0], calls[c].answer[0]);
            cr_assert(strstr(calls[c].answer[0], "\"available\":0"), "%s", calls[c].answer[0]);
            refused++;
        }
    }
    free(calls);
    fprintf(stderr,
            "run %d (%s, K=%d): %d granted, %d refused; %" PRId64
            " stream events applied during the burst\n",
            run, channel ? "channel" : "location", k, granted, refused,
            applied_after - applied_before);
    cr_assert_eq(granted, k, "run %d (%s): %d granted for the last %d units", run,
                 channel ? "channel" : "location", granted, k);
    cr_assert_eq(refused, CLIENTS - k);

    cr_assert_eq(fx_stop(ing, 0, 60000), 0, "inv-ingest of the stream failed");
    g_want = *rt_total;
    cr_assert(fx_wait_until(ledger_has, NULL, 60000), "the stream was not applied");

    char q[512];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM ledger WHERE kind = 'RESERVE' AND sku = '%s'"
             " AND event_id LIKE 'rsv-%%'",
             sku);
    cr_assert_eq(fx_query_i64(q), k);
    /* Never past available: each row's on_hand - reserved - safety >= 0,
     * and in all exactly what is left (the channel keeps its buffer). */
    snprintf(q, sizeof q,
             "SELECT count(*) FROM positions p LEFT JOIN locations l USING (location)"
             " WHERE p.sku = '%s' AND p.location <> 'CC-OUT'"
             " AND p.on_hand - p.reserved - COALESCE(l.safety_stock, 0) < 0",
             sku);
    cr_assert_eq(fx_query_i64(q), 0, "a position of %s is reserved past its available", sku);
    snprintf(q, sizeof q,
             "SELECT COALESCE(sum(p.reserved), 0) * 1000 + COALESCE(sum(p.on_hand - p.reserved"
             " - COALESCE(l.safety_stock, 0)), 0) FROM positions p LEFT JOIN locations l"
             " USING (location) WHERE p.sku = '%s' AND p.location <> 'CC-OUT'",
             sku);
    cr_assert_eq(fx_query_i64(q), (int64_t)k * 1000 + (channel ? 1 : 0), "%s: reserved/left", sku);
}

Test(reserve, last_k_units_under_64_clients_and_a_live_stream)
{
    setup_places();
    char key[128];
    pid_t api;
    int port = rc_start_api("reserve-api.log", "4", key, sizeof key, &api);
    pid_t cons[2];
    for (int i = 0; i < 2; i++) {
        const char *argv[] = {"inv-consumer", NULL};
        cons[i] = fx_spawn(argv, NULL);
    }
    int64_t rt_total = 0, granted_total = 0;
    for (int k = 1; k <= 10; k++) {
        run_once(port, key, k, k, false, &rt_total);
        run_once(port, key, k, k, true, &rt_total);
        granted_total += 2 * k;
    }
    consumers_idle_wait();
    sf_model *m = rc_model_of_ledger();
    sc_assert_matches(m);
    sf_model_free(m);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM outbox"), granted_total);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM idempotency"), 20 * CLIENTS);

    /* Relay every RESERVE; the consumers receive each a second time. */
    int64_t ledger_before = fx_query_i64("SELECT count(*) FROM ledger");
    const char *rec[] = {"inv-reconciler", "--drain", NULL};
    api_run_ok(rec);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM outbox"), 0);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger WHERE event_id LIKE 'rsv-%'"
                              " AND stream_seq IS NULL"),
                 0);
    consumers_idle_wait();
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger"), ledger_before);
    m = rc_model_of_ledger();
    sc_assert_matches(m);
    sf_model_free(m);
    const char *audit[] = {"inv-reconciler", "audit", NULL};
    api_run_ok(audit);
    for (int i = 0; i < 2; i++)
        fx_stop(cons[i], SIGTERM, 30000);
    fx_stop(api, SIGTERM, 30000);
}

/* The same key from two racing threads, three times each: one answer. */
Test(reserve, repeated_keys_never_double)
{
    setup_places();
    char key[128], lines[1024];
    pid_t api;
    int port = rc_start_api("reserve-idem.log", "4", key, sizeof key, &api);
    pid_t cons;
    const char *argv[] = {"inv-consumer", NULL};
    cons = fx_spawn(argv, NULL);
    snprintf(lines, sizeof lines,
             "{\"event_id\":\"idem-1\",\"kind\":\"RECEIPT\",\"sku\":\"IDEM\","
             "\"location\":\"CC-L1\",\"qty\":5," AT ",\"source\":\"rt\"}\n");
    ingest_wait("reserve-idem.jsonl", lines, 1);

    enum { KEYS = 64, K = 5 };
    rc_call *calls = calloc(2 * KEYS, sizeof *calls);
    cr_assert(calls);
    for (int c = 0; c < 2 * KEYS; c++) {
        calls[c].port = port;
        calls[c].api_key = key;
        calls[c].repeat = 3;
        snprintf(calls[c].idem, sizeof calls[c].idem, "idem-%d", c % KEYS);
        snprintf(calls[c].body, sizeof calls[c].body,
                 "{\"ref\":\"io-%d\",\"sku\":\"IDEM\",\"qty\":1,\"location\":\"CC-L1\","
                 "\"ttl_s\":60}",
                 c % KEYS);
    }
    rc_fire(calls, 2 * KEYS);
    int granted = 0;
    for (int c = 0; c < KEYS; c++) {
        const rc_call *x = &calls[c], *y = &calls[c + KEYS];
        int replays = 0;
        for (int i = 0; i < 3; i++) {
            cr_assert(x->status[i] == 201 || x->status[i] == 409, "status %d", x->status[i]);
            cr_assert_eq(x->status[i], x->status[0], "key %d: answers differ", c);
            cr_assert_eq(y->status[i], x->status[0], "key %d: racing answers differ", c);
            cr_assert(!strcmp(x->answer[i], x->answer[0]) && !strcmp(y->answer[i], x->answer[0]),
                      "key %d: bodies differ: %s / %s", c, x->answer[i], y->answer[i]);
            replays += !strcmp(x->replayed[i], "true") + !strcmp(y->replayed[i], "true");
        }
        cr_assert_eq(replays, 5, "key %d: %d of 6 answers marked replayed", c, replays);
        granted += x->status[0] == 201;
    }
    free(calls);
    cr_assert_eq(granted, K);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger WHERE kind = 'RESERVE'"), K);
    cr_assert_eq(fx_query_i64("SELECT reserved FROM positions WHERE sku = 'IDEM'"), K);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM outbox"), K);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM idempotency"), KEYS);

    /* A key used again with another request: 422, nothing changes. */
    char ans[256], rp[8];
    int st = rc_post(port, key, "idem-0",
                     "{\"ref\":\"io-0\",\"sku\":\"IDEM\",\"qty\":2,"
                     "\"location\":\"CC-L1\",\"ttl_s\":60}",
                     ans, sizeof ans, rp, sizeof rp);
    cr_assert_eq(st, 422, "%s", ans);
    cr_assert(strstr(ans, "Idempotency-Key"), "%s", ans);
    cr_assert_eq(fx_query_i64("SELECT reserved FROM positions WHERE sku = 'IDEM'"), K);

    /* The relay twice and the consumer: still K. */
    const char *rec[] = {"inv-reconciler", "--drain", NULL};
    api_run_ok(rec);
    api_run_ok(rec);
    consumers_idle_wait();
    cr_assert_eq(fx_query_i64("SELECT reserved FROM positions WHERE sku = 'IDEM'"), K);
    sf_model *m = rc_model_of_ledger();
    sc_assert_matches(m);
    sf_model_free(m);
    fx_stop(cons, SIGTERM, 30000);
    fx_stop(api, SIGTERM, 30000);
}

/* qty units of sku (as written in JSON) received at CC-L1, applied by a
 * consumer that keeps running; returns its pid. */
static pid_t receive_stock(const char *name, const char *sku_json, int qty)
{
    char lines[512];
    snprintf(lines, sizeof lines,
             "{\"event_id\":\"%s-1\",\"kind\":\"RECEIPT\",\"sku\":\"%s\","
             "\"location\":\"CC-L1\",\"qty\":%d," AT ",\"source\":\"rt\"}\n",
             name, sku_json, qty);
    const char *argv[] = {"inv-consumer", NULL};
    pid_t cons = fx_spawn(argv, NULL);
    char file[96];
    snprintf(file, sizeof file, "%s.jsonl", name);
    ingest_wait(file, lines, 1);
    return cons;
}

/* The value of a counter or gauge line "name value" in a /metrics body. */
static int64_t metric(const char *body, const char *name)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *at = strstr(body, pat);
    cr_assert(at, "/metrics has no %s", name);
    return strtoll(at + strlen(pat), NULL, 10);
}

/* n new reservations of 1 unit of sku at CC-L1 at once, keys prefix-0..n. */
static rc_call *fire_new(int port, const char *key, const char *prefix, const char *sku, int n)
{
    rc_call *calls = calloc((size_t)n, sizeof *calls);
    cr_assert(calls);
    for (int c = 0; c < n; c++) {
        calls[c].port = port;
        calls[c].api_key = key;
        snprintf(calls[c].idem, sizeof calls[c].idem, "%s-%d", prefix, c);
        snprintf(calls[c].body, sizeof calls[c].body,
                 "{\"ref\":\"%s-%d\",\"sku\":\"%s\",\"qty\":1,\"location\":\"CC-L1\","
                 "\"ttl_s\":60}",
                 prefix, c, sku);
    }
    rc_fire(calls, (size_t)n);
    return calls;
}

/* Group commit: concurrent requests share batches (one statement, one
 * commit each), counted in /metrics; a full queue ([api] reserve_queue)
 * answers 503 and reserves nothing, and the same key later succeeds. */
Test(reserve, concurrent_requests_share_batches_and_a_full_queue_says_503)
{
    pid_t cons = receive_stock("batch", "BATCH", 1000);

    char key[128], reader[128];
    pid_t api;
    api_add_key("metrics-reader", "read", reader, sizeof reader, NULL, 0); /* before inv-api */
    int port = rc_start_api("reserve-batch.log", "4", key, sizeof key, &api);
    rc_call *calls = fire_new(port, key, "grp", "BATCH", CLIENTS);
    for (int c = 0; c < CLIENTS; c++)
        cr_assert_eq(calls[c].status[0], 201, "request %d: %d %s", c, calls[c].status[0],
                     calls[c].answer[0]);
    free(calls);
    api_resp r;
    cr_assert_eq(api_get(port, "/metrics", reader, &r), 200);
    int64_t batches = metric(r.body, "inv_api_reserve_batches_total");
    int64_t requests = metric(r.body, "inv_api_reserve_requests_total");
    int64_t largest = metric(r.body, "inv_api_reserve_batch_largest");
    api_resp_free(&r);
    cr_assert_eq(requests, CLIENTS);
    cr_assert(batches >= 1 && batches < CLIENTS && largest >= 2,
              "%d concurrent requests ran in %lld batches (largest %lld): nothing was grouped",
              CLIENTS, (long long)batches, (long long)largest);
    cr_log_info("%d concurrent requests: %lld batches, largest %lld", CLIENTS, (long long)batches,
                (long long)largest);
    cr_assert_eq(fx_query_i64("SELECT reserved FROM positions WHERE sku = 'BATCH'"), CLIENTS);
    fx_stop(api, SIGTERM, 30000);

    /* One session, batches of one, one request waiting at most. */
    char ini[512];
    sc_tmp("reserve-queue.ini", ini, sizeof ini);
    FILE *f = fopen(ini, "w");
    cr_assert(f);
    fputs("[api]\nreserve_threads = 1\nreserve_batch = 1\nreserve_queue = 1\n", f);
    fclose(f);
    const char *extra[] = {"--threads", "4", "--config", ini, NULL};
    port = api_start("reserve-queue.log", extra, &api);
    calls = fire_new(port, key, "q", "BATCH", CLIENTS);
    int ok = 0, busy = 0;
    for (int c = 0; c < CLIENTS; c++) {
        if (calls[c].status[0] == 201) {
            ok++;
            continue;
        }
        cr_assert_eq(calls[c].status[0], 503, "request %d: %d %s", c, calls[c].status[0],
                     calls[c].answer[0]);
        cr_assert(strstr(calls[c].answer[0], "reservations are waiting already"), "%s",
                  calls[c].answer[0]);
        busy++;
    }
    cr_log_info("queue of 1: %d granted, %d refused with 503", ok, busy);
    cr_assert(busy > 0, "%d concurrent requests and a queue of 1: none refused", CLIENTS);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger WHERE ref LIKE 'q-%'"), ok);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM idempotency WHERE key LIKE 'q-%'"), ok);
    /* The refused ones, retried one at a time with their keys: granted. */
    for (int c = 0; c < CLIENTS; c++) {
        if (calls[c].status[0] != 503)
            continue;
        char ans[256], rp[8];
        int st = rc_post(port, key, calls[c].idem, calls[c].body, ans, sizeof ans, rp, sizeof rp);
        cr_assert_eq(st, 201, "retry of %s: %d %s", calls[c].idem, st, ans);
    }
    free(calls);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger WHERE ref LIKE 'q-%'"), CLIENTS);
    cr_assert_eq(fx_query_i64("SELECT reserved FROM positions WHERE sku = 'BATCH'"), 2 * CLIENTS);
    sf_model *m = rc_model_of_ledger();
    sc_assert_matches(m);
    sf_model_free(m);
    fx_stop(api, SIGTERM, 30000);
    fx_stop(cons, SIGTERM, 30000);
}

/* A key whose idempotency row is gone (a purge) is answered from the
 * ledger: the same event, location and expiry, marked replayed, and
 * nothing reserved twice. */
Test(reserve, a_purged_key_is_answered_from_the_ledger)
{
    pid_t cons = receive_stock("purge", "PURGE", 3);
    char key[128];
    pid_t api;
    int port = rc_start_api("reserve-purge.log", "2", key, sizeof key, &api);
    const char *body =
        "{\"ref\":\"pg-1\",\"sku\":\"PURGE\",\"qty\":2,\"location\":\"CC-L1\",\"ttl_s\":60}";
    char first[256], again[256], rp[8];
    cr_assert_eq(rc_post(port, key, "purge-key", body, first, sizeof first, rp, sizeof rp), 201,
                 "%s", first);
    cr_assert_str_empty(rp);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM idempotency WHERE key = 'purge-key'"), 1);
    fx_query_i64("WITH d AS (DELETE FROM idempotency WHERE key = 'purge-key' RETURNING 1)"
                 " SELECT count(*) FROM d");
    cr_assert_eq(rc_post(port, key, "purge-key", body, again, sizeof again, rp, sizeof rp), 201,
                 "%s", again);
    cr_assert_str_eq(again, first);
    cr_assert_str_eq(rp, "true");
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger WHERE kind = 'RESERVE'"), 1);
    cr_assert_eq(fx_query_i64("SELECT reserved FROM positions WHERE sku = 'PURGE'"), 2);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM outbox"), 1);
    /* Stored again for the key: a third try is an ordinary replay. */
    cr_assert_eq(rc_post(port, key, "purge-key", body, again, sizeof again, rp, sizeof rp), 201);
    cr_assert_str_eq(again, first);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM idempotency WHERE key = 'purge-key'"
                              " AND status = 201 AND location = 'CC-L1'"),
                 1);
    fx_stop(api, SIGTERM, 30000);
    fx_stop(cons, SIGTERM, 30000);
}

/* Requests travel to PostgreSQL as array literals (common/db.h): quotes,
 * backslashes, braces, commas, SQL and the word NULL in the key, ref and
 * sku arrive byte for byte, as text, and a replay finds them again. */
Test(reserve, awkward_strings_arrive_byte_for_byte)
{
    /* sku: we"ird\sku{,}'; --   ref: NULL   key: k"\{},NULL;-- */
    const char *sku_json = "we\\\"ird\\\\sku{,}'; --";
    const char *sku_sql = "we\"ird\\sku{,}''; --";
    pid_t cons = receive_stock("awkward", sku_json, 4);
    char key[128];
    pid_t api;
    int port = rc_start_api("reserve-awkward.log", "2", key, sizeof key, &api);
    char body[512], ans[256], again[256], rp[8], q[512];
    snprintf(body, sizeof body,
             "{\"ref\":\"NULL\",\"sku\":\"%s\",\"qty\":3,\"location\":\"CC-L1\",\"ttl_s\":60}",
             sku_json);
    const char *idem = "k\"\\{},NULL;--";
    cr_assert_eq(rc_post(port, key, idem, body, ans, sizeof ans, rp, sizeof rp), 201, "%s", ans);
    snprintf(q, sizeof q,
             "SELECT count(*) FROM ledger WHERE kind = 'RESERVE' AND sku = '%s' AND ref = 'NULL'"
             " AND qty = 3",
             sku_sql);
    cr_assert_eq(fx_query_i64(q), 1);
    snprintf(q, sizeof q, "SELECT reserved FROM positions WHERE sku = '%s'", sku_sql);
    cr_assert_eq(fx_query_i64(q), 3);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM idempotency WHERE key = 'k\"\\{},NULL;--'"
                              " AND status = 201"),
                 1);
    /* The same key again: the stored answer; one unit more: 409. */
    cr_assert_eq(rc_post(port, key, idem, body, again, sizeof again, rp, sizeof rp), 201);
    cr_assert_str_eq(again, ans);
    cr_assert_str_eq(rp, "true");
    snprintf(body, sizeof body,
             "{\"ref\":\"NULL\",\"sku\":\"%s\",\"qty\":2,\"location\":\"CC-L1\",\"ttl_s\":60}",
             sku_json);
    cr_assert_eq(rc_post(port, key, "k2\"\\", body, ans, sizeof ans, rp, sizeof rp), 409, "%s",
                 ans);
    cr_assert_str_eq(ans, "{\"available\":1}\n");
    fx_stop(api, SIGTERM, 30000);
    fx_stop(cons, SIGTERM, 30000);
}

/* Bad input: 400 naming the field; 401, 403, 405 like the other routes. */
Test(reserve, bad_requests_name_their_field)
{
    setup_places();
    char key[128], read_key[128];
    pid_t api;
    api_add_key("reader", "read", read_key, sizeof read_key, NULL, 0); /* known at start */
    int port = rc_start_api("reserve-bad.log", "1", key, sizeof key, &api);
    static const struct {
        const char *idem, *body, *field;
    } bad[] = {
        {"", "{\"ref\":\"o\",\"sku\":\"S\",\"qty\":1,\"location\":\"L\",\"ttl_s\":9}",
         "Idempotency-Key"},
        {"b1", "not json", "\"body\""},
        {"b2", "[1]", "\"body\""},
        {"b3", "{\"sku\":\"S\",\"qty\":1,\"location\":\"L\",\"ttl_s\":9}", "\"ref\""},
        {"b4", "{\"ref\":\"o\",\"sku\":\"S\",\"qty\":0,\"location\":\"L\",\"ttl_s\":9}", "\"qty\""},
        {"b5", "{\"ref\":\"o\",\"sku\":\"S\",\"qty\":\"1\",\"location\":\"L\",\"ttl_s\":9}",
         "\"qty\""},
        {"b6", "{\"ref\":\"o\",\"sku\":\"S\",\"qty\":1,\"location\":\"L.1\",\"ttl_s\":9}",
         "\"location\""},
        {"b7", "{\"ref\":\"o\",\"sku\":\"S\",\"qty\":1,\"ttl_s\":9}", "\"location\""},
        {"b8",
         "{\"ref\":\"o\",\"sku\":\"S\",\"qty\":1,\"location\":\"L\",\"channel\":\"cc\","
         "\"ttl_s\":9}",
         "\"channel\""},
        {"b9", "{\"ref\":\"o\",\"sku\":\"S\",\"qty\":1,\"location\":\"L\"}", "\"ttl_s\""},
        {"b10", "{\"ref\":\"o\",\"sku\":\"S\",\"qty\":1,\"location\":\"L\",\"ttl_s\":9,\"x\":1}",
         "\"body\""},
        {"b11",
         "{\"ref\":\"o\",\"sku\":"
         "\"SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS\","
         "\"qty\":1,\"location\":\"L\",\"ttl_s\":9}",
         "\"sku\""},
        {"b12", "{\"ref\":\"o\",\"sku\":\"S\\u0001\",\"qty\":1,\"location\":\"L\",\"ttl_s\":9}",
         "\"sku\""},
        /* a C1 control (U+009E), refused as any event field would be */
        {"b13", "{\"ref\":\"o\\u009e\",\"sku\":\"S\",\"qty\":1,\"location\":\"L\",\"ttl_s\":9}",
         "\"ref\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char ans[512], rp[8];
        int st = rc_post(port, key, bad[i].idem[0] ? bad[i].idem : "", bad[i].body, ans, sizeof ans,
                         rp, sizeof rp);
        cr_assert_eq(st, 400, "case %zu: %d %s", i, st, ans);
        cr_assert(strstr(ans, bad[i].field), "case %zu: %s does not name %s", i, ans, bad[i].field);
    }
    char ans[512], rp[8];
    const char *ok = "{\"ref\":\"o\",\"sku\":\"S\",\"qty\":1,\"channel\":\"nope\",\"ttl_s\":9}";
    cr_assert_eq(rc_post(port, key, "n1", ok, ans, sizeof ans, rp, sizeof rp), 404, "%s", ans);
    cr_assert_eq(rc_post(port, read_key, "n2", ok, ans, sizeof ans, rp, sizeof rp), 403, "%s", ans);
    cr_assert_eq(rc_post(port, "sf_nope_nope", "n3", ok, ans, sizeof ans, rp, sizeof rp), 401, "%s",
                 ans);
    api_resp r;
    cr_assert_eq(api_req(port, "GET", "/v1/reservations", key, &r), 405);
    char allow[64];
    cr_assert(!strcmp(api_header(&r, "Allow", allow, sizeof allow), "POST"), "Allow: %s", allow);
    api_resp_free(&r);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM idempotency"), 0);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger"), 0);
    fx_stop(api, SIGTERM, 30000);
}

typedef struct fire_job {
    rc_call *calls;
    size_t n;
} fire_job;

static void *fire_thread(void *arg)
{
    fire_job *j = arg;
    rc_fire(j->calls, j->n);
    return NULL;
}

static int64_t g_waiting_for;
static bool reserver_waits_on_a_lock(void *arg)
{
    (void)arg;
    return fx_query_i64("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE '%sf_reserve_batch%'") >= 1;
}

static int g_port;
static const char *g_reader;
static bool queued_reach(void *arg)
{
    (void)arg;
    api_resp r;
    if (api_get(g_port, "/metrics", g_reader, &r) != 200) {
        api_resp_free(&r);
        return false;
    }
    int64_t q = metric(r.body, "inv_api_reserve_queued");
    api_resp_free(&r);
    return q >= g_waiting_for;
}

/* A batch is one statement: a data error from PostgreSQL (here a trigger
 * that refuses sku POISON, SQLSTATE 22023) rolls all of it back. The
 * batch's requests are then run one by one, so only the one that caused
 * the error is refused (400, the database's words) and the others are
 * granted. The batch is made certain: one reserver thread, held on a row
 * lock by the test while POISON and GOOD requests queue behind it. */
Test(reserve, a_data_error_fails_only_its_own_request)
{
    enum { GOOD = 8 };
    pid_t cons[3] = {receive_stock("poison", "GOOD", 100), receive_stock("block", "BLOCK", 10),
                     receive_stock("poisoned", "POISON", 10)};
    fx_exec("CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.sku = 'POISON' THEN RAISE EXCEPTION 'sku POISON refused by the test'"
            " USING ERRCODE = '22023'; END IF; RETURN NEW; END $$");
    fx_exec("CREATE TRIGGER test_poison BEFORE INSERT ON ledger FOR EACH ROW"
            " EXECUTE FUNCTION test_poison()");

    char key[128], reader[128], ini[512];
    api_add_key("reserver", "ingest", key, sizeof key, NULL, 0);
    api_add_key("metrics-reader", "read", reader, sizeof reader, NULL, 0);
    sc_tmp("reserve-poison.ini", ini, sizeof ini);
    FILE *f = fopen(ini, "w");
    cr_assert(f);
    fputs("[api]\nreserve_threads = 1\n", f);
    fclose(f);
    pid_t api;
    const char *extra[] = {"--threads", "4", "--config", ini, NULL};
    int port = api_start("reserve-poison.log", extra, &api);

    /* Hold BLOCK's row: the one reserver thread waits on it in a batch. */
    PGconn *hold = PQconnectdb(fx_env("INV_PG_DSN"));
    cr_assert(PQstatus(hold) == CONNECTION_OK, "%s", PQerrorMessage(hold));
    PQclear(PQexec(hold, "BEGIN"));
    PGresult *res = PQexec(hold, "SELECT 1 FROM positions WHERE sku = 'BLOCK' FOR UPDATE");
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(hold));
    PQclear(res);
    rc_call block = {.port = port, .api_key = key, .idem = "blk"};
    snprintf(block.body, sizeof block.body,
             "{\"ref\":\"blk\",\"sku\":\"BLOCK\",\"qty\":1,\"location\":\"CC-L1\",\"ttl_s\":60}");
    fire_job bj = {&block, 1};
    pthread_t bt, gt;
    cr_assert(pthread_create(&bt, NULL, fire_thread, &bj) == 0);
    cr_assert(fx_wait_until(reserver_waits_on_a_lock, NULL, 30000),
              "the reserver never waited on BLOCK's row");

    /* POISON and GOOD queue behind it: they will be the next batch. */
    rc_call calls[GOOD + 1];
    memset(calls, 0, sizeof calls);
    for (int c = 0; c <= GOOD; c++) {
        calls[c].port = port;
        calls[c].api_key = key;
        snprintf(calls[c].idem, sizeof calls[c].idem, "p-%d", c);
        snprintf(calls[c].body, sizeof calls[c].body,
                 "{\"ref\":\"p-%d\",\"sku\":\"%s\",\"qty\":1,\"location\":\"CC-L1\","
                 "\"ttl_s\":60}",
                 c, c == GOOD / 2 ? "POISON" : "GOOD");
    }
    fire_job gj = {calls, GOOD + 1};
    cr_assert(pthread_create(&gt, NULL, fire_thread, &gj) == 0);
    g_port = port;
    g_reader = reader;
    g_waiting_for = GOOD + 1;
    cr_assert(fx_wait_until(queued_reach, NULL, 30000), "the requests did not queue");
    PQclear(PQexec(hold, "COMMIT"));
    PQfinish(hold);
    pthread_join(bt, NULL);
    pthread_join(gt, NULL);

    cr_assert_eq(block.status[0], 201, "%d %s", block.status[0], block.answer[0]);
    for (int c = 0; c <= GOOD; c++) {
        if (c == GOOD / 2) {
            cr_assert_eq(calls[c].status[0], 400, "POISON: %d %s", calls[c].status[0],
                         calls[c].answer[0]);
            cr_assert(strstr(calls[c].answer[0], "sku POISON refused by the test"), "%s",
                      calls[c].answer[0]);
        } else {
            cr_assert_eq(calls[c].status[0], 201, "request %d: %d %s", c, calls[c].status[0],
                         calls[c].answer[0]);
        }
    }
    api_resp r;
    cr_assert_eq(api_get(port, "/metrics", reader, &r), 200);
    int64_t largest = metric(r.body, "inv_api_reserve_batch_largest");
    api_resp_free(&r);
    cr_assert(largest >= GOOD + 1, "POISON and GOOD did not share a batch (largest %lld)",
              (long long)largest);
    cr_assert_eq(fx_query_i64("SELECT reserved FROM positions WHERE sku = 'GOOD'"), GOOD);
    cr_assert_eq(fx_query_i64("SELECT reserved FROM positions WHERE sku = 'POISON'"), 0);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM idempotency WHERE key = 'p-4'"), 0,
                 "the refused request's key is free to use again");
    fx_exec("DROP TRIGGER test_poison ON ledger");
    fx_exec("DROP FUNCTION test_poison()");
    fx_stop(api, SIGTERM, 30000);
    for (int i = 0; i < 3; i++)
        fx_stop(cons[i], SIGTERM, 30000);
}
