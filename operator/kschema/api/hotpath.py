"""The serializers' two lookups, answered before routing.

Every Kafka deserializer asks `GET /schemas/ids/{id}` for each ID it has not seen yet, and serializers
configured with `use.latest.version` ask `GET /subjects/{subject}/versions/latest`. The index holds both
answers as rendered bytes, so answering takes two dict lookups; aiohttp's routing before them (walking
the path's prefixes, matching each candidate template's regular expression, building and freezing the
match info) and the route's wrapper cost more than that.

So the server hands each request to `serve_hot_paths` first. A request that is exactly one of these two
lookups is answered there, with the same bytes and headers as its route and counted in the same series of
`kschema_api_requests_total` and `kschema_api_request_duration_seconds`, when nothing could change the
answer: a GET, the path in its plain form (an ID in decimal without leading zeros; a subject name of
letters, digits and `._:-`), no query string (for an ID: none but the parameters the route ignores,
which Confluent's deserializers send), no `Expect`, an `Accept` the API serves, a route that
needs no token in the configured authentication mode, an index loaded and holding the ID or a live
latest version that is not DEPRECATED (that answer carries lifecycle headers). Every other request,
including every error, goes through routing to the route, exactly as before."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from kschema.api.auth import route_is_protected
from kschema.api.index import RegistryIndex
from kschema.api.metrics import Recorder
from kschema.api.negotiation import admits
from kschema.api.routes.common import PLAIN_HEADERS
from kschema.api.state import INDEX, METRICS, SETTINGS
from kschema.model import SchemaState

__all__ = ["BY_ID", "LATEST", "ServerHandler", "serve_hot_paths"]

ServerHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
"""What `web.Server` calls with each request (for an app, its routing)."""

BY_ID = "/schemas/ids/{id}"
LATEST = "/subjects/{subject}/versions/{version}"

_IDS_PREFIX = "/schemas/ids/"
_SUBJECTS_PREFIX = "/subjects/"
_LATEST_SUFFIX = "/versions/latest"
# IDs are positive 32-bit integers; a longer run of digits is left to the route (which answers 404).
_PLAIN_ID = re.compile(r"[1-9][0-9]{0,9}")
# Names the router would pass on unchanged: no percent-encoding, no dot segment (`.`, `..`).
_PLAIN_SUBJECT = re.compile(r"(?!\.\.?$)[A-Za-z0-9._:\-]+")
_DEPRECATED = SchemaState.DEPRECATED
_IGNORED_BY_ID = frozenset({"subject", "findTags"})


def serve_hot_paths(app: web.Application, handler: ServerHandler) -> ServerHandler:
    """`handler` (the app's own, routing every request), with the two lookups answered in front of it
    for the routes that need no token in the app's authentication mode."""
    if app.on_response_prepare:
        return handler  # a response answered here would skip the app's signals
    index: RegistryIndex = app[INDEX]
    mode = app[SETTINGS].auth.mode
    stats = app[METRICS].requests
    by_id = None if route_is_protected(mode, BY_ID) else stats.route(BY_ID).recorder(hdrs.METH_GET)
    latest = None if route_is_protected(mode, LATEST) else stats.route(LATEST).recorder(hdrs.METH_GET)
    if by_id is None and latest is None:
        return handler
    clock = time.monotonic  # as the route's wrapper (`handling.py`)

    async def serve(request: web.BaseRequest) -> web.StreamResponse:
        if request.method == hdrs.METH_GET and index.loaded:
            started = clock()
            body, record = _lookup(index, request.raw_path, by_id, latest)
            if body is not None and record is not None:
                headers = request.headers
                if admits(headers.get(hdrs.ACCEPT)) and hdrs.EXPECT not in headers:
                    response = web.Response(body=body, headers=PLAIN_HEADERS)
                    record(request, 200, clock() - started)
                    return response
        return await handler(request)

    return serve


def _lookup(
    index: RegistryIndex, raw_path: str, by_id: Recorder | None, latest: Recorder | None
) -> tuple[bytes | None, Recorder | None]:
    """The body the route would answer `raw_path` with (200, plain headers) and the route's recorder,
    or None where the route must answer."""
    path, _, query = raw_path.partition("?")
    if path.startswith(_IDS_PREFIX):
        digits = path[len(_IDS_PREFIX) :]
        if by_id is None or _PLAIN_ID.fullmatch(digits) is None or (query and not _ignored(query)):
            return None, None
        return index.schema_body(int(digits)), by_id
    if latest is None or query or not path.startswith(_SUBJECTS_PREFIX) or not path.endswith(_LATEST_SUFFIX):
        return None, None
    subject = path[len(_SUBJECTS_PREFIX) : -len(_LATEST_SUFFIX)]
    if _PLAIN_SUBJECT.fullmatch(subject) is None:
        return None, None
    found = index.latest(subject, include_deleted=False)
    if found is None or found.state is _DEPRECATED:
        return None, None
    return index.version_body(found), latest


def _ignored(query: str) -> bool:
    """Whether every parameter of a `GET /schemas/ids/{id}` query leaves the answer as it is without one:
    the ones the route ignores (`subject`, which Confluent's deserializers send, and `findTags`) and
    `fetchMaxId` turned off (Confluent's Java client sends `fetchMaxId=false`). Names and values are
    compared as sent: anything percent-encoded is left to the route."""
    for parameter in query.split("&"):
        name, _, value = parameter.partition("=")
        if name in _IGNORED_BY_ID:
            continue
        if name != "fetchMaxId" or value.lower() not in ("", "false"):
            return False
    return True
