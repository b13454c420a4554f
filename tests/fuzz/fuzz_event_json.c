/*
 * fuzz_event_json: any bytes as one JSON event line (inv-ingest --file,
 * --zmq). Beyond the sanitizers: an accepted event passes validation again
 * and survives its own JSON form unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "event_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sf_parse_opts o;
    sf_parse_opts_init(&o);
    o.default_source = "fuzz";
    o.now_ms = INT64_C(1795514400000);
    sf_event ev, again;
    sf_error err;
    if (sf_event_parse_json((const char *)data, size, &o, &ev, &err) != SF_OK)
        return 0;
    if (sf_event_validate(&ev, o.now_ms, o.max_future_ms, &err) != SF_OK)
        abort();
    char line[2048];
    size_t n = 0;
    if (sf_event_format_json(&ev, 0, line, sizeof line, &n, &err) != SF_OK ||
        sf_event_parse_json(line, n, &o, &again, &err) != SF_OK ||
        memcmp(&ev, &again, sizeof ev) != 0)
        abort();
    return 0;
}
