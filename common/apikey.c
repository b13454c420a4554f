/*
 * apikey: key making, parsing, hashing and the key ring (see apikey.h).
 *
 * The one idea to keep when changing it: nothing derived from a secret may
 * leave this file except the verdict. Parse errors never quote the key,
 * lookups go by id (which is not secret), and the only comparison that
 * involves the secret is CRYPTO_memcmp over two hashes.
 */
#include "apikey.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db.h"

/* ------------------------------------------------------------ key format --- */

const char *sf_apikey_scope_name(sf_apikey_scope scope)
{
    switch (scope) {
    case SF_APIKEY_READ: return "read";
    case SF_APIKEY_INGEST: return "ingest";
    case SF_APIKEY_ADMIN: return "admin";
    }
    return "?";
}

sf_status sf_apikey_scope_parse(const char *name, sf_apikey_scope *out, sf_error *err)
{
    static const sf_apikey_scope all[] = {SF_APIKEY_READ, SF_APIKEY_INGEST, SF_APIKEY_ADMIN};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (name && strcmp(name, sf_apikey_scope_name(all[i])) == 0) {
            *out = all[i];
            return SF_OK;
        }
    }
    return SF_ERR(err, SF_EINVAL, "scope '%.40s' is not one of read, ingest, admin",
                  name ? name : "");
}

static bool key__id_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool key__valid_id(const char *id, size_t n)
{
    if (n == 0 || n > SF_APIKEY_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!key__id_char((unsigned char)id[i]))
            return false;
    }
    return true;
}

static const char key__b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding of 32 bytes: exactly 43 characters. */
static void key__b64url_32(const unsigned char in[32], char out[SF_APIKEY_SECRET_LEN + 1])
{
    size_t o = 0;
    for (size_t i = 0; i < 32; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        size_t left = 32 - i;
        if (left > 1)
            v |= (unsigned)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[o++] = key__b64url[(v >> 18) & 63];
        out[o++] = key__b64url[(v >> 12) & 63];
        if (left > 1)
            out[o++] = key__b64url[(v >> 6) & 63];
        if (left > 2)
            out[o++] = key__b64url[v & 63];
    }
    out[o] = '\0';
}

void sf_apikey_hex(const unsigned char *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

static int key__nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool sf_apikey_unhex(const char *hex, unsigned char *out, size_t cap, size_t *n)
{
    size_t len = strlen(hex);
    if (len % 2 != 0 || len / 2 > cap)
        return false;
    for (size_t i = 0; i < len; i += 2) {
        int hi = key__nibble(hex[i]), lo = key__nibble(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    *n = len / 2;
    return true;
}

sf_status sf_apikey_generate(const char *id, sf_apikey_new *out, sf_error *err)
{
    memset(out, 0, sizeof *out);
    unsigned char secret_bytes[32];
    char secret[SF_APIKEY_SECRET_LEN + 1];
    if (id) {
        if (!key__valid_id(id, strlen(id)))
            return SF_ERR(err, SF_EINVAL, "key id '%.64s' must be 1..%d of A-Z a-z 0-9 _ -", id,
                          SF_APIKEY_ID_MAX);
        snprintf(out->id, sizeof out->id, "%s", id);
    } else {
        unsigned char idb[SF_APIKEY_GEN_ID_LEN / 2];
        if (RAND_bytes(idb, sizeof idb) != 1)
            return SF_ERR(err, SF_EINTERNAL, "RAND_bytes failed: no key made");
        sf_apikey_hex(idb, sizeof idb, out->id);
    }
    if (RAND_bytes(secret_bytes, sizeof secret_bytes) != 1 ||
        RAND_bytes(out->salt, sizeof out->salt) != 1)
        return SF_ERR(err, SF_EINTERNAL, "RAND_bytes failed: no key made");
    key__b64url_32(secret_bytes, secret);
    OPENSSL_cleanse(secret_bytes, sizeof secret_bytes);
    sf_apikey_hash(out->salt, sizeof out->salt, secret, out->hash);
    snprintf(out->key, sizeof out->key, "sf_%s_%s", out->id, secret);
    OPENSSL_cleanse(secret, sizeof secret);
    return SF_OK;
}

sf_status sf_apikey_parse(const char *key, size_t len, char id[SF_APIKEY_ID_MAX + 1],
                          char secret[SF_APIKEY_SECRET_LEN + 1], sf_error *err)
{
    id[0] = secret[0] = '\0';
    if (len < 3 + 1 + 1 + SF_APIKEY_SECRET_LEN || len > SF_APIKEY_KEY_MAX)
        return SF_ERR(err, SF_EINVAL, "key has %zu characters; expected sf_<id>_<%d characters>",
                      len, SF_APIKEY_SECRET_LEN);
    if (memcmp(key, "sf_", 3) != 0)
        return SF_ERR(err, SF_EINVAL, "key does not start with sf_");
    size_t sep = len - SF_APIKEY_SECRET_LEN - 1;
    if (key[sep] != '_')
        return SF_ERR(err, SF_EINVAL, "key: no '_' before the %d-character secret",
                      SF_APIKEY_SECRET_LEN);
    if (!key__valid_id(key + 3, sep - 3))
        return SF_ERR(err, SF_EINVAL, "key id must be 1..%d of A-Z a-z 0-9 _ -", SF_APIKEY_ID_MAX);
    for (size_t i = sep + 1; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (!key__id_char(c)) /* base64url is the id alphabet */
            return SF_ERR(err, SF_EINVAL, "key secret holds a character outside base64url");
    }
    /* 43 characters carry 258 bits: the last one holds only 4 bits of the
     * 32 bytes, so its low 2 bits are zero in a key we made. */
    const char *last = strchr(key__b64url, key[len - 1]);
    if (!last || ((last - key__b64url) & 3) != 0)
        return SF_ERR(err, SF_EINVAL, "key secret is not the base64url of 32 bytes");
    memcpy(id, key + 3, sep - 3);
    id[sep - 3] = '\0';
    memcpy(secret, key + sep + 1, SF_APIKEY_SECRET_LEN);
    secret[SF_APIKEY_SECRET_LEN] = '\0';
    return SF_OK;
}

void sf_apikey_hash(const unsigned char *salt, size_t salt_len, const char *secret,
                    unsigned char out[SF_APIKEY_HASH_LEN])
{
    unsigned char buf[SF_APIKEY_SALT_MAX + SF_APIKEY_SECRET_LEN];
    size_t slen = strnlen(secret, SF_APIKEY_SECRET_LEN);
    if (salt_len > SF_APIKEY_SALT_MAX)
        salt_len = SF_APIKEY_SALT_MAX;
    memcpy(buf, salt, salt_len);
    memcpy(buf + salt_len, secret, slen);
    SHA256(buf, salt_len + slen, out);
    OPENSSL_cleanse(buf, sizeof buf);
}

bool sf_apikey_verify(const unsigned char *salt, size_t salt_len,
                      const unsigned char hash[SF_APIKEY_HASH_LEN], const char *secret)
{
    unsigned char got[SF_APIKEY_HASH_LEN];
    sf_apikey_hash(salt, salt_len, secret, got);
    return CRYPTO_memcmp(got, hash, SF_APIKEY_HASH_LEN) == 0;
}

/* -------------------------------------------------------------- the ring --- */

typedef struct ring__key {
    char id[SF_APIKEY_ID_MAX + 1];
    char name[SF_APIKEY_ID_MAX + 1];
    sf_apikey_scope scope;
    unsigned char salt[SF_APIKEY_SALT_MAX];
    size_t salt_len;
    unsigned char hash[SF_APIKEY_HASH_LEN];
    bool revoked;
} ring__key;

struct sf_apikey_ring {
    ring__key *cfg; /* immutable once the ring is shared */
    size_t n_cfg;
    pthread_rwlock_t lock; /* guards db, n_db, db_loaded */
    ring__key *db;         /* sorted by id (bytewise) */
    size_t n_db;
    bool db_loaded;
};

const char *sf_apikey_verdict_str(sf_apikey_verdict v)
{
    switch (v) {
    case SF_APIKEY_OK: return "ok";
    case SF_APIKEY_MISSING: return "missing API key (Authorization: Bearer sf_<id>_<secret>)";
    case SF_APIKEY_MALFORMED: return "malformed API key (expected Bearer sf_<id>_<secret>)";
    case SF_APIKEY_UNKNOWN: return "unknown API key";
    case SF_APIKEY_REVOKED: return "API key revoked";
    case SF_APIKEY_FORBIDDEN: return "API key scope not allowed here";
    case SF_APIKEY_UNAVAILABLE: return "API keys unavailable: PostgreSQL down";
    }
    return "?";
}

sf_status sf_apikey_ring_new(sf_apikey_ring **out, sf_error *err)
{
    sf_apikey_ring *r = calloc(1, sizeof *r);
    if (!r)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    if (pthread_rwlock_init(&r->lock, NULL) != 0) {
        free(r);
        return SF_ERR(err, SF_EINTERNAL, "pthread_rwlock_init failed");
    }
    *out = r;
    return SF_OK;
}

void sf_apikey_ring_free(sf_apikey_ring *ring)
{
    if (!ring)
        return;
    pthread_rwlock_destroy(&ring->lock);
    free(ring->cfg);
    free(ring->db);
    free(ring);
}

static int ring__cmp(const void *a, const void *b)
{
    return strcmp(((const ring__key *)a)->id, ((const ring__key *)b)->id);
}

/* One config key from the entries of section "apikey.<name>". */
static sf_status ring__config_key(const sf_config *cfg, const char *section, ring__key *k,
                                  sf_error *err)
{
    const char *path = cfg->path[0] ? cfg->path : "config";
    memset(k, 0, sizeof *k);
    snprintf(k->id, sizeof k->id, "%s", section + strlen("apikey."));
    snprintf(k->name, sizeof k->name, "%s", k->id);
    const sf_config_entry *first = NULL;
    for (size_t i = 0; i < cfg->n_entries; i++) {
        const sf_config_entry *e = &cfg->entries[i];
        if (strcmp(e->section, section) != 0)
            continue;
        if (!first)
            first = e;
        if (strcmp(e->key, "scope") && strcmp(e->key, "salt") && strcmp(e->key, "hash"))
            return SF_ERR(err, SF_EINVAL, "%s:%d: [%s] %s: unknown key (known: scope, salt, hash)",
                          path, e->line, section, e->key);
    }
    static const char *const need[] = {"scope", "salt", "hash"};
    for (size_t i = 0; i < 3; i++) {
        if (!sf_config_find(cfg, section, need[i]))
            return SF_ERR(err, SF_EINVAL,
                          "%s:%d: [%s] %s: missing (every API key needs scope, "
                          "salt and hash)",
                          path, first ? first->line : 0, section, need[i]);
    }
    const sf_config_entry *e = sf_config_find(cfg, section, "scope");
    sf_error why;
    if (sf_apikey_scope_parse(e->value, &k->scope, &why))
        return SF_ERR(err, SF_EINVAL, "%s:%d: [%s] scope: %s", path, e->line, section, why.msg);
    e = sf_config_find(cfg, section, "salt");
    if (!sf_apikey_unhex(e->value, k->salt, sizeof k->salt, &k->salt_len) ||
        k->salt_len < SF_APIKEY_SALT_LEN)
        return SF_ERR(err, SF_EINVAL, "%s:%d: [%s] salt: expected %d..%d bytes as hex digits", path,
                      e->line, section, SF_APIKEY_SALT_LEN, SF_APIKEY_SALT_MAX);
    e = sf_config_find(cfg, section, "hash");
    size_t n = 0;
    if (!sf_apikey_unhex(e->value, k->hash, sizeof k->hash, &n) || n != SF_APIKEY_HASH_LEN)
        return SF_ERR(err, SF_EINVAL,
                      "%s:%d: [%s] hash: expected 64 hex digits (SHA-256 of salt and secret)", path,
                      e->line, section);
    return SF_OK;
}

sf_status sf_apikey_ring_load_config(sf_apikey_ring *ring, const sf_config *cfg, sf_error *err)
{
    ring__key *keys = NULL;
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_entries; i++) {
        const char *section = cfg->entries[i].section;
        if (strncmp(section, "apikey.", 7) != 0)
            continue;
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++)
            seen = strcmp(keys[j].id, section + 7) == 0;
        if (seen)
            continue;
        ring__key *grown = realloc(keys, (n + 1) * sizeof *keys);
        if (!grown) {
            free(keys);
            return SF_ERR(err, SF_ENOMEM, "out of memory");
        }
        keys = grown;
        sf_status st = ring__config_key(cfg, section, &keys[n], err);
        if (st) {
            free(keys);
            return st;
        }
        n++;
    }
    free(ring->cfg);
    ring->cfg = keys;
    ring->n_cfg = n;
    return SF_OK;
}

sf_status sf_apikey_ring_load_db(sf_apikey_ring *ring, PGconn *pg, size_t *n, size_t *skipped,
                                 sf_error *err)
{
    PGresult *res = NULL;
    sf_status st = sf_db_query(pg,
                               "SELECT id, name, scope, encode(salt, 'hex'), encode(hash, 'hex'),"
                               " revoked_at IS NOT NULL FROM api_keys",
                               0, NULL, &res, err);
    if (st)
        return st;
    size_t rows = (size_t)PQntuples(res), kept = 0;
    ring__key *keys = calloc(rows ? rows : 1, sizeof *keys);
    if (!keys) {
        PQclear(res);
        return SF_ERR(err, SF_ENOMEM, "out of memory loading %zu API keys", rows);
    }
    for (size_t r = 0; r < rows; r++) {
        ring__key *k = &keys[kept];
        const char *id = PQgetvalue(res, (int)r, 0);
        size_t hn = 0;
        if (!key__valid_id(id, strlen(id)) ||
            sf_apikey_scope_parse(PQgetvalue(res, (int)r, 2), &k->scope, NULL) ||
            !sf_apikey_unhex(PQgetvalue(res, (int)r, 3), k->salt, sizeof k->salt, &k->salt_len) ||
            !sf_apikey_unhex(PQgetvalue(res, (int)r, 4), k->hash, sizeof k->hash, &hn) ||
            hn != SF_APIKEY_HASH_LEN)
            continue;
        snprintf(k->id, sizeof k->id, "%s", id);
        snprintf(k->name, sizeof k->name, "%s", PQgetvalue(res, (int)r, 1));
        k->revoked = PQgetvalue(res, (int)r, 5)[0] == 't';
        kept++;
    }
    PQclear(res);
    qsort(keys, kept, sizeof *keys, ring__cmp);
    pthread_rwlock_wrlock(&ring->lock);
    ring__key *old = ring->db;
    ring->db = keys;
    ring->n_db = kept;
    ring->db_loaded = true;
    pthread_rwlock_unlock(&ring->lock);
    free(old);
    if (n)
        *n = rows;
    if (skipped)
        *skipped = rows - kept;
    return SF_OK;
}

/* The token of "Bearer <token>" (surrounding blanks allowed); NULL if the
 * header is not of that form. */
static const char *ring__bearer(const char *h, size_t *len)
{
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return NULL;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t n = strcspn(h, " \t");
    const char *rest = h + n;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (n == 0 || *rest)
        return NULL;
    *len = n;
    return h;
}

/* Verdict of one candidate key whose id matched. */
static sf_apikey_verdict ring__judge(const ring__key *k, bool from_config, const char *secret,
                                     unsigned allowed, sf_apikey_who *who)
{
    if (!sf_apikey_verify(k->salt, k->salt_len, k->hash, secret))
        return SF_APIKEY_UNKNOWN;
    if (who) {
        who->scope = k->scope;
        who->from_config = from_config;
        snprintf(who->id, sizeof who->id, "%s", k->id);
        snprintf(who->name, sizeof who->name, "%s", k->name);
    }
    if (k->revoked)
        return SF_APIKEY_REVOKED;
    return (k->scope & allowed) ? SF_APIKEY_OK : SF_APIKEY_FORBIDDEN;
}

sf_apikey_verdict sf_apikey_ring_check(sf_apikey_ring *ring, const char *authorization,
                                       unsigned allowed, sf_apikey_who *who)
{
    if (!authorization)
        return SF_APIKEY_MISSING;
    size_t len = 0;
    const char *token = ring__bearer(authorization, &len);
    char id[SF_APIKEY_ID_MAX + 1], secret[SF_APIKEY_SECRET_LEN + 1];
    if (!token || sf_apikey_parse(token, len, id, secret, NULL) != SF_OK)
        return SF_APIKEY_MALFORMED;

    sf_apikey_verdict v = SF_APIKEY_UNKNOWN;
    bool in_config = false;
    for (size_t i = 0; i < ring->n_cfg && v == SF_APIKEY_UNKNOWN; i++) {
        if (strcmp(ring->cfg[i].id, id) == 0) {
            in_config = true;
            v = ring__judge(&ring->cfg[i], true, secret, allowed, who);
        }
    }
    if (v == SF_APIKEY_UNKNOWN) {
        pthread_rwlock_rdlock(&ring->lock);
        ring__key probe;
        memcpy(probe.id, id, sizeof id);
        const ring__key *k =
            ring->db ? bsearch(&probe, ring->db, ring->n_db, sizeof *ring->db, ring__cmp) : NULL;
        if (k)
            v = ring__judge(k, false, secret, allowed, who);
        else if (!ring->db_loaded && !in_config)
            v = SF_APIKEY_UNAVAILABLE;
        pthread_rwlock_unlock(&ring->lock);
    }
    OPENSSL_cleanse(secret, sizeof secret);
    return v;
}

void sf_apikey_ring_counts(sf_apikey_ring *ring, size_t *config, size_t *db, bool *db_loaded)
{
    pthread_rwlock_rdlock(&ring->lock);
    if (config)
        *config = ring->n_cfg;
    if (db)
        *db = ring->n_db;
    if (db_loaded)
        *db_loaded = ring->db_loaded;
    pthread_rwlock_unlock(&ring->lock);
}
