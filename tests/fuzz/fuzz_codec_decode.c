/*
 * fuzz_codec_decode: any bytes as a message on INV_EVENTS or INV_CHANNEL
 * (the consumer decodes what the broker hands it). Decoding must fail
 * cleanly or give an event that validates and re-encodes to bytes that
 * decode to the same event.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sf_codec *codec;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sf_error err;
    if (!codec && sf_codec_new(&codec, &err) != SF_OK)
        abort();
    sf_event ev, again;
    if (sf_codec_decode_event(codec, data, size, &ev, &err) == SF_OK) {
        uint8_t buf[SF_CODEC_EVENT_MAX];
        size_t n = 0;
        if (sf_codec_encode_event(codec, &ev, buf, sizeof buf, &n, &err) != SF_OK ||
            sf_codec_decode_event(codec, buf, n, &again, &err) != SF_OK ||
            memcmp(&ev, &again, sizeof ev) != 0)
            abort();
    }
    sf_channel_stock cs;
    (void)sf_codec_decode_channel_stock(codec, data, size, &cs, &err);
    return 0;
}
