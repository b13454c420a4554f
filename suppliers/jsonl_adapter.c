/*
 * jsonl_adapter: a supplier's JSON-lines feed -> supplier rows (adapter.h,
 * format "jsonl"). One JSON object a line (jansson, duplicate keys
 * refused), LF or CRLF, an optional UTF-8 BOM, blank lines skipped, lines
 * of at most JSONL__LINE_MAX bytes. Each of our fields is found by an
 * RFC 6901 JSON pointer (~0 ~1 escapes, array indices).
 *
 * The one idea: a quantity is never read through a double. jansson parses
 * a real with strtod, so for a real the adapter finds the value's own text
 * in the line (jsonl__locate: a small scanner that walks the same pointer
 * over the raw bytes jansson has already validated) and reads that text
 * as a decimal. Integers are printed back exactly; strings are taken as
 * they are. Everything else (required fields, types, times, kinds) is the
 * shared row builder's (adapter_util.h).
 *
 * Digest: a first record of the defaults (kind token, uom), then for
 * each record the text of our seven fields (sku, qty,
 * location, uom, occurred_at, kind, ref; absent or null = empty, a real
 * as its source text, a value of the wrong type as jansson's compact
 * sorted dump) joined by 0x1F, each record ended by 0x1E. So key order,
 * spacing, line ends and fields we do not map (descriptions, export
 * stamps) do not change it, while any value we publish does. A line that
 * is not a JSON object is hashed as its own bytes after a 0x1C marker.
 *
 * Example, matching examples/suppliers/umbrella-stock.jsonl (format,
 * timezone and location_map are read by supplier_config.c, the others
 * here):
 *
 *   [supplier.umbrella]
 *   format = jsonl
 *   timezone = -05:00
 *   location_map = RC-1=DC-RACCOON, RC-2=STORE-RACCOON
 *   fields = sku=/item/id, qty=/qty, location=/warehouse, uom=/uom,
 *       occurred_at=/as_of, kind=/type, ref=/po
 *   kind = count
 *   uom = EA
 *
 * Keys: fields (our field = JSON pointer; sku and qty required; when the
 * key is absent: sku=/sku, qty=/qty, location=/location, uom=/uom,
 * occurred_at=/occurred_at, kind=/kind, ref=/ref), kind and uom (defaults
 * when the value is absent). An optional field whose pointer finds
 * nothing, or null, is not given. Types: sku, location and ref a string
 * or an integer; qty an integer, a real or a decimal string; occurred_at
 * a time string or integer epoch ms; uom and kind strings.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "adapter_util.h"

#define JSONL__LINE_MAX ((size_t)1 << 20) /* bytes of one line, its line end excluded */
#define JSONL__TOKENS_MAX 32
#define JSONL__PTR_MAX SF_ADAPTER_PAIR_VALUE_MAX
#define JSONL__NUM_MAX 160 /* a real written out without exponent */

typedef struct jsonl__ptr {
    bool mapped;
    char text[JSONL__PTR_MAX + 1];   /* as configured, for messages */
    char tokens[JSONL__PTR_MAX + 1]; /* decoded reference tokens, each NUL-ended */
    size_t ntok;
} jsonl__ptr;

typedef struct jsonl__opts {
    jsonl__ptr ptr[SF_AF__COUNT];
    sf_adapter_defaults d;
} jsonl__opts;

typedef struct jsonl__state {
    jsonl__opts o;
    sf_feed_ctx ctx;
    const char *data;
    size_t len, pos;
    uint64_t line; /* number of the next line */
    uint64_t ordinal;
    char digest[65];
} jsonl__state;

static const char *const jsonl__keys[] = {"fields", "kind", "uom", NULL};

static const char *const jsonl__default_ptr[SF_AF__COUNT] = {
    "/sku", "/qty", "/location", "/uom", "/occurred_at", "/kind", "/ref",
};

/* --- configuration ------------------------------------------------------------ */

/* RFC 6901: "" or "/" tokens, "~0" is '~' and "~1" is '/'. */
static bool jsonl__ptr_parse(const char *text, jsonl__ptr *p, const char **why)
{
    size_t len = strlen(text), o = 0;
    *p = (jsonl__ptr){.mapped = true};
    if (len > JSONL__PTR_MAX) {
        *why = "longer than 256 bytes";
        return false;
    }
    memcpy(p->text, text, len + 1);
    if (len == 0)
        return true;
    if (text[0] != '/') {
        *why = "a JSON pointer starts with '/'";
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '/') {
            if (p->ntok == JSONL__TOKENS_MAX) {
                *why = "more than 32 reference tokens";
                return false;
            }
            if (i > 0)
                p->tokens[o++] = '\0';
            p->ntok++;
        } else if (c == '~') {
            if (i + 1 < len && (text[i + 1] == '0' || text[i + 1] == '1')) {
                p->tokens[o++] = text[i + 1] == '0' ? '~' : '/';
                i++;
            } else {
                *why = "'~' must be followed by 0 or 1";
                return false;
            }
        } else {
            p->tokens[o++] = c;
        }
    }
    p->tokens[o] = '\0'; /* o < len: the first '/' takes no byte */
    return true;
}

static sf_status jsonl__configure(const sf_config *cfg, const char *section, void **opts,
                                  sf_error *err)
{
    *opts = NULL;
    jsonl__opts *o = calloc(1, sizeof *o);
    if (!o)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    sf_status st;
    const char *why;
    const char *v = sf_config_get(cfg, section, "fields");
    if (!v) {
        for (int f = 0; f < SF_AF__COUNT; f++) {
            bool ok = jsonl__ptr_parse(jsonl__default_ptr[f], &o->ptr[f], &why);
            (void)ok; /* the defaults are well formed */
        }
    } else {
        sf_adapter_pair pairs[SF_AF__COUNT];
        size_t n;
        sf_error perr;
        if (sf_adapter_pairs_parse(v, pairs, SF_AF__COUNT, &n, &perr) != SF_OK) {
            st = SF_ADAPTER_CFG_ERR(err, cfg, section, "fields", "%s", perr.msg);
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            int f = sf_adapter_field_lookup(pairs[i].name, strlen(pairs[i].name));
            if (f < 0) {
                st = SF_ADAPTER_CFG_ERR(err, cfg, section, "fields",
                                        "unknown field '%s' (fields: sku, qty, location, uom, "
                                        "occurred_at, kind, ref)",
                                        pairs[i].name);
                goto fail;
            }
            if (o->ptr[f].mapped) {
                st = SF_ADAPTER_CFG_ERR(err, cfg, section, "fields", "field %s mapped twice",
                                        pairs[i].name);
                goto fail;
            }
            if (!jsonl__ptr_parse(pairs[i].value, &o->ptr[f], &why)) {
                st = SF_ADAPTER_CFG_ERR(err, cfg, section, "fields", "field %s: '%s': %s",
                                        pairs[i].name, pairs[i].value, why);
                goto fail;
            }
        }
        if (!o->ptr[SF_AF_SKU].mapped || !o->ptr[SF_AF_QTY].mapped) {
            st = SF_ADAPTER_CFG_ERR(err, cfg, section, "fields", "sku and qty must be mapped");
            goto fail;
        }
    }
    if ((st = sf_adapter_defaults_configure(cfg, section, &o->d, err)) != SF_OK)
        goto fail;
    *opts = o;
    return SF_OK;
fail:
    free(o);
    return st;
}

static void jsonl__free_opts(void *opts)
{
    free(opts);
}

/* --- pointers ------------------------------------------------------------------ */

/* An array index token: "0" or digits without a leading zero. */
static bool jsonl__index(const char *t, size_t *out)
{
    size_t n = strlen(t), v = 0;
    if (n == 0 || n > 9 || (t[0] == '0' && n > 1))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (t[i] < '0' || t[i] > '9')
            return false;
        v = v * 10 + (size_t)(t[i] - '0');
    }
    *out = v;
    return true;
}

static json_t *jsonl__resolve(json_t *root, const jsonl__ptr *p)
{
    json_t *cur = root;
    const char *t = p->tokens;
    for (size_t i = 0; i < p->ntok && cur; i++, t += strlen(t) + 1) {
        size_t idx;
        if (json_is_object(cur))
            cur = json_object_get(cur, t);
        else if (json_is_array(cur) && jsonl__index(t, &idx))
            cur = json_array_get(cur, idx);
        else
            cur = NULL;
    }
    return cur;
}

/* --- the raw scanner: the source text of a value -------------------------------- */

typedef struct jsonl__scan {
    const char *s;
    size_t len, pos;
} jsonl__scan;

static void jsonl__ws(jsonl__scan *sc)
{
    while (sc->pos < sc->len && (sc->s[sc->pos] == ' ' || sc->s[sc->pos] == '\t' ||
                                 sc->s[sc->pos] == '\n' || sc->s[sc->pos] == '\r'))
        sc->pos++;
}

static bool jsonl__at(const jsonl__scan *sc, char c)
{
    return sc->pos < sc->len && sc->s[sc->pos] == c;
}

/* At '"': step past the closing quote. */
static bool jsonl__skip_string(jsonl__scan *sc)
{
    sc->pos++;
    while (sc->pos < sc->len) {
        char c = sc->s[sc->pos++];
        if (c == '"')
            return true;
        if (c == '\\')
            sc->pos++;
    }
    return false;
}

/* Step over one value; nesting is counted, not recursed. */
static bool jsonl__skip_value(jsonl__scan *sc)
{
    size_t depth = 0;
    do {
        if (sc->pos >= sc->len)
            return false;
        char c = sc->s[sc->pos];
        if (c == '"') {
            if (!jsonl__skip_string(sc))
                return false;
        } else if (c == '{' || c == '[') {
            depth++;
            sc->pos++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return false;
            depth--;
            sc->pos++;
        } else if (depth > 0) {
            sc->pos++; /* separators, blanks and scalars inside */
        } else {
            while (sc->pos < sc->len && !strchr(",]} \t\r\n", sc->s[sc->pos]))
                sc->pos++;
        }
    } while (depth > 0);
    return true;
}

static int jsonl__hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool jsonl__u4(const char *s, size_t n, size_t i, unsigned *out)
{
    if (n - i < 4)
        return false;
    unsigned v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = jsonl__hex(s[i + k]);
        if (h < 0)
            return false;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return true;
}

/* Does the raw key text raw[0..n) (between the quotes, escapes undone)
 * equal the token t? */
static bool jsonl__key_eq(const char *raw, size_t n, const char *t)
{
    size_t tl = strlen(t), o = 0, i = 0;
    while (i < n) {
        unsigned char b[4];
        size_t bn = 1;
        if (raw[i] != '\\') {
            b[0] = (unsigned char)raw[i++];
        } else {
            if (i + 1 >= n)
                return false;
            char e = raw[i + 1];
            i += 2;
            unsigned cp;
            switch (e) {
            case 'b': b[0] = '\b'; break;
            case 'f': b[0] = '\f'; break;
            case 'n': b[0] = '\n'; break;
            case 'r': b[0] = '\r'; break;
            case 't': b[0] = '\t'; break;
            case 'u':
                if (!jsonl__u4(raw, n, i, &cp))
                    return false;
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (i + 1 >= n || raw[i] != '\\' || raw[i + 1] != 'u' ||
                        !jsonl__u4(raw, n, i + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return false;
                    i += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (cp < 0x80) {
                    b[0] = (unsigned char)cp;
                } else if (cp < 0x800) {
                    b[0] = (unsigned char)(0xC0 | (cp >> 6));
                    b[1] = (unsigned char)(0x80 | (cp & 0x3F));
                    bn = 2;
                } else if (cp < 0x10000) {
                    b[0] = (unsigned char)(0xE0 | (cp >> 12));
                    b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                    b[2] = (unsigned char)(0x80 | (cp & 0x3F));
                    bn = 3;
                } else {
                    b[0] = (unsigned char)(0xF0 | (cp >> 18));
                    b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
                    bn = 4;
                }
                break;
            default: b[0] = (unsigned char)e; break; /* \" \\ \/ */
            }
        }
        if (tl - o < bn || memcmp(t + o, b, bn) != 0)
            return false;
        o += bn;
    }
    return o == tl;
}

/* The source text s[*off .. *off + *n) of the value p points to in the
 * JSON text s[0..len), which jansson has accepted (no duplicate keys, so
 * the first matching key is jansson's). false if not found. */
static bool jsonl__locate(const char *s, size_t len, const jsonl__ptr *p, size_t *off, size_t *n)
{
    jsonl__scan sc = {s, len, 0};
    const char *t = p->tokens;
    for (size_t k = 0; k < p->ntok; k++, t += strlen(t) + 1) {
        jsonl__ws(&sc);
        if (jsonl__at(&sc, '{')) {
            sc.pos++;
            for (;;) {
                jsonl__ws(&sc);
                if (!jsonl__at(&sc, '"'))
                    return false;
                size_t key = sc.pos + 1;
                if (!jsonl__skip_string(&sc))
                    return false;
                size_t key_len = sc.pos - 1 - key;
                jsonl__ws(&sc);
                if (!jsonl__at(&sc, ':'))
                    return false;
                sc.pos++;
                jsonl__ws(&sc);
                if (jsonl__key_eq(s + key, key_len, t))
                    break;
                if (!jsonl__skip_value(&sc))
                    return false;
                jsonl__ws(&sc);
                if (!jsonl__at(&sc, ','))
                    return false;
                sc.pos++;
            }
        } else if (jsonl__at(&sc, '[')) {
            size_t idx;
            if (!jsonl__index(t, &idx))
                return false;
            sc.pos++;
            for (size_t i = 0; i < idx; i++) {
                jsonl__ws(&sc);
                if (!jsonl__skip_value(&sc))
                    return false;
                jsonl__ws(&sc);
                if (!jsonl__at(&sc, ','))
                    return false;
                sc.pos++;
            }
        } else {
            return false;
        }
    }
    jsonl__ws(&sc);
    size_t start = sc.pos;
    if (!jsonl__skip_value(&sc))
        return false;
    *off = start;
    *n = sc.pos - start;
    return true;
}

/* A JSON number's text without exponent ("1.25e2" -> "125"), exactly;
 * false if it will not fit JSONL__NUM_MAX (the decimal parser then
 * refuses the original text). */
static bool jsonl__plain_number(const char *s, size_t n, char out[JSONL__NUM_MAX])
{
    size_t e = 0;
    while (e < n && s[e] != 'e' && s[e] != 'E')
        e++;
    if (e == n) {
        if (n >= JSONL__NUM_MAX)
            return false;
        memcpy(out, s, n);
        out[n] = '\0';
        return true;
    }
    char digits[JSONL__NUM_MAX];
    size_t nd = 0, nint = 0, i = 0, o = 0;
    bool neg = s[0] == '-';
    if (neg)
        i++;
    bool frac = false;
    for (; i < e; i++) {
        if (s[i] == '.') {
            frac = true;
            continue;
        }
        if (nd == sizeof digits)
            return false;
        digits[nd++] = s[i];
        if (!frac)
            nint++;
    }
    size_t k = e + 1;
    bool eneg = k < n && s[k] == '-';
    if (k < n && (s[k] == '-' || s[k] == '+'))
        k++;
    long exp = 0;
    for (; k < n; k++) {
        if (exp > 1000)
            return false;
        exp = exp * 10 + (s[k] - '0');
    }
    long point = (long)nint + (eneg ? -exp : exp);
    if (point < -40 || point > 40 + (long)nd || nd + 45 >= JSONL__NUM_MAX)
        return false;
    if (neg)
        out[o++] = '-';
    if (point <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (long z = 0; z < -point; z++)
            out[o++] = '0';
        memcpy(out + o, digits, nd);
        o += nd;
    } else if ((size_t)point >= nd) {
        memcpy(out + o, digits, nd);
        o += nd;
        for (long z = 0; z < point - (long)nd; z++)
            out[o++] = '0';
    } else {
        memcpy(out + o, digits, (size_t)point);
        o += (size_t)point;
        out[o++] = '.';
        memcpy(out + o, digits + point, nd - (size_t)point);
        o += nd - (size_t)point;
    }
    out[o] = '\0';
    return true;
}

/* --- lines and values -------------------------------------------------------------- */

static bool jsonl__blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    }
    return true;
}

/* The next non-blank line: its text (line end, and BOM on the first line,
 * removed) and number. false at the end. */
static bool jsonl__next_line(jsonl__state *s, const char **text, size_t *n, uint64_t *line)
{
    while (s->pos < s->len) {
        size_t start = s->pos;
        const char *nl = memchr(s->data + start, '\n', s->len - start);
        size_t end = nl ? (size_t)(nl - s->data) : s->len;
        s->pos = nl ? end + 1 : s->len;
        *line = s->line++;
        if (start == 0 && end >= 3 && memcmp(s->data, "\xEF\xBB\xBF", 3) == 0)
            start = 3;
        if (end > start && s->data[end - 1] == '\r')
            end--;
        if (jsonl__blank(s->data + start, end - start))
            continue;
        *text = s->data + start;
        *n = end - start;
        return true;
    }
    return false;
}

static const char *jsonl__type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* A line -> its JSON object, or the reason it is rejected. */
static sf_status jsonl__parse(const char *text, size_t n, json_t **root, sf_error *why)
{
    *root = NULL;
    if (n > JSONL__LINE_MAX)
        return SF_ERR(why, SF_EINVAL, "line of %zu bytes, longer than %zu", n, JSONL__LINE_MAX);
    json_error_t jerr;
    json_t *j = json_loadb(text, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!j) {
        if (json_error_code(&jerr) == json_error_invalid_utf8)
            /* jansson's position is the bad byte's offset */
            return SF_ERR(why, SF_EINVAL, "not valid UTF-8 (byte %d)", jerr.position + 1);
        if (json_error_code(&jerr) == json_error_null_character)
            return SF_ERR(why, SF_EINVAL, "not JSON: \\u0000 is not allowed in a string (byte %d)",
                          jerr.position);
        /* jansson quotes the input near the error: keep it printable */
        char msg[sizeof jerr.text];
        size_t i = 0;
        for (; i + 1 < sizeof msg && jerr.text[i]; i++) {
            unsigned char c = (unsigned char)jerr.text[i];
            msg[i] = c < 0x20 || c >= 0x7F ? '?' : (char)c;
        }
        msg[i] = '\0';
        return SF_ERR(why, SF_EINVAL, "not JSON: %s (byte %d)", msg, jerr.position);
    }
    if (!json_is_object(j)) {
        const char *type = jsonl__type_name(j);
        json_decref(j);
        return SF_ERR(why, SF_EINVAL, "not a JSON object (%s)", type);
    }
    *root = j;
    return SF_OK;
}

typedef enum jsonl__got {
    JSONL__ABSENT = 0, /* unmapped, not found or null */
    JSONL__TEXT,       /* *out holds the value's text */
    JSONL__WRONG       /* a type the field does not take (*wrong is the value) */
} jsonl__got;

/* The text of field f: a string as decoded, an integer printed, a real as
 * its source text (`digest`) or that text without exponent (a row). */
static jsonl__got jsonl__value(const jsonl__state *s, const char *text, size_t n, json_t *root,
                               int f, bool digest, sf_adapter_val *out, char num[JSONL__NUM_MAX],
                               json_t **wrong)
{
    const jsonl__ptr *p = &s->o.ptr[f];
    *out = (sf_adapter_val){NULL, 0};
    *wrong = NULL;
    if (!p->mapped)
        return JSONL__ABSENT;
    json_t *j = jsonl__resolve(root, p);
    if (!j || json_is_null(j))
        return JSONL__ABSENT;
    bool id = f == SF_AF_SKU || f == SF_AF_LOCATION || f == SF_AF_REF;
    if (json_is_string(j)) {
        *out = (sf_adapter_val){json_string_value(j), json_string_length(j)};
        return JSONL__TEXT;
    }
    if (json_is_integer(j) && (id || f == SF_AF_QTY || f == SF_AF_OCCURRED_AT)) {
        int len = snprintf(num, JSONL__NUM_MAX, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        *out = (sf_adapter_val){num, (size_t)len};
        return JSONL__TEXT;
    }
    if (json_is_real(j) && f == SF_AF_QTY) {
        size_t off, len;
        if (!jsonl__locate(text, n, p, &off, &len)) {
            *wrong = j; /* not reached: jansson accepted the text */
            return JSONL__WRONG;
        }
        if (digest || !jsonl__plain_number(text + off, len, num)) {
            *out = (sf_adapter_val){text + off, len};
            return JSONL__TEXT;
        }
        *out = (sf_adapter_val){num, strlen(num)};
        return JSONL__TEXT;
    }
    *wrong = j;
    return JSONL__WRONG;
}

static const char *jsonl__expected(int f)
{
    switch (f) {
    case SF_AF_SKU:
    case SF_AF_LOCATION:
    case SF_AF_REF: return "a string or an integer";
    case SF_AF_QTY: return "a number or a decimal string";
    case SF_AF_OCCURRED_AT: return "a time string or integer epoch ms";
    default: return "a string";
    }
}

/* Hash one line as a record (see the file comment). */
static void jsonl__digest_line(const jsonl__state *s, sf_adapter_digest *dg, const char *text,
                               size_t n)
{
    sf_error why;
    json_t *root;
    if (jsonl__parse(text, n, &root, &why) != SF_OK) {
        sf_adapter_digest_marker(dg, 0x1C);
        sf_adapter_digest_value(dg, text, n);
        sf_adapter_digest_end_record(dg);
        return;
    }
    for (int f = 0; f < SF_AF__COUNT; f++) {
        sf_adapter_val v;
        char num[JSONL__NUM_MAX];
        json_t *wrong;
        if (jsonl__value(s, text, n, root, f, true, &v, num, &wrong) != JSONL__WRONG) {
            sf_adapter_digest_value(dg, v.s, v.len);
            continue;
        }
        char *dump = json_dumps(wrong, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        /* out of memory: a marker no dump can equal, so no false match */
        sf_adapter_digest_value(dg, dump ? dump : "\x1B", dump ? strlen(dump) : 1);
        free(dump);
    }
    sf_adapter_digest_end_record(dg);
    json_decref(root);
}

/* --- open, next, close ------------------------------------------------------------ */

static void jsonl__close(void *state)
{
    free(state);
}

static sf_status jsonl__open(const void *opts, const sf_feed_ctx *ctx, const char *data, size_t len,
                             void **state, sf_error *err)
{
    *state = NULL;
    if (len > SF_FEED_MAX_BYTES)
        return SF_ERR(err, SF_EINVAL, "%s: %zu bytes, more than the %zu a feed may have",
                      ctx->name ? ctx->name : "feed", len, SF_FEED_MAX_BYTES);
    jsonl__state *s = calloc(1, sizeof *s);
    if (!s)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    s->o = *(const jsonl__opts *)opts;
    s->ctx = *ctx;
    s->data = data;
    s->len = len;
    s->line = 1;
    sf_adapter_digest dg;
    sf_status st = sf_adapter_digest_begin(&dg, err);
    if (st != SF_OK) {
        free(s);
        return st;
    }
    sf_adapter_digest_defaults(&dg, &s->o.d);
    sf_adapter_digest_end_record(&dg);
    const char *text;
    size_t n;
    uint64_t line;
    while (jsonl__next_line(s, &text, &n, &line))
        jsonl__digest_line(s, &dg, text, n);
    if ((st = sf_adapter_digest_end(&dg, s->digest, err)) != SF_OK) {
        free(s);
        return st;
    }
    s->pos = 0;
    s->line = 1;
    *state = s;
    return SF_OK;
}

static sf_status jsonl__next(void *state, sf_supplier_row *row, sf_error *err)
{
    jsonl__state *s = state;
    const char *text;
    size_t n;
    uint64_t line;
    (void)err; /* nothing here fails the adapter itself */
    if (!jsonl__next_line(s, &text, &n, &line))
        return SF_ENOTFOUND;
    sf_adapter_row_start(row, ++s->ordinal, line);
    json_t *root;
    if (jsonl__parse(text, n, &root, &row->error) != SF_OK) {
        row->ok = false;
        return SF_OK;
    }
    sf_adapter_val vals[SF_AF__COUNT];
    char num[SF_AF__COUNT][JSONL__NUM_MAX];
    for (int f = 0; f < SF_AF__COUNT; f++) {
        json_t *wrong;
        const char *name = sf_adapter_field_name(f);
        const jsonl__ptr *p = &s->o.ptr[f];
        jsonl__got got = jsonl__value(s, text, n, root, f, false, &vals[f], num[f], &wrong);
        if (got == JSONL__WRONG) {
            SF_ERR(&row->error, SF_EINVAL, "field %s: %s at '%s', expected %s", name,
                   jsonl__type_name(wrong), p->text, jsonl__expected(f));
            row->ok = false;
            goto done;
        }
        if (got == JSONL__ABSENT && (f == SF_AF_SKU || f == SF_AF_QTY)) {
            json_t *j = jsonl__resolve(root, p);
            SF_ERR(&row->error, SF_EINVAL, "field %s: %s at '%s'", name, j ? "null" : "no value",
                   p->text);
            row->ok = false;
            goto done;
        }
    }
    sf_adapter_row_build(row, vals, &s->o.d, &s->ctx);
done:
    json_decref(root);
    return SF_OK;
}

static const char *jsonl__digest(const void *state)
{
    return ((const jsonl__state *)state)->digest;
}

const sf_adapter_ops sf_adapter_jsonl = {
    .format = "jsonl",
    .keys = jsonl__keys,
    .configure = jsonl__configure,
    .free_opts = jsonl__free_opts,
    .open = jsonl__open,
    .next = jsonl__next,
    .digest = jsonl__digest,
    .close = jsonl__close,
};
