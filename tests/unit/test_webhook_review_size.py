"""The webhook accepts the largest AdmissionReview the API server sends: an UPDATE of a Schema near the
object size limit carries the old and the new object, well over aiohttp's default 1 MiB body limit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from aiohttp.test_utils import TestClient, TestServer

from kschema.compute import WorkerPool
from kschema.policy import Catalog
from kschema.webhook.app import create_app
from kschema.webhook.cache import DeclaredCache
from kschema.webhook.settings import MAX_REVIEW_BYTES, SCHEMAS_PATH, WebhookSettings


class _SyncedCache:
    """The cache's read side, with nothing declared."""

    synced = True

    async def wait_synced(self, limit_seconds: float) -> bool:
        return True

    def catalog(self) -> Catalog:
        return Catalog()

    async def fresh_catalog(self) -> Catalog:
        return Catalog()


def _schema_object(text: str, state: str) -> dict[str, Any]:
    return {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Schema",
        "metadata": {"name": "big-v1", "namespace": "team-a"},
        "spec": {"subject": "big", "version": 1, "schema": text, "state": state},
    }


def _review(text: str) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "kschema.io", "version": "v1alpha1", "kind": "Schema"},
            "operation": "UPDATE",
            "namespace": "team-a",
            "name": "big-v1",
            "object": _schema_object(text, "DEPRECATED"),
            "oldObject": _schema_object(text, "ACTIVE"),
        },
    }


async def _post(body: bytes) -> tuple[int, Any]:
    settings = WebhookSettings(cert_file=Path("unused.crt"), key_file=Path("unused.key"))
    pool = WorkerPool(processes=1, timeout=30.0)
    app = create_app(settings, cast(DeclaredCache, _SyncedCache()), None, pool)
    async with pool, TestClient(TestServer(app)) as http:
        response = await http.post(SCHEMAS_PATH, data=body, headers={"Content-Type": "application/json"})
        return response.status, await response.json() if response.status == 200 else None


async def test_a_state_change_of_a_one_megabyte_schema_is_reviewed() -> None:
    # Near the CRD's 1 MiB of text; its quotes are escaped once more inside the AdmissionReview.
    text = json.dumps({"type": "record", "name": "Big", "doc": 'say "hi" ' * 90_000, "fields": []})
    assert len(text) < 1024 * 1024
    body = json.dumps(_review(text)).encode()
    assert len(body) > 2 * 1024 * 1024

    status, review = await _post(body)

    assert status == 200
    assert review["response"] == {"uid": "u-1", "allowed": True}


async def test_a_body_over_the_limit_is_refused_before_it_is_read_whole() -> None:
    status, _ = await _post(b" " * (MAX_REVIEW_BYTES + 1))

    assert status == 413
