/*
 * supplier_report: `inv-reconciler supplier-report [--since T] [--json|--csv]`.
 * Each supplier's latest COUNT per (sku, location) set against our book just
 * before it, as a discrepancy table.
 *
 * A supplier COUNT is a ledger row with kind COUNT and an event_id starting
 * "sup-" (inv-supplier made it); its source is the supplier id. For each
 * (supplier, sku, location), the latest such count (by occurred_at, then
 * event_id bytewise) with occurred_at >= since is compared with book_qty:
 * the previous COUNT of that (sku, location) from any source (the latest
 * strictly before it) plus the on_hand deltas after that one up to and
 * including the count's occurred_at (a delta at the count's own time is
 * inside the count); with no previous count, every delta up to and
 * including it (SQL: sf_book_before in schemas/sql/005_audit.sql).
 * difference = supplier_qty − book_qty. The whole report reads one snapshot
 * (a REPEATABLE READ, READ ONLY transaction).
 *
 * Output on `out`: CSV with the header
 * supplier,sku,location,counted_at,supplier_qty,book_qty,difference
 * (counted_at RFC 3339 UTC with milliseconds; cells quoted per RFC 4180 when
 * needed), or with json one object {"since": RFC 3339 or null, "rows":
 * [{"supplier","sku","location","counted_at","supplier_qty","book_qty",
 * "difference","event_id"} ...], "counts": rows, "discrepancies": rows with
 * a non-zero difference}. Every count is a row, agreeing ones included;
 * rows are sorted by supplier, |difference| descending, sku, location
 * (strings bytewise). Progress (reconciler/progress.h) over the counts goes
 * to `progress` (NULL: none); errors go to stderr, naming the cause. The
 * result is built in memory: about 200 bytes per (supplier, sku, location).
 */
#ifndef REC_SUPPLIER_REPORT_H
#define REC_SUPPLIER_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

typedef struct rec_report_opts {
    int64_t since_ms; /* 0 = all time */
    bool json;
} rec_report_opts;

/* Exit code: 0 (a discrepancy is a finding, not a failure), 1 on a failure
 * (message on stderr naming the cause). */
int rec_supplier_report(const sf_config *cfg, const rec_report_opts *o, FILE *out, FILE *progress);

#endif
