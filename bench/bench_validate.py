"""Benchmark of data validation, each number next to a baseline measured in the same run.

1. Single-payload validation as the validate endpoint runs it (`kschema.formats.validation`, within its
   budget) against the raw library call on the same 50-field record: fastavro's validate, a compiled
   jsonschema validator, protobuf's ParseDict (target: kschema >= 0.9x the library), as the median ratio
   of 21 back-to-back pairs of CPU-time timings.
2. The data contract's CEL CONDITION rules (the example LLM telemetry contract: two rules per payload),
   in process: kschema's evaluation (`ConditionSet`, budgeted) against celpy's own interpreter used as
   documented (`Environment().program(ast).evaluate({"message": ...})` per rule), next to the plain schema
   validation rate of the same payload.
3. The endpoint: payloads per second through the single-payload validate endpoint and through its batch
   form (100 payloads per request), schema and rules. The read API runs in this process (its own event
   loop in a thread) over a real SQLite store; `wrk` (C) drives each endpoint for the same time with the
   same connections, alternating rounds; the median rate per endpoint is reported.

Run: `python -m bench validate` (or import and call `run()`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from kschema.api import ApiSettings, create_app
from kschema.api.state import INDEX
from kschema.contracts import contract_fingerprint, registered_contracts
from kschema.contracts.conditions import ConditionSet
from kschema.formats import ParsedSchema, SchemaFormat, parse_schema
from kschema.formats.validation import validate_payload
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
FIELDS = 50
TARGET_RATIO = 0.9
PAIRS = 21  # single-payload validation: back-to-back timings of kschema and the library (median ratio)
PAIR_SECONDS = 0.1
MIN_SECONDS = 0.5  # per in-process measurement, repeated ROUNDS times (median)


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _rates(*fns: Callable[[], object]) -> list[float]:
    """Calls per CPU second of each of `fns` (this process's CPU time, so other load on a shared machine
    counts for little): the median of ROUNDS timings of at least MIN_SECONDS each, the functions taking
    turns within every round, so that a slower or faster stretch of the machine falls on all of them."""
    for fn in fns:
        fn()  # lazy imports and caches outside the timed part
    rates: list[list[float]] = [[] for _ in fns]
    for _ in range(ROUNDS):
        for fn, found in zip(fns, rates, strict=True):
            found.append(_one_round(fn))
    return [statistics.median(found) for found in rates]


def _paired(ours: Callable[[], object], raw: Callable[[], object]) -> tuple[float, float, float]:
    """(calls per CPU second of `ours`, of `raw`, their ratio) from PAIRS short timings of each taken
    back to back: the ratio is the median of the pairs' ratios, so a slower or faster stretch of a shared
    machine (which moves single timings by a third here) falls on both sides of each pair."""
    ours(), raw()
    pairs = [(_one_round(ours, PAIR_SECONDS), _one_round(raw, PAIR_SECONDS)) for _ in range(PAIRS)]
    return (
        statistics.median(o for o, _ in pairs),
        statistics.median(r for _, r in pairs),
        statistics.median(o / r for o, r in pairs),
    )


def _one_round(fn: Callable[[], object], seconds: float = MIN_SECONDS) -> float:
    calls, batch = 0, 1
    started = time.process_time()
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        elapsed = time.process_time() - started
        if elapsed >= seconds:
            return calls / elapsed
        batch *= 2


# 1. Plain validation against the raw library ------------------------------------------------------------
def _record_text(fmt: SchemaFormat) -> str:
    if fmt is SchemaFormat.AVRO:
        fields = [{"name": f"f{i}", "type": "string"} for i in range(FIELDS)]
        return json.dumps({"type": "record", "name": "Order", "namespace": "com.acme", "fields": fields})
    if fmt is SchemaFormat.JSON:
        properties = {f"f{i}": {"type": "string"} for i in range(FIELDS)}
        return json.dumps(
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": properties}
        )
    lines = [f"  string f{i} = {i + 1};" for i in range(FIELDS)]
    return 'syntax = "proto3";\npackage bench;\n\nmessage Order {\n' + "\n".join(lines) + "\n}\n"


def _raw_validator(fmt: SchemaFormat, payload: dict[str, Any]) -> tuple[str, Callable[[], object]]:
    if fmt is SchemaFormat.AVRO:
        import fastavro
        import fastavro.validation

        parsed = fastavro.parse_schema(json.loads(_record_text(fmt)))
        return "fastavro validate", lambda: fastavro.validation.validate(payload, parsed, raise_errors=True)
    if fmt is SchemaFormat.JSON:
        import jsonschema

        schema = json.loads(_record_text(fmt))
        validator = jsonschema.validators.validator_for(schema)(schema)
        return "jsonschema compiled validator", lambda: list(validator.iter_errors(payload))
    from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

    file = descriptor_pb2.FileDescriptorProto(name="bench_order.proto", package="bench", syntax="proto3")
    message = file.message_type.add(name="Order")
    for i in range(FIELDS):
        message.field.add(
            name=f"f{i}",
            number=i + 1,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("bench.Order"))
    return "protobuf ParseDict", lambda: json_format.ParseDict(payload, cls())


def _plain_validation() -> None:
    _out(
        f"single-payload validation, {FIELDS}-field record: kschema (budgeted, as the endpoint) "
        "against the library"
    )
    payload = {f"f{i}": f"value {i}" for i in range(FIELDS)}
    for fmt in (SchemaFormat.AVRO, SchemaFormat.JSON, SchemaFormat.PROTOBUF):
        parsed: ParsedSchema = parse_schema(fmt, _record_text(fmt))
        issues = validate_payload(parsed, payload)
        if issues:
            raise RuntimeError(f"the {fmt} payload is not valid: {issues}")
        name, raw = _raw_validator(fmt, payload)
        ours, baseline, ratio = _paired(lambda parsed=parsed: validate_payload(parsed, payload), raw)  # type: ignore[misc]
        verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
        _out(
            f"  {fmt.value.lower():9} kschema {ours:8.0f}/CPU-s  {name} {baseline:8.0f}/CPU-s  "
            f"ratio {ratio:.2f} (median of {PAIRS} pairs; target >= {TARGET_RATIO}: {verdict})"
        )


# 2. CEL conditions in process -------------------------------------------------------------------------
def _cel_rules() -> None:
    import celpy
    from celpy.adapter import json_to_cel

    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    version_1 = next(schema_from_body(d) for d in docs if d["kind"] == "Schema" and d["spec"]["version"] == 1)
    parsed = parse_schema(SchemaFormat.AVRO, version_1.schema)
    conditions = ConditionSet(version_1.contract)
    expressions = [rule.expr for rule, _ in conditions.checked if rule.expr is not None]
    deadline = time.monotonic() + 3600
    if conditions.evaluate(EVENT, deadline) or validate_payload(parsed, EVENT):
        raise RuntimeError("the benchmark event breaks the example contract")
    environment = celpy.Environment()
    programs = [environment.program(environment.compile(e)) for e in expressions]

    def celpy_as_documented() -> None:
        for program in programs:
            if not program.evaluate({"message": json_to_cel(EVENT)}):
                raise RuntimeError("celpy disagrees with kschema on the benchmark event")

    plain, rules, both, baseline = _rates(
        lambda: validate_payload(parsed, EVENT),
        lambda: conditions.evaluate(EVENT, deadline),
        lambda: (validate_payload(parsed, EVENT), conditions.evaluate(EVENT, deadline)),
        celpy_as_documented,
    )
    _out(
        f"CEL CONDITION rules of the example contract, in process "
        f"({len(expressions)} per payload: {expressions})"
    )
    _out(f"  plain schema validation (no rules):          {plain:8.0f} payloads per CPU second")
    _out(f"  kschema rules (budgeted):                     {rules:8.0f} payloads per CPU second")
    _out(f"  schema validation + rules:                    {both:8.0f} payloads per CPU second")
    _out(
        f"  celpy interpreter as documented (baseline):   {baseline:8.0f} payloads per CPU second; "
        f"kschema rules / baseline {rules / baseline:.2f}x"
    )


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
    started = time.monotonic()
    _out(f"load_average_1m {os.getloadavg()[0]:.2f}")
    _plain_validation()
    _cel_rules()
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
    out.write(
        f"bench_validate took {time.monotonic() - started:.0f} s; load_average_1m {os.getloadavg()[0]:.2f}\n"
    )
    out.flush()


if __name__ == "__main__":
    run()
