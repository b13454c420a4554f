/*
 * expiry: reservations whose expires_at has passed with outstanding > 0
 * get an ordinary RELEASE (DESIGN.md "Stock semantics", expiry): qty = the
 * outstanding seen, occurred_at = expires_at, the reservation's ref, sku and
 * location, source "reservation-expiry", event_id "exp-" + 40 hex of
 * SHA-256 over ref, sku, location, expires_at and Σ RESERVE qty joined by
 * 0x1F. The RELEASE goes to INV_EVENTS like any event, so the ledger shows
 * who released what and when, and the consumer applies it with the usual
 * semantics (a RELEASE larger than what is held is absorbed).
 *
 * The one idea: the id depends only on the reservation's state, so two
 * reconcilers, or one that runs again before the consumer applied the
 * first RELEASE, publish the same id and JetStream/the ledger drop the
 * copy; a RESERVE arriving after the expiry raises Σ RESERVE and so gets a
 * RELEASE of its own.
 */
#ifndef REC_EXPIRY_H
#define REC_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "config.h"
#include "event.h"
#include "ops.h"
#include "sf_error.h"

typedef struct rec_expiry rec_expiry;

/* ops (borrowed, may be NULL) gets an alert.reservation_expired per RELEASE. */
sf_status rec_expiry_new(const sf_config *cfg, sf_broker *b, sf_ops *ops, rec_expiry **out,
                         sf_error *err) SF_MUSTCHECK;
void rec_expiry_free(rec_expiry *x);

/* Publish the RELEASE of up to batch expired reservations (as of now_ms) and
 * wait for JetStream's acks. *found: how many were expired. */
sf_status rec_expiry_step(rec_expiry *x, int batch, int64_t now_ms, size_t *found,
                          sf_error *err) SF_MUSTCHECK;

/* The expiry RELEASE of one reservation (exposed for tests). */
void rec_expiry_event(const char *ref, const char *sku, const char *location, int64_t outstanding,
                      int64_t reserved, int64_t expires_at, sf_event *out);

#endif
