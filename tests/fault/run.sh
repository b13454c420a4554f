#!/usr/bin/env bash
# run.sh: `make test-fault`. A generated workload of EVENTS events goes
# through the whole pipeline on a private stack -- inv-ingest --file (several
# files), inv-ingest --zmq fed by fault_zmq_client, inv-supplier --file (CSV
# feeds of an identity-mapped supplier), CONSUMERS inv-consumer, RECONCILERS
# inv-reconciler with three channels -- while, at moments drawn from SEED,
# processes and servers are killed (kill -9) and restarted, and paused
# (SIGSTOP) for longer than the 10 s ack wait. Then it drains and runs
# fault_check, which compares the ledger, positions, reservations,
# channel_stock and INV_CHANNEL with a recomputation of the input and prints
# five counts: lost, duplicated, unexpected, position drift, channel drift.
# Any count above 0 fails (exit 1), and so does a service that crashed (died
# of a signal the driver did not send) or anything sidelined to INV_DLQ (the
# workload is all valid). The last line is "N passed, N failed" (the five
# counts, plus crashes and the DLQ when they fail) for .ci/run's total.
#
# CLUSTER=1 runs the same workload against a 3-node nats-server cluster
# (scripts/stack.sh cluster up; INV_EVENTS, INV_DLQ and INV_CHANNEL with 3
# replicas): instead of killing and pausing the single nats-server it kills
# -9 the INV_EVENTS stream leader (found from stream info: invctl status)
# mid-run, keeps that node down for 30-40 s and checks that the pipeline
# went on applying events meanwhile (a failure if it did not), then restarts
# the node and waits until its replicas are current again.
#
# Environment (defaults): SEED (random, printed; SEED=N repeats a run),
# EVENTS=1000000, CLUSTER=0, CONSUMERS=3, RECONCILERS=2, PRODUCE_SECS (how long the
# producers are spread over; max(30, EVENTS/8000)), FAULT_SECS (the window
# of the faults on consumers, reconcilers and servers; 2 x PRODUCE_SECS),
# FAULT_BUDGET=1140 (s the whole run may take: it fails past that),
# FAULT_KEEP=1 leaves the stack running, BUILD, BIN.
#
# The one idea to keep when changing it: the driver only ever counts what
# the pipeline acknowledged. A file or supplier run is re-run (same file,
# same ids) until it exits 0; a ZeroMQ event counts once the client got
# "ok". The fault schedule is a pure function of SEED (xorshift32 below), so
# a failing seed can be replayed; what actually happened, with real times,
# is logged beside the plan. Services run under a supervisor loop that
# restarts them after a kill; every process is killed by its own pid (the
# pid file its supervisor wrote, checked against /proc/PID/comm), never by
# name.
#
# Private stack: STACK_DIR=var/fault-stack, NATS 11222 (monitor 15222),
# PostgreSQL 11432, ZeroMQ ingest 11555; wiped first, stopped on exit. Logs
# stay in var/fault-stack/run/, and after a failure the inputs and the
# servers' data too.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

T_START=${EPOCHREALTIME/./}
EVENTS=${EVENTS:-1000000}
CONSUMERS=${CONSUMERS:-3}
RECONCILERS=${RECONCILERS:-2}
FAULT_BUDGET=${FAULT_BUDGET:-1140}
CLUSTER=${CLUSTER:-0}
if [[ -z "${SEED:-}" ]]; then
    SEED=$(($(od -An -N4 -tu4 /dev/urandom) % 1000000000))
fi
for v in SEED EVENTS CONSUMERS RECONCILERS FAULT_BUDGET CLUSTER; do
    if ! [[ "${!v}" =~ ^[0-9]{1,10}$ ]]; then
        echo "run.sh: $v must be a non-negative integer, got '${!v}'" >&2
        exit 2
    fi
    printf -v "$v" '%d' "$((10#${!v}))" # no leading zeros (octal in $((...)))
done
((SEED <= 999999999)) || {
    echo "run.sh: SEED must be 0..999999999" >&2
    exit 2
}
((CLUSTER <= 1 && EVENTS >= 1000 && CONSUMERS >= 1 && CONSUMERS <= 8 && RECONCILERS >= 1 && RECONCILERS <= 4)) || {
    echo "run.sh: need CLUSTER 0 or 1, EVENTS >= 1000, CONSUMERS 1..8, RECONCILERS 1..4" >&2
    exit 2
}
PRODUCE_SECS=${PRODUCE_SECS:-$((EVENTS / 8000 > 30 ? EVENTS / 8000 : 30))}
if ! [[ "$PRODUCE_SECS" =~ ^[0-9]{1,6}$ ]] || ((10#$PRODUCE_SECS < 20)); then
    echo "run.sh: PRODUCE_SECS must be an integer >= 20" >&2
    exit 2
fi
PRODUCE_SECS=$((10#$PRODUCE_SECS))
FAULT_SECS=${FAULT_SECS:-$((2 * PRODUCE_SECS))}
if ! [[ "$FAULT_SECS" =~ ^[0-9]{1,6}$ ]] || ((10#$FAULT_SECS < PRODUCE_SECS)); then
    echo "run.sh: FAULT_SECS must be an integer >= PRODUCE_SECS" >&2
    exit 2
fi
FAULT_SECS=$((10#$FAULT_SECS))
FILES=8     # inv-ingest --file runs
SUP_DOCS=4  # inv-supplier --file runs
ZMQ_PERMILLE=100
SUP_PERMILLE=200 # of the ids, those that are COUNT/ASN/RECEIPT go to the supplier
SUPPLIER=fault-sup
LOCATIONS=10
SKUS=20000

BUILD=$(realpath -m -- "${BUILD:-build/default}")
BIN=$(realpath -m -- "${BIN:-bin}")
export STACK_DIR="$ROOT/var/fault-stack"
export NATS_PORT=11222 NATS_MON_PORT=15222 PG_PORT=11432 PG_DB=stockflow
ZMQ_ENDPOINT="tcp://127.0.0.1:11555"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
STACK="$ROOT/scripts/stack.sh"
export INV_NATS_URL="nats://127.0.0.1:$NATS_PORT"
MODE="one nats-server"
if ((CLUSTER)); then
    # n1..n3 on client ports 11222..11224 (routes +2000, monitors +4000)
    export INV_NATS_URL="nats://127.0.0.1:$NATS_PORT,nats://127.0.0.1:$((NATS_PORT + 1)),nats://127.0.0.1:$((NATS_PORT + 2))"
    unset CLUSTER_PORTS CLUSTER_ROUTE_PORTS CLUSTER_MON_PORTS
    MODE="3-node nats-server cluster, streams with 3 replicas"
fi
export INV_PG_DSN="host=127.0.0.1 port=$PG_PORT dbname=$PG_DB user=postgres"
unset INV_NOW_MS INV_OPS_ENDPOINT
RUN="$STACK_DIR/run"
IN="$RUN/in"
LOGS="$RUN/logs"
PIDS="$RUN/pids"
RBIN="$RUN/bin"
CONF="$RUN/fault.ini"

# ------------------------------------------------------------- helpers ---
now_ms() { NOW_MS=$((${EPOCHREALTIME/./} / 1000)); }
elapsed() { # ELAPSED = "12.3" seconds since the start of the run
    local us=$((${EPOCHREALTIME/./} - T_START))
    ELAPSED=$((us / 1000000)).$(((us / 100000) % 10))
}
say() {
    elapsed
    printf '[%6ss] fault: %s\n' "$ELAPSED" "$*" >&2
}
log() { # into the event log only (the schedule's record)
    elapsed
    printf '[%6ss] %s\n' "$ELAPSED" "$*" >>"$LOGS/events.log"
}
die() {
    say "FAILED: $*"
    RESULT="FAIL ($*)"
    # before the EXIT trap is set, nobody else prints the tally line
    [[ -n "${TRAPPED:-}" ]] || echo "0 passed, 1 failed"
    exit 1
}
psql_db() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$PG_DB" "$@"; }
over_budget() { (((${EPOCHREALTIME/./} - T_START) / 1000000 >= FAULT_BUDGET)); }

# pid_of NAME COMM: the pid in $PIDS/NAME if that process is alive and is COMM.
pid_of() {
    local pid comm
    [[ -r "$PIDS/$1" ]] || return 1
    pid=$(<"$PIDS/$1") || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ "$comm" == "$2"* ]] || return 1
    # not a zombie: one that has exited must count as gone
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
    echo "$pid"
}

# xorshift32 seeded from SEED: rnd N sets R uniform in [0, N).
RNG=$(((SEED * 69069 + 1234567) & 0xFFFFFFFF))
((RNG != 0)) || RNG=1
rnd() {
    local x=$RNG
    x=$(((x ^ (x << 13)) & 0xFFFFFFFF))
    x=$((x ^ (x >> 17)))
    x=$(((x ^ (x << 5)) & 0xFFFFFFFF))
    RNG=$x
    R=$((x % $1))
}

# ------------------------------------------------------- process control ---
SUPERVISORS=()
declare -A PAUSED=() INJECTED=() ENDS_AT=()
WORKER_PID=""
CLIENT_PID=""
BG_PIDS=()
RESULT=""

# supervise NAME COMM CMD...: run CMD, restart it whenever it exits until
# $RUN/stop exists; its pid goes to $PIDS/NAME, its output to $LOGS/NAME.log.
supervise() {
    local name=$1
    shift 2
    (
        n=0
        ulimit -c unlimited 2>/dev/null || true
        while [[ ! -e "$RUN/stop" ]]; do
            n=$((n + 1))
            # each run in its own directory, so a crash leaves its core there
            mkdir -p "$RUN/cores/$name.$n"
            (cd "$RUN/cores/$name.$n" && exec "$@") >>"$LOGS/$name.log" 2>&1 &
            child=$!
            echo "$child" >"$PIDS/$name"
            rc=0
            wait "$child" || rc=$?
            rmdir "$RUN/cores/$name.$n" 2>/dev/null || true
            [[ -e "$RUN/stop" ]] && break
            # 137: our kill -9; 1: its server was down; anything else is a crash
            why=""
            ((rc > 128 && rc != 137)) && why=" CRASH (signal $((rc - 128)))"
            echo "$name (run $n, pid $child) exited $rc$why; restarting" >>"$LOGS/supervisor.log"
            sleep 1
        done
    ) 2>>"$LOGS/supervisor.log" &
    SUPERVISORS+=($!)
}

service_names() {
    local i
    for ((i = 1; i <= CONSUMERS; i++)); do echo "consumer-$i inv-consumer"; done
    for ((i = 1; i <= RECONCILERS; i++)); do echo "reconciler-$i inv-reconciler"; done
    echo "zmq-ingest inv-ingest"
}

stop_services() {
    touch "$RUN/stop"
    local name comm pid sup
    while read -r name comm; do
        if pid=$(pid_of "$name" "$comm"); then
            kill -CONT "$pid" 2>/dev/null || true
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done < <(service_names)
    local deadline=$((SECONDS + 30))
    for sup in "${SUPERVISORS[@]}"; do
        while kill -0 "$sup" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    done
    while read -r name comm; do
        if pid=$(pid_of "$name" "$comm"); then
            say "$name (pid $pid) ignored SIGTERM for 30 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done < <(service_names)
    for sup in "${SUPERVISORS[@]}"; do wait "$sup" 2>/dev/null || true; done
    SUPERVISORS=()
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${PAUSED[@]}"; do kill -CONT "$pid" 2>/dev/null || true; done
    if [[ -d "$RUN" ]]; then
        touch "$RUN/stop"
        for pid in $WORKER_PID $CLIENT_PID "${BG_PIDS[@]}"; do
            kill -TERM "$pid" 2>/dev/null || true
        done
        if pid=$(pid_of producer inv-); then kill -KILL "$pid" 2>/dev/null || true; fi
        ((${#SUPERVISORS[@]} == 0)) || stop_services
        for pid in $WORKER_PID $CLIENT_PID "${BG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    fi
    if [[ "${FAULT_KEEP:-0}" == 1 ]]; then
        say "FAULT_KEEP=1: stack left running in $STACK_DIR ($INV_NATS_URL, $INV_PG_DSN)"
    else
        "$STACK" cluster down >/dev/null 2>&1 || true
        "$STACK" down >/dev/null 2>&1 || true
        # A pass keeps only the logs; a failure keeps the data and inputs
        # too, for $RUN/check.sh with FAULT_KEEP=1 or a look at the stores.
        if ((rc == 0)); then
            "$STACK" wipe >/dev/null 2>&1 || true
            rm -rf "$IN" "$RBIN"
        fi
    fi
    if ((rc != 0)); then
        echo "SEED=$SEED: ${RESULT:-FAIL (exit $rc)}; logs in $LOGS (make test-fault SEED=$SEED repeats the run)" >&2
        [[ -n "${RESULT_COUNTED:-}" ]] || echo "0 passed, 1 failed"
    fi
    exit "$rc"
}

# ---------------------------------------------------------------- start ---
for exe in inv-ingest inv-consumer inv-reconciler inv-supplier invctl; do
    [[ -x "$BIN/$exe" ]] || die "$BIN/$exe not built (make fault-build)"
done
for exe in fault_check fault_zmq_client; do
    [[ -x "$BUILD/tests/fault/$exe" ]] || die "$BUILD/tests/fault/$exe not built (make fault-build)"
done

# The ports are machine-wide: two fault runs at once would wipe each other.
exec 7>"/tmp/stockflow-fault-$PG_PORT.lock"
flock -n 7 || die "another fault run holds /tmp/stockflow-fault-$PG_PORT.lock"

echo "== stockflow fault suite: SEED=$SEED EVENTS=$EVENTS CLUSTER=$CLUSTER ($MODE; make test-fault SEED=$SEED repeats it) =="
"$STACK" wipe >/dev/null 2>&1 || true
rm -rf "$STACK_DIR"
mkdir -p "$IN" "$LOGS" "$PIDS" "$RBIN" "$RUN/cores"
trap cleanup EXIT
TRAPPED=1
trap 'RESULT="FAIL (interrupted)"; exit 130' INT TERM
# A snapshot of the binaries: a rebuild in the work tree during the run must
# not change what a restart runs.
cp "$BIN"/{inv-ingest,inv-consumer,inv-reconciler,inv-supplier,invctl} \
    "$BUILD"/tests/fault/{fault_check,fault_zmq_client} "$RBIN/"
STACK_UP=(up)
((CLUSTER)) && STACK_UP=(cluster up)
"$STACK" "${STACK_UP[@]}" >/dev/null 2>>"$LOGS/stack.log" || {
    cat "$LOGS/stack.log" >&2
    die "stack.sh ${STACK_UP[*]}"
}
cat >"$CONF" <<CONF
; written by tests/fault/run.sh
[nats]
replicas = $((CLUSTER ? 3 : 1))
CONF
"$RBIN/invctl" --config "$CONF" setup >"$LOGS/setup.log" 2>&1 || die "invctl setup (see $LOGS/setup.log)"

# Channels: ats = max(0, sum over the locations of max(0, on_hand - reserved
# - safety stock) - buffer). The checker gets the same definitions.
CHANNEL_ARGS=(--channel "web=2:LOC-1,LOC-2,LOC-3,LOC-4"
    --channel "app=0:LOC-2,LOC-5,LOC-6"
    --channel "marketplace=5:LOC-1,LOC-10,LOC-2,LOC-3,LOC-4,LOC-5,LOC-6,LOC-7,LOC-8,LOC-9")
SAFETY_ARGS=(--safety LOC-2=3 --safety LOC-7=5)
{
    "$RBIN/invctl" location set LOC-2 --safety-stock 3
    "$RBIN/invctl" location set LOC-7 --safety-stock 5
    "$RBIN/invctl" channel add web --buffer 2 --locations LOC-1,LOC-2,LOC-3,LOC-4
    "$RBIN/invctl" channel add app --buffer 0 --locations LOC-2,LOC-5,LOC-6
    "$RBIN/invctl" channel add marketplace --buffer 5 \
        --locations LOC-1,LOC-2,LOC-3,LOC-4,LOC-5,LOC-6,LOC-7,LOC-8,LOC-9,LOC-10
} >>"$LOGS/setup.log" 2>&1 || die "channel setup (see $LOGS/setup.log)"

locmap=""
for ((i = 1; i <= LOCATIONS; i++)); do locmap+="${locmap:+, }LOC-$i=LOC-$i"; done
cat >>"$CONF" <<CONF

[supplier.$SUPPLIER]
format = csv
sku_map = identity
location_map = $locmap
CONF

# ------------------------------------------------------------- workload ---
say "generating $EVENTS events (invctl gen --seed $SEED --skus $SKUS --locations $LOCATIONS)"
"$RBIN/invctl" gen --seed "$SEED" --events "$EVENTS" --skus "$SKUS" --locations "$LOCATIONS" \
    --out "$IN/all.jsonl" || die "invctl gen"
# Split by event id, so every copy of a line lands in the same part: about
# 10% ZeroMQ, the COUNT/ASN/RECEIPT events of another 20% of the ids as
# supplier CSV records (kind,sku,location,qty,occurred_at; RFC 3339 times
# only, first copy only), the rest over FILES files.
awk -v dir="$IN" -v nf="$FILES" -v ns="$SUP_DOCS" -v zp="$ZMQ_PERMILLE" -v sp="$SUP_PERMILLE" '
function field(re, skip,    v) {
    if (!match($0, re)) return ""
    return substr($0, RSTART + skip, RLENGTH - skip)
}
BEGIN {
    for (i = 1; i <= ns; i++) print "kind,sku,location,qty,occurred_at" > (dir "/supplier-" i ".csv")
}
{
    id = field("\"event_id\":\"[^\"]*", 12)
    if (id == "") { print "line " NR ": no event_id" > "/dev/stderr"; exit 1 }
    n = id; sub(/^.*-/, "", n); n = n + 0
    h = (n * 7919 + 13) % 1000
    if (h < zp) { print > (dir "/zmq.jsonl"); next }
    if (h < zp + sp) {
        kind = tolower(field("\"kind\":\"[^\"]*", 8))
        at = field("\"occurred_at\":\"[^\"]*", 15)
        if ((kind == "count" || kind == "asn" || kind == "receipt") && at != "") {
            if (!(id in seen)) {
                seen[id] = 1
                print kind "," field("\"sku\":\"[^\"]*", 7) "," field("\"location\":\"[^\"]*", 12) \
                    "," field("\"qty\":-?[0-9]+", 6) "," at > (dir "/supplier-" (1 + int(n / 5) % ns) ".csv")
            }
            next
        }
    }
    print > (dir "/file-" (1 + int(n / 3) % nf) ".jsonl")
}' "$IN/all.jsonl" || die "splitting the workload"

PRODUCER_RUNS=()
CHECK_INPUTS=()
sup_records=0
for ((i = 1, s = 1; i <= FILES; i++)); do
    PRODUCER_RUNS+=("file $IN/file-$i.jsonl")
    CHECK_INPUTS+=(--file "$IN/file-$i.jsonl")
    if ((i % 2 == 0 && s <= SUP_DOCS)); then
        doc="$IN/supplier-$s.csv"
        PRODUCER_RUNS+=("supplier $doc")
        # The ids the supplier gives each record, without publishing anything.
        "$RBIN/inv-supplier" --config "$CONF" --supplier "$SUPPLIER" --file "$doc" --dry-run \
            >"${doc%.csv}.events.jsonl" 2>>"$LOGS/dry-run.log" || die "inv-supplier --dry-run $doc (see $LOGS/dry-run.log)"
        CHECK_INPUTS+=(--supplier-feed "$doc" --supplier-events "${doc%.csv}.events.jsonl")
        sup_records=$((sup_records + $(wc -l <"${doc%.csv}.events.jsonl")))
        s=$((s + 1))
    fi
done
zmq_lines=$(wc -l <"$IN/zmq.jsonl")
file_lines=$(cat "$IN"/file-*.jsonl | wc -l)
ZMQ_RATE=$((zmq_lines / PRODUCE_SECS + 1))
say "workload: $file_lines lines in $FILES files, $zmq_lines over ZeroMQ ($ZMQ_RATE/s), $sup_records supplier records in $SUP_DOCS CSV feeds; producers spread over ${PRODUCE_SECS}s"

# ------------------------------------------------------- fault schedule ---
# Lines "TIME_MS ACTION TARGET ARG", TIME_MS from the start of the producers.
# Each kind gets its occurrences in equal slots of its window, one at a
# random point of each slot, so a kind never overlaps itself. Faults on the
# producers fall while they run (the first PRODUCE_SECS); the others over
# FAULT_SECS, so they also hit the consumers and reconcilers catching up.
W_PRODUCE=$((PRODUCE_SECS * 1000))
W_ALL=$((FAULT_SECS * 1000))
SCHEDULE=()
plan() { # plan KIND COUNT MIN_DUR MAX_DUR WINDOW_MS: appends to SCHEDULE
    local kind=$1 count=$2 dmin=$3 dmax=$4 w=$5 j t dur target span
    for ((j = 0; j < count; j++)); do
        rnd $((dmax - dmin + 1))
        dur=$((dmin + R))
        span=$(((w - 3000 - dur) / count))
        rnd "$span"
        t=$((3000 + j * span + R))
        case "$kind" in
        kill-producer) SCHEDULE+=("$t kill producer -") ;;
        kill-supplier)
            # into the run: a 1M-event run's supplier feeds last 1-2 s
            rnd $((40 + 360 * (EVENTS < 1000000 ? EVENTS : 1000000) / 1000000))
            SCHEDULE+=("$t kill-supplier producer $R")
            ;;
        kill-zmq) SCHEDULE+=("$t kill zmq-ingest -") ;;
        kill-consumer)
            rnd "$CONSUMERS"
            SCHEDULE+=("$t kill consumer-$((R + 1)) -")
            ;;
        kill-reconciler)
            rnd "$RECONCILERS"
            SCHEDULE+=("$t kill reconciler-$((R + 1)) -")
            ;;
        nats) SCHEDULE+=("$t nats-kill nats-server $dur" "$((t + dur)) nats-start nats-server -") ;;
        leader) SCHEDULE+=("$t leader-kill nats-leader $dur" "$((t + dur)) leader-start nats-leader -") ;;
        pg) SCHEDULE+=("$t pg-stop postgres $dur" "$((t + dur)) pg-start postgres -") ;;
        pause-*)
            case "$kind" in
            pause-consumer)
                rnd "$CONSUMERS"
                target="consumer-$((R + 1))"
                ;;
            pause-reconciler)
                rnd "$RECONCILERS"
                target="reconciler-$((R + 1))"
                ;;
            pause-nats) target=nats-server ;;
            *) target=zmq-ingest ;;
            esac
            SCHEDULE+=("$t stop $target $dur" "$((t + dur)) cont $target -")
            ;;
        esac
    done
}
# Pauses last longer than the ack wait (10 s) with a margin.
plan kill-producer 2 0 0 "$W_PRODUCE"
plan kill-supplier 1 0 0 $((W_PRODUCE / 2)) # supplier runs are still to come
plan kill-zmq 2 0 0 "$W_PRODUCE"
plan pause-zmq 1 12000 16000 "$W_PRODUCE"
plan kill-consumer 4 0 0 "$W_ALL"
plan kill-reconciler 3 0 0 "$W_ALL"
if ((CLUSTER)); then
    # the stream leader, while the producers still run (so there is work to
    # go on with), down long enough to see the pipeline go on without it
    plan leader 1 30000 40000 $((W_PRODUCE > 45000 ? W_PRODUCE : 45000))
else
    plan nats 3 1000 3000 "$W_ALL"
fi
plan pg 3 1000 5000 "$W_ALL"
plan pause-consumer 2 12000 16000 "$W_ALL"
plan pause-reconciler 2 12000 16000 "$W_ALL"
((CLUSTER)) || plan pause-nats 1 12000 16000 "$W_ALL"
mapfile -t SCHEDULE < <(printf '%s\n' "${SCHEDULE[@]}" | sort -n -k1,1 -s)
{
    echo "fault schedule for SEED=$SEED (ms after the producers start):"
    for line in "${SCHEDULE[@]}"; do
        read -r t act target arg <<<"$line"
        case "$act" in
        kill) printf '  %8d  kill -9 %s\n' "$t" "$target" ;;
        nats-kill) printf '  %8d  kill -9 nats-server, restart after %d ms\n' "$t" "$arg" ;;
        leader-kill) printf '  %8d  kill -9 the INV_EVENTS leader node, restart after %d ms\n' "$t" "$arg" ;;
        pg-stop) printf '  %8d  pg-stop immediate, pg-start after %d ms\n' "$t" "$arg" ;;
        stop) printf '  %8d  SIGSTOP %s for %d ms\n' "$t" "$target" "$arg" ;;
        kill-supplier) printf '  %8d  kill -9 the next inv-supplier run, %d ms after it starts\n' "$t" "$arg" ;;
        *) printf '  %8d  %s %s\n' "$t" "$act" "$target" ;;
        esac
    done
} | tee "$RUN/schedule.txt"

# ---------------------------------------------------------- the pipeline ---
while read -r name comm; do
    case "$name" in
    consumer-*) supervise "$name" "$comm" "$RBIN/inv-consumer" --name "fault-$name" ;;
    reconciler-*) supervise "$name" "$comm" "$RBIN/inv-reconciler" ;;
    zmq-ingest) supervise "$name" "$comm" "$RBIN/inv-ingest" --zmq "$ZMQ_ENDPOINT" ;;
    esac
done < <(service_names)

# The producers: each run re-done until it exits 0, one after another,
# run k starting no earlier than k * PRODUCE_SECS / runs.
produce() { # produce KIND PATH
    local kind=$1 path=$2 attempt=0 rc pid
    while :; do
        attempt=$((attempt + 1))
        if [[ "$kind" == file ]]; then
            "$RBIN/inv-ingest" --file "$path" --rejects "$LOGS/ingest-rejects.txt" \
                >>"$LOGS/producers.log" 2>&1 &
        else
            "$RBIN/inv-supplier" --config "$CONF" --supplier "$SUPPLIER" --file "$path" \
                --errors "$LOGS/supplier-errors.txt" >>"$LOGS/producers.log" 2>&1 &
        fi
        pid=$!
        echo "$pid" >"$PIDS/producer"
        rc=0
        wait "$pid" || rc=$?
        echo "$(basename "$path") attempt $attempt (pid $pid) exit $rc" >>"$RUN/producer-runs.txt"
        ((rc == 0)) && return 0
        ((attempt < 40)) || return 1
        sleep 1
    done
}
producer_worker() {
    local k=0 n=${#PRODUCER_RUNS[@]} kind path at
    for run in "${PRODUCER_RUNS[@]}"; do
        read -r kind path <<<"$run"
        at=$((T0_MS + k * PRODUCE_SECS * 1000 / n))
        now_ms
        if ((NOW_MS < at)); then sleep "$(((at - NOW_MS) / 1000)).$(printf '%03d' $(((at - NOW_MS) % 1000)))"; fi
        produce "$kind" "$path" || {
            echo "FAILED $(basename "$path")" >>"$RUN/producer-runs.txt"
            exit 1
        }
        k=$((k + 1))
    done
}

now_ms
T0_MS=$NOW_MS
say "pipeline started: $CONSUMERS consumers, $RECONCILERS reconcilers, ZeroMQ ingest; producers start"
producer_worker 2>>"$LOGS/producers.log" &
WORKER_PID=$!
"$RBIN/fault_zmq_client" --endpoint "$ZMQ_ENDPOINT" --file "$IN/zmq.jsonl" --acked "$RUN/zmq.acked" \
    --rate "$ZMQ_RATE" --window 256 --timeout-ms 5000 --deadline "$FAULT_BUDGET" \
    >"$LOGS/zmq-client.log" 2>&1 &
CLIENT_PID=$!

# ------------------------------------------------------- inject faults ---
count() { INJECTED[$1]=$((${INJECTED[$1]:-0} + 1)); }
# cluster_state: LEADER (n1..n3, "" during an election), CURRENT (followers
# caught up), LAST_SEQ (INV_EVENTS) and ACK_FLOOR (stock-applier) from
# invctl status; returns 1 when JetStream did not answer.
cluster_state() {
    local js
    js=$("$RBIN/invctl" status --json 2>/dev/null | tr -d ' \n') || return 1
    [[ "$js" =~ \"ack_floor\":([0-9]+),\"last_seq\":([0-9]+) ]] || return 1
    ACK_FLOOR=${BASH_REMATCH[1]} LAST_SEQ=${BASH_REMATCH[2]}
    LEADER=""
    [[ "$js" =~ \"leader\":\"(n[123])\" ]] && LEADER=${BASH_REMATCH[1]}
    [[ "$js" =~ \"current_followers\":([0-9]+) ]] && CURRENT=${BASH_REMATCH[1]}
    return 0
}
# cluster_state_within SECS: cluster_state retried until it answers with a
# leader (an election takes 4-25 s here).
cluster_state_within() {
    local until=$((SECONDS + $1))
    while ((SECONDS < until)); do
        cluster_state && [[ -n "$LEADER" ]] && return 0
        sleep 0.5
    done
    return 1
}
LEADER_KILLED="" LEADER_NOTE="" LEADER_FAILED=""
# hold_until TARGET: an outage or pause that started late still lasts its
# planned duration (ENDS_AT[TARGET], set when it started).
hold_until() {
    while now_ms && ((NOW_MS < ${ENDS_AT[$1]:-0})); do sleep 0.05; done
}
comm_of() {
    case "$1" in
    consumer-*) echo inv-consumer ;;
    reconciler-*) echo inv-reconciler ;;
    zmq-ingest) echo inv-ingest ;;
    producer) echo inv- ;;
    nats-server) echo nats-server ;;
    esac
}
for line in "${SCHEDULE[@]}"; do
    read -r t act target arg <<<"$line"
    while :; do
        now_ms
        ((NOW_MS < T0_MS + t)) || break
        sleep 0.05
    done
    over_budget && die "fault budget of ${FAULT_BUDGET}s spent while injecting faults"
    now_ms
    late=$((NOW_MS - T0_MS - t))
    case "$act" in
    kill)
        comm=$(comm_of "$target")
        pid=""
        # a producer may be between two runs, a service restarting: wait up
        # to 5 s for it
        for ((w = 0; w < 50; w++)); do
            pid=$(pid_of "$target" "$comm") && break
            pid=""
            sleep 0.1
        done
        if [[ -n "$pid" ]]; then
            case "$target" in
            producer)
                what=$(cat "/proc/$pid/comm" 2>/dev/null || echo inv-)
                [[ "$what" == inv-ingest ]] && what="inv-ingest --file"
                ;;
            zmq-ingest) what="inv-ingest --zmq" ;;
            *) what=$comm ;;
            esac
            if kill -KILL "$pid" 2>/dev/null; then count "kill -9 $what"; fi
            log "kill -9 $what: $target (pid $pid) [planned $t ms, late ${late} ms]"
        else
            log "kill -9 $target: not running, skipped [planned $t ms]"
        fi
        ;;
    kill-supplier)
        # Supplier runs are short: wait in the background for the next one
        # (the kill is counted from its exit status, like every producer's).
        (
            last=""
            for ((w = 0; w < 1200; w++)); do
                kill -0 "$WORKER_PID" 2>/dev/null || break # no run to come
                if pid=$(pid_of producer inv-supplier) && [[ "$pid" != "$last" ]]; then
                    last=$pid
                    sleep "$((arg / 1000)).$(printf '%03d' $((arg % 1000)))"
                    if [[ "$(pid_of producer inv-supplier)" == "$pid" ]] &&
                        kill -KILL "$pid" 2>/dev/null; then
                        log "kill -9 inv-supplier: producer (pid $pid), ${arg} ms after it was seen [planned $t ms]"
                        exit 0
                    fi
                    log "kill -9 inv-supplier: pid $pid finished first, waiting for the next run"
                fi
                sleep 0.05
            done
            log "kill -9 inv-supplier: no supplier run came, skipped [planned $t ms]"
        ) &
        BG_PIDS+=($!)
        ;;
    nats-kill)
        ENDS_AT[nats-server]=$((NOW_MS + arg))
        if pid=$(<"$STACK_DIR/nats.pid") && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == nats-server ]]; then
            kill -KILL "$pid" && count "kill -9 nats-server"
            log "kill -9 nats-server (pid $pid), down ${arg} ms [planned $t ms, late ${late} ms]"
        else
            log "kill -9 nats-server: not running?"
        fi
        ;;
    leader-kill)
        ENDS_AT[nats-leader]=$((NOW_MS + arg))
        if cluster_state_within 20; then
            LEADER_KILLED=$LEADER K_SEQ=$LAST_SEQ K_FLOOR=$ACK_FLOOR
            now_ms
            K_MS=$NOW_MS
            "$STACK" cluster-kill "$LEADER" >>"$LOGS/stack.log" 2>&1 && count "kill -9 stream leader node"
            log "kill -9 $LEADER (INV_EVENTS leader; stream at seq $LAST_SEQ, ack floor $ACK_FLOOR), down ${arg} ms [planned $t ms, late ${late} ms]"
        else
            LEADER_FAILED="no INV_EVENTS leader known at the planned kill"
            log "kill -9 the INV_EVENTS leader: $LEADER_FAILED"
        fi
        ;;
    leader-start)
        hold_until nats-leader
        if [[ -n "$LEADER_KILLED" ]]; then
            # The pipeline must have gone on while the node was down: new
            # events stored (ingest) or acknowledged (consumers).
            if cluster_state_within 20; then
                now_ms
                LEADER_NOTE="killed $LEADER_KILLED, the INV_EVENTS leader, for $(((NOW_MS - K_MS) / 1000)) s; new leader $LEADER; meanwhile $((LAST_SEQ - K_SEQ)) events stored and the ack floor moved by $((ACK_FLOOR - K_FLOOR))"
                ((LAST_SEQ > K_SEQ || ACK_FLOOR > K_FLOOR)) ||
                    LEADER_FAILED="the pipeline stood still while $LEADER_KILLED was down ($LEADER_NOTE)"
            else
                LEADER_FAILED="no new INV_EVENTS leader $(((NOW_MS - K_MS) / 1000)) s after killing $LEADER_KILLED"
            fi
            log "cluster: ${LEADER_FAILED:-$LEADER_NOTE}"
            "$STACK" cluster-start "$LEADER_KILLED" >>"$LOGS/stack.log" 2>&1 ||
                die "$LEADER_KILLED did not restart (see $LOGS/stack.log)"
            log "$LEADER_KILLED restarted"
        fi
        ;;
    nats-start)
        hold_until nats-server
        "$STACK" nats-start >>"$LOGS/stack.log" 2>&1 || die "nats-server did not restart (see $LOGS/stack.log)"
        log "nats-server restarted"
        ;;
    pg-stop)
        ENDS_AT[postgres]=$((NOW_MS + arg))
        if "$STACK" pg-stop immediate >>"$LOGS/stack.log" 2>&1; then count "pg-stop immediate"; fi
        log "pg-stop immediate, down ${arg} ms [planned $t ms, late ${late} ms]"
        ;;
    pg-start)
        hold_until postgres
        "$STACK" pg-start >>"$LOGS/stack.log" 2>&1 || die "PostgreSQL did not restart (see $LOGS/stack.log)"
        log "PostgreSQL restarted"
        ;;
    stop)
        if [[ "$target" == nats-server ]]; then
            cp "$STACK_DIR/nats.pid" "$PIDS/nats-server" 2>/dev/null || true
        fi
        # a service may be restarting (its server was down): wait up to 10 s
        for ((w = 0; w < 100; w++)); do
            pid=$(pid_of "$target" "$(comm_of "$target")") && break
            pid=""
            sleep 0.1
        done
        if [[ -n "$pid" ]]; then
            now_ms
            ENDS_AT[$target]=$((NOW_MS + arg))
            kill -STOP "$pid" && count "SIGSTOP $(comm_of "$target")$([[ $target == zmq-ingest ]] && echo ' --zmq')"
            PAUSED[$target]=$pid
            log "SIGSTOP $target (pid $pid) for ${arg} ms [planned $t ms, late ${late} ms]"
        else
            log "SIGSTOP $target: not running, skipped"
        fi
        ;;
    cont)
        hold_until "$target"
        if [[ -n "${PAUSED[$target]:-}" ]]; then
            kill -CONT "${PAUSED[$target]}" 2>/dev/null || true
            log "SIGCONT $target (pid ${PAUSED[$target]})"
            unset "PAUSED[$target]"
        fi
        ;;
    esac
done
for pid in "${BG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
BG_PIDS=()
say "fault schedule done; waiting for the producers"

# ---------------------------------------------------------------- drain ---
wait_pid() { # wait_pid PID WHAT: its exit status, within the budget
    local pid=$1 what=$2
    while kill -0 "$pid" 2>/dev/null; do
        over_budget && die "$what still running when the budget of ${FAULT_BUDGET}s ran out"
        sleep 0.5
    done
    local rc=0
    wait "$pid" || rc=$?
    return "$rc"
}
wait_pid "$WORKER_PID" "the file and supplier producers" || {
    tail -n 5 "$RUN/producer-runs.txt" >&2
    die "a producer run never exited 0 (see $RUN/producer-runs.txt, $LOGS/producers.log)"
}
WORKER_PID=""
wait_pid "$CLIENT_PID" "fault_zmq_client" || {
    tail -n 5 "$LOGS/zmq-client.log" >&2
    die "fault_zmq_client did not get every event acknowledged (see $LOGS/zmq-client.log)"
}
CLIENT_PID=""
say "producers done: every file and supplier run exited 0, every ZeroMQ event acknowledged"

# Consumers idle: stock-applier has nothing pending and nothing unacked,
# twice in a row a second apart.
status_json() { "$RBIN/invctl" status --json 2>/dev/null | tr -d ' \n'; }
stable=0
while ((stable < 2)); do
    over_budget && die "consumers not drained within the budget ($(status_json))"
    sleep 1
    js=$(status_json) || js=""
    if [[ "$js" =~ \"pending\":([0-9]+),\"ack_pending\":([0-9]+) ]] &&
        ((BASH_REMATCH[1] == 0 && BASH_REMATCH[2] == 0)); then
        stable=$((stable + 1))
    else
        stable=0
    fi
done
now_ms
T_DRAINED_MS=$NOW_MS
say "consumers drained ($js)"
# Reconcilers settled: nothing dirty, no version left pending.
stable=0
while ((stable < 2)); do
    over_budget && die "reconcilers not settled within the budget ($settle)"
    sleep 1
    settle=$(psql_db -tAc "SELECT (SELECT count(*) FROM dirty) || ' dirty, ' ||
        (SELECT count(*) FROM channel_stock WHERE state = 'pending') || ' pending'" 2>/dev/null) || settle="?"
    if [[ "$settle" == "0 dirty, 0 pending" ]]; then stable=$((stable + 1)); else stable=0; fi
done
now_ms
T_SETTLED_MS=$NOW_MS
say "reconcilers settled ($settle)"
if ((CLUSTER)); then
    # the restarted node caught up: both followers of INV_EVENTS current
    CURRENT=0
    until cluster_state && ((CURRENT == 2)); do
        over_budget && die "INV_EVENTS followers not current within the budget (leader '${LEADER:-?}', $CURRENT of 2 current)"
        sleep 1
    done
    LEADER_NOTE+="; after the restart both followers of leader $LEADER are current"
    say "cluster: $LEADER_NOTE"
fi
stop_services
ledger=$(psql_db -tAc "SELECT count(*) FROM ledger")
dlq=$(status_json | sed -n 's/.*"dlq":\([0-9]*\).*/\1/p')

# ---------------------------------------------------------------- check ---
say "checking (fault_check)"
CHECK=("$RBIN/fault_check" "${CHECK_INPUTS[@]}" --zmq "$IN/zmq.jsonl" --zmq-acked "$RUN/zmq.acked"
    --supplier "$SUPPLIER" "${CHANNEL_ARGS[@]}" "${SAFETY_ARGS[@]}" --examples 10)
{
    echo "#!/usr/bin/env bash"
    echo "# the check of the run SEED=$SEED again (the stack must run: FAULT_KEEP=1)"
    printf 'export INV_NATS_URL=%q INV_PG_DSN=%q\n' "$INV_NATS_URL" "$INV_PG_DSN"
    printf '%q ' "${CHECK[@]}"
    echo '"$@"'
} >"$RUN/check.sh"
chmod +x "$RUN/check.sh"
check_rc=0
timeout -k 10 $((FAULT_BUDGET > 300 ? FAULT_BUDGET : 300)) "${CHECK[@]}" >"$LOGS/check.out" 2>&1 || check_rc=$?

# --------------------------------------------------------------- report ---
secs() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }
pipe_ms=$((T_DRAINED_MS - T0_MS))
settle_ms=$((T_SETTLED_MS - T0_MS))
total_us=$((${EPOCHREALTIME/./} - T_START))
file_attempts=$(grep -c '\.jsonl attempt' "$RUN/producer-runs.txt" || true)
sup_attempts=$(grep -c '\.csv attempt' "$RUN/producer-runs.txt" || true)
restarts=$(grep -c 'restarting' "$LOGS/supervisor.log" 2>/dev/null || true)
# A crash (a signal we did not send) or anything sidelined (the workload is
# all valid) is a bug even when the data comes out right.
crashes=$(grep -c 'CRASH' "$LOGS/supervisor.log" 2>/dev/null || true)
crashes=$((crashes + $(grep -Ec 'exit (129|13[0-68]|139|1[4-9][0-9]|2[0-9][0-9])$' "$RUN/producer-runs.txt" || true)))
{
    echo
    echo "== stockflow fault suite (make test-fault) =="
    echo "seed:      SEED=$SEED (make test-fault SEED=$SEED repeats this run)"
    echo "workload:  invctl gen --seed $SEED --events $EVENTS --skus $SKUS --locations $LOCATIONS:"
    echo "           $file_lines lines in $FILES inv-ingest --file runs ($file_attempts attempts),"
    echo "           $zmq_lines over ZeroMQ, $sup_records supplier CSV records in $SUP_DOCS inv-supplier runs ($sup_attempts attempts)"
    echo "pipeline:  $CONSUMERS inv-consumer, $RECONCILERS inv-reconciler, 3 channels; $restarts service restarts after kills"
    echo "nats:      $MODE"
    ((CLUSTER)) && echo "cluster:   ${LEADER_FAILED:-$LEADER_NOTE}"
    # A producer may finish just before its kill lands: count the runs that
    # really died of SIGKILL (exit 137).
    unset 'INJECTED[kill -9 inv-ingest --file]' 'INJECTED[kill -9 inv-supplier]'
    n=$(grep -c '\.jsonl attempt .* exit 137' "$RUN/producer-runs.txt" || true)
    ((n == 0)) || INJECTED["kill -9 inv-ingest --file"]=$n
    n=$(grep -c '\.csv attempt .* exit 137' "$RUN/producer-runs.txt" || true)
    ((n == 0)) || INJECTED["kill -9 inv-supplier"]=$n
    total=0
    for k in "${!INJECTED[@]}"; do total=$((total + INJECTED[$k])); done
    echo "faults:    $total injected"
    for k in "${!INJECTED[@]}"; do printf '           %-28s %d\n' "$k" "${INJECTED[$k]}"; done | sort
    echo "           (schedule: $RUN/schedule.txt, what happened: $LOGS/events.log)"
    echo "drained:   $ledger ledger rows, DLQ depth ${dlq:-?}; consumers idle $(secs "$pipe_ms") s and channels settled $(secs "$settle_ms") s after the producers started"
    echo "throughput: $((ledger * 1000 / (pipe_ms > 0 ? pipe_ms : 1))) events/s end to end under faults ($ledger events / $(secs "$pipe_ms") s)"
    echo "crashes:   $crashes (services or producers dying of a signal we did not send; cores in $RUN/cores)"
    echo "sidelined: ${dlq:-?} (INV_DLQ depth; the workload is all valid)"
    sed -n '/^fault_check: input/,$p' "$LOGS/check.out"
    echo "total time: $((total_us / 1000000)) s (budget $FAULT_BUDGET s)"
} | tee "$RUN/summary.txt"
# The five counts, one "test" each, for .ci/run's "N passed, N failed" total.
passed=0
failed=0
for k in 'lost' 'duplicated' 'unexpected' 'position drift' 'channel drift'; do
    v=$(sed -n "s/^$k: *\([0-9]*\).*/\1/p" "$LOGS/check.out")
    if [[ "$v" == 0 ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
((crashes == 0)) || failed=$((failed + 1))
if ((CLUSTER)); then
    if [[ -z "$LEADER_FAILED" && -n "$LEADER_KILLED" ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
fi
[[ "${dlq:-x}" == 0 ]] || failed=$((failed + 1))
if ((check_rc != 0 || failed != 0)); then
    echo "fault_check examples:" >&2
    grep -E '^  ' "$LOGS/check.out" | head -n 60 >&2 || true
    grep 'CRASH' "$LOGS/supervisor.log" >&2 || true
    RESULT="FAIL (fault_check exit $check_rc, $crashes crashes, DLQ depth ${dlq:-?}${LEADER_FAILED:+, $LEADER_FAILED})"
    echo "RESULT: $RESULT  SEED=$SEED"
    echo "$passed passed, $((failed > 0 ? failed : 1)) failed"
    RESULT_COUNTED=1
    exit 1
fi
echo "RESULT: PASS  SEED=$SEED"
echo "$passed passed, $failed failed"
