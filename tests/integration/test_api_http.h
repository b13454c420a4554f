/*
 * test_api_http: what the integration tests that drive inv-api share
 * (test_api*.c, test_limits.c, test_dashboard_browser.c, ...; header-only,
 * static functions): a raw HTTP/1.1
 * client over a socket (so a test can send any bytes, malformed ones
 * included, and no client library normalises the path), starting inv-api
 * on a free port (with its ops proxy on free ports too), API keys made with
 * invctl, and the data set the tests query.
 */
#ifndef SF_TEST_API_HTTP_H
#define SF_TEST_API_HTTP_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fixture.h"
#include "stockcheck.h"

#define API_IO_TIMEOUT_MS 15000

/* Each test file uses a different subset of these helpers. */
#define API_HELPER static __attribute__((unused))

typedef struct api_resp {
    int status;      /* 0: no status line (connection closed first) */
    char head[8192]; /* status line and headers, NUL-terminated */
    char *body;      /* malloc'd, NUL-terminated; may be empty */
    size_t len;
    int64_t elapsed_ms;
} api_resp;

API_HELPER void api_resp_free(api_resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* A TCP connection to 127.0.0.1:port. */
API_HELPER int api_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect 127.0.0.1:%d: %s", port,
              strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

API_HELPER void api_send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the server may close early on a bad request: read what it said */
        data += w;
        len -= (size_t)w;
    }
}

/* Length of a complete response in buf[0..len) (head, then a body of
 * Content-Length bytes, none for HEAD), or 0 while incomplete. A response
 * without Content-Length ends when the server closes. */
API_HELPER size_t api__complete(const char *buf, size_t len, int head_only)
{
    const char *sep = strstr(buf, "\r\n\r\n");
    if (!sep)
        return 0;
    size_t hlen = (size_t)(sep - buf) + 4;
    if (head_only)
        return hlen;
    for (const char *l = buf; l && l < sep; l = strstr(l, "\r\n") ? strstr(l, "\r\n") + 2 : NULL) {
        if (strncasecmp(l, "Content-Length:", 15) == 0) {
            size_t body = (size_t)strtoull(l + 15, NULL, 10);
            return len >= hlen + body ? hlen + body : 0;
        }
    }
    return 0;
}

/* Read one response: until it is complete or the server closes, at most
 * timeout_ms (strict: the test fails past it; else it returns what came). */
API_HELPER void api_read_response(int fd, api_resp *r, int head_only, int timeout_ms, int strict)
{
    size_t cap = 65536, len = 0, done = 0;
    char *buf = malloc(cap);
    cr_assert(buf);
    buf[0] = '\0';
    int64_t deadline = fx_now_ms() + timeout_ms;
    while (!done) {
        int64_t left = deadline - fx_now_ms();
        if (left <= 0) {
            cr_assert(!strict, "no complete response within %d ms (got %zu bytes)", timeout_ms,
                      len);
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        if (len + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert(buf);
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        done = api__complete(buf, len, head_only);
    }
    if (done)
        len = done;
    buf[len] = '\0';
    memset(r->head, 0, sizeof r->head);
    r->status = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    size_t hlen = sep ? (size_t)(sep - buf) : len;
    snprintf(r->head, sizeof r->head, "%.*s",
             (int)(hlen < sizeof r->head ? hlen : sizeof r->head - 1), buf);
    sscanf(buf, "HTTP/1.%*d %d", &r->status);
    size_t off = sep ? hlen + 4 : len;
    r->len = len - off;
    r->body = malloc(r->len + 1);
    cr_assert(r->body);
    memcpy(r->body, buf + off, r->len);
    r->body[r->len] = '\0';
    free(buf);
}

API_HELPER int api__exchange(int port, const char *data, size_t len, api_resp *r, int head_only,
                             int timeout_ms, int strict)
{
    int64_t t0 = fx_now_ms();
    int fd = api_connect(port);
    api_send_all(fd, data, len);
    api_read_response(fd, r, head_only, timeout_ms, strict);
    close(fd);
    r->elapsed_ms = fx_now_ms() - t0;
    return r->status;
}

/* Send raw bytes as a whole request and read the answer. */
API_HELPER int api_raw(int port, const char *data, size_t len, api_resp *r)
{
    return api__exchange(port, data, len, r, 0, API_IO_TIMEOUT_MS, 1);
}

/* The same for bytes that may get no answer: waits at most timeout_ms. */
API_HELPER int api_raw_lenient(int port, const char *data, size_t len, int timeout_ms, api_resp *r)
{
    return api__exchange(port, data, len, r, 0, timeout_ms, 0);
}

/* METHOD target with "Authorization: Bearer key" when key is not NULL. */
API_HELPER int api_req(int port, const char *method, const char *target, const char *key,
                       api_resp *r)
{
    size_t cap = strlen(target) + 1024;
    char *req = malloc(cap);
    cr_assert(req);
    int n = snprintf(
        req, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%sConnection: close\r\n\r\n", method,
        target, key ? "Authorization: Bearer " : "", key ? key : "", key ? "\r\n" : "");
    int st = api__exchange(port, req, (size_t)n, r, !strcmp(method, "HEAD"), API_IO_TIMEOUT_MS, 1);
    free(req);
    return st;
}

API_HELPER int api_get(int port, const char *target, const char *key, api_resp *r)
{
    return api_req(port, "GET", target, key, r);
}

/* The value of header name (case-insensitive) into out, or "" if absent. */
API_HELPER const char *api_header(const api_resp *r, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    size_t n = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            h += n + 1;
            while (*h == ' ')
                h++;
            size_t len = strcspn(h, "\r\n");
            snprintf(out, size, "%.*s", (int)len, h);
            return out;
        }
    }
    return out;
}

/* The body as JSON (the test fails if it is not). Caller json_decref. */
API_HELPER json_t *api_json(const api_resp *r)
{
    json_error_t je;
    json_t *j = json_loadb(r->body, r->len, 0, &je);
    cr_assert(j, "body is not JSON (%s): %.300s", je.text, r->body);
    return j;
}

/* GET target expecting status; returns the JSON body. */
API_HELPER json_t *api_get_json(int port, const char *target, const char *key, int status)
{
    api_resp r;
    int st = api_get(port, target, key, &r);
    cr_assert_eq(st, status, "GET %.200s: status %d, want %d: %.500s", target, st, status, r.body);
    json_t *j = api_json(&r);
    api_resp_free(&r);
    return j;
}

/* Start inv-api on a free port (--listen 127.0.0.1:0) with extra
 * arguments (NULL-terminated, may be NULL); waits for its "listening on"
 * line and returns the port. The log goes to STACK_DIR/<log_name>. */
API_HELPER int api_start(const char *log_name, const char *const *extra, pid_t *pid)
{
    char log_path[512];
    sc_tmp(log_name, log_path, sizeof log_path);
    unlink(log_path);
    const char *argv[16] = {"inv-api", "--listen", "127.0.0.1:0"};
    size_t n = 3;
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    *pid = fx_spawn(argv, log_path);
    int64_t deadline = fx_now_ms() + 15000;
    for (;;) {
        FILE *f = fopen(log_path, "r");
        char line[1024];
        while (f && fgets(line, sizeof line, f)) {
            const char *at = strstr(line, "listening on 127.0.0.1:");
            if (at) {
                fclose(f);
                return atoi(at + strlen("listening on 127.0.0.1:"));
            }
        }
        if (f)
            fclose(f);
        cr_assert(fx_now_ms() < deadline, "inv-api did not start; see %s", log_path);
        usleep(20000);
    }
}

/* inv-api running its ops proxy on two free ports (fx_ops_endpoints; the
 * front endpoint into front): [ops] written to STACK_DIR/<log_name>.ini,
 * then api_start with --config it and extra (may be NULL). */
API_HELPER int api_start_with_ops(const char *log_name, const char *const *extra, char front[64],
                                  pid_t *pid)
{
    char back[64], name[256], cfg[512];
    fx_ops_endpoints(front, back);
    snprintf(name, sizeof name, "%s.ini", log_name);
    sc_tmp(name, cfg, sizeof cfg);
    FILE *f = fopen(cfg, "w");
    cr_assert(f, "cannot write %s", cfg);
    fprintf(f, "[ops]\nendpoint = %s\nsub_endpoint = %s\n", front, back);
    fclose(f);
    const char *args[12] = {"--config", cfg};
    size_t n = 2;
    for (size_t i = 0; extra && extra[i] && n < 11; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return api_start(log_name, args, pid);
}

/* The [apikey.<name>] section of `invctl apikey add --ini` output (stderr
 * lines interleaved in it are left out) into out. */
API_HELPER void api_ini_section(const char *output, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (const char *l = output; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        size_t n = strcspn(l, "\n");
        if ((!strncmp(l, "[apikey.", 8) && l[n - 1] == ']') || !strncmp(l, "scope = ", 8) ||
            !strncmp(l, "salt = ", 7) || !strncmp(l, "hash = ", 7))
            used += (size_t)snprintf(out + used, size - used, "%.*s\n", (int)n, l);
        cr_assert(used < size);
    }
}

/* invctl apikey add NAME --scope SCOPE [--ini]: the key into key (the
 * first output line starting sf_); with --ini the whole output in ini. */
API_HELPER void api_add_key(const char *name, const char *scope, char *key, size_t size, char *ini,
                            size_t ini_size)
{
    char out[8192];
    const char *argv[] = {"invctl", "apikey", "add", name, "--scope", scope, ini ? "--ini" : NULL,
                          NULL};
    int rc = fx_run(argv, NULL, out, sizeof out, 30000);
    cr_assert_eq(rc, 0, "invctl apikey add %s: %s", name, out);
    key[0] = '\0';
    for (char *line = out; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "sf_", 3) == 0) {
            snprintf(key, size, "%.*s", (int)strcspn(line, "\n"), line);
            break;
        }
    }
    cr_assert(key[0], "no key in: %s", out);
    if (ini)
        snprintf(ini, ini_size, "%s", out);
}

API_HELPER void api_run_ok(const char *const argv[])
{
    char out[16384];
    int rc = fx_run(argv, NULL, out, sizeof out, 120000);
    cr_assert(rc == 0, "%s %s exited %d: %s", argv[0], argv[1] ? argv[1] : "", rc, out);
}

/* The suites' teardown: PostgreSQL and NATS are started again (both are
 * no-ops when running), so a test that failed while one was stopped does
 * not take the next tests down with it; then fx_teardown. */
API_HELPER void api_fini(void)
{
    const char *stack = getenv("SF_STACK");
    if (stack && *stack && !strchr(stack, '\'')) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "'%s' pg-start >/dev/null 2>&1; '%s' nats-start >/dev/null 2>&1",
                 stack, stack);
        if (system(cmd) != 0)
            fprintf(stderr, "api_fini: restarting the stack failed\n");
    }
    fx_teardown();
}

#define API_EV(id, kind, sku, loc, qty, extra)                                                     \
    "{\"event_id\":\"" id "\",\"kind\":\"" kind "\",\"sku\":\"" sku "\",\"location\":\"" loc       \
    "\",\"qty\":" #qty ",\"occurred_at\":\"2026-11-20T10:00:00Z\",\"source\":\"t\"" extra "}\n"

/* SKU-A: DC-EAST on_hand 10 + 3 = 13, inbound 7 - 3 = 4; STORE-NYC on_hand 4,
 * reserved 1, damaged 2 (safety stock 1: available 2). SKU-B: STORE-NYC
 * -2 (a sale), DC-EAST 1 with inbound -1 (floored to 0). "a/b c": DC-EAST 3.
 * Channels: web (buffer 2; DC-EAST, STORE-NYC), pos (STORE-NYC). */
static const char API_DATA[] = API_EV("a1", "ADJUST", "SKU-A", "DC-EAST", 10, "")
    API_EV("a2", "RECEIPT", "SKU-A", "STORE-NYC", 4, "")
        API_EV("a3", "RESERVE", "SKU-A", "STORE-NYC", 1, ",\"ref\":\"o1\"")
            API_EV("a4", "ASN", "SKU-A", "DC-EAST", 7, "")
                API_EV("a5", "RETURN", "SKU-A", "STORE-NYC", 2, ",\"condition\":\"DAMAGED\"")
                    API_EV("a6", "RECEIPT", "SKU-A", "DC-EAST", 3, "")
                        API_EV("b1", "SALE", "SKU-B", "STORE-NYC", 2, ",\"channel\":\"web\"")
                            API_EV("b2", "RECEIPT", "SKU-B", "DC-EAST", 1, "")
                                API_EV("s1", "RECEIPT", "a/b c", "DC-EAST", 3, "");

/* Channels, safety stock, the data set ingested and applied. */
API_HELPER void api_load_data(void)
{
    const char *loc[] = {"invctl", "location", "set", "STORE-NYC", "--safety-stock", "1", NULL};
    const char *web[] = {"invctl",      "channel",           "add", "web", "--buffer", "2",
                         "--locations", "DC-EAST,STORE-NYC", NULL};
    const char *pos[] = {"invctl", "channel", "add", "pos", "--locations", "STORE-NYC", NULL};
    api_run_ok(loc);
    api_run_ok(web);
    api_run_ok(pos);
    char path[512], out[8192];
    sc_tmp("api-data.jsonl", path, sizeof path);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(API_DATA, f);
    fclose(f);
    sc_ingest(path, out, sizeof out);
    sc_drain(1);
}

#endif
