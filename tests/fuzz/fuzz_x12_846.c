/*
 * fuzz_x12_846: any bytes through the x12-846 adapter with the default
 * options (configure on an empty config): open, every row, close. Beyond
 * the sanitizers it checks the adapter's promises: ordinals 1, 2, ...
 * with a position each, an accepted row within the contract's limits
 * (item 1..64 bytes, qty >= 0 with scale 0..6, a time never after the
 * read time), a reject with a reason, the end reached within a bound, a
 * 64-digit digest, and rows and digest unchanged when CR LF is added
 * after every segment terminator.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../suppliers/adapter.h"
#include "config.h"

#define FUZZ_OPS sf_adapter_x12_846
#define FUZZ_NAME "fuzz_x12_846"
#define FUZZ_READ_AT INT64_C(1709337600000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz__check(bool cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, FUZZ_NAME ": broken promise: %s\n", what);
        abort();
    }
}

static uint64_t fuzz__mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static uint64_t fuzz__mix_str(uint64_t h, const char *s)
{
    return fuzz__mix(h, s, strlen(s) + 1);
}

/* Read data through the adapter; false when open() refused it. */
static bool fuzz__run(const void *opts, const char *data, size_t size, uint64_t *sum,
                      char digest[65])
{
    sf_feed_ctx ctx = {"fuzz.edi", FUZZ_READ_AT, -5 * 3600};
    void *state = NULL;
    sf_error err;
    sf_status st = FUZZ_OPS.open(opts, &ctx, data, size, &state, &err);
    if (st != SF_OK) {
        fuzz__check(st == SF_EINVAL && state == NULL && err.msg[0], "open fails with a reason");
        return false;
    }
    const char *d = FUZZ_OPS.digest(state);
    fuzz__check(strlen(d) == 64 && strspn(d, "0123456789abcdef") == 64, "a 64-digit digest");
    memcpy(digest, d, 65);
    sf_supplier_row row;
    uint64_t n = 0, h = UINT64_C(14695981039346656037);
    while ((st = FUZZ_OPS.next(state, &row, &err)) == SF_OK) {
        n++;
        fuzz__check(n <= size, "no more rows than bytes");
        fuzz__check(row.ordinal == n, "ordinals 1, 2, ...");
        fuzz__check(strncmp(row.position, "segment ", 8) == 0, "a position");
        if (row.ok) {
            size_t il = strnlen(row.item, sizeof row.item);
            fuzz__check(il >= 1 && il <= SF_STR_MAX, "an item of 1..64 bytes");
            fuzz__check(strnlen(row.location, sizeof row.location) <= SF_STR_MAX, "location");
            fuzz__check(strnlen(row.uom, sizeof row.uom) <= SF_UOM_MAX, "uom");
            fuzz__check(row.qty.units >= 0 && row.qty.scale >= 0 && row.qty.scale <= 6, "qty");
            fuzz__check(row.occurred_at <= FUZZ_READ_AT, "never after the read time");
        } else {
            fuzz__check(row.error.msg[0] != '\0', "a reject has a reason");
        }
        h = fuzz__mix(h, &row.ok, sizeof row.ok);
        h = fuzz__mix_str(h, row.position);
        h = fuzz__mix_str(h, row.ok ? row.item : row.error.msg);
        h = fuzz__mix_str(h, row.location);
        h = fuzz__mix_str(h, row.uom);
        h = fuzz__mix_str(h, row.ref);
        h = fuzz__mix(h, &row.qty.units, sizeof row.qty.units);
        h = fuzz__mix(h, &row.occurred_at, sizeof row.occurred_at);
    }
    fuzz__check(st == SF_ENOTFOUND, "next ends with SF_ENOTFOUND");
    fuzz__check(FUZZ_OPS.next(state, &row, &err) == SF_ENOTFOUND, "the end stays the end");
    FUZZ_OPS.close(state);
    *sum = h;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sf_config cfg;
    sf_config_init(&cfg);
    void *opts = NULL;
    sf_error err;
    if (FUZZ_OPS.configure(&cfg, "supplier.fuzz", &opts, &err) != SF_OK) {
        fprintf(stderr, FUZZ_NAME ": configure: %s\n", err.msg);
        abort();
    }
    uint64_t sum = 0;
    char digest[65];
    const char *text = (const char *)data;
    bool opened = fuzz__run(opts, text, size, &sum, digest);

    /* CR LF after every terminator of an interchange that starts at byte 0 */
    if (opened && size >= 106 && memcmp(text, "ISA", 3) == 0) {
        char term = text[105];
        size_t terms = 0;
        for (size_t i = 0; i < size; i++)
            terms += text[i] == term;
        char *crlf = malloc(size + 2 * terms);
        fuzz__check(crlf != NULL, "memory");
        size_t o = 0;
        for (size_t i = 0; i < size; i++) {
            crlf[o++] = text[i];
            if (text[i] == term) {
                crlf[o++] = '\r';
                crlf[o++] = '\n';
            }
        }
        uint64_t sum2 = 0;
        char digest2[65];
        bool opened2 = fuzz__run(opts, crlf, o, &sum2, digest2);
        fuzz__check(opened2, "CR LF after terminators still opens");
        fuzz__check(strcmp(digest, digest2) == 0, "CR LF does not change the digest");
        fuzz__check(sum == sum2, "CR LF does not change the rows");
        free(crlf);
    }
    FUZZ_OPS.free_opts(opts);
    sf_config_free(&cfg);
    return 0;
}
