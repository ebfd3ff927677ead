"""The chart's sqlite topology installed on a real node with cert-manager issuing the webhook's certificate:
the day-one path of a platform team, checked against one install in order (the tests of this module share
it and build on each other's state)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from kschema.devcluster import image
from kschema.devcluster.node import Node
from tests.node.images import CLIENT, KSCHEMA_REBUILT
from tests.node.kube import Kube, eventually
from tests.node.release import Release

# The first test of a session also waits for the images, the node and cert-manager (cold: minutes).
pytestmark = [pytest.mark.node, pytest.mark.timeout(1800)]


REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
NAMESPACE = "kschema-system"
APPS = "apps"  # where the examples' Subjects and Schemas live
CLIENTS = "clients"  # workloads in another namespace than the registry's


@pytest.fixture(scope="module")
def release(
    kube: Kube, helm_binary: Path, cert_manager: None, tmp_path_factory: pytest.TempPathFactory
) -> Release:
    rel = Release(helm_binary, kube, "kschema", NAMESPACE, tmp_path_factory.mktemp("helm"))
    rel.install({})
    kube("create", "namespace", APPS)
    kube("create", "namespace", CLIENTS)
    return rel


def ids(release: Release, kube: Kube) -> dict[str, int]:
    """subject/version -> schema ID, read through the read API from a pod."""
    out: dict[str, int] = {}
    subjects = json.loads(client_get(kube, f"{release.api_url}/subjects"))
    for subject in subjects:
        path = f"{release.api_url}/subjects/{quote(subject, safe='')}/versions"  # acme/money.proto
        for version in json.loads(client_get(kube, path)):
            got = json.loads(client_get(kube, f"{path}/{version}"))
            out[f"{subject}/{version}"] = got["id"]
    return out


def client_get(kube: Kube, url: str) -> str:
    code = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    done = kube.exec(CLIENTS, "client", "python", "-c", code)
    assert done.returncode == 0, done.stderr
    return done.stdout


def apply_examples(kube: Kube, *folders: str, dry_run: bool = False) -> Any:
    args = ["apply", "-n", APPS] + [a for f in folders for a in ("-f", str(EXAMPLES / f))]
    if dry_run:
        args.append("--dry-run=server")
    return kube.run(*args)


def test_every_pod_is_ready_and_helm_test_passes(release: Release, kube: Kube) -> None:
    pods = kube.all_ready(NAMESPACE, "app.kubernetes.io/instance=kschema")
    assert len(pods) == 1, pods  # the one registry pod of the sqlite topology
    pvc = kube.json("-n", NAMESPACE, "get", "pvc", "kschema-data")
    assert pvc["status"]["phase"] == "Bound"
    assert pvc["spec"]["storageClassName"] == "local-path"

    done = release.helm("test", "kschema", "--timeout=120s", "--logs")

    assert done.returncode == 0, done.stderr + done.stdout
    assert "/readyz 200" in done.stdout


def test_cert_manager_issued_the_webhook_certificate_and_injected_its_ca(
    release: Release, kube: Kube
) -> None:
    kube("-n", NAMESPACE, "wait", "--for=condition=Ready", "certificate", "--all", "--timeout=60s")
    secret = kube.json("-n", NAMESPACE, "get", "secret", "kschema-webhook-tls")
    configuration = kube.json("get", "validatingwebhookconfiguration", "kschema-webhook")

    for webhook in configuration["webhooks"]:
        assert webhook["clientConfig"]["service"]["name"] == "kschema-webhook"
        assert "url" not in webhook["clientConfig"]
        assert webhook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert base64.b64decode(secret["data"]["tls.crt"]).startswith(b"-----BEGIN CERTIFICATE-----")


def test_examples_are_admitted_through_the_webhook_service_and_served(release: Release, kube: Kube) -> None:
    done = apply_examples(kube, "avro", "json", "protobuf")
    assert done.returncode == 0, done.stderr

    kube("-n", APPS, "wait", "--for=condition=Ready", "subjects,schemas", "--all", "--timeout=120s")
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "client", "namespace": CLIENTS, "labels": {"app": "client"}},
            "spec": {
                "containers": [{"name": "client", "image": CLIENT, "imagePullPolicy": "Never"}],
                "terminationGracePeriodSeconds": 1,
            },
        }
    )
    kube.wait_pod_ready(CLIENTS, "app=client", timeout=120)
    subjects = eventually(
        lambda: s if len(s := json.loads(client_get(kube, f"{release.api_url}/subjects"))) == 6 else None,
        timeout=60,
        what="6 subjects served",
    )
    assert "shipments-value" in subjects


def test_the_incompatible_example_is_refused_also_on_a_server_dry_run(release: Release, kube: Kube) -> None:
    for dry_run in (True, False):
        done = apply_examples(kube, "incompatible", dry_run=dry_run)

        assert done.returncode != 0
        assert 'admission webhook "schemas.kschema.io" denied the request' in done.stderr, done.stderr
        assert "BACKWARD" in done.stderr
    assert kube.run("-n", APPS, "get", "schema", "orders-value-v3").returncode != 0


def test_a_pod_in_another_namespace_round_trips_each_format_with_confluent_kafka(
    release: Release, kube: Kube
) -> None:
    script = (Path(__file__).parent / "client" / "roundtrip.py").read_text()
    done = kube.exec(CLIENTS, "client", "python", "-c", script, release.api_url)

    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["format"] for r in results] == ["AVRO", "JSON", "PROTOBUF"]
    for result in results:
        assert result["equal"], result
        assert result["schema_id"] == result["latest_id"], result


def _subject_with_projection(version: int, fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    schema = {"type": "record", "name": "Event", "namespace": "it", "fields": fields}
    return [
        {
            "apiVersion": "kschema.io/v1alpha1",
            "kind": "Subject",
            "metadata": {"name": "it-events", "namespace": APPS},
            "spec": {
                "format": "AVRO",
                "compatibility": "BACKWARD",
                "projection": {"configMapName": "it-events"},
            },
        },
        {
            "apiVersion": "kschema.io/v1alpha1",
            "kind": "Schema",
            "metadata": {"name": f"it-events-v{version}", "namespace": APPS},
            "spec": {"subject": "it-events", "version": version, "schema": json.dumps(schema)},
        },
    ]


def test_a_mounted_projection_sees_a_new_version_without_a_restart(release: Release, kube: Kube) -> None:
    v1_fields = [{"name": "id", "type": "string"}]
    kube.apply(*_subject_with_projection(1, v1_fields))
    kube("-n", APPS, "wait", "--for=condition=Ready", "schema/it-events-v1", "--timeout=60s")
    eventually(lambda: kube.run("-n", APPS, "get", "configmap", "it-events").returncode == 0, timeout=60,
               what="the projected ConfigMap")  # fmt: skip
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "reader", "namespace": APPS, "labels": {"app": "reader"}},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "reader", "image": CLIENT, "imagePullPolicy": "Never",
                                "volumeMounts": [{"name": "contracts", "mountPath": "/contracts"}]}],
                "volumes": [{"name": "contracts", "configMap": {"name": "it-events"}}],
            },
        }
    )  # fmt: skip
    kube.wait_pod_ready(APPS, "app=reader", timeout=120)
    first = kube.exec(APPS, "reader", "cat", "/contracts/latest.avsc").stdout
    assert json.loads(first)["fields"] == v1_fields
    restarts = kube.json("-n", APPS, "get", "pod", "reader")["status"]["containerStatuses"][0]["restartCount"]

    v2_fields = [*v1_fields, {"name": "note", "type": "string", "default": ""}]
    kube.apply(*_subject_with_projection(2, v2_fields))

    def second() -> bool:
        text = kube.exec(APPS, "reader", "cat", "/contracts/latest.avsc").stdout
        return bool(text) and json.loads(text)["fields"] == v2_fields

    eventually(second, timeout=90, interval=1, what="latest.avsc of version 2 in the running pod")
    pod = kube.json("-n", APPS, "get", "pod", "reader")
    assert pod["status"]["containerStatuses"][0]["restartCount"] == restarts


def test_deleting_the_registry_pod_loses_nothing(release: Release, kube: Kube) -> None:
    before = ids(release, kube)
    [old] = kube.wait_pod_ready(NAMESPACE, "app.kubernetes.io/component=registry")

    kube("-n", NAMESPACE, "delete", "pod", old, "--wait=true", "--timeout=90s")

    [new] = kube.wait_pod_ready(NAMESPACE, "app.kubernetes.io/component=registry")
    assert new != old
    assert eventually(
        lambda: ids(release, kube) == before or None, timeout=60, what="the same IDs after a restart"
    )


def test_helm_upgrade_to_a_rebuilt_image_keeps_every_id_and_admits_a_valid_change(
    release: Release, kube: Kube
) -> None:
    before = ids(release, kube)
    tag = KSCHEMA_REBUILT.split(":")[1]

    release.install({"image": {"tag": tag}}, upgrade=True)

    pods = kube.json("-n", NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/component=registry")["items"]
    assert [p["spec"]["containers"][0]["image"] for p in pods] == [f"kschema:{tag}"]
    # `helm --wait` returns once the new pod is Ready; kube-proxy refuses connections to the Service until
    # it has synced the new endpoint (the Recreate strategy leaves none in between).
    eventually(
        lambda: ids(release, kube) == before or None, timeout=60, what="the same IDs after the upgrade"
    )
    v3_fields: list[dict[str, Any]] = [
        {"name": "id", "type": "string"},
        {"name": "note", "type": "string", "default": ""},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    ]
    kube.apply(*_subject_with_projection(3, v3_fields))
    kube("-n", APPS, "wait", "--for=condition=Ready", "schema/it-events-v3", "--timeout=60s")


# The IDs served just before the uninstall; the reinstall of the next test must serve the same.
BEFORE_UNINSTALL: dict[str, int] = {}


def test_helm_uninstall_keeps_the_crds_the_resources_and_the_store(release: Release, kube: Kube) -> None:
    BEFORE_UNINSTALL.update(ids(release, kube))
    done = release.helm("uninstall", "kschema", "--wait", "--timeout=120s")
    assert done.returncode == 0, done.stderr

    crds = kube("get", "crd", "-o", "name")
    assert "subjects.kschema.io" in crds
    assert "schemas.kschema.io" in crds
    assert len(kube.json("-n", APPS, "get", "subjects")["items"]) == 7
    assert len(kube.json("-n", APPS, "get", "schemas")["items"]) == 12
    assert kube.run("get", "validatingwebhookconfiguration", "kschema-webhook").returncode != 0
    # The claim holding every issued ID is kept too (`helm.sh/resource-policy: keep`).
    assert kube.json("-n", NAMESPACE, "get", "pvc", "kschema-data")["status"]["phase"] == "Bound"


def test_the_existing_secret_tls_path_serves_the_webhook(release: Release, kube: Kube, node: Node) -> None:
    cert, key = node.plane.issue("kschema-webhook", ("kschema-webhook.kschema-system.svc",))
    kube("-n", NAMESPACE, "delete", "secret", "kschema-webhook-tls", "--ignore-not-found")
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": "own-webhook-tls", "namespace": NAMESPACE},
            "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()},
        }
    )
    ca = base64.b64encode(node.plane.ca_file.read_bytes()).decode()

    release.install({"webhook": {"tls": {"existingSecret": "own-webhook-tls", "caBundle": ca}}})

    configuration = kube.json("get", "validatingwebhookconfiguration", "kschema-webhook")
    assert all(w["clientConfig"]["caBundle"] == ca for w in configuration["webhooks"])
    assert kube.run("-n", NAMESPACE, "get", "certificates").stdout.strip() == ""
    # The reinstall adopts the kept claim: the same store, every ID as before the uninstall.
    assert BEFORE_UNINSTALL
    eventually(
        lambda: ids(release, kube) == BEFORE_UNINSTALL or None,
        timeout=120,
        what="the IDs of before the uninstall served by the reinstalled release",
    )
    refused = apply_examples(kube, "incompatible")
    assert refused.returncode != 0
    assert "BACKWARD" in refused.stderr, refused.stderr
    kube.wait_pod_ready(NAMESPACE, "app.kubernetes.io/instance=kschema")
    assert release.helm("test", "kschema", "--timeout=120s").returncode == 0
    done = release.helm("uninstall", "kschema", "--wait", "--timeout=120s")
    assert done.returncode == 0, done.stderr


def test_the_running_image_has_no_pip_and_not_the_build_ca(release: Release, kube: Kube) -> None:
    # Runs last: the release of the existing-Secret test is gone, so start a throwaway pod of the image.
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "image-check", "namespace": CLIENTS, "labels": {"app": "image-check"}},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": "kschema:dev", "command": ["sleep", "600"]}],
            },
        }
    )
    kube.wait_pod_ready(CLIENTS, "app=image-check", timeout=120)
    find_pip = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('pip') is None else 3)"

    assert kube.exec(CLIENTS, "image-check", "python", "-c", find_pip).returncode == 0
    bundle = kube.exec(CLIENTS, "image-check", "cat", "/etc/ssl/certs/ca-certificates.crt").stdout
    for pem in image.extra_ca().split("-----END CERTIFICATE-----")[:-1]:
        body = pem.split("-----BEGIN CERTIFICATE-----")[1].strip()
        assert body.splitlines()[1] not in bundle, "the build's extra CA reached the final image"
