/*
 * Consumers are stateless and may run N at once or die at any moment:
 * two in parallel give what one gives, and a kill -9 mid-run followed by a
 * restart loses nothing and doubles nothing.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "fixture.h"
#include "stockcheck.h"

TestSuite(consumers, .init = fx_reset, .fini = fx_teardown, .timeout = 600);

static sf_model *ingest_workload(unsigned seed, unsigned events)
{
    char path[512], out[8192];
    sc_tmp("work.jsonl", path, sizeof path);
    sc_gen(path, seed, events, 200, 4);
    sc_ingest(path, out, sizeof out);
    sf_event *evs = NULL;
    size_t n = sc_load_events(path, &evs);
    sf_model *m = sc_model_of(evs, n);
    free(evs);
    return m;
}

Test(consumers, two_in_parallel_match_one)
{
    sf_model *m = ingest_workload(7, 30000);
    sc_drain(2);
    sc_assert_matches(m);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger WHERE stream_seq IS NULL"), 0);
    sf_model_free(m);
}

static bool ledger_at_least(void *arg)
{
    return fx_query_i64("SELECT count(*) FROM ledger") >= *(int64_t *)arg;
}

Test(consumers, kill9_mid_run_loses_and_doubles_nothing)
{
    sf_model *m = ingest_workload(11, 60000);
    const char *argv[] = {"inv-consumer", "--batch", "500", NULL};
    pid_t pid = fx_spawn(argv, NULL);
    int64_t some = 5000;
    cr_assert(fx_wait_until(ledger_at_least, &some, 60000), "consumer made no progress");
    int rc = fx_stop(pid, SIGKILL, 10000);
    cr_assert_eq(rc, 128 + SIGKILL);
    int64_t at_kill = fx_query_i64("SELECT count(*) FROM ledger");
    sf_model_stats st;
    sf_model_stats_get(m, &st);
    cr_assert(at_kill < (int64_t)st.events, "killed after the end (%lld); test is void",
              (long long)at_kill);
    /* The killed consumer's unacked batch is redelivered after the ack wait. */
    sc_drain(1);
    sc_assert_matches(m);
    sf_model_free(m);
}

Test(consumers, sigterm_finishes_the_batch_and_exits_zero)
{
    sf_model *m = ingest_workload(5, 20000);
    const char *argv[] = {"inv-consumer", NULL};
    pid_t pid = fx_spawn(argv, NULL);
    int64_t some = 1000;
    cr_assert(fx_wait_until(ledger_at_least, &some, 60000));
    cr_assert_eq(fx_stop(pid, SIGTERM, 30000), 0);
    sc_drain(1);
    sc_assert_matches(m);
    sf_model_free(m);
}
