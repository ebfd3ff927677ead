"""A real Argo CD syncs kschema resources from git: Synced and Healthy through the project's health Lua,
no drift over several comparisons whatever the apply and diff mode, and a breaking change refused at sync
time with the webhook's message while nothing reaches the registry."""

from __future__ import annotations

import shutil
import time
from typing import Any

import pytest

from tests.e2e.operator_harness import EXAMPLES_DIR
from tests.gitops.conftest import APP, Kschema
from tests.gitops.steps import (
    KSCHEMA_KINDS,
    create,
    declared,
    describe,
    live,
    push,
    ready_message,
    resource_events,
    status,
    synced,
    wait_for_event,
)
from tests.harness.argocd import RESYNC_SECONDS, ArgoCD, GitRepo

pytestmark = pytest.mark.cluster


def test_the_examples_sync_and_each_resource_shows_the_operators_ready_message_as_its_health(
    argocd: ArgoCD, kschema: Kschema, contracts: GitRepo
) -> None:
    app = create(argocd, contracts)

    resources = {(r["kind"], r["name"]): r for r in status(app)["resources"] if r["kind"] in KSCHEMA_KINDS}
    objects = live(argocd)
    assert set(objects) == declared(contracts)
    assert set(resources) == set(objects)
    for key, obj in objects.items():
        health = resources[key]["health"]
        assert (health["status"], health["message"]) == ("Healthy", ready_message(obj)), key
        assert resources[key]["status"] == "Synced", key
    # A Subject's message stays true once its Schemas are registered (versions are counted in status).
    orders = objects[("Subject", "orders-value")]
    assert ready_message(orders) == (
        "subject 'orders-value' is registered; its versions are projected into ConfigMap orders-value-schemas"
    )
    # The counts follow the projection, coalesced (at most one Subject status patch per delay): they can
    # land a moment after Argo CD has seen every resource Healthy.
    assert _counts(argocd, "orders-value") == (2, 2)
    # The Schemas that sort before their Subject were applied first and still registered.
    audit = objects[("Schema", "audit-value-v2")]
    assert ready_message(audit).startswith("registered as audit-value version 2 with ID")


def _counts(argocd: ArgoCD, subject: str, timeout: float = 30) -> tuple[Any, Any]:
    """The Subject's (versionCount, latestVersion) once both are set, or as they are after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = live(argocd, "subjects")[("Subject", subject)].get("status") or {}
        counts = (found.get("versionCount"), found.get("latestVersion"))
        if None not in counts or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)


# Declared by this test only, so that its first version is registered (not restored) in this session.
NEW_SUBJECT = """
apiVersion: kschema.io/v1alpha1
kind: Subject
metadata:
  name: invoices-value
spec:
  format: AVRO
---
apiVersion: kschema.io/v1alpha1
kind: Schema
metadata:
  name: invoices-value-v1
spec:
  subject: invoices-value
  version: 1
  schema: |
    {"type": "record", "name": "Invoice", "namespace": "com.acme",
     "fields": [{"name": "id", "type": "string"}]}
"""


def _wait_for_event(argocd: ArgoCD, obj: dict[str, Any], message: str) -> list[dict[str, Any]]:
    return wait_for_event(lambda: resource_events(argocd, obj), lambda e: e["message"] == message)


def test_registering_and_deprecating_in_git_shows_events_in_describe_and_in_argo_cds_resource_view(
    argocd: ArgoCD, kschema: Kschema, contracts: GitRepo
) -> None:
    create(argocd, contracts)
    (contracts.work / "contracts" / "invoices.yaml").write_text(NEW_SUBJECT)
    head = push(argocd, contracts, "invoices-value version 1")
    argocd.wait(APP, f"Synced and Healthy at {head}", synced(head))
    v1 = live(argocd)[("Schema", "invoices-value-v1")]

    registered = f"Registered version 1 of invoices-value as ID {v1['status']['id']}"
    events = _wait_for_event(argocd, v1, registered)
    assert [(e["type"], e["reason"], e["count"]) for e in events] == [("Normal", "Registered", 1)]
    assert registered in describe(argocd, "schema", "invoices-value-v1")

    (contracts.work / "contracts" / "invoices.yaml").write_text(
        NEW_SUBJECT + '  state: DEPRECATED\n  sunset: "2030-01-01"\n'
    )
    head = push(argocd, contracts, "Deprecate invoices-value version 1")
    argocd.wait(APP, f"Synced and Healthy at {head}", synced(head))

    _wait_for_event(argocd, v1, "Deprecated version 1 of invoices-value; Sunset 2030-01-01")
    shown = describe(argocd, "schema", "invoices-value-v1")
    assert "Deprecated version 1 of invoices-value; Sunset 2030-01-01" in shown
    assert "kschema-operator" in shown  # the Events' source, kubectl's "From" column


@pytest.mark.parametrize(
    ("sync_options", "annotations"),
    [
        pytest.param((), None, id="client-side-apply"),
        pytest.param(("ServerSideApply=true",), None, id="server-side-apply"),
        pytest.param(
            (), {"argocd.argoproj.io/compare-options": "ServerSideDiff=true"}, id="server-side-diff"
        ),
    ],
)
def test_no_drift_over_several_comparisons(
    argocd: ArgoCD,
    kschema: Kschema,
    contracts: GitRepo,
    sync_options: tuple[str, ...],
    annotations: dict[str, str] | None,
) -> None:
    create(argocd, contracts, sync_options=sync_options, annotations=annotations)
    # A manual re-sync finds nothing to change.
    argocd.sync(APP, "drift-test")
    app = argocd.wait(
        APP,
        "the manual sync done",
        lambda a: (
            (status(a).get("operationState") or {})
            .get("operation", {})
            .get("initiatedBy", {})
            .get("username")
            == "drift-test"
            and status(a)["operationState"].get("phase") == "Succeeded"
        ),
    )
    results = [
        r for r in status(app)["operationState"]["syncResult"]["resources"] if r["kind"] in KSCHEMA_KINDS
    ]
    assert len(results) == len(declared(contracts))
    expected = "serverside-applied" if sync_options else "unchanged"
    assert {r["message"].rsplit(" ", 1)[-1] for r in results} == {expected}, results

    # Then three comparisons: a hard refresh, a normal one and the controller's own periodic resync,
    # watched every half second: never OutOfSync, never anything but Healthy.
    seen: set[tuple[str, str]] = set()
    for refresh in ("hard", "normal", None):
        before = status(argocd.get(APP))["reconciledAt"]
        if refresh is not None:
            argocd.refresh(APP, refresh)

        def compared_again(a: dict[str, object], before: str = before) -> bool:
            st = status(a)
            seen.add((st["sync"]["status"], st["health"]["status"]))
            return bool(st.get("reconciledAt") != before)

        argocd.wait(APP, "another comparison", compared_again, timeout=RESYNC_SECONDS * 4)
    assert seen == {("Synced", "Healthy")}


def test_an_incompatible_version_fails_the_sync_with_the_webhooks_message_and_nothing_is_registered(
    argocd: ArgoCD, kschema: Kschema, contracts: GitRepo
) -> None:
    create(argocd, contracts)
    shutil.copy(EXAMPLES_DIR / "incompatible" / "orders-value-v3.yaml", contracts.work / "contracts" / "avro")
    head = push(argocd, contracts, "orders-value version 3 (breaks BACKWARD)")

    app = argocd.wait(
        APP,
        "a failed sync",
        lambda a: (
            (status(a).get("operationState") or {}).get("phase") == "Failed"
            and status(a)["operationState"].get("syncResult", {}).get("revision") == head
        ),
    )

    operation = status(app)["operationState"]
    located = 'version 3 of subject "orders-value" is not BACKWARD compatible with version 2'
    assert 'admission webhook "schemas.kschema.io" denied the request' in operation["message"]
    assert located in operation["message"]
    assert "/fields/discount_cents" in operation["message"]
    failed = [r for r in operation["syncResult"]["resources"] if r["name"] == "orders-value-v3"]
    assert [r["status"] for r in failed] == ["SyncFailed"]
    assert located in failed[0]["message"]
    assert status(app)["sync"]["status"] == "OutOfSync"
    # The controller sets SyncError on its next comparison after the failed operation, not with it.
    app = argocd.wait(
        APP,
        "a SyncError condition",
        lambda a: any(
            c.get("type") == "SyncError" and located in c.get("message", "")
            for c in status(a).get("conditions") or []
        ),
    )
    # Nothing registered, nothing created; what was there stays Healthy.
    kschema.eventually("/subjects/orders-value/versions", (200, [1, 2]))
    assert ("Schema", "orders-value-v3") not in live(argocd)
    assert status(app)["health"]["status"] == "Healthy"
