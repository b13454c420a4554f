#!/usr/bin/env bash
# run.sh: `make test-valgrind`. The four long-running daemons -- inv-ingest
# (--zmq and --file together, so it stays up until SIGTERM), inv-consumer,
# inv-reconciler (continuous) and inv-api -- run under valgrind memcheck on
# a private stack while EVENTS generated events (invctl gen) go through the
# whole pipeline: 90% from the file, 10% over ZeroMQ (fault_zmq_client),
# with API requests (good, bad key, bad path, /metrics) sent throughout.
# Once every event is in the ledger and the reconciler has settled, each
# daemon gets SIGTERM and must exit 0 with valgrind's clean report: no
# invalid access, no uninitialised use, no definitely lost block
# (--leak-check=full --errors-for-leak-kinds=definite). The shutdown is the
# normal one, so the leak check sees every resource released on the way
# out. Suppressions (tests/valgrind/stockflow.supp) only cover one-time
# allocations inside libraries, each with its reason.
#
# Environment (defaults): EVENTS=10000 (CI; `make test-valgrind
# EVENTS=100000` is the issue's 100k-event run), VG_BUDGET=1800 (seconds
# the run may take), BUILD, BIN, and the private stack's ports
# VG_NATS_PORT=20222 VG_NATS_MON_PORT=20223 VG_PG_PORT=20432, ZeroMQ ingest
# VG_ZMQ_PORT=20555, ops feed VG_OPS_PORT=20560 (and +1). Logs:
# var/valgrind-stack/run/<daemon>.vg.log. Last line "N passed, N failed"
# (one per daemon), exit 1 on any failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
T_START=$SECONDS
EVENTS=${EVENTS:-10000}
VG_BUDGET=${VG_BUDGET:-1800}
for v in EVENTS VG_BUDGET; do
    [[ "${!v}" =~ ^[0-9]{1,9}$ ]] || {
        echo "run.sh: $v must be a whole number, got '${!v}'" >&2
        exit 2
    }
done
BUILD=$(realpath -m "${BUILD:-build/default}")
BIN=$(realpath -m "${BIN:-bin}")
command -v valgrind >/dev/null || {
    echo "run.sh: valgrind is not installed (scripts/deps.sh installs it)" >&2
    exit 1
}

export STACK_DIR="$ROOT/var/valgrind-stack"
export NATS_PORT=${VG_NATS_PORT:-20222} NATS_MON_PORT=${VG_NATS_MON_PORT:-20223}
export PG_PORT=${VG_PG_PORT:-20432} PG_DB=stockflow
export INV_NATS_URL="nats://127.0.0.1:$NATS_PORT"
export INV_PG_DSN="host=127.0.0.1 port=$PG_PORT dbname=$PG_DB user=postgres"
ZMQ_ENDPOINT="tcp://127.0.0.1:${VG_ZMQ_PORT:-20555}"
OPS_PORT=${VG_OPS_PORT:-20560}
STACK="$ROOT/scripts/stack.sh"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
RUN="$STACK_DIR/run"

say() { echo "valgrind: $*"; }
die() {
    echo "valgrind: FAIL: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}
over_budget() { ((SECONDS - T_START >= VG_BUDGET)); }
psql_db() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$PG_DB" "$@"; }

declare -A PID=()
cleanup() {
    for name in "${!PID[@]}"; do
        kill -KILL "${PID[$name]}" 2>/dev/null || true
    done
    [[ -n "${CLIENT_PID:-}" ]] && kill -KILL "$CLIENT_PID" 2>/dev/null || true
    "$STACK" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

for exe in inv-ingest inv-consumer inv-reconciler inv-api invctl; do
    [[ -x "$BIN/$exe" ]] || die "$BIN/$exe missing (make fault-build)"
done
[[ -x "$BUILD/tests/fault/fault_zmq_client" ]] || die "$BUILD/tests/fault/fault_zmq_client missing (make fault-build)"

"$STACK" down >/dev/null 2>&1 || true
rm -rf "$STACK_DIR"
mkdir -p "$RUN"
"$STACK" up >"$RUN/stack.log" 2>&1 || {
    cat "$RUN/stack.log" >&2
    die "stack.sh up (log above, kept in $RUN/stack.log)"
}
cat >"$RUN/vg.ini" <<CONF
[ops]
endpoint = tcp://127.0.0.1:$OPS_PORT
sub_endpoint = tcp://127.0.0.1:$((OPS_PORT + 1))
CONF
INV() { "$BIN/invctl" --config "$RUN/vg.ini" "$@"; }
INV setup >"$RUN/setup.log" 2>&1 || die "invctl setup (see $RUN/setup.log)"
INV channel add web --buffer 2 --locations LOC-1,LOC-2,LOC-3 >/dev/null
INV channel add app --buffer 0 --locations LOC-2,LOC-4 >/dev/null
KEY=$(INV apikey add vg --scope read | grep '^sf_' | head -n 1)
ADMIN=$(INV apikey add vgadmin --scope admin | grep '^sf_' | head -n 1)
[[ -n "$KEY" && -n "$ADMIN" ]] || die "invctl apikey add"

say "generating $EVENTS events"
INV gen --seed 8 --events "$EVENTS" --skus 2000 --locations 5 --out "$RUN/all.jsonl"
awk -v dir="$RUN" 'NR % 10 == 0 { print > (dir "/zmq.jsonl"); next } { print > (dir "/file.jsonl") }' "$RUN/all.jsonl"
expected=$(sed -n 's/.*"event_id":"\([^"]*\)".*/\1/p' "$RUN/all.jsonl" | sort -u | wc -l)

VG=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --error-exitcode=99 --num-callers=30
    --suppressions="$ROOT/tests/valgrind/stockflow.supp" --gen-suppressions=all)
start() { # start NAME ARGS...: NAME under valgrind, log in $RUN/NAME.vg.log
    local name=$1
    shift
    "${VG[@]}" --log-file="$RUN/$name.vg.log" "$BIN/$name" --config "$RUN/vg.ini" "$@" \
        >"$RUN/$name.out" 2>&1 &
    PID[$name]=$!
}
start inv-api --listen 127.0.0.1:0 --threads 2
start inv-consumer
start inv-reconciler
start inv-ingest --zmq "$ZMQ_ENDPOINT" --file "$RUN/file.jsonl" --rejects "$RUN/rejects.txt"
api_port=""
while [[ -z "$api_port" ]]; do
    over_budget && die "inv-api did not start (see $RUN/inv-api.out)"
    kill -0 "${PID[inv-api]}" 2>/dev/null || die "inv-api exited at start (see $RUN/inv-api.out)"
    sleep 1
    api_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$RUN/inv-api.out" | head -n 1)
done
say "daemons up under valgrind (inv-api on port $api_port); ZeroMQ producer starts"
"$BUILD/tests/fault/fault_zmq_client" --endpoint "$ZMQ_ENDPOINT" --file "$RUN/zmq.jsonl" \
    --acked "$RUN/zmq.acked" --window 64 --timeout-ms 20000 --deadline "$VG_BUDGET" \
    >"$RUN/zmq-client.log" 2>&1 &
CLIENT_PID=$!

api() { # api PATH [KEY]: the status code
    curl -s -o /dev/null -w '%{http_code}' --max-time 30 ${2:+-H "Authorization: Bearer $2"} \
        "http://127.0.0.1:$api_port$1" || echo 000
}
api_round() {
    local s
    s=$(api /v1/stock/SKU-1 "$KEY")
    [[ "$s" == 200 || "$s" == 404 ]] || die "GET /v1/stock/SKU-1: $s"
    [[ "$(api /v1/stock/SKU-1 sf_nobody_xxx)" == 401 ]] || die "bad key not 401"
    [[ "$(api '/v1/stock/%zz' "$KEY")" == 400 ]] || die "bad path not 400"
    [[ "$(api '/v1/channels/web/stock?sku=SKU-1&sku=SKU-2' "$KEY")" == 200 ]] || die "channel batch"
    [[ "$(api /metrics "$ADMIN")" == 200 ]] || die "/metrics"
    # Check-and-reserve (the reserver's threads, api/reserve.h): a location
    # and a channel reservation with new keys, and the first one again.
    reserve "vg-$rounds-l" '{"ref":"vg-'"$rounds"'","sku":"SKU-1","qty":1,"location":"LOC-1","ttl_s":60}'
    reserve "vg-$rounds-c" '{"ref":"vg-'"$rounds"'","sku":"SKU-2","qty":1,"channel":"web","ttl_s":60}'
    reserve "vg-$rounds-l" '{"ref":"vg-'"$rounds"'","sku":"SKU-1","qty":1,"location":"LOC-1","ttl_s":60}'
}
reserve() { # reserve KEY BODY: 201 or 409, else die
    local s
    s=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H "Authorization: Bearer $ADMIN" \
        -H "Idempotency-Key: $1" -d "$2" "http://127.0.0.1:$api_port/v1/reservations" || echo 000)
    [[ "$s" == 201 || "$s" == 409 ]] || die "POST /v1/reservations $2: $s"
}

rounds=0
while :; do
    over_budget && die "not drained within ${VG_BUDGET}s (ledger $(psql_db -tAc 'SELECT count(*) FROM ledger'), expected $expected)"
    for name in "${!PID[@]}"; do
        kill -0 "${PID[$name]}" 2>/dev/null || die "$name exited early (see $RUN/$name.out, $RUN/$name.vg.log)"
    done
    api_round
    rounds=$((rounds + 1))
    sleep 2
    ledger=$(psql_db -tAc "SELECT count(*) FROM ledger WHERE source NOT IN ('reservation-expiry', 'inv-api')" 2>/dev/null || echo 0)
    ((ledger >= expected)) || continue
    kill -0 "$CLIENT_PID" 2>/dev/null && continue
    settle=$(psql_db -tAc "SELECT (SELECT count(*) FROM dirty) + (SELECT count(*) FROM channel_stock WHERE state = 'pending')")
    ((settle == 0)) && break
done
wait "$CLIENT_PID" || die "fault_zmq_client failed (see $RUN/zmq-client.log)"
CLIENT_PID=""
say "ledger holds all $expected distinct events after $((SECONDS - T_START)) s; $rounds rounds of API requests; stopping with SIGTERM"

pass=0 fail=0
for name in inv-ingest inv-api inv-reconciler inv-consumer; do
    kill -TERM "${PID[$name]}"
    rc=0
    for _ in $(seq 1 600); do
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "${PID[$name]}" 2>/dev/null; then
        kill -KILL "${PID[$name]}" 2>/dev/null || true
        rc=124
    fi
    wait "${PID[$name]}" || rc=$?
    unset "PID[$name]"
    log="$RUN/$name.vg.log"
    errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -n 1)
    definite=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -n 1)
    summary="exit $rc, ${errors:-?} errors, definitely lost ${definite:-0} bytes"
    if ((rc == 0)) && [[ "${errors:-x}" == 0 ]]; then
        echo "PASS $name: $summary"
        pass=$((pass + 1))
    else
        echo "FAIL $name: $summary (see $log)"
        grep -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|[0-9,]+ bytes in)' "$log" | head -n 5 || true
        fail=$((fail + 1))
    fi
done
say "$EVENTS events in $((SECONDS - T_START)) s"
echo "$pass passed, $fail failed"
((fail == 0))
