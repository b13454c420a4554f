/*
 * fuzz_supplier_csv: any bytes through the csv supplier adapter under
 * three option sets (the defaults from an empty config; no header with
 * every field mapped by number and ';'; a named mapping with tab), open,
 * every row, close. Beyond the sanitizers it checks the adapter's
 * promises: one row per record with ordinals 1, 2, ..., an accepted row
 * within the contract's limits, the end reached within a bound, and the
 * digest and rows unchanged when every LF becomes CRLF.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../suppliers/adapter.h"
#include "config.h"

#define FUZZ_READ_AT INT64_C(1795179600000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Options from (key, value) pairs of [supplier.fuzz], made once. */
static void *fuzz__opts(const char *const kv[][2], size_t n)
{
    static sf_config_entry entries[3][4];
    static size_t used;
    sf_config cfg;
    sf_config_init(&cfg);
    sf_config_entry *e = entries[used++];
    for (size_t i = 0; i < n; i++) {
        snprintf(e[i].section, sizeof e[i].section, "supplier.fuzz");
        snprintf(e[i].key, sizeof e[i].key, "%s", kv[i][0]);
        snprintf(e[i].value, sizeof e[i].value, "%s", kv[i][1]);
        e[i].line = (int)i + 1;
    }
    cfg.entries = e; /* static: not released with sf_config_free */
    cfg.n_entries = n;
    void *opts = NULL;
    sf_error err;
    if (sf_adapter_csv.configure(&cfg, "supplier.fuzz", &opts, &err) != SF_OK) {
        fprintf(stderr, "fuzz_supplier_csv: configure: %s\n", err.msg);
        abort();
    }
    return opts;
}

typedef struct fuzz__run {
    char digest[65];
    uint64_t rows;
    uint64_t checksum; /* over ok flags and quantities, to compare runs */
} fuzz__run;

static void fuzz__check(bool cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_supplier_csv: broken promise: %s\n", what);
        abort();
    }
}

static bool fuzz__read(const void *opts, const char *data, size_t size, fuzz__run *run)
{
    sf_feed_ctx ctx = {"fuzz.csv", FUZZ_READ_AT, -6 * 3600};
    void *state = NULL;
    sf_error err;
    memset(run, 0, sizeof *run);
    if (sf_adapter_csv.open(opts, &ctx, data, size, &state, &err) != SF_OK) {
        fuzz__check(state == NULL, "failed open leaves no state");
        return false;
    }
    const char *dg = sf_adapter_csv.digest(state);
    fuzz__check(strlen(dg) == 64 && strspn(dg, "0123456789abcdef") == 64, "digest is 64 hex");
    memcpy(run->digest, dg, 65);
    sf_supplier_row row;
    sf_status st;
    while ((st = sf_adapter_csv.next(state, &row, &err)) == SF_OK) {
        run->rows++;
        fuzz__check(run->rows <= size + 1, "a record per byte at most");
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
            run->checksum = run->checksum * 31 + (uint64_t)row.qty.units + 7;
        } else {
            fuzz__check(row.error.msg[0] != '\0', "a reject says why");
            run->checksum = run->checksum * 31 + 1;
        }
    }
    fuzz__check(st == SF_ENOTFOUND, "next ends with SF_ENOTFOUND");
    fuzz__check(sf_adapter_csv.next(state, &row, &err) == SF_ENOTFOUND, "the end stays");
    sf_adapter_csv.close(state);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void *opts[3];
    if (!opts[0]) {
        static const char *const none[][2] = {{"kind", "count"}};
        static const char *const numbered[][2] = {
            {"delimiter", "semicolon"},
            {"header", "false"},
            {"columns", "sku=1, qty=2, location=3, uom=4, occurred_at=5, kind=6, ref=7"},
        };
        static const char *const named[][2] = {
            {"delimiter", "tab"},
            {"columns", "sku=ITEM, qty=QTY, location=\"WH, code\", occurred_at=AS_OF"},
            {"uom", "EA"},
        };
        opts[0] = fuzz__opts(none, 0);
        opts[1] = fuzz__opts(numbered, 3);
        opts[2] = fuzz__opts(named, 3);
    }
    const char *text = (const char *)data;
    for (size_t i = 0; i < 3; i++) {
        fuzz__run lf;
        bool opened = fuzz__read(opts[i], text, size, &lf);
        if (!opened || size > 4096 || memchr(text, '\r', size))
            continue;
        /* the same feed with CRLF line ends: same digest, same rows */
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
        fuzz__check(fuzz__read(opts[i], crlf, n, &other), "CRLF opens as LF does");
        fuzz__check(strcmp(lf.digest, other.digest) == 0, "CRLF keeps the digest");
        fuzz__check(lf.rows == other.rows && lf.checksum == other.checksum, "CRLF keeps the rows");
        free(crlf);
    }
    return 0;
}
