"""What a worker process keeps between tasks: parsed schemas by content, and reader/writer verdicts by
the contents of both sides.

Admission reviews of one subject compare each new version with the same declared history. Parsing
that history and checking the same pairs again is most of a review's cost, and none of it can change:
a parsed schema depends only on its text and the texts of its references, a verdict only on the two
parsed schemas (and the rules of this build). So both are cached under a *content key*: a SHA-256 of
the format, the schema text and, recursively, the name, subject, version and text of every reference.
Never under a subject and version number alone: a Schema deleted and declared again may carry other
content under the same number.

Both caches are bounded least-recently-used maps with a cap on entries and on (estimated) bytes, so a
client that keeps sending new schemas only evicts older entries; it cannot grow a worker past its
memory limit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from kschema.compat import Issue
from kschema.formats import ParsedSchema, ResolvedReference, SchemaFormat, parse_schema
from kschema.formats.bounded import BoundedLRU

__all__ = ["BoundedLRU", "ComparisonCache", "ParseCache", "VerdictCache", "content_key"]

# Bytes a parsed schema holds per byte of its text(s), measured with tracemalloc on the formats' own
# corpora and on 50-field records (tests/unit/test_worker_caches.py checks that these stay above what a
# parse really allocates). Protobuf's descriptors live in the C library, out of tracemalloc's sight; its
# figure also covers the generated descriptor set and a generous margin.
BYTES_PER_TEXT_BYTE: Final[dict[SchemaFormat, int]] = {
    SchemaFormat.AVRO: 24,
    SchemaFormat.JSON: 40,
    SchemaFormat.PROTOBUF: 40,
}
# A parsed schema's fixed overhead (objects, validator, registry), whatever its size.
PARSED_OVERHEAD_BYTES: Final = 16 * 1024
# A verdict entry: the two keys, the tuple and per issue its three strings and the object.
VERDICT_OVERHEAD_BYTES: Final = 400
ISSUE_OVERHEAD_BYTES: Final = 200


def content_key(fmt: SchemaFormat, text: str, references: tuple[ResolvedReference, ...]) -> bytes:
    """SHA-256 of everything a parse depends on. A version reached along several paths of a reference
    DAG is hashed once (the resolver shares its nested tuple), so the cost is the DAG's size."""
    done: dict[int, bytes] = {}

    def of_refs(refs: tuple[ResolvedReference, ...]) -> bytes:
        known = done.get(id(refs))
        if known is not None:
            return known
        digest = hashlib.sha256()
        for ref in refs:
            r = ref.reference
            for part in (r.name, r.subject, str(r.version), ref.schema):
                data = part.encode("utf-8", "surrogatepass")
                digest.update(len(data).to_bytes(8, "big"))
                digest.update(data)
            digest.update(of_refs(ref.references))
        done[id(refs)] = value = digest.digest()
        return value

    digest = hashlib.sha256(fmt.value.encode())
    data = text.encode("utf-8", "surrogatepass")
    digest.update(len(data).to_bytes(8, "big"))
    digest.update(data)
    digest.update(of_refs(references))
    return digest.digest()


def _text_bytes(text: str, references: tuple[ResolvedReference, ...]) -> int:
    """Characters of the schema and of each distinct referenced text."""
    seen: set[int] = set()
    total = len(text)
    todo = list(references)
    while todo:
        ref = todo.pop()
        if id(ref.references) not in seen:
            seen.add(id(ref.references))
            todo.extend(ref.references)
        total += len(ref.schema)
    return total


@dataclass(frozen=True, slots=True)
class _Entry:
    key: bytes
    parsed: ParsedSchema


class ParseCache:
    """Parsed schemas by content key. `key_of(parsed)` gives the content key of a parsed schema while it
    is cached (for the verdict cache); an evicted one has none, and its verdicts are not remembered."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._lru: BoundedLRU[bytes, ParsedSchema] = BoundedLRU(max_entries, max_bytes, self._evicted)
        self._keys: dict[int, bytes] = {}
        # The content keys of the cached schemas without references, by format and text: a review sends
        # the same hundred texts again and again, and a dictionary lookup costs a fifth of a SHA-256.
        self._by_text: dict[SchemaFormat, dict[str, bytes]] = {fmt: {} for fmt in SchemaFormat}

    @property
    def lru(self) -> BoundedLRU[bytes, ParsedSchema]:
        return self._lru

    def _evicted(self, key: bytes, parsed: ParsedSchema) -> None:
        if self._keys.get(id(parsed)) == key:
            del self._keys[id(parsed)]
        by_text = self._by_text[parsed.format]
        if by_text.get(parsed.raw) == key:
            del by_text[parsed.raw]

    def parse(self, fmt: SchemaFormat, text: str, references: tuple[ResolvedReference, ...]) -> ParsedSchema:
        if not references:
            known = self._by_text[fmt].get(text)
            if known is not None:
                found = self._lru.get(known)
                if found is not None:
                    return found
        key = content_key(fmt, text, references)
        found = self._lru.get(key)
        if found is not None:
            return found
        parsed = parse_schema(fmt, text, references)  # raises InvalidSchemaError: nothing is kept
        cost = PARSED_OVERHEAD_BYTES + BYTES_PER_TEXT_BYTE[fmt] * _text_bytes(text, references)
        self._lru.put(key, parsed, cost)
        if key in self._lru:  # not kept when it alone costs more than the whole cache may hold
            self._keys[id(parsed)] = key
            if not references and parsed.raw == text:
                self._by_text[fmt][parsed.raw] = key
        return parsed

    def key_of(self, parsed: ParsedSchema) -> bytes | None:
        return self._keys.get(id(parsed))


class VerdictCache:
    """Reader/writer verdicts by the content keys of both sides (a `VerdictMemo`). The key also names the
    direction: (reader, writer) and (writer, reader) are two verdicts."""

    def __init__(self, parsed: ParseCache, max_entries: int, max_bytes: int) -> None:
        self._parsed = parsed
        self._lru: BoundedLRU[tuple[bytes, bytes], tuple[Issue, ...]] = BoundedLRU(max_entries, max_bytes)

    @property
    def lru(self) -> BoundedLRU[tuple[bytes, bytes], tuple[Issue, ...]]:
        return self._lru

    def _key(self, reader: ParsedSchema, writer: ParsedSchema) -> tuple[bytes, bytes] | None:
        reader_key, writer_key = self._parsed.key_of(reader), self._parsed.key_of(writer)
        if reader_key is None or writer_key is None:
            return None
        return reader_key, writer_key

    def get(self, reader: ParsedSchema, writer: ParsedSchema) -> tuple[Issue, ...] | None:
        key = self._key(reader, writer)
        return None if key is None else self._lru.get(key)

    def put(self, reader: ParsedSchema, writer: ParsedSchema, issues: tuple[Issue, ...]) -> None:
        key = self._key(reader, writer)
        if key is None:
            return
        cost = VERDICT_OVERHEAD_BYTES + sum(
            ISSUE_OVERHEAD_BYTES + len(i.location) + len(i.rule) + len(i.message) for i in issues
        )
        self._lru.put(key, issues, cost)


# A kept comparison: the tuple, the two keys' objects, and per finding its object and path.
COMPARISON_OVERHEAD_BYTES: Final = 300
FINDING_OVERHEAD_BYTES: Final = 150


class ComparisonCache:
    """Comparisons of schema parts by the content keys of both parts (a `ComparisonMemo`): most of a new
    version's parts were compared with the history's before, in another review."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._lru: BoundedLRU[tuple[str, str], tuple[Any, ...]] = BoundedLRU(max_entries, max_bytes)

    @property
    def lru(self) -> BoundedLRU[tuple[str, str], tuple[Any, ...]]:
        return self._lru

    def get(self, key: tuple[str, str]) -> Sequence[Any] | None:
        return self._lru.get(key)

    def put(self, key: tuple[str, str], found: Sequence[Any]) -> None:
        cost = COMPARISON_OVERHEAD_BYTES + len(key[0]) + len(key[1])
        cost += sum(FINDING_OVERHEAD_BYTES + len(str(getattr(f, "path", ""))) for f in found)
        self._lru.put(key, tuple(found), cost)
