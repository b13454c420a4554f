/*
 * workload: deterministic feed generator (see workload.h).
 *
 * One step writes one line: a duplicate of a recent line, the next queued
 * follower of an earlier action (the TRANSFER_IN of a transfer, the RESERVE
 * of a release-before-reserve), or a new action drawn by weight. All state
 * lives in workload__gen and all randomness in its splitmix64 stream, so
 * output depends on the options only. Keep the draw order stable: it is
 * the output format.
 */
#include "workload.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "event_parse.h"

#define WORKLOAD_RING 64      /* recent lines a duplicate may copy */
#define WORKLOAD_LINE_MAX 512 /* bytes of one generated line, NUL included */
#define WORKLOAD_PENDING 8    /* queued followers */
#define WORKLOAD_ORDERS 64    /* open orders */
#define WORKLOAD_SPAN_MS (INT64_C(180) * 86400 * 1000)
#define WORKLOAD_SOURCE "gen"

typedef struct workload__order {
    uint64_t ref; /* order-<seed>-<ref> */
    unsigned sku, loc;
    int64_t held;
    const char *channel;
} workload__order;

typedef struct workload__gen {
    const sf_workload_opts *opts;
    uint64_t rng;
    uint64_t next_id;    /* n of g-<seed>-<n> */
    uint64_t next_order; /* order refs */
    int64_t step_ms;
    int64_t clock_ms; /* occurred_at of the latest new event before jitter */
    char ring[WORKLOAD_RING][WORKLOAD_LINE_MAX];
    size_t ring_len[WORKLOAD_RING];
    size_t ring_fill, ring_next;
    sf_event pending[WORKLOAD_PENDING];
    size_t npending;
    workload__order orders[WORKLOAD_ORDERS];
    size_t norders;
} workload__gen;

static const char *const workload__web_channels[] = {"web", "app", "marketplace"};

void sf_workload_opts_init(sf_workload_opts *opts)
{
    opts->seed = 1;
    opts->events = 10000;
    opts->skus = 100;
    opts->locations = 3;
    opts->expiring = false;
    opts->base_ms = SF_WORKLOAD_BASE_MS_DEFAULT;
}

static uint64_t workload__next(workload__gen *g)
{
    uint64_t z = (g->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0 (the modulo bias is irrelevant here). */
static uint64_t workload__below(workload__gen *g, uint64_t n)
{
    return workload__next(g) % n;
}

/* Uniform in [lo, hi]. */
static int64_t workload__range(workload__gen *g, int64_t lo, int64_t hi)
{
    return lo + (int64_t)workload__below(g, (uint64_t)(hi - lo) + 1);
}

/* A new event's skeleton: everything but id and time. */
static void workload__start(sf_event *ev, sf_kind kind, unsigned sku, unsigned loc, int64_t qty)
{
    sf_event_init(ev);
    ev->kind = kind;
    snprintf(ev->sku, sizeof ev->sku, "SKU-%05u", sku + 1);
    snprintf(ev->location, sizeof ev->location, "LOC-%u", loc + 1);
    ev->qty = qty;
    snprintf(ev->source, sizeof ev->source, "%s", WORKLOAD_SOURCE);
}

/* Give ev the next id and its time (one step after the last, sometimes late). */
static void workload__stamp(workload__gen *g, sf_event *ev)
{
    g->next_id++;
    snprintf(ev->event_id, sizeof ev->event_id, "g-%" PRIu64 "-%" PRIu64, g->opts->seed,
             g->next_id);
    g->clock_ms = g->opts->base_ms + (int64_t)g->next_id * g->step_ms;
    int64_t at = g->clock_ms + workload__range(g, 0, g->step_ms - 1);
    int64_t behind = at - g->opts->base_ms;
    if (behind > 0 && workload__below(g, 100) < 5) {
        /* a late event: up to two hours before lines already written */
        int64_t max_back = behind < 7200000 ? behind : 7200000;
        at -= workload__range(g, 1, max_back);
    }
    ev->occurred_at = at;
}

static void workload__set_ref(sf_event *ev, uint64_t seed, uint64_t ref)
{
    snprintf(ev->ref, sizeof ev->ref, "order-%" PRIu64 "-%" PRIu64, seed, ref);
    ev->has_ref = true;
}

static void workload__set_channel(sf_event *ev, const char *channel)
{
    snprintf(ev->channel, sizeof ev->channel, "%s", channel);
    ev->has_channel = true;
}

static void workload__expiry(workload__gen *g, sf_event *ev)
{
    if (!g->opts->expiring)
        return;
    ev->has_expires_at = true;
    ev->expires_at = ev->occurred_at + workload__range(g, 15, 120) * 60000;
}

static void workload__push(workload__gen *g, const sf_event *ev)
{
    if (g->npending < WORKLOAD_PENDING)
        g->pending[g->npending++] = *ev;
}

static void workload__drop_order(workload__gen *g, size_t i)
{
    g->orders[i] = g->orders[--g->norders];
}

static const char *workload__web_channel(workload__gen *g)
{
    return workload__web_channels[workload__below(g, 3)];
}

static void workload__new_order(workload__gen *g, sf_event *ev)
{
    unsigned sku = (unsigned)workload__below(g, g->opts->skus);
    unsigned loc = (unsigned)workload__below(g, g->opts->locations);
    int64_t qty = workload__range(g, 1, 5);
    workload__order *o = &g->orders[g->norders++];
    o->ref = ++g->next_order;
    o->sku = sku;
    o->loc = loc;
    o->held = qty;
    o->channel = workload__web_channel(g);
    workload__start(ev, SF_KIND_RESERVE, sku, loc, qty);
    workload__set_ref(ev, g->opts->seed, o->ref);
    workload__set_channel(ev, o->channel);
    workload__stamp(g, ev);
    workload__expiry(g, ev);
}

/* Sell, release, over-release or add to an open order. */
static void workload__follow_order(workload__gen *g, sf_event *ev)
{
    size_t i = (size_t)workload__below(g, g->norders);
    workload__order *o = &g->orders[i];
    uint64_t roll = workload__below(g, 100);
    sf_kind kind;
    int64_t qty;
    bool close = true;
    if (roll < 45) {
        kind = SF_KIND_SALE; /* the whole order ships */
        qty = o->held;
    } else if (roll < 60) {
        kind = SF_KIND_SALE; /* part of it ships */
        qty = o->held >= 2 ? workload__range(g, 1, o->held - 1) : o->held;
        o->held -= qty;
        close = o->held <= 0;
    } else if (roll < 80) {
        kind = SF_KIND_RELEASE;
        qty = o->held;
    } else if (roll < 90) {
        kind = SF_KIND_RELEASE; /* more than held: absorbed */
        qty = o->held + workload__range(g, 1, 3);
    } else {
        kind = SF_KIND_RESERVE; /* the customer adds to the order */
        qty = workload__range(g, 1, 3);
        o->held += qty;
        close = false;
    }
    workload__start(ev, kind, o->sku, o->loc, qty);
    workload__set_ref(ev, g->opts->seed, o->ref);
    if (kind != SF_KIND_RELEASE)
        workload__set_channel(ev, o->channel);
    workload__stamp(g, ev);
    if (kind == SF_KIND_RESERVE)
        workload__expiry(g, ev);
    if (close)
        workload__drop_order(g, i);
}

/* One new action; its first event goes to ev, followers to the queue. */
static void workload__action(workload__gen *g, sf_event *ev)
{
    const sf_workload_opts *o = g->opts;
    unsigned sku = (unsigned)workload__below(g, o->skus);
    unsigned loc = (unsigned)workload__below(g, o->locations);
    uint64_t roll = workload__below(g, 1000);
    if (roll < 220) { /* walk-in sale: no ref, touches no reservation */
        workload__start(ev, SF_KIND_SALE, sku, loc, workload__range(g, 1, 5));
        if (workload__below(g, 4) != 0)
            workload__set_channel(ev, "store");
        workload__stamp(g, ev);
    } else if (roll < 330) {
        workload__start(ev, SF_KIND_RECEIPT, sku, loc, workload__range(g, 10, 100));
        workload__stamp(g, ev);
    } else if (roll < 430) {
        workload__start(ev, SF_KIND_ASN, sku, loc, workload__range(g, 10, 100));
        workload__stamp(g, ev);
    } else if (roll < 510) {
        workload__start(ev, SF_KIND_RETURN, sku, loc, workload__range(g, 1, 3));
        uint64_t c = workload__below(g, 4);
        if (c == 0) {
            ev->has_condition = true;
            ev->condition = SF_COND_DAMAGED;
        } else if (c == 1) {
            ev->has_condition = true;
            ev->condition = SF_COND_RESELLABLE;
        }
        workload__stamp(g, ev);
    } else if (roll < 560) {
        int64_t q = workload__range(g, 1, 10);
        workload__start(ev, SF_KIND_ADJUST, sku, loc, workload__below(g, 2) ? q : -q);
        workload__stamp(g, ev);
    } else if (roll < 610) {
        unsigned to =
            o->locations > 1
                ? (loc + 1 + (unsigned)workload__below(g, o->locations - 1)) % o->locations
                : loc;
        int64_t q = workload__range(g, 1, 20);
        workload__start(ev, SF_KIND_TRANSFER_OUT, sku, loc, q);
        workload__stamp(g, ev);
        sf_event in;
        workload__start(&in, SF_KIND_TRANSFER_IN, sku, to, q);
        workload__push(g, &in);
    } else if (roll < 640) {
        workload__start(ev, SF_KIND_COUNT, sku, loc, workload__range(g, 0, 300));
        workload__stamp(g, ev);
    } else if (roll < 670) { /* release before reserve: arrives first, absorbed */
        uint64_t ref = ++g->next_order;
        int64_t q = workload__range(g, 1, 5);
        workload__start(ev, SF_KIND_RELEASE, sku, loc, q + workload__range(g, 0, 2));
        workload__set_ref(ev, o->seed, ref);
        workload__stamp(g, ev);
        sf_event rsv;
        workload__start(&rsv, SF_KIND_RESERVE, sku, loc, q);
        workload__set_ref(&rsv, o->seed, ref);
        workload__set_channel(&rsv, workload__web_channel(g));
        workload__push(g, &rsv);
    } else if (roll < 820 && g->norders < WORKLOAD_ORDERS) {
        workload__new_order(g, ev);
    } else if (g->norders > 0) {
        workload__follow_order(g, ev);
    } else {
        workload__new_order(g, ev);
    }
}

/* The next event: a queued follower first, else a new action. */
static void workload__event(workload__gen *g, sf_event *ev)
{
    if (g->npending > 0) {
        *ev = g->pending[0];
        memmove(&g->pending[0], &g->pending[1], (g->npending - 1) * sizeof g->pending[0]);
        g->npending--;
        workload__stamp(g, ev);
        if (ev->kind == SF_KIND_RESERVE)
            workload__expiry(g, ev);
        return;
    }
    workload__action(g, ev);
}

sf_status sf_workload_generate(const sf_workload_opts *opts, sf_workload_line_fn fn, void *ctx,
                               sf_error *err)
{
    if (opts->skus < 1 || opts->skus > SF_WORKLOAD_MAX_SKUS)
        return SF_ERR(err, SF_EINVAL, "workload: skus %u out of range (1..%d)", opts->skus,
                      SF_WORKLOAD_MAX_SKUS);
    if (opts->locations < 1 || opts->locations > SF_WORKLOAD_MAX_LOCATIONS)
        return SF_ERR(err, SF_EINVAL, "workload: locations %u out of range (1..%d)",
                      opts->locations, SF_WORKLOAD_MAX_LOCATIONS);
    if (opts->base_ms < 0 || opts->base_ms > INT64_C(253402300799999) - WORKLOAD_SPAN_MS)
        return SF_ERR(err, SF_EINVAL, "workload: base_ms %lld out of range",
                      (long long)opts->base_ms);
    workload__gen *g = calloc(1, sizeof *g);
    if (!g)
        return SF_ERR(err, SF_ENOMEM, "workload: out of memory");
    g->opts = opts;
    g->rng = opts->seed;
    /* One second per event, squeezed so the whole feed spans <= 180 days. */
    g->step_ms = 1000;
    if (opts->events > 0 && (uint64_t)WORKLOAD_SPAN_MS / opts->events < 1000)
        g->step_ms = (int64_t)((uint64_t)WORKLOAD_SPAN_MS / opts->events);
    if (g->step_ms < 1)
        g->step_ms = 1;

    sf_status st = SF_OK;
    char line[WORKLOAD_LINE_MAX];
    for (uint64_t i = 0; i < opts->events; i++) {
        const char *out;
        size_t len;
        if (g->ring_fill > 0 && workload__below(g, 100) < 2) {
            size_t k = (size_t)workload__below(g, g->ring_fill);
            out = g->ring[k];
            len = g->ring_len[k];
        } else {
            sf_event ev;
            workload__event(g, &ev);
            unsigned flags = 0;
            if (workload__below(g, 5) == 0)
                flags |= SF_JSON_EPOCH_MS;
            if (workload__below(g, 2) == 0)
                flags |= SF_JSON_KIND_LOWER;
            if ((st = sf_event_format_json(&ev, flags, line, sizeof line, &len, err)) != SF_OK)
                break;
            memcpy(g->ring[g->ring_next], line, len);
            g->ring_len[g->ring_next] = len;
            g->ring_next = (g->ring_next + 1) % WORKLOAD_RING;
            if (g->ring_fill < WORKLOAD_RING)
                g->ring_fill++;
            out = line;
        }
        if (fn(out, len, ctx) != 0)
            break;
    }
    free(g);
    return st;
}

typedef struct workload__file {
    FILE *out;
    int errno_;
} workload__file;

static int workload__write_line(const char *line, size_t len, void *vctx)
{
    workload__file *f = vctx;
    if (fwrite(line, 1, len, f->out) != len || putc('\n', f->out) == EOF) {
        f->errno_ = errno ? errno : EIO;
        return 1;
    }
    return 0;
}

sf_status sf_workload_write(const sf_workload_opts *opts, FILE *out, sf_error *err)
{
    workload__file f = {out, 0};
    errno = 0;
    sf_status st = sf_workload_generate(opts, workload__write_line, &f, err);
    if (st != SF_OK)
        return st;
    if (f.errno_ != 0 || fflush(out) != 0)
        return SF_ERR(err, SF_EIO, "workload: write failed: %s",
                      strerror(f.errno_ ? f.errno_ : errno));
    return SF_OK;
}
