/*
 * event: the one internal event model (DESIGN.md "Events") and its rules.
 *
 * An sf_event is a plain value: fixed-size strings (64 bytes + NUL, the
 * contract's limit), so events copy with `=` and batches need no per-event
 * allocation. Optional fields carry a has_ flag. Every producer (JSON/CSV
 * parsing, supplier adapters, the codec) ends with sf_event_validate(), and
 * every event without an id gets sf_event_derive_id(): the same content
 * always gives the same id, so a re-sent line is deduplicated.
 */
#ifndef SF_EVENT_H
#define SF_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#include "sf_error.h"

#define SF_STR_MAX 64 /* bytes, without the NUL */

typedef enum sf_kind {
    SF_KIND_SALE = 0, /* order matches the Avro enum symbols */
    SF_KIND_RETURN,
    SF_KIND_RECEIPT,
    SF_KIND_ASN,
    SF_KIND_COUNT,
    SF_KIND_ADJUST,
    SF_KIND_TRANSFER_OUT,
    SF_KIND_TRANSFER_IN,
    SF_KIND_RESERVE,
    SF_KIND_RELEASE,
    SF_KIND__COUNT
} sf_kind;

typedef enum sf_condition {
    SF_COND_RESELLABLE = 0, /* order matches the Avro enum symbols */
    SF_COND_DAMAGED
} sf_condition;

typedef struct sf_event {
    char event_id[SF_STR_MAX + 1];
    sf_kind kind;
    char sku[SF_STR_MAX + 1];
    char location[SF_STR_MAX + 1];
    int64_t qty;
    int64_t occurred_at; /* epoch milliseconds, UTC */
    char source[SF_STR_MAX + 1];
    bool has_channel;
    char channel[SF_STR_MAX + 1];
    bool has_ref;
    char ref[SF_STR_MAX + 1];
    bool has_condition;
    sf_condition condition;
    bool has_expires_at;
    int64_t expires_at; /* epoch milliseconds, UTC */
} sf_event;

/* Zero an event (no optional fields, empty strings, kind SALE). */
void sf_event_init(sf_event *ev);

/* "SALE", "RETURN", ... (upper case, the Avro symbol). */
const char *sf_kind_name(sf_kind kind);
/* "sale", "return", ... (lower case, the subject token). */
const char *sf_kind_token(sf_kind kind);
/* Case-insensitive parse of a kind name; SF_EINVAL if unknown. */
sf_status sf_kind_parse(const char *name, sf_kind *out, sf_error *err) SF_MUSTCHECK;

const char *sf_condition_name(sf_condition cond);

/* Copy a string field with the contract's checks: at most SF_STR_MAX bytes,
 * valid UTF-8, no control characters. `field` names it in the error. */
sf_status sf_event_set_str(char dst[SF_STR_MAX + 1], const char *src, size_t len, const char *field,
                           sf_error *err) SF_MUSTCHECK;

/* Is s a subject token (A-Z a-z 0-9 _ -, non-empty)? */
bool sf_is_token(const char *s);

/* Check every rule of DESIGN.md "Events": qty sign, condition only on
 * RETURN, expires_at only on RESERVE, token ids, strings, and occurred_at
 * not more than max_future_ms ahead of now_ms. The error names the field. */
sf_status sf_event_validate(const sf_event *ev, int64_t now_ms, int64_t max_future_ms,
                            sf_error *err) SF_MUSTCHECK;

/* Set ev->event_id to "d-" + 40 hex of SHA-256 over the content fields
 * joined by 0x1F (DESIGN.md "JSON form"). */
void sf_event_derive_id(sf_event *ev);

/* Subject "inv.evt.<kind>.<location>" into buf; SF_EINVAL if it does not fit. */
sf_status sf_event_subject(const sf_event *ev, char *buf, size_t size, sf_error *err) SF_MUSTCHECK;

/* Lower-case hex of SHA-256 over `n` parts joined by 0x1F, first `hex_len`
 * digits (≤ 64) written to out (hex_len + 1 bytes). Shared by every
 * deterministic id of the contract (d-, exp-, rsv-, supplier ids).
 * A NULL part is hashed as empty. If libcrypto fails (out of memory), out
 * is set to "" so an id built from it is rejected rather than colliding;
 * sf_event_derive_id then leaves event_id empty, which validation rejects. */
void sf_sha256_hex_joined(const char *const *parts, size_t n, size_t hex_len, char *out);

/* Current time in epoch milliseconds. */
int64_t sf_now_ms(void);

/* Case-insensitive parse of a condition name (RESELLABLE, DAMAGED);
 * SF_EINVAL if unknown. */
sf_status sf_condition_parse(const char *name, sf_condition *out, sf_error *err) SF_MUSTCHECK;

/* Write s[0..len) into out (size bytes, always NUL-terminated) as a quoted,
 * printable excerpt for error messages: 'abc', control bytes and (when s is
 * not valid UTF-8) bytes >= 0x80 as \xNN, cut at 40 bytes with "...". So a
 * hostile value never puts raw control bytes into a log or reject file. */
void sf_str_quote(const char *s, size_t len, char *out, size_t size);

#endif
