/*
 * broker: the connection to NATS JetStream (nats.c). It owns the
 * connection, the stream and consumer definitions (`invctl setup`),
 * synchronous publishing with headers (DLQ, replay) and the read-only views
 * used by `invctl status` and `dlq list/replay`. On a connection,
 * broker_pub.h publishes asynchronously and broker_pull.h consumes batches.
 * Only these three modules include <nats/nats.h>.
 *
 * The one idea needed to change it safely: nothing here may block or buffer
 * without a bound while the server is away. Every call checks the connection
 * first and fails fast with SF_EUNAVAIL, every wait has a timeout (JetStream
 * API wait, publish ack timeout, window stall, fetch timeout), and every
 * accepted asynchronous publish gets exactly one completion callback, even if
 * the ack never comes. Retrying is the caller's job and is safe because
 * publishes carry a Nats-Msg-Id inside a 1 h duplicate window.
 *
 * Ownership and threads:
 * - sf_broker owns the connection. Publishers and subscriptions are created
 *   on a broker and must be freed before sf_broker_close().
 * - A broker may be shared by threads for publish_sync, info calls and
 *   creating publishers and subscriptions.
 * - Callbacks (sf_broker_state_cb) run on nats.c library threads, never on
 *   the caller's thread: keep them short, and never close the broker from
 *   inside one.
 * - Pointers returned by accessors of a stored message (subject, header
 *   values) belong to it and stay valid until sf_stored_msg_free.
 *
 * Units: every duration in this API is in milliseconds; the conversion to
 * nanoseconds for stream/consumer configs happens inside.
 */
#ifndef SF_BROKER_H
#define SF_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sf_error.h"

/* ---- the contract: streams, subjects, consumer, headers (DESIGN.md) ---- */
#define SF_STREAM_EVENTS "INV_EVENTS"
#define SF_STREAM_DLQ "INV_DLQ"
#define SF_STREAM_CHANNEL "INV_CHANNEL"
#define SF_SUBJECTS_EVENTS "inv.evt.>"
#define SF_SUBJECTS_DLQ "inv.dlq.>"
#define SF_SUBJECTS_CHANNEL "inv.chan.>"
#define SF_CONSUMER_APPLIER "stock-applier"

#define SF_HDR_MSG_ID "Nats-Msg-Id"
#define SF_HDR_REASON "Inv-Reason"
#define SF_HDR_SOURCE_SUBJECT "Inv-Source-Subject"
#define SF_HDR_SOURCE_SEQ "Inv-Source-Seq"
#define SF_HDR_DELIVERIES "Inv-Deliveries"

/* Limits on header text (longer, or with control characters: SF_EINVAL). */
#define SF_MSG_ID_MAX 255
#define SF_HEADER_NAME_MAX 128
#define SF_HEADER_VALUE_MAX 4096

/* Longest subject the helpers below build (a 64-byte token plus prefix). */
#define SF_SUBJECT_MAX 128

/* Build `inv.evt.<kind lower-cased>.<location>`, `inv.dlq.<reason>`,
 * `inv.chan.<channel>` into buf (cap bytes). Tokens must be non-empty and
 * use only A-Z a-z 0-9 _ - (kind: letters and _), at most 64 bytes:
 * SF_EINVAL naming the token otherwise. */
SF_MUSTCHECK sf_status sf_subject_event(char *buf, size_t cap, const char *kind,
                                        const char *location, sf_error *err);
SF_MUSTCHECK sf_status sf_subject_dlq(char *buf, size_t cap, const char *reason, sf_error *err);
SF_MUSTCHECK sf_status sf_subject_channel(char *buf, size_t cap, const char *channel,
                                          sf_error *err);

/* ---- connection ---------------------------------------------------------- */
typedef struct sf_broker sf_broker;

typedef enum sf_broker_state {
    SF_BROKER_DISCONNECTED, /* lost the server; reconnecting in the background */
    SF_BROKER_RECONNECTED,  /* connected again (possibly to another node) */
    SF_BROKER_CLOSED        /* closed by sf_broker_close */
} sf_broker_state;

/* Runs on a nats.c thread. url is the server concerned, or "" if unknown. */
typedef void (*sf_broker_state_cb)(void *closure, sf_broker_state state, const char *url);

/* TLS to the server (all optional). ca: PEM file of the CA that signed the
 * server's certificate (else the system's); cert + key: this client's
 * certificate chain and key, for a server that verifies clients (both or
 * neither); required: refuse a server that does not offer TLS. Any of them
 * set turns TLS on; a tls:// URL does too. */
typedef struct sf_broker_tls {
    const char *ca;
    const char *cert;
    const char *key;
    bool required;
} sf_broker_tls;

typedef struct sf_broker_opts {
    const char *urls;            /* one URL or a comma-separated cluster list; required;
                                    nats://user:password@host:port carries credentials */
    const char *name;            /* connection name shown by the server; NULL: none */
    int connect_timeout_ms;      /* per server, TCP + handshake (2000) */
    int reconnect_wait_ms;       /* first reconnect delay after a full pass (250) */
    int reconnect_max_ms;        /* cap of the doubling, jittered backoff (4000) */
    int ping_interval_ms;        /* detects a silent server (10000) */
    int js_wait_ms;              /* JetStream API and sync publish wait (5000) */
    sf_broker_tls tls;           /* all empty: plain TCP */
    sf_broker_state_cb on_state; /* optional */
    void *state_closure;
} sf_broker_opts;

void sf_broker_opts_init(sf_broker_opts *opts);

/* Connect to the first reachable server of opts->urls. The initial connect is
 * not retried (so a dead address fails within about connect_timeout_ms per
 * URL with SF_EUNAVAIL naming the URLs); once connected, the connection
 * reconnects forever in the background. */
SF_MUSTCHECK sf_status sf_broker_connect(const sf_broker_opts *opts, sf_broker **out,
                                         sf_error *err);
/* Permission violations: the server answers a publish or subscription it
 * refuses with an asynchronous error, never with a reply. Every one is
 * logged (error level, "NATS <urls>: Permissions Violation for Publish to
 * ..."), and a publish to a subject refused on this connection fails with
 * SF_EDENIED whose message says so, instead of a bare timeout: the first one
 * after the ack wait (the server sends no negative ack), later ones to that
 * subject at once for 30 s. This counts the violations seen. */
uint64_t sf_broker_permission_errors(const sf_broker *b);

/* Close and free; NULL is a no-op. Free publishers and subscriptions first. */
void sf_broker_close(sf_broker *b);
/* True while the connection status is CONNECTED. */
bool sf_broker_connected(const sf_broker *b);
/* The URL list as given (for messages). */
const char *sf_broker_urls(const sf_broker *b);
/* Release nats.c's global threads and memory; call once at process exit after
 * every broker is closed (keeps valgrind quiet). */
void sf_broker_library_cleanup(void);

/* ---- setup (invctl setup): idempotent ----------------------------------- */
typedef struct sf_setup_opts {
    int replicas;            /* 1 (local), 3 (cluster) */
    int64_t ack_wait_ms;     /* stock-applier AckWait (10000) */
    int64_t max_ack_pending; /* >= batch x consumers (65536) */
} sf_setup_opts;

void sf_setup_opts_init(sf_setup_opts *opts);

typedef enum sf_setup_action {
    SF_SETUP_CREATED,  /* did not exist */
    SF_SETUP_UPDATED,  /* existed with a different config; updated */
    SF_SETUP_UNCHANGED /* existed with the wanted config */
} sf_setup_action;

#define SF_SETUP_MAX_ITEMS 8
typedef struct sf_setup_item {
    const char *kind; /* "stream" or "consumer" (static string) */
    char name[64];    /* "INV_EVENTS", "INV_EVENTS/stock-applier" */
    sf_setup_action action;
} sf_setup_item;

typedef struct sf_setup_result {
    sf_setup_item items[SF_SETUP_MAX_ITEMS];
    size_t count;
} sf_setup_result;

const char *sf_setup_action_str(sf_setup_action action); /* "created", ... */

/* Create or update INV_EVENTS, INV_DLQ, INV_CHANNEL (file storage, 1 h
 * duplicate window) and the durable pull consumer stock-applier on INV_EVENTS
 * (explicit ack, AckWait, MaxDeliver unlimited, MaxAckPending, deliver all).
 * res (may be NULL) says what was created, updated or already there. A
 * change the server refuses (storage type, ack policy) is SF_EINVAL naming
 * the stream or consumer. */
SF_MUSTCHECK sf_status sf_broker_setup(sf_broker *b, const sf_setup_opts *opts,
                                       sf_setup_result *res, sf_error *err);

/* Delete a stream and its consumers (tests, teardown). SF_ENOTFOUND if absent. */
SF_MUSTCHECK sf_status sf_broker_delete_stream(sf_broker *b, const char *stream, sf_error *err);

/* ---- synchronous publish with headers (DLQ, replay) ----------------------- */
typedef struct sf_header {
    const char *name;
    const char *value;
} sf_header;

/* Publish and wait for the ack (js_wait_ms). msg_id may be NULL; hdrs may be
 * NULL when nhdrs is 0 (names: printable, no ':' or space; values: no control
 * characters; see the limits above). *seq (may be NULL) gets the sequence.
 * SF_EDUP (with *seq = the original's sequence) if the id was already stored;
 * SF_ETIMEOUT if no ack came (it may be stored: retry with the same id). */
SF_MUSTCHECK sf_status sf_broker_publish_sync(sf_broker *b, const char *subject, const char *msg_id,
                                              const sf_header *hdrs, size_t nhdrs, const void *data,
                                              size_t len, uint64_t *seq, sf_error *err);

/* ---- information (invctl status, dlq list / replay) ----------------------- */
/* Any out-pointer may be NULL. SF_ENOTFOUND for a missing stream/consumer. */
SF_MUSTCHECK sf_status sf_broker_stream_info(sf_broker *b, const char *stream, uint64_t *msgs,
                                             uint64_t *bytes, uint64_t *first_seq,
                                             uint64_t *last_seq, sf_error *err);
/* The stream's replica group: leader (the server name, "" when the stream
 * is not clustered or has no leader right now; cap bytes with the NUL),
 * replicas (configured) and current (followers caught up, online, lag 0).
 * Any out-pointer may be NULL. */
SF_MUSTCHECK sf_status sf_broker_stream_cluster(sf_broker *b, const char *stream, char *leader,
                                                size_t cap, int *replicas, int *current,
                                                sf_error *err);
/* num_pending: lag (stored, not yet delivered); num_ack_pending: delivered,
 * not yet acknowledged; ack_floor: the stream sequence up to which every
 * message is acknowledged. */
SF_MUSTCHECK sf_status sf_broker_consumer_info(sf_broker *b, const char *stream,
                                               const char *durable, uint64_t *num_pending,
                                               uint64_t *num_ack_pending, uint64_t *num_redelivered,
                                               uint64_t *ack_floor, sf_error *err);

/* A copy of one stored message (js_GetMsg). */
typedef struct sf_stored_msg sf_stored_msg;

/* SF_ENOTFOUND if stream has no message at seq (deleted or never written). */
SF_MUSTCHECK sf_status sf_broker_get_msg(sf_broker *b, const char *stream, uint64_t seq,
                                         sf_stored_msg **out, sf_error *err);
const char *sf_stored_msg_subject(const sf_stored_msg *m);
const void *sf_stored_msg_data(const sf_stored_msg *m, size_t *len);
uint64_t sf_stored_msg_seq(const sf_stored_msg *m);
int64_t sf_stored_msg_time_ms(const sf_stored_msg *m);                /* when stored, Unix ms */
const char *sf_stored_msg_header(sf_stored_msg *m, const char *name); /* first value */
/* Every header (name, value) pair, in no particular order, into out[cap];
 * *n gets the total number of pairs, which may exceed cap (then out holds
 * the first cap). */
SF_MUSTCHECK sf_status sf_stored_msg_headers(sf_stored_msg *m, sf_header *out, size_t cap,
                                             size_t *n, sf_error *err);
void sf_stored_msg_free(sf_stored_msg *m);

#endif
