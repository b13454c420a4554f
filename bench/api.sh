#!/usr/bin/env bash
# api.sh: `make bench-api`. GET /v1/stock/{sku} of inv-api against its raw
# limit, a static reply from the same library (bench/static_http.c: libevent
# evhttp, the same threads, the same headers, one fixed body: a real reply
# of this data set), measured in the same run with the same wrk load, the
# same requests included (wrk's Lua script costs wrk CPU on these 2 cores):
#   wrk -t2 -c50 -d10s, loopback, a random sku per request with the key
#   (var/bench-api-stack/api.lua); static_http ignores path and key.
# It prints req/s and p99 of each, and the ratio api / static (target
# >= 0.80 with p99 <= 5 ms), and each server's CPU per request (its
# user+system time over the requests it served; a shared machine moves it
# far less than req/s), RUNS times alternating, then the medians; then
# one run with the read model off (--refresh-ms 0: every read asks
# PostgreSQL, as before), and the read model's freshness: the time from a
# committed position update to the API showing it (SAMPLES updates, curl
# polling every ~5 ms, so the figure is coarse by a few ms).
#
# Data: SKUS skus x LOCATIONS locations = 100000 positions by default,
# written with one INSERT ... SELECT (generate_series), 10 locations with
# safety stock, channels web (every location, buffer 2) and pos (2 of them),
# and one 'sent' channel_stock row per sku for web (so "published" is filled).
#
# Environment (defaults): RUNS=3, DURATION=10s, CONNECTIONS=50,
# WRK_THREADS=2, THREADS=2 (inv-api --threads and static_http --threads),
# SKUS=10000, LOCATIONS=10, SAMPLES=10, BIN=bin, BUILD=build/default,
# BENCH_KEEP=1 leaves the stack running. Private stack var/bench-api-stack:
# NATS 34422 (monitor 38422), PostgreSQL 35532; stopped on exit.
#
# Exit 0 when every measurement completed, whatever the ratio (a
# measurement, not a test); 1 on an error (a non-2xx reply, a socket error,
# a service that died).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
WRK_THREADS=${WRK_THREADS:-2}
THREADS=${THREADS:-2}
SKUS=${SKUS:-10000}
LOCATIONS=${LOCATIONS:-10}
SAMPLES=${SAMPLES:-10}
for v in RUNS CONNECTIONS WRK_THREADS THREADS SKUS LOCATIONS SAMPLES; do
    if ! [[ "${!v}" =~ ^[0-9]+$ ]] || ((${!v} < 1)); then
        echo "api.sh: $v must be a positive integer, got '${!v}'" >&2
        exit 2
    fi
done
BIN=$(realpath -m -- "${BIN:-bin}")
BUILD=$(realpath -m -- "${BUILD:-build/default}")
STATIC="$BUILD/bench/static_http"
for exe in "$BIN/inv-api" "$BIN/invctl" "$STATIC"; do
    [[ -x "$exe" ]] || {
        echo "api.sh: $exe not built (make bench-build)" >&2
        exit 1
    }
done
for tool in wrk curl psql; do
    command -v "$tool" >/dev/null || {
        echo "api.sh: $tool is needed (scripts/deps.sh installs it)" >&2
        exit 1
    }
done

export STACK_DIR="$ROOT/var/bench-api-stack"
export NATS_PORT=30222 NATS_MON_PORT=30223 PG_PORT=30232 PG_DB=stockflow
STACK="$ROOT/scripts/stack.sh"
LOGS="$STACK_DIR/logs"
# One key drives the whole load: lift its request rate limit ([api]
# rate_per_key, default 1000/s), which would otherwise be what is measured.
API_CONF="$STACK_DIR/bench-api.ini"
pids=()

say() { echo "bench-api: $*" >&2; }
die() {
    say "FAILED: $*"
    exit 1
}
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ "${BENCH_KEEP:-}" == 1 ]] || "$STACK" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$STACK" wipe >/dev/null 2>&1 || true
rm -rf "$STACK_DIR"
mkdir -p "$LOGS"
printf "[api]\nrate_per_key = 1000000\nburst = 1000000\n" >"$API_CONF"
"$STACK" up >/dev/null 2>>"$LOGS/stack.log" || die "stack.sh up (see $LOGS/stack.log)"
eval "$("$STACK" env)"
q() { psql -X -q -tA -v ON_ERROR_STOP=1 "$INV_PG_DSN" -c "$1"; }
"$BIN/invctl" setup >"$LOGS/setup.log" 2>&1 || die "invctl setup (see $LOGS/setup.log)"

# ------------------------------------------------------------------ data ---
t0=$(date +%s%N)
q "INSERT INTO locations (location, safety_stock)
     SELECT 'LOC-' || l, l % 3 FROM generate_series(0, $LOCATIONS - 1) l;
   INSERT INTO channels (channel, buffer) VALUES ('web', 2), ('pos', 0);
   INSERT INTO channel_locations (channel, location)
     SELECT 'web', 'LOC-' || l FROM generate_series(0, $LOCATIONS - 1) l;
   INSERT INTO channel_locations (channel, location)
     SELECT 'pos', 'LOC-' || l FROM generate_series(0, LEAST(1, $LOCATIONS - 1)) l;
   INSERT INTO positions (sku, location, on_hand, reserved, inbound, damaged, version)
     SELECT 'SKU-' || lpad(s::text, 6, '0'), 'LOC-' || l, (s * 7 + l * 13) % 50 - 5,
            (s + l) % 4, (s * l) % 9 - 2, (s + 2 * l) % 3, 1
     FROM generate_series(1, $SKUS) s, generate_series(0, $LOCATIONS - 1) l;
   INSERT INTO channel_stock (channel, sku, version, ats, state, computed_at, sent_at)
     SELECT 'web', 'SKU-' || lpad(s::text, 6, '0'), 1, s % 100, 'sent',
            (extract(epoch FROM now()) * 1000)::bigint, now()
     FROM generate_series(1, $SKUS) s;
   ANALYZE;" || die "loading the data"
npos=$(q "SELECT count(*) FROM positions")
say "loaded $npos positions ($SKUS skus x $LOCATIONS locations) in $((($(date +%s%N) - t0) / 1000000)) ms"

key=$("$BIN/invctl" apikey add bench --scope read 2>>"$LOGS/apikey.log" | grep '^sf_' | head -n 1)
[[ -n "$key" ]] || die "invctl apikey add (see $LOGS/apikey.log)"

LUA="$STACK_DIR/api.lua"
cat >"$LUA" <<EOF
-- a random sku per request; a non-2xx reply is counted by wrk as an error
math.randomseed(1)
local n = $SKUS
request = function()
    return wrk.format("GET", string.format("/v1/stock/SKU-%06d", math.random(1, n)),
        { ["Authorization"] = "Bearer $key" })
end
EOF

# start_logged NAME CMD...: start CMD in the background with its output in
# $LOGS/NAME.log; waits for its "listening on 127.0.0.1:PORT"; sets PORT
# and LASTPID.
start_logged() {
    local name=$1
    shift
    "$@" >"$LOGS/$name.log" 2>&1 &
    LASTPID=$!
    pids+=("$LASTPID")
    local i
    for ((i = 0; i < 300; i++)); do
        PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$LOGS/$name.log" | head -n 1 | sed 's/.*://') || true
        [[ -n "$PORT" ]] && return 0
        kill -0 "$LASTPID" 2>/dev/null || die "$name exited (see $LOGS/$name.log)"
        sleep 0.05
    done
    die "$name did not start (see $LOGS/$name.log)"
}
stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# cpu_ticks PID: user + system clock ticks of PID (all its threads).
cpu_ticks() { awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# wrk_run NAME PORT PID [ARGS]: one measurement; prints "req/s p99_ms
# cpu_us_per_request" (the server PID's CPU over the requests it served:
# a figure the other tenants of the machine move much less than req/s)
# and fails on socket errors or non-2xx replies.
wrk_run() {
    local name=$1 port=$2 pid=$3 out c0 c1
    shift 3
    out="$LOGS/wrk-$name.txt"
    c0=$(cpu_ticks "$pid")
    wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" \
        "http://127.0.0.1:$port/" >"$out" 2>&1 || die "wrk $name (see $out)"
    c1=$(cpu_ticks "$pid")
    if grep -q 'Non-2xx\|Socket errors' "$out"; then
        die "wrk $name had errors: $(grep 'Non-2xx\|Socket errors' "$out" | tr -s ' ')"
    fi
    local rps p99
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
                             else if (v ~ /ms$/) { sub(/ms$/, "", v) }
                             else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
                             printf "%.2f", v }' "$out")
    [[ -n "$rps" && -n "$p99" ]] || die "wrk $name: no figures (see $out)"
    local total
    total=$(awk '/requests in/ { print $1 }' "$out")
    echo "$rps $p99 $(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$total" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ------------------------------------------------------------- inv-api ---
start_logged api "$BIN/inv-api" --config "$API_CONF" --listen 127.0.0.1:0 --threads "$THREADS"
API_PID=$LASTPID API_PORT=$PORT
for ((i = 0; i < 600; i++)); do
    curl -s -H "Authorization: Bearer $key" "http://127.0.0.1:$API_PORT/metrics" |
        grep -q '^inv_api_read_model_current 1$' && break
    sleep 0.05
done
((i < 600)) || die "the read model did not load in 30 s (see $LOGS/api.log)"
grep -o 'read model: loaded.*' "$LOGS/api.log" | head -n 1 | sed 's/^/bench-api: /' >&2

BODY="$STACK_DIR/body.json"
curl -sf -H "Authorization: Bearer $key" "http://127.0.0.1:$API_PORT/v1/stock/SKU-000001" \
    >"$BODY" || die "GET /v1/stock/SKU-000001"
start_logged static "$STATIC" --listen 127.0.0.1:0 --threads "$THREADS" --body "$BODY"
STATIC_PORT=$PORT STATIC_PID=$LASTPID
say "inv-api :$API_PORT and static_http :$STATIC_PORT, $THREADS threads each; reply $(wc -c <"$BODY") bytes"
say "wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION, $RUNS runs each, alternating"

ratios=()
cratios=()
printf '%-4s %-32s %-32s %-6s %-6s %s\n' run "inv-api req/s (p99 ms, cpu us/req)" \
    "static req/s (p99 ms, cpu us/req)" ratio cpu load-before
for ((r = 1; r <= RUNS; r++)); do
    la=$(loadavg)
    res=$(wrk_run "api-$r" "$API_PORT" "$API_PID" -s "$LUA")
    read -r a_rps a_p99 a_cpu <<<"$res"
    res=$(wrk_run "static-$r" "$STATIC_PORT" "$STATIC_PID" -s "$LUA")
    read -r s_rps s_p99 s_cpu <<<"$res"
    ratio=$(awk -v a="$a_rps" -v s="$s_rps" 'BEGIN { printf "%.2f", a / s }')
    cratio=$(awk -v a="$a_cpu" -v s="$s_cpu" 'BEGIN { printf "%.2f", s / a }')
    ratios+=("$ratio")
    cratios+=("$cratio")
    printf '%-4s %-32s %-32s %-6s %-6s %s\n' "$r" "$a_rps ($a_p99, $a_cpu)" "$s_rps ($s_p99, $s_cpu)" \
        "$ratio" "$cratio" "$la"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
cmedian=$(printf '%s\n' "${cratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
echo "median ratio inv-api / static: req/s $median (target >= 0.80, p99 <= 5 ms); CPU per request, static / inv-api: $cmedian"
kill -0 "$API_PID" 2>/dev/null || die "inv-api died (see $LOGS/api.log)"
curl -s -H "Authorization: Bearer $key" "http://127.0.0.1:$API_PORT/metrics" |
    grep '^inv_api_read_model_' | tr '\n' ' ' | sed 's/^/read model: /; s/ $/\n/'

# ----------------------------------------------------------- freshness ---
# SAMPLES updates of one position, each committed by psql; the time until
# GET shows the new on_hand.
want_sku=SKU-000042
fresh=()
for ((i = 1; i <= SAMPLES; i++)); do
    v=$(q "UPDATE positions SET on_hand = on_hand + 1, version = version + 1, updated_at = now()
           WHERE sku = '$want_sku' AND location = 'LOC-0' RETURNING on_hand")
    t0=$(date +%s%N)
    for ((k = 0; k < 2000; k++)); do
        got=$(curl -s -H "Authorization: Bearer $key" "http://127.0.0.1:$API_PORT/v1/stock/$want_sku" |
            grep -o '"location":"LOC-0","on_hand":-\{0,1\}[0-9]*' | sed 's/.*://')
        [[ "$got" == "$v" ]] && break
        sleep 0.005
    done
    [[ "$got" == "$v" ]] || die "update $i of $want_sku never showed"
    fresh+=($((($(date +%s%N) - t0) / 1000000)))
    sleep 0.$((RANDOM % 9 + 1)) # land anywhere in the refresh period
done
printf '%s\n' "${fresh[@]}" | sort -n | awk '{ v[NR] = $1; s += $1 }
    END { printf "freshness, commit -> API: mean %.0f ms, p50 %d ms, max %d ms (%d updates; refresh 100 ms)\n",
          s / NR, v[int((NR + 1) / 2)], v[NR], NR }'
stop_pid "$API_PID"

# ------------------------------------------------- the read model off ---
start_logged api-direct "$BIN/inv-api" --config "$API_CONF" --listen 127.0.0.1:0 --threads "$THREADS" --refresh-ms 0
DIRECT_PID=$LASTPID
res=$(wrk_run direct "$PORT" "$DIRECT_PID" -s "$LUA")
read -r d_rps d_p99 d_cpu <<<"$res"
echo "read model off (--refresh-ms 0, one PostgreSQL query per request): $d_rps req/s (p99 $d_p99 ms; inv-api's own cpu $d_cpu us/req, PostgreSQL's not counted)"
stop_pid "$DIRECT_PID"
