"""The chart's postgres topology on a real node: PostgreSQL in a pod, the operator with kopf peering (one
active, one standing by), two webhook replicas behind a PodDisruptionBudget, two read API replicas behind
their Service, and the read API's /metrics scraped from inside the cluster as the ServiceMonitor says. The
tests share one install and run in order."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.node import postgres
from tests.node.images import CLIENT
from tests.node.kube import Kube, eventually
from tests.node.release import Release

# The first test of a session also waits for the images, the node and cert-manager (cold: minutes).
pytestmark = [pytest.mark.node, pytest.mark.timeout(1800)]


REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
NAMESPACE = "kschema-system"
PG = "pg"
APPS = "pg-apps"
VALUES: dict[str, Any] = {
    "topology": "postgres",
    "store": {"postgres": {"existingSecret": "kschema-postgres"}},
    "operator": {"replicaCount": 2},
    "webhook": {"replicaCount": 2},
    "api": {"replicaCount": 2},
    "metrics": {"serviceMonitor": {"enabled": True}},
}


@pytest.fixture(scope="module")
def release(
    kube: Kube,
    helm_binary: Path,
    cert_manager: None,
    service_monitor_crd: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Release]:
    kube("create", "namespace", PG)
    kube("create", "namespace", NAMESPACE)
    kube("create", "namespace", APPS)
    rel = Release(helm_binary, kube, "kschema", NAMESPACE, tmp_path_factory.mktemp("helm-pg"))
    try:
        kube.apply(*postgres.manifests(PG, NAMESPACE))
        kube.wait_pod_ready(PG, "app=postgres", timeout=180)
        rel.install(VALUES)
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "client", "namespace": APPS, "labels": {"app": "client"}},
                "spec": {
                    "containers": [{"name": "client", "image": CLIENT, "imagePullPolicy": "Never"}],
                    "terminationGracePeriodSeconds": 1,
                },
            }
        )
        kube.wait_pod_ready(APPS, "app=client", timeout=120)
        yield rel
    finally:
        # Also after a failed install, so that the sqlite module starts from a clean release name. The
        # Subjects' finalizers need the operator: their namespace goes first, the release after.
        kube("delete", "namespace", APPS, "--wait=true", "--timeout=180s")
        done = rel.helm("uninstall", "kschema", "--wait", "--timeout=120s")
        assert done.returncode == 0 or "not found" in done.stderr, done.stderr
        kube("delete", "namespace", PG, "--wait=true", "--timeout=120s")


def client_python(kube: Kube, code: str) -> str:
    done = kube.exec(APPS, "client", "python", "-c", code)
    assert done.returncode == 0, done.stderr
    return done.stdout


def apply(kube: Kube, *folders: str, dry_run: bool = False) -> Any:
    args = ["apply", "-n", APPS] + [a for f in folders for a in ("-f", str(EXAMPLES / f))]
    return kube.run(*args, *(["--dry-run=server"] if dry_run else []))


def _orders_v3(*, compatible: bool) -> str:
    """Version 3 of orders-value, a new object (so every apply reaches the webhook; kubectl sends nothing for
    an unchanged one): the incompatible example, or its new field with a default (BACKWARD allows that)."""
    schema = yaml.safe_load((EXAMPLES / "incompatible" / "orders-value-v3.yaml").read_text())
    if compatible:
        record = json.loads(schema["spec"]["schema"])
        record["fields"][-1]["default"] = 0
        schema["spec"]["schema"] = json.dumps(record)
    return yaml.safe_dump(schema)


def apply_v3(kube: Kube, *, compatible: bool, dry_run: bool) -> Any:
    args = ["apply", "-n", APPS, "-f", "-", *(["--dry-run=server"] if dry_run else [])]
    return kube.run(*args, input=_orders_v3(compatible=compatible))


def test_every_component_is_ready_with_its_replicas_and_helm_test_passes(
    release: Release, kube: Kube
) -> None:
    for component, count in (("operator", 2), ("webhook", 2), ("api", 2)):
        kube.wait_pod_ready(NAMESPACE, f"app.kubernetes.io/component={component}", count=count)
    assert len(kube.all_ready(NAMESPACE, "app.kubernetes.io/instance=kschema")) == 6

    def webhook_budget() -> dict[str, Any] | None:
        budgets = {p["metadata"]["name"]: p for p in kube.json("-n", NAMESPACE, "get", "pdb")["items"]}
        status: dict[str, Any] = budgets["kschema-webhook"].get("status", {})
        return status if status.get("currentHealthy") == 2 else None

    # The disruption controller updates the budget's status a moment after the pods turn Ready.
    budget = eventually(webhook_budget, timeout=60, what="the webhook budget's status")
    assert budget["disruptionsAllowed"] == 1

    done = release.helm("test", "kschema", "--timeout=120s", "--logs")

    assert done.returncode == 0, done.stderr + done.stdout


def test_examples_are_served_by_every_api_replica(release: Release, kube: Kube) -> None:
    done = apply(kube, "avro", "json", "protobuf")
    assert done.returncode == 0, done.stderr
    kube("-n", APPS, "wait", "--for=condition=Ready", "subjects,schemas", "--all", "--timeout=120s")

    endpoints = kube.json(
        "-n", NAMESPACE, "get", "endpointslices", "-l", "kubernetes.io/service-name=kschema"
    )
    addresses = [a for s in endpoints["items"] for e in s["endpoints"] for a in e["addresses"]]
    assert len(addresses) == 2
    for address in addresses:
        url = f"http://{address}:8081/subjects"
        code = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"

        def six(code: str = code) -> bool:
            return len(json.loads(client_python(kube, code))) == 6

        eventually(six, timeout=60, what=f"6 subjects from {address}")


def test_one_operator_works_and_the_other_stands_by(release: Release, kube: Kube) -> None:
    pods = kube.wait_pod_ready(NAMESPACE, "app.kubernetes.io/component=operator", count=2)
    # kopf peering: every replica announces itself on the release's ClusterKopfPeering with its own (random)
    # priority; the highest live one works, the others stay paused. Identities are `user@<pod>/<start>/<id>`.
    peering = kube.json("get", "clusterkopfpeering", "kschema")
    latest: dict[str, tuple[str, int]] = {}
    for identity, peer in peering["status"].items():
        pod = identity.split("@", 1)[1].split("/", 1)[0]
        if pod in pods and (pod not in latest or peer["lastseen"] > latest[pod][0]):
            latest[pod] = (peer["lastseen"], peer["priority"])
    assert sorted(latest) == sorted(pods), peering["status"]
    ranked = sorted(pods, key=lambda pod: latest[pod][1], reverse=True)
    assert latest[ranked[0]][1] != latest[ranked[1]][1]

    # No Subject existed before both replicas were Ready, so every reconcile of the examples is the
    # working replica's; the standby has none.
    reconciled = {pod: kube("-n", NAMESPACE, "logs", pod).count("Reconciled Subject") for pod in pods}
    assert reconciled[ranked[0]] >= 6, reconciled
    assert reconciled[ranked[1]] == 0, reconciled


def _admission_stream(kube: Kube, results: list[tuple[str, bool, str]], stop: threading.Event) -> None:
    """Server dry-runs alternating a compatible version 3 (admitted) and the incompatible one (refused by the
    compatibility check, not by an unreachable webhook)."""
    while not stop.is_set():
        valid = apply_v3(kube, compatible=True, dry_run=True)
        results.append(("valid", valid.returncode == 0, valid.stderr))
        invalid = apply_v3(kube, compatible=False, dry_run=True)
        refused_by_check = invalid.returncode != 0 and "BACKWARD" in invalid.stderr
        results.append(("incompatible", refused_by_check, invalid.stderr))


def test_deleting_a_webhook_pod_during_a_stream_of_applies_loses_no_decision(
    release: Release, kube: Kube
) -> None:
    pods = kube.wait_pod_ready(NAMESPACE, "app.kubernetes.io/component=webhook", count=2)
    results: list[tuple[str, bool, str]] = []
    stop = threading.Event()
    stream = threading.Thread(target=_admission_stream, args=(kube, results, stop))
    stream.start()
    try:
        eventually(lambda: len(results) >= 4, timeout=60, what="the stream to start")
        kube("-n", NAMESPACE, "delete", "pod", pods[0], "--wait=true", "--timeout=90s")
        kube.wait_pod_ready(NAMESPACE, "app.kubernetes.io/component=webhook", count=2)
        settled = len(results)
        eventually(lambda: len(results) >= settled + 4, timeout=60, what="more decisions after the restart")
    finally:
        stop.set()
        stream.join(timeout=120)

    wrong = [(kind, err) for kind, ok, err in results if not ok]
    assert not wrong, f"{len(wrong)} of {len(results)} decisions lost: {wrong[:3]}"


def test_with_every_webhook_pod_gone_applies_are_refused_never_admitted(release: Release, kube: Kube) -> None:
    kube("-n", NAMESPACE, "scale", "deployment", "kschema-webhook", "--replicas=0")
    eventually(
        lambda: (
            not kube.json("-n", NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/component=webhook")[
                "items"
            ]
        ),
        timeout=120,
        what="every webhook pod gone",
    )
    try:
        for compatible in (True, False):
            done = apply_v3(kube, compatible=compatible, dry_run=False)
            assert done.returncode != 0
            assert 'failed calling webhook "schemas.kschema.io"' in done.stderr, done.stderr
        assert kube.run("-n", APPS, "get", "schema", "orders-value-v3").returncode != 0
    finally:
        kube("-n", NAMESPACE, "scale", "deployment", "kschema-webhook", "--replicas=2")
        kube.wait_pod_ready(NAMESPACE, "app.kubernetes.io/component=webhook", count=2)


def test_the_service_monitor_targets_are_scraped_from_inside_the_cluster(
    release: Release, kube: Kube
) -> None:
    monitor = kube.json("-n", NAMESPACE, "get", "servicemonitor", "kschema")
    [endpoint] = monitor["spec"]["endpoints"]
    selector = ",".join(f"{k}={v}" for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    services = kube.json("-n", NAMESPACE, "get", "services", "-l", selector)["items"]
    assert [s["metadata"]["name"] for s in services] == ["kschema"]
    port = next(p for p in services[0]["spec"]["ports"] if p["name"] == endpoint["port"])
    # The Service's named targetPort `http` is the containers' 8081.
    container_port = port["targetPort"] if isinstance(port["targetPort"], int) else 8081
    slices = kube.json("-n", NAMESPACE, "get", "endpointslices", "-l", "kubernetes.io/service-name=kschema")
    targets = [
        f"http://{address}:{container_port}{endpoint['path']}"
        for s in slices["items"]
        for e in s["endpoints"]
        for address in e["addresses"]
    ]
    assert len(targets) == 2

    for target in targets:
        text = client_python(
            kube,
            f"import urllib.request; print(urllib.request.urlopen({target!r}, timeout=10).read().decode())",
        )
        assert "# TYPE" in text, text[:500]
        assert "kschema_" in text, text[:500]
