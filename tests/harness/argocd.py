"""A real Argo CD for the GitOps tests: its application controller and repo server (built by
`dev/argocd/build.sh` into the user cache) and Debian's redis, as host processes against the session's
control plane, syncing from `file://` git repositories. One per test session; every process is stopped by
its pid, also when a test fails.

Argo CD is installed the way the project's docs tell users to: the Argo CD CRDs, an `argocd-cm` that
`gitops/argocd/argocd-cm.yaml` is merged into with `kubectl patch`, and Applications made from
`gitops/argocd/application.yaml`. Without argocd-server (no UI, API or CLI), this harness creates the two
objects that server would otherwise create (an empty `argocd-secret` and the `default` AppProject), syncs
by setting `operation` on the Application and refreshes with Argo CD's refresh annotation.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from kschema.devcluster.controlplane import free_port
from tests.harness.cluster import REPO_ROOT, Cluster

BUILD_SCRIPT = REPO_ROOT / "dev" / "argocd" / "build.sh"
ARGOCD_CM = REPO_ROOT / "gitops" / "argocd" / "argocd-cm.yaml"
APPLICATION = REPO_ROOT / "gitops" / "argocd" / "application.yaml"
NAMESPACE = "argocd"
# How often the controller compares every Application with git and the cluster on its own (Argo CD's
# default is 120 s plus up to 60 s of jitter; `timeout.reconciliation` in argocd-cm). Short and without
# jitter here, so that tests see several cycles.
RESYNC_SECONDS = 10

# What argocd-server would create on first start.
SERVER_OBJECTS = """
apiVersion: v1
kind: Secret
metadata:
  name: argocd-secret
  namespace: argocd
  labels: {app.kubernetes.io/name: argocd-secret, app.kubernetes.io/part-of: argocd}
type: Opaque
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: default, namespace: argocd}
spec:
  sourceRepos: ["*"]
  destinations: [{server: "*", namespace: "*"}]
  clusterResourceWhitelist: [{group: "*", kind: "*"}]
"""

# The ConfigMap Argo CD's install manifests ship, before the project's keys are merged in.
BASE_ARGOCD_CM = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels: {app.kubernetes.io/name: argocd-cm, app.kubernetes.io/part-of: argocd}
"""


class GitRepo:
    """A bare repository served as `file://` and a working copy that tests edit and push."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "contracts.git"
        self.work = root / "work"
        self._git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=root)
        self._git("clone", "-q", str(self.bare), str(self.work), cwd=root)
        self._git("config", "user.email", "tests@kschema.invalid")
        self._git("config", "user.name", "kschema tests")

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def commit(self, message: str) -> str:
        """Commits everything in the working copy, pushes it to `main` and returns the commit."""
        self._git("add", "-A")
        self._git("commit", "-q", "--allow-empty", "-m", message)
        self._git("push", "-q", "origin", "HEAD:main")
        return self._git("rev-parse", "HEAD").strip()

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(
            ["git", *args], cwd=cwd or self.work, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout


@dataclass
class ArgoCD:
    cluster: Cluster
    home: Path  # the build's cache directory: bin/, crds/
    work: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    def log(self, component: str) -> str:
        path = self.logs / f"{component}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # Applications -------------------------------------------------------------------------------------

    def application(
        self,
        name: str,
        repo: GitRepo,
        path: str,
        destination: str,
        *,
        retry_limit: int = 1,
        sync_options: tuple[str, ...] = (),
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The project's application.yaml with its source and destination pointed here. `retry_limit`
        is lowered from the documented 5 (5 s, 10 s, ... 1 min: about 3 minutes before a refused sync
        turns Failed) so that a refusal fails within seconds."""
        app: dict[str, Any] = yaml.safe_load(APPLICATION.read_text())
        app["metadata"]["name"] = name
        if annotations:
            app["metadata"]["annotations"] = dict(annotations)
        app["spec"]["source"].update(repoURL=repo.url, path=path, directory={"recurse": True})
        app["spec"]["destination"]["namespace"] = destination
        policy = app["spec"]["syncPolicy"]
        policy["syncOptions"] = [*policy["syncOptions"], *sync_options]
        policy["retry"] = {
            "limit": retry_limit,
            "backoff": {"duration": "1s", "factor": 2, "maxDuration": "5s"},
        }
        return app

    def apply(self, app: Mapping[str, Any]) -> None:
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(app))

    def get(self, name: str) -> dict[str, Any]:
        got: dict[str, Any] = json.loads(
            self.cluster.kubectl("get", "-n", NAMESPACE, "application", name, "-o", "json").stdout
        )
        return got

    def refresh(self, name: str, kind: str = "normal") -> None:
        self.cluster.kubectl(
            "annotate",
            "-n",
            NAMESPACE,
            "application",
            name,
            f"argocd.argoproj.io/refresh={kind}",
            "--overwrite",
        )

    def sync(self, name: str, initiated_by: str) -> None:
        """What `argocd app sync` asks for: an operation on the Application, run by the controller. As the
        CLI does, it carries the Application's sync options (an operation does not read them itself)."""
        options = self.get(name)["spec"]["syncPolicy"].get("syncOptions", [])
        sync = {"prune": True, "syncOptions": options}
        operation = {"operation": {"initiatedBy": {"username": initiated_by}, "sync": sync}}
        self.cluster.kubectl(
            "patch", "-n", NAMESPACE, "application", name, "--type", "merge", "-p", json.dumps(operation)
        )

    def wait(
        self, name: str, what: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 120
    ) -> dict[str, Any]:
        """Polls the Application until `predicate` holds; the failure shows its status and the controller's
        log tail."""
        deadline = time.monotonic() + timeout
        app: dict[str, Any] = {}
        while time.monotonic() < deadline:
            found = self.cluster.kubectl(
                "get", "-n", NAMESPACE, "application", name, "-o", "json", check=False
            )
            if found.returncode == 0:
                app = json.loads(found.stdout)
                if predicate(app):
                    return app
            time.sleep(0.5)
        raise AssertionError(
            f"Application {name} never reached {what} in {timeout}s; status:\n"
            f"{json.dumps(app.get('status', {}), indent=1)[-6000:]}\ncontroller log:\n"
            f"{self.log('controller')[-3000:]}"
        )

    def delete(self, name: str, timeout: int = 120) -> None:
        """Deletes the Application; its resources-finalizer makes the controller delete what it synced."""
        self.cluster.kubectl(
            "delete", "-n", NAMESPACE, "application", name, "--ignore-not-found", f"--timeout={timeout}s"
        )

    # Processes ----------------------------------------------------------------------------------------

    def start(self) -> None:
        for folder in ("logs", "tls", "ssh", "gpg", "tmp", "redis"):
            (self.work / folder).mkdir(parents=True, exist_ok=True)
        redis_port, repo_port = free_port(), free_port()
        self._spawn(
            "redis",
            [
                shutil.which("redis-server") or "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.work / "redis"),
            ],
        )
        _wait_for_port(redis_port, self.processes["redis"], self.logs / "redis.log")
        redis = f"127.0.0.1:{redis_port}"
        bin_dir = self.home / "bin"
        self._spawn(
            "repo-server",
            [
                str(bin_dir / "argocd-repo-server"),
                "--loglevel=info",
                "--logformat=json",
                "--address=127.0.0.1",
                f"--port={repo_port}",
                "--metrics-address=127.0.0.1",
                f"--metrics-port={free_port()}",
                f"--redis={redis}",
            ],
        )
        _wait_for_port(repo_port, self.processes["repo-server"], self.logs / "repo-server.log")
        metrics = free_port()
        self._spawn(
            "controller",
            [
                str(bin_dir / "argocd-application-controller"),
                "--loglevel=info",
                "--logformat=json",
                f"--namespace={NAMESPACE}",
                f"--metrics-port={metrics}",  # no address flag: it listens on every interface
                f"--redis={redis}",
                f"--repo-server=127.0.0.1:{repo_port}",
                f"--app-resync={RESYNC_SECONDS}",
                "--app-resync-jitter=0",
                # Argo CD 3.x keeps per-resource health in redis for argocd-server; persist it in the
                # Application's status so that tests (and `kubectl get application`) see it.
                "--persist-resource-health",
            ],
        )
        _wait_for_port(metrics, self.processes["controller"], self.logs / "controller.log")

    def stop(self) -> None:
        for name in ("controller", "repo-server", "redis"):
            proc = self.processes.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(20)

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            # The `in-cluster` destination (https://kubernetes.default.svc) uses $KUBECONFIG, as in
            # Argo CD's own local development set-up; no cluster Secret is needed.
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "ARGOCD_TLS_DATA_PATH": str(self.work / "tls"),
            "ARGOCD_SSH_DATA_PATH": str(self.work / "ssh"),
            "ARGOCD_GNUPGHOME": str(self.work / "gpg"),
            "ARGOCD_GPG_ENABLED": "false",
            "TMPDIR": str(self.work / "tmp"),
            # The repo server runs git-verify-wrapper.sh (shipped next to the binary) and git from PATH.
            "PATH": f"{self.home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def _spawn(self, name: str, argv: list[str]) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env(),
                cwd=self.work,
            )


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{log.stem} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(
        f"{log.stem} did not listen on port {port} in {timeout}s:\n{log.read_text()[-3000:]}"
    )


def build() -> Path:
    """The Argo CD cache directory; builds it when it is missing (`make setup` normally has)."""
    done = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"building Argo CD failed:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def _wait_established(cluster: Cluster, *crds: str, timeout: float = 60) -> None:
    # Polled: `kubectl wait` fails outright while a new CRD has no status.conditions yet.
    deadline = time.monotonic() + timeout
    for crd in crds:
        query = '{.status.conditions[?(@.type=="Established")].status}'
        while cluster.kubectl("get", "crd", crd, "-o", f"jsonpath={query}", check=False).stdout != "True":
            if time.monotonic() > deadline:
                raise AssertionError(f"CRD {crd} was not Established in {timeout}s")
            time.sleep(0.2)


def install(cluster: Cluster, home: Path) -> None:
    """CRDs, namespace, argocd-cm with the project's health checks merged in as documented, and what
    argocd-server would create."""
    # Server-side: the Application CRD is over the 256 KiB of client-side apply's annotation.
    cluster.kubectl("apply", "--server-side", "-k", str(home / "crds"))
    _wait_established(cluster, "applications.argoproj.io", "appprojects.argoproj.io")
    cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.kubectl("apply", "-f", "-", input=BASE_ARGOCD_CM)
    cluster.kubectl("-n", NAMESPACE, "patch", "configmap", "argocd-cm", "--patch-file", str(ARGOCD_CM))
    cluster.kubectl("apply", "-f", "-", input=SERVER_OBJECTS)


@pytest.fixture(scope="session")
def argocd(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArgoCD]:
    home = build()
    install(cluster, home)
    running = ArgoCD(cluster, home, tmp_path_factory.mktemp("argocd"))
    try:
        running.start()
        yield running
    finally:
        try:
            # Applications left by a failed test: cascade while the controller still runs.
            cluster.kubectl("delete", "-n", NAMESPACE, "applications", "--all", "--timeout=60s", check=False)
        finally:
            running.stop()
