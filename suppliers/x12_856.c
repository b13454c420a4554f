/*
 * x12_856: the "x12-856" adapter. An 856 Advance Ship Notice becomes rows
 * of kind ASN, one per item HL (HL03 I).
 *
 * Each set is read twice. The first pass checks the set as a whole and
 * builds the HL tree: BSN first (BSN02, the shipment id, is every row's
 * ref; PRF order numbers are not used, so all rows of one shipment share
 * one reference and a receipt can be matched to it), HL01 unique, HL02 an
 * earlier HL, HL03 one of S (shipment), O (order), T (tare), P (pack), I
 * (item), the first HL a shipment, CTT01 = the number of HLs. Every HL
 * takes its parent's ship-to (N1 ST, N104 -> row.location) and ship date
 * (DTM 011 -> occurred_at) and may override them with its own; the set
 * starts from the BSN03/BSN04 date and time and a ship-to or DTM 011
 * before the first HL. A wrong one of these rejects the whole set as one
 * row (no other rows from it), as does a bad ST/SE trailer (x12.h), ST01
 * not 856, a malformed segment outside an item HL, a LIN or SN1 outside an
 * item HL, more HLs than max_hls_per_set (config, default 200000), or a
 * set with no item HL. The second pass walks the item HLs
 * in order, one row each: LIN (the pair whose qualifier comes first in
 * item_qualifiers) -> item, SN1 -> SN102 qty and SN103 uom; the row's
 * position is its SN1. An item is rejected alone (position: the offending
 * segment) for an unknown or missing parent HL, no LIN / no SN1 or two of
 * them, no usable item id, a bad or negative quantity, a bad unit, a bad
 * ship-to or date of its own, or a malformed segment. Times follow
 * sf_x12_time (supplier timezone, date-only rule, never after the read
 * time); no date at all gives occurred_at 0 (the mapper uses the read
 * time). An interchange whose ISA or envelopes are wrong fails open().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "adapter_util.h"
#include "x12.h"

#define X12_856_HLS_MAX 200000      /* HL segments of one set: the default */
#define X12_856_HLS_CFG_MAX 4000000 /* ... and the most the config may set */

static const char *const x12_856__keys[] = {"item_qualifiers", "max_hls_per_set", SF_X12_LIMIT_KEYS,
                                            NULL};

typedef struct x12_856__opts {
    sf_x12_quals items;
    sf_x12_limits limits;
    size_t max_hls; /* HL segments of one set */
} x12_856__opts;

/* What an HL and its descendants inherit. */
typedef struct x12_856__ctx {
    sf_x12_span ship_to; /* N104 of the nearest N1 ST (checked), len 0 = none */
    bool has_when;
    int64_t when;
} x12_856__ctx;

typedef struct x12_856__node {
    sf_x12_span id;
    int32_t parent;   /* index; -1 none; -2 unknown (items only) */
    char level;       /* S O T P I */
    sf_x12_cursor at; /* the HL itself */
    x12_856__ctx ctx;
} x12_856__node;

typedef struct x12_856__state {
    x12_856__opts opts;
    sf_feed_ctx ctx;
    sf_x12 *x;
    sf_x12_seg *seg;
    sf_x12_cursor cur;
    bool in_set;
    sf_x12_set set;
    char ref[SF_STR_MAX + 1];
    x12_856__node *nodes;
    size_t n_nodes, cap_nodes, next_node;
    uint32_t *slots; /* HL01 -> node index + 1; 0 empty */
    size_t cap_slots;
    uint64_t ordinal;
    bool reject_pending;
    uint64_t reject_at;
    sf_error reject;
} x12_856__state;

/* --------------------------------------------------------------- config --- */

static sf_status x12_856__configure(const sf_config *cfg, const char *section, void **opts,
                                    sf_error *err)
{
    *opts = NULL;
    x12_856__opts *o = calloc(1, sizeof *o);
    if (!o)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    sf_status st = sf_x12_quals_config(cfg, section, "item_qualifiers", "VP,VN,SK,BP,UP,EN,IN",
                                       &o->items, err);
    if (st == SF_OK)
        st = sf_x12_limits_config(cfg, section, &o->limits, err);
    int64_t hls = X12_856_HLS_MAX;
    if (st == SF_OK)
        st = sf_adapter_cfg_num(cfg, section, "max_hls_per_set", 1, X12_856_HLS_CFG_MAX,
                                "HL segments", &hls, err);
    o->max_hls = (size_t)hls;
    if (st != SF_OK) {
        free(o);
        return st;
    }
    *opts = o;
    return SF_OK;
}

static void x12_856__free_opts(void *opts)
{
    free(opts);
}

/* ------------------------------------------------------------- HL index --- */

static uint64_t x12_856__hash(sf_x12_span s)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < s.len; i++) {
        h ^= (unsigned char)s.p[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static int64_t x12_856__find(const x12_856__state *s, sf_x12_span id)
{
    if (!s->cap_slots)
        return -1;
    size_t mask = s->cap_slots - 1;
    for (size_t i = (size_t)x12_856__hash(id) & mask;; i = (i + 1) & mask) {
        uint32_t v = s->slots[i];
        if (!v)
            return -1;
        const x12_856__node *n = &s->nodes[v - 1];
        if (n->id.len == id.len && memcmp(n->id.p, id.p, id.len) == 0)
            return v - 1;
    }
}

static sf_status x12_856__index(x12_856__state *s, size_t idx, sf_error *err)
{
    if ((idx + 1) * 2 > s->cap_slots) {
        size_t cap = s->cap_slots ? s->cap_slots * 2 : 64;
        uint32_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return SF_ERR(err, SF_ENOMEM, "out of memory");
        free(s->slots);
        s->slots = slots;
        s->cap_slots = cap;
        for (size_t k = 0; k < idx; k++) {
            size_t i = (size_t)x12_856__hash(s->nodes[k].id) & (cap - 1);
            while (slots[i])
                i = (i + 1) & (cap - 1);
            slots[i] = (uint32_t)k + 1;
        }
    }
    size_t mask = s->cap_slots - 1;
    size_t i = (size_t)x12_856__hash(s->nodes[idx].id) & mask;
    while (s->slots[i])
        i = (i + 1) & mask;
    s->slots[i] = (uint32_t)idx + 1;
    return SF_OK;
}

/* ----------------------------------------------------------- set checks --- */

static bool x12_856__is_level(sf_x12_span l)
{
    return l.len == 1 && strchr("SOTPI", l.p[0]) != NULL;
}

/* A ship-to N1 into *to (checked); false and why on a bad one. */
static bool x12_856__ship_to(const x12_856__state *s, const sf_x12_seg *n1, sf_x12_span *to,
                             char dst[SF_STR_MAX + 1], sf_error *why)
{
    unsigned long long n = (unsigned long long)n1->number;
    sf_x12_span code = sf_x12_el(n1, 4);
    if (code.len == 0) {
        SF_ERR(why, SF_EINVAL, "segment %llu: N1 ST (ship-to) has no id code in N104", n);
        return false;
    }
    if (sf_x12_id(s->x, code, "N104", dst, why) != SF_OK) {
        sf_error_prefix(why, "segment %llu: ", n);
        return false;
    }
    *to = code;
    return true;
}

/* Pass one (see the file comment). On failure *at and *why name the
 * reject; SF_ENOMEM and internal errors return through err. */
static sf_status x12_856__check_set(x12_856__state *s, bool *ok, uint64_t *at, sf_error *why,
                                    sf_error *err)
{
    *ok = false;
    s->n_nodes = s->next_node = 0;
    if (s->slots)
        memset(s->slots, 0, s->cap_slots * sizeof *s->slots);
    s->ref[0] = '\0';
    x12_856__ctx head;
    memset(&head, 0, sizeof head);
    x12_856__ctx *ctx = &head;
    sf_x12_cursor c = s->set.body;
    bool first = true, in_item = false, after_ctt = false;
    size_t items = 0;
    sf_x12_seg *seg = s->seg;
    char buf[SF_STR_MAX + 1];
    while (c.number < s->set.body_end) {
        sf_x12_cursor hl_at = c;
        sf_error e;
        sf_status st = sf_x12_next(s->x, &c, seg, &e);
        if (st != SF_OK && st != SF_EINVAL) {
            *err = e;
            return st;
        }
        unsigned long long n = (unsigned long long)seg->number;
        *at = seg->number;
        const char *id = seg->id;
        if (first) {
            first = false;
            if (strcmp(id, "BSN") != 0) {
                SF_ERR(why, SF_EINVAL, "segment %llu: an 856 starts with BSN, not %s", n,
                       id[0] ? id : "an unreadable segment");
                return SF_OK;
            }
            if (st != SF_OK) {
                *why = e;
                return SF_OK;
            }
            if (sf_x12_id(s->x, sf_x12_el(seg, 2), "BSN02", s->ref, why) != SF_OK) {
                sf_error_prefix(why, "segment %llu: ", n);
                return SF_OK;
            }
            if (sf_x12_el(seg, 3).len) {
                if (sf_x12_time(s->x, &s->ctx, seg, 3, false, &head.when, why) != SF_OK) {
                    sf_error_prefix(why, "segment %llu: ", n);
                    return SF_OK;
                }
                head.has_when = true;
            }
            continue;
        }
        if (after_ctt) {
            if (st != SF_OK) {
                *why = e;
                return SF_OK;
            }
            if (strcmp(id, "HL") == 0 || strcmp(id, "LIN") == 0 || strcmp(id, "SN1") == 0) {
                SF_ERR(why, SF_EINVAL, "segment %llu: %s after CTT (the set's summary)", n, id);
                return SF_OK;
            }
            continue;
        }
        if (strcmp(id, "HL") == 0) {
            if (st != SF_OK) {
                *why = e;
                return SF_OK;
            }
            sf_x12_span hl01 = sf_x12_el(seg, 1), hl02 = sf_x12_el(seg, 2),
                        hl03 = sf_x12_el(seg, 3);
            char q[64];
            if (hl01.len == 0) {
                SF_ERR(why, SF_EINVAL, "segment %llu: field HL01 (HL id) is missing", n);
                return SF_OK;
            }
            if (!x12_856__is_level(hl03)) {
                sf_str_quote(hl03.p, hl03.len, q, sizeof q);
                SF_ERR(why, SF_EINVAL, "segment %llu: field HL03: level %s is not S, O, T, P or I",
                       n, q);
                return SF_OK;
            }
            if (s->n_nodes == 0 && hl03.p[0] != 'S') {
                SF_ERR(why, SF_EINVAL,
                       "segment %llu: the first HL must be the shipment (S), not %c", n, hl03.p[0]);
                return SF_OK;
            }
            if (s->n_nodes >= s->opts.max_hls) {
                SF_ERR(why, SF_EINVAL,
                       "segment %llu: more than %zu HL segments in one set (max_hls_per_set)", n,
                       s->opts.max_hls);
                return SF_OK;
            }
            int64_t dup = x12_856__find(s, hl01);
            if (dup >= 0) {
                sf_str_quote(hl01.p, hl01.len, q, sizeof q);
                SF_ERR(why, SF_EINVAL, "segment %llu: HL01 %s repeats the HL of segment %llu", n, q,
                       (unsigned long long)s->nodes[dup].at.number);
                return SF_OK;
            }
            int64_t parent = -1;
            if (hl02.len) {
                parent = x12_856__find(s, hl02);
                if (parent < 0 && hl03.p[0] != 'I') {
                    sf_str_quote(hl02.p, hl02.len, q, sizeof q);
                    SF_ERR(why, SF_EINVAL, "segment %llu: HL02 parent %s is not an earlier HL", n,
                           q);
                    return SF_OK;
                }
                if (parent < 0)
                    parent = -2;
            } else if (hl03.p[0] == 'I') {
                parent = -2;
            }
            if (s->n_nodes == s->cap_nodes) {
                size_t cap = s->cap_nodes ? s->cap_nodes * 2 : 64;
                x12_856__node *nodes = realloc(s->nodes, cap * sizeof *nodes);
                if (!nodes)
                    return SF_ERR(err, SF_ENOMEM, "out of memory");
                s->nodes = nodes;
                s->cap_nodes = cap;
            }
            size_t idx = s->n_nodes++;
            x12_856__node *node = &s->nodes[idx];
            node->id = hl01;
            node->parent = (int32_t)parent;
            node->level = hl03.p[0];
            node->at = hl_at;
            node->ctx = parent >= 0 ? s->nodes[parent].ctx : head;
            sf_status is = x12_856__index(s, idx, err);
            if (is != SF_OK)
                return is;
            in_item = node->level == 'I';
            items += in_item;
            ctx = &node->ctx;
            continue;
        }
        if (in_item && strcmp(id, "CTT") != 0)
            continue; /* pass two reads the item's own segments */
        if (st != SF_OK) {
            *why = e;
            return SF_OK;
        }
        if (strcmp(id, "N1") == 0 && sf_x12_is(sf_x12_el(seg, 1), "ST")) {
            if (!x12_856__ship_to(s, seg, &ctx->ship_to, buf, why))
                return SF_OK;
        } else if (strcmp(id, "DTM") == 0 && sf_x12_is(sf_x12_el(seg, 1), "011")) {
            if (sf_x12_time(s->x, &s->ctx, seg, 2, true, &ctx->when, why) != SF_OK) {
                sf_error_prefix(why, "segment %llu: ", n);
                return SF_OK;
            }
            ctx->has_when = true;
        } else if (strcmp(id, "LIN") == 0 || strcmp(id, "SN1") == 0) {
            SF_ERR(why, SF_EINVAL, "segment %llu: %s outside an item HL (HL03 I)", n, id);
            return SF_OK;
        } else if (strcmp(id, "CTT") == 0) {
            sf_decimal d;
            if (sf_x12_number(sf_x12_el(seg, 1), "CTT01", &d, why) != SF_OK || d.scale != 0 ||
                d.units < 0) {
                SF_ERR(why, SF_EINVAL, "segment %llu: field CTT01: not a count of HL segments", n);
                return SF_OK;
            }
            if ((uint64_t)d.units != s->n_nodes) {
                SF_ERR(why, SF_EINVAL, "segment %llu: CTT01 says %lld HL segments, the set has %zu",
                       n, (long long)d.units, s->n_nodes);
                return SF_OK;
            }
            after_ctt = true;
            in_item = false;
        }
    }
    unsigned long long stn = (unsigned long long)s->set.st;
    *at = s->set.st;
    if (first) {
        SF_ERR(why, SF_EINVAL, "segment %llu: the 856 is empty (no BSN)", stn);
        return SF_OK;
    }
    if (items == 0) {
        SF_ERR(why, SF_EINVAL, "segment %llu: the 856 has no item HL (HL03 I)", stn);
        return SF_OK;
    }
    *ok = true;
    return SF_OK;
}

/* ---------------------------------------------------------------- items --- */

/* Pass two for one item HL: its row. */
static sf_status x12_856__item(x12_856__state *s, const x12_856__node *node, sf_supplier_row *row,
                               sf_error *err)
{
    sf_x12_cursor c = node->at;
    sf_x12_seg *seg = s->seg;
    sf_error e, why;
    sf_status st = sf_x12_next(s->x, &c, seg, &e);
    if (st != SF_OK) {
        *err = e;
        return st == SF_EINVAL ? SF_EINTERNAL : st;
    }
    uint64_t hl_at = seg->number;
    unsigned long long hn = (unsigned long long)hl_at;
    sf_x12_row_start(row, ++s->ordinal, SF_KIND_ASN, hl_at);
    if (node->parent == -2) {
        char q[64];
        sf_x12_span hl02 = sf_x12_el(seg, 2);
        sf_str_quote(hl02.p, hl02.len, q, sizeof q);
        if (hl02.len)
            SF_ERR(&why, SF_EINVAL, "segment %llu: HL02 parent %s is not an earlier HL", hn, q);
        else
            SF_ERR(&why, SF_EINVAL, "segment %llu: field HL02: an item HL needs a parent HL", hn);
        sf_x12_row_reject(row, hl_at, &why);
        return SF_OK;
    }
    x12_856__ctx ctx = node->ctx;
    uint64_t lin_at = 0, sn1_at = 0, bad_at = 0;
    while (c.number < s->set.body_end) {
        sf_x12_cursor next = c;
        st = sf_x12_next(s->x, &next, seg, &e);
        if (st != SF_OK && st != SF_EINVAL) {
            *err = e;
            return st;
        }
        const char *id = seg->id;
        if (strcmp(id, "HL") == 0 || strcmp(id, "CTT") == 0)
            break;
        c = next;
        if (bad_at)
            continue;
        unsigned long long n = (unsigned long long)seg->number;
        if (st != SF_OK) {
            bad_at = seg->number;
            why = e;
        } else if (strcmp(id, "LIN") == 0) {
            if (lin_at) {
                bad_at = seg->number;
                SF_ERR(&why, SF_EINVAL,
                       "segment %llu: a second LIN in one item HL (the first is segment %llu)", n,
                       (unsigned long long)lin_at);
            } else if (sf_x12_lin_item(s->x, seg, &s->opts.items, row->item, &why) != SF_OK) {
                bad_at = seg->number;
            }
            lin_at = seg->number;
        } else if (strcmp(id, "SN1") == 0) {
            sf_x12_span qty = sf_x12_el(seg, 2);
            if (sn1_at) {
                bad_at = seg->number;
                SF_ERR(&why, SF_EINVAL,
                       "segment %llu: a second SN1 in one item HL (the first is segment %llu)", n,
                       (unsigned long long)sn1_at);
            } else if (sf_x12_number(qty, "SN102", &row->qty, &why) != SF_OK) {
                sf_error_prefix(&why, "segment %llu: ", n);
                bad_at = seg->number;
            } else if (row->qty.units < 0) {
                SF_ERR(&why, SF_EINVAL,
                       "segment %llu: field SN102: %.*s is negative (a shipped quantity is 0 or "
                       "more)",
                       n, (int)qty.len, qty.p);
                bad_at = seg->number;
            } else if (sf_x12_uom(s->x, sf_x12_el(seg, 3), "SN103", row->uom, &why) != SF_OK) {
                sf_error_prefix(&why, "segment %llu: ", n);
                bad_at = seg->number;
            }
            sn1_at = seg->number;
        } else if (strcmp(id, "N1") == 0 && sf_x12_is(sf_x12_el(seg, 1), "ST")) {
            if (!x12_856__ship_to(s, seg, &ctx.ship_to, row->location, &why))
                bad_at = seg->number;
        } else if (strcmp(id, "DTM") == 0 && sf_x12_is(sf_x12_el(seg, 1), "011")) {
            if (sf_x12_time(s->x, &s->ctx, seg, 2, true, &ctx.when, &why) != SF_OK) {
                sf_error_prefix(&why, "segment %llu: ", n);
                bad_at = seg->number;
            }
            ctx.has_when = true;
        }
    }
    if (!bad_at && !lin_at) {
        bad_at = hl_at;
        SF_ERR(&why, SF_EINVAL, "segment %llu: the item HL has no LIN", hn);
    } else if (!bad_at && !sn1_at) {
        bad_at = hl_at;
        SF_ERR(&why, SF_EINVAL, "segment %llu: the item HL has no SN1", hn);
    }
    if (bad_at) {
        sf_x12_row_reject(row, bad_at, &why);
        return SF_OK;
    }
    snprintf(row->position, sizeof row->position, "segment %llu", (unsigned long long)sn1_at);
    if (ctx.ship_to.len &&
        sf_x12_id(s->x, ctx.ship_to, "N104", row->location, &why) != SF_OK) { /* checked */
        *err = why;
        return SF_EINTERNAL;
    }
    row->occurred_at = ctx.has_when ? ctx.when : 0;
    memcpy(row->ref, s->ref, sizeof row->ref);
    return SF_OK;
}

/* ------------------------------------------------------------ interface --- */

static void x12_856__close(void *state)
{
    x12_856__state *s = state;
    if (!s)
        return;
    sf_x12_close(s->x);
    free(s->seg);
    free(s->nodes);
    free(s->slots);
    free(s);
}

static sf_status x12_856__open(const void *opts, const sf_feed_ctx *ctx, const char *data,
                               size_t len, void **state, sf_error *err)
{
    *state = NULL;
    x12_856__state *s = calloc(1, sizeof *s);
    if (!s)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    if (opts) {
        s->opts = *(const x12_856__opts *)opts;
    } else if (sf_x12_quals_parse("VP,VN,SK,BP,UP,EN,IN", &s->opts.items, err) != SF_OK) {
        free(s);
        return SF_EINTERNAL;
    } else {
        sf_x12_limits_init(&s->opts.limits);
        s->opts.max_hls = X12_856_HLS_MAX;
    }
    s->ctx = *ctx;
    s->seg = malloc(sizeof *s->seg);
    if (!s->seg) {
        x12_856__close(s);
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    }
    sf_status st = sf_x12_open(data, len, &s->opts.limits, &s->x, err);
    if (st != SF_OK) {
        if (ctx->name && ctx->name[0])
            sf_error_prefix(err, "%s: ", ctx->name);
        x12_856__close(s);
        return st;
    }
    s->cur = sf_x12_begin(s->x);
    *state = s;
    return SF_OK;
}

static sf_status x12_856__next(void *state, sf_supplier_row *row, sf_error *err)
{
    x12_856__state *s = state;
    for (;;) {
        if (s->reject_pending) {
            s->reject_pending = false;
            sf_x12_row_start(row, ++s->ordinal, SF_KIND_ASN, s->reject_at);
            sf_x12_row_reject(row, s->reject_at, &s->reject);
            return SF_OK;
        }
        if (s->in_set) {
            while (s->next_node < s->n_nodes && s->nodes[s->next_node].level != 'I')
                s->next_node++;
            if (s->next_node < s->n_nodes)
                return x12_856__item(s, &s->nodes[s->next_node++], row, err);
            s->in_set = false;
        }
        sf_status st = sf_x12_next_set(s->x, &s->cur, &s->set, err);
        if (st != SF_OK)
            return st;
        s->n_nodes = s->next_node = 0;
        bool ok = false;
        uint64_t at = s->set.error_at;
        sf_error why;
        if (!s->set.ok) {
            why = s->set.error;
        } else if (strcmp(s->set.type, "856") != 0) {
            char q[32];
            sf_str_quote(s->set.type, strlen(s->set.type), q, sizeof q);
            at = s->set.st;
            SF_ERR(&why, SF_EINVAL, "segment %llu: ST01 %s is not 856 (Ship Notice/Manifest)",
                   (unsigned long long)at, q);
        } else {
            st = x12_856__check_set(s, &ok, &at, &why, err);
            if (st != SF_OK)
                return st;
        }
        if (ok) {
            s->in_set = true;
        } else {
            s->reject_pending = true;
            s->reject_at = at;
            s->reject = why;
        }
    }
}

static const char *x12_856__digest(const void *state)
{
    const x12_856__state *s = state;
    return sf_x12_digest(s->x);
}

const sf_adapter_ops sf_adapter_x12_856 = {
    .format = "x12-856",
    .keys = x12_856__keys,
    .configure = x12_856__configure,
    .free_opts = x12_856__free_opts,
    .open = x12_856__open,
    .next = x12_856__next,
    .digest = x12_856__digest,
    .close = x12_856__close,
};
