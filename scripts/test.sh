#!/usr/bin/env bash
# The whole test suite: unit + integration tests on SQLite and PostgreSQL,
# then the external-client conformance suite against the built binary.
# `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

log() { echo "== $*" >&2; }

# --- Scratch space: every test server's data folder, plugin copies and
# browser profile go under one folder for this run, removed at the end, so
# repeated runs do not fill the disk (a full disk fails every later test).
free_mb=$(df -Pm "${TMPDIR:-/tmp}" | awk 'NR==2 {print $4}')
log "free disk space for scratch files: ${free_mb} MiB"
if [ "${free_mb:-0}" -lt 2048 ]; then
  echo "less than 2 GiB free under ${TMPDIR:-/tmp}: the tests need room for their databases and plugin copies" >&2
  exit 1
fi
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/idp-run.XXXXXX")
export TMPDIR=$SCRATCH

# --- PostgreSQL: use the local server, starting it if it is installed but down.
PG_ADMIN_URL=${IDP_TEST_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }
if ! pg_up && command -v pg_ctlcluster >/dev/null; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
PG_DB=""
if pg_up; then
  # A throw-away database for this run; tests create one more per test from it.
  PG_DB="idp_ci_$(date +%s)_$$"
  psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
  export IDP_TEST_POSTGRES_URL="${PG_ADMIN_URL%/*}/$PG_DB"
  export IDP_TEST_DB_PREFIX="idp_t_$$_"
  log "PostgreSQL tests on $IDP_TEST_POSTGRES_URL"
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL is required in CI but 127.0.0.1:5432 is not reachable" >&2
  exit 1
else
  log "PostgreSQL not reachable on 127.0.0.1:5432: running SQLite only (see README)"
fi

cleanup() {
  rm -rf "$SCRATCH"
  if [ -n "$PG_DB" ]; then
    # This run's databases only (`_` escaped: LIKE reads it as any
    # character), dropped over one connection.
    local pattern="${IDP_TEST_DB_PREFIX//_/\\_}%"
    psql -At "$PG_ADMIN_URL" -c "SELECT datname FROM pg_database WHERE datname LIKE '$pattern' OR datname = '$PG_DB'" 2>/dev/null |
      sed 's/.*/DROP DATABASE IF EXISTS "&" WITH (FORCE);/' | psql -q "$PG_ADMIN_URL" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

log "cargo test (unit + integration)"
set +e
cargo test --workspace --all-targets 2>&1 | grep --line-buffered -vE '^\s+(Compiling|Downloaded|Downloading)'
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || exit "$status"

log "conformance suite (openid-client, authlib)"
bash conformance/run.sh "$TARGET/debug/idp"

# --- browser end-to-end test (browser-tests/): added with the browser test
log "browser test (Debian chromium + playwright-core)"
bash browser-tests/run.sh "$TARGET/debug/idp"
