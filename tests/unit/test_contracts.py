"""Data contracts: Confluent's shapes and merge rules, the admission review of rules against the schema,
and the CEL conditions the validate endpoint applies."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from kschema.contracts import (
    Contract,
    ContractError,
    SubjectContract,
    merge_metadata,
    merge_rule_sets,
    metadata_from_json,
    registered_contract,
    rule_set_from_json,
    wildcard_match,
)
from kschema.contracts.cel_evaluation import CelBudgetExceeded, CelProgram
from kschema.contracts.conditions import ConditionSet
from kschema.formats import SchemaFormat
from kschema.model import SpecError, schema_from_body, subject_from_body
from kschema.policy import Catalog, review_catalog, review_schema

NS = "telemetry"
INFERENCE_V1 = json.dumps(
    {
        "type": "record",
        "name": "Inference",
        "namespace": "ai.telemetry",
        "fields": [
            {"name": "model", "type": "string"},
            {"name": "tokens", "type": "long"},
            {"name": "user_email", "type": "string"},
            {"name": "cached", "type": "boolean", "default": False},
        ],
    }
)
# v2 renames `model` to `model_name`: a breaking change, allowed in a new compatibility group.
INFERENCE_V2 = INFERENCE_V1.replace('"model"', '"model_name"')


def rule(name: str, expr: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "CONDITION", "mode": "WRITE", "type": "CEL", "expr": expr, **extra}


def subject_body(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "inference", "namespace": NS},
        "spec": {"name": "inference-value", "format": "AVRO", **spec},
    }


def schema_body(version: int, schema: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": f"inference-v{version}", "namespace": NS},
        "spec": {"subject": "inference", "version": version, "schema": schema, **spec},
    }


def review(
    schema: dict[str, Any], *others: dict[str, Any], subject: dict[str, Any] | None = None
) -> list[str]:
    sub = subject_from_body(subject or subject_body())
    specs = [schema_from_body(b) for b in others]
    decision = review_schema(schema_from_body(schema), None, Catalog([sub], specs))
    return list(decision.reasons)


# --- shapes ---------------------------------------------------------------------------------------------


def test_a_rule_is_served_in_confluents_shape_with_its_defaults() -> None:
    parsed = rule_set_from_json(
        {"domainRules": [{"name": "r", "type": "CEL", "expr": "true", "params": {"b": "2", "a": "1"}}]}, "x"
    )
    assert parsed is not None
    assert parsed.to_json() == {
        "domainRules": [
            {
                "name": "r",
                "kind": "TRANSFORM",
                "mode": "WRITEREAD",
                "type": "CEL",
                "params": {"a": "1", "b": "2"},
                "expr": "true",
                "disabled": False,
            }
        ]
    }


def test_metadata_is_sorted_and_empty_parts_are_left_out() -> None:
    parsed = metadata_from_json(
        {"properties": {"b": "1", "a": "2"}, "sensitive": ["z", "a"], "tags": {}}, "m"
    )
    assert parsed is not None
    assert json.dumps(parsed.to_json()) == '{"properties": {"a": "2", "b": "1"}, "sensitive": ["a", "z"]}'


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        ({"domainRules": [{"name": "r", "kind": "ASSERT", "type": "CEL"}]}, ".kind", "unknown rule kind"),
        ({"domainRules": [{"name": "r", "mode": "SOMETIMES", "type": "CEL"}]}, ".mode", "unknown rule mode"),
        ({"domainRules": [{"name": "r", "mode": "UPGRADE", "type": "CEL"}]}, ".mode", "WRITE, READ or"),
        ({"migrationRules": [{"name": "r", "mode": "WRITE", "type": "CEL"}]}, ".mode", "UPGRADE, DOWNGRADE"),
        ({"domainRules": [{"name": "1r", "type": "CEL"}]}, ".name", "must start with a letter"),
        ({"domainRules": [{"name": "r"}]}, ".type", "is required"),
        (
            {"domainRules": [{"name": "r", "type": "CEL"}, {"name": "r", "type": "CEL"}]},
            ".name",
            "duplicate rule name 'r'",
        ),
        (
            {"domainRules": [{"name": "r", "type": "CEL", "onFailure": "RETRY"}]},
            ".onFailure",
            "unknown action",
        ),
        ({"domainRules": [{"name": "r", "type": "CEL", "expr": "x" * 5000}]}, ".expr", "the limit is 4096"),
        (
            {"domainRules": [{"name": f"r{i}", "type": "CEL"} for i in range(65)]},
            "domainRules",
            "limit is 64",
        ),
    ],
)
def test_a_malformed_rule_set_is_refused_naming_the_field(raw: Any, field: str, reason: str) -> None:
    with pytest.raises(ContractError) as caught:
        rule_set_from_json(raw, "spec.ruleSet")
    assert field in caught.value.field
    assert reason in caught.value.reason


# --- merge ----------------------------------------------------------------------------------------------


def test_metadata_merges_key_by_key_and_unites_sensitive_names() -> None:
    old = metadata_from_json({"properties": {"owner": "a", "tier": "1"}, "sensitive": ["s1"]}, "m")
    new = metadata_from_json({"properties": {"owner": "b"}, "sensitive": ["s2"]}, "m")
    merged = merge_metadata(old, new)
    assert merged is not None
    assert merged.to_json() == {"properties": {"owner": "b", "tier": "1"}, "sensitive": ["s1", "s2"]}
    assert merge_metadata(None, new) is new
    assert merge_metadata(old, None) is old


def test_a_later_rule_replaces_an_earlier_rule_of_the_same_name_and_goes_last() -> None:
    old = rule_set_from_json({"domainRules": [rule("a", "true"), rule("b", "true")]}, "r")
    new = rule_set_from_json({"domainRules": [rule("a", "false")]}, "r")
    merged = merge_rule_sets(old, new)
    assert merged is not None
    assert [(r.name, r.expr) for r in merged.domain_rules] == [("b", "true"), ("a", "false")]


def test_registration_merges_default_then_specific_then_override_and_inherits_the_previous() -> None:
    config = subject_from_body(
        subject_body(
            defaultMetadata={"properties": {"owner": "platform", "major_version": "1"}},
            overrideMetadata={"properties": {"domain": "ai"}},
            overrideRuleSet={"domainRules": [rule("model_set", "size(message.model) > 0")]},
        )
    ).contract
    declared = schema_from_body(
        schema_body(1, INFERENCE_V1, metadata={"properties": {"owner": "ml"}})
    ).contract
    first = registered_contract(config, declared)
    assert first.to_json()["metadata"] == {
        "properties": {"domain": "ai", "major_version": "1", "owner": "ml"}
    }
    assert [r.name for r in first.rule_set.domain_rules] == ["model_set"]  # type: ignore[union-attr]
    # A version declaring no metadata takes the previous version's, as Confluent does.
    second = registered_contract(config, Contract(), first)
    assert second.metadata == first.metadata


# --- admission ------------------------------------------------------------------------------------------


def test_a_condition_on_existing_fields_of_the_right_type_is_admitted() -> None:
    body = schema_body(
        1,
        INFERENCE_V1,
        ruleSet={"domainRules": [rule("tokens_ok", "message.tokens >= 0 && size(message.model) > 0")]},
    )
    assert review(body) == []


@pytest.mark.parametrize(
    ("expr", "found"),
    [
        ("message.tokenz >= 0", "message.tokenz: the schema has no field 'tokenz'"),
        ("message.model >= 0", "message.model is a string but is compared ('>=') with an int literal"),
        ("size(message.tokens) > 0", "message.tokens is a int; size() needs"),
        ("message.cached > 1", "message.cached is a bool; '>' needs"),
        ("message.tokens >=", "is not valid CEL"),
        ("message.cached; message.model.foo == 1", "message.model is a string, which has no field 'foo'"),
    ],
)
def test_a_condition_naming_a_missing_field_or_misusing_its_type_is_refused(expr: str, found: str) -> None:
    reasons = review(schema_body(1, INFERENCE_V1, ruleSet={"domainRules": [rule("bad", expr)]}))
    assert len(reasons) == 1
    assert "spec.ruleSet.domainRules[0] (rule 'bad').expr" in reasons[0]
    assert found in reasons[0]


def test_unknown_rule_types_and_encryption_are_refused() -> None:
    reasons = review(
        schema_body(
            1,
            INFERENCE_V1,
            ruleSet={
                "domainRules": [
                    {"name": "x", "type": "PYTHON", "expr": "1"},
                    {"name": "enc", "type": "ENCRYPT", "tags": ["PII"]},
                ]
            },
        )
    )
    assert "unknown rule type 'PYTHON'" in reasons[0]
    assert "need a key management service" in reasons[1]


def test_a_tag_on_a_field_that_does_not_exist_is_refused() -> None:
    reasons = review(
        schema_body(1, INFERENCE_V1, metadata={"tags": {"ai.telemetry.Inference.email": ["PII"]}})
    )
    assert reasons
    assert "spec.metadata.tags: path 'ai.telemetry.Inference.email' names no field" in reasons[0]
    assert review(schema_body(1, INFERENCE_V1, metadata={"tags": {"**.user_email": ["PII"]}})) == []


def test_invalid_jsonata_is_refused() -> None:
    migration = {"name": "up", "kind": "TRANSFORM", "mode": "UPGRADE", "type": "JSONATA", "expr": "$merge(["}
    subject = subject_body(compatibilityGroup="major_version")
    body = schema_body(
        2,
        INFERENCE_V2,
        metadata={"properties": {"major_version": "2"}},
        ruleSet={"migrationRules": [migration]},
    )
    reasons = review(body, subject=subject)
    assert reasons
    assert "(rule 'up').expr: is not valid JSONata" in reasons[0]


def test_a_migration_rule_without_a_group_to_migrate_between_is_refused() -> None:
    migration = {"name": "up", "kind": "TRANSFORM", "mode": "UPGRADE", "type": "JSONATA", "expr": "$"}
    reasons = review(schema_body(2, INFERENCE_V2, ruleSet={"migrationRules": [migration]}))
    assert reasons
    assert "has no spec.compatibilityGroup" in reasons[0]
    reasons = review(
        schema_body(2, INFERENCE_V2, ruleSet={"migrationRules": [migration]}),
        subject=subject_body(compatibilityGroup="major_version"),
    )
    assert reasons
    assert "no metadata property 'major_version'" in reasons[0]


def test_a_breaking_change_is_admitted_only_in_a_new_compatibility_group() -> None:
    subject = subject_body(compatibilityGroup="major_version")
    v1 = schema_body(1, INFERENCE_V1, metadata={"properties": {"major_version": "1"}})
    same_group = schema_body(2, INFERENCE_V2, metadata={"properties": {"major_version": "1"}})
    assert any("not BACKWARD compatible" in r for r in review(same_group, v1, subject=subject))
    new_group = schema_body(2, INFERENCE_V2, metadata={"properties": {"major_version": "2"}})
    assert review(new_group, v1, subject=subject) == []


def test_rules_are_immutable_with_their_version() -> None:
    sub = subject_from_body(subject_body())
    old = schema_from_body(schema_body(1, INFERENCE_V1, ruleSet={"domainRules": [rule("a", "true")]}))
    new = schema_from_body(schema_body(1, INFERENCE_V1, ruleSet={"domainRules": [rule("a", "false")]}))
    decision = review_schema(new, old, Catalog([sub], [old]))
    assert "spec.ruleSet cannot change once created" in decision.message


def test_a_malformed_contract_in_a_manifest_is_a_spec_error() -> None:
    with pytest.raises(SpecError) as caught:
        schema_from_body(
            schema_body(1, INFERENCE_V1, ruleSet={"domainRules": [{"name": "r", "kind": "X", "type": "CEL"}]})
        )
    assert caught.value.field == "spec.ruleSet.domainRules[0] (rule 'r').kind"


def test_the_offline_review_gives_the_same_sentences() -> None:
    sub = subject_from_body(subject_body())
    schema = schema_from_body(
        schema_body(1, INFERENCE_V1, ruleSet={"domainRules": [rule("bad", "message.x > 0")]})
    )
    decisions = review_catalog(Catalog([sub], [schema]))
    assert decisions[f"Schema {NS}/inference-v1"].reasons == tuple(
        review(schema_body(1, INFERENCE_V1, ruleSet={"domainRules": [rule("bad", "message.x > 0")]}))
    )


# --- evaluation -----------------------------------------------------------------------------------------


def test_conditions_name_the_rule_a_payload_breaks() -> None:
    contract = Contract(
        rule_set=rule_set_from_json(
            {
                "domainRules": [
                    rule("tokens_ok", "message.tokens >= 0"),
                    rule("model_set", "size(message.model) > 0"),
                ]
            },
            "r",
        )
    )
    conditions = ConditionSet(contract)
    deadline = time.monotonic() + 5
    assert conditions.evaluate({"model": "m", "tokens": 1}, deadline) == []
    failures = conditions.evaluate({"model": "", "tokens": -1}, deadline)
    assert [f.rule for f in failures] == ["tokens_ok", "model_set"]


def test_a_guard_that_is_false_skips_the_rule() -> None:
    program = CelProgram("message.tokens > 0; size(message.model) > 0")
    assert program.evaluate({"tokens": 0, "model": ""}, time.monotonic() + 5)
    assert not program.evaluate({"tokens": 1, "model": ""}, time.monotonic() + 5)


def test_a_rule_on_a_missing_field_or_a_wrong_type_fails_with_celpys_reason() -> None:
    deadline = time.monotonic() + 5
    with pytest.raises(ValueError, match="no such member in mapping: 'tokens'"):
        CelProgram("message.tokens >= 0").evaluate({"model": "m"}, deadline)
    with pytest.raises(ValueError, match=r"found no matching overload for .*relation_ge"):
        CelProgram("message.model >= 0").evaluate({"model": "m"}, deadline)
    # Errors short-circuit as in CEL: `||` with a true side holds, `&&` with a false side fails.
    assert CelProgram("message.tokens / 0 > 1 || true").evaluate({"tokens": 1}, deadline)
    assert not CelProgram("message.tokens / 0 > 1 && false").evaluate({"tokens": 1}, deadline)


def test_a_runaway_condition_stops_at_its_budget() -> None:
    ten = "[" + ",".join(str(i) for i in range(10)) + "]"
    program = CelProgram(
        f"{ten}.all(a, {ten}.all(b, {ten}.all(c, {ten}.all(d, {ten}.all(e, a+b+c+d+e >= 0)))))"
    )
    with pytest.raises(CelBudgetExceeded):
        program.evaluate({}, time.monotonic() + 30)


def test_confluents_wildcards_match_tag_paths() -> None:
    assert wildcard_match("ai.telemetry.Inference.user_email", "**.user_email")
    assert wildcard_match("ai.telemetry.Inference.user_email", "ai.telemetry.Inference.*")
    assert not wildcard_match("ai.telemetry.Inference.user_email", "ai.*")


def test_subject_contract_config_is_served_in_confluents_shape() -> None:
    config = subject_from_body(
        subject_body(compatibilityGroup="major_version", defaultMetadata={"properties": {"owner": "ml"}})
    ).contract
    assert config.to_json() == {
        "compatibilityGroup": "major_version",
        "defaultMetadata": {"properties": {"owner": "ml"}},
    }
    assert SubjectContract().to_json() == {}
    assert SchemaFormat.AVRO  # the review above parsed Avro through the same parser the webhook uses


def test_a_subject_default_rule_of_an_unknown_type_is_refused() -> None:
    from kschema.policy import review_subject

    sub = subject_from_body(
        subject_body(defaultRuleSet={"domainRules": [{"name": "r", "type": "LUA", "expr": "1"}]})
    )
    decision = review_subject(sub, None, Catalog([sub], []))
    assert "spec.defaultRuleSet.domainRules[0] (rule 'r').type: unknown rule type 'LUA'" in decision.message
