"""Benchmark of the read API's hot path, `GET /schemas/ids/{id}`, with 10,000 versions loaded.

The API and, as the baseline, a bare aiohttp handler returning a constant body of the same size run in
this process on loopback; a separate client process (aiohttp, 50 concurrent connections, bounded by time
and by count) measures requests/s and latency percentiles against each, alternating, the same way.
Also prints the index's memory for 10,000 versions (RSS delta of this process).

Run: `python bench/bench_api.py` (or import and call `run()`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from kschema.api import ApiSettings, create_app
from kschema.api.state import FOLLOWER, INDEX, METRICS
from kschema.compat import CompatibilityLevel
from kschema.formats import SchemaFormat
from kschema.model import SchemaState
from kschema.store import Change, Snapshot, StoredSchema, SubjectRecord, SubjectVersion

VERSIONS = 10_000
SUBJECTS = 1_000
CONNECTIONS = 50
SECONDS = 2.5
MAX_REQUESTS = 200_000
ROUNDS = 4
TARGET_RATIO = 0.85
TARGET_P99_MS = 5.0
CLIENT_SCRIPT = os.path.abspath(__file__)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _avro(i: int) -> str:
    fields: list[dict[str, object]] = [{"name": f"f{j}", "type": "string"} for j in range(5)]
    fields.append({"name": "n", "type": "long", "default": i})
    return json.dumps({"type": "record", "name": f"Rec{i}", "namespace": "bench", "fields": fields})


def _snapshot() -> Snapshot:
    schemas, subjects, versions = [], [], []
    for i in range(1, VERSIONS + 1):
        text = _avro(i)
        schemas.append(
            StoredSchema(i, SchemaFormat.AVRO, text, text, hashlib.sha256(text.encode()).hexdigest(), ())
        )
        subject = f"topic-{i % SUBJECTS}-value"
        versions.append(SubjectVersion(subject, i // SUBJECTS + 1, i, SchemaState.ACTIVE, False, "bench"))
    for s in range(SUBJECTS):
        subjects.append(
            SubjectRecord(f"topic-{s}-value", "bench", SchemaFormat.AVRO, CompatibilityLevel.BACKWARD, False)
        )
    return Snapshot(1, schemas, subjects, versions)


class StaticStore:
    """Serves one snapshot and then an idle change feed: the benchmark measures serving, not the store.
    It drops the snapshot once handed over, so the RSS delta is what the index keeps."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot: Snapshot | None = snapshot

    async def snapshot(self) -> Snapshot:
        snap, self._snapshot = self._snapshot, None
        assert snap is not None
        return snap

    async def changes(self, after_seq: int, limit: int = 1000) -> list[Change]:
        return []

    # The parameter name is the store Protocol's.
    async def wait_for_changes(self, after_seq: int, timeout: float) -> None:  # noqa: ASYNC109
        await asyncio.sleep(timeout)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"the benchmark store does not implement {name}")


# Client process --------------------------------------------------------------------------------------
async def _load(
    base: str, ids: list[int], connections: int, seconds: float, max_requests: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    sent = 0
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(k: int, stop_at: float, record: bool) -> None:
            nonlocal errors, sent
            i = k
            while loop.time() < stop_at and len(latencies) < max_requests:
                sent += 1
                started = time.perf_counter()
                async with session.get(f"{base}/schemas/ids/{ids[i % len(ids)]}") as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                if record:
                    latencies.append(time.perf_counter() - started)
                i += connections

        warm_until = loop.time() + 0.5
        await asyncio.gather(*(worker(k, warm_until, False) for k in range(connections)))
        started = time.perf_counter()
        stop_at = loop.time() + seconds
        await asyncio.gather(*(worker(k, stop_at, True) for k in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "sent": sent,
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def _client_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    args = parser.parse_args(argv)
    ids = list(range(1, VERSIONS + 1))
    random.Random(7).shuffle(ids)
    result = asyncio.run(_load(args.client, ids, CONNECTIONS, args.seconds, MAX_REQUESTS))
    sys.stdout.write(json.dumps(result) + "\n")


async def _measure(base: str) -> dict[str, Any]:
    """One round against `base`, plus this (server) process's CPU time per request: unlike requests/s,
    that does not depend on what else the machine is running."""
    cpu_started = time.process_time()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, CLIENT_SCRIPT, "--client", base, stdout=subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=SECONDS * 10 + 30)
    if proc.returncode != 0:
        raise RuntimeError(f"the load client failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(out)
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} requests failed")
    result["server_cpu_us"] = (time.process_time() - cpu_started) / result["sent"] * 1e6
    return result


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def _main() -> None:
    gc.collect()
    rss_before = _rss_bytes()
    app = create_app(ApiSettings(host="127.0.0.1"), StaticStore(_snapshot()))
    api_runner, api_url = await _serve(app)
    await app[FOLLOWER].first_load.wait()
    gc.collect()
    rss_after = _rss_bytes()

    constant = app[INDEX].schema_body(VERSIONS // 2)
    assert constant is not None

    async def bare_handler(request: web.Request) -> web.Response:
        return web.Response(body=constant, content_type="application/vnd.schemaregistry.v1+json")

    bare = web.Application()
    bare.router.add_get("/schemas/ids/{id}", bare_handler)
    bare_runner, bare_url = await _serve(bare)

    results: dict[str, list[dict[str, Any]]] = {"bare": [], "api": []}
    try:
        for _ in range(ROUNDS):
            results["bare"].append(await _measure(bare_url))
            results["api"].append(await _measure(api_url))
    finally:
        await api_runner.cleanup()
        await bare_runner.cleanup()

    def summary(name: str) -> tuple[float, float, float, int, float]:
        rounds = results[name]
        return (
            statistics.median(r["rps"] for r in rounds),
            statistics.median(r["p50_ms"] for r in rounds),
            statistics.median(r["p99_ms"] for r in rounds),
            sum(r["requests"] for r in rounds),
            statistics.median(r["server_cpu_us"] for r in rounds),
        )

    bare_rps, bare_p50, bare_p99, bare_n, bare_cpu = summary("bare")
    api_rps, api_p50, api_p99, api_n, api_cpu = summary("api")
    ratio = api_rps / bare_rps
    server_p99 = _histogram_p99(app[METRICS].registry, "/schemas/ids/{id}")
    lines = [
        f"date {datetime.now(UTC).isoformat(timespec='seconds')} cpus {os.cpu_count()} "
        f"python {sys.version.split()[0]} load_average_1m {os.getloadavg()[0]:.2f}",
        f"setup versions {VERSIONS} subjects {SUBJECTS} connections {CONNECTIONS} "
        f"seconds_per_round {SECONDS} rounds {ROUNDS} (median; separate client process; loopback)",
        f"bare_handler requests {bare_n} rps {bare_rps:.0f} p50_ms {bare_p50:.2f} p99_ms {bare_p99:.2f} "
        f"server_cpu_us_per_request {bare_cpu:.0f}",
        f"kschema_api requests {api_n} rps {api_rps:.0f} p50_ms {api_p50:.2f} p99_ms {api_p99:.2f} "
        f"server_cpu_us_per_request {api_cpu:.0f}",
        f"ratio_api_to_bare {ratio:.3f} target >= {TARGET_RATIO} {_verdict(ratio >= TARGET_RATIO)}",
        f"cpu_ratio_bare_to_api {bare_cpu / api_cpu:.3f} (server CPU per request; robust to machine load)",
        f"client_p99_ms {api_p99:.2f} target < {TARGET_P99_MS} {_verdict(api_p99 < TARGET_P99_MS)}",
        f"server_p99_ms <= {server_p99 * 1000:.2f} (handler time incl. middleware, histogram bucket bound)",
        f"littles_law_floor_ms {CONNECTIONS / api_rps * 1000:.2f} (mean client latency at this concurrency "
        "and throughput: connections / rps)",
        f"memory_per_10000_versions_mib {(rss_after - rss_before) / VERSIONS * 10_000 / 2**20:.1f} "
        f"(RSS delta of loading the index, schemas of ~{len(_avro(1))} bytes)",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _histogram_p99(registry: CollectorRegistry, route: str) -> float:
    """The upper bound of the bucket holding the 99th percentile of the API's own request timings."""
    buckets: list[tuple[float, float]] = []
    for family in registry.collect():
        if family.name != "kschema_api_request_duration_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("route") == route:
                buckets.append((float(sample.labels["le"]), sample.value))
    buckets.sort()
    total = buckets[-1][1]
    return next(bound for bound, count in buckets if count >= 0.99 * total)


def run() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    if "--client" in sys.argv:
        _client_main(sys.argv[1:])
    else:
        run()
