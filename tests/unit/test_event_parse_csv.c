/*
 * test_event_parse_csv: CSV with a header -> sf_event. The header names
 * the JSON fields; RFC 4180 quoting within one line ("" escapes, CRLF
 * tolerated; a quoted cell spanning lines is rejected); empty cell =
 * absent; qty and timestamps as text. CSV and JSON build events through
 * the same code, so the same content must give the same event and id.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "event_parse.h"
#include "leak_guard.h"

#define NOW INT64_C(1795514400000) /* 2026-11-24T10:00:00Z */
#define HEADER "event_id,kind,sku,location,qty,occurred_at,channel,ref"

static sf_parse_opts opts_fixed(void)
{
    sf_parse_opts o;
    sf_parse_opts_init(&o);
    o.now_ms = NOW + 1000;
    o.default_source = "csv-feed";
    return o;
}

static sf_csv_header *header_ok(const char *line)
{
    sf_parse_opts o = opts_fixed();
    sf_csv_header *h = NULL;
    sf_error err;
    sf_status st = sf_csv_header_parse(line, strlen(line), &o, &h, &err);
    cr_assert(st == SF_OK && h, "header %s rejected: %s", line, err.msg);
    return h;
}

static void header_reject(const char *line, const char *msg)
{
    sf_parse_opts o = opts_fixed();
    sf_csv_header *h = (sf_csv_header *)1;
    sf_error err;
    cr_assert(sf_csv_header_parse(line, strlen(line), &o, &h, &err) == SF_EINVAL, "accepted %s",
              line);
    cr_assert(h == NULL);
    cr_assert(strcmp(err.msg, msg) == 0, "\n  got:  %s\n  want: %s", err.msg, msg);
}

static sf_event row_ok(const char *header, const char *row)
{
    sf_csv_header *h = header_ok(header);
    sf_parse_opts o = opts_fixed();
    sf_event ev;
    sf_error err;
    sf_status st = sf_event_parse_csv(h, row, strlen(row), &o, &ev, &err);
    sf_csv_header_free(h);
    cr_assert(st == SF_OK, "row %s rejected: %s", row, err.msg);
    return ev;
}

static void row_reject(const char *header, const char *row, const char *msg)
{
    sf_csv_header *h = header_ok(header);
    sf_parse_opts o = opts_fixed();
    sf_event ev;
    sf_error err;
    sf_status st = sf_event_parse_csv(h, row, strlen(row), &o, &ev, &err);
    sf_csv_header_free(h);
    cr_assert(st == SF_EINVAL, "accepted %s", row);
    cr_assert(strcmp(err.msg, msg) == 0, "%s\n  got:  %s\n  want: %s", row, err.msg, msg);
}

LEAK_TEST(event_parse_csv, header_columns)
{
    sf_csv_header *h = header_ok(HEADER);
    cr_assert(sf_csv_header_columns(h) == 8);
    sf_csv_header_free(h);
    h = header_ok("kind,sku,location,qty,occurred_at\r\n");
    cr_assert(sf_csv_header_columns(h) == 5);
    sf_csv_header_free(h);
    h = header_ok("\"occurred_at\",qty,\"location\",sku,kind,expires_at,condition,source,ref,"
                  "channel,event_id");
    cr_assert(sf_csv_header_columns(h) == 11);
    sf_csv_header_free(h);
    sf_csv_header_free(NULL);
}

LEAK_TEST(event_parse_csv, header_rejects)
{
    header_reject("kind,sku,chanel,location,qty,occurred_at",
                  "CSV header: unknown column 'chanel' (column 3)");
    header_reject("kind,sku,location,qty,occurred_at,", "CSV header: unknown column '' (column 6)");
    header_reject("kind,sku,location,qty,occurred_at,sku",
                  "CSV header: column 'sku' appears twice (column 6)");
    header_reject("kind,sku,location,occurred_at", "CSV header: required column 'qty' is missing");
    header_reject("sku,location,qty,occurred_at", "CSV header: required column 'kind' is missing");
    header_reject("Kind,sku,location,qty,occurred_at",
                  "CSV header: unknown column 'Kind' (column 1)");
    header_reject("kind,\"sku,location,qty,occurred_at",
                  "CSV header: cell 2: quoted cell is not closed on this line (cells spanning "
                  "lines are not supported)");
    char many[512] = "kind";
    for (int i = 0; i < 70; i++)
        strcat(many, ",x");
    header_reject(many, "CSV header: more than 64 columns");
    sf_parse_opts o = opts_fixed();
    o.max_line = 10;
    sf_csv_header *h;
    sf_error err;
    cr_assert(sf_csv_header_parse(HEADER, strlen(HEADER), &o, &h, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "line is 54 bytes, longer than max_line 10") == 0, "%s", err.msg);
}

LEAK_TEST(event_parse_csv, parses_a_row)
{
    sf_event ev = row_ok(HEADER, "s-1,sale,SKU-1,STORE-1,2,2026-11-24T10:00:00.123Z,web,order-1");
    cr_assert(strcmp(ev.event_id, "s-1") == 0);
    cr_assert(ev.kind == SF_KIND_SALE && ev.qty == 2);
    cr_assert(strcmp(ev.sku, "SKU-1") == 0 && strcmp(ev.location, "STORE-1") == 0);
    cr_assert(ev.occurred_at == INT64_C(1795514400123));
    cr_assert(strcmp(ev.source, "csv-feed") == 0);
    cr_assert(ev.has_channel && strcmp(ev.channel, "web") == 0);
    cr_assert(ev.has_ref && strcmp(ev.ref, "order-1") == 0);
    cr_assert(!ev.has_condition && !ev.has_expires_at);
}

LEAK_TEST(event_parse_csv, empty_cells_are_absent_and_ids_match_json)
{
    /* printf 'SALE\x1fSKU-1\x1fSTORE-1\x1f2\x1f1795514400123\x1fweb-feed\x1fweb\x1forder-1\x1f\x1f'
     *   | sha256sum
     * fce204fda205e5a964a60a3226c4fc01277d47953248bd07bfe6a66cff9817b8 */
    sf_event ev =
        row_ok(HEADER ",source", ",SALE,SKU-1,STORE-1,2,1795514400123,web,order-1,web-feed");
    cr_assert(strcmp(ev.event_id, "d-fce204fda205e5a964a60a3226c4fc01277d4795") == 0, "%s",
              ev.event_id);
    /* the same line as JSON gives the same event */
    sf_parse_opts o = opts_fixed();
    o.default_source = "web-feed";
    const char *json = "{\"kind\":\"sale\",\"sku\":\"SKU-1\",\"location\":\"STORE-1\",\"qty\":2,"
                       "\"occurred_at\":\"2026-11-24T10:00:00.123Z\",\"channel\":\"web\","
                       "\"ref\":\"order-1\"}";
    sf_event j;
    sf_error err;
    cr_assert(sf_event_parse_json(json, strlen(json), &o, &j, &err) == SF_OK, "%s", err.msg);
    cr_assert(strcmp(j.event_id, ev.event_id) == 0);

    ev = row_ok(HEADER, "\"\",asn,A,L,5,1,,");
    cr_assert(!ev.has_channel && !ev.has_ref);
    cr_assert(strncmp(ev.event_id, "d-", 2) == 0 && strlen(ev.event_id) == 42);
}

LEAK_TEST(event_parse_csv, quoting_rfc4180)
{
    sf_event ev = row_ok(HEADER, "\"s-2\",\"sale\",\"SKU, with comma\",STORE-1,\"3\",1,,");
    cr_assert(strcmp(ev.sku, "SKU, with comma") == 0, "%s", ev.sku);
    cr_assert(ev.qty == 3);
    ev = row_ok(HEADER, "s-3,sale,\"12\"\" \"\"pipe\"\"\",STORE-1,1,1,,\"a\"\"b\"");
    cr_assert(strcmp(ev.sku, "12\" \"pipe\"") == 0, "%s", ev.sku);
    cr_assert(strcmp(ev.ref, "a\"b") == 0, "%s", ev.ref);
    ev = row_ok(HEADER, "s-4,sale,\"\"\"\",STORE-1,1,1,,\r\n");
    cr_assert(strcmp(ev.sku, "\"") == 0, "%s", ev.sku);
    cr_assert(!ev.has_ref, "CRLF stripped, last cell empty");
    ev = row_ok(HEADER, "s-5,sale, spaced ,STORE-1,1,1,,\r");
    cr_assert(strcmp(ev.sku, " spaced ") == 0, "spaces are data in RFC 4180");
}

LEAK_TEST(event_parse_csv, quoting_rejects)
{
    row_reject(HEADER, "s-1,sale,\"SKU-1,STORE-1,2,1,,",
               "cell 3: quoted cell is not closed on this line (cells spanning lines are not "
               "supported)");
    row_reject(HEADER, "s-1,sale,\"SKU\"-1,STORE-1,2,1,,",
               "cell 3: characters after the closing quote (a quote inside a quoted cell is "
               "written \"\")");
    row_reject(HEADER, "s-1,sale,SK\"U,STORE-1,2,1,,",
               "cell 3: a quote inside an unquoted cell (quote the whole cell and write the quote "
               "as \"\")");
}

LEAK_TEST(event_parse_csv, cell_count_must_match_header)
{
    row_reject(HEADER, "s-1,sale,SKU-1,STORE-1,2,1,web", "row has 7 cells, the header has 8");
    row_reject(HEADER, "s-1,sale,SKU-1,STORE-1,2,1,web,o,extra",
               "row has more than 8 cells, the header has 8");
    row_reject(HEADER, "s-1", "row has 1 cell, the header has 8");
}

LEAK_TEST(event_parse_csv, numbers_and_times_as_text)
{
    sf_event ev = row_ok(HEADER, "a-1,adjust,A,L,-3,2026-11-24T09:00:00+01:00,,");
    cr_assert(ev.qty == -3);
    cr_assert(ev.occurred_at == INT64_C(1795507200000), "%lld", (long long)ev.occurred_at);
    ev = row_ok(HEADER, "a-2,asn,A,L,0007,1795514400123,,");
    cr_assert(ev.qty == 7 && ev.occurred_at == INT64_C(1795514400123));
    row_reject(HEADER, "a-3,sale,A,L,2.5,1,,", "field qty: '2.5' is not an integer");
    row_reject(HEADER, "a-3,sale,A,L, 2,1,,", "field qty: ' 2' is not an integer");
    row_reject(HEADER, "a-3,sale,A,L,+2,1,,", "field qty: '+2' is not an integer");
    row_reject(HEADER, "a-3,sale,A,L,-,1,,", "field qty: '-' is not an integer");
    row_reject(HEADER, "a-3,sale,A,L,9223372036854775808,1,,",
               "field qty: '9223372036854775808' is not an integer");
    row_reject(HEADER, "a-3,sale,A,L,,1,,", "field qty: missing (required)");
    row_reject(HEADER, "a-3,sale,A,L,1,,,", "field occurred_at: missing (required)");
    row_reject(HEADER, "a-3,sale,A,L,1,yesterday,,",
               "field occurred_at: 'yesterday' is not an RFC 3339 timestamp (expected "
               "YYYY-MM-DDTHH:MM:SS[.sss] and Z or +hh:mm)");
    row_reject(HEADER, "a-3,sale,A,L,1,-1,,",
               "field occurred_at: -1 is before 1970-01-01T00:00:00Z");
    ev = row_ok(HEADER ",source", "a-4,adjust,A,L,-9223372036854775808,0,,,x");
    cr_assert(ev.qty == INT64_MIN && ev.occurred_at == 0);
}

LEAK_TEST(event_parse_csv, optional_columns)
{
    const char *hdr = "kind,sku,location,qty,occurred_at,condition,expires_at,source";
    sf_event ev = row_ok(hdr, "return,A,L,1,1,damaged,,pos");
    cr_assert(ev.has_condition && ev.condition == SF_COND_DAMAGED);
    cr_assert(strcmp(ev.source, "pos") == 0);
    ev = row_ok(hdr, "reserve,A,L,1,1,,2026-11-24T10:30:00Z,");
    cr_assert(ev.has_expires_at && ev.expires_at == INT64_C(1795516200000));
    cr_assert(strcmp(ev.source, "csv-feed") == 0, "empty source cell takes the default");
    row_reject(hdr, "sale,A,L,1,1,,1000,",
               "field expires_at: only RESERVE may carry expires_at "
               "(kind is SALE)");
    row_reject(hdr, "return,A,L,1,1,used,,",
               "field condition: 'used' is not RESELLABLE or DAMAGED");
}

LEAK_TEST(event_parse_csv, long_cells_use_the_heap_path)
{
    /* a row longer than the 4 KiB stack copy */
    size_t n = 6000;
    char *row = malloc(n + 64);
    cr_assert(row);
    strcpy(row, "l-1,sale,");
    size_t off = strlen(row);
    memset(row + off, 'k', 5000);
    off += 5000;
    strcpy(row + off, ",L,1,1,,");
    row_reject(HEADER, row, "field sku: 5000 bytes, longer than 64");
    /* quoted long cell decodes in place */
    strcpy(row, "l-1,sale,\"");
    off = strlen(row);
    memset(row + off, 'q', 4500);
    off += 4500;
    strcpy(row + off, "\",L,1,1,,");
    row_reject(HEADER, row, "field sku: 4500 bytes, longer than 64");
    free(row);
}

LEAK_TEST(event_parse_csv, string_rules)
{
    row_reject(HEADER, "s-1,sale,A,STORE 1,1,1,,",
               "field location: 'STORE 1' has a character outside A-Z a-z 0-9 _ - (byte 6)");
    row_reject(HEADER, "s-1,sale,A\x01,L,1,1,,",
               "field sku: 'A\\x01' holds control character U+0001 (byte 2)");
    row_reject(HEADER, "s-1,sale,\xc0\xafx,L,1,1,,",
               "field sku: '\\xc0\\xafx' is not valid UTF-8 (byte 1)");
    row_reject(HEADER, "s-1,sale,A,L,1,1,we b,",
               "field channel: 'we b' has a character outside "
               "A-Z a-z 0-9 _ - (byte 3)");
    row_reject(HEADER, "s-1,refund,A,L,1,1,,",
               "field kind: 'refund' is not a kind (SALE, RETURN, RECEIPT, ASN, COUNT, ADJUST, "
               "TRANSFER_OUT, TRANSFER_IN, RESERVE, RELEASE)");
}
