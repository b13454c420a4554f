/*
 * event_parse: JSON lines, CSV and the feed reader (see event_parse.h).
 *
 * JSON and CSV each reduce a line to a table of raw field values
 * (parse__val, indexed by parse__field); parse__build() is the single place
 * that turns values into an sf_event, so a field rule changes there only.
 * The feed reader owns one buffer of max_line + slack bytes and never grows
 * it: an overlong line is skipped to its newline without being stored.
 */
#include "event_parse.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* --- field table ------------------------------------------------------------ */

typedef enum parse__field {
    PARSE_F_EVENT_ID = 0,
    PARSE_F_KIND,
    PARSE_F_SKU,
    PARSE_F_LOCATION,
    PARSE_F_QTY,
    PARSE_F_OCCURRED_AT,
    PARSE_F_SOURCE,
    PARSE_F_CHANNEL,
    PARSE_F_REF,
    PARSE_F_CONDITION,
    PARSE_F_EXPIRES_AT,
    PARSE_F__COUNT
} parse__field;

static const char *const parse__field_names[PARSE_F__COUNT] = {
    "event_id", "kind",    "sku", "location",  "qty",        "occurred_at",
    "source",   "channel", "ref", "condition", "expires_at",
};

static const bool parse__field_required[PARSE_F__COUNT] = {
    [PARSE_F_KIND] = true, [PARSE_F_SKU] = true,         [PARSE_F_LOCATION] = true,
    [PARSE_F_QTY] = true,  [PARSE_F_OCCURRED_AT] = true,
};

typedef enum parse__vtype { PARSE_V_ABSENT = 0, PARSE_V_STR, PARSE_V_INT } parse__vtype;

typedef struct parse__val {
    parse__vtype type;
    const char *s; /* PARSE_V_STR: bytes (may hold NUL), length len */
    size_t len;
    int64_t i; /* PARSE_V_INT */
} parse__val;

static int parse__field_lookup(const char *name, size_t len)
{
    for (int f = 0; f < PARSE_F__COUNT; f++) {
        if (strlen(parse__field_names[f]) == len && memcmp(parse__field_names[f], name, len) == 0)
            return f;
    }
    return -1;
}

void sf_parse_opts_init(sf_parse_opts *opts)
{
    opts->default_source = NULL;
    opts->now_ms = -1;
    opts->max_future_ms = SF_PARSE_MAX_FUTURE_MS_DEFAULT;
    opts->max_line = SF_PARSE_MAX_LINE_DEFAULT;
}

/* --- numbers and time ----------------------------------------------------------- */

/* -?[0-9]+ with overflow check; false if s is anything else. */
static bool parse__int64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len)
        return false;
    uint64_t v = 0;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
int64_t sf_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void parse__civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

unsigned sf_days_in_month(int64_t y, unsigned m)
{
    static const unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* Fixed-width decimal digits s[0..n). */
bool sf_parse_digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

sf_status sf_time_parse_rfc3339(const char *s, size_t len, int64_t *out_ms, sf_error *err)
{
    char q[200];
    unsigned y, mo, d, h, mi, sec, frac_ms = 0;
    const char *why = "expected YYYY-MM-DDTHH:MM:SS[.sss] and Z or +hh:mm";
    if (len < 20 || !sf_parse_digits(s, 4, &y) || s[4] != '-' || !sf_parse_digits(s + 5, 2, &mo) ||
        s[7] != '-' || !sf_parse_digits(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !sf_parse_digits(s + 11, 2, &h) ||
        s[13] != ':' || !sf_parse_digits(s + 14, 2, &mi) || s[16] != ':' ||
        !sf_parse_digits(s + 17, 2, &sec))
        goto fail;
    size_t i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        size_t nd = i - start;
        if (nd == 0 || nd > 9) {
            why = "the fraction must have 1 to 9 digits";
            goto fail;
        }
        for (size_t k = 0; k < 3; k++)
            frac_ms = frac_ms * 10 + (k < nd ? (unsigned)(s[start + k] - '0') : 0);
    }
    int64_t offset_min = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        unsigned oh, om;
        if (len - i < 6 || !sf_parse_digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            !sf_parse_digits(s + i + 4, 2, &om))
            goto fail;
        if (oh > 23 || om > 59) {
            why = "offset out of range";
            goto fail;
        }
        offset_min = (int64_t)(oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        why = "missing time zone (Z or +hh:mm)";
        goto fail;
    }
    if (i != len) {
        why = "trailing characters";
        goto fail;
    }
    if (mo < 1 || mo > 12) {
        why = "month out of range";
        goto fail;
    }
    if (d < 1 || d > sf_days_in_month(y, mo)) {
        why = "day out of range for the month";
        goto fail;
    }
    if (h > 23 || mi > 59) {
        why = "hour or minute out of range";
        goto fail;
    }
    if (sec > 59) {
        why = sec == 60 ? "leap second 60 is not supported" : "second out of range";
        goto fail;
    }
    int64_t days = sf_days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + (int64_t)(h * 3600 + mi * 60 + sec) - offset_min * 60;
    *out_ms = secs * 1000 + frac_ms;
    return SF_OK;
fail:
    sf_str_quote(s, len, q, sizeof q);
    return SF_ERR(err, SF_EINVAL, "%s is not an RFC 3339 timestamp (%s)", q, why);
}

bool sf_time_format_rfc3339(int64_t ms, char *buf, size_t size)
{
    /* 9999-12-31T23:59:59.999Z */
    if (ms < 0 || ms > INT64_C(253402300799999) || size < 25)
        return false;
    int64_t secs = ms / 1000, days = secs / 86400, rem = secs % 86400;
    int64_t y;
    unsigned m, d;
    parse__civil_from_days(days, &y, &m, &d);
    snprintf(buf, size, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", (int)y, m, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60), (int)(ms % 1000));
    return true;
}

/* --- the builder --------------------------------------------------------------- */

/* A timestamp field: a JSON integer, or text that is RFC 3339 (or, with
 * text_numbers, decimal epoch ms). */
static sf_status parse__time_field(const parse__val *v, parse__field f, bool text_numbers,
                                   int64_t *out, sf_error *err)
{
    const char *name = parse__field_names[f];
    if (v->type == PARSE_V_INT) {
        *out = v->i;
        return SF_OK;
    }
    if (text_numbers && parse__int64(v->s, v->len, out))
        return SF_OK;
    sf_status st = sf_time_parse_rfc3339(v->s, v->len, out, err);
    if (st != SF_OK) {
        if (!text_numbers && v->len > 0 && parse__int64(v->s, v->len, out))
            return SF_ERR(err, SF_EINVAL,
                          "field %s: a string of digits; epoch milliseconds must be a JSON "
                          "integer, or use RFC 3339",
                          name);
        sf_error_prefix(err, "field %s: ", name);
    }
    return st;
}

/* A symbol field (kind, condition): NUL-free text short enough to hold a
 * symbol, copied so the symbol parsers can see a C string. */
static sf_status parse__symbol(const parse__val *v, parse__field f, char *buf, size_t size,
                               sf_error *err)
{
    if (v->len >= size || memchr(v->s, '\0', v->len)) {
        char q[200];
        sf_str_quote(v->s, v->len, q, sizeof q);
        return SF_ERR(err, SF_EINVAL, "field %s: %s is not a %s", parse__field_names[f], q,
                      f == PARSE_F_KIND ? "kind" : "condition");
    }
    memcpy(buf, v->s, v->len);
    buf[v->len] = '\0';
    return SF_OK;
}

static sf_status parse__build(const parse__val vals[PARSE_F__COUNT], bool text_numbers,
                              const sf_parse_opts *opts, sf_event *ev, sf_error *err)
{
    sf_status st;
    sf_event_init(ev);
    for (int f = 0; f < PARSE_F__COUNT; f++) {
        if (parse__field_required[f] && vals[f].type == PARSE_V_ABSENT)
            return SF_ERR(err, SF_EINVAL, "field %s: missing (required)", parse__field_names[f]);
    }

    const parse__val *v = &vals[PARSE_F_EVENT_ID];
    if (v->type == PARSE_V_STR &&
        (st = sf_event_set_str(ev->event_id, v->s, v->len, "event_id", err)) != SF_OK)
        return st;

    char sym[32];
    if ((st = parse__symbol(&vals[PARSE_F_KIND], PARSE_F_KIND, sym, sizeof sym, err)) != SF_OK)
        return st;
    if ((st = sf_kind_parse(sym, &ev->kind, err)) != SF_OK)
        return st;

    v = &vals[PARSE_F_SKU];
    if ((st = sf_event_set_str(ev->sku, v->s, v->len, "sku", err)) != SF_OK)
        return st;
    v = &vals[PARSE_F_LOCATION];
    if ((st = sf_event_set_str(ev->location, v->s, v->len, "location", err)) != SF_OK)
        return st;

    v = &vals[PARSE_F_QTY];
    if (v->type == PARSE_V_INT) {
        ev->qty = v->i;
    } else if (!text_numbers) {
        char q[200];
        sf_str_quote(v->s, v->len, q, sizeof q);
        return SF_ERR(err, SF_EINVAL, "field qty: the string %s, expected a JSON integer", q);
    } else if (!parse__int64(v->s, v->len, &ev->qty)) {
        char q[200];
        sf_str_quote(v->s, v->len, q, sizeof q);
        return SF_ERR(err, SF_EINVAL, "field qty: %s is not an integer", q);
    }

    if ((st = parse__time_field(&vals[PARSE_F_OCCURRED_AT], PARSE_F_OCCURRED_AT, text_numbers,
                                &ev->occurred_at, err)) != SF_OK)
        return st;

    v = &vals[PARSE_F_SOURCE];
    if (v->type == PARSE_V_STR) {
        if ((st = sf_event_set_str(ev->source, v->s, v->len, "source", err)) != SF_OK)
            return st;
    } else if (opts->default_source) {
        if ((st = sf_event_set_str(ev->source, opts->default_source, strlen(opts->default_source),
                                   "source", err)) != SF_OK)
            return st;
    } else {
        return SF_ERR(err, SF_EINVAL, "field source: missing and no default source is set");
    }

    v = &vals[PARSE_F_CHANNEL];
    if (v->type == PARSE_V_STR) {
        if ((st = sf_event_set_str(ev->channel, v->s, v->len, "channel", err)) != SF_OK)
            return st;
        ev->has_channel = true;
    }
    v = &vals[PARSE_F_REF];
    if (v->type == PARSE_V_STR) {
        if ((st = sf_event_set_str(ev->ref, v->s, v->len, "ref", err)) != SF_OK)
            return st;
        ev->has_ref = true;
    }
    v = &vals[PARSE_F_CONDITION];
    if (v->type == PARSE_V_STR) {
        if ((st = parse__symbol(v, PARSE_F_CONDITION, sym, sizeof sym, err)) != SF_OK)
            return st;
        if ((st = sf_condition_parse(sym, &ev->condition, err)) != SF_OK)
            return st;
        ev->has_condition = true;
    }
    v = &vals[PARSE_F_EXPIRES_AT];
    if (v->type != PARSE_V_ABSENT) {
        if ((st = parse__time_field(v, PARSE_F_EXPIRES_AT, text_numbers, &ev->expires_at, err)) !=
            SF_OK)
            return st;
        ev->has_expires_at = true;
    }

    if (vals[PARSE_F_EVENT_ID].type == PARSE_V_ABSENT)
        sf_event_derive_id(ev);
    int64_t now = opts->now_ms >= 0 ? opts->now_ms : sf_now_ms();
    return sf_event_validate(ev, now, opts->max_future_ms, err);
}

/* Drop one trailing "\n", then one "\r". */
static size_t parse__chomp(const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    return len;
}

static sf_status parse__check_line_len(size_t len, const sf_parse_opts *opts, sf_error *err)
{
    if (len > opts->max_line)
        return SF_ERR(err, SF_EINVAL, "line is %zu bytes, longer than max_line %zu", len,
                      opts->max_line);
    return SF_OK;
}

/* --- JSON ------------------------------------------------------------------------ */

static const char *parse__json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction or exponent";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static bool parse__field_is_numeric(parse__field f)
{
    return f == PARSE_F_QTY || f == PARSE_F_OCCURRED_AT || f == PARSE_F_EXPIRES_AT;
}

static const char *parse__expected(parse__field f)
{
    if (f == PARSE_F_QTY)
        return "an integer";
    if (f == PARSE_F_OCCURRED_AT || f == PARSE_F_EXPIRES_AT)
        return "an RFC 3339 string or epoch ms integer";
    return "a string";
}

static sf_status parse__json_value(parse__field f, json_t *j, parse__val *out, sf_error *err)
{
    const char *name = parse__field_names[f];
    switch (json_typeof(j)) {
    case JSON_NULL:
        if (parse__field_required[f])
            return SF_ERR(err, SF_EINVAL, "field %s: null (required)", name);
        out->type = PARSE_V_ABSENT;
        return SF_OK;
    case JSON_STRING: /* for qty, the builder rejects it and quotes it */
        out->type = PARSE_V_STR;
        out->s = json_string_value(j);
        out->len = json_string_length(j);
        return SF_OK;
    case JSON_INTEGER:
        if (!parse__field_is_numeric(f))
            return SF_ERR(err, SF_EINVAL, "field %s: an integer, expected a string", name);
        out->type = PARSE_V_INT;
        out->i = (int64_t)json_integer_value(j);
        return SF_OK;
    case JSON_REAL:
        if (parse__field_is_numeric(f)) {
            /* jansson keeps no source text: print the value so 2.0 still
             * reads as a number with a fraction */
            char num[40];
            snprintf(num, sizeof num, "%.17g", json_real_value(j));
            if (!strpbrk(num, ".eEni"))
                strcat(num, ".0");
            return SF_ERR(err, SF_EINVAL, "field %s: %s is not an integer", name, num);
        }
        break;
    default: break;
    }
    return SF_ERR(err, SF_EINVAL, "field %s: %s, expected %s", name, parse__json_type_name(j),
                  parse__expected(f));
}

/* jansson quotes the input near an error: escape what is not printable
 * ASCII so no raw byte of a hostile line reaches a log. */
static void parse__sanitize(const char *in, char *out, size_t size)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 5 < size; p++) {
        if (*p < 0x20 || *p >= 0x7F) {
            snprintf(out + o, 5, "\\x%02x", *p);
            o += 4;
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
}

sf_status sf_event_parse_json(const char *line, size_t len, const sf_parse_opts *opts,
                              sf_event *out, sf_error *err)
{
    len = parse__chomp(line, len);
    sf_status st = parse__check_line_len(len, opts, err);
    if (st != SF_OK)
        return st;
    json_error_t jerr;
    json_t *root =
        json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        char text[4 * JSON_ERROR_TEXT_LENGTH];
        parse__sanitize(jerr.text, text, sizeof text);
        return SF_ERR(err, SF_EINVAL, "not valid JSON: %s (column %d)", text, jerr.column);
    }
    if (!json_is_object(root)) {
        st = SF_ERR(err, SF_EINVAL, "not a JSON object (%s)", parse__json_type_name(root));
        goto done;
    }
    parse__val vals[PARSE_F__COUNT];
    memset(vals, 0, sizeof vals);
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        int f = parse__field_lookup(key, strlen(key));
        if (f < 0) {
            char q[200];
            sf_str_quote(key, strlen(key), q, sizeof q);
            st = SF_ERR(err, SF_EINVAL, "unknown field %s", q);
            goto done;
        }
        if ((st = parse__json_value((parse__field)f, value, &vals[f], err)) != SF_OK)
            goto done;
    }
    st = parse__build(vals, false, opts, out, err);
done:
    json_decref(root);
    return st;
}

/* --- CSV --------------------------------------------------------------------------- */

#define PARSE_CSV_MAX_COLS 64
#define PARSE_CSV_STACK 4096

struct sf_csv_header {
    size_t ncols;
    signed char field[PARSE_CSV_MAX_COLS]; /* column -> parse__field */
};

typedef struct parse__cell {
    const char *s;
    size_t len;
} parse__cell;

/* Split buf[0..len) into cells, decoding quoted cells in place (a decoded
 * cell is never longer than its source). At most max cells; *n gets the
 * count, or max + 1 if there are more. */
static sf_status parse__csv_split(char *buf, size_t len, parse__cell *cells, size_t max, size_t *n,
                                  sf_error *err)
{
    size_t count = 0, r = 0;
    for (;;) {
        if (count == max) {
            *n = max + 1;
            return SF_OK;
        }
        char *start = buf + r;
        size_t w = r;
        if (r < len && buf[r] == '"') {
            r++;
            for (;;) {
                if (r >= len)
                    return SF_ERR(err, SF_EINVAL,
                                  "cell %zu: quoted cell is not closed on this line (cells "
                                  "spanning lines are not supported)",
                                  count + 1);
                if (buf[r] == '"') {
                    if (r + 1 < len && buf[r + 1] == '"') {
                        buf[w++] = '"';
                        r += 2;
                        continue;
                    }
                    r++;
                    break;
                }
                buf[w++] = buf[r++];
            }
            if (r < len && buf[r] != ',')
                return SF_ERR(err, SF_EINVAL,
                              "cell %zu: characters after the closing quote (a quote inside a "
                              "quoted cell is written \"\")",
                              count + 1);
            cells[count].s = start; /* decoded bytes start where the quote was */
            cells[count].len = w - (size_t)(start - buf);
        } else {
            while (r < len && buf[r] != ',') {
                if (buf[r] == '"')
                    return SF_ERR(err, SF_EINVAL,
                                  "cell %zu: a quote inside an unquoted cell (quote the whole "
                                  "cell and write the quote as \"\")",
                                  count + 1);
                r++;
            }
            cells[count].s = start;
            cells[count].len = r - (size_t)(start - buf);
        }
        count++;
        if (r >= len)
            break;
        r++; /* the comma */
    }
    *n = count;
    return SF_OK;
}

/* Run `fn` over a writable copy of line: on the stack when small, else on
 * the heap (the line is already bounded by max_line). */
typedef sf_status (*parse__copy_fn)(char *buf, size_t len, void *ctx, sf_error *err);

static sf_status parse__with_copy(const char *line, size_t len, parse__copy_fn fn, void *ctx,
                                  sf_error *err)
{
    char stack[PARSE_CSV_STACK];
    char *buf = stack;
    if (len > sizeof stack) {
        buf = malloc(len);
        if (!buf)
            return SF_ERR(err, SF_ENOMEM, "out of memory copying a %zu-byte line", len);
    }
    if (len > 0)
        memcpy(buf, line, len);
    sf_status st = fn(buf, len, ctx, err);
    if (buf != stack)
        free(buf);
    return st;
}

typedef struct parse__header_ctx {
    sf_csv_header *h;
} parse__header_ctx;

static sf_status parse__header_fn(char *buf, size_t len, void *vctx, sf_error *err)
{
    parse__header_ctx *ctx = vctx;
    parse__cell cells[PARSE_CSV_MAX_COLS];
    size_t n = 0;
    sf_status st = parse__csv_split(buf, len, cells, PARSE_CSV_MAX_COLS, &n, err);
    if (st != SF_OK) {
        sf_error_prefix(err, "CSV header: ");
        return st;
    }
    if (n > PARSE_CSV_MAX_COLS)
        return SF_ERR(err, SF_EINVAL, "CSV header: more than %d columns", PARSE_CSV_MAX_COLS);
    bool seen[PARSE_F__COUNT] = {false};
    for (size_t c = 0; c < n; c++) {
        int f = parse__field_lookup(cells[c].s, cells[c].len);
        if (f < 0) {
            char q[200];
            sf_str_quote(cells[c].s, cells[c].len, q, sizeof q);
            return SF_ERR(err, SF_EINVAL, "CSV header: unknown column %s (column %zu)", q, c + 1);
        }
        if (seen[f])
            return SF_ERR(err, SF_EINVAL, "CSV header: column '%s' appears twice (column %zu)",
                          parse__field_names[f], c + 1);
        seen[f] = true;
        ctx->h->field[c] = (signed char)f;
    }
    for (int f = 0; f < PARSE_F__COUNT; f++) {
        if (parse__field_required[f] && !seen[f])
            return SF_ERR(err, SF_EINVAL, "CSV header: required column '%s' is missing",
                          parse__field_names[f]);
    }
    ctx->h->ncols = n;
    return SF_OK;
}

sf_status sf_csv_header_parse(const char *line, size_t len, const sf_parse_opts *opts,
                              sf_csv_header **out, sf_error *err)
{
    *out = NULL;
    len = parse__chomp(line, len);
    sf_status st = parse__check_line_len(len, opts, err);
    if (st != SF_OK)
        return st;
    sf_csv_header *h = calloc(1, sizeof *h);
    if (!h)
        return SF_ERR(err, SF_ENOMEM, "out of memory for a CSV header");
    parse__header_ctx ctx = {h};
    st = parse__with_copy(line, len, parse__header_fn, &ctx, err);
    if (st != SF_OK) {
        free(h);
        return st;
    }
    *out = h;
    return SF_OK;
}

void sf_csv_header_free(sf_csv_header *h)
{
    free(h);
}

size_t sf_csv_header_columns(const sf_csv_header *h)
{
    return h->ncols;
}

typedef struct parse__row_ctx {
    const sf_csv_header *h;
    const sf_parse_opts *opts;
    sf_event *out;
} parse__row_ctx;

static sf_status parse__row_fn(char *buf, size_t len, void *vctx, sf_error *err)
{
    parse__row_ctx *ctx = vctx;
    parse__cell cells[PARSE_CSV_MAX_COLS];
    size_t n = 0;
    sf_status st = parse__csv_split(buf, len, cells, ctx->h->ncols, &n, err);
    if (st != SF_OK)
        return st;
    if (n != ctx->h->ncols)
        return SF_ERR(err, SF_EINVAL, "row has %s%zu cell%s, the header has %zu",
                      n > ctx->h->ncols ? "more than " : "", n > ctx->h->ncols ? ctx->h->ncols : n,
                      n == 1 ? "" : "s", ctx->h->ncols);
    parse__val vals[PARSE_F__COUNT];
    memset(vals, 0, sizeof vals);
    for (size_t c = 0; c < n; c++) {
        if (cells[c].len == 0)
            continue; /* empty cell: absent */
        parse__val *v = &vals[ctx->h->field[c]];
        v->type = PARSE_V_STR;
        v->s = cells[c].s;
        v->len = cells[c].len;
    }
    return parse__build(vals, true, ctx->opts, ctx->out, err);
}

sf_status sf_event_parse_csv(const sf_csv_header *h, const char *line, size_t len,
                             const sf_parse_opts *opts, sf_event *out, sf_error *err)
{
    len = parse__chomp(line, len);
    sf_status st = parse__check_line_len(len, opts, err);
    if (st != SF_OK)
        return st;
    parse__row_ctx ctx = {h, opts, out};
    return parse__with_copy(line, len, parse__row_fn, &ctx, err);
}

/* --- JSON output -------------------------------------------------------------------- */

typedef struct parse__out {
    char *buf;
    size_t size, len;
    bool overflow; /* sticky: checked once at the end */
} parse__out;

static void parse__put(parse__out *o, const char *s, size_t n)
{
    if (o->overflow || n >= o->size - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void parse__puts(parse__out *o, const char *s)
{
    parse__put(o, s, strlen(s));
}

static void parse__put_json_str(parse__out *o, const char *s)
{
    parse__put(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            parse__put(o, esc, 2);
        } else if (*p < 0x20 || *p == 0x7F) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            parse__put(o, esc, 6);
        } else {
            parse__put(o, (const char *)p, 1);
        }
    }
    parse__put(o, "\"", 1);
}

static void parse__put_time(parse__out *o, int64_t ms, unsigned flags)
{
    char t[32];
    if (!(flags & SF_JSON_EPOCH_MS) && sf_time_format_rfc3339(ms, t, sizeof t)) {
        parse__put(o, "\"", 1);
        parse__puts(o, t);
        parse__put(o, "\"", 1);
    } else {
        snprintf(t, sizeof t, "%lld", (long long)ms);
        parse__puts(o, t);
    }
}

sf_status sf_event_format_json(const sf_event *ev, unsigned flags, char *buf, size_t size,
                               size_t *len, sf_error *err)
{
    if (size == 0)
        return SF_ERR(err, SF_EINVAL, "event JSON: no buffer");
    parse__out o = {buf, size, 0, false};
    char num[32];
    parse__puts(&o, "{\"event_id\":");
    parse__put_json_str(&o, ev->event_id);
    parse__puts(&o, ",\"kind\":");
    parse__put_json_str(&o, (flags & SF_JSON_KIND_LOWER) ? sf_kind_token(ev->kind)
                                                         : sf_kind_name(ev->kind));
    parse__puts(&o, ",\"sku\":");
    parse__put_json_str(&o, ev->sku);
    parse__puts(&o, ",\"location\":");
    parse__put_json_str(&o, ev->location);
    snprintf(num, sizeof num, ",\"qty\":%lld", (long long)ev->qty);
    parse__puts(&o, num);
    parse__puts(&o, ",\"occurred_at\":");
    parse__put_time(&o, ev->occurred_at, flags);
    parse__puts(&o, ",\"source\":");
    parse__put_json_str(&o, ev->source);
    if (ev->has_channel) {
        parse__puts(&o, ",\"channel\":");
        parse__put_json_str(&o, ev->channel);
    }
    if (ev->has_ref) {
        parse__puts(&o, ",\"ref\":");
        parse__put_json_str(&o, ev->ref);
    }
    if (ev->has_condition) {
        parse__puts(&o, ",\"condition\":");
        parse__put_json_str(&o, sf_condition_name(ev->condition));
    }
    if (ev->has_expires_at) {
        parse__puts(&o, ",\"expires_at\":");
        parse__put_time(&o, ev->expires_at, flags);
    }
    parse__puts(&o, "}");
    if (o.overflow) {
        buf[0] = '\0';
        return SF_ERR(err, SF_EINVAL, "event JSON: does not fit in %zu bytes", size);
    }
    buf[o.len] = '\0';
    if (len)
        *len = o.len;
    return SF_OK;
}

/* --- feed reader ------------------------------------------------------------------ */

#define PARSE_READ_SLACK 4096 /* read granularity beyond max_line */

struct sf_feed_reader {
    FILE *in;
    sf_parse_opts opts;
    sf_feed_format format;
    sf_csv_header *header; /* SF_FEED_CSV with a valid header */
    uint64_t header_line;  /* line of the CSV header (valid or not) */
    uint64_t line;         /* lines consumed so far */
    char *buf;             /* cap bytes; data in [start, end) */
    size_t cap, start, end;
    bool eof;
};

sf_status sf_feed_reader_new(FILE *in, const sf_parse_opts *opts, sf_feed_reader **out,
                             sf_error *err)
{
    *out = NULL;
    if (opts->max_line == 0 || opts->max_line > SF_PARSE_MAX_LINE_LIMIT)
        return SF_ERR(err, SF_EINVAL, "max_line %zu is out of range (1..%zu)", opts->max_line,
                      SF_PARSE_MAX_LINE_LIMIT);
    sf_feed_reader *r = calloc(1, sizeof *r);
    if (!r)
        return SF_ERR(err, SF_ENOMEM, "out of memory for a feed reader");
    /* max_line bytes, a CR, and slack so reads are never tiny; no overflow
     * since max_line <= 1 GiB. */
    size_t cap = opts->max_line + 1 + PARSE_READ_SLACK;
    r->buf = malloc(cap);
    if (!r->buf) {
        free(r);
        return SF_ERR(err, SF_ENOMEM, "out of memory for a %zu-byte line buffer", cap);
    }
    r->cap = cap;
    r->in = in;
    r->opts = *opts;
    *out = r;
    return SF_OK;
}

void sf_feed_reader_free(sf_feed_reader *r)
{
    if (!r)
        return;
    sf_csv_header_free(r->header);
    free(r->buf);
    free(r);
}

sf_feed_format sf_feed_reader_format(const sf_feed_reader *r)
{
    return r->format;
}

/* Read more input after compacting the buffer. SF_EIO on a read error. */
static sf_status parse__fill(sf_feed_reader *r, sf_error *err)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    size_t n = fread(r->buf + r->end, 1, r->cap - r->end, r->in);
    if (n == 0) {
        if (ferror(r->in))
            return SF_ERR(err, SF_EIO, "line %llu: read error: %s",
                          (unsigned long long)(r->line + 1), strerror(errno));
        r->eof = true;
    }
    r->end += n;
    return SF_OK;
}

typedef enum parse__got { PARSE_GOT_LINE, PARSE_GOT_OVERLONG, PARSE_GOT_EOF } parse__got;

/* Skip the rest of an overlong line up to and including its newline,
 * adding the skipped bytes to *total. */
static sf_status parse__skip_line(sf_feed_reader *r, uint64_t *total, sf_error *err)
{
    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl) {
            *total += (uint64_t)(nl - (r->buf + r->start));
            r->start = (size_t)(nl - r->buf) + 1;
            return SF_OK;
        }
        *total += r->end - r->start;
        r->start = r->end = 0;
        if (r->eof)
            return SF_OK;
        sf_status st = parse__fill(r, err);
        if (st != SF_OK)
            return st;
    }
}

/* Next physical line without its LF (a CR is still there). *first_byte
 * gets the first non-blank byte of an overlong line (0 if none seen). */
static sf_status parse__next_line(sf_feed_reader *r, parse__got *got, char **line, size_t *len,
                                  uint64_t *overlong_len, char *first_byte, sf_error *err)
{
    for (;;) {
        size_t avail = r->end - r->start;
        char *p = r->buf + r->start;
        char *nl = memchr(p, '\n', avail);
        if (nl) {
            *line = p;
            *len = (size_t)(nl - p);
            r->start += *len + 1;
            *got = PARSE_GOT_LINE;
            return SF_OK;
        }
        if (avail > r->opts.max_line + 1) {
            *first_byte = 0;
            size_t i = 0;
            if (r->line == 0 && avail >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
                i = 3; /* a BOM is not content */
            for (; i < avail; i++) {
                if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') {
                    *first_byte = p[i];
                    break;
                }
            }
            *overlong_len = 0;
            sf_status st = parse__skip_line(r, overlong_len, err);
            if (st != SF_OK)
                return st;
            *got = PARSE_GOT_OVERLONG;
            return SF_OK;
        }
        if (r->eof) {
            if (avail == 0) {
                *got = PARSE_GOT_EOF;
                return SF_OK;
            }
            *line = p;
            *len = avail;
            r->start = r->end;
            *got = PARSE_GOT_LINE;
            return SF_OK;
        }
        sf_status st = parse__fill(r, err);
        if (st != SF_OK)
            return st;
    }
}

static bool parse__blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t')
            return false;
    }
    return true;
}

static void parse__detect(sf_feed_reader *r, char first)
{
    r->format = first == '{' ? SF_FEED_JSONL : SF_FEED_CSV;
}

static void parse__reject(sf_feed_item *item, const sf_error *why)
{
    item->ok = false;
    item->error = *why;
    sf_error_prefix(&item->error, "line %llu: ", (unsigned long long)item->line);
}

sf_status sf_feed_reader_next(sf_feed_reader *r, sf_feed_item *item, sf_error *err)
{
    for (;;) {
        parse__got got;
        char *line = NULL;
        size_t len = 0;
        uint64_t overlong = 0;
        char first = 0;
        sf_status st = parse__next_line(r, &got, &line, &len, &overlong, &first, err);
        if (st != SF_OK)
            return st;
        if (got == PARSE_GOT_EOF)
            return SF_ENOTFOUND;
        r->line++;
        memset(item, 0, sizeof *item);
        item->line = r->line;
        sf_error why;
        sf_error_clear(&why);

        if (got == PARSE_GOT_OVERLONG) {
            if (r->format == SF_FEED_UNKNOWN) {
                parse__detect(r, first);
                if (r->format == SF_FEED_CSV)
                    r->header_line = r->line;
            }
            SF_ERR(&why, SF_EINVAL, "%llu bytes, longer than max_line %zu",
                   (unsigned long long)overlong, r->opts.max_line);
            parse__reject(item, &why);
            return SF_OK;
        }
        if (r->line == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3;
            len -= 3;
        }
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (parse__blank(line, len))
            continue;
        item->text = line;
        item->text_len = len;
        if (len > r->opts.max_line) {
            if (r->format == SF_FEED_UNKNOWN) {
                size_t i = 0;
                while (line[i] == ' ' || line[i] == '\t')
                    i++;
                parse__detect(r, line[i]);
                if (r->format == SF_FEED_CSV)
                    r->header_line = r->line;
            }
            item->text = NULL;
            item->text_len = 0;
            SF_ERR(&why, SF_EINVAL, "%zu bytes, longer than max_line %zu", len, r->opts.max_line);
            parse__reject(item, &why);
            return SF_OK;
        }
        if (r->format == SF_FEED_UNKNOWN) {
            size_t i = 0;
            while (line[i] == ' ' || line[i] == '\t')
                i++;
            parse__detect(r, line[i]);
            if (r->format == SF_FEED_CSV) {
                r->header_line = r->line;
                st = sf_csv_header_parse(line, len, &r->opts, &r->header, &why);
                if (st == SF_ENOMEM)
                    return SF_ERR(err, st, "line %llu: %s", (unsigned long long)r->line, why.msg);
                if (st != SF_OK) {
                    parse__reject(item, &why);
                    return SF_OK;
                }
                continue; /* a valid header yields no item */
            }
        }
        if (r->format == SF_FEED_JSONL) {
            st = sf_event_parse_json(line, len, &r->opts, &item->event, &why);
        } else if (r->header) {
            st = sf_event_parse_csv(r->header, line, len, &r->opts, &item->event, &why);
        } else {
            st = SF_ERR(&why, SF_EINVAL, "skipped: the CSV header (line %llu) is invalid",
                        (unsigned long long)r->header_line);
        }
        if (st == SF_ENOMEM)
            return SF_ERR(err, st, "line %llu: %s", (unsigned long long)r->line, why.msg);
        if (st != SF_OK) {
            parse__reject(item, &why);
            return SF_OK;
        }
        item->ok = true;
        return SF_OK;
    }
}
