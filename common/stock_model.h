/*
 * stock_model: DESIGN.md "Stock semantics" as a pure in-memory function of
 * the SET of events: the independent oracle that tests and checkers compare
 * PostgreSQL positions and reservations against.
 *
 * The one idea: every stored quantity is either a sum (commutative, so the
 * order of arrival cannot matter) or the maximum under a total order (the
 * latest COUNT by (occurred_at, event_id)); an event whose event_id was
 * already added is ignored. Keep every new rule in one of those two shapes
 * or the model stops being order-independent. Sums wrap modulo 2^64 rather
 * than overflow (wrapping addition is still commutative); PostgreSQL would
 * refuse such values long before.
 *
 * Ownership: the model copies what it keeps from each event. Strings in
 * query results (sku, location, ref, count_event_id) are borrowed from the
 * model and valid until sf_model_free(). After SF_ENOMEM the model may hold
 * a partial event; free it.
 */
#ifndef SF_STOCK_MODEL_H
#define SF_STOCK_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "sf_error.h"

typedef struct sf_model sf_model;

sf_status sf_model_new(sf_model **out, sf_error *err) SF_MUSTCHECK;
/* NULL is a no-op. */
void sf_model_free(sf_model *m);

/* Add one event (assumed validated; only the kind and string termination
 * are checked here, SF_EINVAL otherwise). An event whose event_id was
 * already added is ignored and counted: *duplicate (may be NULL) is set. */
sf_status sf_model_add(sf_model *m, const sf_event *ev, bool *duplicate,
                       sf_error *err) SF_MUSTCHECK;

typedef struct sf_model_stats {
    uint64_t events;     /* distinct events applied */
    uint64_t duplicates; /* events ignored as already seen */
    size_t positions;    /* (sku, location) keys touched by any event */
    size_t reservations; /* (ref, sku, location) keys touched by RESERVE, RELEASE, SALE with ref */
} sf_model_stats;

void sf_model_stats_get(const sf_model *m, sf_model_stats *out);

typedef struct sf_position {
    const char *sku; /* borrowed */
    const char *location;
    int64_t on_hand;         /* latest COUNT qty + deltas after it (or all deltas) */
    int64_t reserved;        /* Σ outstanding over the position's refs */
    int64_t inbound;         /* raw Σ ASN − Σ RECEIPT, may be negative */
    int64_t inbound_floored; /* max(0, inbound): the value as read */
    int64_t damaged;         /* Σ RETURN with condition DAMAGED */
    bool has_count;          /* the latest COUNT, when there is one: */
    int64_t count_qty;
    int64_t count_at;
    const char *count_event_id; /* borrowed; NULL without a count */
} sf_position;

/* The position of (sku, location); false if no event touched it (then
 * *out is zeroed with sku and location NULL). */
bool sf_model_position(const sf_model *m, const char *sku, const char *location, sf_position *out);

typedef enum sf_expiry {
    SF_EXPIRY_NONE = 0, /* no RESERVE yet */
    SF_EXPIRY_NEVER,    /* some RESERVE had no expires_at */
    SF_EXPIRY_AT        /* expires at expires_at: the latest among its RESERVEs */
} sf_expiry;

typedef struct sf_reservation {
    const char *ref; /* borrowed; "" for RESERVE/RELEASE without a ref */
    const char *sku;
    const char *location;
    int64_t reserved;    /* Σ RESERVE qty */
    int64_t released;    /* Σ RELEASE qty */
    int64_t sold;        /* Σ SALE qty with this ref */
    int64_t outstanding; /* max(0, reserved − released − sold) */
    sf_expiry expiry;
    int64_t expires_at; /* when expiry is SF_EXPIRY_AT, else 0 */
} sf_reservation;

/* The reservation of (ref, sku, location), ref "" for the no-ref pool;
 * false if none (then *out is zeroed). */
bool sf_model_reservation(const sf_model *m, const char *ref, const char *sku, const char *location,
                          sf_reservation *out);

/* Visit every position in (sku, location) bytewise order; a non-zero
 * return from fn stops early. SF_ENOMEM if the sort index cannot be made. */
typedef int (*sf_model_position_fn)(const sf_position *p, void *ctx);
sf_status sf_model_foreach_position(const sf_model *m, sf_model_position_fn fn, void *ctx,
                                    sf_error *err) SF_MUSTCHECK;

/* Visit every reservation in (ref, sku, location) bytewise order. */
typedef int (*sf_model_reservation_fn)(const sf_reservation *r, void *ctx);
sf_status sf_model_foreach_reservation(const sf_model *m, sf_model_reservation_fn fn, void *ctx,
                                       sf_error *err) SF_MUSTCHECK;

#endif
