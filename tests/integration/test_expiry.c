/*
 * Reservation expiry on the real stack, with a clock the test controls
 * (INV_NOW_MS for inv-reconciler): nothing before expires_at; after it, one
 * RELEASE of exactly the outstanding qty with the deterministic exp- id of
 * DESIGN.md, occurred_at = expires_at, source reservation-expiry; a sale with
 * the order's ref shrinks it; a RESERVE without expires_at keeps the
 * reservation forever; a RESERVE arriving after the expiry gets a RELEASE of
 * its own; two reconcilers publish the same id once.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "fixture.h"
#include "stockcheck.h"

TestSuite(expiry, .init = fx_reset, .fini = fx_teardown, .timeout = 300);

#define T0 INT64_C(1795161600000) /* 2026-11-20T08:00:00Z */
#define EXP (T0 + 15 * 60 * 1000) /* expires_at: 08:15 */

static void ingest_text(const char *name, const char *text)
{
    char path[512], out[8192];
    sc_tmp(name, path, sizeof path);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
    sc_ingest(path, out, sizeof out);
}

/* inv-reconciler --drain with the clock at now_ms. */
static void reconcile_at(int64_t now_ms)
{
    char now[24], out[8192];
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    setenv("INV_NOW_MS", now, 1);
    const char *argv[] = {"inv-reconciler", "--drain", NULL};
    int rc = fx_run(argv, NULL, out, sizeof out, 60000);
    unsetenv("INV_NOW_MS");
    cr_assert(rc == 0, "inv-reconciler exited %d: %s", rc, out);
}

static void expected_id(const char *ref, const char *sku, const char *loc, int64_t at,
                        int64_t reserved, char out[45])
{
    char a[24], r[24], hex[41];
    snprintf(a, sizeof a, "%" PRId64, at);
    snprintf(r, sizeof r, "%" PRId64, reserved);
    const char *parts[5] = {ref, sku, loc, a, r};
    sf_sha256_hex_joined(parts, 5, 40, hex);
    snprintf(out, 45, "exp-%s", hex);
}

static int64_t releases(void)
{
    return fx_query_i64("SELECT count(*) FROM ledger WHERE source = 'reservation-expiry'");
}

#define RESERVE(id, ref, qty, exp)                                                                 \
    "{\"event_id\":\"" id "\",\"kind\":\"reserve\",\"sku\":\"MUG\",\"location\":\"DC-1\","         \
    "\"qty\":" #qty ",\"occurred_at\":\"2026-11-20T08:00:00Z\",\"source\":\"t\",\"ref\":\"" ref    \
    "\"" exp "}\n"
#define EXPIRES ",\"expires_at\":\"2026-11-20T08:15:00Z\""

Test(expiry, releases_exactly_the_outstanding_after_expires_at)
{
    ingest_text(
        "a.jsonl",
        "{\"event_id\":\"r0\",\"kind\":\"receipt\",\"sku\":\"MUG\",\"location\":\"DC-1\","
        "\"qty\":20,\"occurred_at\":\"2026-11-20T07:00:00Z\",\"source\":\"t\"}\n" RESERVE(
            "r1", "o1", 5, EXPIRES) RESERVE("r2", "o2", 4, EXPIRES) RESERVE("r3", "o3", 2, EXPIRES)
            RESERVE("r4", "o3", 1,
                    "") "{\"event_id\":\"s1\",\"kind\":\"sale\",\"sku\":\"MUG\",\"location\":"
                        "\"DC-1\",\"qty\":2,\"occurred_at\":\"2026-11-20T08:05:00Z\",\"source\":"
                        "\"t\",\"ref\":\"o1\"}\n");
    sc_drain(1);
    cr_assert_eq(fx_query_i64("SELECT reserved FROM positions WHERE sku = 'MUG'"), 3 + 4 + 3);
    /* Before expires_at: nothing. */
    reconcile_at(EXP - 1);
    sc_drain(1);
    cr_assert_eq(releases(), 0);
    /* invctl reservations list --expired sees what the reconciler will release. */
    char out[8192], now[24];
    snprintf(now, sizeof now, "%" PRId64, (int64_t)(EXP + 1000));
    setenv("INV_NOW_MS", now, 1);
    const char *list[] = {"invctl", "reservations", "list", "--expired", "--json", NULL};
    cr_assert_eq(fx_run(list, NULL, out, sizeof out, 30000), 0, "%s", out);
    cr_assert(strstr(out, "\"ref\":\"o1\",\"sku\":\"MUG\",\"location\":\"DC-1\",\"reserved\":5,"
                          "\"released\":0,\"sold\":2,\"outstanding\":3,"
                          "\"expires_at\":\"2026-11-20T08:15:00.000Z\",\"expired\":true"),
              "%s", out);
    cr_assert(strstr(out, "\"ref\":\"o2\""), "%s", out);
    cr_assert_null(strstr(out, "\"ref\":\"o3\""), "%s", out);
    /* After: o1 (5 reserved, 2 sold: 3 outstanding) and o2 (4) are released;
     * o3 had a RESERVE without expires_at: it never expires. */
    reconcile_at(EXP + 1000);
    sc_drain(1);
    cr_assert_eq(releases(), 2);
    char id[45], sql[256];
    expected_id("o1", "MUG", "DC-1", EXP, 5, id);
    snprintf(sql, sizeof sql,
             "SELECT qty FROM ledger WHERE event_id = '%s' AND kind = 'RELEASE' AND ref = 'o1'"
             " AND occurred_at = %" PRId64 " AND source = 'reservation-expiry'",
             id, (int64_t)EXP);
    cr_assert_eq(fx_query_i64(sql), 3);
    expected_id("o2", "MUG", "DC-1", EXP, 4, id);
    snprintf(sql, sizeof sql, "SELECT qty FROM ledger WHERE event_id = '%s'", id);
    cr_assert_eq(fx_query_i64(sql), 4);
    cr_assert_eq(fx_query_i64("SELECT reserved FROM positions WHERE sku = 'MUG'"), 3);
    cr_assert_eq(fx_query_i64("SELECT on_hand FROM positions WHERE sku = 'MUG'"), 18);
    cr_assert_eq(fx_run(list, NULL, out, sizeof out, 30000), 0, "%s", out);
    unsetenv("INV_NOW_MS");
    cr_assert(!strncmp(out, "[]", 2), "still listed as expired: %s", out);
    /* Again: nothing new. */
    reconcile_at(EXP + 60000);
    sc_drain(1);
    cr_assert_eq(releases(), 2);
}

Test(expiry, reserve_after_expiry_gets_its_own_release_and_two_reconcilers_agree)
{
    ingest_text("b.jsonl", RESERVE("r1", "o9", 2, EXPIRES));
    sc_drain(1);
    /* Two reconcilers at the same moment: one id, stored once. */
    char now[24];
    snprintf(now, sizeof now, "%" PRId64, (int64_t)(EXP + 1000));
    setenv("INV_NOW_MS", now, 1);
    const char *argv[] = {"inv-reconciler", "--drain", NULL};
    pid_t a = fx_spawn(argv, NULL), b = fx_spawn(argv, NULL);
    cr_assert_eq(fx_stop(a, 0, 60000), 0);
    cr_assert_eq(fx_stop(b, 0, 60000), 0);
    unsetenv("INV_NOW_MS");
    sc_drain(1);
    cr_assert_eq(releases(), 1);
    cr_assert_eq(fx_query_i64("SELECT reserved FROM positions WHERE sku = 'MUG'"), 0);
    /* A RESERVE of the same order arrives late: Σ RESERVE is now 5, so its
     * expiry is a new RELEASE, of the 3 now outstanding. */
    ingest_text("c.jsonl", RESERVE("r2", "o9", 3, EXPIRES));
    sc_drain(1);
    cr_assert_eq(fx_query_i64("SELECT reserved FROM positions WHERE sku = 'MUG'"), 3);
    reconcile_at(EXP + 2000);
    sc_drain(1);
    cr_assert_eq(releases(), 2);
    char id[45], sql[256];
    expected_id("o9", "MUG", "DC-1", EXP, 5, id);
    snprintf(sql, sizeof sql, "SELECT qty FROM ledger WHERE event_id = '%s'", id);
    cr_assert_eq(fx_query_i64(sql), 3);
    cr_assert_eq(fx_query_i64("SELECT reserved FROM positions WHERE sku = 'MUG'"), 0);
    cr_assert_eq(fx_query_i64("SELECT outstanding FROM reservations WHERE ref = 'o9'"), 0);
}
