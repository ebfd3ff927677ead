"""Admission latency of the webhook, through a real kube-apiserver and on its own.

Set-up: a local control plane, the webhook (with a SQLite store) registered for one namespace, a
`FULL_TRANSITIVE` subject with 100 declared versions of a 50-field Avro record, and an empty subject.
Measured, as p50/p99 over repeated requests:

* server-side admission of version 101 and of a first version: a dry-run create POSTed to the API server
  with a Python client (the webhook runs, nothing is written);
* the baseline: the same dry-run create in a namespace the webhook is not consulted for (API server,
  CRD validation and client overhead alone), measured in the same run;
* the webhook handler alone: the AdmissionReview body POSTed straight to the webhook over HTTPS.

Run from the repository root: `python -m bench.bench_webhook` (or call `run()`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from kubernetes_asyncio import client, config

from kschema.devcluster import ControlPlane
from kschema.devcluster.controlplane import free_port
from kschema.devcluster.pki import CertificateAuthority
from kschema.model import GROUP, SCHEMA_PLURAL, VERSION
from kschema.store.factory import open_store
from kschema.webhook import SCHEMAS_PATH, WebhookSettings, run_webhook

REPO_ROOT = Path(__file__).resolve().parents[1]
VERSIONS = 100
FIELDS = 50
SAMPLES = 40


def _line(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - a benchmark reports on stdout


def _record(version: int) -> str:
    """Version k: 49 shared fields plus one of its own, all with defaults, so every pair of versions is
    compatible both ways (FULL_TRANSITIVE holds for the whole history)."""
    fields: list[dict[str, Any]] = [
        {"name": f"f{i}", "type": "string", "default": ""} for i in range(FIELDS - 1)
    ]
    fields.append({"name": f"only_in_v{version}", "type": "long", "default": 0})
    return json.dumps({"type": "record", "name": "Order", "namespace": "com.acme", "fields": fields})


def _schema(name: str, subject: str, version: int, text: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Schema",
        "metadata": {"name": name},
        "spec": {"subject": subject, "version": version, "schema": text},
    }


def _subject(name: str, registry_name: str, level: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Subject",
        "metadata": {"name": name},
        "spec": {"name": registry_name, "format": "AVRO", "compatibility": level},
    }


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50={statistics.median(ordered) * 1000:.1f}ms p99={p99 * 1000:.1f}ms n={len(ordered)}"


async def _time(action: Callable[[], Awaitable[Any]], samples: int = SAMPLES) -> list[float]:
    await action()  # warm-up: connections, parse cache
    out = []
    for _ in range(samples):
        started = time.perf_counter()
        await action()
        out.append(time.perf_counter() - started)
    return out


class _Server:
    """The webhook in a thread with its own event loop, as in a pod."""

    def __init__(self, settings: WebhookSettings, store_url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._settings = settings
        self._store_url = store_url
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        async def main() -> None:
            store = await open_store(self._store_url)
            try:
                await run_webhook(self._settings, store, stop=self._stop)
            finally:
                await store.close()

        self._loop.run_until_complete(main())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


def _register(plane: ControlPlane, url: str, ca_pem: bytes, namespace: str) -> None:
    configuration = yaml.safe_load(
        (REPO_ROOT / "webhook" / "validatingwebhookconfiguration.yaml").read_text()
    )
    configuration["metadata"] = {"name": "kschema-bench"}
    for entry in configuration["webhooks"]:
        path = entry["clientConfig"]["service"]["path"]
        entry["clientConfig"] = {"url": url + path, "caBundle": base64.b64encode(ca_pem).decode()}
        entry["matchConditions"] = [{"name": "bench", "expression": f"request.namespace == '{namespace}'"}]
    plane.kubectl("apply", "-f", "-", input=json.dumps(configuration))


def _kubectl(plane: ControlPlane, *args: str, input: str | None = None) -> None:
    done = plane.kubectl(*args, input=input, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {done.stderr}")


def _wait_until_consulted(plane: ControlPlane, namespace: str) -> None:
    deadline = time.monotonic() + 60
    bad = _schema("probe", "empty", 1, '{"type": "nope"}')
    while time.monotonic() < deadline:
        done = plane.kubectl(
            "create", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(bad), check=False
        )
        if done.returncode != 0 and "not a valid AVRO schema" in done.stderr:
            return
        time.sleep(0.2)
    raise RuntimeError("the API server never consulted the webhook")


async def _measure(
    plane: ControlPlane, namespace: str, baseline_ns: str, webhook_url: str, ca_pem: bytes
) -> None:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(plane.kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration) as api_client:
        api = client.CustomObjectsApi(api_client)
        next_version = _schema("orders-v101", "orders", VERSIONS + 1, _record(VERSIONS + 1))
        first_version = _schema("empty-v1", "empty", 1, _record(1))

        def dry_run(ns: str, body: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
            async def call() -> Any:
                return await api.create_namespaced_custom_object(
                    GROUP, VERSION, ns, SCHEMA_PLURAL, body, dry_run="All"
                )

            return call

        baseline = await _time(dry_run(baseline_ns, next_version))
        with_history = await _time(dry_run(namespace, next_version))
        first = await _time(dry_run(namespace, first_version))
    _line(f"apiserver dry-run create, no webhook (baseline): {_percentiles(baseline)}")
    _line(
        f"apiserver dry-run create, version {VERSIONS + 1} vs {VERSIONS} FULL_TRANSITIVE versions: "
        f"{_percentiles(with_history)}"
    )
    _line(f"apiserver dry-run create, first version: {_percentiles(first)}")

    context = ssl.create_default_context(cadata=ca_pem.decode())

    def review(body: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": str(uuid.uuid4()),
                "kind": {"group": GROUP, "version": VERSION, "kind": "Schema"},
                "operation": "CREATE",
                "namespace": namespace,
                "name": body["metadata"]["name"],
                "object": body,
                "dryRun": True,
            },
        }

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:

        def post(body: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
            async def call() -> Any:
                async with session.post(webhook_url + SCHEMAS_PATH, json=review(body)) as response:
                    verdict = await response.json()
                    if not verdict["response"]["allowed"]:
                        raise RuntimeError(verdict["response"]["status"]["message"])

            return call

        direct_history = await _time(post(next_version))
        direct_first = await _time(post(first_version))
    _line(
        f"webhook handler alone (HTTPS POST), version {VERSIONS + 1} vs {VERSIONS} versions: "
        f"{_percentiles(direct_history)}"
    )
    _line(f"webhook handler alone (HTTPS POST), first version: {_percentiles(direct_first)}")


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="kschema-bench-webhook-") as tmp:
        directory = Path(tmp)
        plane = ControlPlane().start()
        server: _Server | None = None
        try:
            plane.kubectl("apply", "-f", str(REPO_ROOT / "crds"))
            plane.kubectl(
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/subjects.kschema.io",
                "crd/schemas.kschema.io",
            )
            namespace, baseline_ns = "bench", "bench-baseline"
            for ns in (namespace, baseline_ns):
                plane.kubectl("create", "namespace", ns)
            ca = CertificateAuthority("kschema-bench-ca")
            ca.issue("kschema-webhook", hosts=("127.0.0.1",)).write(
                directory / "tls.crt", directory / "tls.key"
            )
            port = free_port()
            settings = WebhookSettings(
                cert_file=directory / "tls.crt",
                key_file=directory / "tls.key",
                host="127.0.0.1",
                port=port,
                kubeconfig=plane.kubeconfig,
            )
            server = _Server(settings, f"sqlite:///{directory}/registry.db")
            server.start()
            url = f"https://127.0.0.1:{port}"
            _register(plane, url, ca.cert_pem, namespace)
            for ns in (namespace, baseline_ns):
                # Registry subject strings are unique across namespaces.
                items = [
                    _subject("orders", f"{ns}-orders", "FULL_TRANSITIVE"),
                    _subject("empty", f"{ns}-empty", "FULL_TRANSITIVE"),
                ]
                _kubectl(
                    plane,
                    "apply",
                    "-n",
                    ns,
                    "-f",
                    "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
                )
            _wait_until_consulted(plane, namespace)
            started = time.perf_counter()
            history = [_schema(f"orders-v{v}", "orders", v, _record(v)) for v in range(1, VERSIONS + 1)]
            for ns in (namespace, baseline_ns):
                _kubectl(
                    plane,
                    "apply",
                    "-n",
                    ns,
                    "-f",
                    "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": history}),
                )
            _line(
                f"set-up: {VERSIONS} versions of a {FIELDS}-field record applied in "
                f"{time.perf_counter() - started:.1f}s"
            )
            asyncio.run(_measure(plane, namespace, baseline_ns, url, ca.cert_pem))
        finally:
            if server is not None:
                server.stop()
            plane.stop()


if __name__ == "__main__":
    run()
