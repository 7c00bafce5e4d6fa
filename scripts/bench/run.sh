#!/usr/bin/env bash
# The DockNap benchmark suite (`make bench`, after `make image`): figures are
# printed and written into docs/PERFORMANCE.md (between the bench markers);
# nothing is asserted. Takes about 8 minutes; BENCH_QUICK=1 runs a shortened
# version (smaller counts, shorter waits) for trying it out.
#
# Needs: the image (DOCKNAP_IMAGE, default docknap:latest; the bench runs the
# binary copied out of it, or DOCKNAP_BIN when set), the Docker Engine, the test
# image (DOCKNAP_TEST_IMAGE) and compose v2 (DOCKNAP_COMPOSE, default
# .venv/bin/docker-compose): `bash scripts/test-env.sh` provides the last
# three. Installs Debian's wrk when it is missing. Talks only to 127.0.0.1
# and the local engine. Run it on an otherwise quiet machine: other
# containers' events and other processes' CPU show up in the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk (Debian package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
docker info >/dev/null 2>&1 || { echo "bench: the Docker Engine is not reachable (bash scripts/test-env.sh)" >&2; exit 1; }
[ -x "${DOCKNAP_COMPOSE:-.venv/bin/docker-compose}" ] || { echo "bench: compose v2 is missing (bash scripts/test-env.sh)" >&2; exit 1; }

# 1,000 SSE clients need as many sockets, in this shell and in the server it spawns.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec python3 scripts/bench/bench.py "$@"
