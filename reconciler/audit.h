/*
 * audit: `inv-reconciler audit [--repair] [--json]`. Rebuilds every position
 * (and reservation) from the ledger alone, following DESIGN.md "Stock
 * semantics", and reports each field that differs from what is stored.
 *
 * Work goes in batches of up to 500 skus in bytewise order; each batch is
 * compared in one statement, so one snapshot: a consumer committing
 * meanwhile is wholly seen or not at all, and live traffic never shows as
 * drift. With --repair, a batch that drifts is fixed in one transaction that
 * locks its drifting positions rows in key order, recomputes them from the
 * ledger under the lock, rewrites positions and reservations and marks the
 * skus dirty (the SQL lives in schemas/sql/005_audit.sql).
 *
 * Drift fields: on_hand, reserved, inbound, damaged, count_qty, count_at,
 * count_event_id of a position, and reservations.reserved, .released,
 * .sold, .expires_at, .never_expires of a (ref, sku, location). A missing
 * stored row shows as stored null (table "-") on each field it would hold;
 * a stored row the ledger does not explain is compared with zeros.
 *
 * Output on `out`, written when the job ends (nothing partial on failure):
 * a table "sku location field stored rebuilt" (a reservation's field reads
 * reservations[REF].sold) and the line "N positions checked, N drifts (N
 * repaired)"; or with json one object {"checked":N,"drifts":[{"sku",
 * "location","field","stored","rebuilt"} ...],"repaired":N}, where a
 * reservation drift also has "ref", and values are integers, strings
 * (count_event_id), booleans (never_expires) or null (absent). Progress
 * (reconciler/progress.h) over the number of distinct skus goes to
 * `progress` (NULL: none); errors go to stderr, naming the cause. SIGINT or
 * SIGTERM (sf_shutdown) stops the job between batches, as a failure; the
 * batches already repaired stay repaired.
 */
#ifndef REC_AUDIT_H
#define REC_AUDIT_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

typedef struct rec_audit_opts {
    bool repair;
    bool json;
} rec_audit_opts;

/* Exit code: 0 no drift (or every drift repaired), 1 drift found and not
 * repaired, or a failure (message on stderr naming the cause). Result
 * table / JSON on out; progress (rec_progress) on progress. */
int rec_audit(const sf_config *cfg, const rec_audit_opts *o, FILE *out, FILE *progress);

#endif
