/*
 * The outbox relay of check-and-reserve (issue 11, point 2; reconciler/
 * relay.h): every RESERVE inv-api commits reaches INV_EVENTS exactly once
 * (counted by Nats-Msg-Id in the stream: no loss, no copy) although the
 * reconciler relaying it is killed with SIGKILL again and again, and
 * although JetStream is stopped while reservations go on; a copy delivered
 * anyway (as after the duplicate window) changes nothing, because the
 * consumer finds its event_id in the ledger.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "reserve_client.h"
#include "stockcheck.h"

TestSuite(reserve_relay, .init = fx_reset, .fini = api_fini, .timeout = 600);

#define AT "\"occurred_at\":\"2026-11-20T10:00:00Z\""

/* Stock for the reservations: RLY at RLY-L1, 100000 units. */
static void stock_up(void)
{
    char path[512], out[4096];
    sc_tmp("relay-stock.jsonl", path, sizeof path);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("{\"event_id\":\"rly-1\",\"kind\":\"RECEIPT\",\"sku\":\"RLY\",\"location\":\"RLY-L1\","
          "\"qty\":100000," AT ",\"source\":\"rt\"}\n",
          f);
    fclose(f);
    sc_ingest(path, out, sizeof out);
    sc_drain(1);
}

/* n reservations of 1 unit by n concurrent clients; all must be 201. */
static void reserve_n(int port, const char *key, int first, int n)
{
    rc_call *calls = calloc((size_t)n, sizeof *calls);
    cr_assert(calls);
    for (int i = 0; i < n; i++) {
        calls[i].port = port;
        calls[i].api_key = key;
        snprintf(calls[i].idem, sizeof calls[i].idem, "rk-%d", first + i);
        snprintf(calls[i].body, sizeof calls[i].body,
                 "{\"ref\":\"ro-%d\",\"sku\":\"RLY\",\"qty\":1,\"location\":\"RLY-L1\","
                 "\"ttl_s\":3600}",
                 first + i);
    }
    rc_fire(calls, (size_t)n);
    for (int i = 0; i < n; i++)
        cr_assert_eq(calls[i].status[0], 201, "reservation %d: %d %s", first + i,
                     calls[i].status[0], calls[i].answer[0]);
    free(calls);
}

/* Count the messages on inv.evt.reserve.> and their distinct msg ids;
 * the first one's data is copied into first (for a re-delivery). */
static void stream_reserves(size_t *total, size_t *distinct, char **first, int *first_len)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "INV_EVENTS";
    so.Config.AckPolicy = js_AckNone;
    so.Config.DeliverPolicy = js_DeliverAll;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus s =
        js_PullSubscribe(&sub, fx_js(), "inv.evt.reserve.>", "relay-check", NULL, &so, &jerr);
    cr_assert(s == NATS_OK, "pull subscribe: %s (%d)", natsStatus_GetText(s), (int)jerr);
    size_t cap = 1024, n = 0;
    char **ids = malloc(cap * sizeof *ids);
    cr_assert(ids);
    if (first)
        *first = NULL;
    for (;;) {
        natsMsgList list = {0};
        s = natsSubscription_Fetch(&list, sub, 256, 1000, &jerr);
        if (s == NATS_TIMEOUT)
            break;
        cr_assert(s == NATS_OK, "fetch: %s", natsStatus_GetText(s));
        for (int i = 0; i < list.Count; i++) {
            const char *id = NULL;
            cr_assert(natsMsgHeader_Get(list.Msgs[i], "Nats-Msg-Id", &id) == NATS_OK && id,
                      "a message without Nats-Msg-Id");
            if (n == cap) {
                cap *= 2;
                ids = realloc(ids, cap * sizeof *ids);
                cr_assert(ids);
            }
            ids[n++] = strdup(id);
            if (first && !*first) {
                *first_len = natsMsg_GetDataLength(list.Msgs[i]);
                *first = malloc((size_t)*first_len);
                memcpy(*first, natsMsg_GetData(list.Msgs[i]), (size_t)*first_len);
            }
        }
        natsMsgList_Destroy(&list);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    *total = n;
    *distinct = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcmp(ids[i], ids[j]);
        *distinct += !seen;
        cr_assert(!strncmp(ids[i], "rsv-", 4), "msg id %s", ids[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* A burst of reservations on a thread of its own (no asserts there). */
typedef struct burst {
    int port;
    const char *key;
    int first, n;
    rc_call *calls;
} burst;

static void *burst_run(void *arg)
{
    burst *b = arg;
    b->calls = calloc((size_t)b->n, sizeof *b->calls);
    pthread_t t[64];
    for (int i = 0; i < b->n && i < 64; i++) {
        rc_call *c = &b->calls[i];
        c->port = b->port;
        c->api_key = b->key;
        c->repeat = 1;
        snprintf(c->idem, sizeof c->idem, "rk-%d", b->first + i);
        snprintf(c->body, sizeof c->body,
                 "{\"ref\":\"ro-%d\",\"sku\":\"RLY\",\"qty\":1,\"location\":\"RLY-L1\","
                 "\"ttl_s\":3600}",
                 b->first + i);
        pthread_create(&t[i], NULL, rc__thread, c);
    }
    for (int i = 0; i < b->n && i < 64; i++)
        pthread_join(t[i], NULL);
    return NULL;
}

static bool outbox_empty(void *arg)
{
    (void)arg;
    return fx_query_i64("SELECT count(*) FROM outbox") == 0;
}

static void check_books(int64_t reserved)
{
    cr_assert_eq(fx_query_i64("SELECT reserved FROM positions WHERE sku = 'RLY'"), reserved);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger WHERE event_id LIKE 'rsv-%'"
                              " AND stream_seq IS NULL"),
                 0, "a relayed RESERVE without its stream sequence");
    sf_model *m = rc_model_of_ledger();
    sc_assert_matches(m);
    sf_model_free(m);
}

Test(reserve_relay, kill_9_loses_and_doubles_nothing)
{
    stock_up();
    char key[128];
    pid_t api;
    int port = rc_start_api("relay-api.log", "2", key, sizeof key, &api);
    enum { ROUNDS = 8, PER_ROUND = 40 };
    unsigned seed = 11;
    int mid_relay = 0;
    for (int r = 0; r < ROUNDS; r++) {
        /* Up and relaying (the first half went out), then the second half
         * arrives while the reconciler dies at a random moment. */
        const char *argv[] = {"inv-reconciler", NULL};
        pid_t rec = fx_spawn(argv, NULL);
        reserve_n(port, key, r * PER_ROUND, PER_ROUND / 2);
        cr_assert(fx_wait_until(outbox_empty, NULL, 30000), "round %d: nothing relayed", r);
        burst b = {port, key, r * PER_ROUND + PER_ROUND / 2, PER_ROUND / 2, NULL};
        pthread_t t;
        cr_assert(pthread_create(&t, NULL, burst_run, &b) == 0);
        usleep((useconds_t)(rand_r(&seed) % 40000));
        fx_stop(rec, SIGKILL, 10000);
        pthread_join(t, NULL);
        for (int i = 0; i < PER_ROUND / 2; i++)
            cr_assert_eq(b.calls[i].status[0], 201, "%d %s", b.calls[i].status[0],
                         b.calls[i].answer[0]);
        free(b.calls);
        int64_t left = fx_query_i64("SELECT count(*) FROM outbox");
        mid_relay += left > 0 && left < PER_ROUND / 2;
    }
    int64_t n = ROUNDS * PER_ROUND;
    fprintf(stderr,
            "after %d kills: %" PRId64 " of %" PRId64
            " relayed; %d kills left part of a burst unsent\n",
            ROUNDS, n - fx_query_i64("SELECT count(*) FROM outbox"), n, mid_relay);
    const char *drain[] = {"inv-reconciler", "--drain", NULL};
    api_run_ok(drain);
    cr_assert(outbox_empty(NULL), "outbox rows left unsent");
    size_t total = 0, distinct = 0;
    char *copy = NULL;
    int copy_len = 0;
    stream_reserves(&total, &distinct, &copy, &copy_len);
    cr_assert_eq(distinct, (size_t)n, "%zu of %" PRId64 " RESERVEs in the stream", distinct, n);
    cr_assert_eq(total, (size_t)n, "%zu messages for %" PRId64 " RESERVEs: copies", total, n);

    int64_t ledger = fx_query_i64("SELECT count(*) FROM ledger");
    sc_drain(1);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger"), ledger);
    check_books(n);

    /* A copy under another msg id (as after the duplicate window). */
    natsMsg *m = NULL;
    cr_assert(natsMsg_Create(&m, "inv.evt.reserve.RLY-L1", NULL, copy, copy_len) == NATS_OK);
    cr_assert(natsMsgHeader_Set(m, "Nats-Msg-Id", "copy-after-window") == NATS_OK);
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    cr_assert(js_PublishMsg(&pa, fx_js(), m, NULL, &jerr) == NATS_OK, "publish copy");
    cr_assert(!pa->Duplicate);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    free(copy);
    sc_drain(1);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger"), ledger);
    check_books(n);
    fx_stop(api, SIGTERM, 30000);
}

Test(reserve_relay, jetstream_outage_delays_never_loses)
{
    stock_up();
    char key[128];
    pid_t api;
    int port = rc_start_api("relay-outage.log", "2", key, sizeof key, &api);
    const char *argv[] = {"inv-reconciler", NULL};
    pid_t rec = fx_spawn(argv, NULL);
    reserve_n(port, key, 0, 10);
    cr_assert(fx_wait_until(outbox_empty, NULL, 30000), "relay did not send the first 10");

    fx_stack("nats-stop");
    reserve_n(port, key, 10, 30); /* inv-api needs only PostgreSQL */
    usleep(1500000);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM outbox"), 30,
                 "rows relayed while JetStream was down");
    fx_stack("nats-start");
    cr_assert(fx_wait_until(outbox_empty, NULL, 90000), "relay did not catch up after the outage");
    fx_stop(rec, SIGTERM, 30000);

    size_t total = 0, distinct = 0;
    stream_reserves(&total, &distinct, NULL, NULL);
    cr_assert_eq(distinct, 40, "%zu of 40 RESERVEs in the stream", distinct);
    cr_assert_eq(total, 40, "%zu messages for 40 RESERVEs", total);
    int64_t ledger = fx_query_i64("SELECT count(*) FROM ledger");
    sc_drain(1);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger"), ledger);
    check_books(40);
    fx_stop(api, SIGTERM, 30000);
}
