"""Store fixtures parametrized over both backends, and helpers to build versions and check invariants."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kschema.formats import Reference, SchemaFormat
from kschema.model import SchemaState
from kschema.store.base import NewVersion, RegistryStore, Snapshot
from kschema.store.factory import store_from_url

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def avro_record(name: str, *fields: str) -> str:
    """A small Avro record schema text; its canonical form is the same text (already minimal)."""
    return json.dumps(
        {"type": "record", "name": name, "fields": [{"name": f, "type": "string"} for f in fields]},
        separators=(",", ":"),
    )


def fingerprint_of(fmt: SchemaFormat, canonical: str, references: tuple[Reference, ...] = ()) -> str:
    key = json.dumps([fmt.value, canonical, [[r.name, r.subject, r.version] for r in references]])
    return hashlib.sha256(key.encode()).hexdigest()


def new_version(
    subject: str,
    version: int,
    schema: str,
    namespace: str = "team-a",
    fmt: SchemaFormat = SchemaFormat.AVRO,
    state: SchemaState = SchemaState.ACTIVE,
    pinned_id: int | None = None,
    references: tuple[Reference, ...] = (),
    sunset: str | None = None,
) -> NewVersion:
    return NewVersion(
        subject=subject,
        version=version,
        namespace=namespace,
        format=fmt,
        schema=schema,
        canonical=schema,
        fingerprint=fingerprint_of(fmt, schema, references),
        references=references,
        state=state,
        pinned_id=pinned_id,
        sunset=sunset,
    )


def assert_consistent(snapshot: Snapshot) -> None:
    """The invariants every committed state must satisfy, whatever was interrupted."""
    ids = [s.id for s in snapshot.schemas]
    assert len(ids) == len(set(ids)), "a schema ID is assigned twice"
    contents = [(s.format, s.fingerprint) for s in snapshot.schemas]
    assert len(contents) == len(set(contents)), "one content has several IDs"
    by_id = {s.id: s for s in snapshot.schemas}
    subjects = {s.subject: s for s in snapshot.subjects}
    for v in snapshot.versions:
        assert v.schema_id in by_id, f"{v.subject} v{v.version} points at missing schema {v.schema_id}"
        assert v.subject in subjects, f"{v.subject} v{v.version} has no subject row"
        assert by_id[v.schema_id].format == subjects[v.subject].format
        if subjects[v.subject].deleted:
            assert v.deleted, f"{v.subject} is deleted but its version {v.version} is live"


def store_url_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    dsn: str = request.getfixturevalue("postgres_dsn")
    return dsn


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for an empty store, once per backend."""
    return store_url_for(request.param, request, tmp_path)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[RegistryStore]:
    """An opened, empty store, once per backend."""
    opened = store_from_url(store_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
