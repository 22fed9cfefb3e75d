#!/bin/sh
# Regenerates test/fixtures/rs-klauspost.json from klauspost/reedsolomon (Go).
#
# Needs Go and the library from Debian, found through GOPATH (no network, no go.mod):
#   apt-get install -y golang golang-github-klauspost-reedsolomon-dev
set -eu
cd "$(dirname "$0")/.."
GOPATH_DIR=${GOPATH_DIR:-/usr/share/gocode}
LIB="$GOPATH_DIR/src/github.com/klauspost/reedsolomon"
[ -d "$LIB" ] || { echo "klauspost/reedsolomon not found in $LIB (apt-get install golang-github-klauspost-reedsolomon-dev)" >&2; exit 1; }
VERSION=$(dpkg-query -W -f '${Version}' golang-github-klauspost-reedsolomon-dev 2>/dev/null || echo unknown)
CACHE=$(mktemp -d)
trap 'rm -rf "$CACHE"' EXIT
GO111MODULE=off GOPATH="$GOPATH_DIR" GOCACHE="$CACHE" GOFLAGS= \
  go run scripts/gen-rs-fixture.go "debian-$VERSION" test/fixtures/rs-klauspost.json

# Format as the project's formatter would, so `biome check` stays clean.
if [ -x node_modules/.bin/biome ]; then
  PATH="$PWD/node_modules/.bin:$PATH" biome format --write test/fixtures/rs-klauspost.json >/dev/null
fi
echo "wrote test/fixtures/rs-klauspost.json" >&2
