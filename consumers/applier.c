/*
 * applier: the consumer's batch logic (see applier.h for the contract).
 *
 * The idea to keep when changing it: an ack is the last thing that happens
 * to a message, after the transaction that applied it committed or after
 * its DLQ copy was stored. Everything before may be repeated safely because
 * the ledger's primary key on event_id makes a second apply a no-op.
 */
#include "applier.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "log.h"

enum { APPLIER_CAP = SF_FETCH_MAX, APPLIER_KEEP_ALIVE_MS = 2000 };

typedef enum {
    MSG_GOOD = 0,
    MSG_SIDELINE, /* DLQ copy needed, then ack */
} applier__verdict;

struct sf_applier {
    sf_broker *broker;
    sf_ledger *ledger;
    sf_codec *codec;
    sf_applier_opts opts;
    volatile sig_atomic_t *stop;
    sf_applier_stats stats;
    /* per batch, sized for the largest fetch */
    sf_event *evs;
    uint64_t *seqs;
    size_t *idx; /* evs[k] came from batch message idx[k] */
    uint64_t rng;
};

void sf_applier_opts_init(sf_applier_opts *opts)
{
    opts->max_deliver = 10;
    opts->max_future_ms = 300000;
    opts->now_ms_override = 0;
    opts->backoff_max_ms = 5000;
    opts->max_msg_bytes = 1024;
}

sf_status sf_applier_new(sf_broker *broker, sf_ledger *ledger, sf_codec *codec,
                         const sf_applier_opts *opts, volatile sig_atomic_t *stop, sf_applier **out,
                         sf_error *err)
{
    *out = NULL;
    sf_applier *ap = calloc(1, sizeof *ap);
    if (!ap)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    ap->evs = calloc(APPLIER_CAP, sizeof *ap->evs);
    ap->seqs = calloc(APPLIER_CAP, sizeof *ap->seqs);
    ap->idx = calloc(APPLIER_CAP, sizeof *ap->idx);
    if (!ap->evs || !ap->seqs || !ap->idx) {
        sf_applier_free(ap);
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    }
    ap->broker = broker;
    ap->ledger = ledger;
    ap->codec = codec;
    ap->opts = *opts;
    ap->stop = stop;
    ap->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)ap;
    *out = ap;
    return SF_OK;
}

void sf_applier_free(sf_applier *ap)
{
    if (!ap)
        return;
    free(ap->evs);
    free(ap->seqs);
    free(ap->idx);
    free(ap);
}

const sf_applier_stats *sf_applier_stats_get(const sf_applier *ap)
{
    return &ap->stats;
}

/* Sleep for the attempt's capped, jittered exponential backoff, keeping
 * the batch alive, in slices so shutdown is noticed. */
static void applier__backoff(sf_applier *ap, sf_batch *batch, int attempt)
{
    int64_t cap = ap->opts.backoff_max_ms;
    int64_t base = 100;
    for (int i = 0; i < attempt && base < cap; i++)
        base *= 2;
    if (base > cap)
        base = cap;
    ap->rng = ap->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    int64_t ms = base / 2 + (int64_t)((ap->rng >> 33) % (uint64_t)(base / 2 + 1));
    sf_error perr;
    if (sf_batch_in_progress_all(batch, &perr) != SF_OK)
        sf_log(SF_LOG_DEBUG, "in-progress signal not sent: %s", perr.msg);
    for (int64_t slept = 0; slept < ms && !*ap->stop; slept += 50) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    ap->stats.retries++;
}

/* Store the DLQ copy of message i (original bytes, reason headers). */
static sf_status applier__sideline(sf_applier *ap, sf_batch *batch, size_t i, const char *reason,
                                   const char *why, sf_error *err)
{
    size_t len = 0;
    const void *data = sf_batch_data(batch, i, &len);
    uint64_t seq = sf_batch_stream_seq(batch, i);
    char subject[SF_SUBJECT_MAX], seq_s[24], dlv_s[24], msg_id[48];
    sf_status st = sf_subject_dlq(subject, sizeof subject, reason, err);
    if (st)
        return st;
    snprintf(seq_s, sizeof seq_s, "%" PRIu64, seq);
    snprintf(dlv_s, sizeof dlv_s, "%" PRIu64, sf_batch_num_delivered(batch, i));
    snprintf(msg_id, sizeof msg_id, "dlq:%s:%" PRIu64, SF_STREAM_EVENTS, seq);
    const char *src_subject = sf_batch_subject(batch, i);
    sf_header hdrs[] = {
        {SF_HDR_REASON, why},
        {SF_HDR_SOURCE_SUBJECT, src_subject ? src_subject : ""},
        {SF_HDR_SOURCE_SEQ, seq_s},
        {SF_HDR_DELIVERIES, dlv_s},
    };
    uint64_t dlq_seq = 0;
    st = sf_broker_publish_sync(ap->broker, subject, msg_id, hdrs, sizeof hdrs / sizeof hdrs[0],
                                data, len, &dlq_seq, err);
    if (st)
        return st;
    sf_log(SF_LOG_WARN, "sidelined %s:%" PRIu64 " to %s (dlq seq %" PRIu64 "): %s",
           src_subject ? src_subject : "?", seq, subject, dlq_seq, why);
    ap->stats.sidelined++;
    char msg[SF_ERROR_MSG_MAX + 160];
    snprintf(msg, sizeof msg, "%s:%" PRIu64 " sidelined to %s: %s", src_subject ? src_subject : "?",
             seq, subject, why);
    sf_ops_alert(ap->opts.ops, "sidelined", msg,
                 json_pack("{s:s, s:I, s:s, s:I}", "subject", src_subject ? src_subject : "",
                           "stream_seq", (json_int_t)seq, "reason", reason, "dlq_seq",
                           (json_int_t)dlq_seq));
    return SF_OK;
}

/* Classify message i; on MSG_GOOD the event is staged at evs[*n]. */
static applier__verdict applier__classify(sf_applier *ap, sf_batch *batch, size_t i, size_t *n,
                                          const char **reason, sf_error *why)
{
    size_t len = 0;
    const void *data = sf_batch_data(batch, i, &len);
    sf_event *ev = &ap->evs[*n];
    if (len > (size_t)ap->opts.max_msg_bytes) {
        /* bigger than any event can encode to: not worth decoding */
        SF_ERR(why, SF_EINVAL, "message of %zu bytes, larger than [consumer] max_msg_bytes (%d)",
               len, ap->opts.max_msg_bytes);
        *reason = "decode";
        return MSG_SIDELINE;
    }
    sf_status st = sf_codec_decode_event(ap->codec, data, len, ev, why);
    if (st == SF_ENOTFOUND) {
        *reason = "fingerprint";
        return MSG_SIDELINE;
    }
    if (st) {
        *reason = "decode";
        return MSG_SIDELINE;
    }
    int64_t now = ap->opts.now_ms_override > 0 ? ap->opts.now_ms_override : sf_now_ms();
    if (sf_event_validate(ev, now, ap->opts.max_future_ms, why) != SF_OK) {
        *reason = "invalid";
        return MSG_SIDELINE;
    }
    ap->seqs[*n] = sf_batch_stream_seq(batch, i);
    ap->idx[*n] = i;
    (*n)++;
    return MSG_GOOD;
}

/* Apply evs[from, from+count) until it commits, a data error, or shutdown. */
static sf_status applier__apply(sf_applier *ap, sf_batch *batch, size_t from, size_t count,
                                sf_error *err)
{
    for (int attempt = 0;; attempt++) {
        size_t inserted = 0;
        sf_status st =
            sf_ledger_apply(ap->ledger, ap->evs + from, ap->seqs + from, count, &inserted, err);
        if (st == SF_OK) {
            ap->stats.applied += inserted;
            ap->stats.duplicates += count - inserted;
            return SF_OK;
        }
        if (st != SF_EUNAVAIL)
            return st;
        if (*ap->stop)
            return SF_EUNAVAIL;
        if (attempt == 0 || attempt % 10 == 0)
            sf_log(SF_LOG_WARN, "postgres unavailable, retrying (attempt %d): %s", attempt + 1,
                   err->msg);
        applier__backoff(ap, batch, attempt);
        sf_error rerr;
        if (sf_ledger_reconnect(ap->ledger, &rerr) != SF_OK)
            continue;
    }
}

/* Ack message i; an ack that cannot be sent is harmless (redelivery is a
 * duplicate the ledger absorbs), so it is logged, not retried. */
static void applier__ack(sf_applier *ap, sf_batch *batch, size_t i)
{
    sf_error err;
    if (sf_batch_ack(batch, i, &err) != SF_OK)
        sf_log(SF_LOG_WARN, "ack of stream seq %" PRIu64 " failed: %s",
               sf_batch_stream_seq(batch, i), err.msg);
    ap->stats.messages++;
}

static int64_t applier__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Tell the server that events k..n-1 of the batch are still being worked
 * on, so the ack wait does not run out while the batch is applied one
 * event per transaction (a few ms each: 2000 of them outlast 10 s). */
static void applier__keep_alive(sf_applier *ap, sf_batch *batch, size_t k, size_t n)
{
    for (; k < n; k++) {
        sf_error err;
        if (sf_batch_in_progress(batch, ap->idx[k], &err) != SF_OK) {
            sf_log(SF_LOG_WARN, "in-progress signal failed: %s", err.msg);
            return;
        }
    }
}

/* A data error somewhere in the batch: each event alone. */
static sf_status applier__apply_alone(sf_applier *ap, sf_batch *batch, size_t n, sf_error *err)
{
    int64_t keep_alive_at = applier__mono_ms() + APPLIER_KEEP_ALIVE_MS;
    for (size_t k = 0; k < n; k++) {
        size_t i = ap->idx[k];
        if (applier__mono_ms() >= keep_alive_at) {
            applier__keep_alive(ap, batch, k, n);
            keep_alive_at = applier__mono_ms() + APPLIER_KEEP_ALIVE_MS;
        }
        sf_error why;
        sf_status st = applier__apply(ap, batch, k, 1, &why);
        if (st == SF_EUNAVAIL)
            return sf_error_set(err, st, why.file, why.line, "%s", why.msg);
        if (st == SF_OK) {
            applier__ack(ap, batch, i);
            continue;
        }
        uint64_t dlv = sf_batch_num_delivered(batch, i);
        if (dlv >= (uint64_t)ap->opts.max_deliver) {
            char msg[SF_ERROR_MSG_MAX + 64];
            snprintf(msg, sizeof msg, "failed %" PRIu64 " deliveries: %s", dlv, why.msg);
            for (int attempt = 0;; attempt++) {
                sf_error derr;
                if (applier__sideline(ap, batch, i, "poison", msg, &derr) == SF_OK)
                    break;
                if (*ap->stop)
                    return SF_ERR(err, SF_EUNAVAIL, "%s", derr.msg);
                applier__backoff(ap, batch, attempt);
            }
            applier__ack(ap, batch, i);
        } else {
            sf_log(SF_LOG_WARN,
                   "event %s (stream seq %" PRIu64 ", delivery %" PRIu64
                   ") failed alone, will retry: %s",
                   ap->evs[k].event_id, sf_batch_stream_seq(batch, i), dlv, why.msg);
            sf_error nerr;
            if (sf_batch_nak_delay(batch, i, 1000, &nerr) != SF_OK)
                sf_log(SF_LOG_WARN, "nak failed: %s", nerr.msg);
        }
    }
    return SF_OK;
}

sf_status sf_applier_handle(sf_applier *ap, sf_batch *batch, sf_error *err)
{
    size_t count = sf_batch_count(batch);
    if (count > APPLIER_CAP)
        return SF_ERR(err, SF_EINTERNAL, "batch of %zu exceeds %d", count, APPLIER_CAP);
    ap->stats.batches++;

    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        const char *reason = NULL;
        sf_error why;
        sf_error_clear(&why);
        if (applier__classify(ap, batch, i, &n, &reason, &why) == MSG_GOOD)
            continue;
        /* Store the DLQ copy first; NATS being down is an outage, not bad data. */
        for (int attempt = 0;; attempt++) {
            sf_error derr;
            if (applier__sideline(ap, batch, i, reason, why.msg, &derr) == SF_OK)
                break;
            if (*ap->stop)
                return SF_ERR(err, SF_EUNAVAIL, "%s", derr.msg);
            applier__backoff(ap, batch, attempt);
        }
        applier__ack(ap, batch, i);
    }

    sf_status st = applier__apply(ap, batch, 0, n, err);
    if (st == SF_OK) {
        for (size_t k = 0; k < n; k++)
            applier__ack(ap, batch, ap->idx[k]);
        return SF_OK;
    }
    if (st == SF_EUNAVAIL)
        return st;
    sf_log(SF_LOG_WARN, "batch of %zu failed (%s); applying each event alone", n, err->msg);
    return applier__apply_alone(ap, batch, n, err);
}
