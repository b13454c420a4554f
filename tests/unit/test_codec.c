/*
 * Events and channel stock through the single-object codec: exact bytes of
 * the header and a body, round trips of every kind with every optional
 * field present and absent, and every reject the consumer must sideline
 * (SF_ENOTFOUND -> "fingerprint", SF_EINVAL -> "decode") with a message
 * naming what is wrong. Crafted messages are built by hand below, not by
 * the codec, so the codec is checked against the Avro spec, not itself.
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

static sf_codec *codec;

static void setup(void)
{
    sf_error err;
    cr_assert_eq(sf_codec_new(&codec, &err), SF_OK, "%s", err.msg);
}

static void teardown(void)
{
    sf_codec_free(codec);
    codec = NULL;
}

TestSuite(codec, .init = setup, .fini = teardown);

static const uint8_t V1_FP_LE[8] = {0x73, 0x2f, 0xa1, 0xab, 0x0a, 0xcc, 0xec, 0x42};

/* event.c is another module; the test sets fields directly. */
static sf_event make_event(sf_kind kind, unsigned optional_mask)
{
    sf_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.event_id, sizeof ev.event_id, "evt-%d-%u", (int)kind, optional_mask);
    ev.kind = kind;
    strcpy(ev.sku, "SKU-\xc3\xa9-1"); /* UTF-8 passes through untouched */
    strcpy(ev.location, "STORE-7");
    ev.qty = kind == SF_KIND_ADJUST ? -12 : 3;
    ev.occurred_at = 1795514400123;
    strcpy(ev.source, "pos");
    if (optional_mask & 1) {
        ev.has_channel = true;
        strcpy(ev.channel, "web");
    }
    if (optional_mask & 2) {
        ev.has_ref = true;
        strcpy(ev.ref, "order-1");
    }
    if (optional_mask & 4) {
        ev.has_condition = true;
        ev.condition = SF_COND_DAMAGED;
    }
    if (optional_mask & 8) {
        ev.has_expires_at = true;
        ev.expires_at = 1795514500000;
    }
    return ev;
}

static void assert_event_eq(const sf_event *got, const sf_event *want)
{
    cr_assert(strcmp(got->event_id, want->event_id) == 0, "event_id %s != %s", got->event_id,
              want->event_id);
    cr_assert_eq(got->kind, want->kind);
    cr_assert(strcmp(got->sku, want->sku) == 0, "sku %s != %s", got->sku, want->sku);
    cr_assert(strcmp(got->location, want->location) == 0);
    cr_assert_eq(got->qty, want->qty);
    cr_assert_eq(got->occurred_at, want->occurred_at);
    cr_assert(strcmp(got->source, want->source) == 0);
    cr_assert_eq(got->has_channel, want->has_channel);
    if (want->has_channel)
        cr_assert(strcmp(got->channel, want->channel) == 0);
    else
        cr_assert_eq(got->channel[0], '\0');
    cr_assert_eq(got->has_ref, want->has_ref);
    if (want->has_ref)
        cr_assert(strcmp(got->ref, want->ref) == 0);
    else
        cr_assert_eq(got->ref[0], '\0');
    cr_assert_eq(got->has_condition, want->has_condition);
    cr_assert_eq(got->condition, want->has_condition ? want->condition : SF_COND_RESELLABLE);
    cr_assert_eq(got->has_expires_at, want->has_expires_at);
    cr_assert_eq(got->expires_at, want->has_expires_at ? want->expires_at : 0);
}

static size_t encode(const sf_event *ev, uint8_t *buf, size_t cap)
{
    size_t len = 0;
    sf_error err;
    cr_assert_eq(sf_codec_encode_event(codec, ev, buf, cap, &len, &err), SF_OK, "%s", err.msg);
    return len;
}

/* --- a hand-made Avro writer for crafted messages ------------------------- */

typedef struct wire {
    uint8_t b[1024];
    size_t n;
} wire;

static void w_byte(wire *w, uint8_t b)
{
    cr_assert_lt(w->n, sizeof w->b);
    w->b[w->n++] = b;
}

static void w_long(wire *w, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    do {
        uint8_t b = z & 0x7f;
        z >>= 7;
        w_byte(w, (uint8_t)(b | (z ? 0x80 : 0)));
    } while (z);
}

static void w_bytes(wire *w, const void *p, size_t n)
{
    w_long(w, (int64_t)n);
    for (size_t i = 0; i < n; i++)
        w_byte(w, ((const uint8_t *)p)[i]);
}

static void w_str(wire *w, const char *s)
{
    w_bytes(w, s, strlen(s));
}

static void w_header(wire *w, const uint8_t fp[8])
{
    w_byte(w, 0xC3);
    w_byte(w, 0x01);
    for (int i = 0; i < 8; i++)
        w_byte(w, fp[i]);
}

/* InventoryEvent v1 with the given sku bytes; no optional fields. */
static void w_event(wire *w, const void *sku, size_t sku_len)
{
    w_header(w, V1_FP_LE);
    w_str(w, "e-1");
    w_long(w, 0); /* SALE */
    w_bytes(w, sku, sku_len);
    w_str(w, "L1");
    w_long(w, 2);
    w_long(w, 1000);
    w_str(w, "src");
    for (int i = 0; i < 4; i++)
        w_long(w, 0); /* the four unions: null */
}

static sf_status decode(const uint8_t *p, size_t n, sf_event *out, sf_error *err)
{
    sf_error_clear(err);
    return sf_codec_decode_event(codec, p, n, out, err);
}

static void assert_rejected(const uint8_t *p, size_t n, sf_status want, const char *words)
{
    sf_event out;
    sf_error err;
    sf_status st = decode(p, n, &out, &err);
    cr_assert_eq(st, want, "status %d (%s), want %d", st, err.msg, want);
    cr_assert(strstr(err.msg, words) != NULL, "message \"%s\" lacks \"%s\"", err.msg, words);
}

/* --- the wire format ------------------------------------------------------ */

LEAK_TEST(codec, header_is_magic_and_v1_fingerprint)
{
    sf_event ev = make_event(SF_KIND_SALE, 0);
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = encode(&ev, buf, sizeof buf);
    cr_assert_gt(len, SF_CODEC_HEADER_LEN);
    cr_assert_eq(buf[0], 0xC3);
    cr_assert_eq(buf[1], 0x01);
    cr_assert(memcmp(buf + 2, V1_FP_LE, 8) == 0, "fingerprint bytes");
    uint64_t fp = 0;
    cr_assert_eq(sf_codec_fingerprint(codec, SF_SCHEMA_INVENTORY_EVENT, 1, &fp, NULL), SF_OK);
    cr_assert_eq(fp, UINT64_C(0x42eccc0aaba12f73));
}

LEAK_TEST(codec, body_bytes_follow_the_avro_spec)
{
    sf_event ev;
    memset(&ev, 0, sizeof ev);
    strcpy(ev.event_id, "e");
    ev.kind = SF_KIND_COUNT; /* index 4 -> zigzag 8 */
    strcpy(ev.sku, "s");
    strcpy(ev.location, "L");
    ev.qty = -1;         /* zigzag 1 */
    ev.occurred_at = 64; /* zigzag 128: two varint bytes */
    strcpy(ev.source, "x");
    ev.has_ref = true;
    strcpy(ev.ref, "r");
    const uint8_t want[] = {0xC3, 0x01, 0x73, 0x2f, 0xa1, 0xab, 0x0a, 0xcc, 0xec, 0x42,
                            0x02, 'e',  0x08, 0x02, 's',  0x02, 'L',  0x01, 0x80, 0x01,
                            0x02, 'x',  0x00, 0x02, 0x02, 'r',  0x00, 0x00};
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = encode(&ev, buf, sizeof buf);
    cr_assert_eq(len, sizeof want);
    for (size_t i = 0; i < len; i++)
        cr_assert_eq(buf[i], want[i], "byte %zu: 0x%02x, want 0x%02x", i, buf[i], want[i]);
}

LEAK_TEST(codec, round_trips_every_kind_and_optional_combination)
{
    int n = 0;
    for (int k = 0; k < SF_KIND__COUNT; k++) {
        for (unsigned mask = 0; mask < 16; mask++) {
            sf_event ev = make_event((sf_kind)k, mask), out;
            uint8_t buf[SF_CODEC_EVENT_MAX];
            size_t len = encode(&ev, buf, sizeof buf);
            sf_error err;
            memset(&out, 0x5a, sizeof out); /* decode must overwrite everything */
            cr_assert_eq(decode(buf, len, &out, &err), SF_OK, "kind %d mask %u: %s", k, mask,
                         err.msg);
            assert_event_eq(&out, &ev);
            n++;
        }
    }
    cr_assert_eq(n, 160);
}

LEAK_TEST(codec, round_trips_limits)
{
    sf_event ev = make_event(SF_KIND_RELEASE, 15), out;
    memset(ev.event_id, 'i', SF_STR_MAX);
    memset(ev.sku, 's', SF_STR_MAX);
    memset(ev.location, 'l', SF_STR_MAX);
    memset(ev.source, 'o', SF_STR_MAX);
    memset(ev.channel, 'c', SF_STR_MAX);
    memset(ev.ref, 'r', SF_STR_MAX);
    ev.qty = INT64_MIN;
    ev.occurred_at = INT64_MAX;
    ev.expires_at = INT64_MIN;
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = encode(&ev, buf, sizeof buf);
    cr_assert_eq(len, 442, "the largest event is 442 bytes, got %zu", len);
    sf_error err;
    cr_assert_eq(decode(buf, len, &out, &err), SF_OK, "%s", err.msg);
    assert_event_eq(&out, &ev);

    sf_event empty = make_event(SF_KIND_SALE, 3);
    empty.event_id[0] = empty.sku[0] = empty.channel[0] = empty.ref[0] = '\0';
    empty.qty = 0;
    len = encode(&empty, buf, sizeof buf);
    cr_assert_eq(decode(buf, len, &out, &err), SF_OK, "%s", err.msg);
    assert_event_eq(&out, &empty);
}

/* --- rejects -------------------------------------------------------------- */

LEAK_TEST(codec, rejects_garbage_and_bad_magic)
{
    const uint8_t text[] = "{\"event_id\":\"s-1\"}";
    assert_rejected(text, sizeof text - 1, SF_EINVAL, "bad magic: byte 0 is 0x7b");
    const uint8_t half[] = {0xC3, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_rejected(half, sizeof half, SF_EINVAL, "bad magic: byte 1 is 0x02");
    assert_rejected(NULL, 0, SF_EINVAL, "short header: message of 0 bytes");
}

LEAK_TEST(codec, rejects_every_truncation_of_a_valid_message)
{
    sf_event ev = make_event(SF_KIND_RETURN, 15);
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = encode(&ev, buf, sizeof buf);
    for (size_t cut = 0; cut < len; cut++) {
        sf_event out;
        sf_error err;
        sf_status st = decode(buf, cut, &out, &err);
        cr_assert_eq(st, SF_EINVAL, "cut at %zu of %zu: status %d", cut, len, st);
        const char *want = cut < SF_CODEC_HEADER_LEN ? "short header" : "body truncated at byte";
        cr_assert(strstr(err.msg, want) != NULL, "cut at %zu: \"%s\"", cut, err.msg);
    }
}

LEAK_TEST(codec, truncation_names_the_byte_and_field)
{
    wire w = {0};
    w_event(&w, "SKU-1", 5);
    /* header 10, event_id 4, kind 1, sku length at 15, content 16..20 */
    assert_rejected(w.b, 17, SF_EINVAL, "body truncated at byte 16: field sku: string of 5 bytes");
}

LEAK_TEST(codec, rejects_trailing_bytes)
{
    sf_event ev = make_event(SF_KIND_SALE, 0);
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = encode(&ev, buf, sizeof buf);
    buf[len] = 0;
    buf[len + 1] = 0;
    char want[64];
    snprintf(want, sizeof want, "trailing garbage: 2 bytes after the body, which ends at byte %zu",
             len);
    assert_rejected(buf, len + 2, SF_EINVAL, want);
}

LEAK_TEST(codec, unknown_fingerprint_is_not_found)
{
    sf_event ev = make_event(SF_KIND_SALE, 0);
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = encode(&ev, buf, sizeof buf);
    buf[9] ^= 0xff; /* 0x42 -> 0xbd, the fingerprint's top byte */
    assert_rejected(buf, len, SF_ENOTFOUND, "unknown writer schema fingerprint 0xbdeccc0aaba12f73");
}

LEAK_TEST(codec, rejects_string_over_64_bytes)
{
    char sku[70];
    memset(sku, 'x', sizeof sku);
    wire w = {0};
    w_event(&w, sku, sizeof sku);
    assert_rejected(w.b, w.n, SF_EINVAL, "field sku: 70 bytes, limit 64");
}

LEAK_TEST(codec, rejects_string_with_nul)
{
    wire w = {0};
    w_event(&w, "ab\0cd", 5);
    assert_rejected(w.b, w.n, SF_EINVAL, "field sku: NUL byte at offset 2");
}

LEAK_TEST(codec, accepts_hand_made_event)
{
    wire w = {0};
    w_event(&w, "SKU-9", 5);
    sf_event out;
    sf_error err;
    cr_assert_eq(decode(w.b, w.n, &out, &err), SF_OK, "%s", err.msg);
    cr_assert(strcmp(out.event_id, "e-1") == 0);
    cr_assert_eq(out.kind, SF_KIND_SALE);
    cr_assert(strcmp(out.sku, "SKU-9") == 0);
    cr_assert(strcmp(out.location, "L1") == 0);
    cr_assert_eq(out.qty, 2);
    cr_assert_eq(out.occurred_at, 1000);
    cr_assert(strcmp(out.source, "src") == 0);
    cr_assert(!out.has_channel && !out.has_ref && !out.has_condition && !out.has_expires_at);
}

LEAK_TEST(codec, rejects_bad_enum_union_and_varint)
{
    wire w = {0};
    w_event(&w, "S", 1);
    size_t kind_at = SF_CODEC_HEADER_LEN + 4; /* after "e-1" and its length */
    w.b[kind_at] = 0x14;                      /* zigzag 20 = index 10 */
    assert_rejected(w.b, w.n, SF_EINVAL, "field kind: enum index 10 at byte 14, want 0..9");

    wire u = {0};
    w_event(&u, "S", 1);
    u.b[u.n - 4] = 0x04; /* channel union index 2 */
    assert_rejected(u.b, u.n, SF_EINVAL, "field channel: union index 2");

    wire neg = {0};
    w_event(&neg, "S", 1);
    neg.b[SF_CODEC_HEADER_LEN] = 0x01; /* event_id length -1 */
    assert_rejected(neg.b, neg.n, SF_EINVAL, "field event_id: negative string length -1");

    wire v = {0};
    w_header(&v, V1_FP_LE);
    w_str(&v, "e");
    w_long(&v, 0);
    w_str(&v, "s");
    w_str(&v, "l");
    for (int i = 0; i < 11; i++)
        w_byte(&v, 0x80); /* qty: a varint that never ends */
    w_byte(&v, 0x00);
    assert_rejected(v.b, v.n, SF_EINVAL, "field qty: varint at byte 17 overflows 64 bits");

    wire k = {0};
    w_header(&k, V1_FP_LE);
    w_str(&k, "e");
    for (int i = 0; i < 5; i++)
        w_byte(&k, 0x80); /* kind: an int varint of more than 5 bytes */
    w_byte(&k, 0x00);
    assert_rejected(k.b, k.n, SF_EINVAL, "field kind: varint at byte 12 is longer than 5 bytes");
}

/* --- encode errors -------------------------------------------------------- */

LEAK_TEST(codec, encode_rejects_bad_events_and_small_buffers)
{
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = 0;
    sf_error err;
    sf_event ev = make_event(SF_KIND_SALE, 0);
    ev.kind = SF_KIND__COUNT;
    cr_assert_eq(sf_codec_encode_event(codec, &ev, buf, sizeof buf, &len, &err), SF_EINVAL);
    cr_assert(strstr(err.msg, "field kind") != NULL, "%s", err.msg);

    ev = make_event(SF_KIND_RETURN, 4);
    ev.condition = (sf_condition)7;
    cr_assert_eq(sf_codec_encode_event(codec, &ev, buf, sizeof buf, &len, &err), SF_EINVAL);
    cr_assert(strstr(err.msg, "field condition") != NULL, "%s", err.msg);

    ev = make_event(SF_KIND_SALE, 0);
    memset(ev.sku, 'x', sizeof ev.sku); /* no NUL at all */
    cr_assert_eq(sf_codec_encode_event(codec, &ev, buf, sizeof buf, &len, &err), SF_EINVAL);
    cr_assert(strstr(err.msg, "field sku: longer than 64 bytes") != NULL, "%s", err.msg);

    ev = make_event(SF_KIND_SALE, 0);
    size_t need = encode(&ev, buf, sizeof buf);
    cr_assert_eq(sf_codec_encode_event(codec, &ev, buf, need - 1, &len, &err), SF_EINVAL);
    char want[96];
    snprintf(want, sizeof want, "buffer too small: the message needs %zu bytes, have %zu", need,
             need - 1);
    cr_assert(strstr(err.msg, want) != NULL, "%s", err.msg);
    cr_assert_eq(sf_codec_encode_event(codec, &ev, buf, 9, &len, &err), SF_EINVAL);
    cr_assert(strstr(err.msg, "cannot hold the 10-byte header") != NULL, "%s", err.msg);
    /* The codec is still usable after a failed call. */
    cr_assert_eq(encode(&ev, buf, sizeof buf), need);
}

/* --- channel stock -------------------------------------------------------- */

LEAK_TEST(codec, channel_stock_round_trip)
{
    sf_channel_stock cs, out;
    memset(&cs, 0, sizeof cs);
    strcpy(cs.channel, "web");
    strcpy(cs.sku, "SKU-1");
    cs.ats = 17;
    cs.version = 42;
    cs.computed_at = 1795514400123;
    uint8_t buf[SF_CODEC_CHANNEL_STOCK_MAX];
    size_t len = 0;
    sf_error err;
    cr_assert_eq(sf_codec_encode_channel_stock(codec, &cs, buf, sizeof buf, &len, &err), SF_OK,
                 "%s", err.msg);
    uint64_t fp = 0;
    cr_assert_eq(sf_codec_fingerprint(codec, SF_SCHEMA_CHANNEL_STOCK, 1, &fp, &err), SF_OK);
    cr_assert_eq(buf[0], 0xC3);
    cr_assert_eq(buf[1], 0x01);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(buf[2 + i], (uint8_t)(fp >> (8 * i)));
    memset(&out, 0x5a, sizeof out);
    cr_assert_eq(sf_codec_decode_channel_stock(codec, buf, len, &out, &err), SF_OK, "%s", err.msg);
    cr_assert(strcmp(out.channel, "web") == 0);
    cr_assert(strcmp(out.sku, "SKU-1") == 0);
    cr_assert_eq(out.ats, 17);
    cr_assert_eq(out.version, 42);
    cr_assert_eq(out.computed_at, 1795514400123);

    /* Largest one fits the advertised buffer. */
    memset(cs.channel, 'c', SF_STR_MAX);
    memset(cs.sku, 's', SF_STR_MAX);
    cs.ats = cs.version = cs.computed_at = INT64_MIN;
    cr_assert_eq(sf_codec_encode_channel_stock(codec, &cs, buf, sizeof buf, &len, &err), SF_OK);
    cr_assert_eq(len, 172);
    cr_assert_eq(sf_codec_decode_channel_stock(codec, buf, len, &out, &err), SF_OK, "%s", err.msg);
    cr_assert(strcmp(out.channel, cs.channel) == 0);
    cr_assert_eq(out.version, INT64_MIN);
}

LEAK_TEST(codec, records_do_not_resolve_across_names)
{
    sf_channel_stock cs;
    memset(&cs, 0, sizeof cs);
    strcpy(cs.channel, "web");
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = 0;
    sf_error err;
    cr_assert_eq(sf_codec_encode_channel_stock(codec, &cs, buf, sizeof buf, &len, &err), SF_OK);
    assert_rejected(buf, len, SF_EINVAL,
                    "resolving stockflow.ChannelStock v1 to "
                    "stockflow.InventoryEvent v1");

    sf_event ev = make_event(SF_KIND_SALE, 0);
    len = encode(&ev, buf, sizeof buf);
    sf_channel_stock out;
    cr_assert_eq(sf_codec_decode_channel_stock(codec, buf, len, &out, &err), SF_EINVAL);
    cr_assert(strstr(err.msg, "does not resolve") != NULL, "%s", err.msg);
}

/* The fixture's codec outlives the leak check; this one does not. */
LEAK_TEST(codec, new_and_free_release_everything)
{
    sf_codec *c = NULL;
    sf_error err;
    cr_assert_eq(sf_codec_new(&c, &err), SF_OK, "%s", err.msg);
    sf_event ev = make_event(SF_KIND_RETURN, 15), out;
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len = 0;
    cr_assert_eq(sf_codec_encode_event(c, &ev, buf, sizeof buf, &len, &err), SF_OK);
    cr_assert_eq(sf_codec_decode_event(c, buf, len, &out, &err), SF_OK, "%s", err.msg);
    avro_value_t v;
    cr_assert_eq(sf_codec_decode_value(c, buf, len, SF_SCHEMA_INVENTORY_EVENT, 2, &v, &err), SF_OK);
    avro_value_decref(&v);
    cr_assert_eq(sf_codec_decode_event(c, buf, len - 1, &out, &err), SF_EINVAL);
    sf_codec_free(c);
    sf_codec_free(NULL);
}
