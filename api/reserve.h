/*
 * reserve: check-and-reserve, POST /v1/reservations (DESIGN.md
 * "Check-and-reserve"). Parses and checks a request, then hands it to the
 * reserver: one thread of inv-api with its own PostgreSQL session that
 * runs the requests in batches through sf_reserve_batch()
 * (schemas/sql/009_reserve_batch.sql). A batch is one statement and one
 * transaction: the locks, the checks, the RESERVEs applied as a consumer
 * applies them, the outbox rows and the idempotency rows of every request
 * in it commit together or not at all.
 *
 * The one idea: group commit. Whatever arrived while a batch was running
 * is the next batch, so under load the cost of a statement and a commit is
 * shared by every request waiting, and with one request in flight a batch
 * is that one request (no timer, no added wait). Each Idempotency-Key goes
 * into a batch at most once (a repeat waits for the next one), and the key
 * makes a whole batch safe to run again on a fresh connection: a request
 * that committed returns its answer. A data error from PostgreSQL
 * (SQLSTATE class 22 or 23) rolls a whole batch back although it belongs
 * to one request: the batch's requests then run one by one, so only that
 * one is refused (400).
 * event_id = "rsv-" + 40 hex of SHA-256 over key, ref and sku joined by
 * 0x1F; expires_at = now + ttl_s.
 *
 * Threads: api_reserver_submit may be called from any thread. The
 * reserver runs `threads` batches at once (default 2, each on its own
 * session: one executes while the other commits); each job's done
 * callback runs on the thread that ran it, once. Two batches in flight
 * never deadlock: both take their locks in the same key order.
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

/* The RESERVE of a request made at now_ms (epoch ms) into ev, put through
 * the gate every producer's events pass (sf_event_validate). The channel
 * form's location is picked later by sf_reserve_batch; "X" stands in. A
 * request api_reserve_parse accepted always passes (fuzz_reserve_body
 * checks it); SF_EINVAL otherwise, err says why. */
sf_status api_reserve_event(const api_reserve_req *rq, int64_t now_ms, sf_event *ev,
                            sf_error *err) SF_MUSTCHECK;

typedef struct api_reserve_result {
    int status;                    /* 201, 409, 404 (no such channel), 422 (key reused) */
    char event_id[SF_STR_MAX + 1]; /* 201 */
    char location[SF_STR_MAX + 1]; /* 201 */
    int64_t expires_at;            /* 201, epoch ms */
    int64_t available;             /* 409: the most one request could reserve now */
    bool replay;                   /* the stored answer of an earlier request */
} api_reserve_result;

/* One request in the reserver's hands. The caller fills rq and now_ms,
 * keeps the job alive until done is called, and owns it again after. */
typedef struct api_reserve_job api_reserve_job;
typedef void (*api_reserve_done_fn)(api_reserve_job *job);
struct api_reserve_job {
    api_reserve_req rq;
    int64_t now_ms;                /* the clock of the request (expires_at = now_ms + ttl_s) */
    char event_id[SF_STR_MAX + 1]; /* set by api_reserver_submit */
    int64_t expires_at;            /* set by api_reserver_submit */
    api_reserve_done_fn done;      /* called on the reserver's thread with st/err/res set */
    sf_status st;                  /* SF_OK: res holds the answer; SF_EINVAL: err says why;
                                      SF_EUNAVAIL: PostgreSQL is away (the client may repeat
                                      the request with the same key) */
    sf_error err;
    api_reserve_result res;
    api_reserve_job *next; /* the reserver's queue */
};

typedef struct api_reserver api_reserver;

typedef struct api_reserver_opts {
    const char *dsn;
    int max_batch; /* requests in one statement (API_RESERVE_BATCH) */
    int max_queue; /* jobs waiting; one more is refused (API_RESERVE_QUEUE) */
    int threads;   /* batches in flight, each on its own session (API_RESERVE_THREADS) */
} api_reserver_opts;

#define API_RESERVE_BATCH 64      /* default max_batch */
#define API_RESERVE_BATCH_MAX 256 /* the largest max_batch */
#define API_RESERVE_QUEUE 4096    /* default max_queue */
#define API_RESERVE_THREADS 2     /* default threads */
#define API_RESERVE_THREADS_MAX 16
void api_reserver_opts_init(api_reserver_opts *o);

/* Start the reserver's thread; it connects on first use. */
sf_status api_reserver_start(const api_reserver_opts *o, api_reserver **out,
                             sf_error *err) SF_MUSTCHECK;

/* Build the job's RESERVE and put it through the gate every producer's
 * events pass (sf_event_validate), on the caller's thread; then queue job.
 * On failure done is never called and the job stays the caller's:
 * SF_EINVAL, the event was refused (err says why: a 400); SF_EUNAVAIL, the
 * queue is full (max_queue) or the reserver is stopping. */
sf_status api_reserver_submit(api_reserver *r, api_reserve_job *job, sf_error *err) SF_MUSTCHECK;

/* What the reserver has done, for /metrics. */
typedef struct api_reserver_stats {
    int64_t batches;  /* statements run */
    int64_t requests; /* requests in them */
    int64_t largest;  /* the largest batch */
    int64_t refused;  /* submits refused because the queue was full */
    int queued;       /* waiting now */
} api_reserver_stats;
void api_reserver_stats_get(api_reserver *r, api_reserver_stats *out);

/* Stop accepting jobs, answer every queued one (run, or SF_EUNAVAIL if
 * PostgreSQL is away), and join the thread. NULL is a no-op. */
void api_reserver_stop(api_reserver *r);

#endif
