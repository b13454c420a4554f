/*
 * Backpressure instead of unbounded buffering (issue 7, point 3): while
 * JetStream is down, inv-ingest stops reading its file (its window of
 * unacknowledged events is full) and resumes by itself; while PostgreSQL is
 * down, inv-consumer keeps its batch, fetches nothing more, sidelines
 * nothing, and resumes by itself. Each outage is held under load for
 * OUTAGE_S seconds (default 8 here; make test-fault runs 30) while the
 * process's resident memory is sampled; afterwards every event arrives,
 * exactly once.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "stockcheck.h"

TestSuite(backpressure, .init = fx_reset, .fini = fx_teardown, .timeout = 600);

static int outage_s(void)
{
    const char *v = getenv("OUTAGE_S");
    int s = v ? atoi(v) : 8;
    return s > 0 && s <= 600 ? s : 8;
}

/* Resident memory of pid in kB (0 if it is gone). */
static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = atol(line + 6);
    fclose(f);
    return kb;
}

/* Sample pid's RSS every 250 ms for secs seconds; returns the maximum. */
static long hold(pid_t pid, int secs)
{
    long max = 0;
    for (int i = 0; i < secs * 4; i++) {
        long kb = rss_kb(pid);
        if (kb > max)
            max = kb;
        usleep(250 * 1000);
    }
    return max;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const sf_event *)a)->event_id, ((const sf_event *)b)->event_id);
}

/* The model of the file's events, and how many distinct ids it has (the
 * generator re-sends some lines). */
static uint64_t distinct_events(const char *path, sf_model **model)
{
    sf_event *evs = NULL;
    size_t n = sc_load_events(path, &evs);
    *model = sc_model_of(evs, n);
    qsort(evs, n, sizeof *evs, by_id);
    uint64_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        distinct += i == 0 || strcmp(evs[i].event_id, evs[i - 1].event_id) != 0;
    free(evs);
    return distinct;
}

Test(backpressure, jetstream_down_ingest_holds_and_resumes)
{
    char path[512], log[512];
    sc_tmp("bp-ingest.jsonl", path, sizeof path);
    sc_tmp("bp-ingest.log", log, sizeof log);
    sc_gen(path, 31, 150000, 2000, 5);
    sf_model *m = NULL;
    uint64_t distinct = distinct_events(path, &m);
    const char *argv[] = {"inv-ingest", "--file", path, "--retry-for", "600", NULL};
    pid_t pid = fx_spawn(argv, log);
    usleep(700 * 1000);
    long before = rss_kb(pid);
    cr_assert(before > 0, "inv-ingest ended before the outage: make the file longer");
    fx_stack("nats-stop");
    long peak = hold(pid, outage_s());
    cr_assert(rss_kb(pid) > 0, "inv-ingest gave up during the outage");
    fx_stack("nats-start");
    cr_assert_eq(fx_stop(pid, 0, 300000), 0, "inv-ingest failed after the outage (see %s)", log);
    /* Bounded: the window (4096 events of ~0.6 kB) plus slack, not the file. */
    cr_assert(peak - before < 64 * 1024, "RSS grew from %ld to %ld kB during the outage", before,
              peak);
    sc_drain(2);
    cr_assert_eq((uint64_t)fx_query_i64("SELECT count(*) FROM ledger"), distinct);
    sc_assert_matches(m);
    sf_model_free(m);
}

Test(backpressure, postgres_down_consumer_holds_and_resumes)
{
    char path[512], out[8192], log[512];
    sc_tmp("bp-consume.jsonl", path, sizeof path);
    sc_tmp("bp-consumer.log", log, sizeof log);
    sc_gen(path, 32, 60000, 2000, 5);
    sf_model *m = NULL;
    uint64_t distinct = distinct_events(path, &m);
    sc_ingest(path, out, sizeof out);
    const char *argv[] = {"inv-consumer", NULL};
    pid_t pid = fx_spawn(argv, log);
    usleep(300 * 1000);
    fx_stack("pg-stop immediate");
    long before = rss_kb(pid);
    long peak = hold(pid, outage_s());
    cr_assert(rss_kb(pid) > 0, "inv-consumer exited while PostgreSQL was down");
    fx_stack("pg-start");
    cr_assert(peak - before < 64 * 1024, "RSS grew from %ld to %ld kB during the outage", before,
              peak);
    cr_assert_eq(fx_stop(pid, SIGTERM, 60000), 0);
    sc_drain(1);
    cr_assert_eq((uint64_t)fx_query_i64("SELECT count(*) FROM ledger"), distinct);
    sc_assert_matches(m);
    sf_model_free(m);
    /* Nothing was sidelined for an outage. */
    const char *st[] = {"invctl", "status", "--json", NULL};
    cr_assert_eq(fx_run(st, NULL, out, sizeof out, 30000), 0, "%s", out);
    cr_assert(strstr(out, "\"dlq\": 0") || strstr(out, "\"dlq\":0"), "%s", out);
}
