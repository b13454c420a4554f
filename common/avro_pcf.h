/*
 * avro_pcf: Avro Parsing Canonical Form (PCF) and CRC-64-AVRO fingerprints.
 *
 * avro-c 1.11.1 has neither, and the single-object wire format names a
 * writer schema by the fingerprint of its PCF, so both live here. The one
 * idea to keep when changing this: the canonical form is a pure function of
 * the schema's meaning (Avro specification, "Parsing Canonical Form for
 * Schemas"), not of its spelling: every rule (PRIMITIVES, FULLNAMES,
 * STRIP, ORDER, STRINGS, INTEGERS, WHITESPACE) must hold for every input,
 * or two services disagree about a fingerprint and sideline each other's
 * messages. The Apache test vectors (tests/unit/test_avro_pcf.c) pin it.
 *
 * Ownership: strings returned through `out` are malloc'd and belong to the
 * caller (free()). JSON values passed in are borrowed and never modified.
 * Everything here is reentrant: no global state (the CRC table is const).
 */
#ifndef SF_AVRO_PCF_H
#define SF_AVRO_PCF_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sf_error.h"

/* The CRC-64-AVRO fingerprint of zero bytes (and the CRC's seed). */
#define SF_AVRO_CRC64_EMPTY UINT64_C(0xc15d213aa4d7a795)

/* Nesting limit for schema JSON (records in records, unions, arrays...). */
#define SF_AVRO_PCF_MAX_DEPTH 128

/* Longest full name (namespace + "." + name) accepted, in bytes. */
#define SF_AVRO_NAME_MAX 255

/* Parsing Canonical Form of the schema text json[0..len). On success *out
 * is a NUL-terminated malloc'd string the caller frees. SF_EINVAL (message
 * names the offending token) when the text is not JSON or not a valid
 * schema: unknown type name, bad or redefined name, missing attribute. */
sf_status sf_avro_pcf(const char *json, size_t len, char **out, sf_error *err) SF_MUSTCHECK;

/* The same for an already-parsed schema (borrowed). */
sf_status sf_avro_pcf_json(const json_t *schema, char **out, sf_error *err) SF_MUSTCHECK;

/* CRC-64-AVRO (Rabin) of p[0..n), seeded with SF_AVRO_CRC64_EMPTY:
 * the Avro specification's "fingerprint64". n == 0 gives the seed. */
uint64_t sf_avro_crc64(const void *p, size_t n);

/* CRC-64-AVRO of the Parsing Canonical Form of the schema text. */
sf_status sf_avro_fingerprint(const char *json, size_t len, uint64_t *fp,
                              sf_error *err) SF_MUSTCHECK;

/* Every named type (record, error, enum, fixed) the schema defines, as a
 * new JSON object mapping full name -> the defining JSON object (borrowed
 * from `schema`, reference taken). The caller releases *out with
 * json_decref(); it keeps the defining objects alive on its own. Used to
 * find a record's field defaults by the full name avro-c reports. */
sf_status sf_avro_named_types(const json_t *schema, json_t **out, sf_error *err) SF_MUSTCHECK;

#endif
