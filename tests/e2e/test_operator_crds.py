"""The Subject and Schema CRDs, applied to a real API server: defaults, enums, required fields and the
immutability rules hold without the operator or the webhook running."""

from __future__ import annotations

import json

import pytest

from tests.e2e.operator_harness import CRD_DIR, apply_crds
from tests.harness.cluster import Cluster

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> None:
    apply_crds(cluster)


def _subject(resource_name: str, **spec: object) -> str:
    return json.dumps(
        {
            "apiVersion": "kschema.io/v1alpha1",
            "kind": "Subject",
            "metadata": {"name": resource_name},
            "spec": {"format": "AVRO", **spec},
        }
    )


def _schema(name: str, **spec: object) -> str:
    body = {"subject": "orders", "version": 1, "schema": '"string"', **spec}
    return json.dumps(
        {"apiVersion": "kschema.io/v1alpha1", "kind": "Schema", "metadata": {"name": name}, "spec": body}
    )


def _get(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, object]:
    got: dict[str, object] = json.loads(
        cluster.kubectl("get", "-n", namespace, kind, name, "-o", "json").stdout
    )
    return got


def test_the_crd_files_are_the_ones_applied(cluster: Cluster, crds: None) -> None:
    names = {p.name for p in CRD_DIR.glob("*.yaml")}
    assert {"kschema.io_subjects.yaml", "kschema.io_schemas.yaml"} <= names
    got = cluster.kubectl("get", "crd", "subjects.kschema.io", "schemas.kschema.io", "-o", "name").stdout
    assert got.split() == [
        "customresourcedefinition.apiextensions.k8s.io/subjects.kschema.io",
        "customresourcedefinition.apiextensions.k8s.io/schemas.kschema.io",
    ]


def test_a_subject_without_a_level_keeps_none_and_gets_an_enabled_projection_by_default(
    cluster: Cluster, namespace: str, crds: None
) -> None:
    # No CRD default for spec.compatibility: the Subject inherits the cluster-wide level at run time.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_subject("orders"))
    spec = _get(cluster, namespace, "ksub", "orders")["spec"]
    assert spec == {"format": "AVRO", "projection": {"enabled": True}}


def test_a_subject_with_an_unknown_format_is_refused_naming_the_field(
    cluster: Cluster, namespace: str, crds: None
) -> None:
    done = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=_subject("x", format="XML"), check=False
    )
    assert done.returncode != 0
    assert "spec.format" in done.stderr
    assert "AVRO" in done.stderr


def test_a_subjects_format_and_name_cannot_change(cluster: Cluster, namespace: str, crds: None) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_subject("orders"))
    done = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=_subject("orders", format="JSON"), check=False
    )
    assert "spec.format is immutable" in done.stderr
    done = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=_subject("orders", name="renamed"), check=False
    )
    assert "spec.name is immutable" in done.stderr
    # Writing out the default explicitly changes nothing and is allowed.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_subject("orders", name="orders"))
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=_subject("orders", name="orders", compatibility="FULL")
    )


def test_a_schema_is_active_by_default_and_needs_a_version_of_at_least_one(
    cluster: Cluster, namespace: str, crds: None
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_schema("orders-v1"))
    assert _get(cluster, namespace, "ksch", "orders-v1")["spec"]["state"] == "ACTIVE"  # type: ignore[index]  # JSON
    done = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_schema("v0", version=0), check=False)
    assert done.returncode != 0
    assert "spec.version" in done.stderr
    done = cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "kschema.io/v1alpha1",
                "kind": "Schema",
                "metadata": {"name": "bare"},
                "spec": {"subject": "orders"},
            }
        ),
        check=False,
    )
    assert "spec.version: Required value" in done.stderr
    assert "spec.schema: Required value" in done.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": '"bytes"'}, "spec.schema is immutable"),
        ({"version": 2}, "spec.version is immutable"),
        ({"subject": "payments"}, "spec.subject is immutable"),
        ({"id": 7}, "spec.id is immutable"),
        ({"references": [{"name": "a", "subject": "b", "version": 1}]}, "spec.references is immutable"),
    ],
)
def test_a_schemas_content_cannot_change(
    cluster: Cluster, namespace: str, crds: None, change: dict[str, object], message: str
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_schema("orders-v1"))
    done = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=_schema("orders-v1", **change), check=False
    )
    assert done.returncode != 0
    assert message in done.stderr


def test_a_schemas_state_can_change(cluster: Cluster, namespace: str, crds: None) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_schema("orders-v1", id=5))
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_schema("orders-v1", id=5, state="DEPRECATED"))
    assert _get(cluster, namespace, "ksch", "orders-v1")["spec"]["state"] == "DEPRECATED"  # type: ignore[index]  # JSON
    done = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=_schema("orders-v1", id=5, state="GONE"), check=False
    )
    assert "spec.state" in done.stderr


def test_printer_columns_show_subject_version_id_state_and_ready(
    cluster: Cluster, namespace: str, crds: None
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_schema("orders-v1"))
    header = cluster.kubectl("get", "-n", namespace, "ksch").stdout.splitlines()[0].split()
    assert header == ["NAME", "SUBJECT", "VERSION", "ID", "STATE", "READY", "AGE"]
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_subject("orders"))
    header = cluster.kubectl("get", "-n", namespace, "ksub").stdout.splitlines()[0].split()
    assert header == ["NAME", "SUBJECT", "FORMAT", "COMPATIBILITY", "LATEST", "VERSIONS", "READY", "AGE"]
