"""Hostile and careless inputs against `kschema run` (operator, webhook and read API in one process) behind
a real kube-apiserver: a pin at the top of the ID range, inputs the store would refuse, schemas near the
API server's object size limit, a takeover of a deleted subject, and a tampered `status.id`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kschema.devcluster.controlplane import free_port
from kschema.devcluster.pki import CertificateAuthority
from kschema.devcluster.webhook import local_webhook_configuration
from tests.e2e.operator_harness import apply_crds
from tests.harness.cluster import Cluster

pytestmark = pytest.mark.cluster

TOP_ID = 2**31 - 1
RESYNC_SECONDS = 2


@dataclass
class Running:
    cluster: Cluster
    process: subprocess.Popen[bytes]
    api: str
    log: Path
    namespaces: tuple[str, str, str]

    def get(self, path: str) -> tuple[int, Any, dict[str, str]]:
        try:
            with urllib.request.urlopen(self.api + path, timeout=10) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read()), dict(exc.headers)

    def apply(
        self, namespace: str, *objects: dict[str, Any], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Server-side apply, as Argo CD's ServerSideApply=true does: client-side apply copies the whole
        object into an annotation and cannot carry schemas over 256 KiB."""
        document = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
        return self.cluster.kubectl(
            "apply",
            "--server-side",
            "--field-manager=test",
            "-n",
            namespace,
            "-f",
            "-",
            input=document,
            check=check,
        )

    def get_object(self, namespace: str, kind: str, name: str) -> dict[str, Any]:
        out = self.cluster.kubectl("get", "-n", namespace, kind, name, "-o", "json").stdout
        found: dict[str, Any] = json.loads(out)
        return found

    def wait_ready(self, namespace: str, *what: str, timeout: int = 120) -> None:
        self.cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", f"--timeout={timeout}s", *what)


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting until {what}")


def subject(
    name: str,
    registry_name: str,
    fmt: str = "AVRO",
    *,
    projection: bool = True,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Subject",
        "metadata": meta,
        "spec": {"name": registry_name, "format": fmt, "projection": {"enabled": projection}},
    }


def schema(name: str, subject_name: str, version: int, text: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Schema",
        "metadata": {"name": name},
        "spec": {"subject": subject_name, "version": version, "schema": text, **spec},
    }


def avro(name: str, *fields: str) -> str:
    return json.dumps(
        {"type": "record", "name": name, "fields": [{"name": f, "type": "string"} for f in fields]}
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def kschema(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    apply_crds(cluster)
    prefix = f"hd{uuid.uuid4().hex[:6]}"
    namespaces = (f"{prefix}-a", f"{prefix}-b", f"{prefix}-c")
    for namespace in namespaces:
        cluster.kubectl("create", "namespace", namespace)
    work = tmp_path_factory.mktemp("hardening")
    ca = CertificateAuthority("kschema-hardening-test-ca")
    ca.issue("kschema-webhook", hosts=("127.0.0.1",)).write(work / "tls.crt", work / "tls.key")
    api_port, webhook_port = free_port(), free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "KSCHEMA_STORE_URL": f"sqlite:///{work / 'registry.db'}",
        "KSCHEMA_NAMESPACES": ",".join(namespaces),
        "KSCHEMA_API_HOST": "127.0.0.1",
        "KSCHEMA_API_PORT": str(api_port),
        "KSCHEMA_WEBHOOK_HOST": "127.0.0.1",
        "KSCHEMA_WEBHOOK_PORT": str(webhook_port),
        "KSCHEMA_WEBHOOK_CERT_DIR": str(work),
        "KSCHEMA_HEALTH_PORT": "0",
        "KSCHEMA_PEERING": "",
        "KSCHEMA_RESYNC_INTERVAL": str(RESYNC_SECONDS),
    }
    log = work / "kschema.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "kschema"), "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Running(cluster, process, f"http://127.0.0.1:{api_port}", log, namespaces)
    config_name = f"kschema-{prefix}"
    try:
        wait_until("the read API is ready", lambda: _ready(running), 60)
        config = local_webhook_configuration(f"https://127.0.0.1:{webhook_port}", ca.cert_pem, config_name)
        for hook in config["webhooks"]:
            hook["matchConditions"] = [
                {"name": "this-module-only", "expression": f"request.namespace.startsWith('{prefix}-')"}
            ]
        cluster.kubectl("apply", "-f", "-", input=json.dumps(config))
        _wait_until_consulted(running)
        yield running
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", config_name, check=False)
        for namespace in namespaces:
            cluster.kubectl(
                "delete", "-n", namespace, "schemas,subjects", "--all", "--timeout=60s", check=False
            )
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(running: Running) -> bool:
    if running.process.poll() is not None:
        raise AssertionError(f"kschema exited:\n{running.log.read_text()[-3000:]}")
    try:
        return running.get("/readyz")[0] == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _wait_until_consulted(running: Running) -> None:
    """The API server loads a new webhook configuration asynchronously: a Subject with a transfer
    annotation that names no namespace (which only the webhook checks) is applied until it is refused."""
    namespace = running.namespaces[0]
    probe = subject("probe", unique("probe"), annotations={"kschema.io/transfer-to": "Not A Namespace"})

    def refused() -> bool:
        attempt = running.apply(namespace, probe, check=False)
        if attempt.returncode == 0:
            running.cluster.kubectl("delete", "-n", namespace, "subject", "probe", check=False)
            return False
        assert "kschema.io/transfer-to" in attempt.stderr, attempt.stderr
        return True

    wait_until("the API server consults the webhook", refused, 60)


# Item: pinned IDs can neither exhaust nor steer allocation ------------------------------------------------


def test_a_pin_at_the_top_of_the_id_range_never_stops_other_namespaces_registering(kschema: Running) -> None:
    team_a, team_b, team_c = kschema.namespaces
    pinned_subject = unique("pinned-value")
    kschema.apply(
        team_a,
        subject("pinned", pinned_subject),
        schema("pinned-v1", "pinned", 1, avro("Pinned", "id"), id=TOP_ID),
    )
    kschema.wait_ready(team_a, "subject/pinned", "schema/pinned-v1")
    assert kschema.get_object(team_a, "schema", "pinned-v1")["status"]["id"] == TOP_ID

    kschema.apply(
        team_b,
        subject("orders", unique("orders-value")),
        schema("orders-v1", "orders", 1, avro("Order", "id")),
    )
    kschema.wait_ready(team_b, "subject/orders", "schema/orders-v1")
    assert kschema.get_object(team_b, "schema", "orders-v1")["status"]["id"] < TOP_ID

    kschema.cluster.kubectl("delete", "-n", team_a, "schema/pinned-v1", "subject/pinned", "--timeout=60s")
    kschema.apply(
        team_c,
        subject("invoices", unique("invoices-value")),
        schema("invoices-v1", "invoices", 1, avro("Invoice", "id")),
    )
    kschema.wait_ready(team_c, "subject/invoices", "schema/invoices-v1")
    assert kschema.get_object(team_c, "schema", "invoices-v1")["status"]["id"] < TOP_ID
    status, found, _ = kschema.get(f"/schemas/ids/{TOP_ID}")  # deleted, still resolving
    assert status == 200, found


# Item: admission refuses whatever the store would refuse --------------------------------------------------

REFUSED_SCHEMAS = [
    pytest.param({"version": 2**31}, "spec.version", id="version-2^31"),
    pytest.param({"id": 2**31}, "spec.id", id="id-2^31"),
    pytest.param({"id": 0}, "spec.id", id="id-0"),
    pytest.param(
        {"references": [{"name": "r", "subject": "a\tb", "version": 1}]},
        "spec.references[0].subject",
        id="ref-tab",
    ),
    pytest.param(
        {"references": [{"name": "r", "subject": "s", "version": 2**31}]},
        "spec.references[0].version",
        id="ref-version",
    ),
    pytest.param({"schema": '"string"\u0000'}, "spec.schema", id="schema-nul"),
    pytest.param({"sunset": "2030-01-01T99"}, "spec.sunset", id="sunset-hour-99"),
]


@pytest.mark.parametrize(("spec", "field"), REFUSED_SCHEMAS)
def test_a_schema_the_store_would_refuse_is_refused_at_apply(
    kschema: Running, spec: dict[str, Any], field: str
) -> None:
    namespace = kschema.namespaces[1]
    body = schema(unique("bad"), "orders", 1, avro("Order", "id"))
    body["spec"].update(spec)

    refused = kschema.apply(namespace, body, check=False)

    assert refused.returncode != 0, refused.stdout
    assert field in refused.stderr


REFUSED_NAMES = [
    pytest.param("orders\tvalue", id="tab"),
    pytest.param("orders\u202evalue", id="right-to-left-override"),
    pytest.param("orders\u2066value", id="left-to-right-isolate"),
    pytest.param("o" * 256, id="too-long"),
]


@pytest.mark.parametrize("name", REFUSED_NAMES)
def test_a_subject_name_the_store_would_refuse_is_refused_at_apply(kschema: Running, name: str) -> None:
    refused = kschema.apply(kschema.namespaces[1], subject(unique("bad"), name), check=False)

    assert refused.returncode != 0, refused.stdout
    assert "spec.name" in refused.stderr


def test_a_c1_control_character_is_refused_by_the_api_server(kschema: Running) -> None:
    # kubectl reads manifests as YAML, which folds U+0085 (NEL) into a space before sending; a client
    # that sends JSON (Argo CD, a controller) delivers it as written.
    namespace = kschema.namespaces[1]
    body = {
        **subject(unique("bad"), "orders\u0085value"),
        "metadata": {"name": unique("bad"), "namespace": namespace},
    }

    refused = kschema.cluster.kubectl(
        "create",
        "--raw",
        f"/apis/kschema.io/v1alpha1/namespaces/{namespace}/subjects",
        "-f",
        "-",
        input=json.dumps(body),
        check=False,
    )

    assert refused.returncode != 0, refused.stdout
    assert "spec.name" in refused.stderr


def test_a_description_with_nul_is_refused_at_apply(kschema: Running) -> None:
    body = subject(unique("bad"), unique("described"))
    body["spec"]["description"] = "a\u0000b"

    refused = kschema.apply(kschema.namespaces[1], body, check=False)

    assert refused.returncode != 0, refused.stdout
    assert "spec.description" in refused.stderr


# Item: large schemas work end to end ----------------------------------------------------------------------


def big_avro() -> str:
    fields = [{"name": f"f{i}", "type": "string", "doc": "d" * 80} for i in range(7_200)]
    text = json.dumps({"type": "record", "name": "Big", "fields": fields})
    assert 850_000 < len(text) < 1_000_000
    return text


def big_json_schema() -> str:
    properties = {f"p{i}": {"type": "string", "description": "d" * 470} for i in range(1_800)}
    text = json.dumps(
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": properties}
    )
    assert 850_000 < len(text) < 1_000_000
    return text


def thousand_field_protobuf() -> str:
    fields = "\n".join(f"  string field_{i} = {i};" for i in range(1, 1001))
    return f'syntax = "proto3";\npackage acme;\n\nmessage Wide {{\n{fields}\n}}\n'


LARGE = [
    pytest.param("AVRO", big_avro, False, id="avro-900KB"),
    pytest.param("JSON", big_json_schema, False, id="json-schema-900KB"),
    pytest.param("PROTOBUF", thousand_field_protobuf, True, id="protobuf-1000-fields"),
]


@pytest.mark.parametrize(("fmt", "make", "projection"), LARGE)
def test_a_large_schema_is_applied_served_deprecated_and_deleted(
    kschema: Running, fmt: str, make: Callable[[], str], projection: bool
) -> None:
    namespace = kschema.namespaces[2]
    text = make()
    registry_name = unique("large-value")
    name = unique("large")
    # A ConfigMap holds 1 MiB: a 900 KB version and its `latest` copy cannot be projected, so those
    # Subjects turn projection off (with it on, the Subject says ProjectionTooLarge).
    kschema.apply(
        namespace,
        subject(name, registry_name, fmt, projection=projection),
        schema(f"{name}-v1", name, 1, text),
    )
    kschema.wait_ready(namespace, f"subject/{name}", f"schema/{name}-v1")

    stored = kschema.get_object(namespace, "schema", f"{name}-v1")
    annotations = stored["metadata"].get("annotations", {})
    assert sum(len(k) + len(v) for k, v in annotations.items()) < 4096, list(annotations)
    status, served, _ = kschema.get(f"/schemas/ids/{stored['status']['id']}")
    assert status == 200
    if fmt == "PROTOBUF":
        assert served["schema"] == text
    else:  # served in Confluent's compact JSON form
        assert json.loads(served["schema"]) == json.loads(text)

    # A state change: the API server sends the webhook the old and the new object (twice the size).
    kschema.cluster.kubectl(
        "patch",
        "-n",
        namespace,
        "schema",
        f"{name}-v1",
        "--type=merge",
        "-p",
        '{"spec":{"state":"DEPRECATED"}}',
    )

    def deprecated() -> bool:
        status, _, headers = kschema.get(f"/subjects/{registry_name}/versions/1")
        return status == 200 and "Deprecation" in headers

    wait_until("the read API serves the version as deprecated", deprecated, 60)
    kschema.wait_ready(namespace, f"schema/{name}-v1")

    kschema.cluster.kubectl(
        "delete", "-n", namespace, f"schema/{name}-v1", f"subject/{name}", "--timeout=60s"
    )
    wait_until(
        "the read API no longer lists the subject",
        lambda: kschema.get(f"/subjects/{registry_name}/versions")[0] == 404,
    )


# Item: subject ownership survives deletion ----------------------------------------------------------------


def test_a_deleted_subject_cannot_be_taken_over_by_another_namespace(kschema: Running) -> None:
    team_a, team_b, _ = kschema.namespaces
    registry_name = unique("owned-value")
    kschema.apply(
        team_a, subject("owned", registry_name), schema("owned-v1", "owned", 1, avro("Owned", "id"))
    )
    kschema.wait_ready(team_a, "subject/owned", "schema/owned-v1")
    # The owner deletes the Subject and leaves its Schemas behind.
    kschema.cluster.kubectl("delete", "-n", team_a, "subject/owned", "--timeout=60s")
    wait_until(
        "the subject is soft-deleted in the registry",
        lambda: kschema.get(f"/subjects/{registry_name}/versions")[0] == 404,
    )

    refused = kschema.apply(team_b, subject("owned", registry_name), check=False)

    assert refused.returncode != 0
    assert f'subject "{registry_name}" is owned by namespace {team_a}' in refused.stderr
    assert "kschema.io/transfer-to" in refused.stderr
    assert kschema.get(f"/subjects/{registry_name}/versions")[0] == 404  # nothing was undeleted


def test_the_owner_hands_a_subject_over_with_the_transfer_annotation(kschema: Running) -> None:
    team_a, team_b, team_c = kschema.namespaces
    registry_name = unique("moving-value")
    text = avro("Moving", "id")
    kschema.apply(team_a, subject("moving", registry_name), schema("moving-v1", "moving", 1, text))
    kschema.wait_ready(team_a, "subject/moving", "schema/moving-v1")
    first_id = kschema.get_object(team_a, "schema", "moving-v1")["status"]["id"]

    # Declared on the live Subject: an update the operator must notice (the annotation is in our prefix).
    kschema.cluster.kubectl("annotate", "-n", team_a, "subject/moving", f"kschema.io/transfer-to={team_b}")
    wait_until(
        "the transfer is recorded",
        lambda: kschema.get_object(team_a, "subject", "moving").get("status", {}).get("transferTo") == team_b,
    )
    early = kschema.apply(team_b, subject("moving", registry_name), check=False)
    assert early.returncode != 0
    assert f"owned by namespace {team_a}" in early.stderr

    kschema.cluster.kubectl("delete", "-n", team_a, "schema/moving-v1", "subject/moving", "--timeout=60s")
    other = kschema.apply(team_c, subject("moving", registry_name), check=False)
    assert other.returncode != 0
    assert f"owned by namespace {team_a}" in other.stderr

    kschema.apply(team_b, subject("moving", registry_name), schema("moving-v1", "moving", 1, text))
    kschema.wait_ready(team_b, "subject/moving", "schema/moving-v1")

    assert kschema.get_object(team_b, "schema", "moving-v1")["status"]["id"] == first_id
    late = kschema.apply(team_a, subject("moving-back", registry_name), check=False)
    assert late.returncode != 0
    assert f"owned by namespace {team_b}" in late.stderr


# Also: status.id put right within the resync ---------------------------------------------------------------


def test_an_overwritten_status_id_is_put_right_within_the_resync(kschema: Running) -> None:
    namespace = kschema.namespaces[0]
    kschema.apply(
        namespace,
        subject("tampered", unique("tampered-value")),
        schema("tampered-v1", "tampered", 1, avro("T", "id")),
    )
    kschema.wait_ready(namespace, "subject/tampered", "schema/tampered-v1")
    right = kschema.get_object(namespace, "schema", "tampered-v1")["status"]["id"]

    patched = kschema.cluster.kubectl(
        "patch",
        "-n",
        namespace,
        "schema",
        "tampered-v1",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"id": right + 1000}}),
        "-o",
        "json",
    )
    # The object as the patch left it: the operator may put it right before a later read.
    assert json.loads(patched.stdout)["status"]["id"] == right + 1000

    wait_until(
        "the operator restores status.id",
        lambda: kschema.get_object(namespace, "schema", "tampered-v1")["status"]["id"] == right,
        timeout=RESYNC_SECONDS * 30,  # generous: a loaded runner delays timers, the check stays the same
    )
