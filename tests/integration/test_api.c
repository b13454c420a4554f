/*
 * inv-api on the real stack: every endpoint with exact numbers (positions,
 * totals, ats per channel before and after the reconciler published, the
 * channel batch, the ledger's pages), every key verdict (missing,
 * malformed, unknown, wrong secret, revoked at runtime, wrong scope, a
 * config-file key), every error path (405, 404, malformed and encoded
 * paths, invalid UTF-8, control characters, overlong queries and request
 * lines, max_batch, garbage bytes), PostgreSQL and NATS going down and
 * coming back, a slow client that must not hold up anyone else, the exact
 * request counts of /metrics, and an order's reservation lines with the
 * reservation gauges (INV_NOW_MS as the clock) before and after expiry.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apikey.h"
#include "fixture.h"
#include "stockcheck.h"
#include "test_api_http.h"

TestSuite(api, .init = fx_reset, .fini = api_fini, .timeout = 240);

static json_int_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "%s is not an integer", key);
    return json_integer_value(v);
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_string(v), "%s is not a string", key);
    return json_string_value(v);
}

/* The element of array arr whose key equals value. */
static json_t *find(json_t *arr, const char *key, const char *value)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (!strcmp(jstr(e, key), value))
            return e;
    }
    cr_assert_fail("no element with %s = %s", key, value);
    return NULL;
}

static void assert_position(json_t *p, json_int_t on_hand, json_int_t reserved, json_int_t safety,
                            json_int_t available, json_int_t inbound, json_int_t damaged)
{
    cr_assert_eq(jint(p, "on_hand"), on_hand);
    cr_assert_eq(jint(p, "reserved"), reserved);
    cr_assert_eq(jint(p, "safety_stock"), safety);
    cr_assert_eq(jint(p, "available"), available);
    cr_assert_eq(jint(p, "inbound"), inbound);
    cr_assert_eq(jint(p, "damaged"), damaged);
    cr_assert(jint(p, "version") >= 1);
    cr_assert_eq(strlen(jstr(p, "updated_at")), strlen("2026-11-20T10:00:00.000Z"));
}

static void error_is(json_t *j, const char *field, const char *needle)
{
    json_t *f = json_object_get(j, "field");
    if (field)
        cr_assert(json_is_string(f) && !strcmp(json_string_value(f), field), "field is not %s: %s",
                  field, json_dumps(j, 0));
    else
        cr_assert(json_is_null(f));
    cr_assert(strstr(jstr(j, "error"), needle), "error '%s' lacks '%s'", jstr(j, "error"), needle);
}

Test(api, stock_exact_per_location_totals_and_channels)
{
    api_load_data();
    char key[128];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = api_start("api-stock.log", NULL, &pid);

    json_t *j = api_get_json(port, "/v1/stock/SKU-A", key, 200);
    cr_assert(!strcmp(jstr(j, "sku"), "SKU-A"));
    json_t *locs = json_object_get(j, "locations");
    cr_assert_eq(json_array_size(locs), 2);
    cr_assert(!strcmp(jstr(json_array_get(locs, 0), "location"), "DC-EAST")); /* sorted */
    assert_position(find(locs, "location", "DC-EAST"), 13, 0, 0, 13, 4, 0);
    assert_position(find(locs, "location", "STORE-NYC"), 4, 1, 1, 2, 0, 2);
    json_t *tot = json_object_get(j, "totals");
    cr_assert_eq(jint(tot, "on_hand"), 17);
    cr_assert_eq(jint(tot, "reserved"), 1);
    cr_assert_eq(jint(tot, "available"), 15);
    cr_assert_eq(jint(tot, "inbound"), 4);
    cr_assert_eq(jint(tot, "damaged"), 2);
    json_t *chans = json_object_get(j, "channels");
    cr_assert_eq(json_array_size(chans), 2);
    cr_assert_eq(jint(find(chans, "channel", "web"), "ats"), 13 + 2 - 2);
    cr_assert_eq(jint(find(chans, "channel", "pos"), "ats"), 2);
    cr_assert(json_is_null(json_object_get(find(chans, "channel", "web"), "published")));
    /* the version is the stored one */
    cr_assert_eq(jint(find(locs, "location", "DC-EAST"), "version"),
                 fx_query_i64("SELECT version FROM positions WHERE sku = 'SKU-A'"
                              " AND location = 'DC-EAST'"));
    json_decref(j);

    /* SKU-B: STORE-NYC -2 counts as 0 for the channels; inbound -1 reads 0. */
    j = api_get_json(port, "/v1/stock/SKU-B", key, 200);
    locs = json_object_get(j, "locations");
    assert_position(find(locs, "location", "DC-EAST"), 1, 0, 0, 1, 0, 0);
    assert_position(find(locs, "location", "STORE-NYC"), -2, 0, 1, -3, 0, 0);
    cr_assert_eq(jint(json_object_get(j, "totals"), "available"), -2);
    cr_assert_eq(jint(find(json_object_get(j, "channels"), "channel", "web"), "ats"), 0);
    json_decref(j);

    /* After the reconciler: what each channel was last sent, beside now. */
    const char *rec[] = {"inv-reconciler", "--drain", NULL};
    api_run_ok(rec);
    const char *sale[] = {"invctl", "location", "set", "DC-EAST", "--safety-stock", "3", NULL};
    api_run_ok(sale); /* moves ats now; the channel was told the old value */
    /* The read model shows another process's commit within its bound
     * (read_model.h; default refresh 100 ms), not at once: wait for it. */
    json_t *web = NULL;
    for (int64_t t0 = fx_now_ms();;) {
        j = api_get_json(port, "/v1/stock/SKU-A", key, 200);
        web = find(json_object_get(j, "channels"), "channel", "web");
        if ((jint(web, "ats") == 10 && json_is_object(json_object_get(web, "published"))) ||
            fx_now_ms() - t0 > 3000)
            break;
        json_decref(j);
        usleep(20000);
    }
    cr_assert_eq(jint(web, "ats"), 13 - 3 + 2 - 2);
    json_t *pub = json_object_get(web, "published");
    cr_assert_eq(jint(pub, "ats"), 13);
    cr_assert_eq(jint(pub, "version"), 1);
    cr_assert(json_is_string(json_object_get(pub, "computed_at")));
    assert_position(find(json_object_get(j, "locations"), "location", "DC-EAST"), 13, 0, 3, 10, 4,
                    0);
    json_decref(j);

    /* HEAD: the same status, no body. */
    api_resp r;
    cr_assert_eq(api_req(port, "HEAD", "/v1/stock/SKU-A", key, &r), 200);
    cr_assert_eq(r.len, 0);
    api_resp_free(&r);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

Test(api, location_and_encoded_skus)
{
    api_load_data();
    char key[128];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = api_start("api-loc.log", NULL, &pid);

    json_t *j = api_get_json(port, "/v1/stock/SKU-A/locations/STORE-NYC", key, 200);
    cr_assert(!strcmp(jstr(j, "sku"), "SKU-A") && !strcmp(jstr(j, "location"), "STORE-NYC"));
    assert_position(j, 4, 1, 1, 2, 0, 2);
    json_decref(j);
    j = api_get_json(port, "/v1/stock/SKU-A/locations/STORE-BOS", key, 404);
    error_is(j, "sku", "STORE-BOS");
    json_decref(j);

    /* '/' as %2F and a space as %20: one segment, decoded after the split. */
    j = api_get_json(port, "/v1/stock/a%2Fb%20c", key, 200);
    cr_assert(!strcmp(jstr(j, "sku"), "a/b c"));
    assert_position(find(json_object_get(j, "locations"), "location", "DC-EAST"), 3, 0, 0, 3, 0, 0);
    json_decref(j);
    j = api_get_json(port, "/v1/stock/a%2fb%20c/locations/DC-EAST", key, 200);
    cr_assert(!strcmp(jstr(j, "sku"), "a/b c"));
    json_decref(j);
    /* a raw '/' splits: that is another route, and '+' is not a space in a path */
    j = api_get_json(port, "/v1/stock/a/b%20c", key, 404);
    json_decref(j);
    j = api_get_json(port, "/v1/stock/a%2Fb+c", key, 404);
    error_is(j, "sku", "a/b+c");
    json_decref(j);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

Test(api, channel_batch_exact_and_bounded)
{
    api_load_data();
    char key[128];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = api_start("api-chan.log", NULL, &pid);

    json_t *j = api_get_json(
        port, "/v1/channels/web/stock?sku=SKU-A&sku=NO-SUCH&sku=a%2Fb+c&sku=SKU-A&sku=SKU-B", key,
        200);
    cr_assert(!strcmp(jstr(j, "channel"), "web"));
    cr_assert_eq(jint(j, "count"), 4);
    json_t *skus = json_object_get(j, "skus");
    const char *order[] = {"SKU-A", "NO-SUCH", "a/b c", "SKU-B"};
    const json_int_t ats[] = {13, 0, 1, 0};
    const int known[] = {1, 0, 1, 1};
    for (size_t i = 0; i < 4; i++) {
        json_t *e = json_array_get(skus, i);
        cr_assert(!strcmp(jstr(e, "sku"), order[i]), "%zu: %s", i, jstr(e, "sku"));
        cr_assert_eq(jint(e, "ats"), ats[i], "%s", order[i]);
        cr_assert_eq(json_is_true(json_object_get(e, "known")), known[i], "%s", order[i]);
        cr_assert(json_is_null(json_object_get(e, "published")));
    }
    json_decref(j);
    /* the same numbers as sf_channel_ats */
    cr_assert_eq(
        fx_query_i64("SELECT ats FROM sf_channel_ats(ARRAY['SKU-A']) WHERE channel = 'web'"), 13);

    j = api_get_json(port, "/v1/channels/nochannel/stock?sku=SKU-A", key, 404);
    error_is(j, "channel", "nochannel");
    json_decref(j);
    j = api_get_json(port, "/v1/channels/web/stock", key, 400);
    error_is(j, "sku", "at least one");
    json_decref(j);
    j = api_get_json(port, "/v1/channels/web/stock?sku=A&sku=", key, 400);
    error_is(j, "sku", "empty");
    json_decref(j);
    j = api_get_json(port, "/v1/channels/web/stock?sku=A&skus=B", key, 400);
    error_is(j, "query", "'skus'");
    json_decref(j);
    j = api_get_json(port, "/v1/channels/we%20b/stock?sku=A", key, 400);
    error_is(j, "channel", "not a channel id");
    json_decref(j);

    /* max_batch (default 1000): 1000 pass, 1001 are a 400 naming sku */
    size_t cap = 1001 * 16 + 64;
    char *url = malloc(cap);
    cr_assert(url);
    size_t n = (size_t)snprintf(url, cap, "/v1/channels/web/stock?");
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(url + n, cap - n, "%ssku=K-%d", i ? "&" : "", i);
    j = api_get_json(port, url, key, 200);
    cr_assert_eq(jint(j, "count"), 1000);
    json_decref(j);
    snprintf(url + n, cap - n, "&sku=K-1000");
    j = api_get_json(port, url, key, 400);
    error_is(j, "sku", "1001 query parameters, more than the 1000");
    json_decref(j);
    free(url);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);

    /* [api] max_batch from the config */
    char cfg_path[512];
    sc_tmp("api-batch.ini", cfg_path, sizeof cfg_path);
    FILE *f = fopen(cfg_path, "w");
    cr_assert(f);
    fputs("[api]\nmax_batch = 2\n", f);
    fclose(f);
    const char *extra[] = {"--config", cfg_path, NULL};
    port = api_start("api-chan2.log", extra, &pid);
    j = api_get_json(port, "/v1/channels/pos/stock?sku=SKU-A&sku=SKU-B", key, 200);
    cr_assert_eq(jint(json_array_get(json_object_get(j, "skus"), 0), "ats"), 2);
    json_decref(j);
    j = api_get_json(port, "/v1/channels/pos/stock?sku=SKU-A&sku=SKU-B&sku=C", key, 400);
    error_is(j, "sku", "more than the 2");
    json_decref(j);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

Test(api, ledger_pages_by_stream_sequence)
{
    api_load_data();
    char key[128];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = api_start("api-ledger.log", NULL, &pid);

    char want[256], got[256] = "", target[256];
    fx_query_str("SELECT string_agg(event_id, ',' ORDER BY stream_seq) FROM ledger"
                 " WHERE sku = 'SKU-A'",
                 want, sizeof want);
    cr_assert(!strcmp(want, "a1,a2,a3,a4,a5,a6"), "%s", want);
    long long after = 0, last_seq = 0;
    int pages = 0;
    for (;;) {
        snprintf(target, sizeof target, "/v1/ledger/SKU-A?limit=4&after=%lld", after);
        json_t *j = api_get_json(port, target, key, 200);
        json_t *events = json_object_get(j, "events");
        size_t i;
        json_t *e;
        json_array_foreach(events, i, e)
        {
            cr_assert(jint(e, "seq") > last_seq, "sequence not increasing");
            last_seq = jint(e, "seq");
            size_t used = strlen(got);
            snprintf(got + used, sizeof got - used, "%s%s", used ? "," : "", jstr(e, "event_id"));
        }
        pages++;
        json_t *next = json_object_get(j, "next_after");
        if (json_is_null(next)) {
            json_decref(j);
            break;
        }
        after = json_integer_value(next);
        cr_assert_eq(after, last_seq);
        json_decref(j);
        cr_assert(pages < 10);
    }
    cr_assert(!strcmp(got, want), "paged %s, ledger %s", got, want);
    cr_assert_eq(pages, 2);

    /* every field of one row, nullable ones included */
    json_t *j = api_get_json(port, "/v1/ledger/SKU-A?location=STORE-NYC", key, 200);
    json_t *events = json_object_get(j, "events");
    cr_assert_eq(json_array_size(events), 3);
    json_t *a5 = json_array_get(events, 2);
    cr_assert(!strcmp(jstr(a5, "event_id"), "a5") && !strcmp(jstr(a5, "kind"), "RETURN"));
    cr_assert(!strcmp(jstr(a5, "condition"), "DAMAGED"));
    cr_assert(!strcmp(jstr(a5, "occurred_at"), "2026-11-20T10:00:00.000Z"));
    cr_assert_eq(jint(a5, "qty"), 2);
    cr_assert(json_is_null(json_object_get(a5, "ref")));
    cr_assert(!strcmp(jstr(json_array_get(events, 1), "ref"), "o1"));
    cr_assert(json_is_null(json_object_get(j, "next_after")));
    cr_assert(!strcmp(jstr(j, "location"), "STORE-NYC"));
    json_decref(j);
    j = api_get_json(port, "/v1/ledger/SKU-B", key, 200);
    cr_assert(!strcmp(jstr(json_array_get(json_object_get(j, "events"), 0), "channel"), "web"));
    json_decref(j);
    /* past the end: an empty page; an unknown sku: 404 */
    j = api_get_json(port, "/v1/ledger/SKU-A?after=1000000", key, 200);
    cr_assert_eq(json_array_size(json_object_get(j, "events")), 0);
    json_decref(j);
    j = api_get_json(port, "/v1/ledger/NOPE", key, 404);
    error_is(j, "sku", "'NOPE'");
    json_decref(j);
    const char *bad[][2] = {{"/v1/ledger/SKU-A?limit=1001", "limit"},
                            {"/v1/ledger/SKU-A?limit=x", "limit"},
                            {"/v1/ledger/SKU-A?limit=%2B5", "limit"},
                            {"/v1/ledger/SKU-A?after=-1", "after"},
                            {"/v1/ledger/SKU-A?after=99999999999999999999", "after"},
                            {"/v1/ledger/SKU-A?after=1&after=2", "after"},
                            {"/v1/ledger/SKU-A?location=a+b", "location"},
                            {"/v1/ledger/SKU-A?location=%FF", "location"},
                            {"/v1/ledger/SKU-A?order=desc", "query"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = api_get_json(port, bad[i][0], key, 400);
        error_is(j, bad[i][1], "");
        json_decref(j);
    }
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

Test(api, keys_missing_unknown_revoked_and_scoped)
{
    api_load_data();
    char reader[128], feeder[128], boss[128], late[128], cfgkey[128], ini[8192];
    api_add_key("reader", "read", reader, sizeof reader, NULL, 0);
    api_add_key("feeder", "ingest", feeder, sizeof feeder, NULL, 0);
    api_add_key("boss", "admin", boss, sizeof boss, NULL, 0);
    /* a config-file key: stored nowhere but in the config */
    api_add_key("dash", "read", cfgkey, sizeof cfgkey, ini, sizeof ini);
    cr_assert(!strncmp(cfgkey, "sf_dash_", 8), "%s", cfgkey);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM api_keys WHERE name = 'dash'"), 0);
    char cfg_path[512];
    sc_tmp("api-keys.ini", cfg_path, sizeof cfg_path);
    char section[1024];
    api_ini_section(ini, section, sizeof section);
    cr_assert(!strncmp(section, "[apikey.dash]\nscope = read\nsalt = ", 32), "%s", section);
    FILE *f = fopen(cfg_path, "w");
    cr_assert(f);
    fputs(section, f);
    fclose(f);
    /* the table keeps salt and hash only */
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM api_keys WHERE length(salt) = 16"
                              " AND length(hash) = 32 AND revoked_at IS NULL"),
                 3);

    const char *extra[] = {"--config", cfg_path, NULL};
    pid_t pid;
    int port = api_start("api-keys.log", extra, &pid);
    const char *t = "/v1/stock/SKU-A";
    json_decref(api_get_json(port, t, reader, 200));
    json_decref(api_get_json(port, t, boss, 200));
    json_decref(api_get_json(port, t, cfgkey, 200));
    json_t *j = api_get_json(port, t, feeder, 403);
    error_is(j, "authorization", "scope");
    json_decref(j);

    api_resp r;
    cr_assert_eq(api_get(port, t, NULL, &r), 401);
    char h[256];
    cr_assert(!strcmp(api_header(&r, "WWW-Authenticate", h, sizeof h), "Bearer realm=\"inv-api\""));
    j = api_json(&r);
    error_is(j, "authorization", "missing");
    json_decref(j);
    api_resp_free(&r);
    /* the wrong scheme, a malformed key, an unknown one, a wrong secret */
    char req[1024];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nAuthorization: Basic %s\r\n\r\n", t, reader);
    cr_assert_eq(api_raw(port, req, strlen(req), &r), 401);
    api_resp_free(&r);
    j = api_get_json(port, t, "sf_nope", 401);
    error_is(j, "authorization", "malformed");
    json_decref(j);
    sf_apikey_new stranger;
    cr_assert(sf_apikey_generate(NULL, &stranger, NULL) == SF_OK);
    j = api_get_json(port, t, stranger.key, 401);
    error_is(j, "authorization", "unknown");
    json_decref(j);
    char wrong[128];
    snprintf(wrong, sizeof wrong, "%s", reader);
    wrong[strlen(wrong) - 2] = wrong[strlen(wrong) - 2] == 'A' ? 'B' : 'A';
    j = api_get_json(port, t, wrong, 401);
    error_is(j, "authorization", "unknown");
    json_decref(j);

    /* list shows no secret; revoke by name: refused within the 5 s reload */
    char out[8192];
    const char *list[] = {"invctl", "apikey", "list", "--json", NULL};
    cr_assert_eq(fx_run(list, NULL, out, sizeof out, 30000), 0, "%s", out);
    cr_assert(strstr(out, "\"reader\"") && strstr(out, "\"feeder\""));
    cr_assert_null(strstr(out, reader + 20), "list printed a secret");
    cr_assert_null(strstr(out, "hash"));
    cr_assert_null(strstr(out, "salt"));
    const char *revoke[] = {"invctl", "apikey", "revoke", "reader", NULL};
    cr_assert_eq(fx_run(revoke, NULL, out, sizeof out, 30000), 0, "%s", out);
    cr_assert(strstr(out, "revoked "), "%s", out);
    cr_assert_eq(fx_run(revoke, NULL, out, sizeof out, 30000), 1, "%s", out);
    cr_assert(strstr(out, "already revoked"), "%s", out);
    const char *nokey[] = {"invctl", "apikey", "revoke", "nobody", NULL};
    cr_assert_eq(fx_run(nokey, NULL, out, sizeof out, 30000), 1, "%s", out);
    /* a key added while the server runs is accepted within the reload */
    api_add_key("late", "read", late, sizeof late, NULL, 0);
    int64_t t0 = fx_now_ms();
    int st_reader = 200, st_late = 401;
    while (fx_now_ms() - t0 < 12000 && (st_reader != 401 || st_late != 200)) {
        st_reader = api_get(port, t, reader, &r);
        api_resp_free(&r);
        st_late = api_get(port, t, late, &r);
        api_resp_free(&r);
        usleep(200000);
    }
    cr_assert_eq(st_reader, 401, "revoked key still accepted after %lld ms",
                 (long long)(fx_now_ms() - t0));
    cr_assert_eq(st_late, 200, "new key not accepted after %lld ms", (long long)(fx_now_ms() - t0));
    j = api_get_json(port, t, reader, 401);
    error_is(j, "authorization", "revoked");
    json_decref(j);
    /* a revoked name can be issued again */
    char again[128];
    api_add_key("reader", "read", again, sizeof again, NULL, 0);
    cr_assert(strcmp(again, reader) != 0);
    /* /healthz needs no key, /metrics does */
    json_decref(api_get_json(port, "/healthz", NULL, 200));
    json_decref(api_get_json(port, "/metrics", NULL, 401));
    json_decref(api_get_json(port, "/metrics", feeder, 403));
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);

    /* a bad [apikey.*] section stops the start with the line (exit 2) */
    f = fopen(cfg_path, "w");
    cr_assert(f);
    fputs("[apikey.x]\nscope = read\nsalt = 00\nhash = 00\n", f);
    fclose(f);
    const char *bad[] = {"inv-api", "--config", cfg_path, "--listen", "127.0.0.1:0", NULL};
    cr_assert_eq(fx_run(bad, NULL, out, sizeof out, 30000), 2, "%s", out);
    cr_assert(strstr(out, ":3: [apikey.x] salt:"), "%s", out);
}

/* One request whose answer must be status with a JSON error naming field. */
static void expect_error(int port, const char *key, const char *target, int status,
                         const char *field)
{
    json_t *j = api_get_json(port, target, key, status);
    error_is(j, field, "");
    json_decref(j);
}

Test(api, http_errors_are_json_and_never_crash)
{
    api_load_data();
    char key[128];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = api_start("api-errors.log", NULL, &pid);

    /* methods */
    const char *methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        api_resp r;
        cr_assert_eq(api_req(port, methods[i], "/v1/stock/SKU-A", key, &r), 405, "%s", methods[i]);
        char h[64];
        cr_assert(!strcmp(api_header(&r, "Allow", h, sizeof h), "GET, HEAD"));
        json_t *j = api_json(&r);
        error_is(j, "method", "GET");
        json_decref(j);
        api_resp_free(&r);
    }
    /* routes and malformed paths */
    expect_error(port, key, "/nope", 404, "path");
    expect_error(port, key, "/", 404, "path");
    expect_error(port, key, "//", 404, "path");
    expect_error(port, key, "/v1/stock", 404, "path");
    expect_error(port, key, "/v1/stock/SKU-A/", 404, "path");
    expect_error(port, key, "/dashboard/x", 404, "path");
    expect_error(port, key, "/v1/ops/events/x", 404, "path");
    expect_error(port, key, "/v1/stock//locations/DC-EAST", 400, "sku");
    expect_error(port, key, "/v1/stock/%zz", 400, "path");
    expect_error(port, key, "/v1/stock/a%2", 400, "path");
    expect_error(port, key, "/v1/st%zzock/A", 400, "path");
    expect_error(port, key, "/v1/stock/%00", 400, "sku");
    expect_error(port, key, "/v1/stock/a%0Ab", 400, "sku");
    expect_error(port, key, "/v1/stock/a%7Fb", 400, "sku");
    expect_error(port, key, "/v1/stock/a%C2%85b", 400, "sku"); /* C1 control (NEL) */
    expect_error(port, key, "/v1/stock/%FF", 400, "sku");
    expect_error(port, key, "/v1/stock/%C0%AF", 400, "sku");    /* overlong '/' */
    expect_error(port, key, "/v1/stock/%ED%A0%80", 400, "sku"); /* surrogate */
    expect_error(port, key, "/v1/stock/%E2%82", 400, "sku");    /* truncated */
    expect_error(port, key, "/v1/%FF/x", 400, "path");
    expect_error(port, key, "/v1/stock/SKU-A/locations/a%2Fb", 400, "location");
    expect_error(port, key, "/v1/stock/SKU-A?x=1", 400, "query");
    expect_error(port, key, "/v1/ledger/SKU-A?limit=%zz", 400, "limit");
    char sku65[128];
    memset(sku65, 'S', 65);
    sku65[65] = '\0';
    char target[256];
    snprintf(target, sizeof target, "/v1/stock/%s", sku65);
    expect_error(port, key, target, 400, "sku");
    snprintf(target, sizeof target, "/v1/stock/%.64s", sku65); /* 64 bytes: fine, unknown */
    expect_error(port, key, target, 404, "sku");
    /* a valid multi-byte sku is just unknown */
    expect_error(port, key, "/v1/stock/caf%C3%A9", 404, "sku");

    /* overlong query: 414 JSON; an overlong request line: libevent's 413 */
    size_t big = 300000;
    char *url = malloc(big + 64);
    cr_assert(url);
    strcpy(url, "/v1/ledger/SKU-A?location=");
    memset(url + strlen(url), 'A', 5000);
    url[26 + 5000] = '\0';
    expect_error(port, key, url, 414, "query");
    memset(url + 26, 'A', big);
    url[26 + big] = '\0';
    char *line = malloc(big + 512);
    cr_assert(line);
    int ln =
        snprintf(line, big + 512, "GET %s HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n", url, key);
    api_resp r;
    int st = api_raw_lenient(port, line, (size_t)ln, API_IO_TIMEOUT_MS, &r);
    free(line);
    /* (0: the server closed before we finished sending: fine too) */
    cr_assert(st == 413 || st == 400 || st == 0, "overlong line: status %d", st);
    api_resp_free(&r);
    free(url);
    /* huge header, and a body on a GET */
    char *hdr = malloc(600000);
    cr_assert(hdr);
    int n = snprintf(hdr, 600000, "GET /v1/stock/SKU-A HTTP/1.1\r\nX-Big: ");
    memset(hdr + n, 'x', 500000);
    n += 500000;
    n += snprintf(hdr + n, 600000 - (size_t)n, "\r\n\r\n");
    st = api_raw_lenient(port, hdr, (size_t)n, API_IO_TIMEOUT_MS, &r);
    cr_assert(st == 413 || st == 400 || st == 0, "huge header: status %d", st);
    api_resp_free(&r);
    free(hdr);

    /* garbage and half-protocol bytes: any answer or a close, never a crash */
    const char *junk[] = {
        "\x00\x01\x02garbage\r\n\r\n",
        "GET\r\n\r\n",
        "GET /v1/stock/SKU-A HTTP/9.9\r\n\r\n",
        "FOO /v1/stock/SKU-A HTTP/1.1\r\n\r\n",
        "GET http://127.0.0.1/v1/stock/SKU-A HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /v1/stock/SKU-A HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        "GET /v1/stock/SKU-A HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET /v1/stock/\xff\xfe HTTP/1.1\r\n\r\n",
        "GET /v1/stock/a b HTTP/1.1\r\n\r\n",
        "\r\n\r\n\r\n"};
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        size_t len = i == 0 ? 14 : strlen(junk[i]);
        api_raw_lenient(port, junk[i], len, 2000, &r);
        api_resp_free(&r);
    }
    /* seeded random request targets */
    srand(7);
    for (int i = 0; i < 300; i++) {
        char t[96] = "/v1/stock/";
        size_t tl = strlen(t), m = (size_t)(rand() % 40);
        for (size_t k = 0; k < m; k++) {
            char c = (char)(rand() % 94 + 33);
            t[tl++] = c;
        }
        t[tl] = '\0';
        api_get(port, t, key, &r);
        cr_assert(r.status >= 200 && r.status < 600 && r.status != 500, "%s: %d", t, r.status);
        api_resp_free(&r);
    }
    /* still serving, still the same process */
    json_decref(api_get_json(port, "/healthz", NULL, 200));
    json_decref(api_get_json(port, "/v1/stock/SKU-A", key, 200));
    cr_assert_eq(kill(pid, 0), 0);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

Test(api, postgres_down_is_503_and_recovers)
{
    api_load_data();
    char key[128];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = api_start("api-pg.log", NULL, &pid);
    json_decref(api_get_json(port, "/v1/stock/SKU-A", key, 200));

    /* Everything is observed first and asserted after pg-start, so a
     * failure never leaves the stack down for the next test. */
    const char *targets[] = {"/v1/stock/SKU-A", "/v1/stock/SKU-A/locations/DC-EAST",
                             "/v1/channels/web/stock?sku=SKU-A", "/v1/ledger/SKU-A"};
    api_resp down[2][4], health, metrics;
    fx_stack("pg-stop immediate");
    /* The read model serves the stock route until its next poll (every
     * 100 ms) finds PostgreSQL gone: wait for that, as a busy machine may
     * delay it past the requests below. */
    int64_t until = fx_now_ms() + 10000;
    bool current = true;
    while (current && fx_now_ms() < until) {
        api_resp m;
        api_get(port, "/metrics", key, &m);
        current = !m.body || !strstr(m.body, "\ninv_api_read_model_current 0\n");
        api_resp_free(&m);
        if (current)
            usleep(50000);
    }
    for (int round = 0; round < 2; round++) /* stale connections, then refused ones */
        for (size_t i = 0; i < 4; i++)
            api_get(port, targets[i], key, &down[round][i]);
    api_get(port, "/healthz", NULL, &health);
    api_get(port, "/metrics", key, &metrics); /* keys stay valid: the table is not needed */
    fx_stack("pg-start");

    cr_assert(!current, "the read model still said current 10 s after PostgreSQL stopped");
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < 4; i++) {
            cr_assert_eq(down[round][i].status, 503, "%s: %s", targets[i], down[round][i].body);
            json_t *j = api_json(&down[round][i]);
            error_is(j, NULL, "database unavailable");
            json_decref(j);
            api_resp_free(&down[round][i]);
        }
    }
    cr_assert_eq(health.status, 503);
    json_t *h = api_json(&health);
    cr_assert(!strcmp(jstr(h, "postgres"), "down") && !strcmp(jstr(h, "nats"), "ok"));
    cr_assert_eq(json_array_size(json_object_get(h, "down")), 1);
    cr_assert(
        !strcmp(json_string_value(json_array_get(json_object_get(h, "down"), 0)), "postgres"));
    json_decref(h);
    api_resp_free(&health);
    cr_assert_eq(metrics.status, 200);
    cr_assert(strstr(metrics.body, "inv_api_requests_total{route=\"ledger\",status=\"503\"} 2"),
              "%s", metrics.body);
    /* the reservation gauges need PostgreSQL: left out, the rest served */
    cr_assert_null(strstr(metrics.body, "stockflow_reservations_"), "%s", metrics.body);
    api_resp_free(&metrics);

    /* the first request after the restart already works: reconnect + retry */
    for (size_t i = 0; i < 4; i++)
        json_decref(api_get_json(port, targets[i], key, 200));
    json_t *j = api_get_json(port, "/v1/stock/SKU-A", key, 200);
    cr_assert_eq(jint(json_object_get(j, "totals"), "on_hand"), 17);
    json_decref(j);
    json_decref(api_get_json(port, "/healthz", NULL, 200));
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

Test(api, postgres_down_at_start_then_up)
{
    api_load_data();
    char key[128];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    fx_stack("pg-stop immediate");
    pid_t pid;
    int port = api_start("api-pg0.log", NULL, &pid);
    /* the table could never be read: a key we cannot check is a 503 */
    api_resp first;
    api_get(port, "/v1/stock/SKU-A", key, &first);
    fx_stack("pg-start");
    cr_assert_eq(first.status, 503, "%s", first.body);
    json_t *j = api_json(&first);
    error_is(j, "authorization", "unavailable");
    json_decref(j);
    api_resp_free(&first);
    int64_t t0 = fx_now_ms();
    api_resp r;
    int st = 0;
    while (fx_now_ms() - t0 < 12000 && st != 200) {
        st = api_get(port, "/v1/stock/SKU-A", key, &r);
        api_resp_free(&r);
        usleep(200000);
    }
    cr_assert_eq(st, 200, "keys not loaded after PostgreSQL came back");
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

Test(api, nats_down_shows_in_healthz_only)
{
    api_load_data();
    char key[128];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = api_start("api-nats.log", NULL, &pid);
    json_decref(api_get_json(port, "/healthz", NULL, 200));
    api_resp health, stock;
    fx_stack("nats-stop");
    api_get(port, "/healthz", NULL, &health);
    api_get(port, "/v1/stock/SKU-A", key, &stock); /* stock needs no NATS */
    fx_stack("nats-start");
    cr_assert_eq(health.status, 503, "%s", health.body);
    json_t *h = api_json(&health);
    cr_assert(!strcmp(jstr(h, "nats"), "down") && !strcmp(jstr(h, "postgres"), "ok"));
    cr_assert(!strcmp(jstr(h, "status"), "unavailable"));
    cr_assert(strstr(jstr(h, "error"), "nats"));
    json_decref(h);
    api_resp_free(&health);
    cr_assert_eq(stock.status, 200);
    api_resp_free(&stock);
    int64_t t0 = fx_now_ms();
    api_resp r;
    int st = 0;
    while (fx_now_ms() - t0 < 15000 && st != 200) {
        st = api_get(port, "/healthz", NULL, &r);
        api_resp_free(&r);
        usleep(200000);
    }
    cr_assert_eq(st, 200, "healthz still failing after NATS came back");
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

Test(api, slow_client_does_not_block_others)
{
    api_load_data();
    char key[128];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    pid_t pid;
    const char *one[] = {"--threads", "1", NULL}; /* the worst case: one event loop */
    int port = api_start("api-slow.log", one, &pid);

    /* 20 clients each send half a request and stall */
    int slow[20];
    for (int i = 0; i < 20; i++) {
        slow[i] = api_connect(port);
        const char *half = "GET /v1/stock/SKU-A HTTP/1.1\r\nHost: x\r\nAuthoriz";
        api_send_all(slow[i], half, strlen(half));
    }
    for (int i = 0; i < 20; i++) {
        api_resp r;
        cr_assert_eq(api_get(port, "/v1/stock/SKU-A", key, &r), 200);
        cr_assert(r.elapsed_ms < 1000, "request took %lld ms beside stalled clients",
                  (long long)r.elapsed_ms);
        api_resp_free(&r);
    }
    /* the stalled ones are dropped after the 10 s timeout */
    int64_t t0 = fx_now_ms();
    struct pollfd p = {.fd = slow[0], .events = POLLIN};
    cr_assert(poll(&p, 1, 15000) == 1, "stalled client not dropped");
    char buf[512];
    ssize_t got = recv(slow[0], buf, sizeof buf, 0);
    cr_assert(got <= 0 || !strncmp(buf, "HTTP/1.1 4", 10), "unexpected answer to a stall");
    cr_assert(fx_now_ms() - t0 < 15000);
    for (int i = 0; i < 20; i++)
        close(slow[i]);
    json_decref(api_get_json(port, "/healthz", NULL, 200));
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

/* The value of one exact series in Prometheus text, or -1. */
static long long metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (!strncmp(l, series, n) && l[n] == ' ')
            return atoll(l + n + 1);
    }
    return -1;
}

/* Orders on top of API_DATA (o1: 1 of SKU-A at STORE-NYC, no expiry). All at
 * 10:00; the clock of the inv-api under test is RESV_NOW, 12:00.
 *   order-1  SKU-A DC-EAST: reserve 5, release 2 -> 3; SKU-B DC-EAST:
 *            reserve 3, sale 1 -> 2; expires tomorrow: not expired
 *   cart-9   SKU-A and SKU-B at STORE-NYC, 2 and 1, expired at 11:00
 *   keep-1   SKU-A DC-EAST 1 expiring at 11:00 + 1 open-ended: never expires
 *   web/42   SKU-B STORE-NYC reserve 1, sale 1: expired at 11:30 but closed */
#define RESV_NOW "1795176000000" /* 2026-11-20T12:00:00Z */
#define RESV_EXP(t) ",\"expires_at\":\"2026-11-" t "Z\""
static const char *const RESV_DATA[] = {
    API_EV("r1", "RESERVE", "SKU-A", "DC-EAST", 5, ",\"ref\":\"order-1\"" RESV_EXP("21T10:00:00")),
    API_EV("r2", "RESERVE", "SKU-B", "DC-EAST", 3, ",\"ref\":\"order-1\"" RESV_EXP("21T10:00:00")),
    API_EV("r3", "RELEASE", "SKU-A", "DC-EAST", 2, ",\"ref\":\"order-1\""),
    API_EV("r4", "SALE", "SKU-B", "DC-EAST", 1, ",\"ref\":\"order-1\""),
    API_EV("c1", "RESERVE", "SKU-A", "STORE-NYC", 2, ",\"ref\":\"cart-9\"" RESV_EXP("20T11:00:00")),
    API_EV("c2", "RESERVE", "SKU-B", "STORE-NYC", 1, ",\"ref\":\"cart-9\"" RESV_EXP("20T11:00:00")),
    API_EV("k1", "RESERVE", "SKU-A", "DC-EAST", 1, ",\"ref\":\"keep-1\"" RESV_EXP("20T11:00:00")),
    API_EV("k2", "RESERVE", "SKU-A", "DC-EAST", 1, ",\"ref\":\"keep-1\""),
    API_EV("w1", "RESERVE", "SKU-B", "STORE-NYC", 1, ",\"ref\":\"web/42\"" RESV_EXP("20T11:30:00")),
    API_EV("w2", "SALE", "SKU-B", "STORE-NYC", 1, ",\"ref\":\"web/42\""),
};

/* API_DATA and RESV_DATA applied. */
static void resv_load(void)
{
    api_load_data();
    char path[512], out[8192];
    sc_tmp("api-resv.jsonl", path, sizeof path);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    for (size_t i = 0; i < sizeof RESV_DATA / sizeof *RESV_DATA; i++)
        fputs(RESV_DATA[i], f);
    fclose(f);
    sc_ingest(path, out, sizeof out);
    sc_drain(1);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM reservations"), 7);
}

/* inv-api with its clock at RESV_NOW; returns the port. */
static int resv_api_start(const char *log_name, pid_t *pid)
{
    setenv("INV_NOW_MS", RESV_NOW, 1);
    int port = api_start(log_name, NULL, pid);
    unsetenv("INV_NOW_MS");
    return port;
}

/* One line: every number, expires_at (NULL: null) and the two flags. */
static void assert_line(json_t *l, const char *sku, const char *location, json_int_t reserved,
                        json_int_t released, json_int_t sold, json_int_t outstanding,
                        const char *expires_at, bool never_expires, bool expired)
{
    cr_assert(!strcmp(jstr(l, "sku"), sku), "sku %s, want %s", jstr(l, "sku"), sku);
    cr_assert(!strcmp(jstr(l, "location"), location));
    cr_assert_eq(jint(l, "reserved"), reserved, "%s", sku);
    cr_assert_eq(jint(l, "released"), released, "%s", sku);
    cr_assert_eq(jint(l, "sold"), sold, "%s", sku);
    cr_assert_eq(jint(l, "outstanding"), outstanding, "%s", sku);
    if (expires_at)
        cr_assert(!strcmp(jstr(l, "expires_at"), expires_at), "%s", jstr(l, "expires_at"));
    else
        cr_assert(json_is_null(json_object_get(l, "expires_at")));
    cr_assert(json_is_boolean(json_object_get(l, "never_expires")));
    cr_assert_eq(json_is_true(json_object_get(l, "never_expires")), never_expires, "%s", sku);
    cr_assert(json_is_boolean(json_object_get(l, "expired")));
    cr_assert_eq(json_is_true(json_object_get(l, "expired")), expired, "%s", sku);
    cr_assert_eq(strlen(jstr(l, "updated_at")), strlen("2026-11-20T10:00:00.000Z"));
    cr_assert_eq(json_object_size(l), 10);
}

/* GET /v1/reservations/{target}: 200, its ref, lines and total. */
static json_t *resv_get(int port, const char *target, const char *key, const char *ref,
                        size_t lines, json_int_t outstanding)
{
    char url[256];
    snprintf(url, sizeof url, "/v1/reservations/%s", target);
    json_t *j = api_get_json(port, url, key, 200);
    cr_assert(!strcmp(jstr(j, "ref"), ref), "ref %s, want %s", jstr(j, "ref"), ref);
    cr_assert_eq(json_array_size(json_object_get(j, "lines")), lines, "%s", ref);
    cr_assert_eq(jint(j, "outstanding"), outstanding, "%s", ref);
    cr_assert_eq(json_object_size(j), 3);
    return j;
}

Test(api, reservation_lines_per_order_exact)
{
    resv_load();
    char key[128], boss[128], feeder[128];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    api_add_key("boss", "admin", boss, sizeof boss, NULL, 0);
    api_add_key("feeder", "ingest", feeder, sizeof feeder, NULL, 0);
    pid_t pid;
    int port = resv_api_start("api-resv.log", &pid);

    /* two skus: a partial release, a sale with the ref; sorted by sku */
    json_t *j = resv_get(port, "order-1", key, "order-1", 2, 5);
    json_t *lines = json_object_get(j, "lines");
    assert_line(json_array_get(lines, 0), "SKU-A", "DC-EAST", 5, 2, 0, 3,
                "2026-11-21T10:00:00.000Z", false, false);
    assert_line(json_array_get(lines, 1), "SKU-B", "DC-EAST", 3, 0, 1, 2,
                "2026-11-21T10:00:00.000Z", false, false);
    json_decref(j);
    /* expired at 11:00 by the clock of INV_NOW_MS (12:00), not released yet */
    j = resv_get(port, "cart-9", key, "cart-9", 2, 3);
    lines = json_object_get(j, "lines");
    assert_line(json_array_get(lines, 0), "SKU-A", "STORE-NYC", 2, 0, 0, 2,
                "2026-11-20T11:00:00.000Z", false, true);
    assert_line(json_array_get(lines, 1), "SKU-B", "STORE-NYC", 1, 0, 0, 1,
                "2026-11-20T11:00:00.000Z", false, true);
    json_decref(j);
    /* one open-ended RESERVE: never expires, expires_at null */
    j = resv_get(port, "keep-1", key, "keep-1", 1, 2);
    assert_line(json_array_get(json_object_get(j, "lines"), 0), "SKU-A", "DC-EAST", 2, 0, 0, 2,
                NULL, true, false);
    json_decref(j);
    j = resv_get(port, "o1", boss, "o1", 1, 1); /* admin reads too */
    assert_line(json_array_get(json_object_get(j, "lines"), 0), "SKU-A", "STORE-NYC", 1, 0, 0, 1,
                NULL, true, false);
    json_decref(j);
    /* '/' in the ref as %2F (either case); sold out: past expiry, not expired */
    j = resv_get(port, "web%2F42", key, "web/42", 1, 0);
    assert_line(json_array_get(json_object_get(j, "lines"), 0), "SKU-B", "STORE-NYC", 1, 0, 1, 0,
                "2026-11-20T11:30:00.000Z", false, false);
    json_decref(j);
    json_decref(resv_get(port, "web%2f42", key, "web/42", 1, 0));
    /* a raw '/' splits: another (unknown) route */
    j = api_get_json(port, "/v1/reservations/web/42", key, 404);
    error_is(j, "path", "no such route");
    json_decref(j);

    /* unknown ref: 404 naming it; the empty-ref pool is not addressable */
    j = api_get_json(port, "/v1/reservations/order-404", key, 404);
    error_is(j, "ref", "'order-404'");
    json_decref(j);
    j = api_get_json(port, "/v1/reservations/ORDER-1", key, 404); /* refs are exact */
    error_is(j, "ref", "no reservation");
    json_decref(j);
    j = api_get_json(port, "/v1/reservations/", key, 400);
    error_is(j, "ref", "empty");
    json_decref(j);
    j = api_get_json(port, "/v1/reservations/a%zz", key, 400);
    error_is(j, "path", "percent-encoding");
    json_decref(j);
    j = api_get_json(port, "/v1/reservations/a%01", key, 400);
    error_is(j, "ref", "");
    json_decref(j);
    char big[128] = "/v1/reservations/";
    for (size_t i = strlen(big); i < 17 + 65; i++)
        big[i] = 'x';
    j = api_get_json(port, big, key, 400); /* 65 bytes */
    error_is(j, "ref", "");
    json_decref(j);
    j = api_get_json(port, "/v1/reservations/order-1?x=1", key, 400);
    error_is(j, "query", "'x'");
    json_decref(j);

    /* scope: read or admin; ingest is 403, no key 401, not GET 405 */
    j = api_get_json(port, "/v1/reservations/order-1", feeder, 403);
    error_is(j, "authorization", "scope");
    json_decref(j);
    j = api_get_json(port, "/v1/reservations/order-1", NULL, 401);
    error_is(j, "authorization", "missing");
    json_decref(j);
    api_resp r;
    cr_assert_eq(api_req(port, "POST", "/v1/reservations/order-1", key, &r), 405);
    api_resp_free(&r);
    cr_assert_eq(api_req(port, "HEAD", "/v1/reservations/order-1", key, &r), 200);
    cr_assert_eq(r.len, 0);
    api_resp_free(&r);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);

    /* the real clock: cart-9 expired at 11:00 on 2026-11-20 (in the past
     * unless the host clock is older than that) */
    port = api_start("api-resv-real.log", NULL, &pid);
    bool past = (long long)time(NULL) * 1000 > 1795172400000LL;
    j = resv_get(port, "cart-9", key, "cart-9", 2, 3);
    cr_assert_eq(
        json_is_true(json_object_get(json_array_get(json_object_get(j, "lines"), 0), "expired")),
        past);
    json_decref(j);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

Test(api, reservation_gauges_exact_before_and_after_expiry)
{
    resv_load();
    char key[128];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = resv_api_start("api-resv-metrics.log", &pid);
    api_resp r;
    /* outstanding 1 (o1) + 3 + 2 (order-1) + 2 + 1 (cart-9) + 2 (keep-1) +
     * 0 (web/42); open: 6 lines; expired: cart-9's two lines */
    cr_assert_eq(api_get(port, "/metrics", key, &r), 200);
    cr_assert_eq(metric(r.body, "stockflow_reservations_outstanding"), 11, "%s", r.body);
    cr_assert_eq(metric(r.body, "stockflow_reservations_open"), 6);
    cr_assert_eq(metric(r.body, "stockflow_reservations_expired"), 2);
    cr_assert(strstr(r.body, "# TYPE stockflow_reservations_outstanding gauge\n"));
    cr_assert(strstr(r.body, "# TYPE stockflow_reservations_open gauge\n"));
    cr_assert(strstr(r.body, "# TYPE stockflow_reservations_expired gauge\n"));
    api_resp_free(&r);

    /* the reconciler at the same clock releases cart-9: no longer expired */
    setenv("INV_NOW_MS", RESV_NOW, 1);
    const char *rec[] = {"inv-reconciler", "--drain", NULL};
    api_run_ok(rec);
    unsetenv("INV_NOW_MS");
    sc_drain(1);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger WHERE source = 'reservation-expiry'"),
                 2);
    json_t *j = resv_get(port, "cart-9", key, "cart-9", 2, 0);
    json_t *lines = json_object_get(j, "lines");
    assert_line(json_array_get(lines, 0), "SKU-A", "STORE-NYC", 2, 2, 0, 0,
                "2026-11-20T11:00:00.000Z", false, false);
    assert_line(json_array_get(lines, 1), "SKU-B", "STORE-NYC", 1, 1, 0, 0,
                "2026-11-20T11:00:00.000Z", false, false);
    json_decref(j);
    cr_assert_eq(api_get(port, "/metrics", key, &r), 200);
    cr_assert_eq(metric(r.body, "stockflow_reservations_outstanding"), 8, "%s", r.body);
    cr_assert_eq(metric(r.body, "stockflow_reservations_open"), 4);
    cr_assert_eq(metric(r.body, "stockflow_reservations_expired"), 0);
    cr_assert_eq(metric(r.body, "inv_api_requests_total{route=\"reservation\",status=\"200\"}"), 1);
    api_resp_free(&r);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}

Test(api, metrics_count_every_request_exactly)
{
    api_load_data();
    char key[128];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = api_start("api-metrics.log", NULL, &pid); /* 4 threads: counts are summed */
    for (int i = 0; i < 7; i++)
        json_decref(api_get_json(port, "/v1/stock/SKU-A", key, 200));
    for (int i = 0; i < 3; i++)
        json_decref(api_get_json(port, "/v1/stock/NOPE", key, 404));
    json_decref(api_get_json(port, "/v1/stock/SKU-A", NULL, 401));
    json_decref(api_get_json(port, "/v1/ledger/SKU-A?limit=0", key, 400));
    json_decref(api_get_json(port, "/nope", key, 404));
    json_decref(api_get_json(port, "/healthz", NULL, 200));
    api_resp r;
    cr_assert_eq(api_get(port, "/metrics", key, &r), 200);
    char ct[128];
    cr_assert(!strncmp(api_header(&r, "Content-Type", ct, sizeof ct), "text/plain", 10));
    cr_assert_eq(metric(r.body, "inv_api_requests_total{route=\"stock\",status=\"200\"}"), 7);
    cr_assert_eq(metric(r.body, "inv_api_requests_total{route=\"stock\",status=\"404\"}"), 3);
    cr_assert_eq(metric(r.body, "inv_api_requests_total{route=\"stock\",status=\"401\"}"), 1);
    cr_assert_eq(metric(r.body, "inv_api_requests_total{route=\"ledger\",status=\"400\"}"), 1);
    cr_assert_eq(metric(r.body, "inv_api_requests_total{route=\"unknown\",status=\"404\"}"), 1);
    cr_assert_eq(metric(r.body, "inv_api_requests_total{route=\"healthz\",status=\"200\"}"), 1);
    cr_assert_eq(metric(r.body, "inv_api_request_duration_seconds_count{route=\"stock\"}"), 11);
    cr_assert_eq(
        metric(r.body, "inv_api_request_duration_seconds_bucket{route=\"stock\",le=\"+Inf\"}"), 11);
    cr_assert_eq(metric(r.body, "inv_api_keys{source=\"table\"}"), 1);
    cr_assert_eq(metric(r.body, "inv_api_threads"), 4);
    /* API_DATA holds o1 only: 1 outstanding, open, never expiring */
    cr_assert_eq(metric(r.body, "stockflow_reservations_outstanding"), 1);
    cr_assert_eq(metric(r.body, "stockflow_reservations_open"), 1);
    cr_assert_eq(metric(r.body, "stockflow_reservations_expired"), 0);
    /* buckets are cumulative */
    long long prev = 0;
    const char *les[] = {"0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                         "0.05",    "0.1",    "0.25",  "0.5",    "1",     "+Inf"};
    for (size_t i = 0; i < sizeof les / sizeof *les; i++) {
        char s[160];
        snprintf(s, sizeof s, "inv_api_request_duration_seconds_bucket{route=\"stock\",le=\"%s\"}",
                 les[i]);
        long long v = metric(r.body, s);
        cr_assert(v >= prev, "%s: %lld < %lld", s, v, prev);
        prev = v;
    }
    api_resp_free(&r);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}
