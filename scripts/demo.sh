#!/usr/bin/env bash
# demo.sh: the whole pipeline on a local stack, end to end (`make demo`).
#
# Starts nats-server (JetStream) and PostgreSQL under ./var on non-default
# loopback ports (scripts/stack.sh), runs `invctl setup`, feeds the sample
# stock, sales and returns in examples/ through inv-ingest and the sample
# supplier feeds of examples/suppliers/ (EDI 846 and 856, CSV, JSON lines)
# through inv-supplier's drop directory, runs two consumers until the
# stream is drained and the reconciler (channel availability, reservation
# expiry), prints the stock per location and per channel and leaves the
# stack running. Safe to run again: ids are stable, so a second run publishes
# nothing new (the counts say "duplicate" or "already published").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=${BIN:-bin}

scripts/stack.sh up >/dev/null
eval "$(scripts/stack.sh env)"

echo "== setup"
"$BIN/invctl" setup

echo
echo "== channels: web sells from DC-EAST and STORE-NYC (buffer 1), store-bos from STORE-BOS"
"$BIN/invctl" channel add web --buffer 1 --locations DC-EAST,STORE-NYC 2>/dev/null ||
    "$BIN/invctl" channel set web --buffer 1 --locations DC-EAST,STORE-NYC
"$BIN/invctl" channel add store-bos --locations STORE-BOS 2>/dev/null ||
    "$BIN/invctl" channel set store-bos --locations STORE-BOS

echo
echo "== ingest examples/ (sales, returns, receipts, a transfer, a count, orders reserving)"
for f in examples/stock.jsonl examples/sales.jsonl examples/returns.csv examples/orders.jsonl; do
    "$BIN/inv-ingest" --file "$f" --rejects var/demo-rejects.txt 2>/dev/null
done

echo
echo "== supplier feeds: examples/suppliers/ via the drop directory var/demo-drop/"
"$BIN/invctl" supplier-map import examples/suppliers/sku-map.csv
for f in acme:acme-846.edi globex:globex-856.edi initech:initech-stock.csv \
    umbrella:umbrella-stock.jsonl; do
    mkdir -p "var/demo-drop/inbox/${f%%:*}"
    cp "examples/suppliers/${f#*:}" "var/demo-drop/inbox/${f%%:*}/"
done
"$BIN/inv-supplier" --config examples/suppliers/suppliers.ini --watch var/demo-drop --once \
    2>>var/demo-suppliers.log
echo "   archived: $(cd var/demo-drop && find archive -type f | sort | tr '\n' ' ')"

drain() { # two consumers until the stream is drained, then the reconciler
    "$BIN/inv-consumer" --drain --name demo-consumer-1 2>>var/demo-consumers.log &
    local c1=$!
    "$BIN/inv-consumer" --drain --name demo-consumer-2 2>>var/demo-consumers.log &
    local c2=$!
    wait "$c1" "$c2"
    "$BIN/inv-reconciler" --drain 2>>var/demo-reconciler.log
}

echo
echo "== two consumers until the stream is drained, then the reconciler"
drain
"$BIN/invctl" status
echo
echo "== order-7003 reserved 2 LAMP-OAK-01 and was abandoned: its hold expired at 11:00 on the 23rd,"
echo "   the reconciler has just published its RELEASE (reservation-expiry); web was told:"
"$BIN/invctl" stock LAMP-OAK-01 | sed -n '/^channel/,$p'
drain
echo "   ... and once the RELEASE is applied, web can sell those 2 again:"
"$BIN/invctl" stock LAMP-OAK-01 | sed -n '/^channel/,$p'

echo
echo "== check-and-reserve: two checkouts race for the last LAMP-DEMO at STORE-NYC"
printf '%s\n' '{"event_id":"demo-lamp-last","kind":"RECEIPT","sku":"LAMP-DEMO","location":"STORE-NYC","qty":1,"occurred_at":"2026-11-24T09:00:00Z","source":"demo"}' \
    >var/demo-lamp.jsonl
"$BIN/inv-ingest" --file var/demo-lamp.jsonl 2>/dev/null
drain
RKEY=$("$BIN/invctl" apikey add "demo-checkout-$(date +%s)" --scope ingest 2>/dev/null | grep '^sf_')
"$BIN/inv-api" --listen 127.0.0.1:0 --threads 1 >var/demo-api.log 2>&1 &
API_PID=$!
for _ in $(seq 100); do
    API_ADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' var/demo-api.log)
    [[ -n "$API_ADDR" ]] && break
    sleep 0.1
done
checkout() { # order key: reserve 1 LAMP-DEMO for 15 minutes
    local out
    out=$(curl -s -w '%{http_code}' -X POST "http://$API_ADDR/v1/reservations" \
        -H "Authorization: Bearer $RKEY" -H "Idempotency-Key: $2" \
        -d "{\"ref\":\"$1\",\"sku\":\"LAMP-DEMO\",\"qty\":1,\"location\":\"STORE-NYC\",\"ttl_s\":900}")
    printf '   %s: HTTP %s %s\n' "$1" "${out: -3}" "$(tr -d '\n' <<<"${out%???}")"
}
checkout order-9001 demo-checkout-9001 # gets the last unit
checkout order-9002 demo-checkout-9002 # refused: 409, nothing reserved
echo "   order-9001 retries its request (same Idempotency-Key): the first answer again"
checkout order-9001 demo-checkout-9001
kill "$API_PID" 2>/dev/null || true
wait "$API_PID" 2>/dev/null || true
drain # the reconciler relays the RESERVE to INV_EVENTS and tells the channels
"$BIN/invctl" stock LAMP-DEMO

echo
echo "== stock per location and per channel"
for sku in TSHIRT-BLK-M MUG-WHT-12OZ LAMP-OAK-01 WIDGET-L SPROCKET-20 PAPER-A4 UMB-200; do
    "$BIN/invctl" stock "$sku"
    echo
done

# inv-api stays up with the stack, so the dashboard URL below works: on
# 127.0.0.1:8080 (DESIGN.md's default) unless DEMO_API_LISTEN says otherwise.
API_LISTEN=${DEMO_API_LISTEN:-127.0.0.1:8080}
if [[ -r var/inv-api.pid ]] && kill -0 "$(<var/inv-api.pid)" 2>/dev/null; then
    kill "$(<var/inv-api.pid)" 2>/dev/null || true # a previous demo's
    sleep 0.5
fi
DKEY=$("$BIN/invctl" apikey add "demo-dashboard-$(date +%s)" --scope read 2>/dev/null | grep '^sf_')
setsid "$BIN/inv-api" --listen "$API_LISTEN" >var/inv-api.log 2>&1 </dev/null &
echo $! >var/inv-api.pid
API_UP=""
for _ in $(seq 50); do
    grep -q 'listening on' var/inv-api.log 2>/dev/null && API_UP=1 && break
    kill -0 "$(<var/inv-api.pid)" 2>/dev/null || break
    sleep 0.1
done

cat <<MSG
== the stack is still running
   INV_NATS_URL=$INV_NATS_URL
   INV_PG_DSN=$INV_PG_DSN
   try: INV_PG_DSN="$INV_PG_DSN" $BIN/invctl stock TSHIRT-BLK-M --json
MSG
if [[ -n "$API_UP" ]]; then
    cat <<MSG
   inv-api (pid $(<var/inv-api.pid), log var/inv-api.log) with a read key made for you:
   dashboard: http://$API_LISTEN/dashboard?key=$DKEY
              (live throughput, lag, services, alerts, stock changes and lookup)
   stock API: curl -H "Authorization: Bearer $DKEY" http://$API_LISTEN/v1/stock/LAMP-OAK-01
   ops feed:  $BIN/invctl ops tail
   stop it with: kill \$(cat var/inv-api.pid); scripts/stack.sh down
MSG
else
    cat <<MSG
   inv-api did not start on $API_LISTEN (see var/inv-api.log; DEMO_API_LISTEN=HOST:PORT
   picks another address): start it with $BIN/inv-api --listen HOST:PORT, then open
   http://HOST:PORT/dashboard?key=$DKEY
   stop the stack with: scripts/stack.sh down
MSG
fi
