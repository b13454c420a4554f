/*
 * fuzz_api_request: any bytes as the request target of inv-api (api/request.c).
 * The input is split at its first '?' into the raw path and the raw query
 * string, as evhttp hands them over; the first byte picks which route's
 * query rules apply (none, the channel batch's sku list, the ledger's).
 * Beyond the sanitizers: an accepted path yields a known route whose
 * parameters fit the contract (at most 64 bytes without control characters,
 * tokens for location and channel), a refused one a 4xx/5xx status with a
 * message, and accepted query values are NUL-terminated at their stated
 * length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/request.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 3;
    data++;
    size--;
    /* evhttp gives NUL-terminated strings: a NUL ends them */
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *query = strchr(buf, '?');
    if (query)
        *query++ = '\0';

    api_request rq;
    memset(&rq, 0, sizeof rq);
    bool ok = api_request_route(&rq, buf);
    if (ok) {
        if (rq.route == API_R_UNKNOWN || rq.route >= API_R__COUNT)
            abort();
        fz_check_field(rq.sku, sizeof rq.sku, false, false);
        fz_check_field(rq.ref, sizeof rq.ref, false, false);
        fz_check_field(rq.location, sizeof rq.location, true, false);
        fz_check_field(rq.channel, sizeof rq.channel, true, false);
    } else if (rq.status < 400 || rq.status > 599 || rq.error[0] == '\0') {
        abort();
    }
    if (strnlen(rq.error, sizeof rq.error) == sizeof rq.error ||
        strnlen(rq.field, sizeof rq.field) == sizeof rq.field)
        abort();
    (void)api_route_name(rq.route);

    static const char *const none[] = {NULL};
    static const char *const skus[] = {"sku", NULL};
    static const char *const ledger[] = {"location", "limit", "after", NULL};
    const char *const *allowed = mode == 0 ? none : mode == 1 ? skus : ledger;
    size_t max_params = mode == 1 ? 1000 : 8;
    memset(&rq.status, 0, sizeof rq.status);
    if (api_request_query(&rq, query, max_params, allowed, mode == 1 ? "sku" : "query")) {
        if (rq.n_query > max_params)
            abort();
        for (size_t i = 0; i < rq.n_query; i++) {
            const api_param *p = &rq.query[i];
            if (!p->key || !p->value || p->value[p->value_len] != '\0' || p->value_len > SF_STR_MAX)
                abort();
        }
        if (rq.n_query > 0 && api_request_get(&rq, rq.query[0].key) != rq.query[0].value)
            abort();
    } else if (rq.status < 400 || rq.status > 599) {
        abort();
    }
    api_request_free(&rq);
    free(buf);
    return 0;
}
