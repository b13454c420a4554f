/*
 * event_parse: the text forms of an event (DESIGN.md "Events", "JSON form",
 * "Ingest"): one JSON object a line, CSV with a header, and a feed reader
 * that turns a FILE* of either into (line number, event or reject reason).
 *
 * Both forms fill the same table of field values and go through one
 * builder, so a field rule (types, defaults, timestamp formats) changes in
 * one place and JSON and CSV can never disagree; after building, a missing
 * event_id is derived and the event is validated with sf_event_validate().
 * Every reject names the field ("field qty: ..."); the feed reader adds
 * "line N: " and the caller adds the file name.
 *
 * CSV follows RFC 4180 within one line: quoted cells with "" escapes, CRLF
 * tolerated. A quoted cell that spans lines is rejected ("not closed on
 * this line"): feeds are read line by line with a bounded buffer, so a
 * line, not a record, is the unit of both memory and error reporting.
 *
 * Ownership: parse functions copy into the caller's sf_event and keep
 * nothing. An sf_csv_header is owned by its creator (sf_csv_header_free).
 * A reader borrows the FILE* (never closes it) and opts->default_source
 * (which must outlive it).
 */
#ifndef SF_EVENT_PARSE_H
#define SF_EVENT_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "event.h"
#include "sf_error.h"

#define SF_PARSE_MAX_FUTURE_MS_DEFAULT 300000
#define SF_PARSE_MAX_LINE_DEFAULT 65536
#define SF_PARSE_MAX_LINE_LIMIT ((size_t)1 << 30) /* larger max_line values are refused */

typedef struct sf_parse_opts {
    /* Source of a line that has none (borrowed). NULL: such a line is a reject. */
    const char *default_source;
    /* "Now" for the future check, epoch ms. < 0 (the default): read the
     * clock for every event, as a long-running ingest must. */
    int64_t now_ms;
    int64_t max_future_ms; /* default 300000 (5 min) */
    size_t max_line;       /* bytes of one line without its terminator; default 65536 */
} sf_parse_opts;

void sf_parse_opts_init(sf_parse_opts *opts);

/* One JSON object (a line, its trailing CR/LF tolerated) -> a validated
 * event. kind and condition are case-insensitive; qty must be a JSON
 * integer; occurred_at and expires_at are an RFC 3339 string or a JSON
 * integer of epoch ms; null means absent for optional fields and is a
 * reject for required ones; an unknown field is a reject. */
sf_status sf_event_parse_json(const char *line, size_t len, const sf_parse_opts *opts,
                              sf_event *out, sf_error *err) SF_MUSTCHECK;

/* A CSV header: column names are the JSON field names, each at most once;
 * kind, sku, location, qty and occurred_at are required. Opaque. */
typedef struct sf_csv_header sf_csv_header;

/* Parse a header line. On success *out is a new header owned by the caller. */
sf_status sf_csv_header_parse(const char *line, size_t len, const sf_parse_opts *opts,
                              sf_csv_header **out, sf_error *err) SF_MUSTCHECK;
void sf_csv_header_free(sf_csv_header *h);
/* Number of columns of a parsed header. */
size_t sf_csv_header_columns(const sf_csv_header *h);

/* One CSV data line under `h` -> a validated event. An empty cell is an
 * absent field; qty and timestamps are text (timestamps: RFC 3339 or
 * decimal epoch ms). The row must have exactly the header's cell count. */
sf_status sf_event_parse_csv(const sf_csv_header *h, const char *line, size_t len,
                             const sf_parse_opts *opts, sf_event *out, sf_error *err) SF_MUSTCHECK;

/* RFC 3339 timestamp -> epoch ms: YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|+hh:mm|-hh:mm).
 * The fraction (1 to 9 digits) is truncated to milliseconds; second 60
 * (leap second) is refused. The message does not name a field. */
sf_status sf_time_parse_rfc3339(const char *s, size_t len, int64_t *out_ms,
                                sf_error *err) SF_MUSTCHECK;

/* Epoch ms -> "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 chars + NUL). false when ms
 * is outside years 1970..9999 or buf is smaller than 25 bytes. */
bool sf_time_format_rfc3339(int64_t ms, char *buf, size_t size);

/* JSON form of an event, one line without the newline. */
enum {
    SF_JSON_EPOCH_MS = 1 << 0,   /* timestamps as integers (default: RFC 3339) */
    SF_JSON_KIND_LOWER = 1 << 1, /* kind as "sale" (default: "SALE") */
};
/* Writes at most size bytes including the NUL; *len (may be NULL) gets the
 * length. SF_EINVAL if it does not fit. Strings are escaped for JSON. */
sf_status sf_event_format_json(const sf_event *ev, unsigned flags, char *buf, size_t size,
                               size_t *len, sf_error *err) SF_MUSTCHECK;

/* Calendar helpers shared by every text parser of times (proleptic
 * Gregorian, UTC): days since 1970-01-01 of a civil date; days in a month
 * (m 1..12); n fixed-width decimal digits of s (false if any is not one). */
int64_t sf_days_from_civil(int64_t y, unsigned m, unsigned d);
unsigned sf_days_in_month(int64_t y, unsigned m);
bool sf_parse_digits(const char *s, size_t n, unsigned *out);

/* --- feed reader ---------------------------------------------------------- */

typedef enum sf_feed_format {
    SF_FEED_UNKNOWN = 0, /* no non-blank line seen yet */
    SF_FEED_JSONL,       /* first non-blank line started with '{' */
    SF_FEED_CSV          /* otherwise: that line is the CSV header */
} sf_feed_format;

typedef struct sf_feed_reader sf_feed_reader;

typedef struct sf_feed_item {
    uint64_t line; /* 1-based physical line number */
    bool ok;       /* true: `event` is valid; false: `error` says why the line is rejected */
    sf_event event;
    sf_error error; /* "line N: field X: ..." */
    /* The line's bytes (BOM and CR/LF stripped), valid until the next call;
     * NULL for an overlong line. */
    const char *text;
    size_t text_len;
} sf_feed_item;

/* A reader over `in` with a copy of opts (default_source stays borrowed).
 * Memory is bounded by opts->max_line. */
sf_status sf_feed_reader_new(FILE *in, const sf_parse_opts *opts, sf_feed_reader **out,
                             sf_error *err) SF_MUSTCHECK;

/* Next non-blank line (a CSV header line yields an item only when it is
 * rejected). SF_OK: *item is filled, ok or not; SF_ENOTFOUND: end of input;
 * SF_EIO: the FILE failed (err). After a rejected CSV header every data
 * line is rejected as skipped, so each line is accounted for. */
sf_status sf_feed_reader_next(sf_feed_reader *r, sf_feed_item *item, sf_error *err) SF_MUSTCHECK;

sf_feed_format sf_feed_reader_format(const sf_feed_reader *r);

/* Frees the reader; does not close the FILE. NULL is a no-op. */
void sf_feed_reader_free(sf_feed_reader *r);

#endif
