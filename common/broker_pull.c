/*
 * broker_pull: durable pull consumption (see broker_pull.h).
 *
 * The one idea needed to change it safely: a batch's messages stay nats.c's
 * (natsMsgList) until the next fetch into the batch or its release, and
 * their metadata (stream sequence, deliveries) is parsed from the reply
 * subject only when asked for, once per message.
 */
#include "broker_pull.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_int.h"
#include "event.h"

/* ---- pull consumption ------------------------------------------------------------ */

struct sf_sub {
    sf_broker *b;
    natsSubscription *sub;
    char stream[SF_STR_MAX + 1]; /* to bind again (sub__renew) */
    char durable[SF_STR_MAX + 1];
    char label[128]; /* stream/durable for messages */
};

typedef struct batch__meta {
    uint64_t stream_seq;
    uint64_t delivered;
    bool parsed;
} batch__meta;

struct sf_batch {
    natsMsgList list;
    batch__meta *meta; /* one per message, parsed lazily from the reply subject */
    size_t meta_cap;
};

sf_status sf_broker_ensure_channel_consumer(sf_broker *b, const char *channel, const char *durable,
                                            sf_error *err)
{
    char subject[SF_SUBJECT_MAX];
    sf_status st = sf_subject_channel(subject, sizeof subject, channel, err);
    if (st)
        return st;
    if (!durable || !sf_is_token(durable))
        return SF_ERR(err, SF_EINVAL, "consumer name '%s' must use only A-Z a-z 0-9 _ -",
                      durable ? durable : "");
    if ((st = broker__check_connected(b, err, "channel consumer", durable)))
        return st;
    jsConsumerInfo *ci = NULL;
    jsErrCode code = 0;
    natsStatus s = js_GetConsumerInfo(&ci, b->js, "INV_CHANNEL", durable, NULL, &code);
    if (s == NATS_OK) {
        const char *have = ci->Config && ci->Config->FilterSubject ? ci->Config->FilterSubject : "";
        bool same = !strcmp(have, subject);
        jsConsumerInfo_Destroy(ci);
        if (!same)
            return SF_ERR(err, SF_EINVAL,
                          "consumer INV_CHANNEL/%s exists with filter '%s', not '%s'", durable,
                          have, subject);
        return SF_OK;
    }
    if (code != JSConsumerNotFoundErr && s != NATS_NOT_FOUND)
        return BROKER_ERR(err, broker__map_js(b, s, code), s, "consumer INV_CHANNEL/%s: info",
                          durable);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.FilterSubject = subject;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = BROKER_MS_TO_NS(30000);
    cc.DeliverPolicy = js_DeliverAll;
    code = 0;
    s = js_AddConsumer(NULL, b->js, "INV_CHANNEL", &cc, NULL, &code);
    if (s != NATS_OK)
        return BROKER_ERR(err, broker__map_js(b, s, code), s,
                          "consumer INV_CHANNEL/%s: create (js code %d)", durable, (int)code);
    return SF_OK;
}

/* A new nats.c pull subscription bound to s's durable (a new inbox). */
static sf_status sub__bind(sf_sub *s, natsSubscription **out, sf_error *err)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = s->stream;
    so.Consumer = s->durable;
    jsErrCode code = 0;
    natsStatus ns = js_PullSubscribe(out, s->b->js, NULL, s->durable, NULL, &so, &code);
    if (ns != NATS_OK)
        return BROKER_ERR(err, broker__map_js(s->b, ns, code), ns, "pull subscribe %s (NATS %s)",
                          s->label, s->b->urls);
    return SF_OK;
}

/* nats.c 3.4.1's Fetch writes past the end of its message array (heap
 * corruption: consumers died of SIGSEGV and SIGABRT, and one sidelined a
 * phantom message, in `make test-fault` after nats-server was paused) when
 * it starts with messages already queued on the subscription and more keep
 * arriving. Those are answers to earlier pull requests that came after
 * their Fetch gave up: requests sent while the server was paused or slow
 * are all served when it resumes, and a Fetch that takes some queued
 * messages stops short of its own request, leaving more behind. So a
 * subscription with anything queued is never fetched from again: it is
 * replaced by a new one (a new inbox); the old one and whatever is still
 * addressed to it are dropped unacknowledged and come back after AckWait. */
static sf_status sub__renew_if_stale(sf_sub *s, sf_error *err)
{
    int queued = 0, bytes = 0;
    if (natsSubscription_GetPending(s->sub, &queued, &bytes) != NATS_OK || queued == 0)
        return SF_OK;
    natsSubscription *fresh = NULL;
    sf_status st = sub__bind(s, &fresh, err);
    if (st != SF_OK)
        return st; /* keep the old one, unused, until a bind succeeds */
    /* Destroy, not Unsubscribe: the durable consumer stays on the server. */
    natsSubscription_Destroy(s->sub);
    s->sub = fresh;
    return SF_OK;
}

sf_status sf_broker_pull_subscribe(sf_broker *b, const char *stream, const char *durable,
                                   sf_sub **out, sf_error *err)
{
    if (!b || !stream || !*stream || !durable || !*durable || !out)
        return SF_ERR(err, SF_EINVAL, "pull subscribe: stream and durable are required");
    *out = NULL;
    if (strlen(stream) > SF_STR_MAX || strlen(durable) > SF_STR_MAX)
        return SF_ERR(err, SF_EINVAL, "pull subscribe: stream or durable longer than %d bytes",
                      SF_STR_MAX);
    sf_status st = broker__check_connected(b, err, "pull subscribe", stream);
    if (st != SF_OK)
        return st;
    /* Look the consumer up first: binding never creates it, and a missing
     * consumer deserves a clear message. */
    jsConsumerInfo *ci = NULL;
    jsErrCode code = 0;
    natsStatus s = js_GetConsumerInfo(&ci, b->js, stream, durable, NULL, &code);
    if (s != NATS_OK) {
        st = broker__map_js(b, s, code);
        if (st == SF_ENOTFOUND)
            return SF_ERR(err, SF_ENOTFOUND,
                          "consumer %s on stream %s does not exist (NATS %s): run invctl setup",
                          durable, stream, b->urls);
        return BROKER_ERR(err, st, s, "consumer %s/%s: info (NATS %s)", stream, durable, b->urls);
    }
    bool push = ci->Config && ci->Config->DeliverSubject && *ci->Config->DeliverSubject;
    jsConsumerInfo_Destroy(ci);
    if (push)
        return SF_ERR(err, SF_EINVAL, "consumer %s/%s is a push consumer, not a pull consumer",
                      stream, durable);

    sf_sub *ss = calloc(1, sizeof *ss);
    if (!ss)
        return SF_ERR(err, SF_ENOMEM, "pull subscribe %s/%s: out of memory", stream, durable);
    ss->b = b;
    snprintf(ss->stream, sizeof ss->stream, "%s", stream);
    snprintf(ss->durable, sizeof ss->durable, "%s", durable);
    snprintf(ss->label, sizeof ss->label, "%s/%s", stream, durable);
    if ((st = sub__bind(ss, &ss->sub, err)) != SF_OK) {
        free(ss);
        return st;
    }
    *out = ss;
    return SF_OK;
}

void sf_sub_free(sf_sub *s)
{
    if (!s)
        return;
    /* Destroy, not Unsubscribe: the durable consumer stays on the server. */
    natsSubscription_Destroy(s->sub);
    free(s);
}

sf_status sf_batch_new(sf_batch **out, sf_error *err)
{
    if (!out)
        return SF_ERR(err, SF_EINVAL, "sf_batch_new: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out)
        return SF_ERR(err, SF_ENOMEM, "batch: out of memory");
    return SF_OK;
}

void sf_batch_release(sf_batch *bt)
{
    if (!bt)
        return;
    if (bt->list.Msgs)
        natsMsgList_Destroy(&bt->list);
    bt->list.Msgs = NULL;
    bt->list.Count = 0;
}

void sf_batch_destroy(sf_batch *bt)
{
    if (!bt)
        return;
    sf_batch_release(bt);
    free(bt->meta);
    free(bt);
}

sf_status sf_sub_fetch(sf_sub *s, int max, int timeout_ms, sf_batch *bt, sf_error *err)
{
    if (!s || !bt)
        return SF_ERR(err, SF_EINVAL, "fetch: NULL argument");
    sf_batch_release(bt);
    if (max < 1 || max > SF_FETCH_MAX || timeout_ms < 1)
        return SF_ERR(err, SF_EINVAL, "fetch %s: max %d must be in 1..%d and timeout %d ms > 0",
                      s->label, max, SF_FETCH_MAX, timeout_ms);
    if ((size_t)max > bt->meta_cap) {
        batch__meta *nm = realloc(bt->meta, (size_t)max * sizeof *nm);
        if (!nm)
            return SF_ERR(err, SF_ENOMEM, "fetch %s: out of memory for %d messages", s->label, max);
        bt->meta = nm;
        bt->meta_cap = (size_t)max;
    }
    sf_status st = broker__check_connected(s->b, err, "fetch", s->label);
    if (st == SF_OK)
        st = sub__renew_if_stale(s, err);
    if (st != SF_OK)
        return st;
    jsErrCode code = 0;
    natsStatus ns = natsSubscription_Fetch(&bt->list, s->sub, max, timeout_ms, &code);
    if (bt->list.Count > 0) {
        /* Messages came even if the call ended on a timeout: use them. */
        for (int i = 0; i < bt->list.Count; i++)
            bt->meta[i].parsed = false;
        return SF_OK;
    }
    sf_batch_release(bt);
    if (ns == NATS_OK)
        return SF_ERR(err, SF_ETIMEOUT, "fetch %s: nothing available", s->label);
    if (!broker__is_connected(s->b))
        return SF_ERR(err, SF_EUNAVAIL, "fetch %s: NATS %s disconnected", s->label, s->b->urls);
    if (ns == NATS_TIMEOUT)
        return SF_ERR(err, SF_ETIMEOUT, "fetch %s: nothing available within %d ms", s->label,
                      timeout_ms);
    return BROKER_ERR(err, broker__map_js(s->b, ns, code), ns, "fetch %s (NATS %s, js code %d)",
                      s->label, s->b->urls, (int)code);
}

size_t sf_batch_count(const sf_batch *bt)
{
    return bt ? (size_t)bt->list.Count : 0;
}

static natsMsg *batch__msg(const sf_batch *bt, size_t i)
{
    if (!bt || i >= (size_t)bt->list.Count)
        return NULL;
    return bt->list.Msgs[i];
}

const void *sf_batch_data(const sf_batch *bt, size_t i, size_t *len)
{
    natsMsg *m = batch__msg(bt, i);
    if (len)
        *len = m ? (size_t)natsMsg_GetDataLength(m) : 0;
    return m ? natsMsg_GetData(m) : NULL;
}

const char *sf_batch_subject(const sf_batch *bt, size_t i)
{
    natsMsg *m = batch__msg(bt, i);
    return m ? natsMsg_GetSubject(m) : NULL;
}

/* Parse the ack subject without allocating (natsMsg_GetMetaData mallocs):
 *   v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>
 *   v2: $JS.ACK.<domain>.<acchash>.<stream>.<consumer>.<delivered>.<sseq>...
 * Names cannot contain '.', so tokens are positional. */
static void batch__parse(sf_batch *bt, size_t i)
{
    batch__meta *md = &bt->meta[i];
    if (md->parsed)
        return;
    md->parsed = true;
    md->stream_seq = 0;
    md->delivered = 0;
    const char *r = natsMsg_GetReply(bt->list.Msgs[i]);
    static const char prefix[] = "$JS.ACK.";
    if (!r || strncmp(r, prefix, sizeof prefix - 1) != 0)
        return;
    r += sizeof prefix - 1;
    const char *tok[12];
    size_t tlen[12];
    int nt = 0;
    while (nt < 12) {
        const char *dot = strchr(r, '.');
        tok[nt] = r;
        tlen[nt] = dot ? (size_t)(dot - r) : strlen(r);
        nt++;
        if (!dot)
            break;
        r = dot + 1;
    }
    int base; /* index of <delivered> */
    if (nt == 7)
        base = 2;
    else if (nt >= 9)
        base = 4;
    else
        return;
    uint64_t v[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        const char *t = tok[base + k];
        for (size_t c = 0; c < tlen[base + k]; c++) {
            if (t[c] < '0' || t[c] > '9' || v[k] > (UINT64_MAX - 9) / 10)
                return;
            v[k] = v[k] * 10 + (uint64_t)(t[c] - '0');
        }
    }
    md->delivered = v[0];
    md->stream_seq = v[1];
}

uint64_t sf_batch_stream_seq(sf_batch *bt, size_t i)
{
    if (!batch__msg(bt, i))
        return 0;
    batch__parse(bt, i);
    return bt->meta[i].stream_seq;
}

uint64_t sf_batch_num_delivered(sf_batch *bt, size_t i)
{
    if (!batch__msg(bt, i))
        return 0;
    batch__parse(bt, i);
    return bt->meta[i].delivered;
}

const char *sf_batch_header(sf_batch *bt, size_t i, const char *name)
{
    natsMsg *m = batch__msg(bt, i);
    const char *v = NULL;
    if (!m || !name || natsMsgHeader_Get(m, name, &v) != NATS_OK)
        return NULL;
    return v;
}

typedef enum batch__op {
    BATCH_ACK,
    BATCH_ACK_SYNC,
    BATCH_NAK,
    BATCH_NAK_DELAY,
    BATCH_IN_PROGRESS,
    BATCH_TERM
} batch__op;

static const char *batch__op_name(batch__op op)
{
    switch (op) {
    case BATCH_ACK: return "ack";
    case BATCH_ACK_SYNC: return "ack";
    case BATCH_NAK: return "nak";
    case BATCH_NAK_DELAY: return "nak";
    case BATCH_IN_PROGRESS: return "in-progress";
    case BATCH_TERM: return "term";
    }
    return "?";
}

static sf_status batch__ack(sf_batch *bt, size_t i, batch__op op, int64_t delay_ms, sf_error *err)
{
    natsMsg *m = batch__msg(bt, i);
    if (!m)
        return SF_ERR(err, SF_EINVAL, "%s: index %zu outside the batch of %zu", batch__op_name(op),
                      i, sf_batch_count(bt));
    natsStatus s = NATS_OK;
    jsErrCode code = 0;
    switch (op) {
    case BATCH_ACK: s = natsMsg_Ack(m, NULL); break;
    case BATCH_ACK_SYNC: s = natsMsg_AckSync(m, NULL, &code); break;
    case BATCH_NAK: s = natsMsg_Nak(m, NULL); break;
    case BATCH_NAK_DELAY: s = natsMsg_NakWithDelay(m, delay_ms, NULL); break;
    case BATCH_IN_PROGRESS: s = natsMsg_InProgress(m, NULL); break;
    case BATCH_TERM: s = natsMsg_Term(m, NULL); break;
    }
    if (s == NATS_OK)
        return SF_OK;
    sf_status st;
    if (s == NATS_TIMEOUT)
        st = SF_ETIMEOUT;
    else if (s == NATS_INVALID_ARG || s == NATS_INVALID_SUBSCRIPTION || s == NATS_ILLEGAL_STATE)
        st = SF_EINVAL;
    else
        st = SF_EUNAVAIL; /* everything else is "could not reach the server" */
    return BROKER_ERR(err, st, s, "%s %s:%llu (js code %d)", batch__op_name(op),
                      natsMsg_GetSubject(m), (unsigned long long)sf_batch_stream_seq(bt, i),
                      (int)code);
}

sf_status sf_batch_ack(sf_batch *bt, size_t i, sf_error *err)
{
    return batch__ack(bt, i, BATCH_ACK, 0, err);
}

sf_status sf_batch_ack_sync(sf_batch *bt, size_t i, sf_error *err)
{
    return batch__ack(bt, i, BATCH_ACK_SYNC, 0, err);
}

sf_status sf_batch_nak(sf_batch *bt, size_t i, sf_error *err)
{
    return batch__ack(bt, i, BATCH_NAK, 0, err);
}

sf_status sf_batch_nak_delay(sf_batch *bt, size_t i, int64_t delay_ms, sf_error *err)
{
    if (delay_ms < 0)
        return SF_ERR(err, SF_EINVAL, "nak: negative delay %lld ms", (long long)delay_ms);
    return batch__ack(bt, i, BATCH_NAK_DELAY, delay_ms, err);
}

sf_status sf_batch_in_progress(sf_batch *bt, size_t i, sf_error *err)
{
    return batch__ack(bt, i, BATCH_IN_PROGRESS, 0, err);
}

sf_status sf_batch_term(sf_batch *bt, size_t i, sf_error *err)
{
    return batch__ack(bt, i, BATCH_TERM, 0, err);
}

sf_status sf_batch_in_progress_all(sf_batch *bt, sf_error *err)
{
    size_t n = sf_batch_count(bt);
    for (size_t i = 0; i < n; i++) {
        sf_status st = batch__ack(bt, i, BATCH_IN_PROGRESS, 0, err);
        if (st != SF_OK)
            return st;
    }
    return SF_OK;
}
