/*
 * test_apikey: the API key module (common/apikey.h): the sf_<id>_<secret>
 * format, SHA-256(salt ‖ secret) pinned against an independent computation
 * (Python's hashlib), generation from the CSPRNG, every parse rejection,
 * and the key ring over [apikey.<name>] config sections: each verdict
 * (ok, missing, malformed, unknown, forbidden scope, unavailable before the
 * table was read) and each config error with its path:line.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apikey.h"
#include "config.h"
#include "leak_guard.h"

/* salt = bytes 0..15; secret = base64url(bytes 0..31) without padding;
 * hashlib.sha256(salt + secret).hexdigest() */
#define PIN_SECRET "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define PIN_HASH "cdc4c5f24fea0e5bf9046f41b8cc237b4cc5dc28440a75011ae1d3235a462166"

static void pin_salt(unsigned char salt[16])
{
    for (int i = 0; i < 16; i++)
        salt[i] = (unsigned char)i;
}

LEAK_TEST(apikey, hash_matches_an_independent_sha256)
{
    unsigned char salt[16], hash[32];
    char hex[65];
    pin_salt(salt);
    sf_apikey_hash(salt, sizeof salt, PIN_SECRET, hash);
    sf_apikey_hex(hash, sizeof hash, hex);
    cr_assert(!strcmp(hex, PIN_HASH), "got %s", hex);
    cr_assert(sf_apikey_verify(salt, sizeof salt, hash, PIN_SECRET));
}

LEAK_TEST(apikey, verify_rejects_any_other_secret_or_salt)
{
    unsigned char salt[16], hash[32];
    pin_salt(salt);
    sf_apikey_hash(salt, sizeof salt, PIN_SECRET, hash);
    char other[] = PIN_SECRET;
    other[0] = 'B';
    cr_assert(!sf_apikey_verify(salt, sizeof salt, hash, other));
    salt[15] ^= 1;
    cr_assert(!sf_apikey_verify(salt, sizeof salt, hash, PIN_SECRET));
}

LEAK_TEST(apikey, generated_key_parses_and_verifies)
{
    sf_apikey_new a, b;
    sf_error err;
    cr_assert(sf_apikey_generate(NULL, &a, &err) == SF_OK, "%s", err.msg);
    cr_assert(sf_apikey_generate(NULL, &b, &err) == SF_OK, "%s", err.msg);
    cr_assert_eq(strlen(a.id), SF_APIKEY_GEN_ID_LEN);
    cr_assert_eq(strspn(a.id, "0123456789abcdef"), SF_APIKEY_GEN_ID_LEN);
    cr_assert_eq(strlen(a.key), 3 + SF_APIKEY_GEN_ID_LEN + 1 + SF_APIKEY_SECRET_LEN, "%s", a.key);
    cr_assert(!strncmp(a.key, "sf_", 3) && !strncmp(a.key + 3, a.id, strlen(a.id)));
    cr_assert(strcmp(a.key, b.key) != 0 && strcmp(a.id, b.id) != 0);
    cr_assert(memcmp(a.salt, b.salt, sizeof a.salt) != 0);

    char id[SF_APIKEY_ID_MAX + 1], secret[SF_APIKEY_SECRET_LEN + 1];
    cr_assert(sf_apikey_parse(a.key, strlen(a.key), id, secret, &err) == SF_OK, "%s", err.msg);
    cr_assert(!strcmp(id, a.id));
    cr_assert_eq(strlen(secret), SF_APIKEY_SECRET_LEN);
    cr_assert(sf_apikey_verify(a.salt, sizeof a.salt, a.hash, secret));
    cr_assert(!sf_apikey_verify(b.salt, sizeof b.salt, b.hash, secret));
}

LEAK_TEST(apikey, id_may_hold_underscores)
{
    sf_apikey_new k;
    sf_error err;
    cr_assert(sf_apikey_generate("ops_dash_1", &k, &err) == SF_OK, "%s", err.msg);
    char id[SF_APIKEY_ID_MAX + 1], secret[SF_APIKEY_SECRET_LEN + 1];
    cr_assert(sf_apikey_parse(k.key, strlen(k.key), id, secret, &err) == SF_OK, "%s", err.msg);
    cr_assert(!strcmp(id, "ops_dash_1"), "%s", id);
    cr_assert(sf_apikey_verify(k.salt, sizeof k.salt, k.hash, secret));
    cr_assert(sf_apikey_generate("bad id", &k, &err) == SF_EINVAL);
}

static sf_status parse(const char *key)
{
    char id[SF_APIKEY_ID_MAX + 1], secret[SF_APIKEY_SECRET_LEN + 1];
    sf_error err;
    sf_status st = sf_apikey_parse(key, strlen(key), id, secret, &err);
    if (st != SF_OK)
        cr_assert(!strstr(err.msg, PIN_SECRET), "the error echoes the secret: %s", err.msg);
    return st;
}

LEAK_TEST(apikey, parse_rejects_every_malformed_key)
{
    cr_assert_eq(parse("sf_abc_" PIN_SECRET), SF_OK);
    cr_assert_eq(parse(""), SF_EINVAL);
    cr_assert_eq(parse("sf_"), SF_EINVAL);
    cr_assert_eq(parse("sk_abc_" PIN_SECRET), SF_EINVAL);     /* prefix */
    cr_assert_eq(parse("sf__" PIN_SECRET), SF_EINVAL);        /* empty id */
    cr_assert_eq(parse("sf_abc-" PIN_SECRET), SF_EINVAL);     /* no '_' before the secret */
    cr_assert_eq(parse("sf_a b_" PIN_SECRET), SF_EINVAL);     /* id character */
    cr_assert_eq(parse("sf_abc_" PIN_SECRET "A"), SF_EINVAL); /* secret too long */
    cr_assert_eq(parse("sf_abc_AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"), SF_EINVAL);  /* 42 */
    cr_assert_eq(parse("sf_abc_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+"), SF_EINVAL); /* + */
    cr_assert_eq(parse("sf_abc_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHhA"), SF_OK);
    /* the last character carries 4 bits: its low 2 bits must be zero */
    cr_assert_eq(parse("sf_abc_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHhB"), SF_EINVAL);
    char long_id[200] = "sf_";
    memset(long_id + 3, 'a', 65);
    strcpy(long_id + 68, "_" PIN_SECRET);
    cr_assert_eq(parse(long_id), SF_EINVAL);
    long_id[3 + 64] = '_'; /* id of exactly 64 */
    strcpy(long_id + 67, "_" PIN_SECRET);
    cr_assert_eq(parse(long_id), SF_OK);
    /* embedded NUL: the length is what counts */
    const char nul[] = "sf_ab\0_" PIN_SECRET;
    char id[SF_APIKEY_ID_MAX + 1], secret[SF_APIKEY_SECRET_LEN + 1];
    cr_assert_eq(sf_apikey_parse(nul, sizeof nul - 1, id, secret, NULL), SF_EINVAL);
}

LEAK_TEST(apikey, scopes_and_hex)
{
    sf_apikey_scope s;
    cr_assert(sf_apikey_scope_parse("read", &s, NULL) == SF_OK && s == SF_APIKEY_READ);
    cr_assert(sf_apikey_scope_parse("ingest", &s, NULL) == SF_OK && s == SF_APIKEY_INGEST);
    cr_assert(sf_apikey_scope_parse("admin", &s, NULL) == SF_OK && s == SF_APIKEY_ADMIN);
    cr_assert(sf_apikey_scope_parse("Read", &s, NULL) == SF_EINVAL);
    cr_assert(sf_apikey_scope_parse("", &s, NULL) == SF_EINVAL);
    unsigned char b[4];
    size_t n;
    cr_assert(sf_apikey_unhex("00Ff7a", b, sizeof b, &n) && n == 3 && b[1] == 0xff && b[2] == 0x7a);
    cr_assert(!sf_apikey_unhex("0", b, sizeof b, &n));
    cr_assert(!sf_apikey_unhex("zz", b, sizeof b, &n));
    cr_assert(!sf_apikey_unhex("0011223344", b, sizeof b, &n));
}

/* ---- the ring over config sections ---- */

static char ini_path[64];

static void write_ini(const char *text)
{
    snprintf(ini_path, sizeof ini_path, "/tmp/sf-apikey-XXXXXX");
    int fd = mkstemp(ini_path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* A config with one key per scope (read, ingest) from generated keys. */
static sf_apikey_ring *ring_with(sf_apikey_new *rd, sf_apikey_new *in)
{
    sf_error err;
    cr_assert(sf_apikey_generate("reader", rd, &err) == SF_OK);
    cr_assert(sf_apikey_generate("feeder", in, &err) == SF_OK);
    char rs[33], rh[65], is[33], ih[65], text[1024];
    sf_apikey_hex(rd->salt, 16, rs);
    sf_apikey_hex(rd->hash, 32, rh);
    sf_apikey_hex(in->salt, 16, is);
    sf_apikey_hex(in->hash, 32, ih);
    snprintf(text, sizeof text,
             "[api]\nmax_batch = 10\n\n[apikey.reader]\nscope = read\nsalt = %s\nhash = %s\n\n"
             "[apikey.feeder]\nscope = ingest\nsalt = %s\nhash = %s\n",
             rs, rh, is, ih);
    write_ini(text);
    sf_config cfg;
    sf_config_init(&cfg);
    cr_assert(sf_config_load(&cfg, ini_path, &err) == SF_OK, "%s", err.msg);
    unlink(ini_path);
    sf_apikey_ring *ring = NULL;
    cr_assert(sf_apikey_ring_new(&ring, &err) == SF_OK);
    cr_assert(sf_apikey_ring_load_config(ring, &cfg, &err) == SF_OK, "%s", err.msg);
    sf_config_free(&cfg);
    return ring;
}

static sf_apikey_verdict check(sf_apikey_ring *ring, const char *key, unsigned allowed)
{
    char header[256];
    snprintf(header, sizeof header, "Bearer %s", key);
    return sf_apikey_ring_check(ring, header, allowed, NULL);
}

LEAK_TEST(apikey_ring, verdicts_for_config_keys)
{
    sf_apikey_new rd, in;
    sf_apikey_ring *ring = ring_with(&rd, &in);
    unsigned read_routes = SF_APIKEY_READ | SF_APIKEY_ADMIN;
    size_t ncfg = 0, ndb = 9;
    bool loaded = true;
    sf_apikey_ring_counts(ring, &ncfg, &ndb, &loaded);
    cr_assert(ncfg == 2 && ndb == 0 && !loaded);

    sf_apikey_who who;
    memset(&who, 0, sizeof who);
    char header[256];
    snprintf(header, sizeof header, "  bearer \t%s  ", rd.key);
    cr_assert_eq(sf_apikey_ring_check(ring, header, read_routes, &who), SF_APIKEY_OK);
    cr_assert(who.scope == SF_APIKEY_READ && !strcmp(who.name, "reader"));
    cr_assert(who.from_config && !strcmp(who.id, "reader"), "a config key's id is its name");
    cr_assert_eq(check(ring, in.key, read_routes), SF_APIKEY_FORBIDDEN);
    cr_assert_eq(check(ring, in.key, SF_APIKEY_INGEST), SF_APIKEY_OK);
    cr_assert_eq(sf_apikey_ring_check(ring, NULL, read_routes, NULL), SF_APIKEY_MISSING);
    cr_assert_eq(sf_apikey_ring_check(ring, rd.key, read_routes, NULL),
                 SF_APIKEY_MALFORMED); /* no scheme */
    snprintf(header, sizeof header, "Basic %s", rd.key);
    cr_assert_eq(sf_apikey_ring_check(ring, header, read_routes, NULL), SF_APIKEY_MALFORMED);
    snprintf(header, sizeof header, "Bearer %s extra", rd.key);
    cr_assert_eq(sf_apikey_ring_check(ring, header, read_routes, NULL), SF_APIKEY_MALFORMED);
    cr_assert_eq(check(ring, "Bearer", read_routes), SF_APIKEY_MALFORMED);

    /* the reader's id with the feeder's secret: no match, and a config id
     * is not "unavailable" even before the table was read */
    char forged[SF_APIKEY_KEY_MAX + 1];
    snprintf(forged, sizeof forged, "sf_reader_%s", in.key + strlen(in.key) - 43);
    cr_assert_eq(check(ring, forged, read_routes), SF_APIKEY_UNKNOWN);
    /* an id only the table could know, before it was ever read */
    sf_apikey_new other;
    cr_assert(sf_apikey_generate(NULL, &other, NULL) == SF_OK);
    cr_assert_eq(check(ring, other.key, read_routes), SF_APIKEY_UNAVAILABLE);
    sf_apikey_ring_free(ring);
}

static sf_status load_config_text(const char *text, sf_error *err)
{
    write_ini(text);
    sf_config cfg;
    sf_config_init(&cfg);
    sf_status st = sf_config_load(&cfg, ini_path, err);
    unlink(ini_path);
    cr_assert(st == SF_OK, "%s", err->msg);
    sf_apikey_ring *ring = NULL;
    cr_assert(sf_apikey_ring_new(&ring, err) == SF_OK);
    st = sf_apikey_ring_load_config(ring, &cfg, err);
    sf_apikey_ring_free(ring);
    sf_config_free(&cfg);
    return st;
}

#define SALT "000102030405060708090a0b0c0d0e0f"

LEAK_TEST(apikey_ring, config_errors_name_the_line)
{
    sf_error err;
    cr_assert_eq(load_config_text("[apikey.a]\nscope = read\nsalt = " SALT "\n", &err), SF_EINVAL);
    cr_assert(strstr(err.msg, ":2: [apikey.a] hash: missing"), "%s", err.msg);
    cr_assert_eq(load_config_text(
                     "[apikey.a]\nscope = writer\nsalt = " SALT "\nhash = " PIN_HASH "\n", &err),
                 SF_EINVAL);
    cr_assert(strstr(err.msg, ":2: [apikey.a] scope: scope 'writer'"), "%s", err.msg);
    cr_assert_eq(
        load_config_text("[apikey.a]\nscope = read\nsalt = 0011\nhash = " PIN_HASH "\n", &err),
        SF_EINVAL);
    cr_assert(strstr(err.msg, ":3: [apikey.a] salt:"), "%s", err.msg);
    cr_assert_eq(load_config_text("[apikey.a]\nscope = read\nsalt = " SALT "\nhash = abc\n", &err),
                 SF_EINVAL);
    cr_assert(strstr(err.msg, ":4: [apikey.a] hash:"), "%s", err.msg);
    cr_assert_eq(load_config_text("[apikey.a]\nscope = read\nsalt = " SALT "\nhash = " PIN_HASH
                                  "\nsecret = x\n",
                                  &err),
                 SF_EINVAL);
    cr_assert(strstr(err.msg, ":5: [apikey.a] secret: unknown key"), "%s", err.msg);
}

LEAK_TEST(apikey_ring, pinned_config_key_is_accepted)
{
    sf_error err;
    write_ini("[apikey.pin]\nscope = admin\nsalt = " SALT "\nhash = " PIN_HASH "\n");
    sf_config cfg;
    sf_config_init(&cfg);
    cr_assert(sf_config_load(&cfg, ini_path, &err) == SF_OK, "%s", err.msg);
    unlink(ini_path);
    sf_apikey_ring *ring = NULL;
    cr_assert(sf_apikey_ring_new(&ring, &err) == SF_OK);
    cr_assert(sf_apikey_ring_load_config(ring, &cfg, &err) == SF_OK, "%s", err.msg);
    cr_assert_eq(check(ring, "sf_pin_" PIN_SECRET, SF_APIKEY_READ | SF_APIKEY_ADMIN), SF_APIKEY_OK);
    cr_assert_eq(check(ring, "sf_pin_" PIN_SECRET, SF_APIKEY_INGEST), SF_APIKEY_FORBIDDEN);
    sf_apikey_ring_free(ring);
    sf_config_free(&cfg);
}
