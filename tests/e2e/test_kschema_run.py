"""`kschema run` as shipped: one process serving the operator, the webhook and the read API against a
real API server, driven only through kubectl and HTTP, as a platform team and its clients would."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kschema.devcluster import ControlPlane
from kschema.devcluster.webhook import local_webhook_configuration
from tests.e2e.operator_harness import EXAMPLES_DIR, READY_EXAMPLES, apply_crds, wait_ready
from tests.harness.cluster import Cluster
from tests.harness.kschema_run import start_kschema_run, wait_until_ready

pytestmark = pytest.mark.cluster

NAMESPACE = "contracts"
INCOMPATIBLE = EXAMPLES_DIR / "incompatible" / "orders-value-v3.yaml"


@dataclass
class Running:
    cluster: Cluster
    process: subprocess.Popen[bytes]
    api: str
    log: Path

    def get(self, path: str) -> tuple[int, Any, dict[str, str]]:
        try:
            with urllib.request.urlopen(self.api + path, timeout=5) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read()), dict(exc.headers)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("kschema did not stop within 60 s of SIGTERM") from None
        return self.process.returncode


def api_base(port: int) -> str:
    return f"https://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[Cluster]:
    """A control plane of this module's own: subject strings are cluster-wide, and the examples'
    subjects must not meet other modules' leftovers."""
    plane = ControlPlane()
    plane.start()
    try:
        cluster = Cluster(plane)
        apply_crds(cluster)
        cluster.kubectl("create", "namespace", NAMESPACE)
        yield cluster
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def kschema(own_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    work = tmp_path_factory.mktemp("kschema-run")
    started = start_kschema_run(own_cluster.kubeconfig, work, ca_name="kschema-run-test-ca")
    process, log = started.process, started.log
    running = Running(own_cluster, process, started.api, log)
    try:
        wait_until_ready(f"{running.api}/readyz", process, log)
        wait_until_ready(f"{started.health}/healthz", process, log)
        own_cluster.kubectl(
            "apply",
            "-f",
            "-",
            input=json.dumps(local_webhook_configuration(started.webhook, started.ca_pem, "kschema-run")),
        )
        _wait_until_the_webhook_is_consulted(own_cluster)
        yield running
    finally:
        own_cluster.kubectl(
            "delete", "-n", NAMESPACE, "schemas,subjects", "--all", "--timeout=60s", check=False
        )
        running.stop()


def _wait_until_the_webhook_is_consulted(cluster: Cluster) -> None:
    probe = {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Subject",
        "metadata": {"name": "probe", "namespace": NAMESPACE},
        "spec": {"format": "AVRO", "name": "com.acme.Customer"},
    }
    # Two Subjects claiming one registry subject in a namespace is a webhook refusal (the CRD allows it).
    cluster.kubectl("apply", "-f", str(EXAMPLES_DIR / "avro" / "customer.yaml"), "-n", NAMESPACE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        attempt = cluster.kubectl(
            "apply", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False
        )
        if attempt.returncode != 0 and "denied the request" in attempt.stderr:
            return
        time.sleep(0.5)
    raise AssertionError("the API server never consulted kschema's webhook")


def _apply_examples(cluster: Cluster, *extra: str) -> subprocess.CompletedProcess[str]:
    files = [arg for folder in READY_EXAMPLES for arg in ("-f", str(EXAMPLES_DIR / folder))]
    return cluster.kubectl("apply", "-n", NAMESPACE, *extra, *files)


def test_the_examples_become_ready_and_are_served_by_the_read_api(kschema: Running) -> None:
    _apply_examples(kschema.cluster)
    wait_ready(kschema.cluster, NAMESPACE)

    status, subjects, _ = kschema.get("/subjects")
    assert status == 200
    assert set(subjects) >= {"com.acme.Customer", "orders-value", "payments-value", "shipments-value"}
    status, latest, _ = kschema.get("/subjects/orders-value/versions/latest")
    assert (status, latest["version"]) == (200, 2)
    status, by_id, _ = kschema.get(f"/schemas/ids/{latest['id']}")
    assert status == 200
    assert by_id["schema"] == latest["schema"]
    configmap = json.loads(
        kschema.cluster.kubectl(
            "get", "-n", NAMESPACE, "configmap", "orders-value-schemas", "-o", "json"
        ).stdout
    )
    assert json.loads(configmap["data"]["versions.json"])["2"]["id"] == latest["id"]


def test_a_deprecated_example_is_served_with_deprecation_and_sunset_headers(kschema: Running) -> None:
    _apply_examples(kschema.cluster)
    wait_ready(kschema.cluster, NAMESPACE)

    status, body, headers = kschema.get("/subjects/payments-value/versions/1")

    assert (status, body["version"]) == (200, 1)
    assert "Deprecation" in headers
    assert headers["Sunset"].endswith("GMT")


def test_reapplying_the_examples_after_reconcile_shows_no_diff(kschema: Running) -> None:
    files = [arg for folder in READY_EXAMPLES for arg in ("-f", str(EXAMPLES_DIR / folder))]
    # Client-side apply (kubectl's default, Argo CD's default) and server-side apply (Argo CD's
    # ServerSideApply=true): after the operator has reconciled, each shows nothing to change.
    for mode in ((), ("--server-side", "--force-conflicts")):
        kschema.cluster.kubectl("apply", "-n", NAMESPACE, *mode, *files)
        wait_ready(kschema.cluster, NAMESPACE)
        diff = kschema.cluster.kubectl("diff", "-n", NAMESPACE, *mode, *files, check=False)
        assert (diff.returncode, diff.stdout) == (0, ""), diff.stdout + diff.stderr


def test_an_incompatible_version_is_refused_with_its_reason_and_nothing_is_stored(kschema: Running) -> None:
    _apply_examples(kschema.cluster)
    wait_ready(kschema.cluster, NAMESPACE)

    for extra in (("--dry-run=server",), (), ("--server-side",)):
        refused = kschema.cluster.kubectl(
            "apply", "-n", NAMESPACE, *extra, "-f", str(INCOMPATIBLE), check=False
        )
        assert refused.returncode != 0
        assert (
            'version 3 of subject "orders-value" is not BACKWARD compatible with version 2' in refused.stderr
        )
        assert "/fields/discount_cents" in refused.stderr

    status, versions, _ = kschema.get("/subjects/orders-value/versions")
    assert (status, versions) == (200, [1, 2])
    missing = kschema.cluster.kubectl("get", "-n", NAMESPACE, "schema", "orders-value-v3", check=False)
    assert missing.returncode != 0


def test_sigterm_stops_every_component_cleanly(kschema: Running) -> None:
    assert kschema.stop() == 0
    log = kschema.log.read_text()
    assert "Stopped the read API" in log
    assert "Stopped kschema" in log
