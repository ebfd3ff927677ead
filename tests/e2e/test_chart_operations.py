"""Chart parts for running it: the `helm test` hook, the ServiceMonitor option and the operator replicas'
leader-election priorities, rendered by the real `helm`. (tests/node installs the chart and runs them.)"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_chart import POSTGRES, REPO_ROOT, Helm


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "dev" / "helm" / "build.sh")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"building helm failed:\n{done.stderr[-4000:]}"
    return Helm(Path(done.stdout.strip().splitlines()[-1]), tmp_path_factory.mktemp("helm"))


def _kinds(chart: Helm, values: dict[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for manifest in chart.template(values):
        out.setdefault(manifest["kind"], []).append(manifest)
    return out


def test_the_helm_test_hook_asks_the_read_api_for_readyz_through_its_service(chart: Helm) -> None:
    text = chart.template_text(show_only="templates/tests/test-readyz.yaml")

    assert "helm.sh/hook: test" in text
    assert "http://kschema.kschema-system.svc:8081/readyz" in text
    assert "runAsNonRoot: true" in text
    assert "readOnlyRootFilesystem: true" in text


def test_the_service_monitor_is_off_by_default_and_scrapes_the_api_service_when_on(chart: Helm) -> None:
    assert "ServiceMonitor" not in _kinds(chart)

    kinds = _kinds(chart, {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}})

    [monitor] = kinds["ServiceMonitor"]
    spec = monitor["spec"]
    [api_service] = [s for s in kinds["Service"] if s["metadata"]["name"] == "kschema"]
    labels = api_service["metadata"]["labels"]
    assert all(labels[k] == v for k, v in spec["selector"]["matchLabels"].items())
    assert spec["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert monitor["metadata"]["labels"]["release"] == "prom"


def test_a_bad_scrape_interval_is_refused(chart: Helm) -> None:
    error = chart.template_error({"metrics": {"serviceMonitor": {"enabled": True, "interval": "often"}}})

    assert "interval" in error


def test_operator_replicas_draw_distinct_leader_election_priorities(chart: Helm) -> None:
    deployments = _kinds(chart, POSTGRES)["Deployment"]
    [operator] = [d for d in deployments if d["metadata"]["name"] == "kschema-operator"]
    env = operator["spec"]["template"]["spec"]["containers"][0]["env"]

    assert {"name": "KSCHEMA_PRIORITY", "value": "random"} in env


@pytest.mark.parametrize("values", [{}, POSTGRES], ids=["sqlite", "postgres"])
def test_no_pod_gets_service_link_variables(chart: Helm, values: dict[str, Any]) -> None:
    # A Service named kschema-webhook would inject KSCHEMA_WEBHOOK_PORT=tcp://... and break the config.
    kinds = _kinds(chart, values)
    pods = [d["spec"]["template"]["spec"] for d in kinds["Deployment"]] + [p["spec"] for p in kinds["Pod"]]

    assert pods
    assert all(pod["enableServiceLinks"] is False for pod in pods)
