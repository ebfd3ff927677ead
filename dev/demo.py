"""The fast demo: a real control plane with no node, kschema running beside it as a local process, the
examples applied, lookups through the read API, and an incompatible change refused by the admission webhook.
(`make demo` tells the same story on a one-node cluster: the image, the chart, a lookup from a pod.)

    make demo-fast         # shows everything, then stops cleanly
    make demo-fast KEEP=1  # leaves the control plane and kschema running, with instructions
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from kschema.devcluster.controlplane import (
    DEFAULT_STATE_DIR,
    ControlPlane,
    free_port,
    start_detached,
    stop_detached,
)
from kschema.devcluster.pki import CertificateAuthority
from kschema.devcluster.webhook import local_webhook_configuration

REPO = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO / ".kschema" / "demo"
EXAMPLES = REPO / "examples"
INCOMPATIBLE = EXAMPLES / "incompatible"
WEBHOOK_CONFIG = "kschema-demo"


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def step(text: str) -> None:
    say(f"\n==> {text}")


def kubectl(plane: ControlPlane, *args: str, input: str | None = None, check: bool = True) -> str:
    done = plane.kubectl(*args, input=input, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout + done.stderr


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not become ready in {timeout:.0f}s; see {DEMO_DIR / 'kschema.log'}")
        time.sleep(0.3)


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(
        f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s; see {DEMO_DIR / 'kschema.log'}"
    )


def get(api: str, path: str) -> str:
    try:
        with urllib.request.urlopen(api + path, timeout=5) as response:
            body = response.read().decode()
            headers = {k: v for k, v in response.headers.items() if k in ("Deprecation", "Sunset")}
    except urllib.error.HTTPError as exc:
        body, headers = exc.read().decode(), {}
    parsed = json.loads(body)
    text = json.dumps(parsed)
    if len(text) > 300:
        text = text[:297] + "..."
    extra = "".join(f"\n      {k}: {v}" for k, v in headers.items())
    return f"GET {path}\n   -> {text}{extra}"


def show_contract(api: str) -> None:
    """The LLM telemetry contract executed by an unmodified Confluent serializer (its rules extra), and
    the same CONDITION rules applied by kschema's validate endpoint."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.schema_registry.rules.cel.cel_executor import CelExecutor
    from confluent_kafka.schema_registry.rules.cel.cel_field_executor import CelFieldExecutor
    from confluent_kafka.schema_registry.rules.jsonata.jsonata_executor import JsonataExecutor
    from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

    for executor in (CelExecutor, CelFieldExecutor, JsonataExecutor):
        executor.register()  # type: ignore[no-untyped-call]
    say(get(api, "/subjects/llm-inference-value/metadata?key=major_version&value=1"))
    ctx = SerializationContext("llm-inference", MessageField.VALUE)
    conf = {"auto.register.schemas": False, "use.latest.with.metadata": {"major_version": "1"}}
    serializer = AvroSerializer(SchemaRegistryClient({"url": api}), None, conf=conf)
    bad = {"request_id": "r-1", "model": "llama-3", "tokens": -12, "user_email": "ada@example.com"}
    try:
        serializer(dict(bad), ctx)  # the serializer transforms the record it is given
        say("!! the serializer accepted a record with negative tokens")
    except SerializationError as exc:
        say(f"AvroSerializer({bad})\n   -> refused by the contract: {exc.__cause__}")
    good = {**bad, "tokens": 12}
    frame = serializer(dict(good), ctx)
    read = AvroDeserializer(SchemaRegistryClient({"url": api}))(frame, ctx)
    say(f"AvroSerializer({good})\n   -> written; a consumer reads {read} (PII masked on write)")
    upgraded = AvroDeserializer(
        SchemaRegistryClient({"url": api}), conf={"use.latest.with.metadata": {"major_version": "2"}}
    )(frame, ctx)
    say(f"   -> a consumer of major version 2 reads it upgraded by JSONata: {upgraded}")
    request = urllib.request.Request(
        f"{api}/kschema/v1/subjects/llm-inference-value/versions/1/validate",
        data=json.dumps(bad).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as r:
        say("POST /kschema/v1/subjects/llm-inference-value/versions/1/validate (the refused record)")
        say(f"   -> {r.read().decode()}")


def stop_kschema() -> None:
    pid_file = DEMO_DIR / "kschema.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()


def main() -> int:
    keep = os.environ.get("KEEP", "") not in ("", "0")
    stop_kschema()
    step("Starting a local control plane (etcd, kube-apiserver, kube-controller-manager)")
    plane = start_detached(DEFAULT_STATE_DIR)
    say(f"API server at {plane.server}; KUBECONFIG={plane.kubeconfig}")
    process: subprocess.Popen[bytes] | None = None
    try:
        step("Installing the CRDs")
        say(kubectl(plane, "apply", "-f", str(REPO / "crds")).strip())
        kubectl(plane, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")

        step("Starting kschema run (operator, webhook and read API; SQLite store)")
        DEMO_DIR.mkdir(parents=True, exist_ok=True)
        (DEMO_DIR / "registry.db").unlink(missing_ok=True)
        tls = DEMO_DIR / "tls"
        tls.mkdir(exist_ok=True)
        ca = CertificateAuthority("kschema-demo-ca")
        ca.issue("kschema-webhook", hosts=("127.0.0.1", "localhost")).write(tls / "tls.crt", tls / "tls.key")
        api_port, webhook_port = free_port(), free_port()
        env = {
            **plane.env(),
            "KSCHEMA_STORE_URL": f"sqlite:///{DEMO_DIR / 'registry.db'}",
            "KSCHEMA_WEBHOOK_CERT_DIR": str(tls),
            "KSCHEMA_API_HOST": "127.0.0.1",
            "KSCHEMA_API_PORT": str(api_port),
            "KSCHEMA_WEBHOOK_HOST": "127.0.0.1",
            "KSCHEMA_WEBHOOK_PORT": str(webhook_port),
            "KSCHEMA_HEALTH_PORT": "0",
            "KSCHEMA_PEERING": "",
        }
        log = open(DEMO_DIR / "kschema.log", "wb")  # noqa: SIM115  # handed to the child process
        process = subprocess.Popen(
            [sys.executable, "-m", "kschema.cli.main", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        (DEMO_DIR / "kschema.pid").write_text(str(process.pid))
        api = f"http://127.0.0.1:{api_port}"
        wait_http(f"{api}/readyz", 60)
        wait_port(webhook_port, 60)
        say(f"read API at {api}, webhook at https://127.0.0.1:{webhook_port}")

        step("Registering the admission webhook with the API server")
        kubectl(
            plane,
            "apply",
            "-f",
            "-",
            input=json.dumps(
                local_webhook_configuration(f"https://127.0.0.1:{webhook_port}", ca.cert_pem, WEBHOOK_CONFIG)
            ),
        )
        say(
            f"ValidatingWebhookConfiguration/{WEBHOOK_CONFIG} -> https://127.0.0.1:{webhook_port}/validate/..."
        )

        step("Applying examples/ (all three formats, references, a deprecated version)")
        for manifest in sorted(p for p in EXAMPLES.rglob("*.yaml") if INCOMPATIBLE not in p.parents):
            say(kubectl(plane, "apply", "-f", str(manifest)).strip())
        kubectl(plane, "wait", "--for=condition=Ready", "--timeout=120s", "subjects", "--all", "-A")
        kubectl(plane, "wait", "--for=condition=Ready", "--timeout=120s", "schemas", "--all", "-A")

        step("kubectl get subjects,schemas -A")
        say(kubectl(plane, "get", "subjects,schemas", "-A").rstrip())

        step("Lookups through the Confluent-compatible read API")
        subjects = json.loads(urllib.request.urlopen(f"{api}/subjects", timeout=5).read())
        say(get(api, "/subjects"))
        for subject in subjects[:3]:
            path = f"/subjects/{quote(subject, safe='')}/versions"
            say(get(api, path))
            say(get(api, f"{path}/latest"))
        say(get(api, "/schemas/ids/1"))
        for subject in subjects:
            path = f"/subjects/{quote(subject, safe='')}/versions"
            for version in json.loads(urllib.request.urlopen(api + path, timeout=5).read()):
                with urllib.request.urlopen(f"{api}{path}/{version}", timeout=5) as r:
                    if r.headers.get("Deprecation"):
                        say(get(api, f"{path}/{version}"))
        body = json.dumps(
            {
                "schema": json.dumps(
                    {
                        "type": "record",
                        "name": "Order",
                        "namespace": "com.acme",
                        "fields": [{"name": "id", "type": "string"}],
                    }
                )
            }
        )
        request = urllib.request.Request(
            f"{api}/compatibility/subjects/orders-value/versions/latest?verbose=true",
            data=body.encode(),
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            say("POST /compatibility/subjects/orders-value/versions/latest (an Order with only `id`)")
            say(f"   -> {r.read().decode()}")

        step("A data contract (examples/contracts/): a record refused by a rule, PII masked, a migration")
        show_contract(api)

        step("Applying examples/incompatible/: the admission webhook refuses it")
        for manifest in sorted(INCOMPATIBLE.glob("*.yaml")):
            refused = plane.kubectl("apply", "-f", str(manifest), check=False)
            say(f"kubectl apply -f {manifest.relative_to(REPO)}  (exit {refused.returncode})")
            say(refused.stderr.strip() or refused.stdout.strip())

        if keep:
            step("Left running")
            say(f"export KUBECONFIG={plane.kubeconfig}")
            say(f"curl {api}/subjects")
            say(f"kschema logs: {DEMO_DIR / 'kschema.log'}; stop everything with: make demo-down")
            process = None
    finally:
        if process is not None:
            step("Stopping kschema and the control plane")
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            (DEMO_DIR / "kschema.pid").unlink(missing_ok=True)
            stop_detached(DEFAULT_STATE_DIR)
            say("Stopped.")
    return 0


def down() -> int:
    stop_kschema()
    stop_detached(DEFAULT_STATE_DIR)
    say("Stopped the demo.")
    return 0


if __name__ == "__main__":
    sys.exit(down() if sys.argv[1:] == ["down"] else main())
