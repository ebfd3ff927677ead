#!/usr/bin/env bash
# Builds the `helm` CLI from the Go module proxy into a cache outside the repository, keyed by Helm version.
# Does nothing when the binary is already there. The chart tests (tests/e2e/test_chart.py) call it.
#
#   dev/helm/build.sh                    -> prints the path of the helm binary
#   KSCHEMA_HELM_VERSION=v3.22.0 (default), KSCHEMA_CACHE_DIR=~/.cache/kschema
set -euo pipefail

HV=${KSCHEMA_HELM_VERSION:-v3.22.0}
CACHE=${KSCHEMA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kschema}
BIN="$CACHE/helm-$HV/bin"

if [ -x "$BIN/helm" ]; then
  echo "$BIN/helm"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required to build helm" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
WORK="$CACHE/helm-$HV/src"
mkdir -p "$WORK" "$BIN.partial"
cd "$WORK"
start=$(date +%s)

# A throwaway module that requires exactly the pinned Helm release; `go mod tidy` then resolves Helm's own
# dependency versions (client-go and friends) from its go.mod, as a release build would.
rm -f go.mod go.sum
printf 'module kschema.invalid/helm\n\ngo 1.26.0\n' > go.mod
go mod edit -require="helm.sh/helm/v3@$HV" -tool=helm.sh/helm/v3/cmd/helm
go mod tidy >&2
go list -m helm.sh/helm/v3 k8s.io/client-go >&2

# The same version stamps Helm's Makefile sets: the Helm version, and the Kubernetes version that `helm lint`
# and `.Capabilities.KubeVersion` default to (client-go v0.N.x means Kubernetes 1.N).
CLIENT_GO=$(go list -m -f '{{.Version}}' k8s.io/client-go)     # v0.35.1
K8S_MINOR=$(echo "$CLIENT_GO" | cut -d. -f2)
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HV -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  LDFLAGS="$LDFLAGS -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$K8S_MINOR"
done
go build -trimpath -ldflags="$LDFLAGS" -o "$BIN.partial/helm" helm.sh/helm/v3/cmd/helm >&2
"$BIN.partial/helm" version --short >&2
rm -rf "$BIN" && mv "$BIN.partial" "$BIN"
echo "build.sh: built helm $HV in $(( $(date +%s) - start ))s" >&2
echo "$BIN/helm"
