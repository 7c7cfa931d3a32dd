#!/usr/bin/env bash
# Builds the raftlock container image (Containerfile beside this script):
# static raftlockd and raftlock binaries, built here with the Go toolchain,
# copied into an image FROM scratch. No base image is pulled and nothing runs
# inside a container, so this works where containers cannot run.
#
#   deploy/container/build.sh                 # tags localhost/raftlock:dev
#   IMAGE=registry.example.com/raftlock:v1.2.3 VERSION=v1.2.3 deploy/container/build.sh
#
# Environment:
#   IMAGE           the image's tag; default localhost/raftlock:dev, the
#                   image that examples/kubernetes/*.yaml run
#   VERSION         what "raftlockd --version" says; default "git describe
#                   --tags --always" of this tree, else "dev"
#   GOARCH          the binaries' architecture; default the Go toolchain's
#   CONTAINER_TOOL  podman (the default; the one the tests use) or docker
#
# The Go build cache is used as for any build: only the first run compiles
# everything.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

IMAGE="${IMAGE:-localhost/raftlock:dev}"
VERSION="${VERSION:-$(git -C "$root" describe --tags --always 2>/dev/null || echo dev)}"
CONTAINER_TOOL="${CONTAINER_TOOL:-podman}"
GOARCH="${GOARCH:-$(go env GOARCH)}"

if ! command -v "$CONTAINER_TOOL" >/dev/null; then
  echo "build.sh: $CONTAINER_TOOL not found (set CONTAINER_TOOL, or install podman)" >&2
  exit 1
fi

ctx="$(mktemp -d "${TMPDIR:-/tmp}/raftlock-image.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT

echo "build.sh: go build raftlockd and raftlock (linux/$GOARCH, static, version $VERSION)" >&2
install -d -m 0755 "$ctx/rootfs" "$ctx/rootfs/usr" "$ctx/rootfs/usr/bin" "$ctx/rootfs/var" "$ctx/rootfs/var/lib"
(cd "$root" && CGO_ENABLED=0 GOOS=linux GOARCH="$GOARCH" go build -trimpath \
  -ldflags "-s -w -X github.com/raftlock/raftlock/version.Version=$VERSION" \
  -o "$ctx/rootfs/usr/bin/" ./cmd/raftlockd ./cmd/raftlock)
chmod 0755 "$ctx/rootfs/usr/bin/raftlockd" "$ctx/rootfs/usr/bin/raftlock"
install -d -m 0755 "$ctx/data"
install -d -m 0700 "$ctx/data/raftlock"
cp "$here/Containerfile" "$ctx/Containerfile"

echo "build.sh: $CONTAINER_TOOL build -t $IMAGE" >&2
"$CONTAINER_TOOL" build --file "$ctx/Containerfile" --tag "$IMAGE" \
  --build-arg "VERSION=$VERSION" --platform "linux/$GOARCH" "$ctx"
