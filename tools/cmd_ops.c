/*
 * invctl ops tail [TOPIC]: print the ops feed (DESIGN.md "Ops dashboard
 * feed") as it arrives: a SUB socket on [ops] sub_endpoint (the XPUB side
 * of the proxy in inv-api). ZeroMQ filters by prefix, so topics are
 * compared here exactly: TOPIC matches itself only; a TOPIC ending in '.'
 * ("alert.") matches everything under it; no TOPIC matches everything.
 * One line per message: "<topic> <json>".
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "cli.h"
#include "cmd.h"

static int64_t ops__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmd_ops(const sf_config *cfg, int argc, char **argv)
{
    static const char usage[] =
        "usage: invctl ops tail [TOPIC] [--count N] [--timeout SECONDS]\n"
        "  TOPIC      metrics.inv-consumer (exact), alert. (every alert), none: all\n"
        "  --count N  exit after N messages; --timeout S: exit after S seconds\n";
    static const struct option longopts[] = {{"count", required_argument, NULL, 'n'},
                                             {"timeout", required_argument, NULL, 't'},
                                             {NULL, 0, NULL, 0}};
    if (argc < 2 || strcmp(argv[1], "tail")) {
        fputs(usage, stderr);
        return 2;
    }
    long long count = 0, timeout = 0;
    int opt;
    /* Options may follow TOPIC: parse argv[1..] afresh ("tail" plays argv[0]),
     * so getopt permutes TOPIC behind the options. */
    argc -= 1;
    argv += 1;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == 'n' && cmd_parse_i64("--count", optarg, 1, 1000000000, &count))
            continue;
        if (opt == 't' && cmd_parse_i64("--timeout", optarg, 1, 86400, &timeout))
            continue;
        fputs(usage, stderr);
        return 2;
    }
    if (argc - optind > 1) {
        fputs(usage, stderr);
        return 2;
    }
    const char *topic = optind < argc ? argv[optind] : "";
    size_t tlen = strlen(topic);
    bool prefix = tlen == 0 || topic[tlen - 1] == '.';
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_SUB) : NULL;
    int linger = 0;
    if (!sock || zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(sock, ZMQ_SUBSCRIBE, topic, tlen) ||
        zmq_connect(sock, cfg->ops.sub_endpoint)) {
        fprintf(stderr, "invctl ops tail: %s: %s\n", cfg->ops.sub_endpoint,
                zmq_strerror(zmq_errno()));
        if (sock)
            zmq_close(sock);
        if (ctx)
            zmq_ctx_term(ctx);
        return 1;
    }
    int64_t deadline = timeout ? ops__mono_ms() + timeout * 1000 : 0;
    long long shown = 0;
    char t[256], body[65536];
    while (!sf_shutdown && (!count || shown < count) && (!deadline || ops__mono_ms() < deadline)) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 200) <= 0)
            continue;
        int n = zmq_recv(sock, t, sizeof t - 1, 0);
        if (n < 0)
            continue;
        t[n < (int)sizeof t - 1 ? n : (int)sizeof t - 1] = '\0';
        int more = 0;
        size_t ml = sizeof more;
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
        if (!more) {
            fprintf(stderr, "invctl ops tail: message '%s' has no JSON frame\n", t);
            continue;
        }
        int b = zmq_recv(sock, body, sizeof body - 1, 0);
        if (b < 0)
            continue;
        body[b < (int)sizeof body - 1 ? b : (int)sizeof body - 1] = '\0';
        for (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml); more;
             zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml))
            zmq_recv(sock, body, 0, 0); /* extra frames: not ours */
        if (!prefix && strcmp(t, topic))
            continue;
        printf("%s %s\n", t, body);
        fflush(stdout);
        shown++;
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return 0;
}
