"""Fixtures of the node tests: one real node per session (containerd, kubelet, kube-proxy, CoreDNS), the
project's image built by dockerd and loaded into it, cert-manager, helm, and the chart installed once per
topology with many checks against each install. The host is checked to be as it was after tear-down."""

from __future__ import annotations

import json
import os
import signal
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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # pytest tears the session's fixtures down after a KeyboardInterrupt, and the node's tear-down restores
    # the host. Make SIGTERM (a CI job's cancel or timeout) and SIGINT (ignored in a shell's background jobs)
    # do the same rather than kill the process with the node still running.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)


# Temporary folders of the node, the image build's dockerd and its debootstrap root: a process that names one
# on its command line after tear-down is a leak.
MARKERS = ("/var/tmp/kschema-node-", "/var/tmp/kschema-docker-", "/var/tmp/kschema-rootfs-")


@pytest.fixture(scope="session")
def host() -> Iterator[hoststate.HostSnapshot]:
    """The host as the session found it, before the image build and the node; after both are gone (also when
    a test failed) it must be the same: processes, iptables chains and rules, sysctls, mounts, cgroups,
    interfaces and the kubelet's host paths."""
    missing = missing_prerequisites()
    assert not missing, f"the node tests need: {', '.join(missing)} (dev/system-deps.sh installs them)"
    before = hoststate.snapshot()
    yield before
    left = hoststate.leftovers(before, bridge=BRIDGE, markers=MARKERS)
    assert not left, f"the node tests left host state behind: {left}"


@pytest.fixture(scope="session")
def images(host: hoststate.HostSnapshot) -> Images:
    """kschema:dev, a rebuilt tag of it, and the test client image, built by a dockerd started for it."""
    return build_images()


@pytest.fixture(scope="session")
def node(host: hoststate.HostSnapshot, images: Images) -> Iterator[Node]:
    node = Node()
    node.start()
    try:
        for archive in images.archives():
            node.load_image(archive)
        yield node
    finally:
        node.stop()


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


# The host-state tests first (before the node exists, so nothing else changes iptables meanwhile), then the
# node itself, then one chart install per topology: postgres first, because its module removes its examples
# again, while the sqlite module ends by uninstalling with `crds.keep` and so leaves its Subjects in place
# (subject names are unique cluster-wide).
MODULE_ORDER = ("test_hoststate.py", "test_node.py", "test_chart_postgres.py", "test_chart_sqlite.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = Path(str(item.fspath)).name
        in_node = "tests/node/" in str(item.fspath)
        return MODULE_ORDER.index(name) if in_node and name in MODULE_ORDER else -1

    items.sort(key=rank)  # stable: the order within each module stays
    # The node is host-wide (one per machine): KSCHEMA_NODE_TESTS=0 leaves these tests out on machines that
    # cannot or must not run one.
    if os.environ.get("KSCHEMA_NODE_TESTS", "1") == "0":
        skip = pytest.mark.skip(reason="KSCHEMA_NODE_TESTS=0")
        for item in items:
            if "tests/node/" in str(item.fspath):
                item.add_marker(skip)
