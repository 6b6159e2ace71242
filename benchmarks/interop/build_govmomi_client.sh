#!/usr/bin/env bash
# Build benchmarks/interop/govmomi_client.go fully offline from Debian packages only,
# the way the shared folder's tools/build-vcsim.sh (next to the checkout) builds vcsim:
#   golang-go                         (Go 1.19 toolchain, Debian bookworm)
#   golang-github-vmware-govmomi-dev  (govmomi 0.24.2 library sources)
# They are installed (apt-get) only when missing. The program is copied to a fixed
# GOPATH import path in a temporary directory and built in GOPATH mode against
# /usr/share/gocode (GO111MODULE=off, GOPROXY=off: no network), with -trimpath and an
# empty build id, so the same sources and toolchain give the same binary.
#
# Usage: build_govmomi_client.sh [OUT_DIR]     (default: <repo>/benchmarks/.cache)
# Result: OUT_DIR/govmomi_client
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="${1:-$HERE/../.cache}"

need_pkgs=()
command -v go >/dev/null 2>&1 || need_pkgs+=(golang-go)
[ -d /usr/share/gocode/src/github.com/vmware/govmomi/vim25 ] || need_pkgs+=(golang-github-vmware-govmomi-dev)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need_pkgs[@]}"
fi

go version

WORK="$(mktemp -d /tmp/govmomi-client-build.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
SRC="$WORK/gopath/src/vcbsim-interop/govmomi_client"   # fixed import path -> reproducible binary
mkdir -p "$SRC" "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
cp "$HERE/govmomi_client.go" "$SRC/main.go"

# GOPATH mode: imports resolve from Debian's /usr/share/gocode; no network.
export GO111MODULE=off
export GOPATH="$WORK/gopath:/usr/share/gocode"
export GOFLAGS=
export GOPROXY=off
export GOCACHE="${GOCACHE:-$WORK/gocache}"
export CGO_ENABLED=0

go vet vcbsim-interop/govmomi_client
go build -trimpath -ldflags=-buildid= -o "$OUT_DIR/govmomi_client" vcbsim-interop/govmomi_client
echo "built: $OUT_DIR/govmomi_client"
