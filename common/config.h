/*
 * config: the one configuration struct every service parses once at start-up
 * (STYLE rule 4) and passes down. Sources, later ones winning:
 * sf_config_init() defaults -> sf_config_load() of the --config INI file ->
 * sf_config_apply_env() (only main calls it; nothing below main reads the
 * environment).
 *
 * The INI file is parsed with inih. Known sections ([nats], [pg], [consumer],
 * [ingest], [reconciler], [api], [ops]) are checked strictly: an unknown key,
 * a key set twice, a bad number or a value out of range fails the load with
 * "path:line: [section] key: reason". Sections [supplier.<id>] and
 * [apikey.<name>] are kept as generic (section, key, value, line) entries for
 * the modules that own them, which validate them and cite the same
 * "path:line" from the entry. Lines are at most SF_CONFIG_LINE_MAX bytes (an
 * inih build limit); a long generic value continues on indented lines and is
 * joined with single spaces.
 *
 * Ownership: the struct owns everything it points to. Strings of known keys
 * are fixed buffers; generic entries live in one heap array released by
 * sf_config_free(). Copying an sf_config with `=` shares that array: don't.
 */
#ifndef SF_CONFIG_H
#define SF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sf_error.h"

#define SF_CONFIG_URL_MAX 1024     /* nats url list, pg dsn, endpoints */
#define SF_CONFIG_LINE_MAX 199     /* bytes per INI line, newline excluded */
#define SF_CONFIG_PATH_MAX 1024    /* the loaded file's path, for messages */
#define SF_CONFIG_SECTION_MAX 80   /* "supplier.<id>": prefix + 64-byte id */
#define SF_CONFIG_KEY_MAX 64       /* key length, NUL excluded */
#define SF_CONFIG_VALUE_MAX 4096   /* a generic value, continuations joined */
#define SF_CONFIG_ENTRIES_MAX 4096 /* generic entries in one file */
#define SF_CONFIG_ID_MAX 64        /* <id> / <name> of a generic section */

/* One key of a [supplier.<id>] or [apikey.<name>] section, as written. */
typedef struct sf_config_entry {
    char section[SF_CONFIG_SECTION_MAX + 1]; /* "supplier.acme" */
    char key[SF_CONFIG_KEY_MAX + 1];
    char value[SF_CONFIG_VALUE_MAX + 1];
    int line; /* where the key is set, for "path:line" messages */
} sf_config_entry;

typedef struct sf_config {
    struct {
        char url[SF_CONFIG_URL_MAX + 1]; /* one URL or a comma-separated list */
        int replicas;                    /* 1, 3 or 5 */
        int64_t ack_wait_ms;
        /* TLS to NATS (docs/security.md "TLS"): PEM paths, "" = unset. Any
         * set, or tls_required, turns TLS on; cert and key go together. */
        char tls_ca[SF_CONFIG_URL_MAX + 1];
        char tls_cert[SF_CONFIG_URL_MAX + 1];
        char tls_key[SF_CONFIG_URL_MAX + 1];
        bool tls_required;
    } nats;
    struct {
        char dsn[SF_CONFIG_URL_MAX + 1];
        int pool;
    } pg;
    struct {
        int batch;
        int max_deliver;
        int max_msg_bytes; /* a larger message is sidelined (decode), never decoded */
    } consumer;
    struct {
        int max_inflight;
        int max_line; /* bytes */
        int64_t max_future_ms;
        int max_body; /* bytes of one --http request body */
    } ingest;
    struct {
        int poll_ms;
    } reconciler;
    struct {
        char listen[SF_CONFIG_URL_MAX + 1]; /* host:port */
        int max_batch;
        /* HTTPS: both set = serve TLS only on listen ("" = plain HTTP) */
        char tls_cert[SF_CONFIG_URL_MAX + 1];
        char tls_key[SF_CONFIG_URL_MAX + 1];
        int rate_per_key;     /* requests per second per API key (token bucket) */
        int burst;            /* the bucket's size: requests a key may send at once */
        int max_header_bytes; /* request line + headers (plus max_batch * 200 of room) */
        int max_body_bytes;   /* request body */
        int max_query_bytes;  /* query string, except the channel batch route's */
        int max_ledger_page;  /* largest `limit` of GET /v1/ledger/{sku} */
        /* POST /v1/reservations, run in batches (api/reserve.h): */
        int reserve_threads; /* batches in flight, a PostgreSQL session each */
        int reserve_batch;   /* requests in one batch (one statement, one commit) */
        int reserve_queue;   /* requests waiting; one more gets 503 + Retry-After */
    } api;
    struct {
        char endpoint[SF_CONFIG_URL_MAX + 1];     /* services PUB here (XSUB side) */
        char sub_endpoint[SF_CONFIG_URL_MAX + 1]; /* readers SUB here (XPUB side) */
    } ops;
    int64_t now_ms_override; /* INV_NOW_MS; 0 = the real clock */

    char path[SF_CONFIG_PATH_MAX + 1]; /* last file loaded, "" if none */
    sf_config_entry *entries;          /* generic sections, file order */
    size_t n_entries;
    size_t cap_entries;
} sf_config;

/* Every field to its default (DESIGN.md: every limit has a safe default);
 * no allocation. Call before anything else, and pair with sf_config_free. */
void sf_config_init(sf_config *cfg);

/* Read the INI file at path over the current values. On failure cfg may hold
 * part of the file (free it, don't use it) and err says "path:line: [section]
 * key: reason"; SF_EIO when the file cannot be read, SF_EINVAL for content,
 * SF_ENOMEM. */
sf_status sf_config_load(sf_config *cfg, const char *path, sf_error *err) SF_MUSTCHECK;

/* Apply INV_NATS_URL, INV_PG_DSN, INV_OPS_ENDPOINT and INV_NOW_MS, read
 * through getenv_fn (unset or empty = keep the current value). Only main
 * calls this, passing sf_config_getenv. SF_EINVAL names the variable. */
sf_status sf_config_apply_env(sf_config *cfg, const char *(*getenv_fn)(const char *),
                              sf_error *err) SF_MUSTCHECK;

/* getenv with the const-returning type sf_config_apply_env takes (a plain
 * `getenv` does not convert: its result is `char *`). */
const char *sf_config_getenv(const char *name);

/* The value of key in a generic section ("supplier.acme"), or NULL. */
const char *sf_config_get(const sf_config *cfg, const char *section, const char *key);

/* The entry of key in section, or NULL: gives the line for messages. */
const sf_config_entry *sf_config_find(const sf_config *cfg, const char *section, const char *key);

/* Release the generic entries (n_entries becomes 0; the other fields keep
 * their values). Safe to call twice. */
void sf_config_free(sf_config *cfg);

#endif
