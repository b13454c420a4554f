/*
 * adapter_util: what the text adapters (csv, jsonl) share behind adapter.h:
 * our seven row fields and their names, the "field=value, ..." mapping
 * syntax of the config, config error messages, supplier time parsing, the
 * one row builder, and the business digest.
 *
 * The one idea: each text adapter only finds the text of each mapped field
 * (a CSV cell, a JSON value's text) and hands the seven texts to
 * sf_adapter_row_build(), so quantity, time, kind and string rules live
 * here once and CSV and JSONL can never disagree about them.
 *
 * Ownership: nothing here keeps a pointer to its arguments. An
 * sf_adapter_digest owns its hash context until sf_adapter_digest_end() or
 * sf_adapter_digest_free().
 */
#ifndef SF_SUPPLIER_ADAPTER_UTIL_H
#define SF_SUPPLIER_ADAPTER_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter.h"

/* Our fields of a supplier row, in the order rows are checked and the
 * jsonl digest is built. */
typedef enum sf_adapter_field {
    SF_AF_SKU = 0,
    SF_AF_QTY,
    SF_AF_LOCATION,
    SF_AF_UOM,
    SF_AF_OCCURRED_AT,
    SF_AF_KIND,
    SF_AF_REF,
    SF_AF__COUNT
} sf_adapter_field;

/* "sku", "qty", "location", "uom", "occurred_at", "kind", "ref". */
const char *sf_adapter_field_name(sf_adapter_field f);
/* The field named name[0..len), or -1. Exact, lower case. */
int sf_adapter_field_lookup(const char *name, size_t len);

/* --- configuration ---------------------------------------------------------- */

#define SF_ADAPTER_PAIRS_MAX 64
#define SF_ADAPTER_PAIR_NAME_MAX 64
#define SF_ADAPTER_PAIR_VALUE_MAX 256

/* One "name=value" item of a mapping value. */
typedef struct sf_adapter_pair {
    char name[SF_ADAPTER_PAIR_NAME_MAX + 1];
    char value[SF_ADAPTER_PAIR_VALUE_MAX + 1];
} sf_adapter_pair;

/* Split "sku=ITEM_NO, qty=QTY ON HAND, ref=\"PO, line\"" into pairs: items
 * separated by commas, blanks around names and values ignored, a value in
 * double quotes may hold commas ("" is a quote). Empty names or values, a
 * missing '=' and more than `max` items are errors; err holds the reason
 * only (the caller adds "path:line: [section] key: "). */
sf_status sf_adapter_pairs_parse(const char *value, sf_adapter_pair *out, size_t max, size_t *n,
                                 sf_error *err) SF_MUSTCHECK;

/* Fill err with "path:line: [section] key: reason", the line being the
 * key's entry in cfg (0 when absent). Returns SF_EINVAL. */
sf_status sf_adapter_cfg_fail(sf_error *err, const char *file, int line, const sf_config *cfg,
                              const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
#define SF_ADAPTER_CFG_ERR(err, cfg, section, key, ...)                                            \
    sf_adapter_cfg_fail((err), __FILE__, __LINE__, (cfg), (section), (key), __VA_ARGS__)

/* Key `key` of section as a whole number min..max (at most 10 digits, no
 * sign) into *out; absent: *out unchanged. The error cites "path:line:
 * [section] key: 'v' is not a whole number of <unit> from <min> to <max>". */
sf_status sf_adapter_cfg_num(const sf_config *cfg, const char *section, const char *key,
                             int64_t min, int64_t max, const char *unit, int64_t *out,
                             sf_error *err) SF_MUSTCHECK;

/* Defaults every text adapter reads from its section: `kind`
 * (count|asn|receipt, default count) and `uom` (default ""). */
typedef struct sf_adapter_defaults {
    sf_kind kind;
    char uom[SF_UOM_MAX + 1];
} sf_adapter_defaults;

sf_status sf_adapter_defaults_configure(const sf_config *cfg, const char *section,
                                        sf_adapter_defaults *out, sf_error *err) SF_MUSTCHECK;

/* --- rows --------------------------------------------------------------------- */

/* A field's text as found in the record. Absent or empty: not given. */
typedef struct sf_adapter_val {
    const char *s;
    size_t len;
} sf_adapter_val;

/* Zero *row and set its ordinal and position "line N"; ok = true. */
void sf_adapter_row_start(sf_supplier_row *row, uint64_t ordinal, uint64_t line);

/* Build a row from the texts of its fields: sku and qty required; qty a
 * decimal (sf_decimal_parse); item/location/ref through sf_event_set_str;
 * uom at most SF_UOM_MAX bytes, else d->uom; kind count|asn|receipt (any
 * case), else d->kind; occurred_at by sf_adapter_time_parse. The first
 * failure rejects the row (ok = false, error names the field). */
void sf_adapter_row_build(sf_supplier_row *row, const sf_adapter_val vals[SF_AF__COUNT],
                          const sf_adapter_defaults *d, const sf_feed_ctx *ctx);

/* A supplier time -> epoch ms:
 *   - RFC 3339 with Z or an offset (sf_time_parse_rfc3339);
 *   - naive "YYYY-MM-DD HH:MM[:SS[.fff]]" (or with 'T'), in the supplier's
 *     timezone ctx->tz_offset_s;
 *   - a date "YYYY-MM-DD": the end of that day in the supplier's timezone,
 *     or the read time when that is the day the feed was read (DESIGN.md's
 *     rule for a date-only 846 DTM);
 *   - decimal digits: epoch ms.
 * Refused: anything before 2000-01-01 (seconds for ms, a compact date read
 * as ms) and anything later than ctx->read_at_ms ("in the future"). The
 * message starts "field occurred_at: ". */
sf_status sf_adapter_time_parse(const char *s, size_t len, const sf_feed_ctx *ctx, int64_t *out_ms,
                                sf_error *err) SF_MUSTCHECK;

/* --- the business digest --------------------------------------------------- */

/* SHA-256 over records of values: values of a record joined by 0x1F, each
 * record ended by 0x1E; within a value the bytes 0x1B, 0x1E and 0x1F are
 * preceded by 0x1B so no two different record lists hash the same text. */
typedef struct sf_adapter_digest {
    struct evp_md_ctx_st *md;
    bool failed;   /* sticky: a libcrypto call failed */
    size_t values; /* values in the current record */
} sf_adapter_digest;

sf_status sf_adapter_digest_begin(sf_adapter_digest *d, sf_error *err) SF_MUSTCHECK;
/* Append one value of the current record (escaped). */
void sf_adapter_digest_value(sf_adapter_digest *d, const char *s, size_t len);
/* Append raw bytes to the current value (escaped); for a value in pieces. */
void sf_adapter_digest_more(sf_adapter_digest *d, const char *s, size_t len);
/* Start a value without bytes yet (then sf_adapter_digest_more). */
void sf_adapter_digest_start_value(sf_adapter_digest *d);
/* Append one unescaped marker byte (a record type, for example). */
void sf_adapter_digest_marker(sf_adapter_digest *d, unsigned char b);
void sf_adapter_digest_end_record(sf_adapter_digest *d);
/* Append the defaults as two values: the kind's token and the uom. They
 * give rows their meaning as much as the data does, so a changed default
 * is new content (the adapters hash them in their first record). */
void sf_adapter_digest_defaults(sf_adapter_digest *d, const sf_adapter_defaults *def);
/* 64 lower-case hex digits into hex (65 bytes) and release the context. */
sf_status sf_adapter_digest_end(sf_adapter_digest *d, char hex[65], sf_error *err) SF_MUSTCHECK;
/* Release without a result (error paths). Safe after _end and twice. */
void sf_adapter_digest_free(sf_adapter_digest *d);

#endif
