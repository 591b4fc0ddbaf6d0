#!/usr/bin/env bash
# Latency as the data grows (issue 16, "Large data"): one idp server (release
# build) on a PostgreSQL database of its own, grown step by step with
# `idp dev seed` (accounts with a live session, a grant and a refresh token
# each), and after each step, with `idp/benches/flows.rs`:
# - the code flow (authorize prompt=none → token → userinfo: token issuance),
# - password sign-ins, each as a random seeded account typed by username or
#   (every other time) by phone number, so the lookups land all over the
#   table.
# Prints one table: size, seed time, and per scenario throughput, p50, p99.
#
#   bash scripts/scale-curve.sh [sizes="10000 1000000 10000000"] [seconds=10] [browsers=8]
#
# IDP_SCALE_PG names the PostgreSQL server (default the local one); the
# database `idp_scale` on it is dropped and made again. Ten million accounts
# take a quarter of an hour or more on a shared 2-core machine.
#
# IDP_SCALE_KEEP=DIR keeps the server's data directory (its master key) and
# the client in DIR: a first run with it seeds as usual, a later run with
# the same DIR measures the grown database again without dropping it (the
# seed then only adds what is missing; the accounts already there are
# passed over as no-ops).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${1:-10000 1000000 10000000}
SECS=${2:-10}
CONNS=${3:-8}
PG=${IDP_SCALE_PG:-postgres://postgres@127.0.0.1:5432}
cargo build --release -q -p idp
cargo bench -q -p idp --bench flows --no-run 2>/dev/null
BIN=${CARGO_TARGET_DIR:-target}/release/idp
WORK=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 150); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "$1 did not answer" >&2; exit 1; }

DATA=$WORK/idp
KEEP=${IDP_SCALE_KEEP:-}
if [ -n "$KEEP" ]; then
  mkdir -p "$KEEP"
  DATA=$KEEP/data
fi
if [ -z "$KEEP" ] || [ ! -f "$KEEP/client.json" ]; then
  psql -q "$PG/postgres" -c 'DROP DATABASE IF EXISTS idp_scale' -c 'CREATE DATABASE idp_scale'
fi
PORT=$(free_port)
export IDP_DATA_DIR=$DATA IDP_ISSUER=http://127.0.0.1:$PORT IDP_DATABASE_URL=$PG/idp_scale
# Sign-ins come from one address per browser (X-Forwarded-For).
IDP_LISTEN=127.0.0.1:$PORT IDP_LOG=warn IDP_TRUSTED_PROXIES=127.0.0.1 "$BIN" serve &
PID=$!
wait_http "http://127.0.0.1:$PORT/healthz"
if [ -n "$KEEP" ] && [ -f "$KEEP/client.json" ]; then
  CREATED=$(cat "$KEEP/client.json")
else
  CREATED=$("$BIN" client create --name scale --redirect-uri http://127.0.0.1:9/cb --skip-consent \
    --scope "openid profile offline_access" --json)
  [ -n "$KEEP" ] && echo "$CREATED" > "$KEEP/client.json"
fi
ID=$(echo "$CREATED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
SECRET=$(echo "$CREATED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')

for N in $SIZES; do
  started=$(date +%s)
  "$BIN" dev seed --accounts "$N" --client-id "$ID" --password 'Seed-pass-1' >/dev/null
  echo "SEEDED $N $(( $(date +%s) - started ))" | tee -a "$WORK/curve.out"
  # The browsers sign in as seed1, by its phone (the code flow uses their
  # sessions).
  BENCH_ISSUER=http://127.0.0.1:$PORT BENCH_KIND=idp BENCH_CLIENT_ID=$ID BENCH_CLIENT_SECRET=$SECRET \
    BENCH_USER=13900000001 BENCH_PASSWORD='Seed-pass-1' BENCH_LABEL="n$N" BENCH_SECS=$SECS BENCH_CONCURRENCY=$CONNS \
    BENCH_SCENARIOS=code,password BENCH_CITIZEN_PREFIX=seed BENCH_CITIZEN_SPREAD="$N" \
    cargo bench -q -p idp --bench flows | tee -a "$WORK/curve.out"
done

echo
echo "PostgreSQL, $CONNS browsers, ${SECS}s per scenario; password sign-ins as random seeded accounts (username / phone):"
printf '%12s %8s %12s %9s %9s %12s %9s %9s %7s\n' accounts "seed s" "code /s" "p50 ms" "p99 ms" "password /s" "p50 ms" "p99 ms" errors
awk '/^SEEDED/ {n=$2; seeded[n]=$3; order[++k]=n}
  /^RESULT/ {n=substr($2,2); r[n,$3]=$4; p50[n,$3]=$5; p99[n,$3]=$6; e[n]+=$7}
  END {for (i=1;i<=k;i++) {n=order[i]; printf "%12s %8s %12s %9s %9s %12s %9s %9s %7s\n", n, seeded[n],
    r[n,"code"], p50[n,"code"], p99[n,"code"], r[n,"password"], p50[n,"password"], p99[n,"password"], e[n]}}' "$WORK/curve.out"
