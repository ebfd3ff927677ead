"""The Argo CD health check (gitops/argocd/health.lua) against statuses the real operator wrote on a real
API server: the examples turn Healthy, an incompatible version turns Degraded with the operator's message."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.operator_harness import (
    EXAMPLES_DIR,
    InProcessOperator,
    apply_crds,
    operator_in_namespace,
    wait_ready,
)
from tests.harness.cluster import Cluster
from tests.unit.test_argocd_health import evaluate_health

pytestmark = pytest.mark.cluster


@pytest.fixture
def operator(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[InProcessOperator]:
    apply_crds(cluster)
    with operator_in_namespace(cluster, namespace, f"sqlite:///{tmp_path}/registry.db") as running:
        yield running


def _items(cluster: Cluster, namespace: str, what: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        cluster.kubectl("get", "-n", namespace, what, "-o", "json").stdout
    )["items"]
    return items


def _ready_message(obj: dict[str, Any]) -> str:
    return next(str(c["message"]) for c in obj["status"]["conditions"] if c["type"] == "Ready")


def test_registered_examples_are_healthy_with_the_operators_message(
    cluster: Cluster, namespace: str, operator: InProcessOperator
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR / "avro"))
    wait_ready(cluster, namespace)

    objects = _items(cluster, namespace, "subjects,schemas")

    assert {o["kind"] for o in objects} == {"Subject", "Schema"}
    for obj in objects:
        assert evaluate_health(obj) == ("Healthy", _ready_message(obj)), obj["metadata"]["name"]


def test_an_incompatible_version_is_degraded_with_the_operators_message(
    cluster: Cluster, namespace: str, operator: InProcessOperator
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR / "avro"))
    wait_ready(cluster, namespace)
    # No webhook runs here, so the incompatible version reaches the operator, which refuses to register it.
    cluster.kubectl(
        "apply", "-n", namespace, "-f", str(EXAMPLES_DIR / "incompatible" / "orders-value-v3.yaml")
    )
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready=false", "--timeout=60s", "schema/orders-value-v3"
    )

    refused = next(
        o for o in _items(cluster, namespace, "schemas") if o["metadata"]["name"] == "orders-value-v3"
    )

    status, message = evaluate_health(refused)
    assert status == "Degraded"
    assert message == _ready_message(refused)
    assert "compatible" in message
    # What the operator itself refuses is also a Warning Event on the resource, for `kubectl describe`.
    deadline = time.monotonic() + 30
    while f"Refused: {message}" not in (shown := _describe(cluster, namespace, "schema/orders-value-v3")):
        assert time.monotonic() < deadline, shown
        time.sleep(0.5)
    assert "Warning Refused" in shown


def _describe(cluster: Cluster, namespace: str, what: str) -> str:
    # kubectl describe folds long lines of the Events table; compare without the wrapping.
    return " ".join(cluster.kubectl("describe", "-n", namespace, what).stdout.split())
