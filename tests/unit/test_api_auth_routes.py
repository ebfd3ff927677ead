"""Which requests of the read API need a token in each authentication mode, and in which order its answers
come (401 before 406 and before 404), with a recording reviewer in place of the TokenReview API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from kschema.api import ApiSettings, create_app
from kschema.api.auth import AuthMode, AuthSettings, Identity
from kschema.api.state import INDEX
from tests.harness.api_server import ApiTestServer
from tests.unit.api_memory_store import MemoryStore, wait_for

Client = TestClient[web.Request, web.Application]
GOOD = {"Authorization": "Bearer good"}
RECORD = json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "string"}]})


class Reviewer:
    async def review(self, token: str, audience: str) -> Identity | None:
        return Identity("system:serviceaccount:team-a:app") if token == "good" else None


async def _client(mode: AuthMode) -> AsyncIterator[Client]:
    store = MemoryStore()
    await store.add("orders-value", 1, RECORD)
    auth = AuthSettings(mode=mode, allowed_namespaces=frozenset({"team-a"}))
    app = create_app(ApiSettings(feed_wait_seconds=0.05, auth=auth), store, reviewer=Reviewer())
    async with TestClient(ApiTestServer(app)) as client:
        await wait_for(lambda: app[INDEX].loaded)
        yield client


@pytest.fixture
async def checks() -> AsyncIterator[Client]:
    async for client in _client(AuthMode.CHECKS):
        yield client


@pytest.fixture
async def everything() -> AsyncIterator[Client]:
    async for client in _client(AuthMode.ALL):
        yield client


async def test_in_checks_mode_lookups_are_open_and_checks_need_a_token(checks: Client) -> None:
    assert (await checks.get("/schemas/ids/1")).status == 200
    assert (await checks.get("/subjects/orders-value/versions/latest")).status == 200
    check = "/compatibility/subjects/orders-value/versions/latest"
    refused = await checks.post(check, json={"schema": RECORD})
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="kschema"'
    assert (await refused.json())["error_code"] == 40101
    allowed = await checks.post(check, json={"schema": RECORD}, headers=GOOD)
    assert allowed.status == 200
    assert (await checks.get("/no/such/path")).status == 404
    metrics = await (await checks.get("/metrics")).text()
    assert (
        'kschema_api_requests_total{method="POST",route="/compatibility/subjects/{subject}/versions/{version}",'
        'status="401"} 1.0' in metrics
    )


async def test_in_all_mode_every_route_but_health_needs_a_token_before_anything_else(
    everything: Client,
) -> None:
    assert (await everything.get("/healthz")).status == 200
    assert (await everything.get("/metrics")).status == 200
    assert (await everything.get("/schemas/ids/1")).status == 401
    assert (await everything.get("/no/such/path")).status == 401  # 401 before 404
    assert (await everything.get("/schemas/ids/1", headers={"Accept": "text/html"})).status == 401
    assert (await everything.get("/schemas/ids/1", headers=GOOD)).status == 200
    not_acceptable = await everything.get("/schemas/ids/1", headers={**GOOD, "Accept": "text/html"})
    assert not_acceptable.status == 406
    assert (await everything.get("/no/such/path", headers=GOOD)).status == 404
    wrong_method = await everything.patch("/subjects", headers=GOOD)
    assert wrong_method.status == 405
    assert "GET" in wrong_method.headers["Allow"]
