/*
 * raw_apply: the database's raw limit for `make bench` (bench/pipeline.sh).
 *
 * The consumer's own apply function (common/ledger.h sf_ledger_apply: COPY
 * to a temp stage, sf_apply_stage(), COMMIT with synchronous_commit as the
 * server has it) on pre-parsed events, no broker. It reads a JSON-lines
 * file, parses and validates every line and keeps the first occurrence of
 * each event_id in file order (not timed): exactly what INV_EVENTS holds
 * after the broker's Nats-Msg-Id dedupe, so this is the work the consumers
 * do. Then --threads T threads, each with its own sf_ledger (connection),
 * take batches of --batch events from one shared cursor, as pull consumers
 * sharing a durable take fetches: slices are disjoint, keys overlap as in
 * the pipeline. The database must be freshly set up (`invctl setup`).
 *
 * The CPU of the timed phase is reported too (bench_proc.h; --watch
 * NAME=PID adds a process tree, e.g. the postmaster with its backends).
 * The last line is machine-readable for the script:
 *   RESULT raw_apply threads=.. batch=.. lines=.. distinct=.. inserted=.. seconds=.. <cpu>
 */
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_proc.h"
#include "event_parse.h"
#include "ledger.h"

#define RAW_MAX_THREADS 64

typedef struct raw__shared {
    const sf_event *evs;
    const uint64_t *seqs;
    size_t n, batch;
    atomic_size_t next; /* next batch start */
    double *lat;        /* seconds, per batch number (from / batch) */
    pthread_barrier_t start;
} raw__shared;

typedef struct raw__worker {
    raw__shared *sh;
    const char *dsn;
    sf_ledger *lg;
    size_t inserted, batches;
    double done_at;
    sf_error err;
    int failed;
} raw__worker;

static void raw__die(const char *what, const char *msg)
{
    fprintf(stderr, "raw_apply: %s: %s\n", what, msg);
    exit(1);
}

/* FNV-1a over the event id; the set holds indexes + 1 (0 = empty). */
static uint64_t raw__hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h;
}

/* Parse the file; keep first occurrences. *lines gets every line read. */
static sf_event *raw__load(const char *path, size_t *n_out, size_t *lines)
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
    if (sf_feed_reader_new(f, &po, &rd, &err))
        raw__die(path, err.msg);
    size_t cap = 65536, n = 0, set_cap = 1 << 20;
    sf_event *evs = malloc(cap * sizeof *evs);
    size_t *set = calloc(set_cap, sizeof *set);
    if (!evs || !set)
        raw__die("load", "out of memory");
    *lines = 0;
    for (;;) {
        sf_feed_item item;
        sf_status st = sf_feed_reader_next(rd, &item, &err);
        if (st == SF_ENOTFOUND)
            break;
        if (st)
            raw__die(path, err.msg);
        if (!item.ok) {
            fprintf(stderr, "raw_apply: %s:%" PRIu64 ": %s\n", path, item.line, item.error.msg);
            exit(1);
        }
        (*lines)++;
        if ((n + 1) * 2 > set_cap) {
            size_t ncap = set_cap * 2;
            size_t *ns = calloc(ncap, sizeof *ns);
            if (!ns)
                raw__die("load", "out of memory");
            for (size_t i = 0; i < set_cap; i++) {
                if (!set[i])
                    continue;
                size_t j = raw__hash(evs[set[i] - 1].event_id) & (ncap - 1);
                while (ns[j])
                    j = (j + 1) & (ncap - 1);
                ns[j] = set[i];
            }
            free(set);
            set = ns;
            set_cap = ncap;
        }
        size_t j = raw__hash(item.event.event_id) & (set_cap - 1);
        int seen = 0;
        while (set[j]) {
            if (strcmp(evs[set[j] - 1].event_id, item.event.event_id) == 0) {
                seen = 1;
                break;
            }
            j = (j + 1) & (set_cap - 1);
        }
        if (seen)
            continue;
        if (n == cap) {
            cap *= 2;
            sf_event *ne = realloc(evs, cap * sizeof *ne);
            if (!ne)
                raw__die("load", "out of memory");
            evs = ne;
        }
        evs[n] = item.event;
        set[j] = ++n;
    }
    free(set);
    sf_feed_reader_free(rd);
    fclose(f);
    *n_out = n;
    return evs;
}

static void *raw__work(void *arg)
{
    raw__worker *w = arg;
    raw__shared *sh = w->sh;
    pthread_barrier_wait(&sh->start);
    for (;;) {
        size_t from = atomic_fetch_add(&sh->next, sh->batch);
        if (from >= sh->n || w->failed)
            break;
        size_t count = sh->n - from < sh->batch ? sh->n - from : sh->batch;
        size_t ins = 0;
        double t0 = bench_now();
        if (sf_ledger_apply(w->lg, sh->evs + from, sh->seqs + from, count, &ins, &w->err)) {
            w->failed = 1;
            break;
        }
        sh->lat[from / sh->batch] = bench_now() - t0;
        w->inserted += ins;
        w->batches++;
    }
    w->done_at = bench_now();
    return NULL;
}

static int raw__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: raw_apply --file EVENTS.jsonl [--pg DSN] [--batch N] [--threads T]\n"
                 "                 [--watch NAME=PID]...\n"
                 "Times sf_ledger_apply over batches of N (default 1000) distinct events with\n"
                 "T connections in parallel (default 1); the database must be freshly set up.\n"
                 "  --pg DSN     default $INV_PG_DSN\n"
                 "  --watch NAME=PID  also report the CPU of that process tree\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"file", required_argument, NULL, 'f'},
                                             {"pg", required_argument, NULL, 'p'},
                                             {"batch", required_argument, NULL, 'b'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"watch", required_argument, NULL, 'W'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    bench_watch watch[BENCH_WATCH_MAX];
    int nwatch = 0;
    const char *path = NULL, *dsn = getenv("INV_PG_DSN");
    long batch = 1000, threads = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'f': path = optarg; break;
        case 'p': dsn = optarg; break;
        case 'b': batch = strtol(optarg, NULL, 10); break;
        case 't': threads = strtol(optarg, NULL, 10); break;
        case 'W':
            if (nwatch == BENCH_WATCH_MAX || !bench_watch_parse(optarg, &watch[nwatch++])) {
                fprintf(stderr, "raw_apply: --watch NAME=PID, at most %d\n", BENCH_WATCH_MAX);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!path || !dsn || !*dsn || batch < 1 || batch > 1000000 || threads < 1 ||
        threads > RAW_MAX_THREADS) {
        usage(stderr);
        return 2;
    }

    size_t n = 0, lines = 0;
    double t = bench_now();
    sf_event *evs = raw__load(path, &n, &lines);
    uint64_t *seqs = malloc((n ? n : 1) * sizeof *seqs);
    if (!seqs)
        raw__die("load", "out of memory");
    for (size_t i = 0; i < n; i++)
        seqs[i] = i + 1; /* the stream sequence the broker would give it */
    printf("raw_apply: %zu lines, %zu distinct events parsed in %.2f s (not timed)\n", lines, n,
           bench_now() - t);

    size_t nbatches = (n + (size_t)batch - 1) / (size_t)batch;
    raw__shared sh = {.evs = evs, .seqs = seqs, .n = n, .batch = (size_t)batch};
    sh.lat = calloc(nbatches ? nbatches : 1, sizeof *sh.lat);
    double *sorted = malloc((nbatches ? nbatches : 1) * sizeof *sorted);
    if (!sh.lat || !sorted)
        raw__die("load", "out of memory");
    atomic_init(&sh.next, 0);
    pthread_barrier_init(&sh.start, NULL, (unsigned)threads + 1);
    raw__worker w[RAW_MAX_THREADS];
    pthread_t tid[RAW_MAX_THREADS];
    memset(w, 0, sizeof w);
    for (long i = 0; i < threads; i++) {
        w[i].sh = &sh;
        w[i].dsn = dsn;
        if (sf_ledger_open(dsn, &w[i].lg, &w[i].err))
            raw__die("connect", w[i].err.msg);
    }
    PGresult *res = PQexec((PGconn *)sf_ledger_conn(w[0].lg), "SHOW synchronous_commit");
    printf("raw_apply: synchronous_commit = %s\n",
           PQresultStatus(res) == PGRES_TUPLES_OK ? PQgetvalue(res, 0, 0) : "?");
    PQclear(res);
    for (long i = 0; i < threads; i++)
        if (pthread_create(&tid[i], NULL, raw__work, &w[i]) != 0)
            raw__die("thread", "pthread_create failed");
    bench_cpu c0, c1;
    bench_cpu_snap(watch, nwatch, &c0);
    pthread_barrier_wait(&sh.start);
    double t0 = bench_now(), t1 = t0;
    size_t inserted = 0;
    int failed = 0;
    for (long i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        if (w[i].failed) {
            fprintf(stderr, "raw_apply: thread %ld: %s\n", i, w[i].err.msg);
            failed = 1;
        }
        if (w[i].done_at > t1)
            t1 = w[i].done_at;
        inserted += w[i].inserted;
    }
    bench_cpu_snap(watch, nwatch, &c1);
    if (failed)
        return 1;
    double secs = t1 - t0;
    for (long i = 0; i < threads; i++)
        sf_ledger_close(w[i].lg);
    /* Latency: percentiles, and the first and last tenth of the run (batch
     * order is time order), which shows whether the cost per batch grows
     * with the tables. */
    memcpy(sorted, sh.lat, nbatches * sizeof *sorted);
    qsort(sorted, nbatches, sizeof *sorted, raw__cmp_double);
    double p50 = nbatches ? sorted[nbatches / 2] : 0;
    double p99 = nbatches ? sorted[(nbatches * 99) / 100] : 0;
    size_t tenth = nbatches >= 10 ? nbatches / 10 : 1;
    double first = 0, last = 0;
    for (size_t i = 0; i < tenth && i < nbatches; i++) {
        first += sh.lat[i] / (double)tenth;
        last += sh.lat[nbatches - 1 - i] / (double)tenth;
    }
    printf("raw_apply: %zu events (%zu inserted) in %zu batches of up to %ld on %ld "
           "connection(s) in %.3f s = %.0f events/s\n",
           n, inserted, nbatches, batch, threads, secs, (double)n / secs);
    printf("raw_apply: batch latency p50 %.1f ms, p99 %.1f ms; mean of the first tenth %.1f ms, "
           "of the last tenth %.1f ms\n",
           p50 * 1e3, p99 * 1e3, first * 1e3, last * 1e3);
    char kv[1024] = "";
    bench_cpu_report("raw_apply", "apply", watch, nwatch, &c0, &c1, kv, sizeof kv);
    printf("RESULT raw_apply threads=%ld batch=%ld lines=%zu distinct=%zu inserted=%zu "
           "seconds=%.6f p50_ms=%.2f p99_ms=%.2f first_ms=%.2f last_ms=%.2f%s\n",
           threads, batch, lines, n, inserted, secs, p50 * 1e3, p99 * 1e3, first * 1e3, last * 1e3,
           kv);
    if (inserted != n) {
        fprintf(stderr, "raw_apply: %zu inserted of %zu distinct: the database was not fresh\n",
                inserted, n);
        return 1;
    }
    pthread_barrier_destroy(&sh.start);
    free(sh.lat);
    free(sorted);
    free(seqs);
    free(evs);
    return 0;
}
