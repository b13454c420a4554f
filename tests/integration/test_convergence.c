/*
 * Order-independent convergence of the PostgreSQL apply (sf_apply_stage):
 * for 20 seeds, a generated workload applied in order, shuffled, and
 * shuffled with 30% extra duplicates, in batches of different sizes, gives
 * exactly the positions and reservations of the model of its SET of events.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "ledger.h"
#include "stockcheck.h"

TestSuite(convergence, .init = fx_reset, .fini = fx_teardown, .timeout = 600);

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void shuffle(sf_event *v, size_t n, uint64_t *s)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rng_next(s) % i);
        sf_event t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

static void apply_in_batches(sf_ledger *lg, const sf_event *v, size_t n, size_t batch)
{
    sf_error err;
    for (size_t i = 0; i < n; i += batch) {
        size_t k = n - i < batch ? n - i : batch, inserted;
        cr_assert(sf_ledger_apply(lg, v + i, NULL, k, &inserted, &err) == SF_OK, "%s", err.msg);
    }
}

static void reset_tables(void)
{
    fx_exec("TRUNCATE ledger, positions, reservations, dirty");
}

Test(convergence, twenty_seeds_in_any_order_with_duplicates)
{
    sf_ledger *lg = NULL;
    sf_error err;
    cr_assert(sf_ledger_open(fx_env("INV_PG_DSN"), &lg, &err) == SF_OK, "%s", err.msg);
    char path[512];
    sc_tmp("conv.jsonl", path, sizeof path);
    for (unsigned seed = 1; seed <= 20; seed++) {
        sc_gen(path, seed, 3000, 12, 3);
        sf_event *evs = NULL;
        size_t n = sc_load_events(path, &evs);
        sf_model *m = sc_model_of(evs, n);
        uint64_t s = seed;

        reset_tables();
        apply_in_batches(lg, evs, n, 500);
        sc_assert_matches(m);

        reset_tables();
        shuffle(evs, n, &s);
        apply_in_batches(lg, evs, n, 137);
        sc_assert_matches(m);

        reset_tables();
        size_t extra = n * 3 / 10;
        sf_event *dup = malloc((n + extra) * sizeof *dup);
        memcpy(dup, evs, n * sizeof *evs);
        for (size_t i = 0; i < extra; i++)
            dup[n + i] = evs[rng_next(&s) % n];
        shuffle(dup, n + extra, &s);
        apply_in_batches(lg, dup, n + extra, 61);
        sc_assert_matches(m);

        free(dup);
        sf_model_free(m);
        free(evs);
    }
    sf_ledger_close(lg);
}

/* Two appliers on overlapping keys at once: no deadlock, same result. */
Test(convergence, concurrent_appliers_do_not_deadlock)
{
    char path[512];
    sc_tmp("conc.jsonl", path, sizeof path);
    sc_gen(path, 99, 20000, 5, 2);
    sf_event *evs = NULL;
    size_t n = sc_load_events(path, &evs);
    sf_model *m = sc_model_of(evs, n);
    pid_t child = fork();
    cr_assert(child >= 0);
    sf_ledger *lg = NULL;
    sf_error err;
    if (child == 0) { /* the second applier: every batch, backwards */
        if (sf_ledger_open(fx_env("INV_PG_DSN"), &lg, &err) != SF_OK)
            _exit(2);
        for (size_t b = (n + 249) / 250; b-- > 0;) {
            size_t i = b * 250, k = n - i < 250 ? n - i : 250, inserted;
            if (sf_ledger_apply(lg, evs + i, NULL, k, &inserted, &err) != SF_OK)
                _exit(3);
        }
        sf_ledger_close(lg);
        _exit(0);
    }
    cr_assert(sf_ledger_open(fx_env("INV_PG_DSN"), &lg, &err) == SF_OK, "%s", err.msg);
    for (size_t i = 0; i < n; i += 250) { /* every batch, forwards */
        size_t k = n - i < 250 ? n - i : 250, inserted;
        cr_assert(sf_ledger_apply(lg, evs + i, NULL, k, &inserted, &err) == SF_OK, "%s", err.msg);
    }
    int status = 0;
    cr_assert(waitpid(child, &status, 0) == child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "second applier failed: %d", status);
    sc_assert_matches(m);
    sf_ledger_close(lg);
    sf_model_free(m);
    free(evs);
}
