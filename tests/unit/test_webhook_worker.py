"""The webhook's reviews run in worker processes: a review that runs past the worker's timeout is killed
and answered with a refusal that says why ("too complex to check"), and the next review is answered by a
fresh worker. The cache of declared resources is a stand-in here (this tests the webhook layer alone);
the API server path is in tests/e2e/test_webhook.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kschema.compute import WorkerPool
from kschema.formats import SchemaFormat
from kschema.model import SchemaSpec, SubjectSpec
from kschema.policy import Catalog
from kschema.webhook.app import METRICS_KEY, create_app
from kschema.webhook.cache import DeclaredCache
from kschema.webhook.settings import SCHEMAS_PATH, WebhookSettings
from tests.harness.worst_case import REFUSED_BRANCHES, wide_any_of


class _Declared:
    """What the webhook reads of the cluster: one JSON Subject and its first version."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self.synced = True

    async def wait_synced(self, limit_seconds: float) -> bool:
        return True

    def catalog(self) -> Catalog:
        return self._catalog

    async def fresh_catalog(self) -> Catalog:
        return self._catalog


def _review(version: int, text: str) -> dict[str, Any]:
    body = {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Schema",
        "metadata": {"name": f"wide-v{version}", "namespace": "team-a"},
        "spec": {"subject": "wide", "version": version, "schema": text},
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": f"uid-{version}",
            "kind": {"group": "kschema.io", "version": "v1alpha1", "kind": "Schema"},
            "operation": "CREATE",
            "namespace": "team-a",
            "name": f"wide-v{version}",
            "object": body,
        },
    }


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    subject = SubjectSpec(resource_name="wide", namespace="team-a", name="wide", format=SchemaFormat.JSON)
    first = SchemaSpec(
        resource_name="wide-v1",
        namespace="team-a",
        subject="wide",
        version=1,
        schema=wide_any_of(REFUSED_BRANCHES),
    )
    settings = WebhookSettings(cert_file=tmp_path / "tls.crt", key_file=tmp_path / "tls.key")
    cache = cast(DeclaredCache, _Declared(Catalog([subject], [first])))
    # A short worker timeout stands for a review that would run for ever: it is killed either way.
    pool = WorkerPool(processes=1, timeout=1.0)
    async with pool, TestClient(TestServer(create_app(settings, cache, None, pool))) as test_client:
        yield test_client


async def test_a_review_past_the_worker_timeout_is_refused_as_too_complex(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.post(SCHEMAS_PATH, json=_review(2, wide_any_of(REFUSED_BRANCHES, shift=1)))
    answer = (await response.json())["response"]
    assert response.status == 200
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 403
    assert answer["status"]["message"].startswith("Schema team-a/wide-v2: too complex to check: ")

    small = json.dumps({"type": "object"})
    response = await client.post(SCHEMAS_PATH, json=_review(3, small))
    assert (await response.json())["response"]["uid"] == "uid-3"


async def test_each_review_is_timed_until_its_response_is_written_and_served_as_a_histogram(
    client: TestClient[web.Request, web.Application],
) -> None:
    metrics = client.app[METRICS_KEY]
    review = _review(3, json.dumps({"type": "object"}))
    # A version of a Subject not declared yet: allowed with a warning, without a compatibility check.
    review["request"]["object"]["spec"]["subject"] = "not-yet"
    response = await client.post(SCHEMAS_PATH, json=review)
    assert (await response.json())["response"]["allowed"] is True
    assert len(metrics.recent["Schema"]) == 1
    assert 0 < metrics.recent["Schema"][0] < 60
    exposed = await (await client.get("/metrics")).text()
    assert 'kschema_webhook_review_duration_seconds_count{kind="Schema",status="200"} 1.0' in exposed
    await client.get("/healthz")
    assert len(metrics.recent["Schema"]) == 1  # only reviews are timed
