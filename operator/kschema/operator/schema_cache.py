"""Stored schemas by ID, shared by registration and projection. An ID never changes its content, so an
entry never goes stale; a registration checks its version against earlier ones (and reads the contract
each was registered with), so without a cache a burst of n versions of one subject reads the same
schemas n²/2 times."""

from __future__ import annotations

from collections import OrderedDict

from kschema.store import RegistryStore, StoredSchema

CACHE_BYTES = 64 * 1024 * 1024  # schema texts (and canonical forms) held, at most


class SchemaCache:
    """Least recently used entries go first once the texts held pass `max_bytes`."""

    def __init__(self, store: RegistryStore, max_bytes: int = CACHE_BYTES) -> None:
        self._store = store
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[int, StoredSchema] = OrderedDict()

    async def get(self, schema_id: int) -> StoredSchema | None:
        """The stored schema (None when the store has none: such a miss is not cached). Store errors
        pass through."""
        found = self._entries.get(schema_id)
        if found is not None:
            self._entries.move_to_end(schema_id)
            return found
        found = await self._store.get_schema(schema_id)
        if found is None:
            return None
        if schema_id not in self._entries:
            self._entries[schema_id] = found
            self._bytes += _size(found)
            while self._bytes > self._max_bytes and len(self._entries) > 1:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= _size(evicted)
        return found


def _size(schema: StoredSchema) -> int:
    return len(schema.schema) + len(schema.canonical)
