/*
 * test_event_validate: the rules of DESIGN.md "Events" on sf_event values
 * (strings, tokens, qty sign, condition and expires_at placement, time
 * bounds), the derived id and the small helpers of event.h. Expected ids
 * are computed independently: with `printf ... | sha256sum` (inputs shown)
 * and with a hand-joined buffer hashed by EVP here.
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "leak_guard.h"

#define NOW INT64_C(1795514400000) /* 2026-11-24T10:00:00Z */

static void valid_sale(sf_event *ev)
{
    sf_event_init(ev);
    strcpy(ev->event_id, "s-1");
    ev->kind = SF_KIND_SALE;
    strcpy(ev->sku, "SKU-1");
    strcpy(ev->location, "STORE-1");
    ev->qty = 2;
    ev->occurred_at = NOW - 1000;
    strcpy(ev->source, "web-feed");
}

static void expect_reject(const sf_event *ev, const char *msg)
{
    sf_error err;
    sf_error_clear(&err);
    sf_status st = sf_event_validate(ev, NOW, 300000, &err);
    cr_assert(st == SF_EINVAL, "expected a reject with \"%s\", got status %d", msg, (int)st);
    cr_assert(strcmp(err.msg, msg) == 0, "message\n  got:  %s\n  want: %s", err.msg, msg);
}

static void expect_ok(const sf_event *ev)
{
    sf_error err;
    sf_error_clear(&err);
    sf_status st = sf_event_validate(ev, NOW, 300000, &err);
    cr_assert(st == SF_OK, "expected valid, got: %s", err.msg);
}

LEAK_TEST(event_validate, init_zeroes_everything)
{
    sf_event ev;
    memset(&ev, 0xAB, sizeof ev);
    sf_event_init(&ev);
    cr_assert(ev.event_id[0] == '\0' && ev.sku[0] == '\0' && ev.source[0] == '\0');
    cr_assert(ev.kind == SF_KIND_SALE && ev.qty == 0 && ev.occurred_at == 0);
    cr_assert(!ev.has_channel && !ev.has_ref && !ev.has_condition && !ev.has_expires_at);
}

LEAK_TEST(event_validate, kind_names_tokens_and_parse)
{
    cr_assert(strcmp(sf_kind_name(SF_KIND_TRANSFER_OUT), "TRANSFER_OUT") == 0);
    cr_assert(strcmp(sf_kind_token(SF_KIND_TRANSFER_OUT), "transfer_out") == 0);
    cr_assert(strcmp(sf_kind_name(SF_KIND_RELEASE), "RELEASE") == 0);
    cr_assert(strcmp(sf_kind_name((sf_kind)99), "?") == 0);
    sf_kind k;
    sf_error err;
    for (int i = 0; i < SF_KIND__COUNT; i++) {
        cr_assert(sf_kind_parse(sf_kind_token((sf_kind)i), &k, &err) == SF_OK);
        cr_assert(k == (sf_kind)i);
    }
    cr_assert(sf_kind_parse("Transfer_In", &k, &err) == SF_OK && k == SF_KIND_TRANSFER_IN);
    cr_assert(sf_kind_parse("sales", &k, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "field kind: 'sales' is not a kind (SALE, RETURN, RECEIPT, ASN, "
                              "COUNT, ADJUST, TRANSFER_OUT, TRANSFER_IN, RESERVE, RELEASE)") == 0,
              "%s", err.msg);
}

LEAK_TEST(event_validate, condition_names_and_parse)
{
    sf_condition c;
    sf_error err;
    cr_assert(strcmp(sf_condition_name(SF_COND_DAMAGED), "DAMAGED") == 0);
    cr_assert(sf_condition_parse("damaged", &c, &err) == SF_OK && c == SF_COND_DAMAGED);
    cr_assert(sf_condition_parse("Resellable", &c, &err) == SF_OK && c == SF_COND_RESELLABLE);
    cr_assert(sf_condition_parse("broken", &c, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "field condition: 'broken' is not RESELLABLE or DAMAGED") == 0, "%s",
              err.msg);
}

LEAK_TEST(event_validate, accepts_a_complete_sale)
{
    sf_event ev;
    valid_sale(&ev);
    ev.has_channel = true;
    strcpy(ev.channel, "web");
    ev.has_ref = true;
    strcpy(ev.ref, "order-1");
    expect_ok(&ev);
}

LEAK_TEST(event_validate, rejects_negative_qty_except_adjust)
{
    sf_event ev;
    valid_sale(&ev);
    ev.qty = -2;
    expect_reject(&ev, "field qty: -2 is negative (only ADJUST may be)");
    ev.kind = SF_KIND_COUNT;
    expect_reject(&ev, "field qty: -2 is negative (only ADJUST may be)");
    ev.kind = SF_KIND_ADJUST;
    expect_ok(&ev);
    ev.qty = INT64_MIN;
    expect_ok(&ev);
    ev.kind = SF_KIND_RECEIPT;
    ev.qty = 0;
    expect_ok(&ev);
}

LEAK_TEST(event_validate, condition_only_on_return)
{
    sf_event ev;
    valid_sale(&ev);
    ev.has_condition = true;
    ev.condition = SF_COND_DAMAGED;
    expect_reject(&ev, "field condition: only RETURN may carry a condition (kind is SALE)");
    ev.kind = SF_KIND_RETURN;
    expect_ok(&ev);
    ev.condition = (sf_condition)7;
    expect_reject(&ev, "field condition: 7 is not a condition");
}

LEAK_TEST(event_validate, expires_at_only_on_reserve)
{
    sf_event ev;
    valid_sale(&ev);
    ev.has_expires_at = true;
    ev.expires_at = NOW + 3600000;
    expect_reject(&ev, "field expires_at: only RESERVE may carry expires_at (kind is SALE)");
    ev.kind = SF_KIND_RELEASE;
    expect_reject(&ev, "field expires_at: only RESERVE may carry expires_at (kind is RELEASE)");
    ev.kind = SF_KIND_RESERVE;
    expect_ok(&ev);
    ev.expires_at = -1;
    expect_reject(&ev, "field expires_at: -1 is before 1970-01-01T00:00:00Z");
}

LEAK_TEST(event_validate, rejects_empty_required_strings)
{
    sf_event ev;
    valid_sale(&ev);
    ev.event_id[0] = '\0';
    expect_reject(&ev, "field event_id: empty (required)");
    valid_sale(&ev);
    ev.sku[0] = '\0';
    expect_reject(&ev, "field sku: empty (required)");
    valid_sale(&ev);
    ev.location[0] = '\0';
    expect_reject(&ev, "field location: empty (required)");
    valid_sale(&ev);
    ev.source[0] = '\0';
    expect_reject(&ev, "field source: empty (required)");
    valid_sale(&ev);
    ev.has_ref = true;
    expect_reject(&ev, "field ref: empty (omit the field instead)");
    valid_sale(&ev);
    ev.has_channel = true;
    expect_reject(&ev, "field channel: empty (omit the field instead)");
}

LEAK_TEST(event_validate, location_and_channel_are_subject_tokens)
{
    sf_event ev;
    valid_sale(&ev);
    strcpy(ev.location, "STORE 1");
    expect_reject(&ev,
                  "field location: 'STORE 1' has a character outside A-Z a-z 0-9 _ - (byte 6)");
    strcpy(ev.location, "store.1");
    expect_reject(&ev,
                  "field location: 'store.1' has a character outside A-Z a-z 0-9 _ - (byte 6)");
    strcpy(ev.location, "Az09_-");
    expect_ok(&ev);
    ev.has_channel = true;
    strcpy(ev.channel, "web>");
    expect_reject(&ev, "field channel: 'web>' has a character outside A-Z a-z 0-9 _ - (byte 4)");
    strcpy(ev.channel, "web_EU-1");
    expect_ok(&ev);
    /* a sku is not a token: slashes and spaces are fine */
    strcpy(ev.sku, "AB/12 x");
    expect_ok(&ev);
    cr_assert(sf_is_token("LOC-1") && sf_is_token("a_b"));
    cr_assert(!sf_is_token("") && !sf_is_token(NULL) && !sf_is_token("a*") &&
              !sf_is_token("caf\xc3\xa9"));
}

LEAK_TEST(event_validate, string_length_limit_is_64_bytes)
{
    char s[80];
    memset(s, 'x', sizeof s);
    char dst[SF_STR_MAX + 1];
    sf_error err;
    cr_assert(sf_event_set_str(dst, s, 64, "sku", &err) == SF_OK);
    cr_assert(strlen(dst) == 64);
    cr_assert(sf_event_set_str(dst, s, 65, "sku", &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "field sku: 65 bytes, longer than 64") == 0, "%s", err.msg);
    /* 64 bytes of multi-byte UTF-8: 32 x U+00E9 */
    char e[64];
    for (int i = 0; i < 64; i += 2) {
        e[i] = (char)0xC3;
        e[i + 1] = (char)0xA9;
    }
    cr_assert(sf_event_set_str(dst, e, 64, "ref", &err) == SF_OK);
    /* a struct whose array is not terminated (set without set_str) */
    sf_event ev;
    valid_sale(&ev);
    memset(ev.sku, 'y', sizeof ev.sku);
    expect_reject(&ev, "field sku: not terminated within 64 bytes");
}

static void expect_utf8_reject(const char *s, size_t len, const char *msg)
{
    char dst[SF_STR_MAX + 1];
    sf_error err;
    cr_assert(sf_event_set_str(dst, s, len, "sku", &err) == SF_EINVAL, "accepted: %s", msg);
    cr_assert(strcmp(err.msg, msg) == 0, "\n  got:  %s\n  want: %s", err.msg, msg);
}

LEAK_TEST(event_validate, utf8_must_be_well_formed)
{
    char dst[SF_STR_MAX + 1];
    sf_error err;
    const char ok[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e \xef\xbf\xbd \xf4\x8f\xbf\xbf";
    cr_assert(sf_event_set_str(dst, ok, strlen(ok), "sku", &err) == SF_OK, "%s", err.msg);
    cr_assert(strcmp(dst, ok) == 0);
    expect_utf8_reject("a\xc0\xaf", 3, "field sku: 'a\\xc0\\xaf' is not valid UTF-8 (byte 2)");
    expect_utf8_reject("\xe0\x80\xaf", 3,
                       "field sku: '\\xe0\\x80\\xaf' is not valid UTF-8 (byte 1)"); /* overlong */
    expect_utf8_reject("\xed\xa0\x80", 3,
                       "field sku: '\\xed\\xa0\\x80' is not valid UTF-8 (byte 1)"); /* surrogate */
    expect_utf8_reject(
        "\xf4\x90\x80\x80", 4,
        "field sku: '\\xf4\\x90\\x80\\x80' is not valid UTF-8 (byte 1)"); /* > 10FFFF */
    expect_utf8_reject(
        "\xf0\x82\x82\xac", 4,
        "field sku: '\\xf0\\x82\\x82\\xac' is not valid UTF-8 (byte 1)"); /* overlong */
    expect_utf8_reject("ab\xc3", 3, "field sku: 'ab\\xc3' is not valid UTF-8 (byte 3)");
    expect_utf8_reject("\x80x", 2, "field sku: '\\x80x' is not valid UTF-8 (byte 1)");
    expect_utf8_reject("\xff", 1, "field sku: '\\xff' is not valid UTF-8 (byte 1)");
}

LEAK_TEST(event_validate, rejects_control_characters)
{
    expect_utf8_reject("a\nb", 3, "field sku: 'a\\x0ab' holds control character U+000A (byte 2)");
    expect_utf8_reject("a\0b", 3, "field sku: 'a\\x00b' holds control character U+0000 (byte 2)");
    expect_utf8_reject("del\x7f", 4,
                       "field sku: 'del\\x7f' holds control character U+007F (byte 4)");
    expect_utf8_reject("\tx", 2, "field sku: '\\x09x' holds control character U+0009 (byte 1)");
    /* C1 controls are control characters too (U+0085 NEL) */
    expect_utf8_reject("n\xc2\x85", 3,
                       "field sku: 'n\\xc2\\x85' holds control character U+0085 (byte 2)");
    sf_event ev;
    valid_sale(&ev);
    strcpy(ev.source, "feed\x1b[31m");
    expect_reject(&ev, "field source: 'feed\\x1b[31m' holds control character U+001B (byte 5)");
}

LEAK_TEST(event_validate, occurred_at_bounds)
{
    sf_event ev;
    valid_sale(&ev);
    ev.occurred_at = -5;
    expect_reject(&ev, "field occurred_at: -5 is before 1970-01-01T00:00:00Z");
    ev.occurred_at = 0;
    expect_ok(&ev);
    ev.occurred_at = NOW + 300000; /* exactly max_future_ms ahead: accepted */
    expect_ok(&ev);
    ev.occurred_at = NOW + 300001;
    expect_reject(&ev, "field occurred_at: 1795514700001 is 300001 ms ahead of now 1795514400000 "
                       "(max_future_ms 300000)");
    sf_error err;
    cr_assert(sf_event_validate(&ev, NOW, 600000, &err) == SF_OK);
    ev.occurred_at = INT64_MAX;
    cr_assert(sf_event_validate(&ev, INT64_MAX, INT64_MAX, &err) == SF_OK); /* no overflow */
    cr_assert(sf_event_validate(&ev, NOW, INT64_MAX, &err) == SF_OK);
}

LEAK_TEST(event_validate, rejects_unknown_kind_value)
{
    sf_event ev;
    valid_sale(&ev);
    ev.kind = (sf_kind)10;
    expect_reject(&ev, "field kind: 10 is not a kind");
}

/* SHA-256 hex of buf[0..len) computed here with EVP, independently of
 * sf_sha256_hex_joined's joining. */
static void evp_hex(const char *buf, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    cr_assert(EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL) == 1 && n == 32);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

LEAK_TEST(event_validate, derive_id_matches_sha256sum)
{
    /* printf 'SALE\x1fSKU-1\x1fSTORE-1\x1f2\x1f1795514400123\x1fweb-feed\x1fweb\x1forder-1\x1f\x1f'
     *   | sha256sum
     * fce204fda205e5a964a60a3226c4fc01277d47953248bd07bfe6a66cff9817b8 */
    sf_event ev;
    valid_sale(&ev);
    ev.event_id[0] = '\0';
    ev.occurred_at = INT64_C(1795514400123);
    ev.has_channel = true;
    strcpy(ev.channel, "web");
    ev.has_ref = true;
    strcpy(ev.ref, "order-1");
    sf_event_derive_id(&ev);
    cr_assert(strcmp(ev.event_id, "d-fce204fda205e5a964a60a3226c4fc01277d4795") == 0, "%s",
              ev.event_id);
    expect_ok(&ev);

    /* printf 'RETURN\x1fSKU-9\x1fLOC-1\x1f3\x1f1767225600000\x1fpos\x1f\x1f\x1fDAMAGED\x1f'
     *   | sha256sum
     * b8f6bc709737ed778ceda9c8911a3c51fdfe01f9871de14d677c729fb0ca185e */
    sf_event r;
    sf_event_init(&r);
    r.kind = SF_KIND_RETURN;
    strcpy(r.sku, "SKU-9");
    strcpy(r.location, "LOC-1");
    r.qty = 3;
    r.occurred_at = INT64_C(1767225600000);
    strcpy(r.source, "pos");
    r.has_condition = true;
    r.condition = SF_COND_DAMAGED;
    sf_event_derive_id(&r);
    cr_assert(strcmp(r.event_id, "d-b8f6bc709737ed778ceda9c8911a3c51fdfe01f9") == 0, "%s",
              r.event_id);

    /* printf
     * 'RESERVE\x1fSKU-1\x1fLOC-1\x1f4\x1f1767225600000\x1fweb\x1fweb\x1forder-7\x1f\x1f1767229200000'
     *   | sha256sum
     * 483b03f9a06307ed4920be589969b83b68711f447e6567f0b6bbe8020774cccf */
    sf_event v;
    sf_event_init(&v);
    v.kind = SF_KIND_RESERVE;
    strcpy(v.sku, "SKU-1");
    strcpy(v.location, "LOC-1");
    v.qty = 4;
    v.occurred_at = INT64_C(1767225600000);
    strcpy(v.source, "web");
    v.has_channel = true;
    strcpy(v.channel, "web");
    v.has_ref = true;
    strcpy(v.ref, "order-7");
    v.has_expires_at = true;
    v.expires_at = INT64_C(1767229200000);
    sf_event_derive_id(&v);
    cr_assert(strcmp(v.event_id, "d-483b03f9a06307ed4920be589969b83b68711f44") == 0, "%s",
              v.event_id);
}

LEAK_TEST(event_validate, derive_id_matches_evp_over_hand_joined_fields)
{
    sf_event ev;
    sf_event_init(&ev);
    ev.kind = SF_KIND_ADJUST;
    strcpy(ev.sku, "caf\xc3\xa9/1");
    strcpy(ev.location, "W_2");
    ev.qty = -17;
    ev.occurred_at = 42;
    strcpy(ev.source, "ops");
    sf_event_derive_id(&ev);
    static const char joined[] = "ADJUST\x1f"
                                 "caf\xc3\xa9/1\x1f"
                                 "W_2\x1f"
                                 "-17\x1f"
                                 "42\x1f"
                                 "ops\x1f"
                                 "\x1f"
                                 "\x1f"
                                 "\x1f";
    char hex[65], want[64];
    evp_hex(joined, sizeof joined - 1, hex);
    snprintf(want, sizeof want, "d-%.40s", hex);
    cr_assert(strcmp(ev.event_id, want) == 0, "got %s want %s", ev.event_id, want);
    cr_assert(strlen(ev.event_id) == 42);
}

LEAK_TEST(event_validate, derive_id_depends_on_every_field)
{
    sf_event a;
    valid_sale(&a);
    sf_event_derive_id(&a);
    char base[SF_STR_MAX + 1];
    strcpy(base, a.event_id);
    sf_event_derive_id(&a);
    cr_assert(strcmp(a.event_id, base) == 0, "same content, same id");

    sf_event b = a;
    b.has_ref = true; /* present but empty hashes like absent */
    sf_event_derive_id(&b);
    cr_assert(strcmp(b.event_id, base) == 0);
    strcpy(b.ref, "x");
    sf_event_derive_id(&b);
    cr_assert(strcmp(b.event_id, base) != 0);

    b = a;
    b.qty = 3;
    sf_event_derive_id(&b);
    cr_assert(strcmp(b.event_id, base) != 0);
    b = a;
    b.occurred_at++;
    sf_event_derive_id(&b);
    cr_assert(strcmp(b.event_id, base) != 0);
    b = a;
    strcpy(b.source, "other");
    sf_event_derive_id(&b);
    cr_assert(strcmp(b.event_id, base) != 0);
    /* the separator keeps field boundaries: "SKU-1"+"STORE-1" vs "SKU-1S"+"TORE-1" */
    b = a;
    strcpy(b.sku, "SKU-1S");
    strcpy(b.location, "TORE-1");
    sf_event_derive_id(&b);
    cr_assert(strcmp(b.event_id, base) != 0);
}

LEAK_TEST(event_validate, sha256_hex_joined)
{
    char out[65];
    const char *abc[1] = {"abc"};
    sf_sha256_hex_joined(abc, 1, 64, out);
    cr_assert(strcmp(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    /* printf 'a\x1fb' | sha256sum */
    const char *ab[2] = {"a", "b"};
    sf_sha256_hex_joined(ab, 2, 10, out);
    cr_assert(strcmp(out, "f04cdced97") == 0, "%s", out);
    /* printf '\x1f' | sha256sum: two empty parts, one NULL */
    const char *empties[2] = {"", NULL};
    sf_sha256_hex_joined(empties, 2, 64, out);
    cr_assert(strcmp(out, "ffe679bb831c95b67dc17819c63c5090d221aac6f4c7bf530f594ab43d21fa1e") == 0);
    sf_sha256_hex_joined(abc, 1, 99, out); /* clamped to 64 */
    cr_assert(strlen(out) == 64);
}

LEAK_TEST(event_validate, subject)
{
    sf_event ev;
    valid_sale(&ev);
    ev.kind = SF_KIND_TRANSFER_OUT;
    char buf[64];
    sf_error err;
    cr_assert(sf_event_subject(&ev, buf, sizeof buf, &err) == SF_OK);
    cr_assert(strcmp(buf, "inv.evt.transfer_out.STORE-1") == 0, "%s", buf);
    char small[28]; /* needs 29 with the NUL */
    cr_assert(sf_event_subject(&ev, small, sizeof small, &err) == SF_EINVAL);
    cr_assert(small[0] == '\0');
    char exact[29];
    cr_assert(sf_event_subject(&ev, exact, sizeof exact, &err) == SF_OK);
}

LEAK_TEST(event_validate, quote_escapes_and_truncates)
{
    char q[128];
    sf_str_quote("a\x01\\b", 4, q, sizeof q);
    cr_assert(strcmp(q, "'a\\x01\\\\b'") == 0, "%s", q);
    sf_str_quote("caf\xc3\xa9", 5, q, sizeof q);
    cr_assert(strcmp(q, "'caf\xc3\xa9'") == 0, "valid UTF-8 stays readable: %s", q);
    char longs[100];
    memset(longs, 'z', sizeof longs);
    sf_str_quote(longs, sizeof longs, q, sizeof q);
    cr_assert(strlen(q) == 40 + 2 + 3 && strcmp(q + 41, "'...") == 0, "%s", q);
    char tiny[10];
    sf_str_quote(longs, sizeof longs, tiny, sizeof tiny);
    cr_assert(strlen(tiny) < sizeof tiny);
}

LEAK_TEST(event_validate, now_ms_is_the_wall_clock)
{
    int64_t a = (int64_t)time(NULL) * 1000;
    int64_t n = sf_now_ms();
    cr_assert(n >= a - 2000 && n <= a + 2000, "%lld vs %lld", (long long)n, (long long)a);
}
