"""kschema as a platform team runs it next to Argo CD: `kschema run` (operator, webhook, read API) serving
one namespace of the session's control plane, its webhook registered for that namespace only (other test
modules share the control plane), and a fresh git repository with the examples for each test."""

from __future__ import annotations

import json
import shutil
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

from kschema.devcluster.webhook import local_webhook_configuration
from tests.e2e.operator_harness import EXAMPLES_DIR, READY_EXAMPLES, apply_crds
from tests.harness.argocd import ArgoCD, GitRepo
from tests.harness.cluster import Cluster
from tests.harness.kschema_run import start_kschema_run, wait_until_ready

GITOPS_DATA = Path(__file__).resolve().parents[1] / "data" / "gitops"
NAMESPACE = "gitops-contracts"
APP = "contracts"
WEBHOOK_CONFIG = "kschema-gitops"


@dataclass
class Kschema:
    cluster: Cluster
    process: subprocess.Popen[bytes]
    api: str
    log: Path

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.api + path, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def eventually(self, path: str, expected: tuple[int, Any], timeout: float = 30) -> None:
        """The read API follows the store's change feed: waits until `path` answers `expected`."""
        deadline = time.monotonic() + timeout
        while (got := self.get(path)) != expected:
            assert time.monotonic() < deadline, f"GET {path} answered {got}, expected {expected}"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_until_the_webhook_is_consulted(cluster: Cluster) -> None:
    """A Schema whose Subject does not exist is allowed with the webhook's warning: once kubectl shows
    it, the API server calls the webhook."""
    probe = {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Schema",
        "metadata": {"name": "probe-v1", "namespace": NAMESPACE},
        "spec": {"subject": "probe", "version": 1, "schema": '"string"'},
    }
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False)
        if "does not exist yet" in done.stderr:
            return
        time.sleep(0.5)
    raise AssertionError("the API server never consulted kschema's webhook")


@pytest.fixture(scope="session")
def kschema(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kschema]:
    apply_crds(cluster)
    cluster.kubectl("create", "namespace", NAMESPACE)
    work = tmp_path_factory.mktemp("kschema-gitops")
    started = start_kschema_run(
        cluster.kubeconfig,
        work,
        ca_name="kschema-gitops-test-ca",
        extra_env={"PYTHONUNBUFFERED": "1", "KSCHEMA_NAMESPACES": NAMESPACE},
    )
    process, log = started.process, started.log
    running = Kschema(cluster, process, started.api, log)
    try:
        wait_until_ready(f"{running.api}/readyz", process, log)
        config = local_webhook_configuration(started.webhook, started.ca_pem, WEBHOOK_CONFIG)
        for hook in config["webhooks"]:
            hook["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}
        cluster.kubectl("apply", "-f", "-", input=json.dumps(config))
        _wait_until_the_webhook_is_consulted(cluster)
        yield running
    finally:
        cluster.kubectl("delete", "-n", NAMESPACE, "schemas,subjects", "--all", "--timeout=60s", check=False)
        cluster.kubectl("delete", "validatingwebhookconfiguration", WEBHOOK_CONFIG, check=False)
        running.stop()


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """A git repository holding the examples that become Ready (not `incompatible/`) and a Subject whose
    Schemas sort before it (tests/data/gitops)."""
    repo = GitRepo(tmp_path)
    for folder in READY_EXAMPLES:
        shutil.copytree(EXAMPLES_DIR / folder, repo.work / "contracts" / folder)
    shutil.copytree(GITOPS_DATA, repo.work / "contracts" / "extra")
    repo.commit("The examples")
    return repo


@pytest.fixture
def contracts(argocd: ArgoCD, kschema: Kschema, repo: GitRepo) -> Iterator[GitRepo]:
    """The Application `contracts` syncing the repository's `contracts/` into NAMESPACE; deleted after
    the test (Argo CD deletes what it synced, kschema soft-deletes it), so every test starts empty."""
    try:
        yield repo
    finally:
        argocd.delete(APP)
        argocd.cluster.kubectl(
            "delete", "-n", NAMESPACE, "schemas,subjects", "--all", "--timeout=60s", check=False
        )
