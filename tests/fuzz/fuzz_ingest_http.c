/*
 * fuzz_ingest_http: any bytes as the body of POST /v1/events through the
 * code inv-ingest --http runs on it (ingest/http_body.h), with a small
 * max_line so the overlong-line path is reached. Valid lines are settled
 * as a publisher might (accepted, duplicate, or failed with a reason cut
 * from the input, so arbitrary bytes reach the reply). Checked: line
 * numbers only go forward, every line gets one result, the counts add up,
 * and the reply always builds, dumps and parses back as JSON with one
 * result per line and the counts it claims.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../ingest/http_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = size ? malloc(size) : NULL;
    if (size && !copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    sf_parse_opts o;
    sf_parse_opts_init(&o);
    o.default_source = "fuzz";
    o.now_ms = INT64_C(1795514400000);
    o.max_line = 512;
    ingest_body *b = NULL;
    sf_error err;
    if (ingest_body_new(copy, size, &o, &b, &err) != SF_OK)
        return 0; /* out of memory only; copy was freed */

    uint64_t last = 0;
    size_t n = 0;
    for (;;) {
        sf_event ev;
        ingest_line_result *r = NULL;
        sf_status st = ingest_body_next(b, &ev, &r, &err);
        if (st == SF_ENOTFOUND)
            break;
        if (st != SF_OK || !r || r->line <= last || n > size)
            abort(); /* lines only go forward; no error but memory */
        last = r->line;
        n++;
        if (r->status == INGEST_LINE_REJECTED) {
            if (!r->error || strncmp(r->error, "line ", 5) != 0)
                abort(); /* every reject names its line */
            continue;
        }
        if (r->status != INGEST_LINE_PENDING || strcmp(r->event_id, ev.event_id) != 0)
            abort();
        switch (r->line % 3) {
        case 0: ingest_body_settle(b, r, INGEST_LINE_ACCEPTED, NULL); break;
        case 1: ingest_body_settle(b, r, INGEST_LINE_DUPLICATE, NULL); break;
        default: {
            char why[64];
            size_t k = size < sizeof why - 1 ? size : sizeof why - 1;
            memcpy(why, data, k); /* raw bytes: the reply must stay valid JSON */
            why[k] = '\0';
            ingest_body_settle(b, r, INGEST_LINE_FAILED, why);
            break;
        }
        }
        ingest_body_settle(b, r, INGEST_LINE_ACCEPTED, NULL); /* a second settle: no-op */
    }
    ingest_body_counts c = ingest_body_count(b);
    if (!ingest_body_done(b) || c.lines != n || c.pending != 0 ||
        c.accepted + c.duplicate + c.rejected + c.failed != n)
        abort();
    int code = ingest_body_http_status(b);
    if ((c.failed && code != 503) || (!c.failed && (c.rejected || !n) && code != 400) ||
        (!c.failed && !c.rejected && n && code != 202))
        abort();

    json_t *j = ingest_body_reply_json(b);
    if (!j)
        abort(); /* only on out of memory, which the fuzzer does not simulate */
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        abort();
    json_error_t je;
    json_t *back = json_loads(text, 0, &je);
    free(text);
    if (!back || json_array_size(json_object_get(back, "results")) != n ||
        json_integer_value(json_object_get(back, "rejected")) != (json_int_t)c.rejected ||
        json_integer_value(json_object_get(back, "failed")) != (json_int_t)c.failed)
        abort();
    json_decref(back);
    ingest_body_free(b);
    return 0;
}
