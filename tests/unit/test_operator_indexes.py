"""The index entries the Subject's resync sweeps by: which versions of a registry subject Schemas declare."""

from __future__ import annotations

from typing import Any, cast

import kopf

from kschema.formats import SchemaFormat
from kschema.model import SubjectSpec
from kschema.operator.context import SUBJECT_UID_ANNOTATION
from kschema.operator.indexes import (
    Registration,
    SchemaEntry,
    SubjectEntry,
    declared_versions,
    index_schema,
)


def _subject(namespace: str, resource: str, registry: str) -> SubjectEntry:
    return SubjectEntry(
        SubjectSpec(resource, namespace, registry, SchemaFormat.AVRO), f"uid-{resource}", False
    )


def _schema(name: str, version: int | None) -> SchemaEntry:
    return SchemaEntry(name, None, True, version=version)


def test_the_declared_versions_are_those_of_every_subject_resource_naming_it_in_the_namespace() -> None:
    subjects: dict[Any, Any] = {
        ("shop", "orders"): [_subject("shop", "orders", "orders-value")],
        ("shop", "orders-twin"): [_subject("shop", "orders-twin", "orders-value")],
        ("shop", "payments"): [_subject("shop", "payments", "payments-value")],
        ("other", "orders"): [_subject("other", "orders", "orders-value")],
        ("shop", "broken"): [SubjectEntry(None, "uid-broken", False)],
    }
    schemas: dict[Any, Any] = {
        ("shop", "orders"): [_schema("orders-v1", 1), _schema("orders-v2", 2), _schema("bad", None)],
        ("shop", "orders-twin"): [_schema("twin-v5", 5)],
        ("shop", "payments"): [_schema("payments-v3", 3)],
        ("other", "orders"): [_schema("other-v4", 4)],
        ("shop", "broken"): [_schema("broken-v6", 6)],
    }

    by_name, by_subject = cast(kopf.Index[Any, Any], subjects), cast(kopf.Index[Any, Any], schemas)
    assert declared_versions(by_name, by_subject, "shop", "orders-value") == {1, 2, 5}
    assert declared_versions(by_name, by_subject, "other", "orders-value") == {4}
    assert declared_versions(by_name, by_subject, "shop", "missing-value") == set()


def _body(raw: dict[str, Any]) -> kopf.Body:
    return kopf.Body(cast(kopf.RawBody, raw))


async def test_a_schema_entry_carries_its_declared_version_ready_or_not() -> None:
    indexed = await index_schema(
        namespace="shop",
        name="orders-v3",
        body=_body(
            {
                "metadata": {"name": "orders-v3", "generation": 1},
                "spec": {"subject": "orders", "version": 3},
                "status": {},
            }
        ),
    )
    assert indexed == {("shop", "orders"): SchemaEntry("orders-v3", None, False, False, None, 3)}
    not_a_number = await index_schema(
        namespace="shop",
        name="orders-vx",
        body=_body({"metadata": {"name": "orders-vx"}, "spec": {"subject": "orders", "version": True}}),
    )
    assert not_a_number[("shop", "orders")].version is None


async def test_a_registered_schema_entry_carries_what_its_status_says() -> None:
    indexed = await index_schema(
        namespace="shop",
        name="orders-v3",
        body=_body(
            {
                "metadata": {
                    "name": "orders-v3",
                    "generation": 2,
                    "annotations": {SUBJECT_UID_ANNOTATION: "uid-1"},
                },
                "spec": {"subject": "orders", "version": 3},
                "status": {
                    "observedGeneration": 2,
                    "id": 42,
                    "registrySubject": "orders-value",
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        ),
    )
    registration = Registration(3, 42, "orders-value")
    assert indexed == {("shop", "orders"): SchemaEntry("orders-v3", "uid-1", True, False, registration, 3)}
