#!/usr/bin/env bash
# pipeline.sh: `make bench`. N generated events through inv-ingest and
# CONSUMERS inv-consumer processes into PostgreSQL (synchronous_commit on),
# next to the two raw limits measured in the same run on the same events:
#   raw NATS  bench/raw_nats.c   bare publish (Nats-Msg-Id) + pull fetch/ack, no database
#   raw PG    bench/raw_apply.c  sf_ledger_apply on pre-parsed batches, no broker
# and the ratio of the pipeline to the lower limit (target >= 0.60). Every
# measurement also reports the CPU it cost per component and what the rest of
# the machine used meanwhile, since a shared 2-core machine moves rates by
# 2x between runs. bench/README.md says what each figure means.
#
# Environment (defaults): N=500000 lines, SEED=1, CONSUMERS=2, BATCH=2000
# (consumer fetch and transaction size; also the raw fetch and raw apply
# batch), WINDOW=4096 (publish window of raw_nats; inv-ingest uses its
# [ingest] max_inflight default, 4096), BUILD=build/default, BIN=bin,
# BENCH_TIMEOUT (seconds the pipeline may take; default max(120, N/2000)),
# BENCH_KEEP=1 leaves the stack running at the end.
#
# A private stack: STACK_DIR=var/bench-stack (wiped first), NATS 34222 (monitor
# 38222), PostgreSQL 35432; stopped on exit. Every measurement starts clean:
# nats-server restarted on an empty store, database dropped and re-created,
# CHECKPOINT, sync, `invctl setup`.
#
# Exit 0 when every measurement completed, whatever the ratio (this is a
# measurement, not a test); 1 when anything failed or events went missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

N=${N:-500000}
SEED=${SEED:-1}
CONSUMERS=${CONSUMERS:-2}
BATCH=${BATCH:-2000}
WINDOW=${WINDOW:-4096}
SKUS=10000
LOCATIONS=10
for v in N SEED CONSUMERS BATCH WINDOW; do
    if ! [[ "${!v}" =~ ^[0-9]+$ ]] || ((${!v} < 1)); then
        echo "pipeline.sh: $v must be a positive integer, got '${!v}'" >&2
        exit 2
    fi
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
command -v curl >/dev/null || {
    echo "pipeline.sh: curl is needed (scripts/deps.sh installs it)" >&2
    exit 1
}

export STACK_DIR="$ROOT/var/bench-stack"
export NATS_PORT=30122 NATS_MON_PORT=30123 PG_PORT=30132 PG_DB=stockflow
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
STACK="$ROOT/scripts/stack.sh"
export INV_NATS_URL="nats://127.0.0.1:$NATS_PORT"
export INV_PG_DSN="host=127.0.0.1 port=$PG_PORT dbname=$PG_DB user=postgres"
EVENTS="$STACK_DIR/events.jsonl"
LOGS="$STACK_DIR/logs"
HZ=$(getconf CLK_TCK)

say() { echo "bench: $*" >&2; }
die() {
    echo "bench: FAILED: $*" >&2
    exit 1
}
# calc EXPR: floating-point arithmetic through awk.
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
psql_db() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }

# ---------------------------------------------------------- CPU counters ---
# All in clock ticks. tree_ticks ROOT: ROOT's own and reaped children's time
# plus its live children's (the postmaster and its backends).
tree_ticks() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '{
        pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " ")
        if (pid == root) t += f[12] + f[13] + f[14] + f[15]
        else if (f[2] == root) t += f[12] + f[13]
    } END { print t + 0 }'
}
# pid_ticks PID...: user + system of each live process (all its threads).
pid_ticks() {
    local p t=0 v
    for p in "$@"; do
        v=$(awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' \
            "/proc/$p/stat" 2>/dev/null) || v=0
        t=$((t + v))
    done
    echo "$t"
}
# reaped_ticks: this shell's reaped children (foreground commands).
# ($$, not $BASHPID: callers run this inside a command substitution.)
reaped_ticks() { awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[14] + f[15] }' "/proc/$$/stat"; }
# machine_ticks: non-idle time of all CPUs.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
nats_pid() { cat "$STACK_DIR/nats.pid"; }
pg_pid() { # stack.sh may have put the data elsewhere and said so in pg.location
    local dir="$STACK_DIR/pg"
    [[ -r "$STACK_DIR/pg.location" ]] && dir=$(<"$STACK_DIR/pg.location")
    head -n 1 "$dir/data/postmaster.pid"
}
secs() { calc "$1 / $HZ"; }

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

# reset: empty JetStream store, fresh database, a checkpoint and a sync so
# no write-back debt of the previous measurement lands in the next, setup.
reset() {
    stop_consumers
    "$STACK" nats-stop >/dev/null 2>&1
    rm -rf "$STACK_DIR/nats"
    "$STACK" nats-start 2>>"$LOGS/stack.log" || die "nats-server did not start (see $LOGS/stack.log)"
    psql_db -d postgres -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" \
        -c "CREATE DATABASE $PG_DB" -c "CHECKPOINT" || die "cannot re-create database $PG_DB"
    "$BIN/invctl" setup >>"$LOGS/setup.log" 2>&1 || die "invctl setup failed (see $LOGS/setup.log)"
    sync
}

# result FILE KEY: the value of KEY=... on the RESULT line of FILE.
result() {
    local v
    v=$(grep '^RESULT ' "$1" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p")
    [[ -n "$v" ]] || die "no $2 in $1"
    echo "$v"
}

# consumer_state: sets STATE to "num_pending num_ack_pending ack_floor_seq"
# of stock-applier, read from the monitoring endpoint with bash builtins
# only: the poll loop must not fork (a fork+exec costs milliseconds of CPU
# here, and 10 of them a second would load the cores being measured).
consumer_state() {
    local fd line js=""
    STATE=""
    exec {fd}<>"/dev/tcp/127.0.0.1/$NATS_MON_PORT" 2>/dev/null || return 1
    printf 'GET /jsz?consumers=true HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&"$fd"
    while IFS= read -r -t 2 -u "$fd" line; do
        js+=$line
    done
    js+=$line
    exec {fd}>&-
    [[ "$js" =~ \"num_pending\":\ *([0-9]+) ]] || return 1
    local pending=${BASH_REMATCH[1]}
    [[ "$js" =~ \"num_ack_pending\":\ *([0-9]+) ]] || return 1
    local ack_pending=${BASH_REMATCH[1]}
    [[ "$js" =~ \"ack_floor\":\ *\{[^}]*\"stream_seq\":\ *([0-9]+) ]] || return 1
    STATE="$pending $ack_pending ${BASH_REMATCH[1]}"
}
# pause SECONDS without forking: a read that times out on a private FIFO.
pause() { read -r -t "$1" -u "$PAUSE_FD" _ || true; }

# ---------------------------------------------------------------- start ---
say "private stack in $STACK_DIR (NATS $NATS_PORT/$NATS_MON_PORT, PostgreSQL $PG_PORT)"
"$STACK" wipe >/dev/null 2>&1 || true
rm -rf "$STACK_DIR"
mkdir -p "$LOGS"
mkfifo "$STACK_DIR/.pause"
exec {PAUSE_FD}<>"$STACK_DIR/.pause"
"$STACK" up >/dev/null 2>>"$LOGS/stack.log" || {
    cat "$LOGS/stack.log" >&2
    die "stack.sh up"
}

sync_commit=$(psql_db -d postgres -tAc "SHOW synchronous_commit")
fsync=$(psql_db -d postgres -tAc "SHOW fsync")
[[ "$sync_commit" == on && "$fsync" == on ]] ||
    die "synchronous_commit=$sync_commit fsync=$fsync: the benchmark is defined with both on"
say "synchronous_commit=$sync_commit fsync=$fsync"

say "generating $N events (seed $SEED, $SKUS skus, $LOCATIONS locations)"
"$BIN/invctl" gen --seed "$SEED" --events "$N" --skus "$SKUS" --locations "$LOCATIONS" \
    --out "$EVENTS" || die "invctl gen"
lines=$(wc -l <"$EVENTS")
((lines == N)) || die "invctl gen wrote $lines lines, wanted $N"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------- raw NATS ---
say "raw NATS: publish + fetch/ack, no database"
reset
"$RAW_NATS" --file "$EVENTS" --window "$WINDOW" --fetch "$BATCH" \
    --watch "nats=$(nats_pid)" --watch "postgres=$(pg_pid)" >"$LOGS/raw_nats.out" 2>&1 || {
    cat "$LOGS/raw_nats.out" >&2
    die "raw_nats"
}
grep '^raw_nats:' "$LOGS/raw_nats.out" >&2
R=$LOGS/raw_nats.out
nats_stored=$(result "$R" stored)
nats_pub_s=$(result "$R" publish_s)
nats_fetch_s=$(result "$R" fetch_s)
rn_cpu_nats=$(calc "$(result "$R" publish_cpu_nats) + $(result "$R" fetch_cpu_nats)")
rn_cpu_self=$(calc "$(result "$R" publish_cpu_self) + $(result "$R" fetch_cpu_self)")
rn_cpu_pg=$(calc "$(result "$R" publish_cpu_postgres) + $(result "$R" fetch_cpu_postgres)")
rn_cpu_other=$(calc "$(result "$R" publish_cpu_other) + $(result "$R" fetch_cpu_other)")

# --------------------------------------------------------------- raw PG ---
raw_apply() { # raw_apply THREADS OUTFILE
    reset
    "$RAW_APPLY" --file "$EVENTS" --batch "$BATCH" --threads "$1" \
        --watch "nats=$(nats_pid)" --watch "postgres=$(pg_pid)" >"$2" 2>&1 || {
        cat "$2" >&2
        die "raw_apply --threads $1"
    }
    grep '^raw_apply:' "$2" >&2
}
say "raw PostgreSQL: sf_ledger_apply, 1 connection, no broker"
raw_apply 1 "$LOGS/raw_apply_1.out"
R=$LOGS/raw_apply_1.out
pg1_s=$(result "$R" seconds)
distinct=$(result "$R" distinct)
pg1_cpu=("$(result "$R" apply_cpu_nats)" "$(result "$R" apply_cpu_postgres)"
    "$(result "$R" apply_cpu_self)" "$(result "$R" apply_cpu_other)")
pg1_first=$(result "$R" first_ms)
pg1_last=$(result "$R" last_ms)
say "raw PostgreSQL: sf_ledger_apply, $CONSUMERS connections in parallel, no broker"
raw_apply "$CONSUMERS" "$LOGS/raw_apply_c.out"
R=$LOGS/raw_apply_c.out
pgc_s=$(result "$R" seconds)
pgc_cpu=("$(result "$R" apply_cpu_nats)" "$(result "$R" apply_cpu_postgres)"
    "$(result "$R" apply_cpu_self)" "$(result "$R" apply_cpu_other)")
pgc_p50=$(result "$R" p50_ms)
pgc_p99=$(result "$R" p99_ms)
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

npid=$(nats_pid) ppid=$(pg_pid)
c0_nats=$(pid_ticks "$npid") c0_pg=$(tree_ticks "$ppid") c0_cons=$(pid_ticks "${consumer_pids[@]}")
c0_machine=$(machine_ticks) c0_reaped=$(reaped_ticks)
t0=$EPOCHREALTIME
"$BIN/inv-ingest" --file "$EVENTS" --rejects "$LOGS/ingest.rejects" \
    >"$LOGS/ingest.out" 2>"$LOGS/ingest.err" || {
    cat "$LOGS/ingest.out" "$LOGS/ingest.err" >&2
    die "inv-ingest"
}
t_ingest=$EPOCHREALTIME
c_ingest=$(($(reaped_ticks) - c0_reaped))
cat "$LOGS/ingest.out" >&2
accepted=$(sed -n 's/.* \([0-9]*\) accepted.*/\1/p' "$LOGS/ingest.out")
((accepted == distinct)) || die "inv-ingest accepted $accepted events, expected $distinct distinct"

# Done when stock-applier has every message acked: consumers ack after the
# commit, so that is the last commit (within the 0.1 s poll); the ledger
# count confirms it below. Polling count(*) over a growing ledger instead
# would itself load the 2 shared cores.
t_end=""
deadline_us=$((${t0/./} + BENCH_TIMEOUT * 1000000))
while :; do
    t=$EPOCHREALTIME
    if consumer_state; then
        read -r pending ack_pending floor <<<"$STATE"
        if ((pending == 0 && ack_pending == 0 && floor >= distinct)); then
            t_end=$t
            break
        fi
    fi
    ((${t/./} < deadline_us)) || break
    pause 0.1
done
c1_nats=$(pid_ticks "$npid") c1_pg=$(tree_ticks "$ppid") c1_cons=$(pid_ticks "${consumer_pids[@]}")
c1_machine=$(machine_ticks)
c_poll=$(($(reaped_ticks) - c0_reaped - c_ingest))
in_ledger=$(psql_db -d "$PG_DB" -tAc "SELECT count(*) FROM ledger")
[[ -n "$t_end" ]] ||
    die "pipeline: after ${BENCH_TIMEOUT}s the ledger holds $in_ledger of $distinct events (consumer: ${STATE:-?})"
((in_ledger == distinct)) || die "pipeline: every message acked but the ledger holds $in_ledger of $distinct"
# received_at is now(), the transaction's start: one value per apply transaction.
txns=$(psql_db -d "$PG_DB" -tAc "SELECT count(DISTINCT received_at) FROM ledger")
stop_consumers
applied=0 sidelined=0
for ((i = 1; i <= CONSUMERS; i++)); do
    line=$(grep 'stopping:' "$LOGS/consumer-$i.log" | tail -n 1) || die "inv-consumer $i did not stop cleanly"
    a=$(sed -n 's/.* \([0-9]*\) applied.*/\1/p' <<<"$line")
    s=$(sed -n 's/.* \([0-9]*\) sidelined.*/\1/p' <<<"$line")
    say "consumer $i: ${line#*INFO }"
    applied=$((applied + a)) sidelined=$((sidelined + s))
done
((sidelined == 0)) || die "pipeline: $sidelined events sidelined to INV_DLQ"
((applied == distinct)) || die "pipeline: consumers applied $applied, expected $distinct"
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
if awk "BEGIN { exit !($nats_lim < $pgc) }"; then
    limit=$nats_lim limit_name="raw NATS"
else
    limit=$pgc limit_name="raw PG, $CONSUMERS connections"
fi
ratio=$(calc "$pipe / $limit")
verdict=$(awk "BEGIN { print ($ratio >= 0.6) ? \"met\" : \"NOT met\" }")


p_nats=$(secs $((c1_nats - c0_nats)))
p_pg=$(secs $((c1_pg - c0_pg)))
p_cons=$(secs $((c1_cons - c0_cons)))
p_ingest=$(secs "$c_ingest")
p_poll=$(secs "$c_poll")
p_busy=$(secs $((c1_machine - c0_machine)))
p_other=$(calc "$p_busy - $p_nats - $p_pg - $p_cons - $p_ingest - $p_poll")
p_other=$(calc "$p_other < 0 ? 0 : $p_other")

us() { calc "$1 * 1e6 / $distinct"; } # core-seconds -> microseconds per distinct event
row() { printf '  %-50s %8.2f s %9.0f  %s\n' "$1" "$2" "$3" "$4"; }
# cpurow NAME WALL NATS PG CLIENTS OTHERS: core-seconds, µs per event, cores busy.
cpurow() {
    printf '  %-27s %7.1f %7.1f %7.1f %7.1f | %5.0f %5.0f %5.0f %6.0f | %4.1f of %d\n' "$1" "$3" "$4" "$5" "$6" \
        "$(us "$3")" "$(us "$4")" "$(us "$5")" "$(us "$(calc "$3 + $4 + $5")")" \
        "$(calc "($3 + $4 + $5 + $6) / $2")" "$(nproc)"
}
{
    echo
    echo "== stockflow pipeline benchmark (make bench) =="
    echo "machine:  $(nproc) cpus ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), Linux $(uname -r)"
    echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ); load average $load_start at start, $load_end at end"
    echo "servers:  $(nats-server --version 2>&1 | head -n 1), $("$PG_BIN/postgres" --version); synchronous_commit=$sync_commit, fsync=$fsync"
    echo "input:    N=$lines lines (invctl gen --seed $SEED --skus $SKUS --locations $LOCATIONS), $distinct distinct events, $((lines - distinct)) duplicate lines"
    echo "settings: CONSUMERS=$CONSUMERS, BATCH=$BATCH (fetch and transaction), publish window $WINDOW"
    echo
    printf '  %-50s %10s %9s\n' "figure" "time" "events/s"
    row "raw NATS publish, Msg-Id, window $WINDOW" "$nats_pub_s" "$nats_pub" "msg/s over all $lines lines"
    row "raw NATS fetch $BATCH + ack each" "$nats_fetch_s" "$nats_fetch" "msg/s"
    row "raw NATS limit = distinct / (publish + fetch)" "$(calc "$nats_pub_s + $nats_fetch_s")" "$nats_lim" ""
    row "raw PG apply, batch $BATCH, 1 connection" "$pg1_s" "$pg1" "batch mean $pg1_first ms first tenth, $pg1_last ms last"
    row "raw PG limit: apply, batch $BATCH, $CONSUMERS connections" "$pgc_s" "$pgc" "batch p50 $pgc_p50 ms, p99 $pgc_p99 ms"
    row "pipeline: inv-ingest alone (all lines published)" "$ingest_s" "$ingest_rate" "lines/s, consumers running"
    row "pipeline: end to end, ingest + $CONSUMERS consumers" "$pipe_s" "$pipe" "first publish -> last commit"
    printf '  %-50s %s\n' "pipeline apply transactions" "$txns, $((distinct / txns)) events each on average"
    echo
    printf '  ratio = pipeline / min(raw NATS, raw PG %d conn) = %.0f / %.0f (%s) = %.2f   target >= 0.60: %s\n' \
        "$CONSUMERS" "$pipe" "$limit" "$limit_name" "$ratio" "$verdict"
    echo "  (events/s = $distinct distinct events / time, except the two rows marked msg/s or lines/s)"
    echo
    echo "  CPU during each timed phase: core-seconds, then microseconds per distinct event"
    printf '  %-27s %7s %7s %7s %7s | %5s %5s %5s %6s | %s\n' "" "nats" "pg" "clients" "others" "nats" "pg" "clnts" "total" "cores busy"
    cpurow "raw NATS (publish+fetch)" "$(calc "$nats_pub_s + $nats_fetch_s")" "$rn_cpu_nats" "$rn_cpu_pg" \
        "$rn_cpu_self" "$rn_cpu_other"
    cpurow "raw PG, 1 connection" "$pg1_s" "${pg1_cpu[@]}"
    cpurow "raw PG, $CONSUMERS connections" "$pgc_s" "${pgc_cpu[@]}"
    cpurow "pipeline" "$pipe_s" "$p_nats" "$p_pg" "$(calc "$p_ingest + $p_cons")" "$p_other"
    printf '  (clients: the raw_* program, or inv-ingest %.1f + consumers %.1f core-s; others: the rest of\n' \
        "$p_ingest" "$p_cons"
    printf '   the machine, i.e. other tenants and the kernel, plus %.2f core-s of this script polling)\n' "$p_poll"
    echo "  logs: $LOGS"
    echo
} | tee "$LOGS/summary.txt"
