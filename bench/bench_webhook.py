"""Admission latency of the webhook, per format, server-side and through a real kube-apiserver.

Set-up: a local control plane, the webhook (with a SQLite store) registered for one namespace, and in it
one `FULL_TRANSITIVE` subject per format with 100 declared versions of an equivalent 50-field record
(Avro, JSON Schema, Protobuf: 49 string fields and one integer field of the version's own). Another
namespace, not reviewed, holds `NOISE` small Schemas, so the webhook's catalog is as large as a busy
cluster's (about 2,000 Schemas in all).

Measured per format, each as p50/p99 over `SAMPLES` dry-run creates POSTed to the API server (the
webhook runs, nothing is written):

* a *new* version each time (another field of its own in every sample): nothing about it is cached, the
  100 declared versions are (parsed, in the worker) — the first review of a version someone applies;
* the *same* version again (Argo CD's dry-runs, retries): its pairwise verdicts are cached too.

For each, two figures: **server-side**, the webhook's own time from request received to response
written (its timing middleware, `kschema_webhook_review_duration_seconds`), which the target is about;
and **end to end**, the client's time for the whole API request.

Baselines from the same run: the same dry-run create in a namespace the webhook is not consulted for
(API server, CRD validation and client alone), and the review computed in this process with nothing
cached (`kschema.policy.review_schema` with a plain parse: 101 parses and 200 reader/writer checks), the
cost the webhook paid for every review before it cached anything.

Run from the repository root: `python -m bench.bench_webhook` (or call `run()`).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client, config

from kschema.compat import CompatibilityLevel
from kschema.devcluster import ControlPlane
from kschema.devcluster.controlplane import free_port
from kschema.devcluster.pki import CertificateAuthority
from kschema.formats import SchemaFormat
from kschema.model import GROUP, SCHEMA_KIND, SCHEMA_PLURAL, VERSION, schema_from_body, subject_from_body
from kschema.policy import Catalog, review_schema
from kschema.store.factory import open_store
from kschema.webhook import WebhookMetrics, WebhookSettings, run_webhook
from kschema.webhook.metrics import RECENT_REVIEWS

REPO_ROOT = Path(__file__).resolve().parents[1]
VERSIONS = 100
FIELDS = 50
SAMPLES = 60
BARE_SAMPLES = 8  # each costs what a review cost before anything was cached
NOISE = 1700
NOISE_BATCHES = 4
TARGET_MS = {SchemaFormat.AVRO: 20.0, SchemaFormat.JSON: 40.0, SchemaFormat.PROTOBUF: 40.0}
NAMESPACE, OTHER_NAMESPACE = "bench", "bench-other"


def _line(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - a benchmark reports on stdout


def _avro(own: str) -> str:
    fields: list[dict[str, Any]] = [
        {"name": f"f{i}", "type": "string", "default": ""} for i in range(FIELDS - 1)
    ]
    fields.append({"name": own, "type": "long", "default": 0})
    return json.dumps({"type": "record", "name": "Order", "namespace": "com.acme", "fields": fields})


def _json(own: str) -> str:
    properties: dict[str, Any] = {f"f{i}": {"type": "string"} for i in range(FIELDS - 1)}
    properties[own] = {"type": "integer"}
    # Partly open: a property one version has and another lacks is covered by additionalProperties,
    # so every pair of versions is compatible both ways, as with the Avro defaults.
    return json.dumps(
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": properties,
            "additionalProperties": {"type": "integer"},
        }
    )


def _proto(own: str, number: int) -> str:
    lines = [f"  string f{i} = {i + 1};" for i in range(FIELDS - 1)]
    lines.append(f"  int64 {own} = {number};")
    return 'syntax = "proto3";\npackage acme;\n\nmessage Order {\n' + "\n".join(lines) + "\n}\n"


def _text(fmt: SchemaFormat, own: str, number: int) -> str:
    if fmt is SchemaFormat.AVRO:
        return _avro(own)
    if fmt is SchemaFormat.JSON:
        return _json(own)
    return _proto(own, number)


def _declared(fmt: SchemaFormat, version: int) -> str:
    return _text(fmt, f"only_in_v{version}", FIELDS + version)


def _fresh(fmt: SchemaFormat, sample: int) -> str:
    return _text(fmt, f"only_in_new_{sample}", 1000 + sample)


def _subject_name(fmt: SchemaFormat) -> str:
    return f"orders-{fmt.value.lower()}"


def _schema(name: str, subject: str, version: int, text: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Schema",
        "metadata": {"name": name},
        "spec": {"subject": subject, "version": version, "schema": text},
    }


def _subject(name: str, fmt: SchemaFormat) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Subject",
        "metadata": {"name": name},
        "spec": {"name": name, "format": fmt.value, "compatibility": "FULL_TRANSITIVE"},
    }


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def _show(samples: list[float]) -> str:
    p50, p99 = _ms(samples)
    return f"p50={p50:.1f}ms p99={p99:.1f}ms n={len(samples)}"


class _Server:
    """The webhook in a thread with its own event loop, as in a pod; its metrics are read in place."""

    def __init__(self, settings: WebhookSettings, store_url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._settings = settings
        self._store_url = store_url
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.metrics = WebhookMetrics()

    def _serve(self) -> None:
        async def main() -> None:
            store = await open_store(self._store_url)
            try:
                await run_webhook(self._settings, store, stop=self._stop, metrics=self.metrics)
            finally:
                await store.close()

        self._loop.run_until_complete(main())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def reviews(self, expected: int = 0) -> list[float]:
        """Server-side durations of the Schema reviews since the last call. The API server may have its
        answer a moment before the webhook records the time it took: wait (briefly) for `expected`."""
        deadline = time.monotonic() + 2
        recent = self.metrics.recent.setdefault(SCHEMA_KIND, collections.deque(maxlen=RECENT_REVIEWS))
        while len(recent) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        taken = list(recent)
        recent.clear()
        return taken


def _register(plane: ControlPlane, url: str, ca_pem: bytes) -> None:
    configuration = yaml.safe_load(
        (REPO_ROOT / "webhook" / "validatingwebhookconfiguration.yaml").read_text()
    )
    configuration["metadata"] = {"name": "kschema-bench"}
    for entry in configuration["webhooks"]:
        path = entry["clientConfig"]["service"]["path"]
        entry["clientConfig"] = {"url": url + path, "caBundle": base64.b64encode(ca_pem).decode()}
        entry["matchConditions"] = [{"name": "bench", "expression": f"request.namespace == '{NAMESPACE}'"}]
    plane.kubectl("apply", "-f", "-", input=json.dumps(configuration))


def _kubectl(plane: ControlPlane, *args: str, input: str | None = None) -> None:
    done = plane.kubectl(*args, input=input, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {done.stderr}")


def _create(plane: ControlPlane, namespace: str, items: list[dict[str, Any]]) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    _kubectl(plane, "create", "-n", namespace, "-f", "-", input=body)


def _wait_until_consulted(plane: ControlPlane) -> None:
    deadline = time.monotonic() + 60
    bad = _schema("probe", _subject_name(SchemaFormat.AVRO), VERSIONS + 1, '{"type": "nope"}')
    while time.monotonic() < deadline:
        done = plane.kubectl(
            "create", "--dry-run=server", "-n", NAMESPACE, "-f", "-", input=json.dumps(bad), check=False
        )
        if done.returncode != 0 and "not a valid AVRO schema" in done.stderr:
            return
        time.sleep(0.2)
    raise RuntimeError("the API server never consulted the webhook")


def _bare_review(fmt: SchemaFormat, samples: int) -> list[float]:
    """The review with nothing cached, in this process: what every review cost before caching."""
    name = _subject_name(fmt)

    def placed(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "metadata": {**body["metadata"], "namespace": NAMESPACE}}

    subject = subject_from_body(placed(_subject(name, fmt)), CompatibilityLevel.BACKWARD)
    history = [
        schema_from_body(placed(_schema(f"{name}-v{v}", name, v, _declared(fmt, v))))
        for v in range(1, VERSIONS + 1)
    ]
    catalog = Catalog([subject], history)
    out = []
    for sample in range(samples):
        new = schema_from_body(
            placed(_schema(f"new-{sample}", name, VERSIONS + 1, _fresh(fmt, 10_000 + sample)))
        )
        started = time.perf_counter()
        decision = review_schema(new, None, catalog)
        out.append(time.perf_counter() - started)
        if not decision.allowed:
            raise RuntimeError(decision.message)
    return out


async def _measure(plane: ControlPlane, server: _Server) -> dict[SchemaFormat, dict[str, list[float]]]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(plane.kubeconfig), client_configuration=configuration)
    results: dict[SchemaFormat, dict[str, list[float]]] = {}
    async with client.ApiClient(configuration) as api_client:
        api = client.CustomObjectsApi(api_client)

        async def dry_run(namespace: str, body: dict[str, Any]) -> None:
            await api.create_namespaced_custom_object(
                GROUP, VERSION, namespace, SCHEMA_PLURAL, body, dry_run="All"
            )

        async def timed(bodies: Callable[[int], dict[str, Any]], namespace: str) -> list[float]:
            await dry_run(namespace, bodies(-1))  # warm-up: connections, the worker's history cache
            server.reviews(1 if namespace == NAMESPACE else 0)
            out = []
            for sample in range(SAMPLES):
                body = bodies(sample)
                started = time.perf_counter()
                await dry_run(namespace, body)
                out.append(time.perf_counter() - started)
            return out

        for fmt in SchemaFormat:
            subject = _subject_name(fmt)
            same = _schema(f"{subject}-v{VERSIONS + 1}", subject, VERSIONS + 1, _declared(fmt, VERSIONS + 1))

            def fresh(sample: int, fmt: SchemaFormat = fmt, subject: str = subject) -> dict[str, Any]:
                return _schema(f"{subject}-v{VERSIONS + 1}", subject, VERSIONS + 1, _fresh(fmt, sample + 1))

            def repeated(_: int, same: dict[str, Any] = same) -> dict[str, Any]:
                return same

            measured: dict[str, list[float]] = {}
            measured["apiserver-new"] = await timed(fresh, NAMESPACE)
            measured["server-new"] = server.reviews(SAMPLES)
            measured["apiserver-same"] = await timed(repeated, NAMESPACE)
            measured["server-same"] = server.reviews(SAMPLES)
            measured["apiserver-no-webhook"] = await timed(repeated, OTHER_NAMESPACE)
            measured["bare"] = _bare_review(fmt, BARE_SAMPLES)
            results[fmt] = measured
    return results


def _report(results: dict[SchemaFormat, dict[str, list[float]]]) -> None:
    for fmt, measured in results.items():
        label = fmt.value.lower()
        _line(f"admission {label}: version {VERSIONS + 1} vs {VERSIONS} FULL_TRANSITIVE versions")
        _line(f"  baseline, review with nothing cached, in-process: {_show(measured['bare'])}")
        _line(
            f"  baseline, apiserver dry-run, no webhook:          {_show(measured['apiserver-no-webhook'])}"
        )
        _line(f"  new version each time, server-side:               {_show(measured['server-new'])}")
        _line(f"  new version each time, through the apiserver:     {_show(measured['apiserver-new'])}")
        _line(f"  same version again, server-side:                  {_show(measured['server-same'])}")
        _line(f"  same version again, through the apiserver:        {_show(measured['apiserver-same'])}")
    for fmt, measured in results.items():
        target = TARGET_MS[fmt]
        _, new_p99 = _ms(measured["server-new"])
        _, same_p99 = _ms(measured["server-same"])
        _, bare_p99 = _ms(measured["bare"])
        verdict = "met" if new_p99 <= target else "NOT met"
        _line(
            f"target admission {fmt.value.lower()} server-side p99 <= {target:.0f} ms: new version "
            f"{new_p99:.1f} ms ({verdict}), same version {same_p99:.1f} ms; baseline nothing cached "
            f"{bare_p99:.1f} ms"
        )


def _stop_on_sigterm() -> None:
    """A terminated benchmark still stops what it started (the control plane's processes)."""

    def stop(signum: int, _: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def run() -> None:
    _stop_on_sigterm()
    started = time.perf_counter()
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
            for ns in (NAMESPACE, OTHER_NAMESPACE):
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
            _register(plane, f"https://127.0.0.1:{port}", ca.cert_pem)
            _create(plane, NAMESPACE, [_subject(_subject_name(fmt), fmt) for fmt in SchemaFormat])
            _wait_until_consulted(plane)
            applied = time.perf_counter()
            noise_subjects = [_subject(f"noise-{i}", SchemaFormat.AVRO) for i in range(NOISE // 10)]
            _create(plane, OTHER_NAMESPACE, noise_subjects)
            noise = [
                _schema(f"noise-{i}-v{v}", f"noise-{i}", v, _declared(SchemaFormat.AVRO, v))
                for i in range(NOISE // 10)
                for v in range(1, 11)
            ]
            batches = [(OTHER_NAMESPACE, noise[i::NOISE_BATCHES]) for i in range(NOISE_BATCHES)]
            batches += [
                (
                    NAMESPACE,
                    [
                        _schema(f"{_subject_name(fmt)}-v{v}", _subject_name(fmt), v, _declared(fmt, v))
                        for v in range(1, VERSIONS + 1)
                    ],
                )
                for fmt in SchemaFormat
            ]
            with ThreadPoolExecutor(len(batches)) as creating:
                # Each subject's versions in one batch, in order: each is reviewed against those before.
                list(creating.map(lambda batch: _create(plane, *batch), batches))
            _line(
                f"set-up: {VERSIONS} versions x 3 formats (reviewed) and {len(noise)} other Schemas "
                f"created in {time.perf_counter() - applied:.1f}s"
            )
            _report(asyncio.run(_measure(plane, server)))
        finally:
            if server is not None:
                server.stop()
            plane.stop()
    _line(f"bench_webhook took {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    run()
