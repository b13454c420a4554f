#!/usr/bin/env bash
# scaling.sh: `make bench-scaling`. How the pipeline's two halves scale with
# the number of inv-consumer processes, on one nats-server (streams R1) and
# on a 3-node cluster (streams R3), on this machine:
#   ingest  inv-ingest --file of N events into an empty INV_EVENTS (no
#           consumer running): the publish rate JetStream acknowledges
#   apply   then CONSUMERS inv-consumer processes started together on that
#           backlog until stock-applier has nothing pending or unacked: the
#           rate events reach the ledger and positions (synchronous_commit on)
# for CONSUMERS in 1, 2 and 4. Every cell starts clean (empty store, fresh
# database, setup with the replicas of its row). docs/operations.md keeps the
# table. With 2 cores shared by everything, the figures measure contention
# as much as scaling: the load average before each cell is printed with it.
#
# Environment (defaults): N=200000, SEED=1, COUNTS="1 2 4", REPLICAS="1 3",
# BUILD, BIN. Private stack: STACK_DIR=var/scaling-stack, NATS 33222 (cluster
# 33222-33224, routes +2000, monitors +4000; single-node monitor 33299),
# PostgreSQL 33432; stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

N=${N:-200000}
SEED=${SEED:-1}
COUNTS=${COUNTS:-1 2 4}
REPLICAS=${REPLICAS:-1 3}
for v in N SEED; do
    [[ "${!v}" =~ ^[0-9]+$ ]] && ((${!v} >= 1)) || {
        echo "scaling.sh: $v must be a positive integer" >&2
        exit 2
    }
done
BIN=$(realpath -m -- "${BIN:-bin}")
for exe in inv-ingest inv-consumer invctl; do
    [[ -x "$BIN/$exe" ]] || {
        echo "scaling.sh: $BIN/$exe not built (make)" >&2
        exit 1
    }
done

export STACK_DIR="$ROOT/var/scaling-stack"
export NATS_PORT=30522 NATS_MON_PORT=30523 PG_PORT=30532 PG_DB=stockflow
unset CLUSTER_PORTS CLUSTER_ROUTE_PORTS CLUSTER_MON_PORTS INV_OPS_ENDPOINT
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
STACK="$ROOT/scripts/stack.sh"
export INV_PG_DSN="host=127.0.0.1 port=$PG_PORT dbname=$PG_DB user=postgres"
LOGS="$STACK_DIR/logs"
EVENTS="$STACK_DIR/events.jsonl"
CONF="$STACK_DIR/scaling.ini"

say() { echo "scaling: $*" >&2; }
die() {
    echo "scaling: FAILED: $*" >&2
    exit 1
}
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
psql_db() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }

consumer_pids=()
stop_consumers() {
    local pid
    for pid in "${consumer_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${consumer_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    consumer_pids=()
}
cleanup() {
    local rc=$?
    stop_consumers
    "$STACK" cluster down >/dev/null 2>&1 || true
    "$STACK" down >/dev/null 2>&1 || true
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# reset R: an empty JetStream (one server for R=1, the cluster for R=3), a
# fresh database, setup with R replicas.
reset() {
    local r=$1
    stop_consumers
    "$STACK" nats-stop >/dev/null 2>&1 || true
    "$STACK" cluster down >/dev/null 2>&1 || true
    rm -rf "$STACK_DIR/nats" "$STACK_DIR/cluster"
    if ((r == 1)); then
        export INV_NATS_URL="nats://127.0.0.1:$NATS_PORT"
        "$STACK" nats-start >>"$LOGS/stack.log" 2>&1 || die "nats-server did not start (see $LOGS/stack.log)"
    else
        export INV_NATS_URL="nats://127.0.0.1:$NATS_PORT,nats://127.0.0.1:$((NATS_PORT + 1)),nats://127.0.0.1:$((NATS_PORT + 2))"
        "$STACK" cluster up >>"$LOGS/stack.log" 2>&1 || die "cluster did not start (see $LOGS/stack.log)"
    fi
    psql_db -d postgres -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" -c "CREATE DATABASE $PG_DB" \
        -c "CHECKPOINT" >/dev/null || die "cannot re-create database $PG_DB"
    printf '[nats]\nreplicas = %d\n' "$r" >"$CONF"
    local i
    for ((i = 0; i < 10; i++)); do # a fresh cluster may still be electing
        "$BIN/invctl" --config "$CONF" setup >>"$LOGS/setup.log" 2>&1 && break
        sleep 2
    done
    ((i < 10)) || die "invctl setup failed (see $LOGS/setup.log)"
    sync
}

# drained: stock-applier has nothing pending and nothing unacknowledged.
drained() {
    local js
    js=$("$BIN/invctl" status --json 2>/dev/null | tr -d ' \n') || return 1
    [[ "$js" =~ \"pending\":([0-9]+),\"ack_pending\":([0-9]+) ]] &&
        ((BASH_REMATCH[1] == 0 && BASH_REMATCH[2] == 0))
}

say "private stack in $STACK_DIR; N=$N events (invctl gen --seed $SEED)"
"$STACK" wipe >/dev/null 2>&1 || true
rm -rf "$STACK_DIR"
mkdir -p "$LOGS"
"$STACK" pg-start >>"$LOGS/stack.log" 2>&1 || die "PostgreSQL did not start (see $LOGS/stack.log)"
"$BIN/invctl" gen --seed "$SEED" --events "$N" --skus 10000 --locations 10 --out "$EVENTS" ||
    die "invctl gen"

ROWS=()
for r in $REPLICAS; do
    for c in $COUNTS; do
        reset "$r"
        load=$(cut -d' ' -f1 /proc/loadavg)
        t0=$(now_ms)
        "$BIN/inv-ingest" --file "$EVENTS" >"$LOGS/ingest-r$r-c$c.log" 2>&1 ||
            die "inv-ingest R$r (see $LOGS/ingest-r$r-c$c.log)"
        t1=$(now_ms)
        stored=$("$BIN/invctl" status --json | tr -d ' \n' | sed -n 's/.*"events":\([0-9]*\).*/\1/p')
        for ((i = 1; i <= c; i++)); do
            "$BIN/inv-consumer" --name "scale-$i" >"$LOGS/consumer-r$r-c$c-$i.log" 2>&1 &
            consumer_pids+=($!)
        done
        t2=$(now_ms)
        until drained; do
            (($(now_ms) - t2 < 600000)) || die "R$r, $c consumers: not drained in 600 s"
            sleep 0.2
        done
        t3=$(now_ms)
        stop_consumers
        ledger=$(psql_db -d "$PG_DB" -tAc "SELECT count(*) FROM ledger")
        ((ledger == stored)) || die "R$r, $c consumers: $ledger ledger rows for $stored stored events"
        ingest=$((N * 1000 / (t1 - t0 > 0 ? t1 - t0 : 1)))
        apply=$((ledger * 1000 / (t3 - t2 > 0 ? t3 - t2 : 1)))
        row=$(printf '| R%d | %d | %d | %d | %d | %s |' "$r" "$c" "$stored" "$ingest" "$apply" "$load")
        say "$row"
        ROWS+=("$row")
    done
done

echo
echo "== stockflow scaling (bench/scaling.sh, N=$N, $(nproc) cores, $(date -u +%Y-%m-%d)) =="
echo "| streams | consumers | events stored | ingest events/s | apply events/s | load avg before |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
