"""The admission policy, rule by rule, over plain specs (no cluster, no store)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any

import pytest

from kschema.compat import CompatibilityLevel
from kschema.formats import Reference, SchemaFormat, parse_schema
from kschema.model import SchemaSpec, SchemaState, SubjectSpec
from kschema.policy import (
    ALLOWED_TRANSITIONS,
    Catalog,
    RegisteredSchema,
    RegisteredSubject,
    RegisteredVersion,
    RegistryFacts,
    missing_registry_references,
    review_catalog,
    review_schema,
    review_subject,
)

NS = "team-a"


def avro(*fields: tuple[Any, ...], name: str = "Order", namespace: str | None = None) -> str:
    out = []
    for f in fields:
        field: dict[str, Any] = {"name": f[0], "type": f[1]}
        if len(f) == 3:
            field["default"] = f[2]
        out.append(field)
    body: dict[str, Any] = {"type": "record", "name": name, "fields": out}
    if namespace:
        body["namespace"] = namespace
    return json.dumps(body)


V1 = avro(("id", "string"))
V2 = avro(("id", "string"), ("cost", "double", 0.0))
NEEDS_CURRENCY = avro(("id", "string"), ("cost", "double", 0.0), ("currency", "string"))
ADDRESS = avro(("city", "string"), name="Address", namespace="com.acme")
SHIPPED = avro(("ship_to", "com.acme.Address"))


def subj(
    level: CompatibilityLevel = CompatibilityLevel.BACKWARD,
    *,
    name: str = "orders-value",
    namespace: str = NS,
    resource: str = "orders",
    fmt: SchemaFormat = SchemaFormat.AVRO,
) -> SubjectSpec:
    return SubjectSpec(resource, namespace, name, fmt, level)


def sch(
    version: int,
    text: str,
    *,
    resource: str | None = None,
    subject: str = "orders",
    namespace: str = NS,
    state: SchemaState = SchemaState.ACTIVE,
    references: tuple[Reference, ...] = (),
    pinned_id: int | None = None,
) -> SchemaSpec:
    return SchemaSpec(
        resource or f"{subject}-v{version}", namespace, subject, version, text, references, state, pinned_id
    )


def store_facts(**kwargs: Any) -> RegistryFacts:
    return RegistryFacts(configured=True, **kwargs)


# --------------------------------------------------------------------------------------------------------
# Schema creation


def test_a_compatible_new_version_is_allowed() -> None:
    decision = review_schema(sch(2, V2), None, Catalog([subj()], [sch(1, V1)]))
    assert decision.allowed, decision.reasons
    assert decision.warnings == ()


def test_an_incompatible_version_names_the_resource_versions_location_and_rule() -> None:
    decision = review_schema(sch(3, NEEDS_CURRENCY), None, Catalog([subj()], [sch(1, V1), sch(2, V2)]))
    assert not decision.allowed
    assert decision.reasons == (
        'Schema team-a/orders-v3: version 3 of subject "orders-value" is not BACKWARD compatible '
        "with version 2: /fields/currency: field 'currency' is missing from the writer and has no default "
        "in the reader; "
        "a reader of version 3 cannot read data written with version 2",
    )


def test_an_invalid_schema_is_refused_with_the_parsers_located_message() -> None:
    decision = review_schema(sch(1, avro(("id", "strin"))), None, Catalog([subj()]))
    assert len(decision.reasons) == 1
    assert decision.reasons[0].startswith(
        "Schema team-a/orders-v1: spec.schema is not a valid AVRO schema: "
        "/fields/0/type: unknown type 'strin'"
    )


def test_a_duplicate_version_number_is_refused_naming_the_other_schema() -> None:
    decision = review_schema(sch(1, V1, resource="again"), None, Catalog([subj()], [sch(1, V1)]))
    assert decision.reasons[0] == (
        'Schema team-a/again: version 1 of subject "orders-value" is already declared by '
        "Schema team-a/orders-v1; each version number is used once. Use the next free version, 2"
    )


def test_a_version_arriving_between_two_is_checked_as_the_predecessor_of_the_higher_one() -> None:
    # Version 3 has cost as a double; a version 2 with cost as a string cannot be read by version 3.
    v3 = avro(("id", "string"), ("cost", "double", 1.0))
    catalog = Catalog([subj()], [sch(1, V1), sch(3, v3)])
    refused = review_schema(sch(2, avro(("id", "string"), ("cost", "string", "0"))), None, catalog)
    allowed = review_schema(sch(2, V2), None, catalog)
    assert not refused.allowed
    assert refused.reasons[0].startswith(
        'Schema team-a/orders-v2: version 3 of subject "orders-value" (Schema team-a/orders-v3) would not be '
        "BACKWARD compatible with version 2: /fields/cost:"
    )
    assert allowed.allowed, allowed.reasons


def test_a_non_transitive_level_compares_with_the_nearest_lower_version_by_number_only() -> None:
    # Version 1 has `note` as a string; version 5 reads version 2 fine but could not read version 1.
    history = [sch(1, avro(("id", "string"), ("note", "string"))), sch(2, V1)]
    v5 = avro(("id", "string"), ("note", "long", 0))
    assert review_schema(sch(5, v5), None, Catalog([subj()], history)).allowed


def test_a_transitive_level_compares_with_every_declared_version() -> None:
    history = [sch(1, avro(("id", "string"), ("note", "string"))), sch(2, V1)]
    v5 = avro(("id", "string"), ("note", "long", 0))
    decision = review_schema(
        sch(5, v5), None, Catalog([subj(CompatibilityLevel.BACKWARD_TRANSITIVE)], history)
    )
    assert len(decision.reasons) == 1
    assert "is not BACKWARD_TRANSITIVE compatible with version 1: /fields/note:" in decision.reasons[0]


def test_a_transitive_level_checks_every_higher_version_against_the_new_one() -> None:
    catalog = Catalog(
        [subj(CompatibilityLevel.FORWARD_TRANSITIVE)],
        [sch(1, V1), sch(4, V2), sch(5, V2, resource="orders-v5")],
    )
    # Old readers (versions 4 and 5 are *later*, so they read version 2's data): `cost` must have a default.
    decision = review_schema(sch(2, avro(("id", "string"))), None, catalog)
    assert decision.allowed, decision.reasons
    refused = review_schema(sch(2, avro(("id", "long"))), None, catalog)
    assert any("version 4" in r for r in refused.reasons)
    assert any("version 5" in r for r in refused.reasons)


def test_full_checks_both_directions() -> None:
    catalog = Catalog([subj(CompatibilityLevel.FULL)], [sch(1, V1)])
    # A new required field: old readers ignore it (forward ok) but the new reader needs it (backward breaks).
    decision = review_schema(sch(2, avro(("id", "string"), ("x", "int"))), None, catalog)
    assert decision.reasons
    assert all("is not FULL compatible with version 1" in r for r in decision.reasons)


def test_level_none_accepts_any_new_version() -> None:
    assert review_schema(
        sch(2, avro(("id", "long"))), None, Catalog([subj(CompatibilityLevel.NONE)], [sch(1, V1)])
    ).allowed


def test_a_draft_version_is_checked_like_any_other() -> None:
    decision = review_schema(
        sch(2, NEEDS_CURRENCY, state=SchemaState.DRAFT), None, Catalog([subj()], [sch(1, V1)])
    )
    assert not decision.allowed


def test_a_history_version_that_no_longer_parses_is_skipped_with_a_warning() -> None:
    broken = sch(1, V2, references=(Reference("com.acme.Gone", "gone", 1),))
    decision = review_schema(sch(2, V2), None, Catalog([subj()], [broken]))
    assert decision.allowed
    assert "could not be parsed and was left out of the compatibility check" in decision.warnings[0]


def test_a_schema_whose_subject_does_not_exist_yet_is_allowed_with_a_warning() -> None:
    decision = review_schema(sch(1, "not even json"), None, Catalog())
    assert decision.allowed
    assert decision.warnings[0].startswith(
        "Schema team-a/orders-v1: Subject team-a/orders does not exist yet"
    )


def test_many_incompatibilities_are_capped_with_a_count() -> None:
    wide = avro(*[(f"f{i}", "string") for i in range(15)])
    decision = review_schema(sch(2, wide), None, Catalog([subj()], [sch(1, V1)]))
    assert len(decision.reasons) == 11
    assert decision.reasons[-1] == "... and 5 more incompatibilities"


# --------------------------------------------------------------------------------------------------------
# References


def test_a_reference_to_a_declared_version_resolves() -> None:
    address = subj(name="com.acme.Address", resource="address")
    catalog = Catalog([subj(), address], [sch(1, ADDRESS, subject="address")])
    decision = review_schema(
        sch(1, SHIPPED, references=(Reference("com.acme.Address", "com.acme.Address", 1),)), None, catalog
    )
    assert decision.allowed, decision.reasons


def test_a_reference_to_a_missing_version_is_refused() -> None:
    address = subj(name="com.acme.Address", resource="address")
    catalog = Catalog([subj(), address], [sch(1, ADDRESS, subject="address")])
    ref = Reference("com.acme.Address", "com.acme.Address", 2)
    decision = review_schema(sch(1, SHIPPED, references=(ref,)), None, catalog, store_facts())
    assert decision.reasons == (
        'Schema team-a/orders-v1: spec.references: reference "com.acme.Address" (subject "com.acme.Address" '
        'version 2) does not exist: subject "com.acme.Address" is declared by Subject team-a/address '
        "but has no Schema with version 2 and the registry store has no such version",
    )


def test_a_reference_registered_only_in_the_store_resolves() -> None:
    parsed = parse_schema(SchemaFormat.AVRO, ADDRESS)
    stored = RegisteredVersion("legacy", 3, 17, SchemaFormat.AVRO, ADDRESS, parsed.fingerprint)
    facts = store_facts(versions={("legacy", 3): stored})
    decision = review_schema(
        sch(1, SHIPPED, references=(Reference("com.acme.Address", "legacy", 3),)),
        None,
        Catalog([subj()]),
        facts,
    )
    assert decision.allowed, decision.reasons


def test_a_reference_to_a_deleted_store_version_resolves_with_a_warning() -> None:
    # One rule for admission, operator and read API: a deleted version's content is immutable and its
    # ID stays readable, so it resolves everywhere; admission warns that it is gone.
    stored = RegisteredVersion("legacy", 3, 17, SchemaFormat.AVRO, ADDRESS, "f", deleted=True)
    facts = store_facts(versions={("legacy", 3): stored})
    decision = review_schema(
        sch(1, SHIPPED, references=(Reference("com.acme.Address", "legacy", 3),)),
        None,
        Catalog([subj()]),
        facts,
    )
    assert decision.allowed, decision.reasons
    assert any('subject "legacy" version 3, which was deleted' in w for w in decision.warnings)


def test_a_reference_to_another_format_is_refused() -> None:
    other = subj(name="shapes", resource="shapes", fmt=SchemaFormat.JSON)
    catalog = Catalog([subj(), other], [sch(1, '{"type": "object"}', subject="shapes")])
    decision = review_schema(sch(1, V1, references=(Reference("Shape", "shapes", 1),)), None, catalog)
    assert "points at a JSON schema; a AVRO schema can only refer to AVRO schemas" in decision.reasons[0]


def test_an_unreadable_store_is_named_when_a_reference_cannot_be_confirmed() -> None:
    facts = RegistryFacts(configured=True, unavailable="database is locked")
    decision = review_schema(
        sch(1, SHIPPED, references=(Reference("com.acme.Address", "legacy", 3),)),
        None,
        Catalog([subj()]),
        facts,
    )
    assert "the registry store could not be read (database is locked)" in decision.reasons[0]
    assert "store checks were skipped" in decision.warnings[0]


def test_missing_registry_references_follows_chains_through_the_cluster_and_the_store() -> None:
    catalog = Catalog(
        [subj(name="a", resource="a")], [sch(1, V1, subject="a", references=(Reference("B", "b", 1),))]
    )
    stored_b = RegisteredVersion("b", 1, 5, SchemaFormat.AVRO, V1, "f", references=(Reference("C", "c", 2),))
    assert missing_registry_references([Reference("A", "a", 1)], catalog, store_facts()) == {("b", 1)}
    assert missing_registry_references(
        [Reference("A", "a", 1)], catalog, store_facts(versions={("b", 1): stored_b})
    ) == {("c", 2)}


# --------------------------------------------------------------------------------------------------------
# Store facts: reused versions, pinned IDs


def test_a_version_number_registered_before_with_other_content_is_refused() -> None:
    old = parse_schema(SchemaFormat.AVRO, V2)
    facts = store_facts(
        versions={
            ("orders-value", 1): RegisteredVersion(
                "orders-value", 1, 9, SchemaFormat.AVRO, V2, old.fingerprint, deleted=True
            )
        }
    )
    refused = review_schema(sch(1, V1), None, Catalog([subj()]), facts)
    restored = review_schema(sch(1, V2), None, Catalog([subj()]), facts)
    assert "was registered (since deleted) with other content (schema ID 9)" in refused.reasons[0]
    assert restored.allowed


def test_a_pinned_id_held_by_other_content_in_the_store_is_refused() -> None:
    holder = RegisteredSchema(42, SchemaFormat.AVRO, "someone-elses-fingerprint", (("billing", 3),))
    decision = review_schema(
        sch(1, V1, pinned_id=42), None, Catalog([subj()]), store_facts(schemas={42: holder})
    )
    assert decision.reasons == (
        'Schema team-a/orders-v1: spec.id 42 is already held by other content (subject "billing" version 3); '
        "an ID always names the same schema. Remove spec.id or pin a free ID",
    )


def test_a_pinned_id_held_by_the_same_content_is_allowed() -> None:
    holder = RegisteredSchema(42, SchemaFormat.AVRO, parse_schema(SchemaFormat.AVRO, V1).fingerprint)
    assert review_schema(
        sch(1, V1, pinned_id=42), None, Catalog([subj()]), store_facts(schemas={42: holder})
    ).allowed


def test_a_pinned_id_declared_by_another_schema_for_other_content_is_refused() -> None:
    billing = subj(name="billing", resource="billing")
    catalog = Catalog([subj(), billing], [sch(1, V2, subject="billing", pinned_id=42)])
    decision = review_schema(sch(1, V1, pinned_id=42), None, catalog)
    assert "spec.id 42 is already pinned by Schema team-a/billing-v1 for other content" in decision.reasons[0]


# --------------------------------------------------------------------------------------------------------
# Ownership


def test_a_subject_declared_by_another_namespace_is_refused() -> None:
    theirs = subj(namespace="team-b")
    decision = review_subject(subj(), None, Catalog([theirs]))
    assert decision.reasons == (
        'Subject team-a/orders: subject "orders-value" is already declared by Subject team-b/orders; '
        "a registry subject belongs to one namespace",
    )


def test_a_schema_of_a_subject_owned_elsewhere_in_the_store_is_refused() -> None:
    facts = store_facts(
        subjects={"orders-value": RegisteredSubject("orders-value", "team-b", SchemaFormat.AVRO)}
    )
    decision = review_schema(sch(1, V1), None, Catalog([subj()]), facts)
    assert 'subject "orders-value" is owned by namespace team-b in the registry' in decision.reasons[0]


def test_a_deleted_subject_of_another_namespace_stays_its_own() -> None:
    facts = store_facts(
        subjects={
            "orders-value": RegisteredSubject("orders-value", "team-b", SchemaFormat.AVRO, deleted=True)
        }
    )
    decision = review_subject(subj(), None, Catalog(), facts)

    assert not decision.allowed
    assert 'subject "orders-value" is owned by namespace team-b in the registry (deleted' in decision.message
    assert "kschema.io/transfer-to: team-a" in decision.message


def test_a_deleted_subject_handed_over_to_this_namespace_may_be_claimed() -> None:
    handed = RegisteredSubject("orders-value", "team-b", SchemaFormat.AVRO, deleted=True, transfer_to=NS)
    facts = store_facts(subjects={"orders-value": handed})

    assert review_subject(subj(), None, Catalog(), facts).allowed
    assert review_schema(sch(1, V1), None, Catalog([subj()]), facts).allowed


def test_a_transfer_takes_effect_only_once_the_owner_deleted_its_subject() -> None:
    live = RegisteredSubject("orders-value", "team-b", SchemaFormat.AVRO, transfer_to=NS)

    decision = review_subject(subj(), None, Catalog(), store_facts(subjects={"orders-value": live}))

    assert not decision.allowed
    assert "takes effect once it deletes its Subject" in decision.message


def test_a_subject_registered_before_with_another_format_is_refused() -> None:
    facts = store_facts(
        subjects={"orders-value": RegisteredSubject("orders-value", NS, SchemaFormat.JSON, deleted=True)}
    )
    decision = review_subject(subj(), None, Catalog(), facts)
    assert "was registered with format JSON, not AVRO" in decision.reasons[0]


def test_the_same_registry_subject_declared_twice_in_a_namespace_is_refused() -> None:
    decision = review_subject(subj(resource="orders-2"), None, Catalog([subj()]))
    assert (
        "is already declared by Subject team-a/orders; declare each registry subject once"
        in decision.reasons[0]
    )


# --------------------------------------------------------------------------------------------------------
# Subject updates and deletion


def test_a_subject_format_change_is_refused() -> None:
    decision = review_subject(subj(fmt=SchemaFormat.JSON), subj(), Catalog([subj()]))
    assert decision.reasons[0].startswith(
        "Subject team-a/orders: spec.format cannot change (from AVRO to JSON)"
    )


def test_a_subject_name_change_is_refused() -> None:
    decision = review_subject(subj(name="orders-v2-value"), subj(), Catalog([subj()]))
    assert 'spec.name cannot change (from "orders-value" to "orders-v2-value")' in decision.reasons[0]


def test_a_level_the_history_already_violates_gets_a_warning_not_a_refusal() -> None:
    history = [sch(1, V1), sch(2, avro(("id", "long")))]
    decision = review_subject(
        subj(CompatibilityLevel.FULL), subj(CompatibilityLevel.NONE), Catalog([subj()], history)
    )
    assert decision.allowed
    assert "violate the new level FULL" in decision.warnings[0]
    assert "version 2 is not FULL compatible with version 1" in decision.warnings[0]


def test_a_subject_arriving_after_its_schemas_warns_about_what_they_break() -> None:
    history = [sch(1, V1), sch(2, NEEDS_CURRENCY), sch(2, V2, resource="dup")]
    decision = review_subject(subj(), None, Catalog([], history))
    assert decision.allowed
    assert any("already violate BACKWARD" in w for w in decision.warnings)
    assert any("version 2 is declared by several Schemas" in w for w in decision.warnings)


def test_level_none_gets_a_warning() -> None:
    decision = review_subject(subj(CompatibilityLevel.NONE), None, Catalog())
    assert decision.allowed
    assert "compatibility NONE turns off compatibility checks" in decision.warnings[0]


def test_deleting_a_subject_with_schemas_is_allowed_with_a_warning() -> None:
    decision = review_subject(None, subj(), Catalog([subj()], [sch(1, V1)]))
    assert decision.allowed
    assert "still refer to it (orders-v1)" in decision.warnings[0]


# --------------------------------------------------------------------------------------------------------
# Schema updates: immutability and states


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"schema": V2}, "spec.schema"),
        ({"version": 7}, "spec.version"),
        ({"subject": "billing"}, "spec.subject"),
        ({"references": (Reference("X", "x", 1),)}, "spec.references"),
        ({"pinned_id": 5}, "spec.id"),
    ],
)
def test_a_change_of_content_version_subject_references_or_id_is_refused(
    change: dict[str, Any], field: str
) -> None:
    old = sch(1, V1)
    new = dataclasses.replace(old, **change)
    decision = review_schema(new, old, Catalog([subj()], [old]))
    assert decision.reasons[0].startswith(f"Schema team-a/orders-v1: {field} cannot change once created")


ALL_PAIRS = [(a, b) for a, b in itertools.product(SchemaState, SchemaState) if a is not b]


@pytest.mark.parametrize(("before", "after"), ALL_PAIRS, ids=[f"{a}-to-{b}" for a, b in ALL_PAIRS])
def test_state_changes_follow_the_transition_table(before: SchemaState, after: SchemaState) -> None:
    old = sch(1, V1, state=before)
    decision = review_schema(sch(1, V1, state=after), old, Catalog([subj()], [old]))
    assert decision.allowed is (after in ALLOWED_TRANSITIONS[before])
    if not decision.allowed:
        allowed = " or ".join(sorted(ALLOWED_TRANSITIONS[before]))
        assert f"spec.state cannot change from {before} to {after}" in decision.reasons[0]
        assert decision.reasons[0].endswith(f"from {before} it may change to {allowed}")


def test_rollback_from_deprecated_and_archived_to_active_is_allowed() -> None:
    for before in (SchemaState.DEPRECATED, SchemaState.ARCHIVED):
        old = sch(1, V1, state=before)
        assert review_schema(sch(1, V1), old, Catalog([subj()], [old])).allowed


def test_deprecating_the_latest_version_gets_a_warning() -> None:
    v1, v2 = sch(1, V1), sch(2, V2)
    decision = review_schema(sch(2, V2, state=SchemaState.DEPRECATED), v2, Catalog([subj()], [v1, v2]))
    assert decision.allowed
    assert (
        'version 2 is the latest version of subject "orders-value" and is now DEPRECATED'
        in decision.warnings[0]
    )


def test_archiving_the_latest_version_warns_which_version_becomes_latest() -> None:
    v1, v2 = sch(1, V1), sch(2, V2)
    decision = review_schema(sch(2, V2, state=SchemaState.ARCHIVED), v2, Catalog([subj()], [v1, v2]))
    assert "clients asking for the latest version now get version 1" in decision.warnings[0]


def test_an_unchanged_schema_update_is_allowed_without_checks() -> None:
    # Finalizer and label updates re-send the same spec; they must pass even if the world changed since.
    old = sch(1, "no longer parses")
    assert review_schema(old, old, Catalog()).allowed


# --------------------------------------------------------------------------------------------------------
# Deletion


def test_deleting_the_latest_version_is_allowed_with_a_warning() -> None:
    v1, v2 = sch(1, V1), sch(2, V2)
    decision = review_schema(None, v2, Catalog([subj()], [v1, v2]))
    assert decision.allowed
    assert "after the deletion clients asking for the latest version get version 1" in decision.warnings[0]


def test_deleting_a_middle_version_warns_when_its_neighbours_are_incompatible() -> None:
    v1, v2, v3 = sch(1, V1), sch(2, V2), sch(3, avro(("id", "string"), ("cost", "double")))
    decision = review_schema(None, v2, Catalog([subj()], [v1, v2, v3]))
    assert decision.allowed
    assert any(
        "leaves version 3 next to version 1, and they are not BACKWARD compatible" in w
        for w in decision.warnings
    )


def test_deleting_a_referenced_version_warns_about_its_referrers() -> None:
    address = subj(name="com.acme.Address", resource="address")
    ref_v1 = sch(1, ADDRESS, subject="address")
    user = sch(1, SHIPPED, references=(Reference("com.acme.Address", "com.acme.Address", 1),))
    decision = review_schema(None, ref_v1, Catalog([subj(), address], [ref_v1, user]))
    assert decision.allowed
    assert any("is still referenced by Schema team-a/orders-v1" in w for w in decision.warnings)


# --------------------------------------------------------------------------------------------------------
# Offline check


def test_review_catalog_reviews_every_resource_against_the_others() -> None:
    catalog = Catalog([subj()], [sch(1, V1), sch(2, NEEDS_CURRENCY)])
    decisions = review_catalog(catalog)
    assert set(decisions) == {"Subject team-a/orders", "Schema team-a/orders-v1", "Schema team-a/orders-v2"}
    assert not decisions["Schema team-a/orders-v2"].allowed
    assert not decisions["Schema team-a/orders-v1"].allowed  # seen from version 1: its successor breaks
    assert decisions["Subject team-a/orders"].allowed
