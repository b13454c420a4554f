/*
 * x12: an X12 interchange read from one whole buffer, and the element
 * rules (numbers, dates, ids, qualifier lists) its adapters share
 * (x12_846.c, x12_856.c).
 *
 * sf_x12_open() reads the separators from the fixed-width ISA (element =
 * byte 3, repetition = ISA11 unless it is a letter or digit, component =
 * byte 104, segment terminator = byte 105; CR/LF after a terminator is
 * ignored), then walks the interchange once: it checks the envelopes
 * (GS/GE counts and control numbers, IEA01 and IEA02 = ISA13, no segment
 * outside a transaction set, nothing after IEA, no truncation) and
 * computes the business digest. Any of those problems fails open: a bad
 * envelope means the transmission itself cannot be trusted. Problems of a
 * transaction set's own trailer (SE01 count, SE02 = ST02, SE missing) are
 * not open errors: sf_x12_next_set() reports them on the set, so an
 * adapter rejects that set alone.
 *
 * Segments are numbered from 1 (the ISA) through the interchange; every
 * message starts "segment N: ". The digest is SHA-256 over the segments of
 * every transaction set (ST to SE, or to the segment that ended a set with
 * no SE) with ST02 and SE02 left out, separators replaced by fixed bytes,
 * trailing empty elements dropped: envelopes, control numbers, separators
 * and line breaks do not change it, any business byte does.
 *
 * Limits (sf_x12_limits, from the supplier's config section through
 * sf_x12_limits_config): segments in the interchange (over it fails
 * open), elements a segment and bytes an element. A segment over the
 * element limits is still delimited: sf_x12_next() returns SF_EINVAL for
 * it and moves past it, so the adapter rejects only the record holding it.
 * The defaults are the SF_X12_*_MAX values below; SF_X12_ELEMENTS_MAX is
 * also the ceiling, since it sizes sf_x12_seg.
 *
 * Ownership: the reader borrows `data` until sf_x12_close(); spans point
 * into it.
 */
#ifndef SF_SUPPLIER_X12_H
#define SF_SUPPLIER_X12_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter.h"

#define SF_X12_ISA_LEN 106          /* the ISA, terminator included */
#define SF_X12_SEGMENTS_MAX 4000000 /* segments in one interchange: the default */
#define SF_X12_ELEMENTS_MAX 64      /* elements after the segment id: default and ceiling */
#define SF_X12_ELEMENT_MAX 256      /* bytes of one element: the default */
#define SF_X12_QUALS_MAX 16         /* qualifiers in a preference list */

typedef struct sf_x12 sf_x12;

/* What one interchange may hold; [supplier.<id>] max_segments,
 * max_elements, max_element_bytes. */
typedef struct sf_x12_limits {
    uint64_t max_segments;    /* segments, ISA and IEA included */
    size_t max_elements;      /* elements after a segment id, <= SF_X12_ELEMENTS_MAX */
    size_t max_element_bytes; /* bytes of one element */
} sf_x12_limits;

/* The ranges the config accepts: the lower bounds keep an ISA (16
 * elements of up to 15 bytes) and one set (ISA GS ST SE GE IEA) readable;
 * a 64 MiB feed cannot hold 22 M segments ("ID~" is 3 bytes). */
#define SF_X12_SEGMENTS_CFG_MIN 6
#define SF_X12_SEGMENTS_CFG_MAX 20000000
#define SF_X12_ELEMENTS_CFG_MIN 16 /* up to SF_X12_ELEMENTS_MAX */
#define SF_X12_ELEMENT_CFG_MIN 16
#define SF_X12_ELEMENT_CFG_MAX 4096

/* The keys sf_x12_limits_config reads, for an adapter's key list. */
#define SF_X12_LIMIT_KEYS "max_segments", "max_elements", "max_element_bytes"

/* Today's defaults: SF_X12_SEGMENTS_MAX, SF_X12_ELEMENTS_MAX, SF_X12_ELEMENT_MAX. */
void sf_x12_limits_init(sf_x12_limits *l);
/* Keys max_segments, max_elements and max_element_bytes of section (each
 * absent: its default) into *out. SF_EINVAL citing "path:line: [section]
 * key: 'v' is not a whole number of <unit> from <min> to <max>". */
sf_status sf_x12_limits_config(const sf_config *cfg, const char *section, sf_x12_limits *out,
                               sf_error *err) SF_MUSTCHECK;

/* A run of bytes inside the feed (not NUL-terminated). */
typedef struct sf_x12_span {
    const char *p;
    size_t len;
} sf_x12_span;

typedef struct sf_x12_seps {
    char element;
    char repetition; /* '\0': none (ISA11 is the 4010 'U') */
    char component;
    char segment;
} sf_x12_seps;

/* Where the next segment starts; copy it freely to read ahead. */
typedef struct sf_x12_cursor {
    size_t off;
    uint64_t number; /* of the segment at off */
} sf_x12_cursor;

typedef struct sf_x12_seg {
    uint64_t number;                         /* 1-based in the interchange */
    sf_x12_span raw;                         /* the whole segment, terminator excluded */
    char id[4];                              /* "LIN"; "" when unreadable */
    size_t n;                                /* elements after the id, at most the limit */
    sf_x12_span el[SF_X12_ELEMENTS_MAX + 1]; /* el[1..n]; el[0] is the id */
} sf_x12_seg;

/* One transaction set, ST to SE. */
typedef struct sf_x12_set {
    uint64_t st;        /* segment number of the ST */
    char type[8];       /* ST01 ("846"), cut to 7 bytes */
    sf_x12_cursor body; /* the segment after the ST */
    uint64_t body_end;  /* number of the SE (or of the segment ending the set) */
    bool ok;            /* false: error says what is wrong with ST/SE */
    uint64_t error_at;  /* the segment error names */
    sf_error error;     /* "segment N: ..." */
} sf_x12_set;

/* A preference list of 2-character qualifiers ("VP,VN,SK"). */
typedef struct sf_x12_quals {
    int n;
    char q[SF_X12_QUALS_MAX][3];
} sf_x12_quals;

/* Read and check the interchange in data[0..len) (a UTF-8 BOM and
 * blanks before the ISA are skipped) under limits (copied; NULL: the
 * defaults). SF_EINVAL "segment N: reason" when the ISA cannot be read,
 * an envelope is wrong or the interchange has more than max_segments
 * segments; SF_ENOMEM. */
sf_status sf_x12_open(const char *data, size_t len, const sf_x12_limits *limits, sf_x12 **out,
                      sf_error *err) SF_MUSTCHECK;
void sf_x12_close(sf_x12 *x);

/* 64 lower-case hex digits of the business digest. */
const char *sf_x12_digest(const sf_x12 *x);
sf_x12_seps sf_x12_separators(const sf_x12 *x);
/* Segments in the interchange, ISA and IEA included. */
uint64_t sf_x12_segments(const sf_x12 *x);
/* The interchange date and time: ISA09 as 20YYMMDD, ISA10 as HHMM. */
void sf_x12_interchange_time(const sf_x12 *x, int32_t *ymd, int32_t *hhmm);

/* A cursor on the ISA (segment 1). */
sf_x12_cursor sf_x12_begin(const sf_x12 *x);
/* Read the segment at *cur into *seg and move *cur past it. SF_EINVAL:
 * the segment breaks a limit or its id is unreadable; seg holds what was
 * read, err says "segment N: ...", *cur still moves on. SF_ENOTFOUND
 * after the IEA. */
sf_status sf_x12_next(const sf_x12 *x, sf_x12_cursor *cur, sf_x12_seg *seg,
                      sf_error *err) SF_MUSTCHECK;
/* The next transaction set at or after *cur, checked from ST to SE; *cur
 * moves past it. SF_ENOTFOUND when no set is left. */
sf_status sf_x12_next_set(const sf_x12 *x, sf_x12_cursor *cur, sf_x12_set *set,
                          sf_error *err) SF_MUSTCHECK;

/* Element i of seg (1-based), empty when absent. */
sf_x12_span sf_x12_el(const sf_x12_seg *seg, size_t i);
/* Does s hold exactly the NUL-terminated lit? */
bool sf_x12_is(sf_x12_span s, const char *lit);
/* Component k (1-based) of a composite element; empty when absent. */
sf_x12_span sf_x12_component(const sf_x12 *x, sf_x12_span s, size_t k);

/* An X12 R number ("12", "2.5", "-3", ".5") into a decimal: at most 18
 * digits and 6 decimals, no exponent. err: "field <field>: ...". */
sf_status sf_x12_number(sf_x12_span s, const char *field, sf_decimal *out,
                        sf_error *err) SF_MUSTCHECK;

/* An id (item, location, reference) through sf_event_set_str (at most 64
 * bytes, UTF-8, no control bytes); a separator of the interchange inside
 * it is refused too. Empty is refused ("is missing"). */
sf_status sf_x12_id(const sf_x12 *x, sf_x12_span s, const char *field, char dst[SF_STR_MAX + 1],
                    sf_error *err) SF_MUSTCHECK;

/* A unit code (first component of s): 1..SF_UOM_MAX upper-case letters
 * or digits; empty gives "". */
sf_status sf_x12_uom(const sf_x12 *x, sf_x12_span s, const char *field, char dst[SF_UOM_MAX + 1],
                     sf_error *err) SF_MUSTCHECK;

/* The date and time of seg at elements date_el (CCYYMMDD) and date_el + 1
 * (optional HHMM, HHMMSS or HHMMSSd[d]), into epoch ms UTC. with_code (a
 * DTM): element date_el + 2 is an optional X12 time code (UT, GM, ES, ED,
 * CS, CD, MS, MD, PS, PD, ...; LT and the generic ET, CT, MT, PT mean the
 * supplier's zone), and an empty date may come as DTM05 D8/DT + DTM06.
 * Without a code the time is in the supplier's timezone (ctx->tz_offset_s).
 * A date without a time takes the interchange time (ISA10) when it is the
 * interchange date (ISA09), else 23:59:59.999 of that day. Never later than
 * ctx->read_at_ms (when that is > 0): a later time is clamped to it. err:
 * "field DTM02: ...". */
sf_status sf_x12_time(const sf_x12 *x, const sf_feed_ctx *ctx, const sf_x12_seg *seg,
                      size_t date_el, bool with_code, int64_t *out_ms, sf_error *err) SF_MUSTCHECK;

/* Parse "VP, VN,SK": 1..SF_X12_QUALS_MAX distinct qualifiers of 2
 * letters or digits (stored upper case), separated by commas. err holds
 * the reason only. */
sf_status sf_x12_quals_parse(const char *list, sf_x12_quals *out, sf_error *err) SF_MUSTCHECK;
/* Read `key` of `section` (default `def` when absent) into *out; the
 * error cites "path:line: [section] key: reason". */
sf_status sf_x12_quals_config(const sf_config *cfg, const char *section, const char *key,
                              const char *def, sf_x12_quals *out, sf_error *err) SF_MUSTCHECK;
/* Index of s in q (0 = most preferred), or -1. */
int sf_x12_quals_rank(const sf_x12_quals *q, sf_x12_span s);
/* "VP,VN,SK" into buf. */
void sf_x12_quals_format(const sf_x12_quals *q, char *buf, size_t size);

/* The item id of a LIN: of the (qualifier, id) pairs LIN02/03 ...
 * LIN30/31, the one whose qualifier comes first in q. err: "segment N:
 * ..." naming the pairs found when none is usable. */
sf_status sf_x12_lin_item(const sf_x12 *x, const sf_x12_seg *lin, const sf_x12_quals *q,
                          char item[SF_STR_MAX + 1], sf_error *err) SF_MUSTCHECK;

/* Start a row: zeroed, ordinal, kind, position "segment N", ok. */
void sf_x12_row_start(sf_supplier_row *row, uint64_t ordinal, sf_kind kind, uint64_t segment);
/* Turn row into a reject at `segment` with why's message (which already
 * starts "segment N: "). */
void sf_x12_row_reject(sf_supplier_row *row, uint64_t segment, const sf_error *why);

#endif
