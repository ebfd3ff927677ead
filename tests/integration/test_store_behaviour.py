"""The registry store's behaviour, once against SQLite and once against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from kschema.compat import CompatibilityLevel
from kschema.formats import Reference, SchemaFormat
from kschema.model import SchemaState
from kschema.store.base import (
    MAX_BATCH,
    MAX_SCHEMA_BYTES,
    FormatConflictError,
    IdConflictError,
    InvalidInputError,
    NewVersion,
    NotFoundError,
    RegistryStore,
    Snapshot,
    StoreUnavailableError,
    SubjectOwnedElsewhereError,
    SubjectRecord,
    VersionConflictError,
)
from kschema.store.factory import store_from_url
from tests.harness.stores import assert_consistent, avro_record, new_version

ORDER_V1 = avro_record("Order", "id")
ORDER_V2 = avro_record("Order", "id", "note")
ORDER_V3 = avro_record("Order", "id", "note", "cost")


def subject_record(
    subject: str,
    namespace: str = "team-a",
    fmt: SchemaFormat = SchemaFormat.AVRO,
    compatibility: CompatibilityLevel = CompatibilityLevel.BACKWARD,
    description: str = "",
) -> SubjectRecord:
    return SubjectRecord(subject, namespace, fmt, compatibility, deleted=False, description=description)


async def state_of(store: RegistryStore) -> tuple[Snapshot, list[Any]]:
    snapshot = await store.snapshot()
    return snapshot, await store.changes(0, limit=100_000)


# IDs ---------------------------------------------------------------------------------------------------


async def test_the_same_schema_gets_the_same_id_in_every_subject(store: RegistryStore) -> None:
    first = await store.register(new_version("orders-value", 1, ORDER_V1))
    second = await store.register(new_version("orders-archive-value", 7, ORDER_V1))

    assert first.schema_id == second.schema_id
    assert [s.id for s in (await store.snapshot()).schemas] == [first.schema_id]
    found = await store.find_schema(new_version("x", 1, ORDER_V1).fingerprint)
    assert found is not None
    assert found.id == first.schema_id
    assert {(v.subject, v.version) for v in await store.versions_of_schema(first.schema_id)} == {
        ("orders-value", 1),
        ("orders-archive-value", 7),
    }


async def test_new_schemas_get_increasing_ids(store: RegistryStore) -> None:
    ids = [
        (await store.register(new_version("orders-value", n, body))).schema_id
        for n, body in enumerate([ORDER_V1, ORDER_V2, ORDER_V3], start=1)
    ]

    assert ids == sorted(ids)
    assert len(set(ids)) == 3


async def test_ids_are_never_reused_after_every_version_and_subject_is_deleted(store: RegistryStore) -> None:
    old = [
        (await store.register(new_version("orders-value", n, b))).schema_id
        for n, b in [(1, ORDER_V1), (2, ORDER_V2)]
    ]
    await store.delete_version("orders-value", 2)
    await store.delete_subject("orders-value", "team-a")

    fresh = await store.register(new_version("payments-value", 1, avro_record("Payment", "id")))

    assert fresh.schema_id > max(old)
    for schema_id in old:
        assert await store.get_schema(schema_id) is not None


async def test_batched_reads_return_the_rows_named_once_deleted_included(store: RegistryStore) -> None:
    first = await store.register(new_version("orders-value", 1, ORDER_V1))
    second = await store.register(new_version("orders-value", 2, ORDER_V2))
    await store.delete_version("orders-value", 2)
    keys = [("orders-value", 2), ("orders-value", 1), ("orders-value", 9), ("nope", 1), ("orders-value", 1)]
    keys += [("orders-value", 0), ("orders-value", -3)]

    found = await store.get_versions(keys)

    assert sorted((v.version, v.deleted) for v in found) == [(1, False), (2, True)]
    schemas = await store.get_schemas([second.schema_id, first.schema_id, 10**9, first.schema_id, 0, -1])
    assert sorted(s.id for s in schemas) == sorted({first.schema_id, second.schema_id})
    assert {s.schema for s in schemas} == {ORDER_V1, ORDER_V2}
    assert await store.get_versions([]) == []
    assert await store.get_schemas([]) == []


async def test_a_batched_read_of_more_rows_than_a_batch_is_refused(store: RegistryStore) -> None:
    with pytest.raises(InvalidInputError) as versions:
        await store.get_versions([("orders-value", n) for n in range(1, MAX_BATCH + 2)])
    with pytest.raises(InvalidInputError) as schemas:
        await store.get_schemas(list(range(1, MAX_BATCH + 2)))

    assert (versions.value.field, schemas.value.field) == ("keys", "schema_ids")
    assert len(await store.get_versions([("orders-value", n) for n in range(1, MAX_BATCH + 1)])) == 0


async def test_a_free_pinned_id_is_used_and_later_ids_come_from_the_allocator(store: RegistryStore) -> None:
    pinned = await store.register(new_version("orders-value", 1, ORDER_V1, pinned_id=1000))
    after = await store.register(new_version("orders-value", 2, ORDER_V2))

    assert pinned.schema_id == 1000
    assert after.schema_id == 1  # the pin neither moved nor steered the sequence


async def test_ids_imported_with_pins_are_skipped_by_the_allocator(store: RegistryStore) -> None:
    for i in range(1, 6):
        await store.register(new_version(f"imported-{i}", 1, avro_record(f"Imported{i}", "id"), pinned_id=i))

    fresh = await store.register(new_version("orders-value", 1, ORDER_V1))

    assert fresh.schema_id == 6


async def test_a_free_pinned_id_below_other_pins_is_used_and_never_moves_the_sequence(
    store: RegistryStore,
) -> None:
    await store.register(new_version("orders-value", 1, ORDER_V1, pinned_id=50))

    low = await store.register(new_version("orders-value", 2, ORDER_V2, pinned_id=7))
    next_free = await store.register(new_version("orders-value", 3, ORDER_V3))

    assert low.schema_id == 7
    assert next_free.schema_id == 1


async def test_the_allocator_skips_ids_that_pins_took(store: RegistryStore) -> None:
    first = await store.register(new_version("orders-value", 1, ORDER_V1))
    await store.register(new_version("orders-value", 2, ORDER_V2, pinned_id=first.schema_id + 1))
    await store.register(new_version("orders-value", 3, ORDER_V3, pinned_id=first.schema_id + 2))

    after = await store.register(new_version("payments-value", 1, avro_record("Payment", "id")))

    assert after.schema_id == first.schema_id + 3
    assert_consistent(await store.snapshot())


async def test_a_pin_at_the_top_of_the_id_range_never_exhausts_allocation(store: RegistryStore) -> None:
    top = 2**31 - 1
    await store.upsert_subject(subject_record("pinned-value", namespace="team-a"))
    pinned = await store.register(new_version("pinned-value", 1, ORDER_V1, namespace="team-a", pinned_id=top))

    other = await store.register(
        new_version("payments-value", 1, avro_record("Payment", "id"), namespace="team-b")
    )
    await store.delete_version("pinned-value", 1)
    await store.delete_subject("pinned-value", "team-a")
    later = await store.register(
        new_version("invoices-value", 1, avro_record("Invoice", "id"), namespace="team-c")
    )

    assert pinned.schema_id == top
    assert other.schema_id == 1
    assert later.schema_id == 2
    assert (await store.get_schema(top)) is not None  # deleted, still resolving, never reused


async def test_a_pinned_id_held_by_the_same_content_is_accepted(store: RegistryStore) -> None:
    first = await store.register(new_version("orders-value", 1, ORDER_V1))

    again = await store.register(new_version("orders-copy-value", 1, ORDER_V1, pinned_id=first.schema_id))

    assert again.schema_id == first.schema_id


async def test_a_pinned_id_held_by_other_content_is_an_id_conflict_and_changes_nothing(
    store: RegistryStore,
) -> None:
    first = await store.register(new_version("orders-value", 1, ORDER_V1))
    before = await state_of(store)

    with pytest.raises(IdConflictError) as caught:
        await store.register(new_version("orders-value", 2, ORDER_V2, pinned_id=first.schema_id))

    assert caught.value.field == "pinned_id"
    assert await state_of(store) == before


async def test_pinning_another_id_for_content_that_already_has_one_is_an_id_conflict(
    store: RegistryStore,
) -> None:
    first = await store.register(new_version("orders-value", 1, ORDER_V1))
    before = await state_of(store)

    with pytest.raises(IdConflictError, match=str(first.schema_id)):
        await store.register(new_version("orders-copy-value", 1, ORDER_V1, pinned_id=first.schema_id + 10))

    assert await state_of(store) == before


# Versions ----------------------------------------------------------------------------------------------


async def test_registering_the_same_version_again_returns_it_and_appends_nothing(
    store: RegistryStore,
) -> None:
    first = await store.register(new_version("orders-value", 1, ORDER_V1))
    before = await state_of(store)

    again = await store.register(new_version("orders-value", 1, ORDER_V1))

    assert again == first
    assert await state_of(store) == before


async def test_other_content_at_an_existing_version_is_a_version_conflict_and_changes_nothing(
    store: RegistryStore,
) -> None:
    await store.register(new_version("orders-value", 1, ORDER_V1))
    before = await state_of(store)

    with pytest.raises(VersionConflictError) as caught:
        await store.register(new_version("orders-value", 1, ORDER_V2))

    assert caught.value.field == "version"
    assert await state_of(store) == before


async def test_a_deleted_version_is_hidden_but_its_id_keeps_resolving(store: RegistryStore) -> None:
    v1 = await store.register(new_version("orders-value", 1, ORDER_V1))
    await store.register(new_version("orders-value", 2, ORDER_V2))

    await store.delete_version("orders-value", 1)
    await store.delete_version("orders-value", 1)  # idempotent
    await store.delete_version("orders-value", 99)  # never registered: nothing to do

    assert [v.version for v in await store.list_versions("orders-value")] == [2]
    assert [v.version for v in await store.list_versions("orders-value", include_deleted=True)] == [1, 2]
    assert await store.get_version("orders-value", 1) is None
    tombstone = await store.get_version("orders-value", 1, include_deleted=True)
    assert tombstone is not None
    assert tombstone.deleted
    schema = await store.get_schema(v1.schema_id)
    assert schema is not None
    assert schema.schema == ORDER_V1
    assert await store.versions_of_schema(v1.schema_id) == []
    assert len(await store.versions_of_schema(v1.schema_id, include_deleted=True)) == 1


async def test_registering_a_deleted_version_again_undeletes_it_with_the_new_state(
    store: RegistryStore,
) -> None:
    first = await store.register(new_version("orders-value", 1, ORDER_V1))
    await store.delete_version("orders-value", 1)

    again = await store.register(
        new_version("orders-value", 1, ORDER_V1, state=SchemaState.DEPRECATED, sunset="2030-01-01")
    )

    assert again.schema_id == first.schema_id
    assert not again.deleted
    assert again.state is SchemaState.DEPRECATED
    assert await store.get_version("orders-value", 1) == again


async def test_versions_are_listed_by_number_whatever_the_order_they_arrived_in(store: RegistryStore) -> None:
    for number, body in [(3, ORDER_V3), (1, ORDER_V1), (2, ORDER_V2)]:
        await store.register(new_version("orders-value", number, body))

    assert [v.version for v in await store.list_versions("orders-value")] == [1, 2, 3]


async def test_set_state_changes_state_and_sunset(store: RegistryStore) -> None:
    await store.register(new_version("orders-value", 1, ORDER_V1))

    await store.set_state("orders-value", 1, SchemaState.DEPRECATED, sunset="2031-06-30")

    found = await store.get_version("orders-value", 1)
    assert found is not None
    assert (found.state, found.sunset) == (SchemaState.DEPRECATED, "2031-06-30")
    with pytest.raises(NotFoundError):
        await store.set_state("orders-value", 2, SchemaState.ARCHIVED)


async def test_references_are_stored_with_the_schema(store: RegistryStore) -> None:
    await store.register(new_version("customer-value", 1, avro_record("Customer", "id")))
    refs = (Reference("Customer", "customer-value", 1),)

    registered = await store.register(new_version("orders-value", 1, ORDER_V1, references=refs))

    schema = await store.get_schema(registered.schema_id)
    assert schema is not None
    assert schema.references == refs


# Subjects and namespaces -------------------------------------------------------------------------------


async def test_registering_creates_the_subject_in_the_registering_namespace(store: RegistryStore) -> None:
    await store.register(new_version("orders-value", 1, ORDER_V1, namespace="shop"))

    subject = await store.get_subject("orders-value")
    assert subject is not None
    assert (subject.namespace, subject.format, subject.compatibility) == (
        "shop",
        SchemaFormat.AVRO,
        CompatibilityLevel.BACKWARD,
    )


async def test_upserting_a_subject_updates_its_config(store: RegistryStore) -> None:
    await store.upsert_subject(subject_record("orders-value"))

    updated = await store.upsert_subject(
        subject_record("orders-value", compatibility=CompatibilityLevel.FULL, description="orders")
    )

    assert await store.get_subject("orders-value") == updated
    assert updated.compatibility is CompatibilityLevel.FULL
    assert [s.subject for s in await store.list_subjects()] == ["orders-value"]


async def test_a_subject_owned_by_another_namespace_is_refused_everywhere(store: RegistryStore) -> None:
    await store.upsert_subject(subject_record("orders-value", namespace="team-a"))
    await store.register(new_version("orders-value", 1, ORDER_V1, namespace="team-a"))
    before = await state_of(store)

    with pytest.raises(SubjectOwnedElsewhereError):
        await store.upsert_subject(subject_record("orders-value", namespace="team-b"))
    with pytest.raises(SubjectOwnedElsewhereError):
        await store.register(new_version("orders-value", 2, ORDER_V2, namespace="team-b"))
    with pytest.raises(SubjectOwnedElsewhereError):
        await store.delete_subject("orders-value", "team-b")

    assert await state_of(store) == before


async def test_a_deleted_subject_stays_owned_by_its_namespace(store: RegistryStore) -> None:
    await store.upsert_subject(subject_record("orders-value", namespace="team-a"))
    await store.register(new_version("orders-value", 1, ORDER_V1, namespace="team-a"))
    await store.delete_subject("orders-value", "team-a")
    before = await state_of(store)

    with pytest.raises(SubjectOwnedElsewhereError, match=r"owned by namespace 'team-a'.*transfer-to"):
        await store.upsert_subject(subject_record("orders-value", namespace="team-b"))
    with pytest.raises(SubjectOwnedElsewhereError, match="team-a"):
        await store.register(new_version("orders-value", 1, ORDER_V1, namespace="team-b"))
    with pytest.raises(SubjectOwnedElsewhereError, match="team-a"):
        await store.delete_subject("orders-value", "team-b")

    assert await state_of(store) == before
    # The owner itself takes it back.
    await store.upsert_subject(subject_record("orders-value", namespace="team-a"))
    assert (await store.get_subject("orders-value")) is not None


async def test_a_transfer_declared_by_the_owner_lets_the_named_namespace_claim_after_deletion(
    store: RegistryStore,
) -> None:
    await store.upsert_subject(subject_record("orders-value", namespace="team-a"))
    first = await store.register(new_version("orders-value", 1, ORDER_V1, namespace="team-a"))
    await store.upsert_subject(
        replace(subject_record("orders-value", namespace="team-a"), transfer_to="team-b")
    )

    # Declared but the owner's Subject still lives: nobody else may claim it yet.
    with pytest.raises(SubjectOwnedElsewhereError):
        await store.upsert_subject(subject_record("orders-value", namespace="team-b"))
    await store.delete_subject("orders-value", "team-a")
    # Only the named namespace may claim it.
    with pytest.raises(SubjectOwnedElsewhereError):
        await store.upsert_subject(subject_record("orders-value", namespace="team-c"))

    claimed = await store.upsert_subject(subject_record("orders-value", namespace="team-b"))
    again = await store.register(new_version("orders-value", 1, ORDER_V1, namespace="team-b"))

    assert await store.get_subject("orders-value") == claimed
    assert claimed.transfer_to is None  # used up: the new owner declares its own transfers
    assert again.schema_id == first.schema_id  # the history and its IDs come along
    with pytest.raises(VersionConflictError):  # and stay immutable for the new owner
        await store.register(new_version("orders-value", 1, ORDER_V2, namespace="team-b"))
    with pytest.raises(SubjectOwnedElsewhereError, match="team-b"):
        await store.upsert_subject(subject_record("orders-value", namespace="team-a"))


async def test_the_format_of_a_subject_never_changes(store: RegistryStore) -> None:
    await store.register(new_version("orders-value", 1, ORDER_V1))
    before = await state_of(store)

    with pytest.raises(FormatConflictError):
        await store.upsert_subject(subject_record("orders-value", fmt=SchemaFormat.JSON))
    with pytest.raises(FormatConflictError):
        await store.register(new_version("orders-value", 2, '{"type":"object"}', fmt=SchemaFormat.JSON))

    assert await state_of(store) == before


async def test_the_same_text_in_two_formats_is_two_schemas(store: RegistryStore) -> None:
    text = '{"type":"string"}'
    avro = await store.register(new_version("a-value", 1, text, fmt=SchemaFormat.AVRO))
    json_schema = await store.register(
        NewVersion(
            "j-value", 1, "team-a", SchemaFormat.JSON, text, text, new_version("a", 1, text).fingerprint
        )
    )

    assert avro.schema_id != json_schema.schema_id


async def test_deleting_a_subject_tombstones_its_versions_and_their_ids_keep_resolving(
    store: RegistryStore,
) -> None:
    v1 = await store.register(new_version("orders-value", 1, ORDER_V1))
    await store.register(new_version("orders-value", 2, ORDER_V2))

    await store.delete_subject("orders-value", "team-a")
    await store.delete_subject("orders-value", "team-a")  # idempotent
    await store.delete_subject("never-existed", "team-a")

    assert await store.get_subject("orders-value") is None
    deleted = await store.get_subject("orders-value", include_deleted=True)
    assert deleted is not None
    assert deleted.deleted
    assert await store.list_subjects() == []
    assert await store.list_versions("orders-value") == []
    assert await store.get_schema(v1.schema_id) is not None
    assert_consistent(await store.snapshot())


async def test_re_registering_into_a_deleted_subject_revives_only_that_version(store: RegistryStore) -> None:
    await store.register(new_version("orders-value", 1, ORDER_V1))
    await store.register(new_version("orders-value", 2, ORDER_V2))
    await store.delete_subject("orders-value", "team-a")

    await store.register(new_version("orders-value", 2, ORDER_V2))

    assert await store.get_subject("orders-value") is not None
    assert [v.version for v in await store.list_versions("orders-value")] == [2]


# Bad input ---------------------------------------------------------------------------------------------


BAD_VERSIONS: list[tuple[str, dict[str, Any]]] = [
    ("subject", {"subject": "s" * 256}),
    ("subject", {"subject": ""}),
    ("subject", {"subject": "bad\nname"}),
    ("version", {"version": 0}),
    ("version", {"version": -3}),
    ("version", {"version": 2**31}),
    ("state", {"state": "RETIRED"}),
    ("format", {"format": "XML"}),
    ("namespace", {"namespace": ""}),
    ("pinned_id", {"pinned_id": 0}),
    ("pinned_id", {"pinned_id": 2**31}),
    ("sunset", {"sunset": "next tuesday"}),
    ("schema", {"schema": ""}),
    ("schema", {"schema": "x" * (MAX_SCHEMA_BYTES + 1)}),
    ("schema", {"schema": "nul\x00inside"}),
    ("fingerprint", {"fingerprint": ""}),
    ("version", {"references": (Reference("Customer", "customer-value", 0),)}),
]


@pytest.mark.parametrize(
    ("field", "change"), BAD_VERSIONS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_VERSIONS)]
)
async def test_bad_input_is_refused_naming_the_field_and_changes_nothing(
    store: RegistryStore, field: str, change: dict[str, Any]
) -> None:
    await store.register(new_version("orders-value", 1, ORDER_V1))
    before = await state_of(store)
    bad = replace(new_version("orders-value", 2, ORDER_V2), **change)

    with pytest.raises(InvalidInputError) as caught:
        await store.register(bad)

    assert caught.value.field == field
    assert await state_of(store) == before


async def test_bad_subject_records_and_states_are_refused(store: RegistryStore) -> None:
    await store.register(new_version("orders-value", 1, ORDER_V1))
    before = await state_of(store)

    with pytest.raises(InvalidInputError, match="compatibility"):
        await store.upsert_subject(replace(subject_record("orders-value"), compatibility="SIDEWAYS"))  # type: ignore[arg-type]  # bad input on purpose
    with pytest.raises(InvalidInputError, match="state"):
        await store.set_state("orders-value", 1, "GONE")  # type: ignore[arg-type]  # bad input on purpose
    with pytest.raises(InvalidInputError, match="version"):
        await store.delete_version("orders-value", 0)

    assert await state_of(store) == before


async def test_lookups_of_impossible_ids_find_nothing(store: RegistryStore) -> None:
    assert await store.get_schema(0) is None
    assert await store.get_schema(2**70) is None
    assert await store.get_version("orders-value", 2**40) is None


# Change feed -------------------------------------------------------------------------------------------


async def test_every_write_appends_to_the_change_feed_in_order(store: RegistryStore) -> None:
    await store.upsert_subject(subject_record("orders-value"))
    v1 = await store.register(new_version("orders-value", 1, ORDER_V1))
    await store.set_state("orders-value", 1, SchemaState.DEPRECATED)
    await store.delete_version("orders-value", 1)

    feed = await store.changes(0)

    assert [(c.kind, c.subject, c.version, c.schema_id) for c in feed] == [
        ("subject", "orders-value", None, None),
        ("schema", None, None, v1.schema_id),
        ("version", "orders-value", 1, v1.schema_id),
        ("version", "orders-value", 1, v1.schema_id),
        ("version", "orders-value", 1, v1.schema_id),
    ]
    seqs = [c.seq for c in feed]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert [c.seq for c in await store.changes(seqs[1], limit=2)] == seqs[2:4]


async def test_a_snapshot_and_the_changes_after_its_seq_cover_everything(store: RegistryStore) -> None:
    await store.register(new_version("orders-value", 1, ORDER_V1))
    snapshot = await store.snapshot()
    await store.register(new_version("orders-value", 2, ORDER_V2))

    later = await store.changes(snapshot.seq)

    assert [v.version for v in snapshot.versions] == [1]
    assert {(c.kind, c.version) for c in later} == {("schema", None), ("version", 2)}
    assert all(c.seq > snapshot.seq for c in later)


async def test_a_snapshot_taken_during_writes_matches_its_seq(store: RegistryStore) -> None:
    """Writers run while snapshots are taken: each snapshot holds exactly the versions whose change
    entries are at or below its seq."""

    async def write() -> None:
        for n in range(1, 41):
            await store.register(new_version("orders-value", n, avro_record("Order", f"f{n}")))

    writer = asyncio.create_task(write())
    snapshots = []
    while not writer.done():
        snapshots.append(await store.snapshot())
    await writer
    feed = await store.changes(0, limit=10_000)

    for snapshot in snapshots:
        expected = {c.version for c in feed if c.kind == "version" and c.seq <= snapshot.seq}
        assert {v.version for v in snapshot.versions} == expected
        assert_consistent(snapshot)


async def test_wait_for_changes_returns_when_a_write_lands(store: RegistryStore) -> None:
    await store.register(new_version("orders-value", 1, ORDER_V1))
    seq = (await store.snapshot()).seq
    waiter = asyncio.create_task(store.wait_for_changes(seq, timeout=60))

    await store.register(new_version("orders-value", 2, ORDER_V2))

    await asyncio.wait_for(waiter, timeout=10)
    assert [c.seq for c in await store.changes(seq)] != []


async def test_wait_for_changes_returns_after_its_timeout_when_nothing_happens(store: RegistryStore) -> None:
    seq = (await store.snapshot()).seq

    await asyncio.wait_for(store.wait_for_changes(seq, timeout=0.2), timeout=10)

    assert await store.changes(seq) == []


# Migrations and availability ---------------------------------------------------------------------------


async def test_opening_again_runs_no_migration_twice_and_keeps_the_data(
    store: RegistryStore, store_url: str
) -> None:
    first = await store.register(new_version("orders-value", 1, ORDER_V1))

    for _ in range(2):
        again = store_from_url(store_url)
        await again.open()
        assert await again.get_version("orders-value", 1) == first
        await again.close()
    assert await store.get_version("orders-value", 1) == first


async def test_several_stores_opening_an_empty_database_at_once_migrate_it_once(store_url: str) -> None:
    stores = [store_from_url(store_url) for _ in range(4)]

    await asyncio.gather(*(s.open() for s in stores))
    try:
        results = await asyncio.gather(
            *(s.register(new_version("orders-value", 1, ORDER_V1)) for s in stores)
        )
        assert len({r.schema_id for r in results}) == 1
    finally:
        for s in stores:
            await s.close()


async def test_a_closed_store_reports_unavailable(store_url: str) -> None:
    store = store_from_url(store_url)
    await store.open()
    await store.ping()
    await store.close()

    with pytest.raises(StoreUnavailableError):
        await store.ping()
    with pytest.raises(StoreUnavailableError):
        await store.register(new_version("orders-value", 1, ORDER_V1))


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("sqlite:////nonexistent-dir/kschema/registry.db", id="sqlite"),
        pytest.param("postgresql://postgres@127.0.0.1:1/none", id="postgres"),
    ],
)
async def test_an_unreachable_database_raises_store_unavailable(url: str) -> None:
    with pytest.raises(StoreUnavailableError):
        await store_from_url(url).open()


# Migrations --------------------------------------------------------------------------------------------


async def test_a_registry_exhausted_by_a_top_pin_allocates_again_after_the_upgrade(tmp_path: Any) -> None:
    """A SQLite file written by the release before the allocator had its own sequence: a pin at 2^31-1
    had pushed the high-water mark to the end of the range."""
    import sqlite3

    from kschema.store import _common as common
    from kschema.store.sqlite import split_statements

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT)"
    )
    first = common.load_migrations("sqlite")[0]
    for statement in split_statements(first.sql):
        conn.execute(statement)
    conn.execute("INSERT INTO schema_migrations (version, name) VALUES (1, 'initial')")
    conn.execute(
        "INSERT INTO schemas (id, format, schema_text, canonical, fingerprint) "
        "VALUES (1, 'AVRO', 'a', 'a', 'f1'), (2147483647, 'AVRO', 'b', 'b', 'f2')"
    )
    conn.execute("UPDATE registry_counters SET id_high_water = 2147483647")
    conn.close()

    store = store_from_url(f"sqlite:///{path}")
    await store.open()
    try:
        fresh = await store.register(new_version("payments-value", 1, avro_record("Payment", "id")))
    finally:
        await store.close()

    assert fresh.schema_id == 2
