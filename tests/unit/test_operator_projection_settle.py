"""A burst of versions of one subject is one ConfigMap write: a projection waits (bounded) for the
registrations of the same subject still in progress, and a Schema waiting for its Subject goes on as soon
as the Subject's reconcile ends, registered or not."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from kschema.compat import CompatibilityLevel
from kschema.formats import SchemaFormat
from kschema.kubeapi import NotFound
from kschema.model import SchemaState, subject_from_body
from kschema.operator.configmaps import ProjectionTarget, Projector
from kschema.operator.context import SubjectArrivals
from kschema.operator.kube import Kube
from kschema.operator.schema_cache import SchemaCache
from kschema.store import RegistryStore, StoredSchema, SubjectVersion


class _Store:
    def __init__(self) -> None:
        self.versions: list[SubjectVersion] = []

    async def list_versions(self, subject: str) -> list[SubjectVersion]:
        return list(self.versions)

    async def get_schema(self, schema_id: int) -> StoredSchema | None:
        return StoredSchema(schema_id, SchemaFormat.AVRO, '"string"', '"string"', "f", ())


class _Core:
    def __init__(self) -> None:
        self.tidied = 0

    async def read_namespaced_config_map(self, name: str, namespace: str) -> Any:
        raise NotFound(404, "NotFound")

    async def list_namespaced_config_map(self, namespace: str, **_: Any) -> Any:
        self.tidied += 1
        return SimpleNamespace(items=[])  # no ConfigMap under another name to tidy away


class _Kube:
    def __init__(self) -> None:
        self.core = _Core()
        self.applied: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.status_written = asyncio.Event()

    async def apply_config_map(
        self, namespace: str, name: str, body: dict[str, Any], field_manager: str
    ) -> None:
        await asyncio.sleep(0)
        self.applied.append(body)

    async def patch_subject_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.statuses.append(status)
        self.status_written.set()


def _target(config_map_name: str | None = None) -> ProjectionTarget:
    spec: dict[str, Any] = {"format": "AVRO"}
    if config_map_name is not None:
        spec["projection"] = {"configMapName": config_map_name}
    body = {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Subject",
        "metadata": {"name": "orders-value", "namespace": "shop"},
        "spec": spec,
    }
    return ProjectionTarget(subject_from_body(body, CompatibilityLevel.BACKWARD), "uid-1")


def _setup(settle_max: float = 5.0) -> tuple[Projector, _Store, _Kube, ProjectionTarget]:
    store, kube = _Store(), _Kube()
    projector = Projector(
        cast(RegistryStore, store),
        cast(Kube, kube),
        limit_bytes=1_000_000,
        field_manager="test",
        schemas=SchemaCache(cast(RegistryStore, store)),
        status_delay=0.01,
        settle_max=settle_max,
    )
    return projector, store, kube, _target()


def _version(n: int) -> SubjectVersion:
    return SubjectVersion("orders-value", n, n, SchemaState.ACTIVE, False, "shop")


async def test_projections_wait_for_the_registrations_in_progress_and_share_one_write() -> None:
    projector, store, kube, target = _setup()
    registrations = [projector.registering(target) for _ in range(3)]
    for registration in registrations:
        registration.__enter__()
    waiting = []
    for n in (1, 2, 3):
        store.versions.append(_version(n))
        registrations[n - 1].__exit__(None, None, None)
        if n < 3:
            # Registered, while the others are still registering: its projection waits for them.
            waiting.append(asyncio.create_task(projector.project(target)))
            await asyncio.sleep(0.05)
            assert not kube.applied
    waiting.append(asyncio.create_task(projector.project(target)))
    results = await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert len(kube.applied) == 1
    assert {r.latest_version for r in results if r is not None} == {3}
    assert sorted(kube.applied[0]["data"]) == [
        "latest.avsc",
        "v1.avsc",
        "v2.avsc",
        "v3.avsc",
        "versions.json",
    ]


async def test_a_projection_with_no_registration_in_progress_writes_at_once() -> None:
    projector, store, kube, target = _setup()
    store.versions.append(_version(1))
    result = await asyncio.wait_for(projector.project(target), 1)
    assert result is not None
    assert result.latest_version == 1
    assert len(kube.applied) == 1


async def test_the_same_configuration_is_applied_once_except_by_the_subjects_own_reconcile() -> None:
    projector, store, kube, target = _setup()
    store.versions.append(_version(1))
    await projector.project(target)
    await projector.project(target)  # nothing new in the store: nothing sent
    assert len(kube.applied) == 1

    await projector.project(target, tidy=True)  # the Subject's reconcile puts back what others changed
    assert len(kube.applied) == 2

    store.versions.append(_version(2))
    await projector.project(target)
    assert len(kube.applied) == 3
    assert "v2.avsc" in kube.applied[-1]["data"]


async def test_a_registration_that_never_ends_holds_a_projection_only_for_its_bound() -> None:
    projector, store, kube, target = _setup(settle_max=0.1)
    store.versions.append(_version(1))
    with projector.registering(target):
        result = await asyncio.wait_for(projector.project(target), 2)
        assert result is not None
        assert len(kube.applied) == 1


async def test_a_failed_registration_still_releases_the_waiting_projections() -> None:
    projector, store, kube, target = _setup()
    store.versions.append(_version(1))
    try:
        with projector.registering(target):
            waiting = asyncio.create_task(projector.project(target))
            await asyncio.sleep(0.02)
            assert not waiting.done()
            raise RuntimeError("refused")
    except RuntimeError:
        pass
    await asyncio.wait_for(waiting, 1)
    assert len(kube.applied) == 1


async def test_a_subject_reconcile_that_ends_unregistered_wakes_its_schemas_without_marking_it_seen() -> None:
    arrivals = SubjectArrivals()
    waiting = asyncio.create_task(arrivals.wait("shop", "orders-value", timeout=30, schema="orders-v1"))
    await asyncio.sleep(0)
    arrivals.attempted("shop", "orders-value")
    assert await asyncio.wait_for(waiting, 1) is True
    assert not arrivals.seen("shop", "orders-value")


async def test_the_subject_status_waits_while_versions_are_registered_but_only_for_its_bound() -> None:
    projector, store, kube, target = _setup()
    store.versions.append(_version(1))
    with projector.registering(target):
        await projector.project(target)
        await asyncio.sleep(0.025)  # past one status delay (0.01 s): deferred, the registration goes on
        assert kube.statuses == []
        store.versions.append(_version(2))
    await projector.project(target)
    await wait_for_statuses(kube, 1)
    assert kube.statuses == [{"latestVersion": 2, "versionCount": 2, "configMapName": "orders-value-schemas"}]

    with projector.registering(target):  # never ends: the status is written after its bound all the same
        store.versions.append(_version(3))
        await projector.project(target)
        await wait_for_statuses(kube, 2)
    assert kube.statuses[-1]["latestVersion"] == 3


async def wait_for_statuses(kube: _Kube, count: int) -> None:
    async with asyncio.timeout(2):
        while len(kube.statuses) < count:
            kube.status_written.clear()
            await kube.status_written.wait()


async def _register(
    projector: Projector, store: _Store, target: ProjectionTarget, schema: str, n: int
) -> Any:
    """A Schema's registration of version `n` and the projection its reconcile asks for after it."""
    with projector.registering(target, schema):
        await asyncio.sleep(0)
        store.versions.append(_version(n))
    return asyncio.create_task(projector.project(target))


async def test_the_subjects_projection_waits_for_the_schemas_it_expects_and_the_burst_is_one_write() -> None:
    projector, store, kube, target = _setup()
    projector.expect(target, ["orders-v1", "orders-v2"])
    subject = asyncio.create_task(projector.project(target, tidy=True))
    await asyncio.sleep(0.05)
    assert not subject.done()
    assert not kube.applied  # no early write of the subject with no version yet

    first = await _register(projector, store, target, "orders-v1", 1)
    await asyncio.sleep(0.05)
    assert not kube.applied  # orders-v2 is still expected: the first projection waits for it too
    second = await _register(projector, store, target, "orders-v2", 2)
    results = await asyncio.wait_for(asyncio.gather(subject, first, second), 5)

    assert len(kube.applied) == 1
    assert "v2.avsc" in kube.applied[0]["data"]
    assert {r.latest_version for r in results if r is not None} == {2}
    assert kube.core.tidied == 1  # the Subject's reconcile still removes ConfigMaps of other names


async def test_an_expected_schema_that_never_registers_holds_projections_only_once_for_the_bound() -> None:
    projector, store, kube, target = _setup(settle_max=1.0)
    store.versions.append(_version(1))
    projector.expect(target, ["refused-before-registering"])
    await asyncio.wait_for(projector.project(target, tidy=True), 3)
    assert len(kube.applied) == 1

    store.versions.append(_version(2))
    # No longer expected: this projection does not wait for the bound again.
    await asyncio.wait_for(projector.project(target), 0.5)
    assert len(kube.applied) == 2


async def test_a_write_for_another_spec_of_the_subject_does_not_stand_in_for_its_reconcile() -> None:
    projector, store, kube, _ = _setup()
    before, renamed = _target(), _target("orders-renamed")
    projector.expect(renamed, ["orders-v1"])
    subject = asyncio.create_task(projector.project(renamed, tidy=True))
    await asyncio.sleep(0.02)
    # The Schema's projection still has the Subject's spec from before the rename.
    schema = await _register(projector, store, before, "orders-v1", 1)
    await asyncio.wait_for(asyncio.gather(subject, schema), 5)
    assert [a["metadata"]["name"] for a in kube.applied] == ["orders-value-schemas", "orders-renamed"]


async def test_the_subject_status_waits_while_schemas_are_expected() -> None:
    projector, store, kube, target = _setup(settle_max=0.05)
    store.versions.append(_version(1))
    await projector.project(target)
    projector.expect(target, ["orders-v2"])
    await asyncio.sleep(0.025)  # past one status delay (0.01 s): deferred while orders-v2 is expected
    assert kube.statuses == []
    await _register(projector, store, target, "orders-v2", 2)
    await wait_for_statuses(kube, 1)
    assert kube.statuses == [{"latestVersion": 2, "versionCount": 2, "configMapName": "orders-value-schemas"}]


async def test_a_fresh_subject_has_no_configmap_of_another_name_to_tidy_away() -> None:
    projector, store, kube, target = _setup()
    store.versions.append(_version(1))
    await projector.project(target, tidy=True, fresh=True)  # its first reconcile (kopf's create)
    assert len(kube.applied) == 1
    assert kube.core.tidied == 0

    await projector.project(target, tidy=True)  # a later one (an update, a resume) lists them
    assert kube.core.tidied == 1
    assert len(kube.applied) == 2  # and puts back the ConfigMap, whatever happened to it since
