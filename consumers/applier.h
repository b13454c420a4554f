/*
 * applier: one fetched batch from INV_EVENTS to PostgreSQL, exactly once.
 *
 * Per message: decode (unknown fingerprint -> DLQ "fingerprint", anything
 * undecodable -> DLQ "decode"), validate (-> DLQ "invalid"), then the good
 * ones are applied together in one transaction (sf_ledger_apply) and
 * acknowledged only after the commit. A message is acknowledged after its
 * DLQ copy is stored, never before. An infrastructure error (PostgreSQL or
 * NATS down) is never sidelined: the batch is kept alive with InProgress
 * and retried with capped, jittered backoff until it succeeds or shutdown
 * is asked. A data error in the batch makes each event apply alone; one
 * that still fails is NAKed, and sidelined as "poison" once it has been
 * delivered max_deliver times.
 */
#ifndef SF_APPLIER_H
#define SF_APPLIER_H

#include <signal.h>
#include <stdint.h>

#include "ops.h"

#include "broker_pull.h"
#include "codec.h"
#include "ledger.h"

typedef struct sf_applier_opts {
    int max_deliver;         /* deliveries before a failing event is poison (10) */
    int64_t max_future_ms;   /* validation bound on occurred_at (300000) */
    int64_t now_ms_override; /* INV_NOW_MS; 0: the real clock */
    int backoff_max_ms;      /* cap of the retry backoff (5000) */
    int max_msg_bytes;       /* a larger message is sidelined as decode, unread (1024) */
    sf_ops *ops;             /* optional, borrowed: alert.sidelined goes here */
} sf_applier_opts;

void sf_applier_opts_init(sf_applier_opts *opts);

typedef struct sf_applier_stats {
    uint64_t batches;
    uint64_t messages;   /* messages handled (acked) */
    uint64_t applied;    /* new to the ledger */
    uint64_t duplicates; /* already in the ledger */
    uint64_t sidelined;  /* sent to INV_DLQ */
    uint64_t retries;    /* infrastructure retries */
} sf_applier_stats;

typedef struct sf_applier sf_applier;

/* Borrows broker, ledger and codec (the caller closes them after
 * sf_applier_free); `stop` is polled during retries. */
sf_status sf_applier_new(sf_broker *broker, sf_ledger *ledger, sf_codec *codec,
                         const sf_applier_opts *opts, volatile sig_atomic_t *stop, sf_applier **out,
                         sf_error *err) SF_MUSTCHECK;
void sf_applier_free(sf_applier *ap);

/* Handle one fetched batch completely: every message ends acked, NAKed
 * (to be redelivered) or, if shutdown interrupted an outage, left unacked
 * (redelivered after the ack wait). Returns SF_OK, or SF_EUNAVAIL when it
 * gave up because of shutdown. */
sf_status sf_applier_handle(sf_applier *ap, sf_batch *batch, sf_error *err) SF_MUSTCHECK;

const sf_applier_stats *sf_applier_stats_get(const sf_applier *ap);

#endif
