"""The operator against a real API server: the examples in all three formats become Ready, the store
holds their versions, the ConfigMaps hold the right content, and deletions in either order end alike."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from kschema.operator import OperatorSettings
from kschema.operator.main import kopf_settings
from kschema.store import RegistryStore, SubjectRecord, SubjectVersion
from tests.e2e.operator_harness import (
    EXAMPLES_DIR,
    READY_EXAMPLES,
    InProcessOperator,
    apply_crds,
    get_json,
    operator_in_namespace,
    read_store,
    wait_ready,
)
from tests.harness.cluster import Cluster

pytestmark = pytest.mark.cluster

EXAMPLE_SUBJECTS = {
    "com.acme.Customer": 1,
    "orders-value": 2,
    "acme.money.json": 1,
    "payments-value": 2,
    "acme/money.proto": 1,
    "shipments-value": 2,
    "llm-inference-value": 2,
}


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> None:
    apply_crds(cluster)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/registry.db"


@pytest.fixture
def operator(
    request: pytest.FixtureRequest, cluster: Cluster, namespace: str, store_url: str, crds: None
) -> Iterator[InProcessOperator]:
    """The operator with the test harness's settings, and the parameter's on top (if any)."""
    settings: dict[str, Any] = getattr(request, "param", {})
    with operator_in_namespace(cluster, namespace, store_url, **settings) as running:
        yield running


# No Schema reconcile waits inside kopf's processing: every one finishes in a deferred task, as the
# reconciles past the limit of a large burst do.
DEFERRED = {"inline_reconciles": 0}
# The tests that also run with every Schema reconcile deferred.
BOTH_WAYS = pytest.mark.parametrize("operator", [{}, DEFERRED], ids=["inline", "deferred"], indirect=True)


def assert_handled(cluster: Cluster, namespace: str, operator: InProcessOperator) -> None:
    """Every Schema's status carries the digest of its current spec, so kopf sees it handled and does not
    reconcile it again; and it was written the expected way: by kopf with the reconcile's outcome, or, when
    every reconcile is deferred, by the operator's own client and never by kopf."""
    storage = kopf_settings(OperatorSettings()).persistence.diffbase_storage
    deferred = operator.settings.inline_reconciles == 0
    listed = cluster.kubectl("get", "-n", namespace, "schemas", "--show-managed-fields", "-o", "json").stdout
    for item in json.loads(listed)["items"]:
        name, body = item["metadata"]["name"], kopf.Body(item)
        assert storage.fetch(body=body) == storage.build(body=body), name
        status_writers = {
            m.get("manager") for m in item["metadata"]["managedFields"] if m.get("subresource") == "status"
        }
        assert ("kopf" not in status_writers) if deferred else ("kopf" in status_writers), (
            name,
            status_writers,
        )
        assert status_writers, name


def example_documents() -> list[dict[str, Any]]:
    return [
        doc
        for folder in READY_EXAMPLES
        for path in sorted((EXAMPLES_DIR / folder).glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def apply_examples(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, *(f"--filename={EXAMPLES_DIR / f}" for f in READY_EXAMPLES))


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    """Polls a condition the API offers no watch for (store rows, ConfigMap content)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)


def versions(store_url: str, subject: str, include_deleted: bool = False) -> list[SubjectVersion]:
    async def query(store: RegistryStore) -> list[SubjectVersion]:
        return await store.list_versions(subject, include_deleted=include_deleted)

    return read_store(store_url, query)


def subject_record(store_url: str, subject: str) -> SubjectRecord | None:
    async def query(store: RegistryStore) -> SubjectRecord | None:
        return await store.get_subject(subject, include_deleted=True)

    return read_store(store_url, query)


def schema_text(store_url: str, schema_id: int) -> str | None:
    async def query(store: RegistryStore) -> str | None:
        stored = await store.get_schema(schema_id)
        return None if stored is None else stored.schema

    return read_store(store_url, query)


def config_map(cluster: Cluster, namespace: str, name: str) -> dict[str, str] | None:
    done = cluster.kubectl("get", "-n", namespace, "configmap", name, "-o", "json", check=False)
    if done.returncode != 0:
        return None
    data: dict[str, str] = json.loads(done.stdout).get("data") or {}
    return data


def condition(body: dict[str, Any], type: str) -> dict[str, Any]:
    for found in body.get("status", {}).get("conditions", []):
        if found["type"] == type:
            return dict(found)
    raise AssertionError(f"no {type} condition in {body.get('status')}")


@BOTH_WAYS
def test_the_examples_become_ready_and_are_registered_and_projected(
    cluster: Cluster, namespace: str, store_url: str, operator: InProcessOperator
) -> None:
    apply_examples(cluster, namespace)
    wait_ready(cluster, namespace)
    assert_handled(cluster, namespace, operator)

    for subject, count in EXAMPLE_SUBJECTS.items():
        assert [v.version for v in versions(store_url, subject)] == list(range(1, count + 1)), subject

    documents = {d["metadata"]["name"]: d for d in example_documents() if d["kind"] == "Schema"}
    listed = cluster.kubectl("get", "-n", namespace, "schemas", "--show-managed-fields", "-o", "json").stdout
    for item in json.loads(listed)["items"]:
        name, status = item["metadata"]["name"], item["status"]
        assert status["observedGeneration"] == item["metadata"]["generation"]
        assert condition(item, "Ready")["reason"] == "Registered"
        assert condition(item, "Compatible")["status"] == "True"
        assert len(status["fingerprint"]) == 64
        assert schema_text(store_url, status["id"]) == documents[name]["spec"]["schema"]
        assert "kopf" not in status  # handler results never land in status

    orders = config_map(cluster, namespace, "orders-value-schemas")
    assert orders is not None
    assert set(orders) == {"v1.avsc", "v2.avsc", "latest.avsc", "versions.json"}
    assert orders["latest.avsc"] == orders["v2.avsc"] == documents["orders-value-v2"]["spec"]["schema"]
    ids = {
        str(v.version): {"id": v.schema_id, "state": "ACTIVE"} for v in versions(store_url, "orders-value")
    }
    assert json.loads(orders["versions.json"]) == ids

    shipments = config_map(cluster, namespace, "shipment-contracts")  # spec.projection.configMapName
    assert shipments is not None
    assert set(shipments) == {"v1.proto", "v2.proto", "latest.proto", "versions.json"}
    payments = config_map(cluster, namespace, "payments-value-schemas")
    assert payments is not None
    assert json.loads(payments["versions.json"])["1"]["state"] == "DEPRECATED"
    assert payments["latest.json"] == payments["v2.json"]

    # The printer columns follow the projections a moment later (one status patch per burst).
    wait_for(
        "the Subject's status to count its versions",
        lambda: (
            {"latestVersion": 2, "versionCount": 2}.items()
            <= get_json(cluster, namespace, "subject", "orders-value")["status"].items()
        ),
    )
    subject = get_json(cluster, namespace, "subject", "orders-value")
    assert subject["status"]["subject"] == "orders-value"
    owner = get_json(cluster, namespace, "configmap", "orders-value-schemas")["metadata"]["ownerReferences"][
        0
    ]
    assert (owner["kind"], owner["uid"]) == ("Subject", subject["metadata"]["uid"])
    record = subject_record(store_url, "orders-value")
    assert record is not None
    assert record.namespace == namespace


@BOTH_WAYS
def test_versions_and_references_applied_in_reverse_order_become_ready(
    cluster: Cluster, namespace: str, store_url: str, operator: InProcessOperator
) -> None:
    # Every Schema before its Subject, version 2 before version 1, referrers before what they reference.
    reversed_docs = list(reversed(example_documents()))
    assert reversed_docs[-1]["kind"] == "Subject"
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(reversed_docs))
    wait_ready(cluster, namespace)
    for subject, count in EXAMPLE_SUBJECTS.items():
        assert [v.version for v in versions(store_url, subject)] == list(range(1, count + 1)), subject
    projected = config_map(cluster, namespace, "orders-value-schemas")
    assert projected is not None
    assert projected["latest.avsc"] == projected["v2.avsc"]
    assert_handled(cluster, namespace, operator)


def _orders_v3(field: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "kschema.io/v1alpha1",
            "kind": "Schema",
            "metadata": {"name": "orders-value-v3"},
            "spec": {
                "subject": "orders-value",
                "version": 3,
                "references": [{"name": "com.acme.Customer", "subject": "com.acme.Customer", "version": 1}],
                "schema": json.dumps(
                    {
                        "type": "record",
                        "name": "Order",
                        "namespace": "com.acme",
                        "fields": [
                            {"name": "id", "type": "string"},
                            {"name": "customer", "type": "com.acme.Customer"},
                            {"name": "total_cents", "type": "long"},
                            {"name": "currency", "type": "string", "default": "EUR"},
                            json.loads(field),
                        ],
                    }
                ),
            },
        }
    )


@BOTH_WAYS
def test_an_incompatible_version_is_not_registered_and_says_why(
    cluster: Cluster, namespace: str, store_url: str, operator: InProcessOperator
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR / "avro"))
    wait_ready(cluster, namespace)
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=_orders_v3('{"name": "priority", "type": "int"}')
    )
    cluster.kubectl(
        "wait",
        "-n",
        namespace,
        "--for=jsonpath={.status.conditions[?(@.type=='Compatible')].status}=False",
        "--timeout=60s",
        "schema/orders-value-v3",
    )
    body = get_json(cluster, namespace, "schema", "orders-value-v3")
    ready, compatible = condition(body, "Ready"), condition(body, "Compatible")
    assert (ready["status"], ready["reason"]) == ("False", "Incompatible")
    assert "priority" in compatible["message"]
    assert "version 2" in compatible["message"]
    assert [v.version for v in versions(store_url, "orders-value")] == [1, 2]


@BOTH_WAYS
def test_a_state_change_updates_the_store_and_the_projection(
    cluster: Cluster, namespace: str, store_url: str, operator: InProcessOperator
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR / "avro"))
    wait_ready(cluster, namespace)
    cluster.kubectl(
        "patch",
        "-n",
        namespace,
        "schema",
        "orders-value-v2",
        "--type=merge",
        "-p",
        '{"spec":{"state":"ARCHIVED"}}',
    )
    wait_for(
        "version 2 to be archived",
        lambda: [str(v.state) for v in versions(store_url, "orders-value")] == ["ACTIVE", "ARCHIVED"],
    )

    def projected_without_v2() -> bool:
        data = config_map(cluster, namespace, "orders-value-schemas") or {}
        return "v2.avsc" not in data and data.get("latest.avsc") == data.get("v1.avsc")

    wait_for("the ConfigMap to drop version 2", projected_without_v2)
    wait_for(
        "the Subject to report version 1 as latest",
        lambda: get_json(cluster, namespace, "subject", "orders-value")["status"].get("latestVersion") == 1,
    )


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# Retries 5 s apart: the deletion and the referenced version's registration come before the next one.
@pytest.mark.parametrize("operator", [{**DEFERRED, "retry_delay": 5, "retry_max_delay": 5}], indirect=True)
def test_a_schema_deleted_while_its_deferred_reconcile_retries_is_never_registered(
    cluster: Cluster, namespace: str, store_url: str, operator: InProcessOperator
) -> None:
    """A deferred reconcile waiting to retry (its reference is not registered yet) is stopped by the
    Schema's deletion: the reference arriving afterwards does not register the deleted version."""
    customer_subject, customer_v1 = _documents(EXAMPLES_DIR / "avro" / "customer.yaml")
    orders_subject, orders_v1, _ = _documents(EXAMPLES_DIR / "avro" / "orders.yaml")
    referrers = yaml.safe_dump_all([customer_subject, orders_subject, orders_v1])
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=referrers)
    cluster.kubectl(
        "wait",
        "-n",
        namespace,
        "--for=jsonpath={.status.conditions[?(@.type=='Ready')].reason}=ReferenceNotFound",
        "--timeout=60s",
        "schema/orders-value-v1",
    )
    cluster.kubectl("delete", "-n", namespace, "schema", "orders-value-v1", "--timeout=60s")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(customer_v1))
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "schema/customer-v1")
    # Longer than the longest backoff of this operator (`retry_max_delay`): a retry would have run.
    time.sleep(operator.settings.retry_max_delay + 2)
    assert [v.version for v in versions(store_url, "com.acme.Customer")] == [1]
    assert versions(store_url, "orders-value", include_deleted=True) == []


def _deleted_everywhere(store_url: str, subject: str, ids: list[int]) -> None:
    record = subject_record(store_url, subject)
    assert record is not None
    assert record.deleted
    assert versions(store_url, subject) == []
    assert all(v.deleted for v in versions(store_url, subject, include_deleted=True))
    assert all(schema_text(store_url, i) is not None for i in ids)  # IDs keep resolving


@BOTH_WAYS
def test_deleting_schemas_first_or_the_subject_first_ends_in_the_same_state(
    cluster: Cluster, namespace: str, store_url: str, operator: InProcessOperator
) -> None:
    apply_examples(cluster, namespace)
    wait_ready(cluster, namespace)
    order_ids = [v.schema_id for v in versions(store_url, "orders-value")]
    payment_ids = [v.schema_id for v in versions(store_url, "payments-value")]

    # Schemas first: each deletion soft-deletes its version and re-projects the Subject (from the DELETED
    # event: a Schema holds no finalizer, so kubectl returns before the operator has seen it go).
    cluster.kubectl("delete", "-n", namespace, "schema", "orders-value-v2", "--timeout=60s")
    wait_for(
        "the store to soft-delete version 2",
        lambda: [v.version for v in versions(store_url, "orders-value")] == [1],
    )
    wait_for(
        "the ConfigMap to drop version 2",
        lambda: "v2.avsc" not in (config_map(cluster, namespace, "orders-value-schemas") or {"v2.avsc": ""}),
    )
    cluster.kubectl("delete", "-n", namespace, "schema", "orders-value-v1", "--timeout=60s")
    cluster.kubectl("delete", "-n", namespace, "subject", "orders-value", "--timeout=60s")

    # Subject first: its Schemas stay behind, not Ready, until they are deleted too.
    cluster.kubectl("delete", "-n", namespace, "subject", "payments-value", "--timeout=60s")
    for name in ("payments-value-v1", "payments-value-v2"):
        cluster.kubectl(
            "wait", "-n", namespace, "--for=condition=Ready=False", "--timeout=60s", f"schema/{name}"
        )
        assert condition(get_json(cluster, namespace, "schema", name), "Ready")["reason"] == "SubjectNotFound"
    cluster.kubectl(
        "delete", "-n", namespace, "schema", "payments-value-v1", "payments-value-v2", "--timeout=60s"
    )

    _deleted_everywhere(store_url, "orders-value", order_ids)
    _deleted_everywhere(store_url, "payments-value", payment_ids)
    assert config_map(cluster, namespace, "orders-value-schemas") is None
    assert config_map(cluster, namespace, "payments-value-schemas") is None
    # The other subjects are untouched.
    assert [v.version for v in versions(store_url, "shipments-value")] == [1, 2]


def test_a_subject_re_created_after_deletion_brings_its_schemas_back(
    cluster: Cluster, namespace: str, store_url: str, operator: InProcessOperator
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR / "avro"))
    wait_ready(cluster, namespace)
    ids = [v.schema_id for v in versions(store_url, "orders-value")]
    cluster.kubectl("delete", "-n", namespace, "subject", "orders-value", "--timeout=60s")
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready=False", "--timeout=60s", "schema/orders-value-v1"
    )
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR / "avro"))
    wait_ready(cluster, namespace)
    assert [v.schema_id for v in versions(store_url, "orders-value")] == ids
    wait_for(
        "the ConfigMap to come back",
        lambda: config_map(cluster, namespace, "orders-value-schemas") is not None,
    )


def test_a_schema_deleted_while_the_operator_was_stopped_is_swept_by_the_resync(
    cluster: Cluster, namespace: str, store_url: str, crds: None
) -> None:
    """A Schema holds no finalizer: deleted while no operator runs, it goes at once, and the restarted
    operator's resync soft-deletes its version, re-projects the Subject and says so on the Subject."""
    settings = OperatorSettings(
        namespaces=(namespace,), kubeconfig=cluster.kubeconfig, peering=None, resync_interval=1
    )
    first = InProcessOperator(settings, store_url).start()
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR / "avro"))
        wait_ready(cluster, namespace)
        assert not get_json(cluster, namespace, "schema", "orders-value-v2")["metadata"].get("finalizers")
    finally:
        first.stop()
    cluster.kubectl("delete", "-n", namespace, "schema", "orders-value-v2", "--timeout=30s")
    assert [v.version for v in versions(store_url, "orders-value")] == [1, 2]  # nobody saw it go

    second = InProcessOperator(settings, store_url).start()
    try:
        wait_for(
            "the resync to soft-delete version 2",
            lambda: [v.version for v in versions(store_url, "orders-value")] == [1],
            timeout=120,
        )
        wait_for(
            "the ConfigMap to drop version 2",
            lambda: "v2.avsc" not in (config_map(cluster, namespace, "orders-value-schemas") or {}),
        )
        assert "v1.avsc" in (config_map(cluster, namespace, "orders-value-schemas") or {})
        deleted = [v for v in versions(store_url, "orders-value", include_deleted=True) if v.deleted]
        assert [v.version for v in deleted] == [2]  # its ID still resolves
        wait_for("the Event on the Subject", lambda: _swept_event(cluster, namespace) is not None)
        assert "version(s) 2 of orders-value" in str(_swept_event(cluster, namespace))
    finally:
        cluster.kubectl("delete", "-n", namespace, "schemas,subjects", "--all", "--timeout=60s", check=False)
        second.stop()


def _swept_event(cluster: Cluster, namespace: str) -> str | None:
    events = get_json(cluster, namespace, "events", "--field-selector=reason=VersionDeleted")["items"]
    found = [e["message"] for e in events if e["involvedObject"]["kind"] == "Subject"]
    return found[0] if found else None


def test_a_schema_in_a_namespace_without_its_subject_reports_subject_not_found(
    cluster: Cluster, namespace: str, operator: InProcessOperator
) -> None:
    orphan = next(d for d in example_documents() if d["metadata"]["name"] == "customer-v1")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(orphan))
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready=False", "--timeout=60s", "schema/customer-v1"
    )
    ready = condition(get_json(cluster, namespace, "schema", "customer-v1"), "Ready")
    assert ready["reason"] == "SubjectNotFound"
    assert "customer" in ready["message"]
