"""kopf's diff base as a digest: no copy of the spec in annotations, changes still detected."""

from __future__ import annotations

import json
from typing import Any, cast

import kopf
import pytest

from kschema.operator.diffbase import DigestDiffBaseStorage
from kschema.operator.main import kopf_settings
from kschema.operator.settings import OperatorSettings

SCHEMA_TEXT = '{"type": "string", "doc": "' + "x" * 300_000 + '"}'


def _body(annotations: dict[str, str] | None = None, state: str = "ACTIVE") -> kopf.Body:
    raw: dict[str, Any] = {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Schema",
        "metadata": {"name": "big", "namespace": "team-a", "annotations": annotations or {}},
        "spec": {"subject": "big", "version": 1, "schema": SCHEMA_TEXT, "state": state},
        "status": {"id": 1},
    }
    return kopf.Body(cast(kopf.RawBody, raw))


def _storage() -> DigestDiffBaseStorage:
    storage = kopf_settings(OperatorSettings()).persistence.diffbase_storage
    assert isinstance(storage, DigestDiffBaseStorage)
    return storage


def _stored(storage: DigestDiffBaseStorage, body: kopf.Body) -> dict[str, str]:
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    annotations: dict[str, str] = dict(patch["metadata"]["annotations"])
    return annotations


def test_the_diff_base_stores_a_digest_and_no_schema_text() -> None:
    storage = _storage()

    annotations = _stored(storage, _body())

    assert sum(len(k) + len(v or "") for k, v in annotations.items()) < 200
    assert all("schema" not in (v or "") for v in annotations.values())


def test_an_unchanged_object_has_the_stored_digest_and_a_changed_one_does_not() -> None:
    storage = _storage()
    handled = _stored(storage, _body())

    same = _body(handled)
    changed = _body(handled, state="DEPRECATED")

    assert storage.fetch(body=same) == storage.build(body=same)
    assert storage.fetch(body=changed) != storage.build(body=changed)


def test_kopf_bookkeeping_is_ignored_but_the_transfer_annotation_counts() -> None:
    storage = _storage()
    handled = _stored(storage, _body())

    progress = _body({**handled, "kschema.io/reconcile": '{"started": "now"}'})
    transfer = _body({**handled, "kschema.io/transfer-to": "team-b"})

    assert storage.fetch(body=progress) == storage.build(body=progress)
    assert storage.fetch(body=transfer) != storage.build(body=transfer)


def test_the_copy_an_earlier_release_stored_is_compared_and_then_removed() -> None:
    storage = _storage()
    legacy = kopf.AnnotationsDiffBaseStorage(prefix="kschema.io", key="last-handled-configuration")
    old_patch = kopf.Patch()
    legacy.store(body=_body(), patch=old_patch, essence=legacy.build(body=_body()))
    upgraded = _body(dict(old_patch["metadata"]["annotations"]))

    assert storage.fetch(body=upgraded) == storage.build(body=upgraded)
    annotations = _stored(storage, upgraded)
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
