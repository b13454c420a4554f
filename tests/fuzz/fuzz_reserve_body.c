/*
 * fuzz_reserve_body: any bytes as a check-and-reserve request (api/reserve.c,
 * POST /v1/reservations). The first byte is the Idempotency-Key's length
 * (255: no header); that many of the next bytes are the key (a NUL ends it,
 * as evhttp's headers are C strings), the rest is the body.
 * Beyond the sanitizers: an accepted request has a key of 1..128 visible
 * ASCII characters, ref and sku of 1..64 bytes without control characters,
 * exactly one of location and channel (a token), qty and ttl_s in range,
 * and its RESERVE passes the event gate (api_reserve_event: the reserver
 * relies on it) with event_id "rsv-" + 40 hex digits; a refused one names
 * a field and says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/reserve.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t klen = data[0];
    bool has_key = klen != 255;
    data++;
    size--;
    if (!has_key)
        klen = 0;
    if (klen > size)
        klen = size;
    char key[256];
    memcpy(key, data, klen);
    key[klen] = '\0';
    data += klen;
    size -= klen;

    api_reserve_req rq;
    api_reserve_bad bad;
    if (!api_reserve_parse(has_key ? key : NULL, (const char *)data, size, &rq, &bad)) {
        if (strnlen(bad.field, sizeof bad.field) == 0 ||
            strnlen(bad.field, sizeof bad.field) == sizeof bad.field ||
            strnlen(bad.msg, sizeof bad.msg) == 0 ||
            strnlen(bad.msg, sizeof bad.msg) == sizeof bad.msg)
            abort();
        return 0;
    }
    size_t kn = strnlen(rq.key, sizeof rq.key);
    if (kn == 0 || kn > API_RESERVE_KEY_MAX || strcmp(rq.key, key))
        abort();
    for (size_t i = 0; i < kn; i++) {
        if (rq.key[i] < 0x21 || rq.key[i] > 0x7e)
            abort();
    }
    fz_check_field(rq.ref, sizeof rq.ref, false, true);
    fz_check_field(rq.sku, sizeof rq.sku, false, true);
    fz_check_field(rq.location, sizeof rq.location, true, false);
    fz_check_field(rq.channel, sizeof rq.channel, true, false);
    if (!rq.location[0] == !rq.channel[0])
        abort();
    if (rq.qty < 1 || rq.qty > API_RESERVE_QTY_MAX || rq.ttl_s < 1 ||
        rq.ttl_s > API_RESERVE_TTL_MAX)
        abort();

    sf_event ev;
    sf_error err;
    if (api_reserve_event(&rq, 1764547200000LL, &ev, &err) != SF_OK)
        abort(); /* a request the parser accepted must pass the gate */
    if (strlen(ev.event_id) != 44 || strncmp(ev.event_id, "rsv-", 4) ||
        strspn(ev.event_id + 4, "0123456789abcdef") != 40)
        abort();
    return 0;
}
