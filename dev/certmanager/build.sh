#!/usr/bin/env bash
# Builds cert-manager's controller and cainjector from the Go module proxy into a cache outside the
# repository, with its CRDs beside them, for the chart's default TLS path on the local node. Does nothing when
# they are already there.
#
# The release is the last one published as github.com/jetstack/cert-manager: its module still contains
# cmd/controller and cmd/cainjector, so a wrapper module builds them with no code of ours. (Later releases moved
# the entry points into modules the proxy does not serve.) The API it serves, cert-manager.io/v1, and the
# `cert-manager.io/inject-ca-from` annotation are what the chart uses.
#
#   dev/certmanager/build.sh              -> prints the bin directory (controller, cainjector, crds.yaml)
#   KSCHEMA_CERT_MANAGER_VERSION=v1.7.3 (default), KSCHEMA_CACHE_DIR=~/.cache/kschema
set -euo pipefail

CV=${KSCHEMA_CERT_MANAGER_VERSION:-v1.7.3}
CACHE=${KSCHEMA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kschema}
BIN="$CACHE/cert-manager-$CV/bin"
MOD=github.com/jetstack/cert-manager

if [ -x "$BIN/controller" ] && [ -x "$BIN/cainjector" ] && [ -s "$BIN/crds.yaml" ]; then
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required to build cert-manager" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
WORK="$CACHE/cert-manager-$CV/src"
mkdir -p "$WORK" "$BIN.partial"
cd "$WORK"
start=$(date +%s)

rm -f go.mod go.sum tools.go
# `go 1.17` would make `go mod tidy` fail its compatibility check; the wrapper's own language version is free.
printf 'module kschema.invalid/certmanager\n\ngo 1.22\n' > go.mod
go mod edit -require="$MOD@$CV"
SRC=$(go mod download -json "$MOD@$CV" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
# A dependency's replace directives are ignored, so carry cert-manager's own (golang.org/x/net, k8s.io/gengo pins).
sed -n '/^replace/,/^)/p' "$SRC/go.mod" >> go.mod
cat > tools.go <<GO
//go:build tools

package tools

import (
	_ "$MOD/cmd/cainjector"
	_ "$MOD/cmd/controller"
)
GO
go mod tidy >&2
go build -trimpath -ldflags="-s -w -X $MOD/pkg/util.AppVersion=$CV" -o "$BIN.partial/" \
  "$MOD/cmd/controller" "$MOD/cmd/cainjector" >&2

# The CRDs carry Helm template markers in their labels only: drop those lines.
for f in "$SRC"/deploy/crds/crd-*.yaml; do
  echo "---"
  grep -v '{{' "$f"
done > "$BIN.partial/crds.yaml"

rm -rf "$BIN" && mv "$BIN.partial" "$BIN"
echo "build.sh: built cert-manager $CV in $(( $(date +%s) - start ))s" >&2
echo "$BIN"
