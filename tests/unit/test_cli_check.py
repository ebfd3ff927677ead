"""`kschema check` run as a subprocess on manifest trees, the way CI jobs run it, plus the manifest reader
it is built on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kschema.formats import InvalidSchemaError, SchemaFormat, parse_schema
from kschema.manifests import parse_manifests
from kschema.model import schema_from_body, subject_from_body
from kschema.policy import Catalog, review_schema

REPO = Path(__file__).parents[2]
TREES = REPO / "tests" / "data" / "check"
EXAMPLES = REPO / "examples"
KSCHEMA = Path(sys.executable).with_name("kschema")

V3_BREAKS_V2 = (
    'version 3 of subject "orders-value" is not BACKWARD compatible with version 2: /fields/discount_cents: '
    "field 'discount_cents' is missing from the writer and has no default in the reader; a reader of "
    "version 3 cannot read data written with version 2"
)


def _kschema(*args: str | Path, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert KSCHEMA.exists(), f"the kschema console script is not installed next to {sys.executable}"
    return subprocess.run(
        [str(KSCHEMA), "check", *map(str, args)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return done.stdout.splitlines()


# --------------------------------------------------------------------------------------------------------
# Trees in tests/data/check


def test_a_compatible_tree_exits_0_and_counts_what_it_checked_and_ignored() -> None:
    done = _kschema("compatible", cwd=TREES)
    assert done.returncode == 0, done.stdout + done.stderr
    # Also proves the broken file under compatible/.hidden/ and the README were never read.
    assert done.stdout == (
        "3 subjects, 5 schemas checked: 0 refused, 0 warnings; 2 other objects ignored (2 ConfigMap)\n"
    )
    assert done.stderr == ""


def test_an_incompatible_version_exits_1_with_the_located_message() -> None:
    done = _kschema("incompatible-version", cwd=TREES)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "incompatible-version/orders-value-v2.yaml: Schema default/orders-value-v2: version 2 of subject "
        '"orders-value" is not BACKWARD compatible with version 1: /fields/discount_cents: field '
        "'discount_cents' is missing from the writer and has no default in the reader; a reader of version 2 "
        "cannot read data written with version 1"
    ) in _lines(done)
    assert _lines(done)[-1] == "1 subject, 2 schemas checked: 2 refused, 1 warning"


def test_the_refusal_is_word_for_word_what_the_webhook_policy_answers() -> None:
    bodies = [
        {**body, "metadata": {**body["metadata"], "namespace": "default"}}
        for path in sorted((TREES / "incompatible-version").glob("*.yaml"))
        for body in yaml.safe_load_all(path.read_text())
    ]
    subjects = [subject_from_body(b) for b in bodies if b["kind"] == "Subject"]
    schemas = [schema_from_body(b) for b in bodies if b["kind"] == "Schema"]
    v2 = next(s for s in schemas if s.version == 2)
    decision = review_schema(v2, None, Catalog(subjects, schemas))
    assert decision.reasons

    done = _kschema("incompatible-version", cwd=TREES)
    for reason in decision.reasons:
        assert f"incompatible-version/orders-value-v2.yaml: {reason}" in _lines(done)


def test_an_invalid_schema_exits_1_with_the_parsers_message() -> None:
    text = yaml.safe_load_all((TREES / "invalid-schema" / "orders.yaml").read_text())
    schema_text = next(d for d in text if d["kind"] == "Schema")["spec"]["schema"]
    with pytest.raises(InvalidSchemaError) as parser_error:
        parse_schema(SchemaFormat.AVRO, schema_text)

    done = _kschema("invalid-schema", cwd=TREES)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "invalid-schema/orders.yaml: Schema default/orders-value-v1: spec.schema is not a valid AVRO schema: "
        f"{parser_error.value}"
    ) in _lines(done)


def test_malformed_yaml_exits_2_naming_the_file_document_and_line() -> None:
    done = _kschema("malformed-yaml", cwd=TREES)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        "malformed-yaml/broken.yaml: document 2: line 15, column 2: invalid YAML: did not find expected key "
        "(while parsing a block mapping)"
    ) in _lines(done)
    # The documents before the broken one and the other files are still checked.
    assert _lines(done)[-1] == "1 subject, 1 schema checked: 0 refused, 0 warnings, 1 input error"


def test_a_missing_path_exits_2_and_names_it() -> None:
    done = _kschema("compatible", "no-such-dir", cwd=TREES)
    assert done.returncode == 2
    assert "no-such-dir: no such file or directory" in _lines(done)


def test_a_subject_claimed_by_two_namespaces_a_duplicate_version_and_a_dangling_reference_are_refused() -> (
    None
):
    done = _kschema("conflicts", cwd=TREES)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = _lines(done)
    assert (
        'conflicts/team-b/orders.yaml: Subject team-b/orders: subject "orders-value" is already declared by '
        "Subject team-a/orders; a registry subject belongs to one namespace"
    ) in lines
    assert (
        'conflicts/team-a/orders.yaml: Schema team-a/orders-v1-again: version 1 of subject "orders-value" is '
        "already declared by Schema team-a/orders-v1; each version number is used once. Use the next free "
        "version, 3"
    ) in lines
    assert (
        "conflicts/team-a/orders.yaml: Schema team-a/orders-v2: spec.references: reference "
        '"com.acme.Customer" (subject "com.acme.Customer" version 1) does not exist: no Subject declares '
        'subject "com.acme.Customer"'
    ) in lines


# --------------------------------------------------------------------------------------------------------
# Small trees written by the tests

_SUBJECT = """\
apiVersion: kschema.io/v1alpha1
kind: Subject
metadata: {name: orders-value}
spec: {format: AVRO}
"""


def _schema(version: object, name: str = "", fields: str = "") -> str:
    return f"""\
apiVersion: kschema.io/v1alpha1
kind: Schema
metadata: {{name: {name or f"orders-value-v{version}"}}}
spec:
  subject: orders-value
  version: {version}
  schema: '{{"type": "record", "name": "Order", "fields": [{{"name": "id", "type": "string"}}{fields}]}}'
"""


def test_a_bad_field_is_refused_naming_the_file_document_and_field(tmp_path: Path) -> None:
    (tmp_path / "orders.yaml").write_text(f"{_SUBJECT}---\n{_schema(1)}---\n{_schema(0, 'orders-zero')}")
    done = _kschema("orders.yaml", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "orders.yaml: document 3: Schema default/orders-zero: "
        "spec.version: must be an integer from 1 to 2147483647, got 0"
    ) in _lines(done)
    assert _lines(done)[-1] == "1 subject, 2 schemas checked: 1 refused, 0 warnings"


def test_a_resource_declared_twice_is_refused_where_it_is_declared_again(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(f"{_SUBJECT}---\n{_schema(1)}")
    (tmp_path / "b.yml").write_text(_schema(1))
    done = _kschema(".", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert _lines(done)[0] == (
        "b.yml: document 1: Schema default/orders-value-v1: is already declared at a.yaml: document 2; "
        "declare each resource once (applying both, the later one silently replaces the earlier)"
    )


def test_objects_without_a_namespace_land_in_the_namespace_option(tmp_path: Path) -> None:
    fields = ', {"name": "cost", "type": "long"}'
    (tmp_path / "orders.yaml").write_text(f"{_SUBJECT}---\n{_schema(1)}---\n{_schema(2, fields=fields)}")
    done = _kschema("orders.yaml", "--namespace", "shop", cwd=tmp_path)
    assert done.returncode == 1
    assert any(line.startswith("orders.yaml: Schema shop/orders-value-v2: ") for line in _lines(done))


def test_manifests_can_come_from_standard_input(tmp_path: Path) -> None:
    done = _kschema("-", cwd=tmp_path, stdin=f"{_SUBJECT}---\n{_schema(1)}---\n{_schema(1, 'copy')}")
    assert done.returncode == 1
    assert any(line.startswith("<stdin>: Schema default/copy: version 1 of subject") for line in _lines(done))


def test_json_output_reports_the_summary_findings_and_resources() -> None:
    done = _kschema("incompatible-version", "--output", "json", cwd=TREES)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["status"] == 1
    assert report["ok"] is False
    assert report["against"] is None
    assert report["summary"] == {
        "subjects": 1,
        "schemas": 2,
        "refused": 2,
        "warnings": 1,
        "errors": 0,
        "ignored": 0,
    }
    assert [(f["severity"], f["resource"]) for f in report["findings"]] == [
        ("refused", "Schema default/orders-value-v2"),
        ("warning", "Subject default/orders-value"),
        ("refused", "Schema default/orders-value-v1"),
    ]
    refusal = report["findings"][0]
    assert refusal == {
        "severity": "refused",
        "path": "incompatible-version/orders-value-v2.yaml",
        "document": 1,
        "item": None,
        "line": 2,
        "resource": "Schema default/orders-value-v2",
        "message": refusal["message"],
    }
    assert refusal["message"].startswith("Schema default/orders-value-v2: version 2 of subject")
    assert [(r["resource"], r["allowed"], r["change"]) for r in report["resources"]] == [
        ("Subject default/orders-value", True, None),
        ("Schema default/orders-value-v2", False, None),
        ("Schema default/orders-value-v1", False, None),
    ]


def test_json_output_lists_ignored_objects_and_list_items() -> None:
    done = _kschema("compatible", "-o", "json", cwd=TREES)
    assert done.returncode == 0
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert report["findings"] == []
    listed = {r["resource"]: r for r in report["resources"]}
    assert len(listed) == 8
    assert listed["Schema default/payments-value-v2"] == {
        "resource": "Schema default/payments-value-v2",
        "kind": "Schema",
        "namespace": "default",
        "name": "payments-value-v2",
        "path": "compatible/payments-list.yml",
        "document": 1,
        "item": 2,
        "line": 23,
        "change": None,
        "allowed": True,
    }
    assert [(i["path"], i["kind"], i["name"]) for i in report["ignored"]] == [
        ("compatible/payments-list.yml", "ConfigMap", "payments-settings"),
        ("compatible/subjects.yaml", "ConfigMap", "orders-settings"),
    ]


# --------------------------------------------------------------------------------------------------------
# The examples


def _example_folders() -> list[str]:
    return sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir() and p.name != "incompatible")


def test_the_examples_pass() -> None:
    folders = _example_folders()
    assert {"avro", "json", "protobuf"} <= set(folders)
    done = _kschema(*folders, cwd=EXAMPLES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not [line for line in _lines(done)[:-1] if ": warning: " not in line]


def test_the_incompatible_example_fails_with_the_avro_examples() -> None:
    done = _kschema("avro", "incompatible", cwd=EXAMPLES)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"incompatible/orders-value-v3.yaml: Schema default/orders-value-v3: {V3_BREAKS_V2}" in _lines(
        done
    )


# --------------------------------------------------------------------------------------------------------
# --against a Git revision


def _git(repo: Path, *args: str) -> None:
    environment = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(
        ["git", "-c", "user.name=CI", "-c", "user.email=ci@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        env=environment,
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def deployed(tmp_path: Path) -> Path:
    """A Git work tree whose `manifests/` (the Avro examples) is tagged `deployed`."""
    shutil.copytree(EXAMPLES / "avro", tmp_path / "manifests")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "manifests")
    _git(tmp_path, "commit", "-q", "-m", "deployed")
    _git(tmp_path, "tag", "deployed")
    return tmp_path


def test_against_a_ref_only_the_new_version_is_reviewed(deployed: Path) -> None:
    shutil.copy(EXAMPLES / "incompatible" / "orders-value-v3.yaml", deployed / "manifests")
    done = _kschema("manifests", "--against", "deployed", cwd=deployed)
    assert done.returncode == 1, done.stdout + done.stderr
    # Version 2 is already in the cluster: the pair is reported once, on the version being added.
    assert _lines(done) == [
        f"manifests/orders-value-v3.yaml: Schema default/orders-value-v3: {V3_BREAKS_V2}",
        "2 subjects, 4 schemas checked: 1 refused, 0 warnings; against deployed: 1 new, 0 changed, 0 removed",
    ]


def test_against_a_ref_changing_an_existing_schema_is_refused_even_when_compatible(deployed: Path) -> None:
    orders = deployed / "manifests" / "orders.yaml"
    orders.write_text(orders.read_text().replace('"default": "EUR"', '"default": "USD"'))
    done = _kschema("manifests", "--against", "deployed", cwd=deployed)
    assert done.returncode == 1, done.stdout + done.stderr
    assert _lines(done) == [
        "manifests/orders.yaml: Schema default/orders-value-v2: spec.schema cannot change once created: a "
        "version's content, number and subject are fixed for ever. Declare a new Schema with a new version "
        "instead (this is version 2)",
        "2 subjects, 3 schemas checked: 1 refused, 0 warnings; against deployed: 0 new, 1 changed, 0 removed",
    ]
    # Without --against nothing says the content was ever different.
    assert _kschema("manifests", cwd=deployed).returncode == 0


def test_against_a_ref_changing_a_subject_format_is_refused(deployed: Path) -> None:
    customer = deployed / "manifests" / "customer.yaml"
    customer.write_text(customer.read_text().replace("format: AVRO", "format: JSON"))
    done = _kschema("manifests", "--against", "deployed", cwd=deployed)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "manifests/customer.yaml: Subject default/customer: spec.format cannot change (from AVRO to JSON); "
        "existing versions keep their format. Create a new Subject for the new format"
    ) in _lines(done)


def test_against_a_ref_removed_schemas_pass_with_the_webhooks_warnings(deployed: Path) -> None:
    (deployed / "manifests" / "customer.yaml").unlink()
    done = _kschema("manifests", "--against", "deployed", cwd=deployed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _lines(done) == [
        "manifests/customer.yaml: warning: Schema default/customer-v1: version 1 is the latest version of "
        'subject "com.acme.Customer"; after the deletion clients asking for the latest version get no '
        "version",
        "manifests/customer.yaml: warning: Schema default/customer-v1: version 1 of subject "
        '"com.acme.Customer" is still referenced by Schema default/orders-value-v1, Schema '
        "default/orders-value-v2",
        "1 subject, 2 schemas checked: 0 refused, 2 warnings; against deployed: 0 new, 0 changed, 2 removed",
    ]


def test_against_a_ref_without_the_directory_everything_is_new(deployed: Path) -> None:
    shutil.copytree(EXAMPLES / "json", deployed / "payments")
    done = _kschema("payments", "--against", "deployed", cwd=deployed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _lines(done)[-1].endswith("; against deployed: 5 new, 0 changed, 0 removed")


def test_against_an_unknown_ref_exits_2_without_reviewing(deployed: Path) -> None:
    done = _kschema("manifests", "--against", "no-such-tag", cwd=deployed)
    assert done.returncode == 2
    assert _lines(done) == [
        f"manifests: cannot compare with Git revision 'no-such-tag': no commit named 'no-such-tag' in the "
        f"repository at {deployed.resolve()}",
        "not checked: 1 input error",
    ]


def test_against_a_ref_outside_a_git_work_tree_exits_2(tmp_path: Path) -> None:
    (tmp_path / "orders.yaml").write_text(_SUBJECT)
    done = _kschema("orders.yaml", "--against", "HEAD", cwd=tmp_path)
    assert done.returncode == 2
    assert _lines(done)[0].startswith("orders.yaml: cannot compare with Git revision 'HEAD': ")


def test_against_a_ref_standard_input_is_refused_as_having_no_history(deployed: Path) -> None:
    done = _kschema("-", "--against", "deployed", cwd=deployed, stdin=_SUBJECT)
    assert done.returncode == 2
    assert _lines(done) == [
        "-: cannot compare with Git revision 'deployed': standard input has no history; pass paths in a "
        "Git work tree",
        "not checked: 1 input error",
    ]


# --------------------------------------------------------------------------------------------------------
# The manifest reader


def test_an_unquoted_date_stays_the_string_the_cluster_stores() -> None:
    found = parse_manifests(
        _schema(1) + "  state: DEPRECATED\n  sunset: 2030-01-01\n", "x.yaml", namespace="ns"
    )
    assert not found.problems
    assert found.schemas[0].spec.sunset == "2030-01-01"


def test_list_items_keep_their_index_and_line() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- " + _SUBJECT.replace("\n", "\n  ") + "\n- kind: Secret\n"
    found = parse_manifests(text, "list.yaml", namespace="ns")
    assert [(d.location.item, d.location.line) for d in found.subjects] == [(0, 4)]
    assert [(i.kind, i.location.item) for i in found.ignored] == [("Secret", 1)]


def test_a_kschema_object_with_another_api_version_is_refused_not_ignored() -> None:
    found = parse_manifests(_SUBJECT.replace("v1alpha1", "v1"), "x.yaml", namespace="ns")
    assert [p.message for p in found.problems] == [
        "Subject ns/orders-value: apiVersion: must be kschema.io/v1alpha1, got 'kschema.io/v1'"
    ]
