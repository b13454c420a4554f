/*
 * x12_846: the "x12-846" adapter. An 846 Inventory Inquiry/Advice becomes
 * rows of kind COUNT (absolute stock), one per item (LIN) and location.
 *
 * Layouts read (SDQ-free): a location N1 in the heading applies to every
 * LIN after it; an N1 loop before a run of LINs (an N1 whose next segment,
 * past N2/N3/N4/PER/REF/DTM, is a LIN) applies to the LINs after it until
 * the next such N1; an N1 inside a LIN loop (followed by QTYs) applies to
 * the QTYs after it in that LIN only. Only N1s naming a place are
 * locations: N101 WH (warehouse), SF (ship from), ST (ship to), RL
 * (reporting location), SN (store); their N104 is row.location. Party N1s
 * (SU, BY, VN, ...) are ignored. No location N1: location "" (the
 * supplier's default).
 *
 * Records and rows. A record is one (LIN, location) group: among its QTYs
 * those whose QTY01 is in qty_qualifiers count, and the one whose
 * qualifier comes first in that list wins (QTY02 -> qty, QTY03's first
 * component -> uom); rows follow the order of each group's first QTY and
 * their position is the winning QTY. The item id is the LIN pair whose
 * qualifier comes first in item_qualifiers. Rejected, one row each:
 *   - a group: bad/negative QTY02, bad unit, two QTYs of the winning
 *     qualifier, no QTY of a counted qualifier, an unusable location N1
 *     (no N104, bad id) -- position: the offending segment;
 *   - a whole LIN (one row, its groups dropped): no usable item id, an
 *     item id over 64 bytes / not UTF-8 / with control bytes, a malformed
 *     segment in the loop (over the element limits), a bad as-of DTM in
 *     the loop, an SDQ, no QTY at all, over max_locations_per_lin
 *     locations (config, default and ceiling X12_846_LOCS_MAX);
 *   - a QTY with no LIN before it (in the heading or after CTT);
 *   - a whole set (one row, no other rows from it): a bad ST/SE trailer
 *     (x12.h), ST01 not 846, no BIA first, a bad heading date, no as-of
 *     date, a malformed heading segment, CTT01 not the number of LINs.
 * An interchange whose ISA or envelopes are wrong fails open().
 *
 * As-of time: the heading DTM whose DTM01 comes first in 405
 * (production), 007 (effective), 194 (period end), 009 (process), 097
 * (transaction creation); else BIA04/BIA05. A DTM with one of those
 * qualifiers inside a LIN loop overrides it for that LIN. Time rules
 * (supplier timezone, date-only, never after the read time) are
 * sf_x12_time's. Ordinals count rows 1..n in feed order.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "adapter_util.h"
#include "x12.h"

#define X12_846_LOCS_MAX 1000 /* locations of one LIN */
#define X12_846_SLOTS 2048    /* group index: a power of two > 2 * X12_846_LOCS_MAX */

static const char *const x12_846__keys[] = {"item_qualifiers", "qty_qualifiers",
                                            "max_locations_per_lin", SF_X12_LIMIT_KEYS, NULL};

/* As-of DTM01 qualifiers, most preferred first. */
static const char *const x12_846__asof[] = {"405", "007", "194", "009", "097"};

/* N101 codes that name a place. */
static const char *const x12_846__places[] = {"WH", "SF", "ST", "RL", "SN"};

typedef struct x12_846__opts {
    sf_x12_quals items;
    sf_x12_quals qtys;
    sf_x12_limits limits;
    size_t max_locs; /* locations of one LIN, <= X12_846_LOCS_MAX */
} x12_846__opts;

/* The location QTYs are counted at. */
typedef struct x12_846__loc {
    uint64_t seg; /* the N1; 0 = none (location "") */
    bool bad;     /* unusable N1: rows at it are rejected with err */
    char code[SF_STR_MAX + 1];
    sf_error err;
} x12_846__loc;

/* One (LIN, location) record. */
typedef struct x12_846__group {
    x12_846__loc loc;
    uint64_t first;       /* its first QTY */
    sf_x12_span unlisted; /* QTY01 of the first QTY, for "no counted QTY" */
    int rank;             /* qualifier rank of the winning QTY; -1 none yet */
    uint64_t at;          /* the winning QTY */
    uint64_t dup;         /* a second QTY of the winning qualifier; 0 none */
    bool ok;              /* the winning QTY parsed */
    sf_decimal qty;
    char uom[SF_UOM_MAX + 1];
    sf_error err;
} x12_846__group;

typedef struct x12_846__state {
    x12_846__opts opts;
    sf_feed_ctx ctx;
    sf_x12 *x;
    sf_x12_seg *seg;   /* scratch: the segment being read */
    sf_x12_seg *peek;  /* scratch: read-ahead */
    sf_x12_cursor cur; /* interchange: where the next set is looked for */
    bool in_set;
    sf_x12_set set;
    sf_x12_cursor body; /* inside the set */
    int64_t asof;       /* the heading's as-of time */
    x12_846__loc loop_loc;
    uint64_t ordinal;

    /* rows waiting to be handed out */
    char item[SF_STR_MAX + 1];
    int64_t lin_asof;
    x12_846__group *groups;
    size_t n_groups, cap_groups, next_group;
    uint16_t slots[X12_846_SLOTS]; /* location -> group index + 1; 0 empty */
    bool slots_used;
    bool reject_pending; /* one reject row: reject_at, reject */
    uint64_t reject_at;
    sf_error reject;
} x12_846__state;

/* --------------------------------------------------------------- config --- */

static sf_status x12_846__configure(const sf_config *cfg, const char *section, void **opts,
                                    sf_error *err)
{
    *opts = NULL;
    x12_846__opts *o = calloc(1, sizeof *o);
    if (!o)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    sf_status st = sf_x12_quals_config(cfg, section, "item_qualifiers", "VP,VN,SK,BP,UP,EN,IN",
                                       &o->items, err);
    if (st == SF_OK)
        st = sf_x12_quals_config(cfg, section, "qty_qualifiers", "33,17", &o->qtys, err);
    if (st == SF_OK)
        st = sf_x12_limits_config(cfg, section, &o->limits, err);
    int64_t locs = X12_846_LOCS_MAX;
    if (st == SF_OK)
        st = sf_adapter_cfg_num(cfg, section, "max_locations_per_lin", 1, X12_846_LOCS_MAX,
                                "locations", &locs, err);
    o->max_locs = (size_t)locs;
    if (st != SF_OK) {
        free(o);
        return st;
    }
    *opts = o;
    return SF_OK;
}

static void x12_846__free_opts(void *opts)
{
    free(opts);
}

/* --------------------------------------------------------------- helpers --- */

static int x12_846__asof_rank(sf_x12_span q)
{
    for (size_t i = 0; i < sizeof x12_846__asof / sizeof x12_846__asof[0]; i++) {
        if (sf_x12_is(q, x12_846__asof[i]))
            return (int)i;
    }
    return -1;
}

static bool x12_846__is_place(sf_x12_span q)
{
    for (size_t i = 0; i < sizeof x12_846__places / sizeof x12_846__places[0]; i++) {
        if (sf_x12_is(q, x12_846__places[i]))
            return true;
    }
    return false;
}

/* Does the N1 just read (c is after it) start a loop of LINs: is the next
 * segment past N2/N3/N4/PER/REF/DTM a LIN, a CTT or the end of the set? */
static bool x12_846__n1_starts_loop(x12_846__state *s, sf_x12_cursor c)
{
    sf_error e;
    while (c.number < s->set.body_end) {
        sf_status st = sf_x12_next(s->x, &c, s->peek, &e);
        if (st != SF_OK && st != SF_EINVAL)
            return true;
        const char *id = s->peek->id;
        if (strcmp(id, "N2") == 0 || strcmp(id, "N3") == 0 || strcmp(id, "N4") == 0 ||
            strcmp(id, "PER") == 0 || strcmp(id, "REF") == 0 || strcmp(id, "DTM") == 0)
            continue;
        return strcmp(id, "LIN") == 0 || strcmp(id, "CTT") == 0;
    }
    return true;
}

/* A location N1 into *loc; false when N101 names no place (ignore it). */
static bool x12_846__n1(x12_846__state *s, const sf_x12_seg *n1, x12_846__loc *loc)
{
    sf_x12_span who = sf_x12_el(n1, 1);
    if (!x12_846__is_place(who))
        return false;
    memset(loc, 0, sizeof *loc);
    loc->seg = n1->number;
    unsigned long long n = (unsigned long long)n1->number;
    sf_x12_span code = sf_x12_el(n1, 4);
    if (code.len == 0) {
        loc->bad = true;
        SF_ERR(&loc->err, SF_EINVAL, "segment %llu: N1 %.2s (a location) has no id code in N104", n,
               who.p);
    } else if (sf_x12_id(s->x, code, "N104", loc->code, &loc->err) != SF_OK) {
        loc->bad = true;
        sf_error_prefix(&loc->err, "segment %llu: ", n);
    }
    return true;
}

static bool x12_846__same_loc(const x12_846__loc *a, const x12_846__loc *b)
{
    if (a->bad || b->bad)
        return a->bad && b->bad && a->seg == b->seg;
    return strcmp(a->code, b->code) == 0;
}

static void x12_846__reject(x12_846__state *s, uint64_t at, const sf_error *why)
{
    s->n_groups = 0;
    s->next_group = 0;
    s->reject_pending = true;
    s->reject_at = at;
    s->reject = *why;
}

/* ----------------------------------------------------------- set checks --- */

/* The set as a whole: BIA first, heading dates and as-of, malformed
 * heading segments, CTT01. On failure *at and *why name the reject. */
static bool x12_846__check_set(x12_846__state *s, uint64_t *at, sf_error *why)
{
    sf_x12_cursor c = s->set.body;
    bool first = true, in_lin = false, seen_lin = false, have_asof = false, after_ctt = false;
    uint64_t lins = 0;
    int best = INT_MAX;
    sf_x12_seg *seg = s->seg;
    while (c.number < s->set.body_end) {
        sf_error e;
        sf_status st = sf_x12_next(s->x, &c, seg, &e);
        unsigned long long n = (unsigned long long)seg->number;
        *at = seg->number;
        if (st != SF_OK && st != SF_EINVAL) {
            *why = e;
            return false;
        }
        if (first) {
            first = false;
            if (strcmp(seg->id, "BIA") != 0) {
                SF_ERR(why, SF_EINVAL, "segment %llu: an 846 starts with BIA, not %s", n,
                       seg->id[0] ? seg->id : "an unreadable segment");
                return false;
            }
            if (st == SF_OK && sf_x12_el(seg, 4).len) {
                if (sf_x12_time(s->x, &s->ctx, seg, 4, false, &s->asof, why) != SF_OK) {
                    sf_error_prefix(why, "segment %llu: ", n);
                    return false;
                }
                have_asof = true;
            }
        }
        if (st == SF_EINVAL && !in_lin) {
            *why = e;
            return false;
        }
        if (strcmp(seg->id, "LIN") == 0) {
            if (after_ctt) {
                SF_ERR(why, SF_EINVAL, "segment %llu: LIN after CTT (the set's summary)", n);
                return false;
            }
            in_lin = seen_lin = true;
            lins++;
        } else if (strcmp(seg->id, "CTT") == 0) {
            in_lin = false;
            after_ctt = true;
            uint64_t said = 0;
            sf_x12_span ctt01 = sf_x12_el(seg, 1);
            sf_decimal d;
            if (sf_x12_number(ctt01, "CTT01", &d, why) != SF_OK || d.scale != 0 || d.units < 0) {
                SF_ERR(why, SF_EINVAL, "segment %llu: field CTT01: not a count of line items", n);
                return false;
            }
            said = (uint64_t)d.units;
            if (said != lins) {
                SF_ERR(why, SF_EINVAL,
                       "segment %llu: CTT01 says %llu line items, the set has %llu LIN segments", n,
                       (unsigned long long)said, (unsigned long long)lins);
                return false;
            }
        } else if (strcmp(seg->id, "N1") == 0) {
            if (in_lin && x12_846__n1_starts_loop(s, c))
                in_lin = false;
        } else if (strcmp(seg->id, "DTM") == 0 && !seen_lin && st == SF_OK) {
            int r = x12_846__asof_rank(sf_x12_el(seg, 1));
            if (r >= 0) {
                int64_t t;
                if (sf_x12_time(s->x, &s->ctx, seg, 2, true, &t, why) != SF_OK) {
                    sf_error_prefix(why, "segment %llu: ", n);
                    return false;
                }
                if (r < best) {
                    best = r;
                    s->asof = t;
                    have_asof = true;
                }
            }
        }
    }
    if (first) {
        *at = s->set.st;
        SF_ERR(why, SF_EINVAL, "segment %llu: the 846 is empty (no BIA)",
               (unsigned long long)s->set.st);
        return false;
    }
    if (!have_asof) {
        *at = s->set.st;
        SF_ERR(why, SF_EINVAL,
               "segment %llu: the 846 has no as-of date (no DTM 405/007/194/009/097 before the "
               "first LIN, no BIA04)",
               (unsigned long long)s->set.st);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ LIN loop --- */

static uint64_t x12_846__loc_hash(const x12_846__loc *loc)
{
    uint64_t h = UINT64_C(14695981039346656037);
    if (loc->bad)
        return h ^ (loc->seg * UINT64_C(0x9E3779B97F4A7C15));
    for (const unsigned char *p = (const unsigned char *)loc->code; *p; p++) {
        h ^= *p;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static x12_846__group *x12_846__group_for(x12_846__state *s, const x12_846__loc *loc,
                                          uint64_t qty_at, sf_x12_span qual, sf_error *err)
{
    size_t mask = X12_846_SLOTS - 1;
    size_t slot = (size_t)x12_846__loc_hash(loc) & mask;
    for (; s->slots[slot]; slot = (slot + 1) & mask) {
        x12_846__group *g = &s->groups[s->slots[slot] - 1];
        if (x12_846__same_loc(&g->loc, loc))
            return g;
    }
    if (s->n_groups >= s->opts.max_locs) {
        SF_ERR(err, SF_EINVAL,
               "segment %llu: more than %zu locations for one LIN (max_locations_per_lin)",
               (unsigned long long)qty_at, s->opts.max_locs);
        return NULL;
    }
    if (s->n_groups == s->cap_groups) {
        size_t cap = s->cap_groups ? s->cap_groups * 2 : 8;
        if (cap > s->opts.max_locs)
            cap = s->opts.max_locs;
        x12_846__group *g = realloc(s->groups, cap * sizeof *g);
        if (!g) {
            SF_ERR(err, SF_ENOMEM, "out of memory");
            return NULL;
        }
        s->groups = g;
        s->cap_groups = cap;
    }
    x12_846__group *g = &s->groups[s->n_groups++];
    s->slots[slot] = (uint16_t)s->n_groups;
    s->slots_used = true;
    memset(g, 0, sizeof *g);
    g->loc = *loc;
    g->first = qty_at;
    g->unlisted = qual;
    g->rank = -1;
    return g;
}

/* A QTY of the current LIN. */
static sf_status x12_846__qty(x12_846__state *s, const sf_x12_seg *qty, const x12_846__loc *loc,
                              sf_error *lin_err)
{
    sf_x12_span qual = sf_x12_el(qty, 1);
    x12_846__group *g = x12_846__group_for(s, loc, qty->number, qual, lin_err);
    if (!g)
        return lin_err->status;
    int r = sf_x12_quals_rank(&s->opts.qtys, qual);
    if (r < 0)
        return SF_OK;
    if (g->rank >= 0 && r == g->rank) {
        if (!g->dup)
            g->dup = qty->number;
        return SF_OK;
    }
    if (g->rank >= 0 && r > g->rank)
        return SF_OK;
    g->rank = r;
    g->at = qty->number;
    g->dup = 0;
    g->ok = false;
    unsigned long long n = (unsigned long long)qty->number;
    if (sf_x12_number(sf_x12_el(qty, 2), "QTY02", &g->qty, &g->err) != SF_OK) {
        sf_error_prefix(&g->err, "segment %llu: ", n);
        return SF_OK;
    }
    if (g->qty.units < 0) {
        SF_ERR(&g->err, SF_EINVAL,
               "segment %llu: field QTY02: %.*s is negative (stock is 0 or more)", n,
               (int)sf_x12_el(qty, 2).len, sf_x12_el(qty, 2).p);
        return SF_OK;
    }
    if (sf_x12_uom(s->x, sf_x12_el(qty, 3), "QTY03", g->uom, &g->err) != SF_OK) {
        sf_error_prefix(&g->err, "segment %llu: ", n);
        return SF_OK;
    }
    g->ok = true;
    return SF_OK;
}

/* Read the LIN loop starting at lin (already read, with status lin_st
 * and error lin_e) up to the next LIN, CTT, loop N1 or the SE, leaving
 * its rows pending. Only SF_ENOMEM and internal errors fail. */
static sf_status x12_846__lin(x12_846__state *s, sf_status lin_st, const sf_error *lin_e,
                              sf_error *err)
{
    uint64_t lin_at = s->seg->number;
    bool bad = false;
    uint64_t bad_at = 0;
    sf_error why;
    s->n_groups = s->next_group = 0;
    if (s->slots_used)
        memset(s->slots, 0, sizeof s->slots);
    s->slots_used = false;
    s->lin_asof = s->asof;
    int best = INT_MAX;
    bool has_in_loc = false;
    x12_846__loc in_loc;
    memset(&in_loc, 0, sizeof in_loc);

    if (lin_st != SF_OK) {
        bad = true;
        bad_at = lin_at;
        why = *lin_e;
    } else if (sf_x12_lin_item(s->x, s->seg, &s->opts.items, s->item, &why) != SF_OK) {
        bad = true;
        bad_at = lin_at;
    }
    while (s->body.number < s->set.body_end) {
        sf_x12_cursor c = s->body;
        sf_error e;
        sf_status st = sf_x12_next(s->x, &c, s->seg, &e);
        if (st != SF_OK && st != SF_EINVAL) {
            *err = e;
            return st;
        }
        const char *id = s->seg->id;
        if (strcmp(id, "LIN") == 0 || strcmp(id, "CTT") == 0)
            break;
        if (strcmp(id, "N1") == 0 && x12_846__n1_starts_loop(s, c))
            break;
        s->body = c;
        unsigned long long n = (unsigned long long)s->seg->number;
        if (bad)
            continue;
        if (st == SF_EINVAL) {
            bad = true;
            bad_at = s->seg->number;
            why = e;
        } else if (strcmp(id, "N1") == 0) {
            if (x12_846__n1(s, s->seg, &in_loc))
                has_in_loc = true;
        } else if (strcmp(id, "QTY") == 0) {
            sf_status qs = x12_846__qty(s, s->seg, has_in_loc ? &in_loc : &s->loop_loc, &e);
            if (qs == SF_ENOMEM) {
                *err = e;
                return qs;
            }
            if (qs != SF_OK) {
                bad = true;
                bad_at = s->seg->number;
                why = e;
            }
        } else if (strcmp(id, "DTM") == 0) {
            int r = x12_846__asof_rank(sf_x12_el(s->seg, 1));
            int64_t t;
            if (r < 0)
                continue;
            if (sf_x12_time(s->x, &s->ctx, s->seg, 2, true, &t, &why) != SF_OK) {
                sf_error_prefix(&why, "segment %llu: ", n);
                bad = true;
                bad_at = s->seg->number;
            } else if (r < best) {
                best = r;
                s->lin_asof = t;
            }
        } else if (strcmp(id, "SDQ") == 0) {
            bad = true;
            bad_at = s->seg->number;
            SF_ERR(&why, SF_EINVAL,
                   "segment %llu: SDQ (quantities by destination) is not supported: send one QTY "
                   "per location N1",
                   n);
        }
    }
    if (!bad && s->n_groups == 0) {
        bad = true;
        bad_at = lin_at;
        SF_ERR(&why, SF_EINVAL, "segment %llu: LIN has no QTY", (unsigned long long)lin_at);
    }
    if (bad)
        x12_846__reject(s, bad_at, &why);
    return SF_OK;
}

static void x12_846__group_row(x12_846__state *s, const x12_846__group *g, sf_supplier_row *row)
{
    sf_x12_row_start(row, ++s->ordinal, SF_KIND_COUNT, g->at ? g->at : g->first);
    sf_error why;
    if (g->loc.bad) {
        sf_x12_row_reject(row, g->loc.seg, &g->loc.err);
    } else if (g->rank < 0) {
        char list[3 * SF_X12_QUALS_MAX + 1], q[64];
        sf_x12_quals_format(&s->opts.qtys, list, sizeof list);
        sf_str_quote(g->unlisted.p, g->unlisted.len, q, sizeof q);
        SF_ERR(&why, SF_EINVAL,
               "segment %llu: no QTY counts this item here: QTY01 %s is not in qty_qualifiers %s",
               (unsigned long long)g->first, q, list);
        sf_x12_row_reject(row, g->first, &why);
    } else if (g->dup) {
        SF_ERR(&why, SF_EINVAL,
               "segment %llu: a second QTY %s for this item and location (the first is segment "
               "%llu)",
               (unsigned long long)g->dup, s->opts.qtys.q[g->rank], (unsigned long long)g->at);
        sf_x12_row_reject(row, g->dup, &why);
    } else if (!g->ok) {
        sf_x12_row_reject(row, g->at, &g->err);
    } else {
        memcpy(row->item, s->item, sizeof row->item);
        memcpy(row->location, g->loc.code, sizeof row->location);
        row->qty = g->qty;
        memcpy(row->uom, g->uom, sizeof row->uom);
        row->occurred_at = s->lin_asof;
    }
}

/* ------------------------------------------------------------ interface --- */

static void x12_846__close(void *state)
{
    x12_846__state *s = state;
    if (!s)
        return;
    sf_x12_close(s->x);
    free(s->seg);
    free(s->peek);
    free(s->groups);
    free(s);
}

static sf_status x12_846__open(const void *opts, const sf_feed_ctx *ctx, const char *data,
                               size_t len, void **state, sf_error *err)
{
    *state = NULL;
    x12_846__state *s = calloc(1, sizeof *s);
    if (!s)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    if (opts) {
        s->opts = *(const x12_846__opts *)opts;
    } else if (sf_x12_quals_parse("VP,VN,SK,BP,UP,EN,IN", &s->opts.items, err) != SF_OK ||
               sf_x12_quals_parse("33,17", &s->opts.qtys, err) != SF_OK) {
        free(s);
        return SF_EINTERNAL;
    } else {
        sf_x12_limits_init(&s->opts.limits);
        s->opts.max_locs = X12_846_LOCS_MAX;
    }
    s->ctx = *ctx;
    s->seg = malloc(sizeof *s->seg);
    s->peek = malloc(sizeof *s->peek);
    if (!s->seg || !s->peek) {
        x12_846__close(s);
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    }
    sf_status st = sf_x12_open(data, len, &s->opts.limits, &s->x, err);
    if (st != SF_OK) {
        if (ctx->name && ctx->name[0])
            sf_error_prefix(err, "%s: ", ctx->name);
        x12_846__close(s);
        return st;
    }
    s->cur = sf_x12_begin(s->x);
    *state = s;
    return SF_OK;
}

static sf_status x12_846__next(void *state, sf_supplier_row *row, sf_error *err)
{
    x12_846__state *s = state;
    for (;;) {
        if (s->reject_pending) {
            s->reject_pending = false;
            sf_x12_row_start(row, ++s->ordinal, SF_KIND_COUNT, s->reject_at);
            sf_x12_row_reject(row, s->reject_at, &s->reject);
            return SF_OK;
        }
        if (s->next_group < s->n_groups) {
            x12_846__group_row(s, &s->groups[s->next_group++], row);
            return SF_OK;
        }
        if (!s->in_set) {
            sf_status st = sf_x12_next_set(s->x, &s->cur, &s->set, err);
            if (st != SF_OK)
                return st;
            uint64_t at = s->set.error_at;
            sf_error why;
            if (!s->set.ok) {
                x12_846__reject(s, at, &s->set.error);
            } else if (strcmp(s->set.type, "846") != 0) {
                char q[32];
                sf_str_quote(s->set.type, strlen(s->set.type), q, sizeof q);
                SF_ERR(&why, SF_EINVAL,
                       "segment %llu: ST01 %s is not 846 (Inventory Inquiry/Advice)",
                       (unsigned long long)s->set.st, q);
                x12_846__reject(s, s->set.st, &why);
            } else if (!x12_846__check_set(s, &at, &why)) {
                x12_846__reject(s, at, &why);
            } else {
                s->in_set = true;
                s->body = s->set.body;
                memset(&s->loop_loc, 0, sizeof s->loop_loc);
            }
            continue;
        }
        if (s->body.number >= s->set.body_end) {
            s->in_set = false;
            continue;
        }
        sf_error e;
        sf_status st = sf_x12_next(s->x, &s->body, s->seg, &e);
        if (st != SF_OK && st != SF_EINVAL) {
            *err = e;
            return st;
        }
        const char *id = s->seg->id;
        if (strcmp(id, "LIN") == 0) {
            sf_status ls = x12_846__lin(s, st, &e, err);
            if (ls != SF_OK)
                return ls;
        } else if (st != SF_OK) {
            continue; /* check_set rejects malformed segments outside LIN loops */
        } else if (strcmp(id, "N1") == 0) {
            x12_846__loc loc;
            if (x12_846__n1(s, s->seg, &loc))
                s->loop_loc = loc;
        } else if (strcmp(id, "QTY") == 0) {
            sf_error why;
            SF_ERR(&why, SF_EINVAL,
                   "segment %llu: QTY without a LIN (a quantity follows the LIN of its item)",
                   (unsigned long long)s->seg->number);
            x12_846__reject(s, s->seg->number, &why);
        }
    }
}

static const char *x12_846__digest(const void *state)
{
    const x12_846__state *s = state;
    return sf_x12_digest(s->x);
}

const sf_adapter_ops sf_adapter_x12_846 = {
    .format = "x12-846",
    .keys = x12_846__keys,
    .configure = x12_846__configure,
    .free_opts = x12_846__free_opts,
    .open = x12_846__open,
    .next = x12_846__next,
    .digest = x12_846__digest,
    .close = x12_846__close,
};
