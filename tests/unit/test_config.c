/*
 * config: defaults, a full file, every error class with its "path:line:
 * [section] key: reason" message, environment overrides, and the generic
 * [supplier.<id>] / [apikey.<name>] sections. Each test writes its INI text
 * to a mkstemp file under /tmp and removes it in the fixture's teardown,
 * which also frees the config and fails the test if heap bytes leaked.
 * (Criterion 2.4 ignores a failed assertion inside .fini: the teardown
 * aborts instead, which the runner reports and counts as a failure.)
 * The heap measure is exact only without glibc's tcache, which
 * scripts/run-tests.sh turns off for unit tests (GLIBC_TUNABLES); under
 * AddressSanitizer LeakSanitizer does the check instead.
 */
#include <criterion/criterion.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#if defined(__SANITIZE_ADDRESS__)
#define SF_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SF_TEST_ASAN 1
#endif
#endif
#ifdef SF_TEST_ASAN
#include <sanitizer/lsan_interface.h>
#endif

static sf_config cfg;
static sf_error err;
static char ini_path[64];
static size_t heap_before;

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks;
}

static void setup(void)
{
    ini_path[0] = '\0';
    sf_error_clear(&err);
    heap_before = heap_in_use();
    sf_config_init(&cfg);
}

static void teardown(void)
{
    sf_config_free(&cfg);
    if (ini_path[0])
        unlink(ini_path);
#ifdef SF_TEST_ASAN
    if (__lsan_do_recoverable_leak_check()) {
        fprintf(stderr, "config teardown: LeakSanitizer found leaks\n");
        abort();
    }
#endif
    size_t after = heap_in_use();
    if (after > heap_before) {
        fprintf(stderr, "config teardown: heap grew by %zu bytes during the test: a leak\n",
                after - heap_before);
        abort();
    }
}

TestSuite(config, .init = setup, .fini = teardown);

/* Write text to a fresh temp file; its path goes to ini_path. */
static const char *write_ini(const char *text)
{
    snprintf(ini_path, sizeof ini_path, "/tmp/sf-test-config-XXXXXX");
    int fd = mkstemp(ini_path);
    cr_assert(fd >= 0, "mkstemp failed");
    size_t n = strlen(text);
    cr_assert(write(fd, text, n) == (ssize_t)n, "short write to %s", ini_path);
    close(fd);
    return ini_path;
}

/* Load text and expect failure with status and a message equal to
 * "<path>:<suffix>". */
static void expect_error(const char *text, sf_status status, const char *suffix)
{
    const char *path = write_ini(text);
    sf_status s = sf_config_load(&cfg, path, &err);
    cr_assert(s == status, "status %d (%s), want %d; message: %s", s, sf_status_str(s), status,
              err.msg);
    char want[SF_ERROR_MSG_MAX];
    snprintf(want, sizeof want, "%s:%s", path, suffix);
    cr_assert(strcmp(err.msg, want) == 0, "message\n  got:  %s\n  want: %s", err.msg, want);
}

static void load_ok(const char *text)
{
    const char *path = write_ini(text);
    sf_status s = sf_config_load(&cfg, path, &err);
    cr_assert(s == SF_OK, "load failed: %s", err.msg);
}

static void assert_str(const char *got, const char *want)
{
    cr_assert(got != NULL, "got NULL, want '%s'", want);
    cr_assert(strcmp(got, want) == 0, "got '%s', want '%s'", got, want);
}

Test(config, defaults_match_the_contract)
{
    assert_str(cfg.nats.url, "nats://127.0.0.1:14222");
    cr_assert(cfg.nats.replicas == 1);
    cr_assert(cfg.nats.ack_wait_ms == 10000);
    assert_str(cfg.pg.dsn, "host=127.0.0.1 port=15432 dbname=stockflow user=postgres");
    cr_assert(cfg.pg.pool == 4);
    cr_assert(cfg.consumer.batch == 2000);
    cr_assert(cfg.consumer.max_deliver == 10);
    cr_assert(cfg.ingest.max_inflight == 4096);
    cr_assert(cfg.ingest.max_line == 65536);
    cr_assert(cfg.ingest.max_future_ms == 300000);
    cr_assert(cfg.reconciler.poll_ms == 500);
    assert_str(cfg.api.listen, "127.0.0.1:8080");
    cr_assert(cfg.api.max_batch == 1000);
    cr_assert(cfg.api.rate_per_key == 1000 && cfg.api.burst == 2000);
    cr_assert(cfg.api.max_header_bytes == 16384 && cfg.api.max_body_bytes == 65536);
    cr_assert(cfg.api.max_query_bytes == 4096);
    cr_assert(cfg.api.max_ledger_page == 1000);
    assert_str(cfg.ops.endpoint, "tcp://127.0.0.1:15560");
    assert_str(cfg.ops.sub_endpoint, "tcp://127.0.0.1:15561");
    cr_assert(cfg.now_ms_override == 0);
    cr_assert(cfg.n_entries == 0);
    assert_str(cfg.path, "");
}

Test(config, full_file_sets_every_key)
{
    load_ok("; stockflow test config\n"
            "# hash comments too\n"
            "[nats]\n"
            "url = nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.3:4222\n"
            "replicas = 3\n"
            "ack_wait_ms = 30000\n"
            "\n"
            "[pg]\n"
            "dsn = host=db port=5432 dbname=inv user=inv\n"
            "pool = 16 ; inline comment\n"
            "[consumer]\n"
            "batch = 5000\n"
            "max_deliver = 3\n"
            "[ingest]\n"
            "max_inflight = 100\n"
            "max_line = 4096\n"
            "max_future_ms = 0\n"
            "[reconciler]\n"
            "poll_ms = 50\n"
            "[api]\n"
            "listen = 0.0.0.0:9090\n"
            "max_batch = 10\n"
            "[ops]\n"
            "endpoint = tcp://127.0.0.1:25560\n"
            "sub_endpoint = ipc:///tmp/ops.sock\n");
    assert_str(cfg.nats.url, "nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.3:4222");
    cr_assert(cfg.nats.replicas == 3);
    cr_assert(cfg.nats.ack_wait_ms == 30000);
    assert_str(cfg.pg.dsn, "host=db port=5432 dbname=inv user=inv");
    cr_assert(cfg.pg.pool == 16);
    cr_assert(cfg.consumer.batch == 5000);
    cr_assert(cfg.consumer.max_deliver == 3);
    cr_assert(cfg.ingest.max_inflight == 100);
    cr_assert(cfg.ingest.max_line == 4096);
    cr_assert(cfg.ingest.max_future_ms == 0);
    cr_assert(cfg.reconciler.poll_ms == 50);
    assert_str(cfg.api.listen, "0.0.0.0:9090");
    cr_assert(cfg.api.max_batch == 10);
    assert_str(cfg.ops.endpoint, "tcp://127.0.0.1:25560");
    assert_str(cfg.ops.sub_endpoint, "ipc:///tmp/ops.sock");
    assert_str(cfg.path, ini_path);
}

Test(config, partial_file_keeps_other_defaults)
{
    load_ok("[consumer]\nbatch = 7\n");
    cr_assert(cfg.consumer.batch == 7);
    cr_assert(cfg.consumer.max_deliver == 10);
    assert_str(cfg.nats.url, "nats://127.0.0.1:14222");
}

Test(config, empty_file_is_fine)
{
    load_ok("");
    cr_assert(cfg.consumer.batch == 2000);
}

Test(config, unknown_key_names_line_section_and_key)
{
    expect_error("[consumer]\nbatch = 5\nbatchsize = 10\n", SF_EINVAL,
                 "3: [consumer] batchsize: unknown key");
}

Test(config, unknown_section_is_an_error)
{
    expect_error("[nats]\nurl = nats://x:1\n\n[natz]\nurl = nats://y:2\n", SF_EINVAL,
                 "5: [natz] url: unknown section (known: nats, pg, consumer, ingest, "
                 "reconciler, api, ops, supplier.<id>, apikey.<name>)");
}

Test(config, key_outside_a_section_is_an_error)
{
    expect_error("batch = 5\n", SF_EINVAL, "1: batch: key outside any [section]");
}

Test(config, bad_number_names_the_value)
{
    expect_error("[pg]\npool = four\n", SF_EINVAL, "2: [pg] pool: not a number: 'four'");
}

Test(config, trailing_garbage_is_not_a_number)
{
    expect_error("[consumer]\n\nbatch = 10x\n", SF_EINVAL,
                 "3: [consumer] batch: not a number: '10x'");
}

Test(config, empty_number_is_not_a_number)
{
    expect_error("[reconciler]\npoll_ms =\n", SF_EINVAL,
                 "2: [reconciler] poll_ms: not a number: ''");
}

Test(config, out_of_range_low_and_high)
{
    expect_error("[consumer]\nbatch = 0\n", SF_EINVAL,
                 "2: [consumer] batch: out of range: 0 (allowed 1..100000)");
    sf_config_free(&cfg);
    unlink(ini_path);
    sf_config_init(&cfg);
    expect_error("[consumer]\nmax_deliver = 2\nbatch = 100001\n", SF_EINVAL,
                 "3: [consumer] batch: out of range: 100001 (allowed 1..100000)");
}

Test(config, api_query_and_ledger_limits_load_and_check_their_range)
{
    load_ok("[api]\nmax_query_bytes = 256\nmax_ledger_page = 100000\n");
    cr_assert(cfg.api.max_query_bytes == 256 && cfg.api.max_ledger_page == 100000);
    cr_assert(cfg.api.max_batch == 1000, "the other [api] keys keep their defaults");
    sf_config_free(&cfg);
    unlink(ini_path);
    sf_config_init(&cfg);
    expect_error("[api]\nmax_query_bytes = 255\n", SF_EINVAL,
                 "2: [api] max_query_bytes: out of range: 255 (allowed 256..1048576)");
    sf_config_free(&cfg);
    unlink(ini_path);
    sf_config_init(&cfg);
    expect_error("[api]\n\nmax_ledger_page = 100001\n", SF_EINVAL,
                 "3: [api] max_ledger_page: out of range: 100001 (allowed 1..100000)");
    sf_config_free(&cfg);
    unlink(ini_path);
    sf_config_init(&cfg);
    expect_error("[api]\nmax_ledger_page = 0\n", SF_EINVAL,
                 "2: [api] max_ledger_page: out of range: 0 (allowed 1..100000)");
}

Test(config, overflowing_number_is_out_of_range)
{
    expect_error("[nats]\nack_wait_ms = 99999999999999999999999\n", SF_EINVAL,
                 "2: [nats] ack_wait_ms: out of range: 99999999999999999999999 "
                 "(allowed 100..3600000)");
}

Test(config, replicas_must_be_odd_up_to_five)
{
    expect_error("[nats]\nreplicas = 2\n", SF_EINVAL,
                 "2: [nats] replicas: out of range: 2 (allowed 1, 3 or 5)");
}

Test(config, negative_limit_is_out_of_range)
{
    expect_error("[ingest]\nmax_future_ms = -1\n", SF_EINVAL,
                 "2: [ingest] max_future_ms: out of range: -1 (allowed 0..2678400000)");
}

Test(config, empty_string_is_refused)
{
    expect_error("[pg]\ndsn =\n", SF_EINVAL, "2: [pg] dsn: must not be empty");
}

Test(config, listen_must_be_host_port)
{
    expect_error("[api]\nlisten = localhost\n", SF_EINVAL,
                 "2: [api] listen: 'localhost' is not host:port (port 1..65535)");
}

Test(config, ops_endpoint_needs_a_scheme)
{
    expect_error("[ops]\nendpoint = 127.0.0.1:5\n", SF_EINVAL,
                 "2: [ops] endpoint: '127.0.0.1:5' is not an endpoint (expected e.g. "
                 "tcp://host:port)");
}

Test(config, key_set_twice_is_an_error)
{
    expect_error("[pg]\npool = 2\n[nats]\nreplicas = 1\n[pg]\npool = 3\n", SF_EINVAL,
                 "6: [pg] pool: set twice (first on line 2)");
}

Test(config, syntax_error_names_the_line)
{
    expect_error("[pg]\npool = 2\njust some words\n", SF_EINVAL,
                 "3: syntax error: expected [section], key = value, or a comment");
}

Test(config, indented_continuation_of_a_known_key_is_refused)
{
    expect_error("[pg]\ndsn = host=a\n  port=5\n", SF_EINVAL,
                 "3: [pg] dsn: the value continues on an indented line; write it on one "
                 "line (or remove the indentation)");
}

Test(config, over_long_line_is_refused_not_split)
{
    char text[400];
    int n = snprintf(text, sizeof text, "[pg]\ndsn = ");
    memset(text + n, 'x', 300);
    snprintf(text + n + 300, sizeof text - (size_t)n - 300, "\n");
    expect_error(text, SF_EINVAL,
                 "2: line too long (max 199 bytes); continue a long value on indented lines");
}

Test(config, missing_file_is_an_io_error)
{
    sf_status s = sf_config_load(&cfg, "/tmp/sf-test-config-does-not-exist.ini", &err);
    cr_assert(s == SF_EIO);
    assert_str(err.msg, "/tmp/sf-test-config-does-not-exist.ini: cannot open: No such file or "
                        "directory");
}

/* ---- generic sections ---- */

Test(config, supplier_and_apikey_sections_are_kept_in_order)
{
    load_ok("[supplier.acme]\n"
            "format = x12-846\n"
            "location = DC-1\n"
            "location_map = ACME01=DC-1, ACME02=STORE-2,\n"
            "    ACME03=STORE-3\n"
            "[consumer]\n"
            "batch = 10\n"
            "[supplier.bolt_2]\n"
            "format = csv\n"
            "[apikey.ops]\n"
            "scope = admin\n"
            "hash = 0011aabb\n");
    cr_assert(cfg.n_entries == 6, "n_entries %zu", cfg.n_entries);
    assert_str(cfg.entries[0].section, "supplier.acme");
    assert_str(cfg.entries[0].key, "format");
    assert_str(cfg.entries[0].value, "x12-846");
    cr_assert(cfg.entries[0].line == 2);
    assert_str(sf_config_get(&cfg, "supplier.acme", "location_map"),
               "ACME01=DC-1, ACME02=STORE-2, ACME03=STORE-3");
    cr_assert(sf_config_find(&cfg, "supplier.acme", "location_map")->line == 4);
    assert_str(sf_config_get(&cfg, "supplier.bolt_2", "format"), "csv");
    assert_str(sf_config_get(&cfg, "apikey.ops", "scope"), "admin");
    assert_str(sf_config_get(&cfg, "apikey.ops", "hash"), "0011aabb");
    cr_assert(sf_config_get(&cfg, "supplier.acme", "nope") == NULL);
    cr_assert(sf_config_get(&cfg, "supplier.zzz", "format") == NULL);
    cr_assert(cfg.consumer.batch == 10);
}

Test(config, many_generic_entries_grow_the_array)
{
    char text[64 * 200];
    size_t n = (size_t)snprintf(text, sizeof text, "[supplier.big]\n");
    for (int i = 0; i < 150; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "k%d = v%d\n", i, i);
    load_ok(text);
    cr_assert(cfg.n_entries == 150);
    assert_str(sf_config_get(&cfg, "supplier.big", "k149"), "v149");
    cr_assert(sf_config_find(&cfg, "supplier.big", "k149")->line == 151);
}

Test(config, supplier_id_must_be_a_token)
{
    expect_error("[supplier.a b]\nformat = csv\n", SF_EINVAL,
                 "2: [supplier.a b] format: bad section name: the part after 'supplier.' must "
                 "be 1..64 of A-Z a-z 0-9 _ -");
}

Test(config, supplier_key_set_twice_is_an_error)
{
    expect_error("[supplier.x]\nformat = csv\nformat = jsonl\n", SF_EINVAL,
                 "3: [supplier.x] format: set twice (first on line 2)");
}

Test(config, indented_keys_in_a_supplier_section_are_refused)
{
    expect_error("[supplier.x]\n  format = csv\n  location = S1\n", SF_EINVAL,
                 "3: [supplier.x] format: indented line after an indented key: inih reads "
                 "it as a continuation of 'format'; start keys at the beginning of the line");
}

/* ---- environment ---- */

static const char *const *fake_env;

static const char *fake_getenv(const char *name)
{
    for (const char *const *kv = fake_env; kv && kv[0]; kv += 2) {
        if (strcmp(kv[0], name) == 0)
            return kv[1];
    }
    return NULL;
}

Test(config, env_overrides_file_values)
{
    load_ok("[nats]\nurl = nats://file:1\n[pg]\ndsn = host=file\n");
    static const char *const env[] = {"INV_NATS_URL",
                                      "nats://a:1,nats://b:2",
                                      "INV_PG_DSN",
                                      "host=env port=1 dbname=x",
                                      "INV_OPS_ENDPOINT",
                                      "tcp://127.0.0.1:9999",
                                      "INV_NOW_MS",
                                      "1795600000123",
                                      NULL};
    fake_env = env;
    sf_status s = sf_config_apply_env(&cfg, fake_getenv, &err);
    cr_assert(s == SF_OK, "%s", err.msg);
    assert_str(cfg.nats.url, "nats://a:1,nats://b:2");
    assert_str(cfg.pg.dsn, "host=env port=1 dbname=x");
    assert_str(cfg.ops.endpoint, "tcp://127.0.0.1:9999");
    assert_str(cfg.ops.sub_endpoint, "tcp://127.0.0.1:15561");
    cr_assert(cfg.now_ms_override == 1795600000123LL);
}

Test(config, unset_or_empty_env_keeps_values)
{
    static const char *const env[] = {"INV_NATS_URL", "", NULL};
    fake_env = env;
    sf_status s = sf_config_apply_env(&cfg, fake_getenv, &err);
    cr_assert(s == SF_OK, "%s", err.msg);
    assert_str(cfg.nats.url, "nats://127.0.0.1:14222");
    assert_str(cfg.pg.dsn, "host=127.0.0.1 port=15432 dbname=stockflow user=postgres");
    cr_assert(cfg.now_ms_override == 0);
}

Test(config, bad_now_ms_names_the_variable)
{
    static const char *const env[] = {"INV_NOW_MS", "tomorrow", NULL};
    fake_env = env;
    sf_status s = sf_config_apply_env(&cfg, fake_getenv, &err);
    cr_assert(s == SF_EINVAL);
    assert_str(err.msg, "INV_NOW_MS: 'tomorrow' is not epoch milliseconds (a whole number >= 0)");
}

Test(config, real_getenv_adapter_reads_the_environment)
{
    cr_assert(setenv("INV_PG_DSN", "host=from-env", 1) == 0);
    heap_before = heap_in_use(); /* glibc keeps setenv's copy: not ours */
    sf_status s = sf_config_apply_env(&cfg, sf_config_getenv, &err);
    unsetenv("INV_PG_DSN");
    cr_assert(s == SF_OK, "%s", err.msg);
    assert_str(cfg.pg.dsn, "host=from-env");
}

Test(config, free_is_idempotent)
{
    load_ok("[supplier.a]\nformat = csv\n");
    sf_config_free(&cfg);
    sf_config_free(&cfg);
    cr_assert(cfg.n_entries == 0 && cfg.entries == NULL);
}

Test(config, tls_keys_default_off_and_load)
{
    assert_str(cfg.nats.tls_ca, "");
    cr_assert(!cfg.nats.tls_required);
    assert_str(cfg.api.tls_cert, "");
    load_ok("[nats]\ntls_ca = /etc/sf/ca.pem\ntls_cert = /etc/sf/c.pem\ntls_key = /etc/sf/c.key\n"
            "tls_required = yes\n[api]\ntls_cert = /etc/sf/api.pem\ntls_key = /etc/sf/api.key\n");
    assert_str(cfg.nats.tls_ca, "/etc/sf/ca.pem");
    assert_str(cfg.nats.tls_cert, "/etc/sf/c.pem");
    assert_str(cfg.nats.tls_key, "/etc/sf/c.key");
    cr_assert(cfg.nats.tls_required);
    assert_str(cfg.api.tls_cert, "/etc/sf/api.pem");
    assert_str(cfg.api.tls_key, "/etc/sf/api.key");
}

Test(config, tls_required_false_and_bad_boolean)
{
    load_ok("[nats]\ntls_required = off\n");
    cr_assert(!cfg.nats.tls_required);
    expect_error("[nats]\ntls_required = maybe\n", SF_EINVAL,
                 "2: [nats] tls_required: not a boolean: 'maybe' (true or false)");
}
