/*
 * inv-supplier: supplier feeds (csv, jsonl, x12-846, x12-856, http) ->
 * events -> JetStream, with source = the supplier id.
 *
 * Modes: `--supplier ID --file PATH` runs one feed and exits;
 * `--supplier ID` alone polls an http supplier once; `--watch DIR` serves a
 * drop directory (DIR/inbox/<supplier>/ -> DIR/archive/<supplier>/ once
 * every good event is acknowledged, DIR/rejected/<supplier>/ plus a
 * `.errors` file when any row was rejected) and polls every http supplier
 * on its interval, until SIGTERM. `--dry-run` prints the events as JSON
 * lines and publishes nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "cli.h"
#include "db.h"
#include "feed_run.h"
#include "http_poll.h"
#include "log.h"
#include "ops.h"
#include "supplier_config.h"

enum { SCAN_MS = 1000, FILES_PER_SCAN = 1000 };

static void usage(FILE *out)
{
    fprintf(out, "usage: inv-supplier [--config FILE] --supplier ID [--file PATH] [--dry-run]\n"
                 "                    [--errors PATH] [--retry-for SECONDS]\n"
                 "       inv-supplier [--config FILE] --watch DIR [--once] [--retry-for SECONDS]\n"
                 "\n"
                 "Turns supplier feeds into stock events (COUNT, ASN, RECEIPT) on JetStream\n"
                 "(inv.evt.<kind>.<location>, source = the supplier id). Each supplier is a\n"
                 "[supplier.<id>] section of the config file: format (csv, jsonl, x12-846,\n"
                 "x12-856, http), location, location_map, sku_map, timezone and the format's\n"
                 "own keys (README \"Supplier feeds\").\n"
                 "\n"
                 "  --supplier ID    the supplier whose feed this is\n"
                 "  --file PATH      one feed document (- is stdin); without it an http supplier\n"
                 "                   is polled once\n"
                 "  --dry-run        parse and map, print the events as JSON lines on stdout,\n"
                 "                   rejects on stderr; publish nothing\n"
                 "  --errors PATH    also write each rejected row as NAME:POSITION: reason\n"
                 "  --watch DIR      serve DIR/inbox/<supplier>/: a feed moves to DIR/archive/\n"
                 "                   once JetStream acknowledged every good event, or to\n"
                 "                   DIR/rejected/ with NAME.errors when a row was rejected;\n"
                 "                   http suppliers are polled on their interval\n"
                 "  --once           with --watch: one scan, then exit\n"
                 "  --retry-for SECS keep re-publishing an unacknowledged event this long (60)\n"
                 "  --help, --version\n"
                 "\n"
                 "Re-running a document publishes nothing new: event ids come from (supplier,\n"
                 "document digest, record number), and feed_checkpoints records how far each\n"
                 "document got. Exit: 0 all published, 1 a row was rejected or not published\n"
                 "or a failure, 2 usage. Environment: INV_NATS_URL, INV_PG_DSN.\n");
}

typedef struct supplier_args {
    const char *supplier;
    const char *file;
    const char *errors;
    const char *watch;
    bool dry_run;
    bool once;
    long retry_for_s;
} supplier_args;

typedef struct supplier_env {
    const sf_config *cfg;
    const supplier_args *a;
    sf_broker *broker;
    PGconn *conn;
    sf_ops *ops; /* metrics.inv-supplier, alert.circuit_open */
    uint64_t feeds, published, duplicate, rejected, failed;
} supplier_env;

static void print_stats(const char *name, const sf_feed_stats *s, bool dry_run)
{
    if (dry_run) {
        fprintf(stderr,
                "%s: %" PRIu64 " records, %" PRIu64 " events (dry run, not published), %" PRIu64
                " rejected\n",
                name, s->records, s->published, s->rejected);
        return;
    }
    if (s->already_done) {
        printf("%s: document %.16s already published (feed_checkpoints): nothing to do\n", name,
               s->digest);
        return;
    }
    printf("%s: %" PRIu64 " records, %" PRIu64 " published, %" PRIu64 " duplicate, %" PRIu64
           " skipped (checkpoint), %" PRIu64 " rejected, %" PRIu64 " failed%s\n",
           name, s->records, s->published, s->duplicate, s->skipped, s->rejected, s->failed,
           s->stopped ? " (stopped)" : "");
    fflush(stdout);
}

/* (Re)connect PostgreSQL when needed: the sku map and checkpoints. */
static sf_status ensure_db(supplier_env *env, sf_error *err)
{
    return sf_db_ensure(&env->conn, env->cfg->pg.dsn, NULL, err);
}

static sf_status run_doc(supplier_env *env, const sf_supplier *sup, const char *name,
                         const char *data, size_t len, FILE *errors, sf_feed_stats *stats,
                         sf_error *err)
{
    sf_status st = SF_OK;
    if (!env->a->dry_run || !sup->sku_identity)
        st = ensure_db(env, err);
    if (st)
        return st;
    sf_feed_run_ctx ctx = {.sup = sup,
                           .broker = env->broker,
                           .conn = env->conn,
                           .max_inflight = env->cfg->ingest.max_inflight,
                           .retry_for_ms = (int64_t)env->a->retry_for_s * 1000,
                           .stop = &sf_shutdown,
                           .now_ms = sf_cli_now_ms(env->cfg),
                           .dry_run = env->a->dry_run,
                           .dry_out = stdout,
                           .errors = errors};
    st = sf_feed_run(&ctx, name, data, len, stats, err);
    print_stats(name, stats, env->a->dry_run);
    env->feeds++;
    env->published += stats->published;
    env->duplicate += stats->duplicate;
    env->rejected += stats->rejected;
    env->failed += stats->failed;
    return st;
}

static bool doc_clean(sf_status st, const sf_feed_stats *s)
{
    return st == SF_OK && !s->stopped && s->failed == 0 && s->rejected == 0;
}

static sf_status new_poller(const sf_supplier *sup, sf_http_poller **out, sf_error *err)
{
    sf_http_poll_opts o = sup->poll;
    o.stop = &sf_shutdown;
    return sf_http_poller_new(&o, out, err);
}

/* One http poll of sup. Returns 0 ok or nothing new, 1 otherwise. */
static int poll_http(supplier_env *env, const sf_supplier *sup, sf_http_poller *poller,
                     FILE *errors)
{
    sf_error err;
    sf_poll_result res;
    char *body = NULL;
    size_t len = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t mono = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    sf_status fst = sf_http_poller_fetch(poller, mono, &res, &body, &len, &err);
    if (sf_http_poller_circuit_opened(poller)) {
        char msg[SF_ERROR_MSG_MAX + 160];
        snprintf(msg, sizeof msg, "%s: circuit open after %d failed polls: %s", sup->id,
                 sf_http_poller_failures(poller), err.msg);
        sf_log(SF_LOG_WARN, "%s", msg);
        sf_ops_alert(env->ops, "circuit_open", msg,
                     json_pack("{s:s, s:i}", "supplier", sup->id, "failures",
                               sf_http_poller_failures(poller)));
    }
    if (fst) {
        sf_log(SF_LOG_ERROR, "%s: %s", sup->id, err.msg);
        free(body);
        return 1;
    }
    if (res == SF_POLL_NOT_MODIFIED || res == SF_POLL_CIRCUIT_OPEN) {
        sf_log(SF_LOG_INFO, "%s@http: %s", sup->id,
               res == SF_POLL_NOT_MODIFIED ? "not modified" : "circuit open: not polled");
        return res == SF_POLL_CIRCUIT_OPEN;
    }
    if (res == SF_POLL_FAILED) {
        if (sf_shutdown) /* SIGTERM cut the poll short: not the supplier's fault */
            return 0;
        sf_log(SF_LOG_ERROR, "%s: %s", sup->id, err.msg);
        return 1;
    }
    /* The URL may carry credentials: the document is named after the supplier. */
    char name[SF_STR_MAX + 8];
    snprintf(name, sizeof name, "%s@http", sup->id);
    sf_feed_stats stats;
    sf_status st = run_doc(env, sup, name, body, len, errors, &stats, &err);
    free(body);
    if (st)
        sf_log(SF_LOG_ERROR, "%s: %s", name, err.msg);
    /* Remember the validators only once the body is settled, so a failed
     * run fetches the same document again. */
    if (st == SF_OK && !stats.stopped && stats.failed == 0)
        sf_http_poller_commit(poller);
    return doc_clean(st, &stats) || stats.already_done ? 0 : 1;
}

static int run_file(supplier_env *env, const sf_supplier *sup)
{
    const supplier_args *a = env->a;
    sf_error err;
    FILE *errors = NULL;
    if (a->errors && !(errors = fopen(a->errors, "a"))) {
        fprintf(stderr, "inv-supplier: %s: cannot open errors file: %s\n", a->errors,
                strerror(errno));
        return 1;
    }
    char *data = NULL;
    size_t len = 0;
    sf_feed_stats stats;
    const char *path = a->file;
    sf_status st = !strcmp(path, "-") ? sf_feed_read_file("/dev/stdin", &data, &len, &err)
                                      : sf_feed_read_file(path, &data, &len, &err);
    if (!st)
        st =
            run_doc(env, sup, !strcmp(path, "-") ? "stdin" : path, data, len, errors, &stats, &err);
    free(data);
    if (errors)
        fclose(errors);
    if (st) {
        fprintf(stderr, "inv-supplier: %s\n", err.msg);
        return 1;
    }
    return doc_clean(st, &stats) || stats.already_done ? 0 : 1;
}

/* snprintf into a path buffer; -1 when it does not fit (never truncated). */
__attribute__((format(printf, 3, 4))) static int fmt_path(char *buf, size_t size, const char *fmt,
                                                          ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int mkdirs(const char *path)
{
    char tmp[4096];
    if (fmt_path(tmp, sizeof tmp, "%s", path))
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

/* Move src to dir/name, never over an existing file. */
static int move_to(const char *src, const char *dir, const char *name, char *dst, size_t size)
{
    if (mkdirs(dir))
        return -1;
    if (fmt_path(dst, size, "%s/%s", dir, name))
        return -1;
    for (int i = 1; access(dst, F_OK) == 0; i++)
        if (i == 1000 || fmt_path(dst, size, "%s/%s.%d", dir, name, i))
            return -1;
    return rename(src, dst);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every waiting feed of sup's inbox, oldest name first. */
static void scan_inbox(supplier_env *env, const sf_supplier *sup)
{
    const char *root = env->a->watch;
    char inbox[4096], path[4096], dst[4096], dir[4096], errpath[4096];
    if (fmt_path(inbox, sizeof inbox, "%s/inbox/%s", root, sup->id))
        return;
    DIR *d = opendir(inbox);
    if (!d)
        return;
    char *names[FILES_PER_SCAN];
    size_t n = 0;
    struct dirent *de;
    while (n < FILES_PER_SCAN && (de = readdir(d))) {
        if (de->d_name[0] == '.') /* dot files are still being written */
            continue;
        struct stat sb;
        if (fmt_path(path, sizeof path, "%s/%s", inbox, de->d_name) || stat(path, &sb) ||
            !S_ISREG(sb.st_mode))
            continue;
        if (!(names[n] = strdup(de->d_name)))
            break;
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    for (size_t i = 0; i < n && !sf_shutdown; i++) {
        if (fmt_path(path, sizeof path, "%s/%s", inbox, names[i]) ||
            fmt_path(dir, sizeof dir, "%s/rejected/%s", root, sup->id) ||
            fmt_path(errpath, sizeof errpath, "%s/.%s.errors.tmp", dir, names[i])) {
            sf_log(SF_LOG_ERROR, "%s/%s: path too long; left in the inbox", inbox, names[i]);
            continue;
        }
        FILE *errors = mkdirs(dir) ? NULL : fopen(errpath, "w");
        char *data = NULL;
        size_t len = 0;
        sf_feed_stats stats;
        memset(&stats, 0, sizeof stats);
        sf_error err;
        sf_status st = sf_feed_read_file(path, &data, &len, &err);
        if (st == SF_EINVAL && errors)
            fprintf(errors, "%s: %s\n", path, err.msg);
        if (!st)
            st = run_doc(env, sup, path, data, len, errors, &stats, &err);
        free(data);
        if (errors)
            fclose(errors);
        if (st && st != SF_EINVAL) {
            /* PostgreSQL or NATS away: the feed stays in the inbox. */
            sf_log(SF_LOG_ERROR, "%s: %s (left in the inbox, retried next scan)", path, err.msg);
            unlink(errpath);
        } else if (stats.stopped || stats.failed) {
            sf_log(SF_LOG_WARN, "%s: not every event was acknowledged; left in the inbox", path);
            unlink(errpath);
        } else if (st == SF_EINVAL || stats.rejected) {
            char final[4200];
            if (move_to(path, dir, names[i], dst, sizeof dst) == 0 &&
                fmt_path(final, sizeof final, "%s.errors", dst) == 0) {
                rename(errpath, final);
                sf_log(SF_LOG_WARN, "%s -> %s (%s)", path, dst, final);
            } else {
                sf_log(SF_LOG_ERROR, "%s: cannot move to %s: %s", path, dir, strerror(errno));
            }
        } else {
            unlink(errpath);
            if (fmt_path(dir, sizeof dir, "%s/archive/%s", root, sup->id) == 0 &&
                move_to(path, dir, names[i], dst, sizeof dst) == 0)
                sf_log(SF_LOG_INFO, "%s -> %s", path, dst);
            else
                sf_log(SF_LOG_ERROR, "%s: cannot move to %s: %s", path, dir, strerror(errno));
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
}

static int run_watch(supplier_env *env, const sf_suppliers *sups)
{
    const char *root = env->a->watch;
    char dir[4096];
    sf_http_poller **pollers = calloc(sups->n ? sups->n : 1, sizeof *pollers);
    if (!pollers)
        return 1;
    int rc = 0;
    for (size_t i = 0; i < sups->n; i++) {
        const sf_supplier *sup = &sups->items[i];
        if (fmt_path(dir, sizeof dir, "%s/inbox/%s", root, sup->id) || mkdirs(dir)) {
            fprintf(stderr, "inv-supplier: %s: cannot create: %s\n", dir, strerror(errno));
            rc = 1;
            goto out;
        }
        sf_error err;
        if (sup->http && new_poller(sup, &pollers[i], &err)) {
            fprintf(stderr, "inv-supplier: %s: %s\n", sup->id, err.msg);
            rc = 1;
            goto out;
        }
    }
    sf_log(SF_LOG_INFO, "watching %s/inbox (%zu suppliers)", root, sups->n);
    int64_t metrics_at_ms = 0;
    uint64_t metrics_published = 0;
    while (!sf_shutdown) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t mono = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        for (size_t i = 0; i < sups->n && !sf_shutdown; i++) {
            const sf_supplier *sup = &sups->items[i];
            scan_inbox(env, sup);
            if (pollers[i] && mono >= sf_http_poller_next_at(pollers[i]))
                (void)poll_http(env, sup, pollers[i], NULL);
        }
        json_t *mj = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "suppliers", (json_int_t)sups->n, "feeds",
            (json_int_t)env->feeds, "published", (json_int_t)env->published, "duplicate",
            (json_int_t)env->duplicate, "rejected", (json_int_t)env->rejected, "failed",
            (json_int_t)env->failed, "ops_dropped", (json_int_t)sf_ops_dropped(env->ops));
        /* the publish rate since the last report (the dashboard's chart) */
        int64_t now_ms = sf_now_ms();
        json_object_set_new(mj, "events_per_s",
                            json_real(metrics_at_ms && now_ms > metrics_at_ms
                                          ? (double)(env->published - metrics_published) * 1000.0 /
                                                (double)(now_ms - metrics_at_ms)
                                          : 0.0));
        metrics_at_ms = now_ms;
        metrics_published = env->published;
        sf_ops_send(env->ops, "metrics.inv-supplier", mj);
        if (env->a->once)
            break;
        for (int t = 0; t < SCAN_MS / 50 && !sf_shutdown; t++)
            usleep(50 * 1000);
    }
out:
    for (size_t i = 0; i < sups->n; i++)
        sf_http_poller_free(pollers[i]);
    free(pollers);
    return rc;
}

static int run(const sf_config *cfg, const supplier_args *a)
{
    sf_error err;
    sf_suppliers sups;
    if (sf_suppliers_load(cfg, &sups, &err)) {
        fprintf(stderr, "inv-supplier: %s\n", err.msg);
        return 2;
    }
    int rc = 1;
    supplier_env env = {.cfg = cfg, .a = a};
    if (sf_http_global_init(&err)) {
        fprintf(stderr, "inv-supplier: %s\n", err.msg);
        sf_suppliers_free(&sups);
        return 1;
    }
    const sf_supplier *sup = NULL;
    if (a->supplier && !(sup = sf_suppliers_find(&sups, a->supplier))) {
        fprintf(stderr, "inv-supplier: no [supplier.%s] section in %s\n", a->supplier,
                cfg->path[0] ? cfg->path : "the config (give --config FILE)");
        rc = 2;
        goto out;
    }
    if (sup && !a->file && !sup->http) {
        fprintf(stderr, "inv-supplier: %s is a %s supplier: give --file PATH\n", sup->id,
                sup->format);
        rc = 2;
        goto out;
    }
    if (sf_ops_open(a->dry_run ? "" : cfg->ops.endpoint, "inv-supplier", &env.ops, &err)) {
        fprintf(stderr, "inv-supplier: %s\n", err.msg);
        goto out;
    }
    if (!a->dry_run) {
        sf_broker_opts bo;
        sf_broker_opts_init(&bo);
        bo.urls = cfg->nats.url;
        bo.tls = (sf_broker_tls){cfg->nats.tls_ca, cfg->nats.tls_cert, cfg->nats.tls_key,
                                 cfg->nats.tls_required};
        bo.name = "inv-supplier";
        if (sf_broker_connect(&bo, &env.broker, &err)) {
            fprintf(stderr, "inv-supplier: %s\n", err.msg);
            goto out;
        }
    }
    if (a->watch) {
        rc = run_watch(&env, &sups);
    } else if (a->file) {
        rc = run_file(&env, sup);
    } else {
        sf_http_poller *p = NULL;
        if (new_poller(sup, &p, &err)) {
            fprintf(stderr, "inv-supplier: %s: %s\n", sup->id, err.msg);
            goto out;
        }
        FILE *errors = a->errors ? fopen(a->errors, "a") : NULL;
        rc = poll_http(&env, sup, p, errors);
        if (errors)
            fclose(errors);
        sf_http_poller_free(p);
    }
out:
    sf_ops_close(env.ops);
    sf_broker_close(env.broker);
    PQfinish(env.conn);
    sf_suppliers_free(&sups);
    sf_http_global_cleanup();
    sf_broker_library_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"supplier", required_argument, NULL, 's'},
                                             {"file", required_argument, NULL, 'f'},
                                             {"errors", required_argument, NULL, 'e'},
                                             {"watch", required_argument, NULL, 'w'},
                                             {"once", no_argument, NULL, 'o'},
                                             {"dry-run", no_argument, NULL, 'n'},
                                             {"retry-for", required_argument, NULL, 'R'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    supplier_args a = {.retry_for_s = 60};
    const char *config_path = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 's': a.supplier = optarg; break;
        case 'f': a.file = optarg; break;
        case 'e': a.errors = optarg; break;
        case 'w': a.watch = optarg; break;
        case 'o': a.once = true; break;
        case 'n': a.dry_run = true; break;
        case 'R': {
            char *end;
            a.retry_for_s = strtol(optarg, &end, 10);
            if (*end || a.retry_for_s < 0 || a.retry_for_s > 86400) {
                fprintf(stderr, "inv-supplier: --retry-for: '%s' is not 0..86400\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        case 'V': printf("inv-supplier %s\n", SF_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    const char *why = NULL;
    if (optind < argc)
        why = "unexpected argument";
    else if (!a.watch && !a.supplier)
        why = "give --supplier ID (with --file PATH) or --watch DIR";
    else if (a.watch && (a.supplier || a.file))
        why = "--watch serves every supplier: drop --supplier and --file";
    else if (a.once && !a.watch)
        why = "--once goes with --watch";
    else if (a.dry_run && a.watch)
        why = "--dry-run goes with --supplier";
    if (why) {
        fprintf(stderr, "inv-supplier: %s\n", why);
        usage(stderr);
        return 2;
    }
    sf_config cfg;
    int rc = sf_cli_load_config("inv-supplier", config_path, &cfg);
    if (rc)
        return rc;
    sf_log_init("inv-supplier", SF_LOG_INFO);
    sf_cli_handle_signals();
    rc = run(&cfg, &a);
    sf_config_free(&cfg);
    return rc;
}
