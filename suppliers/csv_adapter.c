/*
 * csv_adapter: a supplier's delimited text feed -> supplier rows
 * (adapter.h, format "csv"). RFC 4180 over the whole buffer: quoted cells
 * with "" escapes that may span lines (a record's position is its first
 * line), CRLF, LF or CR line ends, an optional UTF-8 BOM, blank lines
 * skipped, the last newline optional. Cells are taken as sent (no
 * trimming); only the mapped cells are checked (UTF-8, 64 bytes, control
 * characters), so a Latin-1 description column does not reject a row.
 *
 * The one idea: one tokenizer, csv__record(), reads a record into a
 * scratch buffer of unquoted cells; open() runs it over every record to
 * hash the digest, next() runs it again record by record. Memory is the
 * largest record plus at most CSV__MAX_CELLS cell slots, whatever the
 * feed's size.
 *
 * Digest (adapter_util.h's framing: values joined by 0x1F, records ended
 * by 0x1E): first one record binding the data to its meaning (the column
 * number of each of sku, qty, location, uom, occurred_at, kind, ref, ""
 * when unmapped, then the default kind and uom), then every data record's
 * unquoted cells. The header's text is not hashed, nor are line ends,
 * quoting, blank lines or the BOM; but a corrected header that moves qty
 * to another column, or a new default unit, is new content and gets new
 * event ids instead of being dropped as a re-send.
 *
 * Example, matching examples/suppliers/initech-stock.csv (format,
 * timezone and location_map are read by supplier_config.c, the others
 * here; its 2.5 CA becomes 30 units at the pack size of 12 that the
 * mapper finds for that item):
 *
 *   [supplier.initech]
 *   format = csv
 *   timezone = -06:00
 *   location_map = AUS1=DC-AUSTIN, DAL2=DC-DALLAS
 *   delimiter = semicolon
 *   header = true
 *   columns = sku=ITEM_NO, qty=QTY ON HAND, uom=UOM, location=WHSE,
 *       occurred_at=AS_OF
 *   kind = count
 *   uom = EA
 *
 * Keys: delimiter (one character or tab, comma, semicolon, pipe; default
 * ','), header (true | false, default true), columns (our field = their
 * header name, or 1-based column number when header = false; sku and qty
 * required; default: the header names sku, qty, location, uom,
 * occurred_at, kind, ref, matched without case; with header = false
 * sku=1, qty=2), kind and uom (defaults when there is no such column or
 * its cell is empty). Header names are matched ignoring ASCII case and
 * surrounding blanks. Without a header, the first record that has every
 * mapped column sets the cell count the others must have.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapter.h"
#include "adapter_util.h"

#define CSV__MAX_CELLS 4096
#define CSV__NAME_MAX SF_ADAPTER_PAIR_VALUE_MAX

typedef struct csv__col {
    bool mapped;
    bool required; /* header = true: its absence from the header fails open() */
    char name[CSV__NAME_MAX + 1];
    size_t number; /* header = false: 1-based */
} csv__col;

typedef struct csv__opts {
    char delim;
    bool header;
    csv__col col[SF_AF__COUNT];
    sf_adapter_defaults d;
} csv__opts;

typedef struct csv__cell {
    size_t off, len; /* in the scratch buffer */
} csv__cell;

typedef enum csv__flaw {
    CSV__FLAW_NONE = 0,
    CSV__FLAW_UNCLOSED,    /* a quote runs to the end of the input */
    CSV__FLAW_AFTER_QUOTE, /* text between a closing quote and the delimiter */
    CSV__FLAW_TOO_MANY     /* more than CSV__MAX_CELLS cells */
} csv__flaw;

typedef struct csv__rec {
    uint64_t line; /* first physical line */
    size_t ncells; /* every cell, stored or not */
    csv__flaw flaw;
    size_t flaw_cell; /* 1-based, for CSV__FLAW_AFTER_QUOTE */
} csv__rec;

typedef struct csv__state {
    csv__opts o;
    sf_feed_ctx ctx;
    const char *data;
    size_t len, pos;
    uint64_t line;
    int idx[SF_AF__COUNT]; /* 0-based cell of each field, -1 unmapped */
    size_t width;          /* cells a record must have; 0 until known */
    uint64_t width_line;   /* where it was learned (0: the header) */
    uint64_t ordinal;
    char *buf; /* unquoted cells of the current record */
    size_t buf_len, buf_cap;
    csv__cell *cells;
    size_t cells_cap;
    char digest[65];
} csv__state;

static const char *const csv__keys[] = {"delimiter", "header", "columns", "kind", "uom", NULL};

/* --- configuration ------------------------------------------------------------ */

static bool csv__delimiter(const char *v, char *out)
{
    static const struct {
        const char *word;
        char c;
    } words[] = {{"tab", '\t'}, {"comma", ','}, {"semicolon", ';'}, {"pipe", '|'}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcasecmp(v, words[i].word) == 0) {
            *out = words[i].c;
            return true;
        }
    }
    unsigned char c = (unsigned char)v[0];
    if (v[0] == '\0' || v[1] != '\0' || c == '"' || (c != '\t' && (c < 0x20 || c > 0x7E)))
        return false;
    *out = v[0];
    return true;
}

static sf_status csv__columns(const sf_config *cfg, const char *section, csv__opts *o,
                              sf_error *err)
{
    const char *v = sf_config_get(cfg, section, "columns");
    if (!v) {
        for (int f = 0; f < SF_AF__COUNT; f++) {
            csv__col *c = &o->col[f];
            c->required = f == SF_AF_SKU || f == SF_AF_QTY;
            if (o->header) {
                c->mapped = true;
                snprintf(c->name, sizeof c->name, "%s", sf_adapter_field_name(f));
            } else {
                c->mapped = c->required;
                c->number = f == SF_AF_SKU ? 1 : 2;
            }
        }
        return SF_OK;
    }
    sf_adapter_pair pairs[SF_AF__COUNT + 1];
    size_t n;
    sf_error why;
    if (sf_adapter_pairs_parse(v, pairs, SF_AF__COUNT, &n, &why) != SF_OK)
        return SF_ADAPTER_CFG_ERR(err, cfg, section, "columns", "%s", why.msg);
    for (size_t i = 0; i < n; i++) {
        int f = sf_adapter_field_lookup(pairs[i].name, strlen(pairs[i].name));
        if (f < 0)
            return SF_ADAPTER_CFG_ERR(err, cfg, section, "columns",
                                      "unknown field '%s' (fields: sku, qty, location, uom, "
                                      "occurred_at, kind, ref)",
                                      pairs[i].name);
        csv__col *c = &o->col[f];
        if (c->mapped)
            return SF_ADAPTER_CFG_ERR(err, cfg, section, "columns", "field %s mapped twice",
                                      pairs[i].name);
        c->mapped = true;
        c->required = true;
        if (o->header) {
            snprintf(c->name, sizeof c->name, "%s", pairs[i].value);
            continue;
        }
        char *end;
        unsigned long num = strtoul(pairs[i].value, &end, 10);
        if (pairs[i].value[0] < '0' || pairs[i].value[0] > '9' || *end != '\0' || num < 1 ||
            num > CSV__MAX_CELLS)
            return SF_ADAPTER_CFG_ERR(err, cfg, section, "columns",
                                      "field %s: '%s' is not a column number 1..%d (header = "
                                      "false)",
                                      pairs[i].name, pairs[i].value, CSV__MAX_CELLS);
        c->number = num;
    }
    if (!o->col[SF_AF_SKU].mapped || !o->col[SF_AF_QTY].mapped)
        return SF_ADAPTER_CFG_ERR(err, cfg, section, "columns", "sku and qty must be mapped");
    return SF_OK;
}

static sf_status csv__configure(const sf_config *cfg, const char *section, void **opts,
                                sf_error *err)
{
    *opts = NULL;
    csv__opts *o = calloc(1, sizeof *o);
    if (!o)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    sf_status st;
    o->delim = ',';
    o->header = true;
    const char *v = sf_config_get(cfg, section, "delimiter");
    if (v && !csv__delimiter(v, &o->delim)) {
        st = SF_ADAPTER_CFG_ERR(err, cfg, section, "delimiter",
                                "'%s' is not one character (not '\"') or tab, comma, semicolon, "
                                "pipe",
                                v);
        goto fail;
    }
    v = sf_config_get(cfg, section, "header");
    if (v) {
        if (strcasecmp(v, "true") == 0) {
            o->header = true;
        } else if (strcasecmp(v, "false") == 0) {
            o->header = false;
        } else {
            st = SF_ADAPTER_CFG_ERR(err, cfg, section, "header", "'%s' is not true or false", v);
            goto fail;
        }
    }
    if ((st = csv__columns(cfg, section, o, err)) != SF_OK)
        goto fail;
    if ((st = sf_adapter_defaults_configure(cfg, section, &o->d, err)) != SF_OK)
        goto fail;
    *opts = o;
    return SF_OK;
fail:
    free(o);
    return st;
}

static void csv__free_opts(void *opts)
{
    free(opts);
}

/* --- the tokenizer ---------------------------------------------------------------- */

static sf_status csv__append(csv__state *s, const char *p, size_t n, sf_error *err)
{
    if (n == 0)
        return SF_OK;
    if (s->buf_cap - s->buf_len < n) {
        size_t cap = s->buf_cap;
        while (cap - s->buf_len < n)
            cap *= 2; /* buf_len + n <= the feed's size <= 64 MiB: no wrap */
        char *grown = realloc(s->buf, cap);
        if (!grown)
            return SF_ERR(err, SF_ENOMEM, "out of memory (a record of %zu bytes)", s->buf_len + n);
        s->buf = grown;
        s->buf_cap = cap;
    }
    memcpy(s->buf + s->buf_len, p, n);
    s->buf_len += n;
    return SF_OK;
}

static bool csv__eol(char c)
{
    return c == '\n' || c == '\r';
}

/* Step over the line end at s->pos (CRLF, LF or CR). */
static void csv__take_eol(csv__state *s)
{
    bool crlf = s->data[s->pos] == '\r' && s->pos + 1 < s->len && s->data[s->pos + 1] == '\n';
    s->pos += crlf ? 2 : 1;
    s->line++;
}

/* Skip blank lines (empty or only blanks that are not the delimiter);
 * false at the end of the input. */
static bool csv__skip_blank(csv__state *s)
{
    while (s->pos < s->len) {
        size_t i = s->pos;
        while (i < s->len && (s->data[i] == ' ' || s->data[i] == '\t') && s->data[i] != s->o.delim)
            i++;
        if (i == s->len) {
            s->pos = i;
            return false;
        }
        if (!csv__eol(s->data[i]))
            return true;
        s->pos = i;
        csv__take_eol(s);
    }
    return false;
}

static sf_status csv__store_cell(csv__state *s, csv__rec *rec, size_t off, sf_error *err)
{
    rec->ncells++;
    if (rec->ncells > CSV__MAX_CELLS) {
        s->buf_len = off; /* counted and hashed, not kept */
        if (rec->flaw == CSV__FLAW_NONE)
            rec->flaw = CSV__FLAW_TOO_MANY;
        return SF_OK;
    }
    if (rec->ncells > s->cells_cap) {
        size_t cap = s->cells_cap ? s->cells_cap * 2 : 32;
        if (cap > CSV__MAX_CELLS)
            cap = CSV__MAX_CELLS;
        csv__cell *grown = realloc(s->cells, cap * sizeof *grown);
        if (!grown)
            return SF_ERR(err, SF_ENOMEM, "out of memory");
        s->cells = grown;
        s->cells_cap = cap;
    }
    s->cells[rec->ncells - 1] = (csv__cell){off, s->buf_len - off};
    return SF_OK;
}

/* Read the record at s->pos (not blank) into the scratch buffer and the
 * cell slots; hash its cells into dg when given. Newlines inside quotes
 * become LF, so CRLF and LF feeds give the same cells. */
static sf_status csv__record(csv__state *s, csv__rec *rec, sf_adapter_digest *dg, sf_error *err)
{
    const char *d = s->data;
    const char delim = s->o.delim;
    sf_status st;
    *rec = (csv__rec){.line = s->line};
    s->buf_len = 0;
    for (;;) {
        size_t off = s->buf_len;
        if (s->pos < s->len && d[s->pos] == '"') {
            s->pos++;
            for (;;) {
                if (s->pos == s->len) {
                    rec->flaw = CSV__FLAW_UNCLOSED;
                    break;
                }
                size_t j = s->pos;
                while (j < s->len && d[j] != '"' && !csv__eol(d[j]))
                    j++;
                if ((st = csv__append(s, d + s->pos, j - s->pos, err)) != SF_OK)
                    return st;
                s->pos = j;
                if (j == s->len)
                    continue;
                if (d[j] == '"') {
                    bool escaped = j + 1 < s->len && d[j + 1] == '"';
                    s->pos = j + (escaped ? 2 : 1);
                    if (!escaped)
                        break;
                    if ((st = csv__append(s, "\"", 1, err)) != SF_OK)
                        return st;
                    continue;
                }
                if ((st = csv__append(s, "\n", 1, err)) != SF_OK)
                    return st;
                csv__take_eol(s);
            }
            if (s->pos < s->len && d[s->pos] != delim && !csv__eol(d[s->pos]) &&
                rec->flaw == CSV__FLAW_NONE) {
                rec->flaw = CSV__FLAW_AFTER_QUOTE;
                rec->flaw_cell = rec->ncells + 1;
            }
        }
        /* unquoted text, or what follows a closing quote (kept, flagged) */
        size_t j = s->pos;
        while (j < s->len && d[j] != delim && !csv__eol(d[j]))
            j++;
        if ((st = csv__append(s, d + s->pos, j - s->pos, err)) != SF_OK)
            return st;
        s->pos = j;
        if (dg)
            sf_adapter_digest_value(dg, s->buf + off, s->buf_len - off);
        if ((st = csv__store_cell(s, rec, off, err)) != SF_OK)
            return st;
        if (s->pos < s->len && d[s->pos] == delim) {
            s->pos++;
            continue;
        }
        if (s->pos < s->len)
            csv__take_eol(s);
        break;
    }
    if (dg)
        sf_adapter_digest_end_record(dg);
    return SF_OK;
}

/* --- open, next, close ------------------------------------------------------------ */

static const char *csv__name(const sf_feed_ctx *ctx)
{
    return ctx->name ? ctx->name : "feed";
}

static void csv__trim(const char **s, size_t *len)
{
    while (*len > 0 && ((*s)[0] == ' ' || (*s)[0] == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* A header cell names a column: ASCII case and surrounding blanks aside. */
static bool csv__name_eq(const char *cell, size_t len, const char *name)
{
    size_t name_len = strlen(name);
    csv__trim(&cell, &len);
    csv__trim(&name, &name_len);
    return name_len == len && strncasecmp(cell, name, len) == 0;
}

/* Read the header record and find each mapped column in it. */
static sf_status csv__header(csv__state *s, sf_error *err)
{
    const char *name = csv__name(&s->ctx);
    csv__rec rec;
    sf_status st;
    if (!csv__skip_blank(s))
        return SF_ERR(err, SF_EINVAL, "%s: no header line (the feed is empty)", name);
    if ((st = csv__record(s, &rec, NULL, err)) != SF_OK)
        return st;
    unsigned long long line = (unsigned long long)rec.line;
    switch (rec.flaw) {
    case CSV__FLAW_NONE: break;
    case CSV__FLAW_UNCLOSED:
        return SF_ERR(err, SF_EINVAL, "%s: line %llu: header: unclosed quote", name, line);
    case CSV__FLAW_AFTER_QUOTE:
        return SF_ERR(err, SF_EINVAL,
                      "%s: line %llu: header: cell %zu: text after the closing quote", name, line,
                      rec.flaw_cell);
    case CSV__FLAW_TOO_MANY:
        return SF_ERR(err, SF_EINVAL, "%s: line %llu: header: more than %d cells", name, line,
                      CSV__MAX_CELLS);
    }
    s->width = rec.ncells;
    s->width_line = 0;
    for (int f = 0; f < SF_AF__COUNT; f++) {
        const csv__col *c = &s->o.col[f];
        s->idx[f] = -1;
        if (!c->mapped)
            continue;
        for (size_t i = 0; i < rec.ncells; i++) {
            const csv__cell *cell = &s->cells[i];
            if (!csv__name_eq(s->buf + cell->off, cell->len, c->name))
                continue;
            if (s->idx[f] >= 0)
                return SF_ERR(err, SF_EINVAL,
                              "%s: line %llu: header: column '%s' (mapped to %s) appears twice "
                              "(cells %d and %zu)",
                              name, line, c->name, sf_adapter_field_name(f), s->idx[f] + 1, i + 1);
            s->idx[f] = (int)i;
        }
        if (s->idx[f] < 0 && c->required)
            return SF_ERR(err, SF_EINVAL, "%s: line %llu: header has no column '%s' (mapped to %s)",
                          name, line, c->name, sf_adapter_field_name(f));
    }
    return SF_OK;
}

static void csv__close(void *state)
{
    csv__state *s = state;
    if (!s)
        return;
    free(s->buf);
    free(s->cells);
    free(s);
}

static sf_status csv__open(const void *opts, const sf_feed_ctx *ctx, const char *data, size_t len,
                           void **state, sf_error *err)
{
    *state = NULL;
    if (len > SF_FEED_MAX_BYTES)
        return SF_ERR(err, SF_EINVAL, "%s: %zu bytes, more than the %zu a feed may have",
                      ctx->name ? ctx->name : "feed", len, SF_FEED_MAX_BYTES);
    csv__state *s = calloc(1, sizeof *s);
    if (!s)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    sf_status st;
    sf_adapter_digest dg = {0};
    /* the scratch buffer exists from the start: cells point into it */
    s->buf_cap = 4096;
    s->buf = malloc(s->buf_cap);
    if (!s->buf) {
        free(s);
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    }
    s->o = *(const csv__opts *)opts;
    s->ctx = *ctx;
    s->data = data;
    s->len = len;
    s->line = 1;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        s->pos = 3;
    if (s->o.header) {
        if ((st = csv__header(s, err)) != SF_OK)
            goto fail;
    } else {
        for (int f = 0; f < SF_AF__COUNT; f++)
            s->idx[f] = s->o.col[f].mapped ? (int)s->o.col[f].number - 1 : -1;
    }
    size_t body_pos = s->pos;
    uint64_t body_line = s->line;
    if ((st = sf_adapter_digest_begin(&dg, err)) != SF_OK)
        goto fail;
    /* first the binding: which column holds each field, and the defaults */
    for (int f = 0; f < SF_AF__COUNT; f++) {
        char col[16] = "";
        if (s->idx[f] >= 0)
            snprintf(col, sizeof col, "%d", s->idx[f] + 1);
        sf_adapter_digest_value(&dg, col, strlen(col));
    }
    sf_adapter_digest_defaults(&dg, &s->o.d);
    sf_adapter_digest_end_record(&dg);
    while (csv__skip_blank(s)) {
        csv__rec rec;
        if ((st = csv__record(s, &rec, &dg, err)) != SF_OK)
            goto fail;
    }
    if ((st = sf_adapter_digest_end(&dg, s->digest, err)) != SF_OK)
        goto fail;
    s->pos = body_pos;
    s->line = body_line;
    *state = s;
    return SF_OK;
fail:
    sf_adapter_digest_free(&dg);
    csv__close(s);
    return st;
}

static sf_status csv__next(void *state, sf_supplier_row *row, sf_error *err)
{
    csv__state *s = state;
    csv__rec rec;
    sf_status st;
    if (!csv__skip_blank(s))
        return SF_ENOTFOUND;
    if ((st = csv__record(s, &rec, NULL, err)) != SF_OK)
        return st;
    sf_adapter_row_start(row, ++s->ordinal, rec.line);
    sf_error *why = &row->error;
    row->ok = false;
    switch (rec.flaw) {
    case CSV__FLAW_NONE: break;
    case CSV__FLAW_UNCLOSED:
        SF_ERR(why, SF_EINVAL, "unclosed quote: the record runs to the end of the input");
        return SF_OK;
    case CSV__FLAW_AFTER_QUOTE:
        SF_ERR(why, SF_EINVAL, "cell %zu: text after the closing quote", rec.flaw_cell);
        return SF_OK;
    case CSV__FLAW_TOO_MANY:
        SF_ERR(why, SF_EINVAL, "more than %d cells", CSV__MAX_CELLS);
        return SF_OK;
    }
    if (s->width == 0) {
        /* no header: the first record with every mapped column sets the width */
        for (int f = 0; f < SF_AF__COUNT; f++) {
            if (s->idx[f] >= 0 && (size_t)s->idx[f] >= rec.ncells) {
                SF_ERR(why, SF_EINVAL, "%zu cells: no column %d for field %s", rec.ncells,
                       s->idx[f] + 1, sf_adapter_field_name(f));
                return SF_OK;
            }
        }
        s->width = rec.ncells;
        s->width_line = rec.line;
    }
    if (rec.ncells != s->width) {
        if (s->width_line == 0)
            SF_ERR(why, SF_EINVAL, "%zu cells, expected %zu as in the header", rec.ncells,
                   s->width);
        else
            SF_ERR(why, SF_EINVAL, "%zu cells, expected %zu as on line %llu", rec.ncells, s->width,
                   (unsigned long long)s->width_line);
        return SF_OK;
    }
    row->ok = true;
    sf_adapter_val vals[SF_AF__COUNT] = {{0}};
    for (int f = 0; f < SF_AF__COUNT; f++) {
        if (s->idx[f] >= 0) {
            const csv__cell *c = &s->cells[s->idx[f]];
            vals[f] = (sf_adapter_val){s->buf + c->off, c->len};
        }
    }
    sf_adapter_row_build(row, vals, &s->o.d, &s->ctx);
    return SF_OK;
}

static const char *csv__digest(const void *state)
{
    return ((const csv__state *)state)->digest;
}

const sf_adapter_ops sf_adapter_csv = {
    .format = "csv",
    .keys = csv__keys,
    .configure = csv__configure,
    .free_opts = csv__free_opts,
    .open = csv__open,
    .next = csv__next,
    .digest = csv__digest,
    .close = csv__close,
};
