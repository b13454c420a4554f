/*
 * Bad messages are sidelined to INV_DLQ with their reason, never dropped,
 * and never hold up the good events around them.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "codec.h"
#include "fixture.h"
#include "stockcheck.h"

TestSuite(dlq, .init = fx_reset, .fini = fx_teardown, .timeout = 300);

static sf_broker *connect_broker(void)
{
    sf_broker *b = NULL;
    sf_error err;
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = fx_env("INV_NATS_URL");
    cr_assert(sf_broker_connect(&bo, &b, &err) == SF_OK, "%s", err.msg);
    return b;
}

static void publish(sf_broker *b, const char *subject, const char *id, const void *data, size_t len)
{
    sf_error err;
    uint64_t seq;
    cr_assert(sf_broker_publish_sync(b, subject, id, NULL, 0, data, len, &seq, &err) == SF_OK, "%s",
              err.msg);
}

static sf_event event(const char *id, sf_kind kind, int64_t qty)
{
    sf_event ev;
    sf_event_init(&ev);
    snprintf(ev.event_id, sizeof ev.event_id, "%s", id);
    ev.kind = kind;
    snprintf(ev.sku, sizeof ev.sku, "SKU-P");
    snprintf(ev.location, sizeof ev.location, "LOC-1");
    ev.qty = qty;
    ev.occurred_at = 1795000000000;
    snprintf(ev.source, sizeof ev.source, "test");
    return ev;
}

static void publish_event(sf_broker *b, sf_codec *c, const sf_event *ev)
{
    uint8_t buf[SF_CODEC_EVENT_MAX];
    size_t len;
    sf_error err;
    cr_assert(sf_codec_encode_event(c, ev, buf, sizeof buf, &len, &err) == SF_OK, "%s", err.msg);
    publish(b, "inv.evt.receipt.LOC-1", ev->event_id, buf, len);
}

static void assert_dlq_has(const char *reason_subject, const char *reason_word)
{
    char out[65536];
    const char *argv[] = {"invctl", "dlq", "list", NULL};
    cr_assert_eq(fx_run(argv, NULL, out, sizeof out, 20000), 0, "%s", out);
    cr_assert(strstr(out, reason_subject), "no %s in: %s", reason_subject, out);
    cr_assert(strstr(out, reason_word), "no '%s' in: %s", reason_word, out);
}

Test(dlq, poison_messages_are_sidelined_good_ones_applied)
{
    sf_broker *b = connect_broker();
    sf_codec *c = NULL;
    sf_error err;
    cr_assert(sf_codec_new(&c, &err) == SF_OK);

    sf_event good1 = event("good-1", SF_KIND_RECEIPT, 10);
    publish_event(b, c, &good1);
    publish(b, "inv.evt.sale.LOC-1", "garbage-1", "\x01\x02garbage", 9);
    /* A well-formed header with a fingerprint nobody knows. */
    uint8_t unknown[] = {0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x02, 0x41};
    publish(b, "inv.evt.sale.LOC-1", "unknown-fp-1", unknown, sizeof unknown);
    sf_event negative = event("neg-1", SF_KIND_SALE, -3); /* decodes, but invalid */
    publish_event(b, c, &negative);
    sf_event good2 = event("good-2", SF_KIND_SALE, 4);
    publish_event(b, c, &good2);

    sc_drain(1);
    cr_assert_eq(fx_query_i64("SELECT on_hand FROM positions WHERE sku = 'SKU-P'"), 6);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger"), 2);
    uint64_t msgs, bytes, first, last;
    cr_assert(sf_broker_stream_info(b, SF_STREAM_DLQ, &msgs, &bytes, &first, &last, &err) == SF_OK);
    cr_assert_eq(msgs, 3);
    assert_dlq_has("inv.dlq.decode", "inv.evt.sale.LOC-1:2");
    assert_dlq_has("inv.dlq.fingerprint", "inv.evt.sale.LOC-1:3");
    assert_dlq_has("inv.dlq.invalid", "qty");

    /* The DLQ copy carries the original bytes and where they came from. */
    sf_stored_msg *m = NULL;
    cr_assert(sf_broker_get_msg(b, SF_STREAM_DLQ, first, &m, &err) == SF_OK, "%s", err.msg);
    size_t len;
    const void *data = sf_stored_msg_data(m, &len);
    cr_assert(len == 9 && memcmp(data, "\x01\x02garbage", 9) == 0);
    cr_assert_str_eq(sf_stored_msg_header(m, SF_HDR_SOURCE_SEQ), "2");
    cr_assert_str_eq(sf_stored_msg_header(m, SF_HDR_DELIVERIES), "1");
    sf_stored_msg_free(m);
    sf_codec_free(c);
    sf_broker_close(b);
}

/* A batch that PostgreSQL rejects (on_hand overflows bigint) is applied
 * event by event; the event that still fails is retried, then sidelined as
 * poison after max_deliver deliveries, and the rest of the batch lands. */
Test(dlq, database_rejected_event_becomes_poison_after_max_deliver)
{
    char cfg_path[512];
    sc_tmp("poison.ini", cfg_path, sizeof cfg_path);
    FILE *f = fopen(cfg_path, "w");
    fputs("[consumer]\nmax_deliver = 2\n", f);
    fclose(f);

    sf_broker *b = connect_broker();
    sf_codec *c = NULL;
    sf_error err;
    cr_assert(sf_codec_new(&c, &err) == SF_OK);
    sf_event big1 = event("big-1", SF_KIND_RECEIPT, INT64_MAX - 5);
    sf_event big2 = event("big-2", SF_KIND_RECEIPT, 100);
    sf_event fine = event("fine-1", SF_KIND_RECEIPT, 1);
    snprintf(fine.sku, sizeof fine.sku, "SKU-Q");
    publish_event(b, c, &big1);
    publish_event(b, c, &big2);
    publish_event(b, c, &fine);

    const char *argv[] = {"inv-consumer", "--config", cfg_path, "--drain", NULL};
    char out[65536];
    cr_assert_eq(fx_run(argv, NULL, out, sizeof out, 120000), 0, "%s", out);
    cr_assert_eq(fx_query_i64("SELECT on_hand FROM positions WHERE sku = 'SKU-Q'"), 1);
    cr_assert_eq(fx_query_i64("SELECT on_hand FROM positions WHERE sku = 'SKU-P'"), INT64_MAX - 5);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger"), 2);
    assert_dlq_has("inv.dlq.poison", "failed 2 deliveries");
    sf_codec_free(c);
    sf_broker_close(b);
}
