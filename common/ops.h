/*
 * ops: the ops dashboard feed, publisher side (DESIGN.md "Ops dashboard
 * feed"). A service connects a ZeroMQ PUB socket to [ops] endpoint (the
 * XSUB side of the proxy in inv-api) and sends two-frame messages:
 * [topic][one JSON object]. Topics: metrics.<service>, stock.<sku>,
 * channel.<channel>, alert.<kind> (negative_stock, drift, sidelined,
 * circuit_open, reservation_expired).
 *
 * The one idea: the feed is for eyes, not for books. A publish never
 * blocks and never fails the caller: when nobody listens or the queue is
 * full, ZeroMQ drops the message, and the drop is counted (and reported in
 * the next metrics message) rather than hidden. Nothing that must not be
 * lost travels here.
 *
 * Not thread-safe: one sf_ops per thread (ZeroMQ sockets are not).
 */
#ifndef SF_OPS_H
#define SF_OPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "sf_error.h"

typedef struct sf_ops sf_ops;

/* Connect to endpoint ("" or NULL: a disabled feed, every call a no-op).
 * service names the sender in every message ("service" field). */
sf_status sf_ops_open(const char *endpoint, const char *service, sf_ops **out,
                      sf_error *err) SF_MUSTCHECK;
void sf_ops_close(sf_ops *o);

/* Send [topic][obj as compact JSON]; takes ownership of obj (decref'd).
 * Adds "service" and "ts" (epoch ms) to obj. Never blocks. */
void sf_ops_send(sf_ops *o, const char *topic, json_t *obj);

/* alert.<kind> with a human message and optional details (stolen). */
void sf_ops_alert(sf_ops *o, const char *kind, const char *message, json_t *details);

/* Wait up to ms until a reader's subscription to messages starting with
 * topic has reached this publisher (the proxy forwards them): a
 * short-lived process (a batch job) would otherwise send into the void,
 * since a PUB drops what no one subscribed to yet. true when one has;
 * false at the timeout or on a disabled feed. */
bool sf_ops_wait_reader(sf_ops *o, const char *topic, int ms);

/* Whether some reader subscribes now (through the proxy) to messages
 * starting with topic ("stock."): lets a sender skip work whose only use
 * is the feed. inv-api's page bridge takes stock. and channel. only
 * while a browser streams (api/sse.h). */
bool sf_ops_has_reader(sf_ops *o, const char *topic);

/* Messages dropped so far (queue full or not connected yet). */
uint64_t sf_ops_dropped(const sf_ops *o);

/* The XSUB/XPUB proxy that joins publishers and readers (run by inv-api;
 * tests run their own). frontend: where services connect their PUB
 * ([ops] endpoint, XSUB, bound); backend: where readers connect their SUB
 * ([ops] sub_endpoint, XPUB, bound). Runs in its own thread. */
typedef struct sf_ops_proxy sf_ops_proxy;
sf_status sf_ops_proxy_start(const char *frontend, const char *backend, sf_ops_proxy **out,
                             sf_error *err) SF_MUSTCHECK;
void sf_ops_proxy_stop(sf_ops_proxy *p);
#endif
