/*
 * GET /dashboard end to end in headless Chromium: inv-api (with its ops
 * proxy on free ports), inv-consumer and inv-reconciler run on the test
 * stack; tests/browser/dashboard_cdp.py loads the page with a read key,
 * has inv-ingest send a workload and a sale that leaves a position
 * negative, and checks that the page's own counters moved (stock changes,
 * metrics, a negative_stock alert, a throughput above 0, services ok),
 * that its stock lookup answers, and saves tests/artifacts/dashboard.png.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "stockcheck.h"
#include "test_api_http.h"

TestSuite(dashboard, .init = fx_reset, .fini = api_fini, .timeout = 300);

Test(dashboard, live_counters_alerts_and_lookup_in_headless_chromium)
{
    char front[64], events[512], out[65536];
    FILE *f;

    /* The workload: a generated mix, then a sale at a store that had none. */
    sc_tmp("dashboard.jsonl", events, sizeof events);
    sc_gen(events, 11, 5000, 100, 4);
    f = fopen(events, "a");
    cr_assert(f);
    fputs("{\"event_id\":\"dash-neg-1\",\"kind\":\"sale\",\"sku\":\"DASH-NEG\",\"location\":"
          "\"STORE-9\",\"qty\":2,\"occurred_at\":\"2026-11-20T08:00:00Z\",\"source\":\"dash\"}\n",
          f);
    fclose(f);

    char key[128];
    api_add_key("dashboard", "read", key, sizeof key, NULL, 0);
    pid_t api;
    int port = api_start_with_ops("dashboard-api.log", NULL, front, &api);
    const char *cons[] = {"inv-consumer", NULL};
    const char *rec[] = {"inv-reconciler", NULL};
    pid_t c = fx_spawn(cons, NULL);
    pid_t r = fx_spawn(rec, NULL);

    char url[128], ingest[512], png[512], script[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/dashboard", port);
    snprintf(ingest, sizeof ingest, "%s/inv-ingest", fx_env("SF_BIN"));
    snprintf(script, sizeof script, "%s/tests/browser/dashboard_cdp.py", fx_env("SF_ROOT"));
    snprintf(png, sizeof png, "%s/tests/artifacts", fx_env("SF_ROOT"));
    mkdir(png, 0755);
    snprintf(png, sizeof png, "%s/tests/artifacts/dashboard.png", fx_env("SF_ROOT"));
    unlink(png);
    const char *drive[] = {script, url, key, png, "--", ingest, "--file", events, NULL};
    int rc = fx_run(drive, NULL, out, sizeof out, 240000);
    cr_log_info("dashboard_cdp.py:\n%s", out);
    cr_assert_eq(rc, 0, "the dashboard check failed:\n%s", out);
    cr_assert(strstr(out, "\nOK"), "%s", out);
    struct stat st;
    cr_assert(stat(png, &st) == 0 && st.st_size > 10000, "no screenshot at %s", png);

    cr_assert_eq(fx_stop(r, SIGTERM, 30000), 0);
    cr_assert_eq(fx_stop(c, SIGTERM, 30000), 0);
    cr_assert_eq(fx_stop(api, SIGTERM, 30000), 0);
    unsetenv("INV_OPS_ENDPOINT");
}
