"""The webhook's snapshot of declared Subjects and Schemas: rebuilt after each change from the watched
objects, reading again only the objects that changed, and always the same as reading them all."""

from __future__ import annotations

from typing import Any

from kschema.compat import CompatibilityLevel
from kschema.model import schema_from_body
from kschema.webhook import cache as cache_module
from kschema.webhook.cache import DeclaredCache


def _schema(name: str, version: int, text: str = '"string"') -> dict[str, Any]:
    return {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Schema",
        "metadata": {"name": name, "namespace": "team-a", "resourceVersion": str(version)},
        "spec": {"subject": "orders", "version": version, "schema": text},
    }


def _subject() -> dict[str, Any]:
    return {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Subject",
        "metadata": {"name": "orders", "namespace": "team-a"},
        "spec": {"name": "orders", "format": "AVRO"},
    }


class _NoApi:
    """The cache only reads its collections here; nothing talks to an API server."""


def _cache() -> DeclaredCache:
    cache = DeclaredCache(_NoApi(), 300, CompatibilityLevel.BACKWARD)  # type: ignore[arg-type]
    cache._subjects.items = {("team-a", "orders"): _subject()}
    cache._schemas.items = {("team-a", f"orders-v{v}"): _schema(f"orders-v{v}", v) for v in (1, 2, 3)}
    cache._changed()
    return cache


def test_after_a_change_only_the_changed_object_is_read_again(monkeypatch: Any) -> None:
    cache = _cache()
    first = cache.catalog()
    assert [s.version for s in first.schemas] == [1, 2, 3]
    read: list[str] = []

    def counting(body: Any) -> Any:
        read.append(body["metadata"]["name"])
        return schema_from_body(body)

    monkeypatch.setattr(cache_module, "_schema", counting)
    changed = _schema("orders-v2", 2, '{"type": "string"}')
    cache._schemas.items[("team-a", "orders-v2")] = changed  # a watch event: a new body
    cache._changed()
    second = cache.catalog()
    assert read == ["orders-v2"]
    assert second is not first
    assert [s.schema for s in second.schemas] == ['"string"', '{"type": "string"}', '"string"']
    assert second.schemas[0] is first.schemas[0]  # the unchanged ones are the specs read before


def test_a_deleted_object_leaves_the_snapshot_and_an_unreadable_one_is_left_out() -> None:
    cache = _cache()
    cache.catalog()
    del cache._schemas.items[("team-a", "orders-v1")]
    cache._schemas.items[("team-a", "orders-v3")] = _schema("orders-v3", 3, "")  # no schema text
    cache._changed()
    assert [s.version for s in cache.catalog().schemas] == [2]
    assert len(cache._parsed_schemas) == 2  # what it remembers follows the watched objects
