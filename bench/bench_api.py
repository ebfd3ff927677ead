"""The read API under load, measured with `wrk` (C), and its index at 100,000 versions.

1. Throughput: `kschema api` as shipped (its CLI, over a SQLite store with 10,000 versions in 1,000
   subjects) against the baseline, a bare aiohttp server answering the same bytes with the same
   `Content-Type` from a dict (`bench.bare_api`), both in their own process, measured in the same run:
   `wrk` with 50 connections on `GET /schemas/ids/{id}` (IDs drawn at random over all 10,000 by a wrk
   Lua script) and `GET /subjects/{s}/versions/latest` (random subjects). Each server runs on a CPU of
   its own and wrk on the others (one server process is one core's worth of work; sharing cores with
   the load generator made each server's speed depend on where the scheduler put wrk's threads). The
   two are measured in short pairs, back to back, the first of each pair swapped every pair; the ratio
   (target >= 0.9) is the median of the pairs' ratios: a pair's two halves see the same host, so a
   host that speeds up or slows down during the run (this VM's speed drifts by a third within a
   minute) cancels out within each pair. Printed besides: requests/s of each (median), wrk's latency
   percentiles, the server's CPU time per request, and the server-side p99 from the API's own
   `kschema_api_request_duration_seconds` histogram (for these two lookups, the time `kschema api`
   takes to answer them before routing, see `kschema/api/hotpath.py`; not the HTTP parsing and socket
   writes around it). Before the rounds, every ID and subject is asked for once (`_warm`).
   The baseline routes each request (aiohttp's router, one template per lookup); kschema answers these
   two lookups ahead of its router, which is why it can serve more requests per second than the
   baseline does.
2. Index at 100,000 versions, SQLite and PostgreSQL: start-up (process spawn until `/readyz` answers 200,
   i.e. snapshot load included) and RSS after it, each next to the same process over an empty store;
   the difference is what loading and holding the index costs.

Run: `python -m bench api` (or `python -m bench.bench_api`).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.harness.postgres import running_postgres

from bench.apiproc import (
    ACCEPT,
    Server,
    WrkResult,
    bare_server,
    duration_buckets,
    histogram_quantile,
    kschema_api,
    lua_script,
    pin,
    wrk,
)
from bench.bare_api import event_loop, fetch_all
from bench.registry_seed import VERSIONS_PER_SUBJECT, seed_postgres, sqlite_copy, subject_name
from kschema.store.postgres import PostgresStore

VERSIONS = 10_000
SUBJECTS = VERSIONS // VERSIONS_PER_SUBJECT
LARGE = 100_000
CONNECTIONS = 50
SECONDS = 2
PAIRS = 16
TARGET_RATIO = 0.9
# Route template (the histogram's label) -> the Lua expression of a request path.
ENDPOINTS = {
    "/schemas/ids/{id}": f'"/schemas/ids/" .. math.random(1, {VERSIONS})',
    "/subjects/{subject}/versions/{version}": (
        f'"/subjects/topic-" .. math.random(0, {SUBJECTS - 1}) .. "-value/versions/latest"'
    ),
}
SAMPLE_PATHS = ["/schemas/ids/1", f"/schemas/ids/{VERSIONS}", "/subjects/topic-7-value/versions/latest"]


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _get(url: str) -> tuple[bytes, str | None]:
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read(), response.headers.get("Content-Type")


def _same_answers(api: Server, bare: Server) -> None:
    for path in SAMPLE_PATHS:
        if _get(api.url + path) != _get(bare.url + path):
            raise RuntimeError(f"the baseline does not answer {path} exactly as kschema does")


def _warm(server: Server) -> None:
    """Asks once for every path the load draws from: `kschema api` renders a body on its first request
    and keeps it, where the baseline copied every body before it started. The measured rounds compare
    the two serving from memory, as a registry does for the IDs its serializers keep asking for."""
    paths = [f"/schemas/ids/{i}" for i in range(1, VERSIONS + 1)]
    paths += [f"/subjects/{subject_name(s)}/versions/latest" for s in range(SUBJECTS)]
    fetch_all(server.url, paths)


class _Rounds:
    def __init__(self) -> None:
        self.results: list[WrkResult] = []
        self.cpu_us: list[float] = []
        self.server_p99_ms: list[float] = []

    def median(self, values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    def rps(self) -> float:
        return self.median([r.rps for r in self.results])

    def latency(self, q: str) -> float:
        return self.median([r.latency_ms.get(q, float("nan")) for r in self.results])


@dataclass(frozen=True)
class _Placement:
    """Where the servers and wrk run: the servers on the last CPU, wrk on the others (nothing is pinned
    on a single-CPU machine)."""

    server: frozenset[int] | None
    load: frozenset[int] | None
    threads: int

    @classmethod
    def of_this_machine(cls) -> _Placement:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return cls(None, None, 1)
        return cls(frozenset(cpus[-1:]), frozenset(cpus[:-1]), len(cpus) - 1)

    def describe(self) -> str:
        if self.server is None or self.load is None:
            return "not pinned (one CPU)"
        return f"servers on CPU {sorted(self.server)}, wrk -t{self.threads} on CPUs {sorted(self.load)}"


def _round(server: Server, script: Path, rounds: _Rounds, route: str | None, placement: _Placement) -> None:
    before = duration_buckets(server.url, route) if route else {}
    cpu = server.cpu_seconds()
    result = wrk(server.url, script, SECONDS, CONNECTIONS, placement.threads, placement.load)
    rounds.cpu_us.append((server.cpu_seconds() - cpu) / result.requests * 1e6)
    rounds.results.append(result)
    if route:
        after = duration_buckets(server.url, route)
        rounds.server_p99_ms.append(histogram_quantile(0.99, before, after) * 1000)


def _throughput(workdir: Path) -> None:
    placement = _Placement.of_this_machine()
    _out(
        f"setup versions {VERSIONS} subjects {SUBJECTS} connections {CONNECTIONS} seconds_per_run {SECONDS} "
        f"pairs {PAIRS} (back to back, the first of each pair swapped every pair), {placement.describe()}, "
        f"store sqlite, event loop {event_loop()} (both servers)"
    )
    with (
        kschema_api(sqlite_copy(VERSIONS, workdir), workdir) as api,
        bare_server(api.url, workdir, VERSIONS, SUBJECTS) as bare,
    ):
        if placement.server is not None:
            for server in (api, bare):
                pin(server.pid, placement.server)
        _same_answers(api, bare)
        _warm(api)
        for route, path in ENDPOINTS.items():
            script = lua_script(workdir, "load", path)
            for server in (bare, api):  # warm both (first-use caches, CPU frequency)
                wrk(server.url, script, 1, CONNECTIONS, placement.threads, placement.load)
            runs = {"bare": _Rounds(), "kschema": _Rounds()}
            for i in range(PAIRS):
                pair = [(bare, runs["bare"], None), (api, runs["kschema"], route)]
                for server, rounds, label in pair if i % 2 == 0 else reversed(pair):
                    _round(server, script, rounds, label, placement)
            for name, r in runs.items():
                _out(
                    f"  GET {route} {name:8} rps {r.rps():7.0f}  wrk latency ms p50 {r.latency('50'):.2f} "
                    f"p90 {r.latency('90'):.2f} p99 {r.latency('99'):.2f}  "
                    f"server_cpu_us_per_request {r.median(r.cpu_us):.0f}"
                )
            ours, bare_run = runs["kschema"], runs["bare"]
            paired = sorted(o.rps / b.rps for o, b in zip(ours.results, bare_run.results, strict=True))
            ratio = statistics.median(paired)
            cpu_ratio = statistics.median(b / o for o, b in zip(ours.cpu_us, bare_run.cpu_us, strict=True))
            verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
            _out(
                f"  GET {route} ratio_kschema_to_bare {ratio:.3f} (median of {PAIRS} pairs; target >= "
                f"{TARGET_RATIO}: {verdict}); ratio of the median rps {ours.rps() / bare_run.rps():.3f}; "
                f"cpu_ratio {cpu_ratio:.3f}; server_p99_ms {ours.median(ours.server_p99_ms):.3f} "
                "(the API's request-duration histogram, interpolated)"
            )
            quartiles = statistics.quantiles(paired, n=4)
            _out(
                f"  GET {route} pair ratios min {paired[0]:.2f} q1 {quartiles[0]:.2f} q3 {quartiles[2]:.2f} "
                f"max {paired[-1]:.2f} (the spread is this host's noise)"
            )


def _startup(label: str, loaded_url: str, empty_url: str, workdir: Path) -> None:
    """Start-up and RSS of `kschema api` over a store with LARGE versions, next to an empty store."""
    measured: dict[str, tuple[float, int]] = {}
    for name, url in (("empty", empty_url), ("loaded", loaded_url)):
        with kschema_api(url, workdir, f"api-{label}-{name}") as api:
            measured[name] = (api.ready_seconds, api.rss_bytes())
            if name == "loaded":
                _get(f"{api.url}/schemas/ids/{LARGE}")  # raises unless the last ID is served
    (empty_s, empty_rss), (loaded_s, loaded_rss) = measured["empty"], measured["loaded"]
    _out(
        f"  {label:8} {LARGE} versions: ready after {loaded_s:.2f} s (empty store {empty_s:.2f} s; "
        f"snapshot load +{loaded_s - empty_s:.2f} s), RSS {loaded_rss / 2**20:.0f} MiB "
        f"(empty store {empty_rss / 2**20:.0f} MiB; index +{(loaded_rss - empty_rss) / 2**20:.0f} MiB, "
        f"{(loaded_rss - empty_rss) / LARGE:.0f} bytes per version)"
    )


async def _empty_postgres(dsn: str) -> None:
    store = PostgresStore(dsn)
    await store.open()
    await store.close()


def _large(workdir: Path) -> None:
    _out(f"index at {LARGE} versions ({LARGE // VERSIONS_PER_SUBJECT} subjects), `kschema api` as shipped")
    started = time.monotonic()
    loaded = sqlite_copy(LARGE, workdir)
    _out(f"  (sqlite store file ready in {time.monotonic() - started:.1f} s; cached between runs)")
    _startup("sqlite", loaded, f"sqlite:///{workdir / 'empty.db'}", workdir)
    with running_postgres() as server:
        loaded, empty = server.create_database(), server.create_database()
        started = time.monotonic()
        asyncio.run(seed_postgres(loaded, LARGE))
        asyncio.run(_empty_postgres(empty))
        _out(f"  (postgres seeded in {time.monotonic() - started:.1f} s)")
        _startup("postgres", loaded, empty, workdir)


def run() -> None:
    started = time.monotonic()
    _out(
        f"date {datetime.now(UTC).isoformat(timespec='seconds')} cpus {os.cpu_count()} "
        f"python {sys.version.split()[0]} load_average_1m {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="kschema-bench-api-") as tmp:
        _throughput(Path(tmp))
        _large(Path(tmp))
    took = time.monotonic() - started
    _out(f"bench_api took {took:.0f} s; load_average_1m {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    run()
