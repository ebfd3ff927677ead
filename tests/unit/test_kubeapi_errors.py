"""The Kubernetes API's error answers become typed errors at the client edge: through a real HTTP round
trip to a loopback server answering like the API server, and through `translate` directly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from kschema.kubeapi import (
    UNPARSED,
    ApiClient,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    KubeApiError,
    KubeClientError,
    KubeServerError,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    answer_bytes,
    translate,
    translated,
)


def _status(code: int, reason: str, message: str) -> dict[str, object]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@pytest.fixture
async def api_server() -> AsyncIterator[str]:
    """Answers `GET /api/v1/namespaces/{ns}/configmaps/{name}` with the status code named by `name`."""

    async def config_map(request: web.Request) -> web.Response:
        code = int(request.match_info["name"].removeprefix("status-"))
        body = _status(code, "Whatever", f"configmaps {request.match_info['name']!r} said {code}")
        return web.json_response(body, status=code)

    async def patch_config_map(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name.startswith("status-"):
            return await config_map(request)
        data = await request.json()
        return web.json_response({"kind": "ConfigMap", "metadata": {"name": name}, "data": data["data"]})

    ended = asyncio.Event()

    async def watch_config_maps(request: web.Request) -> web.StreamResponse:
        """A watch that sends one event and stays open until the server stops, as the API server's do."""
        response = web.StreamResponse()
        await response.prepare(request)
        event = {
            "type": "ADDED",
            "object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "orders"}},
        }
        await response.write(json.dumps(event).encode() + b"\n")
        await ended.wait()
        return response

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/configmaps", watch_config_maps)
    app.router.add_get("/api/v1/namespaces/{ns}/configmaps/{name}", config_map)
    app.router.add_patch("/api/v1/namespaces/{ns}/configmaps/{name}", patch_config_map)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        ended.set()
        await runner.cleanup()


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (410, Gone),
        (422, Unprocessable),
        (429, TooManyRequests),
        (418, KubeClientError),
        (500, KubeServerError),
        (503, KubeServerError),
    ],
)
async def test_an_error_answer_raises_its_typed_error_with_the_servers_message(
    api_server: str, code: int, kind: type[KubeApiError]
) -> None:
    configuration = client.Configuration(host=api_server)
    async with ApiClient(configuration) as api:
        with pytest.raises(kind) as raised:
            await client.CoreV1Api(api).read_namespaced_config_map(f"status-{code}", "shop")
    assert type(raised.value) is kind
    assert raised.value.status == code
    assert raised.value.message == f"configmaps 'status-{code}' said {code}"
    assert isinstance(raised.value.__cause__, ApiException)


async def test_an_unparsed_call_returns_the_answers_bytes_and_raises_typed_errors_the_same(
    api_server: str,
) -> None:
    configuration = client.Configuration(host=api_server)
    async with ApiClient(configuration) as api:
        core = client.CoreV1Api(api)
        answer = await answer_bytes(
            core.patch_namespaced_config_map(  # type: ignore[call-arg]  # accepted at run time
                "orders",
                "shop",
                {"data": {"k": "v"}},
                _content_type="application/merge-patch+json",
                **UNPARSED,
            )
        )
        assert isinstance(answer, bytes)
        assert json.loads(answer) == {"kind": "ConfigMap", "metadata": {"name": "orders"}, "data": {"k": "v"}}
        for _ in range(3):  # each error answer is read whole: the connection goes back to the pool
            with pytest.raises(Conflict) as raised:
                await answer_bytes(
                    core.patch_namespaced_config_map(  # type: ignore[call-arg]  # as above
                        "status-409", "shop", {}, _content_type="application/merge-patch+json", **UNPARSED
                    )
                )
            assert raised.value.status == 409
            assert raised.value.message == "configmaps 'status-409' said 409"
            assert isinstance(raised.value.__cause__, ApiException)


async def test_a_watch_hands_over_each_event_as_it_comes(api_server: str) -> None:
    """A watch asks for its answer unparsed too, but its answer is a stream: reading it whole would wait
    until the watch ends (minutes), and the webhook's cache of declared resources would never change."""
    configuration = client.Configuration(host=api_server)
    async with ApiClient(configuration) as api:
        stream = watch.Watch()
        try:
            async with asyncio.timeout(5):
                async for event in stream.stream(client.CoreV1Api(api).list_namespaced_config_map, "shop"):
                    assert event["type"] == "ADDED"
                    assert event["raw_object"]["metadata"]["name"] == "orders"
                    break
        finally:
            await stream.close()


def test_client_errors_and_server_errors_are_told_apart() -> None:
    assert isinstance(translate(ApiException(status=404, reason="Not Found")), KubeClientError)
    assert isinstance(translate(ApiException(status=504, reason="Gateway Timeout")), KubeServerError)
    assert not isinstance(translate(ApiException(status=504, reason="x")), KubeClientError)


def test_a_body_that_is_not_a_status_leaves_the_message_empty() -> None:
    error = ApiException(status=409, reason="Conflict")
    error.body = b"<html>proxy error</html>"
    translated_error = translate(error)
    assert isinstance(translated_error, Conflict)
    assert (translated_error.message, translated_error.body) == ("", "<html>proxy error</html>")
    assert str(translated_error) == "409 Conflict"


def test_an_exception_without_a_status_is_the_base_error() -> None:
    found = translate(ApiException(reason="stream closed"))
    assert type(found) is KubeApiError
    assert found.status == 0


def test_an_error_event_of_a_watch_stream_is_translated_too() -> None:
    """kubernetes_asyncio raises the ERROR event of a watch (410 Expired) itself, outside a request."""
    with pytest.raises(Gone), translated():
        raise ApiException(status=410, reason="Expired: too old resource version")


def test_a_status_body_message_is_kept() -> None:
    error = ApiException(status=422, reason="Unprocessable Entity")
    error.body = json.dumps(_status(422, "Invalid", 'ConfigMap "x" is invalid: data: Too long')).encode()
    found = translate(error)
    assert isinstance(found, Unprocessable)
    assert found.message == 'ConfigMap "x" is invalid: data: Too long'
