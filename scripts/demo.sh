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
echo "== stock per location and per channel"
for sku in TSHIRT-BLK-M MUG-WHT-12OZ LAMP-OAK-01 WIDGET-L SPROCKET-20 PAPER-A4 UMB-200; do
    "$BIN/invctl" stock "$sku"
    echo
done

cat <<MSG
== the stack is still running
   INV_NATS_URL=$INV_NATS_URL
   INV_PG_DSN=$INV_PG_DSN
   try: INV_PG_DSN="$INV_PG_DSN" $BIN/invctl stock TSHIRT-BLK-M --json
   stock API: KEY=\$($BIN/invctl apikey add me --scope read | tail -n 1); $BIN/inv-api &
              curl -H "Authorization: Bearer \$KEY" localhost:8080/v1/stock/LAMP-OAK-01
   ops feed:  $BIN/invctl ops tail   (inv-api runs the feed's proxy)
   dashboard: with inv-api running as above, open http://127.0.0.1:8080/dashboard?key=\$KEY
              (live throughput, lag, services, alerts, stock changes and lookup)
   stop it with: scripts/stack.sh down
MSG
