/*
 * supplier_map: a supplier row (their SKU, their location code, a decimal
 * in their unit) -> one of our events. Pure: the SKU table is loaded
 * before a feed is read (sf_sku_map_load) and passed in, so the mapping of
 * a whole feed sees one consistent table and is testable without a
 * database.
 *
 * Rules: their SKU goes through supplier_sku_map (or is ours with
 * sku_map = identity); an unmapped SKU is a reject, never a guess. Their
 * location code goes through location_map, and an unmapped code is a
 * reject too; a row without a code takes the supplier's default location
 * (none configured: a reject). Units: EA/EACH/UN/PC/PCS/UNIT (or none)
 * count as 1, DZ as 12, pack units (CA CS BX PK PKG CT CTN) as the SKU's
 * units per pack; anything else (LB, FT, KG, ...) is a reject, and so is a
 * quantity that is not whole after the conversion. The event id is "sup-"
 * + the first 40 hex digits of SHA-256 over supplier id, feed digest and
 * record ordinal (decimal) joined by 0x1F: a re-sent document maps to the
 * same ids.
 */
#ifndef SF_SUPPLIER_MAP_H
#define SF_SUPPLIER_MAP_H

#include <libpq-fe.h>
#include <stdint.h>

#include "adapter.h"
#include "event.h"
#include "sf_error.h"
#include "supplier_config.h"

typedef struct sf_sku_map sf_sku_map;

sf_status sf_sku_map_new(sf_sku_map **out, sf_error *err) SF_MUSTCHECK;
/* Add their -> ours with units per pack (>= 1); a later add replaces. */
sf_status sf_sku_map_add(sf_sku_map *m, const char *theirs, const char *ours,
                         int64_t units_per_pack, sf_error *err) SF_MUSTCHECK;
/* Our SKU for theirs and its units per pack, or NULL. */
const char *sf_sku_map_find(const sf_sku_map *m, const char *theirs, int64_t *units_per_pack);
size_t sf_sku_map_size(const sf_sku_map *m);
void sf_sku_map_free(sf_sku_map *m);

/* Every supplier_sku_map row of supplier. SF_EUNAVAIL when PostgreSQL is down. */
sf_status sf_sku_map_load(PGconn *conn, const char *supplier, sf_sku_map **out,
                          sf_error *err) SF_MUSTCHECK;

/* Map a good row. map may be NULL only with sup->sku_identity. read_at_ms is
 * the occurred_at of a row that has none and "now" for validation.
 * SF_EINVAL: the row is rejected, err says why (naming the field). */
sf_status sf_supplier_map_row(const sf_supplier *sup, const sf_sku_map *map,
                              const sf_supplier_row *row, const char *digest, int64_t read_at_ms,
                              sf_event *out, sf_error *err) SF_MUSTCHECK;

#endif
