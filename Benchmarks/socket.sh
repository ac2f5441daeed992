#!/usr/bin/env bash
# Socket benchmarks: the daemon (release build, `dev` mode against the local emulator) under
# uds-load, and `maskinporten-broker token` against `curl --unix-socket` per call, alternating
# A/B over several rounds. Prints figures; asserts nothing (shared, noisy machines).
#
#   Benchmarks/socket.sh [--seconds S] [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=5
rounds=3
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        *) echo "usage: $0 [--seconds S] [--rounds N]" >&2; exit 2 ;;
    esac
done

scripts/build-release >&2
broker=$PWD/.build/release/maskinporten-broker
work=$(mktemp -d)
trap 'kill "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
gcc -O2 -pthread -o "$work/uds-load" Benchmarks/uds-load/uds-load.c

XDG_RUNTIME_DIR=$work "$broker" dev --log-level error > "$work/dev.out" 2>&1 &
dev_pid=$!
for _ in $(seq 100); do grep -q "Ctrl-C" "$work/dev.out" 2>/dev/null && break; sleep 0.1; done
socket=$(sed -n 's/^  socket: *//p' "$work/dev.out")
curl -sf --unix-socket "$socket" http://localhost/v1/token/demo > /dev/null

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

echo "machine: $(nproc) cores, $(uname -r); $("$broker" --version 2>/dev/null || echo maskinporten-broker) release build, static Swift stdlib"
echo "load: GET /v1/token/demo (cached token, JSON), ${seconds} s per run, median of ${rounds} rounds"
printf '%-36s %12s %10s %10s\n' "scenario" "requests/s" "p50 us" "p99 us"
for scenario in "keep-alive, 1 connection|-c 1" "keep-alive, 64 connections|-c 64" "new connection per request|-c 1 -n"; do
    name=${scenario%%|*}
    flags=${scenario#*|}
    : > "$work/runs"
    for _ in $(seq "$rounds"); do
        # shellcheck disable=SC2086
        "$work/uds-load" -s "$socket" -p /v1/token/demo -d "$seconds" $flags >> "$work/runs"
    done
    printf '%-36s %12s %10s %10s\n' "$name" "$(field rps < "$work/runs" | median)" "$(field p50_us < "$work/runs" | median)" "$(field p99_us < "$work/runs" | median)"
done

calls=200
per_call() { # prints microseconds per call of the command given
    local start end
    start=$(date +%s%N)
    for _ in $(seq "$calls"); do "$@" > /dev/null; done
    end=$(date +%s%N)
    echo $(( (end - start) / calls / 1000 ))
}
: > "$work/token"
: > "$work/curl"
for _ in $(seq "$rounds"); do
    per_call "$broker" token demo --socket "$socket" >> "$work/token"
    per_call curl -sf --unix-socket "$socket" -H "Accept: text/plain" http://localhost/v1/token/demo >> "$work/curl"
done
token_us=$(median < "$work/token")
curl_us=$(median < "$work/curl")
echo "per call, whole process, ${calls} calls x ${rounds} rounds alternating:"
echo "  maskinporten-broker token   ${token_us} us"
echo "  curl --unix-socket          ${curl_us} us"
awk -v a="$token_us" -v b="$curl_us" 'BEGIN { printf "  ratio token/curl           %.2f\n", a / b }'
