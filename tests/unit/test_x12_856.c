/*
 * test_x12_856: the x12-856 adapter (suppliers/x12_856.c). The globex
 * sample row by row; the HL tree (shipment, order, tare, pack, item) and
 * what each level passes down (ship-to, ship date), BSN02 as the ref, the
 * BSN date fallback; item qualifiers; every item reject (unknown or
 * missing parent, LIN and SN1 missing or twice, bad ids, quantities and
 * units) and every set reject (structure, BSN, dates, ship-to, CTT,
 * trailers) with its position and reason; the digest through the adapter.
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

#define READ_AT INT64_C(1709683200000) /* 2024-03-06T00:00:00Z */
#define TZ_EST (-5 * 3600)
#define T1000 INT64_C(1709305200000)   /* 2024-03-01 10:00 EST: BSN03/BSN04 */
#define T0800 INT64_C(1709298000000)   /* 2024-03-01 08:00 EST */
#define T0600 INT64_C(1709290800000)   /* 2024-03-01 06:00 EST */
#define SHIPPED INT64_C(1709663400000) /* 2024-03-05 13:30 EST: the sample's DTM 011 */
#define SAMPLE_DIGEST "97093a18e9ce5e59df7519c0c03b88abf05b7cc8ed1c03accc484a41d053fa19"

#define ISA_                                                                                       \
    "ISA*00*          *00*          *ZZ*GLOBEX         *ZZ*STOCKFLOW      "                        \
    "*240301*0930*U*00401*000000517*0*P*>~"
#define GS_ "GS*SH*GLOBEX*STOCKFLOW*20240301*0930*517*X*004010~"
/* segment 4; a body's own segments start at 5 */
#define BSN "BSN*00*SHP-1*20240301*1000*0001~"
/* 5 HL S, 6 DTM, 7 N1 ST, 8 HL O: items start at 9 */
#define SHIP "HL*1**S~DTM*011*20240301*0800~N1*ST*EAST DC*92*0001~HL*2*1*O~"

/* --- helpers ------------------------------------------------------------------ */

static sf_supplier_row rows[64];
static size_t n_rows;
static char digest[65];
static char buf[8192];

static size_t count_segments(const char *body)
{
    size_t n = 0;
    for (const char *p = body; *p; p++)
        n += *p == '~';
    return n;
}

static const char *feed_se(const char *body, unsigned se01, const char *se02)
{
    unsigned n = se01 ? se01 : (unsigned)count_segments(body) + 2;
    snprintf(buf, sizeof buf, "%s%sST*856*0001~%sSE*%u*%s~GE*1*517~IEA*1*000000517~", ISA_, GS_,
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
    cr_assert(sf_adapter_x12_856.configure(&cfg, "supplier.globex", &opts, &err) == SF_OK, "%s",
              err.msg);
    sf_config_free(&cfg);
    return opts;
}

/* configure() refuses ini with "<path>:<msg>". */
static void config_fails(const char *ini, const char *msg)
{
    tmp_ini_refused(sf_adapter_x12_856.configure, "supplier.globex", ini, msg);
}

static void run_len(const char *data, size_t len, const char *ini)
{
    void *opts = options(ini);
    sf_feed_ctx ctx = {"globex.edi", READ_AT, TZ_EST};
    void *state = NULL;
    sf_error err;
    cr_assert(sf_adapter_x12_856.open(opts, &ctx, data, len, &state, &err) == SF_OK, "%s", err.msg);
    snprintf(digest, sizeof digest, "%s", sf_adapter_x12_856.digest(state));
    n_rows = 0;
    sf_status st;
    while ((st = sf_adapter_x12_856.next(state, &rows[n_rows], &err)) == SF_OK) {
        n_rows++;
        cr_assert(n_rows < sizeof rows / sizeof rows[0]);
    }
    cr_assert(st == SF_ENOTFOUND, "next: %s", err.msg);
    cr_assert(sf_adapter_x12_856.next(state, &rows[n_rows], &err) == SF_ENOTFOUND,
              "the end stays the end");
    sf_adapter_x12_856.close(state);
    sf_adapter_x12_856.free_opts(opts);
}

static void run(const char *data, const char *ini)
{
    run_len(data, strlen(data), ini);
}

static void row_ok(size_t i, unsigned seg, const char *item, const char *loc, int64_t units,
                   const char *uom, int64_t at, const char *ref)
{
    cr_assert(i < n_rows, "row %zu missing (%zu rows)", i + 1, n_rows);
    const sf_supplier_row *r = &rows[i];
    char pos[32];
    snprintf(pos, sizeof pos, "segment %u", seg);
    cr_assert(r->ok, "row %zu rejected: %s", i + 1, r->error.msg);
    cr_assert(r->ordinal == i + 1, "ordinal %llu, want %zu", (unsigned long long)r->ordinal, i + 1);
    cr_assert(strcmp(r->position, pos) == 0, "row %zu at %s, want %s", i + 1, r->position, pos);
    cr_assert(r->kind == SF_KIND_ASN);
    cr_assert(strcmp(r->item, item) == 0, "row %zu item %s, want %s", i + 1, r->item, item);
    cr_assert(strcmp(r->location, loc) == 0, "row %zu location '%s', want '%s'", i + 1, r->location,
              loc);
    cr_assert(r->qty.units == units && r->qty.scale == 0, "row %zu qty %lld/%d", i + 1,
              (long long)r->qty.units, r->qty.scale);
    cr_assert(strcmp(r->uom, uom) == 0, "row %zu uom '%s', want '%s'", i + 1, r->uom, uom);
    cr_assert(r->occurred_at == at, "row %zu at %lld, want %lld", i + 1, (long long)r->occurred_at,
              (long long)at);
    cr_assert(strcmp(r->ref, ref) == 0, "row %zu ref '%s', want '%s'", i + 1, r->ref, ref);
}

static void row_bad(size_t i, unsigned seg, const char *msg)
{
    cr_assert(i < n_rows, "row %zu missing (%zu rows)", i + 1, n_rows);
    const sf_supplier_row *r = &rows[i];
    char pos[32];
    snprintf(pos, sizeof pos, "segment %u", seg);
    cr_assert(!r->ok, "row %zu accepted", i + 1);
    cr_assert(r->ordinal == i + 1);
    cr_assert(r->kind == SF_KIND_ASN);
    cr_assert(strcmp(r->position, pos) == 0, "row %zu at %s, want %s", i + 1, r->position, pos);
    cr_assert(strcmp(r->error.msg, msg) == 0, "\n  got:  %s\n  want: %s", r->error.msg, msg);
    cr_assert(r->item[0] == '\0' && r->ref[0] == '\0');
}

static void only_reject(const char *body, unsigned seg, const char *msg)
{
    run(feed(body), NULL);
    cr_assert(n_rows == 1, "%zu rows for %s", n_rows, body);
    row_bad(0, seg, msg);
}

/* One item (HL 3 at 9) whose own segments are `item`, then a good one. */
static void item_reject(const char *item, unsigned seg, const char *msg)
{
    char body[2048];
    snprintf(body, sizeof body, BSN SHIP "HL*3*2*I~%sHL*4*2*I~LIN**VP*OK~SN1**1*EA~", item);
    run(feed(body), NULL);
    cr_assert(n_rows == 2, "%zu rows for %s", n_rows, item);
    row_bad(0, seg, msg);
    cr_assert(rows[1].ok && strcmp(rows[1].item, "OK") == 0 && rows[1].ordinal == 2,
              "the next item is read: %s", rows[1].error.msg);
}

static char *read_sample(size_t *len)
{
    char path[512];
    const char *root = getenv("SF_ROOT");
    snprintf(path, sizeof path, "%s%sexamples/suppliers/globex-856.edi", root ? root : "",
             root ? "/" : "");
    FILE *in = fopen(path, "rb");
    cr_assert(in, "cannot open %s (run from the repository root or set SF_ROOT)", path);
    static char sample[8192];
    *len = fread(sample, 1, sizeof sample - 1, in);
    fclose(in);
    sample[*len] = '\0';
    return sample;
}

/* --- the sample and the tree ------------------------------------------------------ */

LEAK_TEST(x12_856, globex_sample_rows)
{
    size_t len;
    const char *data = read_sample(&len);
    run_len(data, len, NULL);
    cr_assert(n_rows == 3, "%zu rows", n_rows);
    row_ok(0, 16, "GX-2001", "0001", 24, "EA", SHIPPED, "SHP-88213");
    row_ok(1, 20, "GX-2002", "0001", 6, "CA", SHIPPED, "SHP-88213");
    row_ok(2, 23, "GX-2003", "0001", 12, "EA", SHIPPED, "SHP-88213");
    cr_assert(strcmp(digest, SAMPLE_DIGEST) == 0, "digest %s", digest);
}

LEAK_TEST(x12_856, ops_table)
{
    cr_assert(strcmp(sf_adapter_x12_856.format, "x12-856") == 0);
    const char *const *k = sf_adapter_x12_856.keys;
    static const char *const want[] = {"item_qualifiers", "max_hls_per_set", "max_segments",
                                       "max_elements", "max_element_bytes"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(k[i] && !strcmp(k[i], want[i]), "key %zu: %s", i, k[i] ? k[i] : "(none)");
    cr_assert(!k[sizeof want / sizeof want[0]]);
}

LEAK_TEST(x12_856, levels_pass_down_ship_to_and_ship_date)
{
    /* 5 S (ship-to 0001, 08:00), 8 O, 9 T, 10 P, 11 I, 12 LIN, 13 SN1,
     * 14 O (ship-to 0002), 15 N1, 16 P, 17 I, 18 LIN, 19 DTM 06:00, 20 SN1,
     * 21 I under the shipment itself, 22 LIN, 23 SN1, 24 CTT */
    run(feed(BSN "HL*1**S~DTM*011*20240301*0800~N1*ST*EAST DC*92*0001~HL*2*1*O~HL*3*2*T~"
                 "HL*4*3*P~HL*5*4*I~LIN**VP*A-1~SN1**24*EA~HL*6*1*O~N1*ST*WEST DC*92*0002~"
                 "HL*7*6*P~HL*8*7*I~LIN**VP*A-2~DTM*011*20240301*0600~SN1**6*CA~"
                 "HL*9*1*I~LIN**VP*A-3~SN1**1~CTT*9~"),
        NULL);
    cr_assert(n_rows == 3);
    row_ok(0, 13, "A-1", "0001", 24, "EA", T0800, "SHP-1");
    row_ok(1, 20, "A-2", "0002", 6, "CA", T0600, "SHP-1");
    row_ok(2, 23, "A-3", "0001", 1, "", T0800, "SHP-1");
}

LEAK_TEST(x12_856, bsn_date_and_no_ship_to)
{
    /* no DTM 011: BSN03/BSN04; no N1 ST: the supplier's default location */
    run(feed(BSN "HL*1**S~HL*2*1*I~LIN**VP*A~SN1**2*EA~"), NULL);
    cr_assert(n_rows == 1);
    row_ok(0, 8, "A", "", 2, "EA", T1000, "SHP-1");
    /* no date at all: 0, the mapper uses the read time */
    run(feed("BSN*00*SHP-2~HL*1**S~HL*2*1*I~LIN**VP*A~SN1**2*EA~"), NULL);
    row_ok(0, 8, "A", "", 2, "EA", 0, "SHP-2");
    /* a ship-to before the first HL counts for the whole set */
    run(feed(BSN "N1*ST*DC*92*0007~DTM*011*20240301~HL*1**S~HL*2*1*I~LIN**VP*A~SN1**2~"), NULL);
    row_ok(0, 10, "A", "0007", 2, "", INT64_C(1709303400000) /* ISA time */, "SHP-1");
}

LEAK_TEST(x12_856, item_qualifiers_choose_the_lin_id)
{
    const char *body = BSN SHIP "HL*3*2*I~LIN**UP*012345678905*VP*GX-1~SN1**1*EA~";
    run(feed(body), NULL);
    row_ok(0, 11, "GX-1", "0001", 1, "EA", T0800, "SHP-1");
    run(feed(body), "[supplier.globex]\nitem_qualifiers = UP\n");
    row_ok(0, 11, "012345678905", "0001", 1, "EA", T0800, "SHP-1");
}

/* --- item rejects ---------------------------------------------------------------------- */

LEAK_TEST(x12_856, unknown_or_missing_parent_rejects_the_item)
{
    run(feed(BSN SHIP "HL*3*7*I~LIN**VP*A~SN1**1~HL*4**I~LIN**VP*B~SN1**1~HL*5*2*I~LIN**VP*C~"
                      "SN1**1~"),
        NULL);
    cr_assert(n_rows == 3);
    row_bad(0, 9, "segment 9: HL02 parent '7' is not an earlier HL");
    row_bad(1, 12, "segment 12: field HL02: an item HL needs a parent HL");
    row_ok(2, 17, "C", "0001", 1, "", T0800, "SHP-1");
    /* a parent that comes later is unknown too */
    run(feed(BSN SHIP "HL*3*4*I~LIN**VP*A~SN1**1~HL*4*2*P~HL*5*4*I~LIN**VP*B~SN1**1~"), NULL);
    cr_assert(n_rows == 2);
    row_bad(0, 9, "segment 9: HL02 parent '4' is not an earlier HL");
    row_ok(1, 15, "B", "0001", 1, "", T0800, "SHP-1");
}

LEAK_TEST(x12_856, lin_and_sn1_missing_or_twice)
{
    item_reject("SN1**1~", 9, "segment 9: the item HL has no LIN");
    item_reject("LIN**VP*A~PID*F****X~", 9, "segment 9: the item HL has no SN1");
    item_reject("LIN**VP*A~LIN**VP*B~SN1**1~", 11,
                "segment 11: a second LIN in one item HL (the first is segment 10)");
    item_reject("LIN**VP*A~SN1**1~SN1**2~", 12,
                "segment 12: a second SN1 in one item HL (the first is segment 11)");
}

LEAK_TEST(x12_856, bad_items)
{
    item_reject("LIN**ZZ*A~SN1**1~", 10,
                "segment 10: LIN has no item id with a qualifier in VP,VN,SK,BP,UP,EN,IN (it has "
                "'ZZ')");
    item_reject("LIN**VP*A\xC0~SN1**1~", 10,
                "segment 10: field LIN03: 'A\\xc0' is not valid UTF-8 (byte 2)");
    item_reject("LIN**VP*A~SN1**1x*EA~", 11,
                "segment 11: field SN102: '1x' is not a number (digits, an optional '-' and '.')");
    item_reject("LIN**VP*A~SN1***EA~", 11, "segment 11: field SN102: is missing");
    item_reject("LIN**VP*A~SN1**-4*EA~", 11,
                "segment 11: field SN102: -4 is negative (a shipped quantity is 0 or more)");
    item_reject("LIN**VP*A~SN1**4*E A~", 11,
                "segment 11: field SN103: unit 'E A' is not 1-8 upper-case letters or digits");
    item_reject("LIN**VP*A~SN1**4~N1*ST*DC~", 12,
                "segment 12: N1 ST (ship-to) has no id code in N104");
    item_reject("LIN**VP*A~SN1**4~DTM*011*20240231~", 12,
                "segment 12: field DTM02: '20240231' is not a date (CCYYMMDD, 1970 or later)");
    char item[512], pid[300];
    memset(pid, 'P', 299);
    pid[299] = '\0';
    snprintf(item, sizeof item, "LIN**VP*A~SN1**4~PID*F****%s~", pid);
    item_reject(item, 12, "segment 12: field PID05: 299 bytes, longer than 256");
    char longid[80];
    memset(longid, 'G', 70);
    longid[70] = '\0';
    snprintf(item, sizeof item, "LIN**VP*%s~SN1**4~", longid);
    item_reject(item, 10, "segment 10: field LIN03: 70 bytes, longer than 64");
}

/* --- set rejects ------------------------------------------------------------------------ */

LEAK_TEST(x12_856, structure_errors_reject_the_set)
{
    only_reject(BSN SHIP "HL*3*9*P~HL*4*3*I~LIN**VP*A~SN1**1~", 9,
                "segment 9: HL02 parent '9' is not an earlier HL");
    only_reject(BSN "HL*1**O~HL*2*1*I~LIN**VP*A~SN1**1~", 5,
                "segment 5: the first HL must be the shipment (S), not O");
    only_reject(BSN SHIP "HL*3*2*X~LIN**VP*A~SN1**1~", 9,
                "segment 9: field HL03: level 'X' is not S, O, T, P or I");
    only_reject(BSN SHIP "HL*2*2*I~LIN**VP*A~SN1**1~", 9,
                "segment 9: HL01 '2' repeats the HL of segment 8");
    only_reject(BSN SHIP "HL**2*I~LIN**VP*A~SN1**1~", 9,
                "segment 9: field HL01 (HL id) is missing");
    only_reject(BSN SHIP "LIN**VP*A~HL*3*2*I~LIN**VP*A~SN1**1~", 9,
                "segment 9: LIN outside an item HL (HL03 I)");
    only_reject(BSN SHIP "HL*3*2*I~LIN**VP*A~SN1**1~CTT*5~", 12,
                "segment 12: CTT01 says 5 HL segments, the set has 3");
    only_reject(BSN SHIP "HL*3*2*I~LIN**VP*A~SN1**1~CTT*3~HL*4*2*I~LIN**VP*B~SN1**1~", 13,
                "segment 13: HL after CTT (the set's summary)");
}

LEAK_TEST(x12_856, lowered_limits_from_the_config)
{
    /* 4 HLs a set: a fifth rejects the set */
    const char *ini = "[supplier.globex]\nmax_hls_per_set = 4\n";
    run(feed(BSN SHIP "HL*3*2*I~LIN**VP*A~SN1**1~HL*4*2*I~LIN**VP*B~SN1**2~"), ini);
    cr_assert(n_rows == 2, "%zu rows", n_rows);
    row_ok(0, 11, "A", "0001", 1, "", T0800, "SHP-1");
    row_ok(1, 14, "B", "0001", 2, "", T0800, "SHP-1");
    run(feed(BSN SHIP "HL*3*2*I~LIN**VP*A~SN1**1~HL*4*2*I~LIN**VP*B~SN1**2~HL*5*2*I~LIN**VP*C~"
                      "SN1**3~"),
        ini);
    cr_assert(n_rows == 1, "%zu rows", n_rows);
    row_bad(0, 15, "segment 15: more than 4 HL segments in one set (max_hls_per_set)");

    /* max_elements = 16: an SN1 of 17 elements rejects its item alone */
    run(feed(BSN SHIP "HL*3*2*I~LIN**VP*A~SN1**1*EA*4*5*6*7*8*9*10*11*12*13*14*15*16*17~"
                      "HL*4*2*I~LIN**VP*B~SN1**2~"),
        "[supplier.globex]\nmax_elements = 16\n");
    cr_assert(n_rows == 2, "%zu rows", n_rows);
    row_bad(0, 11, "segment 11: SN1 has more than 16 elements");
    row_ok(1, 14, "B", "0001", 2, "", T0800, "SHP-1");

    /* out of range: the config error names path, line, section and key */
    config_fails("[supplier.globex]\nformat = x12-856\nmax_hls_per_set = 4000001\n",
                 "3: [supplier.globex] max_hls_per_set: '4000001' is not a whole number of HL "
                 "segments from 1 to 4000000");
}

LEAK_TEST(x12_856, header_errors_reject_the_set)
{
    only_reject("HL*1**S~HL*2*1*I~LIN**VP*A~SN1**1~", 4,
                "segment 4: an 856 starts with BSN, not HL");
    only_reject("BSN*00**20240301~HL*1**S~HL*2*1*I~LIN**VP*A~SN1**1~", 4,
                "segment 4: field BSN02: is missing");
    only_reject("BSN*00*SHP-1*2024~HL*1**S~HL*2*1*I~LIN**VP*A~SN1**1~", 4,
                "segment 4: field BSN03: '2024' is not a date (CCYYMMDD, 1970 or later)");
    only_reject(BSN "HL*1**S~DTM*011*20240301*9999~HL*2*1*I~LIN**VP*A~SN1**1~", 6,
                "segment 6: field DTM03: '9999' is not a time (HHMM[SS[d[d]]])");
    only_reject(BSN "HL*1**S~N1*ST*EAST DC~HL*2*1*I~LIN**VP*A~SN1**1~", 6,
                "segment 6: N1 ST (ship-to) has no id code in N104");
    only_reject(BSN "HL*1**S~HL*2*1*O~", 3, "segment 3: the 856 has no item HL (HL03 I)");
    only_reject("", 3, "segment 3: the 856 is empty (no BSN)");
}

LEAK_TEST(x12_856, trailers_and_set_type)
{
    run(feed_se(BSN "HL*1**S~HL*2*1*I~LIN**VP*A~SN1**1~", 4, "0001"), NULL);
    cr_assert(n_rows == 1);
    row_bad(0, 9, "segment 9: SE01 says 4 segments, the set has 7 (ST to SE)");

    /* a bad set, then a good one: ordinals go on */
    snprintf(buf, sizeof buf,
             "%s%sST*846*0001~BIA*00~SE*3*0001~ST*856*0002~" BSN
             "HL*1**S~HL*2*1*I~LIN**VP*A~SN1**1~SE*7*0002~GE*2*517~IEA*1*000000517~",
             ISA_, GS_);
    run(buf, NULL);
    cr_assert(n_rows == 2);
    row_bad(0, 3, "segment 3: ST01 '846' is not 856 (Ship Notice/Manifest)");
    row_ok(1, 11, "A", "", 1, "", T1000, "SHP-1");
}

LEAK_TEST(x12_856, envelope_errors_fail_open_naming_the_feed)
{
    void *opts = options(NULL);
    sf_feed_ctx ctx = {"globex.edi", READ_AT, TZ_EST};
    const char *data = ISA_ GS_ "ST*856*0001~" BSN "SE*3*0001~GE*1*517~IEA*2*000000517~";
    void *state = (void *)1;
    sf_error err;
    cr_assert(sf_adapter_x12_856.open(opts, &ctx, data, strlen(data), &state, &err) == SF_EINVAL);
    cr_assert(state == NULL);
    cr_assert(strcmp(err.msg, "globex.edi: segment 7: IEA01 says 2 functional groups, the "
                              "interchange has 1") == 0,
              "%s", err.msg);
    sf_adapter_x12_856.free_opts(opts);
}

LEAK_TEST(x12_856, digest_survives_a_resend_and_follows_quantities)
{
    run(feed(BSN SHIP "HL*3*2*I~LIN**VP*A~SN1**5*EA~"), NULL);
    char first[65];
    memcpy(first, digest, sizeof first);
    snprintf(buf, sizeof buf,
             "ISA|00|          |00|          |ZZ|GLOBEX         |ZZ|STOCKFLOW      |240309|2300|U|"
             "00401|000000999|0|P|:\n"
             "GS|SH|GLOBEX|STOCKFLOW|20240309|2300|999|X|004010\n"
             "ST|856|9999\n"
             "BSN|00|SHP-1|20240301|1000|0001\nHL|1||S\nDTM|011|20240301|0800\n"
             "N1|ST|EAST DC|92|0001\nHL|2|1|O\nHL|3|2|I\nLIN||VP|A\nSN1||5|EA\nSE|10|9999\n"
             "GE|1|999\nIEA|1|000000999\n");
    run(buf, NULL);
    cr_assert(n_rows == 1 && rows[0].ok, "%s", rows[0].error.msg);
    cr_assert(strcmp(digest, first) == 0, "a re-sent 856 has the same digest");
    run(feed(BSN SHIP "HL*3*2*I~LIN**VP*A~SN1**6*EA~"), NULL);
    cr_assert(strcmp(digest, first) != 0);
}
