"""Reading a whole source registry (or the subjects a pattern selects) into a `SourceSnapshot`: every
subject with its format, its effective compatibility level, its mode, and every version with its ID,
text, references, state and data-contract fields.

What third-party registries do differently, and how it is handled:

* IDs have gaps and are not in version order: they are read back, never computed.
* A subject without a level of its own: Confluent answers 404 (40408), Apicurio answers 200 with the
  global level as if it were the subject's. Either way the *effective* level is written out, so the
  import means the same thing whatever kschema's own default is.
* References to soft-deleted versions (Apicurio lets a referenced version be soft-deleted): when deleted
  versions are skipped, such a version is still imported, as ARCHIVED, because IDs that use it must keep
  resolving.
* Listing subjects or versions with `offset`/`limit` is used where the source honours it, and detected
  where it does not.
"""

from __future__ import annotations

import asyncio
import enum
import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kschema.compat import CompatibilityLevel
from kschema.formats import Reference, SchemaFormat
from kschema.importer.source import (
    MalformedResponseError,
    SourceClient,
    SourceNotFoundError,
    path_of,
)

__all__ = [
    "DeletedPolicy",
    "ImportProblem",
    "Selection",
    "SourceSnapshot",
    "SourceSubject",
    "SourceVersion",
    "fetch_snapshot",
]

MAX_SCHEMA_ID = 2**31 - 1
MAX_VERSION = 2**31 - 1
# Subjects fetched at once: each holds a few requests in flight; the client caps requests anyway.
_SUBJECTS_IN_FLIGHT = 32


class DeletedPolicy(enum.StrEnum):
    SKIP = "skip"  # soft-deleted versions are left out (unless a kept version references one)
    ARCHIVE = "archive"  # imported with state ARCHIVED: hidden from listings, resolvable by ID


class ImportProblem(Exception):
    """The source cannot be imported as it is; the message names the subject, version or field."""


@dataclass(frozen=True, slots=True)
class Selection:
    patterns: tuple[str, ...] = ()  # shell-style patterns on subject names; empty selects every subject
    deleted: DeletedPolicy = DeletedPolicy.SKIP

    def selects(self, subject: str) -> bool:
        return not self.patterns or any(fnmatch.fnmatchcase(subject, p) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class SourceVersion:
    subject: str
    version: int
    schema_id: int
    format: SchemaFormat
    schema: str
    references: tuple[Reference, ...] = ()
    deleted: bool = False
    metadata: Mapping[str, Any] | None = None
    rule_set: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SourceSubject:
    name: str
    format: SchemaFormat
    compatibility: CompatibilityLevel
    mode: str | None
    versions: tuple[SourceVersion, ...]


@dataclass(slots=True)
class SourceSnapshot:
    global_compatibility: CompatibilityLevel
    subjects: list[SourceSubject]
    notes: list[str] = field(default_factory=list)  # what was done that the user should know

    @property
    def version_count(self) -> int:
        return sum(len(s.versions) for s in self.subjects)


Progress = Callable[[int, int], None]  # (subjects done, subjects selected)


async def _list(source: SourceClient, path: str, params: Mapping[str, str | int | bool]) -> list[Any]:
    """A list endpoint, page by page where the source honours `offset`/`limit`. A source that ignores
    them answers the whole list (longer than a page) or the same first page again; both end the loop."""
    size = source.settings.page_size
    items: list[Any] = []
    offset = 0
    while True:
        page = await source.get_json(path, {**params, "offset": offset, "limit": size})
        url = source.url(path, params)
        if not isinstance(page, list):
            raise MalformedResponseError(url, f"expected a JSON list, got {type(page).__name__}")
        if offset and page and items and page[:1] == items[:1]:
            return items  # paging ignored: this is the first page again
        items += page
        if len(page) != size:
            return items
        offset += size
        if offset > 10_000_000:
            raise MalformedResponseError(url, "more than 10,000,000 entries; the source keeps paging")


def _strings(values: list[Any], url: str, what: str) -> list[str]:
    if not all(isinstance(v, str) and v for v in values):
        raise MalformedResponseError(url, f"{what}: expected a list of non-empty strings")
    return sorted(set(values))


def _ints(values: list[Any], url: str, what: str) -> list[int]:
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_VERSION for v in values):
        raise MalformedResponseError(url, f"{what}: expected a list of version numbers")
    return sorted(set(values))


async def _level(source: SourceClient, path: str) -> CompatibilityLevel | None:
    """The level at a config path; None when the source says it is not set (404)."""
    try:
        body = await source.get_json(path)
    except SourceNotFoundError:
        return None
    url = source.url(path)
    raw = body.get("compatibilityLevel", body.get("compatibility")) if isinstance(body, Mapping) else None
    try:
        return CompatibilityLevel(str(raw))
    except ValueError:
        raise MalformedResponseError(
            url, f"compatibilityLevel: expected one of {', '.join(CompatibilityLevel)}, got {raw!r}"
        ) from None


async def _mode(source: SourceClient, subject: str) -> str | None:
    path = path_of("mode", subject)
    try:
        body = await source.get_json(path)
    except SourceNotFoundError:
        return None
    mode = body.get("mode") if isinstance(body, Mapping) else None
    if not isinstance(mode, str) or not mode.isascii() or not mode.replace("_", "").isalnum():
        raise MalformedResponseError(source.url(path), f"mode: expected a mode name, got {mode!r}")
    return mode


def _references(raw: Any, url: str) -> tuple[Reference, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise MalformedResponseError(url, "references: expected a list")
    refs = []
    for i, item in enumerate(raw):
        ok = (
            isinstance(item, Mapping)
            and isinstance(item.get("name"), str)
            and item["name"]
            and isinstance(item.get("subject"), str)
            and item["subject"]
            and isinstance(item.get("version"), int)
            and not isinstance(item.get("version"), bool)
            and 1 <= item["version"] <= MAX_VERSION
        )
        if not ok:
            raise MalformedResponseError(
                url, f"references[{i}]: expected {{name, subject, version}}, got {item!r:.200}"
            )
        refs.append(Reference(item["name"], item["subject"], item["version"]))
    return tuple(refs)


def _contract_field(body: Mapping[str, Any], key: str, url: str) -> Mapping[str, Any] | None:
    value = body.get(key)
    if value is None or value == {}:
        return None
    if not isinstance(value, Mapping):
        raise MalformedResponseError(url, f"{key}: expected an object")
    return value


async def _version(source: SourceClient, subject: str, version: int, deleted: bool) -> SourceVersion:
    path = path_of("subjects", subject, "versions", version)
    body = await source.get_json(path, {"deleted": True})
    url = source.url(path)
    if not isinstance(body, Mapping):
        raise MalformedResponseError(url, "expected a JSON object")
    schema_id, text, number = body.get("id"), body.get("schema"), body.get("version")
    if not isinstance(schema_id, int) or isinstance(schema_id, bool) or not 1 <= schema_id <= MAX_SCHEMA_ID:
        raise MalformedResponseError(url, f"id: expected a schema ID between 1 and {MAX_SCHEMA_ID}")
    if not isinstance(text, str) or not text:
        raise MalformedResponseError(url, "schema: expected the schema text")
    if number is not None and number != version:
        raise MalformedResponseError(url, f"version: asked for version {version}, got {number!r}")
    raw_type = body.get("schemaType") or "AVRO"
    try:
        fmt = SchemaFormat(raw_type)
    except ValueError:
        raise MalformedResponseError(
            url, f"schemaType: expected AVRO, JSON or PROTOBUF, got {raw_type!r}"
        ) from None
    return SourceVersion(
        subject=subject,
        version=version,
        schema_id=schema_id,
        format=fmt,
        schema=text,
        references=_references(body.get("references"), url),
        deleted=deleted,
        metadata=_contract_field(body, "metadata", url),
        rule_set=_contract_field(body, "ruleSet", url),
    )


async def _subject(
    source: SourceClient, name: str, policy: DeletedPolicy, global_level: CompatibilityLevel
) -> tuple[SourceSubject | None, list[int]]:
    """The subject with the versions the policy keeps, and the numbers of its soft-deleted versions left
    out (a kept version elsewhere may still need one of them)."""
    versions_path = path_of("subjects", name, "versions")
    try:
        live = _ints(await _list(source, versions_path, {}), source.url(versions_path), "versions")
    except SourceNotFoundError as missing:
        if missing.error_code not in (40401, 40404, None):  # subject not found, or soft-deleted
            raise
        live = []  # every version soft-deleted
    every = _ints(
        await _list(source, versions_path, {"deleted": True}), source.url(versions_path), "versions"
    )
    every = sorted(set(every) | set(live))
    live_set = set(live)
    wanted = every if policy is DeletedPolicy.ARCHIVE else live
    skipped = [v for v in every if v not in live_set and policy is DeletedPolicy.SKIP]
    if not wanted:
        return None, skipped
    fetched = await asyncio.gather(*(_version(source, name, v, v not in live_set) for v in wanted))
    level, mode = await asyncio.gather(_level(source, path_of("config", name)), _mode(source, name))
    return _assemble(name, list(fetched), level or global_level, mode), skipped


def _assemble(
    name: str,
    versions: Sequence[SourceVersion],
    level: CompatibilityLevel,
    mode: str | None,
) -> SourceSubject:
    formats = sorted({v.format for v in versions})
    if len(formats) > 1:
        raise ImportProblem(
            f'subject "{name}" has versions in several formats ({", ".join(formats)}); a kschema Subject '
            "has one format. Leave it out with --subjects, or split it in the source"
        )
    return SourceSubject(
        name=name,
        format=formats[0],
        compatibility=level,
        mode=mode,
        versions=tuple(sorted(versions, key=lambda v: v.version)),
    )


async def fetch_snapshot(
    source: SourceClient, selection: Selection, progress: Progress | None = None
) -> SourceSnapshot:
    """Reads the selected subjects. Raises `SourceError` (the source) or `ImportProblem` (the content)."""
    global_level = await _level(source, "/config") or CompatibilityLevel.BACKWARD
    live = _strings(await _list(source, "/subjects", {}), source.url("/subjects"), "subjects")
    everything = _strings(
        await _list(source, "/subjects", {"deleted": True}), source.url("/subjects"), "subjects"
    )
    names = sorted(set(live) | set(everything))
    selected = [s for s in names if selection.selects(s)]
    if selection.patterns and not selected:
        raise ImportProblem(
            f"--subjects {' '.join(selection.patterns)} selects none of the source's {len(names)} subjects"
        )

    done = 0
    gate = asyncio.Semaphore(_SUBJECTS_IN_FLIGHT)

    async def one(name: str) -> tuple[SourceSubject | None, list[int]]:
        nonlocal done
        async with gate:
            result = await _subject(source, name, selection.deleted, global_level)
        done += 1
        if progress is not None:
            progress(done, len(selected))
        return result

    results = await asyncio.gather(*(one(name) for name in selected))
    snapshot = SourceSnapshot(global_level, [s for s, _ in results if s is not None])
    skipped = {name: set(left_out) for name, (_, left_out) in zip(selected, results, strict=True)}
    await _close_references(source, snapshot, selection, skipped, set(names))
    return snapshot


async def _close_references(
    source: SourceClient,
    snapshot: SourceSnapshot,
    selection: Selection,
    skipped: dict[str, set[int]],
    known: set[str],
) -> None:
    """Every reference must point at an imported version. A soft-deleted version that a kept version
    references is brought in as ARCHIVED; anything else missing is an error naming both ends."""
    by_name = {s.name: s for s in snapshot.subjects}
    while True:
        present = {(v.subject, v.version) for s in by_name.values() for v in s.versions}
        wanted: dict[tuple[str, int], tuple[str, int]] = {}
        for holder in by_name.values():
            for v in holder.versions:
                for ref in v.references:
                    key = (ref.subject, ref.version)
                    if key not in present:
                        wanted.setdefault(key, (v.subject, v.version))
        if not wanted:
            break
        for (ref_subject, ref_version), (subject, version) in sorted(wanted.items()):
            referrer = f'subject "{subject}" version {version}'
            who = f'{referrer} references subject "{ref_subject}" version {ref_version}'
            if ref_subject not in known:
                raise ImportProblem(f"{who}, which the source does not have")
            if not selection.selects(ref_subject):
                raise ImportProblem(
                    f"{who}, which --subjects {' '.join(selection.patterns)} does not select; "
                    f"add a pattern that selects it (e.g. --subjects '{ref_subject}')"
                )
            if ref_version not in skipped.get(ref_subject, set()):
                raise ImportProblem(f"{who}, which the source does not have")
            try:
                fetched = await _version(source, ref_subject, ref_version, deleted=True)
            except SourceNotFoundError as error:
                # Apicurio, for one, stops serving the versions of a subject whose every version is
                # soft-deleted, even with deleted=true.
                raise ImportProblem(
                    f"{who}, which is soft-deleted in the source and which the source no longer serves "
                    f"({error}); restore it in the source, then import again"
                ) from None
            skipped[ref_subject].discard(ref_version)
            known_holder = by_name.get(ref_subject)
            if known_holder is None:
                level = await _level(source, path_of("config", ref_subject))
                holder = _assemble(
                    ref_subject,
                    [fetched],
                    level or snapshot.global_compatibility,
                    await _mode(source, ref_subject),
                )
            else:
                holder = _assemble(
                    ref_subject,
                    [*known_holder.versions, fetched],
                    known_holder.compatibility,
                    known_holder.mode,
                )
            by_name[ref_subject] = holder
            snapshot.notes.append(
                f'subject "{ref_subject}" version {ref_version} is soft-deleted in the source but {referrer} '
                "references it: imported as ARCHIVED so its ID keeps resolving"
            )
    snapshot.subjects = [s for _, s in sorted(by_name.items())]
