/*
 * test_x12: the X12 reader (suppliers/x12.c). Segments and their numbers;
 * separators read from the ISA ('|', '^', newline terminators, a 5010
 * repetition separator); CR/LF, BOM and blank lines; transaction sets and
 * their trailers (SE01, SE02, missing SE); every envelope error failing
 * open with its segment; element and segment limits; the business digest
 * (stable across control numbers, envelope dates, separators and line
 * breaks, changed by a quantity); R numbers, dates and times, qualifier
 * lists and their config errors, and LIN item selection.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../suppliers/x12.h"
#include "config.h"
#include "leak_guard.h"
#include "tmp_ini.h"

#define ISA(date, time, ctl)                                                                       \
    "ISA*00*          *00*          *ZZ*ACME           *ZZ*STOCKFLOW      *" date "*" time         \
    "*U*00401*" ctl "*0*P*>~"
#define GS(date, time, ctl) "GS*IB*ACME*STOCKFLOW*" date "*" time "*" ctl "*X*004010~"

/* ISA 1, GS 2, ST 3, BIA 4, LIN 5, QTY 6, SE 7, GE 8, IEA 9 */
#define SET_BODY "BIA*00*DD*R1*20240301~LIN**VP*A-1~QTY*33*5*EA>12~"
#define SAMPLE                                                                                     \
    ISA("240301", "0930", "000000101")                                                             \
    GS("20240301", "0930", "101") "ST*846*0001~" SET_BODY "SE*5*0001~GE*1*101~IEA*1*000000101~"

#define TZ_EST (-5 * 3600)

/* --- helpers ------------------------------------------------------------------ */

/* src with '*' -> es, '>' -> cs, '~' -> ts + nl; ISA11 -> rs when not 0. */
static char *translate(const char *src, char es, char cs, char ts, const char *nl, char rs)
{
    size_t cap = strlen(src) * 3 + 1;
    char *out = malloc(cap);
    cr_assert(out);
    size_t o = 0;
    for (const char *p = src; *p; p++) {
        if (*p == '*') {
            out[o++] = es;
        } else if (*p == '>') {
            out[o++] = cs;
        } else if (*p == '~') {
            out[o++] = ts;
            for (const char *n = nl; *n; n++)
                out[o++] = *n;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    if (rs)
        out[82] = rs;
    return out;
}

static sf_x12 *open_ok(const char *data, size_t len)
{
    sf_x12 *x = NULL;
    sf_error err;
    sf_status st = sf_x12_open(data, len, NULL, &x, &err);
    cr_assert(st == SF_OK, "open failed: %s", err.msg);
    return x;
}

static void open_fails(const char *data, const char *msg)
{
    sf_x12 *x = NULL;
    sf_error err;
    sf_status st = sf_x12_open(data, strlen(data), NULL, &x, &err);
    cr_assert(st == SF_EINVAL, "open accepted: %s", data);
    cr_assert(x == NULL);
    cr_assert(strcmp(err.msg, msg) == 0, "\n  got:  %s\n  want: %s", err.msg, msg);
}

static void digest_of(const char *data, char out[65])
{
    sf_x12 *x = open_ok(data, strlen(data));
    snprintf(out, 65, "%s", sf_x12_digest(x));
    sf_x12_close(x);
}

/* A segment built by hand: id, then elements, NULL-terminated. */
static void mkseg(sf_x12_seg *seg, const char *id, ...)
{
    memset(seg, 0, sizeof *seg);
    snprintf(seg->id, sizeof seg->id, "%s", id);
    seg->number = 5;
    seg->el[0].p = id;
    seg->el[0].len = strlen(id);
    va_list ap;
    va_start(ap, id);
    const char *e;
    while ((e = va_arg(ap, const char *)) != NULL) {
        seg->n++;
        seg->el[seg->n].p = e;
        seg->el[seg->n].len = strlen(e);
    }
    va_end(ap);
}

static sf_x12_span span(const char *s)
{
    sf_x12_span sp = {s, strlen(s)};
    return sp;
}

static bool span_eq(sf_x12_span s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* --- segments and separators ---------------------------------------------------------- */

LEAK_TEST(x12, reads_segments_with_default_separators)
{
    const char data[] = SAMPLE;
    sf_x12 *x = open_ok(data, sizeof data - 1);
    sf_x12_seps s = sf_x12_separators(x);
    cr_assert(s.element == '*' && s.component == '>' && s.segment == '~' && s.repetition == 0);
    cr_assert(sf_x12_segments(x) == 9);
    int32_t ymd, hhmm;
    sf_x12_interchange_time(x, &ymd, &hhmm);
    cr_assert(ymd == 20240301 && hhmm == 930);
    const char *ids[] = {"ISA", "GS", "ST", "BIA", "LIN", "QTY", "SE", "GE", "IEA"};
    sf_x12_cursor c = sf_x12_begin(x);
    sf_x12_seg seg;
    sf_error err;
    for (int i = 0; i < 9; i++) {
        cr_assert(sf_x12_next(x, &c, &seg, &err) == SF_OK, "%s", err.msg);
        cr_assert(seg.number == (uint64_t)i + 1);
        cr_assert(strcmp(seg.id, ids[i]) == 0, "segment %d is %s", i + 1, seg.id);
        if (i == 0)
            cr_assert(seg.n == 16 && span_eq(sf_x12_el(&seg, 13), "000000101"));
        if (i == 4)
            cr_assert(span_eq(sf_x12_el(&seg, 3), "A-1") && sf_x12_el(&seg, 1).len == 0 &&
                      sf_x12_el(&seg, 9).len == 0 && span_eq(seg.raw, "LIN**VP*A-1"));
        if (i == 5) {
            cr_assert(span_eq(sf_x12_component(x, sf_x12_el(&seg, 3), 1), "EA"));
            cr_assert(span_eq(sf_x12_component(x, sf_x12_el(&seg, 3), 2), "12"));
            cr_assert(sf_x12_component(x, sf_x12_el(&seg, 3), 3).len == 0);
        }
    }
    cr_assert(sf_x12_next(x, &c, &seg, &err) == SF_ENOTFOUND);
    cr_assert(strlen(sf_x12_digest(x)) == 64);
    sf_x12_close(x);
}

LEAK_TEST(x12, separators_pipe_caret_and_newline_terminator)
{
    char *data = translate(SAMPLE, '|', '^', '\n', "", 0);
    cr_assert(strncmp(data, "ISA|00|", 7) == 0 && data[104] == '^' && data[105] == '\n');
    sf_x12 *x = open_ok(data, strlen(data));
    sf_x12_seps s = sf_x12_separators(x);
    cr_assert(s.element == '|' && s.component == '^' && s.segment == '\n' && s.repetition == 0);
    cr_assert(sf_x12_segments(x) == 9);
    sf_x12_cursor c = sf_x12_begin(x);
    sf_x12_seg seg;
    sf_error err;
    for (int i = 0; i < 6; i++)
        cr_assert(sf_x12_next(x, &c, &seg, &err) == SF_OK, "%s", err.msg);
    cr_assert(strcmp(seg.id, "QTY") == 0 && seg.number == 6);
    cr_assert(span_eq(sf_x12_el(&seg, 2), "5"));
    cr_assert(span_eq(sf_x12_component(x, sf_x12_el(&seg, 3), 1), "EA"));
    cr_assert(span_eq(sf_x12_component(x, sf_x12_el(&seg, 3), 2), "12"));

    char want[65];
    digest_of(SAMPLE, want);
    cr_assert(strcmp(sf_x12_digest(x), want) == 0, "separators do not change the digest");
    sf_x12_close(x);
    free(data);
}

LEAK_TEST(x12, repetition_separator_from_isa11)
{
    char *data = translate(SAMPLE, '|', ':', '~', "\n", '^');
    sf_x12 *x = open_ok(data, strlen(data));
    sf_x12_seps s = sf_x12_separators(x);
    cr_assert(s.element == '|' && s.component == ':' && s.segment == '~' && s.repetition == '^');
    sf_x12_close(x);
    free(data);

    data = translate(SAMPLE, '*', ':', '~', "", '>');
    sf_x12 *bad = NULL;
    sf_error err;
    cr_assert(sf_x12_open(data, strlen(data), NULL, &bad, &err) == SF_OK, "%s", err.msg);
    cr_assert(sf_x12_separators(bad).repetition == '>');
    sf_x12_close(bad);
    data[82] = ':';
    cr_assert(sf_x12_open(data, strlen(data), NULL, &bad, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "segment 1: repetition separator ':' (ISA11) repeats another "
                              "separator") == 0,
              "%s", err.msg);
    free(data);
}

LEAK_TEST(x12, crlf_bom_and_blank_lines_are_ignored)
{
    char *crlf = translate(SAMPLE, '*', '>', '~', "\r\n", 0);
    size_t n = strlen(crlf);
    char *data = malloc(n + 16);
    cr_assert(data);
    memcpy(data, "\xEF\xBB\xBF\r\n \n", 7);
    memcpy(data + 7, crlf, n);
    memcpy(data + 7 + n, "\r\n\n", 4);
    sf_x12 *x = open_ok(data, strlen(data));
    cr_assert(sf_x12_segments(x) == 9);
    char want[65];
    digest_of(SAMPLE, want);
    cr_assert(strcmp(sf_x12_digest(x), want) == 0);
    sf_x12_cursor c = sf_x12_begin(x);
    sf_x12_seg seg;
    sf_error err;
    for (int i = 0; i < 5; i++)
        cr_assert(sf_x12_next(x, &c, &seg, &err) == SF_OK);
    cr_assert(strcmp(seg.id, "LIN") == 0 && seg.number == 5 && span_eq(sf_x12_el(&seg, 3), "A-1"));
    sf_x12_close(x);
    free(data);
    free(crlf);
}

/* --- transaction sets ------------------------------------------------------------------- */

LEAK_TEST(x12, sets_and_their_trailers)
{
    /* ST 3..SE 5 good; ST 6..SE 8 count wrong; ST 9..SE 11 SE02 wrong;
     * ST 12, BIA 13, then GE 14: no SE */
    const char data[] = ISA("240301", "0930", "000000101")
        GS("20240301", "0930", "101") "ST*846*0001~BIA*00~SE*3*0001~"
                                      "ST*846*0002~BIA*00~SE*9*0002~"
                                      "ST*846*0003~BIA*00~SE*3*0099~"
                                      "ST*856*0004~BIA*00~"
                                      "GE*4*101~IEA*1*000000101~";
    sf_x12 *x = open_ok(data, sizeof data - 1);
    sf_x12_cursor c = sf_x12_begin(x);
    sf_x12_set set;
    sf_error err;
    cr_assert(sf_x12_next_set(x, &c, &set, &err) == SF_OK);
    cr_assert(set.ok && set.st == 3 && strcmp(set.type, "846") == 0);
    cr_assert(set.body.number == 4 && set.body_end == 5);
    cr_assert(sf_x12_next_set(x, &c, &set, &err) == SF_OK);
    cr_assert(!set.ok && set.st == 6 && set.error_at == 8);
    cr_assert(strcmp(set.error.msg, "segment 8: SE01 says 9 segments, the set has 3 (ST to SE)") ==
                  0,
              "%s", set.error.msg);
    cr_assert(sf_x12_next_set(x, &c, &set, &err) == SF_OK);
    cr_assert(!set.ok && set.error_at == 11);
    cr_assert(strcmp(set.error.msg,
                     "segment 11: SE02 '0099' does not match ST02 '0003' (segment 9)") == 0,
              "%s", set.error.msg);
    cr_assert(sf_x12_next_set(x, &c, &set, &err) == SF_OK);
    cr_assert(!set.ok && set.st == 12 && set.error_at == 14 && set.body_end == 14);
    cr_assert(strcmp(set.type, "856") == 0);
    cr_assert(strcmp(set.error.msg,
                     "segment 14: the set opened by ST at segment 12 has no SE (GE comes first)") ==
                  0,
              "%s", set.error.msg);
    cr_assert(sf_x12_next_set(x, &c, &set, &err) == SF_ENOTFOUND);
    cr_assert(sf_x12_next_set(x, &c, &set, &err) == SF_ENOTFOUND, "the end stays the end");
    sf_x12_close(x);
}

LEAK_TEST(x12, a_set_without_st02_is_a_bad_set)
{
    const char data[] = ISA("240301", "0930", "000000101")
        GS("20240301", "0930", "101") "ST*846~BIA*00~SE*3~GE*1*101~IEA*1*000000101~";
    sf_x12 *x = open_ok(data, sizeof data - 1);
    sf_x12_cursor c = sf_x12_begin(x);
    sf_x12_set set;
    sf_error err;
    cr_assert(sf_x12_next_set(x, &c, &set, &err) == SF_OK);
    cr_assert(!set.ok && set.error_at == 3);
    cr_assert(strcmp(set.error.msg, "segment 3: field ST02 (control number) is missing") == 0, "%s",
              set.error.msg);
    sf_x12_close(x);
}

/* --- envelopes: each fails open -------------------------------------------------------- */

LEAK_TEST(x12, no_isa_or_a_short_isa_fails_open)
{
    open_fails("", "segment 1: the feed does not start with an ISA segment");
    open_fails("GS*IB~", "segment 1: the feed does not start with an ISA segment");
    open_fails("ISA*00*", "segment 1: the ISA is cut short (7 of its 106 fixed-width bytes)");
}

LEAK_TEST(x12, isa_fixed_widths_and_separators)
{
    /* ISA06 one byte short, ISA08 one byte long: same length, moved separator */
    open_fails(
        "ISA*00*          *00*          *ZZ*ACME          *ZZ*STOCKFLOW       *240301*0930*U*"
        "00401*000000101*0*P*>~",
        "segment 1: ISA06 does not end at byte 51: the ISA has fixed widths (element "
        "separator '*')");
    open_fails(
        "ISA*00*          *00*          *ZZ*AC*E           *ZZ*STOCKFLOW      *240301*0930*U*"
        "00401*000000101*0*P*>~",
        "segment 1: an ISA field holds the element separator '*': the ISA has fixed widths");
    open_fails(
        "ISA*00*          *00*          *ZZ*ACME           *ZZ*STOCKFLOW      *240301*0930*U*"
        "00401*000000101*0*P*>X",
        "segment 1: segment terminator 'X' (ISA byte 106) is unusable");
    open_fails(
        "ISA*00*          *00*          *ZZ*ACME           *ZZ*STOCKFLOW      *240301*0930*U*"
        "00401*000000101*0*P***",
        "segment 1: component separator '*' (ISA16) is unusable");
    open_fails(ISA("240231", "0930", "000000101"),
               "segment 1: field ISA09: '240231' is not a date (YYMMDD)");
    open_fails(ISA("240301", "2460", "000000101"),
               "segment 1: field ISA10: '2460' is not a time (HHMM)");
    open_fails(ISA("240301", "0930", "00000010A"),
               "segment 1: field ISA13: '00000010A' is not a control number (9 digits)");
}

LEAK_TEST(x12, group_and_interchange_trailers_fail_open)
{
#define HEAD ISA("240301", "0930", "000000101") GS("20240301", "0930", "101")
#define SET1 "ST*846*0001~" SET_BODY "SE*5*0001~"
    open_fails(HEAD SET1 "GE*2*101~IEA*1*000000101~",
               "segment 8: GE01 says 2 transaction sets, the group has 1");
    open_fails(HEAD SET1 "GE*1*102~IEA*1*000000101~",
               "segment 8: GE02 '102' does not match GS06 '101' (segment 2)");
    open_fails(HEAD SET1 "GE*1*101~IEA*2*000000101~",
               "segment 9: IEA01 says 2 functional groups, the interchange has 1");
    open_fails(HEAD SET1 "GE*1*101~IEA*1*000000102~",
               "segment 9: IEA02 '000000102' does not match ISA13 '000000101'");
    open_fails(HEAD SET1 "GE*1*101~IEA*1*x~",
               "segment 9: IEA02 'x' does not match ISA13 '000000101'");
    open_fails(HEAD SET1 "GE*one*101~IEA*1*000000101~",
               "segment 8: field GE01: 'one' is not a count of transaction sets");
    open_fails(HEAD SET1 "IEA*1*000000101~",
               "segment 8: IEA before a GE closes the group of segment 2");
    open_fails(ISA("240301", "0930", "000000101") "GS*IB*ACME*STOCKFLOW*20240301*0930**X~",
               "segment 2: field GS06: '' is not a group control number (1-9 digits)");
    open_fails(ISA("240301", "0930", "000000101") "ST*846*0001~",
               "segment 2: ST outside a functional group (no GS)");
    open_fails(HEAD SET1 "REF*ZZ*1~GE*1*101~IEA*1*000000101~",
               "segment 8: REF outside a transaction set (ST..SE)");
    open_fails(ISA("240301", "0930", "000000101") "REF*ZZ*1~IEA*0*000000101~",
               "segment 2: REF outside a functional group (GS..GE)");
    open_fails(HEAD SET1 GS("20240301", "0930", "102") "GE*1*101~IEA*1*000000101~",
               "segment 8: GS before a GE closes the group of segment 2");
    open_fails(HEAD SET1 "GE*1*101~" ISA("240301", "0930", "000000102"),
               "segment 9: a second ISA before the IEA: a feed holds one interchange");
    open_fails(HEAD SET1 "GE*1*101~IEA*1*000000101~\nGS*IB~",
               "segment 10: data after the IEA: a feed holds one interchange");
#undef SET1
#undef HEAD
}

LEAK_TEST(x12, a_truncated_file_fails_open)
{
    const char full[] = SAMPLE;
    char buf[sizeof full];
    /* cut after the QTY's terminator: segment 7 (the SE) never comes */
    const char *qty_end = strstr(full, "EA>12~") + 6;
    size_t n = (size_t)(qty_end - full);
    memcpy(buf, full, n);
    buf[n] = '\0';
    open_fails(buf, "segment 7: the file ends without an IEA (truncated interchange)");
    /* cut inside the SE */
    memcpy(buf, full, n + 5);
    buf[n + 5] = '\0';
    open_fails(buf, "segment 7: the file ends inside a segment, before a terminator '~' "
                    "(truncated interchange)");
    /* the IEA without its terminator */
    memcpy(buf, full, sizeof full - 2);
    buf[sizeof full - 2] = '\0';
    open_fails(buf, "segment 9: the file ends inside a segment, before a terminator '~' "
                    "(truncated interchange)");
}

LEAK_TEST(x12, an_overlong_envelope_element_fails_open)
{
    char gs[400];
    char pad[301];
    memset(pad, 'A', 300);
    pad[300] = '\0';
    snprintf(gs, sizeof gs, "GS*IB*%s*STOCKFLOW*20240301*0930*101*X*004010~", pad);
    char data[1024];
    snprintf(data, sizeof data, "%s%s%s", ISA("240301", "0930", "000000101"), gs,
             "ST*846*0001~" SET_BODY "SE*5*0001~GE*1*101~IEA*1*000000101~");
    open_fails(data, "segment 2: field GS02: 300 bytes, longer than 256");
}

/* --- limits ---------------------------------------------------------------------------- */

LEAK_TEST(x12, limits_reject_the_segment_and_move_on)
{
    char longel[300];
    memset(longel, 'X', 257);
    longel[257] = '\0';
    char many[400] = "REF";
    for (int i = 0; i < 65; i++)
        strcat(many, "*1");
    char data[2048];
    /* ST 3, LIN 4 (257-byte element), REF 5 (65 elements), lin 6 (bad id),
     * QTY 7, SE 8 */
    snprintf(data, sizeof data,
             "%s%sST*846*0001~LIN**VP*%s~%s~lin**VP*A~QTY*33*1~SE*6*0001~GE*1*101~IEA*1*"
             "000000101~",
             ISA("240301", "0930", "000000101"), GS("20240301", "0930", "101"), longel, many);
    sf_x12 *x = open_ok(data, strlen(data));
    sf_x12_cursor c = sf_x12_begin(x);
    sf_x12_seg seg;
    sf_error err;
    for (int i = 0; i < 3; i++)
        cr_assert(sf_x12_next(x, &c, &seg, &err) == SF_OK);
    cr_assert(sf_x12_next(x, &c, &seg, &err) == SF_EINVAL);
    cr_assert(seg.number == 4 && strcmp(seg.id, "LIN") == 0);
    cr_assert(strcmp(err.msg, "segment 4: field LIN03: 257 bytes, longer than 256") == 0, "%s",
              err.msg);
    cr_assert(sf_x12_next(x, &c, &seg, &err) == SF_EINVAL);
    cr_assert(seg.number == 5 && seg.n == SF_X12_ELEMENTS_MAX);
    cr_assert(strcmp(err.msg, "segment 5: REF has more than 64 elements") == 0, "%s", err.msg);
    cr_assert(sf_x12_next(x, &c, &seg, &err) == SF_EINVAL);
    cr_assert(seg.number == 6 && seg.id[0] == '\0');
    cr_assert(strcmp(err.msg, "segment 6: segment id 'lin' is not 2-3 upper-case letters or "
                              "digits") == 0,
              "%s", err.msg);
    cr_assert(sf_x12_next(x, &c, &seg, &err) == SF_OK);
    cr_assert(seg.number == 7 && strcmp(seg.id, "QTY") == 0, "reading goes on after a bad one");
    sf_x12_close(x);
}

/* limits as the adapter passes them: lowered from the defaults */
static sf_x12_limits lowered(uint64_t segments, size_t elements, size_t bytes)
{
    sf_x12_limits l;
    sf_x12_limits_init(&l);
    cr_assert(l.max_segments == SF_X12_SEGMENTS_MAX && l.max_elements == SF_X12_ELEMENTS_MAX &&
              l.max_element_bytes == SF_X12_ELEMENT_MAX);
    l.max_segments = segments;
    l.max_elements = elements;
    l.max_element_bytes = bytes;
    return l;
}

LEAK_TEST(x12, lowered_limits_fail_open_or_reject_the_segment)
{
    sf_x12 *x = NULL;
    sf_error err;
    /* SAMPLE has 9 segments: 9 pass, 8 fail open at the 9th */
    sf_x12_limits l = lowered(9, SF_X12_ELEMENTS_MAX, SF_X12_ELEMENT_MAX);
    cr_assert(sf_x12_open(SAMPLE, strlen(SAMPLE), &l, &x, &err) == SF_OK, "%s", err.msg);
    cr_assert(sf_x12_segments(x) == 9);
    sf_x12_close(x);
    l.max_segments = 8;
    cr_assert(sf_x12_open(SAMPLE, strlen(SAMPLE), &l, &x, &err) == SF_EINVAL);
    cr_assert(x == NULL);
    cr_assert(strcmp(err.msg, "segment 9: more than 8 segments in the interchange "
                              "(max_segments)") == 0,
              "%s", err.msg);

    /* 20 bytes an element, 16 elements a segment: LIN 4 has a 21-byte
     * element, REF 5 has 17 elements; both are rejected alone */
    char data[2048];
    snprintf(data, sizeof data,
             "%s%sST*846*0001~LIN**VP*AAAAAAAAAAAAAAAAAAAAA~REF*1*2*3*4*5*6*7*8*9*10*11*12*13*14*"
             "15*16*17~LIN**VP*AAAAAAAAAAAAAAAAAAAA~SE*5*0001~GE*1*101~IEA*1*000000101~",
             ISA("240301", "0930", "000000101"), GS("20240301", "0930", "101"));
    l = lowered(SF_X12_SEGMENTS_MAX, 16, 20);
    cr_assert(sf_x12_open(data, strlen(data), &l, &x, &err) == SF_OK, "%s", err.msg);
    sf_x12_cursor c = sf_x12_begin(x);
    sf_x12_seg seg;
    for (int i = 0; i < 3; i++)
        cr_assert(sf_x12_next(x, &c, &seg, &err) == SF_OK, "segment %d: %s", i + 1, err.msg);
    cr_assert(sf_x12_next(x, &c, &seg, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "segment 4: field LIN03: 21 bytes, longer than 20") == 0, "%s",
              err.msg);
    cr_assert(sf_x12_next(x, &c, &seg, &err) == SF_EINVAL);
    cr_assert(seg.number == 5 && seg.n == 16, "%zu elements kept", seg.n);
    cr_assert(strcmp(err.msg, "segment 5: REF has more than 16 elements") == 0, "%s", err.msg);
    cr_assert(sf_x12_next(x, &c, &seg, &err) == SF_OK, "a 20-byte element passes: %s", err.msg);
    sf_x12_close(x);

    /* the defaults take the same document */
    cr_assert(sf_x12_open(data, strlen(data), NULL, &x, &err) == SF_OK, "%s", err.msg);
    sf_x12_close(x);
    /* limits open cannot honour are refused, not trusted */
    l = lowered(100, SF_X12_ELEMENTS_MAX + 1, 100);
    cr_assert(sf_x12_open(SAMPLE, strlen(SAMPLE), &l, &x, &err) == SF_EINVAL && x == NULL);
    cr_assert(strstr(err.msg, "65 elements is not in 1..64"), "%s", err.msg);
}

LEAK_TEST(x12, limits_config_defaults_values_and_range_errors)
{
    char path[TMP_INI_PATH_MAX];
    sf_config cfg;
    sf_error err;
    sf_x12_limits l;
    tmp_ini_load(&cfg, "[supplier.acme]\nformat = x12-846\n", path);
    cr_assert(sf_x12_limits_config(&cfg, "supplier.acme", &l, &err) == SF_OK, "%s", err.msg);
    cr_assert(l.max_segments == 4000000 && l.max_elements == 64 && l.max_element_bytes == 256,
              "absent keys give today's limits");
    sf_config_free(&cfg);

    tmp_ini_load(&cfg,
                 "[supplier.acme]\nformat = x12-846\nmax_segments = 1000\nmax_elements = 16\n"
                 "max_element_bytes = 4096\n",
                 path);
    cr_assert(sf_x12_limits_config(&cfg, "supplier.acme", &l, &err) == SF_OK, "%s", err.msg);
    cr_assert(l.max_segments == 1000 && l.max_elements == 16 && l.max_element_bytes == 4096);
    sf_config_free(&cfg);

    static const struct {
        const char *line, *msg;
    } bad[] = {
        {"max_segments = 5", "max_segments: '5' is not a whole number of segments from 6 to "
                             "20000000"},
        {"max_segments = 20000001", "max_segments: '20000001' is not a whole number of segments "
                                    "from 6 to 20000000"},
        {"max_elements = 65", "max_elements: '65' is not a whole number of elements from 16 to "
                              "64"},
        {"max_elements = 15", "max_elements: '15' is not a whole number of elements from 16 to "
                              "64"},
        {"max_element_bytes = 4097", "max_element_bytes: '4097' is not a whole number of bytes "
                                     "from 16 to 4096"},
        {"max_element_bytes = -1", "max_element_bytes: '-1' is not a whole number of bytes from "
                                   "16 to 4096"},
        {"max_segments = 1e6", "max_segments: '1e6' is not a whole number of segments from 6 to "
                               "20000000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char ini[256], want[512];
        snprintf(ini, sizeof ini, "[supplier.acme]\nformat = x12-856\n%s\n", bad[i].line);
        tmp_ini_load(&cfg, ini, path);
        cr_assert(sf_x12_limits_config(&cfg, "supplier.acme", &l, &err) == SF_EINVAL, "%s",
                  bad[i].line);
        snprintf(want, sizeof want, "%s:3: [supplier.acme] %s", path, bad[i].msg);
        cr_assert(strcmp(err.msg, want) == 0, "\n  got:  %s\n  want: %s", err.msg, want);
        sf_config_free(&cfg);
    }
}

/* --- digest ------------------------------------------------------------------------------ */

LEAK_TEST(x12, digest_ignores_control_numbers_envelope_dates_and_layout)
{
    char a[65], b[65], c[65], d[65], e[65];
    digest_of(SAMPLE, a);
    for (int i = 0; i < 64; i++)
        cr_assert((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
    /* re-sent: new control numbers, dates and times, other separators */
    char *resent = translate(ISA("240302", "1200", "000000202")
                                 GS("20240302", "1200", "202") "ST*846*0077~" SET_BODY
                                                               "SE*5*0077~GE*1*202~IEA*1*"
                                                               "000000202~",
                             '|', '^', '\n', "", '{');
    digest_of(resent, b);
    cr_assert(strcmp(a, b) == 0, "a re-sent document has the same digest");
    /* trailing empty elements are not business content */
    digest_of(ISA("240301", "0930", "000000101")
                  GS("20240301", "0930",
                     "101") "ST*846*0001~BIA*00*DD*R1*20240301**~LIN**VP*A-1~QTY*33*5*EA>12~SE*5*"
                            "0001~GE*1*101~IEA*1*000000101~",
              c);
    cr_assert(strcmp(a, c) == 0);
    /* a changed quantity is a different document */
    digest_of(ISA("240301", "0930", "000000101")
                  GS("20240301", "0930",
                     "101") "ST*846*0001~BIA*00*DD*R1*20240301~LIN**VP*A-1~QTY*33*6*EA>12~SE*5*"
                            "0001~GE*1*101~IEA*1*000000101~",
              d);
    cr_assert(strcmp(a, d) != 0, "a changed qty changes the digest");
    /* so is a component moved across an element boundary */
    digest_of(ISA("240301", "0930", "000000101")
                  GS("20240301", "0930",
                     "101") "ST*846*0001~BIA*00*DD*R1*20240301~LIN**VP*A-1~QTY*33*5*EA*12~SE*5*"
                            "0001~GE*1*101~IEA*1*000000101~",
              e);
    cr_assert(strcmp(a, e) != 0);
    free(resent);
}

/* --- elements ---------------------------------------------------------------------------- */

static void number_ok(const char *s, int64_t units, int scale)
{
    sf_decimal d;
    sf_error err;
    cr_assert(sf_x12_number(span(s), "QTY02", &d, &err) == SF_OK, "%s: %s", s, err.msg);
    cr_assert(d.units == units && d.scale == scale, "%s -> %lld/%d", s, (long long)d.units,
              d.scale);
}

static void number_bad(const char *s, const char *msg)
{
    sf_decimal d;
    sf_error err;
    cr_assert(sf_x12_number(span(s), "QTY02", &d, &err) == SF_EINVAL, "%s accepted", s);
    cr_assert(strcmp(err.msg, msg) == 0, "\n  got:  %s\n  want: %s", err.msg, msg);
}

LEAK_TEST(x12, r_numbers)
{
    number_ok("12", 12, 0);
    number_ok("2.5", 25, 1);
    number_ok("-3", -3, 0);
    number_ok(".5", 5, 1);
    number_ok("5.", 5, 0);
    number_ok("+4", 4, 0);
    number_ok("0.000001", 1, 6);
    number_ok("000000000000000000001", 1, 0);
    number_ok("999999999999999999", INT64_C(999999999999999999), 0);
    number_bad("", "field QTY02: is missing");
    number_bad("1E3", "field QTY02: '1E3' is not a number (digits, an optional '-' and '.')");
    number_bad("1,5", "field QTY02: '1,5' is not a number (digits, an optional '-' and '.')");
    number_bad(" 5", "field QTY02: ' 5' is not a number (digits, an optional '-' and '.')");
    number_bad("-", "field QTY02: '-' is not a number (digits, an optional '-' and '.')");
    number_bad("1.2.3", "field QTY02: '1.2.3' is not a number (digits, an optional '-' and '.')");
    number_bad("1.2345678", "field QTY02: '1.2345678' has more than 6 decimals");
    number_bad("1000000000000000000", "field QTY02: '1000000000000000000' has more than 18 digits");
}

static sf_x12 *time_reader(void)
{
    const char data[] = SAMPLE; /* ISA09/ISA10: 2024-03-01 09:30 */
    return open_ok(data, sizeof data - 1);
}

static void time_ok(sf_x12 *x, const sf_feed_ctx *ctx, const sf_x12_seg *seg, int64_t want)
{
    int64_t t = 0;
    sf_error err;
    cr_assert(sf_x12_time(x, ctx, seg, 2, true, &t, &err) == SF_OK, "%s", err.msg);
    cr_assert(t == want, "got %lld, want %lld", (long long)t, (long long)want);
}

static void time_bad(sf_x12 *x, const sf_feed_ctx *ctx, const sf_x12_seg *seg, const char *msg)
{
    int64_t t = 0;
    sf_error err;
    cr_assert(sf_x12_time(x, ctx, seg, 2, true, &t, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, msg) == 0, "\n  got:  %s\n  want: %s", err.msg, msg);
}

LEAK_TEST(x12, dates_and_times)
{
    sf_x12 *x = time_reader();
    sf_feed_ctx ctx = {"t.edi", INT64_C(1709337600000) /* 2024-03-02T00:00Z */, TZ_EST};
    sf_x12_seg seg;
    /* the interchange date: the interchange time, 09:30 EST */
    mkseg(&seg, "DTM", "405", "20240301", NULL);
    time_ok(x, &ctx, &seg, INT64_C(1709303400000));
    /* another date: the end of that day, EST */
    mkseg(&seg, "DTM", "405", "20240229", NULL);
    time_ok(x, &ctx, &seg, INT64_C(1709269199999));
    mkseg(&seg, "DTM", "405", "20240301", "1215", NULL);
    time_ok(x, &ctx, &seg, INT64_C(1709313300000));
    mkseg(&seg, "DTM", "405", "20240301", "121530", NULL);
    time_ok(x, &ctx, &seg, INT64_C(1709313330000));
    mkseg(&seg, "DTM", "405", "20240301", "12153025", NULL);
    time_ok(x, &ctx, &seg, INT64_C(1709313330250));
    mkseg(&seg, "DTM", "405", "20240301", "1215", "UT", NULL);
    time_ok(x, &ctx, &seg, INT64_C(1709295300000));
    mkseg(&seg, "DTM", "405", "20240301", "1215", "PS", NULL);
    time_ok(x, &ctx, &seg, INT64_C(1709324100000));
    mkseg(&seg, "DTM", "405", "20240301", "1215", "LT", NULL);
    time_ok(x, &ctx, &seg, INT64_C(1709313300000));
    mkseg(&seg, "DTM", "405", "", "", "", "D8", "20240229", NULL);
    time_ok(x, &ctx, &seg, INT64_C(1709269199999));
    mkseg(&seg, "DTM", "405", "", "", "", "DT", "202403011215", NULL);
    time_ok(x, &ctx, &seg, INT64_C(1709313300000));
    /* never after the read time */
    mkseg(&seg, "DTM", "405", "20240305", NULL);
    time_ok(x, &ctx, &seg, INT64_C(1709337600000));
    mkseg(&seg, "DTM", "405", "20240301", "2300", NULL);
    time_ok(x, &ctx, &seg, INT64_C(1709337600000));

    mkseg(&seg, "DTM", "405", "20240230", NULL);
    time_bad(x, &ctx, &seg, "field DTM02: '20240230' is not a date (CCYYMMDD, 1970 or later)");
    mkseg(&seg, "DTM", "405", "240301", NULL);
    time_bad(x, &ctx, &seg, "field DTM02: '240301' is not a date (CCYYMMDD, 1970 or later)");
    mkseg(&seg, "DTM", "405", "19691231", NULL);
    time_bad(x, &ctx, &seg, "field DTM02: '19691231' is not a date (CCYYMMDD, 1970 or later)");
    mkseg(&seg, "DTM", "405", "20240301", "2460", NULL);
    time_bad(x, &ctx, &seg, "field DTM03: '2460' is not a time (HHMM[SS[d[d]]])");
    mkseg(&seg, "DTM", "405", "20240301", "123", NULL);
    time_bad(x, &ctx, &seg, "field DTM03: '123' is not a time (HHMM[SS[d[d]]])");
    mkseg(&seg, "DTM", "405", "20240301", "1215", "ZZ", NULL);
    time_bad(x, &ctx, &seg, "field DTM04: time code 'ZZ' is unknown");
    mkseg(&seg, "DTM", "405", NULL);
    time_bad(x, &ctx, &seg, "field DTM02: the date is missing");
    mkseg(&seg, "DTM", "405", "", "", "", "D9", "20240229", NULL);
    time_bad(x, &ctx, &seg, "field DTM05: date format 'D9' is not D8 or DT");
    mkseg(&seg, "DTM", "405", "", "", "", "DT", "2024030112", NULL);
    time_bad(x, &ctx, &seg, "field DTM06: '2024030112' is not a date (CCYYMMDD[HHMM[SS]])");

    /* BSN03/BSN04: no time code element */
    mkseg(&seg, "BSN", "00", "S1", "20240301", "1215", "0001", NULL);
    int64_t t;
    sf_error err;
    cr_assert(sf_x12_time(x, &ctx, &seg, 3, false, &t, &err) == SF_OK, "%s", err.msg);
    cr_assert(t == INT64_C(1709313300000));
    sf_x12_close(x);
}

LEAK_TEST(x12, ids_and_units)
{
    sf_x12 *x = time_reader();
    char id[SF_STR_MAX + 1], uom[SF_UOM_MAX + 1];
    sf_error err;
    cr_assert(sf_x12_id(x, span("AC-1001"), "LIN03", id, &err) == SF_OK);
    cr_assert(strcmp(id, "AC-1001") == 0);
    cr_assert(sf_x12_id(x, span(""), "N104", id, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "field N104: is missing") == 0, "%s", err.msg);
    cr_assert(sf_x12_id(x, span("A>B"), "LIN03", id, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "field LIN03: 'A>B' holds the separator '>'") == 0, "%s", err.msg);
    cr_assert(sf_x12_id(x,
                        span("A\x01"
                             "B"),
                        "LIN03", id, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "field LIN03: 'A\\x01B' holds control character U+0001 (byte 2)") ==
                  0,
              "%s", err.msg);
    cr_assert(sf_x12_id(x, span("A\xC3("), "LIN03", id, &err) == SF_EINVAL);
    cr_assert(strncmp(err.msg, "field LIN03: ", 13) == 0 && strstr(err.msg, "not valid UTF-8"),
              "%s", err.msg);
    cr_assert(sf_x12_uom(x, span("EA>12"), "QTY03", uom, &err) == SF_OK && !strcmp(uom, "EA"));
    cr_assert(sf_x12_uom(x, span(""), "QTY03", uom, &err) == SF_OK && uom[0] == '\0');
    cr_assert(sf_x12_uom(x, span("ea"), "QTY03", uom, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "field QTY03: unit 'ea' is not 1-8 upper-case letters or digits") ==
                  0,
              "%s", err.msg);
    cr_assert(sf_x12_uom(x, span("CASEOF120"), "SN103", uom, &err) == SF_EINVAL);
    sf_x12_close(x);
}

/* --- qualifier lists and config ------------------------------------------------------------ */

LEAK_TEST(x12, qualifier_lists)
{
    sf_x12_quals q;
    sf_error err;
    cr_assert(sf_x12_quals_parse(" vp, VN ,33", &q, &err) == SF_OK, "%s", err.msg);
    cr_assert(q.n == 3 && !strcmp(q.q[0], "VP") && !strcmp(q.q[1], "VN") && !strcmp(q.q[2], "33"));
    cr_assert(sf_x12_quals_rank(&q, span("VN")) == 1);
    cr_assert(sf_x12_quals_rank(&q, span("vn")) == -1, "feeds are matched exactly");
    cr_assert(sf_x12_quals_rank(&q, span("UP")) == -1);
    char buf[64];
    sf_x12_quals_format(&q, buf, sizeof buf);
    cr_assert(strcmp(buf, "VP,VN,33") == 0, "%s", buf);

    struct {
        const char *in, *msg;
    } bad[] = {
        {"", "is empty: give a comma list like VP,VN"},
        {"VP,,VN", "an empty qualifier in the list"},
        {"VP,", "an empty qualifier in the list"},
        {"VPX", "qualifier 'VPX' is not 2 letters or digits"},
        {"V-", "qualifier 'V-' is not 2 letters or digits"},
        {"VP,vp", "qualifier VP is listed twice"},
        {"A1,A2,A3,A4,A5,A6,A7,A8,A9,B1,B2,B3,B4,B5,B6,B7,B8", "more than 16 qualifiers"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert(sf_x12_quals_parse(bad[i].in, &q, &err) == SF_EINVAL, "%s accepted", bad[i].in);
        cr_assert(strcmp(err.msg, bad[i].msg) == 0, "\n  got:  %s\n  want: %s", err.msg,
                  bad[i].msg);
    }
}

LEAK_TEST(x12, qualifier_config_cites_path_line_section_and_key)
{
    char path[TMP_INI_PATH_MAX];
    sf_config cfg;
    sf_error err;
    tmp_ini_load(&cfg, "[supplier.acme]\nformat = x12-846\nitem_qualifiers = VP,V\n", path);
    sf_x12_quals q;
    cr_assert(sf_x12_quals_config(&cfg, "supplier.acme", "qty_qualifiers", "33,17", &q, &err) ==
              SF_OK);
    cr_assert(q.n == 2 && !strcmp(q.q[0], "33"), "the default when absent");
    cr_assert(sf_x12_quals_config(&cfg, "supplier.acme", "item_qualifiers", "VP", &q, &err) ==
              SF_EINVAL);
    char want[256];
    snprintf(want, sizeof want,
             "%s:3: [supplier.acme] item_qualifiers: qualifier 'V' is not 2 letters or digits",
             path);
    cr_assert(strcmp(err.msg, want) == 0, "\n  got:  %s\n  want: %s", err.msg, want);
    sf_config_free(&cfg);
}

LEAK_TEST(x12, lin_item_takes_the_first_listed_qualifier)
{
    sf_x12 *x = time_reader();
    sf_x12_quals def, up_first;
    sf_error err;
    cr_assert(sf_x12_quals_parse("VP,VN,SK,BP,UP,EN,IN", &def, &err) == SF_OK);
    cr_assert(sf_x12_quals_parse("UP,VP", &up_first, &err) == SF_OK);
    char item[SF_STR_MAX + 1];
    sf_x12_seg lin;
    mkseg(&lin, "LIN", "1", "UP", "012345678905", "VP", "AC-1001", NULL);
    cr_assert(sf_x12_lin_item(x, &lin, &def, item, &err) == SF_OK && !strcmp(item, "AC-1001"));
    cr_assert(sf_x12_lin_item(x, &lin, &up_first, item, &err) == SF_OK &&
              !strcmp(item, "012345678905"));
    /* a qualifier with an empty id is passed over */
    mkseg(&lin, "LIN", "", "VP", "", "UP", "012345678905", NULL);
    cr_assert(sf_x12_lin_item(x, &lin, &def, item, &err) == SF_OK && !strcmp(item, "012345678905"));
    mkseg(&lin, "LIN", "1", "ZZ", "X", "MG", "Y", NULL);
    cr_assert(sf_x12_lin_item(x, &lin, &def, item, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "segment 5: LIN has no item id with a qualifier in "
                              "VP,VN,SK,BP,UP,EN,IN (it has 'ZZ', 'MG')") == 0,
              "%s", err.msg);
    mkseg(&lin, "LIN", "1", NULL);
    cr_assert(sf_x12_lin_item(x, &lin, &def, item, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "segment 5: LIN has no item id with a qualifier in "
                              "VP,VN,SK,BP,UP,EN,IN (it has none)") == 0,
              "%s", err.msg);
    char longid[70];
    memset(longid, 'A', 65);
    longid[65] = '\0';
    mkseg(&lin, "LIN", "", "VP", longid, NULL);
    cr_assert(sf_x12_lin_item(x, &lin, &def, item, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "segment 5: field LIN03: 65 bytes, longer than 64") == 0, "%s",
              err.msg);
    sf_x12_close(x);
}
