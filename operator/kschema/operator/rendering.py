"""What a Subject's ConfigMap holds: one key per served version (`v3.avsc`), the latest one again
(`latest.avsc`) and `versions.json` (version -> {id, state, data contract}). Pure: computed from the
store's versions, written by `configmaps.Projector`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kschema.contracts import Contract
from kschema.formats import SchemaFormat
from kschema.model import SchemaState
from kschema.store import SubjectVersion

EXTENSIONS = {SchemaFormat.AVRO: "avsc", SchemaFormat.JSON: "json", SchemaFormat.PROTOBUF: "proto"}
LATEST_STATES = (SchemaState.ACTIVE, SchemaState.DEPRECATED)  # DRAFT is never latest, ARCHIVED is hidden


@dataclass(frozen=True, slots=True)
class Projection:
    data: dict[str, str]
    latest_version: int | None
    version_count: int


def render(
    fmt: SchemaFormat,
    versions: Sequence[tuple[SubjectVersion, str]],
    contracts: Mapping[int, Contract] | None = None,
) -> Projection:
    """The ConfigMap data for the subject's not deleted versions (with their texts), by version.
    `versions.json` carries each version's ID, state and, when it has them, its data-contract `metadata`
    and `ruleSet` in Confluent's JSON shape."""
    contracts = contracts or {}
    ext = EXTENSIONS[fmt]
    ordered = sorted(versions, key=lambda pair: pair[0].version)
    served = [(v, text) for v, text in ordered if v.state is not SchemaState.ARCHIVED]
    data = {f"v{v.version}.{ext}": text for v, text in served}
    latest = [(v, text) for v, text in served if v.state in LATEST_STATES]
    if latest:
        data[f"latest.{ext}"] = latest[-1][1]
    data["versions.json"] = json.dumps(
        {
            str(v.version): {
                "id": v.schema_id,
                "state": str(v.state),
                **contracts.get(v.schema_id, Contract()).to_json(),
            }
            for v, _ in served
        },
        indent=2,
    )
    return Projection(data, latest[-1][0].version if latest else None, len(ordered))
