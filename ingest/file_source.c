/*
 * file_source: read, validate, encode, publish asynchronously, count.
 *
 * Each published line owns a heap token holding its encoded bytes, so a
 * publish that fails (JetStream away, ack timeout) is re-published with
 * the same Nats-Msg-Id until retry_for_ms has passed: the broker's
 * duplicate window makes the retry safe. Outcomes are drained on this
 * thread only; the in-flight count is bounded by the publisher's window.
 */
#include "file_source.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

typedef struct file__token {
    uint64_t line;
    int64_t first_try_ms;
    int attempts;
    char subject[SF_SUBJECT_MAX];
    char msg_id[SF_STR_MAX + 1];
    size_t len;
    uint8_t data[SF_CODEC_EVENT_MAX];
} file__token;

typedef struct file__run {
    const ingest_file_ctx *ctx;
    const char *path;
    ingest_file_stats *stats;
    uint64_t inflight;
    file__token **retry; /* failed publishes waiting to be sent again */
    size_t n_retry, cap_retry;
    int64_t retry_at_ms;
} file__run;

static int64_t file__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void file__reject(file__run *r, uint64_t line, const char *reason)
{
    fprintf(stderr, "%s:%" PRIu64 ": %s\n", r->path, line, reason);
    if (r->ctx->rejects) {
        fprintf(r->ctx->rejects, "%s:%" PRIu64 ": %s\n", r->path, line, reason);
        fflush(r->ctx->rejects);
    }
}

/* Give up on a token: it is reported as failed, never silently dropped. */
static void file__fail(file__run *r, file__token *t, const char *why)
{
    char reason[SF_ERROR_MSG_MAX + 64];
    snprintf(reason, sizeof reason, "not published after %d attempts: %s", t->attempts, why);
    file__reject(r, t->line, reason);
    r->stats->failed++;
    free(t);
}

static void file__schedule_retry(file__run *r, file__token *t, const char *why)
{
    if (file__mono_ms() - t->first_try_ms > r->ctx->retry_for_ms || *r->ctx->stop) {
        file__fail(r, t, why);
        return;
    }
    if (r->n_retry == r->cap_retry) {
        size_t cap = r->cap_retry ? r->cap_retry * 2 : 256;
        file__token **nr = realloc(r->retry, cap * sizeof *nr);
        if (!nr) {
            file__fail(r, t, "out of memory queueing a retry");
            return;
        }
        r->retry = nr;
        r->cap_retry = cap;
    }
    r->retry[r->n_retry++] = t;
    int backoff = t->attempts < 6 ? 100 << t->attempts : 5000;
    int64_t at = file__mono_ms() + backoff;
    if (r->retry_at_ms == 0 || at < r->retry_at_ms)
        r->retry_at_ms = at;
}

/* Hand a token to the publisher; on failure it goes to the retry list. */
static void file__publish(file__run *r, file__token *t)
{
    sf_error err;
    t->attempts++;
    sf_status st =
        sf_publisher_publish(r->ctx->pub, t->subject, t->msg_id, t->data, t->len, t, &err);
    if (st == SF_OK) {
        r->inflight++;
        return;
    }
    if (t->attempts == 1 || t->attempts % 10 == 0)
        sf_log(SF_LOG_WARN, "%s:%" PRIu64 ": publish failed (attempt %d), will retry: %s", r->path,
               t->line, t->attempts, err.msg);
    file__schedule_retry(r, t, err.msg);
}

/* Process publish outcomes; waits up to wait_ms for the first one. */
static void file__drain(file__run *r, int wait_ms)
{
    ingest_outcome out[256];
    size_t n = ingest_outcomes_take(r->ctx->outcomes, out, 256, wait_ms);
    for (size_t i = 0; i < n; i++) {
        file__token *t = out[i].token;
        r->inflight--;
        if (out[i].status == SF_OK) {
            r->stats->accepted++;
            free(t);
        } else if (out[i].status == SF_EDUP) {
            r->stats->duplicate++;
            free(t);
        } else {
            file__schedule_retry(r, t, out[i].error);
        }
    }
    if (r->n_retry && file__mono_ms() >= r->retry_at_ms) {
        size_t n_retry = r->n_retry;
        file__token **batch = r->retry;
        r->retry = NULL;
        r->n_retry = r->cap_retry = 0;
        r->retry_at_ms = 0;
        for (size_t i = 0; i < n_retry; i++)
            file__publish(r, batch[i]);
        free(batch);
    }
}

static sf_status file__line(file__run *r, const sf_feed_item *item, sf_error *out_err)
{
    if (!item->ok) {
        r->stats->rejected++;
        file__reject(r, item->line, item->error.msg);
        return SF_OK;
    }
    file__token *t = malloc(sizeof *t);
    if (!t)
        return SF_ERR(out_err, SF_ENOMEM, "out of memory");
    t->line = item->line;
    t->attempts = 0;
    t->first_try_ms = file__mono_ms();
    snprintf(t->msg_id, sizeof t->msg_id, "%s", item->event.event_id);
    sf_error err;
    if (sf_event_subject(&item->event, t->subject, sizeof t->subject, &err) ||
        sf_codec_encode_event(r->ctx->codec, &item->event, t->data, sizeof t->data, &t->len,
                              &err)) {
        r->stats->rejected++;
        file__reject(r, item->line, err.msg);
        free(t);
        return SF_OK;
    }
    file__publish(r, t);
    return SF_OK;
}

sf_status ingest_file_run(const ingest_file_ctx *ctx, const char *path, ingest_file_stats *stats,
                          sf_error *err)
{
    memset(stats, 0, sizeof *stats);
    int is_stdin = !strcmp(path, "-");
    FILE *in = is_stdin ? stdin : fopen(path, "rb");
    if (!in)
        return SF_ERR(err, SF_EIO, "%s: cannot open", path);
    file__run r = {.ctx = ctx, .path = is_stdin ? "stdin" : path, .stats = stats};
    sf_feed_reader *reader = NULL;
    sf_status st = sf_feed_reader_new(in, ctx->parse, &reader, err);
    while (!st && !*ctx->stop) {
        sf_feed_item item;
        st = sf_feed_reader_next(reader, &item, err);
        if (st == SF_ENOTFOUND) { /* end of input */
            st = SF_OK;
            break;
        }
        if (st)
            break;
        stats->lines++;
        if ((st = file__line(&r, &item, err)))
            break;
        file__drain(&r, 0);
    }
    if (st)
        sf_error_prefix(err, "%s: ", r.path);
    /* Wait for every in-flight publish and every retry to resolve. */
    while (r.inflight > 0 || r.n_retry > 0)
        file__drain(&r, 100);
    free(r.retry);
    sf_feed_reader_free(reader);
    if (!is_stdin)
        fclose(in);
    return st;
}
