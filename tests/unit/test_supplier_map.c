/*
 * test_supplier_map: [supplier.<id>] sections -> sf_supplier (every key
 * claimed, clear path:line errors), and a supplier row -> our event: SKU
 * table and identity, location map and default, units (EA, packs, DZ,
 * non-count units), whole-unit rule, deterministic ids.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../suppliers/supplier_config.h"
#include "../../suppliers/supplier_map.h"
#include "leak_guard.h"

#define READ_AT INT64_C(1795179600000)
#define DIGEST "0f0e0d0c0b0a09080706050403020100ffeeddccbbaa99887766554433221100"

static char ini_path[64];

static void load(const char *text, sf_config *cfg)
{
    snprintf(ini_path, sizeof ini_path, "/tmp/sf-supmap-XXXXXX");
    int fd = mkstemp(ini_path);
    cr_assert(fd >= 0);
    cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    sf_config_init(cfg);
    sf_error err;
    cr_assert(sf_config_load(cfg, ini_path, &err) == SF_OK, "%s", err.msg);
    unlink(ini_path);
}

static void expect_load_error(const char *text, const char *suffix)
{
    sf_config cfg;
    load(text, &cfg);
    sf_suppliers sups;
    sf_error err;
    cr_assert(sf_suppliers_load(&cfg, &sups, &err) == SF_EINVAL, "accepted: %s", text);
    char want[SF_ERROR_MSG_MAX];
    snprintf(want, sizeof want, "%s:%s", ini_path, suffix);
    cr_assert(strcmp(err.msg, want) == 0, "\n  got:  %s\n  want: %s", err.msg, want);
    sf_config_free(&cfg);
}

LEAK_TEST(supplier_config, unknown_and_bad_keys_name_path_and_line)
{
    expect_load_error("[supplier.acme]\nformat = x12-846\nlocaton = DC-1\n",
                      "3: [supplier.acme] locaton: unknown key for format x12-846");
    expect_load_error("[supplier.acme]\nformat = edifact\n",
                      "2: [supplier.acme] format: 'edifact' is not csv, jsonl, x12-846, x12-856 "
                      "or http");
    expect_load_error("[supplier.acme]\nlocation = DC-1\n",
                      "2: [supplier.acme] format: missing (csv, jsonl, x12-846, x12-856 or http)");
    expect_load_error("[supplier.acme]\nformat = csv\ncolumns = sku=A, qty=B\ntimezone = "
                      "Europe/Paris\n",
                      "4: [supplier.acme] timezone: 'Europe/Paris' is not UTC, +HH:MM or -HH:MM "
                      "(named zones are not supported: give the offset)");
    expect_load_error("[supplier.acme]\nformat = x12-846\nlocation_map = 01=A, 01=B\n",
                      "3: [supplier.acme] location_map: '01' is mapped twice");
    expect_load_error("[supplier.acme]\nformat = x12-846\nlocation_map = 01=DC 1\n",
                      "3: [supplier.acme] location_map: 'DC 1' is not a location id "
                      "(A-Z a-z 0-9 _ -)");
    expect_load_error("[supplier.acme]\nformat = x12-846\nsku_map = guess\n",
                      "3: [supplier.acme] sku_map: 'guess' is not table or identity");
    expect_load_error("[supplier.acme]\nformat = x12-846\nunits_per_pack = 0\n",
                      "3: [supplier.acme] units_per_pack: '0' is not a whole number 1..1000000");
    /* An http key on a file format is unknown too. */
    expect_load_error("[supplier.acme]\nformat = x12-846\nurl = http://x/\n",
                      "3: [supplier.acme] url: unknown key for format x12-846");
}

LEAK_TEST(supplier_config, sections_parse_in_file_order)
{
    sf_config cfg;
    load("[supplier.acme]\nformat = x12-846\nlocation_map = 0001=DC-EAST, 0002=STORE-NYC\n"
         "timezone = -05:00\n"
         "[supplier.umb]\nformat = http\nurl = http://127.0.0.1:1/feed\nfields = sku=/id, qty=/q\n"
         "sku_map = identity\nunits_per_pack = 6\nlocation = DC-EAST\n",
         &cfg);
    sf_suppliers sups;
    sf_error err;
    cr_assert(sf_suppliers_load(&cfg, &sups, &err) == SF_OK, "%s", err.msg);
    cr_assert_eq(sups.n, 2);
    const sf_supplier *a = sf_suppliers_find(&sups, "acme");
    cr_assert(a && a->adapter == &sf_adapter_x12_846 && !a->http && !a->sku_identity);
    cr_assert_eq(a->tz_offset_s, -5 * 3600);
    cr_assert(!strcmp(sf_supplier_location(a, "0002"), "STORE-NYC"));
    cr_assert_null(sf_supplier_location(a, "0003"));
    const sf_supplier *u = sf_suppliers_find(&sups, "umb");
    cr_assert(u && u->http && u->adapter == &sf_adapter_jsonl && u->sku_identity);
    cr_assert_eq(u->units_per_pack, 6);
    cr_assert(!strcmp(u->location, "DC-EAST"));
    cr_assert_null(sf_suppliers_find(&sups, "nobody"));
    sf_suppliers_free(&sups);
    sf_config_free(&cfg);
}

/* ---- mapping --------------------------------------------------------------- */

static sf_supplier sup_table(void)
{
    sf_supplier s;
    memset(&s, 0, sizeof s);
    snprintf(s.id, sizeof s.id, "acme");
    snprintf(s.location, sizeof s.location, "DC-EAST");
    snprintf(s.location_map[0].theirs, sizeof s.location_map[0].theirs, "0002");
    snprintf(s.location_map[0].ours, sizeof s.location_map[0].ours, "STORE-NYC");
    s.n_location_map = 1;
    s.units_per_pack = 1;
    return s;
}

static sf_supplier_row row(const char *item, const char *loc, int64_t units, int scale,
                           const char *uom)
{
    sf_supplier_row r;
    memset(&r, 0, sizeof r);
    r.ordinal = 7;
    r.ok = true;
    r.kind = SF_KIND_COUNT;
    snprintf(r.item, sizeof r.item, "%s", item);
    snprintf(r.location, sizeof r.location, "%s", loc);
    r.qty.units = units;
    r.qty.scale = scale;
    snprintf(r.uom, sizeof r.uom, "%s", uom);
    return r;
}

static sf_sku_map *map_new(void)
{
    sf_sku_map *m = NULL;
    sf_error err;
    cr_assert(sf_sku_map_new(&m, &err) == SF_OK);
    cr_assert(sf_sku_map_add(m, "AC-1", "WIDGET", 12, &err) == SF_OK);
    cr_assert(sf_sku_map_add(m, "AC-2", "GADGET", 1, &err) == SF_OK);
    return m;
}

static void expect_reject(const sf_supplier *s, const sf_sku_map *m, sf_supplier_row r,
                          const char *want)
{
    sf_event ev;
    sf_error err;
    cr_assert(sf_supplier_map_row(s, m, &r, DIGEST, READ_AT, &ev, &err) == SF_EINVAL, "accepted %s",
              r.item);
    cr_assert(strstr(err.msg, want), "\n  got:  %s\n  want: %s", err.msg, want);
}

LEAK_TEST(supplier_map, maps_sku_location_units_and_id)
{
    sf_supplier s = sup_table();
    sf_sku_map *m = map_new();
    sf_event ev;
    sf_error err;
    sf_supplier_row r = row("AC-1", "0002", 25, 1, "CA"); /* 2.5 cases of 12 */
    r.occurred_at = READ_AT - 1000;
    snprintf(r.ref, sizeof r.ref, "SHP-1");
    cr_assert(sf_supplier_map_row(&s, m, &r, DIGEST, READ_AT, &ev, &err) == SF_OK, "%s", err.msg);
    cr_assert(!strcmp(ev.sku, "WIDGET") && !strcmp(ev.location, "STORE-NYC"));
    cr_assert_eq(ev.qty, 30);
    cr_assert_eq(ev.kind, SF_KIND_COUNT);
    cr_assert_eq(ev.occurred_at, READ_AT - 1000);
    cr_assert(!strcmp(ev.source, "acme") && ev.has_ref && !strcmp(ev.ref, "SHP-1"));
    /* sup- + 40 hex of SHA-256("acme" 0x1F digest 0x1F "7"). */
    const char *parts[3] = {"acme", DIGEST, "7"};
    char hex[41];
    sf_sha256_hex_joined(parts, 3, 40, hex);
    char want[64];
    snprintf(want, sizeof want, "sup-%s", hex);
    cr_assert(!strcmp(ev.event_id, want), "%s", ev.event_id);

    /* No location: the default; no time: the read time; EA, DZ, none. */
    r = row("AC-2", "", 3, 0, "");
    cr_assert(sf_supplier_map_row(&s, m, &r, DIGEST, READ_AT, &ev, &err) == SF_OK, "%s", err.msg);
    cr_assert(!strcmp(ev.location, "DC-EAST") && ev.qty == 3 && ev.occurred_at == READ_AT);
    r = row("AC-2", "", 2, 0, "DZ");
    cr_assert(sf_supplier_map_row(&s, m, &r, DIGEST, READ_AT, &ev, &err) == SF_OK);
    cr_assert_eq(ev.qty, 24);
    r = row("AC-2", "", 5, 0, "ea");
    cr_assert(sf_supplier_map_row(&s, m, &r, DIGEST, READ_AT, &ev, &err) == SF_OK);
    cr_assert_eq(ev.qty, 5);
    sf_sku_map_free(m);
}

LEAK_TEST(supplier_map, rejects_what_it_cannot_map_exactly)
{
    sf_supplier s = sup_table();
    sf_sku_map *m = map_new();
    expect_reject(&s, m, row("AC-9", "", 1, 0, "EA"),
                  "field sku: supplier sku 'AC-9' is not in supplier_sku_map for acme");
    expect_reject(&s, m, row("AC-1", "0009", 1, 0, "EA"),
                  "field location: their location '0009' is not in location_map of acme");
    expect_reject(&s, m, row("AC-1", "", 3, 0, "LB"), "field uom: 'LB' is not a count unit");
    expect_reject(&s, m, row("AC-2", "", 25, 1, "EA"),
                  "field qty: 25/10 EA x 1 is not a whole number of units");
    expect_reject(&s, m, row("AC-1", "", INT64_MAX / 2, 0, "CA"), "field qty: too large");
    sf_supplier_row late = row("AC-2", "", 1, 0, "EA");
    late.occurred_at = READ_AT + 1;
    expect_reject(&s, m, late, "occurred_at");
    sf_supplier nodefault = sup_table();
    nodefault.location[0] = '\0';
    expect_reject(&nodefault, m, row("AC-2", "", 1, 0, "EA"),
                  "field location: the row names no location and acme has no default");
    /* Identity: their SKU is ours, packs use the supplier's units_per_pack. */
    sf_supplier id = sup_table();
    id.sku_identity = true;
    id.units_per_pack = 6;
    sf_event ev;
    sf_error err;
    sf_supplier_row r = row("UMB-1", "", 4, 0, "CA");
    cr_assert(sf_supplier_map_row(&id, NULL, &r, DIGEST, READ_AT, &ev, &err) == SF_OK, "%s",
              err.msg);
    cr_assert(!strcmp(ev.sku, "UMB-1") && ev.qty == 24);
    sf_sku_map_free(m);
}

LEAK_TEST(supplier_map, table_grows_and_replaces)
{
    sf_sku_map *m = NULL;
    sf_error err;
    cr_assert(sf_sku_map_new(&m, &err) == SF_OK);
    char theirs[32], ours[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(theirs, sizeof theirs, "T-%d", i);
        snprintf(ours, sizeof ours, "O-%d", i);
        cr_assert(sf_sku_map_add(m, theirs, ours, 1 + i % 7, &err) == SF_OK);
    }
    cr_assert(sf_sku_map_add(m, "T-42", "NEW", 3, &err) == SF_OK);
    cr_assert_eq(sf_sku_map_size(m), 5000);
    int64_t upp = 0;
    cr_assert(!strcmp(sf_sku_map_find(m, "T-42", &upp), "NEW") && upp == 3);
    cr_assert(!strcmp(sf_sku_map_find(m, "T-4999", &upp), "O-4999") && upp == 1 + 4999 % 7);
    cr_assert_null(sf_sku_map_find(m, "T-5000", NULL));
    cr_assert(sf_sku_map_add(m, "T-1", "X", 0, &err) == SF_EINVAL);
    sf_sku_map_free(m);
}
