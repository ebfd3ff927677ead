#!/usr/bin/env bash
# Builds what the local node runs beside the control plane: kubelet, kube-proxy and kube-scheduler (the
# Kubernetes release of dev/controlplane/build.sh), a cluster-DNS-only CoreDNS and the pod sandbox ("pause")
# program, all from the Go module proxy into a cache outside the repository. Does nothing when they are
# already there.
#
#   dev/node/build.sh                     -> prints the bin directory
#   KSCHEMA_K8S_VERSION=v1.33.13 (default), KSCHEMA_COREDNS_VERSION=v1.12.3, KSCHEMA_CACHE_DIR=~/.cache/kschema
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
KV=${KSCHEMA_K8S_VERSION:-v1.33.13}
SV="v0.${KV#v1.}"                                     # v1.33.13 -> v0.33.13
MINOR=$(echo "$KV" | cut -d. -f2)
# CoreDNS v1.12.3 requires client-go v0.32, which minimal version selection raises to the control plane's
# release, so it compiles from the same build cache (v1.12.4 already wants v0.34).
DV=${KSCHEMA_COREDNS_VERSION:-v1.12.3}
CACHE=${KSCHEMA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kschema}
BIN="$CACHE/node-$KV/bin"
TOOLS=(kubelet kube-proxy kube-scheduler coredns pause)

have_all() { for t in "${TOOLS[@]}"; do [ -x "$BIN/$t" ] || return 1; done; }
if have_all; then
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required to build the node" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$BIN.partial"
start=$(date +%s)

# 1. kubelet, kube-proxy, kube-scheduler: the control plane's wrapper-module technique (see its build.sh).
WORK="$CACHE/node-$KV/src"
mkdir -p "$WORK" && cd "$WORK"
if [ ! -x "$BIN.partial/kube-scheduler" ]; then
  rm -f go.mod go.sum
  printf 'module kschema.invalid/node\n\ngo 1.24.0\n' > go.mod
  GOMOD=$(go mod download -json "k8s.io/kubernetes@$KV" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$GOMOD" | sort -u |
    while read -r m; do go mod edit -replace="$m=$m@$SV"; done
  go mod edit -require="k8s.io/kubernetes@$KV" -godebug=default=go1.24
  for t in kubelet kube-proxy kube-scheduler; do go mod edit -tool="k8s.io/kubernetes/cmd/$t"; done
  go mod tidy >&2
  NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  VER=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    VER="$VER -X $p.gitVersion=$KV -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean -X $p.buildDate=$NOW"
  done
  for t in kubelet kube-proxy kube-scheduler; do
    s=$(date +%s)
    go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags="-s -w $VER" -o "$BIN.partial/$t" "k8s.io/kubernetes/cmd/$t" >&2
    echo "build.sh: built $t in $(( $(date +%s) - s ))s" >&2
  done
fi

# 2. CoreDNS with the plugins of dev/node/coredns/main.go only.
if [ ! -x "$BIN.partial/coredns" ]; then
  DWORK="$CACHE/node-$KV/coredns"
  mkdir -p "$DWORK" && cd "$DWORK"
  rm -f go.mod go.sum && cp "$HERE/coredns/main.go" .
  printf 'module kschema.invalid/coredns\n\ngo 1.24.0\n' > go.mod
  go mod edit -require="github.com/coredns/coredns@$DV" -require="k8s.io/client-go@$SV" \
    -require="k8s.io/api@$SV" -require="k8s.io/apimachinery@$SV"
  go mod tidy >&2
  s=$(date +%s)
  go build -trimpath -ldflags="-s -w" -o "$BIN.partial/coredns" . >&2
  echo "build.sh: built coredns $DV in $(( $(date +%s) - s ))s" >&2
fi

# 3. The pod sandbox program (standard library only).
(cd "$HERE/pause" && go build -trimpath -ldflags="-s -w" -o "$BIN.partial/pause" .) >&2

rm -rf "$BIN" && mv "$BIN.partial" "$BIN"
echo "build.sh: built the node $KV in $(( $(date +%s) - start ))s" >&2
echo "$BIN"
