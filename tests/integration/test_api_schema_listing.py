"""`GET /schemas` of `kschema api` as shipped, over a SQLite store with thousands of versions: pages of
at most 1,000 Schema objects (Confluent's limit), paging that walks every version once, bad paging
parameters refused by name, and lookups answered while listings of large schemas are rendered."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from kschema.compat import CompatibilityLevel
from kschema.formats import SchemaFormat
from kschema.store import SubjectRecord
from kschema.store.factory import open_store
from tests.harness.stores import new_version
from tests.harness.worst_case import kschema_api

SUBJECTS = 240
VERSIONS_PER_SUBJECT = 10
TOTAL = SUBJECTS * VERSIONS_PER_SUBJECT
PAGE = 1000
# Schemas of about 8 KB: rendering every version at once would hold the event loop for a long time.
DOC = "word " * 1600


def _subject(s: int) -> str:
    return f"topic-{s:03d}-value"


def _schema(s: int, v: int) -> str:
    fields = [{"name": f"f{j}", "type": "string"} for j in range(v)]
    return json.dumps({"type": "record", "name": f"R{s}", "doc": DOC, "fields": fields}, indent=2)


def _populate(url: str) -> None:
    async def fill() -> None:
        store = await open_store(url)
        try:
            for s in range(SUBJECTS):
                await store.upsert_subject(
                    SubjectRecord(_subject(s), "team-a", SchemaFormat.AVRO, CompatibilityLevel.NONE, False)
                )
                for v in range(1, VERSIONS_PER_SUBJECT + 1):
                    await store.register(new_version(_subject(s), v, _schema(s, v)))
        finally:
            await store.close()

    asyncio.run(fill())


@pytest.fixture(scope="module")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One store for the module's tests: they only read it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('listing') / 'registry.db'}"
    _populate(url)
    return url


def _get(base: str, path: str) -> tuple[int, Any]:
    url = urlparse(base)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_schemas_are_listed_in_pages_of_at_most_1000_and_bad_paging_is_refused(
    registry_url: str, tmp_path: Path
) -> None:
    with kschema_api(registry_url, tmp_path / "api.log") as base:
        status, first = _get(base, "/schemas")
        assert status == 200
        assert len(first) == PAGE  # no limit asked: one page, as Confluent's default
        assert [(s["subject"], s["version"]) for s in first[:2]] == [(_subject(0), 1), (_subject(0), 2)]
        assert first[0]["schema"] == json.dumps(json.loads(_schema(0, 1)), separators=(",", ":"))
        assert len(_get(base, f"/schemas?limit={PAGE * 5}")[1]) == PAGE

        walked: list[tuple[str, int]] = []
        for offset in range(0, TOTAL + PAGE, PAGE):
            status, page = _get(base, f"/schemas?offset={offset}&limit={PAGE}")
            assert status == 200
            walked.extend((s["subject"], s["version"]) for s in page)
        expected = [(_subject(s), v) for s in range(SUBJECTS) for v in range(1, VERSIONS_PER_SUBJECT + 1)]
        assert walked == expected

        latest = _get(base, "/schemas?latestOnly=true&subjectPrefix=topic-01&offset=3&limit=2")[1]
        assert [(s["subject"], s["version"]) for s in latest] == [(_subject(13), 10), (_subject(14), 10)]

        for query, name in (("limit=ten", "limit"), ("limit=-2", "limit"), ("offset=-1", "offset")):
            status, body = _get(base, f"/schemas?{query}")
            assert status == 400, body
            assert body["error_code"] == 400
            assert f"'{name}'" in body["message"]
        status, body = _get(base, f"/schemas?offset={2**31}")
        assert status == 400
        assert "'offset'" in body["message"]


def test_lookups_are_answered_while_listings_of_large_schemas_are_rendered(
    registry_url: str, tmp_path: Path
) -> None:
    with kschema_api(registry_url, tmp_path / "api.log") as base:
        target = urlparse(base)
        conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)

        def lookup() -> float:
            started = time.monotonic()
            conn.request("GET", f"/schemas/ids/{TOTAL}")
            response = conn.getresponse()
            assert response.status == 200
            json.loads(response.read())
            return time.monotonic() - started

        # The same lookups without listings first: on a busy machine, the noise of the machine itself.
        baseline = sorted(lookup() for _ in range(200))
        stop = threading.Event()
        listed: list[int] = []

        def list_all() -> None:
            lister = http.client.HTTPConnection(target.hostname or "", target.port, timeout=60)
            offset = 0
            while not stop.is_set():
                lister.request("GET", f"/schemas?offset={offset % TOTAL}")
                response = lister.getresponse()
                # Read, not parsed: parsing megabytes here would hold this process's GIL and delay
                # the lookups measured from it.
                body = response.read()
                assert response.status == 200
                assert body.startswith(b"[{")
                assert body.endswith(b"}]")
                listed.append(len(body))
                offset += 337
                # Paced, so the server has CPU to spare: what is measured is the event loop's turns,
                # not a busy machine's scheduler.
                stop.wait(0.1)
            lister.close()

        listers = [threading.Thread(target=list_all) for _ in range(2)]
        for lister in listers:
            lister.start()
        latencies: list[float] = []
        try:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline or len(listed) < 10:
                latencies.append(lookup())
                time.sleep(0.01)
        finally:
            stop.set()
            for lister in listers:
                lister.join()
        assert len(listed) >= 10
        latencies.sort()
        p99, base_p99 = _p99(latencies), _p99(baseline)
        print(  # noqa: T201
            f"GET /schemas/ids/{{id}} p99 {p99 * 1000:.1f} ms (max {latencies[-1] * 1000:.1f} ms) while "
            f"{len(listed)} pages were listed, p99 {base_p99 * 1000:.1f} ms without"
        )
        assert p99 < 0.1 + base_p99, f"p99 {p99 * 1000:.0f} ms while listing, {base_p99 * 1000:.0f} without"


def _p99(sorted_latencies: list[float]) -> float:
    return sorted_latencies[max(int(len(sorted_latencies) * 0.99) - 1, 0)]
