/*
 * Least privilege on the broker (docs/security.md "Broker accounts and
 * permissions"): against a secured nats-server started here by
 * `stack.sh nats-start --secure` (its own STACK_DIR, ports = the suite's + 17,
 * so the open stack of the other tests is left alone), every service user
 * may publish only its own subjects. Each denial is proven three ways: the
 * publish fails with SF_EDENIED naming the server's "Permissions Violation",
 * a real service binary logs it and exits 1, and the stock is unchanged
 * (ledger and positions hold only the allowed events). The allowed paths
 * run end to end with the per-service users: inv-supplier, inv-ingest and
 * inv-consumer (DLQ included).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "codec.h"
#include "fixture.h"
#include "stockcheck.h"

#define SEC_PORT_OFFSET 17
#define SEC_JS_WAIT_MS 1000

static void sec_init(void)
{
    char dir[1024], port[16], mon[16];
    snprintf(dir, sizeof dir, "%s/secure-broker", fx_env("STACK_DIR"));
    snprintf(port, sizeof port, "%d", atoi(fx_env("NATS_PORT")) + SEC_PORT_OFFSET);
    snprintf(mon, sizeof mon, "%d", atoi(fx_env("NATS_MON_PORT")) + SEC_PORT_OFFSET);
    /* stack.sh and every child started below inherit these */
    setenv("STACK_DIR", dir, 1);
    setenv("NATS_PORT", port, 1);
    setenv("NATS_MON_PORT", mon, 1);
    setenv("STACK_SUPPLIERS", "acme:DC-EAST globex:DC-WEST", 1);
    fx_stack("nats-stop");
    fx_stack("nats-start --secure");
    char out[4096];
    const char *argv[] = {fx_env("SF_STACK"), "env", "--service", "invctl", NULL};
    cr_assert(fx_run(argv, NULL, out, sizeof out, 30000) == 0, "stack.sh env: %s", out);
    const char *p = strstr(out, "INV_NATS_URL=");
    cr_assert(p, "stack.sh env printed no INV_NATS_URL: %s", out);
    char url[512];
    cr_assert(sscanf(p + strlen("INV_NATS_URL="), "%511s", url) == 1);
    setenv("INV_NATS_URL", url, 1); /* fx_reset and invctl run as invctl */
    fx_reset();
}

static void sec_fini(void)
{
    fx_teardown();
    fx_stack("nats-stop");
}

TestSuite(secure_broker, .init = sec_init, .fini = sec_fini, .timeout = 240);

/* The INV_NATS_URL of user, from `stack.sh env --service user`, into buf. */
static const char *url_of(const char *user, char *buf, size_t size)
{
    char out[4096];
    const char *argv[] = {fx_env("SF_STACK"), "env", "--service", user, NULL};
    cr_assert(fx_run(argv, NULL, out, sizeof out, 30000) == 0, "stack.sh env --service %s: %s",
              user, out);
    const char *p = strstr(out, "INV_NATS_URL=");
    cr_assert(p, "no INV_NATS_URL for %s: %s", user, out);
    char fmt[16];
    snprintf(fmt, sizeof fmt, "%%%zus", size - 1);
    cr_assert(sscanf(p + strlen("INV_NATS_URL="), fmt, buf) == 1);
    cr_assert(strstr(buf, user), "URL for %s does not name the user", user);
    return buf;
}

/* Children started after this (fx_run, sc_drain) connect as user. */
static void run_as(const char *user)
{
    char url[512];
    setenv("INV_NATS_URL", url_of(user, url, sizeof url), 1);
}

static sf_broker *connect_as(const char *user)
{
    char url[512];
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = url_of(user, url, sizeof url);
    bo.js_wait_ms = SEC_JS_WAIT_MS; /* a refused publish waits this long for its ack */
    sf_broker *b = NULL;
    sf_error err;
    cr_assert(sf_broker_connect(&bo, &b, &err) == SF_OK, "connect as %s: %s", user, err.msg);
    return b;
}

/* Encode and publish one event; returns the status, err filled. */
static sf_status publish_event(sf_broker *b, const char *id, sf_kind kind, const char *sku,
                               const char *loc, int64_t qty, int64_t at, sf_error *err)
{
    sf_event ev;
    sf_event_init(&ev);
    snprintf(ev.event_id, sizeof ev.event_id, "%s", id);
    ev.kind = kind;
    snprintf(ev.sku, sizeof ev.sku, "%s", sku);
    snprintf(ev.location, sizeof ev.location, "%s", loc);
    ev.qty = qty;
    ev.occurred_at = at;
    snprintf(ev.source, sizeof ev.source, "test-security");
    sf_codec *c = NULL;
    cr_assert(sf_codec_new(&c, err) == SF_OK, "%s", err->msg);
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = 0;
    char subject[SF_SUBJECT_MAX];
    cr_assert(sf_codec_encode_event(c, &ev, buf, sizeof buf, &len, err) == SF_OK, "%s", err->msg);
    sf_codec_free(c);
    cr_assert(sf_event_subject(&ev, subject, sizeof subject, err) == SF_OK, "%s", err->msg);
    return sf_broker_publish_sync(b, subject, id, NULL, 0, buf, len, NULL, err);
}

static void assert_denied(sf_status st, const sf_error *err, const char *subject)
{
    char want[256];
    snprintf(want, sizeof want, "Permissions Violation for Publish to \"%s\"", subject);
    cr_assert(st == SF_EDENIED, "publish to %s: want SF_EDENIED, got %d: %s", subject, (int)st,
              err->msg);
    cr_assert(strstr(err->msg, want), "publish to %s: error does not say '%s': %s", subject, want,
              err->msg);
}

static void assert_ok(sf_status st, const sf_error *err, const char *what)
{
    cr_assert(st == SF_OK, "%s: want SF_OK, got %d: %s", what, (int)st, err->msg);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static int64_t q(const char *fmt, const char *arg)
{
    char sql[512];
    snprintf(sql, sizeof sql, fmt, arg);
    return fx_query_i64(sql);
}

Test(secure_broker, anonymous_and_wrong_password_clients_are_refused)
{
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    char url[512], bad[600];
    snprintf(url, sizeof url, "nats://127.0.0.1:%s", getenv("NATS_PORT"));
    bo.urls = url;
    sf_broker *b = NULL;
    sf_error err;
    cr_assert(sf_broker_connect(&bo, &b, &err) != SF_OK, "anonymous connect succeeded");
    cr_assert(strstr(err.msg, "Authorization") || strstr(err.msg, "Authentication"), "%s", err.msg);
    snprintf(bad, sizeof bad, "nats://inv-api:wrong-password@127.0.0.1:%s", getenv("NATS_PORT"));
    bo.urls = bad;
    cr_assert(sf_broker_connect(&bo, &b, &err) != SF_OK, "wrong password accepted");
    cr_assert(!strstr(err.msg, "wrong-password"), "the password leaked into: %s", err.msg);
    cr_assert(strstr(err.msg, "inv-api:***@"), "URL not redacted in: %s", err.msg);
}

Test(secure_broker, supplier_publishes_only_counts_asns_receipts_at_its_locations)
{
    sf_broker *b = connect_as("supplier-acme");
    sf_error err;
    int64_t t = 1795000000000;
    assert_ok(publish_event(b, "sec-c1", SF_KIND_COUNT, "SEC-1", "DC-EAST", 40, t, &err), &err,
              "count at its location");
    assert_ok(publish_event(b, "sec-a1", SF_KIND_ASN, "SEC-1", "DC-EAST", 5, t + 1, &err), &err,
              "asn at its location");
    assert_ok(publish_event(b, "sec-r1", SF_KIND_RECEIPT, "SEC-1", "DC-EAST", 3, t + 2, &err), &err,
              "receipt at its location");
    assert_denied(publish_event(b, "sec-s1", SF_KIND_SALE, "SEC-1", "DC-EAST", 9, t + 3, &err),
                  &err, "inv.evt.sale.DC-EAST");
    assert_denied(publish_event(b, "sec-j1", SF_KIND_ADJUST, "SEC-1", "DC-EAST", -9, t + 3, &err),
                  &err, "inv.evt.adjust.DC-EAST");
    assert_denied(publish_event(b, "sec-c2", SF_KIND_COUNT, "SEC-1", "DC-WEST", 99, t, &err), &err,
                  "inv.evt.count.DC-WEST");
    cr_assert(sf_broker_permission_errors(b) == 3, "server reported %llu violations, want 3",
              (unsigned long long)sf_broker_permission_errors(b));
    /* refused again at once, without waiting for an ack */
    int64_t t0 = fx_now_ms();
    assert_denied(publish_event(b, "sec-s2", SF_KIND_SALE, "SEC-1", "DC-EAST", 9, t + 3, &err),
                  &err, "inv.evt.sale.DC-EAST");
    cr_assert(fx_now_ms() - t0 < SEC_JS_WAIT_MS / 2, "a known refusal waited %lld ms",
              (long long)(fx_now_ms() - t0));
    sf_broker_close(b);

    run_as("inv-consumer");
    sc_drain(1);
    cr_assert(q("SELECT count(*) FROM ledger WHERE sku = '%s'", "SEC-1") == 3);
    cr_assert(q("SELECT on_hand FROM positions WHERE sku = '%s' AND location = 'DC-EAST'",
                "SEC-1") == 43);
    cr_assert(q("SELECT count(*) FROM positions WHERE sku = '%s' AND location = 'DC-WEST'",
                "SEC-1") == 0);
    cr_assert(q("SELECT count(*) FROM ledger WHERE sku = '%s' AND kind IN ('SALE','ADJUST')",
                "SEC-1") == 0);
}

Test(secure_broker, supplier_binary_events_carry_its_source_and_a_refusal_is_logged)
{
    char cfg[1024], feed[1024], out[16384];
    sc_tmp("sec-suppliers.ini", cfg, sizeof cfg);
    sc_tmp("sec-acme.jsonl", feed, sizeof feed);
    FILE *f = fopen(cfg, "w");
    cr_assert(f, "cannot write %s", cfg);
    fputs("[supplier.acme]\nformat = jsonl\n"
          "fields = sku=/sku, qty=/qty, uom=/uom, location=/wh, occurred_at=/at, kind=/type\n"
          "location_map = RC-1=DC-EAST, RC-2=DC-WEST\nsku_map = identity\n",
          f);
    fclose(f);
    f = fopen(feed, "w");
    cr_assert(f, "cannot write %s", feed);
    fputs("{\"sku\":\"SEC-SUP\",\"qty\":40,\"uom\":\"EA\",\"wh\":\"RC-1\","
          "\"at\":\"2026-11-20T07:00:00Z\",\"type\":\"count\"}\n"
          "{\"sku\":\"SEC-SUP\",\"qty\":7,\"uom\":\"EA\",\"wh\":\"RC-2\","
          "\"at\":\"2026-11-20T07:00:00Z\",\"type\":\"count\"}\n",
          f);
    fclose(f);

    run_as("supplier-acme");
    const char *argv[] = {"inv-supplier", "--config", cfg,           "--supplier", "acme",
                          "--file",       feed,       "--retry-for", "5",          NULL};
    int rc = fx_run(argv, NULL, out, sizeof out, 60000);
    cr_assert(rc == 1, "inv-supplier: want exit 1 (one event refused), got %d:\n%s", rc, out);
    cr_assert(strstr(out, "Permissions Violation for Publish to \"inv.evt.count.DC-WEST\""),
              "the refusal is not logged:\n%s", out);
    cr_assert(strstr(out, "ERROR"), "not logged as an error:\n%s", out);

    run_as("inv-consumer");
    sc_drain(1);
    cr_assert(q("SELECT count(*) FROM ledger WHERE sku = '%s'", "SEC-SUP") == 1);
    cr_assert(q("SELECT count(*) FROM ledger WHERE sku = '%s' AND source = 'acme' "
                "AND location = 'DC-EAST'",
                "SEC-SUP") == 1,
              "the supplier's event does not carry its source");
    cr_assert(q("SELECT on_hand FROM positions WHERE sku = '%s' AND location = 'DC-EAST'",
                "SEC-SUP") == 40);
    cr_assert(q("SELECT count(*) FROM positions WHERE sku = '%s' AND location = 'DC-WEST'",
                "SEC-SUP") == 0);
}

Test(secure_broker, ingest_publishes_events_only_and_a_consumer_may_not)
{
    sf_broker *b = connect_as("inv-ingest");
    sf_error err;
    assert_ok(publish_event(b, "sec-i1", SF_KIND_SALE, "SEC-I", "STORE-1", 2, 1795000000000, &err),
              &err, "ingest publishes a sale");
    uint8_t junk[] = {1, 2, 3};
    assert_denied(
        sf_broker_publish_sync(b, "inv.dlq.decode", "sec-j", NULL, 0, junk, 3, NULL, &err), &err,
        "inv.dlq.decode");
    assert_denied(sf_broker_publish_sync(b, "inv.chan.web", "sec-w", NULL, 0, junk, 3, NULL, &err),
                  &err, "inv.chan.web");
    sf_broker_close(b);

    char ok_file[1024], bad_file[1024], out[16384];
    sc_tmp("sec-ingest-ok.jsonl", ok_file, sizeof ok_file);
    sc_tmp("sec-ingest-bad.jsonl", bad_file, sizeof bad_file);
    write_file(ok_file, "{\"event_id\":\"sec-i2\",\"kind\":\"receipt\",\"sku\":\"SEC-I\","
                        "\"location\":\"STORE-1\",\"qty\":10,\"occurred_at\":1795000000001}\n");
    write_file(bad_file, "{\"event_id\":\"sec-i3\",\"kind\":\"sale\",\"sku\":\"SEC-I\","
                         "\"location\":\"STORE-1\",\"qty\":5,\"occurred_at\":1795000000002}\n");
    run_as("inv-ingest");
    const char *ok_argv[] = {"inv-ingest", "--file", ok_file, NULL};
    int rc = fx_run(ok_argv, NULL, out, sizeof out, 60000);
    cr_assert(rc == 0, "inv-ingest as inv-ingest: exit %d:\n%s", rc, out);

    run_as("inv-consumer");
    const char *bad_argv[] = {"inv-ingest", "--file", bad_file, NULL};
    int64_t t0 = fx_now_ms();
    rc = fx_run(bad_argv, NULL, out, sizeof out, 60000);
    cr_assert(rc == 1, "inv-ingest as inv-consumer: want exit 1, got %d:\n%s", rc, out);
    cr_assert(strstr(out, "ERROR") &&
                  strstr(out, "Permissions Violation for Publish to \"inv.evt.sale.STORE-1\""),
              "the refusal is not logged as an error:\n%s", out);
    cr_assert(strstr(out, "1 failed"), "not counted as failed:\n%s", out);
    cr_assert(fx_now_ms() - t0 < 20000, "a refused publish took %lld ms",
              (long long)(fx_now_ms() - t0));

    sc_drain(1);
    cr_assert(q("SELECT count(*) FROM ledger WHERE sku = '%s'", "SEC-I") == 2);
    cr_assert(q("SELECT count(*) FROM ledger WHERE event_id = '%s'", "sec-i3") == 0);
    cr_assert(
        q("SELECT on_hand FROM positions WHERE sku = '%s' AND location = 'STORE-1'", "SEC-I") == 8);
}

Test(secure_broker, consumer_applies_and_sidelines_but_publishes_no_event)
{
    sf_broker *c = connect_as("inv-consumer");
    sf_error err;
    assert_denied(
        publish_event(c, "sec-x1", SF_KIND_RECEIPT, "SEC-C", "STORE-1", 100, 1795000000000, &err),
        &err, "inv.evt.receipt.STORE-1");
    sf_broker_close(c);

    sf_broker *b = connect_as("inv-ingest");
    uint8_t junk[] = {0xC3, 0x01, 0xde, 0xad};
    assert_ok(sf_broker_publish_sync(b, "inv.evt.sale.STORE-1", "sec-junk", NULL, 0, junk,
                                     sizeof junk, NULL, &err),
              &err, "ingest publishes an undecodable message");
    assert_ok(
        publish_event(b, "sec-x2", SF_KIND_RECEIPT, "SEC-C", "STORE-1", 4, 1795000000000, &err),
        &err, "ingest publishes a receipt");
    sf_broker_close(b);

    run_as("inv-consumer");
    sc_drain(1);
    cr_assert(q("SELECT count(*) FROM ledger WHERE sku = '%s'", "SEC-C") == 1);
    cr_assert(
        q("SELECT on_hand FROM positions WHERE sku = '%s' AND location = 'STORE-1'", "SEC-C") == 4);
    sf_broker *a = connect_as("invctl");
    uint64_t dlq = 0;
    cr_assert(sf_broker_stream_info(a, SF_STREAM_DLQ, &dlq, NULL, NULL, NULL, &err) == SF_OK, "%s",
              err.msg);
    cr_assert(dlq == 1, "INV_DLQ holds %llu messages, want the 1 sidelined by the consumer",
              (unsigned long long)dlq);
    sf_broker_close(a);
}

Test(secure_broker, reconciler_publishes_channels_and_releases_only)
{
    sf_broker *b = connect_as("inv-reconciler");
    sf_error err;
    uint8_t junk[] = {1};
    assert_ok(sf_broker_publish_sync(b, "inv.chan.web", "sec-ch1", NULL, 0, junk, 1, NULL, &err),
              &err, "reconciler publishes a channel update");
    assert_ok(
        publish_event(b, "sec-rel", SF_KIND_RELEASE, "SEC-R", "STORE-1", 1, 1795000000000, &err),
        &err, "reconciler publishes an expiry release");
    assert_denied(
        publish_event(b, "sec-r2", SF_KIND_RECEIPT, "SEC-R", "STORE-1", 50, 1795000000000, &err),
        &err, "inv.evt.receipt.STORE-1");
    sf_broker_close(b);
}

Test(secure_broker, api_only_reads_and_only_invctl_changes_streams)
{
    sf_error err;
    sf_broker *a = connect_as("invctl");
    assert_ok(
        publish_event(a, "sec-keep", SF_KIND_RECEIPT, "SEC-K", "STORE-1", 1, 1795000000000, &err),
        &err, "invctl publishes");
    sf_broker_close(a);

    sf_broker *api = connect_as("inv-api");
    uint64_t msgs = 0;
    cr_assert(sf_broker_stream_info(api, SF_STREAM_EVENTS, &msgs, NULL, NULL, NULL, &err) == SF_OK,
              "the API may read stream info: %s", err.msg);
    cr_assert(msgs == 1);
    assert_denied(
        publish_event(api, "sec-api", SF_KIND_SALE, "SEC-K", "STORE-1", 1, 1795000000000, &err),
        &err, "inv.evt.sale.STORE-1");
    sf_broker_close(api);

    const char *users[] = {"inv-ingest", "inv-consumer", "inv-reconciler", "inv-api",
                           "supplier-acme"};
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        sf_broker *b = connect_as(users[i]);
        sf_status st = sf_broker_delete_stream(b, SF_STREAM_EVENTS, &err);
        cr_assert(st != SF_OK, "%s deleted INV_EVENTS", users[i]);
        st = sf_broker_delete_stream(b, SF_STREAM_DLQ, &err);
        cr_assert(st != SF_OK, "%s deleted INV_DLQ", users[i]);
        cr_assert(sf_broker_permission_errors(b) == 2,
                  "%s: the server reported %llu violations, want 2", users[i],
                  (unsigned long long)sf_broker_permission_errors(b));
        sf_broker_close(b);
    }
    a = connect_as("invctl");
    msgs = 0;
    cr_assert(sf_broker_stream_info(a, SF_STREAM_EVENTS, &msgs, NULL, NULL, NULL, &err) == SF_OK,
              "INV_EVENTS is gone: %s", err.msg);
    cr_assert(msgs == 1, "INV_EVENTS holds %llu messages, want 1", (unsigned long long)msgs);
    cr_assert(sf_broker_stream_info(a, SF_STREAM_DLQ, NULL, NULL, NULL, NULL, &err) == SF_OK,
              "INV_DLQ is gone: %s", err.msg);
    sf_broker_close(a);
}

Test(secure_broker, reconciler_and_api_binaries_work_with_their_users)
{
    char out[16384];
    sf_error err;
    sf_broker *in = connect_as("inv-ingest");
    assert_ok(
        publish_event(in, "sec-e1", SF_KIND_RECEIPT, "SEC-E", "STORE-1", 12, 1795000000000, &err),
        &err, "ingest publishes a receipt");
    sf_broker_close(in);
    run_as("inv-consumer");
    sc_drain(1);

    run_as("invctl");
    const char *add[] = {"invctl", "channel", "add", "web", "--locations", "STORE-1", NULL};
    int rc = fx_run(add, NULL, out, sizeof out, 30000);
    cr_assert(rc == 0, "invctl channel add: exit %d:\n%s", rc, out);

    run_as("inv-reconciler");
    const char *full[] = {"inv-reconciler", "full-sync", "--json", NULL};
    rc = fx_run(full, NULL, out, sizeof out, 60000);
    cr_assert(rc == 0, "inv-reconciler full-sync as inv-reconciler: exit %d:\n%s", rc, out);
    cr_assert(!strstr(out, "Permissions Violation"), "%s", out);
    sf_broker *a = connect_as("invctl");
    uint64_t chan = 0;
    cr_assert(sf_broker_stream_info(a, SF_STREAM_CHANNEL, &chan, NULL, NULL, NULL, &err) == SF_OK,
              "%s", err.msg);
    cr_assert(chan >= 1, "the reconciler published nothing to INV_CHANNEL");
    sf_broker_close(a);
    cr_assert(q("SELECT ats FROM channel_stock WHERE channel = 'web' AND sku = '%s' "
                "ORDER BY version DESC LIMIT 1",
                "SEC-E") == 12);

    /* inv-api with its read-only user: /healthz sees NATS up */
    run_as("inv-api");
    char cfg[1024], log[1024], text[512], script[1024];
    int port = atoi(fx_env("NATS_PORT")) + 8, ops = port + 1; /* suite + 25..27 */
    snprintf(text, sizeof text,
             "[api]\nlisten = 127.0.0.1:%d\n[ops]\nendpoint = tcp://127.0.0.1:%d\n"
             "sub_endpoint = tcp://127.0.0.1:%d\n",
             port, ops, ops + 1);
    write_file(sc_tmp("sec-api.ini", cfg, sizeof cfg), text);
    const char *api[] = {"inv-api", "--config", cfg, NULL};
    fx_spawn(api, sc_tmp("sec-api.log", log, sizeof log));
    snprintf(script, sizeof script,
             "for i in $(seq 100); do b=$(curl -s 'http://127.0.0.1:%d/healthz') && break; "
             "sleep 0.1; done; echo \"$b\"",
             port);
    const char *sh[] = {"/bin/sh", "-c", script, NULL};
    cr_assert(fx_run(sh, NULL, out, sizeof out, 30000) == 0, "%s", out);
    cr_assert(strstr(out, "\"nats\": \"ok\"") || strstr(out, "\"nats\":\"ok\""),
              "inv-api as inv-api does not see NATS: %s (log %s)", out, log);
}
