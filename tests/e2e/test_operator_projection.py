"""How many times a burst writes its Subject's ConfigMap: Schemas applied before their Subject wait for it,
register together once it is there, and the Subject's projection waits for them (bounded), so the
ConfigMap is written once, with every version, instead of once empty and once more."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.operator_harness import InProcessOperator, apply_crds, operator_in_namespace, wait_ready
from tests.harness.cluster import Cluster

pytestmark = pytest.mark.cluster

SUBJECT = "burst-value"
CONFIG_MAP = f"{SUBJECT}-schemas"
VERSIONS = 4


@pytest.fixture
def operator(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[InProcessOperator]:
    apply_crds(cluster)
    with operator_in_namespace(cluster, namespace, f"sqlite:///{tmp_path}/registry.db") as running:
        yield running


def _schema(version: int) -> dict[str, Any]:
    fields: list[dict[str, Any]] = [{"name": "id", "type": "string"}]
    fields += [{"name": f"f{n}", "type": ["null", "long"], "default": None} for n in range(2, version + 1)]
    return {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Schema",
        "metadata": {"name": f"{SUBJECT}-v{version}"},
        "spec": {
            "subject": SUBJECT,
            "version": version,
            "schema": json.dumps({"type": "record", "name": "Burst", "fields": fields}),
        },
    }


def _watch_events(output: str) -> list[dict[str, Any]]:
    """The events `kubectl get -w --output-watch-events -o json` printed: JSON documents one after another."""
    decoder, events, at = json.JSONDecoder(), [], 0
    while (at := _skip_space(output, at)) < len(output):
        event, at = decoder.raw_decode(output, at)
        events.append(event)
    return events


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _listed_versions(cluster: Cluster, namespace: str) -> list[int]:
    done = cluster.kubectl("get", "-n", namespace, "configmap", CONFIG_MAP, "-o", "json", check=False)
    if done.returncode != 0:
        return []
    return sorted(int(v) for v in json.loads(json.loads(done.stdout)["data"]["versions.json"]))


def test_schemas_applied_before_their_subject_are_projected_in_one_configmap_write(
    cluster: Cluster, namespace: str, operator: InProcessOperator
) -> None:
    watch = subprocess.Popen(
        [
            "kubectl",
            "get",
            "configmaps",
            "-n",
            namespace,
            "--watch",
            "--output-watch-events",
            "-o",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cluster.plane.env(),
    )
    try:
        time.sleep(1)  # the watch is open before the first write (its initial list is part of its output)
        subject = {
            "apiVersion": "kschema.io/v1alpha1",
            "kind": "Subject",
            "metadata": {"name": SUBJECT},
            "spec": {"format": "AVRO", "compatibility": "BACKWARD"},
        }
        documents = [_schema(v) for v in range(1, VERSIONS + 1)] + [subject]
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(documents))
        wait_ready(cluster, namespace)
        deadline = time.monotonic() + 30
        while _listed_versions(cluster, namespace) != list(range(1, VERSIONS + 1)):
            assert time.monotonic() < deadline, "the ConfigMap never listed every version"
            time.sleep(0.2)
        time.sleep(3)  # a second write would come within the projection's bound (2 s)
    finally:
        watch.terminate()
        output, errors = watch.communicate(timeout=30)
    writes = [e for e in _watch_events(output) if e["object"]["metadata"]["name"] == CONFIG_MAP]
    assert [e["type"] for e in writes] == ["ADDED"], (writes, errors)
    assert sorted(json.loads(writes[0]["object"]["data"]["versions.json"])) == [
        str(v) for v in range(1, VERSIONS + 1)
    ]
