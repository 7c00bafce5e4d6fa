#!/usr/bin/env bash
# Schemathesis against the real server (`make test-api`): the binary is
# started on loopback with a fresh data directory and no Docker Engine
# (DOCKER_HOST points nowhere, so no action can touch a container), then
# fuzzed from its own /api/openapi.json as a viewer, an operator and an
# admin. A run fails on any 5xx (but the documented 503 docker_unavailable,
# see fuzz_hooks.py) and on any response outside the document.
#
# Not fuzzed, because they end the fuzzing session itself:
#   POST /api/auth/logout       revokes the caller's token;
#   PUT  /api/auth/password     revokes the caller's other tokens, and a
#                               right guess of the current password ends
#                               nothing but the run's reproducibility;
#   PUT/DELETE /api/users/{id}  revoke that user's tokens: the fuzzer would
#                               sooner or later pick the caller's own id;
#   GET  /api/events            an event stream never ends (its auth and
#                               shape are tested in tests/integration).
# The role x route matrix (tests/integration/security.rs) covers them.
#
# Usage: scripts/api/fuzz.sh BINARY   (EXAMPLES=N: examples per operation)
set -euo pipefail

BIN=${1:?usage: fuzz.sh BINARY}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ST="$ROOT/.venv/bin/schemathesis"
PY="$ROOT/.venv/bin/python"
EXAMPLES=${EXAMPLES:-15}
WORK=$(mktemp -d)
PASSWORD="fuzz-admin-password-1"
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"

DOCKNAP_LISTEN="127.0.0.1:$PORT" DOCKNAP_DATA_DIR="$WORK/data" DOCKNAP_ADMIN_PASSWORD="$PASSWORD" \
  DOCKER_HOST="unix:///nonexistent/docker.sock" DOCKNAP_LOG=warn "$BIN" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

# POST JSON, print one field of the answer.
post() { curl -fsS -X POST "$BASE$1" -H 'content-type: application/json' ${3:+-H "authorization: Bearer $3"} -d "$2" \
  | "$PY" -c "import json,sys; print(json.load(sys.stdin)$4)"; }
login() { post /api/auth/login "{\"username\":\"$1\",\"password\":\"$2\"}" "" "['token']"; }

# The document served is the committed one (docs/openapi.json), that the
# UI's types and docs/API.md are generated from.
curl -fsS "$BASE/api/openapi.json" | "$PY" -c '
import json, sys
served, committed = json.load(sys.stdin), json.load(open(sys.argv[1]))
sys.exit(0 if served == committed else "test-api: the server serves another document than docs/openapi.json (run scripts/api/generate.sh)")
' "$ROOT/docs/openapi.json"

ADMIN=$(login admin "$PASSWORD")
for role in viewer operator; do
  post /api/users "{\"username\":\"fuzz-$role\",\"password\":\"$PASSWORD\",\"role\":\"$role\"}" "$ADMIN" "['id']" >/dev/null
done
declare -A TOKEN=([viewer]=$(login fuzz-viewer "$PASSWORD") [operator]=$(login fuzz-operator "$PASSWORD") [admin]=$ADMIN)

status=0
cd "$WORK" # Schemathesis keeps its cache in the working directory.
for role in viewer operator admin; do
  echo "test-api: Schemathesis as $role ($EXAMPLES examples per operation)"
  SCHEMATHESIS_HOOKS=fuzz_hooks PYTHONPATH="$ROOT/scripts/api" "$ST" run "$BASE/api/openapi.json" \
    -H "Authorization: Bearer ${TOKEN[$role]}" \
    --checks no_server_error_but_engine_down,response_schema_conformance,status_code_conformance,content_type_conformance \
    --max-examples "$EXAMPLES" --phases examples,coverage,fuzzing --workers 1 --request-timeout 10 \
    --exclude-path /api/auth/logout --exclude-path /api/auth/password --exclude-path /api/events \
    --exclude-path-regex '^/api/users/\{id\}$' \
    --no-color --suppress-health-check all || status=1
done
if [ $status -ne 0 ]; then
  echo "test-api: failures above; the server's log:" >&2
  tail -n 50 "$WORK/server.log" >&2
fi
exit $status
