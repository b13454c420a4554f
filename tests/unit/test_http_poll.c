/*
 * test_http_poll: the http supplier poller (suppliers/http_poll.c) against
 * a real HTTP server on 127.0.0.1: a libevent evhttp server on an
 * ephemeral port, in its own thread with its own event_base, answering
 * from a per-test script (status, headers, body, delay, chunked) and
 * recording every request (method, URI, If-None-Match, If-Modified-Since,
 * User-Agent). Covered: validators sent only after commit, 304, retries
 * that recover, give up, or stop for a Retry-After over the cap, timeouts,
 * max_body (Content-Length and chunked), 4xx not retried, redirects, the
 * circuit breaker (no request while open, half-open trial closing or
 * re-opening it), exact next_at values on the caller's clock, the stop
 * flag, URL credentials kept out of messages, and configure() with
 * "path:line: [section] key: reason" errors.
 *
 * The server and libcurl's global state are set up in .init, before the
 * leak guard's baseline, and torn down in .fini; the server waits for its
 * delayed replies before it stops so nothing is left allocated.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../suppliers/adapter.h"
#include "../../suppliers/http_poll.h"
#include "config.h"
#include "leak_guard.h"

/* --- the scripted server ------------------------------------------------------- */

#define SCRIPT_MAX 32
#define SEEN_MAX 64

typedef struct reply {
    int status;
    const char *headers; /* "Name: value\n" lines, or NULL */
    const char *body;    /* NULL: body_len bytes of 'x' */
    size_t body_len;
    int delay_ms;
    int chunked;
} reply;

typedef struct seen {
    char method[8];
    char uri[256];
    char inm[320]; /* If-None-Match, "" when absent */
    char ims[320]; /* If-Modified-Since */
    char ua[128];
} seen;

static struct server {
    struct event_base *base;
    struct evhttp *http;
    struct event *tick;
    pthread_t thread;
    int port;
    char url[128]; /* http://127.0.0.1:PORT/feed */
    pthread_mutex_t mu;
    reply script[SCRIPT_MAX];
    size_t n_script, next;
    seen seen[SEEN_MAX];
    size_t n_seen;
    int pending; /* delayed replies not sent yet */
    int stopping;
} srv;

typedef struct delayed {
    struct evhttp_request *req;
    reply r;
} delayed;

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 404: return "Not Found";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

static void add_body(struct evbuffer *b, const reply *r, size_t from, size_t to)
{
    static char xs[4096]; /* only the server thread uses it */
    if (!xs[0])
        memset(xs, 'x', sizeof xs);
    if (r->body) {
        evbuffer_add(b, r->body + from, to - from);
        return;
    }
    for (size_t at = from; at < to;) {
        size_t n = to - at < sizeof xs ? to - at : sizeof xs;
        evbuffer_add(b, xs, n);
        at += n;
    }
}

static void srv_send(struct evhttp_request *req, const reply *r)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    for (const char *h = r->headers; h && *h;) {
        const char *eol = strchr(h, '\n');
        size_t n = eol ? (size_t)(eol - h) : strlen(h);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)n, h);
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            evhttp_add_header(out, line, colon + 1 + (colon[1] == ' '));
        }
        h += n + (eol ? 1 : 0);
    }
    size_t len = r->body ? strlen(r->body) : r->body_len;
    struct evbuffer *b = evbuffer_new();
    if (r->chunked) {
        evhttp_send_reply_start(req, r->status, reason_of(r->status));
        for (size_t at = 0; at < len; at += 1024) {
            add_body(b, r, at, at + 1024 < len ? at + 1024 : len);
            evhttp_send_reply_chunk(req, b);
        }
        evhttp_send_reply_end(req);
    } else {
        add_body(b, r, 0, len);
        evhttp_send_reply(req, r->status, reason_of(r->status), b);
    }
    evbuffer_free(b);
}

static void srv_delayed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    delayed *d = arg;
    srv_send(d->req, &d->r);
    free(d);
    pthread_mutex_lock(&srv.mu);
    srv.pending--;
    pthread_mutex_unlock(&srv.mu);
}

static void copy_header(char *dst, size_t cap, struct evhttp_request *req, const char *name)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
    snprintf(dst, cap, "%s", v ? v : "");
}

static void srv_handle(struct evhttp_request *req, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&srv.mu);
    if (srv.n_seen < SEEN_MAX) {
        seen *s = &srv.seen[srv.n_seen++];
        snprintf(s->method, sizeof s->method, "%s",
                 evhttp_request_get_command(req) == EVHTTP_REQ_GET ? "GET" : "OTHER");
        snprintf(s->uri, sizeof s->uri, "%s", evhttp_request_get_uri(req));
        copy_header(s->inm, sizeof s->inm, req, "If-None-Match");
        copy_header(s->ims, sizeof s->ims, req, "If-Modified-Since");
        copy_header(s->ua, sizeof s->ua, req, "User-Agent");
    }
    reply r = {.status = 500, .body = "unscripted request\n"};
    if (srv.next < srv.n_script)
        r = srv.script[srv.next++];
    if (r.delay_ms > 0)
        srv.pending++;
    pthread_mutex_unlock(&srv.mu);
    if (r.delay_ms <= 0) {
        srv_send(req, &r);
        return;
    }
    delayed *d = malloc(sizeof *d);
    if (!d)
        abort(); /* no Criterion assertions off the test's thread */
    d->req = req;
    d->r = r;
    struct timeval tv = {r.delay_ms / 1000, (r.delay_ms % 1000) * 1000};
    if (event_base_once(srv.base, -1, EV_TIMEOUT, srv_delayed, d, &tv) != 0)
        abort();
}

/* Every 5 ms: leave the loop once asked to and no delayed reply is due. */
static void srv_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    pthread_mutex_lock(&srv.mu);
    int done = srv.stopping && srv.pending == 0;
    pthread_mutex_unlock(&srv.mu);
    if (done)
        event_base_loopbreak(srv.base);
}

static void *srv_main(void *arg)
{
    (void)arg;
    event_base_dispatch(srv.base);
    return NULL;
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* a reply to a client that timed out and left */
    sf_error err;
    cr_assert(sf_http_global_init(&err) == SF_OK, "%s", err.msg);
    memset(&srv, 0, sizeof srv);
    pthread_mutex_init(&srv.mu, NULL);
    srv.base = event_base_new();
    cr_assert(srv.base);
    srv.http = evhttp_new(srv.base);
    cr_assert(srv.http);
    evhttp_set_gencb(srv.http, srv_handle, NULL);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(srv.http, "127.0.0.1", 0);
    cr_assert(bs, "bind 127.0.0.1:0 failed");
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    cr_assert(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl) == 0);
    srv.port = ntohs(sa.sin_port);
    snprintf(srv.url, sizeof srv.url, "http://127.0.0.1:%d/feed", srv.port);
    srv.tick = event_new(srv.base, -1, EV_PERSIST, srv_tick, NULL);
    struct timeval tv = {0, 5000};
    cr_assert(srv.tick && event_add(srv.tick, &tv) == 0);
    cr_assert(pthread_create(&srv.thread, NULL, srv_main, NULL) == 0);
}

static void teardown(void)
{
    pthread_mutex_lock(&srv.mu);
    srv.stopping = 1;
    pthread_mutex_unlock(&srv.mu);
    pthread_join(srv.thread, NULL);
    evhttp_free(srv.http);
    event_free(srv.tick);
    event_base_free(srv.base);
    pthread_mutex_destroy(&srv.mu);
    sf_http_global_cleanup();
}

static void script(const reply *r, size_t n)
{
    pthread_mutex_lock(&srv.mu);
    for (size_t i = 0; i < n; i++) {
        cr_assert(srv.n_script < SCRIPT_MAX);
        srv.script[srv.n_script++] = r[i];
    }
    pthread_mutex_unlock(&srv.mu);
}
#define SCRIPT(...)                                                                                \
    do {                                                                                           \
        const reply rs__[] = {__VA_ARGS__};                                                        \
        script(rs__, sizeof rs__ / sizeof rs__[0]);                                                \
    } while (0)

static size_t requests(void)
{
    pthread_mutex_lock(&srv.mu);
    size_t n = srv.n_seen;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

/* A copy of request i (0-based). */
static seen request(size_t i)
{
    pthread_mutex_lock(&srv.mu);
    cr_assert(i < srv.n_seen, "request %zu never came (%zu seen)", i, srv.n_seen);
    seen s = srv.seen[i];
    pthread_mutex_unlock(&srv.mu);
    return s;
}

/* --- poller helpers --------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Options for the test server: quick timeouts and backoff. */
static sf_http_poll_opts opts(void)
{
    sf_http_poll_opts o;
    sf_http_poll_opts_init(&o);
    snprintf(o.url, sizeof o.url, "%s", srv.url);
    o.interval_ms = 1000;
    o.timeout_ms = 300;
    o.retries = 0;
    o.backoff_ms = 10;
    o.breaker_failures = 3;
    o.breaker_cooldown_ms = 10000;
    return o;
}

static sf_http_poller *poller(const sf_http_poll_opts *o)
{
    sf_http_poller *p = NULL;
    sf_error err;
    cr_assert(sf_http_poller_new(o, &p, &err) == SF_OK, "new: %s", err.msg);
    cr_assert(p);
    return p;
}

/* One fetch that must give `want`; returns the body (NULL unless NEW). */
static char *fetch(sf_http_poller *p, int64_t now, sf_poll_result want, size_t *len, sf_error *err)
{
    sf_poll_result res = (sf_poll_result)-1;
    char *body = (char *)1;
    size_t n = 12345;
    sf_status st = sf_http_poller_fetch(p, now, &res, &body, &n, err);
    cr_assert(st == SF_OK, "fetch status %d: %s", (int)st, err->msg);
    cr_assert(res == want, "result %d, want %d (%s)", (int)res, (int)want, err->msg);
    if (want == SF_POLL_NEW) {
        cr_assert(body, "NEW without a body");
        cr_assert(body[n] == '\0', "body not NUL-terminated");
    } else {
        cr_assert(body == NULL && n == 0, "a body with result %d", (int)res);
    }
    if (len)
        *len = n;
    return body;
}

static void fetch_body(sf_http_poller *p, int64_t now, const char *want)
{
    sf_error err;
    size_t n;
    char *body = fetch(p, now, SF_POLL_NEW, &n, &err);
    cr_assert(n == strlen(want) && strcmp(body, want) == 0, "body '%s', want '%s'", body, want);
    free(body);
}

static void fetch_fails(sf_http_poller *p, int64_t now, const char *want_msg, sf_status kind)
{
    sf_error err;
    fetch(p, now, SF_POLL_FAILED, NULL, &err);
    cr_assert(strcmp(err.msg, want_msg) == 0, "\n  got:  %s\n  want: %s", err.msg, want_msg);
    cr_assert(err.status == kind, "err.status %d, want %d", (int)err.status, (int)kind);
}

/* The message begins with prefix and holds part. */
static void fetch_fails_like(sf_http_poller *p, int64_t now, const char *prefix, const char *part)
{
    sf_error err;
    fetch(p, now, SF_POLL_FAILED, NULL, &err);
    cr_assert(strncmp(err.msg, prefix, strlen(prefix)) == 0, "\n  got:  %s\n  want: %s...", err.msg,
              prefix);
    cr_assert(strstr(err.msg, part), "'%s' lacks '%s'", err.msg, part);
}

static char *msg(const char *fmt, const char *cause)
{
    static char buf[SF_ERROR_MSG_MAX];
    snprintf(buf, sizeof buf, fmt, srv.url, cause);
    return buf;
}

#define ETAG_V1 "ETag: \"v1\"\n"
#define LM_DATE "Tue, 24 Nov 2026 10:00:00 GMT"

/* --- validators and conditional GET ----------------------------------------------- */

LEAK_TEST(http_poll, etag_is_sent_only_after_commit, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 200, .headers = ETAG_V1, .body = "line 1\n"},
           {.status = 200, .headers = ETAG_V1, .body = "line 1\n"},
           {.status = 304, .headers = ETAG_V1, .body = ""});
    sf_http_poll_opts o = opts();
    sf_http_poller *p = poller(&o);
    fetch_body(p, 1000, "line 1\n");
    seen s = request(0);
    cr_assert(strcmp(s.method, "GET") == 0 && strcmp(s.uri, "/feed") == 0);
    cr_assert(strcmp(s.ua, "stockflow-inv-supplier/0.1") == 0, "user agent '%s'", s.ua);
    cr_assert(strcmp(s.inm, "") == 0 && strcmp(s.ims, "") == 0);

    /* not committed (say the process failed before publishing): fetched again */
    fetch_body(p, 2000, "line 1\n");
    cr_assert(strcmp(request(1).inm, "") == 0, "If-None-Match sent before commit");
    sf_http_poller_commit(p);

    sf_error err;
    fetch(p, 3000, SF_POLL_NOT_MODIFIED, NULL, &err);
    cr_assert(strcmp(request(2).inm, "\"v1\"") == 0, "If-None-Match '%s'", request(2).inm);
    cr_assert(strcmp(request(2).ims, "") == 0);
    cr_assert(requests() == 3);
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, last_modified_becomes_if_modified_since, .init = setup, .fini = teardown)
{
    SCRIPT(
        {.status = 200, .headers = "Last-Modified: " LM_DATE "\n", .body = "a,1\n"},
        {.status = 304, .body = ""},
        {.status = 200, .headers = "ETag: W/\"2\"\nLast-Modified: " LM_DATE "\n", .body = "a,2\n"},
        {.status = 200, .body = "a,3\n"}, {.status = 200, .body = "a,3\n"});
    sf_http_poll_opts o = opts();
    sf_http_poller *p = poller(&o);
    sf_error err;
    fetch_body(p, 0, "a,1\n");
    sf_http_poller_commit(p);
    fetch(p, 1000, SF_POLL_NOT_MODIFIED, NULL, &err);
    cr_assert(strcmp(request(1).ims, LM_DATE) == 0, "If-Modified-Since '%s'", request(1).ims);
    cr_assert(strcmp(request(1).inm, "") == 0);

    /* 304 keeps the validators; a server that sends a new body anyway */
    fetch_body(p, 2000, "a,2\n");
    cr_assert(strcmp(request(2).ims, LM_DATE) == 0);
    sf_http_poller_commit(p);
    fetch_body(p, 3000, "a,3\n");
    cr_assert(strcmp(request(3).inm, "W/\"2\"") == 0, "weak ETag sent as received");
    cr_assert(strcmp(request(3).ims, LM_DATE) == 0);
    /* that body had no validators: committing it forgets the old ones */
    sf_http_poller_commit(p);
    fetch_body(p, 4000, "a,3\n");
    cr_assert(strcmp(request(4).inm, "") == 0 && strcmp(request(4).ims, "") == 0);
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, commit_without_a_new_body_changes_nothing, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 200, .headers = ETAG_V1, .body = "x"}, {.status = 304, .body = ""},
           {.status = 304, .body = ""});
    sf_http_poll_opts o = opts();
    sf_http_poller *p = poller(&o);
    sf_error err;
    fetch_body(p, 0, "x");
    sf_http_poller_commit(p);
    sf_http_poller_commit(p); /* twice: harmless */
    fetch(p, 1000, SF_POLL_NOT_MODIFIED, NULL, &err);
    sf_http_poller_commit(p); /* after a 304: nothing pending */
    fetch(p, 2000, SF_POLL_NOT_MODIFIED, NULL, &err);
    cr_assert(strcmp(request(2).inm, "\"v1\"") == 0);
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, a_304_to_an_unconditional_get_is_a_failure, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 304, .body = ""});
    sf_http_poll_opts o = opts();
    sf_http_poller *p = poller(&o);
    fetch_fails(p, 0, msg("%s: %s, after 1 attempt", "HTTP 304 to a request without validators"),
                SF_EINVAL);
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, an_empty_body_is_an_empty_string, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 200, .body = ""});
    sf_http_poll_opts o = opts();
    sf_http_poller *p = poller(&o);
    fetch_body(p, 0, "");
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, a_large_chunked_body_arrives_whole, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 200, .body_len = 300000, .chunked = 1});
    sf_http_poll_opts o = opts();
    sf_http_poller *p = poller(&o);
    sf_error err;
    size_t n;
    char *body = fetch(p, 0, SF_POLL_NEW, &n, &err);
    cr_assert(n == 300000 && strspn(body, "x") == 300000);
    free(body);
    sf_http_poller_free(p);
}

/* --- retries within a poll ------------------------------------------------------- */

LEAK_TEST(http_poll, retries_recover_from_500s, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 500, .body = "oops"}, {.status = 500, .body = "oops"},
           {.status = 200, .body = "ok\n"});
    sf_http_poll_opts o = opts();
    o.retries = 3;
    sf_http_poller *p = poller(&o);
    fetch_body(p, 0, "ok\n");
    cr_assert(requests() == 3);
    cr_assert(sf_http_poller_failures(p) == 0);
    cr_assert(sf_http_poller_next_at(p) == 1000);
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, retries_exhausted_fail_the_poll, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 503, .body = ""}, {.status = 503, .body = ""}, {.status = 503, .body = ""},
           {.status = 200, .body = "late"});
    sf_http_poll_opts o = opts();
    o.retries = 2;
    sf_http_poller *p = poller(&o);
    fetch_fails(p, 0, msg("%s: %s, after 3 attempts", "HTTP 503"), SF_EUNAVAIL);
    cr_assert(requests() == 3);
    cr_assert(sf_http_poller_failures(p) == 1);
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, not_found_is_not_retried, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 404, .body = "no such feed"}, {.status = 200, .body = "never"});
    sf_http_poll_opts o = opts();
    o.retries = 3;
    sf_http_poller *p = poller(&o);
    fetch_fails(p, 0, msg("%s: %s, after 1 attempt", "HTTP 404"), SF_EINVAL);
    cr_assert(requests() == 1);
    cr_assert(sf_http_poller_failures(p) == 1, "a 4xx counts toward the breaker");
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, a_slow_response_times_out_and_is_retried, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 200, .body = "slow", .delay_ms = 350},
           {.status = 200, .body = "slow", .delay_ms = 350});
    sf_http_poll_opts o = opts();
    o.timeout_ms = 200;
    o.retries = 1;
    sf_http_poller *p = poller(&o);
    int64_t t0 = mono_ms();
    fetch_fails_like(p, 0, msg("%s: %s", "timeout after "), ", after 2 attempts");
    int64_t took = mono_ms() - t0;
    cr_assert(took >= 200 && took <= 2 * 200 + 400, "the poll took %lld ms", (long long)took);
    cr_assert(requests() == 2);
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, a_timeout_names_the_cause_and_status, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 200, .body = "slow", .delay_ms = 300});
    sf_http_poll_opts o = opts();
    o.timeout_ms = 150;
    sf_http_poller *p = poller(&o);
    sf_error err;
    fetch(p, 0, SF_POLL_FAILED, NULL, &err);
    cr_assert(strstr(err.msg, srv.url) && strstr(err.msg, "timeout after 150 ms"), "%s", err.msg);
    cr_assert(err.status == SF_ETIMEOUT);
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, retry_after_within_the_cap_is_honoured, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 429, .headers = "Retry-After: 1\n", .body = ""},
           {.status = 200, .body = "ok"});
    sf_http_poll_opts o = opts();
    o.retries = 1;
    o.timeout_ms = 2000;
    sf_http_poller *p = poller(&o);
    int64_t t0 = mono_ms();
    fetch_body(p, 0, "ok");
    int64_t took = mono_ms() - t0;
    cr_assert(took >= 1000 && took < 2000, "waited %lld ms for Retry-After: 1", (long long)took);
    cr_assert(requests() == 2);
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, retry_after_over_the_cap_ends_the_poll, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 429, .headers = "Retry-After: 120\n", .body = ""},
           {.status = 200, .body = "too soon"});
    sf_http_poll_opts o = opts();
    o.retries = 3;
    sf_http_poller *p = poller(&o);
    fetch_fails(p, 0,
                msg("%s: %s, after 1 attempt; no retry: Retry-After 120 s is over the 30 s cap",
                    "HTTP 429"),
                SF_EUNAVAIL);
    cr_assert(requests() == 1);
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, a_refused_connection_is_retried, .init = setup, .fini = teardown)
{
    /* a port with nothing listening: bind one, note it, close it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    close(fd);
    sf_http_poll_opts o = opts();
    snprintf(o.url, sizeof o.url, "http://127.0.0.1:%d/feed", ntohs(sa.sin_port));
    o.retries = 2;
    sf_http_poller *p = poller(&o);
    char prefix[SF_HTTP_URL_MAX + 32];
    snprintf(prefix, sizeof prefix, "%s: curl error 7: ", o.url);
    fetch_fails_like(p, 0, prefix, ", after 3 attempts");
    sf_http_poller_free(p);
}

/* --- bounds ----------------------------------------------------------------------- */

LEAK_TEST(http_poll, a_body_of_max_body_bytes_is_accepted, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 200, .body_len = 1000}, {.status = 200, .body_len = 1000, .chunked = 1});
    sf_http_poll_opts o = opts();
    o.max_body = 1000;
    sf_http_poller *p = poller(&o);
    sf_error err;
    size_t n;
    for (int i = 0; i < 2; i++) {
        char *body = fetch(p, i * 1000, SF_POLL_NEW, &n, &err);
        cr_assert(n == 1000 && strspn(body, "x") == 1000);
        free(body);
    }
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, a_larger_body_fails_without_retry, .init = setup, .fini = teardown)
{
    /* one announced by Content-Length, one chunked (counted as it arrives) */
    SCRIPT({.status = 200, .body_len = 1001}, {.status = 200, .body_len = 50000, .chunked = 1});
    sf_http_poll_opts o = opts();
    o.max_body = 1000;
    o.retries = 2;
    sf_http_poller *p = poller(&o);
    const char *want = msg("%s: %s, after 1 attempt", "body larger than max_body (1000 bytes)");
    fetch_fails(p, 0, want, SF_EINVAL);
    cr_assert(requests() == 1);
    fetch_fails(p, 1000, want, SF_EINVAL);
    cr_assert(requests() == 2);
    cr_assert(sf_http_poller_failures(p) == 2);
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, redirects_are_followed_up_to_three, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 302, .headers = "Location: /moved\n", .body = ""},
           {.status = 200, .body = "here"},
           {.status = 302, .headers = "Location: /a\n", .body = ""},
           {.status = 302, .headers = "Location: /b\n", .body = ""},
           {.status = 302, .headers = "Location: /c\n", .body = ""},
           {.status = 302, .headers = "Location: /d\n", .body = ""},
           {.status = 302, .headers = "Location: ftp://127.0.0.1/feed\n", .body = ""});
    sf_http_poll_opts o = opts();
    sf_http_poller *p = poller(&o);
    fetch_body(p, 0, "here");
    cr_assert(strcmp(request(1).uri, "/moved") == 0);
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%s: curl error 47: ", srv.url);
    fetch_fails_like(p, 1000, prefix, ", after 1 attempt"); /* too many redirects */
    cr_assert(requests() == 6);
    snprintf(prefix, sizeof prefix, "%s: curl error 1: ", srv.url);
    fetch_fails_like(p, 2000, prefix, ", after 1 attempt"); /* not http(s) */
    cr_assert(requests() == 7);
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, credentials_in_the_url_stay_out_of_messages, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 404, .body = ""});
    sf_http_poll_opts o = opts();
    snprintf(o.url, sizeof o.url, "http://feeduser:s3cret@127.0.0.1:%d/feed", srv.port);
    sf_http_poller *p = poller(&o);
    char want[256];
    snprintf(want, sizeof want, "http://***@127.0.0.1:%d/feed: HTTP 404, after 1 attempt",
             srv.port);
    fetch_fails(p, 0, want, SF_EINVAL);
    sf_http_poller_free(p);
}

/* --- schedule and circuit breaker ------------------------------------------------- */

LEAK_TEST(http_poll, next_at_is_last_poll_plus_interval, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 200, .body = "a"}, {.status = 500, .body = ""}, {.status = 304, .body = ""});
    sf_http_poll_opts o = opts();
    o.interval_ms = 60000;
    sf_http_poller *p = poller(&o);
    cr_assert(sf_http_poller_next_at(p) == 0, "due at once before the first poll");
    fetch_body(p, 5000, "a");
    cr_assert(sf_http_poller_next_at(p) == 65000);
    sf_error err;
    fetch(p, 65007, SF_POLL_FAILED, NULL, &err); /* a failure keeps the interval */
    cr_assert(sf_http_poller_next_at(p) == 125007);
    cr_assert(sf_http_poller_circuit(p, 125007) == SF_CIRCUIT_CLOSED);
    fetch_fails(p, 125007,
                msg("%s: %s, after 1 attempt", "HTTP 304 to a request without validators"),
                SF_EINVAL);
    cr_assert(sf_http_poller_next_at(p) == 185007);
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, breaker_opens_then_a_trial_closes_it, .init = setup, .fini = teardown)
{
    /* retries = 1: a normal poll makes 2 attempts, a half-open trial only 1 */
    SCRIPT({.status = 500, .body = ""}, {.status = 500, .body = ""}, {.status = 500, .body = ""},
           {.status = 500, .body = ""}, {.status = 502, .body = ""}, {.status = 502, .body = ""},
           {.status = 503, .body = ""}, {.status = 200, .body = "back"});
    sf_http_poll_opts o = opts();
    o.retries = 1;
    sf_http_poller *p = poller(&o);
    sf_error err;
    fetch(p, 1000, SF_POLL_FAILED, NULL, &err);
    fetch(p, 2000, SF_POLL_FAILED, NULL, &err);
    cr_assert(sf_http_poller_circuit(p, 2000) == SF_CIRCUIT_CLOSED);
    cr_assert(!sf_http_poller_circuit_opened(p));
    cr_assert(sf_http_poller_next_at(p) == 3000);
    fetch(p, 3000, SF_POLL_FAILED, NULL, &err); /* the third failed poll opens it */
    cr_assert(requests() == 6);
    cr_assert(sf_http_poller_failures(p) == 3);
    cr_assert(sf_http_poller_circuit(p, 3000) == SF_CIRCUIT_OPEN);
    cr_assert(sf_http_poller_next_at(p) == 13000);
    cr_assert(sf_http_poller_circuit_opened(p), "the opening is reported");
    cr_assert(!sf_http_poller_circuit_opened(p), "once");

    fetch(p, 3001, SF_POLL_CIRCUIT_OPEN, NULL, &err);
    cr_assert(err.status == SF_EUNAVAIL && strstr(err.msg, "circuit open"), "%s", err.msg);
    fetch(p, 12999, SF_POLL_CIRCUIT_OPEN, NULL, &err);
    cr_assert(requests() == 6, "no request while open");
    cr_assert(sf_http_poller_circuit(p, 12999) == SF_CIRCUIT_OPEN);
    cr_assert(sf_http_poller_circuit(p, 13000) == SF_CIRCUIT_HALF_OPEN);

    /* the trial at the end of the cooldown fails: one request, re-opened */
    fetch_fails(p, 13000, msg("%s: %s, after 1 attempt", "HTTP 503"), SF_EUNAVAIL);
    cr_assert(requests() == 7);
    cr_assert(sf_http_poller_circuit(p, 13000) == SF_CIRCUIT_OPEN);
    cr_assert(sf_http_poller_next_at(p) == 23000);
    cr_assert(!sf_http_poller_circuit_opened(p), "a failed trial is the same outage");
    fetch(p, 20000, SF_POLL_CIRCUIT_OPEN, NULL, &err);
    cr_assert(requests() == 7);

    /* the next trial succeeds: closed, counters reset, back to the interval */
    fetch_body(p, 23050, "back");
    cr_assert(requests() == 8);
    cr_assert(sf_http_poller_circuit(p, 23050) == SF_CIRCUIT_CLOSED);
    cr_assert(sf_http_poller_failures(p) == 0);
    cr_assert(sf_http_poller_next_at(p) == 24050);
    sf_http_poller_free(p);
}

LEAK_TEST(http_poll, not_modified_closes_and_resets_like_a_success, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 200, .headers = ETAG_V1, .body = "a"}, {.status = 500, .body = ""},
           {.status = 500, .body = ""}, {.status = 304, .body = ""}, {.status = 500, .body = ""},
           {.status = 500, .body = ""});
    sf_http_poll_opts o = opts();
    sf_http_poller *p = poller(&o);
    sf_error err;
    fetch_body(p, 0, "a");
    sf_http_poller_commit(p);
    fetch(p, 1000, SF_POLL_FAILED, NULL, &err);
    fetch(p, 2000, SF_POLL_FAILED, NULL, &err);
    cr_assert(sf_http_poller_failures(p) == 2);
    fetch(p, 3000, SF_POLL_NOT_MODIFIED, NULL, &err);
    cr_assert(sf_http_poller_failures(p) == 0);
    fetch(p, 4000, SF_POLL_FAILED, NULL, &err);
    fetch(p, 5000, SF_POLL_FAILED, NULL, &err);
    cr_assert(sf_http_poller_circuit(p, 5000) == SF_CIRCUIT_CLOSED, "2 < breaker_failures 3");
    sf_http_poller_free(p);
}

/* --- stopping ---------------------------------------------------------------------- */

LEAK_TEST(http_poll, a_set_stop_flag_makes_no_request, .init = setup, .fini = teardown)
{
    volatile sig_atomic_t stop = 1;
    sf_http_poll_opts o = opts();
    o.stop = &stop;
    sf_http_poller *p = poller(&o);
    fetch_fails(p, 0, msg("%s: %s, after 0 attempts", "stopped"), SF_EUNAVAIL);
    cr_assert(requests() == 0);
    cr_assert(sf_http_poller_failures(p) == 0, "stopping is not the supplier's failure");
    cr_assert(sf_http_poller_next_at(p) == 0);
    sf_http_poller_free(p);
}

static volatile sig_atomic_t stop_flag;

static void *stop_later(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 150 * 1000000L};
    nanosleep(&ts, NULL);
    stop_flag = 1;
    return NULL;
}

LEAK_TEST(http_poll, stop_interrupts_a_backoff_sleep, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 500, .body = ""}, {.status = 200, .body = "never"});
    sf_http_poll_opts o = opts();
    o.retries = 1;
    o.timeout_ms = 20000;
    o.backoff_ms = 10000; /* 5 to 10 s of sleep, unless stopped */
    stop_flag = 0;
    o.stop = &stop_flag;
    sf_http_poller *p = poller(&o);
    pthread_t t;
    cr_assert(pthread_create(&t, NULL, stop_later, NULL) == 0);
    int64_t t0 = mono_ms();
    fetch_fails(p, 0, msg("%s: %s, after 1 attempt", "stopped"), SF_EUNAVAIL);
    int64_t took = mono_ms() - t0;
    pthread_join(t, NULL);
    cr_assert(took < 1000, "stopping took %lld ms", (long long)took);
    cr_assert(requests() == 1);
    cr_assert(sf_http_poller_failures(p) == 0);
    sf_http_poller_free(p);
}

/* --- options and configuration ---------------------------------------------------- */

LEAK_TEST(http_poll, new_refuses_bad_options, .init = setup, .fini = teardown)
{
    struct {
        const char *url;
        void (*tweak)(sf_http_poll_opts *);
        const char *msg;
    } cases[] = {
        {"ftp://127.0.0.1/feed", NULL, "http poller: url is not an http:// or https:// URL"},
        {"", NULL, "http poller: url is empty"},
        {"http:///feed", NULL, "http poller: url has no host"},
        {"http://a b/", NULL, "http poller: url holds a blank or a control character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sf_http_poll_opts o = opts();
        snprintf(o.url, sizeof o.url, "%s", cases[i].url);
        sf_http_poller *p = (sf_http_poller *)1;
        sf_error err;
        cr_assert(sf_http_poller_new(&o, &p, &err) == SF_EINVAL, "accepted %s", cases[i].url);
        cr_assert(p == NULL);
        cr_assert(strcmp(err.msg, cases[i].msg) == 0, "\n  got:  %s\n  want: %s", err.msg,
                  cases[i].msg);
    }
    sf_http_poll_opts o = opts();
    memset(o.url, 'a', sizeof o.url);
    memcpy(o.url, "http://", 7);
    sf_http_poller *p = NULL;
    sf_error err;
    cr_assert(sf_http_poller_new(&o, &p, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "http poller: url is longer than 1024 bytes") == 0, "%s", err.msg);
    o = opts();
    o.max_body = 0;
    cr_assert(sf_http_poller_new(&o, &p, &err) == SF_EINVAL);
    o = opts();
    o.max_body = SF_FEED_MAX_BYTES + 1;
    cr_assert(sf_http_poller_new(&o, &p, &err) == SF_EINVAL);
    o = opts();
    o.timeout_ms = 0;
    cr_assert(sf_http_poller_new(&o, &p, &err) == SF_EINVAL);
    o = opts();
    o.retries = -1;
    cr_assert(sf_http_poller_new(&o, &p, &err) == SF_EINVAL);
    o = opts();
    o.breaker_failures = 0;
    cr_assert(sf_http_poller_new(&o, &p, &err) == SF_EINVAL);
    cr_assert(p == NULL);
}

static char ini_path[64];

static sf_status configure(const char *ini, sf_http_poll_opts *out, sf_error *err)
{
    snprintf(ini_path, sizeof ini_path, "/tmp/sf-test-http-XXXXXX");
    int fd = mkstemp(ini_path);
    cr_assert(fd >= 0, "mkstemp failed");
    size_t n = strlen(ini);
    cr_assert(write(fd, ini, n) == (ssize_t)n);
    close(fd);
    sf_config cfg;
    sf_config_init(&cfg);
    sf_error lerr;
    cr_assert(sf_config_load(&cfg, ini_path, &lerr) == SF_OK, "config: %s", lerr.msg);
    sf_status st = sf_http_poll_configure(&cfg, "supplier.t", out, err);
    sf_config_free(&cfg);
    unlink(ini_path);
    return st;
}

static void config_error(const char *ini, int line, const char *suffix)
{
    sf_http_poll_opts o;
    memset(&o, 0x5a, sizeof o);
    sf_error err;
    cr_assert(configure(ini, &o, &err) == SF_EINVAL, "configure accepted:\n%s", ini);
    cr_assert(o.retries == 0x5a5a5a5a, "*out written on failure");
    char want[SF_ERROR_MSG_MAX];
    snprintf(want, sizeof want, "%s:%d: [supplier.t] %s", ini_path, line, suffix);
    cr_assert(strcmp(err.msg, want) == 0, "\n  got:  %s\n  want: %s", err.msg, want);
}

LEAK_TEST(http_poll_config, defaults, .init = setup, .fini = teardown)
{
    sf_http_poll_opts o;
    sf_error err;
    cr_assert(configure("[supplier.t]\nformat = http\nurl = https://feeds.example/s.jsonl\n", &o,
                        &err) == SF_OK,
              "%s", err.msg);
    cr_assert(strcmp(o.url, "https://feeds.example/s.jsonl") == 0);
    cr_assert(o.interval_ms == 300000 && o.timeout_ms == 30000 && o.retries == 3);
    cr_assert(o.backoff_ms == 500 && o.breaker_failures == 5);
    cr_assert(o.breaker_cooldown_ms == 300000 && o.max_body == SF_FEED_MAX_BYTES);
    cr_assert(o.stop == NULL);
    size_t n = 0;
    while (sf_http_poll_keys[n])
        n++;
    cr_assert(n == 7);
    cr_assert(strcmp(sf_http_poll_keys[0], "url") == 0);
    cr_assert(strcmp(sf_http_poll_keys[6], "breaker_cooldown") == 0);
}

LEAK_TEST(http_poll_config, every_key, .init = setup, .fini = teardown)
{
    sf_http_poll_opts o;
    sf_error err;
    cr_assert(configure("[supplier.t]\nurl = HTTP://127.0.0.1:8080/x?since=1\ninterval = 60\n"
                        "timeout = 5\nretries = 0\nbackoff_ms = 250\nbreaker_failures = 2\n"
                        "breaker_cooldown = 900\n",
                        &o, &err) == SF_OK,
              "%s", err.msg);
    cr_assert(strcmp(o.url, "HTTP://127.0.0.1:8080/x?since=1") == 0);
    cr_assert(o.interval_ms == 60000 && o.timeout_ms == 5000 && o.retries == 0);
    cr_assert(o.backoff_ms == 250 && o.breaker_failures == 2 && o.breaker_cooldown_ms == 900000);
}

LEAK_TEST(http_poll_config, errors_cite_path_line_section_key, .init = setup, .fini = teardown)
{
    config_error("[supplier.t]\nformat = http\n", 2,
                 "url: is required (an http:// or https:// URL)");
    config_error("[supplier.t]\nformat = http\nurl = ftp://example.com/feed\n", 3,
                 "url: is not an http:// or https:// URL");
    config_error("[supplier.t]\nurl = file:///etc/passwd\n", 2,
                 "url: is not an http:// or https:// URL");
    config_error("[supplier.t]\nurl = http://\n", 2, "url: has no host");
    config_error("[supplier.t]\nurl = http://host:99999/\n", 2,
                 "url: is not a valid URL (scheme://host[:port]/path)");
    config_error("[supplier.t]\nurl = http://h/\ninterval = 0\n", 3,
                 "interval: '0' is not a whole number of seconds from 1 to 604800");
    config_error("[supplier.t]\nurl = http://h/\ninterval = 5m\n", 3,
                 "interval: '5m' is not a whole number of seconds from 1 to 604800");
    config_error("[supplier.t]\nurl = http://h/\ntimeout = 3601\n", 3,
                 "timeout: '3601' is not a whole number of seconds from 1 to 3600");
    config_error("[supplier.t]\nurl = http://h/\ntimeout = -1\n", 3,
                 "timeout: '-1' is not a whole number of seconds from 1 to 3600");
    config_error("[supplier.t]\nurl = http://h/\nretries = 11\n", 3,
                 "retries: '11' is not a whole number of attempts from 0 to 10");
    config_error("[supplier.t]\nurl = http://h/\n\nbackoff_ms = 1.5\n", 4,
                 "backoff_ms: '1.5' is not a whole number of milliseconds from 1 to 30000");
    config_error("[supplier.t]\nurl = http://h/\nbreaker_failures = 0\n", 3,
                 "breaker_failures: '0' is not a whole number of polls from 1 to 1000");
    config_error("[supplier.t]\nurl = http://h/\nbreaker_cooldown = 99999999999\n", 3,
                 "breaker_cooldown: '99999999999' is not a whole number of seconds from 1 to "
                 "86400");
}

LEAK_TEST(http_poll_config, url_credentials_are_not_echoed, .init = setup, .fini = teardown)
{
    sf_http_poll_opts o;
    sf_error err;
    cr_assert(configure("[supplier.t]\nurl = gopher://u:s3cret@h/\n", &o, &err) == SF_EINVAL);
    cr_assert(!strstr(err.msg, "s3cret"), "%s", err.msg);
}

LEAK_TEST(http_poll, stop_interrupts_a_slow_transfer, .init = setup, .fini = teardown)
{
    SCRIPT({.status = 200, .body = "slow", .delay_ms = 800});
    sf_http_poll_opts o = opts();
    o.timeout_ms = 3000;
    stop_flag = 0;
    o.stop = &stop_flag;
    sf_http_poller *p = poller(&o);
    pthread_t t;
    cr_assert(pthread_create(&t, NULL, stop_later, NULL) == 0);
    int64_t t0 = mono_ms();
    fetch_fails(p, 0, msg("%s: %s, after 1 attempt", "stopped"), SF_EUNAVAIL);
    int64_t took = mono_ms() - t0;
    pthread_join(t, NULL);
    cr_assert(took < 700, "stopping took %lld ms", (long long)took);
    cr_assert(sf_http_poller_failures(p) == 0);
    sf_http_poller_free(p);
}
