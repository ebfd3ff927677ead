"""The one table of limits: the CRDs carry exactly its numbers and patterns, and the resource model (what
the webhook and `kschema check` apply) refuses exactly what the registry store refuses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kschema import limits
from kschema.formats import Reference
from kschema.model import SpecError, schema_from_body, subject_from_body
from kschema.store import _common as store_rules
from kschema.store.base import InvalidInputError, check_references, check_subject_name

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
LIMIT_KEYS = ("minimum", "maximum", "minLength", "maxLength", "pattern")


def _property(crd_file: str, path: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRD_DIR / crd_file).read_text())
    (version,) = crd["spec"]["versions"]
    node: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    for part in path.split("."):
        node = node["properties"][part[:-2]]["items"] if part.endswith("[]") else node["properties"][part]
    return node


@pytest.mark.parametrize(("crd_file", "path"), sorted(limits.CRD_FIELDS))
def test_the_crd_field_carries_the_limits_of_the_table(crd_file: str, path: str) -> None:
    found = {k: v for k, v in _property(crd_file, path).items() if k in LIMIT_KEYS}

    assert found == limits.CRD_FIELDS[(crd_file, path)].openapi()


def _re2_to_python(pattern: str) -> str:
    return re.sub(r"\\x\{([0-9A-F]+)\}", lambda m: f"\\U{int(m.group(1), 16):08X}", pattern)


@pytest.mark.parametrize("text", ["orders-value", "com.acme.Order", "ünïcødé-主题", "a b"])
def test_good_subject_names_pass_the_crd_pattern_and_the_store(text: str) -> None:
    pattern = limits.SUBJECT_NAME.pattern()
    assert pattern is not None
    assert re.fullmatch(_re2_to_python(pattern), text)
    check_subject_name(text)


BAD_NAMES = ["a\tb", "a\nb", "x\u202ey", "\u2066x", "del\x7f", "c1\x85", "\u200forders", ""]


@pytest.mark.parametrize("text", BAD_NAMES)
def test_names_the_store_refuses_fail_the_crd_pattern_and_the_model(text: str) -> None:
    with pytest.raises(InvalidInputError):
        check_subject_name(text)
    if text:
        pattern = limits.SUBJECT_NAME.pattern()
        assert pattern is not None
        assert re.fullmatch(_re2_to_python(pattern), text) is None
    if not text:
        return  # an empty spec.name defaults to metadata.name
    with pytest.raises(SpecError, match=r"spec\.name"):
        subject_from_body(
            {"metadata": {"name": "s", "namespace": "n"}, "spec": {"name": text, "format": "AVRO"}}
        )


def _schema_body(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "s", "namespace": "n"},
        "spec": {"subject": "orders", "version": 1, "schema": '"string"', **spec},
    }


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"version": 2**31}, "spec.version"),
        ({"version": 0}, "spec.version"),
        ({"id": 2**31}, "spec.id"),
        ({"id": 0}, "spec.id"),
        ({"schema": "a\x00b"}, "spec.schema"),
        ({"schema": "x" * (limits.SCHEMA_TEXT.max_length + 1)}, "spec.schema"),
        ({"references": [{"name": "r", "subject": "a\tb", "version": 1}]}, "spec.references[0].subject"),
        ({"references": [{"name": "r", "subject": "s", "version": 2**31}]}, "spec.references[0].version"),
        ({"references": [{"name": "r\x00", "subject": "s", "version": 1}]}, "spec.references[0].name"),
        ({"sunset": "2030-01-01T99"}, "spec.sunset"),
    ],
)
def test_schema_fields_the_store_refuses_are_refused_by_the_model(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        schema_from_body(_schema_body(**spec))

    assert caught.value.field == field


def test_the_store_refuses_what_the_model_refuses_at_the_edges() -> None:
    with pytest.raises(InvalidInputError):
        store_rules.check_version(2**31)
    with pytest.raises(InvalidInputError):
        check_references([Reference("r", "s", 2**31)])
    with pytest.raises(InvalidInputError):
        store_rules.check_sunset("2030-01-01T99")
    assert store_rules.check_version(2**31 - 1) == 2**31 - 1
    assert schema_from_body(_schema_body(version=2**31 - 1, id=2**31 - 1)).pinned_id == 2**31 - 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [("Team B", "must name a namespace"), ("n", "own namespace"), ("x" * 64, "must name a namespace")],
)
def test_a_bad_transfer_annotation_is_refused_with_the_field(value: str, reason: str) -> None:
    body = {
        "metadata": {"name": "s", "namespace": "n", "annotations": {"kschema.io/transfer-to": value}},
        "spec": {"format": "AVRO"},
    }
    with pytest.raises(SpecError, match=reason) as caught:
        subject_from_body(body)

    assert caught.value.field == "metadata.annotations[kschema.io/transfer-to]"


def test_a_transfer_annotation_names_the_receiving_namespace() -> None:
    body = {
        "metadata": {"name": "s", "namespace": "team-a", "annotations": {"kschema.io/transfer-to": "team-b"}},
        "spec": {"format": "AVRO"},
    }
    assert subject_from_body(body).transfer_to == "team-b"
