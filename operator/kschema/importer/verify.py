"""`kschema import --verify`: the source registry and a running kschema read API, compared version by
version and ID by ID. Every difference is one sentence; none means the move kept every ID resolving to
the same schema, every version number and every compatibility level."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kschema.formats import SchemaFormat
from kschema.importer.snapshot import SourceSnapshot, SourceSubject, SourceVersion
from kschema.importer.source import SourceClient, SourceNotFoundError, path_of

__all__ = ["Difference", "compare"]

_SUBJECTS_IN_FLIGHT = 32


@dataclass(frozen=True, slots=True, order=True)
class Difference:
    where: str  # `subject "orders-value" version 3`, `schema ID 17`, `subject "x"`
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def _refs(raw: Any) -> list[tuple[str, str, int]]:
    if not isinstance(raw, list):
        return []
    return [
        (str(r.get("name")), str(r.get("subject")), int(r.get("version", 0)))
        for r in raw
        if isinstance(r, Mapping) and isinstance(r.get("version"), int)
    ]


def _same_text(fmt: SchemaFormat, source: str, theirs: Any) -> bool:
    """Avro and JSON Schema texts are JSON documents: a registry may serve them compacted (Confluent and
    kschema do), which is the same schema. Protobuf text must match as written."""
    if source == theirs:
        return True
    if fmt is SchemaFormat.PROTOBUF or not isinstance(theirs, str):
        return False
    try:
        return bool(json.loads(source) == json.loads(theirs))
    except ValueError:
        return False


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


async def _get(client: SourceClient, path: str, params: Mapping[str, str | int | bool] | None = None) -> Any:
    try:
        return await client.get_json(path, params)
    except SourceNotFoundError:
        return None


async def _version(target: SourceClient, version: SourceVersion) -> list[Difference]:
    where = f'subject "{version.subject}" version {version.version}'
    body = await _get(
        target, path_of("subjects", version.subject, "versions", version.version), {"deleted": True}
    )
    if not isinstance(body, Mapping):
        return [Difference(where, "missing in kschema")]
    found: list[Difference] = []
    if body.get("id") != version.schema_id:
        found.append(Difference(where, f"ID differs: source {version.schema_id}, kschema {body.get('id')}"))
    if not _same_text(version.format, version.schema, body.get("schema")):
        found.append(
            Difference(
                where,
                f"schema text differs: source {_short(version.schema)!r}, "
                f"kschema {_short(str(body.get('schema')))!r}",
            )
        )
    theirs = str(body.get("schemaType") or "AVRO")
    if theirs != version.format:
        found.append(Difference(where, f"format differs: source {version.format}, kschema {theirs}"))
    ours = [(r.name, r.subject, r.version) for r in version.references]
    if _refs(body.get("references")) != ours:
        found.append(
            Difference(where, f"references differ: source {ours}, kschema {_refs(body.get('references'))}")
        )
    return found


async def _subject(target: SourceClient, subject: SourceSubject) -> list[Difference]:
    where = f'subject "{subject.name}"'
    found: list[Difference] = []
    live = [v.version for v in subject.versions if not v.deleted]
    listed = await _get(target, path_of("subjects", subject.name, "versions"))
    listed = listed if isinstance(listed, list) else []
    if sorted(listed) != live:
        found.append(Difference(where, f"listed versions differ: source {live}, kschema {sorted(listed)}"))
    config = await _get(target, path_of("config", subject.name), {"defaultToGlobal": True})
    level = config.get("compatibilityLevel") if isinstance(config, Mapping) else None
    if level != subject.compatibility:
        found.append(
            Difference(where, f"compatibility differs: source {subject.compatibility}, kschema {level}")
        )
    for result in await asyncio.gather(*(_version(target, v) for v in subject.versions)):
        found += result
    return found


async def _schema_id(target: SourceClient, schema_id: int, holder: SourceVersion) -> list[Difference]:
    where = f"schema ID {schema_id}"
    body = await _get(target, path_of("schemas", "ids", schema_id))
    if not isinstance(body, Mapping):
        return [Difference(where, "does not resolve in kschema")]
    if not _same_text(holder.format, holder.schema, body.get("schema")):
        return [
            Difference(
                where,
                f'resolves to other text in kschema than subject "{holder.subject}" version '
                f"{holder.version} has in the source",
            )
        ]
    return []


async def compare(snapshot: SourceSnapshot, target: SourceClient, selected: list[str]) -> list[Difference]:
    """Differences between `snapshot` (the source, as read) and the kschema read API behind `target`.
    `selected` is the list of subject names kschema holds that fall under the same selection."""
    gate = asyncio.Semaphore(_SUBJECTS_IN_FLIGHT)
    names = {s.name for s in snapshot.subjects}
    found = [
        Difference(f'subject "{name}"', "only in kschema, not in the source")
        for name in selected
        if name not in names
    ]

    async def bounded(job: Any) -> list[Difference]:
        async with gate:
            result: list[Difference] = await job
            return result

    holders: dict[int, SourceVersion] = {}
    for subject in snapshot.subjects:
        for version in subject.versions:
            holders.setdefault(version.schema_id, version)
    jobs = [bounded(_subject(target, s)) for s in snapshot.subjects]
    jobs += [bounded(_schema_id(target, i, v)) for i, v in sorted(holders.items())]
    for result in await asyncio.gather(*jobs):
        found += result
    return sorted(found)
