/*
 * read_model: the refresher thread and the striped sku table (see
 * read_model.h for the freshness argument).
 *
 * Who touches what: an entry's key (sku, hash) and chain link are written
 * once, before the entry is linked under its stripe's write lock; its
 * rendered replies (view, fallback) only under that write lock; everything
 * else in an entry (positions, published rows) and the whole config belong
 * to the refresher thread alone, which is the only writer. The bucket
 * array is replaced only with every stripe write-locked, so a reader
 * holding any stripe's read lock may use it.
 */
#include "read_model.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "query.h"

#define RM_STRIPES 64                 /* power of two */
#define RM_MIN_BUCKETS 1024           /* power of two, multiple of RM_STRIPES */
#define RM_MARGIN_US 1000000LL        /* start time taken but not yet in pg_stat_activity */
#define RM_BLIND_US 60000000LL        /* pg_stat_activity hides sessions: look back this far */
#define RM_STALE_MIN_MS 5000          /* no good poll for this long: not current */
#define RM_STATEMENT_TIMEOUT_MS 30000 /* a full load of millions of rows fits */
#define RM_WAIT_SLICE_MS 100          /* stop flag checked at least this often */

typedef struct rm_pos {
    char *location;
    int64_t on_hand, reserved, inbound, damaged, version, updated_ms;
    uint32_t gen;
} rm_pos;

typedef struct rm_pub {
    char *channel;
    int64_t version, ats, computed_at;
    uint32_t gen;
} rm_pub;

/* One sku's rendered replies, immutable once published. */
typedef struct rm_loc_reply {
    char *location;
    char *json; /* GET /v1/stock/{sku}/locations/{location}, newline included */
    size_t len;
} rm_loc_reply;

typedef struct rm_view {
    char *stock; /* GET /v1/stock/{sku}, newline included */
    size_t stock_len;
    rm_loc_reply *locs; /* sorted by location */
    size_t nlocs;
} rm_view;

static void rm__view_free(rm_view *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->nlocs; i++) {
        free(v->locs[i].location);
        free(v->locs[i].json);
    }
    free(v->locs);
    free(v->stock);
    free(v);
}

typedef struct rm_entry {
    struct rm_entry *next; /* bucket chain */
    uint64_t hash;
    char *sku;
    /* under the stripe lock */
    struct rm_view *view; /* the rendered replies; NULL: unknown or fallback */
    bool fallback;        /* could not be rendered: PostgreSQL answers it */
    /* refresher only */
    rm_pos *pos; /* sorted by location, bytewise */
    size_t npos, cap_pos;
    rm_pub *pub; /* sorted by channel */
    size_t npub, cap_pub;
    bool dirty;
} rm_entry;

typedef struct rm_channel {
    char *name;
    int64_t buffer;
    char **locs;
    size_t nlocs;
} rm_channel;

typedef struct rm_config {
    char **loc_names; /* sorted */
    int64_t *safety;
    size_t nlocs;
    rm_channel *ch; /* sorted by name */
    size_t nch;
    char *canon; /* the whole config as one string, to compare */
} rm_config;

struct api_rm {
    char *dsn;
    int refresh_ms;
    int64_t stale_ms;
    pthread_t thread;
    bool running;
    atomic_bool stop;
    atomic_bool current;
    atomic_int_fast64_t last_ok_ms; /* monotonic: snapshot time of the last good poll */
    pthread_rwlock_t stripes[RM_STRIPES];
    rm_entry **buckets;
    size_t nbuckets;
    /* refresher only */
    rm_entry **all;
    size_t nall, cap_all;
    rm_config cfg;
    PGconn *pg;
    bool loaded; /* on this connection */
    bool pg_down_logged;
    char *snap;         /* pg_current_snapshot() of the last poll */
    int64_t horizon_us; /* H of the last poll (epoch µs) */
    uint32_t gen;
    int64_t npositions;
    atomic_int_fast64_t st_polls, st_skipped, st_loads, st_last_poll_us, st_skus, st_positions;
};

static int64_t rm__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t rm__hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

/* ------------------------------------------------------------- the table --- */

static pthread_rwlock_t *rm__stripe(api_rm *rm, uint64_t h)
{
    return &rm->stripes[h & (RM_STRIPES - 1)];
}

/* Caller holds a stripe lock (any, for the bucket array; h's, for the chain). */
static rm_entry *rm__find_locked(const api_rm *rm, const char *sku, uint64_t h)
{
    for (rm_entry *e = rm->buckets[h & (rm->nbuckets - 1)]; e; e = e->next)
        if (e->hash == h && !strcmp(e->sku, sku))
            return e;
    return NULL;
}

/* Is the model current (read_model.h)? */
static bool rm__current(api_rm *rm)
{
    if (!rm || !atomic_load_explicit(&rm->current, memory_order_acquire))
        return false;
    return rm__mono_us() / 1000 - atomic_load_explicit(&rm->last_ok_ms, memory_order_relaxed) <=
           rm->stale_ms;
}

static long rm__bsearch(const void *base, size_t n, size_t stride, const char *name);

/* location NULL: the sku's reply, else that location's. */
static api_rm_result rm__lookup(api_rm *rm, const char *sku, const char *location,
                                struct evbuffer *out)
{
    if (!rm__current(rm))
        return API_RM_UNAVAILABLE;
    uint64_t h = rm__hash(sku);
    pthread_rwlock_t *lk = rm__stripe(rm, h);
    api_rm_result r = API_RM_UNKNOWN;
    pthread_rwlock_rdlock(lk);
    const rm_entry *e = rm__find_locked(rm, sku, h);
    const rm_view *v = e ? e->view : NULL;
    if (v && !location) {
        r = evbuffer_add(out, v->stock, v->stock_len) == 0 ? API_RM_HIT : API_RM_UNAVAILABLE;
    } else if (v) {
        long i = rm__bsearch(v->locs, v->nlocs, sizeof *v->locs, location);
        if (i >= 0)
            r = evbuffer_add(out, v->locs[i].json, v->locs[i].len) == 0 ? API_RM_HIT
                                                                        : API_RM_UNAVAILABLE;
    } else if (e && e->fallback) {
        r = API_RM_UNAVAILABLE;
    }
    pthread_rwlock_unlock(lk);
    return r;
}

api_rm_result api_rm_stock(api_rm *rm, const char *sku, struct evbuffer *out)
{
    return rm__lookup(rm, sku, NULL, out);
}

api_rm_result api_rm_stock_location(api_rm *rm, const char *sku, const char *location,
                                    struct evbuffer *out)
{
    return rm__lookup(rm, sku, location, out);
}

static void rm__lock_all(api_rm *rm)
{
    for (int i = 0; i < RM_STRIPES; i++)
        pthread_rwlock_wrlock(&rm->stripes[i]);
}

static void rm__unlock_all(api_rm *rm)
{
    for (int i = RM_STRIPES - 1; i >= 0; i--)
        pthread_rwlock_unlock(&rm->stripes[i]);
}

/* Double the bucket array (every stripe write-locked meanwhile). */
static sf_status rm__grow(api_rm *rm, size_t want, sf_error *err)
{
    size_t nb = rm->nbuckets;
    while (nb < want) {
        if (nb > SIZE_MAX / 4)
            return SF_ERR(err, SF_ENOMEM, "read model: too many skus");
        nb *= 2;
    }
    if (nb == rm->nbuckets)
        return SF_OK;
    rm_entry **b = calloc(nb, sizeof *b);
    if (!b)
        return SF_ERR(err, SF_ENOMEM, "read model: out of memory growing the table");
    rm__lock_all(rm);
    for (size_t i = 0; i < rm->nbuckets; i++) {
        for (rm_entry *e = rm->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    rm_entry **old = rm->buckets;
    rm->buckets = b;
    rm->nbuckets = nb;
    rm__unlock_all(rm);
    free(old);
    return SF_OK;
}

/* The entry of sku, created (and linked) if missing. Refresher only: it
 * is the only writer, so reading the chain without a lock is safe here. */
static rm_entry *rm__entry(api_rm *rm, const char *sku, sf_error *err)
{
    uint64_t h = rm__hash(sku);
    rm_entry *e = rm__find_locked(rm, sku, h);
    if (e)
        return e;
    if (rm->nall == rm->cap_all) {
        size_t cap = rm->cap_all ? rm->cap_all * 2 : 1024;
        rm_entry **a = realloc(rm->all, cap * sizeof *a);
        if (!a) {
            SF_ERR(err, SF_ENOMEM, "read model: out of memory");
            return NULL;
        }
        rm->all = a;
        rm->cap_all = cap;
    }
    if (rm->nall + 1 > rm->nbuckets && rm__grow(rm, rm->nall + 1, err))
        return NULL;
    e = calloc(1, sizeof *e);
    if (!e || !(e->sku = strdup(sku))) {
        free(e);
        SF_ERR(err, SF_ENOMEM, "read model: out of memory");
        return NULL;
    }
    e->hash = h;
    pthread_rwlock_t *lk = rm__stripe(rm, h);
    pthread_rwlock_wrlock(lk);
    e->next = rm->buckets[h & (rm->nbuckets - 1)];
    rm->buckets[h & (rm->nbuckets - 1)] = e;
    pthread_rwlock_unlock(lk);
    rm->all[rm->nall++] = e;
    return e;
}

/* Index of name in the sorted array of structs (stride bytes, a char *
 * first), or -(insertion point) - 1. */
static long rm__bsearch(const void *base, size_t n, size_t stride, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *k = *(char *const *)((const char *)base + mid * stride);
        int c = strcmp(k, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* Insert a zeroed element named name at -(idx)-1 of a sorted array. */
static void *rm__insert(void **arr, size_t *n, size_t *cap, size_t stride, long idx,
                        const char *name)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        void *a = realloc(*arr, c * stride);
        if (!a)
            return NULL;
        *arr = a;
        *cap = c;
    }
    char *dup = strdup(name);
    if (!dup)
        return NULL;
    size_t at = (size_t)(-idx - 1);
    char *base = *arr;
    memmove(base + (at + 1) * stride, base + at * stride, (*n - at) * stride);
    memset(base + at * stride, 0, stride);
    *(char **)(base + at * stride) = dup;
    (*n)++;
    return base + at * stride;
}

/* ------------------------------------------------------------ rendering --- */

static int64_t rm__safety(const rm_config *cfg, const char *location)
{
    long i = rm__bsearch(cfg->loc_names, cfg->nlocs, sizeof(char *), location);
    return i >= 0 ? cfg->safety[i] : 0;
}

static json_t *rm__time(int64_t ms)
{
    char buf[48];
    api_time_format(ms, buf, sizeof buf);
    return json_string(buf);
}

/* The reply of api_db_stock(), key for key and in the same order. */
static json_t *rm__render(const api_rm *rm, const rm_entry *e)
{
    const rm_config *cfg = &rm->cfg;
    json_t *locs = json_array(), *chans = json_array();
    json_int_t tot[5] = {0};
    for (size_t i = 0; i < e->npos; i++) {
        const rm_pos *p = &e->pos[i];
        int64_t safety = rm__safety(cfg, p->location);
        int64_t available = p->on_hand - p->reserved - safety;
        tot[0] += p->on_hand;
        tot[1] += p->reserved;
        tot[2] += available;
        tot[3] += p->inbound;
        tot[4] += p->damaged;
        json_array_append_new(
            locs,
            json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "location", p->location,
                      "on_hand", (json_int_t)p->on_hand, "reserved", (json_int_t)p->reserved,
                      "safety_stock", (json_int_t)safety, "available", (json_int_t)available,
                      "inbound", (json_int_t)p->inbound, "damaged", (json_int_t)p->damaged,
                      "version", (json_int_t)p->version, "updated_at", rm__time(p->updated_ms)));
    }
    for (size_t c = 0; c < cfg->nch; c++) {
        const rm_channel *ch = &cfg->ch[c];
        int64_t sum = 0;
        for (size_t k = 0; k < ch->nlocs; k++) {
            long i = rm__bsearch(e->pos, e->npos, sizeof(rm_pos), ch->locs[k]);
            if (i < 0)
                continue;
            const rm_pos *p = &e->pos[i];
            int64_t a = p->on_hand - p->reserved - rm__safety(cfg, p->location);
            sum += a > 0 ? a : 0;
        }
        int64_t ats = sum - ch->buffer > 0 ? sum - ch->buffer : 0;
        long pi = rm__bsearch(e->pub, e->npub, sizeof(rm_pub), ch->name);
        json_t *pub = json_null();
        if (pi >= 0)
            pub = json_pack("{s:I, s:I, s:o}", "version", (json_int_t)e->pub[pi].version, "ats",
                            (json_int_t)e->pub[pi].ats, "computed_at",
                            rm__time(e->pub[pi].computed_at));
        json_array_append_new(chans, json_pack("{s:s, s:I, s:o}", "channel", ch->name, "ats",
                                               (json_int_t)ats, "published", pub));
    }
    return json_pack("{s:s, s:o, s:{s:I, s:I, s:I, s:I, s:I}, s:o}", "sku", e->sku, "locations",
                     locs, "totals", "on_hand", tot[0], "reserved", tot[1], "available", tot[2],
                     "inbound", tot[3], "damaged", tot[4], "channels", chans);
}

/* j (taken over) as compact JSON plus a newline, as srv__json sends it. */
static char *rm__dump(json_t *j, size_t *len)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *out = realloc(s, n + 2);
    if (!out) {
        free(s);
        return NULL;
    }
    out[n++] = '\n';
    out[n] = '\0';
    *len = n;
    return out;
}

/* The reply of api_db_stock_location(), key for key. */
static json_t *rm__render_location(const api_rm *rm, const rm_entry *e, const rm_pos *p)
{
    int64_t safety = rm__safety(&rm->cfg, p->location);
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "sku", e->sku,
                     "location", p->location, "on_hand", (json_int_t)p->on_hand, "reserved",
                     (json_int_t)p->reserved, "safety_stock", (json_int_t)safety, "available",
                     (json_int_t)(p->on_hand - p->reserved - safety), "inbound",
                     (json_int_t)p->inbound, "damaged", (json_int_t)p->damaged, "version",
                     (json_int_t)p->version, "updated_at", rm__time(p->updated_ms));
}

static rm_view *rm__view_new(const api_rm *rm, const rm_entry *e)
{
    rm_view *v = calloc(1, sizeof *v);
    if (!v || !(v->locs = calloc(e->npos, sizeof *v->locs)) ||
        !(v->stock = rm__dump(rm__render(rm, e), &v->stock_len))) {
        rm__view_free(v);
        return NULL;
    }
    for (size_t i = 0; i < e->npos; i++) {
        rm_loc_reply *l = &v->locs[i];
        l->location = strdup(e->pos[i].location);
        l->json = rm__dump(rm__render_location(rm, e, &e->pos[i]), &l->len);
        v->nlocs = i + 1;
        if (!l->location || !l->json) {
            rm__view_free(v);
            return NULL;
        }
    }
    return v;
}

/* Render e and swap its replies in. A reply jansson refuses (not UTF-8)
 * is left to PostgreSQL, which answers it as before. */
static void rm__publish(api_rm *rm, rm_entry *e)
{
    rm_view *v = e->npos > 0 ? rm__view_new(rm, e) : NULL;
    bool fallback = e->npos > 0 && !v;
    pthread_rwlock_t *lk = rm__stripe(rm, e->hash);
    pthread_rwlock_wrlock(lk);
    rm_view *old = e->view;
    e->view = v;
    e->fallback = fallback;
    pthread_rwlock_unlock(lk);
    rm__view_free(old);
    e->dirty = false;
}

/* ------------------------------------------------------------ PostgreSQL --- */

static sf_status rm__query(api_rm *rm, const char *what, const char *sql, int nparams,
                           const char *const *params, PGresult **out, sf_error *err)
{
    PGresult *res = PQexecParams(rm->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
        *out = res;
        return SF_OK;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(rm->pg));
    msg[strcspn(msg, "\n")] = '\0';
    PQclear(res);
    *out = NULL;
    return SF_ERR(err, PQstatus(rm->pg) == CONNECTION_OK ? SF_EINTERNAL : SF_EUNAVAIL,
                  "read model: %s: %s", what, msg);
}

static sf_status rm__exec(api_rm *rm, const char *what, const char *sql, sf_error *err)
{
    PGresult *res = NULL;
    sf_status st = rm__query(rm, what, sql, 0, NULL, &res, err);
    PQclear(res);
    return st;
}

/* Send several statements in one round trip (no parameters) and take
 * their n results in order; each must succeed. */
static sf_status rm__batch(api_rm *rm, const char *what, const char *sql, PGresult **res, int n,
                           sf_error *err)
{
    for (int i = 0; i < n; i++)
        res[i] = NULL;
    if (!PQsendQuery(rm->pg, sql)) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(rm->pg));
        msg[strcspn(msg, "\n")] = '\0';
        return SF_ERR(err, PQstatus(rm->pg) == CONNECTION_OK ? SF_EINTERNAL : SF_EUNAVAIL,
                      "read model: %s: %s", what, msg);
    }
    sf_status st = SF_OK;
    int got = 0;
    for (PGresult *r; (r = PQgetResult(rm->pg));) {
        ExecStatusType s = PQresultStatus(r);
        if (!st && s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
            msg[strcspn(msg, "\n")] = '\0';
            st = SF_ERR(err, PQstatus(rm->pg) == CONNECTION_OK ? SF_EINTERNAL : SF_EUNAVAIL,
                        "read model: %s: %s", what, msg);
        }
        if (!st && got < n)
            res[got++] = r;
        else
            PQclear(r);
    }
    if (!st && got < n)
        st = SF_ERR(err, PQstatus(rm->pg) == CONNECTION_OK ? SF_EINTERNAL : SF_EUNAVAIL,
                    "read model: %s: %d results of %d", what, got, n);
    if (st) {
        for (int i = 0; i < n; i++) {
            PQclear(res[i]);
            res[i] = NULL;
        }
    }
    return st;
}

static sf_status rm__connect(api_rm *rm, sf_error *err)
{
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {"3", "inv-api-read-model", rm->dsn, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg)
        return SF_ERR(err, SF_ENOMEM, "read model: out of memory connecting");
    if (PQstatus(pg) != CONNECTION_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(pg));
        msg[strcspn(msg, "\n")] = '\0';
        PQfinish(pg);
        return SF_ERR(err, SF_EUNAVAIL, "read model: postgres: %s", msg);
    }
    api_db_quiet(pg);
    rm->pg = pg;
    rm->loaded = false;
    char set[64];
    snprintf(set, sizeof set, "SET statement_timeout = %d", RM_STATEMENT_TIMEOUT_MS);
    return rm__exec(rm, "statement_timeout", set, err);
}

static void rm__disconnect(api_rm *rm)
{
    atomic_store(&rm->current, false);
    if (rm->pg)
        PQfinish(rm->pg);
    rm->pg = NULL;
    rm->loaded = false;
}

static int64_t rm__i64(const PGresult *res, int r, int c)
{
    return (int64_t)strtoll(PQgetvalue(res, r, c), NULL, 10);
}

static void rm__config_free(rm_config *c)
{
    for (size_t i = 0; i < c->nlocs; i++)
        free(c->loc_names[i]);
    for (size_t i = 0; i < c->nch; i++) {
        for (size_t k = 0; k < c->ch[i].nlocs; k++)
            free(c->ch[i].locs[k]);
        free(c->ch[i].locs);
        free(c->ch[i].name);
    }
    free(c->loc_names);
    free(c->safety);
    free(c->ch);
    free(c->canon);
    memset(c, 0, sizeof *c);
}

/* Append to a growing string; false on out of memory. */
static bool rm__cat(char **s, size_t *len, size_t *cap, const char *add)
{
    size_t n = strlen(add);
    if (*len + n + 1 > *cap) {
        size_t c = (*cap ? *cap : 256);
        while (*len + n + 1 > c)
            c *= 2;
        char *p = realloc(*s, c);
        if (!p)
            return false;
        *s = p;
        *cap = c;
    }
    memcpy(*s + *len, add, n + 1);
    *len += n;
    return true;
}

/* Locations, channels and channel_locations (each sorted by the query, in
 * COLLATE "C", which is bytewise: the order rm__bsearch expects). */
static sf_status rm__config_read(const PGresult *l, const PGresult *ch, const PGresult *cl,
                                 rm_config *c, sf_error *err)
{
    memset(c, 0, sizeof *c);
    sf_status st = SF_OK;
    size_t nl = (size_t)PQntuples(l), nc = (size_t)PQntuples(ch), ncl = (size_t)PQntuples(cl);
    size_t len = 0, cap = 0;
    c->loc_names = calloc(nl ? nl : 1, sizeof *c->loc_names);
    c->safety = calloc(nl ? nl : 1, sizeof *c->safety);
    c->ch = calloc(nc ? nc : 1, sizeof *c->ch);
    bool ok = c->loc_names && c->safety && c->ch;
    char num[64];
    for (size_t i = 0; ok && i < nl; i++) {
        ok = (c->loc_names[i] = strdup(PQgetvalue(l, (int)i, 0))) != NULL;
        c->safety[i] = rm__i64(l, (int)i, 1);
        c->nlocs = i + 1;
        snprintf(num, sizeof num, "\x1f%" PRId64 "\x1e", c->safety[i]);
        ok = ok && rm__cat(&c->canon, &len, &cap, "L") &&
             rm__cat(&c->canon, &len, &cap, c->loc_names[i]) && rm__cat(&c->canon, &len, &cap, num);
    }
    size_t r = 0;
    for (size_t i = 0; ok && i < nc; i++) {
        rm_channel *x = &c->ch[i];
        ok = (x->name = strdup(PQgetvalue(ch, (int)i, 0))) != NULL;
        x->buffer = rm__i64(ch, (int)i, 1);
        c->nch = i + 1;
        snprintf(num, sizeof num, "\x1f%" PRId64, x->buffer);
        ok = ok && rm__cat(&c->canon, &len, &cap, "C") && rm__cat(&c->canon, &len, &cap, x->name) &&
             rm__cat(&c->canon, &len, &cap, num);
        /* channel_locations rows of this channel (both sorted by channel) */
        while (r < ncl && strcmp(PQgetvalue(cl, (int)r, 0), x->name) < 0)
            r++;
        size_t first = r;
        while (r < ncl && !strcmp(PQgetvalue(cl, (int)r, 0), x->name))
            r++;
        x->locs = calloc(r - first ? r - first : 1, sizeof *x->locs);
        ok = ok && x->locs;
        for (size_t k = first; ok && k < r; k++) {
            ok = (x->locs[x->nlocs] = strdup(PQgetvalue(cl, (int)k, 1))) != NULL;
            x->nlocs += ok;
            ok = ok && rm__cat(&c->canon, &len, &cap, "\x1f") &&
                 rm__cat(&c->canon, &len, &cap, PQgetvalue(cl, (int)k, 1));
        }
        ok = ok && rm__cat(&c->canon, &len, &cap, "\x1e");
    }
    if (ok && !c->canon)
        ok = rm__cat(&c->canon, &len, &cap, "");
    if (!ok)
        st = SF_ERR(err, SF_ENOMEM, "read model: out of memory reading the configuration");
    if (st)
        rm__config_free(c);
    return st;
}

#define RM_POS_COLS                                                                                \
    "SELECT sku, location, on_hand, reserved, GREATEST(inbound, 0), damaged, version,"             \
    " (extract(epoch FROM updated_at) * 1000)::bigint FROM positions"
#define RM_PUB_COLS                                                                                \
    "SELECT DISTINCT ON (channel, sku) channel, sku, version, ats, computed_at"                    \
    " FROM channel_stock WHERE state = 'sent'"

/* Apply position rows; a changed one marks its sku dirty. */
static sf_status rm__apply_positions(api_rm *rm, const PGresult *res, sf_error *err)
{
    for (int r = 0; r < PQntuples(res); r++) {
        rm_entry *e = rm__entry(rm, PQgetvalue(res, r, 0), err);
        if (!e)
            return err->status;
        const char *loc = PQgetvalue(res, r, 1);
        long i = rm__bsearch(e->pos, e->npos, sizeof(rm_pos), loc);
        rm_pos *p;
        if (i >= 0) {
            p = &e->pos[i];
        } else {
            p = rm__insert((void **)&e->pos, &e->npos, &e->cap_pos, sizeof(rm_pos), i, loc);
            if (!p)
                return SF_ERR(err, SF_ENOMEM, "read model: out of memory");
            rm->npositions++;
        }
        rm_pos n = {.location = p->location,
                    .on_hand = rm__i64(res, r, 2),
                    .reserved = rm__i64(res, r, 3),
                    .inbound = rm__i64(res, r, 4),
                    .damaged = rm__i64(res, r, 5),
                    .version = rm__i64(res, r, 6),
                    .updated_ms = rm__i64(res, r, 7),
                    .gen = rm->gen};
        if (i < 0 || memcmp(&n, p, offsetof(rm_pos, gen)) != 0)
            e->dirty = true;
        *p = n;
    }
    return SF_OK;
}

/* Apply the last sent channel_stock rows: a newer version wins (a full
 * load replaces whatever is held). */
static sf_status rm__apply_published(api_rm *rm, const PGresult *res, bool full, sf_error *err)
{
    for (int r = 0; r < PQntuples(res); r++) {
        rm_entry *e = rm__entry(rm, PQgetvalue(res, r, 1), err);
        if (!e)
            return err->status;
        const char *ch = PQgetvalue(res, r, 0);
        long i = rm__bsearch(e->pub, e->npub, sizeof(rm_pub), ch);
        rm_pub *p;
        if (i >= 0) {
            p = &e->pub[i];
        } else {
            p = rm__insert((void **)&e->pub, &e->npub, &e->cap_pub, sizeof(rm_pub), i, ch);
            if (!p)
                return SF_ERR(err, SF_ENOMEM, "read model: out of memory");
        }
        int64_t version = rm__i64(res, r, 2);
        p->gen = rm->gen;
        if (i >= 0 && !full && version <= p->version)
            continue;
        int64_t ats = rm__i64(res, r, 3), computed_at = rm__i64(res, r, 4);
        if (i < 0 || p->version != version || p->ats != ats || p->computed_at != computed_at)
            e->dirty = true;
        p->version = version;
        p->ats = ats;
        p->computed_at = computed_at;
    }
    return SF_OK;
}

/* After a full load: drop what the snapshot no longer holds. */
static void rm__prune(api_rm *rm)
{
    for (size_t k = 0; k < rm->nall; k++) {
        rm_entry *e = rm->all[k];
        size_t o = 0;
        for (size_t i = 0; i < e->npos; i++) {
            if (e->pos[i].gen == rm->gen) {
                e->pos[o++] = e->pos[i];
            } else {
                free(e->pos[i].location);
                e->dirty = true;
                rm->npositions--;
            }
        }
        e->npos = o;
        o = 0;
        for (size_t i = 0; i < e->npub; i++) {
            if (e->pub[i].gen == rm->gen) {
                e->pub[o++] = e->pub[i];
            } else {
                free(e->pub[i].channel);
                e->dirty = true;
            }
        }
        e->npub = o;
    }
}

/* One poll (full: a load from scratch). See read_model.h for why the
 * horizon is read first, in its own statement. */
static sf_status rm__poll(api_rm *rm, bool full, sf_error *err)
{
    int64_t t0 = rm__mono_us();
    PGresult *h = NULL, *bs[2] = {NULL, NULL}, *b[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    rm_config cfg;
    memset(&cfg, 0, sizeof cfg);
    bool in_tx = false;
    /* Round trip 1, its own transaction: the horizon. */
    sf_status st = rm__query(rm, "horizon",
                             "SELECT (extract(epoch FROM LEAST(now(), min(xact_start))) * 1e6)"
                             "::bigint, COALESCE(bool_or(query = '<insufficient privilege>'),"
                             " false) FROM pg_stat_activity"
                             " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
                             0, NULL, &h, err);
    if (st)
        goto out;
    int64_t horizon = rm__i64(h, 0, 0);
    if (PQgetvalue(h, 0, 1)[0] == 't')
        horizon -= RM_BLIND_US;
    /* Round trip 2: the snapshot, to skip a poll when nothing committed. */
    in_tx = true;
    if ((st = rm__batch(rm, "snapshot",
                        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
                        " SELECT pg_current_snapshot()::text",
                        bs, 2, err)))
        goto out;
    const char *s = PQgetvalue(bs[1], 0, 0);
    if (!full && rm->snap && !strcmp(rm->snap, s)) {
        atomic_fetch_add(&rm->st_skipped, 1);
        goto out; /* nothing committed since the last poll */
    }
    /* Round trip 3: everything else, in that snapshot. */
    char sql[2048], since[160];
    snprintf(since, sizeof since, " >= 'epoch'::timestamptz + %lld * interval '1 microsecond'",
             (long long)(rm->horizon_us - RM_MARGIN_US));
    snprintf(sql, sizeof sql,
             "SELECT location, safety_stock FROM locations ORDER BY location;"
             " SELECT channel, buffer FROM channels ORDER BY channel;"
             " SELECT channel, location FROM channel_locations ORDER BY channel, location;"
             " " RM_POS_COLS "%s%s;"
             " " RM_PUB_COLS "%s%s ORDER BY channel, sku, version DESC;"
             " COMMIT",
             full ? "" : " WHERE updated_at", full ? "" : since, full ? "" : " AND sent_at",
             full ? "" : since);
    if ((st = rm__batch(rm, full ? "load" : "poll", sql, b, 6, err)))
        goto out;
    in_tx = false;
    if ((st = rm__config_read(b[0], b[1], b[2], &cfg, err)))
        goto out;
    PGresult *pos = b[3], *pub = b[4];

    if (full) {
        rm->gen++;
        size_t want = (size_t)PQntuples(pos) / 4 + 1;
        if ((st = rm__grow(rm, want < RM_MIN_BUCKETS ? RM_MIN_BUCKETS : want, err)))
            goto out;
    }
    if ((st = rm__apply_positions(rm, pos, err)) || (st = rm__apply_published(rm, pub, full, err)))
        goto out;
    if (full)
        rm__prune(rm);
    bool cfg_changed = !rm->cfg.canon || strcmp(rm->cfg.canon, cfg.canon) != 0;
    if (cfg_changed) {
        rm__config_free(&rm->cfg);
        rm->cfg = cfg;
        memset(&cfg, 0, sizeof cfg);
    }
    for (size_t k = 0; k < rm->nall; k++) {
        if (cfg_changed || rm->all[k]->dirty)
            rm__publish(rm, rm->all[k]);
    }
    char *ns = strdup(s);
    if (!ns) {
        st = SF_ERR(err, SF_ENOMEM, "read model: out of memory");
        goto out;
    }
    free(rm->snap);
    rm->snap = ns;
    rm->horizon_us = horizon;
    atomic_fetch_add(full ? &rm->st_loads : &rm->st_polls, 1);
    atomic_store(&rm->st_last_poll_us, rm__mono_us() - t0);
    int64_t skus = 0;
    for (size_t k = 0; k < rm->nall; k++)
        skus += rm->all[k]->npos > 0;
    atomic_store(&rm->st_skus, skus);
    atomic_store(&rm->st_positions, rm->npositions);
out:
    if (in_tx) {
        sf_error ignore;
        if (rm__exec(rm, "commit", "COMMIT", &ignore))
            sf_log(SF_LOG_DEBUG, "%s", ignore.msg);
    }
    rm__config_free(&cfg);
    PQclear(h);
    for (int i = 0; i < 2; i++)
        PQclear(bs[i]);
    for (int i = 0; i < 6; i++)
        PQclear(b[i]);
    return st;
}

/* Sleep refresh_ms, watching the connection: PostgreSQL going away is
 * seen at once (the socket turns readable and reads EOF), so lookups go
 * back to PostgreSQL before anyone is served an unknowable state. */
static void rm__wait(api_rm *rm, int64_t ms)
{
    int64_t end = rm__mono_us() / 1000 + ms;
    while (!atomic_load(&rm->stop)) {
        int64_t left = end - rm__mono_us() / 1000;
        if (left <= 0)
            return;
        int slice = left < RM_WAIT_SLICE_MS ? (int)left : RM_WAIT_SLICE_MS;
        if (!rm->pg) {
            struct timespec ts = {slice / 1000, (long)(slice % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        struct pollfd pfd = {.fd = PQsocket(rm->pg), .events = POLLIN};
        int n = poll(&pfd, 1, slice);
        if (n > 0 && (!PQconsumeInput(rm->pg) || PQstatus(rm->pg) != CONNECTION_OK)) {
            sf_log(SF_LOG_WARN, "read model: connection to postgres lost; reads go to postgres");
            rm->pg_down_logged = true;
            rm__disconnect(rm);
        }
        PGnotify *nf;
        while (rm->pg && (nf = PQnotifies(rm->pg)))
            PQfreemem(nf);
    }
}

static void *rm__main(void *arg)
{
    api_rm *rm = arg;
    while (!atomic_load(&rm->stop)) {
        sf_error err;
        sf_status st = SF_OK;
        if (!rm->pg)
            st = rm__connect(rm, &err);
        int64_t t0_ms = rm__mono_us() / 1000;
        if (!st) {
            bool full = !rm->loaded;
            st = rm__poll(rm, full, &err);
            if (!st && full) {
                rm->loaded = true;
                sf_log(SF_LOG_INFO,
                       "read model: loaded %lld skus, %lld positions in %lld ms; refreshing"
                       " every %d ms",
                       (long long)atomic_load(&rm->st_skus),
                       (long long)atomic_load(&rm->st_positions),
                       (long long)atomic_load(&rm->st_last_poll_us) / 1000, rm->refresh_ms);
            }
        }
        if (st) {
            if (!rm->pg_down_logged)
                sf_log(SF_LOG_WARN, "%s (reads go to postgres; retrying every %d ms)", err.msg,
                       rm->refresh_ms);
            rm->pg_down_logged = true;
            rm__disconnect(rm);
        } else {
            if (rm->pg_down_logged)
                sf_log(SF_LOG_INFO, "read model: current again");
            rm->pg_down_logged = false;
            atomic_store_explicit(&rm->last_ok_ms, t0_ms, memory_order_relaxed);
            atomic_store_explicit(&rm->current, true, memory_order_release);
        }
        rm__wait(rm, rm->refresh_ms);
    }
    return NULL;
}

/* ------------------------------------------------------------ lifecycle --- */

void api_rm_opts_init(api_rm_opts *o)
{
    memset(o, 0, sizeof *o);
    o->refresh_ms = API_RM_REFRESH_MS_DEFAULT;
}

static void rm__free(api_rm *rm)
{
    for (size_t k = 0; k < rm->nall; k++) {
        rm_entry *e = rm->all[k];
        for (size_t i = 0; i < e->npos; i++)
            free(e->pos[i].location);
        for (size_t i = 0; i < e->npub; i++)
            free(e->pub[i].channel);
        free(e->pos);
        free(e->pub);
        rm__view_free(e->view);
        free(e->sku);
        free(e);
    }
    free(rm->all);
    free(rm->buckets);
    rm__config_free(&rm->cfg);
    if (rm->pg)
        PQfinish(rm->pg);
    for (int i = 0; i < RM_STRIPES; i++)
        pthread_rwlock_destroy(&rm->stripes[i]);
    free(rm->snap);
    free(rm->dsn);
    free(rm);
}

sf_status api_rm_start(const api_rm_opts *o, api_rm **out, sf_error *err)
{
    *out = NULL;
    if (o->refresh_ms < 1 || o->refresh_ms > API_RM_REFRESH_MS_MAX)
        return SF_ERR(err, SF_EINVAL, "read model: refresh_ms %d is not in 1..%d", o->refresh_ms,
                      API_RM_REFRESH_MS_MAX);
    api_rm *rm = calloc(1, sizeof *rm);
    if (!rm)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    for (int i = 0; i < RM_STRIPES; i++)
        pthread_rwlock_init(&rm->stripes[i], NULL);
    rm->refresh_ms = o->refresh_ms;
    rm->stale_ms = 10LL * o->refresh_ms > RM_STALE_MIN_MS ? 10LL * o->refresh_ms : RM_STALE_MIN_MS;
    atomic_init(&rm->stop, false);
    atomic_init(&rm->current, false);
    atomic_init(&rm->last_ok_ms, 0);
    rm->nbuckets = RM_MIN_BUCKETS;
    rm->buckets = calloc(rm->nbuckets, sizeof *rm->buckets);
    rm->dsn = strdup(o->pg_dsn);
    if (!rm->buckets || !rm->dsn) {
        rm__free(rm);
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    }
    if (pthread_create(&rm->thread, NULL, rm__main, rm) != 0) {
        rm__free(rm);
        return SF_ERR(err, SF_EINTERNAL, "read model: cannot start its thread");
    }
    rm->running = true;
    *out = rm;
    return SF_OK;
}

void api_rm_stop(api_rm *rm)
{
    if (!rm)
        return;
    atomic_store(&rm->stop, true);
    if (rm->running)
        pthread_join(rm->thread, NULL);
    rm__free(rm);
}

void api_rm_stats_get(api_rm *rm, api_rm_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!rm)
        return;
    out->skus = atomic_load(&rm->st_skus);
    out->positions = atomic_load(&rm->st_positions);
    out->polls = atomic_load(&rm->st_polls);
    out->skipped_polls = atomic_load(&rm->st_skipped);
    out->loads = atomic_load(&rm->st_loads);
    out->last_poll_us = atomic_load(&rm->st_last_poll_us);
    out->current = atomic_load(&rm->current) ? 1 : 0;
}
