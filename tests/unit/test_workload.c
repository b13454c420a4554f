/*
 * test_workload: the generator is deterministic (same options, same
 * bytes; the bytes of one seed are pinned), every line parses and
 * validates, and the feed holds what tests and benchmarks rely on: all
 * ten kinds, damaged returns, both ADJUST signs, sales with and without
 * ref, over-releases, releases before their reserve, late events, ~2%
 * exact duplicates, ids g-<seed>-<n>, and expires_at exactly when asked.
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

/* sha256sum and size of: invctl gen (seed 1, 1000 events, defaults) */
#define WORKLOAD_PIN_SHA256 "3e16bcb610a5f47205f313f0b485a95f24bc6a41cb1d72a1e101e80e079bf1e5"
#define WORKLOAD_PIN_BYTES 153505

typedef struct buf {
    char *data;
    size_t len;
} buf;

static buf generate(const sf_workload_opts *o)
{
    buf b = {NULL, 0};
    FILE *f = open_memstream(&b.data, &b.len);
    cr_assert(f);
    sf_error err;
    cr_assert(sf_workload_write(o, f, &err) == SF_OK, "%s", err.msg);
    cr_assert(fclose(f) == 0);
    return b;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    /* sf_sha256_hex_joined of one part is plain SHA-256 of it; the data has
     * no NUL, so pass it as a C string */
    char *copy = malloc(len + 1);
    cr_assert(copy);
    memcpy(copy, data, len);
    copy[len] = '\0';
    const char *parts[1] = {copy};
    sf_sha256_hex_joined(parts, 1, 64, out);
    free(copy);
}

LEAK_TEST(workload, same_seed_same_bytes)
{
    sf_workload_opts o;
    sf_workload_opts_init(&o);
    cr_assert(o.seed == 1 && o.events == 10000 && o.skus == 100 && o.locations == 3 &&
              !o.expiring && o.base_ms == INT64_C(1767225600000));
    o.events = 1000;
    buf a = generate(&o), b = generate(&o);
    cr_assert(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    /* pinned: sha256 of `invctl gen` seed 1, 1000 events; a change here
     * changes every stored workload and benchmark input */
    char hex[65];
    sha256_hex(a.data, a.len, hex);
    cr_assert(strcmp(hex, WORKLOAD_PIN_SHA256) == 0, "output changed: %s (%zu bytes)", hex, a.len);
    cr_assert(a.len == WORKLOAD_PIN_BYTES, "%zu", a.len);
    o.seed = 2;
    buf c = generate(&o);
    cr_assert(c.len != a.len || memcmp(a.data, c.data, a.len) != 0, "another seed differs");
    o.seed = 1;
    o.expiring = true;
    buf d = generate(&o);
    cr_assert(d.len != a.len || memcmp(a.data, d.data, a.len) != 0);
    free(a.data);
    free(b.data);
    free(c.data);
    free(d.data);
}

typedef struct stats {
    sf_parse_opts opts;
    uint64_t lines, dups, late, lower_kind, epoch_time, with_exp, reserves;
    uint64_t kinds[SF_KIND__COUNT];
    uint64_t damaged, adjust_neg, adjust_pos, sale_ref, sale_noref;
    uint64_t release_before_reserve;
    int64_t max_at, min_at;
    uint64_t next_n;
    uint64_t seed;
    bool bad_id, bad_names;
    /* every line, to check that duplicates repeat their first line */
    char **first_line; /* by n */
    size_t first_cap;
    sf_model *model;
    char seen_reserve_refs[4096][SF_STR_MAX + 1];
    size_t nseen;
} stats;

static bool ref_reserved(stats *s, const char *ref)
{
    for (size_t i = 0; i < s->nseen; i++)
        if (strcmp(s->seen_reserve_refs[i], ref) == 0)
            return true;
    return false;
}

static int check_line(const char *line, size_t len, void *vctx)
{
    stats *s = vctx;
    sf_event ev;
    sf_error err;
    cr_assert(sf_event_parse_json(line, len, &s->opts, &ev, &err) == SF_OK, "%.*s: %s", (int)len,
              line, err.msg);
    s->lines++;
    char prefix[40];
    int pl = snprintf(prefix, sizeof prefix, "g-%llu-", (unsigned long long)s->seed);
    if (strncmp(ev.event_id, prefix, (size_t)pl) != 0) {
        s->bad_id = true;
        return 0;
    }
    uint64_t n = strtoull(ev.event_id + pl, NULL, 10);
    if (n < s->next_n) { /* a duplicate: the same bytes as its first line */
        s->dups++;
        cr_assert(strlen(s->first_line[n]) == len && memcmp(s->first_line[n], line, len) == 0,
                  "duplicate of %s differs", ev.event_id);
        bool dup = false;
        cr_assert(sf_model_add(s->model, &ev, &dup, &err) == SF_OK && dup);
        return 0;
    }
    cr_assert(n == s->next_n, "ids are consecutive: %s, want n=%llu", ev.event_id,
              (unsigned long long)s->next_n);
    s->next_n++;
    if (n >= s->first_cap) {
        s->first_cap = s->first_cap ? s->first_cap * 2 : 1024;
        s->first_line = realloc(s->first_line, s->first_cap * sizeof *s->first_line);
        cr_assert(s->first_line);
    }
    s->first_line[n] = strndup(line, len);
    cr_assert(s->first_line[n]);
    bool dup = true;
    cr_assert(sf_model_add(s->model, &ev, &dup, &err) == SF_OK && !dup);

    const char *text = s->first_line[n]; /* NUL-terminated */
    const char *kind = strstr(text, "\"kind\":\"");
    cr_assert(kind);
    if (kind[8] >= 'a' && kind[8] <= 'z')
        s->lower_kind++;
    if (!strstr(text, "\"occurred_at\":\""))
        s->epoch_time++;
    s->kinds[ev.kind]++;
    if (ev.occurred_at < s->max_at)
        s->late++;
    if (ev.occurred_at > s->max_at)
        s->max_at = ev.occurred_at;
    if (ev.occurred_at < s->min_at)
        s->min_at = ev.occurred_at;
    if (ev.has_condition && ev.condition == SF_COND_DAMAGED)
        s->damaged++;
    if (ev.kind == SF_KIND_ADJUST)
        ev.qty < 0 ? s->adjust_neg++ : s->adjust_pos++;
    if (ev.kind == SF_KIND_SALE)
        ev.has_ref ? s->sale_ref++ : s->sale_noref++;
    if (ev.kind == SF_KIND_RESERVE) {
        s->reserves++;
        if (ev.has_expires_at) {
            s->with_exp++;
            cr_assert(ev.expires_at > ev.occurred_at);
        }
        if (s->nseen < 4096)
            snprintf(s->seen_reserve_refs[s->nseen++], SF_STR_MAX + 1, "%s", ev.ref);
    }
    if (ev.kind == SF_KIND_RELEASE && !ref_reserved(s, ev.ref))
        s->release_before_reserve++;
    unsigned sku = 0, loc = 0;
    char tail;
    if (sscanf(ev.sku, "SKU-%5u%c", &sku, &tail) != 1 || strlen(ev.sku) != 9 || sku < 1 ||
        sku > 50 || sscanf(ev.location, "LOC-%u%c", &loc, &tail) != 1 || loc < 1 || loc > 4 ||
        strcmp(ev.source, "gen") != 0)
        s->bad_names = true;
    return 0;
}

static stats *run(uint64_t seed, uint64_t events, bool expiring)
{
    stats *s = calloc(1, sizeof *s);
    cr_assert(s);
    sf_parse_opts_init(&s->opts); /* the real clock: generated times are in the past */
    s->seed = seed;
    s->next_n = 1;
    s->min_at = INT64_MAX;
    sf_error err;
    cr_assert(sf_model_new(&s->model, &err) == SF_OK);
    sf_workload_opts o;
    sf_workload_opts_init(&o);
    o.seed = seed;
    o.events = events;
    o.skus = 50;
    o.locations = 4;
    o.expiring = expiring;
    cr_assert(sf_workload_generate(&o, check_line, s, &err) == SF_OK, "%s", err.msg);
    return s;
}

static void stats_free(stats *s)
{
    for (uint64_t n = 1; n < s->next_n; n++)
        free(s->first_line[n]);
    free(s->first_line);
    sf_model_free(s->model);
    free(s);
}

static int over_released(const sf_reservation *r, void *ctx)
{
    if (r->released > r->reserved - r->sold && r->reserved > 0)
        ++*(uint64_t *)ctx;
    return 0;
}

LEAK_TEST(workload, every_line_parses_and_the_mix_is_complete)
{
    stats *s = run(7, 5000, false);
    cr_assert(s->lines == 5000);
    cr_assert(!s->bad_id, "every line has an id g-7-<n>");
    cr_assert(!s->bad_names, "SKU-000NN, LOC-N, source gen");
    for (int k = 0; k < SF_KIND__COUNT; k++)
        cr_assert(s->kinds[k] > 0, "no %s", sf_kind_name((sf_kind)k));
    /* mostly SALE, RECEIPT, ASN, RETURN */
    uint64_t main4 = s->kinds[SF_KIND_SALE] + s->kinds[SF_KIND_RECEIPT] + s->kinds[SF_KIND_ASN] +
                     s->kinds[SF_KIND_RETURN];
    uint64_t distinct = s->lines - s->dups;
    cr_assert(main4 * 2 > distinct, "%llu of %llu", (unsigned long long)main4,
              (unsigned long long)distinct);
    cr_assert(s->kinds[SF_KIND_TRANSFER_OUT] >= s->kinds[SF_KIND_TRANSFER_IN] &&
                  s->kinds[SF_KIND_TRANSFER_OUT] - s->kinds[SF_KIND_TRANSFER_IN] <= 1,
              "transfers come in pairs");
    cr_assert(s->damaged > 0 && s->adjust_neg > 0 && s->adjust_pos > 0);
    cr_assert(s->sale_ref > 0 && s->sale_noref > 0);
    cr_assert(s->release_before_reserve > 0);
    cr_assert(s->late > 0, "late events");
    cr_assert(s->lower_kind > 0 && s->lower_kind < distinct, "both kind spellings");
    cr_assert(s->epoch_time > 0 && s->epoch_time < distinct, "both time forms");
    cr_assert(s->with_exp == 0, "no expires_at unless asked");
    uint64_t over = 0;
    sf_error err;
    cr_assert(sf_model_foreach_reservation(s->model, over_released, &over, &err) == SF_OK);
    cr_assert(over > 0, "some releases exceed what is held");
    /* in the past, from base_ms, about one second apart */
    cr_assert(s->min_at >= INT64_C(1767225600000));
    cr_assert(s->max_at <= INT64_C(1767225600000) + 5001 * 1000);
    stats_free(s);
}

LEAK_TEST(workload, about_two_percent_duplicates)
{
    stats *s = run(3, 20000, false);
    cr_assert(s->dups >= 20000 / 100 && s->dups <= 20000 * 3 / 100, "%llu duplicates",
              (unsigned long long)s->dups);
    sf_model_stats ms;
    sf_model_stats_get(s->model, &ms);
    cr_assert(ms.duplicates == s->dups && ms.events == 20000 - s->dups);
    stats_free(s);
}

LEAK_TEST(workload, expiring_reserves_carry_expires_at)
{
    stats *s = run(11, 3000, true);
    cr_assert(s->reserves > 0);
    cr_assert(s->with_exp == s->reserves, "%llu of %llu", (unsigned long long)s->with_exp,
              (unsigned long long)s->reserves);
    stats_free(s);
}

static int stop_after_3(const char *line, size_t len, void *ctx)
{
    (void)line;
    (void)len;
    return ++*(int *)ctx == 3;
}

static int first_time(const char *line, size_t len, void *ctx)
{
    sf_parse_opts o;
    sf_parse_opts_init(&o);
    sf_event ev;
    sf_error err;
    cr_assert(sf_event_parse_json(line, len, &o, &ev, &err) == SF_OK, "%s", err.msg);
    *(int64_t *)ctx = ev.occurred_at;
    return 1;
}

LEAK_TEST(workload, options_are_checked_and_huge_runs_stay_in_the_past)
{
    sf_workload_opts o;
    sf_workload_opts_init(&o);
    sf_error err;
    int calls = 0;
    o.skus = 0;
    cr_assert(sf_workload_generate(&o, stop_after_3, &calls, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "workload: skus 0 out of range (1..99999)") == 0, "%s", err.msg);
    o.skus = 100;
    o.locations = 10000;
    cr_assert(sf_workload_generate(&o, stop_after_3, &calls, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "workload: locations 10000 out of range (1..9999)") == 0, "%s",
              err.msg);
    o.locations = 3;
    o.base_ms = -1;
    cr_assert(sf_workload_generate(&o, stop_after_3, &calls, &err) == SF_EINVAL);
    cr_assert(calls == 0);
    o.base_ms = SF_WORKLOAD_BASE_MS_DEFAULT;
    /* a callback may stop early */
    o.events = 1000000000000ULL;
    cr_assert(sf_workload_generate(&o, stop_after_3, &calls, &err) == SF_OK && calls == 3);
    /* 10^12 events squeeze the step to 1 ms: the first event is at base */
    int64_t at = -1;
    cr_assert(sf_workload_generate(&o, first_time, &at, &err) == SF_OK);
    cr_assert(at == SF_WORKLOAD_BASE_MS_DEFAULT + 1, "%lld", (long long)at);
    o.events = 0;
    calls = 0;
    cr_assert(sf_workload_generate(&o, stop_after_3, &calls, &err) == SF_OK && calls == 0);
}

LEAK_TEST(workload, write_errors_are_reported)
{
    FILE *full = fopen("/dev/full", "w");
    cr_assert(full);
    sf_workload_opts o;
    sf_workload_opts_init(&o);
    o.events = 100;
    sf_error err;
    cr_assert(sf_workload_write(&o, full, &err) == SF_EIO);
    cr_assert(strncmp(err.msg, "workload: write failed: ", 24) == 0, "%s", err.msg);
    fclose(full);
}
