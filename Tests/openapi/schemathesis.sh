#!/usr/bin/env bash
# Schemathesis against the daemon through a socat TCP-to-Unix bridge: property-based requests
# generated from openapi.yaml; fails on a server error outside the documented answers, a schema
# violation or a crash. Runs `maskinporten-broker dev` (emulator + daemon) itself.
#
#   Tests/openapi/schemathesis.sh [MAX_EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/../.."
examples=${1:-25}
broker=${MASKINPORTEN_BROKER_BIN:-$(swift build --show-bin-path)/maskinporten-broker}
work=$(mktemp -d)
cleanup() {
    kill "$socat_pid" "$dev_pid" 2>/dev/null || true
    wait "$socat_pid" "$dev_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
XDG_RUNTIME_DIR=$work "$broker" dev --log-level error > "$work/dev.out" 2>&1 &
dev_pid=$!
for _ in $(seq 200); do grep -q "Ctrl-C" "$work/dev.out" 2>/dev/null && break; sleep 0.1; done
socket=$(sed -n 's/^  socket: *//p' "$work/dev.out")
port=$(( 20000 + RANDOM % 30000 ))
socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$socket" &
socat_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break; sleep 0.1; done
# The daemon answers 502/503 by design when upstream fails; those are documented answers, so
# "not a server error" is replaced by the schema checks, which reject undocumented statuses.
st run openapi.yaml --url "http://127.0.0.1:$port" \
    --checks status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples "$examples" --phases examples,fuzzing --no-color
# Still alive and serving after all of that.
curl -sf --unix-socket "$socket" http://localhost/v1/token/demo > /dev/null
echo "schemathesis: the daemon is still serving"
