/*
 * fixture: connections to the private stack, resets, and child processes
 * for the integration tests (see fixture.h for the contract).
 *
 * The one idea to keep: a helper either succeeds or fails the running test
 * with a message that says what it ran and what came back (command output,
 * server error text). Children run in their own process group so a timeout
 * kills everything they started, and their output is read while waiting, so
 * a chatty child can never block on a full pipe.
 */
#define _GNU_SOURCE /* pipe2, close_range */
#include "fixture.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FX_SPAWN_MAX 64
#define FX_PATH_MAX 4096
#define FX_STACK_TIMEOUT_MS 120000
#define FX_SETUP_TIMEOUT_MS 120000

static PGconn *fx__pg;
static natsConnection *fx__nc;
static jsCtx *fx__js;
static bool fx__nats_used;
static pid_t fx__spawned[FX_SPAWN_MAX];
static size_t fx__n_spawned;

/* ------------------------------------------------------------------ misc --- */

int64_t fx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fx__sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

const char *fx_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v,
              "environment variable %s is not set: run the integration tests "
              "through scripts/run-tests.sh (or make test-integration)",
              name);
    return v;
}

bool fx_wait_until(bool (*pred)(void *arg), void *arg, int timeout_ms)
{
    int64_t deadline = fx_now_ms() + timeout_ms;
    int step = 5;
    for (;;) {
        if (pred(arg))
            return true;
        int64_t left = deadline - fx_now_ms();
        if (left <= 0)
            return pred(arg);
        fx__sleep_ms(left < step ? (int)left : step);
        if (step < 100)
            step *= 2;
    }
}

/* ------------------------------------------------------------ PostgreSQL --- */

PGconn *fx_pg(void)
{
    if (fx__pg && PQstatus(fx__pg) == CONNECTION_OK)
        return fx__pg;
    if (fx__pg)
        PQfinish(fx__pg);
    const char *dsn = fx_env("INV_PG_DSN");
    fx__pg = PQconnectdb(dsn);
    cr_assert(PQstatus(fx__pg) == CONNECTION_OK, "fx_pg: cannot connect to '%s': %s", dsn,
              PQerrorMessage(fx__pg));
    return fx__pg;
}

void fx_exec(const char *sql)
{
    PGresult *res = PQexec(fx_pg(), sql);
    ExecStatusType st = PQresultStatus(res);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ok ? "" : PQresultErrorMessage(res));
    PQclear(res);
    cr_assert(ok, "fx_exec: %s\n  failed: %s", sql, msg);
}

/* Run sql and return its result, asserting exactly one non-NULL value. The
 * caller PQclear()s it. */
static PGresult *fx__query_one(const char *sql)
{
    PGresult *res = PQexec(fx_pg(), sql);
    char msg[1024] = "";
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        snprintf(msg, sizeof msg, "failed: %s", PQresultErrorMessage(res));
    else if (PQntuples(res) != 1 || PQnfields(res) != 1)
        snprintf(msg, sizeof msg, "returned %d rows x %d columns, want exactly 1 x 1",
                 PQntuples(res), PQnfields(res));
    else if (PQgetisnull(res, 0, 0))
        snprintf(msg, sizeof msg, "returned NULL");
    if (msg[0]) {
        PQclear(res);
        cr_assert_fail("fx_query: %s\n  %s", sql, msg);
    }
    return res;
}

int64_t fx_query_i64(const char *sql)
{
    PGresult *res = fx__query_one(sql);
    const char *v = PQgetvalue(res, 0, 0);
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    bool ok = errno == 0 && *v && *end == '\0';
    char copy[128];
    snprintf(copy, sizeof copy, "%s", v);
    PQclear(res);
    cr_assert(ok, "fx_query_i64: %s\n  returned '%s', not an integer", sql, copy);
    return n;
}

const char *fx_query_str(const char *sql, char *buf, size_t size)
{
    PGresult *res = fx__query_one(sql);
    const char *v = PQgetvalue(res, 0, 0);
    size_t n = (size_t)PQgetlength(res, 0, 0);
    bool fits = n < size;
    if (fits)
        memcpy(buf, v, n + 1);
    PQclear(res);
    cr_assert(fits, "fx_query_str: %s\n  value of %zu bytes does not fit a %zu-byte buffer", sql, n,
              size);
    return buf;
}

/* Connect with the parameters of INV_PG_DSN but dbname=postgres; the name of
 * the test database goes to dbname. */
static PGconn *fx__pg_admin(char *dbname, size_t size)
{
    const char *dsn = fx_env("INV_PG_DSN");
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
    cr_assert(opts, "INV_PG_DSN '%s' does not parse: %s", dsn, perr ? perr : "out of memory");

    const char *keys[64];
    const char *vals[64];
    size_t n = 0;
    dbname[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword && n < 62; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "dbname") == 0) {
            snprintf(dbname, size, "%s", o->val);
            continue;
        }
        keys[n] = o->keyword;
        vals[n] = o->val;
        n++;
    }
    keys[n] = "dbname";
    vals[n] = "postgres";
    n++;
    keys[n] = NULL;
    vals[n] = NULL;
    PGconn *admin = PQconnectdbParams(keys, vals, 0);
    PQconninfoFree(opts);
    cr_assert(dbname[0], "INV_PG_DSN '%s' names no dbname", dsn);
    cr_assert(strcmp(dbname, "postgres") != 0 && strcmp(dbname, "template1") != 0,
              "INV_PG_DSN names database '%s': refusing to drop it", dbname);
    cr_assert(PQstatus(admin) == CONNECTION_OK,
              "fx_reset: cannot connect to dbname=postgres (from '%s'): %s", dsn,
              PQerrorMessage(admin));
    return admin;
}

static void fx__admin_exec(PGconn *admin, const char *sql)
{
    PGresult *res = PQexec(admin, sql);
    ExecStatusType st = PQresultStatus(res);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ok ? "" : PQresultErrorMessage(res));
    PQclear(res);
    if (!ok)
        PQfinish(admin);
    cr_assert(ok, "fx_reset: %s\n  failed: %s", sql, msg);
}

static void fx__reset_database(void)
{
    if (fx__pg) {
        PQfinish(fx__pg);
        fx__pg = NULL;
    }
    char dbname[256];
    PGconn *admin = fx__pg_admin(dbname, sizeof dbname);
    char *ident = PQescapeIdentifier(admin, dbname, strlen(dbname));
    char *lit = PQescapeLiteral(admin, dbname, strlen(dbname));
    cr_assert(ident && lit, "fx_reset: cannot quote '%s'", dbname);
    char sql[1024];
    /* Terminate first so a lingering service does not reconnect between the
     * two; WITH (FORCE) catches whatever connected since. */
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE datname = %s AND pid <> pg_backend_pid()",
             lit);
    fx__admin_exec(admin, sql);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", ident);
    fx__admin_exec(admin, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", ident);
    fx__admin_exec(admin, sql);
    PQfreemem(ident);
    PQfreemem(lit);
    PQfinish(admin);
}

/* ------------------------------------------------------------------ NATS --- */

natsConnection *fx_nats(void)
{
    if (fx__nc)
        return fx__nc;
    const char *url = fx_env("INV_NATS_URL");
    fx__nats_used = true;
    natsStatus s = natsConnection_ConnectTo(&fx__nc, url);
    cr_assert(s == NATS_OK, "fx_nats: cannot connect to %s: %s (%s)", url, natsStatus_GetText(s),
              nats_GetLastError(NULL));
    return fx__nc;
}

jsCtx *fx_js(void)
{
    if (fx__js)
        return fx__js;
    natsStatus s = natsConnection_JetStream(&fx__js, fx_nats(), NULL);
    cr_assert(s == NATS_OK, "fx_js: no JetStream context: %s", natsStatus_GetText(s));
    return fx__js;
}

uint64_t fx_stream_msgs(const char *stream)
{
    jsStreamInfo *si = NULL;
    natsStatus s = js_GetStreamInfo(&si, fx_js(), stream, NULL, NULL);
    cr_assert(s == NATS_OK, "fx_stream_msgs: stream %s: %s", stream, natsStatus_GetText(s));
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

int fx_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
                  getsockname(fd, (struct sockaddr *)&a, &len) == 0,
              "fx_free_port: %s", strerror(errno));
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

void fx_ops_endpoints(char front[64], char back[64])
{
    int pf = fx_free_port(), pb = fx_free_port();
    for (int i = 0; pb == pf && i < 10; i++)
        pb = fx_free_port();
    cr_assert(pf != pb, "fx_ops_endpoints: no second free port");
    snprintf(front, 64, "tcp://127.0.0.1:%d", pf);
    snprintf(back, 64, "tcp://127.0.0.1:%d", pb);
    setenv("INV_OPS_ENDPOINT", front, 1);
}

static void fx__delete_stream(jsCtx *js, const char *name)
{
    jsErrCode jerr = 0;
    natsStatus s = js_DeleteStream(js, name, NULL, &jerr);
    cr_assert(s == NATS_OK || s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr,
              "fx_reset: cannot delete stream %s: %s (js error %d: %s)", name,
              natsStatus_GetText(s), (int)jerr, nats_GetLastError(NULL));
}

static void fx__reset_streams(void)
{
    static const char *const named[] = {"INV_EVENTS", "INV_DLQ", "INV_CHANNEL"};
    jsCtx *js = fx_js();
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        fx__delete_stream(js, named[i]);

    /* and any other stream a test or a newer setup created: the stack is ours */
    jsStreamNamesList *list = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_StreamNames(&list, js, NULL, &jerr);
    if (s == NATS_NOT_FOUND)
        return;
    cr_assert(s == NATS_OK, "fx_reset: cannot list streams: %s (js error %d)",
              natsStatus_GetText(s), (int)jerr);
    for (int i = 0; i < list->Count; i++)
        fx__delete_stream(js, list->List[i]);
    jsStreamNamesList_Destroy(list);
}

/* --------------------------------------------------------------- resets --- */

void fx_reset_bare(void)
{
    fx__reset_database();
    fx__reset_streams();
}

void fx_reset(void)
{
    fx_reset_bare();
    char path[FX_PATH_MAX];
    snprintf(path, sizeof path, "%s/invctl", fx_env("SF_BIN"));
    cr_assert(access(path, X_OK) == 0, "fx_reset: %s is not there (%s): build it first (make)",
              path, strerror(errno));
    char out[16384];
    int rc = fx_run((const char *const[]){"invctl", "setup", NULL}, NULL, out, sizeof out,
                    FX_SETUP_TIMEOUT_MS);
    cr_assert(rc == 0, "fx_reset: invctl setup exited %d:\n%s", rc, out);
}

void fx_teardown(void)
{
    for (size_t i = 0; i < fx__n_spawned; i++) {
        pid_t pid = fx__spawned[i];
        if (kill(-pid, SIGKILL) == -1)
            kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    fx__n_spawned = 0;
    if (fx__pg) {
        PQfinish(fx__pg);
        fx__pg = NULL;
    }
    if (fx__js) {
        jsCtx_Destroy(fx__js);
        fx__js = NULL;
    }
    if (fx__nc) {
        natsConnection_Destroy(fx__nc);
        fx__nc = NULL;
    }
    if (fx__nats_used) {
        /* frees the library's threads and memory so leak checkers stay quiet */
        nats_CloseAndWait(2000);
        fx__nats_used = false;
    }
}

/* ------------------------------------------------------------- processes --- */

/* argv[0] -> path to exec: from $SF_BIN when it names a file there. */
static const char *fx__resolve(const char *name, char *buf, size_t size)
{
    if (strchr(name, '/'))
        return name;
    const char *bin = getenv("SF_BIN");
    if (bin && *bin) {
        snprintf(buf, size, "%s/%s", bin, name);
        if (access(buf, F_OK) == 0)
            return buf;
    }
    return name; /* execvp searches PATH */
}

static int fx__status(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return -1;
}

static void fx__describe(const char *const argv[], char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; argv[i] && n + 1 < size; i++) {
        int w = snprintf(buf + n, size - n, "%s%s", i ? " " : "", argv[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* In the child, after fork: never returns. */
static void fx__exec_child(const char *path, const char *const argv[], int in_fd, int out_fd)
{
    setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL);
    if (in_fd != STDIN_FILENO) {
        dup2(in_fd, STDIN_FILENO);
        close(in_fd);
    }
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    /* nothing of the test process (Criterion's pipes, the runner's lock)
     * leaks into the child, nor into servers it starts */
    if (close_range(3, ~0U, 0) != 0) {
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    }
    execvp(path, (char *const *)argv);
    dprintf(STDERR_FILENO, "fx: cannot exec %s: %s\n", path, strerror(errno));
    _exit(127);
}

int fx_run(const char *const argv[], const char *stdin_path, char *out, size_t size, int timeout_ms)
{
    char pathbuf[FX_PATH_MAX], what[1024];
    const char *path = fx__resolve(argv[0], pathbuf, sizeof pathbuf);
    fx__describe(argv, what, sizeof what);

    int in_fd = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert(in_fd >= 0, "fx_run: %s: cannot open stdin %s: %s", what,
              stdin_path ? stdin_path : "/dev/null", strerror(errno));
    int pfd[2];
    cr_assert(pipe2(pfd, O_CLOEXEC) == 0, "fx_run: pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fx_run: fork: %s", strerror(errno));
    if (pid == 0)
        fx__exec_child(path, argv, in_fd, pfd[1]);
    setpgid(pid, pid); /* also in the parent: no race with a kill below */
    close(in_fd);
    close(pfd[1]);

    size_t len = 0;
    char sink[4096];
    int wstatus = 0;
    bool exited = false, eof = false;
    int64_t deadline = fx_now_ms() + timeout_ms;
    /* Read until EOF and exit; stop at exit even without EOF, since a
     * daemon the child started may hold the pipe open forever. */
    while (!(exited && eof)) {
        if (!exited) {
            pid_t w = waitpid(pid, &wstatus, WNOHANG);
            if (w == pid)
                exited = true;
        }
        int64_t left = deadline - fx_now_ms();
        if (left <= 0 && !exited) {
            kill(-pid, SIGKILL);
            waitpid(pid, &wstatus, 0);
            close(pfd[0]);
            if (out && size)
                out[len < size ? len : size - 1] = '\0';
            cr_assert_fail("fx_run: %s: still running after %d ms, killed; output so far:\n%s",
                           what, timeout_ms, out && size ? out : "(not captured)");
        }
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int ready = eof ? 0 : poll(&p, 1, exited ? 0 : (left < 20 ? (int)left : 20));
        if (ready > 0) {
            char *dst = sink;
            size_t room = sizeof sink;
            if (out && len + 1 < size) {
                dst = out + len;
                room = size - 1 - len;
            }
            ssize_t r = read(pfd[0], dst, room);
            if (r > 0 && dst != sink)
                len += (size_t)r;
            else if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
                eof = true;
        } else if (exited) {
            break; /* exited and nothing more to read right now */
        } else if (eof) {
            fx__sleep_ms(5); /* output closed, process still running */
        }
    }
    close(pfd[0]);
    if (out && size)
        out[len] = '\0';
    return fx__status(wstatus);
}

pid_t fx_spawn(const char *const argv[], const char *log_path)
{
    char pathbuf[FX_PATH_MAX], what[1024];
    const char *path = fx__resolve(argv[0], pathbuf, sizeof pathbuf);
    fx__describe(argv, what, sizeof what);
    if (strchr(path, '/'))
        cr_assert(access(path, X_OK) == 0, "fx_spawn: %s: %s is not executable: %s", what, path,
                  strerror(errno));
    cr_assert(fx__n_spawned < FX_SPAWN_MAX, "fx_spawn: more than %d live children", FX_SPAWN_MAX);

    int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert(in_fd >= 0, "fx_spawn: /dev/null: %s", strerror(errno));
    int out_fd = STDERR_FILENO;
    if (log_path) {
        out_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        cr_assert(out_fd >= 0, "fx_spawn: %s: cannot open log %s: %s", what, log_path,
                  strerror(errno));
    }
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fx_spawn: fork: %s", strerror(errno));
    if (pid == 0)
        fx__exec_child(path, argv, in_fd, out_fd);
    setpgid(pid, pid);
    close(in_fd);
    if (out_fd != STDERR_FILENO)
        close(out_fd);
    fx__spawned[fx__n_spawned++] = pid;
    return pid;
}

static void fx__forget(pid_t pid)
{
    for (size_t i = 0; i < fx__n_spawned; i++) {
        if (fx__spawned[i] == pid) {
            fx__spawned[i] = fx__spawned[--fx__n_spawned];
            return;
        }
    }
}

int fx_stop(pid_t pid, int sig, int timeout_ms)
{
    if (sig)
        kill(pid, sig);
    int64_t deadline = fx_now_ms() + timeout_ms;
    int wstatus = 0;
    for (;;) {
        pid_t w = waitpid(pid, &wstatus, WNOHANG);
        if (w == pid)
            break;
        cr_assert(w == 0, "fx_stop: pid %d is not a child of this test: %s", (int)pid,
                  strerror(errno));
        if (fx_now_ms() >= deadline) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fx__forget(pid);
            cr_assert_fail("fx_stop: pid %d still running %d ms after signal %d; killed", (int)pid,
                           timeout_ms, sig);
        }
        fx__sleep_ms(10);
    }
    fx__forget(pid);
    return fx__status(wstatus);
}

void fx_stack(const char *cmd)
{
    char words[256];
    snprintf(words, sizeof words, "%s", cmd);
    const char *argv[16];
    size_t n = 0;
    argv[n++] = fx_env("SF_STACK");
    char *save = NULL;
    for (char *w = strtok_r(words, " ", &save); w && n < 15; w = strtok_r(NULL, " ", &save))
        argv[n++] = w;
    argv[n] = NULL;
    char out[8192];
    int rc = fx_run(argv, NULL, out, sizeof out, FX_STACK_TIMEOUT_MS);
    cr_assert(rc == 0, "fx_stack: stack.sh %s exited %d:\n%s", cmd, rc, out);
}
