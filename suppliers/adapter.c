/*
 * adapter: sf_decimal_parse (adapter.h) and the helpers the text adapters
 * share (adapter_util.h): field names, the mapping syntax of the config,
 * config errors, supplier times, the row builder and the business digest.
 *
 * To change a field rule (what a quantity, a time or a kind may look like)
 * change it here: csv and jsonl only find each field's text and call
 * sf_adapter_row_build(), so both formats follow the same rules and give
 * the same reasons. Every reason starts "field <name>: " like the event
 * parser's, so a reject file reads the same whatever the feed's format.
 */
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "adapter.h"
#include "adapter_util.h"
#include "event_parse.h"

#define ADAPTER__DECIMAL_MAX_DIGITS 18
#define ADAPTER__DECIMAL_MAX_SCALE 6
#define ADAPTER__MS_2000 INT64_C(946684800000) /* 2000-01-01T00:00:00Z */
#define ADAPTER__DAY_MS INT64_C(86400000)

/* --- decimals ----------------------------------------------------------------- */

sf_status sf_decimal_parse(const char *s, size_t len, const char *field, sf_decimal *out,
                           sf_error *err)
{
    char why[64];
    size_t i = 0;
    bool neg = false, point = false, any = false;
    uint64_t units = 0;
    int digits = 0, scale = 0;
    if (len == 0) {
        snprintf(why, sizeof why, "empty");
        goto fail;
    }
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i = 1;
    }
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= '0' && c <= '9') {
            if (point && ++scale > ADAPTER__DECIMAL_MAX_SCALE) {
                snprintf(why, sizeof why, "more than %d decimals", ADAPTER__DECIMAL_MAX_SCALE);
                goto fail;
            }
            any = true;
            /* leading zeros are not significant digits */
            if (units != 0 || c != '0') {
                if (++digits > ADAPTER__DECIMAL_MAX_DIGITS) {
                    snprintf(why, sizeof why, "more than %d digits", ADAPTER__DECIMAL_MAX_DIGITS);
                    goto fail;
                }
            }
            units = units * 10 + (unsigned)(c - '0'); /* < 10^18: no overflow */
        } else if (c == '.' && !point) {
            if (!any) {
                snprintf(why, sizeof why, "no digit before '.'");
                goto fail;
            }
            point = true;
        } else {
            if (c > 0x20 && c < 0x7F)
                snprintf(why, sizeof why, "unexpected '%c' at byte %zu", c, i + 1);
            else
                snprintf(why, sizeof why, "unexpected byte 0x%02x at byte %zu", c, i + 1);
            goto fail;
        }
    }
    if (!any) {
        snprintf(why, sizeof why, "no digits");
        goto fail;
    }
    if (point && scale == 0) {
        snprintf(why, sizeof why, "no digit after '.'");
        goto fail;
    }
    out->units = neg ? -(int64_t)units : (int64_t)units;
    out->scale = scale;
    return SF_OK;
fail : {
    char q[200];
    sf_str_quote(s, len, q, sizeof q);
    return SF_ERR(err, SF_EINVAL, "field %s: %s is not a decimal number (%s)", field, q, why);
}
}

/* --- fields and configuration -------------------------------------------------- */

static const char *const adapter__field_names[SF_AF__COUNT] = {
    "sku", "qty", "location", "uom", "occurred_at", "kind", "ref",
};

const char *sf_adapter_field_name(sf_adapter_field f)
{
    if ((unsigned)f >= SF_AF__COUNT)
        return "?";
    return adapter__field_names[f];
}

int sf_adapter_field_lookup(const char *name, size_t len)
{
    for (int f = 0; f < SF_AF__COUNT; f++) {
        if (strlen(adapter__field_names[f]) == len &&
            memcmp(adapter__field_names[f], name, len) == 0)
            return f;
    }
    return -1;
}

static bool adapter__blank(char c)
{
    return c == ' ' || c == '\t';
}

sf_status sf_adapter_pairs_parse(const char *value, sf_adapter_pair *out, size_t max, size_t *n,
                                 sf_error *err)
{
    size_t len = strlen(value), i = 0;
    *n = 0;
    for (;;) {
        size_t item = *n + 1;
        while (i < len && adapter__blank(value[i]))
            i++;
        if (i == len)
            return item == 1 ? SF_ERR(err, SF_EINVAL, "no name=value items")
                             : SF_ERR(err, SF_EINVAL, "item %zu: empty (after a comma)", item);
        size_t name_start = i;
        while (i < len && value[i] != '=' && value[i] != ',')
            i++;
        size_t name_end = i;
        while (name_end > name_start && adapter__blank(value[name_end - 1]))
            name_end--;
        if (i == len || value[i] == ',')
            return SF_ERR(err, SF_EINVAL, "item %zu: expected name=value", item);
        if (name_end == name_start)
            return SF_ERR(err, SF_EINVAL, "item %zu: empty name", item);
        if (*n == max)
            return SF_ERR(err, SF_EINVAL, "more than %zu items", max);
        sf_adapter_pair *p = &out[*n];
        size_t name_len = name_end - name_start;
        if (name_len > SF_ADAPTER_PAIR_NAME_MAX)
            return SF_ERR(err, SF_EINVAL, "item %zu: name longer than %d bytes", item,
                          SF_ADAPTER_PAIR_NAME_MAX);
        memcpy(p->name, value + name_start, name_len);
        p->name[name_len] = '\0';
        i++; /* '=' */
        while (i < len && adapter__blank(value[i]))
            i++;
        size_t vlen = 0;
        if (i < len && value[i] == '"') {
            i++;
            for (;;) {
                if (i == len)
                    return SF_ERR(err, SF_EINVAL, "item %zu (%s): unclosed quote", item, p->name);
                if (value[i] == '"') {
                    if (i + 1 < len && value[i + 1] == '"') {
                        i++;
                    } else {
                        i++;
                        break;
                    }
                }
                if (vlen == SF_ADAPTER_PAIR_VALUE_MAX)
                    return SF_ERR(err, SF_EINVAL, "item %zu (%s): value longer than %d bytes", item,
                                  p->name, SF_ADAPTER_PAIR_VALUE_MAX);
                p->value[vlen++] = value[i++];
            }
            while (i < len && adapter__blank(value[i]))
                i++;
            if (i < len && value[i] != ',')
                return SF_ERR(err, SF_EINVAL, "item %zu (%s): text after the closing quote", item,
                              p->name);
        } else {
            size_t start = i;
            while (i < len && value[i] != ',')
                i++;
            size_t end = i;
            while (end > start && adapter__blank(value[end - 1]))
                end--;
            vlen = end - start;
            if (vlen > SF_ADAPTER_PAIR_VALUE_MAX)
                return SF_ERR(err, SF_EINVAL, "item %zu (%s): value longer than %d bytes", item,
                              p->name, SF_ADAPTER_PAIR_VALUE_MAX);
            memcpy(p->value, value + start, vlen);
        }
        p->value[vlen] = '\0';
        if (vlen == 0)
            return SF_ERR(err, SF_EINVAL, "item %zu (%s): empty value", item, p->name);
        (*n)++;
        if (i == len)
            return SF_OK;
        i++; /* ',' */
    }
}

sf_status sf_adapter_cfg_fail(sf_error *err, const char *file, int line, const sf_config *cfg,
                              const char *section, const char *key, const char *fmt, ...)
{
    char why[SF_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const sf_config_entry *e = sf_config_find(cfg, section, key);
    return sf_error_set(err, SF_EINVAL, file, line, "%s:%d: [%s] %s: %s",
                        cfg->path[0] ? cfg->path : "(config)", e ? e->line : 0, section, key, why);
}

sf_status sf_adapter_cfg_num(const sf_config *cfg, const char *section, const char *key,
                             int64_t min, int64_t max, const char *unit, int64_t *out,
                             sf_error *err)
{
    const char *v = sf_config_get(cfg, section, key);
    if (!v)
        return SF_OK;
    int64_t n = 0;
    size_t i = 0;
    for (; v[i] >= '0' && v[i] <= '9' && i < 10; i++)
        n = n * 10 + (v[i] - '0');
    if (i == 0 || v[i] != '\0' || n < min || n > max)
        return SF_ADAPTER_CFG_ERR(err, cfg, section, key,
                                  "'%.40s' is not a whole number of %s from %lld to %lld", v, unit,
                                  (long long)min, (long long)max);
    *out = n;
    return SF_OK;
}

/* count, asn or receipt, any case. */
static bool adapter__supplier_kind(const char *s, size_t len, sf_kind *out)
{
    static const struct {
        const char *name;
        sf_kind kind;
    } kinds[] = {{"count", SF_KIND_COUNT}, {"asn", SF_KIND_ASN}, {"receipt", SF_KIND_RECEIPT}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strlen(kinds[i].name) == len && strncasecmp(kinds[i].name, s, len) == 0) {
            *out = kinds[i].kind;
            return true;
        }
    }
    return false;
}

/* A unit as sent: a valid string of at most SF_UOM_MAX bytes. */
static sf_status adapter__uom(char dst[SF_UOM_MAX + 1], const char *s, size_t len, sf_error *err)
{
    char tmp[SF_STR_MAX + 1];
    sf_status st = sf_event_set_str(tmp, s, len, "uom", err);
    if (st != SF_OK)
        return st;
    if (len > SF_UOM_MAX) {
        char q[120];
        sf_str_quote(s, len, q, sizeof q);
        return SF_ERR(err, SF_EINVAL, "field uom: %s is %zu bytes, longer than %d", q, len,
                      SF_UOM_MAX);
    }
    memcpy(dst, tmp, len + 1);
    return SF_OK;
}

sf_status sf_adapter_defaults_configure(const sf_config *cfg, const char *section,
                                        sf_adapter_defaults *out, sf_error *err)
{
    out->kind = SF_KIND_COUNT;
    out->uom[0] = '\0';
    const char *v = sf_config_get(cfg, section, "kind");
    if (v && !adapter__supplier_kind(v, strlen(v), &out->kind))
        return SF_ADAPTER_CFG_ERR(err, cfg, section, "kind", "'%s' is not count, asn or receipt",
                                  v);
    v = sf_config_get(cfg, section, "uom");
    if (v) {
        sf_error why;
        if (adapter__uom(out->uom, v, strlen(v), &why) != SF_OK) {
            const char *m = why.msg; /* the key is named already */
            if (strncmp(m, "field uom: ", 11) == 0)
                m += 11;
            return SF_ADAPTER_CFG_ERR(err, cfg, section, "uom", "%s", m);
        }
    }
    return SF_OK;
}

/* --- time ------------------------------------------------------------------------ */

static bool adapter__all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return len > 0;
}

sf_status sf_adapter_time_parse(const char *s, size_t len, const sf_feed_ctx *ctx, int64_t *out_ms,
                                sf_error *err)
{
    char q[200];
    const char *why = "expected RFC 3339, YYYY-MM-DD[ HH:MM[:SS]] or epoch ms";
    int64_t ms;
    bool date_only = false;
    if (adapter__all_digits(s, len)) {
        if (len > 18) {
            why = "epoch ms out of range";
            goto fail;
        }
        ms = 0;
        for (size_t i = 0; i < len; i++)
            ms = ms * 10 + (s[i] - '0');
        goto check;
    }
    unsigned y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    if (len < 10 || !sf_parse_digits(s, 4, &y) || s[4] != '-' || !sf_parse_digits(s + 5, 2, &mo) ||
        s[7] != '-' || !sf_parse_digits(s + 8, 2, &d))
        goto fail;
    size_t i = 10;
    if (i == len) {
        date_only = true;
    } else {
        if ((s[i] != 'T' && s[i] != 't' && s[i] != ' ') || len - i < 6 ||
            !sf_parse_digits(s + 11, 2, &h) || s[13] != ':' || !sf_parse_digits(s + 14, 2, &mi))
            goto fail;
        i = 16;
        if (i < len && s[i] == ':') {
            if (len - i < 3 || !sf_parse_digits(s + 17, 2, &sec))
                goto fail;
            i = 19;
            if (i < len && s[i] == '.') {
                size_t start = ++i;
                while (i < len && s[i] >= '0' && s[i] <= '9')
                    i++;
                if (i == start || i - start > 9) {
                    why = "the fraction must have 1 to 9 digits";
                    goto fail;
                }
                for (size_t k = 0; k < 3; k++)
                    frac = frac * 10 + (start + k < i ? (unsigned)(s[start + k] - '0') : 0);
            }
        }
        if (i < len && (s[i] == 'Z' || s[i] == 'z' || s[i] == '+' || s[i] == '-')) {
            /* an explicit offset: the supplier's timezone does not apply */
            sf_status st = sf_time_parse_rfc3339(s, len, &ms, err);
            if (st != SF_OK) {
                sf_error_prefix(err, "field occurred_at: ");
                return st;
            }
            goto check;
        }
        if (i != len) {
            why = "trailing characters";
            goto fail;
        }
    }
    if (mo < 1 || mo > 12) {
        why = "month out of range";
        goto fail;
    }
    if (d < 1 || d > sf_days_in_month(y, mo)) {
        why = "day out of range for the month";
        goto fail;
    }
    if (h > 23 || mi > 59 || sec > 59) {
        why = "hour, minute or second out of range";
        goto fail;
    }
    int64_t local = (sf_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) * 1000 + frac;
    ms = local - (int64_t)ctx->tz_offset_s * 1000;
    if (date_only) {
        /* the end of that day, or the read time on the day of reading */
        int64_t end = ms + ADAPTER__DAY_MS - 1;
        if (end > ctx->read_at_ms && ms <= ctx->read_at_ms)
            end = ctx->read_at_ms;
        ms = end;
    }
check:
    if (ms < ADAPTER__MS_2000) {
        sf_str_quote(s, len, q, sizeof q);
        return SF_ERR(err, SF_EINVAL, "field occurred_at: %s is before 2000-01-01", q);
    }
    if (ms > ctx->read_at_ms) {
        char when[32];
        sf_str_quote(s, len, q, sizeof q);
        if (!sf_time_format_rfc3339(ctx->read_at_ms, when, sizeof when))
            snprintf(when, sizeof when, "%lld", (long long)ctx->read_at_ms);
        return SF_ERR(err, SF_EINVAL, "field occurred_at: %s is in the future (read at %s)", q,
                      when);
    }
    *out_ms = ms;
    return SF_OK;
fail:
    sf_str_quote(s, len, q, sizeof q);
    return SF_ERR(err, SF_EINVAL, "field occurred_at: %s is not a time (%s)", q, why);
}

/* --- rows -------------------------------------------------------------------------- */

void sf_adapter_row_start(sf_supplier_row *row, uint64_t ordinal, uint64_t line)
{
    memset(row, 0, sizeof *row);
    row->ordinal = ordinal;
    snprintf(row->position, sizeof row->position, "line %llu", (unsigned long long)line);
    row->ok = true;
}

static sf_status adapter__build(sf_supplier_row *row, const sf_adapter_val v[SF_AF__COUNT],
                                const sf_adapter_defaults *d, const sf_feed_ctx *ctx, sf_error *err)
{
    sf_status st;
    if (v[SF_AF_SKU].len == 0)
        return SF_ERR(err, SF_EINVAL, "field sku: missing");
    if ((st = sf_event_set_str(row->item, v[SF_AF_SKU].s, v[SF_AF_SKU].len, "sku", err)) != SF_OK)
        return st;
    if (v[SF_AF_QTY].len == 0)
        return SF_ERR(err, SF_EINVAL, "field qty: missing");
    if ((st = sf_decimal_parse(v[SF_AF_QTY].s, v[SF_AF_QTY].len, "qty", &row->qty, err)) != SF_OK)
        return st;
    if (v[SF_AF_LOCATION].len > 0 &&
        (st = sf_event_set_str(row->location, v[SF_AF_LOCATION].s, v[SF_AF_LOCATION].len,
                               "location", err)) != SF_OK)
        return st;
    if (v[SF_AF_UOM].len > 0) {
        if ((st = adapter__uom(row->uom, v[SF_AF_UOM].s, v[SF_AF_UOM].len, err)) != SF_OK)
            return st;
    } else {
        memcpy(row->uom, d->uom, sizeof row->uom);
    }
    if (v[SF_AF_OCCURRED_AT].len > 0 &&
        (st = sf_adapter_time_parse(v[SF_AF_OCCURRED_AT].s, v[SF_AF_OCCURRED_AT].len, ctx,
                                    &row->occurred_at, err)) != SF_OK)
        return st;
    row->kind = d->kind;
    if (v[SF_AF_KIND].len > 0 &&
        !adapter__supplier_kind(v[SF_AF_KIND].s, v[SF_AF_KIND].len, &row->kind)) {
        char q[120];
        sf_str_quote(v[SF_AF_KIND].s, v[SF_AF_KIND].len, q, sizeof q);
        return SF_ERR(err, SF_EINVAL, "field kind: %s is not count, asn or receipt", q);
    }
    if (v[SF_AF_REF].len > 0 &&
        (st = sf_event_set_str(row->ref, v[SF_AF_REF].s, v[SF_AF_REF].len, "ref", err)) != SF_OK)
        return st;
    return SF_OK;
}

void sf_adapter_row_build(sf_supplier_row *row, const sf_adapter_val vals[SF_AF__COUNT],
                          const sf_adapter_defaults *d, const sf_feed_ctx *ctx)
{
    if (adapter__build(row, vals, d, ctx, &row->error) != SF_OK)
        row->ok = false;
}

/* --- digest ------------------------------------------------------------------------- */

sf_status sf_adapter_digest_begin(sf_adapter_digest *d, sf_error *err)
{
    d->failed = false;
    d->values = 0;
    d->md = EVP_MD_CTX_new();
    if (!d->md)
        return SF_ERR(err, SF_ENOMEM, "out of memory (digest)");
    if (EVP_DigestInit_ex(d->md, EVP_sha256(), NULL) != 1) {
        sf_adapter_digest_free(d);
        return SF_ERR(err, SF_EINTERNAL, "SHA-256 unavailable");
    }
    return SF_OK;
}

static void adapter__hash(sf_adapter_digest *d, const void *p, size_t n)
{
    if (!d->failed && n > 0 && EVP_DigestUpdate(d->md, p, n) != 1)
        d->failed = true;
}

void sf_adapter_digest_more(sf_adapter_digest *d, const char *s, size_t len)
{
    if (len == 0)
        return;     /* s may be NULL then */
    size_t run = 0; /* start of the bytes not yet hashed */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0x1B || c == 0x1E || c == 0x1F) {
            static const unsigned char esc = 0x1B;
            adapter__hash(d, s + run, i - run);
            adapter__hash(d, &esc, 1);
            run = i; /* the byte itself goes with the next run */
        }
    }
    adapter__hash(d, s + run, len - run);
}

void sf_adapter_digest_start_value(sf_adapter_digest *d)
{
    if (d->values++ > 0)
        sf_adapter_digest_marker(d, 0x1F);
}

void sf_adapter_digest_value(sf_adapter_digest *d, const char *s, size_t len)
{
    sf_adapter_digest_start_value(d);
    sf_adapter_digest_more(d, s, len);
}

void sf_adapter_digest_marker(sf_adapter_digest *d, unsigned char b)
{
    adapter__hash(d, &b, 1);
}

void sf_adapter_digest_end_record(sf_adapter_digest *d)
{
    sf_adapter_digest_marker(d, 0x1E);
    d->values = 0;
}

void sf_adapter_digest_defaults(sf_adapter_digest *d, const sf_adapter_defaults *def)
{
    const char *kind = sf_kind_token(def->kind);
    sf_adapter_digest_value(d, kind, strlen(kind));
    sf_adapter_digest_value(d, def->uom, strlen(def->uom));
}

sf_status sf_adapter_digest_end(sf_adapter_digest *d, char hex[65], sf_error *err)
{
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    hex[0] = '\0';
    bool ok = !d->failed && EVP_DigestFinal_ex(d->md, sum, &n) == 1 && n == 32;
    sf_adapter_digest_free(d);
    if (!ok)
        return SF_ERR(err, SF_EINTERNAL, "SHA-256 failed");
    for (unsigned i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", sum[i]);
    return SF_OK;
}

void sf_adapter_digest_free(sf_adapter_digest *d)
{
    EVP_MD_CTX_free(d->md);
    d->md = NULL;
}
