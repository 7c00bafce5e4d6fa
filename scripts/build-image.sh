#!/usr/bin/env bash
# Builds the FROM scratch image from a prebuilt static binary (what `make image`
# runs after `make build`):
#
#   bash scripts/build-image.sh [BINARY] [TAG]      # defaults: target/release/docknap docknap:latest
#
# Nothing is pulled: the build context is a temporary folder holding
# Dockerfile.scratch and rootfs.tar (the binary at /usr/local/bin/docknap, an
# empty /data owned by 65534:65534, /tmp 1777), built with the legacy builder.
# Refuses a binary that is not static (it would not run in a scratch image)
# and a Dockerfile.scratch that is out of step with ./Dockerfile's final stage.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${1:-target/release/docknap}
TAG=${2:-docknap:latest}

die() { echo "build-image: $*" >&2; exit 1; }

[ -f "$BIN" ] || die "no binary at $BIN (run \`make build\` first)"
[ -x "$BIN" ] || die "$BIN is not executable"

# 1. The binary must be static: no program interpreter (dynamic loader).
if command -v readelf >/dev/null; then
  if readelf -lW "$BIN" | grep -q 'Requesting program interpreter'; then
    die "$BIN is dynamically linked; build it with RUSTFLAGS='-C target-feature=+crt-static' --target <host triple> (make build)"
  fi
elif ldd "$BIN" >/dev/null 2>&1; then
  # ldd succeeds only on dynamic executables.
  die "$BIN is dynamically linked; build it with RUSTFLAGS='-C target-feature=+crt-static' (make build)"
fi
VERSION_LINE=$("$BIN" --version) || die "$BIN --version failed"
VERSION=${VERSION_LINE##* }

# 2. Dockerfile.scratch and the final stage of ./Dockerfile must agree on
#    everything but the line that brings the files in (ADD rootfs.tar / COPY --from).
final_stage() {
  awk '/^FROM scratch/ {on=1} on' "$1" | grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' \
    | grep -v -e '^ADD rootfs.tar /$' -e '^COPY --from=build /out/rootfs/ /$'
}
if ! diff <(final_stage Dockerfile) <(final_stage Dockerfile.scratch) >/tmp/docknap-dockerfile-diff.$$ 2>&1; then
  cat /tmp/docknap-dockerfile-diff.$$ >&2
  rm -f /tmp/docknap-dockerfile-diff.$$
  die "Dockerfile.scratch and the final stage of Dockerfile differ (above); keep them in step"
fi
rm -f /tmp/docknap-dockerfile-diff.$$

docker info >/dev/null 2>&1 || die "the Docker Engine is not reachable (bash scripts/test-env.sh --engine-only starts it)"

# 3. The build context.
CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
mkdir -p "$CTX/rootfs/usr/local/bin" "$CTX/rootfs/data" "$CTX/rootfs/tmp"
cp "$BIN" "$CTX/rootfs/usr/local/bin/docknap"
chmod 0755 "$CTX/rootfs/usr/local/bin/docknap" "$CTX/rootfs/data" "$CTX/rootfs/usr" "$CTX/rootfs/usr/local" "$CTX/rootfs/usr/local/bin"
chmod 1777 "$CTX/rootfs/tmp"
# A fixed mtime keeps the layer identical for an identical binary.
EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
TAR_OPTS=(--numeric-owner --sort=name --mtime="@$EPOCH" -C "$CTX/rootfs")
tar "${TAR_OPTS[@]}" --owner=0 --group=0 -cf "$CTX/rootfs.tar" usr tmp
tar "${TAR_OPTS[@]}" --owner=65534 --group=65534 -rf "$CTX/rootfs.tar" data
rm -rf "$CTX/rootfs"
cp Dockerfile.scratch "$CTX/Dockerfile"

REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock web 2>/dev/null)" ]; then
  REVISION="$REVISION-dirty"
fi
SOURCE=$(git remote get-url origin 2>/dev/null || true)
CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# The image the tag points at now: removed below once the tag moves, so that
# rebuilds do not pile up untagged images.
OLD_ID=$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)
echo "build-image: $VERSION_LINE ($(du -h "$BIN" | cut -f1) static binary) -> $TAG"
DOCKER_BUILDKIT=0 docker build -q \
  --build-arg "VERSION=$VERSION" \
  --build-arg "REVISION=$REVISION" \
  --build-arg "CREATED=$CREATED" \
  --build-arg "SOURCE=$SOURCE" \
  -t "$TAG" "$CTX" 2> >(grep -v -e 'DEPRECATED' -e 'legacy builder' -e 'BuildKit is currently disabled' -e 'environment-variable' -e '^[[:space:]]*$' >&2) >/dev/null

NEW_ID=$(docker image inspect -f '{{.Id}}' "$TAG")
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$NEW_ID" ]; then
  # Fails harmlessly while a container still uses it.
  docker image rm "$OLD_ID" >/dev/null 2>&1 || true
fi
SIZE=$(docker image inspect -f '{{.Size}}' "$TAG")
echo "build-image: built $TAG, $(awk -v s="$SIZE" 'BEGIN { printf "%.2f MB (%d bytes)", s / 1e6, s }')"
