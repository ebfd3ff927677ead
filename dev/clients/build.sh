#!/usr/bin/env bash
# Builds the third-party Schema Registry client programs the test suite drives against the read API, into a
# cache outside the repository keyed by a hash of their sources; does nothing when that build is there.
#
#   dev/clients/build.sh go     -> prints the path of the Go client (confluent-kafka-go schemaregistry + serdes)
#   dev/clients/build.sh node   -> prints the node_modules folder for tests/clients/node/*.js
#   dev/clients/build.sh        -> builds both
#   KSCHEMA_CACHE_DIR=~/.cache/kschema
#
# confluent-kafka-go's serdes import its kafka package (message headers), which needs cgo: the module ships a
# static librdkafka for linux/amd64 and linux/arm64, so only a C compiler is needed, no system librdkafka.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${KSCHEMA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kschema}
WHAT=${1:-all}

hash_of() { (cd "$1" && cat "${@:2}" | sha256sum | cut -c1-16); }

build_go() {
  local src="$ROOT/tests/clients/go" key out
  key=$(hash_of "$src" go.mod go.sum main.go http.go)
  out="$CACHE/clients/go-$key"
  if [ ! -x "$out/client" ]; then
    command -v go >/dev/null || { echo "build.sh: Go is required for the Go client" >&2; exit 1; }
    command -v cc >/dev/null || { echo "build.sh: a C compiler is required (cgo) for the Go client" >&2; exit 1; }
    local start work
    start=$(date +%s)
    work="$out.partial"
    rm -rf "$work" && mkdir -p "$work/src"
    cp "$src"/go.mod "$src"/go.sum "$src"/*.go "$work/src/"
    (
      cd "$work/src"
      GOTOOLCHAIN=local CGO_ENABLED=1 GOFLAGS=-mod=readonly \
        GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" go build -o "$work/client" . >&2
    )
    rm -rf "$work/src" "$out"
    mv "$work" "$out"
    echo "build.sh: built the Go client in $(( $(date +%s) - start )) s" >&2
  fi
  echo "$out/client"
}

build_node() {
  local src="$ROOT/tests/clients/node" key out
  key=$(hash_of "$src" package.json)
  out="$CACHE/clients/node-$key"
  if [ ! -d "$out/node_modules" ]; then
    command -v npm >/dev/null || { echo "build.sh: npm is required for the Node client" >&2; exit 1; }
    local start work
    start=$(date +%s)
    work="$out.partial"
    rm -rf "$work" && mkdir -p "$work"
    cp "$src/package.json" "$work/"
    (cd "$work" && npm install --cache "$CACHE/npm" --no-audit --no-fund --loglevel=error >&2)
    rm -rf "$out"
    mv "$work" "$out"
    echo "build.sh: installed the Node client's packages in $(( $(date +%s) - start )) s" >&2
  fi
  echo "$out/node_modules"
}

case "$WHAT" in
  go) build_go ;;
  node) build_node ;;
  all) build_go >/dev/null; build_node >/dev/null ;;
  *) echo "usage: build.sh [go|node|all]" >&2; exit 2 ;;
esac
