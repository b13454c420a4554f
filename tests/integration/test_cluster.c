/*
 * The pipeline on a 3-node JetStream cluster (INV_EVENTS, INV_DLQ and
 * INV_CHANNEL with 3 replicas) loses nothing when the INV_EVENTS stream
 * leader is killed with SIGKILL mid-run: inv-ingest retries what was not
 * acknowledged with the same msg id, the two inv-consumers reconnect to
 * the nodes left, a second workload goes through end to end on the two
 * nodes, and the stream, the ledger and the positions hold exactly the
 * distinct events. The killed node then restarts with its data and catches
 * up.
 *
 * The suite brings up its own cluster beside the test stack's single
 * nats-server (scripts/stack.sh cluster up, same STACK_DIR, ports just above
 * NATS_PORT) and reuses the test stack's PostgreSQL. Its services find the
 * cluster through INV_NATS_URL, set to the three URLs for the test's
 * process and its children and restored afterwards. Figures (election time,
 * rates with one node down) are printed on stderr as "cluster: ..." lines.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "stockcheck.h"

#define CL_EVENTS 60000
#define CL_KILL_AT (CL_EVENTS / 3) /* messages stored before the kill */
#define CL_POLL_WAIT_MS 1000       /* JetStream API wait of the test's polling */

static char cl__saved_url[4096];
static jsCtx *cl__jsctx; /* the test's polling context, see cl__js */
static bool cl__had_url;
static char cl__urls[256];

static void cl__setenv_port_list(const char *name, int first)
{
    char v[64];
    snprintf(v, sizeof v, "%d,%d,%d", first, first + 1, first + 2);
    setenv(name, v, 1);
}

/* Criterion .init: the cluster (client, route and monitor ports NATS_PORT +
 * 10..18), INV_NATS_URL pointing at it, a fresh database and invctl setup
 * with [nats] replicas = 3. */
static void cl_up(void)
{
    int base = atoi(fx_env("NATS_PORT")) + 10;
    cr_assert(base > 10 && base + 8 <= 65535, "NATS_PORT %s leaves no room for the cluster",
              fx_env("NATS_PORT"));
    cl__setenv_port_list("CLUSTER_PORTS", base);
    cl__setenv_port_list("CLUSTER_ROUTE_PORTS", base + 3);
    cl__setenv_port_list("CLUSTER_MON_PORTS", base + 6);
    snprintf(cl__urls, sizeof cl__urls,
             "nats://127.0.0.1:%d,nats://127.0.0.1:%d,nats://127.0.0.1:%d", base, base + 1,
             base + 2);
    const char *old = getenv("INV_NATS_URL");
    cl__had_url = old != NULL;
    snprintf(cl__saved_url, sizeof cl__saved_url, "%s", old ? old : "");

    fx_stack("cluster up");
    setenv("INV_NATS_URL", cl__urls, 1);
    fx_reset_bare();

    char ini[512], out[16384];
    sc_tmp("cluster.ini", ini, sizeof ini);
    FILE *f = fopen(ini, "w");
    cr_assert(f, "cannot write %s", ini);
    fputs("[nats]\nreplicas = 3\n", f);
    cr_assert(fclose(f) == 0);
    int rc = fx_run((const char *const[]){"invctl", "--config", ini, "setup", NULL}, NULL, out,
                    sizeof out, 120000);
    cr_assert(rc == 0, "invctl --config %s setup exited %d:\n%s", ini, rc, out);
}

/* Run "$SF_STACK cluster down" without asserting (Criterion ignores
 * assertions in .fini); its output goes to a log beside the stack. */
static void cl__cluster_down(void)
{
    const char *stack = getenv("SF_STACK");
    if (!stack || !*stack)
        return;
    char log[512];
    sc_tmp("cluster-down.log", log, sizeof log);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "a", stdout);
        if (f)
            dup2(STDOUT_FILENO, STDERR_FILENO);
        execl(stack, stack, "cluster", "down", (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

static void cl_down(void)
{
    if (cl__jsctx) {
        jsCtx_Destroy(cl__jsctx);
        cl__jsctx = NULL;
    }
    fx_teardown();
    cl__cluster_down();
    if (cl__had_url)
        setenv("INV_NATS_URL", cl__saved_url, 1);
    else
        unsetenv("INV_NATS_URL");
    unsetenv("CLUSTER_PORTS");
    unsetenv("CLUSTER_ROUTE_PORTS");
    unsetenv("CLUSTER_MON_PORTS");
}

TestSuite(cluster, .init = cl_up, .fini = cl_down, .timeout = 600);

/* ---- stream state through a JetStream context with a short API wait ---- */

typedef struct cl_stream {
    uint64_t msgs;
    char leader[32]; /* "" while there is none */
    int replicas;    /* configured */
    int peers;       /* followers listed */
    int current;     /* followers current with no lag */
} cl_stream;

/* A context of its own on the fixture's connection: a 1 s API wait, so an
 * unanswered poll during the election costs 1 s, not the default 5 s. */
static jsCtx *cl__js(void)
{
    if (!cl__jsctx) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = CL_POLL_WAIT_MS;
        natsStatus s = natsConnection_JetStream(&cl__jsctx, fx_nats(), &jo);
        cr_assert(s == NATS_OK, "JetStream context: %s", natsStatus_GetText(s));
    }
    return cl__jsctx;
}

/* false if the server did not answer (an election in progress) */
static bool cl__stream(const char *name, cl_stream *out)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    memset(out, 0, sizeof *out);
    if (js_GetStreamInfo(&si, cl__js(), name, NULL, &jerr) != NATS_OK)
        return false;
    out->msgs = si->State.Msgs;
    out->replicas = (int)si->Config->Replicas;
    if (si->Cluster) {
        snprintf(out->leader, sizeof out->leader, "%s",
                 si->Cluster->Leader ? si->Cluster->Leader : "");
        out->peers = si->Cluster->ReplicasLen;
        for (int i = 0; i < si->Cluster->ReplicasLen; i++) {
            const jsPeerInfo *p = si->Cluster->Replicas[i];
            if (p->Current && !p->Offline && p->Lag == 0)
                out->current++;
        }
    }
    jsStreamInfo_Destroy(si);
    return true;
}

static int cl__consumer_peers(void)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, fx_js(), "INV_EVENTS", "stock-applier", NULL, &jerr);
    cr_assert(s == NATS_OK, "consumer info: %s (js error %d)", natsStatus_GetText(s), (int)jerr);
    int peers = ci->Cluster ? ci->Cluster->ReplicasLen : 0;
    jsConsumerInfo_Destroy(ci);
    return peers;
}

static bool cl__stored_at_least(void *arg)
{
    cl_stream st;
    return cl__stream("INV_EVENTS", &st) && st.msgs >= *(uint64_t *)arg;
}

typedef struct cl_election {
    const char *dead;
    cl_stream st;
} cl_election;

static bool cl__new_leader(void *arg)
{
    cl_election *e = arg;
    return cl__stream("INV_EVENTS", &e->st) && e->st.leader[0] &&
           strcmp(e->st.leader, e->dead) != 0;
}

static bool cl__caught_up(void *arg)
{
    cl_stream *st = arg;
    return cl__stream("INV_EVENTS", st) && st->leader[0] && st->peers == 2 && st->current == 2;
}

static bool cl__ledger_at_least(void *arg)
{
    return fx_query_i64("SELECT count(*) FROM ledger") >= *(int64_t *)arg;
}

/* The counts of inv-ingest's summary line "<file>: N lines, N accepted, N
 * duplicate, N rejected, N failed" in its log: c[0..4]. */
static void cl__ingest_counts(const char *log, uint64_t c[5])
{
    FILE *f = fopen(log, "r");
    cr_assert(f, "cannot read %s", log);
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *p = strstr(line, " lines, ");
        if (!p)
            continue;
        while (p > line && p[-1] >= '0' && p[-1] <= '9')
            p--;
        found = sscanf(p,
                       "%" SCNu64 " lines, %" SCNu64 " accepted, %" SCNu64 " duplicate, %" SCNu64
                       " rejected, %" SCNu64 " failed",
                       &c[0], &c[1], &c[2], &c[3], &c[4]) == 5;
    }
    fclose(f);
    cr_assert(found, "no summary line in %s", log);
}

/* Wait for the inv-ingest pid and assert it exited 0 with every one of its
 * lines accepted or a duplicate, none rejected or failed. Accepted may fall
 * short of the distinct events: a re-sent publish whose first copy was
 * stored before its ack was lost counts as a duplicate (what the stream and
 * the ledger hold is checked separately). */
static void cl__ingest_done(pid_t pid, const char *log, uint64_t lines, uint64_t c[5])
{
    int rc = fx_stop(pid, 0, 150000);
    cl__ingest_counts(log, c);
    cr_assert(rc == 0, "inv-ingest exited %d: %" PRIu64 " failed, %" PRIu64 " rejected (see %s)",
              rc, c[4], c[3], log);
    cr_assert(c[0] == lines && c[1] + c[2] == c[0] && c[3] == 0 && c[4] == 0,
              "inv-ingest: %" PRIu64 " lines, %" PRIu64 " accepted, %" PRIu64 " duplicate, %" PRIu64
              " rejected, %" PRIu64 " failed (see %s)",
              c[0], c[1], c[2], c[3], c[4], log);
}

/* Generate a workload into path and append its events to *evs / *n. */
static void cl__workload(const char *path, unsigned seed, unsigned events, sf_event **evs,
                         size_t *n)
{
    sc_gen(path, seed, events, 200, 4);
    sf_event *more = NULL;
    size_t k = sc_load_events(path, &more);
    sf_event *all = realloc(*evs, (*n + k) * sizeof *all);
    cr_assert(all, "out of memory for %zu events", *n + k);
    memcpy(all + *n, more, k * sizeof *more);
    free(more);
    *evs = all;
    *n += k;
}

static int64_t cl__distinct(const sf_event *evs, size_t n)
{
    sf_model *m = sc_model_of(evs, n);
    sf_model_stats ms;
    sf_model_stats_get(m, &ms);
    sf_model_free(m);
    return (int64_t)ms.events;
}

static double cl__rate(int64_t count, int64_t ms)
{
    return ms > 0 ? (double)count * 1000.0 / (double)ms : 0.0;
}

Test(cluster, stream_leader_kill9_mid_run_loses_nothing)
{
    /* R3 everywhere, the consumer included */
    static const char *const streams[] = {"INV_EVENTS", "INV_DLQ", "INV_CHANNEL"};
    for (size_t i = 0; i < 3; i++) {
        cl_stream st;
        cr_assert(cl__stream(streams[i], &st), "no stream info for %s", streams[i]);
        cr_assert(st.replicas == 3 && st.peers == 2 && st.leader[0],
                  "%s: %d replicas, leader '%s' and %d followers; want 3, a leader and 2",
                  streams[i], st.replicas, st.leader, st.peers);
    }
    cr_assert_eq(cl__consumer_peers(), 2, "stock-applier is not replicated on 3 nodes");

    char work[2][512], ilog[2][512], clog[2][512];
    sc_tmp("cluster-work-1.jsonl", work[0], sizeof work[0]);
    sc_tmp("cluster-work-2.jsonl", work[1], sizeof work[1]);
    sc_tmp("cluster-ingest-1.log", ilog[0], sizeof ilog[0]);
    sc_tmp("cluster-ingest-2.log", ilog[1], sizeof ilog[1]);
    sc_tmp("cluster-consumer-1.log", clog[0], sizeof clog[0]);
    sc_tmp("cluster-consumer-2.log", clog[1], sizeof clog[1]);
    for (int i = 0; i < 2; i++) {
        unlink(ilog[i]);
        unlink(clog[i]);
    }
    sf_event *evs = NULL;
    size_t n = 0;
    cl__workload(work[0], 29, CL_EVENTS, &evs, &n);
    int64_t distinct1 = cl__distinct(evs, n);

    pid_t consumers[2];
    for (int i = 0; i < 2; i++)
        consumers[i] = fx_spawn((const char *const[]){"inv-consumer", NULL}, clog[i]);
    int64_t t0 = fx_now_ms();
    pid_t ingest = fx_spawn((const char *const[]){"inv-ingest", "--file", work[0], NULL}, ilog[0]);

    /* mid-run: kill -9 the node that leads INV_EVENTS */
    uint64_t some = CL_KILL_AT;
    cr_assert(fx_wait_until(cl__stored_at_least, &some, 60000),
              "INV_EVENTS did not reach %" PRIu64 " messages", some);
    cl_stream before;
    cr_assert(cl__stream("INV_EVENTS", &before) && before.leader[0]);
    const char *dead = before.leader;
    char cmd[64];
    snprintf(cmd, sizeof cmd, "cluster-kill %s", dead);
    fx_stack(cmd);
    int64_t t_kill = fx_now_ms();
    int64_t ledger_at_kill = fx_query_i64("SELECT count(*) FROM ledger");

    cl_election e = {.dead = dead};
    cr_assert(fx_wait_until(cl__new_leader, &e, 90000),
              "no new INV_EVENTS leader 90 s after killing %s", dead);
    int64_t t_elected = fx_now_ms();
    /* nothing is stored without a leader: what the new one holds was there
     * at the kill */
    cr_assert(e.st.msgs < (uint64_t)distinct1 && ledger_at_kill < distinct1,
              "killed after the end (%" PRIu64 " stored, %" PRId64 " applied); test is void",
              e.st.msgs, ledger_at_kill);

    uint64_t c[5];
    cl__ingest_done(ingest, ilog[0], CL_EVENTS, c);
    int64_t t_ingested = fx_now_ms();
    cr_assert(fx_wait_until(cl__ledger_at_least, &distinct1, 150000),
              "ledger holds %" PRId64 " of %" PRId64 " events 150 s after the ingest",
              fx_query_i64("SELECT count(*) FROM ledger"), distinct1);
    int64_t t_applied = fx_now_ms();
    fprintf(stderr,
            "cluster: INV_EVENTS leader %s killed with %" PRIu64 " of %" PRId64
            " events stored (%.0f events/s on 3 nodes) and %" PRId64
            " applied; new leader %s after %.1f s; ingest done %.1f s and every event applied "
            "%.1f s after the election; %" PRIu64 " re-sent publishes found duplicate\n",
            dead, e.st.msgs, distinct1, cl__rate((int64_t)e.st.msgs, t_kill - t0), ledger_at_kill,
            e.st.leader, (double)(t_elected - t_kill) / 1000.0,
            (double)(t_ingested - t_elected) / 1000.0, (double)(t_applied - t_elected) / 1000.0,
            c[2] - (c[0] - (uint64_t)distinct1));

    /* the pipeline keeps going on two nodes: a second workload end to end */
    cl__workload(work[1], 31, CL_EVENTS / 2, &evs, &n);
    int64_t distinct = cl__distinct(evs, n);
    int64_t t1 = fx_now_ms();
    ingest = fx_spawn((const char *const[]){"inv-ingest", "--file", work[1], NULL}, ilog[1]);
    cl__ingest_done(ingest, ilog[1], CL_EVENTS / 2, c);
    int64_t t1_ingested = fx_now_ms();
    cr_assert(fx_wait_until(cl__ledger_at_least, &distinct, 150000),
              "ledger holds %" PRId64 " of %" PRId64 " events 150 s after the second ingest",
              fx_query_i64("SELECT count(*) FROM ledger"), distinct);
    int64_t t1_applied = fx_now_ms();
    fprintf(stderr,
            "cluster: with %s down, %" PRId64 " more events: ingest %.0f events/s, end to end "
            "%.0f events/s (2 consumers)\n",
            dead, distinct - distinct1, cl__rate(distinct - distinct1, t1_ingested - t1),
            cl__rate(distinct - distinct1, t1_applied - t1));

    for (int i = 0; i < 2; i++)
        cr_assert_eq(fx_stop(consumers[i], SIGTERM, 30000), 0, "inv-consumer %d (log %s)", i + 1,
                     clog[i]);

    /* nothing lost, nothing doubled: in the stream, in the ledger, in positions */
    cl_stream after;
    cr_assert(cl__stream("INV_EVENTS", &after));
    cr_assert(after.msgs == (uint64_t)distinct,
              "INV_EVENTS holds %" PRIu64 " messages for %" PRId64 " distinct events", after.msgs,
              distinct);
    sf_model *m = sc_model_of(evs, n);
    free(evs);
    sc_assert_matches(m); /* positions, reservations, ledger count = distinct */
    sf_model_free(m);

    /* the node comes back with its data and catches up */
    snprintf(cmd, sizeof cmd, "cluster-start %s", dead);
    int64_t t_restart = fx_now_ms();
    fx_stack(cmd);
    cl_stream back;
    cr_assert(fx_wait_until(cl__caught_up, &back, 60000),
              "%s did not catch up: leader '%s', %d of %d followers current", dead, back.leader,
              back.current, back.peers);
    fprintf(stderr, "cluster: %s restarted and current after %.1f s\n", dead,
            (double)(fx_now_ms() - t_restart) / 1000.0);
}
