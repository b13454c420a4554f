#!/usr/bin/env bash
# run-tests.sh: run the Criterion test binaries and count their tests.
#
# usage: run-tests.sh all|unit|integration [criterion args...]
#   BUILD  build directory holding tests/unit/test_* and tests/integration/test_*
#          (default build/default)
#   BIN    directory of the service binaries (default bin), passed as SF_BIN
#   SF_TEST_TIMEOUT  seconds one test binary may run (default 600)
#   SF_LOCK_WAIT     seconds to wait for another run's test stack (default 1800)
#   SF_TEST_VERBOSE  set: list every test, passing ones too
#   SF_TEST_ONLY     run only the binaries whose name contains this
#
# Unit tests need nothing running. Integration tests get a private stack,
# fresh every run (var/test-stack on ports 24222/28222/25432, wiped first,
# always stopped on exit), described to them through INV_NATS_URL, INV_PG_DSN,
# SF_BIN, SF_ROOT, SF_STACK and STACK_DIR/NATS_PORT/NATS_MON_PORT/PG_PORT, so
# a test can bounce a server with "$SF_STACK nats-stop". They run one binary
# at a time with -j1: they share the streams and the database.
#
# Counting: each binary's "[====] Synthesis: Tested: N | Passing: N |
# Failing: N | Crashing: N" line, where Failing already includes the crashed
# tests. Criterion 2.4 counts a test whose teardown crashed or exited as
# passing (it only warns; the binaries run with --verbose so the warning can
# be matched with the test's [PASS] line), and a binary can die before its
# summary; both are counted here as failures, as is a non-zero exit with no
# failing test. Passing tests are listed only with SF_TEST_VERBOSE=1. The
# last line is "N passed, N failed"; the exit status is non-zero on any
# failure or crash.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MODE=${1:-all}
[[ $# -gt 0 ]] && shift
case "$MODE" in
all | unit | integration) ;;
*)
    echo "usage: run-tests.sh all|unit|integration [criterion args...]" >&2
    exit 2
    ;;
esac
EXTRA_ARGS=("$@")

abspath() { realpath -m -- "$1"; }
BUILD=$(abspath "${BUILD:-build/default}")
BIN=$(abspath "${BIN:-bin}")
SF_TEST_TIMEOUT=${SF_TEST_TIMEOUT:-600}
STACK="$ROOT/scripts/stack.sh"

# Sanitizer builds: a stack trace for UBSan, leaks on for ASan.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

passed=0
failed=0
failed_binaries=()
ran_binaries=0

# test binaries in DIR, sorted
list_tests() {
    local dir=$1
    [[ -d "$dir" ]] || return 0
    find "$dir" -maxdepth 1 -type f -name "test_*${SF_TEST_ONLY:-}*" ! -name '*.o' ! -name '*.d' \
        -perm -u+x | LC_ALL=C sort
}

# run_binary PATH [criterion args...]: run one binary, print its output and a
# PASS/FAIL line, add its tests to the totals.
run_binary() {
    local path=$1
    shift
    local name=${path#"$BUILD"/}
    local log rc=0
    log=$(mktemp "${TMPDIR:-/tmp}/sf-test-XXXXXX.log")
    echo "---- $name"
    timeout -k 10 "$SF_TEST_TIMEOUT" "$path" --verbose "$@" "${EXTRA_ARGS[@]}" >"$log" 2>&1 || rc=$?
    sed -i 's/\x1b\[[0-9;]*m//g' "$log"
    if [[ -n "${SF_TEST_VERBOSE:-}" ]]; then
        cat "$log"
    else
        grep -vE '^\[(RUN |PASS)\] ' "$log" || true
    fi

    local synth tested=0 passing=0 failing=0 teardown=0 skipped t
    synth=$(grep -E '^\[====\] Synthesis:' "$log" | tail -n 1 || true)
    skipped=$(grep -cE '^\[SKIP\] ' "$log" || true)
    # tests that passed, then crashed or exited in their teardown
    local -a warned=()
    # shellcheck disable=SC2016 # the backquotes are Criterion's, literal
    mapfile -t warned < <(sed -nE 's/.*Warning! The test `([^`]*)` (crashed|exited) during its setup or teardown.*/\1/p' "$log")
    for t in "${warned[@]}"; do
        grep -qF "[PASS] $t:" "$log" && teardown=$((teardown + 1))
    done
    # A sanitizer report from a test's own process (LeakSanitizer runs as
    # Criterion's worker exits, after the test was counted) or from a
    # service it ran fails the binary even when every test passed.
    local reports
    reports=$(grep -cE '^==[0-9]+==ERROR: (Address|Leak|Thread|Memory)Sanitizer|: runtime error: ' "$log" || true)
    rm -f "$log"

    local bad=0 why=""
    if [[ "$synth" =~ Tested:\ ([0-9]+)\ \|\ Passing:\ ([0-9]+)\ \|\ Failing:\ ([0-9]+) ]]; then
        tested=${BASH_REMATCH[1]}
        passing=${BASH_REMATCH[2]}
        failing=${BASH_REMATCH[3]}
        ((teardown <= passing)) || teardown=$passing
        passing=$((passing - teardown))
        bad=$((failing + teardown))
        ((teardown == 0)) || why+=" $teardown passed but crashed in teardown;"
    else
        bad=1
        why+=" no Criterion summary (the binary died);"
    fi
    if ((reports > 0)); then
        why+=" $reports sanitizer report(s) in its output;"
        ((bad > 0)) || bad=1
    fi
    if ((rc == 124 || rc == 137)); then
        why+=" timed out after ${SF_TEST_TIMEOUT}s;"
        ((bad > 0)) || bad=1
    elif ((rc != 0 && bad == 0)); then
        why+=" exit status $rc with no failing test;"
        bad=1
    fi
    passed=$((passed + passing))
    failed=$((failed + bad))
    ran_binaries=$((ran_binaries + 1))
    local skips=""
    ((skipped == 0)) || skips=" ($skipped skipped)"
    if ((bad > 0 || rc != 0)); then
        failed_binaries+=("$name")
        echo "FAIL $name: $passing passed, $bad failed of $tested$skips;${why%;}"
    else
        echo "PASS $name: $passing passed of $tested$skips"
    fi
}

run_unit() {
    local tests
    mapfile -t tests < <(list_tests "$BUILD/tests/unit")
    if ((${#tests[@]} == 0)); then
        echo "run-tests: no unit test binaries under $BUILD/tests/unit (make tests-build)" >&2
        return 0
    fi
    echo "== unit tests (${#tests[@]} binaries)"
    # glibc's per-thread cache hides small leaks from the teardown heap
    # checks; unit tests run without it.
    local tunables="glibc.malloc.tcache_count=0"
    [[ -n "${GLIBC_TUNABLES:-}" ]] && tunables="$GLIBC_TUNABLES:$tunables"
    local t
    for t in "${tests[@]}"; do
        GLIBC_TUNABLES=$tunables run_binary "$t"
    done
}

stack_stop() {
    # a cluster a test started (tests/integration/test_cluster.c) and could
    # not stop, because it was killed on its timeout
    "$STACK" cluster down >/dev/null 2>&1 || echo "run-tests: stack.sh cluster down failed" >&2
    "$STACK" down || echo "run-tests: stack.sh down failed; check $STACK_DIR" >&2
}

run_integration() {
    local tests
    mapfile -t tests < <(list_tests "$BUILD/tests/integration")
    if ((${#tests[@]} == 0)); then
        echo "run-tests: no integration test binaries under $BUILD/tests/integration" >&2
        return 0
    fi
    echo "== integration tests (${#tests[@]} binaries)"

    # TEST_* move the private stack, e.g. to run beside another checkout.
    export STACK_DIR="${TEST_STACK_DIR:-$ROOT/var/test-stack}"
    export NATS_PORT=${TEST_NATS_PORT:-24222} NATS_MON_PORT=${TEST_NATS_MON_PORT:-28222}
    export PG_PORT=${TEST_PG_PORT:-25432}
    export SF_BIN="$BIN" SF_ROOT="$ROOT" SF_STACK="$STACK"

    # The ports are machine-wide: two runs at once (two shells, two work
    # trees) would wipe each other's stack. Take turns.
    local lock="/tmp/stockflow-test-stack-$PG_PORT.lock"
    exec 8>"$lock"
    if ! flock -n 8; then
        echo "run-tests: another integration run holds $lock; waiting (up to ${SF_LOCK_WAIT:-1800}s)"
        flock -w "${SF_LOCK_WAIT:-1800}" 8 || {
            echo "run-tests: gave up waiting for $lock" >&2
            failed=$((failed + 1))
            failed_binaries+=("(test stack busy)")
            return 0
        }
    fi

    # Fresh every run: stop what a killed earlier run may have left, wipe.
    "$STACK" wipe
    rm -rf "$STACK_DIR"
    trap stack_stop EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if ! "$STACK" up >/dev/null; then
        echo "run-tests: the test stack did not start (see above)" >&2
        failed=$((failed + 1))
        failed_binaries+=("(stack.sh up)")
        return 0
    fi
    eval "$("$STACK" env)"
    export INV_NATS_URL INV_PG_DSN
    echo "test stack: INV_NATS_URL=$INV_NATS_URL INV_PG_DSN=$INV_PG_DSN"

    local t
    for t in "${tests[@]}"; do
        run_binary "$t" -j1
    done
    stack_stop
    trap - EXIT
    exec 8>&-
}

case "$MODE" in
unit) run_unit ;;
integration) run_integration ;;
all)
    run_unit
    run_integration
    ;;
esac

if ((ran_binaries == 0)); then
    echo "run-tests: found no test binaries under $BUILD/tests; build them first (make tests-build)" >&2
    failed=$((failed + 1))
fi
if ((${#failed_binaries[@]} > 0)); then
    echo "failed: ${failed_binaries[*]}"
fi
echo "$passed passed, $failed failed"
((failed == 0 && ${#failed_binaries[@]} == 0))
