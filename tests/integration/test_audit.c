/*
 * inv-reconciler audit on the real stack: a clean pipeline has no drift; a
 * drift written straight into positions or reservations is reported field by
 * field with the exact stored and rebuilt values (table and --json) and exit
 * 1; --repair puts back exactly what the ledger says, marks the skus dirty
 * and leaves nothing for a second audit; audits and a repair running while
 * consumers apply never report false drift and never lose a consumer's
 * update.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "stockcheck.h"

TestSuite(audit, .init = fx_reset, .fini = fx_teardown, .timeout = 300);

/* Worked by hand: SKU-1@L1 on_hand 10 - 3 = 7, inbound 5 - 10 = -5 (raw: the
 * receipt has no ASN of its own), reserved 2 (o-1);
 * SKU-1@L2 on_hand 4; SKU-2@L1 COUNT 20 at 08:00 then a sale: 19. */
static const char SAMPLE[] =
    "{\"event_id\":\"r-1\",\"kind\":\"receipt\",\"sku\":\"SKU-1\",\"location\":\"L1\",\"qty\":10,"
    "\"occurred_at\":\"2026-11-20T08:00:00Z\"}\n"
    "{\"event_id\":\"s-1\",\"kind\":\"sale\",\"sku\":\"SKU-1\",\"location\":\"L1\",\"qty\":3,"
    "\"occurred_at\":\"2026-11-20T09:00:00Z\"}\n"
    "{\"event_id\":\"n-1\",\"kind\":\"asn\",\"sku\":\"SKU-1\",\"location\":\"L1\",\"qty\":5,"
    "\"occurred_at\":\"2026-11-20T09:00:00Z\"}\n"
    "{\"event_id\":\"v-1\",\"kind\":\"reserve\",\"sku\":\"SKU-1\",\"location\":\"L1\",\"qty\":2,"
    "\"occurred_at\":\"2026-11-20T09:30:00Z\",\"ref\":\"o-1\"}\n"
    "{\"event_id\":\"r-2\",\"kind\":\"receipt\",\"sku\":\"SKU-1\",\"location\":\"L2\",\"qty\":4,"
    "\"occurred_at\":\"2026-11-20T08:00:00Z\"}\n"
    "{\"event_id\":\"c-2\",\"kind\":\"count\",\"sku\":\"SKU-2\",\"location\":\"L1\",\"qty\":20,"
    "\"occurred_at\":\"2026-11-20T08:00:00Z\"}\n"
    "{\"event_id\":\"s-2\",\"kind\":\"sale\",\"sku\":\"SKU-2\",\"location\":\"L1\",\"qty\":1,"
    "\"occurred_at\":\"2026-11-20T09:00:00Z\"}\n";

#define COUNT_AT_MS "1795161600000" /* 2026-11-20T08:00:00Z */

/* What the injected drift must show, in the audit's order. */
static const char INJECTED_DRIFTS[] =
    "[{\"sku\":\"SKU-1\",\"location\":\"L1\",\"field\":\"on_hand\",\"stored\":100,\"rebuilt\":7},"
    " {\"sku\":\"SKU-1\",\"location\":\"L1\",\"field\":\"reserved\",\"stored\":5,\"rebuilt\":2},"
    " {\"sku\":\"SKU-1\",\"location\":\"L1\",\"field\":\"inbound\",\"stored\":0,\"rebuilt\":-5},"
    " {\"sku\":\"SKU-2\",\"location\":\"L1\",\"field\":\"on_hand\",\"stored\":null,\"rebuilt\":19},"
    " {\"sku\":\"SKU-2\",\"location\":\"L1\",\"field\":\"reserved\",\"stored\":null,\"rebuilt\":0},"
    " {\"sku\":\"SKU-2\",\"location\":\"L1\",\"field\":\"inbound\",\"stored\":null,\"rebuilt\":0},"
    " {\"sku\":\"SKU-2\",\"location\":\"L1\",\"field\":\"damaged\",\"stored\":null,\"rebuilt\":0},"
    " {\"sku\":\"SKU-2\",\"location\":\"L1\",\"field\":\"count_qty\",\"stored\":null,\"rebuilt\":"
    "20},"
    " {\"sku\":\"SKU-2\",\"location\":\"L1\",\"field\":\"count_at\",\"stored\":null,"
    "  \"rebuilt\":" COUNT_AT_MS "},"
    " {\"sku\":\"SKU-2\",\"location\":\"L1\",\"field\":\"count_event_id\",\"stored\":null,"
    "  \"rebuilt\":\"c-2\"}]";

static const char INJECTED_TABLE[] = "sku location field stored rebuilt\n"
                                     "SKU-1 L1 on_hand 100 7\n"
                                     "SKU-1 L1 reserved 5 2\n"
                                     "SKU-1 L1 inbound 0 -5\n"
                                     "SKU-2 L1 on_hand - 19\n"
                                     "SKU-2 L1 reserved - 0\n"
                                     "SKU-2 L1 inbound - 0\n"
                                     "SKU-2 L1 damaged - 0\n"
                                     "SKU-2 L1 count_qty - 20\n"
                                     "SKU-2 L1 count_at - " COUNT_AT_MS "\n"
                                     "SKU-2 L1 count_event_id - c-2\n"
                                     "3 positions checked, 10 drifts (0 repaired)\n";

static void ingest_sample(void)
{
    char path[512], out[8192];
    sc_tmp("audit-sample.jsonl", path, sizeof path);
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs(SAMPLE, f);
    fclose(f);
    sc_ingest(path, out, sizeof out);
    sc_drain(1);
}

static sf_model *sample_model(void)
{
    char path[512];
    sc_tmp("audit-sample.jsonl", path, sizeof path);
    sf_event *evs = NULL;
    size_t n = sc_load_events(path, &evs);
    sf_model *m = sc_model_of(evs, n);
    free(evs);
    return m;
}

static void inject_position_drift(void)
{
    fx_exec("UPDATE positions SET on_hand = 100, reserved = 5, inbound = 0"
            " WHERE sku = 'SKU-1' AND location = 'L1'");
    fx_exec("DELETE FROM positions WHERE sku = 'SKU-2' AND location = 'L1'");
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    cr_assert(buf);
    size_t n = fread(buf, 1, (size_t)len, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* inv-reconciler with args; its stdout (the result) comes back as a heap
 * string in *out, its stderr (progress, errors) in log. Returns the exit
 * status. */
static int reconciler(const char *const args[], char **out, char *log, size_t log_size)
{
    char path[512], bin[1024];
    sc_tmp("reconciler.stdout", path, sizeof path);
    snprintf(bin, sizeof bin, "%s/inv-reconciler", fx_env("SF_BIN"));
    const char *argv[16] = {"sh", "-c", "out=$1; shift; exec \"$@\" >\"$out\"", "sh", path, bin};
    size_t n = 6;
    for (size_t i = 0; args[i]; i++) {
        cr_assert(n < 15);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    remove(path);
    int rc = fx_run(argv, NULL, log, log_size, 120000);
    /* Under ASan/UBSan a finding exits 1, which an audit also means drift. */
    cr_assert(!strstr(log, "Sanitizer") && !strstr(log, "runtime error"), "%s", log);
    *out = slurp(path);
    return rc;
}

/* Runs of blanks become one space: the table's column widths are layout. */
static void squeeze(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == ' ' || *r == '\t') {
            while (r[1] == ' ' || r[1] == '\t')
                r++;
            if (r[1] == '\n' || r[1] == '\0' || w == s || w[-1] == '\n')
                continue;
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static json_t *parse_json(const char *text)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    cr_assert(doc, "not JSON (%s at line %d): %s", jerr.text, jerr.line, text);
    cr_assert(json_is_object(doc), "not a JSON object: %s", text);
    return doc;
}

static json_int_t json_int_field(const json_t *doc, const char *key)
{
    json_t *v = json_object_get(doc, key);
    cr_assert(json_is_integer(v), "\"%s\" is not an integer", key);
    return json_integer_value(v);
}

/* The drifts of doc equal the JSON array `want`, element by element. */
static void assert_drifts(const json_t *doc, const char *want)
{
    json_error_t jerr;
    json_t *expected = json_loads(want, 0, &jerr);
    cr_assert(expected, "bad expected JSON: %s", jerr.text);
    json_t *got = json_object_get(doc, "drifts");
    char *g = json_dumps(got, JSON_COMPACT), *e = json_dumps(expected, JSON_COMPACT);
    cr_assert(json_equal(got, expected), "drifts differ:\n got  %s\n want %s", g, e);
    free(g);
    free(e);
    json_decref(expected);
}

static void assert_clean(int64_t checked)
{
    char log[8192], want[128], *out = NULL;
    int rc = reconciler((const char *const[]){"audit", NULL}, &out, log, sizeof log);
    snprintf(want, sizeof want, "%lld positions checked, 0 drifts (0 repaired)\n",
             (long long)checked);
    cr_assert(rc == 0 && !strcmp(out, want), "audit exited %d:\n%s\nstderr: %s", rc, out, log);
    free(out);
}

Test(audit, clean_workload_has_no_drift)
{
    char path[512], out[8192], log[8192];
    sc_tmp("work.jsonl", path, sizeof path);
    /* 700 skus: two batches of the audit (500 skus each). */
    sc_gen(path, 3, 6000, 700, 3);
    sc_ingest(path, out, sizeof out);
    sc_drain(1);
    int64_t positions = fx_query_i64("SELECT count(*) FROM positions");
    cr_assert(fx_query_i64("SELECT count(DISTINCT sku) FROM positions") > 500);
    assert_clean(positions);

    char *text = NULL;
    int rc = reconciler((const char *const[]){"audit", "--json", NULL}, &text, log, sizeof log);
    cr_assert_eq(rc, 0, "%s %s", text, log);
    json_t *doc = parse_json(text);
    cr_assert_eq(json_int_field(doc, "checked"), positions);
    cr_assert_eq(json_int_field(doc, "repaired"), 0);
    assert_drifts(doc, "[]");
    cr_assert_eq(json_object_size(doc), 3, "%s", text);
    json_decref(doc);
    free(text);
    cr_assert(strstr(log, "audit: "), "no progress on stderr: %s", log);

    rc = reconciler((const char *const[]){"audit", "--repair", NULL}, &text, log, sizeof log);
    snprintf(out, sizeof out, "%lld positions checked, 0 drifts (0 repaired)\n",
             (long long)positions);
    cr_assert(rc == 0 && !strcmp(text, out), "exit %d: %s", rc, text);
    free(text);
}

Test(audit, injected_drift_is_reported_exactly)
{
    ingest_sample();
    assert_clean(3);
    inject_position_drift();

    char log[8192], *text = NULL;
    int rc = reconciler((const char *const[]){"audit", NULL}, &text, log, sizeof log);
    cr_assert_eq(rc, 1, "drift not repaired must exit 1: %s %s", text, log);
    squeeze(text);
    cr_assert(!strcmp(text, INJECTED_TABLE), "table:\n%s\nwant:\n%s", text, INJECTED_TABLE);
    free(text);

    rc = reconciler((const char *const[]){"audit", "--json", NULL}, &text, log, sizeof log);
    cr_assert_eq(rc, 1, "%s %s", text, log);
    json_t *doc = parse_json(text);
    cr_assert_eq(json_int_field(doc, "checked"), 3);
    cr_assert_eq(json_int_field(doc, "repaired"), 0);
    assert_drifts(doc, INJECTED_DRIFTS);
    json_decref(doc);
    free(text);

    /* Reporting changed nothing. */
    cr_assert_eq(fx_query_i64("SELECT on_hand FROM positions WHERE sku = 'SKU-1' AND "
                              "location = 'L1'"),
                 100);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM positions WHERE sku = 'SKU-2'"), 0);
}

Test(audit, repair_restores_the_ledger_values_and_marks_dirty)
{
    ingest_sample();
    inject_position_drift();
    fx_exec("DELETE FROM dirty");

    char log[8192], *text = NULL;
    int rc = reconciler((const char *const[]){"audit", "--repair", "--json", NULL}, &text, log,
                        sizeof log);
    cr_assert_eq(rc, 0, "every drift repaired must exit 0: %s %s", text, log);
    json_t *doc = parse_json(text);
    cr_assert_eq(json_int_field(doc, "checked"), 3);
    cr_assert_eq(json_int_field(doc, "repaired"), 10);
    assert_drifts(doc, INJECTED_DRIFTS);
    json_decref(doc);
    free(text);

    char buf[256];
    fx_query_str("SELECT string_agg(sku, ',' ORDER BY sku) FROM dirty", buf, sizeof buf);
    cr_assert(!strcmp(buf, "SKU-1,SKU-2"), "dirty: %s", buf);
    fx_query_str("SELECT concat_ws(' ', on_hand, reserved, inbound, damaged, count_qty, count_at,"
                 " count_event_id) FROM positions WHERE sku = 'SKU-2' AND location = 'L1'",
                 buf, sizeof buf);
    cr_assert(!strcmp(buf, "19 0 0 0 20 " COUNT_AT_MS " c-2"), "SKU-2@L1: %s", buf);
    sf_model *m = sample_model();
    sc_assert_matches(m);
    sf_model_free(m);
    assert_clean(3);
}

Test(audit, reservation_drift_is_reported_and_repaired)
{
    ingest_sample();
    fx_exec("UPDATE reservations SET released = 1 WHERE ref = 'o-1'");
    fx_exec("INSERT INTO reservations (ref, sku, location, reserved) VALUES ('ghost', 'SKU-1', "
            "'L2', 4)");
    fx_exec("DELETE FROM dirty");

    char log[8192], *text = NULL;
    int rc = reconciler((const char *const[]){"audit", NULL}, &text, log, sizeof log);
    cr_assert_eq(rc, 1, "%s %s", text, log);
    squeeze(text);
    const char *table = "sku location field stored rebuilt\n"
                        "SKU-1 L1 reservations[o-1].released 1 0\n"
                        "SKU-1 L2 reservations[ghost].reserved 4 0\n"
                        "3 positions checked, 2 drifts (0 repaired)\n";
    cr_assert(!strcmp(text, table), "table:\n%s\nwant:\n%s", text, table);
    free(text);

    rc = reconciler((const char *const[]){"audit", "--json", "--repair", NULL}, &text, log,
                    sizeof log);
    cr_assert_eq(rc, 0, "%s %s", text, log);
    json_t *doc = parse_json(text);
    assert_drifts(doc, "[{\"sku\":\"SKU-1\",\"location\":\"L1\",\"ref\":\"o-1\","
                       "\"field\":\"reservations.released\",\"stored\":1,\"rebuilt\":0},"
                       "{\"sku\":\"SKU-1\",\"location\":\"L2\",\"ref\":\"ghost\","
                       "\"field\":\"reservations.reserved\",\"stored\":4,\"rebuilt\":0}]");
    cr_assert_eq(json_int_field(doc, "repaired"), 2);
    json_decref(doc);
    free(text);

    cr_assert_eq(fx_query_i64("SELECT released FROM reservations WHERE ref = 'o-1'"), 0);
    cr_assert_eq(fx_query_i64("SELECT reserved + released + sold FROM reservations"
                              " WHERE ref = 'ghost'"),
                 0);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM dirty WHERE sku = 'SKU-1'"), 1);
    assert_clean(3);
}

Test(audit, stored_row_without_ledger_rows_drifts_unless_zero)
{
    ingest_sample();
    fx_exec("INSERT INTO positions (sku, location, on_hand, damaged) VALUES ('GHOST', 'L9', 3, 1),"
            " ('EMPTY', 'L9', 0, 0)");

    char log[8192], *text = NULL;
    int rc = reconciler((const char *const[]){"audit", NULL}, &text, log, sizeof log);
    cr_assert_eq(rc, 1, "%s %s", text, log);
    squeeze(text);
    const char *table = "sku location field stored rebuilt\n"
                        "GHOST L9 on_hand 3 0\n"
                        "GHOST L9 damaged 1 0\n"
                        "5 positions checked, 2 drifts (0 repaired)\n";
    cr_assert(!strcmp(text, table), "table:\n%s\nwant:\n%s", text, table);
    free(text);

    rc = reconciler((const char *const[]){"audit", "--repair", NULL}, &text, log, sizeof log);
    cr_assert_eq(rc, 0, "%s %s", text, log);
    free(text);
    cr_assert_eq(fx_query_i64("SELECT on_hand + damaged FROM positions WHERE sku = 'GHOST'"), 0);
    assert_clean(5);
}

static int64_t ledger_rows(void)
{
    return fx_query_i64("SELECT count(*) FROM ledger");
}

/* Audits while two consumers apply: each batch reads one snapshot, so none
 * may see drift; a repair of a real drift in the middle locks, recomputes
 * and lets the consumers continue on top of it, so the end state is still
 * exactly the model's. */
Test(audit, live_consumers_show_no_false_drift_and_survive_a_repair)
{
    char path[512], out[8192], log[8192];
    sc_tmp("live.jsonl", path, sizeof path);
    sc_gen(path, 17, 40000, 600, 4);
    sc_ingest(path, out, sizeof out);
    sf_event *evs = NULL;
    size_t n = sc_load_events(path, &evs);
    sf_model *m = sc_model_of(evs, n);
    free(evs);
    sf_model_stats st;
    sf_model_stats_get(m, &st);

    pid_t pids[2];
    for (int i = 0; i < 2; i++)
        pids[i] = fx_spawn((const char *const[]){"inv-consumer", "--drain", "--batch", "200", NULL},
                           NULL);
    int mid = 0, repaired = 0;
    while (ledger_rows() < (int64_t)st.events) {
        int64_t before = ledger_rows();
        char *text = NULL;
        if (mid == 1 && !repaired) {
            /* A real drift on every LOC-1 position (locked in key order, as
             * the consumers lock), then a repair. */
            PGresult *res = PQexec(fx_pg(), "UPDATE positions p SET on_hand = p.on_hand + 1000"
                                            " FROM (SELECT sku, location FROM positions"
                                            "       WHERE location = 'LOC-1'"
                                            "       ORDER BY sku, location FOR UPDATE) k"
                                            " WHERE p.sku = k.sku AND p.location = k.location");
            cr_assert(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(res));
            long long hit = strtoll(PQcmdTuples(res), NULL, 10);
            PQclear(res);
            cr_assert(hit > 0);
            int rc = reconciler((const char *const[]){"audit", "--repair", NULL}, &text, log,
                                sizeof log);
            /* A COUNT applied meanwhile may already have reset some of them. */
            const char *sum = strstr(text, " positions checked, ");
            long long drifts = -1, fixed = -1;
            cr_assert(sum && sscanf(sum, " positions checked, %lld drifts (%lld repaired)", &drifts,
                                    &fixed) == 2,
                      "%s", text);
            cr_assert(rc == 0 && drifts > 0 && drifts <= hit && fixed == drifts,
                      "exit %d, %lld LOC-1 rows changed:\n%s\n%s", rc, hit, text, log);
            repaired = 1;
        } else {
            int rc = reconciler((const char *const[]){"audit", NULL}, &text, log, sizeof log);
            cr_assert(rc == 0 && strstr(text, " 0 drifts (0 repaired)\n"),
                      "false drift while consumers apply (exit %d):\n%s\n%s", rc, text, log);
        }
        free(text);
        if (before > 0 && ledger_rows() < (int64_t)st.events)
            mid++;
    }
    for (int i = 0; i < 2; i++)
        cr_assert_eq(fx_stop(pids[i], 0, 180000), 0);
    cr_assert(mid >= 2, "the consumers finished before two audits overlapped them (%d): void", mid);
    cr_assert(repaired, "no repair ran while the consumers applied");
    sc_assert_matches(m);
    assert_clean(fx_query_i64("SELECT count(*) FROM positions"));
    sf_model_free(m);
}
