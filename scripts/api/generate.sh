#!/usr/bin/env bash
# Regenerates what is made from the server's API document, after a change to
# a route or an API type: docs/openapi.json (from the code, by a unit test),
# the UI's types web/src/lib/api-schema.ts (npm openapi-typescript) and
# docs/API.md. Commit the results; scripts/api/check.sh (make test) fails
# while they are stale.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
DOCKNAP_WRITE_OPENAPI=1 cargo test --quiet --lib api::openapi::tests::the_committed_document_is_the_servers >/dev/null
(cd web && npx --no-install openapi-typescript ../docs/openapi.json -o src/lib/api-schema.ts --silent)
node scripts/api/api-md.mjs docs/openapi.json >docs/API.md
echo "generate: docs/openapi.json, web/src/lib/api-schema.ts, docs/API.md"
