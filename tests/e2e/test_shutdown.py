"""SIGTERM stops `kschema run|operator|webhook|api` promptly and cleanly: every component it runs logs its
stop, nothing is cancelled as "hung" and the process exits 0, against the real API server."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kschema.devcluster.controlplane import free_port
from kschema.devcluster.pki import CertificateAuthority
from tests.e2e.operator_harness import apply_crds
from tests.harness.cluster import Cluster

pytestmark = pytest.mark.cluster

# What each component logs once it serves, and once it has stopped.
STARTED = {
    "operator": "Started the operator",
    "webhook": "Started the admission webhook",
    "api": "Started the read API",
}
STOPPED = {
    "operator": "Stopped the operator",
    "webhook": "Stopped the admission webhook",
    "api": "Stopped the read API",
}
COMMANDS = {
    "run": ("operator", "webhook", "api"),
    "operator": ("operator",),
    "webhook": ("webhook",),
    "api": ("api",),
}
# kopf waits 5 s for tasks it did not start before cancelling them; a shutdown that took that path is
# what this bound catches. The time measured on an idle machine is well under a second (README).
EXIT_WITHIN_SECONDS = 2.0


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> Cluster:
    apply_crds(cluster)
    return cluster


@pytest.fixture
def certificates(tmp_path: Path) -> Path:
    ca = CertificateAuthority("kschema-shutdown-test-ca")
    ca.issue("kschema-webhook", hosts=("127.0.0.1",)).write(tmp_path / "tls.crt", tmp_path / "tls.key")
    return tmp_path


def _wait_for_log(log: Path, lines: list[str], process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if all(line in text for line in lines):
            return
        if process.poll() is not None:
            raise AssertionError(f"kschema exited with {process.returncode}:\n{text[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"kschema did not log {lines} within {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def started(
    request: pytest.FixtureRequest, crds: Cluster, namespace: str, certificates: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path, int]]:
    command: str = request.param
    api_port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(crds.kubeconfig),
        "KSCHEMA_STORE_URL": f"sqlite:///{certificates / 'registry.db'}",
        "KSCHEMA_NAMESPACES": namespace,
        "KSCHEMA_API_HOST": "127.0.0.1",
        "KSCHEMA_API_PORT": str(api_port),
        "KSCHEMA_WEBHOOK_HOST": "127.0.0.1",
        "KSCHEMA_WEBHOOK_PORT": str(free_port()),
        "KSCHEMA_WEBHOOK_CERT_DIR": str(certificates),
        "KSCHEMA_HEALTH_PORT": str(free_port()),
        "KSCHEMA_PEERING": "",
    }
    log = certificates / "kschema.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "kschema"), command],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_log(log, [STARTED[c] for c in COMMANDS[command]], process, 60)
        if "operator" in COMMANDS[command]:
            _wait_until_the_operator_reconciles(crds, namespace)
        yield command, process, log, api_port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_until_the_operator_reconciles(cluster: Cluster, namespace: str) -> None:
    """A working operator, not one in its first API discovery: kopf gives tasks it did not start 5 s
    before cancelling them, and discovery requests cut short by a stop are such tasks."""
    subject = {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Subject",
        "metadata": {"name": "shutdown", "namespace": namespace},
        "spec": {"format": "AVRO", "name": f"shutdown-{namespace}"},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(subject))
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "subject/shutdown")


def _idle_keep_alive_connection(api_port: int) -> http.client.HTTPConnection:
    """A client that keeps its connection open after a request, as Kafka serializers' HTTP pools do."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/readyz", timeout=2):
                break
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    connection = http.client.HTTPConnection("127.0.0.1", api_port, timeout=5)
    connection.request("GET", "/subjects")
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    return connection


@pytest.mark.parametrize("started", list(COMMANDS), indirect=True)
def test_sigterm_stops_every_component_promptly_and_cleanly(
    started: tuple[str, subprocess.Popen[bytes], Path, int],
) -> None:
    command, process, log, api_port = started
    connection = _idle_keep_alive_connection(api_port) if "api" in COMMANDS[command] else None

    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        returncode = process.wait(timeout=30)
    finally:
        if connection is not None:
            connection.close()
    elapsed = time.monotonic() - sent

    text = log.read_text()
    assert returncode == 0, text[-3000:]
    for component in COMMANDS[command]:
        assert STOPPED[component] in text, text[-3000:]
    assert "Stopped kschema" in text
    assert "signal=SIGTERM" in text
    # From the signal on, nothing but the stops (start-up may warn about a busy API server's 429s).
    shutdown = text[text.index("Received a stop signal") :]
    for unclean in ("Traceback", "ERROR", "WARNING"):
        assert unclean not in shutdown, shutdown
    assert elapsed < EXIT_WITHIN_SECONDS, f"kschema {command} took {elapsed:.2f}s to exit:\n{text[-3000:]}"
