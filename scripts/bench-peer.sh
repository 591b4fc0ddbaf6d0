#!/usr/bin/env bash
# idp side by side with a peer provider, in one run on this machine: idp
# (release build, SQLite unless BENCH_DATABASE_URL names a PostgreSQL
# database) and panva's node-oidc-provider (in-memory store, opaque tokens),
# each under the same load, one after the other, then the ratios:
# - client_credentials under wrk,
# - with `idp/benches/flows.rs` (32 signed-in browsers): the code flow
#   (authorize prompt=none → token → userinfo), refresh (rotating) and
#   introspection; then idp alone: password sign-ins against the argon2id
#   bound of its parameters, RSS after the load and idle, the code flow and
#   RSS again with 100,000 more accounts / sessions / grants, and 10,000
#   browsers waiting on scan-to-login (scripts/scan-waiters.sh;
#   BENCH_SCAN_WAITERS=0 skips it).
# Loopback only, bounded duration.
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
cargo bench -q -p idp --bench flows --no-run 2>/dev/null
flows() { cargo bench -q -p idp --bench flows | tee -a "$WORK/flows.out"; }
BIN=${CARGO_TARGET_DIR:-target}/release/idp
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
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
export IDP_DATA_DIR=$WORK/idp IDP_ISSUER=http://127.0.0.1:$PORT
[ -n "${BENCH_DATABASE_URL:-}" ] && export IDP_DATABASE_URL=$BENCH_DATABASE_URL
# The load generator stands in for a reverse proxy: password sign-ins come
# from one address per citizen (X-Forwarded-For).
IDP_LISTEN=127.0.0.1:$PORT IDP_LOG=warn IDP_TRUSTED_PROXIES=127.0.0.1 "$BIN" serve &
PIDS+=($!)
wait_http "http://127.0.0.1:$PORT/healthz"
CREATED=$("$BIN" client create --name bench --redirect-uri http://127.0.0.1:9/cb --skip-consent \
  --scope "openid profile offline_access" --json)
ID=$(echo "$CREATED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
SECRET=$(echo "$CREATED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
script idp "$(printf '%s:%s' "$ID" "$SECRET" | base64 -w0)"
wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$WORK/idp.lua" "http://127.0.0.1:$PORT/token" | tee "$WORK/idp.out" >&2
IDP_NEW_PASSWORD='Pr0be-Passw0rd!x' "$BIN" user create --username probeuser1 --json >/dev/null
# One account per browser for the password sign-ins.
for i in $(seq 1 "$CONNS"); do
  IDP_NEW_PASSWORD='Pr0be-Passw0rd!x' "$BIN" user create --username "citizen$i" --json >/dev/null
done
idp_flows() {
  BENCH_ISSUER=http://127.0.0.1:$PORT BENCH_KIND=idp BENCH_CLIENT_ID=$ID BENCH_CLIENT_SECRET=$SECRET \
    BENCH_SECS=$SECS BENCH_CONCURRENCY=$CONNS flows
}
BENCH_SCENARIOS=refresh,introspect,code,password BENCH_CITIZEN_PREFIX=citizen idp_flows
# Resident memory in KiB, and of it the heap and stacks (RssAnon; the rest
# are the binary's own pages, which the page cache decides).
rss() { awk '/^VmRSS/ {r=$2} /^RssAnon/ {a=$2} END {printf "%s KiB (anon %s KiB)", r, a}' "/proc/${PIDS[0]}/status"; }
IDP_RSS=$(rss)
# Idle: the same server a few seconds after the load stopped, and again
# half a minute later (SQLite connections idle for 10 s are closed by then).
sleep 5
IDP_IDLE_RSS=$(rss)
sleep 30
IDP_IDLE_LATER_RSS=$(rss)
# +100,000 live sessions (each seeded account has one, with a grant and a
# refresh token), then the code flow again over the grown tables.
"$BIN" dev seed --accounts 100000 --client-id "$ID" --password 'Seed-pass-1' >/dev/null
BENCH_LABEL=idp-100k BENCH_SCENARIOS=code idp_flows
IDP_SESSIONS_RSS=$(rss)
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
  BENCH_ISSUER=http://127.0.0.1:$PPORT BENCH_KIND=peer BENCH_CLIENT_ID=probe \
    BENCH_CLIENT_SECRET=probe-secret-probe-secret-probe-secret BENCH_SECS=$SECS BENCH_CONCURRENCY=$CONNS flows
  kill "${PIDS[1]}"; wait "${PIDS[1]}" 2>/dev/null || true
fi

echo
echo "client_credentials, wrk -t2 -c$CONNS, ${SECS}s each, one run:"
printf '%-22s %10s %9s %9s %8s\n' provider "tokens/s" "p50 ms" "p99 ms" non-2xx
awk '/^RESULT/ {printf "%-22s %10s %9s %9s %8s\n", ($2=="idp" ? "idp (ES256, SQLite)" : "node-oidc-provider"), $3, $4, $5, $6}' "$WORK/idp.out" $( [ -f "$WORK/peer.out" ] && echo "$WORK/peer.out")
echo "idp RSS after its runs: ${IDP_RSS}"
if [ -f "$WORK/peer.out" ]; then
  awk '/^RESULT idp/ {a=$3} /^RESULT peer/ {b=$3} END {if (b>0) printf "ratio idp / peer: %.2f×\n", a/b}' "$WORK/idp.out" "$WORK/peer.out"
fi

echo
echo "code flow (authorize prompt=none → token → userinfo), refresh, introspection, password sign-in; $CONNS browsers, ${SECS}s each:"
printf '%-22s %-11s %10s %9s %9s %8s\n' provider scenario "per s" "p50 ms" "p99 ms" errors
awk '/^RESULT/ {printf "%-22s %-11s %10s %9s %9s %8s\n", ($2=="peer" ? "node-oidc-provider" : $2), $3, $4, $5, $6, $7}' "$WORK/flows.out"
awk '/^RESULT idp / {a[$3]=$4} /^RESULT peer / {b[$3]=$4}
  END {for (k in a) if (b[k]>0) printf "ratio idp / peer, %s: %.2f×\n", k, a[k]/b[k]}' "$WORK/flows.out"
awk '/^BOUND idp argon2id/ {bound=$4} /^RESULT idp password/ {got=$4}
  END {if (bound>0) printf "password sign-ins: %s/s of an argon2id bound of %s/s (all cores hashing, nothing else): %.0f%%\n", got, bound, 100*got/bound}' "$WORK/flows.out"
awk '/^RESULT idp code/ {a=$4} /^RESULT idp-100k code/ {b=$4}
  END {if (a>0 && b>0) printf "code flow with 100,000 more accounts, sessions and grants: %s/s (was %s/s)\n", b, a}' "$WORK/flows.out"
echo "idp RSS: ${IDP_RSS} after the load, ${IDP_IDLE_RSS} idle 5 s later, ${IDP_IDLE_LATER_RSS} half a minute after that, ${IDP_SESSIONS_RSS} with 100,000 more live sessions (after a code-flow run over them)"

# 10,000 browsers waiting on scan-to-login (a server of its own).
if [ "${BENCH_SCAN_WAITERS:-10000}" -gt 0 ]; then
  echo
  bash scripts/scan-waiters.sh "${BENCH_SCAN_WAITERS:-10000}" 10 || echo "scan-waiters.sh failed" >&2
fi
exit 0
