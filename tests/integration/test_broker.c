/*
 * Integration tests of common/broker against a real nats-server with
 * JetStream, reached through INV_NATS_URL (skipped when unset). Every test
 * starts from deleted-and-recreated streams (broker_fresh), so tests do not
 * depend on each other or on what ran before. The stream configuration is
 * read back with nats.c directly, not through the module under test.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

#include "broker_pub.h"
#include "broker_pull.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_LSAN 1
#endif
#endif
#ifdef TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define N_MSGS 10000

/* Every test resets the same streams on the same server, and Criterion runs
 * tests in parallel processes: serialise them with a lock held until the
 * test process exits. */
static void serialise_tests(void)
{
    int fd = open("/tmp/stockflow-test-broker.lock", O_RDWR | O_CREAT, 0666);
    cr_assert(fd >= 0, "lock file: %s", strerror(errno));
    cr_assert(flock(fd, LOCK_EX) == 0, "flock: %s", strerror(errno));
    /* fd stays open: the lock is released when the test process exits */
}

static const char *test_url(void)
{
    const char *u = getenv("INV_NATS_URL");
    if (!u || !*u)
        cr_skip_test("INV_NATS_URL is not set: no nats-server to test against");
    static bool locked;
    if (!locked) {
        serialise_tests();
        locked = true;
    }
    return u;
}

/* The end of every test: under AddressSanitizer, shut nats.c down and fail
 * the test on any leak (Criterion ignores failures raised in .fini). */
static void leak_check(void)
{
#ifdef TEST_LSAN
    sf_broker_library_cleanup();
    cr_assert(__lsan_do_recoverable_leak_check() == 0,
              "memory leaked (LeakSanitizer's report is above)");
#endif
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static sf_broker *broker_connect(void)
{
    sf_broker_opts o;
    sf_broker_opts_init(&o);
    o.urls = test_url();
    o.name = "test_broker";
    sf_broker *b = NULL;
    sf_error err;
    sf_error_clear(&err);
    sf_status st = sf_broker_connect(&o, &b, &err);
    cr_assert(st == SF_OK, "connect %s: %s", o.urls, err.msg);
    cr_assert(sf_broker_connected(b));
    return b;
}

/* Delete the three streams (a missing one is fine); setup is left to the test. */
static sf_broker *broker_clean(void)
{
    sf_broker *b = broker_connect();
    const char *streams[] = {SF_STREAM_EVENTS, SF_STREAM_DLQ, SF_STREAM_CHANNEL};
    for (size_t i = 0; i < 3; i++) {
        sf_error err;
        sf_status st = sf_broker_delete_stream(b, streams[i], &err);
        cr_assert(st == SF_OK || st == SF_ENOTFOUND, "delete %s: %s", streams[i], err.msg);
    }
    return b;
}

/* Fresh streams and consumer with the default setup. */
static sf_broker *broker_fresh(void)
{
    sf_broker *b = broker_clean();
    sf_setup_opts so;
    sf_setup_opts_init(&so);
    sf_error err;
    cr_assert(sf_broker_setup(b, &so, NULL, &err) == SF_OK, "setup: %s", err.msg);
    return b;
}

static uint64_t stream_msgs(sf_broker *b, const char *stream)
{
    uint64_t msgs = 0;
    sf_error err;
    cr_assert(sf_broker_stream_info(b, stream, &msgs, NULL, NULL, NULL, &err) == SF_OK, "%s",
              err.msg);
    return msgs;
}

/* ---- completion collector ---- */
typedef struct collector {
    pthread_mutex_t mu;
    size_t n;
    int *calls;        /* per token index */
    sf_status *status; /* per token index */
    uint64_t *seq;     /* per token index */
    size_t total;
    size_t bad_token;
    atomic_long inflight; /* window test: + after publish returns, - in callback */
    atomic_long max_inflight;
} collector;

static void collector_init(collector *c, size_t n)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->n = n;
    c->calls = calloc(n, sizeof *c->calls);
    c->status = calloc(n, sizeof *c->status);
    c->seq = calloc(n, sizeof *c->seq);
    cr_assert(c->calls && c->status && c->seq);
}

static void collector_reset(collector *c)
{
    memset(c->calls, 0, c->n * sizeof *c->calls);
    memset(c->status, 0, c->n * sizeof *c->status);
    memset(c->seq, 0, c->n * sizeof *c->seq);
    c->total = 0;
}

static void collector_fini(collector *c)
{
    free(c->calls);
    free(c->status);
    free(c->seq);
    pthread_mutex_destroy(&c->mu);
}

/* Tokens are index + 1 so that NULL is never a valid token. */
static void collect_cb(void *closure, void *token, const sf_pub_result *res)
{
    collector *c = closure;
    size_t i = (size_t)(uintptr_t)token - 1;
    atomic_fetch_sub(&c->inflight, 1);
    pthread_mutex_lock(&c->mu);
    if (i >= c->n) {
        c->bad_token++;
    } else {
        c->calls[i]++;
        c->status[i] = res->status;
        c->seq[i] = res->seq;
    }
    c->total++;
    pthread_mutex_unlock(&c->mu);
}

static size_t collector_total(collector *c)
{
    pthread_mutex_lock(&c->mu);
    size_t t = c->total;
    pthread_mutex_unlock(&c->mu);
    return t;
}

static sf_publisher *publisher_new(sf_broker *b, collector *c, int window)
{
    sf_publisher_opts po;
    sf_publisher_opts_init(&po);
    po.cb = collect_cb;
    po.closure = c;
    if (window)
        po.max_inflight = window;
    sf_publisher *p = NULL;
    sf_error err;
    cr_assert(sf_publisher_new(b, &po, &p, &err) == SF_OK, "%s", err.msg);
    return p;
}

/* Publish N events inv.evt.sale.STORE-<i%7> with ids "e-<i>", 120 bytes. */
static void publish_n(sf_publisher *p, collector *c, size_t n, long window)
{
    char data[120];
    memset(data, 'x', sizeof data);
    for (size_t i = 0; i < n; i++) {
        char subj[64], id[32];
        snprintf(subj, sizeof subj, "inv.evt.sale.STORE-%zu", i % 7);
        snprintf(id, sizeof id, "e-%zu", i);
        sf_error err;
        sf_status st =
            sf_publisher_publish(p, subj, id, data, sizeof data, (void *)(uintptr_t)(i + 1), &err);
        cr_assert(st == SF_OK, "publish %zu: %s", i, err.msg);
        long now = atomic_fetch_add(&c->inflight, 1) + 1;
        long prev = atomic_load(&c->max_inflight);
        while (now > prev && !atomic_compare_exchange_weak(&c->max_inflight, &prev, now))
            ;
        if (window)
            cr_assert(sf_publisher_inflight(p) <= (size_t)window, "inflight %zu > window %ld",
                      sf_publisher_inflight(p), window);
    }
}

static void flush_ok(sf_publisher *p)
{
    sf_error err;
    cr_assert(sf_publisher_flush(p, 30000, &err) == SF_OK, "flush: %s", err.msg);
    cr_assert(sf_publisher_inflight(p) == 0);
}

TestSuite(broker, .timeout = 90);

Test(broker, setup_is_idempotent_and_as_specified)
{
    sf_broker *b = broker_clean();
    sf_setup_opts so;
    sf_setup_opts_init(&so);
    sf_setup_result r1, r2;
    sf_error err;
    cr_assert(sf_broker_setup(b, &so, &r1, &err) == SF_OK, "%s", err.msg);
    cr_assert(r1.count == 4);
    for (size_t i = 0; i < r1.count; i++)
        cr_assert(r1.items[i].action == SF_SETUP_CREATED, "%s %s: %s", r1.items[i].kind,
                  r1.items[i].name, sf_setup_action_str(r1.items[i].action));
    cr_assert(sf_broker_setup(b, &so, &r2, &err) == SF_OK, "%s", err.msg);
    cr_assert(r2.count == 4);
    for (size_t i = 0; i < r2.count; i++)
        cr_assert(r2.items[i].action == SF_SETUP_UNCHANGED, "%s %s: %s", r2.items[i].kind,
                  r2.items[i].name, sf_setup_action_str(r2.items[i].action));

    /* Read the config back with nats.c itself. */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    cr_assert(natsConnection_ConnectTo(&nc, test_url()) == NATS_OK);
    cr_assert(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    const char *names[] = {SF_STREAM_EVENTS, SF_STREAM_DLQ, SF_STREAM_CHANNEL};
    const char *subjects[] = {"inv.evt.>", "inv.dlq.>", "inv.chan.>"};
    for (int i = 0; i < 3; i++) {
        jsStreamInfo *si = NULL;
        cr_assert(js_GetStreamInfo(&si, js, names[i], NULL, NULL) == NATS_OK, "%s", names[i]);
        cr_assert(si->Config->SubjectsLen == 1);
        cr_assert(strcmp(si->Config->Subjects[0], subjects[i]) == 0, "%s: %s", names[i],
                  si->Config->Subjects[0]);
        cr_assert(si->Config->Storage == js_FileStorage, "%s storage", names[i]);
        cr_assert(si->Config->Duplicates == 3600LL * 1000000000LL, "%s duplicates %lld ns",
                  names[i], (long long)si->Config->Duplicates);
        cr_assert(si->Config->Replicas == 1);
        jsStreamInfo_Destroy(si);
    }
    jsConsumerInfo *ci = NULL;
    cr_assert(js_GetConsumerInfo(&ci, js, SF_STREAM_EVENTS, SF_CONSUMER_APPLIER, NULL, NULL) ==
              NATS_OK);
    cr_assert(ci->Config->AckPolicy == js_AckExplicit);
    cr_assert(ci->Config->MaxDeliver == -1, "MaxDeliver %lld", (long long)ci->Config->MaxDeliver);
    cr_assert(ci->Config->AckWait == 10LL * 1000000000LL, "AckWait %lld ns",
              (long long)ci->Config->AckWait);
    cr_assert(ci->Config->MaxAckPending == 65536);
    cr_assert(ci->Config->DeliverPolicy == js_DeliverAll);
    cr_assert(ci->Config->DeliverSubject == NULL || !*ci->Config->DeliverSubject, "pull consumer");
    jsConsumerInfo_Destroy(ci);

    /* A changed setting updates the consumer in place. */
    so.ack_wait_ms = 30000;
    cr_assert(sf_broker_setup(b, &so, &r2, &err) == SF_OK, "%s", err.msg);
    cr_assert(r2.items[3].action == SF_SETUP_UPDATED);
    cr_assert(js_GetConsumerInfo(&ci, js, SF_STREAM_EVENTS, SF_CONSUMER_APPLIER, NULL, NULL) ==
              NATS_OK);
    cr_assert(ci->Config->AckWait == 30LL * 1000000000LL);
    jsConsumerInfo_Destroy(ci);

    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    sf_broker_close(b);
    leak_check();
}

Test(broker, async_publish_10k_calls_back_once_each)
{
    sf_broker *b = broker_fresh();
    collector c;
    collector_init(&c, N_MSGS);
    sf_publisher *p = publisher_new(b, &c, 0);
    publish_n(p, &c, N_MSGS, 0);
    flush_ok(p);
    cr_assert(collector_total(&c) == N_MSGS, "callbacks %zu", collector_total(&c));
    cr_assert(c.bad_token == 0);
    for (size_t i = 0; i < N_MSGS; i++) {
        cr_assert(c.calls[i] == 1, "token %zu called %d times", i, c.calls[i]);
        cr_assert(c.status[i] == SF_OK, "token %zu: %s", i, sf_status_str(c.status[i]));
        cr_assert(c.seq[i] >= 1 && c.seq[i] <= N_MSGS, "token %zu seq %llu", i,
                  (unsigned long long)c.seq[i]);
    }
    /* Distinct sequences: each seq seen once. */
    unsigned char *seen = calloc(N_MSGS + 1, 1);
    for (size_t i = 0; i < N_MSGS; i++) {
        cr_assert(!seen[c.seq[i]], "seq %llu twice", (unsigned long long)c.seq[i]);
        seen[c.seq[i]] = 1;
    }
    free(seen);
    cr_assert(stream_msgs(b, SF_STREAM_EVENTS) == N_MSGS);
    sf_publisher_free(p);
    collector_fini(&c);
    sf_broker_close(b);
    leak_check();
}

Test(broker, republished_ids_are_reported_duplicate)
{
    sf_broker *b = broker_fresh();
    collector c;
    collector_init(&c, N_MSGS);
    sf_publisher *p = publisher_new(b, &c, 0);
    publish_n(p, &c, N_MSGS, 0);
    flush_ok(p);
    uint64_t *first = malloc(N_MSGS * sizeof *first);
    memcpy(first, c.seq, N_MSGS * sizeof *first);
    collector_reset(&c);

    publish_n(p, &c, N_MSGS, 0);
    flush_ok(p);
    cr_assert(collector_total(&c) == N_MSGS);
    for (size_t i = 0; i < N_MSGS; i++) {
        cr_assert(c.calls[i] == 1);
        cr_assert(c.status[i] == SF_EDUP, "token %zu: %s", i, sf_status_str(c.status[i]));
        cr_assert(c.seq[i] == first[i], "duplicate reports the original sequence");
    }
    cr_assert(stream_msgs(b, SF_STREAM_EVENTS) == N_MSGS);
    free(first);
    sf_publisher_free(p);
    collector_fini(&c);
    sf_broker_close(b);
    leak_check();
}

Test(broker, same_id_twice_in_flight_gets_two_callbacks)
{
    sf_broker *b = broker_fresh();
    collector c;
    collector_init(&c, 2);
    sf_publisher *p = publisher_new(b, &c, 0);
    sf_error err;
    cr_assert(sf_publisher_publish(p, "inv.evt.sale.S1", "same", "a", 1, (void *)1, &err) == SF_OK);
    cr_assert(sf_publisher_publish(p, "inv.evt.sale.S1", "same", "a", 1, (void *)2, &err) == SF_OK);
    flush_ok(p);
    cr_assert(c.calls[0] == 1 && c.calls[1] == 1);
    cr_assert((c.status[0] == SF_OK && c.status[1] == SF_EDUP) ||
              (c.status[0] == SF_EDUP && c.status[1] == SF_OK));
    cr_assert(c.seq[0] == c.seq[1]);
    cr_assert(stream_msgs(b, SF_STREAM_EVENTS) == 1);
    sf_publisher_free(p);
    collector_fini(&c);
    sf_broker_close(b);
    leak_check();
}

Test(broker, window_of_16_is_respected)
{
    sf_broker *b = broker_fresh();
    collector c;
    collector_init(&c, 3000);
    sf_publisher *p = publisher_new(b, &c, 16);
    publish_n(p, &c, 3000, 16);
    flush_ok(p);
    cr_assert(collector_total(&c) == 3000);
    long max = atomic_load(&c.max_inflight);
    cr_assert(max <= 16, "in flight reached %ld", max);
    cr_assert(max >= 2, "the window was used (max %ld)", max);
    cr_assert(stream_msgs(b, SF_STREAM_EVENTS) == 3000);
    sf_publisher_free(p);
    collector_fini(&c);
    sf_broker_close(b);
    leak_check();
}

Test(broker, publish_to_subject_without_stream_fails_in_callback)
{
    sf_broker *b = broker_fresh();
    collector c;
    collector_init(&c, 1);
    sf_publisher *p = publisher_new(b, &c, 0);
    sf_error err;
    cr_assert(sf_publisher_publish(p, "nostream.here", "x-1", "a", 1, (void *)1, &err) == SF_OK);
    flush_ok(p);
    cr_assert(c.calls[0] == 1);
    cr_assert(c.status[0] == SF_EUNAVAIL, "%s", sf_status_str(c.status[0]));
    sf_publisher_free(p);
    collector_fini(&c);
    sf_broker_close(b);
    leak_check();
}

Test(broker, fetch_and_ack_drain_the_consumer)
{
    sf_broker *b = broker_fresh();
    collector c;
    collector_init(&c, 5000);
    sf_publisher *p = publisher_new(b, &c, 0);
    publish_n(p, &c, 5000, 0);
    flush_ok(p);
    sf_publisher_free(p);

    sf_sub *sub = NULL;
    sf_batch *bt = NULL;
    sf_error err;
    cr_assert(sf_broker_pull_subscribe(b, SF_STREAM_EVENTS, SF_CONSUMER_APPLIER, &sub, &err) ==
                  SF_OK,
              "%s", err.msg);
    cr_assert(sf_batch_new(&bt, &err) == SF_OK);
    size_t got = 0;
    unsigned char *seen = calloc(5001, 1);
    for (;;) {
        sf_status st = sf_sub_fetch(sub, 1000, 1000, bt, &err);
        if (st == SF_ETIMEOUT)
            break;
        cr_assert(st == SF_OK, "fetch: %s", err.msg);
        for (size_t i = 0; i < sf_batch_count(bt); i++) {
            uint64_t seq = sf_batch_stream_seq(bt, i);
            cr_assert(seq >= 1 && seq <= 5000 && !seen[seq], "seq %llu", (unsigned long long)seq);
            seen[seq] = 1;
            cr_assert(sf_batch_num_delivered(bt, i) == 1);
            size_t len = 0;
            const void *d = sf_batch_data(bt, i, &len);
            cr_assert(d && len == 120);
            cr_assert(strncmp(sf_batch_subject(bt, i), "inv.evt.sale.STORE-", 19) == 0);
            const char *id = sf_batch_header(bt, i, SF_HDR_MSG_ID);
            cr_assert(id && strncmp(id, "e-", 2) == 0);
            cr_assert(sf_batch_ack(bt, i, &err) == SF_OK, "%s", err.msg);
        }
        got += sf_batch_count(bt);
    }
    cr_assert(got == 5000, "fetched %zu", got);
    cr_assert(sf_batch_data(bt, 0, NULL) == NULL, "out of range after an empty fetch");
    free(seen);

    uint64_t pending = 1, ack_pending = 1, redelivered = 1;
    int64_t deadline = now_ms() + 5000;
    while (now_ms() < deadline) {
        cr_assert(sf_broker_consumer_info(b, SF_STREAM_EVENTS, SF_CONSUMER_APPLIER, &pending,
                                          &ack_pending, &redelivered, NULL, &err) == SF_OK,
                  "%s", err.msg);
        if (pending == 0 && ack_pending == 0)
            break;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert(pending == 0 && ack_pending == 0, "pending %llu, ack pending %llu",
              (unsigned long long)pending, (unsigned long long)ack_pending);
    cr_assert(redelivered == 0);
    sf_batch_destroy(bt);
    sf_sub_free(sub);
    collector_fini(&c);
    sf_broker_close(b);
    leak_check();
}

Test(broker, nak_redelivers_with_delivery_count_2)
{
    sf_broker *b = broker_fresh();
    sf_error err;
    uint64_t seq = 0;
    cr_assert(sf_broker_publish_sync(b, "inv.evt.sale.S1", "nak-1", NULL, 0, "hello", 5, &seq,
                                     &err) == SF_OK,
              "%s", err.msg);
    sf_sub *sub = NULL;
    sf_batch *bt = NULL;
    cr_assert(sf_broker_pull_subscribe(b, SF_STREAM_EVENTS, SF_CONSUMER_APPLIER, &sub, &err) ==
              SF_OK);
    cr_assert(sf_batch_new(&bt, &err) == SF_OK);
    cr_assert(sf_sub_fetch(sub, 10, 2000, bt, &err) == SF_OK, "%s", err.msg);
    cr_assert(sf_batch_count(bt) == 1);
    cr_assert(sf_batch_stream_seq(bt, 0) == seq);
    cr_assert(sf_batch_num_delivered(bt, 0) == 1);
    cr_assert(sf_batch_nak(bt, 0, &err) == SF_OK, "%s", err.msg);

    cr_assert(sf_sub_fetch(sub, 10, 2000, bt, &err) == SF_OK, "%s", err.msg);
    cr_assert(sf_batch_count(bt) == 1);
    cr_assert(sf_batch_stream_seq(bt, 0) == seq);
    cr_assert(sf_batch_num_delivered(bt, 0) == 2, "delivered %llu",
              (unsigned long long)sf_batch_num_delivered(bt, 0));
    size_t len = 0;
    const char *d = sf_batch_data(bt, 0, &len);
    cr_assert(len == 5 && memcmp(d, "hello", 5) == 0);
    uint64_t redelivered = 0;
    cr_assert(sf_broker_consumer_info(b, SF_STREAM_EVENTS, SF_CONSUMER_APPLIER, NULL, NULL,
                                      &redelivered, NULL, &err) == SF_OK);
    cr_assert(redelivered == 1);
    cr_assert(sf_batch_in_progress(bt, 0, &err) == SF_OK, "%s", err.msg);
    cr_assert(sf_batch_ack_sync(bt, 0, &err) == SF_OK, "%s", err.msg);
    cr_assert(sf_batch_ack(bt, 0, &err) == SF_OK, "a second ack is ignored: %s", err.msg);
    cr_assert(sf_batch_nak(bt, 0, &err) == SF_OK, "a nak after the ack is ignored: %s", err.msg);
    cr_assert(sf_sub_fetch(sub, 10, 300, bt, &err) == SF_ETIMEOUT, "acked: nothing left");
    sf_batch_destroy(bt);
    sf_sub_free(sub);
    sf_broker_close(b);
    leak_check();
}

Test(broker, sync_publish_round_trips_headers)
{
    sf_broker *b = broker_fresh();
    sf_error err;
    sf_header h[] = {
        {SF_HDR_REASON, "decode error: bad magic"},
        {SF_HDR_SOURCE_SUBJECT, "inv.evt.sale.S1"},
        {SF_HDR_SOURCE_SEQ, "42"},
        {SF_HDR_DELIVERIES, "3"},
    };
    const char body[] = "\xC3\x01original bytes";
    uint64_t seq = 0;
    cr_assert(sf_broker_publish_sync(b, "inv.dlq.decode", "dlq-42", h, 4, body, sizeof body - 1,
                                     &seq, &err) == SF_OK,
              "%s", err.msg);
    cr_assert(seq == 1);
    uint64_t seq2 = 0;
    cr_assert(sf_broker_publish_sync(b, "inv.dlq.decode", "dlq-42", h, 4, body, sizeof body - 1,
                                     &seq2, &err) == SF_EDUP);
    cr_assert(seq2 == seq);

    sf_stored_msg *m = NULL;
    cr_assert(sf_broker_get_msg(b, SF_STREAM_DLQ, seq, &m, &err) == SF_OK, "%s", err.msg);
    cr_assert(strcmp(sf_stored_msg_subject(m), "inv.dlq.decode") == 0);
    size_t len = 0;
    const void *d = sf_stored_msg_data(m, &len);
    cr_assert(len == sizeof body - 1 && memcmp(d, body, len) == 0);
    cr_assert(sf_stored_msg_seq(m) == seq);
    int64_t age = (int64_t)time(NULL) * 1000 - sf_stored_msg_time_ms(m);
    cr_assert(age > -60000 && age < 60000, "stored time %lld ms off",
              (long long)sf_stored_msg_time_ms(m));
    for (size_t i = 0; i < 4; i++) {
        const char *v = sf_stored_msg_header(m, h[i].name);
        cr_assert(v && strcmp(v, h[i].value) == 0, "%s: %s", h[i].name, v ? v : "(absent)");
    }
    const char *id = sf_stored_msg_header(m, SF_HDR_MSG_ID);
    cr_assert(id && strcmp(id, "dlq-42") == 0);
    cr_assert(sf_stored_msg_header(m, "Absent") == NULL);
    sf_header all[8];
    size_t n = 0;
    cr_assert(sf_stored_msg_headers(m, all, 8, &n, &err) == SF_OK, "%s", err.msg);
    cr_assert(n == 5, "headers %zu", n);
    size_t small_n = 0;
    cr_assert(sf_stored_msg_headers(m, all, 2, &small_n, &err) == SF_OK);
    cr_assert(small_n == 5, "total is reported even when it does not fit");
    sf_stored_msg_free(m);

    m = NULL;
    cr_assert(sf_broker_get_msg(b, SF_STREAM_DLQ, 99, &m, &err) == SF_ENOTFOUND, "%s", err.msg);
    cr_assert(m == NULL);
    cr_assert(sf_broker_get_msg(b, "NO_SUCH_STREAM", 1, &m, &err) == SF_ENOTFOUND, "%s", err.msg);
    sf_broker_close(b);
    leak_check();
}

Test(broker, stream_info_reports_counts)
{
    sf_broker *b = broker_fresh();
    sf_error err;
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "c-%d", i);
        cr_assert(sf_broker_publish_sync(b, "inv.chan.web", id, NULL, 0, "abc", 3, NULL, &err) ==
                  SF_OK);
    }
    uint64_t msgs = 0, bytes = 0, first = 0, last = 0;
    cr_assert(sf_broker_stream_info(b, SF_STREAM_CHANNEL, &msgs, &bytes, &first, &last, &err) ==
              SF_OK);
    cr_assert(msgs == 3 && bytes > 9 && first == 1 && last == 3);
    cr_assert(sf_broker_stream_info(b, "NO_SUCH_STREAM", &msgs, NULL, NULL, NULL, &err) ==
              SF_ENOTFOUND);
    sf_broker_close(b);
    leak_check();
}

Test(broker, missing_consumer_and_empty_fetch)
{
    sf_broker *b = broker_clean();
    sf_sub *sub = NULL;
    sf_error err;
    cr_assert(sf_broker_pull_subscribe(b, SF_STREAM_EVENTS, SF_CONSUMER_APPLIER, &sub, &err) ==
              SF_ENOTFOUND);
    cr_assert(strstr(err.msg, SF_CONSUMER_APPLIER) != NULL, "%s", err.msg);
    cr_assert(sub == NULL);
    sf_broker_close(b);

    b = broker_fresh();
    cr_assert(sf_broker_pull_subscribe(b, SF_STREAM_EVENTS, SF_CONSUMER_APPLIER, &sub, &err) ==
              SF_OK);
    sf_batch *bt = NULL;
    cr_assert(sf_batch_new(&bt, &err) == SF_OK);
    int64_t t0 = now_ms();
    cr_assert(sf_sub_fetch(sub, 100, 300, bt, &err) == SF_ETIMEOUT, "%s", err.msg);
    cr_assert(now_ms() - t0 < 3000);
    cr_assert(sf_batch_count(bt) == 0);
    cr_assert(sf_sub_fetch(sub, 0, 300, bt, &err) == SF_EINVAL);
    sf_batch_destroy(bt);
    sf_sub_free(sub);
    sf_broker_close(b);
    leak_check();
}

Test(broker, dead_port_is_unavailable_quickly)
{
    (void)test_url(); /* same environment as the rest */
    sf_broker_opts o;
    sf_broker_opts_init(&o);
    o.urls = "nats://127.0.0.1:1, nats://127.0.0.1:2";
    o.connect_timeout_ms = 1000;
    sf_broker *b = NULL;
    sf_error err;
    int64_t t0 = now_ms();
    sf_status st = sf_broker_connect(&o, &b, &err);
    int64_t took = now_ms() - t0;
    cr_assert(st == SF_EUNAVAIL, "%s: %s", sf_status_str(st), err.msg);
    cr_assert(b == NULL);
    cr_assert(took < 5000, "took %lld ms", (long long)took);
    cr_assert(strstr(err.msg, "127.0.0.1:1") && strstr(err.msg, "127.0.0.1:2"), "%s", err.msg);
    leak_check();
}

Test(broker, url_list_skips_a_dead_node)
{
    char urls[512];
    snprintf(urls, sizeof urls, "nats://127.0.0.1:1,%s", test_url());
    sf_broker_opts o;
    sf_broker_opts_init(&o);
    o.urls = urls;
    sf_broker *b = NULL;
    sf_error err;
    cr_assert(sf_broker_connect(&o, &b, &err) == SF_OK, "%s", err.msg);
    cr_assert(sf_broker_connected(b));
    sf_broker_close(b);
    leak_check();
}

Test(broker, bad_arguments_are_invalid)
{
    sf_broker *b = broker_fresh();
    collector c;
    collector_init(&c, 1);
    sf_publisher *p = publisher_new(b, &c, 0);
    sf_error err;
    cr_assert(sf_publisher_publish(p, "", "id", "a", 1, NULL, &err) == SF_EINVAL);
    cr_assert(sf_publisher_publish(p, "inv.evt.sale.S1", "id", NULL, 5, NULL, &err) == SF_EINVAL);
    cr_assert(sf_publisher_inflight(p) == 0);
    cr_assert(sf_publisher_publish(p, "inv.evt.sale.S1", "id\r\nX-Evil: 1", "a", 1, NULL, &err) ==
              SF_EINVAL);
    cr_assert(sf_publisher_publish(p, "inv.evt.sale.S1", "", "a", 1, NULL, &err) == SF_EINVAL);
    sf_header bad[] = {{NULL, "v"}, {"Bad Name", "v"}, {"Inv-Reason", "a\nb"}, {"", "v"}};
    for (size_t i = 0; i < 4; i++)
        cr_assert(sf_broker_publish_sync(b, "inv.dlq.decode", NULL, &bad[i], 1, "a", 1, NULL,
                                         &err) == SF_EINVAL,
                  "header %zu accepted", i);
    cr_assert(stream_msgs(b, SF_STREAM_DLQ) == 0);
    sf_setup_opts so;
    sf_setup_opts_init(&so);
    so.replicas = 0;
    cr_assert(sf_broker_setup(b, &so, NULL, &err) == SF_EINVAL);
    sf_publisher_free(p);
    cr_assert(collector_total(&c) == 0);
    collector_fini(&c);
    sf_broker_close(b);
    leak_check();
}
