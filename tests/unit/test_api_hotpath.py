"""The serializers' two lookups answered before routing (`kschema.api.hotpath`): the server `kschema api`
runs answers them exactly as their routes do (status, headers, bytes, metrics), routes nothing it need
not, and leaves to the routes every request whose answer could differ."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from yarl import URL

from kschema.api import ApiSettings, create_app
from kschema.api.auth import AuthMode, AuthSettings, Identity
from kschema.api.hotpath import BY_ID, LATEST, serve_hot_paths
from kschema.api.routes import ROUTE_TABLES
from kschema.api.state import INDEX
from kschema.model import SchemaState
from tests.harness.api_server import ApiTestServer
from tests.unit.api_memory_store import MemoryStore, wait_for

Client = TestClient[web.Request, web.Application]


def _record(name: str, *extra: str) -> str:
    fields = [{"name": f, "type": "string", "default": ""} for f in ("id", *extra)]
    return json.dumps({"type": "record", "name": name, "fields": fields})


class Routed:
    """Counts the requests the app's router resolves (the ones the hot path left to the routes)."""

    def __init__(self, app: web.Application) -> None:
        self.paths: list[str] = []
        resolve = app.router.resolve

        async def counting(request: web.Request) -> Any:
            self.paths.append(request.raw_path)
            return await resolve(request)

        app.router.resolve = counting  # type: ignore[method-assign]


async def _store() -> MemoryStore:
    store = MemoryStore()
    await store.add("orders-value", 1, _record("Order"))
    await store.add("orders-value", 2, _record("Order", "note"))
    await store.add("legacy-value", 1, _record("Legacy"))
    await store.add(
        "legacy-value", 2, _record("Legacy", "old"), state=SchemaState.DEPRECATED, sunset="2027-01-01"
    )
    await store.add("draft-value", 1, _record("Draft"), state=SchemaState.DRAFT)
    await store.add("gone-value", 1, _record("Gone"))
    await store.delete_subject("gone-value", "team-a")
    await store.add(":.ctx:billing.v1_x-value", 1, _record("Bill"))
    return store


@contextlib.asynccontextmanager
async def _serve(
    store: MemoryStore, server: Callable[[web.Application], TestServer], auth: AuthSettings | None = None
) -> AsyncIterator[tuple[Client, Routed]]:
    settings = ApiSettings(feed_wait_seconds=0.05, auth=auth or AuthSettings())
    app = create_app(settings, store, reviewer=Reviewer())
    routed = Routed(app)
    async with TestClient(server(app)) as client:
        await wait_for(lambda: app[INDEX].loaded and app[INDEX].seq >= store.seq)
        yield client, routed


class Reviewer:
    async def review(self, token: str, audience: str) -> Identity | None:
        return Identity("system:serviceaccount:team-a:app") if token == "good" else None


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Client, Routed, Client]]:
    """The same store behind the server `kschema api` runs and behind aiohttp's plain runner."""
    store = await _store()
    async with _serve(store, ApiTestServer) as (shipped, routed), _serve(store, TestServer) as (plain, _):
        yield shipped, routed, plain


# Served before routing: the plain form of both lookups, for what the index holds.
HOT = [
    ("/schemas/ids/1", {}),
    ("/schemas/ids/2", {"Accept": "application/vnd.schemaregistry.v1+json"}),
    ("/schemas/ids/3", {"Accept": "application/json, */*;q=0.1"}),
    # The parameters Confluent's deserializers send, which do not change the answer.
    ("/schemas/ids/1?subject=orders-value", {}),
    ("/schemas/ids/2?fetchMaxId=false&subject=orders-value", {}),
    ("/schemas/ids/2?fetchMaxId=FALSE&findTags=PII&subject=", {}),
    ("/subjects/orders-value/versions/latest", {}),
    ("/subjects/orders-value/versions/latest", {"Accept": "*/*"}),
    ("/subjects/:.ctx:billing.v1_x-value/versions/latest", {}),
]
# Left to the routes: anything whose answer could differ, and every error.
ROUTED = [
    ("/schemas/ids/01", {}),  # not the plain form
    ("/schemas/ids/0", {}),
    ("/schemas/ids/99", {}),  # unknown: 404 from the route
    ("/schemas/ids/99999999999", {}),
    ("/schemas/ids/1?fetchMaxId=true", {}),
    ("/schemas/ids/1?subject=orders-value&fetchMaxId=maybe", {}),  # 400 from the route
    ("/schemas/ids/1?subject=orders-value&format=", {}),
    ("/schemas/ids/1?%73ubject=orders-value", {}),
    ("/schemas/ids/1?&subject=orders-value", {}),
    ("/schemas/ids/1/", {}),
    ("/schemas/ids/1", {"Accept": "text/html"}),  # 406 from the route
    ("/schemas/ids/1", {"Expect": "nothing-known"}),  # aiohttp answers an unknown expectation (417)
    ("/subjects/orders-value/versions/latest?deleted=true", {}),
    ("/subjects/orders-value/versions/latest?deleted=false", {}),
    ("/subjects/orders-value/versions/-1", {}),  # the same answer, by the route
    ("/subjects/orders%2Dvalue/versions/latest", {}),  # percent-encoded
    ("/subjects/legacy-value/versions/latest", {}),  # DEPRECATED: lifecycle headers
    ("/subjects/draft-value/versions/latest", {}),  # a DRAFT is never latest: 404
    ("/subjects/gone-value/versions/latest", {}),  # deleted subject: 404
    ("/subjects/nobody/versions/latest", {}),
    ("/subjects/a/b/versions/latest", {}),
    ("/subjects/orders-value/versions/latest", {"Accept": "text/html"}),
]


def _comparable(response: web.StreamResponse | Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in ("Date", "Server")}


async def _exchange(client: Client, method: str, path: str, headers: dict[str, str]) -> tuple[Any, ...]:
    # The path exactly as written (no percent-decoding or dot-segment removal by the client), and no
    # `Accept` unless given.
    url = URL(str(client.make_url("/")).rstrip("/") + path, encoded=True)
    async with client.session.request(method, url, headers=headers, skip_auto_headers=["Accept"]) as r:
        return r.status, _comparable(r), await r.read()


async def test_lookups_are_answered_before_routing_exactly_as_their_routes_answer(
    pair: tuple[Client, Routed, Client],
) -> None:
    shipped, routed, plain = pair
    for path, headers in HOT + ROUTED:
        expected = await _exchange(plain, "GET", path, headers)
        routed.paths.clear()
        assert await _exchange(shipped, "GET", path, headers) == expected, path
        hot = (path, headers) in HOT
        assert routed.paths == ([] if hot else [path]), (path, headers)
        if hot:
            assert expected[0] == 200, path
    # A HEAD is routed (and counted as HEAD): no body, the GET's headers.
    routed.paths.clear()
    head = await _exchange(shipped, "HEAD", "/schemas/ids/1", {})
    assert head == await _exchange(plain, "HEAD", "/schemas/ids/1", {})
    assert routed.paths == ["/schemas/ids/1"]


async def test_lookups_answered_before_routing_are_counted_in_their_routes_series(
    pair: tuple[Client, Routed, Client],
) -> None:
    shipped, routed, plain = pair
    for client in (shipped, plain):
        for path, headers in HOT:
            await _exchange(client, "GET", path, headers)
        await _exchange(client, "GET", "/schemas/ids/99", {})
    routed.paths.clear()
    texts = [await (await client.get("/metrics")).text() for client in (shipped, plain)]
    lines = [
        sorted(
            line.split(" ")[0] + " " + line.split(" ")[1]
            for line in text.splitlines()
            if line.startswith(("kschema_api_requests_total", "kschema_api_request_duration_seconds_count"))
        )
        for text in texts
    ]
    assert lines[0] == lines[1]
    assert f'kschema_api_requests_total{{method="GET",route="{BY_ID}",status="200"}} 6.0' in texts[0]
    assert f'kschema_api_requests_total{{method="GET",route="{LATEST}",status="200"}} 3.0' in texts[0]
    assert f'kschema_api_requests_total{{method="GET",route="{BY_ID}",status="404"}} 1.0' in texts[0]


async def test_a_new_latest_is_served_as_soon_as_the_index_has_it() -> None:
    store = await _store()
    async with _serve(store, ApiTestServer) as (client, routed):
        first = await client.get("/subjects/orders-value/versions/latest")
        assert (await first.json())["version"] == 2
        await store.add("orders-value", 3, _record("Order", "note", "more"))
        index = client.app[INDEX]
        await wait_for(lambda: index.seq >= store.seq)
        now = await client.get("/subjects/orders-value/versions/latest")
        assert (await now.json())["version"] == 3
        await store.set_state("orders-value", 3, SchemaState.DEPRECATED, "2027-01-01")
        await wait_for(lambda: index.seq >= store.seq)
        routed.paths.clear()
        deprecated = await client.get("/subjects/orders-value/versions/latest")
        assert (await deprecated.json())["version"] == 3
        assert deprecated.headers["Deprecation"]
        assert routed.paths == ["/subjects/orders-value/versions/latest"]


@pytest.mark.parametrize(("mode", "hot"), [(AuthMode.CHECKS, True), (AuthMode.ALL, False)])
async def test_lookups_that_need_a_token_are_left_to_their_routes(mode: AuthMode, hot: bool) -> None:
    store = await _store()
    auth = AuthSettings(mode=mode, allowed_namespaces=frozenset({"team-a"}))
    async with _serve(store, ApiTestServer, auth) as (client, routed):
        for path in ("/schemas/ids/1", "/subjects/orders-value/versions/latest"):
            routed.paths.clear()
            response = await client.get(path)
            assert response.status == (200 if hot else 401)
            assert routed.paths == ([] if hot else [path])
            if not hot:
                assert (await client.get(path, headers={"Authorization": "Bearer good"})).status == 200


async def test_paths_the_router_would_rewrite_are_left_to_it() -> None:
    store = await _store()
    for odd in (".", "..", "orders-value#x"):
        await store.add(odd, 1, _record("Odd"))
    app = create_app(ApiSettings(), store)
    app[INDEX].load(await store.snapshot())
    routed: list[str] = []

    async def route(request: web.BaseRequest) -> web.StreamResponse:
        routed.append(request.raw_path)
        return web.Response(status=599)

    serve = serve_hot_paths(app, route)
    left = [
        "/subjects/./versions/latest",
        "/subjects/../versions/latest",
        "/subjects/orders-value#x/versions/latest",
        "/schemas/ids/%31",
        "/schemas/ids/\u0661",  # ARABIC-INDIC DIGIT ONE: the plain form is ASCII
    ]
    for raw in left:
        assert (await serve(make_mocked_request("GET", raw, app=app))).status == 599, raw
    assert routed == left
    assert (await serve(make_mocked_request("GET", "/schemas/ids/1", app=app))).status == 200
    assert (await serve(make_mocked_request("POST", "/schemas/ids/1", app=app))).status == 599


async def test_an_app_with_response_signals_is_served_by_its_routes_alone() -> None:
    app = create_app(ApiSettings(), MemoryStore())

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response()

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Seen"] = "1"

    assert serve_hot_paths(app, handler) is not handler
    app.on_response_prepare.append(on_prepare)
    assert serve_hot_paths(app, handler) is handler


def test_the_hot_paths_are_templates_the_routes_define() -> None:
    templates = {d.path for table in ROUTE_TABLES for d in table if isinstance(d, web.RouteDef)}
    assert {BY_ID, LATEST} <= templates
