/*
 * inv-api: the HTTP stock query API (DESIGN.md "Stock query API").
 *
 * Serving path, and why: evhttp is single-threaded per event_base, and each
 * answer waits on one PostgreSQL round trip. So inv-api binds ONE listening
 * socket and runs N threads ([pg] pool, default 4, or --threads), each with
 * its own event_base + evhttp accepting on a dup() of that socket (the
 * kernel gives each connection to one thread), its own PGconn with every
 * statement prepared at connect (query.h), and its own metrics. Nothing is
 * shared on the request path but the key ring (a read lock), so threads
 * never wait for each other; while one waits on PostgreSQL the others
 * accept and serve, and evhttp never blocks on a client, so a slow client
 * costs a connection, not a thread. Every answer is one statement: one
 * round trip, one snapshot. A pool of connections handed between threads
 * would add a lock and a wake-up per request for nothing: the number of
 * threads is the number of connections.
 *
 * Exceptions: GET /v1/stock/{sku} and its location route are answered from
 * an in-memory read model (read_model.h) that one more thread keeps fresh
 * (--refresh-ms, default 100 ms); while it is not current they ask
 * PostgreSQL like the other routes. POST /v1/reservations is checked on
 * the serving thread and run by the reserver's threads ([api]
 * reserve_threads, each with its own session) in batches, one statement
 * and one commit for whatever arrived meanwhile (reserve.h); the answer
 * comes back to the serving thread, which never waits for it.
 *
 * The main thread owns the key ring (common/apikey.h): the [apikey.<name>]
 * sections once, and the table api_keys every 5 s over its own connection.
 * If PostgreSQL is down the last table read stays in force. It also waits
 * for SIGINT/SIGTERM, then stops the threads (requests in hand finish).
 *
 * The ops feed: the XSUB/XPUB proxy runs here (common/ops.h); GET
 * /v1/ops/events bridges it to server-sent events (sse.h) and GET
 * /dashboard serves the page that shows it (dashboard.h).
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <event2/util.h>

#include "apikey.h"
#include "cli.h"
#include "db.h"
#include "log.h"
#include "ops.h"
#include "query.h"
#include "read_model.h"
#include "server.h"

#define KEY_RELOAD_MS 5000
#define LISTEN_BACKLOG 1024

static void usage(FILE *out)
{
    fprintf(out,
            "usage: inv-api [--config FILE] [--listen ADDR] [--threads N] [--refresh-ms N]\n"
            "\n"
            "Serves the stock query API over HTTP/1.1 (JSON):\n"
            "  GET /v1/stock/{sku}                          every location, totals, ats per "
            "channel\n"
            "  GET /v1/stock/{sku}/locations/{location}     one position\n"
            "  GET /v1/channels/{channel}/stock?sku=A&sku=B ats of up to [api] max_batch skus\n"
            "  GET /v1/ledger/{sku}?location=L&limit=N&after=SEQ   audit trail by stream "
            "sequence\n"
            "  GET /v1/reservations/{ref}                   an order's reservations per sku "
            "and location\n"
            "  GET /healthz                                 PostgreSQL and NATS (no key)\n"
            "  GET /metrics                                 Prometheus text\n"
            "  GET /dashboard                               the ops dashboard page (no key)\n"
            "  GET /v1/ops/events[?key=K&topics=P1,P2]      the ops feed as server-sent "
            "events\n"
            "Every route but /healthz and /dashboard needs 'Authorization: Bearer\n"
            "sf_<id>_<secret>' (or ?key= on /v1/ops/events) with scope read or admin\n"
            "(invctl apikey add NAME --scope read). docs/openapi.yaml describes every\n"
            "answer.\n"
            "\n"
            "  --listen ADDR   host:port to listen on (default [api] listen, 127.0.0.1:8080;\n"
            "                  port 0 picks a free port, logged as 'listening on ...')\n"
            "  --threads N     serving threads, each with one PostgreSQL connection\n"
            "                  (default [pg] pool)\n"
            "  --refresh-ms N  GET /v1/stock/{sku}[/locations/{location}] are served from an\n"
            "                  in-memory read model refreshed from PostgreSQL every N ms\n"
            "                  (default 100; a change committed at t shows by about t + N\n"
            "                  ms + one poll); 0 turns the model off: every read asks\n"
            "                  PostgreSQL\n"
            "  --config FILE, --help, --version\n"
            "\n"
            "Environment: INV_PG_DSN, INV_NATS_URL, INV_NOW_MS (the clock reservations\n"
            "expire by, for tests). Exit: 0 after SIGINT/SIGTERM, 1 runtime\n"
            "failure (cannot listen), 2 usage or configuration error.\n");
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Bind and listen on "host:port" ("[v6]:port" too); port 0 is allowed.
 * The bound address goes to bound (for the log). -1 on failure. */
static int listen_on(const char *addr, char *bound, size_t bound_size)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host || !colon[1]) {
        fprintf(stderr, "inv-api: --listen '%s': expected host:port\n", addr);
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, colon + 1, &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "inv-api: --listen '%s': %s\n", addr, gai_strerror(gai));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        fprintf(stderr, "inv-api: cannot listen on %s: %s\n", addr, strerror(saved));
        return -1;
    }
    evutil_make_socket_nonblocking(fd);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char h[NI_MAXHOST], p[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
        getnameinfo((struct sockaddr *)&ss, len, h, sizeof h, p, sizeof p,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(bound, bound_size, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, p);
    else
        snprintf(bound, bound_size, "%s", addr);
    return fd;
}

/* Every connection is a descriptor: take the hard limit, so a burst of
 * (or stalled) clients meets the 10 s timeout before EMFILE. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            sf_log(SF_LOG_WARN, "cannot raise the descriptor limit: %s", strerror(errno));
    }
}

/* Re-read api_keys; on failure keep what is loaded and say so once per
 * outage. */
static void reload_keys(const sf_config *cfg, sf_apikey_ring *ring, PGconn **pg, bool *failing)
{
    sf_error err;
    sf_status st = SF_OK;
    if (!*pg && !(st = sf_db_connect(cfg->pg.dsn, pg, &err)))
        api_db_quiet(*pg);
    size_t n = 0, skipped = 0;
    if (!st)
        st = sf_apikey_ring_load_db(ring, *pg, &n, &skipped, &err);
    if (st) {
        if (!*failing)
            sf_log(SF_LOG_WARN,
                   "api keys: cannot read table api_keys (%s); keeping the keys "
                   "already loaded, retrying every %d s",
                   err.msg, KEY_RELOAD_MS / 1000);
        *failing = true;
        if (*pg && PQstatus(*pg) != CONNECTION_OK) {
            PQfinish(*pg);
            *pg = NULL;
        }
        return;
    }
    if (*failing)
        sf_log(SF_LOG_INFO, "api keys: table api_keys read again (%zu rows)", n);
    if (skipped)
        sf_log(SF_LOG_WARN, "api keys: %zu rows of api_keys are not valid keys; ignored", skipped);
    *failing = false;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"listen", required_argument, NULL, 'l'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {"refresh-ms", required_argument, NULL, 'r'},
                                             {NULL, 0, NULL, 0}};
    const char *config_path = NULL, *listen_addr = NULL;
    long threads = 0, refresh_ms = API_RM_REFRESH_MS_DEFAULT;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'l': listen_addr = optarg; break;
        case 't': {
            char *end;
            threads = strtol(optarg, &end, 10);
            if (*end || end == optarg || threads < 1 || threads > API_THREADS_MAX) {
                fprintf(stderr, "inv-api: --threads: '%s' is not in 1..%d\n", optarg,
                        API_THREADS_MAX);
                return 2;
            }
            break;
        }
        case 'r': {
            char *end;
            refresh_ms = strtol(optarg, &end, 10);
            if (*end || end == optarg || refresh_ms < 0 || refresh_ms > API_RM_REFRESH_MS_MAX) {
                fprintf(stderr, "inv-api: --refresh-ms: '%s' is not in 0..%d\n", optarg,
                        API_RM_REFRESH_MS_MAX);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        case 'V': printf("inv-api %s\n", SF_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    sf_config cfg;
    int rc = sf_cli_load_config("inv-api", config_path, &cfg);
    if (rc)
        return rc;
    sf_log_init("inv-api", SF_LOG_INFO);
    sf_cli_handle_signals();
    raise_fd_limit();
    if (!threads)
        threads = cfg.pg.pool > API_THREADS_MAX ? API_THREADS_MAX : cfg.pg.pool;

    sf_error err;
    sf_apikey_ring *ring = NULL;
    api_server *srv = NULL;
    api_rm *rm = NULL;
    sf_ops_proxy *proxy = NULL;
    PGconn *keys_pg = NULL;
    int fd = -1;
    rc = 1;
    if (sf_apikey_ring_new(&ring, &err)) {
        fprintf(stderr, "inv-api: %s\n", err.msg);
        goto out;
    }
    if (sf_apikey_ring_load_config(ring, &cfg, &err)) {
        fprintf(stderr, "inv-api: %s\n", err.msg);
        rc = 2;
        goto out;
    }
    char bound[SF_CONFIG_URL_MAX + 64];
    fd = listen_on(listen_addr ? listen_addr : cfg.api.listen, bound, sizeof bound);
    if (fd < 0)
        goto out;
    bool keys_failing = false;
    reload_keys(&cfg, ring, &keys_pg, &keys_failing);

    if (refresh_ms > 0) {
        api_rm_opts ro;
        api_rm_opts_init(&ro);
        ro.pg_dsn = cfg.pg.dsn;
        ro.refresh_ms = (int)refresh_ms;
        if (api_rm_start(&ro, &rm, &err)) {
            fprintf(stderr, "inv-api: %s\n", err.msg);
            goto out;
        }
    }
    api_server_opts so = {
        .pg_dsn = cfg.pg.dsn,
        .nats_url = cfg.nats.url,
        .nats_tls = {cfg.nats.tls_ca, cfg.nats.tls_cert, cfg.nats.tls_key, cfg.nats.tls_required},
        .tls_cert = cfg.api.tls_cert,
        .tls_key = cfg.api.tls_key,
        .max_batch = cfg.api.max_batch,
        .rate_per_key = cfg.api.rate_per_key,
        .burst = cfg.api.burst,
        .max_header_bytes = cfg.api.max_header_bytes,
        .max_body_bytes = cfg.api.max_body_bytes,
        .reserve_threads = cfg.api.reserve_threads,
        .reserve_batch = cfg.api.reserve_batch,
        .reserve_queue = cfg.api.reserve_queue,
        .max_query_bytes = cfg.api.max_query_bytes,
        .max_ledger_page = cfg.api.max_ledger_page,
        .threads = (int)threads,
        .listen_fd = fd,
        .ring = ring,
        .rm = rm,
        .now_ms_override = cfg.now_ms_override,
        .ops_sub_endpoint = cfg.ops.sub_endpoint};
    if (api_server_start(&so, &srv, &err)) {
        fprintf(stderr, "inv-api: %s\n", err.msg);
        goto out;
    }
    /* The ops feed's XSUB/XPUB proxy (DESIGN.md "Ops dashboard feed"): one
     * per deployment; a second inv-api finds the ports taken and serves
     * without it. */
    if (sf_ops_proxy_start(cfg.ops.endpoint, cfg.ops.sub_endpoint, &proxy, &err))
        sf_log(SF_LOG_WARN, "ops feed proxy not started (another inv-api runs it?): %s", err.msg);
    else
        sf_log(SF_LOG_INFO, "ops feed: services publish to %s, readers subscribe to %s",
               cfg.ops.endpoint, cfg.ops.sub_endpoint);
    size_t ncfg = 0, ndb = 0;
    sf_apikey_ring_counts(ring, &ncfg, &ndb, NULL);
    sf_log(SF_LOG_INFO,
           "listening on %s (%s; %ld threads; %zu keys from the config, %zu from the "
           "table; max_batch %d, rate_per_key %d, burst %d)",
           bound, cfg.api.tls_cert[0] ? "HTTPS only" : "HTTP", threads, ncfg, ndb,
           cfg.api.max_batch, cfg.api.rate_per_key, cfg.api.burst);

    int64_t next_reload = mono_ms() + KEY_RELOAD_MS;
    while (!sf_shutdown) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        if (mono_ms() >= next_reload) {
            reload_keys(&cfg, ring, &keys_pg, &keys_failing);
            next_reload = mono_ms() + KEY_RELOAD_MS;
        }
    }
    sf_log(SF_LOG_INFO, "stopping");
    rc = 0;
out:
    sf_ops_proxy_stop(proxy);
    api_server_stop(srv);
    api_rm_stop(rm);
    if (fd >= 0)
        close(fd);
    if (keys_pg)
        PQfinish(keys_pg);
    sf_apikey_ring_free(ring);
    sf_config_free(&cfg);
    return rc;
}
