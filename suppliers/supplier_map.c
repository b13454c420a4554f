/*
 * supplier_map: an open-addressing hash table (FNV-1a, linear probing,
 * kept at most half full) from their SKU to ours, and the row mapping.
 * Quantities are converted in integers only: value = units × per-unit
 * / 10^scale must divide exactly, with every product checked for overflow.
 */
#include "supplier_map.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db.h"

typedef struct skumap__slot {
    char theirs[SF_STR_MAX + 1];
    char ours[SF_STR_MAX + 1];
    int64_t units_per_pack;
    bool used;
} skumap__slot;

struct sf_sku_map {
    skumap__slot *slots;
    size_t cap, n; /* cap is a power of two */
};

static uint64_t skumap__hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

sf_status sf_sku_map_new(sf_sku_map **out, sf_error *err)
{
    sf_sku_map *m = calloc(1, sizeof *m);
    if (m) {
        m->cap = 64;
        m->slots = calloc(m->cap, sizeof *m->slots);
    }
    if (!m || !m->slots) {
        free(m);
        *out = NULL;
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    }
    *out = m;
    return SF_OK;
}

static skumap__slot *skumap__probe(skumap__slot *slots, size_t cap, const char *theirs)
{
    size_t i = (size_t)skumap__hash(theirs) & (cap - 1);
    while (slots[i].used && strcmp(slots[i].theirs, theirs))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static sf_status skumap__grow(sf_sku_map *m, sf_error *err)
{
    if (m->cap > SIZE_MAX / 2 / sizeof *m->slots)
        return SF_ERR(err, SF_ENOMEM, "sku map too large");
    size_t cap = m->cap * 2;
    skumap__slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].used)
            *skumap__probe(slots, cap, m->slots[i].theirs) = m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return SF_OK;
}

sf_status sf_sku_map_add(sf_sku_map *m, const char *theirs, const char *ours,
                         int64_t units_per_pack, sf_error *err)
{
    if (units_per_pack < 1)
        return SF_ERR(err, SF_EINVAL, "units per pack %" PRId64 " for '%s' is below 1",
                      units_per_pack, theirs);
    if ((m->n + 1) * 2 > m->cap) {
        sf_status st = skumap__grow(m, err);
        if (st)
            return st;
    }
    skumap__slot *s = skumap__probe(m->slots, m->cap, theirs);
    sf_status st = sf_event_set_str(s->theirs, theirs, strlen(theirs), "supplier sku", err);
    if (!st)
        st = sf_event_set_str(s->ours, ours, strlen(ours), "sku", err);
    if (st) {
        s->used = false;
        return st;
    }
    if (!s->used)
        m->n++;
    s->used = true;
    s->units_per_pack = units_per_pack;
    return SF_OK;
}

const char *sf_sku_map_find(const sf_sku_map *m, const char *theirs, int64_t *units_per_pack)
{
    const skumap__slot *s = skumap__probe(m->slots, m->cap, theirs);
    if (!s->used)
        return NULL;
    if (units_per_pack)
        *units_per_pack = s->units_per_pack;
    return s->ours;
}

size_t sf_sku_map_size(const sf_sku_map *m)
{
    return m->n;
}

void sf_sku_map_free(sf_sku_map *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m);
}

sf_status sf_sku_map_load(PGconn *conn, const char *supplier, sf_sku_map **out, sf_error *err)
{
    *out = NULL;
    const char *params[1] = {supplier};
    PGresult *res = NULL;
    sf_status st = sf_db_query(conn,
                               "SELECT supplier_sku, sku, units_per_pack FROM supplier_sku_map "
                               "WHERE supplier = $1",
                               1, params, &res, err);
    if (st)
        return st;
    sf_sku_map *m = NULL;
    st = sf_sku_map_new(&m, err);
    for (int i = 0; !st && i < PQntuples(res); i++)
        st = sf_sku_map_add(m, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                            strtoll(PQgetvalue(res, i, 2), NULL, 10), err);
    PQclear(res);
    if (st) {
        sf_sku_map_free(m);
        return st;
    }
    *out = m;
    return SF_OK;
}

/* Units of ours in one of theirs for a unit code; 0 = not a count unit. */
static int64_t map__per_unit(const char *uom, int64_t units_per_pack)
{
    static const char *const each[] = {"", "EA", "EACH", "UN", "UNIT", "PC", "PCS"};
    static const char *const pack[] = {"CA", "CS", "BX", "PK", "PKG", "CT", "CTN"};
    for (size_t i = 0; i < sizeof each / sizeof each[0]; i++)
        if (!strcasecmp(uom, each[i]))
            return 1;
    for (size_t i = 0; i < sizeof pack / sizeof pack[0]; i++)
        if (!strcasecmp(uom, pack[i]))
            return units_per_pack;
    if (!strcasecmp(uom, "DZ"))
        return 12;
    return 0;
}

sf_status sf_supplier_map_row(const sf_supplier *sup, const sf_sku_map *map,
                              const sf_supplier_row *row, const char *digest, int64_t read_at_ms,
                              sf_event *out, sf_error *err)
{
    sf_event_init(out);
    out->kind = row->kind;

    int64_t upp = sup->units_per_pack;
    const char *sku = row->item;
    if (!sup->sku_identity) {
        if (!map || !(sku = sf_sku_map_find(map, row->item, &upp)))
            return SF_ERR(err, SF_EINVAL,
                          "field sku: supplier sku '%s' is not in supplier_sku_map for %s "
                          "(invctl supplier-map import)",
                          row->item, sup->id);
    }
    sf_status st = sf_event_set_str(out->sku, sku, strlen(sku), "sku", err);
    if (st)
        return st;

    const char *loc = sup->location;
    if (row->location[0] && !(loc = sf_supplier_location(sup, row->location)))
        return SF_ERR(err, SF_EINVAL,
                      "field location: their location '%s' is not in location_map of %s",
                      row->location, sup->id);
    if (!loc[0])
        return SF_ERR(err, SF_EINVAL,
                      "field location: the row names no location and %s has no default", sup->id);
    snprintf(out->location, sizeof out->location, "%s", loc);

    int64_t per = map__per_unit(row->uom, upp);
    if (per == 0)
        return SF_ERR(err, SF_EINVAL, "field uom: '%s' is not a count unit", row->uom);
    int64_t scale = 1;
    for (int i = 0; i < row->qty.scale; i++)
        scale *= 10;
    int64_t units;
    if (__builtin_mul_overflow(row->qty.units, per, &units))
        return SF_ERR(err, SF_EINVAL, "field qty: too large");
    if (units % scale != 0)
        return SF_ERR(err, SF_EINVAL,
                      "field qty: %" PRId64 "/%" PRId64 " %s x %" PRId64
                      " is not a whole number of units",
                      row->qty.units, scale, row->uom[0] ? row->uom : "EA", per);
    out->qty = units / scale;

    out->occurred_at = row->occurred_at ? row->occurred_at : read_at_ms;
    snprintf(out->source, sizeof out->source, "%s", sup->id);
    if (row->ref[0]) {
        out->has_ref = true;
        snprintf(out->ref, sizeof out->ref, "%s", row->ref);
    }
    char ordinal[24];
    snprintf(ordinal, sizeof ordinal, "%" PRIu64, row->ordinal);
    const char *parts[3] = {sup->id, digest, ordinal};
    char hex[41];
    sf_sha256_hex_joined(parts, 3, 40, hex);
    if (!hex[0])
        return SF_ERR(err, SF_EINTERNAL, "cannot hash the event id");
    snprintf(out->event_id, sizeof out->event_id, "sup-%s", hex);
    /* Times were checked against the read time by the adapter; allow no
     * future beyond it here either. */
    return sf_event_validate(out, read_at_ms, 0, err);
}
