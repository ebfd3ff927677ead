"""The Events the operator's handlers record, and the Subject's Ready message (Argo CD's health message)."""

from __future__ import annotations

from kschema.compat import CompatibilityResult
from kschema.formats import SchemaFormat
from kschema.model import SchemaSpec, SchemaState, SubjectSpec
from kschema.operator import schema_versions, schemas, subjects
from kschema.operator.events import ObjectRef
from kschema.operator.registration import Registered
from kschema.operator.rendering import Projection
from kschema.store import SubjectVersion

HERE = ObjectRef("Schema", "team", "orders-value-v3", "uid-v3")
SUBJECT = ObjectRef("Subject", "team", "orders-value", "uid-s")


def _spec(state: SchemaState = SchemaState.ACTIVE, sunset: str | None = None) -> SchemaSpec:
    return SchemaSpec("orders-value-v3", "team", "orders-value", 3, '"string"', state=state, sunset=sunset)


def _registered(**flags: bool) -> Registered:
    version = SubjectVersion("orders-value", 3, 42, SchemaState.ACTIVE, False, "team")
    return Registered(version, "fp", CompatibilityResult(), (2,), **flags)


def test_a_new_version_is_registered_with_its_id_on_the_schema_grouped_by_its_subject() -> None:
    [note] = schema_versions.registration_notes(HERE, SUBJECT, _registered(already_registered=False), _spec())

    assert (note.ref, note.group, note.type, note.reason) == (HERE, SUBJECT, "Normal", "Registered")
    assert note.message == "Registered version 3 of orders-value as ID 42"


def test_a_new_deprecated_version_says_so_with_its_sunset() -> None:
    spec = _spec(SchemaState.DEPRECATED, "2030-01-01")
    [note] = schema_versions.registration_notes(HERE, SUBJECT, _registered(already_registered=False), spec)

    assert note.message == "Registered version 3 of orders-value as ID 42 (DEPRECATED; Sunset 2030-01-01)"


def test_deprecating_a_registered_version() -> None:
    registered = _registered(already_registered=True, state_changed=True)
    [note] = schema_versions.registration_notes(
        HERE, SUBJECT, registered, _spec(SchemaState.DEPRECATED, "2030-01-01")
    )

    assert (note.reason, note.message) == (
        "Deprecated",
        "Deprecated version 3 of orders-value; Sunset 2030-01-01",
    )


def test_archiving_and_reactivating_a_registered_version() -> None:
    registered = _registered(already_registered=True, state_changed=True)
    [archived] = schema_versions.registration_notes(HERE, SUBJECT, registered, _spec(SchemaState.ARCHIVED))
    [active] = schema_versions.registration_notes(HERE, SUBJECT, registered, _spec())

    assert (
        archived.message == "Archived version 3 of orders-value: hidden from listings, ID 42 still resolves"
    )
    assert (active.reason, active.message) == ("StateChanged", "Version 3 of orders-value is now ACTIVE")


def test_a_version_deleted_before_and_declared_again_is_restored() -> None:
    registered = _registered(already_registered=True, restored=True)
    [note] = schema_versions.registration_notes(HERE, SUBJECT, registered, _spec())

    assert (note.reason, note.message) == (
        "Restored",
        "Restored version 3 of orders-value (deleted before) with its ID 42",
    )


def test_a_reconcile_that_changes_nothing_records_nothing() -> None:
    assert (
        schema_versions.registration_notes(HERE, SUBJECT, _registered(already_registered=True), _spec()) == []
    )


def test_deleting_the_latest_version_warns_what_clients_get_now() -> None:
    note = schemas._deleted_note(SUBJECT, "orders-value", _spec(), 42, Projection({}, 2, 2))

    assert (note.ref, note.type, note.reason) == (SUBJECT, "Warning", "VersionDeleted")
    assert note.message == (
        "Soft-deleted version 3 of orders-value; ID 42 still resolves; "
        "clients asking for the latest version now get version 2"
    )


def test_deleting_the_last_version_warns_that_nothing_is_served_as_latest() -> None:
    note = schemas._deleted_note(SUBJECT, "orders-value", _spec(), 42, Projection({}, None, 0))

    assert note.type == "Warning"
    assert note.message.endswith("; no version is left to serve as latest")


def test_deleting_an_older_version_is_normal() -> None:
    note = schemas._deleted_note(SUBJECT, "orders-value", _spec(), 42, Projection({}, 5, 4))

    assert (note.type, note.message) == (
        "Normal",
        "Soft-deleted version 3 of orders-value; ID 42 still resolves",
    )


def test_a_deleted_subject_lists_the_ids_that_still_resolve_and_warns_about_schemas_left_behind() -> None:
    alone = subjects._deleted_note(SUBJECT, "orders-value", [8, 9], [])
    left = subjects._deleted_note(SUBJECT, "orders-value", [8], ["orders-value-v1"])

    assert (alone.type, alone.message) == (
        "Normal",
        "Subject 'orders-value' soft-deleted; IDs 8, 9 still resolve",
    )
    assert left.type == "Warning"
    assert left.message == (
        "Subject 'orders-value' soft-deleted; ID 8 still resolves; 1 Schema(s) still refer to it and report "
        "Ready=False until deleted: orders-value-v1"
    )


def test_the_subjects_ready_message_holds_no_count_that_later_versions_would_make_stale() -> None:
    spec = SubjectSpec("orders-value", "team", "orders-value", SchemaFormat.AVRO)

    message = subjects._ready_message(spec, Projection({}, None, 0))

    assert (
        message == "subject 'orders-value' is registered; "
        "its versions are projected into ConfigMap orders-value-schemas"
    )
