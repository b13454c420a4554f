/*
 * apikey: API keys (DESIGN.md "Stock query API"): the key format, its salted
 * hash, constant-time verification, and the key ring a server checks an
 * `Authorization: Bearer` header against. inv-api uses it; inv-ingest --http
 * is meant to reuse it unchanged.
 *
 * A key is `sf_<id>_<secret>`:
 * - id: 1..SF_APIKEY_ID_MAX of A-Z a-z 0-9 _ - (invctl makes 16 hex digits;
 *   a key of the config file uses its section name, [apikey.<name>]);
 * - secret: SF_APIKEY_SECRET_LEN (43) base64url characters, 256 random bits
 *   without padding. The secret is always the last 43 characters, so an id
 *   may itself contain '_'.
 * Only salt and hash = SHA-256(salt ‖ secret) are ever stored, where salt is
 * 16 random bytes and the secret is hashed as its 43 ASCII characters. A
 * fast hash is right here: the secret has 256 bits of entropy, so nothing is
 * gained from a password KDF, which would cost every request milliseconds.
 * Hashes are compared with CRYPTO_memcmp (constant time).
 *
 * Config file form (values are lower-case hex):
 *     [apikey.dashboard]
 *     scope = read            ; read | ingest | admin
 *     salt = <32 hex digits>  ; 16..64 bytes
 *     hash = <64 hex digits>  ; SHA-256(salt bytes ‖ secret ASCII)
 * `invctl apikey add NAME --scope S --ini` prints such a section with its key.
 *
 * The ring holds the config keys (loaded once) and the table api_keys
 * (replaced wholesale by each sf_apikey_ring_load_db, e.g. every 5 s). It
 * is safe to check keys from many threads while another thread reloads:
 * a read-write lock guards the table part.
 */
#ifndef SF_APIKEY_H
#define SF_APIKEY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "sf_error.h"

#define SF_APIKEY_ID_MAX 64
#define SF_APIKEY_SECRET_LEN 43 /* base64url of 32 random bytes, no padding */
#define SF_APIKEY_SALT_LEN 16   /* bytes invctl makes */
#define SF_APIKEY_SALT_MAX 64   /* bytes a config salt may have */
#define SF_APIKEY_HASH_LEN 32
#define SF_APIKEY_GEN_ID_LEN 16 /* hex digits of an id invctl makes */
/* "sf_" + id + "_" + secret, NUL excluded */
#define SF_APIKEY_KEY_MAX (3 + SF_APIKEY_ID_MAX + 1 + SF_APIKEY_SECRET_LEN)

/* Scopes are bits so a route can accept several. */
typedef enum sf_apikey_scope {
    SF_APIKEY_READ = 1,
    SF_APIKEY_INGEST = 2,
    SF_APIKEY_ADMIN = 4
} sf_apikey_scope;

/* "read", "ingest", "admin" ("?" for anything else). */
const char *sf_apikey_scope_name(sf_apikey_scope scope);
/* Exact, lower-case names; SF_EINVAL naming the value otherwise. */
sf_status sf_apikey_scope_parse(const char *name, sf_apikey_scope *out, sf_error *err) SF_MUSTCHECK;

/* A freshly made key: show `key` once, store the rest. */
typedef struct sf_apikey_new {
    char id[SF_APIKEY_ID_MAX + 1];
    char key[SF_APIKEY_KEY_MAX + 1]; /* sf_<id>_<secret> */
    unsigned char salt[SF_APIKEY_SALT_LEN];
    unsigned char hash[SF_APIKEY_HASH_LEN];
} sf_apikey_new;

/* Make a key from the system's CSPRNG (OpenSSL RAND_bytes): id as given
 * (NULL: 16 random hex digits; otherwise it must be a valid id), a random
 * secret and salt, and the hash. SF_EINVAL for a bad id, SF_EINTERNAL if
 * the CSPRNG fails. */
sf_status sf_apikey_generate(const char *id, sf_apikey_new *out, sf_error *err) SF_MUSTCHECK;

/* Split a presented key (len bytes, not necessarily NUL-terminated) into
 * its id and secret. SF_EINVAL, with a reason that never echoes the
 * secret, when it is not sf_<id>_<43 base64url characters>. */
sf_status sf_apikey_parse(const char *key, size_t len, char id[SF_APIKEY_ID_MAX + 1],
                          char secret[SF_APIKEY_SECRET_LEN + 1], sf_error *err) SF_MUSTCHECK;

/* out = SHA-256(salt[0..salt_len) ‖ secret), salt_len <= SF_APIKEY_SALT_MAX. */
void sf_apikey_hash(const unsigned char *salt, size_t salt_len, const char *secret,
                    unsigned char out[SF_APIKEY_HASH_LEN]);

/* Does secret hash to `hash` under salt? Constant time in the hash bytes. */
bool sf_apikey_verify(const unsigned char *salt, size_t salt_len,
                      const unsigned char hash[SF_APIKEY_HASH_LEN], const char *secret);

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void sf_apikey_hex(const unsigned char *bytes, size_t n, char *out);
/* Decode a whole hex string (either case) into out[cap]; *n gets the byte
 * count. false on an odd length, a non-hex digit, or more than cap bytes. */
bool sf_apikey_unhex(const char *hex, unsigned char *out, size_t cap, size_t *n);

/* ---- the key ring ---------------------------------------------------------- */

typedef struct sf_apikey_ring sf_apikey_ring;

typedef enum sf_apikey_verdict {
    SF_APIKEY_OK = 0,
    SF_APIKEY_MISSING,    /* no Authorization header (401) */
    SF_APIKEY_MALFORMED,  /* not "Bearer sf_<id>_<secret>" (401) */
    SF_APIKEY_UNKNOWN,    /* no such id, or the secret does not match (401) */
    SF_APIKEY_REVOKED,    /* the key matched but was revoked (401) */
    SF_APIKEY_FORBIDDEN,  /* valid key, scope not accepted here (403) */
    SF_APIKEY_UNAVAILABLE /* unknown to the config and the table was never
                             loaded (PostgreSQL down since start): 503 */
} sf_apikey_verdict;

/* A short reason for a verdict, fit for an error body. */
const char *sf_apikey_verdict_str(sf_apikey_verdict v);

sf_status sf_apikey_ring_new(sf_apikey_ring **out, sf_error *err) SF_MUSTCHECK;
void sf_apikey_ring_free(sf_apikey_ring *ring); /* NULL is a no-op */

/* Take every [apikey.<name>] section of cfg (id = name). Keys scope, salt
 * and hash are required and checked; anything else is SF_EINVAL citing
 * "path:line: [apikey.<name>] key: reason". Replaces earlier config keys;
 * call before the ring is shared. */
sf_status sf_apikey_ring_load_config(sf_apikey_ring *ring, const sf_config *cfg,
                                     sf_error *err) SF_MUSTCHECK;

/* Replace the table keys with the rows of api_keys (revoked ones kept, so
 * their use is reported as revoked). On failure the previous table keys
 * stay in force. *n (may be NULL) gets the number of rows read. A row that
 * cannot be a key (bad hex) is skipped, counted in *skipped (may be NULL). */
sf_status sf_apikey_ring_load_db(sf_apikey_ring *ring, PGconn *pg, size_t *n, size_t *skipped,
                                 sf_error *err) SF_MUSTCHECK;

/* The key a check matched. Its identity is (from_config, id): ids are
 * unique within the config and within api_keys, and only a config name
 * could repeat a table id. The name is for people: a table key can be
 * renamed, and a revoked key's name issued again. */
typedef struct sf_apikey_who {
    sf_apikey_scope scope;
    bool from_config;                /* [apikey.<name>] (id = name), not a row of api_keys */
    char id[SF_APIKEY_ID_MAX + 1];   /* the <id> of sf_<id>_<secret> */
    char name[SF_APIKEY_ID_MAX + 1]; /* api_keys.name, or the config name */
} sf_apikey_who;

/* Check an Authorization header value (NULL: absent) for a route that
 * accepts the scopes in `allowed` (a mask of sf_apikey_scope). On
 * SF_APIKEY_OK, FORBIDDEN and REVOKED, *who (may be NULL) describes the
 * key. The scheme "Bearer" is matched ignoring case. */
sf_apikey_verdict sf_apikey_ring_check(sf_apikey_ring *ring, const char *authorization,
                                       unsigned allowed, sf_apikey_who *who);

/* Number of keys from the config and from the table (revoked included). */
void sf_apikey_ring_counts(sf_apikey_ring *ring, size_t *config, size_t *db, bool *db_loaded);

#endif
