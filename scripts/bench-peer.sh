#!/usr/bin/env bash
# client_credentials side by side with a peer provider, in one run on this
# machine: idp (release build, SQLite) and panva's node-oidc-provider
# (in-memory store, opaque tokens), each under the same wrk load, one after
# the other, then the ratio. Loopback only, bounded duration.
#
#   PEER_DIR=/path/to/node-oidc-provider bash scripts/bench-peer.sh [seconds=15] [connections=32]
#
# PEER_DIR is a checkout of the peer with its `server.js` (PORT=… node
# server.js; client `probe` / `probe-secret-probe-secret-probe-secret`).
# Without PEER_DIR only idp is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
CONNS=${2:-32}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { echo "install wrk (Debian package 'wrk')" >&2; exit 1; }; }
cargo build --release -q -p idp
BIN=${CARGO_TARGET_DIR:-target}/release/idp
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 150); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "$1 did not answer" >&2; exit 1; }

# wrk script: POST client_credentials with basic auth; prints rate and latency.
script() {
  cat > "$WORK/$1.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $2"
done = function(summary, latency, requests)
  io.write(string.format("RESULT %s %.0f %.2f %.2f %d\n", "$1", summary.requests / (summary.duration / 1e6),
    latency:percentile(50)/1000, latency:percentile(99)/1000, summary.errors.status))
end
LUA
}

# idp
PORT=$(free_port)
IDP_DATA_DIR=$WORK/idp IDP_ISSUER=http://127.0.0.1:$PORT IDP_LISTEN=127.0.0.1:$PORT IDP_LOG=warn "$BIN" serve &
PIDS+=($!)
wait_http "http://127.0.0.1:$PORT/healthz"
CREATED=$(IDP_DATA_DIR=$WORK/idp IDP_ISSUER=http://127.0.0.1:$PORT "$BIN" client create --name bench --redirect-uri http://127.0.0.1:9/cb --json)
ID=$(echo "$CREATED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
SECRET=$(echo "$CREATED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
script idp "$(printf '%s:%s' "$ID" "$SECRET" | base64 -w0)"
wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$WORK/idp.lua" "http://127.0.0.1:$PORT/token" | tee "$WORK/idp.out" >&2
IDP_RSS=$(ps -o rss= -p "${PIDS[0]}")
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true

# the peer
if [ -n "${PEER_DIR:-}" ]; then
  PPORT=$(free_port)
  (cd "$PEER_DIR" && [ -d node_modules ] || npm ci --silent)
  (cd "$PEER_DIR" && PORT=$PPORT exec node server.js >/dev/null 2>&1) &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$PPORT/.well-known/openid-configuration"
  script peer "$(printf '%s' 'probe:probe-secret-probe-secret-probe-secret' | base64 -w0)"
  wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$WORK/peer.lua" "http://127.0.0.1:$PPORT/token" | tee "$WORK/peer.out" >&2
fi

echo
echo "client_credentials, wrk -t2 -c$CONNS, ${SECS}s each, one run:"
printf '%-22s %10s %9s %9s %8s\n' provider "tokens/s" "p50 ms" "p99 ms" non-2xx
awk '/^RESULT/ {printf "%-22s %10s %9s %9s %8s\n", ($2=="idp" ? "idp (ES256, SQLite)" : "node-oidc-provider"), $3, $4, $5, $6}' "$WORK"/*.out
echo "idp RSS after its run: ${IDP_RSS} KiB"
if [ -f "$WORK/peer.out" ]; then
  awk '/^RESULT idp/ {a=$3} /^RESULT peer/ {b=$3} END {if (b>0) printf "ratio idp / peer: %.2f×\n", a/b}' "$WORK/idp.out" "$WORK/peer.out"
fi
