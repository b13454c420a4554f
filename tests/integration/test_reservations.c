/*
 * Reservations per order never leak and never go negative (issue 9, point
 * 1): for 20 seeds, random order flows — several RESERVEs, partial and
 * over-releases, releases before their reserve, sales with and without the
 * order's ref, the empty-ref pool, duplicates — applied through the
 * consumer's own apply (sf_ledger_apply) in order, shuffled and shuffled
 * with duplicates, in batches of random sizes, give exactly the reserved of
 * a direct recomputation from the set of events, per order and per
 * position; reserved is never negative after any batch.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "ledger.h"
#include "stockcheck.h"

TestSuite(reservations, .init = fx_reset, .fini = fx_teardown, .timeout = 600);

enum { ORDERS = 150, SKUS = 3, LOCS = 2, MAX_EV = ORDERS * 12 + 64 };

static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int64_t between(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng(s) % (uint64_t)(hi - lo + 1));
}

static void add(sf_event *v, size_t *n, sf_kind kind, int sku, int loc, int64_t qty, int64_t at,
                const char *ref)
{
    sf_event *e = &v[(*n)++];
    sf_event_init(e);
    e->kind = kind;
    snprintf(e->sku, sizeof e->sku, "R-SKU-%d", sku);
    snprintf(e->location, sizeof e->location, "R-LOC-%d", loc);
    e->qty = qty;
    e->occurred_at = at;
    snprintf(e->source, sizeof e->source, "flows");
    if (ref) {
        e->has_ref = true;
        snprintf(e->ref, sizeof e->ref, "%s", ref);
    }
    snprintf(e->event_id, sizeof e->event_id, "f-%zu", *n);
}

/* The flows of one seed. */
static size_t flows(uint64_t seed, sf_event *v)
{
    uint64_t s = seed * 7919;
    size_t n = 0;
    const int64_t t0 = INT64_C(1795161600000);
    for (int i = 0; i < ORDERS; i++) {
        char ref[32];
        snprintf(ref, sizeof ref, "ord-%" PRIu64 "-%d", seed, i);
        const char *r = between(&s, 0, 9) == 0 ? NULL : ref; /* 10 %: the empty-ref pool */
        int sku = (int)between(&s, 0, SKUS - 1), loc = (int)between(&s, 0, LOCS - 1);
        int64_t at = t0 + between(&s, 0, 86400000), held = 0;
        for (int k = (int)between(&s, 1, 3); k > 0; k--) {
            int64_t q = between(&s, 1, 5);
            held += q;
            add(v, &n, SF_KIND_RESERVE, sku, loc, q, at + between(&s, 0, 3600000), r);
        }
        int64_t p = between(&s, 0, 99);
        if (p < 40) /* partial release */
            add(v, &n, SF_KIND_RELEASE, sku, loc, between(&s, 1, held), at + 7200000, r);
        else if (p < 60) /* over-release */
            add(v, &n, SF_KIND_RELEASE, sku, loc, held + between(&s, 1, 5), at + 7200000, r);
        else if (p < 75) /* release before its reserve */
            add(v, &n, SF_KIND_RELEASE, sku, loc, between(&s, 1, 4), at - 60000, r);
        if (between(&s, 0, 1) && r) /* the order sells: consumes its reservation */
            add(v, &n, SF_KIND_SALE, sku, loc, between(&s, 1, 4), at + 5400000, r);
        if (between(&s, 0, 2) == 0) /* a walk-in sale: touches no reservation */
            add(v, &n, SF_KIND_SALE, sku, loc, between(&s, 1, 2), at + 1000, NULL);
    }
    for (int sku = 0; sku < SKUS; sku++)
        for (int loc = 0; loc < LOCS; loc++)
            add(v, &n, SF_KIND_RECEIPT, sku, loc, 500, t0 - 1000, NULL);
    return n;
}

static void shuffle(sf_event *v, size_t n, uint64_t *s)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rng(s) % i);
        sf_event t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* Apply in random batch sizes; reserved never negative after any batch. */
static void apply(sf_ledger *lg, const sf_event *v, size_t n, uint64_t *s)
{
    sf_error err;
    for (size_t i = 0; i < n;) {
        size_t k = (size_t)between(s, 1, 97), inserted;
        if (k > n - i)
            k = n - i;
        cr_assert(sf_ledger_apply(lg, v + i, NULL, k, &inserted, &err) == SF_OK, "%s", err.msg);
        i += k;
        cr_assert_eq(fx_query_i64("SELECT count(*) FROM positions WHERE reserved < 0"), 0);
    }
}

/* Σ over refs of max(0, Σ RESERVE − Σ RELEASE − Σ SALE-with-ref), straight
 * from the distinct events, against positions and reservations. */
static void check(const sf_event *all, size_t n_all)
{
    sf_event *v = malloc(n_all * sizeof *v);
    cr_assert(v);
    size_t n = 0;
    for (size_t i = 0; i < n_all; i++) { /* the SET: each event_id once */
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = !strcmp(v[j].event_id, all[i].event_id);
        if (!dup)
            v[n++] = all[i];
    }
    for (int sku = 0; sku < SKUS; sku++)
        for (int loc = 0; loc < LOCS; loc++) {
            char s[32], l[32];
            snprintf(s, sizeof s, "R-SKU-%d", sku);
            snprintf(l, sizeof l, "R-LOC-%d", loc);
            int64_t total = 0;
            for (size_t i = 0; i < n; i++) { /* each ref once: at its first event */
                const sf_event *e = &v[i];
                if (strcmp(e->sku, s) || strcmp(e->location, l) ||
                    !(e->kind == SF_KIND_RESERVE || e->kind == SF_KIND_RELEASE ||
                      (e->kind == SF_KIND_SALE && e->has_ref)))
                    continue;
                const char *ref = e->has_ref ? e->ref : "";
                bool seen = false;
                for (size_t j = 0; j < i && !seen; j++)
                    seen = !strcmp(v[j].sku, s) && !strcmp(v[j].location, l) &&
                           (v[j].kind == SF_KIND_RESERVE || v[j].kind == SF_KIND_RELEASE ||
                            (v[j].kind == SF_KIND_SALE && v[j].has_ref)) &&
                           !strcmp(v[j].has_ref ? v[j].ref : "", ref);
                if (seen)
                    continue;
                int64_t sum = 0;
                for (size_t j = i; j < n; j++) {
                    const sf_event *f = &v[j];
                    if (strcmp(f->sku, s) || strcmp(f->location, l) ||
                        strcmp(f->has_ref ? f->ref : "", ref))
                        continue;
                    if (f->kind == SF_KIND_RESERVE)
                        sum += f->qty;
                    else if (f->kind == SF_KIND_RELEASE || (f->kind == SF_KIND_SALE && f->has_ref))
                        sum -= f->qty;
                }
                int64_t outstanding = sum > 0 ? sum : 0;
                total += outstanding;
                char sql[512];
                snprintf(sql, sizeof sql,
                         "SELECT outstanding FROM reservations WHERE ref = '%s' AND sku = '%s'"
                         " AND location = '%s'",
                         ref, s, l);
                cr_assert_eq(fx_query_i64(sql), outstanding, "%s %s %s", ref, s, l);
            }
            char sql[256];
            snprintf(sql, sizeof sql,
                     "SELECT reserved FROM positions WHERE sku = '%s' AND location = '%s'", s, l);
            cr_assert_eq(fx_query_i64(sql), total, "%s %s", s, l);
        }
    free(v);
}

Test(reservations, twenty_seeds_of_order_flows_never_leak_or_go_negative)
{
    sf_ledger *lg = NULL;
    sf_error err;
    cr_assert(sf_ledger_open(fx_env("INV_PG_DSN"), &lg, &err) == SF_OK, "%s", err.msg);
    sf_event *v = malloc(MAX_EV * 2 * sizeof *v);
    cr_assert(v);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        size_t n = flows(seed, v);
        uint64_t s = seed;
        sf_model *m = sc_model_of(v, n);
        for (int pass = 0; pass < 3; pass++) {
            fx_exec("TRUNCATE ledger, positions, reservations, dirty");
            size_t total = n;
            if (pass >= 1)
                shuffle(v, n, &s);
            if (pass == 2) { /* 30 % duplicates on top */
                for (size_t i = 0; i < n * 3 / 10; i++)
                    v[total++] = v[rng(&s) % n];
                shuffle(v, total, &s);
            }
            apply(lg, v, total, &s);
            check(v, total);
            sc_assert_matches(m);
        }
        sf_model_free(m);
    }
    free(v);
    sf_ledger_close(lg);
}
