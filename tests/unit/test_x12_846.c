/*
 * test_x12_846: the x12-846 adapter (suppliers/x12_846.c). The acme
 * sample row by row; the location layouts (heading N1, N1 loops before
 * LINs, N1 inside a LIN loop, party N1s ignored); qualifier preference for
 * items and quantities and their config; as-of times (DTM preference,
 * LIN-level DTM, BIA fallback, date-only rules, clamping); every reject
 * class with its position and reason (group, LIN, QTY without LIN, whole
 * set); envelope errors failing open with the feed name; and the digest
 * through the adapter.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../suppliers/adapter.h"
#include "config.h"
#include "leak_guard.h"
#include "tmp_ini.h"

#define READ_AT INT64_C(1709337600000) /* 2024-03-02T00:00:00Z */
#define TZ_EST (-5 * 3600)
#define T0930 INT64_C(1709303400000)   /* 2024-03-01 09:30 EST: the interchange time */
#define T1200 INT64_C(1709312400000)   /* 2024-03-01 12:00 EST */
#define T0800 INT64_C(1709298000000)   /* 2024-03-01 08:00 EST */
#define T0600 INT64_C(1709290800000)   /* 2024-03-01 06:00 EST */
#define EOD0229 INT64_C(1709269199999) /* 2024-02-29 23:59:59.999 EST */
#define SAMPLE_DIGEST "eb0813dff982434a9dd03b1155cb195e166b2f6e7c1ee089c980235960e1060d"

#define ISA_                                                                                       \
    "ISA*00*          *00*          *ZZ*ACME           *ZZ*STOCKFLOW      "                        \
    "*240301*0930*U*00401*000000101*0*P*>~"
#define GS_ "GS*IB*ACME*STOCKFLOW*20240301*0930*101*X*004010~"
/* the usual heading: segments 4 and 5; a body's own segments start at 6 */
#define HEAD "BIA*00*DD*R1*20240301~DTM*405*20240301*1200~"

/* --- helpers ------------------------------------------------------------------ */

static sf_supplier_row rows[64];
static size_t n_rows;
static char digest[65];
static char buf[96 * 1024];

static size_t count_segments(const char *body)
{
    size_t n = 0;
    for (const char *p = body; *p; p++)
        n += *p == '~';
    return n;
}

/* One 846 set (ST 3, its body from 4) in an interchange. se01 = 0: right. */
static const char *feed_se(const char *body, unsigned se01, const char *se02)
{
    unsigned n = se01 ? se01 : (unsigned)count_segments(body) + 2;
    snprintf(buf, sizeof buf, "%s%sST*846*0001~%sSE*%u*%s~GE*1*101~IEA*1*000000101~", ISA_, GS_,
             body, n, se02);
    return buf;
}

static const char *feed(const char *body)
{
    return feed_se(body, 0, "0001");
}

static void *options(const char *ini)
{
    sf_config cfg;
    char path[TMP_INI_PATH_MAX];
    tmp_ini_load(&cfg, ini, path);
    void *opts = NULL;
    sf_error err;
    cr_assert(sf_adapter_x12_846.configure(&cfg, "supplier.acme", &opts, &err) == SF_OK, "%s",
              err.msg);
    sf_config_free(&cfg);
    return opts;
}

/* configure() refuses ini with "<path>:<msg>". */
static void config_fails(const char *ini, const char *msg)
{
    tmp_ini_refused(sf_adapter_x12_846.configure, "supplier.acme", ini, msg);
}

static void run_ctx(const char *data, size_t len, const char *ini, int64_t read_at)
{
    void *opts = options(ini);
    sf_feed_ctx ctx = {"acme.edi", read_at, TZ_EST};
    void *state = NULL;
    sf_error err;
    cr_assert(sf_adapter_x12_846.open(opts, &ctx, data, len, &state, &err) == SF_OK, "%s", err.msg);
    snprintf(digest, sizeof digest, "%s", sf_adapter_x12_846.digest(state));
    n_rows = 0;
    sf_status st;
    while ((st = sf_adapter_x12_846.next(state, &rows[n_rows], &err)) == SF_OK) {
        n_rows++;
        cr_assert(n_rows < sizeof rows / sizeof rows[0]);
    }
    cr_assert(st == SF_ENOTFOUND, "next: %s", err.msg);
    cr_assert(sf_adapter_x12_846.next(state, &rows[n_rows], &err) == SF_ENOTFOUND,
              "the end stays the end");
    sf_adapter_x12_846.close(state);
    sf_adapter_x12_846.free_opts(opts);
}

static void run(const char *data, const char *ini)
{
    run_ctx(data, strlen(data), ini, READ_AT);
}

static void row_ok(size_t i, unsigned seg, const char *item, const char *loc, int64_t units,
                   int scale, const char *uom, int64_t at)
{
    cr_assert(i < n_rows, "row %zu missing (%zu rows)", i + 1, n_rows);
    const sf_supplier_row *r = &rows[i];
    char pos[32];
    snprintf(pos, sizeof pos, "segment %u", seg);
    cr_assert(r->ok, "row %zu rejected: %s", i + 1, r->error.msg);
    cr_assert(r->ordinal == i + 1, "ordinal %llu, want %zu", (unsigned long long)r->ordinal, i + 1);
    cr_assert(strcmp(r->position, pos) == 0, "row %zu at %s, want %s", i + 1, r->position, pos);
    cr_assert(r->kind == SF_KIND_COUNT);
    cr_assert(strcmp(r->item, item) == 0, "row %zu item %s, want %s", i + 1, r->item, item);
    cr_assert(strcmp(r->location, loc) == 0, "row %zu location '%s', want '%s'", i + 1, r->location,
              loc);
    cr_assert(r->qty.units == units && r->qty.scale == scale, "row %zu qty %lld/%d", i + 1,
              (long long)r->qty.units, r->qty.scale);
    cr_assert(strcmp(r->uom, uom) == 0, "row %zu uom '%s', want '%s'", i + 1, r->uom, uom);
    cr_assert(r->occurred_at == at, "row %zu at %lld, want %lld", i + 1, (long long)r->occurred_at,
              (long long)at);
    cr_assert(r->ref[0] == '\0');
}

static void row_bad(size_t i, unsigned seg, const char *msg)
{
    cr_assert(i < n_rows, "row %zu missing (%zu rows)", i + 1, n_rows);
    const sf_supplier_row *r = &rows[i];
    char pos[32];
    snprintf(pos, sizeof pos, "segment %u", seg);
    cr_assert(!r->ok, "row %zu accepted", i + 1);
    cr_assert(r->ordinal == i + 1);
    cr_assert(r->kind == SF_KIND_COUNT);
    cr_assert(strcmp(r->position, pos) == 0, "row %zu at %s, want %s", i + 1, r->position, pos);
    cr_assert(strcmp(r->error.msg, msg) == 0, "\n  got:  %s\n  want: %s", r->error.msg, msg);
    cr_assert(r->item[0] == '\0' && r->location[0] == '\0');
}

/* Exactly one row, a reject. */
static void only_reject(const char *body, unsigned seg, const char *msg)
{
    run(feed(body), NULL);
    cr_assert(n_rows == 1, "%zu rows for %s", n_rows, body);
    row_bad(0, seg, msg);
}

static char *read_sample(size_t *len)
{
    char path[512];
    const char *root = getenv("SF_ROOT");
    snprintf(path, sizeof path, "%s%sexamples/suppliers/acme-846.edi", root ? root : "",
             root ? "/" : "");
    FILE *in = fopen(path, "rb");
    cr_assert(in, "cannot open %s (run from the repository root or set SF_ROOT)", path);
    static char sample[8192];
    *len = fread(sample, 1, sizeof sample - 1, in);
    fclose(in);
    sample[*len] = '\0';
    return sample;
}

/* --- the sample ----------------------------------------------------------------- */

LEAK_TEST(x12_846, acme_sample_rows)
{
    size_t len;
    const char *data = read_sample(&len);
    run_ctx(data, len, NULL, READ_AT);
    cr_assert(n_rows == 5, "%zu rows", n_rows);
    /* DTM*405*20240301, date only, the interchange date: ISA10 09:30 EST */
    row_ok(0, 12, "AC-1001", "0001", 120, 0, "EA", T0930);
    row_ok(1, 15, "AC-1002", "0001", 15, 0, "CA", T0930); /* QTY 33 over QTY 17 */
    row_ok(2, 19, "AC-1001", "0002", 40, 0, "EA", T0930);
    row_ok(3, 21, "AC-1003", "0002", 8, 0, "CA", T0930);
    row_ok(4, 23, "AC-1004", "0002", 0, 0, "EA", T0930);
    cr_assert(strcmp(digest, SAMPLE_DIGEST) == 0, "digest %s", digest);
}

LEAK_TEST(x12_846, ops_table)
{
    cr_assert(strcmp(sf_adapter_x12_846.format, "x12-846") == 0);
    const char *const *k = sf_adapter_x12_846.keys;
    static const char *const want[] = {"item_qualifiers", "qty_qualifiers", "max_locations_per_lin",
                                       "max_segments",    "max_elements",   "max_element_bytes"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(k[i] && !strcmp(k[i], want[i]), "key %zu: %s", i, k[i] ? k[i] : "(none)");
    cr_assert(!k[sizeof want / sizeof want[0]]);
}

/* --- locations ------------------------------------------------------------------- */

LEAK_TEST(x12_846, heading_n1_applies_to_every_lin)
{
    run(feed(HEAD "N1*SU*ACME SUPPLY*92*ACME~N1*WH*EAST*92*0001~LIN**VP*A-1~QTY*33*5*EA~"
                  "LIN**VP*A-2~QTY*33*7*EA~"),
        NULL);
    cr_assert(n_rows == 2);
    row_ok(0, 9, "A-1", "0001", 5, 0, "EA", T1200);
    row_ok(1, 11, "A-2", "0001", 7, 0, "EA", T1200);
}

LEAK_TEST(x12_846, n1_inside_a_lin_loop_applies_to_that_lin_only)
{
    run(feed(HEAD "LIN**VP*A-1~N1*WH*EAST*92*0001~QTY*33*5*EA~N1*WH*WEST*92*0002~N3*1 MAIN ST~"
                  "QTY*33*6*EA~LIN**VP*A-2~QTY*33*7*EA~"),
        NULL);
    cr_assert(n_rows == 3);
    row_ok(0, 8, "A-1", "0001", 5, 0, "EA", T1200);
    row_ok(1, 11, "A-1", "0002", 6, 0, "EA", T1200);
    row_ok(2, 13, "A-2", "", 7, 0, "EA", T1200);
}

LEAK_TEST(x12_846, n1_loops_before_lins_and_an_override_inside_one)
{
    /* 6 N1 0001 (loop), 7 LIN, 8 QTY, 9 N1 0009 (inside: a QTY follows),
     * 10 QTY, 11 N1 0002 (loop: a LIN follows), 12 N4, 13 LIN, 14 QTY */
    run(feed(HEAD "N1*WH*EAST*92*0001~LIN**VP*A-1~QTY*33*5~N1*ST*STORE 9*92*0009~QTY*33*1~"
                  "N1*WH*WEST*92*0002~N4*RENO*NV~LIN**VP*A-2~QTY*33*7~"),
        NULL);
    cr_assert(n_rows == 3);
    row_ok(0, 8, "A-1", "0001", 5, 0, "", T1200);
    row_ok(1, 10, "A-1", "0009", 1, 0, "", T1200);
    row_ok(2, 14, "A-2", "0002", 7, 0, "", T1200);
}

LEAK_TEST(x12_846, party_n1s_are_not_locations)
{
    run(feed(HEAD "N1*SU*ACME SUPPLY*92*ACME~N1*BY*STOCKFLOW*92*SF~LIN**VP*A-1~QTY*33*5~"), NULL);
    cr_assert(n_rows == 1);
    row_ok(0, 9, "A-1", "", 5, 0, "", T1200);
}

/* --- qualifiers -------------------------------------------------------------------- */

LEAK_TEST(x12_846, the_first_listed_qty_qualifier_wins)
{
    const char *body = HEAD "LIN**VP*A-1~QTY*17*16*CA~QTY*02*99*CA~QTY*33*15*CA~";
    run(feed(body), NULL);
    cr_assert(n_rows == 1);
    row_ok(0, 9, "A-1", "", 15, 0, "CA", T1200);
    run(feed(body), "[supplier.acme]\nqty_qualifiers = 17, 33\n");
    cr_assert(n_rows == 1);
    row_ok(0, 7, "A-1", "", 16, 0, "CA", T1200);
    run(feed(body), "[supplier.acme]\nqty_qualifiers = 02\n");
    row_ok(0, 8, "A-1", "", 99, 0, "CA", T1200);
}

LEAK_TEST(x12_846, item_qualifiers_choose_the_lin_id)
{
    const char *body = HEAD "LIN*1*UP*012345678905*VP*AC-1001*SK*S-1~QTY*33*5~";
    run(feed(body), NULL);
    row_ok(0, 7, "AC-1001", "", 5, 0, "", T1200);
    run(feed(body), "[supplier.acme]\nitem_qualifiers = SK,UP\n");
    row_ok(0, 7, "S-1", "", 5, 0, "", T1200);
    run(feed(body), "[supplier.acme]\nitem_qualifiers = IN\n");
    row_bad(0, 6, "segment 6: LIN has no item id with a qualifier in IN (it has 'UP', 'VP', 'SK')");
}

LEAK_TEST(x12_846, decimal_quantities_and_composite_units)
{
    run(feed(HEAD "LIN**VP*A-1~QTY*33*2.5*LB~LIN**VP*A-2~QTY*33*12*CA>1~LIN**VP*A-3~QTY*33*-0~"),
        NULL);
    cr_assert(n_rows == 3);
    row_ok(0, 7, "A-1", "", 25, 1, "LB", T1200); /* the mapper rejects LB, not the adapter */
    row_ok(1, 9, "A-2", "", 12, 0, "CA", T1200);
    row_ok(2, 11, "A-3", "", 0, 0, "", T1200);
}

LEAK_TEST(x12_846, config_errors_cite_path_line_section_and_key)
{
    config_fails("[supplier.acme]\nformat = x12-846\nitem_qualifiers = VP\nqty_qualifiers = 33,3\n",
                 "4: [supplier.acme] qty_qualifiers: qualifier '3' is not 2 letters or digits");
}

/* --- as-of times ------------------------------------------------------------------- */

LEAK_TEST(x12_846, as_of_times)
{
    /* a date-only DTM on another date: the end of that day */
    run(feed("BIA*00*DD*R1*20240229~DTM*405*20240229~LIN**VP*A~QTY*33*1~"), NULL);
    row_ok(0, 7, "A", "", 1, 0, "", EOD0229);
    /* no DTM: BIA04/BIA05 */
    run(feed("BIA*00*DD*R1*20240301*0800~LIN**VP*A~QTY*33*1~"), NULL);
    row_ok(0, 6, "A", "", 1, 0, "", T0800);
    /* BIA04 alone, the interchange date: the interchange time */
    run(feed("BIA*00*DD*R1*20240301~LIN**VP*A~QTY*33*1~"), NULL);
    row_ok(0, 6, "A", "", 1, 0, "", T0930);
    /* 405 is preferred to 097 whatever their order; 018 is not an as-of */
    run(feed("BIA*00*DD*R1*20240301~DTM*097*20240301*0600~DTM*405*20240301*0800~"
             "DTM*018*20240301*1200~LIN**VP*A~QTY*33*1~"),
        NULL);
    row_ok(0, 9, "A", "", 1, 0, "", T0800);
    /* a DTM in a LIN loop is that LIN's as-of */
    run(feed("BIA*00*DD*R1*20240301~DTM*405*20240301*0800~LIN**VP*A~DTM*007*20240301*0600~"
             "QTY*33*1~LIN**VP*B~QTY*33*2~"),
        NULL);
    cr_assert(n_rows == 2);
    row_ok(0, 8, "A", "", 1, 0, "", T0600);
    row_ok(1, 10, "B", "", 2, 0, "", T0800);
    /* never after the read time */
    const char *data = feed(HEAD "LIN**VP*A~QTY*33*1~");
    run_ctx(data, strlen(data), NULL, T0800);
    row_ok(0, 7, "A", "", 1, 0, "", T0800);
}

/* --- rejected rows ------------------------------------------------------------------ */

LEAK_TEST(x12_846, lin_without_a_usable_qualifier_is_one_reject)
{
    only_reject(HEAD "LIN*1*ZZ*X~N1*WH*E*92*0001~QTY*33*5~N1*WH*W*92*0002~QTY*33*6~", 6,
                "segment 6: LIN has no item id with a qualifier in VP,VN,SK,BP,UP,EN,IN (it has "
                "'ZZ')");
}

LEAK_TEST(x12_846, qty_without_a_lin)
{
    run(feed(HEAD "QTY*33*5~LIN**VP*A~QTY*33*1~CTT*1~QTY*33*2~"), NULL);
    cr_assert(n_rows == 3);
    row_bad(0, 6, "segment 6: QTY without a LIN (a quantity follows the LIN of its item)");
    row_ok(1, 8, "A", "", 1, 0, "", T1200);
    row_bad(2, 10, "segment 10: QTY without a LIN (a quantity follows the LIN of its item)");
}

LEAK_TEST(x12_846, bad_quantities_and_units)
{
    only_reject(HEAD "LIN**VP*A~QTY*33*12a~", 7,
                "segment 7: field QTY02: '12a' is not a number (digits, an optional '-' and '.')");
    only_reject(HEAD "LIN**VP*A~QTY*33*-3~", 7,
                "segment 7: field QTY02: -3 is negative (stock is 0 or more)");
    only_reject(HEAD "LIN**VP*A~QTY*33~", 7, "segment 7: field QTY02: is missing");
    only_reject(HEAD "LIN**VP*A~QTY*33*1.1234567~", 7,
                "segment 7: field QTY02: '1.1234567' has more than 6 decimals");
    only_reject(HEAD "LIN**VP*A~QTY*33*3*ea~", 7,
                "segment 7: field QTY03: unit 'ea' is not 1-8 upper-case letters or digits");
    only_reject(HEAD "LIN**VP*A~QTY*33*3~QTY*33*4~", 8,
                "segment 8: a second QTY 33 for this item and location (the first is segment 7)");
    only_reject(HEAD "LIN**VP*A~QTY*02*3~", 7,
                "segment 7: no QTY counts this item here: QTY01 '02' is not in qty_qualifiers "
                "33,17");
}

LEAK_TEST(x12_846, a_bad_group_leaves_the_other_locations)
{
    run(feed(HEAD "LIN**VP*A~N1*WH*E*92*0001~QTY*33*x~N1*WH*W*92*0002~QTY*33*4~"), NULL);
    cr_assert(n_rows == 2);
    row_bad(0, 8, "segment 8: field QTY02: 'x' is not a number (digits, an optional '-' and '.')");
    row_ok(1, 10, "A", "0002", 4, 0, "", T1200);
}

LEAK_TEST(x12_846, lin_without_qty)
{
    run(feed(HEAD "LIN**VP*A~PID*F****WIDGET~LIN**VP*B~QTY*33*1~"), NULL);
    cr_assert(n_rows == 2);
    row_bad(0, 6, "segment 6: LIN has no QTY");
    row_ok(1, 9, "B", "", 1, 0, "", T1200);
}

LEAK_TEST(x12_846, unusable_location_n1)
{
    only_reject(HEAD "N1*WH*EAST~LIN**VP*A~QTY*33*1~", 6,
                "segment 6: N1 WH (a location) has no id code in N104");
    only_reject(HEAD "N1*WH*EAST*92*00\x01~LIN**VP*A~QTY*33*1~", 6,
                "segment 6: field N104: '00\\x01' holds control character U+0001 (byte 3)");
}

LEAK_TEST(x12_846, bad_item_ids)
{
    char body[512];
    char id[66];
    memset(id, 'A', 65);
    id[65] = '\0';
    snprintf(body, sizeof body, HEAD "LIN**VP*%s~QTY*33*1~", id);
    only_reject(body, 6, "segment 6: field LIN03: 65 bytes, longer than 64");
    only_reject(HEAD "LIN**VP*A\xFF~QTY*33*1~", 6,
                "segment 6: field LIN03: 'A\\xff' is not valid UTF-8 (byte 2)");
    only_reject(HEAD "LIN**VP*A\x7F~QTY*33*1~", 6,
                "segment 6: field LIN03: 'A\\x7f' holds control character U+007F (byte 2)");
    only_reject(HEAD "LIN**VP*A>B~QTY*33*1~", 6,
                "segment 6: field LIN03: 'A>B' holds the separator '>'");
}

LEAK_TEST(x12_846, overlong_element_sdq_and_bad_dtm_reject_the_lin)
{
    char body[1024];
    char pid[301];
    memset(pid, 'W', 300);
    pid[300] = '\0';
    snprintf(body, sizeof body, HEAD "LIN**VP*A~PID*F****%s~QTY*33*1~", pid);
    only_reject(body, 7, "segment 7: field PID05: 300 bytes, longer than 256");
    only_reject(HEAD "LIN**VP*A~QTY*33*5~SDQ*EA*92*0001*5~", 8,
                "segment 8: SDQ (quantities by destination) is not supported: send one QTY per "
                "location N1");
    only_reject(HEAD "LIN**VP*A~DTM*405*20241301~QTY*33*5~", 7,
                "segment 7: field DTM02: '20241301' is not a date (CCYYMMDD, 1970 or later)");
}

LEAK_TEST(x12_846, more_than_1000_locations_reject_the_lin)
{
    static char big[64 * 1024];
    size_t o = (size_t)snprintf(big, sizeof big, HEAD "LIN**VP*A~");
    for (int i = 0; i < 1001; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "N1*WH*W*92*L%d~QTY*33*%d~", i, i);
    snprintf(big + o, sizeof big - o, "LIN**VP*B~QTY*33*7~");
    run(feed(big), NULL);
    cr_assert(n_rows == 2, "%zu rows", n_rows);
    /* LIN 6, then N1/QTY pairs from 7: the 1001st QTY is segment 7 + 2 * 1000 + 1 */
    row_bad(0, 2008, "segment 2008: more than 1000 locations for one LIN (max_locations_per_lin)");
    row_ok(1, 2010, "B", "", 7, 0, "", T1200); /* those N1s were inside LIN A */
}

LEAK_TEST(x12_846, lowered_limits_from_the_config)
{
    /* 2 locations a LIN: LIN A's third location rejects it; LIN B passes */
    const char *ini = "[supplier.acme]\nmax_locations_per_lin = 2\nmax_element_bytes = 16\n";
    run(feed(HEAD "LIN**VP*A~N1*WH*W*92*L1~QTY*33*1~N1*WH*W*92*L2~QTY*33*2~N1*WH*W*92*L3~"
                  "QTY*33*3~LIN**VP*B~N1*WH*W*92*L1~QTY*33*4~N1*WH*W*92*L2~QTY*33*5~"),
        ini);
    cr_assert(n_rows == 3, "%zu rows", n_rows);
    row_bad(0, 12, "segment 12: more than 2 locations for one LIN (max_locations_per_lin)");
    row_ok(1, 15, "B", "L1", 4, 0, "", T1200);
    row_ok(2, 17, "B", "L2", 5, 0, "", T1200);
    /* a 17-byte element over max_element_bytes = 16 rejects its LIN */
    run(feed(HEAD "LIN**VP*A~PID*F****WWWWWWWWWWWWWWWWW~QTY*33*1~LIN**VP*B~QTY*33*2~"), ini);
    cr_assert(n_rows == 2, "%zu rows: %s", n_rows, rows[0].error.msg);
    row_bad(0, 7, "segment 7: field PID05: 17 bytes, longer than 16");
    row_ok(1, 10, "B", "", 2, 0, "", T1200);

    /* max_segments fails open, naming the feed and the segment */
    void *opts = options("[supplier.acme]\nmax_segments = 8\n");
    sf_feed_ctx ctx = {"acme.edi", READ_AT, TZ_EST};
    const char *data = feed(HEAD "LIN**VP*A~QTY*33*1~");
    void *state = (void *)1;
    sf_error err;
    cr_assert(sf_adapter_x12_846.open(opts, &ctx, data, strlen(data), &state, &err) == SF_EINVAL);
    cr_assert(state == NULL);
    cr_assert(strcmp(err.msg, "acme.edi: segment 9: more than 8 segments in the interchange "
                              "(max_segments)") == 0,
              "%s", err.msg);
    sf_adapter_x12_846.free_opts(opts);
}

LEAK_TEST(x12_846, limit_keys_out_of_range_cite_path_line_section_and_key)
{
    static const char *const bad[][2] = {
        {"max_locations_per_lin = 1001",
         "max_locations_per_lin: '1001' is not a whole number of locations from 1 to 1000"},
        {"max_locations_per_lin = 0",
         "max_locations_per_lin: '0' is not a whole number of locations from 1 to 1000"},
        {"max_segments = 2", "max_segments: '2' is not a whole number of segments from 6 to "
                             "20000000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char ini[256], msg[256];
        snprintf(ini, sizeof ini, "[supplier.acme]\nformat = x12-846\n%s\n", bad[i][0]);
        snprintf(msg, sizeof msg, "3: [supplier.acme] %s", bad[i][1]);
        config_fails(ini, msg);
    }
}

/* --- whole sets ---------------------------------------------------------------------- */

LEAK_TEST(x12_846, a_bad_se_trailer_rejects_its_set_only)
{
    /* set 1: ST 3..SE 8 with SE01 9; set 2: ST 9..SE 14 */
    snprintf(buf, sizeof buf,
             "%s%sST*846*0001~" HEAD "LIN**VP*A~QTY*33*1~SE*9*0001~ST*846*0002~" HEAD
             "LIN**VP*B~QTY*33*2~SE*6*0002~GE*2*101~IEA*1*000000101~",
             ISA_, GS_);
    run(buf, NULL);
    cr_assert(n_rows == 2);
    row_bad(0, 8, "segment 8: SE01 says 9 segments, the set has 6 (ST to SE)");
    row_ok(1, 13, "B", "", 2, 0, "", T1200);

    run(feed_se(HEAD "LIN**VP*A~QTY*33*1~", 0, "0002"), NULL);
    cr_assert(n_rows == 1);
    row_bad(0, 8, "segment 8: SE02 '0002' does not match ST02 '0001' (segment 3)");
}

LEAK_TEST(x12_846, set_level_rejects)
{
    only_reject("DTM*405*20240301~LIN**VP*A~QTY*33*1~", 4,
                "segment 4: an 846 starts with BIA, not DTM");
    only_reject("BIA*00*DD*R1*20240301~DTM*405*2024~LIN**VP*A~QTY*33*1~", 5,
                "segment 5: field DTM02: '2024' is not a date (CCYYMMDD, 1970 or later)");
    only_reject("BIA*00*DD*R1*20240399~LIN**VP*A~QTY*33*1~", 4,
                "segment 4: field BIA04: '20240399' is not a date (CCYYMMDD, 1970 or later)");
    only_reject("BIA*00*DD*R1~LIN**VP*A~QTY*33*1~", 3,
                "segment 3: the 846 has no as-of date (no DTM 405/007/194/009/097 before the "
                "first LIN, no BIA04)");
    only_reject(HEAD "LIN**VP*A~QTY*33*1~CTT*2~", 8,
                "segment 8: CTT01 says 2 line items, the set has 1 LIN segments");
    only_reject("", 3, "segment 3: the 846 is empty (no BIA)");
    only_reject(HEAD "LIN**VP*A~QTY*33*1~CTT*1~LIN**VP*B~QTY*33*1~", 9,
                "segment 9: LIN after CTT (the set's summary)");
    char body[1024];
    char ref[301];
    memset(ref, 'R', 300);
    ref[300] = '\0';
    snprintf(body, sizeof body, HEAD "REF*ZZ*%s~LIN**VP*A~QTY*33*1~", ref);
    only_reject(body, 6, "segment 6: field REF02: 300 bytes, longer than 256");

    snprintf(buf, sizeof buf, "%s%sST*856*0001~BSN*00*S1~SE*3*0001~GE*1*101~IEA*1*000000101~", ISA_,
             GS_);
    run(buf, NULL);
    cr_assert(n_rows == 1);
    row_bad(0, 3, "segment 3: ST01 '856' is not 846 (Inventory Inquiry/Advice)");
}

LEAK_TEST(x12_846, envelope_errors_fail_open_naming_the_feed)
{
    void *opts = options(NULL);
    sf_feed_ctx ctx = {"acme.edi", READ_AT, TZ_EST};
    struct {
        const char *data, *msg;
    } cases[] = {
        {ISA_ GS_ "ST*846*0001~" HEAD "SE*4*0001~GE*2*101~IEA*1*000000101~",
         "acme.edi: segment 7: GE01 says 2 transaction sets, the group has 1"},
        {ISA_ GS_ "ST*846*0001~" HEAD "SE*4*0001~GE*1*101~IEA*3*000000101~",
         "acme.edi: segment 8: IEA01 says 3 functional groups, the interchange has 1"},
        {ISA_ GS_ "ST*846*0001~" HEAD "SE*4*0001~GE*1*101~IEA*1*000000999~",
         "acme.edi: segment 8: IEA02 '000000999' does not match ISA13 '000000101'"},
        {ISA_ GS_ "ST*846*0001~" HEAD "SE*4*0001~GE*1*109~IEA*1*000000101~",
         "acme.edi: segment 7: GE02 '109' does not match GS06 '101' (segment 2)"},
        {ISA_ GS_ "ST*846*0001~" HEAD "LIN**VP*A~QTY*3",
         "acme.edi: segment 7: the file ends inside a segment, before a terminator '~' "
         "(truncated interchange)"},
        {ISA_ GS_ "ST*846*0001~" HEAD "SE*4*0001~GE*1*101~",
         "acme.edi: segment 8: the file ends without an IEA (truncated interchange)"},
        {"ST*846*0001~", "acme.edi: segment 1: the feed does not start with an ISA segment"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        void *state = (void *)1;
        sf_error err;
        cr_assert(sf_adapter_x12_846.open(opts, &ctx, cases[i].data, strlen(cases[i].data), &state,
                                          &err) == SF_EINVAL,
                  "case %zu opened", i);
        cr_assert(state == NULL);
        cr_assert(strcmp(err.msg, cases[i].msg) == 0, "\n  got:  %s\n  want: %s", err.msg,
                  cases[i].msg);
    }
    sf_adapter_x12_846.free_opts(opts);
}

/* --- digest ---------------------------------------------------------------------------- */

LEAK_TEST(x12_846, digest_survives_a_resend_and_follows_quantities)
{
    run(feed(HEAD "N1*WH*E*92*0001~LIN**VP*A~QTY*33*1~"), NULL);
    char first[65];
    memcpy(first, digest, sizeof first);
    /* re-sent: new control numbers and envelope dates, CRLF, another terminator */
    snprintf(buf, sizeof buf,
             "ISA*00*          *00*          *ZZ*ACME           *ZZ*STOCKFLOW      *240302*1111*U*"
             "00401*000000777*0*P*>!\r\nGS*IB*ACME*STOCKFLOW*20240302*1111*777*X*004010!\r\n"
             "ST*846*4444!\r\nBIA*00*DD*R1*20240301!\r\nDTM*405*20240301*1200!\r\n"
             "N1*WH*E*92*0001!\r\nLIN**VP*A!\r\nQTY*33*1!\r\nSE*7*4444!\r\nGE*1*777!\r\n"
             "IEA*1*000000777!\r\n");
    run(buf, NULL);
    cr_assert(n_rows == 1 && rows[0].ok);
    cr_assert(strcmp(digest, first) == 0, "a re-sent 846 has the same digest");
    run(feed(HEAD "N1*WH*E*92*0001~LIN**VP*A~QTY*33*2~"), NULL);
    cr_assert(strcmp(digest, first) != 0, "another quantity, another digest");
}

LEAK_TEST(x12_846, default_options_when_opts_is_null)
{
    sf_feed_ctx ctx = {"", READ_AT, 0};
    const char *data = feed(HEAD "LIN**VP*A~QTY*33*1~");
    void *state = NULL;
    sf_error err;
    cr_assert(sf_adapter_x12_846.open(NULL, &ctx, data, strlen(data), &state, &err) == SF_OK);
    sf_supplier_row row;
    cr_assert(sf_adapter_x12_846.next(state, &row, &err) == SF_OK && row.ok);
    cr_assert(strcmp(row.item, "A") == 0 && row.occurred_at == INT64_C(1709294400000));
    cr_assert(sf_adapter_x12_846.next(state, &row, &err) == SF_ENOTFOUND);
    sf_adapter_x12_846.close(state);
}
