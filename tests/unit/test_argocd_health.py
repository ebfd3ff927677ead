"""The Argo CD health check (gitops/argocd/health.lua) run with Lua 5.1, the dialect of gopher-lua that
Argo CD embeds, against the statuses in gitops/argocd/testdata/ and the expectations of health_test.yaml."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

REPO_ROOT = Path(__file__).resolve().parents[2]
ARGOCD_DIR = REPO_ROOT / "gitops" / "argocd"
HEALTH_LUA = ARGOCD_DIR / "health.lua"
ARGOCD_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def evaluate_health(obj: Mapping[str, Any], script: str | None = None) -> tuple[str, str]:
    """Runs the health script the way Argo CD does: the resource as the global `obj`, the script's body as a
    chunk that returns `{status = ..., message = ...}`."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=False)
    lua.globals().obj = lua.table_from(dict(obj), recursive=True)
    result = lua.execute(script if script is not None else HEALTH_LUA.read_text())
    if result is None:
        raise AssertionError("the health script returned nothing")
    return str(result["status"]), str(result["message"] or "")


def _cases() -> list[Any]:
    spec = yaml.safe_load((ARGOCD_DIR / "health_test.yaml").read_text())
    return [pytest.param(case, id=Path(case["inputPath"]).stem) for case in spec["tests"]]


@pytest.mark.parametrize("case", _cases())
def test_health_of_each_recorded_status_matches_its_expectation(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((ARGOCD_DIR / case["inputPath"]).read_text())

    status, message = evaluate_health(obj)

    assert (status, message) == (case["healthStatus"]["status"], case["healthStatus"]["message"])


def test_every_testdata_file_has_an_expectation() -> None:
    spec = yaml.safe_load((ARGOCD_DIR / "health_test.yaml").read_text())
    covered = {case["inputPath"] for case in spec["tests"]}

    present = {f"testdata/{p.name}" for p in (ARGOCD_DIR / "testdata").glob("*.yaml")}

    assert present == covered


def test_both_kinds_are_covered_in_every_health_state() -> None:
    spec = yaml.safe_load((ARGOCD_DIR / "health_test.yaml").read_text())
    seen = set()
    for case in spec["tests"]:
        kind = yaml.safe_load((ARGOCD_DIR / case["inputPath"]).read_text())["kind"]
        seen.add((kind, case["healthStatus"]["status"]))

    assert seen >= {(k, s) for k in ("Subject", "Schema") for s in ("Healthy", "Progressing", "Degraded")}


def _ready(status: str, *, generation: int = 1, message: str = "", reason: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Schema",
        "metadata": {"name": "s", "namespace": "n", "generation": generation},
        "status": {
            "observedGeneration": generation,
            "conditions": [{"type": "Ready", "status": status, "reason": reason, "message": message}],
        },
    }


def test_ready_false_without_a_message_reports_the_reason() -> None:
    assert evaluate_health(_ready("False", reason="InvalidSchema")) == ("Degraded", "InvalidSchema")


def test_ready_false_without_message_or_reason_still_says_what_is_wrong() -> None:
    assert evaluate_health(_ready("False")) == ("Degraded", "Ready is False")


def test_a_stale_ready_false_is_progressing_not_degraded() -> None:
    # The user fixed the spec (generation 3); the failure was about generation 2.
    obj = _ready("False", generation=2, message="field removed")
    obj["metadata"]["generation"] = 3

    assert evaluate_health(obj) == ("Progressing", "Waiting for the operator to observe generation 3")


def test_an_object_without_metadata_does_not_break_the_script() -> None:
    status, _ = evaluate_health({"kind": "Subject", "status": {"observedGeneration": 1, "conditions": []}})

    assert status == "Progressing"


@pytest.mark.parametrize(
    "condition_status", ["True", "False", "Unknown", "Bogus"], ids=lambda s: f"Ready={s}"
)
def test_the_script_only_ever_returns_statuses_argo_cd_knows(condition_status: str) -> None:
    status, message = evaluate_health(_ready(condition_status, message="m"))

    assert status in ARGOCD_STATUSES
    assert message


@pytest.mark.parametrize("kind", ["Subject", "Schema"])
def test_argocd_cm_installs_health_lua_verbatim_for_each_kind(kind: str) -> None:
    config_map = yaml.safe_load((ARGOCD_DIR / "argocd-cm.yaml").read_text())

    assert config_map["metadata"]["name"] == "argocd-cm"
    assert config_map["data"][f"resource.customizations.health.kschema.io_{kind}"] == HEALTH_LUA.read_text()


def test_argocd_cm_holds_no_other_keys() -> None:
    config_map = yaml.safe_load((ARGOCD_DIR / "argocd-cm.yaml").read_text())

    assert set(config_map["data"]) == {
        "resource.customizations.health.kschema.io_Subject",
        "resource.customizations.health.kschema.io_Schema",
    }


def test_example_application_syncs_with_pruning_into_a_destination_namespace() -> None:
    app = yaml.safe_load((ARGOCD_DIR / "application.yaml").read_text())

    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    assert app["spec"]["destination"]["namespace"]
    assert app["spec"]["syncPolicy"]["automated"]["prune"] is True


def _operator_waiting_reasons() -> set[str]:
    """The reasons the operator reports with `Blocked(..., temporary=True)` (it retries those by itself),
    plus `SubjectNotFound`, which it re-checks when the Subject appears. `ConfigMapConflict` is retried
    too, but it waits for a person to remove a foreign ConfigMap, so Argo CD shows it Degraded."""
    reasons = {"SubjectNotFound"}
    for path in (REPO_ROOT / "operator" / "kschema" / "operator").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Blocked"
                and any(
                    k.arg == "temporary" and isinstance(k.value, ast.Constant) and k.value.value is True
                    for k in node.keywords
                )
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                reasons.add(str(node.args[0].value))
    return reasons - {"ConfigMapConflict"}


def test_the_waiting_reasons_in_the_health_check_are_the_ones_the_operator_retries() -> None:
    block = HEALTH_LUA.read_text().split("local waitingReasons = {", 1)[1].split("}", 1)[0]
    in_lua = {line.split("=")[0].strip() for line in block.splitlines() if "=" in line}

    assert in_lua == _operator_waiting_reasons()


@pytest.mark.parametrize("reason", sorted(_operator_waiting_reasons()))
def test_a_resource_waiting_for_something_that_arrives_by_itself_is_progressing(reason: str) -> None:
    obj = {
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "False", "reason": reason, "message": "waiting"}],
        },
    }

    assert evaluate_health(obj) == ("Progressing", "waiting")
