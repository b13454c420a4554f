/*
 * broker_pub: the asynchronous JetStream publisher (see broker_pub.h).
 *
 * The one idea needed to change it safely: an asynchronous publish is
 * tracked twice, by nats.c (its pending map, window and MaxWait timer) and
 * here (a table from the natsMsg pointer to the caller's token). nats.c hands
 * the ack handler the very natsMsg we published, so the pointer identifies
 * the publish even when a msg id repeats in flight; whoever removes the
 * table entry (the ack handler, or sf_publisher_free reclaiming what nats.c
 * still holds) fires the one callback for it. Insert before handing the
 * message to nats.c (the ack can arrive before js_PublishMsgAsync returns)
 * and remove it again only if nats.c refused the message.
 */
#include "broker_pub.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker_int.h"

/* ---- asynchronous publisher -------------------------------------------------- */

typedef struct pub__slot {
    const natsMsg *key; /* NULL: empty */
    void *token;
} pub__slot;

struct sf_publisher {
    sf_broker *b;
    jsCtx *js; /* own context: the ack handler and window are per context */
    sf_pub_cb cb;
    void *closure;
    int ack_timeout_ms;
    int stall_ms;
    int max_inflight;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t idle;
    pub__slot *slots; /* open addressing, linear probing, power-of-two capacity */
    size_t cap;
    size_t count;   /* accepted and not yet completed (plus any being handed over) */
    size_t running; /* callbacks executing right now */
};

static size_t pub__hash(const natsMsg *m, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)m * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 32) & (cap - 1);
}

static sf_status pub__grow(sf_publisher *p)
{
    size_t ncap = p->cap * 2;
    if (ncap < p->cap || ncap > SIZE_MAX / sizeof(pub__slot))
        return SF_ENOMEM;
    pub__slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return SF_ENOMEM;
    for (size_t i = 0; i < p->cap; i++) {
        if (!p->slots[i].key)
            continue;
        size_t j = pub__hash(p->slots[i].key, ncap);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = p->slots[i];
    }
    free(p->slots);
    p->slots = ns;
    p->cap = ncap;
    return SF_OK;
}

/* Under p->mu. Keys are unique: a natsMsg is in the table at most once. */
static sf_status pub__put(sf_publisher *p, const natsMsg *m, void *token)
{
    if ((p->count + 1) * 2 > p->cap && pub__grow(p) != SF_OK)
        return SF_ENOMEM;
    size_t j = pub__hash(m, p->cap);
    while (p->slots[j].key)
        j = (j + 1) & (p->cap - 1);
    p->slots[j].key = m;
    p->slots[j].token = token;
    p->count++;
    return SF_OK;
}

/* Under p->mu. Remove m, giving its token; false if absent. Backward-shift
 * deletion keeps probe chains intact without tombstones. */
static bool pub__take(sf_publisher *p, const natsMsg *m, void **token)
{
    size_t mask = p->cap - 1;
    size_t j = pub__hash(m, p->cap);
    while (p->slots[j].key && p->slots[j].key != m)
        j = (j + 1) & mask;
    if (!p->slots[j].key)
        return false;
    *token = p->slots[j].token;
    size_t hole = j;
    for (size_t k = (j + 1) & mask; p->slots[k].key; k = (k + 1) & mask) {
        size_t home = pub__hash(p->slots[k].key, p->cap);
        /* move k into the hole unless its home lies cyclically in (hole, k] */
        bool stays = (hole <= k) ? (hole < home && home <= k) : (hole < home || home <= k);
        if (!stays) {
            p->slots[hole] = p->slots[k];
            hole = k;
        }
    }
    p->slots[hole].key = NULL;
    p->slots[hole].token = NULL;
    p->count--;
    return true;
}

static void pub__complete(sf_publisher *p, natsMsg *msg, void *token, sf_pub_result *r)
{
    const char *id = NULL;
    r->subject = natsMsg_GetSubject(msg);
    if (natsMsgHeader_Get(msg, SF_HDR_MSG_ID, &id) != NATS_OK)
        id = NULL;
    r->msg_id = id;
    p->cb(p->closure, token, r);
}

/* nats.c's ack handler: runs on the publisher context's reply-subscription
 * thread, once per message it still tracked (ack, server error or MaxWait). */
static void pub__on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    sf_publisher *p = closure;
    void *token = NULL;
    pthread_mutex_lock(&p->mu);
    bool found = pub__take(p, msg, &token);
    if (found)
        p->running++;
    pthread_mutex_unlock(&p->mu);
    if (found) {
        sf_pub_result r;
        char denied[BROKER_DENIED_TEXT];
        memset(&r, 0, sizeof r);
        r.error = "";
        if (pa) {
            r.status = pa->Duplicate ? SF_EDUP : SF_OK;
            r.seq = pa->Sequence;
        } else if (pae) {
            r.status = pae->Err == NATS_TIMEOUT ? SF_ETIMEOUT : SF_EUNAVAIL;
            r.error = pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err);
            r.js_code = (int)pae->ErrCode;
            if (pae->Err == NATS_TIMEOUT &&
                broker__denied(p->b, natsMsg_GetSubject(msg), INT64_MAX, denied, sizeof denied)) {
                r.status = SF_EDENIED; /* not stored: the server refused it */
                r.error = denied;
            }
        } else {
            r.status = SF_EINTERNAL;
            r.error = "ack handler called without ack or error";
        }
        pub__complete(p, msg, token, &r);
        pthread_mutex_lock(&p->mu);
        p->running--;
        if (p->running == 0 && p->count == 0)
            pthread_cond_broadcast(&p->idle);
        pthread_mutex_unlock(&p->mu);
    }
    natsMsg_Destroy(msg);
}

void sf_publisher_opts_init(sf_publisher_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->max_inflight = 4096;
    opts->ack_timeout_ms = 5000;
    opts->stall_ms = 0;
}

sf_status sf_publisher_new(sf_broker *b, const sf_publisher_opts *opts, sf_publisher **out,
                           sf_error *err)
{
    if (!b || !opts || !out)
        return SF_ERR(err, SF_EINVAL, "sf_publisher_new: NULL argument");
    *out = NULL;
    if (!opts->cb)
        return SF_ERR(err, SF_EINVAL, "publisher on %s: no completion callback", b->urls);
    if (opts->max_inflight < 1 || opts->max_inflight > 1000000)
        return SF_ERR(err, SF_EINVAL, "publisher on %s: max_inflight %d is not in 1..1000000",
                      b->urls, opts->max_inflight);
    if (opts->ack_timeout_ms < 1 || opts->stall_ms < 0)
        return SF_ERR(err, SF_EINVAL, "publisher on %s: ack_timeout_ms %d / stall_ms %d invalid",
                      b->urls, opts->ack_timeout_ms, opts->stall_ms);

    sf_publisher *p = calloc(1, sizeof *p);
    if (!p)
        return SF_ERR(err, SF_ENOMEM, "publisher on %s: out of memory", b->urls);
    p->b = b;
    p->cb = opts->cb;
    p->closure = opts->closure;
    p->ack_timeout_ms = opts->ack_timeout_ms;
    p->stall_ms = opts->stall_ms ? opts->stall_ms : opts->ack_timeout_ms;
    p->max_inflight = opts->max_inflight;
    p->cap = 64;
    while (p->cap < (size_t)opts->max_inflight * 2 + 16)
        p->cap *= 2;
    p->slots = calloc(p->cap, sizeof *p->slots);
    if (!p->slots) {
        free(p);
        return SF_ERR(err, SF_ENOMEM, "publisher on %s: out of memory", b->urls);
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->idle, NULL);

    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = b->js_wait_ms;
    jo.PublishAsync.MaxPending = opts->max_inflight;
    jo.PublishAsync.StallWait = p->stall_ms;
    jo.PublishAsync.AckHandler = pub__on_ack;
    jo.PublishAsync.AckHandlerClosure = p;
    natsStatus s = natsConnection_JetStream(&p->js, b->nc, &jo);
    if (s != NATS_OK) {
        sf_status st =
            BROKER_ERR(err, broker__map(b, s), s, "publisher on %s: JetStream context", b->urls);
        pthread_cond_destroy(&p->idle);
        pthread_mutex_destroy(&p->mu);
        free(p->slots);
        free(p);
        return st;
    }
    *out = p;
    return SF_OK;
}

sf_status sf_publisher_publish(sf_publisher *p, const char *subject, const char *msg_id,
                               const void *data, size_t len, void *token, sf_error *err)
{
    if (!p || !subject || !*subject || (!data && len))
        return SF_ERR(err, SF_EINVAL, "publish: bad argument (subject '%s')",
                      subject ? subject : "(null)");
    if (len > INT_MAX)
        return SF_ERR(err, SF_EINVAL, "publish %s: %zu bytes is too large", subject, len);
    sf_status st = broker__check_msg_id(msg_id, subject, err);
    if (st == SF_OK)
        st = broker__check_connected(p->b, err, "publish", subject);
    if (st == SF_OK)
        st = broker__check_denied(p->b, subject, msg_id, err);
    if (st != SF_OK)
        return st;

    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, data, (int)len);
    if (s != NATS_OK)
        return BROKER_ERR(err, broker__map(p->b, s), s, "publish %s (msg id %s)", subject,
                          msg_id ? msg_id : "-");
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = p->ack_timeout_ms;
    po.MsgId = msg_id;

    natsMsg *key = m;
    pthread_mutex_lock(&p->mu);
    st = pub__put(p, key, token);
    pthread_mutex_unlock(&p->mu);
    if (st != SF_OK) {
        natsMsg_Destroy(m);
        return SF_ERR(err, SF_ENOMEM, "publish %s (msg id %s): out of memory", subject,
                      msg_id ? msg_id : "-");
    }
    s = js_PublishMsgAsync(p->js, &m, &po);
    if (s == NATS_OK)
        return SF_OK; /* m is now nats.c's; the ack handler completes it */

    /* nats.c refused it, so no callback will come: take the entry back. */
    void *ignored = NULL;
    pthread_mutex_lock(&p->mu);
    (void)pub__take(p, key, &ignored);
    if (p->running == 0 && p->count == 0)
        pthread_cond_broadcast(&p->idle);
    pthread_mutex_unlock(&p->mu);
    natsMsg_Destroy(m);
    if (s == NATS_TIMEOUT)
        return SF_ERR(err, SF_ETIMEOUT,
                      "publish %s (msg id %s): window of %d unacknowledged publishes stayed "
                      "full for %d ms (NATS %s)",
                      subject, msg_id ? msg_id : "-", p->max_inflight, p->stall_ms, p->b->urls);
    return BROKER_ERR(err, broker__map(p->b, s), s, "publish %s (msg id %s, NATS %s)", subject,
                      msg_id ? msg_id : "-", p->b->urls);
}

sf_status sf_publisher_flush(sf_publisher *p, int timeout_ms, sf_error *err)
{
    if (!p)
        return SF_ERR(err, SF_EINVAL, "flush: NULL publisher");
    if (timeout_ms > 0) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = timeout_ms;
        natsStatus s = js_PublishAsyncComplete(p->js, &po);
        if (s != NATS_OK && s != NATS_TIMEOUT)
            return BROKER_ERR(err, broker__map(p->b, s), s, "flush publisher (NATS %s)",
                              p->b->urls);
    }
    /* nats.c counts a publish done once its callback returned; so do we. */
    size_t left = sf_publisher_inflight(p);
    if (left)
        return SF_ERR(err, SF_ETIMEOUT,
                      "flush: %zu publishes still unacknowledged after %d ms (NATS %s)", left,
                      timeout_ms, p->b->urls);
    return SF_OK;
}

size_t sf_publisher_inflight(sf_publisher *p)
{
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    size_t n = p->count + p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* The outcome is unknown (the server may have stored it): same as a
 * timeout, so the caller resends with the same id. */
static void pub__fail(sf_publisher *p, natsMsg *msg, void *token, const char *why)
{
    sf_pub_result r;
    memset(&r, 0, sizeof r);
    r.status = SF_ETIMEOUT;
    r.error = why;
    pub__complete(p, msg, token, &r);
}

void sf_publisher_free(sf_publisher *p)
{
    if (!p)
        return;
    const char *why = "publisher closed before the ack arrived";
    /* 1. Give outstanding publishes their normal completion (each resolves by
     *    ack or MaxWait within ack_timeout_ms). */
    if (sf_publisher_inflight(p)) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = p->ack_timeout_ms + 100;
        (void)js_PublishAsyncComplete(p->js, &po);
    }
    /* 2. Take back what nats.c still tracks: no handler will run for those. */
    natsMsgList pending = {NULL, 0};
    /* (only if something is tracked: nats.c's map does not exist before the
     * first publish, and this call does not check) */
    if (sf_publisher_inflight(p) && js_PublishAsyncGetPendingList(&pending, p->js) == NATS_OK) {
        for (int i = 0; i < pending.Count; i++) {
            void *token = NULL;
            pthread_mutex_lock(&p->mu);
            bool found = pub__take(p, pending.Msgs[i], &token);
            pthread_mutex_unlock(&p->mu);
            if (found)
                pub__fail(p, pending.Msgs[i], token, why);
        }
        natsMsgList_Destroy(&pending);
    }
    /* 3. Entries left belong to handlers nats.c has already started (they
     *    removed the message from its map before we looked): wait for them,
     *    bounded, so the closure outlives every call into it. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5 + p->ack_timeout_ms / 1000;
    pthread_mutex_lock(&p->mu);
    while ((p->count || p->running) &&
           pthread_cond_timedwait(&p->idle, &p->mu, &deadline) != ETIMEDOUT)
        ;
    /* 4. Anything still here was never going to complete (a bug or a
     *    publish racing free): complete it so the caller's token is freed. */
    for (size_t i = 0; i < p->cap && p->count; i++) {
        if (!p->slots[i].key)
            continue;
        natsMsg *m = (natsMsg *)p->slots[i].key;
        void *token = NULL;
        (void)pub__take(p, m, &token);
        i = (size_t)-1; /* the shift may move entries: rescan */
        pthread_mutex_unlock(&p->mu);
        pub__fail(p, m, token, why);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    jsCtx_Destroy(p->js);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p->slots);
    free(p);
}
