/*
 * reserve_static: the raw HTTP limit next to bench/reserve.sh's figures. An
 * evhttp server set up as inv-api sets up each serving thread (one
 * event_base and evhttp per thread, each accepting on a dup() of one
 * listening socket) that answers every request with the same 100-byte JSON
 * body, touching no database: what the API's HTTP layer alone costs.
 *
 * usage: reserve_static PORT [THREADS]   (runs until SIGTERM or SIGINT)
 */
#include <arpa/inet.h>
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
#include <unistd.h>

#define STATIC_BODY                                                                                \
    "{\"event_id\":\"rsv-0000000000000000000000000000000000000000\",\"location\":\"X\","           \
    "\"expires_at\":0}\n"

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, STATIC_BODY, sizeof STATIC_BODY - 1);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 201, NULL, b);
    evbuffer_free(b);
}

static void *serve(void *arg)
{
    int fd = *(int *)arg;
    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    if (!http || !evhttp_accept_socket_with_handle(http, dup(fd))) {
        fprintf(stderr, "reserve_static: libevent setup failed\n");
        exit(1);
    }
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_gencb(http, on_request, NULL);
    event_base_dispatch(base);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: reserve_static PORT [THREADS]\n");
        return 2;
    }
    int port = atoi(argv[1]), threads = argc == 3 ? atoi(argv[2]) : 1;
    if (port <= 0 || port > 65535 || threads < 1 || threads > 64) {
        fprintf(stderr, "reserve_static: bad PORT or THREADS\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 1024) != 0 ||
        evutil_make_socket_nonblocking(fd) != 0) {
        perror("reserve_static: listen");
        return 1;
    }
    printf("listening on 127.0.0.1:%d (%d threads)\n", port, threads);
    fflush(stdout);
    pthread_t t[64];
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, serve, &fd);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    return 0;
}
