/*
 * inv-ingest: sales/returns feeds -> validated events -> Avro -> JetStream.
 *
 * Sources: --file PATH|- (repeatable; JSON lines or CSV with a header),
 * --zmq ENDPOINT (ROUTER) and --http ADDR (POST /v1/events, on its own
 * thread). Files are read first; with --zmq and/or --http the process then
 * serves until SIGTERM, which lets both answer what they have in flight.
 * A file run prints accepted / duplicate / rejected counts and exits 1 if
 * any line was rejected or could not be published.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apikey.h"
#include "broker.h"
#include "cli.h"
#include "event_parse.h"
#include "file_source.h"
#include "http_source.h"
#include "log.h"
#include "ops.h"
#include "zmq_source.h"

enum { MAX_FILES = 256 };

static void usage(FILE *out)
{
    fprintf(out,
            "usage: inv-ingest [--config FILE] [--file PATH|-]... [--zmq ENDPOINT] [--http ADDR]\n"
            "                  [--rejects PATH] [--source NAME] [--retry-for SECONDS]\n"
            "\n"
            "Validates sales/returns events and publishes them to JetStream (INV_EVENTS,\n"
            "subject inv.evt.<kind>.<location>, Nats-Msg-Id = event_id) asynchronously\n"
            "with a bounded in-flight window ([ingest] max_inflight).\n"
            "\n"
            "  --file PATH|-      JSON lines or CSV with a header (repeatable; - is stdin)\n"
            "  --zmq ENDPOINT     serve a ZeroMQ ROUTER (e.g. tcp://127.0.0.1:15555): one JSON\n"
            "                     event a message, reply 'ok <event_id>' once JetStream stored\n"
            "                     it, else 'err <reason>'\n"
            "  --http ADDR        serve HTTP on host:port (port 0: a free one, logged as 'http\n"
            "                     listening on ...'): POST /v1/events, body = JSON lines, header\n"
            "                     'Authorization: Bearer <key of scope ingest>'. Answers once\n"
            "                     JetStream stored every valid line: 202 all accepted, 400 some\n"
            "                     rejected (valid ones still published), each line's {line,\n"
            "                     status, event_id | error} in the body; 413 over [ingest]\n"
            "                     max_body (4 MiB); 503 + Retry-After while JetStream is away or\n"
            "                     the window is full; 401/403 bad key or scope. Keys: api_keys\n"
            "                     (re-read every 5 s from [pg] dsn) and [apikey.<name>]\n"
            "  --rejects PATH     append each rejected line as FILE:LINE: reason\n"
            "  --source NAME      source of lines that carry none (default inv-ingest)\n"
            "  --retry-for SECS   keep retrying an unpublished event this long (default 60)\n"
            "  --help, --version\n"
            "\n"
            "A file run ends with accepted / duplicate / rejected counts on stdout and exits 1\n"
            "if any line was rejected or failed. With --zmq or --http it then serves until\n"
            "SIGTERM/SIGINT, answering the requests in flight before it exits. Environment:\n"
            "INV_NATS_URL overrides [nats] url, INV_PG_DSN [pg] dsn.\n");
}

typedef struct ingest_args {
    const char *files[MAX_FILES];
    int n_files;
    const char *zmq;
    const char *http;
    const char *rejects;
    const char *source;
    long retry_for_s;
} ingest_args;

/* metrics.inv-ingest for the long-running sources, once a second: the
 * ZeroMQ and HTTP counts so far and the events/s both took since the last
 * message (file runs send their own, per file). Called on the main thread
 * only (the ZeroMQ loop's hook, or the wait loop of an HTTP-only run), the
 * one thread that uses ops. */
typedef struct ingest__metrics_state {
    sf_ops *ops;
    ingest_http *http;
    int64_t at_ms;
    uint64_t taken; /* zmq ok + http accepted/duplicate at the last message */
} ingest__metrics_state;

static void ingest__metrics(const ingest_zmq_stats *zs, void *arg)
{
    ingest__metrics_state *m = arg;
    int64_t now = sf_now_ms();
    ingest_http_stats hs = {0};
    if (m->http)
        ingest_http_stats_get(m->http, &hs);
    uint64_t taken = (zs ? zs->ok : 0) + hs.accepted + hs.duplicate;
    double secs = (double)(now - m->at_ms) / 1000.0;
    json_t *o =
        json_pack("{s:f, s:I}", "events_per_s", secs > 0 ? (double)(taken - m->taken) / secs : 0.0,
                  "ops_dropped", (json_int_t)sf_ops_dropped(m->ops));
    if (o && zs)
        json_object_set_new(o, "zmq",
                            json_pack("{s:I, s:I, s:I, s:I}", "received", (json_int_t)zs->received,
                                      "ok", (json_int_t)zs->ok, "rejected",
                                      (json_int_t)zs->rejected, "failed", (json_int_t)zs->failed));
    if (o && m->http)
        json_object_set_new(o, "http",
                            json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "requests",
                                      (json_int_t)hs.requests, "shed", (json_int_t)hs.shed,
                                      "accepted", (json_int_t)hs.accepted, "duplicate",
                                      (json_int_t)hs.duplicate, "rejected", (json_int_t)hs.rejected,
                                      "failed", (json_int_t)hs.failed));
    sf_ops_send(m->ops, "metrics.inv-ingest", o);
    m->at_ms = now;
    m->taken = taken;
}

static int run(const sf_config *cfg, const ingest_args *a)
{
    sf_error err;
    sf_error_clear(&err);
    sf_broker *broker = NULL;
    sf_ops *ops = NULL;
    FILE *rejects = NULL;
    sf_apikey_ring *ring = NULL;
    ingest_http *http = NULL;
    int rc = 1;

    sf_parse_opts po;
    sf_parse_opts_init(&po);
    po.default_source = a->source;
    po.max_future_ms = cfg->ingest.max_future_ms;
    po.max_line = (size_t)cfg->ingest.max_line;
    if (cfg->now_ms_override > 0)
        po.now_ms = cfg->now_ms_override;

    if (a->rejects && !(rejects = fopen(a->rejects, "a"))) {
        fprintf(stderr, "inv-ingest: %s: cannot open rejects file\n", a->rejects);
        return 1;
    }
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = cfg->nats.url;
    bo.tls = (sf_broker_tls){cfg->nats.tls_ca, cfg->nats.tls_cert, cfg->nats.tls_key,
                             cfg->nats.tls_required};
    bo.name = "inv-ingest";
    if (sf_broker_connect(&bo, &broker, &err) ||
        sf_ops_open(cfg->ops.endpoint, "inv-ingest", &ops, &err))
        goto out;

    ingest__metrics_state ms = {.ops = ops, .at_ms = sf_now_ms()};
    int failed = 0;
    ingest_file_ctx fctx = {.broker = broker,
                            .max_inflight = cfg->ingest.max_inflight,
                            .parse = &po,
                            .rejects = rejects,
                            .retry_for_ms = (int64_t)a->retry_for_s * 1000,
                            .stop = &sf_shutdown,
                            .ops = ops};
    for (int i = 0; i < a->n_files && !sf_shutdown; i++) {
        ingest_file_stats fs;
        sf_status st = ingest_file_run(&fctx, a->files[i], &fs, &err);
        printf("%s: %" PRIu64 " lines, %" PRIu64 " accepted, %" PRIu64 " duplicate, %" PRIu64
               " rejected, %" PRIu64 " failed\n",
               a->files[i], fs.lines, fs.accepted, fs.duplicate, fs.rejected, fs.failed);
        fflush(stdout);
        if (st) {
            fprintf(stderr, "inv-ingest: %s\n", err.msg);
            failed = 1;
        }
        if (fs.rejected || fs.failed)
            failed = 1;
    }
    if (a->http && !sf_shutdown) {
        ingest_http_opts ho;
        ingest_http_opts_init(&ho);
        ho.broker = broker;
        ho.pg_dsn = cfg->pg.dsn;
        ho.parse = &po;
        ho.max_inflight = cfg->ingest.max_inflight;
        ho.max_body = (size_t)cfg->ingest.max_body;
        if (sf_apikey_ring_new(&ring, &err) || sf_apikey_ring_load_config(ring, cfg, &err))
            goto out;
        ho.ring = ring;
        if (ingest_http_start(&ho, a->http, &http, &err))
            goto out;
        ms.http = http;
    }
    if (a->zmq && !sf_shutdown) {
        ingest_zmq_ctx zctx = {.broker = broker,
                               .max_inflight = cfg->ingest.max_inflight,
                               .parse = &po,
                               .stop = &sf_shutdown,
                               .every_second = ingest__metrics,
                               .arg = &ms};
        ingest_zmq_stats zs;
        if (ingest_zmq_run(&zctx, a->zmq, &zs, &err))
            goto out;
        sf_log(SF_LOG_INFO,
               "zmq: %" PRIu64 " received, %" PRIu64 " ok, %" PRIu64 " rejected, %" PRIu64
               " failed",
               zs.received, zs.ok, zs.rejected, zs.failed);
    }
    while (http && !sf_shutdown) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        if (sf_now_ms() - ms.at_ms >= 1000)
            ingest__metrics(NULL, &ms);
    }
    rc = failed;
out:
    if (http) {
        ingest_http_stats hs;
        ingest_http_stop(http, &hs);
        sf_log(SF_LOG_INFO,
               "http: %" PRIu64 " requests (%" PRIu64 " more refused with 503); lines: %" PRIu64
               " accepted, %" PRIu64 " duplicate, %" PRIu64 " rejected, %" PRIu64 " failed",
               hs.requests, hs.shed, hs.accepted, hs.duplicate, hs.rejected, hs.failed);
    }
    sf_apikey_ring_free(ring);
    if (err.status)
        fprintf(stderr, "inv-ingest: %s\n", err.msg);
    sf_ops_close(ops);
    sf_broker_close(broker);
    if (rejects)
        fclose(rejects);
    sf_broker_library_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},    {"file", required_argument, NULL, 'f'},
        {"zmq", required_argument, NULL, 'z'},       {"http", required_argument, NULL, 'H'},
        {"rejects", required_argument, NULL, 'r'},   {"source", required_argument, NULL, 's'},
        {"retry-for", required_argument, NULL, 'R'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0}};
    ingest_args a = {.source = "inv-ingest", .retry_for_s = 60};
    const char *config_path = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'f':
            if (a.n_files == MAX_FILES) {
                fprintf(stderr, "inv-ingest: at most %d --file options\n", MAX_FILES);
                return 2;
            }
            a.files[a.n_files++] = optarg;
            break;
        case 'z': a.zmq = optarg; break;
        case 'H': {
            char host[256];
            uint16_t port;
            if (!ingest_http_split_addr(optarg, host, sizeof host, &port)) {
                fprintf(stderr, "inv-ingest: --http '%s': expected host:port\n", optarg);
                return 2;
            }
            a.http = optarg;
            break;
        }
        case 'r': a.rejects = optarg; break;
        case 's': a.source = optarg; break;
        case 'R': {
            char *end;
            a.retry_for_s = strtol(optarg, &end, 10);
            if (*end || a.retry_for_s < 0 || a.retry_for_s > 86400) {
                fprintf(stderr, "inv-ingest: --retry-for: '%s' is not 0..86400\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        case 'V': printf("inv-ingest %s\n", SF_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || (a.n_files == 0 && !a.zmq && !a.http)) {
        if (optind < argc)
            fprintf(stderr, "inv-ingest: unexpected argument '%s'\n", argv[optind]);
        else
            fprintf(stderr, "inv-ingest: give at least one of --file, --zmq, --http\n");
        usage(stderr);
        return 2;
    }
    sf_config cfg;
    int rc = sf_cli_load_config("inv-ingest", config_path, &cfg);
    if (rc)
        return rc;
    sf_log_init("inv-ingest", SF_LOG_INFO);
    sf_cli_handle_signals();
    rc = run(&cfg, &a);
    sf_config_free(&cfg);
    return rc;
}
