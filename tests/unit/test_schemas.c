/*
 * The embedded schema texts are their files under schemas/, byte for byte
 * (tests run from the repository root), and the table finds them.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_pcf.h"
#include "schemas.h"
#include "leak_guard.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    cr_assert_not_null(p);
    cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return p;
}

LEAK_TEST(schemas, embedded_texts_equal_their_files)
{
    cr_assert_eq(sf_schemas_count(), 3);
    for (size_t i = 0; i < sf_schemas_count(); i++) {
        const sf_schema_def *d = sf_schemas_at(i);
        size_t len = 0;
        char *file = slurp(d->path, &len);
        cr_assert_not_null(file, "cannot open %s (tests run from the repository root)", d->path);
        cr_assert_eq(d->len, strlen(d->json), "%s: len field", d->path);
        cr_assert_eq(d->len, len, "%s: embedded %zu bytes, file %zu", d->path, d->len, len);
        cr_assert(memcmp(d->json, file, len) == 0, "%s: embedded text differs from the file",
                  d->path);
        free(file);
    }
    cr_assert_null(sf_schemas_at(sf_schemas_count()));
}

LEAK_TEST(schemas, table_finds_by_name_and_version)
{
    const sf_schema_def *v1 = sf_schemas_find(SF_SCHEMA_INVENTORY_EVENT, 1);
    const sf_schema_def *v2 = sf_schemas_find(SF_SCHEMA_INVENTORY_EVENT, 2);
    const sf_schema_def *cs = sf_schemas_find(SF_SCHEMA_CHANNEL_STOCK, 1);
    cr_assert_not_null(v1);
    cr_assert_not_null(v2);
    cr_assert_not_null(cs);
    cr_assert(strcmp(v1->path, "schemas/inventory_event.v1.avsc") == 0);
    cr_assert(strcmp(v2->path, "schemas/inventory_event.v2.avsc") == 0);
    cr_assert(strcmp(cs->path, "schemas/channel_stock.v1.avsc") == 0);
    cr_assert_null(sf_schemas_find(SF_SCHEMA_INVENTORY_EVENT, 3));
    cr_assert_null(sf_schemas_find("InventoryEvent", 1)); /* full names only */
    cr_assert_null(sf_schemas_find(NULL, 1));
}

LEAK_TEST(schemas, fingerprints_are_distinct_and_v1_is_the_contract)
{
    uint64_t fps[8];
    size_t n = sf_schemas_count();
    cr_assert_leq(n, 8);
    for (size_t i = 0; i < n; i++) {
        sf_error err;
        const sf_schema_def *d = sf_schemas_at(i);
        cr_assert_eq(sf_avro_fingerprint(d->json, d->len, &fps[i], &err), SF_OK, "%s: %s", d->path,
                     err.msg);
        for (size_t j = 0; j < i; j++)
            cr_assert_neq(fps[i], fps[j]);
    }
    uint64_t fp = 0;
    const sf_schema_def *v1 = sf_schemas_find(SF_SCHEMA_INVENTORY_EVENT, 1);
    cr_assert_eq(sf_avro_fingerprint(v1->json, v1->len, &fp, NULL), SF_OK);
    cr_assert_eq(fp, UINT64_C(0x42eccc0aaba12f73));
}
