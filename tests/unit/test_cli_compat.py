"""`kschema compat` run as a subprocess, the way users and CI jobs run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).parents[1] / "data" / "conformance" / "avro.jsonl"


def _kschema(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kschema.cli.main", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _write(directory: Path, name: str, schema: Any) -> Path:
    path = directory / name
    path.write_text(json.dumps(schema))
    return path


def _order(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "Order", "fields": [{"name": "id", "type": "string"}, *fields]}


def test_a_compatible_change_exits_0_and_says_so(tmp_path: Path) -> None:
    _write(tmp_path, "v1.avsc", _order())
    _write(tmp_path, "v2.avsc", _order({"name": "note", "type": "string", "default": ""}))
    done = _kschema("compat", "v2.avsc", "v1.avsc", "--level", "FULL", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "v2.avsc: compatible at FULL with 1 previous schema\n"


def test_an_incompatible_change_exits_1_with_located_messages(tmp_path: Path) -> None:
    _write(tmp_path, "v1.avsc", _order())
    _write(tmp_path, "v2.avsc", _order({"name": "cost", "type": "int"}))
    done = _kschema("compat", "v2.avsc", "v1.avsc", cwd=tmp_path)
    assert done.returncode == 1
    assert "incompatible at BACKWARD" in done.stdout
    assert (
        "/fields/cost: field 'cost' is missing from the writer and has no default in the reader "
        "[READER_FIELD_MISSING_DEFAULT_VALUE]; a reader of v2.avsc cannot read data written with v1.avsc"
    ) in done.stdout


def test_json_output_names_the_reader_and_writer_files(tmp_path: Path) -> None:
    _write(tmp_path, "v1.avsc", _order({"name": "cost", "type": "int"}))
    _write(tmp_path, "v2.avsc", _order({"name": "cost", "type": "long"}))
    _write(tmp_path, "v3.avsc", _order({"name": "cost", "type": "long"}))
    done = _kschema(
        "compat",
        "v3.avsc",
        "v1.avsc",
        "v2.avsc",
        "--level",
        "forward_transitive",
        "--output",
        "json",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert document["compatible"] is False
    assert document["level"] == "FORWARD_TRANSITIVE"
    assert [(i["location"], i["rule"], i["reader"], i["writer"]) for i in document["incompatibilities"]] == [
        ("/fields/cost", "TYPE_MISMATCH", "v1.avsc", "v3.avsc")
    ]


def test_an_invalid_schema_exits_2_naming_the_file_and_location(tmp_path: Path) -> None:
    _write(tmp_path, "v1.avsc", _order())
    _write(
        tmp_path, "v2.avsc", {"type": "record", "name": "Order", "fields": [{"name": "x", "type": "Nope"}]}
    )
    done = _kschema("compat", "v2.avsc", "v1.avsc", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "v2.avsc: invalid AVRO schema: /fields/0/type: unknown type 'Nope'" in done.stderr


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    done = _kschema("compat", "absent.avsc", cwd=tmp_path)
    assert done.returncode == 2
    assert "absent.avsc: cannot read" in done.stderr


def test_an_unknown_extension_needs_an_explicit_format(tmp_path: Path) -> None:
    _write(tmp_path, "v1.txt", _order())
    assert _kschema("compat", "v1.txt", cwd=tmp_path).returncode == 2
    assert _kschema("compat", "v1.txt", "--format", "avro", cwd=tmp_path).returncode == 0


def test_batch_mode_writes_one_verdict_per_record(tmp_path: Path) -> None:
    lines = CORPUS.read_text().splitlines()
    records = [json.loads(line) for line in lines[:40]]
    unparseable = next(
        json.loads(line) for line in lines if "unparseable_by_avro_java_and_avro_python" in line
    )
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(json.dumps(r) for r in [*records, unparseable]) + "\n")
    done = _kschema("compat", "--cases", cases, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["id"] for row in rows] == [r["id"] for r in [*records, unparseable]]
    assert [row["compatible"] for row in rows[:-1]] == [r["expected_compatible"] for r in records]
    assert rows[-1]["compatible"] is None
    assert rows[-1]["messages"]


def test_batch_mode_reports_a_line_that_is_not_a_record_and_exits_2(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"id": "x", "format": "AVRO"}\n[1, 2]\n')
    done = _kschema("compat", "--cases", cases, cwd=tmp_path)
    assert done.returncode == 2
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows[0] == {
        "id": "x",
        "compatible": None,
        "messages": [f"{cases}:1: missing field 'reader_or_new'"],
    }
    assert rows[1]["id"] is None
    assert rows[1]["messages"] == [f"{cases}:2: a record must be a JSON object"]


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "kschema"
    done = subprocess.run(
        [str(script), "compat", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert "--cases" in done.stdout
