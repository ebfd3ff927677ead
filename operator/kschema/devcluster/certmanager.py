"""cert-manager's controller and cainjector (built from the Go module proxy by dev/certmanager/build.sh),
run on the host beside a local node with its admin kubeconfig, so the chart's default TLS path (its own CA
Issuer, the webhook's serving Certificate and CA injection into the webhook configuration) runs for real.
Their pids join the node's state, so stopping the node stops them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from kschema.devcluster.controlplane import REPO_ROOT
from kschema.devcluster.node import Node, NodeError

BUILD_SCRIPT = REPO_ROOT / "dev" / "certmanager" / "build.sh"


def build() -> Path:
    """The folder holding controller, cainjector and crds.yaml (built when missing)."""
    override = os.environ.get("KSCHEMA_CERT_MANAGER_BIN")
    if override:
        return Path(override)
    done = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NodeError(f"building cert-manager failed:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def start(node: Node, bin_dir: Path | None = None) -> None:
    """Installs cert-manager's CRDs and starts its controller and cainjector for `node`."""
    bin_dir = bin_dir or build()
    node.kubectl("apply", "--server-side", "-f", str(bin_dir / "crds.yaml"))
    node.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    node.kubectl("create", "namespace", "cert-manager")
    kubeconfig = str(node.kubeconfig)
    # Metrics on the node bridge's address, where nothing else on this host listens.
    node.spawn(
        "cert-manager-controller",
        [
            str(bin_dir / "controller"),
            f"--kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--cluster-resource-namespace=cert-manager",
            f"--metrics-listen-address={node.address}:19402",
            "--v=2",
        ],
    )
    node.spawn(
        "cert-manager-cainjector",
        [str(bin_dir / "cainjector"), f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--v=2"],
    )
