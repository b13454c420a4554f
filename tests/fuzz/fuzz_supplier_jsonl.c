/*
 * fuzz_supplier_jsonl: any bytes through the jsonl supplier adapter under
 * two option sets (the default pointers from an empty config; nested
 * pointers with array indices and ~0 ~1), open, every row, close. Beyond
 * the sanitizers it checks the adapter's promises: ordinals 1, 2, ..., an
 * accepted row within the contract's limits, the end reached within a
 * bound, the digest and rows unchanged when every LF becomes CRLF, and,
 * under the default pointers, that a quantity read from a number's source
 * text is the number jansson read (so the raw scanner found the right
 * token).
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../suppliers/adapter.h"
#include "config.h"

#define FUZZ_READ_AT INT64_C(1795179600000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *fuzz__opts(const char *fields)
{
    static sf_config_entry entries[2];
    static size_t used;
    sf_config cfg;
    sf_config_init(&cfg);
    if (fields) {
        sf_config_entry *e = &entries[used++];
        snprintf(e->section, sizeof e->section, "supplier.fuzz");
        snprintf(e->key, sizeof e->key, "fields");
        snprintf(e->value, sizeof e->value, "%s", fields);
        e->line = 1;
        cfg.entries = e; /* static: not released with sf_config_free */
        cfg.n_entries = 1;
    }
    void *opts = NULL;
    sf_error err;
    if (sf_adapter_jsonl.configure(&cfg, "supplier.fuzz", &opts, &err) != SF_OK) {
        fprintf(stderr, "fuzz_supplier_jsonl: configure: %s\n", err.msg);
        abort();
    }
    return opts;
}

static void fuzz__check(bool cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_supplier_jsonl: broken promise: %s\n", what);
        abort();
    }
}

/* Line `line` (1-based) of data, without its line end (and BOM on line 1). */
static bool fuzz__line(const char *data, size_t size, uint64_t line, const char **s, size_t *n)
{
    size_t pos = 0;
    for (uint64_t k = 1; k < line; k++) {
        const char *nl = memchr(data + pos, '\n', size - pos);
        if (!nl)
            return false;
        pos = (size_t)(nl - data) + 1;
    }
    const char *nl = memchr(data + pos, '\n', size - pos);
    size_t end = nl ? (size_t)(nl - data) : size;
    if (pos == 0 && end >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    if (end > pos && data[end - 1] == '\r')
        end--;
    *s = data + pos;
    *n = end - pos;
    return true;
}

/* Under the default pointers: a row's qty is what jansson read at /qty. */
static void fuzz__same_number(const char *data, size_t size, const sf_supplier_row *row)
{
    unsigned long long line;
    const char *s = NULL;
    size_t n = 0;
    if (sscanf(row->position, "line %llu", &line) != 1 || !fuzz__line(data, size, line, &s, &n))
        fuzz__check(false, "position names a line of the input");
    json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
    fuzz__check(j != NULL, "an accepted row's line is JSON");
    json_t *q = json_object_get(j, "qty");
    fuzz__check(q != NULL, "an accepted row has /qty");
    double got = (double)row->qty.units;
    for (int k = 0; k < row->qty.scale; k++)
        got /= 10;
    if (json_is_integer(q))
        fuzz__check(row->qty.scale == 0 && row->qty.units == json_integer_value(q),
                    "an integer quantity is exact");
    else if (json_is_real(q))
        fuzz__check(fabs(got - json_real_value(q)) <= 1e-9 * fmax(1.0, fabs(got)),
                    "a real quantity is the number jansson read");
    json_decref(j);
}

typedef struct fuzz__run {
    char digest[65];
    uint64_t rows;
    uint64_t checksum;
} fuzz__run;

static bool fuzz__read(const void *opts, bool default_ptrs, const char *data, size_t size,
                       fuzz__run *run)
{
    sf_feed_ctx ctx = {"fuzz.jsonl", FUZZ_READ_AT, -5 * 3600};
    void *state = NULL;
    sf_error err;
    memset(run, 0, sizeof *run);
    if (sf_adapter_jsonl.open(opts, &ctx, data, size, &state, &err) != SF_OK) {
        fuzz__check(state == NULL, "failed open leaves no state");
        return false;
    }
    const char *dg = sf_adapter_jsonl.digest(state);
    fuzz__check(strlen(dg) == 64 && strspn(dg, "0123456789abcdef") == 64, "digest is 64 hex");
    memcpy(run->digest, dg, 65);
    sf_supplier_row row;
    sf_status st;
    while ((st = sf_adapter_jsonl.next(state, &row, &err)) == SF_OK) {
        run->rows++;
        fuzz__check(run->rows <= size + 1, "a line per byte at most");
        fuzz__check(row.ordinal == run->rows, "ordinals count 1, 2, ...");
        fuzz__check(strncmp(row.position, "line ", 5) == 0, "position is a line");
        if (row.ok) {
            fuzz__check(row.item[0] != '\0' && strlen(row.item) <= SF_STR_MAX, "item");
            fuzz__check(strlen(row.location) <= SF_STR_MAX && strlen(row.ref) <= SF_STR_MAX,
                        "location/ref length");
            fuzz__check(strlen(row.uom) <= SF_UOM_MAX, "uom length");
            fuzz__check(row.kind == SF_KIND_COUNT || row.kind == SF_KIND_ASN ||
                            row.kind == SF_KIND_RECEIPT,
                        "supplier kind");
            fuzz__check(row.qty.scale >= 0 && row.qty.scale <= 6, "scale");
            fuzz__check(row.occurred_at <= FUZZ_READ_AT, "no time in the future");
            if (default_ptrs)
                fuzz__same_number(data, size, &row);
            run->checksum = run->checksum * 31 + (uint64_t)row.qty.units + 7;
        } else {
            fuzz__check(row.error.msg[0] != '\0', "a reject says why");
            run->checksum = run->checksum * 31 + 1;
        }
    }
    fuzz__check(st == SF_ENOTFOUND, "next ends with SF_ENOTFOUND");
    fuzz__check(sf_adapter_jsonl.next(state, &row, &err) == SF_ENOTFOUND, "the end stays");
    sf_adapter_jsonl.close(state);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void *opts[2];
    if (!opts[0]) {
        opts[0] = fuzz__opts(NULL);
        opts[1] = fuzz__opts("sku=/item/id, qty=/q/0, location=/a~1b, uom=/u, occurred_at=/t, "
                             "kind=/k, ref=/r~0");
    }
    const char *text = (const char *)data;
    for (size_t i = 0; i < 2; i++) {
        fuzz__run lf;
        bool opened = fuzz__read(opts[i], i == 0, text, size, &lf);
        if (!opened || size > 4096 || memchr(text, '\r', size))
            continue;
        char *crlf = malloc(2 * size + 1);
        if (!crlf)
            continue;
        size_t n = 0;
        for (size_t k = 0; k < size; k++) {
            if (text[k] == '\n')
                crlf[n++] = '\r';
            crlf[n++] = text[k];
        }
        fuzz__run other;
        fuzz__check(fuzz__read(opts[i], i == 0, crlf, n, &other), "CRLF opens as LF does");
        fuzz__check(strcmp(lf.digest, other.digest) == 0, "CRLF keeps the digest");
        fuzz__check(lf.rows == other.rows && lf.checksum == other.checksum, "CRLF keeps the rows");
        free(crlf);
    }
    return 0;
}
