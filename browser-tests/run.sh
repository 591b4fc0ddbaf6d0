#!/usr/bin/env bash
# Real-browser end-to-end test for idp: Debian's Chromium (headless) driven by
# playwright-core walks demo RP -> sign in -> register (captcha + SMS code) ->
# consent -> demo result, on a PC and a phone layout, in Tibetan, and by keyboard
# alone, checks every page with axe-core (node_modules/axe-core) and saves
# screenshots in browser-tests/artifacts/. Usage: bash browser-tests/run.sh [path-to-idp-binary]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

if [[ $# -ge 1 ]]; then
  if dir="$(cd "$(dirname "$1")" 2>/dev/null && pwd)"; then BIN="$dir/$(basename "$1")"; else BIN="$1"; fi
else
  BIN="${CARGO_TARGET_DIR:-target}/debug/idp"
  [[ $BIN == /* ]] || BIN="$ROOT/$BIN"
fi
if [[ ! -x $BIN ]]; then
  echo "browser: idp binary not found or not executable: $BIN" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

log() { echo "browser: $*" >&2; }
fail_setup() {
  log "$*"
  echo "0 passed, 1 failed"
  exit 1
}

# ---------------------------------------------------------------- dependencies
APT_UPDATED=0
apt_install() { # package... (the machine runs as root)
  local out
  out="$(mktemp "${TMPDIR:-/tmp}/idp-browser-apt.XXXXXX")"
  log "installing $* (apt-get)"
  if ! { { [[ $APT_UPDATED == 1 ]] || apt-get update -qq; } &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >"$out" 2>&1; then
    tail -n 20 "$out" | sed 's/^/  apt| /' >&2
    rm -f "$out"
    fail_setup "could not install $* with apt-get"
  fi
  APT_UPDATED=1
  rm -f "$out"
}
# Debian's Chromium: playwright's own browser download is never used.
command -v chromium >/dev/null || apt_install chromium
CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
[[ -x $CHROMIUM ]] || fail_setup "chromium not found: $CHROMIUM"
# CJK fonts, or every Chinese character in the screenshots is a box.
fc-list :lang=zh 2>/dev/null | grep -q . || apt_install fonts-noto-cjk
# A Tibetan font for the bilingual (bo) pages.
fc-list :lang=bo 2>/dev/null | grep -q . || apt_install fonts-tibetan-machine

install_node() {
  local stamp="$HERE/node_modules/.browser-tests-stamp" want
  want="$(node --version) $(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
  if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  log "installing node dependencies (npm ci)"
  (cd "$HERE" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1
  echo "$want" >"$stamp"
}
install_node || fail_setup "npm ci failed"

# ---------------------------------------------------------------- server
WORK="$(mktemp -d "${TMPDIR:-/tmp}/idp-browser.XXXXXX")"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
export IDP_DATA_DIR="$WORK/data"
# "localhost", not the address: WebAuthn needs a domain name as the relying
# party id (passkeys are off for an IP-address issuer), and Chromium treats
# http://localhost as a secure context.
export IDP_ISSUER="http://localhost:$PORT"
export IDP_LISTEN="127.0.0.1:$PORT"
mkdir -p "$IDP_DATA_DIR"
SERVER_LOG="$WORK/server.log"
SERVER_PID=""

# The health-code plugin (E1-E6), when it is built beside the
# binary: loaded from a private folder, its admin pages behind a random token.
PLUGIN_LIB="$(dirname "$BIN")/libidp_plugin_health_code.so"
# Missing beside a binary of a cargo target folder (target/debug, .../release):
# built there first, as the integration tests build their plugins
# (tests/it/plugin_kit.rs); the console walkthrough needs its scopes and pages.
PROFILE_DIR="$(dirname "$BIN")"
if [[ ! -f $PLUGIN_LIB && -d "$PROFILE_DIR/.fingerprint" ]] && command -v cargo >/dev/null; then
  release=()
  [[ "$(basename "$PROFILE_DIR")" == release ]] && release=(--release)
  log "building the health-code plugin beside $BIN"
  (cd "$ROOT" && CARGO_TARGET_DIR="$(cd "$PROFILE_DIR/.." && pwd)" cargo build -q "${release[@]}" -p idp-plugin-health-code) ||
    fail_setup "could not build the health-code plugin"
fi
if [[ -f $PLUGIN_LIB ]]; then
  mkdir -p "$WORK/plugins"
  cp "$PLUGIN_LIB" "$WORK/plugins/"
  chmod 755 "$WORK/plugins"
  chmod 644 "$WORK/plugins/"*.so
  E2E_PLUGIN_ADMIN_TOKEN="browser-admin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
  export E2E_PLUGIN_ADMIN_TOKEN
  export IDP_PLUGINS__DIR="$WORK/plugins"
  IDP_PLUGINS__ADMIN_TOKEN_SHA256="$(printf %s "$E2E_PLUGIN_ADMIN_TOKEN" | sha256sum | cut -d' ' -f1)"
  export IDP_PLUGINS__ADMIN_TOKEN_SHA256
fi

cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_server_log() {
  if [[ -s $SERVER_LOG ]]; then
    log "last lines of the server log:"
    tail -n 40 "$SERVER_LOG" | sed 's/^/  server| /' >&2
  fi
}

# The health code asks for a fresh face check in the citizen app before
# showing the code (on by default); the browser has no app, so this run
# switches that check off (the HTTP tests cover it).
NO_COLOR=1 env "IDP_PLUGINS__SETTINGS__HEALTH-CODE__FACE_MAX_AGE=0" "$BIN" serve --demo >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

ready=0
for _ in $(seq 1 300); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
  code="$(curl -s -o /dev/null -w '%{http_code}' "$IDP_ISSUER/health" || true)"
  if [[ $code == 200 ]]; then ready=1; break; fi
  sleep 0.1
done
if [[ $ready != 1 ]]; then
  log "server did not answer GET /health with 200 within 30 s on $IDP_ISSUER"
  show_server_log
  echo "0 passed, 1 failed"
  exit 1
fi
log "server up at $IDP_ISSUER (pid $SERVER_PID)"

# A citizen with a real-name identity, for the health-code pages (an ID
# number none of the demo's seeded sandbox people holds).
if [[ -n ${IDP_PLUGINS__DIR:-} ]]; then
  export E2E_HC_USER="hc_citizen"
  E2E_HC_PASSWORD="Hc-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  export E2E_HC_PASSWORD
  if ! IDP_NEW_PASSWORD="$E2E_HC_PASSWORD" "$BIN" user create --username "$E2E_HC_USER" --name "张三" \
    --id-number 110105198001011238 >"$WORK/user.out" 2>&1; then
    cat "$WORK/user.out" >&2
    fail_setup "could not create the health-code citizen"
  fi
fi

# ---------------------------------------------------------------- browser test
ARTIFACTS_DIR="$HERE/artifacts"
mkdir -p "$ARTIFACTS_DIR"
rm -f "$ARTIFACTS_DIR"/*.png # never show last run's pictures as this run's

set +e
(cd "$HERE" && E2E_IDP_BIN="$BIN" ARTIFACTS_DIR="$ARTIFACTS_DIR" CHROMIUM="$CHROMIUM" NO_COLOR=1 \
  timeout 900 node e2e.mjs) 2>&1 | tee "$WORK/e2e.out"
rc=${PIPESTATUS[0]}
set -e

line="$(grep -E '^browser: [0-9]+ passed, [0-9]+ failed' "$WORK/e2e.out" | tail -n 1 || true)"
if [[ -n $line ]]; then
  read -r passed failed < <(sed -E 's/^browser: ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/' <<<"$line")
else
  passed=0 failed=0
fi
# a run that exited non-zero without reporting a failure still counts as one
if [[ $rc -ne 0 && $failed -eq 0 ]]; then failed=1; fi
if [[ $failed -ne 0 ]]; then show_server_log; fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
