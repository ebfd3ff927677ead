"""The operator's service layer without Kubernetes: registration against a real SQLite store, status
conditions, the ConfigMap rendering and the deletion bound."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import kopf
import pytest

from kschema.compute import WorkerPool
from kschema.formats import Reference, SchemaFormat
from kschema.model import SchemaSpec, SchemaState, SubjectSpec
from kschema.operator import OperatorSettings
from kschema.operator.blocked import Blocked
from kschema.operator.conditions import Condition, merge
from kschema.operator.context import OperatorContext, fail, release_blocked
from kschema.operator.events import EventRecorder, ObjectRef
from kschema.operator.main import build_registry
from kschema.operator.registration import (
    VersionRequest,
    live_subject,
    register_version,
    register_versions,
    soft_delete_subject,
    upsert_subject,
)
from kschema.operator.rendering import render
from kschema.store import RegistryStore, StoreUnavailableError, SubjectVersion
from kschema.store.factory import open_store

CUSTOMER = json.dumps(
    {
        "type": "record",
        "name": "Customer",
        "namespace": "com.acme",
        "fields": [{"name": "id", "type": "string"}],
    }
)


def order(*extra: dict[str, object]) -> str:
    fields: list[dict[str, object]] = [{"name": "id", "type": "string"}, *extra]
    return json.dumps({"type": "record", "name": "Order", "namespace": "com.acme", "fields": fields})


def subject(name: str = "orders-value", namespace: str = "shop") -> SubjectSpec:
    return SubjectSpec(resource_name=name, namespace=namespace, name=name, format=SchemaFormat.AVRO)


def version(n: int, text: str, subject: str = "orders-value", **kwargs: object) -> SchemaSpec:
    return SchemaSpec(
        resource_name=f"{subject}-v{n}",
        namespace="shop",
        subject=subject,
        version=n,
        schema=text,
        **kwargs,  # type: ignore[arg-type]  # the optional SchemaSpec fields
    )


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    async with WorkerPool(processes=1) as started:
        yield started


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RegistryStore]:
    opened = await open_store(f"sqlite:///{tmp_path}/registry.db")
    try:
        yield opened
    finally:
        await opened.close()


async def test_registering_the_same_version_twice_returns_the_same_id(
    store: RegistryStore, pool: WorkerPool
) -> None:
    await upsert_subject(store, subject())
    record = await live_subject(store, "orders-value")
    first = await register_version(store, record, version(1, order()), pool=pool)
    again = await register_version(store, record, version(1, order()), pool=pool)
    assert again.version.schema_id == first.version.schema_id
    assert again.already_registered
    assert [v.version for v in await store.list_versions("orders-value")] == [1]


async def test_a_pinned_id_is_honoured(store: RegistryStore, pool: WorkerPool) -> None:
    await upsert_subject(store, subject())
    record = await live_subject(store, "orders-value")
    registered = await register_version(store, record, version(1, order(), pinned_id=4242), pool=pool)
    assert registered.version.schema_id == 4242


async def test_a_version_whose_subject_is_not_registered_yet_is_a_temporary_block(
    store: RegistryStore,
) -> None:
    with pytest.raises(Blocked) as blocked:
        await live_subject(store, "orders-value")
    assert (blocked.value.reason, blocked.value.temporary) == ("SubjectNotReady", True)


async def test_a_reference_not_registered_yet_is_temporary_and_resolves_once_it_is(
    store: RegistryStore, pool: WorkerPool
) -> None:
    await upsert_subject(store, subject())
    await upsert_subject(store, subject("com.acme.Customer"))
    orders = await live_subject(store, "orders-value")
    referring = version(
        1,
        order({"name": "customer", "type": "com.acme.Customer"}),
        references=(Reference("com.acme.Customer", "com.acme.Customer", 1),),
    )
    with pytest.raises(Blocked) as blocked:
        await register_version(store, orders, referring, pool=pool)
    assert (blocked.value.reason, blocked.value.temporary) == ("ReferenceNotFound", True)
    assert 'spec.references[0]: reference "com.acme.Customer" (subject "com.acme.Customer" version 1)' in (
        blocked.value.message
    )

    customers = await live_subject(store, "com.acme.Customer")
    await register_version(store, customers, version(1, CUSTOMER, subject="com.acme.Customer"), pool=pool)
    registered = await register_version(store, orders, referring, pool=pool)
    assert registered.version.version == 1


async def test_a_reference_to_a_version_of_another_format_is_a_permanent_block(
    store: RegistryStore, pool: WorkerPool
) -> None:
    await upsert_subject(store, subject("com.acme.Customer"))
    customers = await live_subject(store, "com.acme.Customer")
    await register_version(store, customers, version(1, CUSTOMER, subject="com.acme.Customer"), pool=pool)
    shapes = SubjectSpec(resource_name="shapes", namespace="shop", name="shapes", format=SchemaFormat.JSON)
    await upsert_subject(store, shapes)
    record = await live_subject(store, "shapes")
    referring = version(
        1,
        '{"$ref": "customer.json"}',
        subject="shapes",
        references=(Reference("customer.json", "com.acme.Customer", 1),),
    )
    with pytest.raises(Blocked) as blocked:
        await register_version(store, record, referring, pool=pool)
    assert (blocked.value.reason, blocked.value.temporary) == ("InvalidReference", False)
    assert "a JSON schema can only refer to JSON schemas" in blocked.value.message


async def test_adding_a_field_without_default_is_refused_naming_the_field_and_versions(
    store: RegistryStore, pool: WorkerPool
) -> None:
    await upsert_subject(store, subject())
    record = await live_subject(store, "orders-value")
    await register_version(store, record, version(1, order()), pool=pool)
    with pytest.raises(Blocked) as blocked:
        await register_version(store, record, version(2, order({"name": "cost", "type": "long"})), pool=pool)
    assert (blocked.value.reason, blocked.value.temporary) == ("Incompatible", False)
    assert "cost" in blocked.value.message
    assert "version 2" in blocked.value.message
    assert "version 1" in blocked.value.message
    assert [v.version for v in await store.list_versions("orders-value")] == [1]


async def test_a_version_is_checked_only_against_lower_versions_already_registered(
    store: RegistryStore, pool: WorkerPool
) -> None:
    await upsert_subject(store, subject())
    record = await live_subject(store, "orders-value")
    later = await register_version(
        store, record, version(3, order({"name": "b", "type": "long", "default": 0})), pool=pool
    )
    assert later.checked_against == ()
    earlier = await register_version(store, record, version(1, order()), pool=pool)
    assert earlier.checked_against == ()
    middle = await register_version(
        store, record, version(2, order({"name": "a", "type": "long", "default": 0})), pool=pool
    )
    assert middle.checked_against == (1,)


async def test_a_state_change_is_written_to_the_store(store: RegistryStore, pool: WorkerPool) -> None:
    await upsert_subject(store, subject())
    record = await live_subject(store, "orders-value")
    await register_version(store, record, version(1, order()), pool=pool)
    await register_version(
        store, record, version(1, order(), state=SchemaState.DEPRECATED, sunset="2030-01-01"), pool=pool
    )
    stored = await store.get_version("orders-value", 1)
    assert stored is not None
    assert (stored.state, stored.sunset) == (SchemaState.DEPRECATED, "2030-01-01")


async def test_an_invalid_schema_is_a_permanent_block_naming_the_field(
    store: RegistryStore, pool: WorkerPool
) -> None:
    await upsert_subject(store, subject())
    record = await live_subject(store, "orders-value")
    with pytest.raises(Blocked) as blocked:
        await register_version(store, record, version(1, '{"type": "record"}'), pool=pool)
    assert (blocked.value.reason, blocked.value.temporary) == ("InvalidSchema", False)
    assert blocked.value.message.startswith("spec.schema:")


async def test_another_namespace_cannot_claim_a_subject(store: RegistryStore) -> None:
    await upsert_subject(store, subject())
    with pytest.raises(Blocked) as blocked:
        await upsert_subject(store, subject(namespace="elsewhere"))
    assert (blocked.value.reason, blocked.value.temporary) == ("SubjectOwnedElsewhere", False)


async def test_a_deleted_subject_is_not_live_for_new_versions(store: RegistryStore) -> None:
    await upsert_subject(store, subject())
    await soft_delete_subject(store, "orders-value", "shop")
    with pytest.raises(Blocked) as blocked:
        await live_subject(store, "orders-value")
    assert blocked.value.reason == "SubjectNotReady"


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    first = merge([], [Condition("Ready", False, "ReferenceNotFound", "x")], 1, at="2026-01-01T00:00:00Z")
    same = merge(first, [Condition("Ready", False, "StoreUnavailable", "y")], 1, at="2026-01-02T00:00:00Z")
    flipped = merge(same, [Condition("Ready", True, "Registered", "z")], 2, at="2026-01-03T00:00:00Z")
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["reason"] == "StoreUnavailable"
    assert flipped[0] == {
        "type": "Ready",
        "status": "True",
        "reason": "Registered",
        "message": "z",
        "lastTransitionTime": "2026-01-03T00:00:00Z",
        "observedGeneration": 2,
    }


def test_other_conditions_are_kept_and_unknown_is_spelled_out() -> None:
    merged = merge(
        [
            {
                "type": "Compatible",
                "status": "True",
                "reason": "Compatible",
                "message": "",
                "lastTransitionTime": "t",
            }
        ],
        [Condition("Ready", None, "NotChecked", "")],
        None,
    )
    assert [(c["type"], c["status"]) for c in merged] == [("Compatible", "True"), ("Ready", "Unknown")]


def _v(n: int, schema_id: int, state: SchemaState = SchemaState.ACTIVE) -> SubjectVersion:
    return SubjectVersion("orders-value", n, schema_id, state, False, "shop")


def test_the_projection_serves_every_version_but_archived_and_never_a_draft_as_latest() -> None:
    projection = render(
        SchemaFormat.PROTOBUF,
        [
            (_v(3, 30, SchemaState.DRAFT), "three"),
            (_v(1, 10, SchemaState.ARCHIVED), "one"),
            (_v(2, 20, SchemaState.DEPRECATED), "two"),
        ],
    )
    assert set(projection.data) == {"v2.proto", "v3.proto", "latest.proto", "versions.json"}
    assert projection.data["latest.proto"] == "two"
    assert json.loads(projection.data["versions.json"]) == {
        "2": {"id": 20, "state": "DEPRECATED"},
        "3": {"id": 30, "state": "DRAFT"},
    }
    assert (projection.latest_version, projection.version_count) == (2, 3)


def test_a_projection_without_servable_versions_has_no_latest_key() -> None:
    projection = render(SchemaFormat.JSON, [(_v(1, 10, SchemaState.DRAFT), "{}")])
    assert "latest.json" not in projection.data
    assert projection.latest_version is None


class _Sink:
    async def create_event(self, namespace: str, body: dict[str, Any]) -> str:
        return "posted"

    async def patch_event(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        return None


def _memo(settings: OperatorSettings) -> OperatorContext:
    memo = OperatorContext(settings=settings, store=cast(RegistryStore, None), pool=cast(WorkerPool, None))
    memo._events = EventRecorder(_Sink(), component="test", instance="test")
    return memo


REF = ObjectRef("Schema", "shop", "orders-value-v1", "uid-1")


def test_a_deletion_retries_while_the_store_is_down_with_backoff() -> None:
    memo = _memo(OperatorSettings(deletion_timeout=600, retry_delay=1, retry_max_delay=60))
    blocked = Blocked("StoreUnavailable", str(StoreUnavailableError("down")), temporary=True)
    with pytest.raises(kopf.TemporaryError) as retried:
        release_blocked(blocked, "version", 3, timedelta(seconds=30), memo, REF)
    assert retried.value.delay == 8
    assert not memo.events._pending  # nothing to tell yet


def test_the_last_retry_of_a_deletion_says_it_gives_up_in_an_event() -> None:
    """kopf gives up once runtime plus the next delay reaches the handler's timeout; that attempt says so."""
    memo = _memo(OperatorSettings(deletion_timeout=600, retry_delay=1, retry_max_delay=60))
    blocked = Blocked("StoreUnavailable", str(StoreUnavailableError("down")), temporary=True)
    with pytest.raises(kopf.TemporaryError):
        release_blocked(blocked, "version", 40, timedelta(seconds=550), memo, REF)
    [(note, _)] = memo.events._pending.values()
    assert (note.type, note.reason) == ("Warning", "CleanupAbandoned")
    assert note.message.startswith("Gave up soft-deleting the registry version after 550 s (StoreUnavailable")


def test_a_permanently_refused_deletion_lets_the_resource_go() -> None:
    blocked = Blocked("SubjectOwnedElsewhere", "owned by namespace other", temporary=False)
    release_blocked(blocked, "subject", 0, timedelta(0), _memo(OperatorSettings()), REF)  # returns


def test_kopf_gives_up_a_release_after_the_deletion_timeout() -> None:
    """The bound on a deletion is kopf's own handler timeout: past it kopf stops retrying, reports the
    failure in an Event and removes the finalizer."""
    registry = build_registry(OperatorSettings(deletion_timeout=42))
    releases = [h for h in registry._changing.get_all_handlers() if h.id == "release"]
    assert len(releases) == 2  # Subjects and Schemas
    assert {h.timeout for h in releases} == {42}


def test_a_permanent_block_becomes_a_permanent_error_with_its_reason() -> None:
    with pytest.raises(kopf.PermanentError, match="Incompatible: field"):
        fail(Blocked("Incompatible", "field", temporary=False), 0, OperatorSettings())


def test_backoff_doubles_up_to_the_cap() -> None:
    settings = OperatorSettings(retry_delay=0.5, retry_max_delay=5)
    assert [settings.backoff(r) for r in range(6)] == [0.5, 1, 2, 4, 5, 5]
    assert settings.backoff(10_000) == 5


async def test_accepted_history_is_registered_as_it_is_and_later_versions_are_checked(
    store: RegistryStore, pool: WorkerPool
) -> None:
    await upsert_subject(store, subject())
    record = await live_subject(store, "orders-value")
    await register_version(store, record, version(1, order()), pool=pool, accepted_through=2)
    breaking = order({"name": "cost", "type": "long"})  # no default: not BACKWARD compatible with v1

    imported = await register_version(store, record, version(2, breaking), pool=pool, accepted_through=2)

    assert imported.accepted_history
    assert imported.checked_against == ()
    adds_x = order({"name": "cost", "type": "long"}, {"name": "x", "type": "int"})
    with pytest.raises(Blocked) as blocked:
        await register_version(store, record, version(3, adds_x), pool=pool, accepted_through=2)
    assert blocked.value.reason == "Incompatible"
    assert "version 3" in blocked.value.message
    assert "version 2" in blocked.value.message
    assert "cost" not in blocked.value.message  # checked against version 2, which already has it


def _long(name: str) -> dict[str, object]:
    return {"name": name, "type": "long", "default": 0}


async def test_a_batch_registers_in_version_order_and_answers_in_request_order(
    store: RegistryStore, pool: WorkerPool
) -> None:
    await upsert_subject(store, subject())
    requests = [
        VersionRequest(version(3, order(_long("a"), _long("b")))),
        VersionRequest(version(1, order())),
        VersionRequest(version(2, order(_long("a")))),
    ]
    outcomes = await register_versions(store, "orders-value", requests, pool=pool)

    registered = [o[1] for o in outcomes if not isinstance(o, Exception)]
    assert [r.version.version for r in registered] == [3, 1, 2]
    # Registered lowest first: each later version was checked against the ones below it.
    assert [r.checked_against for r in registered] == [(2,), (), (1,)]
    assert [v.version for v in await store.list_versions("orders-value")] == [1, 2, 3]


async def test_a_refused_version_is_refused_alone(store: RegistryStore, pool: WorkerPool) -> None:
    await upsert_subject(store, subject())
    breaking = json.dumps(
        {
            "type": "record",
            "name": "Order",
            "namespace": "com.acme",
            "fields": [{"name": "id", "type": "long"}],
        }
    )
    requests = [
        VersionRequest(version(1, order())),
        VersionRequest(version(2, breaking)),
        VersionRequest(version(3, order(_long("a")))),
    ]
    outcomes = await register_versions(store, "orders-value", requests, pool=pool)

    assert isinstance(outcomes[1], Blocked)
    assert outcomes[1].reason == "Incompatible"
    assert not isinstance(outcomes[0], Exception)
    assert not isinstance(outcomes[2], Exception)
    assert [v.version for v in await store.list_versions("orders-value")] == [1, 3]


async def test_a_subject_not_registered_refuses_the_whole_batch(
    store: RegistryStore, pool: WorkerPool
) -> None:
    with pytest.raises(Blocked) as blocked:
        await register_versions(store, "orders-value", [VersionRequest(version(1, order()))], pool=pool)
    assert blocked.value.reason == "SubjectNotReady"
    assert blocked.value.temporary


class CountingStore:
    """The store, counting the reads of a subject's versions that registrations make."""

    def __init__(self, store: RegistryStore) -> None:
        self.store = store
        self.lists = 0
        self.gets = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def list_versions(self, subject: str, include_deleted: bool = False) -> list[SubjectVersion]:
        self.lists += 1
        return await self.store.list_versions(subject, include_deleted)

    async def get_version(
        self, subject: str, version: int, include_deleted: bool = False
    ) -> SubjectVersion | None:
        self.gets += 1
        return await self.store.get_version(subject, version, include_deleted)


async def test_a_batch_reads_its_subjects_versions_once(store: RegistryStore, pool: WorkerPool) -> None:
    await upsert_subject(store, subject())
    await register_version(store, await live_subject(store, "orders-value"), version(1, order()), pool=pool)
    counting = CountingStore(store)
    requests = [VersionRequest(version(n, order(*(_long(f"f{i}") for i in range(n))))) for n in (4, 2, 3)]

    outcomes = await register_versions(cast(RegistryStore, counting), "orders-value", requests, pool=pool)

    registered = [o[1] for o in outcomes if not isinstance(o, Exception)]
    assert [r.checked_against for r in registered] == [(3,), (1,), (2,)]
    assert (counting.lists, counting.gets) == (1, 0)


async def test_a_batch_reads_its_subjects_versions_again_after_a_refused_one(
    store: RegistryStore, pool: WorkerPool
) -> None:
    await upsert_subject(
        store,
        subject(),
    )
    breaking = json.dumps(
        {
            "type": "record",
            "name": "Order",
            "namespace": "com.acme",
            "fields": [{"name": "id", "type": "long"}],
        }
    )
    counting = CountingStore(store)
    requests = [
        VersionRequest(version(1, order())),
        VersionRequest(version(2, breaking)),
        VersionRequest(version(3, order(_long("a")))),
    ]

    outcomes = await register_versions(cast(RegistryStore, counting), "orders-value", requests, pool=pool)

    assert isinstance(outcomes[1], Blocked)
    third = outcomes[2]
    assert not isinstance(third, Exception)
    assert third[1].checked_against == (1,)
    assert counting.lists == 2


async def test_a_version_declared_twice_in_one_batch_sees_the_first(
    store: RegistryStore, pool: WorkerPool
) -> None:
    await upsert_subject(store, subject())
    same = [VersionRequest(version(1, order())), VersionRequest(version(1, order()))]
    other = [VersionRequest(version(2, order())), VersionRequest(version(2, order(_long("a"))))]

    first, again = await register_versions(store, "orders-value", same, pool=pool)
    kept, refused = await register_versions(store, "orders-value", other, pool=pool)

    assert not isinstance(first, Exception)
    assert not isinstance(again, Exception)
    assert (first[1].already_registered, again[1].already_registered) == (False, True)
    assert not isinstance(kept, Exception)
    assert isinstance(refused, Blocked)
    assert refused.reason == "VersionConflict"
