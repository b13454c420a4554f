/*
 * inv-reconciler supplier-report on the real stack: every supplier's latest
 * COUNT per (sku, location) against our book just before it, worked by hand
 * for a sample that exercises each rule (the previous count from another
 * source or the same supplier, a delta at the count's own time being inside
 * it, a tie on occurred_at broken by event_id, no previous count at all, a
 * non-COUNT supplier event, an older supplier count), in CSV and JSON, with
 * --since, and independent of the order the events arrived in.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "stockcheck.h"

TestSuite(supplier_report, .init = fx_reset, .fini = fx_teardown, .timeout = 300);

#define EV(id, kind, sku, loc, qty, at, extra)                                                     \
    "{\"event_id\":\"" id "\",\"kind\":\"" kind "\",\"sku\":\"" sku "\",\"location\":\"" loc       \
    "\",\"qty\":" #qty ",\"occurred_at\":\"2026-11-20T" at "Z\"" extra "}\n"
#define ACME ",\"source\":\"acme\""

/* Books (worked by hand):
 * SKU-A@L1  sup-a1 80 at 12:00: previous count cnt-1 90 (store, 10:00), then
 *           sale 5 at 11:00 and adjust -2 at 12:00 (inside) -> 83, diff -3.
 *           sup-a0 (09:30) is an older acme count: not reported. The acme
 *           ASN changes inbound only.
 * SKU-B@L1  sup-b1 21 at 10:00, no previous count: receipt 20, damaged
 *           return 0, return 1, transfer out 4 at 10:00 (inside) -> 17, +4.
 * SKU-C@L2  sup-c1 13 at 10:00: previous sup-c0 10, sale 2, transfer in 5
 *           -> 13, 0. beta's sup-x1 20 at 11:00: previous sup-c1 13, sale 1
 *           at 10:30 -> 12, +8.
 * SKU-D@L1  sup-d1 9 at 09:00 ties cnt-d 7 at 09:00; "cnt-d" < "sup-d1"
 *           bytewise, so cnt-d is the previous one, and the sale at 09:00 is
 *           inside both -> 7, +2.
 * SKU,E@L1  sup-e1 5 at 10:00, nothing before it -> 0, +5 (a comma: CSV quotes). */
/* One event a line, laid out as a table. */
/* clang-format off */
static const char SAMPLE[] =
    EV("r-a1",     "receipt",      "SKU-A", "L1", 100, "08:00:00", "")
    EV("sup-asn1", "asn",          "SKU-A", "L1", 30,  "08:00:00", ACME)
    EV("s-a1",     "sale",         "SKU-A", "L1", 3,   "09:00:00", "")
    EV("sup-a0",   "count",        "SKU-A", "L1", 95,  "09:30:00", ACME)
    EV("cnt-1",    "count",        "SKU-A", "L1", 90,  "10:00:00", ",\"source\":\"store\"")
    EV("s-a2",     "sale",         "SKU-A", "L1", 5,   "11:00:00", "")
    EV("j-a1",     "adjust",       "SKU-A", "L1", -2,  "12:00:00", "")
    EV("sup-a1",   "count",        "SKU-A", "L1", 80,  "12:00:00", ACME)
    EV("s-a3",     "sale",         "SKU-A", "L1", 1,   "13:00:00", "")
    EV("n-b1",     "asn",          "SKU-B", "L1", 50,  "08:00:00", "")
    EV("r-b1",     "receipt",      "SKU-B", "L1", 20,  "08:30:00", "")
    EV("t-b1",     "return",       "SKU-B", "L1", 2,   "09:00:00", ",\"condition\":\"DAMAGED\"")
    EV("t-b2",     "return",       "SKU-B", "L1", 1,   "09:15:00", "")
    EV("o-b1",     "transfer_out", "SKU-B", "L1", 4,   "10:00:00", "")
    EV("sup-b1",   "count",        "SKU-B", "L1", 21,  "10:00:00", ACME)
    EV("sup-c0",   "count",        "SKU-C", "L2", 10,  "08:00:00", ACME)
    EV("s-c1",     "sale",         "SKU-C", "L2", 2,   "09:00:00", "")
    EV("i-c1",     "transfer_in",  "SKU-C", "L2", 5,   "09:30:00", "")
    EV("sup-c1",   "count",        "SKU-C", "L2", 13,  "10:00:00", ACME)
    EV("s-c2",     "sale",         "SKU-C", "L2", 1,   "10:30:00", "")
    EV("sup-x1",   "count",        "SKU-C", "L2", 20,  "11:00:00", ",\"source\":\"beta\"")
    EV("r-d1",     "receipt",      "SKU-D", "L1", 10,  "08:00:00", "")
    EV("cnt-d",    "count",        "SKU-D", "L1", 7,   "09:00:00", ",\"source\":\"store\"")
    EV("s-d1",     "sale",         "SKU-D", "L1", 1,   "09:00:00", "")
    EV("sup-d1",   "count",        "SKU-D", "L1", 9,   "09:00:00", ACME)
    EV("sup-e1",   "count",        "SKU,E", "L1", 5,   "10:00:00", ACME);
/* clang-format on */

static const char HEADER[] = "supplier,sku,location,counted_at,supplier_qty,book_qty,difference\n";

static const char ALL_CSV[] = "supplier,sku,location,counted_at,supplier_qty,book_qty,difference\n"
                              "acme,\"SKU,E\",L1,2026-11-20T10:00:00.000Z,5,0,5\n"
                              "acme,SKU-B,L1,2026-11-20T10:00:00.000Z,21,17,4\n"
                              "acme,SKU-A,L1,2026-11-20T12:00:00.000Z,80,83,-3\n"
                              "acme,SKU-D,L1,2026-11-20T09:00:00.000Z,9,7,2\n"
                              "acme,SKU-C,L2,2026-11-20T10:00:00.000Z,13,13,0\n"
                              "beta,SKU-C,L2,2026-11-20T11:00:00.000Z,20,12,8\n";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* The sample's lines in reverse order when reversed: arrival order must not
 * matter. */
static void ingest_sample(bool reversed)
{
    char path[512], out[8192];
    sc_tmp("supplier-sample.jsonl", path, sizeof path);
    if (!reversed) {
        write_file(path, SAMPLE);
    } else {
        FILE *f = fopen(path, "w");
        cr_assert(f);
        const char *end = SAMPLE + strlen(SAMPLE);
        while (end > SAMPLE) {
            const char *start = end - 1;
            while (start > SAMPLE && start[-1] != '\n')
                start--;
            fwrite(start, 1, (size_t)(end - start), f);
            end = start;
        }
        fclose(f);
    }
    sc_ingest(path, out, sizeof out);
    cr_assert(strstr(out, "26 accepted, 0 duplicate, 0 rejected"), "%s", out);
    sc_drain(1);
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

/* inv-reconciler supplier-report with args; its stdout comes back in *out
 * (heap), its stderr (progress, errors) in log. Returns the exit status. */
static int report(const char *const args[], char **out, char *log, size_t log_size)
{
    char path[512], bin[1024];
    sc_tmp("report.stdout", path, sizeof path);
    snprintf(bin, sizeof bin, "%s/inv-reconciler", fx_env("SF_BIN"));
    const char *argv[16] = {
        "sh", "-c", "out=$1; shift; exec \"$@\" >\"$out\"", "sh", path, bin, "supplier-report"};
    size_t n = 7;
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

static void assert_csv(const char *const args[], const char *want)
{
    char log[8192], *text = NULL;
    int rc = report(args, &text, log, sizeof log);
    cr_assert(rc == 0, "exit %d: %s %s", rc, text, log);
    cr_assert(!strcmp(text, want), "report:\n%s\nwant:\n%s", text, want);
    free(text);
}

static json_t *report_json(const char *const args[])
{
    char log[8192], *text = NULL;
    int rc = report(args, &text, log, sizeof log);
    cr_assert(rc == 0, "exit %d: %s %s", rc, text, log);
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    cr_assert(doc, "not JSON (%s): %s", jerr.text, text);
    free(text);
    return doc;
}

static void assert_json_equal(const json_t *got, const char *want)
{
    json_error_t jerr;
    json_t *expected = json_loads(want, 0, &jerr);
    cr_assert(expected, "bad expected JSON: %s", jerr.text);
    char *g = json_dumps(got, JSON_COMPACT), *e = json_dumps(expected, JSON_COMPACT);
    cr_assert(json_equal(got, expected), "report differs:\n got  %s\n want %s", g, e);
    free(g);
    free(e);
    json_decref(expected);
}

#define ROW(sup, sku, loc, at, q, book, diff, id)                                                  \
    "{\"supplier\":\"" sup "\",\"sku\":\"" sku "\",\"location\":\"" loc                            \
    "\",\"counted_at\":\"2026-11-20T" at ".000Z\",\"supplier_qty\":" #q ",\"book_qty\":" #book     \
    ",\"difference\":" #diff ",\"event_id\":\"" id "\"}"

Test(supplier_report, csv_rows_are_exact)
{
    ingest_sample(false);
    assert_csv((const char *const[]){NULL}, ALL_CSV);
    assert_csv((const char *const[]){"--csv", NULL}, ALL_CSV);
}

/* clang-format off */
static const char ALL_JSON[] = "{\"since\":null,\"rows\":["
    ROW("acme", "SKU,E", "L1", "10:00:00",  5,  0,  5, "sup-e1") ","
    ROW("acme", "SKU-B", "L1", "10:00:00", 21, 17,  4, "sup-b1") ","
    ROW("acme", "SKU-A", "L1", "12:00:00", 80, 83, -3, "sup-a1") ","
    ROW("acme", "SKU-D", "L1", "09:00:00",  9,  7,  2, "sup-d1") ","
    ROW("acme", "SKU-C", "L2", "10:00:00", 13, 13,  0, "sup-c1") ","
    ROW("beta", "SKU-C", "L2", "11:00:00", 20, 12,  8, "sup-x1")
    "],\"counts\":6,\"discrepancies\":5}";

static const char SINCE_11_JSON[] = "{\"since\":\"2026-11-20T11:00:00.000Z\",\"rows\":["
    ROW("acme", "SKU-A", "L1", "12:00:00", 80, 83, -3, "sup-a1") ","
    ROW("beta", "SKU-C", "L2", "11:00:00", 20, 12,  8, "sup-x1")
    "],\"counts\":2,\"discrepancies\":2}";
/* clang-format on */

Test(supplier_report, json_rows_are_exact)
{
    ingest_sample(false);
    json_t *doc = report_json((const char *const[]){"--json", NULL});
    assert_json_equal(doc, ALL_JSON);
    json_decref(doc);
}

Test(supplier_report, since_keeps_counts_at_or_after_it)
{
    ingest_sample(false);
    /* At 10:00 exactly: SKU-D's 09:00 count drops out, the 10:00 ones stay. */
    assert_csv((const char *const[]){"--since", "2026-11-20T10:00:00Z", NULL},
               "supplier,sku,location,counted_at,supplier_qty,book_qty,difference\n"
               "acme,\"SKU,E\",L1,2026-11-20T10:00:00.000Z,5,0,5\n"
               "acme,SKU-B,L1,2026-11-20T10:00:00.000Z,21,17,4\n"
               "acme,SKU-A,L1,2026-11-20T12:00:00.000Z,80,83,-3\n"
               "acme,SKU-C,L2,2026-11-20T10:00:00.000Z,13,13,0\n"
               "beta,SKU-C,L2,2026-11-20T11:00:00.000Z,20,12,8\n");
    /* 2026-11-20T10:00:00.001Z as epoch ms. */
    assert_csv((const char *const[]){"--since", "1795168800001", NULL},
               "supplier,sku,location,counted_at,supplier_qty,book_qty,difference\n"
               "acme,SKU-A,L1,2026-11-20T12:00:00.000Z,80,83,-3\n"
               "beta,SKU-C,L2,2026-11-20T11:00:00.000Z,20,12,8\n");
    json_t *doc =
        report_json((const char *const[]){"--since", "2026-11-20T11:00:00Z", "--json", NULL});
    assert_json_equal(doc, SINCE_11_JSON);
    json_decref(doc);
    assert_csv((const char *const[]){"--since", "2026-11-20T12:00:00.001Z", NULL}, HEADER);
}

Test(supplier_report, arrival_order_does_not_matter)
{
    ingest_sample(true);
    assert_csv((const char *const[]){NULL}, ALL_CSV);
}

Test(supplier_report, no_supplier_counts_gives_an_empty_table)
{
    char path[512], out[8192];
    sc_tmp("plain.jsonl", path, sizeof path);
    write_file(path, EV("r-1", "receipt", "SKU-A", "L1", 5, "08:00:00", "")
                         EV("c-1", "count", "SKU-A", "L1", 4, "09:00:00", ",\"source\":\"acme\""));
    sc_ingest(path, out, sizeof out);
    sc_drain(1);
    assert_csv((const char *const[]){NULL}, HEADER);
    json_t *doc = report_json((const char *const[]){"--json", NULL});
    assert_json_equal(doc, "{\"since\":null,\"rows\":[],\"counts\":0,\"discrepancies\":0}");
    json_decref(doc);
}
