/*
 * Schema evolution through the codec: InventoryEvent v1 <-> v2 both ways,
 * and the general resolver on probe schemas that cover every default type,
 * promotions, enum defaults, dropped fields and the failures (missing
 * field without default, unknown symbol, a default that does not fit).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "leak_guard.h"

#ifdef LEAK_GUARD_LSAN
/* avro-c puts a generic value 4 bytes into its allocation (after a
 * refcount), so every pointer inside a live value is misaligned and
 * LeakSanitizer's default scan misses it: the codec's reusable values would
 * be reported as leaks while the codec is alive. Scan unaligned words. */
const char *__lsan_default_options(void)
{
    return "use_unaligned=1";
}
#endif

/* Writer v1 of the probe: what the reader versions below evolve from. */
#define PROBE_V1                                                                                   \
    "{\"type\":\"record\",\"name\":\"Probe\",\"namespace\":\"test\",\"fields\":["                  \
    "{\"name\":\"id\",\"type\":\"int\"},"                                                          \
    "{\"name\":\"color\",\"type\":{\"type\":\"enum\",\"name\":\"Color\","                          \
    "\"symbols\":[\"RED\",\"GREEN\",\"BLUE\"]}},"                                                  \
    "{\"name\":\"gone\",\"type\":\"string\"}]}"

/* Reader v2: id promoted to long, a reordered enum with a default symbol,
 * `gone` dropped, and one added field per type, each with a default. */
#define PROBE_V2                                                                                   \
    "{\"type\":\"record\",\"name\":\"Probe\",\"namespace\":\"test\",\"fields\":["                  \
    "{\"name\":\"id\",\"type\":\"long\"},"                                                         \
    "{\"name\":\"color\",\"type\":{\"type\":\"enum\",\"name\":\"Color\","                          \
    "\"symbols\":[\"GREEN\",\"RED\",\"OTHER\"],\"default\":\"OTHER\"}},"                           \
    "{\"name\":\"n\",\"type\":\"null\",\"default\":null},"                                         \
    "{\"name\":\"b\",\"type\":\"boolean\",\"default\":true},"                                      \
    "{\"name\":\"i\",\"type\":\"int\",\"default\":-7},"                                            \
    "{\"name\":\"l\",\"type\":\"long\",\"default\":9007199254740993},"                             \
    "{\"name\":\"f\",\"type\":\"float\",\"default\":1.5},"                                         \
    "{\"name\":\"d\",\"type\":\"double\",\"default\":-0.25},"                                      \
    "{\"name\":\"s\",\"type\":\"string\",\"default\":\"h\\u00e9\"},"                               \
    "{\"name\":\"by\",\"type\":\"bytes\",\"default\":\"\\u00ff\\u0001A\"},"                        \
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"Size\","                               \
    "\"symbols\":[\"S\",\"M\",\"L\"]},\"default\":\"M\"},"                                         \
    "{\"name\":\"u\",\"type\":[\"int\",\"null\"],\"default\":5},"                                  \
    "{\"name\":\"un\",\"type\":[\"null\",\"string\"],\"default\":null},"                           \
    "{\"name\":\"r\",\"type\":{\"type\":\"record\",\"name\":\"Point\",\"fields\":["                \
    "{\"name\":\"x\",\"type\":\"int\"},{\"name\":\"y\",\"type\":\"int\",\"default\":3}]},"         \
    "\"default\":{\"x\":1}},"                                                                      \
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"long\"},\"default\":[1,2,3]},"       \
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"string\"},\"default\":{\"k\":\"v\"}}" \
    ","                                                                                            \
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"Two\",\"size\":2},"                  \
    "\"default\":\"ab\"}]}"

/* Reader v3: the enum without a default symbol. */
#define PROBE_V3                                                                                   \
    "{\"type\":\"record\",\"name\":\"Probe\",\"namespace\":\"test\",\"fields\":["                  \
    "{\"name\":\"id\",\"type\":\"int\"},"                                                          \
    "{\"name\":\"color\",\"type\":{\"type\":\"enum\",\"name\":\"Color\","                          \
    "\"symbols\":[\"RED\",\"GREEN\"]}}]}"

/* Reader v4: a required field the writer never had. */
#define PROBE_V4                                                                                   \
    "{\"type\":\"record\",\"name\":\"Probe\",\"namespace\":\"test\",\"fields\":["                  \
    "{\"name\":\"id\",\"type\":\"int\"},{\"name\":\"must\",\"type\":\"string\"}]}"

static const sf_schema_def probes[] = {
    {"test.Probe", 1, "probe.v1", PROBE_V1, sizeof PROBE_V1 - 1},
    {"test.Probe", 2, "probe.v2", PROBE_V2, sizeof PROBE_V2 - 1},
    {"test.Probe", 3, "probe.v3", PROBE_V3, sizeof PROBE_V3 - 1},
    {"test.Probe", 4, "probe.v4", PROBE_V4, sizeof PROBE_V4 - 1},
};

static sf_codec *codec;

static void setup(void)
{
    sf_error err;
    cr_assert_eq(sf_codec_new_with(probes, 4, &codec, &err), SF_OK, "%s", err.msg);
}

static void teardown(void)
{
    sf_codec_free(codec);
    codec = NULL;
}

TestSuite(resolution, .init = setup, .fini = teardown);

/* --- value helpers: fail the test on any avro-c error --------------------- */

static avro_value_t field(avro_value_t *rec, const char *name)
{
    avro_value_t v;
    cr_assert_eq(avro_value_get_by_name(rec, name, &v, NULL), 0, "no field %s", name);
    return v;
}

static void set_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t v = field(rec, name);
    cr_assert_eq(avro_value_set_string(&v, s), 0);
}

static void set_long(avro_value_t *rec, const char *name, int64_t l)
{
    avro_value_t v = field(rec, name);
    cr_assert_eq(avro_value_set_long(&v, l), 0);
}

static void assert_str(avro_value_t *v, const char *want)
{
    const char *s = NULL;
    size_t size = 0;
    cr_assert_eq(avro_value_get_string(v, &s, &size), 0);
    cr_assert_eq(size, strlen(want) + 1, "size %zu for \"%s\"", size, want);
    cr_assert(strcmp(s, want) == 0, "\"%s\" != \"%s\"", s, want);
}

static int64_t get_long(avro_value_t *v)
{
    int64_t l = 0;
    cr_assert_eq(avro_value_get_long(v, &l), 0);
    return l;
}

static int get_enum(avro_value_t *v)
{
    int e = -1;
    cr_assert_eq(avro_value_get_enum(v, &e), 0);
    return e;
}

static int branch_of(avro_value_t *v)
{
    int d = -1;
    cr_assert_eq(avro_value_get_discriminant(v, &d), 0);
    return d;
}

static avro_value_t branch(avro_value_t *v)
{
    avro_value_t b;
    cr_assert_eq(avro_value_get_current_branch(v, &b), 0);
    return b;
}

static size_t encode_value(avro_value_t *v, uint8_t *buf, size_t cap)
{
    size_t len = 0;
    sf_error err;
    cr_assert_eq(sf_codec_encode_value(codec, v, buf, cap, &len, &err), SF_OK, "%s", err.msg);
    return len;
}

/* --- InventoryEvent v1 <-> v2 --------------------------------------------- */

static sf_event sample_event(void)
{
    sf_event ev;
    memset(&ev, 0, sizeof ev);
    strcpy(ev.event_id, "r-1");
    ev.kind = SF_KIND_RESERVE;
    strcpy(ev.sku, "SKU-1");
    strcpy(ev.location, "DC-1");
    ev.qty = 4;
    ev.occurred_at = 1795514400123;
    strcpy(ev.source, "api");
    ev.has_ref = true;
    strcpy(ev.ref, "order-9");
    ev.has_expires_at = true;
    ev.expires_at = 1795514500000;
    return ev;
}

LEAK_TEST(resolution, v1_writer_to_v2_reader_gets_the_default_unit)
{
    sf_event ev = sample_event();
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = 0;
    sf_error err;
    cr_assert_eq(sf_codec_encode_event(codec, &ev, buf, sizeof buf, &len, &err), SF_OK);
    avro_value_t v;
    cr_assert_eq(sf_codec_decode_value(codec, buf, len, SF_SCHEMA_INVENTORY_EVENT, 2, &v, &err),
                 SF_OK, "%s", err.msg);
    avro_value_t f = field(&v, "unit");
    assert_str(&f, "EA");
    f = field(&v, "event_id");
    assert_str(&f, "r-1");
    f = field(&v, "kind");
    cr_assert_eq(get_enum(&f), SF_KIND_RESERVE);
    f = field(&v, "qty");
    cr_assert_eq(get_long(&f), 4);
    f = field(&v, "channel");
    cr_assert_eq(branch_of(&f), 0);
    f = field(&v, "ref");
    cr_assert_eq(branch_of(&f), 1);
    avro_value_t b = branch(&f);
    assert_str(&b, "order-9");
    f = field(&v, "expires_at");
    b = branch(&f);
    cr_assert_eq(get_long(&b), 1795514500000);
    avro_value_decref(&v);
}

/* A v2 event with unit "CS", built as a generic value. */
static size_t encode_v2(uint8_t *buf, size_t cap)
{
    avro_value_t v, f, b;
    sf_error err;
    cr_assert_eq(sf_codec_value_new(codec, SF_SCHEMA_INVENTORY_EVENT, 2, &v, &err), SF_OK, "%s",
                 err.msg);
    set_str(&v, "event_id", "t-2");
    f = field(&v, "kind");
    cr_assert_eq(avro_value_set_enum(&f, SF_KIND_RETURN), 0);
    set_str(&v, "sku", "SKU-2");
    set_str(&v, "location", "STORE-2");
    set_long(&v, "qty", 6);
    set_long(&v, "occurred_at", 1795514400999);
    set_str(&v, "source", "pos");
    f = field(&v, "channel");
    cr_assert_eq(avro_value_set_branch(&f, 1, &b), 0);
    cr_assert_eq(avro_value_set_string(&b, "store"), 0);
    f = field(&v, "ref");
    cr_assert_eq(avro_value_set_branch(&f, 0, &b), 0);
    f = field(&v, "condition");
    cr_assert_eq(avro_value_set_branch(&f, 1, &b), 0);
    cr_assert_eq(avro_value_set_enum(&b, SF_COND_DAMAGED), 0);
    f = field(&v, "expires_at");
    cr_assert_eq(avro_value_set_branch(&f, 0, &b), 0);
    set_str(&v, "unit", "CS");
    size_t len = encode_value(&v, buf, cap);
    avro_value_decref(&v);
    return len;
}

LEAK_TEST(resolution, v2_writer_to_v1_reader_drops_unit)
{
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = encode_v2(buf, sizeof buf);
    uint64_t fp2 = 0;
    cr_assert_eq(sf_codec_fingerprint(codec, SF_SCHEMA_INVENTORY_EVENT, 2, &fp2, NULL), SF_OK);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(buf[2 + i], (uint8_t)(fp2 >> (8 * i)), "v2 fingerprint byte %d", i);

    sf_event out;
    sf_error err;
    cr_assert_eq(sf_codec_decode_event(codec, buf, len, &out, &err), SF_OK, "%s", err.msg);
    cr_assert(strcmp(out.event_id, "t-2") == 0);
    cr_assert_eq(out.kind, SF_KIND_RETURN);
    cr_assert(strcmp(out.sku, "SKU-2") == 0);
    cr_assert(strcmp(out.location, "STORE-2") == 0);
    cr_assert_eq(out.qty, 6);
    cr_assert_eq(out.occurred_at, 1795514400999);
    cr_assert(strcmp(out.source, "pos") == 0);
    cr_assert(out.has_channel);
    cr_assert(strcmp(out.channel, "store") == 0);
    cr_assert(!out.has_ref);
    cr_assert(out.has_condition);
    cr_assert_eq(out.condition, SF_COND_DAMAGED);
    cr_assert(!out.has_expires_at);

    /* The same bytes read by a v2 reader keep the unit. */
    avro_value_t v;
    cr_assert_eq(sf_codec_decode_value(codec, buf, len, SF_SCHEMA_INVENTORY_EVENT, 2, &v, &err),
                 SF_OK, "%s", err.msg);
    avro_value_t f = field(&v, "unit");
    assert_str(&f, "CS");
    avro_value_decref(&v);
}

LEAK_TEST(resolution, v2_truncations_are_rejected)
{
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = encode_v2(buf, sizeof buf);
    for (size_t cut = SF_CODEC_HEADER_LEN; cut < len; cut++) {
        sf_event out;
        sf_error err;
        cr_assert_eq(sf_codec_decode_event(codec, buf, cut, &out, &err), SF_EINVAL, "cut %zu", cut);
        cr_assert(strstr(err.msg, "stockflow.InventoryEvent v2: body truncated") == err.msg, "%s",
                  err.msg);
    }
}

LEAK_TEST(resolution, unknown_schemas_are_not_found)
{
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = encode_v2(buf, sizeof buf);
    avro_value_t v;
    sf_error err;
    cr_assert_eq(sf_codec_decode_value(codec, buf, len, SF_SCHEMA_INVENTORY_EVENT, 9, &v, &err),
                 SF_ENOTFOUND);
    cr_assert_eq(sf_codec_value_new(codec, "test.Nope", 1, &v, &err), SF_ENOTFOUND);
    buf[2] ^= 1;
    cr_assert_eq(sf_codec_decode_value(codec, buf, len, SF_SCHEMA_INVENTORY_EVENT, 1, &v, &err),
                 SF_ENOTFOUND);
}

/* --- the general resolver on the probes ----------------------------------- */

static size_t encode_probe_v1(int32_t id, int color, uint8_t *buf, size_t cap)
{
    avro_value_t v, f;
    sf_error err;
    cr_assert_eq(sf_codec_value_new(codec, "test.Probe", 1, &v, &err), SF_OK, "%s", err.msg);
    f = field(&v, "id");
    cr_assert_eq(avro_value_set_int(&f, id), 0);
    f = field(&v, "color");
    cr_assert_eq(avro_value_set_enum(&f, color), 0);
    set_str(&v, "gone", "bye");
    size_t len = encode_value(&v, buf, cap);
    avro_value_decref(&v);
    return len;
}

LEAK_TEST(resolution, every_default_type_is_filled)
{
    uint8_t buf[256];
    size_t len = encode_probe_v1(-3, 1 /* GREEN */, buf, sizeof buf);
    avro_value_t v, f, b;
    sf_error err;
    cr_assert_eq(sf_codec_decode_value(codec, buf, len, "test.Probe", 2, &v, &err), SF_OK, "%s",
                 err.msg);
    size_t n = 0;
    cr_assert_eq(avro_value_get_size(&v, &n), 0);
    cr_assert_eq(n, 17);
    cr_assert_eq(avro_value_get_by_name(&v, "gone", &f, NULL) != 0, 1, "gone is dropped");

    f = field(&v, "id");
    cr_assert_eq(avro_value_get_type(&f), AVRO_INT64);
    cr_assert_eq(get_long(&f), -3); /* int promoted to long */
    f = field(&v, "color");
    cr_assert_eq(get_enum(&f), 0); /* GREEN is index 0 in the reader */
    f = field(&v, "n");
    cr_assert_eq(avro_value_get_type(&f), AVRO_NULL);
    f = field(&v, "b");
    int bo = 0;
    cr_assert_eq(avro_value_get_boolean(&f, &bo), 0);
    cr_assert_eq(bo, 1);
    f = field(&v, "i");
    int32_t i = 0;
    cr_assert_eq(avro_value_get_int(&f, &i), 0);
    cr_assert_eq(i, -7);
    f = field(&v, "l");
    cr_assert_eq(get_long(&f), INT64_C(9007199254740993));
    f = field(&v, "f");
    float fl = 0;
    cr_assert_eq(avro_value_get_float(&f, &fl), 0);
    cr_assert_eq(fl, 1.5f);
    f = field(&v, "d");
    double d = 0;
    cr_assert_eq(avro_value_get_double(&f, &d), 0);
    cr_assert_eq(d, -0.25);
    f = field(&v, "s");
    assert_str(&f, "h\xc3\xa9");
    f = field(&v, "by");
    const void *bytes = NULL;
    size_t blen = 0;
    cr_assert_eq(avro_value_get_bytes(&f, &bytes, &blen), 0);
    cr_assert_eq(blen, 3);
    cr_assert(memcmp(bytes,
                     "\xff\x01"
                     "A",
                     3) == 0);
    f = field(&v, "e");
    cr_assert_eq(get_enum(&f), 1); /* M */
    f = field(&v, "u");
    cr_assert_eq(branch_of(&f), 0);
    b = branch(&f);
    cr_assert_eq(avro_value_get_int(&b, &i), 0);
    cr_assert_eq(i, 5);
    f = field(&v, "un");
    cr_assert_eq(branch_of(&f), 0);
    f = field(&v, "r");
    b = field(&f, "x");
    cr_assert_eq(avro_value_get_int(&b, &i), 0);
    cr_assert_eq(i, 1);
    b = field(&f, "y");
    cr_assert_eq(avro_value_get_int(&b, &i), 0);
    cr_assert_eq(i, 3); /* from Point.y's own default */
    f = field(&v, "a");
    cr_assert_eq(avro_value_get_size(&f, &n), 0);
    cr_assert_eq(n, 3);
    for (size_t k = 0; k < 3; k++) {
        cr_assert_eq(avro_value_get_by_index(&f, k, &b, NULL), 0);
        cr_assert_eq(get_long(&b), (int64_t)k + 1);
    }
    f = field(&v, "m");
    cr_assert_eq(avro_value_get_size(&f, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(avro_value_get_by_name(&f, "k", &b, NULL), 0);
    assert_str(&b, "v");
    f = field(&v, "fx");
    cr_assert_eq(avro_value_get_fixed(&f, &bytes, &blen), 0);
    cr_assert_eq(blen, 2);
    cr_assert(memcmp(bytes, "ab", 2) == 0);
    avro_value_decref(&v);
}

LEAK_TEST(resolution, enum_default_stands_in_for_unknown_symbols)
{
    uint8_t buf[256];
    size_t len = encode_probe_v1(1, 2 /* BLUE */, buf, sizeof buf);
    avro_value_t v, f;
    sf_error err;
    cr_assert_eq(sf_codec_decode_value(codec, buf, len, "test.Probe", 2, &v, &err), SF_OK, "%s",
                 err.msg);
    f = field(&v, "color");
    cr_assert_eq(get_enum(&f), 2); /* OTHER */
    avro_value_decref(&v);

    cr_assert_eq(sf_codec_decode_value(codec, buf, len, "test.Probe", 3, &v, &err), SF_EINVAL);
    cr_assert(strstr(err.msg, "field color: symbol BLUE is unknown to the reader") != NULL, "%s",
              err.msg);

    len = encode_probe_v1(1, 0 /* RED */, buf, sizeof buf);
    cr_assert_eq(sf_codec_decode_value(codec, buf, len, "test.Probe", 3, &v, &err), SF_OK, "%s",
                 err.msg);
    f = field(&v, "color");
    cr_assert_eq(get_enum(&f), 0);
    avro_value_decref(&v);
}

LEAK_TEST(resolution, missing_field_without_default_is_rejected)
{
    uint8_t buf[256];
    size_t len = encode_probe_v1(1, 0, buf, sizeof buf);
    avro_value_t v;
    sf_error err;
    cr_assert_eq(sf_codec_decode_value(codec, buf, len, "test.Probe", 4, &v, &err), SF_EINVAL);
    cr_assert(strstr(err.msg, "resolving test.Probe v1 to test.Probe v4: field must: the writer "
                              "does not have it and the reader has no default") != NULL,
              "%s", err.msg);
}

LEAK_TEST(resolution, incomplete_value_is_not_encoded)
{
    avro_value_t v;
    sf_error err;
    cr_assert_eq(sf_codec_value_new(codec, SF_SCHEMA_INVENTORY_EVENT, 1, &v, &err), SF_OK);
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = 0;
    cr_assert_eq(sf_codec_encode_value(codec, &v, buf, sizeof buf, &len, &err), SF_EINVAL);
    cr_assert(strstr(err.msg, "cannot encode stockflow.InventoryEvent v1") != NULL, "%s", err.msg);
    avro_value_decref(&v);
}

/* A default that does not fit its type stops the codec at start-up. */
#define BAD_DEFAULT                                                                                \
    "{\"type\":\"record\",\"name\":\"Bad\",\"namespace\":\"test\",\"fields\":["                    \
    "{\"name\":\"x\",\"type\":\"int\",\"default\":\"seven\"}]}"

LEAK_TEST(resolution_startup, bad_default_fails_codec_creation)
{
    static const sf_schema_def bad[] = {
        {"test.Bad", 1, "bad.v1", BAD_DEFAULT, sizeof BAD_DEFAULT - 1}};
    sf_codec *c = NULL;
    sf_error err;
    cr_assert_eq(sf_codec_new_with(bad, 1, &c, &err), SF_EINTERNAL);
    cr_assert_null(c);
    cr_assert(strstr(err.msg, "bad.v1: field x: default a string does not fit type int") != NULL,
              "%s", err.msg);
}

LEAK_TEST(resolution_startup, duplicate_schema_fails_codec_creation)
{
    sf_codec *c = NULL;
    sf_error err;
    cr_assert_eq(sf_codec_new_with(sf_schemas_at(0), 1, &c, &err), SF_EINTERNAL);
    cr_assert_null(c);
    cr_assert(strstr(err.msg, "same fingerprint or name") != NULL, "%s", err.msg);
}
