/*
 * schemas: every Avro schema stockflow ships, embedded as text so no binary
 * needs a file at run time.
 *
 * The files under schemas/ are the source of truth and the C strings here
 * are their byte-for-byte copies (tests/unit/test_schemas.c fails on any
 * difference). To change a schema, or add a version: edit or add the
 * .avsc file, paste it here as a string literal, add a row to the table,
 * and keep versions additive (new fields with defaults only, DESIGN.md
 * "Events"): a shipped text never changes once published, since its
 * fingerprint names it on the wire.
 *
 * Ownership: everything returned points into static storage; nothing to
 * free, safe from any thread.
 */
#ifndef SF_SCHEMAS_H
#define SF_SCHEMAS_H

#include <stddef.h>

/* Avro full names of the shipped records. */
#define SF_SCHEMA_INVENTORY_EVENT "stockflow.InventoryEvent"
#define SF_SCHEMA_CHANNEL_STOCK "stockflow.ChannelStock"

typedef struct sf_schema_def {
    const char *name; /* Avro full name of the top-level record */
    int version;      /* 1, 2, ...: the file's .vN */
    const char *path; /* the source file, relative to the repository root */
    const char *json; /* the file's text, NUL-terminated */
    size_t len;       /* strlen(json) */
} sf_schema_def;

/* Number of shipped schemas; sf_schemas_at(i) for i < count is each. */
size_t sf_schemas_count(void);
const sf_schema_def *sf_schemas_at(size_t i);

/* The schema with this full name and version, or NULL. */
const sf_schema_def *sf_schemas_find(const char *name, int version);

#endif
