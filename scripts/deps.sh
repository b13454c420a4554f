#!/usr/bin/env bash
# deps.sh: install the Debian packages stockflow builds, tests and runs with.
#
# Idempotent and quiet when everything is present (checked with dpkg-query).
# Otherwise, as root: one `apt-get update`, then one non-interactive install of
# the missing packages only. Not root and something missing: print the command
# to run and exit 1. The list matches ../shared/TOOLCHAIN.md "Install" plus the
# compilers and checkers (clang, valgrind, clang-format for make format-check),
# make, and curl, which stack.sh uses for the nats-server health check.
set -euo pipefail

PACKAGES=(
    nats-server libnats-dev libzmq3-dev libavro-dev libpq-dev libcriterion-dev
    postgresql pkg-config libevent-dev libjansson-dev libcurl4-openssl-dev
    libinih-dev libssl-dev clang libclang-rt-14-dev valgrind make gcc curl clang-format
    openssl wrk
    chromium xxd python3
)

# Print the packages of "$@" that are not installed, one a line. One
# dpkg-query call for the whole list keeps the common case (nothing missing)
# fast; unknown names are simply absent from its output.
list_missing() {
    local -A ok=()
    local name status
    while read -r name status; do
        [[ "$status" == "installed" ]] && ok["${name%%:*}"]=1
    done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null || true)
    for name in "$@"; do
        [[ -n "${ok[$name]:-}" ]] || echo "$name"
    done
}

mapfile -t missing < <(list_missing "${PACKAGES[@]}")

if ((${#missing[@]} == 0)); then
    exit 0
fi

if ((EUID != 0)); then
    echo "deps.sh: missing packages: ${missing[*]}" >&2
    echo "deps.sh: install them as root with:" >&2
    echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -q >/dev/null; then
    echo "deps.sh: apt-get update failed" >&2
    exit 1
fi
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null; then
    echo "deps.sh: apt-get install failed for: ${missing[*]}" >&2
    exit 1
fi

# Check again: a package apt skipped silently would otherwise show up later as
# a confusing compile error.
mapfile -t still < <(list_missing "${missing[@]}")
if ((${#still[@]} > 0)); then
    echo "deps.sh: still missing after install: ${still[*]}" >&2
    exit 1
fi
echo "deps.sh: done" >&2
