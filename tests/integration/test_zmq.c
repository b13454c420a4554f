/*
 * The ZeroMQ ingest: "ok <event_id>" only for events JetStream holds, and
 * "err ..." (no hang, no crash) while nats-server is down; it recovers by
 * itself when the server is back.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "broker.h"
#include "fixture.h"

TestSuite(zmq_ingest, .init = fx_reset, .fini = fx_teardown, .timeout = 300);

#define ENDPOINT "tcp://127.0.0.1:24555"

static uint64_t events_stored(void)
{
    sf_broker *b = NULL;
    sf_error err;
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = fx_env("INV_NATS_URL");
    cr_assert(sf_broker_connect(&bo, &b, &err) == SF_OK, "%s", err.msg);
    uint64_t msgs = 0, bytes, first, last;
    cr_assert(sf_broker_stream_info(b, SF_STREAM_EVENTS, &msgs, &bytes, &first, &last, &err) ==
              SF_OK);
    sf_broker_close(b);
    return msgs;
}

/* One request/reply with a fresh REQ socket; "" on timeout. */
static void request(void *ctx, const char *body, char *reply, size_t size, int timeout_ms)
{
    void *s = zmq_socket(ctx, ZMQ_REQ);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert(zmq_connect(s, ENDPOINT) == 0);
    cr_assert(zmq_send(s, body, strlen(body), 0) >= 0);
    int n = zmq_recv(s, reply, size - 1, 0);
    reply[n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1] = '\0';
    zmq_close(s);
}

static void event_json(char *buf, size_t size, const char *id)
{
    snprintf(buf, size,
             "{\"event_id\":\"%s\",\"kind\":\"sale\",\"sku\":\"Z-1\",\"location\":\"STORE-1\","
             "\"qty\":1,\"occurred_at\":\"2026-11-20T10:00:00Z\",\"channel\":\"pos\"}",
             id);
}

Test(zmq_ingest, ok_only_when_stored_err_while_nats_is_down)
{
    const char *argv[] = {"inv-ingest", "--zmq", ENDPOINT, NULL};
    pid_t pid = fx_spawn(argv, NULL);
    void *ctx = zmq_ctx_new();
    char body[512], reply[512];

    event_json(body, sizeof body, "z-1");
    request(ctx, body, reply, sizeof reply, 15000);
    cr_assert_str_eq(reply, "ok z-1");
    cr_assert_eq(events_stored(), 1);

    request(ctx, "{\"kind\":\"sale\"}", reply, sizeof reply, 15000);
    cr_assert(!strncmp(reply, "err invalid", 11), "%s", reply);
    request(ctx, "not json at all", reply, sizeof reply, 15000);
    cr_assert(!strncmp(reply, "err invalid", 11), "%s", reply);

    fx_stack("nats-stop");
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "z-down-%d", i);
        event_json(body, sizeof body, id);
        request(ctx, body, reply, sizeof reply, 20000);
        cr_assert(!strncmp(reply, "err ", 4), "expected err while nats is down, got '%s'", reply);
    }
    fx_stack("nats-start");

    /* Back by itself: the client retries until ok (bounded). */
    event_json(body, sizeof body, "z-2");
    for (int i = 0; i < 60; i++) {
        request(ctx, body, reply, sizeof reply, 15000);
        if (!strncmp(reply, "ok ", 3))
            break;
        usleep(500000);
    }
    cr_assert_str_eq(reply, "ok z-2");
    cr_assert_eq(events_stored(), 2, "only the acknowledged events are stored");
    zmq_ctx_term(ctx);
    cr_assert_eq(fx_stop(pid, SIGTERM, 20000), 0);
}
