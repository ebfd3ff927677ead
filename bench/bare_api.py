"""The read-API benchmark's baseline: a bare aiohttp server with the two hot routes, each a dict lookup of
the exact bytes `kschema api` answers (copied from a running one at start-up), with the same status and
`Content-Type`. No middleware, no metrics, no access log: what serving from memory costs in aiohttp, on
the event loop `kschema api` runs on (`KSCHEMA_EVENT_LOOP`, uvloop by default).

Run: `python -m bench.bare_api SOURCE_URL PORT VERSIONS SUBJECTS` (`bench.apiproc.bare_server` does)."""

from __future__ import annotations

import http.client
import os
import sys
from urllib.parse import urlsplit

from aiohttp import web

from bench.registry_seed import subject_name
from kschema.cli.serve import loop_factory
from kschema.runtime.config import DEFAULT_EVENT_LOOP

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def fetch_all(source: str, paths: list[str]) -> list[bytes]:
    """The bodies of GET `paths` from `source`, over one connection; each must be a 200 with the
    registry's `Content-Type`."""
    url = urlsplit(source)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    bodies = []
    try:
        for path in paths:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or response.getheader("Content-Type") != CONTENT_TYPE:
                raise RuntimeError(f"GET {path}: {response.status} {response.getheader('Content-Type')}")
            bodies.append(body)
    finally:
        conn.close()
    return bodies


def _copy(source: str, paths: list[str]) -> dict[str, bytes]:
    """The bodies by the path segment the routes below look up: the ID, or the subject."""
    keys = [path.rsplit("/", 1)[1] if "/ids/" in path else path.split("/")[2] for path in paths]
    return dict(zip(keys, fetch_all(source, paths), strict=True))


def event_loop() -> str:
    """The loop `kschema api` started from this environment runs on."""
    return os.environ.get("KSCHEMA_EVENT_LOOP", DEFAULT_EVENT_LOOP).lower()


def main(argv: list[str]) -> None:
    source, port, versions, subjects = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    by_id = _copy(source, [f"/schemas/ids/{i}" for i in range(1, versions + 1)])
    latest = _copy(source, [f"/subjects/{subject_name(s)}/versions/latest" for s in range(subjects)])

    async def schema_by_id(request: web.Request) -> web.Response:
        body = by_id.get(request.match_info["id"])
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type=CONTENT_TYPE)

    async def latest_version(request: web.Request) -> web.Response:
        body = latest.get(request.match_info["subject"])
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type=CONTENT_TYPE)

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ready")

    app = web.Application()
    app.router.add_get("/schemas/ids/{id}", schema_by_id)
    app.router.add_get("/subjects/{subject}/versions/latest", latest_version)
    app.router.add_get("/ready", ready)
    loop = loop_factory(event_loop())()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main(sys.argv[1:])
