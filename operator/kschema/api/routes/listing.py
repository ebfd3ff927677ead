"""The read API's listings: `GET /subjects`, `GET /subjects/{subject}/versions` and `GET /schemas`, with
Confluent's filters (`subjectPrefix`, `deleted`, `deletedOnly`, `latestOnly`) and paging (`offset`,
`limit`; a limit of -1, the default, means no limit, except for `GET /schemas`, whose Schema objects
carry whole schema texts: it answers pages of at most `MAX_SCHEMAS_PAGE`, as Confluent does)."""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Sequence
from typing import TypeVar

from aiohttp import web

from kschema.api.errors import bad_request, subject_not_found
from kschema.api.index import RegistryIndex
from kschema.api.routes.common import HEADERS, flag, ready_index, respond
from kschema.store import SubjectVersion

__all__ = ["MAX_SCHEMAS_PAGE", "page", "routes", "schemas_page"]

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
_T = TypeVar("_T")

MAX_SCHEMAS_PAGE = 1000
"""The most Schema objects one `GET /schemas` answers (Confluent's `schema.search.max.limit` and
`schema.search.default.limit` are both 1,000)."""
MAX_OFFSET = 2**31 - 1  # Confluent's offset is a Java int
# Slices of work between two turns of the event loop: versions looked at while choosing a page, and
# bodies rendered and written.
_EXAMINED_PER_TURN = 2000
_RENDERED_PER_TURN = 20
_BYTES_PER_TURN = 64 * 1024


def _integer(request: web.Request, name: str, default: int, minimum: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"query parameter '{name}' must be an integer, got '{raw}'") from None
    if value < minimum:
        raise bad_request(f"query parameter '{name}' must be at least {minimum}, got {value}")
    return value


def page(request: web.Request, items: Sequence[_T]) -> list[_T]:
    """`items[offset:offset + limit]`; `limit=-1` (the default) means to the end."""
    offset = _integer(request, "offset", 0, 0)
    limit = _integer(request, "limit", -1, -1)
    return list(items[offset:] if limit == -1 else items[offset : offset + limit])


def _prefix(request: web.Request) -> str:
    prefix = request.query.get("subjectPrefix", "")
    # Confluent's default context prefix `:*:` means "every subject".
    return "" if prefix in (":*:", ":.:") else prefix


@routes.get("/subjects")
async def list_subjects(request: web.Request) -> web.Response:
    index = ready_index(request)
    found = index.subjects(flag(request, "deleted"), _prefix(request), flag(request, "deletedOnly"))
    return respond(page(request, found))


@routes.get("/subjects/{subject}/versions")
async def list_versions(request: web.Request) -> web.Response:
    index = ready_index(request)
    subject = request.match_info["subject"]
    deleted_only = flag(request, "deletedOnly")
    versions = index.versions(subject, flag(request, "deleted"), deleted_only)
    if not versions and not (deleted_only and index.subject_exists(subject, include_deleted=True)):
        raise subject_not_found(subject)
    return respond(page(request, [v.version for v in versions]))


@routes.get("/schemas")
async def list_schemas(request: web.Request) -> web.StreamResponse:
    """Listed versions of every subject (under `subjectPrefix`), by subject then version, as Confluent's
    Schema objects; `latestOnly` keeps each subject's latest version. One page of at most
    `MAX_SCHEMAS_PAGE`, chosen and rendered in slices between which the event loop serves other
    requests, and streamed, so a registry of any size costs one page."""
    index = ready_index(request)
    include_deleted = flag(request, "deleted")
    latest_only = flag(request, "latestOnly")
    offset, limit = schemas_page(request)
    found = await _page_of_versions(index, _prefix(request), include_deleted, latest_only, offset, limit)
    return await _stream_array(request, index, found)


def schemas_page(request: web.Request) -> tuple[int, int]:
    """`offset` and `limit` of `GET /schemas`. As Confluent's `schema.search.max.limit`: a limit that
    is not positive (the default is -1) or past the maximum gives a page of `MAX_SCHEMAS_PAGE`."""
    offset = _integer(request, "offset", 0, 0)
    if offset > MAX_OFFSET:
        raise bad_request(f"query parameter 'offset' must be at most {MAX_OFFSET}, got {offset}")
    limit = _integer(request, "limit", -1, -1)
    return offset, limit if 0 < limit <= MAX_SCHEMAS_PAGE else MAX_SCHEMAS_PAGE


async def _page_of_versions(
    index: RegistryIndex, prefix: str, include_deleted: bool, latest_only: bool, offset: int, limit: int
) -> list[SubjectVersion]:
    names = index.subject_names()
    found: list[SubjectVersion] = []
    skipped = examined = 0
    for position in range(bisect.bisect_left(names, prefix), len(names)):
        subject = names[position]
        if not subject.startswith(prefix):
            break
        if latest_only:
            latest = index.latest(subject, include_deleted)
            versions = [latest] if latest is not None else []
        else:
            versions = index.versions(subject, include_deleted)
        examined += len(versions) + 1
        if skipped < offset:
            take = versions[offset - skipped :]
            skipped += len(versions) - len(take)
            versions = take
        found.extend(versions[: limit - len(found)])
        if len(found) >= limit:
            break
        if examined >= _EXAMINED_PER_TURN:
            examined = 0
            await asyncio.sleep(0)  # the index may change meanwhile; each subject is read at once
    return found


async def _stream_array(
    request: web.Request, index: RegistryIndex, versions: list[SubjectVersion]
) -> web.StreamResponse:
    """The JSON array of the versions' bodies, the same bytes `json.dumps` of the list would be, written
    `_RENDERED_PER_TURN` bodies or `_BYTES_PER_TURN` at a time. The transport's flow control bounds
    what waits in memory."""
    response = web.StreamResponse(headers=HEADERS)
    await response.prepare(request)
    try:
        parts: list[bytes] = []
        size = 0
        opening = b"["
        for version in versions:
            body = index.listed_body(version)
            parts.append(body)
            size += len(body)
            if len(parts) == _RENDERED_PER_TURN or size >= _BYTES_PER_TURN:
                await response.write(opening + b", ".join(parts))
                opening, parts, size = b", ", [], 0
                # `write` waits only when the transport's buffer is full: let other requests in.
                await asyncio.sleep(0)
        if parts:
            await response.write(opening + b", ".join(parts))
        await response.write(b"]" if versions else b"[]")
        await response.write_eof()
    except ConnectionError:
        log.debug("Stopped a listing: the client went away path=%s", request.path)
    return response
