"""`kschema import` at size: a source of `subjects` x `versions` (5,000 x 10 by default), its time and peak
memory, and the time for (part of) the imported manifests to be Ready.

The source is real, not a fake: a second kschema (`kschema api`, the read API process) over a SQLite store
populated here through the store API, with IDs pinned with gaps as third-party registries have them.

1. Baseline from the same run: the same requests the import makes (lists, every version, configs, modes)
   with the same client and concurrency, doing nothing with the answers: the floor set by the source.
2. `kschema import` as a subprocess: wall time, versions/s, peak RSS (from wait4's rusage), and whether a
   second run writes the same bytes.
3. Ready: the control plane, `kschema operator`, and `kubectl apply` of the import of the first
   `ready_subjects` subjects (by name), until every Subject and Schema is Ready.

    python bench/bench_import.py [--subjects 5000] [--versions 10] [--ready-subjects 500]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, config

from kschema.compat import CompatibilityLevel
from kschema.devcluster import ControlPlane
from kschema.devcluster.controlplane import free_port
from kschema.formats import SchemaFormat
from kschema.importer.source import SourceClient, SourceSettings, path_of
from kschema.store import NewVersion, SubjectRecord
from kschema.store.factory import open_store

REPO_ROOT = Path(__file__).resolve().parents[1]
KSCHEMA = str(Path(sys.executable).parent / "kschema")
APPLY_WORKERS = 4


def report(line: str) -> None:
    print(line, flush=True)  # noqa: T201  # a benchmark reports plain lines on stdout


def subject_name(s: int) -> str:
    return f"bench.Orders-{s:05d}-value"  # upper case and dots: resource names are derived, not copied


def avro(s: int, v: int) -> str:
    fields: list[dict[str, Any]] = [{"name": "id", "type": "string"}]
    fields += [{"name": f"f{i}", "type": ["null", "long"], "default": None} for i in range(1, v + 1)]
    return json.dumps({"type": "record", "name": f"Order{s}", "namespace": "bench", "fields": fields})


async def populate(url: str, subjects: int, versions: int) -> None:
    store = await open_store(url)
    try:
        schema_id = 0
        for s in range(subjects):
            name = subject_name(s)
            await store.upsert_subject(
                SubjectRecord(name, "bench", SchemaFormat.AVRO, CompatibilityLevel.BACKWARD, False)
            )
            for v in range(1, versions + 1):
                schema_id += 1 + (s + v) % 3  # gaps, as Apicurio and Confluent leave them
                # The store takes the canonical form and fingerprint from its caller; the source only needs
                # distinct ones per text (as the read-API benchmark does), not a parse of 50,000 schemas.
                text = avro(s, v)
                fingerprint = hashlib.sha256(text.encode()).hexdigest()
                avro_format = SchemaFormat.AVRO
                new = NewVersion(name, v, "bench", avro_format, text, text, fingerprint, pinned_id=schema_id)
                await store.register(new)
    finally:
        await store.close()


async def baseline(url: str, subjects: int, versions: int) -> int:
    """The import's requests, answers read and thrown away."""
    async with SourceClient(SourceSettings(url)) as source:
        await source.get_json("/config")
        await source.get_json("/subjects")
        await source.get_json("/subjects", {"deleted": True})
        gate = asyncio.Semaphore(32)

        async def one(s: int) -> None:
            name = subject_name(s)
            async with gate:
                await source.get_json(path_of("subjects", name, "versions"))
                await source.get_json(path_of("subjects", name, "versions"), {"deleted": True})
                await asyncio.gather(
                    *(
                        source.get_json(path_of("subjects", name, "versions", v), {"deleted": True})
                        for v in range(1, versions + 1)
                    ),
                    source.get_json(path_of("config", name)),
                    source.get_json(path_of("mode", name)),
                    return_exceptions=True,
                )

        await asyncio.gather(*(one(s) for s in range(subjects)))
        return source.requests


def run_import(url: str, out: Path, *extra: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `kschema import` process."""
    started = time.monotonic()
    process = subprocess.Popen(
        [KSCHEMA, "import", "--from", url, "--out", str(out), "--namespace", "bench", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - started
    stdout, stderr = process.communicate()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"kschema import failed: {stderr.decode()[-3000:]}")
    report(f"  {stdout.decode().strip()}")
    return elapsed, usage.ru_maxrss / 1024


def tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(path.iterdir()):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout:g} s")


def ready_counts(api: client.CustomObjectsApi) -> int:
    ready = 0
    for plural in ("subjects", "schemas"):
        listed: Any = api.list_namespaced_custom_object("kschema.io", "v1alpha1", "bench", plural)
        ready += sum(
            1
            for item in listed["items"]
            for c in item.get("status", {}).get("conditions", [])
            if c["type"] == "Ready" and c["status"] == "True"
        )
    return ready


def measure_ready(out: Path, expected: int, work: Path, timeout: float) -> float:
    with ControlPlane() as plane:
        plane.kubectl("apply", "-f", str(REPO_ROOT / "crds"), check=True)
        plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all", check=True)
        plane.kubectl("create", "namespace", "bench", check=True)
        api_client = config.new_client_from_config(str(plane.kubeconfig))
        custom = client.CustomObjectsApi(api_client)
        log = (work / "operator.log").open("wb")
        operator = subprocess.Popen(
            [
                KSCHEMA,
                "operator",
                "--kubeconfig",
                str(plane.kubeconfig),
                "--namespaces",
                "bench",
                "--store-url",
                f"sqlite:///{work}/ready.db",
                "--peering",
                "",
                "--health-port",
                "0",
                "--log-level",
                "WARNING",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            started = time.monotonic()
            files = sorted(out.iterdir())
            # Subjects first (as `kubectl apply -f DIR` orders them), then the versions in parallel.
            subjects = [f for f in files if f.name.startswith("subject-")]
            versions = [f for f in files if not f.name.startswith("subject-")]
            for group in (subjects, versions):
                chunks = [group[i::APPLY_WORKERS] for i in range(APPLY_WORKERS)]

                def apply(chunk: list[Path]) -> None:
                    args = [a for f in chunk for a in ("-f", str(f))]
                    if args:
                        plane.kubectl("apply", *args, "-o", "name", check=True)

                with ThreadPoolExecutor(APPLY_WORKERS) as pool:
                    list(pool.map(apply, chunks))
            applied = time.monotonic() - started
            while (ready := ready_counts(custom)) < expected:
                if operator.poll() is not None:
                    raise RuntimeError(f"the operator exited: {(work / 'operator.log').read_text()[-3000:]}")
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"only {ready} of {expected} Ready after {timeout:g} s")
                time.sleep(1)
            total = time.monotonic() - started
            report(f"  kubectl apply took {applied:.1f} s; all {expected} objects Ready after {total:.1f} s")
            return total
        finally:
            operator.terminate()
            try:
                operator.wait(30)
            except subprocess.TimeoutExpired:
                operator.kill()
            log.close()


def run(
    subjects: int = 5000, versions: int = 10, ready_subjects: int = 500, ready_timeout: float = 1800
) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="kschema-bench-import-") as tmp:
        work = Path(tmp)
        store_url = f"sqlite:///{work}/source.db"
        started = time.monotonic()
        asyncio.run(populate(store_url, subjects, versions))
        report(
            f"source: {subjects} subjects x {versions} versions written to a SQLite store in "
            f"{time.monotonic() - started:.1f} s"
        )
        port, health = free_port(), free_port()
        api = subprocess.Popen(
            [KSCHEMA, "api"],
            env={
                **os.environ,
                "KSCHEMA_STORE_URL": store_url,
                "KSCHEMA_API_HOST": "127.0.0.1",
                "KSCHEMA_API_PORT": str(port),
                "KSCHEMA_HEALTH_PORT": str(health),
                "KSCHEMA_LOG_LEVEL": "WARNING",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/readyz", api)
            started = time.monotonic()
            requests = asyncio.run(baseline(url, subjects, versions))
            results["baseline_s"] = time.monotonic() - started
            report(
                f"baseline: the import's {requests} requests alone in {results['baseline_s']:.1f} s "
                f"({requests / results['baseline_s']:.0f} requests/s)"
            )
            out = work / "imported"
            results["import_s"], results["import_peak_rss_mib"] = run_import(url, out, "--progress", "never")
            first = tree_digest(out)
            results["rerun_s"], _ = run_import(url, out, "--progress", "never")
            same = tree_digest(out) == first
            total = subjects * versions
            report(
                f"import: {subjects} subjects x {versions} versions in {results['import_s']:.1f} s "
                f"({total / results['import_s']:.0f} versions/s), peak RSS "
                f"{results['import_peak_rss_mib']:.0f} MiB; re-run {results['rerun_s']:.1f} s, "
                f"{'byte-identical' if same else 'DIFFERENT BYTES'}"
            )
            if not same:
                raise AssertionError("a second import of the same source wrote different bytes")
            if ready_subjects:
                part = work / "part"
                selected = [subject_name(s) for s in range(min(ready_subjects, subjects))]
                extra = [a for name in selected for a in ("--subjects", name)]
                run_import(url, part, "--progress", "never", *extra)
                expected = len(selected) * (1 + versions)
                results["ready_s"] = measure_ready(part, expected, work, ready_timeout)
                report(
                    f"ready: {len(selected)} subjects x {versions} versions ({expected} objects) applied and "
                    f"all Ready in {results['ready_s']:.1f} s ({expected / results['ready_s']:.1f} objects/s)"
                )
        finally:
            api.terminate()
            api.wait(30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=5000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--ready-subjects", type=int, default=500)
    args = parser.parse_args()
    run(args.subjects, args.versions, args.ready_subjects)


if __name__ == "__main__":
    main()
