/*
 * http_body: the body of one `POST /v1/events` request (DESIGN.md "Ingest")
 * as a sequence of JSON lines, and the per-line results that become the
 * reply. No network here: http_source feeds it bytes and publish outcomes,
 * and the fuzz target drives it directly.
 *
 * Lines are split on '\n' (a trailing '\r' dropped, a UTF-8 BOM before the
 * first line ignored); blank lines (spaces and tabs only) are skipped but
 * counted, so `line` is the physical line number a client sees in its
 * editor. Each other line goes through sf_event_parse_json with the same
 * options as `--file`, so a line is accepted by HTTP exactly when it would
 * be accepted from a file; a line longer than max_line is rejected with the
 * same words as the file reader. Errors start with "line N: ".
 *
 * Ownership: ingest_body_new takes over the body bytes (freed by
 * ingest_body_free); error strings are owned by the body. Result pointers
 * stay valid until the body is freed (the array is sized once, up front,
 * from the number of newlines, and never moves).
 */
#ifndef INGEST_HTTP_BODY_H
#define INGEST_HTTP_BODY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "event_parse.h"
#include "sf_error.h"

typedef enum ingest_line_status {
    INGEST_LINE_PENDING = 0, /* valid, handed to the publisher, no outcome yet */
    INGEST_LINE_ACCEPTED,    /* JetStream stored it */
    INGEST_LINE_DUPLICATE,   /* JetStream already had its event_id */
    INGEST_LINE_REJECTED,    /* bad line: error says why */
    INGEST_LINE_FAILED       /* valid but not published (JetStream away): retry */
} ingest_line_status;

/* "accepted", "duplicate", "rejected", "failed" ("pending" otherwise). */
const char *ingest_line_status_str(ingest_line_status s);

typedef struct ingest_line_result {
    uint64_t line; /* 1-based physical line number */
    ingest_line_status status;
    char event_id[SF_STR_MAX + 1]; /* for every line that parsed */
    char *error;                   /* rejected / failed only; owned by the body */
} ingest_line_result;

typedef struct ingest_body_counts {
    size_t lines; /* non-blank lines seen so far */
    size_t pending, accepted, duplicate, rejected, failed;
} ingest_body_counts;

typedef struct ingest_body ingest_body;

/* A body over data[0..len) (taken over, malloc'd; NULL allowed when len is
 * 0). opts is copied; opts->default_source is borrowed and must outlive the
 * body. SF_ENOMEM only. */
sf_status ingest_body_new(char *data, size_t len, const sf_parse_opts *opts, ingest_body **out,
                          sf_error *err) SF_MUSTCHECK;

void ingest_body_free(ingest_body *b); /* NULL is a no-op */

/* Parse the next non-blank line. SF_OK: *out is its result, either
 * REJECTED (error set) or PENDING with ev filled (valid, event_id set) for
 * the caller to publish and then settle. SF_ENOTFOUND: no more lines.
 * SF_ENOMEM: the line could not be recorded (err). */
sf_status ingest_body_next(ingest_body *b, sf_event *ev, ingest_line_result **out,
                           sf_error *err) SF_MUSTCHECK;

/* Settle a PENDING line: ACCEPTED, DUPLICATE, or REJECTED / FAILED with a
 * reason (copied; NULL means none given). Settling a line twice, or to
 * PENDING, is a no-op. */
void ingest_body_settle(ingest_body *b, ingest_line_result *r, ingest_line_status status,
                        const char *error);

/* Counts over the lines parsed so far. */
ingest_body_counts ingest_body_count(const ingest_body *b);

/* true once every line has been parsed and none is PENDING. */
int ingest_body_done(const ingest_body *b);

/* The reply once done: 202 every line accepted or duplicate; 503 any
 * FAILED (whatever else: the client should send the body again, which is
 * safe since event ids are kept); else 400 (a rejected line, or no line at
 * all). */
int ingest_body_http_status(const ingest_body *b);

/* The reply body: {"accepted":N,"duplicate":N,"rejected":N,"failed":N,
 * "results":[{"line":N,"status":"accepted","event_id":"..."} |
 * {"line":N,"status":"rejected","error":"line N: ..."} ...]} plus "error"
 * when the body held no line. New reference, NULL on allocation failure. */
json_t *ingest_body_reply_json(const ingest_body *b);

#endif
