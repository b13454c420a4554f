/*
 * reserve: check-and-reserve, POST /v1/reservations (DESIGN.md
 * "Check-and-reserve"). Parses and checks the request, then runs
 * sf_reserve() (schemas/sql/007_reserve.sql) as ONE prepared statement: the
 * lock, the check, the RESERVE applied as a consumer applies it, the outbox
 * row and the idempotency row commit together or not at all.
 *
 * The one idea: the Idempotency-Key makes every call safe to repeat, so a
 * call that loses its connection mid-way is simply run again on a fresh
 * one: if the first run committed, the second returns its answer.
 * event_id = "rsv-" + 40 hex of SHA-256 over key, ref and sku joined by
 * 0x1F; expires_at = now + ttl_s.
 *
 * Threads: an api_reserve belongs to one thread (it is a PGconn of its own,
 * next to the thread's read connection, query.h).
 */
#ifndef API_RESERVE_H
#define API_RESERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "sf_error.h"

#define API_RESERVE_KEY_MAX 128            /* Idempotency-Key bytes, visible ASCII */
#define API_RESERVE_QTY_MAX 1000000000LL   /* units per request */
#define API_RESERVE_TTL_MAX (30LL * 86400) /* ttl_s: 30 days */
#define API_RESERVE_SOURCE "inv-api"

typedef struct api_reserve api_reserve;

/* A checked request. Exactly one of location, channel is non-empty. */
typedef struct api_reserve_req {
    char key[API_RESERVE_KEY_MAX + 1];
    char ref[SF_STR_MAX + 1];
    char sku[SF_STR_MAX + 1];
    char location[SF_STR_MAX + 1];
    char channel[SF_STR_MAX + 1];
    int64_t qty;
    int64_t ttl_s;
} api_reserve_req;

/* What a failed parse says: HTTP status 400, the field, a message that
 * quotes the input. */
typedef struct api_reserve_bad {
    char field[32];
    char msg[400];
} api_reserve_bad;

/* Check the Idempotency-Key header (key may be NULL: missing) and the JSON
 * body into out. false: bad says what is wrong (the first problem found). */
bool api_reserve_parse(const char *key, const char *body, size_t len, api_reserve_req *out,
                       api_reserve_bad *bad);

/* The event_id of a request: "rsv-" + 40 hex digits (out >= 45 bytes). */
void api_reserve_event_id(const api_reserve_req *rq, char *out, size_t size);

typedef struct api_reserve_result {
    int status;                    /* 201, 409, 404 (no such channel), 422 (key reused) */
    char event_id[SF_STR_MAX + 1]; /* 201 */
    char location[SF_STR_MAX + 1]; /* 201 */
    int64_t expires_at;            /* 201, epoch ms */
    int64_t available;             /* 409: the most one request could reserve now */
    bool replay;                   /* the stored answer of an earlier request */
} api_reserve_result;

/* A handle for dsn; connects on first use. */
sf_status api_reserve_new(const char *dsn, api_reserve **out, sf_error *err) SF_MUSTCHECK;
void api_reserve_free(api_reserve *r); /* NULL is a no-op */

/* Run one request as of now_ms. SF_EUNAVAIL: PostgreSQL is away (retried
 * once on a fresh connection first); the client may repeat the request
 * with the same key. */
sf_status api_reserve_run(api_reserve *r, const api_reserve_req *rq, int64_t now_ms,
                          api_reserve_result *out, sf_error *err) SF_MUSTCHECK;

/* Wake the reconciler (NOTIFY inv_dirty: recompute the channels, relay the
 * outbox) unless this handle did so less than API_RESERVE_NOTIFY_MS ago.
 * Call it after the reply is sent: a NOTIFY holds a database-wide lock
 * through its commit, so it is kept off the reservation's transaction. A
 * skipped wake-up is covered by the reconciler's poll ([reconciler]
 * poll_ms). Failures are ignored (the poll covers them too). */
#define API_RESERVE_NOTIFY_MS 50
void api_reserve_notify(api_reserve *r, int64_t mono_ms);

#endif
