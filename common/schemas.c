/*
 * schemas: the shipped schema texts and their table. The one rule: each
 * literal is its file under schemas/ byte for byte (the unit test compares
 * them), because the fingerprint of a text is its identity on the wire.
 */
#include "schemas.h"

#include <string.h>

/* schemas/inventory_event.v1.avsc, byte for byte (tests/unit/test_schemas.c checks). */
static const char schemas__inventory_event_v1[] =
    "{\"type\":\"record\",\"name\":\"InventoryEvent\",\"namespace\":\"stockflow\",\"fields\":[\n"
    " {\"name\":\"event_id\",\"type\":\"string\"},\n"
    " {\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\",\"symbols\":[\"SALE\","
    "\"RETURN\",\n"
    "  "
    "\"RECEIPT\",\"ASN\",\"COUNT\",\"ADJUST\",\"TRANSFER_OUT\",\"TRANSFER_IN\",\"RESERVE\","
    "\"RELEASE\"]}},\n"
    " {\"name\":\"sku\",\"type\":\"string\"},{\"name\":\"location\",\"type\":\"string\"},\n"
    " {\"name\":\"qty\",\"type\":\"long\"},\n"
    " {\"name\":\"occurred_at\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
    "\n"
    " {\"name\":\"source\",\"type\":\"string\"},\n"
    " {\"name\":\"channel\",\"type\":[\"null\",\"string\"],\"default\":null},\n"
    " {\"name\":\"ref\",\"type\":[\"null\",\"string\"],\"default\":null},\n"
    " {\"name\":\"condition\",\"type\":[\"null\",{\"type\":\"enum\",\"name\":\"Condition\",\n"
    "  \"symbols\":[\"RESELLABLE\",\"DAMAGED\"]}],\"default\":null},\n"
    " {\"name\":\"expires_at\",\"type\":[\"null\",{\"type\":\"long\",\"logicalType\":\"timestamp-"
    "millis\"}],\n"
    "  \"default\":null}]}\n";

/* schemas/inventory_event.v2.avsc, byte for byte (tests/unit/test_schemas.c checks). */
static const char schemas__inventory_event_v2[] =
    "{\"type\":\"record\",\"name\":\"InventoryEvent\",\"namespace\":\"stockflow\",\"fields\":[\n"
    " {\"name\":\"event_id\",\"type\":\"string\"},\n"
    " {\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\",\"symbols\":[\"SALE\","
    "\"RETURN\",\n"
    "  "
    "\"RECEIPT\",\"ASN\",\"COUNT\",\"ADJUST\",\"TRANSFER_OUT\",\"TRANSFER_IN\",\"RESERVE\","
    "\"RELEASE\"]}},\n"
    " {\"name\":\"sku\",\"type\":\"string\"},{\"name\":\"location\",\"type\":\"string\"},\n"
    " {\"name\":\"qty\",\"type\":\"long\"},\n"
    " {\"name\":\"occurred_at\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
    "\n"
    " {\"name\":\"source\",\"type\":\"string\"},\n"
    " {\"name\":\"channel\",\"type\":[\"null\",\"string\"],\"default\":null},\n"
    " {\"name\":\"ref\",\"type\":[\"null\",\"string\"],\"default\":null},\n"
    " {\"name\":\"condition\",\"type\":[\"null\",{\"type\":\"enum\",\"name\":\"Condition\",\n"
    "  \"symbols\":[\"RESELLABLE\",\"DAMAGED\"]}],\"default\":null},\n"
    " {\"name\":\"expires_at\",\"type\":[\"null\",{\"type\":\"long\",\"logicalType\":\"timestamp-"
    "millis\"}],\n"
    "  \"default\":null},\n"
    " {\"name\":\"unit\",\"type\":\"string\",\"default\":\"EA\"}]}\n";

/* schemas/channel_stock.v1.avsc, byte for byte (tests/unit/test_schemas.c checks). */
static const char schemas__channel_stock_v1[] =
    "{\"type\":\"record\",\"name\":\"ChannelStock\",\"namespace\":\"stockflow\",\"fields\":[\n"
    " {\"name\":\"channel\",\"type\":\"string\"},\n"
    " {\"name\":\"sku\",\"type\":\"string\"},\n"
    " {\"name\":\"ats\",\"type\":\"long\"},\n"
    " {\"name\":\"version\",\"type\":\"long\"},\n"
    " {\"name\":\"computed_at\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}}]"
    "}\n";

static const sf_schema_def schemas__table[] = {
    {SF_SCHEMA_INVENTORY_EVENT, 1, "schemas/inventory_event.v1.avsc", schemas__inventory_event_v1,
     sizeof schemas__inventory_event_v1 - 1},
    {SF_SCHEMA_INVENTORY_EVENT, 2, "schemas/inventory_event.v2.avsc", schemas__inventory_event_v2,
     sizeof schemas__inventory_event_v2 - 1},
    {SF_SCHEMA_CHANNEL_STOCK, 1, "schemas/channel_stock.v1.avsc", schemas__channel_stock_v1,
     sizeof schemas__channel_stock_v1 - 1},
};

size_t sf_schemas_count(void)
{
    return sizeof schemas__table / sizeof schemas__table[0];
}

const sf_schema_def *sf_schemas_at(size_t i)
{
    return i < sf_schemas_count() ? &schemas__table[i] : NULL;
}

const sf_schema_def *sf_schemas_find(const char *name, int version)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sf_schemas_count(); i++)
        if (schemas__table[i].version == version && strcmp(schemas__table[i].name, name) == 0)
            return &schemas__table[i];
    return NULL;
}
