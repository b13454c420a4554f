/*
 * static_http: the raw limit of bench/api.sh. The same HTTP library and
 * the same threading as inv-api (N threads, each its own event_base and
 * evhttp accepting on a dup() of one listening socket), the same headers,
 * but every request is answered with one fixed body and nothing else: no
 * routing, no key check, no metrics. So inv-api's rate over this one's,
 * measured in the same run, is what inv-api's own work costs.
 *
 * usage: static_http [--listen HOST:PORT] [--threads N] [--body FILE]
 * Prints "listening on 127.0.0.1:PORT" once serving (port 0 picks one);
 * runs until SIGINT or SIGTERM. The body defaults to a 100-byte JSON
 * object; bench/api.sh passes one real /v1/stock/{sku} reply instead.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SH_THREADS_MAX 64
#define SH_BODY_MAX (1024 * 1024)

static volatile sig_atomic_t sh_stop;

typedef struct sh_worker {
    struct event_base *base;
    struct evhttp *http;
    struct event *tick;
    pthread_t thread;
    const char *body;
    size_t len;
} sh_worker;

static void sh_on_signal(int sig)
{
    (void)sig;
    sh_stop = 1;
}

static void sh_on_request(struct evhttp_request *req, void *arg)
{
    sh_worker *w = arg;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, w->body, w->len);
    evhttp_send_reply(req, 200, NULL, b);
    evbuffer_free(b);
}

static void sh_on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sh_worker *w = arg;
    if (sh_stop)
        event_base_loopbreak(w->base);
}

static void *sh_main(void *arg)
{
    sh_worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

static char *sh_read_body(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "static_http: --body %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(SH_BODY_MAX);
    size_t n = buf ? fread(buf, 1, SH_BODY_MAX, f) : 0;
    int bad = !buf || ferror(f) || !feof(f);
    fclose(f);
    if (bad || n == 0) {
        fprintf(stderr, "static_http: --body %s: empty, unreadable or over %d bytes\n", path,
                SH_BODY_MAX);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"listen", required_argument, NULL, 'l'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"body", required_argument, NULL, 'b'},
                                             {NULL, 0, NULL, 0}};
    const char *listen_addr = "127.0.0.1:0", *body_path = NULL;
    long threads = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l': listen_addr = optarg; break;
        case 'b': body_path = optarg; break;
        case 't': {
            char *end;
            threads = strtol(optarg, &end, 10);
            if (*end || end == optarg || threads < 1 || threads > SH_THREADS_MAX) {
                fprintf(stderr, "static_http: --threads: '%s' is not in 1..%d\n", optarg,
                        SH_THREADS_MAX);
                return 2;
            }
            break;
        }
        default:
            fprintf(stderr,
                    "usage: static_http [--listen HOST:PORT] [--threads N] [--body FILE]\n");
            return 2;
        }
    }
    static char dflt[] = "{\"sku\":\"SKU-00000001\",\"on_hand\":12,\"reserved\":0,\"available\":12,"
                         "\"note\":\"a fixed 100 byte body\"}\n";
    const char *body = dflt;
    size_t len = strlen(dflt);
    char *owned = NULL;
    if (body_path && !(body = owned = sh_read_body(body_path, &len)))
        return 2;

    const char *colon = strrchr(listen_addr, ':');
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char host[64];
    if (!colon || (size_t)(colon - listen_addr) >= sizeof host) {
        fprintf(stderr, "static_http: --listen '%s': expected IPv4:port\n", listen_addr);
        return 2;
    }
    memcpy(host, listen_addr, (size_t)(colon - listen_addr));
    host[colon - listen_addr] = '\0';
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "static_http: --listen '%s': expected IPv4:port\n", listen_addr);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t slen = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &slen) != 0) {
        fprintf(stderr, "static_http: cannot listen on %s: %s\n", listen_addr, strerror(errno));
        return 1;
    }
    evutil_make_socket_nonblocking(fd);
    signal(SIGINT, sh_on_signal);
    signal(SIGTERM, sh_on_signal);
    signal(SIGPIPE, SIG_IGN);

    sh_worker *ws = calloc((size_t)threads, sizeof *ws);
    if (!ws)
        return 1;
    for (long i = 0; i < threads; i++) {
        sh_worker *w = &ws[i];
        w->body = body;
        w->len = len;
        struct timeval tv = {0, 100000};
        int dfd = dup(fd);
        if (!(w->base = event_base_new()) || !(w->http = evhttp_new(w->base)) || dfd < 0 ||
            !evhttp_accept_socket_with_handle(w->http, dfd) ||
            !(w->tick = event_new(w->base, -1, EV_PERSIST, sh_on_tick, w)) ||
            event_add(w->tick, &tv) != 0) {
            fprintf(stderr, "static_http: cannot set up thread %ld\n", i);
            return 1;
        }
        evhttp_set_timeout(w->http, 10);
        evhttp_set_gencb(w->http, sh_on_request, w);
    }
    for (long i = 0; i < threads; i++) {
        if (pthread_create(&ws[i].thread, NULL, sh_main, &ws[i]) != 0) {
            fprintf(stderr, "static_http: cannot start thread %ld\n", i);
            return 1;
        }
    }
    printf("listening on 127.0.0.1:%u (%ld threads, %zu-byte body)\n", ntohs(sa.sin_port), threads,
           len);
    fflush(stdout);
    for (long i = 0; i < threads; i++)
        pthread_join(ws[i].thread, NULL);
    for (long i = 0; i < threads; i++) {
        event_free(ws[i].tick);
        evhttp_free(ws[i].http);
        event_base_free(ws[i].base);
    }
    free(ws);
    free(owned);
    close(fd);
    return 0;
}
