/*
 * x12: the X12 reader and the element rules the 846 and 856 adapters
 * share (see x12.h for the contract).
 *
 * The one idea: open() walks the whole interchange once, so everything a
 * later read relies on is already proven there: every segment up to the
 * IEA has its terminator, the envelopes nest and count right, and no
 * segment lies outside a transaction set. sf_x12_next() and
 * sf_x12_next_set() then only re-tokenize; they never meet a truncated
 * segment. Tokenizing (x12__scan) is the one place that splits bytes into
 * elements, so the digest, the envelope checks and the adapters always
 * agree on what a segment holds. Change the digest's byte layout
 * (x12__hash_seg) only knowingly: it decides every supplier event id.
 */
#include "x12.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter_util.h"

struct sf_x12 {
    const char *data;
    size_t len;
    size_t isa; /* offset of the ISA */
    sf_x12_limits limits;
    sf_x12_seps seps;
    int32_t isa_ymd;     /* 20YYMMDD */
    int32_t isa_hhmm;    /* HHMM */
    uint64_t n_segments; /* the IEA's number */
    char digest[65];
};

/* ------------------------------------------------------------ characters --- */

static bool x12__digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool x12__upper_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || x12__digit(c);
}

static bool x12__alnum(char c)
{
    return x12__upper_alnum(c) || (c >= 'a' && c <= 'z');
}

static bool x12__blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A separator byte for messages: '*' or \xNN. */
static void x12__quote_char(char c, char out[8])
{
    unsigned char u = (unsigned char)c;
    if (u > 0x20 && u < 0x7F && c != '\'' && c != '\\')
        snprintf(out, 8, "'%c'", c);
    else
        snprintf(out, 8, "\\x%02x", u);
}

static void x12__quote(sf_x12_span s, char *out, size_t size)
{
    sf_str_quote(s.p ? s.p : "", s.len, out, size);
}

/* All digits, 1..18 of them, into *out. */
static bool x12__u64(sf_x12_span s, uint64_t *out)
{
    if (s.len == 0 || s.len > 18)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (!x12__digit(s.p[i]))
            return false;
        v = v * 10 + (uint64_t)(s.p[i] - '0');
    }
    *out = v;
    return true;
}

static int x12__num(const char *p, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

static bool x12__all_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!x12__digit(p[i]))
            return false;
    }
    return true;
}

/* Control numbers match numerically when both are digits ("1" and
 * "000000001"), else byte for byte. */
static bool x12__ctl_eq(sf_x12_span a, sf_x12_span b)
{
    uint64_t va, vb;
    if (x12__u64(a, &va) && x12__u64(b, &vb))
        return va == vb;
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

/* ----------------------------------------------------------------- dates --- */

static bool x12__leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool x12__date_ok(int y, int m, int d)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1)
        return false;
    int max = mdays[m - 1] + (m == 2 && x12__leap(y) ? 1 : 0);
    return d <= max;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (y >= 1). */
static int64_t x12__days(int y, int m, int d)
{
    int64_t yy = y - (m <= 2 ? 1 : 0);
    int64_t era = yy / 400; /* yy >= 0 here: years start at 1970 */
    int64_t yoe = yy - era * 400;
    int64_t mp = m > 2 ? m - 3 : m + 9;
    int64_t doy = (153 * mp + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* ------------------------------------------------------------- tokenizer --- */

typedef enum x12__scan_result {
    X12__SEG_OK = 0,
    X12__SEG_BAD,
    X12__SEG_TRUNCATED
} x12__scan_result;

/* Read the segment at *cur (no further than limit) into *seg and move *cur
 * past its terminator and any CR/LF. X12__SEG_BAD: a limit is broken or
 * the id is unreadable (err says which; *cur moved). X12__SEG_TRUNCATED:
 * no terminator before limit (*cur unchanged). */
static x12__scan_result x12__scan(const sf_x12 *x, sf_x12_cursor *cur, size_t limit,
                                  sf_x12_seg *seg, sf_error *err)
{
    const char *d = x->data;
    const char es = x->seps.element;
    size_t off = cur->off;
    seg->number = cur->number;
    seg->id[0] = '\0';
    seg->n = 0;
    seg->el[0].p = d + off;
    seg->el[0].len = 0;
    seg->raw = seg->el[0];
    if (off >= limit)
        return X12__SEG_TRUNCATED;
    const char *term = memchr(d + off, x->seps.segment, limit - off);
    if (!term)
        return X12__SEG_TRUNCATED;
    size_t end = (size_t)(term - d);
    seg->raw.p = d + off;
    seg->raw.len = end - off;

    size_t k = 0, start = off, long_el = 0, long_len = 0;
    bool too_many = false;
    for (;;) {
        const char *sep = memchr(d + start, es, end - start);
        size_t stop = sep ? (size_t)(sep - d) : end;
        if (k <= x->limits.max_elements) {
            seg->el[k].p = d + start;
            seg->el[k].len = stop - start;
        } else {
            too_many = true;
        }
        if (k > 0 && stop - start > x->limits.max_element_bytes && long_el == 0) {
            long_el = k;
            long_len = stop - start;
        }
        if (!sep)
            break;
        k++;
        start = stop + 1;
    }
    seg->n = k > x->limits.max_elements ? x->limits.max_elements : k;

    sf_x12_span id = seg->el[0];
    bool id_ok = id.len >= 2 && id.len <= 3 && id.p[0] >= 'A' && id.p[0] <= 'Z';
    for (size_t i = 1; id_ok && i < id.len; i++)
        id_ok = x12__upper_alnum(id.p[i]);
    if (id_ok) {
        memcpy(seg->id, id.p, id.len);
        seg->id[id.len] = '\0';
    }

    size_t next = end + 1;
    while (next < limit && (d[next] == '\r' || d[next] == '\n'))
        next++;
    cur->off = next;
    cur->number++;

    unsigned long long n = (unsigned long long)seg->number;
    if (!id_ok) {
        char q[64];
        x12__quote(id, q, sizeof q);
        SF_ERR(err, SF_EINVAL,
               "segment %llu: segment id %s is not 2-3 upper-case letters or digits", n, q);
        return X12__SEG_BAD;
    }
    if (too_many) {
        SF_ERR(err, SF_EINVAL, "segment %llu: %s has more than %zu elements", n, seg->id,
               x->limits.max_elements);
        return X12__SEG_BAD;
    }
    if (long_el) {
        SF_ERR(err, SF_EINVAL, "segment %llu: field %s%02zu: %zu bytes, longer than %zu", n,
               seg->id, long_el, long_len, x->limits.max_element_bytes);
        return X12__SEG_BAD;
    }
    return X12__SEG_OK;
}

static bool x12__id_is(const sf_x12_seg *seg, const char *id)
{
    return strcmp(seg->id, id) == 0;
}

static bool x12__envelope(const sf_x12_seg *seg)
{
    return x12__id_is(seg, "ISA") || x12__id_is(seg, "GS") || x12__id_is(seg, "GE") ||
           x12__id_is(seg, "IEA");
}

/* ----------------------------------------------------------------- ISA --- */

/* Offsets of the 16 element separators of the fixed-width ISA. */
static const unsigned char x12__isa_sep_at[16] = {3,  6,  17, 20, 31, 34, 50,  53,
                                                  69, 76, 81, 83, 89, 99, 101, 103};

static bool x12__sep_ok(char c)
{
    return !x12__alnum(c) && c != ' ' && c != '\r' && c != '\n';
}

/* Read the separators, date, time and control number of the ISA at d. */
static sf_status x12__isa(sf_x12 *x, const char *d, size_t avail, sf_x12_span *isa13, sf_error *err)
{
    if (avail < 3 || memcmp(d, "ISA", 3) != 0)
        return SF_ERR(err, SF_EINVAL, "segment 1: the feed does not start with an ISA segment");
    if (avail < SF_X12_ISA_LEN)
        return SF_ERR(err, SF_EINVAL,
                      "segment 1: the ISA is cut short (%zu of its %d fixed-width bytes)", avail,
                      SF_X12_ISA_LEN);
    char es = d[3], cs = d[104], ts = d[105], rs = d[82];
    char qe[8], qc[8], qt[8];
    x12__quote_char(es, qe);
    x12__quote_char(cs, qc);
    x12__quote_char(ts, qt);
    if (!x12__sep_ok(es))
        return SF_ERR(err, SF_EINVAL, "segment 1: element separator %s (ISA byte 4) is unusable",
                      qe);
    for (int i = 1; i < 16; i++) {
        if (d[x12__isa_sep_at[i]] != es)
            return SF_ERR(err, SF_EINVAL,
                          "segment 1: ISA%02d does not end at byte %d: the ISA has fixed widths "
                          "(element separator %s)",
                          i, x12__isa_sep_at[i] + 1, qe);
    }
    if (!x12__sep_ok(cs) || cs == es)
        return SF_ERR(err, SF_EINVAL, "segment 1: component separator %s (ISA16) is unusable", qc);
    size_t seps = 0;
    for (size_t i = 0; i < 105; i++)
        seps += d[i] == es;
    if (seps != 16)
        return SF_ERR(err, SF_EINVAL,
                      "segment 1: an ISA field holds the element separator %s: the ISA has "
                      "fixed widths",
                      qe);
    if (x12__alnum(ts) || ts == ' ' || ts == es || ts == cs || memchr(d, ts, 105))
        return SF_ERR(err, SF_EINVAL, "segment 1: segment terminator %s (ISA byte 106) is unusable",
                      qt);
    x->seps.element = es;
    x->seps.component = cs;
    x->seps.segment = ts;
    x->seps.repetition = '\0';
    if (x12__sep_ok(rs)) {
        char qr[8];
        x12__quote_char(rs, qr);
        if (rs == es || rs == cs || rs == ts)
            return SF_ERR(err, SF_EINVAL,
                          "segment 1: repetition separator %s (ISA11) repeats another separator",
                          qr);
        x->seps.repetition = rs;
    }
    const char *date = d + 70, *time = d + 77;
    if (!x12__all_digits(date, 6) ||
        !x12__date_ok(2000 + x12__num(date, 2), x12__num(date + 2, 2), x12__num(date + 4, 2))) {
        char q[32];
        sf_str_quote(date, 6, q, sizeof q);
        return SF_ERR(err, SF_EINVAL, "segment 1: field ISA09: %s is not a date (YYMMDD)", q);
    }
    if (!x12__all_digits(time, 4) || x12__num(time, 2) > 23 || x12__num(time + 2, 2) > 59) {
        char q[32];
        sf_str_quote(time, 4, q, sizeof q);
        return SF_ERR(err, SF_EINVAL, "segment 1: field ISA10: %s is not a time (HHMM)", q);
    }
    if (!x12__all_digits(d + 90, 9)) {
        char q[32];
        sf_str_quote(d + 90, 9, q, sizeof q);
        return SF_ERR(err, SF_EINVAL,
                      "segment 1: field ISA13: %s is not a control number (9 digits)", q);
    }
    x->isa_ymd = 20000000 + x12__num(date, 6);
    x->isa_hhmm = x12__num(time, 4);
    isa13->p = d + 90;
    isa13->len = 9;
    return SF_OK;
}

/* ---------------------------------------------------------------- digest --- */

typedef struct x12__hash {
    EVP_MD_CTX *md;
    bool failed;
    size_t n;
    unsigned char buf[4096];
} x12__hash;

static void x12__hash_flush(x12__hash *h)
{
    if (h->n && EVP_DigestUpdate(h->md, h->buf, h->n) != 1)
        h->failed = true;
    h->n = 0;
}

static void x12__hash_byte(x12__hash *h, unsigned char b)
{
    if (h->n == sizeof h->buf)
        x12__hash_flush(h);
    h->buf[h->n++] = b;
}

/* One segment of a set, terminator excluded: separators become 0x1D
 * (element), 0x1E (repetition), 0x1F (component), the end 0x1C; a data
 * byte 0x1B..0x1F is escaped by 0x1B. Trailing empty elements are
 * dropped, and element 2 too when drop2 (ST02, SE02). */
static void x12__hash_seg(const sf_x12 *x, x12__hash *h, const char *p, size_t len, bool drop2)
{
    const sf_x12_seps *s = &x->seps;
    while (len > 0 && p[len - 1] == s->element)
        len--;
    size_t el = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        unsigned char u = (unsigned char)c;
        if (c == s->element) {
            el++;
            x12__hash_byte(h, 0x1D);
        } else if (drop2 && el == 2) {
            continue;
        } else if (c == s->component) {
            x12__hash_byte(h, 0x1F);
        } else if (s->repetition && c == s->repetition) {
            x12__hash_byte(h, 0x1E);
        } else {
            if (u >= 0x1B && u <= 0x1F)
                x12__hash_byte(h, 0x1B);
            x12__hash_byte(h, u);
        }
    }
    x12__hash_byte(h, 0x1C);
}

/* ------------------------------------------------------------------ open --- */

typedef enum x12__state { X12__IN_INTERCHANGE, X12__IN_GROUP, X12__IN_SET } x12__state;

/* The envelope walk of open(): ISA already read; checks every segment up
 * to the IEA and hashes the sets. */
static sf_status x12__walk(sf_x12 *x, x12__hash *h, sf_x12_span isa13, sf_error *err)
{
    sf_x12_seg *seg = malloc(sizeof *seg);
    if (!seg)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    sf_status st = SF_OK;
    sf_x12_cursor cur = {x->isa + SF_X12_ISA_LEN, 2};
    while (cur.off < x->len && (x->data[cur.off] == '\r' || x->data[cur.off] == '\n'))
        cur.off++;
    x12__state state = X12__IN_INTERCHANGE;
    uint64_t groups = 0, sets = 0, gs_at = 0;
    sf_x12_span gs06 = {NULL, 0};
    char q1[64], q2[64], qt[8];
    x12__quote_char(x->seps.segment, qt);

    for (;;) {
        unsigned long long n = (unsigned long long)cur.number;
        if (cur.number > x->limits.max_segments) {
            st = SF_ERR(err, SF_EINVAL,
                        "segment %llu: more than %llu segments in the interchange (max_segments)",
                        n, (unsigned long long)x->limits.max_segments);
            goto done;
        }
        if (cur.off >= x->len) {
            st = SF_ERR(err, SF_EINVAL,
                        "segment %llu: the file ends without an IEA (truncated interchange)", n);
            goto done;
        }
        sf_error serr;
        x12__scan_result r = x12__scan(x, &cur, x->len, seg, &serr);
        if (r == X12__SEG_TRUNCATED) {
            st = SF_ERR(err, SF_EINVAL,
                        "segment %llu: the file ends inside a segment, before a terminator %s "
                        "(truncated interchange)",
                        n, qt);
            goto done;
        }

        if (state == X12__IN_SET) {
            if (!x12__envelope(seg) && !x12__id_is(seg, "ST")) {
                bool se = x12__id_is(seg, "SE");
                x12__hash_seg(x, h, seg->raw.p, seg->raw.len, se);
                if (se)
                    state = X12__IN_GROUP;
                continue;
            }
            state = X12__IN_GROUP; /* the set has no SE: next_set reports it */
        }
        if (r == X12__SEG_BAD && !x12__id_is(seg, "ST")) {
            *err = serr;
            st = SF_EINVAL;
            goto done;
        }

        if (x12__id_is(seg, "ST")) {
            if (state != X12__IN_GROUP) {
                st = SF_ERR(err, SF_EINVAL, "segment %llu: ST outside a functional group (no GS)",
                            n);
                goto done;
            }
            sets++;
            state = X12__IN_SET;
            x12__hash_seg(x, h, seg->raw.p, seg->raw.len, true);
        } else if (x12__id_is(seg, "GS")) {
            if (state == X12__IN_GROUP) {
                st = SF_ERR(err, SF_EINVAL,
                            "segment %llu: GS before a GE closes the group of segment %llu", n,
                            (unsigned long long)gs_at);
                goto done;
            }
            gs06 = sf_x12_el(seg, 6);
            uint64_t v;
            if (!x12__u64(gs06, &v) || gs06.len > 9) {
                x12__quote(gs06, q1, sizeof q1);
                st = SF_ERR(err, SF_EINVAL,
                            "segment %llu: field GS06: %s is not a group control number (1-9 "
                            "digits)",
                            n, q1);
                goto done;
            }
            groups++;
            sets = 0;
            gs_at = seg->number;
            state = X12__IN_GROUP;
        } else if (x12__id_is(seg, "GE")) {
            if (state != X12__IN_GROUP) {
                st = SF_ERR(err, SF_EINVAL, "segment %llu: GE without a GS", n);
                goto done;
            }
            uint64_t count;
            sf_x12_span ge01 = sf_x12_el(seg, 1), ge02 = sf_x12_el(seg, 2);
            if (!x12__u64(ge01, &count)) {
                x12__quote(ge01, q1, sizeof q1);
                st = SF_ERR(err, SF_EINVAL,
                            "segment %llu: field GE01: %s is not a count of transaction sets", n,
                            q1);
                goto done;
            }
            if (count != sets) {
                st = SF_ERR(err, SF_EINVAL,
                            "segment %llu: GE01 says %llu transaction sets, the group has %llu", n,
                            (unsigned long long)count, (unsigned long long)sets);
                goto done;
            }
            if (!x12__ctl_eq(ge02, gs06)) {
                x12__quote(ge02, q1, sizeof q1);
                x12__quote(gs06, q2, sizeof q2);
                st = SF_ERR(err, SF_EINVAL,
                            "segment %llu: GE02 %s does not match GS06 %s (segment %llu)", n, q1,
                            q2, (unsigned long long)gs_at);
                goto done;
            }
            state = X12__IN_INTERCHANGE;
        } else if (x12__id_is(seg, "IEA")) {
            if (state == X12__IN_GROUP) {
                st = SF_ERR(err, SF_EINVAL,
                            "segment %llu: IEA before a GE closes the group of segment %llu", n,
                            (unsigned long long)gs_at);
                goto done;
            }
            uint64_t count;
            sf_x12_span iea01 = sf_x12_el(seg, 1), iea02 = sf_x12_el(seg, 2);
            if (!x12__u64(iea01, &count)) {
                x12__quote(iea01, q1, sizeof q1);
                st = SF_ERR(err, SF_EINVAL,
                            "segment %llu: field IEA01: %s is not a count of functional groups", n,
                            q1);
                goto done;
            }
            if (count != groups) {
                st = SF_ERR(err, SF_EINVAL,
                            "segment %llu: IEA01 says %llu functional groups, the interchange "
                            "has %llu",
                            n, (unsigned long long)count, (unsigned long long)groups);
                goto done;
            }
            if (!x12__ctl_eq(iea02, isa13)) {
                x12__quote(iea02, q1, sizeof q1);
                x12__quote(isa13, q2, sizeof q2);
                st = SF_ERR(err, SF_EINVAL, "segment %llu: IEA02 %s does not match ISA13 %s", n, q1,
                            q2);
                goto done;
            }
            x->n_segments = seg->number;
            break;
        } else if (x12__id_is(seg, "ISA")) {
            st = SF_ERR(err, SF_EINVAL,
                        "segment %llu: a second ISA before the IEA: a feed holds one interchange",
                        n);
            goto done;
        } else if (state == X12__IN_GROUP) {
            st = SF_ERR(err, SF_EINVAL, "segment %llu: %s outside a transaction set (ST..SE)", n,
                        seg->id);
            goto done;
        } else {
            st = SF_ERR(err, SF_EINVAL, "segment %llu: %s outside a functional group (GS..GE)", n,
                        seg->id);
            goto done;
        }
    }
    for (size_t i = cur.off; i < x->len; i++) {
        if (!x12__blank(x->data[i])) {
            st = SF_ERR(err, SF_EINVAL,
                        "segment %llu: data after the IEA: a feed holds one interchange",
                        (unsigned long long)cur.number);
            goto done;
        }
    }
done:
    free(seg);
    return st;
}

void sf_x12_limits_init(sf_x12_limits *l)
{
    l->max_segments = SF_X12_SEGMENTS_MAX;
    l->max_elements = SF_X12_ELEMENTS_MAX;
    l->max_element_bytes = SF_X12_ELEMENT_MAX;
}

sf_status sf_x12_limits_config(const sf_config *cfg, const char *section, sf_x12_limits *out,
                               sf_error *err)
{
    sf_x12_limits_init(out);
    int64_t segments = (int64_t)out->max_segments, elements = (int64_t)out->max_elements,
            bytes = (int64_t)out->max_element_bytes;
    sf_status st;
    if ((st = sf_adapter_cfg_num(cfg, section, "max_segments", SF_X12_SEGMENTS_CFG_MIN,
                                 SF_X12_SEGMENTS_CFG_MAX, "segments", &segments, err)) ||
        (st = sf_adapter_cfg_num(cfg, section, "max_elements", SF_X12_ELEMENTS_CFG_MIN,
                                 SF_X12_ELEMENTS_MAX, "elements", &elements, err)) ||
        (st = sf_adapter_cfg_num(cfg, section, "max_element_bytes", SF_X12_ELEMENT_CFG_MIN,
                                 SF_X12_ELEMENT_CFG_MAX, "bytes", &bytes, err)))
        return st;
    out->max_segments = (uint64_t)segments;
    out->max_elements = (size_t)elements;
    out->max_element_bytes = (size_t)bytes;
    return SF_OK;
}

sf_status sf_x12_open(const char *data, size_t len, const sf_x12_limits *limits, sf_x12 **out,
                      sf_error *err)
{
    *out = NULL;
    if (len > SF_FEED_MAX_BYTES)
        return SF_ERR(err, SF_EINVAL, "the feed is %zu bytes, more than %zu", len,
                      SF_FEED_MAX_BYTES);
    if (limits && (limits->max_segments < 1 || limits->max_elements < 1 ||
                   limits->max_elements > SF_X12_ELEMENTS_MAX || limits->max_element_bytes < 1))
        return SF_ERR(err, SF_EINVAL, "X12 limits: %zu elements is not in 1..%d, or a limit is 0",
                      limits->max_elements, SF_X12_ELEMENTS_MAX);
    if (!data)
        len = 0;
    size_t off = 0;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        off = 3;
    while (off < len && x12__blank(data[off]))
        off++;
    sf_x12 *x = calloc(1, sizeof *x);
    if (!x)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    x->data = data;
    x->len = len;
    x->isa = off;
    if (limits)
        x->limits = *limits;
    else
        sf_x12_limits_init(&x->limits);
    sf_x12_span isa13 = {NULL, 0};
    sf_status st = x12__isa(x, data ? data + off : "", len - off, &isa13, err);
    if (st != SF_OK) {
        free(x);
        return st;
    }
    x12__hash *h = calloc(1, sizeof *h);
    if (!h || !(h->md = EVP_MD_CTX_new())) {
        free(h);
        free(x);
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    }
    if (EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1)
        h->failed = true;
    st = x12__walk(x, h, isa13, err);
    x12__hash_flush(h);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (st == SF_OK && (h->failed || EVP_DigestFinal_ex(h->md, md, &md_len) != 1 || md_len != 32))
        st = SF_ERR(err, SF_EINTERNAL, "SHA-256 of the feed failed");
    EVP_MD_CTX_free(h->md);
    free(h);
    if (st != SF_OK) {
        free(x);
        return st;
    }
    for (unsigned i = 0; i < 32; i++)
        snprintf(x->digest + 2 * i, 3, "%02x", md[i]);
    *out = x;
    return SF_OK;
}

void sf_x12_close(sf_x12 *x)
{
    free(x);
}

const char *sf_x12_digest(const sf_x12 *x)
{
    return x->digest;
}

sf_x12_seps sf_x12_separators(const sf_x12 *x)
{
    return x->seps;
}

uint64_t sf_x12_segments(const sf_x12 *x)
{
    return x->n_segments;
}

void sf_x12_interchange_time(const sf_x12 *x, int32_t *ymd, int32_t *hhmm)
{
    *ymd = x->isa_ymd;
    *hhmm = x->isa_hhmm;
}

/* ----------------------------------------------------------- iteration --- */

sf_x12_cursor sf_x12_begin(const sf_x12 *x)
{
    sf_x12_cursor c = {x->isa, 1};
    return c;
}

sf_status sf_x12_next(const sf_x12 *x, sf_x12_cursor *cur, sf_x12_seg *seg, sf_error *err)
{
    if (cur->number > x->n_segments)
        return SF_ENOTFOUND;
    switch (x12__scan(x, cur, x->len, seg, err)) {
    case X12__SEG_OK: return SF_OK;
    case X12__SEG_BAD: return SF_EINVAL;
    case X12__SEG_TRUNCATED: break;
    }
    return SF_ERR(err, SF_EINTERNAL, "segment %llu: truncated after open() checked it",
                  (unsigned long long)cur->number);
}

static bool x12__ends_set(const sf_x12_seg *seg)
{
    return x12__envelope(seg) || x12__id_is(seg, "ST");
}

sf_status sf_x12_next_set(const sf_x12 *x, sf_x12_cursor *cur, sf_x12_set *set, sf_error *err)
{
    sf_x12_seg *seg = malloc(sizeof *seg);
    if (!seg)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    sf_status st;
    sf_error serr;
    memset(set, 0, sizeof *set);
    for (;;) {
        st = sf_x12_next(x, cur, seg, &serr);
        if (st == SF_ENOTFOUND || st == SF_EINTERNAL) {
            if (st == SF_EINTERNAL)
                *err = serr;
            goto done;
        }
        if (x12__id_is(seg, "ST"))
            break;
    }
    set->ok = true;
    set->st = seg->number;
    unsigned long long n = (unsigned long long)seg->number;
    sf_x12_span st01 = sf_x12_el(seg, 1), st02 = sf_x12_el(seg, 2);
    size_t tl = st01.len < sizeof set->type ? st01.len : sizeof set->type - 1;
    memcpy(set->type, st01.p, tl);
    set->type[tl] = '\0';
    sf_x12_span ctl = st02; /* points into the feed, not into *seg */
    set->error_at = seg->number;
    if (st != SF_OK) {
        set->ok = false;
        set->error = serr;
    } else if (st01.len == 0) {
        set->ok = false;
        SF_ERR(&set->error, SF_EINVAL, "segment %llu: field ST01 (transaction set id) is missing",
               n);
    } else if (st02.len == 0) {
        set->ok = false;
        SF_ERR(&set->error, SF_EINVAL, "segment %llu: field ST02 (control number) is missing", n);
    }
    set->body = *cur;
    uint64_t count = 1;
    for (;;) {
        sf_x12_cursor at = *cur;
        st = sf_x12_next(x, cur, seg, &serr);
        if (st == SF_ENOTFOUND || st == SF_EINTERNAL) { /* open() saw an IEA: cannot happen */
            *err = serr;
            st = SF_EINTERNAL;
            goto done;
        }
        count++;
        unsigned long long sn = (unsigned long long)seg->number;
        if (x12__ends_set(seg)) {
            *cur = at;
            set->body_end = seg->number;
            if (set->ok) {
                set->ok = false;
                set->error_at = seg->number;
                SF_ERR(&set->error, SF_EINVAL,
                       "segment %llu: the set opened by ST at segment %llu has no SE (%s comes "
                       "first)",
                       sn, n, seg->id);
            }
            st = SF_OK;
            goto done;
        }
        if (!x12__id_is(seg, "SE"))
            continue;
        set->body_end = seg->number;
        if (!set->ok) {
            st = SF_OK;
            goto done;
        }
        sf_x12_span se01 = sf_x12_el(seg, 1), se02 = sf_x12_el(seg, 2);
        uint64_t said;
        char q1[64], q2[64];
        set->ok = false;
        set->error_at = seg->number;
        if (st != SF_OK) {
            set->error = serr;
        } else if (!x12__u64(se01, &said)) {
            x12__quote(se01, q1, sizeof q1);
            SF_ERR(&set->error, SF_EINVAL, "segment %llu: field SE01: %s is not a segment count",
                   sn, q1);
        } else if (said != count) {
            SF_ERR(&set->error, SF_EINVAL,
                   "segment %llu: SE01 says %llu segments, the set has %llu (ST to SE)", sn,
                   (unsigned long long)said, (unsigned long long)count);
        } else if (se02.len != ctl.len || memcmp(se02.p, ctl.p, ctl.len) != 0) {
            x12__quote(se02, q1, sizeof q1);
            x12__quote(ctl, q2, sizeof q2);
            SF_ERR(&set->error, SF_EINVAL,
                   "segment %llu: SE02 %s does not match ST02 %s (segment %llu)", sn, q1, q2, n);
        } else {
            set->ok = true;
        }
        st = SF_OK;
        goto done;
    }
done:
    free(seg);
    return st;
}

/* -------------------------------------------------------------- elements --- */

sf_x12_span sf_x12_el(const sf_x12_seg *seg, size_t i)
{
    sf_x12_span s = {"", 0};
    if (i >= 1 && i <= seg->n)
        s = seg->el[i];
    return s;
}

bool sf_x12_is(sf_x12_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

sf_x12_span sf_x12_component(const sf_x12 *x, sf_x12_span s, size_t k)
{
    size_t i = 1, start = 0;
    for (size_t j = 0; j <= s.len; j++) {
        if (j == s.len || s.p[j] == x->seps.component) {
            if (i == k) {
                sf_x12_span c = {s.p + start, j - start};
                return c;
            }
            i++;
            start = j + 1;
        }
    }
    sf_x12_span none = {"", 0};
    return none;
}

/* X12 R: optional sign, digits with an optional decimal point (".5" and
 * "5." allowed); no exponent, no blanks. */
static bool x12__parse_r(const char *s, size_t len, sf_decimal *out, const char **why)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '-' || s[i] == '+')) {
        neg = s[i] == '-';
        i++;
    }
    int64_t units = 0;
    int digits = 0, scale = 0;
    bool point = false, any = false;
    for (; i < len; i++) {
        char c = s[i];
        if (c == '.' && !point) {
            point = true;
            continue;
        }
        if (!x12__digit(c)) {
            *why = "is not a number (digits, an optional '-' and '.')";
            return false;
        }
        any = true;
        if (point && ++scale > 6) {
            *why = "has more than 6 decimals";
            return false;
        }
        if (digits > 0 || c != '0')
            digits++;
        if (digits > 18) {
            *why = "has more than 18 digits";
            return false;
        }
        units = units * 10 + (c - '0');
    }
    if (!any) {
        *why = "is not a number (digits, an optional '-' and '.')";
        return false;
    }
    out->units = neg ? -units : units;
    out->scale = scale;
    return true;
}

sf_status sf_x12_number(sf_x12_span s, const char *field, sf_decimal *out, sf_error *err)
{
    if (s.len == 0)
        return SF_ERR(err, SF_EINVAL, "field %s: is missing", field);
    const char *why = NULL;
    if (!x12__parse_r(s.p, s.len, out, &why)) {
        char q[64];
        x12__quote(s, q, sizeof q);
        return SF_ERR(err, SF_EINVAL, "field %s: %s %s", field, q, why);
    }
    return SF_OK;
}

sf_status sf_x12_id(const sf_x12 *x, sf_x12_span s, const char *field, char dst[SF_STR_MAX + 1],
                    sf_error *err)
{
    if (s.len == 0)
        return SF_ERR(err, SF_EINVAL, "field %s: is missing", field);
    char q[64], qs[8];
    if (memchr(s.p, x->seps.component, s.len) ||
        (x->seps.repetition && memchr(s.p, x->seps.repetition, s.len))) {
        x12__quote(s, q, sizeof q);
        x12__quote_char(
            memchr(s.p, x->seps.component, s.len) ? x->seps.component : x->seps.repetition, qs);
        return SF_ERR(err, SF_EINVAL, "field %s: %s holds the separator %s", field, q, qs);
    }
    return sf_event_set_str(dst, s.p, s.len, field, err);
}

sf_status sf_x12_uom(const sf_x12 *x, sf_x12_span s, const char *field, char dst[SF_UOM_MAX + 1],
                     sf_error *err)
{
    sf_x12_span u = sf_x12_component(x, s, 1);
    dst[0] = '\0';
    if (u.len == 0)
        return SF_OK;
    bool ok = u.len <= SF_UOM_MAX;
    for (size_t i = 0; ok && i < u.len; i++)
        ok = x12__upper_alnum(u.p[i]);
    if (!ok) {
        char q[64];
        x12__quote(u, q, sizeof q);
        return SF_ERR(err, SF_EINVAL, "field %s: unit %s is not 1-%d upper-case letters or digits",
                      field, q, SF_UOM_MAX);
    }
    memcpy(dst, u.p, u.len);
    dst[u.len] = '\0';
    return SF_OK;
}

/* ------------------------------------------------------------------ time --- */

/* X12 time codes (element 623) of fixed offsets, in minutes east of UTC;
 * the generic and local codes mean the supplier's own zone. */
typedef struct x12__tz {
    char code[3];
    int minutes;
    bool supplier;
} x12__tz;

static const x12__tz x12__tzs[] = {
    {"UT", 0, false},    {"GM", 0, false},    {"LT", 0, true},     {"ET", 0, true},
    {"CT", 0, true},     {"MT", 0, true},     {"PT", 0, true},     {"AT", 0, true},
    {"HT", 0, true},     {"TT", 0, true},     {"NT", 0, true},     {"ES", -300, false},
    {"ED", -240, false}, {"CS", -360, false}, {"CD", -300, false}, {"MS", -420, false},
    {"MD", -360, false}, {"PS", -480, false}, {"PD", -420, false}, {"AS", -540, false},
    {"AD", -480, false}, {"HS", -600, false}, {"HD", -540, false}, {"TS", -240, false},
    {"TD", -180, false}, {"NS", -210, false}, {"ND", -150, false},
};

static void x12__field(char *buf, size_t size, const char *seg_id, size_t el)
{
    snprintf(buf, size, "%.3s%02u", seg_id, (unsigned)(el > 99 ? 99 : el));
}

sf_status sf_x12_time(const sf_x12 *x, const sf_feed_ctx *ctx, const sf_x12_seg *seg,
                      size_t date_el, bool with_code, int64_t *out_ms, sf_error *err)
{
    char f[32];
    char q[64];
    sf_x12_span date = sf_x12_el(seg, date_el), time = sf_x12_el(seg, date_el + 1);
    sf_x12_span code = {"", 0};
    if (with_code)
        code = sf_x12_el(seg, date_el + 2);
    size_t date_at = date_el, time_at = date_el + 1;
    /* DTM05/DTM06: a date (D8) or date and time (DT) in one element */
    if (with_code && date.len == 0 && seg->n >= date_el + 4) {
        sf_x12_span fmt = sf_x12_el(seg, date_el + 3), v = sf_x12_el(seg, date_el + 4);
        date_at = time_at = date_el + 4;
        x12__field(f, sizeof f, seg->id, date_el + 3);
        if (sf_x12_is(fmt, "D8") && v.len == 8) {
            date = v;
            time.len = 0;
        } else if (sf_x12_is(fmt, "DT") && v.len >= 12) {
            date.p = v.p;
            date.len = 8;
            time.p = v.p + 8;
            time.len = v.len - 8;
        } else if (sf_x12_is(fmt, "D8") || sf_x12_is(fmt, "DT")) {
            x12__quote(v, q, sizeof q);
            x12__field(f, sizeof f, seg->id, date_el + 4);
            return SF_ERR(err, SF_EINVAL, "field %s: %s is not a date (CCYYMMDD[HHMM[SS]])", f, q);
        } else {
            x12__quote(fmt, q, sizeof q);
            return SF_ERR(err, SF_EINVAL, "field %s: date format %s is not D8 or DT", f, q);
        }
    }
    x12__field(f, sizeof f, seg->id, date_at);
    if (date.len == 0)
        return SF_ERR(err, SF_EINVAL, "field %s: the date is missing", f);
    int y = 0, mo = 0, d = 0;
    bool ok = date.len == 8 && x12__all_digits(date.p, 8);
    if (ok) {
        y = x12__num(date.p, 4);
        mo = x12__num(date.p + 4, 2);
        d = x12__num(date.p + 6, 2);
        ok = y >= 1970 && x12__date_ok(y, mo, d);
    }
    if (!ok) {
        x12__quote(date, q, sizeof q);
        return SF_ERR(err, SF_EINVAL, "field %s: %s is not a date (CCYYMMDD, 1970 or later)", f, q);
    }
    int64_t offset_s = ctx->tz_offset_s;
    if (code.len) {
        const x12__tz *tz = NULL;
        for (size_t i = 0; i < sizeof x12__tzs / sizeof x12__tzs[0]; i++) {
            if (sf_x12_is(code, x12__tzs[i].code))
                tz = &x12__tzs[i];
        }
        if (!tz) {
            x12__field(f, sizeof f, seg->id, date_el + 2);
            x12__quote(code, q, sizeof q);
            return SF_ERR(err, SF_EINVAL, "field %s: time code %s is unknown", f, q);
        }
        if (!tz->supplier)
            offset_s = (int64_t)tz->minutes * 60;
    }
    int64_t ms_of_day;
    if (time.len) {
        int hh = 0, mm = 0, ss = 0, frac = 0;
        ok = (time.len == 4 || time.len == 6 || time.len == 7 || time.len == 8) &&
             x12__all_digits(time.p, time.len);
        if (ok) {
            hh = x12__num(time.p, 2);
            mm = x12__num(time.p + 2, 2);
            ss = time.len >= 6 ? x12__num(time.p + 4, 2) : 0;
            if (time.len == 7)
                frac = x12__num(time.p + 6, 1) * 100;
            else if (time.len == 8)
                frac = x12__num(time.p + 6, 2) * 10;
            ok = hh <= 23 && mm <= 59 && ss <= 59;
        }
        if (!ok) {
            x12__field(f, sizeof f, seg->id, time_at);
            x12__quote(time, q, sizeof q);
            return SF_ERR(err, SF_EINVAL, "field %s: %s is not a time (HHMM[SS[d[d]]])", f, q);
        }
        ms_of_day = ((int64_t)hh * 3600 + mm * 60 + ss) * 1000 + frac;
    } else if (y * 10000 + mo * 100 + d == x->isa_ymd) {
        ms_of_day = ((int64_t)(x->isa_hhmm / 100) * 3600 + (x->isa_hhmm % 100) * 60) * 1000;
    } else {
        ms_of_day = INT64_C(86400000) - 1;
    }
    int64_t t = x12__days(y, mo, d) * INT64_C(86400000) + ms_of_day - offset_s * 1000;
    if (ctx->read_at_ms > 0 && t > ctx->read_at_ms)
        t = ctx->read_at_ms;
    *out_ms = t;
    return SF_OK;
}

/* ------------------------------------------------------------ qualifiers --- */

sf_status sf_x12_quals_parse(const char *list, sf_x12_quals *out, sf_error *err)
{
    memset(out, 0, sizeof *out);
    const char *p = list;
    char q[64];
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t n = (size_t)(end - start);
        if (n == 0) {
            if (!*p && out->n == 0)
                return SF_ERR(err, SF_EINVAL, "is empty: give a comma list like VP,VN");
            return SF_ERR(err, SF_EINVAL, "an empty qualifier in the list");
        }
        if (n != 2 || !x12__alnum(start[0]) || !x12__alnum(start[1])) {
            sf_str_quote(start, n, q, sizeof q);
            return SF_ERR(err, SF_EINVAL, "qualifier %s is not 2 letters or digits", q);
        }
        if (out->n == SF_X12_QUALS_MAX)
            return SF_ERR(err, SF_EINVAL, "more than %d qualifiers", SF_X12_QUALS_MAX);
        char up[3] = {start[0], start[1], '\0'};
        for (int i = 0; i < 2; i++) {
            if (up[i] >= 'a' && up[i] <= 'z')
                up[i] = (char)(up[i] - 'a' + 'A');
        }
        for (int i = 0; i < out->n; i++) {
            if (strcmp(out->q[i], up) == 0)
                return SF_ERR(err, SF_EINVAL, "qualifier %s is listed twice", up);
        }
        memcpy(out->q[out->n++], up, 3);
        if (!*p)
            return SF_OK;
        p++; /* the comma */
    }
}

sf_status sf_x12_quals_config(const sf_config *cfg, const char *section, const char *key,
                              const char *def, sf_x12_quals *out, sf_error *err)
{
    const sf_config_entry *e = sf_config_find(cfg, section, key);
    sf_error why;
    if (sf_x12_quals_parse(e ? e->value : def, out, &why) == SF_OK)
        return SF_OK;
    return SF_ERR(err, SF_EINVAL, "%s:%d: [%s] %s: %s", cfg->path[0] ? cfg->path : "(config)",
                  e ? e->line : 0, section, key, why.msg);
}

int sf_x12_quals_rank(const sf_x12_quals *q, sf_x12_span s)
{
    if (s.len != 2)
        return -1;
    for (int i = 0; i < q->n; i++) {
        if (memcmp(q->q[i], s.p, 2) == 0)
            return i;
    }
    return -1;
}

void sf_x12_quals_format(const sf_x12_quals *q, char *buf, size_t size)
{
    size_t o = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    for (int i = 0; i < q->n && o + 4 < size; i++) {
        if (i)
            buf[o++] = ',';
        memcpy(buf + o, q->q[i], 2);
        o += 2;
        buf[o] = '\0';
    }
}

sf_status sf_x12_lin_item(const sf_x12 *x, const sf_x12_seg *lin, const sf_x12_quals *q,
                          char item[SF_STR_MAX + 1], sf_error *err)
{
    unsigned long long n = (unsigned long long)lin->number;
    int best = -1;
    size_t best_at = 0;
    char found[160];
    size_t o = 0;
    found[0] = '\0';
    for (size_t i = 2; i + 1 <= lin->n && i <= 30; i += 2) {
        sf_x12_span qual = sf_x12_el(lin, i), id = sf_x12_el(lin, i + 1);
        if (qual.len == 0)
            continue;
        if (o + 16 < sizeof found) {
            char qq[16];
            x12__quote(qual.len > 4 ? (sf_x12_span){qual.p, 4} : qual, qq, sizeof qq);
            o += (size_t)snprintf(found + o, sizeof found - o, "%s%s", o ? ", " : "", qq);
        }
        int r = sf_x12_quals_rank(q, qual);
        if (r >= 0 && id.len > 0 && (best < 0 || r < best)) {
            best = r;
            best_at = i + 1;
        }
    }
    if (best < 0) {
        char list[3 * SF_X12_QUALS_MAX + 1];
        sf_x12_quals_format(q, list, sizeof list);
        return SF_ERR(err, SF_EINVAL,
                      "segment %llu: LIN has no item id with a qualifier in %s (it has %s)", n,
                      list, o ? found : "none");
    }
    char f[32];
    x12__field(f, sizeof f, "LIN", best_at);
    sf_status st = sf_x12_id(x, sf_x12_el(lin, best_at), f, item, err);
    if (st != SF_OK)
        sf_error_prefix(err, "segment %llu: ", n);
    return st;
}

/* ------------------------------------------------------------------ rows --- */

void sf_x12_row_start(sf_supplier_row *row, uint64_t ordinal, sf_kind kind, uint64_t segment)
{
    memset(row, 0, sizeof *row);
    row->ordinal = ordinal;
    row->kind = kind;
    row->ok = true;
    snprintf(row->position, sizeof row->position, "segment %llu", (unsigned long long)segment);
}

void sf_x12_row_reject(sf_supplier_row *row, uint64_t segment, const sf_error *why)
{
    uint64_t ordinal = row->ordinal;
    sf_kind kind = row->kind;
    sf_x12_row_start(row, ordinal, kind, segment);
    row->ok = false;
    row->error = *why;
    if (row->error.status == SF_OK)
        row->error.status = SF_EINVAL;
}
