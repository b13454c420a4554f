/*
 * file_source: read, validate, hand to the sender, count. The sender
 * (common/sender.h) owns publishing and retries and reports each line's
 * outcome on this thread, with the line number as its token.
 */
#include "file_source.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef struct file__run {
    const ingest_file_ctx *ctx;
    const char *path;
    ingest_file_stats *stats;
    int64_t metrics_at_ms; /* last metrics message */
    uint64_t metrics_lines;
} file__run;

/* metrics.inv-ingest, at most once a second (and once at the end). */
static void file__metrics(file__run *r, bool final)
{
    int64_t now = sf_now_ms();
    if (!r->ctx->ops || (!final && now - r->metrics_at_ms < 1000))
        return;
    double secs = r->metrics_at_ms ? (double)(now - r->metrics_at_ms) / 1000.0 : 0;
    const ingest_file_stats *s = r->stats;
    sf_ops_send(
        r->ctx->ops, "metrics.inv-ingest",
        json_pack("{s:s, s:f, s:I, s:I, s:I, s:I, s:I, s:I}", "file", r->path, "lines_per_s",
                  secs > 0 ? (double)(s->lines - r->metrics_lines) / secs : 0.0, "lines",
                  (json_int_t)s->lines, "accepted", (json_int_t)s->accepted, "duplicate",
                  (json_int_t)s->duplicate, "rejected", (json_int_t)s->rejected, "failed",
                  (json_int_t)s->failed, "ops_dropped", (json_int_t)sf_ops_dropped(r->ctx->ops)));
    r->metrics_at_ms = now;
    r->metrics_lines = s->lines;
}

static void file__reject(file__run *r, uint64_t line, const char *reason)
{
    fprintf(stderr, "%s:%" PRIu64 ": %s\n", r->path, line, reason);
    if (r->ctx->rejects) {
        fprintf(r->ctx->rejects, "%s:%" PRIu64 ": %s\n", r->path, line, reason);
        fflush(r->ctx->rejects);
    }
}

/* The sender's outcome of one line (token = its line number). */
static void file__outcome(void *closure, const sf_send_outcome *o)
{
    file__run *r = closure;
    if (o->status == SF_OK)
        r->stats->accepted++;
    else if (o->status == SF_EDUP)
        r->stats->duplicate++;
    else {
        r->stats->failed++;
        file__reject(r, (uint64_t)(uintptr_t)o->token, o->error);
    }
}

static sf_status file__line(file__run *r, sf_sender *sender, const sf_feed_item *item,
                            sf_error *out_err)
{
    if (!item->ok) {
        r->stats->rejected++;
        file__reject(r, item->line, item->error.msg);
        return SF_OK;
    }
    sf_error err;
    sf_status st = sf_sender_send(sender, &item->event, (void *)(uintptr_t)item->line, &err);
    if (st == SF_EINVAL) {
        r->stats->rejected++;
        file__reject(r, item->line, err.msg);
        return SF_OK;
    }
    if (st)
        return sf_error_set(out_err, st, err.file, err.line, "%s", err.msg);
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
    sf_sender_opts so;
    sf_sender_opts_init(&so);
    so.max_inflight = ctx->max_inflight;
    so.retry_for_ms = ctx->retry_for_ms;
    so.stop = ctx->stop;
    so.cb = file__outcome;
    so.closure = &r;
    sf_sender *sender = NULL;
    sf_feed_reader *reader = NULL;
    sf_status st = sf_sender_new(ctx->broker, &so, &sender, err);
    if (!st)
        st = sf_feed_reader_new(in, ctx->parse, &reader, err);
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
        if ((st = file__line(&r, sender, &item, err)))
            break;
        sf_sender_poll(sender, 0);
        /* Backpressure: while JetStream is slow or away, events waiting for
         * their ack or a retry pile up; stop reading until they drain, so
         * memory stays bounded by the window, whatever the file's size. */
        while (sf_sender_pending(sender) >= (size_t)ctx->max_inflight && !*ctx->stop)
            sf_sender_poll(sender, 100);
        if ((stats->lines & 1023) == 0)
            file__metrics(&r, false);
    }
    if (st)
        sf_error_prefix(err, "%s: ", r.path);
    /* Every line sent ends in an outcome: wait for all of them. */
    if (sender)
        sf_sender_finish(sender);
    file__metrics(&r, true);
    sf_sender_free(sender);
    sf_feed_reader_free(reader);
    if (!is_stdin)
        fclose(in);
    return st;
}
