/*
 * inv-reconciler: keeps what every sales channel was told equal to what the
 * ledger implies (sync.h), and runs the batch jobs that prove the books:
 * audit (audit.h), full-sync, supplier-report (supplier_report.h).
 *
 * Continuous mode wakes on NOTIFY inv_dirty from the consumers' commits,
 * with a polling fallback of [reconciler] poll_ms, and republishes versions
 * left pending (by a crash or a lost ack) every few seconds.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "broker.h"
#include "cli.h"
#include "expiry.h"
#include "event_parse.h"
#include "log.h"
#include "ops.h"
#include "progress.h"
#include "relay.h"
#include "supplier_report.h"
#include "sync.h"

enum {
    CLAIM_BATCH = 2000,
    REPUBLISH_EVERY_MS = 5000,
    REPUBLISH_AGE_MS = 5000,
    STATS_MS = 10000,
    EXPIRY_BATCH = 1000,
    EXPIRY_EVERY_MS = 1000,
    RELAY_BATCH = 1000
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: inv-reconciler [--config FILE] [--drain]\n"
            "       inv-reconciler [--config FILE] audit [--repair] [--json]\n"
            "       inv-reconciler [--config FILE] full-sync [--json]\n"
            "       inv-reconciler [--config FILE] supplier-report [--since T] [--json|--csv]\n"
            "\n"
            "Without a command: keeps every channel's published availability (ats) equal\n"
            "to the stock. Claims the skus consumers marked dirty (any number of\n"
            "reconcilers may run), records each changed ats as a new version in\n"
            "channel_stock, publishes it to INV_CHANNEL (inv.chan.<channel>, msg id\n"
            "<channel>:<sku>:<version>) and marks it sent. Wakes on NOTIFY inv_dirty, polls\n"
            "every [reconciler] poll_ms. Publishes the RELEASE of every reservation whose\n"
            "expires_at has passed (INV_NOW_MS sets the clock for tests). Relays the\n"
            "RESERVEs inv-api committed (table outbox) to INV_EVENTS, msg id = event_id.\n"
            "--drain: one expiry pass, then exit once nothing is dirty or pending.\n"
            "\n"
            "  audit            rebuild every position from the ledger alone and report each\n"
            "                   drift (sku, location, field, stored, rebuilt); exit 1 if any;\n"
            "                   --repair fixes them and marks the skus dirty\n"
            "  full-sync        recompute every channel's ats for every sku and publish every\n"
            "                   difference\n"
            "  supplier-report  each supplier's latest COUNT per sku and location against\n"
            "                   our book just before it (CSV, or --json); --since T (RFC 3339\n"
            "                   or epoch ms) limits it to counts at or after T\n"
            "\n"
            "Batch jobs show progress on stderr (a bar on a terminal, plain lines\n"
            "otherwise) and print their result on stdout. Environment: INV_NATS_URL,\n"
            "INV_PG_DSN, INV_NOW_MS. Exit: 0 ok, 1 failure (or drift), 2 usage.\n");
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_broker(const sf_config *cfg, sf_broker **b)
{
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = cfg->nats.url;
    bo.tls = (sf_broker_tls){cfg->nats.tls_ca, cfg->nats.tls_cert, cfg->nats.tls_key,
                             cfg->nats.tls_required};
    bo.name = "inv-reconciler";
    sf_error err;
    if (sf_broker_connect(&bo, b, &err)) {
        fprintf(stderr, "inv-reconciler: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* Claim until nothing is dirty. Returns 0, or 1 on a failure. */
static int drain_dirty(const sf_config *cfg, rec_sync *s, rec_progress *p)
{
    for (;;) {
        size_t claimed = 0;
        sf_error err;
        if (rec_sync_step(s, CLAIM_BATCH, sf_cli_now_ms(cfg), &claimed, &err)) {
            fprintf(stderr, "inv-reconciler: %s\n", err.msg);
            return 1;
        }
        if (p)
            rec_progress_step(p, claimed);
        if (claimed == 0 || sf_shutdown)
            return 0;
    }
}

static int run_continuous(const sf_config *cfg, bool drain)
{
    sf_broker *b = NULL;
    if (connect_broker(cfg, &b))
        return 1;
    rec_sync *s = NULL;
    rec_expiry *exp = NULL;
    rec_relay *relay = NULL;
    sf_ops *ops = NULL;
    sf_error err;
    int rc = 1;
    if (sf_ops_open(cfg->ops.endpoint, "inv-reconciler", &ops, &err) ||
        rec_sync_new(cfg, b, ops, &s, &err) || rec_expiry_new(cfg, b, ops, &exp, &err) ||
        rec_relay_new(cfg, b, &relay, &err)) {
        fprintf(stderr, "inv-reconciler: %s\n", err.msg);
        goto out;
    }
    sf_log(SF_LOG_INFO, "reconciling: claim batch %d, poll %d ms", CLAIM_BATCH,
           cfg->reconciler.poll_ms);
    /* Versions a previous run left pending go out first, unchanged. */
    int64_t next_republish = 0, next_stats = mono_ms() + STATS_MS, next_expiry = 0;
    int64_t next_metrics = 0, metrics_at = 0, busy_ms = 0, busy_steps = 0;
    uint64_t expired_total = 0, metrics_skus = 0;
    int backoff = 100;
    while (!sf_shutdown) {
        sf_status st = SF_OK;
        if (mono_ms() >= next_republish) {
            st = rec_sync_republish(s, sf_cli_now_ms(cfg) - (next_republish ? REPUBLISH_AGE_MS : 0),
                                    &err);
            next_republish = mono_ms() + REPUBLISH_EVERY_MS;
        }
        /* Expired reservations get their RELEASE; in --drain mode once only,
         * since a RELEASE no consumer applied yet is found again. */
        size_t expired = 0;
        if (!st && mono_ms() >= next_expiry) {
            st = rec_expiry_step(exp, EXPIRY_BATCH, sf_cli_now_ms(cfg), &expired, &err);
            expired_total += expired;
            next_expiry =
                drain ? INT64_MAX : mono_ms() + (expired == EXPIRY_BATCH ? 0 : EXPIRY_EVERY_MS);
        }
        /* Reservations inv-api committed go to INV_EVENTS (relay.h). */
        size_t relayed = 0;
        if (!st)
            st = rec_relay_step(relay, RELAY_BATCH, &relayed, &err);
        size_t claimed = 0;
        int64_t t0 = mono_ms();
        if (!st)
            st = rec_sync_step(s, CLAIM_BATCH, sf_cli_now_ms(cfg), &claimed, &err);
        if (!st && claimed) { /* the step's latency, for metrics */
            busy_ms += mono_ms() - t0;
            busy_steps++;
        }
        if (st) {
            /* PostgreSQL away: wait and retry; nothing is lost (dirty rows stay). */
            sf_log(SF_LOG_WARN, "%s (retrying in %d ms)", err.msg, backoff);
            usleep((useconds_t)backoff * 1000);
            backoff = backoff < 5000 ? backoff * 2 : 5000;
            continue;
        }
        backoff = 100;
        if (mono_ms() >= next_metrics) { /* metrics.<service> once a second */
            const rec_sync_stats *m = rec_sync_stats_get(s);
            uint64_t dirty = 0;
            sf_error derr;
            if (rec_sync_backlog(s, &dirty, &derr))
                dirty = 0; /* PostgreSQL away: the next step says so */
            int64_t now = mono_ms();
            double secs = metrics_at ? (double)(now - metrics_at) / 1000.0 : 0;
            json_t *j =
                json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "skus_claimed", (json_int_t)m->skus,
                          "versions_published", (json_int_t)m->published, "republished",
                          (json_int_t)m->republished, "unacknowledged", (json_int_t)m->failed,
                          "expired_found", (json_int_t)expired_total, "ops_dropped",
                          (json_int_t)sf_ops_dropped(ops));
            /* the backlog (dirty skus: the reconciler's lag) and the rates */
            json_object_set_new(j, "dirty", json_integer((json_int_t)dirty));
            json_object_set_new(
                j, "skus_per_s",
                json_real(secs > 0 ? (double)(m->skus - metrics_skus) / secs : 0.0));
            json_object_set_new(j, "step_ms",
                                json_real(busy_steps ? (double)busy_ms / (double)busy_steps : 0.0));
            json_object_set_new(j, "stock_published", json_integer((json_int_t)m->stock_sent));
            json_object_set_new(j, "negative_alerts", json_integer((json_int_t)m->negative));
            sf_ops_send(ops, "metrics.inv-reconciler", j);
            metrics_at = now;
            metrics_skus = m->skus;
            busy_ms = busy_steps = 0;
            next_metrics = mono_ms() + 1000;
        }
        if (mono_ms() >= next_stats) {
            const rec_sync_stats *x = rec_sync_stats_get(s);
            sf_log(SF_LOG_INFO,
                   "%" PRIu64 " skus claimed, %" PRIu64 " versions published, %" PRIu64
                   " republished, %" PRIu64 " unacknowledged",
                   x->skus, x->published, x->republished, x->failed);
            const rec_relay_stats *rs = rec_relay_stats_get(relay);
            if (rs->published || rs->failed)
                sf_log(SF_LOG_INFO,
                       "outbox: %" PRIu64 " relayed (%" PRIu64 " already in the stream), %" PRIu64
                       " unacknowledged",
                       rs->published, rs->duplicate, rs->failed);
            next_stats = mono_ms() + STATS_MS;
        }
        if (claimed > 0 || relayed == RELAY_BATCH)
            continue;
        if (drain)
            break;
        if (rec_sync_wait(s, cfg->reconciler.poll_ms, &err))
            sf_log(SF_LOG_WARN, "%s", err.msg);
    }
    if (drain && rec_sync_republish(s, sf_cli_now_ms(cfg), &err))
        fprintf(stderr, "inv-reconciler: %s\n", err.msg);
    const rec_sync_stats *x = rec_sync_stats_get(s);
    sf_log(SF_LOG_INFO,
           "stopping: %" PRIu64 " skus claimed, %" PRIu64 " versions published, %" PRIu64
           " republished, %" PRIu64 " unacknowledged",
           x->skus, x->published, x->republished, x->failed);
    rc = x->failed && drain ? 1 : 0;
out:
    rec_relay_free(relay);
    rec_expiry_free(exp);
    rec_sync_free(s);
    sf_ops_close(ops);
    sf_broker_close(b);
    return rc;
}

static int run_full_sync(const sf_config *cfg, bool json)
{
    sf_broker *b = NULL;
    if (connect_broker(cfg, &b))
        return 1;
    rec_sync *s = NULL;
    sf_error err;
    int rc = 1;
    uint64_t n = 0;
    if (rec_sync_new(cfg, b, NULL, &s, &err) || rec_sync_republish(s, sf_cli_now_ms(cfg), &err) ||
        rec_sync_mark_all(s, &n, &err)) {
        fprintf(stderr, "inv-reconciler full-sync: %s\n", err.msg);
        goto out;
    }
    rec_progress p;
    rec_progress_begin(&p, stderr, "full-sync", n);
    rc = drain_dirty(cfg, s, &p);
    rec_progress_end(&p);
    const rec_sync_stats *x = rec_sync_stats_get(s);
    if (json) {
        json_t *o = json_pack("{s:I, s:I, s:I, s:I}", "skus", (json_int_t)n, "claimed",
                              (json_int_t)x->skus, "published", (json_int_t)x->published,
                              "unacknowledged", (json_int_t)x->failed);
        char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (t)
            printf("%s\n", t);
        free(t);
        json_decref(o);
    } else {
        printf("full-sync: %" PRIu64 " skus recomputed, %" PRIu64
               " channel versions published, %" PRIu64 " unacknowledged (left pending)\n",
               x->skus, x->published, x->failed);
    }
    if (x->failed)
        rc = 1;
out:
    rec_sync_free(s);
    sf_broker_close(b);
    return rc;
}

/* RFC 3339 or epoch ms. */
static bool parse_time(const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end && v >= 0) {
        *out = v;
        return true;
    }
    sf_error err;
    return sf_time_parse_rfc3339(s, strlen(s), out, &err) == SF_OK;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"drain", no_argument, NULL, 'd'},
                                             {"repair", no_argument, NULL, 'r'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"csv", no_argument, NULL, 'C'},
                                             {"since", required_argument, NULL, 's'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    const char *config_path = NULL, *since = NULL;
    bool drain = false, repair = false, json = false, csv = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'd': drain = true; break;
        case 'r': repair = true; break;
        case 'j': json = true; break;
        case 'C': csv = true; break;
        case 's': since = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("inv-reconciler %s\n", SF_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    const char *cmd = optind < argc ? argv[optind++] : NULL;
    const char *why = NULL;
    int64_t since_ms = 0;
    if (optind < argc)
        why = "unexpected argument";
    else if (cmd && strcmp(cmd, "audit") && strcmp(cmd, "full-sync") &&
             strcmp(cmd, "supplier-report"))
        why = "unknown command (audit, full-sync, supplier-report)";
    else if (drain && cmd)
        why = "--drain goes with the continuous mode (no command)";
    else if (repair && (!cmd || strcmp(cmd, "audit")))
        why = "--repair goes with audit";
    else if ((since || csv) && (!cmd || strcmp(cmd, "supplier-report")))
        why = "--since and --csv go with supplier-report";
    else if (json && csv)
        why = "--json or --csv, not both";
    else if (json && !cmd)
        why = "--json goes with a command";
    else if (since && !parse_time(since, &since_ms))
        why = "--since: not an RFC 3339 time or epoch milliseconds";
    if (why) {
        fprintf(stderr, "inv-reconciler: %s\n", why);
        usage(stderr);
        return 2;
    }
    sf_config cfg;
    int rc = sf_cli_load_config("inv-reconciler", config_path, &cfg);
    if (rc)
        return rc;
    sf_log_init("inv-reconciler", SF_LOG_INFO);
    sf_cli_handle_signals();
    if (!cmd) {
        rc = run_continuous(&cfg, drain);
    } else if (!strcmp(cmd, "full-sync")) {
        rc = run_full_sync(&cfg, json);
    } else if (!strcmp(cmd, "audit")) {
        rec_audit_opts o = {.repair = repair, .json = json};
        rc = rec_audit(&cfg, &o, stdout, stderr);
    } else {
        rec_report_opts o = {.since_ms = since_ms, .json = json};
        rc = rec_supplier_report(&cfg, &o, stdout, stderr);
    }
    sf_config_free(&cfg);
    sf_broker_library_cleanup();
    return rc;
}
