/*
 * event: the rules of DESIGN.md "Events" for the one internal event model.
 *
 * Every producer funnels through sf_event_set_str() while building and
 * sf_event_validate() at the end, and both share one string checker
 * (event__check_str), so a string rule changes in exactly one place. Error
 * messages always start "field <name>: " and quote values through
 * sf_str_quote(), so no hostile byte reaches a log or reject file. The
 * derived id hashes the fields in the contract's order: reordering or
 * re-formatting any part changes every derived id ever published.
 */
#include "event.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const event__kind_names[SF_KIND__COUNT] = {
    "SALE",   "RETURN",       "RECEIPT",     "ASN",     "COUNT",
    "ADJUST", "TRANSFER_OUT", "TRANSFER_IN", "RESERVE", "RELEASE",
};

static const char *const event__kind_tokens[SF_KIND__COUNT] = {
    "sale",   "return",       "receipt",     "asn",     "count",
    "adjust", "transfer_out", "transfer_in", "reserve", "release",
};

void sf_event_init(sf_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = SF_KIND_SALE;
}

const char *sf_kind_name(sf_kind kind)
{
    if ((unsigned)kind >= SF_KIND__COUNT)
        return "?";
    return event__kind_names[kind];
}

const char *sf_kind_token(sf_kind kind)
{
    if ((unsigned)kind >= SF_KIND__COUNT)
        return "?";
    return event__kind_tokens[kind];
}

sf_status sf_kind_parse(const char *name, sf_kind *out, sf_error *err)
{
    for (int k = 0; k < SF_KIND__COUNT; k++) {
        if (strcasecmp(name, event__kind_names[k]) == 0) {
            *out = (sf_kind)k;
            return SF_OK;
        }
    }
    char q[64];
    sf_str_quote(name, strlen(name), q, sizeof q);
    return SF_ERR(err, SF_EINVAL,
                  "field kind: %s is not a kind (SALE, RETURN, RECEIPT, ASN, COUNT, ADJUST, "
                  "TRANSFER_OUT, TRANSFER_IN, RESERVE, RELEASE)",
                  q);
}

const char *sf_condition_name(sf_condition cond)
{
    switch (cond) {
    case SF_COND_RESELLABLE: return "RESELLABLE";
    case SF_COND_DAMAGED: return "DAMAGED";
    }
    return "?";
}

sf_status sf_condition_parse(const char *name, sf_condition *out, sf_error *err)
{
    if (strcasecmp(name, "RESELLABLE") == 0) {
        *out = SF_COND_RESELLABLE;
        return SF_OK;
    }
    if (strcasecmp(name, "DAMAGED") == 0) {
        *out = SF_COND_DAMAGED;
        return SF_OK;
    }
    char q[64];
    sf_str_quote(name, strlen(name), q, sizeof q);
    return SF_ERR(err, SF_EINVAL, "field condition: %s is not RESELLABLE or DAMAGED", q);
}

/* Length of the well-formed UTF-8 sequence at s[0..len) (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0 if it is
 * not one. *cp receives the code point. */
static size_t event__utf8_seq(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        *cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        *cp = c & 0x0Fu;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        *cp = c & 0x07u;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    *cp = (*cp << 6) | (s[1] & 0x3Fu);
    for (size_t i = 2; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3Fu);
    }
    return n;
}

static bool event__utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = event__utf8_seq(p + i, len - i, &cp);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

void sf_str_quote(const char *s, size_t len, char *out, size_t size)
{
    if (size == 0)
        return;
    const size_t max_shown = 40;
    bool utf8 = event__utf8_valid(s, len);
    size_t o = 0;
    /* Reserve room for the closing quote, "..." and the NUL. */
    if (size < 8) {
        out[0] = '\0';
        return;
    }
    size_t limit = size - 6;
    out[o++] = '\'';
    size_t i = 0;
    for (; i < len && i < max_shown; i++) {
        unsigned char c = (unsigned char)s[i];
        /* C1 controls (U+0080..U+009F) are 0xC2 0x80..0x9F in UTF-8 */
        bool c1 = utf8 && ((c == 0xC2 && i + 1 < len && (unsigned char)s[i + 1] <= 0x9F) ||
                           (c >= 0x80 && c <= 0x9F && i > 0 && (unsigned char)s[i - 1] == 0xC2));
        bool escape = c < 0x20 || c == 0x7F || (c >= 0x80 && !utf8) || c1 || c == '\\';
        size_t need = escape ? 4 : 1;
        if (o + need > limit)
            break;
        if (escape) {
            if (c == '\\') {
                out[o++] = '\\';
                out[o++] = '\\';
            } else {
                snprintf(out + o, 5, "\\x%02x", c);
                o += 4;
            }
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '\'';
    if (i < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* The contract's checks on one string value, in the order an operator
 * fixes them: length, encoding, control characters. C1 controls
 * (U+0080..U+009F) are control characters too (Unicode category Cc). */
static sf_status event__check_str(const char *s, size_t len, const char *field, sf_error *err)
{
    if (len > SF_STR_MAX)
        return SF_ERR(err, SF_EINVAL, "field %s: %zu bytes, longer than %d", field, len,
                      SF_STR_MAX);
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = event__utf8_seq(p + i, len - i, &cp);
        if (n == 0) {
            char q[200];
            sf_str_quote(s, len, q, sizeof q);
            return SF_ERR(err, SF_EINVAL, "field %s: %s is not valid UTF-8 (byte %zu)", field, q,
                          i + 1);
        }
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
            char q[200];
            sf_str_quote(s, len, q, sizeof q);
            return SF_ERR(err, SF_EINVAL, "field %s: %s holds control character U+%04X (byte %zu)",
                          field, q, (unsigned)cp, i + 1);
        }
        i += n;
    }
    return SF_OK;
}

sf_status sf_event_set_str(char dst[SF_STR_MAX + 1], const char *src, size_t len, const char *field,
                           sf_error *err)
{
    sf_status st = event__check_str(src, len, field, err);
    if (st != SF_OK)
        return st;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return SF_OK;
}

static bool event__token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bool sf_is_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (!event__token_char(*p))
            return false;
    }
    return true;
}

/* A string field of the struct: NUL-terminated within its array, then the
 * common checks; `required` forbids the empty string, `token` asks for a
 * subject token. */
static sf_status event__check_field(const char *s, const char *field, bool required, bool token,
                                    sf_error *err)
{
    const char *nul = memchr(s, '\0', SF_STR_MAX + 1);
    if (!nul)
        return SF_ERR(err, SF_EINVAL, "field %s: not terminated within %d bytes", field,
                      SF_STR_MAX);
    size_t len = (size_t)(nul - s);
    if (len == 0)
        return required ? SF_ERR(err, SF_EINVAL, "field %s: empty (required)", field)
                        : SF_ERR(err, SF_EINVAL, "field %s: empty (omit the field instead)", field);
    sf_status st = event__check_str(s, len, field, err);
    if (st != SF_OK)
        return st;
    if (token) {
        for (size_t i = 0; i < len; i++) {
            if (!event__token_char((unsigned char)s[i])) {
                char q[200];
                sf_str_quote(s, len, q, sizeof q);
                return SF_ERR(err, SF_EINVAL,
                              "field %s: %s has a character outside A-Z a-z 0-9 _ - (byte %zu)",
                              field, q, i + 1);
            }
        }
    }
    return SF_OK;
}

sf_status sf_event_validate(const sf_event *ev, int64_t now_ms, int64_t max_future_ms,
                            sf_error *err)
{
    sf_status st;
    if ((st = event__check_field(ev->event_id, "event_id", true, false, err)) != SF_OK)
        return st;
    if ((unsigned)ev->kind >= SF_KIND__COUNT)
        return SF_ERR(err, SF_EINVAL, "field kind: %d is not a kind", (int)ev->kind);
    if ((st = event__check_field(ev->sku, "sku", true, false, err)) != SF_OK)
        return st;
    if ((st = event__check_field(ev->location, "location", true, true, err)) != SF_OK)
        return st;
    if (ev->qty < 0 && ev->kind != SF_KIND_ADJUST)
        return SF_ERR(err, SF_EINVAL, "field qty: %lld is negative (only ADJUST may be)",
                      (long long)ev->qty);
    if (ev->occurred_at < 0)
        return SF_ERR(err, SF_EINVAL, "field occurred_at: %lld is before 1970-01-01T00:00:00Z",
                      (long long)ev->occurred_at);
    if (max_future_ms < 0)
        max_future_ms = 0;
    int64_t limit;
    if (__builtin_add_overflow(now_ms, max_future_ms, &limit))
        limit = INT64_MAX;
    if (ev->occurred_at > limit) {
        int64_t ahead;
        if (__builtin_sub_overflow(ev->occurred_at, now_ms, &ahead))
            ahead = INT64_MAX;
        return SF_ERR(err, SF_EINVAL,
                      "field occurred_at: %lld is %lld ms ahead of now %lld (max_future_ms %lld)",
                      (long long)ev->occurred_at, (long long)ahead, (long long)now_ms,
                      (long long)max_future_ms);
    }
    if ((st = event__check_field(ev->source, "source", true, false, err)) != SF_OK)
        return st;
    if (ev->has_channel &&
        (st = event__check_field(ev->channel, "channel", false, true, err)) != SF_OK)
        return st;
    if (ev->has_ref && (st = event__check_field(ev->ref, "ref", false, false, err)) != SF_OK)
        return st;
    if (ev->has_condition) {
        if (ev->kind != SF_KIND_RETURN)
            return SF_ERR(err, SF_EINVAL,
                          "field condition: only RETURN may carry a condition (kind is %s)",
                          sf_kind_name(ev->kind));
        if (ev->condition != SF_COND_RESELLABLE && ev->condition != SF_COND_DAMAGED)
            return SF_ERR(err, SF_EINVAL, "field condition: %d is not a condition",
                          (int)ev->condition);
    }
    if (ev->has_expires_at) {
        if (ev->kind != SF_KIND_RESERVE)
            return SF_ERR(err, SF_EINVAL,
                          "field expires_at: only RESERVE may carry expires_at (kind is %s)",
                          sf_kind_name(ev->kind));
        if (ev->expires_at < 0)
            return SF_ERR(err, SF_EINVAL, "field expires_at: %lld is before 1970-01-01T00:00:00Z",
                          (long long)ev->expires_at);
    }
    return SF_OK;
}

void sf_event_derive_id(sf_event *ev)
{
    char qty[24], occurred[24], expires[24] = "";
    snprintf(qty, sizeof qty, "%lld", (long long)ev->qty);
    snprintf(occurred, sizeof occurred, "%lld", (long long)ev->occurred_at);
    if (ev->has_expires_at)
        snprintf(expires, sizeof expires, "%lld", (long long)ev->expires_at);
    const char *parts[10] = {
        sf_kind_name(ev->kind),
        ev->sku,
        ev->location,
        qty,
        occurred,
        ev->source,
        ev->has_channel ? ev->channel : "",
        ev->has_ref ? ev->ref : "",
        ev->has_condition ? sf_condition_name(ev->condition) : "",
        expires,
    };
    char hex[41];
    sf_sha256_hex_joined(parts, 10, 40, hex);
    if (hex[0] == '\0') {
        ev->event_id[0] = '\0'; /* rejected by validation, never a collision */
        return;
    }
    snprintf(ev->event_id, sizeof ev->event_id, "d-%s", hex);
}

sf_status sf_event_subject(const sf_event *ev, char *buf, size_t size, sf_error *err)
{
    int n = snprintf(buf, size, "inv.evt.%s.%s", sf_kind_token(ev->kind), ev->location);
    if (n < 0 || (size_t)n >= size) {
        if (size > 0)
            buf[0] = '\0';
        return SF_ERR(err, SF_EINVAL, "subject for location '%.64s' does not fit in %zu bytes",
                      ev->location, size);
    }
    return SF_OK;
}

void sf_sha256_hex_joined(const char *const *parts, size_t n, size_t hex_len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    static const unsigned char sep = 0x1F;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (hex_len > 64)
        hex_len = 64;
    out[0] = '\0';
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return;
    int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < n; i++) {
        if (i > 0)
            ok = EVP_DigestUpdate(ctx, &sep, 1);
        const char *p = parts[i] ? parts[i] : "";
        if (ok)
            ok = EVP_DigestUpdate(ctx, p, strlen(p));
    }
    if (ok)
        ok = EVP_DigestFinal_ex(ctx, md, &md_len);
    EVP_MD_CTX_free(ctx);
    if (!ok || md_len != 32)
        return;
    for (size_t i = 0; i < hex_len; i++) {
        unsigned char b = md[i / 2];
        out[i] = digits[(i % 2 == 0) ? (b >> 4) : (b & 0x0F)];
    }
    out[hex_len] = '\0';
}

int64_t sf_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
