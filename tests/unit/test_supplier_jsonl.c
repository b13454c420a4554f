/*
 * test_supplier_jsonl: the jsonl supplier adapter
 * (suppliers/jsonl_adapter.c). The umbrella sample row by row; JSON
 * pointers (nesting, ~0 ~1, array indices, keys written with \u escapes);
 * quantities read exactly from the number's own text (reals never pass
 * through a double); the default pointers; every reject class with its
 * position and reason; config errors; and the digest: the same under key
 * order, spacing, CRLF, BOM, blank lines and unmapped fields, different
 * when a quantity changes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../suppliers/adapter.h"
#include "config.h"
#include "leak_guard.h"

#define READ_AT INT64_C(1795179600000) /* 2026-11-20T13:00:00Z */
#define TZ_EST (-5 * 3600)
#define T1200Z INT64_C(1795176000000)
#define SAMPLE_DIGEST "0dfcb1b5c4b2de6fdfc99312b0aa3fee77dac02f7b3ec7e3a2f38ee0b86e22ec"

#define UMBRELLA                                                                                   \
    "[supplier.umbrella]\n"                                                                        \
    "format = jsonl\n"                                                                             \
    "fields = sku=/item/id, qty=/qty, location=/warehouse, uom=/uom,\n"                            \
    "    occurred_at=/as_of, kind=/type, ref=/po\n"                                                \
    "kind = count\n"                                                                               \
    "uom = EA\n"

/* --- helpers ------------------------------------------------------------------ */

static char ini_path[64];

static sf_status configure(const char *ini, const char *section, void **opts, sf_error *err)
{
    snprintf(ini_path, sizeof ini_path, "/tmp/sf-test-jsonl-XXXXXX");
    int fd = mkstemp(ini_path);
    cr_assert(fd >= 0, "mkstemp failed");
    cr_assert(write(fd, ini, strlen(ini)) == (ssize_t)strlen(ini));
    close(fd);
    sf_config cfg;
    sf_config_init(&cfg);
    sf_error lerr;
    sf_status st = sf_config_load(&cfg, ini_path, &lerr);
    cr_assert(st == SF_OK, "config: %s", lerr.msg);
    st = sf_adapter_jsonl.configure(&cfg, section, opts, err);
    sf_config_free(&cfg);
    unlink(ini_path);
    return st;
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
    feed f = {NULL, NULL};
    sf_error err;
    cr_assert(configure(ini, section, &f.opts, &err) == SF_OK, "configure: %s", err.msg);
    sf_feed_ctx ctx = {"t.jsonl", READ_AT, TZ_EST};
    cr_assert(sf_adapter_jsonl.open(f.opts, &ctx, data, len, &f.state, &err) == SF_OK, "open: %s",
              err.msg);
    cr_assert(strlen(sf_adapter_jsonl.digest(f.state)) == 64);
    return f;
}

static feed open_str(const char *ini, const char *data)
{
    return open_feed(ini, "supplier.t", data, strlen(data));
}

static void close_feed(feed *f)
{
    sf_adapter_jsonl.close(f->state);
    sf_adapter_jsonl.free_opts(f->opts);
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
    cr_assert(sf_adapter_jsonl.next(f->state, &row, &err) == SF_OK, "expected row %llu",
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

static void next_qty(feed *f, uint64_t ordinal, int64_t units, int scale)
{
    sf_supplier_row row;
    sf_error err;
    cr_assert(sf_adapter_jsonl.next(f->state, &row, &err) == SF_OK);
    cr_assert(row.ok, "row %llu rejected: %s", (unsigned long long)ordinal, row.error.msg);
    cr_assert(row.ordinal == ordinal);
    cr_assert(row.qty.units == units && row.qty.scale == scale,
              "row %llu: qty {%lld, %d}, want {%lld, %d}", (unsigned long long)ordinal,
              (long long)row.qty.units, row.qty.scale, (long long)units, scale);
}

static void next_reject(feed *f, uint64_t ordinal, const char *position, const char *msg)
{
    sf_supplier_row row;
    sf_error err;
    cr_assert(sf_adapter_jsonl.next(f->state, &row, &err) == SF_OK, "expected row %llu",
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
    cr_assert(sf_adapter_jsonl.next(f->state, &row, &err) == SF_ENOTFOUND, "expected the end");
    cr_assert(sf_adapter_jsonl.next(f->state, &row, &err) == SF_ENOTFOUND, "the end stays");
}

static char *read_sample(size_t *len)
{
    char path[512];
    const char *root = getenv("SF_ROOT");
    snprintf(path, sizeof path, "%s%sexamples/suppliers/umbrella-stock.jsonl", root ? root : "",
             root ? "/" : "");
    FILE *in = fopen(path, "rb");
    cr_assert(in, "cannot open %s (run from the repository root or set SF_ROOT)", path);
    static char buf[8192];
    *len = fread(buf, 1, sizeof buf - 1, in);
    fclose(in);
    buf[*len] = '\0';
    return buf;
}

static void expect_sample_rows(feed *f, const int lines[5])
{
    char pos[5][16];
    for (int i = 0; i < 5; i++)
        snprintf(pos[i], sizeof pos[i], "line %d", lines[i]);
    next_row(f, (want){1, pos[0], "UMB-100", "RC-1", 40, 0, "EA", T1200Z, SF_KIND_COUNT, ""});
    next_row(f, (want){2, pos[1], "UMB-200", "RC-1", 25, 1, "CA", T1200Z, SF_KIND_COUNT, ""});
    next_row(f, (want){3, pos[2], "UMB-300", "RC-2", 18, 0, "EA", T1200Z, SF_KIND_COUNT, ""});
    next_row(f, (want){4, pos[3], "UMB-100", "RC-2", 120, 0, "EA", INT64_C(1795174200000),
                       SF_KIND_ASN, "PO-88123"});
    next_row(f, (want){5, pos[4], "UMB-200", "RC-1", 4, 0, "CA", INT64_C(1795175100000),
                       SF_KIND_RECEIPT, "PO-88007"});
    next_end(f);
}

static void digest_of(const char *data, char out[65])
{
    feed f = open_feed(UMBRELLA, "supplier.umbrella", data, strlen(data));
    memcpy(out, sf_adapter_jsonl.digest(f.state), 65);
    close_feed(&f);
}

/* --- the sample ------------------------------------------------------------------- */

LEAK_TEST(supplier_jsonl, umbrella_sample_rows_exactly)
{
    size_t len;
    const char *data = read_sample(&len);
    feed f = open_feed(UMBRELLA, "supplier.umbrella", data, len);
    cr_assert(strcmp(sf_adapter_jsonl.digest(f.state), SAMPLE_DIGEST) == 0, "digest %s",
              sf_adapter_jsonl.digest(f.state));
    expect_sample_rows(&f, (const int[5]){1, 2, 3, 4, 5});
    close_feed(&f);
}

LEAK_TEST(supplier_jsonl, keys_and_format)
{
    cr_assert(strcmp(sf_adapter_jsonl.format, "jsonl") == 0);
    const char *want[] = {"fields", "kind", "uom"};
    size_t n = 0;
    for (; sf_adapter_jsonl.keys[n]; n++) {
        cr_assert(n < 3);
        cr_assert(strcmp(sf_adapter_jsonl.keys[n], want[n]) == 0, "%s", sf_adapter_jsonl.keys[n]);
    }
    cr_assert(n == 3);
}

/* --- the digest ------------------------------------------------------------------- */

LEAK_TEST(supplier_jsonl, layout_and_unmapped_fields_do_not_change_the_digest)
{
    static const char data[] =
        "\xEF\xBB\xBF{ \"qty\" : 40, \"item\" : {\"id\":\"UMB-100\"}, \"uom\":\"EA\", "
        "\"warehouse\":\"RC-1\", \"as_of\":\"2026-11-20T07:00:00-05:00\", \"type\":\"count\", "
        "\"exported\":\"2026-11-20T12:59:00Z\"}\r\n"
        "\r\n"
        "{\"item\":{\"id\":\"UMB-200\",\"desc\":\"renamed\"},\"qty\":2.5,\"uom\":\"CA\","
        "\"warehouse\":\"RC-1\",\"as_of\":\"2026-11-20T07:00:00-05:00\",\"type\":\"count\"}\r\n"
        "{\"item\":{\"id\":\"UMB-300\"},\"qty\":\"18\",\"uom\":\"EA\",\"warehouse\":\"RC-2\","
        "\"as_of\":1795176000000,\"type\":\"count\",\"po\":null}\r\n"
        "   \t\n"
        "{\"item\":{\"id\":\"UMB-100\"},\"qty\":120,\"uom\":\"EA\",\"warehouse\":\"RC-2\","
        "\"as_of\":\"2026-11-20 06:30\",\"type\":\"asn\",\"po\":\"PO-88123\"}\n"
        "{\"item\":{\"id\":\"UMB-200\"},\"qty\":4,\"uom\":\"CA\",\"warehouse\":\"RC-1\","
        "\"as_of\":\"2026-11-20T11:45:00Z\",\"type\":\"receipt\",\"po\":\"PO-88007\"}";
    feed f = open_feed(UMBRELLA, "supplier.umbrella", data, sizeof data - 1);
    cr_assert(strcmp(sf_adapter_jsonl.digest(f.state), SAMPLE_DIGEST) == 0, "digest %s",
              sf_adapter_jsonl.digest(f.state));
    expect_sample_rows(&f, (const int[5]){1, 3, 4, 6, 7});
    close_feed(&f);
}

LEAK_TEST(supplier_jsonl, a_changed_quantity_changes_the_digest)
{
    size_t len;
    const char *sample = read_sample(&len);
    char *data = malloc(len + 1);
    cr_assert(data);
    memcpy(data, sample, len + 1);
    char *q = strstr(data, "\"qty\":40");
    cr_assert(q);
    q[7] = '1'; /* 40 -> 41 */
    char got[65];
    digest_of(data, got);
    cr_assert(strcmp(got, SAMPLE_DIGEST) != 0, "digest unchanged");
    memcpy(data, sample, len + 1);
    q = strstr(data, "\"qty\":2.5");
    cr_assert(q);
    q[8] = '6'; /* 2.5 -> 2.6: a real, hashed as its text */
    char real[65];
    digest_of(data, real);
    cr_assert(strcmp(real, SAMPLE_DIGEST) != 0 && strcmp(real, got) != 0);
    free(data);
}

LEAK_TEST(supplier_jsonl, digest_separates_records_and_rejects)
{
    static const char *const feeds[] = {
        "{\"sku\":\"A\",\"qty\":1}\n",
        "{\"sku\":\"A\",\"qty\":1}\n{\"sku\":\"A\",\"qty\":1}\n",
        "{\"sku\":\"A\\u001f1\"}\n",
        "not json\n",
        "not json 2\n",
        "[1]\n",
        "{\"sku\":\"A\",\"qty\":{\"n\":1}}\n",
        "{\"sku\":\"A\",\"qty\":{\"n\":2}}\n",
        "",
    };
    size_t n = sizeof feeds / sizeof feeds[0];
    char dig[9][65];
    for (size_t i = 0; i < n; i++) {
        feed f = open_str("[supplier.t]\n", feeds[i]);
        memcpy(dig[i], sf_adapter_jsonl.digest(f.state), 65);
        close_feed(&f);
        for (size_t j = 0; j < i; j++)
            cr_assert(strcmp(dig[i], dig[j]) != 0, "feeds %zu and %zu share a digest", j, i);
    }
    /* no lines: only the defaults record "count" "" */
    cr_assert(
        strcmp(dig[n - 1], "11036b40dc5c0b7ffcd58cdfdbc99e691b36964b950c08e53648a345f91d945a") == 0,
        "%s", dig[n - 1]);
    /* the defaults give absent values their meaning: part of the digest */
    feed f = open_str("[supplier.t]\nkind = asn\n", feeds[0]);
    cr_assert(strcmp(sf_adapter_jsonl.digest(f.state), dig[0]) != 0);
    close_feed(&f);
}

/* --- quantities -------------------------------------------------------------------- */

LEAK_TEST(supplier_jsonl, quantities_are_read_from_their_text)
{
    feed f = open_str("[supplier.t]\n", "{\"sku\":\"A\",\"qty\":0.1}\n"
                                        "{\"sku\":\"A\",\"qty\":2.50}\n"
                                        "{\"sku\":\"A\",\"qty\":12345678901234.5678}\n"
                                        "{\"sku\":\"A\",\"qty\":-0.5}\n"
                                        "{\"sku\":\"A\",\"qty\":1.25e2}\n"
                                        "{\"sku\":\"A\",\"qty\":1E-2}\n"
                                        "{\"sku\":\"A\",\"qty\":5e+1}\n"
                                        "{\"sku\":\"A\",\"qty\":7}\n"
                                        "{\"sku\":\"A\",\"qty\":-3}\n"
                                        "{\"sku\":\"A\",\"qty\":\"2.5\"}\n"
                                        "{\"sku\":\"A\",\"qty\":999999999999999999}\n"
                                        "{\"sku\":\"A\",\"qty\":1e-7}\n"
                                        "{\"sku\":\"A\",\"qty\":1000000000000000000}\n"
                                        "{\"sku\":\"A\",\"qty\":\"2,5\"}\n"
                                        "{\"sku\":\"A\",\"qty\":0.1234567}\n");
    next_qty(&f, 1, 1, 1);
    next_qty(&f, 2, 250, 2);
    next_qty(&f, 3, INT64_C(123456789012345678), 4); /* no double holds this */
    next_qty(&f, 4, -5, 1);
    next_qty(&f, 5, 125, 0);
    next_qty(&f, 6, 1, 2);
    next_qty(&f, 7, 50, 0);
    next_qty(&f, 8, 7, 0);
    next_qty(&f, 9, -3, 0);
    next_qty(&f, 10, 25, 1);
    next_qty(&f, 11, INT64_C(999999999999999999), 0);
    next_reject(&f, 12, "line 12",
                "field qty: '0.0000001' is not a decimal number (more than 6 decimals)");
    next_reject(&f, 13, "line 13",
                "field qty: '1000000000000000000' is not a decimal number (more than 18 digits)");
    next_reject(&f, 14, "line 14",
                "field qty: '2,5' is not a decimal number (unexpected ',' at byte 2)");
    next_reject(&f, 15, "line 15",
                "field qty: '0.1234567' is not a decimal number (more than 6 decimals)");
    next_end(&f);
    close_feed(&f);
}

/* --- pointers ---------------------------------------------------------------------- */

LEAK_TEST(supplier_jsonl, pointers_with_escapes_and_array_indices)
{
    feed f =
        open_str("[supplier.t]\n"
                 "fields = sku=/lines/1/a~1b, qty=/lines/1/q~0ty, location=/0,\n"
                 "    ref=\"/x,y\", kind=/\n",
                 "{\"lines\":[{\"a/b\":\"no\",\"q~ty\":9},{\"a/b\":\"L-2\",\"q~ty\":2.75}],"
                 "\"0\":\"W\",\"x,y\":\"R\",\"\":\"asn\"}\n"
                 /* keys written with escapes; the real is found by its decoded key */
                 "{\"lines\":[{},{\"a\\/b\":\"L-3\",\"q\\u007ety\":0.5,\"x\":[1,{\"q~ty\":7}]}]}\n"
                 "{\"lines\":[{\"a/b\":\"L-1\",\"q~ty\":1}]}\n"
                 "{\"lines\":{\"1\":{\"a/b\":\"M\",\"q~ty\":1.5}}}\n");
    next_row(&f, (want){1, "line 1", "L-2", "W", 275, 2, "", 0, SF_KIND_ASN, "R"});
    next_row(&f, (want){2, "line 2", "L-3", "", 5, 1, "", 0, SF_KIND_COUNT, ""});
    next_reject(&f, 3, "line 3", "field sku: no value at '/lines/1/a~1b'");
    next_row(&f, (want){4, "line 4", "M", "", 15, 1, "", 0, SF_KIND_COUNT, ""});
    next_end(&f);
    close_feed(&f);
}

LEAK_TEST(supplier_jsonl, array_indices_are_digits_without_leading_zeros)
{
    feed f = open_str("[supplier.t]\nfields = sku=/s/01, qty=/q/-\n",
                      "{\"s\":[\"a\",\"b\"],\"q\":[1]}\n");
    next_reject(&f, 1, "line 1", "field sku: no value at '/s/01'");
    next_end(&f);
    close_feed(&f);
    f = open_str("[supplier.t]\nfields = sku=/s/1, qty=/q/-\n",
                 "{\"s\":[\"a\",\"b\"],\"q\":[1]}\n");
    next_reject(&f, 1, "line 1", "field qty: no value at '/q/-'");
    next_end(&f);
    close_feed(&f);
}

LEAK_TEST(supplier_jsonl, default_pointers_and_types)
{
    feed f = open_str("[supplier.t]\nuom = EA\n",
                      "{\"sku\":\"A\",\"qty\":1}\n"
                      "{\"sku\":12345,\"qty\":2,\"location\":7,\"ref\":99,\"kind\":\"Receipt\","
                      "\"uom\":\"CA\",\"occurred_at\":1795176000000}\n"
                      "{\"sku\":\"B\",\"qty\":3,\"location\":null,\"uom\":null,\"kind\":null,"
                      "\"ref\":null,\"occurred_at\":null}\n"
                      "{\"sku\":\"C\",\"qty\":4,\"occurred_at\":\"2026-11-20 07:00\"}\n"
                      "{\"sku\":\"D\",\"qty\":5,\"occurred_at\":\"1795176000000\",\"ref\":\"\"}\n");
    next_row(&f, (want){1, "line 1", "A", "", 1, 0, "EA", 0, SF_KIND_COUNT, ""});
    next_row(&f, (want){2, "line 2", "12345", "7", 2, 0, "CA", T1200Z, SF_KIND_RECEIPT, "99"});
    next_row(&f, (want){3, "line 3", "B", "", 3, 0, "EA", 0, SF_KIND_COUNT, ""});
    next_row(&f, (want){4, "line 4", "C", "", 4, 0, "EA", T1200Z, SF_KIND_COUNT, ""});
    next_row(&f, (want){5, "line 5", "D", "", 5, 0, "EA", T1200Z, SF_KIND_COUNT, ""});
    next_end(&f);
    close_feed(&f);
}

LEAK_TEST(supplier_jsonl, default_options_from_an_empty_config)
{
    /* what fuzz targets and tests use: no file, no section */
    sf_config cfg;
    sf_config_init(&cfg);
    void *opts = NULL;
    sf_error err;
    cr_assert(sf_adapter_jsonl.configure(&cfg, "supplier.none", &opts, &err) == SF_OK, "%s",
              err.msg);
    sf_config_free(&cfg);
    sf_feed_ctx ctx = {NULL, READ_AT, 0};
    void *state = NULL;
    const char *data = "{\"sku\":\"A\",\"qty\":2}\n";
    cr_assert(sf_adapter_jsonl.open(opts, &ctx, data, strlen(data), &state, &err) == SF_OK, "%s",
              err.msg);
    sf_supplier_row row;
    cr_assert(sf_adapter_jsonl.next(state, &row, &err) == SF_OK);
    cr_assert(row.ok && strcmp(row.item, "A") == 0 && row.qty.units == 2 &&
              row.kind == SF_KIND_COUNT);
    cr_assert(sf_adapter_jsonl.next(state, &row, &err) == SF_ENOTFOUND);
    sf_adapter_jsonl.close(state);
    sf_adapter_jsonl.free_opts(opts);
}

/* --- rejected rows ------------------------------------------------------------------ */

LEAK_TEST(supplier_jsonl, every_reject_class_with_position_and_reason)
{
    feed f = open_str(
        "[supplier.t]\nfields = sku=/item/id, qty=/qty, uom=/uom, occurred_at=/at, kind=/type\n",
        "{\"item\":{\"id\":\"A-1\"},\"qty\":1}\n"
        "{\"item\":{\"id\":\"A-2\"},\"qty\":1\n"
        "[{\"item\":{\"id\":\"A-3\"},\"qty\":1}]\n"
        "\"A-4\"\n"
        "{\"item\":{},\"qty\":1}\n"
        "{\"item\":{\"id\":\"A-6\"},\"qty\":null}\n"
        "{\"item\":{\"id\":\"A-7\"},\"qty\":{\"value\":1}}\n"
        "{\"item\":{\"id\":true},\"qty\":1}\n"
        "{\"item\":{\"id\":1.5},\"qty\":1}\n"
        "{\"item\":{\"id\":\"A-10\"},\"qty\":1,\"uom\":12}\n"
        "{\"item\":{\"id\":\"SKU-0123456789012345678901234567890123456789012345678901234567890\"},"
        "\"qty\":1}\n"
        "{\"item\":{\"id\":\"Caf\xe9\"},\"qty\":1}\n"
        "{\"item\":{\"id\":\"A-13\"},\"qty\":1,\"item\":{\"id\":\"A-13b\"}}\n"
        "{\"item\":{\"id\":\"A-14\"},\"qty\":1,\"at\":\"tomorrow\"}\n"
        "{\"item\":{\"id\":\"A-15\"},\"qty\":1,\"at\":\"2026-11-21T00:00:00Z\"}\n"
        "{\"item\":{\"id\":\"A-16\"},\"qty\":1,\"type\":\"sale\"}\n"
        "{\"item\":{\"id\":\"A\\u0007\"},\"qty\":1}\n"
        "{\"item\":{\"id\":\"A\\u0000\"},\"qty\":1}\n"
        "{\"item\":{\"id\":\"A-19\"},\"qty\":1,\"at\":17951760}\n"
        "{\"item\":{\"id\":\"A-20\"},\"qty\":\"\"}\n"
        "{\"item\":{\"id\":\"\"},\"qty\":1}\n"
        "{\"item\":{\"id\":\"A-22\"},\"qty\":1,\"type\":\"ASN\",\"at\":1795176000000}\n");
    next_row(&f, (want){1, "line 1", "A-1", "", 1, 0, "", 0, SF_KIND_COUNT, ""});
    next_reject(&f, 2, "line 2", "not JSON: '}' expected near end of file (byte 28)");
    next_reject(&f, 3, "line 3", "not a JSON object (an array)");
    next_reject(&f, 4, "line 4", "not a JSON object (a string)");
    next_reject(&f, 5, "line 5", "field sku: no value at '/item/id'");
    next_reject(&f, 6, "line 6", "field qty: null at '/qty'");
    next_reject(&f, 7, "line 7",
                "field qty: an object at '/qty', expected a number or a decimal string");
    next_reject(&f, 8, "line 8",
                "field sku: a boolean at '/item/id', expected a string or an integer");
    next_reject(&f, 9, "line 9",
                "field sku: a real at '/item/id', expected a string or an integer");
    next_reject(&f, 10, "line 10", "field uom: an integer at '/uom', expected a string");
    next_reject(&f, 11, "line 11", "field sku: 65 bytes, longer than 64");
    next_reject(&f, 12, "line 12", "not valid UTF-8 (byte 19)");
    next_reject(&f, 13, "line 13", "not JSON: duplicate object key near '\"item\"' (byte 36)");
    next_reject(&f, 14, "line 14",
                "field occurred_at: 'tomorrow' is not a time (expected RFC 3339, "
                "YYYY-MM-DD[ HH:MM[:SS]] or epoch ms)");
    next_reject(&f, 15, "line 15",
                "field occurred_at: '2026-11-21T00:00:00Z' is in the future (read at "
                "2026-11-20T13:00:00.000Z)");
    next_reject(&f, 16, "line 16", "field kind: 'sale' is not count, asn or receipt");
    next_reject(&f, 17, "line 17", "field sku: 'A\\x07' holds control character U+0007 (byte 2)");
    next_reject(&f, 18, "line 18", "not JSON: \\u0000 is not allowed in a string (byte 23)");
    next_reject(&f, 19, "line 19", "field occurred_at: '17951760' is before 2000-01-01");
    next_reject(&f, 20, "line 20", "field qty: missing");
    next_reject(&f, 21, "line 21", "field sku: missing");
    next_row(&f, (want){22, "line 22", "A-22", "", 1, 0, "", T1200Z, SF_KIND_ASN, ""});
    next_end(&f);
    close_feed(&f);
}

LEAK_TEST(supplier_jsonl, a_line_over_one_mib_is_rejected_and_reading_goes_on)
{
    size_t big = ((size_t)1 << 20) + 1;
    size_t cap = big + 64;
    char *data = malloc(cap);
    cr_assert(data);
    size_t o = (size_t)snprintf(data, cap, "{\"sku\":\"");
    memset(data + o, 'x', big - o - 2);
    o = big - 2;
    memcpy(data + o, "\"}", 2);
    o += 2;
    o += (size_t)snprintf(data + o, cap - o, "\r\n{\"sku\":\"B\",\"qty\":2}");
    feed f = open_feed("[supplier.t]\n", "supplier.t", data, o);
    next_reject(&f, 1, "line 1", "line of 1048577 bytes, longer than 1048576");
    next_row(&f, (want){2, "line 2", "B", "", 2, 0, "", 0, SF_KIND_COUNT, ""});
    next_end(&f);
    close_feed(&f);
    free(data);
}

LEAK_TEST(supplier_jsonl, blank_input_has_no_rows)
{
    feed f = open_str("[supplier.t]\n", "\xEF\xBB\xBF\r\n  \n\t\n");
    next_end(&f);
    close_feed(&f);
}

/* --- configuration ------------------------------------------------------------------- */

LEAK_TEST(supplier_jsonl, config_errors_cite_path_line_section_key)
{
    config_error("[supplier.t]\nformat = jsonl\nfields = sku=item/id, qty=/qty\n", 3,
                 "fields: field sku: 'item/id': a JSON pointer starts with '/'");
    config_error("[supplier.t]\nfields = sku=/a~2b, qty=/qty\n", 2,
                 "fields: field sku: '/a~2b': '~' must be followed by 0 or 1");
    config_error("[supplier.t]\nfields = sku=/a~, qty=/qty\n", 2,
                 "fields: field sku: '/a~': '~' must be followed by 0 or 1");
    config_error("[supplier.t]\nfields = sku=/sku, qty=/qty, size=/size\n", 2,
                 "fields: unknown field 'size' (fields: sku, qty, location, uom, occurred_at, "
                 "kind, ref)");
    config_error("[supplier.t]\nfields = qty=/qty\n", 2, "fields: sku and qty must be mapped");
    config_error("[supplier.t]\nfields = sku=/a, qty=/b, sku=/c\n", 2,
                 "fields: field sku mapped twice");
    config_error("[supplier.t]\nfields =\n", 2, "fields: no name=value items");
    config_error("[supplier.t]\nkind = transfer\n", 2,
                 "kind: 'transfer' is not count, asn or receipt");
    config_error("[supplier.t]\nuom = E\x01\n", 2,
                 "uom: 'E\\x01' holds control character U+0001 (byte 2)");
}
