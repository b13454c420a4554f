/*
 * supplier_config: every [supplier.<id>] section of the config file, parsed
 * and checked once at start-up (DESIGN.md "Supplier adapters").
 *
 * Keys every supplier may set: format (csv | jsonl | x12-846 | x12-856 |
 * http), location (our default location), location_map (THEIRS=OURS, ...),
 * sku_map (table | identity), timezone (UTC, +HH:MM or -HH:MM),
 * units_per_pack (for pack units when sku_map = identity, default 1) and,
 * for format = http, body_format (jsonl | csv) plus the poller's keys
 * (http_poll.h). The format's own keys are parsed by its adapter. A key
 * that no part claims is an error naming path:line, so a typo never turns
 * into a silently ignored setting.
 *
 * The supplier id is a subject-style token (A-Z a-z 0-9 _ -, at most 64
 * bytes): it is the events' source and the name of its drop directory.
 *
 * Ownership: sf_suppliers owns every supplier and its adapter options.
 */
#ifndef SF_SUPPLIER_CONFIG_H
#define SF_SUPPLIER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter.h"
#include "config.h"
#include "event.h"
#include "http_poll.h"
#include "sf_error.h"

#define SF_SUPPLIERS_MAX 256
#define SF_LOCATION_MAP_MAX 64

typedef struct sf_location_pair {
    char theirs[SF_STR_MAX + 1];
    char ours[SF_STR_MAX + 1];
} sf_location_pair;

typedef struct sf_supplier {
    char id[SF_STR_MAX + 1];
    char section[SF_CONFIG_SECTION_MAX + 1]; /* "supplier.<id>" */
    char format[16];                         /* as configured ("http" included) */
    const sf_adapter_ops *adapter;           /* the parser (for http: of its body) */
    void *adapter_opts;
    bool http;
    sf_http_poll_opts poll;        /* format = http only */
    char location[SF_STR_MAX + 1]; /* ours; "" = none: a row without one is rejected */
    sf_location_pair location_map[SF_LOCATION_MAP_MAX];
    size_t n_location_map;
    bool sku_identity;      /* sku_map = identity: their SKU is ours */
    int64_t units_per_pack; /* with sku_identity: units in one of their packs */
    int32_t tz_offset_s;    /* seconds east of UTC */
} sf_supplier;

typedef struct sf_suppliers {
    sf_supplier *items;
    size_t n;
} sf_suppliers;

/* Parse every [supplier.<id>] section of cfg. SF_EINVAL with
 * "path:line: [supplier.<id>] key: reason". */
sf_status sf_suppliers_load(const sf_config *cfg, sf_suppliers *out, sf_error *err) SF_MUSTCHECK;

/* The supplier with this id, or NULL. */
const sf_supplier *sf_suppliers_find(const sf_suppliers *s, const char *id);

/* Our location for their code (location_map), else NULL. */
const char *sf_supplier_location(const sf_supplier *sup, const char *theirs);

void sf_suppliers_free(sf_suppliers *s);

#endif
