/*
 * feed_run: records are settled out of order (acks arrive as JetStream
 * sends them), so a byte per ordinal marks the settled ones and a cursor
 * advances over the contiguous prefix; the checkpoint stores the cursor
 * every CHECKPOINT_EVERY settlements and at the end. The checkpoint row is
 * written only here and only forward (GREATEST), so two runs of the same
 * document never move it back.
 */
#include "feed_run.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "event_parse.h"
#include "log.h"
#include "sender.h"
#include "supplier_map.h"

enum { CHECKPOINT_EVERY = 2000 };

typedef struct feed__run {
    const sf_feed_run_ctx *ctx;
    const char *name;
    sf_feed_stats *st;
    uint8_t *settled; /* by ordinal; [0] unused */
    size_t cap;
    uint64_t acked;       /* every ordinal <= acked is settled */
    uint64_t since_saved; /* settlements since the last checkpoint write */
    sf_status db_status;  /* first checkpoint failure, reported at the end */
    sf_error db_err;
} feed__run;

sf_status sf_feed_read_file(const char *path, char **data, size_t *len, sf_error *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return SF_ERR(err, SF_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    sf_status st = SF_OK;
    while (buf) {
        if (n == cap) {
            if (cap >= SF_FEED_MAX_BYTES) {
                st = SF_ERR(err, SF_EINVAL, "%s: larger than %zu MiB", path,
                            SF_FEED_MAX_BYTES >> 20);
                break;
            }
            cap = cap * 2 > SF_FEED_MAX_BYTES ? SF_FEED_MAX_BYTES : cap * 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb)
                break;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                st = SF_ERR(err, SF_EIO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (!buf)
        return SF_ERR(err, SF_ENOMEM, "%s: out of memory", path);
    if (st) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return SF_OK;
}

static void feed__error(feed__run *r, const char *position, const char *reason)
{
    fprintf(stderr, "%s:%s: %s\n", r->name, position, reason);
    if (r->ctx->errors) {
        fprintf(r->ctx->errors, "%s:%s: %s\n", r->name, position, reason);
        fflush(r->ctx->errors);
    }
}

static sf_status feed__checkpoint(feed__run *r, bool done)
{
    if (r->ctx->dry_run || !r->ctx->conn)
        return SF_OK;
    char acked[24], records[24], published[24], rejected[24];
    snprintf(acked, sizeof acked, "%" PRIu64, r->acked);
    snprintf(records, sizeof records, "%" PRIu64, r->st->records);
    snprintf(published, sizeof published, "%" PRIu64,
             r->st->published + r->st->duplicate + r->st->skipped);
    snprintf(rejected, sizeof rejected, "%" PRIu64, r->st->rejected);
    const char *params[8] = {
        r->ctx->sup->id, r->st->digest, r->name,  records,
        acked,           published,     rejected, done ? "done" : "publishing"};
    PGresult *res = NULL;
    sf_error err;
    sf_status st = sf_db_query(
        r->ctx->conn,
        "INSERT INTO feed_checkpoints AS f (supplier, digest, name, records, acked, published, "
        "rejected, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "ON CONFLICT (supplier, digest) DO UPDATE SET name = excluded.name, "
        "records = GREATEST(f.records, excluded.records), acked = GREATEST(f.acked, "
        "excluded.acked), "
        "published = GREATEST(f.published, excluded.published), rejected = excluded.rejected, "
        "state = CASE WHEN f.state = 'done' THEN 'done' ELSE excluded.state END, updated_at = "
        "now()",
        8, params, &res, &err);
    PQclear(res);
    if (st && !r->db_status) {
        r->db_status = st;
        r->db_err = err;
    }
    r->since_saved = 0;
    return st;
}

static void feed__settle(feed__run *r, uint64_t ordinal)
{
    if (ordinal < r->cap)
        r->settled[ordinal] = 1;
    while (r->acked + 1 < r->cap && r->settled[r->acked + 1])
        r->acked++;
    if (++r->since_saved >= CHECKPOINT_EVERY)
        (void)feed__checkpoint(r, false);
}

static void feed__outcome(void *closure, const sf_send_outcome *o)
{
    feed__run *r = closure;
    uint64_t ordinal = (uint64_t)(uintptr_t)o->token;
    if (o->status == SF_OK || o->status == SF_EDUP) {
        if (o->status == SF_OK)
            r->st->published++;
        else
            r->st->duplicate++;
        feed__settle(r, ordinal);
        return;
    }
    r->st->failed++;
    char pos[32];
    snprintf(pos, sizeof pos, "record %" PRIu64, ordinal);
    feed__error(r, pos, o->error);
}

/* The checkpoint of this document: how far an earlier run got. */
static sf_status feed__load_checkpoint(feed__run *r, uint64_t *acked, bool *done, sf_error *err)
{
    *acked = 0;
    *done = false;
    if (r->ctx->dry_run || !r->ctx->conn)
        return SF_OK;
    const char *params[2] = {r->ctx->sup->id, r->st->digest};
    PGresult *res = NULL;
    sf_status st = sf_db_query(r->ctx->conn,
                               "SELECT acked, state FROM feed_checkpoints "
                               "WHERE supplier = $1 AND digest = $2",
                               2, params, &res, err);
    if (st)
        return st;
    if (PQntuples(res) == 1) {
        *acked = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        *done = !strcmp(PQgetvalue(res, 0, 1), "done");
    }
    PQclear(res);
    return SF_OK;
}

static sf_status feed__grow(feed__run *r, uint64_t ordinal, sf_error *err)
{
    if (ordinal < r->cap)
        return SF_OK;
    size_t cap = r->cap ? r->cap : 4096;
    while (cap <= ordinal)
        cap *= 2;
    uint8_t *ns = realloc(r->settled, cap);
    if (!ns)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    memset(ns + r->cap, 0, cap - r->cap);
    r->settled = ns;
    r->cap = cap;
    return SF_OK;
}

/* One good or bad row: reject, skip, print or send. */
static sf_status feed__row(feed__run *r, const sf_sku_map *map, sf_sender *sender,
                           const sf_supplier_row *row, uint64_t skip_to, sf_error *err)
{
    const sf_feed_run_ctx *ctx = r->ctx;
    sf_status st = feed__grow(r, row->ordinal, err);
    if (st)
        return st;
    sf_event ev;
    sf_error why;
    if (!row->ok) {
        why = row->error;
    } else if (sf_supplier_map_row(ctx->sup, map, row, r->st->digest, ctx->now_ms, &ev, &why) ==
               SF_OK) {
        if (row->ordinal <= skip_to) {
            r->st->skipped++;
            feed__settle(r, row->ordinal);
            return SF_OK;
        }
        if (ctx->dry_run) {
            char line[1024];
            if (sf_event_format_json(&ev, 0, line, sizeof line, NULL, &why) == SF_OK) {
                fprintf(ctx->dry_out, "%s\n", line);
                r->st->published++;
                feed__settle(r, row->ordinal);
                return SF_OK;
            }
        } else if ((st = sf_sender_send(sender, &ev, (void *)(uintptr_t)row->ordinal, &why)) ==
                   SF_OK) {
            sf_sender_poll(sender, 0);
            /* Backpressure: bounded memory while JetStream is slow or away. */
            while (sf_sender_pending(sender) >= (size_t)ctx->max_inflight &&
                   !(ctx->stop && *ctx->stop))
                sf_sender_poll(sender, 100);
            return SF_OK;
        } else if (st != SF_EINVAL) {
            return sf_error_set(err, st, why.file, why.line, "%s", why.msg);
        }
    }
    r->st->rejected++;
    feed__error(r, row->position, why.msg);
    feed__settle(r, row->ordinal);
    return SF_OK;
}

sf_status sf_feed_run(const sf_feed_run_ctx *ctx, const char *name, const char *data, size_t len,
                      sf_feed_stats *stats, sf_error *err)
{
    memset(stats, 0, sizeof *stats);
    feed__run r = {.ctx = ctx, .name = name, .st = stats};
    const sf_supplier *sup = ctx->sup;
    sf_feed_ctx fctx = {.name = name, .read_at_ms = ctx->now_ms, .tz_offset_s = sup->tz_offset_s};
    void *state = NULL;
    sf_sku_map *map = NULL;
    sf_sender *sender = NULL;
    sf_status st = sup->adapter->open(sup->adapter_opts, &fctx, data, len, &state, err);
    if (st) {
        feed__error(&r, "document", err->msg);
        return st;
    }
    snprintf(stats->digest, sizeof stats->digest, "%s", sup->adapter->digest(state));

    uint64_t skip_to = 0;
    bool done = false;
    if ((st = feed__load_checkpoint(&r, &skip_to, &done, err)))
        goto out;
    if (done) {
        stats->already_done = true;
        goto out;
    }
    if (!sup->sku_identity && (st = sf_sku_map_load(ctx->conn, sup->id, &map, err)))
        goto out;
    if (!ctx->dry_run) {
        sf_sender_opts so;
        sf_sender_opts_init(&so);
        so.max_inflight = ctx->max_inflight;
        so.retry_for_ms = ctx->retry_for_ms;
        so.stop = ctx->stop;
        so.cb = feed__outcome;
        so.closure = &r;
        if ((st = sf_sender_new(ctx->broker, &so, &sender, err)))
            goto out;
    }
    for (;;) {
        if (ctx->stop && *ctx->stop) {
            stats->stopped = true;
            break;
        }
        sf_supplier_row row;
        st = sup->adapter->next(state, &row, err);
        if (st == SF_ENOTFOUND) {
            st = SF_OK;
            break;
        }
        if (st)
            break;
        stats->records++;
        if ((st = feed__row(&r, map, sender, &row, skip_to, err)))
            break;
    }
    if (sender)
        sf_sender_finish(sender);
    if (!st)
        (void)feed__checkpoint(&r,
                               !stats->stopped && stats->failed == 0 && r.acked == stats->records);
    if (!st && r.db_status)
        st = sf_error_set(err, r.db_status, r.db_err.file, r.db_err.line, "feed_checkpoints: %s",
                          r.db_err.msg);
out:
    sf_sender_free(sender);
    sf_sku_map_free(map);
    sup->adapter->close(state);
    free(r.settled);
    return st;
}
