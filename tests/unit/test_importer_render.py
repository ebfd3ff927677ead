"""Rendering an imported registry into manifests: names, file layout, exact schema text, determinism."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kschema.cli.check import check
from kschema.compat import CompatibilityLevel
from kschema.formats import Reference, SchemaFormat
from kschema.importer.render import MAX_RESOURCE_NAME, render, resource_name, write_directory
from kschema.importer.snapshot import ImportProblem, SourceSnapshot, SourceSubject, SourceVersion
from kschema.manifests import parse_manifests


def version(subject: str, number: int, schema_id: int, text: str = '"string"', **kw: object) -> SourceVersion:
    return SourceVersion(subject, number, schema_id, SchemaFormat.AVRO, text, **kw)  # type: ignore[arg-type]


def snapshot(*subjects: tuple[str, list[SourceVersion]]) -> SourceSnapshot:
    return SourceSnapshot(
        CompatibilityLevel.BACKWARD,
        [
            SourceSubject(name, SchemaFormat.AVRO, CompatibilityLevel.FULL, None, tuple(versions))
            for name, versions in subjects
        ],
    )


@pytest.mark.parametrize(
    ("subject", "name"),
    [
        ("orders-value", "orders-value"),
        ("acme/orders.proto-value", "acme-orders.proto-value"),
        ("com.acme.Order", "com.acme.order"),
        ("Orders Value", "orders-value"),
        ("-.x..y_", "x.y"),
        ("___", "subject"),
    ],
)
def test_subject_strings_become_dns_names(subject: str, name: str) -> None:
    assert resource_name(subject) == name


def test_a_long_subject_is_cut_and_keeps_a_hash_of_the_whole() -> None:
    a, b = "x" * 100 + "-a", "x" * 100 + "-b"
    assert len(resource_name(a)) == MAX_RESOURCE_NAME
    assert resource_name(a) != resource_name(b)
    assert resource_name(a) == resource_name(a)


TRICKY = [
    '{"type":"record","name":"R","fields":[]}',
    'syntax = "proto3";\n\nmessage M {\n\tstring id = 1;  \n}\n',
    "  leading spaces\nand a last line without newline",
    "ends with blank lines\n\n\n",
    "unicode: Zürich — 東京\n",
    "windows\r\nline ends\r\n",
    "yes",
    "123",
    "key: value # not a comment",
]


@pytest.mark.parametrize("text", TRICKY)
def test_schema_text_reads_back_exactly(text: str) -> None:
    files = render(snapshot(("s", [version("s", 1, 1, text)])), "ns", contracts=False)
    data = files["versions-00-s.yaml"].decode()
    found = parse_manifests(data, "x.yaml", namespace="ns")
    assert [s.spec.schema for s in found.schemas] == [text]
    assert next(iter(yaml.safe_load_all(data)))["spec"]["schema"] == text


def test_the_layout_puts_subjects_first_and_referencing_versions_after_their_references() -> None:
    ref = (Reference("com.acme.Address", "address", 1),)
    files = render(
        snapshot(
            ("address", [version("address", 1, 1)]),
            ("customer", [version("customer", 1, 5), version("customer", 2, 9, references=ref)]),
            ("order", [version("order", 1, 12, references=(Reference("C", "customer", 2),))]),
        ),
        None,
        contracts=False,
    )
    assert list(files) == [
        "subject-address.yaml",
        "subject-customer.yaml",
        "subject-order.yaml",
        "versions-00-address.yaml",
        "versions-00-customer.yaml",
        "versions-01-customer.yaml",
        "versions-02-order.yaml",
    ]
    subject = yaml.safe_load(files["subject-customer.yaml"])
    assert subject["spec"] == {
        "name": "customer",
        "format": "AVRO",
        "compatibility": "FULL",
        "acceptedHistory": {"throughVersion": 2},
    }
    assert "namespace" not in subject["metadata"]
    (v2,) = yaml.safe_load_all(files["versions-01-customer.yaml"])
    assert v2["metadata"]["name"] == "customer-v2"
    assert v2["spec"]["id"] == 9
    assert v2["spec"]["references"] == [{"name": "com.acme.Address", "subject": "address", "version": 1}]


def test_rendering_is_deterministic_and_keeps_deleted_versions_archived() -> None:
    source = snapshot(("s", [version("s", 1, 3, deleted=True), version("s", 4, 8)]))
    first = render(source, "ns", contracts=False)
    assert first == render(source, "ns", contracts=False)
    documents = list(yaml.safe_load_all(first["versions-00-s.yaml"]))
    assert [(d["spec"]["version"], d["spec"].get("state")) for d in documents] == [(1, "ARCHIVED"), (4, None)]


def test_a_reference_cycle_is_an_error() -> None:
    with pytest.raises(ImportProblem, match="the source's references form a cycle: a v1 -> b v1 -> a v1"):
        render(
            snapshot(
                ("a", [version("a", 1, 1, references=(Reference("B", "b", 1),))]),
                ("b", [version("b", 1, 2, references=(Reference("A", "a", 1),))]),
            ),
            None,
            contracts=False,
        )


def test_kschema_check_accepts_an_import_whose_history_breaks_its_level(tmp_path: Path) -> None:
    breaking = [
        version("legacy", 1, 1, '{"type":"record","name":"L","fields":[{"name":"a","type":"int"}]}'),
        version("legacy", 2, 4, '{"type":"record","name":"L","fields":[{"name":"a","type":"string"}]}'),
    ]
    source = snapshot(("legacy", breaking))
    out = tmp_path / "imported"
    write_directory(render(source, "moved-in", contracts=False), out)

    assert check([str(out)], namespace="default", against=None).status == 0

    # Without the accepted history, the same files are refused: the field is what lets them in.
    for path in out.glob("subject-*.yaml"):
        path.write_text(path.read_text().replace("  acceptedHistory:\n    throughVersion: 2\n", ""))
    assert check([str(out)], namespace="default", against=None).status == 1


def test_a_second_write_replaces_an_earlier_import_whole(tmp_path: Path) -> None:
    out = tmp_path / "imported"
    write_directory(
        render(snapshot(("a", [version("a", 1, 1)]), ("b", [version("b", 1, 2)])), None, contracts=False), out
    )
    write_directory(render(snapshot(("a", [version("a", 1, 1)])), None, contracts=False), out)
    assert sorted(p.name for p in out.iterdir()) == ["subject-a.yaml", "versions-00-a.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imported"]


def test_data_contracts_are_imported_when_the_source_has_them() -> None:
    metadata = {"properties": {"owner": "team-orders"}}
    rule_set = {
        "domainRules": [{"name": "idSet", "kind": "CONDITION", "type": "CEL", "expr": "size(message.id) > 0"}]
    }
    source = snapshot(("s", [version("s", 1, 1, metadata=metadata, rule_set=rule_set)]))
    (document,) = yaml.safe_load_all(render(source, None, contracts=True)["versions-00-s.yaml"])
    assert (document["spec"]["metadata"], document["spec"]["ruleSet"]) == (metadata, rule_set)
