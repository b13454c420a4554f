#!/usr/bin/env bash
# stack.sh: the local stack stockflow runs against: one nats-server with
# JetStream and one PostgreSQL 15 cluster, data under $STACK_DIR, loopback
# only, non-default ports so it never collides with a system service.
#
# usage: stack.sh up [--secure] | down | status | env [--service NAME] | wipe
#                 nats-start [--secure] | nats-stop [kill] | pg-start | pg-stop [immediate]
#                 users                      (secured broker: user names, no passwords)
#                 cluster up | down | status
#                 cluster-kill N | cluster-start N      (N = 1, 2, 3 or n1..n3)
#
# Environment (defaults):
#   STACK_DIR=var        relative paths are taken from the repository root
#   NATS_PORT=14222  NATS_MON_PORT=18222  PG_PORT=15432  PG_DB=stockflow
#   PG_BIN=/usr/lib/postgresql/15/bin  STACK_TIMEOUT=30 (seconds per wait)
#   PG_DIR (default $STACK_DIR/pg)
#   Cluster: CLUSTER_PORTS (client ports of n1,n2,n3; default NATS_PORT,
#   NATS_PORT+1, NATS_PORT+2), CLUSTER_ROUTE_PORTS (default client + 2000),
#   CLUSTER_MON_PORTS (default client + 4000), CLUSTER_NAME=stockflow.
#
# Secured broker (`up --secure`, `nats-start --secure` or STACK_SECURE=1;
# docs/security.md "Broker accounts and permissions"): the single nats-server
# runs with $STACK_DIR/nats-secure.conf, one account with JetStream and one
# user per service (invctl, inv-ingest, inv-consumer, inv-reconciler, inv-api,
# supplier-<id>), each allowed only its own subjects; anonymous clients are
# refused. Passwords are random, made once and kept in $STACK_DIR/nats-users
# (mode 600, "user password" lines), so a restart keeps them; the mode sticks
# to the stack dir until `wipe`. `env --service NAME` prints that service's
# INV_NATS_URL (nats://NAME:PASSWORD@host:port); plain `env` prints invctl's.
# A supplier's locations come from STACK_SUPPLIERS ("id:LOC1,LOC2 id2:LOC3")
# or, by default, from the location / location_map values of each
# [supplier.<id>] in STACK_SUPPLIERS_INI (examples/suppliers/suppliers.ini).
#
# Layout: $STACK_DIR/nats/ (JetStream store), nats.pid, nats.log;
# $STACK_DIR/pg/{data,sock,postgres.log} owned by the postgres user;
# $STACK_DIR/cluster/nN/{nats.conf,nats.pid,nats.log,jetstream/} per node.
# PostgreSQL refuses to run as root, so as root every pg command runs as
# `postgres` through runuser, and postgres must be able to traverse every
# parent of $STACK_DIR/pg: missing o+x bits are added (and said). When that is
# impossible the data goes to /var/tmp/stockflow-pg-<hash of STACK_DIR> and the
# choice is recorded in $STACK_DIR/pg.location so later calls find it.
#
# The cluster is three nats-servers (names n1..n3) on 127.0.0.1 routed to each
# other, JetStream on each: the smallest group that elects a stream leader
# again after losing one node. It replaces the single nats-server (the client
# ports overlap by default; the two cannot share a port), and PostgreSQL stays
# the one of `up`: `cluster up` starts it too, `cluster down` stops only the
# cluster. A node's ports are recorded in its nats.conf, which `cluster up`
# writes and every other cluster command reads, so `cluster-start 2` restarts
# node 2 on its old ports with its data even without CLUSTER_PORTS set. `env`
# prints INV_NATS_URL as the list of the three client URLs while any node of
# the cluster runs.
#
# One idea to keep when changing this: every command is idempotent (up twice,
# down when nothing runs) and the servers are detached (setsid) so they outlive
# the caller; servers inherit no descriptor above 2 (3>&- ... 9>&-), or a lock
# held by us or by our caller (run-tests.sh) would live as long as they do.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

STACK_DIR=${STACK_DIR:-var}
[[ "$STACK_DIR" == /* ]] || STACK_DIR="$ROOT/$STACK_DIR"
NATS_PORT=${NATS_PORT:-14222}
NATS_MON_PORT=${NATS_MON_PORT:-18222}
PG_PORT=${PG_PORT:-15432}
PG_DB=${PG_DB:-stockflow}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
STACK_TIMEOUT=${STACK_TIMEOUT:-30}
PG_OS_USER=postgres

NATS_DIR="$STACK_DIR/nats"
SECURE_CONF="$STACK_DIR/nats-secure.conf"
SECURE_USERS="$STACK_DIR/nats-users"
STACK_SUPPLIERS_INI=${STACK_SUPPLIERS_INI:-$ROOT/examples/suppliers/suppliers.ini}
NATS_PID="$STACK_DIR/nats.pid"
NATS_LOG="$STACK_DIR/nats.log"

say() { echo "stack: $*" >&2; }
die() {
    echo "stack: error: $*" >&2
    exit 1
}

for v in NATS_PORT NATS_MON_PORT PG_PORT; do
    if ! [[ "${!v}" =~ ^[0-9]+$ ]] || ((${!v} < 1 || ${!v} > 65535)); then
        die "$v must be a port number (1..65535), got '${!v}'"
    fi
done
# A port inside the kernel's range for outgoing connections can be held at
# any moment by some client's connection, and a server then cannot listen on
# it ("address already in use"): every port this project picks lies below it.
ephemeral_port() {
    local lo hi
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || return 1
    (($1 >= lo && $1 <= hi))
}
for v in NATS_PORT NATS_MON_PORT PG_PORT; do
    ephemeral_port "${!v}" &&
        echo "stack: warning: $v=${!v} lies in /proc/sys/net/ipv4/ip_local_port_range; a client connection may hold it" >&2
done
[[ "$STACK_TIMEOUT" =~ ^[0-9]+$ ]] || die "STACK_TIMEOUT must be seconds, got '$STACK_TIMEOUT'"
[[ "$PG_DB" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "PG_DB must be a plain identifier, got '$PG_DB'"

nats_url() { echo "nats://127.0.0.1:$NATS_PORT"; }
pg_dsn() { echo "host=127.0.0.1 port=$PG_PORT dbname=$PG_DB user=postgres"; }

# ---------------------------------------------------------------- helpers ---

# alive PID: the process exists and is not a zombie (a detached server whose
# parent never reaps it must still count as stopped).
alive() {
    local pid=$1 state
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ "$state" != Z ]]
}

dead() { ! alive "$1"; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

show_log() {
    local log=$1
    if [[ -r "$log" ]]; then
        echo "----- last lines of $log -----" >&2
        tail -n 30 "$log" >&2 || true
        echo "-----" >&2
    else
        echo "(no log at $log)" >&2
    fi
}

# wait_for DESCRIPTION COMMAND...: poll every 0.1 s until COMMAND succeeds or
# STACK_TIMEOUT passes.
wait_for() {
    local what=$1
    shift
    local deadline=$((SECONDS + STACK_TIMEOUT))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            say "timed out after ${STACK_TIMEOUT}s waiting for $what"
            return 1
        fi
        sleep 0.1
    done
}

lock() {
    mkdir -p "$STACK_DIR"
    exec 9>"$STACK_DIR/.lock"
    flock -w "$STACK_TIMEOUT" 9 || die "another stack.sh holds $STACK_DIR/.lock"
}

# ------------------------------------------------------------------- nats ---

nats_pid() {
    local pid
    [[ -r "$NATS_PID" ]] || return 1
    pid=$(<"$NATS_PID")
    alive "$pid" || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == nats-server ]] || return 1
    echo "$pid"
}

nats_healthy() {
    if command -v curl >/dev/null; then
        curl -fsS -m 2 "http://127.0.0.1:$NATS_MON_PORT/healthz" >/dev/null 2>&1
    else
        port_open "$NATS_PORT"
    fi
}

nats_start() {
    local pid
    command -v nats-server >/dev/null || die "nats-server not found: run scripts/deps.sh"
    if pid=$(nats_pid); then
        say "nats: already running (pid $pid)"
    else
        rm -f "$NATS_PID"
        local p
        for p in "$NATS_PORT" "$NATS_MON_PORT"; do
            port_open "$p" && die "nats: port $p is already in use by another process"
        done
        mkdir -p "$NATS_DIR"
        local -a conf=()
        if secure_on; then
            secure_write_conf
            conf=(-c "$SECURE_CONF")
            say "nats: secured: per-service users from $SECURE_USERS"
        fi
        # setsid: own session, so a Ctrl-C in the caller's terminal does not
        # reach the server; -P makes the server write its own pid.
        setsid nohup nats-server "${conf[@]}" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$NATS_DIR" \
            -m "$NATS_MON_PORT" -P "$NATS_PID" >>"$NATS_LOG" 2>&1 </dev/null \
            3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
        local child=$!
        local deadline=$((SECONDS + STACK_TIMEOUT))
        until nats_healthy; do
            if ! alive "$child" || ((SECONDS >= deadline)); then
                alive "$child" && kill -INT "$child" 2>/dev/null
                say "nats: failed to start on 127.0.0.1:$NATS_PORT"
                show_log "$NATS_LOG"
                exit 1
            fi
            sleep 0.1
        done
        pid=$(nats_pid) || pid=$child
        say "nats: started (pid $pid), log $NATS_LOG"
        return 0
    fi
    wait_for "nats-server health on port $NATS_MON_PORT" nats_healthy || {
        show_log "$NATS_LOG"
        exit 1
    }
}

# nats_stop [kill]: SIGINT (the server exits 0 on it, 1 on SIGTERM); `kill`
# sends SIGKILL instead, for crash tests.
nats_stop() {
    local mode=${1:-int} pid sig=INT
    [[ "$mode" == int || "$mode" == kill ]] || die "nats-stop takes no argument or 'kill'"
    [[ "$mode" == kill ]] && sig=KILL
    if ! pid=$(nats_pid); then
        say "nats: not running"
        rm -f "$NATS_PID"
        return 0
    fi
    kill -s "$sig" "$pid" 2>/dev/null || true
    if ! wait_for "nats-server pid $pid to exit" dead "$pid"; then
        say "nats: still running after SIGINT, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$NATS_PID"
    say "nats: stopped (pid $pid, SIG$sig)"
}

# ------------------------------------------------------- secured broker ---

# The JetStream API subjects a service may use to read (stream and consumer
# info), and those that change streams and consumers: invctl's alone.
# shellcheck disable=SC2016 # $JS is NATS's subject prefix, literal
SECURE_READ='"$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.INFO.*", "$JS.API.CONSUMER.INFO.*.*"'
# shellcheck disable=SC2016 # as above
SECURE_CHANGE='"$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>", "$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>", "$JS.API.CONSUMER.CREATE.>", "$JS.API.CONSUMER.DURABLE.CREATE.>", "$JS.API.CONSUMER.DELETE.>"'

secure_on() { [[ -n "${STACK_SECURE:-}" && "${STACK_SECURE}" != 0 ]] || [[ -r "$SECURE_CONF" ]]; }

# "id:LOC1,LOC2" words, one per supplier: STACK_SUPPLIERS, else the INI.
secure_suppliers() {
    if [[ -n "${STACK_SUPPLIERS:-}" ]]; then
        echo "$STACK_SUPPLIERS" | tr ' ' '\n' | sed '/^$/d'
        return 0
    fi
    [[ -r "$STACK_SUPPLIERS_INI" ]] || return 0
    awk '
        function flush() { if (id != "" && locs != "") print id ":" locs; id = ""; locs = "" }
        function add(l) { gsub(/[ \t\r]/, "", l); if (l != "" && index("," locs ",", "," l ",") == 0) locs = locs (locs == "" ? "" : ",") l }
        /^\[/ { flush(); if (match($0, /^\[supplier\.[^]]+\]/)) id = substr($0, 11, RLENGTH - 11); next }
        id != "" && /^[ \t]*location[ \t]*=/ { v = $0; sub(/^[^=]*=/, "", v); add(v) }
        id != "" && /^[ \t]*location_map[ \t]*=/ {
            v = $0; sub(/^[^=]*=/, "", v); n = split(v, pairs, ",")
            for (i = 1; i <= n; i++) { split(pairs[i], kv, "="); add(kv[2]) }
        }
        END { flush() }' "$STACK_SUPPLIERS_INI"
}

secure_token_ok() { [[ "$1" =~ ^[A-Za-z0-9_-]{1,64}$ ]]; }

# users file: made once; missing users (a supplier added since) are appended.
secure_users() {
    local -a names=(invctl inv-ingest inv-consumer inv-reconciler inv-api)
    local sup id
    while read -r sup; do
        id=${sup%%:*}
        secure_token_ok "$id" || die "secure: supplier id '$id' must use only A-Z a-z 0-9 _ - (STACK_SUPPLIERS or $STACK_SUPPLIERS_INI)"
        names+=("supplier-$id")
    done < <(secure_suppliers)
    (umask 077 && touch "$SECURE_USERS")
    chmod 600 "$SECURE_USERS"
    local u
    for u in "${names[@]}"; do
        grep -q "^$u " "$SECURE_USERS" ||
            echo "$u $(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" >>"$SECURE_USERS"
    done
}

secure_password() {
    awk -v u="$1" '$1 == u { print $2; exit }' "$SECURE_USERS"
}

# secure_user NAME PUB_ALLOW [PUB_DENY]: one user entry of the config.
secure_user() {
    local name=$1 allow=$2 deny=${3:-}
    local pw
    pw=$(secure_password "$name")
    [[ -n "$pw" ]] || die "secure: no password for $name in $SECURE_USERS"
    printf '      {user: "%s", password: "%s", permissions: {\n' "$name" "$pw"
    printf '        publish: {allow: [%s]%s}\n' "$allow" "${deny:+, deny: [$deny]}"
    printf '        subscribe: {allow: ["_INBOX.>"]}}}\n'
}

secure_write_conf() {
    mkdir -p "$STACK_DIR"
    secure_users
    local tmp="$SECURE_CONF.tmp" sup id locs l allow
    {
        echo "# Written by scripts/stack.sh (secured broker); edit the script, not this file."
        echo "# One account with JetStream, one user per service; anonymous clients are refused."
        echo "accounts {"
        echo "  STOCKFLOW {"
        echo "    jetstream: enabled"
        echo "    users: ["
        printf '      {user: "invctl", password: "%s", permissions: {publish: {allow: [">"]}, subscribe: {allow: [">"]}}}\n' \
            "$(secure_password invctl)"
        secure_user inv-ingest "\"inv.evt.>\", $SECURE_READ" "$SECURE_CHANGE"
        secure_user inv-consumer \
            "\"\$JS.API.CONSUMER.MSG.NEXT.INV_EVENTS.stock-applier\", \"\$JS.ACK.INV_EVENTS.stock-applier.>\", \"inv.dlq.>\", $SECURE_READ" \
            "\"inv.evt.>\", $SECURE_CHANGE"
        secure_user inv-reconciler "\"inv.chan.>\", \"inv.evt.release.*\", \"inv.evt.reserve.*\", $SECURE_READ" "$SECURE_CHANGE"
        secure_user inv-api "$SECURE_READ" "\"inv.>\", $SECURE_CHANGE"
        while read -r sup; do
            id=${sup%%:*}
            locs=${sup#*:}
            allow=""
            for l in ${locs//,/ }; do
                secure_token_ok "$l" || die "secure: supplier $id: location '$l' must use only A-Z a-z 0-9 _ -"
                allow+="\"inv.evt.count.$l\", \"inv.evt.asn.$l\", \"inv.evt.receipt.$l\", "
            done
            secure_user "supplier-$id" "$allow$SECURE_READ" "$SECURE_CHANGE"
        done < <(secure_suppliers)
        echo "    ]"
        echo "  }"
        echo "}"
    } >"$tmp"
    chmod 600 "$tmp"
    mv "$tmp" "$SECURE_CONF"
}

# nats_url_for SERVICE: the URL with that service's credentials.
nats_url_for() {
    local svc=$1 pw
    secure_on || die "env --service: the broker is not secured (stack.sh up --secure)"
    [[ -r "$SECURE_USERS" ]] || die "env --service: no $SECURE_USERS (stack.sh up --secure first)"
    pw=$(secure_password "$svc")
    [[ -n "$pw" ]] || die "env --service: no user '$svc' (users: $(awk '{printf "%s%s", s, $1; s=" "}' "$SECURE_USERS"))"
    echo "nats://$svc:$pw@127.0.0.1:$NATS_PORT"
}

# --------------------------------------------------------------- postgres ---

# as_pg CMD...: run a command as the unprivileged postgres user (or as
# ourselves when we are not root: PostgreSQL only refuses root).
as_pg() {
    if ((EUID == 0)); then
        runuser -u "$PG_OS_USER" -- "$@"
    else
        "$@"
    fi
}

# pg_traversable DIR: the postgres user may search (enter) DIR.
pg_traversable() {
    as_pg test -x "$1" 2>/dev/null
}

# Choose PG_DIR once per call; see the header for the fallback.
pg_resolve_dir() {
    if [[ -n "${PG_DIR:-}" ]]; then
        return 0
    fi
    if [[ -r "$STACK_DIR/pg.location" ]]; then
        PG_DIR=$(<"$STACK_DIR/pg.location")
        return 0
    fi
    PG_DIR="$STACK_DIR/pg"
}

# Make every ancestor of $PG_DIR traversable by postgres (o+x). Returns 1 when
# that cannot be done (read-only or foreign file system), leaving the caller to
# fall back.
pg_make_traversable() {
    ((EUID == 0)) || return 0
    local dir
    dir=$(dirname "$PG_DIR")
    mkdir -p "$dir"
    local d=$dir
    local -a chain=()
    while [[ "$d" != / ]]; do
        chain=("$d" "${chain[@]}")
        d=$(dirname "$d")
    done
    for d in "${chain[@]}"; do
        if ! pg_traversable "$d"; then
            say "postgres: chmod o+x $d (so user $PG_OS_USER can reach its data)"
            chmod o+x "$d" 2>/dev/null || return 1
            pg_traversable "$d" || return 1
        fi
    done
}

pg_prepare_dir() {
    if ! pg_make_traversable; then
        local sum wanted=$PG_DIR
        sum=$(printf '%s' "$STACK_DIR" | cksum | cut -d' ' -f1)
        PG_DIR="/var/tmp/stockflow-pg-$sum"
        say "postgres: $wanted cannot be made reachable by $PG_OS_USER; data goes to $PG_DIR"
        printf '%s\n' "$PG_DIR" >"$STACK_DIR/pg.location"
    fi
    if ((EUID == 0)); then
        install -d -o "$PG_OS_USER" -g "$PG_OS_USER" -m 700 "$PG_DIR"
    else
        install -d -m 700 "$PG_DIR"
    fi
}

pg_data() { echo "$PG_DIR/data"; }
pg_log() { echo "$PG_DIR/postgres.log"; }

pg_pid() {
    local pid
    [[ -r "$(pg_data)/postmaster.pid" ]] || return 1
    pid=$(head -n 1 "$(pg_data)/postmaster.pid" 2>/dev/null) || return 1
    alive "$pid" || return 1
    echo "$pid"
}

pg_ready() {
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2 >/dev/null 2>&1
}

psql_admin() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"
}

# The settings stack.sh owns live in stockflow.conf, rewritten on every start
# so a changed PG_PORT or directory takes effect; postgresql.conf includes it
# once, at its end, so these win.
pg_write_conf() {
    local data sock
    data=$(pg_data)
    sock="$PG_DIR/sock"
    as_pg mkdir -p "$sock"
    # sun_path holds 107 bytes; past that, TCP only (everything here uses TCP).
    if ((${#sock} + 20 > 107)); then
        say "postgres: socket path $sock is too long; unix sockets disabled (TCP only)"
        sock=""
    fi
    as_pg tee "$data/stockflow.conf" >/dev/null <<CONF
# Written by scripts/stack.sh on every start; edit the script, not this file.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sock'
max_connections = 200
shared_buffers = 256MB
# Durability stays on: consumers ack JetStream only after commit.
fsync = on
synchronous_commit = on
full_page_writes = on
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
log_connections = off
# Commit times of the ledger: bench/convergence measures from the last one.
track_commit_timestamp = on
CONF
    if ! grep -q "^include_if_exists = 'stockflow.conf'" "$data/postgresql.conf"; then
        printf "\ninclude_if_exists = 'stockflow.conf'\n" | as_pg tee -a "$data/postgresql.conf" >/dev/null
    fi
}

pg_initdb() {
    local data
    data=$(pg_data)
    [[ -f "$data/PG_VERSION" ]] && return 0
    [[ -x "$PG_BIN/initdb" ]] || die "$PG_BIN/initdb not found: run scripts/deps.sh (package postgresql)"
    say "postgres: initdb $data"
    if ! as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$STACK_DIR/initdb.log" 2>&1 9>&-; then
        say "postgres: initdb failed"
        show_log "$STACK_DIR/initdb.log"
        exit 1
    fi
}

pg_start() {
    local pid
    pg_resolve_dir
    if pid=$(pg_pid); then
        say "postgres: already running (pid $pid)"
    else
        pg_prepare_dir
        pg_initdb
        port_open "$PG_PORT" && die "postgres: port $PG_PORT is already in use by another process"
        pg_write_conf
        # pg_ctl -w waits until the server accepts connections (or fails).
        local out
        if ! out=$(as_pg "$PG_BIN/pg_ctl" -D "$(pg_data)" -l "$(pg_log)" -w -t "$STACK_TIMEOUT" \
            start 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-); then
            say "postgres: failed to start on 127.0.0.1:$PG_PORT"
            echo "$out" >&2
            show_log "$(pg_log)"
            exit 1
        fi
        pid=$(pg_pid) || pid="?"
        say "postgres: started (pid $pid), log $(pg_log)"
    fi
    wait_for "postgres on port $PG_PORT" pg_ready || {
        show_log "$(pg_log)"
        exit 1
    }
    local have
    have=$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") ||
        die "postgres: cannot query pg_database"
    if [[ "$have" != 1 ]]; then
        psql_admin -c "CREATE DATABASE \"$PG_DB\"" || die "postgres: cannot create database $PG_DB"
        say "postgres: created database $PG_DB"
    fi
}

# pg_stop [immediate]: fast shutdown by default (clean, no recovery needed);
# immediate is a crash as far as PostgreSQL is concerned (WAL replay on start).
pg_stop() {
    local mode=${1:-fast} pid
    [[ "$mode" == fast || "$mode" == immediate ]] || die "pg-stop takes no argument or 'immediate'"
    pg_resolve_dir
    if ! pid=$(pg_pid); then
        say "postgres: not running"
        return 0
    fi
    local out
    if ! out=$(as_pg "$PG_BIN/pg_ctl" -D "$(pg_data)" -m "$mode" -w -t "$STACK_TIMEOUT" stop \
        2>&1 9>&-); then
        echo "$out" >&2
        say "postgres: pg_ctl stop -m $mode failed; sending SIGQUIT to $pid"
        kill -QUIT "$pid" 2>/dev/null || true
        wait_for "postgres pid $pid to exit" dead "$pid" || die "postgres: pid $pid does not stop"
    fi
    say "postgres: stopped (pid $pid, -m $mode)"
}

# ---------------------------------------------------------------- cluster ---

CLUSTER_DIR="$STACK_DIR/cluster"
CLUSTER_NAME=${CLUSTER_NAME:-stockflow}
CLUSTER_NODES=(1 2 3)
# Ports of node i (1..3), filled by cluster_load_ports.
C_PORT=([1]="" [2]="" [3]="")
C_ROUTE=([1]="" [2]="" [3]="")
C_MON=([1]="" [2]="" [3]="")

node_dir() { echo "$CLUSTER_DIR/n$1"; }
node_conf() { echo "$CLUSTER_DIR/n$1/nats.conf"; }
node_pidfile() { echo "$CLUSTER_DIR/n$1/nats.pid"; }
node_log() { echo "$CLUSTER_DIR/n$1/nats.log"; }
node_url() { echo "nats://127.0.0.1:${C_PORT[$1]}"; }

# split_ports VAR NAME LIST: a comma-separated list of exactly three ports
# into the array VAR (indices 1..3); returns 1 with the reason, naming the
# setting NAME, in PORTS_ERR.
PORTS_ERR=""
split_ports() {
    local var=$1 name=$2 list=$3 i=1 p
    local -a parts
    IFS=, read -r -a parts <<<"$list"
    if ((${#parts[@]} != 3)); then
        PORTS_ERR="$name needs three comma-separated ports, got '$list'"
        return 1
    fi
    for p in "${parts[@]}"; do
        p=${p// /}
        if ! [[ "$p" =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then
            PORTS_ERR="$name: '$p' is not a port number (1..65535)"
            return 1
        fi
        printf -v "${var}[$i]" '%s' "$p"
        i=$((i + 1))
    done
}

# The ports cluster up would use: from the environment, defaults derived
# from the client ports. All nine must differ. Returns 1 with PORTS_ERR.
cluster_wanted_ports() {
    local i p
    split_ports C_PORT "CLUSTER_PORTS (default NATS_PORT..NATS_PORT+2)" \
        "${CLUSTER_PORTS:-$NATS_PORT,$((NATS_PORT + 1)),$((NATS_PORT + 2))}" &&
        split_ports C_ROUTE "CLUSTER_ROUTE_PORTS (default client ports + 2000)" \
            "${CLUSTER_ROUTE_PORTS:-$((C_PORT[1] + 2000)),$((C_PORT[2] + 2000)),$((C_PORT[3] + 2000))}" &&
        split_ports C_MON "CLUSTER_MON_PORTS (default client ports + 4000)" \
            "${CLUSTER_MON_PORTS:-$((C_PORT[1] + 4000)),$((C_PORT[2] + 4000)),$((C_PORT[3] + 4000))}" ||
        return 1
    local -A seen=()
    for i in "${CLUSTER_NODES[@]}"; do
        for p in "${C_PORT[$i]}" "${C_ROUTE[$i]}" "${C_MON[$i]}"; do
            if [[ -n "${seen[$p]:-}" ]]; then
                PORTS_ERR="port $p is given twice (CLUSTER_PORTS, CLUSTER_ROUTE_PORTS, CLUSTER_MON_PORTS)"
                return 1
            fi
            seen[$p]=1
        done
    done
}

# The ports of node i as recorded in its nats.conf, if it has one.
node_recorded_ports() {
    local i=$1 line
    [[ -r "$(node_conf "$i")" ]] || return 1
    line=$(grep -m1 '^# stockflow-ports:' "$(node_conf "$i")") || return 1
    [[ "$line" =~ client=([0-9]+)\ route=([0-9]+)\ monitor=([0-9]+) ]] || return 1
    C_PORT[i]=${BASH_REMATCH[1]}
    C_ROUTE[i]=${BASH_REMATCH[2]}
    C_MON[i]=${BASH_REMATCH[3]}
}

# Every command but `cluster up` uses what the nodes were started with (and
# must work even when the defaults would not be valid ports: wipe calls it).
cluster_load_ports() {
    cluster_wanted_ports || true
    local i
    for i in "${CLUSTER_NODES[@]}"; do
        node_recorded_ports "$i" || true
    done
}

cluster_urls() {
    local i out=""
    for i in "${CLUSTER_NODES[@]}"; do
        out+="${out:+,}$(node_url "$i")"
    done
    echo "$out"
}

node_pid() {
    local pid f
    f=$(node_pidfile "$1")
    [[ -r "$f" ]] || return 1
    pid=$(<"$f")
    alive "$pid" || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == nats-server ]] || return 1
    echo "$pid"
}

cluster_any_running() {
    local i
    for i in "${CLUSTER_NODES[@]}"; do
        node_pid "$i" >/dev/null && return 0
    done
    return 1
}

node_js_enabled() {
    curl -fsS -m 2 "http://127.0.0.1:${C_MON[$1]}/healthz?js-enabled-only=true" >/dev/null 2>&1
}

# node_meta_leader I: the JetStream meta leader node I knows of (empty: none).
node_meta_leader() {
    curl -fsS -m 2 "http://127.0.0.1:${C_MON[$1]}/jsz" 2>/dev/null | tr -d '\n' |
        sed -n 's/.*"meta_cluster": *{[^}]*"leader": *"\([^"]*\)".*/\1/p'
}

# leader_alive NAME: NAME is one of our nodes and it runs (right after a
# kill -9 the survivors still name the dead node for a few seconds).
leader_alive() {
    [[ "$1" =~ ^n([123])$ ]] && node_pid "${BASH_REMATCH[1]}" >/dev/null
}

# every running node knows the same meta leader, and it is alive
cluster_has_leader() {
    local i l first=""
    for i in "${CLUSTER_NODES[@]}"; do
        node_pid "$i" >/dev/null || continue
        l=$(node_meta_leader "$i")
        [[ -n "$l" ]] || return 1
        [[ -z "$first" || "$first" == "$l" ]] || return 1
        first=$l
    done
    [[ -n "$first" ]] && leader_alive "$first"
}

# The meta leader as the first running node sees it (may be stale: see
# leader_alive).
cluster_leader_name() {
    local i l
    for i in "${CLUSTER_NODES[@]}"; do
        node_pid "$i" >/dev/null || continue
        l=$(node_meta_leader "$i")
        [[ -n "$l" ]] && {
            echo "$l"
            return 0
        }
    done
    return 1
}

node_write_conf() {
    local i=$1 j routes=""
    for j in "${CLUSTER_NODES[@]}"; do
        ((j == i)) || routes+="    nats-route://127.0.0.1:${C_ROUTE[$j]}"$'\n'
    done
    mkdir -p "$(node_dir "$i")"
    cat >"$(node_conf "$i")" <<CONF
# Written by scripts/stack.sh (cluster up); edit the script, not this file.
# stockflow-ports: client=${C_PORT[$i]} route=${C_ROUTE[$i]} monitor=${C_MON[$i]}
server_name: n$i
listen: 127.0.0.1:${C_PORT[$i]}
http: 127.0.0.1:${C_MON[$i]}
pid_file: "$(node_pidfile "$i")"
jetstream {
  store_dir: "$(node_dir "$i")"
}
cluster {
  name: $CLUSTER_NAME
  listen: 127.0.0.1:${C_ROUTE[$i]}
  routes: [
$routes  ]
}
CONF
}

# node_check_ports I: die unless every port of node I is free.
node_check_ports() {
    local i=$1 p
    for p in "${C_PORT[$i]}" "${C_ROUTE[$i]}" "${C_MON[$i]}"; do
        if port_open "$p"; then
            if [[ "$p" == "$NATS_PORT" ]] && nats_pid >/dev/null; then
                die "cluster: n$i: port $p is the single nats-server's of 'stack.sh up': stop it with 'stack.sh nats-stop', or set CLUSTER_PORTS"
            fi
            die "cluster: n$i: port $p is already in use by another process"
        fi
    done
}

# node_spawn I: start node I detached, without waiting; its pid goes to
# SPAWNED_PID (not echoed: a command substitution would run this in a
# subshell, where die could not stop the script).
SPAWNED_PID=""
node_spawn() {
    local i=$1
    node_check_ports "$i"
    rm -f "$(node_pidfile "$i")"
    setsid nohup nats-server -c "$(node_conf "$i")" >>"$(node_log "$i")" 2>&1 </dev/null \
        3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    # shellcheck disable=SC2128 # $! is the background job's pid, not an array
    SPAWNED_PID=$!
}

# node_await I PID: wait until node I answers with JetStream enabled.
node_await() {
    local i=$1 child=$2
    local deadline=$((SECONDS + STACK_TIMEOUT))
    until node_js_enabled "$i"; do
        if ! alive "$child" || ((SECONDS >= deadline)); then
            alive "$child" && kill -INT "$child" 2>/dev/null
            say "cluster: n$i failed to start on 127.0.0.1:${C_PORT[$i]}"
            show_log "$(node_log "$i")"
            exit 1
        fi
        sleep 0.1
    done
}

cluster_await_leader() {
    local t0=$SECONDS
    wait_for "a JetStream meta leader known to every running node" cluster_has_leader || {
        local i
        for i in "${CLUSTER_NODES[@]}"; do show_log "$(node_log "$i")"; done
        exit 1
    }
    say "cluster: meta leader $(cluster_leader_name) (after $((SECONDS - t0)) s)"
}

cluster_require() {
    command -v nats-server >/dev/null || die "nats-server not found: run scripts/deps.sh"
    command -v curl >/dev/null || die "curl not found (the cluster's health checks need it): run scripts/deps.sh"
}

cluster_up() {
    cluster_require
    cluster_wanted_ports || die "cluster: $PORTS_ERR"
    local -A want=()
    local i pid
    for i in "${CLUSTER_NODES[@]}"; do
        want[$i]="${C_PORT[$i]} ${C_ROUTE[$i]} ${C_MON[$i]}"
    done
    local -a started=() pids=()
    # Start every missing node first, then wait: a node's JetStream waits for
    # its peers, so starting them one after another would serialise that.
    for i in "${CLUSTER_NODES[@]}"; do
        if pid=$(node_pid "$i"); then
            node_recorded_ports "$i" || true
            [[ "${C_PORT[$i]} ${C_ROUTE[$i]} ${C_MON[$i]}" == "${want[$i]}" ]] ||
                die "cluster: n$i (pid $pid) runs on ports client/route/monitor ${C_PORT[$i]}/${C_ROUTE[$i]}/${C_MON[$i]}, not ${want[$i]// //}: 'stack.sh cluster down' first"
            say "cluster: n$i already running (pid $pid) $(node_url "$i")"
            continue
        fi
        node_check_ports "$i" # all of them before starting any
        started+=("$i")
    done
    for i in "${started[@]}"; do
        node_write_conf "$i"
        node_spawn "$i"
        pids+=("$SPAWNED_PID")
    done
    local k
    for ((k = 0; k < ${#started[@]}; k++)); do
        node_await "${started[$k]}" "${pids[$k]}"
    done
    for i in "${started[@]}"; do
        pid=$(node_pid "$i") || pid="?"
        say "cluster: n$i started (pid $pid) $(node_url "$i"), log $(node_log "$i")"
    done
    cluster_await_leader
}

cluster_down() {
    cluster_load_ports
    local i pid
    local -a stopping=()
    for i in "${CLUSTER_NODES[@]}"; do
        if pid=$(node_pid "$i"); then
            kill -INT "$pid" 2>/dev/null || true # SIGINT: exits 0
            stopping+=("$i:$pid")
        fi
    done
    ((${#stopping[@]} > 0)) || {
        say "cluster: not running"
        return 0
    }
    local e
    for e in "${stopping[@]}"; do
        i=${e%%:*}
        pid=${e#*:}
        if ! wait_for "cluster node n$i (pid $pid) to exit" dead "$pid"; then
            say "cluster: n$i still running after SIGINT, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
        rm -f "$(node_pidfile "$i")"
        say "cluster: n$i stopped (pid $pid)"
    done
}

cluster_status() {
    cluster_load_ports
    local i pid rc=0 leader
    for i in "${CLUSTER_NODES[@]}"; do
        if pid=$(node_pid "$i"); then
            echo "n$i: running (pid $pid) $(node_url "$i") route ${C_ROUTE[$i]} monitor http://127.0.0.1:${C_MON[$i]}"
        else
            echo "n$i: stopped $(node_url "$i")"
            rc=3
        fi
    done
    if cluster_any_running && leader=$(cluster_leader_name); then
        if leader_alive "$leader"; then
            echo "meta leader: $leader"
        else
            echo "meta leader: $leader, which is down (an election is due)"
            rc=3
        fi
    else
        echo "meta leader: none"
        rc=3
    fi
    return "$rc"
}

# node_arg ARG: 1..3 or n1..n3 -> 1..3
node_arg() {
    local a=${1:-}
    a=${a#n}
    [[ "$a" =~ ^[123]$ ]] || die "cluster: node must be 1, 2 or 3 (or n1..n3), got '${1:-}'"
    echo "$a"
}

cluster_kill() {
    local i pid
    i=$(node_arg "${1:-}")
    cluster_load_ports
    if ! pid=$(node_pid "$i"); then
        say "cluster: n$i not running"
        return 0
    fi
    kill -KILL "$pid" 2>/dev/null || true
    wait_for "cluster node n$i (pid $pid) to die" dead "$pid" || die "cluster: n$i (pid $pid) survives SIGKILL"
    rm -f "$(node_pidfile "$i")"
    say "cluster: n$i killed (pid $pid, SIGKILL)"
}

cluster_start() {
    local i pid
    i=$(node_arg "${1:-}")
    cluster_require
    cluster_load_ports
    [[ -r "$(node_conf "$i")" ]] || die "cluster: n$i has no configuration: run 'stack.sh cluster up' first"
    if pid=$(node_pid "$i"); then
        say "cluster: n$i already running (pid $pid)"
    else
        node_spawn "$i"
        node_await "$i" "$SPAWNED_PID"
        pid=$(node_pid "$i") || true
        say "cluster: n$i started (pid $pid) $(node_url "$i"), data kept"
    fi
    cluster_await_leader
}

cluster_main() {
    local sub=${1:-}
    [[ $# -gt 0 ]] && shift
    case "$sub" in
    up)
        lock
        cluster_up
        pg_start
        echo "INV_NATS_URL=$(cluster_urls)"
        echo "INV_PG_DSN=$(pg_dsn)"
        ;;
    down) lock && cluster_down ;;
    status) cluster_status ;;
    *)
        echo "stack: cluster: unknown command '${sub}' (up, down, status)" >&2
        usage
        ;;
    esac
}

# -------------------------------------------------------------- commands ---

# The URL clients get by default: invctl's (full rights) on a secured broker.
nats_url_default() {
    if secure_on && [[ -r "$SECURE_USERS" ]]; then
        nats_url_for invctl
    else
        nats_url
    fi
}

# --secure on up / nats-start: same as STACK_SECURE=1.
secure_flag() {
    case "${1:-}" in
    "") ;;
    --secure) STACK_SECURE=1 ;;
    *) die "unknown option '$1' (only --secure)" ;;
    esac
    if [[ -n "${STACK_SECURE:-}" && "$STACK_SECURE" != 0 ]] && ! [[ -r "$SECURE_CONF" ]] && nats_pid >/dev/null; then
        die "nats: already running without security: 'stack.sh nats-stop' first"
    fi
}

print_urls() {
    echo "INV_NATS_URL=$(nats_url_default)"
    echo "INV_PG_DSN=$(pg_dsn)"
}

cmd_status() {
    local rc=0 pid
    pg_resolve_dir
    if pid=$(nats_pid); then
        echo "nats: running (pid $pid) $(nats_url) monitor http://127.0.0.1:$NATS_MON_PORT"
        if secure_on; then
            echo "nats: secured, one user per service ('stack.sh users'; credentials in $SECURE_USERS)"
        fi
    else
        echo "nats: stopped"
        rc=3
    fi
    if pid=$(pg_pid); then
        echo "postgres: running (pid $pid) $(pg_dsn) data $(pg_data)"
    else
        echo "postgres: stopped"
        rc=3
    fi
    return "$rc"
}

cmd_wipe() {
    nats_stop
    cluster_down
    pg_stop
    pg_resolve_dir
    case "$PG_DIR" in
    "$STACK_DIR"/* | /var/tmp/stockflow-pg-*) rm -rf "$PG_DIR" ;;
    *) say "wipe: leaving PG_DIR=$PG_DIR alone (outside STACK_DIR)" ;;
    esac
    rm -rf "$NATS_DIR" "$NATS_LOG" "$NATS_PID" "$CLUSTER_DIR" "$STACK_DIR/pg.location" \
        "$SECURE_CONF" "$SECURE_USERS" \
        "$STACK_DIR/initdb.log"
    say "wiped $STACK_DIR"
}

usage() {
    cat >&2 <<'USAGE'
usage: stack.sh up [--secure] | down | status | env [--service NAME] | wipe
                nats-start [--secure] | nats-stop [kill] | pg-start | pg-stop [immediate]
                users
                cluster up | down | status
                cluster-kill N | cluster-start N      (N = 1, 2, 3 or n1..n3)
USAGE
    exit 2
}

main() {
    local cmd=${1:-}
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
    up)
        lock
        secure_flag "$@"
        nats_start
        pg_start
        print_urls
        ;;
    down)
        lock
        nats_stop
        pg_stop
        ;;
    status) cmd_status ;;
    env)
        cluster_load_ports
        if [[ "${1:-}" == --service ]]; then
            [[ -n "${2:-}" ]] || die "env --service needs a user name (stack.sh users lists them)"
            printf 'export INV_NATS_URL=%q\n' "$(nats_url_for "$2")"
        elif [[ -n "${1:-}" ]]; then
            die "env: unknown option '$1' (only --service NAME)"
        elif cluster_any_running; then
            printf 'export INV_NATS_URL=%q\n' "$(cluster_urls)"
        else
            printf 'export INV_NATS_URL=%q\n' "$(nats_url_default)"
        fi
        printf 'export INV_PG_DSN=%q\n' "$(pg_dsn)"
        ;;
    wipe)
        lock
        cmd_wipe
        ;;
    nats-start) lock && secure_flag "$@" && nats_start ;;
    users)
        if ! secure_on || ! [[ -r "$SECURE_USERS" ]]; then
            die "users: the broker is not secured (stack.sh up --secure)"
        fi
        awk '{print $1}' "$SECURE_USERS"
        ;;
    nats-stop) lock && nats_stop "$@" ;;
    pg-start) lock && pg_start ;;
    pg-stop) lock && pg_stop "$@" ;;
    cluster) cluster_main "$@" ;;
    cluster-kill) lock && cluster_kill "$@" ;;
    cluster-start) lock && cluster_start "$@" ;;
    -h | --help | help) usage ;;
    *)
        echo "stack: unknown command '${cmd}'" >&2
        usage
        ;;
    esac
}

main "$@"
