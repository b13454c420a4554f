/*
 * supplier_config: one pass over the config's generic entries finds the
 * supplier sections in file order; each is then parsed key by key. The
 * adapter parses its own keys (configure); this module checks that every
 * key of the section belongs to someone.
 */
#include "supplier_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapter_util.h"

static const char *const supplier__keys[] = {
    "format", "location", "location_map", "sku_map", "timezone", "units_per_pack", NULL};
static const char *const supplier__http_keys[] = {"body_format", NULL};

static const sf_adapter_ops *const supplier__formats[] = {&sf_adapter_csv, &sf_adapter_jsonl,
                                                          &sf_adapter_x12_846, &sf_adapter_x12_856};

const sf_adapter_ops *sf_adapter_find(const char *format)
{
    for (size_t i = 0; i < sizeof supplier__formats / sizeof supplier__formats[0]; i++)
        if (!strcmp(supplier__formats[i]->format, format))
            return supplier__formats[i];
    return NULL;
}

static bool supplier__in(const char *const *keys, const char *key)
{
    for (; keys && *keys; keys++)
        if (!strcmp(*keys, key))
            return true;
    return false;
}

/* "UTC", "Z", "+HH:MM", "-HH:MM", "+HHMM": seconds east of UTC. */
static bool supplier__tz(const char *s, int32_t *out)
{
    if (!strcasecmp(s, "UTC") || !strcmp(s, "Z")) {
        *out = 0;
        return true;
    }
    if ((s[0] != '+' && s[0] != '-') || strlen(s) < 5)
        return false;
    int hh, mm;
    char tail;
    if (sscanf(s + 1, "%2d:%2d%c", &hh, &mm, &tail) != 2 &&
        sscanf(s + 1, "%2d%2d%c", &hh, &mm, &tail) != 2)
        return false;
    if (hh > 14 || mm > 59 || hh < 0 || mm < 0)
        return false;
    *out = (int32_t)((hh * 60 + mm) * 60 * (s[0] == '-' ? -1 : 1));
    return true;
}

static sf_status supplier__location_map(const sf_config *cfg, sf_supplier *sup, const char *value,
                                        sf_error *err)
{
    sf_adapter_pair pairs[SF_LOCATION_MAP_MAX];
    size_t n = 0;
    sf_error why;
    if (sf_adapter_pairs_parse(value, pairs, SF_LOCATION_MAP_MAX, &n, &why))
        return SF_ADAPTER_CFG_ERR(err, cfg, sup->section, "location_map", "%s", why.msg);
    for (size_t i = 0; i < n; i++) {
        sf_location_pair *p = &sup->location_map[i];
        if (sf_event_set_str(p->theirs, pairs[i].name, strlen(pairs[i].name), "their location",
                             &why) ||
            sf_event_set_str(p->ours, pairs[i].value, strlen(pairs[i].value), "our location", &why))
            return SF_ADAPTER_CFG_ERR(err, cfg, sup->section, "location_map", "%s", why.msg);
        if (!sf_is_token(p->ours))
            return SF_ADAPTER_CFG_ERR(err, cfg, sup->section, "location_map",
                                      "'%s' is not a location id (A-Z a-z 0-9 _ -)", p->ours);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(sup->location_map[j].theirs, p->theirs))
                return SF_ADAPTER_CFG_ERR(err, cfg, sup->section, "location_map",
                                          "'%s' is mapped twice", p->theirs);
    }
    sup->n_location_map = n;
    return SF_OK;
}

static sf_status supplier__parse(const sf_config *cfg, sf_supplier *sup, sf_error *err)
{
    const char *sec = sup->section;
    const char *format = sf_config_get(cfg, sec, "format");
    if (!format) { /* cite the section's first line: that is where it is missing */
        int line = 0;
        for (size_t i = 0; i < cfg->n_entries && !line; i++)
            if (!strcmp(cfg->entries[i].section, sec))
                line = cfg->entries[i].line;
        return SF_ERR(err, SF_EINVAL,
                      "%s:%d: [%s] format: missing (csv, jsonl, x12-846, x12-856 or http)",
                      cfg->path, line, sec);
    }
    snprintf(sup->format, sizeof sup->format, "%s", format);
    const char *const *http_keys = NULL;
    if (!strcmp(format, "http")) {
        sup->http = true;
        const char *body = sf_config_get(cfg, sec, "body_format");
        if (!body)
            body = "jsonl";
        if (strcmp(body, "jsonl") && strcmp(body, "csv"))
            return SF_ADAPTER_CFG_ERR(err, cfg, sec, "body_format", "'%s' is not jsonl or csv",
                                      body);
        sup->adapter = sf_adapter_find(body);
        http_keys = sf_http_poll_keys;
        sf_status st = sf_http_poll_configure(cfg, sec, &sup->poll, err);
        if (st)
            return st;
    } else if (!(sup->adapter = sf_adapter_find(format))) {
        return SF_ADAPTER_CFG_ERR(err, cfg, sec, "format",
                                  "'%s' is not csv, jsonl, x12-846, x12-856 or http", format);
    }

    /* Every key must belong to someone. */
    for (size_t i = 0; i < cfg->n_entries; i++) {
        const sf_config_entry *e = &cfg->entries[i];
        if (strcmp(e->section, sec))
            continue;
        if (!supplier__in(supplier__keys, e->key) && !supplier__in(sup->adapter->keys, e->key) &&
            !(sup->http &&
              (supplier__in(supplier__http_keys, e->key) || supplier__in(http_keys, e->key))))
            return SF_ADAPTER_CFG_ERR(err, cfg, sec, e->key, "unknown key for format %s",
                                      sup->format);
    }

    const char *v;
    sf_error why;
    if ((v = sf_config_get(cfg, sec, "location"))) {
        if (sf_event_set_str(sup->location, v, strlen(v), "location", &why))
            return SF_ADAPTER_CFG_ERR(err, cfg, sec, "location", "%s", why.msg);
        if (!sf_is_token(sup->location))
            return SF_ADAPTER_CFG_ERR(err, cfg, sec, "location",
                                      "'%s' is not a location id (A-Z a-z 0-9 _ -)", v);
    }
    if ((v = sf_config_get(cfg, sec, "location_map"))) {
        sf_status st = supplier__location_map(cfg, sup, v, err);
        if (st)
            return st;
    }
    v = sf_config_get(cfg, sec, "sku_map");
    if (!v || !strcmp(v, "table"))
        sup->sku_identity = false;
    else if (!strcmp(v, "identity"))
        sup->sku_identity = true;
    else
        return SF_ADAPTER_CFG_ERR(err, cfg, sec, "sku_map", "'%s' is not table or identity", v);
    sup->units_per_pack = 1;
    if ((v = sf_config_get(cfg, sec, "units_per_pack"))) {
        char *end;
        long long u = strtoll(v, &end, 10);
        if (*end || end == v || u < 1 || u > 1000000)
            return SF_ADAPTER_CFG_ERR(err, cfg, sec, "units_per_pack",
                                      "'%s' is not a whole number 1..1000000", v);
        sup->units_per_pack = u;
    }
    if ((v = sf_config_get(cfg, sec, "timezone")) && !supplier__tz(v, &sup->tz_offset_s))
        return SF_ADAPTER_CFG_ERR(err, cfg, sec, "timezone",
                                  "'%s' is not UTC, +HH:MM or -HH:MM (named zones are not "
                                  "supported: give the offset)",
                                  v);
    return sup->adapter->configure(cfg, sec, &sup->adapter_opts, err);
}

sf_status sf_suppliers_load(const sf_config *cfg, sf_suppliers *out, sf_error *err)
{
    static const char prefix[] = "supplier.";
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < cfg->n_entries; i++) {
        const sf_config_entry *e = &cfg->entries[i];
        if (strncmp(e->section, prefix, sizeof prefix - 1))
            continue;
        const char *id = e->section + sizeof prefix - 1;
        if (sf_suppliers_find(out, id))
            continue;
        if (!sf_is_token(id) || strlen(id) > SF_STR_MAX) {
            sf_suppliers_free(out);
            return SF_ADAPTER_CFG_ERR(err, cfg, e->section, e->key,
                                      "supplier id '%s' must be 1..64 of A-Z a-z 0-9 _ -", id);
        }
        if (out->n == SF_SUPPLIERS_MAX) {
            sf_suppliers_free(out);
            return SF_ADAPTER_CFG_ERR(err, cfg, e->section, e->key, "more than %d suppliers",
                                      SF_SUPPLIERS_MAX);
        }
        sf_supplier *items = realloc(out->items, (out->n + 1) * sizeof *items);
        if (!items) {
            sf_suppliers_free(out);
            return SF_ERR(err, SF_ENOMEM, "out of memory");
        }
        out->items = items;
        sf_supplier *sup = &out->items[out->n++];
        memset(sup, 0, sizeof *sup);
        snprintf(sup->id, sizeof sup->id, "%s", id);
        snprintf(sup->section, sizeof sup->section, "%s", e->section);
        sf_status st = supplier__parse(cfg, sup, err);
        if (st) {
            sf_suppliers_free(out);
            return st;
        }
    }
    return SF_OK;
}

const sf_supplier *sf_suppliers_find(const sf_suppliers *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->items[i].id, id))
            return &s->items[i];
    return NULL;
}

const char *sf_supplier_location(const sf_supplier *sup, const char *theirs)
{
    for (size_t i = 0; i < sup->n_location_map; i++)
        if (!strcmp(sup->location_map[i].theirs, theirs))
            return sup->location_map[i].ours;
    return NULL;
}

void sf_suppliers_free(sf_suppliers *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->items[i].adapter && s->items[i].adapter_opts)
            s->items[i].adapter->free_opts(s->items[i].adapter_opts);
    free(s->items);
    s->items = NULL;
    s->n = 0;
}
