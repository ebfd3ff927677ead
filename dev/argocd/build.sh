#!/usr/bin/env bash
# Builds a headless Argo CD (application controller + repo server + git ask-pass, one multi-call binary) from
# the Go module proxy into a cache outside the repository, keyed by Argo CD version. Does nothing when it is
# already there. The GitOps tests (tests/gitops/) run it against the test control plane.
#
#   dev/argocd/build.sh                  -> prints the Argo CD cache directory (bin/, crds/)
#   KSCHEMA_ARGOCD_VERSION=v3.5.7 (default), KSCHEMA_CACHE_DIR=~/.cache/kschema
#
# Why these pins: v3.6.x needs Go >= 1.27; v3.5.7 builds with Go 1.26. Argo CD's go.mod replaces its nested
# gitops-engine module with ./gitops-engine, which the module zip leaves out, and the pseudo-version it pins is
# not served by the proxy; the proxy's release-3.5 snapshot of gitops-engine below replaces it.
set -euo pipefail

AV=${KSCHEMA_ARGOCD_VERSION:-v3.5.7}
GE=${KSCHEMA_GITOPS_ENGINE_VERSION:-v0.0.0-20260914071520-c9c369efcc5b}
CACHE=${KSCHEMA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kschema}
DIR="$CACHE/argocd-$AV"
NAMES=(argocd-application-controller argocd-repo-server argocd-git-ask-pass)

if [ -x "$DIR/bin/argocd" ] && [ -x "$DIR/bin/git-verify-wrapper.sh" ] && [ -f "$DIR/crds/kustomization.yaml" ]; then
  echo "$DIR"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required to build Argo CD" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
start=$(date +%s)
SRC="$DIR/src"
rm -rf "$SRC" "$DIR/partial"
mkdir -p "$DIR/partial/bin"
MOD=$(go mod download -json "github.com/argoproj/argo-cd/v3@$AV" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
cp -r "$MOD" "$SRC"
chmod -R u+w "$SRC"
cd "$SRC"
go mod edit -dropreplace github.com/argoproj/argo-cd/gitops-engine \
  -replace "github.com/argoproj/argo-cd/gitops-engine=github.com/argoproj/argo-cd/gitops-engine@$GE"

# Only what a headless installation needs: no API server, UI, CLI or dex. The binary picks the component from
# the name it is called by, like Argo CD's own multi-call binary.
mkdir -p cmd/kschema-argocd
cat > cmd/kschema-argocd/main.go <<'GO'
package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v3/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func init() { klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig())) }

func main() {
	var command *cobra.Command
	switch filepath.Base(os.Args[0]) {
	case common.CommandApplicationController:
		command = appcontroller.NewCommand()
	case common.CommandRepoServer:
		command = reposerver.NewCommand()
	case common.CommandGitAskPass:
		command = gitaskpass.NewCommand()
	default:
		os.Stderr.WriteString("call as argocd-application-controller, argocd-repo-server or argocd-git-ask-pass\n")
		os.Exit(2)
	}
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
GO
go build -p 2 -trimpath -ldflags="-s -w -X github.com/argoproj/argo-cd/v3/common.version=${AV#v}" \
  -o "$DIR/partial/bin/argocd" ./cmd/kschema-argocd >&2
for n in "${NAMES[@]}"; do ln -sf argocd "$DIR/partial/bin/$n"; done
# The repo server always runs this script (the container image ships it in /usr/local/bin) and reports its
# absence as "permission denied".
install -m 0755 hack/git-verify-wrapper.sh "$DIR/partial/bin/git-verify-wrapper.sh"
cp -r manifests/crds "$DIR/partial/crds"
rm -rf "$DIR/bin" "$DIR/crds"
mv "$DIR/partial/bin" "$DIR/bin" && mv "$DIR/partial/crds" "$DIR/crds"
rm -rf "$DIR/partial" "$SRC"
echo "build.sh: built Argo CD $AV in $(( $(date +%s) - start ))s" >&2
echo "$DIR"
