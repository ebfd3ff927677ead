"""The local control plane is a real Kubernetes API server: CRDs, admission webhooks and garbage
collection behave as in a cluster."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kschema.devcluster.pki import CertificateAuthority
from tests.harness.cluster import Cluster

pytestmark = pytest.mark.cluster

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.harness.kschema.io}
spec:
  group: harness.kschema.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
"""


@pytest.fixture(scope="module")
def widget_crd(cluster: Cluster) -> str:
    cluster.kubectl("apply", "-f", "-", input=WIDGET_CRD)
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/widgets.harness.kschema.io")
    return "widgets.harness.kschema.io"


def test_a_custom_resource_is_stored_and_validated_by_its_crd(
    cluster: Cluster, namespace: str, widget_crd: str
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_widget("small", 3))
    got = json.loads(cluster.kubectl("get", "-n", namespace, "widget", "small", "-o", "json").stdout)
    assert got["spec"]["size"] == 3

    refused = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_widget("broken", 0), check=False)
    assert refused.returncode != 0
    assert "spec.size" in refused.stderr


class _Refuser(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name = review["request"]["object"]["metadata"]["name"]
        allowed = not name.startswith("forbidden")
        body = json.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": review["request"]["uid"],
                    "allowed": allowed,
                    "status": {"code": 403, "message": f"widget {name} is refused by the test webhook"},
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def refusing_webhook(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    ca = CertificateAuthority("webhook-test-ca")
    ca.issue("webhook", hosts=("127.0.0.1",)).write(tmp_path / "tls.crt", tmp_path / "tls.key")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuser)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/validate", ca.cert_pem
    finally:
        server.shutdown()
        server.server_close()


def test_a_validating_webhook_on_loopback_refuses_a_create_with_its_message(
    cluster: Cluster, namespace: str, widget_crd: str, refusing_webhook: tuple[str, bytes]
) -> None:
    url, ca_pem = refusing_webhook
    name = f"refuse-{uuid.uuid4().hex[:8]}"
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "widgets.harness.kschema.io",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 10,
                "clientConfig": {"url": url, "caBundle": base64.b64encode(ca_pem).decode()},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "rules": [
                    {
                        "apiGroups": ["harness.kschema.io"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["widgets"],
                        "scope": "*",
                    }
                ],
            }
        ],
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(config))
    try:
        # The API server picks up new webhook configurations asynchronously: the allowed create proves
        # the webhook is consulted once the refusal appears, so retry the refused one until it is.
        refused = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            attempt = cluster.kubectl(
                "create",
                "-n",
                namespace,
                "-f",
                "-",
                input=_widget(f"forbidden-{uuid.uuid4().hex[:6]}", 1),
                check=False,
            )
            if attempt.returncode != 0:
                refused = attempt
                break
            time.sleep(0.5)
        assert refused is not None, "the webhook was never consulted"
        assert "is refused by the test webhook" in refused.stderr
        assert 'admission webhook "widgets.harness.kschema.io" denied the request' in refused.stderr
        cluster.kubectl("create", "-n", namespace, "-f", "-", input=_widget("welcome", 1))
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", name, check=False)


def test_an_owned_object_is_garbage_collected_after_its_owner_is_deleted(
    cluster: Cluster, namespace: str
) -> None:
    cluster.kubectl("create", "configmap", "owner", "-n", namespace, "--from-literal=a=1")
    owner = json.loads(cluster.kubectl("get", "configmap", "owner", "-n", namespace, "-o", "json").stdout)
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "namespace": namespace,
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "owner",
                    "uid": owner["metadata"]["uid"],
                }
            ],
        },
        "data": {"b": "2"},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(dependent))
    cluster.kubectl("delete", "configmap", "owner", "-n", namespace)
    cluster.kubectl("wait", "--for=delete", "--timeout=60s", "configmap/dependent", "-n", namespace)


def _widget(name: str, size: int) -> str:
    return json.dumps(
        {
            "apiVersion": "harness.kschema.io/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"size": size},
        }
    )
