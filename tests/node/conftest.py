"""Fixtures of the node tests: one real node per session (containerd, kubelet, kube-proxy, CoreDNS), the
project's image built by dockerd and loaded into it, cert-manager, helm, and the chart installed once per
topology with many checks against each install. The host is checked to be as it was after tear-down."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kschema.devcluster import certmanager, hoststate
from kschema.devcluster.node import BRIDGE, Node, missing_prerequisites
from tests.node.images import Images, build_images
from tests.node.kube import Kube

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def images() -> Images:
    """kschema:dev, a rebuilt tag of it, and the test client image, built by a dockerd started for it."""
    return build_images()


@pytest.fixture(scope="session")
def node(images: Images) -> Iterator[Node]:
    missing = missing_prerequisites()
    assert not missing, f"the node tests need: {', '.join(missing)} (dev/system-deps.sh installs them)"
    before = hoststate.snapshot()
    node = Node()
    node.start()
    try:
        for archive in images.archives():
            node.load_image(archive)
        yield node
    finally:
        node.stop()
        left = hoststate.leftovers(before, bridge=BRIDGE)
        assert not left, f"the node left host state behind: {left}"


@pytest.fixture(scope="session")
def kube(node: Node) -> Kube:
    return Kube(node)


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    # `make setup` may still be building helm into the shared cache: wait for it rather than race it.
    deadline = time.monotonic() + 1200
    building = ["pgrep", "-f", "dev/helm/build.sh"]
    while subprocess.run(building, capture_output=True, check=False).returncode == 0:
        assert time.monotonic() < deadline, "helm's build by another process did not finish"
        time.sleep(2)
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "dev" / "helm" / "build.sh")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"building helm failed:\n{done.stderr[-4000:]}"
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def cert_manager(node: Node) -> None:
    """cert-manager's controller and cainjector beside the node (stopped with it), with its CRDs."""
    certmanager.start(node)


# The Prometheus Operator release whose ServiceMonitor CRD the chart's `metrics.serviceMonitor` targets; the
# CRD comes from its module on the Go module proxy.
PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator@v0.80.1"


@pytest.fixture(scope="session")
def service_monitor_crd(node: Node) -> None:
    done = subprocess.run(
        ["go", "mod", "download", "-json", PROMETHEUS_OPERATOR],
        capture_output=True, text=True, check=False, env={**os.environ, "GOFLAGS": "-mod=mod"}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = Path(json.loads(done.stdout)["Dir"]) / "example" / "prometheus-operator-crd"
    node.kubectl("apply", "--server-side", "-f", str(folder / "monitoring.coreos.com_servicemonitors.yaml"))
    node.kubectl(
        "wait", "--for=condition=Established", "crd/servicemonitors.monitoring.coreos.com", "--timeout=60s"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The node is host-wide (one per machine): KSCHEMA_NODE_TESTS=0 leaves these tests out on machines that
    # cannot or must not run one.
    if os.environ.get("KSCHEMA_NODE_TESTS", "1") == "0":
        skip = pytest.mark.skip(reason="KSCHEMA_NODE_TESTS=0")
        for item in items:
            if "tests/node/" in str(item.fspath):
                item.add_marker(skip)
