/*
 * stockcheck: see stockcheck.h. Comparisons walk the model's keys and then
 * count the database's rows, so a row the model lacks fails as surely as
 * a wrong number.
 */
#include "stockcheck.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_parse.h"
#include "fixture.h"

const char *sc_tmp(const char *name, char *buf, size_t size)
{
    const char *dir = getenv("STACK_DIR");
    snprintf(buf, size, "%s/%s", dir && *dir ? dir : "/tmp", name);
    return buf;
}

size_t sc_load_events(const char *path, sf_event **evs)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    sf_parse_opts po;
    sf_parse_opts_init(&po);
    po.default_source = "inv-ingest";
    sf_feed_reader *r = NULL;
    sf_error err;
    cr_assert(sf_feed_reader_new(f, &po, &r, &err) == SF_OK, "%s", err.msg);
    size_t n = 0, cap = 1024;
    sf_event *v = malloc(cap * sizeof *v);
    cr_assert(v);
    for (;;) {
        sf_feed_item item;
        sf_status st = sf_feed_reader_next(r, &item, &err);
        if (st == SF_ENOTFOUND)
            break;
        cr_assert(st == SF_OK, "%s: %s", path, err.msg);
        cr_assert(item.ok, "%s: %s", path, item.error.msg);
        if (n == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof *v);
            cr_assert(v);
        }
        v[n++] = item.event;
    }
    sf_feed_reader_free(r);
    fclose(f);
    *evs = v;
    return n;
}

sf_model *sc_model_of(const sf_event *evs, size_t n)
{
    sf_model *m = NULL;
    sf_error err;
    cr_assert(sf_model_new(&m, &err) == SF_OK, "%s", err.msg);
    for (size_t i = 0; i < n; i++) {
        bool dup;
        cr_assert(sf_model_add(m, &evs[i], &dup, &err) == SF_OK, "%s", err.msg);
    }
    return m;
}

static int sc__check_position(const sf_position *p, void *ctx)
{
    size_t *count = ctx;
    const char *params[2] = {p->sku, p->location};
    PGresult *res = PQexecParams(fx_pg(),
                                 "SELECT on_hand, reserved, inbound, damaged FROM positions"
                                 " WHERE sku = $1 AND location = $2",
                                 2, NULL, params, NULL, NULL, 0);
    cr_assert(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
    cr_assert(PQntuples(res) == 1, "no positions row for %s@%s", p->sku, p->location);
    int64_t got[4], want[4] = {p->on_hand, p->reserved, p->inbound, p->damaged};
    static const char *const names[4] = {"on_hand", "reserved", "inbound", "damaged"};
    for (int c = 0; c < 4; c++) {
        got[c] = strtoll(PQgetvalue(res, 0, c), NULL, 10);
        cr_assert(got[c] == want[c], "%s@%s %s: database %" PRId64 ", model %" PRId64, p->sku,
                  p->location, names[c], got[c], want[c]);
    }
    PQclear(res);
    (*count)++;
    return 0;
}

static int sc__check_reservation(const sf_reservation *r, void *ctx)
{
    size_t *count = ctx;
    const char *params[3] = {r->ref, r->sku, r->location};
    PGresult *res = PQexecParams(fx_pg(),
                                 "SELECT reserved, released, sold, outstanding FROM reservations"
                                 " WHERE ref = $1 AND sku = $2 AND location = $3",
                                 3, NULL, params, NULL, NULL, 0);
    cr_assert(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
    cr_assert(PQntuples(res) == 1, "no reservation row for %s/%s@%s", r->ref, r->sku, r->location);
    int64_t want[4] = {r->reserved, r->released, r->sold, r->outstanding};
    for (int c = 0; c < 4; c++) {
        int64_t got = strtoll(PQgetvalue(res, 0, c), NULL, 10);
        cr_assert(got == want[c],
                  "reservation %s/%s@%s column %d: database %" PRId64 ", model %" PRId64, r->ref,
                  r->sku, r->location, c, got, want[c]);
    }
    PQclear(res);
    (*count)++;
    return 0;
}

void sc_assert_matches(const sf_model *m)
{
    sf_error err;
    size_t positions = 0, reservations = 0;
    cr_assert(sf_model_foreach_position(m, sc__check_position, &positions, &err) == SF_OK, "%s",
              err.msg);
    cr_assert(sf_model_foreach_reservation(m, sc__check_reservation, &reservations, &err) == SF_OK,
              "%s", err.msg);
    int64_t db_pos = fx_query_i64("SELECT count(*) FROM positions");
    int64_t db_res = fx_query_i64("SELECT count(*) FROM reservations");
    cr_assert(db_pos == (int64_t)positions, "database has %" PRId64 " positions, model %zu", db_pos,
              positions);
    cr_assert(db_res == (int64_t)reservations, "database has %" PRId64 " reservations, model %zu",
              db_res, reservations);
    sf_model_stats st;
    sf_model_stats_get(m, &st);
    int64_t ledger = fx_query_i64("SELECT count(*) FROM ledger");
    cr_assert(ledger == (int64_t)st.events, "ledger holds %" PRId64 " events, model %" PRIu64,
              ledger, st.events);
}

void sc_gen(const char *path, unsigned seed, unsigned events, unsigned skus, unsigned locations)
{
    char s[16], e[16], k[16], l[16], out[4096];
    snprintf(s, sizeof s, "%u", seed);
    snprintf(e, sizeof e, "%u", events);
    snprintf(k, sizeof k, "%u", skus);
    snprintf(l, sizeof l, "%u", locations);
    const char *argv[] = {"invctl", "gen",         "--seed", s,       "--events", e,   "--skus",
                          k,        "--locations", l,        "--out", path,       NULL};
    int rc = fx_run(argv, NULL, out, sizeof out, 60000);
    cr_assert(rc == 0, "invctl gen failed (%d): %s", rc, out);
}

void sc_ingest(const char *path, char *out, size_t size)
{
    const char *argv[] = {"inv-ingest", "--file", path, NULL};
    int rc = fx_run(argv, NULL, out, size, 120000);
    cr_assert(rc == 0, "inv-ingest --file %s exited %d: %s", path, rc, out);
}

void sc_drain(int consumers)
{
    enum { MAX = 8 };
    cr_assert(consumers >= 1 && consumers <= MAX);
    pid_t pids[MAX];
    for (int i = 0; i < consumers; i++) {
        const char *argv[] = {"inv-consumer", "--drain", NULL};
        pids[i] = fx_spawn(argv, NULL);
    }
    for (int i = 0; i < consumers; i++) {
        int rc = fx_stop(pids[i], 0, 180000);
        cr_assert(rc == 0, "inv-consumer %d exited %d", i, rc);
    }
}
