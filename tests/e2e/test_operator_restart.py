"""Restart safety: the operator process is SIGKILLed while it registers 500 versions, started again, and
the store ends with every version exactly once under the IDs it had already handed out."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from kschema.store import RegistryStore, Snapshot
from tests.e2e.operator_harness import OperatorProcess, apply_crds, get_json, read_store, wait_ready
from tests.harness.cluster import Cluster

pytestmark = pytest.mark.cluster

VERSIONS = 500


def subject_and_versions(count: int) -> str:
    """One Avro subject; version n adds optional field `f<n>` and drops `f<n-1>` (BACKWARD compatible,
    and every version a distinct schema, so every version gets its own ID)."""
    docs: list[dict[str, object]] = [
        {
            "apiVersion": "kschema.io/v1alpha1",
            "kind": "Subject",
            "metadata": {"name": "events-value"},
            "spec": {"format": "AVRO", "compatibility": "BACKWARD"},
        }
    ]
    for n in range(1, count + 1):
        schema = {
            "type": "record",
            "name": "Event",
            "namespace": "com.acme",
            "fields": [
                {"name": "id", "type": "string"},
                {"name": f"f{n}", "type": ["null", "long"], "default": None},
            ],
        }
        docs.append(
            {
                "apiVersion": "kschema.io/v1alpha1",
                "kind": "Schema",
                "metadata": {"name": f"events-value-v{n}"},
                "spec": {"subject": "events-value", "version": n, "schema": json.dumps(schema)},
            }
        )
    return yaml.safe_dump_all(docs)


def snapshot(store_url: str) -> Snapshot:
    async def query(store: RegistryStore) -> Snapshot:
        return await store.snapshot()

    return read_store(store_url, query)


def registered(db: Path) -> int:
    """How many versions the store holds, read with one query: opening the store for every look (as
    `snapshot` does) takes longer than the operator needs for hundreds of versions, and the kill below
    must land part-way."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        try:
            count: int = conn.execute("SELECT count(*) FROM subject_versions").fetchone()[0]
        except sqlite3.OperationalError:  # the operator has not created the tables yet
            return 0
        return count


def ids_in_status(cluster: Cluster, namespace: str) -> dict[str, int]:
    items = get_json(cluster, namespace, "schemas")["items"]
    return {i["metadata"]["name"]: i["status"]["id"] for i in items if "id" in i.get("status", {})}


def test_a_sigkill_while_registering_500_versions_leaves_no_duplicate_or_missing_version(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    apply_crds(cluster)
    db = tmp_path / "registry.db"
    store_url = f"sqlite:///{db}"
    first = OperatorProcess(cluster, namespace, store_url, tmp_path / "operator-1.log").start()
    second: OperatorProcess | None = None
    try:
        # kubectl sends the objects one by one and the operator registers them as they come: kill it
        # part-way through, once some versions are in the store, well before all of them are.
        with ThreadPoolExecutor(1) as applying:
            applied = applying.submit(
                cluster.kubectl, "apply", "-n", namespace, "-f", "-", input=subject_and_versions(VERSIONS)
            )
            deadline = time.monotonic() + 180
            while (not db.exists() or registered(db) < 50) and time.monotonic() < deadline:
                assert first.alive(), (tmp_path / "operator-1.log").read_text()[-3000:]
                time.sleep(0.002)
            first.kill()
            before = snapshot(store_url)
            applied.result()
        assert 50 <= len(before.versions) < VERSIONS, "the kill did not land mid-way"
        ids_before = {(v.subject, v.version): v.schema_id for v in before.versions}
        status_before = ids_in_status(cluster, namespace)

        second = OperatorProcess(cluster, namespace, store_url, tmp_path / "operator-2.log").start()
        wait_ready(cluster, namespace, timeout=300)

        after = snapshot(store_url)
        versions = sorted((v.subject, v.version) for v in after.versions)
        assert versions == [("events-value", n) for n in range(1, VERSIONS + 1)]  # none missing, none twice
        assert len(after.schemas) == VERSIONS  # no schema stored twice under two IDs
        assert len({v.schema_id for v in after.versions}) == VERSIONS
        ids_after = {(v.subject, v.version): v.schema_id for v in after.versions}
        assert {k: ids_after[k] for k in ids_before} == ids_before  # IDs handed out before the kill hold
        status_after = ids_in_status(cluster, namespace)
        assert {k: status_after[k] for k in status_before} == status_before
        assert status_after == {f"events-value-v{v}": i for (_, v), i in ids_after.items()}

        data = get_json(cluster, namespace, "configmap", "events-value-schemas")["data"]
        projected = json.loads(data["versions.json"])
        assert {int(k): v["id"] for k, v in projected.items()} == {v: i for (_, v), i in ids_after.items()}
        assert data["latest.avsc"] == data[f"v{VERSIONS}.avsc"]
    finally:
        cluster.kubectl("delete", "-n", namespace, "schemas,subjects", "--all", "--wait=false", check=False)
        if second is None:
            second = OperatorProcess(cluster, namespace, store_url, tmp_path / "operator-3.log").start()
        try:
            cluster.kubectl(
                "wait",
                "-n",
                namespace,
                "--for=delete",
                "--timeout=120s",
                "schemas,subjects",
                "--all",
                check=False,
            )
        finally:
            first.stop()
            second.stop()
