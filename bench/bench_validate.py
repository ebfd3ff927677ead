"""Benchmark of data validation with a data contract: payloads per second through the single-payload
validate endpoint and through its batch form (100 payloads per request), in the same run, against the
example LLM telemetry contract (an Avro schema and two CEL CONDITION rules evaluated per payload).

The read API runs in this process (its own event loop in a thread) over a real SQLite store; `wrk`
(C) drives each endpoint for the same time with the same connections, alternating rounds, and the
median rate per endpoint is reported. The baseline is the single-payload call.

Run: `python -m bench validate` (or import and call `run()`).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from kschema.api import ApiSettings, create_app
from kschema.api.state import INDEX
from kschema.contracts import contract_fingerprint, registered_contracts
from kschema.formats import parse_schema
from kschema.model import schema_from_body, subject_from_body
from kschema.store import NewVersion, SubjectRecord
from kschema.store.sqlite import SqliteStore

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "contracts" / "llm-inference.yaml"
SUBJECT = "llm-inference-value"
BATCH = 100
SECONDS = 5
CONNECTIONS = 8
THREADS = 2
ROUNDS = 3
EVENT = {"request_id": "r-1", "model": "llama-3", "tokens": 42, "user_email": "ada@example.com"}


async def _register(store: SqliteStore) -> None:
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    for doc in docs:
        doc.setdefault("metadata", {})["namespace"] = "bench"
    subject = subject_from_body(next(d for d in docs if d["kind"] == "Subject"))
    schemas = [schema_from_body(d) for d in docs if d["kind"] == "Schema"]
    await store.upsert_subject(
        SubjectRecord(
            subject.name,
            subject.namespace,
            subject.format,
            subject.compatibility,
            False,
            contract=subject.contract,
        )
    )
    contracts = registered_contracts(subject.contract, [(s.version, s.contract) for s in schemas])
    for spec in schemas:
        parsed = parse_schema(subject.format, spec.schema)
        await store.register(
            NewVersion(
                subject=subject.name,
                version=spec.version,
                namespace=subject.namespace,
                format=subject.format,
                schema=spec.schema,
                canonical=parsed.canonical,
                fingerprint=contract_fingerprint(parsed.fingerprint, contracts[spec.version]),
                contract=contracts[spec.version],
            )
        )


class _Server:
    """The read API on its own event loop in a thread, so `wrk` can load it from this one."""

    def __init__(self, workdir: Path) -> None:
        self.url = ""
        self._workdir = workdir
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        store = SqliteStore(self._workdir / "registry.db")
        await store.open()
        await _register(store)
        app = create_app(ApiSettings(host="127.0.0.1"), store)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        # The index follows the store's change feed; it offers no event to wait on.
        while app[INDEX].latest(SUBJECT, False) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()
        await store.close()

    def __enter__(self) -> _Server:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the read API did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def _wrk(url: str, body: str, workdir: Path) -> float:
    """Requests per second `wrk` measured for POSTing `body` to `url`."""
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    done = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} failed responses:\n{done.stdout}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if found is None:
        raise RuntimeError(f"unexpected wrk output:\n{done.stdout}")
    return float(found.group(1))


def run() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed; run `make system-deps`")
    with tempfile.TemporaryDirectory() as tmp, _Server(Path(tmp)) as server:
        base = f"{server.url}/kschema/v1/subjects/{SUBJECT}/versions/1/validate"
        single_body = json.dumps(EVENT)
        batch_body = json.dumps({"payloads": [EVENT] * BATCH})
        singles, batches = [], []
        for _ in range(ROUNDS):
            singles.append(_wrk(base, single_body, Path(tmp)))
            batches.append(_wrk(f"{base}/batch", batch_body, Path(tmp)) * BATCH)
    single, batch = statistics.median(singles), statistics.median(batches)
    out = sys.stdout
    out.write(
        f"validate with 2 CEL conditions, {CONNECTIONS} connections, {SECONDS} s x {ROUNDS} rounds (median)\n"
    )
    out.write(
        f"  single-payload call (baseline): {single:10.0f} payloads/s  rounds {[round(r) for r in singles]}\n"
    )
    label = f"batch of {BATCH}:"
    out.write(f"  {label:31} {batch:10.0f} payloads/s  rounds {[round(r) for r in batches]}\n")
    out.write(f"  batch / single: {batch / single:.2f}x\n")
    out.flush()


if __name__ == "__main__":
    run()
