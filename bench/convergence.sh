#!/usr/bin/env bash
# convergence.sh: the eventual-consistency bound of the channels, measured
# (`make bench` runs it after pipeline.sh; bench/README.md explains it).
#
# RUNS bursts of N generated events each go through inv-ingest, two
# inv-consumer and one inv-reconciler running continuously (as in
# production). After each burst the script waits until nothing is pending
# anywhere, then reads, exactly and after the fact:
#   t_commit  the commit time of the last ledger transaction of the burst
#             (track_commit_timestamp, stack.sh turns it on);
#   t_told    the latest sent_at in channel_stock: the reconciler records it
#             right after JetStream acknowledged the last ChannelStock;
# and checks that every channel's latest published version equals the ats
# recomputed from the positions, which the audit ties to the ledger. The
# convergence time of the burst is t_told - t_commit (0 if the last commits
# changed no channel). It prints every run, then p50, p99 and max.
#
# Environment (defaults): N=100000, RUNS=5, SEED=100, SKUS=10000,
# LOCATIONS=10, BATCH (consumer batch, its default), BENCH_KEEP=1 keeps the
# stack. Private stack var/conv-stack: NATS 44222 (monitor 48222), PostgreSQL
# 45432. Exit 0 when every run converged to the right values (whatever the
# time: a measurement, not a test), 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${N:-100000}
RUNS=${RUNS:-5}
SEED=${SEED:-100}
SKUS=${SKUS:-10000}
LOCATIONS=${LOCATIONS:-10}
BIN=$(realpath -m -- "${BIN:-bin}")
for exe in inv-ingest inv-consumer inv-reconciler invctl; do
    [[ -x "$BIN/$exe" ]] || {
        echo "convergence.sh: $BIN/$exe not built (make all)" >&2
        exit 1
    }
done

export STACK_DIR="$ROOT/var/conv-stack"
export NATS_PORT=30422 NATS_MON_PORT=30423 PG_PORT=30432 PG_DB=stockflow
STACK="$ROOT/scripts/stack.sh"
LOGS="$STACK_DIR/logs"
pids=()

say() { echo "convergence: $*" >&2; }
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
"$STACK" up >/dev/null 2>>"$LOGS/stack.log" || die "stack.sh up (see $LOGS/stack.log)"
eval "$("$STACK" env)"
q() { psql -X -q -tA -v ON_ERROR_STOP=1 "$INV_PG_DSN" -c "$1"; }
[[ "$(q 'SHOW track_commit_timestamp')" == on ]] || die "track_commit_timestamp is off"
"$BIN/invctl" setup >"$LOGS/setup.log" 2>&1 || die "invctl setup (see $LOGS/setup.log)"

# Three channels over the generator's locations LOC-0..LOC-9, with buffers
# and safety stock, so every formula term is exercised.
last=$((LOCATIONS - 1))
all=$(seq -s, -f 'LOC-%g' 0 "$last")
"$BIN/invctl" channel add web --buffer 2 --locations "$all" >/dev/null
"$BIN/invctl" channel add marketplace --buffer 5 --locations "LOC-0,LOC-1,LOC-2" >/dev/null
"$BIN/invctl" channel add pos --buffer 0 --locations "LOC-$last" >/dev/null
"$BIN/invctl" location set LOC-0 --safety-stock 3 >/dev/null

for i in 1 2; do
    "$BIN/inv-consumer" --name "conv-consumer-$i" >"$LOGS/consumer-$i.log" 2>&1 &
    pids+=($!)
done
"$BIN/inv-reconciler" >"$LOGS/reconciler.log" 2>&1 &
pids+=($!)

# Everything applied and told: no lag on stock-applier, nothing dirty,
# nothing pending.
settled() {
    local js
    js=$("$BIN/invctl" status --json 2>/dev/null | tr -d ' \n')
    [[ "$js" == *'"pending":0,"ack_pending":0'* ]] || return 1
    [[ "$(q "SELECT (SELECT count(*) FROM dirty) + (SELECT count(*) FROM channel_stock WHERE state = 'pending')")" == 0 ]]
}

results=()
printf '\n== stockflow channel convergence (bench/convergence.sh) ==\n'
printf 'machine: %s cpus, %s; N=%s events a burst, %s runs, %s skus x %s locations, 3 channels\n\n' \
    "$(nproc)" "$(uname -r)" "$N" "$RUNS" "$SKUS" "$LOCATIONS"
printf '  %-4s %10s %12s %12s %14s\n' run "events/s*" "last commit" "last told" "convergence"
for ((r = 1; r <= RUNS; r++)); do
    file="$STACK_DIR/burst-$r.jsonl"
    "$BIN/invctl" gen --seed $((SEED + r)) --events "$N" --skus "$SKUS" --locations "$LOCATIONS" \
        --out "$file"
    mark=$(q "SELECT now()")
    t0=$EPOCHREALTIME
    "$BIN/inv-ingest" --file "$file" >"$LOGS/ingest-$r.log" 2>&1 || die "inv-ingest run $r"
    deadline=$((SECONDS + 300))
    until settled; do
        ((SECONDS < deadline)) || die "run $r did not settle in 300 s"
        sleep 0.2
    done
    t1=$EPOCHREALTIME
    read -r commit told conv < <(q "
        WITH c AS (SELECT max(pg_xact_commit_timestamp(xmin)) AS t FROM ledger
                   WHERE received_at >= '$mark'),
             s AS (SELECT max(sent_at) AS t FROM channel_stock)
        SELECT to_char(c.t, 'HH24:MI:SS.MS'), to_char(s.t, 'HH24:MI:SS.MS'),
               GREATEST(0, extract(epoch FROM s.t - c.t))::numeric(10,3)
        FROM c, s" | tr '|' ' ')
    wrong=$(q "
        WITH latest AS (SELECT DISTINCT ON (channel, sku) channel, sku, ats FROM channel_stock
                        ORDER BY channel, sku, version DESC),
             want AS (SELECT * FROM sf_channel_ats(ARRAY(SELECT DISTINCT sku FROM positions)))
        SELECT count(*) FROM want w LEFT JOIN latest l USING (channel, sku)
        WHERE COALESCE(l.ats, 0) <> w.ats")
    ((wrong == 0)) || die "run $r: $wrong (channel, sku) published values differ from the stock"
    distinct=$(q "SELECT count(*) FROM ledger WHERE received_at >= '$mark'")
    rate=$(awk "BEGIN { printf \"%.0f\", $distinct / ($t1 - $t0) }")
    printf '  %-4s %10s %12s %12s %12s s\n' "$r" "$rate" "$commit" "$told" "$conv"
    results+=("$conv")
done

sorted=$(printf '%s\n' "${results[@]}" | sort -n)
pct() { # pct P: nearest-rank percentile of the runs
    local n=${#results[@]} k
    k=$(awk "BEGIN { k = int(($1 / 100) * $n + 0.999999); print (k < 1) ? 1 : k }")
    sed -n "${k}p" <<<"$sorted"
}
printf '\n  convergence after a burst of %s events: p50 %s s, p99 %s s, max %s s (target <= 1 s)\n' \
    "$N" "$(pct 50)" "$(pct 99)" "$(tail -n 1 <<<"$sorted")"
printf '  every run: each channel'"'"'s latest published ats = the ats recomputed from positions\n'
printf '  logs: %s\n\n' "$LOGS"
