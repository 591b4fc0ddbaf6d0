#!/usr/bin/env bash
# Conformance suite for idp: drives the running binary with openid-client (node)
# and authlib (python). Usage: bash conformance/run.sh [path-to-idp-binary]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

if [[ $# -ge 1 ]]; then
  BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
else
  BIN="${CARGO_TARGET_DIR:-target}/debug/idp"
  [[ $BIN == /* ]] || BIN="$ROOT/$BIN"
fi
if [[ ! -x $BIN ]]; then
  echo "conformance: idp binary not found or not executable: $BIN" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

log() { echo "conformance: $*" >&2; }

# ---------------------------------------------------------------- dependencies
install_node() {
  local dir="$HERE/node" stamp="$HERE/node/node_modules/.conformance-stamp" want
  want="$(node --version) $(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  log "installing node dependencies (npm ci)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" >"$stamp"
}

install_python() {
  local venv="$HERE/.venv" req="$HERE/python/requirements.txt" stamp want
  stamp="$venv/.conformance-stamp"
  want="$(python3 --version) $(sha256sum "$req" | cut -d' ' -f1)"
  if [[ -x $venv/bin/python && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  log "installing python dependencies (venv + pip)"
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
}

install_node
install_python

# ---------------------------------------------------------------- server
WORK="$(mktemp -d "${TMPDIR:-/tmp}/idp-conformance.XXXXXX")"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
export IDP_DATA_DIR="$WORK/data"
export IDP_ISSUER="http://127.0.0.1:$PORT"
export IDP_LISTEN="127.0.0.1:$PORT"
export IDP_MASTER_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
# A pushed request_uri lives 5 s here (default 60 s), so the expired-request_uri
# check waits seconds, not a minute (protocol.par_ttl).
export IDP_PROTOCOL__PAR_TTL=5
mkdir -p "$IDP_DATA_DIR"
SERVER_LOG="$WORK/server.log"
SERVER_PID=""

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

"$BIN" serve >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

ready=0
for _ in $(seq 1 300); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
  code="$(curl -s -o /dev/null -w '%{http_code}' "$IDP_ISSUER/.well-known/openid-configuration" || true)"
  if [[ $code == 200 ]]; then ready=1; break; fi
  sleep 0.1
done
if [[ $ready != 1 ]]; then
  log "server did not answer discovery with 200 within 30 s on $IDP_ISSUER"
  show_server_log
  echo "0 passed, 1 failed"
  exit 1
fi
log "server up at $IDP_ISSUER (pid $SERVER_PID)"

# ---------------------------------------------------------------- clients and user
json_of() { # extract the JSON object printed on stdout by the CLI
  python3 -c 'import sys, json
t = sys.stdin.read(); i, j = t.find("{"), t.rfind("}")
print(json.dumps(json.loads(t[i:j + 1])))'
}

cli() {
  local out
  if ! out="$("$BIN" "$@" 2>"$WORK/cli.err")"; then
    log "CLI failed: idp $*"
    sed 's/^/  cli| /' "$WORK/cli.err" >&2
    return 1
  fi
  printf '%s' "$out" | json_of
}

USER_PASSWORD='Conf-pass-123!'
setup_failed() {
  show_server_log
  echo "0 passed, 1 failed"
  exit 1
}
USER_JSON="$(cli user create --username confuser1 --password "$USER_PASSWORD" --email conf@example.com \
  --phone 13800138000 --name '测试用户' --json)" || setup_failed

make_conf() { # suite -> writes $WORK/conf-<suite>.json
  local suite="$1" common=(--redirect-uri http://127.0.0.1:9/cb --post-logout-redirect-uri http://127.0.0.1:9/out --json)
  local basic consent post public rs256 other
  basic="$(cli client create --name "conf-$suite-basic" "${common[@]}")" || return 1
  consent="$(cli client create --name "conf-$suite-consent" "${common[@]}")" || return 1
  post="$(cli client create --name "conf-$suite-post" --auth-method client_secret_post --skip-consent "${common[@]}")" || return 1
  public="$(cli client create --name "conf-$suite-public" --public --skip-consent "${common[@]}")" || return 1
  rs256="$(cli client create --name "conf-$suite-rs256" --id-token-alg RS256 --skip-consent "${common[@]}")" || return 1
  other="$(cli client create --name "conf-$suite-other" --skip-consent "${common[@]}")" || return 1
  ISSUER="$IDP_ISSUER" USER_JSON="$USER_JSON" USER_PASSWORD="$USER_PASSWORD" \
    C_BASIC="$basic" C_CONSENT="$consent" C_POST="$post" C_PUBLIC="$public" C_RS256="$rs256" C_OTHER="$other" \
    python3 - >"$WORK/conf-$suite.json" <<'PY' || return 1
import json, os
u = json.loads(os.environ["USER_JSON"])
def c(var, auth, **extra):
    d = json.loads(os.environ[var])
    d["auth"] = auth
    d.update(extra)
    return d
print(json.dumps({
    "issuer": os.environ["ISSUER"],
    "user": {"username": u.get("username", "confuser1"), "sub": u["sub"], "password": os.environ["USER_PASSWORD"],
             "email": "conf@example.com", "phone": "13800138000", "name": "测试用户"},
    "clients": {
        "basic": c("C_BASIC", "client_secret_basic"),
        "consent": c("C_CONSENT", "client_secret_basic"),
        "post": c("C_POST", "client_secret_post"),
        "public": c("C_PUBLIC", "none"),
        "rs256": c("C_RS256", "client_secret_basic", alg="RS256"),
        "other": c("C_OTHER", "client_secret_basic"),
    },
}, ensure_ascii=False, indent=1))
PY
}

make_conf node || setup_failed
make_conf python || setup_failed

# ---------------------------------------------------------------- legal person (C1–C4)
# An enterprise whose approved agent signs in for it: the agent's account has
# a sandbox real-name identity (bound at the counter by the CLI) so the
# verifier passes his face; the reference citizen app (built beside idp) is
# signed in as him and opens the first-sign-in face gate, as a phone would.
make_legal() {
  local citizen="$(dirname "$BIN")/citizen-app" agent ent app_client
  if [[ ! -x $citizen ]]; then log "citizen-app not found beside $BIN"; return 1; fi
  agent="$(cli user create --username confagent1 --password "$USER_PASSWORD" --phone 13800138001 --json)" || return 1
  "$BIN" identity in-person confagent1 --name '陈一' --number 110101196606060097 --valid-from 2013-01-01 \
    --long-term --place conformance >/dev/null 2>"$WORK/cli.err" || { sed 's/^/  cli| /' "$WORK/cli.err" >&2; return 1; }
  ent="$("$BIN" enterprise create --uscc 91440300708461136T --name '示例科技有限公司' --representative-name '张三' \
    --representative-id 110101199003074514 --representative-phone 13900000009 --password corp1234 2>/dev/null)" || return 1
  "$BIN" enterprise add-agent --uscc 91440300708461136T --agent confagent1 --approved >/dev/null || return 1
  app_client="$(cli client create --name conf-citizen-app --public --skip-consent \
    --redirect-uri http://127.0.0.1/callback --json)" || return 1
  app_client="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["client_id"])' "$app_client")"
  "$BIN" client allow-scope "$app_client" scan_login >/dev/null || return 1
  "$citizen" --issuer "$IDP_ISSUER" --client-id="$app_client" --state "$WORK/citizen-app.json" \
    login --username confagent1 --password "$USER_PASSWORD" >/dev/null || return 1
  printf 'sandbox face sample' >"$WORK/face.jpg"
  AGENT_JSON="$agent" ENT_ID="$ent" APP_CLIENT="$app_client" CITIZEN="$citizen" WORK="$WORK" \
    USER_PASSWORD="$USER_PASSWORD" CONF="$WORK/conf-node.json" python3 - <<'PY' || return 1
import json, os
conf = json.load(open(os.environ["CONF"]))
agent = json.loads(os.environ["AGENT_JSON"])
conf["legal"] = {
    "enterprise": {"id": os.environ["ENT_ID"].strip(), "uscc": "91440300708461136T", "name": "示例科技有限公司"},
    "agent": {"login": "confagent1", "password": os.environ["USER_PASSWORD"], "sub": agent["sub"]},
    "citizen_app": {"bin": os.environ["CITIZEN"], "client_id": os.environ["APP_CLIENT"],
                    "state": os.path.join(os.environ["WORK"], "citizen-app.json"),
                    "photo": os.path.join(os.environ["WORK"], "face.jpg")},
}
json.dump(conf, open(os.environ["CONF"], "w"), ensure_ascii=False, indent=1)
PY
}
make_legal || setup_failed

# ---------------------------------------------------------------- FAPI 2.0 and the protocol surface (issue 17)
# A FAPI 2.0 client (profile fapi2: PAR, PKCE S256, private_key_jwt, DPoP)
# whose ES256 key pair the suite generates (node/lib/keygen.mjs; the private
# JWK stays in $WORK), a private_key_jwt client for authlib, three pairwise
# clients (two in the sector 127.0.0.1, one in the sector localhost), a
# device-grant client and a CIBA (poll) client. The CIBA request is approved
# in the citizen app signed in above as confagent1.
make_protocol() {
  local fapi_jwks py_jwks fapi pkjwt pw_a pw_a2 pw_b device ciba
  local cb=(--redirect-uri http://127.0.0.1:9/cb --skip-consent --json)
  fapi_jwks="$(cd "$HERE/node" && node lib/keygen.mjs "$WORK/fapi-key.json")" || return 1
  py_jwks="$(cd "$HERE/node" && node lib/keygen.mjs "$WORK/pkjwt-key.json")" || return 1
  fapi="$(cli client create --name conf-fapi2 --profile fapi2 --auth-method private_key_jwt --jwks "$fapi_jwks" \
    --grant-type authorization_code --grant-type refresh_token "${cb[@]}")" || return 1
  pkjwt="$(cli client create --name conf-python-pkjwt --auth-method private_key_jwt --jwks "$py_jwks" \
    --grant-type authorization_code --grant-type refresh_token --grant-type client_credentials "${cb[@]}")" || return 1
  pw_a="$(cli client create --name conf-pairwise-a --subject-type pairwise "${cb[@]}")" || return 1
  pw_a2="$(cli client create --name conf-pairwise-a2 --subject-type pairwise "${cb[@]}")" || return 1
  pw_b="$(cli client create --name conf-pairwise-b --subject-type pairwise \
    --redirect-uri http://localhost:9/cb --skip-consent --json)" || return 1
  device="$(cli client create --name conf-device --grant-type authorization_code \
    --grant-type urn:ietf:params:oauth:grant-type:device_code "${cb[@]}")" || return 1
  ciba="$(cli client create --name conf-ciba --grant-type authorization_code \
    --grant-type urn:openid:params:grant-type:ciba --backchannel-token-delivery-mode poll "${cb[@]}")" || return 1
  FAPI="$fapi" PKJWT="$pkjwt" PW_A="$pw_a" PW_A2="$pw_a2" PW_B="$pw_b" DEVICE="$device" CIBA="$ciba" WORK="$WORK" \
    PAR_TTL="$IDP_PROTOCOL__PAR_TTL" python3 - <<'PY' || return 1
import json, os
work = os.environ["WORK"]
def c(var, auth, **extra):
    d = json.loads(os.environ[var])
    d["auth"] = auth
    d.update(extra)
    return d
key = lambda name: json.load(open(os.path.join(work, name)))["private"]
node = os.path.join(work, "conf-node.json")
conf = json.load(open(node))
conf["par_ttl"] = int(os.environ["PAR_TTL"])
conf["clients"].update({
    "fapi": c("FAPI", "private_key_jwt", key=key("fapi-key.json")),
    "pairwise_a": c("PW_A", "client_secret_basic"),
    "pairwise_a2": c("PW_A2", "client_secret_basic"),
    "pairwise_b": c("PW_B", "client_secret_basic", redirect_uri="http://localhost:9/cb"),
    "device": c("DEVICE", "client_secret_basic"),
    "ciba": c("CIBA", "client_secret_basic"),
})
json.dump(conf, open(node, "w"), ensure_ascii=False, indent=1)
py = os.path.join(work, "conf-python.json")
conf = json.load(open(py))
conf["clients"]["pkjwt"] = c("PKJWT", "private_key_jwt", key=key("pkjwt-key.json"))
json.dump(conf, open(py, "w"), ensure_ascii=False, indent=1)
PY
}
make_protocol || setup_failed

# ---------------------------------------------------------------- suites
counts() { # file prefix -> "passed failed" from the suite's summary line
  local line
  line="$(grep -E "^$2: [0-9]+ passed, [0-9]+ failed" "$1" | tail -n 1 || true)"
  if [[ -z $line ]]; then echo "0 1"; return; fi
  sed -E 's/^[a-z]+: ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/' <<<"$line"
}

log "node suite (openid-client)"
set +e
(cd "$HERE/node" && CONF_FILE="$WORK/conf-node.json" NO_COLOR=1 \
  node --test --test-concurrency=1 --test-reporter=./reporter.mjs test/) 2>&1 | tee "$WORK/node.out"
node_rc=${PIPESTATUS[0]}
log "python suite (authlib)"
(cd "$HERE/python" && CONF_FILE="$WORK/conf-python.json" PYTHONDONTWRITEBYTECODE=1 \
  "$HERE/.venv/bin/python" conformance.py) 2>&1 | tee "$WORK/python.out"
py_rc=${PIPESTATUS[0]}
set -e

read -r np nf < <(counts "$WORK/node.out" node)
read -r pp pf < <(counts "$WORK/python.out" python)
# a suite that exited non-zero without reporting a failure still counts as one
if [[ $node_rc -ne 0 && $nf -eq 0 ]]; then nf=1; fi
if [[ $py_rc -ne 0 && $pf -eq 0 ]]; then pf=1; fi
passed=$((np + pp))
failed=$((nf + pf))
if [[ $failed -ne 0 ]]; then show_server_log; fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
