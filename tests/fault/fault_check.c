/*
 * fault_check: the fault suite's Jepsen-style checker. After the whole
 * pipeline ran under injected faults (tests/fault/run.sh) and drained, it
 * recomputes from the generated input alone what the pipeline must hold,
 * compares that with PostgreSQL and with INV_CHANNEL, and prints five
 * counts; any count above 0 fails (exit 1):
 *
 *   lost           acknowledged input events (file lines of a run that
 *                  exited 0, ZeroMQ events answered "ok", supplier feed
 *                  records of a run that exited 0) missing from the ledger
 *   duplicated     an event applied twice, seen through its effects: a
 *                  position that equals the model with one of its events
 *                  counted twice; two different payloads under one
 *                  INV_CHANNEL msg id (or a message unlike the channel_stock
 *                  row of its version); a ledger row unlike the input event
 *                  with its id
 *   unexpected     ledger rows whose event_id is in no input
 *   position drift positions (on_hand, reserved, inbound raw, damaged) and
 *                  reservations (reserved, released, sold) rows unlike the
 *                  model, plus rows missing on either side
 *   channel drift  (channel, sku) pairs whose latest channel_stock version
 *                  is not the ats the model implies (DESIGN.md formula with
 *                  safety stock and buffers), is still pending, or is not
 *                  the last ChannelStock INV_CHANNEL holds for the pair
 *
 * The one idea: nothing the check relies on comes from the code under test
 * except the parser inv-ingest uses (common/event_parse.h, so a line means
 * the same thing to both) and, for supplier records, the event ids that
 * `inv-supplier --dry-run` prints (their content is checked against the
 * feed itself). Positions come from the in-memory model
 * (common/stock_model.h) over the exact set of input events, ats from the
 * channel definitions given on the command line; the database is read in
 * one REPEATABLE READ snapshot.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker_pull.h"
#include "codec.h"
#include "db.h"
#include "event.h"
#include "event_parse.h"
#include "stock_model.h"

enum { FC_MAX_INPUTS = 256, FC_MAX_CHANNELS = 16, FC_MAX_LOCS = 64, FC_FETCH_ROWS = 20000 };

/* --- arena and string-keyed table ------------------------------------------------ */

typedef struct fc_chunk {
    struct fc_chunk *next;
    size_t used, size;
    _Alignas(max_align_t) unsigned char data[];
} fc_chunk;

static fc_chunk *fc_arena;

/* Arena memory for the whole run (freed at exit); aborts when exhausted:
 * a checker without memory cannot give an answer. */
static void *fc__alloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!fc_arena || fc_arena->size - fc_arena->used < n) {
        size_t size = n > (size_t)1 << 20 ? n : (size_t)1 << 20;
        fc_chunk *c = malloc(sizeof *c + size);
        if (!c) {
            fprintf(stderr, "fault_check: out of memory\n");
            exit(2);
        }
        c->next = fc_arena;
        c->used = 0;
        c->size = size;
        fc_arena = c;
    }
    void *p = fc_arena->data + fc_arena->used;
    fc_arena->used += n;
    memset(p, 0, n);
    return p;
}

static char *fc__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = fc__alloc(n);
    memcpy(p, s, n);
    return p;
}

static void fc__arena_free(void)
{
    while (fc_arena) {
        fc_chunk *next = fc_arena->next;
        free(fc_arena);
        fc_arena = next;
    }
}

static uint64_t fc__hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

/* Items start with their key. */
typedef struct fc_item {
    const char *key;
} fc_item;

typedef struct fc_slot {
    uint64_t hash;
    fc_item *item;
} fc_slot;

typedef struct fc_table {
    fc_slot *slots;
    size_t cap, len;
} fc_table;

static fc_slot *fc__slot(const fc_table *t, const char *key, uint64_t h)
{
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        fc_slot *s = &t->slots[i];
        if (!s->item || (s->hash == h && strcmp(s->item->key, key) == 0))
            return s;
    }
}

static void *fc__find(const fc_table *t, const char *key)
{
    if (t->cap == 0)
        return NULL;
    return fc__slot(t, key, fc__hash(key, strlen(key)))->item;
}

static void fc__grow(fc_table *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 1024;
    fc_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns) {
        fprintf(stderr, "fault_check: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].item)
            continue;
        size_t j = (size_t)t->slots[i].hash & (ncap - 1);
        while (ns[j].item)
            j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
}

/* The item under key, or a new zeroed one of `size` bytes (key copied);
 * *created tells which. */
static void *fc__get(fc_table *t, const char *key, size_t size, bool *created)
{
    if ((t->len + 1) * 10 > t->cap * 7)
        fc__grow(t);
    uint64_t h = fc__hash(key, strlen(key));
    fc_slot *s = fc__slot(t, key, h);
    *created = !s->item;
    if (s->item)
        return s->item;
    fc_item *it = fc__alloc(size);
    it->key = fc__strdup(key);
    s->hash = h;
    s->item = it;
    t->len++;
    return it;
}

typedef void (*fc_each_fn)(void *item, void *ctx);

static void fc__each(const fc_table *t, fc_each_fn fn, void *ctx)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].item)
            fn(t->slots[i].item, ctx);
}

/* --- options and results --------------------------------------------------------- */

typedef enum fc_origin { FC_FILE = 0, FC_ZMQ, FC_SUPPLIER, FC_ORIGINS } fc_origin;
static const char *const fc_origin_name[FC_ORIGINS] = {"files", "zmq", "supplier"};

typedef struct fc_channel {
    char name[SF_STR_MAX + 1];
    int64_t buffer;
    char locs[FC_MAX_LOCS][SF_STR_MAX + 1];
    size_t nlocs;
} fc_channel;

typedef struct fc_safety {
    char loc[SF_STR_MAX + 1];
    int64_t qty;
} fc_safety;

typedef struct fc_opts {
    const char *files[FC_MAX_INPUTS];
    size_t nfiles;
    const char *zmq[FC_MAX_INPUTS];
    size_t nzmq;
    const char *zmq_acked[FC_MAX_INPUTS];
    size_t nzmq_acked;
    const char *sup_csv[FC_MAX_INPUTS];
    const char *sup_events[FC_MAX_INPUTS];
    size_t nsup, nsup_events;
    const char *supplier;
    fc_channel channels[FC_MAX_CHANNELS];
    size_t nchannels;
    fc_safety safety[FC_MAX_LOCS];
    size_t nsafety;
    const char *pg_dsn;
    const char *nats_url;
    long examples;
} fc_opts;

typedef struct fc_counts {
    uint64_t lost;
    uint64_t dup_positions, dup_channel, dup_content;
    uint64_t unexpected;
    uint64_t drift_positions, drift_reservations;
    uint64_t drift_channel;
    uint64_t input_errors, check_errors;
} fc_counts;

typedef struct fc_input {
    const char *key; /* event_id */
    uint64_t content;
    uint8_t origin;
    bool acked, in_ledger;
} fc_input;

typedef struct fc_state {
    const fc_opts *o;
    fc_counts c;
    fc_table inputs;
    sf_model *model;
    uint64_t lines[FC_ORIGINS], distinct[FC_ORIGINS];
    uint64_t acked, not_acked_stored, not_acked_absent;
    /* database */
    uint64_t ledger_rows, derived;
    sf_event *derived_evs;
    size_t nderived, capderived;
    uint64_t position_rows, reservation_rows, channel_rows, channel_msgs;
    uint64_t examples_printed[8];
} fc_state;

enum { EX_LOST, EX_DUP, EX_UNEXPECTED, EX_DRIFT, EX_CHANNEL, EX_INPUT, EX_CHECK };

__attribute__((format(printf, 3, 4))) static void fc__example(fc_state *s, int kind,
                                                              const char *fmt, ...)
{
    if (s->examples_printed[kind]++ >= (uint64_t)s->o->examples)
        return;
    static const char *const names[] = {"lost",    "duplicated", "unexpected", "drift",
                                        "channel", "input",      "check"};
    va_list ap;
    va_start(ap, fmt);
    printf("  %-10s ", names[kind]);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* --- content of an event, as text, hashed ----------------------------------------- */

/* The canonical content of an event: every field but the id, absent
 * optional fields distinguished from empty ones. The ledger row and the
 * input event must give the same text. */
typedef struct fc_fields {
    const char *kind, *sku, *location, *qty, *occurred_at, *source;
    const char *channel, *ref, *condition, *expires_at; /* NULL: absent */
} fc_fields;

static uint64_t fc__content(const fc_fields *f)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%c%s\x1f%c%s\x1f%c%s\x1f%c%s", f->kind,
                     f->sku, f->location, f->qty, f->occurred_at, f->source, f->channel ? '+' : '-',
                     f->channel ? f->channel : "", f->ref ? '+' : '-', f->ref ? f->ref : "",
                     f->condition ? '+' : '-', f->condition ? f->condition : "",
                     f->expires_at ? '+' : '-', f->expires_at ? f->expires_at : "");
    if (n < 0)
        n = 0;
    return fc__hash(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static uint64_t fc__event_content(const sf_event *e)
{
    char qty[24], at[24], exp[24];
    snprintf(qty, sizeof qty, "%" PRId64, e->qty);
    snprintf(at, sizeof at, "%" PRId64, e->occurred_at);
    snprintf(exp, sizeof exp, "%" PRId64, e->expires_at);
    fc_fields f = {.kind = sf_kind_name(e->kind),
                   .sku = e->sku,
                   .location = e->location,
                   .qty = qty,
                   .occurred_at = at,
                   .source = e->source,
                   .channel = e->has_channel ? e->channel : NULL,
                   .ref = e->has_ref ? e->ref : NULL,
                   .condition = e->has_condition ? sf_condition_name(e->condition) : NULL,
                   .expires_at = e->has_expires_at ? exp : NULL};
    return fc__content(&f);
}

/* --- inputs ------------------------------------------------------------------------- */

typedef int (*fc_event_fn)(fc_state *s, const sf_event *ev, fc_origin origin);

static void fc__parse_opts(sf_parse_opts *po)
{
    sf_parse_opts_init(po);
    po->default_source = "inv-ingest"; /* what inv-ingest gives a line without one */
}

/* Every event of a JSON-lines or CSV file, parsed as inv-ingest parses it.
 * A line the ingest would reject is an input error: that run could not
 * have exited 0. */
static int fc__read_file(fc_state *s, const char *path, fc_origin origin, fc_event_fn fn)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fault_check: %s: %s\n", path, strerror(errno));
        return -1;
    }
    sf_parse_opts po;
    fc__parse_opts(&po);
    sf_feed_reader *r = NULL;
    sf_error err;
    int rc = 0;
    if (sf_feed_reader_new(f, &po, &r, &err) != SF_OK) {
        fprintf(stderr, "fault_check: %s: %s\n", path, err.msg);
        fclose(f);
        return -1;
    }
    for (;;) {
        sf_feed_item item;
        sf_status st = sf_feed_reader_next(r, &item, &err);
        if (st == SF_ENOTFOUND)
            break;
        if (st != SF_OK) {
            fprintf(stderr, "fault_check: %s: %s\n", path, err.msg);
            rc = -1;
            break;
        }
        if (!item.ok) {
            s->c.input_errors++;
            fc__example(s, EX_INPUT, "%s:%s", path, item.error.msg);
            continue;
        }
        if ((rc = fn(s, &item.event, origin)) != 0)
            break;
    }
    sf_feed_reader_free(r);
    fclose(f);
    return rc;
}

static bool fc__same_record(const sf_event *feed, const sf_event *pub)
{
    return feed->kind == pub->kind && !strcmp(feed->sku, pub->sku) &&
           !strcmp(feed->location, pub->location) && feed->qty == pub->qty &&
           feed->occurred_at == pub->occurred_at && !pub->has_channel && !pub->has_ref &&
           !pub->has_condition && !pub->has_expires_at;
}

/* A supplier feed (CSV whose columns are named like the event fields, so
 * event_parse reads it) beside the events `inv-supplier --dry-run` made
 * of it, record by record: the content must match the feed, the source
 * must be the supplier; the ids are the supplier's (sup-...). */
static int fc__read_supplier(fc_state *s, const char *csv, const char *events, fc_event_fn fn)
{
    FILE *fc = fopen(csv, "rb"), *fe = fopen(events, "rb");
    sf_feed_reader *rc_ = NULL, *re = NULL;
    sf_parse_opts po;
    fc__parse_opts(&po);
    sf_error err;
    int rc = -1;
    if (!fc || !fe) {
        fprintf(stderr, "fault_check: %s: %s\n", fc ? events : csv, strerror(errno));
        goto out;
    }
    if (sf_feed_reader_new(fc, &po, &rc_, &err) != SF_OK ||
        sf_feed_reader_new(fe, &po, &re, &err) != SF_OK) {
        fprintf(stderr, "fault_check: %s\n", err.msg);
        goto out;
    }
    rc = 0;
    for (uint64_t rec = 1;; rec++) {
        sf_feed_item a, b;
        sf_status sa = sf_feed_reader_next(rc_, &a, &err);
        if (sa != SF_OK && sa != SF_ENOTFOUND) {
            fprintf(stderr, "fault_check: %s: %s\n", csv, err.msg);
            rc = -1;
            break;
        }
        sf_status sb = sf_feed_reader_next(re, &b, &err);
        if (sb != SF_OK && sb != SF_ENOTFOUND) {
            fprintf(stderr, "fault_check: %s: %s\n", events, err.msg);
            rc = -1;
            break;
        }
        if (sa == SF_ENOTFOUND && sb == SF_ENOTFOUND)
            break;
        if (sa != sb || !a.ok || !b.ok) {
            s->c.input_errors++;
            fc__example(s, EX_INPUT, "%s record %" PRIu64 ": %s", csv, rec,
                        sa != sb ? "the feed and the dry run have different record counts"
                        : !a.ok  ? a.error.msg
                                 : b.error.msg);
            if (sa != sb)
                break;
            continue;
        }
        if (!fc__same_record(&a.event, &b.event) || strcmp(b.event.source, s->o->supplier) ||
            strncmp(b.event.event_id, "sup-", 4)) {
            s->c.input_errors++;
            fc__example(s, EX_INPUT,
                        "%s record %" PRIu64 ": the dry run made %s (%s %s@%s qty %" PRId64
                        ", source %s) of it",
                        csv, rec, b.event.event_id, sf_kind_name(b.event.kind), b.event.sku,
                        b.event.location, b.event.qty, b.event.source);
            continue;
        }
        if ((rc = fn(s, &b.event, FC_SUPPLIER)) != 0)
            break;
    }
out:
    sf_feed_reader_free(rc_);
    sf_feed_reader_free(re);
    if (fc)
        fclose(fc);
    if (fe)
        fclose(fe);
    return rc;
}

/* Every input event, in a fixed order. */
static int fc__inputs_each(fc_state *s, fc_event_fn fn)
{
    const fc_opts *o = s->o;
    for (size_t i = 0; i < o->nfiles; i++)
        if (fc__read_file(s, o->files[i], FC_FILE, fn))
            return -1;
    for (size_t i = 0; i < o->nzmq; i++)
        if (fc__read_file(s, o->zmq[i], FC_ZMQ, fn))
            return -1;
    for (size_t i = 0; i < o->nsup; i++)
        if (fc__read_supplier(s, o->sup_csv[i], o->sup_events[i], fn))
            return -1;
    return 0;
}

/* First pass: the id table (content, origin, acknowledged) and the model. */
static int fc__add_input(fc_state *s, const sf_event *ev, fc_origin origin)
{
    s->lines[origin]++;
    bool created;
    fc_input *in = fc__get(&s->inputs, ev->event_id, sizeof *in, &created);
    uint64_t content = fc__event_content(ev);
    if (!created) {
        if (in->content != content) {
            s->c.input_errors++;
            fc__example(s, EX_INPUT, "event %s appears twice in the input with different content",
                        ev->event_id);
        }
        if (origin != FC_ZMQ && !in->acked) {
            in->acked = true;
            s->acked++;
        }
        return 0;
    }
    in->content = content;
    in->origin = (uint8_t)origin;
    /* A file or supplier run is re-done until it exits 0: every line of it
     * was accepted. ZeroMQ events count once the client got "ok". */
    in->acked = origin != FC_ZMQ;
    if (in->acked)
        s->acked++;
    s->distinct[origin]++;
    sf_error err;
    bool dup;
    if (sf_model_add(s->model, ev, &dup, &err) != SF_OK) {
        fprintf(stderr, "fault_check: model: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int fc__load_acked(fc_state *s, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fault_check: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[256];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!*line)
            continue;
        fc_input *in = fc__find(&s->inputs, line);
        if (!in || in->origin != FC_ZMQ) {
            s->c.input_errors++;
            fc__example(s, EX_INPUT, "%s: %s was acknowledged but is no ZeroMQ input", path, line);
            continue;
        }
        if (!in->acked) {
            in->acked = true;
            s->acked++;
        }
    }
    fclose(f);
    return 0;
}

/* --- database --------------------------------------------------------------------- */

typedef int (*fc_row_fn)(fc_state *s, PGresult *res, int row);

/* Run sql through a cursor (bounded memory), calling fn for every row. */
static int fc__scan(fc_state *s, PGconn *pg, const char *sql, fc_row_fn fn)
{
    char decl[1024];
    snprintf(decl, sizeof decl, "DECLARE fc_cur NO SCROLL CURSOR FOR %s", sql);
    sf_error err;
    if (sf_db_exec(pg, decl, &err) != SF_OK) {
        fprintf(stderr, "fault_check: %s\n", err.msg);
        return -1;
    }
    char fetch[64];
    snprintf(fetch, sizeof fetch, "FETCH %d FROM fc_cur", FC_FETCH_ROWS);
    int rc = 0;
    for (;;) {
        PGresult *res = NULL;
        if (sf_db_query(pg, fetch, 0, NULL, &res, &err) != SF_OK) {
            fprintf(stderr, "fault_check: %s\n", err.msg);
            rc = -1;
            break;
        }
        int n = PQntuples(res);
        for (int i = 0; i < n && !rc; i++)
            rc = fn(s, res, i);
        PQclear(res);
        if (n == 0 || rc)
            break;
    }
    if (sf_db_exec(pg, "CLOSE fc_cur", &err) != SF_OK && !rc) {
        fprintf(stderr, "fault_check: %s\n", err.msg);
        rc = -1;
    }
    return rc;
}

static const char *fc__val(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static int64_t fc__i64(PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* A ledger row as an event (derived expiry releases join the model). */
static bool fc__row_event(PGresult *res, int r, sf_event *ev)
{
    sf_event_init(ev);
    sf_error err;
    const char *cond = fc__val(res, r, 9), *exp = fc__val(res, r, 10);
    snprintf(ev->event_id, sizeof ev->event_id, "%s", PQgetvalue(res, r, 0));
    if (sf_kind_parse(PQgetvalue(res, r, 1), &ev->kind, &err) != SF_OK)
        return false;
    snprintf(ev->sku, sizeof ev->sku, "%s", PQgetvalue(res, r, 2));
    snprintf(ev->location, sizeof ev->location, "%s", PQgetvalue(res, r, 3));
    ev->qty = fc__i64(res, r, 4);
    ev->occurred_at = fc__i64(res, r, 5);
    snprintf(ev->source, sizeof ev->source, "%s", PQgetvalue(res, r, 6));
    if ((ev->has_channel = fc__val(res, r, 7) != NULL))
        snprintf(ev->channel, sizeof ev->channel, "%s", PQgetvalue(res, r, 7));
    if ((ev->has_ref = fc__val(res, r, 8) != NULL))
        snprintf(ev->ref, sizeof ev->ref, "%s", PQgetvalue(res, r, 8));
    if (cond) {
        ev->has_condition = true;
        if (sf_condition_parse(cond, &ev->condition, &err) != SF_OK)
            return false;
    }
    if (exp) {
        ev->has_expires_at = true;
        ev->expires_at = strtoll(exp, NULL, 10);
    }
    return true;
}

static int fc__ledger_row(fc_state *s, PGresult *res, int r)
{
    s->ledger_rows++;
    const char *id = PQgetvalue(res, r, 0);
    fc_fields f = {.kind = PQgetvalue(res, r, 1),
                   .sku = PQgetvalue(res, r, 2),
                   .location = PQgetvalue(res, r, 3),
                   .qty = PQgetvalue(res, r, 4),
                   .occurred_at = PQgetvalue(res, r, 5),
                   .source = PQgetvalue(res, r, 6),
                   .channel = fc__val(res, r, 7),
                   .ref = fc__val(res, r, 8),
                   .condition = fc__val(res, r, 9),
                   .expires_at = fc__val(res, r, 10)};
    fc_input *in = fc__find(&s->inputs, id);
    if (in) {
        in->in_ledger = true;
        if (in->content != fc__content(&f)) {
            s->c.dup_content++;
            fc__example(s, EX_DUP,
                        "ledger row %s (%s %s@%s qty %s at %s, source %s) differs from the input "
                        "event with that id",
                        id, f.kind, f.sku, f.location, f.qty, f.occurred_at, f.source);
        }
        return 0;
    }
    /* DESIGN.md: checkers treat the reconciler's expiry releases as derived. */
    if (!strcmp(f.source, "reservation-expiry") && !strncmp(id, "exp-", 4)) {
        sf_event ev;
        if (!fc__row_event(res, r, &ev)) {
            s->c.unexpected++;
            fc__example(s, EX_UNEXPECTED, "ledger row %s: unreadable derived event", id);
            return 0;
        }
        if (s->nderived == s->capderived) {
            size_t ncap = s->capderived ? s->capderived * 2 : 256;
            sf_event *nd = realloc(s->derived_evs, ncap * sizeof *nd);
            if (!nd)
                return -1;
            s->derived_evs = nd;
            s->capderived = ncap;
        }
        s->derived_evs[s->nderived++] = ev;
        s->derived++;
        sf_error err;
        bool dup;
        if (sf_model_add(s->model, &ev, &dup, &err) != SF_OK) {
            fprintf(stderr, "fault_check: model: %s\n", err.msg);
            return -1;
        }
        return 0;
    }
    s->c.unexpected++;
    fc__example(s, EX_UNEXPECTED, "ledger row %s (%s %s@%s qty %s, source %s) is in no input", id,
                f.kind, f.sku, f.location, f.qty, f.source);
    return 0;
}

static void fc__lost_one(void *item, void *ctx)
{
    fc_input *in = item;
    fc_state *s = ctx;
    if (in->acked && !in->in_ledger) {
        s->c.lost++;
        fc__example(s, EX_LOST, "%s (%s) was acknowledged but is not in the ledger", in->key,
                    fc_origin_name[in->origin]);
    } else if (!in->acked && in->in_ledger) {
        s->not_acked_stored++;
    } else if (!in->acked) {
        s->not_acked_absent++;
    }
}

/* --- positions and reservations ------------------------------------------------- */

typedef struct fc_drift {
    const char *key; /* sku \x1f location */
    const char *sku, *location;
    int64_t db[4];
    sf_event *evs; /* the key's events (second pass) */
    size_t nevs, capevs;
} fc_drift;

typedef struct fc_pos_ctx {
    fc_table seen;  /* keys of positions rows */
    fc_table drift; /* drifting keys with a model position */
} fc_pos_ctx;

static fc_pos_ctx fc_pos;

static const char *const fc_pos_fields[4] = {"on_hand", "reserved", "inbound", "damaged"};

static int fc__position_row(fc_state *s, PGresult *res, int r)
{
    s->position_rows++;
    const char *sku = PQgetvalue(res, r, 0), *loc = PQgetvalue(res, r, 1);
    char key[2 * SF_STR_MAX + 4];
    snprintf(key, sizeof key, "%s\x1f%s", sku, loc);
    bool created;
    (void)fc__get(&fc_pos.seen, key, sizeof(fc_item), &created);
    int64_t db[4] = {fc__i64(res, r, 2), fc__i64(res, r, 3), fc__i64(res, r, 4),
                     fc__i64(res, r, 5)};
    sf_position p;
    if (!sf_model_position(s->model, sku, loc, &p)) {
        s->c.drift_positions++;
        fc__example(s, EX_DRIFT, "positions row %s@%s: no input event touches it", sku, loc);
        return 0;
    }
    int64_t want[4] = {p.on_hand, p.reserved, p.inbound, p.damaged};
    char diff[256] = "";
    size_t len = 0;
    for (int i = 0; i < 4; i++)
        if (db[i] != want[i] && len < sizeof diff)
            len += (size_t)snprintf(diff + len, sizeof diff - len,
                                    " %s %" PRId64 " (model %" PRId64 ")", fc_pos_fields[i], db[i],
                                    want[i]);
    if (!len)
        return 0;
    s->c.drift_positions++;
    fc__example(s, EX_DRIFT, "%s@%s:%s", sku, loc, diff);
    fc_drift *d = fc__get(&fc_pos.drift, key, sizeof *d, &created);
    d->sku = fc__strdup(sku);
    d->location = fc__strdup(loc);
    memcpy(d->db, db, sizeof db);
    return 0;
}

static int fc__missing_position(const sf_position *p, void *ctx)
{
    fc_state *s = ctx;
    char key[2 * SF_STR_MAX + 4];
    snprintf(key, sizeof key, "%s\x1f%s", p->sku, p->location);
    if (!fc__find(&fc_pos.seen, key)) {
        s->c.drift_positions++;
        fc__example(s, EX_DRIFT, "%s@%s: no positions row (model on_hand %" PRId64 ")", p->sku,
                    p->location, p->on_hand);
    }
    return 0;
}

static fc_table fc_rsv_seen;

static int fc__reservation_row(fc_state *s, PGresult *res, int r)
{
    s->reservation_rows++;
    const char *ref = PQgetvalue(res, r, 0), *sku = PQgetvalue(res, r, 1),
               *loc = PQgetvalue(res, r, 2);
    char key[3 * SF_STR_MAX + 6];
    snprintf(key, sizeof key, "%s\x1f%s\x1f%s", ref, sku, loc);
    bool created;
    (void)fc__get(&fc_rsv_seen, key, sizeof(fc_item), &created);
    int64_t db[3] = {fc__i64(res, r, 3), fc__i64(res, r, 4), fc__i64(res, r, 5)};
    sf_reservation m;
    if (!sf_model_reservation(s->model, ref, sku, loc, &m)) {
        s->c.drift_reservations++;
        fc__example(s, EX_DRIFT, "reservations row '%s' %s@%s: no input event touches it", ref, sku,
                    loc);
        return 0;
    }
    if (db[0] != m.reserved || db[1] != m.released || db[2] != m.sold) {
        s->c.drift_reservations++;
        fc__example(s, EX_DRIFT,
                    "reservation '%s' %s@%s: reserved/released/sold %" PRId64 "/%" PRId64
                    "/%" PRId64 ", model %" PRId64 "/%" PRId64 "/%" PRId64,
                    ref, sku, loc, db[0], db[1], db[2], m.reserved, m.released, m.sold);
    }
    return 0;
}

static int fc__missing_reservation(const sf_reservation *m, void *ctx)
{
    fc_state *s = ctx;
    char key[3 * SF_STR_MAX + 6];
    snprintf(key, sizeof key, "%s\x1f%s\x1f%s", m->ref, m->sku, m->location);
    if (!fc__find(&fc_rsv_seen, key)) {
        s->c.drift_reservations++;
        fc__example(s, EX_DRIFT, "reservation '%s' %s@%s: no row (model reserved %" PRId64 ")",
                    m->ref, m->sku, m->location, m->reserved);
    }
    return 0;
}

/* Second pass: the events of the drifting positions. */
static void fc__drift_push(fc_drift *d, const sf_event *ev)
{
    if (d->nevs == d->capevs) {
        size_t ncap = d->capevs ? d->capevs * 2 : 16;
        sf_event *n = realloc(d->evs, ncap * sizeof *n);
        if (!n) {
            fprintf(stderr, "fault_check: out of memory\n");
            exit(2);
        }
        d->evs = n;
        d->capevs = ncap;
    }
    d->evs[d->nevs++] = *ev;
}

static int fc__collect_drift(fc_state *s, const sf_event *ev, fc_origin origin)
{
    (void)s;
    (void)origin;
    char key[2 * SF_STR_MAX + 4];
    snprintf(key, sizeof key, "%s\x1f%s", ev->sku, ev->location);
    fc_drift *d = fc__find(&fc_pos.drift, key);
    if (d)
        fc__drift_push(d, ev);
    return 0;
}

/* Does the row equal the model of the key's events with one of them
 * counted twice? Then it is a duplicate, not just drift. */
static void fc__double_count(void *item, void *ctx)
{
    fc_drift *d = item;
    fc_state *s = ctx;
    bool seen_ids = false;
    for (size_t j = 0; j < d->nevs; j++) {
        sf_model *m = NULL;
        sf_error err;
        if (sf_model_new(&m, &err) != SF_OK)
            return;
        bool dup, ok = true;
        for (size_t i = 0; i < d->nevs && ok; i++)
            ok = sf_model_add(m, &d->evs[i], &dup, &err) == SF_OK;
        sf_event twice = d->evs[j];
        snprintf(twice.event_id, sizeof twice.event_id, "%s", "~fault-check-twice~");
        ok = ok && sf_model_add(m, &twice, &dup, &err) == SF_OK;
        sf_position p;
        if (ok && sf_model_position(m, d->sku, d->location, &p) && p.on_hand == d->db[0] &&
            p.reserved == d->db[1] && p.inbound == d->db[2] && p.damaged == d->db[3]) {
            s->c.dup_positions++;
            fc__example(s, EX_DUP,
                        "%s@%s equals the model with %s (%s qty %" PRId64 ") applied twice", d->sku,
                        d->location, d->evs[j].event_id, sf_kind_name(d->evs[j].kind),
                        d->evs[j].qty);
            seen_ids = true;
        }
        sf_model_free(m);
        if (seen_ids)
            break;
    }
    free(d->evs);
    d->evs = NULL;
}

/* --- channels ------------------------------------------------------------------ */

typedef struct fc_pair { /* (channel, sku) */
    const char *key;
    const char *channel, *sku;
    bool in_model;
    int64_t model_ats;
    bool in_db;
    int64_t db_version, db_ats;
    bool db_sent;
    bool told;
    int64_t told_version, told_ats;
} fc_pair;

typedef struct fc_version { /* msg id channel:sku:version */
    const char *key;
    bool in_db;
    int64_t ats, computed_at;
    uint64_t msgs;
    int64_t told_ats, told_computed_at;
    bool differs;
} fc_version;

static fc_table fc_pairs, fc_versions;

static fc_pair *fc__pair(const char *channel, const char *sku)
{
    char key[2 * SF_STR_MAX + 4];
    snprintf(key, sizeof key, "%s\x1f%s", channel, sku);
    bool created;
    fc_pair *p = fc__get(&fc_pairs, key, sizeof *p, &created);
    if (created) {
        p->channel = fc__strdup(channel);
        p->sku = fc__strdup(sku);
    }
    return p;
}

static int64_t fc__safety(const fc_opts *o, const char *loc)
{
    for (size_t i = 0; i < o->nsafety; i++)
        if (!strcmp(o->safety[i].loc, loc))
            return o->safety[i].qty;
    return 0;
}

typedef struct fc_ats_ctx {
    fc_state *s;
    const char *last_sku;
} fc_ats_ctx;

/* Positions come in (sku, location) order: compute each sku once. */
static int fc__model_ats(const sf_position *pos, void *vctx)
{
    fc_ats_ctx *a = vctx;
    if (a->last_sku && !strcmp(a->last_sku, pos->sku))
        return 0;
    a->last_sku = pos->sku;
    const fc_opts *o = a->s->o;
    for (size_t c = 0; c < o->nchannels; c++) {
        const fc_channel *ch = &o->channels[c];
        int64_t sum = 0;
        for (size_t l = 0; l < ch->nlocs; l++) {
            sf_position p;
            if (!sf_model_position(a->s->model, pos->sku, ch->locs[l], &p))
                continue;
            int64_t available = p.on_hand - p.reserved - fc__safety(o, ch->locs[l]);
            sum += available > 0 ? available : 0;
        }
        fc_pair *pr = fc__pair(ch->name, pos->sku);
        pr->in_model = true;
        pr->model_ats = sum - ch->buffer > 0 ? sum - ch->buffer : 0;
    }
    return 0;
}

static int fc__channel_stock_row(fc_state *s, PGresult *res, int r)
{
    s->channel_rows++;
    const char *ch = PQgetvalue(res, r, 0), *sku = PQgetvalue(res, r, 1);
    int64_t version = fc__i64(res, r, 2), ats = fc__i64(res, r, 3);
    bool sent = !strcmp(PQgetvalue(res, r, 4), "sent");
    char id[3 * SF_STR_MAX + 32];
    snprintf(id, sizeof id, "%s:%s:%" PRId64, ch, sku, version);
    bool created;
    fc_version *v = fc__get(&fc_versions, id, sizeof *v, &created);
    v->in_db = true;
    v->ats = ats;
    v->computed_at = fc__i64(res, r, 5);
    fc_pair *p = fc__pair(ch, sku);
    if (!p->in_db || version > p->db_version) {
        p->in_db = true;
        p->db_version = version;
        p->db_ats = ats;
        p->db_sent = sent;
    }
    return 0;
}

/* Check the channel definitions in the database against the ones the
 * driver configured (the expected ats is computed from the latter). */
static int fc__check_config(fc_state *s, PGconn *pg)
{
    const fc_opts *o = s->o;
    sf_error err;
    PGresult *res = NULL;
    if (sf_db_query(pg,
                    "SELECT c.channel, c.buffer, COALESCE(string_agg(cl.location, ',' ORDER BY "
                    "cl.location), '') FROM channels c LEFT JOIN channel_locations cl USING "
                    "(channel) GROUP BY c.channel, c.buffer ORDER BY c.channel",
                    0, NULL, &res, &err) != SF_OK) {
        fprintf(stderr, "fault_check: %s\n", err.msg);
        return -1;
    }
    size_t n = (size_t)PQntuples(res);
    if (n != o->nchannels) {
        s->c.check_errors++;
        fc__example(s, EX_CHECK, "the database defines %zu channels, the driver %zu", n,
                    o->nchannels);
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = PQgetvalue(res, (int)i, 0);
        const fc_channel *ch = NULL;
        for (size_t c = 0; c < o->nchannels; c++)
            if (!strcmp(o->channels[c].name, name))
                ch = &o->channels[c];
        char want[FC_MAX_LOCS * (SF_STR_MAX + 1) + 1] = "";
        if (ch) {
            /* fc__channel_arg sorted them bytewise, as the query does */
            size_t len = 0;
            for (size_t l = 0; l < ch->nlocs; l++)
                len += (size_t)snprintf(want + len, sizeof want - len, "%s%s", l ? "," : "",
                                        ch->locs[l]);
        }
        if (!ch || fc__i64(res, (int)i, 1) != ch->buffer ||
            strcmp(PQgetvalue(res, (int)i, 2), want)) {
            s->c.check_errors++;
            fc__example(s, EX_CHECK,
                        "channel %s in the database (buffer %s, locations %s) is not the "
                        "configured one",
                        name, PQgetvalue(res, (int)i, 1), PQgetvalue(res, (int)i, 2));
        }
    }
    PQclear(res);
    if (sf_db_query(pg, "SELECT location, safety_stock FROM locations WHERE safety_stock <> 0", 0,
                    NULL, &res, &err) != SF_OK) {
        fprintf(stderr, "fault_check: %s\n", err.msg);
        return -1;
    }
    size_t nonzero = 0;
    for (size_t i = 0; i < o->nsafety; i++)
        nonzero += o->safety[i].qty != 0;
    if ((size_t)PQntuples(res) != nonzero) {
        s->c.check_errors++;
        fc__example(s, EX_CHECK, "the database has %d locations with safety stock, the driver %zu",
                    PQntuples(res), nonzero);
    }
    for (int i = 0; i < PQntuples(res); i++) {
        if (fc__safety(o, PQgetvalue(res, i, 0)) != fc__i64(res, i, 1)) {
            s->c.check_errors++;
            fc__example(s, EX_CHECK, "location %s: safety stock %s in the database",
                        PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
        }
    }
    PQclear(res);
    return 0;
}

static void fc__told(fc_state *s, const sf_channel_stock *cs, const char *msg_id)
{
    char id[3 * SF_STR_MAX + 32];
    snprintf(id, sizeof id, "%s:%s:%" PRId64, cs->channel, cs->sku, cs->version);
    if (!msg_id || strcmp(msg_id, id)) {
        s->c.dup_channel++;
        fc__example(s, EX_DUP, "INV_CHANNEL message with msg id %s holds version %s",
                    msg_id ? msg_id : "(none)", id);
    }
    bool created;
    fc_version *v = fc__get(&fc_versions, id, sizeof *v, &created);
    if (v->msgs++ == 0) {
        v->told_ats = cs->ats;
        v->told_computed_at = cs->computed_at;
    } else if (v->told_ats != cs->ats || v->told_computed_at != cs->computed_at) {
        if (!v->differs) {
            s->c.dup_channel++;
            fc__example(s, EX_DUP,
                        "INV_CHANNEL holds two payloads under %s: ats %" PRId64 " and %" PRId64, id,
                        v->told_ats, cs->ats);
        }
        v->differs = true;
    }
    if (!v->in_db) {
        if (created) {
            s->c.drift_channel++;
            fc__example(s, EX_CHANNEL, "%s (ats %" PRId64 ") was told but has no channel_stock row",
                        id, cs->ats);
        }
    } else if (v->msgs == 1 && (v->ats != cs->ats || v->computed_at != cs->computed_at)) {
        s->c.dup_channel++;
        fc__example(s, EX_DUP, "%s: channel_stock says ats %" PRId64 ", INV_CHANNEL %" PRId64, id,
                    v->ats, cs->ats);
    }
    fc_pair *p = fc__pair(cs->channel, cs->sku);
    if (!p->told || cs->version > p->told_version) {
        p->told = true;
        p->told_version = cs->version;
        p->told_ats = cs->ats;
    }
}

/* Every ChannelStock on INV_CHANNEL, through a durable pull consumer of
 * our own per channel (a fresh name per run: its cursor starts at 1). */
static int fc__read_channels(fc_state *s)
{
    sf_broker *b = NULL;
    sf_codec *codec = NULL;
    sf_batch *bt = NULL;
    sf_error err;
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = s->o->nats_url;
    bo.name = "fault_check";
    int rc = -1;
    uint64_t stream_msgs = 0;
    if (sf_broker_connect(&bo, &b, &err) || sf_codec_new(&codec, &err) || sf_batch_new(&bt, &err) ||
        sf_broker_stream_info(b, SF_STREAM_CHANNEL, &stream_msgs, NULL, NULL, NULL, &err)) {
        fprintf(stderr, "fault_check: INV_CHANNEL: %s\n", err.msg);
        goto out;
    }
    for (size_t c = 0; c < s->o->nchannels; c++) {
        const char *ch = s->o->channels[c].name;
        char durable[SF_STR_MAX + 1];
        snprintf(durable, sizeof durable, "fault-check-%ld-%.30s", (long)getpid(), ch);
        sf_sub *sub = NULL;
        if (sf_broker_ensure_channel_consumer(b, ch, durable, &err) ||
            sf_broker_pull_subscribe(b, SF_STREAM_CHANNEL, durable, &sub, &err)) {
            fprintf(stderr, "fault_check: INV_CHANNEL/%s: %s\n", durable, err.msg);
            goto out;
        }
        for (int idle = 0; idle < 30;) {
            sf_status st = sf_sub_fetch(sub, 1000, 1000, bt, &err);
            if (st == SF_ETIMEOUT) {
                uint64_t pending = 1, ack_pending = 0;
                if (sf_broker_consumer_info(b, SF_STREAM_CHANNEL, durable, &pending, &ack_pending,
                                            NULL, NULL, &err) == SF_OK &&
                    pending == 0)
                    break;
                idle++;
                continue;
            }
            if (st != SF_OK) {
                fprintf(stderr, "fault_check: INV_CHANNEL/%s: %s\n", durable, err.msg);
                sf_sub_free(sub);
                goto out;
            }
            idle = 0;
            for (size_t i = 0; i < sf_batch_count(bt); i++) {
                size_t len = 0;
                const void *data = sf_batch_data(bt, i, &len);
                sf_channel_stock cs;
                s->channel_msgs++;
                if (sf_codec_decode_channel_stock(codec, data, len, &cs, &err) != SF_OK) {
                    s->c.dup_channel++;
                    fc__example(s, EX_DUP, "INV_CHANNEL seq %" PRIu64 ": undecodable: %s",
                                sf_batch_stream_seq(bt, i), err.msg);
                } else {
                    fc__told(s, &cs, sf_batch_header(bt, i, SF_HDR_MSG_ID));
                }
                sf_error aerr;
                if (sf_batch_ack(bt, i, &aerr) != SF_OK) { /* harmless: we read once */
                }
            }
            sf_batch_release(bt);
        }
        sf_sub_free(sub);
    }
    if (s->channel_msgs != stream_msgs) {
        s->c.check_errors++;
        fc__example(s, EX_CHECK, "read %" PRIu64 " INV_CHANNEL messages of %" PRIu64,
                    s->channel_msgs, stream_msgs);
    }
    rc = 0;
out:
    sf_batch_destroy(bt);
    sf_codec_free(codec);
    sf_broker_close(b);
    return rc;
}

static void fc__judge_pair(void *item, void *ctx)
{
    fc_pair *p = item;
    fc_state *s = ctx;
    int64_t want = p->in_model ? p->model_ats : 0;
    if (!p->in_db) {
        if (want != 0 || p->told) {
            s->c.drift_channel++;
            fc__example(s, EX_CHANNEL, "%s/%s: never recorded, model ats %" PRId64, p->channel,
                        p->sku, want);
        }
        return;
    }
    const char *why = NULL;
    if (p->db_ats != want)
        why = "latest channel_stock version differs from the model";
    else if (!p->db_sent)
        why = "latest version still pending";
    else if (!p->told)
        why = "nothing on INV_CHANNEL";
    else if (p->told_version != p->db_version || p->told_ats != p->db_ats)
        why = "the last ChannelStock on INV_CHANNEL is not the latest version";
    if (!why)
        return;
    s->c.drift_channel++;
    fc__example(s, EX_CHANNEL,
                "%s/%s: %s (model %" PRId64 "; channel_stock v%" PRId64 " ats %" PRId64
                " %s; INV_CHANNEL v%" PRId64 " ats %" PRId64 ")",
                p->channel, p->sku, why, want, p->db_version, p->db_ats,
                p->db_sent ? "sent" : "pending", p->told ? p->told_version : 0,
                p->told ? p->told_ats : 0);
}

/* --- options -------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fault_check [--file PATH]... [--zmq PATH --zmq-acked PATH]...\n"
            "                   [--supplier ID --supplier-feed CSV --supplier-events JSONL]...\n"
            "                   [--channel NAME=BUFFER:LOC,LOC...]... [--safety LOC=N]...\n"
            "                   [--pg DSN] [--nats URL] [--examples N]\n"
            "\n"
            "Compares the ledger, positions, reservations, channel_stock and INV_CHANNEL\n"
            "with a recomputation of the inputs and prints the lost, duplicated, unexpected,\n"
            "position drift and channel drift counts. --file: lines of an ingest run that\n"
            "exited 0; --zmq: events sent over ZeroMQ, --zmq-acked: the ids answered 'ok';\n"
            "--supplier-feed: a supplier CSV whose columns are named like event fields, with\n"
            "--supplier-events: `inv-supplier --dry-run` of it. Environment: INV_PG_DSN,\n"
            "INV_NATS_URL. Exit 0 all counts 0, 1 any count above 0, 2 usage or failure.\n");
}

static bool fc__i64_arg(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int fc__cmp_loc(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* NAME=BUFFER:LOC,LOC */
static bool fc__channel_arg(fc_opts *o, const char *arg)
{
    if (o->nchannels == FC_MAX_CHANNELS)
        return false;
    fc_channel *ch = &o->channels[o->nchannels];
    memset(ch, 0, sizeof *ch);
    const char *eq = strchr(arg, '='), *colon = eq ? strchr(eq, ':') : NULL;
    if (!eq || !colon || eq == arg || (size_t)(eq - arg) > SF_STR_MAX)
        return false;
    memcpy(ch->name, arg, (size_t)(eq - arg));
    char num[24];
    if ((size_t)(colon - eq - 1) >= sizeof num)
        return false;
    memcpy(num, eq + 1, (size_t)(colon - eq - 1));
    num[colon - eq - 1] = '\0';
    if (!fc__i64_arg(num, 0, INT64_MAX / 4, &ch->buffer) || !sf_is_token(ch->name))
        return false;
    for (const char *p = colon + 1; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len > SF_STR_MAX || ch->nlocs == FC_MAX_LOCS)
            return false;
        memcpy(ch->locs[ch->nlocs], p, len);
        ch->locs[ch->nlocs][len] = '\0';
        ch->nlocs++;
        p += len + (end ? 1 : 0);
    }
    qsort(ch->locs, ch->nlocs, sizeof ch->locs[0], fc__cmp_loc);
    o->nchannels++;
    return true;
}

static bool fc__safety_arg(fc_opts *o, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || (size_t)(eq - arg) > SF_STR_MAX || o->nsafety == FC_MAX_LOCS)
        return false;
    fc_safety *sf = &o->safety[o->nsafety];
    memcpy(sf->loc, arg, (size_t)(eq - arg));
    sf->loc[eq - arg] = '\0';
    if (!fc__i64_arg(eq + 1, 0, INT64_MAX / 4, &sf->qty))
        return false;
    o->nsafety++;
    return true;
}

static int fc__parse_args(int argc, char **argv, fc_opts *o)
{
    static const struct option longopts[] = {{"file", required_argument, NULL, 'f'},
                                             {"zmq", required_argument, NULL, 'z'},
                                             {"zmq-acked", required_argument, NULL, 'a'},
                                             {"supplier", required_argument, NULL, 's'},
                                             {"supplier-feed", required_argument, NULL, 'F'},
                                             {"supplier-events", required_argument, NULL, 'E'},
                                             {"channel", required_argument, NULL, 'c'},
                                             {"safety", required_argument, NULL, 'S'},
                                             {"pg", required_argument, NULL, 'p'},
                                             {"nats", required_argument, NULL, 'n'},
                                             {"examples", required_argument, NULL, 'x'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    int64_t v;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            if (o->nfiles == FC_MAX_INPUTS)
                return 2;
            o->files[o->nfiles++] = optarg;
            break;
        case 'z':
            if (o->nzmq == FC_MAX_INPUTS)
                return 2;
            o->zmq[o->nzmq++] = optarg;
            break;
        case 'a':
            if (o->nzmq_acked == FC_MAX_INPUTS)
                return 2;
            o->zmq_acked[o->nzmq_acked++] = optarg;
            break;
        case 's': o->supplier = optarg; break;
        case 'F':
            if (o->nsup == FC_MAX_INPUTS)
                return 2;
            o->sup_csv[o->nsup++] = optarg;
            break;
        case 'E':
            if (o->nsup_events == FC_MAX_INPUTS)
                return 2;
            o->sup_events[o->nsup_events++] = optarg;
            break;
        case 'c':
            if (!fc__channel_arg(o, optarg)) {
                fprintf(stderr, "fault_check: --channel %s: not NAME=BUFFER:LOC,LOC\n", optarg);
                return 2;
            }
            break;
        case 'S':
            if (!fc__safety_arg(o, optarg)) {
                fprintf(stderr, "fault_check: --safety %s: not LOC=N\n", optarg);
                return 2;
            }
            break;
        case 'p': o->pg_dsn = optarg; break;
        case 'n': o->nats_url = optarg; break;
        case 'x':
            if (!fc__i64_arg(optarg, 0, 1000000, &v))
                return 2;
            o->examples = (long)v;
            break;
        case 'h': usage(stdout); exit(0);
        default: return 2;
        }
    }
    if (optind < argc || o->nsup != o->nsup_events || (o->nsup && !o->supplier) ||
        o->nfiles + o->nzmq + o->nsup == 0)
        return 2;
    if (!o->pg_dsn)
        o->pg_dsn = getenv("INV_PG_DSN");
    if (!o->nats_url)
        o->nats_url = getenv("INV_NATS_URL");
    if (!o->pg_dsn || !*o->pg_dsn || !o->nats_url || !*o->nats_url) {
        fprintf(stderr, "fault_check: give --pg and --nats (or INV_PG_DSN, INV_NATS_URL)\n");
        return 2;
    }
    return 0;
}

/* --- main --------------------------------------------------------------------- */

static int fc__database(fc_state *s, PGconn *pg)
{
    sf_error err;
    if (sf_db_exec(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", &err) != SF_OK) {
        fprintf(stderr, "fault_check: %s\n", err.msg);
        return -1;
    }
    if (fc__scan(s, pg,
                 "SELECT event_id, kind, sku, location, qty, occurred_at, source, channel, ref, "
                 "condition, expires_at FROM ledger",
                 fc__ledger_row))
        return -1;
    fc__each(&s->inputs, fc__lost_one, s);

    if (fc__scan(s, pg, "SELECT sku, location, on_hand, reserved, inbound, damaged FROM positions",
                 fc__position_row) ||
        fc__scan(s, pg, "SELECT ref, sku, location, reserved, released, sold FROM reservations",
                 fc__reservation_row))
        return -1;
    if (sf_model_foreach_position(s->model, fc__missing_position, s, &err) != SF_OK ||
        sf_model_foreach_reservation(s->model, fc__missing_reservation, s, &err) != SF_OK) {
        fprintf(stderr, "fault_check: %s\n", err.msg);
        return -1;
    }
    if (fc_pos.drift.len > 0) {
        /* Rare: a second pass over the inputs for the drifting keys only. */
        if (fc__inputs_each(s, fc__collect_drift))
            return -1;
        for (size_t i = 0; i < s->nderived; i++)
            (void)fc__collect_drift(s, &s->derived_evs[i], FC_FILE);
        fc__each(&fc_pos.drift, fc__double_count, s);
    }

    if (fc__check_config(s, pg))
        return -1;
    fc_ats_ctx actx = {.s = s};
    if (sf_model_foreach_position(s->model, fc__model_ats, &actx, &err) != SF_OK) {
        fprintf(stderr, "fault_check: %s\n", err.msg);
        return -1;
    }
    if (fc__scan(s, pg, "SELECT channel, sku, version, ats, state, computed_at FROM channel_stock",
                 fc__channel_stock_row))
        return -1;
    if (sf_db_exec(pg, "COMMIT", &err) != SF_OK) {
        fprintf(stderr, "fault_check: %s\n", err.msg);
        return -1;
    }
    if (fc__read_channels(s))
        return -1;
    fc__each(&fc_pairs, fc__judge_pair, s);
    return 0;
}

static void fc__report(const fc_state *s)
{
    const fc_counts *c = &s->c;
    uint64_t lines = s->lines[0] + s->lines[1] + s->lines[2];
    uint64_t distinct = s->distinct[0] + s->distinct[1] + s->distinct[2];
    printf("fault_check: input: %" PRIu64 " events read, %" PRIu64 " distinct (files %" PRIu64
           ", zmq %" PRIu64 ", supplier %" PRIu64 "), %" PRIu64 " acknowledged\n",
           lines, distinct, s->distinct[FC_FILE], s->distinct[FC_ZMQ], s->distinct[FC_SUPPLIER],
           s->acked);
    if (s->not_acked_stored || s->not_acked_absent)
        printf("fault_check: unacknowledged inputs: %" PRIu64 " stored anyway, %" PRIu64
               " absent\n",
               s->not_acked_stored, s->not_acked_absent);
    printf("fault_check: database: ledger %" PRIu64 " rows (%" PRIu64
           " derived expiry releases), positions %" PRIu64 ", reservations %" PRIu64
           ", channel_stock %" PRIu64 "; INV_CHANNEL %" PRIu64 " messages, %zu channel x sku\n",
           s->ledger_rows, s->derived, s->position_rows, s->reservation_rows, s->channel_rows,
           s->channel_msgs, fc_pairs.len);
    if (c->input_errors || c->check_errors)
        printf("fault_check: %" PRIu64 " input errors, %" PRIu64
               " checker errors (the check itself is not sound: see above)\n",
               c->input_errors, c->check_errors);
    printf("lost:            %" PRIu64 "\n", c->lost);
    printf("duplicated:      %" PRIu64 "  (positions equal to a double count %" PRIu64
           ", versions with two payloads %" PRIu64 ", ledger rows unlike their input %" PRIu64
           ")\n",
           c->dup_positions + c->dup_channel + c->dup_content, c->dup_positions, c->dup_channel,
           c->dup_content);
    printf("unexpected:      %" PRIu64 "\n", c->unexpected);
    printf("position drift:  %" PRIu64 "  (positions %" PRIu64 ", reservations %" PRIu64 ")\n",
           c->drift_positions + c->drift_reservations, c->drift_positions, c->drift_reservations);
    printf("channel drift:   %" PRIu64 "\n", c->drift_channel);
}

int main(int argc, char **argv)
{
    fc_opts o;
    memset(&o, 0, sizeof o);
    o.examples = 10;
    if (fc__parse_args(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    static fc_state s;
    s.o = &o;
    sf_error err;
    if (sf_model_new(&s.model, &err) != SF_OK) {
        fprintf(stderr, "fault_check: %s\n", err.msg);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("fault_check: examples of each problem follow (at most %ld per kind)\n", o.examples);
    int rc = 2;
    PGconn *pg = NULL;
    if (fc__inputs_each(&s, fc__add_input))
        goto out;
    for (size_t i = 0; i < o.nzmq_acked; i++)
        if (fc__load_acked(&s, o.zmq_acked[i]))
            goto out;
    if (sf_db_connect(o.pg_dsn, &pg, &err) != SF_OK) {
        fprintf(stderr, "fault_check: %s\n", err.msg);
        goto out;
    }
    if (fc__database(&s, pg))
        goto out;
    fc__report(&s);
    const fc_counts *c = &s.c;
    uint64_t bad = c->lost + c->dup_positions + c->dup_channel + c->dup_content + c->unexpected +
                   c->drift_positions + c->drift_reservations + c->drift_channel + c->input_errors +
                   c->check_errors;
    printf("fault_check: %s\n", bad ? "FAIL" : "PASS");
    rc = bad ? 1 : 0;
out:
    if (pg)
        PQfinish(pg);
    sf_model_free(s.model);
    free(s.derived_evs);
    free(s.inputs.slots);
    free(fc_pos.seen.slots);
    free(fc_pos.drift.slots);
    free(fc_rsv_seen.slots);
    free(fc_pairs.slots);
    free(fc_versions.slots);
    fc__arena_free();
    sf_broker_library_cleanup();
    return rc;
}
