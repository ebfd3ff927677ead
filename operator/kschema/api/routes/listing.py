"""The read API's listings: `GET /subjects`, `GET /subjects/{subject}/versions` and `GET /schemas`, with
Confluent's filters (`subjectPrefix`, `deleted`, `deletedOnly`, `latestOnly`) and paging (`offset`,
`limit`; a limit of -1, the default, means no limit)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from aiohttp import web

from kschema.api.errors import bad_request, subject_not_found
from kschema.api.routes.common import flag, ready_index, respond, version_payload

__all__ = ["page", "routes"]

routes = web.RouteTableDef()
_T = TypeVar("_T")


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
async def list_schemas(request: web.Request) -> web.Response:
    """Every listed version of every subject (under `subjectPrefix`), by subject then version, as
    Confluent's Schema objects; `latestOnly` keeps each subject's latest version."""
    index = ready_index(request)
    include_deleted = flag(request, "deleted")
    latest_only = flag(request, "latestOnly")
    found = []
    for subject in index.subjects(include_deleted, _prefix(request)):
        if latest_only:
            latest = index.latest(subject, include_deleted)
            found.extend([latest] if latest is not None else [])
        else:
            found.extend(index.versions(subject, include_deleted))
    return respond([await version_payload(request, index, v, None) for v in page(request, found)])
