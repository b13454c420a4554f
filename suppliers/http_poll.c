/*
 * http_poll: conditional GET of a supplier endpoint with libcurl's easy
 * API, retries inside a poll, a circuit breaker across polls (http_poll.h).
 *
 * The one idea: curl reports an attempt, http__attempt() turns it into one
 * http__outcome (success, transient or final failure, with its cause in
 * words), and only sf_http_poller_fetch() decides what to do with it:
 * retry, stop, or record it in the breaker. To change the policy (what is
 * transient, how long to wait) change http__classify() or fetch, never the
 * curl callbacks, which only capture bytes and headers within their
 * bounds.
 *
 * Bounds: the body grows to at most max_body (the write callback refuses
 * the next byte; CURLOPT_MAXFILESIZE refuses a larger Content-Length up
 * front); validators are kept only when at most SF_HTTP_VALIDATOR_MAX
 * bytes of visible characters (no CR/LF can reach a request header);
 * redirects at most 3, within http/https (https-only for an https URL);
 * real time spent in a poll at most (retries + 1) x timeout_ms.
 *
 * The only global is libcurl's own (curl_global_init), behind a mutex.
 */
#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "adapter.h"
#include "adapter_util.h"
#include "http_poll.h"

#define HTTP__SHOWN_MAX 200     /* bytes of the URL in messages */
#define HTTP__SLEEP_SLICE_MS 20 /* how often a backoff sleep looks at *stop */
#define HTTP__BODY_START ((size_t)16 * 1024)

const char *const sf_http_poll_keys[] = {
    "url",        "interval",         "timeout",          "retries",
    "backoff_ms", "breaker_failures", "breaker_cooldown", NULL};

struct sf_http_poller {
    sf_http_poll_opts o;
    char shown[HTTP__SHOWN_MAX + 4]; /* the URL for messages: no userinfo, cut */
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];

    /* validators sent with each poll (committed) */
    char etag[SF_HTTP_VALIDATOR_MAX + 1];
    char last_modified[SF_HTTP_VALIDATOR_MAX + 1];
    /* those of the last SF_POLL_NEW, until commit or the next fetch */
    bool pending;
    char pending_etag[SF_HTTP_VALIDATOR_MAX + 1];
    char pending_last_modified[SF_HTTP_VALIDATOR_MAX + 1];

    /* captured by the header callback for the current response */
    char r_etag[SF_HTTP_VALIDATOR_MAX + 1];
    char r_last_modified[SF_HTTP_VALIDATOR_MAX + 1];
    int64_t r_retry_after_ms; /* -1: none */

    /* the body being received (write callback) */
    char *buf;
    size_t buf_len, buf_cap;
    bool too_large, oom;

    /* schedule and breaker, on the caller's clock */
    bool polled;
    int64_t last_poll_ms;
    bool open;
    int64_t open_until_ms;
    int failures;
    bool opened_flag;

    uint64_t rng; /* xorshift64 state for the backoff jitter */
};

/* One attempt, in words. */
typedef struct http__outcome {
    bool ok;        /* 200 or 304 */
    bool stopped;   /* *stop was set during the transfer */
    bool transient; /* worth another attempt within this poll */
    long code;      /* HTTP status, 0 if none */
    int64_t retry_after_ms;
    sf_status kind; /* for a failure: SF_EUNAVAIL, SF_ETIMEOUT or SF_EINVAL */
    char cause[320];
} http__outcome;

/* --- global state ------------------------------------------------------------- */

static pthread_mutex_t http__global_mu = PTHREAD_MUTEX_INITIALIZER;
static bool http__global_ready;

sf_status sf_http_global_init(sf_error *err)
{
    sf_status st = SF_OK;
    pthread_mutex_lock(&http__global_mu);
    if (!http__global_ready) {
        CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (rc == CURLE_OK)
            http__global_ready = true;
        else
            st = SF_ERR(err, SF_EINTERNAL, "curl_global_init: %s", curl_easy_strerror(rc));
    }
    pthread_mutex_unlock(&http__global_mu);
    return st;
}

void sf_http_global_cleanup(void)
{
    pthread_mutex_lock(&http__global_mu);
    if (http__global_ready) {
        curl_global_cleanup();
        http__global_ready = false;
    }
    pthread_mutex_unlock(&http__global_mu);
}

/* --- options and configuration --------------------------------------------------- */

void sf_http_poll_opts_init(sf_http_poll_opts *o)
{
    memset(o, 0, sizeof *o);
    o->interval_ms = INT64_C(300) * 1000;
    o->timeout_ms = 30 * 1000;
    o->retries = 3;
    o->backoff_ms = 500;
    o->breaker_failures = 5;
    o->breaker_cooldown_ms = INT64_C(300) * 1000;
    o->max_body = SF_FEED_MAX_BYTES;
    o->stop = NULL;
}

/* NULL if url is an acceptable http(s) URL, else the reason (static text;
 * never the URL itself, which may carry credentials). */
static const char *http__url_problem(const char *url)
{
    size_t n = strnlen(url, SF_HTTP_URL_MAX + 1);
    if (n == 0)
        return "is empty";
    if (n > SF_HTTP_URL_MAX)
        return "is longer than 1024 bytes";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c == 0x7f)
            return "holds a blank or a control character";
    }
    size_t skip;
    if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return "is not an http:// or https:// URL";
    if (url[skip] == '\0' || strchr("/?#@", url[skip]))
        return "has no host";
    CURLU *u = curl_url();
    if (!u)
        return "cannot be checked (out of memory)";
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
    curl_url_cleanup(u);
    if (rc != CURLUE_OK)
        return "is not a valid URL (scheme://host[:port]/path)";
    return NULL;
}

/* The URL as messages show it: userinfo replaced by "***", cut to
 * HTTP__SHOWN_MAX bytes with "...". */
static void http__shown(const char *url, char *out, size_t cap)
{
    const char *auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    char tmp[SF_HTTP_URL_MAX + 8];
    if (at)
        snprintf(tmp, sizeof tmp, "%.*s***%s", (int)(auth - url), url, at);
    else
        snprintf(tmp, sizeof tmp, "%s", url);
    if (strlen(tmp) > HTTP__SHOWN_MAX && cap > HTTP__SHOWN_MAX + 3)
        snprintf(out, cap, "%.*s...", HTTP__SHOWN_MAX, tmp);
    else
        snprintf(out, cap, "%s", tmp);
}

/* The line of section's first key, for a message about a missing key. */
static int http__section_line(const sf_config *cfg, const char *section)
{
    for (size_t i = 0; i < cfg->n_entries; i++)
        if (strcmp(cfg->entries[i].section, section) == 0)
            return cfg->entries[i].line;
    return 0;
}

sf_status sf_http_poll_configure(const sf_config *cfg, const char *section, sf_http_poll_opts *out,
                                 sf_error *err)
{
    sf_http_poll_opts o;
    sf_http_poll_opts_init(&o);
    const char *url = sf_config_get(cfg, section, "url");
    if (!url)
        return SF_ERR(err, SF_EINVAL, "%s:%d: [%s] url: is required (an http:// or https:// URL)",
                      cfg->path[0] ? cfg->path : "(config)", http__section_line(cfg, section),
                      section);
    const char *why = http__url_problem(url);
    if (why)
        return SF_ADAPTER_CFG_ERR(err, cfg, section, "url", "%s", why);
    snprintf(o.url, sizeof o.url, "%s", url);

    int64_t interval = 300, timeout = 30, retries = 3, backoff = 500, failures = 5, cooldown = 300;
    sf_status st;
    if ((st = sf_adapter_cfg_num(cfg, section, "interval", 1, 604800, "seconds", &interval, err)) ||
        (st = sf_adapter_cfg_num(cfg, section, "timeout", 1, 3600, "seconds", &timeout, err)) ||
        (st = sf_adapter_cfg_num(cfg, section, "retries", 0, 10, "attempts", &retries, err)) ||
        (st = sf_adapter_cfg_num(cfg, section, "backoff_ms", 1, SF_HTTP_BACKOFF_CAP_MS,
                                 "milliseconds", &backoff, err)) ||
        (st = sf_adapter_cfg_num(cfg, section, "breaker_failures", 1, 1000, "polls", &failures,
                                 err)) ||
        (st = sf_adapter_cfg_num(cfg, section, "breaker_cooldown", 1, 86400, "seconds", &cooldown,
                                 err)))
        return st;
    o.interval_ms = interval * 1000;
    o.timeout_ms = (int)timeout * 1000;
    o.retries = (int)retries;
    o.backoff_ms = (int)backoff;
    o.breaker_failures = (int)failures;
    o.breaker_cooldown_ms = cooldown * 1000;
    *out = o;
    return SF_OK;
}

/* --- curl callbacks ------------------------------------------------------------- */

static size_t http__write(char *data, size_t size, size_t nmemb, void *ud)
{
    sf_http_poller *p = ud;
    if (size != 0 && nmemb > SIZE_MAX / size) {
        p->too_large = true;
        return 0;
    }
    size_t n = size * nmemb;
    if (n > p->o.max_body - p->buf_len) { /* buf_len <= max_body always */
        p->too_large = true;
        return 0;
    }
    if (p->buf_cap - p->buf_len <= n) { /* keep a byte for the NUL */
        size_t cap = p->buf_cap ? p->buf_cap : HTTP__BODY_START;
        while (cap - p->buf_len <= n && cap <= p->o.max_body)
            cap *= 2; /* cap <= 2 * 64 MiB: no wrap */
        if (cap > p->o.max_body + 1)
            cap = p->o.max_body + 1;
        char *grown = realloc(p->buf, cap);
        if (!grown) {
            p->oom = true;
            return 0;
        }
        p->buf = grown;
        p->buf_cap = cap;
    }
    if (n)
        memcpy(p->buf + p->buf_len, data, n);
    p->buf_len += n;
    return n;
}

/* Copy a validator if it fits and holds only visible characters or
 * blanks (obs-text allowed); else leave it empty. */
static void http__take_validator(char *dst, const char *v, size_t n)
{
    dst[0] = '\0';
    if (n == 0 || n > SF_HTTP_VALIDATOR_MAX)
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return;
    }
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t http__header(char *line, size_t size, size_t nitems, void *ud)
{
    sf_http_poller *p = ud;
    if (size != 0 && nitems > SIZE_MAX / size)
        return 0;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) { /* a new response (redirect, 100) */
        p->r_etag[0] = '\0';
        p->r_last_modified[0] = '\0';
        p->r_retry_after_ms = -1;
        return n;
    }
    const char *colon = memchr(line, ':', n);
    if (!colon)
        return n;
    size_t name_len = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vlen = n - name_len - 1;
    while (vlen && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' ||
                    v[vlen - 1] == '\t'))
        vlen--;
    if (name_len == 4 && strncasecmp(line, "etag", 4) == 0) {
        http__take_validator(p->r_etag, v, vlen);
    } else if (name_len == 13 && strncasecmp(line, "last-modified", 13) == 0) {
        http__take_validator(p->r_last_modified, v, vlen);
    } else if (name_len == 11 && strncasecmp(line, "retry-after", 11) == 0) {
        int64_t s = 0;
        size_t i = 0;
        for (; i < vlen && i < 9 && v[i] >= '0' && v[i] <= '9'; i++)
            s = s * 10 + (v[i] - '0');
        /* delta-seconds only; an HTTP-date or junk leaves the backoff alone */
        p->r_retry_after_ms = (i > 0 && i == vlen) ? s * 1000 : -1;
    }
    return n;
}

static int http__progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                          curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const sf_http_poller *p = ud;
    return p->o.stop && *p->o.stop ? 1 : 0;
}

/* --- the poller ------------------------------------------------------------------ */

static int64_t http__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool http__stopped(const sf_http_poller *p)
{
    return p->o.stop && *p->o.stop;
}

/* Sleep ms in slices, false as soon as *stop is set. */
static bool http__sleep(const sf_http_poller *p, int64_t ms)
{
    int64_t end = http__mono_ms() + ms;
    for (;;) {
        if (http__stopped(p))
            return false;
        int64_t left = end - http__mono_ms();
        if (left <= 0)
            return true;
        if (left > HTTP__SLEEP_SLICE_MS)
            left = HTTP__SLEEP_SLICE_MS;
        struct timespec ts = {0, (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int64_t http__add_sat(int64_t a, int64_t b)
{
    return (b > 0 && a > INT64_MAX - b) ? INT64_MAX : a + b;
}

static uint64_t http__rand(sf_http_poller *p)
{
    uint64_t x = p->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p->rng = x;
    return x;
}

/* Backoff before retry number `retry` (1-based): backoff_ms doubling,
 * capped, then a uniform draw in [d/2, d]. */
static int64_t http__backoff(sf_http_poller *p, int retry)
{
    int64_t d = p->o.backoff_ms;
    for (int i = 1; i < retry && d < SF_HTTP_BACKOFF_CAP_MS; i++)
        d *= 2;
    if (d > SF_HTTP_BACKOFF_CAP_MS)
        d = SF_HTTP_BACKOFF_CAP_MS;
    int64_t half = d / 2;
    return half + (int64_t)(http__rand(p) % (uint64_t)(d - half + 1));
}

static bool http__curl_transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3: return true;
    default: return false;
    }
}

/* What curl's answer means for this poll. */
static void http__classify(sf_http_poller *p, CURLcode rc, int64_t budget_ms, bool conditional,
                           http__outcome *out)
{
    memset(out, 0, sizeof *out);
    out->retry_after_ms = -1;
    out->kind = SF_EUNAVAIL;
    const char *detail = p->errbuf[0] ? p->errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_ABORTED_BY_CALLBACK && http__stopped(p)) {
        out->stopped = true;
        snprintf(out->cause, sizeof out->cause, "stopped");
        return;
    }
    if (p->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        out->kind = SF_EINVAL;
        snprintf(out->cause, sizeof out->cause, "body larger than max_body (%zu bytes)",
                 p->o.max_body);
        return;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        out->transient = true;
        out->kind = SF_ETIMEOUT;
        snprintf(out->cause, sizeof out->cause, "timeout after %lld ms (%s)", (long long)budget_ms,
                 detail);
        return;
    }
    if (rc != CURLE_OK) {
        out->transient = http__curl_transient(rc);
        snprintf(out->cause, sizeof out->cause, "curl error %d: %s", (int)rc, detail);
        return;
    }
    long code = 0;
    curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &code);
    out->code = code;
    if (code == 200 || (code == 304 && conditional)) {
        out->ok = true;
        out->kind = SF_OK;
        return;
    }
    if (code == 304) {
        out->kind = SF_EINVAL;
        snprintf(out->cause, sizeof out->cause, "HTTP 304 to a request without validators");
        return;
    }
    out->transient = code == 408 || code == 429 || (code >= 500 && code <= 599);
    if (code == 429 || code == 503)
        out->retry_after_ms = p->r_retry_after_ms;
    if (!out->transient)
        out->kind = SF_EINVAL;
    snprintf(out->cause, sizeof out->cause, "HTTP %ld", code);
}

/* One request with at most budget_ms. SF_OK with *out filled, or the
 * poller's own failure. */
static sf_status http__attempt(sf_http_poller *p, bool conditional, int64_t budget_ms,
                               http__outcome *out, sf_error *err)
{
    p->buf_len = 0;
    p->too_large = false;
    p->oom = false;
    p->errbuf[0] = '\0';
    p->r_etag[0] = '\0';
    p->r_last_modified[0] = '\0';
    p->r_retry_after_ms = -1;
    long ms = budget_ms > LONG_MAX ? LONG_MAX : (long)budget_ms;
    if (curl_easy_setopt(p->curl, CURLOPT_TIMEOUT_MS, ms) != CURLE_OK ||
        curl_easy_setopt(p->curl, CURLOPT_CONNECTTIMEOUT_MS, ms) != CURLE_OK)
        return SF_ERR(err, SF_EINTERNAL, "%s: curl refused the timeout", p->shown);
    CURLcode rc = curl_easy_perform(p->curl);
    if (p->oom)
        return SF_ERR(err, SF_ENOMEM, "%s: out of memory (a body of %zu bytes)", p->shown,
                      p->buf_len);
    http__classify(p, rc, budget_ms, conditional, out);
    return SF_OK;
}

sf_status sf_http_poller_new(const sf_http_poll_opts *o, sf_http_poller **out, sf_error *err)
{
    *out = NULL;
    const char *why = http__url_problem(o->url);
    if (why)
        return SF_ERR(err, SF_EINVAL, "http poller: url %s", why);
    if (o->timeout_ms < 1)
        return SF_ERR(err, SF_EINVAL, "http poller: timeout_ms %d is below 1", o->timeout_ms);
    if (o->interval_ms < 0 || o->breaker_cooldown_ms < 0 || o->backoff_ms < 0)
        return SF_ERR(err, SF_EINVAL,
                      "http poller: interval_ms, breaker_cooldown_ms and backoff_ms must be >= 0");
    if (o->retries < 0 || o->retries > SF_HTTP_RETRIES_MAX)
        return SF_ERR(err, SF_EINVAL, "http poller: retries %d is not within 0..%d", o->retries,
                      SF_HTTP_RETRIES_MAX);
    if (o->breaker_failures < 1)
        return SF_ERR(err, SF_EINVAL, "http poller: breaker_failures %d is below 1",
                      o->breaker_failures);
    if (o->max_body < 1 || o->max_body > SF_FEED_MAX_BYTES)
        return SF_ERR(err, SF_EINVAL, "http poller: max_body %zu is not within 1..%zu", o->max_body,
                      SF_FEED_MAX_BYTES);
    sf_status st = sf_http_global_init(err);
    if (st != SF_OK)
        return st;

    sf_http_poller *p = calloc(1, sizeof *p);
    if (!p)
        return SF_ERR(err, SF_ENOMEM, "http poller: out of memory");
    p->o = *o;
    http__shown(o->url, p->shown, sizeof p->shown);
    p->r_retry_after_ms = -1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    p->rng = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ (uint64_t)(uintptr_t)p;
    if (p->rng == 0)
        p->rng = 0x9e3779b97f4a7c15u;

    p->curl = curl_easy_init();
    if (!p->curl) {
        st = SF_ERR(err, SF_ENOMEM, "%s: curl_easy_init failed", p->shown);
        goto fail;
    }
    bool https = strncasecmp(o->url, "https://", 8) == 0;
    CURL *c = p->curl;
    CURLcode rc = curl_easy_setopt(c, CURLOPT_URL, o->url);
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!rc) /* never downgrade an https feed to http */
        rc = curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_USERAGENT, SF_HTTP_USER_AGENT);
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    if (!rc) /* decoded bytes count toward max_body */
        rc = curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_body);
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->errbuf);
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http__write);
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_WRITEDATA, p);
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http__header);
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_HEADERDATA, p);
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, http__progress);
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_XFERINFODATA, p);
    if (!rc)
        rc = curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (rc) {
        st = SF_ERR(err, SF_EINTERNAL, "%s: curl option refused: %s", p->shown,
                    curl_easy_strerror(rc));
        goto fail;
    }
    *out = p;
    return SF_OK;
fail:
    sf_http_poller_free(p);
    return st;
}

void sf_http_poller_free(sf_http_poller *p)
{
    if (!p)
        return;
    if (p->curl)
        curl_easy_cleanup(p->curl);
    free(p->buf);
    free(p);
}

/* The request headers carrying the committed validators (NULL: none).
 * SF_ENOMEM when curl_slist_append fails. */
static sf_status http__validators(const sf_http_poller *p, struct curl_slist **out, sf_error *err)
{
    *out = NULL;
    char line[SF_HTTP_VALIDATOR_MAX + 32];
    if (p->etag[0]) {
        snprintf(line, sizeof line, "If-None-Match: %s", p->etag);
        struct curl_slist *l = curl_slist_append(*out, line);
        if (!l)
            goto oom;
        *out = l;
    }
    if (p->last_modified[0]) {
        snprintf(line, sizeof line, "If-Modified-Since: %s", p->last_modified);
        struct curl_slist *l = curl_slist_append(*out, line);
        if (!l)
            goto oom;
        *out = l;
    }
    return SF_OK;
oom:
    curl_slist_free_all(*out);
    *out = NULL;
    return SF_ERR(err, SF_ENOMEM, "%s: out of memory (request headers)", p->shown);
}

/* A poll ended without a body: count it toward the breaker. */
static void http__breaker_fail(sf_http_poller *p, int64_t now_ms, bool trial)
{
    if (p->failures < INT_MAX)
        p->failures++;
    if (trial || p->failures >= p->o.breaker_failures) {
        if (!p->open && !trial)
            p->opened_flag = true;
        p->open = true;
        p->open_until_ms = http__add_sat(now_ms, p->o.breaker_cooldown_ms);
    }
}

sf_status sf_http_poller_fetch(sf_http_poller *p, int64_t now_ms, sf_poll_result *res, char **body,
                               size_t *len, sf_error *err)
{
    *res = SF_POLL_FAILED;
    *body = NULL;
    *len = 0;
    p->pending = false; /* an uncommitted body is fetched again */
    bool trial = false;
    if (p->open) {
        if (now_ms < p->open_until_ms) {
            *res = SF_POLL_CIRCUIT_OPEN;
            SF_ERR(err, SF_EUNAVAIL,
                   "%s: circuit open after %d failed polls; trial poll in %lld ms", p->shown,
                   p->failures, (long long)(p->open_until_ms - now_ms));
            return SF_OK;
        }
        trial = true;
    }
    if (http__stopped(p)) {
        SF_ERR(err, SF_EUNAVAIL, "%s: stopped, after 0 attempts", p->shown);
        return SF_OK;
    }
    p->polled = true;
    p->last_poll_ms = now_ms;

    struct curl_slist *hdrs = NULL;
    sf_status st = http__validators(p, &hdrs, err);
    if (st != SF_OK)
        return st;
    if (curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK) {
        st = SF_ERR(err, SF_EINTERNAL, "%s: curl refused the request headers", p->shown);
        goto done;
    }

    int max_attempts = trial ? 1 : p->o.retries + 1;
    int64_t start = http__mono_ms();
    int64_t deadline = start + (int64_t)p->o.timeout_ms * max_attempts;
    int64_t min_retry = p->o.timeout_ms / 2; /* an attempt with less is not worth making */
    http__outcome out;
    char note[128] = "";
    int attempt = 0;
    for (;;) {
        attempt++;
        int64_t left = deadline - http__mono_ms();
        int64_t budget = left < p->o.timeout_ms ? left : p->o.timeout_ms;
        if (budget < 1)
            budget = 1;
        if ((st = http__attempt(p, hdrs != NULL, budget, &out, err)) != SF_OK)
            goto done;
        if (out.ok || out.stopped || !out.transient || attempt == max_attempts)
            break;
        int64_t wait = http__backoff(p, attempt);
        if (out.retry_after_ms > SF_HTTP_BACKOFF_CAP_MS) {
            snprintf(note, sizeof note, "; no retry: Retry-After %lld s is over the %d s cap",
                     (long long)(out.retry_after_ms / 1000), SF_HTTP_BACKOFF_CAP_MS / 1000);
            break;
        }
        if (out.retry_after_ms > wait)
            wait = out.retry_after_ms;
        if (http__mono_ms() + wait + min_retry > deadline) {
            snprintf(note, sizeof note, "; no retry: the poll's %lld ms budget is spent",
                     (long long)(deadline - start));
            break;
        }
        if (!http__sleep(p, wait)) {
            out.stopped = true;
            snprintf(out.cause, sizeof out.cause, "stopped");
            break;
        }
    }

    if (out.ok && out.code == 304) {
        *res = SF_POLL_NOT_MODIFIED;
    } else if (out.ok) {
        if (!p->buf) { /* an empty body: still hand back a string */
            p->buf = malloc(1);
            if (!p->buf) {
                st = SF_ERR(err, SF_ENOMEM, "%s: out of memory", p->shown);
                goto done;
            }
        } else if (p->buf_cap > p->buf_len + 1) {
            char *fit = realloc(p->buf, p->buf_len + 1);
            if (fit)
                p->buf = fit;
        }
        p->buf[p->buf_len] = '\0';
        *body = p->buf;
        *len = p->buf_len;
        p->buf = NULL;
        p->buf_len = p->buf_cap = 0;
        p->pending = true;
        memcpy(p->pending_etag, p->r_etag, sizeof p->pending_etag);
        memcpy(p->pending_last_modified, p->r_last_modified, sizeof p->pending_last_modified);
        *res = SF_POLL_NEW;
    } else {
        SF_ERR(err, out.stopped ? SF_EUNAVAIL : out.kind, "%s: %s, after %d attempt%s%s", p->shown,
               out.cause, attempt, attempt == 1 ? "" : "s", note);
        if (!out.stopped)
            http__breaker_fail(p, now_ms, trial);
    }
    if (out.ok) {
        p->failures = 0;
        p->open = false;
    }
done:
    curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, NULL); /* hdrs is freed next */
    curl_slist_free_all(hdrs);
    free(p->buf); /* a failed attempt's partial body: don't hold it between polls */
    p->buf = NULL;
    p->buf_len = p->buf_cap = 0;
    return st;
}

void sf_http_poller_commit(sf_http_poller *p)
{
    if (!p->pending)
        return;
    memcpy(p->etag, p->pending_etag, sizeof p->etag);
    memcpy(p->last_modified, p->pending_last_modified, sizeof p->last_modified);
    p->pending = false;
}

int64_t sf_http_poller_next_at(const sf_http_poller *p)
{
    if (p->open)
        return p->open_until_ms;
    if (!p->polled)
        return 0;
    return http__add_sat(p->last_poll_ms, p->o.interval_ms);
}

sf_circuit_state sf_http_poller_circuit(const sf_http_poller *p, int64_t now_ms)
{
    if (!p->open)
        return SF_CIRCUIT_CLOSED;
    return now_ms < p->open_until_ms ? SF_CIRCUIT_OPEN : SF_CIRCUIT_HALF_OPEN;
}

bool sf_http_poller_circuit_opened(sf_http_poller *p)
{
    bool was = p->opened_flag;
    p->opened_flag = false;
    return was;
}

int sf_http_poller_failures(const sf_http_poller *p)
{
    return p->failures;
}
