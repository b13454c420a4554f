/*
 * config: defaults, the INI loader and environment overrides.
 *
 * Known keys are described once, in the table `cfg__keys` (section, key,
 * kind, where in sf_config, allowed range): adding a key is one row there,
 * one field in config.h and its default in sf_config_init(). inih gives the
 * handler no line number, so the file is fed through cfg__read_line, which
 * counts lines, refuses over-long ones (inih would split them silently) and
 * notes whether a line is indented: inih passes an indented line as a
 * continuation of the previous key's value, which only generic sections
 * accept. The first error stops the parse; it is the one reported.
 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- defaults --- */

static void cfg__copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src);
}

void sf_config_init(sf_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg__copy(cfg->nats.url, sizeof cfg->nats.url, "nats://127.0.0.1:14222");
    cfg->nats.replicas = 1;
    cfg->nats.ack_wait_ms = 10000;
    cfg__copy(cfg->pg.dsn, sizeof cfg->pg.dsn,
              "host=127.0.0.1 port=15432 dbname=stockflow user=postgres");
    cfg->pg.pool = 4;
    cfg->consumer.batch = 2000;
    cfg->consumer.max_deliver = 10;
    cfg->consumer.max_msg_bytes = 1024; /* an event encodes to at most SF_CODEC_EVENT_MAX (512) */
    cfg->ingest.max_inflight = 4096;
    cfg->ingest.max_line = 65536;
    cfg->ingest.max_future_ms = 300000;
    cfg->ingest.max_body = 4 << 20;
    cfg->reconciler.poll_ms = 500;
    cfg__copy(cfg->api.listen, sizeof cfg->api.listen, "127.0.0.1:8080");
    cfg->api.max_batch = 1000;
    cfg->api.rate_per_key = 1000;
    cfg->api.burst = 2000;
    cfg->api.max_header_bytes = 16384;
    cfg->api.max_body_bytes = 65536;
    cfg->api.reserve_threads = 2;
    cfg->api.reserve_batch = 64;
    cfg->api.reserve_queue = 4096;
    cfg->api.max_query_bytes = 4096;
    cfg->api.max_ledger_page = 1000;
    cfg__copy(cfg->ops.endpoint, sizeof cfg->ops.endpoint, "tcp://127.0.0.1:15560");
    cfg__copy(cfg->ops.sub_endpoint, sizeof cfg->ops.sub_endpoint, "tcp://127.0.0.1:15561");
    cfg->now_ms_override = 0;
}

void sf_config_free(sf_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->entries);
    cfg->entries = NULL;
    cfg->n_entries = 0;
    cfg->cap_entries = 0;
}

/* ------------------------------------------------------- value checking --- */

typedef enum cfg__kind {
    CFG_STR,      /* non-empty string into a char[SF_CONFIG_URL_MAX + 1] */
    CFG_ENDPOINT, /* string holding "scheme://..." */
    CFG_LISTEN,   /* "host:port" */
    CFG_INT,      /* int in [min, max] */
    CFG_I64,      /* int64_t in [min, max] */
    CFG_REPLICAS, /* int: 1, 3 or 5 */
    CFG_BOOL      /* bool: true/false, yes/no, on/off, 1/0 */
} cfg__kind;

typedef struct cfg__key {
    const char *section;
    const char *key;
    cfg__kind kind;
    size_t offset;
    int64_t min, max;
} cfg__key;

#define CFG_AT(field) offsetof(sf_config, field)

static const cfg__key cfg__keys[] = {
    {"nats", "url", CFG_STR, CFG_AT(nats.url), 0, 0},
    {"nats", "replicas", CFG_REPLICAS, CFG_AT(nats.replicas), 1, 5},
    {"nats", "ack_wait_ms", CFG_I64, CFG_AT(nats.ack_wait_ms), 100, 3600000},
    {"nats", "tls_ca", CFG_STR, CFG_AT(nats.tls_ca), 0, 0},
    {"nats", "tls_cert", CFG_STR, CFG_AT(nats.tls_cert), 0, 0},
    {"nats", "tls_key", CFG_STR, CFG_AT(nats.tls_key), 0, 0},
    {"nats", "tls_required", CFG_BOOL, CFG_AT(nats.tls_required), 0, 0},
    {"pg", "dsn", CFG_STR, CFG_AT(pg.dsn), 0, 0},
    {"pg", "pool", CFG_INT, CFG_AT(pg.pool), 1, 256},
    {"consumer", "batch", CFG_INT, CFG_AT(consumer.batch), 1, 100000},
    {"consumer", "max_deliver", CFG_INT, CFG_AT(consumer.max_deliver), 1, 1000},
    {"consumer", "max_msg_bytes", CFG_INT, CFG_AT(consumer.max_msg_bytes), 512, 1048576},
    {"ingest", "max_inflight", CFG_INT, CFG_AT(ingest.max_inflight), 1, 1000000},
    {"ingest", "max_line", CFG_INT, CFG_AT(ingest.max_line), 1024, 16777216},
    {"ingest", "max_future_ms", CFG_I64, CFG_AT(ingest.max_future_ms), 0, 31LL * 86400000},
    {"ingest", "max_body", CFG_INT, CFG_AT(ingest.max_body), 1024, 1 << 30},
    {"reconciler", "poll_ms", CFG_INT, CFG_AT(reconciler.poll_ms), 10, 600000},
    {"api", "listen", CFG_LISTEN, CFG_AT(api.listen), 0, 0},
    {"api", "max_batch", CFG_INT, CFG_AT(api.max_batch), 1, 100000},
    {"api", "tls_cert", CFG_STR, CFG_AT(api.tls_cert), 0, 0},
    {"api", "tls_key", CFG_STR, CFG_AT(api.tls_key), 0, 0},
    {"api", "rate_per_key", CFG_INT, CFG_AT(api.rate_per_key), 1, 1000000},
    {"api", "burst", CFG_INT, CFG_AT(api.burst), 1, 1000000},
    {"api", "max_header_bytes", CFG_INT, CFG_AT(api.max_header_bytes), 1024, 1048576},
    {"api", "max_body_bytes", CFG_INT, CFG_AT(api.max_body_bytes), 0, 16777216},
    {"api", "reserve_threads", CFG_INT, CFG_AT(api.reserve_threads), 1, 16},
    {"api", "reserve_batch", CFG_INT, CFG_AT(api.reserve_batch), 1, 256},
    {"api", "reserve_queue", CFG_INT, CFG_AT(api.reserve_queue), 1, 1000000},
    {"api", "max_query_bytes", CFG_INT, CFG_AT(api.max_query_bytes), 256, 1048576},
    {"api", "max_ledger_page", CFG_INT, CFG_AT(api.max_ledger_page), 1, 100000},
    {"ops", "endpoint", CFG_ENDPOINT, CFG_AT(ops.endpoint), 0, 0},
    {"ops", "sub_endpoint", CFG_ENDPOINT, CFG_AT(ops.sub_endpoint), 0, 0},
};
#define CFG_NKEYS (sizeof cfg__keys / sizeof cfg__keys[0])

static const char *const cfg__generic[] = {"supplier.", "apikey."};

/* Whole-string base-10 integer; ERANGE reported as out of range by caller. */
static bool cfg__parse_i64(const char *s, int64_t *out, bool *overflow)
{
    char *end;
    *overflow = false;
    if (*s == '\0')
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0')
        return false;
    if (errno == ERANGE) {
        *overflow = true;
        return false;
    }
    *out = v;
    return true;
}

/* Check value for key k and store it in cfg. On failure writes the reason
 * (without position) to why and returns false. */
static bool cfg__set(sf_config *cfg, const cfg__key *k, const char *value, char *why,
                     size_t why_size)
{
    char *base = (char *)cfg + k->offset;
    switch (k->kind) {
    case CFG_STR:
    case CFG_ENDPOINT:
    case CFG_LISTEN: {
        size_t n = strlen(value);
        if (n == 0) {
            snprintf(why, why_size, "must not be empty");
            return false;
        }
        if (n > SF_CONFIG_URL_MAX) {
            snprintf(why, why_size, "too long (%zu bytes, max %d)", n, SF_CONFIG_URL_MAX);
            return false;
        }
        if (k->kind == CFG_ENDPOINT && !strstr(value, "://")) {
            snprintf(why, why_size, "'%.200s' is not an endpoint (expected e.g. tcp://host:port)",
                     value);
            return false;
        }
        if (k->kind == CFG_LISTEN) {
            const char *colon = strrchr(value, ':');
            int64_t port = 0;
            bool overflow;
            if (!colon || colon == value || !cfg__parse_i64(colon + 1, &port, &overflow) ||
                port < 1 || port > 65535) {
                snprintf(why, why_size, "'%.200s' is not host:port (port 1..65535)", value);
                return false;
            }
        }
        memcpy(base, value, n + 1);
        return true;
    }
    case CFG_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1"};
        static const char *const no[] = {"false", "no", "off", "0"};
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
            if (strcmp(value, yes[i]) == 0 || strcmp(value, no[i]) == 0) {
                bool v = strcmp(value, yes[i]) == 0;
                memcpy(base, &v, sizeof v);
                return true;
            }
        }
        snprintf(why, why_size, "not a boolean: '%.100s' (true or false)", value);
        return false;
    }
    case CFG_INT:
    case CFG_I64:
    case CFG_REPLICAS: {
        int64_t v = 0;
        bool overflow;
        if (!cfg__parse_i64(value, &v, &overflow)) {
            if (overflow)
                snprintf(why, why_size, "out of range: %.100s (allowed %lld..%lld)", value,
                         (long long)k->min, (long long)k->max);
            else
                snprintf(why, why_size, "not a number: '%.100s'", value);
            return false;
        }
        if (k->kind == CFG_REPLICAS) {
            if (v != 1 && v != 3 && v != 5) {
                snprintf(why, why_size, "out of range: %lld (allowed 1, 3 or 5)", (long long)v);
                return false;
            }
        } else if (v < k->min || v > k->max) {
            snprintf(why, why_size, "out of range: %lld (allowed %lld..%lld)", (long long)v,
                     (long long)k->min, (long long)k->max);
            return false;
        }
        if (k->kind == CFG_I64)
            memcpy(base, &v, sizeof v);
        else {
            int iv = (int)v;
            memcpy(base, &iv, sizeof iv);
        }
        return true;
    }
    }
    snprintf(why, why_size, "internal: unknown kind");
    return false;
}

/* ------------------------------------------------------------- the parse --- */

typedef struct cfg__parse {
    sf_config *cfg;
    const char *path;
    FILE *fp;
    sf_error *err;
    sf_status status; /* first error; parsing stops once set */
    int line;         /* the line inih is handling now */
    bool indented;    /* that line starts with a blank */
    int seen[CFG_NKEYS];
    /* the previous handler call, to recognise continuations */
    char prev_section[SF_CONFIG_SECTION_MAX + 1];
    char prev_key[SF_CONFIG_KEY_MAX + 1];
    bool prev_valid;
    bool prev_key_indented; /* the line that set prev_key was indented */
} cfg__parse;

static void cfg__fail(cfg__parse *p, sf_status status, const char *section, const char *key,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void cfg__fail(cfg__parse *p, sf_status status, const char *section, const char *key,
                      const char *fmt, ...)
{
    char why[SF_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (p->status != SF_OK)
        return;
    p->status = status;
    if (section && key)
        SF_ERR(p->err, status, "%s:%d: [%s] %s: %s", p->path, p->line, section, key, why);
    else if (key)
        SF_ERR(p->err, status, "%s:%d: %s: %s", p->path, p->line, key, why);
    else
        SF_ERR(p->err, status, "%s:%d: %s", p->path, p->line, why);
}

/* inih's line source: fgets plus line counting and the length check. */
static char *cfg__read_line(char *str, int num, void *stream)
{
    cfg__parse *p = stream;
    if (p->status != SF_OK)
        return NULL;
    if (!fgets(str, num, p->fp))
        return NULL;
    p->line++;
    size_t n = strlen(str);
    if (n > 0 && str[n - 1] != '\n' && n + 1 == (size_t)num) {
        int c = fgetc(p->fp);
        if (c != EOF) {
            cfg__fail(p, SF_EINVAL, NULL, NULL,
                      "line too long (max %d bytes); continue a "
                      "long value on indented lines",
                      num - 1);
            return NULL;
        }
    }
    p->indented = str[0] == ' ' || str[0] == '\t';
    /* inih forgets the previous key at a section header; so do we */
    if (str[strspn(str, " \t")] == '[')
        p->prev_valid = false;
    return str;
}

static bool cfg__is_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SF_CONFIG_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static int cfg__generic_value(cfg__parse *p, const char *section, const char *key,
                              const char *value, bool continuation)
{
    sf_config *cfg = p->cfg;
    if (continuation) {
        if (p->prev_key_indented) {
            cfg__fail(p, SF_EINVAL, section, key,
                      "indented line after an indented key: inih reads it as a continuation "
                      "of '%s'; start keys at the beginning of the line",
                      key);
            return 0;
        }
        sf_config_entry *e = &cfg->entries[cfg->n_entries - 1];
        size_t have = strlen(e->value), add = strlen(value);
        if (have + 1 + add > SF_CONFIG_VALUE_MAX) {
            cfg__fail(p, SF_EINVAL, section, key, "value too long (max %d bytes)",
                      SF_CONFIG_VALUE_MAX);
            return 0;
        }
        if (have > 0)
            e->value[have++] = ' ';
        memcpy(e->value + have, value, add + 1);
        return 1;
    }
    if (strlen(key) > SF_CONFIG_KEY_MAX) {
        cfg__fail(p, SF_EINVAL, section, key, "key too long (max %d bytes)", SF_CONFIG_KEY_MAX);
        return 0;
    }
    if (strlen(value) > SF_CONFIG_VALUE_MAX) {
        cfg__fail(p, SF_EINVAL, section, key, "value too long (max %d bytes)", SF_CONFIG_VALUE_MAX);
        return 0;
    }
    const sf_config_entry *dup = sf_config_find(cfg, section, key);
    if (dup) {
        cfg__fail(p, SF_EINVAL, section, key, "set twice (first on line %d)", dup->line);
        return 0;
    }
    if (cfg->n_entries == cfg->cap_entries) {
        if (cfg->cap_entries >= SF_CONFIG_ENTRIES_MAX) {
            cfg__fail(p, SF_EINVAL, section, key, "too many keys in generic sections (max %d)",
                      SF_CONFIG_ENTRIES_MAX);
            return 0;
        }
        size_t cap = cfg->cap_entries ? cfg->cap_entries * 2 : 16;
        if (cap > SF_CONFIG_ENTRIES_MAX)
            cap = SF_CONFIG_ENTRIES_MAX;
        sf_config_entry *grown = realloc(cfg->entries, cap * sizeof *grown);
        if (!grown) {
            cfg__fail(p, SF_ENOMEM, section, key, "out of memory");
            return 0;
        }
        cfg->entries = grown;
        cfg->cap_entries = cap;
    }
    sf_config_entry *e = &cfg->entries[cfg->n_entries++];
    cfg__copy(e->section, sizeof e->section, section);
    cfg__copy(e->key, sizeof e->key, key);
    cfg__copy(e->value, sizeof e->value, value);
    e->line = p->line;
    return 1;
}

static int cfg__on_value(void *user, const char *section, const char *key, const char *value)
{
    cfg__parse *p = user;
    if (p->status != SF_OK)
        return 0;
    bool continuation = p->indented && p->prev_valid && strcmp(p->prev_section, section) == 0 &&
                        strcmp(p->prev_key, key) == 0;
    if (!continuation)
        p->prev_key_indented = p->indented;
    cfg__copy(p->prev_section, sizeof p->prev_section, section);
    cfg__copy(p->prev_key, sizeof p->prev_key, key);
    p->prev_valid = true;

    if (section[0] == '\0') {
        cfg__fail(p, SF_EINVAL, NULL, key, "key outside any [section]");
        return 0;
    }
    for (size_t g = 0; g < sizeof cfg__generic / sizeof cfg__generic[0]; g++) {
        size_t plen = strlen(cfg__generic[g]);
        if (strncmp(section, cfg__generic[g], plen) != 0)
            continue;
        if (!cfg__is_id(section + plen)) {
            cfg__fail(p, SF_EINVAL, section, key,
                      "bad section name: the part after '%s' must be 1..%d of A-Z a-z 0-9 _ -",
                      cfg__generic[g], SF_CONFIG_ID_MAX);
            return 0;
        }
        return cfg__generic_value(p, section, key, value, continuation);
    }

    bool known_section = false;
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const cfg__key *k = &cfg__keys[i];
        if (strcmp(k->section, section) != 0)
            continue;
        known_section = true;
        if (strcmp(k->key, key) != 0)
            continue;
        if (continuation) {
            cfg__fail(p, SF_EINVAL, section, key,
                      "the value continues on an indented line; write it on one line "
                      "(or remove the indentation)");
            return 0;
        }
        if (p->seen[i]) {
            cfg__fail(p, SF_EINVAL, section, key, "set twice (first on line %d)", p->seen[i]);
            return 0;
        }
        char why[SF_ERROR_MSG_MAX];
        if (!cfg__set(p->cfg, k, value, why, sizeof why)) {
            cfg__fail(p, SF_EINVAL, section, key, "%s", why);
            return 0;
        }
        p->seen[i] = p->line;
        return 1;
    }
    if (known_section)
        cfg__fail(p, SF_EINVAL, section, key, "unknown key");
    else
        cfg__fail(p, SF_EINVAL, section, key,
                  "unknown section (known: nats, pg, consumer, ingest, reconciler, api, ops, "
                  "supplier.<id>, apikey.<name>)");
    return 0;
}

sf_status sf_config_load(sf_config *cfg, const char *path, sf_error *err)
{
    if (strlen(path) > SF_CONFIG_PATH_MAX)
        return SF_ERR(err, SF_EINVAL, "config path too long (max %d bytes)", SF_CONFIG_PATH_MAX);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return SF_ERR(err, SF_EIO, "%s: cannot open: %s", path, strerror(errno));
    cfg__copy(cfg->path, sizeof cfg->path, path);

    cfg__parse p = {.cfg = cfg, .path = path, .fp = fp, .err = err};
    int rc = ini_parse_stream(cfg__read_line, &p, cfg__on_value, &p);
    bool read_error = ferror(fp) != 0;
    fclose(fp);

    if (p.status != SF_OK)
        return p.status;
    if (read_error)
        return SF_ERR(err, SF_EIO, "%s: read error", path);
    if (rc == -2)
        return SF_ERR(err, SF_ENOMEM, "%s: out of memory while parsing", path);
    if (rc != 0)
        return SF_ERR(err, SF_EINVAL,
                      "%s:%d: syntax error: expected [section], key = value, "
                      "or a comment",
                      path, rc);
    return SF_OK;
}

/* ------------------------------------------------------------ environment --- */

const char *sf_config_getenv(const char *name)
{
    return getenv(name);
}

static sf_status cfg__env_str(char *dst, size_t size, const char *name, const char *value,
                              sf_error *err)
{
    size_t n = strlen(value);
    if (n >= size)
        return SF_ERR(err, SF_EINVAL, "%s: too long (%zu bytes, max %zu)", name, n, size - 1);
    memcpy(dst, value, n + 1);
    return SF_OK;
}

sf_status sf_config_apply_env(sf_config *cfg, const char *(*getenv_fn)(const char *), sf_error *err)
{
    const char *v;
    sf_status s;
    if ((v = getenv_fn("INV_NATS_URL")) && *v &&
        (s = cfg__env_str(cfg->nats.url, sizeof cfg->nats.url, "INV_NATS_URL", v, err)))
        return s;
    if ((v = getenv_fn("INV_PG_DSN")) && *v &&
        (s = cfg__env_str(cfg->pg.dsn, sizeof cfg->pg.dsn, "INV_PG_DSN", v, err)))
        return s;
    if ((v = getenv_fn("INV_OPS_ENDPOINT")) && *v) {
        if (!strstr(v, "://"))
            return SF_ERR(err, SF_EINVAL,
                          "INV_OPS_ENDPOINT: '%s' is not an endpoint (expected e.g. "
                          "tcp://host:port)",
                          v);
        if ((s = cfg__env_str(cfg->ops.endpoint, sizeof cfg->ops.endpoint, "INV_OPS_ENDPOINT", v,
                              err)))
            return s;
    }
    if ((v = getenv_fn("INV_NOW_MS")) && *v) {
        int64_t ms;
        bool overflow;
        if (!cfg__parse_i64(v, &ms, &overflow) || ms < 0)
            return SF_ERR(err, SF_EINVAL,
                          "INV_NOW_MS: '%s' is not epoch milliseconds (a whole number >= 0)", v);
        cfg->now_ms_override = ms;
    }
    return SF_OK;
}

/* ---------------------------------------------------------------- lookups --- */

const sf_config_entry *sf_config_find(const sf_config *cfg, const char *section, const char *key)
{
    for (size_t i = 0; i < cfg->n_entries; i++) {
        const sf_config_entry *e = &cfg->entries[i];
        if (strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

const char *sf_config_get(const sf_config *cfg, const char *section, const char *key)
{
    const sf_config_entry *e = sf_config_find(cfg, section, key);
    return e ? e->value : NULL;
}
