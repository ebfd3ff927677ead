"""Several `kschema api` processes on one PostgreSQL (Debian's server, started by the test harness), the
topology for replicas: each follows the store's change feed on its own.

1. Throughput: `wrk` (C, 50 connections) on `GET /schemas/ids/{id}` (10,000 versions, random IDs) against
   each replica alone, then against all of them at once (one wrk per replica, the connections split);
   the total is printed next to the single-replica rate (the baseline: on a machine with fewer cores
   than replicas, the total cannot grow much).
2. Change-feed visibility: a new version is registered in the store (as the operator does) and every
   replica is polled until it serves the version; the time from the registration's commit to each
   replica's first 200, p50 and p95 over all replicas and registrations, next to the polling floor (the
   time one poll of an existing version takes).

Run: `python -m bench api_replicas` (or `python -m bench.bench_api_replicas`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from tests.harness.postgres import running_postgres
from tests.harness.stores import avro_record, new_version

from bench.apiproc import Server, kschema_api, lua_script, wrk, wrk_together
from bench.registry_seed import seed_postgres
from kschema.compat import CompatibilityLevel
from kschema.formats import SchemaFormat
from kschema.store import SubjectRecord
from kschema.store.postgres import PostgresStore

REPLICAS = 3
VERSIONS = 10_000
CONNECTIONS = 50
SECONDS = 3
REGISTRATIONS = 20
FEED_SUBJECT = "feed-bench-value"
POLL_SECONDS = 0.002
VISIBLE_WITHIN_SECONDS = 30.0


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _throughput(replicas: list[Server], workdir: Path) -> None:
    script = lua_script(workdir, "ids", f'"/schemas/ids/" .. math.random(1, {VERSIONS})')
    for replica in replicas:
        wrk(replica.url, script, 1, CONNECTIONS)
    alone = [wrk(r.url, script, SECONDS, CONNECTIONS).rps for r in replicas]
    together = wrk_together([r.url for r in replicas], script, SECONDS, CONNECTIONS // len(replicas))
    total = sum(r.rps for r in together)
    _out(
        f"  GET /schemas/ids/{{id}} each replica alone: {[round(x) for x in alone]} requests/s "
        f"(median {statistics.median(alone):.0f}); all {len(replicas)} at once: total {total:.0f} "
        f"requests/s ({[round(r.rps) for r in together]}), "
        f"{total / statistics.median(alone):.2f}x one replica on {os.cpu_count()} cpus"
    )


async def _visible(session: aiohttp.ClientSession, url: str) -> float:
    """Polls `url` until it answers 200; returns when it did (time.monotonic())."""
    deadline = time.monotonic() + VISIBLE_WITHIN_SECONDS
    while time.monotonic() < deadline:
        async with session.get(url) as response:
            await response.read()
            if response.status == 200:
                return time.monotonic()
        await asyncio.sleep(POLL_SECONDS)
    raise RuntimeError(f"{url} did not become visible within {VISIBLE_WITHIN_SECONDS} s")


async def _feed(replicas: list[Server], dsn: str) -> None:
    store = PostgresStore(dsn)
    await store.open()
    latencies: list[float] = []
    floor: list[float] = []
    try:
        await store.upsert_subject(
            SubjectRecord(FEED_SUBJECT, "bench", SchemaFormat.AVRO, CompatibilityLevel.BACKWARD, False)
        )
        async with aiohttp.ClientSession() as session:
            for version in range(1, REGISTRATIONS + 1):
                text = avro_record(f"Feed{version}", *(f"f{i}" for i in range(version)))
                await store.register(new_version(FEED_SUBJECT, version, text, namespace="bench"))
                committed = time.monotonic()
                path = f"/subjects/{FEED_SUBJECT}/versions/{version}"
                seen = await asyncio.gather(*(_visible(session, r.url + path) for r in replicas))
                latencies.extend(at - committed for at in seen)
                started = time.monotonic()
                await _visible(session, replicas[0].url + path)
                floor.append(time.monotonic() - started)
    finally:
        await store.close()
    _out(
        f"  change feed: a registered version served by all {len(replicas)} replicas after "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {_percentile(latencies, 0.95) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms ({len(latencies)} samples: {REGISTRATIONS} registrations x "
        f"{len(replicas)} replicas); polling floor (one GET of a served version) p50 "
        f"{statistics.median(floor) * 1000:.1f} ms"
    )


def run() -> None:
    started = time.monotonic()
    _out(
        f"{REPLICAS} `kschema api` processes on one PostgreSQL, {VERSIONS} versions; load_average_1m "
        f"{os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="kschema-bench-replicas-") as tmp, running_postgres() as server:
        workdir = Path(tmp)
        dsn = server.create_database()
        asyncio.run(seed_postgres(dsn, VERSIONS))
        with contextlib.ExitStack() as stack:
            replicas = [stack.enter_context(kschema_api(dsn, workdir, f"api-{i}")) for i in range(REPLICAS)]
            _out(f"  replicas ready after {[round(r.ready_seconds, 1) for r in replicas]} s")
            _throughput(replicas, workdir)
            asyncio.run(_feed(replicas, dsn))
    took = time.monotonic() - started
    _out(f"bench_api_replicas took {took:.0f} s; load_average_1m {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    run()
