/*
 * fixture: the one fixture of the integration tests (STYLE rule 10). The
 * Makefile links fixture.o into every tests/integration/test_* binary.
 *
 * scripts/run-tests.sh starts a private stack and hands it over through the
 * environment: INV_NATS_URL, INV_PG_DSN (the services read the same two),
 * SF_BIN (absolute directory of the built binaries), SF_ROOT (the repository
 * root, also the tests' working directory) and SF_STACK (scripts/stack.sh,
 * with STACK_DIR and the ports exported so it drives that same stack).
 *
 * Every helper checks its own work and fails the running test (cr_assert)
 * with a message naming what failed, so tests read as plain steps:
 *
 *     TestSuite(ledger, .init = fx_reset, .fini = fx_teardown, .timeout = 120);
 *     Test(ledger, applies_a_sale) {
 *         char out[4096];
 *         cr_assert(fx_run((const char *[]){"inv-ingest", "--file", "x.jsonl", NULL},
 *                          NULL, out, sizeof out, 10000) == 0, "%s", out);
 *         cr_assert(fx_query_i64("SELECT count(*) FROM ledger") == 1);
 *     }
 *
 * Ownership: the PostgreSQL and NATS connections are cached per test process
 * (Criterion runs each test in its own process) and released by
 * fx_teardown(), which also kills whatever fx_spawn() started and the test
 * did not fx_stop(). Criterion 2.4 ignores assertions inside .fini, so
 * fx_teardown never asserts. Nothing here is thread-safe: call it from the
 * test's thread.
 */
#ifndef SF_TEST_FIXTURE_H
#define SF_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>
#include <nats/nats.h>

/* The value of environment variable name; fails the test when unset or
 * empty (run the tests through scripts/run-tests.sh). */
const char *fx_env(const char *name);

/* A fresh world: fx_reset_bare(), then "$SF_BIN/invctl setup" (streams,
 * consumer, migrations). Usable directly as a Criterion .init. */
void fx_reset(void);

/* Drop and recreate the database named in INV_PG_DSN (terminating its other
 * connections; through dbname=postgres) and delete every JetStream stream of
 * the account, INV_EVENTS, INV_DLQ and INV_CHANNEL included. No setup. */
void fx_reset_bare(void);

/* Release the cached connections and kill (SIGKILL, whole process group)
 * every process fx_spawn() started that is still running. Never fails the
 * test. Usable directly as a Criterion .fini. */
void fx_teardown(void);

/* ---- PostgreSQL ---- */

/* A connection to INV_PG_DSN, opened on first use and cached. */
PGconn *fx_pg(void);

/* Run sql (no result rows expected, or ignored); fails the test on error. */
void fx_exec(const char *sql);

/* The single value sql returns, which must be exactly one row and one
 * column, non-NULL: as an integer / copied into buf (fails the test if it
 * does not fit). fx_query_str returns buf. */
int64_t fx_query_i64(const char *sql);
const char *fx_query_str(const char *sql, char *buf, size_t size);

/* ---- NATS ---- */

/* A connection to INV_NATS_URL and its JetStream context, opened on first
 * use and cached. */
natsConnection *fx_nats(void);
jsCtx *fx_js(void);
/* Messages stored in stream now. */
uint64_t fx_stream_msgs(const char *stream);

/* ---- ports ---- */

/* A TCP port of 127.0.0.1 that nobody listens on right now. */
int fx_free_port(void);

/* Endpoints for an ops feed proxy on two distinct free ports: front
 * (services PUB there, the XSUB side) and back (readers SUB there, the
 * XPUB side); INV_OPS_ENDPOINT is set to front, so the services a test
 * starts publish to it (never to the fixed ports of test_ops.c). */
void fx_ops_endpoints(char front[64], char back[64]);

/* ---- processes ---- */

/* Run argv (NULL-terminated) to completion with stdin from stdin_path (NULL:
 * /dev/null) and stdout+stderr captured, interleaved, into out (always
 * NUL-terminated; cut at size - 1 bytes, out may be NULL with size 0).
 * Returns the exit status, or 128 + signal number if it was killed. Past
 * timeout_ms the process group is killed and the test fails. argv[0] without
 * a '/' is taken from $SF_BIN when that file exists there, else from PATH. */
int fx_run(const char *const argv[], const char *stdin_path, char *out, size_t size,
           int timeout_ms);

/* Start argv in the background in its own process group, stdin /dev/null,
 * stdout+stderr appended to log_path (NULL: the test's stderr). argv[0] is
 * resolved as by fx_run. Returns the pid; fails the test if argv[0] is not
 * executable. */
pid_t fx_spawn(const char *const argv[], const char *log_path);

/* Send sig to pid (0: just wait) and wait up to timeout_ms for it to exit;
 * returns its exit status (128 + signal if killed). Past the timeout it is
 * killed with SIGKILL and the test fails. */
int fx_stop(pid_t pid, int sig, int timeout_ms);

/* Run "$SF_STACK cmd", where cmd is words separated by spaces ("nats-stop",
 * "pg-stop immediate", "nats-start"); fails the test unless it exits 0. */
void fx_stack(const char *cmd);

/* ---- time ---- */

/* Poll pred(arg) (every 5 ms, backing off to 100 ms) until it returns true
 * (-> true) or timeout_ms passes (-> false, after one last try). */
bool fx_wait_until(bool (*pred)(void *arg), void *arg, int timeout_ms);

/* Monotonic milliseconds, for measuring in tests. */
int64_t fx_now_ms(void);

#endif
