/*
 * The whole path on the real stack: file -> inv-ingest -> JetStream ->
 * inv-consumer -> PostgreSQL, with exact numbers for the shipped examples.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "codec.h"
#include "fixture.h"
#include "stockcheck.h"

TestSuite(pipeline, .init = fx_reset, .fini = fx_teardown, .timeout = 300);

static const char *const EXAMPLES[] = {"examples/stock.jsonl", "examples/sales.jsonl",
                                       "examples/returns.csv"};

static int64_t col(const char *sku, const char *loc, const char *column)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM positions WHERE sku = '%s' AND location = '%s'",
             column, sku, loc);
    return fx_query_i64(sql);
}

static void ingest_examples(void)
{
    char out[8192];
    for (size_t i = 0; i < 3; i++)
        sc_ingest(EXAMPLES[i], out, sizeof out);
}

Test(pipeline, examples_give_exact_positions)
{
    ingest_examples();
    sc_drain(1);
    /* Worked by hand in README "What the demo prints". */
    cr_assert_eq(col("TSHIRT-BLK-M", "DC-EAST", "on_hand"), 98);
    cr_assert_eq(col("TSHIRT-BLK-M", "STORE-NYC", "on_hand"),
                 27); /* COUNT 27, -1 sale, +1 return */
    cr_assert_eq(col("TSHIRT-BLK-M", "STORE-NYC", "count_qty"), 27);
    cr_assert_eq(col("TSHIRT-BLK-M", "STORE-BOS", "on_hand"), 20);
    cr_assert_eq(col("MUG-WHT-12OZ", "DC-EAST", "on_hand"), 144);
    cr_assert_eq(col("MUG-WHT-12OZ", "DC-EAST", "inbound"), 50);
    cr_assert_eq(col("MUG-WHT-12OZ", "STORE-BOS", "on_hand"), 42);
    cr_assert_eq(col("MUG-WHT-12OZ", "STORE-BOS", "damaged"), 1);
    cr_assert_eq(col("LAMP-OAK-01", "STORE-NYC", "on_hand"), 5);
    cr_assert_eq(col("LAMP-OAK-01", "STORE-NYC", "reserved"), 1);
    cr_assert_eq(col("TSHIRT-BLK-M", "DC-EAST", "reserved"), 0); /* sale consumed order-7001 */
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger"), 20);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM dirty"), 3);

    sf_event *all = NULL;
    size_t n = 0;
    for (size_t i = 0; i < 3; i++) {
        sf_event *evs = NULL;
        size_t k = sc_load_events(EXAMPLES[i], &evs);
        all = realloc(all, (n + k) * sizeof *all);
        memcpy(all + n, evs, k * sizeof *evs);
        n += k;
        free(evs);
    }
    sf_model *m = sc_model_of(all, n);
    sc_assert_matches(m);
    sf_model_free(m);
    free(all);
}

Test(pipeline, same_file_twice_is_counted_once)
{
    char out[8192];
    sc_ingest("examples/stock.jsonl", out, sizeof out);
    cr_assert(strstr(out, "10 accepted, 0 duplicate, 0 rejected"), "%s", out);
    sc_ingest("examples/stock.jsonl", out, sizeof out);
    cr_assert(strstr(out, "0 accepted, 10 duplicate, 0 rejected"), "%s", out);
    sc_drain(1);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger"), 10);
    cr_assert_eq(col("TSHIRT-BLK-M", "DC-EAST", "on_hand"), 100);
}

/* JetStream's duplicate window is only an optimisation: an event that gets
 * past it (re-sent with another msg id, or after the window) is absorbed by
 * the ledger's primary key. */
Test(pipeline, ledger_absorbs_a_redelivered_event)
{
    char out[8192];
    sc_ingest("examples/stock.jsonl", out, sizeof out);
    sc_drain(1);
    int64_t before = col("TSHIRT-BLK-M", "DC-EAST", "on_hand");

    sf_event *evs = NULL;
    size_t n = sc_load_events("examples/stock.jsonl", &evs);
    sf_codec *codec = NULL;
    sf_broker *b = NULL;
    sf_error err;
    cr_assert(sf_codec_new(&codec, &err) == SF_OK, "%s", err.msg);
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = fx_env("INV_NATS_URL");
    cr_assert(sf_broker_connect(&bo, &b, &err) == SF_OK, "%s", err.msg);
    for (size_t i = 0; i < n; i++) {
        uint8_t buf[SF_CODEC_EVENT_MAX];
        size_t len;
        char subject[SF_SUBJECT_MAX], msg_id[128];
        uint64_t seq;
        cr_assert(sf_codec_encode_event(codec, &evs[i], buf, sizeof buf, &len, &err) == SF_OK);
        cr_assert(sf_event_subject(&evs[i], subject, sizeof subject, &err) == SF_OK);
        snprintf(msg_id, sizeof msg_id, "%s:again", evs[i].event_id);
        cr_assert(sf_broker_publish_sync(b, subject, msg_id, NULL, 0, buf, len, &seq, &err) ==
                      SF_OK,
                  "%s", err.msg);
    }
    sc_drain(1);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger"), 10);
    cr_assert_eq(col("TSHIRT-BLK-M", "DC-EAST", "on_hand"), before);
    sf_broker_close(b);
    sf_codec_free(codec);
    free(evs);
}

Test(pipeline, rejected_lines_are_reported_with_file_and_line)
{
    char path[512], rejects[512], out[8192];
    sc_tmp("bad.jsonl", path, sizeof path);
    sc_tmp("bad.rejects", rejects, sizeof rejects);
    FILE *f = fopen(path, "w");
    fputs("{\"event_id\":\"ok-1\",\"kind\":\"receipt\",\"sku\":\"A\",\"location\":\"L1\","
          "\"qty\":5,\"occurred_at\":\"2026-11-20T08:00:00Z\"}\n"
          "{\"event_id\":\"bad-1\",\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L1\","
          "\"qty\":-2,\"occurred_at\":\"2026-11-20T08:00:00Z\"}\n"
          "not json\n",
          f);
    fclose(f);
    remove(rejects);
    const char *argv[] = {"inv-ingest", "--file", path, "--rejects", rejects, NULL};
    int rc = fx_run(argv, NULL, out, sizeof out, 60000);
    cr_assert_eq(rc, 1, "a run with rejects exits 1: %s", out);
    cr_assert(strstr(out, "1 accepted, 0 duplicate, 2 rejected"), "%s", out);
    FILE *rf = fopen(rejects, "r");
    cr_assert(rf);
    char line[1024];
    cr_assert(fgets(line, sizeof line, rf));
    cr_assert(strstr(line, "bad.jsonl:2: ") && strstr(line, "qty"), "%s", line);
    cr_assert(fgets(line, sizeof line, rf));
    cr_assert(strstr(line, "bad.jsonl:3: "), "%s", line);
    fclose(rf);
}
