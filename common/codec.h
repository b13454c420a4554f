/*
 * codec: events and channel stock to and from Avro single-object encoding
 * (DESIGN.md "Events": 0xC3 0x01, the 8-byte little-endian CRC-64-AVRO
 * fingerprint of the writer schema's Parsing Canonical Form, binary body).
 *
 * A codec knows every shipped writer schema (common/schemas.h) by its
 * fingerprint, parsed once in sf_codec_new. Decoding reads the body with
 * the writer's schema, then resolves it to the reader's schema by field
 * name: fields the reader lacks are dropped, fields the writer lacks take
 * the reader schema's default (avro-c 1.11.1 cannot do this itself). The
 * one idea to keep when changing it: a reader must accept every version
 * the codec knows, so a new schema version is only ever added to the
 * table, never edited, and only adds fields with defaults.
 *
 * Threads: an sf_codec is NOT thread-safe. It holds reusable Avro values
 * and scratch buffers, so every call mutates it: use one codec per thread.
 *
 * Errors: decoding returns SF_ENOTFOUND for an unknown fingerprint (the
 * consumer sidelines it as reason "fingerprint") and SF_EINVAL for
 * anything undecodable (reason "decode"); the message says what and where
 * ("body truncated at byte 17: field sku ...", "field sku: 70 bytes,
 * limit 64"). Decoding checks the wire, not business rules: run
 * sf_event_validate() on what it returns.
 */
#ifndef SF_CODEC_H
#define SF_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>

#include "event.h"
#include "schemas.h"
#include "sf_error.h"

typedef struct sf_codec sf_codec;

/* Single-object header: 2 magic bytes + 8 fingerprint bytes. */
#define SF_CODEC_HEADER_LEN 10
/* Buffer size that holds any encodable sf_event (at most 442 bytes). */
#define SF_CODEC_EVENT_MAX 512
/* Buffer size that holds any encodable sf_channel_stock (at most 172). */
#define SF_CODEC_CHANNEL_STOCK_MAX 256
/* Decoding limits: nesting of records/unions/arrays, and array plus map
 * elements in one message. */
#define SF_CODEC_MAX_DEPTH 32
#define SF_CODEC_MAX_ITEMS 65536

/* What the reconciler publishes on inv.chan.<channel>
 * (schemas/channel_stock.v1.avsc). Plain value, copies with `=`. */
typedef struct sf_channel_stock {
    char channel[SF_STR_MAX + 1];
    char sku[SF_STR_MAX + 1];
    int64_t ats;
    int64_t version;
    int64_t computed_at; /* epoch milliseconds, UTC */
} sf_channel_stock;

/* Parse every shipped schema and prepare reusable values. On success *out
 * is a codec the caller owns and releases with sf_codec_free. */
sf_status sf_codec_new(sf_codec **out, sf_error *err) SF_MUSTCHECK;

/* The same, knowing `extra` schemas besides the shipped ones (tests of
 * evolution, tools). The table and its texts are borrowed and must outlive
 * the codec; each entry needs a distinct (name, version) and fingerprint. */
sf_status sf_codec_new_with(const sf_schema_def *extra, size_t n_extra, sf_codec **out,
                            sf_error *err) SF_MUSTCHECK;

/* Release a codec and everything it holds. NULL is fine. */
void sf_codec_free(sf_codec *codec);

/* Fingerprint of a shipped schema (name, version), SF_ENOTFOUND if the
 * codec does not know it. */
sf_status sf_codec_fingerprint(const sf_codec *codec, const char *name, int version, uint64_t *fp,
                               sf_error *err) SF_MUSTCHECK;

/* --- events (writer: InventoryEvent v1; reader: InventoryEvent v1) ------ */

/* Encode ev into buf[0..cap) as a single object; *len gets the size.
 * SF_EINVAL if a string is not NUL-terminated within SF_STR_MAX + 1 bytes,
 * if kind or condition is out of range, or if cap is too small
 * (SF_CODEC_EVENT_MAX always suffices). No allocation on this path. */
sf_status sf_codec_encode_event(sf_codec *codec, const sf_event *ev, uint8_t *buf, size_t cap,
                                size_t *len, sf_error *err) SF_MUSTCHECK;

/* Decode msg[0..len) written with any known InventoryEvent version into
 * *out (fully overwritten on success; unspecified on failure).
 * SF_ENOTFOUND: unknown fingerprint. SF_EINVAL: bad magic, short header,
 * truncated body, trailing bytes, bad enum or union index, bad varint, a
 * string over SF_STR_MAX bytes or with a NUL byte, or a writer record that
 * does not resolve to InventoryEvent. */
sf_status sf_codec_decode_event(sf_codec *codec, const uint8_t *msg, size_t len, sf_event *out,
                                sf_error *err) SF_MUSTCHECK;

/* --- channel stock (ChannelStock v1) ------------------------------------ */

sf_status sf_codec_encode_channel_stock(sf_codec *codec, const sf_channel_stock *cs, uint8_t *buf,
                                        size_t cap, size_t *len, sf_error *err) SF_MUSTCHECK;

/* Same errors as sf_codec_decode_event, for ChannelStock. */
sf_status sf_codec_decode_channel_stock(sf_codec *codec, const uint8_t *msg, size_t len,
                                        sf_channel_stock *out, sf_error *err) SF_MUSTCHECK;

/* --- any shipped schema, as avro-c values ------------------------------- */

/* A new, empty generic value of a shipped schema (name, version), for
 * filling and passing to sf_codec_encode_value. The caller owns it and
 * releases it with avro_value_decref(out). SF_ENOTFOUND if unknown. */
sf_status sf_codec_value_new(sf_codec *codec, const char *name, int version, avro_value_t *out,
                             sf_error *err) SF_MUSTCHECK;

/* Encode a value whose schema is one of the shipped ones (as made by
 * sf_codec_value_new) as a single object. SF_ENOTFOUND if its schema is
 * not known; SF_EINVAL if the value is incomplete (a union with no branch
 * set) or cap is too small. The value is only read. */
sf_status sf_codec_encode_value(sf_codec *codec, avro_value_t *value, uint8_t *buf, size_t cap,
                                size_t *len, sf_error *err) SF_MUSTCHECK;

/* Decode msg[0..len) from any known writer schema and resolve it to the
 * reader schema (reader_name, reader_version) by field name, defaults
 * filled from the reader's JSON. On success *out is a new value of the
 * reader schema that the caller owns (avro_value_decref(out)); on failure
 * *out is untouched. Errors as sf_codec_decode_event, except that strings
 * have no length limit here (the contract's 64 bytes is an event rule);
 * SF_ENOTFOUND also for an unknown reader schema. */
sf_status sf_codec_decode_value(sf_codec *codec, const uint8_t *msg, size_t len,
                                const char *reader_name, int reader_version, avro_value_t *out,
                                sf_error *err) SF_MUSTCHECK;

#endif
