/*
 * fuzz_feed_reader: any bytes as a feed file (JSON lines or CSV with a
 * header) through the reader inv-ingest uses, with a small max_line so the
 * overlong-line path is reached. Every line ends in an item or the end.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "event_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    FILE *in = fmemopen((void *)data, size, "rb");
    if (!in)
        return 0;
    sf_parse_opts o;
    sf_parse_opts_init(&o);
    o.default_source = "fuzz";
    o.now_ms = INT64_C(1795514400000);
    o.max_line = 512;
    sf_feed_reader *r = NULL;
    sf_error err;
    if (sf_feed_reader_new(in, &o, &r, &err) == SF_OK) {
        sf_feed_item item;
        uint64_t last = 0;
        for (size_t i = 0; i <= size + 1; i++) {
            sf_status st = sf_feed_reader_next(r, &item, &err);
            if (st == SF_ENOTFOUND)
                break;
            if (st != SF_OK || item.line <= last)
                abort(); /* a FILE over memory cannot fail; lines only go forward */
            last = item.line;
        }
        sf_feed_reader_free(r);
    }
    fclose(in);
    return 0;
}
