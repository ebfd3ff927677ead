"""cert-manager's controller and cainjector (built from the Go module proxy by dev/certmanager/build.sh)
run beside the node with the admin kubeconfig, so the chart's default TLS path (its own CA Issuer, a serving
Certificate and CA injection into the webhook configuration) runs for real."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kschema.devcluster.node import Node

REPO_ROOT = Path(__file__).resolve().parents[2]


def build() -> Path:
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "dev" / "certmanager" / "build.sh")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"building cert-manager failed:\n{done.stderr[-4000:]}"
    return Path(done.stdout.strip().splitlines()[-1])


@contextmanager
def running(node: Node, bin_dir: Path, logs: Path) -> Iterator[None]:
    kubeconfig = str(node.kubeconfig)
    node.kubectl("apply", "--server-side", "-f", str(bin_dir / "crds.yaml"))
    node.kubectl("wait", "--for=condition=Established", "crd", "-l", "app.kubernetes.io/name!=kschema",
                 "--timeout=60s")  # fmt: skip
    node.kubectl("create", "namespace", "cert-manager")
    # Metrics on ports of the node's bridge address: nothing else on this host listens there.
    commands = {
        "cert-manager-controller": [
            str(bin_dir / "controller"), f"--kubeconfig={kubeconfig}", "--leader-elect=false",
            "--cluster-resource-namespace=cert-manager", "--metrics-listen-address=10.244.0.1:19402", "--v=2",
        ],
        "cert-manager-cainjector": [
            str(bin_dir / "cainjector"), f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--v=2",
        ],
    }  # fmt: skip
    procs = []
    try:
        for name, argv in commands.items():
            with (logs / f"{name}.log").open("ab") as log:
                procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
