/*
 * raw_nats: the broker's raw limit for `make bench` (bench/pipeline.sh).
 *
 * A bare client on common/broker.h, no database: it reads a JSON-lines
 * file, parses, validates and Avro-encodes every line first (not timed),
 * then times (1) asynchronous publishing of every line to INV_EVENTS with
 * Nats-Msg-Id = event_id through one sf_publisher (bounded window), until
 * every ack is back, and (2) pull-fetching every stored message through the
 * durable consumer stock-applier in batches, acking each message (the last
 * ack is synchronous, so the time includes the server having every ack).
 * The streams and the consumer must exist (`invctl setup`) and be empty.
 *
 * The one idea: the pipeline pushes every event through the same server
 * twice (stored once, delivered and acked once), and on a shared-core
 * machine those costs add up, so the combined limit is
 * distinct / (publish time + fetch time); publish-only and fetch-only rates
 * are printed too, with the CPU each phase cost (bench_proc.h; --watch
 * NAME=PID adds a server process tree). The last line is machine-readable
 * for the script:
 *   RESULT raw_nats lines=.. stored=.. duplicate=.. publish_s=.. fetch_s=.. <cpu>
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_proc.h"
#include "broker_pub.h"
#include "broker_pull.h"
#include "codec.h"
#include "event_parse.h"

/* One encoded event in the arena: subject and msg id NUL-terminated, then
 * the Avro bytes. */
typedef struct raw__msg {
    size_t subject_off, id_off, data_off, data_len;
} raw__msg;

typedef struct raw__input {
    raw__msg *msgs;
    size_t n, cap;
    char *arena;
    size_t used, arena_cap;
} raw__input;

typedef struct raw__acks {
    atomic_uint_fast64_t stored, duplicate, failed;
    pthread_mutex_t mu;
    char first_error[SF_ERROR_MSG_MAX];
} raw__acks;

static void raw__die(const char *what, const sf_error *err)
{
    fprintf(stderr, "raw_nats: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

static size_t raw__arena_put(raw__input *in, const void *p, size_t len)
{
    if (in->used + len > in->arena_cap) {
        size_t cap = in->arena_cap ? in->arena_cap : (size_t)1 << 24;
        while (cap < in->used + len)
            cap *= 2;
        char *na = realloc(in->arena, cap);
        if (!na)
            raw__die("out of memory", NULL);
        in->arena = na;
        in->arena_cap = cap;
    }
    memcpy(in->arena + in->used, p, len);
    size_t off = in->used;
    in->used += len;
    return off;
}

/* Parse + validate + encode every line (the untimed preparation). Any
 * rejected line fails the benchmark: the input must be the generator's. */
static void raw__load(const char *path, raw__input *in)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    sf_error err;
    sf_error_clear(&err);
    sf_parse_opts po;
    sf_parse_opts_init(&po);
    po.default_source = "inv-ingest";
    po.now_ms = sf_now_ms();
    sf_feed_reader *rd = NULL;
    sf_codec *codec = NULL;
    if (sf_feed_reader_new(f, &po, &rd, &err) || sf_codec_new(&codec, &err))
        raw__die(path, &err);
    for (;;) {
        sf_feed_item item;
        sf_status st = sf_feed_reader_next(rd, &item, &err);
        if (st == SF_ENOTFOUND)
            break;
        if (st)
            raw__die(path, &err);
        if (!item.ok) {
            fprintf(stderr, "raw_nats: %s:%" PRIu64 ": %s\n", path, item.line, item.error.msg);
            exit(1);
        }
        char subject[SF_SUBJECT_MAX];
        uint8_t data[SF_CODEC_EVENT_MAX];
        size_t len = 0;
        if (sf_event_subject(&item.event, subject, sizeof subject, &err) ||
            sf_codec_encode_event(codec, &item.event, data, sizeof data, &len, &err))
            raw__die(path, &err);
        if (in->n == in->cap) {
            in->cap = in->cap ? in->cap * 2 : 65536;
            raw__msg *nm = realloc(in->msgs, in->cap * sizeof *nm);
            if (!nm)
                raw__die("out of memory", NULL);
            in->msgs = nm;
        }
        raw__msg *m = &in->msgs[in->n++];
        m->subject_off = raw__arena_put(in, subject, strlen(subject) + 1);
        m->id_off = raw__arena_put(in, item.event.event_id, strlen(item.event.event_id) + 1);
        m->data_off = raw__arena_put(in, data, len);
        m->data_len = len;
    }
    sf_codec_free(codec);
    sf_feed_reader_free(rd);
    fclose(f);
}

static void raw__on_ack(void *closure, void *token, const sf_pub_result *res)
{
    (void)token;
    raw__acks *a = closure;
    if (res->status == SF_OK) {
        atomic_fetch_add(&a->stored, 1);
    } else if (res->status == SF_EDUP) {
        atomic_fetch_add(&a->duplicate, 1);
    } else {
        if (atomic_fetch_add(&a->failed, 1) == 0) {
            pthread_mutex_lock(&a->mu);
            snprintf(a->first_error, sizeof a->first_error, "%s (msg id %s): %s", res->subject,
                     res->msg_id ? res->msg_id : "-", res->error);
            pthread_mutex_unlock(&a->mu);
        }
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: raw_nats --file EVENTS.jsonl [--nats URL] [--window N] [--fetch N]\n"
                 "                [--watch NAME=PID]...\n"
                 "Times bare publish (Nats-Msg-Id, async window) and pull fetch + ack of every\n"
                 "event on INV_EVENTS/stock-applier, which must exist and be empty.\n"
                 "  --nats URL   default $INV_NATS_URL\n"
                 "  --window N   publishes in flight (default 4096)\n"
                 "  --fetch N    messages per fetch (default 1000)\n"
                 "  --watch NAME=PID  also report the CPU of that process tree per phase\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"file", required_argument, NULL, 'f'},
                                             {"nats", required_argument, NULL, 'u'},
                                             {"window", required_argument, NULL, 'w'},
                                             {"fetch", required_argument, NULL, 'b'},
                                             {"watch", required_argument, NULL, 'W'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    bench_watch watch[BENCH_WATCH_MAX];
    int nwatch = 0;
    const char *path = NULL, *url = getenv("INV_NATS_URL");
    long window = 4096, fetch = 1000;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'f': path = optarg; break;
        case 'u': url = optarg; break;
        case 'w': window = strtol(optarg, NULL, 10); break;
        case 'b': fetch = strtol(optarg, NULL, 10); break;
        case 'W':
            if (nwatch == BENCH_WATCH_MAX || !bench_watch_parse(optarg, &watch[nwatch++])) {
                fprintf(stderr, "raw_nats: --watch NAME=PID, at most %d\n", BENCH_WATCH_MAX);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!path || !url || !*url || window < 1 || window > 1000000 || fetch < 1 ||
        fetch > SF_FETCH_MAX) {
        usage(stderr);
        return 2;
    }

    raw__input in = {0};
    double t = bench_now();
    raw__load(path, &in);
    printf("raw_nats: %zu lines parsed and encoded in %.2f s (not timed)\n", in.n, bench_now() - t);

    sf_error err;
    sf_error_clear(&err);
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = url;
    bo.name = "bench-raw-nats";
    sf_broker *b = NULL;
    if (sf_broker_connect(&bo, &b, &err))
        raw__die("connect", &err);

    /* ---- publish ---- */
    raw__acks acks = {0};
    pthread_mutex_init(&acks.mu, NULL);
    sf_publisher_opts pubo;
    sf_publisher_opts_init(&pubo);
    pubo.max_inflight = (int)window;
    pubo.cb = raw__on_ack;
    pubo.closure = &acks;
    sf_publisher *pub = NULL;
    if (sf_publisher_new(b, &pubo, &pub, &err))
        raw__die("publisher", &err);
    char kv[1024] = "";
    bench_cpu c0, c1;
    bench_cpu_snap(watch, nwatch, &c0);
    double t0 = bench_now();
    for (size_t i = 0; i < in.n; i++) {
        const raw__msg *m = &in.msgs[i];
        if (sf_publisher_publish(pub, in.arena + m->subject_off, in.arena + m->id_off,
                                 in.arena + m->data_off, m->data_len, NULL, &err))
            raw__die("publish", &err);
    }
    if (sf_publisher_flush(pub, 60000, &err))
        raw__die("flush", &err);
    bench_cpu_snap(watch, nwatch, &c1);
    double publish_s = c1.wall - t0;
    sf_publisher_free(pub);
    uint64_t stored = atomic_load(&acks.stored), dup = atomic_load(&acks.duplicate);
    if (atomic_load(&acks.failed)) {
        fprintf(stderr, "raw_nats: %" PRIu64 " publishes failed, first: %s\n",
                (uint64_t)atomic_load(&acks.failed), acks.first_error);
        return 1;
    }
    printf("raw_nats: publish %zu lines (%" PRIu64 " stored, %" PRIu64
           " duplicate ids) in %.3f s = %.0f msg/s (window %ld)\n",
           in.n, stored, dup, publish_s, (double)in.n / publish_s, window);
    bench_cpu_report("raw_nats", "publish", watch, nwatch, &c0, &c1, kv, sizeof kv);

    /* ---- fetch + ack ---- */
    sf_sub *sub = NULL;
    sf_batch *bt = NULL;
    if (sf_broker_pull_subscribe(b, SF_STREAM_EVENTS, SF_CONSUMER_APPLIER, &sub, &err) ||
        sf_batch_new(&bt, &err))
        raw__die("subscribe", &err);
    uint64_t got = 0, fetches = 0;
    bench_cpu_snap(watch, nwatch, &c0);
    t0 = bench_now();
    while (got < stored) {
        sf_status st = sf_sub_fetch(sub, (int)fetch, 5000, bt, &err);
        if (st)
            raw__die("fetch (after all messages were stored)", &err);
        size_t n = sf_batch_count(bt);
        fetches++;
        for (size_t i = 0; i < n; i++) {
            st = (got + i + 1 == stored) ? sf_batch_ack_sync(bt, i, &err)
                                         : sf_batch_ack(bt, i, &err);
            if (st)
                raw__die("ack", &err);
        }
        got += n;
    }
    bench_cpu_snap(watch, nwatch, &c1);
    double fetch_s = c1.wall - t0;
    sf_batch_destroy(bt);
    sf_sub_free(sub);
    printf("raw_nats: fetch+ack %" PRIu64 " messages in %" PRIu64 " fetches of up to %ld in %.3f s"
           " = %.0f msg/s\n",
           got, fetches, fetch, fetch_s, (double)got / fetch_s);
    bench_cpu_report("raw_nats", "fetch", watch, nwatch, &c0, &c1, kv, sizeof kv);
    printf("raw_nats: combined = %" PRIu64 " distinct / (publish %.3f s + fetch %.3f s) = %.0f "
           "events/s\n",
           stored, publish_s, fetch_s, (double)stored / (publish_s + fetch_s));
    printf("RESULT raw_nats lines=%zu stored=%" PRIu64 " duplicate=%" PRIu64
           " publish_s=%.6f fetch_s=%.6f%s\n",
           in.n, stored, dup, publish_s, fetch_s, kv);

    sf_broker_close(b);
    sf_broker_library_cleanup();
    pthread_mutex_destroy(&acks.mu);
    free(in.msgs);
    free(in.arena);
    return 0;
}
