"""Leader election through kopf peering: of two replicas, the one with lower priority stands by, and
takes over once the active one is gone."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.operator_harness import (
    EXAMPLES_DIR,
    OperatorProcess,
    apply_crds,
    get_json,
    wait_ready,
)
from tests.harness.cluster import Cluster

pytestmark = pytest.mark.cluster


def wait_for_log(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in (path.read_text() if path.exists() else ""):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not logged in {timeout}s:\n{path.read_text()[-3000:]}")
        time.sleep(0.2)


def _peers(cluster: Cluster, namespace: str) -> dict[str, object]:
    found = cluster.kubectl("get", "-n", namespace, "kopfpeering", "kschema", "-o", "json", check=False)
    if found.returncode != 0:  # not created yet by the first replica to start
        return {}
    peers: dict[str, object] = json.loads(found.stdout).get("status") or {}
    return peers


def test_a_second_replica_stands_by_and_takes_over_when_the_first_dies(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    apply_crds(cluster)
    store_url = f"sqlite:///{tmp_path}/registry.db"
    peering = ("--peering", "kschema", "--log-level", "INFO")
    active = OperatorProcess(
        cluster, namespace, store_url, tmp_path / "active.log", *peering, "--priority", "10"
    ).start()
    standby = OperatorProcess(
        cluster, namespace, store_url, tmp_path / "standby.log", *peering, "--priority", "5"
    ).start()
    try:
        # Both replicas keep their records in the peering object; kopf logs "Pausing" only when a replica
        # that was working gives way, which depends on which one started first, so wait on the records.
        deadline = time.monotonic() + 60
        while len(_peers(cluster, namespace)) < 2:
            assert time.monotonic() < deadline, "the two replicas never both joined the peering"
            time.sleep(0.5)
        cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR / "avro"))
        wait_ready(cluster, namespace)
        assert "Reconciled Subject" in (tmp_path / "active.log").read_text()
        assert "Reconciled Subject" not in (tmp_path / "standby.log").read_text()
        peers = get_json(cluster, namespace, "kopfpeering", "kschema")["status"]
        assert len(peers) == 2

        active.kill()  # its peering record expires after kopf's peering lifetime (60 s)
        wait_for_log(tmp_path / "standby.log", "Resuming operations after the pause", 120)
        # The finalizer only goes once a working replica handled the deletion: the standby did.
        cluster.kubectl("delete", "-n", namespace, "schema", "orders-value-v2", "--timeout=60s")
    finally:
        cluster.kubectl("delete", "-n", namespace, "schemas,subjects", "--all", "--timeout=60s", check=False)
        active.stop()
        standby.stop()
