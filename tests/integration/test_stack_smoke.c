/*
 * stack smoke: the fixture reaches the private stack's PostgreSQL and NATS
 * JetStream, its reset really empties both, its process helpers report exit
 * statuses and output, and a test can bounce a server through stack.sh (what
 * the fault tests rely on). Uses fx_reset_bare: it must pass before invctl
 * exists.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

TestSuite(stack, .init = fx_reset_bare, .fini = fx_teardown, .timeout = 120);

static void assert_str(const char *got, const char *want)
{
    cr_assert(strcmp(got, want) == 0, "got '%s', want '%s'", got, want);
}

Test(stack, postgres_answers_with_durable_settings)
{
    char buf[256];
    cr_assert(fx_query_i64("SELECT 1") == 1);
    /* the database the services use, not a default one */
    const char *dsn = fx_env("INV_PG_DSN");
    const char *db = strstr(dsn, "dbname=");
    cr_assert(db, "INV_PG_DSN has no dbname: %s", dsn);
    char want[128];
    snprintf(want, sizeof want, "%.*s", (int)strcspn(db + 7, " "), db + 7);
    assert_str(fx_query_str("SELECT current_database()", buf, sizeof buf), want);
    /* acks after commit are only safe with these on (TOOLCHAIN.md) */
    assert_str(fx_query_str("SHOW synchronous_commit", buf, sizeof buf), "on");
    assert_str(fx_query_str("SHOW fsync", buf, sizeof buf), "on");
    cr_assert(fx_query_i64("SELECT current_setting('server_version_num')::int / 10000") == 15);
}

Test(stack, reset_drops_the_database)
{
    fx_exec("CREATE TABLE leftover (id int)");
    fx_exec("INSERT INTO leftover VALUES (1), (2)");
    cr_assert(fx_query_i64("SELECT count(*) FROM leftover") == 2);
    fx_reset_bare();
    cr_assert(fx_query_i64("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0);
}

Test(stack, jetstream_account_is_reachable_and_reset_empties_it)
{
    jsAccountInfo *ai = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetAccountInfo(&ai, fx_js(), NULL, &jerr);
    cr_assert(s == NATS_OK, "account info: %s (js error %d)", natsStatus_GetText(s), (int)jerr);
    cr_assert(ai->Streams == 0, "%lld streams after reset", (long long)ai->Streams);
    jsAccountInfo_Destroy(ai);

    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = "INV_EVENTS";
    sc.Subjects = (const char *[]){"inv.evt.>"};
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    jsStreamInfo *si = NULL;
    s = js_AddStream(&si, fx_js(), &sc, NULL, &jerr);
    cr_assert(s == NATS_OK, "add stream: %s (js error %d)", natsStatus_GetText(s), (int)jerr);
    jsStreamInfo_Destroy(si);
    jsPubAck *pa = NULL;
    s = js_Publish(&pa, fx_js(), "inv.evt.sale.STORE-1", "x", 1, NULL, &jerr);
    cr_assert(s == NATS_OK, "publish: %s (js error %d)", natsStatus_GetText(s), (int)jerr);
    cr_assert(pa->Sequence == 1, "sequence %llu", (unsigned long long)pa->Sequence);
    jsPubAck_Destroy(pa);

    fx_reset_bare();
    s = js_GetAccountInfo(&ai, fx_js(), NULL, &jerr);
    cr_assert(s == NATS_OK, "account info: %s", natsStatus_GetText(s));
    cr_assert(ai->Streams == 0, "%lld streams left after reset", (long long)ai->Streams);
    jsAccountInfo_Destroy(ai);
}

Test(stack, run_captures_output_status_and_stdin)
{
    char out[256];
    int rc = fx_run((const char *const[]){"sh", "-c", "echo out; echo err >&2; exit 3", NULL}, NULL,
                    out, sizeof out, 10000);
    cr_assert(rc == 3, "exit %d", rc);
    cr_assert(strstr(out, "out\n") && strstr(out, "err\n"), "output: %s", out);

    char in_path[] = "/tmp/sf-fx-stdin-XXXXXX";
    int fd = mkstemp(in_path);
    cr_assert(fd >= 0);
    cr_assert(write(fd, "hello\n", 6) == 6);
    close(fd);
    rc = fx_run((const char *const[]){"cat", NULL}, in_path, out, sizeof out, 10000);
    unlink(in_path);
    cr_assert(rc == 0);
    assert_str(out, "hello\n");

    /* a small buffer is cut, not overrun, and the child is not blocked */
    char small[8];
    rc = fx_run((const char *const[]){"sh", "-c", "seq 1 100000", NULL}, NULL, small, sizeof small,
                10000);
    cr_assert(rc == 0);
    assert_str(small, "1\n2\n3\n4");

    rc = fx_run((const char *const[]){"sh", "-c", "kill -TERM $$", NULL}, NULL, out, sizeof out,
                10000);
    cr_assert(rc == 128 + SIGTERM, "exit %d", rc);
}

static bool file_has_text(void *path)
{
    char buf[64] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

Test(stack, spawn_and_stop_a_background_process)
{
    char log[] = "/tmp/sf-fx-spawn-XXXXXX";
    int fd = mkstemp(log);
    cr_assert(fd >= 0);
    close(fd);
    pid_t pid =
        fx_spawn((const char *const[]){"sh", "-c", "echo started; exec sleep 30", NULL}, log);
    cr_assert(pid > 0);
    cr_assert(fx_wait_until(file_has_text, log, 5000), "the child wrote nothing to %s", log);
    int rc = fx_stop(pid, SIGTERM, 5000);
    cr_assert(rc == 128 + SIGTERM, "exit %d", rc);
    char out[64];
    rc = fx_run((const char *const[]){"cat", log, NULL}, NULL, out, sizeof out, 5000);
    unlink(log);
    assert_str(out, "started\n");
}

static bool nats_is_down(void *arg)
{
    (void)arg;
    natsConnection *nc = NULL;
    natsStatus s = natsConnection_ConnectTo(&nc, fx_env("INV_NATS_URL"));
    natsConnection_Destroy(nc);
    return s != NATS_OK;
}

static bool nats_is_up(void *arg)
{
    return !nats_is_down(arg);
}

/* The cached connection (a service's view) has reconnected and JetStream
 * answers on it. */
static bool jetstream_answers(void *arg)
{
    (void)arg;
    jsAccountInfo *ai = NULL;
    jsErrCode jerr = 0;
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = 1000;
    natsStatus s = js_GetAccountInfo(&ai, fx_js(), &o, &jerr);
    if (ai)
        jsAccountInfo_Destroy(ai);
    return s == NATS_OK;
}

Test(stack, nats_bounces_through_stack_sh)
{
    fx_stack("nats-stop");
    cr_assert(nats_is_down(NULL), "nats still accepts connections after nats-stop");
    fx_stack("nats-start");
    cr_assert(fx_wait_until(nats_is_up, NULL, 10000), "nats not back after nats-start");
    cr_assert(fx_wait_until(jetstream_answers, NULL, 15000),
              "JetStream does not answer on the reconnected connection");
}

Test(stack, postgres_bounces_through_stack_sh)
{
    cr_assert(fx_query_i64("SELECT 1") == 1);
    fx_stack("pg-stop immediate");
    PGconn *c = PQconnectdb(fx_env("INV_PG_DSN"));
    bool down = PQstatus(c) != CONNECTION_OK;
    PQfinish(c);
    cr_assert(down, "postgres still accepts connections after pg-stop");
    fx_stack("pg-start");
    /* the cached connection died with the server: fx_pg reconnects */
    PQreset(fx_pg());
    cr_assert(fx_query_i64("SELECT 2") == 2);
}
