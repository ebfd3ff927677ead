"""`kschema import` against sources that misbehave: unreachable, slow, refusing credentials, answering
what the Confluent API never answers, or holding subjects the output cannot represent. Each ends with
exit status 2, one sentence naming the cause, and the output directory exactly as it was.

The sources are small aiohttp servers on loopback that speak just enough of the Confluent API; real
registries (Apicurio, kschema) are the sources of the end-to-end tests."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kschema.cli.main import main
from kschema.devcluster.controlplane import free_port

AVRO = json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]})
Handler = Callable[[web.Request], Any]


class Source:
    """A Confluent-shaped registry: `subjects[name][version] = (id, schema, references)`; `override`
    answers chosen paths differently."""

    def __init__(self) -> None:
        self.subjects: dict[str, dict[int, tuple[int, str, list[dict[str, Any]]]]] = {}
        self.override: dict[str, Handler] = {}
        self.password: str | None = None
        self.requests = 0

    def add(
        self, subject: str, version: int, schema_id: int, refs: list[dict[str, Any]] | None = None
    ) -> None:
        self.subjects.setdefault(subject, {})[version] = (schema_id, AVRO, refs or [])

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if self.password is not None:
            expected = "Basic " + base64.b64encode(f"u:{self.password}".encode()).decode()
            if request.headers.get("Authorization") != expected:
                return web.json_response({"error_code": 40101, "message": "Unauthorized"}, status=401)
        path = request.path
        if path in self.override:
            result: web.StreamResponse = await self.override[path](request)
            return result
        parts = [p for p in path.split("/") if p]
        if parts == ["config"]:
            return web.json_response({"compatibilityLevel": "BACKWARD"})
        if parts == ["subjects"]:
            return web.json_response(sorted(self.subjects))
        if len(parts) == 2 and parts[0] in ("config", "mode"):
            return web.json_response({"error_code": 40408, "message": "not set"}, status=404)
        if len(parts) >= 3 and parts[0] == "subjects" and parts[1] in self.subjects:
            versions = self.subjects[parts[1]]
            if len(parts) == 3:
                return web.json_response(sorted(versions))
            number = int(parts[3])
            if number in versions:
                schema_id, schema, refs = versions[number]
                body = {"subject": parts[1], "version": number, "id": schema_id, "schema": schema}
                if refs:
                    body["references"] = refs
                return web.json_response(body)
        return web.json_response({"error_code": 40401, "message": "not found"}, status=404)


@pytest.fixture
def source() -> Iterator[tuple[Source, str]]:
    """The source on a free loopback port, served from its own thread and event loop."""
    registry = Source()
    port = free_port()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", registry.handle)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield registry, f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def _import(url: str, out: Path, *extra: str) -> int:
    return main(["import", "--from", url, "--out", str(out), "--retries", "1", "--progress", "never", *extra])


def _unchanged(out: Path, before: dict[str, bytes] | None) -> None:
    if before is None:
        assert not out.exists()
    else:
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


@pytest.fixture
def earlier_import(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """An output directory holding an earlier import, which a failed run must leave as it was."""
    out = tmp_path / "schemas"
    out.mkdir()
    (out / "subject-old.yaml").write_bytes(b"# an earlier import\n")
    return out, {"subject-old.yaml": b"# an earlier import\n"}


def test_an_unreachable_source_is_named_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "schemas"
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    assert _import(url, out) == 2

    err = capsys.readouterr().err
    assert "the source could not be read" in err
    assert "cannot connect" in err
    assert f"{url}/config" in err
    _unchanged(out, None)


def test_a_source_that_does_not_answer_in_time_is_a_timeout(
    source: tuple[Source, str],
    earlier_import: tuple[Path, dict[str, bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry, url = source
    registry.add("orders-value", 1, 1)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)  # longer than the client waits; short, since shutdown waits for it
        return web.json_response([1])

    registry.override["/subjects/orders-value/versions"] = slow
    out, before = earlier_import

    assert _import(url, out, "--timeout", "0.5") == 2

    err = capsys.readouterr().err
    assert "no answer within 0.5 s (after 2 tries)" in err
    assert "/subjects/orders-value/versions" in err
    _unchanged(out, before)


def test_wrong_credentials_are_a_401_that_is_not_retried(
    source: tuple[Source, str],
    earlier_import: tuple[Path, dict[str, bytes]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry, url = source
    registry.password = "right"
    monkeypatch.setenv("KSCHEMA_SOURCE_PASSWORD", "wrong")
    out, before = earlier_import

    assert _import(url, out, "--username", "u") == 2

    err = capsys.readouterr().err
    assert "HTTP 401 error_code 40101: Unauthorized" in err
    assert "--username/--password" in err
    assert registry.requests == 1
    _unchanged(out, before)


def test_the_right_credentials_are_sent_as_basic_auth(
    source: tuple[Source, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, url = source
    registry.password = "right"
    registry.add("orders-value", 1, 7)
    monkeypatch.setenv("KSCHEMA_SOURCE_PASSWORD", "right")

    assert _import(url, tmp_path / "out", "--username", "u") == 0
    assert "id: 7" in (tmp_path / "out" / "versions-00-orders-value.yaml").read_text()


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/subjects", b"<html>not json</html>", "the answer is not JSON"),
        ("/subjects", b'{"subjects": []}', "expected a JSON list, got dict"),
        ("/subjects/orders-value/versions", b'["1"]', "expected a list of version numbers"),
        ("/subjects/orders-value/versions/1", b'{"id": "7", "schema": "x"}', "id: expected a schema ID"),
        ("/subjects/orders-value/versions/1", b'{"id": 7}', "schema: expected the schema text"),
        (
            "/subjects/orders-value/versions/1",
            b'{"id": 7, "schema": "\\"int\\"", "schemaType": "XML"}',
            "schemaType: expected AVRO, JSON or PROTOBUF, got 'XML'",
        ),
        (
            "/subjects/orders-value/versions/1",
            b'{"id": 7, "schema": "\\"int\\"", "references": [{"name": "x"}]}',
            "references[0]: expected {name, subject, version}",
        ),
        ("/config", b'{"compatibilityLevel": "SOMETIMES"}', "compatibilityLevel: expected one of"),
    ],
)
def test_a_malformed_answer_names_the_url_and_the_field(
    source: tuple[Source, str],
    earlier_import: tuple[Path, dict[str, bytes]],
    capsys: pytest.CaptureFixture[str],
    path: str,
    body: bytes,
    expected: str,
) -> None:
    registry, url = source
    registry.add("orders-value", 1, 7)

    async def malformed(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    registry.override[path] = malformed
    out, before = earlier_import

    assert _import(url, out) == 2

    err = capsys.readouterr().err
    assert expected in err
    assert f"{url}{path}" in err
    _unchanged(out, before)


def test_an_answer_larger_than_the_limit_is_refused_unread(
    source: tuple[Source, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry, url = source

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b"[" + b'"s",' * (3 * 1024 * 1024))  # 12 MiB, never finished
        return response

    registry.override["/subjects"] = huge

    assert _import(url, tmp_path / "out") == 2
    assert "more than the limit of 8388608 bytes" in capsys.readouterr().err


def test_subjects_that_collide_after_sanitising_are_both_named(
    source: tuple[Source, str],
    earlier_import: tuple[Path, dict[str, bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry, url = source
    registry.add("Orders-Value", 1, 1)
    registry.add("orders_value", 1, 2)
    out, before = earlier_import

    assert _import(url, out) == 2

    err = capsys.readouterr().err
    assert 'subjects "Orders-Value" and "orders_value" both become the resource name "orders-value"' in err
    _unchanged(out, before)


def test_a_reference_to_a_subject_left_out_by_the_pattern_is_an_error(
    source: tuple[Source, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry, url = source
    registry.add("address-value", 1, 1)
    registry.add("customer-value", 1, 2, [{"name": "R", "subject": "address-value", "version": 1}])
    out = tmp_path / "out"

    assert _import(url, out, "--subjects", "customer-*") == 2

    err = capsys.readouterr().err
    assert (
        'subject "customer-value" version 1 references subject "address-value" version 1, which '
        "--subjects customer-* does not select" in err
    )
    _unchanged(out, None)
    assert _import(url, out, "--subjects", "customer-*", "--subjects", "address-*") == 0


def test_a_reference_the_source_cannot_resolve_is_an_error(
    source: tuple[Source, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry, url = source
    registry.add("customer-value", 1, 2, [{"name": "R", "subject": "address-value", "version": 3}])

    assert _import(url, tmp_path / "out") == 2
    assert 'references subject "address-value" version 3, which the source does not have' in (
        capsys.readouterr().err
    )


def test_an_output_directory_with_other_files_is_never_replaced(
    source: tuple[Source, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry, url = source
    registry.add("orders-value", 1, 1)
    out = tmp_path / "repo"
    out.mkdir()
    (out / "README.md").write_text("keep me")

    assert _import(url, out) == 2

    assert "holds files that kschema import did not write (README.md)" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["README.md"]


def test_a_server_error_is_retried_and_then_succeeds(source: tuple[Source, str], tmp_path: Path) -> None:
    registry, url = source
    registry.add("orders-value", 1, 1)
    failures = [503, 500]

    async def flaky(request: web.Request) -> web.Response:
        if failures:
            return web.json_response({"error_code": 50001, "message": "busy"}, status=failures.pop())
        return web.json_response([1])

    registry.override["/subjects/orders-value/versions"] = flaky

    assert _import(url, tmp_path / "out", "--retries", "2") == 0
    assert not failures
