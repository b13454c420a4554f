#!/usr/bin/env bash
# reserve.sh: `make bench-reserve`. Check-and-reserve throughput and latency
# (POST /v1/reservations, 1 unit, a new Idempotency-Key each) with CLIENTS
# concurrent connections (wrk, 2 threads) for DURATION seconds:
#   static   bench/reserve_static.c: the same requests answered by an evhttp
#            server set up like inv-api's threads with a fixed body, no
#            database (the raw HTTP limit, measured in the same run)
#   hot      every request on one sku at one location: serialised on that
#            positions row lock, one batch after the other
#   10k      requests spread over SKUS skus (default 10000) at one location
#   1 client the same with one client (wrk -t1 -c1): the time one
#            reservation takes when nothing queues in front of it
#   database alone  the same statement without HTTP, relay or reconciler:
#            pgbench runs sf_reserve_batch from RESERVE_THREADS sessions
#            with the 10k run's mean batch (the raw limit of PostgreSQL
#            for this work on this machine), after the books are checked
# and prints reservations/s, p50/p99 latency, the ratio to static and the
# mean batch (requests per sf_reserve_batch statement, from inv-api's
# /metrics), then the CPU each program used during the 10k run (of
# $(nproc) x 100 %). The reconciler runs meanwhile, relaying every RESERVE
# to INV_EVENTS, as in production. The server is put in steady state first
# (WAL segments preallocated and recycled, a 3 s warm-up). Afterwards it
# checks the books: RESERVE rows in the ledger = 201 answers, reserved =
# 201 answers, every outbox row relayed.
#
# Environment (defaults): CLIENTS=16, DURATION=10, SKUS=10000, THREADS=4
# (inv-api --threads, and reserve_static's), RESERVE_THREADS ([api]
# reserve_threads; inv-api's default when unset), BUILD=build/default,
# BIN=bin, BENCH_NATS_PORT=30322 BENCH_NATS_MON_PORT=30323
# BENCH_PG_PORT=30332 (a private stack in var/reserve-bench, wiped first,
# stopped on exit), BENCH_API_PORT=30380 BENCH_STATIC_PORT=30381.
# PG_BIN=/usr/lib/postgresql/15/bin (pgbench). BENCH_KEEP=1 leaves the
# stack running. Exit 0 when every measurement
# completed (a measurement, not a test), 1 when something failed or the
# books disagree.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CLIENTS=${CLIENTS:-16}
DURATION=${DURATION:-10}
SKUS=${SKUS:-10000}
THREADS=${THREADS:-4}
for v in CLIENTS DURATION SKUS THREADS; do
    if ! [[ "${!v}" =~ ^[0-9]+$ ]] || ((${!v} < 1)); then
        echo "reserve.sh: $v must be a positive integer, got '${!v}'" >&2
        exit 2
    fi
done
BUILD=$(realpath -m -- "${BUILD:-build/default}")
BIN=$(realpath -m -- "${BIN:-bin}")
STATIC="$BUILD/bench/reserve_static"
for exe in "$BIN/inv-api" "$BIN/inv-ingest" "$BIN/inv-consumer" "$BIN/inv-reconciler" \
    "$BIN/invctl" "$STATIC"; do
    [[ -x "$exe" ]] || {
        echo "reserve.sh: $exe not built (make bench-build)" >&2
        exit 1
    }
done
[[ -x "${PG_BIN:-/usr/lib/postgresql/15/bin}/pgbench" ]] || {
    echo "reserve.sh: pgbench is needed (package postgresql, scripts/deps.sh)" >&2
    exit 1
}
command -v wrk >/dev/null || {
    echo "reserve.sh: wrk is needed (scripts/deps.sh installs it)" >&2
    exit 1
}

export STACK_DIR="$ROOT/var/reserve-bench"
export NATS_PORT=${BENCH_NATS_PORT:-30322} NATS_MON_PORT=${BENCH_NATS_MON_PORT:-30323}
export PG_PORT=${BENCH_PG_PORT:-30332} PG_DB=stockflow
API_PORT=${BENCH_API_PORT:-30380}
STATIC_PORT=${BENCH_STATIC_PORT:-30381}
export INV_NATS_URL="nats://127.0.0.1:$NATS_PORT"
export INV_PG_DSN="host=127.0.0.1 port=$PG_PORT dbname=$PG_DB user=postgres"
STACK="$ROOT/scripts/stack.sh"
PGBENCH="${PG_BIN:-/usr/lib/postgresql/15/bin}/pgbench"
LOGS="$STACK_DIR/logs"
# One key drives the whole load: lift its request rate limit ([api]
# rate_per_key, default 1000/s), which would otherwise be what is measured.
API_CONF="$STACK_DIR/bench-api.ini"
PIDS=()

say() { printf 'reserve: %s\n' "$*" >&2; }
die() {
    say "FAILED: $*"
    exit 1
}
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [[ -n "${BENCH_KEEP:-}" ]]; then
        say "BENCH_KEEP=1: stack left running in $STACK_DIR ($INV_NATS_URL, $INV_PG_DSN)"
    else
        "$STACK" down >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
psql_q() { psql -X -q -At -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$PG_DB" -c "$1"; }
wait_port() {
    local i
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

say "private stack in $STACK_DIR (NATS $NATS_PORT, PostgreSQL $PG_PORT)"
"$STACK" wipe >/dev/null 2>&1 || true
rm -rf "$STACK_DIR"
mkdir -p "$LOGS"
printf "[api]\nrate_per_key = 1000000\nburst = 1000000\n" >"$API_CONF"
[[ -n "${RESERVE_THREADS:-}" ]] && printf "reserve_threads = %s\n" "$RESERVE_THREADS" >>"$API_CONF"
"$STACK" up >/dev/null 2>>"$LOGS/stack.log" || die "stack.sh up (see $LOGS/stack.log)"
[[ $(psql_q "SHOW synchronous_commit") == on ]] || die "synchronous_commit is not on"
"$BIN/invctl" setup >>"$LOGS/setup.log" 2>&1 || die "invctl setup (see $LOGS/setup.log)"
KEY=$("$BIN/invctl" apikey add bench --scope ingest 2>>"$LOGS/setup.log" | grep '^sf_') ||
    die "invctl apikey add"
READ_KEY=$("$BIN/invctl" apikey add bench-metrics --scope read 2>>"$LOGS/setup.log" | grep '^sf_') ||
    die "invctl apikey add (read)"

say "stock: HOT and $SKUS skus at BENCH-L1"
{
    echo '{"event_id":"bench-hot","kind":"RECEIPT","sku":"HOT","location":"BENCH-L1","qty":1000000000,"occurred_at":"2026-11-20T10:00:00Z"}'
    awk -v n="$SKUS" 'BEGIN { for (i = 0; i < n; i++)
        printf "{\"event_id\":\"bench-%d\",\"kind\":\"RECEIPT\",\"sku\":\"B-%d\",\"location\":\"BENCH-L1\",\"qty\":1000000,\"occurred_at\":\"2026-11-20T10:00:00Z\"}\n", i, i }'
} >"$STACK_DIR/stock.jsonl"
"$BIN/inv-ingest" --file "$STACK_DIR/stock.jsonl" >>"$LOGS/setup.log" 2>&1 || die "inv-ingest"
"$BIN/inv-consumer" --drain >>"$LOGS/setup.log" 2>&1 || die "inv-consumer --drain"
psql_q "VACUUM ANALYZE" >/dev/null
# A long-running server reuses its WAL segments (recycled at checkpoints);
# a fresh one creates and zero-fills a 16 MiB segment every few hundred
# milliseconds under this load, and those stalls (up to 100 ms) would be
# what p99 measures. Give it the segments a server in steady state has.
say "WAL: 64 segments preallocated and recycled, as on a long-running server"
psql_q "ALTER SYSTEM SET min_wal_size = '1GB'" >/dev/null
psql_q "SELECT pg_reload_conf()" >/dev/null
for i in $(seq 64); do
    psql_q "SELECT pg_logical_emit_message(false, 'bench', 'x')" >/dev/null
    psql_q "SELECT pg_switch_wal()" >/dev/null
done
psql_q "CHECKPOINT" >/dev/null

"$STATIC" "$STATIC_PORT" "$THREADS" >"$LOGS/static.log" 2>&1 &
PIDS+=($!)
"$BIN/inv-api" --config "$API_CONF" --listen "127.0.0.1:$API_PORT" --threads "$THREADS" >"$LOGS/api.log" 2>&1 &
PIDS+=($!)
"$BIN/inv-reconciler" >"$LOGS/reconciler.log" 2>&1 &
PIDS+=($!)
wait_port "$STATIC_PORT" || die "reserve_static did not start (see $LOGS/static.log)"
wait_port "$API_PORT" || die "inv-api did not start (see $LOGS/api.log)"

# batch_counts: "BATCHES REQUESTS" from inv-api's /metrics (reserve.h).
batch_counts() {
    curl -sf -H "Authorization: Bearer $READ_KEY" "http://127.0.0.1:$API_PORT/metrics" |
        awk '$1 == "inv_api_reserve_batches_total" { b = $2 }
             $1 == "inv_api_reserve_requests_total" { r = $2 } END { print b + 0, r + 0 }'
}

# measure NAME PORT SKUS [CLIENTS]: one wrk run; its RESULT line into
# $LOGS/NAME.txt, with " batch=MEAN" (requests per statement) for
# inv-api's runs.
measure() {
    local name=$1 port=$2 skus=$3 clients=${4:-$CLIENTS} b0 r0 b1 r1
    [[ $port == "$API_PORT" ]] && read -r b0 r0 < <(batch_counts)
    local TIMEFORMAT='%U %S' # bash's time: wrk's own CPU seconds into $LOGS/NAME.cpu
    { time RSV_KEY=$KEY RSV_SKUS=$skus RSV_RUN=$name wrk -t"$((clients < 2 ? 1 : 2))" \
        -c"$clients" -d"${DURATION}s" -s "$ROOT/bench/reserve.lua" "http://127.0.0.1:$port" \
        >"$LOGS/$name.txt" 2>&1; } 2>"$LOGS/$name.cpu" || die "wrk $name (see $LOGS/$name.txt)"
    local result
    result=$(grep '^RESULT' "$LOGS/$name.txt" | tail -1)
    if [[ $port == "$API_PORT" ]]; then
        read -r b1 r1 < <(batch_counts)
        result+=$(awk -v b=$((b1 - b0)) -v r=$((r1 - r0)) \
            'BEGIN { printf " batch=%.1f", (b > 0 ? r / b : 0) }')
    fi
    echo "$result"
}
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

# cpu_ticks: "PROGRAM TICKS" for every process (user + system clock ticks
# so far), PROGRAM its command name (postgres' backends are postgres).
cpu_ticks() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk '{
        c = substr($0, index($0, "(") + 1); c = substr(c, 1, index(c, ")") - 1)
        r = substr($0, index($0, ") ") + 2); split(r, f, " ")
        print c, f[12] + f[13] }'
}
# machine_busy BEFORE AFTER: % of all cores busy between two snapshots of
# /proc/stat's cpu line (wrk, which has exited by then, is in this only).
machine_busy() {
    awk 'FNR == NR { for (i = 2; i <= NF; i++) t0 += $i; i0 = $5 + $6; next }
         { for (i = 2; i <= NF; i++) t1 += $i; i1 = $5 + $6 }
         END { printf "%.0f", 100 * (1 - (i1 - i0) / (t1 - t0)) }' "$1" "$2"
}
# cpu_table BEFORE AFTER SECONDS: "PROGRAM PERCENT" lines, the CPU each
# program used between two cpu_ticks snapshots as % of one core, the
# largest first.
cpu_table() {
    awk -v secs="$3" -v hz="$(getconf CLK_TCK)" '
        FNR == NR { before[$1] += $2; next }
        { after[$1] += $2 }
        END {
            for (c in after) {
                d = after[c] - before[c]
                if (d > 0) printf "%s %.0f\n", c, 100 * d / hz / secs
            }
        }' "$1" "$2" | sort -k2,2nr
}
# elapsed T0 T1: seconds between two `date +%s.%N` stamps.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { print b - a }'; }

# Warm-up: sessions connected, plans cached, as on a server that has run.
say "warm-up, $CLIENTS clients, 3s"
RSV_KEY=$KEY RSV_SKUS=$SKUS RSV_RUN=warm wrk -t2 -c"$CLIENTS" -d3s -s "$ROOT/bench/reserve.lua" \
    "http://127.0.0.1:$API_PORT" >"$LOGS/warm.txt" 2>&1 || die "wrk warm-up (see $LOGS/warm.txt)"
say "static reply, $CLIENTS clients, ${DURATION}s"
R_STATIC=$(measure static "$STATIC_PORT" "$SKUS")
say "one hot sku, $CLIENTS clients, ${DURATION}s"
R_HOT=$(measure hot "$API_PORT" 1)
say "$SKUS skus, $CLIENTS clients, ${DURATION}s"
cpu_ticks >"$LOGS/cpu.before"
grep '^cpu ' /proc/stat >"$LOGS/stat.before"
t0=$(date +%s.%N)
R_SPREAD=$(measure spread "$API_PORT" "$SKUS")
t1=$(date +%s.%N)
grep '^cpu ' /proc/stat >"$LOGS/stat.after"
cpu_ticks >"$LOGS/cpu.after"
BUSY=$(machine_busy "$LOGS/stat.before" "$LOGS/stat.after")
secs=$(elapsed "$t0" "$t1")
cpu_table "$LOGS/cpu.before" "$LOGS/cpu.after" "$secs" >"$LOGS/cpu.spread"
CPU_SPREAD=$(awk '$2 >= 1 { printf "%s%s %s%%", sep, $1, $2; sep = ", " }' "$LOGS/cpu.spread")
PG_SPREAD_PCT=$(awk '$1 == "postgres" { print $2 }' "$LOGS/cpu.spread")
CPU_SPREAD+=$(awk -v secs="$secs" '{ printf ", wrk %.0f%%", 100 * ($1 + $2) / secs }' \
    "$LOGS/spread.cpu")
say "$SKUS skus, 1 client, ${DURATION}s"
R_ONE=$(measure one "$API_PORT" "$SKUS" 1)

# Books: every 201 is one RESERVE in the ledger and one unit reserved.
granted=$(($(field "$R_HOT" s201) + $(field "$R_SPREAD" s201) + $(field "$R_ONE" s201) + $(sed -n 's/^RESULT.* s201=\([0-9]*\).*/\1/p' "$LOGS/warm.txt")))
for i in $(seq 300); do
    [[ $(psql_q "SELECT count(*) FROM outbox") == 0 ]] && break
    sleep 0.1
done
ledger=$(psql_q "SELECT count(*) FROM ledger WHERE kind = 'RESERVE'")
reserved=$(psql_q "SELECT sum(reserved) FROM positions")
unsent=$(psql_q "SELECT count(*) FROM outbox")
other=$(($(field "$R_HOT" other) + $(field "$R_SPREAD" other) + $(field "$R_ONE" other) + $(field "$R_HOT" s409) + $(field "$R_SPREAD" s409) + $(field "$R_ONE" s409)))

# The database alone: the statement inv-api sends, with the 10k run's
# mean batch, from as many sessions as inv-api's reserver threads, with
# inv-api and the reconciler stopped. Its rows (source bench-db) come
# after the books above.
for p in "${PIDS[@]:1}"; do kill "$p" 2>/dev/null || true; done
for p in "${PIDS[@]:1}"; do wait "$p" 2>/dev/null || true; done
PIDS=("${PIDS[0]}")
DB_BATCH=$(awk -v b="$(field "$R_SPREAD" batch)" 'BEGIN { n = int(b + 0.5); print (n < 1 ? 1 : n) }')
DB_SESSIONS=${RESERVE_THREADS:-2} # inv-api's default [api] reserve_threads (api/reserve.h)
say "database alone: sf_reserve_batch, batches of $DB_BATCH, $DB_SESSIONS sessions, ${DURATION}s"
{
    keys="" ids="" skus=""
    for ((i = 1; i <= DB_BATCH; i++)); do
        echo "\set k$i random(1, 1000000000000000)"
        echo "\set s$i random(0, $((SKUS - 1)))"
        keys+="${keys:+, }'db-' || :k$i"
        ids+="${ids:+, }'rsv-db-' || :k$i"
        skus+="${skus:+, }'B-' || :s$i"
    done
    now_ms=$(($(date +%s) * 1000))
    echo "SELECT count(*) FROM sf_reserve_batch(ARRAY[$keys], array_fill('r'::text, ARRAY[$DB_BATCH]),"
    echo " ARRAY[$ids], ARRAY[$keys], ARRAY[$skus],"
    echo " array_fill(1::bigint, ARRAY[$DB_BATCH]), array_fill('BENCH-L1'::text, ARRAY[$DB_BATCH]),"
    echo " array_fill(NULL::text, ARRAY[$DB_BATCH]), array_fill(${now_ms}::bigint, ARRAY[$DB_BATCH]),"
    echo " array_fill($((now_ms + 3600000))::bigint, ARRAY[$DB_BATCH]), 'bench-db');"
} >"$LOGS/db.sql"
rm -f "$LOGS"/db.log*
# pgbench's sessions end with it, so their CPU is read off the machine's:
# all cores busy minus pgbench's own.
grep '^cpu ' /proc/stat >"$LOGS/stat.db.before"
t0=$(date +%s.%N)
TIMEFORMAT='%U %S'
{ time (cd "$LOGS" && "$PGBENCH" -n -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "$DB_SESSIONS" \
    -j "$DB_SESSIONS" -T "$DURATION" -M prepared -f db.sql -l --log-prefix=db.log "$PG_DB" \
    >db.txt 2>&1); } 2>"$LOGS/db.cpu" || die "pgbench (see $LOGS/db.txt)"
t1=$(date +%s.%N)
grep '^cpu ' /proc/stat >"$LOGS/stat.db.after"
PG_DB_PCT=$(awk -v busy="$(machine_busy "$LOGS/stat.db.before" "$LOGS/stat.db.after")" \
    -v cores="$(nproc)" -v secs="$(elapsed "$t0" "$t1")" \
    '{ printf "%.0f", busy * cores - 100 * ($1 + $2) / secs }' "$LOGS/db.cpu")
# pg_us RPS PERCENT: PostgreSQL's CPU per reservation, in microseconds.
pg_us() { awk -v rps="$1" -v pct="$2" 'BEGIN { printf "%.0f", (rps > 0 ? pct * 1e4 / rps : 0) }'; }
R_DB=$(cat "$LOGS"/db.log* | awk '{ print $3 / 1000 }' |
    sort -n | awk -v b="$DB_BATCH" -v secs="$DURATION" '{ l[NR] = $1 }
        END { printf "RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f batch=%d", NR * b / secs,
              l[int(NR * 0.50) + 1], l[int(NR * 0.99) + 1], l[NR], b }')

static_rps=$(field "$R_STATIC" rps)
row() {
    local r=$2
    printf '%-30s %12s %9s %9s %9s %7s %7s\n' "$1" "$(field "$r" rps)" "$(field "$r" p50_ms)" \
        "$(field "$r" p99_ms)" "$(field "$r" max_ms)" \
        "$(awk -v a="$(field "$r" rps)" -v b="$static_rps" 'BEGIN { printf "%.3f", a / b }')" \
        "$(field "$r" batch)"
}
{
    echo "check-and-reserve, $CLIENTS clients (wrk -t2), ${DURATION}s each, inv-api --threads $THREADS, $(nproc) cores"
    printf '%-30s %12s %9s %9s %9s %7s %7s\n' "" "requests/s" "p50 ms" "p99 ms" "max ms" "ratio" \
        "batch"
    row "static reply (raw HTTP)" "$R_STATIC"
    row "reserve, one hot sku" "$R_HOT"
    row "reserve, $SKUS skus" "$R_SPREAD"
    row "reserve, $SKUS skus, 1 client" "$R_ONE"
    row "database alone ($DB_SESSIONS sessions)" "$R_DB"
    echo "(database alone: reservations/s, and the latency of one statement of $DB_BATCH)"
    echo "CPU during the $SKUS-sku run: all cores $BUSY % busy; per program, % of one core: $CPU_SPREAD"
    echo "PostgreSQL's CPU per reservation: $(pg_us "$(field "$R_SPREAD" rps)" "${PG_SPREAD_PCT:-0}") us in the $SKUS-sku run (reserving, relaying, reconciling), $(pg_us "$(field "$R_DB" rps)" "$PG_DB_PCT") us alone (reserving; $PG_DB_PCT % of one core)"
    echo "books: $granted granted (201) within the runs, $other other answers; ledger RESERVEs $ledger, reserved $reserved, outbox unsent $unsent"
} | tee "$LOGS/summary.txt"
# wrk stops counting at the deadline: up to CLIENTS requests per run (the
# warm-up, hot, 10k, 1 client) were still in flight then, answered after
# it (so granted, not counted).
((ledger >= granted && ledger - granted <= 4 * CLIENTS)) && [[ "$reserved" == "$ledger" ]] &&
    [[ "$unsent" == 0 && "$other" == 0 ]] || die "the books disagree with the answers (see $LOGS)"
