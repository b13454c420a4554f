#!/usr/bin/env bash
# pipeline.sh: `make bench`. N generated events through inv-ingest and
# CONSUMERS inv-consumer processes into PostgreSQL (synchronous_commit on),
# next to the two raw limits measured in the same run on the same events:
#   raw NATS  bench/raw_nats.c   bare publish (Nats-Msg-Id) + pull fetch/ack, no database
#   raw PG    bench/raw_apply.c  sf_ledger_apply on pre-parsed batches, no broker
# and the ratio of the pipeline to the lower limit (target >= 0.60). See
# bench/README.md for what each figure means.
#
# Environment (defaults): N=500000 lines, SEED=1, CONSUMERS=2, BATCH=1000
# (consumer fetch and transaction size; also the raw fetch and raw apply
# batch), WINDOW=4096 (publish window of raw_nats; inv-ingest uses its
# [ingest] max_inflight default, 4096), BUILD=build/default, BIN=bin,
# BENCH_TIMEOUT (seconds the pipeline may take; default max(120, N/2000)),
# BENCH_KEEP=1 leaves the stack running at the end.
#
# A private stack: STACK_DIR=var/bench-stack (wiped first), NATS 34222 (monitor
# 38222), PostgreSQL 35432; stopped on exit. Every measurement starts clean:
# nats-server restarted on an empty store, database dropped and re-created,
# CHECKPOINT, `invctl setup`.
#
# Exit 0 when every measurement completed (whatever the ratio: this is a
# measurement, not a test); 1 when anything failed or events went missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

N=${N:-500000}
SEED=${SEED:-1}
CONSUMERS=${CONSUMERS:-2}
BATCH=${BATCH:-1000}
WINDOW=${WINDOW:-4096}
SKUS=10000
LOCATIONS=10
for v in N SEED CONSUMERS BATCH WINDOW; do
    [[ "${!v}" =~ ^[0-9]+$ ]] && ((${!v} > 0)) || {
        echo "pipeline.sh: $v must be a positive integer, got '${!v}'" >&2
        exit 2
    }
done
BENCH_TIMEOUT=${BENCH_TIMEOUT:-$((N / 2000 > 120 ? N / 2000 : 120))}

BUILD=$(realpath -m -- "${BUILD:-build/default}")
BIN=$(realpath -m -- "${BIN:-bin}")
RAW_NATS="$BUILD/bench/raw_nats"
RAW_APPLY="$BUILD/bench/raw_apply"
for exe in "$BIN/inv-ingest" "$BIN/inv-consumer" "$BIN/invctl" "$RAW_NATS" "$RAW_APPLY"; do
    [[ -x "$exe" ]] || {
        echo "pipeline.sh: $exe not built (make bench-build)" >&2
        exit 1
    }
done

export STACK_DIR="$ROOT/var/bench-stack"
export NATS_PORT=34222 NATS_MON_PORT=38222 PG_PORT=35432 PG_DB=stockflow
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
STACK="$ROOT/scripts/stack.sh"
export INV_NATS_URL="nats://127.0.0.1:$NATS_PORT"
export INV_PG_DSN="host=127.0.0.1 port=$PG_PORT dbname=$PG_DB user=postgres"
EVENTS="$STACK_DIR/events.jsonl"
LOGS="$STACK_DIR/logs"

say() { echo "bench: $*" >&2; }
die() {
    echo "bench: FAILED: $*" >&2
    exit 1
}
now() { date +%s.%N; }
# calc EXPR: floating-point arithmetic through awk.
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
psql_db() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }

consumer_pids=()
stop_consumers() {
    local pid
    for pid in "${consumer_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${consumer_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    consumer_pids=()
}
cleanup() {
    local rc=$?
    stop_consumers
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
        say "BENCH_KEEP=1: stack left running in $STACK_DIR ($INV_NATS_URL, $INV_PG_DSN)"
    else
        "$STACK" down >/dev/null 2>&1 || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# reset: empty JetStream store, fresh database, a checkpoint so no WAL debt
# from the previous measurement lands in the next, then setup.
reset() {
    stop_consumers
    "$STACK" nats-stop >/dev/null 2>&1
    rm -rf "$STACK_DIR/nats"
    "$STACK" nats-start 2>>"$LOGS/stack.log" || die "nats-server did not start (see $LOGS/stack.log)"
    psql_db -d postgres -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" \
        -c "CREATE DATABASE $PG_DB" -c "CHECKPOINT" || die "cannot re-create database $PG_DB"
    sync
    "$BIN/invctl" setup >>"$LOGS/setup.log" 2>&1 || die "invctl setup failed (see $LOGS/setup.log)"
}

# result FILE KEY: the value of KEY=... on the RESULT line of FILE.
result() {
    local v
    v=$(grep '^RESULT ' "$1" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p")
    [[ -n "$v" ]] || die "no $2 in $1"
    echo "$v"
}

# consumer_state: "num_pending num_ack_pending ack_floor_stream_seq" of
# stock-applier from the monitoring endpoint (cheap; no database query).
consumer_state() {
    local js
    js=$(curl -fsS -m 2 "http://127.0.0.1:$NATS_MON_PORT/jsz?consumers=true" 2>/dev/null) || return 1
    [[ "$js" =~ \"num_pending\":\ *([0-9]+) ]] || return 1
    local pending=${BASH_REMATCH[1]}
    [[ "$js" =~ \"num_ack_pending\":\ *([0-9]+) ]] || return 1
    local ack_pending=${BASH_REMATCH[1]}
    [[ "$js" =~ \"ack_floor\":\ *\{[^}]*\"stream_seq\":\ *([0-9]+) ]] || return 1
    echo "$pending $ack_pending ${BASH_REMATCH[1]}"
}

# ---------------------------------------------------------------- start ---
say "private stack in $STACK_DIR (NATS $NATS_PORT/$NATS_MON_PORT, PostgreSQL $PG_PORT)"
"$STACK" wipe >/dev/null 2>&1 || true
rm -rf "$STACK_DIR"
mkdir -p "$LOGS"
"$STACK" up >/dev/null 2>>"$LOGS/stack.log" || {
    cat "$LOGS/stack.log" >&2
    die "stack.sh up"
}

sync_commit=$(psql_db -d postgres -tAc "SHOW synchronous_commit")
fsync=$(psql_db -d postgres -tAc "SHOW fsync")
[[ "$sync_commit" == on && "$fsync" == on ]] ||
    die "synchronous_commit=$sync_commit fsync=$fsync: the benchmark is defined with both on"

say "generating $N events (seed $SEED, $SKUS skus, $LOCATIONS locations)"
"$BIN/invctl" gen --seed "$SEED" --events "$N" --skus "$SKUS" --locations "$LOCATIONS" \
    --out "$EVENTS" || die "invctl gen"
lines=$(wc -l <"$EVENTS")
((lines == N)) || die "invctl gen wrote $lines lines, wanted $N"

load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------- raw NATS ---
say "raw NATS: publish + fetch/ack, no database"
reset
"$RAW_NATS" --file "$EVENTS" --window "$WINDOW" --fetch "$BATCH" >"$LOGS/raw_nats.out" 2>&1 || {
    cat "$LOGS/raw_nats.out" >&2
    die "raw_nats"
}
grep '^raw_nats:' "$LOGS/raw_nats.out" >&2
nats_stored=$(result "$LOGS/raw_nats.out" stored)
nats_pub_s=$(result "$LOGS/raw_nats.out" publish_s)
nats_fetch_s=$(result "$LOGS/raw_nats.out" fetch_s)

# --------------------------------------------------------------- raw PG ---
raw_apply() { # raw_apply THREADS OUTFILE
    reset
    "$RAW_APPLY" --file "$EVENTS" --batch "$BATCH" --threads "$1" >"$2" 2>&1 || {
        cat "$2" >&2
        die "raw_apply --threads $1"
    }
    grep '^raw_apply:' "$2" >&2
}
say "raw PostgreSQL: sf_ledger_apply, 1 connection, no broker"
raw_apply 1 "$LOGS/raw_apply_1.out"
pg1_s=$(result "$LOGS/raw_apply_1.out" seconds)
distinct=$(result "$LOGS/raw_apply_1.out" distinct)
say "raw PostgreSQL: sf_ledger_apply, $CONSUMERS connections in parallel, no broker"
raw_apply "$CONSUMERS" "$LOGS/raw_apply_c.out"
pgc_s=$(result "$LOGS/raw_apply_c.out" seconds)
pgc_p50=$(result "$LOGS/raw_apply_c.out" p50_ms)
pgc_p99=$(result "$LOGS/raw_apply_c.out" p99_ms)
((nats_stored == distinct)) ||
    die "raw_nats stored $nats_stored distinct events but raw_apply found $distinct"

# ------------------------------------------------------------- pipeline ---
say "pipeline: inv-ingest + $CONSUMERS inv-consumer (batch $BATCH) -> PostgreSQL"
reset
for ((i = 1; i <= CONSUMERS; i++)); do
    "$BIN/inv-consumer" --batch "$BATCH" --name "bench-consumer-$i" \
        >"$LOGS/consumer-$i.log" 2>&1 &
    consumer_pids+=($!)
done
deadline=$((SECONDS + 30))
for ((i = 1; i <= CONSUMERS; i++)); do
    until grep -q 'consuming' "$LOGS/consumer-$i.log"; do
        kill -0 "${consumer_pids[$((i - 1))]}" 2>/dev/null || {
            cat "$LOGS/consumer-$i.log" >&2
            die "inv-consumer $i exited"
        }
        ((SECONDS < deadline)) || die "inv-consumer $i not ready after 30 s"
        sleep 0.05
    done
done

t0=$(now)
"$BIN/inv-ingest" --file "$EVENTS" --rejects "$LOGS/ingest.rejects" \
    >"$LOGS/ingest.out" 2>"$LOGS/ingest.err" || {
    cat "$LOGS/ingest.out" "$LOGS/ingest.err" >&2
    die "inv-ingest"
}
t_ingest=$(now)
cat "$LOGS/ingest.out" >&2
accepted=$(sed -n 's/.* \([0-9]*\) accepted.*/\1/p' "$LOGS/ingest.out")
((accepted == distinct)) || die "inv-ingest accepted $accepted events, expected $distinct distinct"

# Done when the consumer has every message acked (acks follow the commit),
# then confirmed by the ledger itself. Polling count(*) over a growing
# ledger at 10 Hz would itself load the 2 shared cores, so the cheap
# monitoring endpoint gates the one count(*).
t_end=""
deadline=$(calc "$t0 + $BENCH_TIMEOUT")
while :; do
    t=$(now)
    if state=$(consumer_state); then
        read -r pending ack_pending floor <<<"$state"
        if ((pending == 0 && ack_pending == 0 && floor >= distinct)); then
            t_end=$t
            break
        fi
    fi
    if awk "BEGIN { exit !($t > $deadline) }"; then
        break
    fi
    sleep 0.05
done
in_ledger=$(psql_db -d "$PG_DB" -tAc "SELECT count(*) FROM ledger")
[[ -n "$t_end" ]] ||
    die "pipeline: after ${BENCH_TIMEOUT}s the ledger holds $in_ledger of $distinct events (consumer: ${state:-?})"
((in_ledger == distinct)) || die "pipeline: every message acked but the ledger holds $in_ledger of $distinct"
stop_consumers
applied=0 sidelined=0
for ((i = 1; i <= CONSUMERS; i++)); do
    line=$(grep 'stopping:' "$LOGS/consumer-$i.log" | tail -n 1) || die "inv-consumer $i did not stop cleanly"
    a=$(sed -n 's/.* \([0-9]*\) applied.*/\1/p' <<<"$line")
    s=$(sed -n 's/.* \([0-9]*\) sidelined.*/\1/p' <<<"$line")
    say "consumer $i: $line"
    applied=$((applied + a)) sidelined=$((sidelined + s))
done
((sidelined == 0)) || die "pipeline: $sidelined events sidelined to INV_DLQ"
((applied == distinct)) || die "pipeline: consumers applied $applied, expected $distinct"
# received_at is now(), the transaction's start: one value per apply transaction.
txns=$(psql_db -d "$PG_DB" -tAc "SELECT count(DISTINCT received_at) FROM ledger")
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --------------------------------------------------------------- report ---
pipe_s=$(calc "$t_end - $t0")
ingest_s=$(calc "$t_ingest - $t0")
nats_pub=$(calc "$lines / $nats_pub_s")
nats_fetch=$(calc "$distinct / $nats_fetch_s")
nats_lim=$(calc "$distinct / ($nats_pub_s + $nats_fetch_s)")
pg1=$(calc "$distinct / $pg1_s")
pgc=$(calc "$distinct / $pgc_s")
pipe=$(calc "$distinct / $pipe_s")
ingest_rate=$(calc "$lines / $ingest_s")
limit=$(calc "($nats_lim < $pgc) ? $nats_lim : $pgc")
limit_name=$(awk "BEGIN { print ($nats_lim < $pgc) ? \"raw NATS combined\" : \"raw PG, $CONSUMERS connections\" }")
ratio=$(calc "$pipe / $limit")
verdict=$(awk "BEGIN { print ($ratio >= 0.6) ? \"meets the target\" : \"BELOW the target\" }")

row() { printf '  %-52s %9.2f s %10.0f %s\n' "$1" "$2" "$3" "$4"; }
{
    echo
    echo "== stockflow pipeline benchmark (make bench) =="
    echo "machine:  $(nproc) cpus ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), Linux $(uname -r)"
    echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ); load average $load_start at start, $load_end at end"
    echo "servers:  $(nats-server --version 2>&1 | head -n 1), $("$PG_BIN/postgres" --version); synchronous_commit=$sync_commit, fsync=$fsync"
    echo "input:    N=$lines lines (invctl gen --seed $SEED --skus $SKUS --locations $LOCATIONS), $distinct distinct events, $((lines - distinct)) duplicate lines"
    echo "settings: CONSUMERS=$CONSUMERS, BATCH=$BATCH (fetch and transaction), publish window $WINDOW"
    echo
    printf '  %-52s %11s %10s\n' "figure" "time" "events/s"
    row "raw NATS publish, Msg-Id, window $WINDOW" "$nats_pub_s" "$nats_pub" "(msg/s over all $lines lines)"
    row "raw NATS fetch $BATCH + ack each" "$nats_fetch_s" "$nats_fetch" "(msg/s)"
    row "raw NATS limit = distinct / (publish + fetch)" "$(calc "$nats_pub_s + $nats_fetch_s")" "$nats_lim" ""
    row "raw PG apply, batch $BATCH, 1 connection" "$pg1_s" "$pg1" ""
    row "raw PG limit: apply, batch $BATCH, $CONSUMERS connections" "$pgc_s" "$pgc" "(batch p50 $pgc_p50 ms, p99 $pgc_p99 ms)"
    row "pipeline: inv-ingest alone (publish all lines)" "$ingest_s" "$ingest_rate" "(lines/s)"
    row "pipeline: end to end, ingest + $CONSUMERS consumers" "$pipe_s" "$pipe" "(first publish -> last commit)"
    printf '  %-52s %s\n' "pipeline: apply transactions" "$txns, $(calc "$distinct / $txns" | cut -d. -f1) events each on average (fetch up to $BATCH)"
    echo
    printf '  ratio = pipeline / min(raw NATS limit, raw PG limit) = %.0f / %.0f (%s) = %.2f   target >= 0.60: %s\n' \
        "$pipe" "$limit" "$limit_name" "$ratio" "$verdict"
    echo "  (events/s = $distinct distinct events / time, except the publish and ingest rows; logs in $LOGS)"
    echo
} | tee "$LOGS/summary.txt"
