"""The worst-case compatibility checks, and what the rest of the process does while they run.

* The 60-level `$ref` DAG (each definition `$ref`s the previous one twice): the time to its verdict,
  next to the same check on a 10-level DAG (before memoisation, each level doubled the cost).
* The widest `anyOf` comparison (`tests.harness.worst_case.wide_any_of`): the time until `kschema api`
  refuses it with "too complex to check" (its budget and deadline), over HTTP.
* The read API's `GET /subjects` latency under `wrk` load (p50, p99), first alone (the baseline), then
  while clients keep posting the worst-case check to the same `kschema api` process.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from tests.harness.worst_case import (
    REFUSED_BRANCHES,
    WIDE_SUBJECT,
    json_ref_dag,
    kschema_api,
    populate,
    wide_any_of,
)

from kschema.compat import CompatibilityLevel, VersionedSchema, check_compatibility
from kschema.formats import SchemaFormat, parse_schema

BRANCHES = REFUSED_BRANCHES
WRK_SECONDS = 10
WRK_CONNECTIONS = 8


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _dag_verdict_seconds(levels: int) -> float:
    old = parse_schema(SchemaFormat.JSON, json_ref_dag(levels))
    new = parse_schema(SchemaFormat.JSON, json_ref_dag(levels, "integer"))
    started = time.perf_counter()
    result = check_compatibility(
        VersionedSchema(2, new), [VersionedSchema(1, old)], CompatibilityLevel.BACKWARD
    )
    took = time.perf_counter() - started
    assert not result.compatible
    return took


def _post_check(base: str) -> tuple[int, str, float]:
    url = urlparse(base)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=120)
    body = json.dumps({"schemaType": "JSON", "schema": wide_any_of(BRANCHES, shift=1)})
    started = time.perf_counter()
    conn.request(
        "POST",
        f"/compatibility/subjects/{WIDE_SUBJECT}/versions/latest",
        body,
        {"Content-Type": "application/vnd.schemaregistry.v1+json"},
    )
    response = conn.getresponse()
    payload = json.loads(response.read())
    return response.status, str(payload.get("message", payload)), time.perf_counter() - started


_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_SCALE = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(base: str) -> dict[str, float]:
    """p50 and p99 of `GET /subjects` in ms, measured by wrk."""
    done = subprocess.run(
        ["wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{WRK_SECONDS}s", "--latency", f"{base}/subjects"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = {f"p{m.group(1)}": float(m.group(2)) * _SCALE[m.group(3)] for m in _LATENCY.finditer(done.stdout)}
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    found["rps"] = float(rate.group(1)) if rate else 0.0
    return found


def run() -> None:
    _dag_verdict_seconds(2)  # lazy imports and metaschemas outside the timed part
    small, large = _dag_verdict_seconds(10), _dag_verdict_seconds(60)
    _out(
        f"json $ref DAG verdict: 60 levels {large * 1000:.0f} ms (10 levels, baseline: {small * 1000:.0f} ms)"
    )
    if shutil.which("wrk") is None:
        _out("read API under the worst-case check: unavailable (wrk is not installed; run make setup)")
        return
    with tempfile.TemporaryDirectory(prefix="kschema-bench-worst-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'registry.db'}"
        populate(url, BRANCHES)
        with kschema_api(url, Path(tmp) / "api.log") as base:
            status, message, refused_after = _post_check(base)
            what = f"worst-case check ({BRANCHES}-branch anyOf x3)"
            _out(f"{what}: {status} after {refused_after:.1f} s (the first, with a worker start): {message}")
            alone = _wrk(base)
            stop = threading.Event()
            checks: list[float] = []

            def keep_checking() -> None:
                while not stop.is_set():
                    checks.append(_post_check(base)[2])

            checker = threading.Thread(target=keep_checking)
            checker.start()
            time.sleep(0.5)  # the first check is in its worker before the load starts
            try:
                loaded = _wrk(base)
            finally:
                stop.set()
                checker.join()
    _out(
        f"GET /subjects p99 while the worst-case check runs: {loaded['p99']:.1f} ms "
        f"(p50 {loaded['p50']:.1f} ms, {loaded['rps']:.0f}/s; {len(checks)} checks refused meanwhile, "
        f"each after {min(checks, default=0):.1f}-{max(checks, default=0):.1f} s); "
        f"baseline without it: p99 {alone['p99']:.1f} ms (p50 {alone['p50']:.1f} ms, {alone['rps']:.0f}/s)"
    )


if __name__ == "__main__":
    run()
