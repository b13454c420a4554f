/*
 * leak_guard: a leak check at the end of every test body (STYLE.md 10).
 *
 * Criterion 2.4.1 reports a failed assertion in a .fini hook but still
 * counts the test as passing, so the check runs inside the test instead:
 * write LEAK_TEST(suite, name) { ... } where you would write Test(...).
 * Under AddressSanitizer the check is LeakSanitizer's own (exact: any
 * unreachable block fails the test). Without it, glibc's mallinfo2() is
 * compared before and after with LEAK_GUARD_SLACK bytes of tolerance,
 * because glibc's per-thread caches keep freed small blocks counted as in
 * use; that catches lost tables and buffers, not single small blocks.
 * Library one-time state (OpenSSL's digest tables, jansson's hash seed) is
 * created before the baseline so it is not mistaken for a leak.
 */
#ifndef SF_TEST_LEAK_GUARD_H
#define SF_TEST_LEAK_GUARD_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <malloc.h>

#include "event.h"

#if defined(__SANITIZE_ADDRESS__)
#define LEAK_GUARD_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LEAK_GUARD_LSAN 1
#endif
#endif

#ifdef LEAK_GUARD_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define LEAK_GUARD_SLACK ((size_t)256 * 1024)

static size_t leak_guard__base;

static inline void leak_guard_begin(void)
{
    const char *parts[1] = {"warm-up"};
    char hex[65];
    sf_sha256_hex_joined(parts, 1, 64, hex);
    json_t *j = json_loads("{\"a\":1}", 0, NULL);
    json_decref(j);
    leak_guard__base = mallinfo2().uordblks;
}

static inline void leak_guard_end(void)
{
#ifdef LEAK_GUARD_LSAN
    cr_assert(__lsan_do_recoverable_leak_check() == 0,
              "memory leaked (LeakSanitizer's report is above)");
#else
    size_t now = mallinfo2().uordblks;
    cr_assert(now <= leak_guard__base + LEAK_GUARD_SLACK,
              "memory leaked: %zu bytes in use before the test, %zu after", leak_guard__base, now);
#endif
}

/* A Criterion test whose body is followed by the leak check. */
#define LEAK_TEST(suite, name, ...)                                                                \
    static void suite##__##name##__body(void);                                                     \
    Test(suite, name, ##__VA_ARGS__)                                                               \
    {                                                                                              \
        leak_guard_begin();                                                                        \
        suite##__##name##__body();                                                                 \
        leak_guard_end();                                                                          \
    }                                                                                              \
    static void suite##__##name##__body(void)

#endif
