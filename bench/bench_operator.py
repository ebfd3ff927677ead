"""Operator throughput and latency against a real local control plane.

1. `subjects` x `versions` Schemas (plus their Subjects) applied at once: seconds until every resource
   is Ready, and the operator's resident memory (VmRSS, and the peak VmHWM).
2. p50/p95 seconds from `kubectl apply` of one new version to its Subject's ConfigMap listing it.

Baselines from the same run: the time the API server needs to accept the same objects with no operator
doing anything (the floor for step 1), and the time from `kubectl apply` of a plain ConfigMap to reading
it back with the same poller (the floor for step 2).

    python bench/bench_operator.py [--subjects 1000] [--versions 10] [--samples 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from kschema.devcluster import ControlPlane

REPO_ROOT = Path(__file__).resolve().parents[1]
APPLY_WORKERS = 4  # parallel kubectl processes: one kubectl sends its objects one by one


def report(line: str) -> None:
    print(line, flush=True)  # noqa: T201  # a benchmark reports plain lines on stdout


def avro(subject: int, version: int) -> str:
    fields = [
        {"name": "id", "type": "string"},
        {"name": f"f{version}", "type": ["null", "long"], "default": None},
    ]
    return json.dumps({"type": "record", "name": f"Event{subject}", "namespace": "bench", "fields": fields})


def documents(subjects: int, versions: int, first_version: int = 1) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for s in range(subjects):
        docs.append(
            {
                "apiVersion": "kschema.io/v1alpha1",
                "kind": "Subject",
                "metadata": {"name": f"s{s}"},
                "spec": {"format": "AVRO", "compatibility": "BACKWARD"},
            }
        )
        for v in range(first_version, first_version + versions):
            docs.append(schema_doc(s, v))
    return docs


def schema_doc(s: int, v: int) -> dict[str, Any]:
    return {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Schema",
        "metadata": {"name": f"s{s}-v{v}"},
        "spec": {"subject": f"s{s}", "version": v, "schema": avro(s, v)},
    }


def kubectl(plane: ControlPlane, *args: str, input: str | None = None) -> str:
    return plane.kubectl(*args, input=input, check=True).stdout


def apply_all(plane: ControlPlane, namespace: str, docs: list[dict[str, Any]], workdir: Path) -> None:
    chunks = [docs[i::APPLY_WORKERS] for i in range(APPLY_WORKERS)]
    paths = []
    for i, chunk in enumerate(chunks):
        path = workdir / f"chunk-{namespace}-{i}.yaml"
        path.write_text(yaml.safe_dump_all(chunk))
        paths.append(path)
    with ThreadPoolExecutor(APPLY_WORKERS) as pool:
        list(pool.map(lambda p: kubectl(plane, "create", "-n", namespace, "-f", str(p), "-o", "name"), paths))


def count_ready(api: client.CustomObjectsApi, namespace: str, plural: str) -> tuple[int, int]:
    listed: Any = api.list_namespaced_custom_object("kschema.io", "v1alpha1", namespace, plural)
    items = listed["items"]
    ready = sum(
        1
        for i in items
        for c in i.get("status", {}).get("conditions", [])
        if c["type"] == "Ready" and c["status"] == "True"
    )
    return ready, len(items)


def rss_kib(pid: int) -> tuple[int, int]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def poll_until(check: Any, timeout: float, interval: float = 0.02) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError("condition not met")
        time.sleep(interval)
    return time.monotonic() - started


def run(
    subjects: int = 1000, versions: int = 10, samples: int = 20, ready_timeout: float = 1800
) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="kschema-bench-") as tmp, ControlPlane() as plane:
        workdir = Path(tmp)
        kubectl(plane, "apply", "-f", str(REPO_ROOT / "crds"))
        kubectl(plane, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        api_client = config.new_client_from_config(str(plane.kubeconfig))
        custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
        docs = documents(subjects, versions)

        # Baseline: the API server alone takes the same objects (no operator running in this namespace).
        kubectl(plane, "create", "namespace", "baseline")
        started = time.monotonic()
        apply_all(plane, "baseline", docs, workdir)
        results["baseline_create_s"] = time.monotonic() - started
        report(
            f"baseline: created {len(docs)} objects with no operator in {results['baseline_create_s']:.1f} s"
        )

        kubectl(plane, "create", "namespace", "bench")
        log = (workdir / "operator.log").open("wb")
        operator = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "kschema"),
                "operator",
                "--kubeconfig",
                str(plane.kubeconfig),
                "--namespaces",
                "bench",
                "--store-url",
                f"sqlite:///{workdir}/registry.db",
                "--peering",
                "",
                "--health-port",
                "0",
                "--log-level",
                "WARNING",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            time.sleep(3)  # not a correctness wait: lets the idle process settle before the idle RSS reading
            idle_rss, _ = rss_kib(operator.pid)
            started = time.monotonic()
            apply_all(plane, "bench", docs, workdir)
            applied = time.monotonic() - started
            total = len(docs)
            last_print = 0.0
            while True:
                ready_subjects, _ = count_ready(custom, "bench", "subjects")
                ready_schemas, _ = count_ready(custom, "bench", "schemas")
                elapsed = time.monotonic() - started
                if ready_subjects + ready_schemas == total:
                    break
                if operator.poll() is not None:
                    raise RuntimeError(
                        f"the operator exited: {(workdir / 'operator.log').read_text()[-3000:]}"
                    )
                if elapsed > ready_timeout:
                    raise TimeoutError(
                        f"only {ready_subjects + ready_schemas} of {total} Ready after {elapsed:.0f} s"
                    )
                if elapsed - last_print > 30:
                    report(f"  ... {ready_subjects + ready_schemas}/{total} Ready after {elapsed:.0f} s")
                    last_print = elapsed
                time.sleep(1)
            results["all_ready_s"] = time.monotonic() - started
            results["apply_s"] = applied
            rss, peak = rss_kib(operator.pid)
            results.update(idle_rss_mib=idle_rss / 1024, rss_mib=rss / 1024, peak_rss_mib=peak / 1024)
            report(
                f"operator: {subjects} subjects x {versions} versions ({total} objects) all Ready in "
                f"{results['all_ready_s']:.1f} s (kubectl create took {applied:.1f} s; "
                f"{total / results['all_ready_s']:.1f} objects/s)"
            )
            report(
                f"operator RSS: idle {results['idle_rss_mib']:.0f} MiB, after {results['rss_mib']:.0f} MiB, "
                f"peak {results['peak_rss_mib']:.0f} MiB"
            )

            latencies, baselines = [], []
            for i in range(samples):
                version = versions + 1 + i
                doc = yaml.safe_dump(schema_doc(0, version))

                def projected(v: int = version) -> bool:
                    data = core.read_namespaced_config_map("s0-schemas", "bench").data or {}
                    return str(v) in json.loads(data.get("versions.json", "{}"))

                t0 = time.monotonic()
                kubectl(plane, "apply", "-n", "bench", "-f", "-", input=doc)
                latencies.append(time.monotonic() - t0 + poll_until(projected, 60))

                plain = yaml.safe_dump(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": f"plain-{i}"},
                        "data": {"v": str(i)},
                    }
                )
                t0 = time.monotonic()
                kubectl(plane, "apply", "-n", "baseline", "-f", "-", input=plain)
                baselines.append(
                    time.monotonic()
                    - t0
                    + poll_until(
                        lambda n=i: (
                            core.read_namespaced_config_map(f"plain-{n}", "baseline").data == {"v": str(n)}
                        ),
                        60,
                    )
                )
            results.update(
                apply_to_configmap_p50_s=statistics.median(latencies),
                apply_to_configmap_p95_s=percentile(latencies, 0.95),
                baseline_p50_s=statistics.median(baselines),
                baseline_p95_s=percentile(baselines, 0.95),
            )
            report(
                f"apply -> ConfigMap updated ({samples} samples on a subject with {versions}+ versions): "
                f"p50 {results['apply_to_configmap_p50_s']:.3f} s, "
                f"p95 {results['apply_to_configmap_p95_s']:.3f} s"
            )
            report(
                f"baseline apply -> plain ConfigMap readable: p50 {results['baseline_p50_s']:.3f} s, "
                f"p95 {results['baseline_p95_s']:.3f} s"
            )
        finally:
            operator.terminate()
            try:
                operator.wait(30)
            except subprocess.TimeoutExpired:
                operator.kill()
            log.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    run(args.subjects, args.versions, args.samples)


if __name__ == "__main__":
    main()
