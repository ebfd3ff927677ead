#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and etcd from the Go module proxy into a cache outside
# the repository, keyed by Kubernetes version. Does nothing when the binaries are already there.
#
#   dev/controlplane/build.sh            -> prints the bin directory
#   KSCHEMA_K8S_VERSION=v1.33.13 (default), KSCHEMA_CACHE_DIR=~/.cache/kschema
set -euo pipefail

KV=${KSCHEMA_K8S_VERSION:-v1.33.13}
SV="v0.${KV#v1.}"                                     # v1.33.13 -> v0.33.13
MINOR=$(echo "$KV" | cut -d. -f2)
CACHE=${KSCHEMA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kschema}
BIN="$CACHE/k8s-$KV/bin"

if [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kube-controller-manager" ] && [ -x "$BIN/etcd" ]; then
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required to build the control plane" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
WORK="$CACHE/k8s-$KV/src"
mkdir -p "$WORK" "$BIN.partial"
cd "$WORK"
start=$(date +%s)

# A throwaway module that requires k8s.io/kubernetes and maps its staging modules to their published
# versions (k8s.io/kubernetes requires them at v0.0.0, which only its own replace directives resolve).
rm -f go.mod go.sum
printf 'module kschema.invalid/controlplane\n\ngo 1.24.0\n' > go.mod
GOMOD=$(go mod download -json "k8s.io/kubernetes@$KV" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$GOMOD" | sort -u |
  while read -r m; do go mod edit -replace="$m=$m@$SV"; done
go mod edit -require="k8s.io/kubernetes@$KV" -godebug=default=go1.24
# `go mod edit -tool` rather than `go get -tool`: the latter would upgrade Kubernetes and etcd to their newest
# releases. Tidy then resolves etcd's server module at the version Kubernetes itself requires.
for t in k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager go.etcd.io/etcd/server/v3; do
  go mod edit -tool="$t"
done
go mod tidy >&2
go list -m k8s.io/kubernetes go.etcd.io/etcd/server/v3 >&2

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
VER=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  VER="$VER -X $p.gitVersion=$KV -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean -X $p.buildDate=$NOW"
done
TAGS=selinux,notest,grpcnotrace
go build -trimpath -tags=$TAGS -ldflags="-s -w $VER" -o "$BIN.partial/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2
go build -trimpath -tags=$TAGS -ldflags="-s -w $VER" -o "$BIN.partial/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager >&2
go build -trimpath -ldflags="-s -w" -o "$BIN.partial/etcd" go.etcd.io/etcd/server/v3 >&2
rm -rf "$BIN" && mv "$BIN.partial" "$BIN"
echo "build.sh: built the control plane $KV in $(( $(date +%s) - start ))s" >&2
echo "$BIN"
