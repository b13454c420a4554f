/*
 * Injection strings through every input (issue 8 point 6): quotes, ';',
 * '--', NUL, invalid UTF-8 and a 10 MB string go in through file ingest
 * (JSON lines and CSV), ZeroMQ ingest, the API's path and query, supplier
 * csv / jsonl / x12-846 fields and invctl arguments. For each, the input is
 * refused with an error that names it (file:line, the field) and the
 * database is unchanged: a checksum of every table of the public schema
 * (md5 over its rows in text form) is the same before and after, the
 * consumer having drained whatever reached JetStream. Last, a sku that is
 * legal but looks like SQL ("x'); DROP TABLE ledger; --") is stored
 * verbatim as data, and nothing else changes.
 *
 * Every SQL statement is parameterised (docs/security.md "SQL"); this test
 * is the behavioural proof of it, for each input path.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "fixture.h"
#include "stockcheck.h"
#include "test_api_http.h"

TestSuite(injection, .init = fx_reset, .fini = api_fini, .timeout = 300);

#define SQLI "x'); DROP TABLE ledger; --"
#define BIG (10u << 20) /* 10 MiB */

/* md5 of every public table's rows, in table order, into out; the table
 * named skip (may be NULL) is left out. */
static void db_checksum_but(char *out, size_t size, const char *skip)
{
    char tables[4096];
    fx_query_str("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables"
                 " WHERE schemaname = 'public'",
                 tables, sizeof tables);
    cr_assert(strstr(tables, "ledger") && strstr(tables, "positions"), "tables: %s", tables);
    size_t used = (size_t)snprintf(out, size, "%s|", tables);
    for (char *t = strtok(tables, ","); t; t = strtok(NULL, ",")) {
        char sql[512], md5[64];
        if (skip && !strcmp(t, skip))
            continue;
        snprintf(sql, sizeof sql,
                 "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY"
                 " t::text)), '-') FROM \"%s\" t",
                 t);
        fx_query_str(sql, md5, sizeof md5);
        used += (size_t)snprintf(out + used, size - used, "%s=%s;", t, md5);
        cr_assert(used < size);
    }
}

static void db_checksum(char *out, size_t size)
{
    db_checksum_but(out, size, NULL);
}

static void assert_unchanged_but(const char *before, const char *what, const char *skip)
{
    sc_drain(1);
    char after[16384];
    db_checksum_but(after, sizeof after, skip);
    cr_assert(!strcmp(before, after), "%s changed the database:\nbefore %s\nafter  %s", what,
              before, after);
}

static void assert_unchanged(const char *before, const char *what)
{
    assert_unchanged_but(before, what, NULL);
}

static void write_bytes(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* A JSON event line with sku / location given raw (already JSON-escaped). */
static int ev_line(char *buf, size_t size, const char *id, const char *sku, const char *loc)
{
    return snprintf(buf, size,
                    "{\"event_id\":\"%s\",\"kind\":\"receipt\",\"sku\":\"%s\",\"location\":\"%s\","
                    "\"qty\":1,\"occurred_at\":\"2026-11-20T10:00:00Z\"}\n",
                    id, sku, loc);
}

/* The JSON lines the file and ZeroMQ paths get: each invalid, each for a
 * different reason. */
static char *bad_jsonl(size_t *len)
{
    size_t cap = BIG + 65536, n = 0;
    char *b = malloc(cap);
    cr_assert(b);
    n += (size_t)ev_line(b + n, cap - n, "i-1", "SKU-1", "LOC'; DROP TABLE positions; --");
    n += (size_t)ev_line(b + n, cap - n, "i-2", "a\\u0000b", "LOC-1");
    n += (size_t)ev_line(b + n, cap - n, "i-3", "bad\xC3\x28utf8", "LOC-1");
    n += (size_t)ev_line(b + n, cap - n, "i-4", "SKU-1", "LOC;1");
    n += (size_t)ev_line(b + n, cap - n, "i-5", "SKU-1", "--;");
    n += (size_t)ev_line(b + n, cap - n, "i-6'--", SQLI SQLI SQLI, "LOC-1"); /* sku > 64 */
    /* a raw NUL byte inside the line */
    n += (size_t)ev_line(b + n, cap - n, "i-7", "a#b", "LOC-1");
    b[n - 60] = '\0';
    /* 10 MiB in the sku */
    int k = snprintf(b + n, cap - n, "{\"event_id\":\"i-8\",\"kind\":\"receipt\",\"sku\":\"");
    n += (size_t)k;
    memset(b + n, 'A', BIG);
    n += BIG;
    n += (size_t)snprintf(b + n, cap - n,
                          "\",\"location\":\"LOC-1\",\"qty\":1,\"occurred_at\":1795000000000}\n");
    *len = n;
    return b;
}

Test(injection, file_ingest_jsonl_and_csv)
{
    char before[16384];
    db_checksum(before, sizeof before);
    char path[512], rej[512], out[65536];
    sc_tmp("inj.jsonl", path, sizeof path);
    sc_tmp("inj.rejects", rej, sizeof rej);
    unlink(rej);
    size_t len;
    char *data = bad_jsonl(&len);
    write_bytes(path, data, len);
    free(data);
    const char *argv[] = {"inv-ingest", "--file", path, "--rejects", rej, NULL};
    int rc = fx_run(argv, NULL, out, sizeof out, 120000);
    cr_assert_eq(rc, 1, "inv-ingest exit %d: %s", rc, out);
    cr_assert(strstr(out, " 0 accepted,"), "%s", out);
    char rejects[65536] = "";
    FILE *f = fopen(rej, "r");
    cr_assert(f);
    size_t got = fread(rejects, 1, sizeof rejects - 1, f);
    rejects[got] = '\0';
    fclose(f);
    for (int line = 1; line <= 8; line++) {
        char want[600];
        snprintf(want, sizeof want, "%s:%d: ", path, line);
        cr_assert(strstr(rejects, want), "line %d not rejected by name: %s", line, rejects);
    }
    cr_assert(strstr(rejects, "location"), "%s", rejects);
    cr_assert(strstr(rejects, "sku"), "%s", rejects);

    /* CSV with a NUL byte, invalid UTF-8, a quote-laden location */
    static const char csv[] = "event_id,kind,sku,location,qty,occurred_at\n"
                              "c-1,receipt,A\0B,LOC-1,1,2026-11-20T10:00:00Z\n"
                              "c-2,receipt,\xff\xfe,LOC-1,1,2026-11-20T10:00:00Z\n"
                              "c-3,receipt,SKU-1,\"LOC'--\",1,2026-11-20T10:00:00Z\n"
                              "c-4,receipt,SKU-1,LOC-1;,1,2026-11-20T10:00:00Z\n";
    sc_tmp("inj.csv", path, sizeof path);
    write_bytes(path, csv, sizeof csv - 1);
    const char *argv2[] = {"inv-ingest", "--file", path, NULL};
    rc = fx_run(argv2, NULL, out, sizeof out, 60000);
    cr_assert_eq(rc, 1, "inv-ingest csv exit %d: %s", rc, out);
    for (int line = 2; line <= 5; line++) {
        char want[600];
        snprintf(want, sizeof want, "%s:%d: ", path, line);
        cr_assert(strstr(out, want), "csv line %d not rejected by name: %s", line, out);
    }
    assert_unchanged(before, "file ingest");
}

Test(injection, zmq_ingest_replies_err)
{
    char before[16384];
    db_checksum(before, sizeof before);
    char endpoint[64], log[512];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", atoi(fx_env("NATS_PORT")) + 333);
    sc_tmp("inj-zmq.log", log, sizeof log);
    const char *argv[] = {"inv-ingest", "--zmq", endpoint, NULL};
    pid_t pid = fx_spawn(argv, log);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_REQ);
    int t = 30000;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &t, sizeof t);
    cr_assert_eq(zmq_connect(s, endpoint), 0);
    size_t len;
    char *data = bad_jsonl(&len);
    /* one message per line (the lines end with '\n'; the NUL one holds a NUL) */
    char *p = data, *end = data + len;
    int n = 0;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        cr_assert(zmq_send(s, p, l, 0) == (int)l, "send: %s", zmq_strerror(zmq_errno()));
        char reply[2048];
        int r = zmq_recv(s, reply, sizeof reply - 1, 0);
        cr_assert(r > 0, "no reply to message %d: %s", n + 1, zmq_strerror(zmq_errno()));
        reply[r < (int)sizeof reply - 1 ? r : (int)sizeof reply - 1] = '\0';
        cr_assert(!strncmp(reply, "err ", 4), "message %d accepted: %s", n + 1, reply);
        cr_assert(strstr(reply, "sku") || strstr(reply, "location") || strstr(reply, "bytes") ||
                      strstr(reply, "JSON") || strstr(reply, "json") || strstr(reply, "line"),
                  "message %d: reply names nothing: %s", n + 1, reply);
        n++;
        p += l + 1;
    }
    cr_assert_eq(n, 8);
    free(data);
    zmq_close(s);
    /* 20 MiB, over ZMQ_MAXMSGSIZE (4 x max_line, at least 16 MiB): never
     * buffered, the connection is dropped, no reply; the ingest serves on */
    s = zmq_socket(ctx, ZMQ_REQ);
    t = 3000;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &t, sizeof t);
    cr_assert_eq(zmq_connect(s, endpoint), 0);
    size_t huge = 20u << 20;
    char *h = malloc(huge);
    cr_assert(h);
    memset(h, '{', huge);
    cr_assert(zmq_send(s, h, huge, 0) == (int)huge);
    free(h);
    char reply[512];
    cr_assert(zmq_recv(s, reply, sizeof reply, 0) < 0, "a 20 MiB message got a reply");
    zmq_close(s);
    s = zmq_socket(ctx, ZMQ_REQ);
    t = 30000;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &t, sizeof t);
    cr_assert_eq(zmq_connect(s, endpoint), 0);
    cr_assert(zmq_send(s, "{", 1, 0) == 1);
    int r = zmq_recv(s, reply, sizeof reply - 1, 0);
    cr_assert(r > 4 && !strncmp(reply, "err ", 4), "ingest no longer answers after the drop");
    zmq_close(s);
    zmq_ctx_term(ctx);
    cr_assert_eq(fx_stop(pid, SIGTERM, 20000), 0);
    assert_unchanged(before, "ZeroMQ ingest");
}

Test(injection, api_path_and_query)
{
    api_load_data();
    char key[128];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    char before[16384];
    db_checksum(before, sizeof before);
    pid_t pid;
    int port = api_start("inj-api.log", NULL, &pid);
    static const struct {
        const char *target;
        int status;
        const char *field;
    } cases[] = {
        {"/v1/stock/x%27%29%3B%20DROP%20TABLE%20ledger%3B%20--", 404, "sku"},
        {"/v1/stock/a%00b", 400, "sku"},
        {"/v1/stock/a%C3%28", 400, "sku"},
        {"/v1/stock/SKU-A/locations/LOC%27--", 400, "location"},
        {"/v1/stock/SKU-A/locations/LOC%3B1", 400, "location"},
        {"/v1/channels/web%27%3B--/stock?sku=SKU-A", 400, "channel"},
        {"/v1/channels/web/stock?sku=%27%3B%20DELETE%20FROM%20positions%3B--", 200, NULL},
        {"/v1/channels/web/stock?sku=a%00b", 400, "sku"},
        {"/v1/channels/web/stock?sku=%FF", 400, "sku"},
        {"/v1/ledger/SKU-A?location=%27%20OR%20%271%27%3D%271", 400, "location"},
        {"/v1/ledger/SKU-A?limit=1;DELETE", 400, "limit"},
        {"/v1/ledger/SKU-A?after=1--", 400, "after"},
        {"/v1/reservations/%27%3B--", 404, "ref"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        api_resp r;
        int st = api_get(port, cases[i].target, key, &r);
        cr_assert_eq(st, cases[i].status, "%s: %d %s", cases[i].target, st, r.body);
        if (cases[i].field) {
            json_t *j = api_json(&r);
            json_t *f = json_object_get(j, "field");
            cr_assert(json_is_string(f) && !strcmp(json_string_value(f), cases[i].field),
                      "%s: field is not %s: %s", cases[i].target, cases[i].field, r.body);
            json_decref(j);
        }
        api_resp_free(&r);
    }
    /* a 10 MiB path: refused before any handler (413/414/400 or a close) */
    char *big = malloc(BIG + 64);
    cr_assert(big);
    strcpy(big, "/v1/stock/");
    memset(big + 10, 'A', BIG);
    big[10 + BIG] = '\0';
    char *req = malloc(BIG + 512);
    cr_assert(req);
    int n =
        snprintf(req, BIG + 512, "GET %s HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n", big, key);
    api_resp r;
    int st = api_raw_lenient(port, req, (size_t)n, API_IO_TIMEOUT_MS, &r);
    cr_assert(st == 413 || st == 414 || st == 400 || st == 0, "10 MiB path: %d", st);
    api_resp_free(&r);
    free(req);
    free(big);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
    assert_unchanged(before, "the API");
}

Test(injection, supplier_csv_jsonl_x12_fields)
{
    /* inv-supplier notes every feed it read in feed_checkpoints (supplier,
     * digest, file name, counts), rejected ones too: that table is checked
     * apart (nothing published), the others must not change at all. */
    char before[16384];
    db_checksum_but(before, sizeof before, "feed_checkpoints");
    char cfg[512], path[512], out[65536];
    sc_tmp("inj-sup.ini", cfg, sizeof cfg);
    FILE *f = fopen(cfg, "w");
    cr_assert(f);
    fputs("[supplier.injc]\nformat = csv\nsku_map = identity\nlocation = DC-EAST\n"
          "[supplier.injj]\nformat = jsonl\nsku_map = identity\nlocation = DC-EAST\n"
          "[supplier.injx]\nformat = x12-846\nsku_map = identity\n"
          "location_map = 0001=DC-EAST\n",
          f);
    fclose(f);

    static const char csv[] = "sku,qty,location,occurred_at,kind\n"
                              "A\0B,1,DC-EAST,2026-11-20T10:00:00Z,count\n"
                              "\xc3\x28,1,DC-EAST,2026-11-20T10:00:00Z,count\n"
                              "SKU-1,1,\"DC'; DROP TABLE ledger;--\",2026-11-20T10:00:00Z,count\n"
                              "SKU-1,1;DELETE,DC-EAST,2026-11-20T10:00:00Z,count\n";
    sc_tmp("inj-sup.csv", path, sizeof path);
    write_bytes(path, csv, sizeof csv - 1);
    const char *a1[] = {"inv-supplier", "--config", cfg,  "--supplier",
                        "injc",         "--file",   path, NULL};
    int rc = fx_run(a1, NULL, out, sizeof out, 60000);
    cr_assert_neq(rc, 0, "csv feed accepted: %s", out);
    cr_assert(strstr(out, "inj-sup.csv"), "csv rejects do not name the feed: %s", out);

    size_t cap = BIG + 4096, n = 0;
    char *jl = malloc(cap);
    cr_assert(jl);
    n += (size_t)snprintf(
        jl + n, cap - n,
        "{\"sku\":\"a\\u0000b\",\"qty\":1,\"occurred_at\":\"2026-11-20T10:00:00Z\","
        "\"kind\":\"count\"}\n"
        "{\"sku\":\"SKU-1\",\"qty\":1,\"location\":\"X';--\",\"occurred_at\":"
        "\"2026-11-20T10:00:00Z\",\"kind\":\"count\"}\n"
        "{\"sku\":\"\xff\",\"qty\":1,\"occurred_at\":\"2026-11-20T10:00:00Z\","
        "\"kind\":\"count\"}\n{\"sku\":\"");
    memset(jl + n, 'Z', BIG);
    n += BIG;
    n += (size_t)snprintf(jl + n, cap - n,
                          "\",\"qty\":1,\"occurred_at\":\"2026-11-20T10:00:00Z\","
                          "\"kind\":\"count\"}\n");
    sc_tmp("inj-sup.jsonl", path, sizeof path);
    write_bytes(path, jl, n);
    free(jl);
    const char *a2[] = {"inv-supplier", "--config", cfg,  "--supplier",
                        "injj",         "--file",   path, NULL};
    rc = fx_run(a2, NULL, out, sizeof out, 120000);
    cr_assert_neq(rc, 0, "jsonl feed accepted: %s", out);
    cr_assert(strstr(out, "inj-sup.jsonl"), "jsonl rejects do not name the feed: %s", out);

    /* X12 846: an item id with a quote and "--", and one with invalid UTF-8 */
    static const char x12[] =
        "ISA*00*          *00*          *ZZ*ACME           *ZZ*STOCKFLOW      *240301*0930*U*"
        "00401*000000101*0*P*>~"
        "GS*IB*ACME*STOCKFLOW*20240301*0930*101*X*004010~ST*846*0001~"
        "BIA*00*DD*INV-1*20240301*0930~DTM*405*20240301~N1*WH*EAST*92*0001~"
        "LIN*1*VP*A';DROP TABLE ledger;--\xc3\x28~QTY*33*120*EA~"
        "LIN*2*VP*B\xff~QTY*33*5*EA~"
        "N1*WH*WEST*92*0002';--~LIN*3*VP*C-1~QTY*33*1*EA~"
        "CTT*3~SE*13*0001~GE*1*101~IEA*1*000000101~";
    sc_tmp("inj-sup.edi", path, sizeof path);
    write_bytes(path, x12, sizeof x12 - 1);
    const char *a3[] = {"inv-supplier", "--config", cfg,  "--supplier",
                        "injx",         "--file",   path, NULL};
    rc = fx_run(a3, NULL, out, sizeof out, 60000);
    cr_assert_neq(rc, 0, "x12 feed accepted: %s", out);
    cr_assert(strstr(out, "inj-sup.edi"), "x12 rejects do not name the feed: %s", out);
    cr_assert(strstr(out, "LIN"), "x12 rejects do not name the segment: %s", out);
    assert_unchanged_but(before, "supplier feeds", "feed_checkpoints");
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM feed_checkpoints WHERE published > 0"), 0);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM feed_checkpoints WHERE supplier NOT IN"
                              " ('injc', 'injj', 'injx') OR name !~ '^[A-Za-z0-9/._-]+$'"),
                 0);
}

Test(injection, invctl_arguments)
{
    char key[128];
    api_add_key("keeper", "read", key, sizeof key, NULL, 0);
    char before[16384];
    db_checksum(before, sizeof before);
    static const char *const cases[][8] = {
        {"invctl", "stock", SQLI, NULL},
        {"invctl", "stock", "SKU-1", "--location", "L'; DELETE FROM positions;--", NULL},
        {"invctl", "location", "set", "LOC'--", "--safety-stock", "1", NULL},
        {"invctl", "location", "set", "LOC-1", "--safety-stock", "1;DROP", NULL},
        {"invctl", "channel", "add", "web';--", "--buffer", "1", NULL},
        {"invctl", "channel", "add", "web", "--locations", "L1,L2';--", NULL},
        {"invctl", "apikey", "add", "a'b", "--scope", "read", NULL},
        {"invctl", "apikey", "add", "ok", "--scope", "read' OR '1'='1", NULL},
        {"invctl", "apikey", "revoke", "x' OR '1'='1", NULL},
        {"invctl", "apikey", "revoke", "keeper\xff", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[8192];
        int rc = fx_run(cases[i], NULL, out, sizeof out, 30000);
        cr_assert(rc == 1 || rc == 2, "case %zu (%s %s %s) exit %d: %s", i, cases[i][1],
                  cases[i][2], cases[i][3], rc, out);
        cr_assert(strlen(out) > 0, "case %zu: no message", i);
    }
    assert_unchanged(before, "invctl");
}

Test(injection, sql_looking_sku_is_stored_verbatim)
{
    char before_tables[4096];
    fx_query_str("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables"
                 " WHERE schemaname = 'public'",
                 before_tables, sizeof before_tables);
    char path[512], line[512], out[8192];
    sc_tmp("inj-ok.jsonl", path, sizeof path);
    int n = ev_line(line, sizeof line, "ok-1", SQLI, "LOC-1");
    write_bytes(path, line, (size_t)n);
    const char *argv[] = {"inv-ingest", "--file", path, NULL};
    cr_assert_eq(fx_run(argv, NULL, out, sizeof out, 60000), 0, "%s", out);
    sc_drain(1);
    char sku[128], after_tables[4096];
    fx_query_str("SELECT sku FROM positions", sku, sizeof sku);
    cr_assert(!strcmp(sku, SQLI), "stored sku '%s'", sku);
    cr_assert_eq(fx_query_i64("SELECT count(*) FROM ledger"), 1);
    fx_query_str("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables"
                 " WHERE schemaname = 'public'",
                 after_tables, sizeof after_tables);
    cr_assert(!strcmp(before_tables, after_tables), "tables changed: %s -> %s", before_tables,
              after_tables);
    /* and the API finds it by its percent-encoded name */
    char key[128];
    api_add_key("reader", "read", key, sizeof key, NULL, 0);
    pid_t pid;
    int port = api_start("inj-ok.log", NULL, &pid);
    json_t *j =
        api_get_json(port, "/v1/stock/x%27%29%3B%20DROP%20TABLE%20ledger%3B%20--", key, 200);
    cr_assert(!strcmp(json_string_value(json_object_get(j, "sku")), SQLI));
    json_decref(j);
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
}
