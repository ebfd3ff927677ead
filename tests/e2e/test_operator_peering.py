"""Leader election through kopf peering: of two replicas, the one with lower priority stands by, and
takes over once the active one is gone."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kschema.store import RegistryStore
from tests.e2e.operator_harness import (
    EXAMPLES_DIR,
    OperatorProcess,
    apply_crds,
    get_json,
    read_store,
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


def _live_versions(store_url: str, subject: str) -> list[int]:
    async def query(store: RegistryStore) -> list[int]:
        return [v.version for v in await store.list_versions(subject)]

    return read_store(store_url, query)


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
    # A short resync: a Schema deleted while the watch restarts at the takeover is seen by no DELETED
    # event, and the standby's resync soft-deletes its version instead.
    peering = ("--peering", "kschema", "--log-level", "INFO", "--resync-interval", "2")
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
        # Only a working replica soft-deletes the version of a deleted Schema: the standby does, from the
        # DELETED event or from its resync.
        cluster.kubectl("delete", "-n", namespace, "schema", "orders-value-v2", "--timeout=60s")
        deadline = time.monotonic() + 60
        while _live_versions(store_url, "orders-value") != [1]:
            assert time.monotonic() < deadline, "the standby never soft-deleted version 2"
            time.sleep(0.5)
    finally:
        cluster.kubectl("delete", "-n", namespace, "schemas,subjects", "--all", "--timeout=60s", check=False)
        active.stop()
        standby.stop()
