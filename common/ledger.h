/*
 * ledger: the exactly-once apply of a batch of events to PostgreSQL.
 *
 * sf_ledger_apply stages the batch with COPY into a session temp table and
 * calls sf_apply_stage() (schemas/sql), which inserts into the ledger with
 * ON CONFLICT DO NOTHING and applies only the inserted rows to positions,
 * reservations and the dirty outbox, all in one transaction. The caller
 * acknowledges the broker only after this returns SF_OK: a crash before the
 * commit redelivers, a crash after it redelivers rows the ledger already has.
 */
#ifndef SF_LEDGER_H
#define SF_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "sf_error.h"

typedef struct sf_ledger sf_ledger;

/* Connect and prepare the session (temp staging tables). */
sf_status sf_ledger_open(const char *dsn, sf_ledger **out, sf_error *err) SF_MUSTCHECK;

/* Close the connection; NULL is a no-op. */
void sf_ledger_close(sf_ledger *lg);

/* Drop the connection and open a fresh one (after SF_EUNAVAIL). */
sf_status sf_ledger_reconnect(sf_ledger *lg, sf_error *err) SF_MUSTCHECK;

/* Apply n validated events in one transaction. seqs[i] is the INV_EVENTS
 * stream sequence of evs[i] (0 = none); seqs may be NULL. *inserted counts
 * events new to the ledger (the rest were already there). Errors:
 * SF_EUNAVAIL (retry later, nothing committed), SF_EINVAL (a data error in
 * the batch: apply the events one by one to find it), SF_EINTERNAL. */
sf_status sf_ledger_apply(sf_ledger *lg, const sf_event *evs, const uint64_t *seqs, size_t n,
                          size_t *inserted, sf_error *err) SF_MUSTCHECK;

/* The underlying connection, for read queries on the same session. */
struct pg_conn *sf_ledger_conn(sf_ledger *lg);

#endif
