"""Operator throughput and latency against a real local control plane.

1. `subjects` x `versions` Schemas (plus their Subjects) applied at once: seconds until every resource
   is Ready, the operator's resident memory (VmRSS, and the peak VmHWM), and the API requests the
   burst cost, by verb and resource (the API server's own `apiserver_request_total`).
2. p50/p95 seconds from `kubectl apply` of one new version of an existing subject (after the burst has
   settled) until the read API serves it, and until its Subject's ConfigMap lists it.

Baselines from the same run: the time the API server needs to accept the same objects with no operator
doing anything (the floor for step 1; the target is at most 2.5x it, with peak RSS at most 400 MiB), and
the time from `kubectl apply` of a plain ConfigMap to reading it back with the same poller (the floor for
step 2; the target is a p95 of at most 1 s).

The first baseline is taken twice, once before the operator's burst and once after it (with the kschema
processes stopped), and the ratio is to their mean. Most of a baseline's CPU is kubectl's own, and on a
shared host the same creates have cost kubectl from 80 s to 97 s of CPU in runs an hour apart: a single
baseline taken a few minutes before the burst moves the ratio by as much as ±0.3. Both ratios are printed
too.

    python -m bench.bench_operator [--subjects 1000] [--versions 10] [--samples 20] [--profile FILE]

`--profile` samples the operator with py-spy (when it is on PATH) during the burst and prints where the
time went.
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

from bench.operator_probes import (
    ReadyWatch,
    api_requests,
    cpu_seconds,
    cpu_shares,
    cpu_table,
    free_port,
    http_status,
    is_ready,
    request_table,
    rss_kib,
    start_profile,
    stop_profile,
    wait_for_http,
)
from kschema.devcluster import ControlPlane

REPO_ROOT = Path(__file__).resolve().parents[1]
PLURALS = ("subjects", "schemas")
APPLY_WORKERS = 4  # parallel kubectl processes: one kubectl sends its objects one by one


def report(line: str) -> None:
    print(line, flush=True)  # noqa: T201  # a benchmark reports plain lines on stdout


def avro(subject: int, version: int) -> str:
    fields = [
        {"name": "id", "type": "string"},
        {"name": f"f{version}", "type": ["null", "long"], "default": None},
    ]
    return json.dumps({"type": "record", "name": f"Event{subject}", "namespace": "bench", "fields": fields})


def documents(subjects: int, versions: int, *, schemas_first: bool = False) -> list[dict[str, Any]]:
    """Each Subject with its Schemas: the Subject first (the usual order of a directory or a Git sync), or
    after them (their reconciles then wait for it, and register together once it is there)."""
    docs: list[dict[str, Any]] = []
    for s in range(subjects):
        subject = {
            "apiVersion": "kschema.io/v1alpha1",
            "kind": "Subject",
            "metadata": {"name": f"s{s}"},
            "spec": {"format": "AVRO", "compatibility": "BACKWARD"},
        }
        schemas = [schema_doc(s, v) for v in range(1, versions + 1)]
        docs.extend([*schemas, subject] if schemas_first else [subject, *schemas])
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


def write_chunks(docs: list[dict[str, Any]], workdir: Path) -> list[Path]:
    """The documents as one file per kubectl process, written before any clock starts (PyYAML takes
    seconds of CPU for 11,000 documents: not the API server's time, nor the operator's)."""
    paths = []
    for i in range(APPLY_WORKERS):
        path = workdir / f"chunk-{i}.yaml"
        path.write_text(yaml.safe_dump_all(docs[i::APPLY_WORKERS]))
        paths.append(path)
    return paths


def apply_all(plane: ControlPlane, namespace: str, paths: list[Path]) -> None:
    with ThreadPoolExecutor(APPLY_WORKERS) as pool:
        list(pool.map(lambda p: kubectl(plane, "create", "-n", namespace, "-f", str(p), "-o", "name"), paths))


def count_ready(api: client.CustomObjectsApi, namespace: str, plural: str) -> tuple[int, int]:
    listed: Any = api.list_namespaced_custom_object("kschema.io", "v1alpha1", namespace, plural)
    items = listed["items"]
    return sum(1 for i in items if is_ready(i)), len(items)


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


def start_kschema(component: str, plane: ControlPlane, store_url: str, log: Any, *extra: str) -> Any:
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "kschema"),
            component,
            "--kubeconfig",
            str(plane.kubeconfig),
            "--namespaces",
            "bench",
            "--store-url",
            store_url,
            "--log-level",
            "WARNING",
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_all_ready(
    custom: client.CustomObjectsApi,
    watches: list[ReadyWatch],
    operator: Any,
    total: int,
    started: float,
    timeout: float,
    log: Path,
) -> None:
    """Until every object is Ready: counted from the watches, then confirmed once by listing them."""
    last_print = 0.0
    while True:
        ready = sum(w.counts()[0] for w in watches)
        elapsed = time.monotonic() - started
        if (
            ready == total
            and sum(count_ready(custom, "bench", p)[0] for p in ("subjects", "schemas")) == total
        ):
            return
        if operator.poll() is not None:
            raise RuntimeError(f"the operator exited: {log.read_text()[-3000:]}")
        if elapsed > timeout:
            raise TimeoutError(f"only {ready} of {total} Ready after {elapsed:.0f} s")
        if elapsed - last_print > 30:
            report(f"  ... {ready}/{total} Ready after {elapsed:.0f} s")
            last_print = elapsed
        time.sleep(0.2)


def new_version_latencies(
    plane: ControlPlane, core: client.CoreV1Api, api_url: str, versions: int, samples: int
) -> tuple[list[float], list[float], list[float]]:
    """For each new version of subject s0, applied one at a time: seconds until the read API serves it
    and until the ConfigMap lists it; and the plain-ConfigMap baseline with the same poller."""
    served, projected, baselines = [], [], []
    for i in range(samples):
        version = versions + 1 + i
        doc = yaml.safe_dump(schema_doc(0, version))
        seen: dict[str, float] = {}

        def both(v: int = version, seen: dict[str, float] = seen) -> bool:
            if "api" not in seen and http_status(f"{api_url}/subjects/s0/versions/{v}") == 200:
                seen["api"] = time.monotonic()
            if "cm" not in seen:
                data = core.read_namespaced_config_map("s0-schemas", "bench").data or {}
                if str(v) in json.loads(data.get("versions.json", "{}")):
                    seen["cm"] = time.monotonic()
            return len(seen) == 2

        t0 = time.monotonic()
        kubectl(plane, "apply", "-n", "bench", "-f", "-", input=doc)
        poll_until(both, 60)
        served.append(seen["api"] - t0)
        projected.append(seen["cm"] - t0)

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
        poll_until(
            lambda n=i: core.read_namespaced_config_map(f"plain-{n}", "baseline").data == {"v": str(n)}, 60
        )
        baselines.append(time.monotonic() - t0)
    return served, projected, baselines


def baseline(plane: ControlPlane, namespace: str, paths: list[Path], total: int, when: str) -> float:
    """Seconds the API server takes to accept the `total` documents in `paths` in a new namespace no
    operator watches, with where the CPU went and the requests it took."""
    kubectl(plane, "create", "namespace", namespace)
    counted = api_requests(plane)
    shares = cpu_shares(plane)
    started = time.monotonic()
    apply_all(plane, namespace, paths)
    took = time.monotonic() - started
    report(f"baseline {when}: created {total} objects with no operator in {took:.1f} s")
    report("  CPU of the baseline:")
    for line in cpu_table(shares, cpu_shares(plane), took):
        report(line)
    report("  API requests of the baseline:")
    for line in request_table(counted, api_requests(plane), total):
        report(line)
    return took


def run(
    subjects: int = 1000,
    versions: int = 10,
    samples: int = 20,
    ready_timeout: float = 1800,
    profile: Path | None = None,
    schemas_first: bool = False,
) -> dict[str, float]:
    results: dict[str, float] = {}
    bench_started = time.monotonic()
    report(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="kschema-bench-") as tmp, ControlPlane() as plane:
        workdir = Path(tmp)
        kubectl(plane, "apply", "-f", str(REPO_ROOT / "crds"))
        kubectl(plane, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        api_client = config.new_client_from_config(str(plane.kubeconfig))
        custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
        docs = documents(subjects, versions, schemas_first=schemas_first)
        total = len(docs)
        paths = write_chunks(docs, workdir)

        # Baseline: the API server alone takes the same objects (no operator running in this namespace).
        results["baseline_before_s"] = baseline(plane, "baseline", paths, total, "before the burst")

        kubectl(plane, "create", "namespace", "bench")
        store_url = f"sqlite:///{workdir}/registry.db"
        log_path = workdir / "operator.log"
        log = log_path.open("wb")
        operator = start_kschema("operator", plane, store_url, log, "--peering", "", "--health-port", "0")
        api_url = f"http://127.0.0.1:{free_port()}"
        reader = start_kschema(
            "api", plane, store_url, log, "--api-host", "127.0.0.1", "--api-port", api_url.rsplit(":", 1)[1]
        )
        spy = None
        try:
            wait_for_http(f"{api_url}/subjects", 60, reader)
            time.sleep(3)  # not a correctness wait: lets the idle process settle before the idle RSS reading
            idle_rss, _ = rss_kib(operator.pid)
            if profile is not None:
                spy = start_profile(operator.pid, profile)
            watches = [ReadyWatch(custom, "bench", plural) for plural in PLURALS]
            counted = api_requests(plane)
            cpu_before = cpu_seconds(operator.pid)
            shares = cpu_shares(plane, operator=operator.pid, **{"read API": reader.pid})
            started = time.monotonic()
            apply_all(plane, "bench", paths)
            applied = time.monotonic() - started
            wait_all_ready(custom, watches, operator, total, started, ready_timeout, log_path)
            results["all_ready_s"] = time.monotonic() - started
            for each in watches:
                each.stop()
            results["apply_s"] = applied
            requests = request_table(counted, api_requests(plane), total)
            profiled = stop_profile(spy, profile) if profile is not None else []
            spy = None
            results["cpu_s"] = cpu_seconds(operator.pid) - cpu_before
            burst_cpu = cpu_table(
                shares,
                cpu_shares(plane, operator=operator.pid, **{"read API": reader.pid}),
                results["all_ready_s"],
            )
            rss, peak = rss_kib(operator.pid)
            results.update(idle_rss_mib=idle_rss / 1024, rss_mib=rss / 1024, peak_rss_mib=peak / 1024)
            report(
                f"operator: {subjects} subjects x {versions} versions ({total} objects) all Ready in "
                f"{results['all_ready_s']:.1f} s (kubectl create took {applied:.1f} s; "
                f"{total / results['all_ready_s']:.1f} objects/s); load average "
                f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
            )
            report(
                f"operator CPU during the burst: {results['cpu_s']:.1f} s (its worker processes included), "
                f"{results['cpu_s'] / total * 1000:.1f} ms per object"
            )
            report(
                f"operator RSS: idle {results['idle_rss_mib']:.0f} MiB, after {results['rss_mib']:.0f} MiB, "
                f"peak {results['peak_rss_mib']:.0f} MiB (target <= 400 MiB)"
            )
            report("  CPU during the burst:")
            for line in burst_cpu:
                report(line)
            report("  API requests during the burst (the bench's own watches and final count included):")
            for line in requests:
                report(line)
            for line in profiled:
                report(line)

            served, projected, baselines = new_version_latencies(plane, core, api_url, versions, samples)
            results.update(
                apply_to_api_p50_s=statistics.median(served),
                apply_to_api_p95_s=percentile(served, 0.95),
                apply_to_configmap_p50_s=statistics.median(projected),
                apply_to_configmap_p95_s=percentile(projected, 0.95),
                baseline_p50_s=statistics.median(baselines),
                baseline_p95_s=percentile(baselines, 0.95),
            )
            report(
                f"new version -> read API serves it ({samples} samples, subject with {versions}+ versions): "
                f"p50 {results['apply_to_api_p50_s']:.3f} s, p95 {results['apply_to_api_p95_s']:.3f} s "
                "(target p95 <= 1 s)"
            )
            report(
                f"new version -> ConfigMap lists it: p50 {results['apply_to_configmap_p50_s']:.3f} s, "
                f"p95 {results['apply_to_configmap_p95_s']:.3f} s (target p95 <= 1 s)"
            )
            report(
                f"baseline apply -> plain ConfigMap readable: p50 {results['baseline_p50_s']:.3f} s, "
                f"p95 {results['baseline_p95_s']:.3f} s"
            )
        finally:
            if spy is not None and profile is not None:
                stop_profile(spy, profile)
            for process in (operator, reader):
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
            log.close()
        # The same baseline again, in a namespace of its own, with the kschema processes stopped.
        results["baseline_after_s"] = baseline(plane, "baseline-after", paths, total, "after the burst")
    before, after = results["baseline_before_s"], results["baseline_after_s"]
    results["baseline_create_s"] = (before + after) / 2
    ratio = results["ready_ratio"] = results["all_ready_s"] / results["baseline_create_s"]
    report(
        f"operator all Ready / API server alone: {ratio:.2f}x the mean of the two baselines "
        f"({results['baseline_create_s']:.1f} s; target <= 2.5x); {results['all_ready_s'] / before:.2f}x "
        f"the one before the burst, {results['all_ready_s'] / after:.2f}x the one after"
    )
    report(f"bench_operator took {time.monotonic() - bench_started:.0f} s in total")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--profile", type=Path, help="py-spy output file (raw); its summary is printed")
    parser.add_argument(
        "--schemas-first", action="store_true", help="create each Subject after its Schemas, not before"
    )
    args = parser.parse_args()
    run(args.subjects, args.versions, args.samples, profile=args.profile, schemas_first=args.schemas_first)


if __name__ == "__main__":
    main()
