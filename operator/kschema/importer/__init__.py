"""`kschema import`: read a running Confluent-compatible registry over its REST API and write a directory
of Subject and Schema manifests that keeps every ID, version, level and reference; `--verify` compares
the source with a running kschema read API.

Layers: `source` (the bounded HTTP client), `snapshot` (what the source holds), `render` (manifests and
the atomic write), `verify` (the comparison). No Kubernetes client here: the output goes through Git and
`kubectl apply` like every other manifest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from kschema.importer.render import CONTRACTS_SUPPORTED, render, resource_name, write_directory
from kschema.importer.snapshot import (
    DeletedPolicy,
    ImportProblem,
    Progress,
    Selection,
    SourceSnapshot,
    fetch_snapshot,
)
from kschema.importer.source import (
    MalformedResponseError,
    SourceAuthError,
    SourceClient,
    SourceError,
    SourceSettings,
    SourceTimeoutError,
    SourceUnreachableError,
)
from kschema.importer.verify import Difference, compare

__all__ = [
    "DeletedPolicy",
    "Difference",
    "ImportProblem",
    "ImportResult",
    "MalformedResponseError",
    "Selection",
    "SourceAuthError",
    "SourceError",
    "SourceSettings",
    "SourceTimeoutError",
    "SourceUnreachableError",
    "import_registry",
    "resource_name",
    "verify_registry",
]


@dataclass(slots=True)
class ImportResult:
    subjects: int
    versions: int
    files: int
    requests: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def _contract_notes(snapshot: SourceSnapshot) -> list[str]:
    if CONTRACTS_SUPPORTED:
        return []
    left_out = [
        f'subject "{v.subject}" version {v.version}'
        for s in snapshot.subjects
        for v in s.versions
        if v.metadata is not None or v.rule_set is not None
    ]
    if not left_out:
        return []
    shown = ", ".join(left_out[:5]) + (f" and {len(left_out) - 5} more" if len(left_out) > 5 else "")
    return [f"metadata and ruleSet are not imported (this kschema has no data contracts yet): {shown}"]


async def import_registry(
    settings: SourceSettings,
    selection: Selection,
    out: Path,
    namespace: str | None,
    progress: Progress | None = None,
) -> ImportResult:
    """Reads the source and writes `out` atomically. Raises `SourceError` or `ImportProblem`; either way
    `out` is left as it was."""
    started = time.monotonic()
    async with SourceClient(settings) as source:
        snapshot = await fetch_snapshot(source, selection, progress)
        requests = source.requests
    files = render(snapshot, namespace, contracts=CONTRACTS_SUPPORTED)
    write_directory(files, out)
    return ImportResult(
        subjects=len(snapshot.subjects),
        versions=snapshot.version_count,
        files=len(files),
        requests=requests,
        seconds=time.monotonic() - started,
        notes=[*snapshot.notes, *_contract_notes(snapshot)],
    )


async def verify_registry(
    settings: SourceSettings,
    target: SourceSettings,
    selection: Selection,
    progress: Progress | None = None,
) -> list[Difference]:
    """Every difference between the selected subjects of the source and the kschema read API."""
    async with SourceClient(settings) as source, SourceClient(target) as kschema:
        snapshot = await fetch_snapshot(source, selection, progress)
        listed = await kschema.get_json("/subjects")
        names = (
            sorted(n for n in listed if isinstance(n, str) and selection.selects(n))
            if isinstance(listed, list)
            else []
        )
        return await compare(snapshot, kschema, names)
