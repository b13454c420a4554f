/*
 * zmq_source: the ROUTER loop. Only this thread touches the socket: the
 * sender (common/sender.h, no retries: the client decides) reports each
 * event's outcome on this thread, and the loop polls the socket with a
 * short timeout and the sender in turn, replying to each client.
 * A message is at most 4 envelope frames plus the payload; anything else
 * is answered with an error, never dropped silently.
 */
#include "zmq_source.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <zmq.h>

#include "log.h"

enum { ZMQ__MAX_FRAMES = 5, ZMQ__ENVELOPE_MAX = 256 };

typedef struct zmq__token {
    size_t nframes; /* envelope frames (identity [, empty delimiter]) */
    size_t sizes[ZMQ__MAX_FRAMES];
    uint8_t frames[ZMQ__MAX_FRAMES][ZMQ__ENVELOPE_MAX];
    char event_id[SF_STR_MAX + 1];
} zmq__token;

static void zmq__reply(void *sock, const zmq__token *t, const char *text)
{
    for (size_t i = 0; i < t->nframes; i++)
        zmq_send(sock, t->frames[i], t->sizes[i], ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), 0);
}

/* Receive one multipart message: envelope into t, payload into payload. */
static int zmq__recv(void *sock, zmq__token *t, zmq_msg_t *payload)
{
    t->nframes = 0;
    int too_many = 0;
    for (;;) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            return -1;
        }
        if (!zmq_msg_more(&part)) {
            zmq_msg_move(payload, &part);
            zmq_msg_close(&part);
            return too_many ? 1 : 0;
        }
        size_t sz = zmq_msg_size(&part);
        if (t->nframes < ZMQ__MAX_FRAMES && sz <= ZMQ__ENVELOPE_MAX) {
            memcpy(t->frames[t->nframes], zmq_msg_data(&part), sz);
            t->sizes[t->nframes++] = sz;
        } else {
            too_many = 1;
        }
        zmq_msg_close(&part);
    }
}

typedef struct zmq__loop {
    const ingest_zmq_ctx *ctx;
    void *sock;
    ingest_zmq_stats *stats;
    sf_sender *sender;
} zmq__loop;

static void zmq__handle(zmq__loop *z, zmq__token *t, const char *data, size_t len)
{
    char reply[SF_ERROR_MSG_MAX + 32];
    sf_event ev;
    sf_error err;
    z->stats->received++;
    if (sf_event_parse_json(data, len, z->ctx->parse, &ev, &err)) {
        z->stats->rejected++;
        snprintf(reply, sizeof reply, "err invalid: %s", err.msg);
        zmq__reply(z->sock, t, reply);
        free(t);
        return;
    }
    if (!sf_broker_connected(z->ctx->broker)) {
        z->stats->failed++;
        zmq__reply(z->sock, t, "err unavailable: not connected to JetStream");
        free(t);
        return;
    }
    sf_status st = sf_sender_send(z->sender, &ev, t, &err);
    if (st != SF_OK) {
        if (st == SF_EINVAL)
            z->stats->rejected++;
        else
            z->stats->failed++;
        snprintf(reply, sizeof reply, "err %s: %s", st == SF_EINVAL ? "invalid" : "unavailable",
                 err.msg);
        zmq__reply(z->sock, t, reply);
        free(t);
    }
}

/* The sender's outcome of one message: the reply, only now. */
static void zmq__outcome(void *closure, const sf_send_outcome *o)
{
    zmq__loop *z = closure;
    zmq__token *t = o->token;
    char reply[256];
    if (o->status == SF_OK || o->status == SF_EDUP) {
        z->stats->ok++;
        snprintf(reply, sizeof reply, "ok %s", o->event_id);
    } else {
        z->stats->failed++;
        snprintf(reply, sizeof reply, "err unavailable: %s", o->error);
    }
    zmq__reply(z->sock, t, reply);
    free(t);
}

sf_status ingest_zmq_run(const ingest_zmq_ctx *ctx, const char *endpoint, ingest_zmq_stats *stats,
                         sf_error *err)
{
    memset(stats, 0, sizeof *stats);
    void *zctx = zmq_ctx_new();
    void *sock = zctx ? zmq_socket(zctx, ZMQ_ROUTER) : NULL;
    int linger = 1000, hwm = 100000;
    /* A message over max_line gets "err ... longer than max_line"; one far
     * over it (4 x max_line, at least 16 MiB) is never buffered: libzmq
     * drops it with the peer's connection. */
    int64_t maxmsg = (int64_t)ctx->parse->max_line * 4;
    if (maxmsg < (INT64_C(16) << 20))
        maxmsg = INT64_C(16) << 20;
    if (!sock || zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm) || zmq_bind(sock, endpoint) != 0) {
        sf_status st = SF_ERR(err, SF_EIO, "zmq %s: %s", endpoint, zmq_strerror(zmq_errno()));
        if (sock)
            zmq_close(sock);
        if (zctx)
            zmq_ctx_term(zctx);
        return st;
    }
    zmq__loop z = {.ctx = ctx, .sock = sock, .stats = stats};
    sf_sender_opts so;
    sf_sender_opts_init(&so);
    so.max_inflight = ctx->max_inflight;
    so.retry_for_ms = 0;
    so.cb = zmq__outcome;
    so.closure = &z;
    sf_status st = sf_sender_new(ctx->broker, &so, &z.sender, err);
    if (st) {
        zmq_close(sock);
        zmq_ctx_term(zctx);
        return st;
    }
    sf_log(SF_LOG_INFO, "zmq ROUTER listening on %s", endpoint);
    int64_t tick_ms = sf_now_ms();
    while (!*ctx->stop) {
        if (ctx->every_second && sf_now_ms() - tick_ms >= 1000) {
            tick_ms = sf_now_ms();
            ctx->every_second(stats, ctx->arg);
        }
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 5);
        for (int k = 0; k < 1024 && (item.revents & ZMQ_POLLIN); k++) {
            zmq__token *t = malloc(sizeof *t);
            zmq_msg_t payload;
            zmq_msg_init(&payload);
            int rc = t ? zmq__recv(sock, t, &payload) : -1;
            if (rc < 0) {
                zmq_msg_close(&payload);
                free(t);
                break;
            }
            if (rc > 0 || t->nframes == 0) {
                stats->rejected++;
                if (t->nframes)
                    zmq__reply(sock, t, "err invalid: too many or too large envelope frames");
                free(t);
            } else {
                zmq__handle(&z, t, zmq_msg_data(&payload), zmq_msg_size(&payload));
            }
            zmq_msg_close(&payload);
        }
        sf_sender_poll(z.sender, 0);
    }
    /* Answer everything still in flight before closing. */
    sf_sender_finish(z.sender);
    sf_sender_free(z.sender);
    zmq_close(sock);
    zmq_ctx_term(zctx);
    return SF_OK;
}
