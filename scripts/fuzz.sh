#!/usr/bin/env bash
# fuzz.sh SECONDS: run every libFuzzer target under $FUZZ_BUILD/tests/fuzz
# for SECONDS each (make fuzz: 60; make test: 10).
#
# Each target starts from its seed corpus tests/fuzz/corpus/<target>/ (read
# only) plus a working corpus under var/fuzz/<target>/ that keeps what
# earlier runs found. A crash, leak, sanitizer report or timeout fails the
# target; its input lands in var/fuzz/artifacts/. Ends with the runner's
# usual "N passed, N failed" line and exits 1 if any target failed.
# LSAN_OPTIONS=use_unaligned=1: avro-c keeps pointers at unaligned offsets
# inside its values; without it LeakSanitizer reports them as leaks.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECONDS_EACH=${1:-60}
FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}
if ! [[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || ((SECONDS_EACH < 1)); then
    echo "usage: fuzz.sh SECONDS" >&2
    exit 2
fi

mapfile -t targets < <(find "$FUZZ_BUILD/tests/fuzz" -maxdepth 1 -type f -name 'fuzz_*' \
    -perm -u+x 2>/dev/null | sort)
if ((${#targets[@]} == 0)); then
    echo "fuzz.sh: no targets under $FUZZ_BUILD/tests/fuzz (make fuzz-build)" >&2
    exit 1
fi

mkdir -p var/fuzz/artifacts
pass=0 fail=0
echo "== fuzz (${#targets[@]} targets, ${SECONDS_EACH}s each)"
for t in "${targets[@]}"; do
    name=$(basename "$t")
    work="var/fuzz/$name"
    seeds="tests/fuzz/corpus/$name"
    mkdir -p "$work"
    log="var/fuzz/$name.log"
    args=("$work")
    [[ -d "$seeds" ]] && args+=("$seeds")
    if ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=use_unaligned=1 "$t" -max_total_time="$SECONDS_EACH" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=var/fuzz/artifacts/"$name"- \
        "${args[@]}" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "PASS $name: ${runs:-?} inputs in ${SECONDS_EACH}s, corpus $(find "$work" -type f | wc -l) files"
        pass=$((pass + 1))
    else
        echo "FAIL $name (see $log):"
        grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -n 5
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
((fail == 0))
