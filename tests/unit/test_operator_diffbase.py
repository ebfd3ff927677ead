"""kopf's diff base as a digest in the status: no copy of the spec, no write to the object itself, changes
still detected."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, cast

import kopf
import pytest

from kschema.operator.deferral import Deferrals
from kschema.operator.diffbase import DigestDiffBaseStorage, MarkedProgressStorage
from kschema.operator.main import kopf_settings
from kschema.operator.settings import OperatorSettings

SCHEMA_TEXT = '{"type": "string", "doc": "' + "x" * 300_000 + '"}'


def _body(
    annotations: dict[str, str] | None = None,
    state: str = "ACTIVE",
    status: dict[str, Any] | None = None,
    uid: str = "u-1",
) -> kopf.Body:
    raw: dict[str, Any] = {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Schema",
        "metadata": {"name": "big", "namespace": "team-a", "uid": uid, "annotations": annotations or {}},
        "spec": {"subject": "big", "version": 1, "schema": SCHEMA_TEXT, "state": state},
        "status": {"id": 1, **(status or {})},
    }
    return kopf.Body(cast(kopf.RawBody, raw))


def _storage() -> DigestDiffBaseStorage:
    storage = kopf_settings(OperatorSettings()).persistence.diffbase_storage
    assert isinstance(storage, DigestDiffBaseStorage)
    return storage


def _patched(storage: DigestDiffBaseStorage, body: kopf.Body) -> dict[str, Any]:
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    return dict(patch)


def test_the_diff_base_is_a_digest_in_the_status_and_no_schema_text() -> None:
    storage = _storage()

    patched = _patched(storage, _body())

    assert set(patched) == {"status"}  # nothing for the object itself: the reconcile is one status write
    assert set(patched["status"]) == {"handledDigest"}
    assert len(patched["status"]["handledDigest"]) == 64


def test_the_digest_of_an_object_whose_reconcile_is_deferred_is_left_to_that_reconcile() -> None:
    async def main() -> None:
        deferrals = Deferrals(0)
        storage = kopf_settings(OperatorSettings(), deferrals).persistence.diffbase_storage
        assert isinstance(storage, DigestDiffBaseStorage)
        deferred, other = _body(uid="u-deferred"), _body(uid="u-other")
        release = asyncio.Event()

        async def pending(superseded: Callable[[], bool]) -> None:
            await release.wait()

        deferrals.defer("u-deferred", "digest", pending)
        assert _patched(storage, deferred) == {}  # no write: the deferred reconcile writes the digest
        assert set(_patched(storage, other)["status"]) == {"handledDigest"}
        release.set()
        await deferrals.close()
        assert set(_patched(storage, deferred)["status"]) == {"handledDigest"}  # nothing pending now

    asyncio.run(main())


def test_an_unchanged_object_has_the_stored_digest_and_a_changed_one_does_not() -> None:
    storage = _storage()
    handled = _patched(storage, _body())["status"]

    same = _body(status=handled)
    changed = _body(state="DEPRECATED", status=handled)

    assert storage.fetch(body=same) == storage.build(body=same)
    assert storage.fetch(body=changed) != storage.build(body=changed)


def test_kopf_bookkeeping_is_ignored_but_the_transfer_annotation_counts() -> None:
    storage = _storage()
    handled = _patched(storage, _body())["status"]

    progress = _body({"kschema.io/reconcile": '{"started": "now"}'}, status=handled)
    transfer = _body({"kschema.io/transfer-to": "team-b"}, status=handled)

    assert storage.fetch(body=progress) == storage.build(body=progress)
    assert storage.fetch(body=transfer) != storage.build(body=transfer)


def test_the_digest_annotation_of_an_earlier_release_is_read_and_then_moved_to_the_status() -> None:
    storage = _storage()
    digest = str(storage.build(body=_body())["digest"])
    upgraded = _body({"kschema.io/last-handled-digest": digest})

    assert storage.fetch(body=upgraded) == storage.build(body=upgraded)
    patched = _patched(storage, upgraded)
    assert patched["metadata"]["annotations"] == {"kschema.io/last-handled-digest": None}
    assert patched["status"]["handledDigest"] == digest


def test_the_copy_an_earlier_release_stored_is_compared_and_then_removed() -> None:
    storage = _storage()
    legacy = kopf.AnnotationsDiffBaseStorage(prefix="kschema.io", key="last-handled-configuration")
    old_patch = kopf.Patch()
    legacy.store(body=_body(), patch=old_patch, essence=legacy.build(body=_body()))
    upgraded = _body(dict(old_patch["metadata"]["annotations"]))

    assert storage.fetch(body=upgraded) == storage.build(body=upgraded)
    annotations = _patched(storage, upgraded)["metadata"]["annotations"]
    assert annotations["kschema.io/last-handled-configuration"] is None  # removed by the patch


@pytest.mark.parametrize(
    "metadata",
    [
        {"name": "a"},
        {"name": "a", "labels": {}, "annotations": {}},
        {"name": "a", "labels": {"team": "payments"}},
        {
            "name": "a",
            "uid": "u-1",
            "resourceVersion": "17",
            "generation": 3,
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            "finalizers": ["kschema.io/finalizer"],
            "annotations": {
                "kschema.io/last-handled-digest": "abc",
                "kschema.io/kopf-managed": "yes",
                "kschema.io/transfer-to": "team-b",
                "kubectl.kubernetes.io/last-applied-configuration": '{"spec": {}}',
                "other.example.com/kopf-managed": "yes",
                "other.example.com/handler": "{}",
                "kopf.zalando.org/last-handled-configuration": "{}",
                "argocd.argoproj.io/sync-wave": "1",
                "subject.kschema.io/uid": "u-2",
            },
        },
        {"name": "a", "annotations": {"kschema.io/last-handled-digest": "abc"}},
    ],
)
def test_the_digest_is_the_one_of_kopfs_own_essence(metadata: dict[str, Any]) -> None:
    """Built without copying the object, the digest is the same as the one of kopf's essence (so an
    upgrade does not look like an update of every object)."""
    storage = _storage()
    raw: dict[str, Any] = {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Schema",
        "metadata": metadata,
        "spec": {"subject": "a", "version": 1, "schema": '"string"', "references": [{"name": "r"}]},
        "status": {"id": 1, "conditions": [{"type": "Ready"}]},
    }
    body = kopf.Body(cast(kopf.RawBody, raw))
    before = json.dumps(raw, sort_keys=True)

    kopfs = kopf.DiffBaseStorage.build(storage, body=body)
    expected = storage._digest(storage._normalised(kopfs, body.metadata.annotations))

    assert storage.build(body=body) == {"digest": expected}
    assert json.dumps(raw, sort_keys=True) == before  # the object is left as it was


def _progress() -> MarkedProgressStorage:
    storage = kopf_settings(OperatorSettings()).persistence.progress_storage
    assert isinstance(storage, MarkedProgressStorage)
    return storage


def _record() -> kopf.ProgressRecord:
    return cast(kopf.ProgressRecord, {"started": "2026-01-01T00:00:00", "retries": 1})


def test_a_handler_that_succeeded_at_once_leaves_no_annotation_not_even_kopfs_marker() -> None:
    storage, body, patch = _progress(), _body(), kopf.Patch()

    storage.store(key=kopf.HandlerId("reconcile"), record=_record(), body=body, patch=patch)
    storage.purge(key=kopf.HandlerId("reconcile"), body=body, patch=patch)

    assert dict(patch) == {}  # nothing to write to the object itself


def test_a_record_that_stays_keeps_kopfs_marker_and_an_existing_marker_is_left_alone() -> None:
    storage = _progress()
    kept = kopf.Patch()
    storage.store(key=kopf.HandlerId("reconcile"), record=_record(), body=_body(), patch=kept)
    assert kept["metadata"]["annotations"]["kschema.io/kopf-managed"] == "yes"
    assert "kschema.io/reconcile" in kept["metadata"]["annotations"]

    marked = _body({"kschema.io/kopf-managed": "yes", "kschema.io/reconcile": "{}"})
    purged = kopf.Patch()
    storage.purge(key=kopf.HandlerId("reconcile"), body=marked, patch=purged)
    assert purged["metadata"]["annotations"] == {"kschema.io/reconcile": None}
