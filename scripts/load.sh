#!/usr/bin/env bash
# Load test of client_credentials with wrk against a release build on
# SQLite. Bounded: loopback only, fixed duration. Usage:
#   bash scripts/load.sh [seconds=15] [connections=64]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
CONNS=${2:-64}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { echo "install wrk (Debian package 'wrk')" >&2; exit 1; }; }
cargo build --release -q -p idp
BIN=${CARGO_TARGET_DIR:-target}/release/idp
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export IDP_DATA_DIR=$WORK IDP_ISSUER=http://127.0.0.1:$PORT IDP_LISTEN=127.0.0.1:$PORT IDP_LOG=warn
"$BIN" serve & PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
CREATED=$("$BIN" client create --name load --redirect-uri http://127.0.0.1:9/cb --json)
ID=$(echo "$CREATED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
SECRET=$(echo "$CREATED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
AUTH=$(printf '%s:%s' "$ID" "$SECRET" | base64 -w0)
cat > "$WORK/cc.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $AUTH"
done = function(summary, latency, requests)
  io.write(string.format("p50 %.2f ms  p99 %.2f ms  non-2xx %d\n", latency:percentile(50)/1000, latency:percentile(99)/1000, summary.errors.status))
end
LUA
echo "client_credentials, ES256, SQLite, $CONNS connections, ${SECS}s:"
wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$WORK/cc.lua" "http://127.0.0.1:$PORT/token"
echo "RSS of the server after the run: $(ps -o rss= -p $PID) KiB"
