/*
 * Transport security (docs/security.md "TLS"): a throwaway CA, server and
 * client certificates made here with the openssl CLI; a nats-server with
 * TLS required and client certificates verified, a PostgreSQL that accepts
 * only hostssl, and inv-api serving HTTPS. Each is used through the config
 * switches ([nats] tls_ca/tls_cert/tls_key/tls_required, [pg] dsn with
 * sslmode/sslrootcert, [api] tls_cert/tls_key), and each refuses a plaintext
 * client. The servers run on the suite's ports + 19..23 with their own data
 * under $STACK_DIR/tls, so the suite's open stack is left alone.
 */
#include <criterion/criterion.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "broker.h"
#include "fixture.h"

#define TLS_NATS_OFFSET 19
#define TLS_PG_OFFSET 19
#define TLS_API_OFFSET 21
#define TLS_OPS_OFFSET 22 /* and 23 */

static char g_dir[1024]; /* $STACK_DIR/tls: certificates, configs, data */
static char g_suite_stack[800];
static char g_suite_pg_port[16];

static const char *path_of(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", g_dir, name);
    return buf;
}

static int port_of(const char *var, int offset)
{
    return atoi(fx_env(var)) + offset;
}

/* The suite's PG_PORT is kept aside: stack_env_for_pg moves PG_PORT. */
static int tls_pg_port(void)
{
    return atoi(g_suite_pg_port) + TLS_PG_OFFSET;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    cr_assert(fclose(f) == 0, "cannot write %s", path);
}

static void sh(const char *script)
{
    char out[8192];
    const char *argv[] = {"/bin/sh", "-ec", script, NULL};
    int rc = fx_run(argv, NULL, out, sizeof out, 60000);
    cr_assert(rc == 0, "sh: exit %d:\n%s\n%s", rc, script, out);
}

/* A CA, a server certificate for localhost / 127.0.0.1 and a client
 * certificate, all signed by it (P-256 keys: fast), and a second CA that
 * signed nothing of ours. */
static void make_certs(void)
{
    char script[8192];
    snprintf(script, sizeof script,
             "cd '%s'\n"
             "K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
             "openssl req -x509 $K -keyout ca.key -out ca.pem -days 2 -subj /CN=sf-test-ca\n"
             "openssl req -x509 $K -keyout other-ca.key -out other-ca.pem -days 2 "
             "-subj /CN=sf-other-ca\n"
             "openssl req $K -keyout server.key -out server.csr -subj /CN=localhost\n"
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext\n"
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out server.pem -days 2 -extfile server.ext\n"
             "openssl req $K -keyout client.key -out client.csr -subj /CN=sf-test-client\n"
             "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n"
             "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out client.pem -days 2 -extfile client.ext\n",
             g_dir);
    sh(script);
}

static void tls_init(void)
{
    snprintf(g_suite_stack, sizeof g_suite_stack, "%s", fx_env("STACK_DIR"));
    snprintf(g_suite_pg_port, sizeof g_suite_pg_port, "%s", fx_env("PG_PORT"));
    snprintf(g_dir, sizeof g_dir, "%s/tls", g_suite_stack);
    char script[8192];
    snprintf(script, sizeof script, "mkdir -p '%s'", g_dir);
    sh(script);
    make_certs();
}

static void tls_fini(void)
{
    fx_teardown();
    /* the PostgreSQL of start_tls_pg, if a failed test left it running */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "STACK_DIR='%s/pg-stack' PG_PORT=%d '%s' pg-stop >/dev/null 2>&1",
             g_dir, tls_pg_port(), getenv("SF_STACK") ? getenv("SF_STACK") : "false");
    if (system(cmd) != 0)
        fprintf(stderr, "test_tls: %s failed\n", cmd);
}

TestSuite(tls, .init = tls_init, .fini = tls_fini, .timeout = 180);

/* ---- NATS ------------------------------------------------------------------ */

static bool nats_up(void *arg)
{
    (void)arg;
    char ca[1200], cert[1200], key[1200], url[128];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port_of("NATS_PORT", TLS_NATS_OFFSET));
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = url;
    bo.tls =
        (sf_broker_tls){path_of("ca.pem", ca, sizeof ca), path_of("client.pem", cert, sizeof cert),
                        path_of("client.key", key, sizeof key), true};
    sf_broker *b = NULL;
    sf_error err;
    if (sf_broker_connect(&bo, &b, &err) != SF_OK)
        return false;
    sf_broker_close(b);
    return true;
}

/* nats-server with JetStream, TLS required, client certificates verified. */
static void start_tls_nats(void)
{
    char conf[1200], text[8192], ca[1200], cert[1200], key[1200], store[1200], log[1200];
    snprintf(text, sizeof text,
             "listen: 127.0.0.1:%d\n"
             "jetstream { store_dir: \"%s\" }\n"
             "tls { cert_file: \"%s\", key_file: \"%s\", ca_file: \"%s\", verify: true, "
             "timeout: 2 }\n",
             port_of("NATS_PORT", TLS_NATS_OFFSET), path_of("nats-store", store, sizeof store),
             path_of("server.pem", cert, sizeof cert), path_of("server.key", key, sizeof key),
             path_of("ca.pem", ca, sizeof ca));
    write_file(path_of("nats.conf", conf, sizeof conf), text);
    const char *argv[] = {"nats-server", "-c", conf, NULL};
    fx_spawn(argv, path_of("nats.log", log, sizeof log));
    cr_assert(fx_wait_until(nats_up, NULL, 20000), "the TLS nats-server did not come up; see %s",
              log);
}

/* A raw plaintext NATS client: read INFO, send CONNECT and PING, return what
 * the server said up to its close (5 s at most) in out. (nats.c itself
 * cannot stay plaintext: it upgrades when INFO says tls_required.) */
static void plaintext_nats_session(char *out, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port_of("NATS_PORT", TLS_NATS_OFFSET))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "plaintext connect failed");
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t n = 0;
    ssize_t r = read(fd, out, size - 1); /* INFO, sent in clear before any TLS */
    n = r > 0 ? (size_t)r : 0;
    static const char hello[] = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n";
    if (write(fd, hello, sizeof hello - 1) < 0)
        n += (size_t)snprintf(out + n, size - n, "(write failed)");
    while (n + 1 < size && (r = read(fd, out + n, size - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fd);
}

static sf_status connect_nats(const sf_broker_tls *tls, sf_broker **b, sf_error *err)
{
    char url[128];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port_of("NATS_PORT", TLS_NATS_OFFSET));
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = url;
    bo.connect_timeout_ms = 3000;
    if (tls)
        bo.tls = *tls;
    return sf_broker_connect(&bo, b, err);
}

Test(tls, nats_requires_tls_and_a_client_certificate)
{
    start_tls_nats();
    char ca[1200], cert[1200], key[1200], other[1200];
    path_of("ca.pem", ca, sizeof ca);
    path_of("client.pem", cert, sizeof cert);
    path_of("client.key", key, sizeof key);
    path_of("other-ca.pem", other, sizeof other);
    sf_broker *b = NULL;
    sf_error err;

    /* verified both ways: JetStream works over it */
    sf_broker_tls good = {ca, cert, key, true};
    cr_assert(connect_nats(&good, &b, &err) == SF_OK, "TLS client refused: %s", err.msg);
    sf_setup_opts so;
    sf_setup_opts_init(&so);
    cr_assert(sf_broker_setup(b, &so, NULL, &err) == SF_OK, "setup over TLS: %s", err.msg);
    uint64_t seq = 0;
    cr_assert(sf_broker_publish_sync(b, "inv.evt.sale.TLS-1", "tls-1", NULL, 0, "x", 1, &seq,
                                     &err) == SF_OK,
              "publish over TLS: %s", err.msg);
    cr_assert(seq == 1);
    sf_broker_close(b);

    /* plaintext: the server's INFO demands TLS; a client that sends CONNECT
     * and PING in clear gets no PONG, only a closed connection */
    char talk[4096];
    plaintext_nats_session(talk, sizeof talk);
    cr_assert(strstr(talk, "INFO") && strstr(talk, "\"tls_required\":true"), "%s", talk);
    cr_assert(!strstr(talk, "PONG"), "a plaintext client was served: %s", talk);
    /* nats.c without our CA: it upgrades to TLS and refuses the unknown issuer */
    cr_assert(connect_nats(NULL, &b, &err) != SF_OK, "a client without the CA was accepted");
    cr_assert(strstr(err.msg, "SSL"), "refusal does not say why: %s", err.msg);
    /* TLS without a client certificate */
    sf_broker_tls nocert = {ca, NULL, NULL, true};
    cr_assert(connect_nats(&nocert, &b, &err) != SF_OK,
              "a client without certificate was accepted");
    /* a server certificate from a CA we do not trust */
    sf_broker_tls wrongca = {other, cert, key, true};
    cr_assert(connect_nats(&wrongca, &b, &err) != SF_OK, "an untrusted server was accepted");
    /* half a client identity is a usage error naming both keys */
    sf_broker_tls half = {ca, cert, NULL, true};
    cr_assert(connect_nats(&half, &b, &err) == SF_EINVAL);
    cr_assert(strstr(err.msg, "tls_cert") && strstr(err.msg, "tls_key"), "%s", err.msg);
}

/* ---- PostgreSQL -------------------------------------------------------------- */

static void stack_env_for_pg(void)
{
    char dir[1200], port[16];
    snprintf(dir, sizeof dir, "%s/pg-stack", g_dir);
    snprintf(port, sizeof port, "%d", tls_pg_port());
    setenv("STACK_DIR", dir, 1);
    setenv("PG_PORT", port, 1);
}

static void stop_tls_pg(void)
{
    stack_env_for_pg();
    fx_stack("pg-stop");
    setenv("STACK_DIR", g_suite_stack, 1);
    setenv("PG_PORT", g_suite_pg_port, 1);
}

static void chown_pg(const char *path, mode_t mode)
{
    struct passwd *pw = getpwnam("postgres");
    cr_assert(pw, "no postgres user");
    cr_assert(chown(path, pw->pw_uid, pw->pw_gid) == 0 && chmod(path, mode) == 0,
              "cannot hand %s to postgres", path);
}

static char g_pg_plain[256];

static bool pg_plain_refused(void *arg)
{
    (void)arg;
    PGconn *c = PQconnectdb(g_pg_plain);
    bool refused = PQstatus(c) != CONNECTION_OK;
    PQfinish(c);
    return refused;
}

/* A PostgreSQL of its own (stack.sh pg-start), switched to ssl = on with the
 * test's server certificate and a pg_hba.conf that accepts hostssl only. */
static void start_tls_pg(void)
{
    stack_env_for_pg();
    fx_stack("wipe"); /* a fresh cluster: the last test left it TLS-only */
    fx_stack("pg-start");
    snprintf(g_pg_plain, sizeof g_pg_plain,
             "host=127.0.0.1 port=%d dbname=postgres user=postgres sslmode=disable "
             "connect_timeout=5",
             tls_pg_port());
    PGconn *c = PQconnectdb(g_pg_plain);
    cr_assert(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, "SHOW data_directory");
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    char data[1024], path[1200], src[1200], script[4096];
    snprintf(data, sizeof data, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    static const char *const files[] = {"server.pem", "server.key"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", data, files[i]);
        snprintf(script, sizeof script, "cp '%s' '%s'", path_of(files[i], src, sizeof src), path);
        sh(script);
        chown_pg(path, 0600);
    }
    snprintf(path, sizeof path, "%s/pg_hba.conf", data);
    write_file(path, "# test_tls: TLS only over TCP\n"
                     "local     all all trust\n"
                     "hostssl   all all 127.0.0.1/32 trust\n"
                     "hostnossl all all 127.0.0.1/32 reject\n");
    chown_pg(path, 0600);
    static const char *const sql[] = {
        "ALTER SYSTEM SET ssl = on", "ALTER SYSTEM SET ssl_cert_file = 'server.pem'",
        "ALTER SYSTEM SET ssl_key_file = 'server.key'", "SELECT pg_reload_conf()"};
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        r = PQexec(c, sql[i]);
        cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
                  "%s: %s", sql[i], PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
    setenv("STACK_DIR", g_suite_stack, 1);
    setenv("PG_PORT", g_suite_pg_port, 1);
    cr_assert(fx_wait_until(pg_plain_refused, NULL, 10000),
              "PostgreSQL still accepts plaintext after the reload");
}

Test(tls, postgres_hostssl_only_refuses_plaintext)
{
    start_tls_pg();
    char ca[1200], other[1200], dsn[1600];
    path_of("ca.pem", ca, sizeof ca);
    path_of("other-ca.pem", other, sizeof other);

    PGconn *c = PQconnectdb(g_pg_plain);
    cr_assert(PQstatus(c) != CONNECTION_OK, "a plaintext client was accepted");
    cr_assert(strstr(PQerrorMessage(c), "no encryption") || strstr(PQerrorMessage(c), "reject"),
              "plaintext refusal does not say why: %s", PQerrorMessage(c));
    PQfinish(c);

    snprintf(dsn, sizeof dsn,
             "host=127.0.0.1 port=%d dbname=stockflow user=postgres sslmode=verify-full "
             "sslrootcert=%s connect_timeout=5",
             tls_pg_port(), ca);
    c = PQconnectdb(dsn);
    cr_assert(PQstatus(c) == CONNECTION_OK, "verify-full refused: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "true") == 0,
              "the session is not encrypted: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);

    snprintf(dsn, sizeof dsn,
             "host=127.0.0.1 port=%d dbname=stockflow user=postgres sslmode=verify-full "
             "sslrootcert=%s connect_timeout=5",
             tls_pg_port(), other);
    c = PQconnectdb(dsn);
    cr_assert(PQstatus(c) != CONNECTION_OK, "a server from an untrusted CA was accepted");
    PQfinish(c);
    stop_tls_pg();
}

Test(tls, invctl_setup_over_tls_by_config)
{
    start_tls_nats();
    start_tls_pg();
    char ca[1200], cert[1200], key[1200], cfg[1200], plain[1200], text[8192], out[16384];
    path_of("ca.pem", ca, sizeof ca);
    path_of("client.pem", cert, sizeof cert);
    path_of("client.key", key, sizeof key);
    snprintf(text, sizeof text,
             "[nats]\nurl = nats://127.0.0.1:%d\ntls_ca = %s\ntls_cert = %s\ntls_key = %s\n"
             "tls_required = true\n"
             "[pg]\ndsn = host=127.0.0.1 port=%d dbname=stockflow user=postgres "
             "sslmode=verify-full sslrootcert=%s\n",
             port_of("NATS_PORT", TLS_NATS_OFFSET), ca, cert, key, tls_pg_port(), ca);
    write_file(path_of("tls.ini", cfg, sizeof cfg), text);
    snprintf(text, sizeof text,
             "[nats]\nurl = nats://127.0.0.1:%d\n[pg]\ndsn = host=127.0.0.1 "
             "port=%d dbname=stockflow user=postgres sslmode=disable\n",
             port_of("NATS_PORT", TLS_NATS_OFFSET), tls_pg_port());
    write_file(path_of("plain.ini", plain, sizeof plain), text);

    /* the config must win over the suite's environment */
    unsetenv("INV_NATS_URL");
    unsetenv("INV_PG_DSN");
    const char *ok[] = {"invctl", "--config", cfg, "setup", NULL};
    int rc = fx_run(ok, NULL, out, sizeof out, 60000);
    cr_assert(rc == 0, "invctl setup over TLS: exit %d:\n%s", rc, out);
    cr_assert(strstr(out, "INV_EVENTS"), "%s", out);
    const char *bad[] = {"invctl", "--config", plain, "setup", NULL};
    rc = fx_run(bad, NULL, out, sizeof out, 60000);
    cr_assert(rc == 1, "invctl setup in plaintext: want exit 1, got %d:\n%s", rc, out);
    cr_assert(strstr(out, "SSL") || strstr(out, "ecure"), "the refusal does not say why:\n%s", out);
    stop_tls_pg();
}

/* ---- inv-api over HTTPS ------------------------------------------------------ */

Test(tls, api_serves_https_only)
{
    char cert[1200], key[1200], ca[1200], other[1200], cfg[1200], text[8192], log[1200], out[8192],
        url[128], script[4096];
    int port = port_of("NATS_PORT", TLS_API_OFFSET);
    int ops = port_of("NATS_PORT", TLS_OPS_OFFSET);
    snprintf(text, sizeof text,
             "[api]\nlisten = 127.0.0.1:%d\ntls_cert = %s\ntls_key = %s\n"
             "[ops]\nendpoint = tcp://127.0.0.1:%d\nsub_endpoint = tcp://127.0.0.1:%d\n",
             port, path_of("server.pem", cert, sizeof cert), path_of("server.key", key, sizeof key),
             ops, ops + 1);
    write_file(path_of("api.ini", cfg, sizeof cfg), text);
    path_of("ca.pem", ca, sizeof ca);
    path_of("other-ca.pem", other, sizeof other);
    const char *argv[] = {"inv-api", "--config", cfg, NULL};
    fx_spawn(argv, path_of("api.log", log, sizeof log));

    /* verified HTTPS: /healthz answers (200 or 503 by the servers' state) */
    snprintf(url, sizeof url, "https://localhost:%d/healthz", port);
    snprintf(script, sizeof script,
             "for i in $(seq 100); do "
             "code=$(curl -s -o /dev/null -w '%%{http_code}' --cacert '%s' '%s') && break; "
             "sleep 0.1; done; echo \"code=$code\"",
             ca, url);
    const char *sh_argv[] = {"/bin/sh", "-c", script, NULL};
    cr_assert(fx_run(sh_argv, NULL, out, sizeof out, 30000) == 0, "%s", out);
    cr_assert(strstr(out, "code=200") || strstr(out, "code=503"),
              "no HTTPS reply from inv-api (%s): %s; log %s", url, out, log);

    /* plain HTTP on the same port: no HTTP reply at all */
    snprintf(script, sizeof script,
             "curl -s -o /dev/null -w '%%{http_code}' --max-time 5 "
             "'http://127.0.0.1:%d/healthz'; echo \" rc=$?\"",
             port);
    const char *plain_argv[] = {"/bin/sh", "-c", script, NULL};
    fx_run(plain_argv, NULL, out, sizeof out, 30000);
    cr_assert(strstr(out, "000 rc=") && !strstr(out, "rc=0"),
              "a plaintext HTTP client got an answer: %s", out);

    /* a client that does not trust the issuing CA refuses the server */
    snprintf(script, sizeof script,
             "curl -s -o /dev/null --max-time 5 --cacert '%s' '%s'; echo \"rc=$?\"", other, url);
    const char *other_argv[] = {"/bin/sh", "-c", script, NULL};
    fx_run(other_argv, NULL, out, sizeof out, 30000);
    cr_assert(strstr(out, "rc=60"), "want curl's certificate error (60): %s", out);
}

Test(tls, api_refuses_half_a_tls_config)
{
    char cert[1200], cfg[1200], text[8192], out[8192];
    snprintf(text, sizeof text, "[api]\nlisten = 127.0.0.1:%d\ntls_cert = %s\n",
             port_of("NATS_PORT", TLS_API_OFFSET), path_of("server.pem", cert, sizeof cert));
    write_file(path_of("api-half.ini", cfg, sizeof cfg), text);
    const char *argv[] = {"inv-api", "--config", cfg, NULL};
    int rc = fx_run(argv, NULL, out, sizeof out, 30000);
    cr_assert(rc != 0, "inv-api started with a certificate and no key:\n%s", out);
    cr_assert(strstr(out, "tls_cert") && strstr(out, "tls_key"), "%s", out);
}
