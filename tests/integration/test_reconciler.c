/*
 * The continuous reconciler on the real stack: exact ats for channels over
 * several locations with safety stock and buffers (a negative location
 * counts as 0, never against the others); only changes are published; two
 * reconcilers side by side never publish one version twice nor two values
 * under one version; a crash between publish and record, and kill -9 under
 * load, leave the channel stream consistent and converged; invctl channel
 * watch reads the stream as a connector would, resumably.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "codec.h"
#include "fixture.h"
#include "stockcheck.h"

TestSuite(reconciler, .init = fx_reset, .fini = fx_teardown, .timeout = 300);

static void run_ok(const char *const argv[])
{
    char out[16384];
    int rc = fx_run(argv, NULL, out, sizeof out, 120000);
    cr_assert(rc == 0, "%s exited %d: %s", argv[0], rc, out);
}

static void ingest_text(const char *name, const char *text)
{
    char path[512], out[8192];
    sc_tmp(name, path, sizeof path);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
    sc_ingest(path, out, sizeof out);
}

static void reconcile(void)
{
    const char *argv[] = {"inv-reconciler", "--drain", NULL};
    run_ok(argv);
}

static int64_t ats(const char *channel, const char *sku)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT ats FROM channel_stock WHERE channel = '%s' AND sku = '%s' AND state = "
             "'sent' ORDER BY version DESC LIMIT 1",
             channel, sku);
    return fx_query_i64(sql);
}

static uint64_t channel_msgs(void)
{
    jsStreamInfo *si = NULL;
    cr_assert(js_GetStreamInfo(&si, fx_js(), "INV_CHANNEL", NULL, NULL) == NATS_OK);
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

/* Every channel's latest version equals the ats computed now. */
static void assert_converged(void)
{
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM dirty"), 0);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM channel_stock WHERE state = 'pending'"), 0);
    cr_assert_eq(
        fx_query_i64("WITH latest AS (SELECT DISTINCT ON (channel, sku) channel, sku, ats"
                     " FROM channel_stock ORDER BY channel, sku, version DESC),"
                     " want AS (SELECT * FROM sf_channel_ats(ARRAY(SELECT DISTINCT sku FROM"
                     " positions)))"
                     " SELECT count(*) FROM want w LEFT JOIN latest l USING (channel, sku)"
                     " WHERE COALESCE(l.ats, -1) <> w.ats"),
        0, "some channel was told a value that is not the stock's");
    /* One stored message per recorded version: none lost, none twice. */
    cr_assert_eq((int64_t)channel_msgs(), fx_query_i64("SELECT count(*) FROM channel_stock"));
}

static void setup_channels(void)
{
    const char *loc[] = {"invctl", "location", "set", "STORE-BOS", "--safety-stock", "3", NULL};
    const char *web[] = {"invctl",      "channel",           "add", "web", "--buffer", "2",
                         "--locations", "DC-EAST,STORE-NYC", NULL};
    const char *pos[] = {"invctl", "channel", "add", "pos-bos", "--locations", "STORE-BOS", NULL};
    const char *mkt[] = {"invctl",   "channel", "add",         "market",
                         "--buffer", "5",       "--locations", "DC-EAST,STORE-NYC,STORE-BOS",
                         NULL};
    run_ok(loc);
    run_ok(web);
    run_ok(pos);
    run_ok(mkt);
}

#define EV(id, kind, sku, loc, qty, extra)                                                         \
    "{\"event_id\":\"" id "\",\"kind\":\"" kind "\",\"sku\":\"" sku "\",\"location\":\"" loc       \
    "\",\"qty\":" #qty ",\"occurred_at\":\"2026-11-20T10:00:00Z\",\"source\":\"t\"" extra "}\n"

static const char BASE[] =
    EV("a1", "RECEIPT", "SKU-A", "DC-EAST", 10, "") EV("a2", "RECEIPT", "SKU-A", "STORE-NYC", 4, "")
        EV("a3", "RESERVE", "SKU-A", "STORE-NYC", 1, ",\"ref\":\"o1\"")
            EV("a4", "RECEIPT", "SKU-A", "STORE-BOS", 5, "")
                EV("a5", "SALE", "SKU-A", "STORE-BOS", 1, "")
                    EV("b1", "RECEIPT", "SKU-B", "DC-EAST", 2, "")
                        EV("b2", "SALE", "SKU-B", "STORE-NYC", 3, "")
                            EV("b3", "RECEIPT", "SKU-B", "STORE-BOS", 2, "")
                                EV("c1", "RECEIPT", "SKU-C", "STORE-NYC", 20, "")
                                    EV("c2", "SALE", "SKU-C", "DC-EAST", 5, "");

Test(reconciler, ats_per_channel_exact)
{
    setup_channels();
    ingest_text("base.jsonl", BASE);
    sc_drain(1);
    reconcile();
    /* SKU-A: available DC-EAST 10, STORE-NYC 4-1 = 3, STORE-BOS 4-3 = 1. */
    cr_assert_eq(ats("web", "SKU-A"), 10 + 3 - 2);
    cr_assert_eq(ats("pos-bos", "SKU-A"), 1);
    cr_assert_eq(ats("market", "SKU-A"), 10 + 3 + 1 - 5);
    /* SKU-B: STORE-NYC -3 and STORE-BOS 2-3 count as 0, not against DC-EAST. */
    cr_assert_eq(ats("web", "SKU-B"), 0);
    cr_assert_eq(ats("pos-bos", "SKU-B"), 0);
    cr_assert_eq(ats("market", "SKU-B"), 0);
    /* SKU-C: DC-EAST -5 is floored: web = 20 - 2. */
    cr_assert_eq(ats("web", "SKU-C"), 18);
    cr_assert_eq(ats("market", "SKU-C"), 15);
    cr_assert_eq(ats("pos-bos", "SKU-C"), 0);
    cr_assert_eq(fx_query_i64("SELECT max(version) FROM channel_stock"), 1);
    assert_converged();

    /* The channel stream as a connector reads it. */
    char out[16384];
    const char *watch[] = {"invctl", "channel", "watch", "web", "--json", "--drain", NULL};
    cr_assert_eq(fx_run(watch, NULL, out, sizeof out, 60000), 0, "%s", out);
    int lines = 0, found = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        if (!j)
            continue; /* log lines */
        lines++;
        cr_assert(!strcmp(json_string_value(json_object_get(j, "channel")), "web"));
        if (!strcmp(json_string_value(json_object_get(j, "sku")), "SKU-C")) {
            found = 1;
            cr_assert_eq(json_integer_value(json_object_get(j, "ats")), 18);
            cr_assert_eq(json_integer_value(json_object_get(j, "version")), 1);
        }
        json_decref(j);
    }
    cr_assert_eq(lines, 3);
    cr_assert(found);
    /* Resumable: the durable cursor is past them now. */
    cr_assert_eq(fx_run(watch, NULL, out, sizeof out, 60000), 0, "%s", out);
    cr_assert_null(strstr(out, "\"sku\""), "re-read: %s", out);
}

Test(reconciler, only_changes_are_published)
{
    setup_channels();
    ingest_text("base.jsonl", BASE);
    sc_drain(1);
    reconcile();
    uint64_t before = channel_msgs();
    cr_assert_eq(before, 9);
    /* Everything recomputed, nothing changed: nothing published. */
    char out[8192];
    const char *full[] = {"inv-reconciler", "full-sync", "--json", NULL};
    cr_assert_eq(fx_run(full, NULL, out, sizeof out, 60000), 0, "%s", out);
    cr_assert(strstr(out, "\"published\":0"), "%s", out);
    cr_assert_eq(channel_msgs(), before);
    /* One sale at DC-EAST moves web and market, not pos-bos. */
    ingest_text("sale.jsonl", EV("a6", "SALE", "SKU-A", "DC-EAST", 1, ""));
    sc_drain(1);
    reconcile();
    cr_assert_eq(channel_msgs(), before + 2);
    cr_assert_eq(ats("web", "SKU-A"), 9 + 3 - 2);
    cr_assert_eq(ats("market", "SKU-A"), 9 + 3 + 1 - 5);
    cr_assert_eq(fx_query_i64("SELECT max(version) FROM channel_stock WHERE sku = 'SKU-A'"
                              " AND channel = 'web'"),
                 2);
    /* Lower safety stock at STORE-BOS: pos-bos and market move for SKU-A,
     * pos-bos for SKU-B (2 - 1 = 1), market for SKU-B stays 0. */
    const char *loc[] = {"invctl", "location", "set", "STORE-BOS", "--safety-stock", "1", NULL};
    run_ok(loc);
    reconcile();
    cr_assert_eq(ats("pos-bos", "SKU-A"), 3);
    cr_assert_eq(ats("market", "SKU-A"), 9 + 3 + 3 - 5);
    cr_assert_eq(ats("pos-bos", "SKU-B"), 1);
    cr_assert_eq(channel_msgs(), before + 2 + 3);
    assert_converged();
}

static void workload_channels(void)
{
    const char *web[] = {"invctl",   "channel", "add",         "web",
                         "--buffer", "1",       "--locations", "LOC-0,LOC-1,LOC-2,LOC-3",
                         NULL};
    const char *pos[] = {"invctl", "channel", "add", "pos", "--locations", "LOC-2", NULL};
    const char *loc[] = {"invctl", "location", "set", "LOC-1", "--safety-stock", "2", NULL};
    run_ok(web);
    run_ok(pos);
    run_ok(loc);
}

static bool settled(void *arg)
{
    (void)arg;
    return fx_query_i64("SELECT (SELECT count(*) FROM dirty) + (SELECT count(*) FROM "
                        "channel_stock WHERE state = 'pending')") == 0;
}

Test(reconciler, two_reconcilers_never_publish_a_version_twice)
{
    workload_channels();
    char path[512], out[8192];
    sc_tmp("work.jsonl", path, sizeof path);
    sc_gen(path, 11, 20000, 300, 4);
    const char *rec[] = {"inv-reconciler", NULL};
    pid_t r1 = fx_spawn(rec, NULL), r2 = fx_spawn(rec, NULL);
    sc_ingest(path, out, sizeof out);
    sc_drain(2);
    cr_assert(fx_wait_until(settled, NULL, 60000), "reconcilers did not settle");
    cr_assert_eq(fx_stop(r1, SIGTERM, 10000), 0);
    cr_assert_eq(fx_stop(r2, SIGTERM, 10000), 0);
    assert_converged();
    /* Versions of one (channel, sku) are 1..n without a gap or a repeat. */
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM (SELECT channel, sku FROM channel_stock"
                              " GROUP BY channel, sku HAVING max(version) <> count(*)) x"),
                 0);
    cr_assert(fx_query_i64("SELECT count(*) FROM channel_stock") > 300);
}

/* A crash after the version was recorded and published, before it was
 * marked sent: the restart republishes the same id, JetStream drops it. */
Test(reconciler, crash_between_publish_and_record_republishes_same_id)
{
    setup_channels();
    ingest_text("base.jsonl", BASE);
    sc_drain(1);
    fx_exec("BEGIN; SELECT * FROM sf_reconcile_claim(1000, 1795000000000); COMMIT");
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM channel_stock WHERE state = 'pending'"), 9);
    /* Publish one of them as the dead reconciler had. */
    sf_codec *codec = NULL;
    sf_error err;
    cr_assert(sf_codec_new(&codec, &err) == SF_OK);
    sf_channel_stock cs = {
        .channel = "web", .sku = "SKU-C", .ats = 18, .version = 1, .computed_at = 1795000000000};
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = 0;
    cr_assert(sf_codec_encode_channel_stock(codec, &cs, buf, sizeof buf, &len, &err) == SF_OK);
    sf_codec_free(codec);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = "web:SKU-C:1";
    cr_assert(js_Publish(NULL, fx_js(), "inv.chan.web", buf, (int)len, &po, NULL) == NATS_OK);
    cr_assert_eq(channel_msgs(), 1);
    reconcile();
    cr_assert_eq(channel_msgs(), 9, "the republished web:SKU-C:1 must be a duplicate");
    cr_assert_eq(ats("web", "SKU-C"), 18);
    assert_converged();
}

Test(reconciler, kill_9_under_load_converges_without_conflicts)
{
    workload_channels();
    char path[512], out[8192];
    sc_tmp("work.jsonl", path, sizeof path);
    sc_gen(path, 12, 30000, 300, 4);
    const char *con[] = {"inv-consumer", NULL};
    const char *rec[] = {"inv-reconciler", NULL};
    pid_t c1 = fx_spawn(con, NULL);
    pid_t r = fx_spawn(rec, NULL);
    sc_ingest(path, out, sizeof out);
    for (int i = 0; i < 5; i++) {
        usleep(300 * 1000);
        fx_stop(r, SIGKILL, 10000);
        r = fx_spawn(rec, NULL);
    }
    cr_assert_eq(fx_stop(c1, SIGTERM, 30000), 0);
    sc_drain(1); /* whatever the consumer had not applied yet */
    cr_assert(fx_wait_until(settled, NULL, 90000), "did not settle after the kills");
    cr_assert_eq(fx_stop(r, SIGTERM, 10000), 0);
    reconcile(); /* republishes anything a kill left pending */
    assert_converged();
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM (SELECT channel, sku FROM channel_stock"
                              " GROUP BY channel, sku HAVING max(version) <> count(*)) x"),
                 0);
}
