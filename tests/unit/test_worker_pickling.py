"""What crosses the worker pipe: specs, contracts and references pickle as their field values, and come
back equal, defaults and nested values included."""

from __future__ import annotations

import pickle

from kschema.compat import CompatibilityLevel
from kschema.contracts.model import Contract, Metadata, Rule, RuleSet, SubjectContract
from kschema.formats import Reference, SchemaFormat
from kschema.model import ProjectionSpec, SchemaSpec, SchemaState, SubjectSpec


def _round_trip(value: object) -> object:
    return pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def test_a_schema_spec_comes_back_equal_with_its_references_and_contract() -> None:
    spec = SchemaSpec(
        "orders-v2",
        "shop",
        "orders",
        2,
        '{"type": "string"}',
        (Reference("Address", "address-value", 1),),
        SchemaState.DEPRECATED,
        pinned_id=7,
        sunset="2030-01-01",
        contract=Contract(
            Metadata(tags=(("$.id", ("PII",)),), properties=(("owner", "shop"),), sensitive=("id",)),
            RuleSet(domain_rules=(Rule("checkId", "CEL", doc="ids are positive", tags=("PII",)),)),
        ),
    )
    back = _round_trip(spec)
    assert back == spec
    assert type(back) is SchemaSpec
    assert _round_trip(SchemaSpec("a", "b", "c", 1, "x")) == SchemaSpec("a", "b", "c", 1, "x")


def test_a_subject_spec_comes_back_equal() -> None:
    subject = SubjectSpec(
        "orders",
        "shop",
        "orders-value",
        SchemaFormat.PROTOBUF,
        CompatibilityLevel.FULL_TRANSITIVE,
        ProjectionSpec(enabled=False, config_map_name="cm"),
        owners=("team-a",),
        contract=SubjectContract(),
        accepted_through=3,
    )
    assert _round_trip(subject) == subject
    assert _round_trip(Reference("n", "s", 1)) == Reference("n", "s", 1)
