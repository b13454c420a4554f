/*
 * adapter: the one interface behind which every supplier feed format
 * (csv, jsonl, x12-846, x12-856, http) turns a feed into supplier rows.
 *
 * Data flows one way: feed bytes -> adapter -> sf_supplier_row (their SKU,
 * their location code, a decimal quantity in their unit) -> the mapper
 * (supplier_map.h: our SKU, our location, whole units) -> sf_event -> broker.
 * An adapter knows nothing of SKU tables, NATS or PostgreSQL; it only parses.
 *
 * The one idea: an adapter sees the whole feed at once (a bounded buffer),
 * so at open it can compute the feed's business digest (content only:
 * no control numbers, envelope dates, blank lines or line endings) and
 * event ids become (supplier, digest, record ordinal): a re-sent document
 * yields the same ids and publishes nothing new.
 *
 * Every record of the feed yields exactly one row, good or rejected, in
 * feed order, numbered 1, 2, ... by `ordinal` (rejected rows count, so the
 * ordinals of the good rows do not move when a bad row is fixed elsewhere).
 * A structural error that spoils a whole document (no ISA, separators
 * unreadable) fails open() instead, naming the position.
 *
 * Ownership: the adapter borrows `data` until close(); options made by
 * configure() are owned by the caller and released with free_opts().
 */
#ifndef SF_SUPPLIER_ADAPTER_H
#define SF_SUPPLIER_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "event.h"
#include "sf_error.h"

#define SF_FEED_MAX_BYTES ((size_t)64 << 20) /* a feed is read whole: 64 MiB at most */
#define SF_UOM_MAX 8

/* A decimal as sent: value = units / 10^scale, scale 0..6. "2.50" is
 * {250, 2}. Parsers refuse more than 6 decimals or more than 18 digits. */
typedef struct sf_decimal {
    int64_t units;
    int scale;
} sf_decimal;

/* Parse "12", "-3", "2.5", "0.25" (optional sign, digits, optional '.'
 * and up to 6 decimals; no exponent, no spaces, no thousands separators).
 * SF_EINVAL with a reason naming `field`. */
sf_status sf_decimal_parse(const char *s, size_t len, const char *field, sf_decimal *out,
                           sf_error *err) SF_MUSTCHECK;

/* One record of a feed, in the supplier's terms. */
typedef struct sf_supplier_row {
    uint64_t ordinal;  /* 1-based record number in the feed, rejected ones included */
    char position[64]; /* where it is: "line 12" or "segment 14" (no file name) */
    bool ok;           /* false: `error` says why, naming the field or segment */
    sf_error error;
    sf_kind kind;                  /* SF_KIND_COUNT, SF_KIND_ASN or SF_KIND_RECEIPT */
    char item[SF_STR_MAX + 1];     /* their SKU, as sent */
    char location[SF_STR_MAX + 1]; /* their location code; "" = the supplier's default */
    sf_decimal qty;
    char uom[SF_UOM_MAX + 1]; /* unit as sent ("EA", "CA", "LB", ...); "" = not given */
    int64_t occurred_at;      /* epoch ms; 0 = not given: the mapper uses the read time */
    char ref[SF_STR_MAX + 1]; /* shipment / order reference, "" if none */
} sf_supplier_row;

/* What an adapter is told about the feed it reads. */
typedef struct sf_feed_ctx {
    const char *name;    /* file name or URL, for messages (borrowed) */
    int64_t read_at_ms;  /* when the feed was read: no time is ever later */
    int32_t tz_offset_s; /* the supplier's timezone, seconds east of UTC */
} sf_feed_ctx;

typedef struct sf_adapter_ops {
    const char *format; /* "csv", "jsonl", "x12-846", "x12-856", "http" */
    /* Keys of [supplier.<id>] this format reads (NULL-terminated); the
     * supplier config rejects a key no part claims. */
    const char *const *keys;
    /* Parse this format's keys of `section` once at start-up into *opts.
     * The error cites "path:line: [section] key: reason". */
    sf_status (*configure)(const sf_config *cfg, const char *section, void **opts,
                           sf_error *err) SF_MUSTCHECK;
    void (*free_opts)(void *opts);
    /* Start reading data[0..len) (borrowed until close). Computes the
     * digest. SF_EINVAL when the feed as a whole is unreadable. */
    sf_status (*open)(const void *opts, const sf_feed_ctx *ctx, const char *data, size_t len,
                      void **state, sf_error *err) SF_MUSTCHECK;
    /* Next row: SF_OK and *row filled (ok or rejected); SF_ENOTFOUND at the
     * end; any other status is a failure of the adapter itself. */
    sf_status (*next)(void *state, sf_supplier_row *row, sf_error *err) SF_MUSTCHECK;
    /* 64 lower-case hex digits of SHA-256 over the business content. */
    const char *(*digest)(const void *state);
    void (*close)(void *state);
} sf_adapter_ops;

/* The adapter of a format name, or NULL. */
const sf_adapter_ops *sf_adapter_find(const char *format);

extern const sf_adapter_ops sf_adapter_csv;
extern const sf_adapter_ops sf_adapter_jsonl;
extern const sf_adapter_ops sf_adapter_x12_846;
extern const sf_adapter_ops sf_adapter_x12_856;

#endif
