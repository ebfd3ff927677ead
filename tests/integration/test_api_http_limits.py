"""Requests that aiohttp's own HTTP parser refuses, sent over a raw socket to the real read API server (the
runner `kschema api` uses, over a real SQLite store): they get Confluent's JSON error shape and never
have their input echoed back."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from kschema.api import ApiSettings
from kschema.api.server import create_runner
from kschema.api.state import INDEX
from kschema.devcluster.controlplane import free_port
from kschema.store.sqlite import SqliteStore

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
MARKER = "Zq7"  # appears in no response unless the input is echoed


@pytest.fixture
async def api_port(tmp_path: Path) -> AsyncIterator[int]:
    store = SqliteStore(tmp_path / "registry.db")
    await store.open()
    port = free_port()
    runner = create_runner(ApiSettings(host="127.0.0.1", port=port), store)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        index = runner.app[INDEX]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not index.loaded:
            assert loop.time() < deadline, "the API did not finish its first load"
            await asyncio.sleep(0.01)
        yield port
    finally:
        await runner.cleanup()
        await store.close()


def _exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Sends raw bytes and reads until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


async def _send(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(_exchange, port, request)


LONG_PATH = b"GET /subjects/" + MARKER.encode() * 4000 + b" HTTP/1.1\r\nHost: registry\r\n\r\n"
LONG_HEADER = b"GET /subjects HTTP/1.1\r\nHost: registry\r\nX-Trace: " + MARKER.encode() * 4000 + b"\r\n\r\n"
LONG_HEADER_NAME = b"GET /subjects HTTP/1.1\r\nHost: registry\r\nX-" + MARKER.encode() * 4000 + b": 1\r\n\r\n"
MANY_HEADERS = (
    b"GET /subjects HTTP/1.1\r\nHost: registry\r\n"
    + b"".join(b"X-%d: " % i + MARKER.encode() + b"\r\n" for i in range(500))
    + b"\r\n"
)
NOT_HTTP = MARKER.encode() + b" \x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "reason"),
    [
        (LONG_PATH, "too long"),
        (LONG_HEADER, "too long"),
        (LONG_HEADER_NAME, "too long"),
        (MANY_HEADERS, ""),
        (NOT_HTTP, ""),
    ],
    ids=["request-line", "header-value", "header-name", "too-many-headers", "not-http"],
)
async def test_a_request_the_parser_refuses_gets_confluents_error_without_its_input(
    api_port: int, request_bytes: bytes, reason: str
) -> None:
    status, headers, body = await _send(api_port, request_bytes)

    assert status == 400
    assert headers["content-type"].startswith(CONTENT_TYPE)
    error = json.loads(body)
    assert set(error) == {"error_code", "message"}
    assert error["error_code"] == 400
    assert reason in error["message"]
    assert MARKER not in body.decode()
    assert len(body) < 200


async def test_the_limits_come_from_the_settings_and_the_server_keeps_serving(api_port: int) -> None:
    status, _, body = await _send(api_port, LONG_PATH)
    assert status == 400
    assert "8190" in json.loads(body)["message"]

    status, _, body = await _send(api_port, b"GET /subjects HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n")
    assert (status, json.loads(body)) == (200, [])
