/*
 * inv-consumer: JetStream INV_EVENTS (durable "stock-applier") -> PostgreSQL.
 *
 * Stateless: run any number side by side; they share the durable consumer
 * and the ledger makes every apply idempotent. SIGTERM/SIGINT finish the
 * batch in hand, then exit 0. --drain exits once nothing is pending.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "applier.h"
#include "broker_pull.h"
#include "cli.h"
#include "codec.h"
#include "ledger.h"
#include "log.h"
#include "ops.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: inv-consumer [--config FILE] [--batch N] [--drain] [--name NAME]\n"
            "\n"
            "Applies events from JetStream stream INV_EVENTS (durable consumer\n"
            "stock-applier) to PostgreSQL positions, exactly once in effect: each\n"
            "fetched batch is inserted into the ledger and applied in one transaction,\n"
            "and acknowledged after the commit. Bad messages go to INV_DLQ with a reason.\n"
            "Run as many as you like in parallel.\n"
            "\n"
            "  --config FILE  INI configuration ([nats], [pg], [consumer] sections)\n"
            "  --batch N      messages per fetch and transaction (default [consumer] batch, 2000)\n"
            "  --drain        exit 0 once the stream has nothing pending for the consumer\n"
            "  --name NAME    connection name shown by the server (default inv-consumer)\n"
            "  --help, --version\n"
            "\n"
            "Environment: INV_NATS_URL, INV_PG_DSN, INV_NOW_MS override the config.\n"
            "SIGTERM finishes the batch in hand and exits 0.\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Nothing left for the durable consumer: no pending, nothing unacked. */
static int drained(sf_broker *b)
{
    uint64_t pending = 0, ack_pending = 0, redelivered = 0;
    sf_error err;
    if (sf_broker_consumer_info(b, SF_STREAM_EVENTS, SF_CONSUMER_APPLIER, &pending, &ack_pending,
                                &redelivered, NULL, &err) != SF_OK)
        return 0;
    return pending == 0 && ack_pending == 0;
}

static int run(const sf_config *cfg, int batch_size, int drain, const char *name)
{
    sf_error err;
    sf_error_clear(&err);
    sf_broker *broker = NULL;
    sf_ledger *ledger = NULL;
    sf_codec *codec = NULL;
    sf_sub *sub = NULL;
    sf_batch *batch = NULL;
    sf_applier *ap = NULL;
    sf_ops *ops = NULL;
    int rc = 1;

    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = cfg->nats.url;
    bo.tls = (sf_broker_tls){cfg->nats.tls_ca, cfg->nats.tls_cert, cfg->nats.tls_key,
                             cfg->nats.tls_required};
    bo.name = name;
    if (sf_broker_connect(&bo, &broker, &err) || sf_ledger_open(cfg->pg.dsn, &ledger, &err) ||
        sf_codec_new(&codec, &err) ||
        sf_broker_pull_subscribe(broker, SF_STREAM_EVENTS, SF_CONSUMER_APPLIER, &sub, &err) ||
        sf_batch_new(&batch, &err) || sf_ops_open(cfg->ops.endpoint, name, &ops, &err))
        goto out;
    sf_applier_opts ao;
    sf_applier_opts_init(&ao);
    ao.max_deliver = cfg->consumer.max_deliver;
    ao.max_future_ms = cfg->ingest.max_future_ms;
    ao.max_msg_bytes = cfg->consumer.max_msg_bytes;
    ao.now_ms_override = cfg->now_ms_override;
    ao.ops = ops;
    if (sf_applier_new(broker, ledger, codec, &ao, &sf_shutdown, &ap, &err))
        goto out;

    sf_log(SF_LOG_INFO, "consuming %s/%s, batch %d", SF_STREAM_EVENTS, SF_CONSUMER_APPLIER,
           batch_size);
    double last_report = now_s(), last_metrics = last_report, busy_s = 0;
    uint64_t last_msgs = 0, metrics_msgs = 0, metrics_batches = 0;
    int fetch_failures = 0;
    while (!sf_shutdown) {
        sf_status st = sf_sub_fetch(sub, batch_size, 1000, batch, &err);
        if (st == SF_ETIMEOUT) {
            if (drain && drained(broker))
                break;
        } else if (st != SF_OK) {
            if (fetch_failures++ % 20 == 0)
                sf_log(SF_LOG_WARN, "fetch failed, retrying: %s", err.msg);
            struct timespec ts = {0, 250 * 1000000L};
            nanosleep(&ts, NULL);
        } else {
            fetch_failures = 0;
            double t0 = now_s();
            st = sf_applier_handle(ap, batch, &err);
            busy_s += now_s() - t0;
            sf_batch_release(batch);
            if (st != SF_OK && !sf_shutdown)
                sf_log(SF_LOG_ERROR, "batch not applied: %s", err.msg);
        }
        double t = now_s();
        if (t - last_metrics >= 1.0) { /* metrics.<service> once a second */
            const sf_applier_stats *s = sf_applier_stats_get(ap);
            uint64_t lag = 0, unacked = 0, redelivered = 0, dlq = 0;
            sf_error ierr;
            if (sf_broker_consumer_info(broker, SF_STREAM_EVENTS, SF_CONSUMER_APPLIER, &lag,
                                        &unacked, &redelivered, NULL, &ierr) ||
                sf_broker_stream_info(broker, SF_STREAM_DLQ, &dlq, NULL, NULL, NULL, &ierr))
                lag = unacked = dlq = 0;
            uint64_t nb = s->batches - metrics_batches;
            sf_ops_send(ops, "metrics.inv-consumer",
                        json_pack("{s:s, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name",
                                  name, "events_per_s",
                                  (double)(s->messages - metrics_msgs) / (t - last_metrics),
                                  "batch_ms", nb ? busy_s * 1000.0 / (double)nb : 0.0, "lag",
                                  (json_int_t)lag, "unacked", (json_int_t)unacked, "dlq",
                                  (json_int_t)dlq, "applied", (json_int_t)s->applied, "duplicates",
                                  (json_int_t)s->duplicates, "sidelined", (json_int_t)s->sidelined,
                                  "retries", (json_int_t)s->retries, "ops_dropped",
                                  (json_int_t)sf_ops_dropped(ops)));
            metrics_msgs = s->messages;
            metrics_batches = s->batches;
            busy_s = 0;
            last_metrics = t;
        }
        if (t - last_report >= 5.0) {
            const sf_applier_stats *s = sf_applier_stats_get(ap);
            sf_log(SF_LOG_INFO,
                   "%.0f msg/s; total %" PRIu64 " messages, %" PRIu64 " applied, %" PRIu64
                   " duplicate, %" PRIu64 " sidelined, %" PRIu64 " retries",
                   (double)(s->messages - last_msgs) / (t - last_report), s->messages, s->applied,
                   s->duplicates, s->sidelined, s->retries);
            last_msgs = s->messages;
            last_report = t;
        }
    }
    const sf_applier_stats *s = sf_applier_stats_get(ap);
    sf_log(SF_LOG_INFO,
           "stopping: %" PRIu64 " messages, %" PRIu64 " applied, %" PRIu64 " duplicate, %" PRIu64
           " sidelined",
           s->messages, s->applied, s->duplicates, s->sidelined);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "inv-consumer: %s\n", err.msg);
    sf_applier_free(ap);
    sf_ops_close(ops);
    sf_batch_destroy(batch);
    sf_sub_free(sub);
    sf_codec_free(codec);
    sf_ledger_close(ledger);
    sf_broker_close(broker);
    sf_broker_library_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"batch", required_argument, NULL, 'b'},
                                             {"drain", no_argument, NULL, 'd'},
                                             {"name", required_argument, NULL, 'n'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    const char *config_path = NULL, *name = "inv-consumer";
    long batch = 0;
    int drain = 0, opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'b': {
            char *end;
            batch = strtol(optarg, &end, 10);
            if (*end || batch < 1 || batch > SF_FETCH_MAX) {
                fprintf(stderr, "inv-consumer: --batch: '%s' is not 1..%d\n", optarg, SF_FETCH_MAX);
                return 2;
            }
            break;
        }
        case 'd': drain = 1; break;
        case 'n': name = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("inv-consumer %s\n", SF_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "inv-consumer: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    sf_config cfg;
    int rc = sf_cli_load_config("inv-consumer", config_path, &cfg);
    if (rc)
        return rc;
    sf_log_init("inv-consumer", SF_LOG_INFO);
    sf_cli_handle_signals();
    rc = run(&cfg, batch ? (int)batch : cfg.consumer.batch, drain, name);
    sf_config_free(&cfg);
    return rc;
}
