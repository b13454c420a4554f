/*
 * test_stock_model: DESIGN.md "Stock semantics" on the in-memory oracle:
 * each kind's delta, COUNT with earlier, equal and later deltas and ties,
 * reservations (partial and over release, release before reserve, sales
 * with and without ref, the empty-ref pool), expiry, duplicates, ordered
 * iteration, and the property that shuffled and duplicated streams give
 * the same positions.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "event_parse.h"
#include "leak_guard.h"
#include "stock_model.h"
#include "workload.h"

static sf_event mk(sf_kind kind, const char *id, const char *sku, const char *loc, int64_t qty,
                   int64_t at)
{
    sf_event ev;
    sf_event_init(&ev);
    ev.kind = kind;
    snprintf(ev.event_id, sizeof ev.event_id, "%s", id);
    snprintf(ev.sku, sizeof ev.sku, "%s", sku);
    snprintf(ev.location, sizeof ev.location, "%s", loc);
    ev.qty = qty;
    ev.occurred_at = at;
    snprintf(ev.source, sizeof ev.source, "test");
    return ev;
}

static sf_event with_ref(sf_event ev, const char *ref)
{
    ev.has_ref = true;
    snprintf(ev.ref, sizeof ev.ref, "%s", ref);
    return ev;
}

static sf_event with_cond(sf_event ev, sf_condition c)
{
    ev.has_condition = true;
    ev.condition = c;
    return ev;
}

static sf_event with_exp(sf_event ev, int64_t at)
{
    ev.has_expires_at = true;
    ev.expires_at = at;
    return ev;
}

static sf_model *model(void)
{
    sf_model *m = NULL;
    sf_error err;
    cr_assert(sf_model_new(&m, &err) == SF_OK && m);
    return m;
}

static void add(sf_model *m, sf_event ev)
{
    sf_error err;
    bool dup = true;
    cr_assert(sf_model_add(m, &ev, &dup, &err) == SF_OK, "%s", err.msg);
    cr_assert(!dup, "%s reported as duplicate", ev.event_id);
}

static sf_position pos(const sf_model *m, const char *sku, const char *loc)
{
    sf_position p;
    cr_assert(sf_model_position(m, sku, loc, &p), "no position %s/%s", sku, loc);
    return p;
}

static sf_reservation rsv(const sf_model *m, const char *ref, const char *sku, const char *loc)
{
    sf_reservation r;
    cr_assert(sf_model_reservation(m, ref, sku, loc, &r), "no reservation %s/%s/%s", ref, sku, loc);
    return r;
}

LEAK_TEST(stock_model, deltas_per_kind)
{
    sf_model *m = model();
    add(m, mk(SF_KIND_RECEIPT, "e1", "A", "L", 10, 100));
    sf_position p = pos(m, "A", "L");
    cr_assert(p.on_hand == 10 && p.inbound == -10 && p.inbound_floored == 0);
    add(m, mk(SF_KIND_ASN, "e2", "A", "L", 25, 100));
    p = pos(m, "A", "L");
    cr_assert(p.inbound == 15 && p.inbound_floored == 15 && p.on_hand == 10);
    add(m, mk(SF_KIND_SALE, "e3", "A", "L", 3, 100));
    cr_assert(pos(m, "A", "L").on_hand == 7);
    add(m, mk(SF_KIND_RETURN, "e4", "A", "L", 2, 100));
    cr_assert(pos(m, "A", "L").on_hand == 9, "a RETURN without condition is RESELLABLE");
    add(m, with_cond(mk(SF_KIND_RETURN, "e5", "A", "L", 1, 100), SF_COND_RESELLABLE));
    cr_assert(pos(m, "A", "L").on_hand == 10);
    add(m, with_cond(mk(SF_KIND_RETURN, "e6", "A", "L", 4, 100), SF_COND_DAMAGED));
    p = pos(m, "A", "L");
    cr_assert(p.on_hand == 10 && p.damaged == 4);
    add(m, mk(SF_KIND_ADJUST, "e7", "A", "L", -6, 100));
    cr_assert(pos(m, "A", "L").on_hand == 4);
    add(m, mk(SF_KIND_ADJUST, "e8", "A", "L", 3, 100));
    cr_assert(pos(m, "A", "L").on_hand == 7);
    add(m, mk(SF_KIND_TRANSFER_OUT, "e9", "A", "L", 9, 100));
    add(m, mk(SF_KIND_TRANSFER_IN, "e10", "A", "M", 9, 100));
    p = pos(m, "A", "L");
    cr_assert(p.on_hand == -2, "negative on_hand is kept: %lld", (long long)p.on_hand);
    cr_assert(p.reserved == 0 && p.inbound == 15 && p.damaged == 4 && !p.has_count);
    cr_assert(p.count_event_id == NULL);
    p = pos(m, "A", "M");
    cr_assert(p.on_hand == 9 && p.inbound == 0 && p.damaged == 0);
    /* RESERVE and RELEASE touch reservations only */
    add(m, with_ref(mk(SF_KIND_RESERVE, "e11", "A", "L", 2, 100), "o"));
    add(m, with_ref(mk(SF_KIND_RELEASE, "e12", "A", "L", 1, 100), "o"));
    p = pos(m, "A", "L");
    cr_assert(p.on_hand == -2 && p.reserved == 1);
    sf_model_stats s;
    sf_model_stats_get(m, &s);
    cr_assert(s.events == 12 && s.duplicates == 0 && s.positions == 2 && s.reservations == 1);
    sf_model_free(m);
}

LEAK_TEST(stock_model, inbound_is_floored_only_when_read)
{
    sf_model *m = model();
    add(m, mk(SF_KIND_ASN, "a1", "A", "L", 5, 1));
    add(m, mk(SF_KIND_RECEIPT, "r1", "A", "L", 8, 2));
    sf_position p = pos(m, "A", "L");
    cr_assert(p.inbound == -3 && p.inbound_floored == 0 && p.on_hand == 8);
    add(m, mk(SF_KIND_ASN, "a2", "A", "L", 4, 3));
    p = pos(m, "A", "L");
    cr_assert(p.inbound == 1 && p.inbound_floored == 1, "the raw sum is kept, not the floor");
    sf_model_free(m);
}

/* The COUNT scenario in a given arrival order. */
static void count_scenario(const int *order)
{
    sf_event evs[] = {
        mk(SF_KIND_SALE, "s-before", "A", "L", 2, 100),    /* inside the count */
        mk(SF_KIND_COUNT, "c-1", "A", "L", 50, 200),       /* the count */
        mk(SF_KIND_RECEIPT, "r-equal", "A", "L", 10, 200), /* same instant: inside */
        mk(SF_KIND_SALE, "s-after", "A", "L", 3, 300),     /* after: applies */
        with_cond(mk(SF_KIND_RETURN, "d-1", "A", "L", 5, 150), SF_COND_DAMAGED),
        mk(SF_KIND_ASN, "a-1", "A", "L", 7, 50),
    };
    sf_model *m = model();
    for (int i = 0; i < 6; i++)
        add(m, evs[order[i]]);
    sf_position p = pos(m, "A", "L");
    cr_assert(p.on_hand == 47, "on_hand %lld", (long long)p.on_hand);
    cr_assert(p.has_count && p.count_qty == 50 && p.count_at == 200);
    cr_assert(strcmp(p.count_event_id, "c-1") == 0);
    /* a COUNT resets on_hand only: the RECEIPT inside it still lowers inbound */
    cr_assert(p.damaged == 5 && p.inbound == -3 && p.inbound_floored == 0,
              "damaged %lld inbound %lld", (long long)p.damaged, (long long)p.inbound);
    sf_model_free(m);
}

LEAK_TEST(stock_model, count_with_earlier_equal_and_later_deltas)
{
    const int orders[][6] = {
        {0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}, {3, 2, 0, 5, 4, 1}, {1, 3, 0, 2, 5, 4}};
    for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++)
        count_scenario(orders[i]);
}

LEAK_TEST(stock_model, later_count_replaces_earlier_in_any_order)
{
    sf_model *m = model();
    add(m, mk(SF_KIND_COUNT, "c-1", "A", "L", 50, 200));
    add(m, mk(SF_KIND_SALE, "s-1", "A", "L", 3, 300));
    cr_assert(pos(m, "A", "L").on_hand == 47);
    add(m, mk(SF_KIND_COUNT, "c-2", "A", "L", 40, 400));
    cr_assert(pos(m, "A", "L").on_hand == 40, "s-1 is inside the later count");
    add(m, mk(SF_KIND_RECEIPT, "r-1", "A", "L", 5, 500));
    cr_assert(pos(m, "A", "L").on_hand == 45);
    add(m, mk(SF_KIND_COUNT, "c-0", "A", "L", 99, 150));  /* an older count, arriving late */
    add(m, mk(SF_KIND_ADJUST, "x-1", "A", "L", -8, 350)); /* a late delta before c-2 */
    add(m, mk(SF_KIND_ADJUST, "x-2", "A", "L", -1, 401)); /* a late delta after c-2 */
    sf_position p = pos(m, "A", "L");
    cr_assert(p.on_hand == 44, "on_hand %lld", (long long)p.on_hand);
    cr_assert(p.count_qty == 40 && p.count_at == 400 && strcmp(p.count_event_id, "c-2") == 0);
    /* a count with no deltas after it */
    add(m, mk(SF_KIND_COUNT, "c-3", "A", "L", 0, 1000));
    cr_assert(pos(m, "A", "L").on_hand == 0);
    sf_model_free(m);
}

LEAK_TEST(stock_model, count_ties_break_by_event_id_bytewise)
{
    /* same occurred_at: the greater event_id (bytewise) is the latest */
    sf_event a = mk(SF_KIND_COUNT, "c-B", "A", "L", 10, 400);
    sf_event b = mk(SF_KIND_COUNT, "c-a", "A", "L", 20, 400);
    sf_event c = mk(SF_KIND_COUNT, "c-\xc3\xa9", "A", "L", 30, 400); /* 0xC3 > 'a' */
    sf_event d = mk(SF_KIND_SALE, "s", "A", "L", 1, 401);
    sf_event e = mk(SF_KIND_SALE, "t", "A", "L", 100, 400); /* at the count: inside */
    sf_event set1[] = {a, b, d, e};
    sf_event set2[] = {b, e, d, a};
    for (int round = 0; round < 2; round++) {
        sf_model *m = model();
        for (int i = 0; i < 4; i++)
            add(m, round ? set2[i] : set1[i]);
        sf_position p = pos(m, "A", "L");
        cr_assert(p.count_qty == 20 && strcmp(p.count_event_id, "c-a") == 0, "%s",
                  p.count_event_id);
        cr_assert(p.on_hand == 19);
        add(m, c);
        p = pos(m, "A", "L");
        cr_assert(p.count_qty == 30 && p.on_hand == 29);
        sf_model_free(m);
    }
}

LEAK_TEST(stock_model, reservations_partial_and_over_release)
{
    sf_model *m = model();
    add(m, with_ref(mk(SF_KIND_RESERVE, "r1", "A", "L", 5, 1), "o-1"));
    cr_assert(pos(m, "A", "L").reserved == 5);
    add(m, with_ref(mk(SF_KIND_RELEASE, "l1", "A", "L", 2, 2), "o-1"));
    sf_reservation r = rsv(m, "o-1", "A", "L");
    cr_assert(r.reserved == 5 && r.released == 2 && r.sold == 0 && r.outstanding == 3);
    cr_assert(pos(m, "A", "L").reserved == 3, "partial release");
    add(m, with_ref(mk(SF_KIND_SALE, "s1", "A", "L", 1, 3), "o-1"));
    r = rsv(m, "o-1", "A", "L");
    cr_assert(r.sold == 1 && r.outstanding == 2);
    sf_position p = pos(m, "A", "L");
    cr_assert(p.reserved == 2 && p.on_hand == -1, "a sale with ref consumes and ships");
    add(m, with_ref(mk(SF_KIND_RELEASE, "l2", "A", "L", 10, 4), "o-1"));
    r = rsv(m, "o-1", "A", "L");
    cr_assert(r.released == 12 && r.outstanding == 0, "over-release absorbed");
    cr_assert(pos(m, "A", "L").reserved == 0, "never negative");
    add(m, with_ref(mk(SF_KIND_RESERVE, "r2", "A", "L", 4, 5), "o-1"));
    r = rsv(m, "o-1", "A", "L");
    cr_assert(r.reserved == 9 && r.outstanding == 0, "max(0, 9 - 12 - 1)");
    add(m, with_ref(mk(SF_KIND_RESERVE, "r3", "A", "L", 6, 6), "o-1"));
    r = rsv(m, "o-1", "A", "L");
    cr_assert(r.reserved == 15 && r.outstanding == 2 && pos(m, "A", "L").reserved == 2);
    sf_model_free(m);
}

LEAK_TEST(stock_model, release_before_reserve_in_both_orders)
{
    sf_event rel = with_ref(mk(SF_KIND_RELEASE, "l", "A", "L", 3, 5), "o-2");
    sf_event res = with_ref(mk(SF_KIND_RESERVE, "r", "A", "L", 5, 1), "o-2");
    for (int round = 0; round < 2; round++) {
        sf_model *m = model();
        add(m, round ? res : rel);
        add(m, round ? rel : res);
        sf_reservation r = rsv(m, "o-2", "A", "L");
        cr_assert(r.outstanding == 2 && r.reserved == 5 && r.released == 3);
        cr_assert(pos(m, "A", "L").reserved == 2);
        sf_model_free(m);
    }
    /* a release alone is a reservation with nothing held */
    sf_model *m = model();
    add(m, rel);
    sf_reservation r = rsv(m, "o-2", "A", "L");
    cr_assert(r.outstanding == 0 && r.expiry == SF_EXPIRY_NONE);
    cr_assert(pos(m, "A", "L").reserved == 0);
    sf_model_free(m);
}

LEAK_TEST(stock_model, sale_without_ref_touches_no_reservation)
{
    sf_model *m = model();
    add(m, with_ref(mk(SF_KIND_RESERVE, "r1", "A", "L", 5, 1), "o-3"));
    add(m, mk(SF_KIND_RESERVE, "r2", "A", "L", 2, 1)); /* no ref: the "" pool */
    add(m, mk(SF_KIND_SALE, "s1", "A", "L", 5, 2));    /* walk-in */
    sf_position p = pos(m, "A", "L");
    cr_assert(p.reserved == 7 && p.on_hand == -5);
    cr_assert(rsv(m, "o-3", "A", "L").sold == 0);
    sf_reservation pool = rsv(m, "", "A", "L");
    cr_assert(pool.reserved == 2 && pool.sold == 0 && pool.outstanding == 2);
    add(m, mk(SF_KIND_RELEASE, "l1", "A", "L", 1, 3)); /* no ref: the "" pool */
    cr_assert(rsv(m, "", "A", "L").outstanding == 1 && pos(m, "A", "L").reserved == 6);
    /* reservations are per (ref, sku, location) */
    add(m, with_ref(mk(SF_KIND_SALE, "s2", "A", "M", 4, 3), "o-3"));
    cr_assert(rsv(m, "o-3", "A", "L").outstanding == 5);
    sf_reservation other = rsv(m, "o-3", "A", "M");
    cr_assert(other.sold == 4 && other.outstanding == 0 && other.expiry == SF_EXPIRY_NONE);
    add(m, with_ref(mk(SF_KIND_RESERVE, "r3", "B", "L", 1, 1), "o-3"));
    cr_assert(pos(m, "A", "L").reserved == 6 && pos(m, "B", "L").reserved == 1);
    sf_reservation none;
    cr_assert(!sf_model_reservation(m, "o-9", "A", "L", &none));
    cr_assert(none.ref == NULL && none.outstanding == 0);
    sf_model_stats s;
    sf_model_stats_get(m, &s);
    cr_assert(s.reservations == 4 && s.positions == 3);
    sf_model_free(m);
}

LEAK_TEST(stock_model, expiry_rules)
{
    sf_model *m = model();
    add(m, with_exp(with_ref(mk(SF_KIND_RESERVE, "r1", "A", "L", 1, 1), "o"), 3000));
    sf_reservation r = rsv(m, "o", "A", "L");
    cr_assert(r.expiry == SF_EXPIRY_AT && r.expires_at == 3000);
    add(m, with_exp(with_ref(mk(SF_KIND_RESERVE, "r2", "A", "L", 1, 2), "o"), 1000));
    r = rsv(m, "o", "A", "L");
    cr_assert(r.expiry == SF_EXPIRY_AT && r.expires_at == 3000, "the latest expires_at wins");
    add(m, with_exp(with_ref(mk(SF_KIND_RESERVE, "r3", "A", "L", 1, 3), "o"), 5000));
    cr_assert(rsv(m, "o", "A", "L").expires_at == 5000);
    add(m, with_ref(mk(SF_KIND_RESERVE, "r4", "A", "L", 1, 4), "o"));
    r = rsv(m, "o", "A", "L");
    cr_assert(r.expiry == SF_EXPIRY_NEVER && r.expires_at == 0, "one without expiry: never");
    add(m, with_exp(with_ref(mk(SF_KIND_RESERVE, "r5", "A", "L", 1, 5), "o"), 9000));
    cr_assert(rsv(m, "o", "A", "L").expiry == SF_EXPIRY_NEVER, "never stays never");
    /* order does not matter: never first, then dated */
    sf_model *n = model();
    add(n, with_ref(mk(SF_KIND_RESERVE, "q1", "A", "L", 1, 1), "p"));
    add(n, with_exp(with_ref(mk(SF_KIND_RESERVE, "q2", "A", "L", 1, 1), "p"), 10));
    cr_assert(rsv(n, "p", "A", "L").expiry == SF_EXPIRY_NEVER);
    /* only releases and sales: no expiry */
    add(n, with_ref(mk(SF_KIND_SALE, "q3", "A", "L", 1, 1), "z"));
    cr_assert(rsv(n, "z", "A", "L").expiry == SF_EXPIRY_NONE);
    /* an expiry at 0 is a time, not "none" */
    add(n, with_exp(with_ref(mk(SF_KIND_RESERVE, "q4", "A", "L", 1, 1), "e0"), 0));
    r = rsv(n, "e0", "A", "L");
    cr_assert(r.expiry == SF_EXPIRY_AT && r.expires_at == 0);
    sf_model_free(n);
    sf_model_free(m);
}

LEAK_TEST(stock_model, duplicates_are_ignored_and_counted)
{
    sf_model *m = model();
    add(m, mk(SF_KIND_RECEIPT, "dup", "A", "L", 10, 1));
    sf_event again = mk(SF_KIND_RECEIPT, "dup", "A", "L", 10, 1);
    sf_event changed = mk(SF_KIND_SALE, "dup", "B", "L", 99, 5); /* same id, other content */
    bool dup = false;
    sf_error err;
    cr_assert(sf_model_add(m, &again, &dup, &err) == SF_OK && dup);
    cr_assert(sf_model_add(m, &changed, &dup, &err) == SF_OK && dup);
    cr_assert(sf_model_add(m, &again, NULL, &err) == SF_OK);
    sf_model_stats s;
    sf_model_stats_get(m, &s);
    cr_assert(s.events == 1 && s.duplicates == 3 && s.positions == 1);
    cr_assert(pos(m, "A", "L").on_hand == 10);
    sf_position none;
    cr_assert(!sf_model_position(m, "B", "L", &none), "a duplicate creates nothing");
    cr_assert(none.sku == NULL && none.on_hand == 0);
    sf_model_free(m);
}

LEAK_TEST(stock_model, rejects_invalid_kind)
{
    sf_model *m = model();
    sf_event ev = mk((sf_kind)42, "x", "A", "L", 1, 1);
    sf_error err;
    cr_assert(sf_model_add(m, &ev, NULL, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "stock model: kind 42 is not a kind") == 0, "%s", err.msg);
    ev = mk(SF_KIND_SALE, "x", "A", "L", 1, 1);
    memset(ev.sku, 'k', sizeof ev.sku);
    cr_assert(sf_model_add(m, &ev, NULL, &err) == SF_EINVAL);
    sf_model_stats s;
    sf_model_stats_get(m, &s);
    cr_assert(s.events == 0 && s.positions == 0);
    sf_model_free(m);
    sf_model_free(NULL);
}

LEAK_TEST(stock_model, sums_wrap_instead_of_overflowing)
{
    /* wrapping keeps order independence; PostgreSQL refuses such values */
    sf_event a = mk(SF_KIND_ADJUST, "a", "A", "L", INT64_MAX, 1);
    sf_event b = mk(SF_KIND_ADJUST, "b", "A", "L", 1, 1);
    sf_event c = mk(SF_KIND_ADJUST, "c", "A", "L", INT64_MIN, 1);
    sf_model *m = model();
    add(m, a);
    add(m, b);
    cr_assert(pos(m, "A", "L").on_hand == INT64_MIN);
    add(m, c);
    cr_assert(pos(m, "A", "L").on_hand == 0);
    sf_model_free(m);
    m = model();
    add(m, c);
    add(m, b);
    add(m, a);
    cr_assert(pos(m, "A", "L").on_hand == 0);
    sf_model_free(m);
}

typedef struct collected {
    char keys[16][80];
    int n, stop_after;
} collected;

static int collect_pos(const sf_position *p, void *ctx)
{
    collected *c = ctx;
    snprintf(c->keys[c->n++], sizeof c->keys[0], "%s|%s", p->sku, p->location);
    return c->n == c->stop_after;
}

static int collect_rsv(const sf_reservation *r, void *ctx)
{
    collected *c = ctx;
    snprintf(c->keys[c->n++], sizeof c->keys[0], "%s|%s|%s", r->ref, r->sku, r->location);
    return 0;
}

LEAK_TEST(stock_model, iteration_is_bytewise_ordered)
{
    sf_model *m = model();
    const char *skus[] = {"b", "a", "B", "a/1", "\xc3\xa9", "a"};
    const char *locs[] = {"L2", "L2", "L1", "L1", "L1", "L10"};
    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof id, "e%d", i);
        add(m, mk(SF_KIND_ASN, id, skus[i], locs[i], 1, 1));
    }
    collected c = {.n = 0, .stop_after = -1};
    sf_error err;
    cr_assert(sf_model_foreach_position(m, collect_pos, &c, &err) == SF_OK);
    const char *want[] = {"B|L1", "a|L10", "a|L2", "a/1|L1", "b|L2", "\xc3\xa9|L1"};
    cr_assert(c.n == 6);
    for (int i = 0; i < 6; i++)
        cr_assert(strcmp(c.keys[i], want[i]) == 0, "%d: %s, want %s", i, c.keys[i], want[i]);
    collected stop = {.n = 0, .stop_after = 2};
    cr_assert(sf_model_foreach_position(m, collect_pos, &stop, &err) == SF_OK);
    cr_assert(stop.n == 2, "a non-zero return stops");

    add(m, with_ref(mk(SF_KIND_RESERVE, "r1", "b", "L1", 1, 1), "o-2"));
    add(m, with_ref(mk(SF_KIND_RESERVE, "r2", "a", "L1", 1, 1), "o-2"));
    add(m, with_ref(mk(SF_KIND_RESERVE, "r3", "z", "L1", 1, 1), "o-10"));
    add(m, mk(SF_KIND_RELEASE, "r4", "z", "L1", 1, 1));
    collected rc = {.n = 0};
    cr_assert(sf_model_foreach_reservation(m, collect_rsv, &rc, &err) == SF_OK);
    const char *rwant[] = {"|z|L1", "o-10|z|L1", "o-2|a|L1", "o-2|b|L1"};
    cr_assert(rc.n == 4);
    for (int i = 0; i < 4; i++)
        cr_assert(strcmp(rc.keys[i], rwant[i]) == 0, "%d: %s, want %s", i, rc.keys[i], rwant[i]);
    sf_model_free(m);

    m = model(); /* empty model: no calls */
    collected e = {.n = 0, .stop_after = -1};
    cr_assert(sf_model_foreach_position(m, collect_pos, &e, &err) == SF_OK && e.n == 0);
    cr_assert(sf_model_foreach_reservation(m, collect_rsv, &e, &err) == SF_OK && e.n == 0);
    sf_position p;
    cr_assert(!sf_model_position(m, "a", "b", &p));
    sf_model_free(m);
}

LEAK_TEST(stock_model, many_keys_grow_the_tables)
{
    sf_model *m = model();
    for (int i = 0; i < 100000; i++) {
        char sku[16], id[16];
        snprintf(sku, sizeof sku, "S%d", i);
        snprintf(id, sizeof id, "i%d", i);
        add(m, mk(SF_KIND_RECEIPT, id, sku, i % 2 ? "L1" : "L2", i, i));
    }
    for (int i = 0; i < 100000; i += 997) {
        char sku[16];
        snprintf(sku, sizeof sku, "S%d", i);
        cr_assert(pos(m, sku, i % 2 ? "L1" : "L2").on_hand == i);
        sf_position p;
        cr_assert(!sf_model_position(m, sku, i % 2 ? "L2" : "L1", &p));
    }
    sf_model_stats s;
    sf_model_stats_get(m, &s);
    cr_assert(s.events == 100000 && s.positions == 100000);
    sf_model_free(m);
}

/* --- property: any order, any duplication, same positions --------------------- */

typedef struct events {
    sf_event *v;
    size_t n, cap;
} events;

static void events_push(events *e, const sf_event *ev)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 1024;
        e->v = realloc(e->v, e->cap * sizeof *e->v);
        cr_assert(e->v);
    }
    e->v[e->n++] = *ev;
}

typedef struct gen_ctx {
    events *out;
    sf_parse_opts opts;
} gen_ctx;

static int gen_line(const char *line, size_t len, void *vctx)
{
    gen_ctx *ctx = vctx;
    sf_event ev;
    sf_error err;
    cr_assert(sf_event_parse_json(line, len, &ctx->opts, &ev, &err) == SF_OK, "%.*s: %s", (int)len,
              line, err.msg);
    events_push(ctx->out, &ev);
    return 0;
}

static uint64_t test_rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void shuffle(events *e, uint64_t *rng)
{
    for (size_t i = e->n; i > 1; i--) {
        size_t j = (size_t)(test_rng(rng) % i);
        sf_event t = e->v[i - 1];
        e->v[i - 1] = e->v[j];
        e->v[j] = t;
    }
}

static sf_model *build(const events *e)
{
    sf_model *m = model();
    sf_error err;
    for (size_t i = 0; i < e->n; i++)
        cr_assert(sf_model_add(m, &e->v[i], NULL, &err) == SF_OK, "%s", err.msg);
    return m;
}

typedef struct compare_ctx {
    const sf_model *other;
    size_t seen;
} compare_ctx;

static int compare_pos(const sf_position *p, void *vctx)
{
    compare_ctx *c = vctx;
    sf_position q;
    cr_assert(sf_model_position(c->other, p->sku, p->location, &q), "%s/%s missing", p->sku,
              p->location);
    cr_assert(
        p->on_hand == q.on_hand && p->reserved == q.reserved && p->inbound == q.inbound &&
            p->inbound_floored == q.inbound_floored && p->damaged == q.damaged &&
            p->has_count == q.has_count && p->count_qty == q.count_qty && p->count_at == q.count_at,
        "%s/%s: on_hand %lld vs %lld, reserved %lld vs %lld", p->sku, p->location,
        (long long)p->on_hand, (long long)q.on_hand, (long long)p->reserved, (long long)q.reserved);
    cr_assert(!p->has_count || strcmp(p->count_event_id, q.count_event_id) == 0);
    c->seen++;
    return 0;
}

static int compare_rsv(const sf_reservation *r, void *vctx)
{
    compare_ctx *c = vctx;
    sf_reservation q;
    cr_assert(sf_model_reservation(c->other, r->ref, r->sku, r->location, &q));
    cr_assert(r->reserved == q.reserved && r->released == q.released && r->sold == q.sold &&
                  r->outstanding == q.outstanding && r->expiry == q.expiry &&
                  r->expires_at == q.expires_at,
              "%s/%s/%s differs", r->ref, r->sku, r->location);
    c->seen++;
    return 0;
}

/* Every key of a is in b with the same values, and b has no other keys. */
static void same_state(const sf_model *a, const sf_model *b)
{
    sf_model_stats sa, sb;
    sf_model_stats_get(a, &sa);
    sf_model_stats_get(b, &sb);
    cr_assert(sa.events == sb.events && sa.positions == sb.positions &&
              sa.reservations == sb.reservations);
    sf_error err;
    compare_ctx c = {b, 0};
    cr_assert(sf_model_foreach_position(a, compare_pos, &c, &err) == SF_OK);
    cr_assert(c.seen == sa.positions);
    compare_ctx r = {b, 0};
    cr_assert(sf_model_foreach_reservation(a, compare_rsv, &r, &err) == SF_OK);
    cr_assert(r.seen == sa.reservations);
}

LEAK_TEST(stock_model, property_shuffled_and_duplicated_streams_converge, .timeout = 120)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        events base = {0};
        gen_ctx g = {&base, {0}};
        sf_parse_opts_init(&g.opts);
        sf_workload_opts wo;
        sf_workload_opts_init(&wo);
        wo.seed = seed;
        wo.events = 3000;
        wo.skus = 20; /* few keys: many events per position */
        wo.locations = 2;
        wo.expiring = seed % 2 == 0;
        sf_error err;
        cr_assert(sf_workload_generate(&wo, gen_line, &g, &err) == SF_OK, "%s", err.msg);
        cr_assert(base.n == 3000);

        uint64_t rng = seed * 7919;
        events shuffled = {0};
        for (size_t i = 0; i < base.n; i++)
            events_push(&shuffled, &base.v[i]);
        shuffle(&shuffled, &rng);

        events dups = {0};
        for (size_t i = 0; i < base.n; i++)
            events_push(&dups, &base.v[i]);
        size_t extra = base.n * 3 / 10;
        for (size_t i = 0; i < extra; i++)
            events_push(&dups, &base.v[test_rng(&rng) % base.n]);
        shuffle(&dups, &rng);

        sf_model *a = build(&base), *b = build(&shuffled), *c = build(&dups);
        same_state(a, b);
        same_state(b, a);
        same_state(a, c);
        same_state(c, a);
        sf_model_stats sa, sc;
        sf_model_stats_get(a, &sa);
        sf_model_stats_get(c, &sc);
        cr_assert(sc.duplicates == sa.duplicates + extra, "seed %llu: %llu duplicates",
                  (unsigned long long)seed, (unsigned long long)sc.duplicates);
        cr_assert(sa.events + sa.duplicates == 3000);
        sf_model_free(a);
        sf_model_free(b);
        sf_model_free(c);
        free(base.v);
        free(shuffled.v);
        free(dups.v);
    }
}
