/*
 * stock_model: the order-independent stock oracle (see stock_model.h).
 *
 * Three open-addressing hash tables (linear probing, power-of-two capacity,
 * load <= 0.7, growth checked for overflow and capped) index the event ids,
 * the positions and the reservations; their strings and records live in an
 * arena freed in one call. The one subtle part is COUNT: a position keeps
 * only the on_hand deltas later than its latest COUNT (all of them while it
 * has none), so a later COUNT can drop the ones it now contains. That works
 * because the latest COUNT only ever moves later: a delta at or before it
 * can never be counted again.
 */
#include "stock_model.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* --- arena -------------------------------------------------------------------- */

#define MODEL_CHUNK ((size_t)64 * 1024)

typedef struct model__chunk {
    struct model__chunk *next;
    size_t used, size;
    _Alignas(max_align_t) unsigned char data[];
} model__chunk;

static void *model__arena_alloc(model__chunk **head, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        return NULL;
    model__chunk *c = *head;
    if (!c || c->size - c->used < n) {
        size_t size = n > MODEL_CHUNK ? n : MODEL_CHUNK;
        if (size > SIZE_MAX - sizeof *c)
            return NULL;
        c = malloc(sizeof *c + size);
        if (!c)
            return NULL;
        c->next = *head;
        c->used = 0;
        c->size = size;
        *head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

static char *model__arena_strdup(model__chunk **head, const char *s)
{
    size_t len = strlen(s);
    char *p = model__arena_alloc(head, len + 1);
    if (p)
        memcpy(p, s, len + 1);
    return p;
}

/* --- hash table ------------------------------------------------------------------ */

#define MODEL_MAX_SLOTS ((size_t)1 << 31) /* capacity cap: ~1.5 G entries */

typedef struct model__slot {
    uint64_t hash;
    void *item; /* NULL: empty */
} model__slot;

typedef struct model__table {
    model__slot *slots;
    size_t cap, len;
} model__table;

typedef bool (*model__eq_fn)(const void *item, const void *key);

static uint64_t model__mix(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

/* FNV-1a over the parts with a 0xFF byte (never in UTF-8) between them. */
static uint64_t model__hash(const char *const *parts, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++) {
            h ^= *p;
            h *= 0x100000001b3ULL;
        }
        h ^= 0xFF;
        h *= 0x100000001b3ULL;
    }
    return model__mix(h);
}

static model__slot *model__find(const model__table *t, uint64_t hash, const void *key,
                                model__eq_fn eq)
{
    if (t->cap == 0)
        return NULL;
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        model__slot *s = &t->slots[i];
        if (!s->item || (s->hash == hash && eq(s->item, key)))
            return s;
    }
}

/* Make room for one more entry so that a following find returns a free
 * slot for a new key. */
static sf_status model__reserve(model__table *t, sf_error *err)
{
    if (t->cap > 0 && (t->len + 1) * 10 <= t->cap * 7)
        return SF_OK;
    size_t ncap = t->cap ? t->cap * 2 : 64;
    if (ncap > MODEL_MAX_SLOTS || ncap > SIZE_MAX / sizeof(model__slot))
        return SF_ERR(err, SF_ENOMEM, "stock model: table full at %zu entries", t->len);
    model__slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return SF_ERR(err, SF_ENOMEM, "stock model: out of memory growing a table to %zu slots",
                      ncap);
    size_t mask = ncap - 1;
    for (size_t i = 0; i < t->cap; i++) {
        model__slot *s = &t->slots[i];
        if (!s->item)
            continue;
        size_t j = (size_t)s->hash & mask;
        while (ns[j].item)
            j = (j + 1) & mask;
        ns[j] = *s;
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return SF_OK;
}

/* --- records ------------------------------------------------------------------------ */

typedef struct model__delta {
    int64_t at;
    int64_t qty;
} model__delta;

typedef struct model__pos {
    const char *sku;
    const char *location;
    int64_t delta_sum;    /* Σ of deltas[] */
    model__delta *deltas; /* on_hand deltas after the latest COUNT (all without one) */
    size_t ndeltas, cap;  /* heap array, owned */
    int64_t inbound, damaged, reserved;
    bool has_count;
    int64_t count_qty, count_at;
    const char *count_id;
} model__pos;

typedef struct model__rsv {
    const char *ref;
    const char *sku;
    const char *location;
    model__pos *pos;
    int64_t reserved, released, sold;
    uint64_t nreserve;
    bool never;
    int64_t max_expires_at;
} model__rsv;

typedef struct model__vec {
    void **items;
    size_t len, cap;
} model__vec;

struct sf_model {
    model__chunk *arena;
    model__table ids, positions, reservations;
    model__vec pos_list, rsv_list;
    uint64_t events, duplicates;
};

static sf_status model__vec_push(model__vec *v, void *item, sf_error *err)
{
    if (v->len == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 64;
        if (ncap < v->cap || ncap > SIZE_MAX / sizeof(void *))
            return SF_ERR(err, SF_ENOMEM, "stock model: list too long");
        void **ni = realloc(v->items, ncap * sizeof *ni);
        if (!ni)
            return SF_ERR(err, SF_ENOMEM, "stock model: out of memory for a list of %zu", ncap);
        v->items = ni;
        v->cap = ncap;
    }
    v->items[v->len++] = item;
    return SF_OK;
}

/* Wrapping arithmetic: commutative and free of undefined behaviour. */
static int64_t model__add(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static int64_t model__sub(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a - (uint64_t)b);
}

static bool model__id_eq(const void *item, const void *key)
{
    return strcmp(item, key) == 0;
}

typedef struct model__key {
    const char *ref, *sku, *location;
} model__key;

static bool model__pos_eq(const void *item, const void *key)
{
    const model__pos *p = item;
    const model__key *k = key;
    return strcmp(p->sku, k->sku) == 0 && strcmp(p->location, k->location) == 0;
}

static bool model__rsv_eq(const void *item, const void *key)
{
    const model__rsv *r = item;
    const model__key *k = key;
    return strcmp(r->ref, k->ref) == 0 && strcmp(r->sku, k->sku) == 0 &&
           strcmp(r->location, k->location) == 0;
}

sf_status sf_model_new(sf_model **out, sf_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return SF_ERR(err, SF_ENOMEM, "stock model: out of memory");
    return SF_OK;
}

void sf_model_free(sf_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->pos_list.len; i++)
        free(((model__pos *)m->pos_list.items[i])->deltas);
    free(m->pos_list.items);
    free(m->rsv_list.items);
    free(m->ids.slots);
    free(m->positions.slots);
    free(m->reservations.slots);
    while (m->arena) {
        model__chunk *next = m->arena->next;
        free(m->arena);
        m->arena = next;
    }
    free(m);
}

static sf_status model__get_pos(sf_model *m, const char *sku, const char *location,
                                model__pos **out, sf_error *err)
{
    *out = NULL;
    sf_status st = model__reserve(&m->positions, err);
    if (st != SF_OK)
        return st;
    model__key key = {NULL, sku, location};
    const char *parts[2] = {sku, location};
    uint64_t h = model__hash(parts, 2);
    model__slot *s = model__find(&m->positions, h, &key, model__pos_eq);
    if (s->item) {
        *out = s->item;
        return SF_OK;
    }
    model__pos *p = model__arena_alloc(&m->arena, sizeof *p);
    if (!p)
        return SF_ERR(err, SF_ENOMEM, "stock model: out of memory for a position");
    memset(p, 0, sizeof *p);
    p->sku = model__arena_strdup(&m->arena, sku);
    p->location = model__arena_strdup(&m->arena, location);
    if (!p->sku || !p->location)
        return SF_ERR(err, SF_ENOMEM, "stock model: out of memory for a position");
    if ((st = model__vec_push(&m->pos_list, p, err)) != SF_OK)
        return st;
    s->hash = h;
    s->item = p;
    m->positions.len++;
    *out = p;
    return SF_OK;
}

static sf_status model__get_rsv(sf_model *m, model__pos *pos, const char *ref, model__rsv **out,
                                sf_error *err)
{
    sf_status st = model__reserve(&m->reservations, err);
    if (st != SF_OK)
        return st;
    model__key key = {ref, pos->sku, pos->location};
    const char *parts[3] = {ref, pos->sku, pos->location};
    uint64_t h = model__hash(parts, 3);
    model__slot *s = model__find(&m->reservations, h, &key, model__rsv_eq);
    if (s->item) {
        *out = s->item;
        return SF_OK;
    }
    model__rsv *r = model__arena_alloc(&m->arena, sizeof *r);
    if (!r)
        return SF_ERR(err, SF_ENOMEM, "stock model: out of memory for a reservation");
    memset(r, 0, sizeof *r);
    r->ref = model__arena_strdup(&m->arena, ref);
    if (!r->ref)
        return SF_ERR(err, SF_ENOMEM, "stock model: out of memory for a reservation");
    r->sku = pos->sku;
    r->location = pos->location;
    r->pos = pos;
    if ((st = model__vec_push(&m->rsv_list, r, err)) != SF_OK)
        return st;
    s->hash = h;
    s->item = r;
    m->reservations.len++;
    *out = r;
    return SF_OK;
}

static int64_t model__outstanding(const model__rsv *r)
{
    int64_t o = model__sub(model__sub(r->reserved, r->released), r->sold);
    return o > 0 ? o : 0;
}

/* An on_hand delta: inside the latest COUNT if at or before it. */
static sf_status model__apply_delta(model__pos *p, int64_t at, int64_t qty, sf_error *err)
{
    if (p->has_count && at <= p->count_at)
        return SF_OK;
    if (p->ndeltas == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 8;
        if (ncap < p->cap || ncap > SIZE_MAX / sizeof(model__delta))
            return SF_ERR(err, SF_ENOMEM, "stock model: too many deltas for one position");
        model__delta *nd = realloc(p->deltas, ncap * sizeof *nd);
        if (!nd)
            return SF_ERR(err, SF_ENOMEM, "stock model: out of memory for deltas");
        p->deltas = nd;
        p->cap = ncap;
    }
    p->deltas[p->ndeltas].at = at;
    p->deltas[p->ndeltas].qty = qty;
    p->ndeltas++;
    p->delta_sum = model__add(p->delta_sum, qty);
    return SF_OK;
}

/* A COUNT: becomes the latest if later by (occurred_at, event_id); deltas
 * it now contains are dropped for good. */
static void model__count(model__pos *p, const char *id, int64_t at, int64_t qty)
{
    if (p->has_count && (at < p->count_at || (at == p->count_at && strcmp(id, p->count_id) <= 0)))
        return;
    bool moved = !p->has_count || at > p->count_at;
    p->has_count = true;
    p->count_at = at;
    p->count_qty = qty;
    p->count_id = id;
    if (!moved)
        return;
    size_t kept = 0;
    int64_t sum = 0;
    for (size_t i = 0; i < p->ndeltas; i++) {
        if (p->deltas[i].at > at) {
            p->deltas[kept++] = p->deltas[i];
            sum = model__add(sum, p->deltas[i].qty);
        }
    }
    p->ndeltas = kept;
    p->delta_sum = sum;
}

static bool model__terminated(const char *s)
{
    return memchr(s, '\0', SF_STR_MAX + 1) != NULL;
}

sf_status sf_model_add(sf_model *m, const sf_event *ev, bool *duplicate, sf_error *err)
{
    if (duplicate)
        *duplicate = false;
    if ((unsigned)ev->kind >= SF_KIND__COUNT)
        return SF_ERR(err, SF_EINVAL, "stock model: kind %d is not a kind", (int)ev->kind);
    if (!model__terminated(ev->event_id) || !model__terminated(ev->sku) ||
        !model__terminated(ev->location) || (ev->has_ref && !model__terminated(ev->ref)))
        return SF_ERR(err, SF_EINVAL, "stock model: event has an unterminated string");

    sf_status st = model__reserve(&m->ids, err);
    if (st != SF_OK)
        return st;
    const char *idp[1] = {ev->event_id};
    uint64_t h = model__hash(idp, 1);
    model__slot *id_slot = model__find(&m->ids, h, ev->event_id, model__id_eq);
    if (id_slot->item) {
        m->duplicates++;
        if (duplicate)
            *duplicate = true;
        return SF_OK;
    }
    char *id = model__arena_strdup(&m->arena, ev->event_id);
    if (!id)
        return SF_ERR(err, SF_ENOMEM, "stock model: out of memory for an event id");

    /* The id slot stays valid: only other tables change until it is set. */
    model__pos *p = NULL;
    if ((st = model__get_pos(m, ev->sku, ev->location, &p, err)) != SF_OK)
        return st;
    int64_t q = ev->qty;
    model__rsv *r = NULL;
    switch (ev->kind) {
    case SF_KIND_SALE:
        st = model__apply_delta(p, ev->occurred_at, model__sub(0, q), err);
        if (st == SF_OK && ev->has_ref && (st = model__get_rsv(m, p, ev->ref, &r, err)) == SF_OK) {
            int64_t before = model__outstanding(r);
            r->sold = model__add(r->sold, q);
            p->reserved = model__add(p->reserved, model__sub(model__outstanding(r), before));
        }
        break;
    case SF_KIND_RETURN:
        if (ev->has_condition && ev->condition == SF_COND_DAMAGED)
            p->damaged = model__add(p->damaged, q);
        else
            st = model__apply_delta(p, ev->occurred_at, q, err);
        break;
    case SF_KIND_RECEIPT:
        st = model__apply_delta(p, ev->occurred_at, q, err);
        p->inbound = model__sub(p->inbound, q);
        break;
    case SF_KIND_ASN: p->inbound = model__add(p->inbound, q); break;
    case SF_KIND_COUNT: model__count(p, id, ev->occurred_at, q); break;
    case SF_KIND_ADJUST:
    case SF_KIND_TRANSFER_IN: st = model__apply_delta(p, ev->occurred_at, q, err); break;
    case SF_KIND_TRANSFER_OUT:
        st = model__apply_delta(p, ev->occurred_at, model__sub(0, q), err);
        break;
    case SF_KIND_RESERVE:
    case SF_KIND_RELEASE: {
        if ((st = model__get_rsv(m, p, ev->has_ref ? ev->ref : "", &r, err)) != SF_OK)
            break;
        int64_t before = model__outstanding(r);
        if (ev->kind == SF_KIND_RELEASE) {
            r->released = model__add(r->released, q);
        } else {
            r->reserved = model__add(r->reserved, q);
            if (!ev->has_expires_at)
                r->never = true;
            else if (r->nreserve == 0 || ev->expires_at > r->max_expires_at)
                r->max_expires_at = ev->expires_at;
            r->nreserve++;
        }
        p->reserved = model__add(p->reserved, model__sub(model__outstanding(r), before));
        break;
    }
    case SF_KIND__COUNT: break;
    }
    if (st != SF_OK)
        return st;
    id_slot->hash = h;
    id_slot->item = id;
    m->ids.len++;
    m->events++;
    return SF_OK;
}

void sf_model_stats_get(const sf_model *m, sf_model_stats *out)
{
    out->events = m->events;
    out->duplicates = m->duplicates;
    out->positions = m->positions.len;
    out->reservations = m->reservations.len;
}

static void model__fill_pos(const model__pos *p, sf_position *out)
{
    out->sku = p->sku;
    out->location = p->location;
    out->on_hand = p->has_count ? model__add(p->count_qty, p->delta_sum) : p->delta_sum;
    out->reserved = p->reserved;
    out->inbound = p->inbound;
    out->inbound_floored = p->inbound > 0 ? p->inbound : 0;
    out->damaged = p->damaged;
    out->has_count = p->has_count;
    out->count_qty = p->has_count ? p->count_qty : 0;
    out->count_at = p->has_count ? p->count_at : 0;
    out->count_event_id = p->has_count ? p->count_id : NULL;
}

static void model__fill_rsv(const model__rsv *r, sf_reservation *out)
{
    out->ref = r->ref;
    out->sku = r->sku;
    out->location = r->location;
    out->reserved = r->reserved;
    out->released = r->released;
    out->sold = r->sold;
    out->outstanding = model__outstanding(r);
    out->expiry = r->nreserve == 0 ? SF_EXPIRY_NONE : r->never ? SF_EXPIRY_NEVER : SF_EXPIRY_AT;
    out->expires_at = out->expiry == SF_EXPIRY_AT ? r->max_expires_at : 0;
}

bool sf_model_position(const sf_model *m, const char *sku, const char *location, sf_position *out)
{
    memset(out, 0, sizeof *out);
    model__key key = {NULL, sku, location};
    const char *parts[2] = {sku, location};
    model__slot *s = model__find(&m->positions, model__hash(parts, 2), &key, model__pos_eq);
    if (!s || !s->item)
        return false;
    model__fill_pos(s->item, out);
    return true;
}

bool sf_model_reservation(const sf_model *m, const char *ref, const char *sku, const char *location,
                          sf_reservation *out)
{
    memset(out, 0, sizeof *out);
    model__key key = {ref, sku, location};
    const char *parts[3] = {ref, sku, location};
    model__slot *s = model__find(&m->reservations, model__hash(parts, 3), &key, model__rsv_eq);
    if (!s || !s->item)
        return false;
    model__fill_rsv(s->item, out);
    return true;
}

static int model__pos_cmp(const void *a, const void *b)
{
    const model__pos *x = *(const model__pos *const *)a;
    const model__pos *y = *(const model__pos *const *)b;
    int c = strcmp(x->sku, y->sku);
    return c ? c : strcmp(x->location, y->location);
}

static int model__rsv_cmp(const void *a, const void *b)
{
    const model__rsv *x = *(const model__rsv *const *)a;
    const model__rsv *y = *(const model__rsv *const *)b;
    int c = strcmp(x->ref, y->ref);
    if (c)
        return c;
    c = strcmp(x->sku, y->sku);
    return c ? c : strcmp(x->location, y->location);
}

/* A sorted copy of a list (strcmp compares as unsigned char: bytewise). */
static sf_status model__sorted(const model__vec *v, int (*cmp)(const void *, const void *),
                               void ***out, sf_error *err)
{
    *out = NULL;
    if (v->len == 0)
        return SF_OK;
    if (v->len > SIZE_MAX / sizeof(void *))
        return SF_ERR(err, SF_ENOMEM, "stock model: list too long to sort");
    void **copy = malloc(v->len * sizeof *copy);
    if (!copy)
        return SF_ERR(err, SF_ENOMEM, "stock model: out of memory sorting %zu entries", v->len);
    memcpy(copy, v->items, v->len * sizeof *copy);
    qsort(copy, v->len, sizeof *copy, cmp);
    *out = copy;
    return SF_OK;
}

sf_status sf_model_foreach_position(const sf_model *m, sf_model_position_fn fn, void *ctx,
                                    sf_error *err)
{
    void **sorted;
    sf_status st = model__sorted(&m->pos_list, model__pos_cmp, &sorted, err);
    if (st != SF_OK)
        return st;
    for (size_t i = 0; i < m->pos_list.len; i++) {
        sf_position p;
        model__fill_pos(sorted[i], &p);
        if (fn(&p, ctx) != 0)
            break;
    }
    free(sorted);
    return SF_OK;
}

sf_status sf_model_foreach_reservation(const sf_model *m, sf_model_reservation_fn fn, void *ctx,
                                       sf_error *err)
{
    void **sorted;
    sf_status st = model__sorted(&m->rsv_list, model__rsv_cmp, &sorted, err);
    if (st != SF_OK)
        return st;
    for (size_t i = 0; i < m->rsv_list.len; i++) {
        sf_reservation r;
        model__fill_rsv(sorted[i], &r);
        if (fn(&r, ctx) != 0)
            break;
    }
    free(sorted);
    return SF_OK;
}
