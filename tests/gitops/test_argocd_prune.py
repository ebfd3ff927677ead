"""What Argo CD removes, kschema soft-deletes: a pruned Schema's ID keeps resolving, a Subject and its
Schemas removed in one commit end alike in whatever order Argo CD deletes them, deleting the Application
cleans up the same way, and moving manifests around in git changes nothing in the registry."""

from __future__ import annotations

import shutil
import time
from typing import Any

import pytest

from tests.gitops.conftest import APP, NAMESPACE, Kschema
from tests.gitops.steps import (
    create,
    declared,
    events_named,
    live,
    push,
    remove_document,
    resource_events,
    status,
    synced,
    wait_for_event,
)
from tests.harness.argocd import ArgoCD, GitRepo

pytestmark = pytest.mark.cluster


def _ids(argocd: ArgoCD) -> dict[str, int]:
    return {name: obj["status"]["id"] for (kind, name), obj in live(argocd, "schemas").items()}


def _assert_soft_deleted(kschema: Kschema, subject: str, versions: list[int], ids: list[int]) -> None:
    deadline = time.monotonic() + 30
    while (code := kschema.get(f"/subjects/{subject}/versions")[0]) != 404:
        assert time.monotonic() < deadline, f"{subject} is still listed ({code})"
        time.sleep(0.2)
    kschema.eventually(f"/subjects/{subject}/versions?deleted=true", (200, versions))
    for schema_id in ids:
        assert kschema.get(f"/schemas/ids/{schema_id}")[0] == 200, schema_id


def test_pruning_a_schema_soft_deletes_its_version_and_tells_the_subject(
    argocd: ArgoCD, kschema: Kschema, contracts: GitRepo
) -> None:
    create(argocd, contracts)
    pruned_id = _ids(argocd)["shipments-value-v2"]
    remove_document(contracts, "contracts/protobuf/shipments.yaml", "shipments-value-v2")
    head = push(argocd, contracts, "Remove shipments-value version 2")

    app = argocd.wait(APP, f"Synced at {head}", synced(head))

    results = status(app)["operationState"]["syncResult"]["resources"]
    assert [r["message"] for r in results if r["name"] == "shipments-value-v2"] == ["pruned"]
    assert ("Schema", "shipments-value-v2") not in live(argocd)
    kschema.eventually("/subjects/shipments-value/versions", (200, [1]))
    kschema.eventually("/subjects/shipments-value/versions?deleted=true", (200, [1, 2]))
    assert kschema.get(f"/schemas/ids/{pruned_id}")[0] == 200
    # Argo CD shows no admission warning on prune; the Subject (still in the Application) carries it.
    subject = live(argocd)[("Subject", "shipments-value")]
    events = wait_for_event(
        lambda: resource_events(argocd, subject), lambda e: e["reason"] == "VersionDeleted"
    )
    warnings = [(e["type"], e["message"]) for e in events if e["reason"] == "VersionDeleted"]
    assert warnings == [
        (
            "Warning",
            f"Soft-deleted version 2 of shipments-value; ID {pruned_id} still resolves; "
            "clients asking for the latest version now get version 1",
        )
    ]


def test_removing_subjects_and_their_schemas_in_one_commit_soft_deletes_them_in_either_order(
    argocd: ArgoCD, kschema: Kschema, contracts: GitRepo
) -> None:
    create(argocd, contracts)
    ids = _ids(argocd)
    # orders-value sorts before its Schemas (orders-value-v1, -v2); zz-audit after its (audit-value-v1, -v2).
    (contracts.work / "contracts" / "avro" / "orders.yaml").unlink()
    shutil.rmtree(contracts.work / "contracts" / "extra")
    head = push(argocd, contracts, "Remove orders-value and audit-value")

    argocd.wait(APP, f"Synced at {head}", synced(head))

    left = live(argocd)
    for name in (
        "orders-value",
        "orders-value-v1",
        "orders-value-v2",
        "zz-audit",
        "audit-value-v1",
        "audit-value-v2",
    ):
        assert all(n != name for _, n in left), name
    _assert_soft_deleted(kschema, "orders-value", [1, 2], [ids["orders-value-v1"], ids["orders-value-v2"]])
    _assert_soft_deleted(kschema, "audit-value", [1, 2], [ids["audit-value-v1"], ids["audit-value-v2"]])
    # The Subjects are gone, their Events stay for `kubectl get events`.
    events = wait_for_event(
        lambda: events_named(argocd, "orders-value"), lambda e: e["reason"] == "SubjectDeleted"
    )
    messages = [e["message"] for e in events if e["reason"] == "SubjectDeleted"]
    assert messages
    assert messages[-1].startswith("Subject 'orders-value' soft-deleted; IDs")


def test_deleting_the_application_soft_deletes_everything_it_synced(
    argocd: ArgoCD, kschema: Kschema, contracts: GitRepo
) -> None:
    create(argocd, contracts)
    ids = _ids(argocd)
    deadline = time.monotonic() + 30
    count = sum(1 for kind, _ in declared(contracts) if kind == "Subject")
    while len(subjects := kschema.get("/subjects")[1]) != count:  # the read API follows the store
        assert time.monotonic() < deadline, subjects
        time.sleep(0.2)

    argocd.delete(APP)

    assert live(argocd) == {}
    kschema.eventually("/subjects", (200, []))
    code, deleted = kschema.get("/subjects?deleted=true")
    assert code == 200
    assert set(deleted) == set(subjects)
    for schema_id in ids.values():
        assert kschema.get(f"/schemas/ids/{schema_id}")[0] == 200, schema_id
    configmaps = argocd.cluster.kubectl(
        "get", "-n", NAMESPACE, "configmaps", "-l", "app.kubernetes.io/managed-by=kschema", "-o", "name"
    )
    assert configmaps.stdout.strip() == ""


def test_moving_manifests_between_files_and_directories_registers_nothing_new(
    argocd: ArgoCD, kschema: Kschema, contracts: GitRepo
) -> None:
    create(argocd, contracts)
    before: dict[tuple[str, str], dict[str, Any]] = live(argocd)
    ids = _ids(argocd)
    work = contracts.work / "contracts"
    # A Schema out of its Subject's file into a new directory, a whole file into another directory.
    document = remove_document(contracts, "contracts/avro/orders.yaml", "orders-value-v2")
    (work / "moved" / "deeper").mkdir(parents=True)
    (work / "moved" / "deeper" / "orders-v2.yaml").write_text(document)
    (work / "avro" / "customer.yaml").rename(work / "json" / "customer-moved.yaml")
    head = push(argocd, contracts, "Reorganise the repository")

    argocd.wait(APP, f"Synced at {head}", synced(head))

    after = live(argocd)
    assert {k: o["metadata"]["uid"] for k, o in after.items()} == {
        k: o["metadata"]["uid"] for k, o in before.items()
    }
    assert _ids(argocd) == ids
    kschema.eventually("/subjects/orders-value/versions", (200, [1, 2]))
    assert kschema.get(f"/schemas/ids/{max(ids.values()) + 1}")[0] == 404
    moved = after[("Schema", "orders-value-v2")]
    # One registration Event (Registered, or Restored when an earlier test deleted it), none for the move.
    registrations = [e for e in resource_events(argocd, moved) if e["reason"] in ("Registered", "Restored")]
    assert len(registrations) == 1, registrations
