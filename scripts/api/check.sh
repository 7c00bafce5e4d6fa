#!/usr/bin/env bash
# Drift check (make test): the UI's generated types and docs/API.md must be
# what docs/openapi.json gives now. (That docs/openapi.json is what the server
# serves is checked by the unit test the_committed_document_is_the_servers
# and, against the running binary, by scripts/api/fuzz.sh.) Fix with
# scripts/api/generate.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd web && npx --no-install openapi-typescript ../docs/openapi.json -o "$TMP/api-schema.ts" --silent)
node scripts/api/api-md.mjs docs/openapi.json >"$TMP/API.md"
status=0
for pair in "web/src/lib/api-schema.ts:$TMP/api-schema.ts" "docs/API.md:$TMP/API.md"; do
  committed=${pair%%:*} fresh=${pair#*:}
  if ! diff -q "$committed" "$fresh" >/dev/null; then
    echo "check: $committed is stale (differs from what docs/openapi.json gives); run scripts/api/generate.sh" >&2
    diff -u "$committed" "$fresh" | head -n 30 >&2 || true
    status=1
  fi
done
[ $status -eq 0 ] && echo "check: the UI's API types and docs/API.md match docs/openapi.json"
exit $status
