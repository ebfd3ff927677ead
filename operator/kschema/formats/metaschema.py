"""A JSON Schema checked against its dialect's metaschema, remembering the subschemas found valid.

The metaschema check (`jsonschema`'s `check_schema`) is most of the cost of parsing a JSON Schema, and a
new version of a schema is mostly subschemas seen before (the fifty `{"type": "string"}` properties of a
record). Every supported metaschema validates a subschema under `properties`, `items`, `allOf`, ... against
the metaschema itself, wherever it sits, so a subschema is valid in any such position once it was valid
in one. A subschema found valid is remembered (by dialect and canonical JSON); the next check leaves the
remembered ones out (or puts `{}`, valid in every such position, in their place) and validates what is
left.

The check stays exact: a pruned schema is valid if and only if the whole one is. A pruned schema that
fails is checked again whole, so a refusal always carries the error `check_schema` itself reports.
Only the keywords below are followed: elsewhere (an unknown keyword, `$defs` in a draft before 2019-09) a
value is not validated as a schema, so it proves nothing about it.

What is remembered is bounded in entries and bytes, and so is the work spent computing keys: a
hostile schema can only make the check fall back to `check_schema` on the whole.
"""

from __future__ import annotations

import json
from typing import Any, Final

from jsonschema import exceptions, validators
from jsonschema.protocols import Validator

from kschema.formats.bounded import BoundedLRU
from kschema.formats.budget import LIMITS

__all__ = ["KnownValid", "check_schema"]

# Keywords whose values every supported metaschema (draft-04 to 2020-12) validates against itself.
_MAPS: Final = frozenset({"properties", "patternProperties", "definitions"})
_LISTS: Final = frozenset({"allOf", "anyOf", "oneOf"})
_SINGLES: Final = frozenset({"not", "additionalProperties", "items"})
_DEFS_DIALECTS: Final = (validators.Draft201909Validator, validators.Draft202012Validator)
# Maps whose metaschema constrains nothing but each value (no `propertyNames`, no size): a remembered
# entry is left out. Elsewhere it becomes `{}` (`patternProperties` keys must still be regular expressions,
# `allOf` must not become empty).
_DROPPABLE: Final = frozenset({"properties", "definitions", "$defs"})
_KNOWN: Final = object()

# A subschema larger than this is not remembered (nor looked up): the record types worth remembering
# are far smaller, and each entry's key is its canonical text.
MAX_KEY_CHARS: Final = 16 * 1024
# Canonical JSON written for keys per check, at most; past it the schema is checked whole.
MAX_KEY_WORK_CHARS: Final = 4 * 1024 * 1024
# Its bounds are the limits table's, with the other caches a worker keeps.
KNOWN_VALID_ENTRIES: Final = LIMITS.worker_metaschema_cache_entries
KNOWN_VALID_BYTES: Final = LIMITS.worker_metaschema_cache_bytes
# A key's bookkeeping (tuple, LRU node, dialect id) besides its characters.
_ENTRY_OVERHEAD: Final = 200


class KnownValid:
    """Subschemas found valid, by (metaschema id, canonical JSON), least recently used evicted first."""

    def __init__(self, max_entries: int = KNOWN_VALID_ENTRIES, max_bytes: int = KNOWN_VALID_BYTES) -> None:
        self.lru: BoundedLRU[tuple[str, str], bool] = BoundedLRU(max_entries, max_bytes)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return self.lru.get(key) is not None

    def add(self, key: tuple[str, str]) -> None:
        text = key[1]
        # A str holds one byte per character when all are ASCII, up to four otherwise.
        self.lru.put(key, True, len(text) * (1 if text.isascii() else 4) + _ENTRY_OVERHEAD)


# A parse runs in one process at a time per schema (the worker processes, the CLI); what one process has
# found valid holds for ever, since a metaschema never changes.
KNOWN_VALID: Final = KnownValid()


class _Pruning:
    def __init__(self, dialect: str, known: KnownValid, defs: bool) -> None:
        self.dialect = dialect
        self.known = known
        self.defs = defs
        self.work = 0
        self.unknown: list[tuple[str, str]] = []  # validated as part of this schema: remembered if it passes

    def node(self, node: dict[str, Any]) -> dict[str, Any]:
        """`node` with its remembered subschemas left out or replaced by `{}` (a copy if any was)."""
        replaced: dict[str, Any] = {}
        for keyword, value in node.items():
            if keyword in _MAPS or (keyword == "$defs" and self.defs):
                if isinstance(value, dict):
                    kept = {name: self.subschema(sub) for name, sub in value.items()}
                    if any(kept[name] is not value[name] for name in value):
                        if keyword in _DROPPABLE:
                            replaced[keyword] = {k: v for k, v in kept.items() if v is not _KNOWN}
                        else:
                            replaced[keyword] = {k: {} if v is _KNOWN else v for k, v in kept.items()}
            elif keyword in _LISTS:
                if isinstance(value, list):
                    items = [self.subschema(sub) for sub in value]
                    if any(a is not b for a, b in zip(items, value, strict=True)):
                        replaced[keyword] = [{} if item is _KNOWN else item for item in items]
            elif keyword in _SINGLES:
                pruned_value = self.subschema(value)
                if pruned_value is not value:
                    replaced[keyword] = {} if pruned_value is _KNOWN else pruned_value
        return {**node, **replaced} if replaced else node

    def subschema(self, value: Any) -> Any:
        """`_KNOWN` for a remembered subschema, else `value` pruned."""
        if not isinstance(value, dict) or not value or self.work > MAX_KEY_WORK_CHARS:
            return value
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        self.work += len(text)
        if self.work > MAX_KEY_WORK_CHARS:
            return value
        if len(text) <= MAX_KEY_CHARS:
            key = (self.dialect, text)
            if key in self.known:
                return _KNOWN
            self.unknown.append(key)
        return self.node(value)


def _metaschema_id(validator: type[Validator]) -> str:
    meta = validator.META_SCHEMA
    return str(meta.get("$id") or meta.get("id") or validator.__name__)


def check_schema(validator: type[Validator], contents: Any, known: KnownValid | None = None) -> None:
    """`validator.check_schema(contents)` (raises the same `SchemaError`), skipping the subschemas
    `known` (by default this process's `KNOWN_VALID`) holds and remembering the ones this check finds
    valid."""
    known = KNOWN_VALID if known is None else known
    if not isinstance(contents, dict):
        validator.check_schema(contents)
        return
    pruning = _Pruning(_metaschema_id(validator), known, issubclass(validator, _DEFS_DIALECTS))
    pruned = pruning.node(contents)
    if pruning.work > MAX_KEY_WORK_CHARS:
        validator.check_schema(contents)  # too much to key: checked whole, nothing remembered
        return
    if pruned is contents:
        validator.check_schema(contents)
    else:
        try:
            validator.check_schema(pruned)
        except exceptions.SchemaError:
            # Checked again whole, so the error is the one the whole schema gives (and were the pruned
            # schema ever to fail alone, the whole one decides).
            validator.check_schema(contents)
    for key in pruning.unknown:
        known.add(key)
