/*
 * test_supplier_csv: the csv supplier adapter (suppliers/csv_adapter.c)
 * and the supplier times it shares (sf_adapter_time_parse). The initech
 * sample row by row; RFC 4180 corners (quotes, "" escapes, records over
 * several lines, CRLF, BOM, blank lines, no last newline); every reject
 * class with its position and reason; open() failures on the header;
 * config errors with "path:line: [section] key: reason"; and the digest:
 * the same under CRLF, BOM, blank lines, other quoting or a renamed
 * header, different when a quantity changes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../suppliers/adapter.h"
#include "../../suppliers/adapter_util.h"
#include "config.h"
#include "leak_guard.h"

#define READ_AT INT64_C(1795179600000) /* 2026-11-20T13:00:00Z */
#define TZ_CHICAGO (-6 * 3600)         /* CST, 2026-11-20 */
#define T0600 INT64_C(1795176000000)   /* 2026-11-20 06:00 CST = 12:00Z */
#define T0615 INT64_C(1795176900000)
#define SAMPLE_DIGEST "8333c7d3eec68b248d4f6fd61cb29d55db9c14506d2e92ab359b514198a7f42f"

#define INITECH                                                                                    \
    "[supplier.initech]\n"                                                                         \
    "format = csv\n"                                                                               \
    "delimiter = semicolon\n"                                                                      \
    "header = true\n"                                                                              \
    "columns = sku=ITEM_NO, qty=QTY ON HAND, uom=UOM, location=WHSE,\n"                            \
    "    occurred_at=AS_OF\n"                                                                      \
    "kind = count\n"                                                                               \
    "uom = EA\n"

/* --- helpers ------------------------------------------------------------------ */

static char ini_path[64];

static void write_ini(const char *text)
{
    snprintf(ini_path, sizeof ini_path, "/tmp/sf-test-csv-XXXXXX");
    int fd = mkstemp(ini_path);
    cr_assert(fd >= 0, "mkstemp failed");
    size_t n = strlen(text);
    cr_assert(write(fd, text, n) == (ssize_t)n);
    close(fd);
}

/* Configure from INI text; the status, with err and *opts filled. */
static sf_status configure(const char *ini, const char *section, void **opts, sf_error *err)
{
    sf_config cfg;
    sf_config_init(&cfg);
    write_ini(ini);
    sf_error lerr;
    sf_status st = sf_config_load(&cfg, ini_path, &lerr);
    cr_assert(st == SF_OK, "config: %s", lerr.msg);
    st = sf_adapter_csv.configure(&cfg, section, opts, err);
    sf_config_free(&cfg);
    unlink(ini_path);
    return st;
}

static void *opts_of(const char *ini, const char *section)
{
    void *opts = NULL;
    sf_error err;
    cr_assert(configure(ini, section, &opts, &err) == SF_OK, "configure: %s", err.msg);
    return opts;
}

static void config_error(const char *ini, int line, const char *suffix)
{
    void *opts = (void *)1;
    sf_error err;
    cr_assert(configure(ini, "supplier.t", &opts, &err) == SF_EINVAL, "configure accepted");
    cr_assert(opts == NULL);
    char want[SF_ERROR_MSG_MAX];
    snprintf(want, sizeof want, "%s:%d: [supplier.t] %s", ini_path, line, suffix);
    cr_assert(strcmp(err.msg, want) == 0, "\n  got:  %s\n  want: %s", err.msg, want);
}

typedef struct feed {
    void *opts;
    void *state;
} feed;

static feed open_feed(const char *ini, const char *section, const char *data, size_t len)
{
    feed f = {opts_of(ini, section), NULL};
    sf_feed_ctx ctx = {"t.csv", READ_AT, TZ_CHICAGO};
    sf_error err;
    cr_assert(sf_adapter_csv.open(f.opts, &ctx, data, len, &f.state, &err) == SF_OK, "open: %s",
              err.msg);
    cr_assert(strlen(sf_adapter_csv.digest(f.state)) == 64);
    return f;
}

static feed open_str(const char *ini, const char *data)
{
    return open_feed(ini, "supplier.t", data, strlen(data));
}

static void open_fails(const char *ini, const char *data, const char *msg)
{
    void *opts = opts_of(ini, "supplier.t");
    void *state = (void *)1;
    sf_feed_ctx ctx = {"t.csv", READ_AT, TZ_CHICAGO};
    sf_error err;
    cr_assert(sf_adapter_csv.open(opts, &ctx, data, strlen(data), &state, &err) == SF_EINVAL,
              "open accepted");
    cr_assert(state == NULL);
    cr_assert(strcmp(err.msg, msg) == 0, "\n  got:  %s\n  want: %s", err.msg, msg);
    sf_adapter_csv.free_opts(opts);
}

static void close_feed(feed *f)
{
    sf_adapter_csv.close(f->state);
    sf_adapter_csv.free_opts(f->opts);
}

typedef struct want {
    uint64_t ordinal;
    const char *position;
    const char *item, *location;
    int64_t units;
    int scale;
    const char *uom;
    int64_t occurred_at;
    sf_kind kind;
    const char *ref;
} want;

static void next_row(feed *f, want w)
{
    sf_supplier_row row;
    sf_error err;
    cr_assert(sf_adapter_csv.next(f->state, &row, &err) == SF_OK, "expected row %llu",
              (unsigned long long)w.ordinal);
    cr_assert(row.ok, "row %llu (%s) rejected: %s", (unsigned long long)w.ordinal, row.position,
              row.error.msg);
    cr_assert(row.ordinal == w.ordinal, "ordinal %llu, want %llu", (unsigned long long)row.ordinal,
              (unsigned long long)w.ordinal);
    cr_assert(strcmp(row.position, w.position) == 0, "position '%s', want '%s'", row.position,
              w.position);
    cr_assert(strcmp(row.item, w.item) == 0, "item '%s', want '%s'", row.item, w.item);
    cr_assert(strcmp(row.location, w.location) == 0, "location '%s', want '%s'", row.location,
              w.location);
    cr_assert(row.qty.units == w.units && row.qty.scale == w.scale,
              "qty {%lld, %d}, want {%lld, %d}", (long long)row.qty.units, row.qty.scale,
              (long long)w.units, w.scale);
    cr_assert(strcmp(row.uom, w.uom) == 0, "uom '%s', want '%s'", row.uom, w.uom);
    cr_assert(row.occurred_at == w.occurred_at, "occurred_at %lld, want %lld",
              (long long)row.occurred_at, (long long)w.occurred_at);
    cr_assert(row.kind == w.kind, "kind %s, want %s", sf_kind_name(row.kind), sf_kind_name(w.kind));
    cr_assert(strcmp(row.ref, w.ref) == 0, "ref '%s', want '%s'", row.ref, w.ref);
}

static void next_reject(feed *f, uint64_t ordinal, const char *position, const char *msg)
{
    sf_supplier_row row;
    sf_error err;
    cr_assert(sf_adapter_csv.next(f->state, &row, &err) == SF_OK, "expected row %llu",
              (unsigned long long)ordinal);
    cr_assert(!row.ok, "row %llu (%s) accepted", (unsigned long long)ordinal, row.position);
    cr_assert(row.ordinal == ordinal, "ordinal %llu, want %llu", (unsigned long long)row.ordinal,
              (unsigned long long)ordinal);
    cr_assert(strcmp(row.position, position) == 0, "position '%s', want '%s'", row.position,
              position);
    cr_assert(strcmp(row.error.msg, msg) == 0, "\n  got:  %s\n  want: %s", row.error.msg, msg);
}

static void next_end(feed *f)
{
    sf_supplier_row row;
    sf_error err;
    cr_assert(sf_adapter_csv.next(f->state, &row, &err) == SF_ENOTFOUND, "expected the end");
    cr_assert(sf_adapter_csv.next(f->state, &row, &err) == SF_ENOTFOUND, "the end stays");
}

static char *read_sample(const char *rel, size_t *len)
{
    char path[512];
    const char *root = getenv("SF_ROOT");
    snprintf(path, sizeof path, "%s%s%s", root ? root : "", root ? "/" : "", rel);
    FILE *in = fopen(path, "rb");
    cr_assert(in, "cannot open %s (run from the repository root or set SF_ROOT)", path);
    static char buf[8192];
    *len = fread(buf, 1, sizeof buf - 1, in);
    fclose(in);
    buf[*len] = '\0';
    return buf;
}

static void expect_sample_rows(feed *f, int line_shift)
{
    char pos[6][16];
    for (int i = 0; i < 6; i++)
        snprintf(pos[i], sizeof pos[i], "line %d", i + 2 + line_shift);
    next_row(f, (want){1, pos[0], "IN-1001", "AUS1", 24, 0, "EA", T0600, SF_KIND_COUNT, ""});
    next_row(f, (want){2, pos[1], "IN-1002", "AUS1", 25, 1, "CA", T0600, SF_KIND_COUNT, ""});
    next_row(f, (want){3, pos[2], "IN-1003", "AUS1", 7, 0, "EA", T0600, SF_KIND_COUNT, ""});
    next_row(f, (want){4, pos[3], "IN-1001", "DAL2", 12, 0, "EA", T0615, SF_KIND_COUNT, ""});
    next_row(f, (want){5, pos[4], "IN-1002", "DAL2", 10, 0, "CA", T0615, SF_KIND_COUNT, ""});
    next_row(f, (want){6, pos[5], "IN-1004", "DAL2", 0, 0, "EA", T0615, SF_KIND_COUNT, ""});
    next_end(f);
}

/* Digest of data under the initech config. */
static void digest_of(const char *data, size_t len, char out[65])
{
    feed f = open_feed(INITECH, "supplier.initech", data, len);
    memcpy(out, sf_adapter_csv.digest(f.state), 65);
    close_feed(&f);
}

/* --- the sample ------------------------------------------------------------- */

LEAK_TEST(supplier_csv, initech_sample_rows_exactly)
{
    size_t len;
    const char *data = read_sample("examples/suppliers/initech-stock.csv", &len);
    feed f = open_feed(INITECH, "supplier.initech", data, len);
    cr_assert(strcmp(sf_adapter_csv.digest(f.state), SAMPLE_DIGEST) == 0, "digest %s",
              sf_adapter_csv.digest(f.state));
    expect_sample_rows(&f, 0);
    close_feed(&f);
}

LEAK_TEST(supplier_csv, keys_and_format)
{
    cr_assert(strcmp(sf_adapter_csv.format, "csv") == 0);
    const char *want[] = {"delimiter", "header", "columns", "kind", "uom"};
    size_t n = 0;
    for (; sf_adapter_csv.keys[n]; n++) {
        cr_assert(n < 5);
        cr_assert(strcmp(sf_adapter_csv.keys[n], want[n]) == 0, "%s", sf_adapter_csv.keys[n]);
    }
    cr_assert(n == 5);
}

/* --- the digest ----------------------------------------------------------------- */

static const char SAMPLE_CRLF_QUOTED[] =
    "\xEF\xBB\xBF"
    "\"ITEM_NO\";\"DESCRIPTION\";\"QTY ON HAND\";\"UOM\";\"WHSE\";\"AS_OF\"\r\n"
    "\"IN-1001\";\"Stapler; red, Swingline\";\"24\";\"EA\";\"AUS1\";\"2026-11-20 06:00\"\r\n"
    "IN-1002;\"Copy paper A4, 500 sheets\";2.5;CA;AUS1;2026-11-20 06:00\r\n"
    "IN-1003;\"Toner \"\"XL\"\" black\";7;\"EA\";AUS1;2026-11-20 06:00\r\n"
    "IN-1001;\"Stapler; red, Swingline\";12;EA;DAL2;2026-11-20 06:15\r\n"
    "\"IN-1002\";Copy paper A4, 500 sheets;10;CA;DAL2;2026-11-20 06:15\r\n"
    "IN-1004;TPS report covers;0;\"\";DAL2;2026-11-20 06:15";

LEAK_TEST(supplier_csv, crlf_bom_and_other_quoting_same_rows_same_digest)
{
    feed f =
        open_feed(INITECH, "supplier.initech", SAMPLE_CRLF_QUOTED, sizeof SAMPLE_CRLF_QUOTED - 1);
    cr_assert(strcmp(sf_adapter_csv.digest(f.state), SAMPLE_DIGEST) == 0, "digest %s",
              sf_adapter_csv.digest(f.state));
    expect_sample_rows(&f, 0);
    close_feed(&f);
}

LEAK_TEST(supplier_csv, blank_lines_move_positions_not_the_digest)
{
    static const char data[] = "\n"
                               "ITEM_NO;DESCRIPTION;QTY ON HAND;UOM;WHSE;AS_OF\n"
                               "   \n"
                               "IN-1001;\"Stapler; red, Swingline\";24;EA;AUS1;2026-11-20 06:00\n"
                               "IN-1002;Copy paper A4, 500 sheets;2.5;CA;AUS1;2026-11-20 06:00\n"
                               "IN-1003;\"Toner \"\"XL\"\" black\";7;EA;AUS1;2026-11-20 06:00\n"
                               "IN-1001;\"Stapler; red, Swingline\";12;EA;DAL2;2026-11-20 06:15\n"
                               "IN-1002;Copy paper A4, 500 sheets;10;CA;DAL2;2026-11-20 06:15\n"
                               "IN-1004;TPS report covers;0;;DAL2;2026-11-20 06:15\n"
                               "\n"
                               "\t\n";
    feed f = open_feed(INITECH, "supplier.initech", data, sizeof data - 1);
    cr_assert(strcmp(sf_adapter_csv.digest(f.state), SAMPLE_DIGEST) == 0);
    expect_sample_rows(&f, 2);
    close_feed(&f);
}

LEAK_TEST(supplier_csv, header_is_not_in_the_digest)
{
    size_t len;
    const char *sample = read_sample("examples/suppliers/initech-stock.csv", &len);
    char *data = malloc(len + 16);
    cr_assert(data);
    /* rename an unmapped column: same data, same digest */
    const char *rest = strchr(sample, '\n');
    int n = snprintf(data, len + 16, "ITEM_NO;DESC;QTY ON HAND;UOM;WHSE;AS_OF%s", rest);
    char got[65];
    digest_of(data, (size_t)n, got);
    cr_assert(strcmp(got, SAMPLE_DIGEST) == 0, "digest %s", got);
    free(data);
}

LEAK_TEST(supplier_csv, a_changed_quantity_changes_the_digest)
{
    size_t len;
    const char *sample = read_sample("examples/suppliers/initech-stock.csv", &len);
    char *data = malloc(len + 1);
    cr_assert(data);
    memcpy(data, sample, len + 1);
    char *q = strstr(data, ";2.5;");
    cr_assert(q);
    q[3] = '6'; /* 2.5 -> 2.6 */
    char got[65];
    digest_of(data, len, got);
    cr_assert(strlen(got) == 64);
    cr_assert(strcmp(got, SAMPLE_DIGEST) != 0, "digest unchanged");
    /* and a cell boundary moved is not the same text either */
    memcpy(data, sample, len + 1);
    q = strstr(data, "TPS report covers;0");
    cr_assert(q);
    q[3] = ';';
    char moved[65];
    digest_of(data, len, moved);
    cr_assert(strcmp(moved, SAMPLE_DIGEST) != 0 && strcmp(moved, got) != 0);
    free(data);
}

LEAK_TEST(supplier_csv, digest_separates_cells_and_records)
{
    static const char *const feeds[] = {
        "sku,qty\nA,1\n",
        "sku,qty\n\"A\x1f"
        "1\"\n", /* one cell holding the separator */
        "sku,qty\nA,1\nB,2\n",
        "sku,qty\nA,\"1\x1e"
        "B\",2\n", /* one record holding the terminator */
        "sku,qty\n",
        "sku,qty\n\"\"\n",
        "sku,qty\nA,1\n\"B\n\",2\n",
    };
    size_t n = sizeof feeds / sizeof feeds[0];
    char dig[7][65];
    for (size_t i = 0; i < n; i++) {
        feed f = open_str("[supplier.t]\n", feeds[i]);
        memcpy(dig[i], sf_adapter_csv.digest(f.state), 65);
        close_feed(&f);
        for (size_t j = 0; j < i; j++)
            cr_assert(strcmp(dig[i], dig[j]) != 0, "feeds %zu and %zu share a digest", j, i);
    }
    /* no data: only the binding record "1 2 - - - - - count -" */
    feed f = open_str("[supplier.t]\n", "sku,qty\n");
    cr_assert(strcmp(sf_adapter_csv.digest(f.state),
                     "6bb6dbff54804db8b5fb9f9c84e681245a719ffc3016338b581d23f1beb9d22c") == 0,
              "%s", sf_adapter_csv.digest(f.state));
    next_end(&f);
    close_feed(&f);
}

LEAK_TEST(supplier_csv, what_the_columns_mean_is_in_the_digest)
{
    /* the same data lines under a corrected header: qty is another column */
    static const char *const feeds[] = {
        "sku,qty,min\nA,5,2\n",
        "sku,min,qty\nA,5,2\n",
        "sku,qty,min,location\nA,5,2,\n",
    };
    char dig[4][65];
    for (size_t i = 0; i < 3; i++) {
        feed f = open_str("[supplier.t]\n", feeds[i]);
        memcpy(dig[i], sf_adapter_csv.digest(f.state), 65);
        close_feed(&f);
    }
    /* a new default unit gives the same cells another meaning */
    feed f = open_str("[supplier.t]\nuom = CA\n", feeds[0]);
    memcpy(dig[3], sf_adapter_csv.digest(f.state), 65);
    close_feed(&f);
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < i; j++)
            cr_assert(strcmp(dig[i], dig[j]) != 0, "cases %zu and %zu share a digest", j, i);
    }
    /* while renaming an unmapped column changes nothing */
    f = open_str("[supplier.t]\n", "sku,qty,minimum\nA,5,2\n");
    cr_assert(strcmp(sf_adapter_csv.digest(f.state), dig[0]) == 0);
    close_feed(&f);
}

/* --- RFC 4180 --------------------------------------------------------------------- */

LEAK_TEST(supplier_csv, quoted_cells_span_lines)
{
    feed f = open_str("[supplier.t]\n", "sku,qty,note,location\n"
                                        "A-1,1,\"first\nsecond\r\nthird\",L1\n"
                                        "A-2,2,,L2\r\n"
                                        "\"A-3\",\"3\",\"a \"\"quoted\"\", word\",\"L3\"");
    next_row(&f, (want){1, "line 2", "A-1", "L1", 1, 0, "", 0, SF_KIND_COUNT, ""});
    next_row(&f, (want){2, "line 5", "A-2", "L2", 2, 0, "", 0, SF_KIND_COUNT, ""});
    next_row(&f, (want){3, "line 6", "A-3", "L3", 3, 0, "", 0, SF_KIND_COUNT, ""});
    next_end(&f);
    close_feed(&f);
}

LEAK_TEST(supplier_csv, old_mac_line_ends)
{
    feed f = open_str("[supplier.t]\n", "sku,qty\rA,1\rB,2\r");
    next_row(&f, (want){1, "line 2", "A", "", 1, 0, "", 0, SF_KIND_COUNT, ""});
    next_row(&f, (want){2, "line 3", "B", "", 2, 0, "", 0, SF_KIND_COUNT, ""});
    next_end(&f);
    close_feed(&f);
}

LEAK_TEST(supplier_csv, default_options_match_header_names_without_case)
{
    feed f = open_str("[supplier.t]\n", " SKU ,Qty,LOCATION,Kind,UoM,Occurred_At,REF,extra\n"
                                        "A,1,L1,asn,CA,2026-11-20T10:00:00Z,PO-1,x\n"
                                        "B,2,,,,,,\n");
    next_row(&f, (want){1, "line 2", "A", "L1", 1, 0, "CA", INT64_C(1795168800000), SF_KIND_ASN,
                        "PO-1"});
    next_row(&f, (want){2, "line 3", "B", "", 2, 0, "", 0, SF_KIND_COUNT, ""});
    next_end(&f);
    close_feed(&f);
}

LEAK_TEST(supplier_csv, no_header_numbered_columns_and_tab)
{
    feed f = open_str("[supplier.t]\n"
                      "delimiter = tab\n"
                      "header = false\n"
                      "columns = sku=2, qty=4, location=1, kind=5, ref=6\n"
                      "kind = receipt\n"
                      "uom = CA\n",
                      "WH1\tX-3\tdesc\t1\n"
                      "WH1\tX-1\tdesc\t3\tasn\tPO-1\n"
                      "WH2\tX-2\tdesc\t4.25\t\tPO-2\n"
                      "WH1\tX-4\tdesc\t1\tasn\tPO-4\textra\n"
                      "WH1\tX-5\n"
                      "\t\t\t\t\t\n");
    next_reject(&f, 1, "line 1", "4 cells: no column 5 for field kind");
    next_row(&f, (want){2, "line 2", "X-1", "WH1", 3, 0, "CA", 0, SF_KIND_ASN, "PO-1"});
    next_row(&f, (want){3, "line 3", "X-2", "WH2", 425, 2, "CA", 0, SF_KIND_RECEIPT, "PO-2"});
    next_reject(&f, 4, "line 4", "7 cells, expected 6 as on line 2");
    next_reject(&f, 5, "line 5", "2 cells, expected 6 as on line 2");
    next_reject(&f, 6, "line 6", "field sku: missing"); /* tabs only: a record when tab splits */
    next_end(&f);
    close_feed(&f);
}

LEAK_TEST(supplier_csv, no_header_default_columns)
{
    feed f = open_str("[supplier.t]\nheader = false\n", "A,1\nB,2.5\n");
    next_row(&f, (want){1, "line 1", "A", "", 1, 0, "", 0, SF_KIND_COUNT, ""});
    next_row(&f, (want){2, "line 2", "B", "", 25, 1, "", 0, SF_KIND_COUNT, ""});
    next_end(&f);
    close_feed(&f);
}

LEAK_TEST(supplier_csv, header_false_with_an_empty_feed_has_no_rows)
{
    feed f = open_str("[supplier.t]\nheader = false\n", "\n\r\n");
    next_end(&f);
    close_feed(&f);
}

LEAK_TEST(supplier_csv, quoted_column_names_in_the_mapping)
{
    feed f = open_str("[supplier.t]\n"
                      "delimiter = |\n"
                      "columns = sku=\"Item, no.\", qty = \"Qty \"\"on hand\"\"\"\n",
                      "Item, no.|Qty \"on hand\"\n"
                      "Z-9|12\n");
    next_row(&f, (want){1, "line 2", "Z-9", "", 12, 0, "", 0, SF_KIND_COUNT, ""});
    next_end(&f);
    close_feed(&f);
}

LEAK_TEST(supplier_csv, latin1_in_an_unmapped_column_is_not_checked)
{
    feed f = open_str("[supplier.t]\n", "sku,desc,qty\nA,Caf\xe9,1\n");
    next_row(&f, (want){1, "line 2", "A", "", 1, 0, "", 0, SF_KIND_COUNT, ""});
    next_end(&f);
    close_feed(&f);
}

LEAK_TEST(supplier_csv, default_options_from_an_empty_config)
{
    /* what fuzz targets and tests use: no file, no section */
    sf_config cfg;
    sf_config_init(&cfg);
    void *opts = NULL;
    sf_error err;
    cr_assert(sf_adapter_csv.configure(&cfg, "supplier.none", &opts, &err) == SF_OK, "%s", err.msg);
    sf_config_free(&cfg);
    sf_feed_ctx ctx = {NULL, READ_AT, 0};
    void *state = NULL;
    const char *data = "sku,qty\nA,2\n";
    cr_assert(sf_adapter_csv.open(opts, &ctx, data, strlen(data), &state, &err) == SF_OK, "%s",
              err.msg);
    sf_supplier_row row;
    cr_assert(sf_adapter_csv.next(state, &row, &err) == SF_OK);
    cr_assert(row.ok && strcmp(row.item, "A") == 0 && row.qty.units == 2 &&
              row.kind == SF_KIND_COUNT);
    cr_assert(sf_adapter_csv.next(state, &row, &err) == SF_ENOTFOUND);
    sf_adapter_csv.close(state);
    sf_adapter_csv.free_opts(opts);
}

/* --- rejected rows ---------------------------------------------------------------- */

LEAK_TEST(supplier_csv, every_reject_class_with_position_and_reason)
{
    feed f = open_str("[supplier.t]\n",
                      "sku,qty,location,occurred_at,kind,uom,ref\n"
                      "A-1,5,L1,2026-11-20T10:00:00Z,count,EA,r1\n"
                      "A-2,5,L1\n"
                      ",5,L1,,,,\n"
                      "A-3,,L1,,,,\n"
                      "A-4,2.5.1,L1,,,,\n"
                      "SKU-0123456789012345678901234567890123456789012345678901234567890,1,L1,,,,\n"
                      "A-5,1,L1,,sale,,\n"
                      "A-6,1,L1,yesterday,,,\n"
                      "A-7,1,L1,2026-11-21T00:00:00Z,,,\n"
                      "Caf\xe9,1,L1,,,,\n"
                      "\"A-8\"x,1,L1,,,,\n"
                      "A-9,1,L1,,,CASE-OF-12,\n"
                      "A-10,1,\"L\n1\",,,,\n"
                      "A-11,-2,L1,,RECEIPT,ea,\"r,2\"\n"
                      "A-12,1,\"L1,,,,\n"
                      "A-13,1,L1,,,,\n");
    next_row(&f, (want){1, "line 2", "A-1", "L1", 5, 0, "EA", INT64_C(1795168800000), SF_KIND_COUNT,
                        "r1"});
    next_reject(&f, 2, "line 3", "3 cells, expected 7 as in the header");
    next_reject(&f, 3, "line 4", "field sku: missing");
    next_reject(&f, 4, "line 5", "field qty: missing");
    next_reject(&f, 5, "line 6",
                "field qty: '2.5.1' is not a decimal number (unexpected '.' at byte 4)");
    next_reject(&f, 6, "line 7", "field sku: 65 bytes, longer than 64");
    next_reject(&f, 7, "line 8", "field kind: 'sale' is not count, asn or receipt");
    next_reject(&f, 8, "line 9",
                "field occurred_at: 'yesterday' is not a time (expected RFC 3339, "
                "YYYY-MM-DD[ HH:MM[:SS]] or epoch ms)");
    next_reject(&f, 9, "line 10",
                "field occurred_at: '2026-11-21T00:00:00Z' is in the future (read at "
                "2026-11-20T13:00:00.000Z)");
    next_reject(&f, 10, "line 11", "field sku: 'Caf\\xe9' is not valid UTF-8 (byte 4)");
    next_reject(&f, 11, "line 12", "cell 1: text after the closing quote");
    next_reject(&f, 12, "line 13", "field uom: 'CASE-OF-12' is 10 bytes, longer than 8");
    next_reject(&f, 13, "line 14",
                "field location: 'L\\x0a1' holds control character U+000A (byte 2)");
    next_row(&f, (want){14, "line 16", "A-11", "L1", -2, 0, "ea", 0, SF_KIND_RECEIPT, "r,2"});
    /* the quote never closes: the rest of the input is that record */
    next_reject(&f, 15, "line 17", "unclosed quote: the record runs to the end of the input");
    next_end(&f);
    close_feed(&f);
}

LEAK_TEST(supplier_csv, too_many_cells)
{
    size_t n = 5000 * 2 + 16;
    char *data = malloc(n);
    cr_assert(data);
    size_t o = (size_t)snprintf(data, n, "sku,qty\n");
    for (int i = 0; i < 5000; i++)
        data[o++] = ',';
    o += (size_t)snprintf(data + o, n - o, "\nA,1\n");
    feed f = open_feed("[supplier.t]\n", "supplier.t", data, o);
    next_reject(&f, 1, "line 2", "more than 4096 cells");
    next_row(&f, (want){2, "line 3", "A", "", 1, 0, "", 0, SF_KIND_COUNT, ""});
    next_end(&f);
    close_feed(&f);
    free(data);
}

/* --- open() failures ------------------------------------------------------------------ */

LEAK_TEST(supplier_csv, header_missing_a_mapped_column_fails_open)
{
    open_fails("[supplier.t]\ndelimiter = semicolon\ncolumns = sku=ITEM_NO, qty=QTY ON HAND, "
               "location=WHSE\n",
               "ITEM_NO;QTY ON HAND;WAREHOUSE\nA;1;W\n",
               "t.csv: line 1: header has no column 'WHSE' (mapped to location)");
    open_fails("[supplier.t]\n", "\xEF\xBB\xBF\n\nitem,qty\nA,1\n",
               "t.csv: line 3: header has no column 'sku' (mapped to sku)");
}

LEAK_TEST(supplier_csv, bad_headers_fail_open)
{
    open_fails("[supplier.t]\n", "", "t.csv: no header line (the feed is empty)");
    open_fails("[supplier.t]\n", "\r\n \n", "t.csv: no header line (the feed is empty)");
    open_fails("[supplier.t]\n", "sku,qty,SKU\nA,1,B\n",
               "t.csv: line 1: header: column 'sku' (mapped to sku) appears twice (cells 1 and 3)");
    open_fails("[supplier.t]\n", "sku,\"qty\n", "t.csv: line 1: header: unclosed quote");
    open_fails("[supplier.t]\n", "sku,\"qty\"x\n",
               "t.csv: line 1: header: cell 2: text after the closing quote");
}

/* --- configuration ---------------------------------------------------------------------- */

LEAK_TEST(supplier_csv, config_errors_cite_path_line_section_key)
{
    config_error("[supplier.t]\nformat = csv\ndelimiter = ::\n", 3,
                 "delimiter: '::' is not one character (not '\"') or tab, comma, semicolon, pipe");
    config_error("[supplier.t]\ndelimiter = \"\n", 2,
                 "delimiter: '\"' is not one character (not '\"') or tab, comma, semicolon, pipe");
    config_error("[supplier.t]\nheader = yes\n", 2, "header: 'yes' is not true or false");
    config_error("[supplier.t]\ncolumns = sku=A, qty=B, colour=C\n", 2,
                 "columns: unknown field 'colour' (fields: sku, qty, location, uom, "
                 "occurred_at, kind, ref)");
    config_error("[supplier.t]\ncolumns = sku=A, sku=B\n", 2, "columns: field sku mapped twice");
    config_error("[supplier.t]\ncolumns = sku=A, location=B\n", 2,
                 "columns: sku and qty must be mapped");
    config_error("[supplier.t]\ncolumns = sku=A, qty\n", 2, "columns: item 2: expected name=value");
    config_error("[supplier.t]\ncolumns = sku=A, qty=\n", 2, "columns: item 2 (qty): empty value");
    config_error("[supplier.t]\ncolumns = sku=A, qty=\"B\n", 2,
                 "columns: item 2 (qty): unclosed quote");
    config_error("[supplier.t]\ncolumns = sku=A, qty=B,\n", 2,
                 "columns: item 3: empty (after a comma)");
    config_error("[supplier.t]\nheader = false\ncolumns = sku=1, qty=QTY\n", 3,
                 "columns: field qty: 'QTY' is not a column number 1..4096 (header = false)");
    config_error("[supplier.t]\nheader = false\ncolumns = sku=0, qty=1\n", 3,
                 "columns: field sku: '0' is not a column number 1..4096 (header = false)");
    config_error("[supplier.t]\nkind = sale\n", 2, "kind: 'sale' is not count, asn or receipt");
    config_error("[supplier.t]\nuom = PALLET-OF-40\n", 2,
                 "uom: 'PALLET-OF-40' is 12 bytes, longer than 8");
}

LEAK_TEST(supplier_csv, delimiter_words_and_characters)
{
    static const struct {
        const char *value;
        const char *data;
    } cases[] = {
        {"comma", "sku,qty\nA,1\n"}, {"semicolon", "sku;qty\nA;1\n"},
        {"pipe", "sku|qty\nA|1\n"},  {"TAB", "sku\tqty\nA\t1\n"},
        {"!", "sku!qty\nA!1\n"},     {"tab", "sku\tqty\n\t\n \t \nA\t1\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char ini[128];
        snprintf(ini, sizeof ini, "[supplier.t]\ndelimiter = %s\n", cases[i].value);
        feed f = open_str(ini, cases[i].data);
        sf_supplier_row row;
        sf_error err;
        do {
            cr_assert(sf_adapter_csv.next(f.state, &row, &err) == SF_OK, "%s", cases[i].value);
        } while (!row.ok); /* the tab case has two tab-only records first */
        cr_assert(strcmp(row.item, "A") == 0 && row.qty.units == 1, "%s", cases[i].value);
        next_end(&f);
        close_feed(&f);
    }
}

/* --- supplier times (shared with jsonl) ----------------------------------------------- */

static void time_ok(const char *s, int64_t want)
{
    sf_feed_ctx ctx = {"t", READ_AT, TZ_CHICAGO};
    int64_t got = -1;
    sf_error err;
    cr_assert(sf_adapter_time_parse(s, strlen(s), &ctx, &got, &err) == SF_OK, "'%s': %s", s,
              err.msg);
    cr_assert(got == want, "'%s' -> %lld, want %lld", s, (long long)got, (long long)want);
}

static void time_bad(const char *s, const char *msg)
{
    sf_feed_ctx ctx = {"t", READ_AT, TZ_CHICAGO};
    int64_t got = -1;
    sf_error err;
    cr_assert(sf_adapter_time_parse(s, strlen(s), &ctx, &got, &err) == SF_EINVAL, "'%s' accepted",
              s);
    cr_assert(got == -1);
    cr_assert(strcmp(err.msg, msg) == 0, "\n  got:  %s\n  want: %s", err.msg, msg);
}

LEAK_TEST(supplier_time, naive_times_are_in_the_supplier_timezone)
{
    time_ok("2026-11-20 06:00", T0600);
    time_ok("2026-11-20T06:00", T0600);
    time_ok("2026-11-20 06:00:00", T0600);
    time_ok("2026-11-20t06:00:00", T0600);
    time_ok("2026-11-20 06:00:00.25", T0600 + 250);
    time_ok("2026-11-20 06:00:00.123456789", T0600 + 123);
    time_ok("2026-11-19 23:59:59", INT64_C(1795154399000));
}

LEAK_TEST(supplier_time, an_offset_wins_over_the_supplier_timezone)
{
    time_ok("2026-11-20T12:00:00Z", T0600);
    time_ok("2026-11-20T07:00:00-05:00", T0600);
    time_ok("2026-11-20 12:00:00.500z", T0600 + 500);
    time_bad("2026-11-20T06:00Z", "field occurred_at: '2026-11-20T06:00Z' is not an RFC 3339 "
                                  "timestamp (expected YYYY-MM-DDTHH:MM:SS[.sss] and Z or +hh:mm)");
    time_bad("2026-11-20T06:00:00+5", "field occurred_at: '2026-11-20T06:00:00+5' is not an RFC "
                                      "3339 timestamp (expected YYYY-MM-DDTHH:MM:SS[.sss] and Z "
                                      "or +hh:mm)");
}

LEAK_TEST(supplier_time, a_date_is_the_end_of_that_day_or_the_read_time)
{
    time_ok("2026-11-19", INT64_C(1795154399999)); /* 23:59:59.999 CST */
    time_ok("2026-11-20", READ_AT);                /* the day it was read */
    time_bad("2026-11-21", "field occurred_at: '2026-11-21' is in the future (read at "
                           "2026-11-20T13:00:00.000Z)");
}

LEAK_TEST(supplier_time, epoch_ms)
{
    time_ok("1795176000000", T0600);
    time_ok("1795179600000", READ_AT);
    time_bad("1795179600001", "field occurred_at: '1795179600001' is in the future (read at "
                              "2026-11-20T13:00:00.000Z)");
    time_bad("1795176000", "field occurred_at: '1795176000' is before 2000-01-01");
    time_bad("20261120", "field occurred_at: '20261120' is before 2000-01-01");
    time_bad("9999999999999999999",
             "field occurred_at: '9999999999999999999' is not a time (epoch ms out of range)");
}

LEAK_TEST(supplier_time, malformed_times)
{
    time_bad("1999-12-31T23:59:59Z", "field occurred_at: '1999-12-31T23:59:59Z' is before "
                                     "2000-01-01");
    time_bad("2026-02-30", "field occurred_at: '2026-02-30' is not a time (day out of range for "
                           "the month)");
    time_bad("2026-13-01 00:00", "field occurred_at: '2026-13-01 00:00' is not a time (month out "
                                 "of range)");
    time_bad("2026-11-20 24:00", "field occurred_at: '2026-11-20 24:00' is not a time (hour, "
                                 "minute or second out of range)");
    time_bad("2026-11-20 6:00", "field occurred_at: '2026-11-20 6:00' is not a time (expected RFC "
                                "3339, YYYY-MM-DD[ HH:MM[:SS]] or epoch ms)");
    time_bad("2026-11-20 06:00 ", "field occurred_at: '2026-11-20 06:00 ' is not a time "
                                  "(trailing characters)");
    time_bad("2026-11-20 06:00:00.", "field occurred_at: '2026-11-20 06:00:00.' is not a time "
                                     "(the fraction must have 1 to 9 digits)");
    time_bad("20/11/2026", "field occurred_at: '20/11/2026' is not a time (expected RFC 3339, "
                           "YYYY-MM-DD[ HH:MM[:SS]] or epoch ms)");
    time_bad("-1", "field occurred_at: '-1' is not a time (expected RFC 3339, YYYY-MM-DD[ "
                   "HH:MM[:SS]] or epoch ms)");
}
